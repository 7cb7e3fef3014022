"""Schedules as plain data.

A `FuncSchedule` says where a Func is computed and stored; a `StageSchedule`
(one per definition) says how its loops are split and ordered and what kind
each loop is. Every directive call also appends a `Directive` record to the
schedule's `log`, in call order: that log is what schedule files hold, so a
hand-written schedule and a tuned one are the same data.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..ir.stmt import ForKind


class TailStrategy(enum.Enum):
    Auto = "Auto"
    GuardWithIf = "GuardWithIf"
    ShiftInwards = "ShiftInwards"
    RoundUp = "RoundUp"
    Predicate = "Predicate"
    PredicateLoads = "PredicateLoads"
    PredicateStores = "PredicateStores"


# The unit loop gpu_single_thread() adds outside a stage's loops (a GPU block).
SINGLE_THREAD_DIM = "__block_id_x"

# Where a GPU loop runs, with Halide's names (`None` is a keyword, hence the
# functional form: `hl.DeviceAPI.Default_GPU`, `getattr(hl.DeviceAPI, "None")`).
DeviceAPI = enum.Enum("DeviceAPI", [(n, n) for n in
                                    ("None", "Host", "Default_GPU", "CUDA", "OpenCL")])


class MemoryType(enum.Enum):
    """Where a Func's storage lives (`store_in`)."""
    Auto = "Auto"
    Heap = "Heap"
    Stack = "Stack"
    Register = "Register"
    GPUShared = "GPUShared"
    GPUTexture = "GPUTexture"
    LockedCache = "LockedCache"
    VTCM = "VTCM"


class PrefetchBoundStrategy(enum.Enum):
    """What a prefetch near a buffer's edge does. halo clamps for NonFaulting
    too: computing an address outside the buffer is undefined behaviour in C."""
    Clamp = "Clamp"
    GuardWithIf = "GuardWithIf"
    NonFaulting = "NonFaulting"


@dataclass
class Prefetch:
    """At each iteration of loop `at`, prefetch what loop `from_` touches of
    `target` (a Func or input buffer, by internal name) `offset` iterations ahead."""
    target: str
    kind: str            # "func" | "image"
    at: str
    from_: str
    offset: int
    strategy: PrefetchBoundStrategy


class LoopAlignStrategy(enum.Enum):
    """How compute_with() lines up loops of different bounds. Fused stages
    are independent, so this only moves work around: halo runs the union of
    both ranges with each stage guarded by its own (NoAlign) for all four."""
    AlignStart = "AlignStart"
    AlignEnd = "AlignEnd"
    NoAlign = "NoAlign"
    Auto = "Auto"


@dataclass(frozen=True)
class LoopLevel:
    """Where to compute or store a Func: `root`, `inlined`, or at a loop."""
    kind: str                   # "root" | "inlined" | "at"
    func: str | None = None     # internal name of the consumer Func
    var: str | None = None      # loop variable name of that consumer
    stage: int = -1             # stage of the consumer (-1: the last one)

    @staticmethod
    def root() -> "LoopLevel":
        return LoopLevel("root")

    @staticmethod
    def inlined() -> "LoopLevel":
        return LoopLevel("inlined")

    def is_root(self) -> bool:
        return self.kind == "root"

    def is_inlined(self) -> bool:
        return self.kind == "inlined"


@dataclass
class Directive:
    """One schedule call, e.g. Directive("split", ["x", "xo", "xi", 8])."""
    name: str
    args: list
    stage: int = 0
    specialization: int | None = None   # index into the stage's specializations


@dataclass
class Dim:
    var: str
    kind: ForKind = ForKind.SERIAL
    is_rvar: bool = False


@dataclass
class Split:
    """`old` becomes `outer * factor + inner` (kind "split"), or the
    reverse (kind "fuse": `old` is the fused name of `inner` and `outer`),
    or a plain `rename` of `old` to `outer`."""
    kind: str
    old: str
    outer: str
    inner: str | None = None
    factor: object = None
    tail: TailStrategy = TailStrategy.Auto


@dataclass
class StageSchedule:
    dims: list = field(default_factory=list)    # innermost first
    splits: list = field(default_factory=list)
    bounds: dict = field(default_factory=dict)  # var -> (min, extent)
    atomic: bool = False                         # updates done with atomic ops
    prefetches: list = field(default_factory=list)  # of Prefetch
    compute_with: LoopLevel | None = None        # fused into that stage's loops
    specializations: list = field(default_factory=list)

    @staticmethod
    def default(pure: list, rvars: list) -> "StageSchedule":
        # Halide's default order: reduction variables innermost, then pure
        # variables, each list in its declaration order (first = innermost).
        dims = [Dim(v, is_rvar=True) for v in rvars] + [Dim(v) for v in pure]
        return StageSchedule(dims=dims)

    def dim_names(self) -> list:
        return [d.var for d in self.dims]


@dataclass
class Specialization:
    """Under `condition` (an IR Expr over Params), run with `schedule`, or
    fail with `fail_message` (specialize_fail)."""
    condition: object
    schedule: "StageSchedule"
    fail_message: str | None = None


@dataclass
class FuncSchedule:
    compute_level: LoopLevel = field(default_factory=LoopLevel.inlined)
    store_level: LoopLevel = field(default_factory=LoopLevel.inlined)
    log: list = field(default_factory=list)
    estimates: dict = field(default_factory=dict)   # dim index -> (min, extent)
    bounds: dict = field(default_factory=dict)      # pure var -> (min|None, extent)
    align: dict = field(default_factory=dict)       # pure var -> (modulus, remainder)
    explicit_compute: bool = False
    explicit_store: bool = False
    wrappers: dict = field(default_factory=dict)    # consumer name ('' = all) -> Func
    storage_order: list | None = None               # pure vars, innermost first
    folds: dict = field(default_factory=dict)       # pure var -> circular extent
    memory_type: MemoryType = MemoryType.Auto       # store_in()
    hoist_level: LoopLevel | None = None            # hoist_storage: allocate here
    memoize: bool = False                           # keep values across calls
    memo_eviction_key: int | None = None
