"""Timings of ``RNNClassifier.fit`` on long sequences.

Backpropagation through time carries gradients that decay step by step;
over hundreds of steps they become subnormal floats, which many CPUs
process in slow microcode, so that a step of a long sequence can cost many
times one of a short sequence. ``LongSequenceFit`` times one epoch of
``RNNClassifier(cell, (64,), batch_size=64, max_iter=1)`` on random float32
sequences of 8 features (10 classes) at 256 and 1,024 steps, with every
sequence of full length (``fixed``) or lengths uniform in [T/4, T] given as
a ragged list of arrays (``variable``). Compare its times with
``n_steps``: without a subnormal penalty, time grows about linearly in T.

Threads are set as in ``bench_estimator`` (``threadpool_limits`` for
OpenMP, BLAS on one thread by seqclf's ``single_threaded_blas``);
``benchmarks/compare_torch_long.py`` measures the same models beside
PyTorch.
"""

import functools

import numpy as np

from seqclf import RNNClassifier

from .bench_estimator import EstimatorThreads
from .common import Benchmark

CELLS = ["gru", "lstm"]
HIDDEN = (64,)
BATCH = 64
N_FEATURES = 8
N_CLASSES = 10
N_STEPS = [256, 1_024]
LENGTHS = ["fixed", "variable"]
# Sequences per timed epoch: a few seconds per fit at 1,024 steps on one core.
N_SAMPLES = 128 if Benchmark.profile == "fast" else 256


@functools.lru_cache(maxsize=None)
def make_long_sequences(n_samples, n_steps, lengths, random_state=0):
    """Random sequences of 8 features and random labels in ``range(10)``.

    Parameters
    ----------
    n_samples : int
    n_steps : int
        Steps of the longest sequence, T.
    lengths : {"fixed", "variable"}
        ``"fixed"``: every sequence has T steps, ``X`` is one array.
        ``"variable"``: lengths uniform in ``[T // 4, T]``, ``X`` a list.
    random_state : int, default=0

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, 8) or list of ndarray
        float32, uniform in [0, 1); cached and shared, not to be modified.
    y : ndarray of shape (n_samples,)
    """
    rng = np.random.default_rng(random_state)
    X = rng.random((n_samples, n_steps, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, size=n_samples)
    if lengths == "variable":
        ns = rng.integers(max(1, n_steps // 4), n_steps + 1, size=n_samples)
        X = [x[:n].copy() for x, n in zip(X, ns)]
    return X, y


class LongSequenceFit(EstimatorThreads, Benchmark):
    """One epoch of ``RNNClassifier(cell, (64,), batch_size=64, max_iter=1)``.

    On ``N_SAMPLES`` random sequences of ``n_steps`` steps (at most, for
    ``variable`` lengths) and 8 features, float32.
    """

    param_names = ["cell", "n_steps", "lengths", "n_threads"]
    params = (CELLS, N_STEPS, LENGTHS, Benchmark.n_threads_vals)
    # One fit lasts seconds: one call per sample, and fewer samples than the
    # regular profile's default.
    number = 1
    if Benchmark.profile == "regular":
        repeat = (3, 5, 20.0)
    timeout = 600

    def setup(self, cell, n_steps, lengths, n_threads):
        self.X, self.y = make_long_sequences(N_SAMPLES, n_steps, lengths)
        self.set_threads(n_threads)

    def time_fit(self, cell, n_steps, lengths, n_threads):
        # A new estimator each time: every repeat trains from scratch.
        RNNClassifier(cell, HIDDEN, batch_size=BATCH, max_iter=1,
                      random_state=0).fit(self.X, self.y)
