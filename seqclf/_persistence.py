"""What a fitted estimator saves, and the checks made when it is loaded.

:func:`saved_state` turns an estimator's attributes into plain values
(numbers, strings, lists, dicts and NumPy arrays): the network becomes a
dict of its sizes and its parameter vector, each optimizer a dict of its
settings and moments, the input spec a dict. Pickle and ``skops.io`` save
that state, so that ``skops.io.get_untrusted_types`` lists only the
estimator's own class. :func:`loaded_state` rebuilds the objects from it and
checks every part against the others (shapes, dtypes, lengths, the cells,
the classes), so that a damaged or edited file is refused at load with a
ValueError naming what is wrong, rather than giving a model that predicts
from reinterpreted weights. A file saved by another seqclf version warns
with :class:`seqclf.exceptions.InconsistentVersionWarning`.
"""

import dataclasses
import numbers
import warnings

import numpy as np

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


def loaded_state(name, state, make_loss, n_outputs):
    """Rebuild and check the state of an estimator being loaded.

    Parameters
    ----------
    name : str
        The estimator's class name, for messages.
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
        If a part of the state is missing, of the wrong type or shape, or
        disagrees with another part.
    """
    state = dict(state)
    original = state.pop(VERSION_KEY, "unknown")
    if original != __version__:
        warnings.warn(InconsistentVersionWarning(
            estimator_name=name, current_seqclf_version=__version__,
            original_seqclf_version=original), stacklevel=3)
    try:
        _rebuild(state, make_loss, n_outputs)
    except _Invalid as exc:
        raise ValueError(
            f"Cannot load this {name}: {exc} The file is damaged, or was "
            f"not written by seqclf."
        ) from None
    return state


def _rebuild(state, make_loss, n_outputs):
    net = state.get("_network")
    fitted = [k for k in ("n_iter_", "loss_curve_", "_input_spec")
              if k in state]
    if net is None:
        if fitted:
            raise _Invalid(f"it has fitted attributes ({', '.join(fitted)}) "
                           f"but no network.")
        return                                  # an unfitted estimator
    missing = [k for k in ("_input_spec", "n_iter_", "n_features_in_")
               if k not in state]
    if missing:
        raise _Invalid(f"its network has no {', '.join(missing)} beside it.")
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

    dense = (net.dense_coefs.shape, net.dtype)
    state["_optimizer"] = _optimizer(state.get("_optimizer"), "_optimizer", dense)
    sparse = None if net.embedding is None else (net.embedding.shape, net.dtype)
    opt = state.get("_embedding_optimizer")
    if (opt is None) != (sparse is None):
        raise _Invalid("_embedding_optimizer does not match the network's "
                       "embedding.")
    if opt is not None:
        state["_embedding_optimizer"] = _optimizer(opt, "_embedding_optimizer",
                                                   sparse)
    best = state.get("_best_coefs")
    if best is not None:
        _array("_best_coefs", best, net.coefs.shape, net.dtype)


def _int(key, value, low=1, none=False):
    if value is None and none:
        return None
    if (isinstance(value, (bool, np.bool_))
            or not isinstance(value, numbers.Integral) or value < low):
        raise _Invalid(f"{key} must be an integer >= {low}, got {value!r}.")
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
        arrays = _OPTIMIZER_ARRAYS.get(_solver(d))
        if arrays is None:
            raise _Invalid(f"{key} is a {type(d).__name__}.")
        for name in arrays:
            _array(f"{key}.{name}", getattr(d, name, None), shape, dtype)
        return d
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
            raise _Invalid(f"{key}.{name} must be a number, got {value!r}.")
    opt = _OPTIMIZERS[solver].__new__(_OPTIMIZERS[solver])
    opt.__setstate__(d)
    return opt
