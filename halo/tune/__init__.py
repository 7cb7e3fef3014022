"""Autotuning: search a pipeline's schedules, keep the fastest (`halo tune`).

    space.py       the search space: choices per Func and stage -> a schedule file dict
    heuristics.py  greedy seed schedules (the first trials)
    study.py       Optuna ask/tell over RDB storage (SQLite, PostgreSQL): resume, share
    measure.py     isolated worker processes with time and memory limits
    worker.py      the worker: apply, compile, check against the interpreter, time
    workload.py    the pipeline's inputs and output sizes, from its estimates
    report.py      the schedule file, the report and the convergence plot

Python use mirrors the command::

    from halo.tune import tune
    summary = tune("halo.apps.blur:blur", target="host", budget=60)
    summary["schedule_file"]          # schedules/blur_y.host.json
"""
from __future__ import annotations


def tune(pipeline: str, target: str = "host", budget: float = 60.0, *, workers: int = 1,
         storage: str | None = None, resume: bool = False, seed: int = 0,
         out_dir: str = "schedules", baseline: str | None = None, progress: bool = False,
         **options) -> dict:
    """Tune PIPELINE (`path/file.py:function` or `package.module:function`) for
    `budget` seconds; returns a summary dict (best/default times, file paths).
    `options` go to `halo.tune.study.Tuner` (trial_timeout, memory_limit_mb, ...)."""
    from .study import Tuner
    t = Tuner(pipeline, target=target, storage=storage, out_dir=out_dir, seed=seed,
              workers=workers, **options)
    try:
        return t.run(budget, resume=resume, progress=progress, baseline=baseline)
    finally:
        t.close()
