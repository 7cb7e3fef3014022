"""`Pipeline`, `Callable` and `evaluate`: compiling and running Funcs.

`realize(sizes)` first asks the compiled pipeline which region each output
really touches (a bounds query), allocates that, runs, and returns views
cropped to `[0, sizes)`, like Halide. `realize(buffer)` writes into the
caller's buffers, which must cover everything the pipeline writes.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..errors import BufferError, CompileError, HaloRuntimeError
from .buffer import Buffer
from .func import Func
from .names import current_epoch
from .param import ImageParam, Param


class Pipeline:
    def __init__(self, outputs):
        if isinstance(outputs, Func):
            outputs = [outputs]
        outputs = list(outputs)
        if not outputs:
            raise CompileError("A Pipeline needs at least one output Func")
        for f in outputs:
            if not isinstance(f, Func):
                raise CompileError(f"Pipeline outputs must be Funcs, got {type(f).__name__}")
            if not f.defined():
                raise CompileError(f"Pipeline output Func {f.name()} has no definition")
        self._outputs = outputs
        self._compiled = {}      # target spec -> (epoch, CompiledPipeline)

    def outputs(self):
        return list(self._outputs)

    def name(self) -> str:
        return self._outputs[0].name()

    # -- compilation -------------------------------------------------------------------
    def _lower(self):
        from ..lower import lower
        return lower([f._f for f in self._outputs], self.name())

    def compile_jit(self, target=None):
        return self._compile(target)

    def _compile(self, target=None):
        from ..runtime.target import Target, get_jit_target_from_environment
        t = target if isinstance(target, Target) else (
            Target(target) if isinstance(target, str) else get_jit_target_from_environment())
        cached = self._compiled.get(t.spec)
        if cached is not None and cached[0] == current_epoch[0]:
            return cached[1]
        from ..codegen.c import generate_c, c_identifier
        from ..runtime.compiler import compile_shared
        from ..runtime.jit import CompiledPipeline
        lowered = self._lower()
        fn_name = "halo_" + c_identifier(self.name())[:40]
        from ..runtime.device import compile_gpu, launches_of
        if launches_of(lowered):         # GPU kernels: halo.runtime.device runs them
            compiled = compile_gpu(lowered, t, fn_name)
            self._compiled[t.spec] = (current_epoch[0], compiled)
            return compiled
        source, openmp = generate_c(lowered, fn_name, vector_bytes=t.vector_bytes())
        lib = compile_shared(source, t.cflags(), openmp, stem=fn_name)
        try:
            compiled = CompiledPipeline(lowered, lib, fn_name, source)
        except Exception:
            from ..runtime.compiler import evict
            evict(lib)           # a broken cache entry: rebuild once
            lib = compile_shared(source, t.cflags(), openmp, stem=fn_name)
            compiled = CompiledPipeline(lowered, lib, fn_name, source)
        self._compiled[t.spec] = (current_epoch[0], compiled)
        return compiled

    def c_source(self, target=None) -> str:
        return self._compile(target).source

    def loop_nest_text(self) -> str:
        from ..ir.printer import stmt_to_str
        return stmt_to_str(self._lower().loop_nest)

    def lowered_stmt(self) -> str:
        from ..ir.printer import stmt_to_str
        return stmt_to_str(self._lower().body)

    def print_loop_nest(self):
        print(self.loop_nest_text(), end="")

    def infer_arguments(self) -> list:
        from ..lower import _arguments
        from ..lower.environment import find_environment
        env = find_environment([f._f for f in self._outputs])
        args = _arguments(env, [], [])
        return [a.obj for a in args]

    # -- running ------------------------------------------------------------------------
    def _input_values(self, compiled, overrides=None):
        values = []
        for a in compiled.arguments:
            if a.kind == "input":
                obj = a.obj
                src = overrides.get(a.name) if overrides else None
                if src is None:
                    src = obj if isinstance(obj, Buffer) else obj.get()
                if src is None:
                    raise BufferError(f"ImageParam {a.user_name} has no buffer bound: call "
                                      f".set(buffer) before realizing")
                b = src if isinstance(src, Buffer) else Buffer(src)
                if b.type() != a.type:
                    raise BufferError(f"Input buffer {a.user_name} has type {b.type()}, but "
                                      f"the pipeline needs {a.type}")
                values.append((b._arr, b._mins))
            elif a.kind == "param":
                v = overrides.get(a.name) if overrides else None
                if v is None:
                    v = a.obj.get()
                if v is None:
                    raise CompileError(f"Param {a.user_name} has no value: call .set(value)")
                values.append(v)
            else:
                values.append(None)
        return values

    def realize(self, *args, target=None, **kwargs):
        from ..runtime.target import Target
        if args and isinstance(args[-1], Target) and target is None:
            args, target = args[:-1], args[-1]      # Halide's realize(sizes, target)
        sizes_or_bufs = _parse_realize_args(args, kwargs)
        compiled = self._compile(target)
        values = self._input_values(compiled)
        outs = [a for a in compiled.arguments if a.kind == "output"]
        if sizes_or_bufs is not None and isinstance(sizes_or_bufs, list) and \
                all(isinstance(s, (int, np.integer)) for s in sizes_or_bufs):
            return self._realize_sizes(compiled, values, outs, [int(s) for s in sizes_or_bufs])
        bufs = sizes_or_bufs if isinstance(sizes_or_bufs, list) else [sizes_or_bufs]
        bufs = [b if isinstance(b, Buffer) else Buffer(b) for b in bufs]
        if len(bufs) != len(outs):
            raise BufferError(f"Pipeline {self.name()} has {len(outs)} output buffer(s) "
                              f"(Tuple elements count), but {len(bufs)} were given")
        it = iter(bufs)
        for i, a in enumerate(compiled.arguments):
            if a.kind == "output":
                b = next(it)
                if b.type() != a.type:
                    raise BufferError(f"Output buffer {a.user_name} has type {b.type()}, but "
                                      f"the Func has type {a.type}")
                values[i] = (b._arr, b._mins)
        compiled(values)
        return sizes_or_bufs

    def _realize_sizes(self, compiled, values, outs, sizes):
        for a in outs:
            if len(sizes) != a.dimensions:
                raise BufferError(f"Func {a.user_name} has {a.dimensions} dimensions, but "
                                  f"realize() was given {len(sizes)} sizes")
            if any(s < 0 for s in sizes):
                raise BufferError(f"realize() sizes must be non-negative, got {sizes}")
        query_vals = list(values)
        for i, a in enumerate(compiled.arguments):
            if a.kind == "output":
                dummy = np.zeros(1, dtype=a.type.numpy_dtype())
                shape = tuple(reversed(sizes))
                # The query reads only shapes and strides, never data: a view of
                # one element with compact strides describes the request.
                strides, acc = [], dummy.itemsize
                for n in reversed(shape):
                    strides.insert(0, acc)
                    acc *= max(n, 1)
                query_vals[i] = (np.lib.stride_tricks.as_strided(
                    dummy, shape=shape, strides=tuple(strides)), [0] * len(sizes))
        boxes = dict(compiled.bounds_query(query_vals))
        results = []
        for i, a in enumerate(compiled.arguments):
            if a.kind != "output":
                continue
            box = boxes[i]
            mins = [int(m) for m, _ in box]
            exts = [max(int(e), 0) for _, e in box]
            arr = np.zeros(tuple(reversed(exts)), dtype=a.type.numpy_dtype())
            values[i] = (arr, mins)
            crop = tuple(reversed([slice(0 - m, 0 - m + s) for m, s in zip(mins, sizes)]))
            results.append(arr[crop] if arr.ndim else arr)
        compiled(values)
        bufs = []
        for a, arr in zip(outs, results):
            b = Buffer(arr, name=a.user_name)
            bufs.append(b)
        if len(bufs) == 1:
            return bufs[0]
        return tuple(bufs)

    def compile_to_callable(self, arguments=None, target=None):
        return Callable(self, arguments, target)

    def infer_input_bounds(self, *args, **kwargs):
        raise CompileError("infer_input_bounds() is not supported yet")

    # -- ahead-of-time export (halo.aot): Halide's names ---------------------------------
    def compile_to_c(self, filename, arguments=None, fn_name=None, target=None):
        from .. import aot
        aot.compile_to_c(self, filename, arguments, fn_name, target)

    def compile_to_header(self, filename, arguments=None, fn_name=None, target=None):
        from .. import aot
        aot.compile_to_header(self, filename, arguments, fn_name, target)

    def compile_to_static_library(self, filename_prefix, arguments=None, fn_name=None,
                                  target=None):
        from .. import aot
        return aot.compile_to_static_library(self, filename_prefix, arguments, fn_name, target)

    def compile_to_shared_library(self, filename_prefix, arguments=None, fn_name=None,
                                  target=None):
        from .. import aot
        return aot.compile_to_shared_library(self, filename_prefix, arguments, fn_name, target)

    # -- schedule files (halo.schedule.serialize) -----------------------------------
    def apply_schedule(self, path, strict=True):
        """Replay a schedule file (`schedules/NAME.TARGET.json`, or its dict) on
        this pipeline's Funcs; `strict=False` skips the algorithm-hash check."""
        from ..schedule.serialize import apply_schedule
        apply_schedule(self, path, strict)
        return self

    def save_schedule(self, path, target=None) -> str:
        """Write this pipeline's schedule to `path` (a directory: NAME.TARGET.json
        in it); returns the path written."""
        from ..schedule.serialize import save_schedule
        return save_schedule(self, path, target)

    def schedule_source(self) -> str:
        """The schedule as Python calls (what `halo show --stage schedule` prints)."""
        from ..schedule.serialize import schedule_to_python
        return schedule_to_python(self)

    def algorithm_hash(self) -> str:
        """A stable hash of the algorithm (not the schedule), as in schedule files."""
        from ..schedule.serialize import algorithm_hash
        return algorithm_hash(self)


def _func_apply_schedule(self, path, strict=True):
    """`Func.apply_schedule(path)`: apply a schedule file to the pipeline of this Func."""
    from ..schedule.serialize import apply_schedule
    apply_schedule(self, path, strict)
    return self


# Set here rather than in func.py so the Func class needs no schedule-file import.
Func.apply_schedule = _func_apply_schedule


def _func_export(method):
    def call(self, *args, **kwargs):
        return getattr(self._pipeline(), method)(*args, **kwargs)
    call.__name__ = method
    call.__doc__ = f"`Func.{method}`: as `Pipeline(func).{method}` (halo.aot)."
    return call


for _m in ("compile_to_c", "compile_to_header", "compile_to_static_library",
           "compile_to_shared_library"):
    setattr(Func, _m, _func_export(_m))


class Callable:
    """`c(*inputs, *outputs)`: a compiled pipeline called with arrays/scalars.

    Inputs are given in `arguments` order (ImageParams and Params); numpy
    arrays have their axes reversed into Halide order, like `hl.Buffer(a)`.
    """

    def __init__(self, pipeline: Pipeline, arguments=None, target=None):
        self._compiled = pipeline._compile(target)
        args = self._compiled.arguments
        declared = [a for a in args if a.kind != "output"]
        if arguments is None:
            order = declared
        else:
            by_obj = {id(a.obj): a for a in declared}
            order = []
            for obj in arguments:
                a = by_obj.get(id(obj))
                if a is None:
                    raise CompileError(f"compile_to_callable: {obj!r} is not an input of "
                                       f"pipeline {pipeline.name()}")
                order.append(a)
            missing = [a.user_name for a in declared if id(a.obj) not in {id(o) for o in arguments}]
            if missing:
                raise CompileError(f"compile_to_callable: arguments missing: {missing}")
        self._order = [args.index(a) for a in order]
        self._outputs = [i for i, a in enumerate(args) if a.kind == "output"]

    def __call__(self, *values):
        args = self._compiled.arguments
        n_in, n_out = len(self._order), len(self._outputs)
        if len(values) != n_in + n_out:
            raise BufferError(f"Callable takes {n_in} input(s) and {n_out} output(s), got "
                              f"{len(values)} arguments")
        vals = [None] * len(args)
        for idx, v in zip(self._order + self._outputs, values):
            a = args[idx]
            if a.kind == "param":
                vals[idx] = _param_value(a, v)
            elif isinstance(v, np.ndarray):
                # numpy order is reversed Halide order already: no Buffer needed
                if v.dtype != a.dtype:
                    raise BufferError(f"Buffer {a.user_name} has dtype {v.dtype}, but the "
                                      f"pipeline needs {a.type}")
                vals[idx] = (v, _ZEROS[:v.ndim])
            else:
                b = v if isinstance(v, Buffer) else Buffer(v)
                if b.type() != a.type:
                    raise BufferError(f"Buffer {a.user_name} has type {b.type()}, but the "
                                      f"pipeline needs {a.type}")
                vals[idx] = (b._arr, b._mins)
        self._compiled(vals)


_ZEROS = (0,) * 64


def _param_value(a, v):
    """A Callable's scalar argument, checked like Param.set (ctypes would wrap)."""
    t = a.type
    try:
        if not isinstance(v, (int, float, np.number, np.bool_)):
            raise TypeError(v)
        if t.is_float():
            return float(v)
        if t.is_bool():
            return bool(v)
        if isinstance(v, (float, np.floating)) and v != int(v) or not t.can_represent(int(v)):
            raise ValueError(v)
        return int(v)
    except (TypeError, ValueError, OverflowError):
        raise HaloRuntimeError(f"Param {a.user_name} of type {t} cannot hold {v!r}") from None


def _parse_realize_args(args, kwargs):
    if "sizes" in kwargs:
        return list(kwargs.pop("sizes"))
    if "dst" in kwargs:
        return kwargs.pop("dst")
    if not args:
        return []
    if len(args) == 1:
        a = args[0]
        if isinstance(a, (list, tuple)):
            if all(isinstance(s, (int, np.integer)) for s in a):
                return list(a)
            return list(a)
        if isinstance(a, (int, np.integer)):
            return [int(a)]
        return a
    if all(isinstance(s, (int, np.integer)) for s in args):
        return list(args)
    raise CompileError(f"realize() takes a list of sizes or output buffer(s), got {args!r}")


def evaluate(e):
    """Evaluate an Expr (or a Tuple of Exprs) that uses no Vars; a Python value."""
    f = Func("evaluate")
    f[()] = e
    r = f.realize([])
    if isinstance(r, tuple):
        return tuple(b[()] for b in r)
    return r[()]
