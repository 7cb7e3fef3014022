"""Measuring candidates in isolated worker processes.

A `Measurer` owns one worker process (`python -m halo.tune.worker`) and
sends it one job at a time with a wall-clock limit. The worker runs with an
address-space limit (RLIMIT_AS), so a candidate that allocates without bound
fails there instead of taking the machine down. A candidate that crashes the
worker, hangs past its limit or exhausts memory becomes a `Result` with
`ok=False` and the reason; the worker is then replaced, and the tuner goes on.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    ok: bool
    time: float | None = None          # median seconds per run
    kind: str = ""                     # why rejected: invalid|compile|wrong|crash|timeout|memory|error
    reason: str = ""
    info: dict = field(default_factory=dict)


def default_memory_limit_mb() -> int:
    """Half the machine's memory (at most 16 GiB): a runaway candidate hits it first."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(min(pages // 2, 16 << 30) >> 20)
    except (ValueError, OSError):
        return 8192


def _limit_memory(mb):
    def apply():
        import resource
        os.setsid()                     # its own group: a kill reaches gcc and threads too
        if mb:
            lim = mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    return apply


class Measurer:
    """One isolated worker process; `run(job, timeout)` -> `Result`."""

    def __init__(self, memory_limit_mb: int | None = None):
        self.memory_limit_mb = default_memory_limit_mb() if memory_limit_mb is None \
            else memory_limit_mb
        self.proc = None
        self._buf = b""
        self._log = None

    def _start(self):
        self._log = tempfile.TemporaryFile()
        env = dict(os.environ)
        env.setdefault("OMP_WAIT_POLICY", "passive")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "halo.tune.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=env, cwd=os.getcwd(),
            preexec_fn=_limit_memory(self.memory_limit_mb))
        self._buf = b""

    def close(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            for s in (self.proc.stdin, self.proc.stdout):
                try:
                    s.close()
                except OSError:
                    pass
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _stderr_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        lines = [ln for ln in self._log.read().decode(errors="replace").splitlines()
                 if ln.strip()]
        return lines[-1][:300] if lines else ""

    def run(self, job: dict, timeout: float) -> Result:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        job = dict(job, mem_limit_mb=self.memory_limit_mb)
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died(time.monotonic())
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                return Result(False, kind="timeout",
                              reason=f"timed out: no answer within {timeout:.0f} s "
                                     f"(the worker was killed)")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return self._died(deadline)
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        ans = json.loads(line)
        if ans.get("ok"):
            return Result(True, time=ans.get("time"), info=ans)
        return Result(False, kind=ans.get("kind", "error"), reason=ans.get("reason", ""),
                      info=ans)

    def _died(self, deadline) -> Result:
        rc = self.proc.wait()
        tail = self._stderr_tail()
        self.close()
        if rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = f"signal {-rc}"
            what = f"crashed: the worker died of {sig}"
        else:
            what = f"crashed: the worker exited with status {rc}"
        if tail and ("MemoryError" in tail or "Cannot allocate" in tail or "bad_alloc" in tail):
            return Result(False, kind="memory", reason=f"out of memory: {tail}")
        return Result(False, kind="crash", reason=what + (f" ({tail})" if tail else ""))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
