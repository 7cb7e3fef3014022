"""Inline reductions: `sum`, `product`, `maximum`, `minimum`, `argmax`, `argmin`.

Each makes an anonymous Func over the free pure Vars of its argument, with
an identity pure definition and one update over the argument's RVars, and
returns a call to it, exactly as Halide does.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as ir
from ..ir.mutator import IRVisitor
from ..ir.types import i32
from .expr import Expr, to_node, cast_node
from .registry import resolve_references


def _free_pure_vars(node):
    refs = resolve_references(node)
    if not refs.rvars:
        raise CompileError("An inline reduction needs an expression that uses at least "
                           "one RVar (an RDom variable)")
    order = []

    class V(IRVisitor):
        def visit_Variable(self, v):
            if v.name in refs.free_vars and v.name not in order:
                order.append(v.name)
    V().visit(node)
    return order, refs


def _reduce(e, name, init_of, combine):
    from .func import Func
    from .var import Var
    n = to_node(e)
    names, _ = _free_pure_vars(n)
    vs = [Var(v) for v in names]
    f = Func(name or combine.__name__)
    t = n.type
    f[tuple(vs)] = Expr._wrap(init_of(t))
    ref = f[tuple(vs)]
    f[tuple(vs)] = Expr._wrap(combine(to_node(ref), n))
    return f[tuple(vs)]


def _const(t, v):
    return ir.Const(t, float(v) if t.is_float() else int(v))


def sum(e, name: str | None = None):
    def add(a, b):
        return ir.Add(a, b)
    return Expr._wrap(to_node(_reduce(e, name or "sum", lambda t: _const(t, 0), add)))


def product(e, name: str | None = None):
    def mul(a, b):
        return ir.Mul(a, b)
    return Expr._wrap(to_node(_reduce(e, name or "product", lambda t: _const(t, 1), mul)))


def _lowest(t):
    return _const(t, float("-inf") if t.is_float() else t.min())


def _highest(t):
    return _const(t, float("inf") if t.is_float() else t.max())


def maximum(e, name: str | None = None):
    def mx(a, b):
        return ir.Max(a, b)
    return Expr._wrap(to_node(_reduce(e, name or "maximum", _lowest, mx)))


def minimum(e, name: str | None = None):
    def mn(a, b):
        return ir.Min(a, b)
    return Expr._wrap(to_node(_reduce(e, name or "minimum", _highest, mn)))


def _arg_reduce(e, name, better_cls, init_value):
    from .func import Func
    from .var import Var
    n = to_node(e)
    names, refs = _free_pure_vars(n)
    rvars = [v for d in refs.rdoms.values() for v in d.vars]
    mins = [b[0] for d in refs.rdoms.values() for b in d.bounds]
    vs = tuple(Var(v) for v in names)
    f = Func(name)
    f[vs] = tuple(Expr._wrap(m) for m in mins) + (Expr._wrap(init_value(n.type)),)
    ref = f[vs]
    best = to_node(ref[len(rvars)])
    better = better_cls(n, best)
    upd = []
    for i, rv in enumerate(rvars):
        upd.append(Expr._wrap(ir.Select(better, ir.Variable(i32, rv), to_node(ref[i]))))
    upd.append(Expr._wrap(ir.Select(better, n, best)))
    f[vs] = tuple(upd)
    r = f[vs]
    return tuple(r[i] for i in range(len(rvars) + 1))


def argmax(e, name: str | None = None):
    """(index..., value) of the first maximum over the RDom."""
    return _arg_reduce(e, name or "argmax", ir.GT, _lowest)


def argmin(e, name: str | None = None):
    """(index..., value) of the first minimum over the RDom."""
    return _arg_reduce(e, name or "argmin", ir.LT, _highest)
