"""A catalogue of bad inputs: each must raise a halo error (never crash or
give a wrong answer) whose message names the object at fault.

Following STYLE.md item 10, every case asserts the message text, not only
that the program failed. Environment and cache changes go through
`monkeypatch` and `tmp_path`, so no test leaks state into another.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import halo as hl
from halo import interp
from halo.runtime import compiler


@pytest.fixture
def fresh_compiler():
    """Forget the cached compiler lookup before and after the test."""
    compiler.find_compiler.cache_clear()
    compiler.compiler_identity.cache_clear()
    yield
    compiler.find_compiler.cache_clear()
    compiler.compiler_identity.cache_clear()


def _ramp(n, dtype=np.int32):
    return np.arange(n, dtype=dtype)


# -- definitions --------------------------------------------------------------------------

def test_undefined_func_used_in_definition():
    x = hl.Var("x")
    f, g = hl.Func("undef_f"), hl.Func("g")
    with pytest.raises(hl.CompileError, match=r"Func undef_f is used .*before it has been defined"):
        g[x] = f[x] + 1


def test_undefined_func_realized():
    f = hl.Func("never_defined")
    with pytest.raises(hl.CompileError, match=r"Func never_defined has no definition"):
        f.realize([4])


def test_call_with_wrong_number_of_arguments():
    x, y = hl.Var("x"), hl.Var("y")
    f, g = hl.Func("two_d"), hl.Func("g")
    f[x, y] = x + y
    with pytest.raises(hl.CompileError,
                       match=r"Func two_d was called with 1 arguments, but was defined with 2"):
        g[x] = f[x]


def test_update_with_wrong_number_of_arguments():
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("upd_args")
    f[x, y] = x + y
    with pytest.raises(hl.CompileError,
                       match=r'Func "?upd_args"? was called with 3 arguments, but was defined '
                             r'with 2'):
        f[x, y, 0] = 1


def test_update_missing_pure_var_on_left_side():
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("f_missing")
    f[x, y] = x + y
    with pytest.raises(hl.CompileError,
                       match=r'Undefined variable "x" in definition of Func "f_missing"'):
        f[0, y] = x


def test_rhs_uses_var_not_on_lhs():
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("f_free")
    with pytest.raises(hl.CompileError,
                       match=r'Undefined variable "y" in definition of Func "f_free"'):
        f[x] = x + y


def test_pure_definition_with_non_var_argument():
    x = hl.Var("x")
    f = hl.Func("f_nonvar")
    with pytest.raises(hl.CompileError,
                       match=r"pure definition of Func f_nonvar has argument 0 that is not a Var"):
        f[x + 1] = 0


def test_pure_definition_with_rvar_argument():
    r = hl.RDom([(0, 4)], name="rr")
    f = hl.Func("f_rvar")
    with pytest.raises(hl.CompileError, match=r"pure definition of Func f_rvar uses RVar"):
        f[r.x] = 0


def test_duplicate_var_on_lhs():
    x = hl.Var("x")
    f = hl.Func("f_dup")
    with pytest.raises(hl.CompileError,
                       match=r"Func f_dup, Var x appears more than once on the left-hand side"):
        f[x, x] = x


def test_update_value_type_mismatch():
    x = hl.Var("x")
    f = hl.Func("f_u8")
    f[x] = hl.u8(x)
    with pytest.raises(hl.CompileError,
                       match=r'update definition 0 of Func "f_u8".*has type float32, but the '
                             r'pure definition has type uint8'):
        f[x] = f[x] + 1.5


def test_update_tuple_size_mismatch():
    x = hl.Var("x")
    f = hl.Func("f_pair")
    f[x] = (x, x + 1)
    with pytest.raises(hl.CompileError,
                       match=r'Func "f_pair": it has 1 value\(s\), but the pure definition has 2'):
        f[x] = x


def test_tuple_func_used_as_plain_expr():
    x = hl.Var("x")
    f, g = hl.Func("f_tup"), hl.Func("g")
    f[x] = (x, x * 2)
    with pytest.raises(hl.CompileError, match=r"Func f_tup returns a Tuple of 2 values"):
        g[x] = f[x] + 1


def test_tuple_func_element_out_of_range():
    x = hl.Var("x")
    f = hl.Func("f_tup2")
    f[x] = (x, x * 2)
    with pytest.raises(hl.CompileError, match=r"Func f_tup2 has 2 Tuple element\(s\); index 2"):
        f[x][2]


def test_recursive_reference_must_use_pure_vars():
    x = hl.Var("x")
    f = hl.Func("f_rec")
    f[x] = x
    with pytest.raises(hl.CompileError,
                       match=r'update definition 0 of Func "f_rec": all of a Func\'s recursive '
                             r'references'):
        f[x] = f[x + 1] + 1


def test_cyclic_definitions():
    x = hl.Var("x")
    f, g = hl.Func("cyc_f"), hl.Func("cyc_g")
    f[x] = x
    g[x] = f[x] + 1
    f[x] = g[x] * 2       # f's update calls g, which calls f
    with pytest.raises(hl.HalideError, match=r"cycle of Func calls: cyc_f -> cyc_g -> cyc_f"):
        f.realize([4])


# -- expressions ------------------------------------------------------------------------

def test_int_literal_out_of_range():
    x = hl.Var("x")
    with pytest.raises(hl.CompileError,
                       match=r"Integer constant 300 will be implicitly coerced to type uint8"):
        hl.u8(x) + 300


def test_float_index_into_func():
    x = hl.Var("x")
    f, g = hl.Func("f_idx"), hl.Func("g")
    f[x] = x
    with pytest.raises(hl.CompileError,
                       match=r"Func f_idx called with a float index \(float32\) in dimension 0"):
        g[x] = f[hl.f32(x) * 0.5]


def test_float_index_into_image():
    x = hl.Var("x")
    im = hl.ImageParam(hl.UInt(8), 1, "float_im")
    g = hl.Func("g")
    with pytest.raises(hl.CompileError, match=r"float_im.*float.*dimension 0|dimension 0.*float_im"):
        g[x] = im[hl.f32(x) * 0.5]


@pytest.mark.parametrize("how", ["and", "or", "not", "bool", "if"])
def test_expr_as_python_bool(how):
    x = hl.Var("x")
    c = x > 0
    with pytest.raises(hl.CompileError, match=r"use '&' instead of 'and', '\|' instead of "
                                              r"'or', and '~' instead of 'not'"):
        if how == "and":
            c and (x < 3)
        elif how == "or":
            c or (x < 3)
        elif how == "not":
            not c
        elif how == "bool":
            bool(c)
        else:
            if c:
                pass


def test_select_non_bool_condition():
    x = hl.Var("x")
    with pytest.raises(hl.CompileError,
                       match=r"first argument to a select must be a boolean.*int32"):
        hl.select(x, 1, 2)


def test_select_mismatched_arms():
    x = hl.Var("x")
    with pytest.raises(hl.CompileError,
                       match=r"second and third arguments to a select do not have a matching "
                             r"type: uint8 and float32"):
        hl.select(x > 0, hl.u8(x), hl.f32(x))


def test_clamp_type_mismatch():
    x = hl.Var("x")
    with pytest.raises(hl.CompileError,
                       match=r"Type mismatch in call to clamp.*uint8.*float32"):
        hl.clamp(hl.u8(x), 0.5, 2.5)


def test_mux_mixed_types():
    x = hl.Var("x")
    with pytest.raises(hl.CompileError, match=r"mux\(\) requires all the values to have the "
                                              r"same type"):
        hl.mux(x, [hl.u8(x), hl.f32(x)])


@pytest.mark.parametrize("op", ["and", "or", "xor"])
def test_bitwise_mixed_signedness(op):
    x = hl.Var("x")
    a, b = hl.i32(x), hl.u32(x)
    with pytest.raises(hl.CompileError,
                       match=rf"bitwise {op} must be both be signed or both be unsigned.*int32 "
                             rf"and uint32"):
        {"and": lambda: a & b, "or": lambda: a | b, "xor": lambda: a ^ b}[op]()


def test_rdom_float_bounds():
    with pytest.raises(hl.CompileError, match=r"RDom min must be an integer, got float32"):
        hl.RDom([(0.5, 3)])


def test_rdom_index_out_of_range():
    r = hl.RDom([(0, 3)], name="r1d")
    with pytest.raises(KeyError, match=r"RDom r1d has 1 dimension\(s\); index 5 does not exist"):
        r[5]
    with pytest.raises(hl.HalideError, match=r"RDom r1d has 1 dimension\(s\); index 1"):
        r.y


# -- buffers and params at run time ------------------------------------------------------

def _shift_pipeline(offset, name="small_in"):
    x = hl.Var("x")
    im = hl.ImageParam(hl.Int(32), 1, name)
    g = hl.Func("g_shift")
    g[x] = im[x + offset]
    return g, im


def test_input_buffer_accessed_before_min():
    g, im = _shift_pipeline(-1)
    im.set(hl.Buffer(_ramp(4)))
    with pytest.raises(hl.BufferError,
                       match=r"^Input buffer small_in is accessed at -1, which is before the min "
                             r"\(0\) in dimension 0$"):
        g.realize([4])


def test_input_buffer_accessed_beyond_max():
    g, im = _shift_pipeline(2)
    im.set(hl.Buffer(_ramp(4)))
    with pytest.raises(hl.BufferError,
                       match=r"^Input buffer small_in is accessed at 5, which is beyond the max "
                             r"\(3\) in dimension 0$"):
        g.realize([4])


def test_input_buffer_fits_after_the_error():
    """The same pipeline runs once the buffer is big enough (no stale state)."""
    g, im = _shift_pipeline(2)
    im.set(hl.Buffer(_ramp(4)))
    with pytest.raises(hl.BufferError):
        g.realize([4])
    im.set(hl.Buffer(_ramp(6)))
    np.testing.assert_array_equal(np.asarray(g.realize([4])), _ramp(4) + 2)


def test_output_buffer_too_small_for_scattered_update():
    x = hl.Var("x")
    f = hl.Func("scatter_out")
    f[x] = 0
    r = hl.RDom([(0, 10)])
    f[r.x + 5] = 1
    with pytest.raises(hl.BufferError,
                       match=r"Output buffer scatter_out is accessed at 14, which is beyond the "
                             r"max \(3\) in dimension 0"):
        f.realize(hl.Buffer(hl.Int(32), [4]))


def test_input_wrong_dtype_at_set():
    im = hl.ImageParam(hl.UInt(8), 1, "typed_in")
    with pytest.raises(hl.HalideError,
                       match=r"ImageParam typed_in has type uint8, but the buffer has type float32"):
        im.set(np.zeros(4, np.float32))


def test_input_wrong_rank_at_set():
    im = hl.ImageParam(hl.UInt(8), 2, "ranked_in")
    with pytest.raises(hl.HalideError,
                       match=r"ImageParam ranked_in has 2 dimensions, but the buffer has 1"):
        im.set(np.zeros(4, np.uint8))


def _callable_pipeline():
    x = hl.Var("x")
    im = hl.ImageParam(hl.UInt(8), 1, "call_in")
    f = hl.Func("call_out")
    f[x] = im[x] + 1
    return f, im


def test_callable_input_wrong_dtype():
    f, im = _callable_pipeline()
    c = f.compile_to_callable([im])
    with pytest.raises(hl.BufferError,
                       match=r"Buffer call_in has (d)?type float32, but the pipeline needs uint8"):
        c(np.zeros(4, np.float32), np.zeros(4, np.uint8))


def test_callable_input_wrong_rank():
    f, im = _callable_pipeline()
    c = f.compile_to_callable([im])
    with pytest.raises(hl.BufferError,
                       match=r"Input buffer call_in has 2 dimensions, but the pipeline needs 1"):
        c(np.zeros((2, 4), np.uint8), np.zeros(4, np.uint8))


def test_callable_wrong_argument_count():
    f, im = _callable_pipeline()
    c = f.compile_to_callable([im])
    with pytest.raises(hl.BufferError, match=r"Callable takes 1 input\(s\) and 1 output\(s\), "
                                             r"got 1 arguments"):
        c(np.zeros(4, np.uint8))


def test_generated_c_checks_dtype():
    """Bypass the Python checks: the C entry point itself refuses a bad dtype."""
    f, im = _callable_pipeline()
    compiled = hl.Pipeline(f).compile_jit()
    values = [(np.zeros(4, np.float32), [0]) if a.kind == "input" else (np.zeros(4, np.uint8), [0])
              for a in compiled.arguments]
    with pytest.raises(hl.BufferError,
                       match=r"Input buffer call_in has type code 2 bits 32 lanes 1, but the "
                             r"pipeline needs uint8"):
        compiled(values)


def test_output_buffer_wrong_dtype():
    x = hl.Var("x")
    f = hl.Func("out_typed")
    f[x] = x
    with pytest.raises(hl.BufferError,
                       match=r"Output buffer out_typed has type float64, but the Func has type "
                             r"int32"):
        f.realize(hl.Buffer(np.zeros(4, np.float64)))


def test_output_buffer_wrong_rank():
    x = hl.Var("x")
    f = hl.Func("out_ranked")
    f[x] = x
    with pytest.raises(hl.BufferError,
                       match=r"Output buffer out_ranked has 2 dimensions, but the pipeline "
                             r"needs 1"):
        f.realize(hl.Buffer(np.zeros((3, 4), np.int32)))


def test_realize_wrong_number_of_sizes():
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("sized")
    f[x, y] = x + y
    with pytest.raises(hl.BufferError,
                       match=r"Func sized has 2 dimensions, but realize\(\) was given 3 sizes"):
        f.realize([2, 3, 4])


def test_unset_image_param():
    x = hl.Var("x")
    im = hl.ImageParam(hl.Float(32), 1, "unbound_im")
    f = hl.Func("f")
    f[x] = im[x] * 2
    with pytest.raises(hl.BufferError, match=r"ImageParam unbound_im has no buffer bound"):
        f.realize([4])


def test_unset_param():
    x = hl.Var("x")
    p = hl.Param(hl.Int(32), "unset_p")
    f = hl.Func("f")
    f[x] = x + p
    with pytest.raises(hl.HalideError, match=r"Param unset_p has no value"):
        f.realize([4])


@pytest.mark.parametrize("value", [300, -1, 2.5])
def test_param_set_out_of_range(value):
    p = hl.Param(hl.UInt(8), "small_p")
    with pytest.raises(hl.CompileError,
                       match=rf"Param small_p of type uint8 cannot hold {re.escape(repr(value))}"):
        p.set(value)


def test_unbounded_index_into_compute_root_func():
    x = hl.Var("x")
    im = hl.ImageParam(hl.Int(32), 1, "idx")
    p, g = hl.Func("p"), hl.Func("g_unb")
    p[x] = x
    p.compute_root()
    g[x] = p[im[x]]
    im.set(hl.Buffer(_ramp(4)))
    with pytest.raises(hl.CompileError,
                       match=r"Func g_unb calls function p in an unbounded way in dimension 0"):
        g.realize([4])


def test_unbounded_index_into_input_buffer():
    x = hl.Var("x")
    idx = hl.ImageParam(hl.Int(32), 1, "idx")
    lut = hl.ImageParam(hl.Int(32), 1, "lut")
    g = hl.Func("g_lut")
    g[x] = lut[idx[x]]
    idx.set(hl.Buffer(_ramp(4)))
    lut.set(hl.Buffer(_ramp(4)))
    with pytest.raises(hl.CompileError,
                       match=r"Buffer lut may be accessed in an unbounded way in dimension 0 "
                             r"\(by Func g_lut\)"):
        g.realize([4])


def test_unbounded_index_names_anonymous_buffer():
    """An unnamed Buffer is named like Halide's b0, b1 (not an internal name)."""
    x = hl.Var("x")
    idx, lut = hl.Buffer(_ramp(4)), hl.Buffer(_ramp(4))
    g = hl.Func("g")
    g[x] = lut[idx[x]]
    with pytest.raises(hl.CompileError) as info:
        g.realize([4])
    assert re.search(rf"Buffer {re.escape(lut.name())} may be accessed in an unbounded way",
                     str(info.value))
    assert "$" not in lut.name()


def test_input_buffer_too_small_in_dimension_1():
    x, y = hl.Var("x"), hl.Var("y")
    im = hl.ImageParam(hl.Int(32), 2, "two_d_in")
    f = hl.Func("f")
    f[x, y] = im[x, y + 1]
    im.set(hl.Buffer(np.zeros((3, 4), np.int32)))
    with pytest.raises(hl.BufferError,
                       match=r"Input buffer two_d_in is accessed at 3, which is beyond the max "
                             r"\(2\) in dimension 1"):
        f.realize([4, 3])


@pytest.mark.parametrize("kind", ["Buffer", "ImageParam"])
def test_image_called_with_wrong_number_of_arguments(kind):
    x = hl.Var("x")
    im = (hl.Buffer(np.zeros(3, np.int32), "img1d") if kind == "Buffer"
          else hl.ImageParam(hl.Int(32), 1, "img1d"))
    f = hl.Func("f")
    with pytest.raises(hl.CompileError,
                       match=r"Image img1d has 1 dimensions but was accessed with 2 arguments"):
        f[x] = im[x, x]


@pytest.mark.parametrize("value", ["hello", None, object()])
def test_definition_value_not_an_expr(value):
    x = hl.Var("x")
    f = hl.Func("f")
    with pytest.raises(hl.CompileError, match=r"Cannot convert .* \(of type \w+\) to a halo Expr"):
        f[x] = value


def test_rdom_bounds_depend_on_free_var():
    x = hl.Var("x")
    with pytest.raises(hl.CompileError,
                       match=r"bounds of RDom r_free in dimension 0 depend on the variable x"):
        hl.RDom([(0, x)], name="r_free")


def test_rdom_bounds_may_use_params_and_image_dims():
    n = hl.Param(hl.Int(32), "n", 3)
    im = hl.ImageParam(hl.Int(32), 1, "rd_im")
    x = hl.Var("x")
    r = hl.RDom([(0, n), (im.dim(0).min(), im.dim(0).extent())])
    f = hl.Func("f")
    f[x] = 0
    f[x] += im[r.y] * r.x
    im.set(hl.Buffer(_ramp(4)))
    np.testing.assert_array_equal(np.asarray(f.realize([2])), [18, 18])


def test_negative_realize_size():
    x = hl.Var("x")
    f = hl.Func("neg_sized")
    f[x] = x
    with pytest.raises(hl.BufferError, match=r"realize\(\) sizes must be non-negative, got \[-1\]"):
        f.realize([-1])


def test_realize_size_beyond_int32():
    x = hl.Var("x")
    f = hl.Func("huge_out")
    f[x] = x
    with pytest.raises(hl.BufferError,
                       match=r"Output buffer huge_out has extent 1099511627776 in dimension 0, "
                             r"outside \[0, 2\^31\)"):
        f.realize([2 ** 40])


def test_tuple_output_buffer_count():
    x = hl.Var("x")
    f = hl.Func("tup_out")
    f[x] = (x, hl.f32(x))
    with pytest.raises(hl.BufferError,
                       match=r"Pipeline tup_out has 2 output buffer\(s\).*but 1 were given"):
        f.realize([hl.Buffer(hl.Int(32), [3])])


def test_float16_unsupported_by_c_backend():
    x = hl.Var("x")
    f = hl.Func("half_f")
    f[x] = hl.f16(x)
    with pytest.raises(hl.CompileError, match=r"C backend does not support float16"):
        f.realize([3])


@pytest.mark.parametrize("how", ["bytes", "flag", "callable"])
def test_read_only_output_buffer(how):
    x = hl.Var("x")
    f = hl.Func("ro_out")
    f[x] = x + 1
    if how == "flag":
        arr = np.zeros(4, np.int32)
        arr.setflags(write=False)
    else:
        arr = np.frombuffer(bytes(16), np.int32)   # must never be written
    with pytest.raises(hl.BufferError, match=r"Output buffer ro_out is read-only"):
        if how == "callable":
            f.compile_to_callable([])(arr)
        else:
            f.realize(hl.Buffer(arr))
    assert not arr.any()


@pytest.mark.parametrize("value", [300, -1, 2.5, "7", None])
def test_callable_param_out_of_range(value):
    """ctypes would silently wrap 300 to 44 in a uint8: halo refuses it."""
    x = hl.Var("x")
    p = hl.Param(hl.UInt(8), "call_p")
    f = hl.Func("f")
    f[x] = hl.u8(x) + p
    c = f.compile_to_callable([p])
    out = np.zeros(3, np.uint8)
    with pytest.raises(hl.HaloRuntimeError,
                       match=rf"Param call_p of type uint8 cannot hold {re.escape(repr(value))}"):
        c(value, out)
    c(np.uint8(200), out)
    np.testing.assert_array_equal(out, [200, 201, 202])


def test_temporary_buffer_in_definition():
    x = hl.Var("x")
    f = hl.Func("tmp_buf")
    f[x] = hl.Buffer(_ramp(5))[x] * 2
    np.testing.assert_array_equal(np.asarray(f.realize([5])), _ramp(5) * 2)


# -- schedules --------------------------------------------------------------------------

def test_unsupported_directive_names_the_func():
    x = hl.Var("x")
    f = hl.Func("sched_f")
    f[x] = x
    with pytest.raises(hl.CompileError,
                       match=r"In schedule for sched_f: the directive async_\(\) is not "
                             r"supported"):
        f.async_()


def test_compute_inline_with_updates():
    x = hl.Var("x")
    f = hl.Func("inl_f")
    f[x] = x
    f[x] += 1
    with pytest.raises(hl.CompileError,
                       match=r"Func inl_f has update definitions, so it cannot be inlined"):
        f.compute_inline()


def test_update_stage_out_of_range():
    x = hl.Var("x")
    f = hl.Func("stage_f")
    f[x] = x
    with pytest.raises(hl.CompileError,
                       match=r"Func stage_f has 0 update definition\(s\); update 0 does not "
                             r"exist"):
        f.update(0)


def test_target_bogus():
    with pytest.raises(hl.CompileError, match=r"Unknown target 'bogus'; known targets: .*host"):
        hl.Target("bogus")


def test_target_bogus_feature():
    with pytest.raises(hl.CompileError, match=r"Unknown target 'host-sse9'"):
        hl.Target("host-sse9")


# -- hostile names -------------------------------------------------------------------------

HOSTILE = ['say "hi"', "a */ b /* c", "line\nbreak", "back\\slash\\", "int", "return",
           "名前", "ünï", "%s%n%d", "??=define", "", "0digit", "a b\tc\r", "'quote'"]


def _string_literals(source):
    return re.findall(r'"(?:[^"\\\n]|\\.)*"', source)


@pytest.mark.parametrize("name", HOSTILE, ids=[repr(n) for n in HOSTILE])
def test_hostile_names_compile_and_run(name):
    x = hl.Var("x")
    im = hl.ImageParam(hl.Int(32), 1, name)
    p = hl.Param(hl.Int(32), name, 3)
    h = hl.Func(name)
    h[x] = im[x] * p
    h.compute_root()
    f = hl.Func(name)
    f[x] = h[x] + x
    im.set(hl.Buffer(_ramp(5)))
    src = hl.Pipeline(f).c_source()
    if any(ch in name for ch in "\"\n\r\t\\") or "*/" in name or not name.isascii():
        assert name not in src     # a "%" may appear raw: it is never in a format
    for lit in _string_literals(src):
        assert "\n" not in lit
    got = np.asarray(f.realize([5]))
    np.testing.assert_array_equal(got, _ramp(5) * 3 + _ramp(5))
    (ref,) = interp.realize(f, [5])
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", ['say "hi"', "line\nbreak", "%s%n%s", "名前"])
def test_hostile_name_in_runtime_error(name):
    """A name reaches a run-time error message intact, through C's printf."""
    g, im = _shift_pipeline(-1, name=name)
    im.set(hl.Buffer(_ramp(4)))
    with pytest.raises(hl.BufferError) as info:
        g.realize([4])
    assert str(info.value) == (f"Input buffer {name} is accessed at -1, which is before the "
                               f"min (0) in dimension 0")


@pytest.mark.parametrize("name", ['x"', "r\n*/", "int", "ü"])
def test_hostile_var_and_rdom_names(name):
    x, y = hl.Var(name), hl.Var(name + "2")
    r = hl.RDom([(0, 3)], name=name)
    f = hl.Func(name)
    f[x, y] = x + y
    f[x, y] += r.x
    src = hl.Pipeline(f).c_source()
    for lit in _string_literals(src):
        assert "\n" not in lit
    got = np.asarray(f.realize([3, 2]))
    expected = np.add.outer(np.arange(2), np.arange(3)) + 3
    np.testing.assert_array_equal(got, expected)
    (ref,) = interp.realize(f, [3, 2])
    np.testing.assert_array_equal(got, ref)


def test_names_colliding_after_mangling():
    x = hl.Var("x")
    pa, pb = hl.Param(hl.Int(32), "k.k", 10), hl.Param(hl.Int(32), "k_k", 100)
    ia, ib = hl.ImageParam(hl.Int(32), 1, "i.m"), hl.ImageParam(hl.Int(32), 1, "i_m")
    a, b = hl.Func("a.b"), hl.Func("a_b")
    a[x] = ia[x] * pa
    b[x] = ib[x] * pb
    a.compute_root()
    b.compute_root()
    out = hl.Func("a-b")
    out[x] = a[x] + b[x]
    ia.set(hl.Buffer(_ramp(4)))
    ib.set(hl.Buffer(_ramp(4) + 1))
    got = np.asarray(out.realize([4]))
    np.testing.assert_array_equal(got, _ramp(4) * 10 + (_ramp(4) + 1) * 100)
    (ref,) = interp.realize(out, [4])
    np.testing.assert_array_equal(got, ref)


def test_pipelines_colliding_after_mangling():
    """Two pipelines whose C names coincide still run their own code."""
    x = hl.Var("x")
    f, g = hl.Func("pipe.one"), hl.Func("pipe_one")
    f[x] = x * 2
    g[x] = x * 7
    np.testing.assert_array_equal(np.asarray(f.realize([3])), [0, 2, 4])
    np.testing.assert_array_equal(np.asarray(g.realize([3])), [0, 7, 14])
    np.testing.assert_array_equal(np.asarray(f.realize([3])), [0, 2, 4])


def test_non_string_name():
    with pytest.raises(hl.CompileError, match=r"A name must be a str, got 3\.5j"):
        hl.Param(hl.Int(32), 3.5j)  # a complex is neither a name nor a value


# -- the C compiler and the cache ---------------------------------------------------------

def _simple_func(k=1):
    x = hl.Var("x")
    f = hl.Func(f"cc_f{k}")
    f[x] = x * k + 1
    return f


def test_missing_compiler(monkeypatch, tmp_path, fresh_compiler):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "/nonexistent/halo-test-cc")
    with pytest.raises(hl.CompilerToolError,
                       match=r"No C compiler found: looked for '/nonexistent/halo-test-cc'"):
        _simple_func(11).realize([4])


def test_compiler_false(monkeypatch, tmp_path, fresh_compiler):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # where the source is kept
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "false")
    with pytest.raises(hl.CompilerToolError,
                       match=r"(?s)The C compiler failed \(exit 1\).*command: false .*kernel\.c"
                             rf".*source kept at: {re.escape(str(tmp_path))}/halo-failed-"):
        _simple_func(12).realize([4])


def test_compiler_script_failing_with_stderr(monkeypatch, tmp_path, fresh_compiler):
    cc = tmp_path / "bad cc.sh"
    cc.write_text("#!/bin/sh\necho 'halo-test: kernel.c:1: error: nope' >&2\nexit 3\n")
    cc.chmod(cc.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", f"'{cc}'")
    with pytest.raises(hl.CompilerToolError) as info:
        _simple_func(13).realize([4])
    msg = str(info.value)
    assert "exit 3" in msg
    assert f"command: '{cc}'" in msg
    assert "halo-test: kernel.c:1: error: nope" in msg


def test_compiler_error_then_recovery(monkeypatch, tmp_path, fresh_compiler):
    """After a failed build with a bad CC, a good CC builds the same pipeline."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    f = _simple_func(14)
    monkeypatch.setenv("CC", "false")
    with pytest.raises(hl.CompilerToolError):
        f.realize([4])
    monkeypatch.delenv("CC")
    compiler.find_compiler.cache_clear()
    np.testing.assert_array_equal(np.asarray(f.realize([4])), _ramp(4) * 14 + 1)


def test_cache_dir_is_a_file(monkeypatch, tmp_path):
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    monkeypatch.setenv("HALO_CACHE_DIR", str(path))
    with pytest.raises(hl.CompilerToolError,
                       match=rf"The halo cache path {re.escape(str(path))} exists and is not a "
                             rf"directory"):
        _simple_func(15).realize([4])


def test_cache_dir_under_a_file(monkeypatch, tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    monkeypatch.setenv("HALO_CACHE_DIR", str(path / "sub"))
    with pytest.raises(hl.CompilerToolError,
                       match=rf"Cannot create the halo cache directory {re.escape(str(path))}"):
        _simple_func(16).realize([4])


def test_read_only_cache_dir(monkeypatch, tmp_path):
    root = tmp_path / "ro-cache"
    root.mkdir()
    root.chmod(0o555)
    monkeypatch.setenv("HALO_CACHE_DIR", str(root))
    if os.geteuid() == 0:
        # root ignores permission bits: make the cache refuse writes instead.
        import filelock

        class _RefusingLock:
            def __init__(self, *a, **k):
                raise PermissionError(13, "Permission denied", str(root))
        monkeypatch.setattr(filelock, "FileLock", _RefusingLock)
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m, *a, **k:
                            False if Path(p) == root and m & os.W_OK else real_access(p, m))
    try:
        f = _simple_func(17)
        np.testing.assert_array_equal(np.asarray(f.realize([4])), _ramp(4) * 17 + 1)
        assert not list(root.iterdir())
    finally:
        root.chmod(0o755)


_CORRUPT_SCRIPT = textwrap.dedent("""
    import numpy as np, halo as hl
    x = hl.Var("x")
    f = hl.Func("corrupt_me")
    f[x] = x * 5 + 2
    print(np.asarray(hl.Pipeline(f).realize([4])).tolist())
""")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_entry_is_rebuilt(monkeypatch, tmp_path, damage):
    """A damaged .so in the cache is rebuilt by a new Pipeline, never loaded.

    Each step is a fresh process: a process that has loaded a library would
    get the loaded copy back from dlopen, not the damaged file.
    """
    cache = tmp_path / "cache"
    env = {**os.environ, "HALO_CACHE_DIR": str(cache)}
    run = lambda: subprocess.run([sys.executable, "-c", _CORRUPT_SCRIPT], env=env,
                                 capture_output=True, text=True, timeout=120)
    first = run()
    assert first.returncode == 0, first.stderr
    (lib,) = cache.glob("*.so")
    data = lib.read_bytes()
    bad = {"garbage": b"\x7fELF not really a library" * 100,
           "truncated": data[:len(data) // 2], "empty": b""}[damage]
    tmp = lib.with_suffix(".tmp")
    tmp.write_bytes(bad)
    os.replace(tmp, lib)
    second = run()
    assert second.returncode == 0, f"rc={second.returncode}\n{second.stderr}"
    assert second.stdout == first.stdout == "[2, 7, 12, 17]\n"
    assert lib.read_bytes() != bad


_KERNEL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, halo as hl
    x = hl.Var("x")
    f = hl.Func("same_name")      # one C function name, two different bodies
    f[x] = x * int(sys.argv[1]) + 2
    print(np.asarray(hl.Pipeline(f).realize([4])).tolist())
""")


def test_cache_entry_of_another_kernel_is_rebuilt(tmp_path):
    """A whole, valid library under the wrong key (another kernel's entry
    copied over this one: a wrong hash) is rebuilt, never run."""
    cache = tmp_path / "cache"
    env = {**os.environ, "HALO_CACHE_DIR": str(cache)}
    run = lambda k: subprocess.run([sys.executable, "-c", _KERNEL_SCRIPT, str(k)], env=env,
                                   capture_output=True, text=True, timeout=120)
    assert run(5).stdout == "[2, 7, 12, 17]\n"
    (five,) = cache.glob("*.so")
    stolen = five.read_bytes()
    assert run(7).stdout == "[2, 9, 16, 23]\n"
    (seven,) = set(cache.glob("*.so")) - {five}
    seven.write_bytes(stolen)               # the x*5 kernel under the x*7 key
    again = run(7)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "[2, 9, 16, 23]\n"
    assert seven.read_bytes() != stolen


def test_file_contents_are_never_executed():
    """Schedule files, caches and other inputs are data: no module of halo
    (outside halo.testing, which runs the source it generates) unpickles,
    evals or execs anything."""
    import ast
    root = Path(hl.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if "testing" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(m.split(".")[0] in ("pickle", "marshal", "shelve", "dill") for m in mods):
                    offenders.append(f"{path}:{node.lineno} imports {mods}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ("eval", "exec", "compile", "__import__"):
                offenders.append(f"{path}:{node.lineno} calls {node.func.id}()")
            if isinstance(node, ast.Attribute) and node.attr in ("load", "loads") and \
                    isinstance(node.value, ast.Name) and node.value.id in ("yaml", "pickle"):
                offenders.append(f"{path}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not offenders, "\n".join(offenders)


def test_corrupt_cache_entry_in_process(monkeypatch, tmp_path):
    """The same, in this process, for a library that was never loaded."""
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    f = _simple_func(18)
    p = hl.Pipeline(f)
    lowered = p._lower()
    from halo.codegen.c import generate_c, c_identifier
    from halo.runtime.target import get_jit_target_from_environment
    fn_name = "halo_" + c_identifier(p.name())[:40]
    source, openmp = generate_c(lowered, fn_name)
    lib = compiler.compile_shared(source, get_jit_target_from_environment().cflags(), openmp,
                                  stem=fn_name)
    lib.write_bytes(b"garbage")
    np.testing.assert_array_equal(np.asarray(hl.Pipeline(f).realize([4])), _ramp(4) * 18 + 1)


# -- Buffer iteration and ImageParam constraints ----------------------------------------

def test_buffer_iteration_matches_halide():
    """Like halide.Buffer (no __iter__), list(b) indexes b[0], b[1], ... until
    the IndexError past the end; a 2-D Buffer refuses one index."""
    import halide
    a = _ramp(4)
    for mod in (hl, halide):
        assert list(mod.Buffer(a)) == [0, 1, 2, 3]
        with pytest.raises(ValueError, match="Incorrect number of dimensions"):
            list(mod.Buffer(a.reshape(2, 2)))
    b = hl.Buffer(a.copy())
    b[2] = 9
    assert list(b) == [0, 1, 9, 3]


def test_imageparam_set_bounds_is_checked():
    im = hl.ImageParam(hl.Int(32), 2, "cons_im")
    im.dim(0).set_bounds(0, 4)
    im.dim(1).set_min(1)
    p = hl.Param(hl.Int(32), "cons_p", 3)
    im.dim(1).set_extent(p)      # p is used only here: still an argument
    x, y = hl.Var("x"), hl.Var("y")
    f = hl.Func("cons_f")
    f[x, y] = im[x, y + 1]
    assert any(a is p for a in f.infer_arguments())

    def run(shape, mins):
        b = hl.Buffer(np.zeros(shape, dtype=np.int32))
        b.set_min(mins)
        im.set(b)
        return f.realize([4, 2])
    run((3, 4), [0, 1])
    for shape, mins, msg in [
            ((3, 5), [0, 1], r"Constraint violated: cons_im.extent.0 \(5\) == 4 \(4\)"),
            ((3, 4), [0, 0], r"Constraint violated: cons_im.min.1 \(0\) == 1 \(1\)"),
            ((4, 4), [0, 1], r"Constraint violated: cons_im.extent.1 \(4\) == cons_p \(3\)")]:
        with pytest.raises(hl.BufferError, match=msg):
            run(shape, mins)
    p.set(4)
    run((4, 4), [0, 1])


@pytest.mark.parametrize("kind", ["parallel", "vectorize"])
def test_storage_outside_a_concurrent_loop_it_is_computed_in(kind):
    """Found by the fuzzer (a store_at outside a parallel loop): every
    iteration wrote its own, overlapping region into the one buffer at once,
    and an update stage raced (wrong sums in most runs). Halide refuses it
    ("potential race condition"); so does halo, naming the Func and loop."""
    x, y, yo, yi = hl.Var("x"), hl.Var("y"), hl.Var("yo"), hl.Var("yi")
    r = hl.RDom([(0, 50)])
    f, out = hl.Func("race_f"), hl.Func("race_out")
    f[x, y] = x * y
    f[x, y] += r.x
    out[x, y] = f[x, y] + f[x, y + 3]
    getattr(out.split(y, yo, yi, 8), kind)(yi)
    f.compute_at(out, yi).store_at(out, yo)
    with pytest.raises(hl.CompileError, match=rf"Func race_f is stored outside the "
                                              rf"{kind.replace('ze', 'zed')} loop over "
                                              rf"race_out.yi but computed within it"):
        out.realize([20, 16])
    f.store_at(out, yi)          # inside the loop: each iteration has its own
    np.testing.assert_array_equal(np.asarray(out.realize([20, 16])),
                                  interp.realize(out, [20, 16])[0])


def test_memoize_of_a_func_fused_by_compute_with():
    """Found by the fuzzer (seed=4242 index=1172: the second call differed
    from the first): a cache hit of f0 skipped its loops, and f1's stage,
    fused into them, with it. Halide 21 gives wrong values on the second
    call too; halo refuses, naming both Funcs."""
    x, y = hl.Var("x"), hl.Var("y")
    f0, f1, out = hl.Func("mw_f0"), hl.Func("mw_f1"), hl.Func("mw_out")
    f0[x, y] = x + y
    f1[x, y] = x * y
    out[x, y] = f0[x, y] + f1[x, y] * 100 + f1[x, y + 1]
    f0.compute_at(out, x)
    f1.compute_at(out, x).compute_with(f0, y)
    f1.memoize()
    with pytest.raises(hl.CompileError, match=r"Func mw_f1: memoize\(\) is not possible here: "
                                              r"its loops are fused with mw_f0's "
                                              r"\(compute_with\)"):
        out.realize([4, 3])


def test_an_output_over_its_own_input_reads_the_input_as_it_was():
    """Realizing into an array that is also an input (or overlaps one) gives
    numpy's answer for `out=`: the input as it was before the call, not as
    the pipeline's own stores left it (before, `f[x] = a[x] + 1` into a[1:]
    ran as a running sum, its loop reading what it had just written)."""
    x = hl.Var("x")
    ip = hl.ImageParam(hl.Float(32), 1, "ip")
    f = hl.Func("f")
    f[x] = ip[x] + 1
    run = hl.Pipeline(f).compile_to_callable([ip])
    a = np.arange(100, dtype=np.float32)
    expected = np.concatenate([a[:1], a[:99] + 1])
    run(a, a[1:])
    np.testing.assert_array_equal(a, expected)
    b = np.arange(100, dtype=np.float32)           # the same through realize()
    ip.set(hl.Buffer(b))
    f.realize(hl.Buffer(b[1:]))
    np.testing.assert_array_equal(b, expected)
    c = np.arange(100, dtype=np.float32)           # in place, reading ahead and behind
    g = hl.Func("g")
    g[x] = ip[hl.max(x - 1, 0)] + ip[hl.min(x + 1, 99)]
    ip.set(hl.Buffer(c))
    g.realize(hl.Buffer(c))
    d = np.arange(100, dtype=np.float32)
    np.testing.assert_array_equal(c, d[np.maximum(np.arange(100) - 1, 0)]
                                  + d[np.minimum(np.arange(100) + 1, 99)])


def test_outputs_that_overlap_each_other_are_refused():
    x = hl.Var("x")
    f = hl.Func("f")
    f[x] = (x, x * 2)
    a = np.zeros(20, dtype=np.int32)
    with pytest.raises(hl.BufferError, match=r"Output buffers f.* overlap in memory"):
        f.realize([hl.Buffer(a[:10]), hl.Buffer(a[5:15])])
    f.realize([hl.Buffer(a[:10]), hl.Buffer(a[10:])])      # side by side: fine
    np.testing.assert_array_equal(a, np.concatenate([np.arange(10), np.arange(10) * 2]))
