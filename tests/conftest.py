"""Shared test helpers: run one program through halo's C backend, halo's
reference interpreter and Halide itself, and compare.

A test program is a function `build(hl, *inputs)` that takes the module
(`halo` or `halide`) and input `Buffer`s of that module, and returns the
output Func. Because halo mirrors Halide's Python API, the very same code
builds both pipelines.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import halo
from halo import interp

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import halide  # the oracle
except ImportError:  # pragma: no cover - halide is a test dependency
    halide = None

needs_halide = pytest.mark.skipif(halide is None, reason="halide (the oracle) is not installed")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Each test session compiles into its own cache unless one is given."""
    if "HALO_CACHE_DIR" not in os.environ:
        os.environ["HALO_CACHE_DIR"] = str(tmp_path_factory.mktemp("halo-cache"))
    yield


def _as_list(r):
    if isinstance(r, (tuple, list)):
        return [np.asarray(b) for b in r]
    return [np.asarray(r)]


def realize_halo(build, sizes, inputs=()):
    f = build(halo, *[halo.Buffer(a) for a in inputs])
    return _as_list(f.realize(list(sizes))), f


def realize_interp(f, sizes):
    return interp.realize(f, list(sizes))


def realize_halide(build, sizes, inputs=()):
    f = build(halide, *[halide.Buffer(a) for a in inputs])
    return [np.array(b) for b in _as_list(f.realize(list(sizes)))]


def assert_same(a, b, what, rtol=0.0, atol=0.0):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    if a.dtype.kind == "f" and (rtol or atol):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


def check(build, sizes, inputs=(), rtol=0.0, atol=0.0, halide_oracle=True):
    """Compare halo (C) with the interpreter and, when present, Halide."""
    ours, f = realize_halo(build, sizes, inputs)
    ref = realize_interp(f, sizes)
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert_same(a, b, f"output {i}: halo C backend vs interpreter", rtol, atol)
    if halide_oracle and halide is not None:
        theirs = realize_halide(build, sizes, inputs)
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"output {i}: halo vs Halide", rtol, atol)
    return ours
