"""Differential fuzzing in CI: random pipelines x random legal schedules
(halo/testing/fuzz.py) run through halo's C backend, its interpreter and
Halide, which must agree bit-exactly (floats: exactly where the generator
proves the value exact, else within a tolerance).

Two parts, both deterministic so that CI is reproducible:
* a fixed range of cases of one seed, run in two worker processes (a case
  that kills its process, e.g. a segfault in generated code, is a crash);
* a hypothesis-driven part that draws (seed, index) pairs.
Longer runs: `python -m halo.testing.fuzz --cases 10000 --seed S --jobs 2`.
`HALO_FUZZ_CASES` scales the fixed part (default 192); a further fixed
range gets GPU schedules and runs on OpenCL (PoCL in CI) and Halide's
OpenCL target (`HALO_FUZZ_GPU_CASES`, default 32).

A failure message gives the command that prints the case as a standalone
program; minimized failures are kept in tests/test_fuzz_regressions.py.
"""
import os

from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import halide
from gpu_util import needs_opencl
from halo.testing import fuzz

SEED = 2024
CASES = int(os.environ.get("HALO_FUZZ_CASES", "192"))
GPU_CASES = int(os.environ.get("HALO_FUZZ_GPU_CASES", "32"))
USE_HALIDE = halide is not None


def _failures(results):
    return [r for r in results if r["status"] in ("mismatch", "crash")]


def _report(bad):
    return "\n".join(f"{r['status']} at seed={r['seed']} index={r['index']}: {r['detail'][:500]}\n"
                     f"  reproduce: python -m halo.testing.fuzz --seed {r['seed']} "
                     f"--show {r['index']} --minimize" for r in bad)


def test_fuzz_fixed_seed():
    results = fuzz.run_cases(SEED, 0, CASES, jobs=2, use_halide=USE_HALIDE)
    assert len(results) == CASES
    bad = _failures(results)
    assert not bad, _report(bad)
    # the generator must mostly produce programs that run: a generator that
    # only produced refused programs would make this test pass vacuously
    ran = sum(r["status"] == "ok" for r in results)
    assert ran >= 0.8 * CASES, f"only {ran} of {CASES} cases ran everywhere"


@needs_opencl
def test_fuzz_gpu_schedules_on_opencl():
    results = fuzz.run_cases(SEED, 0, GPU_CASES, jobs=2, use_halide=USE_HALIDE, gpu=True)
    assert len(results) == GPU_CASES
    bad = _failures(results)
    assert not bad, _report(bad) + "\n  (add --gpu to the command)"
    # GPU schedules are refused more often (shared memory needs constant sizes)
    ran = sum(r["status"] == "ok" for r in results)
    assert ran >= 0.6 * GPU_CASES, f"only {ran} of {GPU_CASES} GPU cases ran everywhere"
    # both spellings of GPU tiles were drawn: gpu_tile, and split + gpu_blocks + gpu_threads
    text = [fuzz.generate(SEED, i, gpu=True).source() for i in range(GPU_CASES)]
    assert any("gpu_tile(" in t for t in text) and any(".gpu_blocks(" in t for t in text)


def fuzz_cases():
    """A hypothesis strategy for generated (seed, index) fuzz cases."""
    return st.tuples(st.integers(1, 2**20), st.integers(0, 2**20))


@settings(max_examples=16, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_cases())
def test_fuzz_hypothesis(case):
    seed, index = case
    out, _ = fuzz.run_case(seed, index, use_halide=USE_HALIDE)
    out = dict(out, seed=seed, index=index)
    assert out["status"] not in ("mismatch", "crash"), _report([out]) + "\n" + out.get("tb", "")


def test_fuzzer_detects_a_wrong_answer(monkeypatch):
    """The comparison is live: a C backend that is off by one is caught."""
    import halo
    real = halo.Func.realize

    def off_by_one(self, *a, **k):
        r = real(self, *a, **k)
        arrs = r if isinstance(r, (list, tuple)) else [r]
        import numpy as np
        for b in arrs:
            v = np.asarray(b)
            v.flat[0] = v.flat[0] + 1 if v.dtype.kind != "b" else not v.flat[0]
        return r
    monkeypatch.setattr(halo.Func, "realize", off_by_one)
    out, _ = fuzz.run_case(SEED, 1, use_halide=False)
    assert out["status"] == "mismatch", out
    assert "C backend vs interpreter" in out["detail"]


def test_fuzz_case_is_a_standalone_program():
    """`--show` prints a program that runs by itself and reports its outcome."""
    import subprocess
    import sys
    prog = fuzz.generate(SEED, 3)
    r = subprocess.run([sys.executable, "-c", prog.standalone()], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "'status': 'ok'" in r.stdout
