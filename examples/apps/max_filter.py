"""Circular max filter (grey-scale dilation with a disc of radius R).

As in Halide's max_filter app: `vert_log[x, y, c, k]` is the max over the
vertical span [y, y + 2^k), built by log-doubling (an update over RDom (row, k)); the max over any span of t rows is then two lookups into the right
slice (k = floor(log2 t)); the disc is the max over dx in [-R, R] of the
vertical span of height 2*sqrt(R^2 - dx^2) + 1 centred on y, column x + dx.
Input/output float32 (x, y, c), edges repeat_edge. Max is exact, so the
output must equal Halide's bit for bit.

Schedule: output rows in strips of 32 (parallel), x vectorized by 8; the
log-doubling table is compute_root (its rows are a reduction domain
over the whole height), vectorized, channels in parallel; the disc profile
(filter_height) is compute_root. The max over the disc is Halide's
`maximum()` written as a Func with an update, scheduled where Halide puts
an unscheduled inline reduction (per vector of x, the RDom inside it): halo
would compute an unscheduled one at the root, in one scalar pass.
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 0.0, 0.0
FULL, SMALL = (1536, 1024), (64, 48)
PARAMS = {"radius": 13}


def _pow2(hl, k, n):
    """2^k for k in [0, n) as a select chain (see the note in build)."""
    e = hl.i32(1)
    for j in range(1, n):
        e = hl.select(k == j, 1 << j, e)
    return e


def build(hl, input, radius=13, gpu=False):
    x, y, c, t = hl.Var("x"), hl.Var("y"), hl.Var("c"), hl.Var("t")
    span = 2 * radius + 1
    slices = span.bit_length()               # k = 0 .. slices-1 covers spans up to 2^(slices-1)
    clamped = hl.BoundaryConditions.repeat_edge(input)
    vert_log = hl.Func("vert_log")
    vert_log[x, y, c, t] = clamped[x, y, c]
    # an update may only read itself at its own pure coordinates, so the rows
    # are a reduction domain: all rows the filter can touch, for each slice k
    H = input.height()
    rl = hl.RDom([(-radius, H + 2 * radius), (1, slices - 1)], "rlog")
    vert_log[x, rl.x, c, rl.y] = hl.max(vert_log[x, rl.x, c, rl.y - 1],
                                        vert_log[x, rl.x + _pow2(hl, rl.y - 1, slices), c, rl.y - 1])
    # max over rows [y - t//2, y - t//2 + t): two overlapping power-of-two spans
    vert = hl.Func("vert")
    # k = floor(log2 t) and 2^k as select chains: halo's bounds inference does
    # not bound shifts or count_leading_zeros by a data-dependent amount (Halide
    # does), and the consumer needs bounded rows and slices
    t_log, pw = hl.i32(0), hl.i32(1)
    for k in range(1, slices):
        t_log = hl.select(t >= (1 << k), k, t_log)
        pw = hl.select(t >= (1 << k), 1 << k, pw)
    top = y - t / 2
    vert[x, y, c, t] = hl.max(vert_log[x, top, c, t_log],
                              vert_log[x, top + t - pw, c, t_log])
    filter_height = hl.Func("filter_height")
    dxv = hl.Var("dx")
    filter_height[dxv] = 2 * hl.i32(hl.sqrt(hl.f32(radius * radius) - hl.f32(dxv * dxv)) + hl.f32(0.5)) + 1
    r = hl.RDom([(-radius, span)], "r")
    # Halide's maximum() as its Func: computed where Halide computes an
    # unscheduled inline reduction (its consumer's innermost loop, here a
    # vector of x); halo would compute it at the root
    column_max = hl.Func("maximum")
    column_max[x, y, c] = hl.f32(float("-inf"))
    column_max[x, y, c] = hl.max(column_max[x, y, c],
                                 vert[x + r.x, y, c, hl.clamp(filter_height[r.x], 1, span)])
    output = hl.Func("max_filter")
    output[x, y, c] = column_max[x, y, c]
    if gpu:
        schedule_gpu(hl, output, column_max, vert_log, filter_height, rl, input)
        return output

    yo, yi = hl.Var("yo"), hl.Var("yi")
    output.split(y, yo, yi, 32).reorder(x, yi, c, yo).vectorize(x, 8).parallel(yo)
    column_max.compute_at(output, x).vectorize(x, 8)
    column_max.update().reorder(x, r.x).vectorize(x, 8)
    vert_log.compute_root().vectorize(x, 8).parallel(c)
    vert_log.update(0).reorder(x, rl.x, rl.y, c).vectorize(x, 8).parallel(c)
    filter_height.compute_root()
    return output


def schedule_gpu(hl, output, column_max, vert_log, filter_height, rl, input):
    """Halide's GPU schedule: the output in rows of 128 pixels per block
    (32 when the image is narrower), a block per (row segment, y, c), a
    thread per pixel computing its max over the disc; the log-doubling table
    compute_root, its first slice in 16x16 tiles (all slices and channels
    of a pixel per thread), its update with a thread per column of a
    128-column segment, looping over the slices and, within each, the rows;
    the disc profile on the host."""
    x, y, c = output.args()
    xo, xi, yi = hl.Var("xo"), hl.Var("xi"), hl.Var("yi")
    tw = 128 if input.width() >= 128 else 32
    filter_height.compute_root()
    output.split(x, xo, xi, tw).reorder(xi, xo, y, c).gpu_blocks(xo, y, c).gpu_threads(xi)
    column_max.compute_at(output, xi)
    vx, vy, vc, vt = vert_log.args()
    vert_log.compute_root().reorder(vc, vt, vx, vy).gpu_tile(vx, vy, xi, yi, 16, 16)
    vert_log.update().split(vx, xo, xi, tw).reorder(rl.x, rl.y, xi, xo, vc) \
        .gpu_blocks(xo, vc).gpu_threads(xi)


def make_input(small=False):
    w, h = SMALL if small else FULL
    img = _common.synth_photo(w, h, seed=3, color=True)
    # sparse bright specks make the dilation visible as discs
    rng = np.random.default_rng(3)
    n = max(4, w * h // 4000)
    img[:, rng.integers(0, h, n), rng.integers(0, w, n)] = 1.0
    return (img.astype(np.float32),)


def output_size(input):
    return [input.shape[2], input.shape[1], input.shape[0]]


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
