"""The compiled parts of a training step against NumPy.

The vector passes (seqclf._vector), the heads and losses (seqclf._head) and
the optimizers' steps (seqclf._updates, through seqclf._optim) against NumPy
expressions written out here, and the network's step against the whole-
network oracle of seqclf.reference. Reductions must not depend on the
thread count (bit for bit); the optimizers' updates must give the NumPy
expressions' results bit for bit.
"""

import numpy as np
import pytest

from seqclf import _head, _vector
from seqclf._network import RecurrentNetwork, SoftmaxCrossEntropy, SquaredError
from seqclf._optim import AdamOptimizer, SGDOptimizer

from ._helpers import oracle_gradient

DTYPES = [np.float32, np.float64]
# The head's outputs in float64 (compiled) vs the dtype's (NumPy): float32
# agrees to a few ulps of the loss's terms.
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _head_reference(A, W, b, y, sw, squared):
    """The dense head, the loss and their gradients written out in float64:
    ``Z = A W + b``; the weighted mean of ``-log softmax(Z)[y]`` or of
    ``0.5 * mean_k (Z - y)^2``; ``dZ`` its gradient, ``dW = A^T dZ``,
    ``db = sum dZ``, ``dA = dZ W^T``."""
    A, W, b = (a.astype(np.float64) for a in (A, W, b))
    N, M = len(A), W.shape[1]
    w = np.ones(N) if sw is None else sw
    weight_sum = float(np.sum(w))
    Z = A @ W + b
    if squared:
        per_sample = 0.5 * np.mean((Z - y) ** 2, axis=1)
        dZ = (Z - y) / M
    else:
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        per_sample = -log_p[np.arange(N), y]
        dZ = np.exp(log_p)
        dZ[np.arange(N), y] -= 1
    dZ *= (w / weight_sum)[:, None]
    value = float(np.sum(w * per_sample) / weight_sum)
    return value, A.T @ dZ, dZ.sum(axis=0), dZ @ W.T, weight_sum


def _head_compiled(A, W, b, y, sw, weight_sum, squared):
    Z = np.empty((len(A), W.shape[1]), dtype=A.dtype)
    dW, db, dA = np.empty_like(W), np.empty_like(b), np.empty_like(A)
    fn = _head.head_squared_error if squared else _head.head_softmax_xent
    value = fn(A, W, b, y, sw, weight_sum, Z, dW, db, dA)
    return value, dW, db, dA


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("squared", [False, True], ids=["xent", "squared"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 2), (7, 5, 3), (130, 33, 10)])
def test_head_and_loss_match_numpy(dtype, squared, weighted, shape):
    N, K, M = shape
    rng = np.random.default_rng(N + K)
    A = rng.normal(size=(N, K)).astype(dtype)
    W = (3 * rng.normal(size=(K, M))).astype(dtype)
    b = rng.normal(size=M).astype(dtype)
    if squared:
        y = rng.normal(size=(N, M)).astype(dtype)
    else:
        y = rng.integers(0, M, N).astype(np.intp)
    sw = rng.uniform(0, 3, N) if weighted else None
    ref, dW_ref, db_ref, dA_ref, weight_sum = _head_reference(A, W, b, y, sw,
                                                              squared)
    got, dW, db, dA = _head_compiled(A, W, b, y, sw, weight_sum, squared)
    tol = TOL[dtype]
    assert got == pytest.approx(ref, rel=tol, abs=tol)
    for a, r in ((dW, dW_ref), (db, db_ref), (dA, dA_ref)):
        np.testing.assert_allclose(a, r, rtol=50 * tol, atol=tol * np.abs(r).max())


@pytest.mark.parametrize("squared", [False, True], ids=["xent", "squared"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_output_gives_a_non_finite_loss(squared, bad):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 3))
    A[2, 1] = bad
    W, b = rng.normal(size=(3, 5)), np.zeros(5)
    y = (rng.normal(size=(4, 5)) if squared
         else np.array([0, 4, 2, 1], dtype=np.intp))
    value, *_ = _head_compiled(A, W, b, y, None, 4.0, squared)
    assert not np.isfinite(value)


def test_softmax_of_large_outputs_does_not_overflow():
    # Outputs of 1e4 overflow exp() unless the row's maximum is subtracted.
    A = np.array([[1e4, -1e4], [0.0, 3.0]])
    W, b = np.eye(2), np.zeros(2)
    y = np.array([0, 1], dtype=np.intp)
    value, _, _, dA = _head_compiled(A, W, b, y, None, 2.0, False)
    assert np.isfinite(value) and np.isfinite(dA).all()
    assert value == pytest.approx(np.log1p(np.exp(-3.0)) / 2)


# ---------------------------------------------------------------------------
# Reductions: the same result on any number of threads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 8191, 8192, 8193, 50_003])
def test_penalty_and_norm_match_numpy_for_any_thread_count(dtype, n):
    rng = np.random.default_rng(n)
    coefs = rng.normal(size=n).astype(dtype)
    grads = rng.normal(size=n).astype(dtype)
    ranges = np.array([[0, n // 3], [n // 2, n // 2 + n // 4], [n - 1, n]],
                      dtype=np.intp)[: 3 if n else 0]
    results = []
    for n_threads in (1, 2, 3):
        g = grads.copy()
        w2 = _vector.add_penalty(n_threads, coefs, g, ranges, 0.25)
        results.append((w2, _vector.sum_squares(n_threads, g), g))
    ref_g = grads.copy()
    mask = np.zeros(n, dtype=bool)
    for lo, hi in ranges:
        mask[lo:hi] = True
    ref_g[mask] += dtype(0.25) * coefs[mask]
    w = coefs[mask].astype(np.float64)
    assert results[0][0] == pytest.approx(np.dot(w, w), rel=1e-12)
    np.testing.assert_array_equal(results[0][2], ref_g)
    g64 = ref_g.astype(np.float64)
    assert results[0][1] == pytest.approx(np.dot(g64, g64), rel=1e-12)
    for w2, sq, g in results[1:]:
        assert w2 == results[0][0] and sq == results[0][1]
        np.testing.assert_array_equal(g, results[0][2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 5000, 20_000 - 1])
def test_non_finite_entries_are_found(dtype, bad, where):
    a = np.ones(20_000, dtype=dtype)
    assert _vector.all_finite(2, a)
    a[where] = bad
    assert not _vector.all_finite(1, a) and not _vector.all_finite(2, a)
    assert not np.isfinite(_vector.sum_squares(2, a))


def test_scale_rounds_the_factor_to_the_dtype():
    a = np.arange(10, dtype=np.float32)
    _vector.scale(2, a, 1 / 3)
    np.testing.assert_array_equal(a, np.arange(10, dtype=np.float32)
                                  * np.float32(1 / 3))


# ---------------------------------------------------------------------------
# Optimizer updates: the NumPy expressions, bit for bit
# ---------------------------------------------------------------------------

def _adam_numpy(p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    f = p.dtype.type
    m *= f(b1)
    m += g * f(1 - b1)
    v *= f(b2)
    tmp = g * g
    tmp *= f(1 - b2)
    v += tmp
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    tmp = np.sqrt(v)
    tmp += f(eps)
    tmp = m / tmp
    tmp *= f(-lr_t)
    p += tmp


def _sgd_numpy(p, g, vel, nesterov, lr=1e-2, mu=0.9):
    f = p.dtype.type
    tmp = g * -f(lr)
    vel *= f(mu)
    vel += tmp
    if nesterov:
        p += tmp
        p += vel * f(mu)
    else:
        p += vel


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_adam_update_is_the_numpy_expression(dtype, n_threads):
    rng = np.random.default_rng(5)
    p = rng.normal(size=10_001).astype(dtype)
    opt = AdamOptimizer(p.shape, dtype)
    p_ref, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t in range(1, 5):
        g = (rng.normal(size=p.shape) * 10.0 ** rng.integers(-6, 3, p.shape)
             ).astype(dtype)
        opt.update(p, g, n_threads)
        _adam_numpy(p_ref, g, m, v, t)
        np.testing.assert_array_equal(p, p_ref)
        np.testing.assert_array_equal(opt.m, m)
        np.testing.assert_array_equal(opt.v, v)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_sgd_update_is_the_numpy_expression(dtype, nesterov, n_threads):
    rng = np.random.default_rng(6)
    p = rng.normal(size=9_999).astype(dtype)
    opt = SGDOptimizer(p.shape, dtype, learning_rate=1e-2, momentum=0.9,
                       nesterov=nesterov)
    p_ref, vel = p.copy(), np.zeros_like(p)
    for _ in range(4):
        g = rng.normal(size=p.shape).astype(dtype)
        opt.update(p, g, n_threads)
        _sgd_numpy(p_ref, g, vel, nesterov)
        np.testing.assert_array_equal(p, p_ref)
        np.testing.assert_array_equal(opt.velocity, vel)


@pytest.mark.parametrize("Optimizer", [AdamOptimizer, SGDOptimizer])
def test_update_refuses_arrays_it_cannot_step_in_place(Optimizer):
    opt = Optimizer((4, 3), np.float64)
    p = np.zeros((3, 4)).T                     # right shape, not C-contiguous
    with pytest.raises(ValueError, match="params must be a C-contiguous"):
        opt.update(p, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="grad must be a C-contiguous"):
        opt.update(np.zeros((4, 3)), np.zeros((4, 3), dtype=np.float32))
    frozen = np.zeros((4, 3))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        opt.update(frozen, np.zeros((4, 3)))
    assert opt.t == 0


# ---------------------------------------------------------------------------
# The network's step against the whole-network oracle
# ---------------------------------------------------------------------------

def _network(loss, n_outputs, dtype):
    net = RecurrentNetwork(("gru", "lstm"), (5, 4), 3, n_outputs,
                           bidirectional=True, dtype=dtype, loss=loss)
    net.initialize(np.random.default_rng(0))
    return net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("squared", [False, True], ids=["xent", "squared"])
def test_train_step_equals_the_oracle(dtype, squared):
    """The plan's head and loss of each kind, on 2 threads, with weights
    and the penalty: seqclf.reference.network_loss_gradient's loss and
    gradient."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(11, 6, 3)).astype(dtype)
    lengths = rng.integers(1, 7, 11).astype(np.intp)
    sw = rng.uniform(0.5, 2, 11)
    if squared:
        y = rng.normal(size=(11, 2)).astype(dtype)
        net = _network(SquaredError(), 2, dtype)
    else:
        y = rng.integers(0, 3, 11).astype(np.intp)
        net = _network(SoftmaxCrossEntropy(), 3, dtype)
    loss = net.train_step(X, lengths, y, sw, alpha=0.1, n_threads=2)
    value, grads = oracle_gradient(net, X, lengths, y, sw, alpha=0.1)
    tol = TOL[dtype]
    assert loss == pytest.approx(value, rel=tol)
    np.testing.assert_allclose(net.grads, grads, rtol=200 * tol,
                               atol=200 * tol * np.abs(grads).max())


def test_train_step_refuses_what_its_unchecked_kernels_cannot_take():
    net = _network(SoftmaxCrossEntropy(), 3, np.float64)
    X = np.zeros((4, 5, 3))
    lengths = np.full(4, 5, dtype=np.intp)
    y = np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match="X must be a non-empty C-contiguous float64"):
        net.train_step(X.astype(np.float32), lengths, y)
    with pytest.raises(ValueError, match="X must be"):
        net.train_step(np.zeros((4, 5, 2)), lengths, y)
    with pytest.raises(ValueError, match="X must be"):
        net.train_step(np.asfortranarray(X), lengths, y)
    with pytest.raises(ValueError, match="lengths must be a C-contiguous intp"):
        net.train_step(X, lengths.astype(np.int32), y)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, n_steps=5\]"):
        net.train_step(X, np.array([1, 6, 2, 3]), y)
    with pytest.raises(ValueError, match=r"y must hold 4 class indices in \[0, 3\)"):
        net.train_step(X, lengths, np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"y must hold"):
        net.train_step(X, lengths, np.array([0, -1, 2, 0]))


def test_train_step_refuses_targets_and_weights_of_another_shape():
    X = np.zeros((4, 5, 3))
    lengths = np.full(4, 5, dtype=np.intp)
    net = _network(SoftmaxCrossEntropy(), 3, np.float64)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(4,\)"):
        net.train_step(X, lengths, np.array([0, 1, 2, 0]), np.ones(3))
    net = _network(SquaredError(), 2, np.float64)
    with pytest.raises(ValueError, match=r"y must have shape \(4, 2\)"):
        net.train_step(X, lengths, np.zeros((4, 1)))


def test_plan_refuses_rows_outside_the_set():
    net = _network(SoftmaxCrossEntropy(), 3, np.float64)
    X = np.zeros((4, 5, 3))
    lengths = np.full(4, 5, dtype=np.intp)
    y = np.zeros(4, dtype=np.intp)
    plan = net.plan(X, lengths, y, None, 2)
    for rows in ([0, 1, 2, 4], [-1, 0, 1, 2], [0, 1, 2], []):
        with pytest.raises(ValueError, match="order"):
            plan.run(np.array(rows, dtype=np.intp), 0, 1, 1)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, n_steps=5\]"):
        net.plan(X, np.array([5, 6, 5, 5]), y, None, 2)
    # Rows in any order, repeated or not: batch k is order[2k:2k + 2].
    k, updates, loss_sum, status = plan.run(np.array([3, 1, 3, 0]), 1, 1, 1)
    assert (k, updates, status) == (2, 0, 0)
    assert loss_sum == pytest.approx(2 * np.log(3))     # zero inputs
