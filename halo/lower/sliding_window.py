"""Sliding window: reuse values computed by earlier iterations of a loop.

When a Func is stored outside the loop it is computed in (`store_root()` or
`store_at` with `compute_at` further in), values computed in one iteration
are still there in the next. If the region needed grows monotonically with
that serial loop in exactly one dimension, each iteration after the first
only computes the new part: its min becomes the previous iteration's max
plus one. Accepts the nest after bounds inference (region lets directly
inside the compute loop); produces the same nest with those lets changed.
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, free_variables, substitute
from ..ir.simplify import simplify, _linear
from ..ir.types import i32


def slide_windows(stmt, env, levels, store_levels, loop_name_of):
    for name, level in levels.items():
        f = env.get(name)
        store = store_levels.get(name)
        if f is None or level.is_root() or level.is_inlined() or store == level:
            continue
        if len(f.definitions) != 1:
            continue                 # updates would be applied twice
        loop = loop_name_of(level, f)
        stmt = _Slide(f, loop).mutate(stmt)
    return stmt


def _c(v):
    return E.Const(i32, v)


class _Slide(IRMutator):
    def __init__(self, f, loop):
        self.f, self.loop = f, loop
        self.current = None          # the For node of the compute loop

    def visit_For(self, s):
        if s.name != self.loop or s.kind not in (S.ForKind.SERIAL, S.ForKind.UNROLLED):
            return self.generic(s)
        body = self._rewrite_lets(s, s.body)
        if body is s.body:
            return s
        return S.For(s.name, s.min, s.extent, s.kind, body)

    def _rewrite_lets(self, loop, body):
        """Find the region lets of f at the top of the loop body and slide one."""
        lets, inner = [], body
        while isinstance(inner, S.LetStmt):
            lets.append((inner.name, inner.value))
            inner = inner.body
        prefix = f"{self.f.name}.s0."
        region = {n: v for n, v in lets if n.startswith(prefix)}
        L = E.Variable(i32, loop.name)
        moving = [v for v in self.f.pure_args
                  if loop.name in free_variables(region.get(f"{prefix}{v}.min", _c(0)))
                  or loop.name in free_variables(region.get(f"{prefix}{v}.max", _c(0)))]
        if len(moving) != 1:
            return body
        v = moving[0]
        lo, hi = region.get(f"{prefix}{v}.min"), region.get(f"{prefix}{v}.max")
        if lo is None or hi is None:
            return body
        prev = {loop.name: E.Sub(L, _c(1))}
        if not (_nondecreasing(lo, substitute(prev, lo)) and
                _nondecreasing(hi, substitute(prev, hi))):
            return body
        new_lo = E.Select(E.GT(L, loop.min),
                          E.Max(lo, E.Add(substitute(prev, hi), _c(1))), lo)
        out = inner
        for n, value in reversed(lets):
            out = S.LetStmt(n, simplify(new_lo) if n == f"{prefix}{v}.min" else value, out)
        return out


def _nondecreasing(now, before) -> bool:
    """now - before is a provably non-negative constant."""
    d = simplify(E.Sub(now, before))
    if isinstance(d, E.Const):
        return d.value >= 0
    terms, const = _linear(d)
    return not terms and const >= 0
