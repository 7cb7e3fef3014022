"""Host code of a GPU pipeline: the C dialect plus kernel launches.

The host stays one C function (argument checks, bounds, allocations, CPU
stages); a `KernelLaunch` or `DeviceSync` statement becomes a call through
a small table of callbacks, `halo_gpu_api`, whose address the caller puts
after the last argument in `_args`. The JIT fills it with Python functions
that drive pyopencl or cuda-python (halo.runtime.device); an embedding
application could fill it with C functions over its own GPU runtime.

    launch(ctx, kernel, args, bytes, grid): args holds, per buffer argument of
        the kernel, its host pointer (bytes[i] its size in bytes, -1 for a
        pipeline argument), then a pointer to each scalar argument; grid is
        the number of blocks in x, y, z. Returns 0 or an error code.
    sync(ctx, slot, action, host, bytes): action 0 = copy the buffer in
        `slot` back to the host if the device holds newer data; 1 = the host
        copy was written.
"""
from __future__ import annotations

from ..ir import expr as E
from .c import CPrinter
from .c_like import c_string

API_DECL = """typedef struct halo_gpu_api {
    void *ctx;
    int (*launch)(void *ctx, int32_t kernel, void **args, const int64_t *bytes,
                  const int32_t *grid);
    int (*sync)(void *ctx, int32_t slot, int32_t action, void *host, int64_t bytes);
} halo_gpu_api;"""

SYNC_ACTIONS = {"to_host": 0, "host_dirty": 1}


class GpuHostPrinter(CPrinter):
    """Prints launches as calls through `halo_gpu_api`; `kernel_ids` maps
    each Kernel to its index in the pipeline's kernel list."""

    def __init__(self, api_index: int, kernel_ids: dict):
        super().__init__()
        self.api = f"((const halo_gpu_api *)_args[{api_index}])"
        self.kernel_ids = kernel_ids
        self.helpers["halo_gpu_api"] = API_DECL

    def _check_call(self, call: str, what: str):
        # At the top level, a failure skips the later launches and syncs but
        # not the rest of the body, so that enclosing allocations are freed
        # (a `return` here would leak them).
        guard = "if (_result == 0) " if self.loop_depth == 0 else ""
        self.emit(f"{guard}{{ int _gr = {call};")
        self.indent += 1
        self.emit("if (_gr != 0) {")
        self.indent += 1
        msg = c_string(f"{what} failed (code %d)")
        if self.loop_depth == 0:
            self.emit(f"if (_err[0] == 0) halo_set_error(_err, {msg}, _gr);")
            self.emit("_result = _gr;")
        else:
            self.emit_pragma("#pragma omp critical (halo_error)", self.openmp_guard)
            self.emit(f"if (_result == 0) {{ if (_err[0] == 0) halo_set_error(_err, {msg}, "
                      f"_gr); _result = _gr; }}")
        self.indent -= 1
        self.emit("}")
        self.indent -= 1
        self.emit("}")

    def s_KernelLaunch(self, s):
        k = s.kernel
        bufs, scalars = k.buffers(), k.scalars()
        grid = [self.stmt_expr(g) for g in s.grid] + ["1"] * (3 - len(s.grid))
        sizes = []
        for a, n in zip(bufs, s.sizes):
            sizes.append("-1" if isinstance(n, E.Const) and n.value < 0 else
                         f"({self.stmt_expr(n)}) * (int64_t)sizeof({self.ctype(a.type)})")
        values = [self.stmt_expr(v) for v in s.scalars]
        self.emit("{")
        self.indent += 1
        n = max(len(bufs) + len(scalars), 1)
        for i, (a, v) in enumerate(zip(scalars, values)):
            self.emit(f"{self.ctype(a.type)} _gs{i} = {v};")
        ptrs = [f"(void *){self.name(a.name)}" for a in bufs] + \
            [f"(void *)&_gs{i}" for i in range(len(scalars))]
        self.emit(f"void *_gargs[{n}] = {{{', '.join(ptrs) or '0'}}};")
        self.emit(f"const int64_t _gbytes[{max(len(bufs), 1)}] = {{{', '.join(sizes) or '0'}}};")
        self.emit(f"const int32_t _ggrid[3] = {{{', '.join(grid)}}};")
        call = (f"{self.api}->launch({self.api}->ctx, {self.kernel_ids[k]}, _gargs, _gbytes, "
                f"_ggrid)")
        self._check_call(call, f"GPU kernel {k.name} (Func {k.func})")
        self.indent -= 1
        self.emit("}")

    def s_DeviceSync(self, s):
        size = "-1" if isinstance(s.size, E.Const) and s.size.value < 0 else \
            f"({self.stmt_expr(s.size)}) * (int64_t)sizeof(*{self.name(s.buffer)})"
        call = (f"{self.api}->sync({self.api}->ctx, {s.slot}, {SYNC_ACTIONS[s.action]}, "
                f"(void *){self.name(s.buffer)}, {size})")
        self._check_call(call, f"copy of buffer {s.buffer} between host and device")
