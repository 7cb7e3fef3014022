"""GPU schedules on OpenCL (PoCL's CPU device in CI): every pipeline is
compared with the interpreter and, where it runs, Halide's OpenCL target."""
from __future__ import annotations

import numpy as np
import pytest

import halo
from gpu_util import gpu_check, needs_opencl, OPENCL

RNG = np.random.RandomState(7)
IMG_U16 = RNG.randint(0, 4000, (37, 45)).astype(np.uint16)
IMG_F32 = RNG.rand(33, 41).astype(np.float32)
IMG_U8 = RNG.randint(0, 256, (24, 30)).astype(np.uint8)


def _vars(hl, names):
    return [hl.Var(n) for n in names.split()]


# -- pipelines (build(hl, *inputs) -> Func), shared with test_gpu_cuda.py --------------

def pointwise_tile_2d(hl, inp):
    x, y, xo, yo, xi, yi = _vars(hl, "x y xo yo xi yi")
    f = hl.Func("f")
    f[x, y] = hl.cast(hl.Int(32), inp[x, y]) * 3 - x + y
    f.gpu_tile(x, y, xo, yo, xi, yi, 8, 4)
    return f


def tile_1d_guard(hl, inp):
    x, xi = _vars(hl, "x xi")
    f = hl.Func("f")
    f[x] = hl.cast(hl.Float(32), x) * 0.5
    f.gpu_tile(x, xi, 16, hl.TailStrategy.GuardWithIf)
    return f


def tile_3d(hl, inp):
    x, y, z, tx, ty, tz = _vars(hl, "x y z tx ty tz")
    f = hl.Func("f")
    f[x, y, z] = x + 10 * y + 100 * z
    f.gpu_tile(x, y, z, tx, ty, tz, 4, 4, 2)
    return f


def blur_shared(hl, inp):
    """A 3x3 box blur; the horizontal pass per block in shared memory."""
    x, y, xo, yo, xi, yi = _vars(hl, "x y xo yo xi yi")
    bx, by = hl.Func("bx"), hl.Func("by")
    bx[x, y] = (inp[x, y] + inp[x + 1, y] + inp[x + 2, y]) // 3
    by[x, y] = (bx[x, y] + bx[x, y + 1] + bx[x, y + 2]) // 3
    by.gpu_tile(x, y, xo, yo, xi, yi, 16, 8)
    bx.compute_at(by, xo).gpu_threads(x, y).store_in(hl.MemoryType.GPUShared)
    return by


def per_thread_register(hl, inp):
    """A producer computed per thread (compute_at a thread loop)."""
    x, y, xo, yo, xi, yi = _vars(hl, "x y xo yo xi yi")
    p, c = hl.Func("p"), hl.Func("c")
    p[x, y] = inp[x, y] * 2.0
    c[x, y] = p[x, y] + p[x + 1, y]
    c.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    p.compute_at(c, xi).store_in(hl.MemoryType.Register)
    return c


def math_and_boundary(hl, inp):
    x, y, xo, yo, xi, yi = _vars(hl, "x y xo yo xi yi")
    clamped = hl.BoundaryConditions.repeat_edge(inp)
    f = hl.Func("f")
    v = clamped[x - 2, y + 1]
    f[x, y] = hl.sqrt(v) + hl.exp(-v) + hl.floor(v * 7.0) / 3.0 + hl.select(v > 0.5, 1.0, -1.0)
    f.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    return f


def int_semantics(hl, inp):
    """Euclidean division/modulo, uint8 wrap, shifts, min/max, abs."""
    x, y, xo, yo, xi, yi = _vars(hl, "x y xo yo xi yi")
    f = hl.Func("f")
    a = hl.cast(hl.Int(32), inp[x, y]) - 128
    b = x - 7
    w = hl.cast(hl.UInt(8), inp[x, y]) + hl.cast(hl.UInt(8), 200)
    f[x, y] = a / b + a % (y - 5) + hl.cast(hl.Int(32), w) + (a >> 2) + \
        hl.cast(hl.Int(32), hl.absd(a, b)) + hl.min(a, b) * hl.max(x, 3)
    f.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    return f


def update_stages(hl, inp):
    x, xo, xi = _vars(hl, "x xo xi")
    r = hl.RDom([(0, 5)])
    f = hl.Func("f")
    f[x] = hl.cast(hl.Int(32), inp[x, 0])
    f[x] += r.x * hl.cast(hl.Int(32), inp[x, r.x])
    f[x] = f[x] * 2
    f.gpu_tile(x, xo, xi, 8)
    f.update(0).gpu_tile(x, xo, xi, 16)
    f.update(1).gpu_tile(x, xo, xi, 4)
    return f


def single_thread_reduction(hl, inp):
    x = hl.Var("x")
    r = hl.RDom([(0, 20)])
    s = hl.Func("s")
    s[x] = 0
    s[r.x % 4] += hl.cast(hl.Int(32), inp[r.x, 1])
    s.gpu_single_thread()
    s.update(0).gpu_single_thread()
    return s


def mixed_host_device(hl, inp):
    """GPU producer -> CPU stage -> GPU consumer: data moves both ways."""
    x, y, xo, yo, xi, yi = _vars(hl, "x y xo yo xi yi")
    f, g, h = hl.Func("f"), hl.Func("g"), hl.Func("h")
    f[x, y] = inp[x, y] * 2.0
    g[x, y] = f[x, y] + f[x + 1, y]
    h[x, y] = g[x, y] - 1.0
    f.compute_root().gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    g.compute_root()
    h.gpu_tile(x, y, xi, yi, 16, 4)
    return h


def gpu_blocks_threads(hl, inp):
    x, y, xo, xi = _vars(hl, "x y xo xi")
    f = hl.Func("f")
    f[x, y] = hl.cast(hl.UInt(16), inp[x, y]) * 3
    f.split(x, xo, xi, 8).gpu_blocks(xo, y).gpu_threads(xi)
    return f


def gpu_call_and_lanes(hl, inp):
    x, y, xo, xi = _vars(hl, "x y xo xi")
    f = hl.Func("f")
    f[x, y] = inp[x, y] + 1
    f.split(x, xo, xi, 4).gpu(xo, xi)
    g = hl.Func("g")
    g[x, y] = f[x, y] * 2
    f.compute_root()
    g.split(x, xo, xi, 8).gpu_blocks(xo).gpu_lanes(xi)
    return g


def tuple_output(hl, inp):
    x, y, xo, yo, xi, yi = _vars(hl, "x y xo yo xi yi")
    f = hl.Func("f")
    f[x, y] = (inp[x, y] + 1, hl.cast(hl.Float(32), inp[x, y]) * 0.25)
    f.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    return f


def histogram_atomic(hl, inp):
    x, xo, xi = _vars(hl, "x xo xi")
    h = hl.Func("hist")
    h[x] = 0
    r = hl.RDom([(0, 30), (0, 24)])
    h[hl.cast(hl.Int(32), inp[r.x, r.y]) // 16] += 1
    h.gpu_tile(x, xo, xi, 16)
    rxo, ryo, rxi, ryi = (hl.RVar(n) for n in ("rxo", "ryo", "rxi", "ryi"))
    h.update(0).atomic().gpu_tile(r.x, r.y, rxo, ryo, rxi, ryi, 8, 4)
    return h


# (build, sizes, inputs, tolerance, compare with Halide)
CASES = {
    "pointwise_tile_2d": (pointwise_tile_2d, [40, 30], [IMG_U16], 0, True),
    "tile_1d_guard": (tile_1d_guard, [45], [IMG_U16], 0, True),
    "tile_3d": (tile_3d, [9, 7, 5], [IMG_U16], 0, True),
    "blur_shared": (blur_shared, [41, 32], [IMG_U16], 0, True),
    "per_thread_register": (per_thread_register, [32, 24], [IMG_F32], 0, True),
    "math_and_boundary": (math_and_boundary, [37, 29], [IMG_F32], 1e-5, False),
    "int_semantics": (int_semantics, [30, 24], [IMG_U8], 0, True),
    "update_stages": (update_stages, [16], [IMG_U8], 0, True),
    "single_thread_reduction": (single_thread_reduction, [4], [IMG_U8], 0, True),
    "mixed_host_device": (mixed_host_device, [32, 24], [IMG_F32], 1e-6, True),
    "gpu_blocks_threads": (gpu_blocks_threads, [24, 20], [IMG_U8], 0, True),
    "gpu_call_and_lanes": (gpu_call_and_lanes, [24, 20], [IMG_U8], 0, False),
    "tuple_output": (tuple_output, [16, 16], [IMG_U8], 0, True),
    "histogram_atomic": (histogram_atomic, [16], [IMG_U8], 0, True),
}


@needs_opencl
@pytest.mark.parametrize("name", sorted(CASES))
def test_opencl_matches_interpreter_and_halide(name):
    build, sizes, inputs, tol, with_halide = CASES[name]
    gpu_check(build, sizes, inputs, rtol=tol, atol=tol, halide_oracle=with_halide)


# -- errors ----------------------------------------------------------------------------------

def _tiled(sx, sy):
    x, y, xo, yo, xi, yi = _vars(halo, "x y xo yo xi yi")
    f = halo.Func("tiled")
    f[x, y] = x + y
    f.gpu_tile(x, y, xo, yo, xi, yi, sx, sy)
    return f


def test_gpu_schedule_needs_a_gpu_target():
    with pytest.raises(halo.CompileError, match=r"Func tiled is scheduled on the GPU.*"
                                                r"target host has no GPU feature.*host-opencl"):
        _tiled(8, 8).realize([16, 16], halo.Target("host"))


def test_too_many_threads_per_block_names_func_and_limit():
    with pytest.raises(halo.CompileError, match=r"Func tiled uses 4096 GPU threads per block "
                                                r"\(64 x 64\).*limit of 1024"):
        _tiled(64, 64).realize([128, 128], halo.Target(OPENCL))


def test_blocks_inside_threads_is_an_error():
    x, y = halo.Var("x"), halo.Var("y")
    f = halo.Func("nested")
    f[x, y] = x * y
    f.gpu_blocks(x).gpu_threads(y)          # y is the outer loop: blocks inside threads
    with pytest.raises(halo.CompileError, match=r"Func nested: GPU block loop nested\.s0\.x is "
                                                r"nested inside a GPU thread loop.*reorder"):
        f.realize([8, 8], halo.Target(OPENCL))


def test_threads_without_blocks_is_an_error():
    x, y = halo.Var("x"), halo.Var("y")
    g = halo.Func("lonely")
    g[x, y] = x * y
    g.gpu_threads(x)
    # (the loop's name is the Func's unique one: lonely$1 after another "lonely")
    with pytest.raises(halo.CompileError, match=r"Func lonely: GPU thread loop lonely(\$\d+)?\.s0\.x "
                                                r"is not inside a GPU block loop"):
        g.realize([8, 8], halo.Target(OPENCL))


def test_register_memory_at_block_level_is_an_error():
    x, y, xo, yo, xi, yi = _vars(halo, "x y xo yo xi yi")
    p, c = halo.Func("prod"), halo.Func("cons")
    p[x, y] = x + y
    c[x, y] = p[x, y] + p[x + 1, y]
    c.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    p.compute_at(c, xo).gpu_threads(x, y).store_in(halo.MemoryType.Register)
    with pytest.raises(halo.CompileError, match=r"Func prod is stored in Register memory"):
        c.realize([16, 16], halo.Target(OPENCL))


def test_gpu_directive_argument_errors():
    x = halo.Var("x")
    f = halo.Func("f")
    f[x] = x
    with pytest.raises(halo.CompileError, match=r"could not find dimension 'q'"):
        f.gpu_blocks(halo.Var("q"))
    with pytest.raises(halo.CompileError, match=r"gpu_tile\(\) takes"):
        f.gpu_tile(x, 8)
    with pytest.raises(halo.CompileError, match=r"store_in\(\) needs an hl.MemoryType"):
        f.store_in("Nowhere")


# -- targets and schedule files ---------------------------------------------------------------

def test_targets_with_gpu_features(monkeypatch):
    for spec, feature in (("host-opencl", "opencl"), ("host-cuda", "cuda")):
        t = halo.Target(spec)
        assert t.has_gpu_feature() and t.has_feature(feature)
    assert not halo.Target("host").has_gpu_feature()
    monkeypatch.setenv("HL_JIT_TARGET", "host-opencl")
    assert halo.get_jit_target_from_environment().has_feature("opencl")


@needs_opencl
def test_hl_jit_target_selects_opencl(monkeypatch):
    monkeypatch.setenv("HL_JIT_TARGET", "host-opencl")
    f = _tiled(8, 8)
    out = np.asarray(f.realize([16, 12]))
    assert np.array_equal(out, np.add.outer(np.arange(12), np.arange(16)))


def test_gpu_schedules_round_trip_through_files(tmp_path):
    x, y, xo, yo, xi, yi = _vars(halo, "x y xo yo xi yi")

    def make():
        inp = halo.ImageParam(halo.UInt(16), 2, "inp")
        bx, by = halo.Func("bx"), halo.Func("by")
        bx[x, y] = inp[x, y] + inp[x + 1, y]
        by[x, y] = bx[x, y] + bx[x, y + 1]
        return bx, by

    bx, by = make()
    by.gpu_tile(x, y, xo, yo, xi, yi, 16, 8, halo.TailStrategy.RoundUp)
    bx.compute_at(by, xo).gpu_threads(x, y).store_in(halo.MemoryType.GPUShared)
    p = halo.Pipeline(by)
    path = p.save_schedule(tmp_path, target="host-opencl")
    text = p.schedule_source()
    assert "by.gpu_tile(x, y, xo, yo, xi, yi, 16, 8, hl.TailStrategy.RoundUp)" in text
    assert "bx.gpu_threads(x, y)" in text and "store_in('GPUShared')" in text
    bx2, by2 = make()
    p2 = halo.Pipeline(by2)
    p2.apply_schedule(path)
    assert p2.schedule_source() == text
    assert by2._f.definitions[0].schedule.dims[0].kind.value == "gpu_thread"
    assert bx2._f.schedule.memory_type == halo.MemoryType.GPUShared


def test_halo_show_prints_opencl_and_cuda_kernels(tmp_path):
    from click.testing import CliRunner
    from halo.cli import main
    src = tmp_path / "gpipe.py"
    src.write_text(
        "import halo as hl\n"
        "def blur():\n"
        "    x, y, xo, yo, xi, yi = [hl.Var(n) for n in 'x y xo yo xi yi'.split()]\n"
        "    inp = hl.ImageParam(hl.UInt(16), 2, 'inp')\n"
        "    bx, by = hl.Func('bx'), hl.Func('blur_gpu')\n"
        "    bx[x, y] = inp[x, y] + inp[x + 1, y]\n"
        "    by[x, y] = bx[x, y] + bx[x, y + 1]\n"
        "    by.gpu_tile(x, y, xo, yo, xi, yi, 16, 8)\n"
        "    bx.compute_at(by, xo).gpu_threads(x, y)\n"
        "    return by\n")
    r = CliRunner().invoke(main, ["show", f"{src}:blur", "--target", "host-opencl",
                                  "--stage", "opencl"])
    assert r.exit_code == 0, r.output
    assert "__kernel void" in r.output and "__local" in r.output and "barrier(" in r.output
    r = CliRunner().invoke(main, ["show", f"{src}:blur", "--target", "host-cuda",
                                  "--stage", "cuda"])
    assert r.exit_code == 0, r.output
    assert '__global__ void' in r.output and "__syncthreads()" in r.output
