"""The user-facing `Expr` and Halide's implicit type-coercion rules.

`Expr` wraps an immutable IR node (`halo.ir.expr`). Python operators on
`Expr`, `Var`, `RVar`, `Param` and `FuncRef` build new Exprs following
Halide's `match_types` and its Python-literal rules:

* a Python int combined with an Expr takes the Expr's type and must be
  representable in it (else an error names the constant and the type);
  an int that does not fit in int32 becomes an int64 Expr first;
* a Python float is a float32 constant first (a warning when that loses
  precision), then ordinary matching applies;
* Expr with Expr: broadcast, float wins, same kind widens, and int/uint
  mixes become the signed int of the wider width.
"""
from __future__ import annotations

import math
import warnings

from ..errors import CompileError
from ..ir import expr as ir
from ..ir.types import Type, TypeCode, Int, UInt, Float, bool_, i32, i64, f32


def _bool_error(self):
    raise CompileError(
        "A halo Expr cannot be converted to a Python bool: use '&' instead of "
        "'and', '|' instead of 'or', and '~' instead of 'not' (hl.select for "
        "conditional values).")


class ExprLike:
    """Mixin giving Halide's operators to anything convertible to an Expr."""
    __slots__ = ()

    def __add__(self, o): return Expr._wrap(add(self, o))
    def __radd__(self, o): return Expr._wrap(add(o, self))
    def __sub__(self, o): return Expr._wrap(sub(self, o))
    def __rsub__(self, o): return Expr._wrap(sub(o, self))
    def __mul__(self, o): return Expr._wrap(mul(self, o))
    def __rmul__(self, o): return Expr._wrap(mul(o, self))
    def __truediv__(self, o): return Expr._wrap(div(self, o))
    def __rtruediv__(self, o): return Expr._wrap(div(o, self))
    def __floordiv__(self, o): return Expr._wrap(floordiv(self, o))
    def __rfloordiv__(self, o): return Expr._wrap(floordiv(o, self))
    def __mod__(self, o): return Expr._wrap(mod(self, o))
    def __rmod__(self, o): return Expr._wrap(mod(o, self))
    def __pow__(self, o): return Expr._wrap(power(self, o))
    def __rpow__(self, o): return Expr._wrap(power(o, self))
    def __neg__(self): return Expr._wrap(neg(self))
    def __pos__(self): return Expr._wrap(to_node(self))
    def __invert__(self): return Expr._wrap(bitwise_not(self))
    def __and__(self, o): return Expr._wrap(bitwise("and", self, o))
    def __rand__(self, o): return Expr._wrap(bitwise("and", o, self))
    def __or__(self, o): return Expr._wrap(bitwise("or", self, o))
    def __ror__(self, o): return Expr._wrap(bitwise("or", o, self))
    def __xor__(self, o): return Expr._wrap(bitwise("xor", self, o))
    def __rxor__(self, o): return Expr._wrap(bitwise("xor", o, self))
    def __lshift__(self, o): return Expr._wrap(shift("left", self, o))
    def __rlshift__(self, o): return Expr._wrap(shift("left", o, self))
    def __rshift__(self, o): return Expr._wrap(shift("right", self, o))
    def __rrshift__(self, o): return Expr._wrap(shift("right", o, self))
    def __lt__(self, o): return Expr._wrap(compare(ir.LT, self, o))
    def __le__(self, o): return Expr._wrap(compare(ir.LE, self, o))
    def __gt__(self, o): return Expr._wrap(compare(ir.GT, self, o))
    def __ge__(self, o): return Expr._wrap(compare(ir.GE, self, o))
    def __eq__(self, o): return Expr._wrap(compare(ir.EQ, self, o))
    def __ne__(self, o): return Expr._wrap(compare(ir.NE, self, o))
    __bool__ = _bool_error

    def logical_not(self):
        return Expr._wrap(logical_not(self))

    def __hash__(self):
        return id(self)


class Expr(ExprLike):
    """An expression of the algorithm language (Halide's `hl.Expr`)."""
    __slots__ = ("node",)
    __array_priority__ = 1000  # numpy scalars defer to our operators

    def __init__(self, value=None):
        if value is None:
            raise CompileError("Expr() needs a value (undefined Exprs are not supported)")
        self.node = to_node(value)

    @classmethod
    def _wrap(cls, node: ir.Expr) -> "Expr":
        e = object.__new__(Expr)
        e.node = node
        return e

    def type(self) -> Type:
        return self.node.type

    def defined(self) -> bool:
        return True

    def __repr__(self):
        from ..ir.printer import expr_to_str
        return f"<halo.Expr of type {self.type()}: {expr_to_str(self.node)}>"

    def __str__(self):
        from ..ir.printer import expr_to_str
        return expr_to_str(self.node)

    def __hash__(self):
        return id(self)




# -- conversion ------------------------------------------------------------------

def to_node(v) -> ir.Expr:
    """Convert anything Expr-like (or a Python number) to an IR node."""
    if isinstance(v, Expr):
        return v.node
    if isinstance(v, ir.Expr):
        return v
    conv = getattr(v, "_to_ir", None)
    if conv is not None:
        return conv()
    if isinstance(v, (bool,)):
        return ir.Const(bool_, int(v))
    if isinstance(v, int) or _is_np_int(v):
        v = int(v)
        if i32.min() <= v <= i32.max():
            return ir.Const(i32, v)
        if i64.min() <= v <= i64.max():
            return ir.Const(i64, v)
        raise CompileError(f"Integer constant {v} does not fit in int64")
    if isinstance(v, float) or _is_np_float(v):
        return float_literal(float(v))
    raise CompileError(f"Cannot convert {v!r} (of type {type(v).__name__}) to a halo Expr")


def _is_np_int(v):
    import numpy as np
    return isinstance(v, np.integer)


def _is_np_float(v):
    import numpy as np
    return isinstance(v, np.floating)


def is_literal(v) -> bool:
    return isinstance(v, (int, float)) or _is_np_int(v) or _is_np_float(v)


def float_literal(v: float) -> ir.Const:
    """A Python float becomes float32, warning when that changes its value."""
    import numpy as np
    c = float(np.float32(v))
    if c != v and not (math.isnan(v) or math.isinf(v)):
        warnings.warn(
            f"The floating-point value {v!r} will be interpreted as a float32 by "
            f"halo and lose precision; add an explicit f32() or f64() cast to "
            f"avoid this warning.", RuntimeWarning, stacklevel=4)
    return ir.Const(f32, c)


def int_literal_as(v: int, t: Type) -> ir.Expr:
    """An int literal takes type `t`, which must represent it exactly."""
    v = int(v)
    if t.is_float():
        fv = ir.wrap_value(v, t)
        if fv != v:
            raise CompileError(
                f"Integer constant {v} will be implicitly coerced to type {t.element_of()}, "
                f"which changes its value to ({t.element_of()}){fv!r}.")
        return broadcast_to(ir.Const(t.element_of(), fv), t.lanes())
    if not t.can_represent(v):
        wrapped = ir.wrap_value(v, t)
        raise CompileError(
            f"Integer constant {v} will be implicitly coerced to type {t.element_of()}, "
            f"which changes its value to ({t.element_of()}){wrapped}.")
    return broadcast_to(ir.Const(t.element_of(), v), t.lanes())


def broadcast_to(e: ir.Expr, lanes: int) -> ir.Expr:
    if lanes == 1 or e.type.lanes() == lanes:
        return e
    return ir.Broadcast(e, lanes)


def cast_node(t: Type, e: ir.Expr) -> ir.Expr:
    """Cast, folding constants and dropping no-op casts."""
    if e.type == t:
        return e
    if isinstance(e, ir.Const) and t.is_scalar():
        from ..ir.semantics import cast_scalar
        return ir.Const(t, cast_scalar(t, e.type, e.value))
    if e.type.is_scalar() and t.is_vector():
        return ir.Broadcast(cast_node(t.element_of(), e), t.lanes())
    return ir.Cast(t, e)


def match_types(a: ir.Expr, b: ir.Expr) -> tuple[ir.Expr, ir.Expr]:
    """Halide's `match_types`: make two Exprs the same type."""
    ta, tb = a.type, b.type
    if ta == tb:
        return a, b
    if ta.lanes() != tb.lanes():
        if ta.lanes() == 1:
            a = ir.Broadcast(a, tb.lanes())
        elif tb.lanes() == 1:
            b = ir.Broadcast(b, ta.lanes())
        else:
            raise CompileError(f"Can't match vector types {ta} and {tb}")
        ta, tb = a.type, b.type
    lanes = ta.lanes()
    if not ta.is_float() and tb.is_float():
        return cast_node(tb, a), b
    if ta.is_float() and not tb.is_float():
        return a, cast_node(ta, b)
    if ta.is_float() and tb.is_float():
        t = ta if ta.bits() >= tb.bits() else tb
        return cast_node(t, a), cast_node(t, b)
    if ta.code() == tb.code():
        t = ta if ta.bits() >= tb.bits() else tb
        return cast_node(t, a), cast_node(t, b)
    bits = max(ta.bits(), tb.bits())
    t = Int(bits, lanes)
    return cast_node(t, a), cast_node(t, b)


def operands(a, b) -> tuple[ir.Expr, ir.Expr]:
    """Coerce two operands (Exprs or Python literals) to one type."""
    a_lit, b_lit = _int_lit(a), _int_lit(b)
    if a_lit and b_lit:
        return match_types(to_node(a), to_node(b))
    if b_lit:
        na = to_node(a)
        v = int(b)
        if i32.min() <= v <= i32.max():
            return na, int_literal_as(v, na.type)
        return match_types(na, to_node(b))
    if a_lit:
        nb = to_node(b)
        v = int(a)
        if i32.min() <= v <= i32.max():
            return int_literal_as(v, nb.type), nb
        return match_types(to_node(a), nb)
    return match_types(to_node(a), to_node(b))


def _int_lit(v) -> bool:
    return isinstance(v, (int,)) or _is_np_int(v)


# -- arithmetic --------------------------------------------------------------------

def _check_defined(*nodes):
    for n in nodes:
        if n.type.is_handle():
            raise CompileError("Arithmetic on handle Exprs is not allowed")


def add(a, b) -> ir.Expr:
    x, y = operands(a, b)
    return ir.Add(x, y)


def sub(a, b) -> ir.Expr:
    x, y = operands(a, b)
    return ir.Sub(x, y)


def mul(a, b) -> ir.Expr:
    x, y = operands(a, b)
    return ir.Mul(x, y)


def div(a, b) -> ir.Expr:
    """`/`: Euclidean division for ints, true division for floats."""
    x, y = operands(a, b)
    return ir.Div(x, y)


def floordiv(a, b) -> ir.Expr:
    """`//`: same as `/` on ints; floor(a / b) on floats."""
    x, y = operands(a, b)
    if x.type.is_float():
        return floor_node(ir.Div(x, y))
    return ir.Div(x, y)


def mod(a, b) -> ir.Expr:
    x, y = operands(a, b)
    return ir.Mod(x, y)


def neg(a) -> ir.Expr:
    x = to_node(a)
    return ir.Sub(zero_of(x.type), x)


def zero_of(t: Type) -> ir.Expr:
    return broadcast_to(ir.Const(t.element_of(), 0.0 if t.is_float() else 0), t.lanes())


def one_of(t: Type) -> ir.Expr:
    return broadcast_to(ir.Const(t.element_of(), 1.0 if t.is_float() else 1), t.lanes())


def compare(op, a, b) -> ir.Expr:
    x, y = operands(a, b)
    return op(x, y)


def _as_bool(v, what: str) -> ir.Expr:
    n = to_node(v)
    if not n.type.is_bool():
        raise CompileError(f"{what} needs boolean operands, got {n.type}")
    return n


def logical_and(a, b) -> ir.Expr:
    return ir.And(_as_bool(a, "logical and"), _as_bool(b, "logical and"))


def logical_or(a, b) -> ir.Expr:
    return ir.Or(_as_bool(a, "logical or"), _as_bool(b, "logical or"))


def logical_not(a) -> ir.Expr:
    return ir.Not(_as_bool(a, "logical not"))


def bitwise(kind: str, a, b) -> ir.Expr:
    """`& | ^`: logical on bools; bitwise on ints of the same signedness."""
    x, y = to_node_lit(a, b)
    if x.type.is_bool() and y.type.is_bool():
        return {"and": ir.And, "or": ir.Or}.get(kind, lambda p, q: ir.NE(p, q))(x, y)
    if x.type.is_float() or y.type.is_float():
        raise CompileError(f"Arguments to bitwise {kind} must be integers, got "
                           f"{x.type} and {y.type}")
    if x.type.is_int() != y.type.is_int():  # bool counts as unsigned (uint1)
        raise CompileError(
            f"Arguments to bitwise {kind} must be both be signed or both be unsigned: "
            f"got {x.type} and {y.type}")
    x, y = match_types(x, y)
    return ir.intrinsic("bitwise_" + kind, x.type, x, y)


def _small_int_lit(v) -> bool:
    """An int literal that Halide coerces to the other operand's type (one
    outside int32 becomes an int64 Expr first)."""
    return _int_lit(v) and i32.min() <= int(v) <= i32.max()


def to_node_lit(a, b):
    """Like `operands`, but literal coercion only (no Expr/Expr matching)."""
    if _small_int_lit(b) and not _int_lit(a):
        na = to_node(a)
        return na, int_literal_as(int(b), na.type)
    if _small_int_lit(a) and not _int_lit(b):
        nb = to_node(b)
        return int_literal_as(int(a), nb.type), nb
    return to_node(a), to_node(b)


def bitwise_not(a) -> ir.Expr:
    x = to_node(a)
    if x.type.is_float():
        raise CompileError(f"Argument to bitwise not must be an integer, got {x.type}")
    if x.type.is_bool():
        return ir.Not(x)
    return ir.intrinsic("bitwise_not", x.type, x)


def shift(direction: str, a, b) -> ir.Expr:
    """`<<` and `>>`: a keeps its signedness; widths widen to the wider.

    A negative constant shift amount shifts the other way.
    """
    if _small_int_lit(b) and not _int_lit(a):
        # `e << 3`: the amount takes e's width, unsigned; a Python int on the
        # left (`1 << e`) is an int32 Expr first, as in Halide.
        x = to_node(a)
        v = int(b)
        if v < 0:
            direction = "right" if direction == "left" else "left"
            v = -v
        y = int_literal_as(v, x.type.with_code(TypeCode.UInt) if x.type.is_int() else x.type)
        if x.type.is_int():
            y = cast_node(x.type, y)
    else:
        x, y = to_node(a), to_node(b)
    if x.type.is_float() or y.type.is_float():
        raise CompileError(f"Shift operands must be integers, got {x.type} and {y.type}")
    bits = max(x.type.bits(), y.type.bits())
    x = cast_node(x.type.with_bits(bits), x)
    y = cast_node(y.type.with_bits(bits), y)
    return ir.intrinsic("shift_" + direction, x.type, x, y)


def power(a, b) -> ir.Expr:
    """`**` and `pow`: a constant int exponent multiplies out (repeated
    squaring, `1 / x**-n` for negative n, as Halide's
    raise_to_integer_power); else powf on floats."""
    b_int = _int_lit(b) and not isinstance(b, bool)
    bn = None if b_int else to_node(b)
    if b_int or (isinstance(bn, ir.Const) and not bn.type.is_float()
                       and not bn.type.is_bool()):
        n = int(b) if bn is None else int(bn.value)
        return _int_power(to_node(a), n)
    x = to_node(a)
    if not x.type.is_float():
        x = cast_node(Float(32, x.type.lanes()), x)
    y = to_node(b) if not _int_lit(b) else int_literal_as(int(b), x.type)
    y = cast_node(x.type, y)
    return float_math("pow", x, y)


def _int_power(x: ir.Expr, n: int) -> ir.Expr:
    if n == 0:
        return one_of(x.type)
    if n == 1:
        return x
    if n < 0:
        return ir.Div(one_of(x.type), _int_power(x, -n))
    y = _int_power(x, n // 2)
    r = ir.Mul(y, y)
    return ir.Mul(r, x) if n & 1 else r


# -- math intrinsics --------------------------------------------------------------

def float_arg(a) -> ir.Expr:
    x = to_node(a)
    if not x.type.is_float():
        x = cast_node(Float(32, x.type.lanes()), x)
    return x


def float_math(name: str, *args: ir.Expr) -> ir.Expr:
    t = args[0].type
    return ir.intrinsic(name, t, *args)


def floor_node(x: ir.Expr) -> ir.Expr:
    return float_math("floor", x)


def cast(t: Type, e) -> Expr:
    if not isinstance(t, Type):
        raise CompileError(f"cast() needs a halo Type as its first argument, got {t!r}")
    n = to_node(e)
    if n.type.lanes() != t.lanes() and t.lanes() == 1:
        t = t.with_lanes(n.type.lanes())
    return Expr._wrap(cast_node(t, n))
