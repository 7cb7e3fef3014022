"""Cheap index math inside GPU kernels (as Halide's GPU code has).

Storage flattening indexes every buffer in int64 with symbolic strides, and
a kernel's block-level lets (tile origin, shared-buffer bounds) repeat each
other in forms the simplifier only sees through after substitution. On a
GPU (and on PoCL, which vectorizes work-items) that costs: 64-bit address
math, strides the compiler cannot see are 1 or 32, and lets no one uses.
`tidy_kernel_body` fixes it in three steps:

* lets: a let whose value, with the lets before it substituted, simplifies
  to something trivial (a constant, a variable plus a constant) or to the
  value of an earlier let, is substituted away; one whose value contains an
  earlier let's value refers to that let (the consumer's tile origin is the
  producer's, not a second `min(...)`); an expression that gets
  smaller with the lets substituted (`(x0 + tid) - x0` -> `tid`, the extent
  of a shared buffer -> 32) takes that form; unused lets are dropped;
* innermost strides: the host entry refuses pipeline buffers whose
  dimension 0 is not dense (halo.codegen.c, as in Halide), and the caller
  passes the strides it knows (constants of internal buffers): they are
  substituted;
* 32-bit indices: every Load/Store index becomes int32. Add, Sub and Mul
  are exact modulo 2^32, so the int32 index equals the int64 one whenever
  the true index fits, which the host checks before each launch
  (`index_range_checks`: each buffer spans at most 2^31-1 elements, as
  Halide requires without its large_buffers feature). Strides that are
  kernel arguments get an int32 twin (`<name>.as_i32`) that the launch
  passes as a truncated value. Indices end in their constant term
  (`base + 1`, `base + 32`), so neighbouring accesses share `base` and the
  device compiler sees consecutive addresses.
"""
from __future__ import annotations

from collections import Counter

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, IRVisitor, bound_names, expand_lets, free_variables, \
    substitute
from ..ir.simplify import _build, _linear, simplify
from ..ir.types import i32, i64
from .cse import common_subexpression_elimination

INT32_MAX = 2**31 - 1
NARROW_SUFFIX = ".as_i32"
# Halide's halide_error_code_buffer_allocation_too_large
ERR_ALLOCATION_TOO_LARGE = -5


def tidy_kernel_body(body: S.Stmt, known: dict) -> S.Stmt:
    """`known`: name -> constant Expr of scalars the kernel may assume
    (dense innermost strides, constant host lets). Shared and per-thread
    allocations have small constant sizes: their indices narrow too."""
    body = expand_lets(body)                   # CSE runs again at the end
    body = substitute(known, body)
    body = _LetValueNumbering().mutate(body)
    body = _drop_unused_lets(body)
    body = _NarrowIndices(bound_names(body)).mutate(body)
    body = _ConstantLast().mutate(simplify(body))
    return common_subexpression_elimination(body)


def narrowed_value(name: str, type_) -> E.Expr | None:
    """The host value of a kernel argument this module introduced, or None."""
    if name.endswith(NARROW_SUFFIX) and type_ == i32:
        return E.Cast(i32, E.Variable(i64, name[:-len(NARROW_SUFFIX)]))
    return None


def index_range_checks(kernel_name: str, func: str, buffers) -> list:
    """Host asserts that every buffer of a kernel is addressable with int32
    indices. `buffers`: (user-facing name, span Expr in elements, int64)."""
    out = []
    for who, span in buffers:
        span = simplify(span)
        if isinstance(span, E.Const) and span.value <= INT32_MAX:
            continue
        out.append(S.AssertStmt(
            E.LE(span, E.Const(i64, INT32_MAX)),
            (f"Buffer {who} spans ", span, f" elements, more than 2^31-1, which GPU kernel "
             f"{kernel_name} (Func {func}) cannot index (32-bit indices, as in Halide)"),
            ERR_ALLOCATION_TOO_LARGE))
    return out


def argument_span(buf: str, dims) -> E.Expr:
    """1 + sum over `dims` of (extent - 1) * |stride| of a pipeline buffer
    argument, from the variables the host entry defines for it."""
    span = E.Const(i64, 1)
    for d in sorted(dims):
        ext = E.Cast(i64, E.Variable(i32, f"{buf}.extent.{d}"))
        st = E.Variable(i64, f"{buf}.stride.{d}")
        step = E.Max(st, E.Sub(E.Const(i64, 0), st))
        span = E.Add(span, E.Mul(E.Max(E.Sub(ext, E.Const(i64, 1)), E.Const(i64, 0)), step))
    return span


# -- lets ----------------------------------------------------------------------------------

def _size(e) -> int:
    n = [0]

    class V(IRVisitor):
        def generic(v, node):
            n[0] += 1
            super().generic(node)
    V().visit(e)
    return n[0]


def _trivial(e) -> bool:
    if isinstance(e, (E.Const, E.Variable)):
        return True
    return (isinstance(e, (E.Add, E.Sub)) and isinstance(e.a, E.Variable) and
            isinstance(e.b, E.Const))


class _LetValueNumbering(IRMutator):
    """See the module docstring (lets). Names are unique in a pipeline, so
    substituting never captures."""

    MAX_EXPANSION = 400        # larger expanded values stay opaque (no blow-up)

    def __init__(self):
        self.full = {}          # kept let in scope -> its value, lets substituted
        self.by_value = {}      # that value -> the kept let's name
        self.replace = {}       # dropped let -> what replaces it

    def visit_LetStmt(self, s):
        value = self._expr(s.value)
        full = simplify(substitute(self.full, value))
        if _trivial(full) and _movable(full):
            self.replace[s.name] = full
            return self.mutate(s.body)
        if full in self.by_value:
            self.replace[s.name] = E.Variable(value.type, self.by_value[full])
            return self.mutate(s.body)
        reused = _Reuse(self.by_value).mutate(full)
        if _size(reused) < _size(value):       # e.g. tile origin + thread id
            value = reused
        saved = dict(self.full), dict(self.by_value)
        if _size(full) <= self.MAX_EXPANSION and _movable(full):
            self.full[s.name] = full
            self.by_value.setdefault(full, s.name)
        body = self.mutate(s.body)
        self.full, self.by_value = saved      # out of scope after the body
        return S.LetStmt(s.name, value, body)

    def _expr(self, e):
        e = simplify(substitute(self.replace, e))
        return _Cancel(self.full).mutate(e) if self.full else e

    def generic(self, node):
        if isinstance(node, E.Expr):
            return self._expr(node)
        return super().generic(node)


def _movable(e) -> bool:
    """Whether `e` means the same anywhere in the kernel: no memory reads
    (a store or barrier in between may change them), and no calls but the
    block and thread ids."""
    ok = [True]

    class V(IRVisitor):
        def visit_Load(v, n):
            ok[0] = False

        def visit_Call(v, n):
            if n.name not in ("gpu_block_id", "gpu_thread_id"):
                ok[0] = False
            v.generic(n)
    V().visit(e)
    return ok[0]


class _Reuse(IRMutator):
    """Top-down: a subexpression equal to a kept let's value becomes that let."""

    def __init__(self, by_value):
        self.by_value = by_value

    def mutate(self, node):
        if isinstance(node, E.Expr) and not isinstance(node, (E.Const, E.Variable)):
            name = self.by_value.get(node)
            if name is not None:
                return E.Variable(node.type, name)
        return super().mutate(node)


class _Cancel(IRMutator):
    """Bottom-up: a Sub/Min/Max/comparison whose operands both use lets takes
    its form with the lets substituted when that is smaller."""

    def __init__(self, full):
        self.full = full

    def generic(self, node):
        node = super().generic(node)
        if isinstance(node, (E.Sub, E.Min, E.Max, E.LT, E.LE, E.GT, E.GE, E.EQ, E.NE)) and \
                self._uses_lets(node.a) and self._uses_lets(node.b):
            expanded = simplify(substitute(self.full, node))
            if _size(expanded) < _size(node):
                return expanded
        return node

    def _uses_lets(self, e):
        return any(n in self.full for n in free_variables(e))


def _drop_unused_lets(body):
    """Without the lets nothing uses (names are unique: count uses globally,
    and a dropped let's value releases the uses it made)."""
    uses, values = Counter(), {}

    class Count(IRVisitor):
        def visit_Variable(v, e):
            uses[e.name] += 1

        def visit_LetStmt(v, s):
            values[s.name] = s.value
            v.generic(s)
    Count().visit(body)
    dead, todo = set(), [n for n in values if uses[n] == 0]
    while todo:
        name = todo.pop()
        dead.add(name)
        for n in _variable_uses(values[name]):
            uses[n] -= 1
            if uses[n] == 0 and n in values and n not in dead:
                todo.append(n)

    class Drop(IRMutator):
        def visit_LetStmt(m, s):
            return m.mutate(s.body) if s.name in dead else m.generic(s)
    return Drop().mutate(body) if dead else body


def _variable_uses(e) -> list:
    found = []

    class V(IRVisitor):
        def visit_Variable(v, n):
            found.append(n.name)
    V().visit(e)
    return found


# -- 32-bit indices ------------------------------------------------------------------------

class _NarrowIndices(IRMutator):
    def __init__(self, bound):
        self.bound = bound      # names the kernel itself binds (lets, loops)

    def visit_Load(self, e):
        return E.Load(e.type, e.buffer, self._narrow(self.mutate(e.index)))

    def visit_Store(self, s):
        return S.Store(s.buffer, self.mutate(s.value), self._narrow(self.mutate(s.index)))

    def _narrow(self, e: E.Expr) -> E.Expr:
        """An int32 expression equal to the int64 `e` modulo 2^32."""
        t = e.type
        if not (t.is_int() and t.bits() == 64):
            return e
        t32 = i32.with_lanes(t.lanes())
        if isinstance(e, (E.Add, E.Sub, E.Mul)):
            return type(e)(self._narrow(e.a), self._narrow(e.b))
        if isinstance(e, E.Const):
            return E.Const(t32, (e.value + 2**31) % 2**32 - 2**31)
        src = e.value.type if isinstance(e, E.Cast) else None
        if src is not None and (src.is_int() or src.is_uint()) and src.bits() <= 32 \
                and not src.is_bool():
            return e.value if src == t32 else E.Cast(t32, e.value)
        if isinstance(e, E.Variable) and t.is_scalar() and e.name not in self.bound:
            return E.Variable(t32, e.name + NARROW_SUFFIX)      # a kernel argument
        if isinstance(e, E.Ramp):
            return E.Ramp(self._narrow(e.base), self._narrow(e.stride), e.lanes)
        if isinstance(e, E.Broadcast):
            return E.Broadcast(self._narrow(e.value), e.lanes)
        return E.Cast(t32, e)                   # truncation is exact modulo 2^32


class _ConstantLast(IRMutator):
    """Load/Store indices as (sum of terms) + constant."""

    def visit_Load(self, e):
        return E.Load(e.type, e.buffer, _constant_last(self.mutate(e.index)))

    def visit_Store(self, s):
        return S.Store(s.buffer, self.mutate(s.value), _constant_last(self.mutate(s.index)))


def _constant_last(e):
    if e.type != i32:
        return e
    terms, c = _linear(e)
    if not terms or not i32.can_represent(c):
        return e
    base = _build(terms, 0, i32)
    return base if c == 0 else E.Add(base, E.Const(i32, c))
