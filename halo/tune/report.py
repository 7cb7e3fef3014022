"""What a tuning run leaves behind, beside each other in the output directory:

* `NAME.TARGET.json`: the best schedule, a schedule file (DESIGN.md format;
  `Pipeline.apply_schedule` loads it), written by halo's own serializer
  after replaying the schedule on a fresh pipeline (so it is validated);
* `NAME.TARGET.report.md`: the best schedule as Python, its time against
  the default schedule and a `--baseline` file, the top candidates, every
  rejected candidate with its reason;
* `NAME.TARGET.convergence.png`: each measured time and the best so far.

Everything comes from the study's trials, so the report of a study shared by
several tuner processes covers all of them.
"""
from __future__ import annotations

import os

TOP = 10


def _ms(t):
    return "-" if t is None else f"{t * 1e3:.3f} ms"


def _trials(study):
    import optuna
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE]
    failed = [t for t in study.get_trials(deepcopy=False)
              if t.state == optuna.trial.TrialState.FAIL]
    return done, failed


def _measured(done):
    """Distinct measured candidates (duplicates reuse an earlier time)."""
    return [t for t in done if not t.user_attrs.get("duplicate")]


def write(tuner, baseline=None, baseline_result=None, setup_s=0.0, search_s=0.0) -> dict:
    from ..schedule.serialize import save_schedule
    from . import workload
    study = tuner.study
    os.makedirs(tuner.out_dir, exist_ok=True)
    stem = os.path.join(tuner.out_dir, f"{tuner.name}.{tuner.target}")
    done, failed = _trials(study)
    measured = sorted(_measured(done), key=lambda t: t.value)
    default_t = study.user_attrs.get("default_time")
    summary = {"study": tuner.study_name, "storage": tuner.storage_url,
               "trials": len(study.trials), "measured": len(measured),
               "rejected": [{"trial": t.number, "kind": t.user_attrs["rejected"],
                             "reason": t.user_attrs.get("reason", "")} for t in failed
                            if t.user_attrs.get("rejected") not in (None, "budget")],
               "default_time": default_t, "best_time": None, "schedule_file": None,
               "report": stem + ".report.md", "plot": stem + ".convergence.png",
               "baseline_time": baseline_result.time if baseline_result and
               baseline_result.ok else None}
    best, runoff = _winner(study, measured)
    python = ""
    if best is not None:
        p = workload.load(tuner.spec)
        p.apply_schedule({**_header(tuner), "funcs": best.user_attrs["schedule"]})
        path = save_schedule(p, stem + ".json", tuner.target)
        python = p.schedule_source() or "# the default schedule\n"
        summary.update(best_time=best.value, schedule_file=path, best_trial=best.number,
                       python=python, runoff=runoff)
    _plot(done, default_t, summary["plot"], tuner.name)
    with open(summary["report"], "w") as f:
        f.write(_markdown(tuner, summary, measured, failed, best, python, baseline,
                          baseline_result, setup_s, search_s))
    return summary


def _winner(study, measured):
    """(the best trial, {trial number: run-off median} or None): the fastest in the
    final interleaved run-off of the top candidates where there was one (see
    Tuner.runoff), else the fastest measured."""
    if not measured:
        return None, None
    runoff = {int(k): v for k, v in (study.user_attrs.get("runoff") or {}).items()}
    by_number = {t.number: t for t in measured}
    # a run-off without the fastest of the search is stale (a resumed study)
    if len(runoff) >= 2 and measured[0].number in runoff and \
            all(n in by_number for n in runoff):
        return by_number[min(runoff, key=runoff.get)], runoff
    return measured[0], None


def _header(tuner):
    return {"format": 1, "halo_version": _version(), "target": tuner.target,
            "algorithm_hash": tuner.space.algorithm_hash}


def _version():
    import halo
    return halo.__version__


def _markdown(tuner, s, measured, failed, best, python, baseline, base_r, setup_s,
              search_s) -> str:
    lines = [f"# Tuning report: {tuner.name} for target {tuner.target}", "",
             f"- pipeline: `{tuner.spec}`",
             f"- study: `{s['study']}` in `{_redact(s['storage'])}`",
             f"- trials: {s['trials']} in the study ({len(measured)} distinct candidates "
             f"measured, {len(s['rejected'])} rejected); this run: setup {setup_s:.1f} s, "
             f"search {search_s:.1f} s",
             f"- correctness: every candidate's output is compared with "
             f"{tuner.reference_note or 'the reference'} before it is timed",
             "- timing: one warm-up run, then the median of several runs "
             "(one process times at a time)", ""]
    d = s["default_time"]
    lines += ["| schedule | median time | speed-up vs default |", "| --- | ---: | ---: |"]
    if d is not None:
        lines.append(f"| default (outputs and reductions at root, the rest inlined) "
                     f"| {_ms(d)} | 1.00x |")
    if best is not None:
        sp = f"{d / best.value:.2f}x" if d else "-"
        lines.append(f"| **tuned** (trial {best.number}) | **{_ms(best.value)}** | **{sp}** |")
    if baseline:
        if base_r is not None and base_r.ok:
            sp = f"{d / base_r.time:.2f}x" if d else "-"
            rel = f"; tuned is {base_r.time / best.value:.2f}x faster" if best else ""
            lines.append(f"| baseline `{baseline}`{rel} | {_ms(base_r.time)} | {sp} |")
        else:
            why = base_r.reason if base_r is not None else "not measured"
            lines.append(f"| baseline `{baseline}`: rejected ({why}) | - | - |")
    lines.append("")
    if s.get("runoff"):
        ro = s["runoff"]
        lines += [f"The winner is the fastest of a final run-off: the {len(ro)} best "
                  f"candidates timed again in one process, interleaved (medians: " +
                  ", ".join(f"trial {n} {_ms(v)}" for n, v in sorted(ro.items(),
                                                                   key=lambda kv: kv[1])) +
                  "), so that a change of load during the search cannot pick it.", ""]
    if best is not None:
        lines += [f"Schedule file: `{s['schedule_file']}`", "",
                  "## Best schedule as Python", "", "```python", python.rstrip(), "```", ""]
    else:
        lines += ["No candidate was measured successfully: no schedule file written.", ""]
    lines += [f"![convergence]({os.path.basename(s['plot'])})", "",
              f"## Top {min(TOP, len(measured))} candidates", "",
              "| trial | time | vs default | origin | schedule hash |",
              "| ---: | ---: | ---: | --- | --- |"]
    for t in measured[:TOP]:
        sp = f"{d / t.value:.2f}x" if d else "-"
        lines.append(f"| {t.number} | {_ms(t.value)} | {sp} | "
                     f"{t.user_attrs.get('origin', 'search')} | {t.user_attrs.get('hash', '')} |")
    lines += ["", f"## Rejected candidates ({len(s['rejected'])})", ""]
    if s["rejected"]:
        lines += ["| trial | why | reason |", "| ---: | --- | --- |"]
        for r in s["rejected"]:
            reason = str(r["reason"]).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r['trial']} | {r['kind']} | {reason} |")
    else:
        lines.append("None.")
    stale = [t for t in failed if t.user_attrs.get("rejected") is None]
    if stale:
        lines += ["", f"{len(stale)} trial(s) were in flight when a tuner stopped "
                      f"(killed or interrupted): marked failed, not results: "
                      f"{', '.join(str(t.number) for t in stale)}."]
    return "\n".join(lines) + "\n"


def _redact(url):
    """A storage URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':')[0]}:***@{host}"
    return url


def _plot(done, default_t, path, name):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pts = sorted((t.number, t.value * 1e3) for t in done)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if pts:
        xs, ys = zip(*pts)
        best, b = [], float("inf")
        for y in ys:
            b = min(b, y)
            best.append(b)
        ax.scatter(xs, ys, s=10, alpha=0.5, label="candidate")
        ax.step(xs, best, where="post", color="C3", label="best so far")
        ax.set_yscale("log")
    if default_t:
        ax.axhline(default_t * 1e3, color="gray", ls="--", label="default schedule")
    ax.set_xlabel("trial")
    ax.set_ylabel("median time (ms, log)")
    ax.set_title(f"halo tune: {name}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

