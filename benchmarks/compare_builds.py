#!/usr/bin/env python
"""Time a fit per mini-batch on two builds of seqclf, in alternating processes.

Usage (from the repository root)::

    python benchmarks/compare_builds.py BEFORE AFTER [--configs rnn:32:32 ...]
                                        [--threads 1 2] [--repeat 3]
                                        [--dropout 0.0]

``BEFORE`` and ``AFTER`` are source trees with their extensions built in
place (``python setup.py build_ext --inplace``), for example a clone of an
older commit and this checkout. Each measurement runs in a fresh process
with ``PYTHONPATH`` on one tree and ``OMP_NUM_THREADS`` set; the two trees
alternate, ``--repeat`` times, so that a change of the machine's load hits
both alike. A process fits ``RNNClassifier(cell, (H,), batch_size=B,
max_iter=1, dropout=dropout)`` on random MNIST-shaped data (28 steps x 28 features,
float32, 10 classes): once on three batches and once on all (warm-up), then
three timed fits of ``n_batches`` batches; it prints the median time per
batch. The script prints each tree's median over the repeats and
before / after.

A configuration is ``cell:H:B[:n_batches][:flag...]`` (n_batches defaults
to about a second of work on a 2-core machine). Without flags it is the
model above. Each flag changes one thing, and flags combine
(``lstm:32:32:200:bi:stack``):

* ``bi``: ``bidirectional=True``;
* ``stack``: two layers of the cell, ``hidden_layer_sizes=(H, H)``;
* ``ids``: token ids, ``embedding_dim=28, vocab_size=1000``, on an integer
  array (n, 28) of random ids in [0, 1000) (the recurrent layer reads 28
  features, as the MNIST rows);
* ``reg``: ``RNNRegressor`` on one normal random target;
* ``pf``: instead of ``fit``, a loop of ``partial_fit`` calls on
  consecutive blocks of B sequences (one mini-batch each, with
  ``classes`` at every call), as dask-ml's ``Incremental`` feeds the
  blocks of a Dask array: warm-up on three blocks and a pass over all,
  then three timed passes over the ``n_batches`` blocks. The time per batch
  includes each call's own work (checks, the optimizer's bookkeeping).

The labels print the flags after the batch size (``lstm32 b32+bi``).
``--configs`` also takes the names of lists of configurations: ``default``
(``DEFAULT_CONFIGS``, the default) and ``paths`` (``PATH_CONFIGS``: one of
each flag)::

    python benchmarks/compare_builds.py BEFORE AFTER --configs paths

The child runs only the public API (the estimators and their parameters),
so that it times old trees as well as new ones.
"""

import argparse
import os
import statistics
import subprocess
import sys

import _peer

CHILD = r"""
import sys, time
import numpy as np
from seqclf import RNNClassifier, RNNRegressor
cell = sys.argv[1]
H, B, nb, th = (int(a) for a in sys.argv[2:6])
dropout = float(sys.argv[6])
flags = set(filter(None, sys.argv[7].split("+")))
rng = np.random.default_rng(0)
if "ids" in flags:
    X = rng.integers(0, 1000, (B * nb, 28))
else:
    X = rng.random((B * nb, 28, 28)).astype(np.float32)
if "reg" in flags:
    y = rng.normal(size=len(X))
else:
    y = rng.integers(0, 10, len(X))
kw = {}
if "bi" in flags:
    kw["bidirectional"] = True
if "ids" in flags:
    kw.update(embedding_dim=28, vocab_size=1000)
Estimator = RNNRegressor if "reg" in flags else RNNClassifier
clf = Estimator(cell=cell,
                hidden_layer_sizes=(H, H) if "stack" in flags else (H,),
                batch_size=B, max_iter=1, n_threads=th, dropout=dropout,
                random_state=0, **kw)
if "pf" in flags:
    extra = {} if "reg" in flags else {"classes": np.arange(10)}

    def run(n):
        for i in range(min(n, nb)):
            clf.partial_fit(X[i * B:(i + 1) * B], y[i * B:(i + 1) * B],
                            **extra)
else:
    def run(n):
        clf.fit(X[:B * n], y[:B * n])
run(3)
run(nb)
times = []
for _ in range(3):
    t0 = time.perf_counter()
    run(nb)
    times.append(time.perf_counter() - t0)
print(sorted(times)[1] / nb * 1e3)
"""

DEFAULT_CONFIGS = ["rnn:32:32:300", "gru:32:32:200", "lstm:32:32:200",
                   "rnn:31:128:150", "lstm:128:128:25", "gru:128:128:25"]
# One configuration for each flag: the paths beyond a one-layer classifier
# on float features.
PATH_CONFIGS = ["lstm:32:32:200:bi", "gru:32:32:200:stack",
                "gru:32:32:200:ids", "lstm:32:32:200:reg",
                "gru:32:64:100:pf", "lstm:32:64:100:pf:reg"]
PRESETS = {"default": DEFAULT_CONFIGS, "paths": PATH_CONFIGS}
FLAGS = ("bi", "stack", "ids", "reg", "pf")


def _parse(config):
    parts = config.split(":")
    n_fixed = 4 if len(parts) > 3 and parts[3].isdigit() else 3
    flags = parts[n_fixed:]
    if (len(parts) < 3 or parts[0] not in ("rnn", "gru", "lstm")
            or not (parts[1].isdigit() and parts[2].isdigit())
            or any(f not in FLAGS for f in flags)
            or len(set(flags)) != len(flags)):
        raise argparse.ArgumentTypeError(
            f"a configuration is cell:H:B[:n_batches][:flag...] with flags "
            f"among {', '.join(FLAGS)}, or one of {', '.join(PRESETS)}; "
            f"got {config!r}")
    cell, H, B = parts[0], int(parts[1]), int(parts[2])
    # Two directions or two layers: about twice the work per batch.
    work = (1 + ("bi" in flags)) * (1 + ("stack" in flags))
    nb = (int(parts[3]) if n_fixed == 4
          else max(10, 4_000_000 // (work * B * H * H + 1)))
    return cell, H, B, nb, "+".join(flags)


def _configs(words):
    """The configurations of ``--configs``: presets expanded, in order."""
    configs = []
    for word in words:
        for config in PRESETS.get(word, [word]):
            configs.append(_parse(config))
    return configs


def _time(tree, cell, H, B, nb, flags, threads, dropout):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree),
               OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, cell, str(H), str(B), str(nb),
         str(threads), str(dropout), flags], env=env, capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(tree)))
    if out.returncode:
        raise SystemExit(f"{tree}: {out.stderr[-2000:]}")
    return float(out.stdout.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--configs", nargs="+", default=["default"],
                        help="cell:H:B[:n_batches][:flag...] or a preset "
                             f"({', '.join(PRESETS)})")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="the models' input dropout rate")
    args = parser.parse_args(argv)
    try:
        configs = _configs(args.configs)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"argument --configs: {exc}")
    labels = [f"{cell}{H} b{B}" + (f"+{flags}" if flags else "")
              for cell, H, B, nb, flags in configs]
    width = max(18, *map(len, labels))
    info = _peer.machine_info()
    print(f"CPU: {info.get('cpu', '?')}, {info.get('n_cpus', '?')} usable "
          f"CPUs; NumPy's BLAS: {', '.join(info.get('numpy_blas', [])) or '?'}")
    print(f"{args.repeat} alternations, ms per mini-batch (median)")
    print(f"{'config':<{width}} {'threads':>7} {'before':>9} {'after':>9} "
          f"{'before/after':>12}")
    for (cell, H, B, nb, flags), label in zip(configs, labels):
        for threads in args.threads:
            res = {"before": [], "after": []}
            for _ in range(args.repeat):
                for name in res:
                    res[name].append(_time(getattr(args, name), cell, H, B,
                                           nb, flags, threads, args.dropout))
            b, a = (statistics.median(res[k]) for k in ("before", "after"))
            print(f"{label:<{width}} {threads:>7} {b:>9.3f} {a:>9.3f} "
                  f"{b / a:>12.3f}", flush=True)


if __name__ == "__main__":
    main()
