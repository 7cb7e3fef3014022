"""A raw camera pipeline (Halide's apps/camera_pipe, after FCam's).

From a 10-bit Bayer mosaic (uint16, GRBG: green/red rows, blue/green rows):
1. shift inwards by (16, 12) and convert to int16 (room for negatives);
2. hot pixel suppression: clamp each pixel to the max of its 4 same-color
   neighbours (2 pixels away);
3. deinterleave the 2x2 Bayer quad into 4 half-resolution channels;
4. demosaic: green at red/blue sites from the direction (horizontal or
   vertical) with the smaller gradient, red/blue at green sites from the
   neighbours corrected by green's second derivative, red at blue / blue at
   red along the diagonal with the smaller gradient; re-interleave to full
   resolution (int16 rounding averages);
5. colour correction: a 3x4 matrix interpolated between two calibrations
   (3200 K and 7000 K) in inverse kelvin, Q8.8 fixed point (int16/int32);
6. a tone curve as a 1024-entry uint8 lookup table (gamma, then a
   piecewise-quadratic contrast curve, black and white levels).
Output: uint8 RGB, planar (x, y, c). Integer pipeline: exact.

Schedule (Halide's CPU schedule, vec = 32 uint16 lanes for AVX-512): output
strips of 128 rows in parallel, tiles of 2*vec x 2, vectorized, c and the
two rows unrolled; per strip the denoised and deinterleaved images are
stored with folded storage (8 and 4 rows) and computed per row pair; green
at red/blue sites likewise (folded to 2 rows); the demosaic and colour
correction per tile. One difference from Halide's schedule, which does not
change a result: no `denoised.prefetch(input, y, y, 2)`, because Halide's
Python prefetch() takes a Func or an ImageParam, not the Buffer both sides
are built on here (halo's takes either; it made halo ~4% faster alone).
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 0, 0
VEC = 32                                  # uint16 lanes of AVX-512
STRIP = 128
FULL, SMALL = (2560, 1920), (128, 128)    # output sizes; the raw image is 32 x 48 larger
PARAMS = {"color_temp": 3700.0, "gamma": 2.0, "contrast": 50.0,
          "black_level": 25, "white_level": 1023}
MATRIX_3200 = [[1.6697, -0.2693, -0.4004, -42.4346],
               [-0.3576, 1.0615, 1.5949, -37.1158],
               [-0.2175, -1.8751, 6.9640, -26.6970]]
MATRIX_7000 = [[2.2997, -0.4478, 0.1706, -39.0923],
               [-0.3826, 1.5906, -0.2080, -25.4311],
               [-0.0888, -0.7344, 2.2832, -20.0826]]


def build(hl, input, matrix_3200, matrix_7000, color_temp=3700.0, gamma=2.0,
          contrast=50.0, black_level=25, white_level=1023, gpu=False):
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    i16, i32, f32 = hl.Int(16), hl.Int(32), hl.f32

    def avg(a, b):                       # mean of two int16s, rounding up
        return hl.cast(i16, (hl.cast(i32, a) + b + 1) / 2)

    shifted = hl.Func("shifted")
    shifted[x, y] = hl.cast(i16, input[x + 16, y + 12])

    denoised = hl.Func("denoised")          # hot pixel suppression
    a = hl.max(hl.max(shifted[x - 2, y], shifted[x + 2, y]),
               hl.max(shifted[x, y - 2], shifted[x, y + 2]))
    denoised[x, y] = hl.clamp(shifted[x, y], 0, a)

    deinterleaved = hl.Func("deinterleaved")
    deinterleaved[x, y, c] = hl.select(c == 0, denoised[2 * x, 2 * y],
                                       c == 1, denoised[2 * x + 1, 2 * y],
                                       c == 2, denoised[2 * x, 2 * y + 1],
                                       denoised[2 * x + 1, 2 * y + 1])

    # -- demosaic: x_y = channel x at a site of channel y (gr/gb: green
    # sites in red/blue rows)
    g_gr, r_r, b_b, g_gb = (hl.Func(n) for n in ("g_gr", "r_r", "b_b", "g_gb"))
    g_gr[x, y] = deinterleaved[x, y, 0]
    r_r[x, y] = deinterleaved[x, y, 1]
    b_b[x, y] = deinterleaved[x, y, 2]
    g_gb[x, y] = deinterleaved[x, y, 3]

    g_r, g_b = hl.Func("g_r"), hl.Func("g_b")
    gv_r, gvd_r = avg(g_gb[x, y - 1], g_gb[x, y]), hl.absd(g_gb[x, y - 1], g_gb[x, y])
    gh_r, ghd_r = avg(g_gr[x + 1, y], g_gr[x, y]), hl.absd(g_gr[x + 1, y], g_gr[x, y])
    g_r[x, y] = hl.select(ghd_r < gvd_r, gh_r, gv_r)
    gv_b, gvd_b = avg(g_gr[x, y + 1], g_gr[x, y]), hl.absd(g_gr[x, y + 1], g_gr[x, y])
    gh_b, ghd_b = avg(g_gb[x - 1, y], g_gb[x, y]), hl.absd(g_gb[x - 1, y], g_gb[x, y])
    g_b[x, y] = hl.select(ghd_b < gvd_b, gh_b, gv_b)

    r_gr, b_gr, r_gb, b_gb = (hl.Func(n) for n in ("r_gr", "b_gr", "r_gb", "b_gb"))
    r_gr[x, y] = g_gr[x, y] - avg(g_r[x, y], g_r[x - 1, y]) + avg(r_r[x - 1, y], r_r[x, y])
    b_gr[x, y] = g_gr[x, y] - avg(g_b[x, y], g_b[x, y - 1]) + avg(b_b[x, y], b_b[x, y - 1])
    r_gb[x, y] = g_gb[x, y] - avg(g_r[x, y], g_r[x, y + 1]) + avg(r_r[x, y], r_r[x, y + 1])
    b_gb[x, y] = g_gb[x, y] - avg(g_b[x, y], g_b[x + 1, y]) + avg(b_b[x, y], b_b[x + 1, y])

    r_b, b_r = hl.Func("r_b"), hl.Func("b_r")
    rp_b = g_b[x, y] - avg(g_r[x, y], g_r[x - 1, y + 1]) + avg(r_r[x, y], r_r[x - 1, y + 1])
    rpd_b = hl.absd(r_r[x, y], r_r[x - 1, y + 1])
    rn_b = g_b[x, y] - avg(g_r[x - 1, y], g_r[x, y + 1]) + avg(r_r[x - 1, y], r_r[x, y + 1])
    rnd_b = hl.absd(r_r[x - 1, y], r_r[x, y + 1])
    r_b[x, y] = hl.select(rpd_b < rnd_b, rp_b, rn_b)
    bp_r = g_r[x, y] - avg(g_b[x, y], g_b[x + 1, y - 1]) + avg(b_b[x, y], b_b[x + 1, y - 1])
    bpd_r = hl.absd(b_b[x, y], b_b[x + 1, y - 1])
    bn_r = g_r[x, y] - avg(g_b[x + 1, y], g_b[x, y - 1]) + avg(b_b[x + 1, y], b_b[x, y - 1])
    bnd_r = hl.absd(b_b[x + 1, y], b_b[x, y - 1])
    b_r[x, y] = hl.select(bpd_r < bnd_r, bp_r, bn_r)

    def interleave(f00, f10, f01, f11, name):   # 2x2 quad of half-res Funcs
        out = hl.Func(name)
        out[x, y] = hl.select(y % 2 == 0,
                              hl.select(x % 2 == 0, f00[x / 2, y / 2], f10[x / 2, y / 2]),
                              hl.select(x % 2 == 0, f01[x / 2, y / 2], f11[x / 2, y / 2]))
        return out

    r = interleave(r_gr, r_r, r_b, r_gb, "r")
    g = interleave(g_gr, g_r, g_b, g_gb, "g")
    b = interleave(b_gr, b_r, b_b, b_gb, "b")
    demosaiced = hl.Func("demosaiced")
    demosaiced[x, y, c] = hl.select(c == 0, r[x, y], c == 1, g[x, y], b[x, y])

    # -- colour correction, Q8.8 fixed point
    matrix = hl.Func("matrix")
    alpha = (1.0 / color_temp - 1.0 / 3200) / (1.0 / 7000 - 1.0 / 3200)
    matrix[x, y] = hl.cast(i16, (matrix_3200[x, y] * f32(alpha)
                                 + matrix_7000[x, y] * f32(1 - alpha)) * f32(256.0))
    ir, ig, ib = (hl.cast(i32, demosaiced[x, y, k]) for k in range(3))
    rows = [hl.cast(i16, (matrix[3, j] + matrix[0, j] * ir + matrix[1, j] * ig
                          + matrix[2, j] * ib) / 256) for j in range(3)]
    corrected = hl.Func("corrected")
    corrected[x, y, c] = hl.select(c == 0, rows[0], c == 1, rows[1], rows[2])

    # -- tone curve as a lookup table
    curve = hl.Func("curve")
    inv_range = 1.0 / (white_level - black_level)
    cb = 2.0 - 2.0 ** (contrast / 100.0)
    ca = 2.0 - 2.0 * cb
    xf = hl.clamp(hl.cast(hl.Float(32), x - black_level) * f32(inv_range), 0.0, 1.0)
    gg = hl.pow(xf, f32(1.0 / gamma))
    z = hl.select(gg > 0.5, 1.0 - (f32(ca) * (1.0 - gg) * (1.0 - gg) + f32(cb) * (1.0 - gg)),
                  f32(ca) * gg * gg + f32(cb) * gg)
    val = hl.cast(hl.UInt(8), hl.clamp(z * 255.0 + 0.5, 0.0, 255.0))
    curve[x] = hl.select(x <= black_level, 0, hl.select(x > white_level, 255, val))
    processed = hl.Func("camera_pipe")
    processed[x, y, c] = curve[hl.clamp(corrected[x, y, c], 0, 1023)]
    if gpu:
        schedule_gpu(hl, processed, input, matrix, curve, demosaiced, [g_r, g_b],
                     deinterleaved, denoised)
        return processed

    # -- schedule
    out_w = (input.dim(0).extent() - 32) // (2 * VEC) * (2 * VEC)
    out_h = (input.dim(1).extent() - 48) // STRIP * STRIP
    yo, yi, yii, xi = hl.Var("yo"), hl.Var("yi"), hl.Var("yii"), hl.Var("xi")
    RoundUp = hl.TailStrategy.RoundUp
    matrix.compute_root()
    curve.compute_root()
    denoised.compute_at(processed, yi).store_at(processed, yo).fold_storage(y, 8) \
        .tile(x, y, x, y, xi, yii, 2 * VEC, 2).vectorize(xi).unroll(yii)
    deinterleaved.compute_at(processed, yi).store_at(processed, yo).fold_storage(y, 4) \
        .reorder(c, x, y).vectorize(x, 2 * VEC, RoundUp).unroll(c)
    corrected.compute_at(processed, x).reorder(c, x, y).vectorize(x).unroll(y).unroll(c)
    processed.compute_root().reorder(c, x, y).split(y, yo, yi, STRIP) \
        .tile(x, yi, x, yi, xi, yii, 2 * VEC, 2, RoundUp) \
        .vectorize(xi).unroll(yii).unroll(c).parallel(yo)
    g_r.compute_at(processed, yi).store_at(processed, yo) \
        .vectorize(x, 2 * VEC, RoundUp).fold_storage(y, 2)
    g_b.compute_at(processed, yi).store_at(processed, yo) \
        .vectorize(x, 2 * VEC, RoundUp).fold_storage(y, 2)
    demosaiced.compute_at(processed, x).vectorize(x).unroll(y).reorder(c, x, y).unroll(c)
    processed.bound(c, 0, 3).bound(x, 0, out_w).bound(y, 0, out_h)
    return processed


def schedule_gpu(hl, processed, input, matrix, curve, demosaiced, intermediates,
                 deinterleaved, denoised):
    """After Halide's GPU schedule: the output in tiles of 32x8 pixels, two
    pixels per thread (the three channels unrolled), the colour correction
    and the tone curve per thread; per tile, in shared memory, the
    demosaiced image and green at red/blue sites, a thread per pixel, and
    the deinterleaved quad, a thread per two pixels (channels unrolled). The two lookup
    tables (matrix, tone curve) are computed on the host, as in Halide's.
    Differences from Halide's, for halo's lowering time (its bounds of a
    chain of block-level Funcs grow with every level and with every min() of
    a shifted-inwards tile): tiles of 32x8 that divide the output, RoundUp,
    rather than 56x12 shifted inwards; the colour correction inlined per
    thread rather than in shared memory; the denoised image compute_root in
    16x8 tiles (as in Halide's newer camera_pipe) rather than per tile."""
    x, y, c = processed.args()
    xi, yi = hl.Var("xi"), hl.Var("yi")
    matrix.compute_root()
    curve.compute_root()
    out_w = (input.dim(0).extent() - 32) // (2 * VEC) * (2 * VEC)
    out_h = (input.dim(1).extent() - 48) // STRIP * STRIP
    processed.compute_root().reorder(c, x, y).unroll(x, 2) \
        .gpu_tile(x, y, xi, yi, 16, 8, hl.TailStrategy.RoundUp).unroll(c) \
        .bound(c, 0, 3).bound(x, 0, out_w).bound(y, 0, out_h)
    for f in [demosaiced] + intermediates:
        fx, fy = f.args()[:2]
        f.compute_at(processed, x).gpu_threads(fx, fy)
    mx, my, mc = demosaiced.args()
    demosaiced.reorder(mc, mx, my).unroll(mc)
    dx, dy, dc = deinterleaved.args()
    deinterleaved.compute_at(processed, x).unroll(dx, 2).gpu_threads(dx, dy) \
        .reorder(dc, dx, dy).unroll(dc)
    nx, ny = denoised.args()
    denoised.compute_root().gpu_tile(nx, ny, xi, yi, 16, 8)


def _bayer(rgb):
    """(3, H, W) linear RGB -> (H, W) GRBG mosaic: even rows G R, odd rows B G."""
    _, h, w = rgb.shape
    raw = np.empty((h, w), rgb.dtype)
    raw[0::2, 0::2] = rgb[1, 0::2, 0::2]
    raw[0::2, 1::2] = rgb[0, 0::2, 1::2]
    raw[1::2, 0::2] = rgb[2, 1::2, 0::2]
    raw[1::2, 1::2] = rgb[1, 1::2, 1::2]
    return raw


def make_input(small=False):
    w, h = SMALL if small else FULL
    rgb = _common.synth_photo(w + 32, h + 48, seed=9, color=True) ** 2.2   # linear light
    rng = np.random.default_rng(9)
    raw = 25 + 950 * _bayer(rgb) + rng.normal(0, 4, (h + 48, w + 32))
    hot = rng.random(raw.shape) < 2e-4                                   # hot pixels
    raw[hot] = 1023
    raw = np.clip(np.round(raw), 0, 1023).astype(np.uint16)
    return (raw, np.array(MATRIX_3200, np.float32), np.array(MATRIX_7000, np.float32))


def output_size(raw, m3200, m7000):
    h, w = raw.shape
    return [(w - 32) // (2 * VEC) * (2 * VEC), (h - 48) // STRIP * STRIP, 3]


def view_input(raw, m3200, m7000):
    return _common.to_uint8(raw, 0, 1023)


def view_output(o):
    return _common.planar_to_view(o)


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
