"""The apps gallery (examples/apps/) at a small size: each app's program and
schedule through halo's C backend, the interpreter and Halide, compared with
the app's own rule (_common.compare): exact for integer pipelines, the app's
documented tolerance for float ones (and for integer outputs computed in
float32, at most ATOL units except for a documented fraction of values)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_halide, realize_halide, realize_halo, realize_interp

APPS_DIR = Path(__file__).resolve().parent.parent / "examples" / "apps"
APPS = ["unsharp", "harris", "max_filter", "stencil_chain", "iir_blur",
        "bilateral_grid", "matmul", "conv_layer", "resize", "resize_lanczos", "camera_pipe",
        "local_laplacian", "interpolate", "nl_means"]


def _load(name):
    if str(APPS_DIR) not in sys.path:
        sys.path.insert(0, str(APPS_DIR))
    return importlib.import_module(name)


@needs_halide
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", APPS)
def test_app_small(name):
    app = _load(name)
    import _common
    inputs = app.make_input(small=True)
    params = _common.params_for(app, small=True)
    sizes = app.output_size(*inputs)

    def build(hl, *ins):
        return app.build(hl, *ins, **params)
    ours, f = realize_halo(build, sizes, inputs)
    # the app's own comparison: exact, or within its documented tolerance
    # (for integer outputs computed in float inside, ATOL units)
    for what, theirs in (("interpreter", realize_interp(f, sizes)),
                         ("Halide", realize_halide(build, sizes, inputs))):
        ok, msg = _common.compare(ours, [np.asarray(t) for t in theirs], app.RTOL, app.ATOL,
                                  getattr(app, "OUTLIERS", 0.0))
        assert ok, f"{name}: halo vs {what}: {msg}"


def test_stencil_chain_numpy_reference():
    app = _load("stencil_chain")
    import halo
    (img,) = app.make_input(small=True)
    out = np.asarray(app.build(halo, halo.Buffer(img)).realize(app.output_size(img)))
    np.testing.assert_array_equal(out, app.numpy_reference(img))


def test_conv_layer_numpy_reference():
    app = _load("conv_layer")
    import halo
    inputs = app.make_input(small=True)
    f = app.build(halo, *[halo.Buffer(a) for a in inputs])
    out = np.asarray(f.realize(app.output_size(*inputs)))
    np.testing.assert_allclose(out, app.numpy_reference(*inputs), rtol=1e-4, atol=1e-5)


BENCH_PIPELINE = '''
import numpy as np
import halo

def _build(hl, img):
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("brighten")
    f[x, y] = img[x, y] * 2 + 1
    return f

IMG = np.arange(48 * 32, dtype=np.int32).reshape(32, 48)

def pipeline():
    f = _build(halo, halo.Buffer(IMG))
    f.sizes = [48, 32]
    def halide_version():
        import halide
        return _build(halide, halide.Buffer(IMG))
    f.halide = halide_version
    f.numpy = lambda: IMG * 2 + 1
    return f
'''


@needs_halide
def test_halo_bench_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="halo bench --plot needs matplotlib")
    from click.testing import CliRunner
    from halo.cli import main
    src = tmp_path / "bench_me.py"
    src.write_text(BENCH_PIPELINE)
    png = tmp_path / "chart.png"
    r = CliRunner().invoke(main, ["bench", f"{src}:pipeline", "--repeats", "2",
                                  "--plot", str(png)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    for impl in ("halo", "Halide", "numpy"):
        assert any(ln.split()[:1] == [impl] for ln in lines), r.output
    assert "OUTPUT DIFFERS" not in r.output and r.output.count("same output") == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_halide
def test_func_wrapper_keeps_the_funcs_vars():
    """interpolate schedules `downsampled_0.clone_in(downx_1).reorder(c, x, y)`:
    a Func's wrapper has that Func's Vars in Halide, so they must name its
    dimensions in halo too (they used to be _0, _1, _2)."""
    from conftest import check
    img = np.arange(12 * 10 * 3, dtype=np.float32).reshape(3, 10, 12)

    def build(hl, im):
        x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
        f, g = hl.Func("f"), hl.Func("g")
        f[x, y, c] = im[x, y, c] * 2.0
        g[x, y, c] = f[x, y, c] + f[x + 1, y, c]
        g.compute_root()
        f.clone_in(g).compute_at(g, y).reorder(c, x, y).unroll(c)
        return g
    check(build, [11, 10, 3], [img])
