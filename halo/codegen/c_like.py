"""The C-like printer shared by the C, OpenCL and CUDA dialects.

It prints flattened loop IR (no Realize/Provide/Call-to-Func) as C source.
Integer arithmetic is printed so that C's integer promotion and signed
overflow never change a result: add/sub/mul go through an unsigned type of
at least 32 bits and are cast back; division, modulo, shifts, min/max and
abs go through small static inline helpers with Halide's semantics.

IR names (which may contain any character a user typed) never reach the
source: every name is mangled to a fresh C identifier; user text that
appears in error messages is escaped as a C string literal.
"""
from __future__ import annotations

import math
import re

from ..errors import CompileError, InternalError
from ..ir import expr as E
from ..ir import stmt as S
from ..ir.types import Type


def c_string(s: str) -> str:
    """A C string literal for any text (octal escapes: no injection)."""
    out = ['"']
    for ch in s.encode("utf-8"):
        c = chr(ch)
        if ch < 128 and (c.isalnum() or c in " .,:;_-+=()[]<>/!#&|^~'{}@$%"):
            out.append(c)
        else:
            out.append(f"\\{ch:03o}")
    out.append('"')
    return "".join(out)


_INT_NAMES = {(True, 8): "int8_t", (True, 16): "int16_t", (True, 32): "int32_t",
              (True, 64): "int64_t", (False, 8): "uint8_t", (False, 16): "uint16_t",
              (False, 32): "uint32_t", (False, 64): "uint64_t"}


def type_suffix(t: Type) -> str:
    if t.is_bool():
        return "b"
    if t.is_float():
        return f"f{t.bits()}"
    return ("i" if t.is_int() else "u") + str(t.bits())


BITWISE_OPS = {"bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}


class CLikePrinter:
    """Prints one function body. Dialects override the class attributes and
    small hooks; the printer itself never tests which target it is for."""

    float_types = {32: "float", 64: "double"}
    bool_type = "bool"
    math_f32 = {"sqrt": "sqrtf", "sin": "sinf", "cos": "cosf", "tan": "tanf",
                "asin": "asinf", "acos": "acosf", "atan": "atanf", "sinh": "sinhf",
                "cosh": "coshf", "tanh": "tanhf", "asinh": "asinhf", "acosh": "acoshf",
                "atanh": "atanhf", "exp": "expf", "log": "logf", "floor": "floorf",
                "ceil": "ceilf", "trunc": "truncf", "round": "rintf", "erf": "erff",
                "pow": "powf", "atan2": "atan2f"}
    # dynamic: threads claim iterations as they go, like Halide's task queue,
    # so a thread that the OS runs late (a shared machine) delays no one
    parallel_pragma = "#pragma omp parallel for schedule(dynamic)"
    vector_pragma = "#pragma omp simd"
    unroll_pragma = "#pragma GCC unroll 16"
    # Each pragma is printed inside `#if defined(GUARD)`, so that a compiler
    # that does not know it (no -fopenmp; strict -Wall) never sees it. The
    # guards are defined (or not) by the dialect's prelude; None: unguarded.
    openmp_guard = "_OPENMP"
    simd_guard = "HALO_USE_OMP_SIMD"
    unroll_guard = "HALO_USE_GCC_UNROLL"
    align_attribute = "HALO_ALIGN64"
    free_function = "halo_free"

    def __init__(self):
        self.lines: list[str] = []
        self.indent = 1
        self.names: dict[str, str] = {}   # IR name -> C identifier (scoped copy)
        self.used: set[str] = set()
        self.helpers: dict[str, str] = {}  # on-demand helper functions
        self.pre: list[str] = []          # statements hoisted out of an expression
        self.uses_parallel = False
        self.loop_depth = 0
        self.stack_buffers: set[str] = set()   # C names of stack-array Allocates
        # C names of Allocates that may be read up to 3 bytes past their last
        # element (stack arrays padded, halo_malloc's slack): the vector
        # printer gathers narrow elements from them as 32-bit words
        self.padded_buffers: set[str] = set()
        # C name -> elements, of the stack arrays (constant size: a lookup
        # table the vector printer may hold in registers)
        self.table_sizes: dict[str, int] = {}
        self.alloc_sites = 0                    # heap Allocates printed so far

    # -- names ---------------------------------------------------------------------------
    def declare(self, ir_name: str, hint: str | None = None) -> str:
        # `$n` suffixes only make IR names unique; C names are made unique
        # here, in declaration order, so equal programs give equal source.
        base = re.sub(r"[^A-Za-z0-9_]", "_", re.sub(r"\$\d+", "", hint or ir_name))
        base = "_" + base.strip("_")[:40] if base else "_v"
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        self.names[ir_name] = name
        return name

    def name(self, ir_name: str) -> str:
        try:
            return self.names[ir_name]
        except KeyError:
            raise InternalError(f"codegen: variable {ir_name!r} is used before it is defined")

    # -- types -----------------------------------------------------------------------------
    def ctype(self, t: Type) -> str:
        if t.is_vector():
            raise InternalError(f"vector type {t} reached the scalar C printer")
        if t.is_bool():
            return self.bool_type
        if t.is_float():
            if t.bits() not in self.float_types:
                raise CompileError(f"The C backend does not support {t}")
            return self.float_types[t.bits()]
        if t.is_handle():
            return "void *"
        return _INT_NAMES[(t.is_int(), t.bits())]

    def wide_unsigned(self, t: Type) -> str:
        return "uint64_t" if t.bits() == 64 else "uint32_t"

    # -- expressions -------------------------------------------------------------------------
    def expr(self, e) -> str:
        m = getattr(self, "e_" + type(e).__name__, None)
        if m is None:
            raise InternalError(f"C printer cannot print {type(e).__name__}", e)
        return m(e)

    def e_Const(self, e):
        t, v = e.type, e.value
        if t.is_bool():
            return "1" if v else "0"
        if t.is_float():
            if math.isnan(v):
                return "NAN" if t.bits() == 64 else "(float)NAN"
            if math.isinf(v):
                s = "INFINITY" if t.bits() == 32 else "((double)INFINITY)"
                return s if v > 0 else f"(-{s})"
            h = float(v).hex()
            return f"{h}f" if t.bits() == 32 else h
        if t.is_int():
            if t.bits() == 64:
                return "INT64_MIN" if v == t.min() else f"INT64_C({v})"
            if t.bits() == 32:
                return "INT32_MIN" if v == t.min() else str(v)
            return f"(({self.ctype(t)}){v})"
        if t.bits() == 64:
            return f"UINT64_C({v})"
        if t.bits() == 32:
            return f"{v}u"
        return f"(({self.ctype(t)}){v})"

    def e_Variable(self, e):
        return self.name(e.name)

    def e_Cast(self, e):
        v = self.expr(e.value)
        if e.type.is_bool():
            return f"({v} != 0)"
        return f"(({self.ctype(e.type)})({v}))"

    def e_Reinterpret(self, e):
        src, dst = e.value.type, e.type
        fn = f"halo_reinterpret_{type_suffix(src)}_{type_suffix(dst)}"
        if fn not in self.helpers:
            self.helpers[fn] = (
                f"static inline {self.ctype(dst)} {fn}({self.ctype(src)} x) {{ "
                f"{self.ctype(dst)} r; memcpy(&r, &x, sizeof r); return r; }}")
        return f"{fn}({self.expr(e.value)})"

    def _arith(self, e, op):
        a, b, t = self.expr(e.a), self.expr(e.b), e.type
        if t.is_float():
            return f"({a} {op} {b})"
        if t.is_bool():
            return f"({a} != {b})" if op in "+-" else f"({a} && {b})"
        if t.bits() >= 32:
            # u32/u64 wrap in C; i32/i64 overflow is undefined in Halide too,
            # so plain C arithmetic keeps the compiler's loop analysis precise.
            return f"({a} {op} {b})"
        if op == "*" and t.is_uint() and t.bits() == 16:
            # uint16 * uint16 promotes to int and can overflow it: go unsigned.
            return f"((uint16_t)((uint32_t)({a}) * ({b})))"
        # 8/16-bit operands promote to int without overflow; cast back wraps.
        return f"(({self.ctype(t)})({a} {op} {b}))"

    def e_Add(self, e): return self._arith(e, "+")
    def e_Sub(self, e): return self._arith(e, "-")
    def e_Mul(self, e): return self._arith(e, "*")

    def _helper2(self, name, e):
        return f"halo_{name}_{type_suffix(e.type)}({self.expr(e.a)}, {self.expr(e.b)})"

    def e_Div(self, e):
        if e.type.is_float():
            return f"({self.expr(e.a)} / {self.expr(e.b)})"
        if e.type.is_bool():
            return f"({self.expr(e.a)} && {self.expr(e.b)})"
        return self._helper2("div", e)

    def e_Mod(self, e):
        if e.type.is_bool():
            return "0"
        return self._helper2("mod", e)

    def e_Min(self, e): return self._helper2("min", e)
    def e_Max(self, e): return self._helper2("max", e)

    def _cmp(self, e, op):
        return f"({self.expr(e.a)} {op} {self.expr(e.b)})"

    def e_EQ(self, e): return self._cmp(e, "==")
    def e_NE(self, e): return self._cmp(e, "!=")
    def e_LT(self, e): return self._cmp(e, "<")
    def e_LE(self, e): return self._cmp(e, "<=")
    def e_GT(self, e): return self._cmp(e, ">")
    def e_GE(self, e): return self._cmp(e, ">=")
    def e_And(self, e): return self._cmp(e, "&&")
    def e_Or(self, e): return self._cmp(e, "||")

    def e_Not(self, e):
        return f"(!{self.expr(e.a)})"

    def e_Select(self, e):
        return f"({self.expr(e.condition)} ? {self.expr(e.true_value)} : {self.expr(e.false_value)})"

    def e_Let(self, e):
        value = self.expr(e.value)
        saved = dict(self.names)
        cname = self.declare(e.name)
        self.pre.append(f"const {self.ctype(e.value.type)} {cname} = {value};")
        body = self.expr(e.body)
        # the C declaration stays visible to later pre-statements: keep mapping
        # only for the body (names are unique, so restoring is just hygiene)
        self.names = saved | {e.name: cname}
        return body

    def e_Load(self, e):
        return f"{self.name(e.buffer)}[{self.expr(e.index)}]"

    def e_Broadcast(self, e):
        return self.expr(e.value)

    def e_Call(self, e):
        if e.call_type != E.CallType.INTRINSIC:
            raise InternalError(f"unflattened call to {e.name} reached codegen", e)
        n, t, args = e.name, e.type, e.args
        if n in BITWISE_OPS:
            op = BITWISE_OPS[n]
            return f"(({self.ctype(t)})({self.expr(args[0])} {op} {self.expr(args[1])}))"
        if n == "bitwise_not":
            return f"(({self.ctype(t)})(~{self.expr(args[0])}))"
        if n in ("shift_left", "shift_right"):
            return self._shift(n, t, args)
        if n in ("abs", "absd"):
            return f"halo_{n}_{type_suffix(args[0].type)}({', '.join(self.expr(a) for a in args)})"
        if n in ("is_nan", "is_inf", "is_finite"):
            f = {"is_nan": "isnan", "is_inf": "isinf", "is_finite": "isfinite"}[n]
            return f"({f}({self.expr(args[0])}) != 0)"
        if n in self.math_f32:
            fname = self.math_f32[n] if t.bits() == 32 else self.math_f32[n][:-1]
            return f"{fname}({', '.join(self.expr(a) for a in args)})"
        if n in ("popcount", "count_leading_zeros", "count_trailing_zeros",
                 "div_round_to_zero", "mod_round_to_zero"):
            return f"halo_{n}_{type_suffix(t)}({', '.join(self.expr(a) for a in args)})"
        if n in ("print", "print_when"):
            return self._print(e)
        if n == "prefetch" and isinstance(args[0], E.Load):
            return self.prefetch(args[0])
        if n == "memo_commit":
            buf = args[0].value
            return (f"(_result == 0 ? (halo_memo_commit(&{self.memo_cache(buf)}, "
                    f"{self.name(buf + '.memo.entry')}), 0) : 0)")
        if n == "memo_hash_buffer":
            return f"halo_memo_hash_tensor({self.name(args[0].value + '.tensor')})"
        raise InternalError(f"C printer does not know intrinsic {n}", e)

    def memo_cache(self, buf):
        from .memo_runtime import MEMO_RUNTIME
        self.helpers.setdefault("halo_memo_runtime", MEMO_RUNTIME)
        cache = "halo_memo_" + re.sub(r"[^A-Za-z0-9_]", "_", re.sub(r"\$\d+", "", buf))
        self.helpers.setdefault(cache, f"static halo_memo_cache {cache};")
        return cache

    def memo_allocate(self, s):
        """Storage from the memoization cache; the body sees `<name>.memo.hit`."""
        t = self.ctype(s.type)
        cache = self.memo_cache(s.name)
        key = [self.stmt_expr(k) for k in s.memo_key]
        size = self.stmt_expr(s.size)
        saved = dict(self.names)
        self.emit("{")
        self.indent += 1
        kname = self.declare(s.name + ".memo.key")
        entry = self.declare(s.name + ".memo.entry")
        hit = self.declare(s.name + ".memo.hit")
        buf = self.declare(s.name)
        self.emit(f"const int64_t {kname}[{len(key)}] = {{{', '.join(key)}}};")
        self.emit(f"halo_memo_entry *{entry} = NULL;")
        self.emit(f"int {hit} = 0;")
        self.emit(f"{t} *{buf} = ({t} *)halo_memo_acquire(&{cache}, {kname}, {len(key)}, "
                  f"{size}, sizeof({t}), &{entry}, &{hit});")
        self.emit(f"if ({buf} == NULL) {{")
        self.indent += 1
        self.emit(f"halo_set_error(_err, {c_string('Out of memory allocating ' + s.name)});")
        self.emit("_result = -2;")
        self.indent -= 1
        self.emit("} else {")
        self.indent += 1
        self.stmt(s.body)
        self.emit(f"halo_memo_release(&{cache}, {entry});")
        self.indent -= 1
        self.emit("}")
        self.indent -= 1
        self.emit("}")
        self.names = saved

    def prefetch(self, load):
        """A cache hint for the address of `load` (a no-op where unsupported)."""
        return f"(__builtin_prefetch(&{self.e_Load(load)}), 0)"

    def _shift(self, n, t, args):
        a = self.expr(args[0])
        amt = args[1]
        if isinstance(amt, E.Const) and 0 <= amt.value < t.bits():
            if n == "shift_left":
                w = self.wide_unsigned(t)
                return f"(({self.ctype(t)})(({w})({a}) << {amt.value}))"
            return f"(({self.ctype(t)})({a} >> {amt.value}))"
        b = self.expr(amt)
        return f"halo_{n}_{type_suffix(t)}({a}, (int64_t)({b}))"

    def _print(self, e):
        args = list(e.args)
        cond = None
        if e.name == "print_when":
            cond, args = self.expr(args[0]), args[1:]
        first_val = self.expr(args[0])
        tmp = self.declare(f"print{len(self.used)}", "print_value")
        self.pre.append(f"const {self.ctype(args[0].type)} {tmp} = {first_val};")
        fmt, vals = [], []
        for i, a in enumerate(args):
            if isinstance(a, E.Const) and a.type.is_handle():
                fmt.append("%s")
                vals.append(c_string(a.value))
                continue
            v = tmp if i == 0 else self.expr(a)
            t = a.type
            if t.is_float():
                fmt.append("%f")
                vals.append(f"(double)({v})")
            elif t.is_int() or t.is_bool():
                fmt.append("%lld")
                vals.append(f"(long long)({v})")
            else:
                fmt.append("%llu")
                vals.append(f"(unsigned long long)({v})")
        call = f"printf({c_string(' '.join(fmt) + chr(10))}, {', '.join(vals)});"
        # `!= 0`: clang warns about `if ((a == b))` under -Wall
        self.pre.append(f"if (({cond}) != 0) {call}" if cond else call)
        return tmp

    # -- statements ----------------------------------------------------------------------
    def emit(self, line: str):
        self.lines.append("    " * self.indent + line)

    def emit_pragma(self, pragma: str, guard):
        if guard:
            self.lines.append(f"#if defined({guard})")
        self.emit(pragma)
        if guard:
            self.lines.append("#endif")

    def stmt_expr(self, e) -> str:
        """Print an expression, first emitting any statements it hoisted."""
        saved = self.pre
        self.pre = []
        s = self.expr(e)
        for p in self.pre:
            self.emit(p)
        self.pre = saved
        return s

    def stmt(self, s):
        m = getattr(self, "s_" + type(s).__name__, None)
        if m is None:
            raise InternalError(f"C printer cannot print {type(s).__name__}", s)
        m(s)

    def s_Block(self, s):
        for x in s.stmts:
            self.stmt(x)

    def s_LetStmt(self, s):
        v = self.stmt_expr(s.value)
        saved = dict(self.names)
        cname = self.declare(s.name)
        self.emit(f"const {self.ctype(s.value.type)} {cname} = {v};")
        self.stmt(s.body)
        self.names = saved

    def s_For(self, s):
        chain = _parallel_chain(s)
        if len(chain) > 1:
            return self._collapsed_parallel(chain)
        lo = self.stmt_expr(s.min)
        ext = self.stmt_expr(s.extent)
        saved = dict(self.names)
        v = self.declare(s.name)
        end = self.declare(s.name + ".end")
        self.emit("{")
        self.indent += 1
        self.emit(f"const int32_t {end} = {lo} + {ext};")
        if s.kind == S.ForKind.PARALLEL:
            self.uses_parallel = True
            self.emit_pragma(self.parallel_pragma, self.openmp_guard)
        elif s.kind == S.ForKind.VECTORIZED and not _contains_atomic(s.body) \
                and not _contains_openmp(s.body):
            # (lanes of an atomic update may hit one element: stay scalar;
            # OpenMP forbids parallel loops and critical sections in simd)
            self.emit_pragma(self.vector_pragma, self.simd_guard)
        elif s.kind == S.ForKind.UNROLLED:
            self.emit_pragma(self.unroll_pragma, self.unroll_guard)
        self.emit(f"for (int32_t {v} = {lo}; {v} < {end}; {v}++) {{")
        self.indent += 1
        self.loop_depth += 1
        self.stmt(s.body)
        self.loop_depth -= 1
        self.indent -= 1
        self.emit("}")
        self.indent -= 1
        self.emit("}")
        self.names = saved

    def _collapsed_parallel(self, chain):
        """Perfectly nested parallel loops as one `collapse(k)` loop: all the
        iterations are shared among the threads (as Halide's nested parallel
        tasks are), not just those of the outermost loop, whose extent may
        be 1 (OpenMP would run the inner regions on one thread)."""
        saved = dict(self.names)
        self.emit("{")
        self.indent += 1
        heads = []
        for s in chain:
            lo, ext = self.stmt_expr(s.min), self.stmt_expr(s.extent)
            v, end = self.declare(s.name), self.declare(s.name + ".end")
            self.emit(f"const int32_t {end} = {lo} + {ext};")
            heads.append(f"for (int32_t {v} = {lo}; {v} < {end}; {v}++) {{")
        self.uses_parallel = True
        self.emit_pragma(f"{self.parallel_pragma} collapse({len(chain)})", self.openmp_guard)
        for h in heads:
            self.emit(h)
            self.indent += 1
        self.loop_depth += len(chain)
        self.stmt(chain[-1].body)
        self.loop_depth -= len(chain)
        for _ in chain:
            self.indent -= 1
            self.emit("}")
        self.indent -= 1
        self.emit("}")
        self.names = saved

    def s_IfThenElse(self, s):
        self.emit_if(s, self.stmt)

    def emit_if(self, s, stmt):
        """An IfThenElse on a scalar condition, its branches printed by `stmt`
        (halo.codegen.c_vector prints them as vector code)."""
        self.emit(f"if ({self.stmt_expr(s.condition)}) {{")
        self.indent += 1
        stmt(s.then_case)
        self.indent -= 1
        if s.else_case is not None:
            self.emit("} else {")
            self.indent += 1
            stmt(s.else_case)
            self.indent -= 1
        self.emit("}")

    def s_Atomic(self, s):
        st = s.body
        op = _atomic_op(st) if isinstance(st, S.Store) else None
        if op is not None:
            idx = self.stmt_expr(st.index)
            operand = self.stmt_expr(op[1])
            self.emit_pragma("#pragma omp atomic", self.openmp_guard)
            self.emit(f"{self.name(st.buffer)}[{idx}] {op[0]}= {operand};")
            return
        # Any other read-modify-write: one thread at a time.
        self.emit_pragma("#pragma omp critical", self.openmp_guard)
        self.emit("{")
        self.indent += 1
        self.stmt(st)
        self.indent -= 1
        self.emit("}")

    def s_Store(self, s):
        idx = self.stmt_expr(s.index)
        v = self.stmt_expr(s.value)
        self.emit(f"{self.name(s.buffer)}[{idx}] = {v};")

    def s_Evaluate(self, s):
        v = self.stmt_expr(s.value)
        self.emit(f"(void)({v});")

    def s_AssertStmt(self, s):
        c = self.stmt_expr(s.condition)
        fmt, vals = [], []
        for part in s.message:
            if isinstance(part, str):
                fmt.append(part.replace("%", "%%"))
            else:
                fmt.append("%lld")
                vals.append(f"(long long)({self.stmt_expr(part)})")
        args = ", ".join([c_string("".join(fmt))] + vals)
        self.emit(f"if (!({c})) {{")
        self.indent += 1
        if self.loop_depth == 0:
            self.emit(f"halo_set_error(_err, {args});")
            self.emit(f"return {s.code};")
        else:
            # Inside loops (maybe an OpenMP region, where return is illegal):
            # record the first failure; storage covers every access, so the
            # rest runs safely and the call still fails.
            self.emit_pragma("#pragma omp critical (halo_error)", self.openmp_guard)
            self.emit(f"if (_result == 0) {{ halo_set_error(_err, {args}); _result = {s.code}; }}")
        self.indent -= 1
        self.emit("}")

    # Constant-size storage up to this many bytes lives on the stack: no
    # malloc per tile, and the compiler can keep small tiles in registers.
    stack_limit = 64 * 1024

    def s_Allocate(self, s):
        if s.memo_key:
            return self.memo_allocate(s)
        t = self.ctype(s.type)
        if isinstance(s.size, E.Const) and 0 < s.size.value * s.type.bytes() <= self.stack_limit:
            saved = dict(self.names)
            buf = self.declare(s.name)
            self.stack_buffers.add(buf)
            self.padded_buffers.add(buf)
            self.table_sizes[buf] = s.size.value
            pad = -(-3 // s.type.bytes()) if s.type.bytes() < 4 else 0
            self.emit("{")
            self.indent += 1
            self.emit(f"{t} {buf}[{s.size.value + pad}] {self.align_attribute};")
            self.stmt(s.body)
            self.indent -= 1
            self.emit("}")
            self.names = saved
            return
        size = self.stmt_expr(s.size)
        saved = dict(self.names)
        buf = self.declare(s.name)
        self.padded_buffers.add(buf)
        self.emit("{")
        self.indent += 1
        self.alloc_sites += 1       # its own page offset (halo_malloc: 4K aliasing)
        self.emit(f"{t} *{buf} = ({t} *)halo_malloc({size}, sizeof({t}), "
                  f"{self.alloc_sites});")
        self.emit(f"if ({buf} == NULL) {{")
        self.indent += 1
        self.emit(f"halo_set_error(_err, {c_string('Out of memory allocating ' + s.name)});")
        self.emit("_result = -2;")
        self.indent -= 1
        self.emit("} else {")
        self.indent += 1
        self.stmt(s.body)
        self.emit(f"{self.free_function}({buf});")
        self.indent -= 1
        self.emit("}")
        self.indent -= 1
        self.emit("}")
        self.names = saved

    def s_Free(self, s):
        # an early free (lower/early_free.py); the end of the Allocate's
        # scope frees again, a no-op on NULL. Stack arrays are not freed.
        buf = self.name(s.name)
        if buf not in self.stack_buffers:
            self.emit(f"{self.free_function}({buf}); {buf} = NULL;")


def _parallel_chain(s) -> list:
    """s and the parallel loops perfectly nested in it whose bounds do not
    depend on the loops outside them (collapsible in OpenMP)."""
    from ..ir.mutator import free_variables
    chain = [s]
    while s.kind == S.ForKind.PARALLEL and isinstance(s.body, S.For) \
            and s.body.kind == S.ForKind.PARALLEL:
        inner = s.body
        if (free_variables(inner.min) | free_variables(inner.extent)) & {c.name for c in chain}:
            break
        chain.append(inner)
        s = inner
    return chain if chain[0].kind == S.ForKind.PARALLEL else [chain[0]]


def _contains_atomic(s) -> bool:
    from ..ir.mutator import IRVisitor
    found = []

    class V(IRVisitor):
        def visit_Atomic(self, n):
            found.append(n)
    V().visit(s)
    return bool(found)


def _contains_openmp(s) -> bool:
    """Whether s holds an OpenMP construct other than simd: a parallel loop,
    or an assertion inside a loop (printed with `omp critical`)."""
    from ..ir.mutator import IRVisitor
    found = []

    class V(IRVisitor):
        def visit_For(self, n):
            if n.kind == S.ForKind.PARALLEL:
                found.append(n)
            self.generic(n)

        def visit_AssertStmt(self, n):
            found.append(n)
    V().visit(s)
    return bool(found)


def _atomic_op(st):
    """('+', e) when st is `b[i] = b[i] + e` (also -, *, &, |, ^), else None.

    Only int32/int64/float/double and unsigned 32/64-bit types: narrower
    types wrap through C's promotion, which `omp atomic` does not model."""
    v, t = st.value, st.value.type
    if not (t.is_float() or t.bits() >= 32) or t.is_bool():
        return None
    own = E.Load(t, st.buffer, st.index)
    if isinstance(v, (E.Add, E.Mul)) and v.b == own:
        return ("+" if isinstance(v, E.Add) else "*", v.a)
    if isinstance(v, (E.Add, E.Sub, E.Mul)) and v.a == own:
        return ({E.Add: "+", E.Sub: "-", E.Mul: "*"}[type(v)], v.b)
    if isinstance(v, E.Call) and v.name in ("bitwise_and", "bitwise_or", "bitwise_xor") \
            and v.args[0] == own:
        return ({"bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}[v.name], v.args[1])
    return None
