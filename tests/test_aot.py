"""Ahead-of-time export (halo/aot.py): the exported C, its ABI, the examples.

Everything is exported once per module (fixture `lib`); each library is
compiled once. The C harness runs correct and fuzzed bad calls under
AddressSanitizer + UBSan and must produce zero sanitizer reports.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import halo as hl
from halo import aot, interp
from halo.apps.blur import blur, blur_numpy
from halo.runtime.jit import DLTensor

ROOT = Path(__file__).resolve().parents[1]
CC = os.environ.get("CC", "cc")
W, H = 67, 45                       # odd sizes: no accidental alignment
WF, HF = 50, 37


def fancy():
    """Floats, two scalar params, tiling, parallel + vectorized loops, a
    compute_root producer (heap storage) and a compute_at one (stack)."""
    inp = hl.ImageParam(hl.Float(32), 2, "inp")
    gain = hl.Param(hl.Float(32), "gain", 1.5)
    off = hl.Param(hl.Int(32), "off", 3)
    x, y, xi, yi = hl.Var("x"), hl.Var("y"), hl.Var("xi"), hl.Var("yi")
    a = hl.Func("a")
    a[x, y] = inp[x, y] * gain + hl.cast(hl.Float(32), off)
    b = hl.Func("b")
    b[x, y] = a[x, y] + a[x + 1, y] + hl.sqrt(hl.abs(a[x, y + 1]))
    c = hl.Func("fancy")
    c[x, y] = hl.cast(hl.Int(16), b[x, y] / 3 + hl.cast(hl.Float(32), (x % 5) - y // 3))
    c.tile(x, y, xi, yi, 16, 8).parallel(y).vectorize(xi, 8)
    a.compute_at(b, y)
    b.compute_root().parallel(y)
    inp.set_estimates([(0, 100), (0, 80)])
    gain.set_estimate(2.0)
    c.set_estimates([(0, 99), (0, 79)])
    c.inp, c.gain, c.off = inp, gain, off
    return c


def fancy_reference(fin, gain, off):
    f = fancy()
    f.inp.set(hl.Buffer(fin))
    f.gain.set(gain)
    f.off.set(off)
    (ref,) = interp.realize(f, [fin.shape[1] - 1, fin.shape[0] - 1])
    return ref


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("aot")
    written = aot.export({"blur": blur(), "fancy": fancy()}, d / "out", "host", name="halotest")
    return d, written


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


# -- the generated source --------------------------------------------------------------------

COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]


@pytest.mark.parametrize("cc", COMPILERS)
def test_warning_free_c99(lib, cc):
    d, _ = lib
    out = d / "out"
    for name in ("blur", "fancy"):
        for omp in ([], ["-fopenmp"]):
            r = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", *omp,
                                "-c", str(out / f"{name}.c"), "-o", os.devnull],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    # the headers: C99 and C++ (both at once: several pipelines, no clashes)
    src = d / f"hdr_{cc}.c"
    src.write_text('#include "halotest.h"\nint main(void) { return blur_metadata() == 0; }\n')
    cxx = {"gcc": "g++", "clang": "clang++"}[cc]
    for comp, lang in ((cc, ["-std=c99", "-x", "c"]), (cxx, ["-x", "c++"])):
        if not shutil.which(comp):
            continue
        r = subprocess.run([comp, *lang, "-Wall", "-Wextra", "-pedantic", "-Werror", "-I", str(out),
                            "-fsyntax-only", str(src)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr


def test_outputs_and_symbols(lib):
    d, written = lib
    out = d / "out"
    for f in ("blur.h", "blur.c", "fancy.h", "fancy.c", "halotest.h", "libhalotest.a",
              "libhalotest.so", "halotest.pc", "halotestConfig.cmake"):
        assert (out / f).is_file(), f
    header = (out / "blur.h").read_text()
    assert "int blur(DLTensor *input, DLTensor *blur_y);" in header
    assert "{" not in header.split("extern \"C\" {")[1].split("#ifdef __cplusplus")[0]
    for libfile in ("libhalotest.a", "libhalotest.so"):
        r = _run(["nm", "-g", "--defined-only", str(out / libfile)])
        syms = {ln.split()[-1] for ln in r.stdout.splitlines() if len(ln.split()) == 3}
        assert {"blur", "blur_argv", "blur_error_message", "blur_metadata", "blur_version",
                "fancy", "fancy_argv", "fancy_metadata"} <= syms
        stray = [s for s in syms if not (s.startswith("blur") or s.startswith("fancy"))
                 and not s.startswith("_")]
        assert not stray, stray
    # no abort(), no writable globals other than the thread-local error buffer
    # (.tbss: the error buffer; .data.rel.ro: the const metadata's pointers)
    for name in ("blur", "fancy"):
        assert "abort(" not in (out / f"{name}.c").read_text()
    r = _run(["size", "-A", str(out / "libhalotest.a")])
    sections = {}
    for ln in r.stdout.splitlines():
        parts = ln.split()
        if len(parts) == 3 and parts[1].isdigit():
            sections[parts[0]] = sections.get(parts[0], 0) + int(parts[1])
    assert sections.get(".data", 0) == 0 and sections.get(".bss", 0) == 0, sections
    assert sections[".tbss"] == 2 * 1024
    assert not [s for s in sections if s.startswith((".data.", ".bss."))
                and not s.startswith(".data.rel.ro")], sections


def test_argument_order_matches_infer_arguments():
    f = fancy()
    p = hl.Pipeline(f)
    lowered = p._lower()
    inferred = p.infer_arguments()
    ins = [a.obj for a in lowered.arguments if a.kind != "output"]
    assert [id(o) for o in ins] == [id(o) for o in inferred]
    assert [a.kind for a in lowered.arguments][-1] == "output"
    header = aot.export_sources(p).header
    assert "int fancy(DLTensor *inp, float gain, int32_t off, DLTensor *fancy);" in header
    # an explicit order (Halide's `arguments`) reorders the C signature
    h2 = aot.export_sources(p, "fancy2", arguments=[f.off, f.inp, f.gain]).header
    assert "int fancy2(int32_t off, DLTensor *inp, float gain, DLTensor *fancy);" in h2
    with pytest.raises(hl.CompileError, match="missing"):
        aot.export_sources(p, "x", arguments=[f.off])


# -- the C harness under ASan + UBSan ---------------------------------------------------------

HARNESS = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "halotest.h"

#define W %(W)d
#define H %(H)d
#define WF %(WF)d
#define HF %(HF)d
#define SENTINEL 0xABCD

static void *load(const char *dir, const char *name, size_t bytes) {
    char path[4096]; FILE *f; void *p = malloc(bytes);
    snprintf(path, sizeof path, "%%s/%%s", dir, name);
    f = fopen(path, "rb");
    if (!f || !p || fread(p, 1, bytes, f) != bytes) { fprintf(stderr, "cannot read %%s\n", path); exit(2); }
    fclose(f);
    return p;
}
static void save(const char *dir, const char *name, const void *p, size_t bytes) {
    char path[4096]; FILE *f;
    snprintf(path, sizeof path, "%%s/%%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes) { fprintf(stderr, "cannot write %%s\n", path); exit(2); }
    fclose(f);
}
static DLTensor tensor(void *data, int code, int bits, int64_t *shape, int64_t *strides) {
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data; t.device.device_type = kDLCPU; t.ndim = 2;
    t.dtype.code = (uint8_t)code; t.dtype.bits = (uint8_t)bits; t.dtype.lanes = 1;
    t.shape = shape; t.strides = strides;
    return t;
}

static int failures = 0, refused = 0;

/* A bad call must fail with a message and leave the output untouched. */
static void expect_refused(const char *what, int rc, const uint16_t *out, size_t n) {
    size_t i;
    const char *msg = blur_error_message();
    for (i = 0; i < n; i++)
        if (out[i] != SENTINEL) { printf("TOUCHED %%s\n", what); failures++; break; }
    if (rc == 0 || msg == NULL || msg[0] == 0) {
        printf("ACCEPTED %%s (rc %%d)\n", what, rc);
        failures++;
        return;
    }
    refused++;
    printf("refused %%-28s %%d: %%s\n", what, rc, msg);
}

int main(int argc, char **argv) {
    const char *dir = argv[1];
    uint16_t *in = (uint16_t *)load(dir, "in.raw", sizeof(uint16_t) * W * H);
    size_t n_out = (size_t)(W - 2) * (H - 2);
    uint16_t *out = (uint16_t *)malloc(sizeof(uint16_t) * n_out);
    uint16_t *big = (uint16_t *)malloc(sizeof(uint16_t) * W * H);
    int64_t ishape[2] = {H, W}, oshape[2] = {H - 2, W - 2};
    int64_t cshape[2] = {H - 9, W - 13}, cstrides[2] = {W, 1};
    int64_t coshape[2] = {H - 11, W - 15}, costrides[2] = {W, 1};
    int64_t fstrides[2] = {-W, 1};
    DLTensor ti, to, tc, tco;
    size_t i;
    int rc, k;
    void *argv_[2];
    (void)argc;

    /* 1. a plain call, and the same through NAME_argv */
    ti = tensor(in, kDLUInt, 16, ishape, NULL);
    to = tensor(out, kDLUInt, 16, oshape, NULL);
    rc = blur(&ti, &to);
    if (rc) { printf("FAILED plain: %%s\n", blur_error_message()); failures++; }
    if (blur_error_message()[0] != 0) { printf("FAILED: message after success\n"); failures++; }
    save(dir, "out_plain.raw", out, sizeof(uint16_t) * n_out);
    memset(out, 0, sizeof(uint16_t) * n_out);
    argv_[0] = &ti; argv_[1] = &to;
    rc = blur_argv(argv_);
    if (rc) { printf("FAILED argv: %%s\n", blur_error_message()); failures++; }
    save(dir, "out_argv.raw", out, sizeof(uint16_t) * n_out);

    /* 2. crops: input rows 3.., cols 5.. of the image (byte_offset + strides),
          output written into rows 1.., cols 1.. of a larger buffer */
    for (i = 0; i < (size_t)W * H; i++) big[i] = SENTINEL;
    tc = tensor(in, kDLUInt, 16, cshape, cstrides);
    tc.byte_offset = (uint64_t)(3 * W + 5) * sizeof(uint16_t);
    tco = tensor(big + W + 1, kDLUInt, 16, coshape, costrides);
    rc = blur(&tc, &tco);
    if (rc) { printf("FAILED crop: %%s\n", blur_error_message()); failures++; }
    save(dir, "out_crop.raw", big, sizeof(uint16_t) * W * H);

    /* 3. a negative outer stride: the image upside down, no copy */
    tc = tensor(in, kDLUInt, 16, ishape, fstrides);
    tc.byte_offset = (uint64_t)(H - 1) * W * sizeof(uint16_t);
    rc = blur(&tc, &to);
    if (rc) { printf("FAILED flip: %%s\n", blur_error_message()); failures++; }
    save(dir, "out_flip.raw", out, sizeof(uint16_t) * n_out);

    /* 4. bad calls */
#define BAD(what, call) do { for (i = 0; i < n_out; i++) out[i] = SENTINEL; \
        expect_refused(what, (call), out, n_out); } while (0)
    for (k = 0; k < 2; k++) {       /* too small by one in each dimension */
        int64_t s[2] = {H, W}, so[2] = {H - 2, W - 2};
        DLTensor a, b;
        char what[64];
        s[k] -= 1;
        a = tensor(in, kDLUInt, 16, s, NULL); b = tensor(out, kDLUInt, 16, oshape, NULL);
        snprintf(what, sizeof what, "input short in axis %%d", k);
        BAD(what, blur(&a, &b));
        so[k] += 1;
        a = tensor(in, kDLUInt, 16, ishape, NULL); b = tensor(out, kDLUInt, 16, so, NULL);
        snprintf(what, sizeof what, "output long in axis %%d", k);
        /* (the output stays inside its memory: big enough for one more row/column) */
        b.data = big;
        for (i = 0; i < (size_t)W * H; i++) big[i] = SENTINEL;
        expect_refused(what, blur(&a, &b), big, (size_t)W * H);
    }
    {
        static const int dt[][3] = {{kDLInt, 16, 1}, {kDLUInt, 8, 1}, {kDLUInt, 32, 1},
                                    {kDLFloat, 16, 1}, {kDLUInt, 16, 2}, {kDLBool, 8, 1}};
        for (k = 0; k < 6; k++) {
            DLTensor a = tensor(in, dt[k][0], dt[k][1], ishape, NULL), b = to;
            a.dtype.lanes = (uint16_t)dt[k][2];
            BAD("wrong input dtype", blur(&a, &b));
            a = ti; b.dtype = tensor(in, dt[k][0], dt[k][1], ishape, NULL).dtype;
            b.dtype.lanes = (uint16_t)dt[k][2];
            BAD("wrong output dtype", blur(&a, &b));
        }
    }
    { DLTensor a = ti; a.data = NULL; BAD("null input data", blur(&a, &to)); }
    { DLTensor b = to; b.data = NULL; BAD("null output data", blur(&ti, &b)); }
    BAD("NULL input tensor", blur(NULL, &to));
    BAD("NULL output tensor", blur(&ti, NULL));
    { DLTensor a = ti; a.shape = NULL; BAD("null shape", blur(&a, &to)); }
    { DLTensor a = ti; a.ndim = 1; BAD("rank 1", blur(&a, &to)); }
    { DLTensor a = ti; a.ndim = 3; BAD("rank 3", blur(&a, &to)); }
    { DLTensor b = to; b.ndim = 0; BAD("output rank 0", blur(&ti, &b)); }
    { DLTensor a = ti; a.device.device_type = kDLCUDA; BAD("cuda input", blur(&a, &to)); }
    { DLTensor b = to; b.device.device_type = kDLOpenCL; BAD("opencl output", blur(&ti, &b)); }
    {
        int64_t st[][2] = {{W, -1}, {W, 2}, {W, 0}, {-W, -1}};
        for (k = 0; k < 4; k++) {
            DLTensor a = ti;
            a.strides = st[k];
            a.byte_offset = (uint64_t)(W * H / 2) * sizeof(uint16_t);
            BAD("bad innermost stride", blur(&a, &to));
        }
    }
    {
        /* huge extents and strides: every one would overflow int32 index math
           or address memory the caller does not have */
        int64_t hs[][2] = {{(int64_t)1 << 20, (int64_t)1 << 20}, {(int64_t)1 << 31, W},
                           {H, (int64_t)1 << 31}, {(int64_t)1 << 40, W}, {H, INT64_MAX},
                           {H, -1}, {-5, W}, {H, ((int64_t)1 << 30) + 5}, {INT32_MAX, 1}};
        int64_t hst[][2] = {{(int64_t)1 << 40, 1}, {INT64_MIN, 1}, {INT64_MAX, 1},
                            {(int64_t)1 << 28, 1}};
        for (k = 0; k < 9; k++) {
            DLTensor a = tensor(in, kDLUInt, 16, hs[k], NULL), b = to;
            BAD("huge input extents", blur(&a, &b));
            a = ti; b = tensor(out, kDLUInt, 16, hs[k], NULL);
            BAD("huge output extents", blur(&a, &b));
        }
        for (k = 0; k < 4; k++) {
            DLTensor a = ti;
            a.strides = hst[k];
            BAD("huge input stride", blur(&a, &to));
        }
    }
    { DLTensor a = ti; a.byte_offset = 1; BAD("misaligned input", blur(&a, &to)); }

    /* 5. the second pipeline of the library: floats, params, parallel loops */
    {
        float *fin = (float *)load(dir, "fin.raw", sizeof(float) * WF * HF);
        int16_t *fout = (int16_t *)malloc(sizeof(int16_t) * (WF - 1) * (HF - 1));
        int64_t fs[2] = {HF, WF}, fo[2] = {HF - 1, WF - 1};
        DLTensor a = tensor(fin, kDLFloat, 32, fs, NULL), b = tensor(fout, kDLInt, 16, fo, NULL);
        float gain = 0.75f;
        int32_t off = -4;
        void *fargs[4];
        rc = fancy(&a, gain, off, &b);
        if (rc) { printf("FAILED fancy: %%s\n", fancy_error_message()); failures++; }
        save(dir, "fout.raw", fout, sizeof(int16_t) * (WF - 1) * (HF - 1));
        fargs[0] = &a; fargs[1] = &gain; fargs[2] = &off; fargs[3] = &b;
        rc = fancy_argv(fargs);
        if (rc) { printf("FAILED fancy_argv: %%s\n", fancy_error_message()); failures++; }
        fo[0] = HF;
        rc = fancy(&a, gain, off, &b);
        if (rc == 0 || fancy_error_message()[0] == 0) { printf("ACCEPTED fancy too tall\n"); failures++; }
        else { refused++; printf("refused fancy too tall %%d: %%s\n", rc, fancy_error_message()); }
        if (blur_error_message()[0] == 0) { printf("FAILED: blur's message was cleared\n"); failures++; }
        free(fin);
        free(fout);
    }
    {
        const halo_filter_metadata_t *md = fancy_metadata();
        printf("metadata %%s %%d %%s %%s %%d %%d %%s\n", md->name, (int)md->num_arguments,
               md->arguments[0].name, md->arguments[1].name, (int)md->arguments[0].kind,
               (int)md->arguments[3].kind, fancy_version());
    }
    printf("refused %%d bad calls, %%d failures\n", refused, failures);
    free(in); free(out); free(big);
    return failures ? 1 : 0;
}
"""


def test_c_harness_asan_ubsan(lib):
    d, _ = lib
    out = d / "out"
    work = d / "asan"
    work.mkdir()
    (work / "harness.c").write_text(HARNESS % dict(W=W, H=H, WF=WF, HF=HF))
    rng = np.random.default_rng(1)
    img = rng.integers(0, 65536, size=(H, W), dtype=np.uint16)
    img.tofile(work / "in.raw")
    fin = (rng.standard_normal((HF, WF)) * 50).astype(np.float32)
    fin.tofile(work / "fin.raw")
    exe = work / "harness"
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
           "-g", "-O1"]
    _run([CC, "-std=c99", *san, "-fopenmp", "-I", str(out), str(work / "harness.c"),
          str(out / "blur.c"), str(out / "fancy.c"), "-o", str(exe), "-lm"])
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98",
               OMP_NUM_THREADS="4")
    r = subprocess.run([str(exe), str(work)], capture_output=True, text=True, timeout=120,
                       env=env)
    if "LeakSanitizer has encountered a fatal error" in r.stderr:   # no ptrace here
        env["ASAN_OPTIONS"] = "detect_leaks=0:exitcode=99"
        r = subprocess.run([str(exe), str(work)], capture_output=True, text=True,
                           timeout=120, env=env)
    report = r.stdout + r.stderr
    assert r.returncode == 0, report
    assert "runtime error" not in report and "Sanitizer" not in report, report
    assert "ACCEPTED" not in report and "TOUCHED" not in report and "FAILED" not in report
    assert "refused 54 bad calls, 0 failures" in r.stdout, r.stdout
    assert "metadata fancy 4 inp gain 1 2 halo " in r.stdout

    ref = blur_numpy(img)
    shape = (H - 2, W - 2)
    for f in ("out_plain.raw", "out_argv.raw"):
        np.testing.assert_array_equal(np.fromfile(work / f, np.uint16).reshape(shape), ref)
    np.testing.assert_array_equal(np.fromfile(work / "out_flip.raw", np.uint16).reshape(shape),
                                  blur_numpy(img[::-1].copy()))
    big = np.fromfile(work / "out_crop.raw", np.uint16).reshape(H, W)
    crop_ref = blur_numpy(img[3:H - 6, 5:W - 8].copy())
    np.testing.assert_array_equal(big[1:1 + H - 11, 1:1 + W - 15], crop_ref)
    mask = np.ones_like(big, bool)
    mask[1:1 + H - 11, 1:1 + W - 15] = False
    assert (big[mask] == 0xABCD).all()        # nothing written outside the crop

    fout = np.fromfile(work / "fout.raw", np.int16).reshape(HF - 1, WF - 1)
    np.testing.assert_array_equal(fout, fancy_reference(fin, 0.75, -4))


# -- ctypes on the shared library ------------------------------------------------------------

def _tensor(arr, keep):
    code = {"u": 1, "i": 0, "f": 2}[arr.dtype.kind]
    shape = (ctypes.c_int64 * arr.ndim)(*arr.shape)
    strides = (ctypes.c_int64 * arr.ndim)(*[s // arr.itemsize for s in arr.strides])
    t = DLTensor()
    t.data = arr.ctypes.data
    t.device.device_type = 1
    t.ndim = arr.ndim
    t.dtype.code, t.dtype.bits, t.dtype.lanes = code, arr.itemsize * 8, 1
    t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    t.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
    keep += [shape, strides, arr]
    return ctypes.byref(t), t


def test_ctypes_shared_library(lib):
    d, written = lib
    so = ctypes.CDLL(str(written["so"]))
    so.blur.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    so.blur_error_message.restype = ctypes.c_char_p
    so.blur_version.restype = ctypes.c_char_p
    assert so.blur_version().decode().startswith(f"halo {hl.__version__}; ABI ")
    img = np.random.default_rng(2).integers(0, 65536, size=(H, W), dtype=np.uint16)
    keep = []
    out = np.zeros((H - 2, W - 2), np.uint16)
    assert so.blur(_tensor(img, keep)[0], _tensor(out, keep)[0]) == 0
    np.testing.assert_array_equal(out, blur_numpy(img))
    # a strided view (every other row, reversed columns are not dense: refused)
    view = img[::2]
    out2 = np.zeros((view.shape[0] - 2, W - 2), np.uint16)
    assert so.blur(_tensor(view, keep)[0], _tensor(out2, keep)[0]) == 0
    np.testing.assert_array_equal(out2, blur_numpy(view.copy()))
    assert so.blur(_tensor(img[:, ::-1], keep)[0], _tensor(out, keep)[0]) != 0
    assert b"dimension 0" in so.blur_error_message()

    # the metadata struct
    class Arg(ctypes.Structure):
        _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int32),
                    ("dimensions", ctypes.c_int32), ("code", ctypes.c_uint8),
                    ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16),
                    ("buffer_estimates", ctypes.POINTER(ctypes.c_int64)),
                    ("scalar_default", ctypes.POINTER(ctypes.c_double)),
                    ("scalar_min", ctypes.POINTER(ctypes.c_double)),
                    ("scalar_max", ctypes.POINTER(ctypes.c_double)),
                    ("scalar_estimate", ctypes.POINTER(ctypes.c_double))]

    class Meta(ctypes.Structure):
        _fields_ = [("abi_version", ctypes.c_int32), ("num_arguments", ctypes.c_int32),
                    ("arguments", ctypes.POINTER(Arg)), ("name", ctypes.c_char_p),
                    ("target", ctypes.c_char_p), ("halo_version", ctypes.c_char_p)]
    so.fancy_metadata.restype = ctypes.POINTER(Meta)
    md = so.fancy_metadata().contents
    assert (md.abi_version, md.num_arguments, md.name, md.target) == (aot.ABI_VERSION, 4,
                                                                      b"fancy", b"host")
    args = [md.arguments[i] for i in range(4)]
    assert [a.name for a in args] == [b"inp", b"gain", b"off", b"fancy"]
    assert [a.kind for a in args] == [1, 0, 0, 2]
    assert [(a.code, a.bits, a.dimensions) for a in args] == [(2, 32, 2), (2, 32, 0),
                                                              (0, 32, 0), (0, 16, 2)]
    assert list(args[0].buffer_estimates[:4]) == [0, 80, 0, 100]      # numpy order
    assert list(args[3].buffer_estimates[:4]) == [0, 79, 0, 99]
    assert args[1].scalar_default[0] == 1.5 and args[1].scalar_estimate[0] == 2.0
    assert not args[1].scalar_min and args[2].scalar_default[0] == 3.0

    # thread safety: concurrent good and bad calls, each thread its own message
    so.blur.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    errors = []

    def worker(bad):
        k = []
        o = np.zeros((H - 2, W - 2) if not bad else (H, W), np.uint16)
        for _ in range(50):
            rc = so.blur(_tensor(img, k)[0], _tensor(o, k)[0])
            msg = so.blur_error_message()
            if bad and (rc == 0 or b"beyond" not in msg and b"accessed" not in msg):
                errors.append(("bad", rc, msg))
            if not bad and (rc != 0 or msg != b""):
                errors.append(("good", rc, msg))
        if not bad and not np.array_equal(o, blur_numpy(img)):
            errors.append("wrong result")
    ts = [threading.Thread(target=worker, args=(i % 2 == 1,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]


# -- Python methods with Halide's names, the CLI -----------------------------------------------

def test_pipeline_methods(tmp_path):
    f = blur(40, 30)
    p = hl.Pipeline(f)
    p.compile_to_c(str(tmp_path / "b.c"), fn_name="myblur", target="c")
    assert "int myblur(DLTensor *" in (tmp_path / "b.c").read_text()
    f.compile_to_header(str(tmp_path / "b.h"), fn_name="myblur")
    assert "int myblur(DLTensor *input, DLTensor *blur_y);" in (tmp_path / "b.h").read_text()
    a = f.compile_to_static_library(str(tmp_path / "libx"), fn_name="myblur", target="c")
    so = p.compile_to_shared_library(str(tmp_path / "liby"), [f.input], "myblur2", "c")
    assert a.name == "libx.a" and a.is_file() and (tmp_path / "libx.h").is_file()
    assert so.name == "liby.so" and "myblur2" in (tmp_path / "liby.h").read_text()
    c = ctypes.CDLL(str(so))
    img = np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 7
    out = np.zeros((28, 38), np.uint16)
    keep = []
    assert c.myblur2(_tensor(img, keep)[0], _tensor(out, keep)[0]) == 0
    np.testing.assert_array_equal(out, blur_numpy(img))
    # the JIT gives the same
    f.input.set(hl.Buffer(img))
    np.testing.assert_array_equal(np.asarray(f.realize([38, 28])), out)


def test_cli_compile_several_pipelines(tmp_path):
    from click.testing import CliRunner
    from halo.cli import main
    mod = tmp_path / "pipes.py"
    mod.write_text("import halo as hl\n"
                   "def one():\n"
                   "    x = hl.Var('x'); f = hl.Func('one'); f[x] = x * 2; return f\n"
                   "def two():\n"
                   "    x = hl.Var('x'); f = hl.Func('two'); f[x] = x + 1; return f\n")
    r = CliRunner().invoke(main, ["compile", f"{mod}:one", f"{mod}:two", "--target", "c",
                                  "--name", "both", "-o", str(tmp_path / "o")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    so = ctypes.CDLL(str(tmp_path / "o" / "libboth.so"))
    keep = []
    for fn, ref in ((so.one, np.arange(9) * 2), (so.two, np.arange(9) + 1)):
        out = np.zeros(9, np.int32)
        assert fn(_tensor(out, keep)[0]) == 0
        np.testing.assert_array_equal(out, ref)
    r = CliRunner().invoke(main, ["compile", f"{mod}:one", "--target", "host-cuda", "-o",
                                  str(tmp_path / "o2")])
    assert r.exit_code != 0 and "GPU" in r.output


# -- the examples ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def blur_export(tmp_path_factory):
    d = tmp_path_factory.mktemp("blurlib") / "blur"
    aot.export(blur(), d, "host", name="blur")
    return d


def test_example_plain_c(blur_export, tmp_path):
    src = ROOT / "examples" / "aot_c"
    shutil.copytree(src, tmp_path / "ex")
    _run(["make", "-s", f"HALO_OUT={blur_export}", f"CC={CC}"], cwd=tmp_path / "ex")
    r = _run([str(tmp_path / "ex" / "blur_demo")])
    assert "0 mismatches" in r.stdout and "bad call refused" in r.stdout


@pytest.mark.skipif(not shutil.which("cmake") or not shutil.which("c++"), reason="no cmake/c++")
def test_example_cpp_cmake(blur_export, tmp_path):
    src = ROOT / "examples" / "aot_cpp_cmake"
    b = tmp_path / "build"
    _run(["cmake", "-S", str(src), "-B", str(b), f"-Dblur_DIR={blur_export}",
          "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", str(b)])
    r = _run([str(b / "blur_cpp")])
    assert "blur: 2 arguments: input blur_y" in r.stdout and "0 mismatches" in r.stdout


def test_example_python_extension(blur_export, tmp_path):
    src = ROOT / "examples" / "aot_pyext"
    ex = tmp_path / "ext"
    shutil.copytree(src, ex)
    env = dict(os.environ, HALO_BLUR_DIR=str(blur_export))
    _run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=ex, env=env)
    code = ("import numpy as np, blurext\n"
            "from halo.apps.blur import blur_numpy\n"
            "img = np.random.default_rng(3).integers(0, 65536, (50, 61), dtype=np.uint16)\n"
            "out = np.zeros((48, 59), np.uint16)\n"
            "blurext.blur(img, out)\n"
            "assert (out == blur_numpy(img)).all()\n"
            "v = img[1:, 2:]\n"
            "o2 = np.zeros((47, 57), np.uint16)\n"
            "blurext.blur(v, o2)\n"
            "assert (o2 == blur_numpy(v.copy())).all()\n"
            "try:\n"
            "    blurext.blur(img, np.zeros((50, 59), np.uint16))\n"
            "except ValueError as e:\n"
            "    assert 'blur failed' in str(e)\n"
            "else:\n"
            "    raise SystemExit('bad call accepted')\n"
            "print('ok', blurext.version())\n")
    r = _run([sys.executable, "-c", code], cwd=ex)
    assert r.stdout.startswith("ok halo ")
