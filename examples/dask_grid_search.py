#!/usr/bin/env python
"""
The same grid search three ways: one process, joblib's loky workers, a Dask cluster.
====================================================================================

A ``GridSearchCV`` over an ``RNNClassifier`` (GRU) on synthetic sequences
(the label is the sign of the first step's first feature plus the last
step's second, the steps between are noise) runs with ``n_jobs=1``, with
``n_jobs=-1`` on joblib's default ``loky`` backend, and with ``n_jobs=-1``
under ``joblib.parallel_config(backend="dask")`` on a ``LocalCluster`` of
two worker processes with one thread each. The script prints, for each
backend, the search's wall time, the best score and parameters, and the
kernel threads each fit ran on (read from the fitted estimators, through a
scorer that returns ``n_threads_``). The scores are the same on every
backend: a fixed ``random_state`` gives the same models whatever runs them.

Threads: with ``n_jobs=1`` each fit takes every core OpenMP allows; loky
limits each of its workers to (cores / workers) threads; Dask's nannies set
``OMP_NUM_THREADS=1``, so each fit in a worker runs on one thread unless
the estimator's ``n_threads`` says otherwise (``--n-threads``). Size the
cluster so that workers x threads per worker x ``n_threads`` is the number
of cores.

Usage (from the repository root; needs ``pip install "seqclf[dask]"``)::

    python examples/dask_grid_search.py
    python examples/dask_grid_search.py --n-samples 400 --epochs 1 --repeat 1   # quick
    python examples/dask_grid_search.py --scheduler tcp://scheduler:8786

``--scheduler`` runs the Dask part on an existing cluster instead of a
``LocalCluster``: the same code, each fit on whichever machine's worker the
scheduler picks (seqclf must be installed there). Other options:
``--workers`` (of the ``LocalCluster``, default 2), ``--cv``, ``--epochs``,
``--repeat`` (searches per backend, in turn: the median wall time is
reported, default 3), ``--n-threads`` (of each fit under Dask),
``--backends``, ``--json``.
"""

import argparse
import contextlib
import json
import logging
import platform
import subprocess
import sys
import time

import joblib
import numpy as np
from sklearn.model_selection import GridSearchCV

from seqclf import RNNClassifier

GRID = {
    "cell": ["gru", "lstm"],
    "hidden_layer_sizes": [(16,), (32,)],
    "learning_rate_init": [0.003, 0.01],
}


def cpu_name():
    """The CPU's model name as lscpu gives it, else from /proc/cpuinfo."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True,
                             timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_data(n, n_steps=20, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_steps, n_features)).astype(np.float32)
    y = (X[:, 0, 0] + X[:, -1, 1] > 0).astype(int)
    return X, y


def kernel_threads(estimator, X, y):
    """A "score" that is the thread count the fit ran on, where it ran."""
    return estimator.n_threads_


def search(args, n_jobs, n_threads=None):
    est = RNNClassifier(max_iter=args.epochs, batch_size=64, random_state=0,
                        n_threads=n_threads)
    return GridSearchCV(est, GRID, cv=args.cv, n_jobs=n_jobs, refit="accuracy",
                        scoring={"accuracy": "accuracy",
                                 "threads": kernel_threads})


def _ready():
    """Run in each worker before timing: its imports are start-up cost."""
    import seqclf  # noqa: F401
    return True


def run(name, make_search, X, y, context=None):
    """Fit one search; its wall time and what it found."""
    tic = time.perf_counter()
    with context() if context is not None else contextlib.nullcontext():
        gs = make_search().fit(X, y)
    seconds = time.perf_counter() - tic
    threads = sorted({int(t) for t in gs.cv_results_["mean_test_threads"]})
    return {"backend": name, "seconds": seconds,
            "best_score": float(gs.best_score_),
            "best_params": {k: (list(v) if isinstance(v, tuple) else v)
                            for k, v in gs.best_params_.items()},
            "threads_per_fit": threads,
            "mean_test_accuracy": [float(s) for s in
                                   gs.cv_results_["mean_test_accuracy"]]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=3000)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3,
                        help="searches per backend, taken in turn; the "
                             "median wall time is reported")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes of the LocalCluster")
    parser.add_argument("--n-threads", type=int, default=None,
                        help="n_threads of each fit under Dask (default: "
                             "None, one thread in a Dask worker)")
    parser.add_argument("--scheduler", default=None,
                        help="address of an existing Dask scheduler, e.g. "
                             "tcp://scheduler:8786, instead of a LocalCluster")
    parser.add_argument("--backends", nargs="+",
                        default=["n_jobs=1", "loky", "dask"],
                        choices=["n_jobs=1", "loky", "dask"])
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)

    X, y = make_data(args.n_samples)
    n_fits = args.cv * int(np.prod([len(v) for v in GRID.values()]))
    cpu = cpu_name()
    print(f"{n_fits} fits ({args.cv}-fold, {n_fits // args.cv} candidates) of "
          f"{args.epochs} epochs on {len(X):,} sequences of {X.shape[1]} "
          f"steps, {args.repeat} time(s) per backend; CPU: {cpu}", flush=True)
    runs = {}
    if "n_jobs=1" in args.backends:
        runs["n_jobs=1"] = (lambda: search(args, 1), None)
    if "loky" in args.backends:
        # loky keeps its workers between calls: start them first.
        tic = time.perf_counter()
        n_workers = joblib.cpu_count()
        joblib.Parallel(n_jobs=-1)(joblib.delayed(_ready)()
                                   for _ in range(n_workers))
        print(f"(loky: {n_workers} worker processes, started in "
              f"{time.perf_counter() - tic:.1f} s, not counted below)")
        runs["loky, n_jobs=-1"] = (lambda: search(args, -1), None)
    cluster = client = None
    where = None
    try:
        if "dask" in args.backends:
            from dask.distributed import Client, LocalCluster

            tic = time.perf_counter()
            if args.scheduler is None:
                cluster = LocalCluster(
                    n_workers=args.workers, threads_per_worker=1,
                    processes=True, dashboard_address=":0",
                    silence_logs=logging.ERROR)
                client = Client(cluster)
                where = f"LocalCluster of {args.workers} workers x 1 thread"
            else:
                client = Client(args.scheduler)
                where = f"the cluster at {args.scheduler}"
            client.run(_ready)
            print(f"(Dask: {where}, started in "
                  f"{time.perf_counter() - tic:.1f} s, not counted below)")
            runs["dask, n_jobs=-1"] = (
                lambda: search(args, -1, n_threads=args.n_threads),
                lambda: joblib.parallel_config(backend="dask"))
        results = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, (make_search, context) in runs.items():
                r = run(name, make_search, X, y, context)
                results[name].append(r)
                print(f"  {name:<16} {r['seconds']:7.1f} s", flush=True)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    summary = []
    for name, rs in results.items():
        times = [r["seconds"] for r in rs]
        r = dict(rs[0], seconds=round(float(np.median(times)), 2),
                 all_seconds=[round(t, 2) for t in times])
        if name.startswith("dask"):
            r["where"] = where
        summary.append(r)
    print(f"{'backend':<18}{'median wall':>12}   best accuracy   threads per "
          f"fit   best parameters")
    for r in summary:
        print(f"{r['backend']:<18}{r['seconds']:>10.1f} s   "
              f"{r['best_score']:.4f}          {r['threads_per_fit']}   "
              f"{r['best_params']}")
    scores = {json.dumps(r["mean_test_accuracy"])
              for rs in results.values() for r in rs}
    same = len(scores) == 1
    print(f"same scores on every backend: {same}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu, "n_samples": len(X), "cv": args.cv,
                       "epochs": args.epochs, "fits": n_fits,
                       "repeat": args.repeat, "same_scores": same,
                       "results": summary}, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
