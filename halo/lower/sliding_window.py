"""Sliding window: reuse values computed by earlier iterations of a loop.

When a Func is stored outside the loop it is computed in (`store_root()` or
`store_at` with `compute_at` further in), values computed in one iteration
are still there in the next. If the region needed grows monotonically with
that serial loop in exactly one dimension, each iteration after the first
only computes the new part: its min becomes the previous iteration's max
plus one. Accepts the nest after bounds inference (region lets directly
inside the compute loop); produces the same nest with those lets changed.

Then, as Halide's storage folding does, the slid dimension's storage is
folded to a power of two at least the (constant) window: a 5-row stencil
keeps 8 rows instead of a whole strip, and stays in cache. The folds are
returned for storage flattening (`{func: {dim: extent}}`).
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, free_variables, substitute
from ..ir.simplify import simplify, _linear
from ..ir.types import i32


def slide_windows(stmt, env, levels, store_levels, loop_name_of, order=()):
    """(the nest with windows slid, {func: {dim: fold extent}}).

    Producers slide before their consumers (`order`: the realization order):
    a producer's region is written in terms of its consumer's region lets,
    and a consumer slid first would hide the producer's monotonic growth
    behind its select (a chain of stencils would slide only its last stage)."""
    folds = {}
    names = [n for n in order if n in levels] + [n for n in levels if n not in order]
    for name in names:
        level = levels[name]
        f = env.get(name)
        store = store_levels.get(name)
        if f is None or level.is_root() or level.is_inlined() or store == level:
            continue
        if len(f.definitions) != 1:
            continue                 # updates would be applied twice
        loop = loop_name_of(level, f)
        slide = _Slide(f, loop)
        stmt = slide.mutate(stmt)
        if slide.folds and None not in slide.folds and len(set(slide.folds)) == 1 \
                and _may_fold(f, slide.folds[0][0]):
            v, extent = slide.folds[0]
            folds[name] = {v: extent}
    return stmt, folds


def _may_fold(f, v) -> bool:
    """No explicit storage layout, and no split or fuse of dimension v in the
    definition (a ShiftInwards tail recomputes values below the window,
    which a fold would write over live ones)."""
    s = f.schedule
    return not (getattr(s, "folds", None) or getattr(s, "storage_order", None)
                or getattr(s, "hoist_level", None) is not None or len(f.output_types) > 1
                or any(v in (sp.old, sp.outer, sp.inner)
                       for sp in f.definitions[0].schedule.splits))


def _c(v):
    return E.Const(i32, v)


class _Slide(IRMutator):
    def __init__(self, f, loop):
        self.f, self.loop = f, loop
        self.current = None          # the For node of the compute loop
        self.folds = []              # per compute loop: (dim, fold extent) or None
        self.in_storage = False      # inside f's Realize
        self.shared = False          # ... and inside a parallel loop there

    def visit_Realize(self, r):
        if r.name != self.f.name:
            return self.generic(r)
        saved = self.in_storage, self.shared
        self.in_storage, self.shared = True, False
        out = self.generic(r)
        self.in_storage, self.shared = saved
        return out

    def visit_For(self, s):
        if s.name != self.loop or s.kind not in (S.ForKind.SERIAL, S.ForKind.UNROLLED):
            if s.name == self.loop:
                self.folds.append(None)
            saved = self.shared
            self.shared = self.shared or s.kind not in (S.ForKind.SERIAL, S.ForKind.UNROLLED)
            out = self.generic(s)
            self.shared = saved
            return out
        body = self._rewrite_lets(s, s.body)
        if body is s.body:
            self.folds.append(None)
            return s
        return S.For(s.name, s.min, s.extent, s.kind, body)

    def _rewrite_lets(self, loop, body):
        """Find the region lets of f at the top of the loop body and slide one."""
        lets, inner = [], body
        while isinstance(inner, S.LetStmt):
            lets.append((inner.name, inner.value))
            inner = inner.body
        prefix = f"{self.f.name}.s0."
        # A region let may use other lets of the loop body (the consumer's
        # split coordinate, `y = yo*64 + yi`): see through them to the loop.
        defs = {}
        for n, v in lets:
            defs[n] = substitute(defs, v)
        region = {n: v for n, v in defs.items() if n.startswith(prefix)}
        L = E.Variable(i32, loop.name)
        moving = [v for v in self.f.pure_args
                  if loop.name in free_variables(region.get(f"{prefix}{v}.min", _c(0)))
                  or loop.name in free_variables(region.get(f"{prefix}{v}.max", _c(0)))]
        if len(moving) != 1:
            return body
        v = moving[0]
        if _rounds_up(self.f, v):
            # a RoundUp split computes past the region's max; slid, that
            # overhang would run past the storage, sized for unslid regions
            return body
        lo, hi = region.get(f"{prefix}{v}.min"), region.get(f"{prefix}{v}.max")
        if lo is None or hi is None:
            return body
        prev = {loop.name: E.Sub(L, _c(1))}
        if not (_nondecreasing(lo, substitute(prev, lo)) and
                _nondecreasing(hi, substitute(prev, hi))):
            return body
        new_lo = E.Select(E.GT(L, loop.min),
                          E.Max(lo, E.Add(substitute(prev, hi), _c(1))), lo)
        window = simplify(E.Add(E.Sub(hi, lo), _c(1)))
        if self.in_storage and not self.shared and isinstance(window, E.Const) \
                and window.value > 0:
            self.folds.append((v, 1 << (window.value - 1).bit_length()))
        else:
            self.folds.append(None)
        out = inner
        for n, value in reversed(lets):
            out = S.LetStmt(n, simplify(new_lo) if n == f"{prefix}{v}.min" else value, out)
        return out


def _rounds_up(f, v) -> bool:
    """Whether a RoundUp split of the pure definition applies to dimension v
    (or to a loop split or fused from it)."""
    from ..schedule.schedule import TailStrategy
    derived = {v}
    for sp in f.definitions[0].schedule.splits:
        if sp.kind == "fuse":
            if sp.inner in derived or sp.outer in derived:
                derived.add(sp.old)
        elif sp.old in derived:
            if sp.kind == "split" and sp.tail == TailStrategy.RoundUp:
                return True
            derived.update(n for n in (sp.outer, sp.inner) if n)
    return False


def _nondecreasing(now, before) -> bool:
    """now - before is a provably non-negative constant."""
    d = simplify(E.Sub(now, before))
    if isinstance(d, E.Const):
        return d.value >= 0
    terms, const = _linear(d)
    return not terms and const >= 0
