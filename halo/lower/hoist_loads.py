"""Loads that do not change inside a loop, read once before it.

The C compiler hoists loop-invariant arithmetic itself, but not a load:
the loop stores through other pointers, and C cannot tell that they never
point into the buffer loaded from (Halide tells LLVM so with per-buffer
alias metadata). In halo's IR each buffer has its own name, so the proof is
local: a load of a buffer that the loop neither writes nor allocates, at an
index that uses nothing bound inside the loop, reads the same value in
every iteration. The largest such subexpressions (a load and what is
computed from it: bilateral_grid's clamped pixel and its histogram bin, in
a loop over the two channels it updates) become lets before the loop.

Where a hoisted load runs must be where it ran before, or a read the loop
never made could leave the buffer's bounds: only loops of a constant
positive extent are hoisted from, and only expressions every iteration
evaluates (not inside an `if`, a `select` arm, the right side of `&&`/`||`,
or an inner loop that may not run). GPU loops are left alone, and so are
vectorized ones (the vector printer reads a uniform value once).
"""
from __future__ import annotations

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRMutator, IRVisitor, bound_names, expand_lets
from .cse import ReplaceExprs, expr_children

# intrinsics with an effect: never moved
_EFFECTS = {"print", "print_when", "prefetch", "memo_commit", "memo_hash_buffer"}


def hoist_invariant_loads(stmt: S.Stmt) -> S.Stmt:
    return _Hoist().mutate(stmt)


def _runs(extent) -> bool:
    return isinstance(extent, E.Const) and extent.value > 0


class _Written(IRVisitor):
    """Buffers a statement stores to, allocates or frees."""

    def __init__(self):
        self.buffers = set()

    def visit_Store(self, s):
        self.buffers.add(s.buffer)
        self.generic(s)

    def visit_Allocate(self, s):
        self.buffers.add(s.name)
        self.generic(s)

    def visit_Free(self, s):
        self.buffers.add(s.name)


class _Candidates(IRVisitor):
    """The largest loop-invariant subexpressions with a load, in the
    positions every iteration evaluates, in first-seen order."""

    def __init__(self, bound, written):
        self.bound, self.written = bound, written
        self.found: dict = {}
        self.memo: dict = {}

    def info(self, e):
        """(has a load, could move out of the loop), bottom-up, memoized."""
        hit = self.memo.get(id(e))
        if hit is not None:
            return hit[1]
        if isinstance(e, E.Variable):
            r = (False, e.name not in self.bound)
        elif isinstance(e, E.Const):
            r = (False, True)
        elif isinstance(e, E.Let):
            r = (True, False)           # (its name is bound inside)
        else:
            kids = [self.info(c) for c in expr_children(e)]
            has = any(k[0] for k in kids)
            ok = all(k[1] for k in kids)
            if isinstance(e, E.Load):
                has, ok = True, ok and e.buffer not in self.written
            elif _has_effect(e):
                ok = False
            r = (has, ok)
        self.memo[id(e)] = (e, r)       # (e keeps its id alive)
        return r

    def expr(self, e):
        if e is None or isinstance(e, (E.Const, E.Variable)) or _has_effect(e):
            return
        has, ok = self.info(e)
        if not has:
            return                      # nothing to hoist below here
        if ok and e.type.lanes() == 1 and not e.type.is_handle():
            self.found.setdefault(e, None)
            return
        if isinstance(e, E.Select):
            self.expr(e.condition)
            return
        if isinstance(e, (E.And, E.Or)):
            self.expr(e.a)
            return
        for child in expr_children(e):
            self.expr(child)

    def visit_Store(self, s):
        self.expr(s.index)
        self.expr(s.value)

    def visit_LetStmt(self, s):
        self.expr(s.value)
        self.visit(s.body)

    def visit_Evaluate(self, s):
        self.expr(s.value)

    def visit_AssertStmt(self, s):
        self.expr(s.condition)

    def visit_IfThenElse(self, s):
        self.expr(s.condition)

    def visit_For(self, s):
        self.expr(s.min)
        self.expr(s.extent)
        if _runs(s.extent) and not s.kind.is_gpu():
            self.visit(s.body)

    def visit_Allocate(self, s):
        self.expr(s.size)
        self.visit(s.body)

    def visit_Print(self, s):
        pass

    def visit_Atomic(self, s):
        pass                            # the printer matches its body textually


def _has_effect(e) -> bool:
    return isinstance(e, E.Call) and (e.call_type != E.CallType.INTRINSIC
                                      or e.name in _EFFECTS)


class _Replace(ReplaceExprs):
    def visit_Atomic(self, s):
        return s

    def visit_Call(self, e):
        # (a prefetch names its address as a load, which must stay a load)
        return e if _has_effect(e) else self.generic(e)


class _Hoist(IRMutator):
    def __init__(self):
        self.k = 0

    def visit_For(self, s):
        if s.kind.is_gpu():
            return s
        body = self.mutate(s.body)
        s = S.For(s.name, s.min, s.extent, s.kind, body) if body is not s.body else s
        if not _runs(s.extent) or s.kind == S.ForKind.VECTORIZED:
            return s                    # (the vector printer reads uniform values once)
        # the same load may sit under lets of different names (each inlined
        # call binds its own); CSE re-shares what expanding copies
        body = expand_lets(body)
        w = _Written()
        w.visit(body)
        c = _Candidates(bound_names(body) | {s.name}, w.buffers)
        c.visit(body)
        if not c.found:
            return s
        # parts of a hoisted value that the body also reads elsewhere (the
        # pixel in a `select` arm, its bin in the index) move out with it
        parts: dict = {}
        for e in c.found:
            _load_parts(e, c, parts)
        rest = _Replace({e: E.Variable(e.type, "\0hoisted") for e in c.found}).mutate(body)
        seen = _largest_in(rest, parts)
        hoisted = [e for e in parts if e in seen and e not in c.found] + list(c.found)
        names, lets = {}, []
        for e in hoisted:               # smaller first: later values name them
            self.k += 1
            name = f"{s.name}.invariant{self.k}"
            lets.append((name, _Replace(names).mutate_children(e)))
            names[e] = E.Variable(e.type, name)
        out = S.For(s.name, s.min, s.extent, s.kind, _Replace(names).mutate(body))
        for name, e in reversed(lets):
            out = S.LetStmt(name, e, out)
        return out


def _load_parts(e, c, out: dict):
    """Scalar subexpressions of `e` with a load, children before parents."""
    if isinstance(e, (E.Const, E.Variable)) or not c.info(e)[0]:
        return
    for child in expr_children(e):
        _load_parts(child, c, out)
    if e.type.lanes() == 1:
        out.setdefault(e, None)


def _largest_in(stmt, parts) -> set:
    """The members of `parts` that occur in stmt outside larger members."""
    found = set()

    class V(IRVisitor):
        def visit(self, node):
            if isinstance(node, E.Expr) and node in parts:
                found.add(node)
                return
            super().visit(node)
    V().visit(stmt)
    return found

