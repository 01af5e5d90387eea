"""The optimizers: state only, dense updates and lazy row updates.

An optimizer holds its moments (or velocity), step count and settings, and
takes the parameters it steps at each update.
"""

import numpy as np
import pytest

from seqclf._optim import AdamOptimizer, SGDOptimizer


@pytest.mark.parametrize("Optimizer", [AdamOptimizer, SGDOptimizer])
def test_lazy_update_touches_only_the_given_rows(Optimizer):
    rng = np.random.default_rng(10)
    E = rng.normal(size=(6, 4))
    dense = E.copy()
    rows = np.array([1, 4])
    g = rng.normal(size=(2, 4))
    lazy_opt, dense_opt = Optimizer(E.shape, E.dtype), Optimizer(dense.size, dense.dtype)
    lazy_opt.update_rows(E, rows, g)
    full = np.zeros_like(dense)
    full[rows] = g
    dense_opt.update(dense.ravel(), full.ravel())
    # From zero moments the rows stepped equal the dense step ...
    np.testing.assert_allclose(E, dense, rtol=1e-14)
    before = E.copy()
    lazy_opt.update_rows(E, np.array([0]), rng.normal(size=(1, 4)))
    # ... and rows absent from a batch do not move (their momentum waits).
    np.testing.assert_array_equal(E[1:], before[1:])
    assert not np.array_equal(E[0], before[0])
