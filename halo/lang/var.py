"""`Var`, `RVar` and `RDom`: the dimensions of Funcs and reduction domains."""
from __future__ import annotations

from ..errors import CompileError, RDomIndexError
from ..ir import expr as ir
from ..ir.types import i32
from .expr import Expr, ExprLike, to_node
from .names import anonymous, unique_name


class Var(ExprLike):
    """A pure dimension. Two Vars with the same name are the same variable."""
    __slots__ = ("_name",)

    def __init__(self, name: str | None = None):
        if name is None:
            name = unique_name("v")   # `v`, `v$1`, ...: canonical in C
        if not isinstance(name, str):
            raise CompileError(f"Var name must be a str, got {name!r}")
        self._name = name

    def name(self) -> str:
        return self._name

    def same_as(self, other) -> bool:
        return isinstance(other, Var) and other._name == self._name

    def _to_ir(self):
        return ir.Variable(i32, self._name)

    def is_implicit(self) -> bool:
        return self._name.startswith("_") and self._name[1:].isdigit()

    def implicit_index(self) -> int:
        return int(self._name[1:]) if self.is_implicit() else -1

    @staticmethod
    def implicit(n: int) -> "Var":
        return Var(f"_{n}")

    @staticmethod
    def outermost() -> "Var":
        return Var("__outermost")

    def __repr__(self):
        return f"<halo.Var '{self._name}'>"

    def __str__(self):
        return self._name

    def __hash__(self):
        return hash(("Var", self._name))


class ReductionDomain:
    """Shared state of an RDom: its variables, bounds and `where` predicates."""

    def __init__(self, name: str, bounds, user_name: str):
        self.name = name
        self.user_name = user_name
        self.bounds = bounds                    # list of (min node, extent node)
        self.vars = [f"{name}.{d}" for d in _dim_names(len(bounds))]
        self.predicates: list[ir.Expr] = []
        from .registry import register
        for v in self.vars:
            register(v, self)


def _dim_names(n):
    base = ["x", "y", "z", "w"]
    return [base[i] if i < 4 else f"{i}" for i in range(n)]


class RVar(ExprLike):
    """One dimension of an RDom (or a name for a split/fused RVar)."""
    __slots__ = ("_name", "_domain", "_index")

    def __init__(self, name=None, domain: ReductionDomain | None = None, index: int = 0):
        self._name = name if name is not None else anonymous("r")
        self._domain = domain
        self._index = index

    def name(self) -> str:
        return self._name

    def min(self) -> Expr:
        self._need_domain()
        return Expr._wrap(self._domain.bounds[self._index][0])

    def extent(self) -> Expr:
        self._need_domain()
        return Expr._wrap(self._domain.bounds[self._index][1])

    def domain(self):
        return self._domain

    def _need_domain(self):
        if self._domain is None:
            raise CompileError(f"RVar {self._name} does not belong to an RDom")

    def _to_ir(self):
        return ir.Variable(i32, self._name)

    def __repr__(self):
        return f"<halo.RVar '{self._name}'>"

    def __str__(self):
        return self._name

    def __hash__(self):
        return hash(("RVar", self._name))


class RDom(ExprLike):
    """A multi-dimensional reduction domain, iterated with r.x innermost.

    `RDom([(min, extent), ...])`, `RDom(Range(min, extent), ...)`,
    `RDom(min, extent)`, or `RDom(buffer_or_image_param)`.
    """

    def __init__(self, *args, name: str | None = None):
        if name is None and len(args) >= 2 and isinstance(args[-1], str):
            name, args = args[-1], args[:-1]     # Halide's RDom(region, name)
        bounds = _parse_bounds(args)
        if isinstance(name, str):
            user = name
        else:
            user = "r"
        from .registry import resolve_references
        for i, (lo, ext) in enumerate(bounds):
            free = sorted(resolve_references(lo, ext).free_vars)
            if free:
                raise CompileError(f"The bounds of RDom {user} in dimension {i} depend on the "
                                   f"variable {free[0]}; the bounds of an RDom may not depend "
                                   f"on a free variable")
        self._dom = ReductionDomain(unique_name(user if name else anonymous("r")),
                                    bounds, user)
        self._rvars = [RVar(v, self._dom, i) for i, v in enumerate(self._dom.vars)]

    # Halide accessors
    @property
    def x(self): return self._get(0)

    @property
    def y(self): return self._get(1)

    @property
    def z(self): return self._get(2)

    @property
    def w(self): return self._get(3)

    def _get(self, i):
        if not 0 <= i < len(self._rvars):
            raise RDomIndexError(f"RDom {self._dom.user_name} has {len(self._rvars)} "
                                 f"dimension(s); index {i} does not exist")
        return self._rvars[i]

    def __getitem__(self, i):
        if not isinstance(i, int):
            raise KeyError(i)
        return self._get(i)

    def __len__(self):
        return len(self._rvars)

    def __iter__(self):
        return iter(self._rvars)

    def dimensions(self) -> int:
        return len(self._rvars)

    def defined(self) -> bool:
        return True

    def same_as(self, other) -> bool:
        return isinstance(other, RDom) and other._dom is self._dom

    def domain(self):
        return self._dom

    def where(self, predicate) -> "RDom":
        """Restrict the domain to points where `predicate` holds (in place)."""
        p = to_node(predicate)
        if not p.type.is_bool():
            raise CompileError(f"RDom.where() needs a boolean condition, got {p.type}")
        self._dom.predicates.append(p)
        from .names import bump_epoch
        bump_epoch()
        return self

    def _to_ir(self):
        if len(self._rvars) != 1:
            raise CompileError(
                f"RDom {self._dom.user_name} has {len(self._rvars)} dimensions; "
                "only a 1-D RDom can be used as an Expr (use r.x, r.y, ...)")
        return self._rvars[0]._to_ir()

    def __repr__(self):
        return f"<halo.RDom '{self._dom.user_name}' with {len(self._rvars)} dims>"

    def __hash__(self):
        return id(self)


class Range:
    """Halide's `Range(min, extent)`."""

    def __init__(self, min, extent):
        self.min = min
        self.extent = extent


def _parse_bounds(args):
    from .buffer import Buffer
    from .param import ImageParam
    if len(args) == 1 and isinstance(args[0], (Buffer, ImageParam)):
        src = args[0]
        return [(to_node(src.dim(i).min()), to_node(src.dim(i).extent()))
                for i in range(src.dimensions())]
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        items = list(args[0])
        if len(items) == 2 and not isinstance(items[0], (list, tuple, Range)):
            items = [tuple(items)]
    elif len(args) >= 2 and len(args) % 2 == 0 and not isinstance(args[0], (list, tuple, Range)):
        items = [(args[i], args[i + 1]) for i in range(0, len(args), 2)]
    else:
        items = list(args)
    bounds = []
    for it in items:
        if isinstance(it, Range):
            lo, ext = it.min, it.extent
        elif isinstance(it, (list, tuple)) and len(it) == 2:
            lo, ext = it
        else:
            raise CompileError(f"RDom bounds must be (min, extent) pairs, got {it!r}")
        lo_n, ext_n = to_node(lo), to_node(ext)
        for what, n in (("min", lo_n), ("extent", ext_n)):
            if n.type.is_float():
                raise CompileError(f"RDom {what} must be an integer, got {n.type}")
        from .expr import cast_node
        bounds.append((cast_node(i32, lo_n), cast_node(i32, ext_n)))
    if not bounds:
        raise CompileError("An RDom needs at least one dimension")
    return bounds
