#!/usr/bin/env python
"""
Reproduce the Keras/TensorFlow MNIST tutorials' recurrent models
================================================================

Each image is read row by row: 28 steps of 28 pixels in [0, 1]. Every model
trains on the 60,000 training images with Adam (learning rate 0.001) and
``random_state=0``, then is scored on the 10,000 test images; the script
prints the test accuracy and the wall time (training and scoring).

Usage (from the repository root)::

    python examples/mnist_tutorials.py rnn31            # one model
    python examples/mnist_tutorials.py all --epochs 2   # every model, 2 epochs

Options: ``--epochs`` (default 10, the tutorials'), ``--data-home`` (folder
of the four MNIST IDX files; default ``SEQCLF_DATA`` or ``~/seqclf_data``,
downloaded there once if missing), ``--threads`` (default: all usable).
The fitted model does not depend on the thread count.
"""

import argparse
import json
import time

from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier
from seqclf.datasets import load_mnist

# name: (description, estimator parameters, the tutorial's test accuracy)
MODELS = {
    "rnn31": ("1-layer tanh RNN, 31 units",
              dict(cell="rnn", hidden_layer_sizes=(31,), batch_size=128), 0.89),
    "rnn31x3": ("3-layer tanh RNN, 31 units each",
                dict(cell="rnn", hidden_layer_sizes=(31, 31, 31), batch_size=128),
                0.91),
    "gru256x2": ("2-layer GRU, 256 units",
                 dict(cell="gru", hidden_layer_sizes=(256, 256), batch_size=64),
                 0.99),
    "lstm256x2": ("2-layer LSTM, 256 units",
                  dict(cell="lstm", hidden_layer_sizes=(256, 256), batch_size=64),
                  0.99),
    "bilstm256x2": ("2-layer bidirectional LSTM, 256 units",
                    dict(cell="lstm", hidden_layer_sizes=(256, 256),
                         bidirectional=True, batch_size=64), 0.99),
    "relu512x2": ("2-layer SimpleRNN, 512 units, relu",
                  dict(cell="rnn", hidden_layer_sizes=(512, 512),
                       activation="relu", batch_size=64), 0.98),
}


def run(name, data, epochs, verbose):
    (X_train, y_train), (X_test, y_test) = data
    description, params, theirs = MODELS[name]
    clf = RNNClassifier(**params, learning_rate_init=0.001, max_iter=epochs,
                        random_state=0, verbose=verbose)
    tic = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - tic
    accuracy = clf.score(X_test, y_test)
    wall = time.perf_counter() - tic
    result = dict(model=name, description=description, epochs=epochs,
                  batch_size=params["batch_size"], test_accuracy=round(accuracy, 4),
                  tutorial_accuracy=theirs, fit_seconds=round(fit_s, 1),
                  wall_seconds=round(wall, 1), loss_curve=clf.loss_curve_)
    print(f"{description}: test accuracy {accuracy:.4f} (tutorial ~{theirs}), "
          f"{epochs} epochs, wall time {wall:.1f} s", flush=True)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("model", choices=[*MODELS, "all"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--data-home", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="append results to this file")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = p.parse_args()

    data = load_mnist(args.data_home)
    names = list(MODELS) if args.model == "all" else [args.model]
    # The OpenMP thread count for the whole run, as users set it (None: no
    # limit); seqclf reads it, and limits BLAS itself around its kernels.
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        for name in names:
            result = run(name, data, args.epochs, verbose=0 if args.quiet else 1)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
