"""Human-readable text for IR, in the style of Halide's lowered stmt."""
from __future__ import annotations

from . import expr as E
from . import stmt as S
from .types import i32


def expr_to_str(e) -> str:
    return _ExprPrinter().p(e)


def stmt_to_str(s) -> str:
    out: list[str] = []
    _print_stmt(s, 0, out)
    return "\n".join(out) + "\n"


class _ExprPrinter:
    def p(self, e) -> str:
        m = getattr(self, "p_" + type(e).__name__, None)
        if m is not None:
            return m(e)
        if isinstance(e, E.BinOp):
            if e.op in ("min", "max"):
                return f"{e.op}({self.p(e.a)}, {self.p(e.b)})"
            return f"({self.p(e.a)} {e.op} {self.p(e.b)})"
        return repr(e)

    def p_Const(self, e):
        t = e.type
        if t.is_bool():
            return "true" if e.value else "false"
        if t.is_float():
            s = repr(float(e.value))
            return s + ("f" if t.bits() == 32 else "")
        if t == i32:
            return str(e.value)
        return f"({t}){e.value}"

    def p_Variable(self, e):
        return e.name

    def p_Cast(self, e):
        return f"{e.type}({self.p(e.value)})"

    def p_Reinterpret(self, e):
        return f"reinterpret<{e.type}>({self.p(e.value)})"

    def p_Not(self, e):
        return f"!{self.p(e.a)}"

    def p_Select(self, e):
        return f"select({self.p(e.condition)}, {self.p(e.true_value)}, {self.p(e.false_value)})"

    def p_Let(self, e):
        return f"(let {e.name} = {self.p(e.value)} in {self.p(e.body)})"

    def p_Call(self, e):
        args = ", ".join(self.p(a) for a in e.args)
        if e.call_type == E.CallType.INTRINSIC:
            return f"({e.type}){e.name}({args})"
        if e.value_index:
            return f"{e.name}.{e.value_index}({args})"
        return f"{e.name}({args})"

    def p_Load(self, e):
        return f"{e.buffer}[{self.p(e.index)}]"

    def p_Ramp(self, e):
        return f"ramp({self.p(e.base)}, {self.p(e.stride)}, {e.lanes})"

    def p_Broadcast(self, e):
        return f"x{e.lanes}({self.p(e.value)})"


def _print_stmt(s, indent, out):
    pad = "  " * indent
    p = expr_to_str
    if isinstance(s, S.Block):
        for x in s.stmts:
            _print_stmt(x, indent, out)
    elif isinstance(s, S.For):
        out.append(f"{pad}{s.kind.value} ({s.name}, {p(s.min)}, {p(s.extent)}) {{")
        _print_stmt(s.body, indent + 1, out)
        out.append(f"{pad}}}")
    elif isinstance(s, S.LetStmt):
        out.append(f"{pad}let {s.name} = {p(s.value)}")
        _print_stmt(s.body, indent, out)
    elif isinstance(s, S.IfThenElse):
        out.append(f"{pad}if ({p(s.condition)}) {{")
        _print_stmt(s.then_case, indent + 1, out)
        if s.else_case is not None:
            out.append(f"{pad}}} else {{")
            _print_stmt(s.else_case, indent + 1, out)
        out.append(f"{pad}}}")
    elif isinstance(s, S.AssertStmt):
        msg = " ".join(x if isinstance(x, str) else p(x) for x in s.message)
        out.append(f"{pad}assert({p(s.condition)}, \"{msg}\")")
    elif isinstance(s, S.Evaluate):
        out.append(f"{pad}{p(s.value)}")
    elif isinstance(s, S.Provide):
        vals = ", ".join(p(v) for v in s.values)
        if len(s.values) > 1:
            vals = f"{{{vals}}}"
        out.append(f"{pad}{s.name}({', '.join(p(a) for a in s.args)}) = {vals}")
    elif isinstance(s, S.Atomic):
        out.append(f"{pad}atomic {{")
        _print_stmt(s.body, indent + 1, out)
        out.append(f"{pad}}}")
    elif isinstance(s, S.ProducerConsumer):
        out.append(f"{pad}produce {s.name} {{")
        _print_stmt(s.produce, indent + 1, out)
        out.append(f"{pad}}}")
        _print_stmt(s.consume, indent, out)
    elif isinstance(s, S.Realize):
        b = ", ".join(f"[{p(m)}, {p(e)}]" for m, e in s.bounds)
        out.append(f"{pad}realize {s.name}({b}) {{")
        _print_stmt(s.body, indent + 1, out)
        out.append(f"{pad}}}")
    elif isinstance(s, S.Allocate):
        memo = f" memoized by ({', '.join(p(k) for k in s.memo_key)})" if s.memo_key else ""
        out.append(f"{pad}allocate {s.name}[{s.type} * {p(s.size)}]{memo}")
        _print_stmt(s.body, indent, out)
        if not _frees(s.body, s.name):
            out.append(f"{pad}free {s.name}")
    elif isinstance(s, S.Free):
        out.append(f"{pad}free {s.name}")
    elif isinstance(s, S.Store):
        out.append(f"{pad}{s.buffer}[{p(s.index)}] = {p(s.value)}")
    else:
        out.append(f"{pad}{s!r}")


def _frees(body, name) -> bool:
    """Whether `body` holds a `Free` of `name` (an early free: lower/early_free.py)."""
    from .mutator import IRVisitor
    found = []

    class V(IRVisitor):
        def visit_Free(self, f):
            found.append(f.name == name)
    V().visit(body)
    return any(found)
