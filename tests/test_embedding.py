"""The embedding kernels (seqclf._embedding, called through seqclf._layers).

The embedding front's gradients through the network are tested in
``test_network.py``, its lazy optimizer updates in ``test_optim.py`` and
the estimator on token ids in ``test_rnn_embedding.py``."""

import tracemalloc

import numpy as np
import pytest

from seqclf import reference
from seqclf._layers import embedding_backward, embedding_forward

from ._helpers import token_ids


@pytest.mark.memcheck
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_reference(dtype):
    ids, lengths = token_ids(37, 9, 11, seed=0)
    E = np.random.default_rng(1).normal(size=(11, 5)).astype(dtype)
    out = np.full((37, 9, 5), np.nan, dtype=dtype)
    embedding_forward(ids, lengths, E, out=out, n_threads=2)
    np.testing.assert_array_equal(out, reference.embedding_forward(ids, lengths, E))


@pytest.mark.memcheck
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("V", [3, 50])
def test_backward_matches_reference(dtype, V):
    # V=3: every id repeats dozens of times in the batch.
    ids, lengths = token_ids(40, 12, V, seed=2)
    dX = np.random.default_rng(3).normal(size=(40, 12, 6)).astype(dtype)
    dX[np.arange(12)[None, :] >= lengths[:, None]] = np.nan    # never read
    rows, grad = embedding_backward(ids, lengths, dX, V, n_threads=2)
    valid = np.arange(12)[None, :] < lengths[:, None]
    np.testing.assert_array_equal(rows, np.unique(ids[valid]))
    assert grad.shape == (rows.size, 6) and grad.dtype == dtype
    # The reference lists exactly the rows with a nonzero gradient.
    ref_rows, ref_grad = reference.embedding_backward(ids, lengths, dX, V)
    np.testing.assert_array_equal(rows, ref_rows)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad, ref_grad, rtol=rtol, atol=rtol)


@pytest.mark.memcheck
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_bit_identical_for_any_thread_count(dtype):
    ids, lengths = token_ids(64, 30, 20, seed=4)
    rng = np.random.default_rng(5)
    E = rng.normal(size=(20, 8)).astype(dtype)
    dX = rng.normal(size=(64, 30, 8)).astype(dtype)
    outs, grads = [], []
    for n in (1, 2, 3, 8):
        out = np.empty((64, 30, 8), dtype=dtype)
        embedding_forward(ids, lengths, E, out=out, n_threads=n)
        outs.append(out)
        grads.append(embedding_backward(ids, lengths, dX, 20, n_threads=n))
    for out, (rows, grad) in zip(outs[1:], grads[1:]):
        assert out.tobytes() == outs[0].tobytes()
        assert rows.tobytes() == grads[0][0].tobytes()
        assert grad.tobytes() == grads[0][1].tobytes()


def test_backward_memory_follows_the_batch_not_the_vocabulary():
    ids, lengths = token_ids(16, 10, 50, seed=6)
    dX = np.ones((16, 10, 32))
    peaks = []
    for n_rows in (50, 10_000_000):
        tracemalloc.start()
        rows, grad = embedding_backward(ids, lengths, dX, n_rows, n_threads=2)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # A dense (n_rows, 32) float64 gradient would be 2.5 GB.
    assert grad.shape[0] <= 50
    assert max(peaks) < 200_000
    assert abs(peaks[1] - peaks[0]) < 10_000


@pytest.mark.memcheck
def test_kernels_reject_ids_outside_the_rows():
    ids, lengths = token_ids(4, 5, 6, seed=7)
    ids[2, 0] = 6
    E = np.zeros((6, 3))
    with pytest.raises(ValueError, match=r"Token id 6 \(sample 2, step 0\).*\[0, 6\)"):
        embedding_forward(ids, lengths, E, out=np.empty((4, 5, 3)))
    with pytest.raises(ValueError, match=r"Token id 6 \(sample 2, step 0\)"):
        embedding_backward(ids, lengths, np.zeros((4, 5, 3)), 6)
    ids[2, 0] = -1
    with pytest.raises(ValueError, match=r"Token id -1 \(sample 2, step 0\)"):
        embedding_forward(ids, lengths, E, out=np.empty((4, 5, 3)))
    with pytest.raises(TypeError, match="intp"):
        embedding_forward(ids.astype(np.int32), lengths, E, out=np.empty((4, 5, 3)))
    with pytest.raises(ValueError, match="lengths must lie"):
        embedding_forward(ids, np.zeros(4, dtype=np.intp), E, out=np.empty((4, 5, 3)))
    with pytest.raises(TypeError, match="dtype"):
        embedding_forward(np.abs(ids), lengths, E, out=np.empty((4, 5, 3), np.float32))
