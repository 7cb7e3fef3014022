"""A 5x5 separable gaussian blur on a float32 image, `repeat_edge` at the border.

    halo tune halo.apps.gaussian:gaussian --target host --budget 300

`build(hl, input)` takes the module, so the same code builds the Halide
pipeline (`import halide as hl`); `expert_schedule` is Halide's hand-written
CPU schedule for it (strips in parallel, a sliding window of gauss_x rows).
"""
from __future__ import annotations

import numpy as np

DEFAULT_SIZE = (4096, 4096)
WEIGHTS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def build(hl, input):
    """{'out': gauss_y, 'gauss_x': ..., 'gauss_y': ...} for a float32 `input`."""
    x, y = hl.Var("x"), hl.Var("y")
    clamped = hl.BoundaryConditions.repeat_edge(input)
    gx, gy = hl.Func("gauss_x"), hl.Func("gauss_y")
    w = [hl.f32(v) for v in WEIGHTS]
    gx[x, y] = sum((w[i] * clamped[x + i - 2, y] for i in range(1, 5)), w[0] * clamped[x - 2, y])
    gy[x, y] = sum((w[i] * gx[x, y + i - 2] for i in range(1, 5)), w[0] * gx[x, y - 2])
    return {"out": gy, "gauss_x": gx, "gauss_y": gy}


def expert_schedule(hl, funcs, vector=8):
    """Halide's expert schedule: 64-row strips in parallel, gauss_x stored per strip
    and computed per row (sliding window)."""
    gx, gy = funcs["gauss_x"], funcs["gauss_y"]
    x, y = gy.args()[0], gy.args()[1]
    yo, yi = hl.Var("yo"), hl.Var("yi")
    gy.split(y, yo, yi, 64).parallel(yo).vectorize(x, vector)
    gx.store_at(gy, yo).compute_at(gy, yi).vectorize(gx.args()[0], vector)


def gaussian(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]):
    """The gaussian as a halo Func with estimates (a PIPELINE for `halo tune`)."""
    import halo as hl
    input = hl.ImageParam(hl.Float(32), 2, "input")
    input.set_estimates([(0, width), (0, height)])
    out = build(hl, input)["out"]
    out.set_estimates([(0, width), (0, height)])
    return out


def make_input(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1], seed=0):
    return np.random.default_rng(seed).random((height, width), dtype=np.float32)


def gaussian_numpy(img: np.ndarray) -> np.ndarray:
    w = np.array(WEIGHTS, dtype=np.float32)
    p = np.pad(img, 2, mode="edge")
    gx = sum(w[k] * p[:, k:k + img.shape[1]] for k in range(5))
    return sum(w[k] * gx[k:k + img.shape[0], :] for k in range(5)).astype(np.float32)
