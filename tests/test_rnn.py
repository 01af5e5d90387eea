"""RNNClassifier's behaviour as a scikit-learn estimator."""

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier

from ._state import assert_same_state, snapshot
from .conftest import CELL_NAMES as CELLS


def memory_task(n, n_steps=10, n_features=2, seed=0, dtype=np.float64):
    """Class decided by the first step's first feature; later steps are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_steps, n_features)).astype(dtype)
    y = (X[:, 0, 0] > 0).astype(int)
    return X, y


def ragged_task(n, seed=0, n_features=2):
    """Sequences of 3 to 9 steps; the class is the sign of the first step's sum."""
    rng = np.random.default_rng(seed)
    seqs = [rng.normal(size=(rng.integers(3, 10), n_features)) for _ in range(n)]
    y = np.array([int(s[0].sum() > 0) for s in seqs])
    return seqs, y


def small(**kw):
    params = dict(hidden_layer_sizes=(6,), max_iter=3, batch_size=16,
                  random_state=0)
    params.update(kw)
    return RNNClassifier(**params)


# ---------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("cell", CELLS)
def test_learns_a_task_that_needs_memory(cell):
    X, y = memory_task(600, seed=0)
    X_test, y_test = memory_task(300, seed=1)
    clf = RNNClassifier(cell, (16,), max_iter=40, batch_size=32,
                        learning_rate_init=0.01, random_state=0)
    clf.fit(X, y)
    assert clf.score(X_test, y_test) >= 0.9
    assert clf.n_iter_ <= 40 and len(clf.loss_curve_) == clf.n_iter_
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_learns_with_every_option():
    X, y = memory_task(600, seed=0)
    X_test, y_test = memory_task(300, seed=1)
    clf = RNNClassifier(("gru", "lstm"), (12, 8), bidirectional=True,
                        dropout=0.1, recurrent_dropout=0.1, alpha=1e-4,
                        clip_norm=1.0, max_iter=25, batch_size=32,
                        learning_rate_init=0.01, random_state=0)
    clf.fit(X.astype(np.float32), y)
    assert clf.score(X_test.astype(np.float32), y_test) >= 0.9


def test_sgd_learns():
    X, y = memory_task(600, seed=0)
    clf = RNNClassifier("rnn", (16,), solver="sgd", learning_rate_init=0.05,
                        max_iter=40, batch_size=32, random_state=0).fit(X, y)
    assert clf.score(*memory_task(300, seed=1)) >= 0.9


def test_multiclass_and_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(450, 6, 3))
    labels = np.array(["a", "b", "c"])
    y = labels[np.argmax(X[:, 0, :], axis=1)]
    clf = RNNClassifier("gru", (16,), max_iter=40, batch_size=32,
                        learning_rate_init=0.01, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["a", "b", "c"]
    proba = clf.predict_proba(X)
    assert proba.shape == (450, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert clf.score(X, y) >= 0.85


def test_binary_head_has_two_outputs():
    X, y = memory_task(64)
    clf = small().fit(X, y)
    assert clf.head_weights_["W"].shape == (6, 2)
    assert clf.predict_proba(X).shape == (64, 2)


# ---------------------------------------------------------------------------
# Input formats
# ---------------------------------------------------------------------------

def test_2d_step_major_equals_3d():
    X, y = memory_task(80, n_steps=5, n_features=3)
    flat = X.reshape(80, 15)
    a = small(n_steps=5).fit(flat, y)
    b = small().fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(flat), b.predict_proba(X))
    assert a.n_features_in_ == 15 and b.n_features_in_ == 3
    # A model fitted on 2-D data also reads 3-D data with the same features.
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_2d_without_n_steps_is_univariate():
    X, y = memory_task(80, n_steps=7, n_features=1)
    a = small().fit(X[:, :, 0], y)
    b = small().fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X[:, :, 0]),
                                  b.predict_proba(X))


def test_pipeline_with_scaler_on_flat_sequences():
    X, y = memory_task(400, n_steps=8, n_features=3)
    X = X * 50 + 10
    pipe = make_pipeline(StandardScaler(),
                         RNNClassifier("lstm", (16,), n_steps=8, max_iter=30,
                                       batch_size=32, learning_rate_init=0.01,
                                       random_state=0))
    pipe.fit(X.reshape(400, 24), y)
    X_test, y_test = memory_task(200, n_steps=8, n_features=3, seed=1)
    assert pipe.score((X_test * 50 + 10).reshape(200, 24), y_test) >= 0.9


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_cell_and_size(n_jobs):
    X, y = memory_task(120, n_steps=6)
    grid = GridSearchCV(
        small(max_iter=5),
        {"cell": ["rnn", "gru", ("gru", "rnn")], "hidden_layer_sizes": [(4,), (8, 4)]},
        cv=2, n_jobs=n_jobs, error_score="raise",
    )
    # ("gru", "rnn") with one size is an invalid combination: drop it.
    grid.param_grid = [
        {"cell": ["rnn", "gru"], "hidden_layer_sizes": [(4,), (8,)]},
        {"cell": [("gru", "rnn")], "hidden_layer_sizes": [(8, 4)]},
    ]
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 5
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    if n_jobs == 2:
        serial = clone(grid).set_params(n_jobs=1).fit(X, y)
        np.testing.assert_array_equal(grid.cv_results_["mean_test_score"],
                                      serial.cv_results_["mean_test_score"])


def test_clone_and_pickle_round_trip():
    X, y = memory_task(100)
    clf = small(cell=("gru", "lstm"), hidden_layer_sizes=(5, 4),
                bidirectional=True).fit(X, y)
    c = clone(clf)
    assert c.get_params() == clf.get_params() and not hasattr(c, "classes_")
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    # The restored model's weights are still views of its parameters.
    restored.weights_[0][1]["W"][...] = 0
    assert not np.array_equal(restored.predict_proba(X), clf.predict_proba(X))
    # And it trains on.
    restored.partial_fit(X, y)


# ---------------------------------------------------------------------------
# Variable lengths and masking
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True])
def test_ragged_predictions_equal_each_sequence_alone(bidirectional):
    seqs, y = ragged_task(60)
    clf = small(cell=("lstm", "gru"), hidden_layer_sizes=(5, 4),
                bidirectional=bidirectional).fit(seqs, y)
    batch = clf.predict_proba(seqs)
    alone = np.vstack([clf.predict_proba(s[None]) for s in seqs])
    np.testing.assert_allclose(batch, alone, rtol=1e-12, atol=1e-14)


def _pad(seqs, padding, value):
    T = max(len(s) for s in seqs)
    out = np.full((len(seqs), T, seqs[0].shape[1]), value)
    for i, s in enumerate(seqs):
        if padding == "post":
            out[i, :len(s)] = s
        else:
            out[i, T - len(s):] = s
    return out


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("mask_value", [0.0, -1.0, np.nan])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_with_mask_value_equals_ragged(padding, mask_value, bidirectional):
    seqs, y = ragged_task(70)
    kw = dict(cell=("gru", "rnn"), hidden_layer_sizes=(5, 3),
              bidirectional=bidirectional, dropout=0.1, recurrent_dropout=0.1)
    ragged = small(**kw).fit(seqs, y)
    padded_X = _pad(seqs, padding, mask_value)
    padded = small(mask_value=mask_value, **kw).fit(padded_X, y)
    np.testing.assert_allclose(padded._network.coefs, ragged._network.coefs,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(padded.predict_proba(padded_X),
                               ragged.predict_proba(seqs), rtol=1e-10, atol=1e-12)


def test_predict_on_longer_and_shorter_sequences():
    X, y = memory_task(100, n_steps=8)
    clf = small().fit(X, y)
    assert clf.predict(X[:, :3]).shape == (100,)
    assert clf.predict(np.concatenate([X, X], axis=1)).shape == (100,)


def test_mask_value_with_scaler_and_nan_padding():
    seqs, y = ragged_task(120)
    X = _pad(seqs, "post", np.nan)
    flat = X.reshape(120, -1)
    pipe = make_pipeline(StandardScaler(),
                         small(n_steps=X.shape[1], mask_value=np.nan))
    pipe.fit(flat, y)
    assert pipe.predict(flat).shape == (120,)


# ---------------------------------------------------------------------------
# Dtypes, threads, determinism
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, expected", [
    (np.float32, np.float32), (np.float64, np.float64),
    (np.int64, np.float64), (np.float16, np.float64), (bool, np.float64),
])
def test_dtype_rule(dtype, expected):
    X, y = memory_task(40)
    X = (X * 3).astype(dtype)
    clf = small(max_iter=1).fit(X, y)
    assert clf.weights_[0][0]["W"].dtype == expected
    assert clf.predict_proba(X).dtype == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_model_for_any_thread_count(dtype):
    X, y = memory_task(200, seed=3, dtype=dtype)
    kw = dict(cell=("lstm", "gru"), hidden_layer_sizes=(6, 5), bidirectional=True,
              dropout=0.1, recurrent_dropout=0.1, clip_norm=0.5, alpha=1e-3)
    models = []
    for n in (1, 2):
        with threadpool_limits(n, user_api="openmp"):
            models.append(small(**kw).fit(X, y))
    np.testing.assert_array_equal(models[0]._network.coefs, models[1]._network.coefs)
    np.testing.assert_array_equal(models[0].predict_proba(X),
                                  models[1].predict_proba(X))


def test_random_state_reproducible_and_different():
    X, y = memory_task(80)
    a = small(dropout=0.2).fit(X, y).predict_proba(X)
    b = small(dropout=0.2).fit(X, y).predict_proba(X)
    c = small(dropout=0.2, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------------------
# Training control
# ---------------------------------------------------------------------------

def test_warm_start_continues_training():
    X, y = memory_task(100)
    once = small(max_iter=5, dropout=0.1).fit(X, y)
    twice = small(max_iter=2, dropout=0.1, warm_start=True).fit(X, y)
    twice.set_params(max_iter=3).fit(X, y)
    np.testing.assert_array_equal(once._network.coefs, twice._network.coefs)
    assert twice.loss_curve_ == pytest.approx(once.loss_curve_, rel=1e-12)


def test_refit_without_warm_start_starts_afresh():
    X, y = memory_task(100)
    clf = small(max_iter=2)
    first = clf.fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(clf.fit(X, y).predict_proba(X), first)
    assert len(clf.loss_curve_) == 2


def test_partial_fit():
    X, y = memory_task(200)
    clf = small(hidden_layer_sizes=(12,), learning_rate_init=0.01)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:100], y[:100], classes=[0, 1])
    for _ in range(15):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 16
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match=r"labels not in classes_: \[2\]"):
        clf.partial_fit(X[:3], [0, 1, 2])
    # partial_fit equals fit without shuffling, epoch by epoch.
    a = small(shuffle=False, max_iter=3).fit(X, y)
    b = small(shuffle=False)
    for _ in range(3):
        b.partial_fit(X, y, classes=[0, 1])
    np.testing.assert_array_equal(a._network.coefs, b._network.coefs)


def test_partial_fit_on_blocks_equals_fit_epoch_by_epoch():
    # One call per block, in order (as dask_ml's Incremental calls it): each
    # call is one pass over its block in mini-batches, the optimizer's state
    # carried over, so blocks of whole mini-batches give fit's epochs.
    X, y = memory_task(192)
    a = small(shuffle=False, max_iter=2).fit(X, y)
    b = small(shuffle=False)
    for _ in range(2):
        for start in range(0, len(X), 48):
            b.partial_fit(X[start:start + 48], y[start:start + 48],
                          classes=[0, 1])
    assert b.n_iter_ == 8
    np.testing.assert_array_equal(a._network.coefs, b._network.coefs)
    # Blocks that split fit's mini-batches make other mini-batches.
    one = small(shuffle=False, max_iter=1).fit(X, y)
    c = small(shuffle=False)
    for start in range(0, len(X), 40):
        c.partial_fit(X[start:start + 40], y[start:start + 40], classes=[0, 1])
    assert not np.array_equal(one._network.coefs, c._network.coefs)


def test_early_stopping_restores_best_weights():
    X, y = memory_task(300)
    clf = small(early_stopping=True, n_iter_no_change=3, max_iter=200,
                validation_fraction=0.2, learning_rate_init=0.05)
    clf.fit(X, y)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    with pytest.raises(ValueError, match="partial_fit does not support"):
        clf.partial_fit(X, y)


def test_early_stopping_validation_accuracy_of_restored_model(monkeypatch):
    """After early stopping, the model scores best_validation_score_ on the split."""
    import seqclf._rnn as rnn_module

    seen = {}
    real_split = rnn_module.train_test_split

    def spy(*args, **kwargs):
        out = real_split(*args, **kwargs)
        seen["val"] = out[1]
        return out

    monkeypatch.setattr(rnn_module, "train_test_split", spy)
    X, y = memory_task(300)
    clf = small(early_stopping=True, n_iter_no_change=4, max_iter=60,
                validation_fraction=0.3, learning_rate_init=0.05).fit(X, y)
    val = seen["val"]
    assert clf.score(X[val], y[val]) == pytest.approx(clf.best_validation_score_)
    # Stopped early: none of the last n_iter_no_change epochs beat the best
    # score before them by tol (equal scores count as no improvement).
    scores = clf.validation_scores_
    assert clf.n_iter_ == 60 or max(scores[-4:]) < max(scores[:-4]) + clf.tol


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = memory_task(60)
    small(max_iter=3, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4          # the epochs, then why training stopped
    assert re.fullmatch(r"Epoch 1, loss = [0-9.]+, [0-9.]+ s", lines[0])
    assert lines[3] == "Stopping: reached max_iter=3 epochs."
    small(max_iter=2, verbose=1, early_stopping=True, n_iter_no_change=5).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "validation score = " in lines[0]


def test_max_iter_reached_without_warning(recwarn):
    X, y = memory_task(60)
    small(max_iter=2).fit(X, y)
    assert not [w for w in recwarn if "converge" in str(w.message).lower()]


def test_sample_weight_zero_equals_dropping():
    X, y = memory_task(64)
    sw = np.ones(64)
    sw[::4] = 0
    kw = dict(batch_size=64, shuffle=False)
    a = small(**kw).fit(X, y, sample_weight=sw)
    b = small(**kw).fit(X[sw > 0], y[sw > 0])
    np.testing.assert_allclose(a._network.coefs, b._network.coefs, rtol=1e-10,
                               atol=1e-12)


def test_clip_norm_bounds_the_first_step():
    X, y = memory_task(64)
    kw = dict(solver="sgd", momentum=0.0, max_iter=1, batch_size=64,
              shuffle=False)
    init = small(**kw, learning_rate_init=1e-300).fit(X, y)._network.coefs
    clipped = small(**kw, learning_rate_init=1.0, clip_norm=0.01).fit(
        X, y)._network.coefs
    assert np.linalg.norm(clipped - init) == pytest.approx(0.01, rel=1e-6)


# ---------------------------------------------------------------------------
# Weights and summary
# ---------------------------------------------------------------------------

def test_weights_layout_and_setting():
    X, y = memory_task(50, n_features=3)
    clf = small(cell=("gru", "lstm"), hidden_layer_sizes=(5, 4),
                bidirectional=True).fit(X, y)
    w = clf.weights_
    assert len(w) == 2 and len(w[0]) == 2
    assert w[0][0]["W"].shape == (3, 15) and w[0][0]["U"].shape == (5, 15)
    assert set(w[0][1]) == {"W", "U", "b_ih", "b_hh"}
    assert w[1][0]["W"].shape == (10, 16) and w[1][1]["b"].shape == (16,)
    assert clf.head_weights_["W"].shape == (8, 2)
    before = clf.predict_proba(X)
    clf.head_weights_["W"][...] = 0
    clf.head_weights_["b"][...] = [1.0, 0.0]
    np.testing.assert_allclose(clf.predict_proba(X)[:, 0],
                               np.e / (1 + np.e) * np.ones(50))
    assert not np.allclose(before[:, 0], clf.predict_proba(X)[:, 0])


def _total_params(clf):
    lines = []
    clf.summary(print_fn=lines.append)
    totals = [l for l in lines if l.startswith("Total params: ")]
    assert len(totals) == 1
    return int(totals[0].split(": ")[1].replace(",", "")), lines


@pytest.mark.parametrize("cell, sizes, n_features, bidirectional, expected", [
    ("rnn", (32,), 32, False, 2_410),
    (("gru", "rnn"), (256, 128), 64, False, 297_866),
    ("lstm", (128,), 64, False, 100_106),
    ("lstm", (128,), 64, True, 2 * 98_816 + 256 * 10 + 10),
    (("gru", "rnn"), (8, 4), 3, True, 2 * 3 * (3 * 8 + 8 * 8 + 2 * 8)
     + 2 * (16 * 4 + 4 * 4 + 4) + 8 * 10 + 10),
])
def test_summary_counts_match_keras(cell, sizes, n_features, bidirectional,
                                    expected):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2, n_features))
    y = np.arange(20) % 10
    clf = RNNClassifier(cell, sizes, bidirectional=bidirectional, max_iter=1,
                        batch_size=20, random_state=0).fit(X, y)
    total, lines = _total_params(clf)
    assert total == expected
    assert total == clf._network.coefs.size
    assert any("Dense" in l and "(None, 10)" in l for l in lines)


def test_summary_before_fit_raises():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        RNNClassifier().summary()


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

@pytest.fixture
def fitted():
    X, y = memory_task(40, n_steps=4, n_features=3)
    return small(max_iter=1).fit(X, y), X, y


def test_nan_and_inf_rejected():
    X, y = memory_task(20)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 2, 1] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            small().fit(Xb, y)
    seqs, y_seqs = ragged_task(10)
    seqs[4] = seqs[4].copy()
    seqs[4][1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(sample 4, step 1\)"):
        small().fit(seqs, y_seqs)
    # With mask_value=NaN, NaN only marks whole padding steps.
    Xb = X.copy()
    Xb[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(sample 3, step 2\)"):
        small(mask_value=np.nan).fit(Xb, y)
    Xb[3, 2] = np.nan
    with pytest.raises(ValueError, match="between data steps"):
        small(mask_value=np.nan).fit(Xb, y)


def test_predict_checks_plain_arrays_as_other_inputs(fitted):
    # A 3-D float ndarray of the fitted shape skips scikit-learn's
    # check_array at predict: same answers as the other input forms, and
    # still every check.
    clf, X, y = fitted
    expected = clf.predict_proba(list(X))
    for Xp in (X, X.astype(np.float32), np.asfortranarray(X),
               X[:, :, ::-1].copy()[:, :, ::-1], X.tolist()):
        np.testing.assert_allclose(clf.predict_proba(Xp), expected,
                                   rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(clf.predict_proba(X[:1]), expected[:1])
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[5, 3, 2] = bad
        with pytest.raises(ValueError, match=r"NaN or infinity \(sample 5, step 3\)"):
            clf.predict_proba(Xb)
    # Finite values whose sum overflows are still accepted.
    big = np.full_like(X[:2], 1e308)
    assert np.isfinite(clf.predict_proba(big)).all()
    with pytest.raises(ValueError, match="n_steps=4 does not agree"):
        clf.set_params(n_steps=4).predict(X[:, :3])
    clf.set_params(n_steps=None)
    with pytest.raises(ValueError, match="0 sample"):
        clf.predict(X[:0])
    with pytest.raises(ValueError, match="at least one step"):
        clf.predict(X[:, :0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        clf.predict(X.astype(complex))


def test_wrong_number_of_features_at_predict(fitted):
    clf, X, y = fitted
    with pytest.raises(ValueError, match="3 features per step"):
        clf.predict(X[:, :, :2])
    flat = small(n_steps=4, max_iter=1).fit(X.reshape(40, 12), y)
    with pytest.raises(ValueError, match="X has 8 features, but RNNClassifier "
                                         "is expecting 12 features"):
        flat.predict(X[:, :, :2].reshape(40, 8))
    seqs = [X[0, :, :2], X[1, :3, :2]]
    with pytest.raises(ValueError, match="3 features per step"):
        clf.predict(seqs)


def test_zero_length_and_empty_inputs(fitted):
    clf, X, y = fitted
    with pytest.raises(ValueError, match=r"X\[1\] has zero steps"):
        clf.predict([X[0], X[1, :0], X[2, :2]])
    with pytest.raises(ValueError, match="at least one step"):
        small().fit(np.zeros((5, 0, 3)), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="0 sample"):
        small().fit(np.zeros((0, 4, 3)), [])
    with pytest.raises(ValueError, match="all padding"):
        small(mask_value=0.0).fit(np.r_[X[:2], np.zeros((1, 4, 3))], [0, 1, 0])


def test_width_not_a_multiple_of_n_steps():
    X, y = memory_task(20, n_steps=4, n_features=3)
    with pytest.raises(ValueError, match="12 columns, which is not a multiple "
                                         "of n_steps=5"):
        small(n_steps=5).fit(X.reshape(20, 12), y)


def test_n_steps_disagreeing_with_3d_or_list():
    X, y = memory_task(20, n_steps=4)
    with pytest.raises(ValueError, match="n_steps=5 does not agree"):
        small(n_steps=5).fit(X, y)
    seqs, y = ragged_task(20)
    with pytest.raises(ValueError, match="n_steps=5 does not agree"):
        small(n_steps=5).fit(seqs, y)


def test_single_class():
    X, _ = memory_task(20)
    with pytest.raises(ValueError, match="only one class"):
        small().fit(X, np.zeros(20))


def test_non_numeric_X():
    X = np.array([[["a", "b"], ["c", "d"]]] * 4)
    with pytest.raises(ValueError, match="could not convert|string"):
        small().fit(X, [0, 1, 0, 1])
    seqs = [np.array([["a"], ["b"]]), np.array([[1.0]])]
    with pytest.raises(TypeError, match=r"X\[0\] must hold numbers"):
        small().fit(seqs, [0, 1])


@pytest.mark.parametrize("params, match", [
    (dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes must be positive"),
    (dict(hidden_layer_sizes=(-3,)), "hidden_layer_sizes must be positive"),
    (dict(hidden_layer_sizes=()), "at least one layer"),
    (dict(cell="transformer"), "cell"),
    (dict(cell=("gru", "rnn"), hidden_layer_sizes=(8,)), "one cell per layer"),
    (dict(cell=("gru", "cnn"), hidden_layer_sizes=(8, 4)), "cell must be one of"),
    (dict(batch_size=0), "batch_size"),
    (dict(dropout=1.0), "dropout"),
    (dict(activation="sigmoid"), "activation"),
    (dict(solver="lbfgs"), "solver"),
    (dict(n_steps=0), "n_steps"),
])
def test_bad_parameters(params, match):
    X, y = memory_task(20)
    with pytest.raises(ValueError, match=match):
        small(**params).fit(X, y)


def test_bad_dimensions():
    with pytest.raises(ValueError, match="Expected 2D array|shape"):
        small().fit(np.zeros(5), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="must be 2-D .* 3-D"):
        small().fit(np.zeros((4, 2, 2, 2)), [0, 1, 0, 1])


def test_warm_start_with_changed_architecture():
    X, y = memory_task(30)
    clf = small(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="architecture"):
        clf.set_params(hidden_layer_sizes=(7,)).fit(X, y)


def test_joblib_workers_get_their_share_of_threads():
    """GridSearchCV(n_jobs=2) workers do not each start every core's threads."""
    import os

    from joblib import Parallel, delayed

    from seqclf._openmp_helpers import effective_n_threads

    per_worker = Parallel(n_jobs=2)(delayed(effective_n_threads)() for _ in range(2))
    share = max(1, (os.cpu_count() or 1) // 2)
    assert all(n <= share for n in per_worker)


def test_sample_weight_checks_and_zero_weight_batches():
    X, y = memory_task(64)
    with pytest.raises(ValueError, match="(?i)negative values .*sample_weight"):
        small().fit(X, y, sample_weight=-np.ones(64))
    with pytest.raises(ValueError, match="at least one non-zero"):
        small().fit(X, y, sample_weight=np.zeros(64))
    # A batch whose weights are all zero is skipped, not a division by zero.
    sw = np.r_[np.zeros(16), np.ones(48)]
    clf = small(shuffle=False, batch_size=16).fit(X, y, sample_weight=sw)
    assert np.all(np.isfinite(clf.loss_curve_))


def test_docstring_examples():
    import doctest

    import seqclf._rnn

    result = doctest.testmod(seqclf._rnn, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------
# Refitting on another input form
# ---------------------------------------------------------------------------
#
# A fit without warm_start starts afresh: every fitted attribute describes
# the last fit only, as if the estimator had never been fitted before.

def id_task(n=32, n_steps=5, vocab=10, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(n, n_steps))
    return ids, (ids[:, 0] >= vocab // 2).astype(int)


def ragged_id_task(n=32, vocab=12, seed=1):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, vocab, size=rng.integers(2, 7)) for _ in range(n)]
    seqs[0][0] = vocab - 1              # the learned vocabulary is `vocab`
    return seqs, np.array([int(s[0] >= vocab // 2) for s in seqs])


def refit_model(**kw):
    return small(cell="gru", hidden_layer_sizes=(4,), max_iter=2, batch_size=8,
                 **kw)


def assert_as_fresh(clf, X, y):
    """``clf`` holds exactly what a fresh estimator fitted on ``X, y`` holds."""
    fresh = clone(clf).fit(X, y)
    assert_same_state(clf, snapshot(fresh))


def test_refit_dataframe_then_ragged_ids_drops_feature_names():
    pd = pytest.importorskip("pandas")
    ids, y = id_task()
    df = pd.DataFrame(ids, columns=[f"t{i}" for i in range(ids.shape[1])])
    clf = refit_model(embedding_dim=3).fit(df, y)
    assert list(clf.feature_names_in_) == list(df.columns)
    assert clf.n_features_in_ == 5 and clf.vocab_size_ == 10
    seqs, y2 = ragged_id_task()
    clf.fit(seqs, y2)
    assert not hasattr(clf, "feature_names_in_")
    assert clf.n_features_in_ == 1 and clf.vocab_size_ == 12
    assert_as_fresh(clf, seqs, y2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "fitted with feature names"
        clf.predict(seqs)


def test_refit_ids_then_floats_drops_vocab_size():
    ids, y = id_task()
    clf = refit_model(embedding_dim=3).fit(ids, y)
    assert clf.vocab_size_ == 10
    X, y2 = memory_task(32, n_steps=4)
    clf.set_params(embedding_dim=None).fit(X, y2)
    assert not hasattr(clf, "vocab_size_")
    assert not hasattr(clf, "embedding_")
    assert clf.n_features_in_ == 2
    assert_as_fresh(clf, X, y2)


def test_refit_floats_then_ids_records_the_new_input_only():
    pd = pytest.importorskip("pandas")
    X, y = memory_task(32, n_steps=4, n_features=1)
    df = pd.DataFrame(X[:, :, 0], columns=["a", "b", "c", "d"])
    clf = refit_model().fit(df, y)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"]
    assert not hasattr(clf, "vocab_size_")
    seqs, y2 = ragged_id_task()
    clf.set_params(embedding_dim=3).fit(seqs, y2)
    assert not hasattr(clf, "feature_names_in_")
    assert clf.n_features_in_ == 1 and clf.vocab_size_ == 12
    assert clf.embedding_.shape == (13, 3)  # one out-of-vocabulary row
    assert_as_fresh(clf, seqs, y2)


def test_failed_refit_on_another_form_keeps_the_previous_attributes():
    pd = pytest.importorskip("pandas")
    ids, y = id_task()
    df = pd.DataFrame(ids, columns=[f"t{i}" for i in range(ids.shape[1])])
    clf = refit_model(embedding_dim=3).fit(df, y)
    expected = clf.predict_proba(df)
    X, _ = memory_task(32, n_steps=4)
    clf.set_params(embedding_dim=None)
    before = snapshot(clf)
    # Fails once the new input has been read (its facts recorded) ...
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X, np.zeros(len(X)))
    assert_same_state(clf, before)
    # ... and while reading it.
    X_nan = X.copy()
    X_nan[3, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X_nan, y)
    assert_same_state(clf, before)
    assert list(clf.feature_names_in_) == list(df.columns)
    assert clf.vocab_size_ == 10 and clf.n_features_in_ == 5
    clf.set_params(embedding_dim=3)
    np.testing.assert_array_equal(clf.predict_proba(df), expected)

    # The other way: a failed fit records no names or vocabulary.
    clf = refit_model().fit(X, y)
    clf.set_params(embedding_dim=3)
    before = snapshot(clf)
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(df, np.zeros(len(df)))
    assert_same_state(clf, before)
    assert not hasattr(clf, "feature_names_in_")
    assert not hasattr(clf, "vocab_size_")


# ---------------------------------------------------------------------------
# Training controls: class weights, validation data, stopping
# ---------------------------------------------------------------------------

def test_class_weight_multiplies_sample_weight():
    X, y = memory_task(60)
    kw = dict(batch_size=60, shuffle=False, max_iter=2)
    weights = {0: 0.5, 1: 3.0}
    a = small(class_weight=weights, **kw).fit(X, y)
    b = small(**kw).fit(X, y, sample_weight=np.where(y == 1, 3.0, 0.5))
    np.testing.assert_array_equal(a._network.coefs, b._network.coefs)
    sw = np.linspace(0.5, 2, 60)
    c = small(class_weight=weights, **kw).fit(X, y, sample_weight=sw)
    d = small(**kw).fit(X, y, sample_weight=sw * np.where(y == 1, 3.0, 0.5))
    np.testing.assert_array_equal(c._network.coefs, d._network.coefs)


def test_class_weight_balanced_and_partial_fit():
    X, y = memory_task(80)
    y[:70], y[70:] = 0, 1                            # 70 zeros, 10 ones
    kw = dict(batch_size=80, shuffle=False, max_iter=1)
    a = small(class_weight="balanced", **kw).fit(X, y)
    balanced = np.where(y == 1, 80 / (2 * 10), 80 / (2 * 70))
    b = small(**kw).fit(X, y, sample_weight=balanced)
    np.testing.assert_array_equal(a._network.coefs, b._network.coefs)
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        small(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    small(class_weight={0: 1.0, 1: 7.0}).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="class_weight"):
        small(class_weight="auto").fit(X, y)
    with pytest.raises(ValueError, match=r"labels that are not classes: \[5\]"):
        small(class_weight={0: 1.0, 5: 2.0}).fit(X, y)


def test_validation_data_replaces_the_split():
    X, y = memory_task(200)
    seqs, y_seqs = ragged_task(60, seed=5)
    # Ragged validation sequences of another length than the training ones.
    clf = small(early_stopping=True, max_iter=6, n_iter_no_change=50,
                learning_rate_init=0.05)
    Xv = [s[:, :2] for s in seqs]
    clf.fit(X, y, X_val=Xv, y_val=y_seqs)
    assert len(clf.validation_scores_) == 6
    assert clf.best_validation_score_ == pytest.approx(clf.score(Xv, y_seqs))
    # All of X is trained on: the same training as without early stopping
    # up to the best epoch (no split takes sequences out).
    n_best = int(np.argmax(clf.validation_scores_)) + 1
    plain = small(max_iter=n_best, learning_rate_init=0.05,
                  n_iter_no_change=50).fit(X, y)
    np.testing.assert_array_equal(clf._network.coefs, plain._network.coefs)
    sw_val = np.linspace(0, 1, 60)
    clf.fit(X, y, X_val=Xv, y_val=y_seqs, sample_weight_val=sw_val)
    assert clf.best_validation_score_ == pytest.approx(
        clf.score(Xv, y_seqs, sample_weight=sw_val))


@pytest.mark.parametrize("kwargs, match", [
    (dict(X_val="X"), "X_val is provided, but y_val was not provided"),
    (dict(y_val="y"), "y_val is provided, but X_val was not provided"),
    (dict(sample_weight_val=np.ones(5)), "sample_weight_val is provided, but X_val"),
])
def test_validation_data_incomplete(kwargs, match):
    X, y = memory_task(40)
    kwargs = {k: {"X": X[:5], "y": y[:5]}.get(v, v) if isinstance(v, str) else v
              for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=match):
        small(early_stopping=True).fit(X, y, **kwargs)


def test_validation_data_errors_name_it_and_roll_back():
    X, y = memory_task(40)
    clf = small()
    with pytest.raises(ValueError, match="early_stopping is False"):
        clf.fit(X, y, X_val=X[:5], y_val=y[:5])
    clf = small(early_stopping=True)
    with pytest.raises(ValueError,
                       match=r"Validation data.*labels not in classes_: \[7\]"):
        clf.fit(X, y, X_val=X[:3], y_val=[0, 1, 7])
    with pytest.raises(ValueError, match=r"Validation data.*3 features"):
        clf.fit(X, y, X_val=np.zeros((3, 10, 3)), y_val=[0, 1, 1])
    with pytest.raises(ValueError, match="Validation data.*inconsistent"):
        clf.fit(X, y, X_val=X[:3], y_val=[0, 1])
    assert not hasattr(clf, "classes_")


def test_early_stopping_split_error_names_validation_fraction_and_X_val():
    X, y = memory_task(20)
    y[:] = 0
    y[0] = 1                                # a class of one member
    with pytest.raises(ValueError, match=r"validation_fraction=0\.1.*X_val, y_val"):
        small(early_stopping=True).fit(X, y)
    # Validation data given: no split, so one member is fine.
    small(early_stopping=True).fit(X, y, X_val=X[:4], y_val=y[:4])


def test_validation_data_through_a_pipeline():
    from sklearn import config_context
    from sklearn.pipeline import Pipeline

    X, y = memory_task(120, n_steps=5)
    flat = X.reshape(120, -1) * 10 + 3              # far from unit scale
    Xv, yv = flat[:40], y[:40]
    with config_context(enable_metadata_routing=True):
        clf = small(n_steps=5, early_stopping=True, max_iter=3,
                    n_iter_no_change=50).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("rnn", clf)],
                        transform_input=["X_val"])
        pipe.fit(flat, y, X_val=Xv, y_val=yv)
        # The scores are those of the scaled validation rows.
        fitted = pipe[-1]
        assert fitted.best_validation_score_ == pytest.approx(pipe.score(Xv, yv))
    # Without routing, the classifier gets X_val as given (untransformed).
    raw = make_pipeline(StandardScaler(), small(n_steps=5, early_stopping=True,
                                                max_iter=3, n_iter_no_change=50))
    raw.fit(flat, y, rnnclassifier__X_val=Xv, rnnclassifier__y_val=yv)
    assert raw[-1].best_validation_score_ == pytest.approx(raw[-1].score(Xv, yv))


def test_tol_none_runs_max_iter_epochs():
    X, y = memory_task(60)
    clf = small(max_iter=25, n_iter_no_change=2, learning_rate_init=1e-6)
    assert clf.fit(X, y).n_iter_ < 25                  # the loss stalls
    assert clf.stop_reason_ == "training_loss"
    clf.set_params(tol=None).fit(X, y)
    assert clf.n_iter_ == 25 and clf.stop_reason_ == "max_iter"
    es = small(max_iter=12, n_iter_no_change=1, tol=None, early_stopping=True,
               learning_rate_init=0.05).fit(X, y)
    assert es.n_iter_ == 12 and len(es.validation_scores_) == 12
    assert es.best_validation_score_ == max(es.validation_scores_)


def test_stop_reason_and_its_message(capsys):
    X, y = memory_task(60)
    clf = small(max_iter=2, verbose=1).fit(X, y)
    assert clf.stop_reason_ == "max_iter"
    assert capsys.readouterr().out.splitlines()[-1] == \
        "Stopping: reached max_iter=2 epochs."
    clf = small(max_iter=100, n_iter_no_change=2, learning_rate_init=1e-6,
                verbose=1).fit(X, y)
    last = capsys.readouterr().out.splitlines()[-1]
    assert clf.stop_reason_ == "training_loss"
    assert last == (f"Stopping: training loss did not improve more than "
                    f"tol=0.0001 for 2 consecutive epochs (epoch {clf.n_iter_}).")
    clf = small(max_iter=100, n_iter_no_change=2, early_stopping=True,
                learning_rate_init=1e-6, verbose=1).fit(X, y)
    assert clf.stop_reason_ == "validation_score"
    assert "validation score did not improve" in capsys.readouterr().out
    clf.set_params(early_stopping=False, verbose=0).partial_fit(X, y)
    assert clf.stop_reason_ == "partial_fit"


def test_divergence_is_printed_and_keeps_stop_reason(capsys):
    X, y = memory_task(64, n_steps=5)
    clf = small(cell="rnn", hidden_layer_sizes=(8,), activation="relu",
                solver="sgd", learning_rate_init=1.0, max_iter=20, verbose=1)
    with pytest.raises(ValueError, match="diverged"):
        clf.fit(10 * X, y)
    out = capsys.readouterr().out
    assert re.search(r"Stopping: training diverged \(.* in epoch \d+, "
                     r"mini-batch \d+ of 4\); the estimator is left", out)
    assert not hasattr(clf, "stop_reason_")
