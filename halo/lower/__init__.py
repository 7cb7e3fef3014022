"""Lowering: algorithm graph + schedule -> one flat loop-nest Stmt.

`lower()` is the whole pipeline of passes, one line each, in order. Set
`LowerOptions(debug=True)` to print the IR after every pass (with
"(unchanged)" when a pass returned the same object) and `timing=True` to
time each pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.printer import stmt_to_str
from ..ir.simplify import simplify
from ..ir.types import Type, i32
from .bounds import Interval
from .bounds_inference import box_touched, hoist_region_lets, infer_bounds, peel_lets
from ..schedule.legality import check_stage_races
from .cse import common_subexpression_elimination
from .hoist_loads import hoist_invariant_loads
from .gpu_copies import inject_device_copies
from .gpu_kernels import extract_gpu_kernels
from .checks import constraint_checks, param_checks, region_checks
from .early_free import insert_early_frees
from .fold_lets import fold_lets
from .environment import decide_compute_levels, find_environment, realization_order
from .inline import inline_calls
from .wrappers import wrap_calls
from .schedule_functions import build_loop_nest, _loop_name
from .sliding_window import slide_windows
from .sink_vector_loops import sink_vectorized_loops
from .prefetch import inject_prefetches
from .unswitch_clamps import unswitch_clamps
from .partition_loops import partition_loops
from .storage_flattening import buffer_name, flatten_storage
from .hoist_storage import hoist_storage
from .compute_with import compute_with_pairs, fuse_compute_with, keep_adjacent
from .memoize import guard_memoized_produce, key_memoized_allocations


@dataclass
class Argument:
    """One argument of the compiled pipeline, in call order."""
    name: str            # internal name (IR variable/buffer name)
    user_name: str
    kind: str            # "input" | "param" | "output"
    type: Type
    dimensions: int = 0
    obj: object = None   # ImageParam, Buffer or Param (None for outputs)
    func: object = None  # the output Function
    value_index: int = 0

    @property
    def dtype(self):
        return self.type.numpy_dtype()


@dataclass
class LoweredPipeline:
    name: str
    arguments: list
    body: S.Stmt                       # the main entry, flattened
    query: S.Stmt                      # bounds query: stores regions to `_query`
    query_layout: list                 # (argument index, dims) in result order
    loop_nest: S.Stmt = None           # before flattening, for `halo show`
    pass_times: dict = field(default_factory=dict)


@dataclass
class LowerOptions:
    debug: bool = False
    timing: bool = False


class _Logger:
    def __init__(self, opts: LowerOptions):
        self.opts = opts
        self.times = {}
        self.last = None

    def __call__(self, name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.times[name] = time.perf_counter() - t0
        if self.opts.debug:
            same = out is self.last
            print(f"-- after {name}{' (unchanged)' if same else ''}")
            if not same and isinstance(out, S.Stmt):
                print(stmt_to_str(out))
        self.last = out
        return out


def lower(outputs, name: str, options: LowerOptions | None = None) -> LoweredPipeline:
    """Lower output Functions to a LoweredPipeline."""
    log = _Logger(options or LowerOptions())
    env = wrap_calls(outputs)        # consumers read their in_() wrappers
    outputs = [env[f.name] for f in outputs]
    levels = decide_compute_levels(env, outputs)
    store_levels = {n: _store_level(env[n], lv) for n, lv in levels.items()}
    fused_pairs = compute_with_pairs(env, levels)
    order = keep_adjacent(realization_order(env, levels, outputs), fused_pairs, env)
    inlined = {n for n, lv in levels.items() if lv.is_inlined()}
    # Inline first, so bounds inference sees through inlined Funcs.
    definitions = {n: [_inline_definition(d, env, inlined) for d in env[n].definitions]
                   for n in order}
    for n in order:      # illegal parallel/vectorized RVar loops, before any codegen
        for k, d in enumerate(env[n].definitions):
            check_stage_races(env[n], k, d, definitions[n][k])
            for spec in d.schedule.specializations:
                if spec.fail_message is None:
                    check_stage_races(env[n], k, _with_schedule(d, spec.schedule),
                                      definitions[n][k])
    arguments = _arguments(env, order, outputs)
    user_names = {a.name: a.user_name for a in arguments}
    user_names.update({n: f.user_name for n, f in env.items()})
    nest = log("schedule_functions", build_loop_nest, env, order, definitions, outputs,
               levels, store_levels)
    # Bounds need the whole nest: a producer's region is what its consumers
    # read at the producer's compute level.
    bounds = log("bounds_inference", infer_bounds, nest, env, outputs, user_names)
    nest = hoist_region_lets(bounds.body)
    # After bounds: it rewrites the region lets that bounds inference made.
    nest, auto_folds = log("sliding_window", slide_windows, nest, env, levels, store_levels,
                           lambda level, f: _loop_name(env, level, f), order)
    nest = log("fuse_compute_with", fuse_compute_with, nest, env, fused_pairs,
               lambda level, f: _loop_name(env, level, f))
    nest = log("sink_vectorized_loops", sink_vectorized_loops, nest)
    nest = log("inject_prefetches", inject_prefetches, nest, env, levels, user_names,
               lambda level, f: _loop_name(env, level, f))
    nest = log("guard_memoized_produce", guard_memoized_produce, nest, env, levels,
               store_levels)
    root_lets, nest = peel_lets(nest)
    regions, region_lets = _argument_regions(nest, arguments, env, user_names)
    checks = _checks(arguments, regions)
    body = S.block(*checks, nest)
    body = log("storage_flattening", flatten_storage, body, env, auto_folds)
    body = log("hoist_storage", hoist_storage, body, env,
               lambda level, f: _loop_name(env, level, f))
    body = log("key_memoized_allocations", key_memoized_allocations, body, env)
    body = log("unswitch_clamps", unswitch_clamps, body)
    body = log("simplify", simplify, body)
    body = log("partition_loops", partition_loops, body)
    # After simplify: compares simplified values; before CSE, which would hide them.
    top_lets = bounds.output_lets + root_lets + region_lets
    body = log("fold_lets", fold_lets, body, _dense_strides(arguments), top_lets)
    body = log("hoist_invariant_loads", hoist_invariant_loads, body)
    body = log("common_subexpression_elimination", common_subexpression_elimination, body)
    body = log("early_free", insert_early_frees, body)
    # Last: kernels take the final, simplified loops; what stays is host code.
    body = log("extract_gpu_kernels", extract_gpu_kernels, body, _gpu_buffers(env, order),
               [a.name for a in arguments], {n: f.user_name for n, f in env.items()},
               top_lets)
    body = log("inject_device_copies", inject_device_copies, body)
    body = _wrap_lets(top_lets, body)
    query, layout = _bounds_query(arguments, regions, top_lets)
    return LoweredPipeline(name, arguments, body, query, layout,
                           loop_nest=_wrap_lets(bounds.output_lets + root_lets, nest),
                           pass_times=log.times)


def _dense_strides(arguments):
    """The entry point requires every buffer argument's innermost dimension
    to be dense (as Halide does): its stride is the constant 1."""
    from ..ir.types import i64
    return {f"{a.name}.stride.0": E.Const(i64, 1) for a in arguments
            if a.kind != "param" and a.dimensions > 0}


def _gpu_buffers(env, order):
    """Internal buffer name -> (Func user name, MemoryType from store_in)."""
    return {buffer_name(n, j): (env[n].user_name, env[n].schedule.memory_type)
            for n in order for j in range(len(env[n].output_types))}


def _with_schedule(d, sched):
    import copy
    c = copy.copy(d)
    c.schedule = sched
    return c


def _store_level(f, compute_level):
    s = f.schedule
    if compute_level.is_root() or compute_level.is_inlined():
        return compute_level
    return s.store_level if s.explicit_store else compute_level


def _argument_regions(nest, arguments, env, user_names):
    """(min, max) per dim of what the pipeline writes to each output and
    reads of each input, as lets at the top of the pipeline."""
    regions, lets = {}, []
    for a in arguments:
        if a.kind == "param":
            continue
        if a.kind == "output":
            f = a.func
            if a.value_index:
                regions[a.name] = regions[f.name]
                continue
            box = box_touched(nest, f.name, f.dimensions(), user_names, calls=True,
                              provides=True)
            tag = "alloc"
        else:
            box = box_touched(nest, a.name, a.dimensions, user_names, kind="image")
            if not box.touched:
                continue
            tag = "req"
        names = []
        for i, iv in enumerate(box.dims):
            iv = iv if iv is not None else Interval(E.Const(i32, 0), E.Const(i32, -1))
            lo, hi = f"{a.name}.{tag}.{i}.min", f"{a.name}.{tag}.{i}.max"
            lets += [(lo, simplify(iv.min)), (hi, simplify(iv.max))]
            names.append((E.Variable(i32, lo), E.Variable(i32, hi)))
        regions[a.name] = names
    return regions, lets


def _inline_definition(d, env, inlined):
    from ..lang.function import Definition
    args = tuple(inline_calls(a, env, inlined) for a in d.args)
    values = tuple(inline_calls(v, env, inlined) for v in d.values)
    return Definition(args, values, d.rdoms, d.schedule)


def _arguments(env, order, outputs):
    from ..lang.buffer import Buffer
    inputs, params = {}, {}
    for n in sorted(env):
        f = env[n]
        inputs.update(f.inputs)
        params.update(f.params)
    from ..lang.expr import to_node
    from ..lang.registry import resolve_references
    for f in env.values():        # Params used by specialize() conditions
        for d in f.definitions:
            for spec in d.schedule.specializations:
                params.update(resolve_references(spec.condition).params)
    for obj in inputs.values():   # Params used by set_bounds() constraints
        cons = [to_node(c) for p in getattr(obj, "_constraints", {}).values()
                for c in p if c is not None]
        params.update(resolve_references(*cons).params)
    args = []
    for name in sorted(inputs, key=lambda k: inputs[k]._name):
        obj = inputs[name]
        args.append(Argument(name, obj.name(), "input", obj.type(), obj.dimensions(), obj))
    for name in sorted(params):
        p = params[name]
        args.append(Argument(name, p.name(), "param", p.type(), 0, p))
    for f in outputs:
        for j, t in enumerate(f.output_types):
            args.append(Argument(buffer_name(f.name, j), f.user_name, "output", t,
                                 f.dimensions(), None, f, j))
    return args


def _checks(arguments, regions):
    out = []
    params = [a.obj for a in arguments if a.kind == "param"]
    out += param_checks(params)
    for a in arguments:
        if a.name not in regions:
            continue
        kind = "Input" if a.kind == "input" else "Output"
        out += region_checks(kind, a.name, a.user_name, regions[a.name])
    for a in arguments:
        if a.kind == "input" and getattr(a.obj, "_constraints", None):
            out += constraint_checks(a.name, a.user_name, a.obj._constraints)
    return out


def _wrap_lets(lets, body):
    for name, value in reversed(lets):
        if name == "__asserts__":            # bound() checks among the lets
            body = S.block(*value, body)
        else:
            body = S.LetStmt(name, value, body)
    return body


def _bounds_query(arguments, regions, top_lets):
    """Stores (min, extent) per dimension of each output's storage box and
    each input's required region into the int64 array `_query`."""
    from ..ir.types import i64
    stores, layout, k = [], [], 0
    for idx, a in enumerate(arguments):
        if a.kind == "param" or a.name not in regions:
            continue
        box = regions[a.name]
        layout.append((idx, len(box)))
        for lo, hi in box:
            stores.append(S.Store("_query", E.Cast(i64, lo), E.Const(i64, k)))
            stores.append(S.Store("_query", E.Cast(i64, simplify(
                E.Add(E.Sub(hi, lo), E.Const(i32, 1)))), E.Const(i64, k + 1)))
            k += 2
    body = S.block(*stores) if stores else S.Evaluate(E.Const(i32, 0))
    return _wrap_lets(top_lets, body), layout
