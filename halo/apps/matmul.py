"""Matrix multiply C = A @ B in float32 (numpy order; Halide order C[x, y]).

    halo tune halo.apps.matmul:matmul --target host --budget 300

`expert_schedule` is Halide's test/performance/matrix_multiplication.cpp
schedule: register blocks of vectors x 4 rows accumulated per tile, the
reduction outside the block, tiles in parallel.

`B_panel` is an identity copy of B (inlined unless a schedule places it): a
schedule can compute it per output tile, which packs the tile's panel of B
into a dense buffer, as Halide's `B.in_().compute_at(out, x)` does. A
schedule file can place a Func but not (yet) wrap an input with `in_()`.
"""
from __future__ import annotations

import numpy as np

DEFAULT_SIZE = 1024


def build(hl, A, B):
    """{'out': matmul, 'prod': prod, 'B_panel': ..., 'k': RDom} for float32 A
    (numpy (n, k)) and B ((k, m))."""
    x, y = hl.Var("x"), hl.Var("y")
    k = hl.RDom([hl.Range(0, A.width())], "k")
    panel, prod, out = hl.Func("B_panel"), hl.Func("prod"), hl.Func("matmul")
    panel[x, y] = B[x, y]
    prod[x, y] = hl.f32(0)
    prod[x, y] += A[k.x, y] * panel[x, k.x]
    out[x, y] = prod[x, y]
    return {"out": out, "prod": prod, "B_panel": panel, "k": k}


def expert_schedule(hl, funcs, vector=8):
    out, prod, k = funcs["out"], funcs["prod"], funcs["k"]
    x, y = out.args()[0], out.args()[1]
    px, py = prod.args()[0], prod.args()[1]
    xi, yi, yii = hl.Var("xi"), hl.Var("yi"), hl.Var("yii")
    out.tile(x, y, xi, yi, 3 * vector, 32).parallel(y)
    out.split(yi, yi, yii, 4).vectorize(xi, vector).unroll(xi).unroll(yii)
    prod.compute_at(out, yi).vectorize(px, vector).unroll(py)
    prod.update().reorder(px, py, k.x).vectorize(px, vector).unroll(px).unroll(py) \
        .unroll(k.x, 2)


def matmul(n: int = DEFAULT_SIZE):
    """n x n x n matmul as a halo Func with estimates (a PIPELINE for `halo tune`)."""
    import halo as hl
    A = hl.ImageParam(hl.Float(32), 2, "A")
    B = hl.ImageParam(hl.Float(32), 2, "B")
    A.set_estimates([(0, n), (0, n)])
    B.set_estimates([(0, n), (0, n)])
    out = build(hl, A, B)["out"]
    out.set_estimates([(0, n), (0, n)])
    return out


def make_inputs(n: int = DEFAULT_SIZE, seed=0):
    g = np.random.default_rng(seed)
    return (g.random((n, n), dtype=np.float32) - 0.5, g.random((n, n), dtype=np.float32) - 0.5)
