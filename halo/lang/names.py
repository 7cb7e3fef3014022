"""Unique internal names for user objects (Funcs, RDoms, Params, Buffers).

Users may give any name, even a duplicate or one full of quotes; halo keeps
the user's name for messages and gives each object a unique internal name.
Code generators mangle internal names into safe C identifiers separately.
"""
from __future__ import annotations

import itertools
import threading

_lock = threading.Lock()
_used: dict[str, itertools.count] = {}


def unique_name(base: str) -> str:
    if not isinstance(base, str):
        from ..errors import CompileError
        raise CompileError(f"A name must be a str, got {base!r}")
    base = base or "_"
    with _lock:
        counter = _used.get(base)
        if counter is None:
            _used[base] = itertools.count(1)
            return base
        return f"{base}${next(counter)}"


_anon = itertools.count()


def anonymous(prefix: str) -> str:
    """A display name like Halide's (`f0`, `b3`) for an unnamed object."""
    return f"{prefix}{next(_anon)}"


def internal_name(user_name: str | None, prefix: str) -> str:
    """The unique IR name: the user's name, or for an unnamed object just
    `prefix` (`f`, `f$1`, ...). `$n` suffixes never reach generated C, so
    the same program built twice compiles to the same source."""
    return unique_name(user_name if user_name is not None else prefix)


# Every change to an algorithm or schedule bumps this epoch, so compiled
# pipelines can tell in O(1) whether they are still current.
_epoch = itertools.count(1)
current_epoch = [0]


def bump_epoch() -> None:
    current_epoch[0] = next(_epoch)
