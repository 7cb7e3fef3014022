"""GPU scheduling directives, with Halide's names and overloads.

`gpu_blocks`, `gpu_threads` and `gpu_lanes` mark existing loops; `gpu`
marks block and thread loops together; `gpu_tile` splits, reorders (threads
innermost) and marks in one call; `gpu_single_thread` runs a stage in one
thread of one block; `store_in` chooses a Func's memory. Like every
directive they check their arguments at once and append a record to the
schedule log (which schedule files hold). Whether loops nest legally and
how many threads a block has are checked when the pipeline is lowered
(`halo.lower.gpu_kernels`), where the loop extents are known.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir.stmt import ForKind
from .directives import _do_split, _find_dim, _dim_name, _record, _target, _is_var, _func_only
from .schedule import SINGLE_THREAD_DIM, DeviceAPI, Dim, MemoryType, TailStrategy


def _split_api(args, directive, sname):
    """(args without a trailing DeviceAPI, the DeviceAPI or None)."""
    args = list(args)
    api = None
    if args and isinstance(args[-1], (DeviceAPI, str)) and not _is_var(args[-1]) \
            and _api(args[-1]) is not None:
        api = _api(args.pop())
    return args, api


def _api(a):
    if isinstance(a, DeviceAPI):
        return a
    try:
        return DeviceAPI(a)
    except ValueError:
        return None


def _mark(owner, vars, kind, directive):
    func, fn, k, sched, sname = _target(owner)
    if not 1 <= len(vars) <= 3:
        raise CompileError(f"In schedule for {sname}: {directive}() takes 1 to 3 dimensions "
                           f"(GPUs have x, y and z indices), got {len(vars)}")
    for v in vars:
        n = _dim_name(v, directive, sname, sched)
        sched.dims[_find_dim(sched, n, directive, sname)].kind = kind


def _with_api(args, api):
    return args + ([api.value] if api not in (None, DeviceAPI.Default_GPU) else [])


def _kind_marker(kind, name):
    def directive(owner, *args, device_api=None):
        sname = _target(owner)[4]
        vars, api = _split_api(args, name, sname)
        api = _api(device_api) if device_api is not None else api
        _mark(owner, vars, kind, name)
        _record(owner, name, _with_api(vars, api))
        return owner
    directive.__name__ = name
    return directive


gpu_blocks = _kind_marker(ForKind.GPU_BLOCK, "gpu_blocks")
gpu_threads = _kind_marker(ForKind.GPU_THREAD, "gpu_threads")


def gpu_lanes(owner, var, device_api=None):
    """Map `var` to the lanes of a warp (a thread dimension)."""
    _mark(owner, [var], ForKind.GPU_LANE, "gpu_lanes")
    _record(owner, "gpu_lanes", _with_api([var], _api(device_api) if device_api else None))
    return owner


def gpu_single_thread(owner, device_api=None):
    """Run the whole stage in a single thread of a single GPU block."""
    func, fn, k, sched, sname = _target(owner)
    if any(d.var == SINGLE_THREAD_DIM for d in sched.dims):
        raise CompileError(f"In schedule for {sname}: gpu_single_thread() was already called")
    if any(d.kind.is_gpu() for d in sched.dims):
        raise CompileError(f"In schedule for {sname}: gpu_single_thread() cannot be combined "
                           f"with other GPU loops in the same stage")
    sched.dims.append(Dim(SINGLE_THREAD_DIM, ForKind.GPU_BLOCK))
    _record(owner, "gpu_single_thread", _with_api([], _api(device_api) if device_api else None))
    return owner


def gpu(owner, *args, device_api=None):
    """gpu(bx, tx), gpu(bx, by, tx, ty) or gpu(bx, by, bz, tx, ty, tz)."""
    sname = _target(owner)[4]
    vars, api = _split_api(args, "gpu", sname)
    api = _api(device_api) if device_api is not None else api
    if len(vars) not in (2, 4, 6):
        raise CompileError(f"In schedule for {sname}: gpu() takes (block_x, thread_x), "
                           f"(bx, by, tx, ty) or (bx, by, bz, tx, ty, tz); got {len(vars)} "
                           f"dimensions")
    n = len(vars) // 2
    _mark(owner, vars[:n], ForKind.GPU_BLOCK, "gpu")
    _mark(owner, vars[n:], ForKind.GPU_THREAD, "gpu")
    _record(owner, "gpu", _with_api(vars, api))
    return owner


# number of positional (non tail/api) arguments -> (dims, has explicit block vars)
_TILE_FORMS = {3: (1, False), 4: (1, True), 6: (2, False), 8: (2, True),
               9: (3, False), 12: (3, True)}


def gpu_tile(owner, *args, tail=None, device_api=None):
    """Halide's six overloads: (x, [bx,] tx, xs), (x, y, [bx, by,] tx, ty, xs, ys),
    (x, y, z, [bx, by, bz,] tx, ty, tz, xs, ys, zs), each with optional
    TailStrategy and DeviceAPI."""
    func, fn, k, sched, sname = _target(owner)
    args, api = _split_api(args, "gpu_tile", sname)
    api = _api(device_api) if device_api is not None else api
    t = TailStrategy.Auto
    if args and isinstance(args[-1], (TailStrategy, str)) and not _is_var(args[-1]):
        t = args.pop()
    if tail is not None:
        t = tail
    form = _TILE_FORMS.get(len(args))
    if form is None:
        raise CompileError(f"In schedule for {sname}: gpu_tile() takes (x, [bx,] tx, size), "
                           f"(x, y, [bx, by,] tx, ty, xs, ys) or the 3-D form; got "
                           f"{len(args)} arguments")
    n, explicit = form
    vs = args[:n]
    if explicit:
        bs, ts, sizes = args[n:2 * n], args[2 * n:3 * n], args[3 * n:]
    else:
        bs, ts, sizes = vs, args[n:2 * n], args[2 * n:]
    for v, b, tv, size in zip(vs, bs, ts, sizes):
        _do_split(owner, v, b, tv, size, t, "gpu_tile")
    names = [_dim_name(v, "gpu_tile", sname, sched) for v in list(ts) + list(bs)]
    idx = [_find_dim(sched, nm, "gpu_tile", sname) for nm in names]
    moved = [sched.dims[i] for i in idx]
    for slot, d in zip(sorted(idx), moved):      # threads innermost, then blocks
        sched.dims[slot] = d
    _mark(owner, bs, ForKind.GPU_BLOCK, "gpu_tile")
    _mark(owner, ts, ForKind.GPU_THREAD, "gpu_tile")
    _record(owner, "gpu_tile", _with_api(list(args) + [t], api))
    return owner


def store_in(func, memory_type):
    """Keep this Func's storage in `memory_type` (e.g. MemoryType.GPUShared)."""
    _func_only(func, "store_in")
    fn = func._f
    if isinstance(memory_type, str):
        try:
            memory_type = MemoryType(memory_type)
        except ValueError:
            pass
    if not isinstance(memory_type, MemoryType):
        raise CompileError(f"In schedule for {fn.user_name}: store_in() needs an "
                           f"hl.MemoryType ({', '.join(m.value for m in MemoryType)}), got "
                           f"{memory_type!r}")
    fn.schedule.memory_type = memory_type
    _record(func, "store_in", [memory_type.value])
    return func


LOOP_DIRECTIVES = {"gpu_blocks": gpu_blocks, "gpu_threads": gpu_threads, "gpu_lanes": gpu_lanes,
                   "gpu_single_thread": gpu_single_thread, "gpu": gpu, "gpu_tile": gpu_tile}
FUNC_ONLY_DIRECTIVES = {"store_in": store_in}


def file_roles(name, args) -> str | None:
    """Argument roles for schedule files (see serialize._roles); None: not GPU."""
    n = len(args)
    api = 1 if args and isinstance(args[-1], str) and _api(args[-1]) is not None \
        and name != "store_in" else 0
    if name in ("gpu_blocks", "gpu_threads", "gpu_lanes", "gpu"):
        return "V" * (n - api) + "N" * api
    if name == "gpu_single_thread":
        return "N" * n
    if name == "gpu_tile":
        m = n - api - 1                          # positional args before the tail
        dims, explicit = _TILE_FORMS.get(m, (0, False))
        if not dims:
            return "N" * n
        return "V" * (m - dims) + "N" * dims + "T" + "N" * api
    if name == "store_in":
        return "N" * n
    return None
