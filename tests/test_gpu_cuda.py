"""CUDA: every GPU-scheduled test pipeline's CUDA C++ compiles with nvcc (and
NVRTC when its library is installed); it runs where a CUDA device exists."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

import halo
from halo import interp
from halo.codegen.cuda import generate_cuda
from halo.runtime.device import launches_of
from test_gpu import CASES

NVCC = shutil.which("nvcc") or ("/usr/local/bin/nvcc" if os.path.exists("/usr/local/bin/nvcc")
                                else None)


def _cuda_source(name):
    build, sizes, inputs, _, _ = CASES[name]
    f = build(halo, *[halo.Buffer(a) for a in inputs])
    return generate_cuda([launch.kernel for launch in launches_of(halo.Pipeline(f)._lower())])


def _cuda_device_reason():
    try:
        from halo.runtime.cuda import get_cuda
        get_cuda()
    except halo.HaloError as e:
        return str(e)
    return None


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
def test_every_gpu_pipeline_compiles_with_nvcc(tmp_path):
    # One nvcc call for all (each costs seconds): every pipeline's source in its
    # own namespace, kernels renamed apart (extern "C" names are global).
    parts = ["#include <stdint.h>"]
    for name in sorted(CASES):
        src = _cuda_source(name).replace("halo_k", f"{name}_k")
        parts += [f"namespace {name} {{", src, "}"]
    cu = tmp_path / "all_pipelines.cu"
    cu.write_text("\n".join(parts))
    r = subprocess.run([NVCC, "-arch=sm_90", "-c", str(cu), "-o", str(tmp_path / "all.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_gpu_pipeline_compiles_with_nvrtc():
    from halo.runtime.cuda import compile_to_ptx
    try:
        compile_to_ptx('extern "C" __global__ void k() {}')
    except halo.HaloError as e:
        pytest.skip(f"NVRTC is not available: {e}")
    for name in sorted(CASES):
        assert b".entry" in compile_to_ptx(_cuda_source(name)), name


def test_show_prints_cuda_source():
    src = _cuda_source("blur_shared")
    assert 'extern "C" __global__ void' in src and "__shared__" in src
    assert "__syncthreads()" in src and "blockIdx.x" in src and "threadIdx.y" in src


_no_device = _cuda_device_reason()


@pytest.mark.skipif(_no_device is not None, reason=f"no CUDA device: {_no_device}")
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_matches_interpreter(name):
    build, sizes, inputs, tol, _ = CASES[name]
    f = build(halo, *[halo.Buffer(a) for a in inputs])
    ours = f.realize(list(sizes), halo.Target("host-cuda"))
    ours = ours if isinstance(ours, tuple) else (ours,)
    for a, b in zip(ours, interp.realize(f, list(sizes))):
        np.testing.assert_allclose(np.asarray(a), b, rtol=tol, atol=tol)


def test_missing_cuda_driver_is_a_clear_error():
    if _no_device is None:
        pytest.skip("a CUDA device exists here")
    assert "CUDA" in _no_device or "cuda" in _no_device
    assert "pip install" in _no_device or "driver" in _no_device
