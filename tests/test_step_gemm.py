"""Tests of the per-step recurrent products (seqclf/_step_gemm.h).

The products h_{t-1} U (forward) and dpre U^T (backward) run in seqclf's
micro-kernels on U packed once per call, at the AVX2 and AVX-512 levels, and
in BLAS's GEMM otherwise. Both paths are checked here against NumPy on the
shapes that exercise every edge of the tiling: rows that are not a multiple
of the tile height (1 to 17, one chunk of the kernels and one more),
columns that end inside a panel, and depths of 0 and 1. The kernel tests
(tests/test_kernels.py) run on both paths too.
"""

import numpy as np
import pytest

from seqclf import _kernels, _kernels_testing
from seqclf._openmp_helpers import single_threaded_blas

STEP_PATHS = ("own", "blas") if _kernels.step_products() == "own" else ("blas",)
RTOL = {np.float32: 1e-5, np.float64: 1e-13}


@pytest.fixture(params=STEP_PATHS)
def path(request):
    previous = _kernels_testing.use_own_step_products(request.param == "own")
    yield request.param
    _kernels_testing.use_own_step_products(previous)


def _check(A, U, transpose):
    B = U.T if transpose else U
    expected = A.astype(np.float64) @ B.astype(np.float64)
    with single_threaded_blas():
        got = _kernels_testing.step_product(A, U, transpose)
    assert got.shape == expected.shape and got.dtype == A.dtype
    # Relative to the size of the terms summed, so that cancellation does
    # not make a correct result look wrong.
    scale = np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64)
    bound = RTOL[A.dtype.type] * (scale + 1)
    np.testing.assert_array_less(np.abs(got - expected), bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("transpose", [False, True], ids=["hU", "dUT"])
@pytest.mark.parametrize("m", [1, 2, 3, 5, 6, 7, 8, 9, 12, 15, 16, 17])
def test_rows_against_numpy(path, dtype, transpose, m):
    rng = np.random.default_rng(m)
    for k, n in [(1, 1), (7, 5), (31, 31), (32, 128), (33, 17), (128, 512), (100, 300)]:
        U = rng.standard_normal((n, k) if transpose else (k, n)).astype(dtype)
        A = rng.standard_normal((m, k)).astype(dtype)
        _check(A, U, transpose)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65])
def test_columns_ending_inside_a_panel(path, dtype, n):
    rng = np.random.default_rng(n)
    for transpose in (False, True):
        k = 20
        U = rng.standard_normal((n, k) if transpose else (k, n)).astype(dtype)
        A = rng.standard_normal((16, k)).astype(dtype)
        _check(A, U, transpose)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_zero_depth_gives_zeros(path, dtype):
    A = np.empty((5, 0), dtype=dtype)
    got = _kernels_testing.step_product(A, np.empty((0, 9), dtype=dtype), False)
    np.testing.assert_array_equal(got, np.zeros((5, 9), dtype=dtype))


def test_nan_and_inf_propagate(path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((9, 40)).astype(np.float32)
    U = rng.standard_normal((40, 70)).astype(np.float32)
    A[3, 5] = np.nan
    U[7, 2] = np.inf
    got = _kernels_testing.step_product(A, U, False)
    assert np.isnan(got[3]).all()
    rows = np.arange(9) != 3
    assert np.isinf(got[rows, 2]).all() or np.isnan(got[rows, 2]).any()
    expected_finite = np.ones((9, 70), dtype=bool)
    expected_finite[3] = False
    expected_finite[:, 2] = False
    assert np.isfinite(got[expected_finite]).all()


@pytest.mark.skipif("own" not in STEP_PATHS,
                    reason="no micro-kernel on this CPU or build")
def test_result_does_not_depend_on_the_rows_beside_it():
    # The micro-kernels sum each entry in depth order whatever the tile it
    # is in: a row computed alone equals the same row in a chunk of 17
    # (BLAS gives no such promise: one row goes through its GEMV).
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        A = rng.standard_normal((17, 128)).astype(dtype)
        U = rng.standard_normal((128, 512)).astype(dtype)
        whole = _kernels_testing.step_product(A, U, False)
        for i in (0, 5, 16):
            row = np.ascontiguousarray(A[i:i + 1])
            alone = _kernels_testing.step_product(row, U, False)
            np.testing.assert_array_equal(alone[0], whole[i])


def test_path_switch_round_trips():
    before = _kernels.step_products()
    previous = _kernels_testing.use_own_step_products(False)
    try:
        assert _kernels.step_products() == "blas"
    finally:
        _kernels_testing.use_own_step_products(previous)
    assert _kernels.step_products() == before


def test_bad_arguments():
    a = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="columns"):
        _kernels_testing.step_product(a, np.zeros((4, 5), dtype=np.float32), False)
    with pytest.raises(TypeError, match="both float32"):
        _kernels_testing.step_product(a, np.zeros((3, 5), dtype=np.float64), False)
    with pytest.raises(ValueError, match="C-contiguous"):
        _kernels_testing.step_product(a.T, np.zeros((2, 5), dtype=np.float32), False)
