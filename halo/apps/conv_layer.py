"""A convolution layer with ReLU, float32: N images of CI channels, CO filters 3x3.

    halo tune halo.apps.conv_layer:conv_layer --target host --budget 300

Layout (Halide's apps/conv_layer): input (c, x, y, n) = numpy (n, y, x, c);
filter (co, kx, ky, ci) = numpy (ci, ky, kx, co), so the output channel, the
vectorized loop, reads the filter densely; bias (co); output relu (co, x, y, n),
x/y over the valid W x H interior. `expert_schedule` is Halide's apps/conv_layer
CPU schedule (without its `in_()` staging of the filter).
"""
from __future__ import annotations

import numpy as np

DEFAULT_SHAPE = dict(N=4, CI=32, CO=64, W=64, H=64)


def build(hl, input, filter, bias, CI=DEFAULT_SHAPE["CI"]):
    c, x, y, n = hl.Var("c"), hl.Var("x"), hl.Var("y"), hl.Var("n")
    r = hl.RDom([hl.Range(0, CI), hl.Range(0, 3), hl.Range(0, 3)], "r")
    conv, relu = hl.Func("conv"), hl.Func("relu")
    conv[c, x, y, n] = bias[c]
    conv[c, x, y, n] += filter[c, r.y, r.z, r.x] * input[r.x, x + r.y, y + r.z, n]
    relu[c, x, y, n] = hl.max(hl.f32(0), conv[c, x, y, n])
    return {"out": relu, "conv": conv, "relu": relu, "r": r}


def expert_schedule(hl, funcs, vector=8):
    relu, conv, r = funcs["relu"], funcs["conv"], funcs["r"]
    c, x, y, n = relu.args()
    cc, cx, cy, cn = conv.args()
    co, ci, xo, xi = hl.Var("co"), hl.Var("ci"), hl.Var("xo"), hl.Var("xi")
    tile_w, tile_h = 4, 3 if vector >= 16 else 5
    relu.split(c, co, ci, vector * tile_w).split(x, xo, xi, tile_h) \
        .reorder(ci, xi, xo, y, n, co).vectorize(ci, vector).unroll(ci).unroll(xi) \
        .parallel(y).parallel(n).parallel(co)
    conv.compute_at(relu, xo).vectorize(cc, vector).unroll(cc).unroll(cx).unroll(cy) \
        .update().reorder(cc, cx, cy, r.x, r.y, r.z, cn).vectorize(cc, vector) \
        .unroll(cc).unroll(cx).unroll(cy).unroll(r.x, 2)


def conv_layer(N=DEFAULT_SHAPE["N"], CI=DEFAULT_SHAPE["CI"], CO=DEFAULT_SHAPE["CO"],
               W=DEFAULT_SHAPE["W"], H=DEFAULT_SHAPE["H"]):
    """The layer as a halo Func with estimates (a PIPELINE for `halo tune`)."""
    import halo as hl
    input = hl.ImageParam(hl.Float(32), 4, "input")
    filter = hl.ImageParam(hl.Float(32), 4, "filter")
    bias = hl.ImageParam(hl.Float(32), 1, "bias")
    input.set_estimates([(0, CI), (0, W + 2), (0, H + 2), (0, N)])
    filter.set_estimates([(0, CO), (0, 3), (0, 3), (0, CI)])
    bias.set_estimates([(0, CO)])
    out = build(hl, input, filter, bias, CI)["out"]
    out.set_estimates([(0, CO), (0, W), (0, H), (0, N)])
    return out


def make_inputs(N=DEFAULT_SHAPE["N"], CI=DEFAULT_SHAPE["CI"], CO=DEFAULT_SHAPE["CO"],
                W=DEFAULT_SHAPE["W"], H=DEFAULT_SHAPE["H"], seed=0):
    g = np.random.default_rng(seed)
    inp = g.random((N, H + 2, W + 2, CI), dtype=np.float32) - 0.5
    filt = (g.random((CI, 3, 3, CO), dtype=np.float32) - 0.5) / 8
    bias = g.random(CO, dtype=np.float32) - 0.5
    return inp, filt, bias


def conv_layer_numpy(inp, filt, bias):
    N, Hp, Wp, CI = inp.shape
    H, W = Hp - 2, Wp - 2
    acc = np.zeros((N, H, W, filt.shape[3]), dtype=np.float64)
    for ky in range(3):
        for kx in range(3):
            acc += np.tensordot(inp[:, ky:ky + H, kx:kx + W, :].astype(np.float64),
                                filt[:, ky, kx, :].astype(np.float64), axes=([3], [0]))
    return np.maximum(acc + bias, 0).astype(np.float32)
