"""Scheduling directives on `Func` and `Stage`, with Halide's names.

Each directive checks its arguments in the user's terms (naming the Func,
stage and dimension, and listing valid choices), records a `Directive` in
the Func's schedule log and updates the schedule data. Directives return the
Func or Stage so calls chain, as in Halide.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as E
from ..ir.stmt import ForKind
from ..lang.names import bump_epoch
from .schedule import (Dim, Directive, LoopAlignStrategy, LoopLevel, Prefetch,
                       PrefetchBoundStrategy, Split, TailStrategy)


# -- helpers ---------------------------------------------------------------------------

def _target(owner):
    """(Func, Function, stage index, StageSchedule, printable stage name)."""
    from ..lang.func import Func, Stage
    if isinstance(owner, Stage):
        func, k = owner._func, owner._index
    elif isinstance(owner, Func):
        func, k = owner, 0
    else:
        raise CompileError(f"Cannot schedule {owner!r}")
    fn = func._f
    if not fn.defined():
        raise CompileError(f"Func {fn.user_name} is scheduled before it has been defined")
    d = fn.definitions[k]
    name = fn.user_name if k == 0 else f"{fn.user_name}.update({k - 1})"
    spec = getattr(owner, "_spec", None)
    if spec is not None:
        return func, fn, k, spec.schedule, f"{name}.specialize(...)"
    return func, fn, k, d.schedule, name


def _record(owner, name, args):
    func, fn, k, _, _ = _target(owner)
    d = Directive(name, [_plain(a) for a in args], k)
    # The internal names of the Funcs an argument names (user names may repeat):
    # kept beside the record, not in it, so schedule files can resolve them.
    d.func_refs = {i: _func_ref(a) for i, a in enumerate(args) if _func_ref(a)}
    fn.schedule.log.append(d)
    bump_epoch()
    if getattr(func, "_cached_pipeline", None) is not None:
        del func._cached_pipeline


def _plain(a):
    """A JSON-friendly form of a directive argument."""
    if isinstance(a, (list, tuple)):
        return [_plain(x) for x in a]
    if hasattr(a, "name") and callable(a.name):
        return a.name()
    if isinstance(a, TailStrategy):
        return a.value
    if isinstance(a, LoopLevel):
        if a.func is None:
            return {"kind": a.kind}
        from ..lang.registry import lookup
        f = lookup(a.func)
        return {"kind": a.kind, "func": getattr(f, "user_name", a.func), "var": a.var,
                "stage": a.stage}
    return a


def _func_ref(a):
    """The internal name of the Func that argument `a` names, if any."""
    if isinstance(a, LoopLevel):
        return a.func
    if isinstance(a, (list, tuple)):
        refs = [_func_ref(x) for x in a]
        return refs if any(refs) else None
    f = getattr(a, "_f", None)
    return getattr(f, "name", None)


def _dim_name(v, directive, stage_name, sched) -> str:
    from ..lang.var import RDom, RVar, Var
    if isinstance(v, RDom) and v.dimensions() == 1:
        v = v.x                   # a 1-D RDom stands for its RVar, as in Halide
    if isinstance(v, (Var, RVar)):
        n = v.name()
    elif isinstance(v, str):
        n = v
    else:
        raise CompileError(f"In schedule for {stage_name}: {directive}() needs a Var or RVar, "
                           f"got {v!r}")
    return n


def _find_dim(sched, n, directive, stage_name) -> int:
    for i, d in enumerate(sched.dims):
        if d.var == n:
            return i
    names = ", ".join(d.var for d in reversed(sched.dims))
    raise CompileError(f"In schedule for {stage_name}: could not find dimension '{n}' for "
                       f"{directive}(); the dimensions are (outermost first): {names}")


def _new_name(v, directive, stage_name):
    from ..lang.var import RVar, Var
    if isinstance(v, (Var, RVar)):
        return v.name()
    if isinstance(v, str):
        return v
    raise CompileError(f"In schedule for {stage_name}: {directive}() needs Vars for new "
                       f"dimension names, got {v!r}")


def _factor(f, directive, stage_name):
    if isinstance(f, bool) or not isinstance(f, int):
        from ..lang.expr import Expr, to_node
        if isinstance(f, Expr):
            n = to_node(f)
            if isinstance(n, E.Const):
                f = n.value
            else:
                raise CompileError(f"In schedule for {stage_name}: the factor of {directive}() "
                                   f"must be a positive integer constant, got {f!r}")
        else:
            raise CompileError(f"In schedule for {stage_name}: the factor of {directive}() must "
                               f"be a positive integer, got {f!r}")
    if f <= 0:
        raise CompileError(f"In schedule for {stage_name}: the factor of {directive}() must be "
                           f"positive, got {f}")
    return f


def _tail(t, stage_name):
    if isinstance(t, TailStrategy):
        return t
    if isinstance(t, str):
        try:
            return TailStrategy(t)
        except ValueError:
            pass
    raise CompileError(f"In schedule for {stage_name}: unknown tail strategy {t!r}; use "
                       f"hl.TailStrategy.{', hl.TailStrategy.'.join(x.value for x in TailStrategy)}")


def _do_split(owner, old, outer, inner, factor, tail, directive="split"):
    func, fn, k, sched, sname = _target(owner)
    o = _dim_name(old, directive, sname, sched)
    i = _find_dim(sched, o, directive, sname)
    outer_n = _new_name(outer, directive, sname)
    inner_n = _new_name(inner, directive, sname)
    f = _factor(factor, directive, sname)
    t = _tail(tail, sname)
    existing = {d.var for d in sched.dims} - {o}
    for n in (outer_n, inner_n):
        # reusing the old name (split(x, x, xi), vectorize(x, 4) twice) is fine
        if n != o and (n in existing or n in _retired(sched)):
            raise CompileError(f"In schedule for {sname}: {directive}() would create dimension "
                               f"'{n}', which already exists (or existed); pick a fresh name")
    if outer_n == inner_n:
        raise CompileError(f"In schedule for {sname}: {directive}() needs different names for "
                           f"the outer and inner dimensions, got '{outer_n}' twice")
    is_rvar = sched.dims[i].is_rvar
    if t in (TailStrategy.ShiftInwards, TailStrategy.RoundUp) and is_rvar:
        raise CompileError(f"In schedule for {sname}: can't split RVar '{o}' with "
                           f"TailStrategy.{t.value}: it would repeat or add reduction "
                           f"iterations; use GuardWithIf")
    if t in (TailStrategy.ShiftInwards,) and k > 0:
        raise CompileError(f"In schedule for {sname}: TailStrategy.ShiftInwards recomputes "
                           f"points, which is only legal for pure definitions")
    kind = sched.dims[i].kind
    sched.dims[i:i + 1] = [Dim(inner_n, kind, is_rvar), Dim(outer_n, ForKind.SERIAL, is_rvar)]
    sched.splits.append(Split("split", o, outer_n, inner_n, f, t))
    return inner_n


def _retired(sched):
    return {s.old for s in sched.splits if s.kind != "fuse"} | \
        {x for s in sched.splits if s.kind == "fuse" for x in (s.inner, s.outer)}


# -- loop directives -------------------------------------------------------------------

def split(owner, old, outer, inner, factor, tail=TailStrategy.Auto):
    _do_split(owner, old, outer, inner, factor, tail)
    _record(owner, "split", [old, outer, inner, factor, tail])
    return owner


def fuse(owner, inner, outer, fused):
    func, fn, k, sched, sname = _target(owner)
    ni = _dim_name(inner, "fuse", sname, sched)
    no = _dim_name(outer, "fuse", sname, sched)
    ii = _find_dim(sched, ni, "fuse", sname)
    io = _find_dim(sched, no, "fuse", sname)
    nf = _new_name(fused, "fuse", sname)
    if ni == no:
        raise CompileError(f"In schedule for {sname}: fuse() needs two different dimensions")
    if io != ii + 1:
        raise CompileError(f"In schedule for {sname}: fuse({ni}, {no}) needs '{no}' to be the "
                           f"loop just outside '{ni}'; reorder first")
    is_rvar = sched.dims[ii].is_rvar or sched.dims[io].is_rvar
    sched.dims[ii:io + 1] = [Dim(nf, ForKind.SERIAL, is_rvar)]
    sched.splits.append(Split("fuse", nf, no, ni))
    _record(owner, "fuse", [inner, outer, fused])
    return owner


def rename(owner, old, new):
    func, fn, k, sched, sname = _target(owner)
    o = _dim_name(old, "rename", sname, sched)
    i = _find_dim(sched, o, "rename", sname)
    n = _new_name(new, "rename", sname)
    sched.dims[i] = Dim(n, sched.dims[i].kind, sched.dims[i].is_rvar)
    sched.splits.append(Split("rename", o, n))
    _record(owner, "rename", [old, new])
    return owner


def reorder(owner, *vars):
    func, fn, k, sched, sname = _target(owner)
    if len(vars) == 1 and isinstance(vars[0], (list, tuple)):
        vars = tuple(vars[0])
    names = [_dim_name(v, "reorder", sname, sched) for v in vars]
    if len(set(names)) != len(names):
        raise CompileError(f"In schedule for {sname}: reorder() names a dimension twice: {names}")
    idx = [_find_dim(sched, n, "reorder", sname) for n in names]
    slots = sorted(idx)
    moved = [sched.dims[i] for i in idx]
    for slot, d in zip(slots, moved):
        sched.dims[slot] = d
    _record(owner, "reorder", list(vars))
    return owner


def _set_kind(owner, var, kind, directive):
    func, fn, k, sched, sname = _target(owner)
    n = _dim_name(var, directive, sname, sched)
    i = _find_dim(sched, n, directive, sname)
    sched.dims[i].kind = kind
    return n


def _kind_directive(kind, name):
    def directive(owner, var, factor=None, tail=TailStrategy.Auto):
        if factor is not None:
            func, fn, k, sched, sname = _target(owner)
            n = _dim_name(var, name, sname, sched)
            inner = _do_split(owner, var, n, f"{n}.{name[:3]}{len(sched.splits)}", factor,
                              tail, name)
            # vectorize/unroll by a factor apply to the inner loop; parallel by
            # a task size to the outer one (each task runs `factor` iterations).
            _set_kind(owner, n if kind == ForKind.PARALLEL else inner, kind, name)
        else:
            _set_kind(owner, var, kind, name)
        _record(owner, name, [var] + ([factor, tail] if factor is not None else []))
        return owner
    directive.__name__ = name
    return directive


vectorize = _kind_directive(ForKind.VECTORIZED, "vectorize")
unroll = _kind_directive(ForKind.UNROLLED, "unroll")
parallel = _kind_directive(ForKind.PARALLEL, "parallel")


def atomic(owner, override_associativity_test=False):
    """Make this update's read-modify-write atomic, so RVar loops that update
    the same element (histograms) may run in parallel."""
    from ..lang.func import Stage
    func, fn, k, sched, sname = _target(owner)
    if not isinstance(owner, Stage) or k == 0:
        raise CompileError(f"In schedule for {sname}: atomic() applies to an update "
                           f"stage, e.g. f.update(0).atomic()")
    if len(fn.output_types) > 1:
        raise CompileError(f"In schedule for {sname}: atomic() of a Tuple update is not "
                           f"supported")
    sched.atomic = True
    _record(owner, "atomic", [])
    return owner


def specialize(owner, condition):
    """A Stage scheduled separately, used when `condition` (over Params)
    holds at run time; the original schedule is the fallback."""
    import copy
    from ..lang.expr import to_node
    from ..lang.func import Stage
    from ..lang.registry import resolve_references
    from .schedule import Specialization
    func, fn, k, sched, sname = _target(owner)
    if getattr(owner, "_spec", None) is not None:
        raise CompileError(f"In schedule for {sname}: nested specialize() is not supported")
    cond = to_node(condition)
    if not cond.type.is_bool():
        raise CompileError(f"In schedule for {sname}: specialize() needs a boolean condition, "
                           f"got {cond.type}")
    refs = resolve_references(cond)
    if refs.free_vars or refs.rvars or refs.funcs:
        bad = sorted(refs.free_vars | refs.rvars | set(refs.funcs))
        raise CompileError(f"In schedule for {sname}: a specialize() condition may only use "
                           f"Params and constants, not {', '.join(bad)}")
    # the IR names Params only weakly: a Param used only here (and dropped by
    # the caller) must stay alive to become a pipeline argument
    fn.params.update(refs.params)
    fork = copy.deepcopy(sched)
    fork.specializations = []
    spec = Specialization(cond, fork)
    sched.specializations.append(spec)
    from ..ir.printer import expr_to_str
    _record(owner, "specialize", [expr_to_str(cond)])
    return Stage(func, k, spec)


def specialize_fail(owner, message):
    """Calls where no earlier specialization applies fail with `message`."""
    from ..ir import expr as E
    from .schedule import Specialization
    func, fn, k, sched, sname = _target(owner)
    if not isinstance(message, str):
        raise CompileError(f"In schedule for {sname}: specialize_fail() needs a message string")
    sched.specializations.append(Specialization(E.TRUE, sched, message))
    _record(owner, "specialize_fail", [message])
    return owner


def rfactor(owner, *pairs):
    """Split an associative reduction: `intm = f.update(0).rfactor(r.y, u)`.

    The returned intermediate Func has f's pure Vars plus `u`, and reduces
    over the other RVars (with r.y replaced by u); f's update becomes the
    reduction of intm over r.y. Iterations of u are independent, so intm's
    u loop may run in parallel (a histogram in parallel strips).
    """
    from ..lang.func import Func, Stage
    from ..lang.expr import Expr
    from ..lang.function import Definition
    from ..lang.var import RDom, RVar, Var
    from ..ir.mutator import substitute, calls_in
    from ..ir.types import i32
    from .schedule import StageSchedule
    func, fn, k, sched, sname = _target(owner)
    if not isinstance(owner, Stage) or k == 0:
        raise CompileError(f"In schedule for {sname}: rfactor() applies to an update stage, "
                           f"e.g. f.update(0).rfactor(r.y, u)")
    if len(pairs) == 1 and isinstance(pairs[0], list):
        pairs = tuple(pairs[0])
    if len(pairs) == 2 and isinstance(pairs[0], RVar) and isinstance(pairs[1], Var):
        pairs = ((pairs[0], pairs[1]),)
    d = _with_rvar_splits_applied(fn.definitions[k], sched, sname)
    preserved = {}
    for pr in pairs:
        if not (isinstance(pr, (tuple, list)) and len(pr) == 2 and isinstance(pr[0], RVar)
                and isinstance(pr[1], Var)):
            raise CompileError(f"In schedule for {sname}: rfactor() takes (RVar, Var) pairs, "
                               f"got {pr!r}")
        if pr[0].name() not in d.rvars():
            shown = [dom.user_name + v[len(dom.name):] if v.startswith(dom.name + ".") else v
                     for dom in d.rdoms for v in dom.vars]
            raise CompileError(f"In schedule for {sname}: rfactor() of '{pr[0].name()}', which "
                               f"is not an RVar of this stage; its RVars: {', '.join(shown)}")
        if pr[1].name() in fn.pure_args:
            raise CompileError(f"In schedule for {sname}: rfactor() needs a new Var, but "
                               f"'{pr[1].name()}' is already a dimension of {fn.user_name}")
        preserved[pr[0].name()] = pr[1].name()
    if len(d.values) != 1:
        raise CompileError(f"In schedule for {sname}: rfactor() of a Tuple update is not "
                           f"supported")
    v = d.values[0]
    me = E.Call(v.type, fn.name, d.args, E.CallType.FUNC, 0)
    op, e = None, None
    for cls in (E.Add, E.Mul, E.Min, E.Max):
        if isinstance(v, cls):
            if v.a == me:
                op, e = cls, v.b
            elif v.b == me:
                op, e = cls, v.a
    if op is None or any(c.name == fn.name for c in calls_in(e, E.CallType.FUNC)):
        raise CompileError(f"In schedule for {sname}: rfactor() needs an update of the form "
                           f"f[...] = f[...] op e with op one of + * min max and e not "
                           f"reading {fn.user_name}")
    t = v.type
    ident = {E.Add: 0, E.Mul: 1,
             E.Min: float("inf") if t.is_float() else t.max(),
             E.Max: float("-inf") if t.is_float() else t.min()}[op]
    rvars, bounds = d.rvars(), d.rvar_bounds()
    remaining = [(rv, b) for rv, b in zip(rvars, bounds) if rv not in preserved]
    us = [preserved[rv] for rv in rvars if rv in preserved]
    intm = Func(f"{fn.user_name}_intm")
    pure = [Var(n) for n in fn.pure_args] + [Var(u) for u in us]
    intm[tuple(pure)] = Expr._wrap(E.Const(t, float(ident) if t.is_float() else ident))
    mapping = {rv: E.Variable(i32, u) for rv, u in preserved.items()}
    if remaining:
        r_in = RDom([(Expr._wrap(lo), Expr._wrap(ext)) for _, (lo, ext) in remaining],
                    name=f"{fn.user_name}_intm_r")
        for (rv, _), nv in zip(remaining, r_in):
            mapping[rv] = E.Variable(i32, nv.name())
        for p in d.predicates():
            r_in.where(Expr._wrap(substitute(mapping, p)))
    lhs = tuple(Expr._wrap(substitute(mapping, a)) for a in d.args) + \
        tuple(Expr._wrap(E.Variable(i32, u)) for u in us)
    ref = intm[lhs]
    from ..lang.expr import to_node
    intm[lhs] = Expr._wrap(op(to_node(ref), substitute(mapping, e)))
    if remaining and r_in.domain() not in intm._f.definitions[-1].rdoms:
        # e need not use the other RVars (f += 1 counts the domain): the
        # intermediate still iterates over them, as f's update did
        d_in = intm._f.definitions[-1]
        intm._f.definitions[-1] = Definition(
            d_in.args, d_in.values, d_in.rdoms + (r_in.domain(),),
            StageSchedule.default(list(intm._f.pure_args),
                                  [rv for dom in d_in.rdoms + (r_in.domain(),) for rv in dom.vars]))
    if remaining:
        _restore_rvar_names(intm._f, r_in, remaining, d)
    elif d.predicates():
        # every RVar preserved: the domain's predicates now guard intm's update
        d_in = intm._f.definitions[-1]
        pred = None
        for p in d.predicates():
            q = substitute(mapping, p)
            pred = q if pred is None else E.And(pred, q)
        ref_node = E.Call(t, intm._f.name, d_in.args, E.CallType.FUNC, 0)
        guarded = E.Select(pred, d_in.values[0], ref_node)
        intm._f.definitions[-1] = Definition(d_in.args, (guarded,), d_in.rdoms, d_in.schedule)
    # f's update now reduces intm over the preserved RVars.
    r_out = RDom([(Expr._wrap(b[0]), Expr._wrap(b[1])) for rv, b in zip(rvars, bounds)
                  if rv in preserved], name=f"{fn.user_name}_r")
    pv = [E.Variable(i32, n) for n in fn.pure_args]
    new_rv = [E.Variable(i32, x.name()) for x in r_out]
    value = op(E.Call(t, fn.name, tuple(pv), E.CallType.FUNC, 0),
               E.Call(t, intm._f.name, tuple(pv + new_rv), E.CallType.FUNC, 0))
    if fn.algorithm_definitions is None:
        fn.algorithm_definitions = list(fn.definitions)
    fn.definitions[k] = Definition(tuple(pv), (value,), (r_out.domain(),),
                                   StageSchedule.default(list(fn.pure_args),
                                                         [x.name() for x in r_out]))
    fn.callees[intm._f.name] = intm._f
    _record(owner, "rfactor", [list(p) for p in pairs])
    fn.schedule.log[-1].made = intm._f.name       # printed as `intm = ....rfactor(...)`
    return intm


def _with_rvar_splits_applied(d, sched, sname):
    """`d` with the stage's splits of RVars made into RVars of their own, as
    Halide's rfactor does: split(r.y, ryo, ryi, 8) turns r.y over [lo, lo + n)
    into ryi over [0, 8) and ryo over [0, ceil(n / 8)), with r.y replaced by
    lo + ryo*8 + ryi and, unless 8 divides n, the predicate ryo*8 + ryi < n
    (GuardWithIf: the only tail an RVar may have). Renames carry over; a fuse
    of RVars is refused."""
    from ..ir.mutator import substitute
    from ..ir.simplify import simplify
    from ..ir.types import i32
    from ..lang.function import Definition
    entries = [[name, lo, ext, dom] for dom in d.rdoms
               for name, (lo, ext) in zip(dom.vars, dom.bounds)]
    names = [e[0] for e in entries]
    mapping, preds = {}, list(d.predicates())
    for sp in sched.splits:
        if sp.kind == "fuse" and (sp.inner in names or sp.outer in names):
            raise CompileError(f"In schedule for {sname}: rfactor() after fuse() of the RVar "
                               f"'{sp.inner if sp.inner in names else sp.outer}' is not "
                               f"supported; rfactor first, then fuse() the stages it returns")
        if sp.old not in names:
            continue                     # a pure Var's split: f's new update starts afresh
        i = names.index(sp.old)
        name, lo, ext, dom = entries[i]
        if sp.kind == "rename":
            entries[i][0] = names[i] = sp.outer
            mapping = {k: substitute({name: E.Variable(i32, sp.outer)}, v)
                       for k, v in mapping.items()}
            mapping[name] = E.Variable(i32, sp.outer)
            continue
        if sp.kind != "split":
            raise CompileError(f"In schedule for {sname}: rfactor() after {sp.kind}() of "
                               f"the RVar '{sp.old}' is not supported; rfactor first, then "
                               f"{sp.kind}() the stages it returns")
        f = simplify(sp.factor if isinstance(sp.factor, E.Expr) else E.Const(i32, sp.factor))
        if not isinstance(f, E.Const) or f.value <= 0:
            raise CompileError(f"In schedule for {sname}: rfactor() of an RVar split by a "
                               f"non-constant factor ({sp.old})")
        k = f.value
        outer, inner = E.Variable(i32, sp.outer), E.Variable(i32, sp.inner)
        flat = E.Add(E.Mul(outer, f), inner)
        n = simplify(ext)
        if not (isinstance(n, E.Const) and n.value % k == 0):
            preds.append(E.LT(flat, n))
        value = E.Add(lo, flat)
        mapping = {a: substitute({name: value}, v) for a, v in mapping.items()}
        mapping[name] = value
        entries[i:i + 1] = [[sp.inner, E.Const(i32, 0), f, dom],
                            [sp.outer, E.Const(i32, 0),
                             simplify(E.Div(E.Add(n, E.Const(i32, k - 1)), f)), dom]]
        names = [e[0] for e in entries]
    if not mapping:
        return d
    preds = [substitute(mapping, p) for p in preds]
    return Definition(tuple(substitute(mapping, a) for a in d.args),
                      tuple(substitute(mapping, v) for v in d.values),
                      _derived_domains(entries, preds), d.schedule)


def _derived_domains(entries, preds):
    """Domains over the given (name, min, extent, original domain) entries,
    grouped by original domain and keeping its names (schedule files and
    error messages then name them as the user did); not registered as RDoms
    of their own. The predicates go to the first."""
    from ..lang.var import ReductionDomain
    doms, by_origin = [], {}
    for name, lo, ext, origin in entries:
        dom = by_origin.get(id(origin))
        if dom is None:
            dom = ReductionDomain.__new__(ReductionDomain)
            dom.name, dom.user_name = origin.name, origin.user_name
            dom.vars, dom.bounds, dom.predicates = [], [], []
            by_origin[id(origin)] = dom
            doms.append(dom)
        dom.vars.append(name)
        dom.bounds.append((lo, ext))
    if doms:
        doms[0].predicates = list(preds)
    return tuple(doms)


def _restore_rvar_names(intm, r_in, remaining, d):
    """intm's update iterates fresh RVars (r_in); name them as f's stage did,
    so `intm.update(0).vectorize(r.x)` finds r.x, as in Halide."""
    from ..ir.mutator import substitute
    from ..ir.types import i32
    from ..lang.function import Definition
    from .schedule import StageSchedule
    back = {nv.name(): E.Variable(i32, rv) for nv, (rv, _) in zip(r_in, remaining)}
    origin = {name: dom for dom in d.rdoms for name in dom.vars}
    d_in = intm.definitions[-1]
    preds = [substitute(back, p) for dom in d_in.rdoms for p in dom.predicates]
    entries = [[rv, lo, ext, origin[rv]] for rv, (lo, ext) in remaining]
    rdoms = _derived_domains(entries, preds)
    pure = [a.name for a in d_in.args if isinstance(a, E.Variable) and a.name not in back]
    intm.definitions[-1] = Definition(
        tuple(substitute(back, a) for a in d_in.args),
        tuple(substitute(back, v) for v in d_in.values), rdoms,
        StageSchedule.default([p for p in intm.pure_args if p in pure],
                              [rv for rv, _ in remaining]))


def prefetch(owner, target, at, from_, offset=1,
             strategy=PrefetchBoundStrategy.GuardWithIf):
    """At each iteration of loop `at`, prefetch into cache the part of
    `target` (a Func or an input buffer) that loop `from_` reads `offset`
    iterations later. A hint only: results never change."""
    from ..lang.buffer import Buffer
    from ..lang.func import Func
    from ..lang.param import ImageParam
    func, fn, k, sched, sname = _target(owner)
    if isinstance(target, Func):
        tname, kind = target._f.name, "func"
    elif isinstance(target, (ImageParam, Buffer)):
        tname, kind = target._name, "image"
    else:
        raise CompileError(f"In schedule for {sname}: prefetch() needs a Func, ImageParam or "
                           f"Buffer to prefetch, got {target!r}")
    at_n, from_n = (_dim_name(v, "prefetch", sname, sched) for v in (at, from_))
    i_at = _find_dim(sched, at_n, "prefetch", sname)
    i_from = _find_dim(sched, from_n, "prefetch", sname)
    if i_from < i_at:
        raise CompileError(f"In schedule for {sname}: prefetch() at loop '{at_n}' from loop "
                           f"'{from_n}': the 'from' loop must be '{at_n}' or enclose it")
    off = offset
    from ..lang.expr import Expr, to_node
    if isinstance(off, Expr) and isinstance(to_node(off), E.Const):
        off = to_node(off).value
    if isinstance(off, bool) or not isinstance(off, int):
        raise CompileError(f"In schedule for {sname}: prefetch() offset must be an integer "
                           f"constant, got {offset!r}")
    if isinstance(strategy, str):
        try:
            strategy = PrefetchBoundStrategy(strategy)
        except ValueError:
            raise CompileError(f"In schedule for {sname}: unknown prefetch strategy "
                               f"{strategy!r}; use Clamp, GuardWithIf or NonFaulting") from None
    if not isinstance(strategy, PrefetchBoundStrategy):
        raise CompileError(f"In schedule for {sname}: prefetch() strategy must be a "
                           f"hl.PrefetchBoundStrategy, got {strategy!r}")
    sched.prefetches.append(Prefetch(tname, kind, at_n, from_n, off, strategy))
    _record(owner, "prefetch", [target, at, from_, off, strategy.value])
    return owner


def compute_with(owner, *args):
    """Fuse this stage's loops, outermost down to `var`, with those of another
    stage computed at the same level: `f.compute_with(g, y)`,
    `f.update(0).compute_with(g.update(0), x)` or `compute_with(LoopLevel)`."""
    from ..lang.func import Func, Stage
    func, fn, k, sched, sname = _target(owner)
    args = list(args)
    align = LoopAlignStrategy.Auto
    if args and isinstance(args[-1], (LoopAlignStrategy, list)):
        align = args.pop()
    if isinstance(align, list):      # [(var, strategy)]: per-dimension; all fuse alike here
        align = LoopAlignStrategy.Auto
    if len(args) == 2 and isinstance(args[0], LoopLevel) and isinstance(args[1], str):
        try:
            align = LoopAlignStrategy(args.pop())
        except ValueError:
            raise CompileError(f"In schedule for {sname}: unknown LoopAlignStrategy; use "
                               f"{', '.join(a.value for a in LoopAlignStrategy)}") from None
    if len(args) == 1 and isinstance(args[0], LoopLevel):
        level = args[0]
    elif len(args) == 2 and isinstance(args[0], (Func, Stage)):
        parent = args[0]
        pf = parent._func if isinstance(parent, Stage) else parent
        pk = parent._index if isinstance(parent, Stage) else 0
        var = args[1]
        vname = var if isinstance(var, str) else _dim_name(var, "compute_with", sname, sched)
        level = LoopLevel("at", pf._f.name, vname, pk)
    else:
        raise CompileError(f"In schedule for {sname}: compute_with() takes (Func or Stage, Var"
                           f"[, LoopAlignStrategy]) or (LoopLevel[, LoopAlignStrategy])")
    if level.kind != "at":
        raise CompileError(f"In schedule for {sname}: compute_with() needs a loop of another "
                           f"stage, not LoopLevel.{level.kind}()")
    if level.func == fn.name:
        raise CompileError(f"In schedule for {sname}: compute_with() a stage of the same Func "
                           f"{fn.user_name} is not possible (its stages depend on each other)")
    _find_dim(sched, level.var, "compute_with", sname)
    sched.compute_with = level if level.stage >= 0 else LoopLevel("at", level.func, level.var, 0)
    _record(owner, "compute_with", [sched.compute_with, align.value])
    return owner


def serial(owner, var):
    _set_kind(owner, var, ForKind.SERIAL, "serial")
    _record(owner, "serial", [var])
    return owner


def tile(owner, *args):
    """tile(x, y, xo, yo, xi, yi, xf, yf[, tail]) or tile(x, y, xi, yi, xf, yf[, tail])."""
    args = list(args)
    tail = TailStrategy.Auto
    if args and isinstance(args[-1], (TailStrategy, str)) and not _is_var(args[-1]):
        tail = args.pop()
    if len(args) == 8:
        x, y, xo, yo, xi, yi, xf, yf = args
    elif len(args) == 6:
        x, y, xi, yi, xf, yf = args
        xo, yo = x, y
    elif len(args) == 4 and all(isinstance(a, (list, tuple)) for a in args):
        vs, outs, ins, fs = args
        for v, o, i, f in zip(vs, outs, ins, fs):
            _do_split(owner, v, o, i, f, tail, "tile")
        order = list(ins) + list(outs)
        reorder(owner, *order)
        owner_fn = _target(owner)[1]
        owner_fn.schedule.log.pop()   # the reorder is part of this tile
        _record(owner, "tile", [list(vs), list(outs), list(ins), list(fs), tail])
        return owner
    else:
        raise CompileError(f"tile() takes (x, y, xo, yo, xi, yi, xfactor, yfactor[, tail]) or "
                           f"(x, y, xi, yi, xfactor, yfactor[, tail]); got {len(args)} arguments")
    _do_split(owner, x, xo, xi, xf, tail, "tile")
    _do_split(owner, y, yo, yi, yf, tail, "tile")
    func, fn, k, sched, sname = _target(owner)
    order = [_dim_name(v, "tile", sname, sched) for v in (xi, yi, xo, yo)]
    idx = [_find_dim(sched, n, "tile", sname) for n in order]
    slots = sorted(idx)
    moved = [sched.dims[i] for i in idx]
    for slot, d in zip(slots, moved):
        sched.dims[slot] = d
    _record(owner, "tile", [x, y, xo, yo, xi, yi, xf, yf, tail])
    return owner


def _is_var(a):
    from ..lang.var import RVar, Var
    return isinstance(a, (Var, RVar))


# -- compute and storage levels ----------------------------------------------------

def _fn(func):
    return func._f


def _func_only(owner, directive):
    from ..lang.func import Func
    if not isinstance(owner, Func):
        raise CompileError(f"{directive}() applies to a Func, not to an update stage")
    return owner


def compute_root(func):
    _func_only(func, "compute_root")
    s = _fn(func).schedule
    s.compute_level = LoopLevel.root()
    s.store_level = LoopLevel.root()
    s.explicit_compute = True
    _record(func, "compute_root", [])
    return func


def compute_inline(func):
    _func_only(func, "compute_inline")
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


def _loop_level(args, directive, who):
    from ..lang.func import Func
    if len(args) == 1 and isinstance(args[0], LoopLevel):
        return args[0]
    if len(args) == 2 and isinstance(args[0], Func):
        consumer, var = args
        from ..lang.var import RVar, Var
        if not isinstance(var, (Var, RVar, str)):
            raise CompileError(f"{directive}() of {who}: the loop must be a Var or RVar, got "
                               f"{var!r}")
        vname = var if isinstance(var, str) else var.name()
        return LoopLevel("at", consumer._f.name, vname)
    raise CompileError(f"{directive}() of {who} takes (Func, Var) or a LoopLevel")


def compute_at(func, *args):
    _func_only(func, "compute_at")
    fn = _fn(func)
    lv = _loop_level(args, "compute_at", fn.user_name)
    s = fn.schedule
    s.compute_level = lv
    if s.store_level.is_inlined() or not getattr(s, "explicit_store", False):
        s.store_level = lv
    s.explicit_compute = True
    _record(func, "compute_at", list(args))
    return func


def store_at(func, *args):
    _func_only(func, "store_at")
    fn = _fn(func)
    lv = _loop_level(args, "store_at", fn.user_name)
    fn.schedule.store_level = lv
    fn.schedule.explicit_store = True
    _record(func, "store_at", list(args))
    return func


def store_root(func):
    _func_only(func, "store_root")
    fn = _fn(func)
    fn.schedule.store_level = LoopLevel.root()
    fn.schedule.explicit_store = True
    _record(func, "store_root", [])
    return func


def hoist_storage(func, *args):
    """Allocate this Func's storage at an outer loop (or the root) and reuse
    it for every iteration inside; its region stays that of its store level."""
    _func_only(func, "hoist_storage")
    fn = _fn(func)
    fn.schedule.hoist_level = _loop_level(args, "hoist_storage", fn.user_name)
    _record(func, "hoist_storage", list(args))
    return func


def hoist_storage_root(func):
    _func_only(func, "hoist_storage_root")
    fn = _fn(func)
    fn.schedule.hoist_level = LoopLevel.root()
    _record(func, "hoist_storage_root", [])
    return func


def memoize(func, eviction_key=None):
    """Keep this Func's values across calls of the pipeline, keyed on the
    region computed, the Params and the contents of the inputs it reads."""
    _func_only(func, "memoize")
    fn = _fn(func)
    key = getattr(eviction_key, "key", eviction_key)
    if key is not None and (isinstance(key, bool) or not isinstance(key, int)):
        raise CompileError(f"memoize() of {fn.user_name}: the eviction key must be an "
                           f"integer, got {eviction_key!r}")
    fn.schedule.memoize = True
    fn.schedule.memo_eviction_key = key
    _record(func, "memoize", [] if key is None else [key])
    return func


def in_(owner, *consumers):
    """A wrapper Func that copies this one and that `consumers` (or every
    consumer, with no arguments) read instead; schedule it like any Func."""
    _func_only(owner, "in_")
    fn = _fn(owner)
    w = make_wrapper(fn.user_name, fn.name, fn.schedule.wrappers, consumers,
                     lambda vs: owner[vs] if len(fn.output_types) == 1
                     else tuple(owner[vs][i] for i in range(len(fn.output_types))),
                     fn.dimensions(), fn.pure_args)
    _record(owner, "in_", list(consumers))
    return w


def clone_in(owner, *consumers):
    return in_(owner, *consumers)


def make_wrapper(user_name, internal, table, consumers, read, dims, var_names=None):
    """Create (or return the existing) wrapper Func registered in `table`.
    Its Vars are `var_names` (a Func's wrapper keeps the Func's own, as in
    Halide, so `f.in_().reorder(c, x, y)` works) or _0, _1, ... (images)."""
    from ..lang.func import Func
    from ..lang.var import Var
    if len(consumers) == 1 and isinstance(consumers[0], (list, tuple)):
        consumers = tuple(consumers[0])
    for c in consumers:
        if not isinstance(c, Func):
            raise CompileError(f"in_() of {user_name} takes consumer Funcs, got {c!r}")
    keys = [c._f.name for c in consumers] or [""]
    existing = table.get(keys[0])
    if existing is not None and all(table.get(k) is existing for k in keys):
        return existing
    suffix = "_".join(c.name() for c in consumers) if consumers else "global"
    w = Func(f"{user_name}_in_{suffix}" if consumers else f"{user_name}_global_wrapper")
    vs = tuple(Var(n) for n in var_names) if var_names else \
        tuple(Var(f"_{i}") for i in range(dims))
    w[vs] = read(vs)
    w._f.wraps = internal
    for k in keys:
        table[k] = w
    return w


def _pure_var(func, var, directive):
    _func_only(func, directive)
    fn = _fn(func)
    name = var.name() if hasattr(var, "name") else var
    if name not in fn.pure_args:
        raise CompileError(f"In schedule for {fn.user_name}: {directive}() of unknown "
                           f"dimension '{name}'; the pure Vars are {', '.join(fn.pure_args)}")
    return fn, name


def bound(func, var, min, extent):
    """Compute exactly [min, min + extent) in `var` (checked at run time)."""
    fn, name = _pure_var(func, var, "bound")
    fn.schedule.bounds[name] = (min, extent)
    _record(func, "bound", [var, min, extent])
    return func


def bound_extent(func, var, extent):
    fn, name = _pure_var(func, var, "bound_extent")
    fn.schedule.bounds[name] = (None, extent)
    _record(func, "bound_extent", [var, extent])
    return func


def align_bounds(func, var, modulus, remainder=0):
    """Round the computed region of `var` out to multiples of `modulus`."""
    fn, name = _pure_var(func, var, "align_bounds")
    m = _factor(modulus, "align_bounds", fn.user_name)
    if not isinstance(remainder, int):
        raise CompileError(f"In schedule for {fn.user_name}: align_bounds() remainder must "
                           f"be an int, got {remainder!r}")
    fn.schedule.align[name] = (m, remainder % m)
    _record(func, "align_bounds", [var, modulus, remainder])
    return func


def reorder_storage(func, *vars):
    """Lay out storage with these dimensions innermost first."""
    _func_only(func, "reorder_storage")
    fn = _fn(func)
    if len(vars) == 1 and isinstance(vars[0], (list, tuple)):
        vars = tuple(vars[0])
    names = [_pure_var(func, v, "reorder_storage")[1] for v in vars]
    if len(set(names)) != len(names):
        raise CompileError(f"In schedule for {fn.user_name}: reorder_storage() names a "
                           f"dimension twice: {names}")
    rest = [v for v in fn.pure_args if v not in names]
    # Unnamed dimensions keep their relative order, outside the named ones.
    fn.schedule.storage_order = names + rest
    _record(func, "reorder_storage", list(vars))
    return func


def fold_storage(func, var, extent, fold_forward=True):
    """Store only `extent` slices of `var`, reused circularly (with a run-time
    check that no more are live at once)."""
    fn, name = _pure_var(func, var, "fold_storage")
    e = _factor(extent, "fold_storage", fn.user_name)
    fn.schedule.folds[name] = e
    _record(func, "fold_storage", [var, extent] + ([] if fold_forward else [False]))
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
            f"by this version of halo (an error rather than being silently ignored)")
    return fn


_PLANNED = ["async_"]

_LOOP = {"compute_with": compute_with, "prefetch": prefetch, "rfactor": rfactor, "specialize": specialize, "specialize_fail": specialize_fail, "atomic": atomic, "split": split, "fuse": fuse, "tile": tile, "reorder": reorder, "rename": rename,
         "vectorize": vectorize, "unroll": unroll, "parallel": parallel, "serial": serial}

FUNC_DIRECTIVES = {name: _not_yet(name) for name in _PLANNED}
FUNC_DIRECTIVES.update(_LOOP)
FUNC_DIRECTIVES.update({
    "reorder_storage": reorder_storage,
    "fold_storage": fold_storage,
    "bound": bound,
    "bound_extent": bound_extent,
    "align_bounds": align_bounds,
    "in_": in_,
    "clone_in": clone_in,
    "compute_root": compute_root,
    "compute_inline": compute_inline,
    "compute_at": compute_at,
    "store_at": store_at,
    "store_root": store_root,
    "hoist_storage": hoist_storage,
    "memoize": memoize,
    "hoist_storage_root": hoist_storage_root,
    "set_estimate": set_estimate,
    "set_estimates": set_estimates,
    "print_loop_nest": print_loop_nest,
})

STAGE_DIRECTIVES = {name: _not_yet(name) for name in _PLANNED}
STAGE_DIRECTIVES.update(_LOOP)

# GPU directives live in their own module (halo.schedule.gpu).
from . import gpu as _gpu  # noqa: E402  (it imports helpers defined above)
FUNC_DIRECTIVES.update(_gpu.LOOP_DIRECTIVES)
FUNC_DIRECTIVES.update(_gpu.FUNC_ONLY_DIRECTIVES)
STAGE_DIRECTIVES.update(_gpu.LOOP_DIRECTIVES)
