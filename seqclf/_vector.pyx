"""Vector passes of the training plan: sums, the L2 penalty, the gradient's
norm, finiteness checks and scaling.

Each is a nogil function for seqclf._plan (declared in _vector.pxd) and,
where Python needs it, one nogil call from Python. Nothing here knows of
networks or scikit-learn.

Reproducibility. Reductions (the norm, the penalty) are summed in float64
per fixed block of ``BLOCK`` elements, and the blocks' sums in block order,
so that the result does not depend on the number of threads. The
elementwise passes run under the caller's floating-point environment.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport isfinite
from libc.stdlib cimport free, malloc

from ._openmp cimport region_threads


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
