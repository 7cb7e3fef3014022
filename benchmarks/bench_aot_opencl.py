"""The exported OpenCL blur (called through ctypes) vs the JIT's OpenCL path,
same schedule, same process, same OpenCL device (PoCL's CPU device here).

    python benchmarks/bench_aot_opencl.py [--size 1024x768] [--repeats 15]

The JIT realizes into a halo Buffer (its device copy stays on the device);
the export is called on pyopencl buffers made once. Both are synchronous.
Prints min and median per call; timings are relative (a shared machine).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import halo as hl
from halo import aot
from halo.runtime.jit import DLTensor
from halo.runtime.opencl import get_opencl


def blur_gpu(w, h):
    inp = hl.ImageParam(hl.UInt(16), 2, "input")
    x, y, xo, yo, xi, yi = [hl.Var(n) for n in "x y xo yo xi yi".split()]
    bx, by = hl.Func("bx"), hl.Func("blur")
    bx[x, y] = (inp[x, y] + inp[x + 1, y] + inp[x + 2, y]) // 3
    by[x, y] = (bx[x, y] + bx[x, y + 1] + bx[x, y + 2]) // 3
    by.gpu_tile(x, y, xo, yo, xi, yi, 16, 8)
    bx.compute_root().gpu_tile(x, y, xo, yo, xi, yi, 16, 8)
    inp.set_estimates([(0, w), (0, h)])
    by.inp = inp
    return by


def cl_tensor(buf, shape, keep):
    """A uint16 DLTensor on an OpenCL buffer (kDLOpenCL)."""
    shp = (ctypes.c_int64 * len(shape))(*shape)
    t = DLTensor()
    t.data = ctypes.c_void_p(buf.int_ptr)
    t.device.device_type, t.device.device_id = 4, 0
    t.ndim = len(shape)
    t.dtype.code, t.dtype.bits, t.dtype.lanes = 1, 16, 1
    t.shape = ctypes.cast(shp, ctypes.POINTER(ctypes.c_int64))
    keep += [shp, t]
    return ctypes.byref(t)


def timed(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1024x768")
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    import pyopencl
    be = get_opencl()
    cl, mf = be.cl, be.cl.mem_flags
    tmp = Path(tempfile.mkdtemp(prefix="halo-bench-ocl-"))
    (tmp / "link").mkdir()       # -lOpenCL: the loader in the pyopencl wheel
    loader = next((Path(pyopencl.__file__).parent / ".libs").glob("libOpenCL*"))
    (tmp / "link" / "libOpenCL.so").symlink_to(loader)
    os.environ["LIBRARY_PATH"] = str(tmp / "link")
    aot.export(blur_gpu(w, h), tmp / "out", "host-opencl", outputs=("h", "c", "so"))
    so = ctypes.CDLL(str(tmp / "out" / "libblur.so"))

    img = (np.arange(w * h) % 4000).astype(np.uint16).reshape(h, w)
    ib = cl.Buffer(be.context, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=img)
    ob = cl.Buffer(be.context, mf.READ_WRITE, (w - 2) * (h - 2) * 2)
    keep = []
    ti, to = cl_tensor(ib, img.shape, keep), cl_tensor(ob, (h - 2, w - 2), keep)

    f = blur_gpu(w, h)
    f.inp.set(hl.Buffer(img))
    out = hl.Buffer(hl.UInt(16), [w - 2, h - 2])
    target = hl.Target("host-opencl")

    def exported():
        if so.blur(ti, to) != 0:
            raise RuntimeError("export failed")

    print(f"blur {w}x{h} on {be.describe()}")
    rows = {}
    for name, fn in (("JIT (realize)", lambda: f.realize(out, target)),
                     ("export (ctypes)", exported)) * 2:    # interleaved, twice
        rows.setdefault(name, []).append(timed(fn, a.repeats))
    for name, runs in rows.items():
        mn = min(r[0] for r in runs)
        med = statistics.median(r[1] for r in runs)
        print(f"  {name:<16} min {mn * 1e3:8.3f} ms   median {med * 1e3:8.3f} ms")
    res = np.empty((h - 2, w - 2), np.uint16)
    cl.enqueue_copy(be.queue, res, ob)
    print("  same result:", bool(np.array_equal(res, np.asarray(out))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
