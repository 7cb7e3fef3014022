"""Halide's free functions on Exprs: select, clamp, min/max, math, casts...

Each follows Halide 21's typing (checked against `halide` itself): math
functions take floats (ints become float32), `min`/`max` turn a Python int
into an int32 Expr first, `clamp` casts its bounds to the first argument's
type, `abs` of a signed int is unsigned, and so on.
"""
from __future__ import annotations

import builtins

from ..errors import CompileError
from ..ir import expr as ir
from ..ir.types import Type, Int, UInt, Float, bool_, i32, f32
from . import expr as E
from .expr import (Expr, to_node, cast_node, match_types, operands, float_arg,
                   float_math, int_literal_as, is_literal, zero_of, one_of)


def _w(n):
    return Expr._wrap(n)


def _is_tuple(v):
    return isinstance(v, (tuple, list))


# -- selection ------------------------------------------------------------------------

def select(*args):
    """`select(c, a, b)` or `select(c1, a, c2, b, ..., default)`; Tuples too."""
    if len(args) < 3 or len(args) % 2 == 0:
        raise CompileError(f"select() takes (cond, value, ..., default): an odd number "
                           f"of at least 3 arguments, got {len(args)}")
    default = args[-1]
    for i in range(len(args) - 3, -1, -2):
        default = _select2(args[i], args[i + 1], default)
    return default


def _select2(c, a, b):
    if _is_tuple(a) or _is_tuple(b):
        if not (_is_tuple(a) and _is_tuple(b)) or len(a) != len(b):
            raise CompileError("select() of Tuples needs Tuples of the same size in both arms")
        conds = c if _is_tuple(c) else [c] * len(a)
        return tuple(_w(_select_node(ci, ai, bi)) for ci, ai, bi in zip(conds, a, b))
    return _w(_select_node(c, a, b))


def _select_node(c, a, b):
    cn = to_node(c)
    if not cn.type.is_bool():
        raise CompileError(f"The first argument to a select must be a boolean; "
                           f"it has type {cn.type}")
    a_lit, b_lit = is_literal(a), is_literal(b)
    if a_lit and not b_lit:
        bn = to_node(b)
        an = E.int_literal_as(a, bn.type) if isinstance(a, int) else cast_node(bn.type, to_node(a)) \
            if bn.type.is_float() else to_node(a)
    elif b_lit and not a_lit:
        an = to_node(a)
        bn = E.int_literal_as(b, an.type) if isinstance(b, int) else cast_node(an.type, to_node(b)) \
            if an.type.is_float() else to_node(b)
    else:
        an, bn = to_node(a), to_node(b)
        if a_lit and b_lit:
            an, bn = match_types(an, bn)
    if an.type != bn.type:
        raise CompileError(f"The second and third arguments to a select do not have a "
                           f"matching type: {an.type} and {bn.type}")
    return ir.Select(cn, an, bn)


def mux(index, values):
    """`values[index]`, with an out-of-range index giving the last value."""
    values = list(values)
    if not values:
        raise CompileError("mux() needs at least one value")
    nodes = [to_node(v) for v in values]
    idx = to_node(index)
    if any(n.type != nodes[0].type for n in nodes):
        raise CompileError("mux() requires all the values to have the same type")
    r = nodes[-1]
    for i in range(len(nodes) - 2, -1, -1):
        r = ir.Select(ir.EQ(idx, int_literal_as(i, idx.type)), nodes[i], r)
    return _w(r)


# -- min, max, clamp -------------------------------------------------------------------

def _minmax(kind, args):
    if len(args) == 1 and _is_tuple(args[0]):
        args = tuple(args[0])
    if len(args) < 2:
        raise CompileError(f"{kind}() needs at least two arguments")
    node_cls = ir.Min if kind == "min" else ir.Max
    # Halide's Python min/max make Expr(int) int32 first, then match types.
    r = _minmax_pair(node_cls, args[-2], args[-1])
    for a in reversed(args[:-2]):
        r = _minmax_pair(node_cls, a, r)
    return _w(r)


def _minmax_pair(cls, a, b):
    an, bn = to_node(a), to_node(b)
    an, bn = match_types(an, bn)
    return cls(an, bn)


def min(*args):
    return _minmax("min", args)


def max(*args):
    return _minmax("max", args)


def _lossless_cast(t: Type, n: ir.Expr):
    """Halide's lossless_cast: `n` as type `t` when no value can change, else None."""
    if n.type == t:
        return n
    if isinstance(n, ir.Const) and t.is_scalar() and not n.type.is_handle():
        v = n.value
        if t.is_float():
            import numpy as np
            fv = float(t.numpy_dtype().type(v))
            ok = fv == v or fv != fv
            return ir.Const(t, fv) if ok else None
        if isinstance(v, float) and not v.is_integer():
            return None
        v = int(v)
        return ir.Const(t, v) if t.min() <= v <= t.max() else None
    if t.can_represent(n.type):
        return cast_node(t, n)
    if isinstance(n, ir.Cast) and n.type.can_represent(n.value.type):
        return _lossless_cast(t, n.value)
    return None


def clamp(a, lo, hi):
    """min/max with no implicit conversion: the bounds must convert to a's
    type without changing value (Halide's lossless_cast), else an error."""
    an = to_node(a)
    bounds = []
    for name, v in (("second", lo), ("third", hi)):
        n = to_node(v)
        c = _lossless_cast(an.type, n)
        if c is None:
            raise CompileError(f"Type mismatch in call to clamp. First argument has type "
                               f"{an.type}, but {name} argument has type {n.type}. Use an "
                               f"explicit cast.")
        bounds.append(c)
    return _w(ir.Max(ir.Min(an, bounds[1]), bounds[0]))


# -- arithmetic helpers -------------------------------------------------------------

def abs(a):
    n = to_node(a)
    t = n.type
    out = t.with_code(UInt(8).code()) if t.is_int() else t
    if t.is_uint():
        return _w(n)
    return _w(ir.intrinsic("abs", out, n))


def absd(a, b):
    # Halide's Python absd makes a Python int an int32 Expr first (like min/max).
    x, y = match_types(to_node(a), to_node(b))
    t = x.type
    out = t.with_code(UInt(8).code()) if t.is_int() else t
    return _w(ir.intrinsic("absd", out, x, y))


def lerp(zero_val, one_val, weight):
    """Halide's lerp: exact fixed-point rounding for integer types."""
    z, o = operands(zero_val, one_val)
    # A Python int weight is an int32 Expr (an error below), as in Halide.
    w = to_node(weight)
    if w.type.is_int():
        raise CompileError(f"A lerp weight must be an unsigned integer or a float, but "
                           f"lerp weight has type {w.type}.")
    if isinstance(w, ir.Const) and w.type.is_float() and not z.type.is_float() \
            and not (0.0 <= w.value <= 1.0):
        raise CompileError(f"Floating-point weight for lerp with integer arguments is "
                           f"{w.value:g}, which is not in the range [0, 1].")
    if z.type.is_float():
        ft = z.type
        if w.type.is_float():
            tw = cast_node(ft, w)
        elif w.type.bits() == 32:
            tw = cast_node(ft, ir.Div(cast_node(Float(64, w.type.lanes()), w),
                                      ir.Const(Float(64), 4294967295.0)))
        else:
            tw = cast_node(ft, ir.Div(cast_node(Float(32, w.type.lanes()), w),
                                      ir.Const(f32, float(2 ** w.type.bits() - 1))))
        inv = ir.Sub(one_of(ft), tw)
        # Halide: zero * (1 - w) + one * w
        return _w(ir.Add(ir.Mul(z, inv), ir.Mul(o, tw)))
    return _w(_lerp_int(z, o, w))


def _lerp_int(z, o, w):
    rt = z.type
    ct = rt.with_code(UInt(8).code())
    bias = None
    if rt.is_int():
        bias = ir.Const(ct, ir.wrap_value(rt.min(), ct))
        z = ir.Sub(cast_node(ct, z), bias)
        o = ir.Sub(cast_node(ct, o), bias)
    bits = ct.bits()
    if ct.is_bool():
        half = ir.Const(f32, 0.5) if w.type.is_float() else ir.Const(w.type, w.type.max() // 2)
        return ir.Select(ir.GT(w, half), o, z)
    maxv = ir.Const(ct, ct.max())
    if w.type.is_float():
        wt = cast_node(ct, ir.Mul(ir.Const(w.type, float(ct.max())), w)) if bits < 32 else \
            cast_node(ct, ir.Mul(ir.Const(Float(64), 65535.0 * 65537.0), cast_node(Float(64), w)))
    else:
        if w.type.is_int():
            raise CompileError("lerp() weight must be unsigned or float")
        diff = w.type.bits() - bits
        if diff == 0:
            wt = w
        else:
            left, shift_amt, scale = builtins.abs(diff), builtins.min(bits, w.type.bits()), 1
            while left:
                scale = scale + (scale << shift_amt)
                left -= shift_amt
                shift_amt *= 2
            if diff < 0:
                wt = ir.Mul(cast_node(ct, w), ir.Const(ct, scale))
            else:
                wt = cast_node(ct, ir.Div(w, ir.Const(w.type, scale)))
    inv = ir.Sub(maxv, wt)
    if bits == 64:
        raise CompileError("lerp() of 64-bit integers is not supported (as in Halide)")
    wide = UInt(2 * bits)
    prod = ir.Add(ir.Add(ir.Mul(cast_node(wide, z), cast_node(wide, inv)),
                         ir.Mul(cast_node(wide, o), cast_node(wide, wt))),
                  ir.Const(wide, 1 << (bits - 1)))
    div = ir.Const(wide, bits)
    shr = lambda e: ir.intrinsic("shift_right", wide, e, div)
    r = cast_node(ct, shr(ir.Add(shr(prod), prod)))
    if bias is not None:
        r = cast_node(rt, ir.Add(r, bias))
    return r


def fract(a):
    x = float_arg(a)
    return _w(ir.Sub(x, float_math("trunc", x)))


def _math1(name):
    def f(a):
        return _w(float_math(name, float_arg(a)))
    f.__name__ = name
    return f


sqrt, sin, cos, tan = _math1("sqrt"), _math1("sin"), _math1("cos"), _math1("tan")
asin, acos, atan = _math1("asin"), _math1("acos"), _math1("atan")
sinh, cosh, tanh = _math1("sinh"), _math1("cosh"), _math1("tanh")
asinh, acosh, atanh = _math1("asinh"), _math1("acosh"), _math1("atanh")
exp, log, erf = _math1("exp"), _math1("log"), _math1("erf")
floor, ceil, trunc = _math1("floor"), _math1("ceil"), _math1("trunc")


def round(a):
    """Round to nearest, ties to even (as Halide)."""
    return _w(float_math("round", float_arg(a)))


def _math2(name):
    def f(a, b):
        x = float_arg(a)
        y = to_node(b) if not is_literal(b) else (
            int_literal_as(b, x.type) if isinstance(b, int) else cast_node(x.type, to_node(b)))
        y = cast_node(x.type, y)
        return _w(float_math(name, x, y))
    f.__name__ = name
    return f


atan2 = _math2("atan2")


def pow(a, b):
    return _w(E.power(a, b))


def hypot(a, b):
    x = float_arg(a)
    y = cast_node(x.type, float_arg(b) if not is_literal(b) else to_node(float(b)))
    return _w(float_math("sqrt", ir.Add(ir.Mul(x, x), ir.Mul(y, y))))


def _is_pred(name):
    def f(a):
        x = to_node(a)
        if not x.type.is_float():
            raise CompileError(f"{name} only works for float")
        return _w(ir.intrinsic(name, bool_.with_lanes(x.type.lanes()), x))
    return f


is_nan, is_inf, is_finite = _is_pred("is_nan"), _is_pred("is_inf"), _is_pred("is_finite")


def _int_unary(name):
    def f(a):
        x = to_node(a)
        if x.type.is_float():
            raise CompileError(f"{name}() needs an integer argument, got {x.type}")
        return _w(ir.intrinsic(name, x.type, x))
    return f


popcount = _int_unary("popcount")
count_leading_zeros = _int_unary("count_leading_zeros")
count_trailing_zeros = _int_unary("count_trailing_zeros")


def div_round_to_zero(a, b):
    x, y = operands(a, b)
    if x.type.is_float():
        return _w(ir.Div(x, y))
    return _w(ir.intrinsic("div_round_to_zero", x.type, x, y))


def mod_round_to_zero(a, b):
    x, y = operands(a, b)
    if x.type.is_float():
        return _w(ir.Mod(x, y))
    return _w(ir.intrinsic("mod_round_to_zero", x.type, x, y))


def logical_not(a):
    return _w(E.logical_not(a))


# -- casts ----------------------------------------------------------------------

def cast(t: Type, e):
    return E.cast(t, e)


def reinterpret(t: Type, e):
    n = to_node(e)
    if t.bits() * t.lanes() != n.type.bits() * n.type.lanes():
        raise CompileError(f"reinterpret from {n.type} to {t} changes the number of bits")
    return _w(ir.Reinterpret(t, n))


def saturating_cast(t: Type, e):
    n = to_node(e)
    if isinstance(e, float) or isinstance(e, int):
        n = to_node(e)
    return _w(_saturate(t, n))


def _saturate(t: Type, n: ir.Expr) -> ir.Expr:
    """Clamp to t's range in a type that holds both, then cast."""
    s = n.type
    if t.is_float():
        return cast_node(t, n)
    if s.is_float():
        lo, hi = ir.Const(s, float(t.min())), ir.Const(s, float(t.max()))
        # float(t.max()) may round up past max for 32/64-bit; clamp then cast.
        clamped = ir.Max(ir.Min(n, hi), lo)
        if t.bits() >= 32:
            hi_ok = ir.Const(s, float(t.max()))
            return ir.Select(ir.GE(n, hi_ok), ir.Const(t, t.max()),
                             cast_node(t, clamped))
        return cast_node(t, clamped)
    r = n
    if t.max() < s.max():
        r = ir.Min(r, ir.Const(s, t.max()))
    if t.min() > s.min():
        r = ir.Max(r, ir.Const(s, t.min()))
    return cast_node(t, r)


def _concise(t: Type, sat: bool = False):
    def f(e):
        if not sat and t.is_float() and E.is_literal(e) and not isinstance(e, (bool, int)) \
                and not E._is_np_int(e):
            # As in Halide, f32(0.1) / f64(0.1) make a constant of that type
            # straight from the Python float: no float32 detour, no warning.
            import numpy as np
            with np.errstate(over="ignore"):
                return Expr._wrap(ir.Const(t, float(t.numpy_dtype().type(e))))
        return saturating_cast(t, e) if sat else cast(t, e)
    return f


i8, i16, i32_, i64 = (_concise(Int(b)) for b in (8, 16, 32, 64))
u8, u16, u32, u64 = (_concise(UInt(b)) for b in (8, 16, 32, 64))
f16, f32_, f64 = (_concise(Float(b)) for b in (16, 32, 64))
i8_sat, i16_sat, i32_sat, i64_sat = (_concise(Int(b), True) for b in (8, 16, 32, 64))
u8_sat, u16_sat, u32_sat, u64_sat = (_concise(UInt(b), True) for b in (8, 16, 32, 64))


# -- debugging --------------------------------------------------------------------

def print_(*args):
    """`hl.print(e, "msg", ...)`: returns e; prints all arguments when evaluated."""
    if not args:
        raise CompileError("print() needs at least one argument")
    return print_when(None, *args)


def print_when(cond, *args):
    first = to_node(args[0])
    parts = []
    for a in args:
        if isinstance(a, str):
            parts.append(_string(a))
        else:
            parts.append(to_node(a))
    call_args = tuple(parts) if cond is None else (to_node(cond),) + tuple(parts)
    name = "print" if cond is None else "print_when"
    return _w(ir.Call(first.type, name, call_args, ir.CallType.INTRINSIC))


def _string(s: str) -> ir.Expr:
    """String literals in print() are carried as `Const` of a handle type."""
    from ..ir.types import Handle
    return ir.Const(Handle(), s)
