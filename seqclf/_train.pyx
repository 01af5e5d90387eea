"""The compiled training loop and its parts.

:class:`Trainer` runs groups of mini-batches of one fit, each batch in
compiled code from gathering its rows to the optimizer's update, with no
Python between the pieces (see its docstring). Its parts are also one nogil
call each from Python, which the network's per-batch path (a head or loss
of the user's, and the reference the loop is tested against) uses instead
of a dozen NumPy operations: gathering the batch's
rows into a reused buffer, the dense head with its loss and their
gradients, the L2 penalty, the gradient's norm and its clipping, the
finiteness checks and the optimizers' updates. The callers
(seqclf._network, seqclf._optim, seqclf._rnn) check the arguments; nothing
here knows of scikit-learn.

Reproducibility. Reductions (the norm, the penalty) are summed in float64
per fixed block of ``BLOCK`` elements, and the blocks' sums in block order,
so that the result does not depend on the number of threads. The elementwise
updates perform exactly the float operations of the NumPy expressions they
replace, in the same order and precision (seqclf/_update.h; this module is
built without floating-point contraction), and run under the caller's
floating-point environment (no flush-to-zero, unlike the recurrent kernels).
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, isfinite, log, pow, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from ._blas cimport gemm
from ._embedding cimport lookup, row_sums
from ._kernels cimport backward_pass, forward_pass
from ._openmp cimport region_threads

import numpy as np

from . import _kernels, _simd

cdef extern from "_update.h" nogil:
    void seqclf_adam_f(Py_ssize_t n, float* p, const float* g, float* m,
                       float* v, float b1, float c1, float b2, float c2,
                       float eps, float neg_lr)
    void seqclf_adam_d(Py_ssize_t n, double* p, const double* g, double* m,
                       double* v, double b1, double c1, double b2, double c2,
                       double eps, double neg_lr)
    void seqclf_sgd_f(Py_ssize_t n, float* p, const float* g, float* vel,
                      float neg_lr, float mu, int nesterov)
    void seqclf_sgd_d(Py_ssize_t n, double* p, const double* g, double* vel,
                      double neg_lr, double mu, int nesterov)
    void seqclf_update_select(int level)

# The updates' instruction-set level: the kernels' (SEQCLF_SIMD included).
seqclf_update_select(_simd.LEVELS.index(_kernels.simd_level()))

ctypedef fused gathered:
    float
    double
    Py_ssize_t

cdef enum:
    BLOCK = 8192        # elements per reduction block (fixed: see above)


def gather(int n_threads, const gathered[:, :, ::1] X,
           const Py_ssize_t[::1] rows, gathered[:, :, ::1] out):
    """``out[i] = X[rows[i], :T]`` with ``T = out.shape[1] <= X.shape[1]``."""
    cdef Py_ssize_t n = rows.shape[0], T = out.shape[1], F = out.shape[2]
    cdef Py_ssize_t i
    if n == 0 or T == 0 or F == 0:
        return
    with nogil:
        for i in prange(n, num_threads=region_threads(n_threads, n, n * T * F),
                        schedule="static"):
            memcpy(&out[i, 0, 0], &X[rows[i], 0, 0],
                   <size_t> (T * F) * sizeof(gathered))


# ---------------------------------------------------------------------------
# Dense head and loss
# ---------------------------------------------------------------------------

cdef void _head_forward(Py_ssize_t N, Py_ssize_t K, Py_ssize_t M,
                        const floating* A, const floating* W,
                        const floating* b, floating* Z) noexcept nogil:
    # Z (N, M) = A (N, K) @ W (K, M) + b
    cdef Py_ssize_t i, j
    gemm(False, False, N, M, K, 1, A, K, W, M, 0, Z, M)
    for i in range(N):
        for j in range(M):
            Z[i * M + j] = Z[i * M + j] + b[j]


cdef void _head_backward(Py_ssize_t N, Py_ssize_t K, Py_ssize_t M,
                         const floating* A, const floating* W,
                         const floating* dZ, floating* dW, floating* db,
                         floating* dA) noexcept nogil:
    cdef Py_ssize_t i, j
    gemm(True, False, K, M, N, 1, A, K, dZ, M, 0, dW, M)      # A^T dZ
    for j in range(M):
        db[j] = 0
    for i in range(N):
        for j in range(M):
            db[j] = db[j] + dZ[i * M + j]
    gemm(False, True, N, K, M, 1, dZ, M, W, M, 0, dA, K)      # dZ W^T


cdef double _softmax_xent(
    Py_ssize_t N, Py_ssize_t K, Py_ssize_t M, const floating* A,
    const floating* W, const floating* b, const Py_ssize_t* y,
    const double* sample_weight, double weight_sum, floating* Z,
    floating* dW, floating* db, floating* dA,
) noexcept nogil:
    """:func:`head_softmax_xent` on pointers (sample_weight may be NULL)."""
    cdef Py_ssize_t i, j
    cdef double zmax, s, log_norm, w, total = 0
    cdef floating* zr
    _head_forward(N, K, M, A, W, b, Z)
    for i in range(N):
        zr = Z + i * M
        zmax = zr[0]
        for j in range(1, M):
            if zr[j] > zmax or zr[j] != zr[j]:
                zmax = zr[j]
        s = 0
        for j in range(M):
            s += exp(zr[j] - zmax)
        log_norm = zmax + log(s)
        w = 1.0 if sample_weight == NULL else sample_weight[i]
        total -= w * (zr[y[i]] - log_norm)
        w = w / weight_sum
        for j in range(M):
            zr[j] = <floating> (w * exp(zr[j] - log_norm))
        zr[y[i]] = <floating> (zr[y[i]] - w)
    _head_backward(N, K, M, A, W, Z, dW, db, dA)
    return total / weight_sum


cdef double _squared_error(
    Py_ssize_t N, Py_ssize_t K, Py_ssize_t M, const floating* A,
    const floating* W, const floating* b, const floating* Y,
    const double* sample_weight, double weight_sum, floating* Z,
    floating* dW, floating* db, floating* dA,
) noexcept nogil:
    """:func:`head_squared_error` on pointers (sample_weight may be NULL)."""
    cdef Py_ssize_t i, j
    cdef double d, row, w, total = 0
    cdef double scale = 1.0 / (M * weight_sum)
    cdef floating* zr
    _head_forward(N, K, M, A, W, b, Z)
    for i in range(N):
        zr = Z + i * M
        w = 1.0 if sample_weight == NULL else sample_weight[i]
        row = 0
        for j in range(M):
            d = <double> zr[j] - Y[i * M + j]
            row += d * d
            zr[j] = <floating> (d * w * scale)
        total += w * row
    _head_backward(N, K, M, A, W, Z, dW, db, dA)
    return 0.5 * scale * total


def head_softmax_xent(
    const floating[:, ::1] A, const floating[:, ::1] W, const floating[::1] b,
    const Py_ssize_t[::1] y, const double[::1] sample_weight, double weight_sum,
    floating[:, ::1] Z, floating[:, ::1] dW, floating[::1] db,
    floating[:, ::1] dA,
):
    """Head ``Z = A W + b``, softmax cross-entropy and their gradients.

    Returns the (sample-weighted) mean log-loss ``sum(w * loss) / weight_sum``;
    writes ``dW``, ``db`` and ``dA`` (the gradient w.r.t. the final states),
    and leaves ``dZ`` in ``Z``. Each row's softmax is computed in float64;
    ``sample_weight`` may be None (weights of one). NaN or inf outputs give a
    non-finite loss.
    """
    cdef const double* sw = NULL
    if sample_weight is not None:
        sw = &sample_weight[0]
    cdef double loss
    with nogil:
        loss = _softmax_xent(A.shape[0], A.shape[1], W.shape[1], &A[0, 0],
                             &W[0, 0], &b[0], &y[0], sw, weight_sum, &Z[0, 0],
                             &dW[0, 0], &db[0], &dA[0, 0])
    return loss


def head_squared_error(
    const floating[:, ::1] A, const floating[:, ::1] W, const floating[::1] b,
    const floating[:, ::1] Y, const double[::1] sample_weight,
    double weight_sum, floating[:, ::1] Z, floating[:, ::1] dW,
    floating[::1] db, floating[:, ::1] dA,
):
    """Head ``Z = A W + b``, half the mean squared error and the gradients.

    The loss is ``0.5 * sum_i w_i * mean_k (y_ik - z_ik)^2 / weight_sum``
    (float64 sums); ``dZ`` is left in ``Z``, as :func:`head_softmax_xent`.
    """
    cdef const double* sw = NULL
    if sample_weight is not None:
        sw = &sample_weight[0]
    cdef double loss
    with nogil:
        loss = _squared_error(A.shape[0], A.shape[1], W.shape[1], &A[0, 0],
                              &W[0, 0], &b[0], &Y[0, 0], sw, weight_sum,
                              &Z[0, 0], &dW[0, 0], &db[0], &dA[0, 0])
    return loss


def weight_sum(const double[::1] sample_weight):
    """The sum of a batch's sample weights, in order (as the training loop)."""
    cdef double total = 0
    if sample_weight.shape[0] > 0:
        with nogil:
            total = _sum(&sample_weight[0], sample_weight.shape[0])
    return total


cdef double _sum(const double* a, Py_ssize_t n) noexcept nogil:
    cdef double total = 0
    cdef Py_ssize_t i
    for i in range(n):
        total += a[i]
    return total


# ---------------------------------------------------------------------------
# Penalty and gradient norm
# ---------------------------------------------------------------------------

cdef double* _partial_sums(Py_ssize_t n) except NULL:
    """Room for one float64 partial sum per block of n entries."""
    cdef double* p = <double*> malloc(((n + BLOCK - 1) // BLOCK) * sizeof(double))
    if p == NULL:
        raise MemoryError("Cannot allocate the partial sums of a reduction.")
    return p


cdef double _squares(int n_threads, const floating* w, floating* grads,
                     const Py_ssize_t* ranges, Py_ssize_t n_ranges,
                     Py_ssize_t n, floating scale,
                     double* partial) noexcept nogil:
    """Sum of w^2 over the [start, stop) ``ranges`` of w (n entries), per
    fixed block; with ``grads``, also adds ``scale * w`` to them there."""
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, lo, hi, r, i, a, z
    cdef double acc, total = 0
    for blk in prange(n_blocks, num_threads=region_threads(n_threads, n_blocks, n),
                      schedule="static"):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        acc = 0
        for r in range(n_ranges):
            a = max(lo, ranges[2 * r])
            z = min(hi, ranges[2 * r + 1])
            for i in range(a, z):
                acc = acc + (<double> w[i]) * w[i]
                if grads != NULL:
                    grads[i] = grads[i] + scale * w[i]
        partial[blk] = acc
    for blk in range(n_blocks):
        total += partial[blk]
    return total


def add_penalty(int n_threads, const floating[::1] coefs, floating[::1] grads,
                const Py_ssize_t[:, ::1] penalised, double scale):
    """Add ``scale * w`` to the gradient of the penalised weights.

    ``penalised`` holds ``[start, stop)`` ranges of ``coefs`` (increasing,
    disjoint, within it). Returns the sum of ``w^2`` over those weights, in
    float64.
    """
    cdef Py_ssize_t n = coefs.shape[0]
    cdef double total
    cdef double* partial
    if n == 0 or penalised.shape[0] == 0:
        return 0.0
    partial = _partial_sums(n)
    with nogil:
        total = _squares(n_threads, &coefs[0], &grads[0], &penalised[0, 0],
                         penalised.shape[0], n, <floating> scale, partial)
    free(partial)
    return total


def sum_squares(int n_threads, const floating[::1] a):
    """``sum(a ** 2)`` in float64; NaN or inf when an entry is (or on overflow)."""
    cdef Py_ssize_t n = a.shape[0]
    cdef Py_ssize_t whole[2]
    cdef double total
    cdef double* partial
    if n == 0:
        return 0.0
    whole[0] = 0
    whole[1] = n
    partial = _partial_sums(n)
    with nogil:
        total = _squares(n_threads, &a[0], <floating*> NULL, whole, 1, n, 0,
                         partial)
    free(partial)
    return total


cdef bint _all_finite(int n_threads, const floating* a,
                      Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef Py_ssize_t n_bad = 0
    for i in prange(n, num_threads=region_threads(n_threads, n, n), schedule="static"):
        if not isfinite(a[i]):
            n_bad += 1
    return n_bad == 0


cdef void _scale(int n_threads, floating* a, Py_ssize_t n,
                 floating f) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=region_threads(n_threads, n, n), schedule="static"):
        a[i] = a[i] * f


def all_finite(int n_threads, const floating[::1] a):
    """Whether every entry of ``a`` is finite."""
    cdef bint ok = True
    if a.shape[0] > 0:
        with nogil:
            ok = _all_finite(n_threads, &a[0], a.shape[0])
    return ok


def scale(int n_threads, floating[::1] a, double factor):
    """``a *= factor``, the factor rounded to a's dtype."""
    if a.shape[0] > 0:
        with nogil:
            _scale(n_threads, &a[0], a.shape[0], <floating> factor)


# ---------------------------------------------------------------------------
# Optimizer updates
# ---------------------------------------------------------------------------

cdef void _adam(int n_threads, Py_ssize_t n, floating* params,
                const floating* grad, floating* m, floating* v, double lr_t,
                double beta_1, double beta_2, double epsilon) noexcept nogil:
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, lo
    cdef floating b1 = <floating> beta_1, c1 = <floating> (1 - beta_1)
    cdef floating b2 = <floating> beta_2, c2 = <floating> (1 - beta_2)
    cdef floating eps = <floating> epsilon, neg_lr = <floating> (-lr_t)
    for blk in prange(n_blocks, num_threads=region_threads(n_threads, n_blocks, n),
                      schedule="static"):
        lo = blk * BLOCK
        if floating is float:
            seqclf_adam_f(min(BLOCK, n - lo), &params[lo], &grad[lo],
                          &m[lo], &v[lo], b1, c1, b2, c2, eps, neg_lr)
        else:
            seqclf_adam_d(min(BLOCK, n - lo), &params[lo], &grad[lo],
                          &m[lo], &v[lo], b1, c1, b2, c2, eps, neg_lr)


cdef void _sgd(int n_threads, Py_ssize_t n, floating* params,
               const floating* grad, floating* velocity, double learning_rate,
               double momentum, bint nesterov) noexcept nogil:
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, lo
    cdef floating neg_lr = -(<floating> learning_rate)
    cdef floating mu = <floating> momentum
    for blk in prange(n_blocks, num_threads=region_threads(n_threads, n_blocks, n),
                      schedule="static"):
        lo = blk * BLOCK
        if floating is float:
            seqclf_sgd_f(min(BLOCK, n - lo), &params[lo], &grad[lo],
                         &velocity[lo], neg_lr, mu, nesterov)
        else:
            seqclf_sgd_d(min(BLOCK, n - lo), &params[lo], &grad[lo],
                         &velocity[lo], neg_lr, mu, nesterov)


def adam_update(int n_threads, floating[::1] params, const floating[::1] grad,
                floating[::1] m, floating[::1] v, double lr_t, double beta_1,
                double beta_2, double epsilon):
    """One Adam step in place::

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr_t m / (sqrt(v) + epsilon)

    each constant rounded to the parameters' dtype as NumPy does; the arrays
    of one length and distinct.
    """
    if params.shape[0] > 0:
        with nogil:
            _adam(n_threads, params.shape[0], &params[0], &grad[0], &m[0],
                  &v[0], lr_t, beta_1, beta_2, epsilon)


def sgd_update(int n_threads, floating[::1] params, const floating[::1] grad,
               floating[::1] velocity, double learning_rate, double momentum,
               bint nesterov):
    """One SGD step with momentum in place::

        v = mu v - lr g
        p += mu v - lr g   (Nesterov)   or   p += v
    """
    if params.shape[0] > 0:
        with nogil:
            _sgd(n_threads, params.shape[0], &params[0], &grad[0],
                 &velocity[0], learning_rate, momentum, nesterov)


def adam_step_size(double learning_rate, double beta_1, double beta_2,
                   Py_ssize_t t):
    """Adam's ``lr_t`` at step ``t`` (see :func:`adam_update`)."""
    return _adam_step_size(learning_rate, beta_1, beta_2, t)


cdef double _adam_step_size(double learning_rate, double beta_1,
                            double beta_2, Py_ssize_t t) noexcept nogil:
    return learning_rate * sqrt(1 - pow(beta_2, <double> t)) / (
        1 - pow(beta_1, <double> t))


# ---------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------

# What a Trainer.run stops on (besides its count of batches).
cdef enum:
    COMPLETED = 0
    BAD_LOSS = 1          # the batch's loss is NaN or infinite
    BAD_GRADIENT = 2      # an entry of the gradient is
    BAD_NORM = 3          # the gradient's norm is (clipping)
    BAD_WEIGHTS = 4       # an updated parameter is
    NO_MEMORY = 5         # a kernel's scratch could not be allocated
    NO_DRAWS = 6          # draws holds fewer dropout draws than needed

NO_MEMORY_STATUS = NO_MEMORY
# The statuses of a divergence, and what went non-finite.
DIVERGED = {BAD_LOSS: "the training loss", BAD_GRADIENT: "a gradient",
            BAD_NORM: "the gradient's norm", BAD_WEIGHTS: "an updated weight"}


cdef struct _UnitPlan:
    # One direction of one layer: its kernel, sizes, parameters, gradients
    # and the buffers of a batch (capacity B x T steps).
    int cell
    bint reverse
    Py_ssize_t F, H
    void* W
    void* U
    void* b
    void* b_hh            # GRU only, else NULL
    void* dW
    void* dU
    void* db
    void* db_hh
    void* h_seq           # caches (B, T, H) ...
    void* h_prev
    void* gates           # ... (B, T, G), GRU/LSTM only
    void* aux             # (B, T, H), GRU/LSTM only
    void* h_last          # (B, H)
    void* dX              # (B, T, F), layers above the first
    void* dh_seq          # (B, T, H) from the layer above, two directions
    void* dh_last         # (B, H) from the head, two directions
    void* in_mask         # (B, F) input dropout mask, or NULL
    void* x               # (B, T, F) the input after it, or NULL
    void* rec_mask        # (B, H) recurrent dropout mask, or NULL


cdef void _dropout_mask(const floating* draws, floating* mask, Py_ssize_t n,
                        double rate) noexcept nogil:
    """The network's inverted-dropout mask from uniform draws:
    ``(draws >= rate) * (1 / (1 - rate))`` in the network's dtype, the rate
    compared in that dtype (as NumPy compares an array with a float)."""
    cdef floating threshold = <floating> rate
    cdef floating kept = <floating> (1.0 / (1.0 - rate))
    cdef Py_ssize_t i
    for i in range(n):
        mask[i] = kept if draws[i] >= threshold else 0


cdef void _mask_steps(const floating* a, const floating* mask, floating* out,
                      Py_ssize_t N, Py_ssize_t T, Py_ssize_t F) noexcept nogil:
    """``out[n, t] = a[n, t] * mask[n]`` (out may be a)."""
    cdef Py_ssize_t n, t, f
    cdef const floating* m
    for n in range(N):
        m = mask + n * F
        for t in range(T):
            for f in range(F):
                out[(n * T + t) * F + f] = a[(n * T + t) * F + f] * m[f]


cdef void* _address(a):
    return <void*> <size_t> a.__array_interface__["data"][0]


cdef void* _writable(a, name) except? NULL:
    """The address of an array the loop writes into; a read-only one (a
    memory map, a view of bytes) is refused rather than written through."""
    if not a.flags.writeable:
        raise ValueError(f"The training loop writes into {name}, which is "
                         f"read-only.")
    return _address(a)


cdef void* _buffer(list keep, Py_ssize_t size, dtype) except? NULL:
    """A new buffer of ``size`` entries, kept alive in ``keep``."""
    a = np.empty(max(size, 1), dtype=dtype)
    keep.append(a)
    return _address(a)


cdef class Trainer:
    """Mini-batches of one fit, run by :meth:`run` in one compiled call each.

    Each batch is :meth:`seqclf._network.RecurrentNetwork.train_step`'s
    work followed by the estimator's: the rows gathered, every layer's
    training forward pass, the dense head with softmax cross-entropy or
    squared error, BPTT, the L2 penalty, the checks that the loss and the
    gradient are finite, clipping, the Adam or SGD update, and the check
    that the updated weights are finite; with the same float operations in
    the same order, so that a fit is bit-identical to one through those
    methods. The buffers live as long as the trainer (one fit); a batch
    creates no Python object. The dropout masks are made from uniform
    draws the caller takes for each group of batches (``draws`` of
    :meth:`run`); with an embedding, the rows a batch touches are looked
    up, get their gradient and are stepped lazily, as ``train_step`` and
    the embedding's optimizer do.

    Parameters
    ----------
    units : list of tuple
        Per layer, then per direction: ``(code, reverse, n_in, n_hidden, W,
        U, b, b_hh, dW, dU, db, db_hh)``, the parameter and gradient arrays
        being views into ``coefs`` and ``grads`` (``b_hh``, ``db_hh`` None
        but for the GRU).
    n_directions : {1, 2}
    X : ndarray of shape (n, T, F), or (n, T) token ids (intp)
        The training set, C-contiguous, of the network's dtype.
    lengths : ndarray of shape (n,), intp, within [1, T]
    y : ndarray
        Class indices (n,) intp for cross-entropy, or targets (n, M) of the
        network's dtype for squared error; checked by the caller.
    sample_weight : ndarray of shape (n,), float64, or None
    batch_size : int
    head_W, head_b, head_dW, head_db : ndarray
        The dense head's parameters and gradients.
    coefs, grads : ndarray
        The dense parameter vector and its gradient (all the above are
        views into them).
    penalised : ndarray of shape (k, 2), intp
        ``[start, stop)`` ranges of the penalised weights in ``coefs``.
    state : tuple of ndarray
        The optimizer's state over ``coefs``: ``(m, v)`` for Adam,
        ``(velocity,)`` for SGD.
    dropout, recurrent_dropout : float in [0, 1)
        Rates of the input and recurrent dropout masks (as ``train_step``).
    embedding : ndarray of shape (V, F) or None
        The embedding matrix (a view into the network's parameters) when
        ``X`` holds token ids.
    embedding_state : tuple of ndarray
        Its optimizer's state, as ``state``.
    """

    cdef _UnitPlan* units
    cdef Py_ssize_t n_units, n_layers, n_dir
    cdef bint double_, xent, adam
    cdef Py_ssize_t n, T, F, B, K, M, n_coefs, n_penalised
    cdef void* X
    cdef const Py_ssize_t* lengths
    cdef void* y
    cdef const double* sw
    cdef void* Xb
    cdef Py_ssize_t* lb
    cdef void* yb
    cdef double* swb
    cdef void* A
    cdef void* Z
    cdef void* dA
    cdef void* hW
    cdef void* hb
    cdef void* hdW
    cdef void* hdb
    cdef void* coefs
    cdef void* grads
    cdef void* m
    cdef void* v
    cdef const Py_ssize_t* penalised
    cdef double* partial
    cdef void** seq_out               # per layer: (B, T, 2H), or NULL
    cdef double dropout, recurrent_dropout
    # With an embedding: its matrix (V, F) and optimizer state, the batch's
    # ids, their positions sorted by id (with room for the merge), the
    # distinct ids, their bounds and gradient rows.
    cdef void* E
    cdef void* Em
    cdef void* Ev
    cdef Py_ssize_t V
    cdef Py_ssize_t* ids
    cdef Py_ssize_t* keys
    cdef Py_ssize_t* pos
    cdef Py_ssize_t* rows
    cdef Py_ssize_t* bounds
    cdef void* egrad
    cdef readonly Py_ssize_t draws_per_sequence
    cdef list _keep                   # every array the pointers point into

    def __cinit__(self):
        self.units = NULL
        self.seq_out = NULL
        self.partial = NULL

    def __init__(self, units, int n_directions, X, lengths, y, sample_weight,
                 Py_ssize_t batch_size, head_W, head_b, head_dW, head_db,
                 coefs, grads, penalised, state, double dropout=0.0,
                 double recurrent_dropout=0.0, embedding=None,
                 embedding_state=()):
        cdef Py_ssize_t i, l, d, G
        cdef _UnitPlan* u
        dtype = X.dtype
        keep = [X, lengths, y, sample_weight, head_W, head_b, head_dW,
                head_db, coefs, grads, penalised] + list(state)
        self.double_ = dtype == np.float64
        self.n, self.T = X.shape[0], X.shape[1]
        self.F = X.shape[2] if embedding is None else embedding.shape[1]
        self.B = B = min(batch_size, self.n)
        T = self.T
        self.n_dir = n_directions
        self.n_units = len(units)
        self.n_layers = self.n_units // n_directions
        self.xent = y.ndim == 1
        self.K, self.M = head_W.shape
        self.n_coefs = coefs.shape[0]
        self.adam = len(state) == 2
        self.dropout, self.recurrent_dropout = dropout, recurrent_dropout
        self.draws_per_sequence = 0

        self.units = <_UnitPlan*> malloc(self.n_units * sizeof(_UnitPlan))
        self.seq_out = <void**> malloc(self.n_layers * sizeof(void*))
        n_sums = max(self.n_coefs, 0 if embedding is None
                     else self.B * self.T * embedding.shape[1])
        self.partial = <double*> malloc(
            ((n_sums + BLOCK - 1) // BLOCK + 1) * sizeof(double))
        if self.units == NULL or self.seq_out == NULL or self.partial == NULL:
            raise MemoryError("Cannot allocate the training loop's plan.")
        for i, (code, reverse, F, H, W, U, b, b_hh, dW, dU, db, db_hh) in (
                enumerate(units)):
            l, d = divmod(i, n_directions)
            keep += [W, U, b, b_hh, dW, dU, db, db_hh]
            # Every size the batches can take, on as many threads as chunks.
            _kernels._check_scratch(code, True, True, B, T, F, H, B,
                                    dtype.itemsize)
            G = U.shape[1]
            u = &self.units[i]
            u.cell, u.reverse, u.F, u.H = code, reverse, F, H
            u.W, u.U, u.b = _address(W), _address(U), _address(b)
            u.dW = _writable(dW, "the gradient")
            u.dU = _writable(dU, "the gradient")
            u.db = _writable(db, "the gradient")
            u.b_hh = NULL if b_hh is None else _address(b_hh)
            u.db_hh = (NULL if db_hh is None
                       else _writable(db_hh, "the gradient"))
            u.h_seq = _buffer(keep, B * T * H, dtype)
            u.h_prev = _buffer(keep, B * T * H, dtype)
            u.gates = u.aux = NULL
            if G > H:
                u.gates = _buffer(keep, B * T * G, dtype)
                u.aux = _buffer(keep, B * T * H, dtype)
            u.h_last = _buffer(keep, B * H, dtype)
            u.dX = (_buffer(keep, B * T * F, dtype)
                    if l > 0 or embedding is not None else NULL)
            last = l == self.n_layers - 1
            two = n_directions == 2
            u.dh_seq = (_buffer(keep, B * T * H, dtype) if two and not last
                        else NULL)
            u.dh_last = _buffer(keep, B * H, dtype) if two and last else NULL
            if d == 0:
                self.seq_out[l] = (_buffer(keep, B * T * 2 * H, dtype)
                                   if two and not last else NULL)
            u.in_mask = u.x = u.rec_mask = NULL
            if dropout > 0:
                u.in_mask = _buffer(keep, B * F, dtype)
                u.x = _buffer(keep, B * T * F, dtype)
            if recurrent_dropout > 0:
                u.rec_mask = _buffer(keep, B * H, dtype)
            self.draws_per_sequence += (F * (dropout > 0)
                                        + H * (recurrent_dropout > 0))
        self.X = _address(X)
        self.lengths = <const Py_ssize_t*> _address(lengths)
        self.y = _address(y)
        self.sw = NULL
        if sample_weight is not None:
            self.sw = <const double*> _address(sample_weight)
        self.E = NULL
        if embedding is None:
            self.Xb = _buffer(keep, B * T * self.F, dtype)
        else:
            keep += [embedding] + list(embedding_state)
            self.E = _writable(embedding, "the embedding")
            self.V = embedding.shape[0]
            self.Em = _writable(embedding_state[0], "an optimizer's state")
            self.Ev = (_writable(embedding_state[1], "an optimizer's state")
                       if len(embedding_state) == 2 else NULL)
            self.ids = <Py_ssize_t*> _buffer(keep, B * T, np.intp)
            self.Xb = _buffer(keep, B * T * self.F, dtype)     # looked up
            P = B * T
            self.keys = <Py_ssize_t*> _buffer(keep, 2 * P, np.intp)
            self.pos = <Py_ssize_t*> _buffer(keep, 2 * P, np.intp)
            self.rows = <Py_ssize_t*> _buffer(keep, P, np.intp)
            self.bounds = <Py_ssize_t*> _buffer(keep, P + 1, np.intp)
            self.egrad = _buffer(keep, P * self.F, dtype)
        self.lb = <Py_ssize_t*> _buffer(keep, B, np.intp)
        self.yb = (_buffer(keep, B, np.intp) if self.xent
                   else _buffer(keep, B * self.M, dtype))
        self.swb = <double*> _buffer(keep, B, np.float64)
        self.A = _buffer(keep, B * self.K, dtype) if n_directions == 2 else NULL
        self.Z = _buffer(keep, B * self.M, dtype)
        self.dA = _buffer(keep, B * self.K, dtype)
        self.hW, self.hb = _address(head_W), _address(head_b)
        self.hdW = _writable(head_dW, "the gradient")
        self.hdb = _writable(head_db, "the gradient")
        self.coefs = _writable(coefs, "the parameters")
        self.grads = _writable(grads, "the gradient")
        self.penalised = <const Py_ssize_t*> _address(penalised)
        self.n_penalised = penalised.shape[0]
        self.m = _writable(state[0], "an optimizer's state")
        self.v = (_writable(state[1], "an optimizer's state") if self.adam
                  else NULL)
        self._keep = keep

    def __dealloc__(self):
        free(self.units)
        free(self.seq_out)
        free(self.partial)

    def run(self, const Py_ssize_t[::1] order, Py_ssize_t first,
            Py_ssize_t count, int n_threads, double alpha, double clip_norm,
            double learning_rate, double beta_1, double beta_2,
            double epsilon, double momentum, bint nesterov, Py_ssize_t t,
            double loss_sum, draws=None, Py_ssize_t t_embedding=0):
        """Train on batches ``first, ..., first + count - 1`` of ``order``.

        Batch ``k`` holds the rows ``order[k * batch_size:(k + 1) *
        batch_size]``; one whose sample weights are all zero is skipped.
        ``clip_norm`` < 0 clips nothing; ``t`` is the optimizer's step count
        before the call (Adam's bias correction); ``beta_*`` and ``epsilon``
        are Adam's settings, ``momentum`` and ``nesterov`` SGD's.
        ``loss_sum`` is the epoch's sum so far; ``t_embedding`` the step
        count of the embedding's optimizer (each update steps both). With
        dropout, ``draws`` holds the uniform draws of the masks (of the
        network's dtype): :attr:`draws_per_sequence` per sequence of each batch run
        (skipped batches draw none), taken in order, per batch and layer
        the input masks of its directions, then their recurrent masks, as
        ``train_step`` draws them.

        Returns
        -------
        next_batch : int
            The batch after the last one run (the failed one included).
        n_updates : int
            Optimizer steps taken (a failed check of the updated weights
            counts its step).
        loss_sum : float
            ``loss_sum`` plus, batch after batch, each completed batch's
            mean loss times its number of sequences.
        status : int
            0; or what stopped the loop at batch ``next_batch - 1``, the
            model being then part-way through that batch: a key of
            :data:`DIVERGED`, ``NO_MEMORY_STATUS``, or 6 when ``draws``
            held too few numbers.
        """
        cdef Py_ssize_t n_order = order.shape[0]
        cdef Py_ssize_t stop = min(first + count, (n_order + self.B - 1) // self.B)
        cdef Py_ssize_t k = first, updates = 0, cursor = 0
        cdef double total = loss_sum
        cdef int status = COMPLETED
        cdef void* draws_p = NULL
        cdef Py_ssize_t n_draws = 0
        cdef Py_ssize_t i, n_bad = 0
        if n_order != self.n or first < 0 or count < 0:
            raise ValueError(f"order must hold the {self.n} rows' indices, "
                             f"first and count be non-negative.")
        with nogil:
            for i in range(n_order):
                n_bad += order[i] < 0 or order[i] >= self.n
        if n_bad:
            raise ValueError(f"order holds indices outside [0, {self.n}).")
        if self.draws_per_sequence > 0:
            if (draws is None or draws.ndim != 1
                    or not draws.flags.c_contiguous
                    or draws.dtype != (np.float64 if self.double_
                                       else np.float32)):
                raise ValueError("draws must be a contiguous vector of the "
                                 "network's dtype.")
            n_draws = draws.shape[0]
            draws_p = _address(draws)
        with nogil:
            while k < stop and status == COMPLETED:
                if self.double_:
                    status = self._batch(<double*> NULL, &order[0], k,
                                         n_threads, alpha, clip_norm,
                                         learning_rate, beta_1, beta_2,
                                         epsilon, momentum, nesterov,
                                         t + updates, &updates, &total,
                                         draws_p, n_draws, &cursor,
                                         t_embedding + updates)
                else:
                    status = self._batch(<float*> NULL, &order[0], k,
                                         n_threads, alpha, clip_norm,
                                         learning_rate, beta_1, beta_2,
                                         epsilon, momentum, nesterov,
                                         t + updates, &updates, &total,
                                         draws_p, n_draws, &cursor,
                                         t_embedding + updates)
                k += 1
        return k, updates, total, status

    cdef int _batch(self, floating* dummy, const Py_ssize_t* order,
                    Py_ssize_t k, int nt, double alpha, double clip_norm,
                    double lr, double beta_1, double beta_2, double epsilon,
                    double momentum, bint nesterov, Py_ssize_t t,
                    Py_ssize_t* updates, double* total, void* draws,
                    Py_ssize_t n_draws, Py_ssize_t* cursor,
                    Py_ssize_t t_embedding) noexcept nogil:
        cdef Py_ssize_t B = self.B, F = self.F, M = self.M, K = self.K
        cdef Py_ssize_t D = self.n_dir, L = self.n_layers
        cdef const Py_ssize_t* rows = order + k * B
        cdef Py_ssize_t N = min(B, self.n - k * B)
        cdef Py_ssize_t i, l, d, Tb = 0, H, Fl, e, n_rows = 0
        cdef const double* swb = NULL
        cdef double weight_sum = <double> N, loss, sq, norm, scale
        cdef bint any_weight
        cdef _UnitPlan* u
        cdef floating* inp
        cdef floating* x
        cdef floating* src
        cdef floating* dst
        cdef floating* A
        cdef floating* dh_last
        cdef const floating* dh_seq
        cdef floating* Xb = <floating*> self.Xb
        cdef const floating* X = <const floating*> self.X
        cdef Py_ssize_t whole[2]

        # The batch: its weights (skipped when all zero), lengths, rows.
        if self.sw != NULL:
            any_weight = False
            for i in range(N):
                self.swb[i] = self.sw[rows[i]]
                any_weight = any_weight or self.swb[i] != 0
            if not any_weight:
                return COMPLETED
            swb = self.swb
            weight_sum = _sum(swb, N)
        if self.draws_per_sequence > 0:
            if cursor[0] + N * self.draws_per_sequence > n_draws:
                return NO_DRAWS
        for i in range(N):
            self.lb[i] = self.lengths[rows[i]]
            Tb = max(Tb, self.lb[i])
        if self.E == NULL:
            for i in prange(N, num_threads=region_threads(nt, N, N * Tb * F),
                            schedule="static"):
                memcpy(Xb + i * Tb * F, X + rows[i] * self.T * F,
                       <size_t> (Tb * F) * sizeof(floating))
        else:
            for i in range(N):
                memcpy(self.ids + i * Tb,
                       <const Py_ssize_t*> self.X + rows[i] * self.T,
                       <size_t> Tb * sizeof(Py_ssize_t))
            lookup(nt, N, Tb, self.ids, self.lb, self.V, F,
                   <floating*> self.E, Xb)
        if self.xent:
            for i in range(N):
                (<Py_ssize_t*> self.yb)[i] = (<const Py_ssize_t*> self.y)[rows[i]]
        else:
            for i in range(N):
                memcpy(<floating*> self.yb + i * M,
                       <const floating*> self.y + rows[i] * M,
                       <size_t> M * sizeof(floating))

        # Forward, layer by layer; two directions write their halves of the
        # layer's output sequence (as the network's train_step).
        inp = Xb
        for l in range(L):
            if self.dropout > 0:
                for d in range(D):
                    u = &self.units[l * D + d]
                    _dropout_mask(<floating*> draws + cursor[0],
                                  <floating*> u.in_mask, N * u.F,
                                  self.dropout)
                    cursor[0] += N * u.F
            if self.recurrent_dropout > 0:
                for d in range(D):
                    u = &self.units[l * D + d]
                    _dropout_mask(<floating*> draws + cursor[0],
                                  <floating*> u.rec_mask, N * u.H,
                                  self.recurrent_dropout)
                    cursor[0] += N * u.H
            for d in range(D):
                u = &self.units[l * D + d]
                x = inp
                if u.x != NULL:
                    x = <floating*> u.x
                    _mask_steps(inp, <floating*> u.in_mask, x, N, Tb, u.F)
                if forward_pass(
                        u.cell, u.reverse, nt, N, Tb, u.F, u.H, x, self.lb,
                        <floating*> u.W, <floating*> u.U, <floating*> u.b,
                        <floating*> u.b_hh, <floating*> u.rec_mask,
                        <floating*> u.h_last, <floating*> u.h_seq,
                        <floating*> u.h_prev, <floating*> u.gates,
                        <floating*> u.aux) != 0:
                    return NO_MEMORY
                if self.seq_out[l] != NULL:
                    H = u.H
                    src = <floating*> u.h_seq
                    dst = <floating*> self.seq_out[l] + d * H
                    for e in range(N * Tb):
                        memcpy(dst + e * 2 * H, src + e * H,
                               <size_t> H * sizeof(floating))
            if l < L - 1:
                inp = (<floating*> self.seq_out[l] if D == 2
                       else <floating*> self.units[l].h_seq)
        if D == 1:
            A = <floating*> self.units[L - 1].h_last
        else:
            A = <floating*> self.A
            for d in range(D):
                u = &self.units[(L - 1) * D + d]
                H = u.H
                for i in range(N):
                    memcpy(A + i * K + d * H, <floating*> u.h_last + i * H,
                           <size_t> H * sizeof(floating))

        # Head and loss.
        if self.xent:
            loss = _softmax_xent(N, K, M, A, <floating*> self.hW,
                                 <floating*> self.hb,
                                 <const Py_ssize_t*> self.yb, swb, weight_sum,
                                 <floating*> self.Z, <floating*> self.hdW,
                                 <floating*> self.hdb, <floating*> self.dA)
        else:
            loss = _squared_error(N, K, M, A, <floating*> self.hW,
                                  <floating*> self.hb, <floating*> self.yb,
                                  swb, weight_sum, <floating*> self.Z,
                                  <floating*> self.hdW, <floating*> self.hdb,
                                  <floating*> self.dA)

        # BPTT, top layer first.
        for l in range(L - 1, -1, -1):
            inp = Xb if l == 0 else (
                <floating*> self.seq_out[l - 1] if D == 2
                else <floating*> self.units[l - 1].h_seq)
            for d in range(D):
                u = &self.units[l * D + d]
                H = u.H
                dh_last = NULL
                dh_seq = NULL
                if l == L - 1:
                    if D == 1:
                        dh_last = <floating*> self.dA
                    else:
                        dh_last = <floating*> u.dh_last
                        for i in range(N):
                            memcpy(dh_last + i * H,
                                   <floating*> self.dA + i * K + d * H,
                                   <size_t> H * sizeof(floating))
                else:
                    dh_seq = (<floating*> self.units[l + 1].dX if D == 1
                              else <floating*> u.dh_seq)
                x = inp if u.x == NULL else <floating*> u.x
                if backward_pass(
                        u.cell, u.reverse, nt, N, Tb, u.F, H, x, self.lb,
                        <floating*> u.W, <floating*> u.U,
                        <floating*> u.rec_mask,
                        <floating*> u.h_seq, <floating*> u.h_prev,
                        <floating*> u.gates, <floating*> u.aux, dh_last,
                        dh_seq, <floating*> u.dW, <floating*> u.dU,
                        <floating*> u.db, <floating*> u.db_hh,
                        <floating*> u.dX) != 0:
                    return NO_MEMORY
                if u.dX != NULL and u.in_mask != NULL:
                    _mask_steps(<floating*> u.dX, <floating*> u.in_mask,
                                <floating*> u.dX, N, Tb, u.F)
            if self.units[l * D].dX != NULL and D == 2:
                # The input gradient of both directions, summed; above the
                # first layer, split into the halves of the layer below.
                Fl = self.units[l * D].F
                dst = <floating*> self.units[l * D].dX
                src = <floating*> self.units[l * D + 1].dX
                for e in range(N * Tb * Fl):
                    dst[e] = dst[e] + src[e]
            if l > 0 and D == 2:
                Fl = self.units[l * D].F
                dst = <floating*> self.units[l * D].dX
                for d in range(D):
                    u = &self.units[(l - 1) * D + d]
                    H = u.H
                    for e in range(N * Tb):
                        memcpy(<floating*> u.dh_seq + e * H,
                               dst + e * Fl + d * H,
                               <size_t> H * sizeof(floating))

        if self.E != NULL:
            n_rows = self._embedding_rows(<floating*> self.units[0].dX, N, Tb, nt)

        # Penalty, checks, clipping and the update, as the estimator's loop.
        if alpha > 0:
            scale = alpha / weight_sum
            loss += 0.5 * scale * _squares(
                nt, <floating*> self.coefs, <floating*> self.grads,
                self.penalised, self.n_penalised, self.n_coefs,
                <floating> scale, self.partial)
        if not isfinite(loss):
            return BAD_LOSS
        if not _all_finite(nt, <floating*> self.grads, self.n_coefs):
            return BAD_GRADIENT
        if self.E != NULL and not _all_finite(nt, <floating*> self.egrad,
                                              n_rows * F):
            return BAD_GRADIENT
        if clip_norm >= 0:
            whole[0] = 0
            whole[1] = self.n_coefs
            sq = _squares(nt, <floating*> self.grads, <floating*> NULL, whole,
                          1, self.n_coefs, 0, self.partial)
            if self.E != NULL:
                whole[1] = n_rows * F
                sq += _squares(nt, <floating*> self.egrad, <floating*> NULL,
                               whole, 1, n_rows * F, 0, self.partial)
            norm = sqrt(sq)
            if not isfinite(norm):
                return BAD_NORM
            if norm > clip_norm:
                _scale(nt, <floating*> self.grads, self.n_coefs,
                       <floating> (clip_norm / norm))
                if self.E != NULL:
                    _scale(nt, <floating*> self.egrad, n_rows * F,
                           <floating> (clip_norm / norm))
        updates[0] += 1
        if self.adam:
            _adam(nt, self.n_coefs, <floating*> self.coefs,
                  <floating*> self.grads, <floating*> self.m,
                  <floating*> self.v,
                  _adam_step_size(lr, beta_1, beta_2, t + 1), beta_1, beta_2,
                  epsilon)
        else:
            _sgd(nt, self.n_coefs, <floating*> self.coefs,
                 <floating*> self.grads, <floating*> self.m, lr, momentum,
                 nesterov)
        if self.E != NULL:
            # The embedding's rows, lazily; then the check of those rows.
            if self.adam:
                _adam_rows(n_rows, F, self.rows, <floating*> self.E,
                           <floating*> self.egrad, <floating*> self.Em,
                           <floating*> self.Ev,
                           _adam_step_size(lr, beta_1, beta_2,
                                           t_embedding + 1),
                           beta_1, beta_2, epsilon)
            else:
                _sgd_rows(n_rows, F, self.rows, <floating*> self.E,
                          <floating*> self.egrad, <floating*> self.Em, lr,
                          momentum, nesterov)
            for i in range(n_rows):         # serial: a few rows of F
                for e in range(self.rows[i] * F, (self.rows[i] + 1) * F):
                    if not isfinite((<floating*> self.E)[e]):
                        return BAD_WEIGHTS
        if not _all_finite(nt, <floating*> self.coefs, self.n_coefs):
            return BAD_WEIGHTS
        total[0] += loss * N
        return COMPLETED

    cdef Py_ssize_t _embedding_rows(self, floating* dX, Py_ssize_t N,
                                    Py_ssize_t Tb, int nt) noexcept nogil:
        """The embedding's gradient as the rows the batch touches, as
        seqclf._layers.embedding_backward: the data steps' positions sorted
        by id (stably), each distinct id's row the sum of its positions'
        ``dX`` rows in position order. Returns their number."""
        cdef Py_ssize_t n, t, j, P = 0, K = 0
        for n in range(N):
            for t in range(self.lb[n]):
                self.keys[P] = self.ids[n * Tb + t]
                self.pos[P] = n * Tb + t
                P += 1
        _merge_sort(self.keys, self.pos, P)
        for j in range(P):
            if j == 0 or self.keys[j] != self.keys[j - 1]:
                self.rows[K] = self.keys[j]
                self.bounds[K] = j
                K += 1
        self.bounds[K] = P
        row_sums(nt, K, self.F, self.pos, self.bounds, dX,
                 <floating*> self.egrad)
        return K


cdef void _merge_sort(Py_ssize_t* keys, Py_ssize_t* values,
                      Py_ssize_t n) noexcept nogil:
    """Sort ``keys[:n]`` and their ``values`` by key, stably (bottom-up
    merges); ``keys`` and ``values`` have room for 2 n entries, the second
    half being scratch."""
    cdef Py_ssize_t width = 1, lo, mid, hi, i, j, o
    cdef Py_ssize_t* a = keys
    cdef Py_ssize_t* av = values
    cdef Py_ssize_t* b = keys + n
    cdef Py_ssize_t* bv = values + n
    cdef Py_ssize_t* tmp
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, o = lo, mid, lo
            while i < mid and j < hi:
                if a[j] < a[i]:         # equal keys keep their order
                    b[o] = a[j]
                    bv[o] = av[j]
                    j += 1
                else:
                    b[o] = a[i]
                    bv[o] = av[i]
                    i += 1
                o += 1
            while i < mid:
                b[o] = a[i]
                bv[o] = av[i]
                i += 1
                o += 1
            while j < hi:
                b[o] = a[j]
                bv[o] = av[j]
                j += 1
                o += 1
            lo = hi
        tmp = a
        a = b
        b = tmp
        tmp = av
        av = bv
        bv = tmp
        width *= 2
    if a != keys:
        memcpy(keys, a, n * sizeof(Py_ssize_t))
        memcpy(values, av, n * sizeof(Py_ssize_t))


cdef void _adam_rows(Py_ssize_t K, Py_ssize_t D, const Py_ssize_t* rows,
                     floating* E, const floating* grad, floating* m,
                     floating* v, double lr_t, double beta_1, double beta_2,
                     double epsilon) noexcept nogil:
    """AdamOptimizer._step_rows' float operations, in its order."""
    cdef floating b1 = <floating> beta_1, c1 = <floating> (1 - beta_1)
    cdef floating b2 = <floating> beta_2, c2 = <floating> (1 - beta_2)
    cdef floating eps = <floating> epsilon, neg_lr = <floating> (-lr_t)
    cdef floating g, mm, vv, step
    cdef Py_ssize_t k, d, i
    for k in range(K):
        for d in range(D):
            i = rows[k] * D + d
            g = grad[k * D + d]
            mm = m[i] * b1
            mm = mm + c1 * g
            vv = v[i] * b2
            vv = vv + c2 * (g * g)
            m[i] = mm
            v[i] = vv
            step = <floating> sqrt(vv)
            step = step + eps
            step = mm / step
            step = step * neg_lr
            E[i] = E[i] + step


cdef void _sgd_rows(Py_ssize_t K, Py_ssize_t D, const Py_ssize_t* rows,
                    floating* E, const floating* grad, floating* velocity,
                    double learning_rate, double momentum,
                    bint nesterov) noexcept nogil:
    """SGDOptimizer._step_rows' float operations, in its order."""
    cdef floating neg_lr = -(<floating> learning_rate)
    cdef floating mu = <floating> momentum
    cdef floating step, vv
    cdef Py_ssize_t k, d, i
    for k in range(K):
        for d in range(D):
            i = rows[k] * D + d
            step = grad[k * D + d] * neg_lr
            vv = velocity[i] * mu
            vv = vv + step
            velocity[i] = vv
            if nesterov:
                step = step + mu * vv
                E[i] = E[i] + step
            else:
                E[i] = E[i] + vv
