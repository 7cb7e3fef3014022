"""The C dialect: a self-contained C11 translation unit for one pipeline.

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

import re

from ..ir.types import Type
from .c_like import CLikePrinter, c_string, type_suffix, _INT_NAMES

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
        out.append(f"static inline {t} halo_popcount_{s}({t} a) {{ "
                   f"return ({t})__builtin_popcountll((uint64_t)({ut})a); }}")
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
static void halo_set_error(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 1024, fmt, ap);
    va_end(ap);
}

static void *halo_malloc(int64_t count, size_t elem) {
    if (count < 0 || (uint64_t)count > (uint64_t)PTRDIFF_MAX / elem) return NULL;
    size_t bytes = (size_t)count * elem;
    bytes = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}
"""


def dl_code(t: Type) -> tuple[int, int]:
    if t.is_bool():
        return 6, 8
    if t.is_float():
        return 2, t.bits()
    return (0 if t.is_int() else 1), t.bits()


class CPrinter(CLikePrinter):
    """Plain C: OpenMP for parallel loops, `omp simd` for vectorized ones."""


def c_identifier(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not s or s[0].isdigit():
        s = "_" + s
    return s


def generate_c(lowered, fn_name: str) -> tuple[str, bool]:
    """C source for a LoweredPipeline; returns (source, uses_openmp)."""
    main_p, query_p = CPrinter(), CPrinter()
    main_body = _function_body(main_p, lowered, lowered.body, query=False)
    query_body = _function_body(query_p, lowered, lowered.query, query=True)
    helpers = {**main_p.helpers, **query_p.helpers}
    args = lowered.arguments
    parts = [f"/* Generated by halo for pipeline {c_string(lowered.name)[1:-1]}. */",
             INCLUDES, DLPACK_DECLS, _int_helpers(), RUNTIME_HELPERS,
             "\n".join(helpers.values()),
             f"static _Thread_local char {fn_name}_errbuf[1024];",
             f"const char *{fn_name}_error_message(void) {{ return {fn_name}_errbuf; }}",
             "",
             f"static int {fn_name}_impl(void *const *_args, const int32_t *const *_mins) {{",
             f"    char *_err = {fn_name}_errbuf;",
             "    int _result = 0;",
             "    _err[0] = 0;",
             main_body,
             "    return _result;",
             "}",
             "",
             f"static int {fn_name}_query_impl(void *const *_args, const int32_t *const *_mins, "
             f"int64_t *_query) {{",
             f"    char *_err = {fn_name}_errbuf;",
             "    int _result = 0;",
             "    _err[0] = 0;",
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
        (f"{t}->device.device_type != kDLCPU",
         f"{kind} buffer %s is on device type %d, but this pipeline runs on the CPU",
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
        p.emit(f"const int32_t {mn} = (_mins && _mins[{i}]) ? _mins[{i}][{d}] : 0;")
        p.emit(f"if ((int64_t){mn} + (int64_t){ex} > (int64_t)INT32_MAX + 1) {{ "
               f"halo_set_error(_err, {c_string(kind + ' buffer %s: min + extent overflows int32 in dimension ' + str(d))}, {user}); return -3; }}")
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
    data = p.declare(a.name, "b_" + a.name)
    ct = p.ctype(a.type)
    p.emit(f"{ct} *{data} = ({ct} *)((char *){t}->data + {t}->byte_offset);")
    p.emit(f"(void){data};")
