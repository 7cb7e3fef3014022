"""Scalar and vector types, with Halide's names and numpy mappings.

A `Type` is an immutable value: a code (int, uint, float, handle), a width in
bits and a lane count. `Bool()` is `UInt(1)`, as in Halide. Methods mirror
Halide's Python bindings (`t.bits()`, `t.is_int()`, `t.with_lanes(4)` ...).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class TypeCode(enum.IntEnum):
    Int = 0
    UInt = 1
    Float = 2
    Handle = 3


@dataclass(frozen=True, slots=True)
class Type:
    code_: TypeCode
    bits_: int
    lanes_: int = 1

    # -- Halide's accessors (methods, as in the bindings) --------------------
    def code(self) -> TypeCode:
        return self.code_

    def bits(self) -> int:
        return self.bits_

    def bytes(self) -> int:
        return (self.bits_ + 7) // 8

    def lanes(self) -> int:
        return self.lanes_

    def is_int(self) -> bool:
        return self.code_ == TypeCode.Int

    def is_uint(self) -> bool:
        return self.code_ == TypeCode.UInt

    def is_float(self) -> bool:
        return self.code_ == TypeCode.Float

    def is_bool(self) -> bool:
        return self.code_ == TypeCode.UInt and self.bits_ == 1

    def is_handle(self) -> bool:
        return self.code_ == TypeCode.Handle

    def is_bfloat(self) -> bool:
        return False

    def is_scalar(self) -> bool:
        return self.lanes_ == 1

    def is_vector(self) -> bool:
        return self.lanes_ > 1

    def element_of(self) -> "Type":
        return Type(self.code_, self.bits_, 1)

    def with_lanes(self, lanes: int) -> "Type":
        return Type(self.code_, self.bits_, lanes)

    def with_bits(self, bits: int) -> "Type":
        return Type(self.code_, bits, self.lanes_)

    def with_code(self, code: TypeCode) -> "Type":
        return Type(code, self.bits_, self.lanes_)

    def max(self):
        """Largest representable value, as a Python number."""
        if self.is_float():
            return float(np.finfo(self.numpy_dtype()).max)
        if self.is_bool():
            return 1
        if self.is_int():
            return (1 << (self.bits_ - 1)) - 1
        return (1 << self.bits_) - 1

    def min(self):
        if self.is_float():
            return float(np.finfo(self.numpy_dtype()).min)
        if self.is_int():
            return -(1 << (self.bits_ - 1))
        return 0

    def is_max(self, v) -> bool:
        return v == self.max()

    def is_min(self, v) -> bool:
        return v == self.min()

    def can_represent(self, other) -> bool:
        """True when every value of `other` (a Type or a Python number) fits."""
        if isinstance(other, Type):
            if self.lanes_ != other.lanes_:
                return False
            if other.is_float():
                return self.is_float() and self.bits_ >= other.bits_
            if self.is_float():
                return other.bits_ < {16: 11, 32: 24, 64: 53}[self.bits_]
            return self.min() <= other.min() and other.max() <= self.max()
        if isinstance(other, float):
            if self.is_float():
                return float(self.numpy_dtype().type(other)) == other or other != other
            return other == int(other) and self.min() <= other <= self.max()
        return self.min() <= other <= self.max()

    def numpy_dtype(self) -> np.dtype:
        return np.dtype(_NUMPY[(self.code_, self.bits_)])

    def __str__(self) -> str:
        base = {TypeCode.Int: "int", TypeCode.UInt: "uint",
                TypeCode.Float: "float", TypeCode.Handle: "handle"}[self.code_]
        s = "bool" if self.is_bool() else f"{base}{self.bits_}"
        return s if self.lanes_ == 1 else f"{s}x{self.lanes_}"

    def __repr__(self) -> str:
        return f"<halo.Type {self}>"


_NUMPY = {
    (TypeCode.Int, 8): "int8", (TypeCode.Int, 16): "int16",
    (TypeCode.Int, 32): "int32", (TypeCode.Int, 64): "int64",
    (TypeCode.UInt, 1): "bool", (TypeCode.UInt, 8): "uint8",
    (TypeCode.UInt, 16): "uint16", (TypeCode.UInt, 32): "uint32",
    (TypeCode.UInt, 64): "uint64", (TypeCode.Float, 16): "float16",
    (TypeCode.Float, 32): "float32", (TypeCode.Float, 64): "float64",
    (TypeCode.Handle, 64): "uint64",
}
_VALID_BITS = {TypeCode.Int: (8, 16, 32, 64), TypeCode.UInt: (1, 8, 16, 32, 64),
               TypeCode.Float: (16, 32, 64), TypeCode.Handle: (64,)}


def _make(code: TypeCode, bits: int, lanes: int) -> Type:
    from ..errors import CompileError
    if not isinstance(bits, int) or bits not in _VALID_BITS[code]:
        raise CompileError(f"{code.name}({bits}) is not a supported type: "
                           f"bits must be one of {_VALID_BITS[code]}")
    if not isinstance(lanes, int) or lanes < 1:
        raise CompileError(f"lanes must be a positive integer, got {lanes!r}")
    return Type(code, bits, lanes)


def Int(bits: int, lanes: int = 1) -> Type:
    return _make(TypeCode.Int, bits, lanes)


def UInt(bits: int, lanes: int = 1) -> Type:
    return _make(TypeCode.UInt, bits, lanes)


def Float(bits: int, lanes: int = 1) -> Type:
    return _make(TypeCode.Float, bits, lanes)


def Bool(lanes: int = 1) -> Type:
    return Type(TypeCode.UInt, 1, lanes)


def Handle(bits: int = 64, lanes: int = 1) -> Type:
    return _make(TypeCode.Handle, bits, lanes)


def from_numpy(dtype) -> Type:
    dt = np.dtype(dtype)
    for (code, bits), name in _NUMPY.items():
        if name == dt.name and code != TypeCode.Handle:
            return Type(code, bits)
    from ..errors import CompileError
    raise CompileError(f"numpy dtype {dt} has no halo type")


# Frequently used constants.
i8, i16, i32, i64 = (Type(TypeCode.Int, b) for b in (8, 16, 32, 64))
u8, u16, u32, u64 = (Type(TypeCode.UInt, b) for b in (8, 16, 32, 64))
f16, f32, f64 = (Type(TypeCode.Float, b) for b in (16, 32, 64))
bool_ = Type(TypeCode.UInt, 1)
