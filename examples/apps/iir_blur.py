"""IIR blur: a first-order recursive (exponential) filter, run causally and
anti-causally down the columns, then - after a transpose - down the rows.

Each pass is a Func whose update stages walk y with an RDom:
  blur[x, y] = (1 - a) * blur[x, y - 1] + a * in[x, y]        (downward)
  blur[x, y] = (1 - a) * blur[x, y + 1] + a * blur[x, y]      (upward)
float32 RGB (x, y, c), alpha = 0.1. Tolerance 1e-5: the same arithmetic
in the same order, but the C compiler and LLVM may contract differently.

Schedule (per pass): the recursion is compute_root; its pure definition and
both updates run x in 8-wide vectors, vectors in parallel chunks of 64
columns, y serial (the recursion); the transposes go in 32x32 tiles; the output is bound() to the image size.
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


def _blur_cols_transpose(hl, src, width, height, alpha, name):
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

    xo, xi = hl.Var("xo"), hl.Var("xi")
    chunk = 64 if width >= 64 else 8        # tiny test images: no over-read
    blur.compute_root().split(x, xo, xi, chunk).vectorize(xi, 8).parallel(xo)
    for i in range(2):
        blur.update(i).split(x, xo, xi, chunk).vectorize(xi, 8).parallel(xo)
    yo, yi = hl.Var("yo"), hl.Var("yi")
    tt = 32 if min(width, height) >= 32 else 8
    t.compute_root().tile(x, y, xo, yo, xi, yi, tt, tt).vectorize(xi, 8).parallel(yo)
    return t


def build(hl, input, alpha=0.1):
    w, h = input.width(), input.height()
    x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
    cols = _blur_cols_transpose(hl, input, w, h, alpha, "blur_cols")   # (y, x, c) layout
    rows = _blur_cols_transpose(hl, cols, h, w, alpha, "blur_rows")    # back to (x, y, c)
    output = hl.Func("iir_blur")
    output[x, y, c] = rows[x, y, c]
    xo, xi = hl.Var("xo"), hl.Var("xi")
    output.split(x, xo, xi, 8).vectorize(xi).parallel(y)
    # the image size is known: bounding the output keeps every intermediate's
    # bounds constant (without it halo's symbolic bounds grow stage by stage:
    # 20 s to lower, a 400 KB C file)
    output.bound(x, 0, w).bound(y, 0, h).bound(c, 0, input.channels())
    return output


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
