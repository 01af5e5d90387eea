"""The training plan: the one way a mini-batch is trained.

A :class:`TrainingPlan` runs groups of mini-batches of one fit (or one
batch of :meth:`seqclf._network.RecurrentNetwork.train_step`), each in
compiled code from gathering its rows to the optimizer's step, with no
Python between the pieces: the rows gathered (token ids looked up in the
embedding), the dropout masks made from uniform draws, every layer's
training forward pass (seqclf._kernels), the head and loss of their kinds
(seqclf._head), BPTT, the embedding rows' gradient, the L2 penalty, the
checks that the loss and the gradient are finite, clipping, the
optimizer's step of its kind (seqclf._updates) and the check that the
updated weights are finite. The buffers live as long as the plan; a batch
creates no Python object.

The kinds of head, loss and optimizer are explicit: a kind the plan does
not know is refused when it is built, never routed elsewhere. The NumPy
forward and backward of a whole network in seqclf.reference is what the
plan is tested against.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport NAN, INFINITY, isfinite, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from ._embedding cimport lookup, row_sums
from ._head cimport LOSS_SOFTMAX_CROSS_ENTROPY, head_loss
from ._kernels cimport (
    LayerCall, PassConfig, backward_pass, forward_pass, pass_config,
)
from ._openmp cimport region_threads
from ._updates cimport (
    OPTIMIZER_NONE, OptimizerStep, dense_step, rows_step,
)
from ._vector cimport BLOCK, _all_finite, _scale, _squares, _sum

import numpy as np

from . import _head, _kernels, _updates


# What a run stops on (besides its count of batches).
cdef enum:
    COMPLETED = 0
    BAD_LOSS = 1          # the batch's loss is NaN or infinite
    BAD_GRADIENT = 2      # an entry of the gradient is
    BAD_NORM = 3          # the gradient's norm is (clipping)
    BAD_WEIGHTS = 4       # an updated parameter is
    NO_MEMORY = 5         # a kernel's scratch could not be allocated
    NO_DRAWS = 6          # draws holds fewer dropout draws than needed
    FAULT = 7             # stopped by the fault hook (see inject)

NO_MEMORY_STATUS = NO_MEMORY
FAULT_STATUS = FAULT
# The statuses of a divergence, and what went non-finite.
DIVERGED = {BAD_LOSS: "the training loss", BAD_GRADIENT: "a gradient",
            BAD_NORM: "the gradient's norm", BAD_WEIGHTS: "an updated weight"}

# The faults the tests can inject at one batch (see TrainingPlan.inject):
# a value made non-finite where the checks must see it, or a stop before
# the batch, before its update or after it.
cdef enum:
    FAULT_NONE = 0
    FAULT_LOSS = 1
    FAULT_GRADIENT = 2
    FAULT_NORM = 3
    FAULT_WEIGHT = 4
    FAULT_EMBEDDING_ROW = 5
    FAULT_BEFORE_BATCH = 6
    FAULT_BEFORE_UPDATE = 7
    FAULT_AFTER_UPDATE = 8

FAULTS = {"loss": FAULT_LOSS, "gradient": FAULT_GRADIENT, "norm": FAULT_NORM,
          "weight": FAULT_WEIGHT, "embedding_row": FAULT_EMBEDDING_ROW,
          "before_batch": FAULT_BEFORE_BATCH,
          "before_update": FAULT_BEFORE_UPDATE,
          "after_update": FAULT_AFTER_UPDATE}


cdef struct _UnitPlan:
    # One direction of one layer: its kernel, sizes, parameters, gradients
    # and the buffers of a batch (capacity B x T steps).
    int cell
    bint reverse
    Py_ssize_t F, H
    void* W
    void* U
    void* b
    void* b_hh            # GRU only, else NULL
    void* dW
    void* dU
    void* db
    void* db_hh
    void* h_seq           # caches (B, T, H) ...
    void* h_prev
    void* gates           # ... (B, T, G), GRU/LSTM only
    void* aux             # (B, T, H), GRU/LSTM only
    void* h_last          # (B, H)
    void* dX              # (B, T, F), layers above the first
    void* dh_seq          # (B, T, H) from the layer above, two directions
    void* dh_last         # (B, H) from the head, two directions
    void* in_mask         # (B, F) input dropout mask, or NULL
    void* x               # (B, T, F) the input after it, or NULL
    void* rec_mask        # (B, H) recurrent dropout mask, or NULL


cdef void _dropout_mask(const floating* draws, floating* mask, Py_ssize_t n,
                        double rate) noexcept nogil:
    """The inverted-dropout mask from uniform draws: ``(draws >= rate) *
    (1 / (1 - rate))`` in the network's dtype, the rate compared in that
    dtype (as NumPy compares an array with a float)."""
    cdef floating threshold = <floating> rate
    cdef floating kept = <floating> (1.0 / (1.0 - rate))
    cdef Py_ssize_t i
    for i in range(n):
        mask[i] = kept if draws[i] >= threshold else 0


cdef void _mask_steps(const floating* a, const floating* mask, floating* out,
                      Py_ssize_t N, Py_ssize_t T, Py_ssize_t F) noexcept nogil:
    """``out[n, t] = a[n, t] * mask[n]`` (out may be a)."""
    cdef Py_ssize_t n, t, f
    cdef const floating* m
    for n in range(N):
        m = mask + n * F
        for t in range(T):
            for f in range(F):
                out[(n * T + t) * F + f] = a[(n * T + t) * F + f] * m[f]


cdef void* _address(a):
    return <void*> <size_t> a.__array_interface__["data"][0]


cdef void* _writable(a, name) except? NULL:
    """The address of an array the plan writes into; a read-only one (a
    memory map, a view of bytes) is refused rather than written through."""
    if not a.flags.writeable:
        raise ValueError(f"The training plan writes into {name}, which is "
                         f"read-only.")
    return _address(a)


cdef void* _buffer(list keep, Py_ssize_t size, dtype) except? NULL:
    """A new buffer of ``size`` entries, kept alive in ``keep``."""
    a = np.empty(max(size, 1), dtype=dtype)
    keep.append(a)
    return _address(a)


def _state_of(optimizer):
    """The state arrays of an optimizer of a kind the plan knows, as many
    as its kind steps."""
    kind = optimizer.kind
    _kind(_updates.OPTIMIZER_KINDS, kind, "optimizer")
    state = tuple(optimizer.state())
    if len(state) != _updates.STATE_ARRAYS[kind]:
        raise ValueError(f"An optimizer of kind {kind!r} steps "
                         f"{_updates.STATE_ARRAYS[kind]} state array(s), got "
                         f"{len(state)}.")
    return state


def _kind(kinds, kind, what):
    """The code of ``kind`` among ``kinds``; a TypeError for any other."""
    if not isinstance(kind, str) or kind not in kinds:
        raise TypeError(
            f"The training plan has no {what} of kind {kind!r}; it knows "
            f"{sorted(kinds)}. A new {what} is added as a kind of the plan "
            f"(see docs/development.md).")
    return kinds[kind]


cdef class TrainingPlan:
    """Mini-batches of one fit, run by :meth:`run` in one compiled call each.

    Each batch runs the steps listed in the module's docstring with the
    same float operations in the same order whichever group it is run in,
    so that running a fit's batches one per call or many per call gives
    the same model bit for bit, on any number of threads. The dropout masks
    are made from uniform draws the caller takes for each group of batches
    (``draws`` of :meth:`run`); with an embedding, the rows a batch touches
    are looked up, get their gradient and are stepped lazily.

    Parameters
    ----------
    units : list of tuple
        Per layer, then per direction: ``(code, reverse, n_in, n_hidden, W,
        U, b, b_hh, dW, dU, db, db_hh)``, the parameter and gradient arrays
        being views into ``coefs`` and ``grads`` (``b_hh``, ``db_hh`` None
        but for the GRU).
    n_directions : {1, 2}
    X : ndarray of shape (n, T, F), or (n, T) token ids (intp)
        The training set, C-contiguous, of the network's dtype.
    lengths : ndarray of shape (n,), intp, within [1, T]
    y : ndarray
        Class indices (n,) intp for softmax cross-entropy, or targets (n, M)
        of the network's dtype for squared error; checked by the caller.
    sample_weight : ndarray of shape (n,), float64, or None
    batch_size : int
    head : tuple
        ``(kind, W, b, dW, db)``: a kind of ``seqclf._head.HEAD_KINDS``
        ("dense") and its parameters and gradients.
    loss : str
        A kind of ``seqclf._head.LOSS_KINDS``.
    coefs, grads : ndarray
        The dense parameter vector and its gradient (all the above are
        views into them).
    penalised : ndarray of shape (k, 2), intp
        ``[start, stop)`` ranges of the penalised weights in ``coefs``.
    optimizer : object or None
        Steps ``coefs``: ``kind`` (a key of
        ``seqclf._updates.OPTIMIZER_KINDS``), ``settings()``, ``state()``
        (arrays of ``coefs``' size and dtype), its step count ``t`` and
        ``advance(n)``, as the optimizers of seqclf._optim. None computes
        the gradient only: no checks, clipping or step (``train_step``).
    alpha : float, default=0.0
        L2 penalty ``alpha / 2 * ||w||^2 / sum(sample_weight)`` on the
        ``penalised`` weights.
    clip_norm : float or None, default=None
        Largest global L2 norm of a batch's gradient (the embedding rows'
        share included).
    dropout, recurrent_dropout : float in [0, 1)
        Rates of the input and recurrent dropout masks, per sequence and
        unit, fixed over the steps.
    embedding : ndarray of shape (V, F) or None
        The embedding matrix (a view into the network's parameters) when
        ``X`` holds token ids.
    embedding_optimizer : object or None
        Its optimizer, as ``optimizer``, stepping the rows lazily.
    """

    cdef _UnitPlan* units
    cdef Py_ssize_t n_units, n_layers, n_dir
    cdef bint double_
    cdef int loss_kind
    cdef Py_ssize_t n, T, F, B, K, M, n_coefs, n_penalised
    cdef void* X
    cdef const Py_ssize_t* lengths
    cdef void* y
    cdef const double* sw
    cdef void* Xb
    cdef Py_ssize_t* lb
    cdef void* yb
    cdef double* swb
    cdef void* A
    cdef void* Z
    cdef void* dA
    cdef void* hW
    cdef void* hb
    cdef void* hdW
    cdef void* hdb
    cdef void* coefs
    cdef void* grads
    cdef void* m
    cdef void* v
    cdef const Py_ssize_t* penalised
    cdef double* partial
    cdef void** seq_out               # per layer: (B, T, 2H), or NULL
    cdef double alpha, clip_norm, dropout, recurrent_dropout
    cdef object _optimizer
    cdef object _embedding_optimizer
    # With an embedding: its matrix (V, F) and optimizer state, the batch's
    # ids, their positions sorted by id (with room for the merge), the
    # distinct ids, their bounds and gradient rows.
    cdef void* E
    cdef void* Em
    cdef void* Ev
    cdef Py_ssize_t V
    cdef Py_ssize_t* ids
    cdef Py_ssize_t* keys
    cdef Py_ssize_t* pos
    cdef Py_ssize_t* rows
    cdef Py_ssize_t* bounds
    cdef void* egrad
    # The fault hook: the batch (counted over the plan's life, skipped
    # ones aside) at which the fault of kind fault_kind happens.
    cdef Py_ssize_t n_run, fault_at
    cdef int fault_kind
    cdef readonly Py_ssize_t draws_per_sequence
    cdef readonly Py_ssize_t draws_used   # by the last run
    cdef readonly Py_ssize_t n_rows       # embedding rows of the last batch
    cdef readonly double last_loss        # of the last batch run
    cdef list _keep                   # every array the pointers point into

    def __cinit__(self):
        self.units = NULL
        self.seq_out = NULL
        self.partial = NULL

    def __init__(self, units, int n_directions, X, lengths, y, sample_weight,
                 Py_ssize_t batch_size, head, loss, coefs, grads, penalised,
                 optimizer=None, *, double alpha=0.0, clip_norm=None,
                 double dropout=0.0, double recurrent_dropout=0.0,
                 embedding=None, embedding_optimizer=None):
        cdef Py_ssize_t i, l, d, G
        cdef _UnitPlan* u
        head_kind, head_W, head_b, head_dW, head_db = head
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        _kind(_head.HEAD_KINDS, head_kind, "head")
        self.loss_kind = _kind(_head.LOSS_KINDS, loss, "loss")
        state = embedding_state = ()
        if optimizer is not None:
            state = _state_of(optimizer)
        if embedding is not None:
            if embedding_optimizer is None and optimizer is not None:
                raise ValueError("An embedding needs its own optimizer.")
            if embedding_optimizer is not None:
                embedding_state = _state_of(embedding_optimizer)
        dtype = X.dtype if embedding is None else embedding.dtype
        for a in state:
            if a.dtype != coefs.dtype or a.size != coefs.shape[0]:
                raise ValueError("The optimizer's state must match the "
                                 "parameters' size and dtype.")
        for a in embedding_state:
            if a.dtype != embedding.dtype or a.shape != embedding.shape:
                raise ValueError("The embedding optimizer's state must match "
                                 "the embedding's shape and dtype.")
        self._optimizer = optimizer
        self._embedding_optimizer = embedding_optimizer
        keep = [X, lengths, y, sample_weight, head_W, head_b, head_dW,
                head_db, coefs, grads, penalised]
        self.double_ = dtype == np.float64
        self.n, self.T = X.shape[0], X.shape[1]
        self.F = X.shape[2] if embedding is None else embedding.shape[1]
        self.B = B = min(batch_size, self.n)
        T = self.T
        self.n_dir = n_directions
        self.n_units = len(units)
        self.n_layers = self.n_units // n_directions
        self.K, self.M = head_W.shape
        self.n_coefs = coefs.shape[0]
        self.alpha = alpha
        self.clip_norm = -1.0 if clip_norm is None else float(clip_norm)
        self.dropout, self.recurrent_dropout = dropout, recurrent_dropout
        self.draws_per_sequence = 0
        self.n_run = self.fault_at = 0
        self.fault_kind = FAULT_NONE

        self.units = <_UnitPlan*> malloc(self.n_units * sizeof(_UnitPlan))
        self.seq_out = <void**> malloc(self.n_layers * sizeof(void*))
        n_sums = max(self.n_coefs, 0 if embedding is None
                     else self.B * self.T * embedding.shape[1])
        self.partial = <double*> malloc(
            ((n_sums + BLOCK - 1) // BLOCK + 1) * sizeof(double))
        if self.units == NULL or self.seq_out == NULL or self.partial == NULL:
            raise MemoryError("Cannot allocate the training plan.")
        for i, (code, reverse, F, H, W, U, b, b_hh, dW, dU, db, db_hh) in (
                enumerate(units)):
            l, d = divmod(i, n_directions)
            keep += [W, U, b, b_hh, dW, dU, db, db_hh]
            # Every size the batches can take, on as many threads as chunks.
            _kernels._check_scratch(code, True, True, B, T, F, H, B,
                                    dtype.itemsize)
            G = U.shape[1]
            u = &self.units[i]
            u.cell, u.reverse, u.F, u.H = code, reverse, F, H
            u.W, u.U, u.b = _address(W), _address(U), _address(b)
            u.dW = _writable(dW, "the gradient")
            u.dU = _writable(dU, "the gradient")
            u.db = _writable(db, "the gradient")
            u.b_hh = NULL if b_hh is None else _address(b_hh)
            u.db_hh = (NULL if db_hh is None
                       else _writable(db_hh, "the gradient"))
            u.h_seq = _buffer(keep, B * T * H, dtype)
            u.h_prev = _buffer(keep, B * T * H, dtype)
            u.gates = u.aux = NULL
            if G > H:
                u.gates = _buffer(keep, B * T * G, dtype)
                u.aux = _buffer(keep, B * T * H, dtype)
            u.h_last = _buffer(keep, B * H, dtype)
            u.dX = (_buffer(keep, B * T * F, dtype)
                    if l > 0 or embedding is not None else NULL)
            last = l == self.n_layers - 1
            two = n_directions == 2
            u.dh_seq = (_buffer(keep, B * T * H, dtype) if two and not last
                        else NULL)
            u.dh_last = _buffer(keep, B * H, dtype) if two and last else NULL
            if d == 0:
                self.seq_out[l] = (_buffer(keep, B * T * 2 * H, dtype)
                                   if two and not last else NULL)
            u.in_mask = u.x = u.rec_mask = NULL
            if dropout > 0:
                u.in_mask = _buffer(keep, B * F, dtype)
                u.x = _buffer(keep, B * T * F, dtype)
            if recurrent_dropout > 0:
                u.rec_mask = _buffer(keep, B * H, dtype)
            self.draws_per_sequence += (F * (dropout > 0)
                                        + H * (recurrent_dropout > 0))
        self.X = _address(X)
        self.lengths = <const Py_ssize_t*> _address(lengths)
        self.y = _address(y)
        self.sw = NULL
        if sample_weight is not None:
            self.sw = <const double*> _address(sample_weight)
        self.E = self.Em = self.Ev = NULL
        self.n_rows = 0
        if embedding is None:
            self.Xb = _buffer(keep, B * T * self.F, dtype)
        else:
            keep += [embedding]
            self.E = (_address(embedding) if embedding_optimizer is None
                      else _writable(embedding, "the embedding"))
            self.V = embedding.shape[0]
            if embedding_state:
                keep += list(embedding_state)
                self.Em = _writable(embedding_state[0],
                                    "an optimizer's state")
                self.Ev = (_writable(embedding_state[1],
                                     "an optimizer's state")
                           if embedding_optimizer.kind == "adam" else NULL)
            self.ids = <Py_ssize_t*> _buffer(keep, B * T, np.intp)
            self.Xb = _buffer(keep, B * T * self.F, dtype)     # looked up
            P = B * T
            self.keys = <Py_ssize_t*> _buffer(keep, 2 * P, np.intp)
            self.pos = <Py_ssize_t*> _buffer(keep, 2 * P, np.intp)
            self.rows = <Py_ssize_t*> _buffer(keep, P, np.intp)
            self.bounds = <Py_ssize_t*> _buffer(keep, P + 1, np.intp)
            self.egrad = _buffer(keep, P * self.F, dtype)
        self.lb = <Py_ssize_t*> _buffer(keep, B, np.intp)
        self.yb = (_buffer(keep, B, np.intp)
                   if self.loss_kind == LOSS_SOFTMAX_CROSS_ENTROPY
                   else _buffer(keep, B * self.M, dtype))
        self.swb = <double*> _buffer(keep, B, np.float64)
        self.A = _buffer(keep, B * self.K, dtype) if n_directions == 2 else NULL
        self.Z = _buffer(keep, B * self.M, dtype)
        self.dA = _buffer(keep, B * self.K, dtype)
        self.hW, self.hb = _address(head_W), _address(head_b)
        self.hdW = _writable(head_dW, "the gradient")
        self.hdb = _writable(head_db, "the gradient")
        self.coefs = (_address(coefs) if optimizer is None
                      else _writable(coefs, "the parameters"))
        self.grads = _writable(grads, "the gradient")
        self.penalised = <const Py_ssize_t*> _address(penalised)
        self.n_penalised = penalised.shape[0]
        self.m = self.v = NULL
        if state:
            keep += list(state)
            self.m = _writable(state[0], "an optimizer's state")
            self.v = (_writable(state[1], "an optimizer's state")
                      if optimizer.kind == "adam" else NULL)
        self._keep = keep

    def __dealloc__(self):
        free(self.units)
        free(self.seq_out)
        free(self.partial)

    def inject(self, Py_ssize_t at, what):
        """Make batch ``at`` (1-based, counted over the plan's life, skipped
        batches aside) fail as ``what`` (a key of :data:`FAULTS`) says: a
        value made non-finite where the checks must catch it, or a stop
        with status ``FAULT_STATUS`` before the batch, before its update or
        after it. For the tests of what the estimator does then; one
        comparison per batch, nothing in the kernels' loops."""
        if what not in FAULTS or at < 1:
            raise ValueError(f"what must be one of {sorted(FAULTS)} and at "
                             f">= 1, got {what!r} at {at}.")
        self.fault_at = at
        self.fault_kind = FAULTS[what]

    def embedding_gradient(self):
        """``(rows, grad)`` of the last batch run with an embedding: its
        distinct ids, increasing, and their gradient rows (copies)."""
        if self.E == NULL:
            return None
        cdef Py_ssize_t n = self.n_rows
        rows = np.empty(n, dtype=np.intp)
        grad = np.empty((n, self.F),
                        dtype=np.float64 if self.double_ else np.float32)
        if n:
            memcpy(_address(rows), self.rows, n * sizeof(Py_ssize_t))
            memcpy(_address(grad), self.egrad, n * self.F * grad.itemsize)
        return rows, grad

    def run(self, const Py_ssize_t[::1] order, Py_ssize_t first,
            Py_ssize_t count, int n_threads, double loss_sum=0.0, draws=None):
        """Train on batches ``first, ..., first + count - 1`` of ``order``.

        Batch ``k`` holds the rows ``order[k * batch_size:(k + 1) *
        batch_size]``; one whose sample weights are all zero is skipped.
        The optimizers' settings and step counts are read at the start; at
        the end each is advanced by the steps taken. ``loss_sum`` is the
        epoch's sum so far. With dropout, ``draws`` holds the uniform draws
        of the masks (of the network's dtype): :attr:`draws_per_sequence`
        per sequence of each batch run (skipped batches draw none), taken
        in order, per batch and layer the input masks of its directions,
        then their recurrent masks; :attr:`draws_used` says how many the
        call took.

        Returns
        -------
        next_batch : int
            The batch after the last one run (the failed one included).
        n_updates : int
            Optimizer steps taken (a failed check of the updated weights
            counts its step).
        loss_sum : float
            ``loss_sum`` plus, batch after batch, each completed batch's
            mean loss times its number of sequences.
        status : int
            0; or what stopped the loop at batch ``next_batch - 1``, the
            model being then part-way through that batch: a key of
            :data:`DIVERGED`, ``NO_MEMORY_STATUS``, ``FAULT_STATUS``, or 6
            when ``draws`` held too few numbers.
        """
        cdef Py_ssize_t n_order = order.shape[0]
        cdef Py_ssize_t stop = min(first + count, (n_order + self.B - 1) // self.B)
        cdef Py_ssize_t k = first, updates = 0, cursor = 0
        cdef double total = loss_sum
        cdef int status = COMPLETED
        cdef void* draws_p = NULL
        cdef Py_ssize_t n_draws = 0
        cdef Py_ssize_t i, n_bad = 0
        cdef OptimizerStep step, estep
        if n_order != self.n or first < 0 or count < 0:
            raise ValueError(f"order must hold the {self.n} rows' indices, "
                             f"first and count be non-negative.")
        with nogil:
            for i in range(n_order):
                n_bad += order[i] < 0 or order[i] >= self.n
        if n_bad:
            raise ValueError(f"order holds indices outside [0, {self.n}).")
        if self.draws_per_sequence > 0:
            if (draws is None or draws.ndim != 1
                    or not draws.flags.c_contiguous
                    or draws.dtype != (np.float64 if self.double_
                                       else np.float32)):
                raise ValueError("draws must be a contiguous vector of the "
                                 "network's dtype.")
            n_draws = draws.shape[0]
            draws_p = _address(draws)
        step = _step_of(self._optimizer)
        estep = _step_of(self._embedding_optimizer)
        with nogil:
            while k < stop and status == COMPLETED:
                if self.double_:
                    status = self._batch(<double*> NULL, &order[0], k,
                                         n_threads, &step, &estep, &updates,
                                         &total, draws_p, n_draws, &cursor)
                else:
                    status = self._batch(<float*> NULL, &order[0], k,
                                         n_threads, &step, &estep, &updates,
                                         &total, draws_p, n_draws, &cursor)
                k += 1
        self.draws_used = cursor
        if updates:
            self._optimizer.advance(updates)
            if self._embedding_optimizer is not None:
                self._embedding_optimizer.advance(updates)
        return k, updates, total, status

    cdef int _batch(self, floating* dummy, const Py_ssize_t* order,
                    Py_ssize_t k, int nt, const OptimizerStep* step0,
                    const OptimizerStep* estep0, Py_ssize_t* updates,
                    double* total, void* draws, Py_ssize_t n_draws,
                    Py_ssize_t* cursor) noexcept nogil:
        cdef Py_ssize_t B = self.B, F = self.F, M = self.M, K = self.K
        cdef Py_ssize_t D = self.n_dir, L = self.n_layers
        cdef const Py_ssize_t* rows = order + k * B
        cdef Py_ssize_t N = min(B, self.n - k * B)
        cdef Py_ssize_t i, l, d, Tb = 0, H, Fl, e, n_rows = 0
        cdef const double* swb = NULL
        cdef double weight_sum = <double> N, loss, sq, norm, scale
        cdef bint any_weight
        cdef _UnitPlan* u
        cdef floating* inp
        cdef floating* x
        cdef floating* src
        cdef floating* dst
        cdef floating* A
        cdef floating* dh_last
        cdef const floating* dh_seq
        cdef floating* Xb = <floating*> self.Xb
        cdef const floating* X = <const floating*> self.X
        cdef Py_ssize_t whole[2]
        cdef LayerCall call
        cdef PassConfig config = pass_config(nt)
        cdef OptimizerStep step = step0[0]
        cdef OptimizerStep estep = estep0[0]
        cdef int fault = FAULT_NONE
        step.t = step0.t + updates[0]
        estep.t = estep0.t + updates[0]

        # The batch: its weights (skipped when all zero), lengths, rows.
        if self.sw != NULL:
            any_weight = False
            for i in range(N):
                self.swb[i] = self.sw[rows[i]]
                any_weight = any_weight or self.swb[i] != 0
            if not any_weight:
                return COMPLETED
            swb = self.swb
            weight_sum = _sum(swb, N)
        if self.draws_per_sequence > 0:
            if cursor[0] + N * self.draws_per_sequence > n_draws:
                return NO_DRAWS
        self.n_run += 1
        if self.n_run == self.fault_at:
            fault = self.fault_kind
            if fault == FAULT_BEFORE_BATCH:
                return FAULT
        for i in range(N):
            self.lb[i] = self.lengths[rows[i]]
            Tb = max(Tb, self.lb[i])
        if self.E == NULL:
            for i in prange(N, num_threads=region_threads(nt, N, N * Tb * F),
                            schedule="static"):
                memcpy(Xb + i * Tb * F, X + rows[i] * self.T * F,
                       <size_t> (Tb * F) * sizeof(floating))
        else:
            for i in range(N):
                memcpy(self.ids + i * Tb,
                       <const Py_ssize_t*> self.X + rows[i] * self.T,
                       <size_t> Tb * sizeof(Py_ssize_t))
            lookup(nt, N, Tb, self.ids, self.lb, self.V, F,
                   <floating*> self.E, Xb)
        if self.loss_kind == LOSS_SOFTMAX_CROSS_ENTROPY:
            for i in range(N):
                (<Py_ssize_t*> self.yb)[i] = (<const Py_ssize_t*> self.y)[rows[i]]
        else:
            for i in range(N):
                memcpy(<floating*> self.yb + i * M,
                       <const floating*> self.y + rows[i] * M,
                       <size_t> M * sizeof(floating))

        # Forward, layer by layer; two directions write their halves of the
        # layer's output sequence (as the network's train_step).
        inp = Xb
        for l in range(L):
            if self.dropout > 0:
                for d in range(D):
                    u = &self.units[l * D + d]
                    _dropout_mask(<floating*> draws + cursor[0],
                                  <floating*> u.in_mask, N * u.F,
                                  self.dropout)
                    cursor[0] += N * u.F
            if self.recurrent_dropout > 0:
                for d in range(D):
                    u = &self.units[l * D + d]
                    _dropout_mask(<floating*> draws + cursor[0],
                                  <floating*> u.rec_mask, N * u.H,
                                  self.recurrent_dropout)
                    cursor[0] += N * u.H
            for d in range(D):
                u = &self.units[l * D + d]
                x = inp
                if u.x != NULL:
                    x = <floating*> u.x
                    _mask_steps(inp, <floating*> u.in_mask, x, N, Tb, u.F)
                call = LayerCall(
                    cell=u.cell, reverse=u.reverse, N=N, T=Tb, F=u.F, H=u.H,
                    X=x, lengths=self.lb, W=u.W, U=u.U, b=u.b, b_hh=u.b_hh,
                    mask=u.rec_mask, h_last=u.h_last, h_seq=u.h_seq,
                    h_prev=u.h_prev, gates=u.gates, aux=u.aux, dh_last=NULL,
                    dh_seq=NULL, dW=NULL, dU=NULL, db=NULL, db_hh=NULL,
                    dX=NULL)
                if forward_pass(<floating*> NULL, &call, &config) != 0:
                    return NO_MEMORY
                if self.seq_out[l] != NULL:
                    H = u.H
                    src = <floating*> u.h_seq
                    dst = <floating*> self.seq_out[l] + d * H
                    for e in range(N * Tb):
                        memcpy(dst + e * 2 * H, src + e * H,
                               <size_t> H * sizeof(floating))
            if l < L - 1:
                inp = (<floating*> self.seq_out[l] if D == 2
                       else <floating*> self.units[l].h_seq)
        if D == 1:
            A = <floating*> self.units[L - 1].h_last
        else:
            A = <floating*> self.A
            for d in range(D):
                u = &self.units[(L - 1) * D + d]
                H = u.H
                for i in range(N):
                    memcpy(A + i * K + d * H, <floating*> u.h_last + i * H,
                           <size_t> H * sizeof(floating))

        # Head and loss.
        loss = head_loss(self.loss_kind, N, K, M, A, <floating*> self.hW,
                         <floating*> self.hb, self.yb, swb, weight_sum,
                         <floating*> self.Z, <floating*> self.hdW,
                         <floating*> self.hdb, <floating*> self.dA)

        # BPTT, top layer first.
        for l in range(L - 1, -1, -1):
            inp = Xb if l == 0 else (
                <floating*> self.seq_out[l - 1] if D == 2
                else <floating*> self.units[l - 1].h_seq)
            for d in range(D):
                u = &self.units[l * D + d]
                H = u.H
                dh_last = NULL
                dh_seq = NULL
                if l == L - 1:
                    if D == 1:
                        dh_last = <floating*> self.dA
                    else:
                        dh_last = <floating*> u.dh_last
                        for i in range(N):
                            memcpy(dh_last + i * H,
                                   <floating*> self.dA + i * K + d * H,
                                   <size_t> H * sizeof(floating))
                else:
                    dh_seq = (<floating*> self.units[l + 1].dX if D == 1
                              else <floating*> u.dh_seq)
                x = inp if u.x == NULL else <floating*> u.x
                call = LayerCall(
                    cell=u.cell, reverse=u.reverse, N=N, T=Tb, F=u.F, H=H,
                    X=x, lengths=self.lb, W=u.W, U=u.U, b=NULL, b_hh=NULL,
                    mask=u.rec_mask, h_last=NULL, h_seq=u.h_seq,
                    h_prev=u.h_prev, gates=u.gates, aux=u.aux,
                    dh_last=dh_last, dh_seq=dh_seq, dW=u.dW, dU=u.dU,
                    db=u.db, db_hh=u.db_hh, dX=u.dX)
                if backward_pass(<floating*> NULL, &call, &config) != 0:
                    return NO_MEMORY
                if u.dX != NULL and u.in_mask != NULL:
                    _mask_steps(<floating*> u.dX, <floating*> u.in_mask,
                                <floating*> u.dX, N, Tb, u.F)
            if self.units[l * D].dX != NULL and D == 2:
                # The input gradient of both directions, summed; above the
                # first layer, split into the halves of the layer below.
                Fl = self.units[l * D].F
                dst = <floating*> self.units[l * D].dX
                src = <floating*> self.units[l * D + 1].dX
                for e in range(N * Tb * Fl):
                    dst[e] = dst[e] + src[e]
            if l > 0 and D == 2:
                Fl = self.units[l * D].F
                dst = <floating*> self.units[l * D].dX
                for d in range(D):
                    u = &self.units[(l - 1) * D + d]
                    H = u.H
                    for e in range(N * Tb):
                        memcpy(<floating*> u.dh_seq + e * H,
                               dst + e * Fl + d * H,
                               <size_t> H * sizeof(floating))

        if self.E != NULL:
            n_rows = self._embedding_rows(<floating*> self.units[0].dX, N, Tb, nt)
            self.n_rows = n_rows

        # Penalty, checks, clipping and the update.
        if self.alpha > 0:
            scale = self.alpha / weight_sum
            loss += 0.5 * scale * _squares(
                nt, <floating*> self.coefs, <floating*> self.grads,
                self.penalised, self.n_penalised, self.n_coefs,
                <floating> scale, self.partial)
        self.last_loss = loss
        if step.kind == OPTIMIZER_NONE:         # the gradient only
            total[0] += loss * N
            return COMPLETED
        if fault == FAULT_LOSS:
            loss = NAN
        if fault == FAULT_GRADIENT:
            (<floating*> self.grads)[0] = INFINITY
        if not isfinite(loss):
            return BAD_LOSS
        if not _all_finite(nt, <floating*> self.grads, self.n_coefs):
            return BAD_GRADIENT
        if self.E != NULL and not _all_finite(nt, <floating*> self.egrad,
                                              n_rows * F):
            return BAD_GRADIENT
        if self.clip_norm >= 0:
            whole[0] = 0
            whole[1] = self.n_coefs
            sq = _squares(nt, <floating*> self.grads, <floating*> NULL, whole,
                          1, self.n_coefs, 0, self.partial)
            if self.E != NULL:
                whole[1] = n_rows * F
                sq += _squares(nt, <floating*> self.egrad, <floating*> NULL,
                               whole, 1, n_rows * F, 0, self.partial)
            norm = sqrt(sq)
            if fault == FAULT_NORM:
                norm = INFINITY
            if not isfinite(norm):
                return BAD_NORM
            if norm > self.clip_norm:
                _scale(nt, <floating*> self.grads, self.n_coefs,
                       <floating> (self.clip_norm / norm))
                if self.E != NULL:
                    _scale(nt, <floating*> self.egrad, n_rows * F,
                           <floating> (self.clip_norm / norm))
        if fault == FAULT_BEFORE_UPDATE:
            return FAULT
        updates[0] += 1
        dense_step(nt, &step, self.n_coefs, <floating*> self.coefs,
                   <floating*> self.grads, <floating*> self.m,
                   <floating*> self.v)
        if fault == FAULT_WEIGHT:
            (<floating*> self.coefs)[self.n_coefs - 1] = NAN
        if self.E != NULL:
            # The embedding's rows, lazily; then the check of those rows.
            rows_step(&estep, n_rows, F, self.rows, <floating*> self.E,
                      <floating*> self.egrad, <floating*> self.Em,
                      <floating*> self.Ev)
            if fault == FAULT_EMBEDDING_ROW and n_rows > 0:
                (<floating*> self.E)[self.rows[0] * F] = INFINITY
            for i in range(n_rows):         # serial: a few rows of F
                for e in range(self.rows[i] * F, (self.rows[i] + 1) * F):
                    if not isfinite((<floating*> self.E)[e]):
                        return BAD_WEIGHTS
        if fault == FAULT_AFTER_UPDATE:
            return FAULT
        if not _all_finite(nt, <floating*> self.coefs, self.n_coefs):
            return BAD_WEIGHTS
        total[0] += loss * N
        return COMPLETED

    cdef Py_ssize_t _embedding_rows(self, floating* dX, Py_ssize_t N,
                                    Py_ssize_t Tb, int nt) noexcept nogil:
        """The embedding's gradient as the rows the batch touches, as
        seqclf._layers.embedding_backward: the data steps' positions sorted
        by id (stably), each distinct id's row the sum of its positions'
        ``dX`` rows in position order. Returns their number."""
        cdef Py_ssize_t n, t, j, P = 0, K = 0
        for n in range(N):
            for t in range(self.lb[n]):
                self.keys[P] = self.ids[n * Tb + t]
                self.pos[P] = n * Tb + t
                P += 1
        _merge_sort(self.keys, self.pos, P)
        for j in range(P):
            if j == 0 or self.keys[j] != self.keys[j - 1]:
                self.rows[K] = self.keys[j]
                self.bounds[K] = j
                K += 1
        self.bounds[K] = P
        row_sums(nt, K, self.F, self.pos, self.bounds, dX,
                 <floating*> self.egrad)
        return K


cdef OptimizerStep _step_of(optimizer) except *:
    """The OptimizerStep of an optimizer of seqclf._optim (its kind,
    constants and step count), or of none."""
    cdef OptimizerStep s
    s.kind = OPTIMIZER_NONE
    s.learning_rate = s.beta_1 = s.beta_2 = s.epsilon = s.momentum = 0
    s.nesterov = False
    s.t = 0
    if optimizer is None:
        return s
    kind, lr, beta_1, beta_2, epsilon, momentum, nesterov = optimizer.settings()
    s.kind = _updates.OPTIMIZER_KINDS[kind]
    s.learning_rate = lr
    s.beta_1, s.beta_2, s.epsilon = beta_1, beta_2, epsilon
    s.momentum, s.nesterov = momentum, nesterov
    s.t = optimizer.t
    return s


cdef void _merge_sort(Py_ssize_t* keys, Py_ssize_t* values,
                      Py_ssize_t n) noexcept nogil:
    """Sort ``keys[:n]`` and their ``values`` by key, stably (bottom-up
    merges); ``keys`` and ``values`` have room for 2 n entries, the second
    half being scratch."""
    cdef Py_ssize_t width = 1, lo, mid, hi, i, j, o
    cdef Py_ssize_t* a = keys
    cdef Py_ssize_t* av = values
    cdef Py_ssize_t* b = keys + n
    cdef Py_ssize_t* bv = values + n
    cdef Py_ssize_t* tmp
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, o = lo, mid, lo
            while i < mid and j < hi:
                if a[j] < a[i]:         # equal keys keep their order
                    b[o] = a[j]
                    bv[o] = av[j]
                    j += 1
                else:
                    b[o] = a[i]
                    bv[o] = av[i]
                    i += 1
                o += 1
            while i < mid:
                b[o] = a[i]
                bv[o] = av[i]
                i += 1
                o += 1
            while j < hi:
                b[o] = a[j]
                bv[o] = av[j]
                j += 1
                o += 1
            lo = hi
        tmp = a
        a = b
        b = tmp
        tmp = av
        av = bv
        bv = tmp
        width *= 2
    if a != keys:
        memcpy(keys, a, n * sizeof(Py_ssize_t))
        memcpy(values, av, n * sizeof(Py_ssize_t))
