"""Assertions that inputs and outputs cover the regions the pipeline touches.

Messages follow Halide's: "Input buffer b0 is accessed at -1, which is
before the min (0) in dimension 0". Each assertion returns its own error
code so callers (and the C ABI) can tell failures apart.
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.types import i32

ERR_BUFFER_BOUNDS = -4
ERR_PARAM_RANGE = -6
ERR_CONSTRAINT = -9   # Halide's halide_error_code_constraint_violated


def _v(name):
    return E.Variable(i32, name)


def region_checks(kind: str, buf: str, user: str, box) -> list:
    """Asserts that [min, max] per dim of `box` lies inside buffer `buf`."""
    out = []
    for i, (lo, hi) in enumerate(box):
        bmin = _v(f"{buf}.min.{i}")
        bmax = E.Sub(E.Add(bmin, _v(f"{buf}.extent.{i}")), E.Const(i32, 1))
        empty = E.LT(hi, lo)
        out.append(S.AssertStmt(
            E.Or(empty, E.GE(lo, bmin)),
            (f"{kind} buffer {user} is accessed at ", lo, ", which is before the min (",
             bmin, f") in dimension {i}"), ERR_BUFFER_BOUNDS))
        out.append(S.AssertStmt(
            E.Or(empty, E.LE(hi, bmax)),
            (f"{kind} buffer {user} is accessed at ", hi, ", which is beyond the max (",
             bmax, f") in dimension {i}"), ERR_BUFFER_BOUNDS))
    return out


def param_checks(params) -> list:
    out = []
    for p in params:
        v = E.Variable(p.type(), p._name)
        from ..lang.expr import to_node, cast_node
        if p.min_value() is not None:
            lo = cast_node(p.type(), to_node(p.min_value()))
            out.append(S.AssertStmt(E.GE(v, lo), (f"Param {p.name()} is ", v,
                                                  ", which is below its minimum ", lo),
                                    ERR_PARAM_RANGE))
        if p.max_value() is not None:
            hi = cast_node(p.type(), to_node(p.max_value()))
            out.append(S.AssertStmt(E.LE(v, hi), (f"Param {p.name()} is ", v,
                                                  ", which is above its maximum ", hi),
                                    ERR_PARAM_RANGE))
    return out


def constraint_checks(buf: str, user: str, constraints: dict) -> list:
    """`ImageParam.dim(i).set_bounds/set_min/set_extent`, checked at run time
    with Halide's message: "Constraint violated: im.extent.0 (5) == 4 (4)"."""
    from ..ir.printer import expr_to_str
    from ..lang.expr import to_node, cast_node
    out = []
    for i, pair in sorted(constraints.items()):
        for what, want in zip(("min", "extent"), pair):
            if want is None:
                continue
            v, w = _v(f"{buf}.{what}.{i}"), cast_node(i32, to_node(want))
            text = str(want) if isinstance(want, int) else expr_to_str(w)
            out.append(S.AssertStmt(E.EQ(v, w), (f"Constraint violated: {user}.{what}.{i} (",
                                                 v, f") == {text} (", w, ")"),
                                    ERR_CONSTRAINT))
    return out
