"""Calls from several Python threads at once, and the BLAS limit they share.

The kernels call BLAS from their own OpenMP threads, so every fit and predict
limits BLAS to one thread for the whole process while it runs. These tests
check that calls running at once from many Python threads give the results
of the same calls made one at a time, that BLAS stays on one thread while
any of them runs, and that the limit found before is back afterwards, also
when the user had set one and when a call raises.
"""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from seqclf import RNNClassifier, RNNRegressor
from seqclf._openmp_helpers import _LIBGOMP, openmp_enabled, single_threaded_blas

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


def test_helper_hold_spans_calls_like_asv_setup_and_teardown(blas_before):
    # acquire() in one call, release() in a later one: the same limit as the
    # context, nested with it and with the estimator's own in either order.
    hold = single_threaded_blas().acquire()
    assert hold.held and set(blas_threads().values()) == {1}
    with single_threaded_blas():
        inner = single_threaded_blas().acquire()
    assert set(blas_threads().values()) == {1}
    X, y = task()
    small().fit(X, y)
    assert set(blas_threads().values()) == {1}, "the fit lifted the hold"
    hold.release()
    assert not hold.held and set(blas_threads().values()) == {1}
    inner.release()
    assert blas_threads() == blas_before
    inner.release()                     # a second release does nothing
    hold.release()
    assert blas_threads() == blas_before


def test_helper_hold_is_released_only_by_its_thread(blas_before):
    hold = single_threaded_blas().acquire()
    errors = []

    def release_elsewhere():
        try:
            hold.release()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=release_elsewhere)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "another thread" in str(errors[0])
    assert hold.held and set(blas_threads().values()) == {1}
    hold.release()
    assert blas_threads() == blas_before


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


# ---------------------------------------------------------------------------
# The n_threads parameter
# ---------------------------------------------------------------------------

def expected_threads(n):
    """What an explicit ``n_threads=n`` comes to in this build."""
    return n if openmp_enabled() else 1


@pytest.mark.parametrize("Estimator", [RNNClassifier, RNNRegressor])
def test_n_threads_one_and_two_give_the_same_model(Estimator):
    X, labels = task(n=96)
    y = labels if Estimator is RNNClassifier else X[:, :, 0].mean(axis=1)
    models = [Estimator("lstm", (6,), max_iter=2, batch_size=16,
                        random_state=0, n_threads=n).fit(X, y)
              for n in (1, 2)]
    assert [m.n_threads_ for m in models] == [expected_threads(1),
                                              expected_threads(2)]
    one, two = models
    np.testing.assert_array_equal(one._network.coefs, two._network.coefs)
    assert one.loss_curve_ == two.loss_curve_
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
    # The same model predicting on another thread count.
    before = one.predict(X)
    np.testing.assert_array_equal(one.set_params(n_threads=2).predict(X), before)


def test_n_threads_overrides_the_openmp_limit():
    X, y = task()
    with threadpool_limits(1, user_api="openmp"):
        assert small().fit(X, y).n_threads_ == 1
        clf = small(n_threads=2).fit(X, y)
        assert clf.n_threads_ == expected_threads(2)
        # Recorded again by each training call, here partial_fit.
        assert clf.set_params(n_threads=1).partial_fit(X, y).n_threads_ == 1
        clf.set_params(n_threads=None).partial_fit(X, y)
        assert clf.n_threads_ == 1


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError),
                                        (1.5, ValueError), ("2", ValueError),
                                        (True, TypeError)])
def test_n_threads_rejects(bad, error):
    X, y = task()
    with pytest.raises(error, match="n_threads"):
        small(n_threads=bad).fit(X, y)
    clf = small().fit(X, y)
    # Set after fit: predict checks it too.
    clf.set_params(n_threads=bad)
    with pytest.raises((TypeError, ValueError), match="n_threads"):
        clf.predict(X)


# ---------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------

# Run in a fresh interpreter with OMP_NUM_THREADS=2, so that the parent's
# fits use two OpenMP threads whatever the CPUs, and under a timeout, so that
# a child that hangs fails the test instead of hanging the suite.
CHILD_SCRIPT = r'''
import json
import multiprocessing as mp
import sys
import threading
import warnings

import numpy as np
from threadpoolctl import threadpool_info

from seqclf import RNNClassifier
from seqclf._openmp_helpers import effective_n_threads, single_threaded_blas


def blas_threads():
    return sorted(lib["num_threads"] for lib in threadpool_info()
                  if lib["user_api"] == "blas")


def fit_predict(_=None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 6, 2))
    y = (X[:, 0, 0] > 0).astype(int)
    clf = RNNClassifier("gru", (4,), max_iter=2, batch_size=16, random_state=0)
    return clf.fit(X, y).predict_proba(X).tolist()


def in_child(queue):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n_threads = effective_n_threads()
        results = [fit_predict(), fit_predict()]
    queue.put({"n_threads": n_threads, "same": results[0] == results[1],
               "proba": results[0], "blas": blas_threads(),
               "warnings": [str(w.message) for w in caught
                            if issubclass(w.category, RuntimeWarning)]})


def run_child(method):
    ctx = mp.get_context(method)
    queue = ctx.Queue()
    child = ctx.Process(target=in_child, args=(queue,))
    child.start()
    out = queue.get()
    child.join()
    return out


def in_thread(func, *args):
    out = []
    thread = threading.Thread(target=lambda: out.append(func(*args)))
    thread.start()
    thread.join()
    return out[0]


if __name__ == "__main__":
    report = {"blas": blas_threads(), "steps": []}
    for step in sys.argv[1:]:
        if step == "fit":              # two OpenMP threads, this thread
            out = {"proba": fit_predict(), "n_threads": effective_n_threads()}
        elif step == "fit-in-thread":  # two OpenMP threads, another thread
            out = in_thread(lambda: {"proba": fit_predict(),
                                     "n_threads": effective_n_threads()})
        elif step == "fork-while-limited":
            inside, release = threading.Event(), threading.Event()

            def hold():
                with single_threaded_blas():
                    inside.set()
                    release.wait()

            holder = threading.Thread(target=hold)
            holder.start()
            inside.wait()
            out = run_child("fork")
            release.set()
            holder.join()
        elif step.startswith("joblib-"):
            from joblib import Parallel, delayed
            backend = step[len("joblib-"):]
            out = Parallel(n_jobs=2, backend=backend)(
                delayed(fit_predict)(i) for i in range(2))
        else:                          # a start method of multiprocessing
            out = run_child(step)
        report["steps"].append(out)
        print(step, "done", file=sys.stderr, flush=True)
    report["blas_after"] = blas_threads()
    print(json.dumps(report))
'''


def run_script(tmp_path, *steps, timeout=180):
    script = tmp_path / "children.py"
    script.write_text(CHILD_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    # A session of its own, so that a hung child is killed with the script.
    proc = subprocess.Popen([sys.executable, str(script), *steps], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"a child process hung (no result in {timeout} s); "
                    f"steps done: {stderr!r}")
    assert proc.returncode == 0, stderr
    return json.loads(stdout.splitlines()[-1])


needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(),
    reason="the fork start method is not available on this platform")
needs_openmp = pytest.mark.skipif(
    not openmp_enabled(),
    reason="serial build: no OpenMP threads in the parent to lose in a child")


@pytest.mark.slow
@needs_fork
@needs_openmp
def test_forked_children_after_multithreaded_fits(tmp_path):
    steps = ["fit-in-thread", "fork", "fit", "fork", "joblib-multiprocessing",
             "fork-while-limited"]
    report = run_script(tmp_path, *steps)
    parent = report["blas"]
    in_thread, after_thread, fit, after_fit, pool, while_limited = report["steps"]
    assert in_thread["n_threads"] == fit["n_threads"] == 2
    assert in_thread["proba"] == fit["proba"]

    # libgomp keeps one thread pool per thread that starts parallel regions:
    # a child forked from another thread keeps its OpenMP threads.
    assert after_thread["n_threads"] == 2 and after_thread["warnings"] == []
    assert after_thread["proba"] == fit["proba"]

    # Forked from the thread that fitted on 2 threads: the same model, twice.
    assert after_fit["proba"] == fit["proba"] and after_fit["same"]
    assert pool == [fit["proba"]] * 2
    if _LIBGOMP:
        # One thread in the child, said once, with the ways out.
        assert after_fit["n_threads"] == 1
        (message,) = after_fit["warnings"]
        for way_out in ("spawn", "forkserver", "loky", "OMP_NUM_THREADS=1"):
            assert way_out in message
    else:
        assert after_fit["n_threads"] == 2 and after_fit["warnings"] == []

    # Forked while another thread was inside a call: no call runs in the
    # child, so its BLAS limits are the parent's before the call.
    assert after_thread["blas"] == after_fit["blas"] == parent
    assert while_limited["blas"] == parent
    assert report["blas_after"] == parent


@pytest.mark.slow
@needs_openmp
def test_other_start_methods_after_a_multithreaded_fit(tmp_path):
    methods = [m for m in ("spawn", "forkserver")
               if m in multiprocessing.get_all_start_methods()]
    report = run_script(tmp_path, "fit", "joblib-loky", *methods)
    fit, loky, *children = report["steps"]
    assert loky == [fit["proba"]] * 2
    for method, child in zip(methods, children):
        assert child["proba"] == fit["proba"], method
        assert child["n_threads"] == 2 and child["warnings"] == [], method
