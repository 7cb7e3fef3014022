"""Give vectorized loops a clamp-free fast path (boundary conditions).

`clamp(e, lo, hi)` inside a vectorized loop (repeat_edge and friends) makes
every load a gather. For each vectorized loop this pass finds the clamps
whose argument moves with the loop and whose bounds do not, and emits

    if (every clamped value stays inside [lo, hi] over this loop) {
        the loop with those clamps removed      // dense, vectorizable
    } else {
        the original loop
    }

which is Halide's loop partitioning reduced to a per-loop test: interior
iterations take the fast path, the border ones the exact one. Accepts
flattened IR; lets inside the loop are substituted so the test sees the
indices in terms of the loop variable (CSE shares them again later).
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import (IRMutator, IRVisitor, bound_names, expand_lets, free_variables,
                           substitute)
from ..ir.simplify import simplify
from ..ir.types import i32
from .bounds import Interval, bounds_of_expr


def unswitch_clamps(stmt):
    return _Unswitch().mutate(stmt)


class _Unswitch(IRMutator):
    def visit_For(self, s):
        body = self.mutate(s.body)
        if s.kind != S.ForKind.VECTORIZED:
            return s if body is s.body else S.For(s.name, s.min, s.extent, s.kind, body)
        flat = _inline_lets(body)
        inner_names = bound_names(flat) | {s.name}
        clamps = _find_clamps(flat, s.name, inner_names)
        if not clamps:
            return s if body is s.body else S.For(s.name, s.min, s.extent, s.kind, body)
        scope = {s.name: Interval(s.min, E.Sub(E.Add(s.min, s.extent), E.Const(i32, 1)))}
        lows, highs, proven = {}, {}, set()      # bound -> the extreme values to test
        for c in clamps:
            e, lo, hi = c
            iv = bounds_of_expr(e, scope)
            if not iv.is_bounded():
                continue
            _keep_extreme(lows.setdefault(lo, []), iv.min, -1)
            _keep_extreme(highs.setdefault(hi, []), iv.max, 1)
            proven.add(c)
        # one test per bound and distinct base: a 5-tap stencil's clamps of
        # x-2 .. x+2 need x-2 >= lo and x+2 <= hi, not ten comparisons
        conds = [E.GE(v, lo) for lo, vs in lows.items() for v in vs] + \
                [E.LE(v, hi) for hi, vs in highs.items() for v in vs]
        if not conds:
            return S.For(s.name, s.min, s.extent, s.kind, body)
        fast = _RemoveClamps(proven).mutate(flat)
        cond = conds[0]
        for c in conds[1:]:
            cond = E.And(cond, c)
        return S.IfThenElse(simplify(cond), S.For(s.name, s.min, s.extent, s.kind, fast),
                            S.For(s.name, s.min, s.extent, s.kind, body))


def _keep_extreme(kept, value, sign):
    """Add `value` to `kept` unless a kept value is provably at least as
    extreme (sign -1: smaller, 1: larger); drop those it dominates."""
    def dominates(a, b):            # a is at least as extreme as b
        d = simplify(E.Sub(a, b))
        return isinstance(d, E.Const) and d.value * sign >= 0
    if any(dominates(k, value) for k in kept):
        return
    kept[:] = [k for k in kept if not dominates(value, k)] + [value]


def _inline_lets(stmt):
    """Substitute LetStmts and expression lets throughout `stmt`."""
    class M(IRMutator):
        def __init__(self):
            self.env = {}

        def visit_LetStmt(self, s):
            v = expand_lets(substitute(self.env, s.value))
            self.env[s.name] = v
            out = self.mutate(s.body)
            del self.env[s.name]
            return out

        def generic(self, node):
            if isinstance(node, E.Expr):
                return expand_lets(substitute(self.env, node))
            return super().generic(node)
    return M().mutate(stmt)


def _is_clamp(n):
    """max(min(e, hi), lo) -> (e, lo, hi), else None."""
    if isinstance(n, E.Max) and isinstance(n.a, E.Min) and n.type == i32:
        return n.a.a, n.b, n.a.b
    return None


def _find_clamps(stmt, var, inner):
    found = []

    class V(IRVisitor):
        def visit_Max(self, n):
            c = _is_clamp(n)
            if c is not None:
                e, lo, hi = c
                fe = free_variables(e)
                # e must move with this loop only: a loop nested inside it
                # would leave the test depending on a variable not yet defined.
                if var in fe and not (fe & (inner - {var})) and \
                        not (free_variables(lo) | free_variables(hi)) & inner:
                    if c not in found:
                        found.append(c)
            self.generic(n)
    V().visit(stmt)
    return found


class _RemoveClamps(IRMutator):
    """Replace exactly the clamps proven inactive by their argument."""

    def __init__(self, proven):
        self.proven = proven

    def visit_Max(self, n):
        c = _is_clamp(n)
        if c is not None and c in self.proven:
            return self.mutate(c[0])
        return self.generic(n)
