"""Explicit SIMD for simple vectorized loops: GCC/Clang vector extensions.

A `vectorized` loop of constant extent N (a power of two) whose body is a
few lets and one Store is printed as straight-line vector code instead of
an `omp simd` loop: every value that varies with the loop variable is a
`T __attribute__((vector_size(N * sizeof(T))))` value, dense loads and the
store are unaligned vector moves (memcpy), values that do not vary are
scalars broadcast where a vector needs them. This is what Halide emits for
such a loop (`ramp` loads, vector arithmetic). Left to the compiler's
auto-vectorizer, a 16-lane uint16 loop that widens to uint32 runs as two
half-width halves (its vector length follows the narrowest type).

Handled in the varying part: the loop variable, dense loads (stride 1),
+ - *, float division, unsigned division by a non-zero constant, numeric
casts. Anything else (a gather, a select, a call, a signed integer
division with Halide's rounding, control flow) returns False and the loop
is printed as before. Lanes run in lockstep, as Halide defines vectors:
all loads happen before the store.
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import free_variables, substitute

MAX_VECTOR_BYTES = 256          # 4 AVX-512 registers: larger is no win


def print_vector_loop(p, loop) -> bool:
    """Print `loop` as explicit vector code with printer `p`; False (and
    nothing printed) when the loop is not of the handled form."""
    plan = _plan(loop)
    if plan is None:
        return False
    lanes, store, uniform_lets = plan
    saved_names, saved_lines, saved_indent = dict(p.names), len(p.lines), p.indent
    saved_pre = p.pre
    try:
        _emit(p, loop, lanes, store, uniform_lets)
    except _NotHandled:
        del p.lines[saved_lines:]
        p.names, p.indent, p.pre = saved_names, saved_indent, saved_pre
        return False
    p.names = saved_names
    return True


class _NotHandled(Exception):
    pass


def _plan(loop):
    if not isinstance(loop.extent, E.Const):
        return None
    lanes = loop.extent.value
    if lanes < 2 or lanes & (lanes - 1):
        return None
    body, uniform, varying = loop.body, [], {}
    while isinstance(body, S.LetStmt):
        deps = free_variables(body.value) & ({loop.name} | set(varying))
        if deps:
            varying[body.name] = substitute(varying, body.value)
        else:
            uniform.append((body.name, body.value))
        body = body.body
    if not isinstance(body, S.Store):
        return None
    store = S.Store(body.buffer, substitute(varying, body.value), substitute(varying, body.index))
    t = store.value.type
    if t.is_bool() or t.is_handle() or lanes * t.bytes() > MAX_VECTOR_BYTES:
        return None
    if _stride(store.index, loop.name) != 1:
        return None
    return lanes, store, uniform


def _stride(e, v):
    """d e / d v when e is affine in v with a constant coefficient, else None."""
    if isinstance(e, E.Variable):
        return 1 if e.name == v else 0
    if isinstance(e, E.Const):
        return 0
    if v not in free_variables(e):
        return 0
    if isinstance(e, (E.Add, E.Sub)):
        a, b = _stride(e.a, v), _stride(e.b, v)
        if a is None or b is None:
            return None
        return a + b if isinstance(e, E.Add) else a - b
    if isinstance(e, E.Mul):
        if isinstance(e.b, E.Const) and v not in free_variables(e.b):
            a = _stride(e.a, v)
            return None if a is None else a * e.b.value
        if isinstance(e.a, E.Const):
            b = _stride(e.b, v)
            return None if b is None else b * e.a.value
        return None
    if isinstance(e, E.Cast) and e.type.is_int() and (e.value.type.is_int() or
                                                      e.value.type.is_uint()) \
            and e.type.bits() >= e.value.type.bits():
        # index math: int32 -> int64 widening (halo keeps coordinates far
        # from overflow, so the affine form carries over)
        return _stride(e.value, v)
    return None


def _emit(p, loop, lanes, store, uniform_lets):
    p.emit("{")
    p.indent += 1
    lo = p.stmt_expr(loop.min)
    v = p.declare(loop.name)
    p.emit(f"const int32_t {v} = {lo};")       # lane 0
    for name, value in uniform_lets:
        val = p.stmt_expr(value)
        cname = p.declare(name)
        p.emit(f"const {p.ctype(value.type)} {cname} = {val};")
    vp = _VectorPrinter(p, loop.name, lanes)
    saved = p.pre
    p.pre = []
    value = vp.vector(store.value)
    idx = p.expr(store.index)
    for line in p.pre:
        p.emit(line)
    p.pre = saved
    out = p.declare(f"{store.buffer}.vec", "vec")
    p.emit(f"const {vp.vtype(store.value.type)} {out} = {value};")
    p.emit(f"memcpy(&{p.name(store.buffer)}[{idx}], &{out}, sizeof {out});")
    p.indent -= 1
    p.emit("}")


class _VectorPrinter:
    """Prints the varying part of an expression as vector-extension C."""

    def __init__(self, p, var, lanes):
        self.p, self.var, self.lanes = p, var, lanes

    def vtype(self, t) -> str:
        from .c_like import type_suffix
        name = f"halo_{type_suffix(t)}x{self.lanes}"
        if name not in self.p.helpers:
            self.p.helpers[name] = (f"typedef {self.p.ctype(t)} {name} "
                                    f"__attribute__((vector_size({self.lanes * t.bytes()})));")
        return name

    def broadcast(self, t, scalar: str) -> str:
        # vector + scalar of the element type splats it (no helper function:
        # passing wide vectors by value warns about the ABI without -mavx512f)
        return f"(({self.vtype(t)}){{0}} + ({self.p.ctype(t)})({scalar}))"

    def varies(self, e) -> bool:
        return self.var in free_variables(e)

    def vector(self, e) -> str:
        t = e.type
        if t.is_bool() or t.is_handle():
            raise _NotHandled
        if not self.varies(e):
            return self.broadcast(t, self.p.expr(e))
        if isinstance(e, E.Let):
            if self.varies(e.value):
                return self.vector(substitute({e.name: e.value}, e.body))
            value = self.p.expr(e.value)            # uniform (CSE): a scalar
            self.p.pre.append(f"const {self.p.ctype(e.value.type)} "
                              f"{self.p.declare(e.name)} = {value};")
            return self.vector(e.body)
        if isinstance(e, E.Variable) and e.name == self.var:
            vt = self.vtype(t)
            iota = ", ".join(str(i) for i in range(self.lanes))
            return f"({self.broadcast(t, self.p.name(e.name))} + ({vt}){{{iota}}})"
        if isinstance(e, E.Load):
            if _stride(e.index, self.var) != 1:
                raise _NotHandled            # a gather: leave it to the loop
            vt = self.vtype(t)
            tmp = self.p.declare(f"{e.buffer}.vload{len(self.p.used)}", "vload")
            self.p.pre.append(f"{vt} {tmp};")
            self.p.pre.append(f"memcpy(&{tmp}, &{self.p.name(e.buffer)}[{self.p.expr(e.index)}], "
                              f"sizeof {tmp});")
            return tmp
        if isinstance(e, (E.Add, E.Sub, E.Mul)):
            op = {E.Add: "+", E.Sub: "-", E.Mul: "*"}[type(e)]
            return f"({self.vector(e.a)} {op} {self.vector(e.b)})"
        if isinstance(e, E.Div):
            divisor = e.b
            if not (t.is_float() or (t.is_uint() and isinstance(divisor, E.Const)
                                     and divisor.value != 0)):
                raise _NotHandled            # Halide's signed rounding, or / 0
            if self.varies(divisor):
                raise _NotHandled
            return f"({self.vector(e.a)} / {self.broadcast(t, self.p.expr(divisor))})"
        if isinstance(e, E.Cast):
            src = e.value.type
            if src.is_bool() or src.is_handle():
                raise _NotHandled
            if src == t:
                return self.vector(e.value)
            return f"__builtin_convertvector({self.vector(e.value)}, {self.vtype(t)})"
        raise _NotHandled
