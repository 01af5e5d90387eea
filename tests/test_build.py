"""The build: OpenMP compiled in, and the thread-count rules."""

import os

import pytest
from threadpoolctl import threadpool_limits

from seqclf._openmp_helpers import effective_n_threads, openmp_enabled


@pytest.mark.skipif(
    os.environ.get("SEQCLF_SKIP_OPENMP_TEST", "0") not in ("", "0"),
    reason="SEQCLF_SKIP_OPENMP_TEST is set: a serial build is expected",
)
def test_openmp_parallelism_enabled():
    assert openmp_enabled(), (
        "seqclf was built without OpenMP. If that is deliberate "
        "(SEQCLF_NO_OPENMP=1), set SEQCLF_SKIP_OPENMP_TEST=1."
    )


def test_effective_n_threads_rules():
    n_max = effective_n_threads()
    assert n_max >= 1
    assert effective_n_threads(-1) == n_max
    assert effective_n_threads(-n_max - 5) == 1
    assert effective_n_threads(3) == (3 if openmp_enabled() else 1)


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_effective_n_threads_rejects(bad):
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        effective_n_threads(bad)


@pytest.mark.skipif(not openmp_enabled(), reason="serial build")
def test_effective_n_threads_honours_threadpoolctl():
    with threadpool_limits(limits=1, user_api="openmp"):
        assert effective_n_threads() == 1
