"""Inject the prefetches that `prefetch()` asked for.

For `f.prefetch(g, at, from_, offset)`: the box of `g` that one iteration of
loop `from_` touches is found with the bounds machinery (in terms of the
`from_` loop variable), shifted `offset` iterations ahead, and at the top
of every iteration of loop `at` a small loop nest touches one address per
cache line of that box through the `prefetch` intrinsic (C:
`__builtin_prefetch`). Coordinates are clamped to (Clamp, NonFaulting) or
guarded by (GuardWithIf) the bounds of g's buffer, so no address outside it
is ever formed. Runs on the multi-dimensional loop nest, before storage
flattening turns the accesses into loads.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, IRVisitor, substitute
from ..ir.simplify import simplify
from ..ir.types import i32
from ..schedule.schedule import LoopLevel, PrefetchBoundStrategy
from .bounds_inference import box_touched

CACHE_LINE = 64


def inject_prefetches(nest, env, levels, user_names, loop_name_of):
    """`levels`: compute level per Func; `loop_name_of(level, f)` names a loop."""
    for f in env.values():
        for k, d in enumerate(f.definitions):
            scheds = [d.schedule] + [sp.schedule for sp in d.schedule.specializations]
            for sched in scheds:
                for p in sched.prefetches:
                    nest = _inject(nest, env, levels, f, k, p, user_names, loop_name_of)
    return nest


def _inject(nest, env, levels, f, stage, p, user_names, loop_name_of):
    at = loop_name_of(LoopLevel("at", f.name, p.at, stage), f)
    frm = loop_name_of(LoopLevel("at", f.name, p.from_, stage), f)
    if p.kind == "func":
        g = env.get(p.target)
        if g is None:
            raise CompileError(f"{f.user_name}.prefetch(): the Func it prefetches is not "
                               f"used by this pipeline")
        if not levels[g.name].is_root():
            raise CompileError(f"{f.user_name}.prefetch({g.user_name}, ...): only inputs and "
                               f"compute_root() Funcs can be prefetched (its storage must "
                               f"exist before the loop '{p.at}' starts)")
        dims, t = g.dimensions(), g.output_types[0]
    else:
        obj = _find_input(env, p.target)
        if obj is None:
            return nest
        dims, t = obj.dimensions(), obj.type()
    m = _Inject(p, at, frm, dims, t, user_names)
    nest = m.mutate(nest)
    if not m.found:
        raise CompileError(f"{f.user_name}.prefetch(): loop '{p.at}' or '{p.from_}' of stage "
                           f"{stage} no longer exists (was it split or fused after the "
                           f"prefetch() call?)")
    return nest


def _iteration_lets(body):
    """(name, value) of the lets in `body` outside its inner loops, in order:
    one value per iteration of the loop whose body it is."""
    found = []

    class Lets(IRVisitor):
        def visit_LetStmt(self, s):
            found.append((s.name, s.value))
            self.visit(s.body)

        def visit_For(self, s):
            pass

    Lets().visit(body)
    return found


def _find_input(env, name):
    for f in env.values():
        obj = getattr(f, "inputs", {}).get(name)
        if obj is not None:
            return obj
    return None


class _Inject(IRMutator):
    def __init__(self, p, at, frm, dims, t, user_names):
        self.p, self.at, self.frm = p, at, frm
        self.dims, self.t, self.user_names = dims, t, user_names
        self.pending = None
        self.found = False

    def visit_For(self, s):
        stmt = None
        if s.name == self.frm:
            stmt = self._prefetch_stmt(s)
        saved = self.pending
        if stmt is not None and s.name != self.at:
            self.pending = stmt
        body = self.mutate(s.body)
        self.pending = saved
        if s.name == self.at:
            stmt = stmt if s.name == self.frm else self.pending
            if stmt is not None:
                self.found = True
                body = S.block(stmt, body)
        if body is s.body:
            return s
        return S.For(s.name, s.min, s.extent, s.kind, body)

    def _prefetch_stmt(self, loop):
        """What one iteration of `loop` reads of the target, `offset` ahead."""
        kind = "image" if self.p.kind == "image" else "func"
        box = box_touched(loop.body, self.p.target, self.dims, self.user_names, kind=kind)
        if not box.touched or any(iv is None or not iv.is_bounded() for iv in box.dims):
            return S.Evaluate(E.Const(i32, 0))
        # The box keeps the body's outermost lets as symbols, and the prefetch
        # goes above them (above those of a prefetch injected before, too)
        expanded = {}
        for name, value in _iteration_lets(loop.body):
            expanded[name] = substitute(expanded, value)
        ahead = {loop.name: E.Add(E.Variable(i32, loop.name), E.Const(i32, self.p.offset))}
        box = [(simplify(substitute(ahead, substitute(expanded, iv.min))),
                simplify(substitute(ahead, substitute(expanded, iv.max)))) for iv in box.dims]
        return self._touch(box)

    def _touch(self, box):
        t, name = self.t, self.p.target
        step = max(1, CACHE_LINE // max(1, t.bytes()))
        loops, coords, guards = [], [], []
        for i, (lo, hi) in enumerate(box):
            v = E.Variable(i32, f"{name}.prefetch.{i}")
            bmin = E.Variable(i32, f"{name}.min.{i}")
            bmax = E.Sub(E.Add(bmin, E.Variable(i32, f"{name}.extent.{i}")), E.Const(i32, 1))
            if i == 0:      # one address per cache line
                extent = E.Div(E.Add(E.Sub(hi, lo), E.Const(i32, step)), E.Const(i32, step))
                c = E.Min(E.Add(lo, E.Mul(v, E.Const(i32, step))), hi)
            else:
                extent, c = E.Add(E.Sub(hi, lo), E.Const(i32, 1)), E.Add(lo, v)
            loops.append((v.name, E.Const(i32, 0), simplify(extent)))
            if self.p.strategy == PrefetchBoundStrategy.GuardWithIf:
                coords.append(c)
                guards.append(E.And(E.LE(bmin, c), E.LE(c, bmax)))
            else:
                coords.append(E.Max(E.Min(c, bmax), bmin))
        ctype = E.CallType.IMAGE if self.p.kind == "image" else E.CallType.FUNC
        ref = E.Call(t, name, tuple(coords), ctype, 0)
        stmt = S.Evaluate(E.Call(i32, "prefetch", (ref,), E.CallType.INTRINSIC))
        if guards:
            cond = guards[0]
            for g in guards[1:]:
                cond = E.And(cond, g)
            stmt = S.IfThenElse(cond, stmt)
        for vname, mn, ext in loops:     # dimension 0 innermost
            stmt = S.For(vname, mn, ext, S.ForKind.SERIAL, stmt)
        return stmt

