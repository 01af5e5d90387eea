"""Saving and loading fitted models: pickle and skops.io.

A fitted estimator saves plain values only (``seqclf._persistence``), so
that ``skops.io.get_untrusted_types`` lists nothing but its class; loading
rebuilds the network, the optimizers and the input spec, checks them
against each other, and warns when another seqclf version saved the file.
"""

import copy
import io
import json
import pickle
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
