#!/usr/bin/env python3
"""Run the whole apps gallery at full size and print one summary table.

    python examples/apps/run_all.py [--repeats N] [--small] [--only a,b]
                                    [--target host|host-opencl|host-cuda]

For each app: halo's and Halide's median run time (after 2 warm-ups, compile
timed separately), the ratio halo/Halide, and whether the outputs agree
(exact for integer apps, the app's tolerance for float ones). PNGs go to
examples/apps/out/. Timings on a small shared machine are noisy. With a GPU
target every app runs its GPU schedule (halo and Halide alike) on that
backend; on PoCL's CPU OpenCL device that checks the schedules, not GPU speed.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (sets OMP_WAIT_POLICY before halo loads OpenMP)

APPS = ["unsharp", "harris", "max_filter", "stencil_chain", "iir_blur",
        "bilateral_grid", "matmul", "conv_layer", "resize", "resize_lanczos", "camera_pipe",
        "local_laplacian", "interpolate", "nl_means"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated app names")
    _common.add_target_option(ap)
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import importlib
    from halo.cli import machine_summary
    names = a.only.split(",") if a.only else APPS
    results = []
    for n in names:
        mod = importlib.import_module(n)
        try:
            results.append(_common.run_app(mod, small=a.small, repeats=a.repeats,
                                           target=a.target))
        except Exception as e:   # one broken app must not hide the others
            print(f"{n}: FAILED: {type(e).__name__}: {str(e)[:200]}")
            results.append(dict(app=n, sizes=None, halo_ms=None, halide_ms=None,
                                halo_compile_s=None, halide_compile_s=None, ok=False,
                                check=f"error: {type(e).__name__}"))
    print()
    target = a.target or os.environ.get("HL_JIT_TARGET") or "host"
    print(f"machine: {machine_summary()}; target {target}; median of {a.repeats} runs "
          f"after 2 warm-ups")
    hdr = (f"{'app':<15} {'output':>12} {'halo ms':>9} {'Halide ms':>10} {'halo/Halide':>12} "
           f"{'compile halo/Halide s':>22}  check")
    print(hdr)
    print("-" * len(hdr))
    ok = True
    for r in results:
        size = "x".join(map(str, r["sizes"])) if r["sizes"] else "-"
        hm = f"{r['halo_ms']:.2f}" if r["halo_ms"] is not None else "-"
        Hm = f"{r['halide_ms']:.2f}" if r["halide_ms"] is not None else "-"
        ratio = (f"{r['halo_ms'] / r['halide_ms']:.2f}"
                 if r["halo_ms"] is not None and r["halide_ms"] else "-")
        comp = (f"{r['halo_compile_s']:.1f} / {r['halide_compile_s']:.1f}"
                if r["halo_compile_s"] is not None and r["halide_compile_s"] is not None else "-")
        chk = "OK" if r["ok"] else ("FAILED" if r["ok"] is False else "-")
        print(f"{r['app']:<15} {size:>12} {hm:>9} {Hm:>10} {ratio:>12} {comp:>22}  "
              f"{chk} ({r['check']})")
        ok &= r["ok"] is not False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
