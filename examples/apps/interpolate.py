"""Scattered-data interpolation with a multi-scale pyramid (Halide's apps/interpolate).

The input is RGBA with alpha as a confidence: 1 where a colour is known,
0 in the holes. Premultiplied colour and alpha are downsampled into a
pyramid ([1 2 1] / 4 filters in x then y, `levels` levels; a boundary
condition at level 4 stops the coarse levels' footprint from running far
off the image). Going back up, each level keeps what it knows and fills the
rest from the upsampled coarser level: interpolated = down + (1 - alpha) *
upsampled(coarser). Dividing by the resulting alpha un-premultiplies.
float32 planar (x, y, c): 4 channels in, 3 out.

Schedule (Halide's CPU schedule, vec = 16 float lanes for AVX-512): the
downsampled levels 1..levels-2 at the root, bands of 8 rows in parallel,
vectorized along x; level 0 (premultiplication) cloned into level 1's
consumer and computed per row of it; the output in bands of 32 rows in
parallel, vectorized along x with the channels unrolled.
Two differences from Halide's schedule, neither changes a result: no
never_partition() (halo has none); and the interpolated levels are computed
at the root (parallel over rows, vectorized), not per output row with
storage per band. Halide's placement lowers in ~50 s in halo (the rows'
regions of nine compute_at levels still grow level by level) and, measured
on the 2-core machine, is slower for both: halo 6.1 ms / Halide 3.1 ms,
against 4.9 / 2.9 ms with the levels at the root.
Tolerance: rtol 1e-4 (float32 sums over many levels; C and LLVM may
reassociate or fuse multiply-adds differently).
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-4, 1e-5
FULL, SMALL = (1536, 1024), (64, 48)
PARAMS = {"levels": 10}
SMALL_PARAMS = {"levels": 4}            # the test: lowering time grows with levels
VEC = 16


def build(hl, input, levels=10, gpu=False):
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    downsampled = [hl.Func(f"downsampled_{l}") for l in range(levels)]
    downx = [hl.Func(f"downx_{l}") for l in range(levels)]
    interpolated = [hl.Func(f"interpolated_{l}") for l in range(levels)]
    upsampled = [hl.Func(f"upsampled_{l}") for l in range(levels)]
    upsampledx = [hl.Func(f"upsampledx_{l}") for l in range(levels)]

    clamped = hl.BoundaryConditions.repeat_edge(input)
    downsampled[0][x, y, c] = hl.select(c < 3, clamped[x, y, c] * clamped[x, y, 3],
                                        clamped[x, y, 3])
    for l in range(1, levels):
        prev = downsampled[l - 1]
        if l == 4:
            # a boundary condition at a middle level: otherwise the coarse
            # levels' footprint reaches ~512 pixels off each edge
            w = input.width() // (1 << (l - 1))
            h = input.height() // (1 << (l - 1))
            edge = hl.Func(f"clamped_{l - 1}")
            edge[x, y, c] = prev[hl.clamp(x, 0, w), hl.clamp(y, 0, h), c]
            prev = edge
        downx[l][x, y, c] = (prev[x * 2 - 1, y, c] + 2.0 * prev[x * 2, y, c]
                             + prev[x * 2 + 1, y, c]) * 0.25
        downsampled[l][x, y, c] = (downx[l][x, y * 2 - 1, c] + 2.0 * downx[l][x, y * 2, c]
                                   + downx[l][x, y * 2 + 1, c]) * 0.25
    interpolated[levels - 1][x, y, c] = downsampled[levels - 1][x, y, c]
    for l in range(levels - 2, -1, -1):
        upsampledx[l][x, y, c] = (interpolated[l + 1][x / 2, y, c]
                                  + interpolated[l + 1][(x + 1) / 2, y, c]) / 2.0
        upsampled[l][x, y, c] = (upsampledx[l][x, y / 2, c]
                                 + upsampledx[l][x, (y + 1) / 2, c]) / 2.0
        alpha = 1.0 - downsampled[l][x, y, 3]
        interpolated[l][x, y, c] = downsampled[l][x, y, c] + alpha * upsampled[l][x, y, c]
    normalize = hl.Func("interpolate")
    normalize[x, y, c] = interpolated[0][x, y, c] / interpolated[0][x, y, 3]
    if gpu:
        schedule_gpu(hl, normalize, input, downsampled, interpolated, upsampledx)
        return normalize

    # -- schedule
    xo, xi, yo, yi = hl.Var("xo"), hl.Var("xi"), hl.Var("yo"), hl.Var("yi")
    for l in range(1, levels - 1):
        downsampled[l].compute_root().reorder(x, c, y).split(y, yo, yi, 8) \
            .parallel(yo).vectorize(x, VEC)
    downsampled[0].clone_in(downx[1]).store_at(downsampled[1], yo) \
        .compute_at(downsampled[1], yi).reorder(c, x, y).unroll(c).vectorize(x, VEC)
    normalize.bound(x, 0, input.width()).bound(y, 0, input.height()).bound(c, 0, 3) \
        .split(x, xo, xi, VEC).split(y, yo, yi, 32).reorder(xi, c, xo, yi, yo) \
        .unroll(c).vectorize(xi).parallel(yo)
    for l in range(1, levels):
        interpolated[l].compute_root().parallel(y, 8).vectorize(x, VEC)
    return normalize


def schedule_gpu(hl, normalize, input, downsampled, interpolated, upsampledx):
    """Halide's GPU schedule: the output in 32x32 tiles (16x16 if 32 does not
    divide the image), 2x2 pixels per thread (and the channels unrolled);
    the downsampled levels compute_root
    in 16x16 tiles, a thread per pixel (channels unrolled); every second
    interpolated level (3, 5, ...) compute_root like the output, the levels
    in between inlined into them; levels 1 and 2 and the horizontal
    upsampling of level 1 per output tile in shared memory, each thread
    2x2, 2x1 and 1x1 pixels. Differences from Halide's: no
    never_partition_all() (halo has none); the per-tile Funcs' 2x2 and 2x1
    splits round up rather than shift inwards (halo's bounds of that chain
    of block-level Funcs, and its lowering time, grow with every min() of a
    shifted split)."""
    x, y, c = normalize.args()
    xi, yi, xii, yii = hl.Var("xi"), hl.Var("yi"), hl.Var("xii"), hl.Var("yii")
    RoundUp = hl.TailStrategy.RoundUp
    # rounded-up tiles must divide the bounded output (the test image is 64x48)
    w, h = input.width(), input.height()
    t = 32 if w % 32 == 0 and h % 32 == 0 else 16

    def tiles_of_2x2(f):
        fx, fy, fc = f.args()
        f.reorder(fc, fx, fy).tile(fx, fy, xi, yi, t, t, RoundUp) \
            .tile(xi, yi, xii, yii, 2, 2, RoundUp).gpu_blocks(fx, fy).gpu_threads(xi, yi) \
            .unroll(xii).unroll(yii).unroll(fc)
    normalize.bound(x, 0, w).bound(y, 0, h).bound(c, 0, 3)
    tiles_of_2x2(normalize)
    levels = len(downsampled)
    for l in range(1, levels):
        dx, dy, dc = downsampled[l].args()
        downsampled[l].compute_root().reorder(dc, dx, dy).unroll(dc) \
            .gpu_tile(dx, dy, xi, yi, 16, 16)
    for l in range(3, levels, 2):
        tiles_of_2x2(interpolated[l].compute_root())
    for f, (tx, ty) in ((upsampledx[1], (2, 1)), (interpolated[1], (2, 2)),
                        (interpolated[2], (1, 1))):
        fx, fy, fc = f.args()
        f.compute_at(normalize, x).reorder(fc, fx, fy).unroll(fc)
        if (tx, ty) != (1, 1):
            f.tile(fx, fy, xi, yi, tx, ty, RoundUp).unroll(xi).unroll(yi)
        f.gpu_threads(fx, fy)


def make_input(small=False):
    w, h = SMALL if small else FULL
    rgb = _common.synth_photo(w, h, seed=6, color=True)
    rng = np.random.default_rng(6)
    alpha = (rng.random((h, w)) < 0.03).astype(np.float64)      # 3% of pixels known
    yy, xx = np.mgrid[0:h, 0:w]
    alpha[(np.abs(xx - yy * w / h) < 2) | (np.abs(yy - h // 3) < 2)] = 1.0   # two strokes
    return (np.concatenate([rgb, alpha[None]]).astype(np.float32),)


def output_size(input):
    return [input.shape[2], input.shape[1], 3]


def view_input(i):
    return _common.to_uint8(_common.planar_to_view(i[:3] * i[3:4]), 0.0, 1.0)


def view_output(o):
    return _common.to_uint8(_common.planar_to_view(o), 0.0, 1.0)


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
