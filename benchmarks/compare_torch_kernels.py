#!/usr/bin/env python
"""Time seqclf's recurrent kernels against PyTorch's, in one run.

Usage (from the repository root)::

    python benchmarks/compare_torch_kernels.py [--quick] [--repeat N] [--threads 1 2]
                                       [--hidden 32 128 256] [--cells rnn gru lstm]
                                       [--batch 128] [--tries 3] [--max-load 0.25]
                                       [--max-wait 30] [--json PATH]

``--quick`` takes 3 shorter samples per measurement and, unless ``--hidden``
is given, hidden sizes 32 and 128 only (about a minute on 2 cores); the
default takes 7 samples for hidden sizes 32, 128 and 256.

What is timed, per batch of ``--batch`` sequences of 28 steps x 28 features
(synthetic MNIST rows, all full length, float32):

* seqclf: ``<cell>_forward`` (training forward, filling the cache) then
  ``<cell>_backward`` from a gradient on the last state (``dh_last``), with
  every parameter gradient and no ``dX`` (as for a first layer).
* PyTorch: ``nn.RNN`` (tanh), ``nn.GRU`` or ``nn.LSTM`` with
  ``batch_first=True``: the forward pass, then the backward pass of
  ``(h_last * g).sum()`` for a fixed random ``g``, i.e. from the final state.
  The input does not require a gradient; parameter gradients are reset to
  ``None`` before each step, as ``optimizer.zero_grad()`` does.

Each measurement runs in a process of its own (this script re-runs itself
with ``--worker``) so that the OpenMP, BLAS and PyTorch thread pools of one
measurement cannot disturb another. A worker sets ``OMP_NUM_THREADS`` before
the interpreter starts, then ``torch.set_num_threads(n)`` (PyTorch) or passes
``n_threads=n`` to the kernels with BLAS limited to one thread (seqclf's
``single_threaded_blas``; the kernels call single-threaded BLAS inside their
own OpenMP threads). It warms up, then takes ``--repeat`` samples, each timing enough
batches to last at least ``--min-time`` seconds, and reports the median time
per batch. The seqclf and PyTorch measurements of a configuration run back to
back. Each worker also records how much CPU the rest of the machine used
while it was timing (``other load``, in cores, from ``/proc/stat``); above
``--max-load`` the measurement is retried (``--tries``) and, if the machine
stays busy, flagged with ``*`` in the table. Before each attempt the script
waits, up to ``--max-wait`` seconds, for the machine to be that quiet. The
same run also measures NumPy's float32 matrix product at 2048 x 2048 x 2048
with 1 and 2 BLAS threads: the machine's practical ceiling.

Columns of the table:

* ``seqclf ms``, ``torch ms``: median milliseconds per batch (forward +
  backward);
* ``torch/seqclf``: ratio of the two times; above 1 means seqclf is faster;
* ``GFLOP/s``: 3 x the forward matrix FLOPs per sample x samples per second,
  where the forward matrix FLOPs per sample are
  ``n_steps * 2 * G * H * (F + H)`` with G = 1, 3, 4 for rnn, gru, lstm
  (the backward pass counted as twice the forward);
* ``nT/1T``: throughput with n threads over throughput with 1 thread, for the
  same library, cell and hidden size (shown on the rows with n > 1);
* ``other load``: CPU cores used by other processes while timing, the larger
  of the seqclf and PyTorch measurements of the row.

The machine may be shared and noisy: compare ratios measured in one run.

seqclf is imported from the installed package or, failing that, from this
checkout (after an in-place build, ``python setup.py build_ext --inplace``).
Without PyTorch (``pip install torch==2.13.0``) only seqclf is timed, and
without built kernels only PyTorch.
"""

import argparse
import math
import sys

import _peer
from _peer import MATMUL_SIZE, fmt, median

CELLS = tuple(_peer.cell_registry().CELLS)
N_GATES = _peer.cell_registry().N_GATES
N_STEPS = 28
N_FEATURES = 28


# ---------------------------------------------------------------------------
# Worker side: one measurement per process
# ---------------------------------------------------------------------------





def _seqclf_step(cell, n_hidden, n_threads, batch, seed):
    import numpy as np
    from threadpoolctl import threadpool_info

    seqclf, layers = _peer.import_seqclf()
    from seqclf._cells import cache_shapes, param_shapes
    from seqclf._openmp_helpers import single_threaded_blas

    # seqclf's BLAS limit, held for the lifetime of the worker.
    single_threaded_blas().acquire()

    dtype = np.float32
    rng = np.random.default_rng(seed)
    X = rng.random((batch, N_STEPS, N_FEATURES)).astype(dtype)
    lengths = np.full(batch, N_STEPS, dtype=np.intp)
    bound = 1.0 / math.sqrt(n_hidden)
    shapes = param_shapes(cell, N_FEATURES, n_hidden)
    params = {k: rng.uniform(-bound, bound, s).astype(dtype) for k, s in shapes.items()}
    # Every output preallocated, as the network does batch after batch.
    forward_out = {
        k: np.zeros(s, dtype=dtype)
        for k, s in cache_shapes(cell, batch, N_STEPS, n_hidden).items()
    }
    forward_out["h_last"] = np.zeros((batch, n_hidden), dtype=dtype)
    backward_out = {"d" + k: np.zeros(s, dtype=dtype) for k, s in shapes.items()}
    dh_last = rng.standard_normal((batch, n_hidden)).astype(dtype)

    def step():
        _, _, cache = layers.forward(cell, X, lengths, params, out=forward_out,
                                     n_threads=n_threads)
        # No dX: not needed for a first layer.
        layers.backward(cell, X, lengths, params, cache, dh_last, None,
                        compute_dX=False, out=backward_out, n_threads=n_threads)

    info = {
        "seqclf_file": seqclf.__file__,
        "blas_num_threads": sorted(
            {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        ),
    }
    return step, info


def _torch_step(cell, n_hidden, n_threads, batch, seed):
    import torch

    torch.set_num_threads(n_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(seed)
    if cell == "rnn":
        model = torch.nn.RNN(N_FEATURES, n_hidden, nonlinearity="tanh",
                             batch_first=True)
    elif cell == "gru":
        model = torch.nn.GRU(N_FEATURES, n_hidden, batch_first=True)
    else:
        model = torch.nn.LSTM(N_FEATURES, n_hidden, batch_first=True)
    x = torch.rand(batch, N_STEPS, N_FEATURES)  # does not require grad
    g = torch.randn(1, batch, n_hidden)
    parameters = list(model.parameters())

    def step():
        for p in parameters:
            p.grad = None
        _, state = model(x)
        h_last = state[0] if cell == "lstm" else state
        (h_last * g).sum().backward()

    info = {"torch": torch.__version__, "torch_num_threads": torch.get_num_threads()}
    return step, info




def run_worker(spec):
    kind = spec["kind"]
    if kind == "info":
        result = _peer.machine_info()
    else:
        if kind == "seqclf":
            step, info = _seqclf_step(
                spec["cell"], spec["n_hidden"], spec["n_threads"], spec["batch"],
                spec["seed"],
            )
        elif kind == "torch":
            step, info = _torch_step(
                spec["cell"], spec["n_hidden"], spec["n_threads"], spec["batch"],
                spec["seed"],
            )
        elif kind == "matmul":
            step, info = _peer.matmul_step(spec["n_threads"], spec["seed"])
        else:
            raise ValueError(f"unknown worker kind {kind!r}")
        times, number, other_load = _peer.time_per_call(
            step, spec["repeat"], spec["min_time"], spec["warmup_time"]
        )
        result = {"times": times, "number": number, "other_load": other_load, **info}
    _peer.report(result)


# ---------------------------------------------------------------------------
# Driver side
# ---------------------------------------------------------------------------


def forward_flops_per_sample(cell, n_hidden, n_steps=N_STEPS, n_features=N_FEATURES):
    """Matrix FLOPs of one sample's forward pass: n_steps * 2 * G * H * (F + H)."""
    return n_steps * 2 * N_GATES[cell] * n_hidden * (n_features + n_hidden)


def gflops(cell, n_hidden, batch, seconds_per_batch):
    """3 x forward matrix FLOPs per sample x samples per second, in GFLOP/s."""
    flops = 3 * forward_flops_per_sample(cell, n_hidden) * batch
    return flops / seconds_per_batch / 1e9


def _print_table(rows, base_threads, max_load):
    scale = f"nT/{base_threads}T"
    headers = [
        "cell", "H", "threads", "seqclf ms", "torch ms", "torch/seqclf",
        "seqclf GFLOP/s", "torch GFLOP/s", f"seqclf {scale}", f"torch {scale}",
        "other load",
    ]
    lines = []
    for r in rows:
        load = r["other_load"]
        lines.append([
            r["cell"], str(r["n_hidden"]), str(r["n_threads"]),
            fmt(r["seqclf_ms"], ".3f"), fmt(r["torch_ms"], ".3f"),
            fmt(r["torch_over_seqclf"], ".2f"),
            fmt(r["seqclf_gflops"], ".1f"), fmt(r["torch_gflops"], ".1f"),
            fmt(r["seqclf_scaling"], ".2f"), fmt(r["torch_scaling"], ".2f"),
            fmt(load, ".2f") + (" *" if load is not None and load > max_load else "  "),
        ])
    _peer.print_table(headers, lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Time seqclf's kernels against PyTorch (forward + backward "
                    "per batch).",
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and shorter samples; hidden sizes 32 and "
                             "128 unless --hidden is given")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed samples per measurement (default 7, 3 with "
                             "--quick)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hidden", type=int, nargs="+", default=None,
                        help="hidden sizes (default 32 128 256)")
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--min-time", type=float, default=None,
                        help="minimum seconds per timed sample (default 0.2, 0.05 "
                             "with --quick)")
    _peer.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if _peer.run_if_worker(args, run_worker):
        return 0

    repeat = args.repeat or (3 if args.quick else 7)
    min_time = args.min_time or (0.05 if args.quick else 0.2)
    warmup_time = 0.1 if args.quick else 0.5
    hidden = args.hidden or ([32, 128] if args.quick else [32, 128, 256])
    threads = sorted(set(args.threads))
    base_threads = threads[0]
    args.tries = max(1, args.tries)
    timing = {"repeat": repeat, "min_time": min_time, "warmup_time": warmup_time,
              "seed": args.seed}

    script = __file__
    info = _peer.spawn(script, {"kind": "info"}, 1, 1, args.timeout) or {}
    have_seqclf, have_torch = _peer.print_header(info)
    print(f"batch {args.batch} x {N_STEPS} steps x {N_FEATURES} features, float32; "
          f"median of {repeat} samples of >= {min_time} s; one process per measurement",
          flush=True)

    # The ceiling: NumPy float32 matmul with 1 and 2 BLAS threads.
    matmul = _peer.measure_matmul(script, sorted(set(threads) | {1, 2}), args, timing)

    libraries = [lib for lib, ok in (("seqclf", have_seqclf), ("torch", have_torch))
                 if ok]
    configs = [(c, h, n) for c in args.cells for h in hidden for n in threads]
    n_jobs = len(configs) * len(libraries)
    raw = {}
    job = 0
    # The seqclf and torch measurements of one configuration run back to back.
    for cell, n_hidden, n_threads in configs:
        for lib in libraries:
            job += 1
            spec = {"kind": lib, "cell": cell, "n_hidden": n_hidden,
                    "n_threads": n_threads, "batch": args.batch, **timing}
            # seqclf calls BLAS inside its OpenMP threads: one BLAS thread.
            blas_threads = 1 if lib == "seqclf" else n_threads
            res = _peer.measure(script, spec, n_threads, blas_threads, args)
            raw[lib, cell, n_hidden, n_threads] = res
            if res is not None:
                ms = 1e3 * median(res["times"])
                print(f"  [{job}/{n_jobs}] {lib} {cell} H={n_hidden} {n_threads}T: "
                      f"{ms:.3f} ms/batch "
                      f"(other load {fmt(res.get('other_load'), '.2f')}, "
                      f"attempt {res['attempts']})", file=sys.stderr)

    rows = []
    for cell, n_hidden, n_threads in configs:
        row = {"cell": cell, "n_hidden": n_hidden, "n_threads": n_threads}
        loads = []
        for lib in ("seqclf", "torch"):
            res = raw.get((lib, cell, n_hidden, n_threads))
            base = raw.get((lib, cell, n_hidden, base_threads))
            t = median(res["times"]) if res else None
            row[f"{lib}_ms"] = 1e3 * t if t else None
            row[f"{lib}_gflops"] = gflops(cell, n_hidden, args.batch, t) if t else None
            row[f"{lib}_scaling"] = (
                median(base["times"]) / t
                if t and base and n_threads != base_threads else None
            )
            row[f"{lib}_raw"] = res
            if res and res.get("other_load") is not None:
                loads.append(res["other_load"])
        row["torch_over_seqclf"] = (
            row["torch_ms"] / row["seqclf_ms"]
            if row["torch_ms"] and row["seqclf_ms"] else None
        )
        row["other_load"] = max(loads) if loads else None
        rows.append(row)

    print()
    _print_table(rows, base_threads, args.max_load)
    print()
    for n, m in sorted(matmul.items()):
        print(f"NumPy float32 matmul {MATMUL_SIZE}x{MATMUL_SIZE}x{MATMUL_SIZE}, "
              f"{n} BLAS thread{'s' if n > 1 else ' '}: {m['gflops']:6.1f} GFLOP/s")
    if 1 in matmul and 2 in matmul:
        print(f"NumPy float32 matmul 2T/1T throughput: "
              f"{matmul[2]['gflops'] / matmul[1]['gflops']:.2f}")
    print()
    print("torch/seqclf > 1: seqclf is faster. GFLOP/s = 3 x forward matrix FLOPs "
          "per sample x samples/s,\nforward matrix FLOPs per sample = "
          "n_steps * 2 * G * H * (F + H), G = 1/3/4 for rnn/gru/lstm.\n"
          f"nT/{base_threads}T: throughput with n threads over throughput with "
          f"{base_threads}. other load: CPU cores used by other processes\n"
          "while timing (the larger of the two measurements); * marks rows above "
          f"{args.max_load} "
          "after retries: re-run them.")

    if args.json:
        out = {
            "config": {"batch": args.batch, "n_steps": N_STEPS,
                       "n_features": N_FEATURES,
                       "dtype": "float32", "cells": args.cells, "hidden": hidden,
                       "threads": threads, "tries": args.tries,
                       "max_load": args.max_load,
                       "max_wait": args.max_wait,
                       **timing},
            "info": info,
            "matmul": {str(n): m for n, m in matmul.items()},
            "results": rows,
        }
        _peer.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
