"""The Funcs a pipeline uses, where each is computed, and in which order.

`find_environment` collects every Function reachable from the outputs.
`decide_compute_levels` applies the default schedule under the user's
choices (outputs are computed at the root; a Func with updates, which cannot
be inlined, at the innermost loop of its consumer, as in Halide; everything
else inlined), and `realization_order` sorts the non-inlined Functions so that
producers come before consumers.
"""
from __future__ import annotations

from ..errors import CompileError
from ..schedule.schedule import LoopLevel


def find_environment(outputs) -> dict:
    env = {}
    stack = list(outputs)
    while stack:
        f = stack.pop()
        if f.name in env:
            continue
        if not f.defined():
            raise CompileError(f"Func {f.user_name} is used in the pipeline but has no "
                               f"definition")
        env[f.name] = f
        stack.extend(f.callees.values())
    return env


def decide_compute_levels(env: dict, outputs) -> dict:
    """Internal name -> LoopLevel actually used for each Function."""
    out_names = {f.name for f in outputs}
    levels = {}
    for name, f in env.items():
        s = f.schedule
        if name in out_names:
            levels[name] = LoopLevel.root()    # outputs are always compute_root
        elif len(f.definitions) > 1:
            if s.explicit_compute and s.compute_level.is_inlined():
                raise CompileError(f"Func {f.user_name} has update definitions and cannot be "
                                   f"inlined")
            levels[name] = s.compute_level if s.explicit_compute else None
        else:
            levels[name] = s.compute_level
    for name in [n for n, lv in levels.items() if lv is None]:
        levels[name] = _innermost_of_consumer(name, env, levels) or LoopLevel.root()
    return levels


def _innermost_of_consumer(name, env, levels):
    """Halide computes an unscheduled Func with updates (an inline `sum`) at
    the innermost loop of its consumer: the one non-inlined Func stage that
    calls it, at its innermost serial or parallel loop. None (compute_root)
    when several stages call it, the caller is inlined, or its loops are GPU
    loops."""
    from ..ir import expr as E
    from ..ir.mutator import calls_in
    from ..ir.stmt import ForKind
    users = []
    for c in env.values():
        if c.name == name:
            continue                      # its own updates read it
        for k, d in enumerate(c.definitions):
            nodes = (*d.args, *d.values)
            if any(call.name == name for n in nodes for call in calls_in(n, E.CallType.FUNC)):
                users.append((c, k))
    if len(users) != 1:
        return None
    c, k = users[0]
    if levels.get(c.name) is None or levels[c.name].is_inlined():
        return None
    dims = c.definitions[k].schedule.dims
    if any(dim.kind.is_gpu() for dim in dims) or c.definitions[k].schedule.specializations:
        return None
    for dim in dims:                      # innermost first
        if dim.kind in (ForKind.SERIAL, ForKind.PARALLEL):
            return LoopLevel("at", c.name, dim.var, k)
    return None


def realization_order(env: dict, levels: dict, outputs) -> list:
    """Non-inlined Functions, producers first (a stable topological order)."""
    order, state = [], {}

    def visit(name, path):
        st = state.get(name)
        if st == "done":
            return
        if st == "active":
            cycle = " -> ".join(env[n].user_name for n in path + [name])
            raise CompileError(f"The pipeline has a cycle of Func calls: {cycle}")
        state[name] = "active"
        for callee in sorted(env[name].callees):
            visit(callee, path + [name])
        state[name] = "done"
        if not levels[name].is_inlined():
            order.append(name)

    for f in outputs:
        visit(f.name, [])
    return order
