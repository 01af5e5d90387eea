#!/usr/bin/env python
"""How closely the ONNX export agrees with seqclf, configuration by configuration.

Usage (from the repository root)::

    python benchmarks/onnx_parity.py [--steps 100] [--seed 0]

For each cell (tanh RNN, GRU, LSTM), 1 to 3 layers, one or both directions,
and each input kind (equal lengths; ragged sequences through the ``lengths``
input; NaN pre-padding found in the graph; token ids; a float64 model), a
small model is fitted for two epochs on random data and exported with
:func:`seqclf.onnx.to_onnx`; onnxruntime (CPU provider) runs the graph on
64 sequences of up to ``--steps`` steps. The table gives the largest
absolute difference of the probabilities from ``predict_proba``, the largest
relative one, and whether the labels all equal ``predict``. Needs the
``onnx`` extra.
"""

import argparse
import sys
import warnings

import numpy as np


def _cases(T, rng):
    N, F = 64, 3
    lengths = rng.integers(1, T + 1, size=N)
    seqs = [rng.normal(size=(k, F)).astype(np.float32) for k in lengths]
    post = np.zeros((N, T, F), np.float32)
    pre = np.full((N, T, F), np.nan, np.float32)
    for i, s in enumerate(seqs):
        post[i, :len(s)] = s
        pre[i, T - len(s):] = s
    full = rng.normal(size=(N, T, F)).astype(np.float32)
    ids = rng.integers(0, 50, size=(N, T))
    y = rng.integers(0, 4, N)
    return {
        "equal lengths": (dict(), full, full, {}, y),
        "lengths input": (dict(), seqs, post, {"lengths": lengths.astype(np.int64)}, y),
        "NaN pre-padding": (dict(mask_value=np.nan), pre, pre, {}, y),
        "token ids": (dict(embedding_dim=8), ids, ids.astype(np.int64), {}, y),
        "float64 model": (dict(), full.astype(np.float64),
                          full.astype(np.float64), {}, y),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")         # ConvergenceWarning after two epochs

    import onnxruntime as ort

    sys.path.insert(0, ".")
    from seqclf import RNNClassifier
    from seqclf.onnx import to_onnx

    rng = np.random.default_rng(args.seed)
    cases = _cases(args.steps, rng)
    print(f"onnxruntime {ort.__version__}; 64 sequences of up to {args.steps} "
          f"steps; 8 units per layer; largest |difference| of the probabilities")
    print(f"{'cell':5} {'layers':>6} {'dirs':>4}  {'input':16} {'max abs':>9} "
          f"{'max rel':>9}  labels")
    worst = 0.0
    for cell in ("rnn", "gru", "lstm"):
        for n_layers in (1, 2, 3):
            for bidirectional in (False, True):
                for kind, (kw, X_fit, X_onnx, extra, y) in cases.items():
                    est = RNNClassifier(cell, (8,) * n_layers,
                                        bidirectional=bidirectional, max_iter=2,
                                        random_state=0, **kw).fit(X_fit, y)
                    sample = (X_onnx[:1] if kind != "lengths input"
                              else np.zeros((1, args.steps, 3), np.float32))
                    model = to_onnx(est, None if kind == "token ids" else sample,
                                    with_lengths="lengths" in extra)
                    sess = ort.InferenceSession(model.SerializeToString(),
                                                providers=["CPUExecutionProvider"])
                    label, proba = sess.run(None, {"X": X_onnx, **extra})
                    expected = est.predict_proba(X_fit)
                    diff = np.abs(proba - expected)
                    rel = float(np.max(diff / np.maximum(np.abs(expected), 1e-30)))
                    same = bool(np.all(label == est.predict(X_fit)))
                    worst = max(worst, float(diff.max()))
                    print(f"{cell:5} {n_layers:>6} {2 if bidirectional else 1:>4}  "
                          f"{kind:16} {diff.max():9.1e} {rel:9.1e}  "
                          f"{'equal' if same else 'DIFFER'}", flush=True)
    print(f"largest absolute difference overall: {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
