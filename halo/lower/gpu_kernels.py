"""Extract every GPU block loop nest into a kernel launched from the host.

Accepts the flattened, simplified pipeline body (Allocate/Store/Load, no
Realize/Provide). Produces the same body where each outermost nest of
`gpu_block` loops is replaced by a `KernelLaunch`; the launch carries its
`Kernel`: a body in which

* block loops become lets `v = min + gpu_block_id(d)` (innermost block loop
  is d = 0, like Halide's `block_id_x`);
* each chain of thread loops becomes lets `v = min + gpu_thread_id(d)`,
  guarded when its extent is smaller than the block's thread count, or a
  strided loop when its extent is not a constant; chains that use fewer
  thread dimensions than the block run only on thread 0 of the others;
* code at block level outside thread loops runs on thread 0 alone, and a
  `gpu_barrier()` separates consecutive block-level statements, so a
  producer computed at the block level (in shared memory) is complete
  before its consumers read it;
* allocations at block level become shared (`__local`/`__shared__`)
  arrays, allocations inside thread loops stay per-thread arrays; their
  constant sizes come from the host's constant lets and, where the block's
  position does not cancel out, the largest over a constant grid
  (halo.lower.block_bounds).

The kernel body then gets cheap index math (halo.lower.gpu_index_math:
lets folded, int32 indices, dense innermost strides), and the launch is
guarded by the host checks that its 32-bit indices need.

Kernel arguments are the buffers the body loads or stores (except its own
allocations) and the scalars it uses but does not define. Illegal nests are
errors naming the Func: blocks inside threads, threads outside blocks, more
than 3 block or thread dimensions, more threads per block than the target
allows, and `store_in` memory types that contradict the compute level.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, IRVisitor, substitute
from ..ir.printer import expr_to_str
from ..ir.simplify import simplify
from ..ir.types import Type, i32, i64
from ..schedule.schedule import MemoryType
from .block_bounds import largest_over_blocks
from .gpu_index_math import argument_span, index_range_checks, narrowed_value, \
    tidy_kernel_body

GPU_INTRINSICS = ("gpu_block_id", "gpu_thread_id", "gpu_barrier")


@dataclass(frozen=True)
class KernelArg:
    name: str          # IR name of the buffer or scalar
    type: Type         # element type for buffers
    is_buffer: bool
    read: bool = False
    written: bool = False


@dataclass(frozen=True)
class SharedAlloc:
    name: str
    type: Type
    size: int


@dataclass(frozen=True, eq=False)
class Kernel:
    """One GPU kernel: not an IR node, so passes leave it alone."""
    name: str                     # C identifier, unique in the pipeline
    func: str                     # the Func it computes (user name), for messages
    args: tuple                   # KernelArg, buffers first, then scalars
    body: S.Stmt
    threads: tuple                # threads per block in x, y, z
    shared: tuple                 # SharedAlloc, declared at kernel scope

    def buffers(self):
        return [a for a in self.args if a.is_buffer]

    def scalars(self):
        return [a for a in self.args if not a.is_buffer]


@dataclass(frozen=True)
class KernelLaunch(S.Stmt):
    """Run `kernel` on a grid of `grid` blocks (x, y, z).

    `scalars` are the values of the kernel's scalar arguments; per buffer
    argument, `slots` is its device-buffer slot and `sizes` its size in
    elements (-1 for pipeline arguments, whose size the runtime knows)."""
    kernel: Kernel
    grid: tuple
    scalars: tuple
    slots: tuple
    sizes: tuple

    def __repr__(self):
        from ..ir.printer import expr_to_str
        grid = ", ".join(expr_to_str(g) for g in self.grid)
        args = ", ".join(a.name for a in self.kernel.args)
        return (f"gpu_launch {self.kernel.name}<<<[{grid}], "
                f"{list(self.kernel.threads)}>>>({args})")


def gpu_call(name: str, *args) -> E.Expr:
    return E.Call(i32, name, tuple(E.Const(i32, a) for a in args), E.CallType.INTRINSIC)


_LOOP = re.compile(r"^(.*?)\.s\d+\.")


def extract_gpu_kernels(body: S.Stmt, buffers: dict, arguments: list, func_names: dict,
                        outer_lets=(), max_threads: int = 1024) -> S.Stmt:
    """`buffers`: buffer name -> (Func user name, MemoryType) of internal
    storage; `arguments`: the pipeline's buffer/param names in call order
    (a buffer argument's device slot is its index; internal buffers get the
    following slots); `func_names`: internal Func name -> user name;
    `outer_lets`: the (name, value) lets that will enclose `body` (those that
    fold to constants size shared memory and thread blocks)."""
    if not _has_gpu_loop(body):
        return body
    slots = {name: i for i, name in enumerate(arguments)}
    return _Extract(buffers, slots, len(arguments), func_names, max_threads,
                    _constant_lets(outer_lets)).mutate(body)


def _constant_lets(lets) -> dict:
    """name -> Const for the lets (in order) whose values fold to constants,
    such as a region's bounds that bounds inference found constant."""
    known = {}
    for name, value in lets:
        if isinstance(value, E.Expr):
            v = simplify(substitute(known, value))
            if isinstance(v, E.Const):
                known[name] = v
    return known


def func_of_loop(loop: str, func_names: dict) -> str:
    m = _LOOP.match(loop)
    return func_names.get(m.group(1), m.group(1)) if m else loop


def _has_gpu_loop(s) -> bool:
    """Whether s holds a GPU block, thread or lane loop."""
    found = []

    class V(IRVisitor):
        def visit_For(self, f):
            if f.kind.is_gpu():
                found.append(f)
            else:
                self.generic(f)
    V().visit(s)
    return bool(found)


class _Extract(IRMutator):
    def __init__(self, buffers, slots, next_slot, func_names, max_threads, host_consts):
        self.buffers, self.slots, self.func_names = buffers, slots, func_names
        self.pipeline_buffers = set(slots)      # self.slots grows with internal buffers
        self.next_slot = next_slot
        self.max_threads = max_threads
        self.allocs = {}            # host allocation name -> size (elements) in scope
        self.host_consts = host_consts  # host lets with constant values in scope
        self.kernels = 0

    def visit_LetStmt(self, s):
        if not isinstance(s.value, E.Const) and s.name not in self.host_consts:
            return self.generic(s)
        saved = dict(self.host_consts)
        if isinstance(s.value, E.Const):
            self.host_consts[s.name] = s.value
        else:                       # shadows an outer constant
            del self.host_consts[s.name]
        out = self.generic(s)
        self.host_consts = saved
        return out

    def visit_Allocate(self, s):
        info = self.buffers.get(s.name)
        if info and info[1] in (MemoryType.GPUShared, MemoryType.Register) and \
                _has_gpu_loop(s.body):
            raise CompileError(f"Func {info[0]} is stored in {info[1].value} memory "
                               f"(store_in), but it is allocated outside every GPU block "
                               f"loop: compute it at a gpu_blocks (GPUShared) or "
                               f"gpu_threads (Register) loop of its consumer")
        saved = dict(self.allocs)
        self.allocs[s.name] = s.size
        out = self.generic(s)
        self.allocs = saved
        return out

    def visit_For(self, s):
        fname = func_of_loop(s.name, self.func_names)
        if s.kind in (S.ForKind.GPU_THREAD, S.ForKind.GPU_LANE):
            _no_gpu_loops_in(s.body, self.func_names, fname, blocks_only=True)
            raise CompileError(f"Func {fname}: GPU thread loop {s.name} is not inside a GPU "
                               f"block loop; mark an outer loop with gpu_blocks() (or use "
                               f"gpu_tile)")
        if s.kind != S.ForKind.GPU_BLOCK:
            return self.generic(s)
        return self._launch(s, fname)

    def _launch(self, loop, fname):
        blocks, lets, inner = [], [], loop
        while True:
            if isinstance(inner, S.For) and inner.kind == S.ForKind.GPU_BLOCK:
                blocks.append(inner)
                inner = inner.body
            elif isinstance(inner, S.LetStmt) and _has_gpu_loop(inner.body):
                lets.append((inner.name, inner.value))
                inner = inner.body
            else:
                break
        if len(blocks) > 3:
            raise CompileError(f"Func {fname} has {len(blocks)} GPU block loops "
                               f"({', '.join(b.name for b in blocks)}); GPUs have at most 3 "
                               f"block dimensions (x, y, z): fuse some first")
        kz = _Kernelize(self, fname)
        for name, value in lets:
            kz.lets[name] = substitute(kz.lets, value)
        kz.blocks = _constant_ranges(blocks, kz.lets)
        body = kz.run(inner)
        threads = body[1]
        body, shared = body[0], body[2]
        for name, value in reversed(lets):
            body = S.LetStmt(name, value, body)
        for d, b in enumerate(reversed(blocks)):         # innermost block loop is x
            body = S.LetStmt(b.name, simplify(E.Add(b.min, gpu_call("gpu_block_id", d))), body)
        grid = tuple(b.extent for b in reversed(blocks))
        local = {a.name for a in shared}
        body, checks = self._index_math(body, _kernel_args(body, local), fname,
                                        f"halo_k{self.kernels + 1}")
        args = _kernel_args(body, local)
        self.kernels += 1
        base = re.sub(r"[^A-Za-z0-9_]", "_", loop.name)[:48]
        kernel = Kernel(f"halo_k{self.kernels}_{base}", fname, tuple(args), body,
                        tuple(threads), tuple(shared))
        slots, sizes = [], []
        for a in kernel.buffers():
            if a.name in self.pipeline_buffers:        # the caller's buffer: size known
                slots.append(self.slots[a.name])
                sizes.append(E.Const(i64, -1))
            elif a.name in self.allocs:                # internal: every launch says its size
                if a.name not in self.slots:
                    self.slots[a.name] = self.next_slot
                    self.next_slot += 1
                slots.append(self.slots[a.name])
                sizes.append(E.Cast(i64, self.allocs[a.name]))
            else:
                raise CompileError(f"Func {fname}: GPU kernel {kernel.name} uses buffer "
                                   f"{a.name}, which is neither a pipeline argument nor "
                                   f"allocated outside the kernel (halo bug)")
        scalars = tuple(narrowed_value(a.name, a.type) or E.Variable(a.type, a.name)
                        for a in kernel.scalars())
        launch = KernelLaunch(kernel, grid, scalars, tuple(slots), tuple(sizes))
        if not checks:
            return launch
        # an assert inside a host loop records the error and goes on: guard the launch
        fits = checks[0].condition
        for c in checks[1:]:
            fits = E.And(fits, c.condition)
        return S.IfThenElse(fits, launch, S.block(*checks))

    def _index_math(self, body, args, fname, kname):
        """The kernel body with cheap index math (halo.lower.gpu_index_math),
        and the host asserts that its 32-bit indices need."""
        known = dict(self.host_consts)
        spans = []
        scalars = {a.name for a in args if not a.is_buffer}
        for a in args:
            if not a.is_buffer:
                continue
            if a.name in self.pipeline_buffers:
                # the host entry checked that dimension 0 is dense
                known[f"{a.name}.stride.0"] = E.Const(i64, 1)
                dims = {int(m.group(1)) for n in scalars
                        for m in [re.fullmatch(re.escape(a.name) + r"\.(?:stride|min)\.(\d+)", n)]
                        if m}
                spans.append((a.name, argument_span(a.name, dims)))
            elif a.name in self.allocs:
                info = self.buffers.get(a.name)
                spans.append((info[0] if info else a.name, E.Cast(i64, self.allocs[a.name])))
        body = tidy_kernel_body(body, known)
        return body, index_range_checks(kname, fname, spans)


class _Kernelize:
    """Rewrite the body at block level of one kernel (see module docstring)."""

    def __init__(self, owner: _Extract, fname: str):
        self.owner, self.fname = owner, fname
        self.shared = []
        # block-level lets, fully substituted, and the host's constant lets
        # (bounds that bounds inference found constant size shared memory)
        self.lets = dict(owner.host_consts)
        self.blocks = {}            # block loop name -> (min, extent), when constant

    def run(self, s):
        chains = []
        self._collect(s, chains, in_thread=False)
        extents = [[] for _ in range(3)]
        for chain in chains:
            if len(chain) > 3:
                raise CompileError(f"Func {self.fname} has {len(chain)} nested GPU thread "
                                   f"loops ({', '.join(c.name for c in chain)}); GPUs have at "
                                   f"most 3 thread dimensions")
            for d, loop in enumerate(reversed(chain)):
                ext = self._extent(loop)
                if isinstance(ext, E.Const):
                    extents[d].append(ext.value)
        ndims = max((len(c) for c in chains), default=0)
        threads = []
        for d in range(3):
            if d >= ndims:
                threads.append(1)
                continue
            if not extents[d]:
                names = [c[len(c) - 1 - d].name for c in chains if len(c) > d]
                raise CompileError(f"Func {self.fname}: the extent of GPU thread loop "
                                   f"{names[0]} is not a constant, so the number of threads "
                                   f"per block is unknown; use gpu_tile() with constant "
                                   f"sizes (or bound() the Func)")
            threads.append(max(1, max(extents[d])))
        total = threads[0] * threads[1] * threads[2]
        if total > self.owner.max_threads:
            raise CompileError(f"Func {self.fname} uses {total} GPU threads per block "
                               f"({' x '.join(str(t) for t in threads[:max(ndims, 1)])}), more "
                               f"than the limit of {self.owner.max_threads} for this target; "
                               f"use smaller gpu_tile()/gpu_threads() extents")
        self.threads, self.ndims = threads, ndims
        return self._block_level(s), threads, self.shared

    # -- analysis -------------------------------------------------------------------------
    def _collect(self, s, chains, in_thread):
        fname = self.fname

        class V(IRVisitor):
            def visit_LetStmt(v, let):
                self.lets[let.name] = substitute(self.lets, let.value)
                v.generic(let)

            def visit_For(v, f):
                if f.kind == S.ForKind.GPU_BLOCK:
                    raise CompileError(
                        f"Func {func_of_loop(f.name, self.owner.func_names)}: GPU block loop "
                        f"{f.name} is nested inside another GPU loop of {fname}'s kernel; "
                        f"block loops must be outermost, outside every thread loop "
                        f"(reorder them)")
                if f.kind in (S.ForKind.GPU_THREAD, S.ForKind.GPU_LANE):
                    chain = self._chain(f)
                    chains.append(chain)
                    _no_gpu_loops_in(chain[-1].body, self.owner.func_names, fname)
                    return
                v.generic(f)
        V().visit(s)

    @staticmethod
    def _chain(f):
        chain = [f]
        inner = f.body
        while True:
            while isinstance(inner, S.LetStmt):
                inner = inner.body
            if isinstance(inner, S.For) and inner.kind in (S.ForKind.GPU_THREAD,
                                                           S.ForKind.GPU_LANE):
                chain.append(inner)
                inner = inner.body
            else:
                return chain

    # -- rewriting ------------------------------------------------------------------------
    def _has_threads(self, s):
        found = []

        class V(IRVisitor):
            def visit_For(v, f):
                if f.kind in (S.ForKind.GPU_THREAD, S.ForKind.GPU_LANE):
                    found.append(f)
                else:
                    v.generic(f)
        V().visit(s)
        return bool(found)

    def _barrier(self):
        return S.Evaluate(gpu_call("gpu_barrier"))

    def _block_level(self, s):
        multi = self.threads[0] * self.threads[1] * self.threads[2] > 1
        if isinstance(s, S.Block):
            out = []
            for i, x in enumerate(s.stmts):
                out.append(self._block_level(x))
                if multi and i + 1 < len(s.stmts):
                    out.append(self._barrier())
            return S.block(*out)
        if isinstance(s, S.LetStmt):
            self.lets[s.name] = substitute(self.lets, s.value)
            return S.LetStmt(s.name, s.value, self._block_level(s.body))
        if isinstance(s, S.Allocate):
            self._shared(s)
            return self._block_level(s.body)
        if isinstance(s, S.IfThenElse) and self._has_threads(s):
            return S.IfThenElse(s.condition, self._block_level(s.then_case),
                                None if s.else_case is None else self._block_level(s.else_case))
        if isinstance(s, S.For) and s.kind in (S.ForKind.GPU_THREAD, S.ForKind.GPU_LANE):
            return self._thread_chain(s)
        if isinstance(s, S.For) and self._has_threads(s):
            # a serial loop around thread loops: every iteration ends with a
            # barrier, so the next one cannot overwrite what this one reads
            body = self._block_level(s.body)
            if multi:
                body = S.block(body, self._barrier())
            return S.For(s.name, s.min, s.extent, S.ForKind.SERIAL, body)
        # block-level work outside thread loops: one thread does it
        s = _private_allocs(s, self.owner.buffers, self.lets, blocks=self.blocks)
        return self._on_thread_zero(s, 0) if multi else s

    def _on_thread_zero(self, s, first_dim):
        cond = None
        for d in range(first_dim, 3):
            if self.threads[d] > 1:
                c = E.EQ(gpu_call("gpu_thread_id", d), E.Const(i32, 0))
                cond = c if cond is None else E.And(cond, c)
        return s if cond is None else S.IfThenElse(cond, s)

    def _shared(self, s):
        info = self.owner.buffers.get(s.name)
        who = info[0] if info else s.name
        if info and info[1] == MemoryType.Register:
            raise CompileError(f"Func {who} is stored in Register memory (store_in), but it is "
                               f"computed at GPU block level, shared by the block's threads; "
                               f"compute it at a gpu_threads loop, or use MemoryType.GPUShared")
        # the size is a function of the block's position; with the block-level
        # lets substituted, the position usually cancels out
        size = _constant_size(simplify(substitute(self.lets, s.size)), self.blocks)
        if not isinstance(size, E.Const):
            raise CompileError(f"Func {who} is computed at a GPU block loop of {self.fname}, "
                               f"so it lives in shared memory, which needs a constant size; "
                               f"its size here is {expr_to_str(size)}. Bound its region (bound(), or a "
                               f"gpu_tile with ShiftInwards/RoundUp tails)")
        self.shared.append(SharedAlloc(s.name, s.type, int(size.value)))

    def _thread_chain(self, f):
        chain = self._chain(f)
        dims = {loop.name: len(chain) - 1 - i for i, loop in enumerate(chain)}

        lets = dict(self.lets)

        def rewrite(s):
            if isinstance(s, S.LetStmt):
                lets[s.name] = substitute(lets, s.value)
                return S.LetStmt(s.name, s.value, rewrite(s.body))
            if isinstance(s, S.For) and s.name in dims:
                return self._thread_loop(s, dims[s.name], rewrite(s.body))
            return _private_allocs(s, self.owner.buffers, lets, inside_thread=True,
                                   blocks=self.blocks)
        out = rewrite(f)
        return self._on_thread_zero(out, len(chain)) if len(chain) < self.ndims else out

    def _extent(self, loop):
        # with the block-level lets substituted, the block position cancels
        # out of most extents (a producer's region per block is a constant)
        ext = simplify(loop.extent)
        return ext if isinstance(ext, E.Const) else simplify(substitute(self.lets, ext))

    def _thread_loop(self, f, d, body):
        tid = gpu_call("gpu_thread_id", d)
        t = self.threads[d]
        ext = self._extent(f)
        if isinstance(ext, E.Const) and ext.value <= t:
            body = S.LetStmt(f.name, simplify(E.Add(f.min, tid)), body)
            return body if ext.value == t else S.IfThenElse(E.LT(tid, ext), body)
        # more iterations than threads: each thread takes every t-th one
        j = f.name + ".gpu_step"
        idx = E.Add(E.Mul(E.Variable(i32, j), E.Const(i32, t)), tid)
        inner = S.IfThenElse(E.LT(idx, ext), S.LetStmt(f.name, E.Add(f.min, idx), body))
        trips = E.Div(E.Add(ext, E.Const(i32, t - 1)), E.Const(i32, t))
        return S.For(j, E.Const(i32, 0), simplify(trips), S.ForKind.SERIAL, inner)


def _no_gpu_loops_in(s, func_names, fname, blocks_only=False):
    class V(IRVisitor):
        def visit_For(v, f):
            if f.kind == S.ForKind.GPU_BLOCK:
                raise CompileError(f"Func {func_of_loop(f.name, func_names)}: GPU block loop "
                                   f"{f.name} is nested inside a GPU thread loop of {fname}; "
                                   f"block loops must be outside thread loops (reorder them)")
            if f.kind.is_gpu() and not blocks_only:
                raise CompileError(f"Func {func_of_loop(f.name, func_names)}: GPU thread loop "
                                   f"{f.name} is separated from the enclosing thread loops of "
                                   f"{fname} by other loops; thread loops must be directly "
                                   f"nested (reorder them)")
            v.generic(f)
    V().visit(s)


def _constant_ranges(loops, lets) -> dict:
    """Loop name -> (min, extent) for the loops whose bounds are constants."""
    out = {}
    for f in loops:
        lo, ext = (simplify(substitute(lets, v)) for v in (f.min, f.extent))
        if isinstance(lo, E.Const) and isinstance(ext, E.Const):
            out[f.name] = (int(lo.value), int(ext.value))
    return out


def _constant_size(size, blocks):
    """A size that depends on the block's position: its largest value over
    the grid, when the grid is a constant (halo.lower.block_bounds)."""
    if isinstance(size, E.Const):
        return size
    largest = largest_over_blocks(size, blocks)
    return size if largest is None else E.Const(size.type, largest)


def _private_allocs(s, buffers, lets, inside_thread=False, blocks=None):
    """Give per-thread allocations in `s` their constant sizes (with the lets
    in scope substituted; the largest over the blocks of a constant grid),
    checking their store_in memory type."""
    class M(IRMutator):
        def __init__(m):
            m.lets = dict(lets)

        def visit_LetStmt(m, let):
            m.lets[let.name] = substitute(m.lets, let.value)
            return m.generic(let)

        def visit_Allocate(m, a):
            info = buffers.get(a.name)
            who = info[0] if info else a.name
            if info and info[1] == MemoryType.GPUShared and inside_thread:
                raise CompileError(f"Func {who} is stored in GPUShared memory (store_in), but "
                                   f"it is computed inside a GPU thread loop (per thread); "
                                   f"compute it at a gpu_blocks loop of its consumer")
            size = _constant_size(simplify(substitute(m.lets, a.size)), blocks or {})
            if not isinstance(size, E.Const):
                raise CompileError(f"Func {who} is allocated inside a GPU kernel with a size "
                                   f"that is not a constant ({expr_to_str(size)}); bound() "
                                   f"its region")
            return S.Allocate(a.name, a.type, size, m.mutate(a.body))
    return M().mutate(s)


def _kernel_args(body, local_buffers) -> list:
    """Buffers used (not allocated) in `body`, then free scalars, in order of use."""
    buffers, scalars = {}, {}
    defined = set(local_buffers)

    class V(IRVisitor):
        def __init__(self):
            self.bound = []

        def visit_LetStmt(self, s):
            self.visit(s.value)
            self.bound.append(s.name)
            self.visit(s.body)
            self.bound.pop()

        def visit_Let(self, e):
            self.visit(e.value)
            self.bound.append(e.name)
            self.visit(e.body)
            self.bound.pop()

        def visit_For(self, s):
            self.visit(s.min)
            self.visit(s.extent)
            self.bound.append(s.name)
            self.visit(s.body)
            self.bound.pop()

        def visit_Allocate(self, s):
            self.visit(s.size)
            defined.add(s.name)
            self.visit(s.body)

        def visit_Variable(self, e):
            if e.name not in self.bound and e.name not in scalars:
                scalars[e.name] = e.type

        def visit_Load(self, e):
            self.visit(e.index)
            if e.buffer not in defined:
                r = buffers.setdefault(e.buffer, [e.type, False, False])
                r[1] = True

        def visit_Store(self, s):
            self.visit(s.value)
            self.visit(s.index)
            if s.buffer not in defined:
                r = buffers.setdefault(s.buffer, [s.value.type, False, False])
                r[2] = True
    V().visit(body)
    out = [KernelArg(n, t, True, r, w) for n, (t, r, w) in buffers.items()]
    out += [KernelArg(n, t, False) for n, t in scalars.items()]
    return out
