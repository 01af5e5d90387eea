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


def test_docstring_examples():
    import doctest

    import seqclf.preprocessing

    result = doctest.testmod(seqclf.preprocessing, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
