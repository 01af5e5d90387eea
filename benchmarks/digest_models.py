#!/usr/bin/env python
"""Digests of a fixed matrix of small trained models, to compare two builds.

Usage (from the repository root)::

    PYTHONPATH=BEFORE python benchmarks/digest_models.py > before.txt
    PYTHONPATH=AFTER python benchmarks/digest_models.py > after.txt
    diff before.txt after.txt

    python benchmarks/digest_models.py [--threads 1] [--out FILE.json]
                                       [--quick] [--only NAME ...] [--list]

``BEFORE`` and ``AFTER`` are source trees with their extensions built in
place (``python setup.py build_ext --inplace``). The script trains each
model of a fixed matrix through the public API (``RNNClassifier``,
``RNNRegressor``) on deterministic random data (``np.random.default_rng``
with fixed seeds, ``random_state`` fixed) and prints one line per model::

    NAME coefs=... weights=... opt=... loss=... pred=... n_iter=N

each ``...`` the first 16 hex digits of a SHA-256 digest of:

* ``coefs``: all parameters, the network's flat vector
  (``est._network.coefs``: embedding, recurrent layers and head);
* ``weights``: the same through the public views (``weights_``,
  ``head_weights_``, ``embedding_``), which survive a change of the
  internal layout;
* ``opt``: the optimizers' state arrays (``est._optimizer.state()``, and
  ``est._embedding_optimizer.state()`` for token ids) and step counts
  (``t``);
* ``loss``: ``loss_curve_`` as float64, and ``validation_scores_`` when
  early stopping records them;
* ``pred``: ``predict_proba`` (classifier) or ``predict`` (regressor) on
  held-out data.

Each digest covers the arrays' dtype and shape as well as their bytes, so a
line is the same on two builds only when the results are bit for bit the
same; a field that cannot be read (an internal attribute renamed) prints as
``n/a``. Identical outputs mean identical results: a change meant to leave
results as they are ("no result changes") must leave every line as it was.
The lines do not depend on the machine's load; they do depend on the CPU's
instruction set and the BLAS, so compare builds on one machine.

``--threads N`` sets ``n_threads=N`` on every model: the lines must not
depend on it either (run with 1 and 2 and diff). ``--out`` also writes the
digests as JSON, with the versions and the path of the seqclf imported.
``--quick`` runs three models (for the smoke test), ``--only`` the models
whose names contain one of the given strings, ``--list`` prints the names.
The whole matrix (84 models, 2 to 8 epochs or ``partial_fit`` calls each
on 64 to 160 sequences) trains in about a second.
"""

import argparse
import hashlib
import json
import platform
import sys
import time

import numpy as np

import seqclf
from seqclf import RNNClassifier, RNNRegressor

N_TRAIN, N_TEST, N_STEPS, N_FEATURES, N_CLASSES = 64, 16, 8, 3, 3
VOCAB = 11
# Two mini-batches an epoch, the second shorter; each holds more than one
# chunk of 16 sequences, so that two threads share the work.
COMMON = dict(hidden_layer_sizes=(8,), batch_size=40, max_iter=3, tol=None,
              learning_rate_init=0.01, random_state=0)
QUICK = ("lstm_f32", "gru_ids_ragged", "reg_lstm_2out_f32")


# ---------------------------------------------------------------------------
# Data: deterministic, one generator per call
# ---------------------------------------------------------------------------


def dense(seed=0, dtype=np.float64, n_train=N_TRAIN, n_steps=N_STEPS,
          n_features=N_FEATURES):
    rng = np.random.default_rng(seed)
    n = n_train + N_TEST
    X = rng.normal(size=(n, n_steps, n_features)).astype(dtype)
    y = rng.integers(0, N_CLASSES, n)
    return X[:n_train], y[:n_train], X[n_train:]


def ragged(seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    X = [rng.normal(size=(int(k), N_FEATURES)).astype(dtype)
         for k in rng.integers(2, 12, n)]
    y = rng.integers(0, N_CLASSES, n)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:]


def padded(seed=2, dtype=np.float64):
    """Dense sequences padded with NaN before (odd rows) or after the data."""
    X, y, X_test = dense(seed, dtype)
    rng = np.random.default_rng(seed + 100)
    for A in (X, X_test):
        for i, k in enumerate(rng.integers(0, N_STEPS - 2, len(A))):
            if i % 2:
                A[i, :k] = np.nan
            else:
                A[i, N_STEPS - k:] = np.nan
    return X, y, X_test


def ids(seed=3, ragged_ids=False, oov=False, vocab=VOCAB, n_train=N_TRAIN):
    """Token ids in [0, vocab); with ``oov`` some held-out ids are vocab + 1."""
    rng = np.random.default_rng(seed)
    n = n_train + N_TEST
    if ragged_ids:
        X = [rng.integers(0, vocab, int(k)) for k in rng.integers(2, 12, n)]
    else:
        X = rng.integers(0, vocab, (n, N_STEPS))
    y = rng.integers(0, N_CLASSES, n)
    X_test = X[n_train:]
    if oov:
        X_test = [np.where(x % 4 == 0, vocab + 1, x) for x in X_test]
    return X[:n_train], y[:n_train], X_test


def regression(seed=4, dtype=np.float64, n_outputs=1, n_train=N_TRAIN):
    X, _, X_test = dense(seed, dtype, n_train)
    full = np.concatenate([X, X_test]).astype(np.float64)
    Y = np.stack([full[:, :, 0].mean(axis=1),
                  full[:, -1, 1] - full[:, 0, 2]], axis=1)[:, :n_outputs]
    y = Y[:, 0] if n_outputs == 1 else Y
    return X, y[:n_train], X_test


def weights(seed=5, n=N_TRAIN):
    return np.random.default_rng(seed).uniform(0, 2, n)


# ---------------------------------------------------------------------------
# The matrix: name -> function(threads) returning (fitted estimator, X_test)
# ---------------------------------------------------------------------------


CONFIGS = {}


def config(name):
    def register(fn):
        assert name not in CONFIGS, name
        CONFIGS[name] = fn
        return fn
    return register


def fit(cls, data, threads, fit_kw=None, **params):
    X, y, X_test = data
    est = cls(**{**COMMON, **params, "n_threads": threads})
    est.fit(X, y, **(fit_kw or {}))
    return est, X_test


def _add_fit(name, cls, data, fit_kw=None, **params):
    config(name)(lambda threads: fit(cls, data(), threads, fit_kw, **params))


# Each cell, and the main architectures, in float32 and float64.
MAIN = {
    "rnn_tanh": dict(cell="rnn"),
    "rnn_relu": dict(cell="rnn", activation="relu"),
    "gru": dict(cell="gru"),
    "lstm": dict(cell="lstm"),
    "stack_lstm_gru": dict(cell=("lstm", "gru"), hidden_layer_sizes=(8, 6)),
    "stack3_gru_rnn_lstm": dict(cell=("gru", "rnn", "lstm"),
                                hidden_layer_sizes=(7, 5, 6)),
    "bi_gru": dict(cell="gru", bidirectional=True),
    "bi_lstm": dict(cell="lstm", bidirectional=True),
    "bi_stack_rnn_lstm": dict(cell=("rnn", "lstm"), hidden_layer_sizes=6,
                              bidirectional=True),
    "dropout_lstm": dict(cell="lstm", dropout=0.25, recurrent_dropout=0.25),
}
for _key, _params in MAIN.items():
    for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
        _add_fit(f"{_key}_{_tag}", RNNClassifier,
                 lambda _dt=_dt: dense(0, _dt), **_params)

# Dropout on the other cells and with two directions.
_add_fit("dropout_gru_f32", RNNClassifier, lambda: dense(0, np.float32),
         cell="gru", dropout=0.3)
_add_fit("rdropout_rnn_f64", RNNClassifier, dense, cell="rnn",
         recurrent_dropout=0.3)
_add_fit("dropout_bi_stack_f32", RNNClassifier, lambda: dense(0, np.float32),
         cell=("gru", "lstm"), hidden_layer_sizes=(6, 6), bidirectional=True,
         dropout=0.2, recurrent_dropout=0.2)

# Ragged input: lists of sequences of 2 to 11 steps.
for _cell in ("rnn", "gru", "lstm"):
    _add_fit(f"ragged_{_cell}_f64", RNNClassifier, ragged, cell=_cell)
_add_fit("ragged_bi_lstm_f32", RNNClassifier,
         lambda: ragged(1, np.float32), cell="lstm", bidirectional=True)
_add_fit("ragged_stack_dropout_f32", RNNClassifier,
         lambda: ragged(1, np.float32), cell=("gru", "lstm"),
         hidden_layer_sizes=(6, 6), dropout=0.2, recurrent_dropout=0.2)
_add_fit("masked_nan_gru_f64", RNNClassifier, padded, cell="gru",
         mask_value=np.nan)
_add_fit("masked_nan_bi_lstm_f32", RNNClassifier,
         lambda: padded(2, np.float32), cell="lstm", bidirectional=True,
         mask_value=np.nan)

# Token ids: embedding front, 2-D and ragged, learned or given vocabulary.
_add_fit("gru_ids", RNNClassifier, lambda: ids(oov=True), cell="gru",
         embedding_dim=4)
_add_fit("gru_ids_ragged", RNNClassifier,
         lambda: ids(ragged_ids=True, oov=True), cell="gru", embedding_dim=4)
_add_fit("lstm_ids_vocab_sgd", RNNClassifier, lambda: ids(ragged_ids=True),
         cell="lstm", embedding_dim=5, vocab_size=VOCAB + 3, solver="sgd",
         momentum=0.9, clip_norm=1.0)
_add_fit("bi_stack_ids_dropout", RNNClassifier, ids, cell=("lstm", "rnn"),
         hidden_layer_sizes=(6, 5), bidirectional=True, embedding_dim=4,
         vocab_size=VOCAB, dropout=0.2, recurrent_dropout=0.2)

# Solvers, gradient clipping and the L2 penalty.
for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
    _add_fit(f"sgd_nesterov_{_tag}", RNNClassifier,
             lambda _dt=_dt: dense(0, _dt), cell="lstm", solver="sgd",
             momentum=0.9, nesterovs_momentum=True)
    _add_fit(f"sgd_classic_clip_alpha_{_tag}", RNNClassifier,
             lambda _dt=_dt: dense(0, _dt), cell="gru", solver="sgd",
             momentum=0.8, nesterovs_momentum=False, clip_norm=0.5, alpha=1e-2)
    _add_fit(f"adam_clip_alpha_{_tag}", RNNClassifier,
             lambda _dt=_dt: dense(0, _dt), cell="lstm", clip_norm=0.5,
             alpha=1e-2, beta_1=0.8, beta_2=0.99)
_add_fit("sgd_nomomentum_rnn_f64", RNNClassifier, dense, cell="rnn",
         solver="sgd", momentum=0.0)
_add_fit("sgd_nesterov_clip_alpha_bi_f32", RNNClassifier,
         lambda: dense(0, np.float32), cell=("gru", "rnn"),
         hidden_layer_sizes=(6, 6), bidirectional=True, solver="sgd",
         clip_norm=0.3, alpha=1e-3)

# Sample and class weights, no shuffling.
for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
    _add_fit(f"sample_weight_lstm_{_tag}", RNNClassifier,
             lambda _dt=_dt: dense(0, _dt), {"sample_weight": weights()},
             cell="lstm")
_sw0 = weights()
_sw0[::5] = 0
_add_fit("sample_weight_zeros_bi_gru_f64", RNNClassifier, dense,
         {"sample_weight": _sw0}, cell="gru", bidirectional=True,
         solver="sgd")
_add_fit("class_weight_gru_f32", RNNClassifier, lambda: dense(0, np.float32),
         cell="gru", class_weight={0: 2.0, 1: 0.5, 2: 1.0})
_add_fit("class_weight_balanced_rnn_f64", RNNClassifier, dense, cell="rnn",
         class_weight="balanced")
_add_fit("noshuffle_lstm_f64", RNNClassifier, dense, cell="lstm",
         shuffle=False)

# Early stopping: on a held-out fraction (all epochs run, the best weights
# restored), stopping early, and on validation data given to fit.
for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
    _add_fit(f"early_stopping_gru_{_tag}", RNNClassifier,
             lambda _dt=_dt: dense(0, _dt), cell="gru", early_stopping=True,
             validation_fraction=0.25, max_iter=4)
_add_fit("early_stopping_stops_lstm_f64", RNNClassifier, dense, cell="lstm",
         early_stopping=True, validation_fraction=0.2, tol=1.0,
         n_iter_no_change=1, max_iter=5)
_add_fit("early_stopping_ragged_sw_f32", RNNClassifier,
         lambda: ragged(1, np.float32), {"sample_weight": weights()},
         cell="gru", early_stopping=True, validation_fraction=0.25)
_X, _y, _Xt = dense(6)
_add_fit("early_stopping_xval_rnn_f64", RNNClassifier,
         lambda: (_X[:48], _y[:48], _Xt),
         {"X_val": _X[48:], "y_val": _y[48:]}, cell="rnn",
         early_stopping=True)

# The regressor: 1 and 2 outputs.
for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
    _add_fit(f"reg_gru_1out_{_tag}", RNNRegressor,
             lambda _dt=_dt: regression(4, _dt, 1), cell="gru")
    _add_fit(f"reg_lstm_2out_{_tag}", RNNRegressor,
             lambda _dt=_dt: regression(4, _dt, 2), cell="lstm")
_add_fit("reg_bi_stack_2out_sgd_f64", RNNRegressor,
         lambda: regression(4, np.float64, 2), cell=("rnn", "gru"),
         hidden_layer_sizes=(6, 6), bidirectional=True, solver="sgd",
         clip_norm=1.0, alpha=1e-3)
_add_fit("reg_rnn_relu_sw_dropout_f32", RNNRegressor,
         lambda: regression(4, np.float32, 1), {"sample_weight": weights()},
         cell="rnn", activation="relu", dropout=0.2, recurrent_dropout=0.2)
_add_fit("reg_early_stopping_lstm_f64", RNNRegressor,
         lambda: regression(4, np.float64, 2), cell="lstm",
         early_stopping=True, validation_fraction=0.25)


def _ids_regression():
    X, _, X_test = ids(7, ragged_ids=True)
    y = np.array([float(np.mean(x)) / VOCAB for x in X])
    return X, y, X_test


_add_fit("reg_ids_ragged_gru", RNNRegressor, _ids_regression, cell="gru",
         embedding_dim=4)


# Wider models on batches of 4 chunks: odd sizes for the kernels' edges, and
# more than 32,768 parameters (the optimizers' update splits among threads).
_WIDE = dict(batch_size=64, max_iter=2)
for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
    _add_fit(f"wide_lstm_h96_{_tag}", RNNClassifier,
             lambda _dt=_dt: dense(10, _dt, 160, 12, 5), cell="lstm",
             hidden_layer_sizes=(96,), **_WIDE)
    _add_fit(f"wide_bi_gru_h33_{_tag}", RNNClassifier,
             lambda _dt=_dt: dense(10, _dt, 160, 12, 5), cell="gru",
             hidden_layer_sizes=(33,), bidirectional=True, dropout=0.1,
             **_WIDE)
_add_fit("wide_stack_gru_lstm_h48_sgd_f64", RNNClassifier,
         lambda: dense(11, np.float64, 160, 10, 7), cell=("gru", "lstm"),
         hidden_layer_sizes=(48, 40), solver="sgd", clip_norm=1.0,
         alpha=1e-4, **_WIDE)
_add_fit("wide_rnn_relu_h130_f32", RNNClassifier,
         lambda: dense(12, np.float32, 160, 10, 4), cell="rnn",
         activation="relu", hidden_layer_sizes=(130,), **_WIDE)
_add_fit("wide_ids_lstm_h40_v600", RNNClassifier,
         lambda: ids(13, vocab=600, n_train=160), cell="lstm",
         hidden_layer_sizes=(40,), embedding_dim=24, vocab_size=600, **_WIDE)
_add_fit("wide_reg_gru_h64_2out_f32", RNNRegressor,
         lambda: regression(14, np.float32, 2, 160), cell="gru",
         hidden_layer_sizes=(64,), **_WIDE)

# partial_fit on consecutive blocks, several passes (as dask-ml's
# Incremental calls it), with and without the classes at the first call.
def _partial_fit(cls, data, threads, block, passes, fit_kw_fn=None,
                 **params):
    X, y, X_test = data
    est = cls(**{**COMMON, **params, "n_threads": threads})
    classes = np.unique(y) if cls is RNNClassifier else None
    for _ in range(passes):
        for start in range(0, len(y), block):
            kw = {} if fit_kw_fn is None else fit_kw_fn(start, block)
            if classes is not None:
                kw["classes"] = classes
            est.partial_fit(X[start:start + block], y[start:start + block],
                            **kw)
    return est, X_test


def _add_pf(name, cls, data, block, passes=2, fit_kw_fn=None, **params):
    config(name)(lambda threads: _partial_fit(
        cls, data(), threads, block, passes, fit_kw_fn, **params))


for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
    _add_pf(f"partial_fit_lstm_{_tag}", RNNClassifier,
            lambda _dt=_dt: dense(0, _dt), block=24, cell="lstm",
            batch_size=16)
    _add_pf(f"partial_fit_reg_gru_{_tag}", RNNRegressor,
            lambda _dt=_dt: regression(4, _dt, 1), block=20, cell="gru",
            batch_size=20)
_add_pf("partial_fit_bi_stack_dropout_sgd_f32", RNNClassifier,
        lambda: dense(0, np.float32), block=32, passes=3,
        cell=("gru", "lstm"), hidden_layer_sizes=(6, 6), bidirectional=True,
        dropout=0.2, recurrent_dropout=0.2, solver="sgd")
_add_pf("partial_fit_ragged_sw_f64", RNNClassifier, ragged, block=16,
        fit_kw_fn=lambda s, b: {"sample_weight": weights()[s:s + b]},
        cell="rnn", batch_size=8)
_add_pf("partial_fit_ids_vocab", RNNClassifier, lambda: ids(8), block=16,
        cell="lstm", embedding_dim=4, vocab_size=VOCAB)
_add_pf("partial_fit_reg_2out_noshuffle_f64", RNNRegressor,
        lambda: regression(4, np.float64, 2), block=32, cell="lstm",
        shuffle=False)


# warm_start: a second fit from the first's weights (and optimizer state),
# with the optimizer kept or (a changed setting) made afresh; partial_fit
# after fit.
def _warm(cls, data, threads, second=None, then_partial=False, **params):
    X, y, X_test = data
    est = cls(**{**COMMON, **params, "n_threads": threads,
                 "warm_start": True})
    est.fit(X, y)
    if second:
        est.set_params(**second)
    est.fit(X, y)
    if then_partial:
        est.partial_fit(X[:32], y[:32])
    return est, X_test


def _add_warm(name, cls, data, second=None, then_partial=False, **params):
    config(name)(lambda threads: _warm(cls, data(), threads, second,
                                       then_partial, **params))


for _dt, _tag in ((np.float32, "f32"), (np.float64, "f64")):
    _add_warm(f"warm_start_gru_{_tag}", RNNClassifier,
              lambda _dt=_dt: dense(0, _dt), cell="gru")
_add_warm("warm_start_new_lr_lstm_f64", RNNClassifier, dense,
          second={"learning_rate_init": 0.003, "max_iter": 2}, cell="lstm")
_add_warm("warm_start_sgd_then_partial_bi_f32", RNNClassifier,
          lambda: dense(0, np.float32), then_partial=True, cell="lstm",
          bidirectional=True, solver="sgd", nesterovs_momentum=False)
_add_warm("warm_start_early_stopping_f64", RNNClassifier, dense,
          second={"early_stopping": True, "validation_fraction": 0.25},
          cell="rnn")
_add_warm("warm_start_ids_ragged", RNNClassifier,
          lambda: ids(9, ragged_ids=True), cell="gru", embedding_dim=4,
          vocab_size=VOCAB, dropout=0.2)
_add_warm("warm_start_reg_2out_f32", RNNRegressor,
          lambda: regression(4, np.float32, 2), then_partial=True,
          cell=("lstm", "gru"), hidden_layer_sizes=(6, 6))


# ---------------------------------------------------------------------------
# Digests
# ---------------------------------------------------------------------------


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _field(fn):
    try:
        return _digest(fn())
    except (AttributeError, TypeError):
        return "n/a"


def _public_weights(est):
    arrays = []
    for layer in est.weights_:
        for direction in layer:
            arrays += [direction[k] for k in sorted(direction)]
    head = est.head_weights_
    arrays += [head[k] for k in sorted(head)]
    if est.embedding_dim is not None:
        arrays.append(est.embedding_)
    return arrays


def _optimizer_state(est):
    arrays = []
    for opt in (est._optimizer, getattr(est, "_embedding_optimizer", None)):
        if opt is not None:
            arrays += [*opt.state(), np.array(opt.t, dtype=np.int64)]
    return arrays


def _curves(est):
    arrays = [np.asarray(est.loss_curve_, np.float64)]
    if est.validation_scores_ is not None:
        arrays.append(np.asarray(est.validation_scores_, np.float64))
    return arrays


def digests(est, X_test):
    out = est.predict_proba if isinstance(est, RNNClassifier) else est.predict
    return {
        "coefs": _field(lambda: [est._network.coefs]),
        "weights": _field(lambda: _public_weights(est)),
        "opt": _field(lambda: _optimizer_state(est)),
        "loss": _field(lambda: _curves(est)),
        "pred": _digest([out(X_test)]),
        "n_iter": int(est.n_iter_),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="n_threads of every model (default 1)")
    parser.add_argument("--out", help="also write the digests to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK)}")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="only the models whose names contain one of these")
    parser.add_argument("--list", action="store_true",
                        help="print the models' names and exit")
    args = parser.parse_args(argv)
    names = list(CONFIGS)
    if args.quick:
        names = list(QUICK)
    if args.only:
        names = [n for n in names if any(s in n for s in args.only)]
        if not names:
            parser.error(f"no model's name contains any of {args.only}")
    if args.list:
        print("\n".join(names))
        return
    width = max(map(len, names))
    results = {}
    tic = time.perf_counter()
    for name in names:
        est, X_test = CONFIGS[name](args.threads)
        results[name] = d = digests(est, X_test)
        print(f"{name:<{width}} " + " ".join(f"{k}={v}" for k, v in d.items()),
              flush=True)
    print(f"{len(names)} models in {time.perf_counter() - tic:.1f} s "
          f"(seqclf {seqclf.__version__} from {seqclf.__file__}, "
          f"n_threads={args.threads})", file=sys.stderr)
    if args.out:
        meta = {"seqclf": seqclf.__version__, "seqclf_file": seqclf.__file__,
                "numpy": np.__version__, "python": platform.python_version(),
                "machine": platform.machine(), "threads": args.threads}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "models": results}, f, indent=1)


if __name__ == "__main__":
    main()
