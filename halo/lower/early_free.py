"""Free each heap allocation right after its last use (Halide's EarlyFree).

An `Allocate` scopes its storage over its whole body, and the body of a
root-level allocation holds every later stage of the pipeline: without this
pass, a chain of compute_root Funcs keeps all its intermediates alive to the
end. A freed block is also what the next allocation of the same size
reuses, so a chain's working set stays the size of its widest cut instead of
its sum.

The `Free` goes after the last statement of the allocation's body that
touches the buffer, descending through blocks, lets and nested allocations
(a use inside a loop or an `if` frees after that statement). Allocations
inside vectorized loops are left to their scope (the vector printer owns
those bodies), memoized ones to their cache, and a pipeline with GPU loops
is left alone: its device runtime keys device copies by host address, which
a reused host block would alias.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

from ..ir import stmt as S
from ..ir.mutator import IRMutator, IRVisitor
from .gpu_kernels import _has_gpu_loop


def insert_early_frees(body):
    if _has_gpu_loop(body):
        return body
    return _EarlyFree().mutate(body)


class _EarlyFree(IRMutator):
    def visit_For(self, s):
        return s if s.kind == S.ForKind.VECTORIZED else self.generic(s)

    def visit_Allocate(self, s):
        inner = self.mutate(s.body)
        if not s.memo_key:
            placed = _place_free(inner, s.name)
            if placed is not None:
                inner = placed
        if inner is s.body:
            return s
        return S.Allocate(s.name, s.type, s.size, inner, s.memo_key)


def _place_free(s, name):
    """s with `Free(name)` after its last statement that touches `name`,
    or None when the last use is s itself as a whole (the end of the
    allocation's scope frees it anyway)."""
    if isinstance(s, S.Block):
        stmts = list(s.stmts)
        last = max((i for i, x in enumerate(stmts) if _touches(x, name)), default=None)
        if last is None:
            return None
        inner = _place_free(stmts[last], name)
        if inner is not None:
            stmts[last] = inner
        elif last == len(stmts) - 1:
            return None
        else:
            stmts.insert(last + 1, S.Free(name))
        return S.Block(tuple(stmts))
    if isinstance(s, (S.LetStmt, S.Allocate)):
        inner = _place_free(s.body, name)
        return None if inner is None else dataclasses.replace(s, body=inner)
    return None


def _touches(node, name) -> bool:
    """Whether any IR node below names `name` (a Load, Store, Variable, Call...)."""
    found = []

    class V(IRVisitor):
        def visit(self, n):
            if found or n is None:
                return
            for f in _str_fields(type(n)):
                if getattr(n, f) == name:
                    found.append(n)
                    return
            super().visit(n)
    V().visit(node)
    return bool(found)


@lru_cache(maxsize=None)
def _str_fields(cls):
    return tuple(f.name for f in dataclasses.fields(cls) if f.type in ("str", str))

