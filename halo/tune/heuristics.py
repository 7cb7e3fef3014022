"""Greedy seed schedules, so that the first trials of a search are already good.

In the spirit of Mullapudi's and Adams' greedy autoschedulers, each seed
decides placement by the shape of the dataflow and then gives every
root-level stage tiles, vectors and a parallel outer loop:

* a Func that reads only inputs (a boundary condition) or that its single
  consumer reads pointwise is inlined: it costs nothing to recompute;
* a stencil producer or a reduction is computed per tile of its consumer
  (`tiles`, `blocks`), per row with storage per strip (`rows`: a sliding
  window), or at root (`root`);
* reductions get their RVars just outside a small block of vector
  accumulators (`rv=middle` with the block unrolled), the register-blocking
  schedule of matrix multiply and convolution.

Each seed is a dict of the space's choices (see space.py), enqueued as the
study's first trials.
"""
from __future__ import annotations

from .space import VECTOR_BYTES, FixedChooser, Space, candidate_hash

# (output tile x, output tile y, where stencil producers go, reductions' block)
VARIANTS = {
    "tiles": dict(tx=256, ty=32, stencil="tile", reduction="tile", rtx=None, rty=None),
    "rows": dict(tx=1, ty=64, stencil="row", reduction="row", rtx=None, rty=None),
    "blocks": dict(tx=32, ty=4, stencil="tile", reduction="tile", rtx=32, rty=4),
    "root": dict(tx=64, ty=8, stencil="root", reduction="root", rtx=None, rty=None),
}


class _Greedy:
    """A chooser that answers by the rules of one variant."""

    def __init__(self, space: Space, variant: dict):
        self.space, self.v = space, variant
        self.by_key = {f.key: f for f in space.funcs.values()}
        self.placed = {}

    def __call__(self, name, choices):
        key, _, what = name.rpartition(".")
        if what in ("compute", "store"):
            info = self.by_key[key]
            if what == "store":
                return "tile" if self.placed.get(key) == "row" else "compute"
            if not info.has_updates and (info.leaf or info.pointwise):
                choice = "inline"
            else:
                choice = self.v["reduction"] if info.has_updates else self.v["stencil"]
            self.placed[key] = choice
            return choice
        fkey, _, stage = key.rpartition(".")
        info = self.by_key[fkey]
        root_level = info.is_output or self.placed.get(fkey) == "root"
        lanes = max(1, VECTOR_BYTES // info.elem_bytes)
        is_update = stage != "s0"
        if what == "tx":
            want = self.v["tx"] if root_level else (self.v["rtx"] if is_update else None)
            return _nearest(choices, want or 1)
        if what == "ty":
            want = self.v["ty"] if root_level else (self.v["rty"] if is_update else None)
            return _nearest(choices, want or 1)
        if what == "vec":
            return _nearest(choices, lanes)
        if what == "order":
            return "yx"
        if what == "rv":
            return "middle"
        if what in ("ux", "uy"):
            return is_update
        if what == "par":
            return "outer"
        if what == "atomic":
            return True
        return choices[0]


def _nearest(choices, want):
    ok = [c for c in choices if c <= want]
    return max(ok) if ok else min(choices)


def seed_candidates(space: Space) -> list:
    """[(variant name, choices dict)], one per distinct schedule."""
    from .space import default_params
    seen, out = set(), []
    for name, v in VARIANTS.items():
        ch = FixedChooser({}, _Greedy(space, v))
        h = candidate_hash(space.build(ch))
        if h not in seen:
            seen.add(h)
            out.append((name, ch.asked))
    # the default schedule too, so the result is never slower than it
    params = default_params(space)
    if candidate_hash(space.build(FixedChooser(params))) not in seen:
        out.append(("default", params))
    return out
