"""Generated cases: shapes, lengths, dtypes, masks, labels, parameters, faults.

Every property states what must hold whatever hypothesis draws:

* a fit either succeeds, and then probabilities are finite and sum to one,
  or raises a clear error (``ValueError``, ``TypeError``), and then the
  estimator is not fitted (``NotFittedError`` at predict);
* padded and ragged inputs give the same model;
* a prediction on input that does not match the fit is a valid prediction
  or a clear error;
* a fit that fails at a random point leaves the estimator as it was;
* every input form of the same data reads alike: padding with any mask
  value in arrays, lists and ragged lists, lists of univariate sequences of
  any lengths, the channels of containers by name;
* a SequenceScaler never turns data into the padding an estimator after it
  would drop.

Models are tiny so that an example takes milliseconds. The number of
examples comes from the profiles of ``tests/conftest.py``.
"""

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier
from seqclf._sequences import prepare
from seqclf.preprocessing import SequenceScaler

from ._helpers import inject_fault
from ._state import assert_same_state, snapshot
from .conftest import CELL_NAMES as CELLS

CLEAR = (ValueError, TypeError)
FLOAT_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int64, np.bool_]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1, user_api="openmp"):
        yield


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

@st.composite
def architectures(draw):
    n_layers = draw(st.integers(1, 2))
    cell = draw(st.sampled_from(CELLS) if n_layers == 1 else
                st.tuples(*[st.sampled_from(CELLS)] * n_layers))
    sizes = tuple(draw(st.integers(1, 3)) for _ in range(n_layers))
    return dict(cell=cell, hidden_layer_sizes=sizes if n_layers > 1 else sizes[0],
                bidirectional=draw(st.booleans()),
                activation=draw(st.sampled_from(["tanh", "relu"])))


@st.composite
def training_params(draw):
    return dict(
        solver=draw(st.sampled_from(["adam", "sgd"])),
        learning_rate_init=draw(st.sampled_from([1e-3, 0.05, 1.0])),
        batch_size=draw(st.integers(1, 6)),
        max_iter=draw(st.integers(1, 2)),
        dropout=draw(st.sampled_from([0.0, 0.3])),
        recurrent_dropout=draw(st.sampled_from([0.0, 0.3])),
        clip_norm=draw(st.sampled_from([None, 1.0])),
        alpha=draw(st.sampled_from([0.0, 0.1])),
        shuffle=draw(st.booleans()),
        random_state=draw(st.integers(0, 3)),
    )


@st.composite
def labels(draw, n):
    n_classes = draw(st.integers(1, 3))
    codes = draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    kind = draw(st.sampled_from(["int", "str", "float"]))
    codes = np.asarray(codes)
    if kind == "str":
        return np.array(["a", "b", "c"])[codes]
    return codes.astype(float) * 1.5 if kind == "float" else codes


@st.composite
def sequences(draw, min_n=1):
    """``(X, lengths, mask_value)`` in one of the input forms, or ragged."""
    n = draw(st.integers(min_n, 8))
    F = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    scale = draw(st.sampled_from([1.0, 100.0, 1e-30]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    seqs = [(scale * rng.normal(size=(L, F))).astype(dtype) for L in lengths]
    mask = draw(st.sampled_from([None, 0.0, -1.0, np.nan, 0.5]))
    form = draw(st.sampled_from(["ragged", "padded", "list_of_lists", "flat"]))
    if form == "ragged":
        return seqs, mask
    T = max(lengths)
    if mask is None or form == "flat":
        seqs = [s[:1].repeat(T, axis=0) if len(s) < T else s for s in seqs]
        X = np.stack(seqs)
        if form == "flat":
            return X.reshape(n, T * F), None
        return (X.tolist() if form == "list_of_lists" else X), mask
    if dtype == np.bool_ or (mask != mask and not np.issubdtype(dtype, np.floating)):
        pad_value = 0                       # no such padding: read as data
    else:
        pad_value = np.array(mask).astype(dtype)
    X = np.full((n, T, F), pad_value, dtype=dtype)
    pre = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    for i, s in enumerate(seqs):
        if pre[i]:
            X[i, T - len(s):] = s
        else:
            X[i, :len(s)] = s
    return (X.tolist() if form == "list_of_lists" else X), mask


def check_predictions(clf, X, n):
    try:
        proba = clf.predict_proba(X)
    except ValueError as exc:               # the model's state overflowed
        assert "not finite" in str(exc), exc
        return
    assert proba.shape == (n, len(clf.classes_))
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=1e-5)
    assert set(clf.predict(X)) <= set(clf.classes_)


def check_unfitted(clf, X):
    assert set(vars(clf)) <= set(clf.get_params()), sorted(vars(clf))
    with pytest.raises(NotFittedError):
        clf.predict(X)


def fit_or_clear_error(clf, X, y, **kw):
    """Fit; return True, or False after a clear error left clf unfitted."""
    try:
        clf.fit(X, y, **kw)
    except CLEAR as exc:
        note(f"fit raised {type(exc).__name__}: {exc}")
        check_unfitted(clf, X)
        return False
    return True


def n_of(X):
    return len(X)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

@given(data=sequences(), arch=architectures(), params=training_params(),
       y_seed=st.data())
def test_fuzz_fit_gives_probabilities_or_a_clear_error(data, arch, params, y_seed):
    X, mask = data
    y = y_seed.draw(labels(n_of(X)))
    clf = RNNClassifier(mask_value=mask, **arch, **params)
    if fit_or_clear_error(clf, X, y):
        check_predictions(clf, X, n_of(X))


@given(n=st.integers(2, 6), F=st.integers(1, 2), seed=st.integers(0, 2**16),
       mask=st.sampled_from([0.0, -1.0, np.nan, 1e300, np.inf, -np.inf]),
       dtype=st.sampled_from([np.float32, np.float64]),
       arch=architectures(), data=st.data())
def test_fuzz_padded_equals_ragged(n, F, seed, mask, dtype, arch, data):
    rng = np.random.default_rng(seed)
    lengths = data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    pre = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    seqs = [rng.normal(size=(L, F)).astype(dtype) for L in lengths]
    y = np.arange(n) % 2
    T = max(lengths)
    if dtype == np.float32 and mask == 1e300:
        mask = 2.0**100                     # a float32 value
    X = np.full((n, T, F), mask, dtype=dtype)
    for i, s in enumerate(seqs):
        if pre[i]:
            X[i, T - len(s):] = s
        else:
            X[i, :len(s)] = s
    kw = dict(arch, batch_size=3, max_iter=1, dropout=0.2, random_state=seed)
    ragged = RNNClassifier(**kw).fit(seqs, y)
    # Every form of the same padded data: an array, a list of equal
    # shapes, a ragged list of padded sequences (one padding step more on
    # the first).
    extra = np.full((1, F), mask, dtype=dtype)
    first = np.vstack([X[0], extra]) if not pre[0] else np.vstack([extra, X[0]])
    forms = data.draw(st.sampled_from(["array", "list", "ragged"]))
    padded_X = {"array": X, "list": list(X),
                "ragged": [first] + list(X[1:])}[forms]
    padded = RNNClassifier(mask_value=mask, **kw).fit(padded_X, y)
    np.testing.assert_array_equal(padded._network.coefs, ragged._network.coefs)
    np.testing.assert_array_equal(padded.predict_proba(X), ragged.predict_proba(seqs))
    np.testing.assert_array_equal(padded.predict_proba([X[1]]),
                                  ragged.predict_proba([seqs[1]]))


@given(n=st.integers(2, 6), T=st.integers(1, 5), seed=st.integers(0, 2**16),
       arch=architectures(), data=st.data())
def test_fuzz_lists_of_univariate_sequences_take_any_lengths(n, T, seed, arch,
                                                            data):
    """A model fitted on a list of 1-D sequences of equal lengths reads any
    later list of 1-D sequences, of equal lengths or not, as the same
    sequences given as (length, 1) arrays."""
    rng = np.random.default_rng(seed)
    seqs = [rng.normal(size=T) for _ in range(n)]
    clf = RNNClassifier(**arch, max_iter=1, random_state=0).fit(
        seqs, np.arange(n) % 2)
    lengths = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    if data.draw(st.booleans()):
        lengths = [lengths[0]] * len(lengths)            # equal lengths
    later = [rng.normal(size=L) for L in lengths]
    np.testing.assert_array_equal(
        clf.predict_proba(later), clf.predict_proba([s[:, None] for s in later]))


@given(n=st.integers(2, 5), F=st.integers(1, 3), seed=st.integers(0, 2**16),
       form=st.sampled_from(["list", "multiindex", "nested"]), data=st.data())
def test_fuzz_container_channels_are_checked(n, F, seed, form, data):
    """A model fitted on a container with named channels predicts on the
    same channels in the same order, and refuses them in any other order
    or under other names."""
    import pandas as pd
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(F)]
    frames = [pd.DataFrame(rng.normal(size=(int(rng.integers(1, 5)), F)),
                           columns=names) for _ in range(n)]

    def container(fs):
        if form == "list":
            return fs
        if form == "multiindex":
            return pd.concat(dict(enumerate(fs)), names=["i", "t"])
        return pd.DataFrame({c: [f[c].reset_index(drop=True) for f in fs]
                             for c in fs[0].columns})

    clf = RNNClassifier("gru", 2, max_iter=1, random_state=0).fit(
        container(frames), np.arange(n) % 2)
    order = data.draw(st.permutations(names))
    renamed = data.draw(st.booleans())
    columns = [c + "x" if renamed and i == 0 else c for i, c in enumerate(order)]
    later = [f[order].set_axis(columns, axis=1) for f in frames]
    if columns == names:
        with warnings.catch_warnings():     # arrays have no names: warned
            warnings.simplefilter("ignore", UserWarning)
            expected = clf.predict_proba([f.to_numpy() for f in frames])
        np.testing.assert_array_equal(clf.predict_proba(container(later)),
                                      expected)
    else:
        with pytest.raises(ValueError, match="feature names should match"):
            clf.predict_proba(container(later))


def _mismatched_inputs(draw, X, F):
    """Inputs that differ from the training data in one way or another."""
    n = len(X)
    kind = draw(st.sampled_from(
        ["features", "longer", "shorter", "dtype", "flat", "1d", "4d", "empty",
         "no_steps", "strings", "complex", "nan", "huge", "ragged", "ids",
         "list_of_lists"]))
    rng = np.random.default_rng(0)
    if kind == "features":
        return rng.normal(size=(n, X.shape[1], draw(st.integers(1, 4))))
    if kind == "longer":
        return rng.normal(size=(n, X.shape[1] + draw(st.integers(1, 4)), F))
    if kind == "shorter":
        return X[:, :max(1, X.shape[1] - 1)]
    if kind == "dtype":
        return X.astype(draw(st.sampled_from(FLOAT_DTYPES)))
    if kind == "flat":
        return X.reshape(n, -1)
    if kind == "1d":
        return X.ravel()
    if kind == "4d":
        return X[..., None]
    if kind == "empty":
        return X[:0]
    if kind == "no_steps":
        return X[:, :0]
    if kind == "strings":
        return X.astype(str)
    if kind == "complex":
        return X + 1j
    if kind in ("nan", "huge"):
        Z = X.astype(np.float64)            # 1e39: beyond a float32 model
        Z[draw(st.integers(0, n - 1)), 0, 0] = np.nan if kind == "nan" else 1e39
        return Z
    if kind == "ragged":
        return [X[0], X[-1, :1]] + [x for x in X[1:-1]]
    if kind == "ids":
        return rng.integers(0, 5, size=(n, X.shape[1]))
    return X.tolist()


@given(n=st.integers(2, 6), T=st.integers(1, 4), F=st.integers(1, 3),
       fit_dtype=st.sampled_from([np.float32, np.float64]),
       mask=st.sampled_from([None, 0.0, np.nan]), arch=architectures(),
       data=st.data())
def test_fuzz_predict_on_mismatched_input(n, T, F, fit_dtype, mask, arch, data):
    X = np.random.default_rng(1).normal(size=(n, T, F)).astype(fit_dtype)
    y = np.arange(n) % 2
    flat = data.draw(st.booleans())
    Xfit = X.reshape(n, T * F) if flat else X
    clf = RNNClassifier(mask_value=mask, n_steps=T if flat else None,
                        max_iter=1, batch_size=4, random_state=0, **arch)
    clf.fit(Xfit, y)
    Z = _mismatched_inputs(data.draw, X, F)
    size = len(Z) if isinstance(Z, list) else np.shape(Z)
    note(f"predict on {type(Z).__name__} {size}")
    try:
        proba = clf.predict_proba(Z)
    except CLEAR as exc:
        note(f"{type(exc).__name__}: {exc}")
        return
    assert proba.shape == (n_of(Z), 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=1e-5)


# Values a user might pass: plausible ones, and ones of the wrong type,
# range or size (sizes are small or far beyond what could be allocated,
# never in between).
PARAMETER_VALUES = {
    "cell": ["rnn", "lstm", ("gru", "rnn"), "cnn", ("gru",), 3, True, None],
    "hidden_layer_sizes": [2, (2, 1), True, 0, -1, 2.0, (2, 0), (), "a",
                           2**31, (2, 2**40), 2**62, None, [[2]], np.int8(2)],
    "activation": ["tanh", "relu", "sigmoid", None],
    "bidirectional": [False, True, 1, "yes"],
    "n_steps": [None, 2, 3, 0, -1, 2.5, True, 2**62],
    "mask_value": [None, 0.0, np.nan, np.inf, 2**70, 2**2000, 1e300, "0", True,
                   -1, 1 + 2j],
    "dropout": [0.0, 0.5, 1.0, -0.1, np.nan, None],
    "recurrent_dropout": [0.0, 0.5, 1.0, np.inf],
    "solver": ["adam", "sgd", "lbfgs", None],
    "learning_rate_init": [1e-3, 1.0, 1e300, 0, -1, np.nan, np.inf, None],
    "beta_1": [0.9, 0.0, 1.0, np.nan],
    "beta_2": [0.999, 0.0, 1.0, -1],
    "epsilon": [1e-8, 0, 1e300, np.nan],
    "momentum": [0.9, 0.0, 1.0, 2.0],
    "batch_size": [1, 3, 2**62, 0, -1, True, 2.5, None],
    "max_iter": [1, 2, 0, True, 1.5, None],
    "alpha": [0.0, 1.0, 1e300, -1, np.inf, np.nan],
    "clip_norm": [None, 1.0, 1e-300, 0.0, -1, np.inf, np.nan],
    "early_stopping": [False, True],
    "validation_fraction": [0.1, 0.5, 0.0, 1.0, np.nan],
    "n_iter_no_change": [1, 10, 0, True, 10**12],
    "tol": [1e-4, 0.0, -1, np.inf, np.nan],
    "warm_start": [False, True, 0, "no"],
    "random_state": [0, None, "RandomState", -1, 2**40, "seed"],
    "verbose": [0, False, -1, "loud"],
}


@given(st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in
                                          PARAMETER_VALUES.items()}),
       st.sampled_from(["floats", "ids"]))
def test_fuzz_parameters_give_a_model_or_a_clear_error(params, kind):
    rng = np.random.default_rng(0)
    y = np.arange(12) % 2
    if params.get("random_state") == "RandomState":
        params = dict(params, random_state=np.random.RandomState(0))
    if kind == "ids":
        X = rng.integers(0, 6, size=(12, 3))
        params = dict(params, embedding_dim=2)
    else:
        X = rng.normal(size=(12, 3, 2))
    clf = RNNClassifier(**dict(dict(hidden_layer_sizes=2, max_iter=1,
                                    batch_size=4), **params))
    if fit_or_clear_error(clf, X, y):
        check_predictions(clf, X, len(X))


@given(n=st.integers(2, 8), data=st.data(),
       id_dtype=st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint64]),
       vocab_size=st.sampled_from([None, 3, 8, 100]),
       mask=st.sampled_from([None, 0, -1, 7]),
       arch=architectures(), ragged=st.booleans())
def test_fuzz_token_ids(n, data, id_dtype, vocab_size, mask, arch, ragged):
    lengths = data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    lo = -1 if np.issubdtype(id_dtype, np.signedinteger) and mask == -1 else 0
    seqs = [rng.integers(lo, 10, size=L).astype(id_dtype) for L in lengths]
    y = data.draw(labels(n))
    X = seqs
    if not ragged:
        T = max(lengths)
        X = np.stack([np.resize(s, T) for s in seqs])
    clf = RNNClassifier(embedding_dim=2, vocab_size=vocab_size, mask_value=mask,
                        max_iter=1, batch_size=3, random_state=0, **arch)
    if not fit_or_clear_error(clf, X, y):
        return
    check_predictions(clf, X, n)
    # Unseen ids at predict: the out-of-vocabulary row, or a clear error
    # when vocab_size fixes the vocabulary.
    unseen = [np.array([50, 1, 2], dtype=id_dtype), np.array([1], dtype=id_dtype)]
    if vocab_size is not None and vocab_size <= 50:
        with pytest.raises(ValueError, match="not below vocab_size"):
            clf.predict_proba(unseen)
    else:
        check_predictions(clf, unseen, 2)


# The failures forced into a fit: the fault of the training plan's hook and
# the exception raised at its stops (see tests._helpers.inject_fault).
FAILURES = {
    "nan_loss": ("loss", None),
    "inf_grad": ("gradient", None),
    "inf_norm": ("norm", None),                 # with clip_norm set
    "nan_weight_adam": ("weight", None),
    "nan_weight_sgd": ("weight", None),
    "error_step": ("before_batch", RuntimeError),
    "memory_before_update": ("before_update", MemoryError),
    "memory_update": ("after_update", MemoryError),
    "interrupt_step": ("before_batch", KeyboardInterrupt),
    "interrupt_update": ("after_update", KeyboardInterrupt),
}


@contextlib.contextmanager
def _failing(kind, k):
    """Make the k-th mini-batch of the fit fail as ``kind`` says."""
    what, error = FAILURES[kind]
    # A KeyboardInterrupt without a message, as Ctrl-C raises it: the
    # estimator words it when it keeps the model.
    exception = (None if error is None else error() if error is KeyboardInterrupt
                 else error("injected"))
    with pytest.MonkeyPatch.context() as patches:
        inject_fault(patches, k, what, exception)
        yield


@given(start=st.sampled_from(["unfitted", "refit", "warm", "partial"]),
       kind=st.sampled_from(list(FAILURES)),
       k=st.integers(1, 8), arch=architectures(), n=st.integers(2, 10),
       batch_size=st.integers(1, 4), max_iter=st.integers(1, 3),
       change=st.sampled_from([None, "solver", "learning_rate_init"]),
       early=st.booleans())
def test_fuzz_forced_failure_leaves_the_contract(start, kind, k, arch, n,
                                                 batch_size, max_iter, change,
                                                 early):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3, 2))
    y = np.arange(n) % 2
    solver = "sgd" if kind == "nan_weight_sgd" else "adam"
    early = early and start != "partial" and n >= 8
    clip_norm = 1.0 if kind == "inf_norm" else None
    clf = RNNClassifier(solver=solver, batch_size=batch_size, max_iter=max_iter,
                        dropout=0.1, clip_norm=clip_norm, random_state=0,
                        early_stopping=early, validation_fraction=0.3, **arch)
    if start != "unfitted":
        clf.fit(X, y)
        if change == "solver":
            clf.set_params(solver="sgd" if solver == "adam" else "adam")
        elif change == "learning_rate_init":
            clf.set_params(learning_rate_init=0.01)
    if start == "warm":
        clf.set_params(warm_start=True)
    before = snapshot(clf)
    curve_before = len(getattr(clf, "loss_curve_", []))
    iter_before = getattr(clf, "n_iter_", 0)
    expected_error = FAILURES[kind][1] or ValueError
    with _failing(kind, k):
        try:
            if start == "partial":
                clf.partial_fit(X, y, classes=[0, 1])
            else:
                clf.fit(X, y)
        except expected_error as exc:
            raised = exc
        else:
            raised = None                   # fewer than k calls
    note(f"raised {raised!r}")
    if raised is None:
        check_predictions(clf, X, n)
        return
    if isinstance(raised, KeyboardInterrupt) and "interrupted" in str(raised):
        # Stopped cleanly: a model with counters that agree with it (a
        # warm start adds to loss_curve_; n_iter_ counts this fit's epochs).
        if start == "partial":
            assert clf.n_iter_ == iter_before
            assert len(clf.loss_curve_) == curve_before
        elif start == "warm":
            assert len(clf.loss_curve_) == curve_before + clf.n_iter_
        else:
            assert clf.n_iter_ == len(clf.loss_curve_)
        if clf.early_stopping:
            np.testing.assert_array_equal(clf._network.coefs, clf._best_coefs)
        check_predictions(clf, X, n)
        return
    if isinstance(raised, ValueError):
        assert "diverged" in str(raised) and "mini-batch" in str(raised)
    assert_same_state(clf, before)
    if start == "unfitted":
        check_unfitted(clf, X)
    else:
        check_predictions(clf, X, n)


# ---------------------------------------------------------------------------
# SequenceScaler before a masking estimator
# ---------------------------------------------------------------------------

@st.composite
def scaler_inputs(draw):
    """``(X, kw, mask, lengths)``: sequences of small integers, padded with a
    mask value or ragged, in one of the array forms. Small integers put
    steps at the training means (and at mean - scale) often, where scaling
    lands on 0 (and -1)."""
    n = draw(st.integers(1, 6))
    F = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    mask = draw(st.sampled_from([0.0, -1.0, 1.0]))
    steps = st.lists(st.integers(-2, 2), min_size=F, max_size=F)
    seqs = []
    for L in lengths:
        s = np.array(draw(st.lists(steps, min_size=L, max_size=L)), dtype=dtype)
        s[(s == mask).all(axis=1), 0] = 3       # data, not padding
        seqs.append(s)
    form = draw(st.sampled_from(["ragged", "padded", "rows", "channels_first"]))
    if form == "ragged":
        return seqs, {}, mask, lengths
    T = max(lengths)
    X = np.full((n, T, F), mask, dtype=dtype)
    pre = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    for i, s in enumerate(seqs):
        if pre[i]:
            X[i, T - len(s):] = s
        else:
            X[i, :len(s)] = s
    if form == "rows":
        return X.reshape(n, T * F), {"n_steps": T}, mask, lengths
    if form == "channels_first":
        return X.transpose(0, 2, 1), {"channels_first": True}, mask, lengths
    return X, {}, mask, lengths


@given(data=scaler_inputs(), with_mean=st.booleans(), with_std=st.booleans())
def test_fuzz_scaling_never_turns_data_into_padding(data, with_mean, with_std):
    """The estimator after the scaler, with the same mask_value, reads the
    true lengths from transform's output and from inverse_transform's."""
    X, kw, mask, lengths = data
    sc = SequenceScaler(mask_value=mask, with_mean=with_mean,
                        with_std=with_std, **kw)
    out = sc.fit_transform(X)
    for Z in (out, sc.inverse_transform(out)):
        _, seen, _ = prepare(Z, mask_value=mask, **kw)
        np.testing.assert_array_equal(seen, lengths)
