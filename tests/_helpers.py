"""Run the Cython kernels with the calling convention of seqclf.reference."""

import numpy as np

from seqclf import _kernels
from seqclf._cells import cache_shapes, param_shapes
from seqclf._openmp_helpers import single_threaded_blas


def _empty(shapes, dtype):
    # NaN-filled so that a kernel that leaves an OUT entry unwritten is caught
    return {k: np.full(s, np.nan, dtype=dtype) for k, s in shapes.items()}


def run_kernels(cell, X, lengths, params, *, mask=None, reverse=False,
                activation="tanh", dh_last=None, dh_seq=None, n_threads=1,
                backward=True):
    """Training forward (and backward) through the kernels.

    Returns ``(h_last, h_seq, grads, dX)`` like the reference, ``grads``
    keyed like ``params``; ``grads`` and ``dX`` are None without backward.
    """
    N, T, F = X.shape
    H = params["U"].shape[0]
    dtype = X.dtype
    lengths = np.asarray(lengths, dtype=np.intp)
    cache = _empty(cache_shapes(cell, N, T, H), dtype)
    h_last = np.full((N, H), np.nan, dtype=dtype)
    p = params
    kw = dict(mask=mask, reverse=reverse, n_threads=n_threads)
    rkw = dict(kw, activation=activation) if cell == "rnn" else kw
    with single_threaded_blas():
        if cell == "rnn":
            _kernels.rnn_forward(X, lengths, p["W"], p["U"], p["b"], h_last,
                                 cache["h_seq"], cache["h_prev"], **rkw)
        elif cell == "gru":
            _kernels.gru_forward(X, lengths, p["W"], p["U"], p["b_ih"],
                                 p["b_hh"], h_last, cache["h_seq"],
                                 cache["h_prev"], cache["gates"], cache["hn"],
                                 **kw)
        else:
            _kernels.lstm_forward(X, lengths, p["W"], p["U"], p["b"], h_last,
                                  cache["h_seq"], cache["h_prev"],
                                  cache["gates"], cache["c_seq"], **kw)
        if not backward:
            return h_last, cache["h_seq"], None, None
        grads = _empty(param_shapes(cell, F, H), dtype)
        dX = np.full(X.shape, np.nan, dtype=dtype)
        if cell == "rnn":
            _kernels.rnn_backward(X, lengths, p["W"], p["U"], cache["h_seq"],
                                  cache["h_prev"], dh_last, dh_seq,
                                  grads["W"], grads["U"], grads["b"], dX,
                                  **rkw)
        elif cell == "gru":
            _kernels.gru_backward(X, lengths, p["W"], p["U"], cache["h_seq"],
                                  cache["h_prev"], cache["gates"], cache["hn"],
                                  dh_last, dh_seq, grads["W"], grads["U"],
                                  grads["b_ih"], grads["b_hh"], dX, **kw)
        else:
            _kernels.lstm_backward(X, lengths, p["W"], p["U"], cache["h_seq"],
                                   cache["h_prev"], cache["gates"],
                                   cache["c_seq"], dh_last, dh_seq,
                                   grads["W"], grads["U"], grads["b"], dX,
                                   **kw)
    return h_last, cache["h_seq"], grads, dX


def run_inference(cell, X, lengths, params, *, reverse=False,
                  activation="tanh", n_threads=1, with_seq=True):
    """Inference forward through the kernels: ``(h_last, h_seq or None)``."""
    N, T, F = X.shape
    H = params["U"].shape[0]
    lengths = np.asarray(lengths, dtype=np.intp)
    h_last = np.full((N, H), np.nan, dtype=X.dtype)
    h_seq = np.full((N, T, H), np.nan, dtype=X.dtype) if with_seq else None
    p = params
    kw = dict(reverse=reverse, n_threads=n_threads)
    with single_threaded_blas():
        if cell == "rnn":
            _kernels.rnn_forward_inference(X, lengths, p["W"], p["U"], p["b"],
                                           h_last, h_seq, activation=activation,
                                           **kw)
        elif cell == "gru":
            _kernels.gru_forward_inference(X, lengths, p["W"], p["U"],
                                           p["b_ih"], p["b_hh"], h_last, h_seq,
                                           **kw)
        else:
            _kernels.lstm_forward_inference(X, lengths, p["W"], p["U"], p["b"],
                                            h_last, h_seq, **kw)
    return h_last, h_seq
