"""Differential fuzzing of halo: random pipelines x random legal schedules.

Every case is a small Python program `build(hl, *inputs)` (generated as
source text, so a failing case *is* its own reproducer) that runs through

* halo's C backend (`Func.realize`, with the random schedule),
* halo's reference interpreter (`halo.interp.realize`, schedule-free),
* Halide itself (optional), with the very same code and schedule,

and all of them must agree: bit-exactly for integers and for floats whose
value the generator can prove exact (small dyadic rationals), with a
tolerance scaled to the magnitude of the computation otherwise (FMA
contraction and libm differences).

The generator tracks value intervals (ints) and magnitude/exactness (floats)
so that it never produces something Halide leaves undefined: signed 32/64-bit
overflow, out-of-range float->int casts, shifts by >= the bit width, INT_MIN
/ -1. Division and modulo by zero and by negative numbers *are* generated
(Halide defines them: Euclidean, x/0 == x%0 == 0).

Programs: 0-3 stages over narrow and wide ints of both signednesses and
floats, casts (plain and saturating), select, min/max, absd, shifts, bit
ops, popcount/clz/ctz, Euclidean / and %, stencils over inputs behind every
boundary condition, Tuples, inline reductions and update definitions over
RDoms (with `where`), and a Param. Schedules: split (every tail strategy),
tile, fuse, reorder, rename, vectorize, unroll, parallel, serial,
compute_root/compute_at/compute_inline, store_root/store_at, fold_storage,
reorder_storage, align_bounds, bound/bound_extent, in_/clone_in wrappers,
rfactor, atomic, specialize, compute_with (with a LoopAlignStrategy),
hoist_storage/hoist_storage_root, memoize and prefetch (every
PrefetchBoundStrategy). Each case's C code runs twice: memoized Funcs come
from the cache the second time, and both calls must agree.

With `--gpu`, every case gets a GPU schedule instead (gpu_tile, Funcs
computed at the root, per block with gpu_threads and store_in(GPUShared),
or per thread; gpu_single_thread for scatters) and runs on OpenCL, PoCL's
CPU device being enough, against Halide's OpenCL target. Kernel builds make
such a case about twice as slow, so CI leaves them to tests/test_gpu*.py.

Outcomes: ok; mismatch or crash (failures); halo_rejected (halo refuses and
Halide refuses too); halo_only_rejected (halo refuses what Halide runs: a
missing feature or an over-strict check, reported for triage);
halide_rejected (the oracle refuses or crashes after halo and the
interpreter agreed).

A case is reproducible from (seed, index[, --gpu]) for a given version of
this generator: `python -m halo.testing.fuzz --seed S --show I` prints the
standalone program; `--minimize` shrinks it.

    python -m halo.testing.fuzz --cases 2000 --seed 1 --jobs 2 --log run.jsonl
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import threading
import time
import traceback
import warnings

import numpy as np

# ---------------------------------------------------------------------------------------
# Bugs of the oracle (Halide 21) that the fuzzer met: the generator steers
# around each, and each has a minimal reproducer in the tests named.

KNOWN_HALIDE_BUGS = (
    ("int32 hl.maximum/hl.minimum and int32 min/max updates over an RDom give INT_MIN "
     "(loop-bound tightening computes `min - INT_MIN`); generated through int64 or as a "
     "select", "tests/test_fuzz_regressions.py::test_int32_max_update_from_int_min"),
    ("cast(u32, cast(i64, f)) is folded into cast(u32, f), undefined for negative f; "
     "the generator wraps explicitly", "Gen.cast in this module"),
    ("u32 masks of negated int64 products give 0 everywhere",
     "tests/test_fuzz_regressions.py::test_u32_masks_of_negated_int64_products"),
    ("prefetch() of an ImageParam, then of a Func, at one loop: internal error in "
     "StorageFlattening.cpp (storage_permutation.size() == op->bounds.size()); not met "
     "here, where only Funcs are prefetched (Halide's Python prefetch() takes no Buffer)",
     "f.prefetch(inp, yi, y); f.prefetch(g, yi, yi) with g computed at the root"),
    ("int32 (e - c) % K is rewritten as (e + (K - c)) % K, which overflows for K near "
     "INT_MAX: (x - 1) % 2147483647 over x = 0..5 gives 2147483646 0 -1 0 -2147483646 "
     "-2147483645; guards keep e's max + K within int32",
     "tests/test_fuzz_regressions.py::test_int32_modulo_by_a_constant_near_int_max"),
    ("memoize() of either Func of a compute_with() pair: the second call of the pipeline "
     "returns wrong values (a cache hit skips the fused loops, and the other Func's stage "
     "in them); halo refuses it",
     "tests/test_errors.py::test_memoize_of_a_func_fused_by_compute_with"),
    ("OpenCL: popcount, count_leading_zeros and count_trailing_zeros are printed as calls "
     "to halide_popcount etc., which its OpenCL C does not define (clBuildProgram fails: "
     "implicit declaration of function); GPU cases do without them",
     "f[x, y] = hl.popcount(hl.u16(x)); f.gpu_tile(x, y, xo, yo, xi, yi, 4, 4) on OpenCL"),
)


# ---------------------------------------------------------------------------------------
# types: ('i', bits) ('u', bits) ('f', bits) ('b', 1)

INT_TYPES = [("i", 8), ("i", 16), ("i", 32), ("u", 8), ("u", 16), ("u", 32), ("i", 64),
             ("u", 64)]
FLOAT_TYPES = [("f", 32), ("f", 64)]
I32 = ("i", 32)
BOOL = ("b", 1)
MANT = {32: 24, 64: 53}


def tcode(t):
    k, b = t
    return {"i": f"hl.Int({b})", "u": f"hl.UInt({b})", "f": f"hl.Float({b})",
            "b": "hl.Bool()"}[k]


def trange(t):
    k, b = t
    if k == "i":
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    if k == "u":
        return 0, (1 << b) - 1
    if k == "b":
        return 0, 1
    raise ValueError(t)


def is_int(t):
    return t[0] in "iu"


def is_float(t):
    return t[0] == "f"


def no_overflow_type(t):
    """Signed 32/64-bit: overflow is undefined in Halide."""
    return t[0] == "i" and t[1] >= 32


_TYPE_CACHE: dict = {}
_DEBUG = bool(os.environ.get("HALO_FUZZ_DEBUG"))


def _halo_proto(t):
    import halo
    x = halo.Var("x")
    if t == BOOL:
        return x < 0
    return halo.cast({"i": halo.Int, "u": halo.UInt, "f": halo.Float}[t[0]](t[1]), x)


def _from_halo_type(ht):
    if ht.is_bool():
        return BOOL
    b = ht.bits() if callable(ht.bits) else ht.bits
    if ht.is_float():
        return ("f", b)
    if ht.is_uint():
        return ("u", b)
    return ("i", b)


def result_type(op, ta, tb=None):
    """The type halo gives `a op b` (None if halo refuses the combination)."""
    key = (op, ta, tb)
    if key in _TYPE_CACHE:
        return _TYPE_CACHE[key]
    import halo
    a = _halo_proto(ta)
    b = _halo_proto(tb) if tb is not None else None
    fns = {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
        "%": lambda: a % b, "min": lambda: halo.min(a, b), "max": lambda: halo.max(a, b),
        "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b,
        "<<": lambda: a << b, ">>": lambda: a >> b, "absd": lambda: halo.absd(a, b),
        "abs": lambda: halo.abs(a), "<": lambda: a < b,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = _from_halo_type(fns[op]().type())
    except Exception:
        r = None
    _TYPE_CACHE[key] = r
    return r


# ---------------------------------------------------------------------------------------
# expression nodes

class N:
    """A generated expression: source text, type and what is known of its value.
    ints/bools: [lo, hi]; floats: |v| <= M, v a multiple of 2**-fb, `exact`
    when every backend must compute it without rounding."""
    __slots__ = ("src", "t", "lo", "hi", "M", "fb", "exact", "kids", "ff")

    def __init__(self, src, t, lo=0, hi=0, M=0.0, fb=0, exact=True, kids=()):
        self.src, self.t, self.lo, self.hi = src, t, lo, hi
        self.M, self.fb, self.exact, self.kids = M, fb, exact, tuple(kids)
        self.ff = False     # an int converted from a float
        if _DEBUG and is_int(t) and src:
            tl, th = trange(t)
            assert tl <= lo <= hi <= th, (src, t, lo, hi)

    def descendants(self):
        out = []
        for k in self.kids:
            out.append(k)
            out.extend(k.descendants())
        return out


def _fexact(t, M, fb):
    return M * (2.0 ** fb) < 2.0 ** MANT[t[1]]


def as_type(n, t):
    """Value view of `n` after an implicit conversion to t (a new N, same src)."""
    if n.t == t:
        return n
    if is_float(t):
        if is_float(n.t):
            ex = n.exact and _fexact(t, n.M, n.fb)
            return N(n.src, t, M=n.M, fb=n.fb, exact=ex)
        M = float(max(abs(n.lo), abs(n.hi)))
        return N(n.src, t, M=M, fb=0, exact=_fexact(t, M, 0))
    lo, hi = trange(t)
    if is_float(n.t):
        raise ValueError("implicit float->int")
    if lo <= n.lo and n.hi <= hi:
        return N(n.src, t, n.lo, n.hi)
    return N(n.src, t, lo, hi)


class Gen:
    """Random program generator, deterministic for a given random.Random."""

    def __init__(self, rng: random.Random, gpu: bool = False):
        self.r = rng
        self.gpu = gpu          # for OpenCL: steer around Halide's OpenCL gaps
        self.prelude: list[str] = []
        self.stages: list[dict] = []
        self.inputs: list[dict] = []
        self.rdoms: list[dict] = []
        self.params: list[dict] = []
        self.counter = 0
        self.in_reduce: set = set()     # Funcs called inside an inline reduction

    def fresh(self, base):
        self.counter += 1
        return f"{base}_{self.counter}"

    # -- leaves ------------------------------------------------------------------------
    def const(self, t=None):
        r = self.r
        t = t or r.choice(INT_TYPES + FLOAT_TYPES + [I32, I32])
        if is_float(t):
            v = r.choice([0.0, 1.0, -1.0, 0.5, 2.25, -3.75, 7.0, 0.125, -0.5, 100.0])
            return N(f"hl.cast({tcode(t)}, {v!r})", t, M=abs(v), fb=3, exact=True)
        lo, hi = trange(t)
        v = r.choice([0, 1, -1, 2, -2, 3, 5, -7, 16, 100, -128, 127, 255, lo, hi, lo + 1,
                      hi - 1, 1000, -1000, 65535, 32767])
        v = min(max(v, lo), hi, (1 << 63) - 1)
        return N(f"hl.cast({tcode(t)}, {v})", t, v, v)

    def leaf(self, ctx):
        r = self.r
        opts = ["var", "var", "const"]
        if ctx["calls"]:
            opts += ["call"] * 4
        if self.inputs:
            opts += ["input"] * 3
        if ctx.get("rvars"):
            opts += ["rvar"] * 2
        if self.params:
            opts += ["param"]
        k = r.choice(opts)
        if k == "var":
            v = r.choice(ctx["vars"])
            return N(v, I32, -64, 160)
        if k == "rvar":
            code, lo, hi = r.choice(ctx["rvars"])
            return N(code, I32, lo, hi)
        if k == "param":
            p = r.choice(self.params)
            return N(p["name"], I32, p["lo"], p["hi"])
        if k == "const":
            return self.const()
        if k == "input":
            inp = r.choice(self.inputs)
            args = self.call_args(ctx, 2)
            if r.random() < 0.25:
                a = f"hl.clamp({args[0]}, 0, {inp['w'] - 1}), hl.clamp({args[1]}, 0, {inp['h'] - 1})"
                src = f"{inp['name']}[{a}]"
            else:
                src = f"{inp['bc']}[{', '.join(args)}]"
            return self._valnode(src, inp["val"])
        st = r.choice(ctx["calls"])
        args = self.call_args(ctx, 2)
        k = r.randrange(len(st["vals"]))
        src = f"{st['name']}[{', '.join(args)}]"
        if len(st["vals"]) > 1:
            src += f"[{k}]"
        return self._valnode(src, st["vals"][k])

    @staticmethod
    def _valnode(src, v):
        return N(src, v.t, v.lo, v.hi, v.M, v.fb, v.exact)

    def call_args(self, ctx, n):
        r = self.r
        out = []
        for i in range(n):
            v = ctx["vars"][i] if i < len(ctx["vars"]) else "0"
            off = r.choice([0, 0, 0, 1, -1, 2, -2])
            rv = ctx.get("rvars")
            if rv and r.random() < 0.4:
                code = rv[i % len(rv)][0]
                v = f"{v} + {code}"
            out.append(f"{v} + {off}" if off > 0 else f"{v} - {-off}" if off < 0 else v)
        return out

    # -- composite ------------------------------------------------------------------------
    def expr(self, ctx, depth):
        r = self.r
        if depth <= 0 or r.random() < 0.2:
            return self.leaf(ctx)
        k = r.choice(["bin"] * 8 + ["cast", "cast", "select", "select", "unary", "unary",
                                    "reduce" if ctx.get("allow_reduce", True) else "bin"])
        if k == "bin":
            return self.binop(ctx, depth)
        if k == "cast":
            a = self.expr(ctx, depth - 1)
            return self.cast(a, r.choice(INT_TYPES + FLOAT_TYPES), saturate=r.random() < 0.2)
        if k == "select":
            c = self.cond(ctx, depth - 1)
            a, b = self.expr(ctx, depth - 1), self.expr(ctx, depth - 1)
            if b.t != a.t:
                b = self.cast(b, a.t)
            a, b = self.wrap_ref(a), self.wrap_ref(b)
            if is_float(a.t):
                return N(f"hl.select({c.src}, {a.src}, {b.src})", a.t, M=max(a.M, b.M),
                         fb=max(a.fb, b.fb), exact=a.exact and b.exact, kids=(c, a, b))
            return N(f"hl.select({c.src}, {a.src}, {b.src})", a.t, min(a.lo, b.lo),
                     max(a.hi, b.hi), kids=(c, a, b))
        if k == "unary":
            return self.unary(self.expr(ctx, depth - 1))
        return self.reduce(ctx, depth)

    @staticmethod
    def wrap_ref(n):
        """Halide's Python select(c, FuncRef, FuncRef) picks its Tuple overload."""
        if re.search(r"\]\[\d\]$", n.src) or n.src.startswith("in"):
            return n
        if re.fullmatch(r"\w+\[[^\[\]]*(\[[^\[\]]*\][^\[\]]*)*\](\[\d\])?", n.src) or n.src.endswith("]"):
            return N(f"hl.Expr({n.src})", n.t, n.lo, n.hi, n.M, n.fb, n.exact, kids=n.kids)
        return n

    def cond(self, ctx, depth):
        r = self.r
        if depth > 0 and r.random() < 0.25:
            a, b = self.cond(ctx, depth - 1), self.cond(ctx, depth - 1)
            op = r.choice(["&", "|"])
            return N(f"({a.src} {op} {b.src})", BOOL, 0, 1, kids=(a, b))
        a, b = self.comparable(ctx, depth), self.comparable(ctx, depth)
        op = r.choice(["<", "<=", "==", "!=", ">", ">="])
        if result_type("<", a.t, b.t) is None:
            b = self.cast(b, a.t)
        return N(f"({a.src} {op} {b.src})", BOOL, 0, 1, kids=(a, b))

    def comparable(self, ctx, depth):
        for _ in range(5):
            a = self.expr(ctx, depth)
            if is_int(a.t) or (is_float(a.t) and a.exact):
                return a
        return N("x", I32, -64, 160)

    def guard(self, n, K, force=False):
        """`n % K` (Euclidean: in [0, K-1]), used to keep values small."""
        if not is_int(n.t):
            return n
        K = min(K, trange(n.t)[1])
        if n.t == I32:
            # Halide 21 rewrites (e - c) % K as (e + (K - c)) % K, which
            # overflows unless e's max + K fits (KNOWN_HALIDE_BUGS)
            K = min(K, trange(n.t)[1] - max(n.hi, 0))
        K = max(2, K)
        if force or max(abs(n.lo), abs(n.hi)) >= K:
            return N(f"({n.src} % {K})", n.t, 0, K - 1, kids=(n,))
        return n

    def binop(self, ctx, depth):
        r = self.r
        a, b = self.expr(ctx, depth - 1), self.expr(ctx, depth - 1)
        op = r.choice(["+", "-", "*", "/", "%", "min", "max", "&", "|", "^", "<<", ">>",
                       "absd", "+", "-", "*"])
        if r.random() < 0.1 and (is_int(a.t) or is_float(a.t)):
            # a bare Python literal on the right, coerced to a's type
            lit = r.randint(0, 7)
            if op in ("<<", ">>", "&", "|", "^") and not is_int(a.t):
                op = "+"
            b = N(str(lit), a.t if is_int(a.t) else a.t, lit, lit, M=float(lit), fb=0)
            if op in ("<<", ">>"):
                lit = min(lit, a.t[1] - 1)
                b = N(str(lit), a.t, lit, lit)
        return self.binop_nodes(op, a, b)

    def binop_nodes(self, op, a, b):
        r = self.r
        if is_float(a.t) or is_float(b.t):
            if op not in ("+", "-", "*", "min", "max", "/"):
                op = r.choice(["+", "-", "*", "min", "max", "/"])
            return self.fbin(op, a, b)
        if op in ("&", "|", "^"):
            if a.t != b.t and not b.src.isdigit():
                b = self.cast(b, a.t)
            t = a.t
            A, B = as_type(a, t), as_type(b, t)
            if A.lo >= 0 and B.lo >= 0:
                top = (1 << max(A.hi, B.hi).bit_length()) - 1
                lo, hi = 0, (min(A.hi, B.hi) if op == "&" else top)
            else:
                lo, hi = trange(t)
            return N(f"({a.src} {op} {b.src})", t, lo, hi, kids=(a, b))
        if op in ("<<", ">>"):
            if not b.src.isdigit():
                S = r.choice([2, 4, 8])
                b = N(f"({b.src} % {S})", b.t, 0, S - 1, kids=(b,)) if max(abs(b.lo), abs(b.hi)) >= S or b.lo < 0 else b
            t = result_type(op, a.t, b.t)
            if t is None:
                return a
            smax = max(b.hi, 0)
            if smax >= t[1]:
                return a
            if op == "<<":
                if no_overflow_type(t):
                    K = 1 << max(t[1] - 2 - smax, 1)
                    a = self.guard(a, K)
                    A = as_type(a, t)
                    if A.lo < 0:
                        a = self.guard(a, K, force=True)
                A = as_type(a, t)
                lo, hi = min(A.lo, A.lo << smax), max(A.hi, A.hi << smax)
            else:
                A = as_type(a, t)
                lo, hi = min(A.lo, 0), max(A.hi, 0)
            lo, hi = self._wrap(t, lo, hi)
            return N(f"({a.src} {op} {b.src})", t, lo, hi, kids=(a, b))
        t = result_type(op if op != "absd" else "absd", a.t, b.t)
        if t is None:
            b = self.cast(b, a.t)
            t = result_type(op, a.t, b.t)
            if t is None:
                return a
        if op in ("+", "-", "*") and no_overflow_type(t):
            K = 1 << (t[1] - 3) if op != "*" else 1 << (t[1] // 2 - 2)
            if max(abs(as_type(a, t).lo), abs(as_type(a, t).hi)) >= K:
                a = self.guard(a, K)
            if max(abs(as_type(b, t).lo), abs(as_type(b, t).hi)) >= K:
                b = self.guard(b, K)
        if op == "/" and t[0] == "i":
            A, B = as_type(a, t), as_type(b, t)
            if A.lo <= trange(t)[0] and B.lo <= -1 <= B.hi:
                a = self.guard(a, 1 << (t[1] - 2))
        A, B = as_type(a, t), as_type(b, t)
        if op == "+":
            lo, hi = A.lo + B.lo, A.hi + B.hi
        elif op == "-":
            lo, hi = A.lo - B.hi, A.hi - B.lo
        elif op == "*":
            ps = [A.lo * B.lo, A.lo * B.hi, A.hi * B.lo, A.hi * B.hi]
            lo, hi = min(ps), max(ps)
        elif op == "/":
            m = max(abs(A.lo), abs(A.hi))
            lo, hi = (-m, m) if t[0] == "i" else (0, A.hi)
        elif op == "%":
            m = max(abs(B.lo), abs(B.hi))
            lo, hi = 0, max(m - 1, 0)
        elif op == "min":
            lo, hi = min(A.lo, B.lo), min(A.hi, B.hi)
        elif op == "max":
            lo, hi = max(A.lo, B.lo), max(A.hi, B.hi)
        else:  # absd
            lo, hi = 0, max(A.hi, B.hi) - min(A.lo, B.lo)
        if op in ("min", "max", "absd"):
            a, b = self.wrap_ref(a), self.wrap_ref(b)
        src = (f"hl.{op}({a.src}, {b.src})" if op in ("min", "max", "absd")
               else f"({a.src} {op} {b.src})")
        lo, hi = self._wrap(t, lo, hi)
        return N(src, t, lo, hi, kids=(a, b))

    @staticmethod
    def _wrap(t, lo, hi):
        tl, th = trange(t)
        if tl <= lo and hi <= th:
            return lo, hi
        return tl, th

    def fbin(self, op, a, b):
        t = result_type("+", a.t, b.t)
        if t is None or not is_float(t):
            return a
        A, B = as_type(a, t), as_type(b, t)
        if op == "*" and A.M * B.M > 1e6:
            op = "min"
        if op == "/":
            bs = f"(hl.abs({b.src}) + 1)"
            if b.t[0] == "u" and b.hi >= trange(b.t)[1]:
                # |b| + 1 wraps to 0 at the type's max: x / 0 is an infinity
                # or a NaN, which Halide (fast-math) leaves undefined
                bs = f"(hl.cast({tcode(t)}, {b.src}) + 1)"
                t2 = result_type("/", a.t, t)
            else:
                t2 = result_type("/", a.t, result_type("abs", b.t) or b.t)
            if t2 is None or not is_float(t2):
                return a
            return N(f"({a.src} / {bs})", t2, M=A.M, fb=0, exact=False, kids=(a, b))
        if op in ("+", "-"):
            M, fb = A.M + B.M, max(A.fb, B.fb)
        elif op == "*":
            M, fb = A.M * B.M, A.fb + B.fb
        else:
            M, fb = max(A.M, B.M), max(A.fb, B.fb)
        ex = A.exact and B.exact and _fexact(t, M, fb)
        src = f"hl.{op}({a.src}, {b.src})" if op in ("min", "max") else f"({a.src} {op} {b.src})"
        return N(src, t, M=M, fb=fb, exact=ex, kids=(a, b))

    def unary(self, a):
        r = self.r
        if is_float(a.t):
            k = r.choice(["abs", "floor", "ceil", "round", "sqrt", "neg", "trunc"])
            if k in ("floor", "ceil", "round", "trunc") and not a.exact:
                k = "abs"
            if k == "abs":
                return N(f"hl.abs({a.src})", a.t, M=a.M, fb=a.fb, exact=a.exact, kids=(a,))
            if k == "neg":
                return N(f"(-{a.src})", a.t, M=a.M, fb=a.fb, exact=a.exact, kids=(a,))
            if k == "sqrt":
                return N(f"hl.sqrt(hl.abs({a.src}))", a.t, M=math.sqrt(a.M) + 1, fb=0,
                         exact=False, kids=(a,))
            return N(f"hl.{k}({a.src})", a.t, M=a.M + 1, fb=0, exact=True, kids=(a,))
        if a.t == BOOL:
            return a
        k = r.choice(["abs", "not", "popcount", "clz", "ctz", "neg"])
        if k in ("popcount", "clz", "ctz") and self.gpu:
            k = "abs"       # Halide's OpenCL C lacks them (KNOWN_HALIDE_BUGS)
        if k == "abs":
            t = result_type("abs", a.t)
            m = max(abs(a.lo), abs(a.hi))
            lo, hi = self._wrap(t, 0 if a.lo <= 0 <= a.hi else min(abs(a.lo), abs(a.hi)), m)
            return N(f"hl.abs({a.src})", t, lo, hi, kids=(a,))
        if k == "not":
            if a.t[0] == "i":
                return N(f"(~{a.src})", a.t, -a.hi - 1, -a.lo - 1, kids=(a,))
            m = trange(a.t)[1]
            return N(f"(~{a.src})", a.t, m - a.hi, m - a.lo, kids=(a,))
        if k == "neg":
            if no_overflow_type(a.t) and a.lo <= trange(a.t)[0]:
                a = self.guard(a, 1 << 20)
            lo, hi = self._wrap(a.t, -a.hi, -a.lo)
            return N(f"(-{a.src})", a.t, lo, hi, kids=(a,))
        fn = {"popcount": "popcount", "clz": "count_leading_zeros",
              "ctz": "count_trailing_zeros"}[k]
        return N(f"hl.{fn}({a.src})", a.t, 0, a.t[1], kids=(a,))

    def cast(self, a, t, saturate=False):
        if a.t == t:
            return a
        if a.t == BOOL:
            if is_float(t):
                return N(f"hl.cast({tcode(t)}, {a.src})", t, M=1.0, fb=0, kids=(a,))
            return N(f"hl.cast({tcode(t)}, {a.src})", t, 0, 1, kids=(a,))
        if is_float(t):
            if is_float(a.t):
                ex = a.exact and _fexact(t, a.M, a.fb)
                return N(f"hl.cast({tcode(t)}, {a.src})", t, M=a.M, fb=a.fb, exact=ex, kids=(a,))
            M = float(max(abs(a.lo), abs(a.hi)))
            if self.gpu and t == ("f", 64) and a.lo == a.hi and M > 2 ** 24:
                # Halide's OpenCL backend prints a float64 constant with float32
                # precision (2147483647.0 becomes 2147483648.0): keep the
                # constant this folds to exact in float32
                return N(f"(hl.cast({tcode(t)}, ({a.src}) >> 8) * 256.0)", t, M=M, fb=0,
                         exact=_fexact(t, M, 0), kids=(a,))
            return N(f"hl.cast({tcode(t)}, {a.src})", t, M=M, fb=0, exact=_fexact(t, M, 0),
                     kids=(a,))
        lo, hi = trange(t)
        if is_float(a.t):
            if not a.exact:
                # a float -> int conversion of a rounded value: discontinuous, so
                # backends may legitimately differ; compare the sign instead.
                return N(f"hl.cast({tcode(t)}, {a.src} > 0)", t, 0, 1, kids=(a,))
            clo = max(lo, -(1 << 30)) if t[0] == "i" else 0
            chi = min(hi, 1 << 30)
            M = a.M
            n = N(f"hl.cast({tcode(t)}, hl.clamp({a.src}, {float(clo)!r}, {float(chi)!r}))",
                  t, max(clo, -int(M) - 1), min(chi, int(M) + 1), kids=(a,))
            n.ff = True
            return n
        if a.ff and not (lo <= a.lo and a.hi <= hi):
            # Halide 21 folds cast(u32, cast(i64, float)) into cast(u32, float),
            # which is undefined for negative values; wrap explicitly instead
            a = self.guard(a, min(hi, trange(a.t)[1]) , force=True)
        if saturate:
            return N(f"hl.saturating_cast({tcode(t)}, {a.src})", t, max(lo, a.lo),
                     min(hi, a.hi) if a.hi >= lo else lo, kids=(a,)) if a.hi >= lo and a.lo <= hi \
                else N(f"hl.saturating_cast({tcode(t)}, {a.src})", t, lo, hi, kids=(a,))
        if lo <= a.lo and a.hi <= hi:
            return N(f"hl.cast({tcode(t)}, {a.src})", t, a.lo, a.hi, kids=(a,))
        return N(f"hl.cast({tcode(t)}, {a.src})", t, lo, hi, kids=(a,))

    def reduce(self, ctx, depth):
        """An inline reduction (hl.sum/maximum/minimum) over a fresh RDom."""
        r = self.r
        rd = self.new_rdom(r.randint(1, 2))
        sub = dict(ctx, rvars=rd["rvars"], allow_reduce=False)
        e = self.expr(sub, depth - 1)
        for st in self.stages:
            if re.search(rf"\b{st['name']}\[", e.src):
                self.in_reduce.add(st["name"])
        if not re.search(rf"\b{rd['name']}\b", e.src):
            code, lo, hi = r.choice(rd["rvars"])
            e = self.binop_nodes(r.choice(["min", "max", "+"]), e, N(code, I32, lo, hi))
        fn = r.choice(["sum", "maximum", "minimum", "sum"])
        R = rd["count"]
        if fn == "sum":
            if is_float(e.t):
                M = e.M * R
                return N(f"hl.sum({e.src})", e.t, M=M, fb=e.fb, exact=e.exact and _fexact(e.t, M, e.fb),
                         kids=(e,))
            if no_overflow_type(e.t):
                e = self.guard(e, (1 << (e.t[1] - 3)) // R)
            lo, hi = self._wrap(e.t, e.lo * R if e.lo < 0 else e.lo, e.hi * R if e.hi > 0 else e.hi)
            if e.t == BOOL:
                return e
            return N(f"hl.sum({e.src})", e.t, min(lo, 0), max(hi, 0) if (lo, hi) != trange(e.t) else hi,
                     kids=(e,)) if (lo, hi) != trange(e.t) else N(f"hl.sum({e.src})", e.t, lo, hi, kids=(e,))
        if e.t == BOOL:
            return e
        for st in self.stages:
            if re.search(rf"\b{st['name']}\[", e.src):
                self.in_reduce.add(st["name"])
        if e.t == I32:
            # Halide 21 miscompiles int32 maximum/minimum (its loop-bound
            # tightening computes `min - INT_MIN`, see
            # tests/test_fuzz_regressions.py); go through int64 instead.
            return N(f"hl.cast(hl.Int(32), hl.{fn}(hl.cast(hl.Int(64), {e.src})))", e.t, e.lo, e.hi,
                     kids=(e,))
        return N(f"hl.{fn}({e.src})", e.t, e.lo, e.hi, e.M, e.fb, e.exact, kids=(e,))

    def new_rdom(self, dims):
        r = self.r
        name = self.fresh("r")
        ranges = [(r.randint(-2, 2), r.randint(1, 4)) for _ in range(dims)]
        self.prelude.append(f"{name} = hl.RDom([{', '.join(f'({a}, {b})' for a, b in ranges)}])")
        rvars = []
        for i, (a, b) in enumerate(ranges):
            rvars.append((f"{name}.{'xyzw'[i]}", a, a + b - 1))
        if r.random() < 0.2 and dims == 2:
            self.prelude.append(f"{name}.where({name}.x != {name}.y)")
        count = 1
        for _, b in ranges:
            count *= b
        rd = dict(name=name, rvars=rvars, count=count, ranges=ranges)
        self.rdoms.append(rd)
        return rd


# ---------------------------------------------------------------------------------------
# programs


class Program:
    """A generated case: everything needed to render it as a Python program."""

    def __init__(self, lines, sched, out_elems, out_name, sizes, inputs, tol, seed_idx,
                 target=None):
        self.lines = lines            # list[str]: build body before the output definition
        self.sched = sched            # list[str]: schedule lines (after the output def)
        self.out_elems = out_elems    # list[N]: output values
        self.out_name = out_name
        self.sizes = sizes
        self.inputs = inputs          # list of (dtype, h, w, lo, hi, seed, scale)
        self.tol = tol                # per output: None (exact) or atol
        self.seed_idx = seed_idx
        self.target = target          # None (the host) or "host-opencl"

    def body(self):
        out = list(self.lines)
        vals = [e.src for e in self.out_elems]
        v = vals[0] if len(vals) == 1 else "(" + ", ".join(vals) + ")"
        out.append(f"{self.out_name}[x, y] = {v}")
        out.extend(self.sched)
        out.append(f"return {self.out_name}")
        return out

    def source(self):
        ins = ", ".join(f"in{i}" for i in range(len(self.inputs)))
        lines = [f"# halo fuzz case seed={self.seed_idx[0]} index={self.seed_idx[1]}",
                 "import numpy as np", "", "SIZES = " + repr(self.sizes),
                 "TOL = " + repr(self.tol), "TARGET = " + repr(self.target), "", "",
                 "def make_inputs():", "    return ["]
        for (dt, h, w, lo, hi, s, scale) in self.inputs:
            arr = f"np.random.default_rng({s}).integers({lo}, {hi + 1}, size=({h}, {w}))"
            if scale != 1:
                arr = f"({arr} * {scale!r})"
            lines.append(f"        {arr}.astype(np.{dt}),")
        lines += ["    ]", "", "", f"def build(hl{', ' if ins else ''}{ins}):"]
        lines += ["    " + ln for ln in self.body()]
        return "\n".join(lines) + "\n"

    def standalone(self):
        return self.source() + _FOOTER


_FOOTER = '''

if __name__ == "__main__":
    import halo
    from halo.testing.fuzz import compare_program
    print(compare_program(build, make_inputs, SIZES, TOL, use_halide=True, target=TARGET))
'''


def generate(seed: int, index: int, gpu: bool = False) -> Program:
    """Case `index` of `seed`; `gpu`: with a GPU schedule, run on OpenCL."""
    rng = random.Random(f"halo-fuzz-{seed}-{index}")
    g = Gen(rng, gpu)
    r = rng
    W, H = r.randint(3, 12), r.randint(2, 9)
    g.prelude.append('x, y = hl.Var("x"), hl.Var("y")')
    # inputs
    inputs = []
    for i in range(r.choice([0, 1, 1, 2])):
        dt = r.choice(["uint8", "int16", "int32", "float32", "uint16", "int8", "float64"])
        w, h = W + r.randint(0, 3), H + r.randint(0, 3)
        if dt.startswith("float"):
            lo, hi, scale = -40, 40, 0.25
            t = ("f", int(dt[5:]))
            val = N("", t, M=10.0, fb=2, exact=True)
        else:
            t = {"uint8": ("u", 8), "int16": ("i", 16), "int32": ("i", 32), "uint16": ("u", 16),
                 "int8": ("i", 8)}[dt]
            tl, th = trange(t)
            lo, hi = (max(tl, -300), min(th, 300)) if r.random() < 0.7 else \
                (max(tl, -(1 << 31)), min(th, (1 << 31) - 1))
            scale = 1
            val = N("", t, lo, hi)
        s = r.randrange(1 << 16)
        inputs.append((dt, h, w, lo, hi, s, scale))
        bc = r.choice(["repeat_edge", "constant_exterior", "mirror_image", "mirror_interior",
                       "repeat_image"])
        if bc == "constant_exterior":
            c = "hl.cast(%s, %s)" % (tcode(t), "1.5" if is_float(t) else "7")
            g.prelude.append(f"c{i} = hl.BoundaryConditions.constant_exterior(in{i}, {c})")
        else:
            g.prelude.append(f"c{i} = hl.BoundaryConditions.{bc}(in{i})")
        g.inputs.append(dict(name=f"in{i}", bc=f"c{i}", w=w, h=h, val=val))
    if r.random() < 0.3:
        v = r.randint(-3, 5)
        g.prelude.append(f'p = hl.Param(hl.Int(32), "p", {v})')
        g.params.append(dict(name="p", lo=v, hi=v))

    nstages = r.choice([0, 1, 1, 2, 2, 3])
    body: list[str] = []
    # draws added to the generator later come from `rx`, so that every case
    # drawn before stays as it was unless the new draw changes it
    rx = random.Random(f"halo-fuzz-x-{seed}-{index}")
    for si in range(nstages):
        name = f"f{si}"
        # some stages independent of the earlier ones: their loops can be
        # fused with compute_with()
        independent = rx.random() < 0.4
        ctx = dict(vars=["x", "y"], calls=[] if independent else list(g.stages))
        nv = r.choice([1, 1, 1, 2, 3])
        vals = [g.expr(ctx, r.randint(1, 4)) for _ in range(nv)]
        body.append(f'{name} = hl.Func("{name}")')
        v = vals[0].src if nv == 1 else "(" + ", ".join(e.src for e in vals) + ")"
        body.append(f"{name}[x, y] = {v}")
        st = dict(name=name, vals=vals, updates=[], uses=set())
        if nv == 1 and vals[0].t != BOOL and r.random() < 0.45:
            _gen_update(g, st, body, W, ctx)
        g.stages.append(st)
    ctx = dict(vars=["x", "y"], calls=list(g.stages))
    nout = r.choice([1, 2, 3, 4, 6])
    outs = [g.expr(ctx, r.randint(1, 5)) for _ in range(nout)]
    body.append('out = hl.Func("out")')
    lines = list(g.prelude) + body
    # uses: which Funcs each definition calls
    if gpu:
        sched = _gen_gpu_schedule(g, rx, lines, outs, W, H)
    else:
        sched = _gen_schedule(g, r, lines, outs, W, H, rx)
    tol = [None if (not is_float(e.t) or e.exact) else 1e-5 * max(1.0, e.M) for e in outs]
    return Program(lines, sched, outs, "out", [W, H], inputs, tol, (seed, index),
                   "host-opencl" if gpu else None)


def _gen_update(g, st, body, W, ctx):
    r = g.r
    name, v = st["name"], st["vals"][0]
    t = v.t
    kind = r.choice(["rdom", "rdom", "pure", "scatter"])
    R = 1
    sub = dict(ctx)
    if kind == "scatter":
        sub = dict(ctx, vars=["y"])
    if kind != "pure":
        rd = g.new_rdom(r.randint(1, 2))
        sub = dict(sub, rvars=rd["rvars"])
        R = rd["count"]
        st["rdom"] = rd
    e = g.expr(dict(sub, allow_reduce=False), r.randint(1, 3))
    if kind != "pure" and not re.search(rf"\b{rd['name']}\b", e.src):
        # an update over an RDom it never mentions has no RVars (rfactor
        # and atomic would then be refused by both languages)
        code, lo, hi = r.choice(rd["rvars"])
        e = g.binop_nodes(r.choice(["min", "max", "+"]), e, N(code, I32, lo, hi))
    ops = ["max", "min", "+"]
    if is_int(t):
        ops.append("^")
    op = r.choice(ops)
    if op == "+" and no_overflow_type(t):
        K = 1 << (t[1] - 4)
        if max(abs(v.lo), abs(v.hi)) >= K:
            op = "max"
        else:
            e = g.guard(g.cast(e, t), max(K // (R + 1), 2))
    e = g.cast(e, t)
    if kind == "scatter":
        idx = g.cast(g.expr(dict(sub, allow_reduce=False), 2), I32)
        lhs = f"hl.clamp({idx.src}, 0, {W - 1}), y"
        self_ref = f"{name}[{lhs}]"
    else:
        lhs = "x, y"
        self_ref = f"{name}[x, y]"
    if op in ("max", "min") and t == I32:
        # Halide 21 miscompiles int32 min/max updates whose value is monotonic
        # in the RVar (see tests/test_fuzz_regressions.py); a select is the
        # same function and avoids its pattern.
        cmp = ">" if op == "max" else "<"
        rhs = f"hl.select({self_ref} {cmp} {e.src}, {self_ref}, {e.src})"
    if op in ("max", "min"):
        if t != I32:
            rhs = f"hl.{op}({self_ref}, {e.src})"
        if is_float(t):
            nv = N(v.src, t, M=max(v.M, e.M), fb=max(v.fb, e.fb), exact=v.exact and e.exact)
        else:
            nv = N(v.src, t, min(v.lo, e.lo), max(v.hi, e.hi))
    elif op == "^":
        rhs = f"({self_ref} ^ {e.src})"
        nv = N(v.src, t, *trange(t))
    else:
        rhs = f"hl.cast({tcode(t)}, {self_ref} + {e.src})"
        if is_float(t):
            M = v.M + R * e.M
            fb = max(v.fb, e.fb)
            nv = N(v.src, t, M=M, fb=fb, exact=v.exact and e.exact and _fexact(t, M, fb))
        else:
            lo, hi = v.lo + R * min(e.lo, 0), v.hi + R * max(e.hi, 0)
            nv = N(v.src, t, *Gen._wrap(t, lo, hi))
    body.append(f"{name}[{lhs}] = {rhs}")
    st["vals"] = [nv]
    st["updates"].append(dict(kind=kind, op=op, float=is_float(t),
                              select_form=op in ("max", "min") and t == I32))


TAILS_PURE = ["GuardWithIf", "ShiftInwards", "RoundUp", "Auto"]


def _calls(stages, lines, outs):
    """(Func -> its definition lines, Func -> the Funcs, "out" included, reading it)."""
    names = [s["name"] for s in stages]
    text_of = {}
    for ln in lines:
        m = re.match(r"(f\d+)\[", ln)
        if m:
            text_of.setdefault(m.group(1), []).append(ln)
    consumers = {n: set() for n in names}
    for n in names:
        for other in names:
            if other != n and any(re.search(rf"\b{n}\[", t) for t in text_of.get(other, [])):
                consumers[n].add(other)
        if any(re.search(rf"\b{n}\[", e.src) for e in outs):
            consumers[n].add("out")
    return text_of, consumers


def _gen_gpu_schedule(g, r, lines, outs, W, H):
    """A GPU schedule: `out` in 2-D tiles of threads; every other Func
    inlined, computed at the root in its own tiles (a scatter update in one
    thread), or computed per block of a consumer in tiles with gpu_threads
    (sometimes in GPU shared memory) or per thread of it."""
    text_of, consumers = _calls(g.stages, lines, outs)
    out_lines = []
    tiled = {}           # Func computed in tiles -> its (block x var, thread x var) names

    def tile(code, fname):
        # (compute_at names a loop of the Func's last stage: keep the last tiles)
        xo, yo, xi, yi = (g.fresh(n) for n in ("xo", "yo", "xi", "yi"))
        tx, ty = r.choice([2, 4, 8]), r.choice([1, 2, 4])
        if g.counter % 3:
            out_lines.append(f'{code}.gpu_tile(x, y, hl.Var("{xo}"), hl.Var("{yo}"), '
                             f'hl.Var("{xi}"), hl.Var("{yi}"), {tx}, {ty}, '
                             f'hl.TailStrategy.GuardWithIf)')
        else:
            # the same tiles spelled out, so that gpu_blocks and gpu_threads are
            # drawn too (decided by the name counter: the random stream, and so
            # every other choice of the case, stays as it was)
            v = {n: f'hl.Var("{n}")' for n in (xo, yo, xi, yi)}
            out_lines.append(f'{code}.split(x, {v[xo]}, {v[xi]}, {tx}, '
                             f'hl.TailStrategy.GuardWithIf).split(y, {v[yo]}, {v[yi]}, {ty}, '
                             f'hl.TailStrategy.GuardWithIf).reorder({v[xi]}, {v[yi]}, {v[xo]}, '
                             f'{v[yo]}).gpu_blocks({v[xo]}, {v[yo]}).gpu_threads({v[xi]}, {v[yi]})')
        tiled[fname] = (xo, xi)

    tile("out", "out")
    inlined = set()
    at_blocks = False
    for s in reversed(g.stages):
        fname = s["name"]
        cons = consumers[fname]
        scatter = any(u["kind"] == "scatter" for u in s["updates"])
        choices = ["root", "root"] + ([] if s["updates"] else ["inline"])
        if len(cons) == 1 and fname not in g.in_reduce and next(iter(cons)) in tiled \
                and not scatter:
            choices += ["block", "thread"]
        if not cons:
            choices = ["root"]
        ch = r.choice(choices)
        if ch == "inline":
            out_lines.append(f"{fname}.compute_inline()")
            inlined.add(fname)
            continue
        if ch == "root":
            out_lines.append(f"{fname}.compute_root()")
            tile(fname, fname)
            for k, u in enumerate(s["updates"]):
                if u["kind"] == "scatter":
                    # (its writes go to data-dependent places: one thread)
                    out_lines.append(f"{fname}.update({k}).gpu_single_thread()")
                    tiled.pop(fname, None)
                else:
                    tile(f"{fname}.update({k})", fname)
            continue
        (c,) = cons
        bx, tx = tiled[c]
        if ch == "block":
            out_lines.append(f'{fname}.compute_at({c}, hl.Var("{bx}"))')
            for k in range(len(s["updates"]) + 1):
                code = fname if k == 0 else f"{fname}.update({k - 1})"
                out_lines.append(f"{code}.gpu_threads(x, y)")
            if r.random() < 0.5:
                out_lines.append(f"{fname}.store_in(hl.MemoryType.GPUShared)")
            at_blocks = True
        else:
            out_lines.append(f'{fname}.compute_at({c}, hl.Var("{tx}"))')
    if at_blocks and r.random() < 0.7:
        # halo sizes shared memory by enumerating the blocks of a constant grid
        # (halo_only_rejected otherwise: a known limitation)
        out_lines.append(f"out.bound(x, 0, {W}).bound(y, 0, {H})")
    return out_lines


def _gen_schedule(g, r, lines, outs, W, H, rx):
    """Random legal schedule lines for every Func; `lines` is the algorithm.
    `rx` draws the directives added later (_gen_extras), so that adding them
    left every earlier draw, and so the rest of each case, as it was."""
    stages = g.stages
    text_of, consumers = _calls(stages, lines, outs)
    info = {"out": dict(updates=[], rdom=None)}
    for s in stages:
        info[s["name"]] = s
    out_lines = []
    dims = {}       # stage key -> dims (innermost first), dicts
    state = {}      # func -> (inlined, in_vec)

    def base_dims(fname, k):
        d = [dict(code="x", name="x", rvar=False, const=False, vec=False, orig=True),
             dict(code="y", name="y", rvar=False, const=False, vec=False, orig=True)]
        if k > 0:
            rd = info[fname].get("rdom")
            ups = info[fname]["updates"][k - 1]
            if ups["kind"] == "scatter":
                d = [d[1]]
            if rd is not None:
                d = [dict(code=c, name=c, rvar=True, const=False, vec=False, orig=True)
                     for c, _, _ in rd["rvars"]] + d
        return d

    def loop_ops(fname, k, code, pure_stage):
        key = (fname, k)
        ds = dims.setdefault(key, base_dims(fname, k))
        for _ in range(r.choice([0, 0, 1, 1, 2, 3])):
            pure = [i for i, d in enumerate(ds) if not d["rvar"]]
            op = r.choice(["split", "split", "reorder", "vectorize", "unroll", "parallel",
                           "fuse", "tile", "rename"])
            if op == "split":
                i = r.randrange(len(ds))
                d = ds[i]
                if d["rvar"]:
                    tails = ["GuardWithIf", "Auto"]
                elif d["orig"]:
                    tails = TAILS_PURE if pure_stage else ["GuardWithIf", "RoundUp", "Auto"]
                else:
                    tails = ["GuardWithIf"]
                tail = r.choice(tails)
                on, inn = g.fresh(d["name"].replace(".", "_") + "o"), g.fresh(
                    d["name"].replace(".", "_") + "i")
                mk = "hl.RVar" if d["rvar"] else "hl.Var"
                f = r.randint(2, 4)
                out_lines.append(f'{code}.split({d["code"]}, {mk}("{on}"), {mk}("{inn}"), {f}, '
                                 f'hl.TailStrategy.{tail})')
                # (Halide: both halves of a parallel loop stay parallel; halo
                # keeps only the inner one so: count both, conservatively)
                ds[i:i + 1] = [dict(code=f'{mk}("{inn}")', name=inn, rvar=d["rvar"], const=True,
                                    vec=False, orig=False, par=d.get("par", False)),
                               dict(code=f'{mk}("{on}")', name=on, rvar=d["rvar"], const=False,
                                    vec=d["vec"], orig=False, par=d.get("par", False))]
            elif op == "rename" and pure:
                i = r.choice(pure)
                d = ds[i]
                nn = g.fresh(d["name"] + "r")
                out_lines.append(f'{code}.rename({d["code"]}, hl.Var("{nn}"))')
                ds[i] = dict(d, code=f'hl.Var("{nn}")', name=nn, orig=False)
            elif op == "reorder" and len(pure) >= 2:
                sel = [ds[i] for i in pure]
                perm = sel[:]
                r.shuffle(perm)
                out_lines.append(f'{code}.reorder({", ".join(d["code"] for d in perm)})')
                for i, d in zip(pure, perm):
                    ds[i] = d
            elif op in ("vectorize", "unroll", "parallel") and pure:
                i = r.choice(pure)
                d = ds[i]
                if op != "parallel" and not d["const"] or r.random() < 0.5:
                    tails = TAILS_PURE if d["orig"] and pure_stage else ["GuardWithIf"]
                    if not pure_stage and d["orig"]:
                        tails = ["GuardWithIf", "RoundUp"]
                    f = r.randint(2, 4)
                    tail = r.choice(tails)
                    inn = g.fresh(d["name"] + "v")
                    # Halide names the inner var of a factored directive itself; use
                    # an explicit split so both languages agree on the name.
                    out_lines.append(f'{code}.split({d["code"]}, {d["code"]}, hl.Var("{inn}"), {f}, '
                                     f'hl.TailStrategy.{tail}).{op}(hl.Var("{inn}"))')
                    ds[i:i + 1] = [dict(code=f'hl.Var("{inn}")', name=inn, rvar=False, const=True,
                                        vec=op == "vectorize", orig=False),
                                   dict(d, orig=False, const=False) if not d["orig"] else
                                   dict(d, orig=False, const=False)]
                    if op == "parallel":
                        ds[i]["par"] = True
                else:
                    out_lines.append(f'{code}.{op}({d["code"]})')
                    if op == "vectorize":
                        d["vec"] = True
                    if op == "parallel":
                        d["par"] = True
            elif op == "fuse":
                cands = [i for i in range(len(ds) - 1)
                         if not ds[i]["rvar"] and not ds[i + 1]["rvar"]]
                if cands:
                    i = r.choice(cands)
                    nf = g.fresh("fz")
                    out_lines.append(f'{code}.fuse({ds[i]["code"]}, {ds[i + 1]["code"]}, hl.Var("{nf}"))')
                    ds[i:i + 2] = [dict(code=f'hl.Var("{nf}")', name=nf, rvar=False,
                                        const=ds[i]["const"] and ds[i + 1]["const"],
                                        vec=False, orig=False)]
            elif op == "tile" and {"x", "y"} <= {ds[i]["name"] for i in pure}:
                xo, yo, xi, yi = (g.fresh(n) for n in ("xo", "yo", "xi", "yi"))
                tail = r.choice(TAILS_PURE if pure_stage else ["GuardWithIf", "RoundUp"])
                out_lines.append(f'{code}.tile(x, y, hl.Var("{xo}"), hl.Var("{yo}"), hl.Var("{xi}"), '
                                 f'hl.Var("{yi}"), {r.randint(2, 4)}, {r.randint(2, 3)}, '
                                 f'hl.TailStrategy.{tail})')
                rest = [d for d in ds if d["name"] not in ("x", "y")]
                nr = [d for d in rest if d["rvar"]]
                np_ = [d for d in rest if not d["rvar"]]
                par = {d["name"]: d.get("par", False) for d in ds}
                mk = lambda n, c, old: dict(code=f'hl.Var("{n}")', name=n, rvar=False, const=c,
                                            vec=False, orig=False, par=par[old])
                ds[:] = nr + [mk(xi, True, "x"), mk(yi, True, "y"), mk(xo, False, "x"),
                              mk(yo, False, "y")] + np_
        return ds

    # atomic / rfactor on update stages
    special_update = {}
    for s in stages:
        if s["updates"] and s.get("rdom") is not None:
            u = s["updates"][0]
            # (halo's associativity check knows min/max, not their select form)
            if u["op"] in ("+", "max", "min") and not (u["float"] and u["op"] == "+") \
                    and not u["select_form"]:
                c = r.random()
                if c < 0.15:
                    special_update[s["name"]] = "atomic"
                elif c < 0.45 and u["kind"] != "scatter":
                    special_update[s["name"]] = "rfactor"

    order = ["out"] + [s["name"] for s in reversed(stages)]
    for fname in order:
        nup = len(info[fname]["updates"])
        loop_ops(fname, 0, fname, True)
        for k in range(1, nup + 1):
            code = f"{fname}.update({k - 1})"
            sp = special_update.get(fname)
            if sp == "atomic":
                rv = info[fname]["rdom"]["rvars"][-1][0]
                out_lines.append(f"{code}.atomic().parallel({rv})")
                dims[(fname, k)] = base_dims(fname, k)
                continue
            if sp == "rfactor":
                u = g.fresh("u")
                rv = info[fname]["rdom"]["rvars"][-1][0]
                im = g.fresh("intm")
                out_lines.append(f'{im} = {code}.rfactor({rv}, hl.Var("{u}"))')
                out_lines.append(f"{im}.compute_root()")
                if r.random() < 0.5:
                    out_lines.append(f'{im}.update(0).parallel(hl.Var("{u}"))')
                dims[(fname, k)] = [d for d in base_dims(fname, k) if d["code"] != rv]
                continue
            loop_ops(fname, k, code, False)
    # compute levels, consumers before producers
    state["out"] = (False, any(d.get("vec") for d in dims[("out", 0)]))
    at_targets = set()
    placed = {}     # computed (not inlined) Func -> where: see _gen_extras
    wrapped = set()
    for s in reversed(stages):
        fname = s["name"]
        cons = consumers[fname]
        has_up = bool(s["updates"])
        choices = ([] if has_up else ["inline"]) + ["root"]
        if len(cons) == 1 and fname not in g.in_reduce:
            (c,) = cons
            if not state.get(c, (True, False))[0]:
                choices += ["at", "at"]
        if not cons:
            choices = ["root"]
        ch = r.choice(choices)
        if ch == "inline":
            out_lines.append(f"{fname}.compute_inline()")
            (c,) = cons if len(cons) == 1 else (next(iter(cons)),)
            state[fname] = (True, state.get(c, (False, False))[1] if len(cons) == 1 else False)
            continue
        if ch == "root":
            out_lines.append(f"{fname}.compute_root()")
            state[fname] = (False, False)
            placed[fname] = dict(ch="root")
        else:
            (c,) = cons
            nup = len(info[c]["updates"])
            cds = dims[(c, nup)] if nup else dims[(c, 0)]
            i = r.randrange(len(cds))
            ys = [k for k, x in enumerate(cds) if x["name"] == "y"]
            if ys and r.random() < 0.3:     # row by row: sliding windows, folding
                i = ys[0]
            d = cds[i]
            ccode = c
            out_lines.append(f"{fname}.compute_at({ccode}, {d['code']})")
            at_targets.add(c)
            placed[fname] = dict(ch="at", cons=c, i=i, cds=cds, store=None, fold=False)
            if r.random() < 0.5 and not any(x.get("par") for x in cds[i:]) and \
                    not state[c][1]:
                # (Halide refuses storage outside a parallel loop it is computed in)
                j = r.randrange(i, len(cds) + 1)
                if j == len(cds):
                    out_lines.append(f"{fname}.store_root()")
                else:
                    out_lines.append(f"{fname}.store_at({ccode}, {cds[j]['code']})")
                placed[fname]["store"] = j
                if d["name"] == "y" and j > i and not s["updates"] and r.random() < 0.6:
                    # a circular buffer over y: every y a consumer row reads
                    # lies within 16 rows (stencil offsets <= 2, RDoms <= 6)
                    out_lines.append(f"{fname}.fold_storage(y, 16)")
                    placed[fname]["fold"] = True
            in_vec = state[c][1] or any(x.get("vec") for x in cds[i:])
            if in_vec:
                # see tests/test_schedules.py: a parallel producer inside a
                # vectorized loop is a known limitation; keep producers serial
                for k in range(len(s["updates"]) + 1):
                    for x in dims.get((fname, k), []):
                        if x.get("par"):
                            scode = fname if k == 0 else f"{fname}.update({k - 1})"
                            out_lines.append(f"{scode}.serial({x['code']})")
                            x["par"] = False
            state[fname] = (False, in_vec)
        if r.random() < 0.15:
            out_lines.append(f"{fname}.reorder_storage(y, x)")
        if r.random() < 0.1 and ch == "root":
            out_lines.append(f"{fname}.align_bounds(x, 2)")
        if r.random() < 0.15 and ch == "root" and "out" in cons and fname not in g.in_reduce:
            # (Halide cannot wrap a Func that `out` calls only inside an
            # inline reduction: the reduction is its own Func)
            # wrappers: for one consumer, for all, or a private copy
            w = g.fresh("w")
            how = r.choice(["in_(out)", "in_()", "clone_in(out)"])
            if len(cons) > 1 and how == "in_(out)":
                how = "in_()"
            out_lines.append(f"{w} = {fname}.{how}")
            wrapped.add(fname)
            if r.random() < 0.7:
                out_lines.append(f"{w}.compute_root()")
    # RoundUp on the output reads past any bound() that is not a multiple of
    # the factor (a run-time error in both languages): do not waste the case
    k = 1.0 if any(ln.startswith("out.") and "RoundUp" in ln for ln in out_lines) else r.random()
    if k < 0.15:
        out_lines.append(f"out.bound(x, 0, {W}).bound(y, 0, {H})")
    elif k < 0.25:
        out_lines.append(f"out.bound_extent(x, {W})")
    # loop directives of inlined Funcs are meaningless (Halide refuses some)
    for fname, (inl, _) in state.items():
        if inl:
            out_lines[:] = [ln for ln in out_lines if not ln.startswith(fname + ".") or
                            ln == f"{fname}.compute_inline()"]
    fused = _gen_extras(g, rx, dict(placed=placed, wrapped=wrapped, dims=dims, info=info,
                                    consumers=consumers, state=state, text_of=text_of,
                                    special_update=special_update), out_lines)
    if g.params and r.random() < 0.6:
        cands = [s["name"] for s in stages if s["name"] not in at_targets and
                 s["name"] not in fused and not state.get(s["name"], (True,))[0]] + \
            (["out"] if "out" not in at_targets else [])
        if cands:
            fname = r.choice(cands)
            sp = g.fresh("sp")
            out_lines.append(f"{sp} = {fname}.specialize(p > {r.randint(-2, 3)})")
            f = r.randint(2, 4)
            vv = g.fresh("vv")
            op = r.choice(["vectorize", "unroll", "split"])
            nup = len(info[fname]["updates"])
            pd = [d for d in dims[(fname, 0)] if not d["rvar"]]
            d = r.choice(pd)["code"]
            if op == "split":
                out_lines.append(f'{sp}.split({d}, {d}, hl.Var("{vv}"), {f}, hl.TailStrategy.GuardWithIf)')
            else:
                out_lines.append(f'{sp}.split({d}, {d}, hl.Var("{vv}"), {f}, hl.TailStrategy.GuardWithIf)'
                                 f'.{op}(hl.Var("{vv}"))')
    return out_lines


def _gen_extras(g, r, sc, out_lines):
    """compute_with, hoist_storage, memoize and prefetch, drawn only where
    both languages accept them. `sc`: the schedule drawn so far (`placed`:
    Func -> dict(ch="root") or dict(ch="at", cons, i, cds, store, fold)).
    Returns the Funcs whose loops were fused (specialize() must leave them)."""
    placed, dims, info = sc["placed"], sc["dims"], sc["info"]
    fused = set()
    if len(placed) >= 2 and r.random() < 0.8:
        fused = _gen_compute_with(g, r, sc, out_lines)
    hoisted = set()
    for fname, where in placed.items():
        if where["ch"] == "at" and fname not in fused and r.random() < 0.2:
            line = _hoist_line(r, fname, where, sc)
            if line:
                out_lines.append(line)
                hoisted.add(fname)
    for fname, where in placed.items():
        # (halo keeps one cache entry per region computed: its storage must
        # be its own, not folded, hoisted or stored further out; and a cache
        # hit must not skip loops fused with another Func's)
        if len(info[fname]["vals"]) == 1 and fname not in hoisted | fused and \
                not where.get("fold") and where.get("store") is None and r.random() < 0.15:
            out_lines.append(f"{fname}.memoize()")
    stages = [("out", 0)] + [(f, k) for f in placed for k in range(len(info[f]["updates"]) + 1)]
    stages = [(f, k) for f, k in stages if k == 0 or f not in sc["special_update"]]
    for _ in range(2 if r.random() < 0.15 else 1):
        if r.random() < 0.3:
            fname, k = r.choice(stages)
            targets = [t for t, w in placed.items() if w["ch"] == "root" and
                       fname in sc["consumers"][t]]
            if targets:
                ds = dims[(fname, k)]
                a = r.randrange(len(ds))
                frm = r.randrange(a, len(ds))
                code = fname if k == 0 else f"{fname}.update({k - 1})"
                strategy = r.choice(["Clamp", "GuardWithIf", "NonFaulting"])
                out_lines.append(f"{code}.prefetch({r.choice(targets)}, {ds[a]['code']}, "
                                 f"{ds[frm]['code']}, {r.randint(1, 2)}, "
                                 f"hl.PrefetchBoundStrategy.{strategy})")
    return fused


def _gen_compute_with(g, r, sc, out_lines):
    """One `b.compute_with(a, v)` between two independent Funcs computed at
    the same level, fusing loops of the same names and kinds."""
    placed, dims, info = sc["placed"], sc["dims"], sc["info"]
    reads = {}
    for n in placed:
        todo, seen = [n], set()
        while todo:
            m = todo.pop()
            for other in placed:
                if other not in seen and any(re.search(rf"\b{other}\[", t)
                                             for t in sc["text_of"].get(m, [])):
                    seen.add(other)
                    todo.append(other)
        reads[n] = seen

    def same_level(a, b):
        wa, wb = placed[a], placed[b]
        return wa["ch"] == wb["ch"] and (wa["ch"] == "root" or (
            wa["cons"] == wb["cons"] and wa["i"] == wb["i"]))

    live, grew = {"out"}, True      # Halide refuses to fuse with a Func out never reads
    while grew:
        more = {n for n in placed if sc["consumers"][n] & live} - live
        live |= more
        grew = bool(more)
    names = sorted(n for n in placed if n in live)
    pairs = [(a, b) for a in names for b in names if a != b and same_level(a, b)
             and a not in reads[b] and b not in reads[a]
             and not ({a, b} & sc["wrapped"])]
    if not pairs:
        return set()
    a, b = r.choice(pairs)
    k = 0
    if info[a]["updates"] and info[b]["updates"] and r.random() < 0.4 and \
            a not in sc["special_update"] and b not in sc["special_update"]:
        k = 1
    da, db = list(reversed(dims[(a, k)])), list(reversed(dims[(b, k)]))   # outermost first
    common = []
    for x, y in zip(da, db):
        if x["name"] != y["name"] or x["rvar"] or y["rvar"] or \
                bool(x.get("par")) != bool(y.get("par")) or x["vec"] or y["vec"]:
            break
        common.append(y)
    if not common:
        return set()
    v = r.choice(common)
    sa, sb = (a, b) if k == 0 else (f"{a}.update(0)", f"{b}.update(0)")
    align = ""
    if r.random() < 0.3:
        align = ", hl.LoopAlignStrategy." + r.choice(["AlignStart", "AlignEnd", "NoAlign",
                                                      "Auto"])
    out_lines.append(f"{sb}.compute_with({sa}, {v['code']}{align})")
    return {a, b}


def _hoist_line(r, fname, where, sc):
    """hoist_storage at or outside the store level, never across a parallel
    or vectorized loop (one allocation would then be shared by many lanes)."""
    cds, i, c = where["cds"], where["i"], where["cons"]
    j = i if where["store"] is None else where["store"]
    if sc["state"][c][1]:
        return None
    h = r.randrange(j, len(cds) + 1)
    crossed = cds[i:h + 1]
    if any(x.get("par") or x.get("vec") for x in crossed):
        return None
    if h == len(cds):
        # the root: also outside the consumer's own loops
        if c != "out" and sc["placed"].get(c, {}).get("ch") != "root":
            return None
        return f"{fname}.hoist_storage_root()"
    return f"{fname}.hoist_storage({c}, {cds[h]['code']})"


# ---------------------------------------------------------------------------------------
# running


def _as_list(r):
    if isinstance(r, (tuple, list)):
        return [np.asarray(b) for b in r]
    return [np.asarray(r)]


def _cmp(a, b, tol):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {a.shape} != {b.shape}"
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    if a.dtype.kind == "f" and tol is not None:
        ok = np.isclose(a, b, rtol=1e-5, atol=tol, equal_nan=True)
    else:
        ok = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else (a == b)
    if ok.all():
        return None
    idx = tuple(int(i) for i in np.argwhere(~ok)[0])
    return f"{int((~ok).sum())} of {a.size} differ; first at {idx}: {a[idx]!r} vs {b[idx]!r}"


class Outcome(dict):
    """One case's result: status, detail, where (and tb for crashes)."""


def _run_halide(build, ins, sizes, target=None):
    """Halide's outputs for the program, or the exception it raised."""
    if _HALIDE_MARK:
        print(_HALIDE_MARK, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import halide
    try:
        hf = build(halide, *[halide.Buffer(a) for a in ins])
        if target is None:
            return [np.array(b) for b in _as_list(hf.realize(list(sizes)))]
        out = hf.realize(list(sizes), _halide_gpu_target())
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        for b in out:
            b.copy_to_host()
        return [np.array(b) for b in out]
    except Exception as e:
        return e


def _halide_gpu_target():
    """Halide's host target with OpenCL, seeing the ICD (PoCL) that halo uses."""
    import halide
    from halo.runtime.opencl import get_opencl, load_icd_globally
    get_opencl()        # sets PoCL up (its CPU target) as halo runs it
    if load_icd_globally() is None:
        raise RuntimeError("Halide cannot load an OpenCL ICD here")
    return halide.get_host_target().with_feature(halide.TargetFeature.OpenCL).with_feature(
        halide.TargetFeature.CLDoubles)


def _halo_refused(e, where, build, ins, sizes, use_halide, target=None):
    """halo refused the program: fine if Halide refuses it too; when Halide
    runs it, the refusal is reported (`halo_only_rejected`) for triage."""
    out = Outcome(status="halo_rejected", detail=f"{type(e).__name__}: {e}", where=where)
    if use_halide and _has_halide() and \
            not isinstance(_run_halide(build, ins, sizes, target), Exception):
        out["status"] = "halo_only_rejected"
    return out


def _has_halide():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import halide  # noqa: F401
        return True
    except ImportError:
        return False


def compare_program(build, make_inputs, sizes, tol, use_halide=True, target=None):
    """Run one program everywhere (halo and Halide on `target`: None for the
    host, or "host-opencl"). Returns a dict with `status` in ok,
    halo_rejected (Halide refuses it too, or was not asked), halo_only_rejected,
    halide_rejected, mismatch, crash, plus `detail` and `where`."""
    import halo
    from halo import interp
    ins = make_inputs()
    realize_args = [] if target is None else [halo.Target(target)]
    try:
        f = build(halo, *[halo.Buffer(a) for a in ins])
    except halo.InternalError as e:     # a halo bug, not a refusal
        return Outcome(status="crash", detail=f"building in halo: {e}", where="build",
                       tb=traceback.format_exc())
    except halo.HaloError as e:
        return _halo_refused(e, "build", build, ins, sizes, use_halide, target)
    except Exception as e:
        return Outcome(status="crash", detail=f"building in halo: {type(e).__name__}: {e}",
                       where="build", tb=traceback.format_exc())
    try:
        ours = _as_list(f.realize(list(sizes), *realize_args))
    except halo.InternalError as e:
        return Outcome(status="crash", detail=f"halo C backend: {e}", where="c",
                       tb=traceback.format_exc())
    except halo.CompileError as e:
        return _halo_refused(e, "compile", build, ins, sizes, use_halide, target)
    except halo.HaloError as e:
        # a run-time check (e.g. bound() smaller than the region RoundUp needs)
        return _halo_refused(e, "runtime", build, ins, sizes, use_halide, target)
    except Exception as e:
        return Outcome(status="crash", detail=f"halo C backend: {type(e).__name__}: {e}",
                       where="c", tb=traceback.format_exc())
    try:
        # a second call: memoized Funcs come from the cache, parallel loops
        # run in another interleaving; both must give the same values
        again = _as_list(f.realize(list(sizes), *realize_args))
    except Exception as e:
        return Outcome(status="crash", detail=f"halo C backend, second call: "
                       f"{type(e).__name__}: {e}", where="c", tb=traceback.format_exc())
    for i, (a, b) in enumerate(zip(ours, again)):
        d = _cmp(a, b, None)
        if d:
            return Outcome(status="mismatch", detail=f"output {i}: C backend, second call vs "
                           f"first: {d}", where="c_vs_c")
    try:
        ref = [np.asarray(a) for a in interp.realize(f, list(sizes))]
    except Exception as e:
        return Outcome(status="crash", detail=f"interpreter: {type(e).__name__}: {e}",
                       where="interp", tb=traceback.format_exc())
    for i, a in enumerate(ref):
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            # Halide (fast-math) defines nothing once a NaN or an infinity
            # appears: the generator should never have made this program
            return Outcome(status="crash", where="fuzzer",
                           detail=f"fuzzer: output {i} of the interpreter is not finite: the "
                                  f"program is outside Halide's defined semantics")
    if len(ours) != len(ref):
        return Outcome(status="mismatch", detail="number of outputs differ", where="c_vs_interp")
    for i, (a, b) in enumerate(zip(ours, ref)):
        d = _cmp(a, b, tol[i] if tol else None)
        if d:
            return Outcome(status="mismatch", detail=f"output {i}: C backend vs interpreter: {d}",
                           where="c_vs_interp")
    if not use_halide or not _has_halide():
        return Outcome(status="ok", detail="" if use_halide is False else "(no halide)")
    theirs = _run_halide(build, ins, sizes, target)
    if isinstance(theirs, Exception):
        return Outcome(status="halide_rejected",
                       detail=f"{type(theirs).__name__}: {str(theirs)[:300]}")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        d = _cmp(a, b, tol[i] if tol else None)
        if d:
            return Outcome(status="mismatch", detail=f"output {i}: halo vs Halide: {d}",
                           where="halo_vs_halide")
    return Outcome(status="ok", detail="")


_HALIDE_MARK = None     # set in worker processes: announces the Halide run


def load_program(src: str):
    ns: dict = {}
    exec(compile(src, "<fuzz-case>", "exec"), ns)  # our own generated source, not a file
    return ns


def run_program(prog: Program, use_halide=True):
    src = prog.source()
    ns = load_program(src)
    out = compare_program(ns["build"], ns["make_inputs"], ns["SIZES"], ns["TOL"], use_halide,
                          ns["TARGET"])
    return out


def run_case(seed, index, use_halide=True, gpu=False):
    prog = generate(seed, index, gpu)
    out = run_program(prog, use_halide)
    out["seed"], out["index"] = seed, index
    return out, prog


# ---------------------------------------------------------------------------------------
# minimizing


def _signature(o):
    return (o["status"], o.get("where"))


def minimize(prog: Program, use_halide=True, budget=80, log=None):
    """Greedy shrinking that keeps the failure signature: drop schedule lines,
    drop outputs, replace an output by one of its subexpressions (only for
    halo-internal failures, where no undefined behaviour can creep in)."""
    import copy
    base = run_program(prog, use_halide)
    sig = _signature(base)
    tries = [0]

    def still(p):
        if tries[0] >= budget:
            return False
        tries[0] += 1
        try:
            o = run_program(p, use_halide)
        except Exception:
            return False
        return _signature(o) == sig

    changed = True
    while changed and tries[0] < budget:
        changed = False
        # outputs
        if len(prog.out_elems) > 1:
            for i in range(len(prog.out_elems)):
                p = copy.copy(prog)
                p.out_elems = prog.out_elems[i:i + 1]
                p.tol = prog.tol[i:i + 1]
                if still(p):
                    prog, changed = p, True
                    break
            if changed:
                continue
        # schedule lines, one at a time (last first)
        for i in reversed(range(len(prog.sched))):
            p = copy.copy(prog)
            p.sched = prog.sched[:i] + prog.sched[i + 1:]
            if still(p):
                prog, changed = p, True
        # unused definitions
        for i in reversed(range(len(prog.lines))):
            ln = prog.lines[i]
            m = re.match(r"(\w+) = ", ln)
            if not m or m.group(1) in ("x",):
                continue
            nm = m.group(1)
            rest = [l for j, l in enumerate(prog.lines) if j != i and not l.startswith(nm + "[")
                    and not l.startswith(nm + ".")]
            used = any(re.search(rf"\b{nm}\b", l) for l in rest) or \
                any(re.search(rf"\b{nm}\b", e.src) for e in prog.out_elems) or \
                any(re.search(rf"\b{nm}\b", l) for l in prog.sched)
            if not used:
                p = copy.copy(prog)
                p.lines = [l for j, l in enumerate(prog.lines) if j != i and
                           not l.startswith(nm + "[") and not l.startswith(nm + ".")]
                if still(p):
                    prog, changed = p, True
                    break
        # subexpressions of the output
        if sig[1] != "halo_vs_halide" and len(prog.out_elems) == 1:
            e = prog.out_elems[0]
            subs = sorted(e.descendants(), key=lambda n: len(n.src))
            for s in subs:
                p = copy.copy(prog)
                p.out_elems = [s]
                p.tol = [None if (not is_float(s.t) or s.exact) else 1e-5 * max(1.0, s.M)]
                if still(p):
                    prog, changed = p, True
                    break
    return prog


# ---------------------------------------------------------------------------------------
# command line


def _worker(seed, start, count, use_halide, gpu=False):
    global _HALIDE_MARK
    _HALIDE_MARK = "HALIDE"
    for i in range(start, start + count):
        print(f"START {i}", flush=True)
        try:
            out, _ = run_case(seed, i, use_halide, gpu)
            out = dict(out)
            out.pop("tb", None)
        except Exception as e:  # generator trouble: report, never hide
            out = dict(status="crash", detail=f"fuzzer: {type(e).__name__}: {e}", where="fuzzer",
                       seed=seed, index=i)
        print("RESULT " + json.dumps(out), flush=True)


def _run_range(seed, start, count, use_halide, results, gpu=False):
    """Run cases [start, start+count) in a child process; a case that kills the
    process (a segfault in generated code) is recorded as a crash."""
    i = start
    end = start + count
    while i < end:
        cmd = [sys.executable, "-m", "halo.testing.fuzz", "--worker", "--seed", str(seed),
               "--start", str(i), "--cases", str(end - i)] + (["--halide"] if use_halide
                                                               else ["--no-halide"]) + \
            (["--gpu"] if gpu else [])
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # stderr is drained by a thread so a chatty worker cannot block on it
        err: list = []
        drain = threading.Thread(target=lambda: err.extend(p.stderr), daemon=True)
        drain.start()
        current = None
        started = False
        in_halide = False
        for line in p.stdout:
            if line.startswith("HALIDE"):
                in_halide = True
            if line.startswith("START "):
                current = int(line.split()[1])
                started = True
                in_halide = False
            elif line.startswith("RESULT "):
                results.append(json.loads(line[7:]))
                i = current + 1
                current = None
        rc = p.wait()
        drain.join()
        if not started:
            # the worker died before its first case (halo itself fails to
            # import): every further case would fail the same way
            results.append(dict(status="crash", where="worker-start", seed=seed, index=i,
                                detail=f"worker failed to start (exit {rc}); cases {i}.."
                                       f"{end - 1} not run:\n{''.join(err)[-2000:]}"))
            return
        if current is not None:
            if in_halide:   # the oracle itself crashed, after halo's C and interpreter agreed
                results.append(dict(status="halide_rejected", detail=f"Halide crashed (exit {rc})",
                                    seed=seed, index=current))
            else:
                results.append(dict(status="crash", detail=f"worker died (exit {rc})",
                                    where="process", seed=seed, index=current))
            i = current + 1
        elif rc != 0 and i < end:
            results.append(dict(status="crash", detail=f"worker exit {rc}", where="process",
                                seed=seed, index=i))
            i += 1


def run_cases(seed, start, count, jobs=1, use_halide=True, progress=None, gpu=False):
    """Run cases [start, start + count) of `seed` in `jobs` worker processes;
    returns one result dict per case (see compare_program). `progress`, if
    given, is called with the results so far every two seconds."""
    results: list = []
    jobs = max(1, jobs)
    per = (count + jobs - 1) // jobs
    threads = []
    for j in range(jobs):
        s = start + j * per
        n = min(per, start + count - s)
        if n > 0:
            th = threading.Thread(target=_run_range, args=(seed, s, n, use_halide, results,
                                                           gpu))
            th.start()
            threads.append(th)
    while any(t.is_alive() for t in threads):
        time.sleep(0.5 if progress is None else 2)
        if progress:
            progress(results)
    for t in threads:
        t.join()
    if progress:
        progress(results)
    return sorted(results, key=lambda r: r["index"])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m halo.testing.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--halide", dest="halide", action="store_true", default=True)
    ap.add_argument("--no-halide", dest="halide", action="store_false")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--show", type=int, default=None, help="print case INDEX as a program")
    ap.add_argument("--minimize", action="store_true", help="with --show: shrink it first")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--log", default=None, help="append one JSON line per case here")
    ap.add_argument("--gpu", action="store_true",
                    help="GPU schedules, run on OpenCL (PoCL's CPU device will do)")
    a = ap.parse_args(argv)
    if a.worker:
        _worker(a.seed, a.start, a.cases, a.halide, a.gpu)
        return 0
    if a.show is not None:
        prog = generate(a.seed, a.show, a.gpu)
        if a.minimize:
            prog = minimize(prog, a.halide)
        print(prog.standalone())
        print("# outcome:", dict(run_program(prog, a.halide)))
        return 0
    t0 = time.time()
    logf = open(a.log, "a") if a.log else None
    state = dict(last=0)

    def progress(results):
        if logf:
            for r_ in results[state.get("logged", 0):]:
                logf.write(json.dumps(r_) + "\n")
            logf.flush()
            state["logged"] = len(results)
        if len(results) - state["last"] >= 200:
            state["last"] = len(results)
            _summary(results, time.time() - t0, final=False)

    results = run_cases(a.seed, a.start, a.cases, jobs=a.jobs, use_halide=a.halide,
                        progress=progress, gpu=a.gpu)
    if logf:
        logf.close()
    bad = _summary(results, time.time() - t0, final=True)
    return 1 if bad else 0


def _summary(results, dt, final):
    from collections import Counter
    c = Counter(r["status"] for r in results)
    print(f"[{dt:7.1f}s] {len(results)} cases: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())),
          flush=True)
    bad = [r for r in results if r["status"] in ("mismatch", "crash")]
    if final:
        for r in sorted(bad, key=lambda r: r["index"]):
            print(f"  {r['status']}: seed={r['seed']} index={r['index']}: {r['detail'][:400]}")
        for r in sorted(results, key=lambda r: r["index"]):
            if r["status"] == "halo_only_rejected":
                print(f"  halo refuses, Halide runs: seed={r['seed']} index={r['index']}: "
                      f"{r['detail'][:300]}")
        rej = Counter(r["detail"][:90] for r in results if r["status"].endswith("rejected"))
        for k, v in rej.most_common(12):
            print(f"  rejected x{v}: {k}")
        if bad:
            print("reproduce: python -m halo.testing.fuzz --seed S --show INDEX [--minimize] "
                  "[--gpu]")
    return bad


if __name__ == "__main__":
    sys.exit(main())
