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

A configuration is ``cell:H:B[:n_batches]`` (n_batches defaults to about a
second of work on a 2-core machine).
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
from seqclf import RNNClassifier
cell = sys.argv[1]
H, B, nb, th = (int(a) for a in sys.argv[2:6])
dropout = float(sys.argv[6])
rng = np.random.default_rng(0)
X = rng.random((B * nb, 28, 28)).astype(np.float32)
y = rng.integers(0, 10, len(X))
clf = RNNClassifier(cell=cell, hidden_layer_sizes=(H,), batch_size=B,
                    max_iter=1, n_threads=th, dropout=dropout,
                    random_state=0)
clf.fit(X[:B * 3], y[:B * 3])
clf.fit(X, y)
times = []
for _ in range(3):
    t0 = time.perf_counter()
    clf.fit(X, y)
    times.append(time.perf_counter() - t0)
print(sorted(times)[1] / nb * 1e3)
"""

DEFAULT_CONFIGS = ["rnn:32:32:300", "gru:32:32:200", "lstm:32:32:200",
                   "rnn:31:128:150", "lstm:128:128:25", "gru:128:128:25"]


def _parse(config):
    parts = config.split(":")
    if len(parts) not in (3, 4) or parts[0] not in ("rnn", "gru", "lstm"):
        raise argparse.ArgumentTypeError(
            f"a configuration is cell:H:B[:n_batches], got {config!r}")
    cell, H, B = parts[0], int(parts[1]), int(parts[2])
    nb = int(parts[3]) if len(parts) == 4 else max(10, 4_000_000 // (B * H * H + 1))
    return cell, H, B, nb


def _time(tree, cell, H, B, nb, threads, dropout):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree),
               OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, cell, str(H), str(B), str(nb),
         str(threads), str(dropout)], env=env, capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(tree)))
    if out.returncode:
        raise SystemExit(f"{tree}: {out.stderr[-2000:]}")
    return float(out.stdout.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--configs", nargs="+", type=_parse,
                        default=[_parse(c) for c in DEFAULT_CONFIGS])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="the models' input dropout rate")
    args = parser.parse_args(argv)
    info = _peer.machine_info()
    print(f"CPU: {info.get('cpu', '?')}, {info.get('n_cpus', '?')} usable "
          f"CPUs; NumPy's BLAS: {', '.join(info.get('numpy_blas', [])) or '?'}")
    print(f"{args.repeat} alternations, ms per mini-batch (median)")
    print(f"{'config':<18} {'threads':>7} {'before':>9} {'after':>9} "
          f"{'before/after':>12}")
    for cell, H, B, nb in args.configs:
        for threads in args.threads:
            res = {"before": [], "after": []}
            for _ in range(args.repeat):
                for name in res:
                    res[name].append(_time(getattr(args, name), cell, H, B,
                                           nb, threads, args.dropout))
            b, a = (statistics.median(res[k]) for k in ("before", "after"))
            label = f"{cell}{H} b{B}"
            print(f"{label:<18} {threads:>7} {b:>9.3f} {a:>9.3f} "
                  f"{b / a:>12.3f}", flush=True)


if __name__ == "__main__":
    main()
