"""Ahead-of-time export: a pipeline as self-contained C for embedding.

    export(pipeline, "out/", target="host", name="blur")

writes, for a library NAME holding one or more pipelines P:

    P.h             declarations only: the ABI functions of P, its metadata
                    types, DLPack's types (unless dlpack.h came first)
    P.c             the whole implementation of P: one C99 translation unit,
                    every helper `static`; only libc/libm (+ OpenMP when a
                    loop is parallel) are needed
    NAME.h          (several pipelines only) includes every P.h
    libNAME.a       every P.c compiled with the target's flags
    libNAME.so      the same as a shared library
    NAME.pc         pkg-config file (relocatable: paths relative to itself)
    NAMEConfig.cmake  `find_package(NAME CONFIG)` gives the imported targets
                    `halo::NAME` (static) and `halo::NAME_shared`

The ABI of pipeline P (see ../shared/DESIGN.md, Contracts):

    int P(DLTensor *in..., T scalar..., DLTensor *out...);  0: success
    int P_argv(void **args);        DLTensor* for buffers, &value for scalars
    const char *P_error_message(void);          thread-local, "" after success
    const halo_filter_metadata_t *P_metadata(void);
    const char *P_version(void);                "halo X.Y.Z; ABI N"

Arguments come in `Pipeline.infer_arguments()` order (or the order given
by `arguments=`), outputs last. Several pipelines go into one library
without clashes: every exported symbol starts with the pipeline's name,
everything else is `static`.

GPU pipelines (targets host-opencl, host-cuda; halo.codegen.gpu_runtime_c)
take device buffers (kDLOpenCL: data is a cl_mem; kDLCUDA: a CUdeviceptr),
embed their kernels (OpenCL C; CUDA as PTX from NVRTC or nvcc) and need only
libOpenCL or libcuda and pthreads. They add

    P.cl / P.cu     the kernels' source, for reading (P.c embeds them)
    int P_gpu_context_create(void *queue_or_stream, P_gpu_context **out);
    void P_gpu_context_destroy(P_gpu_context *);
    int P_gpu_argv(P_gpu_context *, void **args);

A P_gpu_context caches the built program per OpenCL (context, device) or
CUDA context and names the queue/stream to run on; P() and P_argv() use
one created on first use under a mutex (the only global state of a GPU
export). Calls are synchronous; metadata's device_type says the device.
"""
from __future__ import annotations

import dataclasses
import keyword
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import CompileError, CompilerToolError

ABI_VERSION = 1

_C_KEYWORDS = set("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while bool true false class new delete this
template typename namespace public private protected virtual operator friend""".split())

METADATA_DECLS = r"""
#ifndef HALO_FILTER_METADATA_DEFINED
#define HALO_FILTER_METADATA_DEFINED 1
/* Kinds of halo_filter_argument_t (numbered as Halide's). */
enum {
    halo_argument_kind_input_scalar = 0,
    halo_argument_kind_input_buffer = 1,
    halo_argument_kind_output_buffer = 2
};
typedef struct halo_filter_argument_t {
    const char *name;          /* the name given in Python */
    int32_t kind;              /* halo_argument_kind_* */
    int32_t dimensions;        /* rank; 0 for scalars */
    DLDataType type;           /* DLPack code, bits, lanes */
    /* Buffers: 2 * dimensions values, (min, extent) per dimension in numpy
       order (outermost first); an extent of -1 is unknown. NULL: none. */
    const int64_t *buffer_estimates;
    /* Scalars: each NULL when not set. */
    const double *scalar_default;
    const double *scalar_min;
    const double *scalar_max;
    const double *scalar_estimate;
} halo_filter_argument_t;
typedef struct halo_filter_metadata_t {
    int32_t abi_version;       /* HALO_ABI_VERSION of the library */
    int32_t num_arguments;
    const halo_filter_argument_t *arguments;   /* in call order */
    const char *name;
    const char *target;
    const char *halo_version;
    int32_t device_type;       /* DLDeviceType of every buffer: kDLCPU, kDLOpenCL, kDLCUDA */
} halo_filter_metadata_t;
#endif
"""


# -- sources ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Exported:
    """One pipeline's export: its C name, implementation and header text;
    for a GPU pipeline its backend ("opencl" or "cuda") and the kernels'
    source (OpenCL C or CUDA C++, written next to the C for reference)."""
    name: str
    source: str
    header: str
    openmp: bool
    arguments: list
    backend: str | None = None
    kernel_source: str = ""


def _as_pipeline(p):
    from .lang.func import Func
    from .lang.pipeline import Pipeline
    if isinstance(p, Func):
        return p._pipeline()
    if isinstance(p, Pipeline):
        return p
    raise CompileError(f"export: expected a halo Pipeline or Func, got {type(p).__name__}")


def _target(target):
    from .runtime.target import Target
    if target is None:
        return Target("host")
    return target if isinstance(target, Target) else Target(str(target))


DEFAULT_CUDA_ARCH = "compute_75"


def _ptx(source: str, arch: str) -> str:
    """PTX for CUDA `source`: NVRTC (cuda-python) if it loads, else nvcc."""
    from .errors import HaloRuntimeError
    from .runtime.cuda import compile_to_ptx
    try:
        return compile_to_ptx(source, arch).rstrip(b"\0").decode()
    except HaloRuntimeError as e:
        if "NVRTC could not compile" in str(e):
            raise CompileError(str(e)) from None
        why = str(e)
    nvcc = shutil.which("nvcc") or next(
        (str(c) for c in sorted(Path("/usr/local").glob("cuda*/bin/nvcc"))), None)
    if nvcc is None:
        raise CompileError(f"export for CUDA compiles the kernels to PTX with NVRTC or nvcc, "
                           f"and neither is usable ({why}; no nvcc on PATH or in "
                           f"/usr/local/cuda/bin)")
    with tempfile.TemporaryDirectory(prefix="halo-ptx-") as tmp:
        cu, ptx = Path(tmp) / "kernels.cu", Path(tmp) / "kernels.ptx"
        cu.write_text(source)
        _run([nvcc, "-ptx", f"-arch={arch}", str(cu), "-o", str(ptx)])
        return ptx.read_text()


def _ordered(lowered, arguments):
    """`lowered` with its inputs and params in the order of `arguments`."""
    if arguments is None:
        return lowered
    args = lowered.arguments
    declared = [a for a in args if a.kind != "output"]
    by_obj = {id(a.obj): a for a in declared}
    order = []
    for obj in arguments:
        a = by_obj.get(id(obj))
        if a is None:
            raise CompileError(f"{obj!r} is not an input of pipeline {lowered.name}; its "
                               f"inputs are {[a.user_name for a in declared]}")
        if a in order:
            raise CompileError(f"argument {a.user_name} is given twice")
        order.append(a)
    missing = [a.user_name for a in declared if a not in order]
    if missing:
        raise CompileError(f"arguments of pipeline {lowered.name} are missing: {missing}")
    new = order + [a for a in args if a.kind == "output"]
    remap = {args.index(a): i for i, a in enumerate(new)}
    layout = [(remap[i], d) for i, d in lowered.query_layout]
    return dataclasses.replace(lowered, arguments=new, query_layout=layout)


def export_sources(pipeline, fn_name=None, target=None, arguments=None,
                   cuda_arch=None) -> Exported:
    """The C implementation and header of one pipeline (nothing written).
    A pipeline with GPU stages needs a target with opencl or cuda; its CUDA
    kernels are compiled to PTX for `cuda_arch` (default $HALO_CUDA_ARCH or
    compute_75: runs on that architecture and newer)."""
    from . import __version__
    from .codegen.c import DLPACK_DECLS, generate_c, c_identifier
    from .runtime.device import launches_of
    p = _as_pipeline(pipeline)
    t = _target(target)
    name = c_identifier(fn_name or p.name())
    base = p._lower()
    lowered = _ordered(base, arguments)
    launches = launches_of(lowered)
    backend, kernel_source, device = None, "", "kDLCPU"
    if launches and not t.has_gpu_feature():
        raise CompileError(f"export: Func {launches[0].kernel.func} is scheduled on the GPU "
                           f"(gpu_blocks/gpu_threads/gpu_tile), but the target {t} has no GPU "
                           f"feature: export for host-opencl or host-cuda")
    if t.has_gpu_feature() and not launches:
        # (a CPU function from a GPU target would take host buffers: surprising)
        raise CompileError(f"export: the target {t} runs pipelines on the GPU, but no Func of "
                           f"{p.name()} is scheduled there (gpu_tile / gpu_blocks): schedule "
                           f"it on the GPU, or export for host")
    if launches:
        from .codegen import gpu_runtime_c as gpu
        from .runtime.device import device_source_for
        gpu.check_exportable(lowered)
        backend = gpu.backend_of(t)
        kernel_source = device_source_for([x.kernel for x in launches], t)
        code = kernel_source if backend == "opencl" else _ptx(
            kernel_source, cuda_arch or os.environ.get("HALO_CUDA_ARCH", DEFAULT_CUDA_ARCH))
        # launch slots count pipeline arguments in lowering order
        slot_map = {base.arguments.index(a): i for i, a in enumerate(lowered.arguments)}
        source, openmp = gpu.export_gpu_source(lowered, name, t, launches, slot_map, code,
                                               _param_names(lowered.arguments))
        device = gpu.BACKENDS[backend]["device"]
    else:
        source, openmp = generate_c(lowered, name, vector_bytes=t.vector_bytes())
    md = _metadata_source(lowered, name, str(t), __version__, device)
    source = source + METADATA_DECLS + md
    header = _header(lowered, name, DLPACK_DECLS, backend)
    return Exported(name, source, header, openmp, lowered.arguments, backend, kernel_source)


def _est(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _num(v):
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _c_double(x: float) -> str:
    if x != x:
        return "(0.0 / 0.0)"
    if x in (float("inf"), float("-inf")):
        return "(1e308 * 10.0)" if x > 0 else "(-1e308 * 10.0)"
    return float(x).hex()


def _metadata_source(lowered, name: str, target: str, version: str,
                     device: str = "kDLCPU") -> str:
    from .codegen.c import dl_code, c_string
    lines = ["", f"/* metadata of {name} */"]
    entries = []
    for i, a in enumerate(lowered.arguments):
        code, bits = dl_code(a.type)
        dtype = f"{{{code}, {bits}, 1}}"
        est = "NULL"
        scalars = ["NULL"] * 4
        if a.kind == "param":
            kind = 0
            obj = a.obj
            vals = [_num(getattr(obj, attr, None))
                    for attr in ("_value", "_min", "_max", "_estimate")]
            for k, v in enumerate(vals):
                if v is not None:
                    var = f"{name}_md_s{i}_{k}"
                    lines.append(f"static const double {var} = {_c_double(v)};")
                    scalars[k] = f"&{var}"
        else:
            kind = 1 if a.kind == "input" else 2
            if a.kind == "input":
                ests = getattr(a.obj, "_estimates", {}) or {}
            else:
                ests = getattr(getattr(a.func, "schedule", None), "estimates", {}) or {}
            if ests:
                vals = []
                for d in reversed(range(a.dimensions)):   # numpy order
                    mn, ex = ests.get(d, (None, None))
                    mn, ex = _est(mn), _est(ex)
                    vals += [mn if mn is not None else 0, ex if ex is not None else -1]
                var = f"{name}_md_est{i}"
                lines.append(f"static const int64_t {var}[{max(len(vals), 1)}] = "
                             f"{{{', '.join(f'INT64_C({v})' for v in vals) or '0'}}};")
                est = var
        entries.append(f"    {{{c_string(a.user_name)}, {kind}, {a.dimensions}, {dtype}, {est}, "
                       f"{', '.join(scalars)}}}")
    n = len(entries)
    lines.append(f"static const halo_filter_argument_t {name}_md_args[{max(n, 1)}] = {{")
    lines.append(",\n".join(entries) if entries else "    {NULL, 0, 0, {0, 0, 0}, NULL, NULL, "
                                                      "NULL, NULL, NULL}")
    lines.append("};")
    lines.append(f"static const halo_filter_metadata_t {name}_md = {{{ABI_VERSION}, {n}, "
                 f"{name}_md_args, {c_string(name)}, {c_string(target)}, {c_string(version)}, "
                 f"{device}}};")
    lines.append(f"const halo_filter_metadata_t *{name}_metadata(void) {{ return &{name}_md; }}")
    lines.append(f"const char *{name}_version(void) {{ return "
                 f"{c_string(f'halo {version}; ABI {ABI_VERSION}')}; }}")
    return "\n".join(lines) + "\n"


def _param_names(arguments) -> list:
    from .codegen.c import c_identifier
    used, out = set(), []
    for a in arguments:
        base = c_identifier(a.user_name)
        if base in _C_KEYWORDS or keyword.iskeyword(base) or base.startswith("__"):
            base = base + "_"
        n, k = base, 1
        while n in used:
            k += 1
            n = f"{base}_{k}"
        used.add(n)
        out.append(n)
    return out


def _header(lowered, name: str, dlpack_decls: str, backend=None) -> str:
    from .codegen.c_like import CLikePrinter
    from .codegen.gpu_runtime_c import header_declarations as gpu_header_declarations
    guard = f"HALO_{name.upper()}_H"
    pr = CLikePrinter()
    params, doc = [], []
    for a, pn in zip(lowered.arguments, _param_names(lowered.arguments)):
        if a.kind == "param":
            params.append(f"{pr.ctype(a.type)} {pn}")
            doc.append(f" *   {pn}: scalar {a.type}")
        else:
            params.append(f"DLTensor *{pn}")
            doc.append(f" *   {pn}: {a.kind} buffer, {a.type}, {a.dimensions} dimension(s)")
    sig = ", ".join(params) if params else "void"
    return "\n".join([
        f"/* Generated by halo: the pipeline {name}. Declarations only; the",
        f" * implementation is {name}.c (in lib*.a / lib*.so).",
        " *",
        f" * int {name}(...) returns 0 on success; any other value is an error whose text",
        f" * {name}_error_message() returns (thread-local). Shapes are in numpy order",
        " * (outermost first); strides count elements; NULL strides mean compact row-major;",
        " * the innermost dimension must be dense (stride 1). As in Halide, an output must",
        " * not share memory with another buffer argument (halo's Python entry points copy",
        " * such an input first; this C entry point does not).",
        " * Arguments:",
        *doc,
        " */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "#include <stdint.h>",
        "#ifndef __cplusplus",
        "#include <stdbool.h>     /* bool scalar parameters */",
        "#endif",
        dlpack_decls.strip(),
        METADATA_DECLS.strip(),
        "#ifndef HALO_ABI_VERSION",
        f"#define HALO_ABI_VERSION {ABI_VERSION}",
        "#endif",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"int {name}({sig});",
        f"/* The same call, arguments as an array of pointers: DLTensor* for buffers,",
        f"   a pointer to the value for scalars. */",
        f"int {name}_argv(void **args);",
        f"const char *{name}_error_message(void);",
        f"const halo_filter_metadata_t *{name}_metadata(void);",
        f"const char *{name}_version(void);",
        *([gpu_header_declarations(name, backend)] if backend else []),
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        f"#endif /* {guard} */",
        ""])


# -- building ---------------------------------------------------------------------------------

def _compiler():
    from .runtime.compiler import find_compiler
    return list(find_compiler())


def _is_clang(cc) -> bool:
    from .runtime.compiler import compiler_identity
    return "clang" in compiler_identity(tuple(cc)).lower()


def build_flags(target, openmp: bool, gpu: bool = False) -> list:
    """Compiler flags for an exported object: the JIT's, as strict C99."""
    t = _target(target)
    flags = ["-std=c99", "-fPIC", *t.cflags()]
    flags += ["-fopenmp"] if openmp else ["-fopenmp-simd", "-DHALO_OMP_SIMD"]
    return flags + (["-pthread"] if gpu else [])


def _gpu_libs(exps) -> list:
    """The GPU driver libraries the exported pipelines call (link names)."""
    from .codegen.gpu_runtime_c import BACKENDS
    return sorted({BACKENDS[e.backend]["link"] for e in exps if e.backend})


def _gpu_link_flags(cc, libs) -> list:
    """Link flags for the GPU libraries the linker can find (libcuda also in
    the CUDA toolkit's stubs). One it cannot find stays undefined in the
    shared library: the application links it (NAME.pc and the CMake file
    name it)."""
    flags = ["-pthread"] if libs else []
    for lib in libs:
        stubs = sorted(Path("/usr/local").glob("cuda*/lib64/stubs")) if lib == "cuda" else []
        try:
            found = subprocess.run([*cc, f"-print-file-name=lib{lib}.so"], capture_output=True,
                                   text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if os.path.isabs(found) and os.path.exists(found):
            flags.append(f"-l{lib}")
        elif any((d / f"lib{lib}.so").exists() for d in stubs):
            d = next(d for d in stubs if (d / f"lib{lib}.so").exists())
            flags += [f"-L{d}", f"-l{lib}"]
    return flags


def _run(cmd, cwd=None):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
    except (OSError, subprocess.SubprocessError) as e:
        raise CompilerToolError(f"Running {shlex.join(cmd)} failed: {e}") from e
    if r.returncode != 0:
        raise CompilerToolError(f"Command failed (exit {r.returncode}): {shlex.join(cmd)}\n"
                                f"{r.stderr[-4000:]}")
    return r


def _atomic_write(path: Path, data: str):
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(data)
    os.replace(tmp, path)


def export(pipelines, outdir, target="host", name=None, arguments=None,
           outputs=("h", "c", "a", "so", "pc", "cmake"), cuda_arch=None) -> dict:
    """Export one or several pipelines as one library; returns {kind: path(s)}.

    `pipelines`: a Pipeline or Func, a list of them, or a dict {C name:
    pipeline}. `name`: the library name (default: the first pipeline's
    name); with one pipeline it is also the function's name. `arguments`
    (one pipeline only): the order of its inputs and params. GPU pipelines
    (target host-opencl / host-cuda) also write their kernels' source as
    P.cl / P.cu ("kernels"), for reading: P.c embeds them (CUDA: as PTX for
    `cuda_arch`).
    """
    from .lang.func import Func
    from .lang.pipeline import Pipeline
    if isinstance(pipelines, dict):
        items = list(pipelines.items())
    elif isinstance(pipelines, (Pipeline, Func)):
        items = [(name, pipelines)]
    else:
        items = [(None, p) for p in pipelines]
    if not items:
        raise CompileError("export: no pipelines given")
    if arguments is not None and len(items) != 1:
        raise CompileError("export: arguments= needs exactly one pipeline")
    t = _target(target)
    exps = [export_sources(p, n, t, arguments, cuda_arch) for n, p in items]
    names = [e.name for e in exps]
    if len(set(names)) != len(names):
        raise CompileError(f"export: two pipelines have the same name: {names} (pass a dict "
                           f"{{name: pipeline}} or rename the output Funcs)")
    from .codegen.c import c_identifier
    lib = c_identifier(name) if name else names[0]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict = {}
    for e in exps:
        if "h" in outputs:
            _atomic_write(out / f"{e.name}.h", e.header)
            written.setdefault("h", []).append(out / f"{e.name}.h")
        if "c" in outputs or {"a", "so"} & set(outputs):
            _atomic_write(out / f"{e.name}.c", e.source)
            written.setdefault("c", []).append(out / f"{e.name}.c")
        if "c" in outputs and e.backend:
            k = out / f"{e.name}.{'cl' if e.backend == 'opencl' else 'cu'}"
            _atomic_write(k, e.kernel_source)
            written.setdefault("kernels", []).append(k)
    if "h" in outputs and lib not in names:
        umbrella = "\n".join([f"/* Generated by halo: the library {lib}. */",
                              f"#ifndef HALO_{lib.upper()}_LIB_H",
                              f"#define HALO_{lib.upper()}_LIB_H",
                              *[f'#include "{n}.h"' for n in names],
                              "#endif", ""])
        _atomic_write(out / f"{lib}.h", umbrella)
        written["h"].append(out / f"{lib}.h")
    openmp = any(e.openmp for e in exps)
    gpu_libs = _gpu_libs(exps)
    if {"a", "so"} & set(outputs):
        cc = _compiler()
        objs = []
        with tempfile.TemporaryDirectory(prefix="halo-aot-") as tmp:
            for e in exps:
                o = Path(tmp) / f"{e.name}.o"
                _run([*cc, *build_flags(t, e.openmp, bool(e.backend)), "-c",
                      str(out / f"{e.name}.c"), "-o", str(o)])
                objs.append(str(o))
            if "a" in outputs:
                a = out / f"lib{lib}.a"
                tmp_a = Path(tmp) / a.name
                _run([os.environ.get("AR", "ar"), "rcs", str(tmp_a), *objs])
                os.replace(tmp_a, a)
                written["a"] = a
            if "so" in outputs:
                so = out / f"lib{lib}.so"
                tmp_so = Path(tmp) / so.name
                _run([*cc, "-shared", "-fPIC", "-o", str(tmp_so), *objs,
                      f"-Wl,-soname,lib{lib}.so", *(["-fopenmp"] if openmp else []),
                      *_gpu_link_flags(cc, gpu_libs), "-lm"])
                os.replace(tmp_so, so)
                written["so"] = so
    omp_lib = ("omp" if _is_clang(_compiler()) else "gomp") if openmp else None
    if "pc" in outputs:
        _atomic_write(out / f"{lib}.pc", _pc_file(lib, names, openmp, gpu_libs))
        written["pc"] = out / f"{lib}.pc"
    if "cmake" in outputs:
        _atomic_write(out / f"{lib}Config.cmake", _cmake_file(lib, omp_lib, gpu_libs))
        _atomic_write(out / f"{lib}ConfigVersion.cmake", _cmake_version_file())
        written["cmake"] = out / f"{lib}Config.cmake"
    return written


def _pc_file(lib: str, names, openmp: bool, gpu_libs=()) -> str:
    from . import __version__
    omp = " -fopenmp" if openmp else ""
    gpu = "".join(f" -l{g}" for g in gpu_libs) + (" -pthread" if gpu_libs else "")
    return "\n".join([
        "prefix=${pcfiledir}",
        "libdir=${prefix}",
        "includedir=${prefix}",
        "",
        f"Name: {lib}",
        f"Description: halo pipeline(s) {', '.join(names)} (generated by halo {__version__})",
        f"Version: {__version__}",
        "Cflags: -I${includedir}",
        f"Libs: -L${{libdir}} -l{lib}{gpu}",
        f"Libs.private: -lm{omp}",
        ""])


def _cmake_file(lib: str, omp_lib, gpu_libs=()) -> str:
    threads = ["pthread"] if omp_lib or gpu_libs else []
    deps = ";".join(["m", *list(gpu_libs), *([omp_lib] if omp_lib else []), *threads])
    shared_deps = ";".join([*list(gpu_libs), *(["pthread"] if gpu_libs else [])])
    return f"""# Generated by halo. Use:
#   find_package({lib} CONFIG REQUIRED)        # -D{lib}_DIR=<this directory>
#   target_link_libraries(app PRIVATE halo::{lib})   # or halo::{lib}_shared
get_filename_component(_halo_{lib}_dir "${{CMAKE_CURRENT_LIST_DIR}}" ABSOLUTE)
if(NOT TARGET halo::{lib})
  add_library(halo::{lib} STATIC IMPORTED)
  set_target_properties(halo::{lib} PROPERTIES
    IMPORTED_LOCATION "${{_halo_{lib}_dir}}/lib{lib}.a"
    INTERFACE_INCLUDE_DIRECTORIES "${{_halo_{lib}_dir}}"
    INTERFACE_LINK_LIBRARIES "{deps}")
endif()
if(NOT TARGET halo::{lib}_shared)
  add_library(halo::{lib}_shared SHARED IMPORTED)
  set_target_properties(halo::{lib}_shared PROPERTIES
    IMPORTED_LOCATION "${{_halo_{lib}_dir}}/lib{lib}.so"
    IMPORTED_SONAME "lib{lib}.so"
    INTERFACE_INCLUDE_DIRECTORIES "${{_halo_{lib}_dir}}"
    INTERFACE_LINK_LIBRARIES "{shared_deps}")
endif()
set({lib}_FOUND TRUE)
unset(_halo_{lib}_dir)
"""


def _cmake_version_file() -> str:
    from . import __version__
    return f"""# Generated by halo.
set(PACKAGE_VERSION "{__version__}")
if(PACKAGE_FIND_VERSION AND PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
"""


# -- the Pipeline methods (Halide's names) ---------------------------------------------------

def compile_to_c(pipeline, filename, arguments=None, fn_name=None, target=None):
    e = export_sources(pipeline, fn_name, target, arguments)
    _atomic_write(Path(filename), e.source)


def compile_to_header(pipeline, filename, arguments=None, fn_name=None, target=None):
    e = export_sources(pipeline, fn_name, target, arguments)
    _atomic_write(Path(filename), e.header)


def _compile_to_library(pipeline, prefix, arguments, fn_name, target, kind):
    prefix = Path(prefix)
    e = export_sources(pipeline, fn_name, target, arguments)
    gpu_libs = _gpu_libs([e])
    _atomic_write(prefix.with_name(prefix.name + ".h"), e.header)
    cc = _compiler()
    with tempfile.TemporaryDirectory(prefix="halo-aot-") as tmp:
        src = Path(tmp) / f"{e.name}.c"
        src.write_text(e.source)
        o = Path(tmp) / f"{e.name}.o"
        _run([*cc, *build_flags(target, e.openmp, bool(e.backend)), "-c", str(src), "-o",
              str(o)])
        dst = prefix.with_name(prefix.name + (".a" if kind == "a" else ".so"))
        tmp_out = Path(tmp) / dst.name
        if kind == "a":
            _run([os.environ.get("AR", "ar"), "rcs", str(tmp_out), str(o)])
        else:
            _run([*cc, "-shared", "-fPIC", "-o", str(tmp_out), str(o),
                  *(["-fopenmp"] if e.openmp else []), *_gpu_link_flags(cc, gpu_libs), "-lm"])
        os.replace(tmp_out, dst)
    return dst


def compile_to_static_library(pipeline, filename_prefix, arguments=None, fn_name=None,
                              target=None):
    return _compile_to_library(pipeline, filename_prefix, arguments, fn_name, target, "a")


def compile_to_shared_library(pipeline, filename_prefix, arguments=None, fn_name=None,
                              target=None):
    return _compile_to_library(pipeline, filename_prefix, arguments, fn_name, target, "so")
