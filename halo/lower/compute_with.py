"""compute_with(): fuse the loops of two independent stages.

`f.compute_with(g, y)` runs f's stage inside g's stage's loops, from the
outermost loop down to `y` (the loops must carry the same names), after g's
body in each iteration. Checked first: both are computed at the same level,
neither reads the other (so any interleaving gives the same values), and no
other Func is computed between them in the realization order (which is
arranged to keep them adjacent when it can be).

The fusion itself runs after bounds inference, so both stages keep the
bounds they would have alone: each fused loop runs over the union of the two
ranges and each body is guarded by its own range (Halide's NoAlign; the
other LoopAlignStrategy values only shift which iterations share a loop
trip, which for independent stages changes speed, never values). Stages of
the two Funcs that come before the fused ones run before the fused loop;
those after, after it. Lets and Realizes found between the two producers
are lifted above both, which is safe because they are bounds and storage,
never values.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, IRVisitor
from ..ir.types import i32
from ..schedule.schedule import LoopLevel


def compute_with_pairs(env, levels):
    """[(child Function, child stage, parent LoopLevel)], each checked."""
    pairs = []
    for f in env.values():
        for k, d in enumerate(f.definitions):
            level = getattr(d.schedule, "compute_with", None)
            if level is None:
                continue
            who = f"{f.user_name}{'' if k == 0 else f'.update({k - 1})'}.compute_with()"
            g = env.get(level.func)
            if g is None:
                raise CompileError(f"{who}: the Func it fuses with is not in this pipeline")
            if level.stage >= len(g.definitions):
                raise CompileError(f"{who}: {g.user_name} has no stage {level.stage}")
            if levels[f.name].is_inlined() or levels[g.name].is_inlined():
                raise CompileError(f"{who}: {f.user_name} and {g.user_name} must both be "
                                   f"computed (not inlined) to fuse their loops")
            if levels[f.name] != levels[g.name]:
                raise CompileError(f"{who}: {f.user_name} and {g.user_name} are computed at "
                                   f"different levels; compute_with needs the same "
                                   f"compute_at/compute_root for both")
            if d.schedule.specializations or g.definitions[level.stage].schedule.specializations:
                raise CompileError(f"{who}: stages with specialize() cannot be fused")
            for a, b in ((f, g), (g, f)):
                if b.name in _depends_on(a, env):
                    raise CompileError(f"{who}: {a.user_name} reads {b.user_name}, so their "
                                       f"loops cannot be fused (compute_with needs independent "
                                       f"stages)")
            pairs.append((f, k, level))
    return pairs


def _depends_on(f, env):
    seen, todo = set(), [f.name]
    while todo:
        n = todo.pop()
        for c in env[n].calls():
            if c not in seen and c in env:
                seen.add(c)
                todo.append(c)
    return seen


def keep_adjacent(order, pairs, env):
    """Move each fused pair next to each other in the realization order when
    nothing between them forces the gap."""
    order = list(order)
    for f, _, level in pairs:
        if f.name not in order or level.func not in order:
            continue
        i, j = sorted((order.index(f.name), order.index(level.func)))
        between = order[i + 1:j]
        if not between:
            continue
        first, second = order[i], order[j]
        if not (_depends_on(env[second], env) & set(between)):
            order.remove(second)
            order.insert(i + 1, second)
        elif not any(first in _depends_on(env[b], env) for b in between):
            order.remove(first)
            order.insert(j - 1, first)
    return order


def fuse_compute_with(nest, env, pairs, loop_name_of):
    for f, k, level in pairs:
        g, kg = env[level.func], level.stage
        child = _loop_names(f, k, level.var, loop_name_of)
        parent = _loop_names(g, kg, level.var, loop_name_of)
        who = (f"{f.user_name}{'' if k == 0 else f'.update({k - 1})'}.compute_with("
               f"{g.user_name}, {level.var})")
        cvars = [v for v, _ in child]
        pvars = [v for v, _ in parent]
        if cvars != pvars:
            raise CompileError(f"{who}: the fused loops must have the same names from the "
                               f"outermost in; {f.user_name} has {', '.join(cvars)} and "
                               f"{g.user_name} has {', '.join(pvars)}")
        fuser = _Fuser(who, (g.name, [n for _, n in parent]), (f.name, [n for _, n in child]))
        nest = fuser.mutate(nest)
        if not fuser.done:
            raise CompileError(f"{who}: another Func is computed between {g.user_name} and "
                               f"{f.user_name}, or they are not computed in the same loop; "
                               f"halo fuses stages computed one right after the other")
    return nest


def _loop_names(f, k, var, loop_name_of):
    """(dimension, loop name) from the outermost loop of stage k down to var."""
    dims = [d.var for d in reversed(f.definitions[k].schedule.dims)]
    if var not in dims:
        raise CompileError(f"{f.user_name}.compute_with(): no loop '{var}' in stage {k}")
    dims = dims[:dims.index(var) + 1]
    return [(v, loop_name_of(LoopLevel("at", f.name, v, k), f)) for v in dims]


def _contains_loop(s, name):
    class V(IRVisitor):
        found = False

        def visit_For(self, x):
            if x.name == name:
                V.found = True
            self.generic(x)
    V.found = False
    V().visit(s)
    return V.found


def _peel(s):
    lets = []
    while isinstance(s, S.LetStmt):
        lets.append((s.name, s.value))
        s = s.body
    return lets, s


def _wrap(lets, s):
    for n, v in reversed(lets):
        s = S.LetStmt(n, v, s)
    return s


def _items(s):
    return list(s.stmts) if isinstance(s, S.Block) else [s]


def _is_stage(item, func):
    _, inner = _peel(item)
    return isinstance(inner, S.For) and inner.name.startswith(func + ".s")


class _Fuser(IRMutator):
    def __init__(self, who, parent, child):
        self.who = who
        self.parent, self.child = parent, child      # (func name, loop names)
        self.done = False

    def mutate(self, node):
        if self.done or not isinstance(node, S.Stmt):
            return node
        return super().mutate(node)

    def visit_Block(self, b):
        """Outputs: both stage nests are items of one block."""
        items = list(b.stmts)
        pi = [i for i, s in enumerate(items) if _contains_loop(s, self.parent[1][0])]
        ci = [i for i, s in enumerate(items) if _contains_loop(s, self.child[1][0])]
        if len(pi) == 1 and len(ci) == 1 and pi != ci:
            lo, hi = sorted((pi[0], ci[0]))
            span = items[lo:hi + 1]
            if all(_is_stage(s, self.parent[0]) or _is_stage(s, self.child[0]) for s in span):
                self.done = True
                return S.block(*items[:lo], self._merge(span), *items[hi + 1:])
        return self.generic(b)

    def visit_ProducerConsumer(self, pc):
        """Funcs at one level: PC(X, px, wrappers(PC(Y, py, rest)))."""
        names = {self.parent[0], self.child[0]}
        if pc.name in names:
            other = (names - {pc.name}).pop()
            wrappers, inner = [], pc.consume
            while isinstance(inner, (S.LetStmt, S.Realize)):
                wrappers.append(inner)
                inner = inner.body
            if isinstance(inner, S.ProducerConsumer) and inner.name == other:
                self.done = True
                merged = self._merge(_items(pc.produce) + _items(inner.produce))
                body = S.ProducerConsumer(pc.name, merged, S.ProducerConsumer(
                    inner.name, S.Evaluate(E.Const(i32, 0)), inner.consume))
                for w in reversed(wrappers):
                    body = (S.LetStmt(w.name, w.value, body) if isinstance(w, S.LetStmt)
                            else S.Realize(w.name, w.types, w.bounds, body))
                return body
        return self.generic(pc)

    def _merge(self, items):
        """Stages before the fused ones, the fused loop, the stages after."""
        lets = []
        flat = []
        for it in items:
            for s in _items(it):
                ls, inner = _peel(s)
                if isinstance(inner, S.Block):
                    lets += ls
                    flat += list(inner.stmts)
                else:
                    flat.append(s)
        p = next((i for i, s in enumerate(flat) if _contains_loop(s, self.parent[1][0])), None)
        c = next((i for i, s in enumerate(flat) if _contains_loop(s, self.child[1][0])), None)
        if p is None or c is None:
            raise CompileError(f"{self.who}: could not find the loops to fuse")
        before, after = [], []
        for i, s in enumerate(flat):
            if i in (p, c):
                continue
            if _is_stage(s, self.parent[0]):
                (before if i < p else after).append(s)
            elif _is_stage(s, self.child[0]):
                (before if i < c else after).append(s)
            else:
                raise CompileError(f"{self.who}: something other than their stages runs "
                                   f"between the two stages")
        fused = self._fuse(flat[p], flat[c], 0, [], [])
        return _wrap(lets, S.block(*before, fused, *after))

    def _fuse(self, a, b, level, conds_a, conds_b):
        a_lets, fa = _peel(a)
        b_lets, fb = _peel(b)
        pname, cname = self.parent[1][level], self.child[1][level]
        if not (isinstance(fa, S.For) and fa.name == pname and isinstance(fb, S.For)
                and fb.name == cname):
            raise CompileError(f"{self.who}: something is computed between the loops being "
                               f"fused (at loop {pname} or {cname}); fuse fewer loops")
        if fa.kind != fb.kind:
            raise CompileError(f"{self.who}: loop {cname} is {fb.kind.value} but {pname} is "
                               f"{fa.kind.value}; fused loops must be of the same kind")
        v = E.Variable(i32, fa.name)
        one = E.Const(i32, 1)
        a_max = E.Sub(E.Add(fa.min, fa.extent), one)
        b_max = E.Sub(E.Add(fb.min, fb.extent), one)
        lo = E.Min(fa.min, fb.min)
        extent = E.Add(E.Sub(E.Max(a_max, b_max), lo), one)
        conds_a = conds_a + [E.GE(v, fa.min), E.LE(v, a_max)]
        conds_b = conds_b + [E.GE(v, fb.min), E.LE(v, b_max)]
        b_body = S.LetStmt(fb.name, v, fb.body)        # the child's loop variable
        if level + 1 == len(self.parent[1]):
            body = S.block(S.IfThenElse(_all(conds_a), fa.body),
                           S.IfThenElse(_all(conds_b), b_body))
        else:
            inner_a_lets, inner_a = _peel(fa.body)
            inner_b_lets, inner_b = _peel(b_body)
            body = _wrap(inner_a_lets + inner_b_lets,
                         self._fuse(inner_a, inner_b, level + 1, conds_a, conds_b))
        return _wrap(a_lets + b_lets, S.For(fa.name, lo, extent, fa.kind, body))


def _all(conds):
    out = conds[0]
    for c in conds[1:]:
        out = E.And(out, c)
    return out
