"""The `halo` command: demo, show, compile, and PIPELINE loading errors."""
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from halo.cli import main

BLUR = "halo.apps.blur:blur"


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_demo_small():
    r = invoke("demo", "--size", "64x48", "--repeats", "2")
    assert r.exit_code == 0, r.output
    assert "input 64x48 -> output 62x46" in r.output
    assert "halo == numpy exactly" in r.output
    assert "halo (default schedule)" in r.output and "numpy" in r.output
    assert "GB/s" in r.output and "compile:" in r.output


def test_demo_bad_size():
    r = invoke("demo", "--size", "big")
    assert r.exit_code == 2
    assert "WIDTHxHEIGHT" in r.output


@pytest.mark.parametrize("stage, expect", [
    ("loopnest", "for (blur_y"),
    ("lowered", "blur_y"),
    ("c", "#include"),
])
def test_show_stages(stage, expect):
    r = invoke("show", BLUR, "--stage", stage)
    assert r.exit_code == 0, r.output
    assert expect in r.output


def test_show_default_is_loop_nest_and_target_c():
    r = invoke("show", BLUR)
    assert r.exit_code == 0 and "for (blur_y" in r.output
    r = invoke("show", BLUR, "--stage", "c", "--target", "c")
    assert r.exit_code == 0 and "#include" in r.output


def test_show_file_spec(tmp_path):
    src = tmp_path / "mypipe.py"
    src.write_text(textwrap.dedent("""
        import halo as hl

        def gradient():
            x, y = hl.Var("x"), hl.Var("y")
            g = hl.Func("gradient")
            g[x, y] = x + y
            return hl.Pipeline(g)

        def not_a_func():
            return 42

        def broken():
            raise ValueError("boom")
    """))
    r = invoke("show", f"{src}:gradient")
    assert r.exit_code == 0, r.output
    assert "gradient" in r.output

    r = invoke("show", f"{src}:not_a_func")
    assert r.exit_code == 2
    assert "returned int" in r.output and "Traceback" not in r.output

    r = invoke("show", f"{src}:broken")
    assert r.exit_code == 2
    assert "ValueError: boom" in r.output and "Traceback" not in r.output

    bad = tmp_path / "bad_syntax.py"
    bad.write_text("def f(:\n")
    r = invoke("show", f"{bad}:f")
    assert r.exit_code == 2
    assert "SyntaxError" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("spec, message", [
    ("no/such/file.py:f", "no such file"),
    ("halo.apps.blur:nope", "has no function 'nope'"),
    ("no_such_module_xyz:f", "no module named 'no_such_module_xyz'"),
    ("halo.apps.blur", "expected exactly one ':'"),
    ("halo.apps.blur:DEFAULT_SIZE", "not a function"),
    ("halo.apps.blur:make_input", "expected a halo.Func or halo.Pipeline"),
])
def test_bad_pipeline_spec(spec, message):
    r = invoke("show", spec)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_bad_target():
    r = invoke("show", BLUR, "--target", "bogus")
    assert r.exit_code == 2
    assert "Unknown target" in r.output


def test_compile_exports(tmp_path):
    # (the full AOT tests are in test_aot.py)
    r = invoke("compile", BLUR, "--target", "c", "-o", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    for f in ("blur_y.h", "blur_y.c", "libblur_y.a", "libblur_y.so", "blur_y.pc"):
        assert (tmp_path / "out" / f).is_file()
    r = invoke("compile", BLUR, "--target", "bogus", "-o", str(tmp_path / "out"))
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_python_dash_m_and_bad_spec_exit_code():
    r = subprocess.run([sys.executable, "-m", "halo", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "demo" in r.stdout and "show" in r.stdout
    r = subprocess.run([sys.executable, "-m", "halo", "show", "missing.py:f"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "no such file" in r.stderr and "Traceback" not in r.stderr
