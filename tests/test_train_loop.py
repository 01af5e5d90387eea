"""The compiled training loop (seqclf._train.Trainer) against the per-batch
path it replaces.

With ``seqclf._network.COMPILED_LOOP`` off, every mini-batch runs through
``RecurrentNetwork.train_step`` and the estimator's Python loop (checks,
clipping, the optimizer's ``update``): the reference. The compiled loop must
give the same fit bit for bit (weights, optimizer state, loss curve), on
any thread count, and fail as that path does.
"""

import tracemalloc

import numpy as np
import pytest

import seqclf._network as network_module
import seqclf._rnn as rnn_module
from seqclf import RNNClassifier, RNNRegressor, _progress, _train
from seqclf._network import RecurrentNetwork
from seqclf._optim import AdamOptimizer

from ._state import assert_same_state, snapshot


@pytest.fixture
def per_batch(monkeypatch):
    """A context in which fits run through the per-batch path; outside it,
    a call of ``train_step`` fails the test (the compiled loop must run)."""
    real = network_module.RecurrentNetwork.train_step

    def refuse(*args, **kwargs):
        raise AssertionError("train_step ran where the compiled loop applies")

    monkeypatch.setattr(network_module.RecurrentNetwork, "train_step", refuse)

    class Switch:
        def __enter__(self):
            monkeypatch.setattr(network_module, "COMPILED_LOOP", False)
            monkeypatch.setattr(network_module.RecurrentNetwork,
                                "train_step", real)

        def __exit__(self, *exc):
            monkeypatch.setattr(network_module, "COMPILED_LOOP", True)
            monkeypatch.setattr(network_module.RecurrentNetwork,
                                "train_step", refuse)
    return Switch()


def _data(n=70, T=9, F=3, seed=0, ragged=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F)).astype(dtype)
    y = rng.integers(0, 3, size=n)
    if ragged:                  # sequences of 1 to T steps
        X = [x[:L] for x, L in zip(X, rng.integers(1, T + 1, size=n))]
    return X, y


def _state(est):
    opts = [est._optimizer, est._embedding_optimizer]
    return (est._network.coefs.copy(),
            [a.copy() for o in opts if o is not None for a in o.state()],
            [o.t for o in opts if o is not None], list(est.loss_curve_))


def _assert_same_fit(a, b):
    ca, sa, ta, la = _state(a)
    cb, sb, tb, lb = _state(b)
    np.testing.assert_array_equal(ca, cb)
    for x, z in zip(sa, sb):
        np.testing.assert_array_equal(x, z)
    assert ta == tb and la == lb


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", CONFIGS)
def test_fit_is_bit_identical_to_the_per_batch_path(per_batch, kw, dtype):
    X, y = _data(dtype=dtype)
    params = dict(batch_size=32, max_iter=3, random_state=0, tol=None)
    params.update(kw)
    a = RNNClassifier(**params).fit(X, y)
    with per_batch:
        b = RNNClassifier(**params).fit(X, y)
    _assert_same_fit(a, b)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_fit_is_bit_identical_on_any_thread_count(per_batch, n_threads):
    X, y = _data(n=100)
    params = dict(cell="gru", hidden_layer_sizes=(12,), batch_size=48,
                  max_iter=2, random_state=0, tol=None)
    a = RNNClassifier(n_threads=n_threads, **params).fit(X, y)
    with per_batch:
        b = RNNClassifier(n_threads=1, **params).fit(X, y)
    _assert_same_fit(a, b)


def test_weighted_regression_with_zero_weight_batches(per_batch):
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
    fits = []
    for compiled in (True, False):
        if compiled:
            r = RNNRegressor(**params).fit(X, Y, sample_weight=sw)
            r.partial_fit(X[:25], Y[:25])
        else:
            with per_batch:
                r = RNNRegressor(**params).fit(X, Y, sample_weight=sw)
                r.partial_fit(X[:25], Y[:25])
        fits.append(r)
    _assert_same_fit(*fits)
    assert fits[0]._optimizer.t == 2 * 5 + 3     # 7 batches, 2 skipped


def test_early_stopping_and_warm_start(per_batch):
    X, y = _data(n=90)
    params = dict(cell="rnn", hidden_layer_sizes=(6,), batch_size=16,
                  max_iter=4, early_stopping=True, n_iter_no_change=2,
                  random_state=0, warm_start=True)
    a = RNNClassifier(**params).fit(X, y)
    a.fit(X, y)
    with per_batch:
        b = RNNClassifier(**params).fit(X, y)
        b.fit(X, y)
    _assert_same_fit(a, b)
    assert a.validation_scores_ == b.validation_scores_


def test_groups_of_batches_do_not_change_the_fit(per_batch, monkeypatch):
    """The loop returns to Python after about _GROUP_SECONDS; a fit in one
    batch per call equals one in calls of many."""
    X, y = _data(n=120)
    params = dict(cell="gru", hidden_layer_sizes=(5,), batch_size=8,
                  max_iter=2, random_state=0, tol=None)
    a = RNNClassifier(**params).fit(X, y)
    monkeypatch.setattr(rnn_module, "_GROUP_SECONDS", 0.0)
    b = RNNClassifier(**params).fit(X, y)
    _assert_same_fit(a, b)


@pytest.mark.parametrize("how", ["adam", "sgd", "norm", "embedding"])
def test_divergence_fails_as_the_per_batch_path(per_batch, how):
    """A fit that diverges raises the per-batch path's error (the same
    epoch and mini-batch) and leaves the estimator as before the call."""
    X, y = _data(n=64, ragged=False)
    params = dict(cell="rnn", hidden_layer_sizes=(6,), activation="relu",
                  batch_size=8, max_iter=1, random_state=0, warm_start=True)
    if how == "embedding":
        X, y = _tokens(n=64)
        params.update(embedding_dim=3, vocab_size=30)
    errors = []
    for compiled in (True, False):
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
        if compiled:
            with pytest.raises(ValueError, match="Training diverged") as exc:
                est.fit(Xd, y)
        else:
            with per_batch, pytest.raises(ValueError,
                                          match="Training diverged") as exc:
                est.fit(Xd, y)
        assert_same_state(est, before)
        errors.append(str(exc.value))
    assert errors[0] == errors[1]
    if how == "norm":
        assert "the gradient's norm" in errors[0]


def test_dropout_with_zero_weight_batches_and_groups(per_batch,
                                                     monkeypatch):
    """Skipped batches draw no masks; the draws of a group are the numbers
    the per-batch path takes batch after batch, whatever the grouping."""
    X, y = _data(n=90)
    sw = np.ones(90)
    sw[16:32] = 0
    params = dict(cell="gru", hidden_layer_sizes=(5,), batch_size=16,
                  max_iter=3, dropout=0.2, recurrent_dropout=0.1,
                  shuffle=False, random_state=0, tol=None)
    a = RNNClassifier(**params).fit(X, y, sample_weight=sw)
    monkeypatch.setattr(rnn_module, "_GROUP_SECONDS", 0.0)
    b = RNNClassifier(**params).fit(X, y, sample_weight=sw)
    with per_batch:
        c = RNNClassifier(**params).fit(X, y, sample_weight=sw)
    _assert_same_fit(a, c)
    _assert_same_fit(b, c)
    assert (a._dropout_rng.bit_generator.state
            == c._dropout_rng.bit_generator.state)


def _tokens(n=80, T=10, V=30, seed=0):
    rng = np.random.default_rng(seed)
    # Zipf-like ids, so that a batch repeats some and misses many.
    ids = np.minimum(rng.zipf(1.3, size=(n, T)) - 1, V - 1)
    lengths = rng.integers(1, T + 1, size=n)
    X = [row[:L] for row, L in zip(ids, lengths)]
    return X, (ids[:, 0] % 3)


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


@pytest.mark.parametrize("kw", EMBEDDING_CONFIGS)
def test_embedding_fit_is_bit_identical_to_the_per_batch_path(per_batch, kw):
    """Token ids: the lookup, the gradient of the rows a batch touches
    (stably sorted positions), their share of the norm and the lazy row
    updates of both optimizers."""
    X, y = _tokens()
    params = dict(embedding_dim=4, vocab_size=30, batch_size=16, max_iter=3,
                  random_state=0, tol=None)
    params.update(kw)
    a = RNNClassifier(**params).fit(X, y)
    with per_batch:
        b = RNNClassifier(**params).fit(X, y)
    _assert_same_fit(a, b)
    assert a._embedding_optimizer.t == a._optimizer.t == 15


def test_trainer_applies_to_the_dense_head_only(per_batch):
    X, y = _data(n=40)
    est = RNNClassifier(cell="gru", hidden_layer_sizes=(4,), max_iter=1,
                        random_state=0).fit(X, y)
    X3 = np.zeros((4, 3, 3))
    data = (X3, np.full(4, 3, np.intp), np.zeros(4, np.intp), None)
    assert est._trainer(data, 4) is not None
    assert est.set_params(dropout=0.1)._trainer(data, 4) is not None
    with per_batch:
        assert est._trainer(data, 4) is None


def test_a_group_of_batches_allocates_no_python_memory():
    """The loop's buffers live as long as the trainer: eight batches in one
    call allocate no Python object or NumPy array (nothing for the
    garbage collector), whatever the kernels' own scratch."""
    X, y = _data(n=64, ragged=False)
    est = RNNClassifier(cell="lstm", hidden_layer_sizes=(5, 4),
                        bidirectional=True, batch_size=8, max_iter=1,
                        clip_norm=1.0, random_state=0).fit(X, y)
    opt = est._optimizer
    trainer = est._network.trainer(
        np.asarray(X), np.full(64, 9, np.intp), y.astype(np.intp), None, 8,
        opt.state())
    order = np.random.default_rng(0).permutation(64)
    args = (1, 1e-4, 1.0, opt.learning_rate, opt.beta_1, opt.beta_2,
            opt.epsilon, 0.0, False, opt.t, 0.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        k, updates, loss_sum, status = trainer.run(order, 0, 8, *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (k, updates, status) == (8, 8, 0) and np.isfinite(loss_sum)
    assert peak - before < 1024


@pytest.mark.parametrize("k", [3, 8])
def test_interrupt_between_groups_keeps_the_last_completed_batch(
        per_batch, monkeypatch, k):
    """Ctrl-C is seen between groups (one batch each here): the model keeps
    the per-batch path's weights after the completed batches, and the
    dropout stream stands where the next batch would draw."""
    X, y = _data(n=48, ragged=False)
    params = dict(cell="lstm", hidden_layer_sizes=(4,), batch_size=8,
                  max_iter=2, dropout=0.2, recurrent_dropout=0.1,
                  random_state=0, verbose=2)
    weights, states = [], []
    real_update = AdamOptimizer.update
    with per_batch:
        real_step = RecurrentNetwork.train_step

        def update(opt, p, g, *args):
            real_update(opt, p, g, *args)
            weights.append(p.copy())

        def step(net, *args, **kwargs):
            states.append(kwargs["rng"].bit_generator.state)
            return real_step(net, *args, **kwargs)

        monkeypatch.setattr(AdamOptimizer, "update", update)
        monkeypatch.setattr(RecurrentNetwork, "train_step", step)
        RNNClassifier(**params).fit(X, y)
    monkeypatch.setattr(AdamOptimizer, "update", real_update)
    # 6 batches an epoch; progress is shown before batches 1 to 5 of each
    # epoch and at its end: call k comes after k batches.
    monkeypatch.setattr(_progress, "INTERVAL", 0.0)
    monkeypatch.setattr(rnn_module, "_GROUP_SECONDS", 0.0)
    calls = [0]
    real_show = _progress.EpochProgress.update

    def show(self, *args):
        calls[0] += 1
        if calls[0] == k:
            raise KeyboardInterrupt
        return real_show(self, *args)

    monkeypatch.setattr(_progress.EpochProgress, "update", show)
    clf = RNNClassifier(**params)
    with pytest.raises(KeyboardInterrupt, match="interrupted in epoch"):
        clf.fit(X, y)
    done = k
    np.testing.assert_array_equal(clf._network.dense_coefs, weights[done - 1])
    assert clf._optimizer.t == done
    assert clf._dropout_rng.bit_generator.state == states[done]


def test_run_refuses_orders_and_draws_it_cannot_use():
    X, y = _data(n=16, ragged=False)
    est = RNNClassifier(cell="gru", hidden_layer_sizes=(3,), batch_size=8,
                        max_iter=1, random_state=0).fit(X, y)
    opt = est._optimizer
    lengths = np.full(16, 9, np.intp)
    trainer = est._network.trainer(np.asarray(X), lengths, y.astype(np.intp),
                                   None, 8, opt.state())
    args = (1, 0.0, -1.0, opt.learning_rate, opt.beta_1, opt.beta_2,
            opt.epsilon, 0.0, False, opt.t, 0.0)
    before = est._network.coefs.copy()
    for order in (np.arange(15), np.arange(1, 17), np.arange(16) - 1):
        with pytest.raises(ValueError, match="order"):
            trainer.run(order.astype(np.intp), 0, 2, *args)
    with pytest.raises(ValueError, match="non-negative"):
        trainer.run(np.arange(16), -1, 2, *args)
    dropped = est._network.trainer(np.asarray(X), lengths, y.astype(np.intp),
                                   None, 8, opt.state(), dropout=0.5)
    for draws in (None, np.zeros(48, np.float32), np.zeros((16, 3))):
        with pytest.raises(ValueError, match="draws"):
            dropped.run(np.arange(16), 0, 2, *args, draws)
    # Too few draws for the batch: the loop stops before its work.
    k, updates, _, status = dropped.run(np.arange(16), 0, 2, *args,
                                        np.zeros(5))
    assert (k, updates) == (1, 0) and status not in (0, *_train.DIVERGED)
    np.testing.assert_array_equal(est._network.coefs, before)
