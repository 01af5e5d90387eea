"""Faults forced into a running fit: divergence, exceptions, Ctrl-C, no memory.

Failures are injected into the real code paths (the network's training
step, the optimizers' updates, each stage of ``fit``) by wrapping the
method so that its k-th call fails; what is checked is what the estimator
holds afterwards, compared attribute by attribute with what it held before
the call (``tests/_state.py``).
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

import seqclf._network as network_module
import seqclf._rnn as rnn_module
from seqclf import RNNClassifier, _sequences
from seqclf._network import RecurrentNetwork, _Workspace
from seqclf._optim import AdamOptimizer

from ._state import assert_same_state, snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

N, BATCH, EPOCHS = 24, 8, 2         # 3 mini-batches per epoch, 6 per fit


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1, user_api="openmp"):
        yield


@pytest.fixture(autouse=True)
def _per_batch_path():
    # The faults are injected at the per-batch path's methods (train_step,
    # the optimizer's update, clip_gradient); the compiled loop's failures
    # are tested in test_train_loop.py, and the subprocesses below run it.
    # Not through monkeypatch: the tests undo their own patches midway.
    previous = network_module.COMPILED_LOOP
    network_module.COMPILED_LOOP = False
    yield
    network_module.COMPILED_LOOP = previous


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


def _interrupt(*args):
    raise KeyboardInterrupt


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
    """An estimator about to be fitted from the state ``kind`` names, and the
    call that fits it."""
    X, y = task()
    clf = model(**kw)
    if kind == "unfitted":
        return clf, lambda: clf.fit(X, y)
    clf.fit(X, y)
    if kind == "refit":
        return clf, lambda: clf.fit(X[::-1], y[::-1])
    if kind == "warm":
        clf.set_params(warm_start=True)
        return clf, lambda: clf.fit(X, y)
    assert kind == "partial"
    return clf, lambda: clf.partial_fit(X, y)


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

def _nan_loss(net, loss, args):
    return np.nan


def _inf_gradient(net, loss, args):
    net.grads[1] = np.inf
    return loss


def _nan_weight(opt, out, args):
    params = args[0]                # update(params, grad)
    params[-1] = np.nan


INJECTIONS = {
    "loss": (RecurrentNetwork, "train_step", _nan_loss, "the training loss"),
    "gradient": (RecurrentNetwork, "train_step", _inf_gradient, "a gradient"),
    "weight": (AdamOptimizer, "update", _nan_weight, "an updated weight"),
}


@pytest.mark.parametrize("what", sorted(INJECTIONS))
@pytest.mark.parametrize("kind", ["unfitted", "refit", "warm", "partial"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_divergence_forced_at_a_batch_rolls_back(monkeypatch, what, kind, where):
    clf, fit = start(kind)
    before = snapshot(clf)
    n_batches = 3 if kind == "partial" else 3 * EPOCHS
    k = {"first": 1, "middle": n_batches // 2 + 1, "last": n_batches}[where]
    epoch = (k - 1) // 3 + 1 + (clf.n_iter_ if kind == "partial" else 0)
    owner, name, after, label = INJECTIONS[what]
    at_call(monkeypatch, owner, name, k, after=after)
    with pytest.raises(ValueError, match=rf"{label} became non-finite .* in "
                                         rf"epoch {epoch}, mini-batch "
                                         rf"{(k - 1) % 3 + 1} of 3\b"):
        fit()
    check_left_as_before(clf, before, task()[0])


@pytest.mark.parametrize("where", [1, 4, 6])
def test_divergence_of_an_embedding_row_rolls_back(monkeypatch, where):
    ids, y = token_task()
    clf = model(embedding_dim=2, dropout=0.0).fit(ids, y)
    before = snapshot(clf)

    def bad_row(opt, out, args):
        params, rows = args[:2]     # update_rows(params, rows, grad)
        params[rows[0]] = np.inf

    at_call(monkeypatch, AdamOptimizer, "update_rows", where, after=bad_row)
    with pytest.raises(ValueError, match="an updated weight became non-finite"):
        clf.set_params(warm_start=True).fit(ids, y)
    clf.set_params(warm_start=False)
    check_left_as_before(clf, before, ids)


def test_divergence_of_the_clipped_norm_rolls_back(monkeypatch):
    clf, fit = start("warm", clip_norm=1.0)
    before = snapshot(clf)
    at_call(monkeypatch, RecurrentNetwork, "clip_gradient", 2,
            after=lambda net, norm, args: np.inf)
    with pytest.raises(ValueError, match="gradient's norm became non-finite"):
        fit()
    check_left_as_before(clf, before, task()[0])


# ---------------------------------------------------------------------------
# An exception at each stage of fit
# ---------------------------------------------------------------------------

# (owner, name, k-th call, where it is met): "all" stages are met by every
# kind of call, "fresh" ones only when a network is built.
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
    (RecurrentNetwork, "train_step", 1, "all"),
    (RecurrentNetwork, "train_step", 3, "all"),
    (_Workspace, "get", 5, "all"),
    (RecurrentNetwork, "clip_gradient", 2, "all"),
    (AdamOptimizer, "update", 1, "all"),
    (AdamOptimizer, "update", 3, "all"),
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
    clf, fit = start(kind, clip_norm=1.0, early_stopping=early,
                     validation_fraction=0.34)
    X, y = task()
    before = snapshot(clf)
    raised = error("injected")

    def fail(*args):
        raise raised

    at_call(monkeypatch, owner, name, k, before=fail)
    sample_weight = np.linspace(0.5, 2, len(y))
    with pytest.raises(error) as info:
        if kind == "partial":
            clf.partial_fit(X, y, sample_weight=sample_weight)
        else:
            clf.fit(X, y, sample_weight=sample_weight)
    # Propagated as it was raised (a MemoryError building the network is
    # reworded to name the sizes, with the original as its cause).
    assert info.value is raised or info.value.__cause__ is raised
    monkeypatch.undo()
    check_left_as_before(clf, before, X)


def test_exception_after_a_partial_update_rolls_back(monkeypatch):
    # The optimizer has moved the weights and its moments when it fails.
    clf, fit = start("warm")
    before = snapshot(clf)

    def explode(opt, out, args):
        raise Injected("after the update")

    at_call(monkeypatch, AdamOptimizer, "update", 4, after=explode)
    with pytest.raises(Injected):
        fit()
    check_left_as_before(clf, before, task()[0])


# ---------------------------------------------------------------------------
# KeyboardInterrupt
# ---------------------------------------------------------------------------

def _reference_history(monkeypatch, clf, X, y):
    """Weights after each update and dropout states before each batch."""
    weights, rng_states = [], []
    real_update, real_step = AdamOptimizer.update, RecurrentNetwork.train_step

    def update(opt, params, grad, *args):
        real_update(opt, params, grad, *args)
        weights.append(params.copy())

    def step(net, *args, **kwargs):
        rng_states.append(kwargs["rng"].bit_generator.state)
        return real_step(net, *args, **kwargs)

    monkeypatch.setattr(AdamOptimizer, "update", update)
    monkeypatch.setattr(RecurrentNetwork, "train_step", step)
    clf.fit(X, y)
    monkeypatch.undo()
    return weights, rng_states


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_interrupt_keeps_the_last_completed_batch(monkeypatch, k):
    X, y = task()
    weights, rng_states = _reference_history(monkeypatch, model(), X, y)
    reference = model().fit(X, y)
    clf = model()
    handler = signal.getsignal(signal.SIGINT)
    at_call(monkeypatch, RecurrentNetwork, "train_step", k, before=_interrupt)
    with pytest.raises(KeyboardInterrupt, match=r"interrupted in epoch "
                                               rf"{(k - 1) // 3 + 1}"):
        clf.fit(X, y)
    monkeypatch.undo()
    done = k - 1
    np.testing.assert_array_equal(clf._network.dense_coefs, weights[done - 1])
    assert clf._optimizer.t == done
    assert clf.n_iter_ == done // 3 == len(clf.loss_curve_)
    assert clf.loss_curve_ == reference.loss_curve_[:clf.n_iter_]
    # The dropout stream is where the interrupted batch found it, so that
    # training goes on as if the batch had not been started.
    assert clf._dropout_rng.bit_generator.state == rng_states[done]
    assert signal.getsignal(signal.SIGINT) is handler
    assert np.isfinite(clf.predict_proba(X)).all()
    clf.partial_fit(X, y)
    assert clf._optimizer.t == done + 3


def test_interrupt_with_early_stopping_restores_the_best_weights(monkeypatch):
    X, y = task(60)
    clf = model(early_stopping=True, validation_fraction=0.2, max_iter=20,
                n_iter_no_change=20, learning_rate_init=0.05)
    # 48 training sequences: 6 mini-batches per epoch; stop in the fifth.
    at_call(monkeypatch, RecurrentNetwork, "train_step", 6 * 4 + 2,
            before=_interrupt)
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
    at_call(monkeypatch, RecurrentNetwork, "train_step", 2, before=_interrupt)
    with pytest.raises(KeyboardInterrupt, match="overflow on the training"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


@pytest.mark.parametrize("kind", ["unfitted", "warm"])
def test_interrupt_before_any_batch_or_inside_an_update_rolls_back(
        monkeypatch, kind):
    for owner, name, k, hook in [
            (RecurrentNetwork, "train_step", 1, "before"),
            (AdamOptimizer, "update", 3, "after")]:
        clf, fit = start(kind)
        before = snapshot(clf)
        at_call(monkeypatch, owner, name, k, **{hook: _interrupt})
        with pytest.raises(KeyboardInterrupt):
            fit()
        monkeypatch.undo()
        check_left_as_before(clf, before, task()[0])


def test_interrupt_handler_holds_the_first_sigint():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT has a handler of the test runner's")
    with rnn_module._DeferredInterrupt() as interrupt:
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
        with rnn_module._DeferredInterrupt() as interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        assert seen and not interrupt.requested
    finally:
        signal.signal(signal.SIGINT, previous)


SIGINT_CHILD = textwrap.dedent(
    """
    import json, signal, sys
    import numpy as np
    from sklearn.base import clone
    import seqclf._network
    from seqclf import RNNClassifier
    from seqclf._optim import AdamOptimizer

    early = sys.argv[1] == "early"
    compiled = sys.argv[2] == "compiled"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 6, 2))
    y = (X[:, 0, 0] > 0).astype(int)
    history = []
    real = AdamOptimizer.update

    def update(self, params, grad, *args):
        real(self, params, grad, *args)
        history.append(params.copy())

    def record():
        # Every update's weights, through the per-batch path.
        seqclf._network.COMPILED_LOOP = False
        AdamOptimizer.update = update

    if not compiled:
        record()
    clf = RNNClassifier("gru", (4,), batch_size=4, max_iter=10000, verbose=1,
                        early_stopping=early, n_iter_no_change=10000,
                        random_state=0)
    out = {"interrupted": False}
    try:
        clf.fit(X, y)
    except KeyboardInterrupt as exc:
        t = clf._optimizer.t
        if compiled:
            # The compiled loop is bit-identical to the per-batch path:
            # replay that one for as many epochs and record its weights.
            record()
            clone(clf).set_params(max_iter=clf.n_iter_ + 1, verbose=0).fit(X, y)
            del history[t:]
        per_epoch = 450 if early else 500
        out = dict(
            interrupted=True, message=str(exc), t=t, n_history=len(history),
            n_iter=clf.n_iter_, per_epoch=per_epoch,
            n_losses=len(clf.loss_curve_),
            n_scores=None if not early else len(clf.validation_scores_),
            kept_last=bool(np.array_equal(clf._network.dense_coefs, history[-1])),
            kept_best=bool(early and np.array_equal(clf._network.coefs,
                                                    clf._best_coefs)),
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
@pytest.mark.parametrize("loop", ["batches", "compiled"])
@pytest.mark.parametrize("mode", ["plain", "early"])
def test_interrupt_by_a_real_sigint_during_an_epoch(mode, loop):
    """Ctrl-C in the per-batch loop and in the compiled one (seen between
    its groups of batches) keeps the weights of the last completed batch."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_CHILD, mode, loop],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        for line in proc.stdout:            # the first epoch is over
            if line.startswith("Epoch 1,"):
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
    assert out["t"] == out["n_history"] and out["handler"] and out["finite"]
    assert out["n_iter"] == out["n_losses"] == out["t"] // out["per_epoch"]
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
    clf, fit = start("warm", early_stopping=True, validation_fraction=0.34)
    before = snapshot(clf)
    at_call(monkeypatch, RecurrentNetwork, "decision_function", 2,
            after=lambda net, Z, args: np.full_like(Z, np.inf))
    with pytest.raises(ValueError, match=r"the validation output became "
                                         r"non-finite .* in epoch 2"):
        fit()
    check_left_as_before(clf, before, task()[0])
