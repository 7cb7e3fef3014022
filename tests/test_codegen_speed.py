"""The lowering and codegen that make expert schedules fast (benchmarks/
bench_schedules.py): each is checked for results against the interpreter
and Halide (conftest.check), and for the code shape it exists to produce."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

import halo
from halo.ir import expr as E
from halo.ir import stmt as S
from halo.ir.types import i32
from halo.lower.fold_lets import fold_lets

from conftest import check, halide


def _rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def _matmul(hl, A, B, fused):
    x, y, xi, yi, xy = (hl.Var(n) for n in ("x", "y", "xi", "yi", "xy"))
    k = hl.RDom([hl.Range(0, 24)])
    prod, out = hl.Func("prod"), hl.Func("out")
    prod[x, y] = hl.f32(0)
    prod[x, y] += A[k.x, y] * B[x, k.x]
    out[x, y] = prod[x, y]
    out.tile(x, y, xi, yi, 8, 4)
    if fused:
        out.fuse(x, y, xy).parallel(xy)
    prod.compute_at(out, xy if fused else x).vectorize(x, 4)
    prod.update().reorder(x, y, k.x).vectorize(x, 4).unroll(k.x, 2)
    return out


def test_fused_loop_producer_is_one_tile():
    # lets of a fused loop sit just inside it: the producer's region is one
    # 8x4 tile (a constant-size buffer), not every tile of the fused range
    A, B = _rand((20, 24)), _rand((24, 16), seed=1)
    check(lambda hl, a, b: _matmul(hl, a, b, True), [16, 20], [A, B], rtol=1e-5, atol=1e-5)
    src = _matmul(halo, halo.Buffer(A), halo.Buffer(B), True)
    c = halo.Pipeline(src).c_source()
    assert "float _prod[32]" in c, "prod should be one 8x4 tile on the stack"


def test_exact_rvar_split_has_no_guard():
    A, B = _rand((16, 24)), _rand((24, 16), seed=1)
    check(lambda hl, a, b: _matmul(hl, a, b, False), [16, 16], [A, B], rtol=1e-5, atol=1e-5)
    out = _matmul(halo, halo.Buffer(A), halo.Buffer(B), False)
    stmt = halo.Pipeline(out).lowered_stmt()
    # 24 = 12 x 2: no `if (k < 24)` tail guard inside the reduction
    assert "< 24" not in stmt and "<24" not in stmt


def test_inexact_rvar_split_keeps_its_guard():
    def build(hl, a):
        x = hl.Var("x")
        r = hl.RDom([hl.Range(0, 7)])
        f = hl.Func("f")
        f[x] = hl.f32(0)
        f[x] += a[x + r.x]
        f.update().unroll(r.x, 2)
        return f
    check(build, [5], [_rand(12)], rtol=1e-6)


def _gauss(hl, a, extra_split=False):
    x, y, yo, yi = hl.Var("x"), hl.Var("y"), hl.Var("yo"), hl.Var("yi")
    bx, by = hl.Func("bx"), hl.Func("by")
    bx[x, y] = a[x, y] + 2 * a[x + 1, y] + a[x + 2, y]
    by[x, y] = bx[x, y] + bx[x, y + 1] + bx[x, y + 2] + bx[x, y + 3] + bx[x, y + 4]
    by.split(y, yo, yi, 8).parallel(yo).vectorize(x, 4)
    bx.store_at(by, yo).compute_at(by, yi).vectorize(x, 4)
    if extra_split:
        # a split of the slid dimension: no fold (GuardWithIf: a ShiftInwards
        # tail would read row -1 of the input in Halide as in halo)
        bx.split(y, y, yi, 2, hl.TailStrategy.GuardWithIf)
    return by


def test_sliding_window_through_split_consumer_folds_storage():
    a = _rand((43, 18))
    check(lambda hl, a: _gauss(hl, a), [16, 37], [a], rtol=1e-6)
    lowered = halo.Pipeline(_gauss(halo, halo.Buffer(a))).lowered_stmt()
    # slid: one new row of bx per y after the first; folded to 8 rows (5 live)
    assert "select(" in lowered and "% 8" in lowered


def test_split_slid_dimension_is_not_folded():
    a = _rand((43, 18))
    check(lambda hl, a: _gauss(hl, a, True), [16, 37], [a], rtol=1e-6)
    lowered = halo.Pipeline(_gauss(halo, halo.Buffer(a), True)).lowered_stmt()
    assert "% 8" not in lowered


def test_nested_parallel_loops_collapse():
    def build(hl, a):
        c, x, y = hl.Var("c"), hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        f[c, x, y] = a[c, x, y] * 2 + 1
        f.parallel(y).parallel(x)
        return f
    a = _rand((5, 3, 4))
    check(build, [4, 3, 5], [a])
    c = halo.Pipeline(build(halo, halo.Buffer(a))).c_source()
    assert "collapse(2)" in c


def test_parallel_loops_around_a_compute_at_producer_still_collapse():
    """A producer computed inside the innermost of three parallel loops has
    region lets that do not vary with some of them; they must not be lifted
    between the parallel loops (OpenMP would then run the inner ones serially
    inside a one-iteration outer loop: conv_layer ran 2.5x slower)."""
    def build(hl, a):
        c, x, y, n, co, ci = (hl.Var(v) for v in ("c", "x", "y", "n", "co", "ci"))
        g, f = hl.Func("g"), hl.Func("f")
        g[c, x, y, n] = a[c, x, y, n] * 2
        f[c, x, y, n] = g[c, x, y, n] + g[c, x + 1, y, n]
        f.bound(c, 0, 8).split(c, co, ci, 8).reorder(ci, x, y, n, co) \
            .parallel(y).parallel(n).parallel(co)
        g.compute_at(f, y)
        return f
    a = _rand((2, 3, 6, 8))
    check(build, [8, 5, 3, 2], [a])
    c = halo.Pipeline(build(halo, halo.Buffer(a))).c_source()
    assert "collapse(3)" in c


def test_fold_lets_constant_extents_and_value_numbering():
    v = lambda n: E.Variable(i32, n)  # noqa: E731
    lo_value = E.Min(E.Add(E.Mul(v("xo"), E.Const(i32, 5)), v("xmin")),
                     E.Sub(v("xmax"), E.Const(i32, 4)))
    body = S.Store("buf", E.Const(i32, 0), v("i"))
    loop = S.For("i", v("a.min"), E.Add(E.Sub(v("a.max"), v("a.min")), E.Const(i32, 1)),
                 S.ForKind.SERIAL, body)
    stmt = S.LetStmt("a.min", lo_value,
                     S.LetStmt("a.max", E.Add(lo_value, E.Const(i32, 4)),
                               S.LetStmt("b.min", lo_value, loop)))
    out = fold_lets(stmt)
    b_min = out.body.body
    assert b_min.value == v("a.min"), "an equal let refers to the first"
    assert b_min.body.extent == E.Const(i32, 5), "the extent folds to a constant"


def _blur_x(hl, a):
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("f")
    f[x, y] = hl.cast(hl.UInt(16), (hl.cast(hl.UInt(32), a[x, y]) + a[x + 1, y]
                                     + a[x + 2, y]) / 3)
    f.vectorize(x, 16)
    return f


def test_explicit_simd_widening_u16_stencil():
    a = np.random.default_rng(3).integers(0, 65536, size=(5, 37), dtype=np.uint16)
    check(_blur_x, [35, 5], [a])           # 35: a ShiftInwards tail
    c = halo.Pipeline(_blur_x(halo, halo.Buffer(a))).c_source()
    assert "halo_u16x" in c and "__builtin_convertvector" in c
    assert "omp simd" not in c


def test_explicit_simd_ramp_broadcast_and_float_math():
    def build(hl, a):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        # the loop variable as a value (a ramp), a uniform value (y), float /
        f[x, y] = (hl.cast(hl.Float(32), x) * 0.5 + a[x, y] * hl.cast(hl.Float(32), y)) / 3.0
        f.vectorize(x, 8)
        return f
    a = _rand((4, 19))
    check(build, [16, 4], [a], rtol=1e-6)
    assert "halo_f32x8" in halo.Pipeline(build(halo, halo.Buffer(a))).c_source()


def test_explicit_simd_float_splat_keeps_negative_zero():
    """A uniform float splat into a vector is exact: -0.0 stays -0.0 (a splat
    written as `{0} + x` added +0.0 and lost the sign, unlike Halide), and
    costs no scalar addition."""
    x = halo.Var("x")
    p = halo.Param(halo.Float(32), "p", -0.0)
    a = np.arange(1, 33, dtype=np.float32)
    f = halo.Func("f")
    f[x] = halo.Buffer(a)[x] * p
    f.vectorize(x, 16)
    out = np.asarray(f.realize([32]))
    assert np.signbit(out).all(), out[:4]
    if halide is not None:
        hp = halide.Param(halide.Float(32), "p", -0.0)
        hf = halide.Func("f")
        hx = halide.Var("x")
        hf[hx] = halide.Buffer(a)[hx] * hp
        np.testing.assert_array_equal(np.signbit(np.asarray(hf.realize([32]))), np.signbit(out))


def test_explicit_simd_wrapping_u8_and_signed_division():
    def build(hl, a):
        x = hl.Var("x")
        f, g = hl.Func("f"), hl.Func("g")
        f[x] = a[x] * hl.u8(3) + hl.u8(200)          # wraps in 8 bits
        g[x] = hl.cast(hl.Int(32), f[x]) / -7 + a[x]   # Halide's signed rounding
        f.compute_root().vectorize(x, 32)
        g.vectorize(x, 8)
        return g
    a = np.random.default_rng(4).integers(0, 256, size=64, dtype=np.uint8)
    check(build, [64], [a])
    c = halo.Pipeline(build(halo, halo.Buffer(a))).c_source()
    assert "halo_u8x" in c                   # f: explicit vectors
    assert "omp simd" not in c               # g too: Euclidean division by a constant


def _gather_sum(hl, a, w, taps=5):
    """resize's horizontal pass: a reduction computed per lane of the
    consumer's vector loop, reading its input at a data-dependent column."""
    x, y, c, xi = hl.Var("x"), hl.Var("y"), hl.Var("c"), hl.Var("xi")
    r = hl.RDom([(0, taps)], "r")
    acc, out = hl.Func("acc"), hl.Func("out")
    begin = hl.clamp((x * 3) // 2 - 1, 0, a.width() - taps)
    acc[x, y, c] = hl.f32(0)
    acc[x, y, c] += w[x, r] * a[begin + r, y, c]
    out[x, y, c] = hl.clamp(acc[x, y, c], hl.f32(-2), hl.f32(2))
    out.split(x, x, xi, 16).vectorize(xi).reorder(xi, c, x, y)
    acc.compute_at(out, xi).unroll(c)
    acc.update().unroll(c)
    return out


def test_producer_inside_a_vector_loop_is_vector_code():
    """A producer computed at a vectorized loop gets a copy per lane of its
    storage and its loops run on vectors (as Halide widens it), instead of
    the whole loop falling back to a scalar `omp simd` loop."""
    a, w = _rand((3, 7, 60)), _rand((5, 37), seed=2)     # 37 wide: a ShiftInwards tail
    check(lambda hl, a, w: _gather_sum(hl, a, w), [37, 7, 3], [a, w], rtol=1e-5, atol=1e-6)
    c = halo.Pipeline(_gather_sum(halo, halo.Buffer(a), halo.Buffer(w))).c_source()
    assert "omp simd" not in c and "halo_f32x" in c


_CAST_TYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
               "float32", "float64"]


def _cast_input(dtype, n=64, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        # floats in the range of every integer type (out of range is undefined)
        return (rng.random(n) * 120 + rng.integers(0, 2, n) * 0.75).astype(dtype)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
    a[:4] = [info.min, info.max, 0, -1 if info.min < 0 else 1]
    return a


def test_vector_casts_between_all_types_match_numpy():
    """Every element-type conversion, vectorized at 8, 16 and 32 lanes,
    equals numpy's astype (integers wrap, extend by the source's signedness,
    floats truncate toward zero). The C backend prints conversions in
    steps, through AVX2/AVX-512 intrinsics where the target has them (gcc's
    own lowering of a multi-step conversion is scalar code), so each step
    chain is exercised here."""
    from halo.ir.types import from_numpy
    for src in _CAST_TYPES:
        a = _cast_input(src)
        x = halo.Var("x")
        outs, expected = [], []
        for dst in _CAST_TYPES:
            for lanes in (8, 16, 32):
                f = halo.Func(f"to_{dst}_x{lanes}")
                f[x] = halo.cast(from_numpy(np.dtype(dst)), halo.Buffer(a, "a")[x])
                f.vectorize(x, lanes)
                outs.append(f)
                expected.append(a.astype(dst))
        p = halo.Pipeline(outs)
        got = p.realize([a.size])
        for f, g, e in zip(outs, got, expected):
            np.testing.assert_array_equal(np.asarray(g), e, err_msg=f"{src} -> {f.name()}")
    c = p.c_source()        # the last source, float64: to narrow ints through int32
    assert "halo_f64x16" in c


def test_widening_to_one_avx512_register_is_one_instruction():
    """uint16 x16 -> uint32 x16 (one zmm) prints the vpmovzxwd intrinsic
    behind a macro; gcc's builtin takes five instructions for it."""
    x = halo.Var("x")
    a = np.arange(64, dtype=np.uint16)
    f = halo.Func("f")
    f[x] = halo.u32(halo.Buffer(a)[x]) * 3
    f.vectorize(x, 16)
    c = halo.Pipeline(f).c_source()
    assert "_mm512_cvtepu16_epi32" in c and "#if defined(__AVX512F__)" in c
    np.testing.assert_array_equal(np.asarray(f.realize([64])), a.astype(np.uint32) * 3)


def test_vector_min_max_of_every_type_match_numpy():
    """min/max of one AVX2/AVX-512 register print as vpmin*/vpmax*/vminps
    (intrinsics behind macros); their results equal the compare-and-blend:
    min(a, b) = a < b ? a : b, so NaN and signed zeros pick as it does."""
    from halo.ir.types import from_numpy
    rng = np.random.default_rng(5)
    for dtype in _CAST_TYPES:
        a, b = _cast_input(dtype, seed=1), _cast_input(dtype, seed=2)
        if np.dtype(dtype).kind == "f":
            a[4:8] = [np.nan, 1.0, -0.0, 0.0]
            b[4:8] = [1.0, np.nan, 0.0, -0.0]
        x = halo.Var("x")
        A, B = halo.Buffer(a, "a"), halo.Buffer(b, "b")
        outs = []
        lane_counts = sorted({32 // a.itemsize, 64 // a.itemsize} - {2})
        for lanes in lane_counts:
            lo, hi = halo.Func(f"lo_{lanes}"), halo.Func(f"hi_{lanes}")
            lo[x] = halo.min(A[x], B[x])
            hi[x] = halo.max(A[x], B[x])
            lo.vectorize(x, lanes)
            hi.vectorize(x, lanes)
            outs += [lo, hi]
        p = halo.Pipeline(outs)
        got = p.realize([a.size])
        for i, lanes in enumerate(lane_counts):
            np.testing.assert_array_equal(np.asarray(got[2 * i]), np.where(a < b, a, b),
                                          err_msg=f"min {dtype} x{lanes}")
            np.testing.assert_array_equal(np.asarray(got[2 * i + 1]), np.where(a > b, a, b),
                                          err_msg=f"max {dtype} x{lanes}")
        if dtype == "float32":
            np.testing.assert_array_equal(np.signbit(np.asarray(got[0]))[6:8], [False, True])
        if dtype == "int16":
            assert "_mm512_min_epi16" in p.c_source()
    del rng


def _lut_pipeline(hl, table, img, lanes, internal):
    """out[x] = lut[img[x]]: a lookup table computed by the pipeline (halo's
    own allocation) or read from an input buffer."""
    x = hl.Var("x")
    lut, out = hl.Func("lut"), hl.Func("out")
    lut[x] = table[x]
    if internal:
        lut.compute_root()
    out[x] = lut[hl.clamp(hl.cast(hl.Int(32), img[x]), 0, table.width() - 1)]
    out.vectorize(x, lanes)
    return out


def test_vector_gathers_match_the_scalar_lookup():
    """Data-dependent loads (lookup tables) gather with vpgatherdd/dq on
    AVX-512 (8 lanes of 32 bits: AVX2's): 32/64-bit elements from any buffer; 8/16-bit ones as 32-bit
    words read from halo's own allocations only (their bytes past the end
    stay readable), narrowed. Indices include the table's last element."""
    rng = np.random.default_rng(7)
    img = rng.integers(0, 1100, size=128).astype(np.int16)
    img[:3] = [0, 1023, 1023]
    for dtype in ("uint8", "int16", "int32", "float32", "float64"):
        table = _cast_input(dtype, n=1024, seed=3)
        for lanes in (8, 16, 32):
            for internal in (True, False):
                check(lambda hl, t, i: _lut_pipeline(hl, t, i, lanes, internal),
                      [img.size], [table, img])
    t8 = _cast_input("uint8", n=1024)
    src = halo.Pipeline(_lut_pipeline(halo, halo.Buffer(t8), halo.Buffer(img), 32, True)).c_source()
    assert "_mm512_i32gather_epi32" in src and "_mm512_cvtepi32_epi8" in src
    # 8 lanes of float (local_laplacian's remap): AVX2's ymm gather
    t32 = _cast_input("float32", n=1024)
    src = halo.Pipeline(_lut_pipeline(halo, halo.Buffer(t32), halo.Buffer(img), 8, False)).c_source()
    assert "_mm256_i32gather_epi32" in src
    # an input table of bytes: no over-reading gather, the scalar lookup
    src = halo.Pipeline(_lut_pipeline(halo, halo.Buffer(t8), halo.Buffer(img), 32, False)).c_source()
    assert "i32gather" not in src


def _byte_lut(hl, table, img, size, lanes, index_bits, first):
    """out[x] = lut[i(x)] for a lookup table of `size` bytes that the
    pipeline computes (a constant-size allocation), its domain starting at
    `first`; the index is int16 or int32."""
    x = hl.Var("x")
    lut, out = hl.Func("lut"), hl.Func("out")
    lut[x] = table[x - first]
    lut.compute_root().bound(x, first, size)
    i = hl.clamp(hl.cast(hl.Int(index_bits), img[x]), first, first + size - 1)
    out[x] = lut[i]
    out.vectorize(x, lanes)
    return out


@pytest.mark.parametrize("cc_flags", ["", "-U__AVX512VBMI__"])
def test_small_byte_tables_are_looked_up_with_permutes(cc_flags, monkeypatch):
    """A byte table of at most 1 KiB that halo allocates with a constant size
    sits in zmm registers and is read with vpermi2b (AVX512-VBMI), 128
    entries a permute, the index's high bits picking each lane's result:
    camera_pipe's tone curve 6.6 -> 4.4 ms on one core (Halide 5.5). Sizes
    that are not a multiple of 64 load the last register with a mask;
    a table whose domain starts elsewhere than 0 offsets the index. Every
    entry is read at least once, the last one included. Without VBMI (the
    macro undefined) the same code gathers."""
    from halo.runtime.compiler import find_compiler
    if cc_flags:
        monkeypatch.setenv("CC", " ".join(find_compiler()) + " " + cc_flags)
        find_compiler.cache_clear()
    rng = np.random.default_rng(13)
    try:
        for dtype in ("uint8", "int8"):
            for size, first in ((1024, 0), (300, -7), (64, 5), (129, 0)):
                table = _cast_input(dtype, n=size, seed=size)
                img = rng.integers(first - 20, first + size + 20,
                                   size=4 * size + 64).astype(np.int32)
                img[:size] = np.arange(first, first + size)
                for lanes, bits in ((32, 16), (16, 32), (64, 16)):
                    check(lambda hl, t, i: _byte_lut(hl, t, i, size, lanes, bits, first),
                          [img.size], [table, img], halide_oracle=not cc_flags)
    finally:
        find_compiler.cache_clear()
    t8 = _cast_input("uint8", n=1024)
    src = halo.Pipeline(_byte_lut(halo, halo.Buffer(t8), halo.Buffer(img), 1024, 32, 16, 0)) \
        .c_source()
    assert src.count("_mm512_permutex2var_epi8(") >= 8, "no permute lookup"
    # a table from an input buffer (its size unknown when printed): a gather
    src = halo.Pipeline(_lut_pipeline(halo, halo.Buffer(t8), halo.Buffer(img), 32, False)) \
        .c_source()
    assert "permutex2var" not in src


def _corners(hl, table, img):
    """bilateral_grid's slicing, in 2-D: four lookups around a data-dependent
    row, in the column of x / 8 (the same in an aligned vector of 8 x)."""
    x = hl.Var("x")
    i = hl.clamp(hl.cast(hl.Int(32), img[x]), 0, table.height() - 2)
    xi = x / 8
    out = hl.Func("out")
    out[x] = (table[xi, i] * 2 + table[xi + 1, i] * 3) + (table[xi, i + 1] * 5 + table[xi + 1, i + 1])
    out.vectorize(x, 8)
    return out


def test_lookups_at_offsets_of_one_index_share_its_lanes():
    """Gathers whose indices differ by a lane-invariant part (x / 8 over an
    aligned vector, a constant) share one array of lane offsets, and 8 lanes
    load straight into a vector (gcc inserts them in registers; through a
    stack array, the vector reload stalls on store forwarding):
    bilateral_grid's slicing 9.9 -> 8.7 ms on one core."""
    rng = np.random.default_rng(11)
    table = rng.standard_normal((9, 17)).astype(np.float32)
    img = rng.integers(-3, 12, size=120).astype(np.int16)
    check(_corners, [img.size], [table, img], rtol=1e-6)   # (the C compiler fuses multiply-adds)
    src = halo.Pipeline(_corners(halo, halo.Buffer(table), halo.Buffer(img))).c_source()
    uses = Counter(re.findall(r"= \(halo_f32x8\)\{\w+\[(_ix\w*)\[0\]\]", src))
    assert uses and max(uses.values()) == 2, uses      # aligned: two rows, two columns
    assert "_got" not in src


def test_constant_loop_ranges_decide_shift_inwards_mins():
    """A ShiftInwards split of a loop whose extent is a constant multiple of
    the factor needs no `min` once the region lets are substituted (c.max -
    c.min = 63): the staging copy's offsets are then constants and gcc keeps
    it in registers (conv_layer 2.04 -> 1.43 ms). An extent the factor does
    not divide keeps its min."""
    def build(hl, w, a, block):
        vec = 16 if block % 16 == 0 else 8      # the accumulators divide the block
        c, n, co, ci = hl.Var("c"), hl.Var("n"), hl.Var("co"), hl.Var("ci")
        r = hl.RDom([(0, 8)], "r")
        taps, acc, out = hl.Func("taps"), hl.Func("acc"), hl.Func("out")
        taps[c, n] = w[c, n]
        acc[c] = hl.f32(0)
        acc[c] += taps[c, r.x] * a[r.x]
        out[c] = acc[c]
        out.split(c, co, ci, block).vectorize(ci, vec)
        acc.compute_at(out, co).vectorize(c, vec).unroll(c)
        acc.update().reorder(c, r.x).vectorize(c, vec).unroll(c)
        taps.compute_at(acc, r.x).vectorize(c, 16).unroll(c)
        return out
    a = _rand(8, seed=2)
    for block, width in ((64, 128), (40, 120)):
        w = _rand((8, width), seed=1)
        check(lambda hl, w_, a_: build(hl, w_, a_, block), [width], [w, a], rtol=1e-6)
        src = halo.Pipeline(build(halo, halo.Buffer(w), halo.Buffer(a), block)).c_source()
        staging = [l for l in src.splitlines() if "memcpy(&_taps[" in l]
        assert staging, "no vector store to the staging buffer"
        if block == 64:
            assert not any("halo_min_i32" in l for l in staging), staging[0]
        else:
            assert all("halo_min_i32" in l for l in staging), staging[0]


def _premultiply(hl, a, width):
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    clamped = hl.BoundaryConditions.repeat_edge(a)
    f = hl.Func("premul")
    f[x, y, c] = hl.select(c < 3, clamped[x, y, c] * clamped[x, y, 3], clamped[x, y, 3])
    f.bound(x, 0, width).bound(y, 0, 6).bound(c, 0, 3).reorder(c, x, y).unroll(c) \
        .vectorize(x, 16).parallel(y)
    return f


def test_bounded_output_constants_reach_the_parallel_loops():
    """An output with bound() has constant loop bounds; they reach the loops
    inside the OpenMP-outlined parallel body (where the C compiler cannot
    propagate them), and there decide the boundary condition's in-bounds
    test and the channel select: interpolate's output had a runtime channel
    extent, so `unroll(c)` did not unroll, and a branch per channel. Where
    the output reaches past the input (width 72), the test stays."""
    a = _rand((4, 6, 64), seed=4)
    for width in (64, 72):
        check(lambda hl, a_: _premultiply(hl, a_, width), [width, 6, 3], [a])
        src = halo.Pipeline(_premultiply(halo, halo.Buffer(a), width)).c_source()
        impl = src[src.index("_premul_s0_c_end"):src.index("static int halo_premul_query_impl")]
        assert impl.startswith("_premul_s0_c_end = 0 + 3;"), impl[:60]
        assert "_sel" not in impl, "the channel select is decided per unrolled channel"
        assert ("if (" in impl) == (width == 72), impl[:600]


def test_fold_lets_decides_conditions_from_outer_lets_and_loop_ranges():
    v = lambda n: E.Variable(i32, n)  # noqa: E731
    c = lambda k: E.Const(i32, k)      # noqa: E731
    store = lambda k: S.Store("buf", c(k), v("x"))  # noqa: E731
    # x in [w.min, w.min + 16) with w.min = 0 from the lets around the body
    body = S.IfThenElse(E.LT(v("x"), c(16)), store(1), store(2))
    keep = S.IfThenElse(E.LT(v("x"), c(8)), store(3), store(4))
    sel = S.Store("buf", E.Select(E.GE(v("x"), v("w.min")), c(5), c(6)), v("x"))
    loop = S.For("x", v("w.min"), c(16), S.ForKind.SERIAL, S.block(body, keep, sel))
    out = fold_lets(loop, {}, [("w.min", E.Max(c(0), E.Min(c(-3), v("p"))))])
    assert out.min != c(0), "an opaque outer let stays a name"
    out = fold_lets(loop, {}, [("w.min", E.Sub(c(5), c(5)))])
    first, second, third = out.body.stmts
    assert first == store(1), "x < 16 always holds"
    assert isinstance(second, S.IfThenElse), "x < 8 depends on x"
    assert third.value == c(5), "x >= w.min always holds"


def _even_odd_sum(hl, a):
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("f")
    f[x, y] = a[2 * x, y] + a[2 * x + 1, y]
    f.vectorize(x, 64)
    return f


def test_strided_shuffles_fit_one_register():
    """A stride-2 read of 64 int16 lanes is two dense loads and a shuffle of
    their even lanes; on vectors wider than a register gcc moves every lane
    through a scalar (128 movzwl/vpinsrw), so the loop is printed in chunks
    whose shuffles fit one (camera_pipe's denoise-to-deinterleave micro:
    halo 0.75 -> 0.55 ms, Halide 0.47-0.51)."""
    a = np.random.default_rng(5).integers(-30000, 30000, size=(3, 260), dtype=np.int16)
    check(_even_odd_sum, [128, 3], [a])
    src = halo.Pipeline(_even_odd_sum(halo, halo.Buffer(a))).c_source(halo.Target("host-avx512"))
    shuffles = re.findall(r"(halo_\w+) _shuf\w*;", src)
    assert shuffles and set(shuffles) == {"halo_i16x32"}, shuffles


def _sum_of_16_bit_products(a, b, c, m, lanes):
    """Colour-matrix style sums: uniform x varying pairs, a varying x
    varying pair, a product left alone and terms that are not products."""
    x = halo.Var("x")
    A, B, C = (halo.Buffer(v, n) for v, n in ((a, "a"), (b, "b"), (c, "c")))
    M = [halo.Param(halo.Int(16), f"m{k}", int(v)) for k, v in enumerate(m)]
    ia, ib, ic = halo.i32(A[x]), halo.i32(B[x]), halo.i32(C[x])
    f = halo.Func("dot16")
    f[x] = M[3] + M[0] * ia + M[1] * ib + M[2] * ic + ia * ib + x * 3 + ic * -32767 + ia * 4
    f.vectorize(x, lanes)
    return f


def _sum_of_16_bit_products_numpy(a, b, c, m):
    a, b, c, m = (v.astype(np.int64) for v in (a, b, c, m))
    x = np.arange(a.size, dtype=np.int64)
    total = m[3] + m[0] * a + m[1] * b + m[2] * c + a * b + x * 3 + c * -32767 + a * 4
    return total.astype(np.int32)          # int32 arithmetic wraps


@pytest.mark.parametrize("target", ["host", "x86-64-linux-avx512", "x86-64-linux-avx2",
                                    "x86-64-linux", "portable"])
def test_sums_of_16_bit_products_use_multiply_add(target, monkeypatch):
    """int32 sums of widened int16/uint8 products print as pmaddwd (two
    products per instruction) and vpdpwssd where AVX-512 VNNI is targeted,
    as Halide's x86 backend does; exact at the int16 extremes, where two
    products of -32768 * -32768 wrap int32, and equal to the portable C
    the macros fall back to (`portable`: the compiler's x86 macros
    undefined)."""
    from halo.runtime.compiler import find_compiler
    rng = np.random.default_rng(3)
    n = 256
    a = rng.integers(-32768, 32768, n, dtype=np.int16)
    b = rng.integers(-32768, 32768, n, dtype=np.int16)
    c = rng.integers(0, 256, n, dtype=np.uint8)
    a[:4], b[:4], c[:4] = [-32768, -32768, 32767, 0], [-32768, 32767, -32768, 5], [255, 0, 1, 2]
    m = np.array([-32768, 32767, -7, 12345], dtype=np.int16)
    if target == "portable":
        cc = " ".join(find_compiler()) + " " + " ".join(
            f"-U{f}" for f in ("__SSE2__", "__AVX2__", "__AVX512BW__", "__AVX512VNNI__"))
        monkeypatch.setenv("CC", cc)
        find_compiler.cache_clear()
    try:
        for lanes in (16, 64):
            f = _sum_of_16_bit_products(a, b, c, m, lanes)
            t = halo.Target("host" if target == "portable" else target)
            np.testing.assert_array_equal(np.asarray(f.realize([n], t)),
                                          _sum_of_16_bit_products_numpy(a, b, c, m),
                                          err_msg=f"{target} x{lanes}")
    finally:
        find_compiler.cache_clear()
    src = halo.Pipeline(f).c_source(t)
    assert "halo_madd16_i32x" in src and "halo_dot16_i32x" in src
    reg = {"host": "_mm512", "x86-64-linux-avx512": "_mm512", "x86-64-linux-avx2": "_mm256",
           "x86-64-linux": "_mm", "portable": "_mm512"}[target]
    assert f"{reg}_madd_epi16" in src and f"{reg}_dpwssd_epi32" in src


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16"])
def test_rounding_average_of_narrow_integers_stays_narrow(dtype):
    """cast(t, (wide(a) + wide(b) + 1) / 2), or `>> 1`, for every narrow t
    and wider type: computed in t with no widening (pavgw/pavgb for
    unsigned t), equal to numpy's widened arithmetic at the extremes."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(11)
    n = 256
    a = rng.integers(info.min, info.max + 1, n, dtype=dtype)
    b = rng.integers(info.min, info.max + 1, n, dtype=dtype)
    a[:6] = [info.min, info.min, info.max, info.max, info.min, -1 if info.min else 1]
    b[:6] = [info.min, info.max, info.max, info.min, 0, 1]
    expected = ((a.astype(np.int64) + b + 1) >> 1).astype(dtype)
    t = halo.Buffer(a).type()
    wides = [halo.Int(32), halo.UInt(32)] + ([halo.Int(16), halo.UInt(16)] if t.bits() == 8 else [])
    x = halo.Var("x")
    A, B = halo.Buffer(a, "a"), halo.Buffer(b, "b")
    outs = []
    for k, wide in enumerate(wides):
        for lanes in (16, 64):
            s = halo.cast(wide, A[x]) + halo.cast(wide, B[x]) + 1
            div, shr = halo.Func(f"div_{k}_{lanes}"), halo.Func(f"shr_{k}_{lanes}")
            div[x] = halo.cast(t, s / 2)
            shr[x] = halo.cast(t, s >> 1)
            div.vectorize(x, lanes)
            shr.vectorize(x, lanes)
            outs += [div, shr]
    p = halo.Pipeline(outs)
    for f, got in zip(outs, p.realize([n])):
        np.testing.assert_array_equal(np.asarray(got), expected, err_msg=f.name())
    src = p.c_source()
    assert f"halo_avg_{'u' if t.is_uint() else 'i'}{t.bits()}x" in src
    assert "__builtin_convertvector" not in src         # nothing is widened
    if t.is_uint():
        assert f"_avg_epu{t.bits()}(" in src
