"""Run one recurrent layer through either implementation.

``impl`` is :mod:`seqclf.reference` or :mod:`seqclf._layers`: both take the
same arguments. The compiled layers write into NaN-filled outputs, so that
a kernel that leaves an entry unwritten is caught.
"""

import numpy as np

from seqclf import _layers, reference
from seqclf._cells import cache_shapes, param_shapes
from seqclf._openmp_helpers import single_threaded_blas


def _nans(shapes, dtype):
    return {k: np.full(s, np.nan, dtype=dtype) for k, s in shapes.items()}


def run_layer(impl, cell, X, lengths, params, *, mask=None, reverse=False,
              activation="tanh", dh_last=None, dh_seq=None, n_threads=1,
              backward=True):
    """Training forward (and backward): ``(h_last, h_seq, grads, dX)``.

    ``grads`` is keyed like ``params``; ``grads`` and ``dX`` are None
    without ``backward``. ``n_threads`` applies to the compiled layers.
    """
    kw = dict(mask=mask, reverse=reverse, activation=activation)
    if impl is reference:
        h_last, h_seq, cache = reference.forward(cell, X, lengths, params, **kw)
        if not backward:
            return h_last, h_seq, None, None
        grads, dX = reference.backward(cell, X, lengths, params, cache,
                                       dh_last, dh_seq, **kw)
        return h_last, h_seq, grads, dX
    N, T, F = X.shape
    H = params["U"].shape[0]
    lengths = np.asarray(lengths, dtype=np.intp)
    out = _nans(cache_shapes(cell, N, T, H), X.dtype)
    out["h_last"] = np.full((N, H), np.nan, dtype=X.dtype)
    with single_threaded_blas():
        h_last, h_seq, cache = _layers.forward(
            cell, X, lengths, params, out=out, n_threads=n_threads, **kw)
        if not backward:
            return h_last, h_seq, None, None
        grad_out = _nans({"d" + k: s for k, s in
                          param_shapes(cell, F, H).items()}, X.dtype)
        grad_out["dX"] = np.full(X.shape, np.nan, dtype=X.dtype)
        grads, dX = _layers.backward(
            cell, X, lengths, params, cache, dh_last, dh_seq, out=grad_out,
            n_threads=n_threads, **kw)
    return h_last, h_seq, grads, dX


def run_kernels(cell, X, lengths, params, **kwargs):
    """:func:`run_layer` through the compiled layers."""
    return run_layer(_layers, cell, X, lengths, params, **kwargs)


def run_inference(cell, X, lengths, params, *, reverse=False,
                  activation="tanh", n_threads=1, with_seq=True):
    """Inference forward through the compiled layers: ``(h_last, h_seq or None)``."""
    N, T, F = X.shape
    H = params["U"].shape[0]
    out = {"h_last": np.full((N, H), np.nan, dtype=X.dtype)}
    if with_seq:
        out["h_seq"] = np.full((N, T, H), np.nan, dtype=X.dtype)
    with single_threaded_blas():
        h_last, h_seq, _ = _layers.forward(
            cell, X, np.asarray(lengths, dtype=np.intp), params,
            reverse=reverse, activation=activation, training=False,
            return_sequences=with_seq, out=out, n_threads=n_threads)
    return h_last, h_seq


def token_ids(N, T, V, seed, min_length=1):
    """Random ids in ``[0, V)`` and lengths; padding holds -7, an id no row
    has, so that reading it would fail."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(N, T)).astype(np.intp)
    lengths = rng.integers(min_length, T + 1, size=N).astype(np.intp)
    lengths[0] = T
    ids[np.arange(T)[None, :] >= lengths[:, None]] = -7
    return ids, lengths
