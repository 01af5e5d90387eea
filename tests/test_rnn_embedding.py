"""RNNClassifier on token ids: the embedding front (embedding_dim,
vocab_size) as the estimator exposes it."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from threadpoolctl import threadpool_limits

from seqclf import RNNClassifier


def _order_task(N, T=16, V=40, seed=0):
    """Tokens 1 and 2 appear once each; the class is whether 1 comes first."""
    rng = np.random.default_rng(seed)
    X = rng.integers(3, V, size=(N, T))
    a = rng.integers(0, T, size=N)
    b = (a + rng.integers(1, T, size=N)) % T
    X[np.arange(N), a] = 1
    X[np.arange(N), b] = 2
    return X, (a < b).astype(int)


@pytest.mark.parametrize("cell, bidirectional", [
    ("rnn", False), ("gru", False), ("lstm", False), ("gru", True)])
def test_learns_order_that_bag_of_words_cannot(cell, bidirectional):
    X, y = _order_task(3000)
    Xtr, ytr, Xte, yte = X[:2000], y[:2000], X[2000:], y[2000:]
    clf = RNNClassifier(cell, (24,), embedding_dim=8, bidirectional=bidirectional,
                        batch_size=32, max_iter=8, learning_rate_init=0.01,
                        random_state=0).fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= 0.95

    def bag(X):
        counts = np.zeros((len(X), 40))
        np.add.at(counts, (np.arange(len(X))[:, None], X), 1)
        return counts

    lr = LogisticRegression(max_iter=1000).fit(bag(Xtr), ytr)
    assert lr.score(bag(Xte), yte) < 0.58        # chance is 0.5


@pytest.mark.parametrize("kwargs, layers, total", [
    # Keras: Embedding(1000, 64) -> LSTM(128) -> Dense(10)
    (dict(cell="lstm", hidden_layer_sizes=128),
     [("embedding (Embedding)", "(None, 12, 64)", "64,000"),
      ("lstm (LSTM)", "(None, 128)", "98,816"),
      ("dense (Dense)", "(None, 10)", "1,290")], "164,106"),
    # Embedding(1000, 64) -> GRU(256, return_sequences) -> SimpleRNN(128) -> Dense(10)
    (dict(cell=("gru", "rnn"), hidden_layer_sizes=(256, 128)),
     [("embedding (Embedding)", "(None, 12, 64)", "64,000"),
      ("gru (GRU)", "(None, 12, 256)", "247,296"),
      ("simple_rnn (SimpleRNN)", "(None, 128)", "49,280"),
      ("dense (Dense)", "(None, 10)", "1,290")], "361,866"),
])
def test_summary_matches_keras(kwargs, layers, total):
    rng = np.random.default_rng(11)
    X = rng.integers(0, 1000, size=(40, 12))
    y = np.arange(40) % 10
    clf = RNNClassifier(embedding_dim=64, vocab_size=1000, max_iter=1,
                        random_state=0, **kwargs).fit(X, y)
    lines = []
    clf.summary(print_fn=lines.append)
    rows = [line.split() for line in lines if "(None" in line]
    assert [(" ".join(r[:2]), " ".join(r[2:-1]), r[-1]) for r in rows] == layers
    assert f"Total params: {total}" in lines
    assert clf.embedding_.shape == (1000, 64)


def test_learned_vocabulary_and_unseen_ids():
    X, y = _order_task(400, V=30)
    clf = RNNClassifier("gru", (8,), embedding_dim=4, batch_size=32, max_iter=2,
                        random_state=0).fit(X, y)
    assert clf.vocab_size_ == 30
    assert clf.embedding_.shape == (31, 4)
    assert not clf.embedding_[30].any()          # the untrained OOV row
    X_new = X[:5].copy()
    X_new[:, 3] = [30, 31, 1000, 10 ** 9, 29]
    X_oov = X_new.copy()
    X_oov[:4, 3] = 30
    np.testing.assert_array_equal(clf.predict_proba(X_new), clf.predict_proba(X_oov))
    # Cross-validation folds may hold ids that training never saw.
    search = GridSearchCV(
        RNNClassifier("rnn", (8,), embedding_dim=4, batch_size=32, max_iter=2,
                      random_state=0),
        {"embedding_dim": [2, 4]}, cv=KFold(3))
    X_cv = X.copy()
    X_cv[:130, 0] = 35                          # ids only in the first fold
    search.fit(X_cv, y)
    assert set(search.cv_results_["param_embedding_dim"]) == {2, 4}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_partial_fit_and_warm_start_vocabulary():
    X, y = _order_task(200, V=20)
    clf = RNNClassifier("lstm", (8,), embedding_dim=4, batch_size=32,
                        random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X[:50], y[:50])
    X_big = X[:50].copy()
    X_big[7, 2] = 20
    with pytest.raises(ValueError, match=r"Token id 20 \(sample 7, step 2\) is "
                                         r"beyond the vocabulary learned"):
        clf.partial_fit(X_big, y[:50])
    fixed = RNNClassifier("lstm", (8,), embedding_dim=4, vocab_size=25,
                          batch_size=32, random_state=0)
    fixed.partial_fit(X, y, classes=[0, 1]).partial_fit(X_big, y[:50])
    X_big[7, 2] = 25
    with pytest.raises(ValueError, match=r"Token id 25 \(sample 7, step 2\) is "
                                         r"not below vocab_size=25"):
        fixed.partial_fit(X_big, y[:50])
    with pytest.raises(ValueError, match="not below vocab_size=25"):
        fixed.predict(X_big)
    # Warm starts continue exactly, the lazy optimizer state included.
    kw = dict(embedding_dim=4, batch_size=32, random_state=0, dropout=0.2)
    a = RNNClassifier("gru", (8,), max_iter=5, **kw).fit(X, y)
    b = RNNClassifier("gru", (8,), max_iter=2, warm_start=True, **kw).fit(X, y)
    b.set_params(max_iter=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    b.set_params(embedding_dim=6)
    with pytest.raises(ValueError, match="embedding_dim"):
        b.fit(X, y)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_mask_value_padding_equals_ragged_lists(padding, bidirectional):
    rng = np.random.default_rng(12)
    seqs = [rng.integers(1, 15, size=n) for n in rng.integers(1, 9, size=60)]
    y = np.array([s[0] % 2 for s in seqs])
    padded = np.zeros((60, 8), dtype=np.int32)
    for i, s in enumerate(seqs):
        if padding == "post":
            padded[i, :len(s)] = s
        else:
            padded[i, 8 - len(s):] = s
    kw = dict(embedding_dim=3, vocab_size=15, bidirectional=bidirectional,
              batch_size=16, max_iter=2, random_state=0)
    ragged = RNNClassifier("gru", (5,), **kw).fit(seqs, y)
    masked = RNNClassifier("gru", (5,), mask_value=0, **kw).fit(padded, y)
    np.testing.assert_array_equal(ragged.embedding_, masked.embedding_)
    np.testing.assert_array_equal(ragged.predict_proba(seqs),
                                  masked.predict_proba(padded))
    # And each sequence alone gives the same as in a batch.
    alone = np.vstack([ragged.predict_proba([s]) for s in seqs[:10]])
    np.testing.assert_allclose(alone, ragged.predict_proba(seqs[:10]), rtol=1e-6)


def test_same_model_for_any_thread_count_and_pickle():
    X, y = _order_task(300)
    models = []
    for n in (1, 2):
        with threadpool_limits(n, user_api="openmp"):
            models.append(RNNClassifier("lstm", (8,), embedding_dim=4,
                                        batch_size=32, max_iter=2, dropout=0.1,
                                        random_state=0).fit(X, y))
    assert models[0]._network.coefs.tobytes() == models[1]._network.coefs.tobytes()
    loaded = pickle.loads(pickle.dumps(models[0]))
    np.testing.assert_array_equal(loaded.predict_proba(X), models[0].predict_proba(X))
    assert np.shares_memory(loaded.embedding_, loaded._network.coefs)
    assert clone(models[0]).get_params()["embedding_dim"] == 4
    loaded.set_params(warm_start=True, max_iter=1).fit(X, y)     # trains on


@pytest.mark.parametrize("X, match", [
    (np.zeros((4, 5)), "must hold integer token ids, got dtype float64"),
    (np.array([[0, 1, -3], [1, 2, 3]] * 2), r"sample 0 holds -3 at step 2"),
    ([np.array([1, 2]), np.array([], dtype=int), np.array([3])],
     r"X\[1\] has zero steps"),
    (np.zeros((4, 0), dtype=int), "0 feature"),
    ([np.array([1, 2]), np.array([1.5])], r"X\[1\] must hold integer"),
    ([np.array([[1, 2]]), np.array([3])], r"X\[0\] has shape \(1, 2\)"),
    (np.zeros((4, 3, 2), dtype=int), "2-D integer array"),
    (np.array([["a", "b"]] * 4), "integer token ids, got dtype <U1"),
])
def test_bad_token_input(X, match):
    clf = RNNClassifier("rnn", (4,), embedding_dim=2, max_iter=1)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, np.arange(len(X)) % 2)


def test_bad_token_input_at_predict_and_bad_parameters():
    X, y = _order_task(64, V=10)
    clf = RNNClassifier("rnn", (4,), embedding_dim=2, vocab_size=10,
                        max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match=r"Token id 10 \(sample 1, step 0\)"):
        clf.predict(np.vstack([X[:1], [10] + [1] * 15]))
    with pytest.raises(ValueError, match="integer token ids"):
        clf.predict(X.astype(float))
    with pytest.raises(ValueError, match="sample 2 holds -1 at step 4"):
        bad = X[:3].copy()
        bad[2, 4] = -1
        clf.predict(bad)
    with pytest.raises(ValueError, match="vocab_size=9"):
        RNNClassifier(embedding_dim=2, vocab_size=9, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="mask_value must be an integer token id"):
        RNNClassifier(embedding_dim=2, mask_value=np.nan).fit(X, y)
    with pytest.raises(ValueError, match="mask_value must be an integer token id"):
        RNNClassifier(embedding_dim=2, mask_value=0.5).fit(X, y)
    with pytest.raises(ValueError, match="set embedding_dim too"):
        RNNClassifier(vocab_size=10).fit(X.astype(float), y)
    with pytest.raises(ValueError, match="embedding_dim"):
        RNNClassifier(embedding_dim=0).fit(X, y)


def test_count_vectorizer_vocabulary_feeds_the_classifier():
    docs = ["the cat sat", "a dog ran far", "the dog sat", "a cat ran"] * 10
    y = [0, 1, 0, 1] * 10
    analyzer = CountVectorizer().fit(docs)
    vocab, analyze = analyzer.vocabulary_, analyzer.build_analyzer()
    seqs = [np.array([vocab[w] for w in analyze(d)]) for d in docs]
    clf = RNNClassifier("gru", (8,), embedding_dim=4, vocab_size=len(vocab),
                        batch_size=8, max_iter=20, learning_rate_init=0.02,
                        random_state=0).fit(seqs, y)
    assert clf.score(seqs, y) == 1.0


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_learns_with_every_option(solver):
    X, y = _order_task(600)
    sw = np.random.default_rng(13).uniform(0.5, 1.5, size=600)
    clf = RNNClassifier(
        ("gru", "lstm"), (12, 8), embedding_dim=6, bidirectional=True,
        solver=solver, early_stopping=True, clip_norm=1.0, alpha=1e-3,
        dropout=0.1, recurrent_dropout=0.1, batch_size=32, max_iter=6,
        learning_rate_init=0.01 if solver == "adam" else 0.1, random_state=0,
    ).fit(X, y, sample_weight=sw)
    assert clf.score(X, y) > 0.9
    assert len(clf.validation_scores_) == clf.n_iter_
