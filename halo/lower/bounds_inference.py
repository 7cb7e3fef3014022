"""Symbolic bounds inference on the loop nest.

Accepts the nest from `schedule_functions` (ProducerConsumer at compute
levels, Realize with empty bounds at store levels) and returns it with
`let`s defining every symbol the loops use:

* before `produce f` (at f's compute level): `f.s<k>.<v>.min/.max`, the
  region stage k computes in pure dimension v: what the code that consumes
  f at this level reads for the consumers' own regions, plus what later
  stages of f read of f itself. As in Halide, lanes that a consumer's
  split computes beyond its region (ShiftInwards, RoundUp) do not count:
  they read values never computed, and nothing reads what they compute;
* before `realize f` (at f's store level): `f.alloc.<i>.min/.max`, the
  storage box: everything the realize's body writes or reads of f, those
  extra lanes included, so that no access leaves the storage;
* at the top, for outputs, their stage regions from the output buffers.

Boxes are found by walking statements with a scope of intervals for loop
variables and lets (interval arithmetic, narrowed by simple `if`
conditions such as split guards). The part of an index that is affine in
loops with constant bounds is bounded exactly with isl, under the affine
`if` conditions around it (e.g. `RDom.where` predicates).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, calls_in, expand_lets, split_invariant_lets, substitute
from ..ir.simplify import CORRELATE_MAX_SIZE, _size, simplify
from ..ir.types import i32
from .affine import AffineDomain, exact_rvar_range, split_rvar_part
from .bounds import Interval, bounds_of_expr, union
from .schedule_functions import stage_var, pure_vars_of


def _v(name):
    return E.Variable(i32, name)


def _c(v):
    return E.Const(i32, v)


@dataclass
class BoundsResult:
    body: S.Stmt
    output_lets: list = field(default_factory=list)   # (name, Expr)


class _Box:
    """Union of intervals per dimension (None until something is touched).

    The distinct bounds of each dimension are kept apart and combined as a
    balanced min/max tree: a Func read at hundreds of sites (inlined
    stencils) would otherwise give a chain as deep as the number of reads,
    past Python's recursion limit in every later pass."""

    def __init__(self, dims):
        self._mins = [{} for _ in range(dims)]     # dict as an ordered set
        self._maxes = [{} for _ in range(dims)]
        self._unbounded_min = [False] * dims
        self._unbounded_max = [False] * dims
        self.touched = False

    def add(self, i, iv):
        self.touched = True
        for bound, parts, unbounded in ((iv.min, self._mins, self._unbounded_min),
                                        (iv.max, self._maxes, self._unbounded_max)):
            if bound is None:
                unbounded[i] = True
            else:
                parts[i][bound] = None

    @property
    def dims(self):
        out = []
        for i in range(len(self._mins)):
            if not self._mins[i] and not self._maxes[i] and not (
                    self._unbounded_min[i] or self._unbounded_max[i]):
                out.append(None)
                continue
            lo = None if self._unbounded_min[i] else E.balanced(E.Min, list(self._mins[i]))
            hi = None if self._unbounded_max[i] else E.balanced(E.Max, list(self._maxes[i]))
            out.append(Interval(lo, hi))
        return out


class BoxFinder:
    """Boxes of a buffer or Func touched by a statement.

    `calls`: count reads (Call of that name); `provides`: count writes.
    `kind`: "func" or "image" (which Call type to look for). Errors for
    unbounded accesses name the consumer, the producer and the dimension.
    """

    def __init__(self, name, dims, user_names, calls=True, provides=False, kind="func",
                 required=False):
        self.name, self.user_names = name, user_names
        self.required = required
        self.calls, self.provides, self.kind = calls, provides, kind
        self.box = _Box(dims)
        self.scope: dict = {}
        self.lets: dict = {}            # let name -> value (for exact affine bounds)
        self.loops: list = []           # (var, min Const, extent Const) of constant loops
        self.depth = 0                  # loops entered during this walk
        self.conds: list = []           # enclosing if-conditions
        self.narrowed: set = set()      # let names given a guard-narrowed interval in scope
        self.regions: set = set()       # ... narrowed to their Func's region (required)
        self.consumer = None

    # -- statements ---------------------------------------------------------------------
    def visit(self, s):
        m = getattr(self, "s_" + type(s).__name__)
        m(s)

    def s_Block(self, s):
        for x in s.stmts:
            self.visit(x)

    def s_For(self, s):
        self.depth += 1
        try:
            self._for(s)
        finally:
            self.depth -= 1

    def _for(self, s):
        mn, ex = self.full(s.min), self.full(s.extent)
        lo = bounds_of_expr(mn, self.scope)
        hi = bounds_of_expr(simplify(E.Sub(E.Add(mn, ex), _c(1))), self.scope)
        saved = self.scope.get(s.name)
        self.scope[s.name] = Interval(lo.min, hi.max)
        const = isinstance(mn, E.Const) and isinstance(ex, E.Const)
        if const:
            self.loops.append((s.name, mn.value, ex.value))
        self.visit(s.body)
        if const:
            self.loops.pop()
        self._restore(s.name, saved)

    def s_LetStmt(self, s):
        # Lets inside the loops walked here vary with them: they are
        # substituted into every expression analysed below them, so
        # correlated terms (a region's max minus its min) cancel exactly.
        # Lets outside every loop of the walk are one value each: they stay
        # symbols (hoist_region_lets puts them first), which keeps long
        # pipelines' bounds small instead of re-expanding every stage.
        self.expr(s.value)
        if self.depth == 0:
            self.visit(s.body)
            return
        saved = self.lets.get(s.name)
        self.lets[s.name] = s.value
        region = self._required_part(s.name) if self.required else None
        saved_iv, was_narrowed = self.scope.get(s.name), s.name in self.narrowed
        if region is not None:
            self.scope[s.name] = region
            self.narrowed.add(s.name)
            self.regions.add(s.name)
        self.visit(s.body)
        if region is not None:
            self._restore(s.name, saved_iv)
            self.regions.discard(s.name)
            if not was_narrowed:
                self.narrowed.discard(s.name)
        if saved is None:
            self.lets.pop(s.name, None)
        else:
            self.lets[s.name] = saved

    def _required_part(self, name):
        """For a consumer's split pure variable whose loops all run inside
        this walk (the producer is computed outside them): its loop range
        narrowed to the region the consumer must compute. As in Halide, the
        lanes a ShiftInwards or RoundUp split computes beyond that region
        are not worth computing the producer for: they read values that
        were never computed (inside the producer's storage, which covers
        them), and nothing reads their results. Otherwise ten levels of a
        pyramid each shift a 16-lane vector left of a 4-pixel region and
        the coarse levels grow geometrically (interpolate)."""
        from ..ir.mutator import free_variables
        lo, hi = name + ".min", name + ".max"
        if lo not in free_variables(self.lets[name]):
            return None            # not a split pure variable (which starts at its min)
        names = free_variables(self.full(_v(name)))
        if lo not in names:
            return None   # the region itself varies inside the walk: its names are not defined here
        loops = names - {lo, hi}
        if not loops or any(v not in self.scope for v in loops):
            return None                   # an outer loop of the split is fixed here
        # (the loops cover the region: their range narrowed to it is the
        # region itself, and plain names keep a long chain's bounds small)
        return Interval(_v(lo), _v(hi))

    def full(self, e):
        """`e` with every enclosing let substituted, simplified."""
        return simplify(_expand(e, self.lets, set()))

    def s_IfThenElse(self, s):
        self.expr(s.condition)
        saved, saved_narrowed = dict(self.scope), set(self.narrowed)
        _narrow(self.full(s.condition), self.scope)
        self._narrow_lets(s.condition)
        self.conds.append(s.condition)
        self.visit(s.then_case)
        self.conds.pop()
        self.scope, self.narrowed = saved, saved_narrowed
        if s.else_case is not None:
            self.visit(s.else_case)

    def _narrow_lets(self, cond):
        """A guard `v < e` on a let-bound `v` (a split's rebuilt dimension under
        GuardWithIf) bounds v itself: give v its narrowed interval in scope, so
        `bound` can use it next to the fully expanded index."""
        if isinstance(cond, E.And):
            self._narrow_lets(cond.a)
            self._narrow_lets(cond.b)
            return
        if not isinstance(cond, (E.LT, E.LE)) or not isinstance(cond.a, E.Variable):
            return
        n = cond.a.name
        if n not in self.lets or n in self.scope or cond.a.type != i32:
            return
        cur = bounds_of_expr(self.full(cond.a), self.scope)
        rb = bounds_of_expr(self.full(cond.b), self.scope)
        if cur.min is None or rb.max is None:
            return
        hi = rb.max if isinstance(cond, E.LE) else E.Sub(rb.max, _c(1))
        self.scope[n] = Interval(cur.min, hi if cur.max is None else E.Min(cur.max, hi))
        self.narrowed.add(n)

    def s_Atomic(self, s):
        self.visit(s.body)

    def s_ProducerConsumer(self, s):
        self.visit(s.produce)
        self.visit(s.consume)

    def s_Realize(self, s):
        self.visit(s.body)

    def s_Provide(self, s):
        saved = self.consumer
        self.consumer = s.name
        for v in s.values:
            self.expr(v)
        for a in s.args:
            self.expr(a)
        if self.provides and s.name == self.name:
            for i, a in enumerate(s.args):
                self.box.add(i, self.bound(a, i, writes=True))
        self.consumer = saved

    def s_AssertStmt(self, s):
        pass

    def s_Evaluate(self, s):
        self.expr(s.value)

    def _restore(self, name, saved):
        if saved is None:
            self.scope.pop(name, None)
        else:
            self.scope[name] = saved

    # -- expressions ----------------------------------------------------------------------
    def expr(self, e):
        if not self.calls:
            return
        want = E.CallType.FUNC if self.kind == "func" else E.CallType.IMAGE
        for c in calls_in(expand_lets(e), want):
            if c.name != self.name:
                continue
            for i, a in enumerate(c.args):
                self.box.add(i, self.bound(a, i))

    def bound(self, a, dim, writes=False) -> Interval:
        iv = self._exact(a)
        if iv is None:
            iv = bounds_of_expr(self.full(a), self.scope)
        if self.narrowed:
            # also bound `a` through the guard-narrowed lets; both are sound
            part = simplify(_expand(a, self.lets, self.narrowed))
            from ..ir.mutator import free_variables
            through = free_variables(part) & self.narrowed
            iv2 = bounds_of_expr(part, self.scope) if through else None
            if through & self.regions and iv2.is_bounded():
                # a consumer's region alone, not intersected with its loop
                # range: that would double the bounds of a long chain per stage
                iv = iv2
            elif through:
                iv = Interval(iv2.min if iv.min is None else
                              (iv.min if iv2.min is None else E.Max(iv.min, iv2.min)),
                              iv2.max if iv.max is None else
                              (iv.max if iv2.max is None else E.Min(iv.max, iv2.max)))
        if self.conds:
            iv = self._through_guards(a, iv)
        if not iv.is_bounded():
            who = self.user_names.get(self.consumer, self.consumer)
            me = self.user_names.get(self.name, self.name)
            if self.kind == "image":
                raise CompileError(f"Buffer {me} may be accessed in an unbounded way in "
                                   f"dimension {dim} (by Func {who}); clamp the index or use a "
                                   f"BoundaryConditions function")
            if writes and self.consumer == self.name:
                raise CompileError(f"An update of Func {me} writes to an unbounded region in "
                                   f"dimension {dim}; clamp the left-hand side index")
            raise CompileError(f"Func {who} calls function {me} in an unbounded way in "
                               f"dimension {dim}; clamp the index (data-dependent indices into a "
                               f"computed Func need explicit bounds)")
        return Interval(simplify(iv.min), simplify(iv.max))

    def _through_guards(self, a, iv):
        """Bound `a` again with each guarded expression it contains as one
        variable, narrowed by its guard: under `if (u*8 + ryi < 100)` (an
        RVar split by rfactor) `u*8 + ryi` is at most 99, a fact interval
        arithmetic over u and ryi apart cannot see."""
        full = self.full(a)
        mapping, scope = {}, dict(self.scope)
        for c in self.conds:
            for g, kind, limit in _guarded_terms(self.full(c)):
                if isinstance(g, E.Variable) or not _contains(full, g):
                    continue
                name = f"guarded.{len(mapping)}"
                giv, liv = bounds_of_expr(g, self.scope), bounds_of_expr(limit, self.scope)
                lo, hi = giv.min, giv.max
                if kind == "max" and liv.max is not None:
                    hi = liv.max if hi is None else E.Min(hi, liv.max)
                if kind == "min" and liv.min is not None:
                    lo = liv.min if lo is None else E.Max(lo, liv.min)
                mapping[g] = E.Variable(g.type, name)
                scope[name] = Interval(lo, hi)
        if not mapping:
            return iv
        iv2 = bounds_of_expr(_replace_terms(full, mapping), scope)
        return Interval(iv2.min if iv.min is None else
                        (iv.min if iv2.min is None else E.Max(iv.min, iv2.min)),
                        iv2.max if iv.max is None else
                        (iv.max if iv2.max is None else E.Min(iv.max, iv2.max)))

    def _exact(self, a):
        """isl bounds for the part of `a` affine in constant-bounded loops."""
        if not self.loops:
            return None
        names = [n for n, _, _ in self.loops]
        full = _expand(a, self.lets, set(names))
        # simplified (cancelling correlated terms) unless huge: that is slow
        full = simplify(full) if _size(full) <= CORRELATE_MAX_SIZE else full
        split = split_rvar_part(full, names)
        if split is None:
            return None
        part, rest = split
        conds = [_expand(c, self.lets, set(names)) for c in self.conds]
        dom = AffineDomain(names, [(lo, ext) for _, lo, ext in self.loops], conds)
        r = exact_rvar_range(part, dom)
        if r is None:
            return None
        iv = bounds_of_expr(rest, self.scope)
        if not iv.is_bounded():
            return None
        lo, hi = r
        if lo > hi:          # nothing in the domain
            return Interval(_c(1), _c(0))
        return Interval(E.Add(iv.min, _c(lo)), E.Add(iv.max, _c(hi)))


def _expand(e, lets, loop_names, depth=0):
    """Substitute let-bound names (not loop variables) to see through splits."""
    if depth > 64:
        from ..errors import InternalError
        raise InternalError("bounds inference: let definitions nest too deeply (a cycle?)", e)
    from ..ir.mutator import free_variables
    names = {n: lets[n] for n in free_variables(e) if n in lets and n not in loop_names}
    if not names:
        return expand_lets(e)
    return _expand(substitute(names, e), lets, loop_names, depth + 1)


def _guarded_terms(cond):
    """(expr, kind, limit) for each conjunct `expr < limit` (kind "max") or
    `expr > limit` (kind "min"), and the <=, >= forms, of an if-condition."""
    if isinstance(cond, E.And):
        return _guarded_terms(cond.a) + _guarded_terms(cond.b)
    if not isinstance(cond, (E.LT, E.LE, E.GT, E.GE)) or cond.a.type != i32:
        return []
    off = {E.LT: -1, E.LE: 0, E.GT: 1, E.GE: 0}[type(cond)]
    limit = cond.b if off == 0 else E.Add(cond.b, _c(off))
    return [(cond.a, "max" if isinstance(cond, (E.LT, E.LE)) else "min", limit)]


def _contains(e, sub) -> bool:
    found = []

    class V(IRMutator):
        def generic(self, n):
            if not found and n == sub:
                found.append(n)
                return n
            return super().generic(n)
    V().mutate(e)
    return bool(found)


def _replace_terms(e, mapping):
    class M(IRMutator):
        def generic(self, n):
            if isinstance(n, E.Expr) and n in mapping:
                return mapping[n]
            return super().generic(n)
    return M().mutate(e)


def _narrow(cond, scope):
    """Tighten variable intervals in `scope` with a guard like `v < e`."""
    if isinstance(cond, E.And):
        _narrow(cond.a, scope)
        _narrow(cond.b, scope)
        return
    if not isinstance(cond, (E.LT, E.LE, E.GT, E.GE)):
        return
    a, b = cond.a, cond.b
    if isinstance(a, E.Variable) and a.name in scope and a.type == i32:
        cur = scope[a.name]
        rb = bounds_of_expr(b, scope)
        if isinstance(cond, (E.LT, E.LE)) and rb.max is not None:
            hi = rb.max if isinstance(cond, E.LE) else E.Sub(rb.max, _c(1))
            scope[a.name] = Interval(cur.min, hi if cur.max is None else E.Min(cur.max, hi))
        elif isinstance(cond, (E.GT, E.GE)) and rb.min is not None:
            lo = rb.min if isinstance(cond, E.GE) else E.Add(rb.min, _c(1))
            scope[a.name] = Interval(lo if cur.min is None else E.Max(cur.min, lo), cur.max)


def box_touched(stmt, name, dims, user_names, calls=True, provides=False, kind="func",
                scope=None, required=False):
    """The box of `name` that `stmt` touches; `required`: only what the
    consumers' own regions need (BoxFinder._required_part), the region to
    compute, not to allocate."""
    bf = BoxFinder(name, dims, user_names, calls, provides, kind, required)
    if scope:
        bf.scope.update(scope)
    bf.visit(stmt)
    return bf.box


class _Infer(IRMutator):
    def __init__(self, env, user_names):
        self.env, self.user_names = env, user_names

    def visit_ProducerConsumer(self, pc):
        # Inner producers' lets may refer to lets defined after them (by
        # name); put each loop body's lets in dependency order before walking.
        produce = hoist_region_lets(self.mutate(pc.produce))
        consume = hoist_region_lets(self.mutate(pc.consume))
        f = self.env[pc.name]
        box = box_touched(consume, f.name, f.dimensions(), self.user_names, required=True)
        req = [iv if iv is not None else Interval(_c(0), _c(-1)) for iv in box.dims]
        lets = stage_region_lets(f, req, produce, self.user_names)
        body = S.ProducerConsumer(pc.name, produce, consume)
        return wrap_region_lets(lets, body)

    def visit_Realize(self, r):
        body = hoist_region_lets(self.mutate(r.body))
        f = self.env[r.name]
        box = box_touched(body, f.name, f.dimensions(), self.user_names, calls=True,
                          provides=True)
        lets, bounds = [], []
        for i, iv in enumerate(box.dims):
            iv = iv if iv is not None else Interval(_c(0), _c(-1))
            lo, hi = f"{f.name}.alloc.{i}.min", f"{f.name}.alloc.{i}.max"
            lets += [(lo, simplify(iv.min)), (hi, simplify(iv.max))]
            # The extent from the expressions themselves: correlated terms
            # cancel, so tile-sized storage gets a constant size.
            bounds.append((_v(lo), simplify(E.Add(E.Sub(iv.max, iv.min), _c(1)))))
        out = S.Realize(r.name, r.types, tuple(bounds), body)
        for name, value in reversed(lets):
            out = S.LetStmt(name, value, out)
        return out


def wrap_region_lets(lets, body):
    for name, value in reversed(lets):
        if name == "__asserts__":
            body = S.block(*value, body)
        else:
            body = S.LetStmt(name, value, body)
    return body


def stage_region_lets(f, required, produce, user_names) -> list:
    """Lets for each stage's region: consumers' needs plus what later
    stages of f read of f itself (stages are processed last to first)."""
    stages = list(produce.stmts) if isinstance(produce, S.Block) and \
        len(produce.stmts) == len(f.definitions) else [produce]
    req = list(required)
    lets = []
    per_stage = []
    asserts = []
    sched = f.schedule
    if sched.bounds or sched.align or getattr(sched, "folds", None):
        req, asserts = _apply_bounds(f, req)
    for k in range(len(f.definitions) - 1, -1, -1):
        d = f.definitions[k]
        pure = pure_vars_of(f, d)
        names = []
        for i, var in enumerate(f.pure_args):
            if var in pure:
                base = stage_var(f.name, k, var)
                names.append((base + ".min", simplify(req[i].min)))
                names.append((base + ".max", simplify(req[i].max)))
        per_stage.append(names)
        if k > 0 and len(stages) == len(f.definitions):
            reads = box_touched(stages[k], f.name, f.dimensions(), user_names)
            for i, iv in enumerate(reads.dims):
                if iv is not None:
                    req[i] = union(req[i], iv)
    # later stages' regions are defined first: earlier stages' reads use them
    for names in per_stage:
        lets += names
    if asserts:
        lets.append(("__asserts__", asserts))
    return lets


def _apply_bounds(f, req):
    """f.bound / bound_extent / align_bounds: the region to compute, and
    assertions that it covers what the consumers need."""
    from ..lang.expr import cast_node, to_node
    out, asserts = list(req), []
    for i, var in enumerate(f.pure_args):
        iv = req[i]
        if var in f.schedule.align:
            mod, rem = f.schedule.align[var]
            lo = E.Add(E.Mul(E.Div(E.Sub(iv.min, _c(rem)), _c(mod)), _c(mod)), _c(rem))
            ext = E.Mul(E.Div(E.Add(E.Sub(iv.max, lo), _c(mod)), _c(mod)), _c(mod))
            iv = Interval(simplify(lo), simplify(E.Sub(E.Add(lo, ext), _c(1))))
        if var in f.schedule.bounds:
            bmin, bext = f.schedule.bounds[var]
            bext = cast_node(i32, to_node(bext))
            bmin = cast_node(i32, to_node(bmin)) if bmin is not None else iv.min
            bmax = simplify(E.Sub(E.Add(bmin, bext), _c(1)))
            need = iv
            asserts.append(S.AssertStmt(
                E.Or(E.LT(need.max, need.min), E.And(E.LE(bmin, need.min), E.LE(need.max, bmax))),
                (f"Func {f.user_name} is bounded to [", bmin, ", ", bmax, f"] in dimension "
                 f"{var}, but [", need.min, ", ", need.max, "] is needed"), -5))
            iv = Interval(simplify(bmin), bmax)
        if var in getattr(f.schedule, "folds", {}):
            fold = f.schedule.folds[var]
            live = simplify(E.Add(E.Sub(iv.max, iv.min), _c(1)))
            asserts.append(S.AssertStmt(
                E.LE(live, _c(fold)),
                (f"Func {f.user_name} is folded to {fold} in dimension {var}, but ", live,
                 " of its values there are needed at once; use a larger fold_storage "
                 "extent, or compute it further in"), -5))
        out[i] = iv
    return out, asserts


def infer_bounds(stmt, env, outputs, user_names) -> BoundsResult:
    stmt = _Infer(env, user_names).mutate(stmt)
    lets = []
    for f in outputs:
        req = [Interval(_v(f"{f.name}.min.{i}"),
                        E.Sub(E.Add(_v(f"{f.name}.min.{i}"), _v(f"{f.name}.extent.{i}")), _c(1)))
               for i in range(f.dimensions())]
        produce = _find_output_produce(stmt, f)
        lets += stage_region_lets(f, req, produce, user_names)
    return BoundsResult(stmt, lets)


def _find_output_produce(stmt, f):
    """The Block of an output's stages (for its self-reads), best effort."""
    if len(f.definitions) == 1:
        return S.Evaluate(_c(0))
    from ..ir.mutator import IRVisitor
    stages = [None] * len(f.definitions)

    class V(IRVisitor):
        def visit_For(self, s):
            for k in range(len(f.definitions)):
                if s.name.startswith(f"{f.name}.s{k}.") and stages[k] is None:
                    stages[k] = s
                    return
            self.generic(s)
    V().visit(stmt)
    if any(s is None for s in stages):
        return S.Evaluate(_c(0))
    return S.Block(tuple(stages))


def hoist_region_lets(stmt):
    """Move every let that is outside all loops of a loop body (or of the
    whole pipeline) to the top of that body, ordered so each comes after the
    lets it uses; those of a serial loop's body that do not vary with the
    loop go before it. Bounds inference refers to such lets by name (see
    BoxFinder.s_LetStmt), so a producer's region may use a consumer's region
    symbol even when the consumer's let came later in the nest."""
    return _Hoist().mutate(stmt)


class _Hoist(IRMutator):
    def mutate(self, node):
        if self.top:
            self.top = False
            return self.mutate_body(node)
        return super().mutate(node)

    def __init__(self):
        self.top = True

    def mutate_body(self, body):
        lets = []
        rest = self.mutate(_strip_lets(body, lets))
        return _sorted_lets(lets, rest)

    def visit_For(self, s):
        body = self.mutate_body(s.body)
        if s.kind != S.ForKind.SERIAL:
            # (not out of a parallel loop: between two nested parallel loops
            # the lets would stop OpenMP collapsing them)
            return S.For(s.name, s.min, s.extent, s.kind, body)
        # Lets at the top of the body that do not vary with the loop (a
        # producer's region in a dimension the loop does not move, e.g. the
        # x range of every level of a pyramid computed per output row) go
        # before the loop: to bounds inference of storage outside the loop
        # they are then one symbol each instead of an expansion, which
        # doubles with every level of a compute_at chain.
        lifted, body = split_invariant_lets(body, {s.name}, calls_in)
        out = S.For(s.name, s.min, s.extent, s.kind, body)
        for n, v in reversed(lifted):
            out = S.LetStmt(n, v, out)
        return out


def _strip_lets(s, out):
    """Remove lets not inside loops (collecting them in `out`), keep the rest."""
    if isinstance(s, S.LetStmt):
        out.append((s.name, s.value))
        return _strip_lets(s.body, out)
    if isinstance(s, S.Block):
        return S.block(*[_strip_lets(x, out) for x in s.stmts])
    if isinstance(s, S.ProducerConsumer):
        return S.ProducerConsumer(s.name, _strip_lets(s.produce, out), _strip_lets(s.consume, out))
    if isinstance(s, S.Realize):
        return S.Realize(s.name, s.types, s.bounds, _strip_lets(s.body, out))
    return s


def _sorted_lets(lets, body):
    from ..ir.mutator import free_variables
    names = {n for n, _ in lets}
    deps = {n: free_variables(v) & names for n, v in lets}
    done, order = set(), []

    def visit(n, stack=()):
        if n in done:
            return
        if n in stack:
            from ..errors import InternalError
            raise InternalError(f"cyclic lets while hoisting: {n}")
        for d in sorted(deps[n]):
            visit(d, stack + (n,))
        done.add(n)
        order.append(n)
    value = dict(lets)
    for n, _ in lets:
        visit(n)
    for n in reversed(order):
        body = S.LetStmt(n, value[n], body)
    return body


def peel_lets(stmt):
    """(the leading lets as (name, value) pairs, the statement after them)."""
    lets = []
    while isinstance(stmt, S.LetStmt):
        lets.append((stmt.name, stmt.value))
        stmt = stmt.body
    return lets, stmt
