"""The compiled layers with the calling convention of :mod:`seqclf.reference`.

``forward`` and ``backward`` run one recurrent layer through the Cython
kernels (:mod:`seqclf._kernels`) and take the same arguments as
:func:`seqclf.reference.forward` and :func:`seqclf.reference.backward`: a
cell name, ``X (N, T, F)``, ``lengths (N,)``, a dict of parameters keyed as
:func:`seqclf._cells.param_shapes`, and the cache dict the forward pass
returned. ``embedding_forward`` and ``embedding_backward`` do the same for
the embedding kernels (:mod:`seqclf._embedding`). The network, the tests and
the benchmarks call these functions; nothing else calls the kernels.

This module does what the nogil kernels cannot do safely: it checks every
argument (type, dtype, shape, contiguity, writeability, aliasing between
outputs and inputs) and raises ``TypeError`` or ``ValueError`` naming the
argument, and it allocates the outputs it is not given. The ``out`` dicts
let a caller that runs batch after batch (the network) reuse its buffers.

The kernels call BLAS from their own threads: the caller limits BLAS to one
thread around the calls (``seqclf._openmp_helpers.single_threaded_blas``).
"""

import functools
import numbers

import numpy as np

from . import _embedding, _kernels
from ._cells import CELLS, cache_shapes, check_activation, check_cell, param_shapes

__all__ = ["forward", "backward", "embedding_forward", "embedding_backward"]

# ``forward_unchecked`` and ``backward_unchecked`` are the network's path: it
# allocates every array of its calls itself, batch after batch, and checks
# the batch once (seqclf._network); they skip the per-array checks.

# The shapes of a call, computed once per size (callers only read them): a
# network calls the layers with the same sizes batch after batch.
_param_shapes = functools.lru_cache(maxsize=256)(param_shapes)
_cache_shapes = functools.lru_cache(maxsize=256)(cache_shapes)


def _kernel_code(cell, activation):
    try:
        return _kernels.CELL_CODES[(cell, activation)]
    except (KeyError, TypeError):
        # Not a known pair: say which argument is wrong.
        check_activation(check_cell(cell), activation)
        raise


# The largest thread count OpenMP takes (a C int); a larger one is an upper
# bound that no parallel region reaches anyway.
_MAX_THREADS = 2**31 - 1


def _check_n_threads(n_threads):
    if type(n_threads) is int and 1 <= n_threads <= _MAX_THREADS:   # fast
        return n_threads
    if (isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
            or n_threads < 1):
        raise ValueError(f"n_threads must be an int >= 1, got {n_threads!r}.")
    return min(int(n_threads), _MAX_THREADS)


def _check_lengths(lengths, N, T):
    if not isinstance(lengths, np.ndarray):
        raise TypeError(
            f"lengths must be a numpy.ndarray, got {type(lengths).__name__}."
        )
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths must have an integer dtype, got {lengths.dtype}.")
    if lengths.shape != (N,):
        raise ValueError(f"lengths must have shape ({N},), got {lengths.shape}.")
    if N and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(
            f"lengths must lie in [1, n_steps={T}], got values in "
            f"[{lengths.min()}, {lengths.max()}]."
        )
    return np.ascontiguousarray(lengths, dtype=np.intp)


class _Checker:
    """Checks the arrays of one call and remembers them for aliasing tests.

    Every array must be a C-contiguous ``numpy.ndarray`` of X's dtype and
    of the shape the call implies; an output must also be writeable and
    share no memory with any other array of the call. The inputs are all
    checked before the first output, so that each output is compared with
    every input and every earlier output once.
    """

    def __init__(self, cell, X, lengths, params, n_threads, biases_read=True):
        if not isinstance(X, np.ndarray):
            raise TypeError(f"X must be a numpy.ndarray, got {type(X).__name__}.")
        if X.dtype != np.float32 and X.dtype != np.float64:
            raise TypeError(f"X must have dtype float32 or float64, got {X.dtype}.")
        if X.ndim != 3:
            raise ValueError(
                "X must be 3-D (n_samples, n_steps, n_features), "
                f"got shape {X.shape}."
            )
        if not X.flags.c_contiguous:
            raise ValueError("X must be C-contiguous.")
        self.N, self.T, self.F = X.shape
        if self.T == 0 or self.F == 0:
            raise ValueError(
                f"X must have n_steps >= 1 and n_features >= 1, got shape {X.shape}."
            )
        self.dtype = X.dtype
        self.inputs = [("X", X)]
        self.outputs = []
        self.lengths = _check_lengths(lengths, self.N, self.T)
        self.inputs.append(("lengths", lengths))

        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict, got {type(params).__name__}.")
        U = params.get("U")
        if not isinstance(U, np.ndarray) or U.ndim != 2:
            raise ValueError(
                f"U must be a 2-D numpy.ndarray (n_hidden, n_gates * n_hidden), "
                f"got {getattr(U, 'shape', type(U).__name__)}."
            )
        self.H = U.shape[0]
        if self.H == 0:
            raise ValueError("U must have n_hidden >= 1 rows.")
        self.G = CELLS[cell].n_gates * self.H
        self.param_shapes = _param_shapes(cell, self.F, self.H)
        if not params.keys() <= self.param_shapes.keys():
            unknown = sorted(map(str, params.keys() - self.param_shapes.keys()))
            raise ValueError(
                f"params for cell={cell!r} must have exactly the keys "
                f"{list(self.param_shapes)}, got unknown {unknown}."
            )
        # U first: its rows define n_hidden, so a wrong W is reported as W.
        self.array("U", U, self.param_shapes["U"])
        for name, shape in self.param_shapes.items():
            if name != "U":
                # The backward pass does not read the biases: checked, but
                # not among the inputs an output must not overlap.
                self.array(name, params.get(name), shape,
                           register=biases_read or name == "W")
        self.n_threads = _check_n_threads(n_threads)

    def array(self, name, a, shape, out=False, optional=False, register=True):
        if a is None:
            if optional:
                return None
            raise TypeError(f"{name} must be a numpy.ndarray, got None.")
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}.")
        if a.dtype != self.dtype:
            raise TypeError(
                f"{name} must have dtype {self.dtype} like X, got {a.dtype}.")
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}.")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous.")
        if out:
            if not a.flags.writeable:
                raise ValueError(f"{name} must be writeable.")
            for other_name, other in self.inputs + self.outputs:
                if np.may_share_memory(a, other):
                    raise ValueError(
                        f"{name} must not share memory with {other_name}."
                    )
            self.outputs.append((name, a))
        elif register:
            self.inputs.append((name, a))
        return a

    def output(self, name, out, shape, optional=False):
        """The caller's output array ``out[name]`` checked, or a new one."""
        a = out.get(name)
        if a is None:
            if optional:
                return None
            a = np.empty(shape, dtype=self.dtype)
        return self.array(name, a, shape, out=True)


def _check_out(out, allowed):
    if out is None:
        return {}
    if not isinstance(out, dict):
        raise TypeError(f"out must be a dict or None, got {type(out).__name__}.")
    if not out.keys() <= allowed:
        unknown = sorted(map(str, out.keys() - allowed))
        raise ValueError(f"out has unknown keys {unknown}; allowed: {sorted(allowed)}.")
    return out


def forward(cell, X, lengths, params, *, mask=None, reverse=False,
            activation="tanh", training=True, return_sequences=True, out=None,
            n_threads=1):
    """Run one recurrent layer over a batch of padded sequences.

    Parameters
    ----------
    cell, X, lengths, params, mask, reverse, activation
        As for :func:`seqclf.reference.forward`; every array is a
        C-contiguous ``numpy.ndarray`` of X's dtype (float32 or float64),
        ``lengths`` of any integer dtype.
    training : bool, default=True
        Keep the cache the backward pass needs. With False no cache is
        kept (less memory and time) and recurrent dropout is refused.
    return_sequences : bool, default=True
        Return ``h_seq``; only inference (``training=False``) may skip it.
    out : dict of ndarray, default=None
        Arrays to write into instead of allocating them: ``"h_last"``,
        ``"h_seq"`` and, in training, the cache arrays of
        :func:`seqclf._cells.cache_shapes`. Every given array is checked
        (shape, dtype, C-contiguous, writeable, no shared memory).
    n_threads : int, default=1
        OpenMP threads.

    Returns
    -------
    h_last : ndarray of shape (n_samples, n_hidden)
    h_seq : ndarray of shape (n_samples, n_steps, n_hidden) or None
        None for inference with ``return_sequences=False``.
    cache : dict of ndarray or None
        The arrays :func:`backward` reads (None for inference).
    """
    code = _kernel_code(cell, activation)
    chk = _Checker(cell, X, lengths, params, n_threads)
    N, T, H = chk.N, chk.T, chk.H
    training = bool(training)
    if training:
        if not return_sequences:
            raise ValueError("return_sequences=False applies to inference only.")
        shapes = _cache_shapes(cell, N, T, H)
        names = shapes.keys() | {"h_last"}
    else:
        names = {"h_last", "h_seq"} if return_sequences else {"h_last"}
    out = _check_out(out, names)
    if training:
        chk.array("mask", mask, (N, H), optional=True)
    elif mask is not None:
        raise ValueError("mask (recurrent dropout) applies to training only.")
    h_last = chk.output("h_last", out, (N, H))
    cache = None
    if training:
        cache = {k: chk.output(k, out, s) for k, s in shapes.items()}
        h_seq = cache["h_seq"]
    else:
        h_seq = chk.output("h_seq", out, (N, T, H), optional=not return_sequences)
    if N:
        c = cache or {}
        _kernels.forward(code, bool(reverse), chk.n_threads, X, chk.lengths,
                         params["W"], params["U"], _bias(cell, params),
                         params.get("b_hh"), mask, h_last, h_seq,
                         c.get("h_prev"), c.get("gates"), _aux(cell, c))
    return h_last, h_seq, cache


def backward(cell, X, lengths, params, cache, dh_last=None, dh_seq=None, *,
             mask=None, reverse=False, activation="tanh", compute_dX=True,
             out=None, n_threads=1):
    """Back-propagate through one recurrent layer.

    Parameters
    ----------
    cell, X, lengths, params, cache, dh_last, dh_seq, mask, reverse, activation
        As for :func:`seqclf.reference.backward`, ``cache`` being the one
        :func:`forward` returned (or arrays of the same names and shapes).
        At least one of ``dh_last`` and ``dh_seq`` must be given.
    compute_dX : bool, default=True
        Compute the gradient w.r.t. ``X``; False skips that product.
    out : dict of ndarray, default=None
        Arrays to write into instead of allocating them: ``"d" + name``
        for each parameter (``"dW"``, ``"dU"``, ``"db"`` ...) and ``"dX"``.
    n_threads : int, default=1

    Returns
    -------
    grads : dict of ndarray
        Gradient w.r.t. each parameter, keyed like ``params``.
    dX : ndarray of shape (n_samples, n_steps, n_features) or None
        None when ``compute_dX`` is False.
    """
    code = _kernel_code(cell, activation)
    chk = _Checker(cell, X, lengths, params, n_threads, biases_read=False)
    N, T, F, H = chk.N, chk.T, chk.F, chk.H
    if not isinstance(cache, dict):
        raise TypeError(f"cache must be a dict, got {type(cache).__name__}.")
    out = _check_out(out, _backward_outputs(cell))
    if not compute_dX and out.get("dX") is not None:
        raise ValueError("out['dX'] is given but compute_dX is False.")
    chk.array("mask", mask, (N, H), optional=True)
    for k, s in _cache_shapes(cell, N, T, H).items():
        chk.array(k, cache.get(k), s)
    if dh_last is None and dh_seq is None:
        raise ValueError("At least one of dh_last and dh_seq must be given.")
    chk.array("dh_last", dh_last, (N, H), optional=True)
    chk.array("dh_seq", dh_seq, (N, T, H), optional=True)
    grads = {k: chk.output("d" + k, out, s) for k, s in chk.param_shapes.items()}
    dX = chk.output("dX", out, (N, T, F), optional=not compute_dX)
    if N == 0:
        for g in grads.values():
            g[...] = 0
    else:
        _kernels.backward(code, bool(reverse), chk.n_threads, X, chk.lengths,
                          params["W"], params["U"], mask, cache["h_seq"],
                          cache["h_prev"], cache.get("gates"), _aux(cell, cache),
                          dh_last, dh_seq, grads["W"], grads["U"],
                          _bias(cell, grads), grads.get("b_hh"), dX)
    return grads, dX


def forward_unchecked(code, cell, reverse, n_threads, X, lengths, params,
                      mask, h_last, cache):
    """:func:`forward` in training without any check of its arguments.

    ``code`` is the kernel code of ``(cell, activation)``, ``lengths`` intp
    within ``[1, T]``, ``cache`` the dict of :func:`seqclf._cells.cache_shapes`
    to write; every array C-contiguous of X's dtype and of its shape, the
    outputs writeable and sharing no memory with any other array. A wrong
    argument here is memory corruption, not an exception: callers own every
    array they pass.
    """
    _kernels.forward(code, reverse, n_threads, X, lengths, params["W"],
                     params["U"], _bias(cell, params), params.get("b_hh"), mask,
                     h_last, cache["h_seq"], cache["h_prev"], cache.get("gates"),
                     _aux(cell, cache))


def backward_unchecked(code, cell, reverse, n_threads, X, lengths, params,
                       cache, dh_last, dh_seq, mask, grads, dX):
    """:func:`backward` without any check, as :func:`forward_unchecked`.

    ``grads`` holds the gradient arrays keyed like ``params`` (written);
    ``dX`` None skips the input gradient.
    """
    _kernels.backward(code, reverse, n_threads, X, lengths, params["W"],
                      params["U"], mask, cache["h_seq"], cache["h_prev"],
                      cache.get("gates"), _aux(cell, cache), dh_last, dh_seq,
                      grads["W"], grads["U"], _bias(cell, grads),
                      grads.get("b_hh"), dX)


@functools.lru_cache(maxsize=None)
def _backward_outputs(cell):
    return frozenset(["d" + k for k in param_shapes(cell, 1, 1)] + ["dX"])


def _bias(cell, arrays):
    # The kernels take the (input) bias first and the GRU's b_hh beside it.
    return arrays[CELLS[cell].biases[0]]


def _aux(cell, cache):
    # The kernels take the gates and one more per-step cache (GRU hn, LSTM
    # c_seq) beside h_seq and h_prev.
    names = CELLS[cell].caches
    return cache.get(names[1]) if len(names) > 1 else None


# ---------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------

def _check_ids(ids, lengths, n_threads):
    if not isinstance(ids, np.ndarray) or ids.dtype != np.intp:
        raise TypeError(
            f"ids must be a numpy.ndarray of dtype intp, got "
            f"{getattr(ids, 'dtype', type(ids).__name__)}."
        )
    if ids.ndim != 2 or ids.shape[1] == 0 or not ids.flags.c_contiguous:
        raise ValueError(
            f"ids must be a C-contiguous 2-D array (n_samples, n_steps) with "
            f"n_steps >= 1, got shape {ids.shape}."
        )
    lengths = _check_lengths(lengths, *ids.shape)
    return lengths, _check_n_threads(n_threads)


def _check_float(name, a, ndim, dtype=None):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 numpy.ndarray.")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {a.dtype}.")
    if a.ndim != ndim or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous {ndim}-D array, got "
                         f"shape {a.shape}.")


def _valid_ids(ids, lengths):
    """Flat positions of the data steps and their ids."""
    N, T = ids.shape
    positions = np.flatnonzero(np.arange(T)[None, :] < lengths[:, None])
    return positions, ids.ravel()[positions]


def _raise_out_of_range(ids, lengths, V):
    positions, keys = _valid_ids(ids, lengths)
    j = np.flatnonzero((keys < 0) | (keys >= V))[0]
    n, t = divmod(int(positions[j]), ids.shape[1])
    raise ValueError(
        f"Token id {keys[j]} (sample {n}, step {t}) is outside [0, {V}): the "
        f"embedding has {V} rows."
    )


def embedding_forward(ids, lengths, E, *, out=None, n_threads=1):
    """Look up the embedding of every token of a batch.

    Parameters
    ----------
    ids : ndarray of shape (n_samples, n_steps), intp
        Token ids; positions at or past ``lengths[n]`` are not read.
    lengths : ndarray of shape (n_samples,), integer
        Valid steps per sequence, ``1 <= lengths[n] <= n_steps``.
    E : ndarray of shape (n_rows, embedding_dim)
        float32 or float64, C-contiguous.
    out : ndarray of shape (n_samples, n_steps, embedding_dim), default=None
        Written instead of a new array.
    n_threads : int, default=1

    Returns
    -------
    out : ndarray of shape (n_samples, n_steps, embedding_dim)
        ``out[n, t] = E[ids[n, t]]``, zero at padding positions.

    Raises
    ------
    ValueError
        If a valid position holds an id outside ``[0, n_rows)``, naming the
        first such id, its sample and step.
    """
    lengths, n_threads = _check_ids(ids, lengths, n_threads)
    _check_float("E", E, 2)
    N, T = ids.shape
    if E.shape[0] == 0 or E.shape[1] == 0:
        raise ValueError(
            f"E must have at least one row and column, got shape {E.shape}.")
    if out is None:
        out = np.empty((N, T, E.shape[1]), dtype=E.dtype)
    _check_float("out", out, 3, E.dtype)
    if out.shape != (N, T, E.shape[1]):
        raise ValueError(f"out must have shape {(N, T, E.shape[1])}, got {out.shape}.")
    if not out.flags.writeable:
        raise ValueError("out must be writeable.")
    if np.may_share_memory(out, E):
        raise ValueError("out must not share memory with E.")
    if N and _embedding.forward(n_threads, ids, lengths, E, out):
        _raise_out_of_range(ids, lengths, E.shape[0])
    return out


def embedding_backward(ids, lengths, dX, n_rows, *, n_threads=1):
    """Gradient of the embedding matrix, as the rows a batch touches.

    Parameters
    ----------
    ids : ndarray of shape (n_samples, n_steps), intp
        Token ids of the batch, as for :func:`embedding_forward`.
    lengths : ndarray of shape (n_samples,), integer
    dX : ndarray of shape (n_samples, n_steps, embedding_dim)
        Gradient of the loss w.r.t. the looked-up vectors; padding
        positions are not read.
    n_rows : int
        Rows of the embedding matrix; ids must lie in ``[0, n_rows)``.
    n_threads : int, default=1

    Returns
    -------
    rows : ndarray of shape (n_distinct,), intp
        The distinct ids of the batch, increasing.
    grad : ndarray of shape (n_distinct, embedding_dim)
        ``grad[k]``, the gradient of row ``rows[k]``: the sum of ``dX`` at
        every position holding that id, in position order. Rows not listed
        have a zero gradient. Its memory grows with the batch's distinct
        tokens, not with ``n_rows``.
    """
    lengths, n_threads = _check_ids(ids, lengths, n_threads)
    _check_float("dX", dX, 3)
    N, T = ids.shape
    if dX.shape[:2] != (N, T):
        raise ValueError(f"dX must have shape ({N}, {T}, embedding_dim), got "
                         f"{dX.shape}.")
    D = dX.shape[2]
    positions, keys = _valid_ids(ids, lengths)
    if keys.size and (keys.min() < 0 or keys.max() >= n_rows):
        _raise_out_of_range(ids, lengths, n_rows)
    # Positions sorted by id (stably, so each row sums in position order).
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    positions = positions[order]
    starts = np.flatnonzero(np.diff(keys, prepend=-1))
    rows = keys[starts]
    bounds = np.append(starts, keys.size).astype(np.intp)
    grad = np.empty((rows.size, D), dtype=dX.dtype)
    if rows.size and D:
        _embedding.backward(n_threads, positions, bounds, dX.reshape(N * T, D), grad)
    return rows, grad
