"""Matrix multiply C = A x B (float32), the classic ML kernel.

C[j, i] = sum_k A[k, i] * B[j, k] in Halide's (column, row) order, i.e.
numpy C = A @ B. An inline `sum` over an RDom, then an explicit
update-stage schedule: 32x32 output tiles (rows of tiles in parallel), the
accumulator per tile (compute_at the tile), its update with k outermost,
8-wide vectors along the output row (the dense dimension), y unrolled by 2.
Tolerance: rtol 1e-4 (reassociated float sums).
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 1e-4, 1e-4
FULL, SMALL = 512, 64


def build(hl, A, B, gpu=False):
    x, y = hl.Var("x"), hl.Var("y")          # x: column of C, y: row of C
    n = A.width()                              # A: (k, i) Halide order -> numpy (i, k)
    k = hl.RDom([(0, n)], "k")
    prod = hl.Func("prod")
    prod[x, y] = hl.f32(0)
    prod[x, y] += A[k.x, y] * B[x, k.x]
    C = hl.Func("matmul")
    C[x, y] = prod[x, y]
    if gpu:
        schedule_gpu(hl, C, prod, k, n)
        return C

    xo, yo, xi, yi = hl.Var("xo"), hl.Var("yo"), hl.Var("xi"), hl.Var("yi")
    t = 32 if n >= 32 else 8
    C.tile(x, y, xo, yo, xi, yi, t, t).vectorize(xi, 8).parallel(yo)
    prod.compute_at(C, xo).vectorize(x, 8)
    prod.update(0).reorder(x, y, k.x).vectorize(x, 8).unroll(y, 2)
    return C


def schedule_gpu(hl, C, prod, k, n):
    """Halide's GPU schedule (apps/cuda_mat_mul): 64x16 output tiles per
    block, 16x2 threads, each thread a 4x8 block of the output accumulated
    in registers (4-wide vectors, the 8 rows unrolled), the sum over k
    unrolled by 8. Halide also stages A and B per k in registers
    (A.in(), B.in()); Buffers have no in_() in Halide's Python binding, so
    both read them directly here."""
    x, y = C.args()
    xi, yi, xii, yii = hl.Var("xi"), hl.Var("yi"), hl.Var("xii"), hl.Var("yii")
    C.bound(x, 0, n).bound(y, 0, n) \
        .tile(x, y, xi, yi, 64, 16).tile(xi, yi, xii, yii, 4, 8) \
        .gpu_blocks(x, y).gpu_threads(xi, yi).unroll(xii).unroll(yii)
    px, py = prod.args()
    prod.compute_at(C, xi).vectorize(px).unroll(py)
    prod.update().reorder(px, py, k.x).vectorize(px).unroll(py).unroll(k.x, 8)


def make_input(small=False):
    n = SMALL if small else FULL
    rng = np.random.default_rng(7)
    return (rng.standard_normal((n, n)).astype(np.float32),
            rng.standard_normal((n, n)).astype(np.float32))


def output_size(A, B):
    return [B.shape[1], A.shape[0]]


def numpy_reference(A, B):
    return A @ B


def view_input(A, B):
    return _common.to_uint8(A)


def view_output(o):
    return _common.to_uint8(o)


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
