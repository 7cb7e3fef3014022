"""Legality of parallel and vectorized loops over reduction variables.

Running the iterations of an RVar loop at the same time is only correct when
no two of them touch the same element of the Func with at least one write:
two writes (a histogram: hist[img[r]] += 1) collide, and a write and a read
(a prefix sum: f[r] = f[r] + f[r - 1]) form a loop-carried dependence.

Where the left-hand side and the Func's reads of itself are affine in the
loop variables with constant RDom bounds, isl decides exactly and the
error names two iterations that conflict. Otherwise (data-dependent
indices) the loop is assumed to conflict, as Halide does. Pure variables
never conflict: each pure-var iteration writes its own elements.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as E
from ..ir.mutator import calls_in, expand_lets
from ..ir.simplify import simplify, _linear
from ..ir.stmt import ForKind


def check_stage_races(f, k: int, d, definition_inlined) -> None:
    """Raise CompileError if stage k of `f` runs an RVar loop in parallel
    or vectorized where iterations conflict."""
    sched = d.schedule
    origins = _dim_origins(d)
    for pos, dim in enumerate(sched.dims):
        if dim.kind not in (ForKind.PARALLEL, ForKind.VECTORIZED) or not dim.is_rvar:
            continue
        rvars = [v for v in origins.get(dim.var, {dim.var}) if v in d.rvars()]
        # Variables only of loops outside this one are equal in two
        # concurrent iterations; all others may differ.
        inner = set().union(*[origins.get(x.var, {x.var}) for x in sched.dims[:pos + 1]])
        fixed = {v for x in sched.dims[pos + 1:] for v in origins.get(x.var, {x.var})} - inner
        for rv in rvars:
            conflict = _find_conflict(f, definition_inlined, rv, fixed, sched.atomic)
            if conflict is not None:
                stage = f.user_name if k == 0 else f"{f.user_name}.update({k - 1})"
                kind = "parallel" if dim.kind == ForKind.PARALLEL else "vectorized"
                raise CompileError(
                    f"In schedule for {stage}: the {kind} loop '{dim.var}' over RVar "
                    f"'{_pretty(rv)}' may introduce a race condition: {conflict}. "
                    f"Run it serially, or make the update atomic(): f.update(i).atomic()")


def _pretty(rv):
    return rv.split("$")[0] if "$" in rv else rv


def _dim_origins(d) -> dict:
    """Schedule dimension -> the original variables it is derived from."""
    orig = {v: {v} for v in list(d.rvars()) + [a.name for a in d.args if isinstance(a, E.Variable)]}
    for sp in d.schedule.splits:
        if sp.kind == "split":
            src = orig.pop(sp.old, {sp.old})
            orig[sp.outer] = set(src)
            orig[sp.inner] = set(src)
        elif sp.kind == "fuse":
            orig[sp.old] = orig.pop(sp.inner, {sp.inner}) | orig.pop(sp.outer, {sp.outer})
        else:
            orig[sp.outer] = orig.pop(sp.old, {sp.old})
    return orig


def _find_conflict(f, d, rv: str, fixed: set, atomic: bool = False):
    """A description of two conflicting iterations, or None if none exist."""
    writes = [expand_lets(a) for a in d.args]
    reads = [[expand_lets(a) for a in c.args]
             for node in d.values + d.args for c in calls_in(expand_lets(node), E.CallType.FUNC)
             if c.name == f.name]
    loop_vars = list(dict.fromkeys(
        list(d.rvars()) + [a.name for a in d.args if isinstance(a, E.Variable)]))
    bounds = {}
    for name, (lo, ext) in zip(d.rvars(), d.rvar_bounds()):
        lo, ext = simplify(lo), simplify(ext)
        if isinstance(lo, E.Const) and isinstance(ext, E.Const):
            bounds[name] = (lo.value, lo.value + ext.value - 1)
    preds = [expand_lets(p) for p in d.predicates()]
    if atomic:
        # Atomic read-modify-writes of one element may collide; reads of any
        # other element still order the iterations.
        reads = [r for r in reads if r != writes]
        checks = reads
    else:
        checks = [writes] + reads
    for other in checks:
        res = _conflict_isl(writes, other, rv, loop_vars, bounds, preds, other is writes, fixed)
        if res is None:
            what = "both write" if other is writes else "one writes what the other reads of"
            return (f"its iterations may {what} the same element of {f.user_name} (the "
                    f"indices are not affine in the loop variables, so halo cannot prove "
                    f"otherwise)")
        if res:
            return res
    return None


def _affine(e, names):
    terms, const = _linear(simplify(e))
    out = {}
    for t, c in terms.items():
        if not (isinstance(t, E.Variable) and t.name in names):
            return None
        out[t.name] = c
    return out, const


def _conflict_isl(lhs, other, rv, loop_vars, bounds, preds, both_writes, fixed):
    """'' when provably no conflict, a description when one exists, None when
    the question is not affine."""
    import islpy as isl
    names = list(loop_vars)
    idx = {n: i for i, n in enumerate(names)}
    a_forms = [_affine(e, idx) for e in lhs]
    b_forms = [_affine(e, idx) for e in other]
    if any(x is None for x in a_forms + b_forms):
        return None
    if rv not in bounds:
        return None
    v1 = [f"a{i}" for i in range(len(names))]
    v2 = [f"b{i}" for i in range(len(names))]

    def text(form, vs):
        coeffs, const = form
        return " + ".join([f"{c}*{vs[idx[n]]}" for n, c in coeffs.items()] + [str(const)])

    cons = []
    for i, n in enumerate(names):
        if n in bounds:
            lo, hi = bounds[n]
            cons += [f"{lo} <= {v1[i]} <= {hi}", f"{lo} <= {v2[i]} <= {hi}"]
        if n in fixed:
            cons.append(f"{v1[i]} = {v2[i]}")   # an enclosing loop: same iteration
    r = idx[rv]
    cons.append(f"{v1[r]} != {v2[r]}")
    for fa, fb in zip(a_forms, b_forms):
        cons.append(f"{text(fa, v1)} = {text(fb, v2)}")
    for p in preds:
        for vs in (v1, v2):
            c = _pred_text(p, idx, vs)
            if c:
                cons.append(c)
    try:
        s = isl.Set(f"{{ [{', '.join(v1 + v2)}] : {' and '.join(cons)} }}")
    except isl.Error:
        return None
    if s.is_empty():
        return ""
    pt = s.sample_point()
    vals = [int(pt.get_coordinate_val(isl.dim_type.set, i).to_python())
            for i in range(2 * len(names))]
    p1, p2 = vals[:len(names)], vals[len(names):]
    elem = [sum(c * p1[idx[n]] for n, c in fa[0].items()) + fa[1] for fa in a_forms]
    what = "both write" if both_writes else "write and read"
    return (f"iterations {_pretty(rv)}={p1[r]} and {_pretty(rv)}={p2[r]} {what} element "
            f"({', '.join(map(str, elem))})")


def _pred_text(p, idx, vs):
    ops = {E.LT: "<", E.LE: "<=", E.GT: ">", E.GE: ">=", E.EQ: "="}
    if isinstance(p, E.And):
        a, b = _pred_text(p.a, idx, vs), _pred_text(p.b, idx, vs)
        return " and ".join(x for x in (a, b) if x)
    op = ops.get(type(p))
    if op is None:
        return ""
    fa, fb = _affine(p.a, idx), _affine(p.b, idx)
    if fa is None or fb is None:
        return ""

    def t(form):
        coeffs, const = form
        return " + ".join([f"{c}*{vs[idx[n]]}" for n, c in coeffs.items()] + [str(const)])
    return f"{t(fa)} {op} {t(fb)}"
