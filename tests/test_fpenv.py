"""Flush-to-zero / denormals-are-zero inside the kernels, and only there."""

import threading

import numpy as np
import pytest

from seqclf import RNNClassifier, _kernels_testing, reference
from seqclf._cells import param_shapes

from ._helpers import run_inference, run_kernels

BITS = _kernels_testing.flush_mode_bits()
needs_modes = pytest.mark.skipif(
    BITS == 0, reason="no flush-to-zero control on this platform"
)


def _data(n=40, T=6, F=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, F)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return X, y


def _fit_predict(n_threads):
    X, y = _data()
    clf = RNNClassifier("gru", 5, max_iter=2, batch_size=20, random_state=0)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(n_threads, user_api="openmp"):
        clf.fit(X, y)
        return clf.predict_proba(X)


@needs_modes
def test_modes_are_off_by_default_and_restored_after_fit_and_predict():
    assert _kernels_testing.fp_flush_modes() == 0
    _fit_predict(2)
    assert _kernels_testing.fp_flush_modes() == 0
    # The OpenMP pool's threads are restored too, not only the caller.
    assert _kernels_testing.fp_flush_modes_of_threads(2) == [0, 0]


@needs_modes
def test_modes_restored_in_python_worker_threads():
    seen = []

    def work():
        before = _kernels_testing.fp_flush_modes()
        _fit_predict(2)
        seen.append((before, _kernels_testing.fp_flush_modes()))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [(0, 0)] * 3
    assert _kernels_testing.fp_flush_modes() == 0


@needs_modes
def test_caller_flush_modes_are_kept():
    torch = pytest.importorskip("torch", reason="torch sets the caller's modes here")
    torch.set_flush_denormal(True)
    try:
        modes = _kernels_testing.fp_flush_modes()
        if modes == 0:
            pytest.skip("torch could not set flush-to-zero on this CPU")
        _fit_predict(2)
        assert _kernels_testing.fp_flush_modes() == modes
    finally:
        torch.set_flush_denormal(False)
    assert _kernels_testing.fp_flush_modes() == 0


@needs_modes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_subnormal_results_are_flushed(dtype, n_threads):
    """x W below the smallest normal number comes out as zero."""
    tiny = np.finfo(dtype).tiny
    N, T, F, H = 20, 3, 2, 4
    # x * w = tiny / 4: a subnormal product of two normal numbers.
    X = np.full((N, T, F), np.sqrt(tiny), dtype=dtype)
    params = {
        "W": np.full((F, H), np.sqrt(tiny) / 8, dtype=dtype),
        "U": np.zeros((H, H), dtype=dtype),
        "b": np.zeros(H, dtype=dtype),
    }
    lengths = np.full(N, T)
    ref_last, _, _ = reference.forward("rnn", X, lengths, params, activation="relu")
    assert np.all((ref_last > 0) & (ref_last < tiny))   # NumPy keeps subnormals
    h_last, h_seq, _, _ = run_kernels("rnn", X, lengths, params, activation="relu",
                                      dh_last=np.ones((N, H), dtype),
                                      n_threads=n_threads, backward=False)
    np.testing.assert_array_equal(h_last, 0)
    np.testing.assert_array_equal(h_seq, 0)
    h_last, _ = run_inference("rnn", X, lengths, params, activation="relu",
                              n_threads=n_threads)
    np.testing.assert_array_equal(h_last, 0)


@needs_modes
def test_subnormal_inputs_count_as_zero():
    """Denormals-are-zero: a subnormal in X acts as 0 (the gradient too)."""
    dtype = np.float32
    tiny = np.finfo(dtype).tiny
    rng = np.random.default_rng(1)
    N, T, F, H = 17, 4, 3, 5
    params = {k: rng.standard_normal(s).astype(dtype)
              for k, s in param_shapes("lstm", F, H).items()}
    X = rng.standard_normal((N, T, F)).astype(dtype)
    X[:, :, 0] = tiny / 2
    X0 = X.copy()
    X0[:, :, 0] = 0
    lengths = rng.integers(1, T + 1, N)
    dh = rng.standard_normal((N, H)).astype(dtype)
    a = run_kernels("lstm", X, lengths, params, dh_last=dh)
    b = run_kernels("lstm", X0, lengths, params, dh_last=dh)
    np.testing.assert_array_equal(a[0], b[0])
    for k in params:
        np.testing.assert_array_equal(a[2][k], b[2][k])
