"""Fold region lets to constants and to equal earlier lets.

Bounds inference defines a compute_at producer's region with lets such as
`f.s1.x.min = min(xo*5 + x.min, x.max - 4)` and `f.s1.x.max = min(...) + 4`;
each is simplified alone, so the loop extent `f.s1.x.max - f.s1.x.min + 1`
and the allocation size stay symbolic although they are constants (5).
Halide's simplifier sees through such lets; this pass does the same
locally: every integer let, loop bound and allocation size is rewritten
with the in-scope lets substituted and simplified, and becomes

* a constant, when that folds to one: the C compiler then fully unrolls
  `unroll`ed loops, keeps small constant-size buffers on the stack (in
  registers, after unrolling) and vectorizes with known trip counts;
* a constant wherever a let of constant value is used (so that index
  math sees the dense innermost stride `b.stride.0 = 1`);
* a reference to an earlier let with the same value (value numbering):
  `f.min.0 = min(min(a, b), a)` becomes `f.min.0 = f.s1.x.min` when that
  is what it equals, so that indices like `x - f.min.0` cancel in C;
* free of the `min`/`max` that loops of constant range decide: a
  ShiftInwards split of a constant-extent loop, `min(c*16 + c.min,
  c.max - 15)` in an unrolled c of 4, is `c*16 + c.min` for every c
  (c.max - c.min = 63 once the lets are substituted), and a staging
  buffer indexed that way has constant offsets the C compiler can keep
  in registers (conv_layer's filter tap copies);
* free of the comparisons those ranges settle, in `if`s, selects and
  lets alike: a bounded output's boundary-condition test and a channel
  `select(c < 3, ...)` under an unrolled c of 3 go away.

`known` gives values of names defined outside `stmt` (the entry point
checks that each argument buffer's innermost stride is 1); `outer_lets`
are the lets that will be wrapped around `stmt` (the output's bounds,
root regions): those that fold to constants join `known`. An output with
`bound()` has constant loop bounds, and those constants must reach the
loops themselves, since a C compiler cannot propagate a constant into
the OpenMP-outlined function of a parallel loop. Accepts and produces
flattened loop IR (after storage flattening).
"""
from __future__ import annotations

import dataclasses

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, substitute
from ..ir.simplify import _linear, simplify
from ..ir.types import i32

# Substituted values larger than this (in nodes) stay opaque: the lets of a
# long pipeline would otherwise expand without bound.
_MAX_NODES = 400


def fold_lets(stmt: S.Stmt, known: dict | None = None, outer_lets=()) -> S.Stmt:
    fold = _Fold(known or {})
    for name, value in outer_lets:
        if isinstance(value, E.Expr):        # not the "__asserts__" entries
            # only the constants: substituting the symbolic region lets of a
            # long pipeline would make every canonical form huge
            value = fold.fold(value)
            if isinstance(value, E.Const):
                fold.scope[name] = value
    return fold.mutate(stmt)


def _nodes(e, limit=None) -> int:
    """Nodes of e (counting stops a little past `limit`)."""
    n, stack = 0, [e]
    while stack:
        x = stack.pop()
        n += 1
        if limit is not None and n > limit:
            break
        for f in ("a", "b", "value", "condition", "true_value", "false_value"):
            c = getattr(x, f, None)
            if isinstance(c, E.Expr):
                stack.append(c)
    return n


def _signed_index(t) -> bool:
    return t.is_scalar() and t.is_int() and t.bits() >= 32


_INDEX_OPS = (E.Add, E.Sub, E.Mul, E.Min, E.Max)


def _index_math(e, budget=64) -> bool:
    """Whether e is small integer index arithmetic (what linear_range can
    decide): variables and constants under + - * min max, no loads."""
    stack = [e]
    while stack:
        n = stack.pop()
        budget -= 1
        if budget < 0:
            return False
        if isinstance(n, _INDEX_OPS):
            stack += (n.a, n.b)
        elif isinstance(n, E.Cast):
            if not (n.value.type.is_int() or n.value.type.is_uint()):
                return False
            stack.append(n.value)
        elif not isinstance(n, (E.Variable, E.Const)):
            return False
    return True


def _settle(e):
    """A boolean combination (and, or, not) whose operand became a
    constant, folded; anything else as it is."""
    if isinstance(e, (E.And, E.Or, E.Not)) and any(
            isinstance(getattr(e, f, None), E.Const) for f in ("a", "b")):
        return simplify(e)
    return e


def _foldable(e) -> bool:
    t = e.type
    return t.is_scalar() and (t.is_int() or t.is_uint()) and not t.is_bool() \
        and not isinstance(e, E.Const)


class _Fold(IRMutator):
    def __init__(self, known):
        self.scope = dict(known)  # let name -> its value in terms of opaque names
        self.by_value = {}    # that value -> the name of the first let with it
        self.ranges = {}      # loop variable -> (min, max), constants

    def canonical(self, e):
        """e with the lets in scope substituted, simplified (None if too big)."""
        if not _foldable(e) or _nodes(e, _MAX_NODES) > _MAX_NODES:
            return None       # (simplifying a huge value may recurse past Python's limit)
        c = simplify(substitute(self.scope, e))
        return c if _nodes(c, _MAX_NODES) <= _MAX_NODES else None

    def fold(self, e):
        c = self.canonical(e)
        if c is None:
            return e
        if isinstance(c, E.Const):
            return c
        name = self.by_value.get(c)
        if name is not None and not (isinstance(e, E.Variable) and e.name == name):
            return E.Variable(e.type, name)
        return e

    def visit_Variable(self, v):
        c = self.scope.get(v.name)
        return c if isinstance(c, E.Const) and c.type == v.type else v

    def decide(self, e):
        """e, a scalar integer Min/Max or comparison, replaced by the side or
        the truth value that the constant loop ranges settle."""
        if e.a.type != e.b.type or not _signed_index(e.a.type):
            return e
        both_const = isinstance(e.a, E.Const) and isinstance(e.b, E.Const)
        if not both_const and not (self.ranges and _index_math(e.a) and _index_math(e.b)):
            return e                  # (not worth canonical(), which is not free)
        ca, cb = self.settled(e.a), self.settled(e.b)
        if ca is None or cb is None:
            return e
        span = self.linear_range(simplify(E.Sub(cb, ca)))     # range of b - a
        if span is None:
            return e
        lo, hi = span
        if isinstance(e, (E.Min, E.Max)):
            if lo >= 0:                                   # a <= b
                return e.a if isinstance(e, E.Min) else e.b
            if hi <= 0:                                   # b <= a
                return e.b if isinstance(e, E.Min) else e.a
            return e
        true, false = {E.LT: (lo > 0, hi <= 0), E.LE: (lo >= 0, hi < 0),
                       E.GT: (hi < 0, lo >= 0), E.GE: (hi <= 0, lo > 0),
                       E.EQ: (lo == hi == 0, lo > 0 or hi < 0),
                       E.NE: (lo > 0 or hi < 0, lo == hi == 0)}[type(e)]
        return E.Const(e.type, 1) if true else E.Const(e.type, 0) if false else e

    def settled(self, e):
        return e if isinstance(e, E.Const) else self.canonical(e)

    def visit_Min(self, e):
        return self.decide(self.generic(e))

    visit_Max = visit_EQ = visit_NE = visit_LT = visit_LE = visit_GT = visit_GE = visit_Min

    def visit_And(self, e):
        return _settle(self.generic(e))

    visit_Or = visit_Not = visit_And

    def visit_Select(self, e):
        e = self.generic(e)
        if isinstance(e.condition, E.Const):
            return e.true_value if e.condition.value else e.false_value
        return e

    def visit_IfThenElse(self, s):
        cond = _settle(self.mutate(s.condition))
        if isinstance(cond, E.Const):
            if cond.value:
                return self.mutate(s.then_case)
            return self.mutate(s.else_case) if s.else_case is not None \
                else S.Evaluate(E.Const(i32, 0))
        then, other = self.mutate(s.then_case), self.mutate(s.else_case)
        if cond is s.condition and then is s.then_case and other is s.else_case:
            return s
        return S.IfThenElse(cond, then, other)

    def linear_range(self, d):
        """(lo, hi) of d, linear in loop variables of constant range; None
        if d is anything else."""
        terms, lo = _linear(d)
        hi = lo
        for t, k in terms.items():
            if not isinstance(t, E.Variable) or t.name not in self.ranges:
                return None
            a, b = (k * r for r in self.ranges[t.name])
            lo, hi = lo + min(a, b), hi + max(a, b)
        return lo, hi

    def bind(self, name, value):
        """Enter the let `name = value` (already folded) into the scope."""
        canon = self.canonical(value) if not isinstance(value, E.Const) else value
        if canon is not None:
            self.scope[name] = canon
            if not isinstance(canon, E.Const):
                self.by_value.setdefault(canon, name)
        else:
            self.scope.pop(name, None)        # opaque: stays a name

    def visit_LetStmt(self, s):
        value = self.fold(self.mutate(s.value))
        saved_scope, saved_values = dict(self.scope), dict(self.by_value)
        self.bind(s.name, value)
        body = self.mutate(s.body)
        self.scope, self.by_value = saved_scope, saved_values
        if value is s.value and body is s.body:
            return s
        return S.LetStmt(s.name, value, body)

    def visit_For(self, s):
        lo, ext = self.fold(self.mutate(s.min)), self.fold(self.mutate(s.extent))
        saved_scope = dict(self.scope)
        self.scope.pop(s.name, None)          # the loop variable is opaque
        saved_ranges = dict(self.ranges)
        self.ranges.pop(s.name, None)
        if isinstance(lo, E.Const) and isinstance(ext, E.Const) and ext.value > 0:
            self.ranges[s.name] = (lo.value, lo.value + ext.value - 1)
        body = self.mutate(s.body)
        self.scope, self.ranges = saved_scope, saved_ranges
        if lo is s.min and ext is s.extent and body is s.body:
            return s
        return S.For(s.name, lo, ext, s.kind, body)

    def visit_Allocate(self, s):
        size = self.fold(self.mutate(s.size))
        body = self.mutate(s.body)
        if size is s.size and body is s.body:
            return s
        return dataclasses.replace(s, size=size, body=body)
