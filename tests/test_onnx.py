"""The ONNX export run in onnxruntime: outputs equal the estimator's.

Every graph is checked by ``onnx.checker.check_model`` (in ``to_onnx``) and
run by onnxruntime's CPU provider; its probabilities must equal
``predict_proba`` within ``atol=1e-5, rtol=1e-4`` (float32: the kernels and
onnxruntime sum in different orders) and its labels ``predict``.
"""

import re

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the ONNX export needs the onnx extra: "
                    "pip install 'seqclf[onnx]'")
pytest.importorskip("skl2onnx", reason="the ONNX export needs the onnx extra: "
                    "pip install 'seqclf[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="running the exported graphs "
                          "needs the onnx extra: pip install 'seqclf[onnx]'")

import skl2onnx  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from seqclf import RNNClassifier, RNNRegressor  # noqa: E402
from seqclf.onnx import to_onnx  # noqa: E402
from seqclf.preprocessing import SequenceScaler  # noqa: E402

ATOL, RTOL = 1e-5, 1e-4
N, F = 40, 3


def _run(model, **feeds):
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _ragged(rng, T, n=N, min_length=1):
    lengths = rng.integers(min_length, T + 1, size=n)
    seqs = [rng.normal(size=(k, F)).astype(np.float32) for k in lengths]
    return seqs, lengths


def _padded(seqs, T, value, where="post"):
    X = np.full((len(seqs), T, F), value, dtype=np.float32)
    for i, s in enumerate(seqs):
        if where == "post":
            X[i, :len(s)] = s
        else:
            X[i, T - len(s):] = s
    return X


def _assert_same(model, est, X_onnx, X_est, **extra):
    label, proba = _run(model, X=X_onnx, **extra)
    np.testing.assert_allclose(proba, est.predict_proba(X_est),
                               atol=ATOL, rtol=RTOL)
    np.testing.assert_array_equal(label, est.predict(X_est))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_every_cell_and_stack(cell, n_layers, bidirectional):
    rng = np.random.default_rng(n_layers)
    X = rng.normal(size=(N, 12, F)).astype(np.float32)
    y = rng.integers(0, 3, N)
    est = RNNClassifier(cell, (6, 5, 4)[:n_layers], bidirectional=bidirectional,
                        max_iter=2, random_state=0).fit(X, y)
    model = to_onnx(est, X[:1])
    _assert_same(model, est, X, X)
    # The step axis is free: sequences longer than in training.
    long = rng.normal(size=(8, 100, F)).astype(np.float32)
    _assert_same(model, est, long, long)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_lengths_input_runs_each_sequence_to_its_end(cell, bidirectional):
    # The reverse direction must start at each sequence's last data step.
    rng = np.random.default_rng(1)
    T = 100
    seqs, lengths = _ragged(rng, T)
    y = rng.integers(0, 2, N)
    est = RNNClassifier(cell, (5, 4), bidirectional=bidirectional, max_iter=2,
                        random_state=0).fit(seqs, y)
    model = to_onnx(est, np.zeros((1, T, F), np.float32), with_lengths=True)
    # What lies past each length is never read.
    X = _padded(seqs, T, 1e3)
    _assert_same(model, est, X, seqs, lengths=lengths.astype(np.int64))


@pytest.mark.parametrize("where", ["pre", "post"])
@pytest.mark.parametrize("mask_value", [np.nan, -1.0], ids=["nan", "minus1"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_mask_value_padding_is_found_in_the_graph(cell, mask_value, where):
    rng = np.random.default_rng(2)
    T = 30
    seqs, _ = _ragged(rng, T)
    y = rng.integers(0, 3, N)
    X = _padded(seqs, T, mask_value, where)
    est = RNNClassifier(cell, (5,), bidirectional=True, mask_value=mask_value,
                        max_iter=2, random_state=0).fit(X, y)
    model = to_onnx(est, X[:1])
    _assert_same(model, est, X, X)
    # The other side of padding, and other lengths, read the same way.
    other = _padded(seqs, T + 5, mask_value, "post" if where == "pre" else "pre")
    _assert_same(model, est, other, other)


@pytest.mark.parametrize("vocab_size", [None, 30])
def test_token_model(vocab_size):
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 25, size=(N, 15))
    y = rng.integers(0, 2, N)
    est = RNNClassifier("lstm", (6,), embedding_dim=4, vocab_size=vocab_size,
                        bidirectional=True, max_iter=2, random_state=0).fit(ids, y)
    model = to_onnx(est)
    test = rng.integers(0, 25, size=(10, 15))
    if vocab_size is None:
        test[0, :5] = [25, 26, 99, 1000, 10**9]   # unseen: out-of-vocabulary row
    _assert_same(model, est, test.astype(np.int64), test)
    with pytest.raises(Exception, match="out of bounds|out of range|indices"):
        _run(model, X=np.full((1, 15), -1, np.int64))


def test_token_model_with_mask_and_lengths():
    rng = np.random.default_rng(4)
    T = 20
    lengths = rng.integers(1, T + 1, size=N)
    ids = np.zeros((N, T), np.int64)
    for i, k in enumerate(lengths):
        ids[i, T - k:] = rng.integers(1, 30, size=k)          # pre-padded
    y = rng.integers(0, 2, N)
    est = RNNClassifier("gru", (5,), embedding_dim=3, mask_value=0,
                        max_iter=2, random_state=0).fit(ids, y)
    _assert_same(to_onnx(est), est, ids, ids)
    # Lengths given instead: data from step 0, anything after them.
    post = np.full((N, T), 10**6, np.int64)
    for i, k in enumerate(lengths):
        post[i, :k] = ids[i, T - k:]
    model = to_onnx(est, with_lengths=True)
    seqs = [post[i, :k] for i, k in enumerate(lengths)]
    _assert_same(model, est, post, seqs, lengths=lengths.astype(np.int64))


def test_pipeline_with_scaler_through_skl2onnx():
    # MNIST's form: 2-D rows read through n_steps, scaled by StandardScaler,
    # which skl2onnx's own converter handles.
    rng = np.random.default_rng(5)
    T = 28
    X = rng.normal(size=(N, T * F)).astype(np.float32) * 3 + 1
    y = rng.integers(0, 4, N)
    pipe = make_pipeline(StandardScaler(),
                         RNNClassifier("gru", (8,), n_steps=T, max_iter=2,
                                       random_state=0)).fit(X, y)
    model = skl2onnx.to_onnx(pipe, X[:1],
                             options={RNNClassifier: {"zipmap": False}})
    _assert_same(model, pipe, X, X)
    # skl2onnx's default for classifiers: probabilities as ZipMap dicts.
    label, maps = _run(skl2onnx.to_onnx(pipe, X[:1]), X=X)
    proba = np.array([[m[c] for c in pipe.classes_] for m in maps])
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=ATOL, rtol=RTOL)
    np.testing.assert_array_equal(label, pipe.predict(X))


def test_pipeline_with_nan_padding_finds_lengths():
    rng = np.random.default_rng(6)
    T = 25
    seqs, _ = _ragged(rng, T)
    X = _padded(seqs, T, np.nan, "post").reshape(N, T * F)
    y = rng.integers(0, 2, N)
    pipe = make_pipeline(StandardScaler(),
                         RNNClassifier("lstm", (6,), n_steps=T, mask_value=np.nan,
                                       bidirectional=True, max_iter=2,
                                       random_state=0)).fit(X, y)
    _assert_same(to_onnx(pipe, X[:1]), pipe, X, X)
    with pytest.raises(ValueError, match="with_lengths=True is not supported "
                                         "for a Pipeline"):
        to_onnx(pipe, X[:1], with_lengths=True)


@pytest.mark.parametrize("form", ["3-D", "3-D-channels-first", "rows",
                                  "rows-channels-first"])
@pytest.mark.parametrize("mask_value", [None, np.nan, -1.0],
                         ids=["no-mask", "nan", "minus1"])
def test_sequence_scaler_in_a_pipeline(form, mask_value):
    rng = np.random.default_rng(13)
    T = 12
    seqs, _ = _ragged(rng, T, min_length=T if mask_value is None else 1)
    seqs = [s * np.array([1, 10, 100], np.float32) + 5 for s in seqs]
    X = _padded(seqs, T, np.nan if mask_value is None else mask_value, "pre")
    channels_first = form.endswith("channels-first")
    if channels_first:
        X = np.ascontiguousarray(X.transpose(0, 2, 1))
    kw = dict(channels_first=channels_first, mask_value=mask_value)
    if form.startswith("rows"):
        X = X.reshape(N, T * F)
        kw["n_steps"] = T
    y = rng.integers(0, 3, N)
    scaler = SequenceScaler(**kw).fit(X)
    (scaled,) = _run(skl2onnx.to_onnx(scaler, X[:1]), X=X)
    np.testing.assert_allclose(scaled, scaler.transform(X), atol=ATOL, rtol=RTOL)
    pipe = make_pipeline(SequenceScaler(**kw),
                         RNNClassifier("gru", (5,), max_iter=2, random_state=0,
                                       **kw)).fit(X, y)
    _assert_same(to_onnx(pipe, X[:1]), pipe, X, X)


def test_grid_search_best_estimator():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 10, F)).astype(np.float32)
    y = rng.integers(0, 2, 60)
    search = GridSearchCV(RNNClassifier(max_iter=1, random_state=0),
                          {"cell": ["gru", "lstm"], "hidden_layer_sizes": [4]},
                          cv=2).fit(X, y)
    _assert_same(to_onnx(search.best_estimator_, X[:1]), search.best_estimator_,
                 X, X)
    _assert_same(to_onnx(search, X[:1]), search, X, X)


@pytest.mark.parametrize("labels", ["str", "int", "integral-float"])
def test_label_types(labels):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(N, 6, F)).astype(np.float32)
    codes = rng.integers(0, 3, N)
    y = {"str": np.array(["cat", "dog", "eel"])[codes],
         "int": codes * 10 - 7,
         "integral-float": codes.astype(float)}[labels]
    est = RNNClassifier("rnn", (5,), max_iter=2, random_state=0).fit(X, y)
    _assert_same(to_onnx(est, X[:1]), est, X, X)


INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def _labelled(labels, seed=13):
    """A classifier fitted on ``labels``, and an X on which it predicts
    each of them (the class is the level of the first feature)."""
    rng = np.random.default_rng(seed)
    k = np.arange(N) % len(labels)
    X = rng.normal(scale=0.1, size=(N, 6, F)).astype(np.float32)
    X[:, :, 0] += k[:, None]
    est = RNNClassifier("rnn", (5,), max_iter=60, learning_rate_init=0.05,
                        random_state=0).fit(X, labels[k])
    return est, X


@pytest.mark.parametrize("labels", [
    np.array([0, 2**62 + 1, INT64_MAX], dtype=np.uint64),
    np.array([INT64_MIN, -1, INT64_MAX], dtype=np.int64),
    np.array([-2.0**63, 0.0, 2.0**62]),
], ids=["uint64", "int64-ends", "integral-float-ends"])
def test_labels_int64_holds_round_trip_exactly(labels):
    # Not through float64 either: 2**62 + 1 and 2**63 - 1 are not floats.
    est, X = _labelled(labels)
    assert set(est.predict(X).tolist()) == set(labels.tolist())
    label, proba = _run(to_onnx(est, X[:1]), X=X)
    assert label.dtype == np.int64
    assert label.tolist() == [int(c) for c in est.predict(X)]
    # Every class again, as the ZipMap's keys.
    _, maps = _run(to_onnx(est, X[:1], zipmap=True), X=X)
    assert sorted(maps[0]) == sorted(int(c) for c in labels)
    np.testing.assert_allclose([[m[int(c)] for c in est.classes_] for m in maps],
                               proba, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("big", [2**63, 2**64 - 1])
def test_uint64_labels_beyond_int64_are_refused(big):
    est, X = _labelled(np.array([1, 2, big], dtype=np.uint64))
    assert est.classes_.dtype == np.uint64 and est.predict(X).max() == big
    match = re.escape(f"Class label {big} cannot be exported to ONNX: the "
                      f"graph outputs int64 labels, which hold {INT64_MIN} to "
                      f"{INT64_MAX} (-2**63 to 2**63 - 1). Encode y")
    for zipmap in (False, True, "columns"):
        with pytest.raises(ValueError, match=match):
            to_onnx(est, X[:1], zipmap=zipmap)
    # Through skl2onnx's own entry point, alone and in a pipeline.
    with pytest.raises(ValueError, match=match):
        skl2onnx.to_onnx(est, X[:1])
    pipe = make_pipeline(SequenceScaler(), est)
    with pytest.raises(ValueError, match=match):
        to_onnx(pipe, X[:1])


def _relabelled(classes):
    """A fitted classifier whose classes were renamed by assigning classes_."""
    est, X = _labelled(np.array([0, 1, 2]))
    est.classes_ = classes
    return est, X


@pytest.mark.parametrize("classes, shown", [
    (np.array([-(2**63) - 1, 0, 1], dtype=object), str(-(2**63) - 1)),
    (np.array([0, 1, 2**64], dtype=object), str(2**64)),
    (np.array([0, 1, np.uint64(2**63)], dtype=object), str(2**63)),
    (np.array([0.0, 1.0, 2.0**63]), "9.223372036854776e+18"),
    (np.array([-1e300, 0.0, 1.0]), "-1e+300"),
], ids=["python-int-below", "python-int-above", "uint64-object", "float-2**63",
        "float-huge"])
def test_other_labels_beyond_int64_are_refused(classes, shown):
    est, X = _relabelled(classes)
    with pytest.raises(ValueError, match=re.escape(
            f"Class label {shown} cannot be exported to ONNX: the graph "
            f"outputs int64 labels, which hold {INT64_MIN} to {INT64_MAX}")):
        to_onnx(est, X[:1])


def test_labels_of_python_ints_in_int64_round_trip_exactly():
    est, X = _relabelled(np.array([INT64_MIN, 0, INT64_MAX], dtype=object))
    assert set(est.predict(X).tolist()) == {INT64_MIN, 0, INT64_MAX}
    label, _ = _run(to_onnx(est, X[:1]), X=X)
    assert label.tolist() == est.predict(X).tolist()


def test_string_labels_the_graph_cannot_hold_are_refused():
    # ONNX strings are UTF-8: a lone surrogate has no encoding.
    est, X = _relabelled(np.array(["a", "b", "\ud800"], dtype=object))
    with pytest.raises(ValueError, match=re.escape(
            "Class label '\\ud800' cannot be exported to ONNX: the graph's "
            "string labels are UTF-8")):
        to_onnx(est, X[:1])
    # Bytes would come out as strings, which do not equal them.
    est, X = _relabelled(np.array([b"a", b"b", b"c"]))
    with pytest.raises(ValueError, match="must be integers or strings"):
        to_onnx(est, X[:1])
    # Strings UTF-8 encodes, NUL and other characters outside ASCII included,
    # come out as they are.
    classes = np.array(["a\x00b", "\u00e9t\u00e9", "\U0001f600"], dtype=object)
    est, X = _relabelled(classes)
    assert set(est.predict(X).tolist()) == set(classes)
    label, _ = _run(to_onnx(est, X[:1]), X=X)
    assert label.tolist() == est.predict(X).tolist()


@pytest.mark.parametrize("form", ["univariate", "rows", "rows-channels-first",
                                  "channels-first"])
def test_input_forms(form):
    rng = np.random.default_rng(9)
    T = 11
    y = rng.integers(0, 2, N)
    kw = {}
    if form == "univariate":
        X = rng.normal(size=(N, T)).astype(np.float32)
    elif form.startswith("rows"):
        X = rng.normal(size=(N, T * F)).astype(np.float32)
        kw = dict(n_steps=T, channels_first=form.endswith("first"))
    else:
        X = rng.normal(size=(N, F, T)).astype(np.float32)
        kw = dict(channels_first=True)
    est = RNNClassifier("gru", (5,), max_iter=2, random_state=0, **kw).fit(X, y)
    _assert_same(to_onnx(est), est, X, X)


def test_float64_model_runs_in_float32():
    # onnxruntime's recurrent kernels are float32: the weights are rounded.
    rng = np.random.default_rng(10)
    X = rng.normal(size=(N, 20, F))
    y = rng.integers(0, 3, N)
    est = RNNClassifier("lstm", (16, 8), max_iter=3, random_state=0).fit(X, y)
    assert est._network.dtype == np.float64
    model = to_onnx(est, X[:1])             # a float64 graph input, cast inside
    _assert_same(model, est, X, X)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor(n_outputs):
    rng = np.random.default_rng(11)
    seqs, lengths = _ragged(rng, 15)
    y = rng.normal(size=(N, n_outputs)) * 5 + 3
    y = y[:, 0] if n_outputs == 1 else y
    est = RNNRegressor("gru", (6,), bidirectional=True, max_iter=3,
                       random_state=0).fit(seqs, y)
    model = to_onnx(est, np.zeros((1, 15, F), np.float32), with_lengths=True)
    (out,) = _run(model, X=_padded(seqs, 15, 0.0),
                  lengths=lengths.astype(np.int64))
    assert out.shape == (N, n_outputs)
    np.testing.assert_allclose(out.reshape(y.shape), est.predict(seqs),
                               atol=ATOL, rtol=RTOL)


def test_what_cannot_be_converted_says_why():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(N, 5, F)).astype(np.float32)
    y = rng.integers(0, 2, N)
    with pytest.raises(ValueError, match="not fitted"):
        to_onnx(RNNClassifier(), X[:1])
    with pytest.raises(TypeError, match="RNNClassifier, an RNNRegressor or a "
                                        "Pipeline ending in one"):
        to_onnx(StandardScaler().fit(X[:, 0]), X[:1, 0])
    est = RNNClassifier("gru", (4,), max_iter=1, random_state=0)
    days = np.array(["2026-01-01", "2026-06-01"], dtype="datetime64[D]")
    with pytest.raises(ValueError, match="integers or strings"):
        to_onnx(est.fit(X, days[y]), X[:1])
    est.fit(X, y)
    with pytest.raises(ValueError, match="at least 13"):
        to_onnx(est, X[:1], target_opset=12)
    with pytest.raises(ValueError, match="fitted on 3-D sequences"):
        to_onnx(est, X[:1, :, 0])
    with pytest.raises(ValueError, match="fitted on 3 features per step"):
        to_onnx(est, X[:1, :, :2])
    with pytest.raises(ValueError, match="reads real values"):
        to_onnx(est, np.zeros((1, 5, F), np.int64))
    with pytest.raises(ValueError, match="pad ragged sequences"):
        to_onnx(est, [X[0], X[1, :3]])
    with pytest.raises(ValueError, match="A Pipeline needs X"):
        to_onnx(make_pipeline(StandardScaler(), est))
    ids = rng.integers(0, 9, size=(N, 5))
    tok = RNNClassifier("gru", (4,), embedding_dim=2, max_iter=1).fit(ids, y)
    with pytest.raises(ValueError, match="reads token ids"):
        to_onnx(tok, X[:1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaler_keeps_data_off_the_mask_value_in_the_graph(dtype):
    """Steps at the training means scale to 0.0 exactly: with
    mask_value=0 the graph moves them one unit in the last place off it,
    as SequenceScaler does, so that its RNN reads data where seqclf does
    (it read padding, and its probabilities differed by up to 0.27)."""
    rng = np.random.default_rng(3)
    T = 9
    # Pre-padded sequences of pairs of steps 7 and 3 around one step of 5,
    # in the middle or at the end: every feature's mean is exactly 5, so
    # that the steps of 5 scale to exactly 0, the mask value.
    X = np.zeros((N, T, F), dtype=dtype)
    for i in range(N):
        k = int(rng.integers(1, (T - 1) // 2 + 1))
        steps = [7.0, 3.0] * k
        steps.insert(len(steps) if i % 2 else 2 * int(rng.integers(0, k + 1)), 5.0)
        X[i, T - len(steps):] = np.array(steps)[:, None]
    scaler = SequenceScaler(mask_value=0).fit(X)
    assert (scaler.mean_ == 5).all()
    at_mean = (X == 5).all(axis=2)
    assert (scaler.transform(X)[at_mean] == np.nextafter(dtype(0), dtype(1))).all()
    (scaled,) = _run(skl2onnx.to_onnx(scaler, X[:1]), X=X)
    expected = scaler.transform(X)
    np.testing.assert_array_equal(scaled == 0, expected == 0)
    np.testing.assert_allclose(scaled, expected, atol=ATOL, rtol=RTOL)
    y = rng.integers(0, 2, N)
    pipe = make_pipeline(SequenceScaler(mask_value=0),
                         RNNClassifier("gru", (5,), max_iter=2, random_state=0,
                                       mask_value=0)).fit(X, y)
    _assert_same(to_onnx(pipe, X[:1]), pipe, X, X)
