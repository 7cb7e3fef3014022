"""Compile C source to a shared library, through a content-hash cache.

The key hashes the source, the compiler's identity and the flags. Entries
live in `$HALO_CACHE_DIR` or the XDG cache dir (`~/.cache/halo`). A file
lock per key makes concurrent processes compile a kernel once; the library
is written to a temporary name and renamed, so a reader never sees half a
file. A cache entry that is incomplete (checked before loading: a truncated
library would crash dlopen) or fails to load is rebuilt.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import CompilerToolError

FORMAT = "1"


def cache_dir() -> Path:
    env = os.environ.get("HALO_CACHE_DIR")
    if env:
        p = Path(env)
    else:
        import platformdirs
        p = Path(platformdirs.user_cache_dir("halo"))
    if p.exists() and not p.is_dir():
        raise CompilerToolError(f"The halo cache path {p} exists and is not a directory "
                                f"(set HALO_CACHE_DIR to a directory)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CompilerToolError(f"Cannot create the halo cache directory {p}: {e}") from e
    return p


@functools.lru_cache(maxsize=None)
def find_compiler() -> list:
    cc = os.environ.get("CC") or "cc"
    argv = shlex.split(cc)
    if not argv or shutil.which(argv[0]) is None:
        raise CompilerToolError(
            f"No C compiler found: looked for {cc!r} (set CC, or install gcc or clang, "
            f"e.g. 'apt-get install gcc')")
    return argv


@functools.lru_cache(maxsize=None)
def compiler_identity(cc: tuple) -> str:
    try:
        out = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout.splitlines()[0] if out.stdout else " ".join(cc)
    except (OSError, subprocess.SubprocessError) as e:
        raise CompilerToolError(f"Cannot run the C compiler {' '.join(cc)}: {e}") from e


def compile_shared(source: str, flags: list, openmp: bool, stem: str = "kernel") -> Path:
    """Return the path of a shared library built from `source` (cached)."""
    cc = find_compiler()
    all_flags = ["-std=gnu11", "-shared", "-fPIC", *flags]
    if openmp:
        all_flags.append("-fopenmp")
    else:
        # honour `omp simd` on vectorized loops (the source guards the pragma)
        all_flags += ["-fopenmp-simd", "-DHALO_OMP_SIMD"]
    all_flags.append("-lm")
    key = hashlib.sha256("\0".join([FORMAT, compiler_identity(tuple(cc)), *all_flags, source])
                         .encode()).hexdigest()[:32]
    root = cache_dir()
    lib = root / f"{stem[:40]}-{key}.so"
    # the library carries its key: an entry holding another kernel's library
    # (copied or renamed into place) is rebuilt, never run
    source = f"{source}\n{_KEY_DECL}\"{_KEY_TAG}{key}\";\n"
    if _intact(lib, key):
        return lib
    from filelock import FileLock
    try:
        lock = FileLock(str(root / f"{key}.lock"), timeout=600)
        with lock:
            if _intact(lib, key):
                return lib
            _build(cc, all_flags, source, lib, root)
    except OSError as e:
        # Read-only cache: build in a private temporary directory instead.
        if not os.access(root, os.W_OK):
            tmp = Path(tempfile.mkdtemp(prefix="halo-"))
            lib = tmp / lib.name
            _build(cc, all_flags, source, lib, tmp)
            return lib
        raise CompilerToolError(f"Cannot write to the halo cache {root}: {e}") from e
    return lib


def _build(cc, flags, source, lib: Path, workdir: Path):
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".build-") as tmp:
        src = Path(tmp) / "kernel.c"
        src.write_text(source)
        out = Path(tmp) / "kernel.so"
        cmd = [*cc, str(src), "-o", str(out), *flags]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            raise CompilerToolError(f"Running the C compiler failed: {shlex.join(cmd)}\n{e}") from e
        if r.returncode != 0:
            keep = Path(tempfile.mkdtemp(prefix="halo-failed-")) / "kernel.c"
            keep.write_text(source)
            raise CompilerToolError(
                f"The C compiler failed (exit {r.returncode}).\ncommand: {shlex.join(cmd)}\n"
                f"source kept at: {keep}\nstderr:\n{r.stderr[-4000:]}")
        os.replace(out, lib)   # atomic: readers see the whole file or none


_KEY_TAG = "halo-cache-key:"
_KEY_DECL = "__attribute__((used)) static const char halo_cache_key[] = "


def _intact(lib: Path, key: str) -> bool:
    """Whether `lib` is a whole file built for `key`: dlopen of a truncated
    ELF dies of SIGBUS, and another kernel's library would run wrong code.

    Checks that the ELF program and section header tables, and every segment
    they name, lie inside the file. Non-ELF platforms are left to dlopen.
    """
    try:
        with open(lib, "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    if (_KEY_TAG + key).encode() not in data:
        return False
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or \
            data[5] not in (1, 2):
        return False
    end = "<" if data[5] == 1 else ">"
    try:
        if data[4] == 2:   # ELF64
            phoff, shoff = struct.unpack_from(end + "QQ", data, 32)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 54)
            seg = [struct.unpack_from(end + "8xQ16xQ", data, phoff + k * phentsize)
                   for k in range(phnum)]
        else:              # ELF32
            phoff, shoff = struct.unpack_from(end + "II", data, 28)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 42)
            seg = [struct.unpack_from(end + "4xI8xI", data, phoff + k * phentsize)
                   for k in range(phnum)]
    except struct.error:
        return False
    if shoff + shnum * shentsize > len(data):
        return False
    return all(off + size <= len(data) for off, size in seg)


def evict(lib: Path) -> None:
    try:
        lib.unlink()
    except OSError:
        pass
