"""Redirect calls to `in_()` wrappers, and collect the pipeline's Funcs.

`f.in_(g)` makes a wrapper Func that copies f and is what g reads;
`f.in_()` (and `image.in_()`) makes one that every consumer reads. The user's
Functions are never changed: `wrap_calls` returns lowering copies whose
definitions call the wrappers, reachable from the outputs.
"""
from __future__ import annotations

import copy

from ..errors import CompileError
from ..ir import expr as E
from ..ir.mutator import IRMutator


def wrap_calls(outputs) -> dict:
    """Internal name -> Function (a copy when a call was redirected)."""
    env = {}
    stack = list(outputs)
    while stack:
        f = stack.pop()
        if f.name in env:
            continue
        if not f.defined():
            raise CompileError(f"Func {f.user_name} is used in the pipeline but has no "
                               f"definition")
        g = _redirect(f)
        env[f.name] = g
        stack.extend(g.callees.values())
    return env


def _redirect(f):
    r = _Redirect(f)
    defs = []
    for d in f.definitions:
        nd = copy.copy(d)
        nd.args = tuple(r.mutate(a) for a in d.args)
        nd.values = tuple(r.mutate(v) for v in d.values)
        defs.append(nd)
    if not r.changed:
        return f
    g = copy.copy(f)
    g.definitions = defs
    g.callees = {n: c for n, c in f.callees.items() if n not in r.replaced}
    g.callees.update(r.added)
    g.inputs = {n: i for n, i in f.inputs.items() if n not in r.replaced_images}
    return g


def _wrapper_for(wrappers: dict, consumer):
    w = wrappers.get(consumer.name)
    if w is None:
        w = wrappers.get("")
    w = getattr(w, "_f", w)            # tables hold the user's Func objects
    if w is None or w is consumer or getattr(consumer, "wraps", None) is not None and \
            w.name == consumer.name:
        return None
    return w


class _Redirect(IRMutator):
    def __init__(self, consumer):
        self.consumer = consumer
        self.changed = False
        self.replaced, self.replaced_images, self.added = set(), set(), {}

    def visit_Call(self, c):
        c = self.generic(c)
        if c.call_type == E.CallType.FUNC:
            callee = self.consumer.callees.get(c.name)
            wrappers = getattr(getattr(callee, "schedule", None), "wrappers", None) or {}
        elif c.call_type == E.CallType.IMAGE:
            img = self.consumer.inputs.get(c.name)
            wrappers = getattr(img, "_wrappers", None) or {}
        else:
            return c
        if getattr(self.consumer, "wraps", None) == c.name:
            return c               # the wrapper's own read of what it wraps
        w = _wrapper_for(wrappers, self.consumer)
        if w is None:
            return c
        self.changed = True
        if c.call_type == E.CallType.FUNC:
            self.replaced.add(c.name)
        else:
            self.replaced_images.add(c.name)
        self.added[w.name] = w
        return E.Call(c.type, w.name, c.args, E.CallType.FUNC, c.value_index)
