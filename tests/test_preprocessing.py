"""SequenceScaler: per-feature statistics over valid steps, output in the
input's form."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from seqclf import RNNClassifier
from seqclf.preprocessing import SequenceScaler


def _ragged(seed=0, n=30, F=3):
    rng = np.random.default_rng(seed)
    return [rng.normal(5, 3, size=(rng.integers(2, 9), F)) * [1, 10, 100][:F]
            for _ in range(n)]


def test_statistics_over_valid_steps_of_ragged_sequences():
    seqs = _ragged()
    sc = SequenceScaler().fit(seqs)
    steps = np.concatenate(seqs)
    np.testing.assert_allclose(sc.mean_, steps.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sc.scale_, steps.std(axis=0), rtol=1e-12)
    assert sc.n_steps_seen_ == len(steps) and sc.n_features_in_ == 3
    out = sc.transform(seqs)
    assert isinstance(out, list) and [o.shape for o in out] == [s.shape for s in seqs]
    pooled = np.concatenate(out)
    np.testing.assert_allclose(pooled.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(pooled.std(axis=0), 1, rtol=1e-12)
    back = sc.inverse_transform(out)
    for a, b in zip(back, seqs):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("mask_value", [-1.0, np.nan])
def test_padding_is_left_out_and_kept(mask_value):
    seqs = _ragged(1)
    T = max(len(s) for s in seqs)
    padded = np.full((len(seqs), T, 3), mask_value)
    for i, s in enumerate(seqs):
        padded[i, T - len(s):] = s                   # pre-padding
    sc = SequenceScaler(mask_value=mask_value).fit(padded)
    ref = SequenceScaler().fit(seqs)
    np.testing.assert_allclose(sc.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(sc.scale_, ref.scale_, rtol=1e-12)
    out = sc.transform(padded)
    pad = np.isnan(padded) if np.isnan(mask_value) else padded == mask_value
    np.testing.assert_array_equal(np.isnan(out) if np.isnan(mask_value)
                                  else out == mask_value, pad)
    for i, s in enumerate(ref.transform(seqs)):
        np.testing.assert_allclose(out[i, T - len(s):], s, rtol=1e-12)


def test_each_channel_not_each_column():
    """2-D rows read through n_steps: one mean a feature, not a (step,
    feature) column as StandardScaler's."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4, 2)) * [1, 100] + np.arange(4)[None, :, None]
    flat = X.reshape(50, -1)
    out = SequenceScaler(n_steps=4).fit_transform(flat).reshape(50, 4, 2)
    np.testing.assert_allclose(out.reshape(-1, 2).mean(axis=0), 0, atol=1e-12)
    # The step offsets survive (StandardScaler would remove them).
    assert np.ptp(out.mean(axis=(0, 2))) > 0.5
    assert np.ptp(StandardScaler().fit_transform(flat).reshape(50, 4, 2)
                  .mean(axis=(0, 2))) < 1e-12


def test_channels_first_forms_agree():
    rng = np.random.default_rng(0)
    X = rng.normal(2, 4, size=(20, 3, 7))            # (n, channels, steps)
    ref = SequenceScaler().fit(X.transpose(0, 2, 1))
    sc = SequenceScaler(channels_first=True).fit(X)
    np.testing.assert_allclose(sc.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(sc.transform(X),
                               ref.transform(X.transpose(0, 2, 1)).transpose(0, 2, 1),
                               rtol=1e-12)
    flat = X.reshape(20, -1)                         # channel-major rows
    np.testing.assert_allclose(
        SequenceScaler(channels_first=True, n_steps=7).fit_transform(flat),
        sc.transform(X).reshape(20, -1), rtol=1e-12)


def test_in_a_pipeline_and_a_grid_search():
    seqs = _ragged(2, n=60, F=2)
    y = np.array([int(s[0, 0] > 5) for s in seqs])
    pipe = make_pipeline(SequenceScaler(),
                         RNNClassifier("gru", 6, max_iter=3, random_state=0))
    search = GridSearchCV(pipe, {"sequencescaler__with_std": [True, False]}, cv=2)
    search.fit(seqs, y)
    assert set(search.cv_results_["param_sequencescaler__with_std"]) == {True, False}


def test_bad_input_and_unfitted():
    sc = SequenceScaler()
    with pytest.raises(ValueError, match="NaN"):
        sc.fit(np.array([[[1.0], [np.nan]]]))
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        sc.transform(_ragged())
    sc.fit(_ragged())
    with pytest.raises(ValueError, match="2 features per step.*3 features per step"):
        sc.transform(_ragged(F=2))


# -- a data step never comes out as padding ---------------------------------

def _at_the_means(dtype):
    """Sequences whose training means are (2, 20) exactly, with steps at
    the means in the middle, at the end, and a sequence of nothing else."""
    seqs = [[[1, 10], [2, 20], [3, 30]],
            [[3, 30], [1, 10], [2, 20]],
            [[2, 20]],
            [[1, 30], [2, 20], [3, 10]],
            [[4, 25], [0, 15]]]
    return [np.array(s, dtype=dtype) for s in seqs]


def _in_form(seqs, form):
    """``seqs`` in an input form, padded with zeros (before the data of odd
    sequences, after it for even ones) where the form can hold padding.

    Returns ``(X, kw, pads, to_steps)``: the settings the form needs, which
    steps of each sequence are padding, and a function giving each
    sequence's ``(T, F)`` steps of an output in the form of ``X``.
    """
    T, F, n = 4, seqs[0].shape[1], len(seqs)
    pads = [np.r_[[True] * (T - len(s)), [False] * len(s)] if i % 2 else
            np.r_[[False] * len(s), [True] * (T - len(s))]
            for i, s in enumerate(seqs)]
    padded = np.zeros((n, T, F), dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        padded[i, ~pads[i]] = s
    if form in ("ragged", "nested"):
        pads = [np.zeros(len(s), dtype=bool) for s in seqs]
    if form == "3d":
        return padded, {}, pads, list
    if form == "rows":
        return (padded.reshape(n, T * F), {"n_steps": T}, pads,
                lambda out: list(out.reshape(n, T, F)))
    if form == "channels_first":
        return (padded.transpose(0, 2, 1), {"channels_first": True}, pads,
                lambda out: list(out.transpose(0, 2, 1)))
    if form == "ragged":
        return seqs, {}, pads, list
    pd = pytest.importorskip("pandas")
    times = pd.date_range("2024-03-01", periods=T, freq="min")
    if form == "nested":
        X = pd.DataFrame({c: [pd.Series(s[:, j], index=times[:len(s)])
                              for s in seqs] for j, c in enumerate("ab")})
        return X, {}, pads, lambda out: [
            np.column_stack([np.asarray(v) for v in out.iloc[i]])
            for i in range(len(out))]
    frames = [pd.DataFrame(p, index=times, columns=["a", "b"]) for p in padded]
    if form == "frames":
        return frames, {}, pads, lambda out: [f.to_numpy() for f in out]
    X = pd.concat(frames, keys=range(n), names=["instance", "time"])
    return X, {}, pads, lambda out: [
        g.to_numpy() for _, g in out.groupby(level=0, sort=False)]


FORMS = ["3d", "rows", "channels_first", "ragged", "frames", "multiindex",
         "nested"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", FORMS)
def test_data_at_the_means_stays_data_before_a_masking_estimator(form, dtype):
    """With mask_value=0 a step at the training means would scale to 0 and
    read as padding: dropped at a sequence's end, an error in its middle."""
    seqs = _at_the_means(dtype)
    X, kw, pads, to_steps = _in_form(seqs, form)
    sc = SequenceScaler(mask_value=0, **kw).fit(X)
    np.testing.assert_array_equal(sc.mean_, [2, 20])
    tiny = np.nextafter(dtype(0), dtype(1))
    out = to_steps(sc.transform(X))
    ref = SequenceScaler().fit(seqs).transform(seqs)
    for steps, pad, s, r in zip(out, pads, seqs, ref):
        assert steps.dtype == dtype
        # Padding where there was padding, and nowhere else.
        np.testing.assert_array_equal((steps == 0).all(axis=1), pad)
        at_mean = (s == [2, 20]).all(axis=1)
        np.testing.assert_array_equal(steps[~pad][at_mean], tiny)
        np.testing.assert_array_equal(steps[~pad][~at_mean], r[~at_mean])
    back = to_steps(sc.inverse_transform(sc.transform(X)))
    for b, pad, s in zip(back, pads, seqs):
        np.testing.assert_array_equal(b[pad], 0)
        np.testing.assert_allclose(b[~pad], s, rtol=1e-6)

    # The estimator after the scaler sees the true lengths: the model of the
    # unpadded sequences scaled without a mask.
    y = np.arange(len(seqs)) % 2
    est = dict(hidden_layer_sizes=3, max_iter=1, batch_size=2, random_state=0)
    pipe = make_pipeline(SequenceScaler(mask_value=0, **kw),
                         RNNClassifier(mask_value=0, **kw, **est)).fit(X, y)
    plain = RNNClassifier(**est).fit(ref, y)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pipe[-1]._network.coefs, plain._network.coefs,
                               rtol=rtol)
    np.testing.assert_allclose(pipe.predict_proba(X), plain.predict_proba(ref),
                               rtol=rtol)


@pytest.mark.parametrize("kw, step", [({}, 0.0),
                                      ({"with_mean": False}, -2.0),
                                      ({"with_std": False}, 1.0)])
def test_other_mask_values_are_not_reached_either(kw, step):
    """mask_value=-1: (0 - 2) / 2, -2 / 2 and 1 - 2 all give -1."""
    train = np.array([[[0.0, 0.0], [4.0, 4.0]], [[4.0, 4.0], [0.0, 0.0]]])
    sc = SequenceScaler(mask_value=-1, **kw).fit(train)
    X = np.array([[[4.0, 0.0], [step, step], [4.0, 4.0], [-1.0, -1.0]]])
    out = sc.transform(X)
    np.testing.assert_array_equal(out[0, 1], np.nextafter(-1.0, 0.0))
    np.testing.assert_array_equal((out == -1).all(axis=2), [[0, 0, 0, 1]])
    # The moved step maps back within one unit in the last place (of -1)
    # times scale_.
    np.testing.assert_allclose(sc.inverse_transform(out), X, rtol=1e-15,
                               atol=4 * np.finfo(float).eps)
    pipe = make_pipeline(
        SequenceScaler(mask_value=-1, **kw),
        RNNClassifier(mask_value=-1, hidden_layer_sizes=2, max_iter=1,
                      random_state=0)).fit(train, [0, 1])
    np.testing.assert_allclose(pipe.predict_proba(X).sum(), 1)


def test_a_constant_single_feature_stays_data():
    """Every value at the mean: before, every sequence read as all padding."""
    seqs = [np.full(3, 5.0), np.full(2, 5.0)]
    sc = SequenceScaler(mask_value=0).fit(seqs)
    assert sc.scale_[0] == 1
    tiny = np.nextafter(0.0, 1.0)
    for out, s in zip(sc.transform(seqs), seqs):
        assert out.shape == s.shape
        np.testing.assert_array_equal(out, tiny)
    np.testing.assert_array_equal(
        np.concatenate(sc.inverse_transform(sc.transform(seqs))), 5.0)
    rows = np.array([[5.0, 5.0, 0.0], [5.0, 5.0, 5.0]])   # univariate rows
    np.testing.assert_array_equal(sc.transform(rows),
                                  [[tiny, tiny, 0.0], [tiny, tiny, tiny]])
    pipe = make_pipeline(SequenceScaler(mask_value=0),
                         RNNClassifier(mask_value=0, hidden_layer_sizes=2,
                                       max_iter=1, random_state=0))
    pipe.fit(rows, [0, 1])
    assert pipe.predict(rows).shape == (2,)


def test_inverse_transform_does_not_make_padding_either():
    sc = SequenceScaler(mask_value=0).fit(np.array([[1.0, 3.0, 0.0]]))
    assert (sc.mean_[0], sc.scale_[0]) == (2, 1)
    back = sc.inverse_transform(np.array([[-2.0, 1.0, 0.0]]))
    # -2 maps to 0, the mask: moved off it; the trailing 0 is padding.
    np.testing.assert_array_equal(back, [[np.nextafter(0.0, 1.0), 3.0, 0.0]])


def test_an_infinite_mask_reached_by_overflow_is_an_error():
    train = np.array([[[1.0, 1.0], [1.0 + 2.0**-40, 1.0 + 2.0**-40]]])
    sc = SequenceScaler(mask_value=np.inf).fit(train)
    with pytest.raises(ValueError, match=r"SequenceScaler.transform: a data "
                       r"step scales to mask_value=inf in every feature"), \
            np.errstate(over="ignore"):
        sc.transform(np.array([[[1e300, 1e300], [1.0, 1.0]]]))


def test_float16_padding_stays_padding():
    """A mask_value that float16 rounds (0.1) marks float16 padding, found
    before the output's float64, and written as what the estimator reads."""
    seqs = [np.random.default_rng(i).normal(size=(3 + i, 2)) for i in range(4)]
    X = np.full((4, 7, 2), 0.1, dtype=np.float16)
    for i, s in enumerate(seqs):
        X[i, :len(s)] = s
    sc = SequenceScaler(mask_value=0.1).fit(X)
    assert sc.n_steps_seen_ == sum(len(s) for s in seqs)
    out = sc.transform(X)
    assert out.dtype == np.float64
    np.testing.assert_array_equal((out == 0.1).all(axis=2),
                                  (X == np.float16(0.1)).all(axis=2))


# -- DataFrames keep their index and columns ----------------------------------

def _assert_nested_equal(a, b, rtol):
    pd = pytest.importorskip("pandas")
    pd.testing.assert_index_equal(a.index, b.index)
    pd.testing.assert_index_equal(a.columns, b.columns)
    for i in range(len(a)):
        for x, y in zip(a.iloc[i], b.iloc[i]):
            assert type(x) is type(y)
            if isinstance(y, pd.Series):
                pd.testing.assert_series_equal(x, y, rtol=rtol)
            else:
                np.testing.assert_allclose(x, y, rtol=rtol)


def test_list_of_frames_keeps_each_time_index():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    indexes = [pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC",
                             name="time"),
               pd.Index([100, 103, 107], name="second"),
               pd.date_range("2023-06-30 23:58", periods=4, freq="min")]
    frames = [pd.DataFrame(rng.normal(size=(len(t), 2)) * [1, 100] + 7,
                           index=t, columns=["temp", "load"]) for t in indexes]
    sc = SequenceScaler().fit(frames)
    out = sc.transform(frames)
    assert isinstance(out, list)
    for o, f in zip(out, frames):
        pd.testing.assert_index_equal(o.index, f.index)
        pd.testing.assert_index_equal(o.columns, f.columns)
    for b, f in zip(sc.inverse_transform(out), frames):
        pd.testing.assert_frame_equal(b, f, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_multiindex_frame_keeps_its_timestamps_and_padding(dtype):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(4)
    times = pd.date_range("2024-05-01 08:00", periods=5, freq="15min")
    values = rng.integers(1, 50, size=(3, 5, 2)).astype(dtype)
    values[0, 3:] = 0                           # padding after the data
    values[1, :2] = 0                           # and before it
    X = pd.DataFrame(values.reshape(15, 2), columns=["x", "y"],
                     index=pd.MultiIndex.from_product(
                         [["u", "v", "w"], times], names=["case", "at"]))
    sc = SequenceScaler(mask_value=0).fit(X)
    assert sc.n_steps_seen_ == 11
    out = sc.transform(X)
    pd.testing.assert_index_equal(out.index, X.index)
    pd.testing.assert_index_equal(out.columns, X.columns)
    np.testing.assert_array_equal(out.to_numpy()[(values == 0).reshape(15, 2)], 0)
    back = sc.inverse_transform(out)
    pd.testing.assert_frame_equal(back, X, rtol=1e-6,
                                  check_dtype=dtype != "int64")


def test_nested_frame_comes_back_nested():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    lengths = [4, 6, 3]
    X = pd.DataFrame(
        {"ax": [pd.Series(rng.normal(size=k), name="ax",
                          index=pd.date_range("2024-02-01", periods=k,
                                              freq="s")) for k in lengths],
         "ay": [rng.normal(size=k) * 10 for k in lengths]},     # 1-D arrays
        index=pd.Index(["p", "q", "r"], name="subject"))
    sc = SequenceScaler().fit(X)
    out = sc.transform(X)
    assert isinstance(out, pd.DataFrame)
    _assert_nested_equal(sc.inverse_transform(out), X, rtol=1e-12)
    pooled = np.concatenate([np.asarray(v) for v in out["ax"]])
    np.testing.assert_allclose(pooled.mean(), 0, atol=1e-12)
    pd.testing.assert_index_equal(out.loc["q", "ax"].index, X.loc["q", "ax"].index)


def test_docstring_examples():
    import doctest

    import seqclf.preprocessing

    result = doctest.testmod(seqclf.preprocessing, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


def test_statistics_that_overflow_are_refused():
    """Values near float64's limit whose variance overflows gave an
    infinite scale_: a transform of zeros and an inverse of NaN."""
    X = np.zeros((4, 3, 2))
    X[:, :, 1] = [[1e200], [-1e200], [3e200], [0.0]]
    with pytest.raises(ValueError, match="variance of feature 1 overflows"):
        SequenceScaler().fit(X)
    X[:, :, 1] /= 1e100                         # finite statistics: scaled
    sc = SequenceScaler()
    out = sc.fit_transform(X)
    assert np.isfinite(out).all() and out[:, :, 1].std() > 0.5
    # A refit refused leaves the fitted scaler as it was.
    before = {k: v.copy() if isinstance(v, np.ndarray) else v
              for k, v in vars(sc).items()}
    with pytest.raises(ValueError, match="overflows"):
        sc.fit(np.concatenate([X * 1e100, np.zeros((4, 3, 1))], axis=2))
    assert vars(sc).keys() == before.keys() and sc.n_features_in_ == 2
    np.testing.assert_array_equal(sc.transform(X), out)
