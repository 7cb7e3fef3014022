"""halo: a Halide-style array language for Python, compiled to C at run time.

`import halo as hl` offers Halide's Python names with Halide's semantics.
"""
from __future__ import annotations

__version__ = "0.1.0"

import os as _os

# OpenMP worker threads spin for a long time between parallel loops by
# default; on a loaded machine (or with other OpenMP users in the process)
# that steals the cores. Spin briefly, then sleep, unless the user chose.
_os.environ.setdefault("GOMP_SPINCOUNT", "20000")

from .errors import (HaloError, HalideError, CompileError, BufferError,
                     CompilerToolError, InternalError, HaloRuntimeError)
from .ir.types import Type, TypeCode, Int, UInt, Float, Bool, Handle
from .lang.expr import Expr
from .lang.var import Var, RVar, RDom, Range
from .lang.param import Param, ImageParam
from .lang.buffer import Buffer
from .lang.func import Func, FuncRef, Stage, funcs, vars
from .lang.operators import (
    select, mux, min, max, clamp, abs, absd, lerp, fract, sqrt, sin, cos, tan,
    asin, acos, atan, atan2, sinh, cosh, tanh, asinh, acosh, atanh, exp, log,
    erf, floor, ceil, trunc, round, pow, hypot, is_nan, is_inf, is_finite,
    popcount, count_leading_zeros, count_trailing_zeros, div_round_to_zero,
    mod_round_to_zero, logical_not, cast, reinterpret, saturating_cast,
    i8, i16, i64, u8, u16, u32, u64, f16, f64,
    i8_sat, i16_sat, i32_sat, i64_sat, u8_sat, u16_sat, u32_sat, u64_sat,
    print_ as print, print_when,
)
from .lang.operators import i32_ as i32, f32_ as f32
from .lang.reductions import sum, product, maximum, minimum, argmax, argmin
from .lang.boundary import BoundaryConditions
from .lang.pipeline import Pipeline, Callable, evaluate
from .schedule.schedule import (TailStrategy, LoopLevel, DeviceAPI, MemoryType,
                                PrefetchBoundStrategy, LoopAlignStrategy)
from .runtime.target import (Target, get_host_target, get_jit_target_from_environment,
                             get_target_from_environment)

_ = Var("_")
_0, _1, _2, _3, _4, _5, _6, _7, _8, _9 = (Var(f"_{i}") for i in range(10))
