"""Exported GPU pipelines: C implementations of `halo_gpu_api` over OpenCL
and the CUDA driver API, so that `halo.aot` ships a GPU pipeline as one
self-contained C file that needs only libOpenCL or libcuda (+ pthreads).

The host code is the JIT's (halo.codegen.gpu_host) with one difference:
buffer arguments are device buffers (`kDLOpenCL`: data is a `cl_mem`;
`kDLCUDA`: data is a `CUdeviceptr`), checked like CPU ones before any work.
The runtime printed here

* finds the device from the buffers: OpenCL: the `cl_mem`'s context and
  device `device_id` of that context; CUDA: device `device_id`, in the
  calling thread's current context if it is on that device, else in the
  device's primary context (pushed for the call);
* builds the kernels once per (context, device): OpenCL C source built with
  clBuildProgram; CUDA: PTX compiled by NVRTC (or nvcc) at export time and
  loaded with cuModuleLoadData. Programs live in a `NAME_gpu_context`, an
  object the caller may create (`NAME_gpu_context_create`, with its own
  command queue / stream) and pass to `NAME_gpu_argv`; `NAME` and
  `NAME_argv` use a default one, created on first use under a mutex;
* binds arguments (OpenCL: a sub-buffer for a nonzero byte_offset) after
  checking that each buffer really is device memory holding every element
  the tensor describes;
* gives internal buffers a device copy for the call, and keeps host and
  device copies coherent (the `sync` callback) for host code between
  kernels, as the JIT does;
* waits for the queue / stream before returning, and frees what it made.

Every call is synchronous; state lives in the caller's stack frame and in
the gpu context (mutex-guarded), never in other globals.
"""
from __future__ import annotations

import re
from string import Template

from ..errors import CompileError
from ..ir.mutator import IRVisitor
from .c import generate_c
from .c_like import CLikePrinter, c_string
from .gpu_host import GpuHostPrinter

BACKENDS = {
    "opencl": dict(device="kDLOpenCL", label="OpenCL",
                   needs="buffers must be OpenCL buffers (kDLOpenCL, data = cl_mem)",
                   link="OpenCL"),
    "cuda": dict(device="kDLCUDA", label="CUDA",
                 needs="buffers must be CUDA device memory (kDLCUDA, data = CUdeviceptr)",
                 link="cuda"),
}


def backend_of(target) -> str:
    return "cuda" if target.has_feature("cuda") else "opencl"


def host_printer_class(backend: str):
    b = BACKENDS[backend]

    class DeviceBufferHostPrinter(GpuHostPrinter):
        buffer_device = (b["device"], f"this pipeline runs on {b['label']}: {b['needs']}")
    return DeviceBufferHostPrinter


# -- what can be exported ----------------------------------------------------------------------

def check_exportable(lowered):
    """Buffer arguments of an exported GPU pipeline live on the device only:
    host code (a Func computed on the CPU) must not read or write them."""
    names = {a.name: a for a in lowered.arguments if a.kind != "param"}
    touched = []

    class V(IRVisitor):
        def visit_KernelLaunch(self, s):
            return None

        def visit_DeviceSync(self, s):
            if s.buffer in names:
                touched.append(s.buffer)

        def visit_Load(self, e):
            if e.buffer in names:
                touched.append(e.buffer)
            self.generic(e)

        def visit_Store(self, s):
            if s.buffer in names:
                touched.append(s.buffer)
            self.generic(s)
    V().visit(lowered.body)
    if touched:
        a = names[touched[0]]
        raise CompileError(
            f"pipeline {lowered.name}: {a.kind} buffer {a.user_name} is read or written by "
            f"host code (a Func computed on the CPU), but an exported GPU pipeline takes "
            f"device buffers, which the host cannot access: schedule every Func that reads "
            f"or writes {a.user_name} on the GPU (gpu_tile / gpu_blocks)")


# -- sources -----------------------------------------------------------------------------------

def _text_literal(text: str) -> str:
    """A readable C string literal of source text (escapes only what C needs;
    `?` too: trigraphs are on under -std=c99)."""
    out = ['"']
    for ch in text.encode("utf-8"):
        c = chr(ch)
        if c == "\n":
            out.append("\\n")
        elif c in '"\\?':
            out.append("\\" + c)
        elif 32 <= ch < 127:
            out.append(c)
        else:
            out.append(f"\\{ch:03o}")
    out.append('"')
    return "".join(out)


def _chunks(text: str, limit: int = 1000) -> list:
    """`text` in pieces of at most `limit` bytes, cut after newlines where
    possible (C99 compilers need accept only 4095-character literals)."""
    data, out, i = text.encode("utf-8"), [], 0
    while i < len(data):
        j = min(i + limit, len(data))
        if j < len(data):
            nl = data.rfind(b"\n", i, j)
            if nl > i:
                j = nl + 1
            else:
                while j > i + 1 and (data[j] & 0xC0) == 0x80:   # whole UTF-8 characters
                    j -= 1
        out.append(data[i:j].decode("utf-8"))
        i = j
    return out or [""]


def _tables(P: str, lowered, launches, slot_map) -> str:
    """Per kernel: name, buffer slots, written flags, scalar sizes, threads;
    per argument: name and element size (0: scalar)."""
    nargs = len(lowered.arguments)
    lines, entries = [], []
    nslots = nargs
    max_params = 1
    for i, launch in enumerate(launches):
        k = launch.kernel
        bufs, scalars = k.buffers(), k.scalars()
        slots = [slot_map.get(s, s) for s in launch.slots]
        nslots = max([nslots] + [s + 1 for s in slots])
        max_params = max(max_params, len(bufs) + len(scalars))
        sizes = [-1 if a.type.is_bool() else a.type.bytes() for a in scalars]
        lines.append(f"static const int32_t {P}_k{i}_slots[{max(len(bufs), 1)}] = "
                     f"{{{', '.join(map(str, slots)) or '0'}}};")
        lines.append(f"static const uint8_t {P}_k{i}_written[{max(len(bufs), 1)}] = "
                     f"{{{', '.join('1' if a.written else '0' for a in bufs) or '0'}}};")
        lines.append(f"static const int32_t {P}_k{i}_scalars[{max(len(scalars), 1)}] = "
                     f"{{{', '.join(map(str, sizes)) or '0'}}};")
        threads = ", ".join(str(int(t)) for t in (list(k.threads) + [1, 1, 1])[:3])
        entries.append(f"    {{{c_string(k.name)}, {c_string(k.func)}, {len(bufs)}, "
                       f"{len(scalars)}, {P}_k{i}_slots, {P}_k{i}_written, {P}_k{i}_scalars, "
                       f"{{{threads}}}}}")
    names = [c_string(a.user_name) for a in lowered.arguments]
    elems = ["0" if a.kind == "param" else str(a.type.bytes())
             for a in lowered.arguments]
    return "\n".join([
        f"#define {P}_NARGS {nargs}",
        f"#define {P}_NSLOTS {nslots}",
        f"#define {P}_NKERNELS {len(launches)}",
        f"#define {P}_MAXPARAMS {max_params}",
        "typedef struct {",
        "    const char *name, *func;",
        "    int32_t nbuf, nscalar;",
        "    const int32_t *slots;        /* per buffer: its slot (arguments first) */",
        "    const uint8_t *written;      /* per buffer: 1 if the kernel writes it */",
        "    const int32_t *scalar_bytes; /* per scalar: its size; -1: bool, passed as int32 */",
        "    uint32_t threads[3];",
        f"}} {P}_kernel_info;",
        *lines,
        f"static const {P}_kernel_info {P}_kernels[{P}_NKERNELS] = {{",
        ",\n".join(entries),
        "};",
        f"static const char *const {P}_arg_names[{P}_NARGS] = {{{', '.join(names)}}};",
        f"static const int32_t {P}_arg_elem[{P}_NARGS] = {{{', '.join(elems)}}};",
        ""])


def _device_code(P: str, backend: str, code: str) -> str:
    pieces = _chunks(code)
    what = "OpenCL C source of the kernels" if backend == "opencl" else \
        "PTX of the kernels (NUL-terminated when joined)"
    return "\n".join([
        f"/* The {what}, in pieces (C99 limits string literals). */",
        f"#define {P}_NCHUNKS {len(pieces)}",
        f"static const char *const {P}_device_code[{P}_NCHUNKS] = {{",
        ",\n".join(_text_literal(p) for p in pieces),
        "};", ""])


def _wrappers(P: str, lowered, param_names) -> str:
    pr = CLikePrinter()
    params, packs = [], []
    for a, pn in zip(lowered.arguments, param_names):
        if a.kind == "param":
            params.append(f"{pr.ctype(a.type)} {pn}")
            packs.append(f"(void *)&{pn}")
        else:
            params.append(f"DLTensor *{pn}")
            packs.append(f"(void *){pn}")
    sig = ", ".join(params) if params else "void"
    return "\n".join([
        f"int {P}({sig}) {{",
        f"    void *argv[{P}_NARGS] = {{{', '.join(packs)}}};",
        f"    return {P}_run({P}_default_context(), argv);",
        "}",
        f"int {P}_argv(void **args) {{ return {P}_run({P}_default_context(), args); }}",
        f"int {P}_gpu_argv({P}_gpu_context *ctx, void **args) {{ return {P}_run(ctx, args); }}",
        f"int {P}_bounds_query(void **args, const int32_t *const *mins, int64_t *out) "
        f"{{ return {P}_query_impl(args, mins, out); }}",
        ""])


def export_gpu_source(lowered, name: str, target, launches, slot_map, device_code: str,
                      param_names: list):
    """(C source, uses OpenMP) of an exported GPU pipeline: the host code,
    the runtime for the target's backend and the kernels (`device_code`:
    OpenCL C, or PTX for CUDA)."""
    backend = backend_of(target)
    P = name
    ids = {launch.kernel: i for i, launch in enumerate(launches)}
    n = len(lowered.arguments)
    host_cls = host_printer_class(backend)
    host, openmp = generate_c(lowered, P, printer=lambda: host_cls(n, ids), wrappers=False)
    ocl = backend == "opencl"
    m = re.search(r"^\.version\s+(\S+)", device_code, re.M)
    subst = dict(P=P, ptx_version=m.group(1) if m else "?")
    parts = [FEATURES, host, "",
             f"/* ---- {BACKENDS[backend]['label']} runtime of {P} (generated by halo) ---- */",
             OPENCL_DECLS if ocl else CUDA_DECLS,
             _tables(P, lowered, launches, slot_map),
             _device_code(P, backend, device_code)]
    parts += [Template(t).substitute(subst) for t in (
        COMMON_NAMES, OPENCL_TYPES if ocl else CUDA_TYPES, COMMON_CALL,
        OPENCL_FUNCTIONS if ocl else CUDA_FUNCTIONS, COMMON_TAIL)]
    parts.append(_wrappers(P, lowered, param_names))
    return "\n".join(parts), openmp


def header_declarations(name: str, backend: str) -> str:
    """The extra declarations of NAME.h for a GPU pipeline."""
    P = name
    if backend == "opencl":
        doc = [
            f"/* {P} runs on OpenCL. Buffers: device_type kDLOpenCL, data a cl_mem,",
            " * device_id the index of the device in the cl_mem's context; strides",
            " * non-negative; a nonzero byte_offset must be a multiple of the device's",
            " * CL_DEVICE_MEM_BASE_ADDR_ALIGN (it becomes a sub-buffer). The inputs must be",
            " * written (e.g. clFinish) before the call; the call returns when the outputs",
            " * are written.",
            f" * A {P}_gpu_context holds the built program per (context, device) and the",
            " * command queue: `queue` is a cl_command_queue to run on (retained), or NULL",
            " * for one created per (context, device). Destroy it only when no call is",
            " * running on it; it keeps the OpenCL contexts it ran on alive (retained)",
            f" * until then. {P}() and {P}_argv() use a default context made on first use."]
    else:
        doc = [
            f"/* {P} runs on CUDA. Buffers: device_type kDLCUDA, data a CUdeviceptr,",
            " * device_id the CUDA device ordinal. The call runs in the calling thread's",
            " * current CUDA context if it is on that device, else in the device's primary",
            " * context. The inputs must be written before the call (or on the stream",
            " * given); the call returns when the outputs are written.",
            f" * A {P}_gpu_context holds the loaded module per CUDA context and the stream:",
            " * `stream` is a CUstream to run on, or NULL for the legacy default stream.",
            " * Destroy it only when no call is running on it, and before the CUDA",
            f" * contexts it ran on. {P}() and {P}_argv() use a default context made on",
            " * first use."]
    return "\n".join(doc + [
        f" * Returns 0, or an error code with the text in {P}_error_message(). */",
        f"typedef struct {P}_gpu_context {P}_gpu_context;",
        f"int {P}_gpu_context_create(void *{'queue' if backend == 'opencl' else 'stream'}, "
        f"{P}_gpu_context **out);",
        f"void {P}_gpu_context_destroy({P}_gpu_context *ctx);",
        f"/* As {P}_argv, on a context made by {P}_gpu_context_create. */",
        f"int {P}_gpu_argv({P}_gpu_context *ctx, void **args);"])


# -- the C text --------------------------------------------------------------------------------

# pthreads under -std=c99 (must precede every #include)
FEATURES = """#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200112L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L
#endif"""

# The OpenCL 1.2 API subset used, ABI-identical to Khronos' CL/cl.h: the
# export builds without OpenCL headers (define HALO_USE_CL_H to include
# <CL/cl.h>; the prototypes below then double as a check against it).
OPENCL_DECLS = r"""
#include <pthread.h>
#ifdef HALO_USE_CL_H
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#else
typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_uint cl_bool;
typedef cl_ulong cl_bitfield;
typedef cl_bitfield cl_mem_flags;
typedef cl_bitfield cl_command_queue_properties;
typedef cl_uint cl_mem_info;
typedef cl_uint cl_context_info;
typedef cl_uint cl_device_info;
typedef cl_uint cl_program_build_info;
typedef cl_uint cl_command_queue_info;
typedef cl_uint cl_buffer_create_type;
typedef struct _cl_context *cl_context;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;
typedef struct _cl_buffer_region { size_t origin; size_t size; } cl_buffer_region;
#endif
cl_int clGetMemObjectInfo(cl_mem, cl_mem_info, size_t, void *, size_t *);
cl_int clGetContextInfo(cl_context, cl_context_info, size_t, void *, size_t *);
cl_int clGetDeviceInfo(cl_device_id, cl_device_info, size_t, void *, size_t *);
cl_int clGetCommandQueueInfo(cl_command_queue, cl_command_queue_info, size_t, void *, size_t *);
cl_int clRetainContext(cl_context);
cl_int clReleaseContext(cl_context);
cl_command_queue clCreateCommandQueue(cl_context, cl_device_id, cl_command_queue_properties,
                                      cl_int *);
cl_int clRetainCommandQueue(cl_command_queue);
cl_int clReleaseCommandQueue(cl_command_queue);
cl_program clCreateProgramWithSource(cl_context, cl_uint, const char **, const size_t *, cl_int *);
cl_int clBuildProgram(cl_program, cl_uint, const cl_device_id *, const char *,
                      void (*)(cl_program, void *), void *);
cl_int clGetProgramBuildInfo(cl_program, cl_device_id, cl_program_build_info, size_t, void *,
                             size_t *);
cl_int clReleaseProgram(cl_program);
cl_kernel clCreateKernel(cl_program, const char *, cl_int *);
cl_int clReleaseKernel(cl_kernel);
cl_int clSetKernelArg(cl_kernel, cl_uint, size_t, const void *);
cl_int clEnqueueNDRangeKernel(cl_command_queue, cl_kernel, cl_uint, const size_t *,
                              const size_t *, const size_t *, cl_uint, const cl_event *,
                              cl_event *);
cl_mem clCreateBuffer(cl_context, cl_mem_flags, size_t, void *, cl_int *);
cl_mem clCreateSubBuffer(cl_mem, cl_mem_flags, cl_buffer_create_type, const void *, cl_int *);
cl_int clReleaseMemObject(cl_mem);
cl_int clEnqueueReadBuffer(cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *, cl_uint,
                           const cl_event *, cl_event *);
cl_int clEnqueueWriteBuffer(cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *,
                            cl_uint, const cl_event *, cl_event *);
cl_int clFinish(cl_command_queue);
#define HALO_CL_MEM_SIZE 0x1102
#define HALO_CL_MEM_CONTEXT 0x1106
#define HALO_CL_CONTEXT_DEVICES 0x1081
#define HALO_CL_DEVICE_MAX_WORK_GROUP_SIZE 0x1004
#define HALO_CL_DEVICE_MEM_BASE_ADDR_ALIGN 0x1019
#define HALO_CL_QUEUE_CONTEXT 0x1090
#define HALO_CL_QUEUE_DEVICE 0x1091
#define HALO_CL_PROGRAM_BUILD_LOG 0x1183
#define HALO_CL_MEM_READ_WRITE 1
#define HALO_CL_BUFFER_CREATE_TYPE_REGION 0x1220
"""

# The CUDA driver API subset used (versioned names, as cuda.h maps them),
# ABI-identical to cuda.h: the export builds without the CUDA toolkit
# (define HALO_USE_CUDA_H to include <cuda.h>; the prototypes below then
# double as a check against it).
CUDA_DECLS = r"""
#include <pthread.h>
#ifdef HALO_USE_CUDA_H
#include <cuda.h>
#else
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef int CUfunction_attribute;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
#endif
CUresult cuInit(unsigned int);
CUresult cuDeviceGet(CUdevice *, int);
CUresult cuCtxGetCurrent(CUcontext *);
CUresult cuCtxGetDevice(CUdevice *);
CUresult cuCtxPushCurrent_v2(CUcontext);
CUresult cuCtxPopCurrent_v2(CUcontext *);
CUresult cuDevicePrimaryCtxRetain(CUcontext *, CUdevice);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice);
CUresult cuModuleLoadData(CUmodule *, const void *);
CUresult cuModuleUnload(CUmodule);
CUresult cuModuleGetFunction(CUfunction *, CUmodule, const char *);
CUresult cuFuncGetAttribute(int *, CUfunction_attribute, CUfunction);
CUresult cuLaunchKernel(CUfunction, unsigned int, unsigned int, unsigned int, unsigned int,
                        unsigned int, unsigned int, unsigned int, CUstream, void **, void **);
CUresult cuMemAlloc_v2(CUdeviceptr *, size_t);
CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemGetAddressRange_v2(CUdeviceptr *, size_t *, CUdeviceptr);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr, const void *, size_t, CUstream);
CUresult cuMemcpyDtoHAsync_v2(void *, CUdeviceptr, size_t, CUstream);
CUresult cuStreamSynchronize(CUstream);
CUresult cuGetErrorString(CUresult, const char **);
#define HALO_CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK 0
"""

# Shared by both backends: names, then (after the backend's types) the
# state of one call and helpers the backend's functions use.
COMMON_NAMES = r"""
typedef struct ${P}_gpu_context ${P}_gpu_context;
typedef struct ${P}_entry ${P}_entry;
"""

COMMON_CALL = r"""
/* The state of one call, on the caller's stack: per slot (pipeline
   arguments, then internal buffers) the device buffer kernels get, and
   for internal buffers the host copy and which side is newer. */
typedef struct {
    ${P}_gpu_context *gc;
    ${P}_entry *e;                  /* program and queue, once bound */
    void *const *args;
    int bound;
    uint8_t owned[${P}_NSLOTS];     /* released when the call ends */
    void *host[${P}_NSLOTS];
    int64_t bytes[${P}_NSLOTS];
    uint8_t host_dirty[${P}_NSLOTS], device_dirty[${P}_NSLOTS];
    ${P}_backend_call b;
} ${P}_call;

/* Where tensor t lies, in bytes from its data pointer: [*lo, *hi).
   0 if it has no elements. */
static int ${P}_span(const DLTensor *t, int64_t elem, int64_t *lo, int64_t *hi) {
    int64_t compact = 1, a = 0, b = 0;
    int d;
    for (d = t->ndim - 1; d >= 0; d--) {
        const int64_t n = t->shape[d];
        const int64_t s = t->strides ? t->strides[d] : compact;
        if (n == 0) return 0;
        if (s < 0) a += (n - 1) * s; else b += (n - 1) * s;
        compact *= n;
    }
    *lo = (int64_t)t->byte_offset + a * elem;
    *hi = (int64_t)t->byte_offset + (b + 1) * elem;
    return 1;
}
"""

COMMON_TAIL = r"""
int ${P}_gpu_context_create(void *handle, ${P}_gpu_context **out) {
    ${P}_gpu_context *gc;
    int r;
    ${P}_errbuf[0] = 0;
    if (out == NULL) {
        halo_set_error(${P}_errbuf, "${P}_gpu_context_create: out is NULL");
        return -1;
    }
    *out = NULL;
    gc = (${P}_gpu_context *)calloc(1, sizeof *gc);
    if (gc == NULL) {
        halo_set_error(${P}_errbuf, "Out of memory creating a GPU context");
        return -2;
    }
    if (pthread_mutex_init(&gc->lock, NULL) != 0) {
        free(gc);
        halo_set_error(${P}_errbuf, "Could not create a mutex for a GPU context");
        return -2;
    }
    r = ${P}_context_init(gc, handle, ${P}_errbuf);
    if (r != 0) {
        pthread_mutex_destroy(&gc->lock);
        free(gc);
        return r;
    }
    *out = gc;
    return 0;
}

void ${P}_gpu_context_destroy(${P}_gpu_context *gc) {
    if (gc == NULL) return;
    while (gc->entries != NULL) {
        ${P}_entry *e = gc->entries;
        gc->entries = e->next;
        ${P}_entry_free(e);
    }
    ${P}_context_fini(gc);
    pthread_mutex_destroy(&gc->lock);
    free(gc);
}

static pthread_mutex_t ${P}_default_lock = PTHREAD_MUTEX_INITIALIZER;
static ${P}_gpu_context *${P}_default_ctx = NULL;

/* The context of NAME() and NAME_argv(): made on first use, kept for the
   process (the only global state: guarded by a mutex). */
static ${P}_gpu_context *${P}_default_context(void) {
    ${P}_gpu_context *gc = NULL;
    pthread_mutex_lock(&${P}_default_lock);
    if (${P}_default_ctx == NULL && ${P}_gpu_context_create(NULL, &gc) == 0) ${P}_default_ctx = gc;
    gc = ${P}_default_ctx;
    pthread_mutex_unlock(&${P}_default_lock);
    return gc;
}

/* Slot `s` now holds host allocation `host` of `bytes`: forget the device
   copy of an earlier allocation. */
static void ${P}_forget(${P}_call *c, int s, void *host, int64_t bytes) {
    if (c->owned[s]) ${P}_release(c, s);
    c->owned[s] = 0;
    c->host[s] = host;
    c->bytes[s] = bytes;
    c->host_dirty[s] = 0;
    c->device_dirty[s] = 0;
}

/* Launches after the first that uses an internal buffer pass its size as
   -1 (as for pipeline arguments): it is the size seen first. */
static int ${P}_known_size(${P}_call *c, int s, void *host, int64_t *bytes) {
    if (*bytes >= 0) return 0;
    if (c->host[s] == host && c->bytes[s] >= 0 && host != NULL) {
        *bytes = c->bytes[s];
        return 0;
    }
    halo_set_error(${P}_errbuf, "The size of internal buffer slot %d is unknown (a halo bug)",
                   s);
    return -5;
}

/* An internal buffer a kernel uses: its device copy, up to date. */
static int ${P}_prepare(${P}_call *c, int s, void *host, int64_t bytes) {
    int r;
    if ((r = ${P}_known_size(c, s, host, &bytes)) != 0) return r;
    if (c->host[s] != host || c->bytes[s] != bytes) ${P}_forget(c, s, host, bytes);
    if (!c->owned[s]) {
        if ((r = ${P}_alloc(c, s, bytes)) != 0) return r;
        c->owned[s] = 1;
    }
    if (c->host_dirty[s] && bytes > 0) {
        if ((r = ${P}_copy(c, s, host, bytes, 1)) != 0) return r;
    }
    c->host_dirty[s] = 0;
    return 0;
}

static int ${P}_launch(void *ctx, int32_t k, void **args, const int64_t *bytes,
                       const int32_t *grid) {
    ${P}_call *c = (${P}_call *)ctx;
    const ${P}_kernel_info *ki;
    int b, r;
    if (k < 0 || k >= ${P}_NKERNELS) return -5;
    ki = &${P}_kernels[k];
    if (grid[0] <= 0 || grid[1] <= 0 || grid[2] <= 0) return 0;      /* nothing to compute */
    if (!c->bound && (r = ${P}_bind(c)) != 0) return r;
    for (b = 0; b < ki->nbuf; b++) {
        const int s = ki->slots[b];
        if (s >= ${P}_NARGS && (r = ${P}_prepare(c, s, args[b], bytes[b])) != 0) return r;
    }
    if ((r = ${P}_run_kernel(c, k, ki, args, grid)) != 0) return r;
    for (b = 0; b < ki->nbuf; b++) {
        if (ki->written[b] && ki->slots[b] >= ${P}_NARGS) c->device_dirty[ki->slots[b]] = 1;
    }
    return 0;
}

/* Host code is about to use internal buffer `s` (action 0: bring back what
   kernels wrote) or has written it (action 1). */
static int ${P}_sync(void *ctx, int32_t s, int32_t action, void *host, int64_t bytes) {
    ${P}_call *c = (${P}_call *)ctx;
    int r;
    if (s < ${P}_NARGS || s >= ${P}_NSLOTS) {
        halo_set_error(${P}_errbuf, "Host code touched device buffer slot %d (a halo bug: "
                       "export should have refused this pipeline)", (int)s);
        return -5;
    }
    if ((r = ${P}_known_size(c, s, host, &bytes)) != 0) return r;
    if (c->host[s] != host || c->bytes[s] != bytes) ${P}_forget(c, s, host, bytes);
    if (action == 0) {
        if (c->device_dirty[s] && c->owned[s] && bytes > 0) {
            if ((r = ${P}_copy(c, s, host, bytes, 0)) != 0) return r;
        }
        c->device_dirty[s] = 0;
    } else {
        c->host_dirty[s] = 1;
        c->device_dirty[s] = 0;
    }
    return 0;
}

static int ${P}_run(${P}_gpu_context *gc, void *const *argv) {
    void *args[${P}_NARGS + 1];
    ${P}_call c;
    halo_gpu_api api;
    int i, r, s;
    if (gc == NULL) {
        halo_set_error(${P}_errbuf, "No GPU context (out of memory creating the default one?)");
        return -2;
    }
    if (argv == NULL) {
        halo_set_error(${P}_errbuf, "The argument array is NULL");
        return -1;
    }
    memset(&c, 0, sizeof c);
    for (i = 0; i < ${P}_NARGS; i++) args[i] = argv[i];
    api.ctx = &c;
    api.launch = ${P}_launch;
    api.sync = ${P}_sync;
    args[${P}_NARGS] = (void *)&api;
    c.gc = gc;
    c.args = args;
    r = ${P}_impl(args, NULL);
    if (c.bound) r = ${P}_unbind(&c, r);
    for (s = 0; s < ${P}_NSLOTS; s++) {
        if (c.owned[s]) ${P}_release(&c, s);
    }
    if (c.bound) ${P}_leave(&c);
    return r;
}
"""

OPENCL_TYPES = r"""
typedef struct {
    cl_mem mem[${P}_NSLOTS];         /* what kernels get, per slot */
} ${P}_backend_call;
struct ${P}_entry {
    ${P}_entry *next;
    pthread_mutex_t lock;            /* clSetKernelArg + enqueue are one step */
    cl_context context;              /* retained: the key cannot be reused */
    cl_device_id device;
    cl_command_queue queue;
    cl_program program;
    cl_kernel kernels[${P}_NKERNELS];
    size_t max_group;
    cl_uint align_bits;
};
struct ${P}_gpu_context {
    pthread_mutex_t lock;
    cl_command_queue queue;          /* the caller's, or NULL */
    ${P}_entry *entries;
};
"""

OPENCL_FUNCTIONS = r"""
static int ${P}_context_init(${P}_gpu_context *gc, void *queue, char *err) {
    cl_int e;
    if (queue == NULL) return 0;
    e = clRetainCommandQueue((cl_command_queue)queue);
    if (e != 0) {
        halo_set_error(err, "The queue given is not an OpenCL command queue (OpenCL error %d)",
                       (int)e);
        return -3;
    }
    gc->queue = (cl_command_queue)queue;
    return 0;
}

static void ${P}_context_fini(${P}_gpu_context *gc) {
    if (gc->queue != NULL) clReleaseCommandQueue(gc->queue);
}

static void ${P}_entry_free(${P}_entry *e) {
    int k;
    for (k = 0; k < ${P}_NKERNELS; k++) {
        if (e->kernels[k] != NULL) clReleaseKernel(e->kernels[k]);
    }
    if (e->program != NULL) clReleaseProgram(e->program);
    if (e->queue != NULL) clReleaseCommandQueue(e->queue);
    if (e->context != NULL) clReleaseContext(e->context);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

static int ${P}_build(${P}_entry *e, char *err) {
    cl_int ce = 0;
    size_t n = 0;
    int k;
    e->program = clCreateProgramWithSource(e->context, ${P}_NCHUNKS,
                                           (const char **)${P}_device_code, NULL, &ce);
    if (ce != 0) {
        halo_set_error(err, "OpenCL: clCreateProgramWithSource failed (error %d)", (int)ce);
        return -5;
    }
    ce = clBuildProgram(e->program, 1, &e->device, "", NULL, NULL);
    if (ce != 0) {
        char *log = NULL;
        if (clGetProgramBuildInfo(e->program, e->device, HALO_CL_PROGRAM_BUILD_LOG, 0, NULL,
                                  &n) == 0)
            log = (char *)calloc(n + 1, 1);
        if (log != NULL)
            clGetProgramBuildInfo(e->program, e->device, HALO_CL_PROGRAM_BUILD_LOG, n, log, NULL);
        halo_set_error(err, "OpenCL could not build the kernels of ${P} (error %d): %.800s",
                       (int)ce, log != NULL ? log : "(no build log)");
        free(log);
        return -5;
    }
    for (k = 0; k < ${P}_NKERNELS; k++) {
        e->kernels[k] = clCreateKernel(e->program, ${P}_kernels[k].name, &ce);
        if (ce != 0) {
            halo_set_error(err, "OpenCL: clCreateKernel(%s) failed (error %d)",
                           ${P}_kernels[k].name, (int)ce);
            return -5;
        }
    }
    return 0;
}

/* A new entry for (context, device): queue, limits, built program. */
static int ${P}_entry_new(${P}_gpu_context *gc, cl_context context, cl_device_id device,
                          char *err, ${P}_entry **out) {
    cl_int ce = 0;
    int r;
    ${P}_entry *e = (${P}_entry *)calloc(1, sizeof *e);
    if (e == NULL || pthread_mutex_init(&e->lock, NULL) != 0) {
        free(e);
        halo_set_error(err, "Out of memory building the kernels of ${P}");
        return -2;
    }
    clRetainContext(context);
    e->context = context;
    e->device = device;
    if (gc->queue != NULL) {
        cl_context qc = NULL;
        cl_device_id qd = NULL;
        clGetCommandQueueInfo(gc->queue, HALO_CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL);
        clGetCommandQueueInfo(gc->queue, HALO_CL_QUEUE_DEVICE, sizeof qd, &qd, NULL);
        if (qc != context || qd != device) {
            halo_set_error(err, "The buffers are on another OpenCL context or device than the "
                           "command queue of the GPU context");
            ${P}_entry_free(e);
            return -3;
        }
        clRetainCommandQueue(gc->queue);
        e->queue = gc->queue;
    } else {
        e->queue = clCreateCommandQueue(context, device, 0, &ce);
        if (ce != 0) {
            e->queue = NULL;
            halo_set_error(err, "OpenCL: clCreateCommandQueue failed (error %d)", (int)ce);
            ${P}_entry_free(e);
            return -5;
        }
    }
    if (clGetDeviceInfo(device, HALO_CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof e->max_group,
                        &e->max_group, NULL) != 0 ||
        clGetDeviceInfo(device, HALO_CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof e->align_bits,
                        &e->align_bits, NULL) != 0) {
        halo_set_error(err, "OpenCL: clGetDeviceInfo failed");
        ${P}_entry_free(e);
        return -5;
    }
    if ((r = ${P}_build(e, err)) != 0) {
        ${P}_entry_free(e);
        return r;
    }
    *out = e;
    return 0;
}

static int ${P}_entry_get(${P}_gpu_context *gc, cl_context context, cl_device_id device,
                          char *err, ${P}_entry **out) {
    ${P}_entry *e;
    int r = 0;
    pthread_mutex_lock(&gc->lock);
    for (e = gc->entries; e != NULL; e = e->next) {
        if (e->context == context && e->device == device) break;
    }
    if (e == NULL && (r = ${P}_entry_new(gc, context, device, err, &e)) == 0) {
        e->next = gc->entries;
        gc->entries = e;
    }
    pthread_mutex_unlock(&gc->lock);
    *out = e;
    return r;
}

/* Argument buffer i: check that the cl_mem holds the tensor, and bind it
   (a sub-buffer for a nonzero byte_offset). */
static int ${P}_bind_arg(${P}_call *c, int i) {
    const DLTensor *t = (const DLTensor *)c->args[i];
    const char *name = ${P}_arg_names[i];
    cl_mem mem = (cl_mem)t->data;
    size_t size = 0;
    int64_t lo = 0, hi = 0;
    cl_buffer_region region;
    cl_int ce = 0;
    int d;
    for (d = 0; d < t->ndim; d++) {
        if (t->strides != NULL && t->strides[d] < 0 && t->shape[d] > 1) {
            halo_set_error(${P}_errbuf, "Buffer %s has a negative stride in dimension %d (numpy "
                           "order); OpenCL buffers need non-negative strides", name, d);
            return -3;
        }
    }
    clGetMemObjectInfo(mem, HALO_CL_MEM_SIZE, sizeof size, &size, NULL);
    if (${P}_span(t, ${P}_arg_elem[i], &lo, &hi) && (uint64_t)hi > (uint64_t)size) {
        halo_set_error(${P}_errbuf, "Buffer %s spans bytes [%lld, %lld) of its cl_mem, which "
                       "holds only %llu bytes", name, (long long)lo, (long long)hi,
                       (unsigned long long)size);
        return -3;
    }
    c->b.mem[i] = mem;
    if (t->byte_offset == 0 || t->byte_offset >= size) return 0;   /* (nothing to access) */
    if (c->e->align_bits >= 8 && t->byte_offset % (c->e->align_bits / 8) != 0) {
        halo_set_error(${P}_errbuf, "Buffer %s has byte_offset %llu, which is not a multiple of "
                       "the device's base address alignment (%u bytes): OpenCL cannot start a "
                       "buffer there", name, (unsigned long long)t->byte_offset,
                       (unsigned)(c->e->align_bits / 8));
        return -3;
    }
    region.origin = (size_t)t->byte_offset;
    region.size = size - (size_t)t->byte_offset;
    c->b.mem[i] = clCreateSubBuffer(mem, 0, HALO_CL_BUFFER_CREATE_TYPE_REGION, &region, &ce);
    if (ce != 0) {
        c->b.mem[i] = NULL;
        halo_set_error(${P}_errbuf, "OpenCL: clCreateSubBuffer for buffer %s at byte_offset %llu "
                       "failed (error %d)", name, (unsigned long long)t->byte_offset, (int)ce);
        return -3;
    }
    c->owned[i] = 1;
    return 0;
}

/* First launch: the context and device of the buffers, the built program. */
static int ${P}_bind(${P}_call *c) {
    cl_context context = NULL;
    cl_device_id *devices, device;
    size_t nbytes = 0;
    int32_t dev_id = 0;
    int i, first = -1, r;
    for (i = 0; i < ${P}_NARGS; i++) {
        const DLTensor *t = (const DLTensor *)c->args[i];
        cl_context mc = NULL;
        cl_int ce;
        if (${P}_arg_elem[i] == 0) continue;
        ce = clGetMemObjectInfo((cl_mem)t->data, HALO_CL_MEM_CONTEXT, sizeof mc, &mc, NULL);
        if (ce != 0) {
            halo_set_error(${P}_errbuf, "Buffer %s: data is not an OpenCL buffer (cl_mem): "
                           "clGetMemObjectInfo failed with error %d", ${P}_arg_names[i], (int)ce);
            return -3;
        }
        if (first < 0) {
            first = i;
            context = mc;
            dev_id = t->device.device_id;
        } else if (mc != context || t->device.device_id != dev_id) {
            halo_set_error(${P}_errbuf, "Buffers %s and %s are on different OpenCL contexts or "
                           "devices", ${P}_arg_names[first], ${P}_arg_names[i]);
            return -3;
        }
    }
    if (first < 0) return -5;
    if (clGetContextInfo(context, HALO_CL_CONTEXT_DEVICES, 0, NULL, &nbytes) != 0 ||
        dev_id < 0 || (size_t)dev_id >= nbytes / sizeof(cl_device_id)) {
        halo_set_error(${P}_errbuf, "Buffer %s has device_id %d, but its OpenCL context has "
                       "%d device(s)", ${P}_arg_names[first], (int)dev_id,
                       (int)(nbytes / sizeof(cl_device_id)));
        return -3;
    }
    devices = (cl_device_id *)malloc(nbytes);
    if (devices == NULL) {
        halo_set_error(${P}_errbuf, "Out of memory");
        return -2;
    }
    clGetContextInfo(context, HALO_CL_CONTEXT_DEVICES, nbytes, devices, NULL);
    device = devices[dev_id];
    free(devices);
    if ((r = ${P}_entry_get(c->gc, context, device, ${P}_errbuf, &c->e)) != 0) return r;
    c->bound = 1;
    for (i = 0; i < ${P}_NARGS; i++) {
        if (${P}_arg_elem[i] != 0 && (r = ${P}_bind_arg(c, i)) != 0) return r;
    }
    return 0;
}

/* Wait for the queue: the outputs are written when the call returns. */
static int ${P}_unbind(${P}_call *c, int r) {
    cl_int ce = clFinish(c->e->queue);
    if (ce != 0 && r == 0) {
        halo_set_error(${P}_errbuf, "OpenCL: clFinish failed (error %d)", (int)ce);
        r = -5;
    }
    return r;
}

static void ${P}_leave(${P}_call *c) { (void)c; }

static void ${P}_release(${P}_call *c, int s) {
    if (c->b.mem[s] != NULL) clReleaseMemObject(c->b.mem[s]);
    c->b.mem[s] = NULL;
}

static int ${P}_alloc(${P}_call *c, int s, int64_t bytes) {
    cl_int ce = 0;
    c->b.mem[s] = clCreateBuffer(c->e->context, HALO_CL_MEM_READ_WRITE,
                                 bytes > 0 ? (size_t)bytes : 1, NULL, &ce);
    if (ce != 0) {
        c->b.mem[s] = NULL;
        halo_set_error(${P}_errbuf, "OpenCL: allocating %lld bytes on the device failed "
                       "(error %d)", (long long)bytes, (int)ce);
        return -2;
    }
    return 0;
}

/* Blocking copy of an internal buffer: to the device (1) or the host (0). */
static int ${P}_copy(${P}_call *c, int s, void *host, int64_t bytes, int to_device) {
    cl_int ce = to_device
        ? clEnqueueWriteBuffer(c->e->queue, c->b.mem[s], 1, 0, (size_t)bytes, host, 0, NULL, NULL)
        : clEnqueueReadBuffer(c->e->queue, c->b.mem[s], 1, 0, (size_t)bytes, host, 0, NULL, NULL);
    if (ce != 0) {
        halo_set_error(${P}_errbuf, "OpenCL: copying an internal buffer to the %s failed "
                       "(error %d)", to_device ? "device" : "host", (int)ce);
        return -5;
    }
    return 0;
}

static int ${P}_run_kernel(${P}_call *c, int32_t k, const ${P}_kernel_info *ki, void **args,
                           const int32_t *grid) {
    cl_kernel kern = c->e->kernels[k];
    size_t global[3], local[3];
    cl_int ce = 0;
    int b, j, d;
    for (d = 0; d < 3; d++) {
        local[d] = ki->threads[d];
        global[d] = (size_t)grid[d] * ki->threads[d];
    }
    if (local[0] * local[1] * local[2] > c->e->max_group) {
        halo_set_error(${P}_errbuf, "GPU kernel %s (Func %s) uses %d threads per block, more "
                       "than the OpenCL device allows (%d)", ki->name, ki->func,
                       (int)(local[0] * local[1] * local[2]), (int)c->e->max_group);
        return -5;
    }
    pthread_mutex_lock(&c->e->lock);
    for (b = 0; b < ki->nbuf && ce == 0; b++)
        ce = clSetKernelArg(kern, (cl_uint)b, sizeof(cl_mem), &c->b.mem[ki->slots[b]]);
    for (j = 0; j < ki->nscalar && ce == 0; j++) {
        const void *v = args[ki->nbuf + j];
        if (ki->scalar_bytes[j] < 0) {
            const int32_t as_int = *(const bool *)v ? 1 : 0;
            ce = clSetKernelArg(kern, (cl_uint)(ki->nbuf + j), sizeof as_int, &as_int);
        } else {
            ce = clSetKernelArg(kern, (cl_uint)(ki->nbuf + j), (size_t)ki->scalar_bytes[j], v);
        }
    }
    if (ce == 0)
        ce = clEnqueueNDRangeKernel(c->e->queue, kern, 3, NULL, global, local, 0, NULL, NULL);
    pthread_mutex_unlock(&c->e->lock);
    if (ce != 0) {
        halo_set_error(${P}_errbuf, "OpenCL: running GPU kernel %s (Func %s) failed (error %d)",
                       ki->name, ki->func, (int)ce);
        return -5;
    }
    return 0;
}
"""

CUDA_TYPES = r"""
typedef struct {
    CUdeviceptr ptr[${P}_NSLOTS];    /* what kernels get, per slot */
    CUdevice device;
    int pushed;                      /* the primary context was pushed for the call */
} ${P}_backend_call;
struct ${P}_entry {
    ${P}_entry *next;
    CUcontext context;
    CUmodule module;
    CUfunction functions[${P}_NKERNELS];
    int max_threads[${P}_NKERNELS];
};
struct ${P}_gpu_context {
    pthread_mutex_t lock;
    CUstream stream;                 /* the caller's, or NULL: the default stream */
    ${P}_entry *entries;
};
"""

CUDA_FUNCTIONS = r"""
static const char *${P}_cu_error(CUresult r) {
    const char *s = NULL;
    if (cuGetErrorString(r, &s) != 0 || s == NULL) s = "unknown CUDA error";
    return s;
}

static int ${P}_context_init(${P}_gpu_context *gc, void *stream, char *err) {
    (void)err;
    gc->stream = (CUstream)stream;
    return 0;
}

static void ${P}_context_fini(${P}_gpu_context *gc) { (void)gc; }

static void ${P}_entry_free(${P}_entry *e) {
    if (e->module != NULL && cuCtxPushCurrent_v2(e->context) == 0) {
        CUcontext popped;
        cuModuleUnload(e->module);
        cuCtxPopCurrent_v2(&popped);
    }
    free(e);
}

/* A new entry for the current context: the PTX loaded, the functions. */
static int ${P}_entry_new(CUcontext context, char *err, ${P}_entry **out) {
    size_t total = 0, at = 0;
    char *ptx;
    CUresult cr;
    int i;
    ${P}_entry *e = (${P}_entry *)calloc(1, sizeof *e);
    for (i = 0; i < ${P}_NCHUNKS; i++) total += strlen(${P}_device_code[i]);
    ptx = (char *)malloc(total + 1);
    if (e == NULL || ptx == NULL) {
        free(e);
        free(ptx);
        halo_set_error(err, "Out of memory loading the kernels of ${P}");
        return -2;
    }
    for (i = 0; i < ${P}_NCHUNKS; i++) {
        const size_t n = strlen(${P}_device_code[i]);
        memcpy(ptx + at, ${P}_device_code[i], n);
        at += n;
    }
    ptx[at] = 0;
    e->context = context;
    cr = cuModuleLoadData(&e->module, ptx);
    free(ptx);
    if (cr != 0) {
        e->module = NULL;
        halo_set_error(err, "CUDA: loading the kernels of ${P} failed: %s (the PTX needs a driver "
                       "that supports PTX ISA ${ptx_version})", ${P}_cu_error(cr));
        free(e);
        return -5;
    }
    for (i = 0; i < ${P}_NKERNELS; i++) {
        cr = cuModuleGetFunction(&e->functions[i], e->module, ${P}_kernels[i].name);
        if (cr == 0) cr = cuFuncGetAttribute(&e->max_threads[i],
                                             HALO_CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                             e->functions[i]);
        if (cr != 0) {
            halo_set_error(err, "CUDA: cuModuleGetFunction(%s) failed: %s",
                           ${P}_kernels[i].name, ${P}_cu_error(cr));
            ${P}_entry_free(e);
            return -5;
        }
    }
    *out = e;
    return 0;
}

static int ${P}_entry_get(${P}_gpu_context *gc, CUcontext context, char *err, ${P}_entry **out) {
    ${P}_entry *e;
    int r = 0;
    pthread_mutex_lock(&gc->lock);
    for (e = gc->entries; e != NULL; e = e->next) {
        if (e->context == context) break;
    }
    if (e == NULL && (r = ${P}_entry_new(context, err, &e)) == 0) {
        e->next = gc->entries;
        gc->entries = e;
    }
    pthread_mutex_unlock(&gc->lock);
    *out = e;
    return r;
}

/* Argument buffer i: check that the device allocation holds the tensor. */
static int ${P}_bind_arg(${P}_call *c, int i) {
    const DLTensor *t = (const DLTensor *)c->args[i];
    const CUdeviceptr data = (CUdeviceptr)(uintptr_t)t->data;
    CUdeviceptr base = 0;
    size_t size = 0;
    int64_t lo = 0, hi = 0;
    CUresult cr = cuMemGetAddressRange_v2(&base, &size, data);
    if (cr != 0) {
        halo_set_error(${P}_errbuf, "Buffer %s: data is not CUDA device memory of the current "
                       "context: %s", ${P}_arg_names[i], ${P}_cu_error(cr));
        return -3;
    }
    if (${P}_span(t, ${P}_arg_elem[i], &lo, &hi) &&
        ((int64_t)(data - base) + lo < 0 || (uint64_t)((int64_t)(data - base) + hi) > size)) {
        halo_set_error(${P}_errbuf, "Buffer %s spans bytes [%lld, %lld) from data, outside its "
                       "CUDA allocation (%llu bytes, data at offset %llu)", ${P}_arg_names[i],
                       (long long)lo, (long long)hi, (unsigned long long)size,
                       (unsigned long long)(data - base));
        return -3;
    }
    c->b.ptr[i] = data + t->byte_offset;
    return 0;
}

/* First launch: the device of the buffers, a context on it, the module. */
static int ${P}_bind(${P}_call *c) {
    CUcontext current = NULL;
    CUdevice dev = 0, cur_dev = -1;
    CUresult cr;
    int32_t dev_id = 0;
    int i, first = -1, r;
    for (i = 0; i < ${P}_NARGS; i++) {
        const DLTensor *t = (const DLTensor *)c->args[i];
        if (${P}_arg_elem[i] == 0) continue;
        if (first < 0) {
            first = i;
            dev_id = t->device.device_id;
        } else if (t->device.device_id != dev_id) {
            halo_set_error(${P}_errbuf, "Buffers %s and %s are on different CUDA devices (%d "
                           "and %d)", ${P}_arg_names[first], ${P}_arg_names[i], (int)dev_id,
                           (int)t->device.device_id);
            return -3;
        }
    }
    if (first < 0) return -5;
    if ((cr = cuInit(0)) != 0) {
        halo_set_error(${P}_errbuf, "No usable CUDA driver: cuInit failed: %s", ${P}_cu_error(cr));
        return -5;
    }
    if ((cr = cuDeviceGet(&dev, dev_id)) != 0) {
        halo_set_error(${P}_errbuf, "Buffer %s has device_id %d, which is not a CUDA device: %s",
                       ${P}_arg_names[first], (int)dev_id, ${P}_cu_error(cr));
        return -3;
    }
    if (cuCtxGetCurrent(&current) != 0 || (current != NULL && (cuCtxGetDevice(&cur_dev) != 0 ||
                                                               cur_dev != dev)))
        current = NULL;
    if (current == NULL) {
        if ((cr = cuDevicePrimaryCtxRetain(&current, dev)) != 0) {
            halo_set_error(${P}_errbuf, "CUDA: cannot use device %d: %s", (int)dev_id,
                           ${P}_cu_error(cr));
            return -5;
        }
        if ((cr = cuCtxPushCurrent_v2(current)) != 0) {
            cuDevicePrimaryCtxRelease_v2(dev);
            halo_set_error(${P}_errbuf, "CUDA: cuCtxPushCurrent failed: %s", ${P}_cu_error(cr));
            return -5;
        }
        c->b.pushed = 1;
        c->b.device = dev;
    }
    c->bound = 1;
    if ((r = ${P}_entry_get(c->gc, current, ${P}_errbuf, &c->e)) != 0) return r;
    for (i = 0; i < ${P}_NARGS; i++) {
        if (${P}_arg_elem[i] != 0 && (r = ${P}_bind_arg(c, i)) != 0) return r;
    }
    return 0;
}

/* Wait for the stream: the outputs are written when the call returns. */
static int ${P}_unbind(${P}_call *c, int r) {
    CUresult cr = cuStreamSynchronize(c->gc->stream);
    if (cr != 0 && r == 0) {
        halo_set_error(${P}_errbuf, "CUDA: a kernel of ${P} failed: %s", ${P}_cu_error(cr));
        r = -5;
    }
    return r;
}

static void ${P}_leave(${P}_call *c) {
    if (c->b.pushed) {
        CUcontext popped;
        cuCtxPopCurrent_v2(&popped);
        cuDevicePrimaryCtxRelease_v2(c->b.device);
    }
}

static void ${P}_release(${P}_call *c, int s) {
    if (c->b.ptr[s] != 0) cuMemFree_v2(c->b.ptr[s]);
    c->b.ptr[s] = 0;
}

static int ${P}_alloc(${P}_call *c, int s, int64_t bytes) {
    CUresult cr = cuMemAlloc_v2(&c->b.ptr[s], bytes > 0 ? (size_t)bytes : 1);
    if (cr != 0) {
        c->b.ptr[s] = 0;
        halo_set_error(${P}_errbuf, "CUDA: allocating %lld bytes on the device failed: %s",
                       (long long)bytes, ${P}_cu_error(cr));
        return -2;
    }
    return 0;
}

/* Copy of an internal buffer, finished on return: to the device (1) or the host (0). */
static int ${P}_copy(${P}_call *c, int s, void *host, int64_t bytes, int to_device) {
    CUresult cr = to_device
        ? cuMemcpyHtoDAsync_v2(c->b.ptr[s], host, (size_t)bytes, c->gc->stream)
        : cuMemcpyDtoHAsync_v2(host, c->b.ptr[s], (size_t)bytes, c->gc->stream);
    if (cr == 0) cr = cuStreamSynchronize(c->gc->stream);
    if (cr != 0) {
        halo_set_error(${P}_errbuf, "CUDA: copying an internal buffer to the %s failed: %s",
                       to_device ? "device" : "host", ${P}_cu_error(cr));
        return -5;
    }
    return 0;
}

static int ${P}_run_kernel(${P}_call *c, int32_t k, const ${P}_kernel_info *ki, void **args,
                           const int32_t *grid) {
    void *params[${P}_MAXPARAMS];
    CUdeviceptr ptrs[${P}_MAXPARAMS];
    int32_t bools[${P}_MAXPARAMS];
    const unsigned threads = ki->threads[0] * ki->threads[1] * ki->threads[2];
    CUresult cr;
    int b, j;
    if ((int64_t)threads > (int64_t)c->e->max_threads[k]) {
        halo_set_error(${P}_errbuf, "GPU kernel %s (Func %s) uses %u threads per block, more "
                       "than the CUDA device allows for it (%d)", ki->name, ki->func, threads,
                       c->e->max_threads[k]);
        return -5;
    }
    for (b = 0; b < ki->nbuf; b++) {
        ptrs[b] = c->b.ptr[ki->slots[b]];
        params[b] = &ptrs[b];
    }
    for (j = 0; j < ki->nscalar; j++) {
        void *v = args[ki->nbuf + j];
        if (ki->scalar_bytes[j] < 0) {
            bools[j] = *(const bool *)v ? 1 : 0;
            v = &bools[j];
        }
        params[ki->nbuf + j] = v;
    }
    cr = cuLaunchKernel(c->e->functions[k], (unsigned)grid[0], (unsigned)grid[1],
                        (unsigned)grid[2], ki->threads[0], ki->threads[1], ki->threads[2], 0,
                        c->gc->stream, params, NULL);
    if (cr != 0) {
        halo_set_error(${P}_errbuf, "CUDA: launching GPU kernel %s (Func %s) failed: %s",
                       ki->name, ki->func, ${P}_cu_error(cr));
        return -5;
    }
    return 0;
}
"""
