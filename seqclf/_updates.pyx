"""The optimizers' steps: dense passes over the parameter vector and lazy
steps of an embedding's rows, for SGD with momentum and Adam.

Each is a nogil function for seqclf._plan (``dense_step``, ``rows_step``,
declared in _updates.pxd, on an ``OptimizerStep``: the kind and constants
an optimizer of seqclf._optim hands over) and one nogil call from Python
(``dense_update``, ``rows_update``), which seqclf._optim's ``update`` and
``update_rows`` are.

The dense steps perform exactly the float operations of the NumPy
expressions of seqclf._optim's docstrings, in the same order and precision
(seqclf/_update.h; this module is built without floating-point
contraction), at every SIMD level; the row steps those of the same
expressions on the rows. Both run under the caller's floating-point
environment (no flush-to-zero, unlike the recurrent kernels).
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport pow, sqrt

from ._openmp cimport region_threads
from ._vector cimport BLOCK

from . import _kernels, _simd

cdef extern from "_update.h" nogil:
    void seqclf_adam_f(Py_ssize_t n, float* p, const float* g, float* m,
                       float* v, float b1, float c1, float b2, float c2,
                       float eps, float neg_lr)
    void seqclf_adam_d(Py_ssize_t n, double* p, const double* g, double* m,
                       double* v, double b1, double c1, double b2, double c2,
                       double eps, double neg_lr)
    void seqclf_sgd_f(Py_ssize_t n, float* p, const float* g, float* vel,
                      float neg_lr, float mu, int nesterov)
    void seqclf_sgd_d(Py_ssize_t n, double* p, const double* g, double* vel,
                      double neg_lr, double mu, int nesterov)
    void seqclf_update_select(int level)

# The updates' instruction-set level: the kernels' (SEQCLF_SIMD included).
seqclf_update_select(_simd.LEVELS.index(_kernels.simd_level()))

# The kinds by name, as the optimizers of seqclf._optim give them, and the
# state arrays each steps (SGD's velocity; Adam's m and v).
OPTIMIZER_KINDS = {"sgd": OPTIMIZER_SGD, "adam": OPTIMIZER_ADAM}
STATE_ARRAYS = {"sgd": 1, "adam": 2}


cdef void dense_step(int n_threads, const OptimizerStep* step, Py_ssize_t n,
                     floating* params, const floating* grad, floating* s0,
                     floating* s1) noexcept nogil:
    """One step of every parameter: s0 is SGD's velocity or Adam's m, s1
    Adam's v."""
    if step.kind == OPTIMIZER_ADAM:
        _adam(n_threads, n, params, grad, s0, s1,
              _adam_step_size(step.learning_rate, step.beta_1, step.beta_2,
                              step.t + 1),
              step.beta_1, step.beta_2, step.epsilon)
    elif step.kind == OPTIMIZER_SGD:
        _sgd(n_threads, n, params, grad, s0, step.learning_rate,
             step.momentum, step.nesterov)


cdef void rows_step(const OptimizerStep* step, Py_ssize_t K, Py_ssize_t D,
                    const Py_ssize_t* rows, floating* E, const floating* grad,
                    floating* s0, floating* s1) noexcept nogil:
    """One lazy step of the K distinct ``rows`` of E (D columns), their
    gradient ``grad`` (K, D) and their state."""
    if step.kind == OPTIMIZER_ADAM:
        _adam_rows(K, D, rows, E, grad, s0, s1,
                   _adam_step_size(step.learning_rate, step.beta_1,
                                   step.beta_2, step.t + 1),
                   step.beta_1, step.beta_2, step.epsilon)
    elif step.kind == OPTIMIZER_SGD:
        _sgd_rows(K, D, rows, E, grad, s0, step.learning_rate, step.momentum,
                  step.nesterov)


cdef OptimizerStep _settings(settings, Py_ssize_t t) except *:
    cdef OptimizerStep s
    kind, learning_rate, beta_1, beta_2, epsilon, momentum, nesterov = settings
    if kind not in OPTIMIZER_KINDS:
        raise ValueError(f"No optimizer step of kind {kind!r}; the kinds are "
                         f"{sorted(OPTIMIZER_KINDS)}.")
    s.kind = OPTIMIZER_KINDS[kind]
    s.learning_rate = learning_rate
    s.beta_1, s.beta_2, s.epsilon = beta_1, beta_2, epsilon
    s.momentum, s.nesterov = momentum, nesterov
    s.t = t
    return s


def dense_update(int n_threads, settings, Py_ssize_t t, floating[::1] params,
                 const floating[::1] grad, floating[::1] s0, s1):
    """One step of ``params`` in place: the optimizer's ``settings``
    ``(kind, learning_rate, beta_1, beta_2, epsilon, momentum, nesterov)``
    after ``t`` steps, its state ``s0`` (velocity, or m) and ``s1`` (v, or
    None); the arrays of one length and distinct."""
    cdef OptimizerStep step = _settings(settings, t)
    cdef floating[::1] v = s0 if s1 is None else s1
    if params.shape[0] > 0:
        with nogil:
            dense_step(n_threads, &step, params.shape[0], &params[0],
                       &grad[0], &s0[0], &v[0])


def rows_update(settings, Py_ssize_t t, floating[:, ::1] E,
                const Py_ssize_t[::1] rows, const floating[:, ::1] grad,
                floating[:, ::1] s0, s1):
    """One lazy step of the distinct ``rows`` of ``E`` and of their state,
    as :func:`dense_update` on those rows; ``grad`` holds their gradient."""
    cdef OptimizerStep step = _settings(settings, t)
    cdef floating[:, ::1] v = s0 if s1 is None else s1
    if rows.shape[0] > 0 and E.shape[1] > 0:
        with nogil:
            rows_step(&step, rows.shape[0], E.shape[1], &rows[0], &E[0, 0],
                      &grad[0, 0], &s0[0, 0], &v[0, 0])


def adam_step_size(double learning_rate, double beta_1, double beta_2,
                   Py_ssize_t t):
    """Adam's ``lr_t`` at step ``t``: ``lr sqrt(1 - b2^t) / (1 - b1^t)``."""
    return _adam_step_size(learning_rate, beta_1, beta_2, t)


cdef double _adam_step_size(double learning_rate, double beta_1,
                            double beta_2, Py_ssize_t t) noexcept nogil:
    return learning_rate * sqrt(1 - pow(beta_2, <double> t)) / (
        1 - pow(beta_1, <double> t))


cdef void _adam(int n_threads, Py_ssize_t n, floating* params,
                const floating* grad, floating* m, floating* v, double lr_t,
                double beta_1, double beta_2, double epsilon) noexcept nogil:
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, lo
    cdef floating b1 = <floating> beta_1, c1 = <floating> (1 - beta_1)
    cdef floating b2 = <floating> beta_2, c2 = <floating> (1 - beta_2)
    cdef floating eps = <floating> epsilon, neg_lr = <floating> (-lr_t)
    for blk in prange(n_blocks, num_threads=region_threads(n_threads, n_blocks, n),
                      schedule="static"):
        lo = blk * BLOCK
        if floating is float:
            seqclf_adam_f(min(BLOCK, n - lo), &params[lo], &grad[lo],
                          &m[lo], &v[lo], b1, c1, b2, c2, eps, neg_lr)
        else:
            seqclf_adam_d(min(BLOCK, n - lo), &params[lo], &grad[lo],
                          &m[lo], &v[lo], b1, c1, b2, c2, eps, neg_lr)


cdef void _sgd(int n_threads, Py_ssize_t n, floating* params,
               const floating* grad, floating* velocity, double learning_rate,
               double momentum, bint nesterov) noexcept nogil:
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, lo
    cdef floating neg_lr = -(<floating> learning_rate)
    cdef floating mu = <floating> momentum
    for blk in prange(n_blocks, num_threads=region_threads(n_threads, n_blocks, n),
                      schedule="static"):
        lo = blk * BLOCK
        if floating is float:
            seqclf_sgd_f(min(BLOCK, n - lo), &params[lo], &grad[lo],
                         &velocity[lo], neg_lr, mu, nesterov)
        else:
            seqclf_sgd_d(min(BLOCK, n - lo), &params[lo], &grad[lo],
                         &velocity[lo], neg_lr, mu, nesterov)


cdef void _adam_rows(Py_ssize_t K, Py_ssize_t D, const Py_ssize_t* rows,
                     floating* E, const floating* grad, floating* m,
                     floating* v, double lr_t, double beta_1, double beta_2,
                     double epsilon) noexcept nogil:
    """AdamOptimizer._step_rows' float operations, in its order."""
    cdef floating b1 = <floating> beta_1, c1 = <floating> (1 - beta_1)
    cdef floating b2 = <floating> beta_2, c2 = <floating> (1 - beta_2)
    cdef floating eps = <floating> epsilon, neg_lr = <floating> (-lr_t)
    cdef floating g, mm, vv, step
    cdef Py_ssize_t k, d, i
    for k in range(K):
        for d in range(D):
            i = rows[k] * D + d
            g = grad[k * D + d]
            mm = m[i] * b1
            mm = mm + c1 * g
            vv = v[i] * b2
            vv = vv + c2 * (g * g)
            m[i] = mm
            v[i] = vv
            step = <floating> sqrt(vv)
            step = step + eps
            step = mm / step
            step = step * neg_lr
            E[i] = E[i] + step


cdef void _sgd_rows(Py_ssize_t K, Py_ssize_t D, const Py_ssize_t* rows,
                    floating* E, const floating* grad, floating* velocity,
                    double learning_rate, double momentum,
                    bint nesterov) noexcept nogil:
    """SGDOptimizer._step_rows' float operations, in its order."""
    cdef floating neg_lr = -(<floating> learning_rate)
    cdef floating mu = <floating> momentum
    cdef floating step, vv
    cdef Py_ssize_t k, d, i
    for k in range(K):
        for d in range(D):
            i = rows[k] * D + d
            step = grad[k * D + d] * neg_lr
            vv = velocity[i] * mu
            vv = vv + step
            velocity[i] = vv
            if nesterov:
                step = step + mu * vv
                E[i] = E[i] + step
            else:
                E[i] = E[i] + vv
