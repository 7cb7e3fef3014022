"""Device buffers and GPU pipelines.

**Device copies belong to arrays.** A halo `Buffer` is a view of a numpy
array, so the device copy (and Halide's `host_dirty` / `device_dirty`
flags) is attached to the array object: every Buffer on that array shares
it, as Halide's Buffer copies share one `halide_buffer_t`. Copies are lazy:
`copy_to_device` copies only when the host is newer (or nothing is on the
device yet), `copy_to_host` only when the device is newer. A device tensor
taken through DLPack becomes the device copy of an empty host array of its
layout (`adopt_device_memory`), marked newer. A CPU pipeline brings newer
device data of its buffers back first (`host_call_states`).

**GPU pipelines** keep their host part as the generated C function
(halo.codegen.gpu_host); kernel launches and host/device syncs call back
into `_CallState` here, which moves data through a backend
(halo.runtime.opencl or halo.runtime.cuda):

* a pipeline argument whose array has a device copy uses it (inputs are
  copied only if the host is newer; outputs stay on the device, marked
  `device_dirty`, until a host access or `copy_to_host`);
* any other argument gets a device buffer for the call: inputs are copied
  over, outputs are copied back when the call ends (what `realize(sizes)`
  and plain numpy outputs need);
* internal buffers get device buffers pooled per pipeline.
"""
from __future__ import annotations

import ctypes
import threading
import weakref

import numpy as np

from ..errors import BufferError, CompileError, HaloRuntimeError
from . import dlpack
from .jit import CompiledPipeline, _Slots, scalar_ctype


# -- device state of arrays -----------------------------------------------------------------

class DeviceState:
    """The device copy of one host array, and which side is newer.

    A copy adopted from a DLPack producer (`adopt_device_memory`) knows its
    device but not yet a backend: the backend, and with it the driver, is
    looked up when the copy is first used, so importing a tensor works (and
    its layout can be read) on a machine without that driver."""

    def __init__(self, backend, nbytes, adopted=None):
        self._backend = backend
        self.nbytes = nbytes
        self._dev = None
        self.adopted = adopted          # a halo.runtime.dlpack.ImportedTensor, or None
        self.host_dirty = False
        self.device_dirty = adopted is not None

    @property
    def backend(self):
        if self._backend is None:
            backend = backend_for_dlpack_device(self.adopted)
            self._dev = backend.adopt(self.adopted)
            self._backend = backend
        return self._backend

    @property
    def dev(self):
        if self._dev is None and self.adopted is not None:
            self.backend                # adopting sets _dev
        return self._dev

    @dev.setter
    def dev(self, value):
        self._dev = value

    def allocated(self) -> bool:
        return self._dev is not None or self.adopted is not None

    def lives_on(self, backend) -> bool:
        """Whether this copy is in `backend`'s memory (without looking up a
        backend for an adopted copy on another kind of device)."""
        if self._backend is not None:
            return self._backend is backend
        return backend.dlpack_device_type == _adopted_family(self.adopted.device_type)

    def on_cuda(self) -> bool:
        if self.adopted is not None:
            return self.adopted.device_type in dlpack.CUDA_DEVICES
        return self.backend.dlpack_device_type == dlpack.CUDA

    def dlpack_device(self) -> tuple:
        """(DLPack device type, device id) of the device copy."""
        if self.adopted is not None:
            return self.adopted.device_type, self.adopted.device_id
        return self.backend.dlpack_device_type, self.backend.ordinal

    def address(self) -> int:
        """The device address of the first element (CUDA only)."""
        if self.adopted is not None:
            return self.adopted.data
        return int(self.dev)

    def synchronize(self):
        """Wait for halo's device work (none when the copy was only adopted)."""
        if self._backend is not None:
            self._backend.sync()

    def malloc(self):
        if self.dev is None:
            self.dev = self.backend.malloc(self.nbytes)

    def to_device(self, host: np.ndarray, force=False):
        """Copy the host bytes over if the host is newer (or nothing is there)."""
        fresh = self.dev is None
        self.malloc()
        if fresh or force or self.host_dirty:
            if self.device_dirty and not fresh:
                raise BufferError("Both the host and the device copy of a buffer were "
                                  "written (host_dirty and device_dirty): one side's "
                                  "changes would be lost")
            self.backend.to_device(self.dev, _host_bytes(host))
        self.host_dirty = False

    def to_host(self, host: np.ndarray):
        if self.device_dirty and self.dev is not None:
            _copy_back(self.backend, host, self.dev)
        self.device_dirty = False


def _adopted_family(device_type: int) -> int:
    """The device type of the backend that runs adopted memory: CUDA for
    managed memory too."""
    return dlpack.CUDA if device_type == dlpack.CUDA_MANAGED else device_type


def adopt_device_memory(arr: np.ndarray, tensor) -> DeviceState:
    """Make `tensor` (an ImportedTensor on a device) the device copy of the
    host array `arr`, which has its layout; the device copy is the newer one."""
    with _states_lock:
        st = DeviceState(None, _span_bytes(arr), adopted=tensor)
        key = id(arr)
        _states[key] = (weakref.ref(arr, lambda _r, k=key: _states.pop(k, None)), st)
        return st


def host_call_states(arguments, values) -> list:
    """Before a CPU pipeline runs: bring newer device data of its buffers to
    the host. Returns the states of its outputs, whose host copies the call
    makes newer (the caller marks them after the call)."""
    if not _states:
        return []
    written = []
    for a, v in zip(arguments, values):
        if a.kind == "param":
            continue
        st = device_state(v[0])
        if st is not None:
            st.to_host(v[0])
            if a.kind == "output":
                written.append(st)
    return written


_states: dict = {}            # id(array) -> (weakref to array, DeviceState)
_states_lock = threading.Lock()


def device_state(arr: np.ndarray, backend=None) -> DeviceState | None:
    """The DeviceState of `arr`; with `backend`, create one if there is none."""
    with _states_lock:
        entry = _states.get(id(arr))
        if entry is not None and entry[0]() is arr:
            return entry[1]
        if backend is None:
            return None
        st = DeviceState(backend, _span_bytes(arr))
        key = id(arr)
        _states[key] = (weakref.ref(arr, lambda _r, k=key: _states.pop(k, None)), st)
        return st


def drop_device_state(arr: np.ndarray):
    with _states_lock:
        _states.pop(id(arr), None)


def _span_bytes(arr: np.ndarray) -> int:
    if arr.size == 0:
        return 0
    if any(s < 0 for s in arr.strides):
        raise BufferError("A buffer with negative strides cannot have a device copy; "
                          "copy it to a positive-stride array first")
    return sum((n - 1) * s for n, s in zip(arr.shape, arr.strides)) + arr.itemsize


def _host_bytes(arr: np.ndarray) -> np.ndarray:
    """The bytes from arr's first element to its last, as a flat uint8 array
    (for a strided view: including the gaps, which the device copy mirrors)."""
    n = _span_bytes(arr)
    if n == 0:
        return np.zeros(0, np.uint8)
    if arr.flags.c_contiguous:
        return arr.reshape(-1).view(np.uint8)
    raw = (ctypes.c_uint8 * n).from_address(arr.__array_interface__["data"][0])
    return np.frombuffer(raw, dtype=np.uint8)


def _copy_back(backend, arr: np.ndarray, dev):
    if arr.size == 0:
        return
    if arr.flags.c_contiguous:
        backend.to_host(arr.reshape(-1).view(np.uint8), dev)
        return
    # a strided view: copy the span aside, then write only the view's elements
    tmp = np.empty(_span_bytes(arr), np.uint8)
    backend.to_host(tmp, dev)
    view = np.lib.stride_tricks.as_strided(tmp.view(arr.dtype) if tmp.size % arr.itemsize == 0
                                           else tmp[:tmp.size - tmp.size % arr.itemsize]
                                           .view(arr.dtype),
                                           shape=arr.shape, strides=arr.strides)
    arr[...] = view


# -- backends ------------------------------------------------------------------------------------

def backend_for_dlpack_device(tensor):
    """The backend for device memory adopted from a DLPack producer."""
    family = _adopted_family(tensor.device_type)
    try:
        if family == dlpack.CUDA:
            from .cuda import get_cuda
            return get_cuda()
        if family == dlpack.OPENCL:
            from .opencl import get_opencl
            return get_opencl()
    except HaloRuntimeError as e:
        raise type(e)(f"A buffer imported through DLPack holds its data on {tensor.device}; "
                      f"using it needs halo's {'CUDA' if family == dlpack.CUDA else 'OpenCL'} "
                      f"backend: {e}") from None
    raise BufferError(f"halo has no backend for DLPack device {tensor.device}")


def backend_for(target=None):
    """The device backend for a target's GPU feature (OpenCL unless CUDA)."""
    from .target import Target, get_jit_target_from_environment
    t = target if isinstance(target, Target) else (
        Target(target) if isinstance(target, str) else get_jit_target_from_environment())
    if t.has_feature("cuda"):
        from .cuda import get_cuda
        return get_cuda()
    from .opencl import get_opencl
    return get_opencl()


# -- GPU pipelines ----------------------------------------------------------------------------

LAUNCH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int32,
                          ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int64),
                          ctypes.POINTER(ctypes.c_int32))
SYNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32,
                        ctypes.c_void_p, ctypes.c_int64)


class GpuApi(ctypes.Structure):
    """halo_gpu_api of halo.codegen.gpu_host."""
    _fields_ = [("ctx", ctypes.c_void_p), ("launch", LAUNCH), ("sync", SYNC)]


def launches_of(lowered) -> list:
    from ..lower.gpu_copies import _launches
    return _launches(lowered.body)


def compile_gpu(lowered, target, fn_name: str):
    """Compile a pipeline that has GPU kernels for `target` (host-opencl or host-cuda)."""
    from ..codegen.c import generate_c
    from ..codegen.gpu_host import GpuHostPrinter
    from .compiler import compile_shared
    launches = launches_of(lowered)
    if not target.has_gpu_feature():
        raise CompileError(f"Func {launches[0].kernel.func} is scheduled on the GPU "
                           f"(gpu_blocks/gpu_threads/gpu_tile), but the target {target} has no "
                           f"GPU feature: use the target host-opencl or host-cuda (e.g. "
                           f"HL_JIT_TARGET=host-opencl, or realize(..., target=...))")
    kernels = [launch.kernel for launch in launches]
    ids = {k: i for i, k in enumerate(kernels)}
    n = len(lowered.arguments)
    source, openmp = generate_c(lowered, fn_name, printer=lambda: GpuHostPrinter(n, ids))
    device_src = device_source_for(kernels, target)
    lib = compile_shared(source, target.cflags(), openmp, stem=fn_name)
    return GpuCompiledPipeline(lowered, lib, fn_name, source, launches, device_src, target)


def device_source_for(kernels, target) -> str:
    if target.has_feature("cuda"):
        from ..codegen.cuda import generate_cuda
        return generate_cuda(kernels)
    from ..codegen.opencl import generate_opencl
    return generate_opencl(kernels)


class GpuCompiledPipeline(CompiledPipeline):
    def __init__(self, lowered, lib_path, fn_name, source, launches, device_source, target):
        super().__init__(lowered, lib_path, fn_name, source)
        self.kernels = [launch.kernel for launch in launches]
        self.launch_slots = [launch.slots for launch in launches]
        self.device_source = device_source
        self.target = target
        self._program = None
        self._pool = {}                 # (slot, bytes) -> device buffer, internal buffers
        self._gpu_lock = threading.Lock()
        self._state = None
        self._api = GpuApi(None, LAUNCH(self._launch), SYNC(self._sync))

    def backend(self):
        return backend_for(self.target)

    def __call__(self, values):
        backend = self.backend()
        if self._program is None:
            self._program = backend.program(self.device_source)
        n = len(self.arguments)
        with self._gpu_lock:
            slots = _Slots(self.arguments)
            self._fill(slots, values)
            argv = (ctypes.c_void_p * (n + 1))(*[slots.argv[i] for i in range(n)],
                                               ctypes.addressof(self._api))
            self._state = _CallState(self, backend, values)
            try:
                code = self._call(argv, slots.minsv)
                if self._state.error is not None:
                    raise self._state.error
                self._check(code)
                self._state.finish()
            finally:
                self._state = None

    # ctypes callbacks: exceptions must not escape into C
    def _launch(self, ctx, kernel, args, nbytes, grid):
        try:
            self._state.launch(kernel, args, nbytes, grid)
            return 0
        except BaseException as e:      # noqa: BLE001 - reported after the C call returns
            self._state.error = self._state.error or e
            return -20

    def _sync(self, ctx, slot, action, host, nbytes):
        try:
            self._state.sync(slot, action, host, nbytes)
            return 0
        except BaseException as e:      # noqa: BLE001
            self._state.error = self._state.error or e
            return -21


class _CallState:
    """Device buffers of one call of a GPU pipeline, by slot."""

    def __init__(self, pipeline: GpuCompiledPipeline, backend, values):
        self.p, self.backend = pipeline, backend
        self.error = None
        self.args = {}                  # slot -> (array, DeviceState, persistent)
        self.internal = {}              # slot -> (host pointer, DeviceState)
        self.foreign = []               # device copies of outputs on another backend
        for i, (a, v) in enumerate(zip(pipeline.arguments, values)):
            if a.kind == "param":
                continue
            arr = v[0]
            st = device_state(arr)
            if st is not None and st.lives_on(backend):
                self.args[i] = (arr, st, True)
                continue
            if st is not None:                  # newer data on another device: via the host
                st.to_host(arr)
                if a.kind == "output":
                    self.foreign.append(st)
            st = DeviceState(backend, _span_bytes(arr))
            st.host_dirty = True                # the host copy is the truth
            self.args[i] = (arr, st, False)

    def _buffer(self, slot, host, nbytes):
        """(host bytes as an array, DeviceState) of a slot."""
        if slot in self.args:
            arr, st, _ = self.args[slot]
            return arr, st
        ptr, st = self.internal.get(slot, (None, None))
        if st is None or ptr != host:
            st = DeviceState(self.backend, nbytes)
            st.dev = self.p._pool.get((slot, nbytes))
            self.internal[slot] = (host, st)
        raw = (ctypes.c_uint8 * max(nbytes, 0)).from_address(host) if nbytes > 0 else None
        return (np.frombuffer(raw, np.uint8) if raw is not None else np.zeros(0, np.uint8)), st

    def launch(self, index, args, nbytes, grid):
        k = self.p.kernels[index]
        slots = self.p.launch_slots[index]
        values = []
        written = []
        for i, (a, slot) in enumerate(zip(k.buffers(), slots)):
            host, st = self._buffer(slot, args[i], nbytes[i])
            st.to_device(host)
            if slot not in self.args:
                self.p._pool[(slot, st.nbytes)] = st.dev
            values.append(st.dev)
            if a.written:
                written.append(st)
        nb = len(k.buffers())
        for j, a in enumerate(k.scalars()):
            values.append(_scalar(a.type, args[nb + j]))
        self.backend.launch(self.p._program, k.name, values, [grid[0], grid[1], grid[2]],
                            k.threads)
        for st in written:
            st.device_dirty = True

    def sync(self, slot, action, host, nbytes):
        arr, st = self._buffer(slot, host, nbytes)
        if action == 0:
            st.to_host(arr)
        else:
            st.device_dirty = False
            st.host_dirty = True

    def finish(self):
        for i, (arr, st, persistent) in self.args.items():
            if not persistent and self.p.arguments[i].kind == "output":
                st.to_host(arr)
        for st in self.foreign:
            st.host_dirty = True


def _scalar(t, ptr):
    ct = scalar_ctype(t)
    v = ctypes.cast(ptr, ctypes.POINTER(ct)).contents.value
    if t.is_bool():
        return np.int32(1 if v else 0)
    return np.dtype(t.numpy_dtype()).type(v)
