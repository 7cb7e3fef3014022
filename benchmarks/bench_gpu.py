"""OpenCL on PoCL: halo vs Halide's OpenCL target, same 3x3 blur and schedule.

    python benchmarks/bench_gpu.py [--width 2048] [--height 1536] [--repeats 15]

Both run in this process on the same PoCL CPU device. Inputs live on the
device (copied once) and outputs stay there (device_dirty), so the timings
are the kernels plus launch overhead; the compile time is reported apart.
After a warm-up, halo and Halide runs alternate (the machine may be shared:
a load change then hits both alike); each time is the median of its
repeats, and the ratio is the median of the per-pair ratios, in wall
time and in process CPU time (PoCL's work-items run on this process's
threads, so CPU time is the work done, much less disturbed by other jobs
than wall time). Halide
finds PoCL only when pyopencl's bundled libOpenCL was loaded first with
RTLD_GLOBAL (halo.runtime.opencl.load_icd_globally).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def blur(hl, inp, tile_x=32, tile_y=8):
    x, y, xo, yo, xi, yi = (hl.Var(n) for n in "x y xo yo xi yi".split())
    bx, by = hl.Func("blur_x"), hl.Func("blur_y")
    bx[x, y] = (inp[x, y] + inp[x + 1, y] + inp[x + 2, y]) // 3
    by[x, y] = (bx[x, y] + bx[x, y + 1] + bx[x, y + 2]) // 3
    by.gpu_tile(x, y, xo, yo, xi, yi, tile_x, tile_y)
    bx.compute_at(by, xo).gpu_threads(x, y)
    return by


def _timed(run, sync):
    """(wall ms, process CPU ms) of one run. PoCL runs the kernels on this
    process's threads, so the CPU time is the work done, which other jobs
    on a shared machine disturb far less than the wall time."""
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    sync()
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1536)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    import halo
    from halo.runtime.opencl import get_opencl, load_icd_globally
    backend = get_opencl()            # also adapts PoCL to this CPU (see opencl.py)
    load_icd_globally()
    w, h = args.width, args.height
    img = np.random.RandomState(0).randint(0, 20000, (h + 2, w + 2)).astype(np.uint16)
    print(f"3x3 blur, uint16, {w}x{h}, gpu_tile 32x8, blur_x in local memory; "
          f"device: {backend.describe()}")

    t = halo.Target("host-opencl")
    inp = halo.Buffer(img).copy_to_device(t)
    out = halo.Buffer(halo.UInt(16), [w, h]).device_malloc(t)
    f = blur(halo, inp)
    t0 = time.perf_counter()
    f.compile_jit(t)
    f.realize(out, t)
    out.device_sync()
    compile_halo = time.perf_counter() - t0
    ref = ((img[:, :-2].astype(np.uint32) + img[:, 1:-1] + img[:, 2:]) // 3)
    ref = ((ref[:-2] + ref[1:-1] + ref[2:]) // 3).astype(np.uint16)
    run_halo = (lambda: f.realize(out, t), out.device_sync)

    try:
        import halide as hd
    except ImportError:
        ours = statistics.median(_timed(*run_halo)[0] for _ in range(args.repeats))
        print(f"halo   OpenCL: {ours:8.2f} ms   (first compile + run {compile_halo * 1e3:.0f} ms)")
        print("Halide is not installed: no comparison")
        assert np.array_equal(np.asarray(out), ref), "halo's OpenCL blur is wrong"
        return
    ht = hd.get_host_target().with_feature(hd.TargetFeature.OpenCL)
    hin = hd.Buffer(img)
    hout = hd.Buffer(hd.UInt(16), [w, h])
    hf = blur(hd, hin)
    t0 = time.perf_counter()
    hf.compile_jit(ht)
    hf.realize(hout, ht)
    hout.device_sync()
    compile_halide = time.perf_counter() - t0
    run_halide = (lambda: hf.realize(hout, ht), hout.device_sync)
    _timed(*run_halo), _timed(*run_halide)                  # warm-up
    pairs = [(_timed(*run_halo), _timed(*run_halide)) for _ in range(args.repeats)]
    hout.copy_to_host()
    assert np.array_equal(np.asarray(hout), ref), "Halide's OpenCL blur differs"
    assert np.array_equal(np.asarray(out), ref), "halo's OpenCL blur is wrong"
    for name, i, first in (("halo  ", 0, compile_halo), ("Halide", 1, compile_halide)):
        wall = statistics.median(p[i][0] for p in pairs)
        cpu = statistics.median(p[i][1] for p in pairs)
        print(f"{name} OpenCL: {wall:8.2f} ms wall, {cpu:8.2f} ms CPU   "
              f"(first compile + run {first * 1e3:.0f} ms)")
    for what, j in (("wall", 0), ("CPU ", 1)):
        ratio = statistics.median(a[j] / b[j] for a, b in pairs)
        print(f"halo / Halide, {what}: {ratio:.2f} (median of {args.repeats} alternating pairs)")


if __name__ == "__main__":
    main()
