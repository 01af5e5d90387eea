"""Parity of the recurrent layers with PyTorch's nn.RNN, nn.GRU and nn.LSTM.

Unequal lengths are handled on the PyTorch side with
``pack_padded_sequence(..., enforce_sorted=False)``; the reverse direction
is compared with the backward half of a bidirectional module (its
``*_reverse`` weights), which also starts at each sequence's own last valid
step. Gradients are those of ``loss = sum(h_last * A) + sum(h_seq * B)`` for
random ``A`` and ``B``.

Both implementations are checked: the NumPy reference (``impl="reference"``)
and the compiled kernels (``impl="kernels"``, skipped when they are not
built).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seqclf import reference  # noqa: E402

N, T, F, H = 5, 6, 3, 4
LENGTHS = np.array([T, 2, 1, T - 1, 3], dtype=np.intp)

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]
CELL_IDS = ["rnn-tanh", "rnn-relu", "gru", "lstm"]

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


def run_reference(
    cell,
    X,
    lengths,
    params,
    *,
    mask=None,
    reverse=False,
    activation="tanh",
    dh_last=None,
    dh_seq=None,
    n_threads=1,
):
    """Forward then backward with seqclf.reference.

    Same signature and return value as ``tests._helpers.run_kernels``:
    ``(h_last, h_seq, grads, dX)``; ``n_threads`` is ignored.
    """
    kwargs = dict(mask=mask, reverse=reverse, activation=activation)
    h_last, h_seq, cache = reference.forward(cell, X, lengths, params, **kwargs)
    grads, dX = reference.backward(
        cell, X, lengths, params, cache, dh_last=dh_last, dh_seq=dh_seq, **kwargs
    )
    return h_last, h_seq, grads, dX


@pytest.fixture(params=["reference", "kernels"])
def impl(request):
    """The implementation under test, as a ``run_kernels``-like callable."""
    if request.param == "reference":
        return run_reference
    try:
        import seqclf._kernels  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"seqclf._kernels is not built: {exc}")
    from tests._helpers import run_kernels

    return run_kernels


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
    got = impl(
        cell, X, LENGTHS, params, reverse=reverse, activation=activation,
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
