"""`Func`, `FuncRef` and `Stage`: defining Funcs, with Halide's checks.

`f[x, y] = e` makes the pure definition; later assignments (and `+=`, `*=`,
...) are update definitions. Every definition is checked at once, and the
errors name the Func, the definition and the variable at fault.
"""
from __future__ import annotations

from ..errors import CompileError
from ..ir import expr as ir
from ..ir.types import Type, i32
from ..ir.mutator import calls_in, IRVisitor
from .expr import Expr, ExprLike, to_node, int_literal_as, is_literal, cast_node
from .function import Definition, Function
from .names import anonymous, internal_name, unique_name, bump_epoch
from .registry import register, resolve_references
from .var import Var, RVar, RDom


class Func:
    """A function over an infinite integer domain (Halide's `hl.Func`)."""

    def __init__(self, name=None, *args):
        init_value = None
        if isinstance(name, Type):   # Func(type, dims, name): declared, undefined
            name = args[1] if len(args) > 1 else None
        elif name is not None and not isinstance(name, str):
            init_value, name = name, None
        user = name if name is not None else anonymous("f")
        self._f = Function(name=internal_name(name, "f"), user_name=user)
        register(self._f.name, self._f)
        from ..schedule.schedule import FuncSchedule
        self._f.schedule = FuncSchedule()
        if init_value is not None:
            self[()] = init_value

    # -- data accessors --------------------------------------------------------------
    def name(self) -> str:
        return self._f.user_name

    def function(self) -> Function:
        return self._f

    def defined(self) -> bool:
        return self._f.defined()

    def dimensions(self) -> int:
        self._need_defined("dimensions()")
        return self._f.dimensions()

    def args(self) -> list:
        self._need_defined("args()")
        return [Var(a) for a in self._f.pure_args]

    def type(self) -> Type:
        self._need_defined("type()")
        if len(self._f.output_types) != 1:
            raise CompileError(f"Func {self.name()} returns a Tuple; use types()")
        return self._f.output_types[0]

    def types(self) -> list:
        self._need_defined("types()")
        return list(self._f.output_types)

    def outputs(self) -> int:
        return len(self._f.output_types)

    def value(self) -> Expr:
        self._need_defined("value()")
        return Expr._wrap(self._f.definitions[0].values[0])

    def values(self) -> tuple:
        self._need_defined("values()")
        return tuple(Expr._wrap(v) for v in self._f.definitions[0].values)

    def has_update_definition(self) -> bool:
        return len(self._f.definitions) > 1

    def num_update_definitions(self) -> int:
        return max(0, len(self._f.definitions) - 1)

    def update_args(self, idx: int = 0) -> list:
        return [Expr._wrap(a) for a in self._update(idx).args]

    def update_value(self, idx: int = 0) -> Expr:
        return Expr._wrap(self._update(idx).values[0])

    def update_values(self, idx: int = 0) -> tuple:
        return tuple(Expr._wrap(v) for v in self._update(idx).values)

    def rvars(self, idx: int = 0) -> list:
        d = self._update(idx)
        return [RVar(v, dom, i) for dom in d.rdoms for i, v in enumerate(dom.vars)]

    def _update(self, idx):
        if not 0 <= idx < self.num_update_definitions():
            raise CompileError(f"Func {self.name()} has {self.num_update_definitions()} "
                               f"update definition(s); update {idx} does not exist")
        return self._f.definitions[idx + 1]

    def _need_defined(self, what):
        if not self._f.defined():
            raise CompileError(f"Func {self.name()} has no definition yet, so {what} "
                               "is not available")

    def __repr__(self):
        return f"<halo.Func '{self.name()}'>"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        return True

    # -- definitions --------------------------------------------------------------
    def __getitem__(self, args) -> "FuncRef":
        return FuncRef(self, _normalize_args(args))

    def __setitem__(self, args, value):
        if isinstance(value, _UpdateDone):
            return
        define(self, _normalize_args(args), value)

    # -- realization (implemented by halo.lang.pipeline) ----------------------------
    def realize(self, *args, **kwargs):
        # The cached Pipeline keeps the compiled code while nothing changes.
        return self._pipeline().realize(*args, **kwargs)

    def compile_jit(self, target=None):
        from .pipeline import Pipeline
        return self._pipeline().compile_jit(target)

    def _pipeline(self):
        from .pipeline import Pipeline
        p = getattr(self, "_cached_pipeline", None)
        if p is None:
            p = self._cached_pipeline = Pipeline(self)
        return p

    def infer_arguments(self):
        return self._pipeline().infer_arguments()

    def compile_to_callable(self, arguments=None, target=None):
        return self._pipeline().compile_to_callable(arguments, target)

    def infer_input_bounds(self, *args, **kwargs):
        return self._pipeline().infer_input_bounds(*args, **kwargs)

    # -- schedule (directives live in halo.schedule) -------------------------------
    def update(self, idx: int = 0) -> "Stage":
        self._update(idx)
        return Stage(self, idx + 1)

    def __getattr__(self, item):
        # Scheduling directives are defined once, in halo.schedule.directives.
        from ..schedule import directives
        fn = directives.FUNC_DIRECTIVES.get(item)
        if fn is None:
            raise AttributeError(f"'Func' object has no attribute '{item}'")
        return lambda *a, **k: fn(self, *a, **k)


class Stage:
    """One definition of a Func, for scheduling (`f.update(0)`)."""

    def __init__(self, func: Func, index: int, spec=None):
        self._func = func
        self._index = index
        self._spec = spec          # a Specialization, for f.specialize(cond)

    def name(self) -> str:
        s = self._func.name()
        return s if self._index == 0 else f"{s}.update({self._index - 1})"

    def __getattr__(self, item):
        from ..schedule import directives
        fn = directives.STAGE_DIRECTIVES.get(item)
        if fn is None:
            raise AttributeError(f"'Stage' object has no attribute '{item}'")
        return lambda *a, **k: fn(self, *a, **k)


class _UpdateDone:
    """Returned by `ref += e` so the `__setitem__` Python then calls is a no-op."""

    def __init__(self, stage):
        self.stage = stage


class FuncRef(ExprLike):
    """`f[x, y]`: a call (as an Expr) or a definition target (as an lvalue)."""
    __slots__ = ("_func", "_args")

    def __init__(self, func: Func, args: tuple):
        self._func = func
        self._args = args

    def _to_ir(self):
        f = self._func._f
        if not f.defined():
            raise CompileError(f"Func {f.user_name} is used before it has been defined")
        if len(f.output_types) != 1:
            raise CompileError(f"Func {f.user_name} returns a Tuple of {len(f.output_types)} "
                               f"values; read one element with {f.user_name}[...][i]")
        return _call_node(f, self._args, 0)

    def __getitem__(self, i):
        f = self._func._f
        if not isinstance(i, int):
            raise CompileError(f"Tuple index of Func {f.user_name} must be an int, got {i!r}")
        if not f.defined():
            raise CompileError(f"Func {f.user_name} is used before it has been defined")
        if not 0 <= i < len(f.output_types):
            raise CompileError(f"Func {f.user_name} has {len(f.output_types)} Tuple "
                               f"element(s); index {i} is out of range")
        return Expr._wrap(_call_node(f, self._args, i))

    def function(self):
        return self._func

    def _update(self, op, value):
        f = self._func
        fn = f._f
        if not fn.defined():
            _implicit_init(f, self._args, op, value)
        if isinstance(value, tuple):
            raise CompileError(f"{op}= on Func {fn.user_name} does not take a Tuple")
        from . import expr as E
        builder = {"+": E.add, "-": E.sub, "*": E.mul, "/": E.div}[op]
        define(f, self._args, Expr._wrap(builder(self, value)))
        return _UpdateDone(Stage(f, len(fn.definitions) - 1))

    def __iadd__(self, v): return self._update("+", v)
    def __isub__(self, v): return self._update("-", v)
    def __imul__(self, v): return self._update("*", v)
    def __itruediv__(self, v): return self._update("/", v)

    def __repr__(self):
        return f"<halo.FuncRef {self._func.name()}[...]>"


def _normalize_args(args) -> tuple:
    if not isinstance(args, tuple):
        args = (args,)
    if len(args) == 1 and isinstance(args[0], list):
        args = tuple(args[0])
    out = []
    for a in args:
        if isinstance(a, RDom):
            out.extend(a)
        else:
            out.append(a)
    return tuple(out)


def _arg_node(a, fname, i) -> ir.Expr:
    if isinstance(a, (int,)) and not isinstance(a, bool):
        return int_literal_as(a, i32)
    try:
        n = to_node(a)
    except CompileError as e:
        raise CompileError(f"Argument {i} of Func {fname}: {e}") from None
    if n.type.is_float():
        raise CompileError(f"Func {fname} called with a float index ({n.type}) in "
                           f"dimension {i}; cast it to an int")
    if n.type.is_vector():
        raise CompileError(f"Func {fname} called with a vector index in dimension {i}")
    return cast_node(i32, n)


def _call_node(f: Function, args, value_index):
    if len(args) != f.dimensions():
        raise CompileError(f"Func {f.user_name} was called with {len(args)} arguments, "
                           f"but was defined with {f.dimensions()}")
    nodes = tuple(_arg_node(a, f.user_name, i) for i, a in enumerate(args))
    return ir.Call(f.output_types[value_index], f.name, nodes, ir.CallType.FUNC, value_index, f)


def _values(value, fname) -> tuple:
    vals = value if isinstance(value, tuple) else (value,)
    if not vals:
        raise CompileError(f"Func {fname} cannot be defined as an empty Tuple")
    out = []
    for v in vals:
        if isinstance(v, FuncRef) and v._func._f.defined() and len(v._func._f.output_types) > 1:
            raise CompileError(f"Func {fname} is defined with a call to the Tuple-valued "
                               f"Func {v._func.name()}; pick an element with [...][i]")
        out.append(v)
    return tuple(out)


def _implicit_init(f: Func, args, op, value):
    """`f[..] += e` on an undefined Func: first define f as the identity."""
    fn = f._f
    vals = value if isinstance(value, tuple) else (value,)
    types = []
    for v in vals:
        t = to_node(v).type if not isinstance(v, int) else i32
        types.append(t)
    identity = 1 if op in ("*", "/") else 0
    # As Halide: an argument that is a plain Var keeps its name; others get `_i`.
    pure, used = [], set()
    for i, a in enumerate(args):
        if type(a) is Var and a.name() not in used:
            pure.append(a)
        else:
            pure.append(Var(f"_{i}"))
        used.add(pure[-1].name())
    pure = tuple(pure)
    init = tuple(Expr._wrap(cast_node(t, ir.Const(t, float(identity) if t.is_float()
                                                   else identity))) for t in types)
    define(f, pure, init if len(init) > 1 else init[0])


def define(f: Func, args: tuple, value) -> None:
    fn = f._f
    vals = _values(value, fn.user_name)
    if not fn.defined():
        _define_pure(fn, args, vals)
    else:
        _define_update(fn, args, vals)
    bump_epoch()
    if hasattr(f, "_cached_pipeline"):
        del f._cached_pipeline


def _define_pure(fn: Function, args, vals):
    names = []
    for i, a in enumerate(args):
        if isinstance(a, RVar):
            raise CompileError(
                f"The pure definition of Func {fn.user_name} uses RVar {a.name()} as "
                f"argument {i}: a pure definition's arguments must be Vars")
        if not isinstance(a, Var):
            # Halide turns `f[expr] = v` on an undefined Func into an update of
            # an undefined pure definition; we ask for the explicit form.
            raise CompileError(
                f"The pure definition of Func {fn.user_name} has argument {i} that is "
                f"not a Var ({a!r}); define f[x, ...] = ... with Vars first")
        if a.name() in names:
            raise CompileError(f"In the definition of Func {fn.user_name}, Var {a.name()} "
                               f"appears more than once on the left-hand side")
        names.append(a.name())
    nodes = tuple(_value_node(v, None, fn, 0) for v in vals)
    refs = resolve_references(*nodes)
    undefined = sorted(refs.free_vars - set(names))
    if undefined:
        raise CompileError(f'Undefined variable "{undefined[0]}" in definition of Func '
                           f'"{fn.user_name}"')
    if refs.rvars:
        raise CompileError(
            f"The pure definition of Func {fn.user_name} uses RVar "
            f"{sorted(refs.rvars)[0]}; reductions need an update definition "
            f"(or an inline reduction such as hl.sum)")
    _check_callees(fn, refs)
    fn.pure_args = names
    fn.output_types = [n.type for n in nodes]
    from ..schedule.schedule import StageSchedule
    fn.definitions = [Definition(tuple(ir.Variable(i32, n) for n in names), nodes,
                                 (), StageSchedule.default(names, []))]
    _remember(fn, refs)


def _value_node(v, t: Type | None, fn, idx):
    if t is not None and is_literal(v) and not isinstance(v, bool):
        if isinstance(v, float) or (hasattr(v, "dtype") and v.dtype.kind == "f"):
            n = to_node(v)
        else:
            return int_literal_as(int(v), t)
        return n
    return to_node(v)


def _define_update(fn: Function, args, vals):
    stage = len(fn.definitions) - 1
    where = f"In update definition {stage} of Func \"{fn.user_name}\""
    if len(args) != fn.dimensions():
        raise CompileError(f"Func \"{fn.user_name}\" was called with {len(args)} arguments, "
                           f"but was defined with {fn.dimensions()}")
    if len(vals) != len(fn.output_types):
        raise CompileError(f"{where}: it has {len(vals)} value(s), but the pure definition "
                           f"has {len(fn.output_types)}")
    arg_nodes = tuple(_arg_node(a, fn.user_name, i) for i, a in enumerate(args))
    val_nodes = []
    for i, (v, t) in enumerate(zip(vals, fn.output_types)):
        n = _value_node(v, t, fn, i)
        if n.type != t:
            raise CompileError(f"{where}: Tuple element {i} of the update definition has "
                               f"type {n.type}, but the pure definition has type {t}")
        val_nodes.append(n)
    val_nodes = tuple(val_nodes)
    pure = [a.name for i, a in enumerate(arg_nodes)
            if isinstance(a, ir.Variable) and i < len(fn.pure_args)
            and a.name == fn.pure_args[i]]
    refs = resolve_references(*arg_nodes, *val_nodes)
    undefined = sorted(refs.free_vars - set(pure))
    if undefined:
        raise CompileError(f'Undefined variable "{undefined[0]}" in definition of Func '
                           f'"{fn.user_name}"')
    _check_self_references(fn, arg_nodes, val_nodes, pure, where)
    _check_callees(fn, refs)
    rdoms = _ordered_rdoms(refs, arg_nodes, val_nodes)
    from ..schedule.schedule import StageSchedule
    rvars = [v for d in rdoms for v in d.vars]
    fn.definitions.append(Definition(arg_nodes, val_nodes, tuple(rdoms),
                                     StageSchedule.default(pure, rvars)))
    _remember(fn, refs)


def _ordered_rdoms(refs, *node_groups):
    """RDoms in order of first use (their variables in declaration order)."""
    order = []

    class V(IRVisitor):
        def visit_Variable(self, v):
            for d in refs.rdoms.values():
                if v.name in d.vars and d not in order:
                    order.append(d)
    vis = V()
    for group in node_groups:
        for n in group:
            vis.visit(n)
    for d in refs.rdoms.values():   # used only in bounds/predicates
        if d not in order:
            order.append(d)
    return order


def _check_self_references(fn, args, values, pure, where):
    for node in (*args, *values):
        for c in calls_in(node, ir.CallType.FUNC):
            if c.name != fn.name:
                continue
            for i, a in enumerate(c.args):
                lhs = args[i]
                uses_pure = [p for p in pure if _mentions(a, p)]
                if uses_pure and a != lhs:   # same expression as the LHS is fine
                    raise CompileError(
                        f"{where}: all of a Func's recursive references to itself must "
                        f"use the pure variables unchanged in the same places as on the "
                        f"left-hand side (argument {i} is {_s(a)})")


def _mentions(node, name):
    from ..ir.mutator import free_variables
    return name in free_variables(node)


def _s(n):
    from ..ir.printer import expr_to_str
    return expr_to_str(n)


def _check_callees(fn, refs):
    for name, callee in refs.funcs.items():
        if not callee.defined():
            raise CompileError(f"Func {callee.user_name} is used in the definition of "
                               f"{fn.user_name} before it has been defined")


def _remember(fn: Function, refs) -> None:
    fn.inputs.update(refs.images)
    fn.params.update(refs.params)
    callees = getattr(fn, "callees", None)
    if callees is None:
        callees = fn.callees = {}
    callees.update({k: v for k, v in refs.funcs.items() if k != fn.name})


def funcs(names: str) -> list:
    return [Func(n) for n in names.split()]


def vars(names: str) -> list:
    return [Var(n) for n in names.split()]
