#!/usr/bin/env python
"""Time one training epoch of RNNClassifier at several thread counts.

Usage (from the repository root)::

    python benchmarks/time_epoch.py [--cell lstm] [--hidden 128] [--batch 128]
                                    [--n-samples 60000] [--threads 1 2]
                                    [--repeat 3] [--dtype float32]

Data: ``--n-samples`` synthetic MNIST-shaped samples (28 steps x 28
features, uniform in [0, 1], float32 unless ``--dtype float64``) with 10
random classes; the time of an epoch does not depend on the values.

Each sample is ``RNNClassifier(cell, hidden, batch_size=batch,
max_iter=1).fit(X, y)`` timed from the call to its return, i.e. one epoch
with the input validation, the initialisation and the optimizer included.
Each thread count runs in a process of its own (``OMP_NUM_THREADS`` set
before the interpreter starts); the script prints the median of
``--repeat`` samples, the samples/s and the speed-up over the first thread
count.
"""

import argparse
import statistics
import time

import _peer


def worker(spec):
    import numpy as np

    from seqclf import RNNClassifier

    args = argparse.Namespace(**spec)
    rng = np.random.default_rng(0)
    X = rng.random((args.n_samples, 28, 28), dtype=np.float64).astype(args.dtype)
    y = rng.integers(0, 10, size=args.n_samples)
    hidden = tuple(args.hidden)
    times = []
    for i in range(args.repeat):
        clf = RNNClassifier(args.cell, hidden, batch_size=args.batch, max_iter=1,
                            random_state=i)
        tic = time.perf_counter()
        clf.fit(X, y)
        times.append(time.perf_counter() - tic)
    _peer.report(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, nargs="+", default=[128])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--n-samples", type=int, default=60000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--timeout", type=float, default=3600,
                   help="seconds before a worker is abandoned")
    p.add_argument("--worker", metavar="SPEC", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if _peer.run_if_worker(args, worker):
        return None

    print(f"RNNClassifier({args.cell!r}, {tuple(args.hidden)}, batch_size="
          f"{args.batch}, max_iter=1).fit on {args.n_samples} x 28 x 28 "
          f"{args.dtype}, median of {args.repeat}")
    print(f"{'threads':>7} {'epoch s':>9} {'samples/s':>10} {'speed-up':>9}")
    base = None
    for n in args.threads:
        t = statistics.median(_peer.run_options(__file__, args, n))
        base = base or t
        print(f"{n:>7} {t:>9.2f} {args.n_samples / t:>10.0f} {base / t:>9.2f}",
              flush=True)


if __name__ == "__main__":
    main()
