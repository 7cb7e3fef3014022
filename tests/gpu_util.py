"""Helpers for the GPU tests: run a pipeline on OpenCL (PoCL's CPU device in
CI) and compare with the interpreter and with Halide's OpenCL target."""
from __future__ import annotations

import numpy as np
import pytest

import halo
from halo import interp

from conftest import assert_same, halide

OPENCL = "host-opencl"


def opencl_reason() -> str | None:
    """Why OpenCL cannot run here, or None when it can."""
    try:
        from halo.runtime.opencl import get_opencl
        get_opencl()
    except halo.HaloError as e:
        return str(e)
    return None


_reason = opencl_reason()
needs_opencl = pytest.mark.skipif(_reason is not None, reason=f"no OpenCL device: {_reason}")


def halide_opencl_target():
    """Halide's host target with OpenCL, with pyopencl's ICD loader (and the
    PoCL device halo configured) visible to Halide; None if unavailable."""
    if halide is None or _reason is not None:
        return None
    from halo.runtime.opencl import load_icd_globally
    if load_icd_globally() is None:
        return None
    return halide.get_host_target().with_feature(halide.TargetFeature.OpenCL)


def gpu_check(build, sizes, inputs=(), rtol=0.0, atol=0.0, halide_oracle=True):
    """halo on OpenCL vs the interpreter (and vs Halide on OpenCL)."""
    f = build(halo, *[halo.Buffer(a) for a in inputs])
    ours = f.realize(list(sizes), halo.Target(OPENCL))
    ours = [np.asarray(b) for b in (ours if isinstance(ours, tuple) else [ours])]
    ref = interp.realize(f, list(sizes))
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert_same(a, b, f"output {i}: halo OpenCL vs interpreter", rtol, atol)
    t = halide_opencl_target() if halide_oracle else None
    if t is not None:
        hf = build(halide, *[halide.Buffer(a) for a in inputs])
        theirs = hf.realize(list(sizes), t)
        theirs = list(theirs) if isinstance(theirs, (list, tuple)) else [theirs]
        for i, (a, b) in enumerate(zip(ours, theirs)):
            b.copy_to_host()
            assert_same(a, np.asarray(b), f"output {i}: halo OpenCL vs Halide OpenCL", rtol, atol)
    return f, ours
