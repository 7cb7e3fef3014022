"""The largest value of a per-block quantity over a GPU launch's blocks.

A producer computed per GPU block (in shared memory) or per thread needs a
constant allocation size. Usually the block's position cancels out of the
size of its region when simplified; when it does not (a tile's start seen
through `x / 2` and `2 * x`, or clamped by `min()` at the image's edge), but
the grid of blocks is a constant, `largest_over_blocks` evaluates the size at
every block position and takes the largest: the constant bound Halide finds
symbolically, found here by exhaustion (with numpy, like the interpreter).
"""
from __future__ import annotations

import numpy as np

from ..interp.evaluate import ExprEvaluator
from ..ir import expr as E
from ..ir.mutator import IRVisitor

MAX_POINTS = 1 << 20          # block positions evaluated at once, at most


def largest_over_blocks(e: E.Expr, blocks: dict) -> int | None:
    """`blocks`: block loop name -> (min, extent), ints. The largest value of
    the integer Expr `e`, whose free variables must be block loop names, over
    the grid; None when `e` has other free variables or the grid is too big.

    A product of factors over different blocks (a size per dimension) is
    bounded factor by factor when no factor can be negative."""
    groups = []                                   # [(variable names, [factors])]
    for f in _factors(e):
        names = _free_variables(f)
        if not names <= blocks.keys():
            return None
        overlapping = [g for g in groups if g[0] & names]
        for g in overlapping:
            groups.remove(g)
            names |= g[0]
        groups.append((names, [f] + [x for g in overlapping for x in g[1]]))
    ranges = [_evaluate(fs, sorted(names), blocks) for names, fs in groups]
    if any(r is None for r in ranges):
        return None
    if len(ranges) > 1 and any(lo < 0 for lo, _ in ranges):
        return None
    product = 1
    for _, hi in ranges:
        product *= hi
    return product


def _factors(e):
    """The factors of a product (through casts that widen an integer)."""
    if isinstance(e, E.Mul):
        return _factors(e.a) + _factors(e.b)
    if isinstance(e, E.Cast) and e.type.is_int() and e.value.type.is_int() \
            and e.type.bits() >= e.value.type.bits() and isinstance(e.value, E.Mul):
        return [E.Cast(e.type, f) for f in _factors(e.value)]
    return [e]


def _free_variables(e) -> set:
    """Variables not bound by a Let inside `e` (CSE names are unique)."""
    names, bound = set(), set()

    class V(IRVisitor):
        def visit_Variable(self, v):
            names.add(v.name)

        def visit_Let(self, let):
            bound.add(let.name)
            self.generic(let)
    V().visit(e)
    return names - bound


def _evaluate(factors, names, blocks):
    """(min, max) of the product of `factors` over the blocks `names`."""
    extents = [blocks[n][1] for n in names]
    if int(np.prod(extents, dtype=np.int64)) > MAX_POINTS or min(extents, default=1) <= 0:
        return None
    axes = [np.arange(blocks[n][0], blocks[n][0] + blocks[n][1], dtype=np.int32)
            for n in names]
    grid = np.meshgrid(*axes, indexing="ij") if axes else []
    ev = _MemoEvaluator()
    env = dict(zip(names, grid))
    value = np.ones((), dtype=np.int64)
    for f in factors:
        value = value * ev.eval(f, env).astype(np.int64)
    return int(value.min()), int(value.max())


class _MemoEvaluator(ExprEvaluator):
    """Evaluates each distinct subexpression once per environment (a Let's
    body has its own): sizes whose lets were substituted repeat the same
    subtrees many times."""

    def __init__(self):
        super().__init__(None)
        self.tables = {}            # id(env) -> (env, {node: value})

    def eval(self, n, env):
        table = self.tables.get(id(env))
        if table is None or table[0] is not env:
            table = self.tables[id(env)] = (env, {})
        r = table[1].get(n)
        if r is None:
            r = table[1][n] = super().eval(n, env)
        return r
