#!/usr/bin/env python
"""
Classify quotes by topic: a recurrent model on word ids vs. bag of words
========================================================================

The data are the quotes of the ``fortune`` program, one file per category
(Debian's ``fortunes`` package: ``sudo apt install fortunes`` puts them in
``/usr/share/games/fortunes``; other distributions ship the same files as
``fortune-mod``). In each file quotes are separated by lines holding only
``%``. This script installs nothing and downloads nothing.

Words are tokenised with scikit-learn's ``CountVectorizer``: its vocabulary
(fitted on the training quotes) numbers the words, and each quote becomes the
sequence of its words' ids, with one more id for words unknown to the
vocabulary. An ``RNNClassifier`` with an embedding front reads the sequences;
a ``LogisticRegression`` on the same vectorizer's bag of words (word counts,
no order) is the baseline. Both see the same stratified split.

Usage (from the repository root)::

    python examples/text_fortunes.py
    python examples/text_fortunes.py --categories computers food love --epochs 5

Options: ``--data-dir`` (default ``/usr/share/games/fortunes``),
``--categories`` (default: six large categories), ``--cell``, ``--hidden``,
``--embedding-dim``, ``--epochs``, ``--max-words`` (quotes are cut to their
first words), ``--random-state``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from seqclf import RNNClassifier

DEFAULT_DIR = "/usr/share/games/fortunes"
DEFAULT_CATEGORIES = ["computers", "definitions", "people", "politics",
                      "science", "songs-poems"]


def read_fortunes(data_dir, categories):
    """Return ``(texts, labels)``: every quote of the given category files."""
    texts, labels = [], []
    for category in categories:
        path = Path(data_dir) / category
        if not path.is_file():
            raise FileNotFoundError(
                f"No fortune file {path}. Install Debian's 'fortunes' package "
                f"(sudo apt install fortunes) or pass --data-dir."
            )
        raw = path.read_bytes().decode("utf-8", errors="replace")
        for quote in raw.split("\n%\n"):
            quote = quote.strip().strip("%").strip()
            if quote:
                texts.append(quote)
                labels.append(category)
    return texts, np.array(labels)


def to_ids(texts, vectorizer, max_words):
    """Word-id sequences in the vectorizer's vocabulary; unknown words get
    the id ``len(vocabulary)``. Quotes with no word become one unknown."""
    vocab = vectorizer.vocabulary_
    analyze = vectorizer.build_analyzer()
    unknown = len(vocab)
    seqs = []
    for text in texts:
        ids = [vocab.get(w, unknown) for w in analyze(text)[:max_words]]
        seqs.append(np.array(ids or [unknown], dtype=np.intp))
    return seqs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data-dir", default=DEFAULT_DIR)
    parser.add_argument("--categories", nargs="+", default=DEFAULT_CATEGORIES)
    parser.add_argument("--cell", default="gru", choices=["rnn", "gru", "lstm"])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-words", type=int, default=100)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        texts, labels = read_fortunes(args.data_dir, args.categories)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    train, test = train_test_split(np.arange(len(texts)), test_size=0.25,
                                   stratify=labels, random_state=args.random_state)
    texts_train = [texts[i] for i in train]
    texts_test = [texts[i] for i in test]
    y_train, y_test = labels[train], labels[test]
    print(f"{len(texts)} quotes in {len(args.categories)} categories; "
          f"{len(train)} to train, {len(test)} to test")

    vectorizer = CountVectorizer(min_df=2)
    bag_train = vectorizer.fit_transform(texts_train)
    bag_test = vectorizer.transform(texts_test)
    vocab_size = len(vectorizer.vocabulary_) + 1          # + the unknown id
    print(f"vocabulary: {vocab_size - 1} words seen at least twice in training")

    tic = time.perf_counter()
    baseline = LogisticRegression(max_iter=2000).fit(bag_train, y_train)
    base_acc = baseline.score(bag_test, y_test)
    base_s = time.perf_counter() - tic

    seq_train = to_ids(texts_train, vectorizer, args.max_words)
    seq_test = to_ids(texts_test, vectorizer, args.max_words)
    clf = RNNClassifier(args.cell, (args.hidden,), embedding_dim=args.embedding_dim,
                        vocab_size=vocab_size, bidirectional=True, dropout=0.3,
                        batch_size=32, max_iter=args.epochs,
                        random_state=args.random_state, verbose=1)
    tic = time.perf_counter()
    clf.fit(seq_train, y_train)
    rnn_acc = clf.score(seq_test, y_test)
    rnn_s = time.perf_counter() - tic

    print(f"LogisticRegression on bag of words: test accuracy {base_acc:.4f} "
          f"({base_s:.1f} s)")
    print(f"RNNClassifier({args.cell!r}, bidirectional, embedding "
          f"{args.embedding_dim}) on word ids: test accuracy {rnn_acc:.4f} "
          f"({rnn_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
