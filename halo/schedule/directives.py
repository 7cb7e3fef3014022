"""Scheduling directives on `Func` and `Stage`, with Halide's names.

Each directive checks its arguments in the user's terms (naming the Func,
stage and dimension, and listing valid choices), records a `Directive` in
the Func's schedule log and updates the schedule data. Directives return the
Func or Stage so calls chain, as in Halide.
"""
from __future__ import annotations

from ..errors import CompileError
from ..lang.names import bump_epoch
from .schedule import Directive, LoopLevel


def _fn(func):
    return func._f


def _record(func, name, args, stage=0):
    _fn(func).schedule.log.append(Directive(name, list(args), stage))
    bump_epoch()
    pipeline = getattr(func, "_cached_pipeline", None)
    if pipeline is not None:
        del func._cached_pipeline


def compute_root(func):
    s = _fn(func).schedule
    s.compute_level = LoopLevel.root()
    s.store_level = LoopLevel.root()
    s.explicit_compute = True
    _record(func, "compute_root", [])
    return func


def compute_inline(func):
    fn = _fn(func)
    if len(fn.definitions) > 1:
        raise CompileError(f"Func {fn.user_name} has update definitions, so it cannot be "
                           f"inlined: compute_inline() needs a pure Func")
    s = fn.schedule
    s.compute_level = LoopLevel.inlined()
    s.store_level = LoopLevel.inlined()
    s.explicit_compute = True
    _record(func, "compute_inline", [])
    return func


def store_root(func):
    _fn(func).schedule.store_level = LoopLevel.root()
    _record(func, "store_root", [])
    return func


def set_estimate(func, var, min, extent):
    fn = _fn(func)
    name = var.name() if hasattr(var, "name") else str(var)
    if name not in fn.pure_args:
        raise CompileError(f"In schedule for {fn.user_name}: set_estimate on unknown "
                           f"dimension {name}; Vars: {', '.join(fn.pure_args)}")
    fn.schedule.estimates[fn.pure_args.index(name)] = (min, extent)
    return func


def set_estimates(func, estimates):
    fn = _fn(func)
    for i, (mn, ext) in enumerate(estimates):
        fn.schedule.estimates[i] = (mn, ext)
    return func


def print_loop_nest(func):
    from ..lang.pipeline import Pipeline
    print(Pipeline(func).loop_nest_text(), end="")


def _not_yet(name):
    def fn(func_or_stage, *args, **kwargs):
        owner = func_or_stage.name() if hasattr(func_or_stage, "name") else "?"
        raise CompileError(
            f"In schedule for {owner}: the directive {name}() is not supported yet "
            f"by this version of halo (the default schedule is used only when no "
            f"directive is given, so this is an error rather than being ignored)")
    return fn


_PLANNED = ["split", "fuse", "tile", "reorder", "rename", "serial", "vectorize",
            "unroll", "parallel", "compute_at", "store_at", "hoist_storage",
            "bound", "bound_extent", "align_bounds", "reorder_storage", "fold_storage",
            "in_", "clone_in", "rfactor", "atomic", "specialize", "compute_with",
            "prefetch", "memoize", "gpu_blocks", "gpu_threads", "gpu_tile", "gpu",
            "gpu_single_thread", "gpu_lanes", "store_in", "async_"]

FUNC_DIRECTIVES = {name: _not_yet(name) for name in _PLANNED}
FUNC_DIRECTIVES.update({
    "compute_root": compute_root,
    "compute_inline": compute_inline,
    "store_root": store_root,
    "set_estimate": set_estimate,
    "set_estimates": set_estimates,
    "print_loop_nest": print_loop_nest,
})

STAGE_DIRECTIVES = {name: _not_yet(name) for name in _PLANNED}
