"""The reference interpreter: evaluates an algorithm with numpy, ignoring
its schedule. It is the oracle that every backend is tested against.

It shares no code with lowering. Regions are found from the actual index
values (a Func is computed over the bounding box of the coordinates its
consumers read, plus wherever its updates write), so a bug in halo's
symbolic bounds inference cannot hide here. Update definitions run their
reduction domain serially, r.x innermost, with the pure dimensions
vectorized, which is exactly Halide's meaning.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import BufferError, CompileError, InternalError
from ..ir import expr as E
from ..ir.mutator import calls_in
from .evaluate import ExprEvaluator

__all__ = ["Interpreter", "realize"]


class _Realized:
    def __init__(self, mins, arrays):
        self.mins = mins          # per dim, Halide order
        self.arrays = arrays      # per Tuple element; axis i = dim i

    def extents(self):
        return list(self.arrays[0].shape)

    def covers(self, lo, hi):
        return all(m <= l and h < m + e for m, e, l, h in
                   zip(self.mins, self.extents(), lo, hi))


class Interpreter:
    """Evaluate Funcs over boxes. `inputs`: image name -> (mins, array with
    axis i = Halide dim i); `params`: param name -> Python value."""

    def __init__(self, functions: dict, inputs: dict, params: dict, image_names: dict):
        self.functions = functions        # internal name -> Function
        self.inputs = inputs
        self.params = params
        self.image_names = image_names    # internal name -> user name
        self.realized: dict[str, _Realized] = {}
        self.in_progress: set[str] = set()
        self.ev = ExprEvaluator(self)

    # -- variables, images, calls -------------------------------------------------
    def lookup_variable(self, v):
        if v.name in self.params:
            return np.asarray(self.params[v.name], dtype=v.type.numpy_dtype())
        parts = v.name.rsplit(".", 2)
        if len(parts) == 3 and parts[0] in self.inputs and parts[2].isdigit():
            mins, arr = self.inputs[parts[0]]
            d = int(parts[2])
            val = {"min": mins[d], "extent": arr.shape[d],
                   "stride": arr.strides[d] // max(arr.itemsize, 1)}.get(parts[1])
            if val is not None:
                return np.asarray(val, dtype=np.int32)
        raise CompileError(f"Variable {v.name} has no value (is a Param unset, or a Var "
                           f"used outside its Func?)")

    def call_image(self, c, args):
        if c.name not in self.inputs:
            raise BufferError(f"Input {self.image_names.get(c.name, c.name)} has no buffer bound")
        mins, arr = self.inputs[c.name]
        args = np.broadcast_arrays(*args) if args else []
        idx = []
        user = self.image_names.get(c.name, c.name)
        for d, a in enumerate(args):
            lo, hi = int(a.min()), int(a.max())
            if lo < mins[d]:
                raise BufferError(f"Input buffer {user} is accessed at {lo}, which is before "
                                  f"the min ({mins[d]}) in dimension {d}")
            if hi >= mins[d] + arr.shape[d]:
                raise BufferError(f"Input buffer {user} is accessed at {hi}, which is beyond "
                                  f"the max ({mins[d] + arr.shape[d] - 1}) in dimension {d}")
            idx.append(a.astype(np.int64) - mins[d])
        return arr[tuple(idx)] if idx else arr[()]

    def call_func(self, c, args):
        fn = self.functions[c.name]
        args = np.broadcast_arrays(*args) if args else []
        if args and args[0].size == 0:
            return np.zeros(args[0].shape, dtype=c.type.numpy_dtype())
        lo = [int(a.min()) for a in args]
        hi = [int(a.max()) for a in args]
        if c.name in self.in_progress:
            r = self.realized.get(c.name)
            if r is None or not r.covers(lo, hi):
                raise CompileError(f"Func {fn.user_name} reads itself outside the region it "
                                   f"computes; this recursion is not supported")
        else:
            self.ensure(fn, lo, hi)
            r = self.realized[c.name]
        idx = tuple(a.astype(np.int64) - m for a, m in zip(args, r.mins))
        return r.arrays[c.value_index][idx]

    # -- realization ------------------------------------------------------------------
    def ensure(self, fn, lo, hi):
        r = self.realized.get(fn.name)
        if r is not None:
            if r.covers(lo, hi):
                return
            lo = [min(a, b) for a, b in zip(lo, r.mins)]
            hi = [max(a, b + e - 1) for a, b, e in zip(hi, r.mins, r.extents())]
        self.realized[fn.name] = self.compute(fn, lo, hi)

    def realize(self, fn, mins, extents):
        """Compute `fn` over exactly [mins, mins+extents); arrays in Halide order."""
        lo = list(mins)
        hi = [m + e - 1 for m, e in zip(mins, extents)]
        if any(e <= 0 for e in extents):
            return [np.zeros(extents, dtype=t.numpy_dtype()) for t in fn.output_types]
        self.ensure(fn, lo, hi)
        r = self.realized[fn.name]
        sl = tuple(slice(l - m, l - m + e) for l, m, e in zip(lo, r.mins, extents))
        return [a[sl] for a in r.arrays]

    def compute(self, fn, lo, hi):
        self.in_progress.add(fn.name)
        try:
            lo, hi = self._grow_for_updates(fn, lo, hi)
            extents = [h - l + 1 for l, h in zip(lo, hi)]
            grids = np.meshgrid(*[np.arange(l, h + 1, dtype=np.int32) for l, h in zip(lo, hi)],
                                indexing="ij") if extents else []
            env = {name: g for name, g in zip(fn.pure_args, grids)}
            pure = fn.definitions[0]
            arrays = []
            for v, t in zip(pure.values, fn.output_types):
                val = self.ev.eval(v, env)
                arrays.append(np.array(np.broadcast_to(val, extents), dtype=t.numpy_dtype()))
            result = _Realized(lo, arrays)
            self.realized[fn.name] = result
            for d in fn.updates():
                self._run_update(fn, d, result)
            return result
        finally:
            self.in_progress.discard(fn.name)

    def _rdom_points(self, d, env):
        """RDom bounds evaluated (they may use Params/images but not pure vars)."""
        bounds = []
        for lo, ext in d.rvar_bounds():
            bounds.append((int(self.ev.eval(lo, env)), int(self.ev.eval(ext, env))))
        return bounds

    def _grow_for_updates(self, fn, lo, hi):
        """Extend the box to every point an update writes or reads of fn itself."""
        lo, hi = list(lo), list(hi)
        for d in fn.updates():
            pure_pos = {i for i, a in enumerate(d.args)
                        if isinstance(a, E.Variable) and a.name == fn.pure_args[i]}
            self_calls = [c for node in (*d.values, *d.args) for c in calls_in(node, E.CallType.FUNC)
                          if c.name == fn.name]
            exprs = [(i, a) for i, a in enumerate(d.args) if i not in pure_pos]
            exprs += [(i, a) for c in self_calls for i, a in enumerate(c.args) if i not in pure_pos]
            if not exprs:
                continue
            env = self._update_grid(fn, d, lo, hi, pure_pos)
            if env is None:
                continue
            mask = env.pop("__mask__")
            # only the points the predicates keep: the others may read outside inputs
            env = {k: np.broadcast_to(g, mask.shape)[mask] for k, g in env.items()}
            for i, a in exprs:
                v = np.broadcast_to(self.ev.eval(a, env), (int(mask.sum()),))
                if v.size:
                    lo[i] = min(lo[i], int(v.min()))
                    hi[i] = max(hi[i], int(v.max()))
        return lo, hi

    def _update_grid(self, fn, d, lo, hi, pure_pos):
        rb = self._rdom_points(d, {})
        if any(e <= 0 for _, e in rb):
            return None
        axes = [np.arange(l, h + 1, dtype=np.int32) for i, (l, h) in enumerate(zip(lo, hi))
                if i in pure_pos]
        axes += [np.arange(m, m + e, dtype=np.int32) for m, e in rb]
        names = [fn.pure_args[i] for i in sorted(pure_pos)] + d.rvars()
        grids = np.meshgrid(*axes, indexing="ij") if axes else []
        env = dict(zip(names, grids))
        mask = np.ones(grids[0].shape if grids else (), dtype=bool)
        for p in d.predicates():
            mask = mask & np.broadcast_to(self.ev.eval(p, env), mask.shape)
        env["__mask__"] = mask
        return env

    def _run_update(self, fn, d, r: _Realized):
        pure_pos = [i for i, a in enumerate(d.args)
                    if isinstance(a, E.Variable) and a.name == fn.pure_args[i]]
        extents = r.extents()
        # the pure dimensions of this update, vectorized (shape over pure dims)
        axes = [np.arange(r.mins[i], r.mins[i] + extents[i], dtype=np.int32) for i in pure_pos]
        grids = np.meshgrid(*axes, indexing="ij") if axes else []
        base_env = {fn.pure_args[i]: g for i, g in zip(pure_pos, grids)}
        shape = grids[0].shape if grids else ()
        rb = self._rdom_points(d, {})
        rvars = d.rvars()
        preds = d.predicates()
        ranges = [range(m, m + e) for m, e in rb]
        # lexicographic order with the first RVar innermost
        for point in itertools.product(*reversed(ranges)):
            env = dict(base_env)
            for name, v in zip(rvars, reversed(point)):
                env[name] = np.asarray(v, dtype=np.int32)
            mask = np.ones(shape, dtype=bool)
            for p in preds:
                mask = mask & np.broadcast_to(self.ev.eval(p, env), shape)
            if not mask.any():
                continue
            at = shape
            if not mask.all():
                # only the points the predicates keep: the others may read outside
                # inputs (a predicate on a pure Var, as rfactor of a split RVar gives)
                env = {k: np.broadcast_to(g, shape)[mask] for k, g in env.items()}
                at, mask = (int(mask.sum()),), np.ones(int(mask.sum()), dtype=bool)
            vals = [np.broadcast_to(self.ev.eval(v, env), at) for v in d.values]
            coords = [np.broadcast_to(self.ev.eval(a, env), at) for a in d.args]
            if not coords:                      # a 0-D Func
                for arr, v in zip(r.arrays, vals):
                    arr[()] = v
                continue
            idx = tuple((c.astype(np.int64) - m)[mask] for c, m in zip(coords, r.mins))
            for arr, v in zip(r.arrays, vals):
                arr[idx] = v[mask]


def _collect_functions(outputs):
    """All Functions reachable from `outputs`, by internal name."""
    seen = {}
    stack = list(outputs)
    while stack:
        f = stack.pop()
        if f.name in seen:
            continue
        seen[f.name] = f
        stack.extend(f.callees.values())
    return seen


def realize(outputs, sizes, inputs=None, params=None):
    """Evaluate `outputs` (Funcs or Functions) over [0, sizes) with the
    reference interpreter. Inputs come from bound ImageParams and Buffers,
    params from Param values; `inputs`/`params` override by object.

    Returns numpy arrays in numpy axis order (one per output and Tuple element).
    """
    from ..lang.func import Func
    fns = [o._f if isinstance(o, Func) else o for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    interp = make_interpreter(fns, inputs, params)
    out = []
    for fn in fns:
        arrays = interp.realize(fn, [0] * len(sizes), list(sizes))
        out.extend(np.array(a.transpose(), order="C", copy=True) for a in arrays)
    return out


def make_interpreter(fns, inputs=None, params=None):
    from ..lang.buffer import Buffer
    functions = _collect_functions(fns)
    images, pvals, names = {}, {}, {}
    overrides_in = {getattr(k, "_name", k): v for k, v in (inputs or {}).items()}
    overrides_p = {getattr(k, "_name", k): v for k, v in (params or {}).items()}
    for f in functions.values():
        for name, obj in f.inputs.items():
            names[name] = obj.name()
            src = overrides_in.get(name)
            if src is None:
                src = obj if isinstance(obj, Buffer) else obj.get()
            if src is None:
                continue
            b = src if isinstance(src, Buffer) else Buffer(src)
            images[name] = (list(b._mins), np.asarray(b._arr).transpose())
        for name, p in f.params.items():
            v = overrides_p.get(name, p.get())
            if v is None:
                raise CompileError(f"Param {p.name()} has no value: call .set() first")
            pvals[name] = v
        for d in f.definitions:
            for dom in d.rdoms:
                for lo, ext in dom.bounds:
                    pass
    return Interpreter(functions, images, pvals, names)
