#!/usr/bin/env python3
"""Scheduled workloads: halo vs Halide 21 JIT, same algorithm, same schedule, one process.

    python benchmarks/bench_schedules.py                 # all workloads, ~1 min on 2 cores
    python benchmarks/bench_schedules.py --only matmul --repeats 20
    python benchmarks/bench_schedules.py --small         # small sizes, a quick check

Every algorithm and every schedule below is written ONCE as a function of the
module (`build_*(hl, ...)`), and runs with `import halo as hl` and with
`import halide as hl`. For each (workload, schedule) row:

1. both pipelines are built and compiled; the compile time (halo: lowering +
   C codegen + gcc -O3 -march=native + dlopen, with a fresh HALO_CACHE_DIR so
   nothing is cached; Halide: compile_to_callable, LLVM JIT) is reported apart;
2. each is run once into a preallocated numpy output; Halide's result is
   checked against numpy and halo's against Halide's (exact for integer
   outputs, a relative tolerance for float32 ones) BEFORE anything is timed;
3. halo and Halide are then timed INTERLEAVED, one call of each per round,
   so that load from other work on the machine hits them alike: the median
   (--best: the fastest) of --repeats rounds after --warmup rounds, outputs
   preallocated (Callable(inputs..., out)). The numpy peer (where there is
   one) is timed alone after the workload's rows.

The throughput column is GB/s (input + output bytes / time) for the stencils
and the histogram and GFLOP/s for matmul and conv; "% limit" relates it to
this machine's STREAM-like triad bandwidth or its fp32 FMA peak, measured at
start-up by machine_limits.py. If halo rejects a schedule, fails, or computes
a different result, the row says so (with the reason) and the run goes on.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import halo  # noqa: E402
from halo.apps.blur import blur_numpy, build as build_blur_algo, make_input  # noqa: E402
import machine_limits  # noqa: E402


def import_halide():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import halide
        return halide
    except Exception:
        return None


VEC_F32 = 16      # float32 lanes of a 512-bit vector (AVX-512 host); set in main()
VEC_U16 = 32


# =========================================================================================
# Algorithms + schedules, written once for either module.
# Each build_* returns (output Func, [input params in call order]).
# =========================================================================================

# -- 1. 3x3 box blur, uint16 (halo/apps/blur.py) -------------------------------------------

def build_blur(hl, sched, size):
    inp = hl.ImageParam(hl.UInt(16), 2, "input")
    blur_y, blur_x = build_blur_algo(hl, inp)
    x, y = blur_y.args()[0], blur_y.args()[1]
    x, y = hl.Var("x"), hl.Var("y")
    xo, yo, xi, yi = hl.Var("xo"), hl.Var("yo"), hl.Var("xi"), hl.Var("yi")
    if sched == "tiled":
        # Halide's classic CPU blur schedule: 256x32 tiles, parallel over tile rows,
        # blur_x computed per tile (recomputing 2 rows per tile), both vectorized.
        blur_y.tile(x, y, xo, yo, xi, yi, 256, 32).vectorize(xi, VEC_U16 // 2).parallel(yo)
        blur_x.compute_at(blur_y, xo).vectorize(x, VEC_U16 // 2)
    else:
        raise ValueError(sched)
    return blur_y, [inp]


# -- 2. 5x5 gaussian, float32, repeat_edge, separable ------------------------------------

GAUSS_W = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def build_gauss(hl, sched, size):
    inp = hl.ImageParam(hl.Float(32), 2, "input")
    x, y = hl.Var("x"), hl.Var("y")
    clamped = hl.BoundaryConditions.repeat_edge(inp)
    bx, by = hl.Func("gauss_x"), hl.Func("gauss_y")
    w = [hl.f32(v) for v in GAUSS_W]
    bx[x, y] = (w[0] * clamped[x - 2, y] + w[1] * clamped[x - 1, y] + w[2] * clamped[x, y]
                + w[3] * clamped[x + 1, y] + w[4] * clamped[x + 2, y])
    by[x, y] = (w[0] * bx[x, y - 2] + w[1] * bx[x, y - 1] + w[2] * bx[x, y]
                + w[3] * bx[x, y + 1] + w[4] * bx[x, y + 2])
    xo, yo, xi, yi = hl.Var("xo"), hl.Var("yo"), hl.Var("xi"), hl.Var("yi")
    if sched == "tiled":
        # closest schedule without sliding window: 256x32 tiles, gauss_x per tile
        # (recomputes 4 rows of every 32), parallel over tile rows.
        by.tile(x, y, xo, yo, xi, yi, 256, 32).vectorize(xi, VEC_F32).parallel(yo)
        bx.compute_at(by, xo).vectorize(x, VEC_F32)
    elif sched == "sliding":
        # Halide's expert schedule: strips of 64 rows in parallel, gauss_x stored per
        # strip and computed per output row: Halide's sliding-window optimisation then
        # computes only the one new row of gauss_x each iteration (and folds storage).
        by.split(y, yo, yi, 64).parallel(yo).vectorize(x, VEC_F32)
        bx.store_at(by, yo).compute_at(by, yi).vectorize(x, VEC_F32)
    else:
        raise ValueError(sched)
    return by, [inp]


def gauss_numpy(img):
    w = np.array(GAUSS_W, dtype=np.float32)
    p = np.pad(img, 2, mode="edge")
    bx = sum(w[k] * p[:, k:k + img.shape[1]] for k in range(5))
    return sum(w[k] * bx[k:k + img.shape[0], :] for k in range(5)).astype(np.float32)


# -- 3. histogram, uint8 -> 256 x uint32 ---------------------------------------------------

def build_hist(hl, sched, size):
    w, h = size
    inp = hl.ImageParam(hl.UInt(8), 2, "input")
    i = hl.Var("i")
    hist = hl.Func("hist")
    hist[i] = hl.cast(hl.UInt(32), 0)
    if sched == "rfactor":
        # parallel strips (Halide tutorial 18): the rows as (row in strip, strip),
        # rfactor the strip RVar into a pure Var u: each strip makes its own
        # histogram in parallel, then they are summed, vectorized over bins.
        # (Halide would also accept split(r.y, ryo, ryi, h/16) + rfactor(ryo); halo's
        # rfactor takes only RDom RVars so far, so the RDom is written split.)
        strips = 16
        assert h % strips == 0
        r = hl.RDom([hl.Range(0, w), hl.Range(0, h // strips), hl.Range(0, strips)])
        hist[hl.cast(hl.Int(32), inp[r.x, r.y + r.z * (h // strips)])] += hl.cast(hl.UInt(32), 1)
        u = hl.Var("u")
        intm = hist.update().rfactor(r.z, u)
        intm.compute_root().update().parallel(u)
        intm.vectorize(i, VEC_F32)
        hist.vectorize(i, VEC_F32)
        # (not hist.update().vectorize(i): Halide 21's JIT code then segfaults)
        return hist, [inp]
    r = hl.RDom([hl.Range(0, w), hl.Range(0, h)])
    hist[hl.cast(hl.Int(32), inp[r.x, r.y])] += hl.cast(hl.UInt(32), 1)
    if sched == "serial":
        pass                                  # the default: one thread, row by row
    elif sched == "atomic":
        # parallel over rows with atomic increments of the one shared histogram:
        # both cores contend for the same 256 counters (bound by that, not memory).
        hist.update().atomic().parallel(r.y)
    else:
        raise ValueError(sched)
    return hist, [inp]


# -- 4. matrix multiply, float32 -----------------------------------------------------------

def build_matmul(hl, sched, size):
    n = size
    A = hl.ImageParam(hl.Float(32), 2, "A")       # numpy A[row, k]  = A(k, row)
    B = hl.ImageParam(hl.Float(32), 2, "B")       # numpy B[k, col]  = B(col, k)
    x, y = hl.Var("x"), hl.Var("y")
    k = hl.RDom([hl.Range(0, n)])
    prod, out = hl.Func("prod"), hl.Func("matmul")
    prod[x, y] = hl.f32(0)
    prod[x, y] += A[k.x, y] * B[x, k.x]
    out[x, y] = prod[x, y]
    xi, yi, yii, xy = hl.Var("xi"), hl.Var("yi"), hl.Var("yii"), hl.Var("xy")
    vec = VEC_F32
    # Halide's test/performance/matrix_multiplication.cpp schedule, with the tile
    # widened to three 512-bit vectors: a 3-vector x 4-row block of accumulators
    # (12 registers) per inner step, tiles of 48x32 outputs spread over the cores.
    out.tile(x, y, xi, yi, 3 * vec, 32)
    if sched == "fused":
        out.fuse(x, y, xy).parallel(xy)          # exactly as in the Halide test
    else:
        out.parallel(y)                          # the same, parallel over rows of tiles
    out.split(yi, yi, yii, 4).vectorize(xi, vec).unroll(xi).unroll(yii)
    prod.compute_at(out, yi).vectorize(x, vec).unroll(y)
    prod.update().reorder(x, y, k.x).vectorize(x, vec).unroll(x).unroll(y).unroll(k.x, 2)
    if sched == "packed":
        # + the sgemm trick: copy the B panel a tile needs into a dense scratch
        # buffer (B.in_()) once per tile, so the inner loop streams contiguous memory.
        B.in_().compute_at(out, x).vectorize(hl._0, vec)
    elif sched not in ("fused", "common"):
        raise ValueError(sched)
    return out, [A, B]


# -- 5. conv layer, float32: N=4, CI=32, CO=64, 64x64, 3x3 -----------------------------

def build_conv(hl, sched, size):
    N, CI, CO, W, H = size
    inp = hl.ImageParam(hl.Float(32), 4, "input")     # (c, x, y, n); numpy (n, y, x, c)
    filt = hl.ImageParam(hl.Float(32), 4, "filter")   # (co, kx, ky, ci); numpy (ci,ky,kx,co)
    bias = hl.ImageParam(hl.Float(32), 1, "bias")     # (co,)
    c, x, y, n = hl.Var("c"), hl.Var("x"), hl.Var("y"), hl.Var("n")
    r = hl.RDom([hl.Range(0, CI), hl.Range(0, 3), hl.Range(0, 3)])
    conv, relu = hl.Func("conv"), hl.Func("relu")
    conv[c, x, y, n] = bias[c]
    # as in Halide's app: the output channel is the filter's innermost dimension,
    # so the vectorized c loop reads it densely
    conv[c, x, y, n] += filt[c, r.y, r.z, r.x] * inp[r.x, x + r.y, y + r.z, n]
    relu[c, x, y, n] = hl.max(hl.f32(0), conv[c, x, y, n])
    co, ci, xo, xi = hl.Var("co"), hl.Var("ci"), hl.Var("xo"), hl.Var("xi")
    vec = VEC_F32
    if sched == "expert":
        # Halide's apps/conv_layer CPU schedule for AVX-512 (4 vectors of c x 5
        # pixels of x = 20 accumulators), without its in_() staging of filter/input.
        tile_w, tile_h = 4, 5
        relu.split(c, co, ci, vec * tile_w).split(x, xo, xi, tile_h) \
            .reorder(ci, xi, xo, y, n, co).vectorize(ci, vec).unroll(ci).unroll(xi) \
            .parallel(y).parallel(n).parallel(co)
        conv.compute_at(relu, xo).vectorize(c, vec).unroll(c).unroll(x).unroll(y) \
            .update().reorder(c, x, y, r.x, r.y, r.z, n).vectorize(c, vec) \
            .unroll(c).unroll(x).unroll(y).unroll(r.x, 2)
    else:
        raise ValueError(sched)
    return relu, [inp, filt, bias]


def conv_numpy_f32(inp, filt, bias, out):
    """The peer: float32, 9 matrix products (OpenBLAS sgemm), into `out`."""
    N, Hp, Wp, CI = inp.shape
    H, W = Hp - 2, Wp - 2
    acc = np.broadcast_to(bias, out.shape).copy()
    for ky in range(3):
        for kx in range(3):
            acc += np.tensordot(inp[:, ky:ky + H, kx:kx + W, :], filt[:, ky, kx, :],
                                axes=([3], [0]))
    np.maximum(acc, 0, out=out)


def conv_numpy(inp, filt, bias):
    N, Hp, Wp, CI = inp.shape
    CO = filt.shape[3]
    H, W = Hp - 2, Wp - 2
    acc = np.zeros((N, H, W, CO), dtype=np.float64)
    for ky in range(3):
        for kx in range(3):
            acc += np.tensordot(inp[:, ky:ky + H, kx:kx + W, :].astype(np.float64),
                                filt[:, ky, kx, :].astype(np.float64), axes=([3], [0]))
    return np.maximum(acc + bias, 0).astype(np.float32)


# =========================================================================================
# Workloads: sizes, inputs, references, metrics.
# =========================================================================================

class Workload:
    def __init__(self, name, title, build, rows, size, small, make, ref, metric, amount,
                 peer=None, peer_name=""):
        self.name, self.title, self.build, self.rows = name, title, build, rows
        self.size, self.small, self.make, self.ref = size, small, make, ref
        self.metric, self.amount = metric, amount
        self.peer, self.peer_name = peer, peer_name     # peer(ins, out): numpy's version


def _rng():
    return np.random.default_rng(0)


def make_blur(size):
    w, h = size
    img = make_input(w, h)
    return [img], np.zeros((h - 2, w - 2), np.uint16)


def make_gauss(size):
    w, h = size
    return [_rng().random((h, w), dtype=np.float32)], np.zeros((h, w), np.float32)


def make_hist(size):
    w, h = size
    return [_rng().integers(0, 256, size=(h, w), dtype=np.uint8)], np.zeros(256, np.uint32)


def make_matmul(n):
    g = _rng()
    return ([g.random((n, n), dtype=np.float32) - 0.5, g.random((n, n), dtype=np.float32) - 0.5],
            np.zeros((n, n), np.float32))


def make_conv(size):
    N, CI, CO, W, H = size
    g = _rng()
    inp = g.random((N, H + 2, W + 2, CI), dtype=np.float32) - 0.5
    filt = (g.random((CI, 3, 3, CO), dtype=np.float32) - 0.5) / 8
    bias = g.random(CO, dtype=np.float32) - 0.5
    return [inp, filt, bias], np.zeros((N, H, W, CO), np.float32)


def io_bytes(ins, out):
    return sum(a.nbytes for a in ins) + out.nbytes


WORKLOADS = [
    Workload("blur", "3x3 box blur u16", build_blur,
             [("tiled", "tile 256x32, vec, par, compute_at", True)],
             (6400, 4800), (640, 480), make_blur, lambda ins: blur_numpy(ins[0]),
             "GB/s", io_bytes),
    Workload("gauss", "5x5 gaussian f32", build_gauss,
             [("tiled", "tile 256x32 + compute_at (recomputes rows)", True),
              ("sliding", "strips of 64 rows, sliding window + fold", True)],
             (4096, 4096), (512, 512), make_gauss, lambda ins: gauss_numpy(ins[0]),
             "GB/s", io_bytes),
    Workload("hist", "histogram u8 -> u32[256]", build_hist,
             [("serial", "serial (default)", True),
              ("rfactor", "16 strips in parallel: rfactor + parallel", True),
              ("atomic", "rows in parallel: atomic() (contended)", True)],
             (4096, 4096), (512, 512), make_hist,
             lambda ins: np.bincount(ins[0].ravel(), minlength=256).astype(np.uint32),
             "GB/s", lambda ins, out: ins[0].nbytes,
             peer=lambda ins, out: np.copyto(out, np.bincount(ins[0].ravel(), minlength=256),
                                             casting="unsafe"),
             peer_name="np.bincount"),
    Workload("matmul", "matmul f32", build_matmul,
             [("fused", "tile 48x32, fuse+parallel, unroll (Halide test)", True),
              ("common", "same, parallel over tile rows", True),
              ("packed", "same + B.in_() packed per tile", True)],
             1024, 256, make_matmul, lambda ins: ins[0] @ ins[1],
             "GFLOP/s", lambda ins, out: 2.0 * ins[0].shape[0] * ins[0].shape[1] * ins[1].shape[1],
             peer=lambda ins, out: np.matmul(ins[0], ins[1], out=out),
             peer_name="np.matmul (OpenBLAS)"),
    Workload("conv", "conv layer f32", build_conv,
             [("expert", "apps/conv_layer schedule (no in_())", True)],
             (4, 32, 64, 64, 64), (1, 32, 64, 16, 16), make_conv,
             lambda ins: conv_numpy(*ins),
             "GFLOP/s", lambda ins, out: 2.0 * out.size * ins[0].shape[3] * 9,
             peer=lambda ins, out: conv_numpy_f32(*ins, out),
             peer_name="9 x np.tensordot (OpenBLAS)"),
]


# =========================================================================================
# Measurement
# =========================================================================================

def median_times(fns, repeats, warmup, budget_s=6.0):
    """{name: (seconds per call, calls timed)} for the callables `fns`, timed
    INTERLEAVED: each round calls every contender once, so that a change of
    load on the shared machine hits all of them alike. The median (or with
    --best the fastest) of the rounds after `warmup` untimed rounds; when a
    round is slow, fewer rounds (at least 3) keep to about `budget_s`."""
    t0 = time.perf_counter()
    for fn in fns.values():
        fn()
    first = time.perf_counter() - t0
    for _ in range(min(warmup - 1, int(budget_s / 4 / max(first, 1e-9)))):
        for fn in fns.values():
            fn()
    n = max(3, min(repeats, int(budget_s / max(first, 1e-9))))
    samples = {name: [] for name in fns}
    for _ in range(n):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    pick = min if BEST else statistics.median
    return {name: (pick(v), n) for name, v in samples.items()}


BEST = False


def compare(got, ref, is_float):
    """None if equal (exact for ints, relative tolerance for floats), else a reason."""
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    if not is_float:
        bad = np.count_nonzero(got != ref)
        if bad:
            idx = np.argwhere(got != ref)[0]
            return (f"{bad} of {got.size} values differ, first at {tuple(idx)}: "
                    f"{got[tuple(idx)]} vs {ref[tuple(idx)]}")
        return None
    if not np.all(np.isfinite(got)):
        return f"{np.count_nonzero(~np.isfinite(got))} non-finite values"
    scale = max(1e-30, float(np.max(np.abs(ref))))
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) / scale
    if err > 1e-4:
        idx = np.unravel_index(np.argmax(np.abs(got.astype(np.float64) - ref)), got.shape)
        return f"max error {err:.2e} of max |ref| at {tuple(idx)}: {got[idx]} vs {ref[idx]}"
    return None


def short(e, limit=70):
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    msg = f"{type(e).__name__}: {msg}"
    return msg if len(msg) <= limit else msg[:limit - 3] + "..."


class Row:
    def __init__(self, label):
        self.label = label
        self.t = {}          # "halo"/"Halide"/"numpy" -> seconds
        self.ct = {}         # compile seconds
        self.err = {}        # short failure reason
        self.n = {}


def run_one(mod_name, hl, wl, sched, size, ins, out_template, args, row, problems):
    """Build, compile, run once into a fresh output; returns the output or None."""
    stage = "build"
    try:
        f, params = wl.build(hl, sched, size)
        stage = "compile"
        t0 = time.perf_counter()
        if mod_name == "Halide":
            c = hl.Pipeline(f).compile_to_callable(params, hl.get_jit_target_from_environment())
        else:
            c = halo.Pipeline(f).compile_to_callable(params)
        row.ct[mod_name] = time.perf_counter() - t0
        stage = "run"
        out = np.zeros_like(out_template)
        c(*ins, out)
        return c, out
    except Exception as e:
        row.err[mod_name] = f"{stage}: {short(e)}"
        problems.append((f"{wl.name}/{sched}", mod_name, stage, e, traceback.format_exc()))
        return None, None


def bench_workload(wl, hl_, args, limits, problems):
    size = wl.small if args.small else wl.size
    ins, out_template = wl.make(size)
    is_float = out_template.dtype.kind == "f"
    ref = wl.ref(ins)
    amount = wl.amount(ins, out_template)
    peer = None
    if wl.peer is not None:            # numpy/OpenBLAS, the same output checked first
        p_out = np.zeros_like(out_template)
        wl.peer(ins, p_out)
        bad = compare(p_out, ref, is_float)
        if bad:
            problems.append((wl.name, "numpy", "check", bad, ""))
        else:
            peer = lambda: wl.peer(ins, p_out)   # noqa: E731
    rows = []
    for sched, label, _ in wl.rows:
        row = Row(label)
        rows.append(row)
        fns, h_out = {}, None
        if hl_ is not None:
            hc, h_out = run_one("Halide", hl_, wl, sched, size, ins, out_template, args, row,
                                problems)
            if h_out is not None:
                bad = compare(h_out, ref, is_float)
                if bad:
                    row.err["Halide"] = f"differs from numpy: {bad}"
                    problems.append((f"{wl.name}/{sched}", "Halide", "check", bad, ""))
                else:
                    h_buf = np.zeros_like(out_template)
                    fns["Halide"] = lambda hc=hc, h_buf=h_buf: hc(*ins, h_buf)
        else:
            row.err["Halide"] = "Halide not importable"
        if not args.no_halo:
            c, o = run_one("halo", halo, wl, sched, size, ins, out_template, args, row, problems)
            if o is not None:
                base, what = (h_out, "Halide") if h_out is not None else (ref, "numpy")
                bad = compare(o, base, is_float)
                if bad:
                    row.err["halo"] = f"WRONG (vs {what}): {bad}"
                    problems.append((f"{wl.name}/{sched}", "halo", "check", bad, ""))
                else:
                    o_buf = np.zeros_like(out_template)
                    fns["halo"] = lambda c=c, o_buf=o_buf: c(*ins, o_buf)
        for who, (t, n) in median_times(fns, args.repeats, args.warmup).items():
            row.t[who], row.n[who] = t, n
    if peer is not None and rows:
        # timed apart, after the rows: OpenBLAS's threads spin for a while
        # after each call and would slow whoever runs next in a round
        (t, n), = median_times({"numpy": peer}, args.repeats, args.warmup).values()
        rows[0].t["numpy"], rows[0].n["numpy"] = t, n
    return size, amount, rows


# =========================================================================================
# Output
# =========================================================================================

def fmt_size(wl, size):
    if wl.name == "matmul":
        return f"{size}^3"
    if wl.name == "conv":
        N, CI, CO, W, H = size
        return f"N{N} CI{CI} CO{CO} {W}x{H} 3x3"
    return f"{size[0]}x{size[1]}"


def print_table(results, limits, args):
    """The results as one markdown table, failures listed below it."""
    lims = {"GB/s": limits and limits["triad_f32_best"],
            "GFLOP/s": limits and limits["fma_f32_gflops"]}
    lim_name = {"GB/s": "triad", "GFLOP/s": "FMA peak"}

    def cell(v, fmt):
        return format(v, fmt) if v is not None else "-"

    print()
    print("| workload | schedule | halo ms | Halide ms | halo/Halide | numpy ms | "
          "halo thru | Halide thru | % limit halo / Halide | compile s halo / Halide |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes = []
    for wl, size, amount, rows in results:
        lim = lims[wl.metric]

        def thru(t):
            return None if t is None else amount / t / 1e9

        def pct(g):
            return None if (g is None or not lim) else 100 * g / lim

        for i, row in enumerate(rows):
            th, tH, tn = row.t.get("halo"), row.t.get("Halide"), row.t.get("numpy")
            ratio = th / tH if (th is not None and tH is not None) else None
            ht, Ht = thru(th), thru(tH)
            name = f"{wl.title} {fmt_size(wl, size)}" if i == 0 else ""
            np_cell = cell(tn and tn * 1e3, ".2f")
            if i == 0 and wl.peer_name and tn is not None:
                np_cell += f" ({wl.peer_name})"
            ct = " / ".join(cell(row.ct.get(w), ".2f") for w in ("halo", "Halide"))
            print(f"| {name} | {row.label} | {cell(th and th * 1e3, '.2f')} | "
                  f"{cell(tH and tH * 1e3, '.2f')} | {cell(ratio, '.2f')} | {np_cell} | "
                  f"{cell(ht, '.1f')} {wl.metric} | {cell(Ht, '.1f')} {wl.metric} | "
                  f"{cell(pct(ht), '.0f')} / {cell(pct(Ht), '.0f')} | {ct} |")
            for who in ("halo", "Halide"):
                if who in row.err:
                    notes.append(f"{wl.name} / {row.label}: {who} FAILED: {row.err[who]}")
    if limits:
        print(f"\n% limit: of the {lim_name['GB/s']} bandwidth "
              f"({limits['triad_f32_best']:.1f} GB/s) or the fp32 {lim_name['GFLOP/s']} "
              f"({limits['fma_f32_gflops']:.0f} GFLOP/s) measured by machine_limits.py.")
    for n in notes:
        print(f"- {n}")


def load():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def machine_context(hl_, limits):
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    model = platform.machine()
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
    print(f"  {platform.system()} {platform.release()}; Python {platform.python_version()}; "
          f"numpy {np.__version__}")
    try:
        from halo.runtime.compiler import compiler_identity, find_compiler
        cc = compiler_identity(tuple(find_compiler()))
    except Exception as e:
        cc = f"unknown ({e})"
    print(f"  halo {halo.__version__}, target {halo.get_jit_target_from_environment()}, cc: {cc}")
    if hl_ is not None:
        try:
            from importlib.metadata import version
            hver = version("halide")
        except Exception:
            hver = "?"
        print(f"  Halide {hver}, JIT target {hl_.get_jit_target_from_environment()}")
    else:
        print("  Halide: not importable - its columns are empty")
    if limits:
        print(f"  limits (machine_limits.py): {machine_limits.describe(limits)}")
    else:
        print("  limits: not measured")


def main(argv=None):
    global VEC_F32, VEC_U16, BEST
    names = [w.name for w in WORKLOADS]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=names, action="append",
                    help="run only this workload (repeatable)")
    ap.add_argument("--repeats", type=int, default=15, help="timed calls per median (15)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls first (3)")
    ap.add_argument("--small", action="store_true", help="small sizes (a quick check)")
    ap.add_argument("--no-halo", action="store_true", help="time Halide only")
    ap.add_argument("--no-limits", action="store_true", help="skip machine_limits")
    ap.add_argument("--best", action="store_true",
                    help="report the fastest call instead of the median")
    ap.add_argument("--traceback", action="store_true", help="print full tracebacks of failures")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for halo (OMP_NUM_THREADS) and Halide (HL_NUM_THREADS); "
                         "--threads 1 compares the code alone, without the threading, "
                         "which is steadier on a loaded machine")
    args = ap.parse_args(argv)
    BEST = args.best
    if args.threads:       # before libgomp and Halide's thread pool start
        os.environ["OMP_NUM_THREADS"] = os.environ["HL_NUM_THREADS"] = str(args.threads)

    hl_ = import_halide()
    if hl_ is not None:
        t = hl_.get_jit_target_from_environment()
        nat = t.natural_vector_size(hl_.Float(32))
        VEC_F32, VEC_U16 = nat, 2 * nat
    t_start = time.perf_counter()
    limits = None
    if not args.no_limits:
        try:
            limits = machine_limits.measure(reps=20)
        except Exception as e:
            print(f"machine_limits failed: {e}")
    machine_context(hl_, limits)
    print(f"  load average before: {load()}  (anything above ~0 is other work sharing "
          f"the cores: OpenMP-parallel halo code suffers most)")
    print(f"  timing: {'min' if BEST else 'median'} of {args.repeats} interleaved rounds after "
          f"{args.warmup} warm-up rounds, outputs preallocated; vector width {VEC_F32} x f32; "
          f"threads: {args.threads or 'all'}")

    cache = tempfile.TemporaryDirectory(prefix="halo-bench-sched-")
    os.environ["HALO_CACHE_DIR"] = cache.name       # cold compiles: nothing cached
    results, problems = [], []
    for wl in WORKLOADS:
        if args.only and wl.name not in args.only:
            continue
        t0 = time.perf_counter()
        size, amount, rows = bench_workload(wl, hl_, args, limits, problems)
        results.append((wl, size, amount, rows))
        print(f"  [{wl.name}: {time.perf_counter() - t0:.1f} s]", flush=True)
    print_table(results, limits, args)
    if problems:
        print("\nproblems:")
        for where, who, stage, e, tb in problems:
            print(f"  {where} [{who}, {stage}]: {type(e).__name__ if isinstance(e, BaseException) else ''}"
                  f" {str(e).strip()[:400]}")
            if args.traceback and tb:
                print("    " + tb.replace("\n", "\n    "))
    print(f"\nload average after: {load()}")
    print(f"total benchmark time {time.perf_counter() - t_start:.1f} s")
    cache.cleanup()


if __name__ == "__main__":
    main()
