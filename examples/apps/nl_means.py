"""Non-local means denoising (Halide's apps/nl_means; Buades, Coll and Morel 2005).

Each output pixel is a weighted mean of the pixels in a search window
around it (search_area^2 offsets); the weight of offset (dx, dy) is
exp(-|P(x, y) - P(x + dx, y + dy)|^2 / (sigma^2 patch_size^2)), where the
patch distance is the squared colour difference summed over channels and
box-blurred over a patch_size^2 window (separably: RDoms over y, then x).
A constant fourth channel accumulates the weights, which normalize the sum.
float32 planar RGB (x, y, c) in [0, 1]; edges: repeat_edge.

Schedule (Halide's CPU schedule): output tiles of 16x8 (rows of tiles in
parallel), vectorized by 8 along x; per tile the difference image and its
vertical blur for every offset; the 4-channel weighted sum per vector of x
with the search window outermost and channels unrolled; the horizontal blur
and the weight per search offset inside it.
Differences from Halide's app, none changes what is computed: exp() where
Halide uses fast_exp() (halo has no fast_exp; both sides here use exp); and
the three sums are update definitions rather than inline `sum()`s (halo
computes an unscheduled inline reduction at the root, Halide at its
consumer's innermost loop), scheduled where Halide computes them.
Tolerance: rtol 1e-4 (float32 sums over 49 offsets of exp; C's expf and
LLVM's differ in the last bits).
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-4, 1e-5
FULL, SMALL = (768, 512), (32, 24)
PARAMS = {"patch_size": 7, "search_area": 7, "sigma": 0.12}


def build(hl, input, patch_size=7, search_area=7, sigma=0.12, gpu=False):
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    dx, dy = hl.Var("dx"), hl.Var("dy")
    f32 = hl.f32
    inv_sigma_sq = -1.0 / (sigma * sigma * patch_size * patch_size)
    clamped = hl.BoundaryConditions.repeat_edge(input)

    dc = hl.Func("dc")                          # per-channel difference images
    dc[x, y, dx, dy, c] = hl.pow(clamped[x, y, c] - clamped[x + dx, y + dy, c], 2)
    channels = hl.RDom([(0, 3)], "channels")
    d = hl.Func("d")                            # summed over channels
    d[x, y, dx, dy] = f32(0)
    d[x, y, dx, dy] += dc[x, y, dx, dy, channels.x]
    patch = hl.RDom([(-(patch_size // 2), patch_size)], "patch")
    blur_d_y = hl.Func("blur_d_y")              # patch distances: blur d
    blur_d_y[x, y, dx, dy] = f32(0)
    blur_d_y[x, y, dx, dy] += d[x, y + patch.x, dx, dy]
    blur_d = hl.Func("blur_d")
    blur_d[x, y, dx, dy] = f32(0)
    blur_d[x, y, dx, dy] += blur_d_y[x + patch.x, y, dx, dy]
    w = hl.Func("w")                            # weights
    w[x, y, dx, dy] = hl.exp(blur_d[x, y, dx, dy] * f32(inv_sigma_sq))

    clamped_with_alpha = hl.Func("clamped_with_alpha")
    clamped_with_alpha[x, y, c] = hl.select(c == 0, clamped[x, y, 0], c == 1, clamped[x, y, 1],
                                            c == 2, clamped[x, y, 2], 1.0)
    s = hl.RDom([(-(search_area // 2), search_area), (-(search_area // 2), search_area)], "s")
    nl_sum = hl.Func("non_local_means_sum")
    nl_sum[x, y, c] += w[x, y, s.x, s.y] * clamped_with_alpha[x + s.x, y + s.y, c]
    output = hl.Func("nl_means")
    output[x, y, c] = hl.clamp(nl_sum[x, y, c] / nl_sum[x, y, 3], 0.0, 1.0)
    if gpu:
        schedule_gpu(hl, output, nl_sum, [(d, channels.x), (blur_d_y, patch.x),
                                          (blur_d, patch.x)], s)
        return output

    # -- schedule
    tx, ty, xi, yi = hl.Var("tx"), hl.Var("ty"), hl.Var("xi"), hl.Var("yi")
    output.compute_root().reorder(c, x, y).tile(x, y, tx, ty, x, y, 16, 8) \
        .parallel(ty).vectorize(x, 8)
    blur_d_y.compute_at(output, tx).reorder(y, x).vectorize(x, 8)
    blur_d_y.update().reorder(x, patch.x, y).vectorize(x, 8)
    d.compute_at(output, tx).vectorize(x, 8)
    d.update().reorder(x, channels.x).vectorize(x, 8)
    nl_sum.compute_at(output, x).reorder(c, x, y).bound(c, 0, 4).unroll(c).vectorize(x, 8)
    nl_sum.update(0).reorder(c, x, y, s.x, s.y).unroll(c).vectorize(x, 8)
    blur_d.compute_at(nl_sum, x).vectorize(x, 8)
    blur_d.update().reorder(x, patch.x).vectorize(x, 8)
    return output


def schedule_gpu(hl, output, nl_sum, sums, s):
    """Halide's GPU schedule (commented out in its app: Halide's simplifier
    left the shared memory size at the whole image): the output in 16x8
    tiles, a thread per pixel (channels unrolled); per tile, in shared
    memory, the weighted sum with a thread per pixel, the search window
    outermost; per search offset dx (and dy) the difference image, its
    vertical and its horizontal blur, each in shared memory, a thread per
    2x2, 2x1 and 1 pixel(s) summing its channels or patch taps. Difference
    from Halide's: those 2x2 and 2x1 splits round up rather than shift
    inwards (halo's bounds of a chain of block-level Funcs, and its lowering
    time, grow with every min() of a shifted split)."""
    x, y, c = output.args()
    xi, yi = hl.Var("xi"), hl.Var("yi")
    output.compute_root().reorder(c, x, y).bound(c, 0, 3).unroll(c) \
        .gpu_tile(x, y, xi, yi, 16, 8)
    nx, ny, nc = nl_sum.args()
    nl_sum.compute_at(output, x).gpu_threads(nx, ny)
    nl_sum.update().reorder(nx, ny, nc, s.x, s.y).gpu_threads(nx, ny)
    RoundUp = hl.TailStrategy.RoundUp
    xii, yii = hl.Var("xii"), hl.Var("yii")
    for (f, rv), (tx, ty) in zip(sums, [(2, 2), (2, 1), (1, 1)]):
        fx, fy = f.args()[:2]
        f.compute_at(nl_sum, s.x)
        for stage in (f, f.update().reorder(rv, fx, fy)):
            if (tx, ty) != (1, 1):
                stage.tile(fx, fy, xii, yii, tx, ty, RoundUp).unroll(xii).unroll(yii)
            stage.gpu_threads(fx, fy)


def make_input(small=False):
    w, h = SMALL if small else FULL
    img = _common.synth_photo(w, h, seed=8, color=True)
    rng = np.random.default_rng(8)
    noisy = img + rng.normal(0, 0.08, img.shape)               # the noise to remove
    return (np.clip(noisy, 0, 1).astype(np.float32),)


def output_size(input):
    return [input.shape[2], input.shape[1], 3]


def view_input(i):
    return _common.to_uint8(_common.planar_to_view(i), 0.0, 1.0)


def view_output(o):
    return _common.to_uint8(_common.planar_to_view(o), 0.0, 1.0)


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
