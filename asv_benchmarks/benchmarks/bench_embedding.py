"""Timings of the embedding front: its kernels and a training epoch.

The kernels run on a batch of 128 sequences of 100 random ids (full
length) for vocabularies of 1,000 and 100,000 ids. The backward pass touches
only the batch's rows: its cost follows the batch's distinct ids (about 1,000
and 12,000 here), not the vocabulary; the forward pass reads rows scattered
over the whole matrix (25 MB at 100,000 x 64 floats). ``EmbeddingFit`` times
one epoch of a GRU classifier on token ids.
"""

import numpy as np
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier
from seqclf._layers import embedding_backward, embedding_forward

from .common import Benchmark, SingleThreadedBLAS

N_SAMPLES, N_STEPS = 128, 100
VOCABS = [1_000, 100_000]
DIMS = [64] if Benchmark.profile == "fast" else [32, 128]


class EmbeddingKernels(Benchmark):
    """Lookup of a batch (``time_forward``) and its gradient (``time_backward``)."""

    param_names = ["vocab_size", "embedding_dim", "n_threads"]
    params = (VOCABS, DIMS, Benchmark.n_threads_vals)

    def setup(self, vocab_size, embedding_dim, n_threads):
        rng = np.random.default_rng(0)
        self.ids = rng.integers(0, vocab_size,
                                size=(N_SAMPLES, N_STEPS)).astype(np.intp)
        self.lengths = np.full(N_SAMPLES, N_STEPS, dtype=np.intp)
        self.E = rng.standard_normal((vocab_size, embedding_dim), dtype=np.float32)
        self.out = np.empty((N_SAMPLES, N_STEPS, embedding_dim), dtype=np.float32)
        self.dX = rng.standard_normal(self.out.shape, dtype=np.float32)
        self.n_threads = n_threads

    def time_forward(self, *params):
        embedding_forward(self.ids, self.lengths, self.E, out=self.out,
                          n_threads=self.n_threads)

    def time_backward(self, *params):
        embedding_backward(self.ids, self.lengths, self.dX, self.E.shape[0],
                           n_threads=self.n_threads)


class EmbeddingFit(SingleThreadedBLAS, Benchmark):
    """One epoch of ``RNNClassifier("gru", (64,), embedding_dim=32)`` on
    2,000 sequences of 40 ids, batch 64."""

    param_names = ["vocab_size", "n_threads"]
    params = (VOCABS, Benchmark.n_threads_vals)

    def setup_(self, vocab_size, n_threads):
        rng = np.random.default_rng(0)
        self.X = rng.integers(0, vocab_size, size=(2_000, 40))
        self.y = rng.integers(0, 10, size=2_000)
        self.n_threads = n_threads

    def time_fit(self, vocab_size, n_threads):
        clf = RNNClassifier("gru", (64,), embedding_dim=32, vocab_size=vocab_size,
                            batch_size=64, max_iter=1, random_state=0)
        with threadpool_limits(n_threads, user_api="openmp"):
            clf.fit(self.X, self.y)
