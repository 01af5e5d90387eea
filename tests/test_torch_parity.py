"""Parity of the recurrent layers with PyTorch's nn.RNN, nn.GRU and nn.LSTM.

Unequal lengths are handled on the PyTorch side with
``pack_padded_sequence(..., enforce_sorted=False)``; the reverse direction
is compared with the backward half of a bidirectional module (its
``*_reverse`` weights), which also starts at each sequence's own last valid
step. Gradients are those of ``loss = sum(h_last * A) + sum(h_seq * B)`` for
random ``A`` and ``B``.

Both implementations are checked through the ``impl`` fixture
(tests/conftest.py): the NumPy reference and the compiled layers.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


from ._helpers import run_layer  # noqa: E402
from .conftest import CELL_ACTIVATION_IDS, CELL_ACTIVATIONS  # noqa: E402

N, T, F, H = 5, 6, 3, 4
LENGTHS = np.array([T, 2, 1, T - 1, 3], dtype=np.intp)

# The registered computations that PyTorch has a module for.
TORCH_CELLS = ("rnn", "gru", "lstm")
CELLS = [p for p in CELL_ACTIVATIONS if p[0] in TORCH_CELLS]
CELL_IDS = [i for p, i in zip(CELL_ACTIVATIONS, CELL_ACTIVATION_IDS)
            if p[0] in TORCH_CELLS]

# float64 on both sides: only the order of floating-point operations
# differs, so the results agree to a few units of roundoff (~1e-16) times
# the size of the values and sums involved (O(10) at most here).
RTOL64, ATOL64 = 1e-10, 1e-12
# float32 on our side against float64 PyTorch on the same float32-rounded
# weights and inputs: the difference is our float32 rounding (unit
# roundoff 6e-8) accumulated over at most T=6 steps and sums of F + H = 7
# terms, amplified by at most O(10) through the recursion and the
# backward pass; 1e-4 relative / 1e-5 absolute leaves ample margin while a
# real error (a wrong gate, a missed step) is of order 1e-2 or more.
RTOL32, ATOL32 = 1e-4, 1e-5


def make_torch_module(cell, activation, reverse, seed):
    """A float64 PyTorch module; bidirectional for the reverse direction."""
    torch.manual_seed(seed)
    kwargs = dict(
        input_size=F, hidden_size=H, batch_first=True, bidirectional=reverse
    )
    if cell == "rnn":
        module = torch.nn.RNN(nonlinearity=activation, **kwargs)
    elif cell == "gru":
        module = torch.nn.GRU(**kwargs)
    else:
        module = torch.nn.LSTM(**kwargs)
    return module.double()


def params_from_torch(cell, module, reverse, dtype):
    """Our parameter dict from the weights of one direction of ``module``."""
    sfx = "_reverse" if reverse else ""

    def get(name):
        return getattr(module, name + sfx).detach().numpy()

    params = {
        "W": get("weight_ih_l0").T,
        "U": get("weight_hh_l0").T,
    }
    if cell == "gru":
        params["b_ih"] = get("bias_ih_l0")
        params["b_hh"] = get("bias_hh_l0")
    else:
        params["b"] = get("bias_ih_l0") + get("bias_hh_l0")
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}


def grads_from_torch(cell, module, reverse):
    """Torch's parameter gradients, keyed and shaped like our params."""
    sfx = "_reverse" if reverse else ""

    def grad(name):
        return getattr(module, name + sfx).grad.numpy()

    grads = {"W": grad("weight_ih_l0").T, "U": grad("weight_hh_l0").T}
    if cell == "gru":
        grads["b_ih"] = grad("bias_ih_l0")
        grads["b_hh"] = grad("bias_hh_l0")
    else:
        # The loss depends on bias_ih + bias_hh only: both get the same
        # gradient (up to PyTorch's summation order).
        np.testing.assert_allclose(
            grad("bias_ih_l0"), grad("bias_hh_l0"), rtol=1e-12, atol=1e-14
        )
        grads["b"] = grad("bias_ih_l0")
    return grads


def run_torch(cell, module, X, lengths, reverse, A, B):
    """Outputs of one direction of ``module`` and the gradients of the loss."""
    Xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        Xt, torch.as_tensor(lengths, dtype=torch.int64), batch_first=True,
        enforce_sorted=False,
    )
    out, state = module(packed)
    h_n = state[0] if cell == "lstm" else state
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(
        out, batch_first=True, total_length=X.shape[1]
    )
    if reverse:
        h_seq, h_last = out[..., H:], h_n[1]
    else:
        h_seq, h_last = out, h_n[0]
    loss = (h_last * torch.as_tensor(A, dtype=torch.float64)).sum() + (
        h_seq * torch.as_tensor(B, dtype=torch.float64)
    ).sum()
    module.zero_grad()
    loss.backward()
    grads = grads_from_torch(cell, module, reverse)
    return h_last.detach().numpy(), h_seq.detach().numpy(), grads, Xt.grad.numpy()


def make_data(seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, T, F)).astype(dtype)
    A = rng.standard_normal((N, H)).astype(dtype)
    B = rng.standard_normal((N, T, H)).astype(dtype)
    return X, A, B


def check_parity(impl, cell, activation, reverse, dtype, rtol, atol, seed=0):
    module = make_torch_module(cell, activation, reverse, seed)
    if dtype == np.float32:
        # Round PyTorch's weights to float32 so both sides use the same
        # values; PyTorch then computes in float64 on them.
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(p.float().double())
    params = params_from_torch(cell, module, reverse, dtype)
    X, A, B = make_data(seed, dtype)

    expected = run_torch(cell, module, X.astype(np.float64), LENGTHS, reverse, A, B)
    got = run_layer(
        impl, cell, X, LENGTHS, params, reverse=reverse, activation=activation,
        dh_last=A, dh_seq=B,
    )
    h_last, h_seq, grads, dX = got
    h_last_t, h_seq_t, grads_t, dX_t = expected

    for array in [h_last, h_seq, dX, *grads.values()]:
        assert array.dtype == dtype
    assert set(grads) == set(params)
    np.testing.assert_allclose(h_last, h_last_t, rtol=rtol, atol=atol, err_msg="h_last")
    np.testing.assert_allclose(h_seq, h_seq_t, rtol=rtol, atol=atol, err_msg="h_seq")
    for name in params:
        np.testing.assert_allclose(
            grads[name], grads_t[name], rtol=rtol, atol=atol, err_msg=f"d{name}"
        )
    np.testing.assert_allclose(dX, dX_t, rtol=rtol, atol=atol, err_msg="dX")
    # The padded positions are exactly zero on both sides.
    for n, length in enumerate(LENGTHS):
        assert np.all(h_seq[n, length:] == 0)
        assert np.all(dX[n, length:] == 0)
    # Guard against a vacuous comparison.
    assert np.abs(h_seq_t).max() > 0.1 and np.abs(dX_t).max() > 0.1


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_parity_float64(impl, cell, activation, reverse):
    check_parity(impl, cell, activation, reverse, np.float64, RTOL64, ATOL64)


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_parity_float32(impl, cell, activation, reverse):
    check_parity(impl, cell, activation, reverse, np.float32, RTOL32, ATOL32)


# ---------------------------------------------------------------------------
# Whole classifier: weights ported from PyTorch give PyTorch's predictions,
# and one Adam step moves them the same way.
# ---------------------------------------------------------------------------

TORCH_MODULES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _port_weights(clf, module, head):
    """Copy a torch recurrent module and linear head into clf's weights."""
    for l, layer in enumerate(clf.weights_):
        for d, w in enumerate(layer):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            W_ih = getattr(module, "weight_ih" + sfx).detach().numpy()
            W_hh = getattr(module, "weight_hh" + sfx).detach().numpy()
            b_ih = getattr(module, "bias_ih" + sfx).detach().numpy()
            b_hh = getattr(module, "bias_hh" + sfx).detach().numpy()
            w["W"][...] = W_ih.T
            w["U"][...] = W_hh.T
            if "b" in w:
                w["b"][...] = b_ih + b_hh
            else:
                w["b_ih"][...] = b_ih
                w["b_hh"][...] = b_hh
    clf.head_weights_["W"][...] = head.weight.detach().numpy().T
    clf.head_weights_["b"][...] = head.bias.detach().numpy()


def _freeze_bias_hh(module):
    """Hold the module's ``bias_hh`` at zero, out of training: seqclf's tanh
    RNN and LSTM have one bias (as Keras) where PyTorch has two that would
    both move by one Adam step."""
    for name, p in module.named_parameters():
        if name.startswith("bias_hh"):
            p.requires_grad_(False)
            p.zero_()


def _torch_adam(module, head):
    """Adam on the module's trained parameters and the head's, with epsilon
    scaled to match seqclf's at step 1 (PyTorch adds it after the bias
    correction, seqclf before it, as Keras and scikit-learn)."""
    params = [p for p in module.parameters() if p.requires_grad]
    params += list(head.parameters())
    return torch.optim.Adam(params, lr=0.01, eps=1e-8 / np.sqrt(1 - 0.999))


def _torch_logits(module, head, seqs, bidirectional, H):
    from torch.nn.utils.rnn import pack_sequence

    packed = pack_sequence([torch.from_numpy(s) for s in seqs],
                           enforce_sorted=False)
    out = module(packed)[1]
    h_n = out[0] if isinstance(out, tuple) else out          # LSTM: (h, c)
    if bidirectional:
        final = torch.cat([h_n[-2], h_n[-1]], dim=1)
    else:
        final = h_n[-1]
    return head(final)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_matches_torch_model(cell, bidirectional):
    from seqclf import RNNClassifier

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    F, H, K = 3, 5, 3
    seqs = [rng.normal(size=(rng.integers(2, 8), F)) for _ in range(12)]
    y = np.arange(12) % K
    module = getattr(torch.nn, TORCH_MODULES[cell])(
        F, H, num_layers=2, bidirectional=bidirectional, batch_first=True,
    ).double()
    head = torch.nn.Linear((2 if bidirectional else 1) * H, K).double()

    clf = RNNClassifier(cell, (H, H), bidirectional=bidirectional, max_iter=1,
                        batch_size=12, shuffle=False, random_state=0)
    clf.fit(seqs, y)
    _port_weights(clf, module, head)
    logits = _torch_logits(module, head, seqs, bidirectional, H)
    expected = torch.softmax(logits, dim=1).detach().numpy()
    np.testing.assert_allclose(clf.predict_proba(seqs), expected,
                               rtol=RTOL64, atol=ATOL64)

    # One full-batch Adam step on both sides (see _freeze_bias_hh and
    # _torch_adam for the two differences that are set aside).
    if cell != "gru":
        _freeze_bias_hh(module)
        _port_weights(clf, module, head)
        logits = _torch_logits(module, head, seqs, bidirectional, H)
    opt = _torch_adam(module, head)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    clf.set_params(warm_start=True, learning_rate_init=0.01)
    clf._optimizer = None          # a fresh Adam, as on the torch side
    clf.fit(seqs, y)
    assert clf.loss_curve_[-1] == pytest.approx(loss.item(), rel=1e-10)
    logits = _torch_logits(module, head, seqs, bidirectional, H)
    expected = torch.softmax(logits, dim=1).detach().numpy()
    np.testing.assert_allclose(clf.predict_proba(seqs), expected,
                               rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_embedding_classifier_matches_torch_model(cell):
    """nn.Embedding -> 2-layer bidirectional module -> Linear, and one step
    of SparseAdam (embedding) + Adam (the rest) against seqclf's lazy Adam."""
    from torch.nn.utils.rnn import pack_sequence

    from seqclf import RNNClassifier

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    V, E, H, K = 30, 4, 5, 3
    seqs = [rng.integers(0, 20, size=rng.integers(2, 8)) for _ in range(12)]
    y = np.arange(12) % K
    emb = torch.nn.Embedding(V, E, sparse=True).double()
    module = getattr(torch.nn, TORCH_MODULES[cell])(
        E, H, num_layers=2, bidirectional=True, batch_first=True).double()
    if cell == "lstm":                               # one bias, as seqclf
        _freeze_bias_hh(module)
    head = torch.nn.Linear(2 * H, K).double()
    clf = RNNClassifier(cell, (H, H), embedding_dim=E, vocab_size=V,
                        bidirectional=True, max_iter=1, batch_size=12,
                        shuffle=False, random_state=0).fit(seqs, y)
    # float32 on our side: torch runs in float64 on the float32-rounded weights.
    for p in [*emb.parameters(), *module.parameters(), *head.parameters()]:
        p.data = p.data.float().double()
    _port_weights(clf, module, head)
    clf.embedding_[...] = emb.weight.detach().numpy()

    def logits():
        packed = pack_sequence([emb(torch.from_numpy(s)) for s in seqs],
                               enforce_sorted=False)
        out = module(packed)[1]
        h_n = out[0] if isinstance(out, tuple) else out
        return head(torch.cat([h_n[-2], h_n[-1]], dim=1))

    z = logits()
    np.testing.assert_allclose(clf.predict_proba(seqs),
                               torch.softmax(z, dim=1).detach().numpy(),
                               rtol=RTOL32, atol=ATOL32)
    dense = ([p for p in module.parameters() if p.requires_grad]
             + list(head.parameters()))
    opts = [torch.optim.SparseAdam(list(emb.parameters()), lr=0.01),
            torch.optim.Adam(dense, lr=0.01, eps=1e-8 / np.sqrt(1 - 0.999))]
    loss = torch.nn.functional.cross_entropy(z, torch.from_numpy(y))
    loss.backward()
    for opt in opts:
        opt.step()
    clf.set_params(warm_start=True, learning_rate_init=0.01)
    clf._optimizer = None                         # fresh optimizers, as torch's
    clf.fit(seqs, y)
    assert clf.loss_curve_[-1] == pytest.approx(loss.item(), rel=1e-5)
    untouched = np.setdiff1d(np.arange(V), np.concatenate(seqs))
    np.testing.assert_array_equal(clf.embedding_[untouched],
                                  emb.weight.detach().numpy()[untouched])
    np.testing.assert_allclose(clf.embedding_, emb.weight.detach().numpy(),
                               rtol=RTOL32, atol=ATOL32)
    np.testing.assert_allclose(clf.predict_proba(seqs),
                               torch.softmax(logits(), dim=1).detach().numpy(),
                               rtol=RTOL32, atol=ATOL32)


def _assert_weights_equal(est, module, head, rtol, atol):
    """``est``'s weights against the torch module's and head's (one bias
    ``bias_ih + bias_hh`` where seqclf has one)."""
    for l, layer in enumerate(est.weights_):
        for d, w in enumerate(layer):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            t = {k: getattr(module, k + sfx).detach().numpy()
                 for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            np.testing.assert_allclose(w["W"], t["weight_ih"].T, rtol=rtol, atol=atol)
            np.testing.assert_allclose(w["U"], t["weight_hh"].T, rtol=rtol, atol=atol)
            if "b" in w:
                np.testing.assert_allclose(w["b"], t["bias_ih"] + t["bias_hh"],
                                           rtol=rtol, atol=atol)
            else:
                for ours, theirs in (("b_ih", "bias_ih"), ("b_hh", "bias_hh")):
                    np.testing.assert_allclose(w[ours], t[theirs], rtol=rtol,
                                               atol=atol)
    np.testing.assert_allclose(est.head_weights_["W"], head.weight.detach().numpy().T,
                               rtol=rtol, atol=atol)
    np.testing.assert_allclose(est.head_weights_["b"], head.bias.detach().numpy(),
                               rtol=rtol, atol=atol)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_regressor_matches_torch_model(cell, bidirectional):
    """Predictions, then one full-batch Adam step on ``0.5 * MSELoss`` (two
    targets), against a torch module with a linear head."""
    from seqclf import RNNRegressor

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    F, H, K = 3, 5, 2
    seqs = [rng.normal(size=(rng.integers(2, 8), F)) for _ in range(12)]
    y = rng.normal(size=(12, K))
    module = getattr(torch.nn, TORCH_MODULES[cell])(
        F, H, num_layers=2, bidirectional=bidirectional, batch_first=True,
    ).double()
    if cell != "gru":
        _freeze_bias_hh(module)
    head = torch.nn.Linear((2 if bidirectional else 1) * H, K).double()

    reg = RNNRegressor(cell, (H, H), bidirectional=bidirectional, max_iter=1,
                       batch_size=12, shuffle=False, random_state=0)
    reg.fit(seqs, y)
    _port_weights(reg, module, head)
    out = _torch_logits(module, head, seqs, bidirectional, H)
    np.testing.assert_allclose(reg.predict(seqs), out.detach().numpy(),
                               rtol=RTOL64, atol=ATOL64)

    opt = _torch_adam(module, head)
    loss = 0.5 * torch.nn.functional.mse_loss(out, torch.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    reg.set_params(warm_start=True, learning_rate_init=0.01)
    reg._optimizer = None          # a fresh Adam, as on the torch side
    reg.fit(seqs, y)
    assert reg.loss_curve_[-1] == pytest.approx(loss.item(), rel=1e-10)
    _assert_weights_equal(reg, module, head, rtol=1e-8, atol=1e-10)
