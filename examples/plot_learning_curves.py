#!/usr/bin/env python
"""
Learning curves of recurrent models on MNIST rows
=================================================

Each model trains with a held-out validation split (``early_stopping=True``
with ``n_iter_no_change`` as large as the number of epochs, so that every
epoch runs and its validation accuracy is recorded). The figure has the
training loss per epoch on the left and the validation accuracy per epoch on
the right, one line per model, and is written as a PNG.

Needs matplotlib (``pip install -e ".[plot]"``). Usage (from the repository
root)::

    python examples/plot_learning_curves.py [--epochs 5] [--n-train 20000]
        [--models rnn31 gru128 lstm128] [--output learning_curves.png]
        [--data-home FOLDER] [--dataset mnist|digits]

``--dataset digits`` trains on scikit-learn's bundled 8x8 digits (8 steps of
8 pixels) instead of MNIST, which needs no download and takes seconds: the
documentation draws its figure that way (15 epochs), so that it builds
without a network; the command above draws it on MNIST.
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
from sklearn.datasets import load_digits

from seqclf import RNNClassifier
from seqclf.datasets import load_mnist

MODELS = {
    "rnn31": ("tanh RNN, 31 units", dict(cell="rnn", hidden_layer_sizes=(31,))),
    "rnn31x3": ("3-layer tanh RNN, 31 units",
                dict(cell="rnn", hidden_layer_sizes=(31, 31, 31))),
    "gru128": ("GRU, 128 units", dict(cell="gru", hidden_layer_sizes=(128,))),
    "lstm128": ("LSTM, 128 units", dict(cell="lstm", hidden_layer_sizes=(128,))),
    "bigru64": ("bidirectional GRU, 64 units",
                dict(cell="gru", hidden_layer_sizes=(64,), bidirectional=True)),
}

# The gallery runs this file without its docstring: the description is spelled out.
p = argparse.ArgumentParser(description="Draw the learning curves of recurrent models.")
p.add_argument("--models", nargs="+", default=["rnn31", "gru128", "lstm128"],
               choices=list(MODELS))
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--n-train", type=int, default=20000,
               help="training images used (default 20000 of 60000)")
p.add_argument("--output", default="learning_curves.png",
               help="PNG to write; an empty string writes none")
p.add_argument("--data-home", default=None)
p.add_argument("--dataset", default="mnist", choices=["mnist", "digits"])
args = p.parse_args()

# %%
# The data: images read row by row, one row a step, pixels in [0, 1].
if args.dataset == "mnist":
    (X, y), _ = load_mnist(args.data_home)
    title = "MNIST rows (28 steps x 28 features)"
else:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 8, 8)
    title = "8x8 digits (8 steps x 8 features)"
X, y = X[:args.n_train], y[:args.n_train]

# %%
# Each model's training loss and validation accuracy, epoch by epoch.
fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
for name in args.models:
    label, params = MODELS[name]
    clf = RNNClassifier(**params, max_iter=args.epochs, early_stopping=True,
                        validation_fraction=0.1, n_iter_no_change=args.epochs,
                        random_state=0)
    tic = time.perf_counter()
    clf.fit(X, y)
    print(f"{label}: best validation accuracy "
          f"{clf.best_validation_score_:.4f}, {time.perf_counter() - tic:.1f} s",
          flush=True)
    epochs = range(1, clf.n_iter_ + 1)
    ax_loss.plot(epochs, clf.loss_curve_, marker="o", label=label)
    ax_val.plot(epochs, clf.validation_scores_, marker="o", label=label)
ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log",
            title="Training loss")
ax_val.set(xlabel="epoch", ylabel="accuracy",
           title="Validation accuracy (10% held out)")
for ax in (ax_loss, ax_val):
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
fig.suptitle(f"{title}, {len(X):,} training images")
fig.tight_layout()
if args.output:
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")
