"""Compiled parts of a training step around the recurrent kernels.

What a mini-batch does besides the recurrent layers, each in one nogil call
instead of a dozen NumPy operations: gathering the batch's rows into a
reused buffer, the dense head with its loss and their gradients, the L2
penalty, the gradient's norm and its clipping, the finiteness checks and
the optimizers' updates. The callers (seqclf._network,
seqclf._optim) check the arguments; nothing here knows of scikit-learn.

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
from libc.math cimport exp, isfinite, log
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from ._blas cimport gemm

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
    # Elements per thread below which a pass runs on fewer threads: waking
    # a thread costs more than a pass over a small model's parameters.
    PER_THREAD = 32768


cdef inline int _workers(Py_ssize_t n, int n_threads) noexcept nogil:
    return <int> max(1, min(<Py_ssize_t> n_threads, n // PER_THREAD))


def gather(int n_threads, const gathered[:, :, ::1] X,
           const Py_ssize_t[::1] rows, gathered[:, :, ::1] out):
    """``out[i] = X[rows[i], :T]`` with ``T = out.shape[1] <= X.shape[1]``."""
    cdef Py_ssize_t n = rows.shape[0], T = out.shape[1], F = out.shape[2]
    cdef Py_ssize_t i
    if n == 0 or T == 0 or F == 0:
        return
    with nogil:
        for i in prange(n, num_threads=_workers(n * T * F, n_threads),
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
    cdef Py_ssize_t N = A.shape[0], K = A.shape[1], M = W.shape[1]
    cdef Py_ssize_t i, j
    cdef double zmax, s, log_norm, w, total = 0
    cdef floating* zr
    with nogil:
        _head_forward(N, K, M, &A[0, 0], &W[0, 0], &b[0], &Z[0, 0])
        for i in range(N):
            zr = &Z[i, 0]
            zmax = zr[0]
            for j in range(1, M):
                if zr[j] > zmax or zr[j] != zr[j]:
                    zmax = zr[j]
            s = 0
            for j in range(M):
                s += exp(zr[j] - zmax)
            log_norm = zmax + log(s)
            w = 1.0 if sample_weight is None else sample_weight[i]
            total -= w * (zr[y[i]] - log_norm)
            w = w / weight_sum
            for j in range(M):
                zr[j] = <floating> (w * exp(zr[j] - log_norm))
            zr[y[i]] = <floating> (zr[y[i]] - w)
        _head_backward(N, K, M, &A[0, 0], &W[0, 0], &Z[0, 0], &dW[0, 0],
                       &db[0], &dA[0, 0])
    return total / weight_sum


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
    cdef Py_ssize_t N = A.shape[0], K = A.shape[1], M = W.shape[1]
    cdef Py_ssize_t i, j
    cdef double d, row, w, total = 0
    cdef double scale = 1.0 / (M * weight_sum)
    cdef floating* zr
    with nogil:
        _head_forward(N, K, M, &A[0, 0], &W[0, 0], &b[0], &Z[0, 0])
        for i in range(N):
            zr = &Z[i, 0]
            w = 1.0 if sample_weight is None else sample_weight[i]
            row = 0
            for j in range(M):
                d = <double> zr[j] - Y[i, j]
                row += d * d
                zr[j] = <floating> (d * w * scale)
            total += w * row
        _head_backward(N, K, M, &A[0, 0], &W[0, 0], &Z[0, 0], &dW[0, 0],
                       &db[0], &dA[0, 0])
    return 0.5 * scale * total


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
    for blk in prange(n_blocks, num_threads=_workers(n, n_threads),
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


def all_finite(int n_threads, const floating[::1] a):
    """Whether every entry of ``a`` is finite."""
    cdef Py_ssize_t n = a.shape[0], i
    cdef Py_ssize_t n_bad = 0
    with nogil:
        for i in prange(n, num_threads=_workers(n, n_threads), schedule="static"):
            if not isfinite(a[i]):
                n_bad += 1
    return n_bad == 0


def scale(int n_threads, floating[::1] a, double factor):
    """``a *= factor``, the factor rounded to a's dtype."""
    cdef Py_ssize_t n = a.shape[0], i
    cdef floating f = <floating> factor
    with nogil:
        for i in prange(n, num_threads=_workers(n, n_threads), schedule="static"):
            a[i] = a[i] * f


# ---------------------------------------------------------------------------
# Optimizer updates
# ---------------------------------------------------------------------------

def adam_update(int n_threads, floating[::1] params, const floating[::1] grad,
                floating[::1] m, floating[::1] v, double lr_t, double beta_1,
                double beta_2, double epsilon):
    """One Adam step in place::

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr_t m / (sqrt(v) + epsilon)

    each constant rounded to the parameters' dtype as NumPy does; the arrays
    of one length and distinct.
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, lo
    cdef floating b1 = <floating> beta_1, c1 = <floating> (1 - beta_1)
    cdef floating b2 = <floating> beta_2, c2 = <floating> (1 - beta_2)
    cdef floating eps = <floating> epsilon, neg_lr = <floating> (-lr_t)
    if n == 0:
        return
    with nogil:
        for blk in prange(n_blocks, num_threads=_workers(n, n_threads),
                          schedule="static"):
            lo = blk * BLOCK
            if floating is float:
                seqclf_adam_f(min(BLOCK, n - lo), &params[lo], &grad[lo],
                              &m[lo], &v[lo], b1, c1, b2, c2, eps, neg_lr)
            else:
                seqclf_adam_d(min(BLOCK, n - lo), &params[lo], &grad[lo],
                              &m[lo], &v[lo], b1, c1, b2, c2, eps, neg_lr)


def sgd_update(int n_threads, floating[::1] params, const floating[::1] grad,
               floating[::1] velocity, double learning_rate, double momentum,
               bint nesterov):
    """One SGD step with momentum in place::

        v = mu v - lr g
        p += mu v - lr g   (Nesterov)   or   p += v
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, lo
    cdef floating neg_lr = -(<floating> learning_rate)
    cdef floating mu = <floating> momentum
    if n == 0:
        return
    with nogil:
        for blk in prange(n_blocks, num_threads=_workers(n, n_threads),
                          schedule="static"):
            lo = blk * BLOCK
            if floating is float:
                seqclf_sgd_f(min(BLOCK, n - lo), &params[lo], &grad[lo],
                             &velocity[lo], neg_lr, mu, nesterov)
            else:
                seqclf_sgd_d(min(BLOCK, n - lo), &params[lo], &grad[lo],
                             &velocity[lo], neg_lr, mu, nesterov)
