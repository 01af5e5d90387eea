"""Faults forced into a running fit: divergence, exceptions, Ctrl-C, no memory.

Failures are injected into the real code paths: each stage of ``fit`` by
wrapping a method so that its k-th call fails, and the mini-batches of the
training plan through its fault hook (``tests._helpers.inject_fault``): a
loss, a gradient, the clipped norm, a weight or an embedding row made
non-finite where the plan's checks see them, or a stop before a batch,
before its update or after it. What is checked is what the estimator holds
afterwards: compared attribute by attribute with what it held before the
call (``tests/_state.py``), or, after Ctrl-C, with a fit stopped by the
real between-calls path of the same interrupt.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

import seqclf._rnn as rnn_module
from seqclf import RNNClassifier, _sequences
from seqclf._network import RecurrentNetwork
from seqclf._progress import EpochProgress

from ._helpers import (
    deferred_interrupt,
    entered_interrupts,
    group_batches,
    inject_fault,
)
from ._state import assert_same_state, snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

N, BATCH, EPOCHS = 24, 8, 2         # 3 mini-batches per epoch, 6 per fit
PER_EPOCH = N // BATCH


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1, user_api="openmp"):
        yield


def task(n=N, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4, 2))
    return X, (X[:, 0, 0] > 0).astype(int)


def token_task(n=N, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 12, size=(n, 5))
    return ids, (ids[:, 0] > 5).astype(int)


def model(**kw):
    params = dict(cell="lstm", hidden_layer_sizes=(3,), batch_size=BATCH,
                  max_iter=EPOCHS, dropout=0.2, random_state=0)
    params.update(kw)
    return RNNClassifier(**params)


class Injected(Exception):
    pass


def at_call(monkeypatch, owner, name, k, *, before=None, after=None):
    """Wrap ``owner.name`` so that its k-th call runs ``before`` (which may
    raise) and/or rewrites the result with ``after(self, result, args)``."""
    real = getattr(owner, name)
    is_method = isinstance(owner, type)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        hit = calls[0] == k
        if hit and before is not None:
            before(*args)
        out = real(*args, **kwargs)
        if hit and after is not None:
            out = after(*args, out) if not is_method else after(args[0], out, args[1:])
        return out

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def start(kind, **kw):
    """An estimator about to be fitted from the state ``kind`` names, the
    call that fits it and its data (token ids with ``embedding_dim``)."""
    X, y = token_task() if kw.get("embedding_dim") else task()
    clf = model(**kw)
    if kind == "unfitted":
        return clf, lambda: clf.fit(X, y), X
    clf.fit(X, y)
    if kind == "refit":
        return clf, lambda: clf.fit(X[::-1], y[::-1]), X
    if kind == "warm":
        clf.set_params(warm_start=True)
        return clf, lambda: clf.fit(X, y), X
    assert kind == "partial"
    return clf, lambda: clf.partial_fit(X, y), X


def check_left_as_before(clf, before, X):
    assert_same_state(clf, before)
    if "_network" not in before:
        with pytest.raises(NotFittedError):
            clf.predict(X)
    else:
        assert np.isfinite(clf.predict_proba(X)).all()


# ---------------------------------------------------------------------------
# Divergence at the first, a middle and the last mini-batch
# ---------------------------------------------------------------------------

# The fault: the settings under which the plan meets it, and the words of
# the error.
DIVERGENCES = {
    "loss": ({}, "the training loss"),
    "gradient": ({}, "a gradient"),
    "norm": ({"clip_norm": 1.0}, "the gradient's norm"),
    "weight": ({}, "an updated weight"),
    "embedding_row": ({"embedding_dim": 2}, "an updated weight"),
}


@pytest.mark.parametrize("what", sorted(DIVERGENCES))
@pytest.mark.parametrize("kind", ["unfitted", "refit", "warm", "partial"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_divergence_forced_at_a_batch_rolls_back(monkeypatch, what, kind, where):
    settings, label = DIVERGENCES[what]
    clf, fit, X = start(kind, **settings)
    before = snapshot(clf)
    n_batches = PER_EPOCH if kind == "partial" else PER_EPOCH * EPOCHS
    k = {"first": 1, "middle": n_batches // 2 + 1, "last": n_batches}[where]
    epoch = (k - 1) // PER_EPOCH + 1 + (clf.n_iter_ if kind == "partial" else 0)
    inject_fault(monkeypatch, k, what)
    with pytest.raises(ValueError, match=rf"{label} became non-finite .* in "
                                         rf"epoch {epoch}, mini-batch "
                                         rf"{(k - 1) % PER_EPOCH + 1} of 3\b"):
        fit()
    check_left_as_before(clf, before, X)


# ---------------------------------------------------------------------------
# An exception at each stage of fit
# ---------------------------------------------------------------------------

# (owner, name, k-th call, where it is met): "all" stages are met by every
# kind of call, "fresh" ones only when a network is built. The owner "plan"
# stands for the training plan's fault hook, stopping at the k-th batch of
# the call where ``name`` says: before the batch, before its update (after
# its checks and clipping: clip_norm is set) or after the update.
STAGES = [
    (rnn_module.RNNClassifier, "_architecture", 1, "all"),
    (rnn_module.RNNClassifier, "_validate_X", 1, "all"),
    (_sequences, "check_finite", 1, "all"),
    (rnn_module.RNNClassifier, "_validate_y", 1, "all"),
    (rnn_module, "check_random_state", 1, "fresh"),
    (RecurrentNetwork, "__init__", 1, "fresh"),
    (RecurrentNetwork, "initialize", 1, "fresh"),
    (rnn_module, "make_optimizer", 1, "fresh"),
    (rnn_module, "_check_sample_weight", 1, "all"),
    (rnn_module, "effective_n_threads", 1, "all"),
    (rnn_module, "train_test_split", 1, "early"),
    (RecurrentNetwork, "plan", 1, "all"),           # the plan and its buffers
    ("plan", "before_batch", 1, "all"),
    ("plan", "before_batch", 3, "all"),
    ("plan", "before_update", 1, "all"),
    ("plan", "before_update", 2, "all"),
    ("plan", "before_update", 3, "all"),
    ("plan", "after_update", 2, "all"),
    (rnn_module.RNNClassifier, "_validation_score", 2, "early"),
    (rnn_module.RNNClassifier, "_update_no_improvement", 2, "multi"),
]


def _stage_id(stage):
    owner, name, k, _ = stage
    return f"{getattr(owner, '__name__', owner)}.{name}#{k}"


@pytest.mark.parametrize("stage", STAGES, ids=_stage_id)
@pytest.mark.parametrize("kind", ["unfitted", "refit", "warm", "partial"])
@pytest.mark.parametrize("error", [Injected, MemoryError])
def test_exception_at_each_stage_rolls_back(monkeypatch, stage, kind, error):
    owner, name, k, met = stage
    early = met == "early"
    if (met == "fresh" and kind in ("warm", "partial")
            or (early or met == "multi") and kind == "partial"):
        pytest.skip("stage not met by this kind of call")
    clf, fit, X = start(kind, clip_norm=1.0, early_stopping=early,
                        validation_fraction=0.34)
    y = task()[1]
    before = snapshot(clf)
    raised = error("injected")

    def fail(*args):
        raise raised

    if owner == "plan":
        inject_fault(monkeypatch, k, name, raised)
    else:
        at_call(monkeypatch, owner, name, k, before=fail)
    sample_weight = np.linspace(0.5, 2, len(y))
    with pytest.raises(error) as info:
        if kind == "partial":
            clf.partial_fit(X, y, sample_weight=sample_weight)
        else:
            clf.fit(X, y, sample_weight=sample_weight)
    # Propagated as it was raised (a MemoryError building the network or
    # the plan is reworded to name the sizes, with the original as its
    # cause).
    assert info.value is raised or info.value.__cause__ is raised
    monkeypatch.undo()
    check_left_as_before(clf, before, X)


def test_exception_after_a_partial_update_rolls_back(monkeypatch):
    # The optimizer has moved the weights and its moments when it fails.
    clf, fit, X = start("warm")
    before = snapshot(clf)
    inject_fault(monkeypatch, 4, "after_update", Injected("after the update"))
    with pytest.raises(Injected):
        fit()
    check_left_as_before(clf, before, X)


# ---------------------------------------------------------------------------
# KeyboardInterrupt
# ---------------------------------------------------------------------------

def _stopped_between_calls(monkeypatch, done, X, y, **params):
    """A model whose fit Ctrl-C stopped between two calls of its plan,
    after ``done`` mini-batches, through the real path: one batch per call,
    the interrupt raised where the progress display is updated between two
    batches of an epoch, or, at an epoch's end, requested as a first SIGINT
    requests it (seen after the epoch's counters)."""
    with monkeypatch.context() as mp:
        group_batches(mp, 0)
        entered = entered_interrupts(mp)
        calls = [0]
        real = EpochProgress.update

        def update(self, *args):
            # Called between any two batches of an epoch and at its end:
            # the k-th call comes after k batches.
            calls[0] += 1
            if calls[0] == done:
                if done % PER_EPOCH:
                    raise KeyboardInterrupt
                entered[-1].requested = True
            return real(self, *args)

        mp.setattr(EpochProgress, "update", update)
        clf = model(verbose=2, **params)
        with pytest.raises(KeyboardInterrupt, match="interrupted in epoch"):
            clf.fit(X, y)
    return clf.set_params(verbose=0)


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_interrupt_keeps_the_last_completed_batch(monkeypatch, k, capsys):
    """Ctrl-C before mini-batch k (in the middle of a call of the plan, by
    its fault hook) keeps what Ctrl-C between two calls keeps after k - 1
    batches: the weights, the optimizer's step count and moments, the
    counters and the dropout stream where batch k would draw."""
    X, y = task()
    done = k - 1
    between = _stopped_between_calls(monkeypatch, done, X, y)
    capsys.readouterr()
    reference = model().fit(X, y)
    clf = model()
    handler = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as mp:
        inject_fault(mp, k, "before_batch", KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt, match=r"interrupted in epoch "
                                                   rf"{(k - 1) // 3 + 1}"):
            clf.fit(X, y)
    np.testing.assert_array_equal(clf._network.coefs, between._network.coefs)
    for a, b in zip(clf._optimizer.state(), between._optimizer.state()):
        np.testing.assert_array_equal(a, b)
    assert clf._optimizer.t == between._optimizer.t == done
    assert clf.n_iter_ == between.n_iter_ == done // 3 == len(clf.loss_curve_)
    assert clf.loss_curve_ == between.loss_curve_
    assert clf.loss_curve_ == reference.loss_curve_[:clf.n_iter_]
    # The dropout stream is where the interrupted batch found it, so that
    # training goes on as if the batch had not been started.
    state = clf._dropout_rng.bit_generator.state
    assert state == between._dropout_rng.bit_generator.state
    assert state != reference._dropout_rng.bit_generator.state
    if done % PER_EPOCH == 0:
        # After whole epochs: the model of a fit of as many epochs.
        whole = model(max_iter=done // PER_EPOCH).fit(X, y)
        np.testing.assert_array_equal(clf._network.coefs, whole._network.coefs)
        assert state == whole._dropout_rng.bit_generator.state
    assert signal.getsignal(signal.SIGINT) is handler
    assert np.isfinite(clf.predict_proba(X)).all()
    clf.partial_fit(X, y)
    assert clf._optimizer.t == done + 3


def test_interrupt_with_early_stopping_restores_the_best_weights(monkeypatch):
    X, y = task(60)
    clf = model(early_stopping=True, validation_fraction=0.2, max_iter=20,
                n_iter_no_change=20, learning_rate_init=0.05)
    # 48 training sequences: 6 mini-batches per epoch; stop in the fifth.
    inject_fault(monkeypatch, 6 * 4 + 2, "before_batch", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt, match="best weights"):
        clf.fit(X, y)
    assert clf.n_iter_ == 4 == len(clf.validation_scores_) == len(clf.loss_curve_)
    np.testing.assert_array_equal(clf._network.coefs, clf._best_coefs)
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_interrupt_after_weights_that_overflow_rolls_back(monkeypatch):
    """The weights an interrupt would keep are checked as those a call ends
    with: a relu RNN whose first update (a large SGD step on inputs of
    scale 10) left finite weights that overflow is not kept."""
    rng = np.random.default_rng(0)
    X = (10 * rng.standard_normal((64, 50, 4))).astype(np.float32)
    y = rng.integers(0, 2, 64)
    clf = RNNClassifier("rnn", (16,), activation="relu", solver="sgd",
                        learning_rate_init=10.0, max_iter=2, batch_size=64,
                        random_state=0)
    inject_fault(monkeypatch, 2, "before_batch", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt, match="overflow on the training"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


@pytest.mark.parametrize("kind", ["unfitted", "warm"])
@pytest.mark.parametrize("what, at", [("before_batch", 1), ("before_update", 3),
                                      ("after_update", 3)])
def test_interrupt_before_any_batch_or_inside_an_update_rolls_back(
        monkeypatch, kind, what, at):
    clf, fit, X = start(kind)
    before = snapshot(clf)
    inject_fault(monkeypatch, at, what, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        fit()
    check_left_as_before(clf, before, X)


def test_interrupt_handler_holds_the_first_sigint():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT has a handler of the test runner's")
    with deferred_interrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)     # a second one: at once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interrupt_leaves_a_handler_of_the_users_alone():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *a: seen.append(1))
    try:
        X, y = task()
        model(max_iter=1).fit(X, y)
        with deferred_interrupt() as interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        assert seen and not interrupt.requested
    finally:
        signal.signal(signal.SIGINT, previous)


SIGINT_CHILD = textwrap.dedent(
    """
    import json, signal, sys
    import numpy as np
    import pytest
    from sklearn.base import clone
    from seqclf import RNNClassifier
    from tests._helpers import group_batches, inject_fault

    early = sys.argv[1] == "early"
    patches = pytest.MonkeyPatch()
    if sys.argv[2] == "single":
        group_batches(patches, 0)           # one batch per call of the plan
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 6, 2))
    y = (X[:, 0, 0] > 0).astype(int)
    clf = RNNClassifier("gru", (4,), batch_size=4, max_iter=10000, verbose=1,
                        early_stopping=early, n_iter_no_change=10000,
                        random_state=0)
    out = {"interrupted": False}
    try:
        clf.fit(X, y)
    except KeyboardInterrupt as exc:
        patches.undo()
        t = clf._optimizer.t
        # The reference: the same fit stopped by the fault hook before
        # batch t + 1, in the middle of a call of the plan of many batches.
        ref = clone(clf).set_params(verbose=0)
        inject_fault(patches, t + 1, "before_batch", KeyboardInterrupt())
        try:
            ref.fit(X, y)
        except KeyboardInterrupt:
            pass
        patches.undo()
        per_epoch = 450 if early else 500
        out = dict(
            interrupted=True, message=str(exc), t=t, t_ref=ref._optimizer.t,
            n_iter=clf.n_iter_, per_epoch=per_epoch,
            n_losses=len(clf.loss_curve_),
            same_losses=clf.loss_curve_ == ref.loss_curve_,
            n_scores=None if not early else len(clf.validation_scores_),
            kept_last=bool(np.array_equal(clf._network.coefs,
                                          ref._network.coefs)),
            kept_best=bool(early and np.array_equal(clf._network.coefs,
                                                    clf._best_coefs)
                           and np.array_equal(clf._best_coefs,
                                              ref._best_coefs)),
            finite=bool(np.isfinite(clf.predict_proba(X)).all()),
            handler=signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        )
        if not early:
            clf.partial_fit(X[:8], y[:8])
            out["t_after"] = clf._optimizer.t
    print("RESULT " + json.dumps(out), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("groups", ["timed", "single"])
@pytest.mark.parametrize("mode", ["plain", "early"])
def test_interrupt_by_a_real_sigint_during_an_epoch(mode, groups):
    """Ctrl-C, seen between the calls of the plan (groups of batches sized
    by time, or of one batch), keeps the weights of the last completed
    batch: those of the same fit stopped before the next batch. The signal
    comes a little after the first epoch, anywhere in an epoch."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_CHILD, mode, groups],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        for line in proc.stdout:            # the first epoch is over
            if line.startswith("Epoch 1,"):
                time.sleep(0.01)
                proc.send_signal(signal.SIGINT)
                break
        rest, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    result = [ln for ln in rest.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and result, err[-3000:]
    out = json.loads(result[-1][len("RESULT "):])
    assert out["interrupted"], "the fit ended before the signal"
    assert "interrupted in epoch" in out["message"]
    assert out["t"] == out["t_ref"] and out["handler"] and out["finite"]
    assert out["n_iter"] == out["n_losses"] == out["t"] // out["per_epoch"]
    assert out["same_losses"] and out["t"] >= out["per_epoch"]
    if mode == "early":
        assert out["kept_best"] and out["n_scores"] == out["n_iter"]
        assert "best weights" in out["message"]
    else:
        assert out["kept_last"]
        assert out["t_after"] == out["t"] + 2


# ---------------------------------------------------------------------------
# Allocation failure under an address-space limit
# ---------------------------------------------------------------------------

RLIMIT_CHILD = textwrap.dedent(
    """
    import json, resource
    import numpy as np
    from sklearn.exceptions import NotFittedError
    from seqclf import RNNClassifier
    from tests._state import snapshot

    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 4, 1))
    y = np.arange(16) % 2
    X_long = np.zeros((8, 200_000, 1))      # 13 MB, made before the cap
    clf = RNNClassifier("lstm", (4,), max_iter=1, random_state=0).fit(X, y)
    before = snapshot(clf)
    expected = clf.predict_proba(X)
    unfitted = RNNClassifier("lstm", (4,), max_iter=1, random_state=0)

    # Set after the imports: OpenMP and OpenBLAS reserve address space at
    # load. 256 MB above what is mapped now.
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) for l in f if l.startswith("VmSize:"))
    cap = vm * 1024 + 256 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    out = {}
    def attempt(name, call):
        try:
            call()
            out[name] = "no error"
        except MemoryError as exc:
            out[name] = "MemoryError: " + str(exc)

    # Parameters that do not fit: 2048 LSTM units (~140 MB, then moments).
    attempt("parameters", lambda: clf.set_params(hidden_layer_sizes=(2048,)).fit(X, y))
    clf.set_params(hidden_layer_sizes=(4,))
    out["parameters_same"] = snapshot(clf) == before
    # Workspaces that do not fit: a warm start on long sequences.
    attempt("workspace", lambda: clf.set_params(warm_start=True).fit(X_long, y[:8]))
    clf.set_params(warm_start=False)
    out["workspace_same"] = snapshot(clf) == before
    out["predicts_as_before"] = bool(np.array_equal(clf.predict_proba(X), expected))
    attempt("unfitted", lambda: unfitted.fit(X_long, y[:8]))
    try:
        unfitted.predict(X)
        out["unfitted_predict"] = "no error"
    except NotFittedError:
        out["unfitted_predict"] = "NotFittedError"
    print("RESULT " + json.dumps(out), flush=True)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS caps malloc on Linux")
def test_allocation_failure_under_a_memory_limit_rolls_back():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", RLIMIT_CHILD], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)
    result = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and result, proc.stderr[-3000:]
    out = json.loads(result[-1][len("RESULT "):])
    assert out["parameters"].startswith("MemoryError"), out
    assert "hidden_layer_sizes=(2048,)" in out["parameters"] or \
        "Unable to allocate" in out["parameters"], out
    assert out["workspace"].startswith("MemoryError: Out of memory training "
                                       "a mini-batch of 8 sequences of up to "
                                       "200,000 steps"), out
    assert out["unfitted"].startswith("MemoryError: Out of memory"), out
    assert out["parameters_same"] and out["workspace_same"], out
    assert out["predicts_as_before"], out
    assert out["unfitted_predict"] == "NotFittedError", out


def test_divergence_of_the_validation_output_rolls_back(monkeypatch):
    # Early stopping scores the held-out split with the inference pass.
    clf, fit, X = start("warm", early_stopping=True, validation_fraction=0.34)
    before = snapshot(clf)
    at_call(monkeypatch, RecurrentNetwork, "decision_function", 2,
            after=lambda net, Z, args: np.full_like(Z, np.inf))
    with pytest.raises(ValueError, match=r"the validation output became "
                                         r"non-finite .* in epoch 2"):
        fit()
    check_left_as_before(clf, before, X)
