"""A small algebraic simplifier: constant folding plus a table of rewrites.

Rules are grouped by root operator as (name, match function) pairs; each
returns a simpler, equal Expr or None. Integer sums are canonicalized as
linear forms (constant term last) so bounds like `(x + 1) - (x - 1)` fold
to `2`. Every rule must be sound under Halide semantics; the property tests
in tests/test_simplify.py evaluate random expressions before and after.
"""
from __future__ import annotations

from . import expr as E
from . import semantics as sem
from .mutator import IRMutator


def simplify(node):
    return _Simplifier(RULES).mutate(node)


def _is_int(t):
    return (t.is_int() or t.is_uint()) and not t.is_bool()


def _no_overflow(t):
    """Algebra is valid where Halide leaves overflow undefined (i32, i64)."""
    return t.is_int() and t.bits() >= 32


def _fold(n):
    """Evaluate a node whose children are all constants."""
    from ..interp.evaluate import ExprEvaluator
    v = ExprEvaluator(None).eval(n, {})
    if n.type.is_float():
        return E.Const(n.type, float(v))
    return E.Const(n.type, int(v))


def _linear(e):
    """Split an int Expr into ({term: coeff}, const) if it is an Add/Sub/Mul tree."""
    if isinstance(e, E.Const):
        return {}, e.value
    if isinstance(e, E.Add):
        ta, ca = _linear(e.a)
        tb, cb = _linear(e.b)
        return _merge(ta, tb, 1), ca + cb
    if isinstance(e, E.Sub):
        ta, ca = _linear(e.a)
        tb, cb = _linear(e.b)
        return _merge(ta, tb, -1), ca - cb
    if isinstance(e, E.Mul) and isinstance(e.b, E.Const):
        ta, ca = _linear(e.a)
        k = e.b.value
        return {t: c * k for t, c in ta.items()}, ca * k
    return {e: 1}, 0


def _merge(a, b, sign):
    out = dict(a)
    for t, c in b.items():
        out[t] = out.get(t, 0) + sign * c
    return {t: c for t, c in out.items() if c != 0}


def _build(terms, const, t):
    r = None
    for term, c in terms.items():
        piece = term if c == 1 else E.Mul(term, E.Const(t, c)) if c != -1 else None
        if c == -1:
            r = E.Sub(E.Const(t, 0), term) if r is None else E.Sub(r, term)
            continue
        r = piece if r is None else E.Add(r, piece)
    if r is None:
        return E.Const(t, const)
    if const > 0:
        r = E.Add(r, E.Const(t, const))
    elif const < 0:
        r = E.Sub(r, E.Const(t, -const))
    return r


_size = E.node_count


class _Simplifier(IRMutator):
    def __init__(self, rules):
        self.rules = rules

    def generic(self, node):
        node = super().generic(node)
        if isinstance(node, E.Expr):
            return self.rewrite(node)
        return node

    def rewrite(self, e):
        if isinstance(e, (E.BinOp,)) and isinstance(e.a, E.Const) and isinstance(e.b, E.Const):
            if not (_no_overflow(e.type) and isinstance(e, (E.Add, E.Sub, E.Mul)) and
                    not e.type.can_represent(_py_op(e))):
                return _fold(e)
            if e.type.is_scalar():
                from ..errors import CompileError
                raise CompileError(
                    "Signed integer overflow occurred during constant-folding. Signed "
                    "integer overflow for int32 and int64 is undefined behavior in Halide.")
        if isinstance(e, E.Cast) and isinstance(e.value, E.Const) and e.type.is_scalar():
            return E.Const(e.type, sem.cast_scalar(e.type, e.value.type, e.value.value))
        if isinstance(e, E.Not) and isinstance(e.a, E.Const):
            return E.Const(e.type, 0 if e.a.value else 1)
        if isinstance(e, E.Select) and isinstance(e.condition, E.Const):
            return e.true_value if e.condition.value else e.false_value
        for rule in self.rules.get(type(e).__name__, ()):
            r = rule(e)
            if r is not None and r is not e:
                return self.rewrite(r) if _size(r) < _size(e) or isinstance(r, E.Const) else r
        return e


def _py_op(e):
    a, b = e.a.value, e.b.value
    return {E.Add: a + b, E.Sub: a - b, E.Mul: a * b}[type(e)]


# -- rules, by root operator -----------------------------------------------------------

def _const(e, v):
    return isinstance(e, E.Const) and e.value == v


def add_zero(e):
    if _const(e.b, 0) and not e.type.is_float():
        return e.a
    if _const(e.a, 0) and not e.type.is_float() and isinstance(e, E.Add):  # not 0 - x
        return e.b


def linear_canonical(e):
    """Collect like terms of i32/i64 sums: (x + 3) - (x - 1) -> 4."""
    if not _no_overflow(e.type):
        return None
    terms, c = _linear(e)
    if not e.type.can_represent(c):
        return None
    r = _build(terms, c, e.type)
    return r if _size(r) < _size(e) else None


def sub_self(e):
    if e.a == e.b and not e.type.is_float():
        return E.Const(e.type, 0)


# linear_into_minmax costs time superlinear in the expression (it simplifies
# what it moves); bounds of long pipelines expand into huge expressions, where
# it is skipped (bounds stay sound, maybe looser).
CORRELATE_MAX_SIZE = 400


def linear_into_minmax(e):
    """x + min(y, z - x) -> min(x + y, z) (and max, and the negated forms): the
    terms of a sum that share variables with its one min/max move into it when
    that cancels them in an operand. Then a region's extent under GuardWithIf
    (min(tile end, image end) - tile start) stops depending on the tile, and
    bounds over the tiles stay tight instead of pairing a tile's start with
    another tile's extent."""
    if not _no_overflow(e.type) or _size(e) > CORRELATE_MAX_SIZE:
        return None
    from .mutator import free_variables
    terms, c = _linear(e)
    mms = [t for t, k in terms.items() if isinstance(t, (E.Min, E.Max)) and k in (1, -1)]
    if len(mms) != 1 or len(terms) < 2:
        return None
    mm = mms[0]
    k = terms[mm]
    fv = free_variables(mm)
    cancel = {t: v for t, v in terms.items() if t is not mm and free_variables(t) & fv}
    if not cancel:
        return None
    keep = {t: v for t, v in terms.items() if t is not mm and t not in cancel}
    moved = _build(cancel, 0, e.type)
    if k == 1:
        cls, ops = type(mm), [simplify(E.Add(o, moved)) for o in (mm.a, mm.b)]
    else:
        cls = E.Max if isinstance(mm, E.Min) else E.Min
        ops = [simplify(E.Sub(moved, o)) for o in (mm.a, mm.b)]
    names = free_variables(moved)
    r = cls(*ops)
    before = _polarity(E.Add(mm, moved) if k == 1 else E.Sub(moved, mm), names)
    if min(_polarity(r, names)) >= min(before):
        return None          # no `x ... - x` pair cancelled: moving would only copy terms
    if keep or c:
        r = E.Add(r, _build(keep, c, e.type)) if keep else (
            E.Add(r, E.Const(e.type, c)) if c > 0 else E.Sub(r, E.Const(e.type, -c)))
    return r


def _polarity(e, names, sign=1, acc=None):
    """[uses with + sign, uses with - sign] of Variables in `names` in e: a
    variable used with both signs is a cancellation that bounds cannot see."""
    acc = [0, 0] if acc is None else acc
    if isinstance(e, E.Variable):
        if e.name in names:
            acc[0 if sign > 0 else 1] += 1
    elif isinstance(e, E.Sub):
        _polarity(e.a, names, sign, acc)
        _polarity(e.b, names, -sign, acc)
    elif isinstance(e, E.Mul) and isinstance(e.b, E.Const):
        _polarity(e.a, names, sign if e.b.value >= 0 else -sign, acc)
    elif isinstance(e, (E.Add, E.Min, E.Max)) or (isinstance(e, E.Div) and
                                                   isinstance(e.b, E.Const) and e.b.value > 0):
        _polarity(e.a, names, sign, acc)
        _polarity(e.b, names, sign, acc)
    else:                    # anything else: uses of either sign
        for f in ("a", "b", "value", "condition", "true_value", "false_value"):
            c = getattr(e, f, None)
            if isinstance(c, E.Expr):
                _polarity(c, names, sign, acc)
                _polarity(c, names, -sign, acc)
    return acc


def mul_one_zero(e):
    if _const(e.b, 1):
        return e.a
    if _const(e.a, 1):
        return e.b
    if not e.type.is_float() and (_const(e.b, 0) or _const(e.a, 0)):
        return E.Const(e.type, 0)
    if isinstance(e.a, E.Const) and not isinstance(e.b, E.Const):
        return E.Mul(e.b, e.a)


def div_one(e):
    if _const(e.b, 1):
        return e.a


def minmax_same(e):
    if e.a == e.b:
        return e.a


def minmax_dedupe(e):
    """min(min(a, b), b) -> min(a, b): drop repeated operands of a min/max chain."""
    cls = type(e)
    ops, stack = [], [e]
    while stack:
        n = stack.pop()
        if isinstance(n, cls):
            stack += [n.b, n.a]
        else:
            ops.append(n)
    uniq = list(dict.fromkeys(ops))
    if len(uniq) == len(ops):
        return None
    r = uniq[0]
    for o in uniq[1:]:
        r = cls(r, o)
    return r


def min_of_linear(e):
    """min(x + a, x + b) -> x + min(a, b) for i32/i64 and constant a, b."""
    if not _no_overflow(e.type):
        return None
    ta, ca = _linear(e.a)
    tb, cb = _linear(e.b)
    if ta == tb:
        c = min(ca, cb) if isinstance(e, E.Min) else max(ca, cb)
        return _build(ta, c, e.type)


def cmp_consts(e):
    if e.a == e.b and not e.a.type.is_float():
        v = isinstance(e, (E.EQ, E.LE, E.GE))
        return E.Const(e.type, int(v))


def and_true(e):
    if _const(e.a, 1):
        return e.b
    if _const(e.b, 1):
        return e.a
    if _const(e.a, 0) or _const(e.b, 0):
        return E.Const(e.type, 0)


def or_false(e):
    if _const(e.a, 0):
        return e.b
    if _const(e.b, 0):
        return e.a
    if _const(e.a, 1) or _const(e.b, 1):
        return E.Const(e.type, 1)


def select_same(e):
    if e.true_value == e.false_value:
        return e.true_value


def cast_noop(e):
    if e.type == e.value.type:
        return e.value


def let_trivial(e):
    if isinstance(e.value, (E.Const, E.Variable)):
        from .mutator import substitute
        # substitute() does not know scopes: an inner Let of the same name
        # (shadowing) or of the value's name (capture) must stop it
        names = {e.name} | ({e.value.name} if isinstance(e.value, E.Variable) else set())
        if _binds(e.body, names):
            return None
        return substitute({e.name: e.value}, e.body)


def _binds(node, names):
    """Whether a Let inside `node` binds one of `names`."""
    from .mutator import IRVisitor
    found = []

    class V(IRVisitor):
        def visit_Let(self, n):
            if n.name in names:
                found.append(n)
            self.generic(n)
    V().visit(node)
    return bool(found)


RULES = {
    "Add": [add_zero, linear_canonical, linear_into_minmax],
    "Sub": [sub_self, add_zero, linear_canonical, linear_into_minmax],
    "Mul": [mul_one_zero],
    "Div": [div_one],
    "Min": [minmax_same, minmax_dedupe, min_of_linear],
    "Max": [minmax_same, minmax_dedupe, min_of_linear],
    "EQ": [cmp_consts], "LE": [cmp_consts], "GE": [cmp_consts],
    "NE": [cmp_consts], "LT": [cmp_consts], "GT": [cmp_consts],
    "And": [and_true],
    "Or": [or_false],
    "Select": [select_same],
    "Cast": [cast_noop],
    "Let": [let_trivial],
}

