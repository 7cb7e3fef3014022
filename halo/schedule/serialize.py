"""Schedule files: a pipeline's schedule as JSON, and back.

A schedule file (`schedules/NAME.TARGET.json`) holds, per Func and stage,
the directives in call order, exactly as the Funcs' schedule logs recorded
them::

    {"format": 1, "halo_version": "0.1.0", "target": "host",
     "algorithm_hash": "sha256:...",
     "funcs": {"blur_y": [{"stage": 0, "directive": "tile",
                           "args": ["x", "y", "xo", "yo", "xi", "yi", 256, 32, "Auto"]}]}}

Funcs are named by their user names (a repeated name gets `#2`, `#3`, ... in
discovery order); RVars of an RDom by the RDom's user name (`r.x`).
Applying a file replays each record through the real directive (so the
checks are the directives' own) and names the file, the Func, the stage and
the directive in any error. Files are data only: nothing in them is ever
evaluated.

The algorithm hash covers the definitions of every Func reachable from the
outputs (printed with canonical names, so the internal `$n` suffixes and
anonymous-object counters never matter) and no schedule: the same program
built twice, in any process, hashes the same.
"""
from __future__ import annotations

import copy
import hashlib
import json
import keyword
import os
import re

from ..errors import CompileError, ScheduleFileError
from ..ir import expr as E
from ..ir.mutator import IRVisitor
from ..ir.printer import _ExprPrinter
from .schedule import LoopLevel, TailStrategy

FORMAT = 1

# Names halo gives to objects the user did not name (`anonymous()`): they
# depend on how many objects were made before, so the hash renames them.
_ANON = re.compile(r"(f|v|p|im|b|r)\d+")

# Func methods in the directive tables that record nothing, so never appear
# in a file (estimates belong to the pipeline's inputs and outputs).
_NOT_RECORDED = {"set_estimate", "set_estimates", "print_loop_nest"}


# -- the Funcs of a pipeline, in a deterministic order -------------------------------

def _outputs(pipeline):
    from ..lang.func import Func
    if isinstance(pipeline, Func):
        return [pipeline._f]
    return [f._f for f in pipeline.outputs()]


def _def_nodes(d):
    yield from d.args
    yield from d.values
    for dom in d.rdoms:
        for lo, ext in dom.bounds:
            yield lo
            yield ext
        yield from dom.predicates


def _algorithm_functions(outputs, as_written=True) -> list:
    """Every Function reachable from `outputs`, in first-use order: through
    the definitions as the user wrote them, or (`as_written=False`) as
    directives such as rfactor rewrote them, which reach their new Funcs."""
    order, seen = [], set()
    queue = list(outputs)
    while queue:
        fn = queue.pop(0)
        if fn.name in seen:
            continue
        seen.add(fn.name)
        order.append(fn)
        callees = getattr(fn, "callees", {}) or {}
        for d in (fn.user_definitions() if as_written else fn.definitions):
            for node in _def_nodes(d):
                for name in _calls(node):
                    c = callees.get(name)
                    if c is not None and c.name not in seen:
                        queue.append(c)
        for c in callees.values():        # not seen in the IR (should not happen)
            if c.name not in seen and not (as_written and _made_by_schedule(fn, c)):
                queue.append(c)
    return order


def _made_by_schedule(fn, callee) -> bool:
    """A Func that a directive of fn's schedule created (rfactor's intermediate):
    part of the schedule, not of the algorithm."""
    return fn.algorithm_definitions is not None and not any(
        callee.name in _calls(node) for d in fn.algorithm_definitions for node in _def_nodes(d))


def _made_by_schedules(fns) -> set:
    """Names of the Funcs that directives of fns' schedules created (rfactor)."""
    return {c.name for fn in fns for c in fn.callees.values() if _made_by_schedule(fn, c)}


def _calls(node) -> list:
    found = []

    class V(IRVisitor):
        def visit_Call(self, c):
            if c.call_type == E.CallType.FUNC:
                found.append(c.name)
            self.generic(c)
    V().visit(node)
    return found


def _wrappers(fn) -> list:
    table = getattr(fn.schedule, "wrappers", None) or {}
    out = []
    for w in table.values():
        f = getattr(w, "_f", w)
        if all(f is not x for x in out):
            out.append(f)
    return out


def _scheduled_functions(outputs) -> list:
    """The algorithm's Functions, then the wrappers schedules made (`in_`)."""
    fns = _algorithm_functions(outputs, as_written=False)
    i = 0
    while i < len(fns):
        for w in _wrappers(fns[i]):
            if all(w is not f for f in fns):
                fns.append(w)
        i += 1
    return fns


def _keys(fns) -> dict:
    """Internal name -> the Func's name in a schedule file (user name, `#k` if repeated)."""
    keys, count = {}, {}
    for fn in fns:
        n = count[fn.user_name] = count.get(fn.user_name, 0) + 1
        keys[fn.name] = fn.user_name if n == 1 else f"{fn.user_name}#{n}"
    return keys


def _rdoms(fns, algorithm=False) -> dict:
    """Internal RDom name -> (canonical name, ReductionDomain), in first-use order
    of the definitions as written, then (unless `algorithm`) of any RDom a
    directive made (rfactor), so an RDom keeps its file name however it is
    scheduled."""
    out, count = {}, {}
    doms = [dom for fn in fns for d in fn.user_definitions() for dom in d.rdoms]
    if not algorithm:
        doms += [dom for fn in fns for d in fn.definitions for dom in d.rdoms]
    for dom in doms:
        if dom.name in out:
            continue
        user = getattr(dom, "user_name", None) or "r"
        n = count[user] = count.get(user, 0) + 1
        out[dom.name] = (user if n == 1 else f"{user}#{n}", dom)
    return out


def _rvar_map(fns) -> dict:
    """Internal RVar name (`r$2.x`) -> file name (`r.x`)."""
    canon = {internal: c for internal, (c, _) in _rdoms(fns).items()}
    m = {}
    # rfactor's derived domains share their origin's name but hold only some
    # of its RVars: map the RVars of every domain, not just the first seen.
    for fn in fns:
        for d in fn.user_definitions() + list(fn.definitions):
            for dom in d.rdoms:
                for v in dom.vars:
                    m.setdefault(v, canon[dom.name] + v[len(dom.name):]
                                 if v.startswith(dom.name) else v)
    return m


def _rvar_names(defn) -> set:
    """Names of a stage's RVars: its RDoms' and every name split/fused from them."""
    names = set(defn.rvars())
    for s in getattr(defn.schedule, "splits", []):
        if s.kind == "split" and s.old in names:
            names.update((s.outer, s.inner))
        elif s.kind == "fuse" and (s.inner in names or s.outer in names):
            names.add(s.old)
        elif s.kind == "rename" and s.old in names:
            names.add(s.outer)
    names.update(d.var for d in defn.schedule.dims if d.is_rvar)
    return names


# -- the algorithm hash ------------------------------------------------------------------

class _Namer:
    def __init__(self):
        self.names = {}      # internal -> canonical
        self.used = {}
        self.anon = 0

    def add(self, internal, user):
        if internal in self.names:
            return self.names[internal]
        if _ANON.fullmatch(user or ""):
            self.anon += 1
            canon = f"{_ANON.fullmatch(user).group(1)}#{self.anon}"
        else:
            n = self.used[user] = self.used.get(user, 0) + 1
            canon = user if n == 1 else f"{user}#{n}"
        self.names[internal] = canon
        return canon


class _CanonicalPrinter(_ExprPrinter):
    """`expr_to_str` with canonical names and the types of leaves."""

    def __init__(self, rename):
        self.rename = rename

    def p(self, e):
        if not isinstance(e, E.Expr):
            return repr(e)
        if getattr(self, "p_" + type(e).__name__, None) is None and \
                not isinstance(e, E.BinOp):
            raise CompileError(f"algorithm hash: cannot print IR node {type(e).__name__}")
        return super().p(e)

    def p_Variable(self, e):
        return f"{self.rename(e.name)}:{e.type}"

    def p_Let(self, e):
        return f"(let {self.rename(e.name)} = {self.p(e.value)} in {self.p(e.body)})"

    def p_Call(self, e):
        args = ", ".join(self.p(a) for a in e.args)
        return f"{e.call_type.value}:{self.rename(e.name)}.{e.value_index}<{e.type}>({args})"


def algorithm_text(pipeline) -> str:
    """The canonical text that `algorithm_hash` hashes (for debugging a mismatch)."""
    fns = _algorithm_functions(_outputs(pipeline))
    namer = _Namer()
    for fn in fns:
        namer.add(fn.name, fn.user_name)
    objects = {}
    for fn in fns:
        for table in (getattr(fn, "inputs", {}), getattr(fn, "params", {})):
            for name, obj in sorted(table.items(), key=lambda kv: kv[0]):
                objects.setdefault(name, obj)
    for internal, (canon, dom) in _rdoms(fns, algorithm=True).items():
        namer.add(internal, getattr(dom, "user_name", None) or "r")

    def base_name(obj, internal):
        n = obj.name() if callable(getattr(obj, "name", None)) else internal
        return n

    lines = []
    # Inputs in order of first use in the printed definitions, so the order is
    # that of the program, not of internal names.
    first_use = []

    def rename(name):
        if name in namer.names:
            return namer.names[name]
        if name in objects:
            if name not in first_use:
                first_use.append(name)
            return namer.add(name, base_name(objects[name], name))
        # `input$1.min.0`, `r$2.x`: an object's name and a suffix
        for i, ch in enumerate(name):
            if ch == "." and i:
                head = name[:i]
                if head in namer.names or head in objects:
                    return rename(head) + name[i:]
        if _ANON.fullmatch(name):
            return namer.add(name, name)
        return name

    pr = _CanonicalPrinter(rename)
    body = []
    for fn in fns:
        body.append(f"func {namer.names[fn.name]}({', '.join(rename(a) for a in fn.pure_args)})"
                    f" -> {', '.join(str(t) for t in fn.output_types)}")
        for k, d in enumerate(fn.user_definitions()):
            for dom in d.rdoms:
                bounds = ", ".join(f"[{pr.p(lo)}, {pr.p(ext)}]" for lo, ext in dom.bounds)
                preds = " && ".join(pr.p(x) for x in dom.predicates)
                body.append(f"  rdom {rename(dom.name)} {bounds}" + (f" where {preds}"
                                                                      if preds else ""))
            lhs = ", ".join(pr.p(a) for a in d.args)
            rhs = ", ".join(pr.p(v) for v in d.values)
            body.append(f"  {k}: ({lhs}) = ({rhs})")
    for name in first_use:
        obj = objects[name]
        dims = obj.dimensions() if callable(getattr(obj, "dimensions", None)) else 0
        kind = type(obj).__name__
        lines.append(f"{kind} {namer.names[name]}: {obj.type()} x{dims}")
    return "\n".join(lines + body) + "\n"


def algorithm_hash(pipeline) -> str:
    """A stable hash of the algorithm only (never of the schedule)."""
    text = algorithm_text(pipeline)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# -- pipeline -> dict / file -------------------------------------------------------------

def _jsonable(v, where):
    if isinstance(v, bool) or v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, where) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x, where) for k, x in v.items()}
    try:
        from ..lang.expr import to_node
        n = to_node(v)
        if isinstance(n, E.Const):
            return n.value
    except Exception:
        pass
    import numpy as np
    if isinstance(v, np.integer):
        return int(v)
    raise CompileError(f"{where}: argument {v!r} cannot be written to a schedule file")


def _file_args(d, fn, keys, by_user, rvars, where):
    refs = getattr(d, "func_refs", {}) or {}

    def func_key(internal, user):
        if internal in keys:
            return keys[internal]
        cands = by_user.get(user, [])
        if len(cands) == 1:
            return keys[cands[0]]
        raise CompileError(f"{where}: cannot tell which Func named {user!r} is meant")

    def conv(a, ref):
        if isinstance(a, dict) and a.get("func") is not None:
            a = dict(a)
            a["func"] = func_key(ref, a["func"])
            if a.get("var") in rvars:
                a["var"] = rvars[a["var"]]
            return a
        if isinstance(a, list):
            rs = ref if isinstance(ref, list) else [None] * len(a)
            return [conv(x, r) for x, r in zip(a, rs)]
        if isinstance(a, str) and ref is not None:
            return func_key(ref, a)
        if isinstance(a, str) and a in rvars:
            return rvars[a]
        return a
    return [_jsonable(conv(a, refs.get(i)), where) for i, a in enumerate(d.args)]


def schedule_to_dict(pipeline, target="host") -> dict:
    """The schedule of `pipeline` (a Pipeline or Func) as a schedule-file dict."""
    import halo
    fns = _scheduled_functions(_outputs(pipeline))
    keys = _keys(fns)
    by_user = {}
    for fn in fns:
        by_user.setdefault(fn.user_name, []).append(fn.name)
    rvars = _rvar_map(fns)
    funcs = {}
    for fn in fns:
        entries = []
        for d in fn.schedule.log:
            where = f"Func {keys[fn.name]}, {d.name}()"
            if d.name in ("specialize", "specialize_fail") or \
                    getattr(d, "specialization", None) is not None:
                raise ScheduleFileError(
                    f"{where}: schedules with specialize() cannot be saved to schedule "
                    f"files yet (the format has no field for a specialization's condition)")
            entries.append({"stage": d.stage, "directive": d.name,
                            "args": _file_args(d, fn, keys, by_user, rvars, where)})
        if entries:
            funcs[keys[fn.name]] = entries
    return {"format": FORMAT, "halo_version": halo.__version__,
            "target": str(target) if target is not None else "host",
            "algorithm_hash": algorithm_hash(pipeline), "funcs": funcs}


def dumps(data: dict) -> str:
    """JSON text with one directive per line."""
    head = {k: v for k, v in data.items() if k != "funcs"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "funcs": {')
    items = list(data.get("funcs", {}).items())
    for i, (name, entries) in enumerate(items):
        lines.append(f"    {json.dumps(name)}: [")
        for j, e in enumerate(entries):
            comma = "," if j < len(entries) - 1 else ""
            lines.append(f"      {json.dumps(e)}{comma}")
        lines.append("    ]" + ("," if i < len(items) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _target_name(target):
    if target is None:
        return "host"
    if isinstance(target, str):
        return target
    return getattr(target, "spec", None) or str(target)


def save_schedule(pipeline, path, target=None) -> str:
    """Write the schedule of `pipeline` to `path` (a directory: `NAME.TARGET.json` in it).

    Returns the path written. The write is atomic (a temporary file, renamed).
    """
    t = _target_name(target)
    path = os.fspath(path)
    if os.path.isdir(path):
        name = _outputs(pipeline)[0].user_name
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        path = os.path.join(path, f"{safe}.{re.sub(r'[^A-Za-z0-9_.-]', '_', t)}.json")
    text = dumps(schedule_to_dict(pipeline, t))
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


# -- file -> validated dict ----------------------------------------------------------------

def _err(label, msg):
    return ScheduleFileError(f"Schedule file {label}: {msg}")


def validate(data, label="<dict>") -> dict:
    """Check the shape of a schedule-file dict; return it (errors: ScheduleFileError)."""
    if not isinstance(data, dict):
        raise _err(label, f"the top level must be a JSON object, got {type(data).__name__}")
    missing = [k for k in ("format", "algorithm_hash", "funcs") if k not in data]
    if missing:
        raise _err(label, f"missing key(s) {', '.join(missing)}; a schedule file has format, "
                          f"halo_version, target, algorithm_hash and funcs")
    fmt = data["format"]
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise _err(label, f"'format' must be a positive integer, got {fmt!r}")
    if fmt > FORMAT:
        raise _err(label, f"format {fmt} was written by a newer halo (this halo "
                          f"reads format {FORMAT} and older); upgrade halo")
    for k in ("halo_version", "target", "algorithm_hash"):
        if k in data and not isinstance(data[k], str):
            raise _err(label, f"{k!r} must be a string, got {data[k]!r}")
    funcs = data["funcs"]
    if not isinstance(funcs, dict):
        raise _err(label, f"'funcs' must be an object mapping Func names to lists of "
                          f"directives, got {type(funcs).__name__}")
    for name, entries in funcs.items():
        if not isinstance(entries, list):
            raise _err(label, f"Func {name}: expected a list of directives, got "
                              f"{type(entries).__name__}")
        for i, e in enumerate(entries):
            where = f"Func {name}, directive #{i}"
            if not isinstance(e, dict):
                raise _err(label, f"{where}: expected an object with stage, directive, "
                                  f"args; got {e!r}")
            extra = set(e) - {"stage", "directive", "args"}
            if extra:
                raise _err(label, f"{where}: unknown key(s) {', '.join(sorted(extra))}")
            d = e.get("directive")
            if not isinstance(d, str):
                raise _err(label, f"{where}: 'directive' must be a directive name, got {d!r}")
            st = e.get("stage", 0)
            if isinstance(st, bool) or not isinstance(st, int) or st < 0:
                raise _err(label, f"Func {name}, {d}(): 'stage' must be a non-negative "
                                  f"integer, got {st!r}")
            if not isinstance(e.get("args", []), list):
                raise _err(label, f"Func {name}, {d}(): 'args' must be a list, got "
                                  f"{e.get('args')!r}")
    return data


def load_schedule(path) -> dict:
    """Read and check a schedule file (JSON only; nothing in it is evaluated)."""
    label = os.fspath(path)
    try:
        with open(label) as f:
            text = f.read()
    except OSError as e:
        raise _err(label, f"cannot be read: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _err(label, f"is not valid JSON: {e.msg} at line {e.lineno} column "
                          f"{e.colno}") from None
    return validate(data, label)


# -- dict -> schedule ------------------------------------------------------------------------

def _roles(name, args) -> str:
    """What each argument is: V a dimension, F a Func, L a LoopLevel,
    T a tail strategy, N anything else (passed through as is)."""
    n = len(args)
    from .gpu import file_roles
    gpu_roles = file_roles(name, args)
    if gpu_roles is not None:
        return gpu_roles
    if name == "split":
        return "VVVNT"
    if name == "fuse":
        return "VVV"
    if name == "rename":
        return "VV"
    if name in ("reorder", "serial", "rfactor"):      # rfactor: [RVar, Var] pairs
        return "V" * n
    if name in ("vectorize", "unroll", "parallel"):
        return "VNT"
    if name == "tile":
        if args and isinstance(args[0], list):
            return "VVVNT"
        return {9: "VVVVVVNNT", 8: "VVVVVVNN", 7: "VVVVNNT", 6: "VVVVNN"}.get(n, "N" * n)
    if name in ("bound", "align_bounds"):
        return "VNN"
    if name == "bound_extent":
        return "VN"
    if name in ("compute_at", "store_at", "hoist_storage"):
        return "L" if n == 1 else "FV"
    if name in ("in_", "clone_in"):
        return "F" * n
    if name == "prefetch":
        return "IVVNN"
    if name == "compute_with":
        return "LN"
    return "N" * n


class _Applier:
    def __init__(self, pipeline, label):
        from ..lang.func import Func
        self.label = label
        self.outputs = _outputs(pipeline)
        self.fns = _scheduled_functions(self.outputs)
        self.refresh()
        self.funcs = {}
        if isinstance(pipeline, Func):
            self.funcs[pipeline._f.name] = pipeline
        else:
            for f in pipeline.outputs():
                self.funcs[f._f.name] = f

    def refresh(self):
        """Recompute names (an `in_` directive may have made a new Func)."""
        self.fns = _scheduled_functions(self.outputs)
        self.keys = _keys(self.fns)
        self.by_key = {self.keys[fn.name]: fn for fn in self.fns}
        self.rvars = {v: k for k, v in _rvar_map(self.fns).items()}

    def func(self, fn):
        from ..lang.func import Func
        f = self.funcs.get(fn.name)
        if f is None:
            f = Func.__new__(Func)       # a handle on the existing Function
            f._f = fn
            self.funcs[fn.name] = f
        return f

    def known(self):
        return ", ".join(self.keys[fn.name] for fn in self.fns)

    def lookup(self, key, where):
        fn = self.by_key.get(key) if isinstance(key, str) else None
        if fn is None:
            raise _err(self.label, f"{where}: no Func named {key!r} in this pipeline; its "
                                   f"Funcs are: {self.known()}")
        return fn

    def func_or_input(self, key, where):
        if key in self.by_key:
            return self.func(self.by_key[key])
        for fn in self.fns:
            for obj in getattr(fn, "inputs", {}).values():
                if obj.name() == key:
                    return obj
        raise _err(self.label, f"{where}: no Func or input buffer named {key!r} in this "
                               f"pipeline; its Funcs are: {self.known()}")

    def dim(self, name, fn, stage):
        from ..lang.var import RVar, Var
        if not isinstance(name, str):
            return name
        name = self.rvars.get(name, name)
        defs = fn.definitions if stage is None else [fn.definitions[stage]]
        if any(name in _rvar_names(d) for d in defs):
            return RVar(name)
        return Var(name)

    def convert(self, role, a, fn, stage, where, consumer=None):
        if isinstance(a, list) and role in "VF":
            return [self.convert(role, x, fn, stage, where, consumer) for x in a]
        if role == "V":
            if consumer is not None:
                return self.dim(a, consumer, None)
            return self.dim(a, fn, stage)
        if role == "T":
            if isinstance(a, str):
                try:
                    return TailStrategy(a)
                except ValueError:
                    return a              # the directive names the valid ones
            return a
        if role == "F":
            return self.func(self.lookup(a, where))
        if role == "I":        # a Func or an input buffer, by name
            return self.func_or_input(a, where)
        if role == "L":
            if not isinstance(a, dict) or a.get("kind") not in ("root", "inlined", "at"):
                raise _err(self.label, f"{where}: a LoopLevel is an object "
                                       f'{{"kind": "root"|"inlined"|"at", ...}}, got {a!r}')
            if a["kind"] == "root":
                return LoopLevel.root()
            if a["kind"] == "inlined":
                return LoopLevel.inlined()
            c = self.lookup(a.get("func"), where)
            var = a.get("var")
            if not isinstance(var, str):
                raise _err(self.label, f"{where}: LoopLevel 'var' must be a dimension name, "
                                       f"got {var!r}")
            st = a.get("stage", -1)
            return LoopLevel("at", c.name, self.rvars.get(var, var),
                             st if isinstance(st, int) and not isinstance(st, bool) else -1)
        return a

    def apply_entry(self, key, e):
        from ..lang.func import Stage
        from . import directives
        name, stage, args = e["directive"], e.get("stage", 0), list(e.get("args", []))
        fn = self.lookup(key, f"Func {key}, {name}()")
        sname = key if stage == 0 else f"{key}.update({stage - 1})"
        where = f"Func {key}, stage {sname}, directive {name}()"
        if stage >= len(fn.definitions):
            raise _err(self.label, f"{where}: Func {key} has no such stage (it has "
                                   f"{len(fn.definitions) - 1} update definition(s))")
        table = directives.FUNC_DIRECTIVES if stage == 0 else directives.STAGE_DIRECTIVES
        planned = set(getattr(directives, "_PLANNED", ()))
        if name not in table or name in _NOT_RECORDED:
            valid = sorted(n for n in table if n not in _NOT_RECORDED and n not in planned)
            raise _err(self.label, f"{where}: unknown directive {name!r}; the directives a "
                                   f"schedule file may hold here are: {', '.join(valid)}")
        roles = _roles(name, args)
        conv = []
        consumer = None
        for i, a in enumerate(args):
            role = roles[i] if i < len(roles) else "N"
            v = self.convert(role, a, fn, stage, where, consumer)
            if role == "F" and not isinstance(v, list) and name in ("compute_at", "store_at",
                                                                   "hoist_storage"):
                consumer = v._f
            conv.append(v)
        owner = self.func(fn) if stage == 0 else Stage(self.func(fn), stage)
        try:
            table[name](owner, *conv)
        except ScheduleFileError:
            raise
        except CompileError as err:
            raise _err(self.label, f"{where}: {err}") from None
        except TypeError as err:
            raise _err(self.label, f"{where}: bad arguments {args!r}: {err}") from None
        if name in ("in_", "clone_in", "rfactor"):     # each makes a new Func
            self.refresh()


def _copy(sched) -> dict:
    """The state of a Func or stage schedule, copied as deep as directives
    change it (lists, dicts, Dims), not into the Funcs it may refer to."""
    state = {}
    for k, v in vars(sched).items():
        if isinstance(v, list):
            v = [copy.copy(x) if k == "dims" else x for x in v]
        elif isinstance(v, dict):
            v = dict(v)
        state[k] = v
    return state


def apply_schedule(pipeline, path_or_dict, strict=True):
    """Replay a schedule file (a path or an already-loaded dict) on `pipeline`.

    With `strict` (the default) the file's algorithm hash must match the
    pipeline's. On any error nothing is changed.
    """
    if isinstance(path_or_dict, dict):
        label = "<dict>"
        data = validate(path_or_dict, label)
    else:
        label = os.fspath(path_or_dict)
        data = load_schedule(label)
    if strict:
        mine = algorithm_hash(pipeline)
        if data["algorithm_hash"] != mine:
            raise _err(label, f"was made for a different algorithm (its algorithm_hash is "
                              f"{data['algorithm_hash']}, this pipeline's is {mine}); "
                              f"apply it anyway with strict=False")
    ap = _Applier(pipeline, label)
    saved = [(x, _copy(x)) for fn in ap.fns
             for x in [fn.schedule] + [d.schedule for d in fn.definitions]]
    try:
        for key, entries in data["funcs"].items():
            ap.lookup(key, f"Func {key}")
            for e in entries:
                ap.apply_entry(key, e)
    except BaseException:
        from ..lang.names import bump_epoch
        for obj, state in saved:          # restore in place: nothing changed
            obj.__dict__.clear()
            obj.__dict__.update(state)
        bump_epoch()
        raise
    return pipeline


# -- schedule -> Python ------------------------------------------------------------------

def _ident(name, taken=()):
    s = re.sub(r"\W", "_", name)
    if not s or s[0].isdigit() or keyword.iskeyword(s):
        s = "_" + s
    while s in taken:
        s += "_"
    return s


def schedule_to_python(pipeline) -> str:
    """The schedule as Python calls that reproduce it (the Funcs, named by
    their names, and `hl` must be in scope; Vars are declared)."""
    fns = _scheduled_functions(_outputs(pipeline))
    keys = _keys(fns)
    fid = {}
    for fn in fns:
        fid[fn.name] = _ident(keys[fn.name], set(fid.values()))
    by_user = {}
    for fn in fns:
        by_user.setdefault(fn.user_name, []).append(fn.name)
    # internal RVar name -> Python expression, from the definitions as written:
    # the printed calls run on the algorithm before any rfactor rewrote it, and
    # the Funcs rfactor makes do not exist yet where they start
    rvars_of = {}
    made = _made_by_schedules(fns)
    for fn in fns:
        if fn.name in made:
            continue
        for k, d in enumerate(fn.user_definitions()[1:], start=1):
            for i, v in enumerate(d.rvars()):
                rvars_of.setdefault(v, (f"{fid[fn.name]}_rvars{k - 1}",
                                        f"{fid[fn.name]}.rvars({k - 1})", i))
    rvar_lists = {}     # identifier -> the expression it is bound to first
    decl = {}           # dimension name -> (python ident, is_rvar)
    taken = set(fid.values()) | {"hl"}
    body = []

    def dim(name, fn, stage):
        if not isinstance(name, str):
            return repr(name)
        if name in rvars_of:        # bound before any directive can rewrite the stage
            ident, expr, i = rvars_of[name]
            rvar_lists.setdefault(ident, expr)
            return f"{ident}[{i}]"
        # (the definitions as written too: rfactor replaces a stage, split RVars and all)
        defs = list(fn.definitions) + fn.user_definitions() if stage is None else \
            [fn.definitions[stage], fn.user_definitions()[stage]]
        is_r = any(name in _rvar_names(d) for d in defs)
        if name not in decl:
            ident = name if name.isidentifier() and not keyword.iskeyword(name) and \
                name not in taken else None
            if ident is None:
                return f"hl.{'RVar' if is_r else 'Var'}({name!r})"
            decl[name] = (ident, is_r)
            taken.add(ident)
        return decl[name][0]

    def func_ref(internal, user):
        if internal not in fid and len(by_user.get(user, [])) == 1:
            internal = by_user[user][0]
        if internal not in fid:
            raise CompileError(f"schedule_to_python: cannot tell which Func {user!r} is")
        return fid[internal], next(f for f in fns if f.name == internal)

    def tail(a):
        try:
            return f"hl.TailStrategy.{TailStrategy(a).value}"
        except ValueError:
            return repr(a)

    for fn in fns:
        for d in fn.schedule.log:
            refs = getattr(d, "func_refs", {}) or {}
            args = list(d.args)
            roles = _roles(d.name, args)
            # leave out a trailing default tail strategy, as one would write it
            if args and roles[len(args) - 1:len(args)] == "T" and args[-1] == "Auto":
                args = args[:-1]
            out, consumer = [], None
            for i, a in enumerate(args):
                role = roles[i] if i < len(roles) else "N"
                if role == "V":
                    where = (consumer, None) if consumer is not None else (fn, d.stage)
                    if isinstance(a, list):
                        out.append("[" + ", ".join(dim(x, *where) for x in a) + "]")
                    else:
                        out.append(dim(a, *where))
                elif role == "F":
                    if isinstance(a, list):
                        rs = refs.get(i) if isinstance(refs.get(i), list) else [None] * len(a)
                        out.append("[" + ", ".join(func_ref(r, x)[0]
                                                   for x, r in zip(a, rs)) + "]")
                    else:
                        ident, consumer = func_ref(refs.get(i), a)
                        out.append(ident)
                elif role == "I":       # a Func, or an input buffer by its name
                    if refs.get(i):
                        out.append(func_ref(refs.get(i), a)[0])
                    else:
                        out.append(re.sub(r"\W", "_", str(a)) or "_")
                elif role == "L" and isinstance(a, dict) and a.get("kind") == "at":
                    ident, _ = func_ref(refs.get(i), a.get("func"))
                    out.append(f"hl.LoopLevel('at', {ident}.function().name, "
                               f"{a.get('var')!r}, {a.get('stage', -1)!r})")
                elif role == "L" and isinstance(a, dict):
                    out.append(f"hl.LoopLevel.{a.get('kind')}()")
                elif role == "T" and isinstance(a, str):
                    out.append(tail(a))
                else:
                    out.append(repr(_jsonable(a, "schedule_to_python")))
            owner = fid[fn.name] if d.stage == 0 else f"{fid[fn.name]}.update({d.stage - 1})"
            call = f"{owner}.{d.name}({', '.join(out)})"
            if d.name == "rfactor" and getattr(d, "made", None) in fid:
                call = f"{fid[d.made]} = {call}"    # name the intermediate it makes
            if d.name in ("in_", "clone_in"):       # name the wrapper it makes
                first = refs.get(0)
                first = (first[0] if isinstance(first, list) else first) or ""
                w = (getattr(fn.schedule, "wrappers", None) or {}).get(first)
                w = getattr(w, "_f", w)
                if w is not None and w.name in fid:
                    call = f"{fid[w.name]} = {call}"
            body.append(call)
    head = []
    pure = [(n, i) for n, (i, r) in decl.items() if not r]
    red = [(n, i) for n, (i, r) in decl.items() if r]
    if pure:
        if len(pure) == 1 and pure[0][0] == pure[0][1]:
            head.append(f"{pure[0][0]} = hl.Var({pure[0][0]!r})")
        elif all(n == i for n, i in pure):
            names = [n for n, _ in pure]
            head.append(f"{', '.join(names)} = hl.vars({' '.join(names)!r})")
        else:
            head += [f"{i} = hl.Var({n!r})" for n, i in pure]
    head += [f"{i} = hl.RVar({n!r})" for n, i in red]
    head += [f"{i} = {e}" for i, e in rvar_lists.items()]
    return "\n".join(head + body) + ("\n" if head or body else "")
