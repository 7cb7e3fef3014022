"""Pipeline inputs: scalar `Param`s and `ImageParam` buffers."""
from __future__ import annotations

import numpy as np

from ..errors import CompileError
from ..ir import expr as ir
from ..ir.types import Type, i32
from .expr import Expr, ExprLike, to_node, int_literal_as, cast_node
from .names import anonymous, internal_name, unique_name, bump_epoch
from .registry import register


class Param(ExprLike):
    """A scalar input: `Param(hl.Float(32), "gain", 1.0)`."""

    def __init__(self, type_: Type, name: str | None = None, value=None, min=None, max=None):
        if not isinstance(type_, Type):
            raise CompileError(f"Param needs a halo Type first, got {type_!r}")
        if isinstance(name, (int, float)) and value is None:
            name, value = None, name
        self._type = type_
        self._user_name = name if name is not None else anonymous("p")
        self._name = internal_name(name, "p")
        self._value = None
        self._min = self._max = None
        self._estimate = None
        register(self._name, self)
        if value is not None:
            self.set(value)
        if min is not None or max is not None:
            self.set_range(min, max)

    def name(self) -> str:
        return self._user_name

    def type(self) -> Type:
        return self._type

    def set(self, value):
        if isinstance(value, Expr):
            raise CompileError(f"Param {self._user_name}.set() needs a Python number")
        if not self._type.is_float():
            if isinstance(value, float) and value != int(value):
                raise CompileError(f"Param {self._user_name} of type {self._type} "
                                   f"cannot hold {value!r}")
            if not self._type.can_represent(int(value)):
                raise CompileError(f"Param {self._user_name} of type {self._type} "
                                   f"cannot hold {value!r}")
        self._value = value

    def get(self):
        return self._value

    def value(self):
        return self._value

    def set_range(self, min=None, max=None):
        self._min, self._max = min, max

    def set_min_value(self, v):
        self._min = v

    def set_max_value(self, v):
        self._max = v

    def min_value(self):
        return self._min

    def max_value(self):
        return self._max

    def set_estimate(self, v):
        self._estimate = v

    def _to_ir(self):
        return ir.Variable(self._type, self._name)

    def __repr__(self):
        return f"<halo.Param '{self._user_name}' of type {self._type}>"

    def __hash__(self):
        return id(self)


class _Dim:
    """`dim(i)` of an ImageParam: symbolic min/extent/stride Exprs."""

    def __init__(self, owner, i):
        self._owner, self._i = owner, i

    def min(self) -> Expr:
        return Expr._wrap(ir.Variable(i32, f"{self._owner._name}.min.{self._i}"))

    def extent(self) -> Expr:
        return Expr._wrap(ir.Variable(i32, f"{self._owner._name}.extent.{self._i}"))

    def max(self) -> Expr:
        return self.min() + self.extent() - 1

    def stride(self) -> Expr:
        return Expr._wrap(ir.Variable(i32, f"{self._owner._name}.stride.{self._i}"))

    def set_estimate(self, min, extent):
        self._owner._estimates[self._i] = (min, extent)
        return self

    def set_bounds(self, min, extent):
        self._owner._constraints[self._i] = (min, extent)
        bump_epoch()
        return self

    def set_min(self, min):
        cur = self._owner._constraints.get(self._i, (None, None))
        self._owner._constraints[self._i] = (min, cur[1])
        bump_epoch()
        return self

    def set_extent(self, extent):
        cur = self._owner._constraints.get(self._i, (None, None))
        self._owner._constraints[self._i] = (cur[0], extent)
        bump_epoch()
        return self

    def dim(self):
        return self._i


class ImageParam:
    """An input buffer: `ImageParam(hl.UInt(8), 2, "input")`."""

    def __init__(self, type_: Type, dimensions: int, name: str | None = None):
        if not isinstance(type_, Type):
            raise CompileError(f"ImageParam needs a halo Type first, got {type_!r}")
        if not isinstance(dimensions, int) or dimensions < 0:
            raise CompileError(f"ImageParam dimensions must be a non-negative int, "
                               f"got {dimensions!r}")
        self._type = type_
        self._dims = dimensions
        self._user_name = name if name is not None else anonymous("im")
        self._name = internal_name(name, "im")
        self._buffer = None
        self._estimates: dict[int, tuple] = {}
        self._constraints: dict[int, tuple] = {}
        self._wrappers: dict = {}
        register(self._name, self)

    def name(self) -> str:
        return self._user_name

    def type(self) -> Type:
        return self._type

    def dimensions(self) -> int:
        return self._dims

    def set(self, buffer):
        from .buffer import Buffer
        b = buffer if isinstance(buffer, Buffer) else Buffer(buffer)
        if b.type() != self._type:
            raise CompileError(f"ImageParam {self._user_name} has type {self._type}, "
                               f"but the buffer has type {b.type()}")
        if b.dimensions() != self._dims:
            raise CompileError(f"ImageParam {self._user_name} has {self._dims} dimensions, "
                               f"but the buffer has {b.dimensions()}")
        self._buffer = b

    def get(self):
        return self._buffer

    def reset(self):
        self._buffer = None

    def dim(self, i: int) -> _Dim:
        if not 0 <= i < self._dims:
            raise CompileError(f"ImageParam {self._user_name} has {self._dims} dimensions; "
                               f"dim({i}) does not exist")
        return _Dim(self, i)

    def width(self):
        return self.dim(0).extent()

    def height(self):
        return self.dim(1).extent()

    def channels(self):
        return self.dim(2).extent()

    def left(self):
        return self.dim(0).min()

    def right(self):
        return self.dim(0).max()

    def top(self):
        return self.dim(1).min()

    def bottom(self):
        return self.dim(1).max()

    def set_estimates(self, estimates):
        for i, (mn, ext) in enumerate(estimates):
            self._estimates[i] = (mn, ext)

    def __getitem__(self, args):
        return _image_call(self, self._name, self._type, self._dims, args, self._user_name)

    def _as_func_source(self):
        return self

    def in_(self, *consumers):
        """A wrapper Func that reads this image; consumers read the wrapper."""
        from ..schedule.directives import make_wrapper
        from .names import bump_epoch
        w = make_wrapper(self._user_name, self._name, self._wrappers, consumers,
                         lambda vs: self[vs], self._dims)
        bump_epoch()
        return w

    def __repr__(self):
        return f"<halo.ImageParam '{self._user_name}' {self._type} x{self._dims}>"

    def __hash__(self):
        return id(self)


def _image_call(owner, name, type_, dims, args, user_name):
    """`img[x, y]`: a read of an input buffer (an Expr)."""
    if not isinstance(args, tuple):
        args = (args,)
    if len(args) == 1 and isinstance(args[0], (list,)):
        args = tuple(args[0])
    from .var import RDom
    flat = []
    for a in args:
        if isinstance(a, RDom):
            flat.extend(a)
        else:
            flat.append(a)
    if len(flat) != dims:
        raise CompileError(f"Image {user_name} has {dims} dimensions but was accessed "
                           f"with {len(flat)} arguments")
    nodes = []
    for i, a in enumerate(flat):
        n = int_literal_as(a, i32) if isinstance(a, int) else to_node(a)
        if n.type.is_float():
            raise CompileError(f"Image {user_name} accessed with a float index "
                               f"({n.type}) in dimension {i}; cast it to an int")
        nodes.append(cast_node(i32, n))
    return Expr._wrap(ir.Call(type_, name, tuple(nodes), ir.CallType.IMAGE, 0, owner))
