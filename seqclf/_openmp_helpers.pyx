"""Threads: the one place that decides seqclf's thread counts and BLAS limits.

Whatever picks the number of OpenMP threads of seqclf's kernels, or limits
BLAS to one thread around them (the estimator, the tests, the benchmarks),
does it through this module:

* :func:`effective_n_threads` gives the OpenMP thread count, decided once
  per public call and passed to the kernels explicitly; it is the most
  threads any ``prange`` uses: each takes as ``num_threads`` at most as
  many as it has independent work items (``region_threads`` of
  ``_openmp.pxd``). It queries the OpenMP runtime seqclf itself
  links, so ``OMP_NUM_THREADS`` and threadpoolctl limits (which call
  ``omp_set_num_threads`` on every loaded runtime) apply.
* :func:`single_threaded_blas` limits BLAS to one thread: the kernels call
  BLAS from their own OpenMP threads, so BLAS must run on one thread while
  they do. It holds the limit for the whole process while any seqclf call
  runs, from any number of Python threads, and gives the previous limits
  back when the last one returns. It is a context manager and a decorator,
  and its ``acquire()`` takes the limit until a later ``release()``, for
  code that cannot keep a ``with`` block open (asv's ``setup`` and
  ``teardown``, a worker process's lifetime).

Limits that are not seqclf's to decide are set with threadpoolctl where
they are chosen: a user's or a script's OpenMP thread count for a whole
run (``threadpool_limits(n, user_api="openmp")``, which
:func:`effective_n_threads` then reads), and the thread counts of the
libraries seqclf is compared with.
"""

import functools
import numbers
import os
import threading
import warnings

from cpython.pythread cimport (
    NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock, PyThread_allocate_lock,
    PyThread_get_thread_ident, PyThread_release_lock, PyThread_type_lock,
)
from libc.limits cimport INT_MAX
from threadpoolctl import ThreadpoolController

from ._openmp cimport SEQCLF_OPENMP_ENABLED, omp_get_max_threads

cdef extern from *:
    """
    /* GCC's -fopenmp always links GNU libgomp, whose thread pool does not
       survive fork(); LLVM's and Intel's runtimes rebuild theirs. */
    #if defined(_OPENMP) && defined(__GNUC__) && !defined(__clang__) \
        && !defined(__INTEL_COMPILER)
    #define SEQCLF_LIBGOMP 1
    #else
    #define SEQCLF_LIBGOMP 0
    #endif
    """
    bint SEQCLF_LIBGOMP

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


# ---------------------------------------------------------------------------
# OpenMP after fork
# ---------------------------------------------------------------------------

class _ThreadState(threading.local):
    # libgomp keeps one pool of worker threads per thread that starts
    # parallel regions; a forked child has the forking thread's pool without
    # its workers, and its next region of more than one thread waits for
    # them for ever. A region of one thread does not use the pool.
    ran_parallel = False    # this thread ran the kernels on several threads
    pool_lost = False       # ... and this process was forked from it since


_thread_state = _ThreadState()
_fork_warned = False
_LIBGOMP = bool(SEQCLF_LIBGOMP)

_FORK_MESSAGE = (
    "This process was forked from a thread that had run seqclf on several "
    "OpenMP threads; GNU OpenMP (libgomp) cannot start threads again in such "
    "a child (a parallel region would hang), so seqclf runs on 1 thread "
    "instead of {n} in this thread of the child. For several threads in "
    "child processes, start them "
    "with multiprocessing's 'spawn' or 'forkserver' method or joblib's "
    "default 'loky' backend instead of 'fork', or set OMP_NUM_THREADS=1 in "
    "the parent."
)


def _warn_pool_lost(n):
    global _fork_warned
    if not _fork_warned:
        _fork_warned = True
        warnings.warn(_FORK_MESSAGE.format(n=n), RuntimeWarning)


def effective_n_threads(n_threads=None):
    """Number of threads for one call of the kernels.

    Parameters
    ----------
    n_threads : int or None
        ``None`` uses the OpenMP maximum (which honours ``OMP_NUM_THREADS``
        and threadpoolctl limits), capped by the CPUs this process may use
        unless ``OMP_NUM_THREADS`` is set. A positive value is used as given;
        a negative value counts back from the maximum (-1 is all of them).
        Every parallel region starts at most as many threads as it has
        independent work items, so this is the most threads any region
        uses, not a count that is always started.

    Returns
    -------
    n : int
        At least 1 and at most ``INT_MAX`` (what OpenMP takes: a larger
        count is an upper bound no region reaches); always 1 in a build
        without OpenMP, and 1 (with a
        one-time ``RuntimeWarning``) in a process forked from a thread that
        had run the kernels on several threads under GNU OpenMP, where
        several threads would hang.
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
        n = max_n
    elif n_threads < 0:
        n = max(1, max_n + n_threads + 1)
    else:
        n = min(int(n_threads), INT_MAX)
    if SEQCLF_LIBGOMP and n > 1:
        state = _thread_state
        if state.pool_lost:
            _warn_pool_lost(n)
            return 1
        if not state.ran_parallel:
            state.ran_parallel = True
    return n


# ---------------------------------------------------------------------------
# BLAS limited to one thread while any seqclf call runs
# ---------------------------------------------------------------------------

# One use count for the whole process: the first call in records the BLAS
# limits and sets 1, the last one out restores them, so that no interleaving
# of calls from several Python threads leaves a limit behind. The lock is
# held only around the count and the limit changes, never during a call.
cdef PyThread_type_lock _blas_lock = PyThread_allocate_lock()
cdef Py_ssize_t _n_inside = 0   # calls inside, all threads together
cdef list _saved = None         # [(library, clear, limit)] found by the first
cdef dict _per_thread = {}      # thread id -> [depth, saved per-thread limits]
cdef tuple _libraries = None    # (process-wide, per-thread) BLAS libraries


cdef inline void _lock() noexcept:
    # Without the GIL while waiting: the holder may need it to finish. Not
    # interruptible by signals, so that a Ctrl-C cannot skip the count.
    if not PyThread_acquire_lock(_blas_lock, NOWAIT_LOCK):
        with nogil:
            PyThread_acquire_lock(_blas_lock, WAIT_LOCK)


cdef tuple _blas_libraries():
    global _libraries
    if _libraries is None:
        # Only the BLAS libraries, found once: threadpoolctl's limit() reads
        # every library it holds, which costs as much as a short predict.
        shared, local = [], []
        for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
            if (lib.internal_api == "openblas"
                    and getattr(lib, "threading_layer", None) == "openmp"):
                # Its limit is omp_set_num_threads: per calling thread.
                local.append((lib, None))
            else:
                # threadpoolctl >= 3.8 lets one "controlling" thread at a
                # time set OpenBLAS's process-wide pool; the first call in
                # and the last out may be different threads, so each change
                # is made with the control released before and after.
                shared.append((lib, getattr(lib, "clear_controlling_thread", None)))
        _libraries = (shared, local)
    return _libraries


cdef _set_limit(lib, clear, int n):
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(n)
    if clear is not None:
        clear(force=True)


cdef list _limit(list libraries):
    """Set each library to 1 thread; return what to restore."""
    cdef list saved = []
    try:
        for lib, clear in libraries:
            n = lib.get_num_threads()
            if n is not None and n != 1:
                saved.append((lib, clear, n))
                _set_limit(lib, clear, 1)
    except BaseException:
        _restore(saved)
        raise
    return saved


cdef _restore(list saved):
    """Give each library its limit back, all of them even if one raises."""
    error = None
    if saved:
        for lib, clear, n in saved:
            try:
                _set_limit(lib, clear, n)
            except BaseException as exc:
                error = exc if error is None else error
    if error is not None:
        raise error


cdef _blas_enter():
    global _n_inside, _saved
    _lock()
    try:
        shared, local = _blas_libraries()
        ident = PyThread_get_thread_ident()
        entry = _per_thread.get(ident)
        if entry is None:
            entry = [0, None]
            if local:
                entry[1] = _limit(local)
        if _n_inside == 0:
            try:
                _saved = _limit(shared)
            except BaseException:
                if entry[0] == 0:
                    _restore(entry[1])
                raise
        entry[0] += 1
        _per_thread[ident] = entry
        _n_inside += 1
    finally:
        PyThread_release_lock(_blas_lock)


cdef _blas_exit():
    global _n_inside, _saved
    cdef list saved = None
    cdef list saved_here = None
    _lock()
    try:
        # Counts first, so that a failing restore leaves them right.
        ident = PyThread_get_thread_ident()
        entry = _per_thread[ident]
        entry[0] -= 1
        if entry[0] == 0:
            del _per_thread[ident]
            saved_here = entry[1]
        _n_inside -= 1
        if _n_inside == 0:
            saved, _saved = _saved, None
        try:
            _restore(saved_here)
        finally:
            _restore(saved)
    finally:
        PyThread_release_lock(_blas_lock)


cdef class _BlasHold:
    """One hold on the one-thread BLAS limit, taken by ``acquire()``."""

    cdef unsigned long _thread
    cdef bint _held

    @property
    def held(self):
        """Whether the hold still keeps the limit (not yet released)."""
        return bool(self._held)

    def release(self):
        """Give the hold back; a second call does nothing.

        Raises
        ------
        RuntimeError
            If called from a thread other than the one that acquired it:
            the limits of per-thread BLAS libraries (OpenBLAS built on
            OpenMP) belong to that thread. The hold is then still taken.
        """
        if not self._held:
            return
        if PyThread_get_thread_ident() != self._thread:
            raise RuntimeError(
                "single_threaded_blas hold released from another thread than "
                "the one that acquired it."
            )
        self._held = False      # first: a failing restore still releases it
        _blas_exit()


cdef class _SingleThreadedBlas:
    """Context manager and decorator: BLAS on one thread (see the function)."""

    def acquire(self):
        """Take the limit until the returned hold's ``release()``.

        The same limit as ``with single_threaded_blas():``, for code that
        cannot keep a ``with`` block open across the calls it covers (asv's
        ``setup`` and ``teardown``, a worker's lifetime). Release it from the
        thread that acquired it; a hold never released keeps the limit until
        the process exits.

        Returns
        -------
        hold : object
            With ``release()`` (idempotent) and ``held``.
        """
        cdef _BlasHold hold = _BlasHold.__new__(_BlasHold)
        hold._thread = PyThread_get_thread_ident()
        _blas_enter()
        hold._held = True
        return hold

    def __enter__(self):
        _blas_enter()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        _blas_exit()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def limited(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return limited


cdef _SingleThreadedBlas _single_threaded_blas = _SingleThreadedBlas()


def single_threaded_blas():
    """Limit BLAS to one thread while seqclf's kernels run.

    The kernels call BLAS from their own OpenMP threads, each on small
    matrices. The first call in (from any Python thread) records the BLAS
    libraries' current limits and sets 1 thread, the last call out restores
    them, so that calls from several Python threads at once, nested calls
    and calls that raise leave the limits as they found them. While one call
    runs, BLAS is on one thread for the whole process. Limits changed from
    another thread while seqclf calls run are overwritten by the restore.

    Returns
    -------
    limiter : context manager
        Use as ``with single_threaded_blas():`` or as a decorator,
        ``@single_threaded_blas()``; reentrant and shared by all threads.
        ``single_threaded_blas().acquire()`` takes the same limit until the
        returned hold's ``release()``.
    """
    return _single_threaded_blas


# ---------------------------------------------------------------------------
# fork
# ---------------------------------------------------------------------------

def _before_fork():
    # The child then starts with the count and the limits consistent.
    _lock()


def _after_fork_in_parent():
    PyThread_release_lock(_blas_lock)


def _after_fork_in_child():
    global _n_inside, _saved, _fork_warned
    # Only the forking thread exists here: the calls of the parent's other
    # threads are not running, so their limit goes.
    ident = PyThread_get_thread_ident()
    entry = _per_thread.get(ident)
    _per_thread.clear()
    if entry is not None:
        _per_thread[ident] = entry
    _n_inside = entry[0] if entry is not None else 0
    saved = None
    if _n_inside == 0:
        saved, _saved = _saved, None
    PyThread_release_lock(_blas_lock)
    _fork_warned = False
    if _thread_state.ran_parallel:
        _thread_state.pool_lost = True
    _restore(saved)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork,
                        after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
