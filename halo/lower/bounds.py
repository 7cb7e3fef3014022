"""Interval arithmetic over symbolic integer Exprs.

`bounds_of_expr(e, scope)` returns an `Interval` whose `min` and `max` are
Exprs (or None when unbounded) such that every value `e` takes, for
variables ranging over the intervals in `scope`, lies in [min, max].
Values read from Funcs and images are bounded by their type only: a 32-bit
data-dependent index is unbounded, which callers report as an error.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import expr as E
from ..ir.types import Type, i32, i64


@dataclass(frozen=True)
class Interval:
    min: E.Expr | None
    max: E.Expr | None

    @staticmethod
    def point(e):
        return Interval(e, e)

    def is_bounded(self):
        return self.min is not None and self.max is not None


UNBOUNDED = Interval(None, None)


def _c(v, t=i32):
    return E.Const(t, v)


def _min(a, b):
    if a is None or b is None:
        return None
    return E.Min(a, b)


def _max(a, b):
    if a is None or b is None:
        return None
    return E.Max(a, b)


def union(a: Interval, b: Interval) -> Interval:
    return Interval(_min(a.min, b.min), _max(a.max, b.max))


def type_bounds(t: Type) -> Interval:
    """Bounds implied by a type; 32/64-bit ints and floats count as unbounded."""
    if t.is_bool():
        return Interval(_c(0, t), _c(1, t))
    if (t.is_int() or t.is_uint()) and t.bits() < 32:
        return Interval(_c(t.min(), t), _c(t.max(), t))
    if t.is_uint() and t.bits() >= 32:
        return Interval(_c(0, t), None)
    return UNBOUNDED


class _Bounds:
    def __init__(self, scope):
        self.scope = dict(scope)

    def b(self, e) -> Interval:
        m = getattr(self, "b_" + type(e).__name__, None)
        if m is None:
            return type_bounds(e.type)
        r = m(e)
        return r

    def b_Const(self, e):
        return Interval.point(e)

    def b_Variable(self, e):
        if e.name in self.scope:
            return self.scope[e.name]
        return Interval.point(e)

    def b_Cast(self, e):
        src = self.b(e.value)
        t, s = e.type, e.value.type
        if t.is_float() or (not s.is_float() and _fits(t, s)):
            return Interval(_cast(t, src.min), _cast(t, src.max))
        if s.is_float() and src.is_bounded() and t.bits() >= 32:
            # float -> int truncates toward zero: monotonic
            return Interval(_cast(t, src.min), _cast(t, src.max))
        # narrowing cast: exact only when the source range provably fits
        tb = type_bounds(t)
        if src.is_bounded() and isinstance(src.min, E.Const) and isinstance(src.max, E.Const) \
                and t.can_represent(src.min.value) and t.can_represent(src.max.value):
            return Interval(_c(src.min.value, t), _c(src.max.value, t))
        return tb

    def b_Reinterpret(self, e):
        return type_bounds(e.type)

    def b_Add(self, e):
        a, b = self.b(e.a), self.b(e.b)
        return _checked(e.type, Interval(_op(E.Add, a.min, b.min), _op(E.Add, a.max, b.max)))

    def b_Sub(self, e):
        a, b = self.b(e.a), self.b(e.b)
        return _checked(e.type, Interval(_op(E.Sub, a.min, b.max), _op(E.Sub, a.max, b.min)))

    def b_Mul(self, e):
        a, b = self.b(e.a), self.b(e.b)
        if isinstance(e.b, E.Const) or (b.is_bounded() and b.min == b.max and
                                        isinstance(b.min, E.Const)):
            k = b.min
            if not a.is_bounded() and (a.min is None and a.max is None):
                return _checked(e.type, UNBOUNDED)
            if k.value >= 0:
                return _checked(e.type, Interval(_op(E.Mul, a.min, k), _op(E.Mul, a.max, k)))
            return _checked(e.type, Interval(_op(E.Mul, a.max, k), _op(E.Mul, a.min, k)))
        if isinstance(e.a, E.Const):
            return self.b_Mul(E.Mul(e.b, e.a))
        if not (a.is_bounded() and b.is_bounded()):
            return _checked(e.type, UNBOUNDED)
        ps = [E.Mul(x, y) for x in (a.min, a.max) for y in (b.min, b.max)]
        lo = E.Min(E.Min(ps[0], ps[1]), E.Min(ps[2], ps[3]))
        hi = E.Max(E.Max(ps[0], ps[1]), E.Max(ps[2], ps[3]))
        return _checked(e.type, Interval(lo, hi))

    def b_Div(self, e):
        a, b = self.b(e.a), self.b(e.b)
        if e.type.is_float():
            return UNBOUNDED
        if isinstance(e.b, E.Const):
            k = e.b.value
            if k == 0:
                return Interval.point(_c(0, e.type))
            if k > 0:
                return Interval(_op(E.Div, a.min, e.b), _op(E.Div, a.max, e.b))
            iv = Interval(_op(E.Div, a.max, e.b), _op(E.Div, a.min, e.b))
            return _checked(e.type, iv) if k == -1 else iv    # MIN / -1 wraps
        if e.type.is_uint() and a.is_bounded():
            return Interval(_c(0, e.type), a.max)               # 0 <= a / b <= a
        if a.is_bounded() and b.is_bounded():
            # |a / b| <= |a| for any nonzero b, and x/0 == 0 (narrow types:
            # |MIN| wraps, so only their range is known)
            mag = E.Max(_abs(a.min), _abs(a.max))
            return _checked(e.type, Interval(E.Sub(_c(0, e.type), mag), mag))
        return _checked(e.type, UNBOUNDED)

    def b_Mod(self, e):
        if e.type.is_float():
            return UNBOUNDED
        b = self.b(e.b)
        if isinstance(e.b, E.Const):
            k = abs(e.b.value)
            if k == 0:
                return Interval.point(_c(0, e.type))
            a = self.b(e.a)
            return Interval(_c(0, e.type), _c(k - 1, e.type))
        if b.is_bounded():
            t = e.type
            if t.is_uint():
                return Interval(_c(0, t), E.Max(E.Sub(b.max, _c(1, t)), _c(0, t)))
            # |b| of a narrow type's MIN wraps: take it 32 bits wide (|b| - 1 fits back)
            w = t if t.bits() >= 32 else i32
            mag = E.Max(_abs(_cast(w, b.min)), _abs(_cast(w, b.max)))
            return Interval(_c(0, t), _cast(t, E.Max(E.Sub(mag, _c(1, w)), _c(0, w))))
        return Interval(_c(0, e.type), None)

    def b_Min(self, e):
        a, b = self.b(e.a), self.b(e.b)
        lo = _min(a.min, b.min)
        hi = b.max if a.max is None else a.max if b.max is None else E.Min(a.max, b.max)
        return Interval(lo, hi)

    def b_Max(self, e):
        a, b = self.b(e.a), self.b(e.b)
        lo = b.min if a.min is None else a.min if b.min is None else E.Max(a.min, b.min)
        hi = _max(a.max, b.max)
        return Interval(lo, hi)

    def b_Select(self, e):
        return union(self.b(e.true_value), self.b(e.false_value))

    def b_Let(self, e):
        inner = _Bounds(self.scope)
        inner.scope[e.name] = self.b(e.value)
        return inner.b(e.body)

    def b_Call(self, e):
        if e.call_type == E.CallType.INTRINSIC:
            if e.name == "abs" and not e.type.is_float():
                a = self.b(e.args[0])
                if a.is_bounded():
                    return Interval(_c(0, e.type), _cast(e.type, E.Max(_abs(a.min), _abs(a.max))))
                return Interval(_c(0, e.type), None) if e.type.bits() >= 32 else type_bounds(e.type)
            if e.name in ("shift_left", "shift_right") and not e.type.is_float():
                from ..ir.simplify import simplify
                b = self.b(e.args[1])
                lo = simplify(b.min) if b.min is not None else None
                hi = simplify(b.max) if b.max is not None else None
                if isinstance(lo, E.Const) and isinstance(hi, E.Const) \
                        and 0 <= lo.value <= hi.value < e.type.bits():
                    if e.name == "shift_right":
                        # never overflows; monotonic in the value and the amount
                        a = self.b(e.args[0])
                        if a.is_bounded():
                            cs = [E.Call(e.type, e.name, (x, E.Const(e.args[1].type, k)),
                                         E.CallType.INTRINSIC)
                                  for x in (a.min, a.max) for k in (lo.value, hi.value)]
                            return Interval(E.Min(E.Min(cs[0], cs[1]), E.Min(cs[2], cs[3])),
                                            E.Max(E.Max(cs[0], cs[1]), E.Max(cs[2], cs[3])))
                    elif hi.value < e.type.bits() - 1:
                        # a << k is a * 2**k (Halide's simplifier rewrites it so): the
                        # same overflow rules as Mul, and a*2**k for lo <= k <= hi lies
                        # between its two ends
                        return union(*(self.b(E.Mul(e.args[0], E.Const(e.type, 1 << k)))
                                       for k in (lo.value, hi.value)))
            if e.name in ("print", "print_when"):
                return self.b(e.args[0] if e.name == "print" else e.args[1])
        return type_bounds(e.type)


def _fits(t, s):
    """Every value of int type s is representable in int type t."""
    return t.min() <= s.min() and s.max() <= t.max()


def _cast(t, e):
    if e is None:
        return None
    if e.type == t:
        return e
    return E.Cast(t, e)


def _abs(e):
    return E.Max(e, E.Sub(E.Const(e.type, 0), e))


def _op(cls, a, b):
    if a is None or b is None:
        return None
    return cls(a, b)


def _checked(t, iv: Interval) -> Interval:
    """Narrow types and unsigned ints wrap (only signed 32/64-bit overflow is
    undefined), so symbolic arithmetic on them is not monotonic."""
    if (t.is_int() and t.bits() < 32) or t.is_uint():
        return type_bounds(t)
    return iv


def bounds_of_expr(e, scope: dict) -> Interval:
    return _Bounds(scope).b(e)
