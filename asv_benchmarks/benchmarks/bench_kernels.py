"""Timings of the recurrent kernels, called through ``seqclf._layers``.

One layer over a batch of 128 synthetic MNIST rows (28 steps x 28 features,
all full length), for each cell, hidden size, dtype and thread count. Every
output array, cache and gradient is allocated in ``setup``, as the network
driver does, so only the kernels are timed. BLAS is limited to one thread
while timing (see ``common.SingleThreadedBLAS``).
"""

import numpy as np

from seqclf import _layers
from seqclf._cells import CELLS as REGISTRY

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

CELLS = list(REGISTRY)

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
        self.X, self.lengths = make_sequences(N_SAMPLES, N_STEPS, N_FEATURES, dtype)
        self.cell = cell
        self.params = make_params(cell, N_FEATURES, n_hidden, dtype)
        h_last = np.zeros((N_SAMPLES, n_hidden), dtype=dtype)
        self.forward_out = dict(make_cache(cell, N_SAMPLES, N_STEPS, n_hidden, dtype),
                                h_last=h_last)
        self.inference_out = {"h_last": h_last}
        self.backward_out = make_grads(cell, N_FEATURES, n_hidden, dtype)
        rng = np.random.default_rng(1)
        self.dh_last = rng.standard_normal((N_SAMPLES, n_hidden)).astype(dtype)
        self.n_threads = n_threads
        # Fill the cache once so that time_backward starts from a real forward.
        self.cache = self.time_forward()

    def time_forward(self, *params):
        return _layers.forward(self.cell, self.X, self.lengths, self.params,
                               out=self.forward_out, n_threads=self.n_threads)[2]

    def time_forward_inference(self, *params):
        _layers.forward(self.cell, self.X, self.lengths, self.params,
                        training=False, return_sequences=False,
                        out=self.inference_out, n_threads=self.n_threads)

    def time_backward(self, *params):
        _layers.backward(self.cell, self.X, self.lengths, self.params,
                         self.cache, self.dh_last, None, compute_dX=False,
                         out=self.backward_out, n_threads=self.n_threads)

    def time_forward_backward(self, *params):
        self.time_forward()
        self.time_backward()
