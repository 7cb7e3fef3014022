#!/usr/bin/env python3
"""The apps gallery (examples/apps/) at full size: halo vs Halide, one table and one chart.

    python benchmarks/bench_apps.py                      # every app, ~5-10 min on 2 cores
    python benchmarks/bench_apps.py --only conv_layer,resize --repeats 20
    python benchmarks/bench_apps.py --small              # a quick check
    python benchmarks/bench_apps.py --threads 1          # one thread each (a busy machine)

Each app runs through examples/apps/_common.run_app: the same program and
schedule built with halo and with Halide 21 in this process, both compiled
(compile times apart), the outputs compared (exact, or the app's documented
tolerance) and then each timed as the median of --repeats runs after 2
warm-ups. The throughput column is GFLOP/s for the compute-bound kernels
(matmul, conv_layer: 2 flops per multiply-add) and GB/s of input + output
bytes for the others, next to the machine's limit: its fp32 FMA peak or its
STREAM-like triad bandwidth. By default these are the nominal figures of the
2-core CI machine (460 GFLOP/s, 30 GB/s); --measure-limits measures them with
machine_limits.py instead (on a busy shared machine the probe reads low: it
once gave 64 GFLOP/s while Halide's conv_layer ran at 166).

Writes --out/apps.md (the markdown table) and --out/apps.png (halo/Halide
per app; needs matplotlib: pip install '.[bench]'). Timings on a small shared
machine are noisy; compare ratios taken in the same run.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
APPS_DIR = HERE.parent / "examples" / "apps"
sys.path.insert(0, str(APPS_DIR))
sys.path.insert(0, str(HERE))
import _common  # noqa: E402  (sets OMP_WAIT_POLICY before halo loads OpenMP)
from run_all import APPS  # noqa: E402

NOMINAL = {"triad_f32_best": 30.0, "fma_f32_gflops": 460.0}


def _flops_matmul(inputs, params):
    A, B = inputs
    return 2.0 * A.shape[0] * A.shape[1] * B.shape[1]


def _flops_conv_layer(inputs, params):
    inp, filt, _ = inputs
    N, H2, W2, CI = inp.shape
    return 2.0 * N * (H2 - 2) * (W2 - 2) * filt.shape[3] * CI * 9


# the compute-bound kernels: useful flops of the algorithm (not of the schedule)
FLOPS = {"matmul": _flops_matmul, "conv_layer": _flops_conv_layer}


def work(name, module, small):
    """(amount, unit): the app's useful work per run, flops or bytes moved."""
    inputs = module.make_input(small=small)
    params = _common.params_for(module, small)
    if name in FLOPS:
        return FLOPS[name](inputs, params), "GFLOP/s"
    import halo
    f = module.build(halo, *[halo.Buffer(a) for a in inputs], **params)
    out_bytes = int(np.prod(module.output_size(*inputs))) * f.type().bytes()
    return sum(a.nbytes for a in inputs) + out_bytes, "GB/s"


def run(names, small, repeats, limits, traceback_on):
    rows = []
    for name in names:
        module = importlib.import_module(name)
        try:
            r = _common.run_app(module, small=small, repeats=repeats, quiet=True)
        except Exception as e:      # one broken app must not hide the others
            if traceback_on:
                traceback.print_exc()
            rows.append(dict(app=name, error=f"{type(e).__name__}: {str(e)[:120]}"))
            print(f"{name}: FAILED ({type(e).__name__})", flush=True)
            continue
        amount, unit = work(name, module, small)
        value = amount / (r["halo_ms"] * 1e6)            # per ms -> G per s
        limit = limits["fma_f32_gflops"] if unit == "GFLOP/s" else limits["triad_f32_best"]
        hl_value = amount / (r["halide_ms"] * 1e6) if r["halide_ms"] else None
        r.update(unit=unit, value=value, halide_value=hl_value, limit=limit)
        rows.append(r)
        ratio = r["halo_ms"] / r["halide_ms"] if r["halide_ms"] else float("nan")
        print(f"{name}: halo {r['halo_ms']:.2f} ms, Halide {r['halide_ms'] or 0:.2f} ms, "
              f"ratio {ratio:.2f}, {'OK' if r['ok'] else 'CHECK FAILED'}", flush=True)
    return rows


def markdown(rows, header):
    out = [header, "",
           "| app | output | halo ms | Halide ms | halo/Halide | halo throughput | "
           "Halide throughput | machine limit | check |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['app']} | - | - | - | - | - | - | - | error: {r['error']} |")
            continue
        size = "x".join(map(str, r["sizes"]))
        hms = r["halide_ms"]
        ratio = f"{r['halo_ms'] / hms:.2f}" if hms else "-"
        unit = r["unit"]
        pct = 100 * r["value"] / r["limit"]
        hv = f"{r['halide_value']:.1f} {unit}" if r["halide_value"] else "-"
        chk = ("OK" if r["ok"] else "FAILED" if r["ok"] is False else "-") + f" ({r['check']})"
        out.append(f"| {r['app']} | {size} | {r['halo_ms']:.2f} | "
                   f"{hms:.2f} | {ratio} | {r['value']:.1f} {unit} ({pct:.0f}%) | {hv} | "
                   f"{r['limit']:.0f} {unit} | {chk} |" if hms else
                   f"| {r['app']} | {size} | {r['halo_ms']:.2f} | - | - | "
                   f"{r['value']:.1f} {unit} ({pct:.0f}%) | - | {r['limit']:.0f} {unit} | {chk} |")
    return "\n".join(out) + "\n"


def chart(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in rows if "error" not in r and r.get("halide_ms")]
    names = [r["app"] for r in done]
    ratios = [r["halo_ms"] / r["halide_ms"] for r in done]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(done) + 2), 3.8))
    colors = ["#4a7ebb" if q <= 1.25 else "#c0504d" for q in ratios]
    ax.bar(names, ratios, color=colors)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(1.25, color="#c0504d", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_ylabel("halo time / Halide time (log; lower is better)")
    ax.set_title(title, fontsize=9)
    for i, q in enumerate(ratios):
        ax.text(i, q, f"{q:.2f}", ha="center", va="bottom", fontsize=7)
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, help="comma-separated app names (default: all)")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per median (10)")
    ap.add_argument("--small", action="store_true", help="the test sizes (a quick check)")
    ap.add_argument("--measure-limits", action="store_true",
                    help="measure the limits (machine_limits.py) instead of the nominal "
                         "30 GB/s and 460 GFLOP/s")
    ap.add_argument("--out", default=str(HERE / "results"),
                    help="directory for apps.md and apps.png (benchmarks/results)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for both (OMP_NUM_THREADS, HL_NUM_THREADS); default: all")
    ap.add_argument("--traceback", action="store_true", help="print tracebacks of failures")
    a = ap.parse_args(argv)
    if a.threads:
        # read by libgomp and Halide's thread pool when they start: before any run
        os.environ["OMP_NUM_THREADS"] = os.environ["HL_NUM_THREADS"] = str(a.threads)
    warnings.simplefilter("ignore")
    names = a.only.split(",") if a.only else APPS
    unknown = [n for n in names if not (APPS_DIR / f"{n}.py").exists()]
    if unknown:
        ap.error(f"unknown app(s): {', '.join(unknown)}; the apps: {', '.join(APPS)}")
    from halo.cli import machine_summary
    limits, measured = dict(NOMINAL), "nominal"
    if a.measure_limits:
        import machine_limits
        try:
            limits = machine_limits.measure()
            measured = "measured"
        except Exception as e:
            print(f"machine_limits failed ({e}); using the nominal limits")
    threads = f"{a.threads} thread(s)" if a.threads else "all cores"
    header = (f"halo vs Halide 21, same program and schedule, one process, {threads}; median "
              f"of {a.repeats} runs after 2 warm-ups. Machine: {machine_summary()}; limits "
              f"({measured}): triad {limits['triad_f32_best']:.1f} GB/s, fp32 FMA peak "
              f"{limits['fma_f32_gflops']:.0f} GFLOP/s.")
    print(header, flush=True)
    rows = run(names, a.small, a.repeats, limits, a.traceback)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(rows, header)
    (out / "apps.md").write_text(md)
    print()
    print(md)
    print(f"table: {out / 'apps.md'}")
    try:
        chart(rows, out / "apps.png", "apps gallery: halo / Halide (same schedule)")
        print(f"chart: {out / 'apps.png'}")
    except ImportError:
        print("chart: matplotlib is not installed (pip install '.[bench]'); none written")
    bad = [r for r in rows if "error" in r or r.get("ok") is False]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
