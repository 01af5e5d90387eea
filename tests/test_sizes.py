"""Size arithmetic of the kernels: no int overflow, early and clear errors.

Nothing here allocates more than a few hundred MB: the checks run on the
sizes alone, or in a child process whose address space is capped so that
the kernels' scratch allocation fails.
"""

import subprocess
import sys
import textwrap

import pytest

from seqclf import _kernels
from seqclf._cells import N_GATES

INT_MAX = 2**31 - 1
CELLS = {cell: _kernels.CELL_CODES[(cell, "tanh")] for cell in N_GATES}


def scratch(cell, *, backward=False, training=False, N=1, T=1, F=1, H=1,
            n_threads=1, itemsize=4):
    return _kernels._check_scratch(CELLS[cell], training or backward, backward,
                                   N, T, F, H, n_threads, itemsize)


@pytest.mark.parametrize("cell", CELLS)
def test_scratch_sizes_are_exact_beyond_int(cell):
    """Scratch sizes past 2**31 elements come out exactly, never wrapped."""
    C = _kernels.chunk_size()
    G = N_GATES[cell] * 64
    T = 2**26                       # C * T * G is far beyond 2**31
    got = scratch(cell, N=1000, T=T, F=3, H=64)
    assert got == C * G + 3 * C * 64 + 64 + C * T * G
    got = scratch(cell, backward=True, N=1000, T=T, F=3, H=64)
    expected = C * T * G + C * G + 3 * C * 64 + 2 * 64 + C * T * (3 + 64)
    if cell == "gru":
        expected += C * T * 64
    assert got == expected


def test_scratch_scales_with_the_batch_below_one_chunk():
    """One sequence gets scratch for one sequence, not for a whole chunk."""
    one = scratch("lstm", N=1, T=1000, F=2, H=8)
    two = scratch("lstm", N=2, T=1000, F=2, H=8)
    assert two == 2 * one - 8       # all but the (H,) block scale with rows
    assert scratch("lstm", N=10**6, T=1000, F=2, H=8) == \
        scratch("lstm", N=_kernels.chunk_size(), T=1000, F=2, H=8)


@pytest.mark.parametrize(
    "kwargs, what",
    [
        (dict(N=16, T=2**27), "sequences per chunk x n_steps"),
        (dict(N=1, T=2**31), "sequences per chunk x n_steps"),
        (dict(H=2**29), "gate columns"),
        (dict(F=INT_MAX, H=1), "n_features \\+ n_hidden"),
    ],
)
def test_blas_dimensions_beyond_int_are_refused(kwargs, what):
    with pytest.raises(ValueError, match=f"too large for BLAS: {what}"):
        scratch("lstm", **kwargs)
    with pytest.raises(ValueError, match="too large for BLAS"):
        scratch("lstm", backward=True, **kwargs)


def test_unaddressable_scratch_is_a_memory_error():
    with pytest.raises(MemoryError, match="bytes of scratch memory"):
        scratch("lstm", N=16, T=2**27 - 1, F=1, H=2**27, itemsize=8,
                n_threads=1)


def test_scratch_beyond_a_py_ssize_t_is_a_memory_error():
    """Regions each within BLAS's int whose sum passes 2**63 elements."""
    H = INT_MAX // 3                # G = 3H and F + H within an int
    with pytest.raises(MemoryError,
                       match=f"more than {sys.maxsize} bytes of scratch memory"):
        scratch("gru", backward=True, N=1, T=INT_MAX, F=INT_MAX - H, H=H)


def test_largest_int_dimension_is_accepted():
    # Exactly INT_MAX rows per chunk is still a valid BLAS dimension.
    scratch("rnn", N=1, T=INT_MAX)


CHILD = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    # Cap the address space so that the kernels' scratch cannot be had.
    cap = 3 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from seqclf import RNNClassifier, _layers

    T, H = 2**26, 16               # T * 4H = 2**32: past int offsets
    X = np.zeros((1, T, 1), dtype=np.float32)   # 256 MB
    W = np.zeros((1, 4 * H), np.float32)
    U = np.zeros((H, 4 * H), np.float32)
    b = np.zeros(4 * H, np.float32)
    try:
        _layers.forward("lstm", X, np.array([T]), {"W": W, "U": U, "b": b},
                        training=False, return_sequences=False)
    except MemoryError as exc:
        print("kernel:", exc)
    clf = RNNClassifier("lstm", H, max_iter=1, random_state=0)
    clf.fit(np.zeros((4, 3, 1), np.float32), [0, 1, 0, 1])
    try:
        clf.predict_proba(X)
    except MemoryError as exc:
        print("estimator:", exc)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS caps malloc on Linux")
def test_one_long_sequence_fails_cleanly_when_scratch_cannot_be_allocated():
    """One float32 sequence of 2**26 steps: a MemoryError naming the sizes.

    With int offsets the step offset (2**26 x 64 gate columns) wrapped; the
    kernel now asks for the scratch of one sequence (16 GiB here, refused
    under the cap) and says what it was for.
    """
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout
    for line in lines:
        assert "scratch memory" in line
        assert f"1 sequences of {2**26} steps (1 features, 16 units)" in line
        assert "16 GiB" in line, line
