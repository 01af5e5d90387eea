"""The whole-network oracle of seqclf.reference against the training step.

``network_loss_gradient`` composes the reference layers, the embedding, the
dense head, the losses and the L2 penalty; ``RecurrentNetwork.train_step``
must give the same loss and gradients. The dropout masks are those
``train_step`` draws from its generator: per layer, the input mask of each
direction ``(N, F_l)``, then the recurrent mask of each direction
``(N, H_l)``, each as ``_dropout_mask`` below (the plan's rule); a generator
of the same seed draws them again for the oracle.

Tolerances are ``KERNEL_RTOL``, relative to the largest entry of each
array. Both sides compute the same sums in other orders (BLAS blocking,
fused kernels), which leaves rounding errors of a few units in the last
place per operation, amplified by the recurrence over a handful of steps:
at most about 4e-15 in float64 and 1.2e-6 in float32 on these networks,
while any real difference in the semantics (a mask, a direction, a weight,
the penalty) changes an entry by 1e-2 or more.
"""

import numpy as np
import pytest

from seqclf import reference
from seqclf._network import RecurrentNetwork, SquaredError
from seqclf._openmp_helpers import single_threaded_blas

from ._fd import central_differences
from ._helpers import token_ids
from .conftest import FD_ATOL, FD_EPS, FD_RTOL
from .conftest import KERNEL_RTOL as RTOL

LOSS_NAMES = {"classes": "softmax_cross_entropy", "values": "squared_error"}


def _dropout_mask(rng, shape, rate, dtype):
    """An inverted-dropout mask as the training plan makes it from uniform
    draws in the network's dtype: kept entries scaled by 1 / (1 - rate)."""
    keep = rng.random(shape, dtype=np.float32 if dtype == np.float32
                      else np.float64)
    return ((keep >= dtype.type(rate)) * (1.0 / (1.0 - rate))).astype(dtype)


def _network(cells, sizes, F, K, *, bidirectional, activation="tanh",
             dtype=np.float64, targets="classes", n_tokens=None):
    net = RecurrentNetwork(cells, sizes, F, K, bidirectional=bidirectional,
                           activation=activation, dtype=dtype,
                           loss=SquaredError() if targets == "values" else None,
                           n_tokens=n_tokens)
    net.initialize(np.random.default_rng(0))
    # Biases away from zero, so that their gradients matter too.
    net.coefs += np.random.default_rng(1).uniform(-0.1, 0.1, net.coefs.size
                                                  ).astype(dtype)
    return net


def oracle_arguments(net):
    """``(cells, layers, head, embedding, activation)`` of a network, as
    :func:`seqclf.reference.network_loss_gradient` takes them (copies)."""
    layers = [[{k: v.copy() for k, v in u.params.items()} for u in layer]
              for layer in net.layers]
    head = {k: v.copy() for k, v in net.head_params.items()}
    activation = [layer[0].activation for layer in net.layers]
    embedding = None if net.embedding is None else net.embedding.copy()
    return net.cells, layers, head, embedding, activation


def draw_masks(net, N, dropout, recurrent_dropout, seed):
    """The masks ``train_step`` draws from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    in_masks, rec_masks = [], []
    for layer in net.layers:
        D = len(layer)
        in_masks.append(None if dropout == 0 else [
            _dropout_mask(rng, (N, u.n_in), dropout, net.dtype) for u in layer])
        rec_masks.append(None if recurrent_dropout == 0 else [
            _dropout_mask(rng, (N, layer[0].n_hidden), recurrent_dropout,
                          net.dtype) for _ in range(D)])
    return in_masks, rec_masks


def _data(net, N, T, seed, targets, ids=False):
    rng = np.random.default_rng(seed)
    if ids:
        X, lengths = token_ids(N, T, net.n_tokens - 1, seed)
    else:
        X = rng.normal(size=(N, T, net.n_features)).astype(net.dtype)
        lengths = rng.integers(1, T + 1, size=N).astype(np.intp)
        lengths[0] = T
        # Padding: NaN, which neither side may read.
        X[np.arange(T)[None, :] >= lengths[:, None]] = np.nan
    if targets == "classes":
        y = rng.integers(0, net.n_outputs, size=N).astype(np.intp)
    else:
        y = rng.normal(size=(N, net.n_outputs)).astype(net.dtype)
    return X, lengths, y


def assert_close(actual, expected, rtol, what):
    """Entries within ``rtol`` times the largest of ``expected``."""
    scale = max(np.abs(expected).max(), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale,
                               err_msg=what)


def check_against_train_step(net, X, lengths, y, *, sample_weight=None,
                             alpha=0.0, dropout=0.0, recurrent_dropout=0.0):
    """Run ``train_step`` and the oracle on the same batch and masks."""
    seed = 7
    cells, layers, head, embedding, activation = oracle_arguments(net)
    in_masks, rec_masks = draw_masks(net, len(lengths), dropout,
                                     recurrent_dropout, seed)
    targets = "classes" if y.ndim == 1 else "values"
    with single_threaded_blas():
        loss = net.train_step(X, lengths, y, sample_weight, alpha=alpha,
                              dropout=dropout,
                              recurrent_dropout=recurrent_dropout,
                              rng=np.random.default_rng(seed))
    value, layer_grads, head_grads, embedding_grad = (
        reference.network_loss_gradient(
            cells, layers, head, X, lengths, y, loss=LOSS_NAMES[targets],
            sample_weight=sample_weight, alpha=alpha, embedding=embedding,
            activation=activation, input_masks=in_masks,
            recurrent_masks=rec_masks))

    rtol = RTOL[net.dtype]
    assert loss == pytest.approx(value, rel=rtol)
    expected_norm = 0.0
    for l, layer in enumerate(net.layers):
        for d, unit in enumerate(layer):
            assert set(unit.grads) == set(layer_grads[l][d])
            for name, g in unit.grads.items():
                assert g.dtype == layer_grads[l][d][name].dtype == net.dtype
                assert_close(g, layer_grads[l][d][name], rtol,
                             f"layer {l} direction {d} {name}")
                expected_norm += np.sum(layer_grads[l][d][name] ** 2.0)
    for name, g in net.head_grads.items():
        assert_close(g, head_grads[name], rtol, f"head {name}")
        expected_norm += np.sum(head_grads[name] ** 2.0)
    # The views cover all of grads: nothing else is in it.
    assert np.sum(net.grads ** 2.0) == pytest.approx(expected_norm, rel=rtol)
    if embedding is None:
        assert embedding_grad is None
    else:
        rows, grad = net.embedding_grad
        dense = np.zeros_like(net.embedding)
        dense[rows] = grad
        assert_close(dense, embedding_grad, rtol, "embedding")
        assert np.abs(embedding_grad).max() > 1e-6
    assert max(np.abs(g).max() for g in head_grads.values()) > 1e-6
    return value


NETWORKS = {
    "rnn-tanh": (("rnn",), (4,), False, "tanh"),
    "rnn-relu-bi": (("rnn",), (4,), True, "relu"),
    "gru": (("gru",), (3,), False, "tanh"),
    "lstm-bi": (("lstm",), (3,), True, "tanh"),
    "gru-lstm": (("gru", "lstm"), (3, 4), False, "tanh"),
    "lstm-gru-rnn-relu-bi": (("lstm", "gru", "rnn"), (3, 2, 4), True, "relu"),
}
REGULARISED = dict(alpha=0.3, dropout=0.25, recurrent_dropout=0.3,
                   sample_weight=np.array([1.0, 2.0, 0.5, 1.5, 1.0, 3.0]))


@pytest.mark.parametrize("regularised", [False, True], ids=["plain", "regularised"])
@pytest.mark.parametrize("targets", ["classes", "values"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("config", NETWORKS.values(), ids=NETWORKS.keys())
def test_oracle_matches_train_step(config, dtype, targets, regularised):
    cells, sizes, bidirectional, activation = config
    F, K = 3, 3
    net = _network(cells, sizes, F, K, bidirectional=bidirectional,
                   activation=activation, dtype=dtype, targets=targets)
    X, lengths, y = _data(net, 6, 5, seed=2, targets=targets)
    kw = REGULARISED if regularised else {}
    check_against_train_step(net, X, lengths, y, **kw)


@pytest.mark.parametrize("regularised", [False, True], ids=["plain", "regularised"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("config, targets", [
    ((("rnn",), (4,), False), "classes"),
    ((("gru",), (3,), True), "values"),
    ((("lstm", "gru"), (3, 2), True), "classes"),
])
def test_oracle_matches_train_step_with_embedding(config, targets, dtype,
                                                  regularised):
    cells, sizes, bidirectional = config
    net = _network(cells, sizes, 3, 2, bidirectional=bidirectional,
                   dtype=dtype, targets=targets, n_tokens=9)
    ids, lengths, y = _data(net, 6, 5, seed=4, targets=targets, ids=True)
    ids[1, :2] = 3                                      # a repeated id
    kw = REGULARISED if regularised else {}
    check_against_train_step(net, ids, lengths, y, **kw)


def test_forward_final_states_match_features():
    """Without masks, A is the network's inference output."""
    net = _network(("lstm", "rnn"), (3, 4), 2, 3, bidirectional=True,
                   activation="relu")
    X, lengths, _ = _data(net, 5, 6, seed=3, targets="classes")
    cells, layers, _, _, activation = oracle_arguments(net)
    A, _ = reference.network_forward(cells, layers, X, lengths,
                                     activation=activation)
    with single_threaded_blas():
        features = net.features(X, lengths)
    assert_close(features, A, RTOL[net.dtype], "A")
    assert A.shape == (5, 8)


def _fd_problem(targets):
    """A small float64 problem with every option: embedding, two stacked
    bidirectional layers, masks, weights and a penalty."""
    rng = np.random.default_rng(5)
    V, F, H, K, N, T = 6, 3, 2, 3, 4, 5
    ids, lengths = token_ids(N, T, V - 1, seed=5)         # row V-1 unused
    cells = ("gru", "lstm")
    layers = [[reference.init_params(c, n_in, H, random_state=rng)
               for _ in range(2)] for c, n_in in zip(cells, (F, 2 * H))]
    head = {"W": rng.uniform(-0.5, 0.5, (2 * H, K)), "b": rng.uniform(-0.1, 0.1, K)}
    E = rng.uniform(-0.5, 0.5, (V, F))
    in_masks = [[(rng.random((N, w)) > 0.3) / 0.7 for _ in range(2)]
                for w in (F, 2 * H)]
    rec_masks = [None, [(rng.random((N, H)) > 0.3) / 0.7 for _ in range(2)]]
    y = rng.integers(0, K, N) if targets == "classes" else rng.normal(size=(N, K))
    kw = dict(loss=LOSS_NAMES[targets], sample_weight=rng.uniform(0.5, 2, N),
              alpha=0.2, embedding=E, input_masks=in_masks,
              recurrent_masks=rec_masks)
    return cells, layers, head, ids, lengths, y, kw


@pytest.mark.parametrize("targets", ["classes", "values"])
def test_loss_gradient_matches_finite_differences(targets):
    cells, layers, head, ids, lengths, y, kw = _fd_problem(targets)

    def loss():
        return reference.network_loss_gradient(cells, layers, head, ids,
                                               lengths, y, **kw)[0]

    _, layer_grads, head_grads, embedding_grad = reference.network_loss_gradient(
        cells, layers, head, ids, lengths, y, **kw)
    checked = [(kw["embedding"], embedding_grad), (head["W"], head_grads["W"]),
               (head["b"], head_grads["b"])]
    for layer, grads in zip(layers, layer_grads):
        for p, g in zip(layer, grads):
            checked += [(p[name], g[name]) for name in p]
    for array, grad in checked:
        indices = np.random.default_rng(array.size).choice(
            array.size, size=min(array.size, 4), replace=False)
        fd = central_differences(loss, array, indices, FD_EPS)
        np.testing.assert_allclose(grad.ravel()[indices], fd, rtol=FD_RTOL,
                                   atol=FD_ATOL)
    assert np.all(embedding_grad[-1] == 0)          # the unused row
    assert np.abs(embedding_grad).max() > 1e-3


def test_backward_is_the_transpose_of_forward_in_A():
    """network_backward with dA = one-hot of A[n, k] gives the derivative of
    that entry (checked on the input weights of the first layer)."""
    cells, layers, _, ids, lengths, _, kw = _fd_problem("classes")
    args = dict(embedding=kw["embedding"], input_masks=kw["input_masks"],
                recurrent_masks=kw["recurrent_masks"])
    A, tape = reference.network_forward(cells, layers, ids, lengths, **args)
    dA = np.zeros_like(A)
    dA[1, 3] = 1.0
    grads, _ = reference.network_backward(cells, layers, tape, dA)
    W = layers[0][1]["W"]

    def entry():
        return reference.network_forward(cells, layers, ids, lengths, **args)[0][1, 3]

    fd = central_differences(entry, W, range(W.size), FD_EPS)
    np.testing.assert_allclose(grads[0][1]["W"].ravel(), fd, rtol=FD_RTOL,
                               atol=FD_ATOL)


def test_bad_arguments_raise_clear_errors():
    cells, layers, head, ids, lengths, y, kw = _fd_problem("classes")
    E = kw["embedding"]
    call = reference.network_loss_gradient
    with pytest.raises(ValueError, match="loss must be one of"):
        call(cells, layers, head, ids, lengths, y, **{**kw, "loss": "hinge"})
    with pytest.raises(ValueError, match=r"input_masks\[1\]\[0\] must have shape"):
        bad = [kw["input_masks"][0], [m[:, :2] for m in kw["input_masks"][1]]]
        call(cells, layers, head, ids, lengths, y, **{**kw, "input_masks": bad})
    with pytest.raises(ValueError, match=r"recurrent_masks must be None or a list"):
        call(cells, layers, head, ids, lengths, y,
             **{**kw, "recurrent_masks": kw["recurrent_masks"][1:]})
    with pytest.raises(ValueError, match=r"layers\[1\] must be a list of 2"):
        reference.network_forward(cells, [layers[0], layers[1][:1]], ids,
                                  lengths, embedding=E)
    with pytest.raises(ValueError, match=r"layers\[1\]\[0\] must hold the lstm"):
        reference.network_forward(cells, layers[:1] + [layers[0]], ids,
                                  lengths, embedding=E)
    with pytest.raises(ValueError, match="X must hold token ids"):
        reference.network_forward(cells, layers, ids[..., None], lengths,
                                  embedding=E)
    with pytest.raises(ValueError, match="class indices"):
        call(cells, layers, head, ids, lengths, y + 3, **kw)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        call(cells, layers, head, ids, lengths, y,
             **{**kw, "sample_weight": np.ones(3)})
    with pytest.raises(ValueError, match="head\\['W'\\] must have shape"):
        call(cells, layers, {"W": head["W"][:2], "b": head["b"]}, ids, lengths,
             y, **kw)
    with pytest.raises(ValueError, match="alpha must be"):
        call(cells, layers, head, ids, lengths, y, **{**kw, "alpha": -1.0})
    A, tape = reference.network_forward(cells, layers, ids, lengths, embedding=E)
    with pytest.raises(ValueError, match="dA must have the shape of A"):
        reference.network_backward(cells, layers, tape, A[:, :2])
    with pytest.raises(ValueError, match="tape was computed with cells"):
        reference.network_backward(("gru", "gru"), layers, tape, A)
    with pytest.raises(TypeError, match=r"layers\[0\]\[0\]\['W'\] must have dtype"):
        f32 = [[{k: v.astype(np.float32) for k, v in p.items()} for p in lay]
               for lay in layers]
        reference.network_forward(cells, f32, ids, lengths, embedding=E)
