"""Shared driver for the apps gallery (examples/apps/*.py).

Every app module defines

    build(hl, *inputs, **params) -> Func   the algorithm + its CPU schedule;
                                           `hl` is `halo` or `halide`, the
                                           inputs are Buffers of that module
    make_input(small=False) -> tuple       numpy input arrays (synthesized)
    output_size(*inputs) -> list           realize() sizes, Halide order (x, y, ...)
    RTOL, ATOL                             tolerance vs Halide (0, 0: exact;
                                           for integer outputs ATOL is the
                                           largest allowed |difference|)
    OUTLIERS (optional)                    integer outputs: the fraction of
                                           values allowed beyond ATOL
    PARAMS, SMALL_PARAMS (optional)        keyword arguments of build(); the
                                           small ones override at the test size

`build(..., gpu=True)` applies the app's GPU schedule (`schedule_gpu` in
the app, after Halide's apps/*_generator.cpp GPU branches) instead of the
CPU one; `--target host-opencl` or `host-cuda` runs that.

and `main()` just calls `run_app(module)` here: it builds the same program
with halo and with Halide, compiles both (timed separately), checks that
the outputs agree, times both (median after warm-up), and saves the input
and output as PNG files next to the app (or in --out DIR).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# libgomp's default wait policy spins worker threads after each parallel loop.
# On a small, shared machine (2 cores here, other jobs running) the spinning
# workers steal the core the caller needs: a trivial parallel pipeline then
# costs ~13 ms per call instead of ~0.05 ms. Passive waiting is set before
# halo loads its first OpenMP kernel; export OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

# halo's IR visitors recurse once per nested let statement; the bounds of the
# long pyramids (local_laplacian, interpolate) nest a few thousand, beyond
# Python's default limit of 1000.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))


def import_halide():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import halide
        return halide
    except Exception:
        return None


def median_time(fn, repeats=10, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# -- images ---------------------------------------------------------------------------------

def to_uint8(a: np.ndarray, lo=None, hi=None) -> np.ndarray:
    """Scale any array to uint8 for viewing ((H, W) or (H, W, 3))."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float64)
    lo = np.nanmin(a) if lo is None else lo
    hi = np.nanmax(a) if hi is None else hi
    if hi <= lo:
        hi = lo + 1
    return np.clip((a - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def save_png(path, a, lo=None, hi=None):
    img = to_uint8(a, lo, hi)
    try:
        import imageio.v2 as imageio
        imageio.imwrite(path, img)
    except ImportError:
        from PIL import Image
        Image.fromarray(img).save(path)


def planar_to_view(a: np.ndarray) -> np.ndarray:
    """numpy (C, H, W) planar color (Halide order x, y, c) -> (H, W, C) for PNG."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[0] in (3, 4):
        return np.moveaxis(a[:3], 0, -1)
    return a


def synth_photo(width, height, seed=0, color=False):
    """A smooth, photo-like float image in [0, 1]: gradients, discs, bars,
    a little texture and noise, so that filters have edges and flats to act on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    planes = []
    for c in range(3 if color else 1):
        img = 0.25 + 0.35 * u * (1 - 0.3 * c) + 0.2 * v
        for k in range(6):
            cx, cy = rng.uniform(0.1, 0.9, 2)
            r = rng.uniform(0.05, 0.18)
            d = np.hypot(u - cx, (v - cy) * height / max(width, 1))
            img = np.where(d < r, rng.uniform(0.05, 0.95), img)
        bars = (np.sin(2 * np.pi * x / 11.0 + c) > 0) & (v > 0.8) & (u < 0.4)
        img = np.where(bars, 0.9 - 0.6 * img, img)
        img += 0.04 * np.sin(2 * np.pi * (3 * u + 5 * v)) * np.cos(2 * np.pi * 7 * u)
        img += rng.normal(0, 0.01, img.shape)
        planes.append(np.clip(img, 0, 1))
    return np.stack(planes) if color else planes[0]


# -- running ----------------------------------------------------------------------------------

def _outs(r):
    return [np.asarray(b) for b in r] if isinstance(r, (tuple, list)) else [np.asarray(r)]


GPU_TARGETS = ("host-opencl", "host-cuda")


def is_gpu(target) -> bool:
    """Whether a target name has a GPU feature (opencl or cuda)."""
    return target is not None and bool({"opencl", "cuda"} & set(str(target).split("-")))


def target_for(hl, name=None):
    """`hl`'s Target for a target name (None: HL_JIT_TARGET, as Halide).
    Halide's OpenCL runtime must find the same ICD loader (and the PoCL
    device) that halo uses, so that loader is loaded globally first."""
    if name is None:
        return hl.get_jit_target_from_environment()
    if "opencl" in str(name) and hl.__name__ != "halo":
        from halo.runtime.opencl import get_opencl, load_icd_globally
        get_opencl()                 # a halo error naming the fix if there is no device
        load_icd_globally()
    return hl.Target(str(name))


def realize_with(hl, module, inputs, sizes, params=None, repeats=0, target=None):
    """Build with `hl` (its GPU schedule for a GPU target), compile (timed),
    run once, optionally time. Returns (outputs, compile_s, run_s or None).
    On a GPU a timed run ends with the output on the host (copy_to_host)."""
    params = dict(params or {})
    if is_gpu(target):
        params["gpu"] = True
    t = target_for(hl, target)
    bufs = [hl.Buffer(a) for a in inputs]
    f = module.build(hl, *bufs, **params)
    p = hl.Pipeline(f) if not isinstance(f, hl.Pipeline) else f
    t0 = time.perf_counter()
    p.compile_jit(t)
    compile_s = time.perf_counter() - t0
    first = _outs_on_host(p.realize(list(sizes), t))
    run_s = None
    if repeats:
        dst = [hl.Buffer(np.empty_like(o)) for o in first]
        arg = dst[0] if len(dst) == 1 else dst

        def run():
            p.realize(arg, t)
            _outs_on_host(arg)
        run_s = median_time(run, repeats)
    return [np.array(o) for o in first], compile_s, run_s


def _outs_on_host(r):
    """Output Buffers as numpy arrays, copied back from the device first."""
    bufs = list(r) if isinstance(r, (tuple, list)) else [r]
    for b in bufs:
        if hasattr(b, "copy_to_host"):
            b.copy_to_host()
    return [np.asarray(b) for b in bufs]


def compare(ours, theirs, rtol, atol, outliers=0.0):
    """(ok, description) for halo vs Halide outputs. For integer outputs,
    `atol` is the largest allowed |difference| and `outliers` the fraction of
    values allowed beyond it (a float32 value on a rounding boundary that
    picks another entry of a lookup table)."""
    msgs, ok = [], True
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False, f"output {i}: {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}"
        if a.dtype.kind in "iu" and atol:
            err = np.abs(a.astype(np.int64) - b.astype(np.int64))
            beyond = int(np.count_nonzero(err > atol))
            ok &= beyond <= outliers * a.size
            msgs.append(f"{int(np.count_nonzero(err))} of {a.size} values differ, "
                        f"{beyond} by more than {atol:g} (allowed: {outliers:.2%} of values), "
                        f"max {int(err.max(initial=0))}")
        elif a.dtype.kind == "f" and (rtol or atol):
            err = np.abs(a.astype(np.float64) - b)
            lim = atol + rtol * np.abs(b.astype(np.float64))
            good = bool(np.all((err <= lim) | (np.isnan(a) & np.isnan(b))))
            ok &= good
            msgs.append(f"max |diff| {float(np.nanmax(err)):.3g} "
                        f"(tolerance atol={atol:g}, rtol={rtol:g})")
        else:
            bad = int(np.count_nonzero(a != b))
            ok &= bad == 0
            msgs.append("exact" if bad == 0 else f"{bad} of {a.size} values differ")
    return ok, "; ".join(msgs)


def run_app(module, small=False, repeats=10, outdir=None, quiet=False, save=True, target=None):
    """Run one app at full size against Halide; returns a result dict.
    `target`: a target name (None: HL_JIT_TARGET); a GPU target runs the
    app's GPU schedule on halo and on Halide."""
    import halo
    target = target or os.environ.get("HL_JIT_TARGET") or "host"
    name = Path(module.__file__).stem
    inputs = module.make_input(small=small)
    sizes = module.output_size(*inputs)
    params = params_for(module, small)
    ours, c_halo, t_halo = realize_with(halo, module, inputs, sizes, params, repeats, target)
    res = dict(app=name, sizes=sizes, halo_ms=t_halo * 1e3, halo_compile_s=c_halo,
               halide_ms=None, halide_compile_s=None, check="Halide not installed", ok=None,
               target=target)
    halide = import_halide()
    if halide is not None:
        theirs, c_hl, t_hl = realize_with(halide, module, inputs, sizes, params, repeats,
                                          target)
        ok, what = compare(ours, theirs, module.RTOL, module.ATOL,
                           getattr(module, "OUTLIERS", 0.0))
        res.update(halide_ms=t_hl * 1e3, halide_compile_s=c_hl, check=what, ok=ok)
    if save:
        outdir = Path(outdir or Path(__file__).parent / "out")
        outdir.mkdir(parents=True, exist_ok=True)
        view_in = getattr(module, "view_input", lambda *a: planar_to_view(a[0]))
        view_out = getattr(module, "view_output", lambda o: planar_to_view(o))
        save_png(outdir / f"{name}_input.png", view_in(*inputs))
        save_png(outdir / f"{name}_output.png", view_out(ours[0]))
        res["pngs"] = str(outdir / f"{name}_{{input,output}}.png")
    if not quiet:
        print(f"{name}: output {'x'.join(map(str, sizes))}, target {res['target']}")
        print(f"  compile: halo {c_halo:.2f} s, Halide {res['halide_compile_s'] or 0:.2f} s")
        print(f"  check vs Halide: {'OK' if res['ok'] else 'FAILED' if res['ok'] is False else '-'}"
              f" ({res['check']})")
        hms = res["halide_ms"]
        ratio = f", halo/Halide {res['halo_ms'] / hms:.2f}x" if hms else ""
        print(f"  run (median of {repeats} after 2 warm-ups): halo {res['halo_ms']:.2f} ms"
              + (f", Halide {hms:.2f} ms" if hms else "") + ratio)
        if save:
            print(f"  images: {res['pngs']}")
    return res


def params_for(module, small=False):
    """build() keyword arguments: PARAMS, overridden by SMALL_PARAMS when small."""
    params = dict(getattr(module, "PARAMS", {}))
    if small:
        params.update(getattr(module, "SMALL_PARAMS", {}))
    return params


def main_for(module, argv=None):
    ap = argparse.ArgumentParser(description=(module.__doc__ or "").split("\n")[0])
    ap.add_argument("--small", action="store_true", help="use the small test size")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=None, help="directory for the PNGs")
    add_target_option(ap)
    a = ap.parse_args(argv)
    res = run_app(module, small=a.small, repeats=a.repeats, outdir=a.out, target=a.target)
    return 0 if res["ok"] is not False else 1


def add_target_option(ap):
    ap.add_argument("--target", default=None, choices=("host",) + GPU_TARGETS,
                    help="host: the CPU schedule; host-opencl / host-cuda: the app's GPU "
                         "schedule on that backend, for halo and Halide alike (default: "
                         "HL_JIT_TARGET, else host)")


def pipeline_for(module, small=False):
    """A halo Func for `halo bench`: inputs bound as Buffers, with the
    attributes `halo bench` looks for: `sizes` (realize sizes), `halide`
    (a zero-argument callable building the same program with Halide) and,
    where the app has one, `numpy` (a zero-argument numpy reference)."""
    import halo
    inputs = module.make_input(small=small)
    params = params_for(module, small)
    f = module.build(halo, *[halo.Buffer(a) for a in inputs], **params)
    f.sizes = module.output_size(*inputs)

    def halide_version():
        hl = import_halide()
        return module.build(hl, *[hl.Buffer(a) for a in inputs], **params)
    f.halide = halide_version
    ref = getattr(module, "numpy_reference", None)
    if ref is not None:
        f.numpy = lambda: ref(*inputs, **params)
    return f
