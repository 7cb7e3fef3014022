"""Exact ranges of affine expressions over predicated reduction domains (isl).

Interval arithmetic treats each RVar independently and ignores
`RDom.where` predicates, so for a triangular domain such as
`r.x + r.y < 10` it finds `r.x + r.y` up to 18 and an input of 10 elements
looks too small (Halide itself reports that false error). Where the RDom's
bounds are constants and an access is affine in its RVars, isl computes the
exact minimum and maximum over the predicated domain; the rest of the
expression keeps interval bounds.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import expr as E
from ..ir.mutator import free_variables
from ..ir.simplify import simplify, _linear


@dataclass
class AffineDomain:
    """A stage's RVars (loop names) with constant bounds and predicates."""
    names: list           # loop variable names, in RDom order
    bounds: list          # (min, extent) as ints
    predicates: list      # halo Exprs over the loop variable names


def make_domain(names, bounds, predicates):
    """An AffineDomain when the bounds are constants; None otherwise."""
    consts = []
    for lo, ext in bounds:
        lo, ext = simplify(lo), simplify(ext)
        if not (isinstance(lo, E.Const) and isinstance(ext, E.Const)):
            return None
        consts.append((lo.value, ext.value))
    return AffineDomain(list(names), consts, list(predicates))


def _ident(i):
    return f"r{i}"


def _affine_text(e, index):
    """isl text for an affine Expr over the domain's variables, or None."""
    terms, const = _linear(simplify(e))
    parts = []
    for term, coeff in terms.items():
        if not (isinstance(term, E.Variable) and term.name in index):
            return None
        parts.append(f"{coeff}*{_ident(index[term.name])}")
    parts.append(str(const))
    return " + ".join(parts)


_CMP = {E.LT: "<", E.LE: "<=", E.GT: ">", E.GE: ">=", E.EQ: "="}


def _constraints(p, index):
    """isl constraints for a predicate; those it cannot express are dropped
    (the domain only grows, so the result stays a sound bound)."""
    if isinstance(p, E.And):
        return _constraints(p.a, index) + _constraints(p.b, index)
    op = _CMP.get(type(p))
    if op is None or not p.a.type.is_int() or p.a.type.bits() < 32:
        return []
    a, b = _affine_text(p.a, index), _affine_text(p.b, index)
    if a is None or b is None:
        return []
    return [f"({a}) {op} ({b})"]


def exact_rvar_range(expr, dom: AffineDomain):
    """(min, max) ints of the RVar-only affine `expr` over `dom`, or None."""
    import islpy as isl
    index = {n: i for i, n in enumerate(dom.names)}
    text = _affine_text(expr, index)
    if text is None:
        return None
    vars_ = ", ".join(_ident(i) for i in range(len(dom.names)))
    cons = [f"{lo} <= {_ident(i)} < {lo + ext}" for i, (lo, ext) in enumerate(dom.bounds)]
    for p in dom.predicates:
        cons += _constraints(p, index)
    try:
        s = isl.Set(f"{{ [{vars_}] : {' and '.join(cons)} }}")
        aff = isl.Aff(f"{{ [{vars_}] -> [({text})] }}")
        lo, hi = s.min_val(aff), s.max_val(aff)
    except isl.Error:
        return None
    if lo.is_nan() or hi.is_nan():      # empty domain: nothing is accessed
        return 1, 0
    if not (lo.is_int() and hi.is_int()):
        return None
    return int(lo.to_python()), int(hi.to_python())


def split_rvar_part(e, rvar_names):
    """Split a linear int Expr into (rvar-only part, rest), or None when an
    RVar appears non-linearly."""
    if not (e.type.is_int() and e.type.bits() >= 32):
        return None
    terms, const = _linear(e)
    rv, rest = {}, {}
    for term, coeff in terms.items():
        used = free_variables(term) & set(rvar_names)
        if isinstance(term, E.Variable) and term.name in rvar_names:
            rv[term] = coeff
        elif used:
            return None
        else:
            rest[term] = coeff
    if not rv:
        return None
    from ..ir.simplify import _build
    return _build(rv, 0, e.type), _build(rest, const, e.type)
