"""Common-subexpression elimination inside each statement's expressions.

Accepts any Stmt; every expression that occurs more than once inside one
expression tree (a Store's value, an index, a let value) is bound once by an
expression `Let` and referred to by name. Both arms of a `select` are always
evaluated in halo, so hoisting out of an arm changes nothing.
"""
from __future__ import annotations

from collections import Counter

from ..ir import expr as E
from ..ir.mutator import IRMutator, expand_lets

_LEAVES = (E.Const, E.Variable)


def common_subexpression_elimination(stmt):
    return _CSEStmt().mutate(stmt)


def cse_expr(e: E.Expr, prefix: str = "t") -> E.Expr:
    # Existing lets are expanded first, so no hoisted expression can refer to
    # a variable bound further in; CSE then re-shares what they shared.
    e = expand_lets(e)
    counts: Counter = Counter()
    order: list = []

    def count(n):
        if isinstance(n, _LEAVES) or n.type.is_handle():
            return
        counts[n] += 1
        if counts[n] > 1:
            return                   # children were counted the first time
        for child in expr_children(n):
            count(child)
        order.append(n)              # post-order: children before parents

    count(e)
    repeated = [n for n in order if counts[n] > 1 and not isinstance(n, E.Let)]
    if not repeated:
        return e
    names = {}
    lets = []
    for i, n in enumerate(repeated):
        value = ReplaceExprs(names).mutate_children(n)
        name = f"{prefix}{i}"
        lets.append((name, value))
        names[n] = E.Variable(n.type, name)
    body = ReplaceExprs(names).mutate(e)
    for name, value in reversed(lets):
        body = E.Let(name, value, body)
    return body


def expr_children(n):
    """The expression operands of node n."""
    out = []
    for f in ("a", "b", "value", "condition", "true_value", "false_value", "index", "base",
              "stride", "body"):
        c = getattr(n, f, None)
        if isinstance(c, E.Expr):
            out.append(c)
    if isinstance(n, E.Call):
        out.extend(n.args)
    return out


class ReplaceExprs(IRMutator):
    """Replaces each expression found in `names` (structural equality)."""

    def __init__(self, names):
        self.names = names

    def mutate(self, node):
        if isinstance(node, E.Expr) and node in self.names:
            return self.names[node]
        return super().mutate(node)

    def mutate_children(self, node):
        return self.generic(node)


class _CSEStmt(IRMutator):
    def __init__(self):
        self.k = 0

    def _fresh(self):
        self.k += 1
        return f"cse{self.k}."

    def visit_Atomic(self, s):
        return s          # the printer matches `buf[i] = buf[i] op e` textually

    def visit_Store(self, s):
        from ..ir import stmt as S
        return S.Store(s.buffer, cse_expr(s.value, self._fresh()),
                       cse_expr(s.index, self._fresh()))

    def visit_LetStmt(self, s):
        from ..ir import stmt as S
        return S.LetStmt(s.name, cse_expr(s.value, self._fresh()), self.mutate(s.body))
