"""Tests of the compiled kernels (seqclf._kernels).

The kernels are checked against the NumPy oracle (seqclf.reference), against
central finite differences, and for the properties the oracle cannot show:
inference/training agreement, thread-count determinism, padding that is
never read, NaN propagation, the float32 gate approximations, edge sizes and
argument validation.

Tolerances against the reference (relative to the max-abs of each array)
-------------------------------------------------------------------------
float64: ``1e-10``. Kernels and reference evaluate the same operations in
the same dtype; only the summation order differs (blocked BLAS GEMMs and
per-chunk gradient sums against NumPy's ``@`` and pairwise ``sum``), and
libm's ``exp``/``tanh`` against NumPy's, both within an ulp. Measured
differences are below 2e-15 of the max-abs, so 1e-10 is tight enough to
catch any real mistake while leaving room for other BLAS builds.

float32: ``1e-5``. float32 has eps = 1.2e-7 and the kernels' float32
sigmoid/tanh are polynomial approximations with relative error up to ~2e-7
(the reference uses NumPy's float32 functions). These errors are propagated
and amplified through T recurrent steps and the backward pass, and the
weight gradients sum N*T (up to 420) rows in a different order. Over the
configurations of this file the largest measured difference is 8.9e-7 of
the max-abs (dU of the ReLU RNN), with h_last <= 3.7e-7, h_seq <= 3.3e-7,
dX <= 3.1e-7, dW <= 7.6e-7 and biases <= 8.1e-7; over several other seeds
it stayed below 1.2e-6. 1e-5 keeps a ~10x margin, while a real error (a
wrong gate, a missed or extra step) shows up at 1e-2 or more.
"""

import re

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from seqclf import _kernels, _kernels_testing, _layers, reference
from seqclf._cells import CELLS as REGISTRY
from seqclf._cells import N_GATES, cache_shapes, param_shapes
from seqclf._openmp_helpers import single_threaded_blas

from ._fd import central_differences
from ._helpers import run_inference, run_kernels
from .conftest import CELL_ACTIVATION_IDS as CELL_IDS
from .conftest import CELL_ACTIVATIONS as CELLS
from .conftest import DTYPE_IDS, DTYPES, FD_ATOL, FD_EPS, FD_RTOL
from .conftest import KERNEL_RTOL as RTOL

CHUNK = _kernels.chunk_size()
T, F, H = 6, 4, 5

# Every test here runs on each path of the per-step recurrent products that
# this build and CPU have: seqclf's micro-kernels and BLAS's blocked GEMM.
STEP_PATHS = ("own", "blas") if _kernels.step_products() == "own" else ("blas",)


@pytest.fixture(autouse=True, params=STEP_PATHS)
def step_products(request):
    previous = _kernels_testing.use_own_step_products(request.param == "own")
    assert _kernels.step_products() == request.param
    yield request.param
    _kernels_testing.use_own_step_products(previous)


# ---------------------------------------------------------------------------
# Problem generation and comparison helpers
# ---------------------------------------------------------------------------


def make_lengths(rng, n, t, kind):
    if kind == "equal":
        return np.full(n, t, dtype=np.intp)
    lengths = rng.integers(1, t + 1, size=n).astype(np.intp)
    # Always include the extreme lengths 1 and T.
    lengths[0] = 1
    if n > 1:
        lengths[-1] = t
    if n > 2:
        lengths[n // 2] = 1
    return lengths


def make_problem(cell, dtype, *, n=70, t=T, f=F, h=H, lengths="unequal",
                 mask=False, seed=0, p_drop=0.25):
    """Random inputs, parameters, dropout mask and loss coefficients.

    Everything is drawn in float64 and then cast, so float32 and float64
    runs see the same data (up to rounding).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, t, f))
    lens = make_lengths(rng, n, t, lengths)
    params = reference.init_params(cell, f, h, random_state=rng)
    m = None
    if mask:
        # Inverted dropout: keep with probability 1 - p, scaled by 1/(1-p).
        m = (rng.random((n, h)) >= p_drop) / (1 - p_drop)
        m = m.astype(dtype)
    A = rng.standard_normal((n, h)).astype(dtype)  # dL/dh_last
    B = rng.standard_normal((n, t, h)).astype(dtype)  # dL/dh_seq
    params = {k: v.astype(dtype) for k, v in params.items()}
    return X.astype(dtype), lens, params, m, A, B


def assert_close(actual, desired, rtol, name):
    """Agreement to ``rtol`` times the max-abs of ``desired``."""
    assert actual.shape == desired.shape, name
    assert actual.dtype == desired.dtype, name
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    assert np.all(np.isfinite(actual)), f"{name}: non-finite kernel output"
    np.testing.assert_allclose(
        actual, desired, rtol=0, atol=rtol * scale, err_msg=name
    )


def assert_relu_margin(X, lengths, params, mask, reverse, margin):
    """Fail if a ReLU pre-activation is so close to 0 that rounding (or a
    finite-difference step) could put the two sides of the comparison on
    different sides of the kink; the fix is another seed, not a tolerance."""
    _, _, cache = reference.forward(
        "rnn", X, lengths, params, mask=mask, reverse=reverse, activation="relu"
    )
    valid = np.arange(X.shape[1])[None, :] < lengths[:, None]
    pre = cache["gates"][valid]
    assert np.min(np.abs(pre)) > margin, "ReLU pre-activation too close to 0"


def run_reference(cell, X, lengths, params, *, mask=None, reverse=False,
                  activation="tanh", dh_last=None, dh_seq=None):
    kw = dict(mask=mask, reverse=reverse, activation=activation)
    h_last, h_seq, cache = reference.forward(cell, X, lengths, params, **kw)
    grads, dX = reference.backward(
        cell, X, lengths, params, cache, dh_last=dh_last, dh_seq=dh_seq, **kw
    )
    return h_last, h_seq, grads, dX


def run_all(cell, X, lengths, params, *, mask=None, reverse=False,
            activation="tanh", dh_last=None, dh_seq=None, n_threads=1):
    """Training forward and backward through the kernels, returning every
    array they write (h_last, all caches, all gradients, dX) in a dict."""
    N, T_, F_ = X.shape
    H_ = params["U"].shape[0]
    dtype = X.dtype
    fwd = {k: np.full(s, np.nan, dtype=dtype)
           for k, s in cache_shapes(cell, N, T_, H_).items()}
    fwd["h_last"] = np.full((N, H_), np.nan, dtype=dtype)
    bwd = {"d" + k: np.full(s, np.nan, dtype=dtype)
           for k, s in param_shapes(cell, F_, H_).items()}
    bwd["dX"] = np.full(X.shape, np.nan, dtype=dtype)
    kw = dict(mask=mask, reverse=reverse, activation=activation,
              n_threads=n_threads)
    with single_threaded_blas():
        _, _, cache = _layers.forward(cell, X, lengths, params, out=fwd, **kw)
        _layers.backward(cell, X, lengths, params, cache, dh_last, dh_seq,
                         out=bwd, **kw)
    return {**fwd, **bwd}


def assert_dicts_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def padded(lengths, t):
    """Boolean (N, T) mask of the padded positions."""
    return np.arange(t)[None, :] >= np.asarray(lengths)[:, None]


# ---------------------------------------------------------------------------
# 1. Kernels against the NumPy reference
# ---------------------------------------------------------------------------


def run_both(cell, activation, X, lengths, params, mask, reverse, dh_last,
             dh_seq):
    """(kernels, reference) results of one training forward + backward."""
    kw = dict(mask=mask, reverse=reverse, activation=activation,
              dh_last=dh_last, dh_seq=dh_seq)
    if activation == "relu":
        assert_relu_margin(X, lengths, params, mask, reverse, 1e-5)
    return (run_kernels(cell, X, lengths, params, **kw),
            run_reference(cell, X, lengths, params, **kw))


def check_against_reference(cell, activation, dtype, lengths_kind, reverse,
                            with_mask, loss_kind, *, n, seed=0, **shape):
    X, lengths, params, mask, A, B = make_problem(
        cell, dtype, n=n, lengths=lengths_kind, mask=with_mask, seed=seed,
        **shape)
    dh_last = None if loss_kind == "seq" else A
    dh_seq = None if loss_kind == "last" else B
    actual, expected = run_both(cell, activation, X, lengths, params, mask,
                                reverse, dh_last, dh_seq)
    rtol = RTOL[np.dtype(dtype)]
    for name, a, e in [("h_last", actual[0], expected[0]),
                       ("h_seq", actual[1], expected[1]),
                       ("dX", actual[3], expected[3])]:
        assert_close(a, e, rtol, name)
    assert actual[2].keys() == expected[2].keys()
    for name in expected[2]:
        assert_close(actual[2][name], expected[2][name], rtol, "d" + name)
        # The comparison is not vacuous.
        assert np.max(np.abs(expected[2][name])) > 1e-3, name


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("lengths_kind, n", [("equal", 45), ("unequal", 70)],
                         ids=["equal", "unequal"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_matches_reference(cell, activation, dtype, lengths_kind, n, reverse,
                           with_mask):
    # n = 45 and 70 span several chunks, the last one partial.
    assert n > CHUNK and n % CHUNK != 0
    check_against_reference(cell, activation, dtype, lengths_kind, reverse,
                            with_mask, "both", n=n)


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("loss_kind", ["last", "seq"])
def test_matches_reference_one_output_gradient(cell, activation, dtype,
                                               reverse, loss_kind):
    check_against_reference(cell, activation, dtype, "unequal", reverse,
                            True, loss_kind, n=37, seed=1)


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
def test_backward_without_dX(cell, activation):
    # dX=None skips dX and leaves the parameter gradients unchanged.
    X, lengths, params, mask, A, B = make_problem(cell, np.float64, mask=True)
    full = run_all(cell, X, lengths, params, mask=mask, activation=activation,
                   dh_last=A, dh_seq=B)
    out = {"d" + k: np.full_like(v, np.nan) for k, v in params.items()}
    cache = {k: full[k] for k in cache_shapes(cell, *X.shape[:2], H)}
    with single_threaded_blas():
        grads, dX = _layers.backward(cell, X, lengths, params, cache, A, B,
                                     mask=mask, activation=activation,
                                     compute_dX=False, out=out)
    assert dX is None
    for k in params:
        np.testing.assert_array_equal(grads[k], full["d" + k], err_msg=k)


# ---------------------------------------------------------------------------
# 2. Inference forward = training forward, bit for bit
# ---------------------------------------------------------------------------


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_seq", [True, False], ids=["seq", "noseq"])
def test_inference_equals_training_forward(cell, activation, dtype, reverse,
                                           with_seq):
    X, lengths, params, _, _, _ = make_problem(cell, dtype, n=70, seed=3)
    kw = dict(reverse=reverse, activation=activation)
    h_last, h_seq, _, _ = run_kernels(cell, X, lengths, params, backward=False,
                                      **kw)
    h_last_inf, h_seq_inf = run_inference(cell, X, lengths, params,
                                          with_seq=with_seq, **kw)
    np.testing.assert_array_equal(h_last_inf, h_last)
    if with_seq:
        np.testing.assert_array_equal(h_seq_inf, h_seq)
    else:
        assert h_seq_inf is None
    assert np.all(np.isfinite(h_last))


# ---------------------------------------------------------------------------
# 3. Thread count does not change any bit
# ---------------------------------------------------------------------------


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_thread_count_bit_identical(cell, activation, dtype):
    n = 2 * CHUNK + 6  # 3 chunks, the last one partial
    assert -(-n // CHUNK) == 3
    X, lengths, params, mask, A, B = make_problem(cell, dtype, n=n, mask=True,
                                                  seed=4)
    for reverse in (False, True):
        kw = dict(mask=mask, reverse=reverse, activation=activation,
                  dh_last=A, dh_seq=B)
        base = run_all(cell, X, lengths, params, n_threads=1, **kw)
        for k, v in base.items():
            assert np.all(np.isfinite(v)), k  # every OUT entry written
        # 2 threads; 5 > number of chunks.
        for n_threads in (2, 5):
            other = run_all(cell, X, lengths, params, n_threads=n_threads, **kw)
            assert_dicts_equal(other, base)
        # threadpoolctl limits (BLAS and OpenMP) change nothing either.
        with threadpool_limits(1):
            for n_threads in (1, 2):
                other = run_all(cell, X, lengths, params, n_threads=n_threads,
                                **kw)
                assert_dicts_equal(other, base)
        # Inference too.
        inf1 = run_inference(cell, X, lengths, params, reverse=reverse,
                             activation=activation, n_threads=1)
        inf2 = run_inference(cell, X, lengths, params, reverse=reverse,
                             activation=activation, n_threads=2)
        np.testing.assert_array_equal(inf1[0], inf2[0])
        np.testing.assert_array_equal(inf1[1], inf2[1])


# ---------------------------------------------------------------------------
# 4. Padding is never read, outputs are exactly zero there
# ---------------------------------------------------------------------------


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_padding_is_never_read(cell, activation, dtype, reverse):
    X, lengths, params, mask, A, B = make_problem(cell, dtype, n=70, mask=True,
                                                  seed=5)
    pad = padded(lengths, T)
    assert pad.any() and (~pad).all(axis=1).any()
    X[pad] = 0
    B_zero = B.copy()
    B_zero[pad] = 0
    rng = np.random.default_rng(0)
    X_bad = X.copy()
    garbage = rng.choice(
        np.array([np.nan, np.inf, -np.inf, 1e30, -1e30,
                  np.finfo(dtype).max], dtype=dtype),
        size=X_bad[pad].shape)
    X_bad[pad] = garbage
    B_bad = B.copy()
    B_bad[pad] = rng.choice(np.array([np.nan, np.inf, 1e30], dtype=dtype),
                            size=B_bad[pad].shape)
    kw = dict(mask=mask, reverse=reverse, activation=activation, dh_last=A)

    clean = run_all(cell, X, lengths, params, dh_seq=B_zero, **kw)
    dirty = run_all(cell, X_bad, lengths, params, dh_seq=B_bad, **kw)
    for k in ["h_last", "h_seq", "dX"] + ["d" + p for p in params]:
        np.testing.assert_array_equal(dirty[k], clean[k], err_msg=k)
        assert np.all(np.isfinite(dirty[k])), k
    # Exactly zero past the lengths (and not trivially zero before).
    assert np.all(dirty["h_seq"][pad] == 0)
    assert np.all(dirty["dX"][pad] == 0)
    assert np.any(dirty["h_seq"] != 0, axis=2)[~pad].mean() > 0.9

    # dh_seq garbage alone, with clean X.
    only_b = run_all(cell, X, lengths, params, dh_seq=B_bad, **kw)
    for k in ["dX"] + ["d" + p for p in params]:
        np.testing.assert_array_equal(only_b[k], clean[k], err_msg=k)

    # Inference.
    inf_clean = run_inference(cell, X, lengths, params, reverse=reverse,
                              activation=activation)
    inf_dirty = run_inference(cell, X_bad, lengths, params, reverse=reverse,
                              activation=activation)
    np.testing.assert_array_equal(inf_dirty[0], inf_clean[0])
    np.testing.assert_array_equal(inf_dirty[1], inf_clean[1])
    assert np.all(inf_dirty[1][pad] == 0)


# ---------------------------------------------------------------------------
# 5. NaN in a valid entry is propagated
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_nan_in_valid_input_propagates(cell, activation, dtype, reverse):
    X, lengths, params, _, A, B = make_problem(cell, dtype, n=70, seed=6)
    bad = 40  # in the second chunk
    lengths[bad] = 4
    first = lengths[bad] - 1 if reverse else 0  # first processed position
    X[bad, first, 1] = np.nan
    kw = dict(reverse=reverse, activation=activation)
    out = run_all(cell, X, lengths, params, dh_last=A, dh_seq=B, **kw)
    others = np.arange(70) != bad

    assert np.all(np.isnan(out["h_last"][bad]))
    assert np.all(np.isfinite(out["h_last"][others]))
    assert np.all(np.isnan(out["h_seq"][bad, :lengths[bad]]))
    assert np.all(out["h_seq"][bad, lengths[bad]:] == 0)
    assert np.all(np.isfinite(out["h_seq"][others]))
    # Gradients: the other sequences' dX stay finite; the weight gradients,
    # which sum over all sequences, are NaN rather than silently cleaned.
    assert np.all(np.isfinite(out["dX"][others]))
    if activation != "relu":
        assert np.any(np.isnan(out["dX"][bad, :lengths[bad]]))
    # (For ReLU, the derivative test "h > 0" is false for NaN, so dh does not
    # pass back through a NaN step and that sequence's dX stays finite, as in
    # the reference's gh * (pre > 0); dW and dU still see the NaN inputs.)
    assert np.any(np.isnan(out["dW"]))
    assert np.any(np.isnan(out["dU"]))

    h_last_inf, h_seq_inf = run_inference(cell, X, lengths, params, **kw)
    np.testing.assert_array_equal(h_last_inf, out["h_last"])
    np.testing.assert_array_equal(h_seq_inf, out["h_seq"])


# ---------------------------------------------------------------------------
# 6. Gate nonlinearities
# ---------------------------------------------------------------------------


def sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


GATES = {"sigmoid": sigmoid64, "tanh": np.tanh}


def gate_grid():
    tiny = np.geomspace(1e-45, 1e-2, 4001)
    return np.concatenate([np.linspace(-100, 100, 2_000_001), tiny, -tiny,
                           [0.0, -0.0]])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gate_math_accuracy(name, dtype):
    x = gate_grid().astype(dtype)
    y = x.copy()
    _kernels_testing.gate_math(y, name)
    assert y.dtype == dtype
    expected = GATES[name](x.astype(np.float64))  # exact input, float64 math
    err = np.abs(y.astype(np.float64) - expected)
    lo = 0.0 if name == "sigmoid" else -1.0
    assert np.all((y >= lo) & (y <= 1))

    # Relative error where the value is not tiny (|value| > 1e-30).
    big = np.abs(expected) > 1e-30
    rel = err[big] / np.abs(expected[big])
    limit = 1e-6 if dtype == np.float32 else 1e-14
    assert rel.max() < limit, (rel.max(), x[big][np.argmax(rel)])
    # Everywhere, including sigmoid's values below 1e-30 (x < -69): the same
    # relative bound, plus for float32 an absolute floor of 2**-125. From
    # x < -87.3 the true value is a float32 subnormal or underflows, so no
    # float32 result can be relatively accurate there, and the float32 exp
    # flushes to 0 below x = -87 (true value < 1.7e-38 < 2**-125).
    floor = 2.0**-125 if dtype == np.float32 else 0.0
    bad = err > limit * np.abs(expected) + floor
    assert not bad.any(), x[bad][:5]
    if dtype == np.float32 and name == "tanh":
        # The odd polynomial near 0 has no cancellation: tiny inputs come
        # back unchanged, down to the smallest normal float32; subnormal
        # inputs count as zero in the kernels (denormals-are-zero).
        tiny = np.finfo(np.float32).tiny
        small = (np.abs(x) < 1e-10) & (np.abs(x) >= tiny)
        assert small.sum() > 100
        np.testing.assert_array_equal(y[small], x[small])
        subnormal = np.abs(x) < tiny
        assert subnormal.sum() > 100
        np.testing.assert_array_equal(y[subnormal], 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gate_math_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e38, -1e38], dtype=dtype)
    s = x.copy()
    _kernels_testing.gate_math(s, "sigmoid")
    assert np.isnan(s[0])
    np.testing.assert_array_equal(s[1:], [1, 0, 0.5, 0.5, 1, 0])
    t = x.copy()
    _kernels_testing.gate_math(t, "tanh")
    assert np.isnan(t[0])
    np.testing.assert_array_equal(t[1:], [1, -1, 0, 0, 1, -1])


@pytest.mark.memcheck
@pytest.mark.parametrize("n", [1, 3, 17, 1000])
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gate_math_vector_tails(n, name, dtype):
    # Odd lengths exercise the scalar tails of vectorised loops; the array
    # is a slice of a larger buffer whose sentinels must stay untouched.
    rng = np.random.default_rng(n)
    buf = np.full(n + 40, 7.0, dtype=dtype)
    x = rng.uniform(-12, 12, size=n).astype(dtype)
    x[-1] = np.nan  # the very last element, in the tail
    if n > 2:
        x[-2] = -np.inf
    buf[5:5 + n] = x
    view = buf[5:5 + n]
    assert view.flags.c_contiguous
    _kernels_testing.gate_math(view, name)
    assert np.all(buf[:5] == 7) and np.all(buf[5 + n:] == 7)
    expected = GATES[name](x.astype(np.float64))
    assert np.isnan(view[-1])
    limit = 1e-6 if dtype == np.float32 else 1e-14
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(view[ok].astype(np.float64), expected[ok],
                               rtol=limit, atol=0)


# ---------------------------------------------------------------------------
# 7. Edge sizes
# ---------------------------------------------------------------------------

EDGE_SHAPES = {
    "N1": dict(n=1, t=5, f=3, h=4, lengths="equal"),
    "N1-padded": dict(n=1, t=5, f=3, h=4),  # its only sequence has length 1
    "T1": dict(n=40, t=1, f=3, h=4),
    "H1": dict(n=33, t=5, f=3, h=1),
    "F1": dict(n=33, t=5, f=1, h=4),
    "all1": dict(n=1, t=1, f=1, h=1),
}


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", list(EDGE_SHAPES), ids=list(EDGE_SHAPES))
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_edge_sizes_match_reference(cell, activation, dtype, shape, reverse):
    s = EDGE_SHAPES[shape]
    X, lengths, params, mask, A, B = make_problem(
        cell, dtype, n=s["n"], t=s["t"], f=s["f"], h=s["h"], mask=s["h"] > 1,
        lengths=s.get("lengths", "unequal"), seed=7)
    actual, expected = run_both(cell, activation, X, lengths, params, mask,
                                reverse, A, B)
    rtol = RTOL[np.dtype(dtype)]
    assert_close(actual[0], expected[0], rtol, "h_last")
    assert_close(actual[1], expected[1], rtol, "h_seq")
    assert_close(actual[3], expected[3], rtol, "dX")
    for name in params:
        assert_close(actual[2][name], expected[2][name], rtol, "d" + name)
    # Inference (which has no dropout) = training forward without a mask.
    train = run_kernels(cell, X, lengths, params, reverse=reverse,
                        activation=activation, backward=False)
    inf = run_inference(cell, X, lengths, params, reverse=reverse,
                        activation=activation)
    np.testing.assert_array_equal(inf[0], train[0])
    np.testing.assert_array_equal(inf[1], train[1])


@pytest.mark.memcheck
@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_empty_batch(cell, activation, dtype):
    N, T_, F_, H_ = 0, 4, 3, 2
    X = np.zeros((N, T_, F_), dtype=dtype)
    lengths = np.zeros(0, dtype=np.intp)
    params = reference.init_params(cell, F_, H_, random_state=0, dtype=dtype)
    out = run_all(cell, X, lengths, params, activation=activation,
                  dh_last=np.zeros((N, H_), dtype=dtype),
                  dh_seq=np.zeros((N, T_, H_), dtype=dtype))
    for k in params:
        np.testing.assert_array_equal(out["d" + k], 0, err_msg=k)
    assert out["dX"].shape == (0, T_, F_) and out["h_last"].shape == (0, H_)
    h_last, h_seq = run_inference(cell, X, lengths, params,
                                  activation=activation)
    assert h_last.shape == (0, H_) and h_seq.shape == (0, T_, H_)


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
def test_lengths_dtypes_and_readonly_inputs(cell, activation):
    # Any integer dtype is accepted for lengths, and read-only inputs work.
    X, lengths, params, mask, A, B = make_problem(cell, np.float64, n=40,
                                                  mask=True, seed=8)
    kw = dict(mask=mask, activation=activation, dh_last=A, dh_seq=B)
    base = run_all(cell, X, lengths, params, **kw)
    for dt in (np.int32, np.uint8, np.int64):
        other = run_all(cell, X, lengths.astype(dt), params, **kw)
        assert_dicts_equal(other, base)
    ro = [X, lengths, mask, A, B, *params.values()]
    for a in ro:
        a.flags.writeable = False
    other = run_all(cell, X, lengths, params, **kw)
    assert_dicts_equal(other, base)


# ---------------------------------------------------------------------------
# 8. Argument validation
# ---------------------------------------------------------------------------

VN, VT, VF, VH = 5, 4, 3, 2
BIAS = {c: list(REGISTRY[c].biases) for c in REGISTRY}
CACHE_NAMES = {c: ["h_prev", *REGISTRY[c].caches] for c in REGISTRY}
# Each cell's training forward, inference forward and backward pass, as
# "<cell>_<kind>"; their arguments are given as one flat dict (see call).
FUNCS = [f"{c}_{k}" for c in REGISTRY
         for k in ("forward", "forward_inference", "backward")]


def valid_args(func):
    """Arguments of a valid call of ``func`` (float64), as one flat dict."""
    cell, kind = func.split("_", 1)
    rng = np.random.default_rng(9)
    X = rng.standard_normal((VN, VT, VF))
    lengths = np.array([4, 1, 3, 4, 2], dtype=np.intp)
    params = reference.init_params(cell, VF, VH, random_state=rng)
    args = {"X": X, "lengths": lengths, **params}
    shapes = cache_shapes(cell, VN, VT, VH)
    caches = {k: np.zeros(s) for k, s in shapes.items()}
    fwd = {"X": X, "lengths": lengths, **params,
           "h_last": np.zeros((VN, VH)), "h_seq": caches["h_seq"],
           **{k: caches[k] for k in CACHE_NAMES[cell]}}
    call(f"{cell}_forward", fwd)  # fill the caches
    if kind == "forward":
        return fwd
    if kind == "forward_inference":
        return {"X": X, "lengths": lengths, **params,
                "h_last": np.zeros((VN, VH)), "h_seq": np.zeros((VN, VT, VH))}
    args["h_seq"] = caches["h_seq"]
    args.update({k: caches[k] for k in CACHE_NAMES[cell]})
    args["dh_last"] = rng.standard_normal((VN, VH))
    args["dh_seq"] = rng.standard_normal((VN, VT, VH))
    for k, v in params.items():
        if k != "W" and k != "U":
            args["d" + k] = np.zeros_like(v)
    args["dW"] = np.zeros_like(params["W"])
    args["dU"] = np.zeros_like(params["U"])
    args["dX"] = np.zeros_like(X)
    return args


def call(func, args):
    """Call seqclf._layers with a flat dict of arguments: parameters go to
    ``params``, caches to ``cache``, outputs to ``out``."""
    cell, kind = func.split("_", 1)
    a = dict(args)
    X, lengths = a.pop("X"), a.pop("lengths")
    params = {k: a.pop(k) for k in ("W", "U", *REGISTRY[cell].biases) if k in a}
    if kind == "backward":
        cache = {k: a.pop(k) for k in ("h_seq", *CACHE_NAMES[cell]) if k in a}
        out = {k: a.pop(k) for k in ("dW", "dU", "dX",
                                     *["d" + b for b in REGISTRY[cell].biases])
               if k in a}
        if out.get("dX", 0) is None:
            del out["dX"]
            a["compute_dX"] = False
        _layers.backward(cell, X, lengths, params, cache, a.pop("dh_last", None),
                         a.pop("dh_seq", None), out=out, **a)
        return
    out = {k: a.pop(k) for k in ("h_last", "h_seq", *CACHE_NAMES[cell]) if k in a}
    if kind == "forward_inference":
        a["training"] = False
        if "h_seq" in out and out["h_seq"] is None:
            del out["h_seq"]
            a["return_sequences"] = False
    _layers.forward(cell, X, lengths, params, out=out, **a)


@pytest.mark.parametrize("func", FUNCS)
def test_valid_args_are_valid(func):
    call(func, valid_args(func))


def _set(name, value_fn):
    def mutate(args):
        args[name] = value_fn(args)
    return mutate


def _to_f32_except_w(args):
    for k, v in list(args.items()):
        if isinstance(v, np.ndarray) and v.dtype == np.float64 and k != "W":
            args[k] = v.astype(np.float32)


def _non_contiguous_x(args):
    big = np.zeros((VN, 2 * VT, VF))
    big[:, ::2] = args["X"]
    args["X"] = big[:, ::2]


def _readonly(name):
    def mutate(args):
        a = args[name].copy()
        a.flags.writeable = False
        args[name] = a
    return mutate


COMMON_BAD = {
    "X-list": (_set("X", lambda a: a["X"].tolist()), "X"),
    "X-2d": (_set("X", lambda a: np.ascontiguousarray(a["X"][:, 0])), "X"),
    "X-int": (_set("X", lambda a: a["X"].astype(np.int64)), "X"),
    "X-strided": (_non_contiguous_x, "X"),
    "X-fortran": (_set("X", lambda a: np.asfortranarray(a["X"])), "X"),
    "W-f64-with-X-f32": (_to_f32_except_w, "W"),
    "W-shape": (_set("W", lambda a: np.zeros((VF + 1, a["W"].shape[1]))), "W"),
    "U-shape": (_set("U", lambda a: np.zeros((VH, a["U"].shape[1] + 1))), "U"),
    "lengths-float": (_set("lengths", lambda a: a["lengths"].astype(float)),
                      "lengths"),
    "lengths-shape": (_set("lengths", lambda a: a["lengths"][:-1].copy()),
                      "lengths"),
    "lengths-2d": (_set("lengths", lambda a: a["lengths"][:, None].copy()),
                   "lengths"),
    "lengths-0": (_set("lengths", lambda a: np.array([4, 0, 3, 4, 2])),
                  "lengths"),
    "lengths-T+1": (_set("lengths", lambda a: np.array([4, 1, VT + 1, 4, 2])),
                    "lengths"),
    "n_threads-0": (_set("n_threads", lambda a: 0), "n_threads"),
    "n_threads-neg": (_set("n_threads", lambda a: -1), "n_threads"),
    "n_threads-float": (_set("n_threads", lambda a: 1.5), "n_threads"),
    "n_threads-bool": (_set("n_threads", lambda a: True), "n_threads"),
}


def names(name):
    """Regex for an error message about argument ``name``: the message
    starts with it (``"W must have shape ..."``), or names it in quotes or
    as ``"one of name ..."``; a mere mention such as ``"... like X"`` does
    not count."""
    return rf"(^|'|one of ){re.escape(name)}\b"


def check_raises(func, mutate, name):
    args = valid_args(func)
    mutate(args)
    with pytest.raises((TypeError, ValueError), match=names(name)):
        call(func, args)


@pytest.mark.parametrize("case", list(COMMON_BAD))
@pytest.mark.parametrize("func", FUNCS)
def test_bad_common_arguments(func, case):
    mutate, name = COMMON_BAD[case]
    check_raises(func, mutate, name)


@pytest.mark.parametrize("func", FUNCS)
def test_bad_bias_shape(func):
    cell = func.split("_")[0]
    for bias in BIAS[cell]:
        key = bias if "backward" not in func else "d" + bias
        check_raises(func, _set(key, lambda a, k=key: np.zeros(a[k].size + 1)),
                     key)


FORWARD_BAD = {
    "h_last-shape": (_set("h_last", lambda a: np.zeros((VN, VH + 1))), "h_last"),
    "h_last-dtype": (_set("h_last", lambda a: np.zeros((VN, VH), np.float32)),
                     "h_last"),
    "h_last-readonly": (_readonly("h_last"), "h_last"),
    "h_seq-readonly": (_readonly("h_seq"), "h_seq"),
    "h_seq-shape": (_set("h_seq", lambda a: np.zeros((VN, VT + 1, VH))), "h_seq"),
    "h_seq-fortran": (_set("h_seq", lambda a: np.zeros((VN, VT, VH), order="F")),
                      "h_seq"),
    "h_last-list": (_set("h_last", lambda a: a["h_last"].tolist()), "h_last"),
}


def _overlap(first, second):
    """Put ``first`` and ``second`` in one buffer, sharing one element."""
    def mutate(args):
        a, b = args[first], args[second]
        buf = np.zeros(a.size + b.size, dtype=a.dtype)
        args[first] = buf[:a.size].reshape(a.shape)
        args[second] = buf[a.size - 1:a.size - 1 + b.size].reshape(b.shape)
    return mutate


def _h_last_is_mask(args):
    args["mask"] = np.ones((VN, VH))
    args["h_last"] = args["mask"]


TRAIN_FORWARD_BAD = {
    "h_prev-is-h_seq": (_set("h_prev", lambda a: a["h_seq"]), "h_prev"),
    "h_prev-overlaps-h_seq": (_overlap("h_seq", "h_prev"), "h_prev"),
    "h_last-is-mask": (_h_last_is_mask, "h_last"),
    "mask-shape": (_set("mask", lambda a: np.ones((VN, VH + 1))), "mask"),
    "mask-dtype": (_set("mask", lambda a: np.ones((VN, VH), np.float32)), "mask"),
    "h_prev-readonly": (_readonly("h_prev"), "h_prev"),
}

FORWARD_CASES = [(f, c) for f in FUNCS if "forward" in f for c in FORWARD_BAD]
FORWARD_CASES += [(f, c) for f in FUNCS if f.endswith("_forward")
                  for c in TRAIN_FORWARD_BAD]


@pytest.mark.parametrize("func, case", FORWARD_CASES)
def test_bad_forward_arguments(func, case):
    mutate, name = {**FORWARD_BAD, **TRAIN_FORWARD_BAD}[case]
    check_raises(func, mutate, name)


@pytest.mark.parametrize("func", ["gru_forward", "lstm_forward"])
def test_bad_cache_arguments(func):
    cell = func.split("_")[0]
    for k in CACHE_NAMES[cell][1:]:
        check_raises(func, _readonly(k), k)
        check_raises(func, _set(k, lambda a, k=k: np.zeros(a[k].shape[:2] + (1,))),
                     k)
    # Two caches sharing memory.
    check_raises(func, _overlap("gates", CACHE_NAMES[cell][2]),
                 CACHE_NAMES[cell][2])


@pytest.mark.parametrize("func", [f for f in FUNCS if "inference" in f])
def test_mask_rejected_by_inference(func):
    check_raises(func, _set("mask", lambda a: np.ones((VN, VH))), "mask")


BACKWARD_BAD = {
    "no-output-grad": (lambda a: a.update(dh_last=None, dh_seq=None), "dh_last"),
    "dX-is-X": (_set("dX", lambda a: a["X"]), "dX"),
    "dW-is-W": (_set("dW", lambda a: a["W"]), "dW"),
    "dX-dtype": (_set("dX", lambda a: np.zeros((VN, VT, VF), np.float32)), "dX"),
    "dX-shape": (_set("dX", lambda a: np.zeros((VN, VT, VF + 1))), "dX"),
    "dX-readonly": (_readonly("dX"), "dX"),
    "dW-readonly": (_readonly("dW"), "dW"),
    "dU-dtype": (_set("dU", lambda a: a["dU"].astype(np.float32)), "dU"),
    "dU-shape": (_set("dU", lambda a: np.zeros((VH + 1, a["dU"].shape[1]))),
                 "dU"),
    "dh_last-shape": (_set("dh_last", lambda a: np.zeros((VN, VH + 1))),
                      "dh_last"),
    "dh_seq-shape": (_set("dh_seq", lambda a: np.zeros((VN, VT - 1, VH))),
                     "dh_seq"),
    "dh_seq-dtype": (_set("dh_seq", lambda a: a["dh_seq"].astype(np.float32)),
                     "dh_seq"),
    "h_seq-shape": (_set("h_seq", lambda a: np.zeros((VN, VT, VH + 1))), "h_seq"),
    "h_prev-dtype": (_set("h_prev", lambda a: a["h_prev"].astype(np.float32)),
                     "h_prev"),
    "mask-shape": (_set("mask", lambda a: np.ones((VN + 1, VH))), "mask"),
    "dX-flat": (_set("dX", lambda a: np.zeros(VN * VT * VF)), "dX"),
    "dX-overlaps-dh_seq": (_overlap("dh_seq", "dX"), "dX"),
    "dU-overlaps-dW": (_overlap("dW", "dU"), "dU"),
}


@pytest.mark.parametrize("case", list(BACKWARD_BAD))
@pytest.mark.parametrize("func", [f for f in FUNCS if "backward" in f])
def test_bad_backward_arguments(func, case):
    mutate, name = BACKWARD_BAD[case]
    check_raises(func, mutate, name)


@pytest.mark.parametrize("func", ["rnn_forward", "rnn_forward_inference",
                                  "rnn_backward"])
@pytest.mark.parametrize("activation", ["sigmoid", "TANH", None])
def test_bad_activation(func, activation):
    check_raises(func, _set("activation", lambda a: activation), "activation")


def test_every_registered_computation_has_a_kernel():
    # The cell registry and the kernels' codes list the same computations.
    assert set(_kernels.CELL_CODES) == set(CELLS)
    assert len(set(_kernels.CELL_CODES.values())) == len(CELLS)


def test_a_pass_configuration_not_implemented_is_refused():
    # No thread at all: the pass refuses its configuration and writes nothing.
    X = np.ones((3, 2, 1))
    W, U, b = np.ones((1, 2)), np.ones((2, 2)), np.ones(2)
    h_last = np.full((3, 2), np.nan)
    code = _kernels.CELL_CODES[("rnn", "tanh")]
    with pytest.raises(ValueError, match="does not implement n_threads=0"):
        _kernels.forward(code, False, 0, X, np.full(3, 2, dtype=np.intp), W, U,
                         b, None, None, h_last, None, None, None, None)
    assert np.isnan(h_last).all()


def test_dX_output_with_compute_dX_false_is_refused():
    args = valid_args("gru_backward")
    args["compute_dX"] = False
    with pytest.raises(ValueError, match="compute_dX"):
        call("gru_backward", args)


@pytest.mark.parametrize("func", FUNCS)
def test_output_sharing_memory_with_lengths(func):
    # An OUT array over the memory of ``lengths`` must be rejected like any
    # other aliasing: the kernels would otherwise overwrite the lengths they
    # are reading. The aliased output here (h_last, or dW in the backward
    # pass) is written after the lengths are read, so a missing check shows
    # up as a clean test failure with corrupted lengths.
    cell, kind = func.split("_", 1)
    rng = np.random.default_rng(10)
    # F = H = 1, and for the backward pass N = n_gates so that dW (1, G)
    # has exactly the size of lengths.
    n, t, f, h = N_GATES[cell], 4, 1, 1
    X = rng.standard_normal((n, t, f))
    params = reference.init_params(cell, f, h, random_state=rng)
    lengths = np.full(n, t, dtype=np.intp)
    alias = lengths.view(np.float64)
    caches = {k: np.zeros(s) for k, s in cache_shapes(cell, n, t, h).items()}
    fwd = {"X": X, "lengths": lengths, **params, "h_last": np.zeros((n, h)),
           **caches}
    if kind == "forward":
        args = dict(fwd, h_last=alias.reshape(n, h))
        name = "h_last"
    elif kind == "forward_inference":
        args = {"X": X, "lengths": lengths, **params,
                "h_last": alias.reshape(n, h), "h_seq": np.zeros((n, t, h))}
        name = "h_last"
    else:
        call(f"{cell}_forward", fwd)
        args = {"X": X, "lengths": lengths, **params, **caches,
                "dh_last": np.ones((n, h)), "dh_seq": None, "dX": np.zeros((n, t, f))}
        for k, v in params.items():
            args["d" + k] = np.zeros_like(v)
        args["dW"] = alias.reshape(params["W"].shape)
        name = "dW"
    with pytest.raises((TypeError, ValueError), match=names(name)):
        call(func, args)
    np.testing.assert_array_equal(lengths, t)


# ---------------------------------------------------------------------------
# 9. Finite differences on the kernels themselves (float64)
# ---------------------------------------------------------------------------

# FD_EPS, FD_RTOL, FD_ATOL: see tests/conftest.py.


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_finite_differences(cell, activation, reverse):
    X, lengths, params, mask, A, B = make_problem(
        cell, np.float64, n=4, t=5, f=3, h=3, mask=True, seed=11)
    lengths[:] = [5, 2, 1, 4]
    kw = dict(mask=mask, reverse=reverse, activation=activation)
    if activation == "relu":
        assert_relu_margin(X, lengths, params, mask, reverse, 1e-3)

    def loss():
        h_last, h_seq, _, _ = run_kernels(cell, X, lengths, params,
                                          backward=False, **kw)
        return np.sum(A * h_last) + np.sum(B * h_seq)

    _, _, grads, dX = run_kernels(cell, X, lengths, params, dh_last=A,
                                  dh_seq=B, **kw)
    rng = np.random.default_rng(12)
    targets = [(k, params[k], grads[k],
                rng.choice(params[k].size, min(4, params[k].size), False))
               for k in params]
    valid = np.flatnonzero(np.repeat(~padded(lengths, 5)[:, :, None], 3, 2))
    pad = np.flatnonzero(np.repeat(padded(lengths, 5)[:, :, None], 3, 2))
    targets.append(("X", X, dX, np.concatenate(
        [rng.choice(valid, 5, False), rng.choice(pad, 2, False)])))

    for name, array, analytic, idx in targets:
        numeric = central_differences(loss, array, idx, FD_EPS)
        np.testing.assert_allclose(analytic.reshape(-1)[idx], numeric,
                                   rtol=FD_RTOL, atol=FD_ATOL,
                                   err_msg=f"gradient of {name}")
        assert np.max(np.abs(numeric)) > 1e-3, name
    # dX is exactly 0 at every padded entry (two were perturbed above too).
    for j in pad:
        assert dX.reshape(-1)[j] == 0
