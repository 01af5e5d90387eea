"""Shared pieces of the seqclf benchmarks: configuration, mixins and data.

The profile ("fast" or "regular") and the thread counts are read from
``config.json`` next to this file; the environment variable
``SEQCLF_BENCH_PROFILE`` overrides the profile, e.g.::

    SEQCLF_BENCH_PROFILE=fast asv run --python=same --quick
"""

import functools
import json
import os
import timeit

import numpy as np

from seqclf._cells import cache_shapes, param_shapes
from seqclf._openmp_helpers import single_threaded_blas

PROFILES = ("fast", "regular")

# Synthetic data shaped like MNIST read row by row: 28 steps of 28 pixels.
N_SAMPLES = 128
N_STEPS = 28
N_FEATURES = 28


def _n_cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def get_from_config():
    """Return ``(profile, n_threads_vals)`` from config.json and the environment."""
    current_path = os.path.dirname(os.path.realpath(__file__))
    config_path = os.path.join(current_path, "config.json")
    with open(config_path) as config_file:
        # config.json allows whole-line // comments, like asv.conf.json.
        text = "".join(
            line for line in config_file if not line.lstrip().startswith("//")
        )
    config = json.loads(text)

    profile = os.environ.get("SEQCLF_BENCH_PROFILE") or config["profile"]
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown benchmark profile {profile!r}; expected one of {PROFILES} "
            "(set in asv_benchmarks/benchmarks/config.json or SEQCLF_BENCH_PROFILE)."
        )

    n_threads_vals = config.get("n_threads_vals") or list(range(1, _n_cpus() + 1))
    return profile, [int(n) for n in n_threads_vals]


class Benchmark:
    """Base class with the timing settings of the chosen profile."""

    timer = timeit.default_timer  # wall time
    timeout = 500

    profile, n_threads_vals = get_from_config()

    if profile == "fast":
        warmup_time = 0.1
        repeat = 1
        number = 1
        min_run_count = 1
    else:  # "regular"
        warmup_time = 0.5
        # (min repeats, max repeats, max seconds); asv reports the median.
        repeat = (5, 20, 10.0)


class SingleThreadedBLAS:
    """Mixin limiting BLAS to one thread from ``setup`` to ``teardown``.

    The kernels call single-threaded BLAS inside their own OpenMP threads, so a
    multi-threaded BLAS would oversubscribe the cores. The limit is seqclf's
    own (``single_threaded_blas``, which fit and predict take too), held from
    ``setup`` to ``teardown`` so that it is in force while asv times the
    benchmark. Subclasses implement ``setup_(*params)``.
    """

    def setup(self, *params):
        self._blas_hold = single_threaded_blas().acquire()
        try:
            self.setup_(*params)
        except BaseException:
            self._release_blas()
            raise

    def teardown(self, *params):
        self._release_blas()

    def _release_blas(self):
        hold = getattr(self, "_blas_hold", None)
        if hold is not None:
            hold.release()
            self._blas_hold = None


@functools.lru_cache(maxsize=None)
def make_sequences(
    n_samples=N_SAMPLES,
    n_steps=N_STEPS,
    n_features=N_FEATURES,
    dtype="float32",
    random_state=0,
):
    """Synthetic MNIST rows: ``X`` of shape (n_samples, n_steps, n_features).

    Values are uniform in [0, 1) like scaled pixels; every sequence has the
    full length. Returns ``(X, lengths)``; the arrays are cached and shared,
    so callers must not modify them.
    """
    rng = np.random.default_rng(random_state)
    X = rng.random((n_samples, n_steps, n_features)).astype(dtype)
    lengths = np.full(n_samples, n_steps, dtype=np.intp)
    return X, lengths


def make_params(cell, n_features, n_hidden, dtype="float32", random_state=0):
    """Random layer parameters, uniform in +-1/sqrt(n_hidden) as in PyTorch."""
    rng = np.random.default_rng(random_state)
    bound = 1.0 / np.sqrt(n_hidden)
    return {
        name: rng.uniform(-bound, bound, size=shape).astype(dtype)
        for name, shape in param_shapes(cell, n_features, n_hidden).items()
    }


def make_cache(cell, n_samples, n_steps, n_hidden, dtype="float32"):
    """Zeroed arrays for the training forward's cache, in kernel order."""
    return {
        name: np.zeros(shape, dtype=dtype)
        for name, shape in cache_shapes(cell, n_samples, n_steps, n_hidden).items()
    }


def make_grads(cell, n_features, n_hidden, dtype="float32"):
    """Zeroed parameter gradients ``dW, dU, db...``, in kernel order."""
    return {
        "d" + name: np.zeros(shape, dtype=dtype)
        for name, shape in param_shapes(cell, n_features, n_hidden).items()
    }
