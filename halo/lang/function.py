"""The algorithm graph: a `Function` and its `Definition`s, as plain data.

This is what lowering and the interpreter read. The user-facing `Func`
(`halo.lang.func`) builds it and checks each definition as it is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..ir import expr as ir
from ..ir.types import Type


@dataclass
class Definition:
    """One definition of a Function: the pure one (index 0) or an update.

    `args` are the left-hand-side coordinates; `values` the Tuple of values.
    `rdom` lists the reduction domains whose RVars the definition uses, in
    order; the update iterates their variables with the first one innermost.
    """
    args: tuple
    values: tuple
    rdoms: tuple = ()
    schedule: object = None          # a halo.schedule.StageSchedule

    def rvars(self) -> list[str]:
        return [v for d in self.rdoms for v in d.vars]

    def rvar_bounds(self) -> list[tuple]:
        return [b for d in self.rdoms for b in d.bounds]

    def predicates(self) -> list:
        return [p for d in self.rdoms for p in d.predicates]


@dataclass(eq=False)
class Function:
    name: str                        # unique internal name
    user_name: str
    pure_args: list = field(default_factory=list)   # Var names of the pure def
    output_types: list = field(default_factory=list)
    definitions: list = field(default_factory=list)  # [pure, update0, ...]
    schedule: object = None          # a halo.schedule.FuncSchedule
    # Buffers and ImageParams read by this Function, by internal name.
    inputs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    callees: dict = field(default_factory=dict)      # name -> Function
    wraps: str | None = None     # for an in_() wrapper: the name it copies
    # The definitions as the user wrote them, kept when a schedule directive
    # (rfactor) rewrites `definitions`: the algorithm hash is of these.
    algorithm_definitions: list | None = None

    def user_definitions(self) -> list:
        return self.algorithm_definitions if self.algorithm_definitions is not None \
            else self.definitions

    def defined(self) -> bool:
        return bool(self.definitions)

    def dimensions(self) -> int:
        return len(self.pure_args)

    def updates(self) -> list:
        return self.definitions[1:]

    def calls(self) -> set[str]:
        """Names of the Functions this one reads (not itself)."""
        from ..ir.mutator import calls_in
        names = set()
        for d in self.definitions:
            for node in (*d.args, *d.values, *d.predicates(),
                         *[x for b in d.rvar_bounds() for x in b]):
                for c in calls_in(node, ir.CallType.FUNC):
                    if c.name != self.name:
                        names.add(c.name)
        return names

    def __repr__(self):
        return f"<Function {self.user_name}>"
