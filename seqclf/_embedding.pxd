# The embedding's nogil lookup and row sums, for compiled callers
# (seqclf._plan's training plan); seqclf._embedding's forward and backward
# are their typed Python entry points.
from cython cimport floating

cdef Py_ssize_t lookup(int n_threads, Py_ssize_t N, Py_ssize_t T,
                       const Py_ssize_t* ids, const Py_ssize_t* lengths,
                       Py_ssize_t V, Py_ssize_t D, const floating* E,
                       floating* out) noexcept nogil

cdef void row_sums(int n_threads, Py_ssize_t K, Py_ssize_t D,
                   const Py_ssize_t* positions, const Py_ssize_t* bounds,
                   const floating* dX, floating* grad) noexcept nogil
