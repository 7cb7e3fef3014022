"""memoize(): keep a Func's computed values across calls of the pipeline.

Two steps around storage flattening:

* `guard_memoized_produce` (multi-dimensional nest): the producer of a
  memoized Func runs only when the cache missed (`<f>.memo.hit` is false),
  and then commits the values to the cache if the call has not failed.
* `key_memoized_allocations` (flat code): the Func's `Allocate` gets its
  cache key: the region computed (min and extent per dimension), the value
  of every Param the Func depends on (through the Funcs it reads), a hash
  of the contents, shape and strides of every input buffer it reads, and
  the eviction key. Hashing the inputs costs one pass over them, but an
  input changed in place can never give stale values (Halide keys only on
  Params and the region, and leaves that to the user).
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator
from ..ir.types import Bool, Handle, i32, i64


def memoized_funcs(env) -> list:
    return [f for f in env.values() if getattr(f.schedule, "memoize", False)]


def guard_memoized_produce(nest, env, levels, store_levels):
    funcs = memoized_funcs(env)
    for f in funcs:
        _check(f, levels[f.name], store_levels[f.name], _fused_with(f, env))
    if not funcs:
        return nest
    return _Guard({f.name for f in funcs}).mutate(nest)


def _fused_with(f, env):
    """The Func whose loops compute_with() fuses with f's, or None."""
    for g in env.values():
        for d in g.definitions:
            level = getattr(d.schedule, "compute_with", None)
            if level is not None and f.name in (g.name, level.func):
                return env.get(level.func if g is f else g.name)
    return None


def _check(f, level, store, fused=None):
    why = None
    if level.is_inlined():
        why = "it is inlined; compute it at the root or at a loop"
    elif store != level:
        why = "store_at() differs from compute_at()"
    elif f.schedule.folds:
        why = "fold_storage() reuses its storage"
    elif getattr(f.schedule, "hoist_level", None) is not None:
        why = "hoist_storage() shares its storage"
    elif len(f.output_types) > 1:
        why = "it is a Tuple"
    elif fused is not None:
        # a cache hit skips f's loops, which also run the other Func's stage
        why = f"its loops are fused with {fused.user_name}'s (compute_with)"
    if why:
        raise CompileError(f"Func {f.user_name}: memoize() is not possible here: {why}")


class _Guard(IRMutator):
    def __init__(self, names):
        self.names = names

    def visit_ProducerConsumer(self, pc):
        pc = self.generic(pc)
        if pc.name not in self.names:
            return pc
        hit = E.Variable(Bool(), f"{pc.name}.memo.hit")
        commit = S.Evaluate(E.Call(i32, "memo_commit", (E.Const(Handle(), pc.name),),
                                   E.CallType.INTRINSIC))
        produce = S.IfThenElse(E.Not(hit), S.block(pc.produce, commit))
        return S.ProducerConsumer(pc.name, produce, pc.consume)


def key_memoized_allocations(body, env):
    keys = {}
    for f in memoized_funcs(env):
        params, inputs = _dependencies(f, env)
        key = []
        for i in range(f.dimensions()):
            key.append(E.Cast(i64, E.Variable(i32, f"{f.name}.min.{i}")))
            key.append(E.Cast(i64, E.Variable(i32, f"{f.name}.extent.{i}")))
        for name in sorted(params):
            key.append(_as_i64(E.Variable(params[name].type(), name)))
        for name in sorted(inputs):
            key.append(E.Call(i64, "memo_hash_buffer", (E.Const(Handle(), name),),
                              E.CallType.INTRINSIC))
        key.append(E.Const(i64, f.schedule.memo_eviction_key or 0))
        keys[f.name] = tuple(key)
    if not keys:
        return body
    return _Key(keys).mutate(body)


def _dependencies(f, env):
    """Params and input buffers that f's values depend on, by internal name."""
    params, inputs, seen, todo = {}, {}, set(), [f]
    while todo:
        g = todo.pop()
        if g.name in seen:
            continue
        seen.add(g.name)
        params.update(g.params)
        inputs.update(g.inputs)
        todo += [env[n] for n in g.calls() if n in env]
    return params, inputs


def _as_i64(v):
    t = v.type
    if t.is_float():
        from ..ir.types import UInt
        return E.Cast(i64, E.Reinterpret(UInt(t.bits()), v))
    return E.Cast(i64, v)


class _Key(IRMutator):
    def __init__(self, keys):
        self.keys = keys

    def visit_Allocate(self, s):
        s = self.generic(s)
        key = self.keys.get(s.name)
        if key is None:
            return s
        return S.Allocate(s.name, s.type, s.size, s.body, key)
