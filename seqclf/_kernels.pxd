# The recurrent kernels' nogil passes, for compiled callers (seqclf._plan's
# training plan). A pass takes a LayerCall, one direction of one layer on one
# batch, and a PassConfig, how to run it; seqclf._kernels' forward and
# backward are their typed Python entry points and build both.
from cython cimport floating


cdef enum ThreadSplit:
    # How a pass shares its work among threads.
    SPLIT_CHUNKS = 0        # whole chunks of chunk_size() sequences each


cdef enum Precision:
    # What the arithmetic runs in.
    PRECISION_DTYPE = 0     # the arrays' dtype


cdef enum:
    # What a pass returns; it writes nothing unless it returns PASS_OK.
    PASS_OK = 0
    PASS_NO_MEMORY = -1     # the scratch memory could not be allocated
    PASS_UNSUPPORTED = -2   # a PassConfig value the passes do not implement


cdef struct PassConfig:
    int n_threads               # at most this many threads, >= 1
    # Reserved for what comes next: the passes implement only the values
    # shown and refuse any other with PASS_UNSUPPORTED.
    ThreadSplit split           # SPLIT_CHUNKS
    Precision precision         # PRECISION_DTYPE


cdef struct LayerCall:
    # N >= 1 sequences of T steps of F features, H units, G = n_gates * H
    # gate columns (the header of seqclf/_kernels.pyx gives the gate order).
    # Arrays are C-contiguous and of one float dtype, that of the pass's
    # specialisation; they are void pointers only because a struct field
    # cannot be fused. IN: read only; OUT: overwritten, allocated by the
    # caller; IN-cache: written by the training forward, read by the
    # backward. The forward uses the fields up to aux, the backward all
    # but b, b_hh and h_last.
    int cell                    # a code of CELL_CODES
    bint reverse                # from each sequence's last valid step back
    Py_ssize_t N, T, F, H
    const void* X               # IN (N, T, F)
    const Py_ssize_t* lengths   # IN (N,), 1 <= lengths[n] <= T
    const void* W               # IN (F, G)
    const void* U               # IN (H, G)
    const void* b               # IN (G,): b, or b_ih for the GRU
    const void* b_hh            # IN (G,) GRU only, else NULL
    const void* mask            # IN (N, H) recurrent dropout, or NULL
    void* h_last                # OUT (N, H)
    void* h_seq                 # OUT / IN-cache (N, T, H); NULL: inference
    void* h_prev                # OUT / IN-cache (N, T, H); NULL: inference
    void* gates                 # OUT / IN-cache (N, T, G), GRU/LSTM training
    void* aux                   # OUT / IN-cache (N, T, H): GRU hn, LSTM c
    const void* dh_last         # IN (N, H) or NULL (not both dh_ NULL)
    const void* dh_seq          # IN (N, T, H) or NULL
    void* dW                    # OUT (F, G)
    void* dU                    # OUT (H, G)
    void* db                    # OUT (G,): db, or db_ih for the GRU
    void* db_hh                 # OUT (G,) GRU only, else NULL
    void* dX                    # OUT (N, T, F), or NULL to skip it


cdef inline PassConfig pass_config(int n_threads) noexcept nogil:
    """The configuration the passes implement, on n_threads threads."""
    cdef PassConfig config
    config.n_threads = n_threads
    config.split = SPLIT_CHUNKS
    config.precision = PRECISION_DTYPE
    return config


# The dummy's type picks float or double; pass <floating*> NULL. The sizes
# must have passed _check_scratch (seqclf._kernels).
cdef int forward_pass(floating* dummy, const LayerCall* call,
                      const PassConfig* config) noexcept nogil
cdef int backward_pass(floating* dummy, const LayerCall* call,
                       const PassConfig* config) noexcept nogil


# For seqclf._kernels_testing only: the per-step products' switch and path
# live in this module's copy of _step_gemm.h, so tests reach them here.
cdef bint select_step_products(bint own) noexcept nogil
cdef int run_step_product(bint transpose, Py_ssize_t repeat, Py_ssize_t m,
                          const floating* A, Py_ssize_t H, Py_ssize_t G,
                          const floating* U, floating* out) noexcept nogil
