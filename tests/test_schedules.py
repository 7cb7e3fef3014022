"""Scheduling directives: every implemented directive, checked against halo's
schedule-free interpreter and against Halide under the very same schedule.

Each `build(hl, *inputs)` below defines the algorithm *and* its schedule; the
same code runs on `halo` and on `halide` (see conftest.check).
"""
import numpy as np
import pytest

import halo
from conftest import check, halide, needs_halide, realize_halo, realize_interp

pytestmark = needs_halide

TS = ["GuardWithIf", "ShiftInwards", "RoundUp", "Auto"]


def _ts(hl, name):
    return getattr(hl.TailStrategy, name)


def _img(w, h, seed=0, dtype=np.int32):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 100, size=(h, w)).astype(dtype)


def _vec(n, seed=0, dtype=np.int32):
    rng = np.random.default_rng(seed)
    return rng.integers(-50, 50, size=(n,)).astype(dtype)


def _check_interp_only(build, sizes, inputs=()):
    """For schedules Halide rejects at run time (its own bounds errors):
    compare halo's C backend with the interpreter only."""
    return check(build, sizes, inputs, halide_oracle=False)


# -- split and tails ---------------------------------------------------------------------

@pytest.mark.parametrize("tail", TS + ["Predicate", "PredicateLoads", "PredicateStores"])
@pytest.mark.parametrize("n", [19, 5])
def test_split_pure_1d_tails(tail, n):
    # Predicate* tails are used with a vectorized inner loop, as in Halide.
    def build(hl):
        x, xo, xi = hl.Var("x"), hl.Var("xo"), hl.Var("xi")
        f = hl.Func("f")
        f[x] = x * x - 3 * x
        f.split(x, xo, xi, 8, _ts(hl, tail))
        if tail.startswith("Predicate"):
            f.vectorize(xi)
        return f
    # Halide's ShiftInwards/RoundUp needs realize(sizes) to over-allocate when
    # n < 8; realize(sizes) does that in both.
    check(build, [n])


@pytest.mark.parametrize("tail", ["GuardWithIf", "ShiftInwards", "Auto"])
def test_split_2d_with_input_tails(tail):
    inp = _img(13, 7)

    def build(hl, b):
        x, y, yo, yi = hl.Var("x"), hl.Var("y"), hl.Var("yo"), hl.Var("yi")
        f = hl.Func("f")
        f[x, y] = b[x, y] * 2 + y
        f.split(y, yo, yi, 3, _ts(hl, tail))
        return f
    check(build, [13, 7], [inp])


def test_split_roundup_reads_input_past_its_end_like_halide():
    # RoundUp evaluates the output past its end (realize(sizes) over-allocates
    # the output), so an unguarded input is read past its end: Halide refuses,
    # and so does halo, with the same message.
    inp = _img(13, 7)

    def build(hl, b):
        x, y, yo, yi = hl.Var("x"), hl.Var("y"), hl.Var("yo"), hl.Var("yi")
        f = hl.Func("f")
        f[x, y] = b[x, y] * 2 + y
        f.split(y, yo, yi, 3, hl.TailStrategy.RoundUp)
        return f
    msg = "Input buffer b[0-9]* is accessed at 8, which is beyond the max \\(6\\) in dimension 1"
    with pytest.raises(Exception, match=msg):
        build(halide, halide.Buffer(inp)).realize([13, 7])
    with pytest.raises(halo.HalideError, match=msg):
        build(halo, halo.Buffer(inp)).realize([13, 7])


def test_split_roundup_with_boundary_condition_input():
    inp = _img(13, 7)

    def build(hl, b):
        x, y, yo, yi = hl.Var("x"), hl.Var("y"), hl.Var("yo"), hl.Var("yi")
        c = hl.BoundaryConditions.repeat_edge(b)
        f = hl.Func("f")
        f[x, y] = c[x, y] * 2 + y
        f.split(y, yo, yi, 3, hl.TailStrategy.RoundUp)
        return f
    check(build, [13, 7], [inp])


@pytest.mark.parametrize("tail", ["GuardWithIf", "RoundUp", "ShiftInwards"])
def test_split_of_intermediate_with_tail(tail):
    # RoundUp/ShiftInwards on a compute_root intermediate: it computes more
    # (or recomputes) points, never wrong values.
    def build(hl):
        x, xo, xi = hl.Var("x"), hl.Var("xo"), hl.Var("xi")
        f, g = hl.Func("f"), hl.Func("g")
        f[x] = x * 7 + 1
        f.compute_root().split(x, xo, xi, 4, _ts(hl, tail))
        g[x] = f[x - 1] + f[x + 2]
        return g
    check(build, [11])


def test_nested_splits_and_split_of_split_var():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        xo, xi, xio, xii, xoo, xoi = [hl.Var(n) for n in ("xo", "xi", "xio", "xii", "xoo", "xoi")]
        f = hl.Func("f")
        f[x, y] = x * 100 + y
        f.split(x, xo, xi, 6, hl.TailStrategy.GuardWithIf)
        f.split(xi, xio, xii, 4, hl.TailStrategy.GuardWithIf)   # split of the inner
        f.split(xo, xoo, xoi, 2, hl.TailStrategy.GuardWithIf)   # split of the outer
        return f
    check(build, [29, 3])


def _split_of_split(tail):
    def build(hl):
        x, xo, xi, xio, xii = [hl.Var(n) for n in ("x", "xo", "xi", "xio", "xii")]
        f = hl.Func("f")
        f[x] = x * 3 + 1
        t = _ts(hl, tail)
        f.split(x, xo, xi, 8, t).split(xi, xio, xii, 3, t)
        return f
    return build


@pytest.mark.parametrize("tail", ["ShiftInwards", "GuardWithIf", "Auto"])
def test_split_of_split_var_same_tail(tail):
    check(_split_of_split(tail), [21])
    check(_split_of_split(tail), [40])


def test_split_of_split_var_roundup_overruns_output_like_halide():
    # RoundUp of xi (8 -> 9 points) writes past what the output-bounds query
    # asked for: Halide fails at run time with this exact message, and so does halo.
    build = _split_of_split("RoundUp")
    msg = "Output buffer f is accessed at 32, which is beyond the max \\(24\\) in dimension 0"
    with pytest.raises(Exception, match=msg.replace("f is", "f[$0-9]* is")):
        build(halide).realize([21])
    with pytest.raises(halo.HalideError, match=msg):
        build(halo).realize([21])


def test_split_reusing_old_name():
    def build(hl):
        x, xi = hl.Var("x"), hl.Var("xi")
        f = hl.Func("f")
        f[x] = x * 5
        f.split(x, x, xi, 4, hl.TailStrategy.GuardWithIf)
        return f
    check(build, [10])


def test_repeated_split_reusing_old_name():
    # vectorize(x, 4).vectorize(x, 2) and split(x, x, xi).split(x, x, xii) are
    # legal in Halide: the outer may always keep the old dimension's name
    def build(hl):
        x, y, xi, xii = hl.Var("x"), hl.Var("y"), hl.Var("xi"), hl.Var("xii")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = x + 10 * y
        f.compute_root().vectorize(x, 4).vectorize(x, 2).parallel(y, 2).parallel(y, 2)
        g[x, y] = f[x, y] * 3 + f[x + 1, y]
        g.split(x, x, xi, 4, hl.TailStrategy.GuardWithIf).split(
            x, x, xii, 2, hl.TailStrategy.GuardWithIf)
        return g
    check(build, [21, 9])


def test_error_split_reusing_a_retired_name_for_another_dim():
    def build(hl):
        x, xi, xii = hl.Var("x"), hl.Var("xi"), hl.Var("xii")
        f = hl.Func("f")
        f[x] = x
        f.split(x, x, xi, 4).split(xi, x, xii, 2)
        return f
    with pytest.raises(Exception, match="can't create var x using a split"):
        build(halide)
    with pytest.raises(halo.HalideError, match=r"split\(\) would create dimension 'x'"):
        build(halo)


def test_split_with_nonzero_min():
    inp = _vec(30)

    def build(hl, b):
        x, xo, xi = hl.Var("x"), hl.Var("xo"), hl.Var("xi")
        f, g = hl.Func("f"), hl.Func("g")
        f[x] = b[x + 5] * 2
        f.compute_root().split(x, xo, xi, 4)
        g[x] = f[x - 3] + f[x + 3]
        return g
    check(build, [19], [inp])


# -- tile, fuse, reorder, rename ---------------------------------------------------------

@pytest.mark.parametrize("tail", ["GuardWithIf", "ShiftInwards", "Auto"])
@pytest.mark.parametrize("sizes", [[16, 12], [19, 13]])
def test_tile_eight_argument_form(tail, sizes):
    def build(hl):
        x, y, xo, yo, xi, yi = [hl.Var(n) for n in ("x", "y", "xo", "yo", "xi", "yi")]
        f = hl.Func("f")
        f[x, y] = x * 31 + y * 7 + (x * y) % 5
        f.tile(x, y, xo, yo, xi, yi, 8, 4, _ts(hl, tail))
        return f
    check(build, sizes)


@pytest.mark.parametrize("tail", [None, "GuardWithIf"])
def test_tile_six_argument_form(tail):
    def build(hl):
        x, y, xi, yi = [hl.Var(n) for n in ("x", "y", "xi", "yi")]
        f = hl.Func("f")
        f[x, y] = x * 31 - y * 3
        if tail is None:
            f.tile(x, y, xi, yi, 4, 3)
        else:
            f.tile(x, y, xi, yi, 4, 3, _ts(hl, tail))
        return f
    check(build, [11, 10])


def test_tile_loop_order_is_xi_yi_xo_yo():
    x, y, xo, yo, xi, yi = [halo.Var(n) for n in ("x", "y", "xo", "yo", "xi", "yi")]
    f = halo.Func("f")
    f[x, y] = x + y
    f.tile(x, y, xo, yo, xi, yi, 4, 4)
    text = halo.Pipeline(f).loop_nest_text()
    order = [text.index(f".s0.{v},") for v in ("yo", "xo", "yi", "xi")]
    assert order == sorted(order), text


def test_tile_of_blur_consumer_with_input():
    inp = _img(20, 14, dtype=np.uint16)

    def build(hl, b):
        x, y, xo, yo, xi, yi = [hl.Var(n) for n in ("x", "y", "xo", "yo", "xi", "yi")]
        c = hl.BoundaryConditions.repeat_edge(b)
        bx, by = hl.Func("bx"), hl.Func("by")
        bx[x, y] = (c[x - 1, y] + c[x, y] + c[x + 1, y]) // 3
        by[x, y] = (bx[x, y - 1] + bx[x, y] + bx[x, y + 1]) // 3
        by.tile(x, y, xo, yo, xi, yi, 8, 4, hl.TailStrategy.GuardWithIf)
        bx.compute_at(by, xo)
        return by
    check(build, [17, 11], [inp])


@pytest.mark.parametrize("sizes", [[6, 5], [7, 3]])
def test_fuse(sizes):
    def build(hl):
        x, y, xy = hl.Var("x"), hl.Var("y"), hl.Var("xy")
        f = hl.Func("f")
        f[x, y] = x * 10 + y * 3
        f.fuse(x, y, xy)
        return f
    check(build, sizes)


def test_fuse_then_parallel_and_vectorize_split():
    def build(hl):
        x, y, xy, o, i = [hl.Var(n) for n in ("x", "y", "xy", "o", "i")]
        f = hl.Func("f")
        f[x, y] = x * 10 + y * 3
        f.fuse(x, y, xy).parallel(xy)
        g = hl.Func("g")
        g[x, y] = f[x, y] + 1
        g.fuse(x, y, xy).split(xy, o, i, 4, hl.TailStrategy.GuardWithIf).parallel(o).vectorize(i)
        f.compute_root()
        return g
    check(build, [9, 7])


def test_fuse_of_split_vars_and_3d():
    def build(hl):
        x, y, c, xo, xi, t, u = [hl.Var(n) for n in ("x", "y", "c", "xo", "xi", "t", "u")]
        f = hl.Func("f")
        f[x, y, c] = x + 10 * y + 100 * c
        f.split(x, xo, xi, 2, hl.TailStrategy.GuardWithIf)
        f.fuse(xi, xo, t)          # fuses back what was split
        f.fuse(y, c, u).parallel(u)
        return f
    check(build, [5, 3, 4])


@pytest.mark.parametrize("order", [("x", "y", "c"), ("c", "y", "x"), ("y", "c", "x"),
                                   ("c", "x", "y")])
def test_reorder_three_dims(order):
    inp = np.arange(4 * 5 * 3, dtype=np.int32).reshape(3, 5, 4)

    def build(hl, b):
        x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
        v = {"x": x, "y": y, "c": c}
        f = hl.Func("f")
        f[x, y, c] = b[x, y, c] * 3 + x - c
        f.reorder(*[v[n] for n in order])
        return f
    check(build, [4, 5, 3], [inp])


def test_reorder_list_form_and_loop_order():
    def build(hl):
        x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
        f = hl.Func("f")
        f[x, y, c] = x + 2 * y + 3 * c
        if hl is halo:
            f.reorder([c, x, y])
        else:   # Halide 21's Python list overload needs VarOrRVar elements
            f.reorder([hl.VarOrRVar(c), hl.VarOrRVar(x), hl.VarOrRVar(y)])
        return f
    check(build, [3, 4, 2])
    f = build(halo)
    text = halo.Pipeline(f).loop_nest_text()
    order = [text.index(f".s0.{v},") for v in ("y", "x", "c")]
    assert order == sorted(order), text


def test_reorder_of_split_dims():
    def build(hl):
        x, y, xo, xi = hl.Var("x"), hl.Var("y"), hl.Var("xo"), hl.Var("xi")
        f = hl.Func("f")
        f[x, y] = x * 7 + y
        f.split(x, xo, xi, 3, hl.TailStrategy.GuardWithIf).reorder(xo, y, xi)
        return f
    check(build, [10, 4])


def test_rename():
    def build(hl):
        x, y, xx, xo, xi = [hl.Var(n) for n in ("x", "y", "xx", "xo", "xi")]
        f = hl.Func("f")
        f[x, y] = x * 9 - y
        f.rename(x, xx).split(xx, xo, xi, 4, hl.TailStrategy.GuardWithIf).reorder(y, xo)
        return f
    check(build, [10, 3])


def test_rename_is_usable_as_compute_at_level():
    def build(hl):
        x, y, yy = hl.Var("x"), hl.Var("y"), hl.Var("yy")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = x + y
        g[x, y] = f[x, y - 1] + f[x, y + 1]
        g.rename(y, yy)
        f.compute_at(g, yy)
        return g
    check(build, [6, 5])


# -- loop kinds ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["vectorize", "unroll", "parallel"])
def test_kind_without_factor(kind):
    def build(hl):
        x, y, xo, xi = hl.Var("x"), hl.Var("y"), hl.Var("xo"), hl.Var("xi")
        f = hl.Func("f")
        f[x, y] = x * 3 + y * y
        f.split(x, xo, xi, 4, hl.TailStrategy.GuardWithIf)
        getattr(f, kind)(xi if kind != "parallel" else y)
        return f
    check(build, [10, 5])


@pytest.mark.parametrize("kind", ["vectorize", "unroll", "parallel"])
@pytest.mark.parametrize("tail", [None, "GuardWithIf", "RoundUp", "ShiftInwards"])
@pytest.mark.parametrize("n", [13])
def test_kind_with_factor(kind, tail, n):
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = x * 3 - y
        g[x, y] = f[x, y] + f[x + 1, y]
        f.compute_root()
        for h in (f, g):
            args = (x, 4) if tail is None else (x, 4, _ts(hl, tail))
            getattr(h, kind)(*args)
        return g
    check(build, [n, 3])


def test_serial_undoes_parallel_and_vectorize():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        f[x, y] = x - y
        f.parallel(y).vectorize(x, 4).serial(y)
        return f
    check(build, [8, 3])
    text = halo.Pipeline(build(halo)).loop_nest_text()
    assert "parallel" not in text


def test_vectorize_and_unroll_inner_loops_of_a_tile():
    inp = _img(24, 9, dtype=np.float32)

    def build(hl, b):
        x, y, xo, yo, xi, yi = [hl.Var(n) for n in ("x", "y", "xo", "yo", "xi", "yi")]
        f = hl.Func("f")
        f[x, y] = b[x, y] * 0.5 + hl.f32(x) - hl.f32(y)
        f.tile(x, y, xo, yo, xi, yi, 8, 3).vectorize(xi).unroll(yi).parallel(yo)
        return f
    check(build, [24, 9], [inp])


# -- update stages -------------------------------------------------------------------------

def _with_update(sched):
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        f[x, y] = x + y
        f[x, y] = f[x, y] * 3 + (x - y)
        sched(hl, f, x, y)
        return f
    return build


@pytest.mark.parametrize("name,sched", [
    ("split", lambda hl, f, x, y: f.update(0).split(x, hl.Var("xo"), hl.Var("xi"), 4)),
    ("split_guard", lambda hl, f, x, y: f.update(0).split(
        x, hl.Var("xo"), hl.Var("xi"), 4, hl.TailStrategy.GuardWithIf)),
    ("vectorize", lambda hl, f, x, y: f.update(0).vectorize(x, 4)),
    ("vectorize_guard", lambda hl, f, x, y: f.update(0).vectorize(
        x, 4, hl.TailStrategy.GuardWithIf)),
    ("parallel", lambda hl, f, x, y: f.update(0).parallel(y)),
    ("parallel_factor", lambda hl, f, x, y: f.update(0).parallel(y, 2)),
    ("unroll", lambda hl, f, x, y: f.update(0).unroll(x, 3, hl.TailStrategy.GuardWithIf)),
    ("reorder", lambda hl, f, x, y: f.update(0).reorder(y, x)),
    ("tile", lambda hl, f, x, y: f.update(0).tile(
        x, y, hl.Var("xo"), hl.Var("yo"), hl.Var("xi"), hl.Var("yi"), 4, 2,
        hl.TailStrategy.GuardWithIf)),
    ("fuse", lambda hl, f, x, y: f.update(0).fuse(x, y, hl.Var("xy")).parallel(hl.Var("xy"))),
    ("rename", lambda hl, f, x, y: f.update(0).rename(x, hl.Var("xx"))),
    ("both_stages", lambda hl, f, x, y: (f.vectorize(x, 4).parallel(y),
                                         f.update(0).reorder(y, x).unroll(y, 2))),
])
def test_update_stage_pure_var_schedules(name, sched):
    check(_with_update(sched), [10, 5])


def test_update_roundup_on_output_pure_var():
    # Auto = RoundUp for pure vars of updates: over-computes, which
    # realize(sizes) allows by over-allocating (in Halide too).
    check(_with_update(lambda hl, f, x, y: f.update(0).split(
        x, hl.Var("xo"), hl.Var("xi"), 4, hl.TailStrategy.RoundUp)), [12, 3])


def _rsum(sched, n=13):
    def build(hl, b):
        x = hl.Var("x")
        r = hl.RDom([(0, n)])
        f = hl.Func("f")
        f[x] = x
        f[x] += b[r.x] * (x + 1)
        sched(hl, f, x, r)
        return f
    return build


@pytest.mark.parametrize("name,sched", [
    ("split_rvar_guard", lambda hl, f, x, r: f.update(0).split(
        r.x, hl.RVar("ro"), hl.RVar("ri"), 4, hl.TailStrategy.GuardWithIf)),
    ("split_rvar_auto", lambda hl, f, x, r: f.update(0).split(
        r.x, hl.RVar("ro"), hl.RVar("ri"), 5)),
    ("split_rvar_twice", lambda hl, f, x, r: f.update(0).split(
        r.x, hl.RVar("ro"), hl.RVar("ri"), 4, hl.TailStrategy.GuardWithIf).split(
        hl.RVar("ri"), hl.RVar("rio"), hl.RVar("rii"), 3, hl.TailStrategy.GuardWithIf)),
    ("split_rvar_reorder", lambda hl, f, x, r: f.update(0).split(
        r.x, hl.RVar("ro"), hl.RVar("ri"), 4, hl.TailStrategy.GuardWithIf).reorder(
        hl.RVar("ri"), x, hl.RVar("ro"))),
    ("pure_vec_rvar_split", lambda hl, f, x, r: f.update(0).split(
        r.x, hl.RVar("ro"), hl.RVar("ri"), 4, hl.TailStrategy.GuardWithIf).vectorize(
        x, 4, hl.TailStrategy.GuardWithIf).parallel(x)),
    ("serial_rvar", lambda hl, f, x, r: f.update(0).serial(r.x)),
    ("unroll_rvar", lambda hl, f, x, r: f.update(0).unroll(r.x)),
    ("unroll_rvar_factor", lambda hl, f, x, r: f.update(0).unroll(
        r.x, 3, hl.TailStrategy.GuardWithIf)),
])
def test_update_rvar_schedules(name, sched):
    check(_rsum(sched), [9], [_vec(13)])


def test_split_rvar_of_prefix_sum_keeps_serial_order():
    # A loop-carried dependence: the split must keep r's visiting order.
    def build(hl):
        x = hl.Var("x")
        r = hl.RDom([(1, 18)])
        f = hl.Func("f")
        f[x] = x * 2 + 1
        f[r.x] = f[r.x] + f[r.x - 1]
        ro, ri = hl.RVar("ro"), hl.RVar("ri")
        f.update(0).split(r.x, ro, ri, 4, hl.TailStrategy.GuardWithIf)
        return f
    check(build, [19])


def test_split_2d_rdom_and_fuse_rvars():
    inp = _img(7, 5)

    def build(hl, b):
        x = hl.Var("x")
        r = hl.RDom([(0, 7), (0, 5)])
        f = hl.Func("f")
        f[x] = 0
        f[x] += b[r.x, r.y] * (x + r.y)
        ryo, ryi, rxy = hl.RVar("ryo"), hl.RVar("ryi"), hl.RVar("rxy")
        f.update(0).split(r.y, ryo, ryi, 2, hl.TailStrategy.GuardWithIf)
        return f
    check(build, [4], [inp])


def test_histogram_with_split_rvar():
    inp = (_img(9, 6) % 10).astype(np.uint8)

    def build(hl, b):
        x = hl.Var("x")
        r = hl.RDom([(0, 9), (0, 6)])
        h = hl.Func("h")
        h[x] = 0
        h[hl.i32(b[r.x, r.y])] += 1
        h.update(0).split(r.x, hl.RVar("rxo"), hl.RVar("rxi"), 4,
                          hl.TailStrategy.GuardWithIf).reorder(hl.RVar("rxi"), r.y,
                                                               hl.RVar("rxo"))
        return h
    check(build, [10], [inp])


# -- compute and storage levels ------------------------------------------------------------

def _blur3(sched, w=21, h=15):
    """A chain of three stencils on a clamped input: a -> b -> c -> out."""
    inp = _img(w, h, seed=3, dtype=np.int32)

    def build(hl, buf):
        x, y = hl.Var("x"), hl.Var("y")
        cl = hl.BoundaryConditions.repeat_edge(buf)
        a, b, c, out = hl.Func("a"), hl.Func("b"), hl.Func("c"), hl.Func("out")
        a[x, y] = cl[x - 1, y] + 2 * cl[x, y] + cl[x + 1, y]
        b[x, y] = a[x, y - 1] + a[x, y + 1] - a[x, y]
        c[x, y] = b[x - 2, y] * 3 + b[x + 1, y - 1]
        out[x, y] = c[x, y] + c[x, y + 2]
        sched(hl, dict(a=a, b=b, c=c, out=out, x=x, y=y))
        return out
    return build, inp


def _v(hl, *names):
    return [hl.Var(n) for n in names]


def _s_root_all(hl, d):
    for k in "abc":
        d[k].compute_root()


def _s_at_y(hl, d):
    d["a"].compute_at(d["b"], d["y"])
    d["b"].compute_at(d["c"], d["y"])
    d["c"].compute_at(d["out"], d["y"])


def _s_at_x_innermost(hl, d):
    d["a"].compute_at(d["out"], d["x"])
    d["b"].compute_at(d["out"], d["x"])
    d["c"].compute_at(d["out"], d["x"])


def _s_nested_tiles(hl, d):
    # each stencil computed at its consumer's tile
    x, y = d["x"], d["y"]
    for cons, prod, f in (("out", "c", 8), ("c", "b", 4), ("b", "a", 2)):
        xo, yo, xi, yi = _v(hl, f"{cons}xo", f"{cons}yo", f"{cons}xi", f"{cons}yi")
        d[cons].tile(x, y, xo, yo, xi, yi, f, f, hl.TailStrategy.GuardWithIf)
        d[prod].compute_at(d[cons], xo)


def _s_nested_tiles_shift(hl, d):
    # same with the default tail (ShiftInwards) on every tile
    x, y = d["x"], d["y"]
    for cons, prod, f in (("out", "c", 8), ("c", "b", 4), ("b", "a", 2)):
        xo, yo, xi, yi = _v(hl, f"{cons}xo", f"{cons}yo", f"{cons}xi", f"{cons}yi")
        d[cons].tile(x, y, xo, yo, xi, yi, f, f)
        d[prod].compute_at(d[cons], xo)


def _s_at_inner_tile_loop(hl, d):
    x, y = d["x"], d["y"]
    xo, yo, xi, yi = _v(hl, "xo", "yo", "xi", "yi")
    d["out"].tile(x, y, xo, yo, xi, yi, 8, 4, hl.TailStrategy.GuardWithIf)
    d["c"].compute_at(d["out"], yi)
    d["b"].compute_at(d["out"], yo)
    d["a"].compute_root()


def _s_store_root_compute_at(hl, d):
    d["c"].store_root().compute_at(d["out"], d["y"])
    d["b"].store_root().compute_at(d["out"], d["y"])
    d["a"].store_at(d["out"], d["y"]).compute_at(d["b"], d["x"])


def _s_store_at_outer_tile(hl, d):
    x, y = d["x"], d["y"]
    xo, yo, xi, yi = _v(hl, "xo", "yo", "xi", "yi")
    d["out"].tile(x, y, xo, yo, xi, yi, 8, 4, hl.TailStrategy.GuardWithIf)
    d["c"].store_at(d["out"], yo).compute_at(d["out"], xo)
    d["b"].store_at(d["out"], yo).compute_at(d["c"], y)


def _s_parallel_vector(hl, d):
    x, y = d["x"], d["y"]
    d["out"].parallel(y).vectorize(x, 4, hl.TailStrategy.GuardWithIf)
    d["c"].compute_at(d["out"], y).vectorize(x, 4)
    d["b"].compute_at(d["out"], y)
    d["a"].compute_root().parallel(y, 4).vectorize(x, 8)


def _s_inline_mix(hl, d):
    d["a"].compute_inline()
    d["b"].compute_root()
    d["c"].compute_inline()


def _s_multi_producers_same_loop(hl, d):
    # a and b are both computed at out.y (b reads a, both at the same loop)
    d["a"].compute_at(d["out"], d["y"])
    d["b"].compute_at(d["out"], d["y"])
    d["c"].compute_at(d["out"], d["y"])


SCHEDS3 = [_s_root_all, _s_at_y, _s_at_x_innermost, _s_nested_tiles, _s_nested_tiles_shift,
           _s_at_inner_tile_loop, _s_store_root_compute_at, _s_store_at_outer_tile,
           _s_parallel_vector, _s_inline_mix, _s_multi_producers_same_loop]


@pytest.mark.parametrize("sched", SCHEDS3, ids=[s.__name__[3:] for s in SCHEDS3])
def test_stencil_chain_compute_levels(sched):
    build, inp = _blur3(sched)
    check(build, [17, 11], [inp])


def test_nested_tiles_loop_nest_structure():
    build, inp = _blur3(_s_nested_tiles)
    out = build(halo, halo.Buffer(inp))
    text = halo.Pipeline(out).loop_nest_text()
    # a is produced inside b's tile loop, which is inside c's, inside out's
    i_out, i_c = text.index("outxo"), text.index("produce c")
    i_cx, i_b = text.index("cxo"), text.index("produce b")
    i_bx, i_a = text.index("bxo"), text.index("produce a")
    assert i_out < i_c < i_cx < i_b < i_bx < i_a, text


def test_multiple_producers_at_same_loop():
    def build(hl, buf):
        x, y = hl.Var("x"), hl.Var("y")
        p, q, r, out = hl.Func("p"), hl.Func("q"), hl.Func("r"), hl.Func("out")
        p[x, y] = buf[x, y] * 2
        q[x, y] = buf[x, y] + x
        r[x, y] = x * y
        out[x, y] = p[x, y] + q[x, y] * r[x, y]
        p.compute_at(out, y)
        q.compute_at(out, y)
        r.compute_at(out, y).vectorize(x, 4)
        return out
    check(build, [10, 6], [_img(10, 6)])


def test_compute_at_func_with_update_definition():
    def build(hl, buf):
        x, y = hl.Var("x"), hl.Var("y")
        r = hl.RDom([(0, 4)])
        s, out = hl.Func("s"), hl.Func("out")
        s[x, y] = x
        s[x, y] += buf[hl.clamp(x + r.x, 0, 11), y]
        out[x, y] = s[x, y] + s[x + 1, y]
        xo, xi = hl.Var("xo"), hl.Var("xi")
        out.split(x, xo, xi, 4, hl.TailStrategy.GuardWithIf)
        s.compute_at(out, xo)
        s.update(0).vectorize(x, 2, hl.TailStrategy.GuardWithIf)
        return out
    check(build, [10, 4], [_img(12, 4)])


def test_compute_at_func_with_update_store_root():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        r = hl.RDom([(0, 3)])
        s, out = hl.Func("s"), hl.Func("out")
        s[x, y] = 0
        s[x, y] += (x + r.x) * (y - r.x)
        out[x, y] = s[x - 1, y] + s[x, y + 1]
        s.store_root().compute_at(out, y)
        return out
    check(build, [7, 5])


def test_compute_at_update_stage_loop_of_consumer():
    # the producer is needed only by the consumer's update: computed at its loop
    def build(hl):
        x = hl.Var("x")
        r = hl.RDom([(0, 5)])
        p, out = hl.Func("p"), hl.Func("out")
        p[x] = x * x
        out[x] = x
        out[x] += p[x + r.x]
        p.compute_at(out, x)
        return out
    check(build, [8])


def test_compute_at_rvar_of_consumer():
    def build(hl):
        x = hl.Var("x")
        r = hl.RDom([(0, 6)])
        p, out = hl.Func("p"), hl.Func("out")
        p[x] = x * 3 + 1
        out[x] = 0
        out[x] += p[x + r.x] * r.x
        p.compute_at(out, r.x)
        return out
    check(build, [5])


def test_compute_at_vectorized_loop():
    def build(hl):
        x, y, yi = hl.Var("x"), hl.Var("y"), hl.Var("yi")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = x + 10 * y
        g[x, y] = f[x, y] + f[x, y + 1]
        g.split(y, y, yi, 4).vectorize(yi).reorder(x, yi, y)
        f.compute_at(g, yi)
        return g
    check(build, [8, 8])


def test_compute_at_vectorized_loop_with_parallel_producer():
    # (the C backend drops `omp simd` from a vectorized loop holding a parallel one)
    def build(hl):
        x, y, yi = hl.Var("x"), hl.Var("y"), hl.Var("yi")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = x + 10 * y
        g[x, y] = f[x, y] + f[x, y + 1]
        g.split(y, y, yi, 4).vectorize(yi).reorder(x, yi, y)
        f.compute_at(g, yi).parallel(y)
        return g
    check(build, [8, 8])


def test_compute_root_tuple_funcs():
    def build(hl, buf):
        x, y = hl.Var("x"), hl.Var("y")
        t, out = hl.Func("t"), hl.Func("out")
        t[x, y] = (buf[x, y] + 1, hl.f32(buf[x, y]) * 0.5)
        t.compute_root().vectorize(x, 4, hl.TailStrategy.GuardWithIf).parallel(y)
        out[x, y] = hl.f32(t[x, y][0]) + t[x, y][1]
        return out
    check(build, [9, 4], [_img(9, 4)])


def test_tuple_output_with_update_and_schedule():
    # argmax-style Tuple reduction, scheduled
    def build(hl, buf):
        x = hl.Var("x")
        r = hl.RDom([(0, 8)])
        am = hl.Func("am")
        am[x] = (hl.i32(0), hl.i32(-1000))
        v = buf[r.x, x]
        am[x] = (hl.select(v > am[x][1], r.x, am[x][0]), hl.max(am[x][1], v))
        am.vectorize(x, 4, hl.TailStrategy.GuardWithIf)
        am.update(0).parallel(x)
        return am
    check(build, [6], [_img(8, 6, seed=5)])


def test_tuple_func_compute_at():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        t, out = hl.Func("t"), hl.Func("out")
        t[x, y] = (x + y, x * y)
        out[x, y] = t[x - 1, y][0] * t[x + 1, y][1]
        t.compute_at(out, y)
        return out
    check(build, [8, 5])


def test_compute_at_func_with_update_definition_serial_update():
    # same as above with a split + parallel update instead of a vectorized one
    def build(hl, buf):
        x, y = hl.Var("x"), hl.Var("y")
        r = hl.RDom([(0, 4)])
        s, out = hl.Func("s"), hl.Func("out")
        s[x, y] = x
        s[x, y] += buf[hl.clamp(x + r.x, 0, 11), y]
        out[x, y] = s[x, y] + s[x + 1, y]
        xo, xi = hl.Var("xo"), hl.Var("xi")
        out.split(x, xo, xi, 4, hl.TailStrategy.GuardWithIf)
        s.compute_at(out, xo)
        s.update(0).split(x, hl.Var("sxo"), hl.Var("sxi"), 2,
                          hl.TailStrategy.GuardWithIf).parallel(y)
        return out
    check(build, [10, 4], [_img(12, 4)])


# -- illegal schedules -----------------------------------------------------------------------

def _both_fail(build, halo_msg, halide_msg=None, sizes=(4, 4)):
    """halo raises a HalideError matching `halo_msg`; Halide (the oracle)
    rejects the same schedule too (matching `halide_msg` when given)."""
    with pytest.raises(halo.HalideError, match=halo_msg):
        build(halo).realize(list(sizes))
    with pytest.raises(Exception, match=halide_msg or ""):
        build(halide).realize(list(sizes))


def test_error_unknown_dimension_lists_dims():
    def build(hl):
        x, y, z = hl.Var("x"), hl.Var("y"), hl.Var("z")
        f = hl.Func("f")
        f[x, y] = x + y
        f.split(z, hl.Var("zo"), hl.Var("zi"), 4)
        return f
    _both_fail(build, r"In schedule for f: could not find dimension 'z' for split\(\); "
                      r"the dimensions are \(outermost first\): y, x",
               "could not find split dimension: z")
    # other directives name themselves too
    x, y, z = halo.Var("x"), halo.Var("y"), halo.Var("z")
    f = halo.Func("f")
    f[x, y] = x + y
    for call, name in ((lambda: f.vectorize(z), "vectorize"), (lambda: f.reorder(z, x), "reorder"),
                       (lambda: f.parallel(z, 2), "parallel"), (lambda: f.rename(z, x), "rename"),
                       (lambda: f.update(0) if False else f.fuse(x, z, halo.Var("t")), "fuse")):
        with pytest.raises(halo.HalideError,
                           match=rf"could not find dimension 'z' for {name}\(\);.*: y, x"):
            call()


def test_error_unknown_dimension_of_update_lists_rvars():
    x = halo.Var("x")
    r = halo.RDom([(0, 3)])
    f = halo.Func("f")
    f[x] = 0
    f[x] += r.x
    with pytest.raises(halo.HalideError,
                       match=r"In schedule for f.update\(0\): could not find dimension 'q'.*"
                             r"outermost first\): x, r[0-9]*\.x"):
        f.update(0).split(halo.Var("q"), halo.Var("qo"), halo.Var("qi"), 2)


def test_error_split_creates_existing_name():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        f[x, y] = x + y
        f.split(x, y, hl.Var("xi"), 4)
        return f
    _both_fail(build, r"split\(\) would create dimension 'y', which already exists",
               "can't create var y using a split or tile")


def test_error_split_same_outer_and_inner_name():
    x = halo.Var("x")
    f = halo.Func("f")
    f[x] = x
    with pytest.raises(halo.HalideError, match="different names for the outer and inner"):
        f.split(x, halo.Var("a"), halo.Var("a"), 4)


def test_error_fuse_of_non_adjacent_dims():
    # halo is stricter than Halide here: Halide 21 silently moves the fused
    # loop to the inner dimension's place; halo asks for an explicit reorder.
    x, y, c = halo.Var("x"), halo.Var("y"), halo.Var("c")
    f = halo.Func("f")
    f[x, y, c] = x + y + c
    with pytest.raises(halo.HalideError,
                       match=r"In schedule for f: fuse\(x, c\) needs 'c' to be the loop just "
                             r"outside 'x'; reorder first"):
        f.fuse(x, c, halo.Var("xc"))
    # after the reorder it is legal, and matches Halide

    def build(hl):
        x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
        f = hl.Func("f")
        f[x, y, c] = x + 10 * y + 100 * c
        f.reorder(x, c, y).fuse(x, c, hl.Var("xc"))
        return f
    check(build, [4, 3, 2])


def test_error_shift_inwards_on_rvar_and_on_update():
    def build_rvar(hl):
        x = hl.Var("x")
        r = hl.RDom([(0, 10)])
        f = hl.Func("f")
        f[x] = 0
        f[x] += r.x
        f.update(0).split(r.x, hl.RVar("ro"), hl.RVar("ri"), 4, hl.TailStrategy.ShiftInwards)
        return f
    _both_fail(build_rvar, r"can't split RVar 'r[0-9]*\.x' with TailStrategy.ShiftInwards",
               "ShiftInwards is not a legal tail strategy for update definitions", sizes=[4])

    def build_update(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = 0
        f[x] += x
        f.update(0).split(x, hl.Var("xo"), hl.Var("xi"), 4, hl.TailStrategy.ShiftInwards)
        return f
    _both_fail(build_update, r"In schedule for f.update\(0\): TailStrategy.ShiftInwards "
                             r"recomputes points, which is only legal for pure definitions",
               "ShiftInwards is not a legal tail strategy for update definitions", sizes=[8])


def test_error_roundup_on_rvar():
    x = halo.Var("x")
    r = halo.RDom([(0, 10)])
    f = halo.Func("f")
    f[x] = 0
    f[x] += r.x
    with pytest.raises(halo.HalideError, match="TailStrategy.RoundUp"):
        f.update(0).split(r.x, halo.RVar("ro"), halo.RVar("ri"), 4, halo.TailStrategy.RoundUp)


def test_error_compute_at_missing_loop_names_func_and_lists_loops():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = x + y
        g[x, y] = f[x, y] * 2
        g.split(x, hl.Var("xo"), hl.Var("xi"), 2)
        f.compute_at(g, hl.Var("zz"))
        return g
    _both_fail(build, r"Func f is computed at g\.zz, but that loop does not exist.*"
                      r"Loops of g: g\.s0\.y, g\.s0\.xo, g\.s0\.xi",
               "is computed at the following invalid location")


def test_error_compute_at_loop_of_inlined_func():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f, g, h = hl.Func("f"), hl.Func("g"), hl.Func("h")
        f[x, y] = x + y
        g[x, y] = f[x, y] * 2
        h[x, y] = g[x, y] + 1
        f.compute_at(g, x)          # g itself is inlined into h
        return h
    _both_fail(build, r"Func f is computed at g\.x, but that loop does not exist.*"
                      r"is g inlined",
               "is computed at the following invalid location")


def test_error_store_at_inside_compute_at():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = x + y
        g[x, y] = f[x, y] * 2
        f.compute_at(g, y).store_at(g, x)
        return g
    _both_fail(build, r"Func f is stored at g\.x, which is inside its compute level g\.y: "
                      r"store_at must be at or outside compute_at",
               "is computed at the following invalid location")


def test_error_compute_at_a_loop_that_does_not_enclose_all_uses():
    # b is used by c, which is computed at out.xo *before* out's xi loop runs
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        xo, yo, xi, yi = [hl.Var(n) for n in ("xo", "yo", "xi", "yi")]
        b, c, out = hl.Func("b"), hl.Func("c"), hl.Func("out")
        b[x, y] = x + y
        c[x, y] = b[x, y] + b[x + 1, y]
        out[x, y] = c[x, y] * 2
        out.tile(x, y, xo, yo, xi, yi, 4, 4, hl.TailStrategy.GuardWithIf)
        c.compute_at(out, xo)
        b.compute_at(out, xi)
        return out
    _both_fail(build, r"Func b is computed at an invalid location \(out\.xi\): it is used by c "
                      r"outside that loop\. Legal locations enclose all its uses: "
                      r"compute_root\(\); compute_at\(out, yo\); compute_at\(out, xo\); "
                      r"compute_at\(c, y\); compute_at\(c, x\)",
               "is computed at the following invalid location", sizes=[8, 8])


def test_error_unsupported_directive_is_explicit():
    x = halo.Var("x")
    f = halo.Func("f")
    f[x] = x
    with pytest.raises(halo.HalideError, match=r"async_\(\) is not supported yet"):
        f.async_()


# -- property test: random legal schedules never change results ------------------------------

from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402

_TAILS_PURE = ["GuardWithIf", "ShiftInwards", "RoundUp", "Auto"]


def _dims(stage):
    func, k = (stage._func, stage._index) if hasattr(stage, "_index") else (stage, 0)
    return func._f.definitions[k].schedule.dims       # innermost first


def _random_loop_schedule(data, stage, pure_stage, const, counter):
    """Apply 0-3 random legal loop directives to `stage` (a halo Func or
    Stage). `const`: names of loops with constant extent (split inners)."""
    T = halo.TailStrategy

    def fresh(base):
        counter[0] += 1
        return f"{base}_{counter[0]}"

    originals = {d.var for d in _dims(stage)}
    for _ in range(data.draw(st.integers(0, 3), label="n_ops")):
        dims = _dims(stage)
        pure = [i for i, d in enumerate(dims) if not d.is_rvar]
        op = data.draw(st.sampled_from(["split", "split", "reorder", "vectorize", "unroll",
                                        "parallel", "fuse", "tile"]), label="op")
        if op == "split":
            i = data.draw(st.integers(0, len(dims) - 1), label="dim")
            d = dims[i]
            if d.is_rvar:
                tails = ["GuardWithIf", "Auto"]
            elif d.var in originals:
                tails = _TAILS_PURE if pure_stage else ["GuardWithIf", "RoundUp", "Auto"]
            else:
                tails = ["GuardWithIf"]
            tail = getattr(T, data.draw(st.sampled_from(tails), label="tail"))
            o, n = fresh(d.var.replace(".", "_") + "o"), fresh(d.var.replace(".", "_") + "i")
            mk = halo.RVar if d.is_rvar else halo.Var
            stage.split(d.var, mk(o), mk(n), data.draw(st.integers(2, 4), label="factor"), tail)
            const.add(n)
        elif op == "reorder" and len(pure) >= 2:
            names = [dims[i].var for i in pure]
            perm = data.draw(st.permutations(names), label="perm")
            stage.reorder(*perm)
        elif op in ("vectorize", "unroll", "parallel") and pure:
            d = dims[data.draw(st.sampled_from(pure), label="dim")]
            if op != "parallel" and d.var not in const or data.draw(st.booleans()):
                tails = (["GuardWithIf", "ShiftInwards", "RoundUp", "Auto"]
                         if d.var in originals and pure_stage else ["GuardWithIf"])
                before = {x.var for x in _dims(stage)}
                getattr(stage, op)(d.var, data.draw(st.integers(2, 4), label="factor"),
                                   getattr(T, data.draw(st.sampled_from(tails), label="tail")))
                const.update({x.var for x in _dims(stage)} - before)
            else:
                getattr(stage, op)(d.var)
        elif op == "fuse":
            cands = [i for i in range(len(dims) - 1)
                     if not dims[i].is_rvar and not dims[i + 1].is_rvar]
            if cands:
                i = data.draw(st.sampled_from(cands), label="fuse_at")
                nf = fresh("fz")
                stage.fuse(dims[i].var, dims[i + 1].var, halo.Var(nf))
                if dims[i].var in const and dims[i + 1].var in const:
                    const.add(nf)
        elif op == "tile" and {"x", "y"} <= {dims[i].var for i in pure}:
            xo, yo, xi, yi = (fresh(n) for n in ("xo", "yo", "xi", "yi"))
            tail = data.draw(st.sampled_from(_TAILS_PURE if pure_stage else
                                             ["GuardWithIf", "RoundUp"]), label="tail")
            stage.tile("x", "y", halo.Var(xo), halo.Var(yo), halo.Var(xi), halo.Var(yi),
                       data.draw(st.integers(2, 4)), data.draw(st.integers(2, 3)),
                       getattr(T, tail))
            const.update({xi, yi})


def _random_level(data, f, consumer, consumer_state=(False, False, False), allow_inline=True):
    """compute_inline / compute_root / compute_at one of consumer's loops,
    sometimes with store_root. States are (inlined, inside a vectorized loop,
    inside a parallel or vectorized loop)."""
    consumer_inlined, consumer_in_vec, consumer_concurrent = consumer_state
    choices = (["inline"] if allow_inline else []) + ["root"] + \
        ([] if consumer_inlined else ["at", "at"])
    c = data.draw(st.sampled_from(choices), label=f"level_{f.name()}")
    if c == "inline":
        f.compute_inline()
        return True, consumer_in_vec, consumer_concurrent
    if c == "root":
        f.compute_root()
        return False, False, False
    dims = _dims(_last_stage(consumer))
    i = data.draw(st.integers(0, len(dims) - 1), label="at")
    f.compute_at(consumer, dims[i].var)
    from halo.ir.stmt import ForKind
    concurrent = consumer_concurrent or any(
        d.kind in (ForKind.PARALLEL, ForKind.VECTORIZED) for d in dims[i:])
    # (storage outside a parallel or vectorized loop it is computed in is a race: refused)
    if not concurrent and data.draw(st.booleans(), label="store_root"):
        f.store_root()
    in_vec = consumer_in_vec or any(d.kind == ForKind.VECTORIZED for d in dims[i:])
    if in_vec:
        # see test_compute_at_vectorized_loop_with_parallel_producer (xfail)
        for k in range(f.num_update_definitions() + 1):
            st_ = f.update(k - 1) if k else f
            for d in _dims(st_):
                if d.kind == ForKind.PARALLEL:
                    st_.serial(d.var)
    return False, in_vec, concurrent


def _last_stage(f):
    n = f.num_update_definitions()
    return f.update(n - 1) if n else f


def _prop_check(build, sizes, inputs=()):
    ours, f = realize_halo(build, sizes, inputs)
    ref = realize_interp(f, sizes)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


_PROP = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                 phases=[Phase.explicit, Phase.generate],   # no slow shrinking
                 suppress_health_check=list(HealthCheck))


@_PROP
@given(data=st.data(), w=st.integers(4, 11), h=st.integers(4, 9))
def test_property_random_schedules_blur_chain(data, w, h):
    inp = _img(w + 1, h, seed=w * h, dtype=np.int32)

    def build(hl, buf):
        x, y = hl.Var("x"), hl.Var("y")
        cl = hl.BoundaryConditions.repeat_edge(buf)
        a, b, out = hl.Func("a"), hl.Func("b"), hl.Func("out")
        a[x, y] = cl[x - 1, y] + 2 * cl[x, y] + cl[x + 1, y]
        b[x, y] = a[x, y - 1] + a[x, y + 1] + x
        out[x, y] = b[x, y] * 3 - b[x + 1, y]
        const, counter = set(), [0]
        for fn in (out, b, a):
            _random_loop_schedule(data, fn, True, const, counter)
        _random_level(data, a, b, _random_level(data, b, out))
        return out
    _prop_check(build, [w, h], [inp])


@_PROP
@given(data=st.data(), w=st.integers(4, 10), n=st.integers(3, 7))
def test_property_random_schedules_reduction(data, w, n):
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        r = hl.RDom([(0, n), (0, 2)])
        p, s, out = hl.Func("p"), hl.Func("s"), hl.Func("out")
        p[x, y] = x * 3 - y * y
        s[x] = x
        s[x] = s[x] + p[x + r.x, r.y] * (r.x + 1)
        out[x] = s[x] * 2 + s[x + 1]
        const, counter = set(), [0]
        _random_loop_schedule(data, out, True, const, counter)
        _random_loop_schedule(data, s, True, const, counter)
        _random_loop_schedule(data, s.update(0), False, const, counter)
        _random_loop_schedule(data, p, True, const, counter)
        _random_level(data, p, s, _random_level(data, s, out, allow_inline=False))
        return out
    _prop_check(build, [w])


@_PROP
@given(data=st.data(), w=st.integers(4, 10), h=st.integers(4, 7))
def test_property_random_schedules_tuple(data, w, h):
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        t, out = hl.Func("t"), hl.Func("out")
        t[x, y] = (x + y, x * y - 3)
        out[x, y] = (t[x - 1, y][0] + t[x, y + 1][1], t[x, y][1] * 2)
        const, counter = set(), [0]
        _random_loop_schedule(data, out, True, const, counter)
        _random_loop_schedule(data, t, True, const, counter)
        _random_level(data, t, out)
        return out
    _prop_check(build, [w, h])


# -- hoist_storage ----------------------------------------------------------------------------

def _blur_tiles(hl, inp, hoist=None, parallel=False):
    x, y, xo, yo, xi, yi = [hl.Var(n) for n in "x y xo yo xi yi".split()]
    bx, by = hl.Func("bx"), hl.Func("by")
    bx[x, y] = hl.u16(inp[x, y]) + inp[x + 1, y] + inp[x + 2, y]
    by[x, y] = bx[x, y] + bx[x, y + 1] + bx[x, y + 2]
    by.tile(x, y, xo, yo, xi, yi, 16, 8, hl.TailStrategy.GuardWithIf)
    if parallel:
        by.parallel(xo)
    bx.compute_at(by, xo)
    if hoist == "root":
        bx.hoist_storage_root()
    elif hoist is not None:
        bx.hoist_storage(by, {"yo": yo, "xi": xi}[hoist])
    return by, bx


def _allocation_depth(out, producer):
    """How many loops enclose the allocation of `producer` in the lowered code."""
    from halo.ir.printer import stmt_to_str
    from halo.lower import lower
    lines = stmt_to_str(lower([out._f], "p").body).splitlines()
    alloc = next(i for i, line in enumerate(lines)
                 if line.strip().startswith(f"allocate {producer._f.name}["))
    depth, indent = 0, len(lines[alloc]) - len(lines[alloc].lstrip())
    for line in reversed(lines[:alloc]):       # the loops opened above it, outward
        ind = len(line) - len(line.lstrip())
        if ind < indent:
            indent = ind
            depth += line.strip().startswith(("for", "parallel"))
    return depth


@pytest.mark.parametrize("hoist", ["yo", "root"])
def test_hoist_storage(hoist):
    """Same results as Halide (odd-sized tails included), with one allocation
    per row of tiles (or per pipeline) instead of one per tile."""
    a = _img(45, 29, dtype=np.uint16)
    check(lambda hl, inp: _blur_tiles(hl, inp, hoist)[0], [43, 27], [a])
    assert _allocation_depth(*_blur_tiles(halo, halo.Buffer(a))) == 2
    assert _allocation_depth(*_blur_tiles(halo, halo.Buffer(a), hoist)) == \
        (1 if hoist == "yo" else 0)


def test_hoist_storage_errors():
    a = halo.Buffer(_img(45, 29, dtype=np.uint16))
    out, _ = _blur_tiles(halo, a, "yo", parallel=True)
    with pytest.raises(halo.HalideError, match=r"Func bx.*hoist_storage\(\).*parallel loop"):
        out.realize([43, 27])
    out, _ = _blur_tiles(halo, a, "xi")
    with pytest.raises(halo.HalideError, match=r"Func bx: hoist_storage\(\) at by.xi must "
                                               r"enclose its store level"):
        out.realize([43, 27])


# -- prefetch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["Clamp", "GuardWithIf", "NonFaulting"])
def test_prefetch_of_a_func(strategy):
    def build(hl, inp):
        x, y, yo, yi = [hl.Var(n) for n in "x y yo yi".split()]
        bx, by = hl.Func("bx"), hl.Func("by")
        bx[x, y] = inp[x, y] + inp[x + 1, y] + inp[x + 2, y]
        by[x, y] = bx[x, y] + bx[x, y + 1] + bx[x, y + 2]
        bx.compute_root()
        by.split(y, yo, yi, 4).prefetch(bx, yi, yi, 2,
                                        getattr(hl.PrefetchBoundStrategy, strategy))
        return by
    check(build, [61, 23], [_img(63, 25)])
    out = build(halo, halo.Buffer(_img(63, 25)))
    assert "__builtin_prefetch(&" in halo.Pipeline(out).c_source()


def test_prefetch_of_an_input_from_an_outer_loop():
    """ImageParam, prefetched at yi for the next iteration of yo."""
    a = _img(70, 40)
    outs = []
    for hl in (halo, halide):
        x, y, yo, yi = [hl.Var(n) for n in "x y yo yi".split()]
        inp = hl.ImageParam(hl.Int(32), 2, "inp")
        f = hl.Func("f")
        f[x, y] = inp[x, y] * 3 + inp[x + 2, y + 1]
        f.split(y, yo, yi, 8).prefetch(inp, yi, yo, 1)
        inp.set(hl.Buffer(a))
        outs.append(np.asarray(f.realize([68, 39])))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], a[:39, :68] * 3 + a[1:40, 2:70])


def test_prefetch_errors():
    x, y, yo, yi = [halo.Var(n) for n in "x y yo yi".split()]
    inp = halo.ImageParam(halo.Int(32), 2, "inp")
    g, f = halo.Func("g"), halo.Func("f")
    g[x, y] = inp[x, y] + 1
    f[x, y] = g[x, y] * 2
    f.split(y, yo, yi, 4)
    with pytest.raises(halo.HalideError, match=r"In schedule for f: prefetch\(\) at loop 'yo' "
                                               r"from loop 'yi': the 'from' loop must be 'yo' "
                                               r"or enclose it"):
        f.prefetch(inp, yo, yi)
    with pytest.raises(halo.HalideError, match=r"could not find dimension 'z'"):
        f.prefetch(inp, "z", yi)
    with pytest.raises(halo.HalideError, match=r"prefetch\(\) needs a Func, ImageParam or "
                                               r"Buffer"):
        f.prefetch(3, yi, yi)
    f.prefetch(g, yi, yi)        # checked when lowered: g must be computed at the root
    g.compute_at(f, yo)
    with pytest.raises(halo.HalideError, match=r"f.prefetch\(g, ...\): only inputs and "
                                               r"compute_root\(\) Funcs can be prefetched"):
        f.realize([8, 8])


# -- memoize ----------------------------------------------------------------------------------

def _memo_pipeline(hl, a, level="root"):
    x, xo, xi = hl.Var("x"), hl.Var("xo"), hl.Var("xi")
    gain = hl.Param(hl.Float(32), "gain", 2.0)
    inp = hl.ImageParam(hl.Float(32), 1, "inp")
    lut = hl.Func("lut")
    lut[x] = hl.print_when(x == 0, hl.f32(x) * gain + inp[x], "computing lut")
    g = hl.Func("g")
    g[x] = lut[x] + lut[x + 1]
    if level == "root":
        lut.compute_root()
    else:
        g.split(x, xo, xi, 4)
        lut.compute_at(g, xo)
    lut.memoize()
    inp.set(hl.Buffer(a))
    return hl.Pipeline(g), gain


@pytest.mark.parametrize("level", ["root", "xo"])
def test_memoize_computes_once_per_key(level, capfd):
    """A second call with the same Params and input contents reuses the
    values; a new Param value or an input changed in place recomputes."""
    a = np.arange(20, dtype=np.float32)
    expect = lambda gain: (np.arange(8) * gain + a[:8]) + (np.arange(1, 9) * gain + a[1:9])
    p, gain = _memo_pipeline(halo, a, level)
    capfd.readouterr()
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(p.realize([8])), expect(2.0))
    assert capfd.readouterr().out.count("computing lut") == 1
    gain.set(3.0)
    np.testing.assert_array_equal(np.asarray(p.realize([8])), expect(3.0))
    a[0] = 100.0                       # in place: the buffer shares a's memory
    np.testing.assert_array_equal(np.asarray(p.realize([8])), expect(3.0))
    np.testing.assert_array_equal(np.asarray(p.realize([8])), expect(3.0))
    assert capfd.readouterr().out.count("computing lut") == 2


def test_memoize_matches_halide():
    def build(hl, inp):
        x, y = hl.Var("x"), hl.Var("y")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = inp[x, y] * 3 + y
        g[x, y] = f[x, y] + f[x + 1, y]
        f.compute_root().memoize()
        return g
    check(build, [20, 10], [_img(21, 10)])


def test_memoize_from_threads():
    """Calls from many threads at once (hits, misses and commits racing)."""
    from concurrent.futures import ThreadPoolExecutor
    a = np.arange(40, dtype=np.float32)
    inp = halo.ImageParam(halo.Float(32), 1, "inp")
    x = halo.Var("x")
    gain = halo.Param(halo.Float(32), "gain")
    lut, g = halo.Func("lut"), halo.Func("g")
    lut[x] = halo.f32(x) * gain + inp[x]
    g[x] = lut[x] + lut[x + 1]
    lut.compute_root().memoize()
    run = halo.Pipeline(g).compile_to_callable([inp, gain])

    def one(k):
        out = np.empty(32, np.float32)
        run(a, float(k % 3), out)
        want = np.arange(32) * (k % 3) + a[:32] + np.arange(1, 33) * (k % 3) + a[1:33]
        return np.array_equal(out, want)
    with ThreadPoolExecutor(8) as ex:
        assert all(ex.map(one, range(200)))


def test_memoize_errors():
    x, y = halo.Var("x"), halo.Var("y")
    f, g = halo.Func("f"), halo.Func("g")
    f[x] = x * 2
    g[x] = f[x] + f[x + 1]
    f.memoize()
    with pytest.raises(halo.HalideError, match=r"Func f: memoize\(\) is not possible here: "
                                               r"it is inlined"):
        g.realize([4])
    t, h = halo.Func("t"), halo.Func("h")
    t[x] = (x, x + 1)
    h[x] = t[x][0] + t[x][1]
    t.compute_root().memoize()
    with pytest.raises(halo.HalideError, match=r"Func t: memoize\(\).*it is a Tuple"):
        h.realize([4])
    with pytest.raises(halo.HalideError, match=r"eviction key must be an integer"):
        f.memoize("k")


# -- compute_with -----------------------------------------------------------------------------

def _two_consumers(hl, inp, where):
    x, y, xo, xi = hl.Var("x"), hl.Var("y"), hl.Var("xo"), hl.Var("xi")
    f, g, h, out = hl.Func("f"), hl.Func("g"), hl.Func("h"), hl.Func("out")
    f[x, y] = inp[x, y] * 2
    g[x, y] = inp[x + 1, y] + 3
    h[x, y] = f[x, y] - 1             # computed between f and g in the order
    out[x, y] = h[x, y] + g[x, y + 1] + f[x + 2, y]
    if where == "root":
        f.compute_root()
        g.compute_root()
        h.compute_root()
        g.compute_with(f, y)
    elif where == "root_x":
        f.compute_root().split(x, xo, xi, 4)
        g.compute_root().split(x, xo, xi, 4)
        g.compute_with(f, xo)
    else:
        out.split(y, xo, xi, 4)
        f.compute_at(out, xo)
        g.compute_at(out, xo).compute_with(f, y)
    return out


@pytest.mark.parametrize("where", ["root", "root_x", "at"])
def test_compute_with(where):
    check(lambda hl, inp: _two_consumers(hl, inp, where), [21, 13], [_img(25, 15)])


def test_compute_with_outputs_and_updates():
    def build(hl, inp):
        x, y = hl.Var("x"), hl.Var("y")
        r = hl.RDom([(0, 3)], "r")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y] = inp[x, y]
        f[x, y] += inp[x + r.x, y]
        g[x, y] = inp[x, y] * 3
        g[x, y] += inp[x, y + r.x]
        g.update(0).compute_with(f.update(0), y)
        g.compute_with(f, x)
        return hl.Pipeline([f, g])
    a = _img(20, 20)
    outs = {}
    for mod in (halo, halide):
        fs = build(mod, mod.Buffer(a))
        outs[mod.__name__] = [np.asarray(b) for b in fs.realize([15, 12])]
    want = halo.interp.realize(build(halo, halo.Buffer(a)).outputs(), [15, 12])
    for k in range(2):
        np.testing.assert_array_equal(outs["halo"][k], outs["halide"][k])
        np.testing.assert_array_equal(outs["halo"][k], want[k])


def test_compute_with_errors():
    x, y = halo.Var("x"), halo.Var("y")
    inp = halo.Buffer(_img(20, 20))
    f, g, out = halo.Func("f"), halo.Func("g"), halo.Func("out")
    f[x, y] = inp[x, y]
    g[x, y] = f[x, y] + 1
    out[x, y] = g[x, y] + f[x, y]
    f.compute_root()
    g.compute_root().compute_with(f, y)
    with pytest.raises(halo.HalideError, match=r"g.compute_with\(\): g reads f, so their "
                                               r"loops cannot be fused"):
        out.realize([8, 8])
    f2, g2, out2 = halo.Func("f2"), halo.Func("g2"), halo.Func("out2")
    f2[x, y] = inp[x, y]
    g2[x, y] = inp[x, y] + 1
    out2[x, y] = g2[x, y] + f2[x, y]
    f2.compute_root()
    g2.compute_at(out2, y).compute_with(f2, y)
    with pytest.raises(halo.HalideError, match=r"g2 and f2 are computed at different levels"):
        out2.realize([8, 8])
    with pytest.raises(halo.HalideError, match=r"compute_with\(\) a stage of the same Func"):
        out2.compute_with(out2, y)
    g2.compute_root().reorder(y, x).compute_with(f2, x)
    with pytest.raises(halo.HalideError, match=r"the fused loops must have the same names"):
        out2.realize([8, 8])


def test_guarded_tiles_with_a_vectorized_producer_read_only_the_image():
    """GuardWithIf tiles over a producer vectorized with ShiftInwards: the
    region the producer reads must pair each tile's start with that tile's
    own extent (bounds once paired the last tile with a full one and asked
    for input outside the image)."""
    def build(hl, inp):
        x, y, xi, yi = hl.Var("x"), hl.Var("y"), hl.Var("xi"), hl.Var("yi")
        bx, by = hl.Func("bx"), hl.Func("by")
        bx[x, y] = hl.u16((hl.u32(inp[x, y]) + inp[x + 1, y] + inp[x + 2, y]) / 3)
        by[x, y] = hl.u16((hl.u32(bx[x, y]) + bx[x, y + 1] + bx[x, y + 2]) / 3)
        by.tile(x, y, xi, yi, 256, 32, hl.TailStrategy.GuardWithIf).vectorize(xi, 16)
        bx.compute_at(by, x).vectorize(x, 16)
        return by
    for w, h in ((300, 100), (530, 70)):
        check(build, [w - 2, h - 2], [_img(w, h, dtype=np.uint16)])


def test_one_dimensional_rdom_stands_for_its_rvar_in_directives():
    """Halide converts a 1-D RDom to its RVar: `update().reorder(x, r)`
    (apps/iir_blur writes it so); results and loop order as in Halide."""
    def build(H, inp):
        x, y = H.Var("x"), H.Var("y")
        f = H.Func("f")
        f[x, y] = inp[x, y]
        r = H.RDom([(1, 11)], "r")
        f[x, r] = f[x, r - 1] * 0.5 + inp[x, r]
        f.update(0).reorder(x, r).vectorize(x, 4)
        return f
    a = np.random.default_rng(3).random((12, 16), dtype=np.float32)
    check(build, [16, 12], [a], rtol=1e-6, atol=1e-6)
    text = halo.Pipeline(build(halo, halo.Buffer(a))).loop_nest_text()
    import re
    assert re.search(r"for \(f(\$\d+)?\.s1\.r(\$\d+)?\.x,[^\n]*\n[^\n]*\n\s*vectorized", text), text
    # a 2-D RDom names no single loop: refused, naming the stage and the RDom
    x = halo.Var("x")
    g = halo.Func("g")
    g[x] = 0
    r2 = halo.RDom([(0, 3), (0, 4)], "r2")
    g[r2.x] += r2.y
    with pytest.raises(halo.CompileError,
                       match=r"In schedule for g\.update\(0\): reorder\(\) needs a Var or RVar, "
                             r"got <halo\.RDom 'r2' with 2 dims>"):
        g.update(0).reorder(r2)
