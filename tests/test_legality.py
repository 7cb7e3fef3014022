"""Race checks for parallel/vectorized RVar loops (islpy), with messages
that name the stage, the loop and two conflicting iterations."""
import numpy as np
import pytest

import halo as hl
from halo import interp


def test_histogram_parallel_rvar_is_a_race():
    x = hl.Var("x")
    img = hl.Buffer(np.arange(20, dtype=np.uint8))
    r = hl.RDom([(0, 20)])
    h = hl.Func("hist")
    h[x] = 0
    h[hl.i32(img[r.x])] += 1
    h.update(0).parallel(r.x)
    with pytest.raises(hl.CompileError, match=r"hist\.update\(0\).*parallel loop.*race condition"
                                              r".*both write the same element of hist"):
        h.realize([256])


def test_prefix_sum_vectorized_names_conflicting_iterations():
    x = hl.Var("x")
    ps = hl.Func("ps")
    ps[x] = x
    r = hl.RDom([(1, 9)])
    ps[r.x] = ps[r.x] + ps[r.x - 1]
    ps.update(0).vectorize(r.x)
    with pytest.raises(hl.CompileError, match=r"vectorized loop .* race condition: iterations "
                                              r".*=1 and .*=2 write and read element \(1\)"):
        ps.realize([10])


def test_reduction_onto_one_element_over_parallel_outer_rvar():
    x = hl.Var("x")
    s = hl.Func("s")
    s[x] = 0
    r = hl.RDom([(0, 8), (0, 8)])
    s[r.x] += r.y
    s.update(0).parallel(r.y)
    with pytest.raises(hl.CompileError, match=r"both write element"):
        s.realize([8])


def test_race_free_rvar_loops_are_allowed():
    x, y = hl.Var("x"), hl.Var("y")
    g = hl.Func("g")
    g[x] = 0
    r = hl.RDom([(0, 10)])
    g[r.x] = g[r.x] * 2 + r.x
    g.update(0).parallel(r.x)
    np.testing.assert_array_equal(np.asarray(g.realize([10])), interp.realize(g, [10])[0])

    m = hl.Func("m")
    m[x, y] = 0
    r2 = hl.RDom([(0, 8), (0, 8)])
    m[r2.x, r2.y] = m[r2.x, r2.y] + r2.x * r2.y
    m.update(0).parallel(r2.y).vectorize(r2.x)
    np.testing.assert_array_equal(np.asarray(m.realize([8, 8])), interp.realize(m, [8, 8])[0])


def test_pure_var_parallel_update_is_always_legal():
    x = hl.Var("x")
    f = hl.Func("f")
    f[x] = x
    r = hl.RDom([(0, 5)])
    f[x] = f[x] + r.x * x
    f.update(0).parallel(x)
    np.testing.assert_array_equal(np.asarray(f.realize([16])), interp.realize(f, [16])[0])


def test_atomic_histogram_may_run_in_parallel():
    x = hl.Var("x")
    img = hl.Buffer(np.random.default_rng(3).integers(0, 256, size=(64, 48), dtype=np.uint8))
    r = hl.RDom([(0, 48), (0, 64)])
    h = hl.Func("hist")
    h[x] = 0
    h[hl.i32(img[r.x, r.y])] += 1
    h.update(0).atomic().parallel(r.y)
    assert "#pragma omp atomic" in hl.Pipeline(h).c_source()
    np.testing.assert_array_equal(np.asarray(h.realize([256])),
                                  np.bincount(np.asarray(img).ravel(), minlength=256))


def test_atomic_does_not_excuse_a_dependence_on_another_element():
    x = hl.Var("x")
    ps = hl.Func("ps")
    ps[x] = x
    r = hl.RDom([(1, 9)])
    ps[r.x] = ps[r.x] + ps[r.x - 1]
    ps.update(0).atomic().parallel(r.x)
    with pytest.raises(hl.CompileError, match="write and read"):
        ps.realize([10])


def test_atomic_min_uses_a_critical_section():
    x = hl.Var("x")
    vals = hl.Buffer(np.array([5, -3, 7, 2, -8, 4], dtype=np.int32))
    r = hl.RDom([(0, 6)])
    m = hl.Func("m")
    m[x] = 100
    m[0] = hl.min(m[0], vals[r.x])
    m.update(0).atomic().parallel(r.x)
    assert "omp critical" in hl.Pipeline(m).c_source()
    assert np.asarray(m.realize([2])).tolist() == [-8, 100]


def test_atomic_is_for_update_stages():
    x = hl.Var("x")
    f = hl.Func("f")
    f[x] = x
    with pytest.raises(hl.CompileError, match="atomic\\(\\) applies to an update stage"):
        f.atomic()


def test_rfactor_histogram_in_parallel_strips():
    from conftest import check
    img = np.random.default_rng(0).integers(0, 256, size=(64, 96), dtype=np.uint8)

    def build(H, im):
        x, u = H.Var("x"), H.Var("u")
        r = H.RDom([(0, 96), (0, 64)])
        h = H.Func("hist")
        h[x] = 0
        h[H.i32(im[r.x, r.y])] += 1
        intm = h.update(0).rfactor(r.y, u)
        intm.compute_root().update(0).parallel(u)
        return h
    (out,) = check(build, [256], [img])
    assert out.sum() == img.size


def test_rfactor_float_sum_vectorized_over_the_new_var():
    from conftest import check
    img = np.random.default_rng(1).integers(0, 256, size=(64, 96), dtype=np.uint8)

    def build(H, im):
        y, u = H.Var("y"), H.Var("u")
        r = H.RDom([(0, 96)])
        s = H.Func("s")
        s[y] = 0.0
        s[y] += H.f32(im[r.x, y]) * 0.5
        s.update(0).rfactor(r.x, u).compute_root().vectorize(u, 8)
        return s
    check(build, [64], [img], rtol=1e-5)


def test_rfactor_of_a_split_rvar_in_parallel_strips():
    """Halide's pattern: split an RVar, rfactor its outer part (rows 0..99 in
    strips of 8: 8 does not divide 100, so the strips carry a predicate)."""
    from conftest import check
    img = np.random.default_rng(2).integers(0, 256, size=(100, 40), dtype=np.uint8)

    def build(H, im):
        x, u = H.Var("x"), H.Var("u")
        ryo, ryi = H.RVar("ryo"), H.RVar("ryi")
        r = H.RDom([(0, 40), (0, 100)], "r")
        h = H.Func("hist")
        h[x] = 0
        h[H.i32(im[r.x, r.y]) % 16] += 1
        h.update(0).split(r.y, ryo, ryi, 8)
        intm = h.update(0).rfactor(ryo, u)
        intm.compute_root().update(0).parallel(u)
        return h
    (out,) = check(build, [16], [img])
    assert out.sum() == img.size


def test_rfactor_of_a_split_rvar_inner_part_vectorized():
    """Vectorize a sum: split r.x by 8 and rfactor the inner part into u."""
    from conftest import check
    img = np.random.default_rng(3).random((5, 37), dtype=np.float32)

    def build(H, im):
        y, u = H.Var("y"), H.Var("u")
        rxo, rxi = H.RVar("rxo"), H.RVar("rxi")
        r = H.RDom([(0, 37)], "r")
        s = H.Func("s")
        s[y] = H.f32(0)
        s[y] += im[r.x, y]
        s.update(0).split(r.x, rxo, rxi, 8)
        intm = s.update(0).rfactor(rxi, u)
        intm.compute_root().vectorize(u, 8)
        intm.update(0).reorder(u, rxo).vectorize(u, 8)
        return s
    check(build, [5], [img], rtol=1e-5)


def test_rfactor_keeps_the_names_of_the_other_rvars():
    """After rfactor(r.y, u) the intermediate's update still iterates r.x,
    so it can be scheduled by the RVar object, as in Halide."""
    from conftest import check
    img = np.random.default_rng(4).random((16, 24), dtype=np.float32)

    def build(H, im):
        x, u = H.Var("x"), H.Var("u")
        r = H.RDom([(0, 24), (0, 16)], "r")
        f = H.Func("f")
        f[x] = H.f32(0)
        f[x] += im[r.x, r.y] * H.f32(x + 1)
        intm = f.update(0).rfactor(r.y, u)
        intm.compute_root().update(0).reorder(u, r.x).vectorize(u, 8)
        return f
    check(build, [3], [img], rtol=1e-5)


def test_rfactor_after_fusing_rvars_is_refused():
    x, u = hl.Var("x"), hl.Var("u")
    r = hl.RDom([(0, 4), (0, 4)], "r")
    f = hl.Func("f")
    f[x] = 0
    f[x] += r.x + r.y
    f.update(0).fuse(r.x, r.y, hl.RVar("rf"))
    with pytest.raises(hl.CompileError, match=r"f\.update\(0\): rfactor\(\) after fuse\(\) "
                                              r"of the RVar"):
        f.update(0).rfactor(hl.RVar("rf"), u)


def test_rfactor_errors_name_the_stage():
    x, u = hl.Var("x"), hl.Var("u")
    r = hl.RDom([(0, 4)])
    f = hl.Func("f")
    f[x] = 0
    f[x] = f[x] * 2 + r.x
    with pytest.raises(hl.CompileError, match=r"f\.update\(0\): rfactor\(\) needs an update of "
                                              r"the form f\[\.\.\.\] = f\[\.\.\.\] op e"):
        f.update(0).rfactor(r.x, u)
    g = hl.Func("g")
    g[x] = 0
    g[x] += r.x
    with pytest.raises(hl.CompileError, match=r"rfactor\(\) needs a new Var"):
        g.update(0).rfactor(r.x, x)
