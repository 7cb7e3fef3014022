"""Greedy seed schedules, so that the first trials of a search are already good.

In the spirit of Mullapudi's and Adams' greedy autoschedulers, each seed
decides placement by the shape of the dataflow and then gives every
root-level stage tiles, vectors and a parallel outer loop. The variants
are the expert schedules of Halide's apps, written as rules:

* `tiles`: 256 x 32 tiles, stencil producers per tile (blur);
* `rows`: strips of 64 rows in parallel, stencil producers per row with
  storage per strip: a sliding window (Halide's gaussian);
* `regs`, `regs_packed`: 3-vector x 32-row tiles of 4-row register blocks,
  a reduction computed per block with its RVars outside the block and the
  block unrolled, so its accumulators stay in registers; `_packed` also
  copies the input panel a tile reads into a dense buffer per tile
  (Halide's matrix multiply, with `B.in_()`);
* `regs_wide`: 4-vector x 5-pixel register blocks, no cache tile (Halide's
  conv_layer);
* `root`: every stage at root, small tiles.

Common rules: a Func that reads only inputs (a boundary condition) or that
its single consumer reads pointwise is inlined unless a variant packs it;
a stage made only of RVars (a histogram) is split into strips reduced in
parallel (`rfactor`, a count per variant) or left serial. Each seed is a
dict of the space's choices (see space.py), enqueued as the study's first
trials.
"""
from __future__ import annotations

from .space import VECTOR_BYTES, FixedChooser, Space, candidate_hash, default_params

# tx/ty/by: the root-level tile (tx in vectors) and register-block rows;
# stencil/reduction: where such producers go; pack: copy input panels per tile;
# rstage: a stage of only RVars: (mode, strips)
VARIANTS = {
    "tiles": dict(tx=16, ty=32, by=1, stencil="tile", reduction="tile", pack=False,
                  rstage=("rfactor", 16)),
    "rows": dict(tx=0, ty=64, by=1, stencil="row", reduction="row", pack=False,
                 rstage=("rfactor", 2)),
    "regs": dict(tx=3, ty=32, by=4, stencil="tile", reduction="block", pack=False,
                 rstage=("none", 0)),
    "regs_packed": dict(tx=3, ty=32, by=4, stencil="tile", reduction="block", pack=True,
                        rstage=("rfactor", 4)),
    "regs_wide": dict(tx=4, ty=1, by=5, stencil="tile", reduction="block", pack=False,
                      rstage=("rfactor", 8)),
    "root": dict(tx=4, ty=8, by=1, stencil="root", reduction="root", pack=False,
                 rstage=("none", 0)),
}
# The same on one thread: on a loaded machine a thread team can cost more than it
# saves (every thread must reach the end of a parallel loop, also one that the
# OS has not scheduled yet).
VARIANTS.update({f"{name}_serial": dict(VARIANTS[name], serial=True)
                 for name in ("rows", "regs_packed", "regs_wide")})


SMALL_OUTPUT = 1 << 14     # elements: a stage this small runs on one thread


class _Greedy:
    """A chooser that answers by the rules of one variant."""

    def __init__(self, space: Space, variant: dict):
        self.space, self.v = space, variant
        self.by_key = {f.key: f for f in space.funcs.values()}
        self.placed = {}

    def _place(self, info) -> str:
        if info.has_updates:
            return self.v["reduction"]
        if info.leaf and self.v["pack"] and self._feeds_reduction(info):
            return "tile"
        if info.leaf or info.pointwise:
            return "inline"
        return self.v["stencil"]

    def _feeds_reduction(self, info) -> bool:
        return any(self.space.funcs[c].has_updates for c in info.consumers)

    def __call__(self, name, choices):
        key, _, what = name.rpartition(".")
        if what == "compute":
            info = self.by_key[key]
            self.placed[key] = choice = self._place(info)
            return choice
        if what == "store":
            return "tile" if self.placed.get(key) == "row" else "compute"
        fkey, _, stage = key.rpartition(".")
        info = self.by_key[fkey]
        where = "root" if info.is_output else self.placed.get(fkey, "root")
        root_level = where == "root"
        lanes = max(1, VECTOR_BYTES // info.elem_bytes)
        if what == "tx":
            return _nearest(choices, (self.v["tx"] * lanes or 1) if root_level else 1)
        if what == "ty":
            return _nearest(choices, self.v["ty"] if root_level else 1)
        if what == "by":
            return _nearest(choices, self.v["by"] if root_level else 1)
        if what == "vec":
            return _nearest(choices, lanes)
        if what == "order":
            return "yx"
        if what == "rv":
            if where == "block":
                return "outer"              # the whole block inside the RVars
            return "block" if root_level and self.v["by"] > 1 else "middle"
        if what == "ur":
            return 2 if where == "block" else 1
        if what in ("ux", "uy"):
            return True
        if what == "par":
            if "rfactor" in choices:
                return "none" if self.v.get("serial") else self.v["rstage"][0]
            if self.v.get("serial"):
                return "none"
            size = 1
            for e in info.estimates:
                size *= e if e is not None else 1 << 20
            if size < SMALL_OUTPUT:         # a thread team costs more than it saves
                return "none"
            # a short outermost loop (a batch of 4 images) is fused with the next
            outermost = info.estimates[-1] if len(info.estimates) > 2 else None
            return "fuse2" if outermost is not None and outermost < 16 else "outer"
        if what == "strips":
            return _nearest(choices, self.v["rstage"][1])
        return choices[0]


def _nearest(choices, want):
    ok = [c for c in choices if c <= want]
    return max(ok) if ok else min(choices)


def seed_candidates(space: Space) -> list:
    """[(variant name, choices dict)], one per distinct schedule."""
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
