"""Make vectorized loops innermost, as Halide's lockstep vector semantics allow.

Vectorizing a loop that contains another loop means every step of the
inner loop runs for all lanes at once. That is the same as interchanging
the two loops, and C compilers only vectorize innermost loops: e.g. an IIR
filter `vectorize(x)` around a serial recursion over y. This pass moves a
vectorized loop inward past perfectly nested serial loops whose bounds do
not depend on it (lets in between move with it, or above it when they do not
use it). Accepts and produces the loop nest (any phase before codegen).
"""
from __future__ import annotations

from ..ir import stmt as S
from ..ir.mutator import IRMutator, free_variables


def sink_vectorized_loops(stmt):
    return _Sink().mutate(stmt)


class _Sink(IRMutator):
    def visit_For(self, s):
        body = self.mutate(s.body)
        s = s if body is s.body else S.For(s.name, s.min, s.extent, s.kind, body)
        if s.kind != S.ForKind.VECTORIZED:
            return s
        return _sink(s)


def _sink(loop):
    """Interchange `loop` (vectorized) with the loop directly inside it."""
    lets, inner = [], loop.body
    while isinstance(inner, S.LetStmt):
        lets.append((inner.name, inner.value))
        inner = inner.body
    if not isinstance(inner, S.For) or inner.kind in (S.ForKind.PARALLEL, S.ForKind.VECTORIZED):
        return loop
    varying = {loop.name}
    for name, value in lets:
        if free_variables(value) & varying:
            varying.add(name)
    if (free_variables(inner.min) | free_variables(inner.extent)) & varying:
        return loop
    outside = [(n, v) for n, v in lets if n not in varying]
    inside = [(n, v) for n, v in lets if n in varying]
    body = inner.body
    for n, v in reversed(inside):
        body = S.LetStmt(n, v, body)
    moved = _sink(S.For(loop.name, loop.min, loop.extent, loop.kind, body))
    out = S.For(inner.name, inner.min, inner.extent, inner.kind, moved)
    for n, v in reversed(outside):
        out = S.LetStmt(n, v, out)
    return out
