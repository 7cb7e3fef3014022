"""DLPack capsules for device memory: taking a producer's tensor without a
copy, and handing a device buffer out the same way.

Host tensors go through numpy (`np.from_dlpack`, `ndarray.__dlpack__`);
this module covers what numpy cannot hold: a `DLManagedTensor` (or the
versioned `DLManagedTensorVersioned` of DLPack 1.x) whose data pointer is a
CUDA address or an OpenCL `cl_mem`.

* `consume(obj)` calls `obj.__dlpack__` as the Python array API specifies
  (`stream`, then `max_version`), renames the capsule `used_dltensor...` so
  that its destructor leaves the tensor alone, and returns an
  `ImportedTensor`: where the data is and how it is laid out, plus the
  producer's deleter, which runs exactly once, when the ImportedTensor dies.
* `export_capsule(...)` builds a capsule for a device pointer; halo's own
  deleter drops the references that kept the memory alive, and the capsule's
  destructor calls it when no consumer took the capsule.

Shapes and strides are in numpy order (outermost first), strides in
elements, as in DLPack and halo's AOT ABI.
"""
from __future__ import annotations

import ctypes
import threading
import weakref

import numpy as np

from ..errors import DLPackError
from .jit import DLTensor

# DLDeviceType values (dlpack.h)
CPU, CUDA, CUDA_HOST, OPENCL, CUDA_MANAGED = 1, 2, 3, 4, 13
DEVICE_NAMES = {CPU: "cpu", CUDA: "cuda", CUDA_HOST: "cuda_host", OPENCL: "opencl",
                CUDA_MANAGED: "cuda_managed"}
CUDA_DEVICES = (CUDA, CUDA_MANAGED)

READ_ONLY_FLAG = 1 << 0           # DLPACK_FLAG_BITMASK_READ_ONLY
VERSION = (1, 0)                  # the DLPack version halo writes and reads

DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p), ("flags", ctypes.c_uint64),
                ("dl_tensor", DLTensor)]


def device_name(device_type: int, device_id: int = 0) -> str:
    return f"{DEVICE_NAMES.get(int(device_type), f'device type {int(device_type)}')}:{device_id}"


# -- the capsule C API (private prototypes: ctypes.pythonapi's are shared) ------------------

def _capi(name, restype, *argtypes):
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


_capsule_name = _capi("PyCapsule_GetName", ctypes.c_char_p, ctypes.py_object)
_capsule_pointer = _capi("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object,
                         ctypes.c_char_p)
_capsule_set_name = _capi("PyCapsule_SetName", ctypes.c_int, ctypes.py_object, ctypes.c_void_p)
_capsule_new = _capi("PyCapsule_New", ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p,
                     ctypes.c_void_p)
# the destructor gets the capsule while it is being freed: a raw pointer, no refcounting
_raw_capsule_name = _capi("PyCapsule_GetName", ctypes.c_char_p, ctypes.c_void_p)
_raw_capsule_pointer = _capi("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_char_p)

# A capsule keeps the char* of its name: these buffers live as long as the process.
_NAMES = {n: ctypes.create_string_buffer(n) for n in
          (b"dltensor", b"used_dltensor", b"dltensor_versioned", b"used_dltensor_versioned")}


def _keep_forever(obj):
    """C code may call this callback at any time, even late in interpreter
    shutdown: never let its thunk be freed."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    return obj


# -- consuming -------------------------------------------------------------------------------

_DTYPES = {(0, 8): np.int8, (0, 16): np.int16, (0, 32): np.int32, (0, 64): np.int64,
           (1, 8): np.uint8, (1, 16): np.uint16, (1, 32): np.uint32, (1, 64): np.uint64,
           (2, 16): np.float16, (2, 32): np.float32, (2, 64): np.float64, (6, 8): np.bool_}
_CODE_NAMES = {0: "int", 1: "uint", 2: "float", 3: "opaque handle", 4: "bfloat",
               5: "complex", 6: "bool"}


class ImportedTensor:
    """A tensor taken from a DLPack producer: device, address, layout.

    `data` is the address of the first element (the DLTensor's data plus
    byte_offset) for CUDA; for OpenCL it is the `cl_mem` handle and
    `byte_offset` stays separate (a cl_mem cannot be offset). The producer's
    deleter runs once, when this object is freed."""

    def __init__(self, managed: int, deleter: int, tensor: DLTensor, read_only: bool):
        self.device_type = int(tensor.device.device_type)
        self.device_id = int(tensor.device.device_id)
        nd = int(tensor.ndim)
        key = (int(tensor.dtype.code), int(tensor.dtype.bits))
        if int(tensor.dtype.lanes) != 1 or key not in _DTYPES:
            lanes = f"x{tensor.dtype.lanes}" if tensor.dtype.lanes != 1 else ""
            what = f"{_CODE_NAMES.get(key[0], f'type code {key[0]}')}{key[1]}{lanes}"
            _release(deleter, managed)
            raise DLPackError(f"from_dlpack: halo has no element type for DLPack dtype {what}")
        self.dtype = np.dtype(_DTYPES[key])
        self.shape = tuple(int(tensor.shape[i]) for i in range(nd))
        self.strides = (tuple(int(tensor.strides[i]) for i in range(nd))
                        if tensor.strides else None)
        base = int(tensor.data or 0)
        self.byte_offset = int(tensor.byte_offset)
        if self.device_type == OPENCL:
            self.data = base
        else:
            self.data, self.byte_offset = base + self.byte_offset, 0
        self.read_only = read_only
        self._finalizer = weakref.finalize(self, _release, deleter, managed)
        self._finalizer.atexit = False     # the producer's library may be gone by then

    @property
    def device(self) -> str:
        return device_name(self.device_type, self.device_id)

    def element_strides(self) -> tuple:
        """Strides in elements, numpy order (compact row-major when DLPack gave none)."""
        if self.strides is not None:
            return self.strides
        out, acc = [], 1
        for n in reversed(self.shape):
            out.append(acc)
            acc *= n
        return tuple(reversed(out))


def _release(deleter: int, managed: int):
    if deleter:
        DELETER(deleter)(managed)


def consume(obj, stream=None) -> ImportedTensor:
    """Take `obj`'s tensor through `obj.__dlpack__` (no copy)."""
    try:
        capsule = obj.__dlpack__(stream=stream, max_version=VERSION)
    except TypeError:       # a producer from before DLPack 1.0 (no max_version)
        capsule = obj.__dlpack__(stream=stream)
    return consume_capsule(capsule)


def consume_capsule(capsule) -> ImportedTensor:
    """An ImportedTensor for a `dltensor` or `dltensor_versioned` capsule,
    which is marked used (its destructor no longer frees the tensor)."""
    try:
        name = _capsule_name(capsule)
    except ValueError:
        raise DLPackError(f"from_dlpack: __dlpack__ returned {type(capsule).__name__}, not a "
                          f"DLPack capsule") from None
    if name == b"dltensor_versioned":
        managed = _capsule_pointer(capsule, name)
        m = DLManagedTensorVersioned.from_address(managed)
        if m.version.major != VERSION[0]:
            # the layout past `version` may differ: leave the tensor to the capsule
            raise DLPackError(f"from_dlpack: the producer wrote DLPack "
                              f"{m.version.major}.{m.version.minor}; halo reads "
                              f"{VERSION[0]}.x")
        tensor, read_only = m.dl_tensor, bool(m.flags & READ_ONLY_FLAG)
    elif name == b"dltensor":
        managed = _capsule_pointer(capsule, name)
        m = DLManagedTensor.from_address(managed)
        tensor, read_only = m.dl_tensor, False
    else:
        state = "was already consumed" if name and name.startswith(b"used_") else \
            f"is named {name!r}"
        raise DLPackError(f"from_dlpack: the DLPack capsule {state}; a capsule can be "
                          f"consumed only once")
    _capsule_set_name(capsule, ctypes.addressof(_NAMES[b"used_" + name]))
    return ImportedTensor(managed, m.deleter or 0, tensor, read_only)


def host_mirror(t: ImportedTensor) -> np.ndarray:
    """A host array with the tensor's shape, dtype and strides, for a device
    tensor's host copy. Its memory is reserved but left untouched (and
    uninitialised): the device holds the data until a copy to the host."""
    strides = t.element_strides()
    if any(s < 0 for s in strides):
        raise DLPackError(f"from_dlpack: a tensor on {t.device} with negative strides "
                          f"{strides} cannot back a halo Buffer; make it positive-stride "
                          f"first")
    isz = t.dtype.itemsize
    empty = any(n == 0 for n in t.shape)
    span = 0 if empty else sum((n - 1) * s for n, s in zip(t.shape, strides)) + 1
    raw = np.empty(span, dtype=t.dtype)
    arr = np.lib.stride_tricks.as_strided(raw, shape=t.shape,
                                          strides=tuple(s * isz for s in strides))
    if t.read_only:
        arr.flags.writeable = False
    return arr


# -- exporting -------------------------------------------------------------------------------

_exports: dict = {}            # address of a DLManagedTensor -> what keeps it valid
_exports_lock = threading.Lock()


@_keep_forever
@DELETER
def _export_deleter(managed):
    with _exports_lock:
        _exports.pop(managed, None)


@_keep_forever
@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _capsule_destructor(capsule):
    # Called for every capsule halo made; a consumer renamed the ones it took.
    try:
        name = _raw_capsule_name(capsule)
        if name in (b"dltensor", b"dltensor_versioned"):
            _export_deleter(_raw_capsule_pointer(capsule, name))
    except Exception:       # noqa: BLE001 - nothing may propagate out of a destructor
        pass


def export_capsule(data: int, device: tuple, dtype: np.dtype, shape, strides,
                   keep_alive, versioned: bool, read_only: bool = False):
    """A DLPack capsule for `data` on `device` ((type, id)); `strides` in
    elements. `keep_alive` is held until the consumer calls the deleter (or
    the capsule is freed unconsumed)."""
    nd = len(shape)
    m = DLManagedTensorVersioned() if versioned else DLManagedTensor()
    shape_arr = (ctypes.c_int64 * max(nd, 1))(*shape)
    stride_arr = (ctypes.c_int64 * max(nd, 1))(*strides)
    t = m.dl_tensor
    t.data = data
    t.device.device_type, t.device.device_id = int(device[0]), int(device[1])
    t.ndim = nd
    t.dtype.code = {"i": 0, "u": 1, "f": 2, "b": 6}[dtype.kind]
    t.dtype.bits = dtype.itemsize * 8
    t.dtype.lanes = 1
    t.shape = ctypes.cast(shape_arr, ctypes.POINTER(ctypes.c_int64))
    t.strides = ctypes.cast(stride_arr, ctypes.POINTER(ctypes.c_int64))
    t.byte_offset = 0
    m.deleter = ctypes.cast(_export_deleter, ctypes.c_void_p).value
    if versioned:
        m.version.major, m.version.minor = VERSION
        m.flags = READ_ONLY_FLAG if read_only else 0
    addr = ctypes.addressof(m)
    with _exports_lock:
        _exports[addr] = (m, shape_arr, stride_arr, keep_alive)
    name = _NAMES[b"dltensor_versioned" if versioned else b"dltensor"]
    return _capsule_new(addr, ctypes.addressof(name),
                        ctypes.cast(_capsule_destructor, ctypes.c_void_p).value)


def live_exports() -> int:
    """How many exported tensors no consumer has released yet (for tests)."""
    with _exports_lock:
        return len(_exports)
