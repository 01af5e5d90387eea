"""seqclf on a Dask cluster: grid searches under joblib's Dask backend, the
kernels' thread count in the workers, training block by block with dask_ml's
``Incremental``, and ``HyperbandSearchCV``.

A real ``LocalCluster`` of two worker processes with one thread each serves
the module. Their nannies set ``OMP_NUM_THREADS=1``, as on any Dask
cluster, so a fit there runs on one thread unless ``n_threads`` says
otherwise.
"""

import logging
import os

import numpy as np
import pytest

_MISSING = ('the dask extra is not installed (pip install "seqclf[dask]": '
            'dask[distributed] and dask-ml)')
dask = pytest.importorskip("dask", reason=_MISSING)
pytest.importorskip("distributed", reason=_MISSING)
pytest.importorskip("dask_ml", reason=_MISSING)

import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from dask.distributed import Client, LocalCluster, get_task_stream  # noqa: E402
from dask_ml.model_selection import HyperbandSearchCV  # noqa: E402
from dask_ml.wrappers import Incremental  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_validate  # noqa: E402

from seqclf import RNNClassifier  # noqa: E402
from seqclf._openmp_helpers import openmp_enabled  # noqa: E402

N_STEPS, N_FEATURES = 8, 3
GRID = {"hidden_layer_sizes": [(4,), (8,)], "learning_rate_init": [0.01, 0.003]}


def task(n=192, seed=0):
    """``(X, y)``: ``n`` float32 sequences of 8 steps of 3 features, the
    label decided by the first step and the last."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_STEPS, N_FEATURES)).astype(np.float32)
    return X, (X[:, 0, 0] + X[:, -1, 1] > 0).astype(int)


def rows(X, chunk):
    """A 3-D array as the 2-D Dask array of rows ``(n, n_steps * n_features)``
    that ``Incremental`` takes, in blocks of ``chunk`` rows."""
    return da.from_array(X, chunks=(chunk, -1, -1)).reshape(len(X), -1)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def test_grid_search_on_the_cluster_gives_the_local_scores(client):
    X, y = task()
    est = RNNClassifier("gru", max_iter=3, batch_size=32, random_state=0)
    local = GridSearchCV(est, GRID, cv=2, n_jobs=1).fit(X, y)
    with get_task_stream(client) as stream, \
            joblib.parallel_config(backend="dask"):
        remote = GridSearchCV(est, GRID, cv=2, n_jobs=-1).fit(X, y)
    # The fits ran in the cluster's workers, not here.
    workers = {task["worker"] for task in stream.data}
    assert workers and workers <= set(client.scheduler_info()["workers"])
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key],
                                      local.cv_results_[key], err_msg=key)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.predict_proba(X),
                                  local.predict_proba(X))


def test_fits_in_workers_run_on_one_thread_unless_n_threads_says(client):
    assert set(client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
               .values()) == {"1"}
    X, y = task()
    est = RNNClassifier("gru", (8,), max_iter=2, batch_size=32,
                        random_state=0)
    local = cross_validate(est, X, y, cv=2, return_estimator=True)
    with joblib.parallel_config(backend="dask"):
        default, two = (
            cross_validate(clone(est).set_params(n_threads=n), X, y, cv=2,
                           n_jobs=-1, return_estimator=True)
            for n in (None, 2))
    # The estimators fitted in the workers, sent back.
    assert [e.n_threads_ for e in default["estimator"]] == [1, 1]
    assert [e.n_threads_ for e in two["estimator"]] == (
        [2, 2] if openmp_enabled() else [1, 1])
    for run in (default, two):
        np.testing.assert_array_equal(run["test_score"], local["test_score"])
        for got, expected in zip(run["estimator"], local["estimator"]):
            np.testing.assert_array_equal(got._network.coefs,
                                          expected._network.coefs)


def test_blocks_through_incremental_train_as_epochs_of_fit(client):
    # Blocks of 64 rows, mini-batches of 32, no shuffling: the blocks'
    # mini-batches are those of fit's epoch, and the optimizer's state goes
    # from block to block (and worker to worker) with the model.
    X, y = task(n=192)
    est = RNNClassifier("gru", (8,), n_steps=N_STEPS, batch_size=32,
                        shuffle=False, random_state=0)
    X_rows, y_blocks = rows(X, 64), da.from_array(y, chunks=64)
    inc = Incremental(est, shuffle_blocks=False)
    inc.fit(X_rows, y_blocks, classes=[0, 1])
    model = inc.estimator_
    assert model.n_iter_ == 3 and model.stop_reason_ == "partial_fit"
    # One epoch of fit on the 3-D array in memory.
    one = clone(est).set_params(n_steps=None, max_iter=1).fit(X, y)
    np.testing.assert_array_equal(model._network.coefs, one._network.coefs)
    # A second pass continues: two epochs of fit.
    inc.partial_fit(X_rows, y_blocks)
    two = clone(est).set_params(max_iter=2).fit(X.reshape(len(X), -1), y)
    np.testing.assert_array_equal(inc.estimator_._network.coefs,
                                  two._network.coefs)
    # Predictions block by block on the cluster.
    proba = inc.predict_proba(X_rows).compute()
    np.testing.assert_array_equal(proba, two.predict_proba(X.reshape(len(X), -1)))


def test_variable_lengths_as_nan_padding(client):
    X, y = task(n=128)
    lengths = np.random.default_rng(1).integers(3, N_STEPS + 1, len(X))
    seqs = [x[:t] for x, t in zip(X, lengths)]
    padded = np.full_like(X, np.nan)
    for i, t in enumerate(lengths):
        padded[i, :t] = X[i, :t]
    est = RNNClassifier("lstm", (6,), n_steps=N_STEPS, mask_value=np.nan,
                        batch_size=32, shuffle=False, random_state=0)
    X_rows = rows(padded, 32)
    inc = Incremental(est, shuffle_blocks=False)
    inc.fit(X_rows, da.from_array(y, chunks=32), classes=[0, 1])
    # The same as one epoch on the list of sequences of their own lengths.
    ragged = RNNClassifier("lstm", (6,), batch_size=32, shuffle=False,
                           max_iter=1, random_state=0).fit(seqs, y)
    np.testing.assert_array_equal(inc.estimator_._network.coefs,
                                  ragged._network.coefs)
    np.testing.assert_array_equal(inc.predict_proba(X_rows).compute(),
                                  ragged.predict_proba(seqs))


def test_a_3d_dask_array_is_refused_with_the_way_through_rows(client):
    # dask_ml's Incremental builds block keys for 2-D arrays only: the
    # blocks of a 3-D array reach partial_fit as task keys.
    X, y = task(n=64)
    X3 = da.from_array(X, chunks=(32, -1, -1))
    inc = Incremental(RNNClassifier("gru", (4,), batch_size=32))
    with pytest.raises(ValueError, match=r"a Dask task key.*n_steps"):
        inc.fit(X3, da.from_array(y, chunks=32), classes=[0, 1])


def test_hyperband_search_over_partial_fit(client):
    X, y = task(n=512)
    X_rows, y_blocks = rows(X, 128).persist(), da.from_array(y, 128).persist()
    params = {"hidden_layer_sizes": [(4,), (8,), (16,)],
              "learning_rate_init": [0.003, 0.01, 0.03]}
    search = HyperbandSearchCV(
        RNNClassifier("gru", n_steps=N_STEPS, batch_size=32, random_state=0),
        params, max_iter=9, random_state=0, test_size=0.25)
    # dask-ml 2025.1 persists its split inside the client's event loop,
    # which dask 2026.8 refuses for the client itself ("Attempting to use
    # an asynchronous Client in a synchronous context"); its get method as
    # the scheduler takes the same client's persist.
    with dask.config.set(scheduler=client.get):
        search.fit(X_rows, y_blocks, classes=[0, 1])
    results, best = search.cv_results_, search.best_index_
    assert max(h["partial_fit_calls"] for h in search.history_) == 9
    assert search.metadata_["n_models"] == search.metadata["n_models"] > 3
    # The best model, with as many epochs (one per block) as it was given.
    assert search.best_estimator_.n_iter_ == results["partial_fit_calls"][best]
    assert search.best_score_ == results["test_score"][best]
    # Chance is about one half on the held-out quarter.
    assert search.best_score_ > 0.8


def test_a_cluster_of_threads_gives_the_local_scores():
    # Workers as threads of this process: fits run at once from two Python
    # threads, the kernels without the GIL.
    X, y = task()
    est = RNNClassifier("lstm", max_iter=3, batch_size=32, random_state=0)
    local = GridSearchCV(est, GRID, cv=2, n_jobs=1).fit(X, y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as threads, \
            joblib.parallel_config(backend="dask", client=threads):
        remote = GridSearchCV(est, GRID, cv=2, n_jobs=-1).fit(X, y)
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(remote.predict_proba(X),
                                  local.predict_proba(X))
