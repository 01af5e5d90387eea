# Row-major matrix products over SciPy's BLAS, for float and double through
# one fused type. The kernels call these from their own OpenMP threads, so the
# BLAS library must run single-threaded there (callers limit it with
# threadpoolctl).
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* A, int lda,
                      const floating* B, int ldb, floating beta,
                      floating* C, int ldc) noexcept nogil:
    """C (m x n) = alpha * op(A) @ op(B) + beta * C, all row-major.

    op(A) is m x k and op(B) is k x n. BLAS is column-major, so this computes
    C^T = op(B)^T @ op(A)^T by swapping the operands.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> B, &ldb,
              <float*> A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> B, &ldb,
              <double*> A, &lda, &beta, C, &ldc)
