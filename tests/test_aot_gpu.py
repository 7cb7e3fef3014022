"""Ahead-of-time export of GPU pipelines (halo/aot.py + halo/codegen/gpu_runtime_c.py).

OpenCL runs on PoCL's CPU device (pocl-binary-distribution), through the
libOpenCL (ocl-icd) bundled in the pyopencl wheel: the exported library is
called from a plain C program that makes its own buffers
(tests/aot_opencl_harness.c) and from Python via ctypes with pyopencl
buffers; both are compared with the interpreter. CUDA: the export compiles
(gcc/clang, and against cuda.h where the toolkit is installed) and its
kernels compile with nvcc; running it needs an NVIDIA GPU.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import halo as hl
from halo import aot, interp
from halo.runtime.jit import DLTensor

from gpu_util import needs_opencl

HERE = Path(__file__).resolve().parent
W, H = 64, 48                       # W * 2 bytes: a row is a legal OpenCL sub-buffer start
COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"]


def blur_gpu():
    """A 3x3 box blur, both stages on the GPU (an internal device buffer)."""
    inp = hl.ImageParam(hl.UInt(16), 2, "input")
    x, y, xo, yo, xi, yi = [hl.Var(n) for n in "x y xo yo xi yi".split()]
    bx, by = hl.Func("bx"), hl.Func("blur")
    bx[x, y] = (inp[x, y] + inp[x + 1, y] + inp[x + 2, y]) // 3
    by[x, y] = (bx[x, y] + bx[x, y + 1] + bx[x, y + 2]) // 3
    by.gpu_tile(x, y, xo, yo, xi, yi, 16, 8)
    bx.compute_root().gpu_tile(x, y, xo, yo, xi, yi, 16, 8)
    inp.set_estimates([(0, W), (0, H)])
    by.set_estimates([(0, W - 2), (0, H - 2)])
    by.inp = inp
    return by


def mix_gpu():
    """GPU, then CPU, then GPU stages (host/device syncs of internal
    buffers), a float and a bool scalar Param."""
    inp = hl.ImageParam(hl.Float(32), 2, "inp")
    gain = hl.Param(hl.Float(32), "gain", 1.5)
    flip = hl.Param(hl.Bool(), "flip", False)
    x, y, xo, yo, xi, yi = [hl.Var(n) for n in "x y xo yo xi yi".split()]
    a, b, c = hl.Func("a"), hl.Func("b"), hl.Func("mix")
    a[x, y] = inp[x, y] * gain
    b[x, y] = a[x, y] + a[x + 1, y] * 2.0
    c[x, y] = hl.select(flip, b[x, y + 1] - b[x, y], b[x, y] - b[x, y + 1])
    a.compute_root().gpu_tile(x, y, xo, yo, xi, yi, 8, 8)
    b.compute_root()                       # on the host, between two kernels
    c.gpu_tile(x, y, xo, yo, xi, yi, 8, 4)
    c.inp, c.gain, c.flip = inp, gain, flip
    return c


def image_u16():
    y, x = np.mgrid[0:H, 0:W]
    return ((7 * x + 13 * y) % 4000).astype(np.uint16)      # as the C harness makes it


def blur_reference(img):
    f = blur_gpu()
    (ref,) = interp.realize(f, [img.shape[1] - 2, img.shape[0] - 2], inputs={f.inp: img})
    return ref


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


# -- OpenCL: the ICD loader and PoCL outside Python ------------------------------------------

def _opencl_libs():
    import pyopencl
    return Path(pyopencl.__file__).parent / ".libs"


def _libopencl() -> Path:
    return next(_opencl_libs().glob("libOpenCL*"))


def _icd_env(tmp: Path) -> dict:
    """Environment for a C process to find PoCL through pyopencl's loader:
    a vendors directory naming libpocl by absolute path (pocl.icd in the
    wheel names it relative to the wheel), and PYOPENCL_HOME, which the
    wheel's patched ocl-icd reads (it crashes when it is not set)."""
    vendors = tmp / "vendors"
    vendors.mkdir(exist_ok=True)
    pocl = next(_opencl_libs().glob("libpocl*"))
    (vendors / "pocl.icd").write_text(f"{pocl}\n")
    return {**os.environ, "OCL_ICD_VENDORS": str(vendors),
            "PYOPENCL_HOME": str(_opencl_libs().parent)}


@pytest.fixture(scope="module")
def opencl_lib(tmp_path_factory):
    """blur and mix exported as one OpenCL library; the shared library links
    pyopencl's libOpenCL (found as -lOpenCL through LIBRARY_PATH)."""
    d = tmp_path_factory.mktemp("aot_opencl")
    link = d / "linkdir"
    link.mkdir()
    (link / "libOpenCL.so").symlink_to(_libopencl())
    old = os.environ.get("LIBRARY_PATH")
    os.environ["LIBRARY_PATH"] = os.pathsep.join([str(link)] + ([old] if old else []))
    try:
        written = aot.export({"blur": blur_gpu(), "mix": mix_gpu()}, d / "out", "host-opencl",
                             name="gpulib")
    finally:
        if old is None:
            del os.environ["LIBRARY_PATH"]
        else:
            os.environ["LIBRARY_PATH"] = old
    return d, written


@pytest.mark.parametrize("cc", COMPILERS)
def test_opencl_export_is_warning_free_c99(opencl_lib, cc):
    d, written = opencl_lib
    out = d / "out"
    assert {p.name for p in written["kernels"]} == {"blur.cl", "mix.cl"}
    for name in ("blur", "mix"):
        _run([cc, *STRICT, "-c", str(out / f"{name}.c"), "-o", os.devnull])
    src = d / f"hdr_{cc}.c"
    src.write_text('#include "gpulib.h"\nint main(void) { return blur_metadata() == 0; }\n')
    _run([cc, *STRICT, "-I", str(out), "-fsyntax-only", str(src)])
    r = _run(["nm", "-D", "--undefined-only", str(out / "libgpulib.so")])
    assert "clBuildProgram" in r.stdout
    r = _run(["readelf", "-d", str(out / "libgpulib.so")])
    assert _libopencl().name in r.stdout            # linked: DT_NEEDED names the loader
    header = (out / "blur.h").read_text()
    for decl in ("int blur(DLTensor *input, DLTensor *blur);",
                 "int blur_gpu_context_create(void *queue, blur_gpu_context **out);",
                 "int blur_gpu_argv(blur_gpu_context *ctx, void **args);"):
        assert decl in header


@needs_opencl
def test_opencl_c_program(opencl_lib, tmp_path):
    """A C program (under AddressSanitizer + UBSan) makes buffers on the PoCL
    device, calls the export (plain, on its own queue, on a crop) and checks
    that bad calls are refused with the output untouched."""
    d, _ = opencl_lib
    out = d / "out"
    exe = tmp_path / "harness"
    libs = _opencl_libs()
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-fno-omit-frame-pointer", "-g", "-O1"]
    _run([COMPILERS[0], *STRICT, *san, "-I", str(out), str(out / "blur.c"),
          str(HERE / "aot_opencl_harness.c"), "-o", str(exe), str(_libopencl()),
          f"-Wl,-rpath,{libs}", "-pthread", "-lm"])
    # PoCL's own leaks: the CPU name string the harness's fix replaces, and (with a
    # cold PoCL kernel cache, as in CI) its embedded LLVM's compile-time allocations.
    # halo's code is still checked: only stacks inside libpocl are suppressed.
    (tmp_path / "lsan.supp").write_text("leak:pocl_get_llvm_cpu_name\nleak:libpocl\n")
    env = dict(_icd_env(tmp_path), ASAN_OPTIONS="detect_leaks=1:exitcode=99",
               LSAN_OPTIONS=f"suppressions={tmp_path / 'lsan.supp'}",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98")
    cmd = [str(exe), str(tmp_path), str(W), str(H)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if "LeakSanitizer has encountered a fatal error" in r.stderr:   # no ptrace here
        env["ASAN_OPTIONS"] = "detect_leaks=0:exitcode=99"
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if r.returncode == 3:
        pytest.skip(r.stdout.strip())
    report = r.stdout + r.stderr
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), report
    assert "runtime error" not in report and "Sanitizer" not in report, report
    assert r.stdout.count("refused ") == 14, r.stdout
    for why in ("device type 1, but this pipeline runs on OpenCL", "is accessed at 47",
                "holds only 5702 bytes", "not a multiple of the device's base address",
                "context has 1 device", "negative stride"):
        assert why in r.stdout, why
    ref = blur_reference(image_u16())
    for f in ("out_plain.raw", "out_queue.raw"):
        got = np.fromfile(tmp_path / f, np.uint16).reshape(H - 2, W - 2)
        np.testing.assert_array_equal(got, ref, err_msg=f)
    crop = np.fromfile(tmp_path / "out_crop.raw", np.uint16).reshape(H, W)
    np.testing.assert_array_equal(crop[:H - 3, :W - 2], blur_reference(image_u16()[1:]))
    assert (crop[H - 3:] == 0xBEEF).all() and (crop[:, W - 2:] == 0xBEEF).all()


# -- OpenCL from Python, with pyopencl buffers ---------------------------------------------

def _cl_tensor(buf, shape, dtype, keep, device_type=4):
    """A DLTensor on an OpenCL buffer (kDLOpenCL = 4)."""
    shape_arr = (ctypes.c_int64 * len(shape))(*shape)
    keep.append(shape_arr)
    t = DLTensor()
    t.data = ctypes.c_void_p(buf.int_ptr)
    t.device.device_type = device_type
    t.device.device_id = 0
    t.ndim = len(shape)
    dt = np.dtype(dtype)
    t.dtype.code = {"u": 1, "i": 0, "f": 2}[dt.kind]
    t.dtype.bits = dt.itemsize * 8
    t.dtype.lanes = 1
    t.shape = ctypes.cast(shape_arr, ctypes.POINTER(ctypes.c_int64))
    t.strides = None
    t.byte_offset = 0
    keep.append(t)
    return ctypes.byref(t)


@needs_opencl
def test_opencl_ctypes_with_pyopencl_buffers(opencl_lib):
    from halo.runtime.opencl import get_opencl
    d, _ = opencl_lib
    be = get_opencl()               # (its PoCL device has the CPU-name fix applied)
    cl = be.cl
    so = ctypes.CDLL(str(d / "out" / "libgpulib.so"))
    so.blur_error_message.restype = ctypes.c_char_p
    so.mix_error_message.restype = ctypes.c_char_p
    mf = cl.mem_flags

    def to_device(arr):
        return cl.Buffer(be.context, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=arr)

    def from_device(buf, shape, dtype):
        out = np.empty(shape, dtype)
        cl.enqueue_copy(be.queue, out, buf, is_blocking=True)
        return out

    keep = []
    img = image_u16()
    ref = blur_reference(img)
    ib = to_device(img)
    # several threads at once, each with its own output: one program, shared kernels
    outs = [cl.Buffer(be.context, mf.READ_WRITE, ref.nbytes) for _ in range(4)]
    codes = [None] * 4

    def call(i):
        codes[i] = so.blur(_cl_tensor(ib, img.shape, np.uint16, keep),
                           _cl_tensor(outs[i], ref.shape, np.uint16, keep))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0] * 4, so.blur_error_message()
    for b in outs:
        np.testing.assert_array_equal(from_device(b, ref.shape, np.uint16), ref)

    # a bad call through ctypes: an output on the CPU is refused
    rc = so.blur(_cl_tensor(ib, img.shape, np.uint16, keep),
                 _cl_tensor(outs[0], ref.shape, np.uint16, keep, device_type=1))
    assert rc != 0 and b"device type 1" in so.blur_error_message()

    # GPU -> CPU -> GPU stages, float and bool scalars
    rng = np.random.RandomState(3)
    fin = rng.rand(21, 30).astype(np.float32)
    fb = to_device(fin)
    shape = (fin.shape[0] - 1, fin.shape[1] - 1)
    ob = cl.Buffer(be.context, mf.READ_WRITE, 4 * shape[0] * shape[1])
    for gain, flip in ((2.5, False), (-0.5, True)):
        # arguments in Pipeline.infer_arguments() order: inp, flip, gain, then the output
        so.mix.argtypes = [ctypes.c_void_p, ctypes.c_bool, ctypes.c_float, ctypes.c_void_p]
        rc = so.mix(_cl_tensor(fb, fin.shape, np.float32, keep), flip, gain,
                    _cl_tensor(ob, shape, np.float32, keep))
        assert rc == 0, so.mix_error_message()
        f = mix_gpu()
        (expect,) = interp.realize(f, [shape[1], shape[0]], inputs={f.inp: fin},
                                   params={f.gain: gain, f.flip: flip})
        np.testing.assert_allclose(from_device(ob, shape, np.float32), expect, rtol=1e-6)


# -- what cannot be exported -----------------------------------------------------------------

def test_export_refuses_host_access_to_device_buffers():
    """The output computed on the CPU, its producer on the GPU: the host
    would have to touch a device buffer."""
    inp = hl.ImageParam(hl.Float(32), 1, "inp")
    x, xo, xi = hl.Var("x"), hl.Var("xo"), hl.Var("xi")
    a, out = hl.Func("a"), hl.Func("out")
    a[x] = inp[x] * 2.0
    out[x] = a[x] + 1.0
    a.compute_root().gpu_tile(x, xo, xi, 16)
    with pytest.raises(hl.CompileError, match="output buffer out is read or written by host"):
        aot.export_sources(out, target="host-opencl")


def test_export_needs_matching_target():
    x, xo, xi = hl.Var("x"), hl.Var("xo"), hl.Var("xi")
    f = hl.Func("f")
    f[x] = x * 2
    with pytest.raises(hl.CompileError, match="no Func of f is scheduled there"):
        aot.export_sources(f, target="host-opencl")
    f.gpu_tile(x, xo, xi, 16)
    with pytest.raises(hl.CompileError, match="has no GPU feature"):
        aot.export_sources(f, target="host")


def test_cli_compile_opencl(tmp_path):
    from click.testing import CliRunner
    from halo.cli import main
    mod = tmp_path / "pipes.py"
    mod.write_text("import halo as hl\n"
                   "def twice():\n"
                   "    x, xo, xi = hl.Var('x'), hl.Var('xo'), hl.Var('xi')\n"
                   "    f = hl.Func('twice'); f[x] = x * 2; f.gpu_tile(x, xo, xi, 16)\n"
                   "    return f\n")
    r = CliRunner().invoke(main, ["compile", f"{mod}:twice", "--target", "host-opencl", "-o",
                                  str(tmp_path / "o")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "twice.cl").is_file() and (tmp_path / "o" / "libtwice.a").is_file()
    assert "clEnqueueNDRangeKernel" in (tmp_path / "o" / "twice.c").read_text()


# -- CUDA: compiles here; runs only with a GPU ---------------------------------------------

def _cuda_include():
    for d in sorted(Path("/usr/local").glob("cuda*/include")):
        if (d / "cuda.h").is_file():
            return d
    return None


@pytest.fixture(scope="module")
def cuda_lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("aot_cuda")
    try:
        written = aot.export({"blur": blur_gpu(), "mix": mix_gpu()}, d / "out", "host-cuda",
                             name="gpulib", outputs=("h", "c"))
    except hl.CompileError as e:
        if "neither is usable" in str(e):
            pytest.skip(f"no NVRTC and no nvcc to make PTX: {e}")
        raise
    return d, written


@pytest.mark.parametrize("cc", COMPILERS)
def test_cuda_export_compiles(cuda_lib, cc):
    d, written = cuda_lib
    out = d / "out"
    src = (out / "blur.c").read_text()
    assert ".entry halo_k1_" in src and "cuLaunchKernel" in src     # PTX embedded
    for name in ("blur", "mix"):
        _run([cc, *STRICT, "-c", str(out / f"{name}.c"), "-o", os.devnull])
    inc = _cuda_include()
    if inc is None:
        pytest.skip("no cuda.h (CUDA toolkit) to check the declarations against")
    # with the real header (a system header: its own pedantic warnings are not ours),
    # the prototypes in blur.c must agree with it
    _run([cc, *STRICT, "-DHALO_USE_CUDA_H", "-isystem", str(inc), "-c", str(out / "blur.c"),
          "-o", os.devnull])


def test_cuda_kernels_compile_with_nvcc(cuda_lib, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no nvcc")
    d, written = cuda_lib
    assert [p.name for p in written["kernels"]] == ["blur.cu", "mix.cu"]
    _run([nvcc, "-arch=sm_90", "-c", str(d / "out" / "blur.cu"), "-o", str(tmp_path / "k.o")])


def test_cuda_export_on_a_fake_driver(cuda_lib, tmp_path):
    """The host side of the CUDA export on tests/fake_libcuda.c (device memory
    is host memory, kernels are only recorded): context push/pop, module
    cache, launches, internal buffers and their syncs, refused bad calls,
    everything freed."""
    d, _ = cuda_lib
    cc = COMPILERS[0]
    fake = tmp_path / "libfakecuda.so"
    _run([cc, "-shared", "-fPIC", "-O1", str(HERE / "fake_libcuda.c"), "-o", str(fake)])
    lib = tmp_path / "libgpulib.so"
    _run([cc, "-std=c99", "-shared", "-fPIC", "-O1", "-pthread", str(d / "out" / "blur.c"),
          str(d / "out" / "mix.c"), "-o", str(lib), f"-L{tmp_path}", "-lfakecuda",
          f"-Wl,-rpath,{tmp_path}"])
    so = ctypes.CDLL(str(lib))
    drv = ctypes.CDLL(str(fake))          # the same library, loaded by libgpulib.so
    drv.fake_cuda_log.restype = ctypes.c_char_p
    so.blur_error_message.restype = ctypes.c_char_p
    keep = []

    class Dev:                            # a "device" allocation, as _cl_tensor reads it
        def __init__(self, nbytes):
            p = ctypes.c_ulonglong()
            assert drv.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(nbytes)) == 0
            self.int_ptr = p.value

    def tensor(buf, shape, dtype, device_type=2):
        return _cl_tensor(buf, shape, dtype, keep, device_type)

    img, out = Dev(W * H * 2), Dev((W - 2) * (H - 2) * 2)
    for _ in range(2):                    # the second call reuses the loaded module
        drv.fake_cuda_clear_log()
        rc = so.blur(tensor(img, (H, W), np.uint16), tensor(out, (H - 2, W - 2), np.uint16))
        assert rc == 0, so.blur_error_message()
        log = drv.fake_cuda_log().decode().splitlines()
        assert [ln.split()[1].split("_")[1] for ln in log] == ["k1", "k2"], log
        assert all(ln.endswith("block 16 8 1 shared 0 live 1") for ln in log), log
        assert log[1].split()[3:6] == ["4", "6", "1"], log       # 62 x 46 in 16 x 8 tiles
        # everything made for the call is freed; the primary context popped and released
        assert drv.fake_cuda_live_allocations() == 2
        assert [drv.fake_cuda_state(i) for i in range(3)] == [0, 0, 1]

    small = Dev((W - 2) * (H - 2) * 2 - 2)
    bad = [
        ((tensor(img, (H, W), np.uint16), tensor(small, (H - 2, W - 2), np.uint16)),
         b"outside its CUDA allocation"),
        ((tensor(img, (H, W), np.uint16, 4), tensor(out, (H - 2, W - 2), np.uint16)),
         b"device type 4, but this pipeline runs on CUDA"),
        ((tensor(img, (H - 1, W), np.uint16), tensor(out, (H - 2, W - 2), np.uint16)),
         b"is accessed at 47"),
    ]
    for args, why in bad:
        drv.fake_cuda_clear_log()
        assert so.blur(*args) != 0
        assert why in so.blur_error_message(), so.blur_error_message()
        assert drv.fake_cuda_log() == b""                  # refused before any launch
    assert drv.fake_cuda_live_allocations() == 3
    assert [drv.fake_cuda_state(i) for i in range(2)] == [0, 0]

    # GPU -> CPU -> GPU: the host stage gets the first kernel's output and
    # hands its own to the second kernel
    so.mix.argtypes = [ctypes.c_void_p, ctypes.c_bool, ctypes.c_float, ctypes.c_void_p]
    fin, fout = Dev(21 * 30 * 4), Dev(20 * 29 * 4)
    drv.fake_cuda_clear_log()
    rc = so.mix(tensor(fin, (21, 30), np.float32), True, 2.0,
                tensor(fout, (20, 29), np.float32))
    assert rc == 0, so.mix_error_message()
    log = drv.fake_cuda_log().decode().splitlines()
    steps = [ln if ln.startswith("copy") else ln.split()[1].split("_")[2] for ln in log]
    assert steps == ["a", "copy to host", "copy to device", "mix"], log
    assert drv.fake_cuda_live_allocations() == 5


def test_cuda_export_runs(tmp_path):
    """On a machine with an NVIDIA GPU: buffers from the driver API
    (cuda-python), the export called via ctypes, compared with the interpreter."""
    try:
        from halo.runtime.cuda import get_cuda
        be = get_cuda()
    except hl.HaloError as e:
        pytest.skip(f"running a CUDA export needs an NVIDIA GPU and its driver: {e}")
    exe_dir = tmp_path / "lib"
    aot.export(blur_gpu(), exe_dir, "host-cuda", outputs=("h", "c", "so"))
    ctypes.CDLL("libcuda.so.1", mode=ctypes.RTLD_GLOBAL)
    so = ctypes.CDLL(str(exe_dir / "libblur.so"))
    so.blur_error_message.restype = ctypes.c_char_p
    img = image_u16()
    ref = blur_reference(img)
    src, dst = be.malloc(img.nbytes), be.malloc(ref.nbytes)
    be.to_device(src, img.reshape(-1).view(np.uint8))
    be.sync()
    keep = []

    class Ptr:                      # what _cl_tensor reads: the handle as int_ptr
        def __init__(self, p):
            self.int_ptr = int(p)
    rc = so.blur(_cl_tensor(Ptr(src), img.shape, np.uint16, keep, device_type=2),
                 _cl_tensor(Ptr(dst), ref.shape, np.uint16, keep, device_type=2))
    assert rc == 0, so.blur_error_message()
    got = np.empty(ref.shape, np.uint16)
    be.to_host(got.reshape(-1).view(np.uint8), dst)
    np.testing.assert_array_equal(got, ref)
    rc = so.blur(_cl_tensor(Ptr(src), img.shape, np.uint16, keep, device_type=4),
                 _cl_tensor(Ptr(dst), ref.shape, np.uint16, keep, device_type=2))
    assert rc != 0 and b"device type 4" in so.blur_error_message()
