/* A stand-in for the CUDA driver library that runs no kernel: "device"
 * memory is host memory, launches are recorded. With it, tests/test_aot_gpu.py
 * exercises the host side of a CUDA export where there is no GPU: context
 * handling, argument checks, module loading, launches, internal buffers and
 * cleanup. (What the kernels compute is checked on OpenCL, and by
 * tests/test_gpu_cuda.py on a machine with a GPU.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st { int id; } *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

enum { MAX_ALLOCS = 256, MAX_FUNCS = 64 };
static struct { char *base; size_t size; } allocs[MAX_ALLOCS];
static char *funcs[MAX_FUNCS];
static int nfuncs, depth, retained, modules, syncs;
static struct CUctx_st primary = {1};
static char log_text[8192];

static void logf_(const char *line) {
    if (strlen(log_text) + strlen(line) + 1 < sizeof log_text) strcat(log_text, line);
}

CUresult cuInit(unsigned int flags) { (void)flags; return 0; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) {
    if (ordinal != 0) return 101;          /* CUDA_ERROR_INVALID_DEVICE */
    *d = 0;
    return 0;
}
CUresult cuCtxGetCurrent(CUcontext *c) { *c = depth > 0 ? &primary : NULL; return 0; }
CUresult cuCtxGetDevice(CUdevice *d) { *d = 0; return depth > 0 ? 0 : 201; }
CUresult cuCtxPushCurrent_v2(CUcontext c) { (void)c; depth++; return 0; }
CUresult cuCtxPopCurrent_v2(CUcontext *c) { depth--; *c = &primary; return 0; }
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { (void)d; retained++; *c = &primary; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { (void)d; retained--; return 0; }

CUresult cuModuleLoadData(CUmodule *m, const void *image) {
    if (depth <= 0) return 201;                                 /* no current context */
    if (strstr((const char *)image, ".entry") == NULL) return 218;   /* not PTX */
    *m = (CUmodule)strdup((const char *)image);
    modules++;
    return 0;
}
CUresult cuModuleUnload(CUmodule m) { free(m); modules--; return 0; }
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    if (strstr((const char *)m, name) == NULL || nfuncs == MAX_FUNCS) return 500;
    funcs[nfuncs] = strdup(name);
    *f = (CUfunction)funcs[nfuncs++];
    return 0;
}
CUresult cuFuncGetAttribute(int *v, int attribute, CUfunction f) {
    (void)f;
    *v = attribute == 0 ? 1024 : 0;
    return 0;
}

static int find(CUdeviceptr p) {
    int i;
    for (i = 0; i < MAX_ALLOCS; i++)
        if (allocs[i].base && (char *)(size_t)p >= allocs[i].base &&
            (char *)(size_t)p < allocs[i].base + allocs[i].size) return i;
    return -1;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared, CUstream s, void **params,
                        void **extra) {
    char line[256];
    /* the first parameter of every halo kernel is a buffer: live device memory */
    int live = find(*(CUdeviceptr *)params[0]) >= 0;
    (void)s; (void)extra;
    if (depth <= 0) return 201;
    snprintf(line, sizeof line, "launch %s grid %u %u %u block %u %u %u shared %u live %d\n",
             (const char *)f, gx, gy, gz, bx, by, bz, shared, live);
    logf_(line);
    return 0;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
    int i;
    for (i = 0; i < MAX_ALLOCS; i++) {
        if (allocs[i].base == NULL) {
            allocs[i].base = (char *)calloc(n, 1);
            allocs[i].size = n;
            *p = (CUdeviceptr)(size_t)allocs[i].base;
            return 0;
        }
    }
    return 2;                                   /* CUDA_ERROR_OUT_OF_MEMORY */
}
CUresult cuMemFree_v2(CUdeviceptr p) {
    int i = find(p);
    if (i < 0 || (char *)(size_t)p != allocs[i].base) return 1;
    free(allocs[i].base);
    allocs[i].base = NULL;
    return 0;
}
CUresult cuMemGetAddressRange_v2(CUdeviceptr *base, size_t *size, CUdeviceptr p) {
    int i = find(p);
    if (i < 0) return 1;                        /* CUDA_ERROR_INVALID_VALUE */
    *base = (CUdeviceptr)(size_t)allocs[i].base;
    *size = allocs[i].size;
    return 0;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *h, size_t n, CUstream s) {
    (void)s;
    memcpy((void *)(size_t)d, h, n);
    logf_("copy to device\n");
    return 0;
}
CUresult cuMemcpyDtoHAsync_v2(void *h, CUdeviceptr d, size_t n, CUstream s) {
    (void)s;
    memcpy(h, (void *)(size_t)d, n);
    logf_("copy to host\n");
    return 0;
}
CUresult cuStreamSynchronize(CUstream s) { (void)s; syncs++; return 0; }
CUresult cuGetErrorString(CUresult r, const char **s) {
    *s = r == 1 ? "invalid value" : r == 101 ? "invalid device" : "fake CUDA error";
    return 0;
}

/* for the test */
const char *fake_cuda_log(void) { return log_text; }
void fake_cuda_clear_log(void) { log_text[0] = 0; }
int fake_cuda_live_allocations(void) {
    int i, n = 0;
    for (i = 0; i < MAX_ALLOCS; i++) n += allocs[i].base != NULL;
    return n;
}
int fake_cuda_state(int what) {
    return what == 0 ? depth : what == 1 ? retained : what == 2 ? modules : syncs;
}
