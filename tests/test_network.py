"""The network driver: whole-network gradients, layout, determinism."""

import pickle

import numpy as np
import pytest

from seqclf import _head, reference
from seqclf._network import RecurrentNetwork, SquaredError, _orthogonal
from seqclf._openmp_helpers import single_threaded_blas
from seqclf._optim import SGDOptimizer

from ._fd import central_differences
from ._helpers import token_ids
from .conftest import FD_ATOL, FD_EPS, FD_RTOL


def _data(N, T, F, n_classes, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, T, F)).astype(dtype)
    lengths = rng.integers(1, T + 1, size=N).astype(np.intp)
    lengths[0] = T
    X[np.arange(T)[None, :] >= lengths[:, None]] = np.nan   # padding: never read
    y = rng.integers(0, n_classes, size=N)
    return X, lengths, y


def _network(cells, sizes, F, K, bidirectional, seed=0, dtype=np.float64,
             loss=None):
    net = RecurrentNetwork(cells, sizes, F, K, bidirectional=bidirectional,
                           dtype=dtype, loss=loss)
    net.initialize(np.random.RandomState(seed))
    # Biases away from zero so that their gradients are tested too.
    net.coefs += np.random.default_rng(seed).uniform(-0.1, 0.1, net.coefs.size)
    return net


NETWORKS = [
    (("rnn",), (4,), False),
    (("gru",), (3,), True),
    (("lstm",), (3,), False),
    (("gru", "rnn"), (3, 4), False),
    (("lstm", "gru", "rnn"), (3, 2, 3), True),
]


@pytest.mark.parametrize("cells, sizes, bidirectional", NETWORKS)
@pytest.mark.parametrize("regularised", [False, True])
@pytest.mark.parametrize("targets", ["classes", "values"])
def test_gradient_matches_finite_differences(cells, sizes, bidirectional,
                                             regularised, targets):
    F = 3
    if targets == "classes":                # softmax cross-entropy, 3 classes
        K, net_loss = 3, None
        X, lengths, y = _data(5, 6, F, K, seed=1)
    else:                                   # squared error, 2 targets
        K, net_loss = 2, SquaredError()
        X, lengths, _ = _data(5, 6, F, K, seed=1)
        y = np.random.default_rng(3).normal(size=(5, K))
    net = _network(cells, sizes, F, K, bidirectional, loss=net_loss)
    kw = dict(alpha=0.3, dropout=0.25, recurrent_dropout=0.3) if regularised else {}
    sw = np.array([1.0, 2.0, 0.5, 1.5, 1.0]) if regularised else None

    def loss():
        # Same masks at every call: a fresh generator with the same seed.
        return net.train_step(X, lengths, y, sw, rng=np.random.default_rng(7),
                              **kw)

    with single_threaded_blas():
        loss()
        grad = net.grads.copy()
        fd = central_differences(loss, net.coefs, range(net.coefs.size), FD_EPS)
    np.testing.assert_allclose(grad, fd, rtol=FD_RTOL, atol=FD_ATOL)
    assert np.abs(grad).max() > 1e-3


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_squared_error_is_mlp_regressor_loss(weighted, dtype):
    """The loss of kind "squared_error" (the plan's compiled head, here on
    outputs ``Z = A``: an identity head) against scikit-learn's
    squared_loss, and its gradient written out."""
    from sklearn.neural_network._base import squared_loss

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(6, 3)).astype(dtype)
    y = rng.normal(size=(6, 3)).astype(dtype)
    sw = rng.uniform(0.1, 3, size=6) if weighted else None
    weight_sum = 6.0 if sw is None else float(sw.sum())
    W, b = np.eye(3, dtype=dtype), np.zeros(3, dtype=dtype)
    dZ = np.empty_like(Z)
    dW, db, dA = np.empty_like(W), np.empty_like(b), np.empty_like(Z)
    loss = _head.head_squared_error(Z, W, b, y, sw, weight_sum, dZ, dW, db, dA)
    Z64, y64 = Z.astype(np.float64), y.astype(np.float64)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert loss == pytest.approx(squared_loss(y64, Z64, sw), rel=rtol)
    w = np.ones(6) if sw is None else sw
    expected = w[:, None] * (Z64 - y64) / (3 * weight_sum)
    assert dZ.dtype == dtype
    np.testing.assert_allclose(dZ, expected, rtol=rtol * 10)
    np.testing.assert_allclose(dA, expected, rtol=rtol * 10)  # dZ @ I
    np.testing.assert_array_equal(SquaredError.predict(Z), Z)


def test_loss_matches_reference_composition():
    """The network's loss equals the reference layers + head written out."""
    F, K, H1, H2 = 3, 4, 5, 3
    X, lengths, y = _data(7, 5, F, K, seed=2)
    net = _network(("lstm", "gru"), (H1, H2), F, K, bidirectional=True)
    with single_threaded_blas():
        loss = net.train_step(X, lengths, y)
    L0, L1 = net.layers
    out = []
    for unit in L0:
        _, h_seq = reference.forward("lstm", X, lengths, unit.params,
                                     reverse=unit.reverse)[:2]
        out.append(h_seq)
    seq = np.concatenate(out, axis=2)
    finals = [reference.forward("gru", seq, lengths, u.params,
                                reverse=u.reverse)[0] for u in L1]
    A = np.concatenate(finals, axis=1)
    Z = A @ net.head_params["W"] + net.head_params["b"]
    Z -= Z.max(axis=1, keepdims=True)
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(len(y)), y].mean()
    assert loss == pytest.approx(expected, rel=1e-12)
    with single_threaded_blas():
        Z_inf = net.decision_function(X, lengths)
    np.testing.assert_allclose(Z_inf - Z_inf.max(axis=1, keepdims=True), Z,
                               rtol=1e-10, atol=1e-12)


def test_layout_views_and_counts():
    net = RecurrentNetwork(("gru", "rnn"), (256, 128), 64, 10)
    assert net.n_params_per_layer() == [247_296, 49_280, 1_290]
    assert net.coefs.size == 297_866
    for layer in net.layers:
        for unit in layer:
            for name, a in unit.params.items():
                assert a.base is net.coefs and a.flags.c_contiguous
    bi = RecurrentNetwork(("lstm",), (8,), 5, 3, bidirectional=True)
    assert bi.n_params_per_layer() == [2 * 4 * (5 * 8 + 8 * 8 + 8), 16 * 3 + 3]


def test_initialization_as_keras():
    net = RecurrentNetwork(("lstm", "gru"), (6, 4), 5, 3)
    net.initialize(np.random.RandomState(0))
    lstm, gru = net.layers[0][0].params, net.layers[1][0].params
    np.testing.assert_allclose(lstm["U"] @ lstm["U"].T, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(gru["U"] @ gru["U"].T, np.eye(4), atol=1e-12)
    assert np.abs(lstm["W"]).max() <= np.sqrt(6 / (5 + 24))
    np.testing.assert_array_equal(lstm["b"], np.r_[np.zeros(6), np.ones(6),
                                                   np.zeros(12)])
    assert not gru["b_ih"].any() and not gru["b_hh"].any()
    assert not net.head_params["b"].any()
    q = _orthogonal((7, 3), np.random.RandomState(1))
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)


def test_pickle_keeps_views():
    X, lengths, y = _data(4, 5, 3, 2, seed=3)
    net = _network(("gru",), (4,), 3, 2, bidirectional=True)
    clone = pickle.loads(pickle.dumps(net))
    assert clone.layers[0][1].params["U"].base is clone.coefs
    clone.coefs[0] += 1.0
    assert clone.layers[0][0].params["W"].flat[0] == net.coefs[0] + 1.0
    with single_threaded_blas():
        np.testing.assert_array_equal(clone.train_step(X, lengths, y) * 0 + 1, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_train_step_same_for_any_thread_count(dtype):
    X, lengths, y = _data(70, 6, 3, 3, seed=4, dtype=dtype)
    net = _network(("lstm", "rnn"), (5, 4), 3, 3, bidirectional=True,
                   dtype=dtype)
    grads = []
    for n_threads in (1, 2, 3):
        with single_threaded_blas():
            net.train_step(X, lengths, y, dropout=0.2, recurrent_dropout=0.2,
                           rng=np.random.default_rng(0), n_threads=n_threads)
        grads.append(net.grads.copy())
    for g in grads[1:]:
        np.testing.assert_array_equal(g, grads[0])


# ---------------------------------------------------------------------------
# The embedding front: gradients through the whole model
# ---------------------------------------------------------------------------


def _token_network(cells, sizes, bidirectional, V=7, E=3, K=3, seed=0):
    net = RecurrentNetwork(cells, sizes, E, K, bidirectional=bidirectional,
                           n_tokens=V)
    net.initialize(np.random.RandomState(seed))
    net.coefs += np.random.default_rng(seed).uniform(-0.3, 0.3, net.coefs.size)
    return net


@pytest.mark.parametrize("cells, sizes, bidirectional", [
    (("rnn",), (4,), False),
    (("gru",), (3,), True),
    (("lstm", "gru"), (3, 2), False),
])
@pytest.mark.parametrize("regularised", [False, True])
def test_embedding_gradient_matches_finite_differences(cells, sizes, bidirectional,
                                                       regularised):
    V = 7
    ids, lengths = token_ids(5, 6, V - 2, seed=8)    # rows 5 and 6 never used
    ids[1, 0] = ids[1, 1] = 3                  # a repeated id
    y = np.array([0, 1, 2, 1, 0])
    net = _token_network(cells, sizes, bidirectional, V=V)
    kw = dict(alpha=0.3, dropout=0.25, recurrent_dropout=0.3) if regularised else {}
    sw = np.array([1.0, 2.0, 0.5, 1.5, 1.0]) if regularised else None

    def loss():
        return net.train_step(ids, lengths, y, sw, rng=np.random.default_rng(7), **kw)

    with single_threaded_blas():
        loss()
        rows, grad = net.embedding_grad
        dense_grad = net.grads.copy()
        full = np.zeros_like(net.embedding)
        full[rows] = grad
        fd = central_differences(loss, net.embedding, range(net.embedding.size),
                                 FD_EPS)
        fd_dense = central_differences(loss, net.dense_coefs,
                                       range(0, net.dense_coefs.size, 7), FD_EPS)
    np.testing.assert_allclose(full.ravel(), fd, rtol=FD_RTOL, atol=FD_ATOL)
    np.testing.assert_allclose(dense_grad[::7], fd_dense, rtol=FD_RTOL, atol=FD_ATOL)
    assert set(rows) <= set(range(V - 2))
    assert np.abs(grad).max() > 1e-3


def test_network_pickles_and_clips_with_embedding():
    ids, lengths = token_ids(6, 5, 7, seed=9)
    net = _token_network(("gru",), (3,), False)
    y = np.array([0, 1, 2, 0, 1, 2])
    net.train_step(ids, lengths, y)
    # Nothing vocabulary-sized holds the gradient: only the batch's rows.
    assert net.grads.size == net.coefs.size - net.embedding.size
    rows, egrad = net.embedding_grad
    assert egrad.shape == (np.unique(ids[ids >= 0]).size, 3)
    grads = net.grads.copy()
    before = np.sqrt(np.sum(grads ** 2) + np.sum(egrad ** 2))

    # Clipped to half its norm, the embedding rows' share included, by a
    # plan whose step is the clipped gradient (SGD of rate 1, no momentum).
    opts = [SGDOptimizer(shape, net.dtype, learning_rate=1.0, momentum=0.0)
            for shape in (net.dense_coefs.shape, net.embedding.shape)]
    plan = net.plan(ids, lengths, y, None, len(y), opts[0],
                    clip_norm=before / 2, embedding_optimizer=opts[1])
    w0 = net.coefs.copy()
    _, updates, _, status = plan.run(np.arange(len(y)), 0, 1, 1)
    assert (updates, status) == (1, 0)
    step = (w0 - net.coefs).reshape(-1)
    E = net.embedding.size
    assert np.isclose(np.sqrt(np.sum(step ** 2)), before / 2)
    np.testing.assert_allclose(step[E:], grads / 2, rtol=1e-9, atol=1e-12)
    clipped = step[:E].reshape(net.embedding.shape)
    np.testing.assert_allclose(clipped[rows], egrad / 2, rtol=1e-9, atol=1e-12)
    assert not np.delete(clipped, rows, axis=0).any()   # other rows stay

    loaded = pickle.loads(pickle.dumps(net))
    assert np.shares_memory(loaded.embedding, loaded.coefs)
    np.testing.assert_array_equal(loaded.embedding, net.embedding)
    np.testing.assert_array_equal(loaded.decision_function(ids, lengths),
                                  net.decision_function(ids, lengths))
