"""Symbolic bounds inference for compute_root Funcs and input images.

Walks Functions from consumers to producers. For each Function it defines
(as `let`s evaluated at the start of the pipeline):

* `f.s<k>.<x>.min/.max`: the region stage k computes in pure dimension x:
  what consumers read, plus what later stages of f read of f itself;
* `f.alloc.<i>.min/.max`: the storage box: every stage's region plus every
  point an update writes (scattered left-hand sides included);

and accumulates what each stage reads of its producers and of the inputs
(`img.req.<i>.min/.max`). A read whose bounds cannot be inferred (a
data-dependent 32-bit index) is an error naming both Funcs and the dimension.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CompileError
from ..ir import expr as E
from ..ir.mutator import calls_in, expand_lets, substitute
from ..ir.simplify import simplify
from ..ir.types import i32
from .affine import exact_rvar_range, make_domain, split_rvar_part
from .bounds import Interval, bounds_of_expr, union
from .schedule_functions import stage_renaming, stage_var, pure_vars_of


@dataclass
class BoundsResult:
    lets: list = field(default_factory=list)        # (name, Expr), in order
    alloc: dict = field(default_factory=dict)       # func name -> [(min, max) Variable]
    image_required: dict = field(default_factory=dict)  # image name -> [(min, max)]


def _v(name):
    return E.Variable(i32, name)


def infer_bounds(env, order, definitions, outputs, user_names) -> BoundsResult:
    """`definitions`: func name -> its definitions with inlined Funcs expanded."""
    res = BoundsResult()
    required: dict[str, list] = {}
    image_req: dict[str, list] = {}
    image_user: dict[str, str] = {}
    for f in outputs:
        required[f.name] = [Interval(_v(f"{f.name}.min.{i}"),
                                     E.Sub(E.Add(_v(f"{f.name}.min.{i}"), _v(f"{f.name}.extent.{i}")),
                                           E.Const(i32, 1)))
                            for i in range(f.dimensions())]

    def let(name, value):
        res.lets.append((name, simplify(value)))
        return _v(name)

    for fname in reversed(order):
        f = env[fname]
        defs = definitions[fname]
        req = required.get(fname)
        if req is None:   # computed but never read (cannot happen for outputs)
            req = [Interval(E.Const(i32, 0), E.Const(i32, -1))] * f.dimensions()
        req = list(req)
        alloc = list(req)
        scopes, domains = {}, {}
        for k in range(len(defs) - 1, -1, -1):
            d = defs[k]
            pure = pure_vars_of(f, d)
            scope = {}
            for i, var in enumerate(f.pure_args):
                if var in pure:
                    name = stage_var(fname, k, var)
                    lo = let(name + ".min", req[i].min)
                    hi = let(name + ".max", req[i].max)
                    scope[name] = Interval(lo, hi)
            for rv, (lo, ext) in zip(d.rvars(), d.rvar_bounds()):
                scope[stage_var(fname, k, rv)] = Interval(
                    lo, simplify(E.Sub(E.Add(lo, ext), E.Const(i32, 1))))
            scopes[k] = scope
            ren = stage_renaming(f, k, d)
            domains[k] = make_domain([stage_var(fname, k, rv) for rv in d.rvars()],
                                     d.rvar_bounds(), [substitute(ren, p) for p in d.predicates()]) \
                if d.rvars() else None
            if k > 0:
                for i, a in enumerate(d.args):
                    if f.pure_args[i] in pure and isinstance(a, E.Variable):
                        continue
                    iv = _need_bounded(stage_bounds(substitute(ren, a), scope, domains[k]),
                                       f, f, i, "writes")
                    alloc[i] = union(alloc[i], iv)
                for c in _calls_of(d, fname):
                    for i, a in enumerate(c.args):
                        iv = _need_bounded(stage_bounds(substitute(ren, a), scope, domains[k]),
                                           f, f, i)
                        req[i] = union(req[i], iv)
                        alloc[i] = union(alloc[i], iv)
        alloc_vars = []
        for i in range(f.dimensions()):
            lo = let(f"{fname}.alloc.{i}.min", alloc[i].min)
            hi = let(f"{fname}.alloc.{i}.max", alloc[i].max)
            alloc_vars.append((lo, hi))
        res.alloc[fname] = alloc_vars
        # What each stage needs from its producers and inputs.
        for k, d in enumerate(defs):
            ren = stage_renaming(f, k, d)
            scope = scopes[k]
            nodes = [*d.values, *d.args, *d.predicates()]
            for node in nodes:
                for c in calls_in(expand_lets(substitute(ren, node))):
                    if c.call_type == E.CallType.FUNC and c.name != fname:
                        box = required.setdefault(c.name, [None] * len(c.args))
                        for i, a in enumerate(c.args):
                            iv = _need_bounded(stage_bounds(a, scope, domains[k]), f,
                                               env[c.name], i)
                            box[i] = iv if box[i] is None else union(box[i], iv)
                    elif c.call_type == E.CallType.IMAGE:
                        box = image_req.setdefault(c.name, [None] * len(c.args))
                        for i, a in enumerate(c.args):
                            iv = stage_bounds(a, scope, domains[k])
                            if not iv.is_bounded():
                                raise CompileError(
                                    f"Buffer {user_names.get(c.name, c.name)} may be accessed "
                                    f"in an unbounded way in dimension {i} (by Func "
                                    f"{f.user_name}); clamp the index or use a "
                                    f"BoundaryConditions function")
                            box[i] = iv if box[i] is None else union(box[i], iv)
    for name, box in image_req.items():
        res.image_required[name] = [
            (let(f"{name}.req.{i}.min", iv.min), let(f"{name}.req.{i}.max", iv.max))
            for i, iv in enumerate(box)]
    return res


def stage_bounds(e, scope, domain) -> Interval:
    """Bounds of `e` in a stage: exact (isl) for the part affine in the
    stage's RVars when its RDom is constant, intervals for the rest."""
    if domain is not None:
        split = split_rvar_part(expand_lets(e), domain.names)
        if split is not None:
            rv_part, rest = split
            exact = exact_rvar_range(rv_part, domain)
            if exact is not None:
                lo, hi = exact
                r = bounds_of_expr(rest, scope)
                if r.is_bounded():
                    return Interval(simplify(E.Add(r.min, E.Const(i32, lo))),
                                    simplify(E.Add(r.max, E.Const(i32, hi))))
    return bounds_of_expr(e, scope)


def _calls_of(d, fname):
    return [c for node in (*d.values, *d.args)
            for c in calls_in(expand_lets(node), E.CallType.FUNC) if c.name == fname]


def _need_bounded(iv: Interval, consumer, producer, dim, what="calls"):
    if not iv.is_bounded():
        if consumer is producer and what == "writes":
            raise CompileError(
                f"An update of Func {consumer.user_name} writes to an unbounded region in "
                f"dimension {dim}; clamp the left-hand side index")
        raise CompileError(
            f"Func {consumer.user_name} calls function {producer.user_name} in an unbounded "
            f"way in dimension {dim}; clamp the index (data-dependent indices into a "
            f"computed Func need explicit bounds)")
    return iv
