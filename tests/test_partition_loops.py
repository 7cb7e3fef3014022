"""Loop partitioning (halo/lower/partition_loops.py): the steady state is
test-free, and every size (empty steady range, exact multiples, tails,
images smaller than one vector) still gives the interpreter's and Halide's
answer."""
from __future__ import annotations

import numpy as np
import pytest

import halo
from halo.ir import expr as E
from halo.ir import stmt as S
from halo.ir.mutator import IRVisitor
from halo.ir.types import i32
from halo.lower.partition_loops import partition_loops

from conftest import check


def _blur_edge(hl, img, vec=8):
    """3-tap repeat_edge blur in x, vectorized: a ShiftInwards min plus clamps."""
    x, y = hl.Var("x"), hl.Var("y")
    c = hl.BoundaryConditions.repeat_edge(img)
    f = hl.Func("blur_edge")
    f[x, y] = c[x - 1, y] + 2 * c[x, y] + c[x + 1, y]
    f.vectorize(x, vec)
    return f


def _rng(shape, dtype=np.int32):
    return np.random.default_rng(7).integers(-1000, 1000, size=shape).astype(dtype)


@pytest.mark.parametrize("w", [3, 8, 13, 16, 37])
def test_repeat_edge_vectorized_every_width(w):
    img = _rng((5, w))
    check(_blur_edge, [w, 5], [img])


def test_flipped_access_negative_coefficient():
    """f(w - 1 - x): the clamp's argument falls as the loop variable rises."""
    img = _rng((4, 29))

    def build(hl, img):
        x, y = hl.Var("x"), hl.Var("y")
        c = hl.BoundaryConditions.repeat_edge(img)
        f = hl.Func("flip")
        f[x, y] = c[28 - x - 2, y] + c[28 - x + 3, y]
        f.vectorize(x, 8)
        return f
    check(build, [29, 4], [img])


def test_guard_with_if_tail_and_unrolled_inner():
    img = _rng((6, 45))

    def build(hl, img):
        x, y, xo, xi = hl.Var("x"), hl.Var("y"), hl.Var("xo"), hl.Var("xi")
        c = hl.BoundaryConditions.constant_exterior(img, 7)
        f = hl.Func("guarded")
        f[x, y] = c[x - 3, y] * 3 + c[x + 4, y]
        f.split(x, xo, xi, 8, hl.TailStrategy.GuardWithIf).vectorize(xi)
        return f
    check(build, [45, 6], [img])


def test_extreme_clamp_bounds_do_not_wrap():
    """min(x, INT32_MAX - 3) and max(x, INT32_MIN + 5): solving for the steady
    range must not overflow 32 bits (it is done in 64)."""
    def build(hl):
        x = hl.Var("x")
        f = hl.Func("extreme")
        f[x] = hl.min(x * 3 + 1, 2**31 - 4) + hl.max(x - 7, -2**31 + 5)
        return f
    check(build, [50])


def _loops(stmt):
    found = []

    class V(IRVisitor):
        def visit_For(self, s):
            found.append(s)
            self.generic(s)
    V().visit(stmt)
    return found


def _has(node, cls):
    hits = []

    class V(IRVisitor):
        def generic(self, n):
            if isinstance(n, cls):
                hits.append(n)
            super().generic(n)
    V().visit(node)
    return bool(hits)


def test_steady_state_has_no_min_and_bounds_are_exact():
    """A hand-built loop: for x in [0, 20): out[x] = in[min(x*4 + 1, 70)].
    The steady range is x <= 17; prologue is empty, epilogue [18, 20)."""
    x = E.Variable(i32, "x")
    idx = E.Min(E.Add(E.Mul(x, E.Const(i32, 4)), E.Const(i32, 1)), E.Const(i32, 70))
    body = S.Store("out", E.Load(i32, "in", idx), x)
    loop = S.For("x", E.Const(i32, 0), E.Const(i32, 20), S.ForKind.SERIAL, body)
    out = partition_loops(loop)
    loops = _loops(out)
    # constant bounds: the empty prologue is dropped, no lets are needed
    assert [(lp.min.value, lp.extent.value) for lp in loops] == [(0, 18), (18, 2)]
    assert not _has(loops[0].body, E.Min)
    assert _has(loops[1].body, E.Min)


def test_symbolic_bounds_give_three_loops():
    """for x in [0, n): in[max(x - 2, 0)] + in[min(x + 3, m)]."""
    x, n, m = E.Variable(i32, "x"), E.Variable(i32, "n"), E.Variable(i32, "m")
    idx = E.Add(E.Max(E.Sub(x, E.Const(i32, 2)), E.Const(i32, 0)),
                E.Min(E.Add(x, E.Const(i32, 3)), m))
    body = S.Store("out", E.Load(i32, "in", idx), x)
    loop = S.For("x", E.Const(i32, 0), n, S.ForKind.SERIAL, body)
    out = partition_loops(loop)
    loops = _loops(out)
    assert len(loops) == 3
    assert not _has(loops[1].body, E.Min) and not _has(loops[1].body, E.Max)
    from halo.interp.evaluate import ExprEvaluator
    ev = ExprEvaluator(None)
    for nv, mv in [(0, 5), (1, 5), (10, 8), (10, 100), (4, -3)]:
        env = {"n": np.int32(nv), "m": np.int32(mv)}
        s = out
        while isinstance(s, S.LetStmt):
            env[s.name] = ev.eval(s.value, env)
            s = s.body
        start = [int(v) for k, v in env.items() if "steady_start" in k][0]
        end = [int(v) for k, v in env.items() if "steady_end" in k][0]
        # steady iff x - 2 >= 0 and x + 3 <= m; the range is exactly those x in [0, n)
        want = [xv for xv in range(nv) if xv >= 2 and xv + 3 <= mv]
        assert list(range(start, end)) == want or (not want and start == end), (nv, mv)
        assert 0 <= start <= end <= max(nv, 0)


def test_loop_that_stores_what_a_test_reads_is_not_partitioned():
    """min(x, in[0]) where the loop writes `in`: the bound is not invariant."""
    x = E.Variable(i32, "x")
    bound = E.Load(i32, "in", E.Const(i32, 0))
    body = S.Store("in", E.Min(x, bound), x)
    loop = S.For("x", E.Const(i32, 0), E.Const(i32, 9), S.ForKind.SERIAL, body)
    assert partition_loops(loop) is loop


def test_gaussian_sliding_window_steady_loops_are_branch_free():
    """The benchmark's sliding-window gaussian: the x loops of both stages
    get a steady state with neither the ShiftInwards min nor the edge test."""
    hl = halo
    inp = hl.ImageParam(hl.Float(32), 2, "input")
    x, y, yo, yi = hl.Var("x"), hl.Var("y"), hl.Var("yo"), hl.Var("yi")
    c = hl.BoundaryConditions.repeat_edge(inp)
    bx, by = hl.Func("gx"), hl.Func("gy")
    bx[x, y] = c[x - 1, y] + c[x, y] + c[x + 1, y]
    by[x, y] = bx[x, y - 1] + bx[x, y] + bx[x, y + 1]
    by.split(y, yo, yi, 16).parallel(yo).vectorize(x, 8)
    bx.store_at(by, yo).compute_at(by, yi).vectorize(x, 8)
    text = hl.Pipeline(by).lowered_stmt()
    assert text.count("steady_start") >= 2
    w, h = 37, 40
    img = np.random.default_rng(3).random((h, w), dtype=np.float32)
    inp.set(hl.Buffer(img))
    got = np.asarray(by.realize([w, h]))
    p = np.pad(img, 1, mode="edge")
    gx = p[:, :-2] + p[:, 1:-1] + p[:, 2:]
    want = gx[:-2] + gx[1:-1] + gx[2:]
    np.testing.assert_allclose(got, want, rtol=1e-6)
