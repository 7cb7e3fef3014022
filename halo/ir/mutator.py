"""Generic traversal of the IR.

`IRMutator.mutate(node)` dispatches to `visit_<ClassName>` when a subclass
defines it and otherwise rebuilds the node from its mutated children. A node
is rebuilt only when a child changed, so an unchanged tree comes back as the
same object (cheap "(unchanged)" logging and fixpoint loops).
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

from .expr import Expr
from .stmt import Stmt


@lru_cache(maxsize=None)
def _fields(cls):
    return tuple(f.name for f in dataclasses.fields(cls))


def _is_ir(v):
    return isinstance(v, (Expr, Stmt))


class IRMutator:
    def mutate(self, node):
        if node is None:
            return None
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is not None:
            return method(node)
        return self.generic(node)

    def generic(self, node):
        changed = False
        values = []
        for name in _fields(type(node)):
            v = getattr(node, name)
            nv = self._mutate_field(v)
            if nv is not v:
                changed = True
            values.append(nv)
        if not changed:
            return node
        return type(node)(*values)

    def _mutate_field(self, v):
        if _is_ir(v):
            return self.mutate(v)
        if isinstance(v, tuple) and v and any(_is_ir(x) or isinstance(x, tuple) for x in v):
            out = tuple(self._mutate_field(x) for x in v)
            if all(a is b for a, b in zip(out, v)):
                return v
            return out
        return v


class IRVisitor:
    """Read-only traversal: override `visit_<ClassName>`, call `generic`."""

    def visit(self, node):
        if node is None:
            return
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is not None:
            method(node)
        else:
            self.generic(node)

    def generic(self, node):
        for name in _fields(type(node)):
            self._visit_field(getattr(node, name))

    def _visit_field(self, v):
        if _is_ir(v):
            self.visit(v)
        elif isinstance(v, tuple):
            for x in v:
                self._visit_field(x)


def substitute(mapping: dict, node):
    """Replace `Variable`s named in `mapping` by the given Exprs."""
    if not mapping:
        return node
    return _Substitute(mapping).mutate(node)


class _Substitute(IRMutator):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Variable(self, v):
        return self.mapping.get(v.name, v)


def free_variables(node) -> set:
    """Names of all Variables referenced in `node`."""
    found = set()

    class V(IRVisitor):
        def visit_Variable(self, v):
            found.add(v.name)
    V().visit(node)
    return found


def split_invariant_lets(body, varying, pinned=lambda value: False):
    """(the leading lets of `body` that use none of the names in `varying`
    nor an earlier varying let, and are not `pinned(value)`, as (name,
    value) pairs; the body with only the other leading lets left on it)."""
    from .stmt import LetStmt
    hoisted, kept, varying = [], [], set(varying)
    while isinstance(body, LetStmt):
        if free_variables(body.value) & varying or pinned(body.value):
            varying.add(body.name)
            kept.append((body.name, body.value))
        else:
            hoisted.append((body.name, body.value))
        body = body.body
    for name, value in reversed(kept):
        body = LetStmt(name, value, body)
    return hoisted, body


def bound_names(node) -> set:
    """Names bound inside `node`: loop variables and (statement or
    expression) lets. Inside a loop body, these are what vary with it."""
    names = set()

    class V(IRVisitor):
        def visit_For(self, s):
            names.add(s.name)
            self.generic(s)

        def visit_LetStmt(self, s):
            names.add(s.name)
            self.generic(s)

        def visit_Let(self, e):
            names.add(e.name)
            self.generic(e)
    V().visit(node)
    return names


def calls_in(node, call_type=None) -> list:
    """All Call nodes in `node` (optionally of one CallType), in visit order."""
    found = []

    class V(IRVisitor):
        def visit_Call(self, c):
            if call_type is None or c.call_type == call_type:
                found.append(c)
            self.generic(c)
    V().visit(node)
    return found


def expand_lets(node):
    """Substitute every expression `Let` into its body (for analyses that
    need to see the full expression, such as bounds inference)."""
    return _ExpandLets().mutate(node)


class _ExpandLets(IRMutator):
    def visit_Let(self, e):
        value = self.mutate(e.value)
        return self.mutate(substitute({e.name: value}, e.body))
