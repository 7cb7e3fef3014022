"""A convolution layer with ReLU, the classic ML kernel (Halide's apps/conv_layer).

conv(c, x, y, n) = bias(c) + sum over (ci, dx, dy) of
    filter(c, dx, dy, ci) * input(ci, x + dx, y + dy, n)
relu = max(0, conv). 3x3 window, no padding (the input is 2 pixels larger
than the output), channels innermost, float32 throughout.
Full size: N=4, CI=32, CO=64, 64x64 output.

Schedule (Halide's CPU schedule for 32-register ISAs such as AVX-512):
output channels split into blocks of 4 vectors, x into blocks of 5; the
accumulator for a 4-vector x 5-pixel block is computed per block
(compute_at xo) fully unrolled, with the reduction over (ci, dx, dy) outside
the unrolled block and ci unrolled by 2; the filter taps are staged per ci
(filter.in() at r.x) and the input values per pixel (input.in() at x);
y, n and the channel blocks run in parallel.
Tolerance: rtol 1e-4 (float sums of 288 products, reassociated).
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-4, 1e-4
# (N, CI, CO, W, H)
FULL, SMALL = (4, 32, 64, 64, 64), (1, 4, 64, 10, 6)
VEC, TILE_W, TILE_H = 16, 4, 5     # 16 float lanes (AVX-512); 4x5 accumulator tile


def build(hl, input, filter, bias, gpu=False):
    x, y, c, n = hl.Var("x"), hl.Var("y"), hl.Var("c"), hl.Var("n")
    CI = input.dim(0).extent()
    r = hl.RDom([(0, CI), (0, 3), (0, 3)], "r")
    conv, relu = hl.Func("conv"), hl.Func("relu")
    # staging copies, as Halide's filter.in() / input.in() (Buffers have no .in())
    filter_in, input_in = hl.Func("filter_in"), hl.Func("input_in")
    filter_in[c, x, y, n] = filter[c, x, y, n]
    input_in[c, x, y, n] = input[c, x, y, n]
    conv[c, x, y, n] = bias[c]
    conv[c, x, y, n] += filter_in[c, r.y, r.z, r.x] * input_in[r.x, x + r.y, y + r.z, n]
    relu[c, x, y, n] = hl.max(0, conv[c, x, y, n])

    # Sizes are compiled in (as Halide's app does with bound()), so the
    # unrolled loops and staging buffers have constant extents.
    CO, N = filter.dim(0).extent(), input.dim(3).extent()
    W, H = input.dim(1).extent() - 2, input.dim(2).extent() - 2
    relu.bound(c, 0, CO).bound(x, 0, W).bound(y, 0, H).bound(n, 0, N)
    if gpu:
        schedule_gpu(hl, relu, conv, input_in, r)
        return relu
    co, ci, xo, xi = hl.Var("co"), hl.Var("ci"), hl.Var("xo"), hl.Var("xi")
    relu.split(c, co, ci, VEC * TILE_W).split(x, xo, xi, TILE_H) \
        .reorder(ci, xi, xo, y, n, co) \
        .vectorize(ci, VEC).unroll(ci).unroll(xi) \
        .parallel(y).parallel(n).parallel(co)
    conv.compute_at(relu, xo).vectorize(c, VEC).unroll(c).unroll(x).unroll(y) \
        .update().reorder(c, x, y, r.x, r.y, r.z, n) \
        .vectorize(c, VEC).unroll(c).unroll(x).unroll(y).unroll(r.x, 2)
    filter_in.compute_at(conv, r.x).vectorize(c, VEC).unroll(c).unroll(n)
    input_in.compute_at(conv, x).unroll(c)
    return relu


def schedule_gpu(hl, relu, conv, input_in, r):
    """After Halide's GPU schedule: a block per 5x5 pixels of 32 output
    channels (channel blocks and images fused), a thread per channel with
    its 25 accumulators in registers; the reduction over input channels in
    steps of 16 (unrolled by 2), the 3x3 taps and the 5x5 pixels unrolled;
    the block's input window (all input channels) staged in shared memory,
    a thread per input channel loading it.
    Differences from Halide's: the accumulators are computed per thread
    (compute_at the channel's thread loop) where Halide computes them per
    block with store_in(Register) and lane-wise loops (halo's block-level
    storage is shared memory); the input window is staged once per block,
    not per 16 input channels (halo puts a barrier after every serial
    block-level loop iteration); gpu_threads where Halide uses gpu_lanes
    (which Halide's OpenCL backend rejects)."""
    c, x, y, n = relu.args()
    co, ci, xo, xi, yo, yi, t = (hl.Var(v) for v in ("co", "ci", "xo", "xi", "yo", "yi", "t"))
    rxo, rxi, rxii = hl.RVar("rxo"), hl.RVar("rxi"), hl.RVar("rxii")
    relu.compute_root().split(x, xo, xi, 5).split(y, yo, yi, 5).split(c, co, ci, 32) \
        .reorder(xi, yi, ci, xo, yo, co, n).gpu_threads(ci).unroll(xi).unroll(yi) \
        .fuse(co, n, t).gpu_blocks(xo, yo, t)
    cc, cx, cy, cn = conv.args()
    conv.compute_at(relu, ci).store_in(hl.MemoryType.Register).unroll(cx).unroll(cy)
    conv.update().split(r.x, rxo, rxi, 16).split(rxi, rxi, rxii, 2) \
        .reorder(cc, rxii, cx, cy, r.y, r.z, rxi, rxo) \
        .unroll(cx).unroll(cy).unroll(r.y).unroll(r.z).unroll(rxii)
    ic, ix, iy, i_n = input_in.args()
    input_in.compute_at(relu, xo).reorder(ix, iy, ic, i_n).gpu_threads(ic)


def make_input(small=False):
    N, CI, CO, W, H = SMALL if small else FULL
    rng = np.random.default_rng(11)
    # numpy order is Halide's reversed: input(ci, x, y, n) -> [n, y, x, ci]
    inp = rng.standard_normal((N, H + 2, W + 2, CI)).astype(np.float32)
    filt = (rng.standard_normal((CI, 3, 3, CO)) / np.sqrt(9 * CI)).astype(np.float32)
    bias = (0.1 * rng.standard_normal(CO)).astype(np.float32)
    return inp, filt, bias


def output_size(input, filter, bias):
    N, H2, W2, _ = input.shape
    return [filter.shape[3], W2 - 2, H2 - 2, N]


def numpy_reference(input, filter, bias):
    N, H2, W2, CI = input.shape
    out = np.broadcast_to(bias, (N, H2 - 2, W2 - 2, bias.size)).astype(np.float32)
    for dy in range(3):
        for dx in range(3):
            out = out + input[:, dy:dy + H2 - 2, dx:dx + W2 - 2, :] @ filter[:, dy, dx, :]
    return np.maximum(out, 0)


def _mosaic(planes):
    """(k, h, w) -> one image of k tiles in a near-square grid."""
    k, h, w = planes.shape
    cols = int(np.ceil(np.sqrt(k)))
    rows = -(-k // cols)
    grid = np.zeros((rows * (h + 1), cols * (w + 1)), planes.dtype)
    for i in range(k):
        r, c = divmod(i, cols)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = planes[i]
    return grid


def view_input(input, filter, bias):
    return _common.to_uint8(_mosaic(np.moveaxis(input[0], -1, 0)))


def view_output(o):
    return _common.to_uint8(_mosaic(np.moveaxis(o[0], -1, 0)))


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
