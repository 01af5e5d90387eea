"""Embedding lookup for batches of token ids, and its gradient.

A batch of token sequences is ``ids (N, T)`` (intp, C-contiguous) with
``lengths (N,)``: positions at or past ``lengths[n]`` are padding, never
read. The embedding matrix ``E (V, D)`` maps id ``k`` to row ``E[k]``.

Forward writes ``out[n, t] = E[ids[n, t]]`` (zeros at padding positions),
one sequence per loop iteration under ``prange``.

Backward returns the gradient of ``E`` as the rows it touches and their
sums, ``(rows (K,), grad (K, D))`` with ``rows`` sorted and unique, so that
its memory grows with the batch's distinct tokens, not with ``V`` (no
one-hot matrix, no ``(V, D)`` array, no per-thread copy). The positions of
the batch's tokens are sorted by id with a stable sort; each distinct id's
row is then the sum of its positions' ``dX`` rows in position order, summed
by one thread. No sum is split across threads, so the result is
bit-identical for any thread count.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

from ._fpenv cimport fpenv_enter, fpenv_leave

import numbers

import numpy as np


def _forward(int n_threads, const Py_ssize_t[:, ::1] ids,
             const Py_ssize_t[::1] lengths, const floating[:, ::1] E,
             floating[:, :, ::1] out):
    """Write the lookups; return the number of ids outside ``[0, V)``."""
    cdef Py_ssize_t N = ids.shape[0], T = ids.shape[1]
    cdef Py_ssize_t V = E.shape[0], D = E.shape[1]
    cdef Py_ssize_t n, t, k
    cdef Py_ssize_t n_bad = 0
    with nogil:
        for n in prange(N, num_threads=n_threads, schedule="static"):
            for t in range(T):
                k = ids[n, t]
                if t >= lengths[n]:
                    memset(&out[n, t, 0], 0, D * sizeof(floating))
                elif k < 0 or k >= V:
                    n_bad += 1
                else:
                    memcpy(&out[n, t, 0], &E[k, 0], D * sizeof(floating))
    return n_bad


def _backward(int n_threads, const Py_ssize_t[::1] positions,
              const Py_ssize_t[::1] bounds, const floating[:, ::1] dX,
              floating[:, ::1] grad):
    """``grad[k] = sum of dX[positions[j]]`` for ``bounds[k] <= j < bounds[k+1]``."""
    cdef Py_ssize_t K = grad.shape[0], D = grad.shape[1]
    cdef Py_ssize_t k, j, d
    cdef floating* g
    cdef const floating* src
    cdef unsigned long long fp
    # One block of rows per thread, so that the flush-to-zero modes of the
    # recurrent kernels (_fpenv.h) are set once per thread, not per row.
    cdef Py_ssize_t n_blocks = min(<Py_ssize_t> n_threads, K)
    cdef Py_ssize_t blk
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule="static"):
            fp = fpenv_enter()
            for k in range(blk * K // n_blocks, (blk + 1) * K // n_blocks):
                g = &grad[k, 0]
                memcpy(g, &dX[positions[bounds[k]], 0], D * sizeof(floating))
                for j in range(bounds[k] + 1, bounds[k + 1]):
                    src = &dX[positions[j], 0]
                    for d in range(D):
                        g[d] = g[d] + src[d]
            fpenv_leave(fp)


# ---------------------------------------------------------------------------
# Validation and public entry points
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
    N, T = ids.shape
    if not isinstance(lengths, np.ndarray) or lengths.dtype.kind not in "iu":
        raise TypeError("lengths must be a numpy.ndarray of integers.")
    if lengths.shape != (N,):
        raise ValueError(f"lengths must have shape ({N},), got {lengths.shape}.")
    if N and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(
            f"lengths must lie in [1, n_steps={T}], got values in "
            f"[{lengths.min()}, {lengths.max()}]."
        )
    if (isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
            or n_threads < 1):
        raise ValueError(f"n_threads must be an int >= 1, got {n_threads!r}.")
    return np.ascontiguousarray(lengths, dtype=np.intp)


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


def embedding_forward(ids, lengths, E, out, *, n_threads=1):
    """Look up the embedding of every token of a batch.

    Parameters
    ----------
    ids : ndarray of shape (n_samples, n_steps), intp
        IN. Token ids; positions at or past ``lengths[n]`` are not read.
    lengths : ndarray of shape (n_samples,), integer
        IN. Valid steps per sequence, ``1 <= lengths[n] <= n_steps``.
    E : ndarray of shape (n_rows, embedding_dim)
        IN. float32 or float64, C-contiguous.
    out : ndarray of shape (n_samples, n_steps, embedding_dim)
        OUT. ``out[n, t] = E[ids[n, t]]``, zero at padding positions.
    n_threads : int, default=1

    Raises
    ------
    ValueError
        If a valid position holds an id outside ``[0, n_rows)``, naming the
        first such id, its sample and step.
    """
    lengths = _check_ids(ids, lengths, n_threads)
    _check_float("E", E, 2)
    _check_float("out", out, 3, E.dtype)
    N, T = ids.shape
    if E.shape[0] == 0 or E.shape[1] == 0:
        raise ValueError(f"E must have at least one row and column, got shape {E.shape}.")
    if out.shape != (N, T, E.shape[1]):
        raise ValueError(f"out must have shape {(N, T, E.shape[1])}, got {out.shape}.")
    if np.may_share_memory(out, E):
        raise ValueError("out must not share memory with E.")
    if N == 0:
        return
    if _forward(int(n_threads), ids, lengths, E, out):
        _raise_out_of_range(ids, lengths, E.shape[0])


def embedding_backward(ids, lengths, dX, n_rows, *, n_threads=1):
    """Gradient of the embedding matrix, as the rows a batch touches.

    Parameters
    ----------
    ids : ndarray of shape (n_samples, n_steps), intp
        IN. Token ids of the batch, as for :func:`embedding_forward`.
    lengths : ndarray of shape (n_samples,), integer
        IN.
    dX : ndarray of shape (n_samples, n_steps, embedding_dim)
        IN. Gradient of the loss w.r.t. the looked-up vectors; padding
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
        have a zero gradient.
    """
    lengths = _check_ids(ids, lengths, n_threads)
    _check_float("dX", dX, 3)
    N, T = ids.shape
    if dX.shape[:2] != (N, T):
        raise ValueError(f"dX must have shape ({N}, {T}, embedding_dim), got "
                         f"{dX.shape}.")
    D = dX.shape[2]
    positions, keys = _valid_ids(ids, lengths)
    if keys.size and (keys.min() < 0 or keys.max() >= n_rows):
        _raise_out_of_range(ids, lengths, n_rows)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    positions = positions[order]
    starts = np.flatnonzero(np.diff(keys, prepend=-1))
    rows = keys[starts]
    bounds = np.append(starts, keys.size).astype(np.intp)
    grad = np.empty((rows.size, D), dtype=dX.dtype)
    if rows.size and D:
        _backward(int(n_threads), positions, bounds, dX.reshape(N * T, D), grad)
    return rows, grad
