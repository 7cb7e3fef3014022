"""What a tuning run measures: the pipeline, its inputs and its output sizes.

Everything here is derived from the PIPELINE alone, so the tuner and each
isolated worker process rebuild exactly the same workload: the Funcs come
from calling the PIPELINE function again (a fresh, unscheduled algorithm per
candidate), the inputs are random arrays of the ImageParams' estimated
sizes (seeded, so identical in every process), scalar Params take their
value or estimate, and the outputs are realized over the output Funcs'
estimates.
"""
from __future__ import annotations

import numpy as np

from ..errors import CompileError


def load(spec: str):
    """A fresh `halo.Pipeline` from a PIPELINE spec (see `halo.cli.load_pipeline`)."""
    from ..cli import load_pipeline
    return load_pipeline(spec)


def output_sizes(pipeline) -> list:
    """Realize sizes of the pipeline, from the first output's estimates."""
    out = pipeline.outputs()[0]
    fn = out._f
    est = fn.schedule.estimates
    sizes = []
    for i, arg in enumerate(fn.pure_args):
        if i not in est:
            raise CompileError(
                f"Func {fn.user_name} has no estimate for dimension {arg!r}: tuning needs "
                f"the output size, e.g. {fn.user_name}.set_estimates([(0, 1024), ...])")
        sizes.append(int(est[i][1]))
    return sizes


def _random_array(shape, dtype: np.dtype, rng) -> np.ndarray:
    if dtype.kind == "f":
        return (rng.random(shape) - 0.5).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = (info.min, info.max) if info.bits <= 16 else (-1000 if info.min < 0 else 0, 1000)
    return rng.integers(lo, int(hi) + 1, shape, dtype=np.int64).astype(dtype)


def bind_inputs(pipeline, seed: int = 0) -> None:
    """Give every ImageParam a seeded random buffer of its estimated size and every
    Param its value or estimate (inputs already bound are kept)."""
    from ..lang.buffer import Buffer
    from ..lang.param import ImageParam, Param
    rng = np.random.default_rng(seed)
    for obj in pipeline.infer_arguments():
        if isinstance(obj, ImageParam):
            if obj.get() is not None:
                continue
            est = getattr(obj, "_estimates", {})
            dims = obj.dimensions()
            missing = [i for i in range(dims) if i not in est]
            if missing:
                raise CompileError(
                    f"ImageParam {obj.name()} has no estimate for dimension {missing[0]}: "
                    f"tuning makes random inputs of the estimated size; call "
                    f"{obj.name()}.set_estimates([(0, extent), ...])")
            shape = tuple(int(est[i][1]) for i in reversed(range(dims)))
            obj.set(Buffer(_random_array(shape, obj.type().numpy_dtype(), rng)))
        elif isinstance(obj, Param):
            if obj.get() is None:
                est = getattr(obj, "_estimate", None)
                if est is None:
                    raise CompileError(f"Param {obj.name()} has neither a value nor an "
                                       f"estimate: call {obj.name()}.set_estimate(v)")
                obj.set(est)


def output_buffers(pipeline, sizes):
    """Preallocated output Buffers (one per output and Tuple element)."""
    from ..lang.buffer import Buffer
    bufs = []
    for f in pipeline.outputs():
        for t in f._f.output_types:
            bufs.append(Buffer(np.zeros(tuple(reversed(sizes)), dtype=t.numpy_dtype())))
    return bufs


def compare(got: list, ref: list):
    """None when the outputs match the reference (exact for integers, a relative
    tolerance for floats: reassociated sums differ in the last bits), else why."""
    if len(got) != len(ref):
        return f"{len(got)} outputs, the reference has {len(ref)}"
    for k, (g, r) in enumerate(zip(got, ref)):
        g, r = np.asarray(g), np.asarray(r)
        if g.shape != r.shape:
            return f"output {k}: shape {g.shape}, the reference has {r.shape}"
        if g.dtype.kind != "f":
            bad = np.argwhere(g != r)
            if len(bad):
                i = tuple(int(v) for v in bad[0])
                return (f"output {k}: {len(bad)} of {g.size} values differ from the "
                        f"interpreter, first at {i}: {g[i]} vs {r[i]}")
            continue
        if not np.array_equal(np.isfinite(g), np.isfinite(r)):
            return f"output {k}: non-finite values where the interpreter has none"
        fin = np.isfinite(r)
        scale = max(1e-30, float(np.max(np.abs(r[fin]), initial=0.0)))
        err = np.abs(g[fin].astype(np.float64) - r[fin]) / scale
        if err.size and float(err.max()) > 1e-4:
            return (f"output {k}: max error {float(err.max()):.2e} (relative to max |ref|) "
                    f"against the interpreter")
    return None
