"""The fitting machinery the estimators drive: the epoch runner that calls
the training plan, rollback checkpoints, deferred interrupts and the
out-of-memory message.

The estimators (seqclf._rnn) decide what a fit does (validation, the epoch
loop's decisions, early stopping, the messages); this module carries it
out on the network's training plan (seqclf._plan), as scikit-learn's
histogram gradient boosting drives its grower. Nothing here validates
user input.
"""

import contextlib
import signal
import threading
import time

import numpy as np

from . import _plan, _progress
from ._ownership import owns

# Seconds of training per call of the training plan: the interval at which
# Ctrl-C is seen and the progress display moves.
GROUP_SECONDS = 0.2

# The tests' fault hook: None, or an object with ``at`` (the batch of one
# fit or partial_fit call, 1-based, skipped batches aside), ``what`` (a key
# of seqclf._plan.FAULTS) and ``exception`` (raised for the stops
# "before_batch", "before_update" and "after_update"), injected into the
# plan of each call. Nothing is checked per batch when it is None.
FAULT = None


class Diverged(Exception):
    """A batch whose loss, gradient or weights went non-finite: ``what``
    went, in the batch of ``rows``; the estimator words the error."""

    def __init__(self, what, rows):
        super().__init__(what)
        self.what = what
        self.rows = rows


def _optimizer_state(opt):
    """A copy of an optimizer's attributes, its moment arrays copied; those
    it does not own are kept by reference (training copies them before it
    writes: see seqclf._ownership)."""
    return {k: (v.copy() if owns(v) else v) for k, v in vars(opt).items()}


def _rng_state(rng):
    if isinstance(rng, np.random.RandomState):
        return rng.get_state()
    return rng.bit_generator.state


def _set_rng_state(rng, state):
    if isinstance(rng, np.random.RandomState):
        rng.set_state(state)
    else:
        rng.bit_generator.state = state


class Checkpoint:
    """An estimator's state at the start of a fit, to restore if it fails.

    Attributes are kept by reference: those that a fit only rebinds need
    nothing more. What a fit changes in place is copied once per call: the
    network's parameter vector (restored in place, so that the views of
    ``weights_`` stay valid), the optimizers' moments, the lists of scores
    and the random generators' states (the ``random_state`` instance the
    user passed included). Arrays the model does not own (a memory map, a
    pickle's buffers) are never written: training trains copies of them,
    and a failed fit puts the originals back.
    """

    def __init__(self, est):
        self._est = est
        self._attrs = dict(vars(est))
        self._lists = {k: list(v) for k, v in self._attrs.items()
                       if isinstance(v, list)}
        self._rngs, seen = [], set()
        for v in self._attrs.values():
            if (isinstance(v, (np.random.RandomState, np.random.Generator))
                    and id(v) not in seen):
                seen.add(id(v))
                self._rngs.append((v, _rng_state(v)))
        net = self._attrs.get("_network")
        self._coefs_array = None if net is None else net.coefs
        self._coefs = (None if net is None or not owns(net.coefs)
                       else net.coefs.copy())
        self._optimizers = {k: _optimizer_state(self._attrs[k])
                            for k in ("_optimizer", "_embedding_optimizer")
                            if self._attrs.get(k) is not None}

    def restore(self):
        """Put the estimator back as it was when the checkpoint was made."""
        attrs = self._attrs
        vars(self._est).clear()
        vars(self._est).update(attrs)
        for k, items in self._lists.items():
            attrs[k][:] = items
        for rng, state in self._rngs:
            _set_rng_state(rng, state)
        net = attrs.get("_network")
        if net is not None:
            if net.coefs is not self._coefs_array:
                # Training copied parameters the model did not own: the
                # originals were not written.
                net._build(self._coefs_array)
            elif self._coefs is not None:
                net.coefs[...] = self._coefs
            net.embedding_grad = None
        for k, state in self._optimizers.items():
            vars(attrs[k]).clear()
            vars(attrs[k]).update(state)


class DeferredInterrupt:
    """Context holding a first SIGINT (Ctrl-C) until a mini-batch is complete.

    In the main thread, while SIGINT has Python's default handler, a first
    SIGINT only sets :attr:`requested`, which the training loop reads
    between mini-batches; a second one raises ``KeyboardInterrupt`` at
    once. Elsewhere (other threads, a handler of the user's) nothing is
    changed.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class Position:
    """Where the training loop is, for messages and for interrupts."""

    def __init__(self, n_batches):
        self.n_batches = n_batches
        self.epoch = 0              # the model's epoch count, 1-based
        self.batch = 0              # 1-based within the epoch
        self.completed = 0          # mini-batches applied in this call
        self.updating = False       # the model's state is being changed
        self.rng_state = None       # dropout stream before this batch's draws
        self.last_batch = None      # rows of the last mini-batch run


@contextlib.contextmanager
def rollback_on_failure(est):
    """Restore ``est`` to its state from before the block if it raises.

    A KeyboardInterrupt that the training loop handled (the model then
    keeps the weights of its last completed mini-batch, and the estimator
    records it as ``est._interrupted``) is let through with the state as it
    is.
    """
    checkpoint = Checkpoint(est)
    try:
        yield
    except BaseException as exc:
        if exc is not vars(est).get("_interrupted"):
            checkpoint.restore()
        raise
    finally:
        vars(est).pop("_interrupted", None)


def out_of_memory(hidden_sizes, n_sequences, n_steps, cause):
    """The MemoryError of a mini-batch that did not fit."""
    return MemoryError(
        f"Out of memory training a mini-batch of {n_sequences} sequences "
        f"of up to {n_steps:,} steps (hidden_layer_sizes={hidden_sizes}): "
        f"{cause} Lower batch_size, or split long sequences.")


class EpochRunner:
    """The mini-batches of one fit or partial_fit call, epoch by epoch,
    on the network's training plan.

    Parameters
    ----------
    network : seqclf._network.RecurrentNetwork
    optimizer, embedding_optimizer : optimizers of seqclf._optim
        The second None without an embedding.
    data : tuple
        ``(X, lengths, y, sample_weight)``, checked and encoded.
    batch_size : int
    alpha, clip_norm, dropout, recurrent_dropout
        The estimator's settings (see seqclf._network.RecurrentNetwork.plan).
    dropout_rng : numpy.random.Generator
        Draws the dropout masks' uniform numbers.
    n_threads : int
    """

    def __init__(self, network, optimizer, embedding_optimizer, data,
                 batch_size, *, alpha, clip_norm, dropout, recurrent_dropout,
                 dropout_rng, n_threads):
        X, lengths, y, sample_weight = data
        self.network = network
        self.data = data
        self.batch_size = batch_size
        self.dropout_rng = dropout_rng
        self.n_threads = n_threads
        try:
            self.plan = network.plan(
                X, lengths, y, sample_weight, batch_size, optimizer,
                alpha=alpha, clip_norm=clip_norm, dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                embedding_optimizer=embedding_optimizer)
        except MemoryError as exc:
            raise out_of_memory(network.hidden_sizes, batch_size, X.shape[1],
                                exc) from exc
        if FAULT is not None:
            self.plan.inject(FAULT.at, FAULT.what)
        self._draws_dtype = (np.float32 if network.dtype == np.float32
                             else np.float64)

    def run_epoch(self, order, interrupt, where, progress):
        """Train on each mini-batch of ``order``; return the epoch's summed
        loss (each batch's mean loss times its size).

        The batches run in groups, one call of the plan each, sized to
        about ``GROUP_SECONDS`` (or the progress display's interval) so
        that Ctrl-C and the display are seen between groups; the results
        do not depend on the grouping. Raises :class:`Diverged`, or the
        MemoryError of a batch whose scratch memory could not be allocated.
        """
        plan, batch_size = self.plan, self.batch_size
        X, lengths, y, sample_weight = self.data
        order = np.ascontiguousarray(order, dtype=np.intp)
        n = len(order)
        n_batches = -(-n // batch_size)
        seconds = (GROUP_SECONDS if progress is None
                   else min(GROUP_SECONDS, _progress.INTERVAL))
        # Sequences per batch, 0 for a batch the plan skips (all its weights
        # zero): what each batch's dropout masks draw.
        starts = np.arange(0, n, batch_size)
        sizes = np.diff(np.append(starts, n))
        if sample_weight is not None:
            sizes = sizes * (np.add.reduceat(sample_weight[order] != 0,
                                             starts) > 0)
        total = 0.0
        k, count = 0, 1
        while k < n_batches:
            if interrupt.requested:
                raise KeyboardInterrupt
            if progress is not None and k > 0:
                progress.update(k * batch_size, total)
            tic = time.perf_counter()
            # The weights change inside the call: an interrupt raised
            # before the counters below agree with them rolls back.
            where.updating = True
            draws = None
            if plan.draws_per_sequence:
                where.rng_state = self.dropout_rng.bit_generator.state
                draws = self.dropout_rng.random(
                    int(sizes[k:k + count].sum()) * plan.draws_per_sequence,
                    dtype=self._draws_dtype)
            k_next, n_updates, loss_sum, status = plan.run(
                order, k, count, self.n_threads, total, draws)
            where.batch += k_next - k
            if status:
                rows = order[(k_next - 1) * batch_size:k_next * batch_size]
                if status == _plan.FAULT_STATUS:
                    self._injected_fault(where, n_updates)
                if status == _plan.NO_MEMORY_STATUS:
                    raise out_of_memory(
                        self.network.hidden_sizes, len(rows),
                        int(lengths[rows].max()),
                        "the kernels' scratch memory could not be allocated.")
                if status not in _plan.DIVERGED:
                    raise RuntimeError(f"The training plan stopped with "
                                       f"status {status}.")
                raise Diverged(_plan.DIVERGED[status], rows)
            total = loss_sum
            where.completed += n_updates
            where.rng_state = None
            where.updating = False
            elapsed = time.perf_counter() - tic
            k = k_next
            count = max(1, min(4 * count,
                               int(count * seconds / max(elapsed, 1e-6))))
        if progress is not None:
            progress.update(n, total)
        return total

    def _injected_fault(self, where, n_updates):
        """Raise the exception of the tests' fault hook. Before a batch,
        the model is left as between two groups: the batches before it
        complete, the dropout stream where that batch would draw; at its
        update, part-way through it."""
        if FAULT.what == "before_batch":
            where.completed += n_updates
            where.batch -= 1
            if where.rng_state is not None:
                self.dropout_rng.bit_generator.state = where.rng_state
                self.dropout_rng.random(self.plan.draws_used,
                                        dtype=self._draws_dtype)
                where.rng_state = self.dropout_rng.bit_generator.state
            where.updating = False
        raise FAULT.exception
