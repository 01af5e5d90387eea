"""A comparable snapshot of everything an RNNClassifier holds.

Used to check that a fit which fails leaves the estimator exactly as it was:
parameters, fitted attributes, the network's weights, the optimizers'
moments and the random generators' states.
"""

import math

import numpy as np

from seqclf._network import RecurrentNetwork
from seqclf._optim import AdamOptimizer, SGDOptimizer

# Scratch that a fit may change without it being part of the model's state.
_NETWORK_SCRATCH = {"grads", "embedding_grad", "_work", "layers", "head",
                    "head_params", "head_grads", "loss", "_penalised",
                    "dense_coefs", "embedding"}


def freeze(value):
    """A hashable, ``==``-comparable image of ``value`` (NaN equals NaN)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (float, np.floating)):
        return ("float", repr(float(value)) if math.isnan(value) else float(value))
    if isinstance(value, RecurrentNetwork):
        return ("network",) + tuple(
            (k, freeze(v)) for k, v in sorted(vars(value).items())
            if k not in _NETWORK_SCRATCH)
    if isinstance(value, (AdamOptimizer, SGDOptimizer)):
        return (type(value).__name__,) + tuple(
            (k, freeze(v)) for k, v in sorted(vars(value).items()))
    if isinstance(value, np.random.RandomState):
        return ("RandomState", freeze(value.get_state()))
    if isinstance(value, np.random.Generator):
        return ("Generator", freeze(value.bit_generator.state))
    if isinstance(value, dict):
        return ("dict",) + tuple((k, freeze(v)) for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(freeze(v) for v in value)
    return value


def snapshot(est):
    """``{attribute: frozen value}`` of an estimator."""
    return {k: freeze(v) for k, v in vars(est).items()}


def assert_same_state(est, before):
    """Assert that ``est`` holds exactly the state ``before`` recorded."""
    after = snapshot(est)
    added = sorted(set(after) - set(before))
    lost = sorted(set(before) - set(after))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    assert not (added or lost or changed), (
        f"state changed: added {added}, lost {lost}, changed {changed}")
