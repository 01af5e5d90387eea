"""Helpers shared by the tests.

* :func:`run_layer` runs one recurrent layer through either
  implementation: ``impl`` is :mod:`seqclf.reference` or
  :mod:`seqclf._layers`, which take the same arguments. The compiled layers
  write into NaN-filled outputs, so that a kernel that leaves an entry
  unwritten is caught.
* :func:`inject_fault`, :func:`group_batches` and
  :func:`entered_interrupts`: the one place the tests reach the fitting
  machinery's hooks through (the fault hook, the size of the groups of
  batches per call of the plan, the deferred Ctrl-C).
* :func:`oracle_gradient`: a network's loss and gradient from the NumPy
  oracle (:func:`seqclf.reference.network_loss_gradient`), laid out as
  the network's parameter vector.
"""

import types

import numpy as np

from seqclf import _fitting, _layers, _plan, _progress, reference
from seqclf._cells import cache_shapes, param_shapes
from seqclf._network import RecurrentNetwork
from seqclf._openmp_helpers import single_threaded_blas


def _nans(shapes, dtype):
    return {k: np.full(s, np.nan, dtype=dtype) for k, s in shapes.items()}


def run_layer(impl, cell, X, lengths, params, *, mask=None, reverse=False,
              activation="tanh", dh_last=None, dh_seq=None, n_threads=1,
              backward=True):
    """Training forward (and backward): ``(h_last, h_seq, grads, dX)``.

    ``grads`` is keyed like ``params``; ``grads`` and ``dX`` are None
    without ``backward``. ``n_threads`` applies to the compiled layers.
    """
    kw = dict(mask=mask, reverse=reverse, activation=activation)
    if impl is reference:
        h_last, h_seq, cache = reference.forward(cell, X, lengths, params, **kw)
        if not backward:
            return h_last, h_seq, None, None
        grads, dX = reference.backward(cell, X, lengths, params, cache,
                                       dh_last, dh_seq, **kw)
        return h_last, h_seq, grads, dX
    N, T, F = X.shape
    H = params["U"].shape[0]
    lengths = np.asarray(lengths, dtype=np.intp)
    out = _nans(cache_shapes(cell, N, T, H), X.dtype)
    out["h_last"] = np.full((N, H), np.nan, dtype=X.dtype)
    with single_threaded_blas():
        h_last, h_seq, cache = _layers.forward(
            cell, X, lengths, params, out=out, n_threads=n_threads, **kw)
        if not backward:
            return h_last, h_seq, None, None
        grad_out = _nans({"d" + k: s for k, s in
                          param_shapes(cell, F, H).items()}, X.dtype)
        grad_out["dX"] = np.full(X.shape, np.nan, dtype=X.dtype)
        grads, dX = _layers.backward(
            cell, X, lengths, params, cache, dh_last, dh_seq, out=grad_out,
            n_threads=n_threads, **kw)
    return h_last, h_seq, grads, dX


def run_kernels(cell, X, lengths, params, **kwargs):
    """:func:`run_layer` through the compiled layers."""
    return run_layer(_layers, cell, X, lengths, params, **kwargs)


def run_inference(cell, X, lengths, params, *, reverse=False,
                  activation="tanh", n_threads=1, with_seq=True):
    """Inference forward through the compiled layers: ``(h_last, h_seq or None)``."""
    N, T, F = X.shape
    H = params["U"].shape[0]
    out = {"h_last": np.full((N, H), np.nan, dtype=X.dtype)}
    if with_seq:
        out["h_seq"] = np.full((N, T, H), np.nan, dtype=X.dtype)
    with single_threaded_blas():
        h_last, h_seq, _ = _layers.forward(
            cell, X, np.asarray(lengths, dtype=np.intp), params,
            reverse=reverse, activation=activation, training=False,
            return_sequences=with_seq, out=out, n_threads=n_threads)
    return h_last, h_seq


def token_ids(N, T, V, seed, min_length=1):
    """Random ids in ``[0, V)`` and lengths; padding holds -7, an id no row
    has, so that reading it would fail."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(N, T)).astype(np.intp)
    lengths = rng.integers(min_length, T + 1, size=N).astype(np.intp)
    lengths[0] = T
    ids[np.arange(T)[None, :] >= lengths[:, None]] = -7
    return ids, lengths


# ---------------------------------------------------------------------------
# The fitting machinery's hooks
# ---------------------------------------------------------------------------

def inject_fault(monkeypatch, at, what, exception=None):
    """Make mini-batch ``at`` of every following ``fit`` or ``partial_fit``
    call fail as ``what`` says, until ``monkeypatch`` is undone.

    ``at`` counts from 1 over the batches the call's plan runs, across its
    epochs (batches skipped for their zero weights aside). ``what`` is a
    key of ``seqclf._plan.FAULTS``: "loss", "gradient", "norm" (with
    ``clip_norm`` set), "weight" and "embedding_row" (with token ids) make
    a value non-finite where the plan's checks see it, so that the call
    raises its divergence error; "before_batch", "before_update" and
    "after_update" stop the plan there and the estimator raises
    ``exception``. ``monkeypatch`` is pytest's fixture, or a
    ``pytest.MonkeyPatch()`` (in a subprocess, or under hypothesis as
    ``pytest.MonkeyPatch.context()``). Returns the fault.
    """
    if what not in _plan.FAULTS:
        raise ValueError(f"unknown fault {what!r}")
    stops = what in ("before_batch", "before_update", "after_update")
    if stops != (exception is not None):
        raise ValueError(f"the fault {what!r} takes "
                         f"{'an' if stops else 'no'} exception")
    fault = types.SimpleNamespace(at=at, what=what, exception=exception)
    monkeypatch.setattr(_fitting, "FAULT", fault)
    return fault


def group_batches(monkeypatch, seconds):
    """Size the groups of mini-batches that a fit trains per call of its
    plan (with or without the progress display of ``verbose=2``, updated
    between two calls), as it sizes them to ``seconds`` of training: 0
    gives one batch per call, a large number (1e9) a first call of one
    batch in each epoch and each call after it four times as many as the
    one before."""
    monkeypatch.setattr(_fitting, "GROUP_SECONDS", seconds)
    monkeypatch.setattr(_progress, "INTERVAL", seconds)


def deferred_interrupt():
    """A new Ctrl-C guard of the kind a fit enters (a context)."""
    return _fitting.DeferredInterrupt()


def entered_interrupts(monkeypatch):
    """A list that receives each Ctrl-C guard a fit enters: setting its
    ``requested`` is what a first SIGINT does."""
    cls = _fitting.DeferredInterrupt
    real = cls.__enter__
    entered = []

    def enter(self):
        entered.append(self)
        return real(self)

    monkeypatch.setattr(cls, "__enter__", enter)
    return entered


# ---------------------------------------------------------------------------
# The NumPy oracle of a whole network
# ---------------------------------------------------------------------------

def oracle_arguments(net):
    """``(cells, layers, head, embedding, activation)`` of a network, as
    :func:`seqclf.reference.network_loss_gradient` takes them (copies)."""
    layers = [[{k: v.copy() for k, v in u.params.items()} for u in layer]
              for layer in net.layers]
    head = {k: v.copy() for k, v in net.head_params.items()}
    activation = [layer[0].activation for layer in net.layers]
    embedding = None if net.embedding is None else net.embedding.copy()
    return net.cells, layers, head, embedding, activation


def oracle_gradient(net, X, lengths, y, sample_weight=None, alpha=0.0):
    """``(loss, grad)`` of ``net`` on a batch without dropout, from
    :func:`seqclf.reference.network_loss_gradient`: ``grad`` has the layout
    of ``net.coefs`` (the embedding's rows first, dense over the
    vocabulary, then the layers and the head)."""
    cells, layers, head, embedding, activation = oracle_arguments(net)
    value, layer_grads, head_grads, embedding_grad = (
        reference.network_loss_gradient(
            cells, layers, head, X, lengths, y, loss=net.loss.kind,
            sample_weight=sample_weight, alpha=alpha, embedding=embedding,
            activation=activation))
    flat = np.zeros_like(net.coefs)
    # A network on ``flat``: its views lay the gradients out as coefs.
    view = RecurrentNetwork(
        net.cells, net.hidden_sizes, net.n_features, net.n_outputs,
        activation=net.activation, bidirectional=net.bidirectional,
        dtype=net.dtype, loss=net.loss, n_tokens=net.n_tokens, coefs=flat)
    for units, grads in zip(view.layers, layer_grads):
        for unit, g in zip(units, grads):
            assert set(unit.params) == set(g)
            for name, a in unit.params.items():
                a[...] = g[name]
    for name, a in view.head_params.items():
        a[...] = head_grads[name]
    if embedding_grad is not None:
        view.embedding[...] = embedding_grad
    return value, flat
