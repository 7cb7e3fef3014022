"""Turn multi-dimensional Realize/Provide/Call into flat Allocate/Store/Load.

Every buffer `b` (input, output or internal) is addressed through the
variables `b.min.<i>` (int32), `b.stride.<i>` (int64): the flat index of
coordinates c is sum_i (c_i - b.min.i) * b.stride.i, in int64 so large
buffers never overflow 32-bit index math. Internal buffers are dense with
dimension 0 innermost; their min/extent/stride are defined here as lets.
Tuple Funcs get one buffer per element (`f`, `f.1`, `f.2`, ...); all values
of a Tuple are computed before any element is stored.
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator
from ..ir.simplify import simplify
from ..ir.types import i32, i64


def buffer_name(func_name: str, value_index: int) -> str:
    return func_name if value_index == 0 else f"{func_name}.{value_index}"


def flat_index(buf: str, args, folds=None) -> E.Expr:
    idx = None
    folds = folds or {}
    for i, a in enumerate(args):
        if i in folds:        # circular storage: the coordinate modulo the fold
            off = E.Cast(i64, E.Mod(a, E.Const(i32, folds[i])))
        else:
            # in 64 bits (coordinates are within +-2^30: no difference) so that
            # a widened load, e.g. a histogram's bin, indexes without a re-extension
            off = E.Sub(E.Cast(i64, a), E.Cast(i64, E.Variable(i32, f"{buf}.min.{i}")))
        term = E.Mul(off, E.Variable(i64, f"{buf}.stride.{i}"))
        idx = term if idx is None else E.Add(idx, term)
    return idx if idx is not None else E.Const(i64, 0)


def flatten_storage(stmt: S.Stmt, env: dict, auto_folds=None) -> S.Stmt:
    """`auto_folds`: {func: {pure var: extent}} folds that lowering chose
    (sliding windows), besides those of fold_storage()."""
    return _Flatten(env, auto_folds or {}).mutate(stmt)


class _Flatten(IRMutator):
    def __init__(self, env, auto_folds):
        self.env = env
        self.auto_folds = auto_folds
        self.tmp = 0
        self.folds = {}          # buffer -> {dim: fold extent}

    def visit_Realize(self, r):
        f = self.env.get(r.name)
        sched = getattr(f, "schedule", None)
        folds = {f.pure_args.index(v): e for v, e in
                 {**getattr(sched, "folds", {}), **self.auto_folds.get(r.name, {})}.items()} \
            if f is not None else {}
        order = [f.pure_args.index(v) for v in sched.storage_order] \
            if f is not None and getattr(sched, "storage_order", None) else list(range(len(r.bounds)))
        for j in range(len(r.types)):
            self.folds[buffer_name(r.name, j)] = folds
        body = self.mutate(r.body)
        bounds = [(mn, E.Const(i32, folds[i]) if i in folds else ext)
                  for i, (mn, ext) in enumerate(r.bounds)]
        for j in reversed(range(len(r.types))):
            buf = buffer_name(r.name, j)
            size = None
            for i, (mn, ext) in enumerate(bounds):
                e64 = E.Cast(i64, ext)
                size = e64 if size is None else E.Mul(size, e64)
            size = simplify(size) if size is not None else E.Const(i64, 1)
            body = S.Allocate(buf, r.types[j], size, body)
            # dense strides, in storage order (dimension 0 innermost by default)
            lets = []
            for i, (mn, ext) in enumerate(bounds):
                lets.append((f"{buf}.min.{i}", mn))
                lets.append((f"{buf}.extent.{i}", ext))
            stride = E.Const(i64, 1)
            for i in order:
                lets.append((f"{buf}.stride.{i}", stride))
                stride = E.Mul(E.Variable(i64, f"{buf}.stride.{i}"),
                               E.Cast(i64, E.Variable(i32, f"{buf}.extent.{i}")))
            for name, value in reversed(lets):
                body = S.LetStmt(name, value, body)
        return body

    def visit_ProducerConsumer(self, pc):
        return S.block(self.mutate(pc.produce), self.mutate(pc.consume))

    def visit_Provide(self, p):
        values = [self.mutate(v) for v in p.values]
        args = [self.mutate(a) for a in p.args]
        if len(values) == 1:
            return S.Store(p.name, values[0], flat_index(p.name, args, self.folds.get(p.name)))
        self.tmp += 1
        names = [f"{p.name}.value{self.tmp}.{j}" for j in range(len(values))]
        stores = [S.Store(buffer_name(p.name, j), E.Variable(v.type, names[j]),
                          flat_index(buffer_name(p.name, j), args,
                                     self.folds.get(buffer_name(p.name, j))))
                  for j, v in enumerate(values)]
        body = S.block(*stores)
        for name, v in reversed(list(zip(names, values))):
            body = S.LetStmt(name, v, body)
        return body

    def visit_Call(self, c):
        c = self.generic(c)
        if c.call_type == E.CallType.FUNC:
            buf = buffer_name(c.name, c.value_index)
            return E.Load(c.type, buf, flat_index(buf, c.args, self.folds.get(buf)))
        if c.call_type == E.CallType.IMAGE:
            return E.Load(c.type, c.name, flat_index(c.name, c.args))
        return c

