"""`halo tune`: search, schedule files, resume, isolation of bad candidates, shared
studies on SQLite and on a real PostgreSQL server (started here on a unix socket).

The pipeline is a tiny blur so that each candidate compiles and runs in well
under a second; budgets are a few seconds.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="the tune extra is not installed")

import halo as hl  # noqa: E402
from halo.apps.blur import blur_numpy  # noqa: E402
from halo.tune import tune  # noqa: E402
from halo.tune.study import Tuner, TuneError  # noqa: E402

W, H = 34, 26           # blur input; output 32 x 24

PIPELINE_SRC = f"""
from halo.apps.blur import blur

def pipeline():
    return blur({W}, {H})
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune_pipeline")
    (d / "tiny_blur.py").write_text(PIPELINE_SRC)
    return f"{d / 'tiny_blur.py'}:pipeline"


def _study(storage, name="blur_y"):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (summary,) = [s for s in optuna.get_all_study_summaries(storage)
                  if s.study_name.startswith(name + ".")]
    return optuna.load_study(study_name=summary.study_name, storage=storage)


@pytest.fixture(scope="module")
def tuned(spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("tuned")
    return tune(spec, budget=5, out_dir=str(out), seed=7, runoff_s=1.5), out


def test_tuned_schedule_file_applies_and_matches_interpreter(spec, tuned):
    summary, out = tuned
    assert summary["measured"] >= 2 and summary["best_time"] > 0
    path = summary["schedule_file"]
    assert path == os.path.join(str(out), "blur_y.host.json")
    from halo.cli import load_pipeline
    from halo.interp import realize
    from halo.schedule.serialize import load_schedule
    study = _study(f"sqlite:///{out}/blur_y.host.db")
    best = study.trials[summary["best_trial"]]
    assert load_schedule(path)["funcs"] == best.user_attrs["schedule"]
    assert best.value == summary["best_time"]
    # the winner of the final run-off of the top candidates, which includes the
    # fastest of the search
    runoff = summary["runoff"]
    assert len(runoff) >= 2 and study.best_trial.number in runoff
    assert summary["best_trial"] == min(runoff, key=runoff.get)
    img = np.random.default_rng(3).integers(0, 65536, (H, W), dtype=np.uint16)
    # the file, then the next best candidates (whatever wins, a non-trivial schedule is
    # applied too): each gives exactly the interpreter's (and numpy's) blur
    done = sorted((t for t in study.trials if t.state.name == "COMPLETE"),
                  key=lambda t: t.value)
    schedules = [path] + [{**load_schedule(path), "funcs": t.user_attrs["schedule"]}
                          for t in done[:4] if t.user_attrs["schedule"]]
    assert len(schedules) >= 2
    for sched in schedules:
        p = load_pipeline(spec)
        p.apply_schedule(sched)                 # strict: the algorithm hash matches
        if sched is path:
            assert (p.schedule_source() or "# the default schedule\n") == summary["python"]
        p.outputs()[0].input.set(hl.Buffer(img))
        got = np.asarray(p.realize([W - 2, H - 2]))
        (ref,) = realize(p.outputs(), [W - 2, H - 2])
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(got, blur_numpy(img))
    report = open(summary["report"]).read()
    assert "## Best schedule as Python" in report and summary["python"].strip() in report
    assert "final run-off" in report
    assert f"| **tuned** (trial {summary['best_trial']})" in report
    with open(summary["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_baseline_file_and_progress_bar(spec, tuned, tmp_path):
    """`halo tune --baseline FILE` times that schedule file like the candidates
    and puts it in the report and the summary line; the progress bar shows
    trials, the best so far and the time left; a missing baseline file is
    refused by the CLI with its name."""
    summary, _ = tuned
    base = summary["schedule_file"]
    r = subprocess.run([sys.executable, "-m", "halo", "tune", spec, "--budget", "2",
                        "--seed", "3", "--out", str(tmp_path),
                        "--baseline", base], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "tuning:" in r.stderr and "left]" in r.stderr and "trials " in r.stderr \
        and "best " in r.stderr, r.stderr[-500:]
    assert f"baseline {base}:" in r.stdout and "x the tuned time" in r.stdout
    report = open(tmp_path / "blur_y.host.report.md").read()
    assert f"| baseline `{base}`" in report
    r = subprocess.run([sys.executable, "-m", "halo", "tune", spec, "--budget", "2",
                        "--out", str(tmp_path), "--baseline", str(tmp_path / "nope.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "nope.json" in r.stderr and "does not exist" in r.stderr


def test_same_seed_gives_same_candidates(spec, tmp_path):
    # without the heuristic seeds (deterministic anyway) the first trials are the
    # sampler's random start-up proposals, which do not depend on timings
    runs = []
    for name in ("a", "b"):
        tune(spec, budget=4, out_dir=str(tmp_path / name), seed=7, heuristic_seeds=False)
        runs.append([t for t in _study(f"sqlite:///{tmp_path / name}/blur_y.host.db").trials
                     if t.state.is_finished()])
    a, b = runs
    from halo.tune.study import N_STARTUP
    n = min(len(a), len(b), N_STARTUP)
    assert n >= 3
    assert [t.params for t in a[:n]] == [t.params for t in b[:n]]
    assert len({str(sorted(t.params.items())) for t in a[:n]}) > 1      # not one repeated


def test_resume_continues_the_study(spec, tmp_path):
    tune(spec, budget=2, out_dir=str(tmp_path), seed=1)
    storage = f"sqlite:///{tmp_path}/blur_y.host.db"
    # finished trials; heuristic seeds still queued (WAITING) are run by the resume
    before = [(t.number, t.state, t.value, t.params) for t in _study(storage).trials
              if t.state.is_finished()]
    with pytest.raises(TuneError, match="--resume"):
        tune(spec, budget=2, out_dir=str(tmp_path), seed=1)
    summary = tune(spec, budget=2, out_dir=str(tmp_path), seed=1, resume=True)
    after = [(t.number, t.state, t.value, t.params) for t in _study(storage).trials]
    assert after[:len(before)] == before                  # nothing lost or changed
    assert len([t for t in after if t[1].is_finished()]) > len(before)
    assert [n for n, *_ in after] == list(range(len(after)))
    assert summary["trials"] == len(after)
    best = min(v for _, s, v, _ in after if s.name == "COMPLETE")
    assert summary["best_time"] == best


def test_crashing_hanging_and_wrong_candidates_are_rejected(spec, tmp_path):
    # Trials 0-2 are the heuristic seeds: plant a crash, a hang and a wrong answer.
    summary = tune(spec, budget=10, out_dir=str(tmp_path), trial_timeout=5,
                   faults={0: "crash", 1: "hang", 2: "wrong"})
    rejected = {r["trial"]: r for r in summary["rejected"]}
    assert rejected[0]["kind"] == "crash" and "SIGSEGV" in rejected[0]["reason"]
    assert rejected[1]["kind"] == "timeout" and "within 5 s" in rejected[1]["reason"]
    assert rejected[2]["kind"] == "wrong" and "differ from the interpreter" in \
        rejected[2]["reason"]
    assert summary["measured"] >= 1                  # the tuner went on
    report = open(summary["report"]).read()
    for r in rejected.values():
        assert f"| {r['trial']} | {r['kind']} |" in report


def test_out_of_memory_candidate_is_rejected(spec, tmp_path):
    t = Tuner(spec, out_dir=str(tmp_path), memory_limit_mb=1024, trial_timeout=20)
    try:
        from halo.tune.measure import Measurer
        t.open_study(resume=False)
        with Measurer(1024) as m:
            t.prepare(m)
            r = m.run(t._job(None, fault="oom"), 20)
    finally:
        t.close()
    assert not r.ok and r.kind == "memory" and "1024 MiB" in r.reason


def _tuner_cmd(spec, storage, budget, out):
    return [sys.executable, "-m", "halo", "tune", spec, "--budget", str(budget), "--storage",
            storage, "--resume", "--no-progress", "--out", str(out)]


def test_two_tuners_share_a_sqlite_study(spec, tmp_path):
    storage = f"sqlite:///{tmp_path}/shared.db"
    procs = [subprocess.Popen(_tuner_cmd(spec, storage, 4, tmp_path / f"w{i}"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = _study(storage).trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2                          # both tuned the one study
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t for t in trials if t.state.name == "RUNNING"]
    # each process reports the whole study
    for o in outs:
        assert "study blur_y.host." in o


# -- PostgreSQL -------------------------------------------------------------------------

def _pg_bin():
    for d in ["/usr/local/bin", *sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin"))]:
        if os.path.exists(os.path.join(d, "initdb")) and \
                os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server on a unix socket; yields its SQLAlchemy URL."""
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    d = tempfile.mkdtemp(prefix="halo-pg-")
    as_user = []
    if os.geteuid() == 0:                  # postgres refuses to run as root
        user = "postgres"
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            user, pw = "nobody", pwd.getpwnam("nobody")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
    data = os.path.join(d, "data")
    subprocess.run(as_user + [f"{pg}/initdb", "-D", data, "-A", "trust", "-U", "halo",
                              "--no-sync"], check=True, capture_output=True)
    subprocess.run(as_user + [f"{pg}/pg_ctl", "-D", data, "-l", os.path.join(d, "log"), "-w",
                              "-o", f"-k {d} -c listen_addresses='' -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://halo@/postgres?host={d}"
    finally:
        subprocess.run(as_user + [f"{pg}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def test_two_tuners_share_postgres_and_a_sigkill_loses_only_its_trial_in_flight(
        spec, tmp_path, postgres):
    survivor = subprocess.Popen(_tuner_cmd(spec, postgres, 7, tmp_path / "a"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    victim = subprocess.Popen(_tuner_cmd(spec, postgres, 60, tmp_path / "b"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tag = f":{victim.pid}"
    completed, deadline = {}, time.monotonic() + 60
    while time.monotonic() < deadline:       # wait until it has results and one in flight
        time.sleep(0.2)
        try:
            trials = _study(postgres).trials
        except ValueError:
            continue
        mine = [t for t in trials if str(t.user_attrs.get("worker", "")).endswith(tag)]
        completed = {t.number: t.value for t in mine if t.state.name == "COMPLETE"}
        running = [t for t in mine if t.state.name == "RUNNING"]
        if len(completed) >= 2 and running:
            os.kill(victim.pid, signal.SIGKILL)
            break
    victim.wait()
    assert victim.returncode == -signal.SIGKILL and len(completed) >= 2
    out = survivor.communicate(timeout=120)[0].decode()
    assert survivor.returncode == 0, out
    trials = _study(postgres).trials
    assert [t.number for t in trials] == list(range(len(trials)))     # none duplicated
    by_number = {t.number: t for t in trials}
    for n, v in completed.items():                                    # none lost
        assert by_number[n].state.name == "COMPLETE" and by_number[n].value == v
    mine = [t for t in trials if str(t.user_attrs.get("worker", "")).endswith(tag)]
    in_flight = [t for t in mine if t.state.name != "COMPLETE"]
    assert len(in_flight) <= 1 + 1     # the one measured, maybe one asked but not begun
    assert any(t.user_attrs["worker"] != mine[0].user_attrs["worker"]
               for t in trials if t.state.name == "COMPLETE")
    # A tuner that resumes later marks the dead worker's trial failed (stale heartbeat).
    time.sleep(1.5)
    t = Tuner(spec, storage=postgres, out_dir=str(tmp_path / "c"), grace_s=1)
    try:
        t.open_study(resume=True)
    finally:
        t.close()
    states = {tr.number: tr.state.name for tr in _study(postgres).trials}
    assert all(states[tr.number] == "FAIL" for tr in in_flight)
    assert all(states[n] == "COMPLETE" for n in completed)


# -- the search space and its heuristic seeds ---------------------------------------------

def _seed_schedules(pipeline):
    from halo.tune.heuristics import seed_candidates
    from halo.tune.space import FixedChooser, Space
    space = Space(pipeline)
    return {name: space.build(FixedChooser(params))
            for name, params in seed_candidates(space)}


def _entries(schedule, func):
    return [(e["stage"], e["directive"], e["args"]) for e in schedule["funcs"].get(func, [])]


def _run_schedule(make, schedule, inputs):
    """A fresh pipeline from `make()` with `schedule` applied, realized on `inputs`
    ({ImageParam name: numpy array})."""
    f = make()
    p = hl.Pipeline(f)
    p.apply_schedule(schedule)
    for param in p.infer_arguments():
        if isinstance(param, hl.ImageParam):
            param.set(hl.Buffer(inputs[param.name()]))
    from halo.tune.workload import output_sizes
    return np.asarray(p.realize(output_sizes(p)))


def test_matmul_seeds_hold_the_register_blocked_and_packed_expert_schedules():
    from halo.apps.matmul import matmul
    seeds = _seed_schedules(hl.Pipeline(matmul(128)))
    packed = seeds["regs_packed"]
    out = _entries(packed, "matmul")
    # 48 x 32 tiles of 4-row register blocks, 3 vectors wide, unrolled, parallel
    assert (0, "split", ["x", "xo", "xi", 48, "Auto"]) in out
    assert (0, "split", ["yi", "yi", "yb", 4, "Auto"]) in out
    for e in [(0, "vectorize", ["xi", 16, "Auto"]), (0, "unroll", ["xi"]),
              (0, "unroll", ["yb"]), (0, "parallel", ["yo"])]:
        assert e in out
    prod = _entries(packed, "prod")
    assert prod[0] == (0, "compute_at", ["matmul", "yi"])            # per register block
    assert (1, "reorder", ["x", "y", "k.x"]) in prod                 # RVar outside the block
    assert (1, "unroll", ["y"]) in prod and (1, "unroll", ["x"]) in prod
    # B's panel packed once per tile (Halide's B.in_().compute_at(out, x))
    assert _entries(packed, "B_panel")[0] == (0, "compute_at", ["matmul", "xo"])
    assert "B_panel" not in seeds["regs"]["funcs"]                   # inlined: unpacked
    g = np.random.default_rng(0)
    a, b = (g.random((128, 128), dtype=np.float32) - 0.5 for _ in range(2))
    for name in ("regs", "regs_packed"):
        got = _run_schedule(lambda: matmul(128), seeds[name], {"A": a, "B": b})
        np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_conv_seed_is_halides_conv_layer_schedule():
    from halo.apps.conv_layer import conv_layer, conv_layer_numpy, make_inputs
    shape = dict(N=1, CI=8, CO=32, W=10, H=6)
    seeds = _seed_schedules(hl.Pipeline(conv_layer(**shape)))
    wide = seeds["regs_wide"]
    relu = _entries(wide, "relu")
    assert (0, "split", ["c", "co", "ci", 32, "Auto"]) in relu       # CO=32: 2 vectors
    assert (0, "split", ["x", "xo", "xb", 5, "Auto"]) in relu        # x 5 pixels
    conv = _entries(wide, "conv")
    assert conv[0] == (0, "compute_at", ["relu", "co"])              # per register block
    assert (1, "reorder", ["c", "x", "y", "n", "r.x", "r.y", "r.z"]) in conv
    assert (1, "unroll", ["r.x", 2, "GuardWithIf"]) in conv
    ins = list(make_inputs(**shape))
    got = _run_schedule(lambda: conv_layer(**shape), wide,
                        dict(zip(["input", "filter", "bias"], ins)))
    np.testing.assert_allclose(got, conv_layer_numpy(*ins), rtol=1e-4, atol=1e-5)


def test_histogram_seeds_rfactor_into_parallel_strips():
    from halo.apps.histogram import histogram, histogram_numpy
    seeds = _seed_schedules(hl.Pipeline(histogram(64, 48)))
    strips = {name: s for name, s in seeds.items()
              if any(e[1] == "rfactor" for e in _entries(s, "hist"))}
    assert len(strips) >= 2                                          # several strip counts
    tiles = _entries(seeds["tiles"], "hist")
    assert (1, "split", ["r.y", "ro", "ri", 3, "Auto"]) in tiles     # 48 rows / 16 strips
    assert (1, "rfactor", [["ro", "u"]]) in tiles
    assert (1, "parallel", ["u"]) in _entries(seeds["tiles"], "hist_intm")
    img = np.random.default_rng(1).integers(0, 256, (48, 64), dtype=np.uint8)
    for s in strips.values():
        got = _run_schedule(lambda: histogram(64, 48), s, {"input": img})
        np.testing.assert_array_equal(got, histogram_numpy(img))


def test_gaussian_seed_is_the_sliding_window_expert_schedule():
    from halo.apps.gaussian import gaussian
    rows = _seed_schedules(hl.Pipeline(gaussian(256, 256)))["rows"]
    assert _entries(rows, "gauss_y") == [
        (0, "split", ["y", "yo", "yi", 64, "Auto"]), (0, "vectorize", ["x", 16, "Auto"]),
        (0, "parallel", ["yo"])]
    assert _entries(rows, "gauss_x")[:2] == [(0, "store_at", ["gauss_y", "yo"]),
                                             (0, "compute_at", ["gauss_y", "yi"])]


@pytest.mark.parametrize("which", ["gaussian", "blur", "matmul"])
def test_random_candidates_pass_the_validator(which):
    """Candidates are legal by construction: 20 random answers to the space's
    questions each give a schedule that applies and lowers (no storage
    outside a parallel loop its Func is computed in: the race check refused
    240 of 319 gaussian candidates in a 5-minute tune before the space knew)."""
    import random

    from halo.apps.blur import blur
    from halo.apps.gaussian import gaussian
    from halo.apps.matmul import matmul
    from halo.tune.space import FixedChooser, Space
    make = {"gaussian": lambda: gaussian(256, 256), "blur": lambda: blur(256, 128),
            "matmul": lambda: matmul(64)}[which]
    space = Space(hl.Pipeline(make()))
    rng = random.Random(7)
    for _ in range(20):
        schedule = space.build(FixedChooser({}, lambda name, choices: rng.choice(choices)))
        p = hl.Pipeline(make())
        p.apply_schedule(schedule)
        p.lowered_stmt()
