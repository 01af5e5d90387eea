"""The training plan (seqclf._plan.TrainingPlan): the one way a fit trains.

A fit runs its mini-batches in groups, one call of the plan each, sized by
time (``tests._helpers.group_batches`` fixes the sizes). What must hold:

* the grouping does not change the fit: one batch per call and many per
  call give the same model bit for bit (weights, optimizer state, loss
  curve, dropout stream), and the same errors;
* neither does the number of threads;
* one step of a fit is the NumPy oracle's: plain SGD on one batch of all
  the data moves the weights by the learning rate times the gradient of
  ``seqclf.reference.network_loss_gradient`` (clipped as ``clip_norm``
  says), and a fit stopped by Ctrl-C between two calls holds the weights
  of the plan replayed batch by batch;
* a group of batches allocates no Python memory, and the plan refuses what
  it cannot run: orders and draws that do not fit, heads, losses,
  optimizers and faults of kinds it does not know.
"""

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest

from seqclf import RNNClassifier, RNNRegressor, _plan
from seqclf._network import RecurrentNetwork, SoftmaxCrossEntropy
from seqclf._optim import AdamOptimizer, SGDOptimizer
from seqclf._progress import EpochProgress

from ._helpers import group_batches, inject_fault, oracle_gradient
from ._state import assert_same_state, snapshot
from .conftest import KERNEL_RTOL

ONE, MANY = 0.0, 1e9        # group_batches: one batch per call, or many


def _data(n=70, T=9, F=3, seed=0, ragged=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F)).astype(dtype)
    y = rng.integers(0, 3, size=n)
    if ragged:                  # sequences of 1 to T steps
        X = [x[:L] for x, L in zip(X, rng.integers(1, T + 1, size=n))]
    return X, y


def _tokens(n=80, T=10, V=30, seed=0):
    rng = np.random.default_rng(seed)
    # Zipf-like ids, so that a batch repeats some and misses many.
    ids = np.minimum(rng.zipf(1.3, size=(n, T)) - 1, V - 1)
    lengths = rng.integers(1, T + 1, size=n)
    X = [row[:L] for row, L in zip(ids, lengths)]
    return X, (ids[:, 0] % 3)


def _state(est):
    opts = [est._optimizer, est._embedding_optimizer]
    return (est._network.coefs.copy(),
            [a.copy() for o in opts if o is not None for a in o.state()],
            [o.t for o in opts if o is not None], list(est.loss_curve_),
            est._dropout_rng.bit_generator.state)


def _assert_same_fit(a, b):
    ca, sa, ta, la, ra = _state(a)
    cb, sb, tb, lb, rb = _state(b)
    np.testing.assert_array_equal(ca, cb)
    assert len(sa) == len(sb)
    for x, z in zip(sa, sb):
        np.testing.assert_array_equal(x, z)
    assert ta == tb and la == lb and ra == rb


def _one_and_many(monkeypatch, fit):
    """The models of ``fit()`` run with one batch per call of the plan and
    with many (groups of 1, 4, 16, ... batches in each epoch)."""
    fits = []
    for seconds in (ONE, MANY):
        with monkeypatch.context() as mp:
            group_batches(mp, seconds)
            fits.append(fit())
    return fits


# ---------------------------------------------------------------------------
# One batch per call or many, any thread count: the same fit
# ---------------------------------------------------------------------------

CONFIGS = [
    dict(cell="rnn", hidden_layer_sizes=(8,)),
    dict(cell="rnn", hidden_layer_sizes=(5,), activation="relu",
         solver="sgd", nesterovs_momentum=False),
    dict(cell="gru", hidden_layer_sizes=(8, 6), bidirectional=True,
         alpha=0.01, clip_norm=0.3),
    dict(cell="lstm", hidden_layer_sizes=(7, 5), solver="sgd"),
    dict(cell=("lstm", "gru", "rnn"), hidden_layer_sizes=(6, 5, 4),
         bidirectional=True, clip_norm=0.1),
    dict(cell="lstm", hidden_layer_sizes=(9,), bidirectional=True,
         alpha=1e-3, batch_size=16),
    dict(cell="gru", hidden_layer_sizes=(6, 5), dropout=0.3),
    dict(cell="lstm", hidden_layer_sizes=(5,), recurrent_dropout=0.4,
         batch_size=16),
    dict(cell=("rnn", "lstm"), hidden_layer_sizes=(6, 4), bidirectional=True,
         dropout=0.2, recurrent_dropout=0.25, clip_norm=0.5),
]

EMBEDDING_CONFIGS = [
    dict(cell="gru", hidden_layer_sizes=(6,)),
    dict(cell="lstm", hidden_layer_sizes=(5, 4), bidirectional=True,
         clip_norm=0.05, alpha=0.01),
    dict(cell="rnn", hidden_layer_sizes=(6,), solver="sgd",
         learning_rate_init=0.1),
    dict(cell="gru", hidden_layer_sizes=(5,), solver="sgd",
         nesterovs_momentum=False, bidirectional=True, dropout=0.2,
         recurrent_dropout=0.1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", CONFIGS)
def test_fit_is_the_same_in_one_or_many_batches_per_call(monkeypatch, kw,
                                                         dtype):
    X, y = _data(dtype=dtype)
    params = dict(batch_size=10, max_iter=3, random_state=0, tol=None)
    params.update(kw)
    one, many = _one_and_many(monkeypatch,
                              lambda: RNNClassifier(**params).fit(X, y))
    _assert_same_fit(one, many)
    assert one._network.dtype == dtype
    assert one._optimizer.t == 3 * -(-70 // params["batch_size"])


@pytest.mark.parametrize("kw", EMBEDDING_CONFIGS)
def test_embedding_fit_is_the_same_in_one_or_many_batches_per_call(
        monkeypatch, kw):
    """Token ids (the embedding is float32 whatever the data): the lookup,
    the gradient of the rows a batch touches (stably sorted positions),
    their share of the norm and the lazy row updates of both optimizers."""
    X, y = _tokens()
    params = dict(embedding_dim=4, vocab_size=30, batch_size=16, max_iter=3,
                  random_state=0, tol=None)
    params.update(kw)
    one, many = _one_and_many(monkeypatch,
                              lambda: RNNClassifier(**params).fit(X, y))
    _assert_same_fit(one, many)
    assert one._embedding_optimizer.t == one._optimizer.t == 15


def test_groups_hold_one_batch_or_many(monkeypatch):
    """What the tests above compare: the progress display, updated between
    two calls of the plan, is updated between any two batches with one
    batch per call, and between groups of 1, 4, 4 of 9 batches with many."""
    X, y = _data(n=90)
    calls = []
    real = EpochProgress.update

    def update(self, done, loss_sum):
        calls.append(done)
        return real(self, done, loss_sum)

    monkeypatch.setattr(EpochProgress, "update", update)
    params = dict(cell="rnn", hidden_layer_sizes=(3,), batch_size=10,
                  max_iter=1, random_state=0, verbose=2)
    _one_and_many(monkeypatch, lambda: RNNClassifier(**params).fit(X, y))
    assert calls == list(range(10, 100, 10)) + [10, 50, 90]


THREAD_CONFIGS = [
    dict(cell="gru", hidden_layer_sizes=(12,)),
    dict(cell=("lstm", "rnn"), hidden_layer_sizes=(6, 5), bidirectional=True,
         dropout=0.2, recurrent_dropout=0.1, clip_norm=0.5, alpha=1e-3),
    dict(cell="gru", hidden_layer_sizes=(5,), embedding_dim=4, vocab_size=30,
         bidirectional=True, dropout=0.2, clip_norm=0.1),
]


@pytest.mark.parametrize("kw", THREAD_CONFIGS)
def test_fit_is_the_same_on_any_thread_count(kw):
    """Batches of 3 chunks of 16 sequences, so that 2 threads share them."""
    X, y = _tokens(n=100) if "embedding_dim" in kw else _data(n=100)
    params = dict(batch_size=48, max_iter=2, random_state=0, tol=None, **kw)
    fits = [RNNClassifier(n_threads=n, **params).fit(X, y) for n in (1, 2)]
    assert fits[1].n_threads_ == 2
    _assert_same_fit(*fits)


def test_weighted_regression_with_zero_weight_batches(monkeypatch):
    """Squared error, sample weights, batches whose weights are all zero
    (skipped: no update), a batch size that does not divide the data, and
    partial_fit after fit."""
    X, _ = _data(n=63, ragged=False)
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(63, 2))
    sw = rng.random(63)
    sw[:20] = 0                       # batches 0 and 1 without shuffling
    params = dict(cell="lstm", hidden_layer_sizes=(6,), batch_size=10,
                  max_iter=2, alpha=0.1, shuffle=False, random_state=0,
                  tol=None)

    def fit():
        r = RNNRegressor(**params).fit(X, Y, sample_weight=sw)
        return r.partial_fit(X[:25], Y[:25])

    fits = _one_and_many(monkeypatch, fit)
    _assert_same_fit(*fits)
    assert fits[0]._optimizer.t == 2 * 5 + 3     # 7 batches, 2 skipped


def test_early_stopping_and_warm_start(monkeypatch):
    X, y = _data(n=90)
    params = dict(cell="rnn", hidden_layer_sizes=(6,), batch_size=16,
                  max_iter=4, early_stopping=True, n_iter_no_change=2,
                  random_state=0, warm_start=True)

    def fit():
        est = RNNClassifier(**params).fit(X, y)
        return est.fit(X, y)

    a, b = _one_and_many(monkeypatch, fit)
    _assert_same_fit(a, b)
    assert a.validation_scores_ == b.validation_scores_


def test_dropout_draws_skip_zero_weight_batches(monkeypatch):
    """Skipped batches draw no masks: a warm-started fit takes, from where
    the dropout stream stood, the numbers of its batches of non-zero
    weight only, whatever the grouping."""
    X, y = _data(n=90)
    sw = np.ones(90)
    sw[16:32] = 0                     # batch 1 without shuffling
    params = dict(cell="gru", hidden_layer_sizes=(5,), batch_size=16,
                  max_iter=3, dropout=0.2, recurrent_dropout=0.1,
                  shuffle=False, random_state=0, tol=None, warm_start=True)
    start = RNNClassifier(**params).fit(X, y, sample_weight=sw)
    before = pickle.dumps(start)

    def fit():
        return pickle.loads(before).fit(X, y, sample_weight=sw)

    a, b = _one_and_many(monkeypatch, fit)
    _assert_same_fit(a, b)
    # Per sequence: the input mask (3 features), the recurrent mask (5
    # units); 74 sequences in the 5 batches of non-zero weight.
    stream = start._dropout_rng
    stream.random(3 * 74 * (3 + 5))
    assert a._dropout_rng.bit_generator.state == stream.bit_generator.state
    assert a._optimizer.t == start._optimizer.t + 3 * 5


@pytest.mark.parametrize("how", ["adam", "sgd", "norm", "embedding"])
def test_divergence_fails_alike_in_one_or_many_batches_per_call(monkeypatch,
                                                                how):
    """A fit that diverges raises the same error (the same epoch and
    mini-batch) however its batches are grouped, and leaves the estimator
    as before the call."""
    X, y = _data(n=64, ragged=False)
    params = dict(cell="rnn", hidden_layer_sizes=(6,), activation="relu",
                  batch_size=8, max_iter=1, random_state=0, warm_start=True)
    if how == "embedding":
        X, y = _tokens(n=64)
        params.update(embedding_dim=3, vocab_size=30)
    errors = []
    for seconds in (ONE, MANY):
        est = RNNClassifier(**params).fit(X, y)
        est.set_params(max_iter=3)
        if how == "adam":
            est.set_params(learning_rate_init=1e300)
        elif how in ("sgd", "embedding"):
            est.set_params(solver="sgd", learning_rate_init=1e300)
        else:
            est.set_params(clip_norm=1.0)
        before = snapshot(est)
        Xd = X * 1e300 if how == "norm" else X
        with monkeypatch.context() as mp:
            group_batches(mp, seconds)
            with pytest.raises(ValueError, match="Training diverged") as exc:
                est.fit(Xd, y)
        assert_same_state(est, before)
        errors.append(str(exc.value))
    assert errors[0] == errors[1]
    if how == "norm":
        assert "the gradient's norm" in errors[0]


# ---------------------------------------------------------------------------
# One step against the NumPy oracle
# ---------------------------------------------------------------------------

def _record_plans(monkeypatch):
    """A list that receives, for each plan a network builds, the network,
    a copy of its parameters then and the plan's arguments."""
    real = RecurrentNetwork.plan
    plans = []

    def plan(net, *args, **kwargs):
        plans.append((net, net.coefs.copy(), args, kwargs))
        return real(net, *args, **kwargs)

    monkeypatch.setattr(RecurrentNetwork, "plan", plan)
    return plans


ORACLE_CASES = {
    "rnn-f64": (RNNClassifier, dict(cell="rnn", hidden_layer_sizes=(6,),
                                    alpha=0.01), "dense", np.float64),
    "rnn-relu-f32": (RNNClassifier, dict(cell="rnn", hidden_layer_sizes=(5,),
                                         activation="relu"), "dense",
                     np.float32),
    "gru-bi-clipped": (RNNClassifier, dict(cell=("gru", "lstm"),
                                           hidden_layer_sizes=(5, 4),
                                           bidirectional=True,
                                           clip_norm=0.05), "dense",
                       np.float64),
    "lstm-embedding": (RNNClassifier, dict(cell="lstm", hidden_layer_sizes=(5,),
                                           embedding_dim=3, clip_norm=0.02,
                                           alpha=0.1), "ids", np.float32),
    "regressor-weighted": (RNNRegressor, dict(cell="lstm",
                                              hidden_layer_sizes=(5,),
                                              bidirectional=True,
                                              alpha=0.01), "values",
                           np.float64),
}


@pytest.mark.parametrize("case", list(ORACLE_CASES))
def test_one_step_is_the_oracle_gradient_step(monkeypatch, case):
    """SGD without momentum on one batch of every sequence, in order and
    without dropout: ``w - learning_rate * g``, ``g`` the oracle's gradient
    at the initial weights (the penalty included), scaled to ``clip_norm``
    when its norm (the embedding rows' share included) is above it."""
    Est, kw, inputs, dtype = ORACLE_CASES[case]
    n, lr = 23, 0.1
    rng = np.random.default_rng(5)
    sample_weight = None
    if inputs == "ids":
        X, y = _tokens(n=n, V=12)
    else:
        X, y = _data(n=n, dtype=dtype)
    if inputs == "values":
        y = rng.normal(size=(n, 2))
        sample_weight = rng.uniform(0.2, 2.0, n)
    est = Est(**kw, solver="sgd", momentum=0.0, learning_rate_init=lr,
              batch_size=n, max_iter=1, shuffle=False, random_state=0)
    plans = _record_plans(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # one epoch: not converged
        est.fit(X, y, sample_weight=sample_weight)
    (net, w0, args, kwargs), = plans
    assert net is est._network and net.dtype == dtype
    Xp, lengths, yp, swp, batch_size = args[:5]
    assert batch_size == n and kwargs["dropout"] == 0
    after = net.coefs.copy()
    net.coefs[...] = w0                     # the oracle at the initial weights
    value, g = oracle_gradient(net, Xp, lengths, yp, swp, alpha=kwargs["alpha"])
    net.coefs[...] = after
    scale = 1.0
    if est.clip_norm is not None:
        norm = np.sqrt(np.sum(g.astype(np.float64) ** 2))
        assert norm > 2 * est.clip_norm            # clipping applies
        scale = est.clip_norm / norm
    rtol = KERNEL_RTOL[np.dtype(dtype)]
    assert est.loss_curve_ == [pytest.approx(value, rel=rtol)]
    expected = -lr * scale * g.astype(np.float64)
    step = after.astype(np.float64) - w0
    # The oracle's rounding against the plan's, and that of w + step.
    atol = (rtol * np.abs(expected).max()
            + 2 * np.finfo(dtype).eps * np.abs(w0).max())
    np.testing.assert_allclose(step, expected, rtol=0, atol=atol)
    assert np.abs(expected).max() > 100 * atol
    if net.embedding is not None:
        # Only the rows of the ids seen move.
        rows = np.unique(np.concatenate(X))
        E = net.embedding.size
        moved = np.flatnonzero(np.any(
            (after[:E] != w0[:E]).reshape(net.embedding.shape), axis=1))
        np.testing.assert_array_equal(moved, rows)


# ---------------------------------------------------------------------------
# Ctrl-C between calls of the plan
# ---------------------------------------------------------------------------

def _interrupt_at_update(monkeypatch, k):
    """Raise KeyboardInterrupt at the k-th update of the progress display:
    with one batch per call, after k batches (between two batches of an
    epoch of 6 when k % 6 != 0)."""
    group_batches(monkeypatch, ONE)
    calls = [0]
    real = EpochProgress.update

    def update(self, *args):
        calls[0] += 1
        if calls[0] == k:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(EpochProgress, "update", update)


@pytest.mark.parametrize("k", [3, 8])
def test_interrupt_between_groups_keeps_the_last_completed_batch(
        monkeypatch, k, capsys):
    """Ctrl-C between two calls keeps the model after the completed
    batches: the state of the fit stopped by the fault hook in the middle
    of a call of many batches, before the next one (the dropout stream
    included: put back where that batch would draw)."""
    X, y = _data(n=48, ragged=False)
    params = dict(cell="lstm", hidden_layer_sizes=(4,), batch_size=8,
                  max_iter=2, dropout=0.2, recurrent_dropout=0.1,
                  random_state=0, verbose=2)
    with monkeypatch.context() as mp:
        _interrupt_at_update(mp, k)
        between = RNNClassifier(**params)
        with pytest.raises(KeyboardInterrupt, match="interrupted in epoch"):
            between.fit(X, y)
    with monkeypatch.context() as mp:
        group_batches(mp, MANY)
        inject_fault(mp, k + 1, "before_batch", KeyboardInterrupt())
        inside = RNNClassifier(**params)
        with pytest.raises(KeyboardInterrupt, match="interrupted in epoch"):
            inside.fit(X, y)
    capsys.readouterr()
    _assert_same_fit(between, inside)
    assert between._optimizer.t == k and between.n_iter_ == k // 6


@pytest.mark.parametrize("k", [4, 9])
def test_interrupt_between_groups_keeps_the_replayed_weights(monkeypatch, k,
                                                             capsys):
    """The weights kept after k batches are those of the fit's plan
    replayed batch by batch, from the initial weights, on a copy of the
    network with an optimizer of its own."""
    X, y = _data(n=48, ragged=False)
    params = dict(cell="gru", hidden_layer_sizes=(4,), batch_size=8,
                  max_iter=2, shuffle=False, alpha=0.01, clip_norm=0.5,
                  random_state=0, verbose=2)
    with monkeypatch.context() as mp:
        plans = _record_plans(mp)
        _interrupt_at_update(mp, k)
        est = RNNClassifier(**params)
        with pytest.raises(KeyboardInterrupt, match="interrupted in epoch"):
            est.fit(X, y)
    capsys.readouterr()
    (net, w0, args, kwargs), = plans
    replay = pickle.loads(pickle.dumps(net))
    replay.coefs[...] = w0
    opt = AdamOptimizer(replay.dense_coefs.shape, replay.dtype,
                        learning_rate=est.learning_rate_init)
    plan = replay.plan(*args[:5], opt, **dict(kwargs, embedding_optimizer=None))
    order = np.arange(48, dtype=np.intp)
    for batch in range(k):
        next_batch, updates, _, status = plan.run(order, batch % 6, 1, 1)
        assert (next_batch, updates, status) == (batch % 6 + 1, 1, 0)
    assert opt.t == est._optimizer.t == k
    np.testing.assert_array_equal(replay.coefs, est._network.coefs)
    for a, b in zip(opt.state(), est._optimizer.state()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# The plan itself
# ---------------------------------------------------------------------------

def _fitted_plan(n=16, batch_size=8, **kw):
    X, y = _data(n=n, ragged=False)
    est = RNNClassifier(cell="gru", hidden_layer_sizes=(3,),
                        batch_size=batch_size, max_iter=1,
                        random_state=0).fit(X, y)
    net = est._network
    args = (np.asarray(X), np.full(n, 9, np.intp), y.astype(np.intp), None,
            batch_size)
    return est, net, args


def test_a_group_of_batches_allocates_no_python_memory():
    """The plan's buffers live as long as the plan: eight batches in one
    call allocate no Python object or NumPy array (nothing for the
    garbage collector), whatever the kernels' own scratch."""
    X, y = _data(n=64, ragged=False)
    est = RNNClassifier(cell="lstm", hidden_layer_sizes=(5, 4),
                        bidirectional=True, batch_size=8, max_iter=1,
                        clip_norm=1.0, dropout=0.1, random_state=0).fit(X, y)
    opt = est._optimizer
    plan = est._network.plan(
        np.asarray(X), np.full(64, 9, np.intp), y.astype(np.intp), None, 8,
        opt, alpha=1e-4, clip_norm=1.0, dropout=0.1)
    order = np.random.default_rng(0).permutation(64)
    draws = np.random.default_rng(1).random(64 * plan.draws_per_sequence)
    t = opt.t
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        k, updates, loss_sum, status = plan.run(order, 0, 8, 1, 0.0, draws)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (k, updates, status) == (8, 8, 0) and np.isfinite(loss_sum)
    assert plan.draws_used == draws.size and opt.t == t + 8
    assert peak - before < 1024


def test_run_refuses_orders_and_draws_it_cannot_use():
    est, net, args = _fitted_plan()
    plan = net.plan(*args, est._optimizer)
    before = net.coefs.copy()
    for order in (np.arange(15), np.arange(1, 17), np.arange(16) - 1):
        with pytest.raises(ValueError, match="order"):
            plan.run(order.astype(np.intp), 0, 2, 1)
    with pytest.raises(ValueError, match="non-negative"):
        plan.run(np.arange(16), -1, 2, 1)
    with pytest.raises(ValueError, match="non-negative"):
        plan.run(np.arange(16), 0, -1, 1)
    dropped = net.plan(*args, est._optimizer, dropout=0.5)
    assert dropped.draws_per_sequence == 3
    for draws in (None, np.zeros(48, np.float32), np.zeros((16, 3))):
        with pytest.raises(ValueError, match="draws"):
            dropped.run(np.arange(16), 0, 2, 1, 0.0, draws)
    # Too few draws for the batch: the plan stops before its work.
    k, updates, _, status = dropped.run(np.arange(16), 0, 2, 1, 0.0,
                                        np.zeros(5))
    assert (k, updates) == (1, 0) and dropped.draws_used == 0
    assert status not in (0, _plan.FAULT_STATUS, _plan.NO_MEMORY_STATUS,
                          *_plan.DIVERGED)
    np.testing.assert_array_equal(net.coefs, before)


class _NamedHead:
    """A head of another kind (all a head needs but a kind the plan has)."""

    def __init__(self, kind, n_in, n_out):
        self.kind = kind
        self.n_in, self.n_out = n_in, n_out

    def param_shapes(self):
        return {"W": (self.n_in, self.n_out), "b": (self.n_out,)}


class _HingeLoss(SoftmaxCrossEntropy):
    kind = "hinge"


@pytest.mark.parametrize("what", ["head", "loss"])
def test_a_head_or_loss_of_an_unknown_kind_is_refused(what):
    if what == "head":
        kw, kind = dict(head=_NamedHead("attention", 3, 2)), "attention"
    else:
        kw, kind = dict(loss=_HingeLoss()), "hinge"
    with pytest.raises(TypeError, match=rf"no {what} of kind '{kind}'"):
        RecurrentNetwork(("gru",), (3,), 2, 2, **kw)
    if what == "head":
        with pytest.raises(TypeError, match="no head of kind None"):
            RecurrentNetwork(("gru",), (3,), 2, 2, head=object())
    # Changed after the network was made: the plan refuses it.
    est, net, args = _fitted_plan()
    if what == "head":
        net.head = _NamedHead("attention", *net.head_params["W"].shape)
    else:
        net.loss = _HingeLoss()
        # Targets of the shape the network's checks then ask for (they read
        # any kind but softmax cross-entropy's as values).
        args = args[:2] + (np.zeros((16, net.n_outputs)),) + args[3:]
    with pytest.raises(TypeError, match=rf"no {what} of kind '{kind}'"):
        net.plan(*args, est._optimizer)


class _RMSProp(AdamOptimizer):
    kind = "rmsprop"


def test_an_optimizer_of_an_unknown_kind_is_refused():
    est, net, args = _fitted_plan()
    before = net.coefs.copy()
    opt = _RMSProp(net.dense_coefs.shape, net.dtype)
    with pytest.raises(TypeError, match="no optimizer of kind 'rmsprop'"):
        net.plan(*args, opt)
    X, y = _tokens(n=16)
    emb = RNNClassifier(cell="gru", hidden_layer_sizes=(3,), embedding_dim=2,
                        vocab_size=30, batch_size=8, max_iter=1,
                        random_state=0).fit(X, y)
    enet = emb._network
    ids = np.zeros((16, 10), np.intp)
    eargs = (ids, np.full(16, 10, np.intp), np.asarray(y, np.intp), None, 8)
    with pytest.raises(TypeError, match="no optimizer of kind 'rmsprop'"):
        enet.plan(*eargs, emb._optimizer,
                  embedding_optimizer=_RMSProp(enet.embedding.shape,
                                               enet.dtype))
    with pytest.raises(ValueError, match="needs its own optimizer"):
        enet.plan(*eargs, emb._optimizer)
    sgd = SGDOptimizer(net.dense_coefs.shape, np.float32)
    with pytest.raises(ValueError, match="size and dtype"):
        net.plan(*args, sgd)
    np.testing.assert_array_equal(net.coefs, before)


def test_inject_refuses_unknown_faults():
    est, net, args = _fitted_plan()
    plan = net.plan(*args, est._optimizer)
    for at, what in ((1, "meltdown"), (1, None), (0, "loss"), (-2, "weight")):
        with pytest.raises(ValueError, match="what must be one of"):
            plan.inject(at, what)
    plan.inject(2, "before_update")
    k, updates, _, status = plan.run(np.arange(16), 0, 2, 1)
    assert (k, updates, status) == (2, 1, _plan.FAULT_STATUS)
