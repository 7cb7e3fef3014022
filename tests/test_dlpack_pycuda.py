"""halo's CUDA backend on pycuda, when pycuda imports; else on cuda-python.

pycuda cannot be installed without a CUDA driver, so a fake `pycuda.driver`
stands in: "device memory" is host memory it hands out, launches are
recorded, not run. With it, a whole host-cuda pipeline runs on an input
adopted from a DLPack producer, and the tests check what halo asked pycuda
for: the context, the PTX from NVRTC, and a launch on the producer's own
device address, which nothing may copy.
"""
from __future__ import annotations

import ctypes
import sys
import types

import numpy as np
import pytest

import halo
from halo.runtime import cuda as halo_cuda
from dlpack_fakes import FLOAT32, FakeDeviceTensor


def _nvrtc_reason():
    try:
        halo_cuda.compile_to_ptx('extern "C" __global__ void k() {}')
    except halo.HaloError as e:
        return str(e)
    return None


_no_nvrtc = _nvrtc_reason()
needs_nvrtc = pytest.mark.skipif(_no_nvrtc is not None, reason=f"no NVRTC: {_no_nvrtc}")


class FakePyCuda:
    """The parts of pycuda.driver that halo uses, recording each call."""

    def __init__(self, current_context=False):
        self.log = []
        self.launches = []
        self.stack = []
        self.memory = {}                 # address -> host array standing for device memory
        fake = self

        class Error(Exception):
            pass

        class Device:
            def __init__(self, ordinal):
                self.ordinal = ordinal

            def __eq__(self, other):
                return isinstance(other, Device) and other.ordinal == self.ordinal

            @staticmethod
            def count():
                return 1

            def retain_primary_context(self):
                fake.log.append("retain_primary_context")
                return Context(self, "primary")

            def compute_capability(self):
                return (8, 0)

            def get_attribute(self, attribute):
                assert attribute == "MAX_THREADS_PER_BLOCK"
                return 1024

        class Context:
            def __init__(self, device, kind):
                self.device, self.kind = device, kind

            def get_device(self):
                return self.device

            def push(self):
                fake.stack.append(self)

            @staticmethod
            def pop():
                fake.stack.pop()

            @staticmethod
            def get_current():
                return user_context

            @staticmethod
            def synchronize():
                fake.log.append("synchronize")

        user_context = Context(Device(0), "user's") if current_context else None

        class Module:
            def __init__(self, ptx):
                self.ptx = ptx

            def get_function(self, name):
                def launch(*args, grid, block):
                    fake.launches.append((name, args, grid, block, fake.stack[-1].kind))
                return launch

        class Allocation:
            def __init__(self, nbytes):
                self.host = np.zeros(nbytes, np.uint8)
                fake.memory[self.host.ctypes.data] = self.host

            def __int__(self):
                return self.host.ctypes.data

        def module_from_buffer(ptx):
            assert fake.stack, "a module was loaded with no current context"
            fake.log.append(("module_from_buffer", ptx, fake.stack[-1].kind))
            return Module(ptx)

        def check_address(addr, nbytes):
            if not any(a <= addr and addr + nbytes <= a + m.nbytes
                       for a, m in fake.memory.items()):
                raise Error(f"invalid device address 0x{addr:x}")

        def memcpy_htod(dest, src):
            check_address(int(dest), src.nbytes)
            ctypes.memmove(int(dest), src.ctypes.data, src.nbytes)

        def memcpy_dtoh(dest, src):
            check_address(int(src), dest.nbytes)
            ctypes.memmove(dest.ctypes.data, int(src), dest.nbytes)

        self.driver = types.ModuleType("pycuda.driver")
        self.driver.__dict__.update(
            Error=Error, Device=Device, Context=Context, init=lambda: fake.log.append("init"),
            device_attribute=types.SimpleNamespace(MAX_THREADS_PER_BLOCK="MAX_THREADS_PER_BLOCK"),
            module_from_buffer=module_from_buffer, mem_alloc=Allocation,
            memcpy_htod=memcpy_htod, memcpy_dtoh=memcpy_dtoh)

    def install(self, monkeypatch):
        package = types.ModuleType("pycuda")
        package.driver = self.driver
        monkeypatch.setitem(sys.modules, "pycuda", package)
        monkeypatch.setitem(sys.modules, "pycuda.driver", self.driver)
        monkeypatch.setattr(halo_cuda, "_backend", None)     # a fresh backend for this test
        return self


def test_pycuda_is_chosen_and_retains_the_primary_context(monkeypatch):
    fake = FakePyCuda().install(monkeypatch)
    be = halo_cuda.get_cuda()
    assert be.api.name == "pycuda" and be.arch == "compute_80" and be.max_threads == 1024
    assert fake.log == ["init", "retain_primary_context"]
    mem = be.malloc(16)
    host = np.arange(4, dtype=np.int32)
    be.to_device(mem, host.view(np.uint8))
    back = np.zeros(4, np.int32)
    be.to_host(back.view(np.uint8), mem)
    be.sync()
    assert np.array_equal(back, host) and fake.log[-1] == "synchronize"
    assert fake.stack == []                          # every push was popped


@needs_nvrtc
def test_pycuda_users_context_is_shared(monkeypatch):
    fake = FakePyCuda(current_context=True).install(monkeypatch)
    be = halo_cuda.get_cuda()
    assert "retain_primary_context" not in fake.log
    be.program('extern "C" __global__ void k(int *p) { p[0] = 1; }')
    assert fake.log[-1][2] == "user's" and fake.stack == []


def test_cuda_python_is_used_when_pycuda_does_not_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", None)             # import pycuda fails
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)

    class Chosen:
        pass
    monkeypatch.setattr(halo_cuda, "CudaPythonDriver", Chosen)
    assert isinstance(halo_cuda._driver_api(), Chosen)


@needs_nvrtc
def test_pipeline_on_an_adopted_tensor_launches_on_its_address(monkeypatch):
    fake = FakePyCuda().install(monkeypatch)
    producer = FakeDeviceTensor(address=0xBEEF0000, shape=(16, 32), dtype=FLOAT32)
    b = halo.Buffer.from_dlpack(producer)
    x, y, xo, yo, xi, yi = (halo.Var(n) for n in "x y xo yo xi yi".split())
    f = halo.Func("pycuda_twice")
    f[x, y] = b[x, y] * 2
    f.gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    f.realize([32, 16], halo.Target("host-cuda"))
    (_, ptx, _), = [e for e in fake.log if e[0] == "module_from_buffer"]
    assert b".entry" in ptx                          # NVRTC's PTX went to pycuda
    (name, args, grid, block, context), = fake.launches
    assert np.uint64(0xBEEF0000) in args, "the kernel did not get the producer's address"
    assert (grid, block, context) == ((4, 2, 1), (8, 8, 1), "primary")
    assert b.device_dirty() and fake.stack == []     # the input was never copied
