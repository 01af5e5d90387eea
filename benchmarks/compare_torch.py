#!/usr/bin/env python
"""Train and predict with seqclf and with PyTorch on MNIST rows, in one run.

Usage (from the repository root)::

    python benchmarks/compare_torch.py [--quick] [--threads 1 2]
                                       [--configs lstm128 gru2x256 ...]
                                       [--repeat N] [--min-time S]
                                       [--task {classify,regress}]
                                       [--tries 3] [--max-load 0.25]
                                       [--json PATH]

The same model is trained by both libraries: a stack of recurrent layers
(tanh RNN, GRU or LSTM) reading 28 steps x 28 features (synthetic MNIST rows,
float32, 10 classes), a dense head on the last layer's final state, softmax
cross-entropy, Adam with learning rate 1e-3, the same batch size.

* seqclf: ``RNNClassifier(cell, hidden, batch_size=B, max_iter=1,
  shuffle=True).fit(X, y)``: one epoch, timed from the call to its return
  (input validation, initialisation, shuffling, the head and the optimizer
  included).
* PyTorch: a hand-written loop over the same number of mini-batches:
  ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (``batch_first=True``) + ``nn.Linear``,
  ``CrossEntropyLoss``, ``torch.optim.Adam(lr=1e-3)``; each epoch draws a
  ``randperm``, and each step gathers the batch, zeroes the gradients, runs
  forward and backward, steps the optimizer and reads the loss
  (``loss.item()``).

``--task regress`` trains the regressor on the same rows instead, with one
numeric target (standard normal, float32): ``RNNRegressor`` (half the mean
squared error, as ``MLPRegressor``) against the same PyTorch loop with a
linear head of one output and ``0.5 * MSELoss()``; prediction is then
``predict`` against the module's forward (no softmax). Everything else is as
for the default ``--task classify``, targets included.

Measurements, each in a process of its own (the script re-runs itself with
``--worker``; ``OMP_NUM_THREADS`` set before the interpreter starts, BLAS on
one thread for seqclf, whose kernels call BLAS inside their own OpenMP
threads, ``torch.set_num_threads(n)`` for PyTorch):

* ``train``: training samples/s, an epoch of enough mini-batches to last
  about ``--min-time`` seconds, after warm-up epochs lasting as long (two
  threads reached full speed only after a few seconds here); median of
  ``--repeat`` epochs (each seqclf epoch is a ``fit`` of a new estimator).
* ``predict``: samples/s of ``predict_proba`` on 1,024 sequences at once
  (PyTorch: the module's forward and a softmax under ``torch.inference_mode``).
* ``latency``: microseconds of ``predict_proba`` on one sequence (a
  ``(1, 28, 28)`` float32 array; input validation included) and of the
  PyTorch module called on one sequence (forward and softmax, inference mode).
* ``memory`` (seqclf only): the peak increase of the resident set during one
  epoch's ``fit``, above what the process held before the call (``VmHWM``
  reset through ``/proc/self/clear_refs``; a tiny fit of another shape
  first loads what fit imports lazily and starts the thread pools), beside
  the allowance of the
  performance targets: twice the activations BPTT keeps for one batch (the
  kernels' caches, every layer and direction) plus one copy of X.

The same run measures NumPy's float32 matrix product (2048 x 2048 x 2048) at
1 and 2 BLAS threads. GFLOP/s counts 3 x the forward matrix FLOPs per sample
x samples/s, the forward matrix FLOPs per sample being
``28 * sum over layers of 2 * G * H * (F_in + H)``, G = 1, 3, 4 for the tanh
RNN, GRU and LSTM (the head not counted). ``% matmul`` compares that with
the 1-thread matmul on 1 thread and with twice the 1-thread matmul on 2
threads.

Each measurement also records the CPU that other processes used meanwhile
(``other load``, cores); above ``--max-load`` it is retried (``--tries``) and,
if the machine stays busy, flagged with ``*``. Compare the ratios of one run.
seqclf is imported from the installed package or, failing that, from this
checkout (after ``python setup.py build_ext --inplace``). Without PyTorch
(``pip install torch==2.13.0``) only seqclf is measured.
"""

import argparse
import gc
import math
import sys
import time
import warnings

import _peer
from _peer import fmt, median

N_STEPS = 28
N_FEATURES = 28
N_CLASSES = 10
N_GATES = _peer.cell_registry().N_GATES
PREDICT_BATCH = 1024
TASKS = ("classify", "regress")

# name: (cell, hidden sizes, batch size, training speed-up wanted over PyTorch,
# one for every thread count or a pair: 1 thread, 2 threads and more)
CONFIGS = {
    "rnn128": ("rnn", (128,), 128, 1.8),
    "gru128": ("gru", (128,), 128, 1.8),
    "lstm128": ("lstm", (128,), 128, 1.3),
    "gru2x256": ("gru", (256, 256), 64, 1.8),
    # 1.1 on 1 thread; parity on 2 (PyTorch is near the matmul there)
    "lstm2x256": ("lstm", (256, 256), 64, (1.1, 1.0)),
    "rnn31": ("rnn", (31,), 128, 4.0),
    "rnn32": ("rnn", (32,), 32, 2.5),
    "gru32": ("gru", (32,), 32, 2.5),
    "lstm32": ("lstm", (32,), 32, 1.3),
}
QUICK_CONFIGS = ("rnn31", "gru128", "lstm128", "lstm32")
# Targets on the share of matmul GFLOP/s (1 thread, 2 threads) and on the
# 2-thread speed-up apply to the GRU and LSTM configurations of 128 units
# and up (the speed-up to every configuration of 128 units and up).
MATMUL_SHARE = (0.80, 0.70)
SPEEDUP_2T = 1.8
PREDICT_RATIO = 1.5
# One sequence's predict_proba at most half the PyTorch module call's time.
LATENCY_RATIO = 2.0


def forward_flops_per_sample(cell, hidden):
    """Matrix FLOPs of one sample's forward pass through the recurrent layers."""
    flops, n_in = 0, N_FEATURES
    for h in hidden:
        flops += N_STEPS * 2 * N_GATES[cell] * h * (n_in + h)
        n_in = h
    return flops


def _label(name):
    cell, hidden, batch, _ = CONFIGS[name]
    kind = {"rnn": "tanh-RNN", "gru": "GRU", "lstm": "LSTM"}[cell]
    # Every configuration stacks layers of one size (nn.RNN/GRU/LSTM do).
    size = f"{len(hidden)}x{hidden[0]}" if len(hidden) > 1 else str(hidden[0])
    return f"{kind} {size} ({batch})"


# ---------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------


def _data(n_samples, seed, task="classify"):
    """Synthetic rows ``X`` and targets: labels in ``range(10)`` or, for
    ``task="regress"``, standard normal float32 values (the same ``X``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, N_STEPS, N_FEATURES), dtype=np.float32)
    if task == "regress":
        y = rng.standard_normal(n_samples, dtype=np.float32)
    else:
        y = rng.integers(0, N_CLASSES, size=n_samples)
    return X, y


def _n_batches(epoch, batch, min_time):
    """Mini-batches per timed epoch: about ``min_time`` s, at least 4."""
    tic = time.perf_counter()
    epoch(4)
    per_batch = (time.perf_counter() - tic) / 4
    return max(4, math.ceil(min_time / per_batch))


def _seqclf_worker(spec):
    import numpy as np
    from threadpoolctl import threadpool_limits

    seqclf, _ = _peer.import_seqclf()
    # BLAS on one thread for the worker's whole run, as a user sets it (and
    # as the worker's environment already does): fit and predict_proba take
    # seqclf's single_threaded_blas around their kernels themselves, and
    # each call then pays what it pays a user, which the latency of a
    # one-sequence predict_proba (tens of microseconds) includes. Holding
    # seqclf's limit here instead would skip part of that cost.
    threadpool_limits(limits=1, user_api="blas")
    cell, hidden, batch, _ = CONFIGS[spec["config"]]
    what = spec["what"]
    task = spec.get("task", "classify")
    estimator = seqclf.RNNRegressor if task == "regress" else seqclf.RNNClassifier

    def make(seed=0):
        return estimator(cell, hidden, batch_size=batch, max_iter=1,
                         random_state=seed)

    if what == "train":
        X, y = _data(64 * batch, spec["seed"], task)

        def epoch(n_batches):
            make().fit(X[:n_batches * batch], y[:n_batches * batch])

        n_batches = _n_batches(epoch, batch, spec["min_time"])
        X, y = _data(n_batches * batch, spec["seed"], task)
        times, _, load = _peer.time_per_call(lambda: make().fit(X, y),
                                             spec["repeat"], 0.0, spec["min_time"], 1)
        return {"seconds_per_sample": [t / len(X) for t in times],
                "n_samples": len(X), "other_load": load}

    if what == "memory":
        X, y = _data(spec["n_samples"], spec["seed"], task)
        from seqclf._cells import cache_shapes

        activations = 0
        itemsize = np.dtype(np.float32).itemsize
        for h in hidden:
            for shape in cache_shapes(cell, batch, N_STEPS, h).values():
                activations += math.prod(shape) * itemsize
        # A tiny fit of another shape loads what fit imports lazily and starts
        # the thread pools (memory the process keeps, not the epoch's demand)
        # without leaving blocks of the measured shapes to reuse.
        estimator("rnn", (3,), batch_size=4, max_iter=1).fit(
            X[:8, :5, :3], np.arange(8) % 2)
        gc.collect()
        clf = make()
        base = _rss_kib("VmRSS")
        reset = _reset_peak_rss()
        clf.fit(X, y)
        peak = _rss_kib("VmHWM") if reset else None
        return {"increase": None if peak is None else 1024 * (peak - base),
                "activations": activations, "X": X.nbytes, "n_samples": len(X)}

    X, y = _data(max(2 * batch, PREDICT_BATCH), spec["seed"], task)
    clf = make().fit(X[:2 * batch], y[:2 * batch])
    predict = clf.predict if task == "regress" else clf.predict_proba
    Xp = X[:PREDICT_BATCH] if what == "predict" else X[:1]
    times, _, load = _peer.time_per_call(lambda: predict(Xp),
                                         spec["repeat"], spec["min_time"],
                                         spec["warmup_time"])
    return {"seconds_per_sample": [t / len(Xp) for t in times],
            "other_load": load}


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss():
    """Reset the peak resident set (VmHWM) to the current one; False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _torch_worker(spec):
    import torch

    n_threads = spec["n_threads"]
    torch.set_num_threads(n_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(spec["seed"])
    cell, hidden, batch, _ = CONFIGS[spec["config"]]
    rnn_class = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    what = spec["what"]
    task = spec.get("task", "classify")
    regress = task == "regress"

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn_class(N_FEATURES, hidden[0], num_layers=len(hidden),
                                 batch_first=True)
            self.head = torch.nn.Linear(hidden[-1], 1 if regress else N_CLASSES)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    assert len(set(hidden)) == 1, "nn.RNN/GRU/LSTM stack layers of one size"

    def tensors(X, y):
        # Regression targets as a column, the shape of the head's output.
        X, y = torch.from_numpy(X), torch.from_numpy(y)
        return X, (y[:, None] if regress else y)

    X, y = tensors(*_data(64 * batch if what == "train" else PREDICT_BATCH,
                          spec["seed"], task))
    model = Net()

    if what == "train":
        if regress:
            mse = torch.nn.MSELoss()

            def loss_fn(output, target):    # MLPRegressor's (and seqclf's) loss
                return 0.5 * mse(output, target)
        else:
            loss_fn = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def epoch(n_batches, X=X, y=y):
            model.train()
            n = n_batches * batch
            order = torch.randperm(n)
            total = 0.0
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                xb, yb = X[idx], y[idx]
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
            return total / n

        n_batches = _n_batches(epoch, batch, spec["min_time"])
        Xt, yt = tensors(*_data(n_batches * batch, spec["seed"], task))
        times, _, load = _peer.time_per_call(
            lambda: epoch(n_batches, Xt, yt), spec["repeat"], 0.0, spec["min_time"], 1)
        return {"seconds_per_sample": [t / len(Xt) for t in times],
                "n_samples": len(Xt), "other_load": load,
                "torch_num_threads": torch.get_num_threads()}

    model.eval()
    Xp = X[:PREDICT_BATCH] if what == "predict" else X[:1]

    def predict():
        with torch.inference_mode():
            out = model(Xp)
            return out if regress else torch.softmax(out, dim=1)

    times, _, load = _peer.time_per_call(predict, spec["repeat"], spec["min_time"],
                                         spec["warmup_time"])
    return {"seconds_per_sample": [t / len(Xp) for t in times], "other_load": load,
            "torch_num_threads": torch.get_num_threads()}


def run_worker(spec):
    warnings.simplefilter("ignore")     # ConvergenceWarning after one epoch
    kind = spec["kind"]
    if kind == "info":
        result = _peer.machine_info()
    elif kind == "matmul":
        step, _ = _peer.matmul_step(spec["n_threads"], spec["seed"])
        times, number, load = _peer.time_per_call(step, spec["repeat"],
                                                  spec["min_time"], spec["warmup_time"])
        result = {"times": times, "number": number, "other_load": load}
    elif kind == "seqclf":
        result = _seqclf_worker(spec)
    elif kind == "torch":
        result = _torch_worker(spec)
    else:
        raise ValueError(f"unknown worker kind {kind!r}")
    _peer.report(result)


# ---------------------------------------------------------------------------
# Driver side
# ---------------------------------------------------------------------------


def _rate(res):
    """Samples per second from a worker's result (median of its samples)."""
    return None if res is None else 1.0 / median(res["seconds_per_sample"])


def _ratio(a, b):
    return a / b if a is not None and b is not None else None


def _check(value, target):
    if value is None or target is None:
        return ""
    return " ok" if value >= target else " MISS"


def _load_mark(loads, max_load):
    loads = [v for v in loads if v is not None]
    if not loads:
        return "-"
    worst = max(loads)
    return f"{worst:.2f}" + (" *" if worst > max_load else "")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Train and predict with seqclf and PyTorch on MNIST rows.")
    parser.add_argument("--quick", action="store_true",
                        help=f"configurations {', '.join(QUICK_CONFIGS)} unless "
                             "--configs is given, 3 samples of >= 1 s")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=None,
                        help="configurations (default: all)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed samples per measurement (default 5, 3 with "
                             "--quick)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per training sample (default 2, 1 with --quick); "
                             "prediction samples last a tenth of it")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory measurements")
    parser.add_argument("--task", choices=TASKS, default="classify",
                        help="classify: RNNClassifier vs CrossEntropyLoss on 10 "
                             "classes (default); regress: RNNRegressor vs a linear "
                             "head and 0.5 * MSELoss on one numeric target")
    _peer.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if _peer.run_if_worker(args, run_worker):
        return 0

    script = __file__
    configs = args.configs or (list(QUICK_CONFIGS) if args.quick else list(CONFIGS))
    repeat = args.repeat or (3 if args.quick else 5)
    min_time = args.min_time or (1.0 if args.quick else 2.0)
    threads = sorted(set(args.threads))
    timing = {"repeat": repeat, "min_time": min_time, "warmup_time": min_time / 4,
              "seed": args.seed}
    regress = args.task == "regress"
    # The task is named in the headings of a regression run; a classification
    # run prints what it always printed.
    task_note = ", regression (RNNRegressor)" if regress else ""
    predict_call = "predict" if regress else "predict_proba"

    info = _peer.spawn(script, {"kind": "info"}, 1, 1, args.timeout) or {}
    have_seqclf, have_torch = _peer.print_header(info)
    targets = ("one numeric target (RNNRegressor; PyTorch: linear head, 0.5 x MSELoss)"
               if regress else f"{N_CLASSES} classes")
    print(f"{N_STEPS} steps x {N_FEATURES} features, float32, {targets}; "
          f"median of {repeat}; one process per measurement", flush=True)

    matmul = _peer.measure_matmul(script, sorted(set(threads) | {1, 2}), args, timing)
    libraries = [lib for lib, ok in (("seqclf", have_seqclf), ("torch", have_torch))
                 if ok]
    whats = ("train", "predict", "latency")
    jobs = [(name, n, what, lib) for name in configs for n in threads
            for what in whats for lib in libraries]
    raw = {}
    for i, (name, n, what, lib) in enumerate(jobs, 1):
        spec = {"kind": lib, "config": name, "what": what, "n_threads": n,
                "task": args.task, **timing}
        if what != "train":
            spec["min_time"] = min_time / 10
        blas_threads = 1 if lib == "seqclf" else n
        res = _peer.measure(script, spec, n, blas_threads, args)
        raw[name, n, what, lib] = res
        if res is not None:
            rate = _rate(res)
            print(f"  [{i}/{len(jobs)}] {lib} {name} {what} {n}T: "
                  f"{rate:,.0f} samples/s "
                  f"(other load {fmt(res.get('other_load'), '.2f')}, attempt "
                  f"{res['attempts']})", file=sys.stderr, flush=True)
    memory = {}
    if have_seqclf and not args.no_memory:
        n_mem = max(threads)
        for name in configs:
            batch = CONFIGS[name][2]
            spec = {"kind": "seqclf", "config": name, "what": "memory",
                    "n_threads": n_mem, "n_samples": 64 * batch, "task": args.task,
                    **timing}
            memory[name] = _peer.spawn(script, spec, n_mem, 1, args.timeout)

    base_matmul = matmul.get(1, {}).get("gflops")
    rows = []
    for name in configs:
        cell, hidden, batch, target = CONFIGS[name]
        big = min(hidden) >= 128
        flops = 3 * forward_flops_per_sample(cell, hidden)
        for n in threads:
            r = {"config": name, "label": _label(name), "threads": n}
            for what in whats:
                for lib in ("seqclf", "torch"):
                    r[f"{what}_{lib}"] = _rate(raw.get((name, n, what, lib)))
                r[f"{what}_ratio"] = _ratio(r[f"{what}_seqclf"], r[f"{what}_torch"])
            r["loads"] = [(raw.get(k) or {}).get("other_load")
                          for k in raw if k[0] == name and k[1] == n]
            r["train_target"] = (target if not isinstance(target, tuple)
                                 else target[min(n, 2) - 1])
            for lib in ("seqclf", "torch"):
                rate = r[f"train_{lib}"]
                r[f"gflops_{lib}"] = None if rate is None else flops * rate / 1e9
            r["matmul_share"] = (
                None if r["gflops_seqclf"] is None or base_matmul is None
                else r["gflops_seqclf"] / (n * base_matmul))
            r["matmul_target"] = (MATMUL_SHARE[min(n, 2) - 1]
                                  if big and cell != "rnn" and n <= 2 else None)
            one = raw.get((name, threads[0], "train", "seqclf"))
            r["scaling"] = (_ratio(r["train_seqclf"], _rate(one))
                            if n != threads[0] else None)
            r["scaling_target"] = (SPEEDUP_2T if big and n == 2 and threads[0] == 1
                                   else None)
            rows.append(r)

    print()
    print(f"Training{task_note} (samples/s; ratio = seqclf / PyTorch, target in "
          "brackets; % matmul: of the 1-thread matmul x threads)")
    headers = ["config (batch)", "threads", "seqclf", "torch", "ratio",
               "seqclf GFLOP/s", "torch GFLOP/s", "% matmul", "nT/1T", "other load"]
    lines = []
    for r in rows:
        lines.append([
            r["label"], str(r["threads"]), fmt(r["train_seqclf"], ",.0f"),
            fmt(r["train_torch"], ",.0f"),
            fmt(r["train_ratio"], ".2f") + f" [{r['train_target']}]"
            + _check(r["train_ratio"], r["train_target"]),
            fmt(r["gflops_seqclf"], ".1f"), fmt(r["gflops_torch"], ".1f"),
            fmt(None if r["matmul_share"] is None else 100 * r["matmul_share"], ".0f")
            + ("" if r["matmul_target"] is None
               else f" [{100 * r['matmul_target']:.0f}]"
               + _check(r["matmul_share"], r["matmul_target"])),
            fmt(r["scaling"], ".2f") + ("" if r["scaling_target"] is None
                                        else f" [{r['scaling_target']}]"
                                        + _check(r["scaling"], r["scaling_target"])),
            _load_mark(r["loads"], args.max_load),
        ])
    _peer.print_table(headers, lines)

    print()
    print(f"Prediction{task_note} ({predict_call} on {PREDICT_BATCH:,} sequences, "
          "samples/s; latency of one sequence, microseconds; ratio = seqclf speed / "
          "PyTorch speed)")
    headers = ["config (batch)", "threads", "seqclf", "torch", "ratio", "seqclf us",
               "torch us", "ratio "]
    lines = []
    for r in rows:
        lat_s, lat_t = r["latency_seqclf"], r["latency_torch"]
        lines.append([
            r["label"], str(r["threads"]), fmt(r["predict_seqclf"], ",.0f"),
            fmt(r["predict_torch"], ",.0f"),
            fmt(r["predict_ratio"], ".2f") + f" [{PREDICT_RATIO}]"
            + _check(r["predict_ratio"], PREDICT_RATIO),
            fmt(None if lat_s is None else 1e6 / lat_s, ".0f"),
            fmt(None if lat_t is None else 1e6 / lat_t, ".0f"),
            fmt(r["latency_ratio"], ".2f") + f" [{LATENCY_RATIO}]"
            + _check(r["latency_ratio"], LATENCY_RATIO),
        ])
    _peer.print_table(headers, lines)

    if memory:
        print()
        print(f"Memory of one epoch's fit{task_note} on {max(threads)} thread(s) "
              "(MB): peak increase of the resident set; allowance = 2 x BPTT "
              "activations of a batch + X")
        headers = ["config (batch)", "samples", "X", "activations", "allowance",
                   "peak increase", "share"]
        lines = []
        for name, m in memory.items():
            if not m:
                continue
            allowance = 2 * m["activations"] + m["X"]
            inc = m["increase"]
            share = None if inc is None else inc / allowance
            lines.append([
                _label(name), f"{m['n_samples']:,}", f"{m['X'] / 1e6:.1f}",
                f"{m['activations'] / 1e6:.1f}", f"{allowance / 1e6:.1f}",
                fmt(None if inc is None else inc / 1e6, ".1f"),
                fmt(share, ".2f") + ("" if share is None else _check(1.0, share)),
            ])
        if lines:
            _peer.print_table(headers, lines)

    print()
    for n, m in sorted(matmul.items()):
        print(f"NumPy float32 matmul {_peer.MATMUL_SIZE}^3, {n} BLAS thread"
              f"{'s' if n > 1 else ' '}: {m['gflops']:6.1f} GFLOP/s")
    print("GFLOP/s = 3 x forward matrix FLOPs per sample x training samples/s; forward "
          "matrix FLOPs per sample =\n28 x sum over layers of 2 G H (F_in + H), "
          "G = 1/3/4 for rnn/gru/lstm. other load: CPU cores used by other\n"
          "processes while timing (the largest of the row's measurements); * marks "
          f"rows above {args.max_load}: "
          "re-run them.")

    if args.json:
        out = {"config": {"configs": configs, "threads": threads, "task": args.task,
                          **timing},
               "info": info, "matmul": {str(n): m for n, m in matmul.items()},
               "rows": rows, "memory": memory,
               "raw": [{"config": k[0], "threads": k[1], "what": k[2], "library": k[3],
                        "result": v} for k, v in raw.items()]}
        _peer.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
