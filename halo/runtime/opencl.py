"""OpenCL through pyopencl: one context per process, programs cached by
source and device.

The device is the first GPU of any platform, else the first other device
(PoCL's CPU device in CI); `HALO_OPENCL_DEVICE=substring` picks one by
platform or device name.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import struct
import threading

import numpy as np

from ..errors import BufferError, HaloRuntimeError

INSTALL_HINT = ("install pyopencl and an OpenCL driver; for a CPU OpenCL device (no GPU "
                "needed): pip install pyopencl pocl-binary-distribution")

_lock = threading.Lock()
_backend = None


def get_opencl() -> "OpenCLBackend":
    """The process's OpenCL backend (a halo error if there is none)."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = OpenCLBackend()
        return _backend


def load_icd_globally():
    """Load pyopencl's bundled libOpenCL with RTLD_GLOBAL, so that other
    OpenCL users in the process (Halide's JIT) find the same ICD loader and
    PoCL. Returns the library path, or None."""
    try:
        import pyopencl
    except ImportError:
        return None
    libs = os.path.join(os.path.dirname(pyopencl.__file__), ".libs")
    for name in sorted(os.listdir(libs)) if os.path.isdir(libs) else []:
        if name.startswith("libOpenCL"):
            path = os.path.join(libs, name)
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return path
    return None


class OpenCLBackend:
    name = "OpenCL"
    dlpack_device_type = 4              # kDLOpenCL
    ordinal = 0

    def __init__(self):
        try:
            import pyopencl as cl
        except ImportError:
            raise HaloRuntimeError(f"The host-opencl target needs pyopencl, which is not "
                                   f"installed: {INSTALL_HINT}") from None
        self.cl = cl
        try:
            platforms = cl.get_platforms()
        except cl.Error:     # the ICD loader reports "no platforms" as an error
            platforms = []
        devices = []
        for p in platforms:
            try:
                devices += [(p, d) for d in p.get_devices()]
            except cl.Error:
                continue
        if not devices:
            raise HaloRuntimeError(f"No OpenCL platform with a device was found (looked for "
                                   f"OpenCL ICDs through pyopencl's loader: "
                                   f"{len(platforms)} platform(s)); {INSTALL_HINT}")
        want = os.environ.get("HALO_OPENCL_DEVICE", "").lower()
        pick = [pd for pd in devices if want and (want in pd[0].name.lower() or
                                                  want in pd[1].name.lower())]
        if want and not pick:
            raise HaloRuntimeError(f"HALO_OPENCL_DEVICE={want!r} matches no OpenCL device; "
                                   f"devices: {', '.join(d.name for _, d in devices)}")
        gpus = [pd for pd in devices if pd[1].type & cl.device_type.GPU]
        self.platform, self.device = (pick or gpus or devices)[0]
        if "portable computing language" in self.platform.name.lower():
            _fix_pocl_cpu_name(self.device)
        self.context = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.context)
        self.max_threads = int(self.device.max_work_group_size)
        self._programs = {}
        self._kernels = {}

    def describe(self) -> str:
        return f"{self.device.name} ({self.platform.name})"

    # -- programs -------------------------------------------------------------------------
    def program(self, source: str):
        key = hashlib.sha256(source.encode()).hexdigest() + "@" + str(self.device.int_ptr)
        prog = self._programs.get(key)
        if prog is None:
            try:
                prog = self.cl.Program(self.context, source).build()
            except self.cl.Error as e:
                raise HaloRuntimeError(f"OpenCL could not build halo's kernels on "
                                       f"{self.describe()}: {e}\n--- source ---\n{source}") \
                    from None
            self._programs[key] = prog
        return prog

    # -- memory ---------------------------------------------------------------------------
    def malloc(self, nbytes: int):
        return self.cl.Buffer(self.context, self.cl.mem_flags.READ_WRITE, max(int(nbytes), 1))

    def adopt(self, tensor):
        """A `cl.Buffer` over the cl_mem of a tensor taken from a DLPack producer
        (halo.runtime.dlpack); it must belong to halo's context."""
        mem = self.cl.Buffer.from_int_ptr(tensor.data, retain=True)
        if mem.context.int_ptr != self.context.int_ptr:
            raise BufferError(f"A buffer imported through DLPack lives in another OpenCL "
                              f"context than halo's ({self.describe()}); halo can only use "
                              f"cl_mem objects of its own context (halo.runtime.opencl."
                              f"get_opencl().context)")
        if tensor.byte_offset:
            nbytes = mem.size - tensor.byte_offset
            try:
                mem = mem.get_sub_region(tensor.byte_offset, nbytes)
            except self.cl.Error as e:
                raise BufferError(f"A buffer imported through DLPack starts {tensor.byte_offset}"
                                  f" bytes into its cl_mem, which OpenCL cannot address as a "
                                  f"sub-buffer on {self.describe()}: {e}") from None
        return mem

    def to_device(self, dev, host: np.ndarray):
        if host.nbytes:
            self.cl.enqueue_copy(self.queue, dev, host, is_blocking=False)

    def to_host(self, host: np.ndarray, dev):
        if host.nbytes:
            self.cl.enqueue_copy(self.queue, host, dev, is_blocking=True)

    def sync(self):
        self.queue.finish()

    # -- launches -------------------------------------------------------------------------
    def launch(self, program, kernel_name, args, grid, threads):
        k = self._kernels.get((id(program), kernel_name))
        if k is None:
            k = self._kernels[(id(program), kernel_name)] = self.cl.Kernel(program, kernel_name)
        k.set_args(*args)
        local = tuple(int(t) for t in threads)
        glob = tuple(int(g) * t for g, t in zip(grid, local))
        if any(g == 0 for g in glob):
            return                          # an empty region: nothing to run
        if local[0] * local[1] * local[2] > self.max_threads:
            raise HaloRuntimeError(f"kernel {kernel_name} uses {local[0] * local[1] * local[2]}"
                                   f" threads per block, more than {self.describe()} allows "
                                   f"({self.max_threads})")
        self.cl.enqueue_nd_range_kernel(self.queue, k, glob, local)


def _fix_pocl_cpu_name(device):
    """PoCL 3.0 wheels carry LLVM 14, which does not know recent CPUs (Zen 5):
    it asks its own clang for CPU 'generic', which clang 14 rejects, and no
    kernel builds. When the device's LLVM CPU name is 'generic', point it at
    the x86-64 baseline that the CPU supports instead (the name is a field of
    PoCL's device struct, found next to the target triple)."""
    base = device.int_ptr
    try:
        with open("/proc/self/mem", "rb", buffering=0) as mem:
            mem.seek(base)
            blob = mem.read(4096)
            for off in range(0, len(blob) - 16, 8):
                triple, cpu = struct.unpack_from("<QQ", blob, off)
                if not (_c_string(mem, triple) or b"").startswith(b"x86_64"):
                    continue
                if _c_string(mem, cpu) != b"generic":
                    return
                ctypes.c_void_p.from_address(base + off + 8).value = \
                    ctypes.addressof(_x86_cpu_name())
                return
    except OSError:
        return


def _c_string(mem, ptr):
    if ptr < 4096 or ptr >= 1 << 63:
        return None
    try:
        mem.seek(ptr)
        return mem.read(32).split(b"\0")[0]
    except (OSError, ValueError, OverflowError):
        return None


_cpu_name_buffer = []


def _x86_cpu_name():
    if not _cpu_name_buffer:
        flags = ""
        try:
            with open("/proc/cpuinfo") as f:
                flags = next((ln for ln in f if ln.startswith("flags")), "")
        except OSError:
            pass
        v3 = all(f" {x}" in flags for x in ("avx2", "fma", "bmi2", "movbe"))
        name = b"x86-64-v3" if v3 else b"x86-64"
        _cpu_name_buffer.append(ctypes.create_string_buffer(name))   # lives for the process
    return _cpu_name_buffer[0]
