# The per-step recurrent products by seqclf's own micro-kernels on a packed
# operand (_step_gemm.h), for float or double through one fused type. The
# module that cimports this selects them once (step_select, after the gate
# math's level is chosen); where none applies (step_nr() == 0) callers keep
# BLAS's gemm_step (_blas.pxd).
from cython cimport floating

cdef extern from "_step_gemm.h" nogil:
    void seqclf_step_pack_f(Py_ssize_t k, Py_ssize_t n, const float* B,
                            Py_ssize_t ldb, int trans, Py_ssize_t nr, float* Bp)
    void seqclf_step_pack_d(Py_ssize_t k, Py_ssize_t n, const double* B,
                            Py_ssize_t ldb, int trans, Py_ssize_t nr, double* Bp)
    Py_ssize_t seqclf_step_packed_size(Py_ssize_t k, Py_ssize_t n, Py_ssize_t nr)
    Py_ssize_t seqclf_step_nr_f()
    Py_ssize_t seqclf_step_nr_d()
    void seqclf_step_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A,
                            Py_ssize_t lda, const float* Bp, float* C, Py_ssize_t ldc)
    void seqclf_step_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* A,
                            Py_ssize_t lda, const double* Bp, double* C,
                            Py_ssize_t ldc)
    void seqclf_step_select(int level, int enabled)
    void* seqclf_pack_alloc(size_t n_bytes)
    void seqclf_pack_free(void* p)


cdef inline Py_ssize_t step_nr(floating dummy) noexcept nogil:
    """Panel width of the micro-kernels for this dtype; 0 when there are none."""
    if floating is float:
        return seqclf_step_nr_f()
    else:
        return seqclf_step_nr_d()


cdef inline void step_pack(Py_ssize_t k, Py_ssize_t n, const floating* B,
                           Py_ssize_t ldb, bint trans, floating* Bp) noexcept nogil:
    """Pack B (k x n, or its transpose stored n x k when trans) for step_gemm."""
    if floating is float:
        seqclf_step_pack_f(k, n, B, ldb, trans, seqclf_step_nr_f(), Bp)
    else:
        seqclf_step_pack_d(k, n, B, ldb, trans, seqclf_step_nr_d(), Bp)


cdef inline void step_gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const floating* A, Py_ssize_t lda, const floating* Bp,
                           floating* C, Py_ssize_t ldc) noexcept nogil:
    """C (m x n) = A (m x k) @ B, B packed by step_pack; all row-major."""
    if floating is float:
        seqclf_step_gemm_f(m, n, k, A, lda, Bp, C, ldc)
    else:
        seqclf_step_gemm_d(m, n, k, A, lda, Bp, C, ldc)
