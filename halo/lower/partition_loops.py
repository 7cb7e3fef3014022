"""Split innermost serial loops into prologue, steady state and epilogue.

Tails and boundary conditions leave tests in every iteration of a loop:
`min(x*16 + x.min, x.max - 15)` (a ShiftInwards split), `max(min(e, hi), lo)`
(repeat_edge; `unswitch_clamps` turns those into an `if` per vector), guards.
Each holds one way for all but a few iterations at the loop's ends. As
Halide's PartitionLoops does, this pass solves each such test for the range
of the loop variable where it is decided,

    for x in [min, start):     body                   // prologue
    for x in [start, end):     body, tests decided    // steady state
    for x in [end, min + ext): body                   // epilogue

so the steady state has plain induction-variable addressing and no branches.

Tests considered, in loops whose body holds no serial loop of its own (only
vectorized ones, which become vector code): `min`/`max` of an expression
affine in the loop variable and one invariant in the loop (the affine side
is taken), and comparisons of the same form in `if` and `select` conditions
(taken as true). Each gives one inequality on the loop variable; the steady
range is their intersection, computed in 64-bit so that extreme bounds
cannot wrap, and clamped into the loop. The prologue and epilogue keep the
original body, so a wrong guess of which side is likely costs speed, never
correctness.
"""
from __future__ import annotations

import itertools

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, IRVisitor, bound_names, free_variables
from ..ir.simplify import _linear, simplify
from ..ir.types import i32, i64

def partition_loops(stmt):
    return _Partition().mutate(stmt)


class _Partition(IRMutator):
    def __init__(self):
        self.counter = itertools.count()   # per pipeline: same source, same cache key

    def visit_For(self, s):
        body = self.mutate(s.body)
        if s.kind != S.ForKind.SERIAL or s.min.type != i32 or _has_inner_loop(body):
            return s if body is s.body else S.For(s.name, s.min, s.extent, s.kind, body)
        varying = bound_names(body) | {s.name}
        steady, lower, upper = body, [], []
        for _ in range(3):      # deciding a min can make a test around it affine
            tests = _Tests(s.name, varying)
            tests.visit(steady)
            if not tests.decided:
                break
            lower += tests.lower
            upper += tests.upper
            steady = _Decide(tests.decided).mutate(steady)
        if steady is body:
            return s if body is s.body else S.For(s.name, s.min, s.extent, s.kind, body)
        return _three_loops(s, body, steady, lower, upper, next(self.counter))


def _three_loops(s, body, steady, lower, upper, k):
    """prologue [min, start), steady [start, end), epilogue [end, min + extent)."""
    start_name, end_name = f"{s.name}.steady_start{k}", f"{s.name}.steady_end{k}"
    lo64, hi64 = E.Cast(i64, s.min), E.Cast(i64, E.Add(s.min, s.extent))   # [lo64, hi64)
    # balanced trees of the distinct bounds: a loop with hundreds of tests
    # (an input read at hundreds of sites) must not give a chain that deep
    start = E.balanced(E.Max, [lo64] + list(dict.fromkeys(lower)))          # v >= b
    end = E.balanced(E.Min, [hi64] + list(dict.fromkeys(
        E.Add(b, E.Const(i64, 1)) for b in upper)))                         # v <= b
    start = E.Min(start, hi64)
    end = E.Max(end, start)
    start, end = simplify(E.Cast(i32, start)), simplify(E.Cast(i32, end))
    sv = start if isinstance(start, E.Const) else E.Variable(i32, start_name)
    ev = end if isinstance(end, E.Const) else E.Variable(i32, end_name)
    stop = E.Add(s.min, s.extent)
    parts = [(s.min, E.Sub(sv, s.min), body), (sv, E.Sub(ev, sv), steady),
             (ev, E.Sub(stop, ev), body)]
    loops = []
    for lo, ext, b in parts:
        ext = simplify(ext)
        if not (isinstance(ext, E.Const) and ext.value <= 0):    # provably empty: dropped
            loops.append(S.For(s.name, simplify(lo), ext, s.kind, b))
    out = loops[0] if len(loops) == 1 else S.Block(tuple(loops))
    if ev is not end:
        out = S.LetStmt(end_name, end, out)
    if sv is not start:
        out = S.LetStmt(start_name, start, out)
    return out


def _has_inner_loop(stmt) -> bool:
    found = []

    class V(IRVisitor):
        def visit_For(self, s):
            if s.kind != S.ForKind.VECTORIZED:
                found.append(s)
            self.generic(s)
    V().visit(stmt)
    return bool(found)


def _affine(e, var, varying):
    """(c, r) with e == c*var + r, c a nonzero int and r invariant; else None."""
    if e.type != i32:
        return None
    terms, const = _linear(e)
    c, rest = 0, []
    for term, coeff in terms.items():
        if isinstance(term, E.Variable) and term.name == var:
            c = coeff
        elif not _invariant(term, varying):
            return None
        else:
            rest.append((term, coeff))
    if c == 0:
        return None
    r = E.Const(i64, const)
    for term, coeff in rest:
        r = E.Add(r, E.Mul(E.Cast(i64, term), E.Const(i64, coeff)))
    return c, r


def _invariant(e, varying) -> bool:
    """No variable bound in the loop and no memory read (the loop may store)."""
    if free_variables(e) & varying:
        return False
    reads = []

    class V(IRVisitor):
        def visit_Load(self, n):
            reads.append(n)

        def visit_Call(self, n):
            reads.append(n)
    V().visit(e)
    return not reads


def _floor_div(a, k: int):
    return E.Div(a, E.Const(i64, k))        # Euclidean == floor for k > 0


class _Tests(IRVisitor):
    """Collects the decidable tests as bounds on the loop variable:
    `lower` (var >= b) and `upper` (var <= b), 64-bit Exprs."""

    def __init__(self, var, varying):
        self.var, self.varying = var, varying
        self.lower, self.upper = [], []
        self.decided = {}            # node -> the value it takes in the steady state

    def _le(self, a, b) -> bool:
        """Require a <= b of one affine and one invariant side; True if recorded."""
        for side, other, sign in ((a, b, 1), (b, a, -1)):
            aff = _affine(side, self.var, self.varying)
            if aff is None or not _invariant(other, self.varying):
                continue
            c, r = aff
            c, k = c * sign, E.Mul(E.Sub(E.Cast(i64, other), r), E.Const(i64, sign))
            # sign * (c*v + r) <= sign * other, i.e. c*v <= k
            if c > 0:
                self.upper.append(_floor_div(k, c))
            else:
                self.lower.append(E.Sub(E.Const(i64, 0), _floor_div(k, -c)))
            return True
        return False

    def _decide_min_max(self, n, is_min: bool):
        """min/max of an affine and an invariant side: the affine side wins."""
        self.generic(n)
        if n in self.decided:
            return
        for keep, other in ((n.a, n.b), (n.b, n.a)):
            if _affine(keep, self.var, self.varying) and _invariant(other, self.varying):
                if self._le(keep, other) if is_min else self._le(other, keep):
                    self.decided[n] = keep
                return

    def visit_Min(self, n):
        self._decide_min_max(n, True)

    def visit_Max(self, n):
        self._decide_min_max(n, False)

    def _condition(self, c):
        """Record each conjunct of the form affine OP invariant as true."""
        if isinstance(c, E.And):
            self._condition(c.a)
            self._condition(c.b)
            return
        if c in self.decided or c.type.lanes() != 1:
            return
        ok = False
        if isinstance(c, E.LE):
            ok = self._le(c.a, c.b)
        elif isinstance(c, E.GE):
            ok = self._le(c.b, c.a)
        elif isinstance(c, E.LT) and c.a.type == i32:
            ok = self._le(E.Add(c.a, E.Const(i32, 1)), c.b)
        elif isinstance(c, E.GT) and c.a.type == i32:
            ok = self._le(E.Add(c.b, E.Const(i32, 1)), c.a)
        if ok:
            self.decided[c] = E.TRUE

    def visit_IfThenElse(self, s):
        self.generic(s)
        self._condition(s.condition)

    def visit_Select(self, n):
        self.generic(n)
        self._condition(n.condition)


class _Decide(IRMutator):
    """The steady-state body: decided tests replaced by their value."""

    def __init__(self, decided):
        self.decided = decided

    def generic(self, node):
        if isinstance(node, E.Expr) and node in self.decided:
            return self.mutate(self.decided[node])
        return super().generic(node)

    def visit_IfThenElse(self, s):
        cond = self.mutate(s.condition)
        cond = simplify(cond)
        if isinstance(cond, E.Const):
            chosen = s.then_case if cond.value else s.else_case
            return S.Evaluate(E.Const(i32, 0)) if chosen is None else self.mutate(chosen)
        then_case, else_case = self.mutate(s.then_case), self.mutate(s.else_case)
        return S.IfThenElse(cond, then_case, else_case)

    def visit_Select(self, n):
        cond = simplify(self.mutate(n.condition))
        if isinstance(cond, E.Const):
            return self.mutate(n.true_value if cond.value else n.false_value)
        return E.Select(cond, self.mutate(n.true_value), self.mutate(n.false_value))
