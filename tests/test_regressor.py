"""RNNRegressor's behaviour as a scikit-learn estimator.

What RNNRegressor shares with RNNClassifier (input forms, threads, rollback)
is tested on the classifier in test_rnn.py and test_guarantees.py; here are
the regressor's targets, loss, scores and a few of the shared paths run
through the regressor.
"""

import pickle

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone, is_regressor
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from seqclf import RNNRegressor

from ._state import assert_same_state, snapshot
from .conftest import CELL_NAMES as CELLS


def running_sum_task(n, n_steps=8, n_features=2, seed=0, dtype=np.float64):
    """Target: the mean over the steps of the first feature (needs every step)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_steps, n_features)).astype(dtype)
    y = X[:, :, 0].mean(axis=1) * 2
    return X, y


def small(**kw):
    params = dict(hidden_layer_sizes=(6,), max_iter=3, batch_size=16,
                  random_state=0)
    params.update(kw)
    return RNNRegressor(**params)


# ---------------------------------------------------------------------------
# Learning and scores
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_learns_a_task_that_needs_every_step(cell):
    X, y = running_sum_task(400)
    X_test, y_test = running_sum_task(200, seed=1)
    reg = small(cell=cell, hidden_layer_sizes=(16,), max_iter=25,
                learning_rate_init=0.01).fit(X, y)
    assert reg.score(X_test, y_test) > 0.9
    assert reg.loss_curve_[-1] < 0.1 * reg.loss_curve_[0]


def test_is_a_regressor_and_score_is_r2():
    X, y = running_sum_task(60)
    reg = small().fit(X, y)
    assert is_regressor(reg)
    assert not hasattr(reg, "predict_proba") and not hasattr(reg, "classes_")
    pred = reg.predict(X)
    assert reg.score(X, y) == pytest.approx(r2_score(y, pred))
    sw = np.linspace(0.5, 2, 60)
    assert reg.score(X, y, sw) == pytest.approx(r2_score(y, pred, sample_weight=sw))


@pytest.mark.parametrize("shape", [(), (1,), (3,)], ids=["1d", "n_by_1", "n_by_3"])
def test_predictions_keep_the_targets_shape(shape):
    X, y = running_sum_task(50)
    Y = np.stack([y * (k + 1) for k in range(shape[0])], axis=1) if shape else y
    reg = small().fit(X, Y)
    assert reg.n_outputs_ == (shape[0] if shape else 1)
    assert reg.predict(X[:7]).shape == (7,) + shape
    assert reg.head_weights_["W"].shape == (6, reg.n_outputs_)
    assert reg.head_weights_["b"].shape == (reg.n_outputs_,)


def test_multi_output_learns_each_target():
    X, y = running_sum_task(400)
    Y = np.stack([y, X[:, -1, 1]], axis=1)        # the mean, and the last step
    reg = small(cell="gru", hidden_layer_sizes=(16,), max_iter=25,
                learning_rate_init=0.01).fit(X, Y)
    X_test, y_test = running_sum_task(200, seed=1)
    Y_test = np.stack([y_test, X_test[:, -1, 1]], axis=1)
    scores = r2_score(Y_test, reg.predict(X_test), multioutput="raw_values")
    assert np.all(scores > 0.85), scores


def test_loss_curve_is_half_the_mean_squared_error():
    # One full-batch epoch with a step size too small to move the weights:
    # the recorded loss is MLPRegressor's, on the initial predictions.
    X, y = running_sum_task(40)
    Y = np.stack([y, -y + 1], axis=1)
    sw = np.linspace(0.2, 3, 40)
    reg = small(max_iter=1, batch_size=40, learning_rate_init=1e-300)
    reg.fit(X, Y, sample_weight=sw)
    err = ((Y - reg.predict(X)) ** 2).mean(axis=1)
    assert reg.loss_curve_[0] == pytest.approx(0.5 * np.average(err, weights=sw),
                                               rel=1e-10)


def test_alpha_adds_mlp_penalty():
    X, y = running_sum_task(40)
    kw = dict(max_iter=1, batch_size=40, learning_rate_init=1e-300)
    plain = small(**kw).fit(X, y)
    pen = small(alpha=0.7, **kw).fit(X, y)
    w = [u[k] for layer in plain.weights_ for u in layer for k in ("W", "U")]
    w.append(plain.head_weights_["W"])
    penalty = 0.5 * 0.7 * sum(float(np.sum(a * a)) for a in w) / 40
    assert pen.loss_curve_[0] == pytest.approx(plain.loss_curve_[0] + penalty,
                                               rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_head_bias_starts_at_the_targets_mean(weighted):
    X, y = running_sum_task(50)
    Y = np.stack([y + 100, 3 * y - 7], axis=1)
    sw = np.linspace(0, 2, 50) if weighted else None
    reg = small(max_iter=1, learning_rate_init=1e-300).fit(X, Y, sample_weight=sw)
    np.testing.assert_allclose(reg.head_weights_["b"],
                               np.average(Y, axis=0, weights=sw), rtol=1e-12)
    # A warm start keeps the trained bias.
    reg.head_weights_["b"][...] = 5.0
    reg.set_params(warm_start=True).fit(X, Y)
    np.testing.assert_allclose(reg.head_weights_["b"], 5.0)


def test_targets_far_from_unit_scale_with_transformed_target():
    X, y = running_sum_task(300)
    y_big = 1e4 * y + 5e5
    reg = TransformedTargetRegressor(
        regressor=small(cell="gru", hidden_layer_sizes=(16,), max_iter=20,
                        learning_rate_init=0.01),
        transformer=StandardScaler())
    reg.fit(X, y_big)
    assert reg.score(X, y_big) > 0.9


def test_float32_model_predicts_float32():
    X, y = running_sum_task(40, dtype=np.float32)
    reg = small().fit(X, y)
    assert reg._network.dtype == np.float32
    assert reg.predict(X).dtype == np.float32
    assert small().fit(X.astype(np.float64), y).predict(X).dtype == np.float64


# ---------------------------------------------------------------------------
# Inputs the classifier takes, through the regressor
# ---------------------------------------------------------------------------

def test_ragged_lists_and_padding_agree():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(rng.integers(3, 9), 2)) for _ in range(60)]
    y = np.array([s[:, 0].sum() for s in seqs])
    T = max(len(s) for s in seqs)
    padded = np.full((60, T, 2), np.nan)
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    a = small().fit(seqs, y)
    b = small(mask_value=np.nan).fit(padded, y)
    np.testing.assert_allclose(a.predict(seqs), b.predict(padded), rtol=1e-12)


def test_token_ids():
    # Target: how many times token 1 occurs in the sequence.
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 5, size=rng.integers(3, 12)) for _ in range(400)]
    y = np.array([np.sum(s == 1) for s in seqs], dtype=float)
    reg = small(cell="gru", embedding_dim=4, hidden_layer_sizes=(12,),
                max_iter=20, learning_rate_init=0.02).fit(seqs, y)
    assert reg.vocab_size_ == 5
    assert reg.score(seqs, y) > 0.8
    summary = []
    reg.summary(print_fn=summary.append)
    assert summary[0] == 'Model: "RNNRegressor"'
    assert any("dense (Dense)" in line and "(None, 1)" in line for line in summary)


def test_pipeline_and_grid_search_on_flat_sequences():
    X, y = running_sum_task(120, n_steps=6)
    flat = X.reshape(120, -1)
    pipe = make_pipeline(StandardScaler(), small(n_steps=6, max_iter=5))
    search = GridSearchCV(pipe, {"rnnregressor__cell": ["rnn", "gru"]}, cv=2)
    search.fit(flat, y)
    assert set(search.cv_results_["param_rnnregressor__cell"]) == {"rnn", "gru"}
    assert np.isfinite(search.best_score_)      # R², the regressor's score


def test_clone_and_pickle_round_trip():
    X, y = running_sum_task(50)
    reg = small(bidirectional=True).fit(X, y)
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    fresh = clone(reg)
    assert fresh.get_params() == reg.get_params()
    with pytest.raises(NotFittedError):
        fresh.predict(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_model_for_any_thread_count(dtype):
    X, y = running_sum_task(150, dtype=dtype)
    kw = dict(cell=("lstm", "gru"), hidden_layer_sizes=(6, 5), bidirectional=True,
              dropout=0.1, recurrent_dropout=0.1, clip_norm=0.5, alpha=1e-3)
    models = []
    for n in (1, 2):
        with threadpool_limits(n, user_api="openmp"):
            models.append(small(**kw).fit(X, y))
    np.testing.assert_array_equal(models[0]._network.coefs, models[1]._network.coefs)
    np.testing.assert_array_equal(models[0].predict(X), models[1].predict(X))


# ---------------------------------------------------------------------------
# Training control
# ---------------------------------------------------------------------------

def test_partial_fit_equals_fit_epoch_by_epoch():
    X, y = running_sum_task(100)
    a = small(shuffle=False, max_iter=3).fit(X, y)
    b = small(shuffle=False)
    for _ in range(3):
        b.partial_fit(X, y)
    np.testing.assert_array_equal(a._network.coefs, b._network.coefs)
    assert b.n_iter_ == 3
    with pytest.raises(ValueError, match=r"y has 2 output\(s\).*fitted with 1"):
        b.partial_fit(X, np.stack([y, y], axis=1))
    with pytest.raises(ValueError, match="partial_fit does not support"):
        small(early_stopping=True).partial_fit(X, y)


def test_partial_fit_on_blocks_equals_fit_but_for_the_head_bias():
    # Each block's targets average exactly 1, as the whole set's: the head's
    # bias starts the same and blocks of whole mini-batches give fit's
    # epochs. A first block of another mean starts the head elsewhere.
    X, _ = running_sum_task(192)
    y = np.tile([0.0, 2.0], 96)

    def by_blocks(y, epochs):
        model = small(shuffle=False)
        for _ in range(epochs):
            for start in range(0, len(X), 48):
                model.partial_fit(X[start:start + 48], y[start:start + 48])
        return model

    a = small(shuffle=False, max_iter=2).fit(X, y)
    np.testing.assert_array_equal(a._network.coefs, by_blocks(y, 2)._network.coefs)
    y[:48] += 1
    a = small(shuffle=False, max_iter=1).fit(X, y)
    b = by_blocks(y, 1)
    assert not np.array_equal(a._network.coefs, b._network.coefs)


def test_warm_start_continues_training():
    X, y = running_sum_task(100)
    once = small(max_iter=5, dropout=0.1).fit(X, y)
    twice = small(max_iter=2, dropout=0.1, warm_start=True).fit(X, y)
    twice.set_params(max_iter=3).fit(X, y)
    np.testing.assert_array_equal(once._network.coefs, twice._network.coefs)
    assert twice.loss_curve_ == pytest.approx(once.loss_curve_, rel=1e-12)


def test_early_stopping_on_validation_r2(monkeypatch):
    """The validation scores are R² on a (not stratified) held-out split,
    and the restored model scores the best of them there."""
    import seqclf._rnn as rnn_module

    seen = {}
    real_split = rnn_module.train_test_split

    def spy(*args, **kwargs):
        seen["stratify"] = kwargs.get("stratify")
        out = real_split(*args, **kwargs)
        seen["val"] = out[1]
        return out

    monkeypatch.setattr(rnn_module, "train_test_split", spy)
    X, y = running_sum_task(300)
    reg = small(early_stopping=True, n_iter_no_change=3, max_iter=80,
                validation_fraction=0.3, learning_rate_init=0.05).fit(X, y)
    assert seen["stratify"] is None
    val = seen["val"]
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert reg.score(X[val], y[val]) == pytest.approx(reg.best_validation_score_)
    assert reg.best_validation_score_ > 0.5
    assert reg.best_loss_ is None or np.isinf(reg.best_loss_)


def test_sample_weight_zero_equals_dropping():
    X, y = running_sum_task(64)
    sw = np.ones(64)
    sw[::4] = 0
    kw = dict(batch_size=64, shuffle=False)
    a = small(**kw).fit(X, y, sample_weight=sw)
    b = small(**kw).fit(X[sw > 0], y[sw > 0])
    np.testing.assert_allclose(a._network.coefs, b._network.coefs, rtol=1e-10,
                               atol=1e-12)


def test_integer_sample_weight_equals_repeating_samples():
    X, y = running_sum_task(30)
    sw = np.arange(30) % 3 + 1
    rep = np.repeat(np.arange(30), sw)
    kw = dict(batch_size=200, shuffle=False, max_iter=4)
    a = small(**kw).fit(X, y, sample_weight=sw)
    b = small(**kw).fit(X[rep], y[rep])
    np.testing.assert_allclose(a._network.coefs, b._network.coefs, rtol=1e-9,
                               atol=1e-12)


# ---------------------------------------------------------------------------
# Bad targets: clear errors, and the estimator left as it was
# ---------------------------------------------------------------------------

X_BAD, Y_GOOD = running_sum_task(12, n_steps=3)

BAD_TARGETS = [
    (np.r_[np.nan, Y_GOOD[1:]], ValueError, "y contains NaN"),
    (np.r_[np.inf, Y_GOOD[1:]], ValueError, "y contains infinity"),
    (np.array(["a"] * 12), ValueError, "numeric targets"),
    (np.array(["a"] * 12, dtype=object), ValueError, "numeric targets"),
    (Y_GOOD + 1j, ValueError, "[Cc]omplex"),
    (Y_GOOD[:10], ValueError, "inconsistent numbers of samples"),
    (Y_GOOD.reshape(12, 1, 1), ValueError, "dim 3"),
    (np.empty((12, 0)), ValueError, "0 feature"),
    (None, ValueError, "requires y to be passed"),
]


@pytest.mark.parametrize("y, error, match", BAD_TARGETS,
                         ids=["nan", "inf", "strings", "object_strings", "complex",
                              "short", "3d", "no_columns", "none"])
def test_bad_targets_rejected_and_model_kept(y, error, match):
    reg = small(max_iter=1)
    with pytest.raises(error, match=match):
        reg.fit(X_BAD, y)
    with pytest.raises(NotFittedError):
        reg.predict(X_BAD)
    reg.fit(X_BAD, Y_GOOD)
    before = snapshot(reg)
    with pytest.raises(error, match=match):
        reg.fit(X_BAD, y)
    assert_same_state(reg, before)


def test_targets_beyond_float32_for_a_float32_model():
    X = X_BAD.astype(np.float32)
    reg = small(max_iter=1)
    with pytest.raises(ValueError, match="beyond what float32 holds"):
        reg.fit(X, np.full(12, 1e39))
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_sparse_targets_are_read_densely():
    a = small().fit(X_BAD, np.stack([Y_GOOD, -Y_GOOD], axis=1))
    b = small().fit(X_BAD, sparse.csr_matrix(np.stack([Y_GOOD, -Y_GOOD], axis=1)))
    np.testing.assert_array_equal(a.predict(X_BAD), b.predict(X_BAD))


def test_divergence_raises_and_leaves_the_previous_model():
    X, y = running_sum_task(64, n_steps=5)
    reg = small(cell="rnn", hidden_layer_sizes=(8,), activation="relu",
                solver="sgd", learning_rate_init=1.0, max_iter=20)
    with pytest.raises(ValueError, match=r"Training diverged.*epoch \d+"):
        reg.fit(10 * X, 1e3 * y)
    with pytest.raises(NotFittedError):
        reg.predict(X)
    reg.set_params(learning_rate_init=1e-3, max_iter=1).fit(X, y)
    reg.set_params(learning_rate_init=1.0, max_iter=20, warm_start=True)
    before = snapshot(reg)
    with pytest.raises(ValueError, match="Training diverged"):
        reg.fit(10 * X, 1e3 * y)
    assert_same_state(reg, before)


def test_validation_data_and_tol_none():
    X, y = running_sum_task(150)
    Xv, yv = running_sum_task(50, seed=9)
    reg = small(early_stopping=True, max_iter=8, tol=None, n_iter_no_change=1,
                learning_rate_init=0.02).fit(X, y, X_val=Xv, y_val=yv)
    assert reg.n_iter_ == 8 and reg.stop_reason_ == "max_iter"
    assert reg.best_validation_score_ == pytest.approx(reg.score(Xv, yv))
    with pytest.raises(ValueError, match=r"Validation data.*y has 2 output"):
        reg.fit(X, y, X_val=Xv, y_val=np.stack([yv, yv], axis=1))
    with pytest.raises(ValueError, match="Validation data.*y contains NaN"):
        reg.fit(X, y, X_val=Xv, y_val=np.r_[np.nan, yv[1:]])
    assert "class_weight" not in reg.get_params()
