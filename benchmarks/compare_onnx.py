#!/usr/bin/env python
"""Prediction with seqclf, with its ONNX export in onnxruntime and with PyTorch.

Usage (from the repository root)::

    python benchmarks/compare_onnx.py [--configs rnn128 lstm128 ...]
                                      [--threads 1 2] [--repeat N]
                                      [--min-time S] [--json PATH]

For each configuration of ``benchmarks/compare_torch.py`` (synthetic MNIST
rows, 28 steps x 28 features, float32, 10 classes), a model fitted for one
epoch on two batches predicts:

* ``predict``: samples/s on 1,024 sequences at once;
* ``latency``: microseconds for one sequence ``(1, 28, 28)``;

by three runtimes, each in a process of its own (one per measurement):

* seqclf: ``predict_proba`` (input validation included);
* onnxruntime: ``InferenceSession.run`` of ``seqclf.onnx.to_onnx(model)``
  (CPU provider, ``intra_op_num_threads`` = threads, one inter-op thread,
  default graph optimisations), outputs ``label`` and ``probabilities``;
* PyTorch: the module's forward and a softmax under ``torch.inference_mode``,
  as in ``compare_torch.py``.

Each measurement is the median of ``--repeat`` timed samples, retried while
other processes load the machine (see ``_peer.py``). Compare the ratios of
one run: the machines are shared. Needs the ``onnx`` extra
(``pip install "seqclf[onnx]"``); PyTorch is optional.
"""

import argparse
import sys
import warnings

import _peer
import compare_torch
from _peer import fmt, median

CONFIGS = compare_torch.CONFIGS
DEFAULT_CONFIGS = ("rnn31", "rnn128", "gru128", "lstm128", "lstm2x256")


def _onnx_worker(spec):
    import numpy as np
    import onnxruntime as ort

    seqclf, _ = _peer.import_seqclf()
    from seqclf.onnx import to_onnx

    cell, hidden, batch, _ = CONFIGS[spec["config"]]
    X, y = compare_torch._data(max(2 * batch, compare_torch.PREDICT_BATCH),
                               spec["seed"])
    clf = seqclf.RNNClassifier(cell, hidden, batch_size=batch, max_iter=1,
                               random_state=0).fit(X[:2 * batch], y[:2 * batch])
    options = ort.SessionOptions()
    options.intra_op_num_threads = spec["n_threads"]
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(to_onnx(clf, X[:1]).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    Xp = np.ascontiguousarray(
        X[:compare_torch.PREDICT_BATCH] if spec["what"] == "predict" else X[:1])
    got = sess.run(None, {"X": Xp})[1]
    err = float(np.max(np.abs(got - clf.predict_proba(Xp))))
    times, _, load = _peer.time_per_call(lambda: sess.run(None, {"X": Xp}),
                                         spec["repeat"], spec["min_time"],
                                         spec["warmup_time"])
    return {"seconds_per_sample": [t / len(Xp) for t in times],
            "other_load": load, "max_abs_diff": err,
            "onnxruntime": ort.__version__}


def run_worker(spec):
    warnings.simplefilter("ignore")     # ConvergenceWarning after one epoch
    if spec["kind"] == "onnxruntime":
        _peer.report(_onnx_worker(spec))
    else:
        compare_torch.run_worker(spec)


def _rate(res):
    return None if res is None else 1.0 / median(res["seconds_per_sample"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS),
                        default=list(DEFAULT_CONFIGS))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds per timed sample (default 0.2)")
    _peer.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if _peer.run_if_worker(args, run_worker):
        return 0

    script = __file__
    info = _peer.spawn(script, {"kind": "info"}, 1, 1, args.timeout) or {}
    have_seqclf, have_torch = _peer.print_header(info)
    if not have_seqclf:
        return 1
    timing = {"repeat": args.repeat, "min_time": args.min_time,
              "warmup_time": args.min_time / 2, "seed": args.seed}
    libraries = ["seqclf", "onnxruntime"] + (["torch"] if have_torch else [])
    raw = {}
    for name in args.configs:
        for n in sorted(set(args.threads)):
            for what in ("predict", "latency"):
                for lib in libraries:
                    spec = {"kind": lib, "config": name, "what": what,
                            "n_threads": n, **timing}
                    blas = 1 if lib == "seqclf" else n
                    res = _peer.measure(script, spec, n, blas, args)
                    raw[name, n, what, lib] = res
                    if res is not None:
                        print(f"  {lib} {name} {what} {n}T: {_rate(res):,.0f} "
                              f"samples/s", file=sys.stderr, flush=True)
    ort_version = next((r["onnxruntime"] for k, r in raw.items()
                        if k[3] == "onnxruntime" and r), "?")
    print(f"onnxruntime {ort_version}; 28 steps x 28 features, float32, 10 "
          f"classes; median of {args.repeat}; one process per measurement")
    print()
    print(f"Prediction on {compare_torch.PREDICT_BATCH:,} sequences (samples/s) "
          "and latency of one sequence (microseconds); ratio = seqclf speed / "
          "the other's speed")
    headers = ["config (batch)", "threads", "seqclf", "onnxrt", "torch",
               "vs onnxrt", "vs torch", "seqclf us", "onnxrt us", "torch us",
               "vs onnxrt ", "vs torch ", "max |diff|"]
    lines, rows = [], []
    for name in args.configs:
        for n in sorted(set(args.threads)):
            r = {k: _rate(raw.get((name, n, w, lib))) for w in ("predict", "latency")
                 for lib in libraries for k in [f"{w}_{lib}"]}
            onnx_predict = raw.get((name, n, "predict", "onnxruntime")) or {}
            diff = onnx_predict.get("max_abs_diff")

            def ratio(a, b):
                return None if a is None or b is None else a / b

            def us(rate):
                return None if rate is None else 1e6 / rate

            lines.append([
                compare_torch._label(name), str(n),
                fmt(r["predict_seqclf"], ",.0f"), fmt(r["predict_onnxruntime"], ",.0f"),
                fmt(r.get("predict_torch"), ",.0f"),
                fmt(ratio(r["predict_seqclf"], r["predict_onnxruntime"]), ".2f"),
                fmt(ratio(r["predict_seqclf"], r.get("predict_torch")), ".2f"),
                fmt(us(r["latency_seqclf"]), ".0f"),
                fmt(us(r["latency_onnxruntime"]), ".0f"),
                fmt(us(r.get("latency_torch")), ".0f"),
                fmt(ratio(r["latency_seqclf"], r["latency_onnxruntime"]), ".2f"),
                fmt(ratio(r["latency_seqclf"], r.get("latency_torch")), ".2f"),
                fmt(diff, ".1e"),
            ])
            rows.append({"config": name, "threads": n, "max_abs_diff": diff, **r})
    _peer.print_table(headers, lines)
    if args.json:
        _peer.write_json(args.json, {"info": info, "timing": timing, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
