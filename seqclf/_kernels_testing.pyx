"""Entry points into the recurrent kernels for tests and benchmarks only.

Not part of seqclf's interface and never used by the library: the test
suite (which also runs against installed wheels, so this module ships) and
the scripts of benchmarks/ reach the kernels' gate math, per-step products
and floating-point modes here, so that seqclf._kernels holds what the
library runs.
"""

from cython cimport floating
from cython.parallel cimport prange

import numpy as np

from . import _kernels, _simd

from ._activations cimport seqclf_simd_select, sigmoid_, tanh_
from ._fpenv cimport FPENV_BITS, fpenv_enter, fpenv_get, fpenv_leave
from ._kernels cimport run_step_product, select_step_products

# This module's copy of the gate math (_vmath.h) runs the kernels' level,
# SEQCLF_SIMD's included.
if seqclf_simd_select(_simd.LEVELS.index(_kernels.simd_level())) != 0:
    raise RuntimeError(f"gate-math level {_kernels.simd_level()!r} is not usable")


def use_own_step_products(bint own):
    """Turn seqclf's per-step micro-kernels on (where there are some) or off.

    So that one build runs both paths (see
    :func:`seqclf._kernels.step_products`).

    Parameters
    ----------
    own : bool
        True for the micro-kernels of the gate math's level, False for BLAS.

    Returns
    -------
    previous : bool
        Whether the micro-kernels were on. Not thread-safe: call it while no
        kernel runs.
    """
    return select_step_products(own)


def step_product(A, U, bint transpose, Py_ssize_t repeat=1):
    """A @ U, or A @ U.T with ``transpose``, by the per-step product path.

    The path :func:`seqclf._kernels.step_products` names: seqclf's
    micro-kernel on U packed as the kernels pack it, or BLAS's blocked GEMM.

    Parameters
    ----------
    A : ndarray of shape (m, k)
    U : ndarray of shape (k, n), or (n, k) with ``transpose``
        2-D C-contiguous arrays of one float dtype.
    transpose : bool
    repeat : int, default=1
        How many times to compute the product (for timing).

    Returns
    -------
    out : ndarray of shape (m, n)
    """
    if not all(isinstance(a, np.ndarray) and a.ndim == 2 and a.flags.c_contiguous
               for a in (A, U)):
        raise ValueError("A and U must be 2-D C-contiguous numpy.ndarrays.")
    if A.dtype != U.dtype or A.dtype not in (np.float32, np.float64):
        raise TypeError("A and U must be both float32 or both float64.")
    k, n = (U.shape[1], U.shape[0]) if transpose else U.shape
    if A.shape[1] != k:
        raise ValueError(f"A has {A.shape[1]} columns, the product needs {k}.")
    if repeat < 1:
        raise ValueError("repeat must be at least 1.")
    out = np.empty((A.shape[0], n), dtype=A.dtype)
    if out.size:
        _step_product(A, U, transpose, repeat, out)
    return out


def _step_product(const floating[:, ::1] A, const floating[:, ::1] U,
                  bint transpose, Py_ssize_t repeat, floating[:, ::1] out):
    cdef int rc
    with nogil:
        rc = run_step_product(transpose, repeat, A.shape[0], &A[0, 0],
                              U.shape[0], U.shape[1], &U[0, 0], &out[0, 0])
    if rc != 0:
        raise MemoryError("Cannot allocate the packed operand.")


def gate_math(x, name):
    """Apply the kernels' ``"sigmoid"`` or ``"tanh"`` to a 1-D array in place.

    For tests of the vectorised float32 approximations.

    Parameters
    ----------
    x : ndarray of shape (n,)
        C-contiguous, float32 or float64; overwritten.
    name : {"sigmoid", "tanh"}
    """
    if not isinstance(x, np.ndarray) or x.ndim != 1 or not x.flags.c_contiguous:
        raise ValueError("x must be a 1-D C-contiguous numpy.ndarray.")
    if name not in ("sigmoid", "tanh"):
        raise ValueError(f"name must be 'sigmoid' or 'tanh', got {name!r}.")
    if x.dtype != np.float32 and x.dtype != np.float64:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}.")
    _gate_math(x, name == "sigmoid")


def _gate_math(floating[::1] x, bint sigmoid):
    if x.shape[0] == 0:
        return
    cdef unsigned long long fp = fpenv_enter()
    if sigmoid:
        sigmoid_(&x[0], x.shape[0])
    else:
        tanh_(&x[0], x.shape[0])
    fpenv_leave(fp)


def fp_flush_modes():
    """Flush-to-zero / denormals-are-zero bits of the calling thread.

    For tests that check the caller's environment is unchanged.

    Returns
    -------
    bits : int
        The bits of the floating-point control register that the kernels
        set during a call (0 when none are set; see :func:`flush_mode_bits`).
    """
    return int(fpenv_get())


def flush_mode_bits():
    """The control-register bits the kernels set (0 where not supported)."""
    return int(FPENV_BITS)


def fp_flush_modes_of_threads(int n_threads):
    """The flush modes of each thread of an OpenMP region of n_threads.

    Returns
    -------
    bits : list of int
        :func:`fp_flush_modes` of each thread, in thread order.
    """
    cdef int i
    cdef Py_ssize_t[::1] out = np.zeros(n_threads, dtype=np.intp)
    with nogil:
        for i in prange(n_threads, num_threads=n_threads, schedule="static",
                        chunksize=1):
            out[i] = <Py_ssize_t> fpenv_get()
    return [int(v) for v in out]
