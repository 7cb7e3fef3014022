"""VALUES of expressions, computed by halo's C code, its interpreter and
Halide (conftest.check), over Var ranges so nothing is constant-folded
unless a test means it to be."""
import warnings

import numpy as np
import pytest

import halo
from conftest import check, halide, needs_halide

pytestmark = needs_halide

# uint64 numpy arrays are refused by halide.Buffer ("Unsupported Buffer<> type"),
# so uint64 is reached through casts instead of inputs.
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"]


def _vals(dt, small=False):
    info = np.iinfo(dt)
    base = [0, 1, 2, 3, 5, 7, 100, 127, info.max, info.max - 1]
    if info.min < 0:
        base += [-1, -2, -3, -5, -7, -100, -128, info.min, info.min + 1]
    if small:  # keep int32/int64 arithmetic clear of signed overflow (UB)
        base = [v for v in base if abs(v) <= 1000]
    return np.array(sorted(set(v for v in base if info.min <= v <= info.max)), dtype=dt)


@pytest.mark.parametrize("dt", INT_DTYPES)
def test_div_mod_all_int_types_runtime(dt):
    """Euclidean / and %, x/0 == 0, x%0 == 0, // same as / on ints."""
    wide = dt in ("int32", "int64")
    a = _vals(dt, small=wide)
    b = _vals(dt, small=True)
    if wide:  # INT_MIN / -1 overflows: undefined for int32/int64
        a = a[a != np.iinfo(dt).min]

    def build(hl, A, B):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        # div/mod_round_to_zero follow C: by 0 or MIN / -1 is undefined (it traps)
        nz = hl.select(B[y] == 0, 1, B[y])
        t = A[x].type()
        an = hl.max(A[x], hl.cast(t, -2**(t.bits() - 1) + 1)) if t.is_int() else A[x]
        f[x, y] = (A[x] / B[y], A[x] % B[y], A[x] // B[y],
                   hl.div_round_to_zero(an, nz), hl.mod_round_to_zero(an, nz))
        return f
    d, m, fd, dz, mz = check(build, [len(a), len(b)], [a, b])
    # spot-check against the rule, for the signed types
    for i, av in enumerate(a.tolist()):
        for j, bv in enumerate(b.tolist()):
            if bv == 0:
                assert d[j, i] == 0 and m[j, i] == 0
            elif np.iinfo(dt).min < 0 and abs(av) < 1000:
                q = av // bv if bv > 0 else -((-av) // bv)
                if q > np.iinfo(dt).max:
                    continue  # MIN / -1 wraps for int8/int16
                assert d[j, i] == q and m[j, i] == av - q * bv and m[j, i] >= 0


def test_div_mod_documented_table():
    a = np.array([7, 7, -7, -7, 5, -5, 0], dtype=np.int32)
    b = np.array([2, -2, 2, -2, 0, 0, 3], dtype=np.int32)

    def build(hl, A, B):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (A[x] / B[x], A[x] % B[x])
        return f
    d, m = check(build, [7], [a, b])
    assert d.tolist() == [3, -3, -4, 4, 0, 0, 0]
    assert m.tolist() == [1, 1, 1, 1, 0, 0, 0]


def test_div_mod_params_and_constants():
    pairs = [(7, 2), (7, -2), (-7, 2), (-7, -2), (9, 0), (-9, 0), (0, 0), (-1, 3), (100, -7)]
    want = [(3, 1), (-3, 1), (-4, 1), (4, 1), (0, 0), (0, 0), (0, 0), (-1, 2), (-14, 2)]

    for hl_ in (halo, halide):
        pa, pb = hl_.Param(hl_.Int(32), "pa"), hl_.Param(hl_.Int(32), "pb")
        x = hl_.Var("x")
        f = hl_.Func("f")
        f[x] = (pa / pb + x * 0, pa % pb + x * 0)
        for (av, bv), (q, r) in zip(pairs, want):
            pa.set(av)
            pb.set(bv)
            out = f.realize([1])
            assert int(np.asarray(out[0])[0]) == q, (hl_.__name__, av, bv)
            assert int(np.asarray(out[1])[0]) == r, (hl_.__name__, av, bv)

    def build(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        vals = []
        for av, bv in pairs:
            vals += [hl.i32(av) / hl.i32(bv) + x, hl.i32(av) % hl.i32(bv) + x,
                     hl.i16(av) / hl.i16(bv), hl.u8(abs(av)) % hl.u8(abs(bv))]
        f[x] = tuple(vals)
        return f
    outs = check(build, [2])
    for k, (q, r) in enumerate(want):
        assert outs[4 * k][0] == q and outs[4 * k + 1][0] == r


def test_float_div_mod_floor():
    a = np.array([-7.0, 7.0, -7.5, 7.5, 0.5, -0.5], dtype=np.float32)
    b = np.array([2.0, -2.0, 2.0, 2.0, 0.25, 3.0], dtype=np.float32)

    def build(hl, A, B):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (A[x] / B[x], A[x] // B[x], A[x] % B[x])
        return f
    d, fd, m = check(build, [6], [a, b], rtol=1e-6)
    assert fd[0] == -4.0 and m[2] == 0.5


@pytest.mark.parametrize("dt", ["uint8", "uint16", "int8", "int16", "uint32"])
def test_wrapping_arithmetic(dt):
    a = _vals(dt)
    b = _vals(dt)

    def build(hl, A, B):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        f[x, y] = (A[x] + B[y], A[x] - B[y], A[x] * B[y], -A[x], A[x] * 3 + 1,
                   hl.min(A[x], B[y]), hl.max(A[x], B[y]), hl.absd(A[x], B[y]),
                   A[x] < B[y], A[x] == B[y])
        return f
    check(build, [len(a), len(b)], [a, b])


def test_documented_overflow_values():
    def build(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (hl.u8(200 + x) + hl.u8(100), hl.u8(200 + x) * 2, hl.u16(1 + x) - hl.u16(2),
                hl.i8(100 + x) + hl.i8(100), hl.i16(32767 + x) + 1, -hl.u8(1 + x),
                hl.i8(-1 + x) + hl.u8(200))
        return f
    o = check(build, [1])
    assert [int(v[0]) for v in o] == [44, 144, 65535, -56, -32768, 255, -57]


def test_float_to_int_truncation_and_narrowing():
    fl = np.array([-2.7, 2.7, -0.5, 0.5, 126.9, -127.9, 1e3, -1e3], dtype=np.float32)
    ints = np.array([300, -1, 255, 256, -129, 65535, 65536, -32769, 2**31 - 1, -2**31],
                    dtype=np.int32)

    def build(hl, F, I):
        x = hl.Var("x")
        f, g = hl.Func("f"), hl.Func("g")
        f[x] = (hl.i32(F[x]), hl.i16(F[x]), hl.i64(F[x]), hl.f64(F[x]))
        g[x] = (hl.u8(I[x]), hl.i8(I[x]), hl.u16(I[x]), hl.i16(I[x]), hl.u32(I[x]),
                hl.u64(I[x]), hl.i64(I[x]), hl.f32(I[x]), hl.f64(I[x]))
        return hl.Pipeline([f, g]) if False else (f, g)

    def bf(hl, F, I):
        return build(hl, F, I)[0]

    def bg(hl, F, I):
        return build(hl, F, I)[1]
    (i32_, *_rest) = check(bf, [len(fl)], [fl, ints])
    assert i32_.tolist()[:4] == [-2, 2, 0, 0]
    u8_, *_ = check(bg, [len(ints)], [fl, ints])
    assert u8_.tolist()[:2] == [44, 255]


def test_saturating_casts():
    ints = np.array([300, -5, 255, 256, -129, 127, 65536, -40000, 2**31 - 1, -2**31, 0],
                    dtype=np.int32)
    fl = np.array([300.7, -5.5, 254.9, 0.0, -0.9, 1e10, -1e10, 127.5, 65535.5, 3e9],
                  dtype=np.float32)
    u64 = np.array([0, 1, -2**63, -1, 255, 2**31], dtype=np.int64)

    def build(hl, I, F, U):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (hl.u8_sat(I[x]), hl.i8_sat(I[x]), hl.u16_sat(I[x]), hl.i16_sat(I[x]),
                hl.u32_sat(I[x]), hl.u64_sat(I[x]), hl.saturating_cast(hl.UInt(8), I[x] / 2 - 5),
                hl.u8_sat(F[x % 10]), hl.i8_sat(F[x % 10]), hl.u16_sat(F[x % 10]),
                hl.i16_sat(F[x % 10]), hl.i32_sat(F[x % 10]), hl.u32_sat(F[x % 10]),
                hl.i32_sat(hl.u64(U[x % 6])), hl.u8_sat(hl.u64(U[x % 6])),
                hl.i64_sat(hl.u64(U[x % 6])),
                hl.u32_sat(hl.i64(I[x]) * 3))
        return f
    o = check(build, [len(ints)], [ints, fl, u64])
    assert o[0][0] == 255 and o[6][1] == 0 and o[7][0] == 255


def test_round_fract_floor_ceil_trunc():
    v = np.array([2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 1.25, -1.25, 2.4999, -0.0, 1e7 + 0.5,
                  -7.75], dtype=np.float32)

    def build(hl, A):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (hl.round(A[x]), hl.fract(A[x]), hl.floor(A[x]), hl.ceil(A[x]),
                hl.trunc(A[x]), hl.round(hl.f64(A[x])), hl.fract(hl.f64(A[x])))
        return f
    r, fr, *_ = check(build, [len(v)], [v])
    assert r[:6].tolist() == [2.0, 4.0, -2.0, -4.0, 0.0, -0.0]
    assert fr[7] == np.float32(-0.25)


_LERP_Z = np.array([0, 255, 10, 200, 0, 128, 77, 3], dtype=np.uint8)
_LERP_O = np.array([255, 0, 20, 100, 1, 128, 250, 254], dtype=np.uint8)
_LERP_W = [np.array([0.5, 0.5, 0.0, 1.0, 0.25, 0.75, 0.1, 0.999], dtype=np.float32),
           np.array([0, 255, 128, 127, 1, 254, 64, 200], dtype=np.uint8),
           np.array([0, 65535, 32768, 1, 40000, 255, 256, 65534], dtype=np.uint16),
           np.array([0, 2**32 - 1, 2**31, 12345678, 1, 99, 3000000000, 7], dtype=np.uint32)]


def test_lerp_integer_and_float():
    def build(hl, Z, O, WF, W8, W16, W32):
        x = hl.Var("x")
        f = hl.Func("f")
        z8, o8 = Z[x], O[x]
        z16, o16 = hl.u16(Z[x]) * 257, hl.u16(O[x]) * 251
        zi, oi = hl.i8(Z[x]), hl.i8(O[x])
        zi16, oi16 = hl.i16(z16), hl.i16(o16)
        f[x] = (hl.lerp(z8, o8, WF[x]), hl.lerp(z8, o8, W8[x]), hl.lerp(z8, o8, W16[x]),
                hl.lerp(z8, o8, W32[x]),
                hl.lerp(z16, o16, WF[x]), hl.lerp(z16, o16, W8[x]), hl.lerp(z16, o16, W16[x]),
                hl.lerp(zi, oi, WF[x]), hl.lerp(zi, oi, W8[x]), hl.lerp(zi16, oi16, W16[x]),
                hl.lerp(hl.u32(Z[x]) * 16843009, hl.u32(O[x]) * 1000, WF[x]),
                hl.lerp(hl.u32(Z[x]) * 16843009, hl.u32(O[x]) * 1000, W8[x]))
        return f
    outs = check(build, [8], [_LERP_Z, _LERP_O, *_LERP_W])   # integer lerps: exact
    assert outs[0][0] == 127


def test_lerp_float_within_one_ulp():
    """Float lerp is `zero*(1-w) + one*w`. Halide (LLVM) contracts it to FMA
    (and turns the integer weight's `w / 255.0f` into a reciprocal multiply),
    and so may halo's C compiler; the interpreter rounds each operation. All
    three agree to 1 ulp of max(|zero|, |one|), the scale of lerp's rounding
    error (the result itself may be ~0, as for lerp(127.5, 0, 255))."""
    from conftest import realize_halide, realize_halo, realize_interp

    def build(hl, Z, O, WF, W8, W16, W32):
        x = hl.Var("x")
        f = hl.Func("f")
        zf, of = hl.f32(Z[x]) * 0.5, hl.f32(O[x]) * 1.25
        f[x] = (hl.lerp(zf, of, WF[x]), hl.lerp(zf, of, W8[x]), hl.lerp(zf, of, W16[x]),
                hl.lerp(hl.f64(zf), hl.f64(of), W32[x]))
        return f
    inputs = [_LERP_Z, _LERP_O, *_LERP_W]
    ours, f = realize_halo(build, [8], inputs)
    ref = realize_interp(f, [8])
    theirs = realize_halide(build, [8], inputs)
    scale = np.maximum(_LERP_Z * 0.5, _LERP_O * 1.25)
    for i, dt in enumerate([np.float32] * 3 + [np.float64]):
        ulp = np.spacing(scale.astype(dt)).astype(np.float64)
        for name, a, b in (("C vs interpreter", ours[i], ref[i]),
                           ("C vs Halide", ours[i], theirs[i]),
                           ("interpreter vs Halide", ref[i], theirs[i])):
            assert a.dtype == b.dtype == dt, f"output {i} {name}: dtype"
            err = np.abs(a.astype(np.float64) - b.astype(np.float64))
            assert (err <= ulp).all(), f"output {i} {name}: {a} vs {b}"
    np.testing.assert_array_equal(ref[0][[0, 2, 3]], [159.375, 5.0, 125.0])  # exact cases


def test_mux_and_multiway_select():
    def build(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (hl.mux(x, [10, 20, 30]), hl.mux(x - 2, [hl.u8(1), hl.u8(2)]),
                hl.select(x < 2, 100, x < 5, 200, x == 6, 300, 400),
                hl.select(x > 3, hl.f32(x) * 0.5, -1.0))
        return f
    o = check(build, [9])
    assert o[0].tolist() == [10, 20, 30, 30, 30, 30, 30, 30, 30]
    assert o[2].tolist() == [100, 100, 200, 200, 200, 400, 300, 400, 400]


def test_tuple_select():
    def build(hl):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        f[x, y] = hl.select(x > y, (x, y), (x - 1, y - 2))
        g = hl.Func("g")
        g[x, y] = hl.select((x > 1, y > 1), (x * 10, y * 10), (x, y))
        h = hl.Func("h")
        h[x, y] = f[x, y][0] + f[x, y][1] * 100 + g[x, y][0] * 10000 + g[x, y][1] * 1000000
        return h
    check(build, [4, 4])


@pytest.mark.parametrize("dt", INT_DTYPES)
def test_shifts_and_bitwise(dt):
    bits = np.dtype(dt).itemsize * 8
    a = _vals(dt)
    signed = np.iinfo(dt).min < 0
    amounts = np.array([0, 1, 2, 3, 5, bits - 1] + ([-1, -3, -(bits - 1)] if signed else []),
                       dtype=dt)

    def build(hl, A, S):
        x, y = hl.Var("x"), hl.Var("y")
        f = hl.Func("f")
        f[x, y] = (A[x] << S[y], A[x] >> S[y], A[x] & A[y % len(a)], A[x] | A[y % len(a)],
                   A[x] ^ A[y % len(a)], ~A[x], A[x] >> 1, A[x] << 1, A[x] >> -1,
                   hl.popcount(A[x]), hl.count_leading_zeros(A[x]),
                   hl.count_trailing_zeros(A[x]))
        return f
    check(build, [len(a), len(amounts)], [a, amounts])


def test_documented_shift_values():
    def build(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (~hl.i32(5 + x), hl.i32(-8 + x) >> 1, (1 + x) << -1, hl.u8(255 + x) >> 3,
                hl.i8(-128 + x) >> 7, hl.i16(-1 + x) << hl.u8(15))
        return f
    o = check(build, [1])
    assert [int(v[0]) for v in o] == [-6, -4, 0, 31, -1, -32768]


def test_math_functions():
    v = np.array([0.1, 0.5, 0.9, 1.0, 2.5, 10.0, 0.001, 0.75], dtype=np.float32)

    def build(hl, A):
        x = hl.Var("x")
        f = hl.Func("f")
        a = A[x]
        f[x] = (hl.sqrt(a), hl.sin(a), hl.cos(a), hl.tan(a), hl.exp(a), hl.log(a),
                hl.asin(a / 10), hl.acos(a / 10), hl.atan(a), hl.atan2(a, a - 1), hl.sinh(a),
                hl.cosh(a), hl.tanh(a), hl.asinh(a), hl.acosh(a + 1), hl.atanh(a / 11),
                hl.pow(a, 1.5), a ** 2, a ** -2, hl.hypot(a, a + 1), hl.erf(a),
                hl.sqrt(hl.f64(a)), hl.exp(hl.f64(a)), hl.sqrt(hl.i32(a * 100)),
                hl.abs(a - 1), hl.is_nan(hl.sqrt(a - 1)), hl.is_finite(a / (a - 1.0)),
                hl.is_inf(hl.f32(1) / (a - a)))
        return f
    check(build, [len(v)], [v], rtol=2e-6, atol=1e-7)


def test_integer_abs_and_pow():
    a = np.array([-128, -127, -1, 0, 1, 127, 5, -6], dtype=np.int8)

    def build(hl, A):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (hl.abs(A[x]), hl.abs(hl.i32(A[x]) * 1000), hl.absd(A[x], hl.i8(3)),
                hl.i16(A[x]) ** 3, hl.pow(hl.u8(A[x]), 5), hl.i32(A[x]) ** -1,
                hl.i32(A[x]) ** 0, hl.i8(A[x]) ** 9)
        return f
    o = check(build, [8], [a])
    assert o[0][0] == 128 and o[0].dtype == np.uint8


def test_reinterpret():
    f32 = np.array([1.0, -2.5, 0.0, -0.0, np.inf, 3.4e38], dtype=np.float32)
    i32 = np.array([1, -1, 2**31 - 1, -2**31, 0, 1065353216], dtype=np.int32)

    def build(hl, F, I):
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = (hl.reinterpret(hl.UInt(32), F[x]), hl.reinterpret(hl.Int(32), F[x]),
                hl.reinterpret(hl.Float(32), I[x]), hl.reinterpret(hl.UInt(32), I[x]),
                hl.reinterpret(hl.Int(16), hl.u16(I[x])),
                hl.reinterpret(hl.UInt(64), hl.f64(F[x])))
        return f
    o = check(build, [6], [f32, i32])
    assert o[0][0] == 0x3F800000


def test_bool_values():
    def build(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        c = x > 2
        f[x] = (c, c + 1, c & (x < 5), c | (x == 0), ~c, c ^ (x > 4), hl.logical_not(c),
                hl.u8(c) * 7, hl.select(c, x, -x), hl.f32(c))
        return f
    o = check(build, [7])
    assert o[1].dtype == np.bool_ and not o[1][3]  # (c + 1) is bool: True + True wraps


def test_bool_arithmetic_wraps_like_uint1():
    """bool is Halide's uint1: + and - are xor, * is and, also when folded."""
    def build(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        c = x > 2
        t = hl.cast(hl.Bool(), 1)
        f[x] = (c + c, c - 1, c * c, c + (x > 4), t + t, t + c, c - (x > 4))
        return f
    o = check(build, [7])
    assert not o[0].any() and o[4].tolist() == [False] * 7
    assert o[1].tolist() == [True, True, True, False, False, False, False]


def test_float_literal_arith():
    def build(hl):
        x = hl.Var("x")
        f = hl.Func("f")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f[x] = (hl.f64(x) + 0.1, x * 1.5, hl.u8(x) * 1.5, x / 3.0, hl.f64(x) / 3,
                    -hl.f32(x) * 0.1)
        return f
    o = check(build, [5])
    assert o[0][1] == 1.1000000014901161
