"""seqclf.sktime: the estimators on sktime's interface.

sktime's own conformance checks run on both classes; sktime's ``evaluate``
scores them on data sets that ship in sktime's wheel (BasicMotions:
multivariate; JapaneseVowels: unequal lengths; Tecator: regression); the
tags are checked against what the estimators do; and the adapters'
predictions are compared with the wrapped estimators' on the same data and
settings, which they must equal exactly (the adapters add nothing to the
model). Models are small and seeded: the module runs in seconds.
"""

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sktime", reason='the sktime adapters need the sktime '
                    'extra: pip install "seqclf[sktime]"')

import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold
from sktime.classification.model_evaluation import (
    evaluate as evaluate_classifier,
)
from sktime.classification.model_selection import TSCGridSearchCV
from sktime.datasets import (
    load_basic_motions,
    load_japanese_vowels,
    load_tecator,
    load_unit_test,
)
from sktime.datatypes import convert_to
from sktime.regression.model_evaluation import (
    evaluate as evaluate_regressor,
)
from sktime.utils.estimator_checks import check_estimator

from seqclf import RNNClassifier, RNNRegressor
from seqclf.sktime import (
    RNNTimeSeriesClassifier,
    RNNTimeSeriesRegressor,
)

ADAPTERS = [(RNNTimeSeriesClassifier, RNNClassifier),
            (RNNTimeSeriesRegressor, RNNRegressor)]
ADAPTER_IDS = ["classifier", "regressor"]

# What sktime's containers and fit decide, hence not the adapters' to take.
LEFT_OUT = {"n_steps", "channels_first", "embedding_dim", "vocab_size",
            "warm_start"}

# Small, seeded models that learn these data sets within a second.
SMALL = dict(cell="gru", hidden_layer_sizes=16, learning_rate_init=0.01,
             batch_size=8, random_state=0)


def _series_lengths(X):
    """The length of each series of a nested DataFrame."""
    return {len(X.iat[i, 0]) for i in range(X.shape[0])}


def _tecator_features():
    """Tecator's training spectra, each with its first and second
    differences as two more channels, every channel of every spectrum
    standardised on its own (no statistic shared across series, so none
    crosses folds); the fat content in tenths of a percent."""
    X, y = load_tecator(split="train", return_type="numpy3D")
    d1 = np.diff(X, axis=2, prepend=X[:, :, :1])
    d2 = np.diff(d1, axis=2, prepend=d1[:, :, :1])
    F = np.concatenate([X, d1, d2], axis=1)
    F = F - F.mean(axis=2, keepdims=True)
    return F / F.std(axis=2, keepdims=True), y / 10


# ---------------------------------------------------------------------------
# sktime's conformance checks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("adapter", [
    # 378 checks, about 7 s on 2 cores; the regressor's 211, about 3 s.
    pytest.param(RNNTimeSeriesClassifier, id="classifier", marks=pytest.mark.slow),
    pytest.param(RNNTimeSeriesRegressor, id="regressor"),
])
def test_sktime_estimator_checks_pass(adapter):
    # Every check of sktime's suites for the class and for each instance of
    # get_test_params, on sktime's scenarios: univariate, multivariate and
    # unequal-length panels, pickling, cloning, idempotent fits, tags.
    results = check_estimator(adapter, raise_exceptions=False, verbose=False)
    failed = {name: repr(outcome) for name, outcome in results.items()
              if outcome != "PASSED"}
    assert failed == {}
    assert len(results) > 200
    ran = set(results)
    for check in ("test_fit_idempotent", "test_persistence_via_pickle",
                  "test_multioutput", "test_random_tags",
                  "test_doctest_examples"):
        assert any(name.startswith(check + "[") for name in ran), check
    for scenario in ("Multivariate", "UnequalLength"):
        assert any(scenario in name for name in ran), scenario


# ---------------------------------------------------------------------------
# sktime's evaluate on bundled data
# ---------------------------------------------------------------------------

def test_evaluate_classifier_on_multivariate_basic_motions():
    # 80 series of 6 channels, 4 classes (chance: 0.25).
    X, y = load_basic_motions()
    assert X.shape == (80, 6) and _series_lengths(X) == {100}
    scores = []
    for _ in range(2):
        results = evaluate_classifier(
            RNNTimeSeriesClassifier(**SMALL, max_iter=40), X=X, y=y,
            cv=KFold(4, shuffle=True, random_state=0), scoring=accuracy_score,
            error_score="raise")
        scores.append(results["test_accuracy_score"].to_numpy())
    assert scores[0].min() > 0.6
    assert scores[0].mean() > 0.85
    np.testing.assert_array_equal(scores[0], scores[1])     # seeded


def test_unequal_length_japanese_vowels():
    # 12 channels, 7 to 29 frames, 9 speakers (chance: 1/9).
    X, y = load_japanese_vowels(split="train")
    X_test, y_test = load_japanese_vowels(split="test")
    assert len(_series_lengths(X)) > 10
    clf = RNNTimeSeriesClassifier(**SMALL, max_iter=15).fit(X, y)
    assert clf.score(X_test, y_test) > 0.9

    # evaluate hands the folds over as pd-multiindex frames.
    results = evaluate_classifier(
        RNNTimeSeriesClassifier(**SMALL, max_iter=15), X=X, y=y,
        cv=KFold(3, shuffle=True, random_state=0), error_score="raise")
    assert results["test_accuracy_score"].min() > 0.8

    # The same series zero-padded into numpy3D, the padding masked, give
    # the same model: the ragged series are read for their own lengths.
    n, C = X.shape
    T = max(_series_lengths(X))
    padded = np.zeros((n, C, T))
    for i in range(n):
        series = np.vstack([np.asarray(X.iat[i, c]) for c in range(C)])
        padded[i, :, :series.shape[1]] = series
    masked = RNNTimeSeriesClassifier(**SMALL, max_iter=15,
                                     mask_value=0.0).fit(padded, y)
    np.testing.assert_array_equal(masked.predict_proba(padded),
                                  clf.predict_proba(X))


def test_evaluate_regressor_on_tecator():
    X, y = _tecator_features()
    assert X.shape == (172, 3, 100)
    scores = []
    for _ in range(2):
        results = evaluate_regressor(
            RNNTimeSeriesRegressor(**SMALL, max_iter=20), X=X, y=y,
            cv=KFold(3, shuffle=True, random_state=0), scoring=r2_score,
            error_score="raise")
        scores.append(results["test_r2_score"].to_numpy())
    assert scores[0].min() > 0.8
    np.testing.assert_array_equal(scores[0], scores[1])


def test_tuned_by_sktime_grid_search():
    X, y = load_unit_test(split="train")
    search = TSCGridSearchCV(
        RNNTimeSeriesClassifier(**SMALL),
        param_grid={"hidden_layer_sizes": [1, 8], "max_iter": [1, 10]},
        cv=KFold(2, shuffle=True, random_state=0))
    search.fit(X, y)
    assert search.best_params_ == {"hidden_layer_sizes": 8, "max_iter": 10}
    assert search.best_estimator_.estimator_.hidden_layer_sizes == 8
    assert search.predict(X).shape == (len(y),)


# ---------------------------------------------------------------------------
# The adapters add nothing to the model
# ---------------------------------------------------------------------------

CLASSIFIER_PARAMS = dict(cell="lstm", hidden_layer_sizes=(6, 4),
                         bidirectional=True, dropout=0.1, alpha=1e-4,
                         class_weight="balanced", learning_rate_init=0.01,
                         batch_size=4, max_iter=3, random_state=1)


@pytest.mark.parametrize("mtype", ["nested_univ", "pd-multiindex", "df-list",
                                   "numpy3D"])
def test_classifier_predictions_equal_the_estimators(mtype):
    X, y = load_unit_test(split="train")
    X_test, _ = load_unit_test(split="test")
    X, X_test = convert_to(X, mtype), convert_to(X_test, mtype)
    clf = RNNTimeSeriesClassifier(**CLASSIFIER_PARAMS).fit(X, y)
    # numpy3D is (n, channels, timepoints); the other containers name their
    # axes and are read in their own layout.
    est = RNNClassifier(**CLASSIFIER_PARAMS, channels_first=True).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X_test),
                                  est.predict_proba(X_test))
    np.testing.assert_array_equal(clf.predict(X_test), est.predict(X_test))
    np.testing.assert_array_equal(clf.classes_, est.classes_)


def test_numpy3d_is_read_channels_first():
    # BasicMotions in numpy3D is (n, 6 channels, 100 timepoints): read as
    # 100 steps of 6 features, the same model as from the nested DataFrame.
    X, y = load_basic_motions(split="train")
    X3, _ = load_basic_motions(split="train", return_type="numpy3D")
    assert X3.shape == (40, 6, 100)
    a = RNNTimeSeriesClassifier(**SMALL, max_iter=2).fit(X3, y)
    b = RNNTimeSeriesClassifier(**SMALL, max_iter=2).fit(X, y)
    assert a.estimator_.n_features_in_ == 6
    np.testing.assert_array_equal(a.predict_proba(X3), b.predict_proba(X))


def test_regressor_predictions_equal_the_estimators():
    X, y = _tecator_features()
    params = dict(SMALL, max_iter=3, early_stopping=True,
                  validation_fraction=0.2)
    reg = RNNTimeSeriesRegressor(**params).fit(X[:120], y[:120])
    est = RNNRegressor(**params, channels_first=True).fit(X[:120], y[:120])
    np.testing.assert_array_equal(reg.predict(X[120:]), est.predict(X[120:]))


def test_regressor_fits_several_targets_in_one_network():
    X, y = _tecator_features()
    Y = pd.DataFrame({"fat": y, "half": y / 2})
    reg = RNNTimeSeriesRegressor(**SMALL, max_iter=3).fit(X, Y)
    # capability:multioutput: one network with two outputs, not one fit per
    # target as sktime's vectorisation would make.
    assert not hasattr(reg, "regressors_")
    assert reg.estimator_.n_outputs_ == 2
    pred = reg.predict(X)
    assert isinstance(pred, pd.DataFrame) and list(pred.columns) == ["fat", "half"]
    est = RNNRegressor(**SMALL, max_iter=3, channels_first=True).fit(
        X, Y.to_numpy())
    np.testing.assert_array_equal(pred.to_numpy(), est.predict(X))


# ---------------------------------------------------------------------------
# Parameters, cloning
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("adapter, estimator", ADAPTERS, ids=ADAPTER_IDS)
def test_parameters_are_the_estimators(adapter, estimator):
    mine = inspect.signature(adapter.__init__).parameters
    theirs = inspect.signature(estimator.__init__).parameters
    assert set(theirs) - set(mine) == LEFT_OUT
    assert set(mine) <= set(theirs)
    for name, p in mine.items():
        assert (p.kind, p.default) == (theirs[name].kind,
                                       theirs[name].default), name
        if name != "self":
            assert (f"    {name} :" in adapter.__doc__
                    or f" {name}," in adapter.__doc__
                    or f", {name} :" in adapter.__doc__), name
    # Defaults: the estimator's own, left-out ones included.
    built = adapter().fit(*_small_data(adapter)).estimator_
    defaults = estimator().get_params()
    assert built.get_params() == {**defaults, "channels_first": True}


def _small_data(adapter):
    X, y = load_unit_test(split="train")
    if adapter is RNNTimeSeriesRegressor:
        y = y.astype(float)
    return X, y


@pytest.mark.parametrize("adapter, estimator", ADAPTERS, ids=ADAPTER_IDS)
def test_clone_and_params_round_trip(adapter, estimator):
    params = dict(cell=("rnn", "gru"), hidden_layer_sizes=(3, 2),
                  activation="relu", solver="sgd", max_iter=2, batch_size=4,
                  random_state=3)
    model = adapter(**params)
    assert {k: model.get_params()[k] for k in params} == params
    for copy in (model.clone(), clone(model)):
        assert copy is not model
        assert copy.get_params() == model.get_params()

    X, y = _small_data(adapter)
    model.fit(X, y)
    assert model.estimator_.get_params() == {
        **estimator().get_params(), **params, "channels_first": True}
    fitted_copy = model.clone()
    assert not fitted_copy.is_fitted and not hasattr(fitted_copy, "estimator_")

    # set_params reaches the next fit; the model is rebuilt, not continued.
    model.set_params(max_iter=1, hidden_layer_sizes=(2, 2))
    model.fit(X, y)
    assert model.estimator_.n_iter_ == 1
    assert model.estimator_.hidden_layer_sizes == (2, 2)


def test_bad_parameter_is_a_value_error_at_fit():
    X, y = load_unit_test(split="train")
    with pytest.raises(ValueError, match="'cell' parameter of RNNClassifier"):
        RNNTimeSeriesClassifier(cell="transformer").fit(X, y)


# ---------------------------------------------------------------------------
# Tags, checked against behaviour
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("adapter", [a for a, _ in ADAPTERS], ids=ADAPTER_IDS)
def test_tag_values(adapter):
    tags = adapter.get_class_tags()
    assert tags["capability:multivariate"] is True
    assert tags["capability:unequal_length"] is True
    assert tags["capability:missing_values"] is False
    assert tags["capability:categorical_in_X"] is False
    assert tags["property:randomness"] == "derandomized"
    assert tags["capability:random_state"] is True
    assert tags["python_dependencies"] == "seqclf"
    # The first inner container is what sktime converts others to: it must
    # hold unequal lengths, which numpy3D cannot.
    assert tags["X_inner_mtype"][0] != "numpy3D"
    assert "numpy3D" in tags["X_inner_mtype"]
    if adapter is RNNTimeSeriesClassifier:
        assert tags["capability:predict_proba"] is True
        assert tags["capability:class_weight"] is True
    else:
        assert tags["capability:multioutput"] is True


def test_missing_values_are_refused():
    X, y = load_unit_test(split="train", return_type="numpy3D")
    X = X.copy()
    X[3, 0, 10] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        RNNTimeSeriesClassifier(max_iter=1).fit(X, y)
    # seqclf cannot read a gap in a series either, so the tag is no
    # restriction of the adapter's own.
    with pytest.raises(ValueError, match="NaN"):
        RNNClassifier(max_iter=1, channels_first=True).fit(X, y)


def test_categorical_channels_are_refused():
    X, y = load_unit_test(split="train", return_type="pd-multiindex")
    X = X.assign(dim_0=pd.Categorical(np.where(X["dim_0"] > 500, "hi", "lo")))
    with pytest.raises(TypeError, match="categorical"):
        RNNTimeSeriesClassifier(max_iter=1).fit(X, y)


def test_random_state_derandomizes():
    X, y = load_unit_test(split="train")
    fits = [RNNTimeSeriesClassifier(**dict(SMALL, random_state=seed),
                                    max_iter=2).fit(X, y).predict_proba(X)
            for seed in (0, 0, None, None)]
    np.testing.assert_array_equal(fits[0], fits[1])
    assert not np.array_equal(fits[2], fits[3])


def test_predict_proba_is_the_networks():
    X, y = load_unit_test(split="train")
    proba = RNNTimeSeriesClassifier(**SMALL, max_iter=2).fit(
        X, y).predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Not predict's one-hot rows (sktime's default predict_proba).
    assert np.all((proba > 0) & (proba < 1))


# ---------------------------------------------------------------------------
# Containers at fit and at predict
# ---------------------------------------------------------------------------

def test_any_container_at_predict_without_warnings():
    X, y = load_unit_test(split="train")
    X3 = convert_to(X, "numpy3D")
    clf = RNNTimeSeriesClassifier(**SMALL, max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(clf.predict_proba(X3),
                                      clf.predict_proba(X))
        clf3 = RNNTimeSeriesClassifier(**SMALL, max_iter=2).fit(X3, y)
        np.testing.assert_array_equal(clf3.predict_proba(X),
                                      clf3.predict_proba(X3))


def test_renamed_channels_are_still_an_error():
    X, y = load_basic_motions(split="train")
    clf = RNNTimeSeriesClassifier(**SMALL, max_iter=1).fit(X, y)
    swapped = X[[X.columns[1], X.columns[0], *X.columns[2:]]]
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(swapped)


def test_import_needs_sktime():
    # sktime hidden from the import system, as where it is not installed:
    # seqclf imports, seqclf.sktime says how to install what it needs.
    code = ("import sys; sys.modules['sktime'] = None; import seqclf\n"
            "try:\n    import seqclf.sktime\n"
            "except ImportError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "seqclf[sktime]"' in proc.stdout


def test_docstring_examples():
    import doctest

    import seqclf.sktime

    result = doctest.testmod(seqclf.sktime, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
