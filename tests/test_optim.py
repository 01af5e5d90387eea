"""The optimizers: state only, dense updates and lazy row updates.

An optimizer holds its moments (or velocity), step count and settings, and
takes the parameters it steps at each update; these tests check that
contract and each update against the formula it implements, written out in
plain NumPy.
"""

import pickle

import numpy as np
import pytest

from seqclf._optim import AdamOptimizer, SGDOptimizer, make_optimizer

OPTIMIZERS = {
    "adam": lambda shape, dtype: AdamOptimizer(shape, dtype, learning_rate=0.01),
    "sgd": lambda shape, dtype: SGDOptimizer(shape, dtype, learning_rate=0.05),
    "sgd-classical": lambda shape, dtype: SGDOptimizer(
        shape, dtype, learning_rate=0.05, nesterov=False),
}


def _state_arrays(opt):
    return {k: v for k, v in vars(opt).items() if isinstance(v, np.ndarray)}


# ---------------------------------------------------------------------------
# Formulas, written out
# ---------------------------------------------------------------------------

def sgd_step(p, v, g, lr, mu, nesterov):
    """MLPClassifier(solver="sgd")'s step: new (params, velocity)."""
    v = mu * v - lr * g
    return (p + mu * v - lr * g if nesterov else p + v), v


def adam_step(p, m, v, g, t, lr, b1, b2, eps):
    """Adam's step t (from 1), epsilon inside the bias-corrected rate."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return p - lr_t * m / (np.sqrt(v) + eps), m, v


# ---------------------------------------------------------------------------
# State only
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_is_made_from_shape_and_dtype(name, dtype):
    opt = OPTIMIZERS[name]((5, 3), dtype)
    state = _state_arrays(opt)
    assert sorted(state) == (["m", "v"] if name == "adam" else ["velocity"])
    for a in state.values():
        assert a.shape == (5, 3) and a.dtype == dtype and not a.any()
    assert opt.t == 0 and not hasattr(opt, "params")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_updates_keep_no_reference_to_the_parameters(name):
    rng = np.random.default_rng(0)
    params = rng.normal(size=12)
    opt = OPTIMIZERS[name](12, np.float64)
    opt.update(params, rng.normal(size=12))
    E = rng.normal(size=(4, 3))
    row_opt = OPTIMIZERS[name](E.shape, E.dtype)
    row_opt.update_rows(E, np.array([2]), rng.normal(size=(1, 3)))
    for o, p in ((opt, params), (row_opt, E)):
        assert not hasattr(o, "params")
        for a in vars(o).values():
            assert not (isinstance(a, np.ndarray) and np.shares_memory(a, p))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pickle_carries_the_state_and_no_parameters(name):
    rng = np.random.default_rng(1)
    params = rng.normal(size=1000)
    opt = OPTIMIZERS[name](params.shape, params.dtype)
    for _ in range(3):
        opt.update(params, rng.normal(size=1000))
    data = pickle.dumps(opt)
    loaded = pickle.loads(data)
    # The moments (one or two vectors) and a few settings: no parameter
    # vector, and no scratch buffer.
    n_state = len(_state_arrays(opt))
    assert len(data) < (n_state + 0.5) * params.nbytes
    assert not hasattr(loaded, "params")
    assert sorted(vars(loaded)) == sorted(vars(opt))
    for k, a in _state_arrays(opt).items():
        np.testing.assert_array_equal(getattr(loaded, k), a)
    assert loaded.t == opt.t == 3
    # The loaded optimizer continues exactly as the original.
    g = rng.normal(size=1000)
    p1, p2 = params.copy(), params.copy()
    opt.update(p1, g)
    loaded.update(p2, g)
    np.testing.assert_array_equal(p1, p2)


def test_pickle_of_an_optimizer_that_held_its_parameters_drops_them():
    # Earlier versions pickled the parameters and a scratch buffer.
    opt = AdamOptimizer(4, np.float64)
    state = dict(vars(opt), params=np.ones(4), _tmp=np.zeros(4))
    loaded = AdamOptimizer.__new__(AdamOptimizer)
    loaded.__setstate__(state)
    assert not hasattr(loaded, "params") and not hasattr(loaded, "_tmp")
    assert sorted(vars(loaded)) == sorted(vars(opt))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_parameters_other_than_the_state_are_rejected(name, bad):
    opt = OPTIMIZERS[name]((4, 3), np.float64)
    params = np.zeros((4, 4)) if bad == "shape" else np.zeros((4, 3), np.float32)
    before = {k: a.copy() for k, a in _state_arrays(opt).items()}
    with pytest.raises(ValueError, match="shape .* and dtype"):
        opt.update(params, np.zeros_like(params))
    with pytest.raises(ValueError, match="shape .* and dtype"):
        opt.update_rows(params, np.array([0]), np.zeros((1, params.shape[1]),
                                                        params.dtype))
    assert opt.t == 0
    for k, a in before.items():
        np.testing.assert_array_equal(getattr(opt, k), a)


def test_make_optimizer_builds_each_solver_with_its_settings():
    adam = make_optimizer("adam", (3, 2), np.float32, learning_rate=0.5,
                          beta_1=0.8, beta_2=0.99, epsilon=1e-6, momentum=0.1)
    assert isinstance(adam, AdamOptimizer)
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (
        0.5, 0.8, 0.99, 1e-6)
    assert adam.m.shape == (3, 2) and adam.m.dtype == np.float32
    sgd = make_optimizer("sgd", 6, np.float64, learning_rate=0.5,
                         momentum=0.3, nesterov=False, beta_1=0.1)
    assert isinstance(sgd, SGDOptimizer)
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.5, 0.3, False)
    assert sgd.velocity.shape == (6,) and sgd.velocity.dtype == np.float64
    with pytest.raises(ValueError, match="solver must be 'adam' or 'sgd'"):
        make_optimizer("lbfgs", 6, np.float64, learning_rate=0.5)


# ---------------------------------------------------------------------------
# Dense updates against the formulas
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_sgd_update_matches_the_formula(nesterov, dtype, rtol):
    rng = np.random.default_rng(2)
    lr, mu = 0.05, 0.9
    params = rng.normal(size=50).astype(dtype)
    opt = SGDOptimizer(50, dtype, learning_rate=lr, momentum=mu, nesterov=nesterov)
    p, v = params.astype(np.float64), np.zeros(50)
    for t in range(1, 6):
        g = rng.normal(size=50).astype(dtype)
        opt.update(params, g)
        p, v = sgd_step(p, v, g.astype(np.float64), lr, mu, nesterov)
        assert opt.t == t and params.dtype == dtype
        np.testing.assert_allclose(params, p, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(opt.velocity, v, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_adam_update_matches_the_formula(dtype, rtol):
    rng = np.random.default_rng(3)
    lr, b1, b2, eps = 0.01, 0.8, 0.99, 1e-7
    params = rng.normal(size=50).astype(dtype)
    opt = AdamOptimizer(50, dtype, learning_rate=lr, beta_1=b1, beta_2=b2,
                        epsilon=eps)
    p, m, v = params.astype(np.float64), np.zeros(50), np.zeros(50)
    for t in range(1, 6):
        g = rng.normal(size=50).astype(dtype)
        opt.update(params, g)
        p, m, v = adam_step(p, m, v, g.astype(np.float64), t, lr, b1, b2, eps)
        assert opt.t == t and params.dtype == dtype
        np.testing.assert_allclose(params, p, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(opt.m, m, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(opt.v, v, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_steps_whatever_array_it_is_given(name):
    # The same optimizer steps the array of each call: one rebuilt (as a
    # network's after unpickling) is stepped as the old one would have been.
    rng = np.random.default_rng(4)
    a = rng.normal(size=20)
    opt, ref = OPTIMIZERS[name](20, np.float64), OPTIMIZERS[name](20, np.float64)
    b = a.copy()
    for k in range(4):
        g = rng.normal(size=20)
        ref.update(b, g)
        a = a.copy() if k % 2 else a        # a new array every other step
        opt.update(a, g)
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# Lazy row updates
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("Optimizer", [AdamOptimizer, SGDOptimizer])
def test_lazy_update_touches_only_the_given_rows(Optimizer):
    rng = np.random.default_rng(10)
    E = rng.normal(size=(6, 4))
    dense = E.copy()
    rows = np.array([1, 4])
    g = rng.normal(size=(2, 4))
    lazy_opt = Optimizer(E.shape, E.dtype)
    dense_opt = Optimizer(dense.size, dense.dtype)
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


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_rows_is_the_dense_update_on_the_rows_it_is_given(name):
    # With moments everywhere (rows seen in earlier batches), the rows of a
    # batch get the dense update computed with their own moments and the
    # global step count; the other rows, and their moments, stay as they are.
    rng = np.random.default_rng(5)
    V, D = 9, 3
    E = rng.normal(size=(V, D))
    lazy = OPTIMIZERS[name]((V, D), np.float64)
    for _ in range(3):                       # nonzero state in every row
        lazy.update_rows(E, np.arange(V), rng.normal(size=(V, D)))
    dense = OPTIMIZERS[name]((V, D), np.float64)
    for k, a in _state_arrays(lazy).items():
        getattr(dense, k)[...] = a
    dense.t = lazy.t
    rows = np.array([7, 0, 4])
    g = rng.normal(size=(3, D))
    E_dense = E.copy()
    full = np.zeros((V, D))
    full[rows] = g
    before = {k: a.copy() for k, a in _state_arrays(lazy).items()}
    E_before = E.copy()

    lazy.update_rows(E, rows, g)
    dense.update(E_dense, full)
    assert lazy.t == dense.t == 4
    others = np.setdiff1d(np.arange(V), rows)
    np.testing.assert_allclose(E[rows], E_dense[rows], rtol=1e-14)
    np.testing.assert_array_equal(E[others], E_before[others])
    for k, a in before.items():
        np.testing.assert_allclose(getattr(lazy, k)[rows], getattr(dense, k)[rows],
                                   rtol=1e-14)
        np.testing.assert_array_equal(getattr(lazy, k)[others], a[others])


def test_lazy_adam_matches_the_formula_row_by_row():
    # Each row steps with its own moments, the bias correction with the
    # count of all updates (rows seen or not), as TensorFlow's LazyAdam.
    rng = np.random.default_rng(6)
    V, D, lr, b1, b2, eps = 5, 2, 0.01, 0.9, 0.999, 1e-8
    E = rng.normal(size=(V, D))
    opt = AdamOptimizer((V, D), np.float64, lr, b1, b2, eps)
    p, m, v = E.copy(), np.zeros((V, D)), np.zeros((V, D))
    for t, rows in enumerate([[0, 3], [3], [1, 2, 4], [0]], start=1):
        rows = np.array(rows)
        g = rng.normal(size=(len(rows), D))
        opt.update_rows(E, rows, g)
        p[rows], m[rows], v[rows] = adam_step(p[rows], m[rows], v[rows], g, t,
                                              lr, b1, b2, eps)
        np.testing.assert_allclose(E, p, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(opt.m, m, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(opt.v, v, rtol=1e-13, atol=1e-15)
    assert opt.t == 4
