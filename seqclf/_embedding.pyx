"""Embedding lookup for batches of token ids, and its gradient.

The typed kernels only; seqclf._layers checks their arguments and sorts
the positions for the backward pass.

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
from ._openmp cimport region_threads


cdef Py_ssize_t lookup(int n_threads, Py_ssize_t N, Py_ssize_t T,
                       const Py_ssize_t* ids, const Py_ssize_t* lengths,
                       Py_ssize_t V, Py_ssize_t D, const floating* E,
                       floating* out) noexcept nogil:
    """:func:`forward` on pointers (ids and out of N x T steps)."""
    cdef Py_ssize_t n, t, k
    cdef Py_ssize_t n_bad = 0
    for n in prange(N, num_threads=region_threads(n_threads, N, N * T * D),
                    schedule="static"):
        for t in range(T):
            k = ids[n * T + t]
            if t >= lengths[n]:
                memset(out + (n * T + t) * D, 0, D * sizeof(floating))
            elif k < 0 or k >= V:
                n_bad += 1
            else:
                memcpy(out + (n * T + t) * D, E + k * D, D * sizeof(floating))
    return n_bad


cdef void row_sums(int n_threads, Py_ssize_t K, Py_ssize_t D,
                   const Py_ssize_t* positions, const Py_ssize_t* bounds,
                   const floating* dX, floating* grad) noexcept nogil:
    """:func:`backward` on pointers (dX rows of D entries, grad K x D)."""
    cdef Py_ssize_t k, j, d
    cdef floating* g
    cdef const floating* src
    cdef unsigned long long fp
    # One block of rows per thread, so that the flush-to-zero modes of the
    # recurrent kernels (_fpenv.h) are set once per thread, not per row.
    cdef int n_blocks = region_threads(n_threads, K,
                                       (bounds[K] - bounds[0]) * D)
    cdef Py_ssize_t blk
    for blk in prange(n_blocks, num_threads=n_blocks, schedule="static"):
        fp = fpenv_enter()
        for k in range(blk * K // n_blocks, (blk + 1) * K // n_blocks):
            g = grad + k * D
            memcpy(g, dX + positions[bounds[k]] * D, D * sizeof(floating))
            for j in range(bounds[k] + 1, bounds[k + 1]):
                src = dX + positions[j] * D
                for d in range(D):
                    g[d] = g[d] + src[d]
        fpenv_leave(fp)


def forward(int n_threads, const Py_ssize_t[:, ::1] ids,
            const Py_ssize_t[::1] lengths, const floating[:, ::1] E,
            floating[:, :, ::1] out):
    """Write the lookups; return the number of ids outside ``[0, V)``.

    Unchecked: seqclf._layers.embedding_forward checks the arguments.
    """
    cdef Py_ssize_t n_bad = 0
    if ids.shape[0] == 0 or ids.shape[1] == 0 or E.shape[1] == 0:
        return 0
    with nogil:
        n_bad = lookup(n_threads, ids.shape[0], ids.shape[1], &ids[0, 0],
                       &lengths[0], E.shape[0], E.shape[1], &E[0, 0],
                       &out[0, 0, 0])
    return n_bad


def backward(int n_threads, const Py_ssize_t[::1] positions,
             const Py_ssize_t[::1] bounds, const floating[:, ::1] dX,
             floating[:, ::1] grad):
    """``grad[k] = sum of dX[positions[j]]`` for ``bounds[k] <= j < bounds[k+1]``.

    Unchecked: seqclf._layers.embedding_backward sorts the positions by id
    and checks the arguments.
    """
    if grad.shape[0] == 0 or grad.shape[1] == 0:
        return
    with nogil:
        row_sums(n_threads, grad.shape[0], grad.shape[1], &positions[0],
                 &bounds[0], &dX[0, 0], &grad[0, 0])
