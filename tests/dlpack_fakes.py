"""A DLPack producer of a tensor on a device this machine does not have.

`FakeDeviceTensor` hands out a capsule for a made-up device address, as
torch or CuPy would for a CUDA tensor, and counts the calls of its deleter.
Its structures are written here from dlpack.h, not taken from halo, so that
a layout mistake in halo shows. The capsule's destructor frees the tensor
only if no consumer renamed the capsule, as real producers do: a consumer
that forgets to rename it gets a second deleter call, which tests see.
"""
from __future__ import annotations

import ctypes


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int32)]


class _DType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Device), ("ndim", ctypes.c_int32),
                ("dtype", _DType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _Managed(ctypes.Structure):
    _fields_ = [("dl_tensor", _Tensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class _ManagedVersioned(ctypes.Structure):
    _fields_ = [("version", _Version), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p), ("flags", ctypes.c_uint64),
                ("dl_tensor", _Tensor)]


_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_void_p)(("PyCapsule_New", ctypes.pythonapi))
_raw_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_GetName", ctypes.pythonapi))
_name_of = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(
    ("PyCapsule_GetName", ctypes.pythonapi))
_NAMES = {n: ctypes.create_string_buffer(n) for n in (b"dltensor", b"dltensor_versioned")}

# What a real producer's manager_ctx keeps: each tensor handed out, until its deleter.
_live = {}


@_DELETER
def _delete(managed):
    producer = _live.pop(managed)[0]
    producer.deleted += 1


_raw_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


@_DELETER
def _destroy(capsule):
    name = _raw_name(capsule)
    if name in _NAMES:                      # nobody took the tensor: free it
        _delete(_raw_pointer(capsule, name))


CUDA, OPENCL, CUDA_MANAGED = 2, 4, 13
FLOAT32, INT32, BFLOAT16 = (2, 32, 1), (0, 32, 1), (4, 16, 1)


def capsule_name(capsule) -> str:
    return _name_of(capsule).decode()


class FakeDeviceTensor:
    """A producer whose tensor lives at `address` on `device` (never read)."""

    def __init__(self, address=0xDEAD0000, shape=(3, 5), strides=None, dtype=FLOAT32,
                 device=(CUDA, 0), byte_offset=0, versioned=True, read_only=False):
        self.address, self.shape, self.strides = address, tuple(shape), strides
        self.dtype, self.device, self.byte_offset = dtype, device, byte_offset
        self.versioned, self.read_only = versioned, read_only
        self.deleted = 0
        self.requests = []                  # the keyword arguments of each __dlpack__ call

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        self.requests.append({"stream": stream, "max_version": max_version})
        versioned = self.versioned and max_version is not None and max_version[0] >= 1
        m = _ManagedVersioned() if versioned else _Managed()
        nd = len(self.shape)
        shape = (ctypes.c_int64 * max(nd, 1))(*self.shape)
        t = m.dl_tensor
        t.data = self.address
        t.device.device_type, t.device.device_id = self.device
        t.ndim = nd
        t.dtype.code, t.dtype.bits, t.dtype.lanes = self.dtype
        t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
        strides = None
        if self.strides is not None:
            strides = (ctypes.c_int64 * max(nd, 1))(*self.strides)
            t.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
        t.byte_offset = self.byte_offset
        m.deleter = ctypes.cast(_delete, ctypes.c_void_p).value
        if versioned:
            m.version.major, m.version.minor = 1, 0
            m.flags = 1 if self.read_only else 0
        _live[ctypes.addressof(m)] = (self, m, shape, strides)
        name = _NAMES[b"dltensor_versioned" if versioned else b"dltensor"]
        return _new(ctypes.addressof(m), ctypes.addressof(name),
                    ctypes.cast(_destroy, ctypes.c_void_p).value)


class LegacyFakeDeviceTensor(FakeDeviceTensor):
    """A producer from before DLPack 1.0: `__dlpack__(stream)` only."""

    def __dlpack__(self, stream=None):
        return super().__dlpack__(stream=stream)


# torch is not among the test extras: its default Linux wheels bring about
# 2.5 GB of CUDA libraries. numpy (CPU) and FakeDeviceTensor (device memory)
# cover the DLPack protocol in CI; with torch installed these tests run too.
TORCH_SKIP = ("torch is not installed (not a test extra: its Linux wheels pull ~2.5 GB "
              "of CUDA libraries; numpy and the fake device tensors cover DLPack in CI)")
