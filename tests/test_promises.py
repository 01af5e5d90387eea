"""Answers that must not be silently wrong, and promises the docs make.

* A validation score that cannot be computed is an error, not a silent
  restore of the weights early stopping started from.
* ``class_weight`` values are checked as ``sample_weight``'s are.
* The stopping attributes say what the last fit did (``best_loss_`` None
  with early stopping, no validation record of an earlier fit).
* The NumPy reference checks token ids as the compiled lookup does.
* Input forms read alike: containers' channel names recorded and checked,
  infinite and float16 mask values in every form, lists of univariate
  sequences that do not fix their length, a lone univariate sequence
  warned about, and the ``allow_nan`` tag true to what is accepted.
"""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from seqclf import RNNClassifier, RNNRegressor, _layers, reference


def _task(n=40, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, 6, 3)).astype(np.float32)
    return X, rng.randint(0, 2, n)


# ---------------------------------------------------------------------------
# Validation scores that cannot be computed
# ---------------------------------------------------------------------------

def test_undefined_validation_score_is_an_error_at_the_first_epoch():
    """R² of one validation sequence is NaN: early stopping used to compare
    NaN with NaN, restore the untrained weights and report "max_iter"."""
    X, y = _task()
    reg = RNNRegressor("gru", (4,), max_iter=5, early_stopping=True,
                       random_state=0)
    with pytest.raises(ValueError, match=r"validation score of epoch 1 is "
                       r"not a number: R² cannot be computed on these 1 "
                       r"validation sequence"):
        reg.fit(X, y.astype(float), X_val=X[:1], y_val=[0.5])
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_undefined_validation_score_in_a_warm_start_leaves_the_model():
    X, y = _task()
    reg = RNNRegressor("gru", (4,), max_iter=2, early_stopping=True,
                       random_state=0).fit(X, y.astype(float))
    coefs, scores = reg._network.coefs.copy(), list(reg.validation_scores_)
    reg.set_params(warm_start=True)
    with pytest.raises(ValueError, match="not a number"):
        reg.fit(X, y.astype(float), X_val=X[:1], y_val=[0.5])
    np.testing.assert_array_equal(reg._network.coefs, coefs)
    assert reg.validation_scores_ == scores


# ---------------------------------------------------------------------------
# class_weight checked as sample_weight is
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf, "a", None])
def test_class_weight_values_refused_by_name(value):
    X, y = _task()
    clf = RNNClassifier("gru", (4,), max_iter=1, class_weight={0: value, 1: 1})
    with pytest.raises(ValueError, match="class_weight values must be finite "
                       "numbers >= 0"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_class_weight_of_zero_for_every_sample_is_refused():
    """All zeros trained nothing and reported convergence; the neighbour: a
    partial_fit call whose only class weighs 0."""
    X, y = _task()
    with pytest.raises(ValueError, match="nothing to train on"):
        RNNClassifier("gru", (4,), max_iter=1,
                      class_weight={0: 0, 1: 0}).fit(X, y)
    clf = RNNClassifier("gru", (4,), class_weight={0: 0.0, 1: 1.0})
    clf.partial_fit(X, y, classes=[0, 1])
    before = clf._network.coefs.copy()
    with pytest.raises(ValueError, match="nothing to train on"):
        clf.partial_fit(X[y == 0], y[y == 0])
    np.testing.assert_array_equal(clf._network.coefs, before)


def test_class_weight_times_sample_weight_beyond_float64_is_refused():
    X, y = _task()
    clf = RNNClassifier("gru", (4,), max_iter=1,
                        class_weight={0: 1e300, 1: 1e300})
    with pytest.raises(ValueError, match="class_weight times sample_weight"):
        clf.fit(X, y, sample_weight=np.full(len(y), 1e10))


def test_valid_class_weights_still_weigh_the_loss():
    """Neighbour: integer, NumPy and zero weights for some classes train as
    the equivalent sample weights."""
    X, y = _task()
    cw = {0: np.float32(2.0), 1: 0}
    a = RNNClassifier("gru", (4,), max_iter=2, random_state=0,
                      class_weight=cw).fit(X, y)
    b = RNNClassifier("gru", (4,), max_iter=2, random_state=0).fit(
        X, y, sample_weight=np.where(y == 0, 2.0, 0.0))
    np.testing.assert_array_equal(a._network.coefs, b._network.coefs)


# ---------------------------------------------------------------------------
# Stopping attributes that say what the last fit did
# ---------------------------------------------------------------------------

def test_best_loss_is_none_with_early_stopping():
    X, y = _task()
    clf = RNNClassifier("gru", (4,), max_iter=2, early_stopping=True,
                        random_state=0).fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == 2
    clf = RNNClassifier("gru", (4,), max_iter=2, random_state=0).fit(X, y)
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_warm_start_switching_early_stopping_keeps_no_stale_record():
    X, y = _task()
    clf = RNNClassifier("gru", (4,), max_iter=2, early_stopping=True,
                        random_state=0).fit(X, y)
    clf.set_params(early_stopping=False, warm_start=True).fit(X, y)
    assert clf.validation_scores_ is None
    assert clf.best_validation_score_ is None
    assert clf.best_loss_ == min(clf.loss_curve_[2:])
    clf.set_params(early_stopping=True, max_iter=3).fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == 3
    assert clf.best_validation_score_ == max(clf.validation_scores_)


# ---------------------------------------------------------------------------
# The reference checks token ids as the kernels do
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-1, -4, 4, 10**6])
def test_reference_embedding_refuses_ids_outside_the_rows(bad):
    """The reference read row -1 for id -1 (NumPy's indexing from the end)
    where the compiled lookup refuses it; both now give the same error.
    Ids at padding positions are not read."""
    E = np.arange(12.0).reshape(4, 3)
    ids = np.array([[0, 1, bad], [2, 3, bad]], dtype=np.intp)
    lengths = np.array([3, 2], dtype=np.intp)
    with pytest.raises(ValueError) as compiled:
        _layers.embedding_forward(ids, lengths, E)
    with pytest.raises(ValueError) as ref:
        reference.embedding_forward(ids, lengths, E)
    assert str(ref.value) == str(compiled.value)
    assert f"Token id {bad} (sample 0, step 2)" in str(ref.value)
    with pytest.raises(ValueError, match=f"Token id {bad} "):
        reference.embedding_backward(ids, lengths, np.ones((2, 3, 3)), 4)
    lengths[0] = 2                                  # the bad ids are padding
    np.testing.assert_array_equal(reference.embedding_forward(ids, lengths, E),
                                  _layers.embedding_forward(ids, lengths, E))


# ---------------------------------------------------------------------------
# Channel names of containers
# ---------------------------------------------------------------------------

def _frames(n=20, seed=0, columns=("a", "b")):
    rng = np.random.RandomState(seed)
    return [pd.DataFrame(rng.standard_normal((rng.randint(3, 7), 2)),
                         columns=list(columns)) for _ in range(n)]


def _containers(frames):
    """The same sequences as a list of DataFrames, a pd-multiindex frame
    and a nested frame (sktime's layouts)."""
    multi = pd.concat(dict(enumerate(frames)), names=["instance", "timepoint"])
    nested = pd.DataFrame({c: [f[c].reset_index(drop=True) for f in frames]
                           for c in frames[0].columns})
    return {"list": frames, "multiindex": multi, "nested": nested}


@pytest.mark.parametrize("form", ["list", "multiindex", "nested"])
def test_container_channel_names_are_recorded_and_checked(form):
    frames = _frames()
    y = np.arange(len(frames)) % 2
    clf = RNNClassifier("gru", (4,), max_iter=1, random_state=0)
    clf.fit(_containers(frames)[form], y)
    assert list(clf.feature_names_in_) == ["a", "b"]
    assert clf.n_features_in_ == 2
    swapped = _containers([f[["b", "a"]] for f in frames])[form]
    with pytest.raises(ValueError, match="same order"):
        clf.predict(swapped)
    renamed = _containers([f.rename(columns={"a": "x"}) for f in frames])[form]
    with pytest.raises(ValueError, match="unseen at fit time"):
        clf.predict(renamed)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict([f.to_numpy() for f in frames])
    clf.predict(_containers(frames)[form])               # the same names


def test_list_of_frames_with_different_channels_is_refused():
    """Neighbour: within one call, a list of DataFrames whose channels
    differ between frames was stacked by position."""
    frames = _frames()
    frames[3] = frames[3][["b", "a"]]
    with pytest.raises(ValueError, match=r"X\[3\] has the channels \['b', "
                       r"'a'\], X\[0\] \['a', 'b'\]"):
        RNNClassifier("gru", (4,), max_iter=1).fit(frames,
                                                   np.arange(20) % 2)


def test_refit_on_arrays_drops_the_container_names():
    frames = _frames()
    y = np.arange(len(frames)) % 2
    clf = RNNClassifier("gru", (4,), max_iter=1).fit(frames, y)
    clf.fit([f.to_numpy() for f in frames], y)
    assert not hasattr(clf, "feature_names_in_")


# ---------------------------------------------------------------------------
# One univariate sequence passed alone
# ---------------------------------------------------------------------------

def test_one_univariate_sequence_alone_warns():
    """A (T, 1) array given to a model fitted on T-step sequences reads as
    T sequences of one step: said with a warning that names the fix, at
    the user's line."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((30, 6, 1))
    clf = RNNClassifier("gru", (4,), max_iter=1).fit(X, np.arange(30) % 2)
    with pytest.warns(UserWarning, match=r"shape \(6, 1\), which reads as 6 "
                      r"univariate sequences of 1 step.*X\[None\]") as record:
        assert clf.predict(X[0]).shape == (6,)
    assert record[0].filename == __file__
    assert clf.predict(X[0][None]).shape == (1,)
    # Neighbours: other shapes, and sequences read as meant, say nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(X[:5, :, 0])                     # 5 sequences of 6 steps
        clf.predict(X[0, :4])                        # (4, 1): 4 one-step
        clf.predict([X[0]])


# ---------------------------------------------------------------------------
# Infinite mask values in every input form
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [np.inf, -np.inf])
def test_infinite_mask_value_gives_the_same_model_in_every_form(mask):
    """Padding with inf was refused as "infinity" in an array, a list of
    equal lengths or a list of one sequence, and accepted in a ragged
    list."""
    rng = np.random.RandomState(0)
    seqs = [rng.standard_normal((k, 2)) for k in rng.randint(2, 6, 24)]
    y = np.arange(24) % 2
    padded = np.full((24, 6, 2), mask)
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    ragged = [np.vstack([s, np.full((1, 2), mask)]) for s in seqs]
    ref = RNNClassifier("gru", (4,), max_iter=1, random_state=0).fit(seqs, y)
    for X in (padded, list(padded), ragged):
        clf = RNNClassifier("gru", (4,), max_iter=1, random_state=0,
                            mask_value=mask).fit(X, y)
        np.testing.assert_array_equal(clf._network.coefs, ref._network.coefs)
    np.testing.assert_array_equal(clf.predict_proba([padded[0]]),
                                  ref.predict_proba([seqs[0]]))
    # Non-finite values inside the data stay refused, naming the step.
    bad = padded.copy()
    bad[2, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(sample 2, step 0\)"):
        RNNClassifier("gru", (4,), max_iter=1, mask_value=mask).fit(bad, y)
    bad[2, 0, 1] = -mask
    with pytest.raises(ValueError, match=r"NaN or infinity \(sample 2, step 0\)"):
        RNNClassifier("gru", (4,), max_iter=1, mask_value=mask).fit(bad, y)


# ---------------------------------------------------------------------------
# Lists of equal-length univariate sequences
# ---------------------------------------------------------------------------

def test_list_of_equal_length_sequences_does_not_fix_the_length():
    """A list of 1-D sequences trains the same model whether their lengths
    agree or not, and that model takes lists of any lengths, equal ones
    included (a table of other widths stays refused, as scikit-learn
    refuses a table of other columns)."""
    rng = np.random.RandomState(0)
    y = np.arange(20) % 2
    equal = [rng.standard_normal(5) for _ in range(20)]
    clf = RNNClassifier("gru", (4,), max_iter=1, random_state=0).fit(equal, y)
    ref = RNNClassifier("gru", (4,), max_iter=1, random_state=0).fit(
        np.array(equal)[:, :, None], y)
    np.testing.assert_array_equal(clf._network.coefs, ref._network.coefs)
    longer = [rng.standard_normal(7) for _ in range(3)]
    np.testing.assert_array_equal(clf.predict_proba(longer),
                                  ref.predict_proba(np.array(longer)[:, :, None]))
    np.testing.assert_array_equal(clf.predict_proba(longer[:2] + [longer[2][:4]]),
                                  ref.predict_proba(longer[:2] + [longer[2][:4]]))
    with pytest.raises(ValueError, match="X has 7 features"):
        clf.predict(np.array(longer))
    # Neighbour: with n_steps, equal rows are flattened steps, as before.
    flat = RNNClassifier("gru", (4,), max_iter=1, n_steps=5).fit(equal, y)
    assert flat.n_features_in_ == 5


# ---------------------------------------------------------------------------
# Tags true to what is accepted
# ---------------------------------------------------------------------------

def test_nan_padding_does_not_claim_to_allow_nan():
    """With mask_value=np.nan, NaN is padding (whole steps at the ends),
    not a value allowed anywhere: the tag says so, and scikit-learn's
    pickling check, which puts NaN at random entries, now passes."""
    from sklearn.utils.estimator_checks import check_estimators_pickle
    for Estimator in (RNNClassifier, RNNRegressor):
        est = Estimator("gru", (4,), max_iter=5, mask_value=np.nan,
                        random_state=0)
        assert est.__sklearn_tags__().input_tags.allow_nan is False
        check_estimators_pickle(Estimator.__name__, est)
        # NaN inside the data stays refused; NaN padding is accepted.
        X = np.random.RandomState(0).standard_normal((10, 4, 2))
        y = np.arange(10) % 2
        X[3, 1, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            est.fit(X, y)
        X[3, 1:] = np.nan
        est.fit(X, y)


# ---------------------------------------------------------------------------
# float16 padding compared in float16
# ---------------------------------------------------------------------------

def test_float16_padding_with_a_python_float_mask():
    """np.float16(0.1) == 0.1 under NumPy's comparison: such padding is
    found, in every form, as Keras finds it."""
    rng = np.random.RandomState(0)
    seqs = [rng.standard_normal((k, 2)).astype(np.float16)
            for k in rng.randint(2, 6, 24)]
    y = np.arange(24) % 2
    padded = np.full((24, 6, 2), 0.1, dtype=np.float16)
    for i, s in enumerate(seqs):
        padded[i, 6 - len(s):] = s                  # pre-padding
    ref = RNNClassifier("gru", (4,), max_iter=1, random_state=0).fit(seqs, y)
    for X in (padded, list(padded)):
        clf = RNNClassifier("gru", (4,), max_iter=1, random_state=0,
                            mask_value=0.1).fit(X, y)
        np.testing.assert_array_equal(clf._network.coefs, ref._network.coefs)
    # Neighbours: a mask beyond float16's range would round to infinity,
    # and 0.5 can never equal an integer step: both refused.
    with pytest.raises(ValueError, match="not representable in float16"):
        RNNClassifier("gru", (4,), mask_value=70000.0).fit(padded, y)
    with pytest.raises(ValueError, match="not representable in int64"):
        RNNClassifier("gru", (4,), mask_value=0.5).fit(
            np.arange(48).reshape(8, 6), np.arange(8) % 2)


# ---------------------------------------------------------------------------
# Optimised bytecode
# ---------------------------------------------------------------------------

def test_imports_and_fits_under_python_oo():
    """``python -OO`` strips docstrings: the shared parameter sections that
    are filled into the estimators' docstrings must not fail the import."""
    code = ("import numpy as np; from seqclf import RNNClassifier; "
            "import seqclf.preprocessing, seqclf.reference; "
            "X = np.random.default_rng(0).normal(size=(8, 3, 2)); "
            "print(RNNClassifier('gru', 2, max_iter=1).fit(X, np.arange(8) % 2)"
            ".predict(X).shape)")
    proc = subprocess.run([sys.executable, "-OO", "-c", code],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(8,)"
