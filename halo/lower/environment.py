"""The Funcs a pipeline uses, where each is computed, and in which order.

`find_environment` collects every Function reachable from the outputs.
`decide_compute_levels` applies the default schedule (outputs and Funcs with
updates are `compute_root`, everything else inlined) under the user's
choices, and `realization_order` sorts the non-inlined Functions so that
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
            levels[name] = s.compute_level if s.explicit_compute else LoopLevel.root()
        else:
            levels[name] = s.compute_level
    return levels


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
