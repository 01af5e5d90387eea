"""Timings, peak memory and accuracy of ``RNNClassifier`` and ``RNNRegressor``.

``EstimatorFit`` times one epoch of ``fit`` (batch 128) and measures its peak
memory, ``EstimatorPredict`` times ``predict_proba``, both on synthetic MNIST
rows (28 steps x 28 features, 10 classes), for each cell, hidden layer sizes
("32", "128" and "256x2", two layers of 256), dtype and thread count.
``RegressorFit`` and ``RegressorPredict`` do the same for ``RNNRegressor``
(``predict``) on the same rows with one numeric target, over the same grid
and numbers of sequences, so that each timing sits beside the classifier's
on the same network (samples/s = ``N_SAMPLES[hidden]`` / seconds).
``EstimatorScore`` tracks the test accuracy of a short fit on scikit-learn's
bundled digits (8 x 8 images read row by row), and ``EstimatorScoreMNIST``
that of a fit on a subset of MNIST when its files are in ``SEQCLF_DATA``
(skipped otherwise).

The thread count is set as users set it, with ``threadpool_limits(n,
user_api="openmp")``, from ``setup`` to ``teardown``, and BLAS is held at
one thread by seqclf's own limit (see ``EstimatorThreads``); ``setup``
checks that
``seqclf._openmp_helpers.effective_n_threads`` (what ``fit``, ``predict``
and ``predict_proba`` read) then returns ``n``, and skips the benchmark when it
does not (more threads than CPUs, or a build without OpenMP).
"""

import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier, RNNRegressor
from seqclf._openmp_helpers import effective_n_threads, single_threaded_blas
from seqclf.datasets import load_mnist

from .common import N_FEATURES, N_STEPS, Benchmark, make_sequences

CELLS = ["rnn", "gru", "lstm"]
N_CLASSES = 10

# Hidden layer sizes by label, and the training sequences of one timed epoch
# for each (a multiple of the batch size, 128), chosen so that one fit takes
# at most a few seconds on one core.
if Benchmark.profile == "fast":
    HIDDEN = {"32": (32,), "128": (128,)}
    N_SAMPLES = {"32": 512, "128": 512}
    DTYPES = ["float32"]
else:  # "regular"
    HIDDEN = {"32": (32,), "128": (128,), "256x2": (256, 256)}
    N_SAMPLES = {"32": 2_048, "128": 2_048, "256x2": 512}
    DTYPES = ["float32", "float64"]

# The MNIST track fits only the small models, to stay short.
MNIST_HIDDEN = ["32", "128"]
MNIST_N_TRAIN, MNIST_N_TEST = 6_000, 2_000


def make_classification_sequences(n_samples, dtype="float32"):
    """Synthetic MNIST rows with random labels, for timings.

    Parameters
    ----------
    n_samples : int
        Number of sequences.
    dtype : {"float32", "float64"}, default="float32"
        Dtype of ``X``, which is the dtype ``fit`` trains in.

    Returns
    -------
    X : ndarray of shape (n_samples, 28, 28)
        Uniform in [0, 1); cached and shared, not to be modified.
    y : ndarray of shape (n_samples,)
        Labels in ``range(10)``, from a fixed seed.
    """
    X, _ = make_sequences(n_samples, N_STEPS, N_FEATURES, dtype)
    y = np.random.default_rng(1).integers(0, N_CLASSES, size=n_samples)
    return X, y


def make_regression_sequences(n_samples, dtype="float32"):
    """Synthetic MNIST rows with a random numeric target, for timings.

    Parameters
    ----------
    n_samples : int
        Number of sequences.
    dtype : {"float32", "float64"}, default="float32"
        Dtype of ``X`` and ``y``; ``fit`` trains in that of ``X``.

    Returns
    -------
    X : ndarray of shape (n_samples, 28, 28)
        The rows of :func:`make_classification_sequences`; cached and
        shared, not to be modified.
    y : ndarray of shape (n_samples,)
        Standard normal values, from a fixed seed.
    """
    X, _ = make_sequences(n_samples, N_STEPS, N_FEATURES, dtype)
    y = np.random.default_rng(1).standard_normal(n_samples).astype(dtype)
    return X, y


def load_digits_sequences(dtype="float32"):
    """scikit-learn's digits as sequences of 8 image rows of 8 pixels.

    Parameters
    ----------
    dtype : {"float32", "float64"}, default="float32"

    Returns
    -------
    X_train, X_test : ndarray of shape (n, 8, 8)
        Pixels scaled to [0, 1]; a stratified split, 75% / 25%, fixed seed.
    y_train, y_test : ndarray of shape (n,)
    """
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 8, 8).astype(dtype)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def load_mnist_subset():
    """The first 6,000 training and 2,000 test images of MNIST, or None.

    Reads the IDX files from ``SEQCLF_DATA`` (else ``~/seqclf_data``) and
    never downloads: benchmarks must not depend on the network.

    Returns
    -------
    data : tuple ``(X_train, X_test, y_train, y_test)`` or None
        ``X_*`` float32 of shape (n, 28, 28) in [0, 1]; None when the folder
        or one of its files is missing.
    """
    folder = os.environ.get("SEQCLF_DATA") or os.path.expanduser("~/seqclf_data")
    # Checked first because load_mnist creates a missing data folder.
    if not os.path.isdir(folder):
        return None
    try:
        (X_train, y_train), (X_test, y_test) = load_mnist(folder, download=False)
    except FileNotFoundError:
        return None
    return (X_train[:MNIST_N_TRAIN], X_test[:MNIST_N_TEST],
            y_train[:MNIST_N_TRAIN], y_test[:MNIST_N_TEST])


class EstimatorThreads:
    """Mixin holding seqclf's thread count from ``setup`` to ``teardown``.

    ``fit``, ``predict`` and ``predict_proba`` take their thread count from
    ``effective_n_threads()``, i.e. from the OpenMP runtime's maximum, which
    ``threadpool_limits(n, user_api="openmp")`` sets; asv times between
    ``setup`` and ``teardown``, so the limit is in force while timing.

    BLAS is held at one thread as well, as in the other benchmarks, with
    the limit ``fit``, ``predict`` and ``predict_proba`` take themselves
    (``single_threaded_blas``): nothing run between ``setup`` and
    ``teardown`` may wake a multithreaded OpenBLAS, whose worker threads
    would spin beside the kernels' threads and take a core from them (and
    make ``n_threads=1`` use two cores).
    """

    def set_threads(self, n_threads):
        """Limit OpenMP to ``n_threads`` and BLAS to one thread.

        Parameters
        ----------
        n_threads : int

        Raises
        ------
        NotImplementedError
            If ``effective_n_threads()`` differs from ``n_threads`` under the
            limit, so that asv skips the benchmark instead of timing another
            thread count under this one's name.
        """
        # The OpenMP count as users set it; BLAS through seqclf's limit.
        self._limits = threadpool_limits(limits=n_threads, user_api="openmp")
        try:
            self._blas_hold = single_threaded_blas().acquire()
        except BaseException:
            self.restore_threads()
            raise
        effective = effective_n_threads()
        if effective != n_threads:
            self.restore_threads()
            raise NotImplementedError(
                f"seqclf would use {effective} threads, not {n_threads}."
            )

    def restore_threads(self):
        """Lift the limits set by :meth:`set_threads`, if any."""
        hold = getattr(self, "_blas_hold", None)
        if hold is not None:
            hold.release()
            self._blas_hold = None
        limits = getattr(self, "_limits", None)
        if limits is not None:
            limits.restore_original_limits()
            self._limits = None

    def teardown(self, *args):
        self.restore_threads()


class EstimatorFit(EstimatorThreads, Benchmark):
    """One epoch of ``RNNClassifier(cell, hidden, batch_size=128, max_iter=1)``.

    On ``N_SAMPLES[hidden]`` synthetic MNIST rows; ``peakmem_fit`` includes
    the data and the imports, as every asv ``peakmem`` benchmark does.
    """

    param_names = ["cell", "hidden", "dtype", "n_threads"]
    params = (CELLS, list(HIDDEN), DTYPES, Benchmark.n_threads_vals)

    def setup(self, cell, hidden, dtype, n_threads):
        self.X, self.y = make_classification_sequences(N_SAMPLES[hidden], dtype)
        self.set_threads(n_threads)

    def _fit(self, cell, hidden):
        # A new estimator each time: every repeat trains from scratch.
        return RNNClassifier(cell, HIDDEN[hidden], batch_size=128, max_iter=1,
                             random_state=0).fit(self.X, self.y)

    def time_fit(self, cell, hidden, dtype, n_threads):
        self._fit(cell, hidden)

    def peakmem_fit(self, cell, hidden, dtype, n_threads):
        self._fit(cell, hidden)


class EstimatorPredict(EstimatorThreads, Benchmark):
    """``predict_proba`` on ``N_SAMPLES[hidden]`` synthetic MNIST rows.

    The models are fitted once, in ``setup_cache``, for one batch: the
    timing does not depend on the values of the weights.
    """

    param_names = ["cell", "hidden", "dtype", "n_threads"]
    params = (CELLS, list(HIDDEN), DTYPES, Benchmark.n_threads_vals)

    def setup_cache(self):
        X, y = make_classification_sequences(128)
        return {
            (cell, hidden, dtype): RNNClassifier(
                cell, sizes, batch_size=128, max_iter=1, random_state=0
            ).fit(X.astype(dtype), y)
            for cell in CELLS
            for hidden, sizes in HIDDEN.items()
            for dtype in DTYPES
        }

    def setup(self, models, cell, hidden, dtype, n_threads):
        self.estimator = models[cell, hidden, dtype]
        self.X, _ = make_classification_sequences(N_SAMPLES[hidden], dtype)
        self.set_threads(n_threads)

    def time_predict_proba(self, models, cell, hidden, dtype, n_threads):
        self.estimator.predict_proba(self.X)


class RegressorFit(EstimatorThreads, Benchmark):
    """One epoch of ``RNNRegressor(cell, hidden, batch_size=128, max_iter=1)``.

    As :class:`EstimatorFit`, on the same ``N_SAMPLES[hidden]`` rows with one
    numeric target; ``peakmem_fit`` includes the data and the imports.
    """

    param_names = ["cell", "hidden", "dtype", "n_threads"]
    params = (CELLS, list(HIDDEN), DTYPES, Benchmark.n_threads_vals)

    def setup(self, cell, hidden, dtype, n_threads):
        self.X, self.y = make_regression_sequences(N_SAMPLES[hidden], dtype)
        self.set_threads(n_threads)

    def _fit(self, cell, hidden):
        # A new estimator each time: every repeat trains from scratch.
        return RNNRegressor(cell, HIDDEN[hidden], batch_size=128, max_iter=1,
                            random_state=0).fit(self.X, self.y)

    def time_fit(self, cell, hidden, dtype, n_threads):
        self._fit(cell, hidden)

    def peakmem_fit(self, cell, hidden, dtype, n_threads):
        self._fit(cell, hidden)


class RegressorPredict(EstimatorThreads, Benchmark):
    """``RNNRegressor.predict`` on ``N_SAMPLES[hidden]`` synthetic MNIST rows.

    As :class:`EstimatorPredict`: the models are fitted once, in
    ``setup_cache``, for one batch.
    """

    param_names = ["cell", "hidden", "dtype", "n_threads"]
    params = (CELLS, list(HIDDEN), DTYPES, Benchmark.n_threads_vals)

    def setup_cache(self):
        X, y = make_regression_sequences(128)
        return {
            (cell, hidden, dtype): RNNRegressor(
                cell, sizes, batch_size=128, max_iter=1, random_state=0
            ).fit(X.astype(dtype), y.astype(dtype))
            for cell in CELLS
            for hidden, sizes in HIDDEN.items()
            for dtype in DTYPES
        }

    def setup(self, models, cell, hidden, dtype, n_threads):
        self.estimator = models[cell, hidden, dtype]
        self.X, _ = make_regression_sequences(N_SAMPLES[hidden], dtype)
        self.set_threads(n_threads)

    def time_predict(self, models, cell, hidden, dtype, n_threads):
        self.estimator.predict(self.X)


class EstimatorScore(Benchmark):
    """Test accuracy on scikit-learn's digits read row by row (8 x 8).

    10 epochs of Adam (batch 32, learning rate 0.003) on 1,347 images; the
    score is that of the 450 held-out ones. It does not depend on the thread
    count, which is therefore not a parameter.
    """

    param_names = ["cell", "hidden", "dtype"]
    params = (CELLS, list(HIDDEN), DTYPES)

    def setup_cache(self):
        models, data = {}, {}
        for dtype in DTYPES:
            X_train, X_test, y_train, y_test = load_digits_sequences(dtype)
            data[dtype] = X_test, y_test
            for cell in CELLS:
                for hidden, sizes in HIDDEN.items():
                    models[cell, hidden, dtype] = RNNClassifier(
                        cell, sizes, batch_size=32, learning_rate_init=0.003,
                        max_iter=10, random_state=0,
                    ).fit(X_train, y_train)
        return models, data

    def track_test_score(self, cache, cell, hidden, dtype):
        models, data = cache
        X_test, y_test = data[dtype]
        return float(models[cell, hidden, dtype].score(X_test, y_test))

    track_test_score.unit = "accuracy"


class EstimatorScoreMNIST(Benchmark):
    """Test accuracy on a subset of MNIST read row by row (28 x 28).

    2 epochs of Adam (batch 64, learning rate 0.003) on the first 6,000
    training images, scored on the first 2,000 test images. Skipped unless
    the MNIST IDX files are in ``SEQCLF_DATA`` (or ``~/seqclf_data``).
    """

    param_names = ["cell", "hidden"]
    params = (CELLS, MNIST_HIDDEN)

    def setup_cache(self):
        data = load_mnist_subset()
        if data is None:
            # Not None itself: asv would then call setup without the cache.
            return {}
        X_train, X_test, y_train, y_test = data
        models = {
            (cell, hidden): RNNClassifier(
                cell, HIDDEN[hidden], batch_size=64, learning_rate_init=0.003,
                max_iter=2, random_state=0,
            ).fit(X_train, y_train)
            for cell in CELLS
            for hidden in MNIST_HIDDEN
        }
        return {"models": models, "test": (X_test, y_test)}

    def setup(self, cache, cell, hidden):
        if not cache:
            raise NotImplementedError("MNIST files not found (set SEQCLF_DATA).")

    def track_test_score(self, cache, cell, hidden):
        X_test, y_test = cache["test"]
        return float(cache["models"][cell, hidden].score(X_test, y_test))

    track_test_score.unit = "accuracy"
