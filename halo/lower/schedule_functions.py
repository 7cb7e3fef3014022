"""Build the loop nest of every non-inlined Func from its stage schedules.

Produces, per Function, one statement per stage: loops (innermost first in
`StageSchedule.dims`) around a `Provide`, guarded by the RDom predicates.
Loop variables are named `f.s<k>.<var>`; a pure loop runs over
`[f.s<k>.<var>.min, f.s<k>.<var>.max]` (lets made by bounds inference), an
RVar loop over its RDom bounds.
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import substitute
from ..ir.types import i32


def stage_var(fname: str, stage: int, var: str) -> str:
    return f"{fname}.s{stage}.{var}"


def stage_renaming(f, stage: int, definition) -> dict:
    """Pure Vars and RVars of a definition -> its loop variables."""
    names = {}
    pure = pure_vars_of(f, definition)
    for v in pure:
        names[v] = E.Variable(i32, stage_var(f.name, stage, v))
    for rv in definition.rvars():
        names[rv] = E.Variable(i32, stage_var(f.name, stage, rv))
    return names


def pure_vars_of(f, definition) -> list:
    return [a.name for i, a in enumerate(definition.args)
            if isinstance(a, E.Variable) and i < len(f.pure_args) and a.name == f.pure_args[i]]


def build_produce(f, definitions) -> S.Stmt:
    """The statements computing all stages of `f` (its definitions inlined)."""
    stages = []
    for k, d in enumerate(definitions):
        ren = stage_renaming(f, k, d)
        args = tuple(substitute(ren, a) for a in d.args)
        values = tuple(substitute(ren, v) for v in d.values)
        body = S.Provide(f.name, values, args)
        for p in d.predicates():
            body = S.IfThenElse(substitute(ren, p), body)
        rbounds = dict(zip(d.rvars(), d.rvar_bounds()))
        pure = set(pure_vars_of(f, d))
        for dim in d.schedule.dims:
            name = stage_var(f.name, k, dim.var)
            if dim.var in rbounds:
                lo, ext = rbounds[dim.var]
            elif dim.var in pure:
                lo = E.Variable(i32, name + ".min")
                ext = E.Add(E.Sub(E.Variable(i32, name + ".max"), lo), E.Const(i32, 1))
            else:
                continue
            body = S.For(name, lo, ext, dim.kind, body)
        stages.append(body)
    return S.block(*stages)
