#!/usr/bin/env python
"""
Training on data larger than the memory allowed: an on-disk np.memmap, block by block.
======================================================================================

The sequences are written to a raw float32 file (``np.memmap``), rows of
``n_steps * n_features`` values, step-major, chunk by chunk so that making
them takes little memory either; the label of a sequence is the sign of its
first step's first feature plus its last step's second. A Dask array reads
the file block by block (each block a task that opens the file and copies
its rows), and ``dask_ml.wrappers.Incremental(RNNClassifier(n_steps=...))``
trains on it: one ``partial_fit`` per block, one pass over the block in
mini-batches, the model and its optimizer's state handed from block to
block.

The training runs in one Dask worker process (one thread) whose
``memory_limit`` is several times smaller than the data: Dask's nanny
restarts a worker that passes 95% of it, and the training would then fail.
The script reports the data's size, the limit, and the peak resident set
size (Linux's ``VmHWM``) of the worker and of this process,
with the worker's resident size before training (the interpreter, NumPy,
scikit-learn, Dask and seqclf loaded), and the accuracy on held-out
sequences kept in memory.

Usage (from the repository root; needs ``pip install "seqclf[dask]"``)::

    python examples/dask_out_of_core.py              # 3 GiB, worker capped at 768 MiB
    python examples/dask_out_of_core.py --data-mib 64 --memory-limit-mib 512   # quick

Options: ``--data-mib`` (size of the file), ``--memory-limit-mib`` (the
worker's ``memory_limit``), ``--block-mib`` (rows per block, as MiB),
``--n-steps``, ``--n-features``, ``--hidden``, ``--epochs``,
``--n-threads`` (kernel threads of the worker's fits; default 2), ``--dir``
(where the file is written; default a temporary folder, removed after),
``--json``. On several machines the file must be where every worker can
read it (a shared file system), or the blocks come from a store made for
it such as zarr; the rest is the same.
"""

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

MiB = 1 << 20


def label(rows, n_features):
    """The label of each row: first step's first feature + last step's second."""
    return (rows[:, 0] + rows[:, -n_features + 1] > 0).astype(np.int8)


def write_data(path, n_rows, width, n_features, seed=0):
    """Random rows in a raw float32 file (what ``np.memmap`` reads), 16 MiB
    at a time, and their labels in memory (one byte a row).

    Written with plain writes: pages written through a map would count in
    this process's resident size until it is closed.
    """
    chunk_rows = max(1, 16 * MiB // (4 * width))
    y = np.empty(n_rows, dtype=np.int8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            block = rng.standard_normal((stop - start, width), dtype=np.float32)
            block.tofile(f)
            y[start:stop] = label(block, n_features)
    return y


def read_rows(path, shape, start, stop):
    """Rows ``start:stop`` of the file, copied out of a map of it."""
    X = np.memmap(path, dtype=np.float32, mode="r", shape=shape)
    rows = np.array(X[start:stop])
    del X
    return rows


def peak_rss():
    """This process's peak resident set size, in bytes.

    Linux's VmHWM, the high-water mark of this process's own memory:
    getrusage's ru_maxrss would also count the parent's resident size at
    the fork that started a worker, which it keeps across exec.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_now():
    import psutil
    return psutil.Process().memory_info().rss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data-mib", type=int, default=3072)
    parser.add_argument("--memory-limit-mib", type=int, default=768)
    parser.add_argument("--block-mib", type=int, default=16)
    parser.add_argument("--n-steps", type=int, default=100)
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--n-threads", type=int, default=1)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    from dask_ml.wrappers import Incremental

    from seqclf import RNNClassifier

    T, F = args.n_steps, args.n_features
    width = T * F
    row_bytes = width * 4
    n_rows = args.data_mib * MiB // row_bytes
    block_rows = max(256, args.block_mib * MiB // row_bytes // 256 * 256)
    folder = args.dir or tempfile.mkdtemp(prefix="seqclf-ooc-")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "sequences.f32")
    try:
        tic = time.perf_counter()
        y = write_data(path, n_rows, width, F)
        data_bytes = os.path.getsize(path)
        print(f"{n_rows:,} sequences of {T} steps x {F} features: "
              f"{data_bytes / MiB:,.0f} MiB in {path} (written in "
              f"{time.perf_counter() - tic:.1f} s)", flush=True)

        shape = (n_rows, width)
        starts = range(0, n_rows, block_rows)
        X = da.concatenate([
            da.from_delayed(
                dask.delayed(read_rows)(path, shape, s, min(s + block_rows, n_rows)),
                shape=(min(s + block_rows, n_rows) - s, width), dtype=np.float32)
            for s in starts])
        y_blocks = da.from_array(y, chunks=(X.chunks[0],))
        X_test = np.random.default_rng(1).standard_normal((4096, width),
                                                          dtype=np.float32)
        y_test = label(X_test, F)

        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          memory_limit=f"{args.memory_limit_mib}MiB",
                          dashboard_address=":0",
                          silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            client.run(lambda: __import__("seqclf"))
            (before,) = client.run(rss_now).values()
            est = RNNClassifier("gru", (args.hidden,), n_steps=T,
                                batch_size=256, learning_rate_init=0.01,
                                random_state=0, n_threads=args.n_threads)
            inc = Incremental(est, random_state=0)
            tic = time.perf_counter()
            for epoch in range(args.epochs):
                if epoch == 0:
                    inc.fit(X, y_blocks, classes=[0, 1])
                else:
                    inc.partial_fit(X, y_blocks)
                print(f"epoch {epoch + 1}: {len(starts)} blocks of "
                      f"{block_rows:,} rows, {time.perf_counter() - tic:.1f} s "
                      f"so far, last block's loss {inc.estimator_.loss_:.4f}",
                      flush=True)
            seconds = time.perf_counter() - tic
            (worker_peak,) = client.run(peak_rss).values()
        model = inc.estimator_
        accuracy = float(model.score(X_test, y_test))
        result = {
            "data_bytes": data_bytes, "n_sequences": n_rows, "n_steps": T,
            "n_features": F, "block_rows": block_rows, "blocks": len(starts),
            "memory_limit_bytes": args.memory_limit_mib * MiB,
            "worker_rss_before_bytes": before,
            "worker_peak_rss_bytes": worker_peak,
            "client_peak_rss_bytes": peak_rss(),
            "epochs": args.epochs, "seconds": round(seconds, 1),
            "sequences_per_second": round(args.epochs * n_rows / seconds),
            "n_threads": model.n_threads_, "partial_fit_calls": model.n_iter_,
            "test_accuracy": accuracy,
        }
        print(f"trained in {seconds:.1f} s ({result['sequences_per_second']:,} "
              f"sequences/s, {model.n_threads_} kernel threads), "
              f"{model.n_iter_} partial_fit calls; held-out accuracy "
              f"{accuracy:.4f}")
        print(f"data {data_bytes / MiB:,.0f} MiB, "
              f"{data_bytes / (args.memory_limit_mib * MiB):.1f}x the worker's "
              f"memory_limit of {args.memory_limit_mib:,} MiB")
        print(f"worker peak RSS {worker_peak / MiB:,.0f} MiB "
              f"({before / MiB:,.0f} MiB before training; the data is "
              f"{data_bytes / worker_peak:.1f}x the peak); this process's "
              f"peak RSS {result['client_peak_rss_bytes'] / MiB:,.0f} MiB")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
