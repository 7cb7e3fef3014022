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
from .bounds_inference import infer_bounds
from .cse import common_subexpression_elimination
from .checks import param_checks, region_checks
from .environment import decide_compute_levels, find_environment, realization_order
from .inline import inline_calls
from .schedule_functions import build_produce
from .storage_flattening import buffer_name, flatten_storage


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
    env = find_environment(outputs)
    levels = decide_compute_levels(env, outputs)
    order = realization_order(env, levels, outputs)
    inlined = {n for n, lv in levels.items() if lv.is_inlined()}
    # Inline before bounds inference, so bounds see through inlined Funcs.
    definitions = {n: [_inline_definition(d, env, inlined) for d in env[n].definitions]
                   for n in order}
    arguments = _arguments(env, order, outputs)
    user_names = {a.name: a.user_name for a in arguments}
    bounds = log("bounds_inference", infer_bounds, env, order, definitions, outputs, user_names)
    nest = log("schedule_functions", _build_loop_nest, env, order, definitions, outputs, bounds)
    checks = _checks(arguments, bounds, env)
    body = S.block(*checks, nest)
    body = log("storage_flattening", flatten_storage, body, env)
    body = log("simplify", simplify, body)
    body = log("common_subexpression_elimination", common_subexpression_elimination, body)
    body = _wrap_lets(bounds.lets, body)
    query, layout = _bounds_query(arguments, bounds)
    return LoweredPipeline(name, arguments, body, query, layout, loop_nest=_wrap_lets(
        bounds.lets, nest), pass_times=log.times)


def _inline_definition(d, env, inlined):
    from ..lang.function import Definition
    args = tuple(inline_calls(a, env, inlined) for a in d.args)
    values = tuple(inline_calls(v, env, inlined) for v in d.values)
    return Definition(args, values, d.rdoms, d.schedule)


def _build_loop_nest(env, order, definitions, outputs, bounds):
    out_names = {f.name for f in outputs}
    body = S.block(*[build_produce(env[n], definitions[n]) for n in order])
    for n in reversed(order):
        if n in out_names:
            continue
        f = env[n]
        box = tuple((lo, E.Add(E.Sub(hi, lo), E.Const(i32, 1))) for lo, hi in bounds.alloc[n])
        body = S.Realize(n, tuple(f.output_types), box, body)
    return body


def _arguments(env, order, outputs):
    from ..lang.buffer import Buffer
    inputs, params = {}, {}
    for n in sorted(env):
        f = env[n]
        inputs.update(f.inputs)
        params.update(f.params)
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


def _checks(arguments, bounds, env):
    out = []
    params = [a.obj for a in arguments if a.kind == "param"]
    out += param_checks(params)
    for a in arguments:
        if a.kind == "input" and a.name in bounds.image_required:
            out += region_checks("Input", a.name, a.user_name, bounds.image_required[a.name])
        elif a.kind == "output":
            out += region_checks("Output", a.name, a.user_name, bounds.alloc[a.func.name])
    return out


def _wrap_lets(lets, body):
    for name, value in reversed(lets):
        body = S.LetStmt(name, value, body)
    return body


def _bounds_query(arguments, bounds):
    """Stores (min, extent) per dimension of each output's storage box and
    each input's required region into the int64 array `_query`."""
    stores, layout, k = [], [], 0
    for idx, a in enumerate(arguments):
        if a.kind == "output":
            box = bounds.alloc[a.func.name]
        elif a.kind == "input" and a.name in bounds.image_required:
            box = bounds.image_required[a.name]
        else:
            continue
        layout.append((idx, len(box)))
        for lo, hi in box:
            from ..ir.types import i64
            stores.append(S.Store("_query", E.Cast(i64, lo), E.Const(i64, k)))
            stores.append(S.Store("_query", E.Cast(i64, simplify(
                E.Add(E.Sub(hi, lo), E.Const(i32, 1)))), E.Const(i64, k + 1)))
            k += 2
    return _wrap_lets(bounds.lets, S.block(*stores) if stores else S.Evaluate(E.Const(i32, 0))), layout
