"""Keep host and device copies of buffers coherent around host code.

Accepts the host body after `extract_gpu_kernels`. Kernel launches move
their buffers to the device themselves (the runtime copies a buffer whose
host copy is newer) and mark what they write as newer on the device. This
pass adds, around each piece of host code that touches a buffer some kernel
also uses, a `DeviceSync(to_host)` before it (bring back data the device
wrote) and a `DeviceSync(host_dirty)` after it when it writes the buffer
(so the next launch copies it over). "A piece of host code" is a maximal
statement that contains no launch; statements that do are entered.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import expr as E
from ..ir import stmt as S
from ..ir.mutator import IRVisitor
from .gpu_kernels import KernelLaunch


@dataclass(frozen=True)
class DeviceSync(S.Stmt):
    """`to_host`: copy `buffer` back if the device holds newer data;
    `host_dirty`: the host copy of `buffer` is now the newer one."""
    buffer: str
    slot: int
    size: E.Expr          # elements, or -1 for a pipeline argument
    action: str

    def __repr__(self):
        return f"device_sync({self.buffer}, {self.action})"


def inject_device_copies(body: S.Stmt) -> S.Stmt:
    gpu = {}
    for launch in _launches(body):
        for a, slot, size in zip(launch.kernel.buffers(), launch.slots, launch.sizes):
            gpu[a.name] = (slot, size)
    if not gpu:
        return body
    return _rewrite(body, gpu)


def _launches(s) -> list:
    out = []

    class V(IRVisitor):
        def visit_KernelLaunch(self, k):
            out.append(k)
    V().visit(s)
    return out


def _rewrite(s, gpu):
    if isinstance(s, KernelLaunch):
        return s
    if not _launches(s):
        reads, writes = _host_accesses(s, gpu)
        if not reads and not writes:
            return s
        before = [DeviceSync(b, *gpu[b], "to_host") for b in sorted(reads | writes)]
        after = [DeviceSync(b, *gpu[b], "host_dirty") for b in sorted(writes)]
        return S.block(*before, s, *after)
    if isinstance(s, S.Block):
        return S.block(*[_rewrite(x, gpu) for x in s.stmts])
    if isinstance(s, S.LetStmt):
        return S.LetStmt(s.name, s.value, _rewrite(s.body, gpu))
    if isinstance(s, S.Allocate):
        return S.Allocate(s.name, s.type, s.size, _rewrite(s.body, gpu))
    if isinstance(s, S.For):
        return S.For(s.name, s.min, s.extent, s.kind, _rewrite(s.body, gpu))
    if isinstance(s, S.IfThenElse):
        return S.IfThenElse(s.condition, _rewrite(s.then_case, gpu),
                            None if s.else_case is None else _rewrite(s.else_case, gpu))
    return s


def _host_accesses(s, gpu):
    reads, writes = set(), set()

    class V(IRVisitor):
        def visit_Load(self, e):
            if e.buffer in gpu:
                reads.add(e.buffer)
            self.generic(e)

        def visit_Store(self, st):
            if st.buffer in gpu:
                writes.add(st.buffer)
            self.generic(st)
    V().visit(s)
    return reads, writes
