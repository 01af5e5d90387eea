# The optimizers' steps, dense and on rows, for the training plan
# (seqclf._plan) and seqclf._optim: each optimizer hands its kind and
# constants in an OptimizerStep.
from cython cimport floating

cpdef enum OptimizerKind:
    OPTIMIZER_NONE = 0      # no step: the plan computes the gradient only
    OPTIMIZER_SGD = 1       # state: (velocity,)
    OPTIMIZER_ADAM = 2      # state: (m, v)

cdef struct OptimizerStep:
    int kind
    double learning_rate
    double beta_1, beta_2, epsilon      # Adam's
    double momentum                     # SGD's
    bint nesterov                       # SGD's
    Py_ssize_t t                        # steps taken before this one

cdef void dense_step(int n_threads, const OptimizerStep* step, Py_ssize_t n,
                     floating* params, const floating* grad, floating* s0,
                     floating* s1) noexcept nogil

cdef void rows_step(const OptimizerStep* step, Py_ssize_t K, Py_ssize_t D,
                    const Py_ssize_t* rows, floating* E, const floating* grad,
                    floating* s0, floating* s1) noexcept nogil
