#!/usr/bin/env python
"""Time a training epoch on token ids: embedding front vs. one-hot features.

Usage (from the repository root)::

    python benchmarks/time_embedding.py [--cell lstm] [--hidden 64]
        [--embedding-dim 32] [--vocab 100 1000] [--n-samples 4000]
        [--n-steps 40] [--batch 64] [--threads 1 2] [--repeat 3]

Data: ``--n-samples`` sequences of ``--n-steps`` random ids in
``[0, vocab)`` and 10 random classes (the time of an epoch does not depend
on the values). The same sequences are fed two ways:

* ``embedding``: ``RNNClassifier(cell, hidden, embedding_dim=...,
  vocab_size=vocab)`` on the 2-D integer array;
* ``one-hot``: the same classifier without embedding on the float32 array
  ``(n_samples, n_steps, vocab)`` with a single 1 per step (made once,
  before timing).

Each sample is ``fit(X, y)`` with ``max_iter=1`` timed from the call to its
return (validation, initialisation and optimizer included). Each thread
count runs in a process of its own (``OMP_NUM_THREADS`` set before the
interpreter starts); the script prints the median of ``--repeat`` samples
and the one-hot / embedding ratio.
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
    results = {}
    for V in args.vocab:
        ids = rng.integers(0, V, size=(args.n_samples, args.n_steps))
        y = rng.integers(0, 10, size=args.n_samples)
        onehot = np.zeros((args.n_samples, args.n_steps, V), dtype=np.float32)
        np.put_along_axis(onehot, ids[:, :, None], 1.0, axis=2)
        common = dict(cell=args.cell, hidden_layer_sizes=(args.hidden,),
                      batch_size=args.batch, max_iter=1)
        for name, X, extra in (
                ("embedding", ids, dict(embedding_dim=args.embedding_dim,
                                        vocab_size=V)),
                ("one-hot", onehot, {})):
            times = []
            for i in range(args.repeat):
                clf = RNNClassifier(random_state=i, **common, **extra)
                tic = time.perf_counter()
                clf.fit(X, y)
                times.append(time.perf_counter() - tic)
            results[f"{V} {name}"] = times
        del onehot
    _peer.report(results)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--embedding-dim", type=int, default=32)
    p.add_argument("--vocab", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--n-samples", type=int, default=4000)
    p.add_argument("--n-steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--timeout", type=float, default=3600,
                   help="seconds before a worker is abandoned")
    p.add_argument("--worker", metavar="SPEC", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if _peer.run_if_worker(args, worker):
        return None

    print(f"One epoch of RNNClassifier({args.cell!r}, ({args.hidden},), "
          f"batch_size={args.batch}) on {args.n_samples} sequences of "
          f"{args.n_steps} ids, float32, median of {args.repeat}")
    print(f"{'threads':>7} {'vocab':>6} {'embedding s':>12} {'one-hot s':>10} "
          f"{'one-hot/emb':>12}")
    for n in args.threads:
        res = _peer.run_options(__file__, args, n)
        for V in args.vocab:
            emb = statistics.median(res[f"{V} embedding"])
            hot = statistics.median(res[f"{V} one-hot"])
            print(f"{n:>7} {V:>6} {emb:>12.3f} {hot:>10.3f} {hot / emb:>12.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
