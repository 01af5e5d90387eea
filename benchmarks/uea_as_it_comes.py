#!/usr/bin/env python
"""Fit RNNClassifier on six UEA/UCR data sets exactly as sktime loads them.

A check a maintainer can rerun, not a test: each data set of sktime's wheel
(nothing is downloaded) is loaded for train and test

(a) with the loader's default return type, sktime's nested DataFrame (a row
    per series, a column per channel, each cell a ``pd.Series``), unequal
    lengths included, and
(b) with ``return_type="numpy3D"``, ``(n, channels, timepoints)``, where the
    loader offers it (equal lengths only), read with ``channels_first=True``,

and fitted with no glue code: no transposes, no conversions, the loader's
``X`` and ``y`` (string labels) go straight into the pipeline. The user
code of each form is printed before the table. The settings are the same for
every data set and were fixed before any test score was seen: a
bidirectional GRU of 64 units, 50 epochs at most (training stops earlier on
a 10-epoch plateau of the training loss, the default), batch size 16,
learning rate 0.005, seed 0, behind a ``SequenceScaler``. They are not tuned
and the accuracies are not the state of the art of these data sets; the
point is that every form is read, and that (a) and (b) give the same model
(the column "same as (a)": identical predicted probabilities, else their
largest difference).

On a 2-core AMD EPYC, one thread, sktime 1.2.0, the defaults print these
test accuracies (nested DataFrame and numpy3D identical wherever both
exist): JapaneseVowels 0.986, BasicMotions 1.000, GunPoint 0.493 (chance:
the training loss stays near log 2, and training stops after 17 epochs),
ArrowHead 0.406, ItalyPowerDemand 0.900, PLAID 0.343; 3 minutes in all,
PLAID 2.5 of them. With ``--no-scaler``: 0.970, 0.950, 0.493, 0.309, 0.917
and 0.505 (PLAID 49 epochs, 6 minutes).

Usage (from the repository root, with sktime installed)::

    python benchmarks/uea_as_it_comes.py
    python benchmarks/uea_as_it_comes.py --datasets gunpoint arrow_head --epochs 5

Options: ``--datasets`` (any of the six, default all), ``--epochs`` (default
50), ``--threads`` (OpenMP threads, default 1), ``--no-scaler`` (the
classifier alone), ``--json`` (write the results to this file). PLAID (537
series of 100-1344 steps) takes most of the time: 5-7 s an epoch on one core
of a 2-core AMD EPYC. The script exits 1 when any form fails to load
or fit, its error in the table, and 2 when sktime is missing.
"""

import argparse
import json
import platform
import sys
import time
import traceback

import numpy as np
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier

import _peer  # beside this script, as for the peer scripts

DATASETS = ["japanese_vowels", "basic_motions", "gunpoint", "arrow_head",
            "italy_power_demand", "plaid"]

FORMS = ["nested", "numpy3D"]
LOAD_KW = {"nested": {}, "numpy3D": {"return_type": "numpy3D"}}
CHANNELS_FIRST = {"nested": False, "numpy3D": True}


def classifier_settings(args):
    return dict(max_iter=args.epochs, batch_size=16, learning_rate_init=0.005,
                random_state=0)


def code_lines(form, args, name="<data set>"):
    """The user code of one form, as printed: the calls :func:`run_one`
    makes."""
    load = ", ".join(['split="{}"'] + [f'{k}="{v}"' for k, v in
                                       LOAD_KW[form].items()])
    kw = ", ".join(f"{k}={v}" for k, v in classifier_settings(args).items())
    cf = ", channels_first=True" if CHANNELS_FIRST[form] else ""
    rnn = f'RNNClassifier("gru", (64,), bidirectional=True, {kw}{cf})'
    model = (rnn if args.no_scaler else
             f"make_pipeline(SequenceScaler({cf[2:]}), {rnn})")
    return [f"X, y = load_{name}({load.format('train')})",
            f"X_test, y_test = load_{name}({load.format('test')})",
            f"model = {model}",
            "model.fit(X, y).score(X_test, y_test)"]


def make_model(form, args):
    channels_first = CHANNELS_FIRST[form]
    rnn = RNNClassifier("gru", (64,), bidirectional=True,
                        channels_first=channels_first,
                        **classifier_settings(args))
    if args.no_scaler:
        return rnn
    from seqclf.preprocessing import SequenceScaler
    return make_pipeline(SequenceScaler(channels_first=channels_first), rnn)


def describe(X):
    """Type and shape of ``X`` as loaded, with the range of lengths of a
    nested DataFrame."""
    kind = type(X).__name__
    if kind == "DataFrame":
        lengths = [len(X.iat[i, 0]) for i in range(X.shape[0])]
        cell = type(X.iat[0, 0]).__name__
        steps = (str(lengths[0]) if min(lengths) == max(lengths)
                 else f"{min(lengths)}-{max(lengths)}")
        return f"nested DataFrame {X.shape} of {cell}, {steps} steps"
    return f"{kind} {X.shape} {X.dtype}"


def run_one(name, form, args):
    """Load, fit and score one form of one data set: a result dict."""
    import sktime.datasets

    loader = getattr(sktime.datasets, f"load_{name}")
    row = dict(dataset=name, form=form)
    try:
        X, y = loader(split="train", **LOAD_KW[form])
        X_test, y_test = loader(split="test", **LOAD_KW[form])
    except Exception as exc:
        row["error"] = f"load: {type(exc).__name__}: {exc}"
        return row, None
    row.update(loaded=describe(X), n_train=len(y), n_test=len(y_test),
               n_classes=len(np.unique(y)))
    model = make_model(form, args)
    try:
        tic = time.perf_counter()
        model.fit(X, y)
        row["fit_seconds"] = round(time.perf_counter() - tic, 2)
        proba = model.predict_proba(X_test)
        row["test_accuracy"] = round(float(model.score(X_test, y_test)), 4)
    except Exception as exc:
        row["error"] = f"fit/score: {type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
        return row, None
    rnn = model if args.no_scaler else model[-1]
    row.update(epochs=rnn.n_iter_, stop_reason=rnn.stop_reason_)
    return row, proba


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS,
                        choices=DATASETS, metavar="NAME",
                        help=f"any of {', '.join(DATASETS)}")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-scaler", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    try:
        import sktime
    except ImportError as exc:
        print(f"This check loads its data with sktime, which does not import "
              f"here ({exc}). Install it with:\n"
              f'    pip install "seqclf[sktime]"', file=sys.stderr)
        return 2

    cpu = _peer.machine_info().get("cpu") or platform.machine()
    print(f"sktime {sktime.__version__}; CPU: {cpu}; {args.threads} OpenMP "
          f"thread(s)")
    for form in FORMS:
        print(f"\nUser code, {form}:")
        for line in code_lines(form, args):
            print("    " + line)

    results = []
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        for name in args.datasets:
            first = None
            for form in FORMS:
                row, proba = run_one(name, form, args)
                if form == "nested":
                    first = proba
                    unequal = "-" in row.get("loaded", "")
                elif "loaded" not in row and unequal:
                    # sktime's numpy3D holds equal lengths only.
                    row["skipped"] = ("not offered for unequal lengths ("
                                      + row.pop("error") + ")")
                elif proba is not None and first is not None:
                    diff = float(np.max(np.abs(proba - first)))
                    row["same_as_nested"] = ("identical" if diff == 0
                                             else f"max diff {diff:.2g}")
                results.append(row)
                status = (row.get("error") or row.get("skipped")
                          or f"acc {row['test_accuracy']:.4f} in "
                             f"{row['fit_seconds']:.1f} s")
                print(f"  {name:<19} {form:<8} {status}", flush=True)

    header = (f"{'data set':<19} {'form':<8} {'loaded as':<50} {'train/test':>10}"
              f" {'cls':>3} {'epochs':>6} {'fit (s)':>7} {'test acc':>8}  same as (a)")
    print("\n" + header)
    print("-" * len(header))
    failed = False
    for r in results:
        if "skipped" in r or "error" in r:
            failed |= "error" in r
            print(f"{r['dataset']:<19} {r['form']:<8} "
                  f"{r.get('loaded', '-'):<50} "
                  f"{r.get('error') or r['skipped']}")
            continue
        print(f"{r['dataset']:<19} {r['form']:<8} {r['loaded']:<50} "
              f"{r['n_train']:>4}/{r['n_test']:<5} {r['n_classes']:>3} "
              f"{r['epochs']:>6} {r['fit_seconds']:>7.1f} "
              f"{r['test_accuracy']:>8.4f}  {r.get('same_as_nested', '')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(cpu=cpu, sktime=sktime.__version__,
                           threads=args.threads, options=vars(args),
                           code={form: code_lines(form, args)
                                 for form in FORMS},
                           results=results), f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
