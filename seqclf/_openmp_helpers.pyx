"""How many OpenMP threads seqclf's kernels may use.

The count is decided once per public call and passed to the kernels
explicitly; every ``prange`` takes it as ``num_threads``. It queries the
OpenMP runtime seqclf itself links, so ``OMP_NUM_THREADS`` and threadpoolctl
limits (which call ``omp_set_num_threads`` on every loaded runtime) apply.
"""

import numbers
import os

from ._openmp cimport SEQCLF_OPENMP_ENABLED, omp_get_max_threads

_N_CPUS = None


def openmp_enabled():
    """Return True if seqclf was compiled with OpenMP."""
    return bool(SEQCLF_OPENMP_ENABLED)


def _cgroup_cpu_quota():
    """CPUs allowed by a cgroup v2 quota (containers), or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return max(1, int(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return None


def _usable_cpus():
    global _N_CPUS
    if _N_CPUS is None:
        if hasattr(os, "sched_getaffinity"):
            n = len(os.sched_getaffinity(0))
        else:
            n = os.cpu_count() or 1
        quota = _cgroup_cpu_quota()
        _N_CPUS = min(n, quota) if quota else n
    return _N_CPUS


def effective_n_threads(n_threads=None):
    """Number of threads for one call of the kernels.

    Parameters
    ----------
    n_threads : int or None
        ``None`` uses the OpenMP maximum (which honours ``OMP_NUM_THREADS``
        and threadpoolctl limits), capped by the CPUs this process may use
        unless ``OMP_NUM_THREADS`` is set. A positive value is used as given;
        a negative value counts back from the maximum (-1 is all of them).

    Returns
    -------
    n : int
        At least 1; always 1 in a build without OpenMP.
    """
    if n_threads is not None and (
        isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
    ):
        raise TypeError(f"n_threads must be an int or None, got {n_threads!r}.")
    if n_threads == 0:
        raise ValueError("n_threads must not be 0.")
    if not SEQCLF_OPENMP_ENABLED:
        return 1
    max_n = omp_get_max_threads()
    if not os.environ.get("OMP_NUM_THREADS"):
        max_n = min(max_n, _usable_cpus())
    if n_threads is None:
        return max_n
    if n_threads < 0:
        return max(1, max_n + n_threads + 1)
    return n_threads
