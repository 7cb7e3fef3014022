"""Explicit SIMD for vectorized loops: GCC/Clang vector extensions.

A `vectorized` loop of constant extent N (a power of two) whose body is
lets, blocks, stores and ifs on lane-invariant conditions is printed as
straight-line vector code instead of an `omp simd` loop, as Halide does:
values that vary with the loop variable are vectors (halo.codegen.
c_vector_expr prints them), values that do not are scalars. Left to the
compiler's auto-vectorizer, such loops stay scalar when they select between
loads or gather, and a 16-lane uint16 loop that widens to uint32 runs as two
half-width halves (its vector length follows the narrowest type).

Chunks: GCC splits a vector operation wider than the target's registers
into registers only for arithmetic; a comparison (so min, max, select) or a
division by a constant that is wider becomes one scalar operation per lane.
The N lanes are therefore printed as N / W chunks of W lanes, W the most
lanes for which each such operation fits one register of `vector_bytes`
(the printer's, from the target). Every chunk of a store is computed before
any is stored: the lanes of a Halide vector run in lockstep, all loads
before the store.

Versions: where an index or value has a lane pattern only under conditions
on lane 0 (a multiple of a divisor; a clamp that does not bind), the body is
printed twice: under a runtime test of the conditions, and without them.

Anything not handled returns False, and the loop is printed as before.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import split_invariant_lets, substitute
from ..ir.simplify import simplify
from .c_vector_expr import NotHandled, VectorExprPrinter, _children

MAX_VECTOR_BYTES = 256          # one value in at most 4 AVX-512 registers
DEFAULT_VECTOR_BYTES = 16       # SSE2 / NEON, when the printer does not say


def print_vector_loop(p, loop) -> bool:
    """Print `loop` as explicit vector code with printer `p`; False (and
    nothing printed) when the loop is not of the handled form."""
    if not isinstance(loop.extent, E.Const):
        return False
    lanes = loop.extent.value
    if lanes < 2 or lanes & (lanes - 1):
        return False
    saved = (dict(p.names), set(p.used), dict(p.helpers), len(p.lines), p.indent, p.pre)
    try:
        _VectorLoop(p, loop, lanes).emit()
    except NotHandled:
        p.names, p.used, p.helpers = saved[0], saved[1], saved[2]
        del p.lines[saved[3]:]
        p.indent, p.pre = saved[4], saved[5]
        return False
    p.names = saved[0]
    return True


@dataclass
class _Rendered:
    lines: list
    conditions: list
    native: int
    widest: int


class _VectorLoop:
    def __init__(self, p, loop, lanes):
        self.p, self.loop, self.lanes, self.var = p, loop, lanes, loop.name

    def emit(self):
        p = self.p
        hoisted, body = _hoist_uniform_lets(self.loop.body, self.var)
        p.emit("{")
        p.indent += 1
        lo = p.stmt_expr(self.loop.min)
        v = p.declare(self.var)
        p.emit(f"const int32_t {v} = {lo};")       # lane 0
        for name, value in hoisted:
            val = p.stmt_expr(value)
            p.emit(f"const {p.ctype(value.type)} {p.declare(name)} = {val};")
        width = self._chunk_width(body)
        fast = self._render(body, width, aligned=True)
        if fast.conditions:
            general = self._render(body, width, aligned=False)
            cond = fast.conditions[0]
            for c in fast.conditions[1:]:
                cond = E.And(cond, c)
            p.emit(f"if ({p.stmt_expr(cond)}) {{")
            p.lines += fast.lines
            p.emit("} else {")
            p.lines += general.lines
            p.emit("}")
        else:
            p.lines += [line[4:] for line in fast.lines]
        p.indent -= 1
        p.emit("}")

    def _chunk_width(self, body) -> int:
        """Lanes per chunk: a trial rendering at full width finds the widest
        element that is compared or divided (and the widest of all)."""
        p = self.p
        saved = set(p.used), dict(p.helpers)
        trial = self._render(body, self.lanes, aligned=True)
        p.used, p.helpers = saved
        width = self.lanes
        if trial.native:
            width = min(width, int(getattr(p, "vector_bytes", DEFAULT_VECTOR_BYTES) // trial.native))
        width = min(width, int(MAX_VECTOR_BYTES // trial.widest))
        if width < 2:
            raise NotHandled
        return width

    def _render(self, body, width, aligned) -> _Rendered:
        p = self.p
        saved = p.lines, p.indent, dict(p.names), p.pre
        p.lines, p.indent = [], p.indent + 1
        bp = _BodyPrinter(p, self.var, self.lanes, width, aligned)
        try:
            bp.stmt(body)
            lines = p.lines
        finally:
            p.lines, p.indent, p.names, p.pre = saved
        return _Rendered(lines, bp.conditions, bp.native, bp.widest)


def _hoist_uniform_lets(body, var):
    """The lets at the top of the body that do not vary with `var` (printed
    once, before any version), and the rest of the body."""
    return split_invariant_lets(body, {var})


class _BodyPrinter(VectorExprPrinter):
    """The statements of a vectorized loop body, chunk by chunk."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_lane = set()        # allocations inside the loop: a copy per lane
        self.inner_loops = 0

    @contextmanager
    def _statement(self):
        """Collect what expressions hoist, then print it as statements."""
        saved = self.p.pre
        self.p.pre = []
        try:
            yield
        finally:
            lines, self.p.pre = self.p.pre, saved
            for line in lines:
                self.p.emit(line)

    def _chunks(self):
        for c in range(self.lanes // self.chunk_width):
            self.chunk = c
            yield c

    def stmt(self, s):
        if isinstance(s, S.Block):
            for x in s.stmts:
                self.stmt(x)
        elif isinstance(s, S.LetStmt):
            self.let_stmt(s)
        elif isinstance(s, S.Store):
            self.store(s)
        elif isinstance(s, S.IfThenElse) and not self.varies(s.condition):
            self.if_stmt(s)
        elif isinstance(s, S.For) and isinstance(s.extent, E.Const) and s.extent.value == 1:
            self.let_stmt(S.LetStmt(s.name, s.min, s.body))     # one iteration: a let
        elif isinstance(s, S.For) and s.kind in (S.ForKind.SERIAL, S.ForKind.UNROLLED) \
                and not self.varies(s.min) and not self.varies(s.extent):
            self.serial_loop(s)
        elif isinstance(s, S.Allocate):
            self.lane_storage(s)
        else:
            raise NotHandled

    # -- a producer computed inside the vector loop -----------------------------------------
    # Its loops of one iteration per lane are lets, its loops over RVars or
    # unrolled dimensions are C loops whose bodies are vector code, and its
    # storage gets one copy per lane, laid out as [index][lane], so that a
    # store or load at an index that is the same in every lane moves a whole
    # vector (Halide widens such an allocation by the vector's lanes too).

    def serial_loop(self, s):
        p = self.p
        lo, ext = p.stmt_expr(s.min), p.stmt_expr(s.extent)
        v = p.declare(s.name)
        end = p.declare(s.name + "_end")
        p.emit(f"for ({p.ctype(s.min.type)} {v} = {lo}, {end} = {v} + {ext}; "
               f"{v} < {end}; {v}++) {{")
        p.indent += 1
        self.inner_loops += 1        # lane-0 conditions inside cannot be tested before
        self.stmt(s.body)
        self.inner_loops -= 1
        p.indent -= 1
        p.emit("}")

    def lane_storage(self, s):
        p = self.p
        if s.memo_key or not isinstance(s.size, E.Const) or s.type.is_bool() or \
                s.type.is_handle() or \
                not 0 < s.size.value * self.lanes * s.type.bytes() <= p.stack_limit:
            raise NotHandled
        buf = p.declare(s.name)
        p.emit("{")
        p.indent += 1
        p.emit(f"{p.ctype(s.type)} {buf}[{s.size.value * self.lanes}] {p.align_attribute};")
        self.per_lane.add(s.name)
        self.stmt(s.body)
        p.indent -= 1
        p.emit("}")

    def varies(self, e) -> bool:
        if isinstance(e, E.Load) and e.buffer in self.per_lane:
            return True                  # each lane reads its own copy
        return super().varies(e)

    def assume(self, cond) -> bool:
        return not self.inner_loops and super().assume(cond)

    def lane_index(self, index):
        """C for `index` when it is the same in every lane of the chunk, else None."""
        li = self.lanes_of(index)
        if li is None or len(set(li.offsets)) != 1:
            return None
        if li.base is None:
            return str(li.offsets[0])
        return f"({self.scalar(simplify(li.base))}) + {li.offsets[0]}"

    def v_Load(self, e):
        if e.buffer not in self.per_lane:
            return super().v_Load(e)
        at = self.lane_index(e.index)
        if at is None:
            raise NotHandled
        buf = self.p.name(e.buffer)
        if self.period == 1:         # the chunk's lanes are consecutive
            return self.dense_load(e.type, buf, f"({at}) * {self.lanes} + {self.lane(0)}",
                                   self.width)
        lanes = [f"{buf}[({at}) * {self.lanes} + {self.lane(k)}]" for k in range(self.width)]
        return f"(({self.vtype(e.type)}){{{', '.join(lanes)}}})"

    def lane_scalar(self, e, k):
        if _reads(e, self.per_lane):
            raise NotHandled
        return super().lane_scalar(e, k)

    def _lane_store(self, s):
        t = s.value.type
        if t.is_bool() or t.is_handle():
            raise NotHandled
        buf = self.p.name(s.buffer)
        stores = []
        with self._statement():
            for _ in self._chunks():
                at = self.lane_index(s.index)
                if at is None:
                    raise NotHandled
                v = self.temp(self.vector(s.value), t, "vec")
                stores.append(f"memcpy(&{buf}[({at}) * {self.lanes} + {self.lane(0)}], "
                              f"&{v}, sizeof {v});")
        for line in stores:                           # lockstep: after every load
            self.p.emit(line)

    def let_stmt(self, s):
        p = self.p
        if self.varies(s.value):
            with self._statement():
                for _ in self._chunks():
                    self.define(s.name, s.value)
        else:
            value = p.stmt_expr(s.value)
            p.emit(f"const {p.ctype(s.value.type)} {p.declare(s.name)} = {value};")
            self.uvalues[s.name] = substitute(self.uvalues, s.value)
        self.stmt(s.body)


    def if_stmt(self, s):
        self.p.emit_if(s, self.stmt)

    def store(self, s):
        if s.buffer in self.per_lane:
            return self._lane_store(s)
        t = s.value.type
        if t.is_bool() or t.is_handle():
            raise NotHandled
        buf = self.p.name(s.buffer)
        period = 2 if self.chunk_width >= 4 and self._interleaves(s.value) else 1
        stores = []
        with self._statement():
            for _ in self._chunks():
                direct = self._gather_store(s, buf) if period == 1 else None
                if direct is not None:
                    stores += direct
                    continue
                for first, value, lanes in self._values(s.value, t, period):
                    stores += self._store_lines(s, buf, first, value, lanes)
        for line in stores:                           # lockstep: after every load
            self.p.emit(line)

    def _gather_store(self, s, buf):
        """A dense store of a gather (a lookup table) as one loop of scalar
        loads and stores: no vector to assemble (gcc does that badly)."""
        e = s.value
        if not isinstance(e, E.Load) or e.buffer == s.buffer or not self.varies(e.index) \
                or self.lanes_of(e.index) is not None:
            return None
        li = self.lanes_of(s.index)
        if li is None or li.base is None or \
                li.offsets != tuple(range(li.offsets[0], li.offsets[0] + self.width)):
            return None
        lanes = self.gather_indices(e, self.p.name(e.buffer))
        if lanes is None:
            return None
        at, ix, iv, ix_type = lanes
        k = self.p.declare(f"k{len(self.p.used)}", "k")
        first = f"{self.scalar(li.base)} + {li.offsets[0]}"
        loop = [f"for (int {k} = 0; {k} < {self.width}; {k}++) "
                f"{buf}[{first} + {k}] = {at}[{ix}[{k}]];"]
        table = self.p.name(e.buffer)
        variants = [v for v in (self.permute_lookup(e.type, table, at, iv, ix_type),
                                self.hardware_gather(e.type, table, at, iv, ix_type)) if v]
        out = []
        for j, (cond, lines, chunks, n) in enumerate(variants):
            bits = n * e.type.bits()
            store = {128: "_mm_storeu_si128((__m128i *)", 256: "_mm256_storeu_si256((__m256i *)",
                     512: "_mm512_storeu_si512((void *)"}[bits]
            lines += [f"{store}&{buf}[{first} + {i * n}], {c});" for i, c in enumerate(chunks)]
            out += [f"#{'el' if j else ''}if {cond}"] + lines
        return out + ["#else"] + loop + ["#endif"] if out else loop

    def _values(self, value, t, period):
        """(first lane, vector, lanes) pieces of the current chunk's value."""
        if period == 1:
            return [(0, self.temp(self.vector(value), t, "vec"), self.width)]
        # even and odd lanes apart (each select on x % 2 takes one arm, each
        # x / 2 is dense), then interleaved, as Halide does
        w = self.chunk_width
        h = w // 2
        self.width, self.period = h, 2
        parts = []
        for self.phase in (0, 1):
            parts.append(self.temp(self.vector(value), t, "vec"))
        self.phase, self.period = 0, 1
        pieces = []
        for first in (0, h):
            picks = [(lane % 2) * h + lane // 2 for lane in range(first, first + h)]
            pieces.append((first, self.shuffle(t, parts[0], parts[1], h, picks), h))
        self.width = w
        return pieces

    def _store_lines(self, s, buf, first, value, lanes):
        """Store `value`, lanes first .. first + lanes - 1 of the chunk."""
        saved = self.phase, self.width
        self.phase, self.width = first, lanes
        li = self.lanes_of(s.index)
        if li is not None and li.base is not None and \
                li.offsets == tuple(range(li.offsets[0], li.offsets[0] + lanes)):
            at = f"{self.scalar(li.base)} + {li.offsets[0]}" if li.offsets[0] \
                else self.scalar(li.base)
            lines = [f"memcpy(&{buf}[{at}], &{value}, sizeof {value});"]
        else:                                          # a scatter, lane by lane
            lines = [f"{buf}[{self.lane_scalar(s.index, k)}] = {value}[{k}];"
                     for k in range(lanes)]
        self.phase, self.width = saved
        return lines

    def _interleaves(self, e) -> bool:
        """Whether e selects on x % 2 of a varying x (a Bayer pattern, an
        upsampling by 2): its even and odd lanes are then computed apart."""
        self.varies(e)          # first: marks the lets in e that vary
        seen, found = set(), set()

        def walk(x):
            if id(x) in seen:
                return
            seen.add(id(x))
            if isinstance(x, E.Variable) and x.name in self.vvalues:
                walk(self.vvalues[x.name])
            elif isinstance(x, E.Let):
                walk(x.value)
                walk(x.body)
            else:
                if isinstance(x, E.Mod) and x.b == E.Const(x.type, 2) and self.varies(x.a):
                    found.add("mod")
                if isinstance(x, E.Select) and self.varies(x.condition):
                    found.add("select")
                for c in _children(x):
                    walk(c)
        walk(e)
        return found == {"mod", "select"}


def _reads(e, buffers) -> bool:
    """Whether e loads from any of `buffers`."""
    if isinstance(e, E.Load) and e.buffer in buffers:
        return True
    return any(_reads(c, buffers) for c in _children(e))
