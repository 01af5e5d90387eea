# The recurrent kernels' nogil passes, for compiled callers (seqclf._train's
# training loop); seqclf._kernels' forward and backward are their typed
# Python entry points, and their docstrings say what each argument holds.
from cython cimport floating

cdef Py_ssize_t scratch_elems(int cell, bint training, bint backward,
                              Py_ssize_t N, Py_ssize_t T, Py_ssize_t F,
                              Py_ssize_t H) noexcept nogil

cdef int forward_pass(
    int cell, bint reverse, int n_threads,
    Py_ssize_t N, Py_ssize_t T, Py_ssize_t F, Py_ssize_t H,
    const floating* X, const Py_ssize_t* lengths, const floating* W,
    const floating* U, const floating* b, const floating* b_hh,
    const floating* mask, floating* h_last, floating* h_seq,
    floating* h_prev, floating* gates, floating* aux,
) noexcept nogil

cdef int backward_pass(
    int cell, bint reverse, int n_threads,
    Py_ssize_t N, Py_ssize_t T, Py_ssize_t F, Py_ssize_t H,
    const floating* X, const Py_ssize_t* lengths, const floating* W,
    const floating* U, const floating* mask, const floating* h_seq,
    const floating* h_prev, const floating* gates, const floating* aux,
    const floating* dh_last, const floating* dh_seq, floating* dW,
    floating* dU, floating* db, floating* db_hh, floating* dX,
) noexcept nogil
