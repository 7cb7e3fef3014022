"""CUDA: NVRTC compiles halo's kernels to PTX; a CUDA driver API loads and runs them.

The driver API is pycuda's when `import pycuda.driver` works, else
cuda-python's (`cuda.bindings.driver`); `_driver_api()` is the one place
that chooses. With pycuda, halo runs in pycuda's current context, or
retains the device's primary context through pycuda (as cuda-python's path,
torch and CuPy do), so halo and pycuda code share memory. Both adapters
offer the same few calls, so kernels take one path: NVRTC to PTX for the
device's compute capability, load it (cuModuleLoadData / pycuda's
module_from_buffer), launch. Modules are cached by source + device. NVRTC
needs no GPU, so `compile_to_ptx` works anywhere its library is.

Device memory is a `CudaMemory`: `int(m)` is the address a kernel takes;
what halo allocated is freed when the last CudaMemory for it dies, memory
adopted from a DLPack producer is handed back to the producer then.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import threading
import weakref

import numpy as np

from ..errors import BufferError, HaloRuntimeError

INSTALL_HINT = ("the host-cuda target needs an NVIDIA GPU with its driver (libcuda.so) and "
                "cuda-python with NVRTC: pip install 'cuda-python[all]'")

_lock = threading.Lock()
_backend = None


def get_cuda() -> "CUDABackend":
    global _backend
    with _lock:
        if _backend is None:
            _backend = CUDABackend()
        return _backend


def _bindings():
    try:
        from cuda.bindings import driver, nvrtc
    except ImportError:
        raise HaloRuntimeError(f"cuda-python is not installed; {INSTALL_HINT}") from None
    return driver, nvrtc


def _check(result, what):
    err, rest = result[0], result[1:]
    if int(err) != 0:
        raise HaloRuntimeError(f"CUDA: {what} failed with {err!r}")
    return rest[0] if len(rest) == 1 else rest


def compile_to_ptx(source: str, arch: str = "compute_90") -> bytes:
    """PTX for `source` from NVRTC (a halo error with NVRTC's log on failure)."""
    _, nvrtc = _bindings()
    try:
        prog = _check(nvrtc.nvrtcCreateProgram(source.encode(), b"halo.cu", 0, [], []),
                      "nvrtcCreateProgram")
    except Exception as e:     # the NVRTC library itself was not found
        if isinstance(e, HaloRuntimeError):
            raise
        raise HaloRuntimeError(f"NVRTC is not available ({e}); {INSTALL_HINT}") from None
    opts = [f"--gpu-architecture={arch}".encode(), b"-default-device"]
    err, = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    if int(err) != 0:
        n = _check(nvrtc.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
        log = b" " * n
        nvrtc.nvrtcGetProgramLog(prog, log)
        raise HaloRuntimeError(f"NVRTC could not compile halo's CUDA kernels:\n"
                               f"{log.decode(errors='replace')}\n--- source ---\n{source}")
    n = _check(nvrtc.nvrtcGetPTXSize(prog), "nvrtcGetPTXSize")
    ptx = b" " * n
    _check((nvrtc.nvrtcGetPTX(prog, ptx)[0], None), "nvrtcGetPTX")
    return ptx


class CudaMemory:
    """A device address (`int(m)`); `owner` keeps what frees it alive."""

    __slots__ = ("ptr", "owner", "__weakref__")

    def __init__(self, ptr: int, owner=None):
        self.ptr, self.owner = int(ptr), owner

    def __int__(self):
        return self.ptr

    def __repr__(self):
        return f"<CudaMemory 0x{self.ptr:x}>"


# -- the two driver APIs -----------------------------------------------------------------------

def _driver_api():
    """pycuda's driver API when it imports, else cuda-python's."""
    try:
        import pycuda.driver as pycuda_driver
    except (ImportError, OSError):      # not installed, or no libcuda for it to load
        return CudaPythonDriver()
    return PyCudaDriver(pycuda_driver)


class CudaPythonDriver:
    """The driver API through cuda-python, in device 0's primary context."""

    name = "cuda-python"

    def __init__(self):
        driver, _ = _bindings()
        self.driver = driver
        try:
            err, = driver.cuInit(0)
        except Exception as e:       # cuda-python raises when libcuda.so is missing
            raise HaloRuntimeError(f"No CUDA driver: looked for libcuda.so (the NVIDIA "
                                   f"driver) through cuda-python and found none ({e}); "
                                   f"{INSTALL_HINT}") from None
        if int(err) != 0:
            raise HaloRuntimeError(f"No usable CUDA driver: cuInit failed with {err!r}; "
                                   f"{INSTALL_HINT}")
        if _check(driver.cuDeviceGetCount(), "cuDeviceGetCount") == 0:
            raise HaloRuntimeError(f"The CUDA driver reports no device; {INSTALL_HINT}")
        self.ordinal = 0
        self.device = _check(driver.cuDeviceGet(self.ordinal), "cuDeviceGet")
        self.context = _check(driver.cuDevicePrimaryCtxRetain(self.device),
                              "cuDevicePrimaryCtxRetain")
        attr = driver.CUdevice_attribute

        def attribute(a):
            return int(_check(driver.cuDeviceGetAttribute(a, self.device), "cuDeviceGetAttribute"))
        self.compute_capability = (attribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                                   attribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR))
        self.max_threads = attribute(attr.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK)

    @contextlib.contextmanager
    def current(self):
        # the primary context stays current afterwards, as the runtime API leaves it
        _check((self.driver.cuCtxSetCurrent(self.context)[0], None), "cuCtxSetCurrent")
        yield

    def load_module(self, ptx: bytes):
        return _check(self.driver.cuModuleLoadData(ptx), "cuModuleLoadData")

    def get_function(self, module, name: str):
        return _check(self.driver.cuModuleGetFunction(module, name.encode()),
                      "cuModuleGetFunction")

    def malloc(self, nbytes: int) -> CudaMemory:
        ptr = _check(self.driver.cuMemAlloc(nbytes), "cuMemAlloc")
        mem = CudaMemory(int(ptr))
        weakref.finalize(mem, self._free, int(ptr)).atexit = False
        return mem

    def _free(self, ptr: int):
        self.driver.cuCtxSetCurrent(self.context)
        self.driver.cuMemFree(self.driver.CUdeviceptr(ptr))

    def to_device(self, ptr: int, host: np.ndarray):
        _check((self.driver.cuMemcpyHtoD(self.driver.CUdeviceptr(ptr), host.ctypes.data,
                                         host.nbytes)[0], None), "cuMemcpyHtoD")

    def to_host(self, host: np.ndarray, ptr: int):
        _check((self.driver.cuMemcpyDtoH(host.ctypes.data, self.driver.CUdeviceptr(ptr),
                                         host.nbytes)[0], None), "cuMemcpyDtoH")

    def synchronize(self):
        _check((self.driver.cuCtxSynchronize()[0], None), "cuCtxSynchronize")

    def launch(self, fn, grid, threads, args, what):
        # kernelParams: an array of pointers to each argument's value
        holders = [np.ctypeslib.as_ctypes_type(a.dtype)(a.item()) for a in args]
        params = (ctypes.c_void_p * max(len(holders), 1))(
            *[ctypes.addressof(h) for h in holders])
        _check((self.driver.cuLaunchKernel(fn, *grid, *threads, 0, 0,
                                           ctypes.addressof(params), 0)[0], None),
               f"cuLaunchKernel({what})")


class PyCudaDriver:
    """The driver API through pycuda, in pycuda's current context if there is
    one, else in the device's primary context, retained through pycuda."""

    name = "pycuda"

    def __init__(self, cuda):
        self.cuda = cuda
        try:
            cuda.init()
            context = cuda.Context.get_current()
            if context is None:
                if cuda.Device.count() == 0:
                    raise HaloRuntimeError(f"The CUDA driver reports no device (through "
                                           f"pycuda); {INSTALL_HINT}")
                self.device = cuda.Device(0)
                context = self.device.retain_primary_context()
            else:
                self.device = context.get_device()
            self.context = context
            self.ordinal = next(i for i in range(cuda.Device.count())
                                if cuda.Device(i) == self.device)
            self.compute_capability = tuple(self.device.compute_capability())
            self.max_threads = int(self.device.get_attribute(
                cuda.device_attribute.MAX_THREADS_PER_BLOCK))
        except cuda.Error as e:
            raise HaloRuntimeError(f"CUDA through pycuda: {e}; {INSTALL_HINT}") from None

    @contextlib.contextmanager
    def current(self):
        # pycuda keeps a context stack: push for the call, pop after
        self.context.push()
        try:
            yield
        except self.cuda.Error as e:
            raise HaloRuntimeError(f"CUDA (pycuda): {e}") from None
        finally:
            self.cuda.Context.pop()

    def load_module(self, ptx: bytes):
        return self.cuda.module_from_buffer(ptx)

    def get_function(self, module, name: str):
        return module.get_function(name)

    def malloc(self, nbytes: int) -> CudaMemory:
        alloc = self.cuda.mem_alloc(nbytes)         # pycuda frees it with the object
        return CudaMemory(int(alloc), owner=alloc)

    def to_device(self, ptr: int, host: np.ndarray):
        self.cuda.memcpy_htod(ptr, host)

    def to_host(self, host: np.ndarray, ptr: int):
        self.cuda.memcpy_dtoh(host, ptr)

    def synchronize(self):
        self.cuda.Context.synchronize()

    def launch(self, fn, grid, threads, args, what):
        fn(*args, grid=tuple(grid), block=tuple(threads))


# -- the backend -------------------------------------------------------------------------------

class CUDABackend:
    name = "CUDA"
    dlpack_device_type = 2              # kDLCUDA

    def __init__(self, api=None):
        self.api = api if api is not None else _driver_api()
        major, minor = self.api.compute_capability
        self.arch = f"compute_{major}{minor}"
        self.ordinal = self.api.ordinal
        self.max_threads = self.api.max_threads
        self._modules, self._functions = {}, {}

    def describe(self) -> str:
        return f"CUDA device {self.ordinal} ({self.arch}, through {self.api.name})"

    def program(self, source: str):
        key = hashlib.sha256(source.encode()).hexdigest() + "@" + self.arch
        mod = self._modules.get(key)
        if mod is None:
            ptx = compile_to_ptx(source, self.arch)
            with self.api.current():
                mod = self.api.load_module(ptx)
            self._modules[key] = mod
        return mod

    # -- memory -----------------------------------------------------------------------------
    def malloc(self, nbytes: int) -> CudaMemory:
        with self.api.current():
            return self.api.malloc(max(int(nbytes), 1))

    def adopt(self, tensor) -> CudaMemory:
        """Device memory of a tensor taken from a DLPack producer (halo.runtime.dlpack)."""
        if tensor.device_id != self.ordinal:
            raise BufferError(f"A buffer imported through DLPack lives on {tensor.device}, "
                              f"but halo's CUDA backend runs on device {self.ordinal}")
        return CudaMemory(tensor.data, owner=tensor)

    def to_device(self, dev, host: np.ndarray):
        if host.nbytes:
            with self.api.current():
                self.api.to_device(int(dev), host)

    def to_host(self, host: np.ndarray, dev):
        if host.nbytes:
            with self.api.current():
                self.api.to_host(host, int(dev))

    def sync(self):
        with self.api.current():
            self.api.synchronize()

    def launch(self, module, kernel_name, args, grid, threads):
        if any(int(g) == 0 for g in grid):
            return
        args = [a if isinstance(a, np.generic) else np.uint64(int(a)) for a in args]
        with self.api.current():
            fn = self._functions.get((id(module), kernel_name))
            if fn is None:
                fn = self.api.get_function(module, kernel_name)
                self._functions[(id(module), kernel_name)] = fn
            self.api.launch(fn, [int(g) for g in grid], [int(t) for t in threads], args,
                            kernel_name)
