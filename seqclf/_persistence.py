"""What a fitted estimator saves, and the checks made when it is loaded.

:func:`saved_state` turns an estimator's attributes into plain values
(numbers, strings, lists, dicts and NumPy arrays): the network becomes a
dict of its sizes and its parameter vector, each optimizer a dict of its
settings and moments, the input spec a dict. Pickle and ``skops.io`` save
that state, so that ``skops.io.get_untrusted_types`` lists only the
estimator's own class. :func:`loaded_state` rebuilds the objects from it and
checks the whole state: every parameter, and every attribute a fitted
estimator holds (``_FITTED``, and the classes or target columns of the
estimator's kind), present and of its type, and every part against the
others (shapes, dtypes, lengths, the cells, the classes), so that a damaged
or edited file is refused at load with a ValueError naming what is wrong,
rather than giving a model that predicts from reinterpreted weights or
fails later with an AttributeError. A file saved by another seqclf version
warns with :class:`seqclf.exceptions.InconsistentVersionWarning`.
"""

import dataclasses
import numbers
import warnings

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from ._cells import CELLS
from ._network import RecurrentNetwork
from ._optim import AdamOptimizer, SGDOptimizer
from ._sequences import SequenceSpec
from ._version import __version__
from .exceptions import InconsistentVersionWarning

VERSION_KEY = "_seqclf_version"

_OPTIMIZERS = {"adam": AdamOptimizer, "sgd": SGDOptimizer}
_OPTIMIZER_ARRAYS = {"adam": ("m", "v"), "sgd": ("velocity",)}
_OPTIMIZER_SETTINGS = {"adam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
                       "sgd": ("learning_rate", "momentum", "nesterov")}
_NETWORK_KEYS = ("cells", "hidden_sizes", "n_features", "n_outputs",
                 "activation", "bidirectional", "dtype", "n_tokens", "coefs")
# What ``_optimizer_config`` records: the settings a fit compares with its
# own to keep the optimizer or start a fresh one.
_CONFIG_KEYS = ("solver", "learning_rate", "beta_1", "beta_2", "epsilon",
                "momentum", "nesterov")
# What stop_reason_ can say (set by seqclf._rnn's training loop).
_STOP_REASONS = ("max_iter", "training_loss", "validation_score",
                 "partial_fit", "interrupted")


class _Invalid(ValueError):
    """A saved state that does not hold together."""


def saved_state(state):
    """The plain-valued state to save, from a copy of an estimator's ``__dict__``."""
    state = dict(state)
    state[VERSION_KEY] = __version__
    net = state.get("_network")
    if isinstance(net, RecurrentNetwork):
        state["_network"] = {
            "cells": list(net.cells), "hidden_sizes": list(net.hidden_sizes),
            "n_features": net.n_features, "n_outputs": net.n_outputs,
            "activation": net.activation, "bidirectional": net.bidirectional,
            "dtype": net.dtype.name, "n_tokens": net.n_tokens,
            "coefs": net.coefs,
        }
    for key in ("_optimizer", "_embedding_optimizer"):
        opt = state.get(key)
        if opt is not None and not isinstance(opt, dict):
            state[key] = dict(opt.__getstate__(), solver=_solver(opt))
    spec = state.get("_input_spec")
    if isinstance(spec, SequenceSpec):
        state["_input_spec"] = spec_state(spec)
    return state


def spec_state(spec):
    """A :class:`~seqclf._sequences.SequenceSpec` as a dict of plain values."""
    fields = dataclasses.asdict(spec)
    fields["dtype"] = spec.dtype.name
    return fields


def loaded_spec(name, d):
    """The SequenceSpec of a saved dict (or a spec of an older version),
    checked; ValueError naming ``name`` if it does not hold together."""
    if isinstance(d, SequenceSpec):
        return d
    try:
        if not isinstance(d, dict):
            raise _Invalid(f"its input spec is a {type(d).__name__}.")
        return _spec(d)
    except _Invalid as exc:
        raise ValueError(f"Cannot load this {name}: {exc} The file is damaged, "
                         f"or was not written by seqclf.") from None


def _solver(opt):
    """The solver name of an optimizer object, or None for another object."""
    return next((k for k, c in _OPTIMIZERS.items() if type(opt) is c), None)


def loaded_state(cls, state, make_loss, n_outputs):
    """Rebuild and check the state of an estimator being loaded.

    Parameters
    ----------
    cls : type
        The estimator's class: its parameters, its kind (classifier or
        regressor) and its name, for messages.
    state : dict
        What :func:`saved_state` gave (or a state of an older version,
        whose objects are kept).
    make_loss : callable
        Builds the estimator's loss for the network.
    n_outputs : callable
        ``n_outputs(state)``: the outputs the head must have for the
        targets the state records (classes or target columns).

    Returns
    -------
    state : dict
        The attributes to set, objects rebuilt.

    Raises
    ------
    ValueError
        If a parameter or a part of a fitted estimator's state is missing,
        of the wrong type or shape, or disagrees with another part.
    """
    name = cls.__name__
    state = dict(state)
    original = state.pop(VERSION_KEY, "unknown")
    if original != __version__:
        warnings.warn(InconsistentVersionWarning(
            estimator_name=name, current_seqclf_version=__version__,
            original_seqclf_version=original), stacklevel=3)
    try:
        _rebuild(cls, state, make_loss, n_outputs)
    except _Invalid as exc:
        raise ValueError(
            f"Cannot load this {name}: {exc} The file is damaged, or was "
            f"not written by seqclf."
        ) from None
    return state


def _shown(value):
    """``repr(value)``, cut short for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(low):
    return lambda key, value: _int(key, value, low=low)


def _instance(kind, what):
    def check(key, value):
        if not isinstance(value, kind):
            raise _Invalid(f"{key} must be {what}, got {_shown(value)}.")
    return check


def _number(key, value, none=False):
    if value is None and none:
        return
    if (isinstance(value, (bool, np.bool_))
            or not isinstance(value, numbers.Real)):
        raise _Invalid(f"{key} must be a number{' or None' if none else ''}, "
                       f"got {_shown(value)}.")


def _numbers(key, value, none=False):
    if value is None and none:
        return
    if not isinstance(value, list) or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)
            for v in value):
        raise _Invalid(f"{key} must be a list of numbers"
                       f"{' or None' if none else ''}, got {_shown(value)}.")


def _number_or_none(key, value):
    _number(key, value, none=True)


def _numbers_or_none(key, value):
    _numbers(key, value, none=True)


def _stop_reason(key, value):
    if not isinstance(value, str) or value not in _STOP_REASONS:
        raise _Invalid(f"{key} must be one of "
                       f"{', '.join(map(repr, _STOP_REASONS))}, got "
                       f"{_shown(value)}.")


def _feature_names(key, value):
    if (not isinstance(value, np.ndarray) or value.ndim != 1
            or value.dtype != object
            or not all(isinstance(n, str) for n in value)):
        raise _Invalid(f"{key} must be a 1-D object array of column names, "
                       f"got {_shown(value)}.")


def _classes(key, value):
    if not isinstance(value, np.ndarray) or value.ndim != 1 or len(value) < 2:
        raise _Invalid(f"{key} must be a 1-D array of at least 2 labels, got "
                       f"{_shown(value)}.")
    try:
        ordered = np.unique(value)
    except TypeError:                   # labels that do not compare
        ordered = None
    # Labels are encoded by their place in classes_ (searchsorted).
    if (ordered is None or len(ordered) != len(value)
            or not np.array_equal(ordered, value)):
        raise _Invalid(f"{key} must hold distinct labels in sorted order, got "
                       f"{_shown(value)}.")


def _y_ndim(key, value):
    if _int(key, value) not in (1, 2):
        raise _Invalid(f"{key} must be 1 or 2, got {value!r}.")


def _later(key, value):
    """Checked with the network, below."""


# Every attribute a fitted estimator holds besides its parameters and its
# targets' (see _targets), with the check of its type: a file that lacks
# one, or holds a value of another type, is refused. An attribute that a
# fit adds belongs here (the tests remove each attribute of fitted
# estimators in turn, and alter each, expecting a refusal).
_FITTED = {
    "_network": _later,
    "_input_spec": _later,
    "n_features_in_": _count(1),
    "_random_state": _instance(np.random.RandomState, "a NumPy RandomState"),
    "_dropout_rng": _instance(np.random.Generator, "a NumPy Generator"),
    "_optimizer": _later,
    "_embedding_optimizer": _later,
    "_optimizer_config": _later,
    "n_iter_": _count(0),
    "loss_curve_": _numbers,
    "best_loss_": _number_or_none,
    "validation_scores_": _numbers_or_none,
    "best_validation_score_": _number_or_none,
    "_no_improvement_count": _count(0),
    "_best_coefs": _later,
    "n_threads_": _count(1),
    "stop_reason_": _stop_reason,
}
# Those a fitted estimator may lack: column names (X had none), the
# vocabulary (real-valued input) and the loss of the last epoch (a fit
# interrupted in its first epoch); checked below where they must be there.
_FITTED_OPTIONAL = {
    "feature_names_in_": _feature_names,
    "vocab_size_": _count(1),
    "loss_": _number,
}


def _targets(cls):
    """The checks of the attributes recording a fit's targets."""
    if issubclass(cls, ClassifierMixin):
        return {"classes_": _classes}
    if issubclass(cls, RegressorMixin):
        return {"n_outputs_": _count(1), "_y_ndim": _y_ndim}
    return {}


def _rebuild(cls, state, make_loss, n_outputs):
    missing = [k for k in cls._get_param_names() if k not in state]
    if missing:
        raise _Invalid(f"it has no parameter{'s' * (len(missing) > 1)} "
                       f"{', '.join(missing)}.")
    checks = {**_FITTED, **_targets(cls)}
    if "_network" not in state:
        fitted = [k for k in (*checks, *_FITTED_OPTIONAL) if k in state]
        if fitted:
            raise _Invalid(f"it has fitted attributes ({', '.join(fitted)}) "
                           f"but no network (_network).")
        return                                  # an unfitted estimator
    missing = [k for k in checks if k not in state]
    if missing:
        raise _Invalid(f"it has a network but no {', '.join(missing)}.")
    checks.update(_FITTED_OPTIONAL)
    for key, check in checks.items():
        if key in state:
            check(key, state[key])

    net = state["_network"]
    if isinstance(net, dict):
        net = state["_network"] = _network(net, make_loss())
    elif not isinstance(net, RecurrentNetwork):
        raise _Invalid(f"_network is a {type(net).__name__}.")
    spec = state["_input_spec"]
    if isinstance(spec, dict):
        spec = state["_input_spec"] = _spec(spec)
    elif not isinstance(spec, SequenceSpec):
        raise _Invalid(f"_input_spec is a {type(spec).__name__}.")

    expected = n_outputs(state)
    if expected != net.n_outputs:
        raise _Invalid(f"its head has {net.n_outputs} outputs but its targets "
                       f"call for {expected}.")
    if spec.vocab_size is None:
        if net.n_tokens is not None:
            raise _Invalid("its network has an embedding but its input spec "
                           "reads real values.")
        if spec.n_step_features != net.n_features:
            raise _Invalid(f"its network reads {net.n_features} features per "
                           f"step but its input spec has "
                           f"{spec.n_step_features}.")
        if spec.dtype != net.dtype:
            raise _Invalid(f"its network computes in {net.dtype} but its input "
                           f"spec reads {spec.dtype}.")
    else:
        rows = spec.vocab_size + (not spec.vocab_fixed)
        if net.n_tokens != rows:
            raise _Invalid(f"its vocabulary of {spec.vocab_size} ids calls for "
                           f"{rows} embedding rows, its network has "
                           f"{net.n_tokens}.")
    _check_input_facts(state, spec)
    _check_record(state)
    if state.get("_y_ndim") == 1 and state["n_outputs_"] != 1:
        raise _Invalid(f"its targets are 1-D (_y_ndim) but n_outputs_ is "
                       f"{state['n_outputs_']}.")

    dense = (net.dense_coefs.shape, net.dtype)
    if state["_optimizer"] is None:             # made by every fit
        raise _Invalid("its network has no _optimizer beside it.")
    state["_optimizer"] = _optimizer(state["_optimizer"], "_optimizer", dense)
    sparse = None if net.embedding is None else (net.embedding.shape, net.dtype)
    opt = state["_embedding_optimizer"]
    if (opt is None) != (sparse is None):
        raise _Invalid("_embedding_optimizer does not match the network's "
                       "embedding.")
    if opt is not None:
        state["_embedding_optimizer"] = _optimizer(opt, "_embedding_optimizer",
                                                   sparse)
    _check_config(state)
    best = state["_best_coefs"]
    if best is not None:
        _array("_best_coefs", best, net.coefs.shape, net.dtype)


def _check_input_facts(state, spec):
    """What a fit records of its input beside the spec agrees with it."""
    n = state["n_features_in_"]
    if n != spec.n_features_in:
        raise _Invalid(f"n_features_in_ is {n} but its input spec reads "
                       f"{spec.n_features_in} features.")
    names = state.get("feature_names_in_")
    if names is not None and len(names) != n:
        raise _Invalid(f"feature_names_in_ names {len(names)} columns but "
                       f"n_features_in_ is {n}.")
    vocab = state.get("vocab_size_")
    if vocab != spec.vocab_size:
        raise _Invalid(
            "its input spec reads token ids but it has no vocab_size_."
            if vocab is None else
            f"vocab_size_ is {vocab} but its input spec reads real values."
            if spec.vocab_size is None else
            f"vocab_size_ is {vocab} but its input spec has a vocabulary of "
            f"{spec.vocab_size} ids.")


def _check_record(state):
    """The epochs' record: the losses, and the stopping rule's record of
    either the validation scores (early stopping) or the training loss."""
    n_iter, curve = state["n_iter_"], state["loss_curve_"]
    if n_iter > len(curve):
        raise _Invalid(f"n_iter_ counts {n_iter} epochs but loss_curve_ holds "
                       f"{len(curve)} losses.")
    if curve and "loss_" not in state:
        raise _Invalid("it has a loss_curve_ but no loss_.")
    scores = state["validation_scores_"]
    best_score, best_loss = (state["best_validation_score_"],
                             state["best_loss_"])
    if scores is None and best_score is not None:
        raise _Invalid("it has a best_validation_score_ but no "
                       "validation_scores_.")
    if scores is not None and best_score is None:
        raise _Invalid("it has validation_scores_ but no "
                       "best_validation_score_.")
    if (scores is None) == (best_loss is None):
        raise _Invalid(
            "best_loss_ and validation_scores_ are both None: it records "
            "neither the training loss nor validation scores."
            if scores is None else
            "it has both a best_loss_ and validation_scores_: a fit records "
            "one of them.")


def _check_config(state):
    """``_optimizer_config`` is a record of the optimizers' settings."""
    config = state["_optimizer_config"]
    if not isinstance(config, dict):
        raise _Invalid(f"_optimizer_config must be a dict, got "
                       f"{_shown(config)}.")
    missing = [k for k in _CONFIG_KEYS if k not in config]
    if missing:
        raise _Invalid(f"_optimizer_config has no {', '.join(missing)}.")
    for k in _CONFIG_KEYS[1:]:
        if not isinstance(config[k], numbers.Real):
            raise _Invalid(f"_optimizer_config's {k} must be a number, got "
                           f"{_shown(config[k])}.")
    for key in ("_optimizer", "_embedding_optimizer"):
        opt = state[key]
        if opt is None:
            continue
        solver = _solver(opt)
        if config["solver"] != solver:
            raise _Invalid(f"_optimizer_config names the solver "
                           f"{_shown(config['solver'])} but {key} holds "
                           f"the state of {solver!r}.")
        for name in _OPTIMIZER_SETTINGS[solver]:
            if config[name] != getattr(opt, name):
                raise _Invalid(f"{key}.{name} is {getattr(opt, name)!r} but "
                               f"_optimizer_config records {config[name]!r}.")


def _int(key, value, low=1, none=False):
    if value is None and none:
        return None
    if (isinstance(value, (bool, np.bool_))
            or not isinstance(value, numbers.Integral) or value < low):
        raise _Invalid(f"{key} must be an integer >= {low}, got "
                       f"{_shown(value)}.")
    return int(value)


def _array(key, a, shape, dtype):
    if not isinstance(a, np.ndarray):
        raise _Invalid(f"{key} must be an array, got {type(a).__name__}.")
    if a.shape != tuple(shape) or a.dtype != dtype:
        raise _Invalid(f"{key} must be a {dtype} array of shape {tuple(shape)}, "
                       f"got {a.dtype} of shape {a.shape}.")
    return np.ascontiguousarray(a)


def _network(d, loss):
    missing = [k for k in _NETWORK_KEYS if k not in d]
    if missing:
        raise _Invalid(f"its network has no {', '.join(missing)}.")
    cells, sizes = d["cells"], d["hidden_sizes"]
    if (not isinstance(cells, (list, tuple)) or not cells
            or any(not isinstance(c, str) or c not in CELLS for c in cells)):
        raise _Invalid(f"its network's cells must be a list of {list(CELLS)}, "
                       f"got {cells!r}.")
    if not isinstance(sizes, (list, tuple)) or len(sizes) != len(cells):
        raise _Invalid(f"its network has {len(cells)} cells but hidden sizes "
                       f"{sizes!r}.")
    sizes = [_int("hidden size", s) for s in sizes]
    if d["dtype"] not in ("float32", "float64"):
        raise _Invalid(f"its network's dtype must be float32 or float64, got "
                       f"{d['dtype']!r}.")
    if d["activation"] not in ("tanh", "relu"):
        raise _Invalid(f"its activation must be 'tanh' or 'relu', got "
                       f"{d['activation']!r}.")
    if not isinstance(d["bidirectional"], (bool, np.bool_)):
        raise _Invalid(f"bidirectional must be a bool, got "
                       f"{d['bidirectional']!r}.")
    dtype = np.dtype(d["dtype"])
    net = RecurrentNetwork(
        cells, sizes, _int("n_features", d["n_features"]),
        _int("n_outputs", d["n_outputs"]), activation=d["activation"],
        bidirectional=bool(d["bidirectional"]), dtype=dtype, loss=loss,
        n_tokens=_int("n_tokens", d["n_tokens"], none=True))
    coefs = _array("its parameter vector", d["coefs"], net.coefs.shape, dtype)
    net._build(coefs)
    return net


def _spec(d):
    names = [f.name for f in dataclasses.fields(SequenceSpec)]
    missing = [k for k in names if k not in d]
    if missing:
        raise _Invalid(f"its input spec has no {', '.join(missing)}.")
    if d["dtype"] not in ("float32", "float64", np.dtype(np.intp).name):
        raise _Invalid(f"its input spec's dtype is {d['dtype']!r}.")
    return SequenceSpec(
        n_features_in=_int("n_features_in", d["n_features_in"]),
        n_step_features=_int("n_step_features", d["n_step_features"]),
        flat=bool(d["flat"]), dtype=np.dtype(d["dtype"]),
        steps=_int("steps", d["steps"], none=True),
        vocab_size=_int("vocab_size", d["vocab_size"], none=True),
        vocab_fixed=bool(d["vocab_fixed"]))


def _optimizer(d, key, params):
    shape, dtype = params
    if d is None:
        return None
    if not isinstance(d, dict):
        solver = _solver(d)
        if solver is None:
            raise _Invalid(f"{key} is a {type(d).__name__}.")
        # An optimizer object (a state of an older version): checked, and
        # rebuilt, as its saved dict is.
        d = dict(vars(d), solver=solver)
    d = dict(d)
    solver = d.pop("solver", None)
    if solver not in _OPTIMIZERS:
        raise _Invalid(f"{key} names no known solver: {solver!r}.")
    for name in _OPTIMIZER_ARRAYS[solver]:
        d[name] = _array(f"{key}.{name}", d.get(name), shape, dtype)
    d["t"] = _int(f"{key}.t", d.get("t"), low=0)
    for name in _OPTIMIZER_SETTINGS[solver]:
        value = d.get(name)
        if not isinstance(value, numbers.Real):
            raise _Invalid(f"{key}.{name} must be a number, got "
                           f"{_shown(value)}.")
    opt = _OPTIMIZERS[solver].__new__(_OPTIMIZERS[solver])
    opt.__setstate__(d)
    return opt
