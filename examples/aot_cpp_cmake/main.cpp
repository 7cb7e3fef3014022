// A C++ program that links the exported blur through CMake's find_package.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "blur.h"

namespace {

DLTensor tensor(std::vector<uint16_t> &v, int64_t *shape) {
    DLTensor t{};
    t.data = v.data();
    t.device.device_type = kDLCPU;
    t.ndim = 2;
    t.dtype.code = kDLUInt;
    t.dtype.bits = 16;
    t.dtype.lanes = 1;
    t.shape = shape;
    t.strides = nullptr;
    return t;
}

}  // namespace

int main() {
    const int W = 320, H = 200;
    std::vector<uint16_t> in(W * H), out((W - 2) * (H - 2));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) in[y * W + x] = static_cast<uint16_t>((x * 37 + y * 101) % 65536);
    int64_t in_shape[2] = {H, W}, out_shape[2] = {H - 2, W - 2};
    DLTensor tin = tensor(in, in_shape), tout = tensor(out, out_shape);
    if (int rc = blur(&tin, &tout)) {
        std::fprintf(stderr, "blur failed (%d): %s\n", rc, blur_error_message());
        return 1;
    }
    int bad = 0;
    for (int y = 0; y < H - 2; y++)
        for (int x = 0; x < W - 2; x++) {
            uint32_t s = 0;
            for (int k = 0; k < 3; k++) {
                const uint16_t *r = &in[(y + k) * W + x];
                s += static_cast<uint16_t>((uint32_t(r[0]) + r[1] + r[2]) / 3);
            }
            bad += out[y * (W - 2) + x] != static_cast<uint16_t>(s / 3);
        }
    const halo_filter_metadata_t *md = blur_metadata();
    std::printf("%s: %d arguments:", md->name, int(md->num_arguments));
    for (int i = 0; i < md->num_arguments; i++) std::printf(" %s", md->arguments[i].name);
    std::printf("\n%d mismatches\n", bad);
    return bad == 0 ? 0 : 1;
}
