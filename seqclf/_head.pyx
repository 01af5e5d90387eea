"""The heads and losses of the training plan, by kind, with their gradients.

One kind of head (dense: ``Z = A W + b``) and two losses (softmax
cross-entropy on class indices, half the mean squared error on targets),
each a nogil function for seqclf._plan (``head_loss``, declared in
_head.pxd, dispatching on the loss's kind) and one nogil call from Python.
The sums of a loss are in float64; the (sample-weighted) mean is
``sum(w * loss) / sum(w)`` as in scikit-learn's MLP, so that integer weights
equal repeated samples. Nothing here knows of scikit-learn.
"""

from cython cimport floating
from libc.math cimport exp, log

from ._blas cimport gemm

# The kinds by name, as the Python classes of seqclf._network give them.
HEAD_KINDS = {"dense": HEAD_DENSE}
LOSS_KINDS = {"softmax_cross_entropy": LOSS_SOFTMAX_CROSS_ENTROPY,
              "squared_error": LOSS_SQUARED_ERROR}


cdef double head_loss(
    int loss, Py_ssize_t N, Py_ssize_t K, Py_ssize_t M, const floating* A,
    const floating* W, const floating* b, const void* y,
    const double* sample_weight, double weight_sum, floating* Z,
    floating* dW, floating* db, floating* dA,
) noexcept nogil:
    """The dense head's forward, the loss of kind ``loss`` and the
    gradients: returns the mean loss, writes dW, db and dA, leaves dZ in Z."""
    if loss == LOSS_SOFTMAX_CROSS_ENTROPY:
        return _softmax_xent(N, K, M, A, W, b, <const Py_ssize_t*> y,
                             sample_weight, weight_sum, Z, dW, db, dA)
    return _squared_error(N, K, M, A, W, b, <const floating*> y,
                          sample_weight, weight_sum, Z, dW, db, dA)


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
