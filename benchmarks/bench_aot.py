"""The exported (AOT) blur called from C vs the JIT path, same schedule.

    python benchmarks/bench_aot.py [--size 2048x1536] [--repeats 30] [--target host]

For each schedule (default: everything inlined; tiled: Halide's classic
256x32 tiles, parallel tile rows, vectorized) the pipeline is

* JIT-compiled and called through `compile_to_callable` (numpy arrays, the
  per-call cost of ctypes included), and
* exported with `halo.aot.export` and called from a tiny C program (timing
  with clock_gettime around each call) linked to `libblur.a`.

Both use the same generated source and the same compiler flags (the export
compiles as -std=c99, the JIT as -std=gnu11). Each reports the median of
`--repeats` runs after 3 warm-up runs; the C program also checks its result
against the JIT's.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The same OpenMP settings for both paths (the C program inherits them). On
# a small shared machine libgomp's default spinning makes parallel timings
# erratic; export OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import halo as hl  # noqa: E402
from halo import aot  # noqa: E402
from halo.apps.blur import blur_numpy, build, make_input  # noqa: E402
from halo.runtime.compiler import find_compiler  # noqa: E402

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "blur.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int w = atoi(argv[1]), h = atoi(argv[2]), reps = atoi(argv[3]), i;
    FILE *f;
    uint16_t *in = malloc(sizeof(uint16_t) * w * h);
    uint16_t *out = malloc(sizeof(uint16_t) * (w - 2) * (h - 2));
    double *t = malloc(sizeof(double) * reps);
    int64_t is[2], os[2];
    DLTensor ti = {0}, to = {0};
    f = fopen(argv[4], "rb");
    if (!f || fread(in, sizeof(uint16_t), (size_t)w * h, f) != (size_t)w * h) return 2;
    fclose(f);
    is[0] = h; is[1] = w; os[0] = h - 2; os[1] = w - 2;
    ti.data = in; ti.device.device_type = kDLCPU; ti.ndim = 2;
    ti.dtype.code = kDLUInt; ti.dtype.bits = 16; ti.dtype.lanes = 1; ti.shape = is;
    to = ti; to.data = out; to.shape = os;
    for (i = 0; i < 3; i++)
        if (blur(&ti, &to)) { fprintf(stderr, "%s\n", blur_error_message()); return 1; }
    for (i = 0; i < reps; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        blur(&ti, &to);
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[i] = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    }
    qsort(t, (size_t)reps, sizeof(double), cmp);
    printf("%.9f\n", t[reps / 2]);
    f = fopen(argv[5], "wb");
    fwrite(out, sizeof(uint16_t), (size_t)(w - 2) * (h - 2), f);
    fclose(f);
    return 0;
}
"""


def make_blur(schedule: str):
    inp = hl.ImageParam(hl.UInt(16), 2, "input")
    blur_y, blur_x = build(hl, inp)
    x, y = hl.Var("x"), hl.Var("y")
    xo, yo, xi, yi = hl.Var("xo"), hl.Var("yo"), hl.Var("xi"), hl.Var("yi")
    if schedule == "tiled":
        blur_y.tile(x, y, xo, yo, xi, yi, 256, 32).vectorize(xi, 16).parallel(yo)
        blur_x.compute_at(blur_y, xo).vectorize(x, 16)
    elif schedule != "default":
        raise ValueError(schedule)
    return blur_y, inp


def median_time(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2048x1536")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--target", default="host")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate JIT and C this many times; report the best median of each")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    img = make_input(w, h)
    ref = blur_numpy(img)
    cc = list(find_compiler())
    print(f"blur {w}x{h} uint16, target {args.target}, median of {args.repeats} runs "
          f"(best of {args.rounds} rounds), cores: {len(os.sched_getaffinity(0))}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(f"  {'schedule':<10} {'JIT (Callable) ms':>18} {'AOT from C ms':>14} {'C / JIT':>8}")
    with tempfile.TemporaryDirectory(prefix="halo-bench-aot-") as tmp:
        tmp = Path(tmp)
        img.tofile(tmp / "in.raw")
        for schedule in ("default", "tiled"):
            f, inp = make_blur(schedule)
            p = hl.Pipeline(f)
            run = p.compile_to_callable([inp], args.target)
            out = np.zeros((h - 2, w - 2), np.uint16)
            run(img, out)
            assert np.array_equal(out, ref), "JIT result differs from numpy"
            d = tmp / schedule
            aot.export(p, d, args.target, name="blur")
            (d / "harness.c").write_text(HARNESS)
            exe = d / "harness"
            openmp = "-fopenmp" in (d / "blur.pc").read_text()
            subprocess.run([*cc, "-std=c99", "-O2", "-I", str(d), str(d / "harness.c"),
                            str(d / "libblur.a"), "-o", str(exe), "-lm",
                            *(["-fopenmp"] if openmp else [])], check=True)
            jit_ts, c_ts = [], []
            for _ in range(args.rounds):
                jit_ts.append(median_time(lambda: run(img, out), args.repeats))
                r = subprocess.run([str(exe), str(w), str(h), str(args.repeats),
                                    str(tmp / "in.raw"), str(d / "out.raw")],
                                   capture_output=True, text=True, check=True)
                c_ts.append(float(r.stdout))
            c_out = np.fromfile(d / "out.raw", np.uint16).reshape(h - 2, w - 2)
            assert np.array_equal(c_out, ref), "AOT result differs from numpy"
            jt, ct = min(jit_ts), min(c_ts)
            print(f"  {schedule:<10} {jt * 1e3:>18.3f} {ct * 1e3:>14.3f} {ct / jt:>7.2f}x")
    print("C / JIT below or near 1.00x: the exported kernel is as fast as the JIT path "
          "(the JIT time includes ctypes' per-call cost, a few microseconds).")


if __name__ == "__main__":
    main()
