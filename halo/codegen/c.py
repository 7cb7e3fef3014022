"""The C dialect: a self-contained C99 translation unit for one pipeline
(warning-free under gcc/clang -std=c99 -Wall -Wextra -pedantic; the JIT
compiles it as gnu11; halo.aot exports it for embedding).

Exports (NAME is the pipeline's C name):

* `int NAME(DLTensor *in..., T param..., DLTensor *out...)`: the stable ABI.
* `int NAME_argv(void **args)`: the same, arguments as an array of pointers
  (DLTensor* for buffers, a pointer to the value for scalars).
* `int NAME_call(void **args, const int32_t *const *mins)`: as `NAME_argv`
  with per-buffer dimension mins (Halide order), for the JIT.
* `int NAME_bounds_query(void **args, const int32_t *const *mins, int64_t *out)`:
  the (min, extent) per dimension of each output's storage box and each
  input's required region.
* `const char *NAME_error_message(void)`: the thread-local error text.
"""
from __future__ import annotations

import functools
import re

from ..ir.types import Type
from ..ir import stmt as S
from .c_like import CLikePrinter, c_string, type_suffix, _INT_NAMES
from .c_vector import print_vector_loop

DLPACK_DECLS = r"""
#ifndef DLPACK_VERSION
#define DLPACK_VERSION 80
typedef enum { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLOpenCL = 4 } DLDeviceType;
typedef struct { DLDeviceType device_type; int32_t device_id; } DLDevice;
typedef enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLOpaqueHandle = 3,
               kDLBfloat = 4, kDLComplex = 5, kDLBool = 6 } DLDataTypeCode;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;
#endif
"""

INCLUDES = """#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <math.h>
"""

# Portability: the source compiles as strict C99 (gcc/clang -std=c99
# -pedantic -Wall -Wextra: no warnings) and as C11/gnu11 (the JIT).
PORTABILITY = r"""
#ifndef HALO_TLS
#if defined(__cplusplus) && __cplusplus >= 201103L
#define HALO_TLS thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define HALO_TLS _Thread_local
#elif defined(__GNUC__) || defined(__clang__)
#define HALO_TLS __thread
#elif defined(_MSC_VER)
#define HALO_TLS __declspec(thread)
#else
#error "halo: no thread-local storage keyword known for this compiler: define HALO_TLS"
#endif
#endif
#ifndef HALO_ALIGN64
#if defined(__GNUC__) || defined(__clang__)
#define HALO_ALIGN64 __attribute__((aligned(64)))
#else
#define HALO_ALIGN64
#endif
#endif
#if defined(_OPENMP) || defined(HALO_OMP_SIMD)
#define HALO_USE_OMP_SIMD 1
#endif
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define HALO_USE_GCC_UNROLL 1
#endif
"""


def _int_helpers() -> str:
    """Halide-semantics helpers for every integer type."""
    out = []
    for (signed, bits), t in _INT_NAMES.items():
        s = ("i" if signed else "u") + str(bits)
        ut = _INT_NAMES[(False, bits)]
        w = "uint64_t" if bits == 64 else "uint32_t"
        out.append(f"static inline {t} halo_min_{s}({t} a, {t} b) {{ return a < b ? a : b; }}")
        out.append(f"static inline {t} halo_max_{s}({t} a, {t} b) {{ return a > b ? a : b; }}")
        if signed:
            out.append(
                f"static inline {t} halo_div_{s}({t} a, {t} b) {{\n"
                f"    if (b == 0) return 0;\n"
                f"    if (b == -1) return ({t})(({w})0 - ({w})a);\n"
                f"    {t} q = ({t})(a / b), r = ({t})(a % b);\n"
                f"    if (r < 0) q = b > 0 ? ({t})(q - 1) : ({t})(q + 1);\n"
                f"    return q;\n}}")
            out.append(
                f"static inline {t} halo_mod_{s}({t} a, {t} b) {{\n"
                f"    if (b == 0 || b == -1) return 0;\n"
                f"    {t} r = ({t})(a % b);\n"
                f"    if (r < 0) r = b > 0 ? ({t})(({w})r + ({w})b) : ({t})(({w})r - ({w})b);\n"
                f"    return r;\n}}")
            out.append(f"static inline {ut} halo_abs_{s}({t} a) {{ "
                       f"return a < 0 ? ({ut})(({w})0 - ({w})a) : ({ut})a; }}")
            out.append(f"static inline {ut} halo_absd_{s}({t} a, {t} b) {{ "
                       f"return a > b ? ({ut})(({w})a - ({w})b) : ({ut})(({w})b - ({w})a); }}")
            out.append(
                f"static inline {t} halo_div_round_to_zero_{s}({t} a, {t} b) {{ "
                f"return b == 0 ? 0 : b == -1 ? ({t})(({w})0 - ({w})a) : ({t})(a / b); }}")
            out.append(
                f"static inline {t} halo_mod_round_to_zero_{s}({t} a, {t} b) {{ "
                f"return (b == 0 || b == -1) ? 0 : ({t})(a % b); }}")
        else:
            out.append(f"static inline {t} halo_div_{s}({t} a, {t} b) {{ "
                       f"return b == 0 ? 0 : ({t})(a / b); }}")
            out.append(f"static inline {t} halo_mod_{s}({t} a, {t} b) {{ "
                       f"return b == 0 ? 0 : ({t})(a % b); }}")
            out.append(f"static inline {t} halo_abs_{s}({t} a) {{ return a; }}")
            out.append(f"static inline {t} halo_absd_{s}({t} a, {t} b) {{ "
                       f"return a > b ? ({t})(a - b) : ({t})(b - a); }}")
            out.append(f"static inline {t} halo_div_round_to_zero_{s}({t} a, {t} b) {{ "
                       f"return b == 0 ? 0 : ({t})(a / b); }}")
            out.append(f"static inline {t} halo_mod_round_to_zero_{s}({t} a, {t} b) {{ "
                       f"return b == 0 ? 0 : ({t})(a % b); }}")
        # shifts: negative amounts reverse; amounts >= bits give 0 (or the sign)
        sign_fill = f"(a < 0 ? ({t})-1 : ({t})0)" if signed else f"({t})0"
        out.append(
            f"static inline {t} halo_shift_left_{s}({t} a, int64_t b) {{\n"
            f"    if (b < 0) {{ if (b <= -{bits}) return {sign_fill}; return ({t})(a >> (int)-b); }}\n"
            f"    if (b >= {bits}) return 0;\n"
            f"    return ({t})(({w})({ut})a << (int)b);\n}}")
        out.append(
            f"static inline {t} halo_shift_right_{s}({t} a, int64_t b) {{\n"
            f"    if (b < 0) {{ if (b <= -{bits}) return 0; return ({t})(({w})({ut})a << (int)-b); }}\n"
            f"    if (b >= {bits}) return {sign_fill};\n"
            f"    return ({t})(a >> (int)b);\n}}")
        # gcc 12 with AVX512-VPOPCNTDQ miscompiles some vectorized loops of
        # popcountll of a zero-extended 32-bit value (tests/test_fuzz_regressions.py)
        pop = (f"__builtin_popcountll((uint64_t)({ut})a)" if bits == 64
               else f"__builtin_popcount((uint32_t)({ut})a)")
        out.append(f"static inline {t} halo_popcount_{s}({t} a) {{ return ({t}){pop}; }}")
        out.append(f"static inline {t} halo_count_leading_zeros_{s}({t} a) {{ "
                   f"return a == 0 ? {bits} : ({t})(__builtin_clzll((uint64_t)({ut})a) - {64 - bits}); }}")
        out.append(f"static inline {t} halo_count_trailing_zeros_{s}({t} a) {{ "
                   f"return a == 0 ? {bits} : ({t})__builtin_ctzll((uint64_t)({ut})a); }}")
    for bits, t, suf in ((32, "float", "f"), (64, "double", "")):
        s = f"f{bits}"
        out.append(f"static inline {t} halo_min_{s}({t} a, {t} b) {{ return a < b ? a : b; }}")
        out.append(f"static inline {t} halo_max_{s}({t} a, {t} b) {{ return a > b ? a : b; }}")
        out.append(f"static inline {t} halo_mod_{s}({t} a, {t} b) {{ "
                   f"return a - b * floor{suf}(a / b); }}")
        out.append(f"static inline {t} halo_abs_{s}({t} a) {{ return fabs{suf}(a); }}")
        out.append(f"static inline {t} halo_absd_{s}({t} a, {t} b) {{ return fabs{suf}(a - b); }}")
    out.append("static inline bool halo_min_b(bool a, bool b) { return a && b; }")
    out.append("static inline bool halo_max_b(bool a, bool b) { return a || b; }")
    return "\n".join(out) + "\n"


RUNTIME_HELPERS = r"""
static inline void halo_set_error(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 1024, fmt, ap);
    va_end(ap);
}

/* 64-byte aligned storage from plain malloc (aligned_alloc is C11 only),
   placed at offset 128 + 256 * (slot % 16) within a 4 KiB page. Big blocks
   come from mmap at one fixed page offset, and a loop that streams through
   two buffers at the same offset modulo 4 KiB stalls on false store-to-load
   dependencies ("4K aliasing": iir_blur ran 1.6x slower); each allocation
   site of a pipeline gets its own slot. At least 4 bytes past the block
   stay readable: vector code gathers 8/16-bit elements as 32-bit words. */
static inline void *halo_malloc(int64_t count, size_t elem, int slot) {
    unsigned char *raw, *p;
    uintptr_t want = (uintptr_t)(128 + 256 * (slot & 15));
    if (count < 0) count = 0;   /* an empty region (e.g. a guarded vector lane past the end) */
    if ((uint64_t)count > ((uint64_t)PTRDIFF_MAX - 8192) / elem) return NULL;
    raw = (unsigned char *)malloc((size_t)count * elem + 4096 + 16 + sizeof(void *));
    if (raw == NULL) return NULL;
    p = raw + sizeof(void *);
    p += (want - ((uintptr_t)p & 4095)) & 4095;
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

static inline void halo_free(void *p) {
    void *raw;
    if (p == NULL) return;
    memcpy(&raw, (unsigned char *)p - sizeof raw, sizeof raw);
    free(raw);
}
"""


_HELPER_NAME = re.compile(r"^static inline [^(]*?\b(halo_\w+)\(", re.M)


@functools.lru_cache(maxsize=None)
def _helper_blocks() -> tuple:
    """(name, source) of every static inline helper, in definition order."""
    text = _int_helpers() + RUNTIME_HELPERS
    starts = [m.start() for m in _HELPER_NAME.finditer(text)] + [len(text)]
    return tuple((_HELPER_NAME.match(text, a).group(1), text[a:b].strip())
                 for a, b in zip(starts, starts[1:]))


def _used_helpers(code: str) -> str:
    """Only the helpers `code` calls (clang warns about unused static inline
    functions under -Wall); helpers call no other helper."""
    called = set(re.findall(r"\b(halo_\w+)\(", code)) | {"halo_set_error"}
    return "\n".join(src for name, src in _helper_blocks() if name in called) + "\n"


def dl_code(t: Type) -> tuple[int, int]:
    if t.is_bool():
        return 6, 8
    if t.is_float():
        return 2, t.bits()
    return (0 if t.is_int() else 1), t.bits()


class CPrinter(CLikePrinter):
    """Plain C: OpenMP for parallel loops; vectorized loops as explicit
    vector code where c_vector handles them, else `omp simd` loops."""

    # Bytes in one SIMD register of the target (generate_c's vector_bytes):
    # explicit vector code is cut into chunks that fit (halo.codegen.c_vector).
    vector_bytes = 16

    def s_For(self, s):
        if s.kind == S.ForKind.VECTORIZED and print_vector_loop(self, s):
            return
        super().s_For(s)
    # Where buffer arguments must live: the DLPack device type the argument
    # checks require, and how errors name it (an exported GPU pipeline takes
    # device buffers: halo.codegen.gpu_runtime_c).
    buffer_device = ("kDLCPU", "this pipeline runs on the CPU")


def c_identifier(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not s or s[0].isdigit():
        s = "_" + s
    return s


def generate_c(lowered, fn_name: str, printer=CPrinter, wrappers=True,
               vector_bytes=None) -> tuple[str, bool]:
    """C source for a LoweredPipeline; returns (source, uses_openmp).
    `printer` makes the statement printer (a GPU pipeline's host code prints
    kernel launches through halo.codegen.gpu_host). `wrappers=False` leaves
    out the exported entry points (NAME, NAME_argv, NAME_call,
    NAME_bounds_query): the caller writes its own around the static
    NAME_impl and NAME_query_impl. `vector_bytes`: the SIMD register size
    of the target (Target.vector_bytes(); default 16, which suits any)."""
    main_p, query_p = printer(), printer()
    if vector_bytes:
        main_p.vector_bytes = query_p.vector_bytes = vector_bytes
    main_body = _mark_unused(_function_body(main_p, lowered, lowered.body, query=False))
    query_body = _mark_unused(_function_body(query_p, lowered, lowered.query, query=True))
    helpers = {**main_p.helpers, **query_p.helpers}
    args = lowered.arguments
    parts = [f"/* Generated by halo for pipeline {c_string(lowered.name)[1:-1]}. */",
             INCLUDES, PORTABILITY, DLPACK_DECLS,
             _used_helpers(main_body + query_body + "\n".join(helpers.values())),
             "\n".join(helpers.values()),
             f"static HALO_TLS char {fn_name}_errbuf[1024];",
             f"const char *{fn_name}_error_message(void) {{ return {fn_name}_errbuf; }}",
             "",
             f"static int {fn_name}_impl(void *const *_args, const int32_t *const *_mins) {{",
             f"    char *_err = {fn_name}_errbuf;",
             "    int _result = 0;",
             "    _err[0] = 0;",
             "    (void)_args; (void)_mins;",
             main_body,
             "    return _result;",
             "}",
             "",
             f"static int {fn_name}_query_impl(void *const *_args, const int32_t *const *_mins, "
             f"int64_t *_query) {{",
             f"    char *_err = {fn_name}_errbuf;",
             "    int _result = 0;",
             "    _err[0] = 0;",
             "    (void)_args; (void)_mins; (void)_query;",
             query_body,
             "    return _result;",
             "}",
             ""]
    params = []
    packs = []
    for i, a in enumerate(args):
        pname = f"_a{i}"
        if a.kind == "param":
            params.append(f"{main_p.ctype(a.type)} {pname}")
            packs.append(f"(void *)&{pname}")
        else:
            params.append(f"DLTensor *{pname}")
            packs.append(f"(void *){pname}")
    sig = ", ".join(params) if params else "void"
    if not wrappers:
        return "\n".join(parts), main_p.uses_parallel
    parts += [
        f"int {fn_name}({sig}) {{",
        f"    void *_args[{max(len(args), 1)}] = {{{', '.join(packs) if packs else '0'}}};",
        f"    return {fn_name}_impl(_args, NULL);",
        "}",
        f"int {fn_name}_argv(void **args) {{ return {fn_name}_impl(args, NULL); }}",
        f"int {fn_name}_call(void **args, const int32_t *const *mins) "
        f"{{ return {fn_name}_impl(args, mins); }}",
        f"int {fn_name}_bounds_query(void **args, const int32_t *const *mins, int64_t *out) "
        f"{{ return {fn_name}_query_impl(args, mins, out); }}",
        "",
    ]
    return "\n".join(parts), main_p.uses_parallel


_DECL = re.compile(r"^\s*(?:const\s+)?[A-Za-z_]\w*(?:\s+|\s*\*\s*)(_\w+)\s*[=\[]")
_IDENT = re.compile(r"(?<![A-Za-z0-9_])_[A-Za-z0-9_]+")


def _mark_unused(text: str) -> str:
    """Append `(void)x;` to the declaration of every local `x` that is never
    used again, so that the source compiles cleanly under -Wall -Wextra."""
    counts: dict = {}
    for tok in _IDENT.findall(text):
        counts[tok] = counts.get(tok, 0) + 1
    out = []
    for line in text.split("\n"):
        m = _DECL.match(line)
        if m and counts.get(m.group(1)) == 1 and line.rstrip().endswith(";"):
            line = f"{line} (void){m.group(1)};"
        out.append(line)
    return "\n".join(out)


def _function_body(p: CPrinter, lowered, body, query: bool) -> str:
    p.lines = []
    p.indent = 1
    if query:
        p.names["_query"] = "_query"
        p.used.add("_query")
    for i, a in enumerate(lowered.arguments):
        _unpack_argument(p, i, a, query)
    p.stmt(body)
    return "\n".join(p.lines)


def _unpack_argument(p: CPrinter, i: int, a, query: bool):
    user = c_string(a.user_name)
    if a.kind == "param":
        v = p.declare(a.name, "p_" + a.name)
        p.emit(f"const {p.ctype(a.type)} {v} = *(const {p.ctype(a.type)} *)_args[{i}];")
        return
    kind = "Input" if a.kind == "input" else "Output"
    t = p.declare(a.name + ".tensor", "t_" + a.name)
    n = a.dimensions
    code, bits = dl_code(a.type)
    p.emit(f"const DLTensor *{t} = (const DLTensor *)_args[{i}];")
    checks = [
        (f"{t} == NULL", f"{kind} buffer %s is NULL", [user], -1),
        (f"{t}->ndim != {n}", f"{kind} buffer %s has %d dimensions, but the pipeline needs {n}",
         [user, f"(int){t}->ndim"], -3),
        (f"{t}->dtype.code != {code} || {t}->dtype.bits != {bits} || {t}->dtype.lanes != 1",
         f"{kind} buffer %s has type code %d bits %d lanes %d, but the pipeline needs {a.type}",
         [user, f"(int){t}->dtype.code", f"(int){t}->dtype.bits", f"(int){t}->dtype.lanes"], -3),
        (f"{t}->device.device_type != {p.buffer_device[0]}",
         f"{kind} buffer %s is on device type %d, but {p.buffer_device[1]}",
         [user, f"(int){t}->device.device_type"], -3),
    ]
    if n > 0:
        checks.append((f"{t}->shape == NULL", f"{kind} buffer %s has a NULL shape", [user], -1))
    if not query:
        checks.append((f"{t}->data == NULL", f"{kind} buffer %s has NULL data", [user], -1))
    for cond, fmt, vals, code_ in checks:
        p.emit(f"if ({cond}) {{ halo_set_error(_err, {c_string(fmt)}, {', '.join(vals)}); "
               f"return {code_}; }}")
    compact = "1"
    for d in range(n):
        ax = n - 1 - d
        mn = p.declare(f"{a.name}.min.{d}")
        ex = p.declare(f"{a.name}.extent.{d}")
        st = p.declare(f"{a.name}.stride.{d}")
        p.emit(f"if ({t}->shape[{ax}] < 0 || {t}->shape[{ax}] > INT32_MAX) {{ "
               f"halo_set_error(_err, {c_string(kind + ' buffer %s has extent %lld in dimension ' + str(d) + ', outside [0, 2^31)')}, "
               f"{user}, (long long){t}->shape[{ax}]); return -3; }}")
        p.emit(f"const int32_t {ex} = (int32_t){t}->shape[{ax}];")
        if n > 1:
            # As in Halide: at most 2^31-1 elements in all (each factor is
            # < 2^31 and so is the running product: no int64 overflow).
            if d == 0:
                size = p.declare(f"{a.name}.size")
                p.emit(f"int64_t {size} = {ex};")
            else:
                p.emit(f"{size} *= {ex};")
                p.emit(f"if ({size} > INT32_MAX) {{ "
                       f"halo_set_error(_err, {c_string('Product of extents for ' + kind.lower() + ' buffer %s is %lld (dimensions 0..' + str(d) + '), which exceeds the maximum of 2^31-1')}, "
                       f"{user}, (long long){size}); return -3; }}")
        p.emit(f"const int32_t {mn} = (_mins && _mins[{i}]) ? _mins[{i}][{d}] : 0;")
        # Region arithmetic (x + k, x * 2 ...) is int32: keep every
        # coordinate well inside it, so that it cannot overflow.
        p.emit(f"if ({mn} < -(1 << 30) || (int64_t){mn} + (int64_t){ex} > (1 << 30)) {{ "
               f"halo_set_error(_err, {c_string(kind + ' buffer %s spans [%lld, %lld) in dimension ' + str(d) + ', outside [-2^30, 2^30]')}, "
               f"{user}, (long long){mn}, (long long){mn} + (long long){ex}); return -3; }}")
        if d == 0:
            # As in Halide, the innermost dimension is dense: the compiler then
            # sees unit-stride accesses and can vectorize them.
            p.emit(f"if ({t}->strides && {t}->strides[{ax}] != 1 && {ex} > 1) {{ "
                   f"halo_set_error(_err, {c_string(kind + ' buffer %s has stride %lld in dimension 0, but it must be 1 (dense innermost dimension)')}, "
                   f"{user}, (long long){t}->strides[{ax}]); return -3; }}")
            p.emit(f"const int64_t {st} = 1;")
        else:
            p.emit(f"const int64_t {st} = {t}->strides ? {t}->strides[{ax}] : (int64_t)({compact});")
        compact = f"{compact} * {t}->shape[{ax}]"
        if d > 0:
            # As in Halide: no dimension may span more than 2^31-1 elements.
            p.emit(f"if ({ex} > 1 && ({st} > INT32_MAX || {st} < -INT32_MAX || "
                   f"({st} < 0 ? -{st} : {st}) * (int64_t){ex} > INT32_MAX)) {{ "
                   f"halo_set_error(_err, {c_string('Total allocation for ' + kind.lower() + ' buffer %s is %lld * %lld elements in dimension ' + str(d) + ', which exceeds the maximum of 2^31-1')}, "
                   f"{user}, (long long){st}, (long long){ex}); return -3; }}")
    data = p.declare(a.name, "b_" + a.name)
    ct = p.ctype(a.type)
    if not query:
        p.emit(f"if (((uintptr_t){t}->data + (uintptr_t){t}->byte_offset) % sizeof({ct}) != 0) {{ "
               f"halo_set_error(_err, {c_string(kind + ' buffer %s: data + byte_offset is not aligned to its element size')}, "
               f"{user}); return -3; }}")
    p.emit(f"{ct} *{data} = {t}->data ? ({ct} *)((char *){t}->data + {t}->byte_offset) : NULL;")
    p.emit(f"(void){data};")
