"""GPU kernels as a dialect of the C-like printer (base of OpenCL and CUDA).

A `KernelPrinter` prints one `Kernel` (halo.lower.gpu_kernels) as a device
function. Dialects (halo.codegen.opencl, halo.codegen.cuda) only set the
class attributes below: qualifiers, address spaces, index and barrier
spellings, the prelude. The statement and expression printing is the
shared C printer's, with Halide's integer semantics from the same helpers.
"""
from __future__ import annotations

import re

from ..errors import CompileError
from ..ir import expr as E
from ..ir.types import Type
from .c import _helper_blocks
from .c_like import CLikePrinter

# The shared C helpers that need the host C library: never in kernels.
_HOST_ONLY_HELPERS = {"halo_set_error", "halo_malloc", "halo_free"}

_TYPEDEFS = {"int8_t": "signed char", "uint8_t": "unsigned char", "int16_t": "short",
             "uint16_t": "unsigned short", "int32_t": "int", "uint32_t": "unsigned int"}


class KernelPrinter(CLikePrinter):
    kernel_qualifier = "void"
    buffer_qualifier = ""          # address space of buffer arguments
    restrict = "restrict"
    shared_qualifier = ""          # address space of block-level allocations
    block_id = "block_id({d})"
    thread_id = "thread_id({d})"
    barrier = "barrier()"
    helper_qualifier = "static inline"
    int64_names = ("long", "unsigned long")
    prelude = ""
    # spellings of compiler builtins the shared helpers use
    builtins: dict = {}
    align_attribute = ""
    # the dialect's integer min/max builtins (overloaded on the type), if any
    int_min_max = None

    # -- printing one kernel ------------------------------------------------------------
    def kernel_source(self, kernel) -> str:
        self.lines, self.indent = [], 1
        params = []
        for a in kernel.buffers():
            name = self.declare(a.name, "b_" + a.name)
            const = "" if a.written else "const "
            params.append(f"{self.buffer_qualifier}{' ' if self.buffer_qualifier else ''}"
                          f"{const}{self.storage_type(a.type)} *{self.restrict} {name}".strip())
        for a in kernel.scalars():
            name = self.declare(a.name, a.name)
            params.append(f"const {self.scalar_arg_type(a.type)} {name}")
        for sh in kernel.shared:
            name = self.declare(sh.name, "sh_" + sh.name)
            self.emit(f"{self.shared_qualifier} {self.storage_type(sh.type)} {name}[{sh.size}];")
        self.stmt(kernel.body)
        head = f"{self.kernel_qualifier} {kernel.name}({', '.join(params) or 'void'})"
        return head + " {\n" + "\n".join(self.lines) + "\n}\n"

    def storage_type(self, t: Type) -> str:
        # bool has no defined size on devices: store it as one byte, as numpy does
        return "uint8_t" if t.is_bool() else self.ctype(t)

    def scalar_arg_type(self, t: Type) -> str:
        # OpenCL forbids bool kernel arguments: pass an int (the runtime does)
        return "int32_t" if t.is_bool() else self.ctype(t)

    # -- GPU intrinsics -------------------------------------------------------------------
    def e_Call(self, e):
        if e.call_type == E.CallType.INTRINSIC:
            if e.name == "gpu_block_id":
                return f"((int32_t){self.block_id.format(d=e.args[0].value, x='xyz'[e.args[0].value])})"
            if e.name == "gpu_thread_id":
                return f"((int32_t){self.thread_id.format(d=e.args[0].value, x='xyz'[e.args[0].value])})"
        return super().e_Call(e)

    # -- integer ops without helper calls where the semantics agree ----------------------
    def e_Min(self, e):
        return self._min_max(e, 0) or super().e_Min(e)

    def e_Max(self, e):
        return self._min_max(e, 1) or super().e_Max(e)

    def _min_max(self, e, which):
        t = e.type
        if self.int_min_max is None or not t.is_scalar() or t.is_float() or t.is_bool():
            return None
        # PoCL treats a builtin as cheap, uniform code; a helper call costs ~6% here
        c = self.ctype(t)
        return f"{self.int_min_max[which]}(({c})({self.expr(e.a)}), ({c})({self.expr(e.b)}))"

    def e_Div(self, e):
        t = e.type
        if t.is_uint() and t.is_scalar() and isinstance(e.b, E.Const) and e.b.value != 0:
            # unsigned division by a nonzero constant: C's `/` is Halide's
            c = self.ctype(t)
            return f"(({c})({self.expr(e.a)} / ({c}){e.b.value}))"
        return super().e_Div(e)

    def s_Evaluate(self, s):
        if isinstance(s.value, E.Call) and s.value.name == "gpu_barrier":
            self.emit(f"{self.barrier};")
            return
        super().s_Evaluate(s)

    def s_Allocate(self, s):
        # per-thread storage: always an array (the pass checked the size is constant)
        if not isinstance(s.size, E.Const):
            raise CompileError(f"buffer {s.name} inside a GPU kernel needs a constant size")
        saved = dict(self.names)
        buf = self.declare(s.name)
        self.emit("{")
        self.indent += 1
        self.emit(f"{self.storage_type(s.type)} {buf}[{max(1, s.size.value)}];")
        self.stmt(s.body)
        self.indent -= 1
        self.emit("}")
        self.names = saved

    def s_AssertStmt(self, s):
        raise CompileError("a run-time check ended up inside a GPU kernel (from bound(), "
                           "fold_storage() or specialize_fail() on a GPU stage); move that "
                           "directive to a Func computed on the host")

    def s_Atomic(self, s):
        from .c_like import _atomic_op
        st = s.body
        op = _atomic_op(st) if type(st).__name__ == "Store" else None
        t = st.value.type if op else None
        if op is None or op[0] != "+" or not (t.is_float() and t.bits() == 32 or
                                               t.bits() == 32 and not t.is_float()):
            raise CompileError("atomic() on the GPU supports only += of 32-bit ints and "
                               "floats")
        idx = self.stmt_expr(st.index)
        v = self.stmt_expr(op[1])
        self.emit(self.atomic_add(t, f"&{self.name(st.buffer)}[{idx}]", v) + ";")

    def atomic_add(self, t: Type, ptr: str, value: str) -> str:
        raise NotImplementedError


def device_source(kernels, printer_cls) -> str:
    """One translation unit with every kernel of a pipeline, for one dialect."""
    bodies, helpers = [], {}
    for k in kernels:
        p = printer_cls()
        bodies.append(p.kernel_source(k))
        helpers.update(p.helpers)
    text = "\n".join(bodies) + "\n".join(helpers.values())
    called = set(re.findall(r"\b(halo_\w+)\(", text))
    used = [src for name, src in _helper_blocks() if name in called
            and name not in _HOST_ONLY_HELPERS]
    qual = printer_cls.helper_qualifier
    code = "\n".join(used)
    code = code.replace("static inline ", qual + " ")
    for builtin, spelling in printer_cls.builtins.items():
        code = code.replace(builtin, spelling)
    extra = "\n".join(h.replace("static inline ", qual + " ") for h in helpers.values())
    used_text = "\n".join([code, extra] + bodies)
    return "\n".join([_used_macros(printer_cls.prelude, used_text), code, extra, ""] + bodies)


_MACRO = re.compile(r"^#define (\w+)\(")


def _used_macros(prelude: str, code: str) -> str:
    """The prelude without function-like macros that `code` never calls."""
    keep = []
    for line in prelude.split("\n"):
        m = _MACRO.match(line)
        if m is None or re.search(rf"\b{m.group(1)}\(", code):
            keep.append(line)
    return "\n".join(keep)
