"""Resources a model uses and never oversteps.

* Memory it does not own is never written: a model loaded from a memory
  map or from pickle buffers trains copies of its arrays (seqclf._ownership),
  and a failed call puts the originals back.
* Threads: every OpenMP region starts at most as many threads as it has
  independent work items, so that ``n_threads`` is an upper bound and a
  small call leaves no idle threads in OpenMP's pool.
* Memory: no temporary of a model's size at initialisation, and no learned
  vocabulary sized by one stray id.
* Output: verbose training never fails for want of a stream to write to.
* The weights a call ends with are checked on the data they were trained on.
"""

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import tracemalloc

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from seqclf import RNNClassifier, RNNRegressor
from seqclf._network import RecurrentNetwork, SoftmaxCrossEntropy
from seqclf._openmp_helpers import effective_n_threads, openmp_enabled

# ---------------------------------------------------------------------------
# Models whose arrays the model does not own
# ---------------------------------------------------------------------------

CONFIGS = {
    "gru-adam": dict(cell="gru", hidden_layer_sizes=(6,)),
    "lstm-bidirectional-sgd": dict(cell="lstm", hidden_layer_sizes=(5, 4),
                                   bidirectional=True, solver="sgd",
                                   learning_rate_init=0.01),
    "rnn-embedding": dict(cell="rnn", hidden_layer_sizes=(5,),
                          embedding_dim=4),
}


def _task(config, n=48, seed=0):
    rng = np.random.RandomState(seed)
    if "embedding_dim" in CONFIGS[config]:
        X = rng.randint(0, 30, size=(n, 7))
    else:
        X = rng.standard_normal((n, 7, 3)).astype(np.float32)
    return X, rng.randint(0, 3, n)


def _fitted(config, Estimator=RNNClassifier, **kw):
    X, y = _task(config)
    est = Estimator(max_iter=2, batch_size=16, random_state=0,
                    **CONFIGS[config], **kw)
    if Estimator is RNNRegressor:
        y = y.astype(float)
    return est.fit(X, y), X, y


def _train_by(est, X, y, how):
    if how == "partial_fit":
        return est.partial_fit(X, y)
    return est.set_params(warm_start=True, max_iter=1).fit(X, y)


def _coefs(est):
    return np.array(est._network.coefs)


def _assert_same_state(a, b):
    np.testing.assert_array_equal(_coefs(a), _coefs(b))
    for name in a._optimizer._state_names:
        np.testing.assert_array_equal(getattr(a._optimizer, name),
                                      getattr(b._optimizer, name))


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_memory_mapped_model_trains_on_copies(tmp_path, config, how):
    """A model loaded with ``mmap_mode="r"`` trains (no segmentation fault
    writing into the read-only map), exactly as the same model in memory,
    and its file is left as it was."""
    est, X, y = _fitted(config)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    saved = path.read_bytes()
    mapped = joblib.load(path, mmap_mode="r")
    assert not mapped._network.coefs.flags.writeable     # what is tested
    in_memory = joblib.load(path)
    _train_by(mapped, X, y, how)
    _train_by(in_memory, X, y, how)
    _assert_same_state(mapped, in_memory)
    assert not np.array_equal(_coefs(mapped), _coefs(est))  # it did train
    assert path.read_bytes() == saved
    np.testing.assert_array_equal(mapped.predict_proba(X),
                                  in_memory.predict_proba(X))


@pytest.mark.parametrize("buffer", [bytes, bytearray])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_model_unpickled_from_out_of_band_buffers_leaves_them(config, buffer):
    """Pickle protocol 5 with out-of-band buffers: the loaded model's arrays
    are views of the buffers (read-only for bytes, writeable for a
    bytearray); training them must change neither."""
    est, X, y = _fitted(config)
    views = []
    data = pickle.dumps(est, protocol=5, buffer_callback=views.append)
    buffers = [buffer(v.raw()) for v in views]
    before = [bytearray(b) for b in buffers]            # copies
    loaded = pickle.loads(data, buffers=buffers)
    reference = pickle.loads(pickle.dumps(est))
    loaded.partial_fit(X, y)
    reference.partial_fit(X, y)
    assert [bytearray(b) for b in buffers] == before
    _assert_same_state(loaded, reference)


def test_failed_calls_on_a_mapped_model_raise_their_own_error(tmp_path):
    """A call refused before training, and one that diverges, are rolled
    back without writing into the map: the user sees the call's error, not
    one of the rollback, and the model predicts as before."""
    est, X, y = _overflowing()
    est.set_params(learning_rate_init=1e-4).fit(X / 10, y)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    saved = path.read_bytes()
    mapped = joblib.load(path, mmap_mode="r")
    expected = mapped.predict_proba(X / 10)
    with pytest.raises(ValueError, match="features"):
        mapped.partial_fit(X[:, :, :2], y)
    mapped.set_params(learning_rate_init=10.0)
    with pytest.raises(ValueError, match="diverged"):
        mapped.partial_fit(X, y)
    X = X / 10
    np.testing.assert_array_equal(mapped.predict_proba(X), expected)
    assert not mapped._network.coefs.flags.writeable   # still the map
    assert path.read_bytes() == saved


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_regressor_loaded_from_a_map_in_any_mode_trains(tmp_path, mode):
    """Neighbours: the regressor, and the writeable maps ("r+" would write
    the training into the file, "c" into private pages)."""
    est, X, y = _fitted("rnn-embedding", RNNRegressor)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    saved = path.read_bytes()
    mapped = joblib.load(path, mmap_mode=mode)
    reference = joblib.load(path)
    mapped.partial_fit(X, y)
    reference.partial_fit(X, y)
    _assert_same_state(mapped, reference)
    del mapped
    assert path.read_bytes() == saved


def test_training_plan_refuses_read_only_arrays():
    """Beneath the estimator, the training plan refuses to write through a
    read-only array instead of crashing."""
    est, X, y = _fitted("gru-adam")
    net, opt = est._network, est._optimizer
    args = (np.asarray(X), np.full(len(X), 7, np.intp), y.astype(np.intp),
            None, 16)
    net.dense_coefs.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        net.plan(*args, opt)
    net.dense_coefs.flags.writeable = True
    opt.m.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        net.plan(*args, opt)
    opt.m.flags.writeable = True
    net.grads.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        net.plan(*args)                 # the gradient only: still written


def test_read_only_and_mapped_inputs_are_read_not_written(tmp_path):
    """Neighbour: the data passed to fit, partial_fit and predict, read-only
    or memory-mapped, are used as they are and left unchanged."""
    X, y = _task("gru-adam")
    w = np.linspace(0.5, 1.5, len(y))
    arrays = {}
    for name, a in (("X", X), ("y", y), ("w", w)):
        np.save(tmp_path / f"{name}.npy", a)
        arrays[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    est = RNNClassifier("gru", (4,), max_iter=1, random_state=0)
    est.fit(arrays["X"], arrays["y"], sample_weight=arrays["w"])
    est.partial_fit(arrays["X"], arrays["y"], sample_weight=arrays["w"])
    est.predict(arrays["X"])
    for name, a in (("X", X), ("y", y), ("w", w)):
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), a)


# ---------------------------------------------------------------------------
# Threads bounded by the work
# ---------------------------------------------------------------------------

THREADS_SCRIPT = textwrap.dedent('''
    import json, os
    import numpy as np
    from seqclf import RNNClassifier, _layers
    from seqclf._openmp_helpers import single_threaded_blas

    def n_threads():
        return len(os.listdir("/proc/self/task"))

    rng = np.random.RandomState(0)
    ids = rng.randint(0, 50, size=(40, 6))
    X = rng.standard_normal((40, 6, 3)).astype(np.float32)
    y = rng.randint(0, 2, 40)
    models = [RNNClassifier("lstm", (8,), embedding_dim=4, batch_size=3,
                            max_iter=1, random_state=0, n_threads=1),
              RNNClassifier("gru", (8, 8), bidirectional=True, batch_size=3,
                            max_iter=1, random_state=0, n_threads=1)]
    inputs = [ids, X]
    L = np.full(3, 6, dtype=np.intp)

    def calls(n):
        for est, data in zip(models, inputs):
            est.set_params(n_threads=n)
            est.fit(data, y)               # batches of 3
            est.partial_fit(data[:3], y[:3])
            est.predict(data[:3])
        params = models[1]._network.layers[0][0].params
        with single_threaded_blas():
            _layers.forward("gru", X[:3], L, params, n_threads=n)
            E = rng.standard_normal((50, 4))
            dX = _layers.embedding_forward(ids[:3], L, E, n_threads=n)
            _layers.embedding_backward(ids[:3], L, dX, 50,
                                       n_threads=n)

    calls(1)
    before = n_threads()
    counts = {}
    for n in (200, 2**40):
        calls(n)
        counts[n] = n_threads()
    print(json.dumps({"before": before, "after": counts}))
''')


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                    reason="counts threads in /proc/self/task (Linux)")
@pytest.mark.skipif(not openmp_enabled(), reason="serial build: no threads")
def test_small_calls_start_no_threads_beyond_their_work(tmp_path):
    """Fits, partial fits, predictions and layer calls on 3 sequences with
    ``n_threads=200`` (and a count beyond a C int) start no thread: each
    region has one work item. In a fresh process, since OpenMP keeps the
    threads it started for the life of the process."""
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert set(report["after"].values()) == {report["before"]}, report


def test_thread_counts_beyond_a_c_int_are_an_upper_bound():
    assert effective_n_threads(2**40) == effective_n_threads(2**31 - 1)
    X, y = _task("gru-adam")
    est = RNNClassifier("gru", (4,), max_iter=1, random_state=0,
                        n_threads=2**40).fit(X, y)
    ref = RNNClassifier("gru", (4,), max_iter=1, random_state=0,
                        n_threads=1).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(X))


# ---------------------------------------------------------------------------
# Memory: initialisation and learned vocabularies
# ---------------------------------------------------------------------------

def test_initialisation_makes_no_temporary_of_the_models_size():
    """The embedding (the largest array of a token model) and the input
    weights are drawn in place, block by block: the peak of NumPy's
    allocations stays far below the size of the parameters, and the values
    are those of one draw of the whole array (models are unchanged)."""
    net = RecurrentNetwork(["gru"], [8], 64, 3, n_tokens=200_000,
                           dtype=np.float32, loss=SoftmaxCrossEntropy())
    size = net.coefs.nbytes                          # 51 MB
    tracemalloc.start()
    try:
        net.initialize(np.random.RandomState(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size / 20, (peak, size)
    expected = np.random.RandomState(0).uniform(-0.05, 0.05, (200_000, 64))
    np.testing.assert_array_equal(net.embedding, expected.astype(np.float32))


def test_learned_vocabulary_refuses_a_stray_large_id():
    X, y = _task("rnn-embedding")
    X[5, 2] = 10**12
    est = RNNClassifier("gru", (4,), embedding_dim=8, max_iter=1)
    with pytest.raises(ValueError, match=r"Token id 1,000,000,000,000 \(sample "
                       r"5, step 2\) is far beyond.*vocab_size="):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_")


def test_sparse_but_real_vocabularies_are_learned():
    """Neighbour: ids spread over a large range but used throughout (a
    tokenizer's ids, a sample of a big vocabulary) are not refused, nor a
    large vocab_size given on purpose."""
    rng = np.random.RandomState(0)
    X = rng.randint(0, 100_000, size=(300, 10))   # ~2,900 distinct ids
    y = rng.randint(0, 2, 300)
    est = RNNClassifier("gru", (4,), embedding_dim=2, max_iter=1).fit(X, y)
    assert est.vocab_size_ == X.max() + 1
    X_small = rng.randint(0, 30, size=(40, 5))
    X_small[0, 0] = 199_999
    est = RNNClassifier("gru", (4,), embedding_dim=2, vocab_size=200_000,
                        max_iter=1).fit(X_small, y[:40])
    assert est.vocab_size_ == 200_000


# ---------------------------------------------------------------------------
# Verbose output without a stream
# ---------------------------------------------------------------------------

def test_verbose_fit_without_stdout(monkeypatch):
    """``sys.stdout`` is None under pythonw and some services: verbose
    training shows nothing and trains the same model."""
    X, y = _task("gru-adam")
    quiet = RNNClassifier("gru", (4,), max_iter=2, random_state=0).fit(X, y)
    monkeypatch.setattr(sys, "stdout", None)
    est = RNNClassifier("gru", (4,), max_iter=2, random_state=0, verbose=2)
    est.fit(X, y)
    est.partial_fit(X, y)
    quiet.partial_fit(X, y)
    np.testing.assert_array_equal(_coefs(est), _coefs(quiet))


@pytest.mark.parametrize("stream", ["closed", "read-only file"])
def test_verbose_fit_on_a_stream_that_fails(monkeypatch, tmp_path, stream):
    """A closed stream, or one that refuses writes, is given up with a
    warning; the fit completes."""
    if stream == "closed":
        out = io.StringIO()
        out.close()
    else:
        (tmp_path / "log").write_text("")
        out = open(tmp_path / "log")        # read-only: writes fail
    X, y = _task("gru-adam")
    monkeypatch.setattr(sys, "stdout", out)
    try:
        with pytest.warns(RuntimeWarning, match="verbose output could not"):
            est = RNNClassifier("gru", (4,), max_iter=2, random_state=0,
                                verbose=2).fit(X, y)
    finally:
        out.close()
    assert est.n_iter_ == 2


class _WriteOnly:
    """A writer as some services install for ``sys.stdout``: ``write``
    alone, no ``flush``."""

    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.append(text)


def test_verbose_fit_on_a_writer_without_flush(monkeypatch):
    X, y = _task("gru-adam")
    out = _WriteOnly()
    monkeypatch.setattr(sys, "stdout", out)
    RNNClassifier("gru", (4,), max_iter=2, random_state=0, verbose=1).fit(X, y)
    text = "".join(out.lines)
    assert "Epoch 2, loss = " in text and "Stopping: reached max_iter=2" in text


# ---------------------------------------------------------------------------
# The final weights checked on the data they were trained on
# ---------------------------------------------------------------------------

def _overflowing(Estimator=RNNClassifier):
    """A relu RNN on inputs of scale 10 with a large SGD step: the last
    update leaves finite weights whose outputs overflow."""
    rng = np.random.RandomState(0)
    X = (10 * rng.standard_normal((64, 50, 4))).astype(np.float32)
    y = rng.randint(0, 2, 64)
    if Estimator is RNNRegressor:
        y = y.astype(float)
    est = Estimator("rnn", (16,), activation="relu", solver="sgd",
                    learning_rate_init=10.0, max_iter=1, batch_size=64,
                    random_state=0)
    return est, X, y


@pytest.mark.parametrize("Estimator", [RNNClassifier, RNNRegressor])
def test_fit_ending_on_overflowing_weights_is_a_divergence(Estimator):
    est, X, y = _overflowing(Estimator)
    with pytest.raises(ValueError, match="Training diverged: the output of "
                       "the final weights on the last mini-batch"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_partial_fit_ending_on_overflowing_weights_rolls_back():
    est, X, y = _overflowing()
    est.set_params(learning_rate_init=1e-4).fit(X / 10, y)
    before, proba = _coefs(est), est.predict_proba(X / 10)
    n_iter, t = est.n_iter_, est._optimizer.t
    est.set_params(learning_rate_init=10.0)
    with pytest.raises(ValueError, match="final weights"):
        est.partial_fit(X, y)
    np.testing.assert_array_equal(_coefs(est), before)
    np.testing.assert_array_equal(est.predict_proba(X / 10), proba)
    assert (est.n_iter_, est._optimizer.t) == (n_iter, t)
