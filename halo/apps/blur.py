"""A 3x3 box blur on a 16-bit image: the example behind `halo demo`.

The algorithm is Halide's classic two-stage blur. Sums are widened to 32
bits so that full-range 16-bit input cannot wrap; each stage divides by 3
and narrows back to 16 bits. The output covers the interior:
`out[x, y]` blurs `input[x .. x+2, y .. y+2]`, so an input of W x H gives
an output of (W-2) x (H-2).

    import halo as hl
    from halo.apps.blur import blur, blur_numpy
    f = blur()
    f.input.set(hl.Buffer(img))           # img: uint16 numpy array (H, W)
    out = f.realize([W - 2, H - 2])

`build(hl, input)` takes the module, so the very same code builds the
Halide pipeline (`import halide as hl`) for comparisons.
"""
from __future__ import annotations

import numpy as np

#: Estimated input size (width, height), used by set_estimates.
DEFAULT_SIZE = (2048, 1536)


def build(hl, input):
    """Return `(blur_y, blur_x)` for `input` (an ImageParam or Buffer of uint16)."""
    x, y = hl.Var("x"), hl.Var("y")
    blur_x, blur_y = hl.Func("blur_x"), hl.Func("blur_y")
    blur_x[x, y] = hl.cast(hl.UInt(16), (hl.cast(hl.UInt(32), input[x, y])
                                         + input[x + 1, y] + input[x + 2, y]) / 3)
    blur_y[x, y] = hl.cast(hl.UInt(16), (hl.cast(hl.UInt(32), blur_x[x, y])
                                         + blur_x[x, y + 1] + blur_x[x, y + 2]) / 3)
    return blur_y, blur_x


def schedule(hl, blur_y, blur_x, width=None, height=None):
    """The classic expert schedule: 256x32 tiles of the output over both
    cores, blur_x computed per tile (its 34 rows stay in L2), 16-lane
    vectors. Works with either module (halo or halide). An output smaller
    than one tile (`width` x `height`) gets guarded edge tiles instead of
    tiles shifted inwards, which would read before the image."""
    x, y, xi, yi = hl.Var("x"), hl.Var("y"), hl.Var("xi"), hl.Var("yi")
    small = (width is not None and width < 256) or (height is not None and height < 32)
    tail = hl.TailStrategy.GuardWithIf if small else hl.TailStrategy.Auto
    blur_y.tile(x, y, xi, yi, 256, 32, tail).vectorize(xi, 16).parallel(y)
    blur_x.compute_at(blur_y, x).vectorize(x, 16)
    return blur_y


def blur(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]):
    """The blur as a halo Func (a PIPELINE for the `halo` command).

    The input ImageParam is reachable as `f.input` (a plain attribute set
    here for convenience); its estimates are `width` x `height`.
    """
    import halo as hl
    input = hl.ImageParam(hl.UInt(16), 2, "input")
    input.set_estimates([(0, width), (0, height)])
    out, _ = build(hl, input)
    out.set_estimates([(0, width - 2), (0, height - 2)])
    out.input = input
    return out


def blur_numpy(img: np.ndarray) -> np.ndarray:
    """The same blur in numpy; `img` is (H, W) uint16, the result (H-2, W-2)."""
    a = img.astype(np.uint32)
    bx = ((a[:, :-2] + a[:, 1:-1] + a[:, 2:]) // 3).astype(np.uint16).astype(np.uint32)
    return ((bx[:-2] + bx[1:-1] + bx[2:]) // 3).astype(np.uint16)


def make_input(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1],
               seed: int = 0) -> np.ndarray:
    """A synthetic full-range uint16 image of shape (height, width)."""
    return np.random.default_rng(seed).integers(0, 65536, size=(height, width),
                                                dtype=np.uint16)
