"""Constant sizes for GPU block-level (shared) storage that simplification
alone does not find: the largest size over a constant grid of blocks
(halo.lower.block_bounds), and regions that the host's constant lets bound
(a data-dependent index clamped to a constant range). Checked against
brute force, the interpreter and Halide's OpenCL target."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import halo
from halo.ir import expr as E
from halo.ir.simplify import simplify
from halo.ir.types import i32, i64
from halo.lower.block_bounds import largest_over_blocks

from gpu_util import OPENCL, gpu_check, needs_opencl

RNG = np.random.RandomState(11)
IMG_U16 = RNG.randint(0, 4000, (30, 90)).astype(np.uint16)
IMG_U8 = RNG.randint(0, 256, (24, 30)).astype(np.uint8)

_c = lambda v, t=i32: E.Const(t, v)    # noqa: E731
_bx, _by = E.Variable(i32, "bx"), E.Variable(i32, "by")


def _half_res_columns(b):
    """Columns of a half-resolution producer that a 12-wide tile reads: the
    tile starts at min(12 b, 29) (shifted inwards), so the count depends on
    the start's parity."""
    start = E.Min(E.Mul(b, _c(12)), _c(29))
    return E.Add(E.Sub(E.Div(E.Add(start, _c(11)), _c(2)), E.Div(start, _c(2))), _c(2))


def test_largest_size_over_the_grid_equals_brute_force():
    cols = _half_res_columns(_bx)
    rows = E.Add(E.Mod(_by, _c(3)), _c(4))
    size = E.Mul(E.Cast(i64, cols), E.Cast(i64, rows))
    assert not isinstance(simplify(size), E.Const)       # what the fallback is for
    blocks = {"bx": (0, 4), "by": (0, 5)}
    from halo.interp.evaluate import ExprEvaluator
    brute = max(int(ExprEvaluator(None).eval(size, {"bx": np.int32(a), "by": np.int32(b)}))
                for a, b in itertools.product(range(4), range(5)))
    assert largest_over_blocks(size, blocks) == brute == 8 * 6


def test_largest_size_needs_block_variables_and_a_small_grid():
    cols = _half_res_columns(_bx)
    # a variable that is not a block loop's: no constant bound
    assert largest_over_blocks(E.Add(cols, E.Variable(i32, "n")), {"bx": (0, 4)}) is None
    assert largest_over_blocks(cols, {}) is None
    # a grid too large to enumerate
    assert largest_over_blocks(E.Add(_bx, _by), {"bx": (0, 1 << 11), "by": (0, 1 << 11)}) is None
    # factors that may be negative are not bounded one by one
    neg = E.Mul(E.Sub(_bx, _c(2)), E.Sub(_by, _c(2)))
    assert largest_over_blocks(neg, {"bx": (0, 4), "by": (0, 4)}) is None


def half_res_shared(hl, inp):
    """A full-resolution consumer reads a half-resolution producer computed
    per block in shared memory; tiles shifted inwards start at odd and even
    columns, so the producer's region differs between blocks."""
    x, y, xi, yi = (hl.Var(n) for n in "x y xi yi".split())
    half, out = hl.Func("half"), hl.Func("out")
    half[x, y] = hl.cast(hl.Int(32), inp[2 * x, y]) + inp[2 * x + 1, y]
    out[x, y] = half[x / 2, y] + half[x / 2 + 1, y]
    out.gpu_tile(x, y, xi, yi, 12, 8).bound(x, 0, 41).bound(y, 0, 24)
    half.compute_at(out, x).gpu_threads(x, y)
    return out


def clamped_index_shared(hl, inp):
    """A per-block table over z, where the z range comes from a clamped,
    data-dependent index two compute_root stages away: constant only once
    the host's lets are folded."""
    x, y, z, xi, yi = (hl.Var(n) for n in "x y z xi yi".split())
    lut, mid, mid2, out = hl.Func("lut"), hl.Func("mid"), hl.Func("mid2"), hl.Func("out")
    lut[x, y, z] = x * 3 + y * 5 + z * 7
    mid[x, y, z] = lut[x, y, z] + lut[x, y, z + 1]
    mid2[x, y, z] = mid[x, y, z] * 2
    out[x, y] = mid2[x, y, hl.clamp(hl.cast(hl.Int(32), inp[x, y]) / 64, 0, 3)]
    out.gpu_tile(x, y, xi, yi, 8, 8)
    mid2.compute_root().gpu_tile(x, y, xi, yi, 8, 8)
    mid.compute_root().reorder(z, x, y).gpu_tile(x, y, xi, yi, 8, 8)
    lut.compute_at(mid, x).gpu_threads(x, y)
    return out


@needs_opencl
def test_shared_memory_sized_by_the_largest_block():
    gpu_check(half_res_shared, [41, 24], [IMG_U16])


@needs_opencl
def test_shared_memory_sized_by_the_hosts_constant_lets():
    gpu_check(clamped_index_shared, [30, 24], [IMG_U8])


def test_a_grid_that_is_not_constant_still_needs_a_bound():
    x, y, xi, yi = (halo.Var(n) for n in "x y xi yi".split())
    inp = halo.Buffer(IMG_U16)
    half, out = halo.Func("half"), halo.Func("out")
    half[x, y] = halo.cast(halo.Int(32), inp[2 * x, y]) + inp[2 * x + 1, y]
    out[x, y] = half[x / 2, y] + half[x / 2 + 1, y]
    out.gpu_tile(x, y, xi, yi, 12, 8)                     # no bound(): any output size
    half.compute_at(out, x).gpu_threads(x, y)
    with pytest.raises(halo.CompileError, match=r"Func half is computed at a GPU block loop "
                                                r"of out.*needs a constant size"):
        out.compile_jit(halo.Target(OPENCL))
