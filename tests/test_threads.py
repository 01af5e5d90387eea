"""Calls from several Python threads at once, and the BLAS limit they share.

The kernels call BLAS from their own OpenMP threads, so every fit and predict
limits BLAS to one thread for the whole process while it runs. These tests
check that calls running at once from many Python threads give the results
of the same calls made one at a time, that BLAS stays on one thread while
any of them runs, and that the limit found before is back afterwards, also
when the user had set one and when a call raises.
"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from seqclf import RNNClassifier
from seqclf._openmp_helpers import single_threaded_blas

N_THREADS = 8


def blas_threads():
    """``{library path: thread limit}`` of the loaded BLAS libraries."""
    return {lib["filepath"]: lib["num_threads"]
            for lib in threadpool_info() if lib["user_api"] == "blas"}


def task(n=48, n_steps=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_steps, 2))
    return X, (X[:, 0, 0] > 0).astype(int)


def small(cell="gru", **kw):
    return RNNClassifier(cell, (4,), max_iter=2, batch_size=16, random_state=0,
                         **kw)


class GatedArray:
    """An array-like whose conversion waits for ``release``.

    Handed to ``fit``, it holds the calling thread inside the fit (whose BLAS
    limit is taken before the input is read) for as long as the test needs,
    so that calls from several threads can be interleaved in a chosen order.
    """

    def __init__(self, X):
        self.X = X
        self.entered = threading.Event()
        self.release = threading.Event()

    def __array__(self, dtype=None, copy=None):
        self.entered.set()
        assert self.release.wait(timeout=30), "never released"
        return self.X if dtype is None else self.X.astype(dtype)


class HeldFit:
    """A fit running in its own thread, held inside until :meth:`finish`."""

    def __init__(self, X, y, **kw):
        self.X = GatedArray(X)
        self.clf = small(**kw)
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(y,))
        self.thread.start()
        assert self.X.entered.wait(timeout=30), "the fit never read its input"

    def _run(self, y):
        try:
            self.clf.fit(self.X, y)
        except BaseException as exc:  # re-raised by finish()
            self.error = exc

    def finish(self):
        self.X.release.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        return self.clf


@pytest.fixture(params=[None, 3], ids=["default-limit", "user-limit-3"])
def blas_before(request):
    """The BLAS limits the calls start from: as found, or set by the user."""
    if request.param is None:
        yield blas_threads()
    else:
        with threadpool_limits(limits=request.param, user_api="blas"):
            yield blas_threads()


@pytest.fixture
def frequent_switches():
    """Let Python threads take turns every few microseconds, not every 5 ms,
    so that their calls interleave in many orders within a short test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_blas_held_while_any_call_runs_and_restored_after(blas_before):
    # A enters, B enters, A leaves while B still runs, then B leaves: the
    # order in which a limit taken and restored by each call separately is
    # restored while B's kernels run, and B then restores A's limit of 1.
    X, y = task()
    a = HeldFit(X, y)
    assert set(blas_threads().values()) == {1}
    b = HeldFit(X, y)
    a.finish()
    assert set(blas_threads().values()) == {1}, "limit lifted while a fit runs"
    b.finish()
    assert a.error is None and b.error is None
    assert blas_threads() == blas_before
    np.testing.assert_array_equal(a.clf.predict_proba(X), b.clf.predict_proba(X))


def test_concurrent_calls_give_sequential_results(blas_before, frequent_switches):
    X, y = task()
    models = [small(cell).fit(X, y) for cell in ("rnn", "gru", "lstm")]
    inputs = [X[i:i + 1 + i % 5] for i in range(8)]
    expected_proba = [[m.predict_proba(x) for x in inputs] for m in models]
    expected_fit = small("lstm").fit(X, y).predict_proba(X)
    start = threading.Barrier(N_THREADS)

    def work(k):
        start.wait()
        if k % 4 == 3:
            return small("lstm").fit(X, y).predict_proba(X)
        return [[m.predict_proba(x) for x in inputs] for m in models]

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(work, range(N_THREADS)))
    for k, got in enumerate(results):
        if k % 4 == 3:
            np.testing.assert_array_equal(got, expected_fit)
        else:
            for got_m, exp_m in zip(got, expected_proba):
                for g, e in zip(got_m, exp_m):
                    np.testing.assert_array_equal(g, e)
    assert blas_threads() == blas_before


def test_a_call_that_raises_restores_the_limit(blas_before):
    X, y = task()
    with pytest.raises(ValueError, match="only one class"):
        small().fit(X, np.zeros(len(X), dtype=int))
    assert blas_threads() == blas_before
    # Also while another call runs, and when that one raises last.
    held = HeldFit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="only one class"):
        small().fit(X, np.zeros(len(X), dtype=int))
    assert set(blas_threads().values()) == {1}
    held.finish()
    assert isinstance(held.error, ValueError)
    assert blas_threads() == blas_before


def test_helper_is_reentrant_and_works_as_decorator(blas_before):
    @single_threaded_blas()
    def inner(fail):
        assert set(blas_threads().values()) == {1}
        if fail:
            raise RuntimeError("inside")
        return "done"

    with single_threaded_blas():
        with single_threaded_blas():
            assert inner(False) == "done"
        assert set(blas_threads().values()) == {1}
        with pytest.raises(RuntimeError, match="inside"):
            inner(True)
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == blas_before
    assert inner.__name__ == "inner"


def test_many_threads_entering_and_leaving_the_helper(blas_before,
                                                    frequent_switches):
    # Enter and leave in every interleaving the scheduler makes, nested too.
    start = threading.Barrier(N_THREADS)

    def work(k):
        start.wait()
        for i in range(1000):
            with single_threaded_blas():
                if (i + k) % 3 == 0:
                    with single_threaded_blas():
                        pass

    with ThreadPoolExecutor(N_THREADS) as pool:
        list(pool.map(work, range(N_THREADS)))
    assert blas_threads() == blas_before

