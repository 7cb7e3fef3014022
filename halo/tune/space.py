"""The search space: schedules built from halo's schedule primitives.

A candidate is a set of named choices; `Space.build(chooser)` asks a chooser
for each (`chooser(name, choices) -> one of choices`) and turns the answers
into a schedule file dict (the format of halo/schedule/serialize.py), which
the worker applies with `Pipeline.apply_schedule` (halo's validator checks it
again there). Choices are made per Func and per stage, consumers before
producers, so a producer's placement can name its consumer's loops.

A root-level stage is tiled in three levels: a cache tile (`tx` x `ty`),
inside it register blocks of `by` rows (`tx` wide), inside those the vector
loop. Its loops, innermost first, are::

    x_inner(tx) [y_block(by)] [y_inner(ty/by)]  x_outer y_outer  (other dims)

and a producer may be computed at three of them: `tile` (the innermost loop
outside the cache tile), `row` (one output row of the tile: with a storage
level further out this is a sliding window) and `block` (the loop outside
one register block: the block's accumulators stay in registers).

    F.compute   inline | root | tile | row | block
                A Func read by a single reduction that is itself computed in
                another Func's tile may go to that Func's `tile` loop: an
                input copy there is a packed panel (Halide's `B.in_()`).
    F.store     compute | tile | root          (for row/block: store_at further
                                                out than compute = a sliding window)
    F.sK.tx     split factor of the innermost pure dimension (1: no split)
    F.sK.ty     split factor of the next one
    F.sK.by     register-block rows: split of the tile's rows (or of the dimension)
    F.sK.order  yx | xy                        order of the outer tile loops
    F.sK.rv     inner | block | middle | outer where the RVars go: innermost, just
                                               outside the register block, outside
                                               the tile's inner loops, outermost
    F.sK.ur     unroll factor of the innermost RVar
    F.sK.vec    vector width of the innermost pure loop (1: none)
    F.sK.ux     fully unroll the vector loop's outer part
    F.sK.uy     fully unroll the block's rows (or the tile's, or a small dimension)
    F.sK.par    none | outer | fuse2           parallel loop (root-level stages only)
    F.sK.par    none | atomic | rfactor        (stages with only RVars, e.g. a
                                               histogram: atomic updates, or strips
                                               of the outer RVar reduced in parallel
                                               into partial results, `rfactor`)
    F.sK.strips number of rfactor strips

Every name's choices are fixed (a categorical Optuna can model); answers
that do not fit (a split larger than the extent, a vector wider than the
type's register) are clamped to the nearest that does. Funcs with updates
are never inlined, and `compute_at` is offered only under a single consumer.
Where a producer is read pointwise by its consumer, its region at the
chosen loop is known exactly (the consumer's block or tile), so its own
choices are clamped to that region.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..schedule.serialize import FORMAT, _algorithm_functions, _keys, _rvar_map, algorithm_hash

TX = (1, 8, 16, 32, 48, 64, 96, 128, 256)
TY = (1, 2, 4, 8, 16, 32, 64)
BY = (1, 2, 3, 4, 5, 6, 8)
VEC = (1, 4, 8, 16, 32, 64)
UR = (1, 2, 4)
STRIPS = (2, 4, 8, 16, 32)
PLACES = ("inline", "root", "tile", "row", "block")
RV = ("inner", "block", "middle", "outer")
VECTOR_BYTES = 64          # the widest vector (AVX-512); gcc splits wider ones
MAX_UNROLL = 8             # fully unrolled loops at most this long


@dataclass
class StageInfo:
    index: int                          # 0: the pure definition, k: update k-1
    pure: list                          # pure loop names, innermost first
    rvars: list                         # RVar names (file form), innermost first
    dims: list                          # index in the Func's pure args of each pure loop
    rvar_extents: list                  # estimated extent of each RVar (None: unknown)


@dataclass
class FuncInfo:
    name: str                           # internal name
    key: str                            # name in schedule files
    user_name: str
    is_output: bool
    has_updates: bool
    consumers: list                     # internal names of the Funcs that call it
    estimates: list                     # estimated extent of each pure arg
    stages: list = field(default_factory=list)
    elem_bytes: int = 4
    pointwise: bool = False             # every consumer reads it at its own (x, y, ...)
    leaf: bool = False                  # reads no other Func (only inputs)


def candidate_hash(schedule: dict) -> str:
    """Identity of a candidate: its directives (not its header)."""
    text = json.dumps(schedule.get("funcs", {}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class _Level:
    """A loop of a placed Func where producers may be computed."""
    func: str                           # the Func whose loop it is (internal name)
    var: str                            # the loop's name
    region: list                        # extent per pure arg covered by one iteration


@dataclass
class _State:
    """What one `build` has decided so far."""
    funcs: dict = field(default_factory=dict)      # file key -> directive entries
    placed: dict = field(default_factory=dict)     # name -> inline|root|tile|row|block
    host: dict = field(default_factory=dict)       # name -> the Func it is computed in
    levels: dict = field(default_factory=dict)     # name -> {level: _Level}
    region: dict = field(default_factory=dict)     # name -> extent per pure arg
    made: list = field(default_factory=list)       # (file key, entries) of Funcs that
                                                   # directives create (rfactor)
    parallel: set = field(default_factory=set)     # Funcs with a parallel loop


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
        input_est = _input_estimates(fns)
        self.user_names = {fn.user_name for fn in fns}
        self.funcs = {}
        for fn in self._consumers_first(fns, consumers):
            est = fn.schedule.estimates or out_est
            info = FuncInfo(fn.name, keys[fn.name], fn.user_name, fn.name in out_names,
                            len(fn.definitions) > 1, consumers[fn.name],
                            [int(est[i][1]) if i in est else None
                             for i in range(len(fn.pure_args))],
                            elem_bytes=max(t.bytes() for t in fn.output_types),
                            leaf=not fn.calls())
            for k, d in enumerate(fn.definitions):
                dims = d.schedule.dims
                pure = [x.var for x in dims if not x.is_rvar]
                rvars = [x.var for x in dims if x.is_rvar]
                bounds = dict(zip(d.rvars(), d.rvar_bounds()))
                info.stages.append(StageInfo(
                    k, pure, [rv.get(v, v) for v in rvars],
                    [fn.pure_args.index(v) if v in fn.pure_args else -1 for v in pure],
                    [_estimate(bounds[v][1], input_est) if v in bounds else None
                     for v in rvars]))
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
        s = _State()
        for info in self.funcs.values():
            entries = []
            if info.is_output:
                where = "root"
                s.region[info.name] = list(info.estimates)
            else:
                where = self._place(s, info, choose, entries)
            s.placed[info.name] = where
            if where == "inline":
                continue
            for st in info.stages:
                entries += self._stage(s, info, st, choose, where == "root")
            if entries:
                s.funcs[info.key] = entries
        for key, entries in s.made:         # after their creator: the file is replayed
            s.funcs[key] = entries          # in order
        return {"format": FORMAT, "halo_version": _version(), "target": self.target,
                "algorithm_hash": self.algorithm_hash, "funcs": s.funcs}

    def _effective_consumers(self, info, placed) -> set:
        out = set()
        for c in info.consumers:
            if placed.get(c) == "inline":
                out |= self._effective_consumers(self.funcs[c], placed)
            else:
                out.add(c)
        return out

    def _levels(self, s, info) -> dict:
        """The loops `info` may be computed at: its single consumer's, or, when that
        consumer is a reduction computed inside another Func, that Func's tile loop."""
        cons = self._effective_consumers(info, s.placed)
        if len(cons) != 1:
            return {}
        (c,) = cons
        if not self.funcs[c].has_updates:
            return s.levels.get(c, {})
        host = s.host.get(c)
        if host is not None and "tile" in s.levels.get(host, {}):
            return {"tile": s.levels[host]["tile"]}
        return {}

    def _place(self, s, info, choose, entries) -> str:
        options = [] if info.has_updates else ["inline"]
        options.append("root")
        levels = self._levels(s, info)
        options += list(levels)
        if len(options) == 1:
            choice = options[0]
        else:
            choice = choose(f"{info.key}.compute", PLACES)
            if choice not in options:           # not offered here: the nearest that is
                cheap = choice == "inline" or info.leaf     # a copy of inputs: recompute
                choice = "inline" if cheap and "inline" in options else "root"
        if choice == "inline":
            return "inline"
        if choice == "root":
            entries.append(_d(0, "compute_root", []))
            s.region[info.name] = list(info.estimates)
            return "root"
        lv = levels[choice]
        ckey = self.funcs[lv.func].key
        if choice in ("row", "block"):
            store = choose(f"{info.key}.store", ("compute", "tile", "root"))
            tile = levels.get("tile")
            if store == "root" and self._under_parallel(s, lv.func):
                # storage outside a parallel loop it is computed within would be
                # shared by its iterations (a race the validator refuses): the
                # consumer's tile is at or inside its parallel loop, the outermost
                store = "tile"
            if store == "root":
                entries.append(_d(0, "store_root", []))
            elif store == "tile" and tile is not None and tile.var != lv.var:
                entries.append(_d(0, "store_at", [ckey, tile.var]))
        entries.append(_d(0, "compute_at", [ckey, lv.var]))
        s.host[info.name] = lv.func
        # pointwise: the region is the consumer's at that loop; else the estimates
        pointwise = info.pointwise and len(lv.region) == len(info.estimates) \
            and lv.func in info.consumers
        s.region[info.name] = list(lv.region) if pointwise else list(info.estimates)
        return choice

    @staticmethod
    def _under_parallel(s, fname) -> bool:
        """Whether fname, or a Func it is computed in (transitively), has a
        parallel loop."""
        seen = set()
        while fname is not None and fname not in seen:
            if fname in s.parallel:
                return True
            seen.add(fname)
            fname = s.host.get(fname)
        return False

    def _stage(self, s, info, st, choose, root_level) -> list:
        if not st.pure:                                  # only RVars: e.g. a histogram
            return self._rvar_stage(s, info, st, choose, root_level)
        p = f"{info.key}.s{st.index}."
        k = st.index
        out = []
        pure, rvars = st.pure, st.rvars
        region = s.region[info.name]
        ext = [region[i] if i >= 0 else None for i in st.dims]
        taken = set(pure) | set(rvars)

        def fresh(base):
            n = base
            while n in taken:
                n += "_"
            taken.add(n)
            return n
        # A Func computed inside another's loop covers a region the split factor may
        # exceed: guard the tail there (ShiftInwards would read outside its inputs);
        # so in an update, whose Auto tail (RoundUp) would compute past the region.
        tail = "Auto" if root_level and k == 0 else "GuardWithIf"
        tx = _fit(choose(p + "tx", TX), TX, ext[0])
        ty = by = 1
        if len(pure) >= 2:
            ty = _fit(choose(p + "ty", TY), TY, ext[1])
            by = _fit(choose(p + "by", BY), BY, ty if ty > 1 else ext[1])
            if by >= ty > 1 or (ty > 1 and ty % by):
                by = 1
        # loops as (name, pure-arg index, extent), innermost first
        x = pure[0]
        inner, outer = [], []
        if tx > 1:
            xo, xi = fresh(x + "o"), fresh(x + "i")
            out.append(_d(k, "split", [x, xo, xi, tx, tail]))
            inner.append((xi, st.dims[0], tx))
            outer.append((xo, st.dims[0], _ceil(ext[0], tx)))
            x = xi
        else:
            inner.append((x, st.dims[0], ext[0]))
        y = yb = None
        if len(pure) >= 2:
            y, dy = pure[1], st.dims[1]
            rows = None                             # the loop over blocks in the tile
            if ty > 1:
                yo, yi = fresh(y + "o"), fresh(y + "i")
                out.append(_d(k, "split", [y, yo, yi, ty, tail]))
                outer.append((yo, dy, _ceil(ext[1], ty)))
                y, rows = yi, (yi, dy, ty)
            if by > 1:
                yb = fresh(pure[1] + "b")
                if ty > 1:
                    out.append(_d(k, "split", [y, y, yb, by, tail]))
                    rows = (y, dy, ty // by)
                else:
                    yo = fresh(y + "o")
                    out.append(_d(k, "split", [y, yo, yb, by, tail]))
                    outer.append((yo, dy, _ceil(ext[1], by)))
                inner.append((yb, dy, by))
            if rows is not None:
                inner.append(rows)
            elif by == 1:
                outer.append((y, dy, ext[1]))
            if len(outer) == 2 and choose(p + "order", ("yx", "xy")) == "xy":
                outer.reverse()
        rest = [(v, i, ext[j + 2]) for j, (v, i) in enumerate(zip(pure[2:], st.dims[2:]))]
        block_n = 1 + (by > 1)                       # the register block's loops
        rv = choose(p + "rv", RV) if rvars else "inner"
        loops = inner + outer + rest
        cut = {"inner": 0, "block": block_n, "middle": len(inner),
               "outer": len(loops)}[rv]
        order = [n for n, _, _ in loops[:cut]] + rvars + [n for n, _, _ in loops[cut:]]
        if order != self._natural_order(st, out):
            out.append(_d(k, "reorder", order))
        if rvars:
            ur = choose(p + "ur", UR)
            if ur > 1 and (st.rvar_extents[0] is None or st.rvar_extents[0] >= 2 * ur):
                out.append(_d(k, "unroll", [rvars[0], ur, "GuardWithIf"]))
        # vector width: fits the type and the extent, and divides the split
        lanes = max(1, VECTOR_BYTES // info.elem_bytes)
        vec = choose(p + "vec", VEC)
        span = tx if tx > 1 else ext[0]
        vec = max([v for v in VEC if v <= vec and v <= lanes and (span is None or v <= span)
                   and (tx == 1 or tx % v == 0)] or [1])
        if vec > 1:
            if vec == tx:
                out.append(_d(k, "vectorize", [x]))
            else:
                out.append(_d(k, "vectorize", [x, vec, "Auto"]))
                if span is not None and span // vec <= MAX_UNROLL and \
                        choose(p + "ux", (False, True)):
                    out.append(_d(k, "unroll", [x]))
        if len(pure) >= 2:
            if by > 1:
                small = yb if by <= MAX_UNROLL else None
            elif ty > 1:
                small = y if ty <= MAX_UNROLL else None
            else:
                small = y if ext[1] is not None and ext[1] <= MAX_UNROLL else None
            if small is not None and choose(p + "uy", (False, True)):
                out.append(_d(k, "unroll", [small]))
        # where producers may be computed: the consumer's loops (its last stage)
        if k == len(info.stages) - 1:
            s.levels[info.name] = self._named_levels(info, loops, block_n, ty, by)
        if root_level:
            par = choose(p + "par", ("none", "outer", "fuse2"))
            out_loops = [n for n, _, _ in reversed(outer + rest)]     # outermost first
            if par == "fuse2" and len(out_loops) >= 2:
                fused = fresh(out_loops[1] + out_loops[0])
                out.append(_d(k, "fuse", [out_loops[1], out_loops[0], fused]))
                out.append(_d(k, "parallel", [fused]))
                s.parallel.add(info.name)
                for lv in s.levels.get(info.name, {}).values():   # the fused loops are gone
                    if lv.var in out_loops[:2]:
                        lv.var = fused
            elif par != "none" and out_loops:
                out.append(_d(k, "parallel", [out_loops[0]]))
                s.parallel.add(info.name)
        return out

    def _named_levels(self, info, loops, block_n, ty, by) -> dict:
        """tile / row / block loops of a stage (see the module docstring), with the
        region one iteration of each covers."""
        n_inner = block_n + (ty > 1)
        tile_at = min(n_inner, len(loops) - 1)
        row_at = 1 if (by > 1 or ty > 1) else tile_at
        block_at = block_n if by > 1 else row_at
        out = {}
        for name, at in (("tile", tile_at), ("row", row_at), ("block", block_at)):
            if at >= len(loops) or (name != "tile" and at > tile_at):
                continue
            region = [1] * len(info.estimates)
            for _, dim, e in loops[:at]:
                if dim >= 0:
                    region[dim] = None if e is None or region[dim] is None \
                        else region[dim] * e
            out[name] = _Level(info.name, loops[at][0], region)
        return out

    def _rvar_stage(self, s, info, st, choose, root_level) -> list:
        """A stage whose loops are all RVars (a histogram's update): serial, atomic
        updates in parallel, or rfactor into parallel strips of the outer RVar."""
        p = f"{info.key}.s{st.index}."
        k, rvars = st.index, st.rvars
        if not (root_level and rvars):
            return []
        par = choose(p + "par", ("none", "atomic", "rfactor"))
        if par == "atomic":
            return [_d(k, "atomic", []), _d(k, "parallel", [rvars[-1]])]
        if par != "rfactor":
            return []
        strips = choose(p + "strips", STRIPS)
        extent = st.rvar_extents[-1]
        if extent is None or extent < 2 * strips:
            return []
        taken = set(rvars) | set(st.pure)
        outer, inner, u = (_fresh(b, taken) for b in ("ro", "ri", "u"))
        out = [_d(k, "split", [rvars[-1], outer, inner, _ceil(extent, strips), "Auto"]),
               _d(k, "rfactor", [[outer, u]])]
        # the intermediate: one partial result per strip, the strips in parallel
        # (the intermediate's Vars are the Func's pure Vars, then u)
        intm = [_d(0, "compute_root", []), _d(k, "parallel", [u])]
        lanes = max(1, VECTOR_BYTES // info.elem_bytes)
        pure0 = info.stages[0].pure
        if pure0 and info.estimates[0] is not None and info.estimates[0] >= lanes:
            intm.append(_d(0, "vectorize", [pure0[0], lanes, "Auto"]))
        s.made.append((_intm_key(info.user_name, self.user_names), intm))
        return out

    @staticmethod
    def _natural_order(st, splits):
        """The loop order without a reorder: each split puts its inner loop, then
        its outer loop, where the split loop was."""
        order = list(st.rvars) + list(st.pure)
        for e in splits:
            if e["directive"] == "split":
                old, outer, inner = e["args"][:3]
                i = order.index(old)
                order[i:i + 1] = [inner, outer]
        return order


def _intm_key(user_name, taken):
    """The file key of rfactor's intermediate Func (halo names it NAME_intm)."""
    return f"{user_name}_intm" if f"{user_name}_intm" not in taken else f"{user_name}_intm#2"


def _fresh(base, taken):
    n = base
    while n in taken:
        n += "_"
    taken.add(n)
    return n


def _fit(factor, choices, extent):
    """The split factor, or the largest of the choices that fits the extent."""
    if extent is None or factor <= extent:
        return factor
    return max(c for c in choices if c <= max(1, extent))


def _ceil(extent, factor):
    return None if extent is None else -(-extent // factor)


def _input_estimates(fns) -> dict:
    """'img.extent.i' / 'img.min.i' -> the input's estimate, for RDom bounds."""
    out = {}
    for fn in fns:
        for name, obj in (getattr(fn, "inputs", {}) or {}).items():
            for i, (mn, ext) in (getattr(obj, "_estimates", {}) or {}).items():
                out[f"{name}.extent.{i}"] = int(ext)
                out[f"{name}.min.{i}"] = int(mn)
    return out


def _estimate(e, values):
    """An int for an RDom bound built from constants and input sizes, else None."""
    from ..ir import expr as E
    if isinstance(e, E.Const):
        return int(e.value)
    if isinstance(e, E.Variable):
        return values.get(e.name)
    ops = {E.Add: lambda a, b: a + b, E.Sub: lambda a, b: a - b,
           E.Mul: lambda a, b: a * b, E.Div: lambda a, b: a // b if b else None,
           E.Min: min, E.Max: max}
    for cls, fn in ops.items():
        if isinstance(e, cls):
            a, b = _estimate(e.a, values), _estimate(e.b, values)
            return None if a is None or b is None else fn(a, b)
    return None


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
