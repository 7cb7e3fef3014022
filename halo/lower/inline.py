"""Inline pure Funcs into their callers."""
from __future__ import annotations

from ..ir import expr as E
from ..ir.mutator import IRMutator, substitute


def inline_calls(node, env: dict, inlined: set):
    """Replace calls to Functions named in `inlined` by their definitions.

    Accepts any Expr/Stmt; returns one with no calls to inlined Functions.
    The callee's pure variables become `let`s of the call's arguments, so an
    argument expression is evaluated once.
    """
    if not inlined:
        return node
    return _Inliner(env, inlined).mutate(node)


class _Inliner(IRMutator):
    def __init__(self, env, inlined):
        self.env = env
        self.inlined = inlined
        self.counter = 0

    def visit_Call(self, c):
        c = self.generic(c)
        if c.call_type != E.CallType.FUNC or c.name not in self.inlined:
            return c
        f = self.env[c.name]
        value = f.definitions[0].values[c.value_index]
        value = self.mutate(value)            # the callee may call inlined Funcs too
        self.counter += 1
        mapping, lets = {}, []
        for var, arg in zip(f.pure_args, c.args):
            if isinstance(arg, (E.Variable, E.Const)):
                mapping[var] = arg
            else:
                fresh = f"{f.name}.{var}.i{self.counter}"
                mapping[var] = E.Variable(arg.type, fresh)
                lets.append((fresh, arg))
        body = substitute(mapping, value)
        for name, arg in reversed(lets):
            body = E.Let(name, arg, body)
        return body
