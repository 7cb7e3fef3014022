/* Calls an exported OpenCL blur (tests/test_aot_gpu.py) from a plain C
 * program: buffers made here on the first OpenCL device (PoCL's CPU device
 * in CI), correct calls whose outputs go to files for the test to compare,
 * and bad calls that must be refused without touching the output.
 *
 *   harness OUTDIR W H     (the input is in[y][x] = (7x + 13y) % 4000)
 *
 * No OpenCL headers are needed: the few API functions used are declared
 * here (their ABI is fixed by the OpenCL specification). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blur.h"

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
cl_int clGetPlatformIDs(cl_uint, cl_platform_id *, cl_uint *);
cl_int clGetPlatformInfo(cl_platform_id, cl_uint, size_t, void *, size_t *);
cl_int clGetDeviceIDs(cl_platform_id, cl_ulong, cl_uint, cl_device_id *, cl_uint *);
cl_context clCreateContext(const intptr_t *, cl_uint, const cl_device_id *, void *, void *,
                           cl_int *);
cl_command_queue clCreateCommandQueue(cl_context, cl_device_id, cl_ulong, cl_int *);
cl_mem clCreateBuffer(cl_context, cl_ulong, size_t, void *, cl_int *);
cl_int clEnqueueWriteBuffer(cl_command_queue, cl_mem, cl_uint, size_t, size_t, const void *,
                            cl_uint, const void *, void *);
cl_int clEnqueueReadBuffer(cl_command_queue, cl_mem, cl_uint, size_t, size_t, void *, cl_uint,
                           const void *, void *);
cl_int clReleaseMemObject(cl_mem);
cl_int clReleaseCommandQueue(cl_command_queue);
cl_int clReleaseContext(cl_context);
#define CL_PLATFORM_NAME 0x0902
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFF
#define CL_MEM_READ_WRITE 1

#define SENTINEL 0xBEEF

/* PoCL 3.0 (LLVM 14) names a CPU it does not know (e.g. Zen 5) 'generic',
 * which its own clang then rejects: no kernel builds. As halo's Python
 * runtime does (halo/runtime/opencl.py, _fix_pocl_cpu_name), point the
 * device's LLVM CPU name at the x86-64 baseline instead. The name is a field
 * of PoCL's device struct, next to the target triple; memory is read
 * through /proc/self/mem so that a stray pointer cannot crash the scan. */
static int read_mem(FILE *mem, uintptr_t at, void *buf, size_t n) {
    if (at < 4096 || fseek(mem, (long)at, SEEK_SET) != 0) return 0;
    return fread(buf, 1, n, mem) == n;
}

static void fix_pocl_cpu_name(cl_device_id device) {
    static const char name[] = "x86-64-v3";
    unsigned char blob[4096];
    FILE *mem = fopen("/proc/self/mem", "rb");
    size_t off;
    if (mem == NULL) return;
    setvbuf(mem, NULL, _IONBF, 0);
    if (read_mem(mem, (uintptr_t)device, blob, sizeof blob)) {
        for (off = 0; off + 16 <= sizeof blob; off += 8) {
            uintptr_t triple, cpu;
            char s[16];
            memcpy(&triple, blob + off, sizeof triple);
            memcpy(&cpu, blob + off + 8, sizeof cpu);
            if (!read_mem(mem, triple, s, 7) || memcmp(s, "x86_64", 6) != 0) continue;
            if (read_mem(mem, cpu, s, 8) && memcmp(s, "generic", 8) == 0)
                memcpy((unsigned char *)device + off + 8, &(const char *){name}, sizeof(char *));
            break;
        }
    }
    fclose(mem);
}

static int failures = 0;

static DLTensor tensor(cl_mem data, int64_t *shape, int64_t *strides, uint64_t byte_offset) {
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLOpenCL;
    t.device.device_id = 0;
    t.ndim = 2;
    t.dtype.code = kDLUInt;
    t.dtype.bits = 16;
    t.dtype.lanes = 1;
    t.shape = shape;
    t.strides = strides;
    t.byte_offset = byte_offset;
    return t;
}

static void save(const char *dir, const char *file, const void *data, size_t n) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, n, f) != n) { printf("FAILED: writing %s\n", path); failures++; }
    if (f != NULL) fclose(f);
}

int main(int argc, char **argv) {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    cl_mem in_mem, out_mem, big_mem, small_mem;
    cl_int err;
    cl_uint n;
    char pname[256] = {0};
    const char *dir;
    int W, H, x, y, rc, k;
    size_t i, n_in, n_out;
    uint16_t *in, *out, *sentinel;
    int64_t ishape[2], oshape[2], cshape[2], cstrides[2];
    DLTensor ti, to;
    void *args[2];
    blur_gpu_context *gctx = NULL;
    const halo_filter_metadata_t *md = blur_metadata();

    if (argc != 4) { fprintf(stderr, "usage: %s OUTDIR W H\n", argv[0]); return 2; }
    dir = argv[1];
    W = atoi(argv[2]);
    H = atoi(argv[3]);
    n_in = (size_t)W * H;
    n_out = (size_t)(W - 2) * (H - 2);
    if (md->device_type != kDLOpenCL) { printf("FAILED: metadata device %d\n", md->device_type); failures++; }

    if (clGetPlatformIDs(1, &platform, &n) != 0 || n == 0) { printf("SKIP: no OpenCL platform\n"); return 3; }
    clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
    if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, &n) != 0 || n == 0) {
        printf("SKIP: no OpenCL device\n");
        return 3;
    }
    if (strstr(pname, "Portable Computing Language") != NULL) fix_pocl_cpu_name(device);
    context = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    if (err != 0) { printf("FAILED: clCreateContext %d\n", err); return 1; }
    queue = clCreateCommandQueue(context, device, 0, &err);
    if (err != 0) { printf("FAILED: clCreateCommandQueue %d\n", err); return 1; }

    in = (uint16_t *)malloc(n_in * sizeof *in);
    out = (uint16_t *)malloc(n_in * sizeof *out);
    sentinel = (uint16_t *)malloc(n_in * sizeof *sentinel);
    for (y = 0; y < H; y++)
        for (x = 0; x < W; x++) in[(size_t)y * W + x] = (uint16_t)((7 * x + 13 * y) % 4000);
    for (i = 0; i < n_in; i++) sentinel[i] = SENTINEL;
    in_mem = clCreateBuffer(context, CL_MEM_READ_WRITE, n_in * 2, NULL, &err);
    out_mem = clCreateBuffer(context, CL_MEM_READ_WRITE, n_in * 2, NULL, &err);
    big_mem = clCreateBuffer(context, CL_MEM_READ_WRITE, n_in * 2, NULL, &err);
    small_mem = clCreateBuffer(context, CL_MEM_READ_WRITE, n_out * 2 - 2, NULL, &err);
    clEnqueueWriteBuffer(queue, in_mem, 1, 0, n_in * 2, in, 0, NULL, NULL);
#define RESET(mem) clEnqueueWriteBuffer(queue, mem, 1, 0, n_in * 2, sentinel, 0, NULL, NULL)
    ishape[0] = H; ishape[1] = W;
    oshape[0] = H - 2; oshape[1] = W - 2;

    /* 1. a plain call (the default context), then through a context with our queue */
    RESET(out_mem);
    ti = tensor(in_mem, ishape, NULL, 0);
    to = tensor(out_mem, oshape, NULL, 0);
    rc = blur(&ti, &to);
    if (rc) { printf("FAILED plain: %s\n", blur_error_message()); failures++; }
    clEnqueueReadBuffer(queue, out_mem, 1, 0, n_out * 2, out, 0, NULL, NULL);
    save(dir, "out_plain.raw", out, n_out * 2);
    RESET(out_mem);
    if (blur_gpu_context_create(queue, &gctx) != 0) { printf("FAILED ctx: %s\n", blur_error_message()); return 1; }
    args[0] = &ti; args[1] = &to;
    rc = blur_gpu_argv(gctx, args);
    if (rc) { printf("FAILED gpu_argv: %s\n", blur_error_message()); failures++; }
    clEnqueueReadBuffer(queue, out_mem, 1, 0, n_out * 2, out, 0, NULL, NULL);
    save(dir, "out_queue.raw", out, n_out * 2);

    /* 2. a crop: input from row 1 (byte_offset W*2: a sub-buffer), rows of
          the full image (strides); output into a wider buffer */
    RESET(big_mem);
    cshape[0] = H - 1; cshape[1] = W;
    cstrides[0] = W; cstrides[1] = 1;
    {
        int64_t co_shape[2], co_strides[2];
        DLTensor tc = tensor(in_mem, cshape, cstrides, (uint64_t)W * 2);
        DLTensor tco;
        co_shape[0] = H - 3; co_shape[1] = W - 2;
        co_strides[0] = W; co_strides[1] = 1;
        tco = tensor(big_mem, co_shape, co_strides, 0);
        rc = blur(&tc, &tco);
        if (rc) { printf("FAILED crop: %s\n", blur_error_message()); failures++; }
        clEnqueueReadBuffer(queue, big_mem, 1, 0, n_in * 2, out, 0, NULL, NULL);
        save(dir, "out_crop.raw", out, n_in * 2);
    }

    /* 3. bad calls: refused, the output untouched */
#define BAD(what, call) do { \
        RESET(out_mem); \
        rc = (call); \
        clEnqueueReadBuffer(queue, out_mem, 1, 0, n_in * 2, out, 0, NULL, NULL); \
        if (rc == 0 || blur_error_message()[0] == 0) { printf("FAILED: %s accepted\n", what); failures++; } \
        else if (memcmp(out, sentinel, n_in * 2) != 0) { printf("FAILED: %s wrote\n", what); failures++; } \
        else printf("refused %s: %s\n", what, blur_error_message()); \
    } while (0)
    for (k = 0; k < 2; k++) {       /* the input short by one in each dimension */
        int64_t s[2];
        DLTensor a;
        char what[64];
        s[0] = H; s[1] = W;
        s[k] -= 1;
        a = tensor(in_mem, s, NULL, 0);
        snprintf(what, sizeof what, "input short in axis %d", k);
        BAD(what, blur(&a, &to));
    }
    { DLTensor a = ti; a.device.device_type = kDLCPU; BAD("a CPU input", blur(&a, &to)); }
    { DLTensor a = ti; a.device.device_type = kDLCUDA; BAD("a CUDA input", blur(&a, &to)); }
    { DLTensor b = to; b.device.device_type = kDLCPU; BAD("a CPU output", blur(&ti, &b)); }
    { DLTensor a = ti; a.data = NULL; BAD("null input data", blur(&a, &to)); }
    BAD("a NULL input tensor", blur(NULL, &to));
    { DLTensor a = ti; a.ndim = 3; BAD("rank 3", blur(&a, &to)); }
    { DLTensor a = ti; a.dtype.bits = 8; BAD("uint8 input", blur(&a, &to)); }
    { DLTensor a = ti; a.device.device_id = 1; BAD("device_id 1", blur(&a, &to)); }
    { DLTensor a = tensor(small_mem, ishape, NULL, 0); BAD("a cl_mem too small", blur(&a, &to)); }
    {
        int64_t co_shape[2];
        DLTensor a = tensor(in_mem, cshape, cstrides, 2), b;
        co_shape[0] = H - 3; co_shape[1] = W - 2;
        b = tensor(out_mem, co_shape, NULL, 0);
        BAD("unaligned byte_offset", blur(&a, &b));
    }
    {
        DLTensor a = ti, b = to;
        a.device.device_id = 1;
        b.device.device_id = 1;
        BAD("device_id 1 on both", blur(&a, &b));
    }
    {
        int64_t st[2];
        DLTensor a = ti;
        st[0] = -W; st[1] = 1;
        a.strides = st;
        a.byte_offset = (uint64_t)(H - 1) * W * 2;
        BAD("a negative stride", blur(&a, &to));
    }

    blur_gpu_context_destroy(gctx);
    clReleaseMemObject(in_mem);
    clReleaseMemObject(out_mem);
    clReleaseMemObject(big_mem);
    clReleaseMemObject(small_mem);
    clReleaseCommandQueue(queue);
    clReleaseContext(context);
    free(in);
    free(out);
    free(sentinel);
    printf("%s\n", failures ? "FAILURES" : "OK");
    return failures ? 1 : 0;
}
