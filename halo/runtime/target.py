"""Targets, named like Halide's: `host`, `x86-64-linux-avx2`, `c`, ...

A Target is a value: an architecture/OS string plus features. For the C
backend it decides the compiler flags.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from ..errors import CompileError

_KNOWN = {"host", "c", "x86-64-linux", "x86-64-linux-avx2", "x86-64-linux-avx512",
          "host-opencl", "host-cuda"}
_FEATURES = {"avx", "avx2", "avx512", "sse41", "fma", "f16c", "opencl", "cuda", "debug",
             "no_asserts", "no_bounds_query", "openmp", "c"}


@dataclass(frozen=True)
class Target:
    """`Target("host")`, `Target("x86-64-linux-avx2")`, `Target("c")`."""
    spec: str = "host"

    def __init__(self, spec: str = "host"):
        if not isinstance(spec, str):
            raise CompileError(f"Target needs a string, got {spec!r}")
        spec = spec.strip() or "host"
        if not Target.validate_target_string(spec):
            raise CompileError(f"Unknown target {spec!r}; known targets: "
                               f"{', '.join(sorted(_KNOWN))} (plus -feature suffixes)")
        object.__setattr__(self, "spec", spec)

    @staticmethod
    def validate_target_string(spec: str) -> bool:
        if spec in _KNOWN:
            return True
        parts = spec.split("-")
        if parts[0] == "host":
            return all(p in _FEATURES for p in parts[1:])
        if spec.startswith("x86-64-linux"):
            return all(p in _FEATURES for p in parts[3:])
        return False

    def features(self) -> set:
        parts = self.spec.split("-")
        if self.spec.startswith("x86-64-linux"):
            return set(parts[3:])
        return set(parts[1:]) if parts[0] == "host" else set()

    def has_feature(self, f: str) -> bool:
        return f.lower() in self.features()

    def has_gpu_feature(self) -> bool:
        return bool(self.features() & {"opencl", "cuda"})

    def with_feature(self, f: str) -> "Target":
        return Target(f"{self.spec}-{f.lower()}")

    def to_string(self) -> str:
        return self.spec

    def __str__(self):
        return self.spec

    def cflags(self) -> list:
        """Compiler flags for the C backend."""
        if self.spec == "c":
            return ["-O2"]
        # -funroll-loops: LLVM (Halide's backend) unrolls small loops at -O3,
        # gcc only with this flag; scalar loops such as a histogram's scatter
        # ran 1.4x slower without it (benchmarks/bench_schedules.py: serial
        # 5.02 -> 3.60 ms, rfactor 3.03 -> 1.98 ms; other rows unchanged or
        # faster, compile times unchanged)
        flags = ["-O3", "-fno-math-errno", "-funroll-loops"]
        f = self.features()
        if self.spec.startswith("host"):
            # generic scheduling: gcc 12 tunes an unknown newer CPU (Zen 5) as
            # its newest known one (Zen 3), whose cost model folds every load
            # into its FMA; a matmul tile then reloads each B vector once per
            # row instead of keeping it in a register (1.3-1.6x slower)
            flags += ["-march=native", "-mtune=generic"]
        elif "avx512" in f:
            flags += ["-march=x86-64-v4"]
        elif "avx2" in f:
            flags += ["-march=x86-64-v3"]
        if self.spec.startswith("host") or "avx512" in f:
            # natural_vector_size() assumes 512-bit vectors, as Halide does on
            # AVX-512 hosts; gcc's tuning for some of them prefers 256 bits
            # (a no-op where the target has no 512-bit vectors)
            flags.append("-mprefer-vector-width=512")
        return flags

    def vector_bytes(self) -> int:
        """Bytes in one SIMD register of the code cflags() builds: the C
        backend cuts its explicit vector code into pieces of this size (gcc
        turns a wider vector comparison into one scalar per lane)."""
        f = self.features()
        if self.spec.startswith("host"):
            return _host_vector_bytes()
        if "avx512" in f:
            return 64
        if "avx2" in f:
            return 32
        return 16

    def natural_vector_size(self, t) -> int:
        width = 64 if ("avx512" in self.features() or self.spec.startswith("host")) else 32
        return max(1, width // t.bytes())


@functools.lru_cache(maxsize=None)
def _host_vector_bytes() -> int:
    """What the C compiler enables with -march=native (16 if it cannot say)."""
    import subprocess
    from ..errors import CompilerToolError
    from .compiler import find_compiler
    try:
        out = subprocess.run([*find_compiler(), "-march=native", "-dM", "-E", "-x", "c",
                              os.devnull], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError, CompilerToolError):
        return 16
    if "__AVX512BW__" in out:
        return 64
    if "__AVX2__" in out:
        return 32
    return 16


def get_host_target() -> Target:
    return Target("host")


def get_jit_target_from_environment() -> Target:
    return Target(os.environ.get("HL_JIT_TARGET", "host"))


def get_target_from_environment() -> Target:
    return Target(os.environ.get("HL_TARGET", "host"))
