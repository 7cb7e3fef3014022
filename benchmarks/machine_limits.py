#!/usr/bin/env python3
"""Measure this machine's limits: STREAM-like triad bandwidth and peak fp32 FMA rate.

    python benchmarks/machine_limits.py            # prints both, ~3 s
    python benchmarks/machine_limits.py --json     # one JSON line

A small C program is compiled with `gcc -O3 -march=native -fopenmp` and run on
all usable cores (OMP_NUM_THREADS = usable cores unless already set):

* triad `a[i] = b[i] + s * c[i]` on float32 and float64 arrays of 256 MiB each
  (far beyond the last-level cache), arrays first-touched in parallel by the
  same static schedule. Bandwidth counts 3 arrays x bytes per element per pass,
  as STREAM does (2 reads + 1 write; the write-allocate read is not counted).
  The best of the timed passes is reported (STREAM's convention) and the median.
* peak fp32 FMA: each thread runs `acc[k] = acc[k] * m + a` on NACC independent
  vector accumulators (vector extensions as wide as the target's widest
  vectors: 512 bits with AVX-512, 256 with AVX2), 2 flops per lane per FMA.
  Best of several runs.

`bench_schedules.py` imports `measure()` and uses the results for its
"% of machine limit" column.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

C_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

static double now(void) { return omp_get_wtime(); }

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define TRIAD(T, NAME)                                                          \
static void triad_##NAME(size_t n, int reps, double *best, double *med) {      \
    T *a = aligned_alloc(64, n * sizeof(T));                                    \
    T *b = aligned_alloc(64, n * sizeof(T));                                    \
    T *c = aligned_alloc(64, n * sizeof(T));                                    \
    if (!a || !b || !c) { fprintf(stderr, "out of memory\n"); exit(1); }       \
    _Pragma("omp parallel for schedule(static)")                                \
    for (size_t i = 0; i < n; i++) { a[i] = 0; b[i] = (T)1; c[i] = (T)2; }     \
    const T s = (T)3;                                                           \
    double t[64];                                                               \
    for (int r = 0; r < reps + 1; r++) {                                        \
        double t0 = now();                                                      \
        _Pragma("omp parallel for schedule(static)")                            \
        for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];                  \
        double dt = now() - t0;                                                 \
        if (r > 0) t[r - 1] = dt;                                               \
        b[r % n] += (T)1; /* keep passes distinct */                            \
    }                                                                           \
    if (a[n / 2] != (T)7) { fprintf(stderr, "triad check failed\n"); exit(1); } \
    qsort(t, reps, sizeof(double), cmp_d);                                      \
    double bytes = 3.0 * n * sizeof(T);                                         \
    *best = bytes / t[0] / 1e9; *med = bytes / t[reps / 2] / 1e9;               \
    free(a); free(b); free(c);                                                  \
}
TRIAD(float, f32)
TRIAD(double, f64)

#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
typedef float vf __attribute__((vector_size(VBYTES)));
#define LANES (VBYTES / 4)
#define NACC 16

static double fma_peak(long iters, int reps) {
    double best = 1e30;
    volatile float sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        #pragma omp parallel
        {
            float seed = 1.0f + omp_get_thread_num() * 1e-7f;
            vf m, a, z;
            for (int l = 0; l < LANES; l++) { m[l] = 0.9999999f; a[l] = 1e-7f * seed; z[l] = seed + l; }
            /* NACC independent FMA chains in named registers (an array would be spilled);
               without -ffast-math the chains cannot be folded away. */
            vf c0 = z, c1 = z + 1, c2 = z + 2, c3 = z + 3, c4 = z + 4, c5 = z + 5, c6 = z + 6,
               c7 = z + 7, c8 = z + 8, c9 = z + 9, c10 = z + 10, c11 = z + 11, c12 = z + 12,
               c13 = z + 13, c14 = z + 14, c15 = z + 15;
            for (long i = 0; i < iters; i++) {
                c0 = c0 * m + a; c1 = c1 * m + a; c2 = c2 * m + a; c3 = c3 * m + a;
                c4 = c4 * m + a; c5 = c5 * m + a; c6 = c6 * m + a; c7 = c7 * m + a;
                c8 = c8 * m + a; c9 = c9 * m + a; c10 = c10 * m + a; c11 = c11 * m + a;
                c12 = c12 * m + a; c13 = c13 * m + a; c14 = c14 * m + a; c15 = c15 * m + a;
            }
            vf t = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))
                 + ((c8 + c9) + (c10 + c11)) + ((c12 + c13) + (c14 + c15));
            float s = 0;
            for (int l = 0; l < LANES; l++) s += t[l];
            #pragma omp atomic
            sink += s;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    int threads = omp_get_max_threads();
    return 2.0 * NACC * LANES * (double)iters * threads / best / 1e9;
}

int main(int argc, char **argv) {
    size_t bytes = argc > 1 ? strtoull(argv[1], 0, 10) : (256ull << 20);
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    long iters = argc > 3 ? atol(argv[3]) : 20000000L;
    if (reps > 63) reps = 63;
    double b32, m32, b64, m64;
    triad_f32(bytes / 4, reps, &b32, &m32);
    triad_f64(bytes / 8, reps, &b64, &m64);
    double peak = fma_peak(iters, 5);
    printf("{\"threads\": %d, \"vector_bits\": %d, \"triad_f32_best\": %.3f, "
           "\"triad_f32_median\": %.3f, \"triad_f64_best\": %.3f, \"triad_f64_median\": %.3f, "
           "\"fma_f32_gflops\": %.3f, \"array_mib\": %zu}\n",
           omp_get_max_threads(), VBYTES * 8, b32, m32, b64, m64, peak, bytes >> 20);
    return 0;
}
"""


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def measure(array_mib: int = 256, reps: int = 10, fma_iters: int = 20_000_000,
            cc: str | None = None) -> dict:
    """Compile and run the probe; returns a dict (GB/s, GFLOP/s, threads, ...)."""
    cc = cc or os.environ.get("CC") or shutil.which("gcc") or "cc"
    with tempfile.TemporaryDirectory(prefix="halo-limits-") as d:
        src, exe = os.path.join(d, "limits.c"), os.path.join(d, "limits")
        with open(src, "w") as f:
            f.write(C_SOURCE)
        cmd = [cc, "-O3", "-march=native", "-fopenmp", "-std=gnu11", src, "-o", exe]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(usable_cores()))
        env.setdefault("OMP_PROC_BIND", "spread")
        r = subprocess.run([exe, str(array_mib << 20), str(reps), str(fma_iters)],
                           capture_output=True, text=True, env=env, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"limits probe failed:\n{r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["cc"] = " ".join(cmd[:5])
    return out


def describe(m: dict) -> str:
    return (f"triad {m['triad_f32_best']:.1f} GB/s f32 / {m['triad_f64_best']:.1f} GB/s f64 "
            f"(best; median {m['triad_f32_median']:.1f} / {m['triad_f64_median']:.1f}), "
            f"fp32 FMA peak {m['fma_f32_gflops']:.0f} GFLOP/s "
            f"({m['threads']} threads, {m['vector_bits']}-bit vectors)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--array-mib", type=int, default=256, help="MiB per triad array (256)")
    ap.add_argument("--reps", type=int, default=10, help="timed triad passes (10)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args(argv)
    m = measure(args.array_mib, args.reps)
    if args.json:
        print(json.dumps(m))
        return
    print(f"compiled with: {m['cc']}; {m['threads']} OpenMP threads")
    print(f"STREAM-like triad a[i] = b[i] + s*c[i], 3 x {m['array_mib']} MiB arrays "
          f"(3 arrays counted per pass):")
    print(f"  float32: best {m['triad_f32_best']:6.1f} GB/s   median "
          f"{m['triad_f32_median']:6.1f} GB/s")
    print(f"  float64: best {m['triad_f64_best']:6.1f} GB/s   median "
          f"{m['triad_f64_median']:6.1f} GB/s")
    print(f"peak fp32 FMA ({m['vector_bits']}-bit vectors, 16 independent accumulators per "
          f"thread): {m['fma_f32_gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    sys.exit(main())
