"""DLPack in and out of `halo.Buffer`: host tensors without copies, device
tensors (CUDA, OpenCL) as the Buffer's device allocation.

Without a GPU, CUDA tensors come from `FakeDeviceTensor` (a made-up device
address that nothing may read) and halo's capsules are checked by numpy and
torch as consumers; OpenCL tensors are real cl_mem objects on PoCL.
"""
from __future__ import annotations

import builtins
import gc

import numpy as np
import pytest

import halo
from halo.errors import DLPackError
from halo.runtime import dlpack
from dlpack_fakes import (BFLOAT16, CUDA, CUDA_MANAGED, FLOAT32, INT32, OPENCL, TORCH_SKIP,
                          FakeDeviceTensor, LegacyFakeDeviceTensor, capsule_name)
from gpu_util import OPENCL as OPENCL_TARGET, needs_opencl


class CapsuleHolder:
    """A producer that hands out one ready-made capsule (what np.from_dlpack needs)."""

    def __init__(self, capsule, device=(1, 0)):
        self.capsule, self.device = capsule, device

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kwargs):
        return self.capsule


def _cuda_reason():
    try:
        from halo.runtime.cuda import get_cuda
        get_cuda()
    except halo.HaloError as e:
        return str(e)
    return None


_no_cuda = _cuda_reason()
needs_cuda = pytest.mark.skipif(_no_cuda is not None, reason=f"no CUDA device: {_no_cuda}")


# -- halo's capsules, read by independent consumers ---------------------------------------------

@pytest.mark.parametrize("versioned", [False, True])
def test_exported_capsules_are_read_by_numpy_and_torch(versioned):
    a = np.arange(24, dtype=np.int32).reshape(4, 6)[:, 1:5]       # strided: rows of 6
    def capsule():
        return dlpack.export_capsule(a.ctypes.data, (1, 0), a.dtype, a.shape, [6, 1],
                                     keep_alive=a, versioned=versioned)
    n = np.from_dlpack(CapsuleHolder(capsule()))
    assert np.shares_memory(n, a) and np.array_equal(n, a)
    assert dlpack.live_exports() == 1              # numpy holds it
    del n
    assert dlpack.live_exports() == 0              # numpy called halo's deleter
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    t = torch.from_dlpack(CapsuleHolder(capsule()))
    assert t.data_ptr() == a.ctypes.data and t.stride() == (6, 1)
    assert torch.equal(t, torch.from_numpy(np.ascontiguousarray(a)))
    del t
    assert dlpack.live_exports() == 0
    unused = capsule()
    assert dlpack.live_exports() == 1
    del unused                                     # nobody consumed it: its destructor frees
    assert dlpack.live_exports() == 0


def test_consume_reads_real_producers_layout():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    t = torch.arange(6, dtype=torch.int16).reshape(2, 3).t()        # strides (1, 3)
    imp = dlpack.consume(t)
    assert (imp.device, imp.data, imp.shape, imp.strides, imp.dtype) == \
        ("cpu:0", t.data_ptr(), (3, 2), (1, 3), np.dtype(np.int16))
    v = np.arange(10.0)[::2]
    imp = dlpack.consume(v)
    assert (imp.data, imp.shape, imp.element_strides()) == (v.ctypes.data, (5,), (2,))


# -- host tensors: no copies ----------------------------------------------------------------------

def test_numpy_strided_view_round_trip_shares_memory():
    base = np.arange(48, dtype=np.float64).reshape(6, 8)
    view = base[1:5, ::2]
    b = halo.Buffer.from_dlpack(view)
    assert (b.dim(0).extent(), b.dim(1).extent(), b.dim(0).stride(), b.dim(1).stride()) == \
        (4, 4, 2, 8)
    assert b[3, 2] == view[2, 3]
    back = np.from_dlpack(b)
    assert np.shares_memory(back, base) and back.strides == view.strides
    assert b.__dlpack_device__() == (1, 0)


def test_torch_cpu_round_trip_shares_memory():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    b = halo.Buffer.from_dlpack(t)
    back = torch.from_dlpack(b)
    assert back.data_ptr() == t.data_ptr() and back.shape == t.shape
    back[2, 1] = -1
    assert b[1, 2] == -1


# -- CUDA tensors, adopted without touching their memory -----------------------------------------

@pytest.mark.parametrize("producer", [FakeDeviceTensor, LegacyFakeDeviceTensor])
def test_cuda_tensor_becomes_the_device_allocation(producer):
    # 3 rows of 5 floats, rows padded to 8, starting 64 bytes into the allocation
    fake = producer(address=0xDEAD0000, shape=(3, 5), strides=(8, 1), dtype=FLOAT32,
                    byte_offset=64)
    b = halo.Buffer.from_dlpack(fake)
    assert fake.requests[-1]["stream"] == 1          # halo runs on the legacy default stream
    if producer is FakeDeviceTensor:
        assert fake.requests[-1]["max_version"] == (1, 0)
    assert b.type() == halo.Float(32) and b.dimensions() == 2
    assert [(b.dim(i).extent(), b.dim(i).stride()) for i in range(2)] == [(5, 1), (3, 8)]
    assert b.has_device_allocation() and b.device_dirty() and not b.host_dirty()
    assert b.__dlpack_device__() == (CUDA, 0)
    assert fake.deleted == 0
    # exporting hands out the same device memory, in the same layout
    out = dlpack.consume_capsule(b.__dlpack__(max_version=(1, 0)))
    assert (out.device, out.data, out.shape, out.strides, out.dtype) == \
        ("cuda:0", 0xDEAD0000 + 64, (3, 5), (8, 1), np.dtype(np.float32))


def test_buffer_constructor_takes_device_tensors_in_either_axis_order():
    b = halo.Buffer(FakeDeviceTensor(shape=(3, 5)), reverse_axes=False)
    assert [b.dim(i).extent() for i in range(2)] == [3, 5]
    assert b.has_device_allocation() and b.__dlpack_device__() == (CUDA, 0)
    out = dlpack.consume_capsule(b.__dlpack__())
    assert (out.shape, out.strides) == ((5, 3), (1, 5))


@pytest.mark.parametrize("versioned", [False, True])
def test_producer_capsule_is_marked_used(versioned):
    fake = FakeDeviceTensor(versioned=versioned)
    capsule = fake.__dlpack__(max_version=(1, 0))
    imp = dlpack.consume_capsule(capsule)
    assert capsule_name(capsule) == ("used_dltensor_versioned" if versioned
                                     else "used_dltensor")
    with pytest.raises(DLPackError, match="already consumed"):
        dlpack.consume_capsule(capsule)
    del capsule
    assert fake.deleted == 0                         # the used capsule left it to halo
    del imp
    assert fake.deleted == 1


def test_deleter_runs_once_when_the_buffer_dies():
    fake = FakeDeviceTensor(device=(CUDA_MANAGED, 0), dtype=INT32, shape=(4,))
    b = halo.Buffer.from_dlpack(fake)
    again = halo.Buffer(b)                           # shares the allocation
    del b
    assert fake.deleted == 0
    exported = again.__dlpack__()                    # keeps the producer's memory too
    assert again.__dlpack_device__() == (CUDA_MANAGED, 0)
    del again
    assert fake.deleted == 0
    del exported                                     # never consumed: the destructor lets go
    assert fake.deleted == 1


def test_unusable_tensors_are_refused_and_still_freed():
    fake = FakeDeviceTensor(dtype=BFLOAT16)
    with pytest.raises(DLPackError, match="no element type for DLPack dtype bfloat16"):
        halo.Buffer.from_dlpack(fake)
    neg = FakeDeviceTensor(shape=(4,), strides=(-1,))
    with pytest.raises(DLPackError, match=r"cuda:0 with negative strides \(-1,\)"):
        halo.Buffer.from_dlpack(neg)
    assert fake.deleted == 1 and neg.deleted == 1
    with pytest.raises(DLPackError, match="cannot use a tensor on device type 7"):
        halo.Buffer.from_dlpack(FakeDeviceTensor(device=(7, 0)))


def test_read_only_tensor_cannot_be_an_output():
    b = halo.Buffer.from_dlpack(FakeDeviceTensor(shape=(4,), read_only=True))
    x = halo.Var("x")
    f = halo.Func("ro_out")
    f[x] = halo.f32(x)
    with pytest.raises(halo.BufferError, match="read-only"):
        f.realize(b)


def test_export_requests_halo_cannot_meet_are_buffer_errors():
    b = halo.Buffer.from_dlpack(FakeDeviceTensor())
    with pytest.raises(builtins.BufferError, match="needs a copy, and copy=False"):
        b.__dlpack__(dl_device=(1, 0), copy=False)
    with pytest.raises(DLPackError, match="cannot copy a CUDA buffer"):
        b.__dlpack__(copy=True)
    with pytest.raises(DLPackError, match="stream=0 is ambiguous"):
        b.__dlpack__(stream=0)
    with pytest.raises(DLPackError, match="is on cuda:0, not cuda:1"):
        b.__dlpack__(dl_device=(CUDA, 1))
    host = halo.Buffer(np.zeros(3, np.float32), name="on_host")
    with pytest.raises(DLPackError, match="Buffer on_host is on cpu:0, not cuda:0"):
        host.__dlpack__(dl_device=(CUDA, 0))
    with pytest.raises(DLPackError, match="cannot be exported to opencl:0"):
        host.__dlpack__(dl_device=(OPENCL, 0))


@pytest.mark.skipif(_no_cuda is None, reason="a CUDA driver is present: this checks the "
                                              "error where there is none")
def test_reading_a_cuda_buffer_without_driver_is_a_halo_error():
    b = halo.Buffer.from_dlpack(FakeDeviceTensor())
    with pytest.raises(halo.HaloRuntimeError, match=r"data on cuda:0; using it needs halo's "
                                                    r"CUDA backend: No CUDA driver"):
        b.copy_to_host()
    with pytest.raises(halo.HaloRuntimeError, match="No CUDA driver"):
        np.asarray(b)
    assert b.device_dirty()                          # nothing was lost


# -- OpenCL tensors (real cl_mem objects on PoCL) -----------------------------------------------

def _scale(inp, k, name):
    x, y, xo, yo, xi, yi = (halo.Var(n) for n in "x y xo yo xi yi".split())
    f = halo.Func(name)
    f[x, y] = inp[x, y] * k
    f.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    return f


@needs_opencl
def test_opencl_tensor_runs_in_place_and_copies_down_lazily():
    import pyopencl as cl
    from halo.runtime.opencl import get_opencl
    be = get_opencl()
    a = np.arange(16 * 16, dtype=np.int32).reshape(16, 16)
    mem = cl.Buffer(be.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=a)
    fake = FakeDeviceTensor(address=mem.int_ptr, device=(OPENCL, 0), shape=a.shape,
                            dtype=INT32)
    b = halo.Buffer.from_dlpack(fake)
    out = _scale(b, 2, "scale_cl_in").realize([16, 16], halo.Target(OPENCL_TARGET))
    # the host copy of b was never filled: a right answer means the cl_mem was used
    assert np.array_equal(np.asarray(out), a * 2)
    assert b.device_dirty(), "the input was copied to the host"
    assert b.__dlpack_device__() == (1, 0)           # OpenCL memory is exported via the host
    assert np.array_equal(np.asarray(b), a) and not b.device_dirty()
    del b, out
    gc.collect()                                     # the Func and its pipeline hold b in cycles
    assert fake.deleted == 1


@needs_opencl
def test_cl_mem_of_another_context_is_refused():
    import pyopencl as cl
    from halo.runtime.opencl import get_opencl
    other = cl.Context([get_opencl().device])
    mem = cl.Buffer(other, cl.mem_flags.READ_WRITE, 64)
    b = halo.Buffer.from_dlpack(FakeDeviceTensor(address=mem.int_ptr, device=(OPENCL, 0),
                                                 shape=(16,), dtype=INT32))
    with pytest.raises(halo.BufferError, match="another OpenCL context than halo's"):
        b.copy_to_host()


# -- on a machine with a CUDA device ---------------------------------------------------------------

@needs_cuda
def test_cuda_buffers_pass_through_dlpack_without_copies():
    a = np.arange(32 * 16, dtype=np.float32).reshape(16, 32)
    t = halo.Target("host-cuda")
    src = halo.Buffer(a).copy_to_device(t)
    view = halo.Buffer.from_dlpack(src)              # halo as producer and consumer
    assert view.__dlpack_device__() == (CUDA, 0) and view.device_dirty()
    out = halo.Buffer(halo.Float(32), [32, 16]).device_malloc(t)
    _scale(view, 3, "scale_cuda_dl").realize(out, t)
    assert out.device_dirty()
    np.testing.assert_array_equal(np.asarray(out), a * 3)
    np.testing.assert_array_equal(np.asarray(view), a)


@needs_cuda
def test_torch_cuda_tensors_round_trip():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP)
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device for torch (a CPU build of torch)")
    tin = torch.arange(16 * 32, dtype=torch.float32, device="cuda").reshape(16, 32)
    b = halo.Buffer.from_dlpack(tin)
    out = _scale(b, 2, "scale_torch_cuda").realize([32, 16], halo.Target("host-cuda"))
    np.testing.assert_array_equal(np.asarray(out), (tin * 2).cpu().numpy())
    back = torch.from_dlpack(b)
    assert back.device.type == "cuda" and back.data_ptr() == tin.data_ptr()
