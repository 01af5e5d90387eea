"""Shared test settings: cell and dtype lists, tolerances, fixtures.

* ``CELL_ACTIVATIONS`` (with ``CELL_ACTIVATION_IDS``): every computation the
  kernels implement, one ``(cell, activation)`` pair each, read from the cell
  registry, so that a new cell is tested everywhere once registered;
* ``DTYPES`` (with ``DTYPE_IDS``);
* ``KERNEL_RTOL``: the kernels against the NumPy reference, and ``FD_EPS``,
  ``FD_RTOL``, ``FD_ATOL``: analytic gradients against central differences;
* fixtures: ``impl`` (the reference or the compiled layers), ``mnist_files``
  (tiny MNIST-format files in a temporary folder);
* the Hypothesis profiles of tests/test_fuzz.py: ``ci`` (the default) runs
  a fixed set of examples (derandomized, no example database), so that
  every run tries the same cases; ``long`` explores new cases on each run,
  for runs by hand::

      python -m pytest tests/test_fuzz.py --hypothesis-profile=long
"""

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from seqclf import _layers, reference
from seqclf._cells import CELLS

CELL_ACTIVATIONS = [(c, a) for c, spec in CELLS.items() for a in spec.activations]
CELL_ACTIVATION_IDS = [c if len(CELLS[c].activations) == 1 else f"{c}-{a}"
                       for c, a in CELL_ACTIVATIONS]
CELL_NAMES = list(CELLS)
DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]

# Kernels against the reference, relative to the max-abs of each array
# (the reasons for each figure are in the docstring of tests/test_kernels.py).
KERNEL_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}

# Central differences with eps = 1e-6 (float64): truncation error ~eps**2 =
# 1e-12 times a third derivative of order 1, rounding error ~1e-16 *
# |loss| / eps ~ 1e-9 for losses of order 10; rtol 1e-6 / atol 1e-8 keeps
# two orders of margin while a wrong derivative is off by 1e-2 or more.
FD_EPS, FD_RTOL, FD_ATOL = 1e-6, 1e-6, 1e-8


@pytest.fixture(params=["reference", "layers"])
def impl(request):
    """The implementation under test: :mod:`seqclf.reference` or the
    compiled :mod:`seqclf._layers`, which take the same arguments (see
    ``tests._helpers.run_layer``)."""
    if request.param == "reference":
        return reference
    return _layers


def idx_bytes(arr, code=0x08):
    """Serialise ``arr`` in the IDX format (big-endian)."""
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4",
              0x0D: ">f4", 0x0E: ">f8"}
    header = bytes([0, 0, code, arr.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(dtypes[code]).tobytes()


def write_mnist(folder, n_train=6, n_test=4, seed=0, gz=True):
    """Tiny MNIST-format files in ``folder``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        data = idx_bytes(a)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.fixture
def mnist_files(tmp_path):
    """Write tiny MNIST-format files: ``mnist_files(n_train=6, n_test=4,
    seed=0, gz=True, folder=tmp_path)`` returns ``(folder, arrays)``."""
    def write(n_train=6, n_test=4, seed=0, gz=True, folder=None):
        folder = tmp_path if folder is None else folder
        return folder, write_mnist(folder, n_train, n_test, seed, gz)
    return write


_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large,
               HealthCheck.filter_too_much]

settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, database=None,
    print_blob=True, suppress_health_check=_SUPPRESSED)
settings.register_profile(
    "long", max_examples=5000, deadline=None, print_blob=True,
    suppress_health_check=_SUPPRESSED)


def pytest_configure(config):
    # --hypothesis-profile, when given, has loaded its profile already.
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile("ci")

