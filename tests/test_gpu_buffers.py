"""Device buffers (Halide's host/device dirty semantics) and DLPack."""
from __future__ import annotations

import numpy as np
import pytest

import halo
from dlpack_fakes import TORCH_SKIP
from gpu_util import needs_opencl, OPENCL


def _scale(inp, k):
    x, y, xo, yo, xi, yi = (halo.Var(n) for n in "x y xo yo xi yi".split())
    f = halo.Func("scale")
    f[x, y] = inp[x, y] * k
    f.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    return f


@needs_opencl
def test_copies_are_lazy_and_follow_dirty_flags():
    t = halo.Target(OPENCL)
    a = np.arange(16 * 16, dtype=np.int32).reshape(16, 16)
    inp = halo.Buffer(a)
    assert not inp.has_device_allocation()
    inp.copy_to_device(t)
    assert inp.has_device_allocation() and not inp.host_dirty() and not inp.device_dirty()
    out = halo.Buffer(halo.Int(32), [16, 16]).device_malloc(t)
    f = _scale(inp, 2)
    f.realize(out, t)
    # the output stays on the device until the host looks at it
    assert out.device_dirty() and not out.host_dirty()
    assert np.array_equal(np.asarray(out), a * 2)        # reading syncs it back
    assert not out.device_dirty()
    # a host write marks the input dirty: the next run copies it over again
    inp[3, 2] = 1000
    assert inp.host_dirty()
    f.realize(out, t)
    expect = a * 2
    expect[2, 3] = 2000
    assert np.array_equal(np.asarray(out), expect)
    assert not inp.host_dirty()


@needs_opencl
def test_device_output_feeds_next_pipeline_without_host_copy():
    t = halo.Target(OPENCL)
    a = np.arange(8 * 8, dtype=np.int32).reshape(8, 8)
    mid = halo.Buffer(halo.Int(32), [8, 8]).device_malloc(t)
    _scale(halo.Buffer(a), 3).realize(mid, t)
    assert mid.device_dirty()
    out = halo.Buffer(halo.Int(32), [8, 8])
    _scale(mid, 5).realize(out, t)
    assert mid.device_dirty(), "the intermediate was copied to the host"
    assert np.array_equal(np.asarray(out), a * 15)
    mid.copy_to_host()
    assert np.array_equal(np.asarray(mid), a * 3)


@needs_opencl
def test_plain_numpy_outputs_are_copied_back():
    t = halo.Target(OPENCL)
    a = np.ones((8, 16), np.int32)
    res = np.zeros((8, 16), np.int32)
    _scale(halo.Buffer(a), 7).realize(halo.Buffer(res), t)
    assert (res == 7).all()


def test_set_device_dirty_without_allocation_is_an_error():
    b = halo.Buffer(halo.Int(32), [4], name="lonely")
    with pytest.raises(halo.BufferError, match="Buffer lonely has no device allocation"):
        b.set_device_dirty()


def test_dlpack_round_trip_with_numpy_shares_memory():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = halo.Buffer.from_dlpack(a)
    assert b[1, 2] == a[2, 1]
    back = np.from_dlpack(b)
    assert np.shares_memory(back, a)
    back[0, 0] = 42
    assert b[0, 0] == 42


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    t = torch.arange(20, dtype=torch.int32).reshape(4, 5)
    b = halo.Buffer.from_dlpack(t)
    x, y = halo.Var("x"), halo.Var("y")
    f = halo.Func("twice")
    f[x, y] = b[x, y] * 2
    out = f.realize([5, 4])
    back = torch.from_dlpack(out)
    assert torch.equal(back, t * 2)
    t[0, 0] = 100                                   # no copy: the Buffer sees it
    assert b[0, 0] == 100


@needs_opencl
def test_cpu_pipeline_reads_newer_device_data():
    t = halo.Target(OPENCL)
    a = np.arange(8 * 8, dtype=np.int32).reshape(8, 8)
    mid = halo.Buffer(halo.Int(32), [8, 8]).device_malloc(t)
    _scale(halo.Buffer(a), 3).realize(mid, t)
    x, y = halo.Var("x"), halo.Var("y")
    g = halo.Func("plus_one_on_cpu")
    g[x, y] = mid[x, y] + 1
    assert np.array_equal(np.asarray(g.realize([8, 8])), a * 3 + 1)
    # a CPU pipeline writing a buffer makes its host copy the newer one
    out = halo.Buffer(halo.Int(32), [8, 8]).device_malloc(t)
    g.realize(out)
    assert out.host_dirty() and not out.device_dirty()


@needs_opencl
def test_cpu_pipeline_in_place_on_a_device_buffer_reads_its_newer_data():
    """Realized into its own input whose newest data is on the device: the
    input is brought to the host before it is copied (numpy's out= rule),
    not copied stale."""
    t = halo.Target(OPENCL)
    a = np.arange(8 * 8, dtype=np.int32).reshape(8, 8)
    mid = halo.Buffer(halo.Int(32), [8, 8]).device_malloc(t)
    _scale(halo.Buffer(a), 3).realize(mid, t)
    assert mid.device_dirty()
    x, y = halo.Var("x"), halo.Var("y")
    g = halo.Func("shift_in_place")
    g[x, y] = mid[x, halo.max(y - 1, 0)] + 1
    g.realize(mid)
    expected = a * 3
    expected = expected[np.maximum(np.arange(8) - 1, 0)] + 1
    np.testing.assert_array_equal(np.asarray(mid), expected)


@needs_opencl
def test_views_of_a_device_buffer_see_its_data():
    t = halo.Target(OPENCL)
    a = np.arange(8 * 8, dtype=np.int32).reshape(8, 8)
    out = halo.Buffer(halo.Int(32), [8, 8]).device_malloc(t)
    f = _scale(halo.Buffer(a), 2)
    f.realize(out, t)
    assert np.array_equal(np.asarray(out.cropped(0, 2, 3)), (a * 2)[:, 2:5])
    f.realize(out, t)
    assert out.device_dirty()
    assert np.array_equal(np.asarray(out.reverse_axes()), (a * 2).T)
