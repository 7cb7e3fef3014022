"""The apps gallery's GPU schedules (examples/apps/*.py, `build(..., gpu=True)`,
after Halide's apps/*_generator.cpp GPU branches) at the small test size:

* on OpenCL (PoCL's CPU device in CI) each app equals the interpreter under
  the app's own rule (_common.compare: exact for integer pipelines, the app's
  documented tolerance for float ones), and its output is computed by a GPU
  kernel (not silently on the host);
* every schedule's CUDA C++ compiles, with nvcc for sm_90 and with NVRTC
  (each skipped where that compiler is not installed).

The CPU schedules are tested against Halide in test_apps.py; run the GPU
ones against Halide's OpenCL with `python examples/apps/run_all.py --small
--target host-opencl`.
"""
from __future__ import annotations

import functools
import subprocess

import numpy as np
import pytest

import halo
from halo import interp
from halo.codegen.cuda import generate_cuda

from gpu_util import OPENCL, needs_opencl
from test_apps import APPS, _load
from test_gpu_cuda import NVCC


@functools.lru_cache(maxsize=None)
def _gpu_app(name):
    """(app module, inputs, sizes, Pipeline with the app's GPU schedule, that
    pipeline compiled for OpenCL): lowered once, for every test here."""
    app, _common = _load(name), _load("_common")
    inputs = app.make_input(small=True)
    params = _common.params_for(app, small=True)
    f = app.build(halo, *[halo.Buffer(a) for a in inputs], gpu=True, **params)
    p = halo.Pipeline(f)
    return app, inputs, app.output_size(*inputs), p, p.compile_jit(halo.Target(OPENCL))


def _cuda_source(name):
    return generate_cuda(_gpu_app(name)[4].kernels)


@needs_opencl
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", APPS)
def test_gpu_schedule_on_opencl_matches_interpreter(name):
    app, inputs, sizes, p, compiled = _gpu_app(name)
    _common = _load("_common")
    out = p.outputs()[0]
    assert out.name() in {k.func for k in compiled.kernels}, \
        f"{name}: the output {out.name()} is not computed by a GPU kernel"
    ours = _common._outs_on_host(p.realize(list(sizes), halo.Target(OPENCL)))
    ref = [np.asarray(r) for r in interp.realize(out, list(sizes))]
    ok, msg = _common.compare(ours, ref, app.RTOL, app.ATOL, getattr(app, "OUTLIERS", 0.0))
    assert ok, f"{name}: halo OpenCL vs interpreter: {msg}"


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
def test_every_gpu_schedule_compiles_with_nvcc(tmp_path):
    # one nvcc call for all apps (each costs seconds): every app's kernels in
    # its own namespace, renamed apart (extern "C" names are global)
    parts = ["#include <stdint.h>"]
    for name in APPS:
        parts += [f"namespace {name} {{", _cuda_source(name).replace("halo_k", f"{name}_k"),
                  "}"]
    cu = tmp_path / "apps.cu"
    cu.write_text("\n".join(parts))
    r = subprocess.run([NVCC, "-arch=sm_90", "-c", str(cu), "-o", str(tmp_path / "apps.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]


def test_every_gpu_schedule_compiles_with_nvrtc():
    from halo.runtime.cuda import compile_to_ptx
    try:
        compile_to_ptx('extern "C" __global__ void k() {}')
    except halo.HaloError as e:
        pytest.skip(f"NVRTC is not available: {e}")
    for name in APPS:
        src = _cuda_source(name)
        ptx = compile_to_ptx(src)
        assert ptx.count(b".entry") == src.count("__global__"), name
