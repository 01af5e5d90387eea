# Row-major matrix products over SciPy's BLAS, for float and double through
# one fused type. The kernels call these from their own OpenMP threads, so the
# BLAS library must run single-threaded there (callers limit it with
# threadpoolctl). Sizes come in as Py_ssize_t and are narrowed to BLAS's int
# here, in one place: the kernels' entry points check beforehand that every
# dimension and leading dimension fits (_kernels._check_scratch).
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv


cdef inline void gemm(bint trans_a, bint trans_b, Py_ssize_t m_,
                      Py_ssize_t n_, Py_ssize_t k_, floating alpha,
                      const floating* A, Py_ssize_t lda_, const floating* B,
                      Py_ssize_t ldb_, floating beta, floating* C,
                      Py_ssize_t ldc_) noexcept nogil:
    """C (m x n) = alpha * op(A) @ op(B) + beta * C, all row-major.

    op(A) is m x k and op(B) is k x n. BLAS is column-major, so this computes
    C^T = op(B)^T @ op(A)^T by swapping the operands.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int m = <int> m_, n = <int> n_, k = <int> k_
    cdef int lda = <int> lda_, ldb = <int> ldb_, ldc = <int> ldc_
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> B, &ldb,
              <float*> A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> B, &ldb,
              <double*> A, &lda, &beta, C, &ldc)


# OpenBLAS multiplies small matrices with unpacked kernels and repacks both
# operands on every call otherwise. Its limits (0.3.2x, x86-64): at most 100^3
# multiply-adds, and for C = A @ B^T also at most 1200 entries of C. A chunk's
# per-step recurrent product (e.g. 32 x 128 @ 128 x 512) is above them, so U
# would be repacked at every step; cut into column blocks below the limits it
# ran faster, measured with a C loop over SciPy's OpenBLAS sgemm on one
# thread, forward and backward shapes (figures on the documentation's
# benchmarks page, docs/benchmarks.md, "Blocked step products"). The block
# width depends only on the shapes, never on the thread count. With another
# BLAS the blocks merely cost a few more calls.
cdef enum:
    SMALL_GEMM_MNK = 1000000
    SMALL_GEMM_MN_TRANS = 1200


cdef inline bint _is_small(bint trans_b, long long m, long long n, long long k) noexcept nogil:
    if m * n * k > SMALL_GEMM_MNK:
        return False
    return not trans_b or m * n <= SMALL_GEMM_MN_TRANS


cdef inline void gemm_step(bint trans_b, Py_ssize_t m, Py_ssize_t n_,
                           Py_ssize_t k_, const floating* A, Py_ssize_t lda,
                           const floating* B, Py_ssize_t ldb_, floating* C,
                           Py_ssize_t ldc) noexcept nogil:
    """C (m x n) = A @ op(B), row-major, as column blocks of small GEMMs.

    One row (a chunk of one sequence, e.g. predicting one sequence) is a
    matrix-vector product: OpenBLAS's GEMV runs it about twice as fast as
    its GEMM with one row (1 x 256 @ 256 x 1024: 17 vs 34 us here).
    """
    cdef int n = <int> n_, k = <int> k_, ldb = <int> ldb_
    cdef Py_ssize_t nb = n
    cdef Py_ssize_t j = 0
    cdef int one = 1
    cdef floating alpha = 1
    cdef floating beta = 0
    # Column-major view of row-major B: B^T (n x k) without op, (k x n) with.
    cdef char tr = b'T' if trans_b else b'N'
    cdef int rows = k if trans_b else n
    cdef int cols = n if trans_b else k
    if m == 1:
        if floating is float:
            sgemv(&tr, &rows, &cols, &alpha, <float*> B, &ldb, <float*> A,
                  &one, &beta, C, &one)
        else:
            dgemv(&tr, &rows, &cols, &alpha, <double*> B, &ldb, <double*> A,
                  &one, &beta, C, &one)
        return
    if not _is_small(trans_b, m, n, k):
        nb = 64
        while nb > 16 and not _is_small(trans_b, m, nb, k):
            nb //= 2
        if not _is_small(trans_b, m, nb, k):
            nb = n          # no block is small enough: one packed GEMM
    while j < n:
        if trans_b:
            gemm(False, True, m, min(nb, n - j), k, 1, A, lda, B + j * ldb,
                 ldb, 0, C + j, ldc)
        else:
            gemm(False, False, m, min(nb, n - j), k, 1, A, lda, B + j, ldb,
                 0, C + j, ldc)
        j += nb
