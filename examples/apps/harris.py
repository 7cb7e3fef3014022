"""Harris corner detection on an RGB image.

gray = Rec.601 luma; Ix, Iy = 3x3 Sobel derivatives; the structure tensor
(Ix^2, Iy^2, Ix*Iy) is box-summed over 3x3; the response is
det(S) - 0.04 * trace(S)^2. float32 throughout; edges: repeat_edge.

Schedule: output rows in strips of 32 (parallel), x vectorized by 8; per
strip, gray and the two derivatives are computed into strip buffers
(compute_at yo), the products and box sums are inlined.
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-4, 1e-7      # float32 sums of products; evaluation order may differ
FULL, SMALL = (1536, 1024), (64, 48)


def build(hl, input, gpu=False):
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    f = hl.f32
    clamped = hl.BoundaryConditions.repeat_edge(input)
    gray, Ix, Iy = hl.Func("gray"), hl.Func("Ix"), hl.Func("Iy")
    gray[x, y] = (f(0.299) * clamped[x, y, 0] + f(0.587) * clamped[x, y, 1]
                  + f(0.114) * clamped[x, y, 2])
    Iy[x, y] = (gray[x - 1, y - 1] * f(-1 / 12) + gray[x - 1, y + 1] * f(1 / 12)
                + gray[x, y - 1] * f(-2 / 12) + gray[x, y + 1] * f(2 / 12)
                + gray[x + 1, y - 1] * f(-1 / 12) + gray[x + 1, y + 1] * f(1 / 12))
    Ix[x, y] = (gray[x - 1, y - 1] * f(-1 / 12) + gray[x + 1, y - 1] * f(1 / 12)
                + gray[x - 1, y] * f(-2 / 12) + gray[x + 1, y] * f(2 / 12)
                + gray[x - 1, y + 1] * f(-1 / 12) + gray[x + 1, y + 1] * f(1 / 12))
    Ixx, Iyy, Ixy = hl.Func("Ixx"), hl.Func("Iyy"), hl.Func("Ixy")
    Ixx[x, y] = Ix[x, y] * Ix[x, y]
    Iyy[x, y] = Iy[x, y] * Iy[x, y]
    Ixy[x, y] = Ix[x, y] * Iy[x, y]

    def box(g, name):
        b = hl.Func(name)
        e = None
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                t = g[x + dx, y + dy]
                e = t if e is None else e + t
        b[x, y] = e
        return b

    Sxx, Syy, Sxy = box(Ixx, "Sxx"), box(Iyy, "Syy"), box(Ixy, "Sxy")
    det, trace, output = hl.Func("det"), hl.Func("trace"), hl.Func("harris")
    det[x, y] = Sxx[x, y] * Syy[x, y] - Sxy[x, y] * Sxy[x, y]
    trace[x, y] = Sxx[x, y] + Syy[x, y]
    output[x, y] = det[x, y] - f(0.04) * trace[x, y] * trace[x, y]
    if gpu:
        schedule_gpu(hl, output, Ix, Iy)
        return output

    yo, yi = hl.Var("yo"), hl.Var("yi")
    output.split(y, yo, yi, 32).vectorize(x, 8).parallel(yo)
    gray.compute_at(output, yo).vectorize(x, 8)
    Ix.compute_at(output, yo).vectorize(x, 8)
    Iy.compute_at(output, yo).vectorize(x, 8)
    return output


def schedule_gpu(hl, output, Ix, Iy):
    """Halide's GPU schedule: 14x14 output tiles, a thread per pixel; the
    derivatives per tile in shared memory (the luma inlined into them)."""
    x, y = output.args()
    xi, yi = hl.Var("xi"), hl.Var("yi")
    output.gpu_tile(x, y, xi, yi, 14, 14)
    for f in (Ix, Iy):
        fx, fy = f.args()
        f.compute_at(output, x).gpu_threads(fx, fy)


def make_input(small=False):
    w, h = SMALL if small else FULL
    return (_common.synth_photo(w, h, seed=2, color=True).astype(np.float32),)


def output_size(input):
    return [input.shape[2], input.shape[1]]


def view_input(i):
    return _common.to_uint8(_common.planar_to_view(i), 0.0, 1.0)


def view_output(o):
    # corners are the strong positive responses: show sqrt of the positive part
    r = np.sqrt(np.maximum(o, 0))
    return _common.to_uint8(r, 0.0, max(float(np.percentile(r, 99.9)), 1e-9))


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
