"""Build the loop nest of the whole pipeline from the schedules.

For every non-inlined Func, each stage becomes a loop nest (splits, fuses,
renames, loop order and loop kinds from its `StageSchedule`) around a
`Provide`; the stages are wrapped in a `ProducerConsumer` placed at the
Func's compute level (the root, or the start of a consumer's loop body),
and its storage `Realize` at its store level.

Loop variables are named `f.s<k>.<dim>`. A pure dimension v of stage k
covers `[f.s<k>.v.min, f.s<k>.v.max]`, symbols that bounds inference
defines; an RVar covers its RDom. Split dimensions are rebuilt from the
new loops by `let`s just inside the innermost loop.
"""
from __future__ import annotations

import re

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, substitute
from ..ir.types import i32
from ..schedule.schedule import SINGLE_THREAD_DIM, TailStrategy


def stage_var(fname: str, stage: int, var: str) -> str:
    return f"{fname}.s{stage}.{var}"


def pure_vars_of(f, definition) -> list:
    return [a.name for i, a in enumerate(definition.args)
            if isinstance(a, E.Variable) and i < len(f.pure_args) and a.name == f.pure_args[i]]


def stage_renaming(f, stage: int, definition) -> dict:
    """Pure Vars and RVars of a definition -> its loop variables."""
    names = {}
    for v in pure_vars_of(f, definition):
        names[v] = E.Variable(i32, stage_var(f.name, stage, v))
    for rv in definition.rvars():
        names[rv] = E.Variable(i32, stage_var(f.name, stage, rv))
    return names


def _c(v):
    return E.Const(i32, v)


def resolve_tail(tail, is_rvar: bool, stage: int):
    """Halide's TailStrategy.Auto: ShiftInwards for pure definitions,
    RoundUp for pure vars of updates, GuardWithIf for RVars."""
    if tail != TailStrategy.Auto:
        return tail
    if is_rvar:
        return TailStrategy.GuardWithIf
    return TailStrategy.ShiftInwards if stage == 0 else TailStrategy.RoundUp


def loop_names(f, k: int, d, sched=None) -> tuple[dict, dict]:
    """Replay the splits of stage k: ({split index: (old, outer, inner) IR
    names}, {dimension: IR loop name}) with every IR name unique, even when
    a split reuses its old dimension's name (`split(x, x, xi, 8)`)."""
    current = {}
    used = set()

    def fresh(dim):
        base = stage_var(f.name, k, dim)
        name, n = base, 0
        while name in used:
            n += 1
            name = f"{base}${n}"
        used.add(name)
        current[dim] = name
        return name

    for v in list(d.rvars()) + pure_vars_of(f, d):
        fresh(v)
    per_split = {}
    for i, sp in enumerate((sched or d.schedule).splits):
        if sp.kind == "split":
            old = current.pop(sp.old)
            per_split[i] = (old, fresh(sp.outer), fresh(sp.inner))
        elif sp.kind == "fuse":
            inner, outer = current.pop(sp.inner), current.pop(sp.outer)
            per_split[i] = (fresh(sp.old), outer, inner)
        else:
            old = current.pop(sp.old)
            per_split[i] = (old, fresh(sp.outer), None)
    return per_split, current


def build_stage(f, k: int, d) -> S.Stmt:
    """The loop nest computing stage k of Function f; with specializations,
    an if-chain choosing the first whose condition holds."""
    out = _build_stage(f, k, d, d.schedule)
    for spec in reversed(d.schedule.specializations):
        if spec.fail_message is not None:
            out = S.AssertStmt(E.FALSE, (spec.fail_message,), -7)
            continue
        out = S.IfThenElse(spec.condition, _build_stage(f, k, d, spec.schedule), out)
    return out


def _build_stage(f, k: int, d, sched) -> S.Stmt:
    sv = lambda v: stage_var(f.name, k, v)
    per_split, final = loop_names(f, k, d, sched)
    ren = stage_renaming(f, k, d)
    body = S.Provide(f.name, tuple(substitute(ren, v) for v in d.values),
                     tuple(substitute(ren, a) for a in d.args))
    if sched.atomic:
        body = S.Atomic(body)
    for p in d.predicates():
        body = S.IfThenElse(substitute(ren, p), body)
    bounds = {}
    rvars = set(d.rvars())
    for rv, (lo, ext) in zip(d.rvars(), d.rvar_bounds()):
        bounds[rv] = (lo, ext)
    for v in pure_vars_of(f, d):
        lo = E.Variable(i32, sv(v) + ".min")
        bounds[v] = (lo, E.Add(E.Sub(E.Variable(i32, sv(v) + ".max"), lo), _c(1)))
    lets, guards = [], []
    for i, sp in enumerate(sched.splits):
        if sp.kind == "split":
            old_n, outer_n, inner_n = per_split[i]
            lo, ext = bounds.pop(sp.old)
            is_rvar = sp.old in rvars
            if is_rvar:
                rvars |= {sp.outer, sp.inner}
            F = _c(sp.factor)
            bounds[sp.outer] = (_c(0), E.Div(E.Add(ext, _c(sp.factor - 1)), F))
            bounds[sp.inner] = (_c(0), F)
            outer, inner = E.Variable(i32, outer_n), E.Variable(i32, inner_n)
            base = E.Mul(outer, F)
            tail = resolve_tail(sp.tail, is_rvar, k)
            if tail == TailStrategy.ShiftInwards:
                base = E.Min(base, E.Sub(ext, F))
            old = E.Variable(i32, old_n)
            lets.append((old_n, E.Add(E.Add(lo, base), inner)))
            # As in Halide, an exact split (a constant extent that the factor
            # divides) needs no tail and so no guard.
            exact = isinstance(ext, E.Const) and ext.value % sp.factor == 0
            if not exact and tail in (TailStrategy.GuardWithIf, TailStrategy.Predicate,
                                      TailStrategy.PredicateLoads, TailStrategy.PredicateStores):
                guards.append(E.LT(old, E.Add(lo, ext)))
        elif sp.kind == "fuse":
            fused_n, outer_n, inner_n = per_split[i]
            ilo, iext = bounds.pop(sp.inner)
            olo, oext = bounds.pop(sp.outer)
            if sp.inner in rvars or sp.outer in rvars:
                rvars.add(sp.old)
            bounds[sp.old] = (_c(0), E.Mul(iext, oext))
            fused = E.Variable(i32, fused_n)
            lets.append((inner_n, E.Add(ilo, E.Mod(fused, iext))))
            # fused / iext lies in [0, oext) on the loop's range: the clamp is a
            # no-op there, but gives interval arithmetic that exact range (a
            # symbolic divisor alone bounds the quotient very loosely)
            lets.append((outer_n, E.Add(olo, E.Max(E.Min(E.Div(fused, iext),
                                                         E.Sub(oext, _c(1))), _c(0)))))
        elif sp.kind == "rename":
            old_n, new_n, _ = per_split[i]
            bounds[sp.outer] = bounds.pop(sp.old)
            lets.append((old_n, E.Variable(i32, new_n)))
    for g in reversed(guards):
        body = S.IfThenElse(g, body)
    loops = []                 # innermost first, as in sched.dims
    for dim in sched.dims:
        if dim.var == SINGLE_THREAD_DIM:      # gpu_single_thread(): one block
            loops.append((stage_var(f.name, k, dim.var), _c(0), _c(1), dim.kind))
        elif dim.var in bounds:               # (else: a pure var this update does not loop over)
            lo, ext = bounds[dim.var]
            loops.append((final[dim.var], lo, ext, dim.kind))
    # Each let may use the loop variables of later splits: define later ones outside.
    nest = [("for", loop) for loop in reversed(loops)] + [("let", lt) for lt in reversed(lets)]
    for kind, item in reversed(_lets_outward(nest)):
        body = S.For(*item, body) if kind == "for" else S.LetStmt(*item, body)
    return body


def _lets_outward(nest):
    """Move each let of an outermost-first (kind, item) list just inside the
    innermost loop or let it uses, as Halide does: bounds inference at a
    compute level between the two then sees the let as one value (e.g. a fused
    loop's `x = xy % n`), not as the whole range of the loops inside."""
    from ..ir.mutator import free_variables
    out = []
    for kind, item in nest:
        if kind == "for":
            out.append((kind, item))
            continue
        used = free_variables(item[1])
        pos = len(out)
        while pos > 0 and out[pos - 1][1][0] not in used:
            pos -= 1
        out.insert(pos, (kind, item))
    return out


def build_produce(f, definitions) -> S.Stmt:
    stages = [build_stage(f, k, d) for k, d in enumerate(definitions)]
    return stages[0] if len(stages) == 1 else S.Block(tuple(stages))


def build_loop_nest(env, order, definitions, outputs, levels, store_levels) -> S.Stmt:
    """The whole pipeline: produces nested at their compute levels."""
    out_names = [f.name for f in outputs]
    stmt = S.block(*[build_produce(env[n], definitions[n]) for n in order if n in out_names])
    for n in reversed(order):
        if n in out_names:
            continue
        f = env[n]
        produce = build_produce(f, definitions[n])
        level, store = levels[n], store_levels[n]
        realize = lambda body: S.Realize(n, tuple(f.output_types), (), body)
        if level.is_root():
            stmt = S.ProducerConsumer(n, produce, stmt)
            if store.is_root():
                stmt = realize(stmt)
            else:
                raise CompileError(f"Func {f.user_name} is computed at the root but stored at "
                                   f"a loop of {env[store.func].user_name}: storage must be at "
                                   f"or outside the compute level")
            continue
        loop = _loop_name(env, level, f)
        inj = _Inject(loop, lambda body: S.ProducerConsumer(n, produce, body))
        stmt = inj.mutate(stmt)
        if not inj.found:
            raise _bad_level(env, f, level, "compute_at")
        if store.is_root():
            stmt = realize(stmt)
        else:
            sloop = _loop_name(env, store, f)
            if store == level:
                inj2 = _WrapPC(loop, n, realize)
            else:
                inj2 = _Inject(sloop, realize)
            stmt = inj2.mutate(stmt)
            if not inj2.found:
                raise _bad_level(env, f, store, "store_at")
            if store != level and not _encloses(stmt, sloop, loop):
                raise CompileError(f"Func {f.user_name} is stored at {env[store.func].user_name}."
                                   f"{store.var}, which is inside its compute level "
                                   f"{env[level.func].user_name}.{level.var}: store_at must be "
                                   f"at or outside compute_at")
    _check_uses_inside(stmt, env, [n for n in order if n not in out_names and
                                   not levels[n].is_root()])
    for n in order:
        if n not in out_names and not levels[n].is_root() and store_levels[n] != levels[n]:
            _check_storage_not_shared(stmt, env, env[n], levels[n], store_levels[n])
    return stmt


_CONCURRENT = (S.ForKind.PARALLEL, S.ForKind.VECTORIZED, S.ForKind.GPU_BLOCK)


def _check_storage_not_shared(stmt, env, f, level, store):
    """Storage outside a parallel, vectorized or GPU block loop that f is
    computed in would be written by many iterations at once: the regions
    they compute overlap, and update stages race (Halide refuses it too)."""
    from ..ir.mutator import IRVisitor
    loop = _loop_name(env, level, f)
    outer = None if store.is_root() else _loop_name(env, store, f)
    found = []

    class V(IRVisitor):
        def __init__(self):
            self.stack = []

        def visit_For(self, s):
            self.stack.append(s)
            if s.name == loop:
                names = [x.name for x in self.stack]
                start = names.index(outer) + 1 if outer in names else 0
                found.extend(x for x in self.stack[start:] if x.kind in _CONCURRENT)
            self.generic(s)
            self.stack.pop()
    V().visit(stmt)
    if found:
        bad = found[0]
        m = re.match(r"^(.*?)\.s\d+\.(.*)$", bad.name)
        where = f"{env[m.group(1)].user_name}.{m.group(2)}" if m and m.group(1) in env \
            else bad.name
        raise CompileError(f"Func {f.user_name} is stored outside the {bad.kind.value} loop "
                           f"over {where} but computed within it: its iterations would share "
                           f"(and race on) its storage. Store it at or inside that loop, or "
                           f"make the loop serial")


def _loop_name(env, level, f):
    consumer = env.get(level.func)
    if consumer is None:
        raise CompileError(f"Func {f.user_name} is scheduled at a loop of a Func that is not "
                           f"in this pipeline")
    stage = len(consumer.definitions) - 1 if level.stage < 0 else level.stage
    if stage >= len(consumer.definitions):
        raise _bad_level(env, f, level, "compute_at")
    _, final = loop_names(consumer, stage, consumer.definitions[stage])
    return final.get(level.var, stage_var(consumer.name, stage, level.var))


def _bad_level(env, f, level, directive):
    consumer = env[level.func]
    loops = []
    for k, d in enumerate(consumer.definitions):
        loops += [f"{consumer.user_name}.s{k}.{dim.var}" for dim in reversed(d.schedule.dims)]
    return CompileError(
        f"Func {f.user_name} is {directive.replace('_at', '')}d at {consumer.user_name}.{level.var}, "
        f"but that loop does not exist where {f.user_name}'s values are needed (is "
        f"{consumer.user_name} inlined, or is '{level.var}' not one of its loops?). Loops of "
        f"{consumer.user_name}: {', '.join(loops)}")


class _Inject(IRMutator):
    """Wrap the body of the loop named `loop` with `wrap`."""

    def __init__(self, loop, wrap):
        self.loop, self.wrap, self.found = loop, wrap, False

    def visit_For(self, s):
        if s.name == self.loop:
            self.found = True
            return S.For(s.name, s.min, s.extent, s.kind, self.wrap(s.body))
        return self.generic(s)


class _WrapPC(IRMutator):
    """Wrap the ProducerConsumer of `name` inside loop `loop` with `wrap`."""

    def __init__(self, loop, name, wrap):
        self.loop, self.name, self.wrap, self.found = loop, name, wrap, False
        self.inside = False

    def visit_For(self, s):
        if s.name == self.loop:
            body = s.body
            if isinstance(body, S.ProducerConsumer) and body.name == self.name:
                self.found = True
                return S.For(s.name, s.min, s.extent, s.kind, self.wrap(body))
        return self.generic(s)


def _check_uses_inside(stmt, env, names):
    """Every use of a Func computed at a loop must lie inside its produce/consume
    (Halide: "Func is computed at the following invalid location")."""
    from ..ir.mutator import IRVisitor
    want = set(names)
    bad = {}            # func -> (user of it, loops enclosing every use)
    common = {}

    class V(IRVisitor):
        def __init__(self):
            self.pcs, self.loops, self.provider = [], [], None

        def visit_ProducerConsumer(self, s):
            self.pcs.append(s.name)
            self.generic(s)
            self.pcs.pop()

        def visit_For(self, s):
            self.loops.append(s.name)
            self.generic(s)
            self.loops.pop()

        def visit_Provide(self, s):
            saved, self.provider = self.provider, s.name
            self.generic(s)
            self.provider = saved

        def visit_Call(self, c):
            if c.call_type == E.CallType.FUNC and c.name in want:
                loops = common.get(c.name)
                common[c.name] = list(self.loops) if loops is None else \
                    [a for a, b in zip(loops, self.loops) if a == b]
                if c.name not in self.pcs:
                    bad.setdefault(c.name, self.provider)
            self.generic(c)
    V().visit(stmt)
    for n, user in bad.items():
        f, lv = env[n], env[n].schedule.compute_level
        who = env[user].user_name if user in env else user
        legal = ["compute_root()"]
        for lp in common.get(n, []):
            m = re.match(r"^(.*?)\.s\d+\.(.*)$", lp)
            if m and m.group(1) in env and "$" not in m.group(2):
                legal.append(f"compute_at({env[m.group(1)].user_name}, {m.group(2)})")
        raise CompileError(f"Func {f.user_name} is computed at an invalid location "
                           f"({env[lv.func].user_name}.{lv.var}): it is used by {who} outside "
                           f"that loop. Legal locations enclose all its uses: "
                           f"{'; '.join(legal)}")


def _encloses(stmt, outer, inner) -> bool:
    """True if the loop `outer` contains the loop `inner`."""
    from ..ir.mutator import IRVisitor
    found = [False]

    class V(IRVisitor):
        def __init__(self):
            self.stack = []

        def visit_For(self, s):
            if s.name == inner and outer in self.stack:
                found[0] = True
            self.stack.append(s.name)
            self.generic(s)
            self.stack.pop()
    V().visit(stmt)
    return found[0]
