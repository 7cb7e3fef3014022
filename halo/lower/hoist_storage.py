"""Move allocations of `hoist_storage` Funcs out to the hoist level.

`f.compute_at(g, xo).hoist_storage(g, yo)` keeps f's region and indexing as
they were at its store level (one tile, re-based every iteration) but
allocates the memory once per iteration of `yo` instead of once per tile:
the size is the largest tile over every loop in between. That bound comes
from the size expression with the lets in between substituted and simplified
(so correlated terms like `8*xo + 9 - 8*xo` cancel), then interval
arithmetic over the loop ranges. Runs after storage flattening (it moves
`Allocate` nodes) and before the simplifier.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, free_variables, substitute
from ..ir.simplify import simplify
from ..ir.types import i64
from .bounds import Interval, bounds_of_expr


def hoist_storage(stmt, env, loop_name_of):
    """`loop_name_of(level, f)` names the loop of a LoopLevel (as in lowering)."""
    for f in env.values():
        level = getattr(f.schedule, "hoist_level", None)
        if level is None:
            continue
        buffers = {f.name} | {f"{f.name}.{j}" for j in range(1, len(f.output_types))}
        loop = None if level.is_root() else loop_name_of(level, f)
        h = _Hoist(f, buffers, loop)
        stmt = h.run(stmt)
        if not h.found_level:
            raise CompileError(f"Func {f.user_name}: hoist_storage() at {_where(env, level)}, "
                               f"but that loop does not exist in the loop nest")
        if h.missing:
            raise CompileError(f"Func {f.user_name}: hoist_storage() at {_where(env, level)} "
                               f"must enclose its store level (store_at/compute_at); "
                               f"its storage is allocated outside that loop")
    return stmt


def _where(env, level):
    if level.is_root():
        return "the root"
    consumer = env.get(level.func)
    return f"{consumer.user_name if consumer else level.func}.{level.var}"


class _Hoist(IRMutator):
    def __init__(self, f, buffers, loop):
        self.f, self.buffers, self.loop = f, buffers, loop
        self.active = False
        self.found_level = False
        self.missing = False
        self.path = []        # ("loop", For) | ("let", name, value), from the hoist level in
        self.sizes = {}       # buffer -> (type, bounded size)

    def run(self, stmt):
        if self.loop is None:
            self.found_level = True
            return self._hoist_in(stmt)
        out = self.mutate(stmt)
        if self.found_level and not self.sizes:
            self.missing = _allocates(stmt, self.buffers)
        return out

    def _hoist_in(self, body):
        saved = (self.active, self.path, self.sizes)
        self.active, self.path, self.sizes = True, [], {}
        body = self.mutate(body)
        sizes = self.sizes
        self.active, self.path, self.sizes = saved
        for buf, (t, size) in sorted(sizes.items(), reverse=True):
            body = S.Allocate(buf, t, size, body)
        self.sizes.update({k: None for k in sizes})   # remember: found
        return body

    def visit_For(self, s):
        if not self.active and s.name == self.loop:
            self.found_level = True
            return S.For(s.name, s.min, s.extent, s.kind, self._hoist_in(s.body))
        if not self.active:
            return self.generic(s)
        self.path.append(("loop", s))
        body = self.mutate(s.body)
        self.path.pop()
        return s if body is s.body else S.For(s.name, s.min, s.extent, s.kind, body)

    def visit_LetStmt(self, s):
        if not self.active:
            return self.generic(s)
        self.path.append(("let", s.name, s.value))
        body = self.mutate(s.body)
        self.path.pop()
        return s if body is s.body else S.LetStmt(s.name, s.value, body)

    def visit_Allocate(self, s):
        if not self.active or s.name not in self.buffers:
            return self.generic(s)
        for entry in self.path:
            if entry[0] == "loop" and entry[1].kind != S.ForKind.SERIAL \
                    and entry[1].kind != S.ForKind.UNROLLED:
                raise CompileError(
                    f"Func {self.f.user_name}: hoist_storage() would share one allocation "
                    f"among the iterations of the {entry[1].kind.name.lower()} loop "
                    f"{entry[1].name}; hoist it to a level inside that loop")
        bound = self._upper_bound(s.size)
        prev = self.sizes.get(s.name)
        if prev is not None:
            bound = simplify(E.Max(prev[1], bound))
        self.sizes[s.name] = (s.type, bound)
        return self.mutate(s.body)

    def _upper_bound(self, size):
        """The largest `size` over every loop iteration and let on the path."""
        defined = set()
        scope, lets = {}, {}
        for entry in self.path:
            if entry[0] == "let":
                _, name, value = entry
                lets[name] = _expand(value, lets)
                defined.add(name)
            else:
                loop = entry[1]
                lo = simplify(_expand(loop.min, lets))
                hi = simplify(_expand(E.Sub(E.Add(loop.min, loop.extent), E.Const(loop.min.type, 1)), lets))
                lo_b, hi_b = bounds_of_expr(lo, scope), bounds_of_expr(hi, scope)
                scope[loop.name] = Interval(lo_b.min, hi_b.max)
                defined.add(loop.name)
        expr = simplify(_expand(size, lets))
        iv = bounds_of_expr(expr, scope)
        hi = simplify(iv.max) if iv.max is not None else None
        if hi is None or free_variables(hi) & defined:
            raise CompileError(
                f"Func {self.f.user_name}: hoist_storage() cannot bound the size of its "
                f"storage over the loops it is hoisted out of "
                f"({', '.join(e[1].name for e in self.path if e[0] == 'loop')}); "
                f"size {size}. Give its dimensions constant extents with bound_extent() "
                f"or hoist to a level further in")
        return simplify(E.Max(E.Cast(i64, hi), E.Const(i64, 1)))


def _expand(e, lets):
    """Substitute the lets in `lets` (already expanded themselves) into e."""
    names = free_variables(e) & set(lets)
    if not names:
        return e
    return substitute({n: lets[n] for n in names}, e)


def _allocates(stmt, buffers) -> bool:
    from ..ir.mutator import IRVisitor
    hit = [False]

    class V(IRVisitor):
        def visit_Allocate(self, s):
            if s.name in buffers:
                hit[0] = True
            self.generic(s)
    V().visit(stmt)
    return hit[0]
