#!/usr/bin/env python3
"""Core benchmarks: halo vs Halide vs numpy, in one process.

    python benchmarks/bench_core.py            # everything, about 30 s
    python benchmarks/bench_core.py --help

(a) per-call overhead of a tiny pipeline (a 16x16 uint8 brighten);
(b) compile time: cold (fresh HALO_CACHE_DIR) vs warm cache (a new process,
    same source) vs Halide's JIT compile;
(c) a realistic 3x3 blur on a uint16 image (halo/apps/blur.py), with GB/s.

halo uses its DEFAULT schedule everywhere (only compute_root/compute_inline
exist so far). Halide is timed with the same algorithm and its default
schedule and, separately labelled, with `blur_x.compute_root()`.
Every time is the median over --repeats measurements taken after warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

import halo
from halo.apps.blur import blur, blur_numpy, build as build_blur, make_input


def import_halide():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import halide
        return halide
    except Exception:
        return None


def median_time(fn, repeats, warmup=2, inner=1):
    """Median seconds per call of `fn` over `repeats` samples of `inner` calls."""
    for _ in range(warmup):
        for _ in range(inner):
            fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def table(title, rows, base_label, unit="us", extra=None):
    """rows: [(label, seconds or None, note)]; ratio column = seconds / base."""
    scale = {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    base = dict((r[0], r[1]) for r in rows)[base_label]
    print(f"\n{title}")
    head = f"  {'':<44} {'median ' + unit:>12} {'x ' + base_label.split(' ')[0]:>9}"
    if extra:
        head += f" {extra[0]:>8}"
    print(head)
    for label, s, note in rows:
        if s is None:
            print(f"  {label:<44} {'-':>12} {'-':>9}  {note}")
            continue
        line = f"  {label:<44} {s * scale:>12.2f} {s / base:>8.2f}x"
        if extra:
            line += f" {extra[1](s):>8.2f}"
        if note:
            line += f"  {note}"
        print(line)


def cc_version():
    try:
        from halo.runtime.compiler import compiler_identity, find_compiler
        return compiler_identity(tuple(find_compiler()))
    except Exception as e:
        return f"unknown ({e})"


def machine_context(hl_):
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print("machine:")
    print(f"  cpu: {model}; {usable} usable core(s) of {os.cpu_count()}")
    print(f"  {platform.system()} {platform.release()} {platform.machine()}; "
          f"Python {platform.python_version()}; numpy {np.__version__}")
    print(f"  halo {halo.__version__}, target {halo.get_jit_target_from_environment()}, "
          f"cc: {cc_version()}")
    if hl_ is not None:
        try:
            from importlib.metadata import version
            hver = version("halide")
        except Exception:
            hver = "?"
        print(f"  Halide {hver}, JIT target "
              f"{hl_.get_jit_target_from_environment()}")
    else:
        print("  Halide: not importable - its rows are skipped")
    print("  halo: default schedule (all inlined, one thread); Halide: default schedule "
          "unless labelled")


# -- (a) per-call overhead ---------------------------------------------------------------

def brighten(hl, inp):
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("brighten")
    f[x, y] = inp[x, y] + 10          # uint8, wraps
    return f


def bench_overhead(args, hl_):
    n = args.small
    a = np.random.default_rng(0).integers(0, 256, size=(n, n), dtype=np.uint8)
    ref = (a + np.uint8(10)).astype(np.uint8)
    out = np.zeros_like(a)
    rows = []

    def measure(label, fn, note=""):
        out[:] = 0
        fn()
        if not np.array_equal(out, ref):
            raise SystemExit(f"(a) {label}: wrong result")
        rows.append((label, median_time(fn, args.repeats, warmup=2, inner=args.calls), note))

    inp = halo.ImageParam(halo.UInt(8), 2, "input")
    inp.set_estimates([(0, n), (0, n)])
    f = brighten(halo, inp)
    p = halo.Pipeline(f)
    inp.set(halo.Buffer(a))
    out_b = halo.Buffer(out)
    measure("halo Pipeline.realize(Buffer)", lambda: p.realize(out_b))
    c = p.compile_to_callable([inp])
    measure("halo Callable(ndarray, ndarray)", lambda: c(a, out))
    a_b = halo.Buffer(a)
    measure("halo Callable(Buffer, Buffer)", lambda: c(a_b, out_b))

    if hl_ is not None:
        hinp = hl_.ImageParam(hl_.UInt(8), 2, "input")
        hf = brighten(hl_, hinp)
        hp = hl_.Pipeline(hf)
        hinp.set(hl_.Buffer(a))
        hout_b = hl_.Buffer(out)
        hp.compile_jit()
        measure("Halide Pipeline.realize(Buffer)", lambda: hp.realize(hout_b))
        hc = hp.compile_to_callable([hinp], hl_.get_jit_target_from_environment())
        measure("Halide Callable(ndarray, ndarray)", lambda: hc(a, out))
        ha_b = hl_.Buffer(a)
        measure("Halide Callable(Buffer, Buffer)", lambda: hc(ha_b, hout_b))
    else:
        rows.append(("Halide", None, "not importable"))
    measure("numpy np.add(a, 10, out=out)", lambda: np.add(a, np.uint8(10), out=out))
    table(f"(a) per-call overhead: {n}x{n} uint8 brighten, {args.calls} calls per sample, "
          f"median of {args.repeats} samples", rows, "halo Pipeline.realize(Buffer)", "us")


# -- (b) compile time ----------------------------------------------------------------------

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import halo
t_import = time.perf_counter() - t0
from halo.apps.blur import blur
from halo.runtime.compiler import cache_dir
before = set(os.listdir(cache_dir()))
p = halo.Pipeline(blur())
t0 = time.perf_counter()
p.compile_jit()
t_compile = time.perf_counter() - t0
new = [n for n in set(os.listdir(cache_dir())) - before if n.endswith('.so')]
t0 = time.perf_counter()
p._lower()
t_lower = time.perf_counter() - t0
print(json.dumps({"import": t_import, "compile": t_compile, "lower": t_lower,
                  "built": bool(new)}))
"""


CHILD_HALIDE = r"""
import json, time, warnings
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import halide as hl
t_import = time.perf_counter() - t0
from halo.apps.blur import build
inp = hl.ImageParam(hl.UInt(16), 2, "input")
out, _ = build(hl, inp)
p = hl.Pipeline(out)
t0 = time.perf_counter()
p.compile_jit()
print(json.dumps({"import": t_import, "compile": time.perf_counter() - t0}))
"""


def run_child(cache, script=CHILD):
    env = dict(os.environ, HALO_CACHE_DIR=cache)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                       timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"(b) child process failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_compile(args, hl_):
    rows = []
    colds, warms, lowers = [], [], []
    for _ in range(args.compile_repeats):
        with tempfile.TemporaryDirectory(prefix="halo-bench-cache-") as cache:
            cold = run_child(cache)
            warm = run_child(cache)
        if not cold["built"] or warm["built"]:
            raise SystemExit(f"(b) unexpected cache behaviour: cold={cold} warm={warm}")
        colds.append(cold["compile"])
        warms.append(warm["compile"])
        lowers.append(warm["lower"])
    rows.append(("halo cold: fresh cache, new process", statistics.median(colds),
                 "lower + C codegen + cc -O3 + dlopen"))
    rows.append(("halo warm: cached .so, new process", statistics.median(warms),
                 "lower + C codegen + hash + dlopen"))
    rows.append(("  of which lowering alone", statistics.median(lowers), ""))

    # In this process: a second Pipeline object for the same algorithm.
    with tempfile.TemporaryDirectory(prefix="halo-bench-cache-") as cache:
        old = os.environ.get("HALO_CACHE_DIR")
        os.environ["HALO_CACHE_DIR"] = cache
        try:
            halo.Pipeline(blur()).compile_jit()
            n0 = len([n for n in os.listdir(cache) if n.endswith(".so")])
            p2 = halo.Pipeline(blur())
            t0 = time.perf_counter()
            p2.compile_jit()
            t_same = time.perf_counter() - t0
            hit = len([n for n in os.listdir(cache) if n.endswith(".so")]) == n0
            t0 = time.perf_counter()
            p2.compile_jit()
            t_memo = time.perf_counter() - t0
        finally:
            if old is None:
                del os.environ["HALO_CACHE_DIR"]
            else:
                os.environ["HALO_CACHE_DIR"] = old
    rows.append(("halo new Pipeline object, same process", t_same,
                 "cache hit" if hit else "cache MISS: generated names differ"))
    rows.append(("halo compile_jit() again, same object", t_memo, "in-memory"))

    if hl_ is not None:
        ts = []
        for _ in range(args.compile_repeats):
            with tempfile.TemporaryDirectory(prefix="halo-bench-cache-") as cache:
                ts.append(run_child(cache, CHILD_HALIDE)["compile"])
        rows.append(("Halide compile_jit, first in a new process", statistics.median(ts),
                     "includes LLVM's one-time setup"))
        for label, root in (("Halide compile_jit (default schedule)", False),
                            ("Halide compile_jit (blur_x.compute_root)", True)):
            ts = []
            for _ in range(args.compile_repeats):
                hin = hl_.ImageParam(hl_.UInt(16), 2, "input")
                out, bx = build_blur(hl_, hin)
                if root:
                    bx.compute_root()
                hp = hl_.Pipeline(out)
                t0 = time.perf_counter()
                hp.compile_jit()
                ts.append(time.perf_counter() - t0)
            rows.append((label, statistics.median(ts), "LLVM, warm process"))
    else:
        rows.append(("Halide", None, "not importable"))
    table(f"(b) compile time: blur pipeline, median of {args.compile_repeats} "
          f"(each halo row a fresh process / fresh cache dir)",
          rows, "halo cold: fresh cache, new process", "ms")


# -- (c) blur ------------------------------------------------------------------------------

def bench_blur(args, hl_):
    w, h = args.blur_size
    img = make_input(w, h)
    ref = blur_numpy(img)
    out = np.zeros_like(ref)
    nbytes = img.nbytes + out.nbytes
    rows = []

    def measure(label, fn, note=""):
        out[:] = 0
        fn()
        if not np.array_equal(out, ref):
            raise SystemExit(f"(c) {label}: result differs from numpy")
        rows.append((label, median_time(fn, args.repeats), note))

    f = blur(w, h)
    c = halo.Pipeline(f).compile_to_callable([f.input])
    measure("halo (default schedule)", lambda: c(img, out), "C, gcc autovectorized")

    def np_blur():
        out[...] = blur_numpy(img)
    measure("numpy (uint32 temporaries)", np_blur)

    if hl_ is not None:
        for label, root in (("Halide (default schedule)", False),
                            ("Halide (blur_x.compute_root)", True)):
            hin = hl_.ImageParam(hl_.UInt(16), 2, "input")
            hout, bx = build_blur(hl_, hin)
            if root:
                bx.compute_root()
            hp = hl_.Pipeline(hout)
            hc = hp.compile_to_callable([hin], hl_.get_jit_target_from_environment())
            measure(label, lambda: hc(img, out))
    else:
        rows.append(("Halide", None, "not importable"))
    table(f"(c) 3x3 blur, uint16 {w}x{h} -> {w - 2}x{h - 2}, median of {args.repeats} runs "
          f"after 2 warm-up; GB/s = (input + output bytes) / time",
          rows, "halo (default schedule)", "ms", extra=("GB/s", lambda s: nbytes / s / 1e9))


def size(s):
    try:
        w, h = (int(v) for v in s.lower().split("x"))
        assert w >= 3 and h >= 3
        return w, h
    except Exception:
        raise argparse.ArgumentTypeError(f"{s!r} is not WIDTHxHEIGHT (each >= 3)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["a", "b", "c"], action="append",
                    help="run only these parts (repeatable)")
    ap.add_argument("--small", type=int, default=16, help="(a) image side (default 16)")
    ap.add_argument("--calls", type=int, default=2000, help="(a) calls per sample (2000)")
    ap.add_argument("--repeats", type=int, default=10,
                    help="(a), (c) samples per measurement (10)")
    ap.add_argument("--compile-repeats", type=int, default=3, help="(b) repeats (3)")
    ap.add_argument("--blur-size", type=size, default=(6400, 4800),
                    help="(c) input WxH (default 6400x4800)")
    ap.add_argument("--no-halide", action="store_true", help="skip Halide")
    args = ap.parse_args(argv)
    hl_ = None if args.no_halide else import_halide()
    t0 = time.perf_counter()
    machine_context(hl_)
    parts = args.only or ["a", "b", "c"]
    if "a" in parts:
        bench_overhead(args, hl_)
    if "b" in parts:
        bench_compile(args, hl_)
    if "c" in parts:
        bench_blur(args, hl_)
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
