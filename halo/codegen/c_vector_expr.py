"""Vector expressions for halo.codegen.c_vector: GCC/Clang vector extensions.

`VectorExprPrinter.vector(e)` prints an expression that varies with the loop
variable of a vectorized loop as C code of type `T __attribute__((vector_size
(W * sizeof(T))))`, for the lanes of one chunk (W lanes, lane 0 at the loop
variable plus `chunk * W`); `mask(e)` prints a bool expression as a mask (a
vector of signed integers, -1 for true and 0 for false, as vector comparisons
give). Values that do not vary are scalars, broadcast where a vector needs
them; statements the vector code needs first (temporaries, loads) go to the
printer's `pre` list. Semantics are the scalar printer's (halo.ir.expr):
narrow integer arithmetic wraps (it runs on unsigned vectors), division and
modulo are Euclidean, min/max/select blend on a comparison mask.

Lane patterns: an int32/int64 value whose lanes are its lane-0 value plus
constants (`lanes_of`: the loop variable, index arithmetic) is a broadcast
plus a constant vector, and a load through such an index is a dense load, or
one or two dense loads and a shuffle (stride 2, x / 2, reversal), or a
gather. A division, a modulo or a clamp of such a value keeps a pattern only
under a condition on lane 0 (a multiple of the divisor; the clamp does not
bind): in `aligned` mode the condition is assumed and recorded, and the
caller prints the loop twice, under a runtime test of the conditions and
without them.

Anything else (a Ramp, a bool load, print or prefetch calls) raises
NotHandled; the caller then prints the loop as a scalar `omp simd` loop.
"""
from __future__ import annotations

import re

from dataclasses import dataclass

from ..ir import expr as E
from ..ir.mutator import substitute
from ..ir.types import Float, Int, UInt, i32
from .c_like import BITWISE_OPS, type_suffix


class NotHandled(Exception):
    pass


@dataclass(frozen=True)
class Lanes:
    """Lane k of an integer value is `base + offsets[k]` (base None: 0)."""
    base: object
    offsets: tuple


@dataclass(frozen=True)
class Mask:
    """A vector of `bits`-bit signed lanes, -1 (true) or 0: C code, or the
    lane values when known at compile time."""
    bits: int
    code: str | None = None
    const: tuple | None = None


_CMP = {E.EQ: "==", E.NE: "!=", E.LT: "<", E.LE: "<=", E.GT: ">", E.GE: ">="}
_CMP_PY = {E.EQ: lambda a, b: a == b, E.NE: lambda a, b: a != b,
           E.LT: lambda a, b: a < b, E.LE: lambda a, b: a <= b,
           E.GT: lambda a, b: a > b, E.GE: lambda a, b: a >= b}
_SHUFFLE_PRELUDE = """#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define HALO_HAS_SHUFFLEVECTOR 1
#endif
#endif
#ifndef HALO_HAS_SHUFFLEVECTOR
#define HALO_HAS_SHUFFLEVECTOR 0
#endif"""
_X86_INTRINSICS = """#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif"""
_SSE2_INTRINSICS = """#if defined(__SSE2__)
#include <emmintrin.h>
#endif"""
_SIDE_EFFECTS = {"print", "print_when", "prefetch", "memo_commit", "memo_hash_buffer"}


def _children(e):
    if isinstance(e, E.BinOp):
        return (e.a, e.b)
    if isinstance(e, E.Call):
        return e.args
    if isinstance(e, E.Select):
        return (e.condition, e.true_value, e.false_value)
    if isinstance(e, (E.Cast, E.Reinterpret)):
        return (e.value,)
    if isinstance(e, E.Not):
        return (e.a,)
    if isinstance(e, E.Load):
        return (e.index,)
    if isinstance(e, E.Broadcast):
        return (e.value,)
    if isinstance(e, E.Ramp):
        return (e.base, e.stride)
    return ()


def _has_load(e) -> bool:
    return isinstance(e, E.Load) or any(_has_load(c) for c in _children(e)) or \
        (isinstance(e, E.Let) and (_has_load(e.value) or _has_load(e.body)))


def _add_terms(e) -> list:
    """The terms of a tree of Adds, left to right."""
    terms, stack = [], [e]
    while stack:
        x = stack.pop()
        if isinstance(x, E.Add):
            stack += [x.b, x.a]
        else:
            terms.append(x)
    return terms


def _power_of_two(q: int) -> bool:
    return q > 0 and q & (q - 1) == 0


def _plus(base, k: int, t):
    if base is None:
        return E.Const(t, k)
    return base if k == 0 else E.Add(base, E.Const(t, k))


class VectorExprPrinter:
    """Prints vector expressions for one rendering of a vectorized loop.

    `p` is the scalar printer (names, helpers, `pre`), `var` the loop
    variable (its C variable holds lane 0), `width` the lanes of a chunk."""

    def __init__(self, p, var: str, lanes: int, width: int, aligned: bool):
        self.p, self.var, self.lanes, self.aligned = p, var, lanes, aligned
        self.chunk_width = self.width = width
        # the lanes printed now: chunk * chunk_width + phase + period * k, k < width
        # (period 2: the even or the odd lanes of a chunk, see phased_vector)
        self.chunk, self.phase, self.period = 0, 0, 1
        self.varying = {var}
        self.vvalues: dict = {}     # varying let -> value (lets substituted)
        self.vraw: dict = {}        # varying let -> value as written (names other lets)
        self.uvalues: dict = {}     # uniform let printed inside -> value (substituted)
        self.vec: dict = {}         # varying let -> {slot: code or Mask}
        self.conditions: list = []  # assumed in aligned mode (scalar bool Exprs)
        # bytes per lane of the chunk: of the widest element compared or
        # divided in registers, and of the widest element of any vector
        self.native = 0
        self.widest = 1
        self._varies_memo: dict = {}
        self._lanes_memo: dict = {}
        self._once: dict = {}       # (statement's line list, key) -> what it printed
        self._lane_names = 0

    # -- helpers ---------------------------------------------------------------------------
    def vtype(self, t, lanes=None) -> str:
        lanes = lanes or self.width
        name = f"halo_{type_suffix(t)}x{lanes}"
        if name not in self.p.helpers:
            self.p.helpers[name] = (f"typedef {self.p.ctype(t)} {name} "
                                    f"__attribute__((vector_size({lanes * t.bytes()})));")
        self.widest = max(self.widest, t.bytes() * lanes / self.chunk_width)
        return name

    def broadcast(self, t, scalar: str) -> str:
        # vector + scalar of the element type splats it (no helper function:
        # passing wide vectors by value warns about the ABI without -mavx512f)
        vt, ct = self.vtype(t), self.p.ctype(t)
        if not t.is_float():
            return f"(({vt}){{0}} + ({ct})({scalar}))"
        # Floats: `{0} + x` is a real addition (0.0f + -0.0f is +0.0f), which
        # GCC computes as a scalar add before each broadcast; an initializer
        # of one value splats it exactly and for free.
        if not re.fullmatch(r"[A-Za-z_]\w*|[-+0-9.eEpPxXa-fA-F]+f?", scalar):
            name = self.p.declare(f"splat{len(self.p.used)}", "s")
            self.p.pre.append(f"const {ct} {name} = ({ct})({scalar});")
            scalar = name
        else:
            scalar = f"({ct})({scalar})"
        return f"(({vt}){{{', '.join([scalar] * self.width)}}})"

    def convert(self, code: str, src, dst) -> str:
        """`code` (a vector of `src` lanes) converted to `dst`, lane by lane.

        gcc 12 lowers `__builtin_convertvector` between element sizes by
        unpacking halves of the source register: a 16-lane uint16 -> uint32
        takes five instructions for x86's one (vpmovzxwd), and a conversion
        of more than one size step falls back to scalar code (uint8 -> float:
        ~75 instructions for 16 lanes). So a conversion goes in steps, each an
        integer widening or narrowing or a same-size int <-> float, and a step
        that one x86 instruction does is printed as its intrinsic, behind a
        macro that falls back to the builtin where the target lacks it.
        Integers wrap and extend by the source's signedness in every step, as
        in one C conversion; floats reach narrow integers through int32 (a
        value out of the target's range is undefined either way)."""
        if src == dst:
            return code
        if src.is_float() and dst.is_float():
            return self.cast_step(code, src, dst)
        if src.is_float():               # float -> int: narrow ints through int32
            if dst.bits() >= 32:
                return self.cast_step(code, src, dst)
            return self.convert(self.cast_step(code, src, Int(32)), Int(32), dst)
        if dst.is_float():               # int -> float: narrow ints through int32
            if src.bits() >= 32:
                return self.cast_step(code, src, dst)
            return self.cast_step(self.convert(code, src, Int(32)), Int(32), dst)
        if src.bits() == dst.bits():
            return f"(({self.vtype(dst)})({code}))"           # a bit cast
        direct = self.x86_convert(code, src, dst)
        if direct:
            return direct
        wider = src.bits() < dst.bits()
        mid = src.with_bits(src.bits() * 2 if wider else src.bits() // 2)
        code = self.x86_convert(code, src, mid) or self.cast_step(code, src, mid)
        return self.convert(code, mid, dst)

    def cast_step(self, code: str, src, dst) -> str:
        return f"__builtin_convertvector({code}, {self.vtype(dst)})"

    def x86_convert(self, code: str, src, dst) -> str | None:
        """An integer widening (extension by src's signedness) or narrowing
        (truncation) that one AVX2/AVX-512 instruction does, as a macro that
        is that intrinsic where the compiler targets it; None if none fits."""
        small, large = sorted((src, dst), key=lambda t: t.bits())
        small_bytes, large_bytes = small.bytes() * self.width, large.bytes() * self.width
        if small_bytes not in (16, 32) or large_bytes not in (32, 64):
            return None
        wide = "_mm512" if large_bytes == 64 else "_mm256"
        widening = src.bits() < dst.bits()
        if widening:
            sign = "u" if src.is_uint() else "i"
            fn = f"{wide}_cvtep{sign}{src.bits()}_epi{dst.bits()}"
        else:
            fn = f"{wide}_cvtepi{src.bits()}_epi{dst.bits()}"
        need = ["__AVX512F__"] if large_bytes == 64 else \
            (["__AVX2__"] if widening else ["__AVX512F__", "__AVX512VL__"])
        if small.bits() == 8 and large.bits() == 16 and (large_bytes == 64 or not widening):
            need.append("__AVX512BW__")
        name = f"halo_cvt_{type_suffix(src)}_{type_suffix(dst)}x{self.width}"
        vt = self.vtype(dst)
        arg = f"__m{small_bytes * 8}i" if widening else f"__m{large_bytes * 8}i"
        self.x86_macro(name, "v", need, f"(({vt}){fn}(({arg})(v)))",
                       f"__builtin_convertvector((v), {vt})")
        return f"{name}({code})"

    def x86_macro(self, name, params, need, intrinsic, fallback):
        """Define macro `name(params)` once: `intrinsic` where the compiler
        targets every feature in `need`, else the portable `fallback`."""
        if name not in self.p.helpers:
            self.p.helpers.setdefault("halo_x86_intrinsics", _X86_INTRINSICS)
            self.p.helpers[name] = (
                f"#if {' && '.join(f'defined({n})' for n in need)}\n"
                f"#define {name}({params}) {intrinsic}\n"
                f"#else\n#define {name}({params}) {fallback}\n#endif")

    def x86_narrow_ops(self, size):
        """Intrinsic prefix, register type and needed features of the x86
        instructions on 8/16-bit integer lanes of a `size`-byte register."""
        if size == 16:           # (immintrin.h is included for AVX2 and up)
            self.p.helpers.setdefault("halo_sse2_intrinsics", _SSE2_INTRINSICS)
        pre, need = {16: ("_mm", "__SSE2__"), 32: ("_mm256", "__AVX2__"),
                     64: ("_mm512", "__AVX512BW__")}[size]
        return pre, f"__m{size * 8}i", [need]

    def literal(self, t, values) -> str:
        return f"(({self.vtype(t)}){{{', '.join(str(int(v)) for v in values)}}})"

    def temp(self, code: str, t, hint="v") -> str:
        name = self.p.declare(f"{hint}{len(self.p.used)}", hint)
        self.p.pre.append(f"const {self.vtype(t)} {name} = {code};")
        return name

    def printed_once(self, key):
        """What the statement being printed already declared under `key`
        (a gather's lane array, a table's registers), or None. Valid while
        its lines go to the same list (not from a select's branch into the
        statement, nor across statements)."""
        hit = self._once.get((id(self.p.pre), key))
        return hit[1] if hit is not None and hit[0] is self.p.pre else None

    def remember(self, key, value):
        self._once[(id(self.p.pre), key)] = (self.p.pre, value)   # (the list stays alive)

    def scalar(self, e) -> str:
        return self.p.expr(e)

    def need_native(self, t):
        """t's lanes are compared or divided: GCC splits such an operation
        into registers only when the vector fits one (else: one per lane)."""
        self.native = max(self.native, t.bytes() * self.width / self.chunk_width)

    def varies(self, e) -> bool:
        if isinstance(e, E.Variable):
            return e.name in self.varying
        if isinstance(e, E.Const):
            return False
        hit = self._varies_memo.get(id(e))
        if hit is not None:
            return hit[1]
        if isinstance(e, E.Let):
            r = self.varies(e.value)
            if r:
                self.varying.add(e.name)
            r = self.varies(e.body) or r
        else:
            r = any(self.varies(c) for c in _children(e))
        self._varies_memo[id(e)] = (e, r)     # (e keeps its id alive)
        return r

    def slot(self):
        return (self.chunk, self.phase, self.period, self.width)

    def lane(self, k: int) -> int:
        """The loop lane printed as lane k now."""
        return self.chunk * self.chunk_width + self.phase + self.period * k

    def chunk_var(self):
        """The loop variable at the first lane of the chunk."""
        v = E.Variable(i32, self.var)
        k = self.chunk * self.chunk_width
        return E.Add(v, E.Const(i32, k)) if k else v

    def lane_scalar(self, e, k: int) -> str:
        """e for lane k of the current chunk, as scalar C."""
        lane = self.lane(k)
        x = substitute(self.vvalues, e)
        if lane:
            x = substitute({self.var: E.Add(E.Variable(i32, self.var), E.Const(i32, lane))}, x)
        return self.p.expr(x)

    def lane_variable(self, t, code: str):
        """A Variable the scalar printer prints as `code` (one lane of a vector)."""
        self._lane_names += 1
        name = f"\0lane{self._lane_names}"
        self.p.names[name] = code
        return E.Variable(t, name)

    def assume(self, cond) -> bool:
        """Record cond (aligned mode only); False where it cannot be tested
        before the loop body (it reads memory)."""
        if not self.aligned:
            return False
        cond = substitute(self.uvalues, cond)
        if _has_load(cond):
            return False
        if cond not in self.conditions:
            self.conditions.append(cond)
        return True

    def define(self, name, value):
        """A varying let: its value for this chunk, in a temporary."""
        self.varying.add(name)
        self.vvalues[name] = substitute(self.vvalues, value)
        self.vraw[name] = value
        if value.type.is_bool():
            m = self.mask(value)
            got = m if m.const is not None else \
                Mask(m.bits, code=self.temp(m.code, Int(m.bits), "m"))
        else:
            got = self.temp(self.vector(value), value.type)
        self.vec.setdefault(name, {})[self.slot()] = got

    # -- lane patterns ------------------------------------------------------------------------
    def lanes_of(self, e):
        """Lanes(base, offsets) of an int32/int64 value, or None."""
        t = e.type
        if not (t.is_int() and t.bits() >= 32):
            return None
        key = (id(e), self.slot())
        hit = self._lanes_memo.get(key)
        if hit is None:
            hit = (e, self._lanes(e))
            self._lanes_memo[key] = hit
        return hit[1]

    def _lanes(self, e):
        w, t = self.width, e.type
        if isinstance(e, E.Const):
            return Lanes(None, (e.value,) * w)
        if not self.varies(e):
            return Lanes(e, (0,) * w)
        if isinstance(e, E.Variable):
            if e.name == self.var:
                return Lanes(self.chunk_var(), tuple(self.lane(k) - self.lane(0) + self.phase
                                                     for k in range(w)))
            value = self.vvalues.get(e.name)
            return None if value is None else self.lanes_of(value)
        if isinstance(e, E.Let):
            return self.lanes_of(substitute({e.name: e.value}, e.body))
        if isinstance(e, (E.Add, E.Sub)):
            a, b = self.lanes_of(e.a), self.lanes_of(e.b)
            if a is None or b is None:
                return None
            s = 1 if isinstance(e, E.Add) else -1
            offs = tuple(x + s * y for x, y in zip(a.offsets, b.offsets))
            if b.base is None:
                return Lanes(a.base, offs)
            if a.base is None:
                return Lanes(b.base if s == 1 else E.Sub(E.Const(t, 0), b.base), offs)
            return Lanes(type(e)(a.base, b.base), offs)
        if isinstance(e, E.Mul):
            return self._lanes_mul(e)
        if isinstance(e, E.Cast):
            src = e.value.type
            if not (src.is_int() and src.bits() <= t.bits()):
                return None
            v = self.lanes_of(e.value)
            return v and Lanes(None if v.base is None else E.Cast(t, v.base), v.offsets)
        if isinstance(e, (E.Div, E.Mod)) and isinstance(e.b, E.Const) and e.b.value > 0:
            return self._lanes_divmod(e)
        if isinstance(e, (E.Min, E.Max)):
            return self._lanes_clamp(e)
        return None

    def _lanes_mul(self, e):
        for x, y in ((e.a, e.b), (e.b, e.a)):
            if self.varies(y):
                continue
            lx = self.lanes_of(x)
            if lx is None:
                return None
            if isinstance(y, E.Const):
                return Lanes(None if lx.base is None else E.Mul(lx.base, y),
                             tuple(o * y.value for o in lx.offsets))
            if lx.base is not None and not any(lx.offsets):
                return Lanes(E.Mul(lx.base, y), lx.offsets)
            return None
        return None

    def _lanes_divmod(self, e):
        q, t = e.b.value, e.type
        a = self.lanes_of(e.a)
        if a is None:
            return None
        div = isinstance(e, E.Div)
        if a.base is None:
            return Lanes(None, tuple(o // q if div else o % q for o in a.offsets))
        # (Python's // and % are Euclidean for q > 0, as halo's are)
        r = a.offsets[0] % q
        if div and all(o % q == r for o in a.offsets):
            # floor((b + r + q m) / q) = floor((b + r) / q) + m: no condition
            return Lanes(E.Div(_plus(a.base, r, t), e.b), tuple((o - r) // q for o in a.offsets))
        # floor((b + o) / q) = b / q + floor(o / q) when q divides b
        if not self.assume(E.EQ(E.Mod(a.base, e.b), E.Const(t, 0))):
            if not div and all(o % q == r for o in a.offsets):
                return Lanes(E.Mod(_plus(a.base, r, t), e.b), (0,) * self.width)
            return None
        if div:
            return Lanes(E.Div(a.base, e.b), tuple(o // q for o in a.offsets))
        return Lanes(None, tuple(o % q for o in a.offsets))

    def _lanes_clamp(self, e):
        is_min = isinstance(e, E.Min)
        for x, y in ((e.a, e.b), (e.b, e.a)):
            if self.varies(y):
                continue
            lx, ly = self.lanes_of(x), self.lanes_of(y)
            if lx is None or ly is None:
                return None
            if lx.base is None and ly.base is None:
                pick = min if is_min else max
                return Lanes(None, tuple(pick(a, b) for a, b in zip(lx.offsets, ly.offsets)))
            # the clamp does not bind in any lane (lanes are affine: check the ends)
            if is_min:
                cond = E.LE(_plus(lx.base, max(lx.offsets), e.type), y)
            else:
                cond = E.GE(_plus(lx.base, min(lx.offsets), e.type), y)
            return lx if self.assume(cond) else None
        return None

    def lanes_vector(self, la, t) -> str:
        if la.base is None:
            return self.literal(t, la.offsets)
        base = self.broadcast(t, self.scalar(la.base))
        return f"({base} + {self.literal(t, la.offsets)})" if any(la.offsets) else base

    # -- vector values ----------------------------------------------------------------------------
    def vector(self, e) -> str:
        t = e.type
        if t.is_bool() or t.is_handle():
            raise NotHandled
        if not self.varies(e):
            return self.broadcast(t, self.scalar(e))
        if t.is_int() and t.bits() >= 32:
            la = self.lanes_of(e)
            if la is not None:
                return self.lanes_vector(la, t)
        method = getattr(self, "v_" + type(e).__name__, None)
        if method is None:
            raise NotHandled
        return method(e)

    def v_Variable(self, e):
        got = self.vec.get(e.name, {}).get(self.slot())
        if got is None:
            if e.name not in self.vvalues:
                raise NotHandled
            return self.vector(self.vvalues[e.name])   # a let of other lanes
        return got

    def v_Let(self, e):
        self.let(e)
        return self.vector(e.body)

    def let(self, e):
        if self.varies(e.value):
            self.define(e.name, e.value)
            return
        value = self.scalar(e.value)
        cname = self.p.declare(e.name)
        self.p.pre.append(f"const {self.p.ctype(e.value.type)} {cname} = {value};")
        self.uvalues[e.name] = substitute(self.uvalues, e.value)

    def v_Broadcast(self, e):
        return self.vector(e.value)

    def v_Load(self, e):
        t = e.type
        if t.is_bool() or t.is_handle():
            raise NotHandled
        buf = self.p.name(e.buffer)
        li = self.lanes_of(e.index)
        if li is not None:
            return self.patterned_load(t, buf, li, e.index.type)
        return self.gather(e, buf)

    def patterned_load(self, t, buf, li, index_type) -> str:
        w, offs = self.width, li.offsets
        base = self.scalar(li.base if li.base is not None else E.Const(index_type, 0))
        lo, hi = min(offs), max(offs)
        span = hi - lo + 1
        if span == 1:
            return self.broadcast(t, f"{buf}[{base} + {lo}]")
        b = self.p.declare(f"b{len(self.p.used)}", "base")
        self.p.pre.append(f"const {self.p.ctype(index_type)} {b} = {base};")
        if offs == tuple(range(lo, lo + w)):
            return self.dense_load(t, buf, f"{b} + {lo}", w)
        m = min(w, 1 << (span.bit_length() - 1))      # largest power of two <= span
        if 2 * m < span:                               # more than two loads: a gather
            return f"(({self.vtype(t)}){{{', '.join(f'{buf}[{b} + {o}]' for o in offs)}}})"
        # one or two dense loads of m lanes cover [lo, hi] exactly (no read
        # outside what the lanes read), then a shuffle picks the lanes
        first = self.dense_load(t, buf, f"{b} + {lo}", m)
        second = first if span == m else self.dense_load(t, buf, f"{b} + {hi - m + 1}", m)
        picks = [o - lo if o - lo < m else m + o - lo - (span - m) for o in offs]
        return self.shuffle(t, first, second, m, picks)

    def shuffle(self, t, first, second, m, picks) -> str:
        """Lanes `picks` of the 2m lanes of first and second (m-lane vectors)."""
        # gcc makes a two-source shuffle one vpermt2* only when each vector
        # fits one register; wider, it moves every lane through a scalar
        # (64 int16 lanes: 128 movzwl/vpinsrw for two loads' even lanes)
        self.need_native(t)
        self.p.helpers.setdefault("HALO_HAS_SHUFFLEVECTOR", _SHUFFLE_PRELUDE)
        vt = self.vtype(t)
        out = self.p.declare(f"shuf{len(self.p.used)}", "shuf")
        # (gcc rewrites a constructor of lanes of a loaded vector as scalar loads)
        self.p.pre.append(f"{vt} {out};")
        self.p.pre.append("#if HALO_HAS_SHUFFLEVECTOR")
        self.p.pre.append(f"{out} = __builtin_shufflevector({first}, {second}, "
                          f"{', '.join(map(str, picks))});")
        self.p.pre.append("#else")
        lanes = [f"{first}[{k}]" if k < m else f"{second}[{k - m}]" for k in picks]
        self.p.pre.append(f"{out} = ({vt}){{{', '.join(lanes)}}};")
        self.p.pre.append("#endif")
        return out

    def dense_load(self, t, buf, index, lanes) -> str:
        vt = self.vtype(t, lanes)
        tmp = self.p.declare(f"vload{len(self.p.used)}", "vload")
        self.p.pre.append(f"{vt} {tmp};")
        self.p.pre.append(f"memcpy(&{tmp}, &{buf}[{index}], sizeof {tmp});")
        return tmp

    def gather(self, e, buf) -> str:
        """One scalar load per lane (a lookup table, a data-dependent index),
        or x86 gather instructions where the target has them."""
        w, t = self.width, e.type
        lanes = self.gather_indices(e, buf)
        if lanes is None:
            loads = [f"{buf}[{self.lane_scalar(e.index, k)}]" for k in range(w)]
            return f"(({self.vtype(t)}){{{', '.join(loads)}}})"
        at, ix, iv, ix_type = lanes
        out = self.p.declare(f"vg{len(self.p.used)}", "vgather")
        if w <= 8:
            # a constructor: gcc loads the lanes and inserts them in registers
            # (through memory, the vector load after 8 scalar stores stalls
            # on store forwarding: bilateral_grid's slicing 9.9 -> 8.7 ms)
            scalar = [f"{out} = ({self.vtype(t)}){{"
                      f"{', '.join(f'{at}[{ix}[{j}]]' for j in range(w))}}};"]
        else:
            # lane by lane through memory, as a loop: gcc makes a constructor
            # of many loads into long insert chains and spills their addresses
            got = self.p.declare(f"g{len(self.p.used)}", "got")
            k = self.p.declare(f"k{len(self.p.used)}", "k")
            scalar = [f"{self.p.ctype(t)} {got}[{w}];",
                      f"for (int {k} = 0; {k} < {w}; {k}++) {got}[{k}] = {at}[{ix}[{k}]];",
                      f"memcpy(&{out}, {got}, sizeof {out});"]
        self.p.pre.append(f"{self.vtype(t)} {out};")
        variants = [v for v in (self.permute_lookup(t, buf, at, iv, ix_type),
                                self.hardware_gather(t, buf, at, iv, ix_type)) if v]
        if not variants:
            self.p.pre += scalar
            return out
        for k, (cond, lines, chunks, n) in enumerate(variants):
            # the chunks joined in registers (through memory, a load spanning
            # two narrower stores would stall on store forwarding)
            parts = []
            for c in chunks:
                part = self.p.declare(f"gp{len(self.p.used)}", "gpart")
                lines.append(f"const {self.vtype(t, n)} {part} = ({self.vtype(t, n)})({c});")
                parts.append(part)
            while len(parts) > 1:
                n *= 2
                joined = []
                for x, y in zip(parts[::2], parts[1::2]):
                    j = self.p.declare(f"gp{len(self.p.used)}", "gpart")
                    lines.append(f"const {self.vtype(t, n)} {j} = __builtin_shufflevector({x}, "
                                 f"{y}, {', '.join(map(str, range(n)))});")
                    joined.append(j)
                parts = joined
            lines.append(f"{out} = {parts[0]};")
            if len(chunks) > 1:
                self.p.helpers.setdefault("HALO_HAS_SHUFFLEVECTOR", _SHUFFLE_PRELUDE)
                cond += " && HALO_HAS_SHUFFLEVECTOR"
            self.p.pre += [f"#{'el' if k else ''}if {cond}"] + lines
        self.p.pre += ["#else"] + scalar + ["#endif"]
        return out

    # Tables of up to this many bytes are looked up with byte permutes.
    permute_table_limit = 1024

    def permute_lookup(self, t, buf, at, iv, ix_type):
        """Lanes `at[iv[k]]` of an 8-bit table that halo allocated with a
        constant size of at most 1 KiB (camera_pipe's tone curve), looked up
        in registers with AVX512-VBMI byte permutes: the table in 64-byte
        registers, each vpermi2b picks from 128 entries, the index's high
        bits choose which result each lane keeps. 64 lanes cost 8 permutes
        and 7 blends where gathers take 4 vpgatherdd of 16 lanes (and this
        reads no byte outside the table). Same contract as hardware_gather."""
        w, size = self.width, self.p.table_sizes.get(buf)
        bits = ix_type.bits()
        if t.bytes() != 1 or size is None or size > self.permute_table_limit \
                or (bits, w) not in ((16, 32), (32, 16)):
            return None                  # (an index vector of one zmm register)
        self.p.helpers.setdefault("halo_x86_intrinsics", _X86_INTRINSICS)
        regs = -(-size // 64)
        lines = []
        table = self.printed_once(("table", buf))
        if table is None:
            stem = self.p.declare(f"tbl{len(self.p.used)}", "table")
            table = [f"{stem}_{r}" for r in range(regs + regs % 2)]
            for r in range(regs):
                n = min(64, size - 64 * r)
                mask = "~(__mmask64)0" if n == 64 else f"(__mmask64)0x{(1 << n) - 1:x}"
                lines.append(f"const __m512i {table[r]} = _mm512_maskz_loadu_epi8({mask}, "
                             f"(const void *)&{buf}[{64 * r}]);")
            if regs % 2:
                lines.append(f"const __m512i {table[regs]} = _mm512_setzero_si512();")
            self.remember(("table", buf), table)
        # indices from the table's start (`at` may be an offset into it),
        # in the index's own lanes: they are below the table's size
        ct = f"int{bits}_t"
        rel = self.p.declare(f"rel{len(self.p.used)}", "rel")
        lo = self.p.declare(f"lo{len(self.p.used)}", "lo")
        hi = self.p.declare(f"hi{len(self.p.used)}", "hi")
        to_bytes = "_mm512_cvtepi16_epi8" if bits == 16 else "_mm512_cvtepi32_epi8"
        widen = "_mm512_castsi256_si512" if bits == 16 else "_mm512_castsi128_si512"
        et = f"const {self.p.ctype(t)} *"
        lines.append(f"const __m512i {rel} = _mm512_add_epi{bits}((__m512i){iv}, "
                     f"_mm512_set1_epi{bits}(({ct})(({et}){at} - ({et}){buf})));")
        srl = "_mm512_srli_epi16" if bits == 16 else "_mm512_srli_epi32"
        lines += [f"const __m512i {lo} = {widen}({to_bytes}({rel}));",
                  f"const __m512i {hi} = {widen}({to_bytes}({srl}({rel}, 7)));"]
        got = self.p.declare(f"lut{len(self.p.used)}", "lut")
        lines.append(f"__m512i {got} = _mm512_permutex2var_epi8({table[0]}, {lo}, {table[1]});")
        for k in range(1, -(-regs // 2)):
            lines.append(f"{got} = _mm512_mask_mov_epi8({got}, _mm512_cmpeq_epi8_mask({hi}, "
                         f"_mm512_set1_epi8({k})), _mm512_permutex2var_epi8({table[2 * k]}, "
                         f"{lo}, {table[2 * k + 1]}));")
        narrow = "_mm512_castsi512_si256" if w == 32 else "_mm512_castsi512_si128"
        return ("defined(__AVX512VBMI__) && defined(__AVX512BW__)", lines,
                [f"{narrow}({got})"], w)

    def hardware_gather(self, t, buf, at, iv, ix_type):
        """x86 gather instructions for lanes `at[iv[k]]`: (the #if condition
        on the target, lines that come first, the C expressions of the
        chunks of lanes in order, lanes per chunk); None where none applies.
        32/64-bit elements gather directly (vpgatherdd/dq: 16 lanes in a few
        cycles where the scalar loop takes ~2.5 cycles a lane; 8 lanes of
        32 bits with AVX2's ymm gather). 8/16-bit
        elements gather the 32-bit word that starts at each one and narrow
        it, which reads up to 3 bytes past the element: only from halo's own
        allocations, which keep those bytes readable (padded_buffers)."""
        w, eb = self.width, t.bytes()
        if ix_type.bits() > 32 or ix_type.bits() == 32 and ix_type.is_uint():
            return None                  # lane offsets must fit int32
        if eb < 4 and buf not in self.p.padded_buffers or eb not in (1, 2, 4, 8):
            return None
        n = 8 if eb == 8 else 16
        avx2 = eb == 4 and w % 16 != 0 and w % 8 == 0   # 8 lanes: one ymm gather
        if avx2:
            n = 8
        elif w % n:
            return None
        self.p.helpers.setdefault("halo_x86_intrinsics", _X86_INTRINSICS)
        saved, self.p.pre = self.p.pre, []
        ix32 = self.p.declare(f"ix32_{len(self.p.used)}", "ix32")
        ivec = self.temp(self.convert(iv, ix_type, Int(32)), Int(32), "ixv")
        lines = self.p.pre + [f"int32_t {ix32}[{w}];", f"memcpy({ix32}, &{ivec}, sizeof {ix32});"]
        self.p.pre = saved
        chunks = []
        for c in range(0, w, n):
            if avx2:
                chunks.append(f"_mm256_i32gather_epi32((const int *){at}, _mm256_loadu_si256("
                              f"(const __m256i *)&{ix32}[{c}]), 4)")
                continue
            if eb == 8:
                chunks.append(f"_mm512_i32gather_epi64(_mm256_loadu_si256((const __m256i *)"
                              f"&{ix32}[{c}]), (const void *){at}, 8)")
                continue
            g = f"_mm512_i32gather_epi32(_mm512_loadu_si512((const void *)&{ix32}[{c}]), " \
                f"(const void *){at}, {eb})"
            chunks.append(g if eb == 4 else f"_mm512_cvtepi32_epi{8 * eb}({g})")
        return "defined(__AVX2__)" if avx2 else "defined(__AVX512F__)", lines, chunks, n

    def gather_indices(self, e, buf):
        """(pointer, array): the lane indices of load e as an array, relative
        to the pointer; None where they cannot be computed as a vector. The
        index's lane-invariant part is the pointer; its varying part stays in
        its own (32-bit or narrower) type where the index widens it, as
        Halide's int32 indices."""
        mark = len(self.p.pre)
        try:
            uniform, varying = self.split_index(e.index)
            code = self.vector(varying)
        except NotHandled:
            del self.p.pre[mark:]
            return None
        # gathers at offsets of one lane vector (the corners of a trilinear
        # lookup) share its array while their lines go to the same list
        hit = self.printed_once(("lanes", code))
        if hit is not None:
            ix, iv = hit
        else:
            iv, ix = self.temp(code, varying.type, "idx"), None
        if uniform is not None:
            at = self.p.declare(f"at{len(self.p.used)}", "at")
            self.p.pre.append(f"const {self.p.ctype(e.type)} *{at} = "
                              f"&{buf}[{self.scalar(uniform)}];")
            buf = at
        if ix is None:
            ix = self.p.declare(f"ix{len(self.p.used)}", "ix")
            self.p.pre += [f"{self.p.ctype(varying.type)} {ix}[{self.width}];",
                           f"memcpy({ix}, &{iv}, sizeof {ix});"]
            self.remember(("lanes", code), (ix, iv))
        return buf, ix, iv, varying.type

    def split_index(self, e):
        """(uniform, varying): e == uniform + varying (uniform None: 0), the
        varying part with the widening casts of integers taken off."""
        if not self.varies(e):
            return e, None
        li = self.lanes_of(e)
        if li is not None and len(set(li.offsets)) == 1:
            # the same in every lane (x / 8 on an aligned chunk of 8 x):
            # uniform, so gathers that differ only by it share their lanes
            return _plus(li.base, li.offsets[0], e.type), None
        if isinstance(e, E.Variable) and e.name in self.vraw:
            value = self.vraw[e.name]
            uniform, varying = self.split_index(value)
            # nothing split off: the let's vector, printed once, serves
            return (None, e) if uniform is None and varying is value else (uniform, varying)
        if isinstance(e, E.Let):
            return self.split_index(substitute({e.name: e.value}, e.body))
        if isinstance(e, E.Add):
            (ua, va), (ub, vb) = self.split_index(e.a), self.split_index(e.b)
            if va is not None and vb is not None:
                return None, e
            return (ua if ub is None else ub if ua is None else E.Add(ua, ub)), \
                (va if vb is None else vb)
        if isinstance(e, E.Sub) and not self.varies(e.b):
            ua, va = self.split_index(e.a)
            return (E.Sub(E.Const(e.type, 0), e.b) if ua is None else E.Sub(ua, e.b)), va
        if isinstance(e, E.Mul) and e.b == E.Const(e.type, 1):
            return self.split_index(e.a)
        while isinstance(e, E.Cast) and e.type.is_int() and e.value.type.bits() <= 32 and \
                (e.value.type.is_int() or e.value.type.is_uint()) and \
                e.value.type.bits() < e.type.bits() + (1 if e.value.type.is_int() else 0):
            e = e.value                      # a widening cast keeps the value
        return None, e

    def arith(self, e, op) -> str:
        t = e.type
        a, b = self.vector(e.a), self.vector(e.b)
        if t.is_int():       # wraps (signed vector overflow would be undefined)
            u = self.vtype(UInt(t.bits()))
            return f"(({self.vtype(t)})(({u})({a}) {op} ({u})({b})))"
        return f"({a} {op} {b})"

    def v_Add(self, e):
        return self.multiply_add(e) or self.arith(e, "+")

    # -- sums of 16-bit products: pmaddwd -------------------------------------------------
    def let_value(self, e):
        """The value of a varying let (lets substituted), else `e`."""
        while isinstance(e, E.Variable) and e.name in self.vvalues:
            e = self.vvalues[e.name]
        return e

    def narrow16(self, e):
        """`e` (int32) when each lane is a 16-bit signed value (a widened
        int16, int8 or uint8, a small constant), looking through lets; else
        None."""
        e = self.let_value(e)
        if isinstance(e, E.Const):
            return e if -32768 <= e.value <= 32767 else None
        if isinstance(e, E.Cast) and not e.value.type.is_float() and not e.value.type.is_bool():
            src = e.value.type
            if (src.is_int() and src.bits() <= 16) or (src.is_uint() and src.bits() <= 8):
                return e
        return None

    def multiply_add(self, e) -> str | None:
        """An int32 sum with products of 16-bit values among its terms, as
        x86's multiply-add of 16-bit pairs (pmaddwd: lo*lo + hi*hi per 32-bit
        lane, exact, and wrapping where int32 arithmetic wraps), two
        products per instruction, accumulated with AVX-512 VNNI's vpdpwssd
        where there is one; Halide's x86 backend does the same, where the
        widened multiply would be vpmulld (two uops, twice the latency).
        Pairs are packed as `lo & 0xFFFF | hi << 16` (uniform ones once,
        as a scalar); a product left alone multiplies its widened lanes by
        the other factor's low half. Macros fall back to portable C."""
        t = e.type
        if t != i32:
            return None
        products, rest = [], []
        for x in _add_terms(e):
            if isinstance(x, E.Mul) and (self.varies(x.a) or self.varies(x.b)) \
                    and self.narrow16(x.a) is not None and self.narrow16(x.b) is not None \
                    and not any(isinstance(f, E.Const) and _power_of_two(abs(f.value))
                                for f in (x.a, x.b)):       # (a shift is cheaper)
                # the uniform factor second (packed as a scalar)
                products.append((x.b, x.a) if self.varies(x.b) else (x.a, x.b))
            else:
                rest.append(x)
        if not products:
            return None
        # uniform factors paired with uniform ones: their pack is a scalar
        products.sort(key=lambda ab: self.varies(ab[1]))
        self.need_native(t)          # the intrinsics take one register
        size = 4 * self.width
        if size not in (16, 32, 64):
            return None
        madd, dot = self.x86_multiply_add(size)
        acc = None
        for x in rest:
            acc = x if acc is None else E.Add(acc, x)
        code = None if acc is None else self.vector(acc)
        while products:
            (a, b), products = products[0], products[1:]
            if products:
                (c, d), products = products[0], products[1:]
                x, y = self.pack16(a, c), self.pack16(b, d)
            else:
                x, y = self.vector(a), self.pack16(b, None)
            code = f"{madd}({x}, {y})" if code is None else f"{dot}({code}, {x}, {y})"
        return code

    def pack16(self, lo, hi) -> str:
        """Two 16-bit values in one int32 lane, `lo` in the low half (hi
        None: 0)."""
        vt, ut = self.vtype(i32), self.vtype(UInt(32))
        if not self.varies(lo) and (hi is None or not self.varies(hi)):
            packed = f"((uint32_t)(uint16_t)({self.scalar(lo)}))"
            if hi is not None:
                packed = f"({packed} | ((uint32_t)({self.scalar(hi)}) << 16))"
            return self.broadcast(i32, f"(int32_t){packed}")
        code = f"(({ut})({self.vector(lo)}) & 0xFFFFu)"
        if hi is not None:
            code = f"({code} | (({ut})({self.vector(hi)}) << 16))"
        return f"(({vt}){code})"

    def x86_multiply_add(self, size):
        """Macros `madd(x, y)` and `dot(acc, x, y)` (acc + madd) on packed
        int32 vectors of `size` bytes: pmaddwd and vpdpwssd where targeted."""
        vt, ut, w = self.vtype(i32), self.vtype(UInt(32)), self.width
        pre, reg, need = self.x86_narrow_ops(size)
        madd, dot = f"halo_madd16_i32x{w}", f"halo_dot16_i32x{w}"
        # lo*lo + hi*hi with int32 wrapping (unsigned products)
        lo = lambda v: f"((({vt})(({ut})({v}) << 16)) >> 16)"
        hi = lambda v: f"(({vt})({v}) >> 16)"
        portable = (f"(({vt})(({ut})({lo('x')}) * ({ut})({lo('y')}) "
                    f"+ ({ut})({hi('x')}) * ({ut})({hi('y')})))")
        self.x86_macro(madd, "x, y", need,
                       f"(({vt}){pre}_madd_epi16(({reg})(x), ({reg})(y)))", portable)
        vnni = ["__AVX512VNNI__"] + (["__AVX512VL__"] if size < 64 else [])
        self.x86_macro(dot, "acc, x, y", vnni,
                       f"(({vt}){pre}_dpwssd_epi32(({reg})(acc), ({reg})(x), ({reg})(y)))",
                       f"(({vt})(({ut})(acc) + ({ut})({madd}(x, y))))")
        return madd, dot
    def v_Sub(self, e): return self.arith(e, "-")
    def v_Mul(self, e): return self.arith(e, "*")

    def v_Div(self, e):
        t = e.type
        if t.is_float():
            return f"({self.vector(e.a)} / {self.vector(e.b)})"
        if not isinstance(e.b, E.Const):
            return self.scalarize(e)      # Halide's rounding and x / 0 per lane
        q, vt = e.b.value, self.vtype(t)
        if q == 0:
            return self.broadcast(t, "0")
        if q == 1:
            return self.vector(e.a)
        a = self.temp(self.vector(e.a), t)
        if _power_of_two(q):                       # floor division: an arithmetic shift
            return f"({a} >> {q.bit_length() - 1})"
        if q == -1:
            u = self.vtype(UInt(t.bits()))
            return f"(({vt})(({u}){{0}} - ({u})({a})))"
        self.need_native(t)
        qv = self.broadcast(t, self.scalar(e.b))
        if t.is_uint():
            return f"({a} / {qv})"
        # C truncates; Euclidean rounds down for q > 0 (up for q < 0) when
        # the remainder is negative (the mask is -1 there)
        trunc = self.temp(f"({a} / {qv})", t)
        neg = f"(({vt})(({a} - {trunc} * {qv}) < {self.broadcast(t, '0')}))"
        return f"({trunc} {'+' if q > 0 else '-'} {neg})"

    def v_Mod(self, e):
        t = e.type
        if t.is_float() or not isinstance(e.b, E.Const):
            return self.scalarize(e)
        q, vt = abs(e.b.value), self.vtype(t)
        if q <= 1:
            return self.broadcast(t, "0")
        a = self.vector(e.a)
        if _power_of_two(q):                       # Euclidean: the low bits
            return f"({a} & {self.broadcast(t, str(q - 1))})"
        self.need_native(t)
        qv = self.broadcast(t, str(q))
        if t.is_uint():
            return f"({a} % {qv})"
        r = self.temp(f"({a} % {qv})", t)
        return f"({r} + ((({vt})({r} < {self.broadcast(t, '0')})) & {qv}))"

    def minmax(self, e, op) -> str:
        t = e.type
        a = self.temp(self.vector(e.a), t)
        b = self.temp(self.vector(e.b), t)
        self.need_native(t)
        blend = self.blend(Mask(t.bits(), code=f"({a} {op} {b})"), a, b, t)
        return self.x86_minmax(t, "min" if op == "<" else "max", a, b, blend) or blend

    def x86_minmax(self, t, which, a, b, blend) -> str | None:
        """min/max of one 256/512-bit register as its x86 instruction (gcc
        prints the compare-and-blend as a compare and one to four masked
        moves and logic ops). vminps/vmaxps return their second operand
        unless the first compares less/greater, as the blend does (NaN,
        signed zeros). A macro with the compare-and-blend as fallback."""
        size = t.bytes() * self.width
        if size not in (32, 64) or t.is_bfloat() or t.is_float() and t.bits() not in (32, 64):
            return None
        wide = "_mm512" if size == 64 else "_mm256"
        if t.is_float():
            fn = f"{wide}_{which}_{'ps' if t.bits() == 32 else 'pd'}"
            arg = f"__m{size * 8}{'' if t.bits() == 32 else 'd'}"
            need = ["__AVX512F__"] if size == 64 else ["__AVX__"]
        else:
            fn = f"{wide}_{which}_ep{'u' if t.is_uint() else 'i'}{t.bits()}"
            arg = f"__m{size * 8}i"
            if size == 64:
                need = ["__AVX512F__"] + (["__AVX512BW__"] if t.bits() <= 16 else [])
            else:
                need = ["__AVX2__"] if t.bits() <= 32 else ["__AVX512F__", "__AVX512VL__"]
        name = f"halo_{which}_{type_suffix(t)}x{self.width}"
        self.x86_macro(name, "a, b, blend", need,
                       f"(({self.vtype(t)}){fn}(({arg})(a), ({arg})(b)))", "(blend)")
        return f"{name}({a}, {b}, {blend})"

    def v_Min(self, e): return self.minmax(e, "<")
    def v_Max(self, e): return self.minmax(e, ">")

    def blend(self, m, a, b, t) -> str:
        """Lanes of a where m is true, else of b (a and b: vectors of t)."""
        if m.const is not None and all(m.const):
            return a
        if m.const is not None and not any(m.const):
            return b
        bits, vt = t.bits(), self.vtype(t)
        mc = self.temp(self.mask_code(m, bits), Int(bits), "m")
        if t.is_float():
            vi = self.vtype(Int(bits))
            return f"(({vt})((({vi})({a}) & {mc}) | (({vi})({b}) & ~{mc})))"
        return f"((({a}) & ({vt})({mc})) | (({b}) & ({vt})(~{mc})))"

    def v_Select(self, e):
        t = e.type
        if not self.varies(e.condition):
            return self.uniform_select(e)
        m = self.mask(e.condition, t.bits())
        if m.const is not None and len(set(m.const)) == 1:   # one arm only
            return self.vector(e.true_value if m.const[0] else e.false_value)
        return self.blend(m, self.vector(e.true_value), self.vector(e.false_value), t)

    def uniform_select(self, e) -> str:
        """A select on a lane-invariant condition: a branch, so that only the
        chosen arm is computed (arms are values: skipping one is exact)."""
        out = self.p.declare(f"sel{len(self.p.used)}", "sel")
        saved = self.p.pre
        arms = []
        for arm in (e.true_value, e.false_value):
            self.p.pre = []
            value = self.vector(arm)
            arms.append(self.p.pre + [f"{out} = {value};"])
        self.p.pre = saved
        self.p.pre.append(f"{self.vtype(e.type)} {out};")
        self.p.pre.append(f"if ({self.scalar(e.condition)}) {{")
        self.p.pre += ["    " + line for line in arms[0]]
        self.p.pre.append("} else {")
        self.p.pre += ["    " + line for line in arms[1]]
        self.p.pre.append("}")
        return out

    def v_Cast(self, e):
        src, t = e.value.type, e.type
        if src.is_handle():
            raise NotHandled
        vt = self.vtype(t)
        if src.is_bool():
            bits = t.bits()
            ones = f"(({self.vtype(Int(bits))}){{0}} - {self.mask_code(self.mask(e.value, bits), bits)})"
            return self.convert(ones, Int(bits), t)
        avg = self.rounding_average(e)
        if avg is not None:
            return avg
        return self.convert(self.vector(e.value), src, t)

    def rounding_average(self, e) -> str | None:
        """`cast(t, (wide(a) + wide(b) + 1) / 2)` with a, b of the narrow
        integer type t (the mean of two pixels, rounding up), computed in t:
        `(a | b) - ((a ^ b) >> 1)`, exact with no widening (a + b = 2(a | b)
        - (a ^ b)); x86's pavgw/pavgb where t is uint16/uint8. The widened
        sum took two extensions, two adds, a shift and a narrowing per
        register (camera_pipe's demosaic)."""
        t, v = e.type, e.value
        if not (t.is_int() or t.is_uint()) or t.bits() > 16 or \
                not (v.type.is_int() or v.type.is_uint()) or v.type.bits() <= t.bits():
            return None
        if isinstance(v, E.Div) and v.b == E.Const(v.type, 2):
            v = v.a
        elif isinstance(v, E.Call) and v.name == "shift_right" and v.args[1] == E.Const(v.type, 1):
            v = v.args[0]
        else:
            return None
        terms = [self.let_value(x) for x in _add_terms(v)]
        one = [x for x in terms if x == E.Const(v.type, 1)]
        pair = [x.value for x in terms if isinstance(x, E.Cast) and x.value.type == t]
        if len(terms) != 3 or len(one) != 1 or len(pair) != 2:
            return None
        a, b = (self.temp(self.vector(x), t) for x in pair)
        portable = f"(((a) | (b)) - (((a) ^ (b)) >> 1))"
        if t.is_uint():
            self.need_native(t)                  # pavgw/pavgb take one register
        name = f"halo_avg_{type_suffix(t)}x{self.width}"
        size = t.bytes() * self.width
        if t.is_uint() and size in (16, 32, 64):
            pre, reg, need = self.x86_narrow_ops(size)
            self.x86_macro(name, "a, b", need,
                           f"(({self.vtype(t)}){pre}_avg_epu{t.bits()}(({reg})(a), ({reg})(b)))",
                           portable)
        elif name not in self.p.helpers:
            self.p.helpers[name] = f"#define {name}(a, b) {portable}"
        return f"{name}({a}, {b})"

    def v_Reinterpret(self, e):
        src = e.value.type
        if src.is_bool() or src.is_handle() or src.bits() != e.type.bits():
            raise NotHandled
        return f"(({self.vtype(e.type)})({self.vector(e.value)}))"

    def v_Call(self, e):
        if e.call_type != E.CallType.INTRINSIC or e.name in _SIDE_EFFECTS:
            raise NotHandled
        n, t, args = e.name, e.type, e.args
        if n in BITWISE_OPS:
            return f"({self.vector(args[0])} {BITWISE_OPS[n]} {self.vector(args[1])})"
        if n == "bitwise_not":
            return f"(~{self.vector(args[0])})"
        if n in ("shift_left", "shift_right"):
            amt = args[1]
            if isinstance(amt, E.Const) and 0 <= amt.value < t.bits():
                a = self.vector(args[0])
                if n == "shift_right":
                    return f"({a} >> {amt.value})"
                u = self.vtype(UInt(t.bits()))
                return f"(({self.vtype(t)})(({u})({a}) << {amt.value}))"
            return self.scalarize(e)
        if n == "exp" and t == Float(32):
            return self.exp_f32(args[0])
        if n == "abs":
            return self.abs(args[0], t)
        if n == "absd":
            return self.absd(args[0], args[1], t)
        return self.scalarize(e)

    def exp_f32(self, x) -> str:
        """e^x in every lane, as Halide computes it: x = n ln2 + r with |r| <=
        ln2/2 (Cody-Waite: n ln2 in two parts), e^r by its degree-7 Taylor
        polynomial, times 2^n made in the exponent bits (two factors, so that
        neither overflows). Within 2 ulp of libm's expf (which halo's scalar
        code calls, one lane at a time: ~10x slower); inf, 0, NaN as expf."""
        f, i = Float(32), Int(32)
        vf, vi = self.vtype(f), self.vtype(i)
        c = lambda v: self.broadcast(f, v)   # noqa: E731
        a = self.temp(self.vector(x), f)
        self.need_native(f)
        # x beyond [-104, 89] gives 0 or inf already; NaN is fixed at the end
        lo = self.temp(self.blend(Mask(32, code=f"({a} > {c('-104.0f')})"), a, c("-104.0f"), f), f)
        xc = self.temp(self.blend(Mask(32, code=f"({lo} < {c('89.0f')})"), lo, c("89.0f"), f), f)
        shift = c("0x1.8p23f")                # adding it rounds to an integer
        z = self.temp(f"({xc} * {c('0x1.715476p+0f')} + {shift})", f)
        n = self.temp(f"({z} - {shift})", f)
        r = self.temp(f"(({xc} - {n} * {c('0x1.62e4p-1f')}) - {n} * {c('0x1.7f7d1cp-20f')})", f)
        poly = c("0x1.a01a02p-13f")
        for k in ("0x1.6c16c2p-10f", "0x1.111112p-7f", "0x1.555556p-5f", "0x1.555556p-3f",
                  "0x1p-1f", "0x1p+0f", "0x1p+0f"):
            poly = self.temp(f"({poly} * {r} + {c(k)})", f)
        ni = self.temp(f"(({vi})({z}) - {self.broadcast(i, '0x4B400000')})", i)
        half = self.temp(f"({ni} >> 1)", i)
        bias = self.broadcast(i, "127")
        s1 = f"(({vf})(({half} + {bias}) << 23))"
        s2 = f"(({vf})((({ni} - {half}) + {bias}) << 23))"
        result = self.temp(f"(({poly} * {s1}) * {s2})", f)
        return self.blend(Mask(32, code=f"({a} == {a})"), result, a, f)

    def float_abs(self, a: str, t) -> str:
        bits = t.bits()
        vi = self.vtype(Int(bits))
        low = f"INT64_C({(1 << 63) - 1})" if bits == 64 else str((1 << (bits - 1)) - 1)
        return f"(({self.vtype(t)})(({vi})({a}) & {self.broadcast(Int(bits), low)}))"

    def abs(self, x, t) -> str:
        src = x.type
        if src.is_float():
            return self.float_abs(self.vector(x), src)
        if src.is_uint():
            return self.vector(x)
        a = self.temp(self.vector(x), src)
        u = self.vtype(t)
        self.need_native(src)
        m = Mask(src.bits(), code=f"({a} < {self.broadcast(src, '0')})")
        return self.blend(m, f"(({u}){{0}} - ({u})({a}))", f"(({u})({a}))", t)

    def absd(self, x, y, t) -> str:
        src = x.type
        if src.is_float():
            return self.float_abs(f"({self.vector(x)} - {self.vector(y)})", src)
        a, b = self.temp(self.vector(x), src), self.temp(self.vector(y), src)
        u = self.vtype(t)
        self.need_native(src)
        m = Mask(src.bits(), code=f"({a} > {b})")
        return self.blend(m, f"(({u})({a}) - ({u})({b}))", f"(({u})({b}) - ({u})({a}))", t)

    def scalarize(self, e):
        """e lane by lane with the scalar printer (math functions, division
        by a variable, ...): its varying operands are vectors first."""
        args = e.args if isinstance(e, E.Call) else (e.a, e.b)
        bound = []
        for a in args:
            if a.type.is_bool() or a.type.is_handle():
                if self.varies(a):
                    raise NotHandled
                bound.append(lambda k, a=a: a)
            elif self.varies(a):
                tmp = self.temp(self.vector(a), a.type)
                bound.append(lambda k, a=a, tmp=tmp: self.lane_variable(a.type, f"{tmp}[{k}]"))
            else:
                name = self.p.declare(f"s{len(self.p.used)}", "s")
                self.p.pre.append(f"const {self.p.ctype(a.type)} {name} = {self.scalar(a)};")
                v = self.lane_variable(a.type, name)
                bound.append(lambda k, v=v: v)
        lanes = []
        for k in range(self.width):
            new = [f(k) for f in bound]
            node = (E.Call(e.type, e.name, tuple(new), e.call_type, e.value_index)
                    if isinstance(e, E.Call) else type(e)(*new))
            lanes.append(self.p.expr(node))
        if e.type.is_bool():
            vi = self.vtype(Int(32))
            return Mask(32, code=f"(({vi}){{0}} - ({vi}){{{', '.join(lanes)}}})")
        return f"(({self.vtype(e.type)}){{{', '.join(lanes)}}})"

    # -- masks ----------------------------------------------------------------------------------
    def mask_code(self, m, bits) -> str:
        if m.const is not None:
            return self.literal(Int(bits), [-1 if c else 0 for c in m.const])
        return self.convert(m.code, Int(m.bits), Int(bits))

    def mask(self, e, hint=32) -> Mask:
        """A bool expression as a Mask (`hint`: the lane width wanted, for
        masks of no natural width)."""
        w = self.width
        if isinstance(e, E.Const):
            return Mask(hint, const=(bool(e.value),) * w)
        if not self.varies(e):
            vi = self.vtype(Int(hint))
            return Mask(hint, code=f"(({vi}){{0}} - ({self.p.ctype(Int(hint))})({self.scalar(e)}))")
        if isinstance(e, tuple(_CMP)):
            return self.compare(e, hint)
        if isinstance(e, (E.And, E.Or)):
            return self.logic(self.mask(e.a, hint), self.mask(e.b, hint), "&" if isinstance(e, E.And) else "|")
        if isinstance(e, E.Not):
            return self.invert(self.mask(e.a, hint))
        if isinstance(e, E.Variable):
            got = self.vec.get(e.name, {}).get(self.slot())
            if got is None:
                if e.name not in self.vvalues:
                    raise NotHandled
                return self.mask(self.vvalues[e.name], hint)
            return got
        if isinstance(e, E.Let):
            self.let(e)
            return self.mask(e.body, hint)
        if isinstance(e, E.Cast) and not e.value.type.is_bool():
            return self.compare(E.NE(e.value, E.Const(e.value.type, 0)), hint)
        if isinstance(e, E.Cast):
            return self.mask(e.value, hint)
        if isinstance(e, E.Call) and e.call_type == E.CallType.INTRINSIC and \
                e.name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
            op = {"bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}[e.name]
            return self.logic(self.mask(e.args[0], hint), self.mask(e.args[1], hint), op)
        if isinstance(e, E.Call) and e.call_type == E.CallType.INTRINSIC and \
                e.name not in _SIDE_EFFECTS and not e.name.startswith("bitwise"):
            return self.scalarize(e)
        raise NotHandled

    def compare(self, e, hint) -> Mask:
        a, b = e.a, e.b
        if a.type.is_bool():                   # == / != of bools
            x = self.logic(self.mask(a, hint), self.mask(b, hint), "^")
            if isinstance(e, E.NE):
                return x
            if isinstance(e, E.EQ):
                return self.invert(x)
            raise NotHandled
        la, lb = self.lanes_of(a), self.lanes_of(b)
        if la is not None and lb is not None and la.base is None and lb.base is None:
            f = _CMP_PY[type(e)]
            return Mask(hint, const=tuple(f(x, y) for x, y in zip(la.offsets, lb.offsets)))
        va, vb = self.vector(a), self.vector(b)
        self.need_native(a.type)
        return Mask(a.type.bits(), code=f"({va} {_CMP[type(e)]} {vb})")

    def invert(self, m) -> Mask:
        if m.const is not None:
            return Mask(m.bits, const=tuple(not c for c in m.const))
        return Mask(m.bits, code=f"(~{m.code})")

    def logic(self, ma, mb, op) -> Mask:
        if ma.const is not None and mb.const is not None:
            f = {"&": lambda x, y: x and y, "|": lambda x, y: x or y,
                 "^": lambda x, y: x != y}[op]
            return Mask(ma.bits, const=tuple(f(x, y) for x, y in zip(ma.const, mb.const)))
        if ma.const is not None:
            ma, mb = mb, ma
        if mb.const is not None and op != "^" and len(set(mb.const)) == 1:
            keep = mb.const[0] if op == "&" else not mb.const[0]
            return ma if keep else mb
        bits = ma.bits
        return Mask(bits, code=f"({ma.code} {op} {self.mask_code(mb, bits)})")
