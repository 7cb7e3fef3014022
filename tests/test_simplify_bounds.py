"""Soundness of the simplifier and of interval bounds, by random testing.

Oracle: the reference interpreter's expression evaluator. A simplified
expression must evaluate to the same value as the original; the interval
computed for an expression must contain every value it takes.
"""
import numpy as np
from hypothesis import given, settings, strategies as st

from halo.interp.evaluate import ExprEvaluator
from halo.ir import expr as E
from halo.ir.simplify import simplify
from halo.ir.types import i32, u8, i16
from halo.lower.bounds import Interval, bounds_of_expr

VARS = ["x", "y", "z"]
EV = ExprEvaluator(None)


def leaves(t):
    return st.one_of(
        st.integers(-20, 20).map(lambda v: E.Const(t, E.wrap_value(v, t))),
        st.sampled_from(VARS).map(lambda n: E.Variable(t, n)),
    )


def exprs(t=i32, allow_select=True):
    def extend(children):
        ops = [E.Add, E.Sub, E.Mul, E.Div, E.Mod, E.Min, E.Max]
        bin_ = st.builds(lambda op, a, b: op(a, b), st.sampled_from(ops), children, children)
        cmp = st.builds(lambda op, a, b, c, d: E.Select(op(a, b), c, d),
                        st.sampled_from([E.LT, E.LE, E.EQ, E.NE]),
                        children, children, children, children)
        return st.one_of(bin_, cmp) if allow_select else bin_
    return st.recursive(leaves(t), extend, max_leaves=12)


def evaluate(e, env):
    return int(EV.eval(e, {k: np.asarray(v, dtype=e.type.numpy_dtype() if k in VARS else None)
                           for k, v in env.items()}))


envs = st.fixed_dictionaries({v: st.integers(-50, 50) for v in VARS})


@settings(max_examples=400, deadline=None)
@given(exprs(), envs)
def test_simplify_preserves_value_int32(e, env):
    assert evaluate(simplify(e), env) == evaluate(e, env)


@settings(max_examples=300, deadline=None)
@given(exprs(u8), st.fixed_dictionaries({v: st.integers(0, 255) for v in VARS}))
def test_simplify_preserves_value_uint8_wrapping(e, env):
    env8 = {k: np.uint8(v) for k, v in env.items()}
    before = EV.eval(e, {k: np.asarray(v, dtype=np.uint8) for k, v in env8.items()})
    after = EV.eval(simplify(e), {k: np.asarray(v, dtype=np.uint8) for k, v in env8.items()})
    assert int(before) == int(after)


def test_simplify_folds_linear_terms():
    x = E.Variable(i32, "x")
    e = E.Sub(E.Add(x, E.Const(i32, 3)), E.Sub(x, E.Const(i32, 1)))
    assert simplify(e) == E.Const(i32, 4)
    m = E.Min(E.Add(x, E.Const(i32, 1)), E.Add(x, E.Const(i32, -2)))
    assert simplify(m) == E.Sub(x, E.Const(i32, 2))


boxes = st.fixed_dictionaries({v: st.tuples(st.integers(-30, 30), st.integers(0, 12)) for v in VARS})


@settings(max_examples=400, deadline=None)
@given(exprs(), boxes, st.randoms(use_true_random=False))
def test_bounds_contain_every_value(e, box, rnd):
    scope = {v: Interval(E.Const(i32, lo), E.Const(i32, lo + ext)) for v, (lo, ext) in box.items()}
    iv = bounds_of_expr(e, scope)
    lo = simplify(iv.min) if iv.min is not None else None
    hi = simplify(iv.max) if iv.max is not None else None
    for _ in range(25):
        env = {v: rnd.randint(l, l + ext) for v, (l, ext) in box.items()}
        val = evaluate(e, env)
        if lo is not None:
            assert isinstance(lo, E.Const), lo
            assert val >= lo.value, (e, env, val, lo)
        if hi is not None:
            assert isinstance(hi, E.Const), hi
            assert val <= hi.value, (e, env, val, hi)


def test_bounds_of_narrow_types_are_their_range():
    x = E.Variable(i16, "x")
    iv = bounds_of_expr(E.Cast(i32, E.Cast(u8, x)), {})
    assert (simplify(iv.min), simplify(iv.max)) == (E.Const(i32, 0), E.Const(i32, 255))


def test_data_dependent_int32_is_unbounded():
    load = E.Call(i32, "img", (E.Variable(i32, "x"),), E.CallType.IMAGE)
    assert not bounds_of_expr(load, {}).is_bounded()
