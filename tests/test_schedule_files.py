"""Schedule files: save, load, apply, print as Python, algorithm hash, and
every error a bad file can cause (each naming the file, Func and directive)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import halo as hl
from halo import interp
from halo.apps.blur import blur, blur_numpy, make_input
from halo.errors import ScheduleFileError
from halo.schedule import directives, serialize as S

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "schedules" / "blur_y.host.json"
W, H = 70, 45          # not multiples of the tile sizes: exercises the tails


# -- pipelines, each built fresh on every call ------------------------------------------

def handle(fn):
    """A Func for an internal Function (the blur returns only its output)."""
    f = hl.Func.__new__(hl.Func)
    f._f = fn
    return f


def build_blur(divisor=3):
    out = blur(W + 2, H + 2)
    bx = handle(out.function().callees[next(iter(out.function().callees))])
    if divisor != 3:   # a different algorithm with the same Func names
        x, y = hl.Var("x"), hl.Var("y")
        inp = hl.ImageParam(hl.UInt(16), 2, "input")
        bx = hl.Func("blur_x")
        bx[x, y] = hl.cast(hl.UInt(16), (hl.cast(hl.UInt(32), inp[x, y]) + inp[x + 1, y]
                                         + inp[x + 2, y]) / divisor)
        out = hl.Func("blur_y")
        out[x, y] = hl.cast(hl.UInt(16), (hl.cast(hl.UInt(32), bx[x, y]) + bx[x, y + 1]
                                          + bx[x, y + 2]) / divisor)
        out.input = inp
    return {"blur_y": out, "blur_x": bx}


def schedule_blur(fs, tx=16, ty=8):
    x, y, xo, yo, xi, yi = hl.vars("x y xo yo xi yi")
    fs["blur_y"].tile(x, y, xo, yo, xi, yi, tx, ty).vectorize(xi, 4).parallel(yo)
    fs["blur_x"].compute_at(fs["blur_y"], xo).vectorize(x, 4)


def build_reduction():
    """An update with an anonymous RDom (its internal name differs per build)
    and an inline reduction (an anonymous Func)."""
    inp = hl.ImageParam(hl.Float(32), 2, "inp")
    x, y = hl.vars("x y")
    r = hl.RDom([(0, 8)])
    f = hl.Func("f")
    f[x, y] = inp[x, y] * 2.0 + hl.sum(inp[x, y + r.x])
    g = hl.Func("g")
    g[x, y] = hl.f32(0)
    g[x, y] += f[x + r.x, y]
    g.input = inp
    return {"g": g, "f": f, "r": r}


def schedule_reduction(fs):
    x, y, xo, xi = hl.vars("x y xo xi")
    rxo, rxi = hl.RVar("rxo"), hl.RVar("rxi")
    fs["f"].compute_root().split(x, xo, xi, 8, hl.TailStrategy.GuardWithIf).vectorize(xi)
    fs["g"].vectorize(x, 4)
    u = fs["g"].update(0)
    u.split(fs["r"].x, rxo, rxi, 4, hl.TailStrategy.GuardWithIf).unroll(rxi).reorder(rxi, x, rxo, y)


def build_duplicates():
    """Two Funcs with the same user name: keys `h` and `h#2`."""
    inp = hl.ImageParam(hl.Int(32), 1, "inp")
    x = hl.Var("x")
    h1 = hl.Func("h")
    h1[x] = inp[x] + 1
    h2 = hl.Func("h")
    h2[x] = h1[x] * 2 + h1[x + 1]
    out = hl.Func("out")
    out[x] = h2[x] - h2[x + 1]
    out.input = inp
    # keys follow first use from the outputs: h2 is met before h1
    return {"out": out, "h": h2, "h#2": h1}


def schedule_duplicates(fs):
    x, xo, xi = hl.vars("x xo xi")
    fs["out"].split(x, xo, xi, 8)
    fs["h"].compute_at(fs["out"], xo)
    fs["h#2"].compute_root().vectorize(x, 4)


def logs(fs):
    return {k: list(v.function().schedule.log) for k, v in fs.items() if isinstance(v, hl.Func)}


def set_input(fs, seed=0):
    out = next(iter(fs.values()))
    inp = out.input
    shape = (H + 12, W + 12) if inp.dimensions() == 2 else (W + 12,)
    rng = np.random.default_rng(seed)
    if inp.type() == hl.UInt(16):
        a = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    elif inp.type() == hl.Float(32):
        a = rng.standard_normal(shape).astype(np.float32)
    else:
        a = rng.integers(-1000, 1000, size=shape, dtype=np.int32)
    inp.set(hl.Buffer(a))
    return a


def run(fs, sizes):
    out = next(iter(fs.values()))
    set_input(fs)
    return np.asarray(hl.Pipeline(out).realize(sizes))


def reference(fs, sizes):
    out = next(iter(fs.values()))
    set_input(fs)
    return interp.realize(out, sizes)[0]


def c_source(fs):
    """The C source, without the `$n` suffixes of internal names (a fresh copy
    built in the same process has other suffixes; some error strings show them)."""
    src = pipe(fs).c_source()
    if "r" in fs:       # an anonymous RDom's name (r7) also reaches the source
        src = re.sub(rf"(?<![A-Za-z0-9]){fs['r'].domain().name}(?![0-9])", "R", src)
    return re.sub(r"\$\d+", "", src)


def pipe(fs):
    return hl.Pipeline(next(iter(fs.values())))


CASES = {
    "blur": (build_blur, schedule_blur, [W, H]),
    "reduction": (build_reduction, schedule_reduction, [W, H]),
    "duplicates": (build_duplicates, schedule_duplicates, [W]),
}


# -- round trips ------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_file_round_trip(case, tmp_path):
    build, schedule, sizes = CASES[case]
    a = build()
    schedule(a)
    path = pipe(a).save_schedule(tmp_path / "s.json", target="host")
    data = json.loads(Path(path).read_text())
    assert data["format"] == 1 and data["target"] == "host"
    assert data["halo_version"] == hl.__version__

    b = build()                         # a fresh, unscheduled copy
    assert all(not v.function().schedule.log for v in b.values() if isinstance(v, hl.Func))
    pipe(b).apply_schedule(path)
    assert S.schedule_to_dict(pipe(b))["funcs"] == data["funcs"]
    if case != "reduction":             # there RVar names embed the RDom's internal name
        assert logs(b) == logs(a)
    assert c_source(b) == c_source(a)
    got = run(b, sizes)
    np.testing.assert_array_equal(got, run(a, sizes))
    np.testing.assert_array_equal(got, reference(build(), sizes))


def test_rvar_names_become_rvars():
    a = build_reduction()
    schedule_reduction(a)
    data = S.schedule_to_dict(pipe(a))
    split = data["funcs"]["g"][1]
    assert split["stage"] == 1 and split["directive"] == "split"
    assert split["args"][:3] == ["r.x", "rxo", "rxi"]     # the RDom by its user name
    b = build_reduction()
    pipe(b).apply_schedule(data)
    dims = {d.var: d.is_rvar for d in b["g"].function().definitions[1].schedule.dims}
    assert dims == {"rxi": True, "x": False, "rxo": True, "y": False}
    src = S.schedule_to_python(pipe(b))
    assert "g_rvars0 = g.rvars(0)\n" in src       # bound before any directive runs
    assert "g.update(0).split(g_rvars0[0], rxo, rxi, 4, hl.TailStrategy.GuardWithIf)" in src
    assert "rxo = hl.RVar('rxo')" in src


def test_duplicate_names_get_numbered_keys():
    a = build_duplicates()
    schedule_duplicates(a)
    data = S.schedule_to_dict(pipe(a))
    assert list(data["funcs"]) == ["out", "h", "h#2"]
    assert data["funcs"]["h"] == [{"stage": 0, "directive": "compute_at",
                                     "args": ["out", "xo"]}]


@pytest.mark.parametrize("case", sorted(CASES))
def test_python_round_trip(case):
    build, schedule, sizes = CASES[case]
    a = build()
    schedule(a)
    src = pipe(a).schedule_source()
    b = build()
    scope = {"hl": hl}
    scope.update({re.sub(r"\W", "_", k): v for k, v in b.items() if isinstance(v, hl.Func)})
    exec(src, scope)   # the printed code, not a file's contents
    if case != "reduction":
        assert logs(b) == logs(a)
    assert S.schedule_to_dict(pipe(b)) == S.schedule_to_dict(pipe(a))
    assert c_source(b) == c_source(a)


def test_python_text_of_blur():
    a = build_blur()
    schedule_blur(a, 256, 32)
    assert pipe(a).schedule_source() == (
        "x, y, xo, yo, xi, yi = hl.vars('x y xo yo xi yi')\n"
        "blur_y.tile(x, y, xo, yo, xi, yi, 256, 32)\n"
        "blur_y.vectorize(xi, 4)\n"
        "blur_y.parallel(yo)\n"
        "blur_x.compute_at(blur_y, xo)\n"
        "blur_x.vectorize(x, 4)\n")
    assert build_blur()["blur_y"]._pipeline().schedule_source() == ""


def test_func_apply_schedule_and_dict_input(tmp_path):
    a = build_blur()
    schedule_blur(a)
    path = S.save_schedule(pipe(a), tmp_path / "b.json")
    b = build_blur()
    assert b["blur_y"].apply_schedule(path) is b["blur_y"]
    assert logs(b) == logs(a)
    c = build_blur()
    S.apply_schedule(pipe(c), S.schedule_to_dict(pipe(a)))
    assert logs(c) == logs(a)


def test_save_into_directory_names_file_by_pipeline_and_target(tmp_path):
    a = build_blur()
    schedule_blur(a)
    path = pipe(a).save_schedule(tmp_path, target="x86-64-linux-avx2")
    assert os.path.basename(path) == "blur_y.x86-64-linux-avx2.json"
    assert S.load_schedule(path)["target"] == "x86-64-linux-avx2"


@pytest.mark.skipif("bound" in getattr(directives, "_PLANNED", ()), reason="no bound()")
def test_bound_round_trip():
    a = build_blur()
    x, y = hl.vars("x y")
    a["blur_y"].bound(x, 0, W).bound_extent(y, H)
    a["blur_x"].compute_root().align_bounds(x, 8, 0)
    data = S.schedule_to_dict(pipe(a))
    assert data["funcs"]["blur_y"][0] == {"stage": 0, "directive": "bound",
                                          "args": ["x", 0, W]}
    b = build_blur()
    pipe(b).apply_schedule(data)
    assert logs(b) == logs(a)
    c = build_blur()
    exec(pipe(a).schedule_source(), {"hl": hl, "blur_y": c["blur_y"], "blur_x": c["blur_x"]})
    assert logs(c) == logs(a)
    np.testing.assert_array_equal(run(b, [W, H]), reference(build_blur(), [W, H]))


def test_loop_level_dicts():
    a = build_blur()
    a["blur_x"].compute_root()
    a["blur_x"].compute_at(hl.LoopLevel.inlined())
    a["blur_x"].store_at(hl.LoopLevel("at", a["blur_y"].function().name, "y"))
    a["blur_x"].compute_at(a["blur_y"], "x")
    funcs = S.schedule_to_dict(pipe(a))["funcs"]
    assert funcs["blur_x"][1]["args"] == [{"kind": "inlined"}]
    assert funcs["blur_x"][2]["args"] == [{"kind": "at", "func": "blur_y", "var": "y",
                                           "stage": -1}]
    b = build_blur()
    pipe(b).apply_schedule(S.schedule_to_dict(pipe(a)))
    assert logs(b) == logs(a)
    assert b["blur_x"].function().schedule.store_level.func == b["blur_y"].function().name
    c = build_blur()
    exec(pipe(a).schedule_source(), {"hl": hl, "blur_y": c["blur_y"], "blur_x": c["blur_x"]})
    assert logs(c) == logs(a)


@pytest.mark.skipif("in_" in getattr(directives, "_PLANNED", ()), reason="in_() not implemented")
def test_wrapper_funcs_round_trip():
    def build():
        inp = hl.ImageParam(hl.Int(32), 1, "inp")
        x = hl.Var("x")
        a = hl.Func("a")
        a[x] = inp[x] * 2
        b = hl.Func("b")
        b[x] = a[x] + a[x + 1]
        inp.set(hl.Buffer(np.arange(40, dtype=np.int32)))
        return b, a
    b, a = build()
    a.in_(b).compute_at(b, hl.Var("x"))
    a.compute_root()
    data = S.schedule_to_dict(b)
    assert list(data["funcs"]) == ["a", "a_in_b"]     # the wrapper, after its Func
    assert S.schedule_to_python(b) == ("x = hl.Var('x')\n"
                                       "a_in_b = a.in_(b)\n"
                                       "a.compute_root()\n"
                                       "a_in_b.compute_at(b, x)\n")
    b2, a2 = build()
    S.apply_schedule(b2, data)
    assert S.schedule_to_dict(b2) == data
    b3, a3 = build()
    exec(S.schedule_to_python(b), {"hl": hl, "a": a3, "b": b3})
    assert S.schedule_to_dict(b3) == data
    want = np.asarray(build()[0].realize([30]))
    for f in (b, b2, b3):
        np.testing.assert_array_equal(np.asarray(f.realize([30])), want)


# -- the example file in schedules/ --------------------------------------------------------

def test_example_schedule_file():
    data = S.load_schedule(EXAMPLE)
    assert data["target"] == "host"
    names = {(k, e["directive"]) for k, v in data["funcs"].items() for e in v}
    assert {("blur_y", "tile"), ("blur_y", "vectorize"), ("blur_y", "parallel"),
            ("blur_x", "compute_at")} <= names

    f = blur(300, 70)
    p = hl.Pipeline(f)
    p.apply_schedule(EXAMPLE)
    assert re.search(r"parallel \(blur_y(\$\d+)?\.s0\.yo", p.loop_nest_text())
    # saving again gives the same file (apart from the halo version)
    again = S.schedule_to_dict(p, "host")
    assert again["funcs"] == data["funcs"]
    assert again["algorithm_hash"] == data["algorithm_hash"]

    # sizes of at least one 256x32 tile (smaller outputs would need input
    # before the image: ShiftInwards moves the last tile back, as in Halide)
    for w, h in ((300, 70), (517, 101)):
        img = make_input(w, h, seed=3)
        f.input.set(hl.Buffer(img))
        got = np.asarray(p.realize([w - 2, h - 2]))
        plain = blur(w, h)
        plain.input.set(hl.Buffer(img))
        np.testing.assert_array_equal(got, np.asarray(plain.realize([w - 2, h - 2])))
        np.testing.assert_array_equal(got, interp.realize(plain, [w - 2, h - 2])[0])
        np.testing.assert_array_equal(got, blur_numpy(img))


# -- the algorithm hash -------------------------------------------------------------------

def test_hash_same_algorithm_built_twice():
    for build, _, _ in CASES.values():
        assert S.algorithm_hash(pipe(build())) == S.algorithm_hash(pipe(build()))


def test_hash_ignores_internal_names():
    a, b = build_reduction(), build_reduction()
    assert a["r"].domain().name != b["r"].domain().name     # r7 vs r9, say
    assert a["g"].function().name != b["g"].function().name  # g vs g$1
    assert pipe(a).algorithm_hash() == pipe(b).algorithm_hash()
    text = S.algorithm_text(pipe(a))
    assert "$" not in text


def test_hash_same_in_another_process():
    code = ("import halo as hl; from halo.apps.blur import blur; "
            "print(hl.Pipeline(blur()).algorithm_hash())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == pipe(build_blur()).algorithm_hash()
    assert out == S.load_schedule(EXAMPLE)["algorithm_hash"]


def test_hash_changes_with_the_algorithm():
    base = pipe(build_blur()).algorithm_hash()
    assert pipe(build_blur(divisor=4)).algorithm_hash() != base
    assert pipe(build_blur(divisor=3)).algorithm_hash() != \
        pipe(build_blur(divisor=5)).algorithm_hash()

    def variant(offset=1, t=hl.Float(32)):
        inp = hl.ImageParam(t, 1, "inp")
        x = hl.Var("x")
        f = hl.Func("f")
        f[x] = inp[x] + inp[x + offset]
        return hl.Pipeline(f)
    h = variant().algorithm_hash()
    assert variant().algorithm_hash() == h
    assert variant(offset=2).algorithm_hash() != h
    assert variant(t=hl.Float(64)).algorithm_hash() != h


def test_hash_ignores_the_schedule():
    a = build_blur()
    before = pipe(a).algorithm_hash()
    schedule_blur(a)
    assert pipe(a).algorithm_hash() == before
    r = build_reduction()
    before = pipe(r).algorithm_hash()
    schedule_reduction(r)
    assert pipe(r).algorithm_hash() == before


# -- errors ---------------------------------------------------------------------------------

def write(tmp_path, data, name="sched.json"):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def blur_file_data(**funcs):
    return {"format": 1, "halo_version": hl.__version__, "target": "host",
            "algorithm_hash": pipe(build_blur()).algorithm_hash(), "funcs": funcs}


def apply_to_fresh_blur(path, **kw):
    fs = build_blur()
    pipe(fs).apply_schedule(path, **kw)
    return fs


def test_error_bad_json(tmp_path):
    p = write(tmp_path, '{"format": 1, "funcs": {', "broken.json")
    with pytest.raises(ScheduleFileError, match=r"broken\.json.*not valid JSON.*line 1"):
        S.load_schedule(p)
    with pytest.raises(ScheduleFileError, match=r"broken\.json"):
        apply_to_fresh_blur(p)


def test_error_missing_file(tmp_path):
    with pytest.raises(ScheduleFileError, match=r"nothere\.json.*cannot be read"):
        apply_to_fresh_blur(tmp_path / "nothere.json")


@pytest.mark.parametrize("data, message", [
    ([1, 2], r"top level must be a JSON object, got list"),
    ({"format": 1, "funcs": {}}, r"missing key\(s\) algorithm_hash"),
    ({"format": "1", "algorithm_hash": "", "funcs": {}}, r"'format' must be a positive integer"),
    ({"format": 1, "algorithm_hash": "", "funcs": []}, r"'funcs' must be an object"),
    ({"format": 1, "algorithm_hash": "", "funcs": {"blur_y": {}}},
     r"Func blur_y: expected a list of directives"),
    ({"format": 1, "algorithm_hash": "", "funcs": {"blur_y": ["tile"]}},
     r"Func blur_y, directive #0: expected an object"),
    ({"format": 1, "algorithm_hash": "", "funcs": {"blur_y": [{"directive": 3}]}},
     r"Func blur_y, directive #0: 'directive' must be"),
    ({"format": 1, "algorithm_hash": "", "funcs": {"blur_y": [
        {"directive": "parallel", "stage": -1, "args": ["y"]}]}},
     r"Func blur_y, parallel\(\): 'stage' must be a non-negative integer"),
    ({"format": 1, "algorithm_hash": "", "funcs": {"blur_y": [
        {"directive": "parallel", "args": "y"}]}},
     r"Func blur_y, parallel\(\): 'args' must be a list"),
    ({"format": 1, "algorithm_hash": "", "funcs": {"blur_y": [
        {"directive": "parallel", "args": ["y"], "when": 1}]}},
     r"Func blur_y, directive #0: unknown key\(s\) when"),
])
def test_error_wrong_shape(tmp_path, data, message):
    p = write(tmp_path, data, "shape.json")
    with pytest.raises(ScheduleFileError, match=r"shape\.json.*" + message):
        S.load_schedule(p)


def test_error_future_format(tmp_path):
    data = blur_file_data()
    data["format"] = 2
    p = write(tmp_path, data, "future.json")
    with pytest.raises(ScheduleFileError, match=r"future\.json: format 2 was written by a "
                                                r"newer halo .*reads format 1"):
        apply_to_fresh_blur(p)


def test_error_algorithm_hash_mismatch(tmp_path):
    a = build_blur(divisor=4)
    schedule_blur(a)
    p = pipe(a).save_schedule(tmp_path / "other.json")
    with pytest.raises(ScheduleFileError, match=r"other\.json: was made for a different "
                                                r"algorithm.*strict=False"):
        apply_to_fresh_blur(p)
    b = apply_to_fresh_blur(p, strict=False)     # same Func and Var names: applies
    assert logs(b) == logs(a)


def test_error_unknown_func(tmp_path):
    p = write(tmp_path, blur_file_data(blur_z=[{"stage": 0, "directive": "compute_root",
                                                 "args": []}]), "unknown_func.json")
    with pytest.raises(ScheduleFileError, match=r"unknown_func\.json: Func blur_z.*no Func "
                                                r"named 'blur_z'.*Funcs are: blur_y, blur_x"):
        apply_to_fresh_blur(p)


def test_error_unknown_func_in_arguments(tmp_path):
    p = write(tmp_path, blur_file_data(blur_x=[{"stage": 0, "directive": "compute_at",
                                                 "args": ["nosuch", "x"]}]), "arg_func.json")
    with pytest.raises(ScheduleFileError, match=r"arg_func\.json: Func blur_x, stage blur_x, "
                                                r"directive compute_at\(\).*no Func named "
                                                r"'nosuch'.*blur_y, blur_x"):
        apply_to_fresh_blur(p)


def test_error_unknown_directive(tmp_path):
    p = write(tmp_path, blur_file_data(blur_y=[{"stage": 0, "directive": "frobnicate",
                                                 "args": ["x"]}]), "unknown_dir.json")
    with pytest.raises(ScheduleFileError, match=r"unknown_dir\.json: Func blur_y, stage "
                                                r"blur_y, directive frobnicate\(\): unknown "
                                                r"directive 'frobnicate'.*split"):
        apply_to_fresh_blur(p)


def test_error_non_recording_directive_is_unknown(tmp_path):
    p = write(tmp_path, blur_file_data(blur_y=[{"stage": 0, "directive": "print_loop_nest",
                                                 "args": []}]), "printer.json")
    with pytest.raises(ScheduleFileError, match=r"printer\.json.*blur_y.*unknown directive "
                                                r"'print_loop_nest'"):
        apply_to_fresh_blur(p)


def test_error_planned_directive(tmp_path):
    p = write(tmp_path, blur_file_data(blur_y=[{"stage": 0, "directive": "async_",
                                                 "args": []}]), "async.json")
    with pytest.raises(ScheduleFileError, match=r"async\.json: Func blur_y.*async_\(\).*"
                                                r"not supported yet"):
        apply_to_fresh_blur(p)


def test_error_missing_stage(tmp_path):
    p = write(tmp_path, blur_file_data(blur_y=[{"stage": 1, "directive": "parallel",
                                                 "args": ["y"]}]), "stage.json")
    with pytest.raises(ScheduleFileError, match=r"stage\.json: Func blur_y, stage "
                                                r"blur_y\.update\(0\), directive parallel\(\):"
                                                r" Func blur_y has no such stage"):
        apply_to_fresh_blur(p)


@pytest.mark.parametrize("entry, message", [
    ({"directive": "split", "args": ["z", "zo", "zi", 8, "Auto"]},
     r"could not find dimension 'z' for split\(\).*y, x"),
    ({"directive": "split", "args": ["x", "xo", "xi", -8, "Auto"]},
     r"factor of split\(\) must be positive, got -8"),
    ({"directive": "split", "args": ["x", "xo", "xi", 8, "Sideways"]},
     r"unknown tail strategy 'Sideways'"),
    ({"directive": "split", "args": ["x", "xo"]},
     r"bad arguments \['x', 'xo'\]"),
    ({"directive": "vectorize", "args": ["w", 8]},
     r"could not find dimension 'w' for vectorize\(\)"),
    ({"directive": "fuse", "args": ["y", "x", "xy"]},
     r"fuse\(y, x\) needs 'x' to be the loop just outside 'y'"),
    ({"directive": "compute_at", "args": [{"kind": "sometimes"}]},
     r"a LoopLevel is an object"),
])
def test_error_bad_arguments(tmp_path, entry, message):
    p = write(tmp_path, blur_file_data(blur_y=[dict(entry, stage=0)]), "bad_args.json")
    where = rf"bad_args\.json: Func blur_y, stage blur_y, directive {entry['directive']}\(\): "
    with pytest.raises(ScheduleFileError, match=where + r".*" + message):
        apply_to_fresh_blur(p)


def test_error_leaves_pipeline_unchanged(tmp_path):
    ok = {"stage": 0, "directive": "parallel", "args": ["y"]}
    bad = {"stage": 0, "directive": "vectorize", "args": ["nope", 4]}
    p = write(tmp_path, blur_file_data(blur_x=[{"stage": 0, "directive": "compute_root",
                                                 "args": []}], blur_y=[ok, bad]), "half.json")
    fs = build_blur()
    before = c_source(fs)
    with pytest.raises(ScheduleFileError, match=r"half\.json: Func blur_y.*vectorize"):
        pipe(fs).apply_schedule(p)
    assert logs(fs) == {"blur_y": [], "blur_x": []}
    assert c_source(fs) == before


def test_files_are_data_only(tmp_path):
    # a directive name or argument that looks like code is just an unknown name
    p = write(tmp_path, blur_file_data(blur_y=[{"stage": 0, "directive": "__import__('os')",
                                                 "args": []}]), "code.json")
    with pytest.raises(ScheduleFileError, match=r"code\.json.*unknown directive"):
        apply_to_fresh_blur(p)
    p = write(tmp_path, blur_file_data(blur_y=[{"stage": 0, "directive": "parallel",
                                                 "args": ["__import__('os')"]}]), "code2.json")
    with pytest.raises(ScheduleFileError, match=r"code2\.json.*could not find dimension"):
        apply_to_fresh_blur(p)


# -- the command --------------------------------------------------------------------------

def test_cli_show_with_schedule_file():
    from halo.cli import main
    r = CliRunner().invoke(main, ["show", "halo.apps.blur:blur", "--schedule", str(EXAMPLE),
                                  "--stage", "schedule"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "blur_y.tile(x, y, xo, yo, xi, yi, 256, 32)" in r.output
    assert "blur_x.compute_at(blur_y, xo)" in r.output
    r2 = CliRunner().invoke(main, ["show", "halo.apps.blur:blur", "--schedule", str(EXAMPLE),
                                   "--schedule-as", "python"], catch_exceptions=False)
    assert r2.output == r.output
    r3 = CliRunner().invoke(main, ["show", "halo.apps.blur:blur", "--schedule", str(EXAMPLE)],
                            catch_exceptions=False)
    assert r3.exit_code == 0 and re.search(r"parallel \(blur_y(\$\d+)?\.s0\.yo", r3.output)
    r4 = CliRunner().invoke(main, ["show", "halo.apps.blur:blur", "--schedule", str(EXAMPLE),
                                   "--schedule-as", "json"], catch_exceptions=False)
    assert json.loads(r4.output)["funcs"] == S.load_schedule(EXAMPLE)["funcs"]


def test_cli_show_bad_schedule_file(tmp_path):
    from halo.cli import main
    p = write(tmp_path, blur_file_data(blur_q=[]), "cli_bad.json")
    r = CliRunner().invoke(main, ["show", "halo.apps.blur:blur", "--schedule", str(p)])
    assert r.exit_code != 0
    assert "cli_bad.json" in r.output and "blur_q" in r.output


def test_hoist_storage_round_trip():
    a = build_blur()
    x, y, xo, yo, xi, yi = hl.vars("x y xo yo xi yi")
    a["blur_y"].tile(x, y, xo, yo, xi, yi, 16, 8)
    a["blur_x"].compute_at(a["blur_y"], xo).hoist_storage(a["blur_y"], yo)
    data = S.schedule_to_dict(pipe(a))
    assert data["funcs"]["blur_x"][-1]["directive"] == "hoist_storage"
    b = build_blur()
    pipe(b).apply_schedule(data)
    assert logs(b) == logs(a)
    assert b["blur_x"].function().schedule.hoist_level.var == "yo"
    np.testing.assert_array_equal(run(b, [W, H]), reference(build_blur(), [W, H]))


def test_prefetch_round_trip():
    """A prefetch of an input buffer names it in the file by its name."""
    a = build_blur()
    x, y, yo, yi = hl.vars("x y yo yi")
    a["blur_x"].compute_root()
    a["blur_y"].split(y, yo, yi, 4).prefetch(a["blur_x"], yi, yi, 2) \
        .prefetch(a["blur_y"].input, yi, yo, 1, hl.PrefetchBoundStrategy.Clamp)
    data = S.schedule_to_dict(pipe(a))
    entries = [e for e in data["funcs"]["blur_y"] if e["directive"] == "prefetch"]
    assert [e["args"] for e in entries] == [["blur_x", "yi", "yi", 2, "GuardWithIf"],
                                            ["input", "yi", "yo", 1, "Clamp"]]
    b = build_blur()
    pipe(b).apply_schedule(data)
    assert logs(b) == logs(a)
    assert "__builtin_prefetch" in pipe(b).c_source()
    np.testing.assert_array_equal(run(b, [W, H]), reference(build_blur(), [W, H]))
    c = build_blur()
    exec(pipe(a).schedule_source(), {"hl": hl, "blur_y": c["blur_y"], "blur_x": c["blur_x"],
                                     "input": c["blur_y"].input})
    assert logs(c) == logs(a)


def test_memoize_round_trip():
    a = build_blur()
    a["blur_x"].compute_root().memoize(7)
    data = S.schedule_to_dict(pipe(a))
    assert data["funcs"]["blur_x"][-1] == {"stage": 0, "directive": "memoize", "args": [7]}
    b = build_blur()
    pipe(b).apply_schedule(data)
    assert logs(b) == logs(a)
    assert b["blur_x"].function().schedule.memo_eviction_key == 7
    np.testing.assert_array_equal(run(b, [W, H]), reference(build_blur(), [W, H]))
    np.testing.assert_array_equal(run(b, [W, H]), reference(build_blur(), [W, H]))


def test_compute_with_round_trip():
    def build():
        inp = hl.ImageParam(hl.Int(32), 2, "inp")
        x, y = hl.vars("x y")
        f, g, out = hl.Func("f"), hl.Func("g"), hl.Func("out")
        f[x, y] = inp[x, y] * 2
        g[x, y] = inp[x + 1, y] + 3
        out[x, y] = f[x, y] + g[x, y + 1]
        out.input = inp
        return {"out": out, "f": f, "g": g}
    a = build()
    x, y = hl.vars("x y")
    a["f"].compute_root()
    a["g"].compute_root().compute_with(a["f"], y, hl.LoopAlignStrategy.AlignStart)
    data = S.schedule_to_dict(pipe(a))
    assert data["funcs"]["g"][-1] == {"stage": 0, "directive": "compute_with", "args": [
        {"kind": "at", "func": "f", "var": "y", "stage": 0}, "AlignStart"]}
    b = build()
    pipe(b).apply_schedule(data)
    assert logs(b) == logs(a)
    c = build()
    exec(pipe(a).schedule_source(), {"hl": hl, **c})
    assert logs(c) == logs(a)
    np.testing.assert_array_equal(run(b, [W, H]), reference(build(), [W, H]))


def _hist_algorithm(img):
    x = hl.Var("x")
    r = hl.RDom([(0, img.shape[1]), (0, img.shape[0])], "r")
    h = hl.Func("hist")
    h[x] = 0
    h[hl.i32(hl.Buffer(img, "im")[r.x, r.y]) % 16] += 1
    return h, r


def test_rfactor_schedule_round_trips_and_keeps_the_algorithm_hash(tmp_path):
    """rfactor rewrites the Func's update: the hash must still be that of the
    algorithm as written (a fresh copy accepts the file), and the file must
    carry the intermediate's own directives."""
    from halo.schedule.serialize import algorithm_hash
    hl.RDom([(0, 4)], "r")      # the RDom below is then `r$N` internally, not `r`
    img = np.random.default_rng(5).integers(0, 256, size=(50, 24), dtype=np.uint8)
    h, r = _hist_algorithm(img)
    fresh, _ = _hist_algorithm(img)
    u, ryo, ryi = hl.Var("u"), hl.RVar("ryo"), hl.RVar("ryi")
    h.update(0).split(r.y, ryo, ryi, 8)
    intm = h.update(0).rfactor(ryo, u)
    intm.compute_root().update(0).parallel(u)
    assert algorithm_hash(hl.Pipeline(h)) == algorithm_hash(hl.Pipeline(fresh))
    path = tmp_path / "hist.json"
    hl.Pipeline(h).save_schedule(str(path))
    data = json.loads(path.read_text())
    assert [e["directive"] for e in data["funcs"]["hist_intm"]] == ["compute_root", "parallel"]
    p = hl.Pipeline(fresh)
    p.apply_schedule(str(path))
    got = np.asarray(p.realize([16]))
    want = np.bincount((img.astype(np.int64) % 16).ravel(), minlength=16)
    assert got.tolist() == want.tolist()
    assert "parallel" in p.lowered_stmt()


def test_rfactor_schedule_prints_as_python_that_runs_on_a_fresh_copy():
    """The Python printing of an rfactor schedule: the split RVars declared as
    RVars, the RDom's RVars bound before rfactor rewrites the stage, and the
    intermediate named where rfactor makes it (the tuner's report printed
    `hl.Var('r$1.y')` and a `hist_intm` that was never assigned)."""
    hl.RDom([(0, 4)], "r")
    img = np.random.default_rng(6).integers(0, 256, size=(40, 24), dtype=np.uint8)
    h, r = _hist_algorithm(img)
    u, ryo, ryi = hl.Var("u"), hl.RVar("ryo"), hl.RVar("ryi")
    h.update(0).split(r.y, ryo, ryi, 8)
    intm = h.update(0).rfactor(ryo, u)
    intm.compute_root().update(0).parallel(u).unroll(r.x, 2)
    src = hl.Pipeline(h).schedule_source()
    assert "$" not in src and "hist_intm = hist.update(0).rfactor(" in src
    assert "ryo = hl.RVar('ryo')" in src
    fresh, _ = _hist_algorithm(img)
    exec(src, {"hl": hl, "hist": fresh})
    want = np.bincount((img.astype(np.int64) % 16).ravel(), minlength=16)
    assert np.asarray(fresh.realize([16])).tolist() == want.tolist()
    assert hl.Pipeline(fresh).schedule_source() == src
