"""The search: Optuna ask/tell over the schedule space, persisted in an RDB.

One `Tuner` is one tuner process. Its study lives in Optuna RDB storage
(SQLite by default, a PostgreSQL URL to share it between machines), named
after the pipeline, the target and the algorithm hash, so every process that
tunes the same algorithm for the same target on the same storage works on
the same study:

* each finished candidate is committed (`tell`) as soon as it is measured,
  so a tuner killed with SIGKILL loses only the trials in flight; those
  stop sending heartbeats and are marked FAIL by the next tuner that starts
  (`fail_stale_trials`), never counted as results;
* `resume=True` joins the study (creating it if absent) and continues it:
  all earlier trials stay, and the sampler is seeded with `seed` plus the
  number of trials already there, so it does not replay earlier proposals;
* the same `seed` on one worker gives the same sequence of candidates for
  the heuristic seeds and the random start-up phase; later TPE proposals
  depend on the measured times, which differ from run to run.

Rejected candidates (invalid, crashing, hanging, out of memory, wrong
answers) are FAIL trials with the reason in their user attributes.

On a shared machine a candidate timed while the others' load was low can
look faster than it is, so a long enough search ends with a run-off: the
best few candidates are timed again in one process, interleaved, and the
report picks the winner from that (`Tuner.runoff`).
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass

from .. import errors
from . import heuristics, workload
from .measure import Measurer
from .space import FixedChooser, Space, candidate_hash

N_STARTUP = 16           # random trials (after the heuristic seeds) before TPE models
CUTOFF_FACTOR = 8        # a candidate this much slower than the best is timed once
CUTOFF_MIN_S = 0.05
RUNOFF_TOP = 4           # the best candidates are timed again, interleaved, at the end,
RUNOFF_SHARE = 0.1       # in this share of a budget of at least RUNOFF_MIN_BUDGET_S
RUNOFF_MIN_BUDGET_S = 30
RUNOFF_MAX_S = 30


@dataclass
class TimingOptions:
    budget_s: float = 1.0        # seconds of runs per timing (after warm-up)
    min_runs: int = 3
    max_runs: int = 30


def default_storage(out_dir, name, target) -> str:
    path = os.path.abspath(os.path.join(out_dir, f"{name}.{_safe(target)}.db"))
    return f"sqlite:///{path}"


def _safe(s):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in str(s))


class TuneError(errors.HaloError):
    """A tuning run that cannot start or cannot finish (names the study or file)."""


def _optuna():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # halo beats the heartbeat itself around each measurement (ask/tell, not optimize)
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    return optuna


class Tuner:
    """Tune PIPELINE (a spec string, see halo.cli) for `target`."""

    def __init__(self, spec: str, target: str = "host", storage: str | None = None,
                 out_dir: str = "schedules", seed: int = 0, workers: int = 1,
                 trial_timeout: float = 60.0, memory_limit_mb: int | None = None,
                 exclusive_timing: bool = True, timing: TimingOptions | None = None,
                 reference_timeout: float = 120.0, faults: dict | None = None,
                 heartbeat_s: float = 2.0, grace_s: float = 10.0,
                 heuristic_seeds: bool = True, runoff_s: float | None = None):
        self.spec, self.target, self.seed = spec, str(target), int(seed)
        self.runoff_s = runoff_s          # None: RUNOFF_SHARE of a long enough budget
        self.heuristic_seeds = heuristic_seeds      # False: the sampler from the start
        self.workers = max(1, int(workers))
        self.trial_timeout, self.memory_limit_mb = trial_timeout, memory_limit_mb
        self.timing = timing or TimingOptions()
        self.reference_timeout = reference_timeout
        self.faults = dict(faults or {})          # trial number -> planted failure (tests)
        self.out_dir = out_dir
        self.heartbeat_s, self.grace_s = heartbeat_s, grace_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.pipeline = workload.load(spec)
        self.name = self.pipeline.name()
        self.space = Space(self.pipeline, self.target)
        self.storage_url = storage or default_storage(out_dir, self.name, self.target)
        self.study_name = f"{self.name}.{self.target}.{self.space.algorithm_hash[7:19]}"
        from ..runtime.compiler import cache_dir
        self.lock = os.path.join(cache_dir(), "tune-measure.lock") if exclusive_timing else None
        self._tmp = tempfile.TemporaryDirectory(prefix="halo-tune-")
        self.ref_path = os.path.join(self._tmp.name, "reference.npz")
        self.reference_note = ""
        self._stop = threading.Event()
        self._seen = {}                 # candidate hash -> measured time (this process)
        self._lock = threading.Lock()
        self.counts = {"trials": 0, "rejected": 0, "duplicates": 0}
        self.study = None

    # -- storage ---------------------------------------------------------------------------
    def open_study(self, resume: bool):
        for attempt in range(10):
            try:
                return self._open_study(resume)
            except TuneError:
                raise
            except Exception:
                # Tuners starting together race to create the schema and the study:
                # the loser finds them made on its next attempt.
                if attempt == 9:
                    raise
                time.sleep(0.2 + 0.3 * attempt)

    def _open_study(self, resume: bool):
        optuna = _optuna()
        if self.storage_url.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(self.storage_url[len("sqlite:///"):]) or ".",
                        exist_ok=True)
        storage = optuna.storages.RDBStorage(
            self.storage_url, heartbeat_interval=max(1, int(self.heartbeat_s)),
            grace_period=max(1, int(self.grace_s)),
            engine_kwargs={"pool_pre_ping": True}
            if not self.storage_url.startswith("sqlite") else {"connect_args": {"timeout": 60}})
        names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
        if self.study_name in names and not resume:
            raise TuneError(
                f"study {self.study_name!r} already exists in {self.storage_url}: pass "
                f"--resume to continue it (or to join other tuners working on it), or "
                f"choose another --storage / --out")
        existing = 0
        if self.study_name in names:
            existing = len(optuna.load_study(study_name=self.study_name,
                                             storage=storage).trials)
        sampler = optuna.samplers.TPESampler(
            seed=self.seed + existing, n_startup_trials=N_STARTUP, multivariate=True,
            group=True, constant_liar=True)
        self.study = optuna.create_study(study_name=self.study_name, storage=storage,
                                         sampler=sampler, direction="minimize",
                                         load_if_exists=True)
        optuna.storages.fail_stale_trials(self.study)
        if not self.study.trials:
            self.study.set_user_attr("pipeline", self.spec)
            self.study.set_user_attr("target", self.target)
            seeds = heuristics.seed_candidates(self.space) if self.heuristic_seeds else []
            for variant, params in seeds:
                self.study.enqueue_trial(params, user_attrs={"origin": f"heuristic:{variant}"},
                                         skip_if_exists=True)
        for t in self.study.trials:
            if t.state.name == "COMPLETE" and t.user_attrs.get("hash"):
                self._seen.setdefault(t.user_attrs["hash"], t.value)
        return self.study

    # -- set-up: reference output and the default schedule --------------------------------
    def _job(self, schedule, fault=None, cutoff=None):
        return {"spec": self.spec, "target": self.target, "schedule": schedule,
                "ref": self.ref_path, "fault": fault, "lock": self.lock,
                "timing": vars(self.timing), "cutoff": cutoff}

    def prepare(self, measurer: Measurer):
        """Compute the reference output (the interpreter, or the default schedule when
        the interpreter is too slow) and time the default schedule once per study."""
        r = measurer.run({"kind": "reference", "spec": self.spec, "target": self.target,
                          "out": self.ref_path}, self.reference_timeout)
        if r.ok:
            self.reference_note = (f"the reference interpreter (halo.interp; it took "
                                   f"{r.info.get('seconds', 0):.1f} s)")
        else:
            r = measurer.run({"kind": "reference", "via": "default", "spec": self.spec,
                              "target": self.target, "out": self.ref_path},
                             self.trial_timeout)
            if not r.ok:
                raise TuneError(f"{self.spec}: the default schedule cannot run: {r.reason}")
            self.reference_note = ("the default schedule (the interpreter did not finish "
                                   f"within {self.reference_timeout:.0f} s)")
        if "default_time" not in self.study.user_attrs:
            d = measurer.run(self._job(None), self.trial_timeout)
            if not d.ok:
                raise TuneError(f"{self.spec}: the default schedule fails: {d.reason}")
            self.study.set_user_attr("default_time", d.time)

    def measure_file(self, measurer: Measurer, path):
        """Time a schedule file (a baseline) the same way as the candidates."""
        from ..schedule.serialize import load_schedule
        return measurer.run(self._job(load_schedule(path)), self.trial_timeout)

    # -- the search loop ------------------------------------------------------------------
    def _one_trial(self, measurer: Measurer, deadline: float):
        optuna = _optuna()
        trial = self.study.ask()
        beat = _Heartbeat(self.study, trial._trial_id, self.heartbeat_s)
        try:
            self._evaluate(trial, measurer, deadline)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass        # another tuner took the same queued trial (SQLite has no row locks)
        finally:
            beat.stop()

    def _evaluate(self, trial, measurer: Measurer, deadline: float):
        optuna = _optuna()
        schedule = self.space.build(lambda name, choices: trial.suggest_categorical(
            name, list(choices)))
        h = candidate_hash(schedule)
        trial.set_user_attr("hash", h)
        trial.set_user_attr("worker", self.worker_id)
        trial.set_user_attr("schedule", schedule["funcs"])
        with self._lock:
            known = self._seen.get(h)
        if known is None:
            for t in self.study.get_trials(deepcopy=False,
                                           states=(optuna.trial.TrialState.COMPLETE,)):
                if t.user_attrs.get("hash") == h:
                    known = t.value
                    break
        if known is not None:
            trial.set_user_attr("duplicate", True)
            self.study.tell(trial, known)
            with self._lock:
                self.counts["duplicates"] += 1
            return
        left = deadline - time.monotonic()
        limit = max(1.0, min(self.trial_timeout, left + 2.0))
        with self._lock:
            best = min(self._seen.values(), default=None)
        cutoff = None if best is None else max(CUTOFF_FACTOR * best, CUTOFF_MIN_S)
        r = measurer.run(self._job(schedule, self.faults.get(trial.number), cutoff), limit)
        if r.ok:
            for k in ("compile_s", "runs", "best", "cut"):
                if k in r.info:
                    trial.set_user_attr(k, r.info[k])
            self.study.tell(trial, r.time)
            with self._lock:
                self._seen[h] = r.time
                self.counts["trials"] += 1
        else:
            budget_end = r.kind == "timeout" and limit < self.trial_timeout
            trial.set_user_attr("rejected", "budget" if budget_end else r.kind)
            trial.set_user_attr("reason", "stopped at the end of the budget" if budget_end
                                else r.reason)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            with self._lock:
                self.counts["trials"] += 1
                self.counts["rejected"] += not budget_end

    def _worker(self, measurer, deadline, errors_out):
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._one_trial(measurer, deadline)
        except BaseException as e:          # report in the main thread
            errors_out.append(e)
            self._stop.set()

    def run(self, budget_s: float, resume: bool = False, progress: bool = True,
            baseline: str | None = None) -> dict:
        """Search for `budget_s` seconds; returns a summary (see report.summarize)."""
        from . import report
        self.open_study(resume)
        measurers = [Measurer(self.memory_limit_mb) for _ in range(self.workers)]
        try:
            t_setup = time.monotonic()
            self.prepare(measurers[0])
            base = None
            if baseline:
                base = self.measure_file(measurers[0], baseline)
            setup_s = time.monotonic() - t_setup
            start = time.monotonic()
            runoff_s = self.runoff_s
            if runoff_s is None:
                runoff_s = min(RUNOFF_MAX_S, RUNOFF_SHARE * budget_s) \
                    if budget_s >= RUNOFF_MIN_BUDGET_S else 0.0
            deadline = start + budget_s - runoff_s
            errs = []
            threads = [threading.Thread(target=self._worker, args=(m, deadline, errs),
                                        daemon=True) for m in measurers]
            for t in threads:
                t.start()
            bar = _progress(budget_s) if progress else None
            try:
                while any(t.is_alive() for t in threads):
                    for t in threads:
                        t.join(0.25)
                    if bar is not None:
                        _update(bar, self, start, budget_s)
            except KeyboardInterrupt:
                self._stop.set()
                for t in threads:
                    t.join()
            finally:
                if bar is not None:
                    _update(bar, self, start, budget_s)
                    bar.close()
            if errs:
                raise errs[0]
            if runoff_s > 0 and not self._stop.is_set():
                self.runoff(measurers[0], runoff_s)
        finally:
            for m in measurers:
                m.close()
        return report.write(self, baseline=baseline, baseline_result=base,
                            setup_s=setup_s, search_s=time.monotonic() - start)

    def runoff(self, measurer: Measurer, seconds: float):
        """Time the RUNOFF_TOP best distinct candidates again, interleaved in one
        process, and record their medians as the study's `runoff` attribute: each
        was timed alone during the search, under whatever load the machine had
        then; the report picks the winner of this run-off."""
        optuna = _optuna()
        done = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        top, seen = [], set()
        for t in sorted(done, key=lambda t: t.value):
            h = t.user_attrs.get("hash")
            if h in seen or t.user_attrs.get("duplicate") or "schedule" not in t.user_attrs:
                continue
            seen.add(h)
            top.append(t)
            if len(top) == RUNOFF_TOP:
                break
        if len(top) < 2:
            return
        from .report import _header
        job = {"kind": "runoff", "spec": self.spec, "target": self.target,
               "schedules": [{**_header(self), "funcs": t.user_attrs["schedule"]}
                             for t in top],
               "budget_s": seconds / 2, "lock": self.lock}
        # compiles come from the cache; the limit allows for a slow machine
        r = measurer.run(job, max(self.trial_timeout, 4 * seconds))
        if r.ok:
            self.study.set_user_attr("runoff", {str(t.number): v
                                                for t, v in zip(top, r.info["times"])})

    def close(self):
        self._tmp.cleanup()


class _Heartbeat:
    """Marks a trial alive while it is measured; a killed tuner stops beating."""

    def __init__(self, study, trial_id, every=2.0):
        self.storage, self.trial_id = study._storage, trial_id
        self._stop = threading.Event()
        try:                            # at once: a trial killed before its first
            self.storage.record_heartbeat(trial_id)   # beat must still go stale
        except Exception:
            pass
        self._t = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._t.start()

    def _run(self, every):
        while not self._stop.wait(every):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:
                pass

    def stop(self):
        self._stop.set()
        self._t.join()


def _progress(total):
    from tqdm import tqdm
    return tqdm(total=int(total), unit="s", desc="tuning", dynamic_ncols=True, mininterval=1,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} s "
                           "[{remaining} left] {postfix}")


def _update(bar, tuner, start, total):
    n = min(int(total), int(time.monotonic() - start))
    bar.n = n
    try:
        best = tuner.study.best_value * 1e3
        best_s = f"{best:.3f} ms"
    except ValueError:
        best_s = "-"
    c = tuner.counts
    bar.set_postfix_str(f"trials {c['trials'] + c['duplicates']}, best {best_s}, "
                        f"rejected {c['rejected']}", refresh=False)
    bar.refresh()
