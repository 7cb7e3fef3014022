"""The histogram of a uint8 image: 256 uint32 counts (a scattered update).

    halo tune halo.apps.histogram:histogram --target host --budget 300

`expert_schedule` is Halide's parallel histogram: strips of rows each make a
partial histogram in parallel (`rfactor`), then the partials are summed.
"""
from __future__ import annotations

import numpy as np

DEFAULT_SIZE = (4096, 4096)


def build(hl, input):
    """{'out': hist, 'hist': hist} for a uint8 `input`."""
    i = hl.Var("i")
    r = hl.RDom([hl.Range(0, input.width()), hl.Range(0, input.height())], "r")
    hist = hl.Func("hist")
    hist[i] = hl.cast(hl.UInt(32), 0)
    hist[hl.cast(hl.Int(32), input[r.x, r.y])] += hl.cast(hl.UInt(32), 1)
    return {"out": hist, "hist": hist, "r": r}


def expert_schedule(hl, funcs, vector=8, strips=16, height=DEFAULT_SIZE[1]):
    hist, r = funcs["hist"], funcs["r"]
    u, ryo, ryi = hl.Var("u"), hl.RVar("ryo"), hl.RVar("ryi")
    hist.update().split(r.y, ryo, ryi, (height + strips - 1) // strips)
    intm = hist.update().rfactor(ryo, u)
    intm.compute_root().update().parallel(u)
    intm.vectorize(intm.args()[0], vector)
    hist.vectorize(hist.args()[0], vector)


def histogram(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]):
    """The histogram as a halo Func with estimates (a PIPELINE for `halo tune`)."""
    import halo as hl
    input = hl.ImageParam(hl.UInt(8), 2, "input")
    input.set_estimates([(0, width), (0, height)])
    out = build(hl, input)["out"]
    out.set_estimates([(0, 256)])
    return out


def make_input(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1], seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def histogram_numpy(img: np.ndarray) -> np.ndarray:
    return np.bincount(img.ravel(), minlength=256).astype(np.uint32)
