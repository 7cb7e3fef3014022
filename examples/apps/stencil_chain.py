"""A chain of stencils: eight 3x3-tap (5x5 footprint) averaging stages on uint16.

Stage s: out[x, y] = (sum over dx, dy in {-2, 0, 2} of prev[x + dx, y + dy]) / 9,
summed in uint32 and narrowed back to uint16; the input is repeat_edge'd.
Integer pipeline: halo must equal Halide exactly.

Schedule: the output in 256x64 tiles (32x16 for tiny test images), tile rows in parallel, 16-wide
vectors; every stage is computed per tile (compute_at the tile column),
vectorized by 16 (overlapping tiles recompute the 2-pixel-per-stage apron).
"""
import sys

import numpy as np

if __package__ in (None, ""):
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

RTOL, ATOL = 0.0, 0.0
FULL, SMALL = (1536, 1024), (64, 48)
PARAMS = {"stages": 8}


def build(hl, input, stages=8, gpu=False):
    x, y = hl.Var("x"), hl.Var("y")
    prev = hl.BoundaryConditions.repeat_edge(input)
    clamped = prev
    funcs = []
    for s in range(stages):
        f = hl.Func(f"stage_{s}")
        e = None
        for dy in (-2, 0, 2):
            for dx in (-2, 0, 2):
                t = hl.u32(prev[x + dx, y + dy])
                e = t if e is None else e + t
        f[x, y] = hl.u16(e / 9)
        funcs.append(f)
        prev = f
    output = funcs[-1]
    if gpu:
        schedule_gpu(hl, [clamped] + funcs)
        return output

    xo, yo, xi, yi = hl.Var("xo"), hl.Var("yo"), hl.Var("xi"), hl.Var("yi")
    tw, th = (256, 64) if input.width() >= 256 and input.height() >= 64 else (32, 16)
    output.tile(x, y, xo, yo, xi, yi, tw, th).vectorize(xi, 16).parallel(yo)
    for f in funcs[:-1]:
        f.compute_at(output, xo).vectorize(x, 16)
    return output


def schedule_gpu(hl, chain):
    """Halide's GPU schedule: every stage compute_root, 60x12 tiles of 2x2
    pixels per thread; the region of the previous stage a block needs is
    staged in shared memory (a wrapper, prev.in_(), computed per block), and
    from there the 6x6 window of a thread's 2x2 pixels in registers (a
    wrapper of the wrapper, per thread)."""
    xi, yi, xii, yii = hl.Var("xi"), hl.Var("yi"), hl.Var("xii"), hl.Var("yii")
    for prev, s in zip(chain, chain[1:]):
        x, y = s.args()
        s.compute_root().gpu_tile(x, y, xi, yi, 30 * 2, 12) \
            .tile(xi, yi, xii, yii, 2, 2).unroll(xii).unroll(yii)
        px, py = prev.args()
        staged = prev.in_()
        staged.compute_at(s, x).tile(px, py, xi, yi, 2, 2).vectorize(xi).unroll(yi) \
            .gpu_threads(px, py)
        staged.in_().compute_at(s, xi).vectorize(px, 2).unroll(px).unroll(py)


def make_input(small=False):
    w, h = SMALL if small else FULL
    img = _common.synth_photo(w, h, seed=4)
    noise = np.random.default_rng(4).normal(0, 0.05, img.shape)
    return (np.clip((img + noise) * 65535, 0, 65535).astype(np.uint16),)


def output_size(input):
    return [input.shape[1], input.shape[0]]


def view_input(i):
    return _common.to_uint8(i, 0, 65535)


def view_output(o):
    return _common.to_uint8(o, 0, 65535)


def numpy_reference(input, stages=8):
    """The same chain in numpy: only the input is edge-replicated (as
    repeat_edge); each stage is a valid convolution of the padded image."""
    cur = np.pad(input, 2 * stages, mode="edge").astype(np.uint32)
    for _ in range(stages):
        h, w = cur.shape[0] - 4, cur.shape[1] - 4
        acc = np.zeros((h, w), np.uint32)
        for dy in (0, 2, 4):
            for dx in (0, 2, 4):
                acc += cur[dy:dy + h, dx:dx + w]
        cur = acc // 9
    return cur.astype(np.uint16)


def pipeline():
    """The app as a halo Func with inputs bound (for `halo bench`)."""
    return _common.pipeline_for(sys.modules[__name__])


def main(argv=None):
    return _common.main_for(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(main())
