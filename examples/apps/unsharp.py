"""Unsharp mask: sharpen the luminance of an RGB image.

gray = Rec.601 luma; blur = separable 7-tap Gaussian (sigma 1.5) of gray;
sharpen = 2 * gray - blur; every channel is scaled by sharpen / gray.
Input and output are float32, planar (x, y, c). Edges: repeat_edge.

Schedule: output rows in strips of 32, strips in parallel; within a strip
the luma is computed per strip (compute_at yo), the vertical blur per row
(compute_at yi), everything vectorized by 8.
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-5, 1e-5      # float32; C and LLVM may contract/reorder differently
FULL, SMALL = (1536, 1024), (64, 48)


def build(hl, input, gpu=False):
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    sigma = 1.5
    taps = [float(np.exp(-(i * i) / (2 * sigma * sigma))) for i in range(-3, 4)]
    s = sum(taps)
    k = [hl.f32(t / s) for t in taps]
    clamped = hl.BoundaryConditions.repeat_edge(input)
    gray = hl.Func("gray")
    gray[x, y] = (hl.f32(0.299) * clamped[x, y, 0] + hl.f32(0.587) * clamped[x, y, 1]
                  + hl.f32(0.114) * clamped[x, y, 2])
    blur_y, blur_x = hl.Func("blur_y"), hl.Func("blur_x")
    e = k[0] * gray[x, y - 3]
    for i in range(1, 7):
        e = e + k[i] * gray[x, y - 3 + i]
    blur_y[x, y] = e
    e = k[0] * blur_y[x - 3, y]
    for i in range(1, 7):
        e = e + k[i] * blur_y[x - 3 + i, y]
    blur_x[x, y] = e
    sharpen, ratio, output = hl.Func("sharpen"), hl.Func("ratio"), hl.Func("unsharp")
    sharpen[x, y] = 2 * gray[x, y] - blur_x[x, y]
    ratio[x, y] = sharpen[x, y] / hl.max(gray[x, y], hl.f32(1e-3))
    output[x, y, c] = ratio[x, y] * input[x, y, c]
    if gpu:
        schedule_gpu(hl, output, gray, blur_y, ratio)
        return output

    yo, yi = hl.Var("yo"), hl.Var("yi")
    output.split(y, yo, yi, 32).reorder(x, c, yi, yo).vectorize(x, 8).parallel(yo)
    gray.compute_at(output, yo).vectorize(x, 8)
    blur_y.compute_at(output, yi).vectorize(x, 8)
    ratio.compute_at(output, yi).vectorize(x, 8)
    return output


def schedule_gpu(hl, output, gray, blur_y, ratio):
    """Halide's GPU schedule: 32x32 output tiles, one thread per pixel (the
    channels unrolled); per tile the luma (2x2 pixels per thread) and the
    vertical blur in shared memory, the ratio per thread."""
    x, y, c = output.args()
    xi, yi = hl.Var("xi"), hl.Var("yi")
    output.compute_root().reorder(c, x, y).gpu_tile(x, y, xi, yi, 32, 32) \
        .bound(c, 0, 3).unroll(c)
    ratio.compute_at(output, xi)
    gx, gy = gray.args()
    gray.compute_at(output, x).tile(gx, gy, xi, yi, 2, 2).unroll(xi).unroll(yi) \
        .gpu_threads(gx, gy)
    bx, by = blur_y.args()
    blur_y.compute_at(output, x).unroll(bx, 2).gpu_threads(bx, by)


def make_input(small=False):
    w, h = SMALL if small else FULL
    return (_common.synth_photo(w, h, seed=1, color=True).astype(np.float32),)


def output_size(input):
    return [input.shape[2], input.shape[1], 3]


def view_output(o):
    return _common.to_uint8(_common.planar_to_view(o), 0.0, 1.0)


def view_input(i):
    return _common.to_uint8(_common.planar_to_view(i), 0.0, 1.0)


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
