"""The apps gallery (examples/apps/) at a small size: each app's program and
schedule through halo's C backend, the interpreter and Halide (conftest.check),
exact for integer pipelines, the app's documented tolerance for float ones."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from conftest import check, needs_halide

APPS_DIR = Path(__file__).resolve().parent.parent / "examples" / "apps"
APPS = ["unsharp", "harris", "max_filter", "stencil_chain", "iir_blur",
        "bilateral_grid", "matmul"]


def _load(name):
    if str(APPS_DIR) not in sys.path:
        sys.path.insert(0, str(APPS_DIR))
    return importlib.import_module(name)


@needs_halide
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", APPS)
def test_app_small(name):
    app = _load(name)
    inputs = app.make_input(small=True)
    params = getattr(app, "PARAMS", {})
    check(lambda hl, *ins: app.build(hl, *ins, **params), app.output_size(*inputs),
          inputs, rtol=app.RTOL, atol=app.ATOL)


def test_stencil_chain_numpy_reference():
    app = _load("stencil_chain")
    import numpy as np
    import halo
    (img,) = app.make_input(small=True)
    out = np.asarray(app.build(halo, halo.Buffer(img)).realize(app.output_size(img)))
    np.testing.assert_array_equal(out, app.numpy_reference(img))
