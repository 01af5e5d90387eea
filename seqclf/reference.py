r"""Plain NumPy reference implementation of the recurrent layers.

This module is slow but short and written to be checked by eye. It defines
the exact semantics the compiled kernels and the training step implement
and serves as their test oracle. It only depends on NumPy.

* :func:`forward` and :func:`backward`: one layer direction (one cell);
* :func:`embedding_forward` and :func:`embedding_backward`: the lookup of
  token ids;
* :func:`network_forward`, :func:`network_backward` and
  :func:`network_loss_gradient`: the whole network, composed of the
  functions above (see "Whole network" below);
* :func:`init_params`, :func:`param_shapes`, :func:`n_params`: a layer's
  parameters.

Shapes and parameters
---------------------
``X`` has shape ``(N, T, F)`` (batch-major), ``lengths`` shape ``(N,)`` with
``1 <= lengths[n] <= T``. A layer with ``H`` hidden units and ``G`` gates has
the parameters (see :func:`param_shapes`; :func:`n_params` counts them):

=====  ================================================  ==================
cell   parameters                                        gate column order
=====  ================================================  ==================
rnn    ``W (F, H)``, ``U (H, H)``, ``b (H,)``            --
gru    ``W (F, 3H)``, ``U (H, 3H)``, ``b_ih``, ``b_hh``  r, z, n
lstm   ``W (F, 4H)``, ``U (H, 4H)``, ``b (4H,)``         i, f, g, o
=====  ================================================  ==================

``W`` is PyTorch's ``weight_ih_l0`` transposed and ``U`` its ``weight_hh_l0``
transposed. The RNN and LSTM bias ``b`` is PyTorch's ``bias_ih + bias_hh``;
the GRU keeps both biases (``b_ih = bias_ih``, ``b_hh = bias_hh``).

Equations
---------
For one time step with input row ``x`` and previous state ``h`` (and ``c``
for the LSTM), let ``hm = h * m`` where ``m`` is the recurrent-dropout mask
of shape ``(N, H)``, fixed over time (``hm = h`` without a mask). The mask
only multiplies the state entering the ``U`` product::

    rnn:   h_t = act(x W + hm U + b)                 act = tanh or relu

    gru:   r   = sigmoid(x W_r + b_ih_r + hm U_r + b_hh_r)
           z   = sigmoid(x W_z + b_ih_z + hm U_z + b_hh_z)
           hn  = hm U_n + b_hh_n
           n   = tanh(x W_n + b_ih_n + r * hn)
           h_t = (1 - z) * n + z * h                 (unmasked h)

    lstm:  [i, f, g, o] = x W + hm U + b
           i, f, o = sigmoid(.), g = tanh(.)
           c_t = f * c + i * g                       (unmasked c)
           h_t = o * tanh(c_t)

The initial state (``h`` and ``c``) is zero.

Lengths and direction
---------------------
Positions ``t >= lengths[n]`` are padding (TensorFlow ``sequence_length``
semantics): the output ``h_seq[n, t]`` is zero there, the state of sequence
``n`` is left unchanged, and padding values in ``X`` have no influence. The
forward direction processes positions ``0 .. lengths[n] - 1``; the reverse
direction processes ``lengths[n] - 1`` down to ``0``, starting at each
sequence's own last valid step, and writes each output at its original
position. ``h_last`` is the state after the last processed step: position
``lengths[n] - 1`` going forward, position ``0`` in reverse.

The gradients follow the same semantics: ``dh_seq`` at padded positions is
ignored and ``dX`` is zero at padded positions.

Whole network
-------------
A network is a stack of layers ``l = 0 .. L-1``, each of ``D`` directions
(one, or two for a bidirectional network), and a dense head. With ``x_0``
the input (or ``embedding_forward(ids, lengths, E)`` for token ids)::

    direction d of layer l:  h_last[l, d], h_seq[l, d] = forward(
                                 x_l * in_mask[l, d][:, None, :],
                                 mask=rec_mask[l, d], reverse=(d == 1))
    next layer's input:      x_{l+1} = concat(h_seq[l, 0], h_seq[l, 1])
    final states:            A = concat(h_last[L-1, 0], h_last[L-1, 1])
    head:                    Z = A W + b

concatenating along the features, direction 0 (forward) first. The dropout
masks are given, not drawn: ``in_mask[l, d]`` of shape ``(N, F_l)`` and
``rec_mask[l, d]`` of shape ``(N, H_l)``, constant over time. The loss is
the sample-weighted mean of softmax cross-entropy or half the squared
error, plus an optional L2 penalty on ``W`` and ``U`` of every layer and
the head's ``W`` (see :func:`network_loss_gradient`).
"""

import numbers

import numpy as np

from ._cells import CELLS, N_GATES, check_activation, check_cell, n_params, param_shapes

# n_params and param_shapes live in the cell registry, which every module
# reads; this is their public home.
__all__ = ["forward", "backward", "embedding_forward", "embedding_backward",
           "network_forward", "network_backward", "network_loss_gradient",
           "init_params", "n_params", "param_shapes"]


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


def _check_inputs(cell, X, lengths, params, mask, activation):
    """Validate the arguments shared by forward and backward.

    Returns ``(X, lengths, params, mask, n_hidden)`` with ``lengths`` as a
    ``np.intp`` array and ``params`` as a dict of arrays.
    """
    check_activation(cell, activation)

    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        raise TypeError(f"X must have dtype float32 or float64, got {X.dtype}.")
    if X.ndim != 3:
        raise ValueError(
            f"X must be 3-dimensional (n_samples, n_steps, n_features), "
            f"got shape {X.shape}."
        )
    n_samples, n_steps, n_features = X.shape
    if n_samples == 0 or n_steps == 0 or n_features == 0:
        raise ValueError(f"X must have no empty dimension, got shape {X.shape}.")

    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.shape[0] != n_samples:
        raise ValueError(
            f"lengths must have shape ({n_samples},) to match X, "
            f"got {lengths.shape}."
        )
    if not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"lengths must be an integer array, got {lengths.dtype}.")
    if lengths.min() < 1 or lengths.max() > n_steps:
        raise ValueError(
            f"lengths must lie in [1, {n_steps}] (1 <= lengths[n] <= n_steps), "
            f"got values in [{lengths.min()}, {lengths.max()}]."
        )
    lengths = lengths.astype(np.intp)

    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}.")
    U = params.get("U")
    if U is None or np.ndim(U) != 2:
        raise ValueError("params['U'] must be a 2-dimensional array.")
    n_hidden = np.shape(U)[0]
    expected = param_shapes(cell, n_features, n_hidden)
    if set(params) != set(expected):
        raise ValueError(
            f"params for cell={cell!r} must have exactly the keys "
            f"{sorted(expected)}, got {sorted(params)}."
        )
    checked = {}
    for name, shape in expected.items():
        value = np.asarray(params[name])
        if value.shape != shape:
            raise ValueError(
                f"params[{name!r}] must have shape {shape} for cell={cell!r}, "
                f"n_features={n_features}, n_hidden={n_hidden}; "
                f"got {value.shape}."
            )
        if value.dtype != X.dtype:
            raise TypeError(
                f"params[{name!r}] must have the dtype of X ({X.dtype}), "
                f"got {value.dtype}."
            )
        checked[name] = value

    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (n_samples, n_hidden):
            raise ValueError(
                f"mask must have shape ({n_samples}, {n_hidden}), "
                f"got {mask.shape}."
            )
        if mask.dtype != X.dtype:
            raise TypeError(
                f"mask must have the dtype of X ({X.dtype}), got {mask.dtype}."
            )
    return X, lengths, checked, mask, n_hidden


def _check_output_grad(name, value, shape, dtype):
    """Validate ``dh_last`` or ``dh_seq``; ``None`` stands for zero."""
    if value is None:
        return None
    value = np.asarray(value)
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}.")
    if value.dtype != dtype:
        raise TypeError(
            f"{name} must have the dtype of X ({dtype}), got {value.dtype}."
        )
    return value


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _sigmoid(a):
    # Both branches are computed on |a|, so neither overflows.
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


def _time_steps(n_steps, reverse):
    """Positions in processing order.

    Going forward a sequence of length ``L`` is processed at ``t = 0 .. L-1``.
    In reverse, walking ``t`` down from ``T - 1`` and skipping ``t >= L``
    makes each sequence start at its own last valid step ``L - 1``.
    """
    return range(n_steps - 1, -1, -1) if reverse else range(n_steps)


def _split(a, n_gates):
    """Split the last axis of ``a`` into ``n_gates`` equal blocks."""
    return np.split(a, n_gates, axis=-1)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def forward(cell, X, lengths, params, *, mask=None, reverse=False, activation="tanh"):
    """Run one recurrent layer over a batch of padded sequences.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}
        Recurrent cell.
    X : ndarray of shape (n_samples, n_steps, n_features)
        Input sequences, float32 or float64. All computations use this dtype.
        Values at positions ``t >= lengths[n]`` are ignored.
    lengths : array-like of int, shape (n_samples,)
        Valid length of each sequence, ``1 <= lengths[n] <= n_steps``.
    params : dict of ndarray
        Layer parameters with the names and shapes of
        :func:`seqclf._cells.param_shapes` and the dtype of ``X``.
    mask : ndarray of shape (n_samples, n_hidden), default=None
        Recurrent-dropout mask multiplying the previous state before its
        product with ``U`` (constant over time). None means no dropout.
    reverse : bool, default=False
        Process each sequence from its last valid step back to position 0.
    activation : {"tanh", "relu"}, default="tanh"
        Nonlinearity of the ``"rnn"`` cell; must be ``"tanh"`` for the
        other cells.

    Returns
    -------
    h_last : ndarray of shape (n_samples, n_hidden)
        State after the last processed step of each sequence.
    h_seq : ndarray of shape (n_samples, n_steps, n_hidden)
        State after processing each position, zero at padded positions.
    cache : dict
        Intermediate values needed by :func:`backward`.
    """
    X, lengths, p, mask, H = _check_inputs(cell, X, lengths, params, mask, activation)
    N, T, _ = X.shape
    dtype = X.dtype
    G = N_GATES[cell] * H

    h = np.zeros((N, H), dtype=dtype)
    c = np.zeros((N, H), dtype=dtype)  # used by the LSTM only
    h_seq = np.zeros((N, T, H), dtype=dtype)
    # Per-position values of the processed steps (zero at padded positions).
    h_prev_seq = np.zeros((N, T, H), dtype=dtype)  # unmasked previous state
    hm_seq = np.zeros((N, T, H), dtype=dtype)  # masked previous state
    gates_seq = np.zeros((N, T, G), dtype=dtype)
    hn_seq = np.zeros((N, T, H), dtype=dtype)  # GRU only
    c_prev_seq = np.zeros((N, T, H), dtype=dtype)  # LSTM only
    c_seq = np.zeros((N, T, H), dtype=dtype)  # LSTM only

    for t in _time_steps(T, reverse):
        rows = np.flatnonzero(t < lengths)  # sequences with a valid step t
        if rows.size == 0:
            continue
        x = X[rows, t]
        h_prev = h[rows]
        hm = h_prev if mask is None else h_prev * mask[rows]

        if cell == "rnn":
            pre = x @ p["W"] + hm @ p["U"] + p["b"]
            h_new = np.tanh(pre) if activation == "tanh" else np.maximum(pre, 0)
            gates_seq[rows, t] = pre  # pre-activation
        elif cell == "gru":
            gi_r, gi_z, gi_n = _split(x @ p["W"] + p["b_ih"], 3)
            gh_r, gh_z, gh_n = _split(hm @ p["U"] + p["b_hh"], 3)
            r = _sigmoid(gi_r + gh_r)
            z = _sigmoid(gi_z + gh_z)
            hn = gh_n
            n = np.tanh(gi_n + r * hn)
            h_new = (1 - z) * n + z * h_prev
            gates_seq[rows, t] = np.concatenate([r, z, n], axis=1)
            hn_seq[rows, t] = hn
        else:  # lstm
            a_i, a_f, a_g, a_o = _split(x @ p["W"] + hm @ p["U"] + p["b"], 4)
            i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
            c_prev = c[rows]
            c_new = f * c_prev + i * g
            h_new = o * np.tanh(c_new)
            gates_seq[rows, t] = np.concatenate([i, f, g, o], axis=1)
            c_prev_seq[rows, t] = c_prev
            c_seq[rows, t] = c_new
            c[rows] = c_new

        h[rows] = h_new
        h_seq[rows, t] = h_new
        h_prev_seq[rows, t] = h_prev
        hm_seq[rows, t] = hm

    cache = {
        "cell": cell,
        "reverse": bool(reverse),
        "activation": activation,
        "h_seq": h_seq,
        "h_prev": h_prev_seq,
        "hm": hm_seq,
        "gates": gates_seq,
    }
    if cell == "gru":
        cache["hn"] = hn_seq
    elif cell == "lstm":
        cache["c_prev"] = c_prev_seq
        cache["c_seq"] = c_seq
    return h, h_seq, cache


def backward(
    cell,
    X,
    lengths,
    params,
    cache,
    dh_last=None,
    dh_seq=None,
    *,
    mask=None,
    reverse=False,
    activation="tanh",
):
    """Back-propagate through one recurrent layer.

    The arguments ``cell``, ``X``, ``lengths``, ``params``, ``mask``,
    ``reverse`` and ``activation`` must be those given to :func:`forward`.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}
        Recurrent cell.
    X : ndarray of shape (n_samples, n_steps, n_features)
        Input sequences given to :func:`forward`.
    lengths : array-like of int, shape (n_samples,)
        Valid length of each sequence.
    params : dict of ndarray
        Layer parameters given to :func:`forward`.
    cache : dict
        The ``cache`` returned by :func:`forward`.
    dh_last : ndarray of shape (n_samples, n_hidden), default=None
        Gradient of the loss with respect to ``h_last``. None means zero.
    dh_seq : ndarray of shape (n_samples, n_steps, n_hidden), default=None
        Gradient of the loss with respect to ``h_seq``; values at padded
        positions are ignored. None means zero.
    mask : ndarray of shape (n_samples, n_hidden), default=None
        Recurrent-dropout mask given to :func:`forward`.
    reverse : bool, default=False
        Direction given to :func:`forward`.
    activation : {"tanh", "relu"}, default="tanh"
        Activation given to :func:`forward`.

    Returns
    -------
    grads : dict of ndarray
        Gradient with respect to each parameter, with the keys and shapes of
        ``params``.
    dX : ndarray of shape (n_samples, n_steps, n_features)
        Gradient with respect to ``X``, zero at padded positions.
    """
    X, lengths, p, mask, H = _check_inputs(cell, X, lengths, params, mask, activation)
    N, T, _ = X.shape
    dtype = X.dtype
    if not isinstance(cache, dict) or "h_seq" not in cache:
        raise TypeError("cache must be the dict returned by forward.")
    if (cache.get("cell"), cache.get("reverse"), cache.get("activation")) != (
        cell,
        bool(reverse),
        activation,
    ):
        raise ValueError(
            "cache was computed with cell={!r}, reverse={!r}, activation={!r}; "
            "backward got cell={!r}, reverse={!r}, activation={!r}.".format(
                cache.get("cell"),
                cache.get("reverse"),
                cache.get("activation"),
                cell,
                bool(reverse),
                activation,
            )
        )
    if cache["h_seq"].shape != (N, T, H):
        raise ValueError(
            f"cache holds arrays for shape {cache['h_seq'].shape[:2]} and "
            f"n_hidden={cache['h_seq'].shape[2]}, which do not match X and params."
        )
    dh_last = _check_output_grad("dh_last", dh_last, (N, H), dtype)
    dh_seq = _check_output_grad("dh_seq", dh_seq, (N, T, H), dtype)
    if dh_last is None and dh_seq is None:
        raise ValueError("At least one of dh_last and dh_seq must be given.")

    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dX = np.zeros_like(X)
    # Gradient with respect to the running state (h, and c for the LSTM).
    dh = np.zeros((N, H), dtype=dtype) if dh_last is None else dh_last.copy()
    dc = np.zeros((N, H), dtype=dtype)

    # Walk the steps in the opposite order of forward. A sequence's state is
    # unchanged at its padded positions, so its dh (and dc) passes through.
    for t in reversed(_time_steps(T, reverse)):
        rows = np.flatnonzero(t < lengths)
        if rows.size == 0:
            continue
        x = X[rows, t]
        h_prev = cache["h_prev"][rows, t]
        hm = cache["hm"][rows, t]
        gh = dh[rows]  # gradient w.r.t. this step's output state
        if dh_seq is not None:
            gh = gh + dh_seq[rows, t]

        if cell == "rnn":
            pre = cache["gates"][rows, t]
            if activation == "tanh":
                d_pre = gh * (1 - np.tanh(pre) ** 2)
            else:
                d_pre = gh * (pre > 0)
            grads["W"] += x.T @ d_pre
            grads["U"] += hm.T @ d_pre
            grads["b"] += d_pre.sum(axis=0)
            dX[rows, t] = d_pre @ p["W"].T
            d_hm = d_pre @ p["U"].T
            dh_direct = 0  # h only enters through hm
        elif cell == "gru":
            r, z, n = _split(cache["gates"][rows, t], 3)
            hn = cache["hn"][rows, t]
            dz = gh * (h_prev - n)
            dn = gh * (1 - z)
            dh_direct = gh * z
            d_an = dn * (1 - n**2)  # pre-activation of n
            dr = d_an * hn
            d_hn = d_an * r
            d_ar = dr * r * (1 - r)
            d_az = dz * z * (1 - z)
            d_gi = np.concatenate([d_ar, d_az, d_an], axis=1)  # x W + b_ih
            d_gh = np.concatenate([d_ar, d_az, d_hn], axis=1)  # hm U + b_hh
            grads["W"] += x.T @ d_gi
            grads["b_ih"] += d_gi.sum(axis=0)
            grads["U"] += hm.T @ d_gh
            grads["b_hh"] += d_gh.sum(axis=0)
            dX[rows, t] = d_gi @ p["W"].T
            d_hm = d_gh @ p["U"].T
        else:  # lstm
            i, f, g, o = _split(cache["gates"][rows, t], 4)
            c_prev = cache["c_prev"][rows, t]
            tanh_c = np.tanh(cache["c_seq"][rows, t])
            do = gh * tanh_c
            gc = dc[rows] + gh * o * (1 - tanh_c**2)  # total gradient w.r.t. c_t
            di = gc * g
            df = gc * c_prev
            dg = gc * i
            dc[rows] = gc * f
            d_pre = np.concatenate(
                [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)],
                axis=1,
            )
            grads["W"] += x.T @ d_pre
            grads["U"] += hm.T @ d_pre
            grads["b"] += d_pre.sum(axis=0)
            dX[rows, t] = d_pre @ p["W"].T
            d_hm = d_pre @ p["U"].T
            dh_direct = 0

        d_h_prev = d_hm if mask is None else d_hm * mask[rows]
        dh[rows] = dh_direct + d_h_prev

    return grads, dX


def _check_ids(ids, lengths, n_rows):
    """The checks of the compiled embedding passes: integer ids ``(N, T)``,
    lengths in ``[1, T]``, and every id at a valid position in ``[0,
    n_rows)`` (a negative id would read a row from the end).

    Returns ``(ids, valid)``, ``valid`` the ``(N, T)`` mask of data steps.
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be an integer array, got {ids.dtype}.")
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"ids must be a 2-D array (n_samples, n_steps) with "
                         f"n_steps >= 1, got shape {ids.shape}.")
    N, T = ids.shape
    lengths = np.asarray(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be an integer array of shape ({N},), "
                         f"got {lengths.dtype} of shape {lengths.shape}.")
    if N and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(
            f"lengths must lie in [1, {T}] (1 <= lengths[n] <= n_steps), "
            f"got values in [{lengths.min()}, {lengths.max()}]."
        )
    valid = np.arange(T)[None, :] < lengths[:, None]
    bad = valid & ((ids < 0) | (ids >= n_rows))
    if bad.any():
        n, t = np.argwhere(bad)[0]
        raise ValueError(
            f"Token id {ids[n, t]} (sample {n}, step {t}) is outside [0, "
            f"{n_rows}): the embedding has {n_rows} rows."
        )
    return ids, valid


def embedding_forward(ids, lengths, E):
    """Embedding lookup: ``out[n, t] = E[ids[n, t]]`` for ``t < lengths[n]``.

    Parameters
    ----------
    ids : ndarray of shape (N, T), integer
        Token ids; positions at or past ``lengths[n]`` are padding and not
        read.
    lengths : ndarray of shape (N,)
    E : ndarray of shape (V, D)
        Embedding matrix.

    Returns
    -------
    out : ndarray of shape (N, T, D)
        Zero at padding positions.

    Raises
    ------
    ValueError
        If a valid position holds an id outside ``[0, V)``, naming the
        first such id, its sample and step (as the compiled lookup).
    """
    E = np.asarray(E)
    ids, valid = _check_ids(ids, lengths, E.shape[0])
    N, T = ids.shape
    out = np.zeros((N, T, E.shape[1]), dtype=E.dtype)
    out[valid] = E[ids[valid]]
    return out


def embedding_backward(ids, lengths, dX, n_rows):
    """Gradient of the embedding matrix, as the rows the batch touches.

    Parameters
    ----------
    ids : ndarray of shape (N, T), integer
    lengths : ndarray of shape (N,)
    dX : ndarray of shape (N, T, D)
        Gradient w.r.t. the looked-up vectors; padding is not read.
    n_rows : int
        Rows of the embedding matrix.

    Returns
    -------
    rows : ndarray of shape (K,), intp
        The distinct ids at valid positions, increasing.
    grad : ndarray of shape (K, D)
        Row ``rows[k]`` of the dense gradient: the sum of ``dX[n, t]`` over
        the valid positions holding that id (the one-hot matrix's transpose
        times ``dX``, without forming it). Every other row is zero.

    Raises
    ------
    ValueError
        If a valid position holds an id outside ``[0, n_rows)``.
    """
    ids, valid = _check_ids(ids, lengths, n_rows)
    dense = np.zeros((n_rows, dX.shape[2]), dtype=dX.dtype)
    np.add.at(dense, ids[valid], dX[valid])
    rows = np.unique(ids[valid]).astype(np.intp)
    return rows, dense[rows]


def init_params(
    cell, n_features, n_hidden, *, random_state=None, dtype=np.float64, scale=0.5
):
    """Draw random parameters for one layer.

    Every entry is drawn independently and uniformly from
    ``[-scale, scale]``. This is meant for tests and examples, not as a
    training initialisation scheme.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}
        Recurrent cell.
    n_features : int
        Number of input features ``F``.
    n_hidden : int
        Number of hidden units ``H``.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, \
            default=None
        Source of randomness. An int or None seeds
        :func:`numpy.random.default_rng`.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Dtype of the returned arrays.
    scale : float, default=0.5
        Half-width of the uniform distribution.

    Returns
    -------
    params : dict of ndarray
        Parameters with the names and shapes of
        :func:`seqclf._cells.param_shapes`.
    """
    check_cell(cell)
    for name, value in (("n_features", n_features), ("n_hidden", n_hidden)):
        if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}.")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}.")
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        rng = random_state
    else:
        rng = np.random.default_rng(random_state)
    return {
        name: rng.uniform(-scale, scale, size=shape).astype(dtype)
        for name, shape in param_shapes(cell, n_features, n_hidden).items()
    }


# ---------------------------------------------------------------------------
# Whole network
# ---------------------------------------------------------------------------

_LOSSES = ("softmax_cross_entropy", "squared_error")


def _check_dtype(name, value, dtype):
    if value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {value.dtype}.")


def _layer_activations(cells, activation):
    """One activation per layer: a str applies to the cells that offer a
    choice (as the estimators' ``activation``), a sequence names each."""
    if isinstance(activation, str):
        return [activation if len(CELLS[c].activations) > 1
                else CELLS[c].activations[0] for c in cells]
    activation = list(activation)
    if len(activation) != len(cells):
        raise ValueError(f"activation must be a str or one per layer "
                         f"({len(cells)}), got {len(activation)}.")
    return [check_activation(c, a) for c, a in zip(cells, activation)]


def _check_network(cells, layers, n_in, dtype):
    """Check every layer's parameters against its input width.

    Returns ``(cells, n_directions, inputs, hidden)``: the width of each
    layer's input and each layer's hidden size.
    """
    cells = [check_cell(c) for c in cells]
    if len(cells) == 0:
        raise ValueError("cells must name at least one layer.")
    if not isinstance(layers, (list, tuple)) or len(layers) != len(cells):
        raise ValueError(
            f"layers must be a list of {len(cells)} layers (one per cell), "
            f"got {len(layers) if isinstance(layers, (list, tuple)) else layers!r}.")
    D = len(layers[0]) if isinstance(layers[0], (list, tuple)) else 0
    if D not in (1, 2):
        raise ValueError("layers[0] must be a list of one or two parameter "
                         "dicts (one per direction).")
    inputs, hidden = [], []
    for l, (cell, layer) in enumerate(zip(cells, layers)):
        if not isinstance(layer, (list, tuple)) or len(layer) != D:
            raise ValueError(f"layers[{l}] must be a list of {D} parameter "
                             f"dicts, as layers[0].")
        U = [np.shape(p.get("U")) if isinstance(p, dict) else () for p in layer]
        if any(len(s) != 2 for s in U) or len(set(U)) != 1:
            raise ValueError(f"layers[{l}]: every direction must have a 2-D "
                             f"'U' of the same shape, got {U}.")
        H = U[0][0]
        expected = param_shapes(cell, n_in, H)
        for d, p in enumerate(layer):
            got = {k: np.shape(v) for k, v in p.items()}
            if got != expected:
                raise ValueError(
                    f"layers[{l}][{d}] must hold the {cell} parameters "
                    f"{expected} (input width {n_in}, {H} units), got {got}.")
            for k, v in p.items():
                _check_dtype(f"layers[{l}][{d}][{k!r}]", np.asarray(v), dtype)
        inputs.append(n_in)
        hidden.append(H)
        n_in = D * H
    return cells, D, inputs, hidden


def _check_masks(name, masks, D, N, widths, dtype):
    """Masks as a list over layers of (None or a list over directions)."""
    if masks is None:
        return [None] * len(widths)
    if not isinstance(masks, (list, tuple)) or len(masks) != len(widths):
        raise ValueError(f"{name} must be None or a list of {len(widths)} "
                         f"entries (one per layer).")
    checked = []
    for l, (layer, width) in enumerate(zip(masks, widths)):
        if layer is None:
            checked.append(None)
            continue
        if not isinstance(layer, (list, tuple)) or len(layer) != D:
            raise ValueError(f"{name}[{l}] must be None or a list of {D} "
                             f"masks (one per direction).")
        layer = [np.asarray(m) for m in layer]
        for d, m in enumerate(layer):
            if m.shape != (N, width):
                raise ValueError(f"{name}[{l}][{d}] must have shape "
                                 f"({N}, {width}), got {m.shape}.")
            _check_dtype(f"{name}[{l}][{d}]", m, dtype)
        checked.append(layer)
    return checked


def network_forward(cells, layers, X, lengths, *, embedding=None,
                    activation="tanh", input_masks=None, recurrent_masks=None):
    """Run a stack of recurrent layers, each one or two directions.

    Layer ``l``, direction ``d`` runs :func:`forward` on the layer's input
    times ``input_masks[l][d][:, None, :]``, with the recurrent mask
    ``recurrent_masks[l][d]``; direction 1 runs with ``reverse=True``. A
    layer's output sequence is its directions' ``h_seq`` concatenated along
    the features (direction 0 first) and is the next layer's input.

    Parameters
    ----------
    cells : sequence of {"rnn", "gru", "lstm"}
        Cell of each layer, first layer first.
    layers : list of list of dict
        ``layers[l][d]``: the parameters of direction ``d`` of layer ``l``
        (see :func:`param_shapes`). Every layer has the same number of
        directions, one or two, and both directions the same hidden size.
    X : ndarray of shape (N, T, F), or (N, T) of int with ``embedding``
        Input sequences (float32 or float64), or token ids.
    lengths : array-like of int, shape (N,)
        Valid length of each sequence, ``1 <= lengths[n] <= T``.
    embedding : ndarray of shape (V, F), default=None
        With an embedding, ``X`` holds ids and the first layer's input is
        ``embedding_forward(X, lengths, embedding)``.
    activation : str or sequence of str, default="tanh"
        A str is the nonlinearity of the ``"rnn"`` layers (the other cells
        have fixed ones, as the estimators' ``activation``); a sequence
        gives each layer's.
    input_masks, recurrent_masks : list, default=None
        None, or one entry per layer: None or a list of one mask per
        direction, of shape ``(N, F_l)`` (the layer's input width) for
        ``input_masks`` and ``(N, H_l)`` for ``recurrent_masks``, in the
        computation's dtype. Constant over time.

    Returns
    -------
    A : ndarray of shape (N, D * H_last)
        The last layer's final states, direction 0 first.
    tape : dict
        What :func:`network_backward` reads.
    """
    if embedding is None:
        X = np.asarray(X)
        if X.ndim != 3:
            raise ValueError(f"X must be 3-dimensional (N, T, F) without an "
                             f"embedding, got shape {X.shape}.")
        dtype, n_in = X.dtype, X.shape[2]
    else:
        embedding = np.asarray(embedding)
        if embedding.ndim != 2 or embedding.dtype not in (np.float32, np.float64):
            raise ValueError(f"embedding must be a 2-D float32 or float64 array, "
                             f"got {embedding.dtype} of shape {embedding.shape}.")
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must hold token ids of shape (N, T) with an "
                             f"embedding, got shape {X.shape}.")
        dtype, n_in = embedding.dtype, embedding.shape[1]
    cells, D, widths, hidden = _check_network(cells, layers, n_in, dtype)
    activations = _layer_activations(cells, activation)
    N = X.shape[0]
    in_masks = _check_masks("input_masks", input_masks, D, N, widths, dtype)
    rec_masks = _check_masks("recurrent_masks", recurrent_masks, D, N, hidden,
                             dtype)

    inp = X if embedding is None else embedding_forward(X, lengths, embedding)
    inputs, caches = [], []
    for l, layer in enumerate(layers):
        xs, cs, seqs, lasts = [], [], [], []
        for d, params in enumerate(layer):
            x = inp if in_masks[l] is None else inp * in_masks[l][d][:, None, :]
            h_last, h_seq, cache = forward(
                cells[l], x, lengths, params,
                mask=None if rec_masks[l] is None else rec_masks[l][d],
                reverse=d == 1, activation=activations[l])
            xs.append(x)
            cs.append(cache)
            seqs.append(h_seq)
            lasts.append(h_last)
        inputs.append(xs)
        caches.append(cs)
        inp = np.concatenate(seqs, axis=2)
    tape = {
        "cells": cells, "activations": activations, "lengths": lengths,
        "ids": None if embedding is None else X,
        "embedding_shape": None if embedding is None else embedding.shape,
        "inputs": inputs, "caches": caches,
        "input_masks": in_masks, "recurrent_masks": rec_masks,
    }
    return np.concatenate(lasts, axis=1), tape


def network_backward(cells, layers, tape, dA):
    """Back-propagate through the layers of :func:`network_forward`.

    Parameters
    ----------
    cells : sequence of {"rnn", "gru", "lstm"}
        The cells given to :func:`network_forward`.
    layers : list of list of dict
        The parameters given to :func:`network_forward`.
    tape : dict
        The ``tape`` returned by :func:`network_forward` (it holds the
        inputs, lengths, masks and activations of that call).
    dA : ndarray of shape (N, D * H_last)
        Gradient of the loss with respect to ``A``.

    Returns
    -------
    layer_grads : list of list of dict
        ``layer_grads[l][d]``: the gradient with respect to each parameter
        of ``layers[l][d]``, keyed and shaped alike.
    embedding_grad : ndarray of shape (V, F) or None
        With an embedding, the dense gradient of the embedding matrix (zero
        in the rows the batch does not use; :func:`embedding_backward`
        gives the used rows only); None without one.
    """
    if not isinstance(tape, dict) or "caches" not in tape:
        raise TypeError("tape must be the dict returned by network_forward.")
    if [check_cell(c) for c in cells] != tape["cells"]:
        raise ValueError(f"tape was computed with cells={tape['cells']}; "
                         f"network_backward got cells={list(cells)}.")
    if len(layers) != len(cells) or any(
            len(layer) != len(x) for layer, x in zip(layers, tape["inputs"])):
        raise ValueError("layers must be those given to network_forward.")
    lengths, acts = tape["lengths"], tape["activations"]
    in_masks, rec_masks = tape["input_masks"], tape["recurrent_masks"]
    D = len(layers[-1])
    H = np.shape(layers[-1][0]["U"])[0]
    N, _, _ = tape["inputs"][0][0].shape
    dtype = tape["inputs"][0][0].dtype
    dA = np.asarray(dA)
    if dA.shape != (N, D * H):
        raise ValueError(f"dA must have the shape of A, ({N}, {D * H}); "
                         f"got {dA.shape}.")
    _check_dtype("dA", dA, dtype)

    # The top layer gets dA on its final states; each layer below gets the
    # gradient of its output sequence, split by direction.
    dh_last, dh_seq = np.split(dA, D, axis=1), [None] * D
    layer_grads = [None] * len(layers)
    for l in reversed(range(len(layers))):
        grads, d_inp = [], 0
        for d, params in enumerate(layers[l]):
            g, dX = backward(
                cells[l], tape["inputs"][l][d], lengths, params,
                tape["caches"][l][d], dh_last[d], dh_seq[d],
                mask=None if rec_masks[l] is None else rec_masks[l][d],
                reverse=d == 1, activation=acts[l])
            if in_masks[l] is not None:
                dX = dX * in_masks[l][d][:, None, :]
            grads.append(g)
            d_inp = d_inp + dX
        layer_grads[l] = grads
        if l > 0:
            dh_last, dh_seq = [None] * D, np.split(d_inp, D, axis=2)

    embedding_grad = None
    if tape["ids"] is not None:
        embedding_grad = np.zeros(tape["embedding_shape"], dtype=dtype)
        rows, grad = embedding_backward(tape["ids"], lengths, d_inp,
                                        tape["embedding_shape"][0])
        embedding_grad[rows] = grad
    return layer_grads, embedding_grad


def _head_loss(Z, y, loss, sample_weight):
    """``(loss, dZ)`` of the mean loss ``sum(w * loss_i) / sum(w)``.

    Computed in float64 from ``Z``; ``dZ`` is rounded to ``Z``'s dtype.
    """
    N, M = Z.shape
    w = np.ones(N) if sample_weight is None else sample_weight
    z = Z.astype(np.float64)
    if loss == "softmax_cross_entropy":
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        per_sample = -log_p[np.arange(N), y]
        dz = np.exp(log_p)
        dz[np.arange(N), y] -= 1
    else:
        per_sample = 0.5 * np.mean((z - y) ** 2, axis=1)
        dz = (z - y) / M
    value = float(np.sum(w * per_sample) / np.sum(w))
    dZ = (dz * (w / np.sum(w))[:, None]).astype(Z.dtype)
    return value, dZ


def network_loss_gradient(cells, layers, head, X, lengths, y, *, loss,
                          sample_weight=None, alpha=0.0, embedding=None,
                          activation="tanh", input_masks=None,
                          recurrent_masks=None):
    """Loss of a network with a dense head, and its gradient.

    The head maps the final states ``A`` of :func:`network_forward` to
    ``Z = A @ head["W"] + head["b"]``. With ``w`` the sample weights, the
    loss is the weighted mean ``sum_i w_i l_i / sum_i w_i`` of

    * ``l_i = -log softmax(Z_i)[y_i]`` for ``"softmax_cross_entropy"``;
    * ``l_i = 0.5 * mean_k (y_ik - Z_ik) ** 2`` for ``"squared_error"``,

    plus the L2 penalty ``0.5 * alpha / sum(w) * sum(W ** 2)`` over the
    ``W`` and ``U`` of every layer and direction and the head's ``W``
    (not the biases, nor the embedding).

    Parameters
    ----------
    cells, layers, X, lengths, embedding, activation, input_masks, \
            recurrent_masks
        As :func:`network_forward`.
    head : dict of ndarray
        ``W`` of shape ``(D * H_last, M)`` and ``b`` of shape ``(M,)``, in
        the computation's dtype.
    y : ndarray of shape (N,) or (N, M)
        Class indices in ``[0, M)`` for ``"softmax_cross_entropy"``, target
        values for ``"squared_error"``.
    loss : {"softmax_cross_entropy", "squared_error"}
    sample_weight : array-like of shape (N,), default=None
        Weight of each sequence, with a positive sum; None weighs each
        sequence by one.
    alpha : float, default=0.0
        Strength of the L2 penalty, non-negative.

    Returns
    -------
    loss : float
        The loss, computed in float64 from ``Z`` (``Z`` itself in the
        computation's dtype).
    layer_grads : list of list of dict
        As :func:`network_backward`, penalty included.
    head_grads : dict of ndarray
        Gradients of ``head["W"]`` (penalty included) and ``head["b"]``.
    embedding_grad : ndarray of shape (V, F) or None
        As :func:`network_backward`.
    """
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {list(_LOSSES)}, got {loss!r}.")
    A, tape = network_forward(cells, layers, X, lengths, embedding=embedding,
                              activation=activation, input_masks=input_masks,
                              recurrent_masks=recurrent_masks)
    N, K = A.shape
    if not isinstance(head, dict) or set(head) != {"W", "b"}:
        raise ValueError("head must be a dict with the keys 'W' and 'b'.")
    W, b = np.asarray(head["W"]), np.asarray(head["b"])
    if W.ndim != 2 or W.shape[0] != K or b.shape != W.shape[1:]:
        raise ValueError(f"head['W'] must have shape ({K}, M) and head['b'] "
                         f"shape (M,), got {W.shape} and {b.shape}.")
    _check_dtype("head['W']", W, A.dtype)
    _check_dtype("head['b']", b, A.dtype)
    M = W.shape[1]
    y = np.asarray(y)
    if loss == "softmax_cross_entropy":
        if (y.shape != (N,) or not np.issubdtype(y.dtype, np.integer)
                or y.min() < 0 or y.max() >= M):
            raise ValueError(f"y must hold {N} class indices in [0, {M}) for "
                             f"loss={loss!r}.")
    elif y.shape != (N, M):
        raise ValueError(f"y must have shape ({N}, {M}) for loss={loss!r}, "
                         f"got {y.shape}.")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (N,) or not sample_weight.sum() > 0:
            raise ValueError(f"sample_weight must have shape ({N},) and a "
                             f"positive sum, got shape {sample_weight.shape}.")
    if not (isinstance(alpha, numbers.Real) and alpha >= 0):
        raise ValueError(f"alpha must be a non-negative number, got {alpha!r}.")

    value, dZ = _head_loss(A @ W + b, y, loss, sample_weight)
    head_grads = {"W": A.T @ dZ, "b": dZ.sum(axis=0)}
    layer_grads, embedding_grad = network_backward(cells, layers, tape, dZ @ W.T)

    if alpha > 0:
        scale = alpha / (N if sample_weight is None else sample_weight.sum())
        pairs = [(head, head_grads, "W")] + [
            (p, g, name) for layer, grads in zip(layers, layer_grads)
            for p, g in zip(layer, grads) for name in ("W", "U")]
        for p, g, name in pairs:
            w = np.asarray(p[name])
            value += 0.5 * scale * float(np.sum(w.astype(np.float64) ** 2))
            g[name] += (scale * w).astype(w.dtype)
    return value, layer_grads, head_grads, embedding_grad
