"""Answers that must not be silently wrong, and promises the docs make.

* A validation score that cannot be computed is an error, not a silent
  restore of the weights early stopping started from.
* ``class_weight`` values are checked as ``sample_weight``'s are.
* The stopping attributes say what the last fit did (``best_loss_`` None
  with early stopping, no validation record of an earlier fit).
* The NumPy reference checks token ids as the compiled lookup does.
"""

import numpy as np
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
