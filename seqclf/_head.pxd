# The heads and losses the training plan (seqclf._plan) knows, by kind; the
# thin Python classes of seqclf._network name these kinds.
from cython cimport floating

cpdef enum HeadKind:
    HEAD_DENSE = 0                      # Z = A W + b

cpdef enum LossKind:
    LOSS_SOFTMAX_CROSS_ENTROPY = 0      # y: class indices (intp)
    LOSS_SQUARED_ERROR = 1              # y: targets (N, M), the network's dtype

cdef double head_loss(
    int loss, Py_ssize_t N, Py_ssize_t K, Py_ssize_t M, const floating* A,
    const floating* W, const floating* b, const void* y,
    const double* sample_weight, double weight_sum, floating* Z,
    floating* dW, floating* db, floating* dA,
) noexcept nogil
