#!/usr/bin/env python
"""Train seqclf and PyTorch on long sequences: time per step against length.

Usage (from the repository root)::

    python benchmarks/compare_torch_long.py [--quick] [--lengths 128 256 1024]
                                            [--cells gru lstm] [--threads 1 2]
                                            [--modes fixed variable]
                                            [--flush-denormal] [--repeat N]
                                            [--n-samples 1024] [--json PATH]

On long sequences the gradients that backpropagation through time carries
back decay towards zero and become subnormal floats, which many CPUs handle
in slow microcode; the time of a step then grows with the sequence length.
This script trains the same one-layer model with both libraries at several
lengths and reports the **time per step**, epoch time / (N x T), in
nanoseconds: flat in T when subnormals cost nothing.

The model: one GRU or LSTM layer of 64 units reading 8 features per step
(random float32, uniform in [0, 1)), a dense head on the final state, 10
random classes, softmax cross-entropy, Adam with learning rate 1e-3, batch
64, one epoch over N = 1,024 sequences.

* ``fixed``: every sequence has T steps.
* ``variable``: lengths uniform in [T/4, T]. seqclf gets a ragged list of
  ``(length, 8)`` arrays. PyTorch runs twice: ``padded``, the batch padded
  after the data (to the batch's longest sequence) and the output read at
  each sequence's last valid step, and ``packed``, through
  ``pack_padded_sequence`` (the final state ``h_n``). With fixed lengths
  PyTorch runs padded only and reads the last step.

The time per step divides by N x T in both modes, so that a variable-length
epoch (about 5/8 of the steps) reads as cheaper per nominal step.

* seqclf: ``RNNClassifier(cell, (64,), batch_size=64, max_iter=1).fit(X, y)``
  on a fresh estimator, timed from the call to its return.
* PyTorch: a hand-written loop as in ``compare_torch.py``
  (``nn.GRU``/``nn.LSTM``, ``batch_first=True``, ``nn.Linear``,
  ``CrossEntropyLoss``, ``Adam(lr=1e-3)``, a ``randperm`` per epoch,
  ``loss.item()`` per step), a fresh model and optimizer per epoch.

Each measurement runs in a process of its own (see ``_peer.py``): a warm-up
fit on two batches, then ``--repeat`` epochs; the median is reported.
``--flush-denormal`` also measures both libraries with
``torch.set_flush_denormal(True)`` called first (flush-to-zero and
denormals-are-zero set for the process; OpenMP threads inherit them), which
shows what subnormals cost each one; it needs PyTorch also for seqclf.

Targets (1 thread), printed as ok/MISS:

(a) GRU-64 and LSTM-64, fixed length: time per step at T = 1,024 at most
    1.5x that at T = 128;
(b) seqclf at least 1.5x faster than PyTorch padded at T = 1,024 (fixed and
    variable length, PyTorch without the flags).

Without PyTorch (``pip install torch==2.13.0``) only seqclf is measured.
"""

import argparse
import sys
import warnings

import _peer
from _peer import fmt, median

N_FEATURES = 8
N_CLASSES = 10
HIDDEN = 64
BATCH = 64
N_SAMPLES = 1024
LENGTHS = (128, 256, 1024)
QUICK_LENGTHS = (32, 128)
QUICK_N_SAMPLES = 128
WARMUP_BATCHES = 2
# Target (a): time per step at the longest over the shortest length.
GROWTH_LENGTHS = (128, 1024)
GROWTH_TARGET = 1.5
# Target (b): PyTorch padded over seqclf, time per step, at this length.
SPEEDUP_LENGTH = 1024
SPEEDUP_TARGET = 1.5


# ---------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------


def _data(n_samples, n_steps, variable, seed):
    """Padded ``X (n, T, 8)`` float32, ``lengths (n,)`` and labels ``y``.

    With ``variable`` the lengths are uniform in ``[T // 4, T]`` and the
    steps past each length are zero; else every length is ``T``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, n_steps, N_FEATURES), dtype=np.float32)
    if variable:
        lengths = rng.integers(max(1, n_steps // 4), n_steps + 1, size=n_samples)
        X[np.arange(n_steps)[None, :] >= lengths[:, None]] = 0
    else:
        lengths = np.full(n_samples, n_steps)
    y = rng.integers(0, N_CLASSES, size=n_samples)
    return X, lengths, y


def _flush_denormal(spec):
    """Set FTZ/DAZ through PyTorch when asked; what it returned, else None."""
    if not spec.get("flush_denormal"):
        return None
    import torch

    return bool(torch.set_flush_denormal(True))


def _seqclf_worker(spec):
    flushed = _flush_denormal(spec)
    seqclf, _ = _peer.import_seqclf()
    from seqclf._openmp_helpers import single_threaded_blas

    # seqclf's BLAS limit for the worker's lifetime (never released): fit
    # takes it itself, this covers the data preparation between fits.
    single_threaded_blas().acquire()
    X, lengths, y = _data(spec["n_samples"], spec["n_steps"], spec["variable"],
                          spec["seed"])
    # Ragged lists are what users pass for sequences of different lengths.
    Xfit = [x[:n] for x, n in zip(X, lengths)] if spec["variable"] else X

    def fit(n=None):
        clf = seqclf.RNNClassifier(spec["cell"], (HIDDEN,), batch_size=BATCH,
                                   max_iter=1, random_state=spec["seed"])
        clf.fit(Xfit[:n], y[:n])

    fit(WARMUP_BATCHES * BATCH)
    times, _, load = _peer.time_per_call(fit, spec["repeat"], 0.0, 0.0, 0)
    return {"epoch_seconds": times, "other_load": load, "flushed": flushed}


def _torch_worker(spec):
    import torch

    flushed = _flush_denormal(spec)
    torch.set_num_threads(spec["n_threads"])
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    rnn_class = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[spec["cell"]]
    packed = spec["input"] == "packed"
    variable = spec["variable"]
    Xn, ln, yn = _data(spec["n_samples"], spec["n_steps"], variable, spec["seed"])
    X, lengths, y = torch.from_numpy(Xn), torch.from_numpy(ln), torch.from_numpy(yn)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn_class(N_FEATURES, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, N_CLASSES)

        def forward(self, x, lb):
            if packed:
                seq = torch.nn.utils.rnn.pack_padded_sequence(
                    x, lb, batch_first=True, enforce_sorted=False)
                _, h_n = self.rnn(seq)
                if isinstance(h_n, tuple):          # LSTM: (h_n, c_n)
                    h_n = h_n[0]
                return self.head(h_n[-1])
            out, _ = self.rnn(x)
            if not variable:
                return self.head(out[:, -1])
            return self.head(out[torch.arange(len(lb)), lb - 1])

    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(n=None):
        n = len(X) if n is None else min(n, len(X))
        torch.manual_seed(spec["seed"])
        model = Net()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, BATCH):
            idx = order[start:start + BATCH]
            lb = lengths[idx]
            # As seqclf does: run only as many steps as the longest sequence.
            xb, yb = X[idx, :int(lb.max())], y[idx]
            optimizer.zero_grad()
            loss = loss_fn(model(xb, lb), yb)
            loss.backward()
            optimizer.step()
            loss.item()

    epoch(WARMUP_BATCHES * BATCH)
    times, _, load = _peer.time_per_call(epoch, spec["repeat"], 0.0, 0.0, 0)
    return {"epoch_seconds": times, "other_load": load, "flushed": flushed,
            "torch_num_threads": torch.get_num_threads()}


def run_worker(spec):
    warnings.simplefilter("ignore")     # ConvergenceWarning after one epoch
    kind = spec["kind"]
    if kind == "info":
        result = _peer.machine_info()
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

# Columns of the table: (library, input, flush-denormal).
PEERS = [("seqclf", "ragged", False), ("seqclf", "ragged", True),
         ("torch", "padded", False), ("torch", "padded", True),
         ("torch", "packed", False), ("torch", "packed", True)]


def _peer_label(lib, inp, flush):
    name = "seqclf" if lib == "seqclf" else f"torch {inp}"
    return name + (" FTZ" if flush else "")


def _ns_per_step(res, n_samples, n_steps):
    if res is None:
        return None
    return 1e9 * median(res["epoch_seconds"]) / (n_samples * n_steps)


def _check(ok):
    return "" if ok is None else (" ok" if ok else " MISS")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Time per step of seqclf and PyTorch training on long sequences.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: GRU, lengths "
                             f"{' '.join(map(str, QUICK_LENGTHS))}, "
                             f"{QUICK_N_SAMPLES} sequences, 1 repeat (unless given)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="sequence lengths T (default "
                             f"{' '.join(map(str, LENGTHS))})")
    parser.add_argument("--cells", nargs="+", choices=["gru", "lstm"], default=None,
                        help="cells (default gru lstm; gru with --quick)")
    parser.add_argument("--modes", nargs="+", choices=["fixed", "variable"],
                        default=["fixed", "variable"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="thread counts (default 1; e.g. --threads 1 2)")
    parser.add_argument("--n-samples", type=int, default=None,
                        help=f"sequences per epoch (default {N_SAMPLES})")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed epochs per measurement (default 3, 1 with --quick)")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="also measure both libraries after "
                             "torch.set_flush_denormal(True)")
    _peer.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if _peer.run_if_worker(args, run_worker):
        return 0

    script = __file__
    lengths = sorted(set(args.lengths or (QUICK_LENGTHS if args.quick else LENGTHS)))
    n_samples = args.n_samples or (QUICK_N_SAMPLES if args.quick else N_SAMPLES)
    repeat = args.repeat or (1 if args.quick else 3)
    threads = sorted(set(args.threads))
    modes = [m for m in ("fixed", "variable") if m in args.modes]
    args.cells = args.cells or (["gru"] if args.quick else ["gru", "lstm"])

    info = _peer.spawn(script, {"kind": "info"}, 1, 1, args.timeout) or {}
    have_seqclf, have_torch = _peer.print_header(info)
    flush = args.flush_denormal
    if flush and not have_torch:
        print("NOTE: --flush-denormal sets the flags through PyTorch, which is "
              "missing: measuring without them only.")
        flush = False
    print(f"1 layer of {HIDDEN} units, {N_FEATURES} features, {N_CLASSES} classes, "
          f"float32, Adam lr=1e-3, batch {BATCH}, N = {n_samples:,} sequences, one "
          f"epoch; median of {repeat}; one process per measurement", flush=True)

    peers = [p for p in PEERS
             if (p[0] == "seqclf" and have_seqclf or p[0] == "torch" and have_torch)
             and (flush or not p[2])]
    jobs = []
    for cell in args.cells:
        for mode in modes:
            for T in lengths:
                for n in threads:
                    for lib, inp, fl in peers:
                        if inp == "packed" and mode == "fixed":
                            continue
                        jobs.append((cell, mode, T, n, lib, inp, fl))
    raw = {}
    for i, (cell, mode, T, n, lib, inp, fl) in enumerate(jobs, 1):
        spec = {"kind": lib, "cell": cell, "n_steps": T, "variable": mode == "variable",
                "input": inp, "flush_denormal": fl, "n_threads": n,
                "n_samples": n_samples, "repeat": repeat, "seed": args.seed}
        res = _peer.measure(script, spec, n, 1 if lib == "seqclf" else n, args)
        raw[cell, mode, T, n, lib, inp, fl] = res
        if res is not None:
            print(f"  [{i}/{len(jobs)}] {cell} {mode} T={T} {n}T "
                  f"{_peer_label(lib, inp, fl)}: "
                  f"{_ns_per_step(res, n_samples, T):,.0f} ns/step (other load "
                  f"{fmt(res.get('other_load'), '.2f')}, attempt {res['attempts']})",
                  file=sys.stderr, flush=True)

    rows = []
    for cell in args.cells:
        for mode in modes:
            for n in threads:
                for T in lengths:
                    r = {"cell": cell, "mode": mode, "threads": n, "n_steps": T}
                    loads = []
                    for lib, inp, fl in peers:
                        res = raw.get((cell, mode, T, n, lib, inp, fl))
                        r[_peer_label(lib, inp, fl)] = _ns_per_step(res, n_samples, T)
                        if res is not None:
                            loads.append(res.get("other_load"))
                            if fl and res.get("flushed") is False:
                                r["flush_unsupported"] = True
                    s, t = r.get("seqclf"), r.get("torch padded")
                    r["speedup"] = t / s if s and t else None
                    loads = [v for v in loads if v is not None]
                    r["other_load"] = max(loads) if loads else None
                    rows.append(r)

    labels = [_peer_label(*p) for p in peers
              if not (p[1] == "packed" and modes == ["fixed"])]
    print()
    print("Training, time per step (ns) = epoch time / (N x T); speed-up = torch "
          "padded / seqclf; FTZ: after torch.set_flush_denormal(True)")
    headers = ["cell", "lengths", "threads", "T"] + labels + ["speed-up", "other load"]
    lines = []
    for r in rows:
        load = r["other_load"]
        lines.append([
            f"{r['cell'].upper()}-{HIDDEN}", r["mode"], str(r["threads"]),
            f"{r['n_steps']:,}",
            *(fmt(r.get(lab), ",.0f") for lab in labels),
            fmt(r["speedup"], ".2f"),
            fmt(load, ".2f")
            + (" *" if load is not None and load > args.max_load else ""),
        ])
    if lines:
        _peer.print_table(headers, lines)

    # Targets, on 1 thread.
    targets = []
    by_key = {(r["cell"], r["mode"], r["threads"], r["n_steps"]): r for r in rows}
    short, long_ = GROWTH_LENGTHS
    for cell in args.cells:
        a = by_key.get((cell, "fixed", 1, short))
        b = by_key.get((cell, "fixed", 1, long_))
        if a and b and a.get("seqclf") and b.get("seqclf"):
            growth = b["seqclf"] / a["seqclf"]
            targets.append({"target": "a", "cell": cell, "value": growth,
                            "ok": growth <= GROWTH_TARGET,
                            "text": f"(a) {cell.upper()}-{HIDDEN} fixed, seqclf time "
                                    f"per step T={long_:,} / T={short}: {growth:.2f} "
                                    f"[<= {GROWTH_TARGET}]"})
        for mode in modes:
            r = by_key.get((cell, mode, 1, SPEEDUP_LENGTH))
            if r and r["speedup"] is not None:
                targets.append({"target": "b", "cell": cell, "mode": mode,
                                "value": r["speedup"],
                                "ok": r["speedup"] >= SPEEDUP_TARGET,
                                "text": f"(b) {cell.upper()}-{HIDDEN} {mode}, "
                                        f"T={SPEEDUP_LENGTH:,}, torch padded / seqclf: "
                                        f"{r['speedup']:.2f} "
                                        f"[>= {SPEEDUP_TARGET}]"})
    print()
    if targets:
        print("Targets (1 thread):")
        for t in targets:
            print("  " + t["text"] + _check(t["ok"]))
    else:
        print(f"Targets need 1 thread and T = {short}, {long_:,} "
              f"(and PyTorch for (b)); not measured in this run.")
    if any(r.get("flush_unsupported") for r in rows):
        print("NOTE: torch.set_flush_denormal(True) returned False (unsupported on "
              "this CPU): the FTZ columns ran without the flags.")
    print(f"other load: CPU cores used by other processes while timing (the row's "
          f"largest); * marks rows above {args.max_load}: re-run them.")

    if args.json:
        out = {"config": {"cells": args.cells, "modes": modes, "lengths": lengths,
                          "threads": threads, "n_samples": n_samples, "repeat": repeat,
                          "hidden": HIDDEN, "batch": BATCH, "n_features": N_FEATURES,
                          "flush_denormal": flush, "seed": args.seed},
               "info": info, "rows": rows, "targets": targets,
               "raw": [{"cell": k[0], "mode": k[1], "n_steps": k[2], "threads": k[3],
                        "library": k[4], "input": k[5], "flush_denormal": k[6],
                        "result": v} for k, v in raw.items()]}
        _peer.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
