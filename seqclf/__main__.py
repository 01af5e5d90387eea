"""Train and evaluate an RNNClassifier on MNIST read row by row.

``python -m seqclf`` loads MNIST (from the data folder, downloading it once
if needed), trains a recurrent classifier on the 60,000 training images as
sequences of 28 rows of 28 pixels, and prints the model summary, the
training time and, last, the test accuracy. Without MNIST on disk or a
network, it runs on scikit-learn's bundled 8 x 8 digits instead.
"""

import argparse
import sys
import time

from threadpoolctl import threadpool_limits

from . import RNNClassifier, __version__
from ._openmp_helpers import effective_n_threads
from .datasets import load_mnist


def _load_digits_sequences():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 8, 8)          # 8 steps (rows) x 8 pixels
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    return (X_train, y_train), (X_test, y_test)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m seqclf",
        description="Train an RNNClassifier on MNIST rows and print its test "
                    "accuracy.")
    p.add_argument("--cell", default="lstm", choices=["rnn", "gru", "lstm"])
    p.add_argument("--hidden", type=int, nargs="+", default=[128],
                   help="units per layer (default: 128)")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: 4 on MNIST, 40 on the digits")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: 128 on MNIST, 32 on the digits")
    p.add_argument("--threads", type=int, default=None,
                   help="OpenMP threads (default: every usable core)")
    p.add_argument("--data-home", default=None,
                   help="folder of the MNIST IDX files (default: SEQCLF_DATA "
                        "or ~/seqclf_data)")
    p.add_argument("--no-download", action="store_true",
                   help="do not try to download missing MNIST files")
    p.add_argument("--random-state", type=int, default=0)
    args = p.parse_args(argv)

    tic = time.perf_counter()
    try:
        (X_train, y_train), (X_test, y_test) = load_mnist(
            args.data_home, download=not args.no_download)
        name, epochs, batch = "MNIST", 4, 128
    except (OSError, ValueError) as exc:
        print(f"MNIST is not available: {exc}", file=sys.stderr)
        print("Running on scikit-learn's bundled 8x8 digits instead "
              "(8 steps x 8 features).", file=sys.stderr)
        (X_train, y_train), (X_test, y_test) = _load_digits_sequences()
        name, epochs, batch = "digits", 40, 32
    epochs = args.epochs or epochs
    batch = args.batch_size or batch
    n_steps, n_features = X_train.shape[1:]
    print(f"seqclf {__version__}: {name}, {len(X_train):,} training and "
          f"{len(X_test):,} test sequences of {n_steps} steps x {n_features} "
          f"features (loaded in {time.perf_counter() - tic:.1f} s)")

    clf = RNNClassifier(args.cell, tuple(args.hidden), batch_size=batch,
                        max_iter=epochs, random_state=args.random_state,
                        verbose=1)
    # The OpenMP thread count for the whole run, set as users set it (None:
    # no limit); fit and score read it through effective_n_threads() and
    # limit BLAS to one thread themselves.
    with threadpool_limits(limits=args.threads, user_api="openmp"):
        print(f"Training {epochs} epochs, batch {batch}, "
              f"{effective_n_threads()} threads:", flush=True)
        tic = time.perf_counter()
        clf.fit(X_train, y_train)
        train_s = time.perf_counter() - tic
        accuracy = clf.score(X_test, y_test)
    clf.summary()
    print(f"training time: {train_s:.1f} s "
          f"({epochs * len(X_train) / train_s:,.0f} samples/s)")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
