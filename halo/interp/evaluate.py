"""Expression evaluation on numpy arrays, with Halide's semantics.

`ExprEvaluator.eval(node, env)` returns a numpy array (possibly 0-d) of the
node's dtype. Calls to Funcs and images are delegated to the `realizer`
(the interpreter), which knows how to produce their values.
"""
from __future__ import annotations

import sys

import numpy as np

from ..errors import CompileError, InternalError
from ..ir import expr as E
from ..ir import semantics as sem


class ExprEvaluator:
    def __init__(self, realizer):
        self.realizer = realizer

    def eval(self, n, env):
        m = getattr(self, "e_" + type(n).__name__, None)
        if m is None:
            raise InternalError(f"interpreter cannot evaluate {type(n).__name__}", n)
        return m(n, env)

    def e_Const(self, n, env):
        return np.asarray(n.value, dtype=n.type.numpy_dtype())

    def e_Variable(self, n, env):
        if n.name in env:
            return env[n.name]
        return self.realizer.lookup_variable(n)

    def e_Cast(self, n, env):
        return sem.cast(n.type, n.value.type, self.eval(n.value, env))

    def e_Reinterpret(self, n, env):
        return sem.reinterpret(n.type, n.value.type, self.eval(n.value, env))

    def _bin(self, n, env):
        return self.eval(n.a, env), self.eval(n.b, env)

    def e_Add(self, n, env): return sem.add(n.type, *self._bin(n, env))
    def e_Sub(self, n, env): return sem.sub(n.type, *self._bin(n, env))
    def e_Mul(self, n, env): return sem.mul(n.type, *self._bin(n, env))
    def e_Div(self, n, env): return sem.div(n.type, *self._bin(n, env))
    def e_Mod(self, n, env): return sem.mod(n.type, *self._bin(n, env))
    def e_Min(self, n, env): return sem.minimum(n.type, *self._bin(n, env))
    def e_Max(self, n, env): return sem.maximum(n.type, *self._bin(n, env))

    def _cmp(self, op, n, env):
        return sem.compare(op, n.a.type, *self._bin(n, env))

    def e_EQ(self, n, env): return self._cmp("EQ", n, env)
    def e_NE(self, n, env): return self._cmp("NE", n, env)
    def e_LT(self, n, env): return self._cmp("LT", n, env)
    def e_LE(self, n, env): return self._cmp("LE", n, env)
    def e_GT(self, n, env): return self._cmp("GT", n, env)
    def e_GE(self, n, env): return self._cmp("GE", n, env)

    def e_And(self, n, env):
        a, b = self._bin(n, env)
        return np.logical_and(a, b)

    def e_Or(self, n, env):
        a, b = self._bin(n, env)
        return np.logical_or(a, b)

    def e_Not(self, n, env):
        return np.logical_not(self.eval(n.a, env))

    def e_Select(self, n, env):
        c = self.eval(n.condition, env)
        a = self.eval(n.true_value, env)
        b = self.eval(n.false_value, env)
        return np.asarray(np.where(c, a, b), dtype=n.type.numpy_dtype())

    def e_Let(self, n, env):
        inner = dict(env)
        inner[n.name] = self.eval(n.value, env)
        return self.eval(n.body, inner)

    def e_Broadcast(self, n, env):
        return self.eval(n.value, env)

    def e_Call(self, n, env):
        if n.call_type == E.CallType.FUNC:
            args = [self.eval(a, env) for a in n.args]
            return self.realizer.call_func(n, args)
        if n.call_type == E.CallType.IMAGE:
            args = [self.eval(a, env) for a in n.args]
            return self.realizer.call_image(n, args)
        return self.intrinsic(n, env)

    def intrinsic(self, n, env):
        name = n.name
        if name in ("print", "print_when"):
            return self._print(n, env)
        args = [self.eval(a, env) for a in n.args]
        t = n.type
        if name.startswith("bitwise_") and name != "bitwise_not":
            return sem.bitwise(name[8:], t, *args)
        if name == "bitwise_not":
            return sem.bitwise_not(t, args[0])
        if name in ("shift_left", "shift_right"):
            return sem.shift(name[6:], t, args[0], args[1], n.args[1].type)
        if name == "abs":
            return sem.abs_(n.args[0].type, t, args[0])
        if name == "absd":
            return sem.absd(n.args[0].type, t, args[0], args[1])
        if name in ("is_nan", "is_inf", "is_finite"):
            return sem.float_func(name, n.args[0].type, args[0])
        if name in sem.FLOAT_FUNCS:
            return sem.float_func(name, t, *args)
        if name == "popcount":
            return sem.popcount(t, args[0])
        if name == "count_leading_zeros":
            return sem.count_leading_zeros(t, args[0])
        if name == "count_trailing_zeros":
            return sem.count_trailing_zeros(t, args[0])
        if name == "div_round_to_zero":
            a, b = (np.asarray(x, dtype=t.numpy_dtype()) for x in args)
            with np.errstate(all="ignore"):
                q = np.where(b == 0, 0, np.trunc(a.astype(np.float64) / np.where(b == 0, 1, b)))
            if t.bits() == 64:  # float64 is inexact for big int64: use integer ops
                bb = np.where(b == 0, 1, b)
                q = np.where(b == 0, 0, np.abs(a) // np.abs(bb) * np.sign(a) * np.sign(bb))
            return q.astype(t.numpy_dtype())
        if name == "mod_round_to_zero":
            a, b = (np.asarray(x, dtype=t.numpy_dtype()) for x in args)
            bb = np.where(b == 0, 1, b)
            with np.errstate(all="ignore"):
                r = np.fmod(a, bb)
            return np.where(b == 0, 0, r).astype(t.numpy_dtype())
        raise InternalError(f"interpreter does not know intrinsic {name}", n)

    def _print(self, n, env):
        args = list(n.args)
        if n.name == "print_when":
            cond = self.eval(args[0], env)
            args = args[1:]
        else:
            cond = None
        vals = [a.value if isinstance(a, E.Const) and a.type.is_handle() else self.eval(a, env)
                for a in args]
        shape = np.broadcast_shapes(*[np.shape(v) for v in vals if not isinstance(v, str)])
        first = np.broadcast_to(vals[0], shape) if not isinstance(vals[0], str) else None
        flat = [np.broadcast_to(v, shape).ravel() if not isinstance(v, str) else v for v in vals]
        c = None if cond is None else np.broadcast_to(cond, shape).ravel()
        size = int(np.prod(shape)) if shape else 1
        for i in range(size):
            if c is not None and not c[i]:
                continue
            parts = [v if isinstance(v, str) else _fmt(v[i] if np.ndim(v) else v) for v in flat]
            sys.stdout.write(" ".join(parts) + "\n")
        return first


def _fmt(v):
    v = np.asarray(v)
    if v.dtype.kind == "f":
        return f"{float(v):f}"
    return str(v.item())
