"""Find the objects (Funcs, Params, images, RDoms) behind IR names.

IR nodes refer to Funcs, Params and buffers by internal name only. Each
front-end object registers itself here (weakly); when a definition is made,
`resolve_references` turns the names it uses into strong references that
the defining Function keeps, so the graph stays complete for lowering.
"""
from __future__ import annotations

import weakref

from ..ir import expr as ir
from ..ir.mutator import IRVisitor

_objects: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()


def register(name: str, obj) -> None:
    _objects[name] = obj


def lookup(name: str):
    return _objects.get(name)


class References:
    def __init__(self):
        self.funcs = {}       # name -> Function
        self.images = {}      # name -> ImageParam | Buffer
        self.params = {}      # name -> Param
        self.rdoms = {}       # domain name -> ReductionDomain
        self.rvars = set()    # names of RVars used
        self.free_vars = set()  # other Variable names


def resolve_references(*nodes) -> References:
    refs = References()

    class V(IRVisitor):
        def visit_Call(self, c):
            # a Call made by the front end holds its callee; others by name
            if c.call_type == ir.CallType.FUNC:
                obj = c.source if c.source is not None else lookup(c.name)
                if obj is not None:
                    refs.funcs[c.name] = obj
            elif c.call_type == ir.CallType.IMAGE:
                obj = c.source if c.source is not None else lookup(c.name)
                if obj is not None:
                    refs.images[c.name] = obj
            self.generic(c)

        def visit_Variable(self, v):
            obj = lookup(v.name)
            if obj is None:
                base = v.name.split(".")[0]
                meta = lookup(base)
                from .param import ImageParam
                if isinstance(meta, ImageParam):
                    refs.images[base] = meta
                    return
                refs.free_vars.add(v.name)
                return
            from .param import Param
            from .var import ReductionDomain
            if isinstance(obj, Param):
                refs.params[v.name] = obj
            elif isinstance(obj, ReductionDomain):
                refs.rvars.add(v.name)
                if obj.name in refs.rdoms:      # bounds/predicates seen already
                    return
                refs.rdoms[obj.name] = obj
                # the RDom's own bounds and predicates may use Params/images
                for lo, ext in obj.bounds:
                    self.visit(lo)
                    self.visit(ext)
                for p in obj.predicates:
                    self.visit(p)
            else:
                refs.free_vars.add(v.name)

    vis = V()
    for n in nodes:
        vis.visit(n)
    return refs
