"""Statement (loop-nest) nodes of halo's IR: immutable values.

Before storage flattening a pipeline is made of `Realize` (a Func's storage
over a symbolic box) and `Provide` (a multi-dimensional write to a Func).
Flattening turns them into `Allocate` and `Store` with flat indices, which is
all the code generators see besides loops, lets, ifs and assertions.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Tuple

from .expr import Expr
from .types import Type


class Stmt:
    __slots__ = ()


def _node(cls):
    return dataclass(frozen=True, slots=True)(cls)


class ForKind(enum.Enum):
    SERIAL = "for"
    PARALLEL = "parallel"
    VECTORIZED = "vectorized"
    UNROLLED = "unrolled"
    GPU_BLOCK = "gpu_block"     # one GPU block (work-group) per iteration
    GPU_THREAD = "gpu_thread"   # one GPU thread (work-item) per iteration
    GPU_LANE = "gpu_lane"       # a thread dimension mapped to SIMD lanes (warp)

    def is_gpu(self) -> bool:
        return self in (ForKind.GPU_BLOCK, ForKind.GPU_THREAD, ForKind.GPU_LANE)


@_node
class For(Stmt):
    """`for name in [min, min + extent)`; `name` is unique in the pipeline."""
    name: str
    min: Expr
    extent: Expr
    kind: ForKind
    body: Stmt


@_node
class LetStmt(Stmt):
    name: str
    value: Expr
    body: Stmt


@_node
class Block(Stmt):
    stmts: Tuple[Stmt, ...]


@_node
class IfThenElse(Stmt):
    condition: Expr
    then_case: Stmt
    else_case: Stmt | None = None


@_node
class AssertStmt(Stmt):
    """Return error `code` with `message` when `condition` is false.

    `message` is a tuple of str literals and integer Exprs, printed in order.
    """
    condition: Expr
    message: Tuple[object, ...]
    code: int = -1


@_node
class Evaluate(Stmt):
    value: Expr


@_node
class Provide(Stmt):
    """Write Tuple `values` of Func `name` at coordinates `args`."""
    name: str
    values: Tuple[Expr, ...]
    args: Tuple[Expr, ...]


@_node
class Atomic(Stmt):
    """Its body's read-modify-write of one element happens atomically."""
    body: Stmt


@_node
class ProducerConsumer(Stmt):
    """Compute Func `name` (`produce`), then run the code that reads it."""
    name: str
    produce: Stmt
    consume: Stmt


@_node
class Realize(Stmt):
    """Storage for Func `name` over `bounds` ((min, extent) per dim) in body."""
    name: str
    types: Tuple[Type, ...]
    bounds: Tuple[Tuple[Expr, Expr], ...]
    body: Stmt


@_node
class Allocate(Stmt):
    """Flat heap storage of `size` elements of `type` named `name`.

    With a `memo_key` (int64 Exprs) the storage comes from the pipeline's
    memoization cache: `<name>.memo.hit` is true in `body` when the cache
    already held the values for that key (memoize())."""
    name: str
    type: Type
    size: Expr
    body: Stmt
    memo_key: Tuple[Expr, ...] = ()


@_node
class Free(Stmt):
    """Release the heap storage of the enclosing `Allocate` named `name`
    before its scope ends (after the last use; lower/early_free.py)."""
    name: str


@_node
class Store(Stmt):
    buffer: str
    value: Expr
    index: Expr


@_node
class Print(Stmt):
    """Print `args` (str literals and Exprs), separated by spaces (hl.print)."""
    args: Tuple[object, ...]


def block(*stmts: Stmt | None) -> Stmt:
    """A Block of the non-None statements, flattened; one statement alone."""
    flat = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Block):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    if len(flat) == 1:
        return flat[0]
    return Block(tuple(flat))
