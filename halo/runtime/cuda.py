"""CUDA through cuda-python (`cuda.bindings`: the driver API and NVRTC).

Kernels are compiled by NVRTC to PTX for the device's compute capability
and loaded with `cuModuleLoadData`; modules are cached by source + device.
NVRTC needs no GPU, so `compile_to_ptx` works anywhere its library is.
"""
from __future__ import annotations

import ctypes
import hashlib
import threading

import numpy as np

from ..errors import HaloRuntimeError

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


class CUDABackend:
    name = "CUDA"

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
        count = _check(driver.cuDeviceGetCount(), "cuDeviceGetCount")
        if count == 0:
            raise HaloRuntimeError(f"The CUDA driver reports no device; {INSTALL_HINT}")
        self.device = _check(driver.cuDeviceGet(0), "cuDeviceGet")
        self.context = _check(driver.cuDevicePrimaryCtxRetain(self.device),
                              "cuDevicePrimaryCtxRetain")
        _check((driver.cuCtxSetCurrent(self.context)[0], None), "cuCtxSetCurrent")
        attr = driver.CUdevice_attribute
        major = _check(driver.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.device), "attribute")
        minor = _check(driver.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.device), "attribute")
        self.arch = f"compute_{major}{minor}"
        self.max_threads = int(_check(driver.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, self.device), "attribute"))
        self._modules, self._functions = {}, {}

    def describe(self) -> str:
        return f"CUDA device 0 ({self.arch})"

    def _current(self):
        self.driver.cuCtxSetCurrent(self.context)

    def program(self, source: str):
        key = hashlib.sha256(source.encode()).hexdigest() + "@" + self.arch
        mod = self._modules.get(key)
        if mod is None:
            self._current()
            ptx = compile_to_ptx(source, self.arch)
            mod = _check(self.driver.cuModuleLoadData(ptx), "cuModuleLoadData")
            self._modules[key] = mod
        return mod

    def malloc(self, nbytes: int):
        self._current()
        return _check(self.driver.cuMemAlloc(max(int(nbytes), 1)), "cuMemAlloc")

    def to_device(self, dev, host: np.ndarray):
        if host.nbytes:
            self._current()
            _check((self.driver.cuMemcpyHtoD(dev, host.ctypes.data, host.nbytes)[0], None),
                   "cuMemcpyHtoD")

    def to_host(self, host: np.ndarray, dev):
        if host.nbytes:
            self._current()
            _check((self.driver.cuMemcpyDtoH(host.ctypes.data, dev, host.nbytes)[0], None),
                   "cuMemcpyDtoH")

    def sync(self):
        self._current()
        _check((self.driver.cuCtxSynchronize()[0], None), "cuCtxSynchronize")

    def launch(self, module, kernel_name, args, grid, threads):
        if any(int(g) == 0 for g in grid):
            return
        fn = self._functions.get((id(module), kernel_name))
        if fn is None:
            fn = _check(self.driver.cuModuleGetFunction(module, kernel_name.encode()),
                        "cuModuleGetFunction")
            self._functions[(id(module), kernel_name)] = fn
        # kernelParams: an array of pointers to each argument's value
        holders = [ctypes.c_uint64(int(a)) if not isinstance(a, np.generic)
                   else np.ctypeslib.as_ctypes_type(a.dtype)(a.item()) for a in args]
        params = (ctypes.c_void_p * max(len(holders), 1))(
            *[ctypes.addressof(h) for h in holders])
        self._current()
        _check((self.driver.cuLaunchKernel(fn, *[int(g) for g in grid],
                                           *[int(t) for t in threads], 0, 0,
                                           ctypes.addressof(params), 0)[0], None),
               f"cuLaunchKernel({kernel_name})")
