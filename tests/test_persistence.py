"""Saving and loading fitted models: pickle and skops.io.

A fitted estimator saves plain values only (``seqclf._persistence``), so
that ``skops.io.get_untrusted_types`` lists nothing but its class; loading
rebuilds the network, the optimizers and the input spec, checks them
against each other, and warns when another seqclf version saved the file.
"""

import contextlib
import copy
import functools
import io
import json
import pickle
import re
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from seqclf import RNNClassifier, RNNRegressor, _persistence
from seqclf.exceptions import InconsistentVersionWarning

N, T, F = 48, 6, 3

CONFIGS = {
    "rnn-relu": dict(cell="rnn", hidden_layer_sizes=(5,), activation="relu"),
    "gru-bi-2": dict(cell="gru", hidden_layer_sizes=(5, 4), bidirectional=True),
    "lstm-3": dict(cell=("lstm", "gru", "rnn"), hidden_layer_sizes=(4, 4, 3)),
    "sgd": dict(cell="gru", hidden_layer_sizes=(4,), solver="sgd"),
    "early-stopping": dict(cell="lstm", hidden_layer_sizes=(4,),
                           early_stopping=True, validation_fraction=0.25),
    "float64-mask": dict(cell="gru", hidden_layer_sizes=(4,), mask_value=np.nan),
    "tokens": dict(cell="lstm", hidden_layer_sizes=(4,), embedding_dim=3),
    "tokens-fixed-vocab": dict(cell="gru", hidden_layer_sizes=(4,),
                               embedding_dim=3, vocab_size=20, mask_value=0),
    "rows": dict(cell="rnn", hidden_layer_sizes=(4,), n_steps=T),
}


def _data(name, seed=0):
    rng = np.random.default_rng(seed)
    if name.startswith("tokens"):
        X = rng.integers(1, 15, size=(N, T))
    elif name == "rows":
        X = rng.normal(size=(N, T * F)).astype(np.float32)
    elif name == "float64-mask":
        X = rng.normal(size=(N, T, F))
        X[::3, :2] = np.nan                         # pre-padding
    else:
        X = rng.normal(size=(N, T, F)).astype(np.float32)
    return X, np.array(["a", "b", "c"])[rng.integers(0, 3, N)]


def _fitted(name, seed=0, **extra):
    X, y = _data(name, seed)
    est = RNNClassifier(max_iter=2, random_state=0, **CONFIGS[name], **extra)
    return est.fit(X, y), X, y


def _coefs(est):
    return est._network.coefs


def _skops_round_trip(obj):
    sio = pytest.importorskip("skops.io", reason="the skops extra is not "
                              "installed: pip install 'seqclf[skops]'")
    data = sio.dumps(obj)
    untrusted = sio.get_untrusted_types(data=data)
    return sio.loads(data, trusted=untrusted), untrusted


ROUND_TRIPS = {
    "pickle": lambda obj: (pickle.loads(pickle.dumps(obj)), None),
    "skops": _skops_round_trip,
}


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("name", CONFIGS)
def test_round_trip_predicts_the_same_and_trains_on(name, how):
    est, X, y = _fitted(name)
    loaded, untrusted = ROUND_TRIPS[how](est)
    if untrusted is not None:
        # Documented in docs/user_guide/persistence.md ("Saving models"): only the
        # class itself.
        assert untrusted == ["seqclf._rnn.RNNClassifier"]
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.n_iter_ == est.n_iter_ and loaded.loss_curve_ == est.loss_curve_
    # The arrays users see are views of the loaded parameter vector again.
    net = loaded._network
    assert all(np.shares_memory(a, net.coefs)
               for layer in loaded.weights_ for u in layer for a in u.values())
    # Training goes on exactly as it would have without the round trip: the
    # optimizer's moments and the random streams were saved too.
    X2, y2 = _data(name, seed=1)
    for model in (est, loaded):
        if not model.early_stopping:
            model.partial_fit(X2, y2)
        model.set_params(warm_start=True, max_iter=1).fit(X2, y2)
    np.testing.assert_array_equal(_coefs(loaded), _coefs(est))


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_round_trip(how, n_outputs):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, T, F))
    y = rng.normal(size=(N, n_outputs))
    y = y[:, 0] if n_outputs == 1 else y
    est = RNNRegressor("gru", (4,), max_iter=2, random_state=0).fit(X, y)
    loaded, untrusted = ROUND_TRIPS[how](est)
    if untrusted is not None:
        assert untrusted == ["seqclf._rnn.RNNRegressor"]
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    np.testing.assert_array_equal(_coefs(loaded), _coefs(est))


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_pipeline_and_grid_search(how):
    X, y = _data("rows")
    pipe = make_pipeline(StandardScaler(),
                         RNNClassifier("gru", (4,), n_steps=T, max_iter=1,
                                       random_state=0)).fit(X, y)
    search = GridSearchCV(RNNClassifier(max_iter=1, random_state=0, n_steps=T),
                          {"cell": ["rnn", "gru"], "hidden_layer_sizes": [3]},
                          cv=2).fit(X, y)
    for obj in (pipe, search, search.best_estimator_):
        loaded, untrusted = ROUND_TRIPS[how](obj)
        if untrusted is not None:
            # A GridSearchCV adds scikit-learn's own (its scorer, its CV
            # splitter); seqclf adds its class only.
            ours = [t for t in untrusted if not t.startswith("sklearn.")]
            assert ours == ["seqclf._rnn.RNNClassifier"]
        np.testing.assert_array_equal(loaded.predict_proba(X),
                                      obj.predict_proba(X))


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_sequence_scaler_pipeline(how):
    from seqclf.preprocessing import SequenceScaler

    X, y = _data("float64-mask")
    pipe = make_pipeline(SequenceScaler(mask_value=np.nan),
                         RNNClassifier("gru", (4,), mask_value=np.nan,
                                       max_iter=1, random_state=0)).fit(X, y)
    loaded, untrusted = ROUND_TRIPS[how](pipe)
    if untrusted is not None:
        assert untrusted == ["seqclf._rnn.RNNClassifier",
                             "seqclf.preprocessing.SequenceScaler"]
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    state = pipe[0].__getstate__()
    state["_spec"]["n_step_features"] = 0
    with pytest.raises(ValueError, match="Cannot load this SequenceScaler: "
                                         "n_step_features must be"):
        _load(SequenceScaler, state)


def test_unfitted_and_copies():
    est = RNNClassifier("gru", (3,), max_iter=1)
    assert pickle.loads(pickle.dumps(est)).get_params() == est.get_params()
    fitted, X, _ = _fitted("gru-bi-2")
    for other in (copy.deepcopy(fitted), copy.copy(fitted)):
        np.testing.assert_array_equal(other.predict_proba(X),
                                      fitted.predict_proba(X))


def _load(cls, state):
    est = cls.__new__(cls)
    est.__setstate__(state)
    return est


def test_other_version_warns(monkeypatch):
    est, X, _ = _fitted("gru-bi-2")
    monkeypatch.setattr(_persistence, "__version__", "0.0.1")
    data = pickle.dumps(est)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(data)
    w = record[0].message
    assert (w.estimator_name, w.original_seqclf_version) == ("RNNClassifier", "0.0.1")
    assert "from seqclf version 0.0.1" in str(w)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    # A state that does not say which version saved it.
    state = est.__getstate__()
    del state[_persistence.VERSION_KEY]
    with pytest.warns(InconsistentVersionWarning, match="version unknown"):
        _load(RNNClassifier, state)
    # The same version: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(est))


def test_state_of_objects_still_loads():
    # Before the saved state was made plain, pickles held the network, the
    # optimizer and the input spec as objects (and no version): they load,
    # checked the same way, with the version warning.
    est, X, _ = _fitted("tokens")
    state = copy.deepcopy(dict(vars(est)))
    with pytest.warns(InconsistentVersionWarning, match="version unknown"):
        loaded = _load(RNNClassifier, state)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    state = copy.deepcopy(dict(vars(est)))
    state["_optimizer"].m = state["_optimizer"].m[:5]
    with pytest.warns(InconsistentVersionWarning), \
            pytest.raises(ValueError, match="_optimizer.m must be"):
        _load(RNNClassifier, state)


def _edited(state, path, value):
    state = copy.deepcopy(state)
    target = state
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return state


def _bad_states():
    est, _, _ = _fitted("gru-bi-2")
    state = est.__getstate__()
    coefs = state["_network"]["coefs"]
    m = state["_optimizer"]["m"]
    yield "short", _edited(state, ["_network", "coefs"], coefs[:-1]), "parameter vector"
    yield "dtype", _edited(state, ["_network", "coefs"], coefs.astype(np.float64)), \
        "parameter vector must be a float32 array"
    yield "cells", _edited(state, ["_network", "cells"], ["lstm", "lstm"]), \
        "parameter vector"
    yield "rnn-for-gru", _edited(state, ["_network", "cells"], ["rnn", "gru"]), \
        "parameter vector"
    yield "unknown-cell", _edited(state, ["_network", "cells"], ["cnn", "gru"]), "cells"
    yield "sizes", _edited(state, ["_network", "hidden_sizes"], [5]), "hidden sizes"
    yield "no-coefs", _edited(state, ["_network", "coefs"], KeyError), "no coefs"
    yield "no-network", _edited(state, ["_network"], KeyError), "no network"
    yield "classes", _edited(state, ["classes_"], np.array(["a", "b"])), \
        "head has 3 outputs"
    yield "moments", _edited(state, ["_optimizer", "m"], m[:10]), "_optimizer.m"
    yield "solver", _edited(state, ["_optimizer", "solver"], "lbfgs"), "solver"
    yield "features", _edited(state, ["_input_spec", "n_step_features"], 4), \
        "features per step"
    yield "best", _edited(state, ["_best_coefs"], coefs[:3]), "_best_coefs"
    tok, _, _ = _fitted("tokens")
    yield "embedding", _edited(tok.__getstate__(), ["_input_spec", "vocab_size"], 40), \
        "embedding rows"


@pytest.mark.parametrize("state, match", [s[1:] for s in _bad_states()],
                         ids=[s[0] for s in _bad_states()])
def test_inconsistent_state_is_refused_at_load(state, match):
    with pytest.raises(ValueError, match=f"Cannot load this RNNClassifier: .*{match}"):
        _load(RNNClassifier, state)


def test_edited_skops_file_is_refused():
    # A real file whose parameter vector was cut short.
    sio = pytest.importorskip("skops.io", reason="the skops extra is not "
                              "installed: pip install 'seqclf[skops]'")
    est, _, _ = _fitted("lstm-3")
    data = sio.dumps(est)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    n_params = est._network.coefs.size
    schema = json.loads(files["schema.json"])
    # The .npy file that holds the parameter vector.
    name = next(n for n in files if n.endswith(".npy")
                and np.load(io.BytesIO(files[n])).shape == (n_params,))
    buf = io.BytesIO()
    np.save(buf, np.load(io.BytesIO(files[name]))[:-4])
    files[name] = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, content in files.items():
            zf.writestr(n, content)
    assert schema                                   # the file was read
    with pytest.raises(ValueError, match="Cannot load this RNNClassifier: its "
                                         "parameter vector"):
        sio.loads(out.getvalue(), trusted=["seqclf._rnn.RNNClassifier"])


# ---------------------------------------------------------------------------
# The whole state of a fitted estimator is checked at load
# ---------------------------------------------------------------------------

# Fitted estimators whose every attribute the loader must check: both
# estimators, real values and token ids (with column names, for
# feature_names_in_), with and without early stopping, both solvers.
KINDS = [(estimator, form, stop, solver)
         for estimator in ("classifier", "regressor")
         for form in ("steps", "tokens")
         for stop in (False, True)
         for solver in ("adam", "sgd")]
KINDS += [("classifier", "named-tokens", False, "adam"),
          ("regressor", "named-tokens", True, "sgd")]


def _kind_id(kind):
    estimator, form, stop, solver = kind
    return f"{estimator}-{form}-{'early' if stop else 'loss'}-{solver}"


@functools.lru_cache(maxsize=None)
def _fitted_kind(kind):
    estimator, form, stop, solver = kind
    rng = np.random.default_rng(4)
    kw = dict(max_iter=2, random_state=0, solver=solver, early_stopping=stop,
              validation_fraction=0.25)
    if form == "steps":
        X = rng.normal(size=(N, T, F)).astype(np.float32)
    else:
        X = rng.integers(1, 15, size=(N, T))
        kw["embedding_dim"] = 4
        if form == "named-tokens":
            pd = pytest.importorskip("pandas")
            X = pd.DataFrame(X, columns=[f"step{i}" for i in range(T)])
    if estimator == "classifier":
        y = np.array(["a", "b", "c"])[rng.integers(0, 3, N)]
        return RNNClassifier("gru", (4,), **kw).fit(X, y)
    return RNNRegressor("gru", (4,), **kw).fit(X, rng.normal(size=N))


def _assert_refused(cls, state, key):
    """Loading ``state`` raises the loader's ValueError, naming ``key``."""
    with pytest.raises(ValueError, match=f"Cannot load this {cls.__name__}: ") \
            as info:
        _load(cls, state)
    # The reason, without the closing words that every refusal shares.
    reason = str(info.value).split(" The file is damaged")[0]
    assert re.search(rf"(?<!\w){re.escape(key)}(?!\w)", reason), (
        f"the refusal does not name {key!r}: {reason}")


@pytest.mark.parametrize("kind", KINDS, ids=_kind_id)
def test_each_part_of_a_fitted_state_is_required(kind):
    est = _fitted_kind(kind)
    cls = type(est)
    state = est.__getstate__()
    assert type(_load(cls, state)) is cls
    # Every attribute the fitted estimator holds, read from the estimator
    # itself, so that one a fit adds without the loader checking it fails
    # here.
    for key in vars(est):
        if key == "feature_names_in_":
            # Optional: without it, the model is one fitted on an X without
            # column names, which the loader cannot tell from a lost part.
            assert not hasattr(_load(cls, _edited(state, [key], KeyError)),
                               key)
            continue
        _assert_refused(cls, _edited(state, [key], KeyError), key)
    # And every entry of the parts saved as dicts (the network, the input
    # spec, the optimizers and their settings).
    parts = [k for k, v in state.items() if isinstance(v, dict)]
    assert {"_network", "_input_spec", "_optimizer",
            "_optimizer_config"} <= set(parts)
    for part in parts:
        for key in state[part]:
            _assert_refused(cls, _edited(state, [part, key], KeyError), key)


@pytest.mark.parametrize("kind", KINDS, ids=_kind_id)
def test_each_fitted_attribute_is_type_checked(kind):
    est = _fitted_kind(kind)
    cls = type(est)
    state = est.__getstate__()
    params = est.get_params()
    fitted = [k for k in vars(est) if k not in params]
    assert "_network" in fitted and "n_iter_" in fitted
    # Parameters are checked when fit is called, as scikit-learn does (a
    # clone sent to a worker may hold one that its search replaces).
    for key in fitted:
        _assert_refused(cls, _edited(state, [key], "damaged"), key)


@pytest.mark.parametrize("cls", [RNNClassifier, RNNRegressor])
def test_unfitted_state_needs_every_parameter(cls):
    est = cls("lstm", (3, 2), embedding_dim=4)
    state = est.__getstate__()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = _load(cls, state)
    assert loaded.get_params() == est.get_params()
    assert not hasattr(loaded, "_network")
    for key in est.get_params():
        _assert_refused(cls, _edited(state, [key], KeyError), key)
    # A fitted attribute without the network is a damaged file too.
    _assert_refused(cls, _edited(state, ["n_iter_"], 3), "n_iter_")


def _skops_without(data, key):
    """The skops file ``data`` rewritten, with the attribute ``key`` of the
    estimator it holds removed (None: nothing removed)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(files["schema.json"])
    attributes = schema["content"]
    assert attributes["__loader__"] == "DictNode"
    if key is not None:
        del attributes["content"][key]
        attributes["key_types"]["content"].pop()     # every key is a str
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for n, content in files.items():
            zf.writestr(n, content)
    return out.getvalue()


@pytest.mark.parametrize("estimator, key", [
    ("regressor", "_y_ndim"),
    ("classifier", "_random_state"),
    ("classifier", "best_loss_"),
    ("regressor", "stop_reason_"),
])
def test_skops_file_missing_a_part_is_refused(estimator, key):
    sio = pytest.importorskip("skops.io", reason="the skops extra is not "
                              "installed: pip install 'seqclf[skops]'")
    est = _fitted_kind((estimator, "steps", False, "adam"))
    name = type(est).__name__
    trusted = [f"seqclf._rnn.{name}"]
    data = sio.dumps(est)
    # The rewritten file itself loads: only the part removed is missing.
    X = np.random.default_rng(4).normal(size=(N, T, F)).astype(np.float32)
    loaded = sio.loads(_skops_without(data, None), trusted=trusted)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    with pytest.raises(ValueError, match=f"Cannot load this {name}: it has a "
                                         f"network but no {key}\\. The file "
                                         f"is damaged"):
        sio.loads(_skops_without(data, key), trusted=trusted)


class _CtrlCOnFirstWrite(io.StringIO):
    """A stream that is interrupted (Ctrl-C) while its first text is written."""

    def __init__(self):
        super().__init__()
        self.interrupted = False

    def write(self, text):
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().write(text)


def test_fit_interrupted_in_its_first_epoch_still_loads():
    # Interrupted after its first mini-batch, as the progress line is
    # written: fitted, with no epoch complete, so no loss_ yet.
    X, y = _data("gru-bi-2")
    est = RNNClassifier("gru", (4,), batch_size=8, verbose=2, random_state=0)
    with contextlib.redirect_stdout(_CtrlCOnFirstWrite()), \
            pytest.raises(KeyboardInterrupt, match="interrupted in epoch 1"):
        est.fit(X, y)
    assert est.stop_reason_ == "interrupted" and est.loss_curve_ == []
    assert not hasattr(est, "loss_")
    for how in ROUND_TRIPS:
        loaded, _ = ROUND_TRIPS[how](est)
        np.testing.assert_array_equal(loaded.predict_proba(X),
                                      est.predict_proba(X))
    # With a completed epoch recorded, loss_ must be there.
    state = _edited(est.__getstate__(), ["loss_curve_"], [0.7])
    state["n_iter_"] = 1
    _assert_refused(RNNClassifier, state, "loss_")


def _bad_fitted_states():
    clf = _fitted_kind(("classifier", "steps", False, "adam"))
    early = _fitted_kind(("classifier", "steps", True, "adam"))
    tok = _fitted_kind(("classifier", "named-tokens", False, "adam"))
    reg = _fitted_kind(("regressor", "steps", False, "sgd"))
    s, es, ts, rs = (e.__getstate__() for e in (clf, early, tok, reg))
    curve = s["loss_curve_"]
    yield "n_iter-str", s, ["n_iter_"], "2", "n_iter_ must be an integer >= 0"
    yield "n_iter-negative", s, ["n_iter_"], -1, "n_iter_ must be"
    yield "n_iter-bool", s, ["n_iter_"], True, "n_iter_ must be"
    yield "n_iter-beyond-curve", s, ["n_iter_"], 5, \
        "n_iter_ counts 5 epochs but loss_curve_ holds 2 losses"
    yield "curve-strings", s, ["loss_curve_"], [str(v) for v in curve], \
        "loss_curve_ must be a list of numbers"
    yield "curve-tuple", s, ["loss_curve_"], tuple(curve), \
        "loss_curve_ must be a list of numbers"
    yield "curve-none", s, ["loss_curve_"], None, \
        "loss_curve_ must be a list of numbers"
    yield "scores-strings", es, ["validation_scores_"], ["0.5", "0.5"], \
        "validation_scores_ must be a list of numbers or None"
    yield "loss-str", s, ["loss_"], "0.5", "loss_ must be a number"
    yield "optimizer-no-t", s, ["_optimizer", "t"], KeyError, \
        "_optimizer.t must be an integer >= 0, got None"
    yield "optimizer-float-t", s, ["_optimizer", "t"], 1.5, "_optimizer.t"
    yield "optimizer-none", s, ["_optimizer"], None, "no _optimizer"
    yield "config-learning-rate", s, ["_optimizer_config", "learning_rate"], \
        0.5, "_optimizer.learning_rate is 0.001 but _optimizer_config " \
             "records 0.5"
    yield "config-solver", s, ["_optimizer_config", "solver"], "sgd", \
        "_optimizer_config names the solver 'sgd' but _optimizer holds the " \
        "state of 'adam'"
    yield "config-str", s, ["_optimizer_config", "momentum"], "0.9", \
        "_optimizer_config's momentum must be a number"
    yield "classes-fewer", s, ["classes_"], np.array(["a", "b"]), \
        "head has 3 outputs"
    yield "classes-more", s, ["classes_"], np.array(["a", "b", "c", "d"]), \
        "head has 3 outputs but its targets call for 4"
    yield "classes-unsorted", s, ["classes_"], np.array(["b", "a", "c"]), \
        "classes_ must hold distinct labels in sorted order"
    yield "classes-repeated", s, ["classes_"], np.array(["a", "a", "c"]), \
        "classes_ must hold distinct labels in sorted order"
    yield "classes-list", s, ["classes_"], ["a", "b", "c"], \
        "classes_ must be a 1-D array"
    yield "classes-2d", s, ["classes_"], np.array([["a", "b", "c"]]), \
        "classes_ must be a 1-D array"
    yield "stop-reason", s, ["stop_reason_"], "bored", \
        "stop_reason_ must be one of"
    yield "random-state-seed", s, ["_random_state"], 0, \
        "_random_state must be a NumPy RandomState"
    yield "dropout-rng-random-state", s, ["_dropout_rng"], \
        np.random.RandomState(0), "_dropout_rng must be a NumPy Generator"
    yield "threads-zero", s, ["n_threads_"], 0, "n_threads_ must be"
    yield "n-features", s, ["n_features_in_"], 4, \
        "n_features_in_ is 4 but its input spec reads 3 features"
    yield "network-none", s, ["_network"], None, "_network is a NoneType"
    yield "both-records", es, ["best_loss_"], 0.5, \
        "both a best_loss_ and validation_scores_"
    yield "no-record", s, ["best_loss_"], None, \
        "best_loss_ and validation_scores_ are both None"
    yield "best-score-missing", es, ["best_validation_score_"], None, \
        "validation_scores_ but no best_validation_score_"
    yield "best-score-alone", s, ["best_validation_score_"], 0.5, \
        "best_validation_score_ but no validation_scores_"
    yield "vocab", ts, ["vocab_size_"], 99, \
        "vocab_size_ is 99 but its input spec has a vocabulary of 15 ids"
    yield "vocab-on-real-values", s, ["vocab_size_"], 15, \
        "vocab_size_ is 15 but its input spec reads real values"
    yield "names-short", ts, ["feature_names_in_"], \
        ts["feature_names_in_"][:3], \
        f"feature_names_in_ names 3 columns but n_features_in_ is {T}"
    yield "names-list", ts, ["feature_names_in_"], \
        list(ts["feature_names_in_"]), "feature_names_in_ must be a 1-D"
    yield "y-ndim", rs, ["_y_ndim"], 3, "_y_ndim must be 1 or 2"
    yield "n-outputs", rs, ["n_outputs_"], 2, \
        "head has 1 outputs but its targets call for 2"


@pytest.mark.parametrize("state, path, value, match",
                         [s[1:] for s in _bad_fitted_states()],
                         ids=[s[0] for s in _bad_fitted_states()])
def test_wrong_part_of_a_fitted_state_is_refused(state, path, value, match):
    cls = RNNClassifier if "classes_" in state else RNNRegressor
    with pytest.raises(ValueError, match=f"Cannot load this {cls.__name__}: "
                                         f".*{re.escape(match)}"):
        _load(cls, _edited(state, path, value))


def test_regressor_one_dimensional_targets_have_one_output():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(N, T, F))
    est = RNNRegressor("rnn", (3,), max_iter=1, random_state=0).fit(
        X, rng.normal(size=(N, 2)))
    state = est.__getstate__()
    assert state["_y_ndim"] == 2
    with pytest.raises(ValueError, match="its targets are 1-D \\(_y_ndim\\) "
                                         "but n_outputs_ is 2"):
        _load(RNNRegressor, _edited(state, ["_y_ndim"], 1))


def test_state_of_objects_is_checked_as_a_saved_one():
    # An optimizer object of an older version's pickle: its step count and
    # settings are checked as those of a saved dict are.
    est, X, _ = _fitted("tokens")
    for name, value, match in [("t", "12", "_optimizer.t must be an integer"),
                               ("learning_rate", None,
                                "_optimizer.learning_rate must be a number")]:
        state = copy.deepcopy(dict(vars(est)))
        setattr(state["_optimizer"], name, value)
        with pytest.warns(InconsistentVersionWarning), \
                pytest.raises(ValueError, match=match):
            _load(RNNClassifier, state)
    state = copy.deepcopy(dict(vars(est)))
    del state["_dropout_rng"]
    with pytest.warns(InconsistentVersionWarning), \
            pytest.raises(ValueError, match="no _dropout_rng"):
        _load(RNNClassifier, state)
