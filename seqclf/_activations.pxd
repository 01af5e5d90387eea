# In-place gate nonlinearities over contiguous arrays, float or double.
# The float versions are vectorised polynomial approximations (see _vmath.h).
from cython cimport floating

cdef extern from "_vmath.h" nogil:
    void seqclf_sigmoid_f(float* x, int n)
    void seqclf_tanh_f(float* x, int n)
    void seqclf_sigmoid_d(double* x, int n)
    void seqclf_tanh_d(double* x, int n)


cdef inline void sigmoid_(floating* x, int n) noexcept nogil:
    if floating is float:
        seqclf_sigmoid_f(x, n)
    else:
        seqclf_sigmoid_d(x, n)


cdef inline void tanh_(floating* x, int n) noexcept nogil:
    if floating is float:
        seqclf_tanh_f(x, n)
    else:
        seqclf_tanh_d(x, n)
