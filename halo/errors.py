"""Every halo exception, under one root class.

* `HaloError` (alias `HalideError`, Halide's name) is the root.
* `CompileError`: the program or schedule is wrong (raised before running).
* `RuntimeError_` / `BufferError`: a call was wrong (bad buffer, too small);
  `DLPackError` for a DLPack exchange that cannot be done.
* `CompilerToolError`: the C compiler or a device toolchain failed.
* `InternalError`: a halo bug; the message says so and carries the IR.
"""
from __future__ import annotations

import builtins


class HaloError(Exception):
    """Root of all halo errors (Halide's `HalideError`)."""


HalideError = HaloError


class CompileError(HaloError, ValueError):
    """The algorithm or schedule is invalid."""


class HaloRuntimeError(HaloError, RuntimeError):
    """A pipeline call was refused or failed at run time."""


class BufferError(HaloRuntimeError):
    """A buffer's type, rank or extents do not fit the pipeline."""


class DLPackError(BufferError, builtins.BufferError):
    """A DLPack exchange is impossible (also Python's BufferError, which the
    DLPack protocol tells consumers to expect)."""


class RDomIndexError(CompileError, KeyError):
    """An RDom has no dimension of that index (a KeyError, as in Halide)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class CompilerToolError(HaloError):
    """The external compiler is missing or failed; message has the command."""


class ScheduleFileError(CompileError):
    """A schedule file cannot be applied; names the file, Func, directive."""


class InternalError(HaloError):
    """A halo bug. Please report it with the message, which includes the IR."""

    def __init__(self, message: str, ir=None):
        text = f"Internal halo error (this is a bug in halo): {message}"
        if ir is not None:
            text += f"\nIR:\n{ir}"
        super().__init__(text)
