"""`Buffer`: an n-dimensional array shared with numpy, in Halide's axis order.

Halide's dimension 0 is the fastest-varying one (x). A Buffer holds a numpy
array whose axes are in the reverse order (numpy's last axis is x), so
`np.asarray(buf)` is C-ordered for a Buffer made from sizes, and
`hl.Buffer(ndarray)` shares the array's memory with `buf[x, y] == a[y, x]`.
Each dimension also has a `min` (Halide's `set_min`), numpy has none.
"""
from __future__ import annotations

import numpy as np

from ..errors import CompileError, BufferError, DLPackError
from ..runtime import dlpack
from ..ir.types import Type, from_numpy
from .names import anonymous, unique_name, internal_name


class BufferDimension:
    def __init__(self, buf, i):
        self._b, self._i = buf, i

    def min(self) -> int:
        return self._b._mins[self._i]

    def extent(self) -> int:
        return self._b._arr.shape[self._b._axis(self._i)]

    def max(self) -> int:
        return self.min() + self.extent() - 1

    def stride(self) -> int:
        a = self._b._arr
        return a.strides[self._b._axis(self._i)] // a.itemsize


class Buffer:
    """Halide's `hl.Buffer`, backed by a numpy array (no copies)."""

    def __init__(self, *args, name: str | None = None, reverse_axes: bool = True):
        self._user_name = name
        if len(args) >= 1 and isinstance(args[-1], str) and name is None:
            self._user_name = args[-1]
            args = args[:-1]
        if not args:
            raise CompileError("Buffer() needs a type and sizes, or an array")
        first = args[0]
        if isinstance(first, Buffer):
            arr, mins = first._arr, list(first._mins)
        elif isinstance(first, Type):
            sizes = list(args[1]) if len(args) > 1 else []
            for s in sizes:
                if not isinstance(s, (int, np.integer)) or s < 0:
                    raise CompileError(f"Buffer sizes must be non-negative ints, got {sizes!r}")
            if len(args) > 2:  # storage order: a permutation of dims, innermost first
                order = list(args[2])
                shape_by_order = [sizes[d] for d in reversed(order)]
                base = np.zeros(shape_by_order, dtype=first.numpy_dtype())
                # numpy axis k of base holds dim order[n-1-k]; move to reversed dims
                n = len(sizes)
                perm = [list(reversed(order)).index(n - 1 - k) for k in range(n)]
                arr = base.transpose(perm)
            else:
                arr = np.zeros(tuple(reversed(sizes)), dtype=first.numpy_dtype())
            mins = [0] * len(sizes)
        else:
            arr = _as_array(first, reverse_axes)
            mins = [0] * arr.ndim
        if arr.dtype == np.dtype(object):
            raise CompileError("Buffer cannot hold Python objects")
        self._type = from_numpy(arr.dtype)
        self._arr = arr
        self._mins = mins
        self._name = internal_name(self._user_name, "b")
        if self._user_name is None:
            self._user_name = anonymous("b")
        from .registry import register
        register(self._name, self)

    # -- device copies (Halide's host/device dirty semantics; halo.runtime.device) --
    def _device(self, create_for=None):
        from ..runtime.device import backend_for, device_state
        return device_state(self._arr, backend_for(create_for) if create_for is not False
                            else None)

    def _host_access(self, write=False):
        """Reading on the host brings back newer device data first (halo does
        this for you, unlike Halide); writing marks the host copy newer."""
        from ..runtime.device import device_state
        st = device_state(self._arr)
        if st is not None:
            st.to_host(self._arr)
            if write:
                st.host_dirty = True

    def copy_to_device(self, target=None):
        """Copy to the device of `target` (default: HL_JIT_TARGET's GPU, else
        OpenCL) if the host copy is newer or nothing is there yet."""
        self._device(target).to_device(self._arr)
        return self

    def copy_to_host(self):
        st = self._device(False)
        if st is not None:
            st.to_host(self._arr)
        return self

    def device_malloc(self, target=None):
        self._device(target).malloc()
        return self

    def device_free(self):
        from ..runtime.device import drop_device_state
        st = self._device(False)
        if st is not None and st.device_dirty:
            st.to_host(self._arr)
        drop_device_state(self._arr)
        return self

    device_deallocate = device_free

    def device_sync(self):
        st = self._device(False)
        if st is not None:
            st.backend.sync()
        return self

    def has_device_allocation(self) -> bool:
        st = self._device(False)
        return st is not None and st.allocated()

    def host_dirty(self) -> bool:
        st = self._device(False)
        return bool(st and st.host_dirty)

    def device_dirty(self) -> bool:
        st = self._device(False)
        return bool(st and st.device_dirty)

    def set_host_dirty(self, dirty=True):
        st = self._device(False)
        if st is not None:
            st.host_dirty = bool(dirty)
        return self

    def set_device_dirty(self, dirty=True):
        st = self._device(False)
        if st is None:
            raise BufferError(f"Buffer {self._user_name} has no device allocation to mark "
                              f"dirty: call device_malloc() or copy_to_device() first")
        st.device_dirty = bool(dirty)
        return self

    # -- numpy interop ----------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        self._host_access()
        if copy:
            return np.array(self._arr, dtype=dtype, copy=True)
        if dtype is not None and np.dtype(dtype) != self._arr.dtype:
            return self._arr.astype(dtype)
        return self._arr

    def numpy_view(self, reverse_axes: bool = True):
        self._host_access()
        return self._arr if reverse_axes else self._arr.transpose()

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """DLPack export without a copy: the CUDA device memory of a Buffer that
        has a CUDA allocation (`__dlpack_device__` says which), else the host
        array (after bringing back newer device data)."""
        here = self.__dlpack_device__()
        want = tuple(int(d) for d in dl_device) if dl_device is not None else here
        st = self._device(False)
        if want[0] in dlpack.CUDA_DEVICES:
            if want != here:
                raise DLPackError(f"Buffer {self._user_name} is on {dlpack.device_name(*here)},"
                                  f" not {dlpack.device_name(*want)}: halo exports it only "
                                  f"where it is (copy_to_device('host-cuda') moves it)")
            if copy:
                raise DLPackError(f"Buffer {self._user_name}: halo cannot copy a CUDA buffer "
                                  f"for export (copy=True); export it and copy on the consumer")
            return self._export_cuda(st, stream, max_version)
        if want[0] != dlpack.CPU:
            raise DLPackError(f"Buffer {self._user_name} cannot be exported to "
                              f"{dlpack.device_name(*want)}: halo exports CUDA and host memory")
        if here[0] != dlpack.CPU and copy is False:
            raise DLPackError(f"Buffer {self._user_name} lives on {dlpack.device_name(*here)}:"
                              f" exporting it to the host needs a copy, and copy=False")
        self._host_access()
        kwargs = {k: v for k, v in (("stream", stream), ("max_version", max_version),
                                    ("dl_device", dl_device), ("copy", copy)) if v is not None}
        return self._arr.__dlpack__(**kwargs)

    def _export_cuda(self, st, stream, max_version):
        if stream == 0:
            raise DLPackError("__dlpack__: stream=0 is ambiguous for CUDA (DLPack spec); "
                              "use 1 for the legacy default stream")
        if st.host_dirty:
            st.to_device(self._arr)
        if stream != -1:
            st.synchronize()        # halo's launches are done before the consumer's stream runs
        a = self._arr
        # the capsule holds the host array (and so the device copy) and the state
        # itself, which survives device_free until the consumer lets go
        return dlpack.export_capsule(
            st.address(), st.dlpack_device(), a.dtype, a.shape,
            [s // a.itemsize for s in a.strides], keep_alive=(a, st),
            versioned=max_version is not None and max_version[0] >= 1,
            read_only=not a.flags.writeable)

    def __dlpack_device__(self):
        st = self._device(False)
        if st is not None and st.allocated() and st.on_cuda():
            return st.dlpack_device()
        return self._arr.__dlpack_device__()

    @staticmethod
    def from_dlpack(obj) -> "Buffer":
        """A Buffer sharing the memory of a DLPack producer (numpy, torch, CuPy,
        ...), without a copy; axes reversed like Buffer(ndarray). A tensor on
        a CUDA or OpenCL device becomes the Buffer's device allocation: the
        host copy stays empty until copy_to_host (or a host access) fetches
        it, and the producer's memory is kept until the Buffer dies."""
        return Buffer(_from_dlpack_array(obj))

    def _axis(self, i: int) -> int:
        return self._arr.ndim - 1 - i

    # -- Halide's accessors --------------------------------------------------------
    def name(self) -> str:
        return self._user_name

    def set_name(self, name: str):
        self._user_name = name

    def type(self) -> Type:
        return self._type

    def dimensions(self) -> int:
        return self._arr.ndim

    def dim(self, i: int) -> BufferDimension:
        if not 0 <= i < self.dimensions():
            raise CompileError(f"Buffer {self._user_name} has {self.dimensions()} "
                               f"dimensions; dim({i}) does not exist")
        return BufferDimension(self, i)

    def width(self) -> int:
        return self.dim(0).extent() if self.dimensions() > 0 else 1

    def height(self) -> int:
        return self.dim(1).extent() if self.dimensions() > 1 else 1

    def channels(self) -> int:
        return self.dim(2).extent() if self.dimensions() > 2 else 1

    def left(self):
        return self.dim(0).min()

    def right(self):
        return self.dim(0).max()

    def top(self):
        return self.dim(1).min()

    def bottom(self):
        return self.dim(1).max()

    def number_of_elements(self) -> int:
        return int(self._arr.size)

    def size_in_bytes(self) -> int:
        return int(self._arr.nbytes)

    def defined(self) -> bool:
        return True

    def set_min(self, mins):
        mins = list(mins)
        if len(mins) > self.dimensions():
            raise CompileError(f"set_min got {len(mins)} values for a "
                               f"{self.dimensions()}-D Buffer {self._user_name}")
        for i, m in enumerate(mins):
            self._mins[i] = int(m)
        from .names import bump_epoch
        return self

    def translate(self, deltas):
        for i, d in enumerate(deltas):
            self._mins[i] += int(d)
        return self

    def copy(self) -> "Buffer":
        self._host_access()
        b = Buffer(np.array(self._arr, copy=True), name=self._user_name)
        b._mins = list(self._mins)
        return b

    def fill(self, value):
        self._host_access(write=True)
        self._arr[...] = value
        return self

    def contains(self, *coords) -> bool:
        coords = _coords(coords)
        return all(self._mins[i] <= c < self._mins[i] + self.dim(i).extent()
                   for i, c in enumerate(coords))

    def in_(self, *consumers):
        """A wrapper Func that reads this Buffer; consumers read the wrapper."""
        from ..schedule.directives import make_wrapper
        from .names import bump_epoch
        if not hasattr(self, "_wrappers"):
            self._wrappers = {}
        w = make_wrapper(self._user_name, self._name, self._wrappers, consumers,
                         lambda vs: self[vs], self.dimensions())
        bump_epoch()
        return w

    def reverse_axes(self) -> "Buffer":
        self._host_access()         # the view shares host memory, not the device copy
        b = Buffer(self._arr.transpose(), name=self._user_name)
        b._mins = list(reversed(self._mins))
        return b

    def cropped(self, dim: int, min: int, extent: int) -> "Buffer":
        self._host_access()         # the view shares host memory, not the device copy
        lo = min - self._mins[dim]
        if lo < 0 or lo + extent > self.dim(dim).extent():
            raise BufferError(f"crop of Buffer {self._user_name} dimension {dim} to "
                              f"[{min}, {min + extent}) is outside its bounds")
        idx = [slice(None)] * self.dimensions()
        idx[self._axis(dim)] = slice(lo, lo + extent)
        b = Buffer(self._arr[tuple(idx)], name=self._user_name)
        b._mins = list(self._mins)
        b._mins[dim] = min
        return b

    def all_equal(self, value) -> bool:
        return bool(np.all(self._arr == value))

    # -- element access in Halide coordinates ------------------------------------
    def _index(self, coords):
        coords = _coords(coords)
        if len(coords) != self.dimensions():   # ValueError, as halide.Buffer
            raise ValueError(f"Incorrect number of dimensions: Buffer {self._user_name} "
                             f"has {self.dimensions()}, got {len(coords)} indices")
        idx = []
        for i, c in enumerate(coords):
            ext = self.dim(i).extent()
            m = self._mins[i]
            if not (m <= c < m + ext):
                raise IndexError(f"index {c} is out of bounds for axis {i} with "
                                 f"min={m}, extent={ext}")
            idx.append(c - m)
        return tuple(reversed(idx))

    def __getitem__(self, coords):
        from .expr import ExprLike, Expr
        cs = coords if isinstance(coords, (tuple, list)) else (coords,)
        if any(isinstance(c, (ExprLike, Expr)) for c in cs) or any(
                not isinstance(c, (int, np.integer)) for c in cs):
            from .param import _image_call
            return _image_call(self, self._name, self._type, self.dimensions(),
                               tuple(cs), self._user_name)
        # b[i] with an int: so list(b) iterates a 1-D Buffer as halide.Buffer
        # does (no __iter__; Python stops at the IndexError past the end).
        self._host_access()
        v = self._arr[self._index(tuple(cs))]
        return v.item()

    def __setitem__(self, coords, value):
        cs = coords if isinstance(coords, (tuple, list)) else (coords,)
        self._host_access(write=True)
        self._arr[self._index(tuple(cs))] = value

    def __repr__(self):
        dims = ", ".join(f"[{self._mins[i]}, {self.dim(i).extent()}]"
                         for i in range(self.dimensions()))
        return f"<halo.Buffer '{self._user_name}' {self._type} {dims}>"

    def __hash__(self):
        return id(self)


def _coords(coords):
    if len(coords) == 1 and isinstance(coords[0], (tuple, list)):
        coords = tuple(coords[0])
    if not isinstance(coords, tuple):
        coords = (coords,)
    return tuple(int(c) for c in coords)


def _from_dlpack_array(obj, reverse_axes=True) -> np.ndarray:
    """The host array for a DLPack producer: its own memory for a host tensor;
    for a device tensor, an empty host copy whose device copy is the tensor.
    Without reverse_axes, transposed (the device copy belongs to that view)."""
    from ..runtime.device import adopt_device_memory
    dev = obj.__dlpack_device__() if hasattr(obj, "__dlpack_device__") else (dlpack.CPU, 0)
    kind = int(dev[0])
    if kind in (dlpack.CPU, dlpack.CUDA_HOST):
        arr = np.from_dlpack(obj)
        return arr if reverse_axes else arr.transpose()
    if kind not in dlpack.CUDA_DEVICES + (dlpack.OPENCL,):
        raise DLPackError(f"from_dlpack: halo cannot use a tensor on "
                          f"{dlpack.device_name(*dev)}; it takes host, CUDA and OpenCL "
                          f"tensors")
    # CUDA: halo launches on the legacy default stream (DLPack's stream 1)
    tensor = dlpack.consume(obj, stream=1 if kind in dlpack.CUDA_DEVICES else None)
    arr = dlpack.host_mirror(tensor)
    arr = arr if reverse_axes else arr.transpose()
    adopt_device_memory(arr, tensor)
    return arr


def _as_array(obj, reverse_axes=True) -> np.ndarray:
    """numpy's view of obj's memory (no copy), transposed without reverse_axes."""
    if hasattr(obj, "__dlpack__") and not hasattr(obj, "__array_interface__"):
        return _from_dlpack_array(obj, reverse_axes)
    arr = obj if isinstance(obj, np.ndarray) else _asarray(obj)
    return arr if reverse_axes else arr.transpose()


def _asarray(obj) -> np.ndarray:
    try:
        return np.asarray(obj)
    except Exception as e:  # pragma: no cover - depends on the object
        raise CompileError(f"Cannot make a Buffer from {type(obj).__name__}: {e}") from e
