"""`BoundaryConditions`: extend a finite image to an infinite Func.

Each function takes an ImageParam, a Buffer, or a Func with explicit bounds
(a list of `(min, extent)` pairs or `Range`s; `None` leaves a dimension
unbounded) and returns a new Func that reads the source only in bounds.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as ir
from ..ir.types import i32
from .expr import Expr, to_node, cast_node
from . import operators as ops


def _source(source, bounds, what):
    from .buffer import Buffer
    from .func import Func
    from .param import ImageParam
    from .var import Range
    if isinstance(source, (Buffer, ImageParam)):
        dims = source.dimensions()
        if bounds is None:
            bounds = [(source.dim(i).min(), source.dim(i).extent()) for i in range(dims)]
        name = source.name()
    elif isinstance(source, Func):
        if not source.defined():
            raise CompileError(f"BoundaryConditions.{what}: Func {source.name()} is undefined")
        dims = source.dimensions()
        if bounds is None:
            raise CompileError(f"BoundaryConditions.{what} on Func {source.name()} needs "
                               f"explicit bounds: a list of (min, extent) per dimension")
        name = source.name()
    else:
        raise CompileError(f"BoundaryConditions.{what} takes an ImageParam, Buffer or Func, "
                           f"got {type(source).__name__}")
    norm = []
    for b in bounds:
        if b is None:
            norm.append(None)
        elif isinstance(b, Range):
            norm.append((b.min, b.extent))
        else:
            lo, ext = b
            norm.append(None if lo is None or ext is None else (lo, ext))
    if len(norm) > dims:
        raise CompileError(f"BoundaryConditions.{what}: {len(norm)} bounds given for "
                           f"{name}, which has {dims} dimensions")
    norm += [None] * (dims - len(norm))
    return source, norm, dims, name


def _make(source, bounds, what, coord_fn, exterior=None):
    from .func import Func
    from .var import Var
    src, norm, dims, name = _source(source, bounds, what)
    vs = [Var(f"_{i}") for i in range(dims)]
    coords = []
    inside = None
    for v, b in zip(vs, norm):
        if b is None:
            coords.append(v)
            continue
        lo, ext = cast_node(i32, to_node(b[0])), cast_node(i32, to_node(b[1]))
        coords.append(Expr._wrap(coord_fn(to_node(v), lo, ext)))
        if exterior is not None:
            c = ir.And(ir.GE(to_node(v), lo), ir.LT(to_node(v), ir.Add(lo, ext)))
            inside = c if inside is None else ir.And(inside, c)
    f = Func(f"{what}_{name}")
    value = src[tuple(coords)]
    if exterior is not None and inside is not None:
        ext_v = to_node(exterior) if not isinstance(exterior, (int, float)) else None
        vn = to_node(value)
        if ext_v is None:
            from .expr import int_literal_as
            ext_v = int_literal_as(exterior, vn.type) if isinstance(exterior, int) \
                else cast_node(vn.type, to_node(exterior))
        if ext_v.type != vn.type:
            raise CompileError(f"BoundaryConditions.constant_exterior: the value has type "
                               f"{ext_v.type}, but {name} has type {vn.type}")
        value = Expr._wrap(ir.Select(inside, vn, ext_v))
    f[tuple(vs)] = value
    return f


def _clamp(v, lo, ext):
    return ir.Max(ir.Min(v, ir.Sub(ir.Add(lo, ext), ir.Const(i32, 1))), lo)


def _repeat(v, lo, ext):
    return ir.Add(ir.Mod(ir.Sub(v, lo), ext), lo)


def _mirror_image(v, lo, ext):
    period = ir.Mul(ext, ir.Const(i32, 2))
    c = ir.Mod(ir.Sub(v, lo), period)
    flipped = ir.Sub(ir.Sub(period, ir.Const(i32, 1)), c)
    # The value is always in [lo, lo+ext-1]; the clamp (a no-op) lets bounds
    # inference prove it, as Halide's clamp(likely(..)) does.
    return _clamp(ir.Add(ir.Select(ir.LT(c, ext), c, flipped), lo), lo, ext)


def _mirror_interior(v, lo, ext):
    period = ir.Max(ir.Mul(ir.Sub(ext, ir.Const(i32, 1)), ir.Const(i32, 2)), ir.Const(i32, 1))
    c = ir.Mod(ir.Sub(v, lo), period)
    flipped = ir.Sub(period, c)
    return ir.Add(ir.Min(ir.Select(ir.LT(c, ext), c, flipped), ir.Sub(ext, ir.Const(i32, 1))), lo)


class BoundaryConditions:
    @staticmethod
    def constant_exterior(source, value, bounds=None):
        return _make(source, bounds, "constant_exterior", _clamp, exterior=value)

    @staticmethod
    def repeat_edge(source, bounds=None):
        return _make(source, bounds, "repeat_edge", _clamp)

    @staticmethod
    def repeat_image(source, bounds=None):
        return _make(source, bounds, "repeat_image", _repeat)

    @staticmethod
    def mirror_image(source, bounds=None):
        return _make(source, bounds, "mirror_image", _mirror_image)

    @staticmethod
    def mirror_interior(source, bounds=None):
        return _make(source, bounds, "mirror_interior", _mirror_interior)
