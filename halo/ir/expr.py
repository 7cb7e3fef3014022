"""Expression nodes of halo's IR: immutable values with structural equality.

Semantics (stated once here; every backend and the interpreter follow them,
matching Halide, which is the oracle):

* Integer `Div` and `Mod` are Euclidean: the remainder is never negative and
  `a == (a / b) * b + a % b`. Division or modulo by zero gives 0.
* Arithmetic on unsigned types and on 8/16-bit signed types wraps at the
  type's width. Signed 32/64-bit overflow is undefined in Halide; halo's
  backends wrap (two's complement), so it is never C undefined behaviour.
* `Cast` from float to int truncates toward zero (out of range: undefined, as
  in Halide); int to narrower int wraps; `Reinterpret` keeps the bits.
* Float results are defined only while they stay finite: Halide compiles
  with fast-math, so once a NaN or an infinity appears nothing is promised.
  halo's backends differ there too: `Min`/`Max` with a NaN operand give
  `a < b ? a : b` in C (which operand comes out depends on the simplifier's
  operand order) and the NaN in the interpreter.
* Both operands of every binary node have the node's operand type: the front
  end (`halo.lang.coerce`) inserts casts before nodes are built, so the IR
  never relies on implicit promotion.
* `Select` has no short-circuit meaning: both arms are values.
* Shifts (`Call` intrinsics `shift_left`/`shift_right`) by a negative amount
  shift the other way; by at least the width they give 0 (or the sign, for a
  signed right shift). A left shift is a multiplication by a power of two:
  on signed 32/64-bit types its overflow is undefined like `Mul`'s (bounds
  inference assumes it does not happen; the backends wrap).

`Call` covers calls to Funcs (`CallType.FUNC`, multi-dimensional, before
storage flattening), reads of input images (`CallType.IMAGE`) and pure
intrinsics (`CallType.INTRINSIC`: math functions, bitwise operations).
After flattening, memory reads are `Load` nodes with a flat index.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Tuple

from .types import Type, bool_, i32


class Expr:
    """Base class of expression nodes; subclasses are frozen dataclasses.

    The two slots cache what would otherwise cost a walk of the whole tree
    on every use: the hash (dicts and sets of Exprs are everywhere in the
    simplifier and bounds inference; a dataclass hashes all its fields each
    time) and the node count (`node_count`)."""
    __slots__ = ("_hash", "_count")
    type: Type


def _cached_hash(structural):
    def __hash__(self):
        try:
            return self._hash
        except AttributeError:
            h = structural(self)
            object.__setattr__(self, "_hash", h)
            return h
    return __hash__


def _node(cls):
    cls = dataclass(frozen=True, slots=True)(cls)
    cls.__hash__ = _cached_hash(cls.__hash__)
    return cls


def node_count(e) -> int:
    """The number of Expr nodes in e along its operand fields (cached)."""
    try:
        return e._count
    except AttributeError:
        pass
    n = 1
    for f in ("a", "b", "value", "condition", "true_value", "false_value"):
        c = getattr(e, f, None)
        if isinstance(c, Expr):
            n += node_count(c)
    object.__setattr__(e, "_count", n)
    return n


@_node
class Const(Expr):
    """A literal. `value` is a Python int (already wrapped to `type`) or float."""
    type: Type
    value: Any


@_node
class Variable(Expr):
    """A named scalar: a loop variable, a let, a Param or buffer metadata."""
    type: Type
    name: str


@_node
class Cast(Expr):
    type: Type
    value: Expr


@_node
class Reinterpret(Expr):
    type: Type
    value: Expr


class BinOp(Expr):
    __slots__ = ()
    a: Expr
    b: Expr


def _binop(name: str, op: str, result_bool: bool = False):
    def type_(self):
        return bool_.with_lanes(self.a.type.lanes()) if result_bool else self.a.type
    cls = type(name, (BinOp,), {
        "__annotations__": {"a": Expr, "b": Expr},
        "type": property(type_),
        "op": op,
        "__doc__": f"`a {op} b`" + (" (a bool)" if result_bool else ""),
    })
    return dataclass(frozen=True, slots=True)(cls)


Add = _binop("Add", "+")
Sub = _binop("Sub", "-")
Mul = _binop("Mul", "*")
Div = _binop("Div", "/")
Mod = _binop("Mod", "%")
Min = _binop("Min", "min")
Max = _binop("Max", "max")
EQ = _binop("EQ", "==", True)
NE = _binop("NE", "!=", True)
LT = _binop("LT", "<", True)
LE = _binop("LE", "<=", True)
GT = _binop("GT", ">", True)
GE = _binop("GE", ">=", True)
And = _binop("And", "&&", True)
Or = _binop("Or", "||", True)

ARITH_OPS = (Add, Sub, Mul, Div, Mod, Min, Max)
CMP_OPS = (EQ, NE, LT, LE, GT, GE)
LOGIC_OPS = (And, Or)


@_node
class Not(Expr):
    a: Expr

    @property
    def type(self):
        return self.a.type


@_node
class Select(Expr):
    condition: Expr
    true_value: Expr
    false_value: Expr

    @property
    def type(self):
        return self.true_value.type


@_node
class Let(Expr):
    name: str
    value: Expr
    body: Expr

    @property
    def type(self):
        return self.body.type


class CallType(enum.Enum):
    FUNC = "func"            # a Func, by its unique name; args are coordinates
    IMAGE = "image"          # an input Buffer or ImageParam, by name
    INTRINSIC = "intrinsic"  # a pure operation named by `name`


@_node
class Call(Expr):
    type: Type
    name: str
    args: Tuple[Expr, ...]
    call_type: CallType
    value_index: int = 0     # which Tuple element of a Func is read
    # The front-end object called (Function, Buffer or ImageParam), held
    # strongly so that an unnamed temporary stays alive, as in Halide. It is
    # not part of the node's identity (equality, hash, repr use the name).
    source: Any = field(default=None, compare=False, hash=False, repr=False)


@_node
class Load(Expr):
    """Read `buffer[index]` from flat storage (after storage flattening)."""
    type: Type
    buffer: str
    index: Expr


@_node
class Ramp(Expr):
    """The vector base, base+stride, ..., of `lanes` elements."""
    base: Expr
    stride: Expr
    lanes: int

    @property
    def type(self):
        return self.base.type.with_lanes(self.lanes)


@_node
class Broadcast(Expr):
    value: Expr
    lanes: int

    @property
    def type(self):
        return self.value.type.with_lanes(self.lanes)


# -- small constructors used across passes ------------------------------------

def const(value, type_: Type = i32) -> Const:
    return Const(type_, wrap_value(value, type_))


def wrap_value(value, t: Type):
    """Normalize a Python number to what type `t` holds (wrapping ints)."""
    if t.is_float():
        import numpy as np
        return float(t.numpy_dtype().type(value))
    value = int(value)
    if t.is_bool():
        return 1 if value else 0
    bits = t.bits()
    value &= (1 << bits) - 1
    if t.is_int() and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def is_const(e: Expr, value=None) -> bool:
    return isinstance(e, Const) and (value is None or e.value == value)


def balanced(op, parts):
    """`op` (Min, Max, Add, ...) over `parts` as a balanced tree: a chain as
    deep as a long list would pass Python's recursion limit in later passes."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [op(parts[j], parts[j + 1]) if j + 1 < len(parts) else parts[j]
                 for j in range(0, len(parts), 2)]
    return parts[0]


def intrinsic(name: str, type_: Type, *args: Expr) -> Call:
    return Call(type_, name, tuple(args), CallType.INTRINSIC)


TRUE = Const(bool_, 1)
FALSE = Const(bool_, 0)
ZERO = Const(i32, 0)
ONE = Const(i32, 1)
