"""IIR blur: a first-order recursive (exponential) filter, run causally and
anti-causally down the columns, then - after a transpose - down the rows.

Each pass is a Func whose update stages walk y with an RDom:
  blur[x, y] = (1 - a) * blur[x, y - 1] + a * in[x, y]        (downward)
  blur[x, y] = (1 - a) * blur[x, y + 1] + a * blur[x, y]      (upward)
float32 RGB (x, y, c), alpha = 0.1. Tolerance 1e-5: the same arithmetic
in the same order, but the C compiler and LLVM may contract differently.

Schedule (per pass, Halide's apps/iir_blur CPU schedule): the transpose in
tiles of 8 x 32, 8-wide vectors, parallel over tile rows and channels; the
recursion computed per tile row (a strip of 32 columns, 200 KB: it stays in
L2), rows in sequence, the 32 columns of a row as vectors. The output is
bound() to the image size. Halide's pure definition is undef() (halo has no
undef): here it copies the input, which the strip then reads from cache.
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-5, 1e-5
FULL, SMALL = (1536, 1024), (64, 48)
PARAMS = {"alpha": 0.1}


def _blur_cols_transpose(hl, src, width, height, alpha, name, gpu=False):
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    a = hl.f32(alpha)
    b = hl.f32(1.0 - alpha)
    blur = hl.Func(name)
    blur[x, y, c] = src[x, y, c]
    ry = hl.RDom([(1, height - 1)], name + "_ry")
    blur[x, ry, c] = b * blur[x, ry - 1, c] + a * src[x, ry, c]
    rz = hl.RDom([(0, height - 1)], name + "_rz")
    up = height - 2 - rz
    blur[x, up, c] = b * blur[x, up + 1, c] + a * blur[x, up, c]
    t = hl.Func(name + "_T")
    t[x, y, c] = blur[y, x, c]
    if gpu:
        schedule_gpu(hl, blur, t, [ry.x, rz.x])
        return t

    vec = 8 if min(width, height) >= 32 else 4       # tiny test images
    xo, yo = hl.Var("xo"), hl.Var("yo")
    t.compute_root().tile(x, y, xo, yo, x, y, vec, vec * 4) \
        .vectorize(x).parallel(yo).parallel(c)
    blur.compute_at(t, yo).vectorize(x, vec)
    blur.update(0).reorder(x, ry).vectorize(x, vec)
    blur.update(1).reorder(x, rz).vectorize(x, vec)
    return t


def build(hl, input, alpha=0.1, gpu=False):
    w, h = input.width(), input.height()
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    cols = _blur_cols_transpose(hl, input, w, h, alpha, "blur_cols", gpu)   # (y, x, c) layout
    rows = _blur_cols_transpose(hl, cols, h, w, alpha, "blur_rows", gpu)    # back to (x, y, c)
    output = hl.Func("iir_blur")
    output[x, y, c] = rows[x, y, c]
    if gpu:
        xi, yi = hl.Var("xi"), hl.Var("yi")       # a copy: keep it on the GPU too
        output.gpu_tile(x, y, xi, yi, 32, 8) \
            .bound(x, 0, w).bound(y, 0, h).bound(c, 0, input.channels())
        return output
    xo, xi = hl.Var("xo"), hl.Var("xi")
    output.split(x, xo, xi, 8).vectorize(xi).parallel(y)
    # the image size is known: bounding the output keeps every intermediate's
    # bounds constant (without it halo's symbolic bounds grow stage by stage:
    # 20 s to lower, a 400 KB C file)
    output.bound(x, 0, w).bound(y, 0, h).bound(c, 0, input.channels())
    return output


def schedule_gpu(hl, blur, transpose, rows):
    """One pass, after Halide's GPU schedule: the transpose in 32x32 tiles,
    a block per (tile row, channel), a thread per column of a tile, the
    tiles of a row in sequence; each tile of the blur is staged through
    shared memory (a wrapper, blur.in_(), per tile) so that the transposing
    reads come out of shared memory. The recursion: 32 columns per block, a
    thread per column, the rows in sequence (unrolled by 8).
    Differences from Halide's: the blur is compute_root, a kernel per stage,
    rather than computed per transpose block into global memory
    (store_in(Heap) at block level, which halo does not have: its
    block-level storage is shared memory, too small for a 32-column strip);
    gpu_threads where Halide uses gpu_lanes (which Halide's OpenCL backend
    rejects); no align_storage (halo has none)."""
    x, y, c = transpose.args()
    xi, yi, xo = hl.Var("xi"), hl.Var("yi"), hl.Var("xo")
    transpose.compute_root().tile(x, y, xi, yi, 32, 32).gpu_blocks(y, c).gpu_threads(xi)
    bx, by, bc = blur.args()
    blur.compute_root().split(bx, xo, xi, 32).reorder(xi, by, xo, bc) \
        .gpu_blocks(xo, bc).gpu_threads(xi)
    # the recursions' columns guarded, not rounded up (which would read
    # past the image) nor shifted inwards (which would run a column twice)
    guard = hl.TailStrategy.GuardWithIf
    for k, ry in enumerate(rows):
        blur.update(k).split(bx, xo, xi, 32, guard).reorder(xi, ry, xo, bc).unroll(ry, 8) \
            .gpu_blocks(xo, bc).gpu_threads(xi)
    staged = blur.in_(transpose)
    sx = staged.args()[0]
    staged.compute_at(transpose, x).gpu_threads(sx)


def make_input(small=False):
    w, h = SMALL if small else FULL
    return (_common.synth_photo(w, h, seed=5, color=True).astype(np.float32),)


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
