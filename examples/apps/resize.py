"""Resize an RGB image with a separable bicubic or Lanczos-3 kernel (Halide's apps/resize).

For an output pixel x, the source position is (x + 0.5) / scale - 0.5. When
downsampling the kernel is widened by 1/scale (a low-pass filter), so it
spans ceil(taps / scale) source pixels starting at
begin(x) = ceil(source(x) - radius), clamped inside the image. The weights
kernel(k + begin(x) - source(x)) over an RDom of that many taps are
normalized to sum to 1 (a sum over the RDom). The image is resized
vertically first, then horizontally (the faster order when downsampling).
The scale factor is a Python float here (a Param<float> in Halide's app).
float32 planar (x, y, c) in [0, 1]; the result is clamped to [0, 1].

Schedule (Halide's, downsampling): the horizontal weights are computed once
for all x (compute_root, vectorized over x, their normalizing sums per
vector of x); the vertical weights per row strip; output tiles of 32x8,
rows of tiles in parallel, vectorized along x; the vertical pass per strip
(compute_at y, vectorized), the horizontal pass inside the vector loop.
The four sums are written as update definitions, not inline `sum()`s, so
that the schedule can name and place them (an unscheduled inline reduction
goes to its consumer's innermost loop, in halo as in Halide).
Tolerance: 1e-4 absolute (float32; the cubic polynomial cancels near |x| = 1,
so fused multiply-adds in one compiler and not the other move results ~3e-5).
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-5, 1e-4
FULL, SMALL = (1536, 1024), (64, 40)   # small: output 40 wide, over the 32-wide tile
PARAMS = {"interpolation": "cubic", "scale": 0.625}
VEC = 16                                # float lanes of AVX-512


def kernel_cubic(hl, x):
    xx = hl.abs(x)
    xx2 = xx * xx
    xx3 = xx2 * xx
    a = -0.5
    return hl.select(xx < 1.0, (a + 2.0) * xx3 - (a + 3.0) * xx2 + 1.0,
                     hl.select(xx < 2.0, a * xx3 - 5 * a * xx2 + 8 * a * xx - 4.0 * a, 0.0))


def kernel_lanczos(hl, x):
    def sinc(v):
        v = v * 3.14159265359
        return hl.sin(v) / v
    value = sinc(x) * sinc(x / 3)
    value = hl.select(x == 0.0, 1.0, value)               # the singularity at 0
    return hl.select((x > 3) | (x < -3), 0.0, value)      # zero outside [-3, 3]


KERNELS = {"cubic": (4, kernel_cubic), "lanczos": (6, kernel_lanczos)}


def build(hl, input, interpolation="cubic", scale=0.625, gpu=False):
    x, y, c, k = hl.Var("x"), hl.Var("y"), hl.Var("c"), hl.Var("k")
    taps, kernel = KERNELS[interpolation]
    f = hl.f32
    as_float = hl.Func("as_float")
    as_float[x, y, c] = hl.cast(hl.Float(32), input[x, y, c])

    inverse_scale = 1.0 / scale                 # downsampling: widen the kernel
    kernel_radius = f(0.5 * taps * inverse_scale)
    kernel_taps = int(np.ceil(taps * inverse_scale))
    sourcex = (x + f(0.5)) * f(inverse_scale) - f(0.5)
    sourcey = (y + f(0.5)) * f(inverse_scale) - f(0.5)
    beginx = hl.clamp(hl.cast(hl.Int(32), hl.ceil(sourcex - kernel_radius)),
                      input.dim(0).min(), input.dim(0).max() + 1 - kernel_taps)
    beginy = hl.clamp(hl.cast(hl.Int(32), hl.ceil(sourcey - kernel_radius)),
                      input.dim(1).min(), input.dim(1).max() + 1 - kernel_taps)

    r = hl.RDom([(0, kernel_taps)], "r")
    unnorm_x, unnorm_y = hl.Func("unnormalized_kernel_x"), hl.Func("unnormalized_kernel_y")
    unnorm_x[x, k] = kernel(hl, (k + beginx - sourcex) * f(scale))
    unnorm_y[y, k] = kernel(hl, (k + beginy - sourcey) * f(scale))
    # The sums are explicit update definitions rather than inline `sum()`s so
    # that the schedule can name and place them.
    sum_x, sum_y = hl.Func("kernel_sum_x"), hl.Func("kernel_sum_y")
    sum_x[x] = f(0)
    sum_x[x] += unnorm_x[x, r]
    sum_y[y] = f(0)
    sum_y[y] += unnorm_y[y, r]
    kernel_x, kernel_y = hl.Func("kernel_x"), hl.Func("kernel_y")
    kernel_x[x, k] = unnorm_x[x, k] / sum_x[x]
    kernel_y[y, k] = unnorm_y[y, k] / sum_y[y]

    resized_y, resized_x = hl.Func("resized_y"), hl.Func("resized_x")
    resized_y[x, y, c] = f(0)
    resized_y[x, y, c] += kernel_y[y, r] * as_float[x, r + beginy, c]
    resized_x[x, y, c] = f(0)
    resized_x[x, y, c] += kernel_x[x, r] * resized_y[r + beginx, y, c]
    output = hl.Func("resize")
    output[x, y, c] = hl.clamp(resized_x[x, y, c], 0.0, 1.0)
    if gpu:
        schedule_gpu(hl, output, resized_x, resized_y,
                     [(kernel_x, unnorm_x, sum_x), (kernel_y, unnorm_y, sum_y)])
        return output

    xi, yi, xo, xv = hl.Var("xi"), hl.Var("yi"), hl.Var("xo"), hl.Var("xv")
    unnorm_x.compute_at(kernel_x, x).vectorize(x)
    sum_x.compute_at(kernel_x, x).vectorize(x)
    sum_x.update().vectorize(x)
    kernel_x.compute_root().reorder(k, x).vectorize(x, VEC)
    unnorm_y.compute_at(kernel_y, y).vectorize(y, VEC)
    sum_y.compute_at(kernel_y, y).vectorize(y)
    sum_y.update().vectorize(y)
    kernel_y.compute_at(output, y).reorder(k, y).vectorize(y, VEC)
    output.tile(x, y, xi, yi, 32, 8).parallel(y).vectorize(xi)
    resized_y.compute_at(output, y).vectorize(x, VEC)
    # Halide's inline sum runs per vector of x, the taps outside the lanes
    resized_y.update().split(x, xo, xv, VEC).reorder(xv, r.x, xo).vectorize(xv)
    resized_x.compute_at(output, xi).unroll(c)
    resized_x.update().unroll(c)
    return output


def schedule_gpu(hl, output, resized_x, resized_y, kernels):
    """A GPU schedule (Halide's app has none): each kernel's weights
    compute_root, a thread per output column (row) computing its taps and
    their sum in registers; the vertical pass compute_root in 32x8 tiles, a
    thread per pixel with the three channels and its sum over the taps in
    registers; the output likewise, the horizontal pass per thread. The
    vertical pass is not computed per output tile in shared memory: the
    source columns a tile reads come from float coordinates, which halo's
    interval bounds do not narrow below the whole clamped image width."""
    x, y, c = output.args()
    xi, yi, vi = hl.Var("xi"), hl.Var("yi"), hl.Var("vi")
    for kern, unnorm, ksum in kernels:
        v, k = kern.args()
        kern.compute_root().reorder(k, v).gpu_tile(v, vi, 64)
        unnorm.compute_at(kern, vi)
        ksum.compute_at(kern, vi)
    vertical = resized_y.in_()
    vx, vy, vc = vertical.args()
    vertical.compute_root().reorder(vc, vx, vy).bound(vc, 0, 3).unroll(vc) \
        .gpu_tile(vx, vy, xi, yi, 32, 8)
    resized_y.compute_at(vertical, xi)
    output.reorder(c, x, y).bound(c, 0, 3).unroll(c).gpu_tile(x, y, xi, yi, 32, 8)
    resized_x.compute_at(output, xi)


def make_input(small=False):
    w, h = SMALL if small else FULL
    return (_common.synth_photo(w, h, seed=5, color=True).astype(np.float32),)


def output_size(input, scale=PARAMS["scale"]):
    _, h, w = input.shape
    return [int(w * scale), int(h * scale), 3]


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
