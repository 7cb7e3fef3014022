"""Concurrency: many processes compiling into one cold cache at once, and many
threads calling one compiled pipeline at once with their own buffers."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import halo as hl

# One kernel per `k`; `k` also changes the code, so different k = different
# cache entries, equal k = the same entry raced for by several processes.
_WORKER = textwrap.dedent('''
    import sys
    import numpy as np
    import halo as hl
    k, rounds = int(sys.argv[1]), int(sys.argv[2])
    x, y = hl.Var("x"), hl.Var("y")
    inp = np.arange(37 * 23, dtype=np.int32).reshape(23, 37) % (50 + k)
    b = hl.Buffer(inp)
    c = hl.BoundaryConditions.repeat_edge(b)
    g, f = hl.Func("g"), hl.Func("f")
    g[x, y] = c[x - 1, y] + c[x + 1, y] * {k} + k
    f[x, y] = g[x, y - 1] - g[x, y + 1] * 3
    g.compute_at(f, y).vectorize(x, 4)
    f.parallel(y)
    cl = np.pad(inp, 2, mode="edge")
    def gg(dy):
        rows = cl[2 + dy: 2 + dy + 23]
        return rows[:, 1:38] + rows[:, 3:40] * k + k
    want = gg(-1) - gg(1) * 3
    for _ in range(rounds):
        out = np.asarray(f.realize([37, 23]))
        assert (out == want).all(), (k, out, want)
    print("OK", k)
''').replace("{k}", "hl.i32(k)")


def _spawn(ks, cache, rounds=2):
    env = dict(os.environ, HALO_CACHE_DIR=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(k), str(rounds)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in ks]
    outs = [p.communicate(timeout=300) for p in procs]
    for k, p, (out, err) in zip(ks, procs, outs):
        assert p.returncode == 0, f"worker k={k} failed:\n{err[-3000:]}"
        assert f"OK {k}" in out


def _cache_is_clean(cache):
    left = [p for p in cache.rglob("*") if p.name.startswith((".build-", "halo-"))]
    assert not left, f"half-written cache entries left behind: {left}"
    libs = [p for p in cache.rglob("*.so")]
    for p in libs:
        assert p.stat().st_size > 0


def test_eight_processes_same_kernel_cold_cache(tmp_path):
    cache = tmp_path / "cache"
    _spawn([3] * 8, cache)
    _cache_is_clean(cache)
    assert len(list(cache.rglob("*.so"))) == 1      # compiled once, shared by all


def test_eight_processes_different_kernels_cold_cache(tmp_path):
    cache = tmp_path / "cache"
    _spawn(list(range(8)), cache)
    _cache_is_clean(cache)
    assert len(list(cache.rglob("*.so"))) == 8


def test_eight_processes_mixed_kernels_cold_cache_then_warm(tmp_path):
    cache = tmp_path / "cache"
    ks = [0, 1, 0, 1, 2, 2, 3, 0]
    _spawn(ks, cache)
    _spawn(ks, cache, rounds=1)     # warm: every process loads what others built
    _cache_is_clean(cache)
    assert len(list(cache.rglob("*.so"))) == 4


def _blur_callable():
    im = hl.ImageParam(hl.Float(32), 2, "conc_in")
    s = hl.Param(hl.Float(32), "conc_scale", 1.0)
    x, y = hl.Var("x"), hl.Var("y")
    c = hl.BoundaryConditions.repeat_edge(im)
    bx, out = hl.Func("conc_bx"), hl.Func("conc_out")
    bx[x, y] = c[x - 1, y] + c[x, y] + c[x + 1, y]
    out[x, y] = (bx[x, y - 1] + bx[x, y] + bx[x, y + 1]) * s
    bx.compute_at(out, y).vectorize(x, 8)
    out.parallel(y).vectorize(x, 8)
    return out.compile_to_callable([im, s])


def _blur_ref(a, s):
    p = np.pad(a, 1, mode="edge")
    bx = p[:, :-2] + p[:, 1:-1] + p[:, 2:]
    return (bx[:-2] + bx[1:-1] + bx[2:]) * np.float32(s)


def test_threads_call_one_compiled_pipeline_with_different_buffers():
    call = _blur_callable()
    errors = []

    def work(t):
        rng = np.random.default_rng(t)
        try:
            for i in range(25):
                h, w = 5 + (t + i) % 13, 9 + (3 * t + i) % 17
                a = rng.integers(-8, 8, size=(h, w)).astype(np.float32)
                out = np.zeros((h, w), np.float32)
                s = float(t + 1)
                call(a, s, out)
                want = _blur_ref(a, s)
                if not np.array_equal(out, want):
                    errors.append((t, i, np.abs(out - want).max()))
        except Exception as e:  # pragma: no cover - reported below
            errors.append((t, repr(e)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]


def test_threads_realize_one_func_at_once():
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("conc_f")
    f[x, y] = x * 7 - y * y
    f.parallel(y).vectorize(x, 4)
    f.realize([4, 4])   # compile once up front
    errors = []

    def work(t):
        for i in range(20):
            w, h = 3 + (t * 5 + i) % 11, 2 + (t + 2 * i) % 9
            out = np.asarray(f.realize([w, h]))
            xs, ys = np.meshgrid(np.arange(w), np.arange(h))
            if not np.array_equal(out, xs * 7 - ys * ys):
                errors.append((t, i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]


def test_threads_runtime_errors_do_not_cross_threads():
    """A failing call in one thread (input too small) must not make another
    thread's good call fail, and each failure names its own buffer."""
    call = _blur_callable()
    errors = []

    def good(t):
        for i in range(30):
            a = np.ones((6, 10), np.float32)
            out = np.zeros((6, 10), np.float32)
            try:
                call(a, 1.0, out)
            except Exception as e:
                errors.append(("good", repr(e)))
            if not np.array_equal(out, _blur_ref(a, 1.0)):
                errors.append(("good", "wrong"))

    def bad(t):
        for i in range(30):
            try:
                call(np.ones((6, 10), np.float64), 1.0, np.zeros((6, 10), np.float32))
                errors.append(("bad", "no error"))
            except hl.BufferError as e:
                if "conc_in" not in str(e):
                    errors.append(("bad", str(e)))

    threads = [threading.Thread(target=f, args=(t,)) for t in range(4) for f in (good, bad)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]
