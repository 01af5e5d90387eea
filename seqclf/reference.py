r"""Plain NumPy reference implementation of the recurrent layers.

This module is slow but short and written to be checked by eye. It defines
the exact semantics the compiled kernels implement and serves as their test
oracle. It only depends on NumPy.

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
"""

import numbers

import numpy as np

from ._cells import N_GATES, check_activation, check_cell, n_params, param_shapes

# n_params and param_shapes live in the cell registry, which every module
# reads; this is their public home.
__all__ = ["forward", "backward", "embedding_forward", "embedding_backward",
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
