"""Storage directives: fold_storage (circular buffers, with their run-time
check), reorder_storage, stack tiles; compared with the interpreter and Halide."""
import numpy as np
import pytest

import halo as hl

from conftest import check


def _sliding(H, inp, fold=None, order=False):
    x, y, yo, yi = H.Var("x"), H.Var("y"), H.Var("yo"), H.Var("yi")
    clamped = H.BoundaryConditions.repeat_edge(inp)
    bx, by = H.Func("bx"), H.Func("by")
    bx[x, y] = clamped[x - 1, y] + clamped[x, y] * 2 + clamped[x + 1, y]
    by[x, y] = bx[x, y - 1] + bx[x, y] + bx[x, y + 1]
    by.split(y, yo, yi, 16).parallel(yo).vectorize(x, 8)
    bx.store_at(by, yo).compute_at(by, yi).vectorize(x, 8)
    if fold:
        bx.fold_storage(y, fold)
    if order:
        bx.reorder_storage(y, x)
    return by


A = np.random.default_rng(1).random((77, 301), dtype=np.float32)


@pytest.mark.parametrize("fold", [3, 4, 8])
def test_fold_storage_with_sliding_window(fold):
    check(lambda H, i: _sliding(H, i, fold=fold), [301, 77], [A], rtol=1e-6, atol=1e-6)


def test_fold_storage_too_small_is_a_runtime_error():
    x, y = hl.Var("x"), hl.Var("y")
    g, h = hl.Func("g"), hl.Func("h")
    g[x, y] = x + y
    h[x, y] = g[x, y] + g[x, y + 5]
    g.compute_root().fold_storage(y, 2)
    with pytest.raises(hl.HalideError, match=r"Func g is folded to 2 in dimension y, but 9 of "
                                             r"its values there are needed at once"):
        h.realize([4, 4])


def test_reorder_storage_changes_layout_not_results():
    check(lambda H, i: _sliding(H, i, order=True), [301, 77], [A], rtol=1e-6, atol=1e-6)


def test_reorder_storage_names_unknown_dimension():
    x = hl.Var("x")
    f = hl.Func("f")
    f[x] = x
    with pytest.raises(hl.CompileError, match=r"reorder_storage\(\) of unknown dimension 'q'"):
        f.reorder_storage(hl.Var("q"))


def test_sliding_window_computes_each_row_once():
    """With store_root + compute_at a serial y loop, the producer's region
    per iteration shrinks to the one new row (visible in the loop nest)."""
    x, y = hl.Var("x"), hl.Var("y")
    inp = hl.Buffer(np.arange(200, dtype=np.int32).reshape(10, 20))
    f, g = hl.Func("f"), hl.Func("g")
    f[x, y] = inp[x, y] * 2
    g[x, y] = f[x, y] + f[x, y + 1] + f[x, y + 2]
    f.store_root().compute_at(g, y)
    text = hl.Pipeline(g).loop_nest_text()
    assert "select(" in text and ".s0.y.min" in text
    from halo import interp
    np.testing.assert_array_equal(np.asarray(g.realize([20, 8])), interp.realize(g, [20, 8])[0])


def test_specialize_chooses_schedule_at_run_time_and_fail():
    from halo import interp
    x, y = hl.Var("x"), hl.Var("y")
    p = hl.Param(hl.Int(32), "p", 3)
    inp = hl.Buffer(np.arange(300, dtype=np.int32).reshape(15, 20))
    f = hl.Func("f")
    f[x, y] = inp[x, y] * p
    f.specialize(p > 2).vectorize(x, 8).parallel(y)
    f.specialize(p == 0).split(x, x, hl.Var("xi"), 4)
    for v in (3, 0, 1):
        p.set(v)
        np.testing.assert_array_equal(np.asarray(f.realize([20, 15])),
                                      interp.realize(f, [20, 15])[0])
    assert "#pragma omp parallel" in hl.Pipeline(f).c_source()
    g = hl.Func("g")
    g[x] = x * p
    g.specialize(p == 1)
    g.specialize_fail("p must be 1")
    p.set(1)
    assert list(np.asarray(g.realize([3]))) == [0, 1, 2]
    p.set(2)
    with pytest.raises(hl.HalideError, match="p must be 1"):
        g.realize([3])
    with pytest.raises(hl.CompileError, match="may only use Params and constants, not x"):
        g.specialize(x > 1)


def test_specialized_schedules_are_refused_by_schedule_files(tmp_path):
    x = hl.Var("x")
    p = hl.Param(hl.Int(32), "p", 3)
    f = hl.Func("f")
    f[x] = x * p
    f.specialize(p > 2).vectorize(x, 8)
    with pytest.raises(hl.HalideError, match=r"specialize\(\) cannot be saved"):
        hl.Pipeline(f).save_schedule(str(tmp_path / "f.json"))


def _chain(H, inp, stages=4):
    """A chain of 3-row stencils, each stage stored per strip and computed
    per output row (Halide's stencil_chain CPU schedule)."""
    x, y, yo, yi = H.Var("x"), H.Var("y"), H.Var("yo"), H.Var("yi")
    prev = H.BoundaryConditions.repeat_edge(inp)
    funcs = []
    for s in range(stages):
        f = H.Func(f"st{s}")
        f[x, y] = prev[x, y - 1] + prev[x, y] * 2 + prev[x + 1, y + 1]
        funcs.append(f)
        prev = f
    out = funcs[-1]
    out.compute_root().split(y, yo, yi, 32).parallel(yo).vectorize(x, 8)
    for f in funcs[:-1]:
        f.store_at(out, yo).compute_at(out, yi).vectorize(f.args()[0], 8)
    return out, funcs


def test_every_stage_of_a_stencil_chain_slides():
    """Each stage of the chain computes only its new rows per iteration, not
    just the last one (producers slide before their consumers)."""
    check(lambda H, i: _chain(H, i)[0], [301, 77], [A], rtol=1e-5, atol=1e-4)
    out, funcs = _chain(hl, hl.Buffer(A))
    text = hl.Pipeline(out).loop_nest_text()
    import re
    for k in range(len(funcs) - 1):      # names may carry a $n suffix
        assert re.search(rf"let st{k}(\$\d+)?\.s0\.y\.min = select\(", text), k


def test_root_intermediates_are_freed_after_their_last_use():
    """A chain of compute_root Funcs frees each buffer once its consumer is
    done (Halide's EarlyFree), so a buffer's memory can serve the next one;
    results unchanged."""
    def build(H, inp):
        x, y = H.Var("x"), H.Var("y")
        prev, funcs = inp, []
        for k in range(3):
            f = H.Func(f"r{k}")
            f[x, y] = prev[x, y] + prev[y, x] * (k + 1)
            funcs.append(f)
            prev = f
        for f in funcs[:-1]:
            f.compute_root()
        return funcs[-1]
    a = np.random.default_rng(5).random((40, 40), dtype=np.float32)
    check(build, [40, 40], [a], rtol=1e-5, atol=1e-5)
    src = hl.Pipeline(build(hl, hl.Buffer(a))).c_source()
    body = src[src.index("_impl("):]
    # r0 is freed once r1 is computed (r1 allocated while r0 lives), before r2 runs
    free_r0 = body.index("halo_free(_r0")
    assert body.index("halo_malloc", body.index("*_r1")) < free_r0 < body.index("_r2[")
