"""What RNNClassifier guarantees when a fit fails, diverges or meets odd input.

Each test is named for the class of failure it holds:

* divergence: a model never silently goes NaN;
* rollback: the state after a fit that raised is the state before it;
* settings: parameters changed between calls take effect, data is not
  silently changed;
* clear errors: odd sizes and values give errors naming what is wrong.

Interrupts and injected faults are in ``test_faults.py``, generated cases in
``test_fuzz.py``.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier
from seqclf._optim import AdamOptimizer, SGDOptimizer

from ._state import assert_same_state, snapshot


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: threads would only add synchronisation.
    with threadpool_limits(1, user_api="openmp"):
        yield


def task(n=32, n_steps=4, n_features=2, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_steps, n_features)).astype(dtype)
    return X, (X[:, 0, 0] > 0).astype(int)


def tiny(**kw):
    params = dict(cell="gru", hidden_layer_sizes=(4,), max_iter=2,
                  batch_size=8, random_state=0)
    params.update(kw)
    return RNNClassifier(**params)


def assert_unfitted(clf, X):
    assert set(vars(clf)) == set(clf.get_params()), sorted(vars(clf))
    for method in (clf.predict, clf.predict_proba, clf.predict_log_proba):
        with pytest.raises(NotFittedError):
            method(X)


# ---------------------------------------------------------------------------
# Divergence: never a model that silently predicts NaN
# ---------------------------------------------------------------------------

def test_divergence_sgd_relu_raises_names_causes_and_leaves_unfitted():
    # SGD at learning rate 1 on a relu RNN: the last update of a fit used
    # to leave inf/NaN weights behind a normal return.
    X, y = task(64, n_steps=5)
    clf = tiny(cell="rnn", hidden_layer_sizes=(8,), activation="relu",
               solver="sgd", learning_rate_init=1.0, max_iter=20)
    with pytest.raises(ValueError, match=r"diverged.*epoch \d+, mini-batch "
                                         r"\d+ of 8") as info:
        clf.fit(10 * X, y)
    msg = str(info.value)
    for cause in ("learning_rate_init=1", "clip_norm", "largest |X|", "relu"):
        assert cause in msg
    assert_unfitted(clf, X)


def test_divergence_leaves_the_previous_model():
    X, y = task()
    clf = tiny(solver="sgd", learning_rate_init=0.01, warm_start=True).fit(X, y)
    before = snapshot(clf)
    expected = clf.predict_proba(X)
    clf.set_params(learning_rate_init=1e308, max_iter=5)
    with pytest.raises(ValueError, match=r"diverged: .* in epoch 1, mini-batch"):
        clf.fit(X, y)
    assert_same_state(clf.set_params(learning_rate_init=0.01, max_iter=2),
                      before)
    np.testing.assert_array_equal(clf.predict_proba(X), expected)


def test_divergence_blames_sample_weight():
    # Tiny weights make alpha / sum(weights) overflow the penalty.
    X, y = task()
    with pytest.raises(ValueError, match="Likely causes: sample_weight"):
        tiny(alpha=1.0).fit(X, y, sample_weight=np.full(len(y), 1e-310))
    with pytest.raises(ValueError, match="sample_weight sums to more than"):
        tiny().fit(X, y, sample_weight=np.full(len(y), 1e307))


def test_divergence_float32_model_rejects_float64_beyond_its_range():
    X, y = task(dtype=np.float32)
    clf = tiny().fit(X, y)
    before = snapshot(clf)
    big = X.astype(np.float64)
    big[3, 2, 1] = 1e39                     # finite in float64, inf in float32
    for call in (clf.predict_proba, lambda Z: clf.partial_fit(Z, y),
                 lambda Z: clf.set_params(warm_start=True).fit(Z, y)):
        with pytest.raises(ValueError, match=r"sample 3, step 2\) in float32"):
            call(big)
        assert_same_state(clf.set_params(warm_start=False), before)
    # Lists and 2-D input go through the same check.
    with pytest.raises(ValueError, match="in float32"):
        clf.predict_proba(list(big))


def test_divergence_nonfinite_output_at_predict_is_an_error():
    X, y = task()
    clf = tiny(cell="rnn", activation="relu").fit(X, y)
    clf.weights_[0][0]["U"][...] = 1e200    # the relu state overflows
    clf.weights_[0][0]["b"][...] = 1
    with pytest.raises(ValueError, match="output for sample 0 is not finite"):
        clf.predict_proba(X)


# ---------------------------------------------------------------------------
# Rollback: the state after a fit that raised
# ---------------------------------------------------------------------------

def test_rollback_failed_first_fit_is_not_fitted():
    X, y = task()
    clf = tiny()
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X, np.zeros(len(y)))        # fails after reading X
    assert_unfitted(clf, X)
    with pytest.raises(NotFittedError):
        clf.summary()
    # A failed first partial_fit leaves no classes_ behind.
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X, y + 5, classes=[0, 1])
    assert_unfitted(clf, X)


def test_rollback_failed_refit_on_another_width_keeps_the_model():
    X, y = task(n_features=3)
    clf = tiny().fit(X, y)
    before = snapshot(clf)
    expected = clf.predict_proba(X)
    X5, _ = task(n_features=5)
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X5, np.zeros(len(y)))
    assert_same_state(clf, before)
    assert clf.n_features_in_ == 3
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    clf.fit(X, y)                           # still takes its training data


def test_rollback_failed_refit_with_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = task(n_steps=3, n_features=1)
    df = pd.DataFrame(X[:, :, 0], columns=["a", "b", "c"])
    clf = tiny().fit(df, y)
    before = snapshot(clf)
    with pytest.raises(ValueError):
        clf.fit(X[:, :, 0], np.zeros(len(y)))   # no names, one class
    assert_same_state(clf, before)
    assert list(clf.feature_names_in_) == ["a", "b", "c"]


def test_rollback_restores_a_random_state_instance():
    X, y = task()
    rs = np.random.RandomState(3)
    state = rs.get_state()[1].copy()
    clf = tiny(random_state=rs, early_stopping=True, validation_fraction=0.25)
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X, np.zeros(len(y)))
    np.testing.assert_array_equal(rs.get_state()[1], state)


# ---------------------------------------------------------------------------
# Settings: changes take effect, data is not silently changed
# ---------------------------------------------------------------------------

def _one_step_sgd(**kw):
    return tiny(solver="sgd", momentum=0.0, nesterovs_momentum=False,
                batch_size=32, max_iter=1, shuffle=False, **kw)


def _gradient(clf, X, y):
    net = clf._network
    net.train_step(X, np.full(len(X), X.shape[1], dtype=np.intp),
                   np.searchsorted(clf.classes_, y))
    return net.grads.copy()


@pytest.mark.parametrize("method", ["warm_start", "partial_fit"])
def test_settings_changed_step_size_takes_effect(method):
    X, y = task()
    clf = _one_step_sgd(learning_rate_init=0.1).fit(X, y)
    start, grad = clf._network.coefs.copy(), _gradient(clf, X, y)
    clf.set_params(learning_rate_init=0.5)
    if method == "warm_start":
        clf.set_params(warm_start=True).fit(X, y)
    else:
        clf.partial_fit(X, y)
    np.testing.assert_allclose(clf._network.coefs, start - 0.5 * grad,
                               rtol=1e-12, atol=1e-15)
    assert clf._optimizer.learning_rate == 0.5 and clf._optimizer.t == 1


def test_settings_changed_solver_takes_effect_unchanged_keeps_moments():
    X, y = task()
    clf = tiny(warm_start=True).fit(X, y)
    adam = clf._optimizer
    assert isinstance(adam, AdamOptimizer) and adam.t == 8
    clf.fit(X, y)                           # same settings: the same Adam
    assert clf._optimizer is adam and adam.t == 16
    clf.set_params(solver="sgd").fit(X, y)
    assert isinstance(clf._optimizer, SGDOptimizer) and clf._optimizer.t == 8
    clf.set_params(solver="adam", beta_2=0.99).fit(X, y)
    assert isinstance(clf._optimizer, AdamOptimizer)
    assert clf._optimizer.t == 8 and clf._optimizer.beta_2 == 0.99


def test_settings_changed_solver_for_token_models():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, size=(24, 5))
    y = (ids[:, 0] > 4).astype(int)
    clf = tiny(embedding_dim=3, warm_start=True).fit(ids, y)
    clf.set_params(solver="sgd").fit(ids, y)
    assert isinstance(clf._embedding_optimizer, SGDOptimizer)


def test_settings_float16_padding_is_found_before_conversion():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(rng.integers(2, 6), 2)).astype(np.float16)
            for _ in range(24)]
    y = np.arange(24) % 2
    for value, padding in ((-1.0, "post"), (0.5, "pre"), (np.nan, "post")):
        X = np.full((24, 6, 2), value, dtype=np.float16)
        for i, s in enumerate(seqs):
            if padding == "post":
                X[i, :len(s)] = s
            else:
                X[i, 6 - len(s):] = s
        padded = tiny(mask_value=value).fit(X, y)
        ragged = tiny().fit(seqs, y)
        np.testing.assert_array_equal(padded._network.coefs,
                                      ragged._network.coefs)
    # Padding of np.float16(0.1) with mask_value=0.1: compared in float16,
    # as NumPy compares (0.1 rounds to the padding's value), in an array
    # and in a list alike.
    X = np.full((24, 6, 2), 0.1, dtype=np.float16)
    X[:, :2] = seqs[0][:2]
    data = tiny().fit(X[:, :2], y)
    for padded in (X, list(X)):
        masked = tiny(mask_value=0.1).fit(padded, y)
        np.testing.assert_array_equal(masked._network.coefs,
                                      data._network.coefs)


def test_settings_padding_compared_before_a_lossy_cast():
    # A float32 model given float64 input: a step of 1e-50 is data, even
    # though it becomes 0.0 (the mask value) in float32.
    X, y = task(dtype=np.float32)
    clf = tiny(mask_value=0.0).fit(X, y)
    X64 = X.astype(np.float64)
    X64[:, -1] = 1e-50
    as_data = X.copy()
    as_data[:, -1] = 0
    expected = clf.set_params(mask_value=None).predict_proba(as_data)
    np.testing.assert_array_equal(
        clf.set_params(mask_value=0.0).predict_proba(X64), expected)


@pytest.mark.parametrize("form", ["ragged", "list", "array", "object",
                                  "2d", "dataframe"])
def test_settings_complex_input_rejected_in_every_form(form):
    X, y = task()
    Xc = X + 1j
    if form == "ragged":
        Xc = [Xc[0], Xc[1, :2]] + list(Xc[2:])
    elif form == "list":
        Xc = list(Xc)
    elif form == "object":
        Xc = [np.array(s, dtype=object) for s in Xc[:-1]] + [Xc[-1, :2]]
    elif form == "2d":
        Xc = Xc[:, :, 0]
    elif form == "dataframe":
        pd = pytest.importorskip("pandas")
        Xc = pd.DataFrame(Xc[:, :, 0])
    fitted = tiny(max_iter=1).fit(X if form not in ("2d", "dataframe")
                                  else X[:, :, 0], y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no ComplexWarning: an error
        with pytest.raises((ValueError, TypeError), match="(?i)complex"):
            tiny().fit(Xc, y)
        with pytest.raises((ValueError, TypeError), match="(?i)complex"):
            fitted.predict(Xc)


def test_settings_complex_ids_weights_and_labels_rejected():
    ids = np.arange(40).reshape(10, 4) % 7
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="(?i)complex"):
        tiny(embedding_dim=2).fit(ids + 0j, y)
    with pytest.raises(ValueError, match="(?i)complex"):
        tiny(embedding_dim=2).fit([s + 0j for s in ids[:, :3]] + [ids[0]], y)
    X, y = task()
    with pytest.raises(ValueError, match="(?i)complex"):
        tiny().fit(X, y, sample_weight=np.ones(len(y)) + 1j)


def test_settings_predict_follows_the_fitted_model():
    # set_params after fit does not change how predict reads X.
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, size=(24, 5))
    y = (ids[:, 0] > 4).astype(int)
    clf = tiny(embedding_dim=3).fit(ids, y)
    expected = clf.predict_proba(ids)
    clf.set_params(embedding_dim=None)
    np.testing.assert_array_equal(clf.predict_proba(ids), expected)
    X, y = task()
    clf = tiny().fit(X, y)
    expected = clf.predict_proba(X)
    for params in (dict(embedding_dim=3), dict(vocab_size=5)):
        np.testing.assert_array_equal(
            clf.set_params(**params).predict_proba(X), expected)


# ---------------------------------------------------------------------------
# Clear errors: sizes and values checked before they are computed with
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("sizes, cell", [((2**31,), "rnn"), ((2**31,), "gru"),
                                         ((4, 2**30), "lstm"),
                                         ((2**62,), "rnn")])
def test_clear_error_hidden_layer_sizes_beyond_blas(sizes, cell):
    X, y = task()
    clf = tiny(cell=cell, hidden_layer_sizes=sizes)
    with pytest.raises(ValueError, match="hidden_layer_sizes too large"):
        clf.fit(X, y)
    assert_unfitted(clf, X)


@pytest.mark.parametrize("sizes", [True, np.True_, (4, True), "abc", 4.0,
                                   (4.5,), None, [[4]]])
def test_clear_error_hidden_layer_sizes_of_the_wrong_type(sizes):
    X, y = task()
    with pytest.raises((TypeError, ValueError), match="hidden_layer_sizes"):
        tiny(hidden_layer_sizes=sizes).fit(X, y)


@pytest.mark.parametrize("name", ["batch_size", "max_iter", "n_iter_no_change",
                                  "n_steps", "embedding_dim", "vocab_size"])
def test_clear_error_bool_for_an_integer_parameter(name):
    X, y = task()
    with pytest.raises(TypeError, match=f"{name} must be an int"):
        tiny(**{name: True}).fit(X, y)


@pytest.mark.parametrize("kwargs, ids_high, match", [
    (dict(vocab_size=2**62), 5, "vocab_size"),
    (dict(), 2**62, "largest token id"),
    (dict(), np.iinfo(np.int64).max, "largest token id"),
    (dict(embedding_dim=2**31), 5, "embedding_dim too large"),
    (dict(vocab_size=2**40, embedding_dim=2**24), 5, "more than can be addressed"),
])
def test_clear_error_vocabulary_and_embedding_sizes(kwargs, ids_high, match):
    ids = np.arange(40).reshape(10, 4) % 5
    ids[0, 0] = ids_high
    params = dict(embedding_dim=2)
    params.update(kwargs)
    clf = tiny(**params)
    with pytest.raises(ValueError, match=match):
        clf.fit(ids, np.arange(10) % 2)
    assert_unfitted(clf, ids)


@pytest.mark.parametrize("mask", [1e20, -1e20, 2**70, 0.5, np.nan, np.inf])
def test_clear_error_token_mask_value(mask):
    ids = np.arange(40).reshape(10, 4) % 5
    with pytest.raises(ValueError, match="mask_value must be an integer token id"):
        tiny(embedding_dim=2, mask_value=mask).fit(ids, np.arange(10) % 2)


def test_clear_error_huge_float_mask_value():
    X, y = task()
    # 2**70 is a float64 (and float32) value: it masks as any other.
    padded = np.concatenate([X, np.full((len(X), 2, 2), 2.0**70)], axis=1)
    a = tiny(mask_value=2**70).fit(padded, y)
    b = tiny().fit(X, y)
    np.testing.assert_array_equal(a._network.coefs, b._network.coefs)
    # 2**70 + 1 rounds to it in float32 and float64, as NumPy's comparison
    # rounds it; 2**2000 and 1e300 are beyond float32's range (and 2**2000
    # beyond float64's): no step could equal them.
    for dtype in (np.float32, np.float64):
        c = tiny(mask_value=2**70 + 1).fit(padded.astype(dtype), y)
        assert c.n_iter_ == b.n_iter_
    np.testing.assert_array_equal(
        tiny(mask_value=2**70 + 1).fit(padded, y)._network.coefs,
        b._network.coefs)
    for mask in (2**2000, 1e300):
        with pytest.raises(ValueError, match="not representable in float"):
            tiny(mask_value=mask).fit(padded.astype(np.float32), y)
    with pytest.raises(ValueError, match="not representable in float64"):
        tiny(mask_value=2**2000).fit(padded, y)
    # Integer input compares in its own dtype.
    Xi = np.r_[np.arange(1, 33)].reshape(8, 4)
    with pytest.raises(ValueError, match="not representable in int64"):
        tiny(mask_value=0.5).fit(Xi, np.arange(8) % 2)
    tiny(mask_value=-1).fit(np.c_[Xi, -np.ones((8, 1), int)], np.arange(8) % 2)


def test_clear_error_tags_with_any_mask_value():
    # NaN padding steps are not NaN anywhere: allow_nan is never set.
    for mask in (2**70, 2**2000, np.nan, 0.0, None):
        tags = tiny(mask_value=mask).__sklearn_tags__()
        assert tags.input_tags.allow_nan is False


def test_rollback_unfitted_attributes_raise_not_fitted():
    X, y = task()
    clf = tiny()
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X, np.zeros(len(y)))
    for name in ("weights_", "head_weights_", "embedding_"):
        with pytest.raises(NotFittedError):
            getattr(clf, name)
        assert not hasattr(clf, name)
    with pytest.raises(AttributeError, match="only for a model with embedding_dim"):
        clf.fit(X, y).embedding_
