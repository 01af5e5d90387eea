"""Tests of the NumPy reference implementation (seqclf.reference).

The gradient checks compare ``backward`` with central finite differences
in float64. With step ``eps = 1e-6`` the truncation error of a central
difference is ``O(eps**2) ~ 1e-12`` times the third derivative and the
rounding error about ``1e-16 * |loss| / eps ~ 1e-10``; the losses and their
derivatives are O(1) at these tiny sizes, so an agreement to ``rtol=1e-6``
(with ``atol=1e-8`` for entries that are zero or nearly so) leaves two
orders of magnitude of margin while any real mistake in a derivative
produces errors of order 1e-2 or more.
"""

import numpy as np
import pytest

from seqclf import reference
from seqclf.reference import n_params, param_shapes

from ._fd import central_differences
from .conftest import CELL_ACTIVATION_IDS as CELL_IDS
from .conftest import CELL_ACTIVATIONS as CELLS
from .conftest import FD_ATOL as ATOL
from .conftest import FD_EPS as EPS
from .conftest import FD_RTOL as RTOL

N, T, F, H = 4, 5, 3, 4
LENGTHS = np.array([T, 2, 1, T - 1], dtype=np.intp)


# Seed 2 keeps every ReLU pre-activation at least 6e-3 away from 0 in all
# the configurations below (checked by assert_relu_margin).
def make_problem(cell, *, seed=2, with_mask=False, dtype=np.float64, lengths=LENGTHS):
    """Random inputs, parameters and dropout mask for a tiny layer."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, T, F)).astype(dtype)
    params = reference.init_params(cell, F, H, random_state=rng, dtype=dtype)
    mask = None
    if with_mask:
        # Inverted-dropout mask with keep probability 0.75: one dropped unit
        # per sample (a different one for each), the others scaled by 4/3.
        mask = np.full((N, H), 4 / 3, dtype=dtype)
        mask[np.arange(N), np.arange(N) % H] = 0
    return X, np.array(lengths, dtype=np.intp), params, mask


def loss_and_grads(kind, seed=1, dtype=np.float64):
    """Coefficients of a random linear loss ``sum(A*h_last) + sum(B*h_seq)``."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, H)).astype(dtype)
    B = rng.standard_normal((N, T, H)).astype(dtype)
    if kind == "last":
        B = None
    elif kind == "seq":
        A = None
    return A, B


def linear_loss(h_last, h_seq, A, B):
    loss = 0.0
    if A is not None:
        loss += np.sum(A * h_last)
    if B is not None:
        loss += np.sum(B * h_seq)
    return loss


def assert_relu_margin(X, lengths, params, mask, reverse):
    """Fail if a ReLU pre-activation is so close to 0 that the finite
    differences could cross the kink."""
    _, _, cache = reference.forward(
        "rnn", X, lengths, params, mask=mask, reverse=reverse, activation="relu"
    )
    valid = np.arange(T)[None, :] < lengths[:, None]
    pre = cache["gates"][valid]
    assert np.min(np.abs(pre)) > 1e-3


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("loss_kind", ["last", "seq", "both"])
def test_gradients_match_finite_differences(
    cell, activation, reverse, with_mask, loss_kind
):
    X, lengths, params, mask = make_problem(cell, with_mask=with_mask)
    A, B = loss_and_grads(loss_kind)
    kwargs = dict(mask=mask, reverse=reverse, activation=activation)
    if activation == "relu":
        assert_relu_margin(X, lengths, params, mask, reverse)

    def loss():
        h_last, h_seq, _ = reference.forward(cell, X, lengths, params, **kwargs)
        return linear_loss(h_last, h_seq, A, B)

    h_last, h_seq, cache = reference.forward(cell, X, lengths, params, **kwargs)
    grads, dX = reference.backward(
        cell, X, lengths, params, cache, dh_last=A, dh_seq=B, **kwargs
    )
    assert set(grads) == set(params)

    # Perturb every entry of every parameter and of X in place.
    for name, array, analytic in [(k, params[k], grads[k]) for k in params] + [
        ("X", X, dX)
    ]:
        numeric = central_differences(loss, array, range(array.size), EPS)
        numeric = numeric.reshape(array.shape)
        np.testing.assert_allclose(
            analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=f"gradient of {name}"
        )
        assert np.abs(analytic).max() > 1e-3, f"gradient of {name} is trivially 0"


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_outputs_respect_lengths(cell, activation, reverse, with_mask):
    X, lengths, params, mask = make_problem(cell, with_mask=with_mask)
    kwargs = dict(mask=mask, reverse=reverse, activation=activation)
    h_last, h_seq, cache = reference.forward(cell, X, lengths, params, **kwargs)
    assert h_last.shape == (N, H) and h_seq.shape == (N, T, H)

    for n, length in enumerate(lengths):
        # Exactly zero past the end of the sequence.
        assert np.all(h_seq[n, length:] == 0)
        # h_last is the output of the last processed step.
        last = 0 if reverse else length - 1
        np.testing.assert_array_equal(h_last[n], h_seq[n, last])
        # ... and the valid part is not trivially zero.
        assert np.any(h_seq[n, :length] != 0)

    # dX is zero at padded positions, whatever dh_seq holds there.
    A, B = loss_and_grads("both")
    _, dX = reference.backward(
        cell, X, lengths, params, cache, dh_last=A, dh_seq=B, **kwargs
    )
    for n, length in enumerate(lengths):
        assert np.all(dX[n, length:] == 0)
        assert np.any(dX[n, :length] != 0)


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_padding_content_is_ignored(cell, activation, reverse, with_mask):
    X, lengths, params, mask = make_problem(cell, with_mask=with_mask)
    kwargs = dict(mask=mask, reverse=reverse, activation=activation)
    rng = np.random.default_rng(42)
    X_garbage = X.copy()
    B_garbage = loss_and_grads("both")[1].copy()
    for n, length in enumerate(lengths):
        X_garbage[n, length:] = rng.uniform(-1e3, 1e3, size=(T - length, F))
        B_garbage[n, length:] = rng.uniform(-1e3, 1e3, size=(T - length, H))
    A, B = loss_and_grads("both")

    results = []
    for X_, B_ in [(X, B), (X_garbage, B_garbage)]:
        h_last, h_seq, cache = reference.forward(cell, X_, lengths, params, **kwargs)
        grads, dX = reference.backward(
            cell, X_, lengths, params, cache, dh_last=A, dh_seq=B_, **kwargs
        )
        results.append((h_last, h_seq, grads, dX))

    (h_last0, h_seq0, grads0, dX0), (h_last1, h_seq1, grads1, dX1) = results
    np.testing.assert_array_equal(h_last0, h_last1)
    np.testing.assert_array_equal(h_seq0, h_seq1)
    np.testing.assert_array_equal(dX0, dX1)
    for name in params:
        np.testing.assert_array_equal(grads0[name], grads1[name])


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_full_lengths_match_truncated_batch(cell, activation, reverse):
    # A sequence of length L in a batch padded to T gives the same results
    # as the same sequence alone in a batch of T = L.
    X, lengths, params, _ = make_problem(cell)
    kwargs = dict(reverse=reverse, activation=activation)
    h_last, h_seq, _ = reference.forward(cell, X, lengths, params, **kwargs)
    for n, length in enumerate(lengths):
        h_last_n, h_seq_n, _ = reference.forward(
            cell, X[n : n + 1, :length], [length], params, **kwargs
        )
        np.testing.assert_allclose(h_last_n[0], h_last[n], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(h_seq_n[0], h_seq[n, :length],
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
def test_reverse_equals_forward_on_flipped_sequences(cell, activation):
    X, lengths, params, mask = make_problem(cell, with_mask=True)
    X_flip = X.copy()
    for n, length in enumerate(lengths):
        X_flip[n, :length] = X[n, :length][::-1]
    kwargs = dict(mask=mask, activation=activation)
    h_last_r, h_seq_r, _ = reference.forward(cell, X, lengths, params, reverse=True,
                                             **kwargs)
    h_last_f, h_seq_f, _ = reference.forward(cell, X_flip, lengths, params, **kwargs)
    np.testing.assert_allclose(h_last_r, h_last_f, rtol=1e-12, atol=1e-15)
    for n, length in enumerate(lengths):
        np.testing.assert_allclose(
            h_seq_r[n, :length], h_seq_f[n, :length][::-1], rtol=1e-12, atol=1e-15
        )


def test_one_step_equations():
    # Hand-written single-step equations for each cell (zero initial state,
    # so U only enters through later steps; use T=2 to exercise it).
    X, lengths, p, _ = make_problem("lstm", lengths=[T] * N)
    x0, x1 = X[:, 0], X[:, 1]

    def sig(a):
        return 1 / (1 + np.exp(-a))

    a = x0 @ p["W"] + p["b"]
    i, f, g, o = np.split(a, 4, axis=1)
    c0 = sig(i) * np.tanh(g)
    h0 = sig(o) * np.tanh(c0)
    a = x1 @ p["W"] + h0 @ p["U"] + p["b"]
    i, f, g, o = np.split(a, 4, axis=1)
    c1 = sig(f) * c0 + sig(i) * np.tanh(g)
    h1 = sig(o) * np.tanh(c1)
    _, h_seq, _ = reference.forward("lstm", X, lengths, p)
    np.testing.assert_allclose(h_seq[:, 1], h1, rtol=1e-12)

    X, lengths, p, _ = make_problem("gru", lengths=[T] * N)
    x0, x1 = X[:, 0], X[:, 1]

    def gru_step(x, h):
        gi = np.split(x @ p["W"] + p["b_ih"], 3, axis=1)
        gh = np.split(h @ p["U"] + p["b_hh"], 3, axis=1)
        r = sig(gi[0] + gh[0])
        z = sig(gi[1] + gh[1])
        n = np.tanh(gi[2] + r * gh[2])
        return (1 - z) * n + z * h

    h1 = gru_step(x1, gru_step(x0, np.zeros((N, H))))
    _, h_seq, _ = reference.forward("gru", X, lengths, p)
    np.testing.assert_allclose(h_seq[:, 1], h1, rtol=1e-12)

    X, lengths, p, _ = make_problem("rnn", lengths=[T] * N)
    h0 = np.maximum(X[:, 0] @ p["W"] + p["b"], 0)
    h1 = np.maximum(X[:, 1] @ p["W"] + h0 @ p["U"] + p["b"], 0)
    _, h_seq, _ = reference.forward("rnn", X, lengths, p, activation="relu")
    np.testing.assert_allclose(h_seq[:, 1], h1, rtol=1e-12)


def _sig(a):
    return 1 / (1 + np.exp(-a))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_mask_only_multiplies_the_recurrent_product(cell):
    # Hand-written recursion with a random (non-binary) mask: the mask
    # multiplies h before the U product only; the GRU's z * h term and the
    # LSTM's cell state use the unmasked state.
    X, lengths, p, _ = make_problem(cell, lengths=[T] * N)
    m = np.random.default_rng(7).uniform(0.0, 2.0, size=(N, H))
    h = np.zeros((N, H))
    c = np.zeros((N, H))
    for t in range(T):
        x, hm = X[:, t], h * m
        if cell == "rnn":
            h = np.tanh(x @ p["W"] + hm @ p["U"] + p["b"])
        elif cell == "gru":
            gi = np.split(x @ p["W"] + p["b_ih"], 3, axis=1)
            gh = np.split(hm @ p["U"] + p["b_hh"], 3, axis=1)
            r, z = _sig(gi[0] + gh[0]), _sig(gi[1] + gh[1])
            n = np.tanh(gi[2] + r * gh[2])
            h = (1 - z) * n + z * h
        else:
            i, f, g, o = np.split(x @ p["W"] + hm @ p["U"] + p["b"], 4, axis=1)
            c = _sig(f) * c + _sig(i) * np.tanh(g)
            h = _sig(o) * np.tanh(c)
    h_last, _, _ = reference.forward(cell, X, lengths, p, mask=m)
    np.testing.assert_allclose(h_last, h, rtol=1e-12, atol=1e-15)

    # A mask of ones is the same as no mask.
    h_last_ones, _, _ = reference.forward(cell, X, lengths, p, mask=np.ones((N, H)))
    h_last_none, _, _ = reference.forward(cell, X, lengths, p)
    np.testing.assert_array_equal(h_last_ones, h_last_none)


@pytest.mark.parametrize("cell, activation", CELLS, ids=CELL_IDS)
def test_float32_computes_in_float32(cell, activation):
    X64, lengths, p64, mask64 = make_problem(cell, with_mask=True)
    X32 = X64.astype(np.float32)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    mask32 = mask64.astype(np.float32)
    kwargs = dict(reverse=True, activation=activation)
    h_last, h_seq, cache = reference.forward(cell, X32, lengths, p32, mask=mask32,
                                             **kwargs)
    A, B = loss_and_grads("both", dtype=np.float32)
    grads, dX = reference.backward(
        cell, X32, lengths, p32, cache, dh_last=A, dh_seq=B, mask=mask32, **kwargs
    )
    for array in [h_last, h_seq, dX, *grads.values(), *cache_arrays(cache)]:
        assert array.dtype == np.float32

    # Same values as float64 up to float32 rounding accumulated over a few
    # steps (unit roundoff 6e-8, values and sums of O(1-10)).
    h_last64, _, _ = reference.forward(
        cell,
        X32.astype(np.float64),
        lengths,
        {k: v.astype(np.float64) for k, v in p32.items()},
        mask=mask64,
        **kwargs,
    )
    np.testing.assert_allclose(h_last, h_last64, rtol=1e-5, atol=1e-5)


def cache_arrays(cache):
    return [v for v in cache.values() if isinstance(v, np.ndarray)]


@pytest.mark.parametrize(
    "cell, n_features, n_hidden, expected",
    [
        ("rnn", 32, 32, 2080),
        ("lstm", 64, 128, 98816),
        ("gru", 64, 256, 247296),
        ("rnn", 256, 128, 49280),
    ],
)
def test_parameter_counts(cell, n_features, n_hidden, expected):
    assert n_params(cell, n_features, n_hidden) == expected
    params = reference.init_params(cell, n_features, n_hidden, random_state=0)
    assert sum(v.size for v in params.values()) == expected


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params(cell, dtype):
    params = reference.init_params(cell, F, H, random_state=0, dtype=dtype, scale=0.3)
    shapes = param_shapes(cell, F, H)
    assert list(params) == list(shapes)
    for name, value in params.items():
        assert value.shape == shapes[name]
        assert value.dtype == dtype
        assert np.abs(value).max() <= 0.3
    again = reference.init_params(cell, F, H, random_state=0, dtype=dtype, scale=0.3)
    for name in params:
        np.testing.assert_array_equal(params[name], again[name])


def _bad(**changes):
    """Arguments of a valid GRU forward call with ``changes`` applied."""
    X, lengths, params, _ = make_problem("gru")
    kwargs = dict(cell="gru", X=X, lengths=lengths, params=params)
    for key, change in changes.items():
        kwargs[key] = change(kwargs[key]) if callable(change) else change
    return kwargs


def _as32(params):
    return {k: v.astype(np.float32) for k, v in params.items()}


BAD_INPUTS = {
    "cell": (_bad(cell="transformer"), ValueError, "cell must be one of"),
    "X-ndim": (_bad(X=lambda X: X[0]), ValueError, "X must be 3-dimensional"),
    "X-dtype": (_bad(X=lambda X: X.astype(np.int64)), TypeError, "X must have dtype"),
    "lengths-shape": (
        _bad(lengths=lambda lengths: lengths[:-1]),
        ValueError,
        "lengths must have shape",
    ),
    "lengths-zero": (
        _bad(lengths=np.array([T, 2, 0, 1])),
        ValueError,
        r"lengths must lie in \[1, 5\]",
    ),
    "lengths-too-long": (
        _bad(lengths=np.array([T + 1, 2, 1, 1])),
        ValueError,
        r"lengths must lie in \[1, 5\]",
    ),
    "lengths-dtype": (
        _bad(lengths=lambda lengths: lengths.astype(float)),
        TypeError,
        "lengths must be an integer",
    ),
    "params-shape": (
        _bad(params=lambda p: dict(p, U=p["U"][:, :-1])),
        ValueError,
        r"params\['U'\] must have shape",
    ),
    "params-missing": (
        _bad(params=lambda p: {k: p[k] for k in ["W", "U"]}),
        ValueError,
        "params for cell='gru' must have exactly the keys",
    ),
    "params-other-cell": (
        _bad(params=reference.init_params("lstm", F, H)),
        ValueError,
        "params for cell='gru' must have exactly the keys",
    ),
    "params-dtype": (
        _bad(params=_as32),
        TypeError,
        r"params\['W'\] must have the dtype of X",
    ),
    "mask-shape": (_bad(mask=np.ones((N, H + 1))), ValueError, "mask must have shape"),
    "activation-gru": (
        _bad(activation="relu"),
        ValueError,
        "activation='relu' is only supported for cell='rnn'",
    ),
    "activation-unknown": (
        _bad(cell="rnn", params=reference.init_params("rnn", F, H),
             activation="sigmoid"),
        ValueError,
        "activation must be one of",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_raise(case):
    kwargs, error, match = BAD_INPUTS[case]
    kwargs = dict(kwargs)
    args = [kwargs.pop(k) for k in ["cell", "X", "lengths", "params"]]
    with pytest.raises(error, match=match):
        reference.forward(*args, **kwargs)


def test_bad_backward_inputs_raise():
    X, lengths, params, _ = make_problem("lstm")
    _, _, cache = reference.forward("lstm", X, lengths, params)
    with pytest.raises(ValueError, match="At least one of dh_last and dh_seq"):
        reference.backward("lstm", X, lengths, params, cache)
    with pytest.raises(ValueError, match="dh_last must have shape"):
        reference.backward("lstm", X, lengths, params, cache,
                           dh_last=np.ones((N, H + 1)))
    with pytest.raises(ValueError, match="dh_seq must have shape"):
        reference.backward("lstm", X, lengths, params, cache,
                           dh_seq=np.ones((N, T - 1, H)))
    with pytest.raises(TypeError, match="dh_last must have the dtype of X"):
        reference.backward(
            "lstm", X, lengths, params, cache, dh_last=np.ones((N, H), dtype=np.float32)
        )
    with pytest.raises(ValueError, match="cache was computed with"):
        reference.backward(
            "lstm", X, lengths, params, cache, dh_last=np.ones((N, H)), reverse=True
        )
    with pytest.raises(TypeError, match="cache must be the dict returned by forward"):
        reference.backward("lstm", X, lengths, params, None, dh_last=np.ones((N, H)))
    with pytest.raises(ValueError, match="n_hidden must be a positive integer"):
        reference.init_params("lstm", F, 0)
    with pytest.raises(ValueError, match="cell"):
        reference.init_params("cnn", F, H)


def test_parameter_counts_have_a_public_home():
    # The registry's functions, exported where users find init_params.
    from seqclf import _cells

    assert {"n_params", "param_shapes"} <= set(reference.__all__)
    assert reference.n_params is _cells.n_params
    assert reference.param_shapes is _cells.param_shapes
