# Vector passes of the training plan (seqclf._plan), each also one nogil call
# from Python (seqclf._vector): sums, squares, finiteness, scaling.
from cython cimport floating

cdef enum:
    BLOCK = 8192        # elements per reduction block (fixed: see _vector.pyx)

cdef double _sum(const double* a, Py_ssize_t n) noexcept nogil

cdef double _squares(int n_threads, const floating* w, floating* grads,
                     const Py_ssize_t* ranges, Py_ssize_t n_ranges,
                     Py_ssize_t n, floating scale,
                     double* partial) noexcept nogil

cdef bint _all_finite(int n_threads, const floating* a,
                      Py_ssize_t n) noexcept nogil

cdef void _scale(int n_threads, floating* a, Py_ssize_t n,
                 floating f) noexcept nogil
