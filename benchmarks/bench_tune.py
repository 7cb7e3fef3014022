#!/usr/bin/env python3
"""Tuned halo vs Halide's expert schedules and Halide's autoschedulers, one process.

    python benchmarks/bench_tune.py                          # 5 workloads, 300 s tuning each
    python benchmarks/bench_tune.py --only blur,matmul --budget 60
    python benchmarks/bench_tune.py --small --budget 20      # small sizes, a quick check

For each workload: `halo.tune` searches for --budget seconds (its own
worker processes; the result is a schedule file), then this process builds
every contender from the same algorithm (halo/apps/*.py `build(hl, ...)`)
and times them on the same inputs: halo's default schedule, halo with the
tuned file, Halide 21 with the expert schedule (`expert_schedule` in the app
module), and Halide with each autoscheduler that ships with the wheel
(Adams2019, Mullapudi2016, Li2018; `parallelism` = the core count). Each
result is checked against halo's default-schedule output first. Then the
tuned schedule and the Halide contenders are timed INTERLEAVED (one call of
each per round, --repeats rounds after a warm-up round, outputs
preallocated), so that load from other work on a shared machine hits them
alike; the table gives the median and the fastest round of each.
The table goes to stdout and to --out (Markdown).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
HERE = os.path.abspath(__file__)
SMALL = os.environ.get("HALO_BENCH_TUNE_SMALL") == "1"
VEC = 16          # float32 lanes of Halide's natural vector on an AVX-512 host


# -- PIPELINE functions for halo tune (zero-argument; sizes per --small) ------------------

def blur_pipeline():
    from halo.apps.blur import blur
    return blur(*((642, 482) if SMALL else (6402, 4802)))


def gaussian_pipeline():
    from halo.apps.gaussian import gaussian
    return gaussian(*((512, 512) if SMALL else (4096, 4096)))


def histogram_pipeline():
    from halo.apps.histogram import histogram
    return histogram(*((512, 512) if SMALL else (4096, 4096)))


def matmul_pipeline():
    from halo.apps.matmul import matmul
    return matmul(256 if SMALL else 1024)


def conv_pipeline():
    from halo.apps.conv_layer import conv_layer
    return conv_layer(**(dict(N=1, W=16, H=16) if SMALL else {}))


# -- the same algorithms for either module, with their inputs ------------------------------

def _blur(hl):
    from halo.apps import blur
    w, h = (642, 482) if SMALL else (6402, 4802)
    inp = hl.ImageParam(hl.UInt(16), 2, "input")
    inp.set_estimates([(0, w), (0, h)])
    out, bx = blur.build(hl, inp)
    out.set_estimates([(0, w - 2), (0, h - 2)])

    def expert():
        x, y = out.args()[0], out.args()[1]
        xo, yo, xi, yi = hl.Var("xo"), hl.Var("yo"), hl.Var("xi"), hl.Var("yi")
        out.tile(x, y, xo, yo, xi, yi, 256, 32).vectorize(xi, 2 * VEC).parallel(yo)
        bx.compute_at(out, xo).vectorize(bx.args()[0], 2 * VEC)
    return out, [inp], [blur.make_input(w, h)], (h - 2, w - 2), np.uint16, expert


def _gaussian(hl):
    from halo.apps import gaussian
    n = 512 if SMALL else 4096
    inp = hl.ImageParam(hl.Float(32), 2, "input")
    inp.set_estimates([(0, n), (0, n)])
    f = gaussian.build(hl, inp)
    f["out"].set_estimates([(0, n), (0, n)])
    return (f["out"], [inp], [gaussian.make_input(n, n)], (n, n), np.float32,
            lambda: gaussian.expert_schedule(hl, f, VEC))


def _histogram(hl):
    from halo.apps import histogram
    n = 512 if SMALL else 4096
    inp = hl.ImageParam(hl.UInt(8), 2, "input")
    inp.set_estimates([(0, n), (0, n)])
    f = histogram.build(hl, inp)
    f["out"].set_estimates([(0, 256)])
    return (f["out"], [inp], [histogram.make_input(n, n)], (256,), np.uint32,
            lambda: histogram.expert_schedule(hl, f, VEC, height=n))


def _matmul(hl):
    from halo.apps import matmul
    n = 256 if SMALL else 1024
    A, B = hl.ImageParam(hl.Float(32), 2, "A"), hl.ImageParam(hl.Float(32), 2, "B")
    A.set_estimates([(0, n), (0, n)])
    B.set_estimates([(0, n), (0, n)])
    f = matmul.build(hl, A, B)
    f["out"].set_estimates([(0, n), (0, n)])
    return (f["out"], [A, B], list(matmul.make_inputs(n)), (n, n), np.float32,
            lambda: matmul.expert_schedule(hl, f, VEC))


def _conv(hl):
    from halo.apps import conv_layer as cl
    s = dict(cl.DEFAULT_SHAPE, **(dict(N=1, W=16, H=16) if SMALL else {}))
    inp = hl.ImageParam(hl.Float(32), 4, "input")
    filt = hl.ImageParam(hl.Float(32), 4, "filter")
    bias = hl.ImageParam(hl.Float(32), 1, "bias")
    inp.set_estimates([(0, s["CI"]), (0, s["W"] + 2), (0, s["H"] + 2), (0, s["N"])])
    filt.set_estimates([(0, s["CO"]), (0, 3), (0, 3), (0, s["CI"])])
    bias.set_estimates([(0, s["CO"])])
    f = cl.build(hl, inp, filt, bias, s["CI"])
    f["out"].set_estimates([(0, s["CO"]), (0, s["W"]), (0, s["H"]), (0, s["N"])])
    return (f["out"], [inp, filt, bias], list(cl.make_inputs(**s)),
            (s["N"], s["H"], s["W"], s["CO"]), np.float32,
            lambda: cl.expert_schedule(hl, f, VEC))


WORKLOADS = {"blur": (_blur, "blur_pipeline"), "gaussian": (_gaussian, "gaussian_pipeline"),
             "histogram": (_histogram, "histogram_pipeline"),
             "matmul": (_matmul, "matmul_pipeline"), "conv": (_conv, "conv_pipeline")}
AUTOSCHEDULERS = ("Adams2019", "Mullapudi2016", "Li2018")


def times_alone(fn, repeats, budget_s=20.0):
    """(median, min) seconds of `fn` after a warm-up call, at most ~budget_s."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    ts = []
    for _ in range(max(1, min(repeats, int(budget_s / max(first, 1e-9))))):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def interleaved_times(fns, repeats, budget_s=40.0):
    """{key: (median, min) seconds} of the callables `fns`, timed INTERLEAVED: each
    round calls every one once, in a rotating order, so a change of load on the
    shared machine hits them alike. A warm-up round first; fewer rounds (at least 3) when a round is
    slow, to keep to about budget_s."""
    t0 = time.perf_counter()
    for fn in fns.values():
        fn()
    first = time.perf_counter() - t0
    n = max(3, min(repeats, int(budget_s / max(first, 1e-9))))
    samples = {k: [] for k in fns}
    keys = list(fns)
    for r in range(n):
        # each round starts one further along: none always follows the same one
        # (Halide's thread pool spins a while after a parallel loop)
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            t0 = time.perf_counter()
            fns[k]()
            samples[k].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), min(v)) for k, v in samples.items()}


def _halide():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import halide
    lib = os.path.join(os.path.dirname(halide.__file__), "lib64")
    for name in AUTOSCHEDULERS:
        path = os.path.join(lib, f"libautoschedule_{name.lower()}.so")
        try:
            halide.load_plugin(path if os.path.exists(path) else f"autoschedule_{name.lower()}")
        except Exception as e:
            print(f"cannot load the {name} autoscheduler: {e}")
    return halide


def _same(a, b):
    if a.dtype.kind == "f":
        scale = max(1e-30, float(np.abs(b).max()))
        return float(np.abs(a.astype(np.float64) - b).max()) / scale < 1e-4
    return np.array_equal(a, b)


def bench_workload(name, budget, repeats, workers, out_dir, halide):
    import halo
    make, fn_name = WORKLOADS[name]
    spec = f"{HERE}:{fn_name}"
    from halo.tune import tune
    t0 = time.perf_counter()
    summary = tune(spec, budget=budget, out_dir=out_dir, workers=workers,
                   reference_timeout=30, trial_timeout=120, progress=sys.stderr.isatty())
    tune_s = time.perf_counter() - t0
    rows = []

    def prepare(label, hl, schedule):
        """[label, callable, result, note]: compiled and run once (checked later)."""
        try:
            out, params, ins, shape, dtype, expert = make(hl)
            if hl is halo:
                if schedule == "tuned":
                    out.apply_schedule(summary["schedule_file"])
                p = hl.Pipeline(out)
                c = p.compile_to_callable(params)
            else:
                p = hl.Pipeline(out)
                target = hl.get_jit_target_from_environment()
                if schedule == "expert":
                    expert()
                elif schedule != "default":
                    p.apply_autoscheduler(target, hl.AutoschedulerParams(
                        schedule, {"parallelism": str(os.cpu_count() or 1)}))
                c = p.compile_to_callable(params, target)
            res = np.zeros(shape, dtype)
            c(*ins, res)
            rows.append([label, lambda: c(*ins, res), res, ""])
        except Exception as e:
            rows.append([label, None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"])

    prepare("halo default schedule", halo, "default")
    if summary.get("schedule_file"):
        prepare(f"halo tuned ({budget:.0f} s)", halo, "tuned")
    if halide is not None:
        prepare("Halide expert schedule", halide, "expert")
        for a in AUTOSCHEDULERS:
            prepare(f"Halide {a}", halide, a)
    # the default schedule alone (it can take seconds); the contenders interleaved
    if rows[0][1] is not None:
        rows[0][1] = times_alone(rows[0][1], repeats)
    contenders = {i: r[1] for i, r in enumerate(rows) if i > 0 and r[1] is not None}
    for i, t in interleaved_times(contenders, repeats).items():
        rows[i][1] = t
    ref = rows[0][2]
    for r in rows[1:]:
        if r[2] is not None and ref is not None and not _same(r[2], ref):
            r[3] = "OUTPUT DIFFERS " + r[3]
    return rows, summary, tune_s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    ap.add_argument("--budget", type=float, default=300, help="tuning seconds per workload")
    ap.add_argument("--repeats", type=int, default=15, help="interleaved rounds (15)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="small sizes (a quick check)")
    ap.add_argument("--out", default=None, help="write the table here (Markdown)")
    ap.add_argument("--no-halide", action="store_true")
    ap.add_argument("--keep", default=None, metavar="DIR",
                    help="keep each workload's tuning results (schedule file, report, "
                         "study database) under DIR/WORKLOAD instead of a temporary folder")
    args = ap.parse_args(argv)
    if args.small:
        os.environ["HALO_BENCH_TUNE_SMALL"] = "1"
        global SMALL
        SMALL = True
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    from halo.cli import machine_summary
    halide = None if args.no_halide else _halide()
    lines = [f"# halo tune vs Halide ({'small' if SMALL else 'full'} sizes, tuning budget "
             f"{args.budget:.0f} s per workload)", "", f"machine: {machine_summary()}", "",
             "Times: median and fastest of interleaved rounds (halo tuned and every Halide "
             "contender called once per round); ratios to the best Halide contender by the "
             "same statistic. The halo default schedule is timed alone.", "",
             "| workload | implementation | median ms | min ms | x best Halide (median) "
             "| x best Halide (min) | note |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    names = [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"bench_tune.py: unknown workload(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(WORKLOADS)}")
    with tempfile.TemporaryDirectory(prefix="halo-bench-tune-") as tmp:
        tmp = args.keep or tmp
        for name in names:
            load = os.getloadavg()[0]
            rows, summary, tune_s = bench_workload(name.strip(), args.budget, args.repeats,
                                                   args.workers, os.path.join(tmp, name),
                                                   halide)
            hal = [r[1] for r in rows if r[0].startswith("Halide") and r[1]]
            best = [min(h[i] for h in hal) if hal else None for i in (0, 1)]
            for label, t, _, note in rows:
                cells = ["-"] * 4 if t is None else [
                    f"{t[0] * 1e3:.3f}", f"{t[1] * 1e3:.3f}",
                    *("-" if b is None else f"{v / b:.2f}" for v, b in zip(t, best))]
                lines.append(f"| {name} | {label} | {' | '.join(cells)} | {note} |")
            lines.append(f"| {name} | (tuning: {summary['trials']} trials, "
                         f"{summary['measured']} measured, {len(summary['rejected'])} "
                         f"rejected, {tune_s:.0f} s with set-up; load average "
                         f"{load:.1f} -> {os.getloadavg()[0]:.1f}) | | | | | |")
            print("\n".join(lines[-len(rows) - 1:]), flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
