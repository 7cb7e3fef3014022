/* A plain C program that links the exported blur (no halo, no Python).
 *
 *   halo compile halo.apps.blur:blur --name blur --target host -o build/blur
 *   export PKG_CONFIG_PATH=$PWD/build/blur
 *   cc -std=c99 -O2 main.c $(pkg-config --cflags blur) \
 *      $(pkg-config --variable=libdir blur)/libblur.a $(pkg-config --libs-only-other --static blur) -lm -o blur_demo
 *   ./blur_demo
 *
 * It blurs a synthetic 640x480 image, checks every pixel against a direct
 * computation, then shows that a bad call is refused with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "blur.h"

enum { W = 640, H = 480 };

static uint16_t ref_blur(const uint16_t *in, int x, int y) {
    uint32_t col[3];
    int k;
    for (k = 0; k < 3; k++) {
        const uint16_t *row = in + (size_t)(y + k) * W;
        col[k] = (uint16_t)(((uint32_t)row[x] + row[x + 1] + row[x + 2]) / 3);
    }
    return (uint16_t)((col[0] + col[1] + col[2]) / 3);
}

int main(void) {
    uint16_t *in = malloc(sizeof(uint16_t) * W * H);
    uint16_t *out = malloc(sizeof(uint16_t) * (W - 2) * (H - 2));
    int64_t in_shape[2] = {H, W}, out_shape[2] = {H - 2, W - 2};
    DLTensor tin, tout;
    int x, y, rc, bad = 0;
    uint32_t seed = 12345u;
    if (!in || !out) return 1;
    for (x = 0; x < W * H; x++) {
        seed = seed * 1664525u + 1013904223u;
        in[x] = (uint16_t)(seed >> 16);
    }
    tin.data = in; tin.device.device_type = kDLCPU; tin.device.device_id = 0;
    tin.ndim = 2; tin.dtype.code = kDLUInt; tin.dtype.bits = 16; tin.dtype.lanes = 1;
    tin.shape = in_shape; tin.strides = NULL; tin.byte_offset = 0;
    tout = tin;
    tout.data = out; tout.shape = out_shape;

    rc = blur(&tin, &tout);
    if (rc != 0) {
        fprintf(stderr, "blur failed (%d): %s\n", rc, blur_error_message());
        return 1;
    }
    for (y = 0; y < H - 2; y++)
        for (x = 0; x < W - 2; x++)
            bad += out[(size_t)y * (W - 2) + x] != ref_blur(in, x, y);
    printf("%s, ABI %d: blurred %dx%d, %d mismatches\n", blur_version(),
           (int)blur_metadata()->abi_version, W, H, bad);

    out_shape[0] = H;   /* too tall: the blur would read past the input */
    rc = blur(&tin, &tout);
    printf("bad call refused: code %d, message: %s\n", rc, blur_error_message());
    free(in);
    free(out);
    return bad == 0 && rc != 0 ? 0 : 1;
}
