"""Timings of the recurrent kernels in ``seqclf._kernels``.

One layer over a batch of 128 synthetic MNIST rows (28 steps x 28 features,
all full length), for each cell, hidden size, dtype and thread count. Every
output array, cache and gradient is allocated in ``setup``, as the network
driver does, so only the kernels are timed. BLAS is limited to one thread
while timing (see ``common.SingleThreadedBLAS``).
"""

import numpy as np

from seqclf import _kernels

from .common import (
    N_FEATURES,
    N_SAMPLES,
    N_STEPS,
    Benchmark,
    SingleThreadedBLAS,
    make_cache,
    make_grads,
    make_params,
    make_sequences,
)

CELLS = ["rnn", "gru", "lstm"]

if Benchmark.profile == "fast":
    HIDDEN_SIZES = [32, 128]
    DTYPES = ["float32"]
else:
    HIDDEN_SIZES = [32, 128, 256]
    DTYPES = ["float32", "float64"]


class RecurrentKernels(SingleThreadedBLAS, Benchmark):
    """Forward (training and inference) and backpropagation through time.

    ``time_forward`` is the training forward that fills the cache,
    ``time_forward_inference`` the forward that keeps only the last state
    (what a classifier's ``predict`` needs), ``time_backward`` the backward
    pass from a gradient on the last state (parameter gradients only, no
    ``dX``, as for a first layer) and ``time_forward_backward`` both passes
    of a training step.
    """

    param_names = ["cell", "n_hidden", "dtype", "n_threads"]
    params = (CELLS, HIDDEN_SIZES, DTYPES, Benchmark.n_threads_vals)

    def setup_(self, cell, n_hidden, dtype, n_threads):
        X, lengths = make_sequences(N_SAMPLES, N_STEPS, N_FEATURES, dtype)
        weights = make_params(cell, N_FEATURES, n_hidden, dtype)
        cache = make_cache(cell, N_SAMPLES, N_STEPS, n_hidden, dtype)
        grads = make_grads(cell, N_FEATURES, n_hidden, dtype)
        h_last = np.zeros((N_SAMPLES, n_hidden), dtype=dtype)
        rng = np.random.default_rng(1)
        dh_last = rng.standard_normal((N_SAMPLES, n_hidden)).astype(dtype)

        self.forward = getattr(_kernels, f"{cell}_forward")
        self.forward_inference = getattr(_kernels, f"{cell}_forward_inference")
        self.backward = getattr(_kernels, f"{cell}_backward")

        # Positional arguments in the kernels' order: parameters as in
        # _cells.param_shapes, cache arrays as in _cells.cache_shapes.
        self.forward_args = (X, lengths, *weights.values(), h_last, *cache.values())
        self.inference_args = (X, lengths, *weights.values(), h_last)
        self.backward_args = (
            X,
            lengths,
            weights["W"],
            weights["U"],
            *cache.values(),
            dh_last,
            None,  # dh_seq
            *grads.values(),
            None,  # dX
        )
        self.kwargs = {"n_threads": n_threads}

        # Fill the cache once so that time_backward starts from a real forward.
        self.forward(*self.forward_args, **self.kwargs)

    def time_forward(self, *params):
        self.forward(*self.forward_args, **self.kwargs)

    def time_forward_inference(self, *params):
        self.forward_inference(*self.inference_args, **self.kwargs)

    def time_backward(self, *params):
        self.backward(*self.backward_args, **self.kwargs)

    def time_forward_backward(self, *params):
        self.forward(*self.forward_args, **self.kwargs)
        self.backward(*self.backward_args, **self.kwargs)
