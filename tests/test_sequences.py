"""The input layer alone: ``_sequences.prepare`` and the spec it records.

Each input form is read at fit (no spec: the spec is inferred) and later
(with the spec: checked against it), without an estimator.
"""

import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest

from seqclf._sequences import SequenceSpec, input_form, prepare

rng = np.random.default_rng(0)
X3 = rng.normal(size=(5, 4, 3))
RAGGED = [rng.normal(size=(k, 3)) for k in (2, 4, 1, 3, 4)]
IDS = rng.integers(0, 7, size=(5, 6))
RAGGED_IDS = [rng.integers(0, 7, size=k) for k in (2, 6, 1, 3)]


def padded(seqs):
    """Post-padded copy of a list of ``(n_i, F)`` arrays, zeros after."""
    out = np.zeros((len(seqs), max(len(s) for s in seqs)) + seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


# ---------------------------------------------------------------------------
# Each form at fit: the batch, the lengths and the spec recorded
# ---------------------------------------------------------------------------

def test_3d_array_is_taken_as_is_and_recorded():
    batch, lengths, spec = prepare(X3)
    assert batch is X3              # float64 and C-contiguous: no copy
    np.testing.assert_array_equal(lengths, [4] * 5)
    assert lengths.dtype == np.intp
    assert spec == SequenceSpec(n_features_in=3, n_step_features=3,
                                flat=False, dtype=np.dtype(np.float64),
                                steps=4)
    assert spec.vocab_size is None and not spec.vocab_fixed


@pytest.mark.parametrize("dtype, expected", [
    (np.float32, np.float32), (np.float64, np.float64),
    (np.float16, np.float64), (np.int32, np.float64), (bool, np.float64),
])
def test_dtype_rule_at_fit(dtype, expected):
    batch, _, spec = prepare((X3 > 0).astype(dtype))
    assert batch.dtype == expected and spec.dtype == expected
    assert batch.flags.c_contiguous


def test_fortran_and_strided_arrays_become_c_contiguous():
    for X in (np.asfortranarray(X3), X3[:, ::2]):
        batch, _, _ = prepare(X)
        assert batch.flags.c_contiguous
        np.testing.assert_array_equal(batch, X)


def test_2d_with_n_steps_is_read_step_major():
    flat = X3.reshape(5, 12)
    batch, lengths, spec = prepare(flat, n_steps=4)
    np.testing.assert_array_equal(batch, X3)
    np.testing.assert_array_equal(lengths, [4] * 5)
    # n_features_in is the number of columns, as scikit-learn's.
    assert (spec.n_features_in, spec.n_step_features, spec.flat) == (12, 3, True)
    assert spec.steps == 4


def test_2d_without_n_steps_is_univariate():
    flat = X3[:, :, 0].copy()
    batch, lengths, spec = prepare(flat)
    assert batch.shape == (5, 4, 1)
    np.testing.assert_array_equal(batch[:, :, 0], flat)
    np.testing.assert_array_equal(lengths, [4] * 5)
    assert (spec.n_features_in, spec.n_step_features, spec.flat) == (4, 1, True)


def test_ragged_list_is_post_padded_with_its_lengths():
    batch, lengths, spec = prepare(RAGGED)
    np.testing.assert_array_equal(batch, padded(RAGGED))
    np.testing.assert_array_equal(lengths, [2, 4, 1, 3, 4])
    assert batch.flags.c_contiguous and batch.dtype == np.float64
    assert (spec.n_features_in, spec.n_step_features, spec.flat) == (3, 3, False)
    assert spec.steps is None       # the lengths differ


def test_ragged_dtype_is_float32_only_when_every_sequence_is():
    f32 = [s.astype(np.float32) for s in RAGGED]
    assert prepare(f32)[0].dtype == np.float32
    mixed = [f32[0]] + RAGGED[1:]
    assert prepare(mixed)[0].dtype == np.float64


def test_ragged_1d_sequences_are_univariate():
    seqs = [np.arange(3.0), np.arange(5.0)]
    batch, lengths, spec = prepare(seqs)
    assert batch.shape == (2, 5, 1)
    np.testing.assert_array_equal(batch[0, :, 0], [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(lengths, [3, 5])
    assert spec.n_step_features == 1


def test_list_of_equal_sequences_is_an_array():
    seqs = list(X3)
    assert input_form(seqs) == "array"
    batch, lengths, spec = prepare(seqs)
    np.testing.assert_array_equal(batch, X3)
    np.testing.assert_array_equal(lengths, [4] * 5)
    assert spec.steps == 4


@pytest.mark.parametrize("mask_value", [0.0, -1, np.nan])
def test_mask_value_moves_data_to_the_front(mask_value):
    X = X3.copy()
    X[0, :2] = mask_value           # pre-padded
    X[1, 3:] = mask_value           # post-padded
    batch, lengths, spec = prepare(X, mask_value=mask_value)
    np.testing.assert_array_equal(lengths, [2, 3, 4, 4, 4])
    np.testing.assert_array_equal(batch[0, :2], X3[0, 2:])
    np.testing.assert_array_equal(batch[1, :3], X3[1, :3])
    np.testing.assert_array_equal(batch[2:], X3[2:])
    assert batch.flags.c_contiguous
    assert spec.steps is None       # padding removed, the lengths differ


def test_mask_value_without_padding_keeps_the_steps():
    _, lengths, spec = prepare(X3, mask_value=123.0)
    np.testing.assert_array_equal(lengths, [4] * 5)
    assert spec.steps == 4


def test_mask_value_is_compared_in_the_dtype_given():
    # 0.1 in float16 is found before conversion to float64, given as
    # np.float16(0.1) or as the Python float 0.1, which NumPy's comparison
    # rounds to float16 (as Keras casts its mask_value to the input's).
    X = X3.astype(np.float16)
    X[0, 0] = np.float16(0.1)
    for mask in (np.float16(0.1), 0.1):
        _, lengths, _ = prepare(X, mask_value=mask)
        assert lengths[0] == 3
    # Beyond float16's range it would round to infinity: refused.
    with pytest.raises(ValueError, match=r"mask_value=1e\+30 is not "
                                         r"representable in float16"):
        prepare(X, mask_value=1e30)


def test_token_ids_2d():
    batch, lengths, spec = prepare(IDS, token_ids=True)
    np.testing.assert_array_equal(batch, IDS)
    assert batch.dtype == np.intp and batch.ndim == 2
    np.testing.assert_array_equal(lengths, [6] * 5)
    assert spec == SequenceSpec(n_features_in=6, n_step_features=1, flat=True,
                                dtype=np.dtype(np.intp), steps=6,
                                vocab_size=int(IDS.max()) + 1,
                                vocab_fixed=False)


def test_token_ids_ragged_with_a_given_vocabulary():
    batch, lengths, spec = prepare(RAGGED_IDS, token_ids=True, vocab_size=20)
    np.testing.assert_array_equal(lengths, [2, 6, 1, 3])
    for row, seq in zip(batch, RAGGED_IDS):
        np.testing.assert_array_equal(row[:len(seq)], seq)
        assert not row[len(seq):].any()
    assert (spec.n_features_in, spec.flat, spec.steps) == (1, False, None)
    assert (spec.vocab_size, spec.vocab_fixed) == (20, True)


def test_token_mask_value_removes_padding_ids():
    ids = np.array([[0, 0, 3, 4], [5, 6, 0, 0], [1, 2, 3, 4]])
    batch, lengths, spec = prepare(ids, token_ids=True, mask_value=0)
    np.testing.assert_array_equal(lengths, [2, 2, 4])
    np.testing.assert_array_equal(batch[0, :2], [3, 4])
    np.testing.assert_array_equal(batch[1, :2], [5, 6])
    assert spec.vocab_size == 7 and spec.steps is None


def test_unsigned_ids_become_intp():
    batch, _, _ = prepare(IDS.astype(np.uint8), token_ids=True)
    assert batch.dtype == np.intp
    np.testing.assert_array_equal(batch, IDS)


# ---------------------------------------------------------------------------
# Later inputs, read and checked against the spec
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("X, kw", [
    (X3, {}), (X3.reshape(5, 12), {"n_steps": 4}), (RAGGED, {}),
    (IDS, {"token_ids": True}), (RAGGED_IDS, {"token_ids": True}),
])
def test_round_trip_reads_the_training_input_the_same_way(X, kw):
    batch, lengths, spec = prepare(X, **kw)
    n_steps = kw.get("n_steps")
    again, lengths_again, same = prepare(X, spec=spec, n_steps=n_steps)
    assert same is spec
    np.testing.assert_array_equal(again, batch)
    np.testing.assert_array_equal(lengths_again, lengths)
    assert again.dtype == batch.dtype


def test_plain_array_of_the_fitted_shape_is_not_copied():
    _, _, spec = prepare(X3)
    assert input_form(X3, spec) == "fitted"
    batch, lengths, _ = prepare(X3, spec=spec)
    assert batch is X3
    np.testing.assert_array_equal(lengths, [4] * 5)


def test_later_inputs_take_the_spec_dtype():
    _, _, spec32 = prepare(X3.astype(np.float32))
    batch, _, _ = prepare(X3, spec=spec32)
    assert batch.dtype == np.float32
    batch, _, _ = prepare(RAGGED, spec=spec32)
    assert batch.dtype == np.float32
    _, _, spec64 = prepare(X3)
    assert prepare(X3.astype(np.float32), spec=spec64)[0].dtype == np.float64


def test_values_beyond_the_spec_dtype_are_an_error():
    _, _, spec32 = prepare(X3.astype(np.float32))
    X = X3.copy()
    X[2, 1, 0] = 1e300
    prepare(X)                      # fine in float64
    with pytest.raises(ValueError, match=r"NaN or infinity \(sample 2, step 1\) "
                                         r"in float32"):
        prepare(X, spec=spec32)


def test_longer_and_shorter_sequences_are_read_later():
    _, _, spec = prepare(X3)
    for T in (1, 9):
        batch, lengths, _ = prepare(rng.normal(size=(2, T, 3)), spec=spec)
        assert batch.shape == (2, T, 3)
        np.testing.assert_array_equal(lengths, [T, T])


def test_features_per_step_must_agree():
    _, _, spec = prepare(X3)
    for X in (rng.normal(size=(2, 4, 2)), [np.zeros((2, 5)), np.zeros((1, 5))]):
        with pytest.raises(ValueError, match="X has [25] features per step, but "
                                             "MyModel was fitted with 3 "
                                             "features per step"):
            prepare(X, spec=spec, estimator_name="MyModel")


def test_columns_of_a_table_must_agree():
    _, _, spec = prepare(X3.reshape(5, 12), n_steps=4)
    with pytest.raises(ValueError, match="X has 8 features, but MyModel is "
                                         "expecting 12 features as input"):
        prepare(np.zeros((2, 8)), spec=spec, n_steps=4,
                estimator_name="MyModel")
    # A 3-D X with the same features per step is read as 3-D.
    batch, _, _ = prepare(X3, spec=spec, n_steps=4)
    np.testing.assert_array_equal(batch, X3)


def test_a_2d_x_for_a_model_fitted_on_3d_is_univariate():
    _, _, spec = prepare(X3[:, :, :1])
    assert input_form(X3[:, :, 0], spec) == "array"
    batch, _, _ = prepare(X3[:, :, 0], spec=spec)
    assert batch.shape == (5, 4, 1)
    _, _, spec3 = prepare(X3)
    with pytest.raises(ValueError, match="X has 1 features per step"):
        prepare(X3[:, :, 0], spec=spec3)


def test_the_spec_decides_between_values_and_ids():
    _, _, float_spec = prepare(X3)
    batch, _, _ = prepare(X3, spec=float_spec, token_ids=True, vocab_size=3)
    assert batch.dtype == np.float64
    _, _, id_spec = prepare(IDS, token_ids=True)
    batch, _, _ = prepare(IDS, spec=id_spec, token_ids=False)
    assert batch.dtype == np.intp


def test_ids_beyond_a_learned_vocabulary():
    _, _, spec = prepare(np.array([[0, 1, 2], [3, 4, 1]]), token_ids=True)
    assert spec.vocab_size == 5 and not spec.vocab_fixed
    new = np.array([[1, 7, 2], [5, 0, 3]])
    # Out of vocabulary at predict: the id one past the vocabulary.
    batch, _, _ = prepare(new, spec=spec)
    np.testing.assert_array_equal(batch, [[1, 5, 2], [5, 0, 3]])
    with pytest.raises(ValueError, match=r"Token id 7 \(sample 0, step 1\) is "
                                         r"beyond the vocabulary learned at the "
                                         r"first fit \(ids 0 to 4\)"):
        prepare(new, spec=spec, fitting=True)


def test_ids_beyond_a_given_vocabulary():
    _, _, spec = prepare(np.array([[1, 2], [3, 4]]), token_ids=True,
                         vocab_size=10)
    prepare(np.full((1, 2), 9), spec=spec)
    for fitting in (False, True):
        with pytest.raises(ValueError, match=r"Token id 10 \(sample 0, step 1\) "
                                             r"is not below vocab_size=10"):
            prepare(np.array([[9, 10]]), spec=spec, fitting=fitting)


def test_ragged_id_model_reads_2d_ids_later():
    _, _, spec = prepare(RAGGED_IDS, token_ids=True)
    assert input_form(IDS, spec) == "array"
    batch, lengths, _ = prepare(IDS % spec.vocab_size, spec=spec)
    np.testing.assert_array_equal(batch, IDS % spec.vocab_size)
    np.testing.assert_array_equal(lengths, [6] * 5)


# ---------------------------------------------------------------------------
# The spec itself, and the one place forms are told apart
# ---------------------------------------------------------------------------

def test_spec_pickles_and_is_frozen():
    for X, kw in [(X3, {}), (IDS, {"token_ids": True, "vocab_size": 9}),
                  (X3, {"mask_value": np.nan})]:
        spec = prepare(X, **kw)[2]
        assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.steps = 3


def test_input_form():
    _, _, spec3 = prepare(X3)
    _, _, flat = prepare(X3.reshape(5, 12), n_steps=4)
    assert input_form(X3) == "array"                # fit: no fast path
    assert input_form(X3, spec3) == "fitted"
    assert input_form(X3.astype(np.float16), spec3) == "array"
    assert input_form(X3[:, :, :2], spec3) == "array"
    assert input_form(X3, spec3, n_steps=3) == "array"
    assert input_form(X3, flat) == "array"
    assert input_form(RAGGED) == input_form(tuple(RAGGED), spec3) == "ragged"
    assert input_form(X3.reshape(5, 12)) == "table"
    assert input_form(X3.reshape(5, 12).tolist()) == "table"
    assert input_form(X3.reshape(5, 12), flat) == "table"
    assert input_form(X3.reshape(5, 12), spec3) == "array"
    assert input_form([]) == "array"


def test_feature_names_are_checked_where_validate_data_would():
    calls = []

    def record(X):
        calls.append(X)

    df = pd.DataFrame(X3.reshape(5, 12))
    _, _, flat = prepare(df, n_steps=4, check_feature_names=record)
    assert len(calls) == 1 and calls[0] is df       # as given, first
    prepare(df, spec=flat, n_steps=4, check_feature_names=record)
    assert len(calls) == 2 and calls[1] is df
    # Every real-valued form is checked, at fit and later: a 3-D array or a
    # list has no names (which drops those of an earlier fit, and warns
    # for a model fitted with names, as validate_data does for an array).
    _, _, spec = prepare(X3, check_feature_names=record)
    assert len(calls) == 3 and isinstance(calls[2], np.ndarray)
    prepare(RAGGED, check_feature_names=record)
    assert len(calls) == 4
    prepare(X3, spec=spec, check_feature_names=record)
    prepare(RAGGED, spec=spec, check_feature_names=record)
    assert len(calls) == 6
    # A container's channels are what is checked: its columns.
    frames = [pd.DataFrame(s, columns=["a", "b", "c"]) for s in RAGGED]
    prepare(frames, spec=spec, check_feature_names=record)
    assert list(calls[6].columns) == ["a", "b", "c"] and len(calls[6]) == 0


def test_feature_names_check_comes_before_the_values_are_read():
    def refuse(X):
        raise LookupError("names")

    with pytest.raises(LookupError):
        prepare([["a", "b"]], check_feature_names=refuse)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("X, kw, error, match", [
    (X3.reshape(5, 12), {"n_steps": 5}, ValueError,
     "X has 12 columns, which is not a multiple of n_steps=5"),
    (X3, {"n_steps": 3}, ValueError,
     "n_steps=3 does not agree with the 3-D X of 4 steps"),
    (RAGGED, {"n_steps": 4}, ValueError,
     "n_steps=4 does not agree with a list of sequences of 1 to 4 steps"),
    (X3[..., None], {}, ValueError,
     r"X must be 2-D .* got an array of shape \(5, 4, 3, 1\)"),
    (np.zeros((3, 0, 2)), {}, ValueError,
     "X must have at least one step and one feature"),
    ([np.zeros((2, 2)), np.zeros((0, 2))], {}, ValueError,
     r"Sequence X\[1\] has zero steps"),
    ([np.zeros((2, 2)), np.zeros((3, 3))], {}, ValueError,
     r"X\[0\] has 2, X\[1\] has 3"),
    ([np.zeros((2, 0)), np.zeros((3, 0))], {}, ValueError,
     "at least one feature, got 0"),
    ([np.zeros((2, 2, 1)), np.zeros((3, 2, 1))], {}, ValueError,
     r"X\[0\] has shape \(2, 2, 1\)"),
    ([np.zeros((2, 2)) + 1j, np.zeros((3, 2))], {}, ValueError,
     r"Complex data not supported: X\[0\]"),
    ([np.array(["a", "b"]), np.array(["c"])], {}, TypeError,
     r"X\[0\] must hold numbers"),
    (np.where(np.arange(4)[None, :, None] == 2, np.nan, X3), {}, ValueError,
     "Input X contains NaN"),
    (np.where(np.arange(4)[None, :, None] == 2, np.nan, X3),
     {"mask_value": np.nan}, ValueError,
     "Sequence 0 has padding steps .* between data steps"),
    (np.zeros((2, 3, 1)), {"mask_value": 0}, ValueError,
     "Sequence 0 is all padding"),
    (np.zeros((2, 3, 1)), {"vocab_size": 4}, ValueError,
     "vocab_size applies to token ids"),
    (IDS.astype(float), {"token_ids": True}, ValueError,
     "must hold integer token ids, got dtype float64"),
    (IDS[:, :, None], {"token_ids": True}, ValueError,
     r"X must be a 2-D integer array .* got 3 dimension\(s\)"),
    ([np.zeros((2, 1), int), np.zeros((3, 1), int)], {"token_ids": True},
     ValueError, r"X\[0\] has shape \(2, 1\)"),
    (np.array([[1, -2]]), {"token_ids": True}, ValueError,
     "Token ids must be >= 0; sample 0 holds -2 at step 1"),
    (IDS, {"token_ids": True, "vocab_size": 3}, ValueError,
     "is not below vocab_size=3"),
    (IDS, {"token_ids": True, "mask_value": 0.5}, ValueError,
     "mask_value must be an integer token id"),
    (IDS, {"token_ids": True, "n_steps": 4}, ValueError,
     "n_steps=4 does not agree with the 2-D X of 6 steps"),
])
def test_errors(X, kw, error, match):
    with pytest.raises(error, match=match):
        prepare(X, **kw)


def test_check_array_errors_name_the_model_for_tables_only():
    with pytest.raises(ValueError, match="required by MyModel"):
        prepare(np.zeros((0, 4)), estimator_name="MyModel")
    with pytest.raises(ValueError, match=r"minimum of 1 is required\.$"):
        prepare(np.zeros((0, 4, 2)), estimator_name="MyModel")


# ---------------------------------------------------------------------------
# Time-series layouts and containers (sktime, aeon)
# ---------------------------------------------------------------------------

def _panel(n=12, C=3, T=7, seed=0):
    """A channels-first panel (n, C, T), as sktime's and aeon's numpy3D."""
    return np.random.default_rng(seed).normal(size=(n, C, T))


def test_channels_first_forms_read_as_steps_first():
    from seqclf._sequences import prepare

    X = _panel()
    expected = X.transpose(0, 2, 1)
    for form in (X, list(X), X.reshape(len(X), -1)):
        batch, lengths, spec = prepare(form, channels_first=True,
                                       n_steps=7 if np.ndim(form) == 2 else None)
        np.testing.assert_array_equal(batch, expected)
        assert spec.n_step_features == 3 and (lengths == 7).all()
    ragged = [x[:, :k] for x, k in zip(X, range(2, 14))]
    batch, lengths, _ = prepare(ragged, channels_first=True)
    np.testing.assert_array_equal(lengths, [min(k, 7) for k in range(2, 14)])
    np.testing.assert_array_equal(batch[3, :5], X[3, :, :5].T)


def test_sktime_and_aeon_containers_in_their_own_layout():
    pd = pytest.importorskip("pandas")
    from seqclf._sequences import prepare

    X = _panel()
    expected = X.transpose(0, 2, 1)
    nested = pd.DataFrame({f"dim_{c}": [pd.Series(x[c]) for x in X]
                           for c in range(3)})
    multi = pd.DataFrame(expected.reshape(-1, 3), index=pd.MultiIndex.from_product(
        [range(12), range(7)], names=["instance", "timepoints"]))
    frames = [pd.DataFrame(x.T) for x in X]
    objects = np.empty(12, dtype=object)
    objects[:] = list(expected)
    for form in (nested, multi, frames, objects, pd.Series(list(expected))):
        # channels_first does not apply to containers with named axes.
        native = form is not objects and not isinstance(form, pd.Series)
        for cf in ((False, True) if native else (False,)):
            batch, lengths, _ = prepare(form, channels_first=cf)
            np.testing.assert_array_equal(batch, expected)
            np.testing.assert_array_equal(lengths, np.full(12, 7))


def test_unequal_length_nested_frame_is_ragged():
    pd = pytest.importorskip("pandas")
    from seqclf._sequences import prepare

    X = _panel()
    nested = pd.DataFrame({f"dim_{c}": [pd.Series(x[c, :k]) for x, k in
                                        zip(X, range(2, 14))] for c in range(3)})
    batch, lengths, _ = prepare(nested)
    np.testing.assert_array_equal(lengths, [min(k, 7) for k in range(2, 14)])
    bad = nested.copy()
    bad.iloc[1, 2] = pd.Series(np.arange(5.0))
    with pytest.raises(ValueError,
                       match="Row 1 of the nested DataFrame.*different lengths"):
        prepare(bad)
    deep = pd.DataFrame(np.zeros((8, 2)), index=pd.MultiIndex.from_product(
        [range(2), range(2), range(2)]))
    with pytest.raises(ValueError, match="3-level MultiIndex"):
        prepare(deep)


def test_classifier_on_channels_first_panel_equals_transposed():
    from seqclf import RNNClassifier

    X = _panel(n=40, seed=1)
    y = (X[:, 0, 0] > 0).astype(int)
    kw = dict(cell="gru", hidden_layer_sizes=5, max_iter=2, random_state=0)
    a = RNNClassifier(channels_first=True, **kw).fit(X, y)
    b = RNNClassifier(**kw).fit(X.transpose(0, 2, 1), y)
    np.testing.assert_array_equal(a.predict_proba(X),
                                  b.predict_proba(X.transpose(0, 2, 1)))
    assert a.n_features_in_ == 3
    # Without channels_first the panel reads as 3 steps of 7 features:
    # a different model, which then refuses the transposed data.
    c = RNNClassifier(**kw).fit(X, y)
    assert c.n_features_in_ == 7


def test_one_sequence_at_predict_says_how_to_pass_it():
    from seqclf import RNNClassifier

    X = _panel(n=20).transpose(0, 2, 1)              # (20, 7, 3)
    clf = RNNClassifier("rnn", 3, max_iter=1, random_state=0).fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"give \[X\] or X\[None\]"):
        clf.predict(X[0])
    assert clf.predict([X[0]]).shape == (1,) == clf.predict(X[0][None]).shape


def test_one_size_for_every_layer():
    from seqclf import RNNClassifier

    X = _panel(n=20).transpose(0, 2, 1)
    clf = RNNClassifier(("gru", "lstm"), 8, max_iter=1).fit(X, np.arange(20) % 2)
    assert clf._network.hidden_sizes == (8, 8)


@pytest.mark.parametrize("X, match", [
    (np.arange(5.0), r"1-D array of shape \(5,\).*sequence is \[X\] or X\[None\]"),
    ({"a": 1}, "must hold sequences.*got a dict"),
    ("abc", "must hold sequences.*got a str"),
    (3.0, "must hold sequences.*got a float"),
    ([], "X holds no sequences: an empty list"),
    (np.array([np.zeros((2, 2)), "a"], dtype=object),
     r"X\[1\] is a str, not a sequence"),
    # What dask_ml's Incremental hands partial_fit for a 3-D Dask array.
    (("array-5e1f", 2, 0), r"a Dask task key.*X\.reshape\(n_samples, "
                           r"n_steps \* n_features\).*n_steps set"),
])
def test_inputs_without_sequences_say_what_they_are(X, match):
    with pytest.raises(ValueError, match=match):
        prepare(X)
