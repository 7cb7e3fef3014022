"""The search space: schedules built from halo's schedule primitives.

A candidate is a set of named choices; `Space.build(chooser)` asks a chooser
for each (`chooser(name, choices) -> one of choices`) and turns the answers
into a schedule file dict (the format of halo/schedule/serialize.py), which
the worker applies with `Pipeline.apply_schedule` (halo's validator checks it
again there). Choices are made per Func and per stage, consumers before
producers, so a producer's placement can name its consumer's loops:

    F.compute   inline | root | tile | row     (tile: at the consumer's innermost
                                                tile loop; row: one loop further in)
    F.store     compute | tile | root          (store_at further out than compute:
                                                a sliding window over the rows)
    F.sK.tx     split factor of the innermost pure dimension (1: no split)
    F.sK.ty     split factor of the next one
    F.sK.order  yx | xy                        order of the outer tile loops
    F.sK.rv     inner | middle                 RVars innermost, or just outside the
                                               tile's inner loops (register blocking)
    F.sK.vec    vector width of the innermost pure loop (1: none)
    F.sK.ux     fully unroll the vector loop's outer part (tx / vec iterations)
    F.sK.uy     fully unroll the tile's inner row loop
    F.sK.par    none | outer | fuse2           parallel loop (root-level stages only)
    F.sK.atomic parallel over the outer RVar with atomic updates (stages with
                only RVars, e.g. a histogram)

Every name's choices are fixed (a categorical Optuna can model). Choices that
would be illegal are left out: Funcs with updates are never inlined,
`compute_at` is offered only under a single consumer that has no update, and
split factors never exceed the estimated extent.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..schedule.serialize import FORMAT, _algorithm_functions, _keys, _rvar_map, algorithm_hash

TX = (1, 8, 16, 32, 64, 128, 256)
TY = (1, 2, 4, 8, 16, 32, 64)
VEC = (1, 4, 8, 16, 32, 64)
VECTOR_BYTES = 64          # the widest vector (AVX-512); gcc splits wider ones


@dataclass
class StageInfo:
    index: int                          # 0: the pure definition, k: update k-1
    pure: list                          # pure loop names, innermost first
    rvars: list                         # RVar names (file form), innermost first
    extents: list                       # estimated extent of each pure loop


@dataclass
class FuncInfo:
    name: str                           # internal name
    key: str                            # name in schedule files
    is_output: bool
    has_updates: bool
    consumers: list                     # internal names of the Funcs that call it
    stages: list = field(default_factory=list)
    elem_bytes: int = 4
    pointwise: bool = False             # every consumer reads it at its own (x, y, ...)
    leaf: bool = False                  # reads no other Func (only inputs)


def candidate_hash(schedule: dict) -> str:
    """Identity of a candidate: its directives (not its header)."""
    text = json.dumps(schedule.get("funcs", {}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Space:
    """The schedule space of one pipeline (a halo Pipeline or Func)."""

    def __init__(self, pipeline, target="host"):
        from ..lang.func import Func
        outs = [pipeline] if isinstance(pipeline, Func) else pipeline.outputs()
        self.target = str(target)
        self.algorithm_hash = algorithm_hash(pipeline)
        fns = _algorithm_functions([f._f for f in outs])
        keys = _keys(fns)
        rv = _rvar_map(fns)
        out_names = {f._f.name for f in outs}
        by_name = {fn.name: fn for fn in fns}
        consumers = {fn.name: [] for fn in fns}
        for fn in fns:
            for c in sorted(fn.calls()):
                if c in consumers and fn.name not in consumers[c]:
                    consumers[c].append(fn.name)
        out_est = outs[0]._f.schedule.estimates
        self.funcs = {}
        for fn in self._consumers_first(fns, consumers):
            est = fn.schedule.estimates or out_est
            info = FuncInfo(fn.name, keys[fn.name], fn.name in out_names,
                            len(fn.definitions) > 1, consumers[fn.name],
                            elem_bytes=max(t.bytes() for t in fn.output_types),
                            leaf=not fn.calls())
            for k, d in enumerate(fn.definitions):
                dims = d.schedule.dims
                pure = [x.var for x in dims if not x.is_rvar]
                rvars = [rv.get(x.var, x.var) for x in dims if x.is_rvar]
                ext = []
                for v in pure:
                    i = fn.pure_args.index(v) if v in fn.pure_args else -1
                    ext.append(int(est[i][1]) if i in est else 1 << 20)
                info.stages.append(StageInfo(k, pure, rvars, ext))
            info.pointwise = self._pointwise(fn, consumers[fn.name], by_name)
            self.funcs[fn.name] = info

    @staticmethod
    def _consumers_first(fns, consumers):
        """Funcs ordered so that every consumer comes before its producers."""
        order, done = [], set()

        def visit(fn_name, stack=()):
            if fn_name in done or fn_name in stack:
                return
            for c in consumers[fn_name]:
                visit(c, stack + (fn_name,))
            done.add(fn_name)
            order.append(fn_name)
        by = {fn.name: fn for fn in fns}
        for fn in fns:
            visit(fn.name)
        return [by[n] for n in order]

    @staticmethod
    def _pointwise(fn, consumer_names, by_name) -> bool:
        """True if each consumer reads `fn` once, at exactly its own pure coordinates."""
        from ..ir import expr as E
        from ..ir.mutator import calls_in
        for cname in consumer_names:
            c = by_name[cname]
            seen = 0
            for d in c.definitions:
                for node in (*d.args, *d.values):
                    for call in calls_in(node, E.CallType.FUNC):
                        if call.name != fn.name:
                            continue
                        seen += 1
                        if len(call.args) != len(c.pure_args) or not all(
                                isinstance(a, E.Variable) and a.name == v
                                for a, v in zip(call.args, c.pure_args)):
                            return False
            if seen > 1:
                return False
        return True

    # -- building a candidate ---------------------------------------------------------
    def build(self, choose) -> dict:
        """A schedule file dict from the chooser's answers."""
        funcs, placed, loops = {}, {}, {}
        for info in self.funcs.values():
            entries = []
            where = "root" if info.is_output else self._place(info, choose, placed, loops,
                                                               entries)
            placed[info.name] = where
            if where == "inline":
                continue
            root_level = where == "root"
            for st in info.stages:
                entries += self._stage(info, st, choose, root_level, loops)
            if entries:
                funcs[info.key] = entries
        return {"format": FORMAT, "halo_version": _version(), "target": self.target,
                "algorithm_hash": self.algorithm_hash, "funcs": funcs}

    def _effective_consumers(self, info, placed) -> set:
        out = set()
        for c in info.consumers:
            if placed.get(c) == "inline":
                out |= self._effective_consumers(self.funcs[c], placed)
            else:
                out.add(c)
        return out

    def _place(self, info, choose, placed, loops, entries) -> str:
        options = [] if info.has_updates else ["inline"]
        options.append("root")
        cons = self._effective_consumers(info, placed)
        consumer = next(iter(cons)) if len(cons) == 1 else None
        if consumer is not None and not self.funcs[consumer].has_updates \
                and consumer in loops:
            options += ["tile", "row"]
        if len(options) == 1:
            choice = options[0]
        else:
            choice = choose(f"{info.key}.compute", tuple(("inline", "root", "tile", "row")))
            if choice not in options:           # not offered here: the nearest that is
                choice = "root" if choice in ("tile", "row") or "inline" not in options \
                    else "inline"
        if choice == "inline":
            return "inline"
        if choice == "root":
            entries.append(_d(0, "compute_root", []))
            return "root"
        levels = loops[consumer]
        ckey = self.funcs[consumer].key
        compute_var = levels[choice]
        store = choose(f"{info.key}.store", ("compute", "tile", "root"))
        if store == "root":
            entries.append(_d(0, "store_root", []))
        elif store == "tile" and choice == "row" and levels["tile"] != compute_var:
            entries.append(_d(0, "store_at", [ckey, levels["tile"]]))
        entries.append(_d(0, "compute_at", [ckey, compute_var]))
        return choice

    def _stage(self, info, st, choose, root_level, loops) -> list:
        p = f"{info.key}.s{st.index}."
        out = []
        k = st.index
        pure, rvars, ext = st.pure, st.rvars, st.extents
        if not pure:                                     # only RVars: e.g. a histogram
            if root_level and rvars and choose(p + "atomic", (False, True)):
                out.append(_d(k, "atomic", []))
                out.append(_d(k, "parallel", [rvars[-1]]))
            return out
        taken = set(pure) | set(rvars)

        def fresh(base):
            n = base
            while n in taken:
                n += "_"
            taken.add(n)
            return n
        # A Func computed inside another's loop covers a region the split factor may
        # exceed: guard the tail there (ShiftInwards would read outside its inputs).
        tail = "Auto" if root_level else "GuardWithIf"
        tx = choose(p + "tx", TX)
        tx = tx if tx <= ext[0] else 1
        ty = 1
        if len(pure) >= 2:
            ty = choose(p + "ty", TY)
            ty = ty if ty <= ext[1] else 1
        x, inner, outer = pure[0], [], []
        if tx > 1:
            xo, xi = fresh(x + "o"), fresh(x + "i")
            out.append(_d(k, "split", [x, xo, xi, tx, tail]))
            inner.append(xi)
            outer.append(xo)
            x = xi
        else:
            inner.append(x)
        y = None
        if len(pure) >= 2:
            y = pure[1]
            if ty > 1:
                yo, yi = fresh(y + "o"), fresh(y + "i")
                out.append(_d(k, "split", [y, yo, yi, ty, tail]))
                inner.append(yi)
                outer.append(yo)
                y = yi
            else:
                outer.append(y)
            if choose(p + "order", ("yx", "xy")) == "xy":
                outer.reverse()
        rv = "inner"
        if rvars:
            rv = choose(p + "rv", ("inner", "middle"))
        order = (rvars + inner if rv == "inner" else inner + rvars) + outer + list(pure[2:])
        if order != self._default_order(st):
            out.append(_d(k, "reorder", order))
        # vector width: fits the type and the extent, and divides the split
        lanes = max(1, VECTOR_BYTES // info.elem_bytes)
        vec = choose(p + "vec", VEC)
        span = tx if tx > 1 else ext[0]
        vec = max([v for v in VEC if v <= vec and v <= lanes and v <= span
                   and (tx == 1 or tx % v == 0)] or [1])
        if vec > 1:
            if vec == tx:
                out.append(_d(k, "vectorize", [x]))
            else:
                out.append(_d(k, "vectorize", [x, vec, "Auto"]))
                if tx > 1 and tx // vec <= 8 and choose(p + "ux", (False, True)):
                    out.append(_d(k, "unroll", [x]))
        if ty > 1 and ty <= 8 and choose(p + "uy", (False, True)):
            out.append(_d(k, "unroll", [y]))
        # where producers may be computed: the consumer's loops (its last stage)
        tile = outer[0] if outer else inner[-1]
        row = y if (y is not None and ty > 1) else tile
        if k == len(info.stages) - 1:
            loops[info.name] = {"tile": tile, "row": row}
        if root_level:
            par = choose(p + "par", ("none", "outer", "fuse2"))
            out_loops = list(reversed(outer + list(pure[2:])))     # outermost first
            if par == "fuse2" and len(out_loops) >= 2:
                fused = fresh(out_loops[1] + out_loops[0])
                out.append(_d(k, "fuse", [out_loops[1], out_loops[0], fused]))
                out.append(_d(k, "parallel", [fused]))
                if info.name in loops:          # the fused loops are gone
                    lv = loops[info.name]
                    for name in lv:
                        if lv[name] in out_loops[:2]:
                            lv[name] = fused
            elif par != "none" and out_loops:
                out.append(_d(k, "parallel", [out_loops[0]]))
        return out

    @staticmethod
    def _default_order(st):
        return list(st.rvars) + list(st.pure)


def _d(stage, name, args):
    return {"stage": stage, "directive": name, "args": list(args)}


def _version():
    import halo
    return halo.__version__


class FixedChooser:
    """Answers from a dict of choices; names not in it get `default(name, choices)`."""

    def __init__(self, params: dict, default=None):
        self.params = dict(params)
        self.default = default or (lambda name, choices: choices[0])
        self.asked = {}

    def __call__(self, name, choices):
        v = self.params.get(name)
        if v not in choices:
            v = self.default(name, choices)
        self.asked[name] = v
        return v


def default_params(space: Space) -> dict:
    """The choices that reproduce halo's default schedule (as far as the space can)."""
    ch = FixedChooser({}, lambda name, choices: choices[0])
    space.build(ch)
    return ch.asked
