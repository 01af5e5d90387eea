# Gate math for float or double: in-place sigmoid/tanh over contiguous arrays
# and the per-row GRU/LSTM updates. The float versions use vectorised
# polynomial approximations (see _vmath.h), compiled for several x86-64
# levels; a module that cimports this must call simd_init() once at import,
# which picks one for that module (otherwise it runs the baseline).
# Sizes are Py_ssize_t (ptrdiff_t in C): int arguments widen implicitly.
from cython cimport floating

cdef extern from "_vmath.h" nogil:
    void seqclf_sigmoid_f(float* x, Py_ssize_t n)
    void seqclf_tanh_f(float* x, Py_ssize_t n)
    void seqclf_sigmoid_d(double* x, Py_ssize_t n)
    void seqclf_tanh_d(double* x, Py_ssize_t n)
    void seqclf_rnn_tanh_row_f(Py_ssize_t n, float* x, const float* rec, const float* b)
    void seqclf_rnn_tanh_row_d(Py_ssize_t n, double* x, const double* rec, const double* b)
    void seqclf_rnn_tanh_backward_row_f(Py_ssize_t H, const float* h, float* dh, float* drow,
                                        float* srow)
    void seqclf_rnn_tanh_backward_row_d(Py_ssize_t H, const double* h, double* dh,
                                        double* drow, double* srow)
    void seqclf_lstm_forward_row_f(Py_ssize_t H, float* gates, const float* rec,
                                   const float* b, float* c, float* h)
    void seqclf_lstm_forward_row_d(Py_ssize_t H, double* gates, const double* rec,
                                   const double* b, double* c, double* h)
    void seqclf_gru_forward_row_f(Py_ssize_t H, float* gates, const float* rec,
                                  const float* b_ih, const float* b_hh, float* hn, float* h)
    void seqclf_gru_forward_row_d(Py_ssize_t H, double* gates, const double* rec,
                                  const double* b_ih, const double* b_hh, double* hn,
                                  double* h)
    void seqclf_gru_backward_row_f(Py_ssize_t H, const float* g, const float* hn,
                                   const float* hp, float* dh, float* drow, float* srow,
                                   float* drn)
    void seqclf_gru_backward_row_d(Py_ssize_t H, const double* g, const double* hn,
                                   const double* hp, double* dh, double* drow,
                                   double* srow, double* drn)
    void seqclf_lstm_backward_row_f(Py_ssize_t H, const float* g, const float* tc,
                                    const float* cp, const float* dh, float* dc,
                                    float* drow)
    void seqclf_lstm_backward_row_d(Py_ssize_t H, const double* g, const double* tc,
                                    const double* cp, const double* dh, double* dc,
                                    double* drow)
    # Levels 0, 1, 2: the indexes of seqclf._simd.LEVELS.
    bint seqclf_simd_usable(int level)
    int seqclf_simd_select(int level)
    int seqclf_simd_level()


cdef inline int simd_init() except -1:
    """Select the gate-math level: the best usable one, or SEQCLF_SIMD's.

    Raises (at the caller's import) for a value SEQCLF_SIMD does not know or
    a level this build or CPU cannot run; see seqclf/_simd.py.
    """
    from seqclf import _simd
    cdef int level = _simd._select(
        [lvl for lvl in range(len(_simd.LEVELS)) if seqclf_simd_usable(lvl)])
    if seqclf_simd_select(level) != 0:
        raise RuntimeError(f"gate-math level {_simd.LEVELS[level]!r} is not usable")
    return 0


cdef inline str simd_level_name():
    from seqclf import _simd
    return _simd.LEVELS[seqclf_simd_level()]


cdef inline void sigmoid_(floating* x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        seqclf_sigmoid_f(x, n)
    else:
        seqclf_sigmoid_d(x, n)


cdef inline void tanh_(floating* x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        seqclf_tanh_f(x, n)
    else:
        seqclf_tanh_d(x, n)


cdef inline void rnn_tanh_row(Py_ssize_t H, floating* x, const floating* rec,
                              const floating* b) noexcept nogil:
    if floating is float:
        seqclf_rnn_tanh_row_f(H, x, rec, b)
    else:
        seqclf_rnn_tanh_row_d(H, x, rec, b)


cdef inline void rnn_tanh_backward_row(Py_ssize_t H, const floating* h, floating* dh,
                                       floating* drow, floating* srow) noexcept nogil:
    if floating is float:
        seqclf_rnn_tanh_backward_row_f(H, h, dh, drow, srow)
    else:
        seqclf_rnn_tanh_backward_row_d(H, h, dh, drow, srow)


cdef inline void lstm_backward_row(Py_ssize_t H, const floating* g, const floating* tc,
                                   const floating* cp, const floating* dh,
                                   floating* dc, floating* drow) noexcept nogil:
    if floating is float:
        seqclf_lstm_backward_row_f(H, g, tc, cp, dh, dc, drow)
    else:
        seqclf_lstm_backward_row_d(H, g, tc, cp, dh, dc, drow)


cdef inline void lstm_forward_row(Py_ssize_t H, floating* gates, const floating* rec,
                                  const floating* b, floating* c,
                                  floating* h) noexcept nogil:
    if floating is float:
        seqclf_lstm_forward_row_f(H, gates, rec, b, c, h)
    else:
        seqclf_lstm_forward_row_d(H, gates, rec, b, c, h)


cdef inline void gru_forward_row(Py_ssize_t H, floating* gates, const floating* rec,
                                 const floating* b_ih, const floating* b_hh,
                                 floating* hn, floating* h) noexcept nogil:
    if floating is float:
        seqclf_gru_forward_row_f(H, gates, rec, b_ih, b_hh, hn, h)
    else:
        seqclf_gru_forward_row_d(H, gates, rec, b_ih, b_hh, hn, h)


cdef inline void gru_backward_row(Py_ssize_t H, const floating* g, const floating* hn,
                                  const floating* hp, floating* dh, floating* drow,
                                  floating* srow, floating* drn) noexcept nogil:
    if floating is float:
        seqclf_gru_backward_row_f(H, g, hn, hp, dh, drow, srow, drn)
    else:
        seqclf_gru_backward_row_d(H, g, hn, hp, dh, drow, srow, drn)
