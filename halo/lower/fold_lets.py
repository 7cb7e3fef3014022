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
  in registers (conv_layer's filter tap copies).

`known` gives values of names defined outside `stmt` (the entry point
checks that each argument buffer's innermost stride is 1). Accepts and
produces flattened loop IR (after storage flattening).
"""
from __future__ import annotations

import dataclasses

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, substitute
from ..ir.simplify import _linear, simplify

# Substituted values larger than this (in nodes) stay opaque: the lets of a
# long pipeline would otherwise expand without bound.
_MAX_NODES = 400


def fold_lets(stmt: S.Stmt, known: dict | None = None) -> S.Stmt:
    return _Fold(known or {}).mutate(stmt)


def _nodes(e) -> int:
    n = 1
    for f in ("a", "b", "value", "condition", "true_value", "false_value"):
        c = getattr(e, f, None)
        if isinstance(c, E.Expr):
            n += _nodes(c)
    return n


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
        if not _foldable(e):
            return None
        c = simplify(substitute(self.scope, e))
        return c if _nodes(c) <= _MAX_NODES else None

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

    def decide_minmax(self, e):
        """e with each Min/Max that the constant loop ranges decide replaced
        by the side it takes."""
        if isinstance(e, (E.Min, E.Max)) and _foldable(e):
            a, b = self.decide_minmax(e.a), self.decide_minmax(e.b)
            ca, cb = self.canonical(a), self.canonical(b)
            if ca is not None and cb is not None:
                span = self.linear_range(simplify(E.Sub(cb, ca)))
                if span is not None:
                    if span[0] >= 0:                    # a <= b
                        return a if isinstance(e, E.Min) else b
                    if span[1] <= 0:                    # b <= a
                        return b if isinstance(e, E.Min) else a
            return e if a is e.a and b is e.b else type(e)(a, b)
        if isinstance(e, (E.Add, E.Sub, E.Mul)) and _foldable(e):
            a, b = self.decide_minmax(e.a), self.decide_minmax(e.b)
            return e if a is e.a and b is e.b else type(e)(a, b)
        return e

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

    def visit_LetStmt(self, s):
        value = self.fold(self.decide_minmax(s.value) if self.ranges else s.value)
        canon = self.canonical(value) if not isinstance(value, E.Const) else value
        saved_scope, saved_values = dict(self.scope), dict(self.by_value)
        if canon is not None:
            self.scope[s.name] = canon
            if not isinstance(canon, E.Const):
                self.by_value.setdefault(canon, s.name)
        else:
            self.scope.pop(s.name, None)      # opaque: stays a name
        body = self.mutate(s.body)
        self.scope, self.by_value = saved_scope, saved_values
        if value is s.value and body is s.body:
            return s
        return S.LetStmt(s.name, value, body)

    def visit_For(self, s):
        lo, ext = self.fold(s.min), self.fold(s.extent)
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
        size = self.fold(s.size)
        body = self.mutate(s.body)
        if size is s.size and body is s.body:
            return s
        return dataclasses.replace(s, size=size, body=body)
