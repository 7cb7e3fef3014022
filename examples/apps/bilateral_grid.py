"""Bilateral grid (Chen, Paris & Durand 2007), as in Halide's app.

The grey image (float32 in [0, 1]) is splatted into a coarse 3-D grid: each
s_sigma x s_sigma block of pixels lands in cell (x, y, z = value / r_sigma),
accumulating (value, 1) - a scattered reduction (an update stage whose
left-hand side depends on the data). The grid is blurred with a [1 4 6 4 1]
kernel along z, x and y, then sliced: trilinear interpolation at
(x / s, y / s, value / r_sigma), and the result is channel 0 / channel 1.
s_sigma = 8, r_sigma = 0.1. Tolerance 1e-4: float sums in the same order,
but the C compiler and LLVM may contract differently.

Schedule (Halide's CPU schedule): the histogram per row of the z-blur
(compute_at blurz y), its update with c innermost and unrolled; the three
blurs compute_root, rows (or z slices) in parallel, 8-wide vectors, c
unrolled; the slice compute_root, rows in parallel, 8-wide vectors.
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-4, 1e-4
FULL, SMALL = (1536, 1024), (64, 48)
PARAMS = {"s_sigma": 8, "r_sigma": 0.1}


def build(hl, input, s_sigma=8, r_sigma=0.1, gpu=False):
    x, y, z, c = hl.Var("x"), hl.Var("y"), hl.Var("z"), hl.Var("c")
    inv_r = hl.f32(1.0 / r_sigma)
    clamped = hl.BoundaryConditions.repeat_edge(input)
    r = hl.RDom([(0, s_sigma), (0, s_sigma)], "r")
    val = clamped[x * s_sigma + r.x - s_sigma // 2, y * s_sigma + r.y - s_sigma // 2]
    val = hl.clamp(val, hl.f32(0), hl.f32(1))
    zi = hl.i32(val * inv_r + hl.f32(0.5))
    histogram = hl.Func("histogram")
    histogram[x, y, z, c] = hl.f32(0)
    histogram[x, y, zi, c] += hl.select(c == 0, val, hl.f32(1))

    def blur(f, name, d):
        g = hl.Func(name)
        def at(k):
            a = [x, y, z]
            a[d] = a[d] + k
            return f[a[0], a[1], a[2], c]
        g[x, y, z, c] = at(-2) + 4 * at(-1) + 6 * at(0) + 4 * at(1) + at(2)
        return g

    blurz = blur(histogram, "blurz", 2)
    blurx = blur(blurz, "blurx", 0)
    blury = blur(blurx, "blury", 1)

    v = hl.clamp(input[x, y], hl.f32(0), hl.f32(1))
    zv = v * inv_r
    zi2 = hl.i32(zv)
    zf = zv - hl.f32(zi2)
    xf = hl.f32(x % s_sigma) / hl.f32(s_sigma)
    yf = hl.f32(y % s_sigma) / hl.f32(s_sigma)
    xi, yi = x / s_sigma, y / s_sigma
    interpolated = hl.Func("interpolated")
    g = blury
    interpolated[x, y, c] = hl.lerp(
        hl.lerp(hl.lerp(g[xi, yi, zi2, c], g[xi + 1, yi, zi2, c], xf),
                hl.lerp(g[xi, yi + 1, zi2, c], g[xi + 1, yi + 1, zi2, c], xf), yf),
        hl.lerp(hl.lerp(g[xi, yi, zi2 + 1, c], g[xi + 1, yi, zi2 + 1, c], xf),
                hl.lerp(g[xi, yi + 1, zi2 + 1, c], g[xi + 1, yi + 1, zi2 + 1, c], xf), yf),
        zf)
    output = hl.Func("bilateral_grid")
    output[x, y] = interpolated[x, y, 0] / interpolated[x, y, 1]
    if gpu:
        schedule_gpu(hl, output, interpolated, histogram, blurz, blurx, blury, r)
        return output

    histogram.compute_at(blurz, y)
    histogram.update(0).reorder(c, r.x, r.y, x, y).unroll(c)
    blurz.compute_root().reorder(c, z, x, y).parallel(y).vectorize(x, 8).unroll(c)
    blurx.compute_root().reorder(c, x, y, z).parallel(z).vectorize(x, 8).unroll(c)
    blury.compute_root().reorder(c, x, y, z).parallel(z).vectorize(x, 8).unroll(c)
    output.compute_root().parallel(y).vectorize(x, 8)
    return output


def schedule_gpu(hl, output, interpolated, histogram, blurz, blurx, blury, r):
    """Halide's GPU schedule: the z blur in 8x8 tiles of grid cells (a
    thread per cell), with that tile's histogram in shared memory, so one
    kernel clears the histograms, splats the tile's pixels into them (a
    thread per cell, over its RDom) and blurs them in z; the x and y blurs
    in 32x8x1 tiles, each thread two rows (unrolled) with both channels as
    a vector; the output in 32x8 tiles, the trilinear interpolation per
    pixel (both channels as a vector)."""
    x, y, z, c = blurz.args()
    xi, yi, yii = hl.Var("xi"), hl.Var("yi"), hl.Var("yii")
    RoundUp = hl.TailStrategy.RoundUp
    blurz.compute_root().reorder(c, z, x, y).gpu_tile(x, y, xi, yi, 8, 8)
    histogram.reorder(c, z, x, y).compute_at(blurz, x).gpu_threads(x, y)
    histogram.update().reorder(c, r.x, r.y, x, y).gpu_threads(x, y).unroll(c)
    for f in (blurx, blury):
        # Halide: .unroll(y, 2, RoundUp).gpu_tile(x, y, z, xi, yi, zi, 32, 8, 1, RoundUp),
        # which leaves the two rows' loop between the thread loops yi and zi
        # (of extent 1); halo needs thread loops adjacent: the same as a 2-D
        # tile with the rows' loop inside the threads, z in blocks
        f.compute_root().reorder(c, x, y, z).reorder_storage(c, x, y, z).vectorize(c) \
            .split(y, y, yii, 2, RoundUp).unroll(yii) \
            .gpu_tile(x, y, xi, yi, 32, 8, RoundUp).reorder(c, yii, xi, yi, x, y, z) \
            .gpu_blocks(z)
    ox, oy = output.args()
    output.compute_root().gpu_tile(ox, oy, xi, yi, 32, 8)
    interpolated.compute_at(output, xi).vectorize(c)


def make_input(small=False):
    w, h = SMALL if small else FULL
    img = _common.synth_photo(w, h, seed=6)
    noise = np.random.default_rng(6).normal(0, 0.04, img.shape)
    return (np.clip(img + noise, 0, 1).astype(np.float32),)


def output_size(input):
    return [input.shape[1], input.shape[0]]


def view_input(i):
    return _common.to_uint8(i, 0.0, 1.0)


def view_output(o):
    return _common.to_uint8(o, 0.0, 1.0)


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
