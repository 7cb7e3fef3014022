"""Halide's meaning of each IR operation, on numpy arrays.

This is the executable form of the rules in `halo.ir.expr`'s docstring. The
reference interpreter evaluates every node through these functions and the
simplifier folds constants with them, so one table defines what an operation
means; the C backend is tested against it.
"""
from __future__ import annotations

import numpy as np

from .types import Type

_ERR = dict(over="ignore", under="ignore", divide="ignore", invalid="ignore")


def _arr(x, t: Type):
    return np.asarray(x, dtype=t.numpy_dtype())


def _unsigned_view(t: Type):
    return np.dtype(f"uint{t.bits()}") if t.bits() > 1 else np.dtype(bool)


def cast(to: Type, frm: Type, x):
    """Halide cast: floats truncate toward zero, ints wrap, bools are 0/1."""
    with np.errstate(**_ERR):
        x = np.asarray(x)
        if to.is_bool():
            return x != 0
        if to.is_float():
            return x.astype(to.numpy_dtype())
        if frm.is_float():
            t = np.trunc(x.astype(np.float64))
            # Out-of-range float->int is undefined in Halide; go through int64
            # (x86 gives INT64_MIN for NaN/inf) and then wrap like an int.
            i = np.where(np.isfinite(t) & (np.abs(t) < 2.0**63), t, -2.0**63).astype(np.int64)
            return i.astype(to.numpy_dtype())
        return x.astype(to.numpy_dtype())


def cast_scalar(to: Type, frm: Type, v):
    r = cast(to, frm, np.asarray(v, dtype=frm.numpy_dtype()))
    return float(r) if to.is_float() else int(r)


def reinterpret(to: Type, frm: Type, x):
    return np.asarray(x, dtype=frm.numpy_dtype()).view(to.numpy_dtype())


def add(t, a, b):
    with np.errstate(**_ERR):
        if t.is_bool():     # uint1 wraps: True + True == False, as in Halide
            return _arr(a, t) ^ _arr(b, t)
        return _arr(_arr(a, t) + _arr(b, t), t)


def sub(t, a, b):
    with np.errstate(**_ERR):
        if t.is_bool():
            return _arr(a, t) ^ _arr(b, t)
        return _arr(_arr(a, t) - _arr(b, t), t)


def mul(t, a, b):
    with np.errstate(**_ERR):
        if t.is_bool():
            return _arr(a, t) & _arr(b, t)
        return _arr(_arr(a, t) * _arr(b, t), t)


def div(t, a, b):
    """Euclidean division for ints (x/0 == 0); IEEE division for floats."""
    a, b = _arr(a, t), _arr(b, t)
    with np.errstate(**_ERR):
        if t.is_float():
            return _arr(a / b, t)
        if t.is_bool():
            return a & b
        zero = b == 0
        bs = np.where(zero, np.ones_like(b), b)
        if t.is_uint():
            q = a // bs
        else:
            # floor division, then fix up for negative divisors so that the
            # remainder is non-negative (Euclidean).
            q = np.floor_divide(a, bs)
            r = a - q * bs
            q = np.where(r < 0, q + 1, q)
        return _arr(np.where(zero, np.zeros_like(q), q), t)


def mod(t, a, b):
    """Euclidean modulo for ints (never negative, x%0 == 0); floats: a - b*floor(a/b)."""
    a, b = _arr(a, t), _arr(b, t)
    with np.errstate(**_ERR):
        if t.is_float():
            return _arr(a - b * np.floor(a / b), t)
        if t.is_bool():
            return np.zeros(np.broadcast(a, b).shape, dtype=bool)  # x%1 == x%0 == 0
        zero = b == 0
        bs = np.where(zero, np.ones_like(b), b)
        r = np.mod(a, bs)
        if t.is_int():
            r = np.where(r < 0, r - bs, r)  # negative divisor: shift into [0, |b|)
        return _arr(np.where(zero, np.zeros_like(r), r), t)


def minimum(t, a, b):
    return _arr(np.minimum(_arr(a, t), _arr(b, t)), t)


def maximum(t, a, b):
    return _arr(np.maximum(_arr(a, t), _arr(b, t)), t)


CMP = {
    "EQ": np.equal, "NE": np.not_equal, "LT": np.less,
    "LE": np.less_equal, "GT": np.greater, "GE": np.greater_equal,
}


def compare(op: str, t, a, b):
    return CMP[op](_arr(a, t), _arr(b, t))


def shift(direction: str, t: Type, a, b, bt: Type):
    """Shift `a` (type t) by `b` (type bt); negative amounts reverse."""
    a = _arr(a, t)
    b = np.asarray(b, dtype=bt.numpy_dtype()).astype(np.int64)
    bits = t.bits()
    left = b >= 0 if direction == "left" else b < 0
    amt = np.abs(b)
    big = amt >= bits
    amt_c = np.where(big, 0, amt)
    with np.errstate(**_ERR):
        u = a.view(_unsigned_view(t)) if t.is_int() else a
        shl = (u.astype(np.uint64) << amt_c.astype(np.uint64)).astype(u.dtype)
        if t.is_int():
            shl = shl.view(t.numpy_dtype())
            shr = a >> amt_c.astype(a.dtype)
            shr_big = np.where(a < 0, -1, 0).astype(a.dtype)
        else:
            shr = (a.astype(np.uint64) >> amt_c.astype(np.uint64)).astype(a.dtype)
            shr_big = np.zeros_like(a)
        shl = np.where(big, np.zeros_like(a), shl)
        shr = np.where(big, shr_big, shr)
        return _arr(np.where(left, shl, shr), t)


def bitwise(kind: str, t, a, b):
    a, b = _arr(a, t), _arr(b, t)
    return {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[kind](a, b)


def bitwise_not(t, a):
    return np.invert(_arr(a, t))


def abs_(t_in: Type, t_out: Type, a):
    a = _arr(a, t_in)
    with np.errstate(**_ERR):
        if t_in.is_float():
            return np.abs(a)
        return np.abs(a.astype(np.int64) if t_in.bits() < 64 else a).astype(t_out.numpy_dtype())


def absd(t_in: Type, t_out: Type, a, b):
    a, b = _arr(a, t_in), _arr(b, t_in)
    with np.errstate(**_ERR):
        if t_in.is_float():
            return np.abs(a - b)
        hi, lo = np.maximum(a, b), np.minimum(a, b)
        d = hi.view(_unsigned_view(t_in)) - lo.view(_unsigned_view(t_in)) \
            if t_in.is_int() else hi - lo
        return d.astype(t_out.numpy_dtype())


def round_half_even(t, a):
    return _arr(np.rint(_arr(a, t)), t)


FLOAT_FUNCS = {
    "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "exp": np.exp, "log": np.log, "floor": np.floor, "ceil": np.ceil,
    "trunc": np.trunc, "round": np.rint, "erf": None,
    "pow": np.power, "atan2": np.arctan2, "hypot": np.hypot,
    "is_nan": np.isnan, "is_inf": np.isinf, "is_finite": np.isfinite,
}


def erf(x):
    import math
    v = np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, dtype=np.float64))
    return v.astype(np.asarray(x).dtype)


def float_func(name: str, t: Type, *args):
    args = [_arr(a, t) for a in args]
    with np.errstate(**_ERR):
        if name == "erf":
            return erf(args[0])
        r = FLOAT_FUNCS[name](*args)
        if name.startswith("is_"):
            return r
        return _arr(r, t)


def popcount(t, a):
    a = _arr(a, t).view(_unsigned_view(t)).astype(np.uint64)
    n = np.zeros(a.shape, dtype=np.uint64)
    for i in range(t.bits()):
        n += (a >> np.uint64(i)) & np.uint64(1)
    return n.astype(t.numpy_dtype())


def count_leading_zeros(t, a):
    a = _arr(a, t).view(_unsigned_view(t)).astype(np.uint64)
    bits = t.bits()
    n = np.full(a.shape, bits, dtype=np.int64)
    for i in range(bits):
        n = np.where((a >> np.uint64(i)) & np.uint64(1), bits - 1 - i, n)
    return n.astype(t.numpy_dtype())


def count_trailing_zeros(t, a):
    a = _arr(a, t).view(_unsigned_view(t)).astype(np.uint64)
    bits = t.bits()
    n = np.full(a.shape, bits, dtype=np.int64)
    for i in reversed(range(bits)):
        n = np.where((a >> np.uint64(i)) & np.uint64(1), i, n)
    return n.astype(t.numpy_dtype())
