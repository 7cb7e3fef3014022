"""The measuring process: `python -m halo.tune.worker` (started by measure.py).

It reads one JSON job per line on stdin and answers one JSON line on the
protocol descriptor (the original stdout; the C code and Python prints go to
stderr instead, so they cannot corrupt the answers). A job computes the
reference output (`"kind": "reference"`), or measures one candidate:
rebuild the pipeline, apply the schedule (halo's own validation runs here),
compile, run once and compare with the reference, then time it (a candidate
far slower than the best so far is timed by that one run); or it times a
few measured candidates again, interleaved (`"kind": "runoff"`). Anything
that goes wrong in Python is answered as a rejection with its reason; a
crash, a hang or an exhausted memory limit ends the process, which the
parent notices and reports.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
import traceback


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:500]


def _realize(pipeline, sizes, target):
    from . import workload
    bufs = workload.output_buffers(pipeline, sizes)
    arg = bufs[0] if len(bufs) == 1 else bufs
    run = lambda: pipeline.realize(arg, target=target)   # noqa: E731
    return run, bufs


def _reference(job):
    import numpy as np
    from . import workload
    p = workload.load(job["spec"])
    workload.bind_inputs(p, job.get("seed", 0))
    sizes = workload.output_sizes(p)
    t0 = time.perf_counter()
    if job.get("via") == "default":
        run, bufs = _realize(p, sizes, job["target"])
        run()
        outs = [np.array(b) for b in bufs]
    else:
        from ..interp import realize
        outs = realize(p.outputs(), sizes)
    np.savez(job["out"], *outs)
    return {"ok": True, "seconds": time.perf_counter() - t0, "sizes": sizes}


_ref_cache = {}


def _load_ref(path):
    import numpy as np
    if path not in _ref_cache:
        with np.load(path) as z:
            _ref_cache[path] = [z[f"arr_{i}"] for i in range(len(z.files))]
    return _ref_cache[path]


def _fault(kind):
    """Planted failures, for testing the tuner's isolation (never set by the CLI)."""
    if kind == "crash":
        import signal
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "hang":
        while True:
            time.sleep(0.1)
    if kind == "oom":
        hog = []
        while True:
            hog.append(bytearray(1 << 26))


def _measure(job):
    import numpy as np
    from . import workload
    stage = "load"
    try:
        p = workload.load(job["spec"])
        workload.bind_inputs(p, job.get("seed", 0))
        sizes = workload.output_sizes(p)
        stage = "schedule"
        if job.get("schedule") is not None:
            p.apply_schedule(job["schedule"])
        stage = "compile"
        t0 = time.perf_counter()
        p.compile_jit(job["target"])
        compile_s = time.perf_counter() - t0
        _fault(job.get("fault"))
        stage = "run"
        run, bufs = _realize(p, sizes, job["target"])
        t0 = time.perf_counter()
        run()
        first = time.perf_counter() - t0
        if job.get("ref"):
            got = [np.array(b) for b in bufs]
            if job.get("fault") == "wrong":
                got[0].flat[0] += 1
            why = workload.compare(got, _load_ref(job["ref"]))
            if why is not None:
                return {"ok": False, "kind": "wrong", "reason": f"wrong answer: {why}"}
        cutoff = job.get("cutoff")
        if cutoff is not None and first > cutoff:
            # far slower than the best so far: one run says enough, and timing it
            # properly would spend the budget on a loser
            return {"ok": True, "time": first, "best": first, "runs": 1,
                    "compile_s": compile_s, "cut": True}
        stage = "time"
        times = _time(run, job.get("timing", {}), job.get("lock"))
    except MemoryError:
        return {"ok": False, "kind": "memory",
                "reason": f"out of memory (the {job.get('mem_limit_mb')} MiB limit) at {stage}"}
    except Exception as e:
        kind = {"schedule": "invalid", "compile": "compile"}.get(stage, "error")
        return {"ok": False, "kind": kind, "reason": f"{stage}: {_reason(e)}",
                "trace": traceback.format_exc()[-2000:]}
    return {"ok": True, "time": statistics.median(times), "best": min(times),
            "runs": len(times), "compile_s": compile_s}


def _runoff(job):
    """Median seconds of each schedule in `job["schedules"]`, timed interleaved (one
    run of each per round, for about `budget_s`), so that a change of load on the
    machine during the search cannot pick the winner."""
    from . import workload
    runs = []
    for schedule in job["schedules"]:
        p = workload.load(job["spec"])
        workload.bind_inputs(p, job.get("seed", 0))
        p.apply_schedule(schedule)
        p.compile_jit(job["target"])
        run, _ = _realize(p, workload.output_sizes(p), job["target"])
        run()
        runs.append(run)
    lock = _acquire(job.get("lock"))
    try:
        t0 = time.perf_counter()
        for run in runs:                        # warm-up round
            run()
        first = time.perf_counter() - t0
        rounds = max(3, min(50, int(float(job.get("budget_s", 5.0)) / max(first, 1e-6))))
        times = [[] for _ in runs]
        for r in range(rounds):
            for j in range(len(runs)):          # rotating: none always follows another
                i = (r + j) % len(runs)
                t0 = time.perf_counter()
                runs[i]()
                times[i].append(time.perf_counter() - t0)
    finally:
        if lock is not None:
            lock.release()
    return {"ok": True, "times": [statistics.median(t) for t in times], "rounds": rounds}


def _acquire(lock_path):
    if not lock_path:
        return None
    from filelock import FileLock
    lock = FileLock(lock_path)
    lock.acquire()
    return lock


def _time(run, opts, lock_path):
    """Warm-up, then the median of several runs, holding the measuring lock (one
    process times at a time, so concurrent compiles do not disturb a timing)."""
    budget = float(opts.get("budget_s", 1.0))
    min_runs, max_runs = int(opts.get("min_runs", 3)), int(opts.get("max_runs", 30))
    lock = _acquire(lock_path)
    try:
        t0 = time.perf_counter()
        run()                                   # warm-up (caches, page faults)
        first = time.perf_counter() - t0
        if first < budget / 20:
            run()
        n = max(min_runs, min(max_runs, int(budget / max(first, 1e-6))))
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return times
    finally:
        if lock is not None:
            lock.release()


def main():
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                       # stray prints (and C printf) go to stderr
    sys.stdout = sys.stderr
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    for line in sys.stdin:
        job = json.loads(line)
        try:
            if job.get("kind") == "reference":
                answer = _reference(job)
            elif job.get("kind") == "runoff":
                answer = _runoff(job)
            else:
                answer = _measure(job)
        except MemoryError:
            answer = {"ok": False, "kind": "memory", "reason": "out of memory"}
        except Exception as e:
            answer = {"ok": False, "kind": "error", "reason": _reason(e),
                      "trace": traceback.format_exc()[-2000:]}
        proto.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
