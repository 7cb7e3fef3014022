"""The `halo` command (also `python -m halo`).

    halo demo [--size WxH] [--repeats N]       compile the blur, check it, time it
    halo show PIPELINE [--stage loopnest|lowered|c|opencl|cuda|schedule] [--target T]
              [--schedule FILE]
    halo compile PIPELINE... [--schedule FILE] [--target T] [--name NAME] -o DIR
                                               export for embedding (halo/aot.py)
    halo tune PIPELINE --target T --budget SECONDS [--workers N] [--storage URL]
              [--resume] [--seed S] [--out DIR] [--baseline FILE]
                                               search schedules (halo/tune/)

PIPELINE is `path/to/file.py:function` or `package.module:function`; the
function takes no arguments and returns a `halo.Func` or `halo.Pipeline`.
A PIPELINE that cannot be loaded is a usage error (exit code 2) with a
one-paragraph message, never a traceback.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import click


class PipelineSpecError(click.ClickException):
    """A PIPELINE argument that cannot be loaded: exit code 2, like a usage error."""
    exit_code = 2


def _fail(spec: str, why: str):
    raise PipelineSpecError(
        f"cannot load PIPELINE {spec!r}: {why}\n"
        f"PIPELINE is 'path/to/file.py:function' or 'package.module:function'; the "
        f"function takes no arguments and returns a halo Func or Pipeline.")


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def load_pipeline(spec: str):
    """Resolve a PIPELINE spec to a `halo.Pipeline` (errors: PipelineSpecError)."""
    import halo
    where, sep, fname = spec.rpartition(":")
    if not sep or not where or not fname:
        _fail(spec, "expected exactly one ':' between the module/file and the function name")
    if not fname.isidentifier():
        _fail(spec, f"{fname!r} is not a valid Python function name")

    is_file = where.endswith(".py") or "/" in where or os.sep in where
    if is_file:
        path = Path(where).expanduser()
        if not path.is_file():
            _fail(spec, f"no such file: {path}")
        mod_name = "_halo_pipeline_" + "".join(c if c.isalnum() else "_" for c in path.stem)
        loader_spec = importlib.util.spec_from_file_location(mod_name, str(path))
        if loader_spec is None or loader_spec.loader is None:
            _fail(spec, f"{path} is not a loadable Python file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        sys.path.insert(0, str(path.resolve().parent))   # sibling imports work
        try:
            loader_spec.loader.exec_module(module)
        except SystemExit as e:
            _fail(spec, f"importing {path} called sys.exit({e.code})")
        except Exception as e:
            _fail(spec, f"importing {path} failed: {_describe(e)}")
        finally:
            try:
                sys.path.remove(str(path.resolve().parent))
            except ValueError:
                pass
        what = str(path)
    else:
        if os.getcwd() not in sys.path:       # like `python -m`: the cwd is importable
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            _fail(spec, f"no module named {e.name or where!r}")
        except SystemExit as e:
            _fail(spec, f"importing {where} called sys.exit({e.code})")
        except Exception as e:
            _fail(spec, f"importing module {where} failed: {_describe(e)}")
        what = f"module {where}"

    fn = getattr(module, fname, None)
    if fn is None:
        names = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        hint = f" (functions there: {', '.join(names)})" if names else ""
        _fail(spec, f"{what} has no function {fname!r}{hint}")
    if not callable(fn):
        _fail(spec, f"{what}: {fname!r} is a {type(fn).__name__}, not a function")
    try:
        result = fn()
    except SystemExit as e:
        _fail(spec, f"{fname}() called sys.exit({e.code})")
    except Exception as e:
        _fail(spec, f"calling {fname}() failed: {_describe(e)}")

    if isinstance(result, halo.Pipeline):
        return result
    if isinstance(result, halo.Func):
        try:
            return halo.Pipeline(result)
        except halo.HaloError as e:
            _fail(spec, f"{fname}() returned a Func that is not a valid pipeline: {e}")
    t = type(result)
    kind = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    hint = ""
    if t.__module__.split(".")[0] == "halide":
        hint = " (a Halide object: build it with `import halo as hl`)"
    _fail(spec, f"{fname}() returned {kind}, expected a halo.Func or halo.Pipeline{hint}")


def _target(spec):
    import halo
    if spec is None:
        return None
    try:
        return halo.Target(spec)
    except halo.HaloError as e:
        raise click.BadParameter(str(e), param_hint="'--target'")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="halo", prog_name="halo")
def main():
    """halo: a Halide-style array language for Python, compiled to C.

    PIPELINE arguments are 'path/to/file.py:function' or 'package.module:function'.
    """


@main.command()
@click.argument("pipeline")
@click.option("--stage", type=click.Choice(["loopnest", "lowered", "c", "opencl", "cuda",
                                           "schedule"]),
              default="loopnest", show_default=True,
              help="loopnest: the loop nest; lowered: the full lowered statement "
                   "(with bounds and checks); c: the generated C source (the host part, "
                   "for a GPU target); opencl/cuda: the GPU kernels; schedule: the "
                   "schedule as Python calls.")
@click.option("--target", "target", default=None, metavar="T",
              help="Target for --stage c (host, c, x86-64-linux-avx2, ...). "
                   "Default: HL_JIT_TARGET or host.")
@click.option("--schedule", "schedule_file", default=None, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="Apply this schedule file (schedules/NAME.TARGET.json) first.")
@click.option("--schedule-as", "schedule_as", type=click.Choice(["python", "json"]),
              default=None,
              help="Print the schedule instead: as Python calls (same as --stage "
                   "schedule) or as a schedule file.")
def show(pipeline, stage, target, schedule_file, schedule_as):
    """Print the loop nest, lowered statement, C source or schedule of PIPELINE."""
    import halo
    t = _target(target)
    p = load_pipeline(pipeline)
    try:
        if schedule_file is not None:
            p.apply_schedule(schedule_file)
        if schedule_as == "json":
            from halo.schedule.serialize import dumps, schedule_to_dict
            text = dumps(schedule_to_dict(p, target or "host"))
        elif schedule_as == "python" or stage == "schedule":
            text = p.schedule_source() or "# no schedule directives: the default schedule\n"
        elif stage == "loopnest":
            text = p.loop_nest_text()
        elif stage == "lowered":
            text = p.lowered_stmt()
        elif stage in ("opencl", "cuda"):
            from halo.runtime.device import device_source_for, launches_of
            kernels = [launch.kernel for launch in launches_of(p._lower())]
            text = device_source_for(kernels, halo.Target(f"host-{stage}")) if kernels else \
                f"/* {p.name()} has no GPU kernels (no gpu_blocks/gpu_tile loops) */\n"
        else:
            text = p.c_source(t)
    except halo.HaloError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}")
    click.echo(text, nl=not text.endswith("\n"))


@main.command("compile")
@click.argument("pipelines", metavar="PIPELINE...", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
              help="Directory for NAME.h, NAME.c, libNAME.a, libNAME.so, NAME.pc and "
                   "NAMEConfig.cmake.")
@click.option("--target", default="host", show_default=True, metavar="T",
              help="host, c, x86-64-linux-avx2, x86-64-linux-avx512; host-opencl or "
                   "host-cuda for pipelines scheduled on the GPU (device buffers).")
@click.option("--schedule", "schedule_file", default=None, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="Apply this schedule file first (one PIPELINE only).")
@click.option("--name", default=None,
              help="Library name (default: the first pipeline's name); with one PIPELINE "
                   "also the C function's name.")
def compile_cmd(pipelines, outdir, target, schedule_file, name):
    """Export PIPELINE(s) as self-contained C for embedding (one library).

    The C entry point is `int NAME(DLTensor *in..., scalars..., DLTensor *out...)`;
    see NAME.h for the arguments and halo/aot.py for the ABI.
    """
    import halo
    from halo import aot
    t = _target(target)
    if schedule_file is not None and len(pipelines) != 1:
        raise click.UsageError("--schedule applies to exactly one PIPELINE")
    ps = [load_pipeline(p) for p in pipelines]
    try:
        if schedule_file is not None:
            ps[0].apply_schedule(schedule_file)
        arg = ps[0] if len(ps) == 1 else ps
        written = aot.export(arg, outdir, t, name=name)
    except halo.HaloError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}")
    for kind in ("h", "c", "a", "so", "pc", "cmake"):
        v = written.get(kind)
        for path in (v if isinstance(v, list) else [v] if v else []):
            click.echo(str(path))


# -- demo ----------------------------------------------------------------------------------

def _parse_size(ctx, param, value):
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 2048x1536")
    if w < 3 or h < 3:
        raise click.BadParameter(f"{value!r}: the blur needs at least 3x3 pixels")
    return w, h


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _import_halide():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import halide
        return halide
    except Exception:
        return None


def machine_summary() -> str:
    import platform
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    return (f"{model}, {usable} usable core(s) of {cores}, {platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}")


@main.command()
@click.option("--size", default="2048x1536", show_default=True, callback=_parse_size,
              metavar="WxH", help="Input image size.")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1, 10000),
              help="Timed runs per implementation (median reported).")
@click.option("--target", default=None, metavar="T", help="halo target (default: host).")
@click.option("--halide/--no-halide", "use_halide", default=True, show_default=True,
              help="Also time Halide when `import halide` works.")
def demo(size, repeats, target, use_halide):
    """Compile a 3x3 box blur, check it against numpy, time it."""
    import numpy as np
    import halo as hl
    from halo.apps.blur import blur, blur_numpy, build, make_input, schedule
    from halo.runtime.compiler import cache_dir

    t = _target(target)
    w, h = size
    ow, oh = w - 2, h - 2
    click.echo(f"halo {hl.__version__} demo: 3x3 box blur (halo/apps/blur.py), uint16, "
               f"input {w}x{h} -> output {ow}x{oh}")
    click.echo(f"machine: {machine_summary()}")
    img = make_input(w, h)
    out = np.zeros((oh, ow), dtype=np.uint16)
    nbytes = img.nbytes + out.nbytes

    try:
        inp = hl.ImageParam(hl.UInt(16), 2, "input")
        f, bx = build(hl, inp)
        schedule(hl, f, bx, ow, oh)
        p = hl.Pipeline(f)
        cache = cache_dir()
        before = set(os.listdir(cache))
        t0 = time.perf_counter()
        p.compile_jit(t)
        compile_s = time.perf_counter() - t0
        new = {n for n in set(os.listdir(cache)) - before if n.endswith(".so")}
        how = "lower + generate C + cc" if new else "lower + generate C; cache hit"
        click.echo(f"compile: {compile_s * 1e3:.0f} ms ({how}; target "
                   f"{t or hl.get_jit_target_from_environment()}; cache {cache})")
        run = p.compile_to_callable([inp], t)
        run(img, out)
        plain = blur(w, h)
        run_default = hl.Pipeline(plain).compile_to_callable([plain.input], t)
    except hl.HaloError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}")

    ref = blur_numpy(img)
    for label, fn in (("scheduled", run), ("default schedule", run_default)):
        out[:] = 0
        fn(img, out)
        bad = int(np.count_nonzero(out != ref))
        if bad:
            raise click.ClickException(f"check FAILED ({label}): {bad} of {out.size} pixels "
                                       f"differ from numpy")
    click.echo(f"check: halo == numpy exactly on all {out.size:,} output pixels "
               f"(scheduled and default)")

    rows = [("halo (expert schedule)", _median_time(lambda: run(img, out), repeats)),
            ("halo (default schedule)", _median_time(lambda: run_default(img, out), repeats))]

    halide = _import_halide() if use_halide else None
    notes = []
    if halide is not None:
        for label, scheduled in (("Halide (same expert schedule)", True),
                                 ("Halide (default schedule)", False)):
            inp = halide.ImageParam(halide.UInt(16), 2, "input")
            hout, hbx = build(halide, inp)
            if scheduled:
                schedule(halide, hout, hbx, ow, oh)
            hp = halide.Pipeline(hout)
            t0 = time.perf_counter()
            hc = hp.compile_to_callable([inp], halide.get_jit_target_from_environment())
            hcomp = time.perf_counter() - t0
            hres = np.zeros_like(out)
            hc(img, hres)
            if not np.array_equal(hres, ref):
                notes.append(f"WARNING: {label} differs from numpy")
            notes.append(f"{label}: compile {hcomp * 1e3:.0f} ms (LLVM JIT)")
            rows.append((label, _median_time(lambda: hc(img, hres), repeats)))
    elif use_halide:
        notes.append("Halide: not installed (pip install halide) - skipped")
    rows.append(("numpy", _median_time(lambda: blur_numpy(img), repeats)))

    base = rows[0][1]
    # (the STREAM triad bounds streaming from DRAM; input and output that
    # fit the last-level cache, as here on a 32 MB L3, can go faster)
    click.echo(f"time: median of {repeats} runs after 2 warm-up runs; GB/s = (input + output "
               f"bytes) / time ({nbytes / 1e6:.1f} MB: above the STREAM triad only where it "
               f"stays in cache); 'x halo' = time / halo's scheduled time")
    click.echo(f"  {'implementation':<32} {'median ms':>10} {'x halo':>8} {'GB/s':>7}")
    for label, s in rows:
        click.echo(f"  {label:<32} {s * 1e3:>10.2f} {s / base:>7.2f}x {nbytes / s / 1e9:>7.2f}")
    for n in notes:
        click.echo(n)
    click.echo("expert schedule (halo/apps/blur.py): blur_y.tile(x, y, xi, yi, 256, 32)"
               ".vectorize(xi, 16).parallel(y); blur_x.compute_at(blur_y, x).vectorize(x, 16)")


# -- bench ---------------------------------------------------------------------------------

def _bench_rows(pipeline, sizes, repeats, use_halide, use_numpy):
    """[(label, seconds or None, note)] and the halo output, for `halo bench`."""
    import numpy as np
    import halo as hl
    p = load_pipeline(pipeline)
    out0 = p.outputs()[0]
    extra = {k: getattr(out0, k) for k in ("sizes", "halide", "numpy") if hasattr(out0, k)}
    if sizes is None:
        sizes = extra.get("sizes")
    if sizes is None:
        raise click.UsageError("the pipeline does not say its output size (a `sizes` "
                               "attribute on the Func): pass --sizes W,H[,C]")
    rows, notes = [], []
    t0 = time.perf_counter()
    p.compile_jit()
    notes.append(f"halo compile: {time.perf_counter() - t0:.2f} s (C compiler; cached across runs)")
    first = p.realize(list(sizes))
    outs = [np.array(b) for b in (first if isinstance(first, tuple) else (first,))]
    dst = [hl.Buffer(np.empty_like(o)) for o in outs]
    arg = dst[0] if len(dst) == 1 else dst
    rows.append(("halo", _median_time(lambda: p.realize(arg), repeats), ""))

    make_halide = extra.get("halide")
    halide = _import_halide() if use_halide else None
    if make_halide is not None and halide is not None:
        hf = make_halide()
        hp = hf if isinstance(hf, halide.Pipeline) else halide.Pipeline(hf)
        t0 = time.perf_counter()
        hp.compile_jit(halide.get_jit_target_from_environment())
        notes.append(f"Halide compile: {time.perf_counter() - t0:.2f} s (LLVM JIT)")
        hfirst = hp.realize(list(sizes))
        houts = [np.array(b) for b in (hfirst if isinstance(hfirst, list) else [hfirst])]
        same = all(a.shape == b.shape and (np.array_equal(a, b) if a.dtype.kind != "f"
                   else np.allclose(a, b, rtol=1e-4, atol=1e-5)) for a, b in zip(outs, houts))
        hdst = [halide.Buffer(np.empty_like(o)) for o in houts]
        harg = hdst[0] if len(hdst) == 1 else hdst
        rows.append(("Halide", _median_time(lambda: hp.realize(harg), repeats),
                     "same output" if same else "OUTPUT DIFFERS"))
    elif use_halide:
        rows.append(("Halide", None, "not installed" if halide is None else
                     "the pipeline gives no Halide version (a `halide` attribute)"))

    ref = extra.get("numpy")
    if use_numpy and ref is not None:
        r = np.asarray(ref())
        same = r.shape == outs[0].shape and (np.array_equal(r, outs[0]) if r.dtype.kind != "f"
                                            else np.allclose(r, outs[0], rtol=1e-4, atol=1e-5))
        rows.append(("numpy", _median_time(ref, repeats), "same output" if same
                     else "OUTPUT DIFFERS"))
    elif use_numpy:
        rows.append(("numpy", None, "no numpy reference (a `numpy` attribute)"))
    return rows, notes, sizes


@main.command()
@click.argument("pipeline")
@click.option("--sizes", default=None, metavar="W,H[,...]",
              help="Output sizes (default: the Func's `sizes` attribute).")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1, 10000),
              help="Timed runs per implementation (median after 2 warm-up runs).")
@click.option("--halide/--no-halide", "use_halide", default=True, show_default=True)
@click.option("--numpy/--no-numpy", "use_numpy", default=True, show_default=True)
@click.option("--plot", "plot", default=None, metavar="FILE.png",
              type=click.Path(dir_okay=False),
              help="Also write a bar chart (needs matplotlib).")
def bench(pipeline, sizes, repeats, use_halide, use_numpy, plot):
    """Time PIPELINE with halo, Halide and numpy; print a table.

    The Func PIPELINE returns may carry attributes: `sizes` (realize sizes),
    `halide` (a zero-argument callable building the same program with
    Halide) and `numpy` (a zero-argument numpy reference). The gallery apps
    provide them: `halo bench examples/apps/unsharp.py:pipeline`.
    """
    import halo
    if sizes is not None:
        try:
            sizes = [int(v) for v in sizes.replace("x", ",").split(",")]
        except ValueError:
            raise click.BadParameter(f"{sizes!r} is not a list of integers like 1536,1024",
                                     param_hint="'--sizes'")
    try:
        rows, notes, sizes = _bench_rows(pipeline, sizes, repeats, use_halide, use_numpy)
    except halo.HaloError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}")
    click.echo(f"{pipeline}: output {'x'.join(map(str, sizes))}; median of {repeats} runs "
               f"after 2 warm-ups; machine: {machine_summary()}")
    base = rows[0][1]
    click.echo(f"  {'implementation':<12} {'median ms':>10} {'x halo':>8}  note")
    for label, s, note in rows:
        if s is None:
            click.echo(f"  {label:<12} {'-':>10} {'-':>8}  {note}")
        else:
            click.echo(f"  {label:<12} {s * 1e3:>10.3f} {s / base:>7.2f}x  {note}")
    for n in notes:
        click.echo(n)
    if plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            click.echo(f"--plot {plot}: matplotlib is not installed (pip install matplotlib); "
                       f"no chart written")
            return
        done = [(label, s * 1e3) for label, s, _ in rows if s is not None]
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.bar([d[0] for d in done], [d[1] for d in done], color="#4a7ebb")
        ax.set_ylabel("median ms (lower is better)")
        ax.set_title(pipeline.rsplit("/", 1)[-1])
        fig.tight_layout()
        fig.savefig(plot)
        click.echo(f"chart: {plot}")


# -- tune ----------------------------------------------------------------------------------

@main.command()
@click.argument("pipeline")
@click.option("--target", default="host", show_default=True, metavar="T",
              help="host, c, x86-64-linux-avx2, x86-64-linux-avx512.")
@click.option("--budget", required=True, type=click.FloatRange(min=1), metavar="SECONDS",
              help="Search time (the set-up: reference output, default schedule, comes "
                   "on top).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Candidates measured at once by this process (each in its own worker "
                   "process; timings still run one at a time).")
@click.option("--storage", default=None, metavar="URL",
              help="Optuna RDB storage: sqlite:///FILE or postgresql://... to share the "
                   "study between tuners. Default: sqlite in --out.")
@click.option("--resume", is_flag=True,
              help="Continue the study (or join tuners already working on it).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Sampler seed: the same seed gives the same first candidates.")
@click.option("--out", "out_dir", default="schedules", show_default=True,
              type=click.Path(file_okay=False),
              help="Directory for NAME.TARGET.json, the report and the plot.")
@click.option("--baseline", default=None, type=click.Path(dir_okay=False, exists=True),
              metavar="FILE", help="A schedule file to compare the tuned schedule with.")
@click.option("--trial-timeout", default=60.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds one candidate may take (compile, check, timing).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def tune(pipeline, target, budget, workers, storage, resume, seed, out_dir, baseline,
         trial_timeout, progress):
    """Search schedules of PIPELINE; write OUT/NAME.TARGET.json and a report.

    Every candidate runs in an isolated worker process with a time and memory
    limit, is checked against the reference interpreter, then timed; crashes,
    hangs and wrong answers are rejected with their reason (see the report).
    """
    import halo
    from halo.tune import study as tune_study
    _target(target)
    load_pipeline(pipeline)             # a bad PIPELINE is a usage error, before anything
    try:
        t = tune_study.Tuner(pipeline, target=target, storage=storage, out_dir=out_dir,
                             seed=seed, workers=workers, trial_timeout=trial_timeout)
        try:
            s = t.run(budget, resume=resume, progress=progress, baseline=baseline)
        finally:
            t.close()
    except halo.HaloError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}")
    d, b = s["default_time"], s["best_time"]
    click.echo(f"study {s['study']}: {s['trials']} trials, {s['measured']} candidates "
               f"measured, {len(s['rejected'])} rejected")
    if b is None:
        raise click.ClickException(f"no candidate ran correctly; see {s['report']}")
    click.echo(f"best {b * 1e3:.3f} ms (trial {s['best_trial']}); default schedule "
               f"{d * 1e3:.3f} ms ({d / b:.2f}x)")
    if s.get("baseline_time"):
        click.echo(f"baseline {baseline}: {s['baseline_time'] * 1e3:.3f} ms "
                   f"({s['baseline_time'] / b:.2f}x the tuned time)")
    click.echo(f"schedule: {s['schedule_file']}")
    click.echo(f"report:   {s['report']}")
    click.echo(f"plot:     {s['plot']}")


if __name__ == "__main__":  # pragma: no cover
    main()
