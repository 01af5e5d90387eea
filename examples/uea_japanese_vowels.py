#!/usr/bin/env python
"""
Tell speakers apart by their vowels: a GRU on series of unequal length
======================================================================

The JapaneseVowels data set of the UEA archive: nine male speakers each
uttered the vowels /ae/ in succession, and each utterance is a series of
12 LPC cepstrum coefficients (12 channels) of 7 to 29 frames; 270 series to
train and 370 to test, the split sktime ships. The task is to name the
speaker of each utterance.

The data are used as sktime loads them, with no conversion: its default
return type, the nested DataFrame (a row per series, a column per channel,
each cell a ``pd.Series`` of that channel's frames, unequal lengths kept),
goes into a scikit-learn pipeline of ``SequenceScaler`` (each channel
standardised over all the valid frames of all training series) and an
``RNNClassifier`` (a bidirectional GRU), which reads the frame as the step
and the channels as its features, each series for its own length. The
labels are sktime's strings ``"1"`` to ``"9"``. The baselines, fitted on the
same DataFrames: a ``LogisticRegression`` on seven summary features of each
channel (mean, standard deviation, minimum, maximum, first and last value,
and the length), and, where numba imports, sktime's
``MiniRocketMultivariateVariable`` (random convolution features for series
of unequal length, a ridge classifier on them), a strong method for such
data. Each model is fitted on the training split only; the script prints
its test accuracy and fit time.

The GRU's settings (64 units each way, learning rate 0.005, batch size 16,
at most 50 epochs, seed 0) were fixed before any test score was seen, the
same as for the five other data sets of ``benchmarks/uea_as_it_comes.py``;
they are not tuned for this data set. On a 2-core AMD EPYC, one thread,
the default settings print test accuracy 0.986 (3 s to fit, 26 epochs) for
the GRU, 0.986 (0.1 s) for the summary features and 0.989 (2 s) for
MiniRocket; seeds 1-4 give the GRU 0.976-0.986.

sktime's own ``evaluate`` (``sktime.classification.model_evaluation``) takes
only sktime's estimators: given this pipeline, it scores every fold NaN with
a warning that fitting failed (a scikit-learn ``Pipeline`` has no ``clone``
method). ``seqclf.sktime.RNNTimeSeriesClassifier`` is the same network on
sktime's estimator interface (the same parameters, the same predictions as
``RNNClassifier``), unequal lengths included::

    from seqclf.sktime import RNNTimeSeriesClassifier

    evaluate(RNNTimeSeriesClassifier("gru", 64, bidirectional=True,
                                     random_state=0),
             X=X_train, y=y_train, cv=KFold(5, shuffle=True, random_state=0),
             scoring=accuracy_score)

The data come from the optional ``sktime`` package (``pip install
"seqclf[sktime]"``), whose wheel holds them: nothing is downloaded.

Usage (from the repository root)::

    python examples/uea_japanese_vowels.py
    python examples/uea_japanese_vowels.py --cell lstm --hidden 32 --epochs 20

Options: ``--cell``, ``--hidden``, ``--epochs``, ``--learning-rate``,
``--batch-size``, ``--no-bidirectional``, ``--seed``, ``--no-minirocket``
(skip that baseline, whose first run also compiles its numba code),
``--threads`` (OpenMP threads, default 1: a mini-batch of 16 short series
gives more threads little to share at each step), ``--json`` (write the
results to this file).
"""

import argparse
import json
import platform
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier
from seqclf.preprocessing import SequenceScaler


def load_data():
    """Return ``(X_train, y_train), (X_test, y_test)`` as sktime loads them
    (nested DataFrames, string labels), or ``None`` when sktime is missing."""
    try:
        from sktime.datasets import load_japanese_vowels
    except ImportError as exc:
        print(f"This example reads the JapaneseVowels data from sktime, which "
              f"does not import here ({exc}). Install it with:\n"
              f'    pip install "seqclf[sktime]"', file=sys.stderr)
        return None
    return [load_japanese_vowels(split=split) for split in ("train", "test")]


def summary_features(X):
    """Per channel of each series of a nested DataFrame: mean, standard
    deviation, minimum, maximum, first and last value; then its length."""
    rows = []
    for i in range(X.shape[0]):
        series = np.column_stack([np.asarray(cell) for cell in X.iloc[i]])
        rows.append(np.concatenate([
            series.mean(axis=0), series.std(axis=0), series.min(axis=0),
            series.max(axis=0), series[0], series[-1], [len(series)]]))
    return np.array(rows)


def minirocket():
    """sktime's MiniRocket for unequal lengths and a ridge classifier, or
    None (with the reason) when it does not import (it needs numba)."""
    try:
        import numba  # noqa: F401  (sktime imports it only at fit)
        from sktime.classification.compose import SklearnClassifierPipeline
        from sktime.transformations.panel.rocket import MiniRocketMultivariateVariable
    except ImportError as exc:
        return None, str(exc)
    # An sktime transformer, so in sktime's pipeline rather than
    # scikit-learn's; series shorter than its 9-step kernels are padded.
    return SklearnClassifierPipeline(
        make_pipeline(StandardScaler(with_mean=False),
                      RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))),
        [MiniRocketMultivariateVariable(pad_value_short_series=0.0,
                                        random_state=0)]), None


def cpu_name():
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_models(args):
    """Name -> estimator, all of them fitted on the DataFrames as loaded."""
    rnn = RNNClassifier(
        args.cell, (args.hidden,), bidirectional=args.bidirectional,
        learning_rate_init=args.learning_rate, batch_size=args.batch_size,
        max_iter=args.epochs, random_state=args.seed)
    name = (f"RNNClassifier({args.cell!r}, {args.hidden}"
            f"{', bidirectional' if args.bidirectional else ''})")
    models = {
        name: make_pipeline(SequenceScaler(), rnn),
        "LogisticRegression on summary features": make_pipeline(
            FunctionTransformer(summary_features), StandardScaler(),
            LogisticRegression(max_iter=1000)),
    }
    if args.minirocket:
        model, reason = minirocket()
        if model is None:
            print(f"(MiniRocket left out: {reason}; it needs numba.)")
        else:
            models["MiniRocketMultivariateVariable + RidgeClassifierCV"] = model
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--cell", default="gru", choices=["rnn", "gru", "lstm"])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=0.005)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-bidirectional", dest="bidirectional",
                        action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-minirocket", dest="minirocket",
                        action="store_false")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)

    data = load_data()
    if data is None:
        return 2
    (X_train, y_train), (X_test, y_test) = data
    lengths = [len(X.iat[i, 0]) for X in (X_train, X_test)
               for i in range(X.shape[0])]
    cpu = cpu_name()
    print(f"JapaneseVowels: {len(X_train)} series to train, {len(X_test)} to "
          f"test, {X_train.shape[1]} channels, {min(lengths)}-{max(lengths)} "
          f"steps, {len(np.unique(y_train))} speakers")
    print(f"CPU: {cpu}")

    results = []
    # The OpenMP thread count for the whole run, as users set it.
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        for name, model in make_models(args).items():
            with warnings.catch_warnings():
                # A few epochs (as in quick runs) end with a warning that
                # training did not converge, which the table says enough;
                # sktime's pipeline warns that it may not handle unequal
                # lengths, which MiniRocketMultivariateVariable does.
                warnings.simplefilter("ignore")
                tic = time.perf_counter()
                model.fit(X_train, y_train)
                fit_s = time.perf_counter() - tic
                accuracy = float(np.mean(model.predict(X_test) == y_test))
            results.append(dict(model=name, test_accuracy=round(accuracy, 4),
                                fit_seconds=round(fit_s, 2)))
            if name.startswith("RNN"):
                results[-1]["epochs"] = model[-1].n_iter_

    width = max(len(r["model"]) for r in results)
    print(f"\n{'model':<{width}}  test accuracy  fit (s)")
    for r in results:
        print(f"{r['model']:<{width}}  {r['test_accuracy']:13.4f}"
              f"  {r['fit_seconds']:7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(cpu=cpu, threads=args.threads, options=vars(args),
                           results=results), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
