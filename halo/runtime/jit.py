"""Load a compiled pipeline and call it with numpy arrays, without copies.

Arguments cross into C as DLPack `DLTensor`s (shape and strides in numpy
order, strides in elements) plus each buffer's Halide-order dimension mins.
The ctypes argument blocks are built once per pipeline and refilled on each
call, which keeps the per-call overhead to a few microseconds; a second
thread calling at the same time gets its own blocks.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from ..errors import BufferError, HaloRuntimeError, CompileError
from ..ir.types import Type


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


_SCALAR = {("i", 8): ctypes.c_int8, ("i", 16): ctypes.c_int16, ("i", 32): ctypes.c_int32,
           ("i", 64): ctypes.c_int64, ("u", 8): ctypes.c_uint8, ("u", 16): ctypes.c_uint16,
           ("u", 32): ctypes.c_uint32, ("u", 64): ctypes.c_uint64, ("f", 32): ctypes.c_float,
           ("f", 64): ctypes.c_double}


def scalar_ctype(t: Type):
    if t.is_bool():
        return ctypes.c_bool
    key = ("f" if t.is_float() else "i" if t.is_int() else "u", t.bits())
    return _SCALAR[key]


_DL_CODE = {"i": 0, "u": 1, "f": 2, "b": 6}


class _Slots:
    """The ctypes memory for one call: tensors, shapes, strides, mins, argv."""

    def __init__(self, arguments):
        n = len(arguments)
        self.argv = (ctypes.c_void_p * max(n, 1))()
        self.minsv = (ctypes.c_void_p * max(n, 1))()
        self.items = []
        for i, a in enumerate(arguments):
            if a.kind == "param":
                v = scalar_ctype(a.type)()
                self.argv[i] = ctypes.addressof(v)
                self.items.append(v)
            else:
                nd = a.dimensions
                t = DLTensor()
                shape = (ctypes.c_int64 * max(nd, 1))()
                strides = (ctypes.c_int64 * max(nd, 1))()
                mins = (ctypes.c_int32 * max(nd, 1))()
                t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
                t.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
                t.ndim = nd
                t.device.device_type = 1
                t.dtype.lanes = 1
                self.argv[i] = ctypes.addressof(t)
                self.minsv[i] = ctypes.addressof(mins)
                self.items.append((t, shape, strides, mins))
        self.lock = threading.Lock()


class CompiledPipeline:
    def __init__(self, lowered, lib_path, fn_name: str, source: str):
        self.lowered = lowered
        self.arguments = lowered.arguments
        self.source = source
        self.lib_path = lib_path
        try:
            self.lib = ctypes.CDLL(str(lib_path))
        except OSError as e:
            raise HaloRuntimeError(f"Cannot load compiled pipeline {lib_path}: {e}") from e
        self._call = getattr(self.lib, fn_name + "_call")
        self._call.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._call.restype = ctypes.c_int
        self._query = getattr(self.lib, fn_name + "_bounds_query")
        self._query.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._query.restype = ctypes.c_int
        self._err = getattr(self.lib, fn_name + "_error_message")
        self._err.restype = ctypes.c_char_p
        self._slots = _Slots(self.arguments)
        n_query = sum(2 * d for _, d in lowered.query_layout)
        self._query_out = (ctypes.c_int64 * max(n_query, 1))()

    # values: per argument, either (ndarray in numpy order, mins in Halide order)
    # for buffers, or a Python number for params.
    def _fill(self, slots, values):
        for a, item, v in zip(self.arguments, slots.items, values):
            if a.kind == "param":
                item.value = v
                continue
            arr, mins = v
            t, shape, strides, mn = item
            if arr.ndim != a.dimensions:
                kind = "Input" if a.kind == "input" else "Output"
                raise BufferError(f"{kind} buffer {a.user_name} has {arr.ndim} dimensions, "
                                  f"but the pipeline needs {a.dimensions}")
            if a.kind == "output" and not arr.flags.writeable:
                raise BufferError(f"Output buffer {a.user_name} is read-only (its numpy "
                                  f"array is not writeable)")
            dt = arr.dtype
            t.data = arr.__array_interface__["data"][0] if arr.size else (
                arr.ctypes.data or 8)
            t.dtype.code = _DL_CODE.get(dt.kind, 255)
            t.dtype.bits = dt.itemsize * 8
            isz = dt.itemsize
            for k in range(arr.ndim):
                shape[k] = arr.shape[k]
                s = arr.strides[k]
                if s % isz:
                    raise BufferError(f"Buffer {a.user_name} has a stride of {s} bytes, not a "
                                      f"multiple of its element size {isz}")
                strides[k] = s // isz
            for k, m in enumerate(mins):
                mn[k] = m

    def _check(self, code):
        if code != 0:
            msg = (self._err() or b"").decode("utf-8", "replace")
            if code in (-1, -3, -4, -9):
                raise BufferError(msg or f"pipeline failed with code {code}")
            raise HaloRuntimeError(msg or f"pipeline failed with code {code}")

    def __call__(self, values):
        slots = self._slots
        if not slots.lock.acquire(blocking=False):
            slots = _Slots(self.arguments)
            slots.lock.acquire()
        try:
            self._fill(slots, values)                           # (checks the arguments)
            written = host_call_states(self.arguments, values)   # newer device data first
            copied = unaliased(self.arguments, values)           # (so copies are current)
            if copied is not values:
                self._fill(slots, copied)
            self._check(self._call(slots.argv, slots.minsv))
            for st in written:
                st.host_dirty = True
        finally:
            slots.lock.release()

    def bounds_query(self, values):
        """Per entry of lowered.query_layout: list of (min, extent) per dim."""
        slots = _Slots(self.arguments)
        self._fill(slots, values)
        out = (ctypes.c_int64 * max(len(self._query_out), 1))()
        self._check(self._query(slots.argv, slots.minsv, out))
        res, k = [], 0
        for idx, dims in self.lowered.query_layout:
            res.append((idx, [(out[k + 2 * d], out[k + 2 * d + 1]) for d in range(dims)]))
            k += 2 * dims
        return res


def unaliased(arguments, values):
    """`values` with every input that shares memory with an output replaced
    by a copy, as numpy's `out=` does: the pipeline reads its inputs as they
    were before the call, not as its own stores left them (`f[x] = a[x - 1]`
    realized into `a` itself). Two outputs that overlap are an error: no
    order of their stores is right. The test is numpy's bounds check
    (may_share_memory): ~0.1 us per call on a 5-buffer pipeline."""
    outs = [(a, v[0]) for a, v in zip(arguments, values)
            if a.kind == "output" and v[0].size]
    if not outs:
        return values
    for k, (a, arr) in enumerate(outs):
        for b, other in outs[k + 1:]:
            if np.may_share_memory(arr, other):
                raise BufferError(f"Output buffers {a.user_name} and {b.user_name} overlap in "
                                  f"memory: pass separate arrays")
    new = None
    for i, (a, v) in enumerate(zip(arguments, values)):
        if a.kind == "input" and v[0].size and \
                any(np.may_share_memory(v[0], arr) for _, arr in outs):
            new = new or list(values)
            new[i] = (v[0].copy(), v[1])
    return values if new is None else new


def host_call_states(arguments, values):
    """halo.runtime.device.host_call_states, bound on first use (device.py
    imports this module)."""
    global host_call_states
    from .device import host_call_states
    return host_call_states(arguments, values)
