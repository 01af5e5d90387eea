"""Turn the sequence inputs users give into what the network runs on.

Users give a 3-D array ``(n_samples, n_steps, n_features)``, a 2-D array
(flattened step-major sequences, or univariate sequences) or a list of 2-D
arrays of different lengths, possibly padded with a mask value at the start
or the end; or, for an embedding front, integer token ids as a 2-D array or
a list of 1-D arrays. The network runs on one C-contiguous array
``(n_samples, max_steps, n_features)`` (``(n_samples, max_steps)`` of ids)
holding every sequence from position 0 (post-padded) and their lengths.

:func:`prepare` does that conversion and its checks in one call. At fit it
infers a :class:`SequenceSpec`, the facts about the input that later inputs
must agree with; given that spec it reads and checks later inputs the same
way. :func:`input_form` is the one place where input forms are told apart.
This module knows nothing of estimators.
"""

import math
import numbers
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sklearn.utils.validation import check_array


@dataclass(frozen=True)
class SequenceSpec:
    """What a fit learned about its input, to read later inputs the same way.

    Made by :func:`prepare` at fit and given back to it afterwards.

    Attributes
    ----------
    n_features_in : int
        Columns of ``X`` when fit read a 2-D ``X`` as a table, else the
        features per step (1 for token ids): scikit-learn's
        ``n_features_in_``.
    n_step_features : int
        Features per step (1 for token ids).
    flat : bool
        Whether fit read a 2-D ``X`` as a table of columns (flattened
        sequences, univariate sequences or token ids); a 2-D ``X`` is then
        read the same way later, its columns checked.
    dtype : numpy.dtype
        dtype of the prepared batch: float32 or float64 for real values
        (the dtype the model computes in), intp for token ids.
    steps : int or None
        Steps of every training sequence when they all had the same number
        (padding removed), else None.
    vocab_size : int or None
        With token ids, ids 0 to ``vocab_size - 1`` form the vocabulary;
        None for real-valued sequences.
    vocab_fixed : bool
        With token ids, whether ``vocab_size`` was given at fit (larger ids
        are errors) rather than learned as the largest id + 1 (larger ids
        are errors in training and out-of-vocabulary at predict).
    """

    n_features_in: int
    n_step_features: int
    flat: bool
    dtype: np.dtype
    steps: int | None
    vocab_size: int | None = None
    vocab_fixed: bool = False


class _Reading(NamedTuple):
    """The settings of one :func:`prepare` call, as every reader sees them."""

    spec: SequenceSpec | None
    n_steps: int | None
    mask_value: float | None
    finite: object                  # check_array's ensure_all_finite
    estimator_name: str | None
    check_feature_names: Callable | None
    channels_first: bool = False
    channels: object = None         # a container's columns, as a DataFrame


def prepare(X, *, spec=None, n_steps=None, mask_value=None, token_ids=False,
            vocab_size=None, fitting=False, estimator_name=None,
            check_feature_names=None, channels_first=False):
    """Read ``X`` in any accepted form into the padded batch and its lengths.

    Parameters
    ----------
    X : array-like or list of array-like
        A 3-D array ``(n_samples, n_steps, n_features)``; a 2-D array, read
        through ``n_steps``; a list or tuple of sequences of different
        lengths, each 2-D ``(n_steps_i, n_features)`` or 1-D; an object
        array or a pandas Series of such sequences; with token ids, a 2-D
        integer array ``(n_samples, n_steps)`` or a list of 1-D integer
        arrays. The time-series containers of sktime and aeon are read in
        their own layout (see :func:`unwrap_container`).
    spec : SequenceSpec, default=None
        What fit recorded. None (at fit) infers it from ``X``; given, ``X``
        must agree with it, and it decides how ``X`` is read (real values
        or token ids, the dtype, the vocabulary), whatever ``token_ids`` and
        ``vocab_size`` say.
    n_steps : int, default=None
        Steps per row of a 2-D real-valued ``X`` (step-major); None reads
        each row as a univariate sequence. Set with another form, it must
        equal its number of steps.
    mask_value : float, default=None
        Steps whose features all equal it (all NaN when it is NaN) are
        padding, before or after each sequence's data; compared in the
        dtype of ``X`` as given. With token ids, an integer id.
    token_ids : bool, default=False
        Without ``spec``: whether ``X`` holds integer token ids.
    vocab_size : int, default=None
        Without ``spec``, with token ids: ids must lie in
        ``[0, vocab_size)``; None learns the vocabulary (largest id + 1).
    fitting : bool, default=False
        With ``spec`` and token ids: whether ``X`` is training data, in
        which ids beyond a learned vocabulary are an error; otherwise they
        are mapped to ``spec.vocab_size``, the out-of-vocabulary id.
    estimator_name : str, default=None
        Name of the model, for messages (as ``check_array``'s
        ``estimator``).
    check_feature_names : callable, default=None
        Called as ``check_feature_names(X)`` to record (without ``spec``)
        or check column names where scikit-learn's ``validate_data`` would:
        first thing for a 2-D ``X`` read as a table, and at fit with the
        padded array of any other real-valued input, which has no names,
        so that those of an earlier fit are dropped.
    channels_first : bool, default=False
        Whether each sequence of an array or list is ``(n_features,
        n_steps)`` (sktime's and aeon's ``numpy3D``) rather than
        ``(n_steps, n_features)``; a 2-D ``X`` read through ``n_steps`` is
        then channel-major (row ``i`` is ``X[i].reshape(n_features,
        n_steps)``). Containers with named axes ignore it.

    Returns
    -------
    batch : ndarray of shape (n_samples, max_steps, n_features) or \
            (n_samples, max_steps)
        C-contiguous, each sequence from position 0 with zeros (or any
        value) past its length; real values in ``spec.dtype`` (at fit
        float32 for float32 input, else float64), or intp token ids. Not
        necessarily a copy of ``X``.
    lengths : ndarray of shape (n_samples,), intp
        Data steps of each sequence.
    spec : SequenceSpec
        ``spec``, or the one inferred from ``X`` at fit.

    Raises
    ------
    ValueError
        For an input of no accepted form, or one that disagrees with
        ``spec``; the message says what is wrong and where.
    TypeError
        For sequences that do not hold numbers.
    """
    if spec is None:
        if not token_ids and vocab_size is not None:
            raise ValueError("vocab_size applies to token ids; set "
                             "embedding_dim too.")
    else:
        token_ids = spec.vocab_size is not None
    if token_ids:
        # A token mask_value is checked before the input is read.
        if mask_value is not None:
            mask_value = token_mask(mask_value)
        finite = False          # ids are checked to be integers instead
    else:
        # Padding may hold what data may not: check_array lets the mask
        # value through, and check_finite finds the rest after masking, in
        # every input form alike.
        finite = True
        if mask_value is not None:
            finite = "allow-nan" if is_nan(mask_value) else _is_finite_mask(
                mask_value)
    _check_not_a_task_key(X)
    channels = container_channels(X)
    X, native = unwrap_container(X)
    r = _Reading(spec, n_steps, mask_value, finite, estimator_name,
                 check_feature_names, bool(channels_first) and not native,
                 channels)
    if token_ids:
        return _prepare_ids(X, r, vocab_size, fitting)
    return _prepare_floats(X, r)


def input_form(X, spec=None, n_steps=None, channels_first=False):
    """How ``X`` is to be read: the one place where input forms are told apart.

    Parameters
    ----------
    X : array-like or list of array-like
    spec : SequenceSpec, default=None
        What fit recorded; None at fit.
    n_steps : int, default=None

    Returns
    -------
    form : {"fitted", "ragged", "table", "array"}
        ``"fitted"``: a 3-D float ndarray that a model fitted on 3-D or
        ragged real values takes as is (only with ``spec``); ``"ragged"``:
        a list or tuple of sequences of different shapes, or, given to a
        fitted model of univariate steps without ``n_steps``, of 1-D
        sequences whatever their lengths; ``"table"``: a
        2-D ``X`` at fit, or later for a model that fit read a table;
        ``"array"``: anything else, left to ``check_array``. Each form has a
        reader in ``_FLOAT_READERS`` and, but for ``"fitted"``, in
        ``_ID_READERS``.
    """
    if (spec is not None and not channels_first
            and _is_fitted_array(X, spec, n_steps)):
        return "fitted"
    if is_ragged(X) or (spec is not None and spec.n_step_features == 1
                        and n_steps is None and _is_list_of_1d(X)):
        return "ragged"
    if _ndim(X) == 2 and (spec is None or spec.flat):
        return "table"
    return "array"


def _is_list_of_1d(X):
    """Whether ``X`` is a list or tuple of 1-D sequences.

    At fit such a list of equal lengths is a 2-D array-like, as
    scikit-learn reads it (its estimator checks fit on ``X.tolist()``), and
    the model it trains is the same as from the ragged list. Given to the
    fitted model it is read as univariate sequences whatever their lengths,
    as a ragged list is: read as a table it would be held to the training
    length, so that the model refused a list of equal lengths that it
    accepts with one sequence longer.
    """
    return (isinstance(X, (list, tuple)) and len(X) > 0
            and all(hasattr(seq, "__len__") and np.ndim(seq) == 1
                    for seq in X))


def _ndim(X):
    return X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim


def _is_fitted_array(X, spec, n_steps):
    """Whether ``X`` is a 3-D float ndarray that the fitted model takes as is
    (steps first).

    Anything else (lists, DataFrames, other dtypes, shapes that do not
    agree with the fit, channels-first arrays) goes through the full
    validation and its errors.
    """
    return (type(X) is np.ndarray and X.ndim == 3
            and X.dtype in (np.float32, np.float64)
            and spec.vocab_size is None and not spec.flat
            and X.shape[0] > 0 and X.shape[1] > 0
            and X.shape[2] == spec.n_step_features
            and (n_steps is None or n_steps == X.shape[1]))


# ---------------------------------------------------------------------------
# Real-valued sequences
# ---------------------------------------------------------------------------
#
# A reader turns one form into ``(X3, lengths, pad, layout)``: X3 (n, T, F)
# in the dtype X was given in, so that mask_value is compared before any
# conversion; lengths (None: all T); pad, the padding steps when the reader
# found them (None: found from X3); layout, ``(n_features_in,
# n_step_features, flat)`` at fit, None later (after checking the spec).

def _prepare_floats(X, r):
    """:func:`prepare` for real values: mask, convert, check finiteness."""
    spec, mask = r.spec, r.mask_value
    form = input_form(X, spec, r.n_steps, r.channels_first)
    X3, lengths, pad, layout = _FLOAT_READERS[form](X, r)
    if lengths is None:
        lengths = np.full(X3.shape[0], X3.shape[1], dtype=np.intp)
    if mask is not None and pad is None:
        pad = padding_steps(X3, mask)
    dtype = output_dtype([X3.dtype]) if spec is None else spec.dtype
    with np.errstate(over="ignore"):    # check_finite reports overflow
        X3 = X3.astype(dtype, copy=False)
    if mask is not None:
        X3, lengths = apply_mask(X3, lengths, mask, pad)
    check_finite(X3, lengths)
    if spec is None:
        spec = _new_spec(layout, X3, lengths, dtype)
    return X3, lengths, spec


def _read_fitted(X, r):
    # check_array's conversions would do nothing here and cost more than
    # predicting one sequence; finiteness is checked after, as for every form.
    _check_names(r, X)
    return np.ascontiguousarray(X), None, None, None


def _check_names(r, X3):
    """Record (at fit) or check (later) the channel names where
    scikit-learn's validate_data would check a DataFrame's columns: those
    of a container's channels, or none for an array or a list, so that a
    model fitted on named channels refuses them swapped or renamed (and
    warns without them), as it does for a 2-D DataFrame's columns."""
    if r.check_feature_names is not None:
        r.check_feature_names(X3 if r.channels is None else r.channels)


def _read_ragged(X, r):
    dtype = None if r.spec is None else r.spec.dtype
    if r.channels_first:
        X = [_steps_first(seq, i) for i, seq in enumerate(X)]
    X3, lengths, pad = ragged_to_padded(X, dtype, r.mask_value)
    check_n_steps_ragged(r.n_steps, lengths)
    _check_names(r, X3)
    return X3, lengths, pad, _step_layout(r, X3.shape[2])


def _read_table(X, r):
    # scikit-learn's validate_data, in its order: names, values, columns.
    # dtype="numeric" keeps the input's dtype (float16, integers) so that
    # mask_value is compared before any conversion.
    if r.check_feature_names is not None:
        r.check_feature_names(X)
    X2 = check_array(X, input_name="X", estimator=r.estimator_name,
                     dtype="numeric", order="C", ensure_all_finite=r.finite)
    _check_columns(X2, r)
    X3 = reshape_2d(X2, r.n_steps, r.channels_first)
    return X3, None, None, _step_layout(r, X3.shape[2], width=X2.shape[1])


def _read_array(X, r):
    _check_has_sample_axis(X)
    X3 = check_array(
        X, dtype="numeric", order="C", allow_nd=True,
        ensure_all_finite=r.finite, ensure_2d=True, input_name="X",
    )
    if X3.ndim == 2:
        _check_one_sequence(X3, r)
        X3 = reshape_2d(X3, r.n_steps, r.channels_first)
    elif X3.ndim == 3:
        if r.channels_first:
            X3 = np.ascontiguousarray(X3.transpose(0, 2, 1))
        check_n_steps(r.n_steps, X3.shape[1], "the 3-D X")
    else:
        raise ValueError(
            f"X must be 2-D (n_samples, n_steps * n_features), "
            f"3-D (n_samples, n_steps, n_features) or a list of "
            f"2-D sequences; got an array of shape {X3.shape}."
        )
    if X3.shape[1] == 0 or X3.shape[2] == 0:
        raise ValueError(
            f"X must have at least one step and one feature, got "
            f"shape {X3.shape}."
        )
    _check_names(r, X3)
    return X3, None, None, _step_layout(r, X3.shape[2])


_FLOAT_READERS = {"fitted": _read_fitted, "ragged": _read_ragged,
                  "table": _read_table, "array": _read_array}


def _step_layout(r, n_step_features, width=None):
    """At fit, ``(n_features_in, n_step_features, flat)``; a 2-D ``X`` read
    as a table has ``width`` columns. Later, check the features per step
    against the spec and return None."""
    if r.spec is None:
        if width is None:
            return n_step_features, n_step_features, False
        return width, n_step_features, True
    if n_step_features != r.spec.n_step_features:
        raise ValueError(
            f"X has {n_step_features} features per step, but "
            f"{_name(r)} was fitted with {r.spec.n_step_features} features "
            f"per step."
        )
    return None


def _check_columns(X2, r):
    """scikit-learn's check of the number of columns of a table, at predict."""
    if r.spec is not None and X2.shape[1] != r.spec.n_features_in:
        raise ValueError(
            f"X has {X2.shape[1]} features, but {_name(r)} is expecting "
            f"{r.spec.n_features_in} features as input."
        )


def _name(r):
    return r.estimator_name or "the model"


def _new_spec(layout, batch, lengths, dtype, vocab_size=None,
              vocab_fixed=False):
    n_features_in, n_step_features, flat = layout
    # Steps summary() shows, as Keras shows a fixed input length.
    same = lengths.min() == lengths.max() == batch.shape[1]
    return SequenceSpec(
        n_features_in=int(n_features_in), n_step_features=int(n_step_features),
        flat=flat, dtype=np.dtype(dtype),
        steps=int(batch.shape[1]) if same else None,
        vocab_size=vocab_size, vocab_fixed=vocab_fixed,
    )


# ---------------------------------------------------------------------------
# Token ids
# ---------------------------------------------------------------------------
#
# A reader turns one form into ``(ids, lengths, layout)``: ids (n, T) intp,
# lengths and layout as for real values.

def _prepare_ids(X, r, vocab_size, fitting):
    """:func:`prepare` for token ids: mask, check ids against the vocabulary."""
    spec, mask = r.spec, r.mask_value
    # Later, the vocabulary rule of the fit.
    if spec is None:
        fixed_vocab = vocab_size
    else:
        fixed_vocab = spec.vocab_size if spec.vocab_fixed else None
    ids, lengths, layout = _ID_READERS[input_form(X, spec, r.n_steps)](X, r)
    if lengths is None:
        lengths = np.full(ids.shape[0], ids.shape[1], dtype=np.intp)
    if mask is not None:
        ids3, lengths = apply_mask(ids[:, :, None], lengths, mask)
        ids = np.ascontiguousarray(ids3[:, :, 0])

    valid = np.arange(ids.shape[1])[None, :] < lengths[:, None]
    data = ids[valid]
    lowest, highest = int(data.min()), int(data.max())
    if lowest < 0:
        n, t, k = first_invalid_id(ids, valid, ids < 0)
        raise ValueError(
            f"Token ids must be >= 0; sample {n} holds {k} at step {t}."
        )
    if spec is not None:
        V = spec.vocab_size
    else:
        V = highest + 1 if fixed_vocab is None else int(fixed_vocab)
        if fixed_vocab is None:
            _check_learned_vocabulary(ids, valid, data, highest)
    if highest >= V:
        n, t, k = first_invalid_id(ids, valid, ids >= V)
        if fixed_vocab is not None:
            raise ValueError(
                f"Token id {k} (sample {n}, step {t}) is not below "
                f"vocab_size={fixed_vocab}."
            )
        if fitting:
            raise ValueError(
                f"Token id {k} (sample {n}, step {t}) is beyond the "
                f"vocabulary learned at the first fit (ids 0 to {V - 1}); "
                f"to train on new ids later, set vocab_size to cover them "
                f"and fit afresh."
            )
        # Ids unseen at fit read the out-of-vocabulary row.
        ids = np.where(ids >= V, V, ids)
    if spec is None:
        spec = _new_spec(layout, ids, lengths, np.intp, vocab_size=V,
                         vocab_fixed=fixed_vocab is not None)
    return ids, lengths, spec


# A learned vocabulary has one embedding row per id up to the largest. Past
# _LARGE_VOCABULARY rows, the ids the data hold must fill at least one row in
# _SPARSEST: else a few stray large ids would size the embedding (and its
# optimizer's state), almost all of it never trained.
_LARGE_VOCABULARY = 1 << 16
_SPARSEST = 64


def _check_learned_vocabulary(ids, valid, data, highest):
    """Refuse a learned vocabulary sized by an id far beyond the others."""
    n_rows = highest + 1
    if n_rows <= _LARGE_VOCABULARY:
        return
    distinct = np.unique(data)
    if n_rows <= _SPARSEST * distinct.size:
        return
    n, t, k = first_invalid_id(ids, valid, ids == highest)
    others = (f"the next largest is {int(distinct[-2]):,}" if distinct.size > 1
              else "it is the only id")
    raise ValueError(
        f"Token id {k:,} (sample {n}, step {t}) is far beyond the others: X "
        f"holds {distinct.size:,} distinct ids and {others}. A learned "
        f"vocabulary (vocab_size=None) has one embedding row per id up to the "
        f"largest token id, {n_rows:,} rows here, almost all never trained. "
        f"If the id is a mistake, remove or remap it (numpy.unique(X, "
        f"return_inverse=True) maps ids to 0 .. n_distinct - 1); if the "
        f"vocabulary is that large, say so with vocab_size={n_rows}."
    )


def _read_ragged_ids(X, r):
    ids, lengths = ragged_ids_to_padded(X)
    check_n_steps_ragged(r.n_steps, lengths)
    return ids, lengths, _step_layout(r, 1)


def _read_id_table(X, r):
    if r.check_feature_names is not None:
        r.check_feature_names(X)
    ids = check_array(X, input_name="X", estimator=r.estimator_name,
                      dtype=None, order="C", ensure_all_finite=r.finite)
    _check_columns(ids, r)
    layout = _step_layout(r, 1, width=ids.shape[1])
    return _id_array(ids, r), None, layout


def _read_id_array(X, r):
    ndim = _ndim(X)
    if ndim != 2:
        raise ValueError(
            f"With embedding_dim set, X must be a 2-D integer array "
            f"(n_samples, n_steps) of token ids or a list of 1-D "
            f"integer arrays; got {ndim} dimension(s)."
        )
    ids = check_array(X, input_name="X", dtype=None, order="C",
                      ensure_all_finite=r.finite)
    return _id_array(ids, r), None, None


def _id_array(ids, r):
    """Checked 2-D ids as intp."""
    check_integer_ids(ids)
    check_n_steps(r.n_steps, ids.shape[1], "the 2-D X")
    return ids.astype(np.intp, copy=False)


_ID_READERS = {"ragged": _read_ragged_ids, "table": _read_id_table,
               "array": _read_id_array}


# ---------------------------------------------------------------------------
# The steps the readers share
# ---------------------------------------------------------------------------

def _is_pandas(X, kind):
    # pandas stays optional: only an object of its own can be one.
    return (type(X).__module__.split(".")[0] == "pandas"
            and type(X).__name__ == kind)


def is_pandas_frame(X):
    """Whether ``X`` is a pandas DataFrame (without importing pandas)."""
    return _is_pandas(X, "DataFrame")


def unwrap_container(X):
    """The sequences of a time-series container, as a list of
    ``(n_steps_i, n_features)`` arrays.

    Returns ``(X, native)``. ``native`` is True when ``X`` was a container
    whose axes are named, read in its own layout whatever
    ``channels_first`` says:

    * sktime's nested DataFrame (a row per sequence, a column per channel,
      each cell a Series or 1-D array of that channel's values);
    * a DataFrame with a two-level MultiIndex ``(instance, timepoint)`` and
      a column per channel (sktime's ``pd-multiindex``);
    * a list or tuple of DataFrames ``(timepoints, channels)``.

    An object ndarray of sequences or a pandas Series of them becomes a
    list (``native`` False: its items are read as a list's are). Anything
    else is returned as it is.
    """
    kind = _container_kind(X)
    if kind == "multiindex":
        if X.index.nlevels != 2:
            raise ValueError(
                f"X is a DataFrame with a {X.index.nlevels}-level "
                f"MultiIndex; a sequence frame has two levels, "
                f"(instance, timepoint), and a column per channel."
            )
        return [g.to_numpy() for _, g in X.groupby(level=0, sort=False)], True
    if kind == "nested":
        return [_nested_row(X, i) for i in range(X.shape[0])], True
    if kind == "frames":
        return [x.to_numpy() for x in X], True
    if _is_pandas(X, "Series") and X.dtype == object:
        return list(X.to_numpy()), False
    if isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1 and X.size:
        dims = [np.ndim(x) for x in X]
        if all(d >= 1 for d in dims):
            return list(X), False
        if any(d >= 1 for d in dims):
            i = dims.index(0)
            raise ValueError(
                f"X is an object array of sequences, but X[{i}] is a "
                f"{type(X[i]).__name__}, not a sequence; every item must "
                f"be a 2-D (n_steps, n_features) or 1-D array."
            )
    return X, False


def _container_kind(X):
    """Which container with named axes ``X`` is: ``"multiindex"`` (a
    DataFrame with a MultiIndex), ``"nested"`` (sktime's nested DataFrame),
    ``"frames"`` (a list or tuple of DataFrames), or None."""
    if _is_pandas(X, "DataFrame"):
        if getattr(X.index, "nlevels", 1) > 1:
            return "multiindex"
        if X.shape[0] and X.shape[1] and X.dtypes.eq(object).all() and all(
                np.ndim(v) == 1 for v in X.iloc[0]):
            return "nested"
        return None
    if isinstance(X, (list, tuple)) and X and all(
            _is_pandas(x, "DataFrame") for x in X):
        return "frames"
    return None


def container_channels(X):
    """The channels of a time-series container, as an empty DataFrame with
    its columns (what scikit-learn's feature-name checks read), or None for
    anything else.

    A list of DataFrames must name the same channels in the same order in
    every frame; a ValueError says which frame differs.
    """
    kind = _container_kind(X)
    if kind in ("multiindex", "nested"):
        return X.iloc[:0]
    if kind == "frames":
        first = X[0].columns
        for i, frame in enumerate(X):
            if not frame.columns.equals(first):
                raise ValueError(
                    f"X[{i}] has the channels {list(frame.columns)}, X[0] "
                    f"{list(first)}: every sequence of a list of DataFrames "
                    f"must have the same channels, in the same order."
                )
        return X[0].iloc[:0]
    return None


def _nested_row(X, i):
    """Row ``i`` of a nested DataFrame as ``(n_steps, n_channels)``."""
    cells = [np.asarray(v) for v in X.iloc[i]]
    lengths = {c.shape[0] for c in cells}
    if len(lengths) > 1:
        shown = {str(col): c.shape[0] for col, c in zip(X.columns, cells)}
        raise ValueError(
            f"Row {i} of the nested DataFrame X has channels of different "
            f"lengths {shown}; the channels of one sequence must have a "
            f"value at every step."
        )
    return np.column_stack(cells)


def _steps_first(seq, i):
    """Sequence ``i`` of a channels-first list, as ``(n_steps, n_channels)``."""
    a = np.asarray(seq)
    if a.ndim == 2:
        return a.T
    if a.ndim == 1:
        return a
    raise ValueError(
        f"Each sequence must be a 2-D array (n_channels, n_steps) with "
        f"channels_first=True, or 1-D (n_steps,); X[{i}] has shape "
        f"{a.shape}."
    )


def _check_not_a_task_key(X):
    """A tuple ``(str, int, ...)`` is a Dask task key, not sequences.

    dask_ml's ``Incremental`` (2025.1) builds the keys of a Dask array's
    blocks for 2-D arrays only: the blocks of a 3-D array reach
    ``partial_fit`` as these keys, whose strings would otherwise fail as
    values that cannot be converted to numbers.
    """
    if (isinstance(X, tuple) and len(X) > 1 and isinstance(X[0], str)
            and all(isinstance(i, numbers.Integral) for i in X[1:])):
        raise ValueError(
            f"X is the tuple {X!r}: a Dask task key, not sequences. "
            f"dask_ml's Incremental hands partial_fit the blocks of 2-D Dask "
            f"arrays only; pass a 3-D Dask array (n_samples, n_steps, "
            f"n_features) as rows, X.reshape(n_samples, n_steps * "
            f"n_features), with n_steps set on the estimator."
        )


def _check_has_sample_axis(X):
    """Inputs with no axis of samples: say what was given and how to pass it."""
    if isinstance(X, (str, bytes, dict)) or np.isscalar(X):
        raise ValueError(
            f"X must hold sequences (a 3-D array, a 2-D array, a list of "
            f"2-D arrays or a time-series DataFrame); got a "
            f"{type(X).__name__}."
        )
    if isinstance(X, (list, tuple)) and not X:
        raise ValueError(f"X holds no sequences: an empty {type(X).__name__}.")
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype != object:
        raise ValueError(
            f"X is a 1-D array of shape {X.shape}. Reshape your data: one "
            f"univariate sequence is [X] or X[None]; {X.shape[0]} sequences "
            f"of one step each, X[:, None]."
        )


def _check_one_sequence(X2, r):
    """A 2-D array given to a model fitted on multivariate steps: most
    likely one sequence, which the 2-D rule reads as univariate rows.

    With univariate steps the reading may be meant (sequences of one step),
    so an array of shape ``(T, 1)`` given to a model fitted on sequences of
    ``T`` steps gets a warning rather than an error.
    """
    spec = r.spec
    if spec is None or spec.flat or r.n_steps is not None:
        return
    if spec.n_step_features == 1:
        if (not r.channels_first and spec.steps is not None
                and spec.steps > 1 and X2.shape == (spec.steps, 1)):
            warnings.warn(
                f"X is a 2-D array of shape {X2.shape}, which reads as "
                f"{X2.shape[0]} univariate sequences of 1 step, but "
                f"{_name(r)} was fitted on sequences of {spec.steps} steps. "
                f"To pass one sequence (n_steps, 1), give [X] or X[None].",
                UserWarning, stacklevel=_outside_stacklevel())
        return
    F = spec.n_step_features
    if F in X2.shape:
        layout = ("(n_features, n_steps)" if r.channels_first
                  else "(n_steps, n_features)")
        raise ValueError(
            f"X is a 2-D array of shape {X2.shape}, which reads as "
            f"{X2.shape[0]} univariate sequences, but {_name(r)} was fitted "
            f"on sequences of {F} features per step. To pass one sequence "
            f"{layout}, give [X] or X[None]."
        )


def _outside_stacklevel():
    """The ``stacklevel`` (for a warning raised by the caller) of the first
    frame outside seqclf, so that the warning names the user's line."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def is_ragged(X):
    """True when ``X`` is a list or tuple of sequences that is not an array.

    A list whose items have equal shapes is an array like any other; only
    lists NumPy cannot stack (different lengths) take the ragged path.
    """
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    shapes = set()
    for seq in X:
        shape = np.shape(seq) if hasattr(seq, "__len__") else None
        if shape is None:
            return False
        shapes.add(shape)
        if len(shapes) > 1:
            return True
    return False


def output_dtype(dtypes):
    """float32 when every input is float32, else float64 (MLPClassifier's rule)."""
    return np.float32 if all(d == np.float32 for d in dtypes) else np.float64


def ragged_to_padded(X, dtype=None, mask_value=None):
    """Stack a list of sequences into a post-padded array and their lengths.

    Each item is a 2-D array-like ``(n_steps_i, n_features)`` or a 1-D one
    (a univariate sequence). Padding positions hold zeros.

    Parameters
    ----------
    X : list or tuple of array-like
    dtype : numpy dtype, default=None
        dtype of the result; None applies :func:`output_dtype` to the
        sequences' dtypes.
    mask_value : float, default=None
        With a mask value, the padding steps are found in each sequence's
        own dtype, before any conversion (see :func:`padding_steps`).

    Returns
    -------
    X : ndarray of shape (n_samples, max n_steps_i, n_features)
    lengths : ndarray of shape (n_samples,), intp
    pad : ndarray of shape (n_samples, max n_steps_i), bool, or None
        Which steps equal ``mask_value`` (False past each length); None
        without a mask value.
    """
    seqs = []
    for i, seq in enumerate(X):
        a = np.asarray(seq)
        if a.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: X[{i}] has dtype "
                             f"{a.dtype}.")
        if a.dtype.kind not in "biuf":
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"X[{i}] must hold numbers, got dtype {a.dtype}: {exc}"
                ) from None
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise ValueError(
                f"Each sequence must be a 2-D array (n_steps, n_features) or a "
                f"1-D array (n_steps,); X[{i}] has shape {a.shape}."
            )
        _check_has_steps(a, i)
        seqs.append(a)
    n_features = {a.shape[1] for a in seqs}
    if len(n_features) > 1:
        first = seqs[0].shape[1]
        bad = next(i for i, a in enumerate(seqs) if a.shape[1] != first)
        raise ValueError(
            f"All sequences must have the same number of features: X[0] has "
            f"{first}, X[{bad}] has {seqs[bad].shape[1]}."
        )
    (F,) = n_features
    if F == 0:
        raise ValueError("Sequences must have at least one feature, got 0.")
    pad = None
    if mask_value is not None:
        pad, _ = _post_pad([padding_steps(a[None], mask_value)[0] for a in seqs],
                           bool)
    if dtype is None:
        dtype = output_dtype([a.dtype for a in seqs])
    X3, lengths = _post_pad(seqs, dtype)
    return X3, lengths, pad


def _check_has_steps(a, i):
    if a.shape[0] == 0:
        raise ValueError(f"Sequence X[{i}] has zero steps; every sequence "
                         f"needs at least one.")


def _post_pad(seqs, dtype):
    """Stack arrays ``(n_steps_i, ...)`` into ``(n, max n_steps_i, ...)``,
    zeros past each length; return it and the lengths."""
    lengths = np.array([a.shape[0] for a in seqs], dtype=np.intp)
    out = np.zeros((len(seqs), int(lengths.max())) + seqs[0].shape[1:],
                   dtype=dtype)
    for i, a in enumerate(seqs):
        out[i, :a.shape[0]] = a
    return out, lengths


def ragged_ids_to_padded(X):
    """Stack a list of 1-D integer id sequences into ``(ids, lengths)``.

    ``ids`` is a post-padded intp array ``(n_samples, max_steps)`` (zeros
    past each length).
    """
    seqs = []
    for i, seq in enumerate(X):
        a = np.asarray(seq)
        if a.ndim != 1:
            raise ValueError(
                f"With embedding_dim set, each sequence must be a 1-D array "
                f"of token ids; X[{i}] has shape {a.shape}."
            )
        _check_has_steps(a, i)
        check_integer_ids(a, f"X[{i}]")
        seqs.append(a)
    return _post_pad(seqs, np.intp)


def check_integer_ids(a, name="X"):
    """Raise ValueError unless ``a`` holds integers that fit in intp."""
    if a.dtype.kind not in "iu":
        raise ValueError(
            f"With embedding_dim set, {name} must hold integer token ids, got "
            f"dtype {a.dtype}. Map tokens to ids first (e.g. with "
            f"CountVectorizer's vocabulary_), and pass them as an integer "
            f"array or a list of integer arrays."
        )
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.intp).max:
        raise ValueError(f"{name} holds a token id too large for an index: "
                         f"{a.max()}.")


def first_invalid_id(ids, valid, bad):
    """``(sample, step, id)`` of the first data step (``valid``) where ``bad``
    is True; there must be one."""
    n, t = np.argwhere(bad & valid)[0]
    return int(n), int(t), int(ids[n, t])


def check_finite(X, lengths):
    """Raise ValueError if a data step (before ``lengths``) holds NaN or inf.

    Called after masking and after the conversion to the dtype the model
    computes in, so padding steps (NaN ones included) lie past ``lengths``,
    a NaN left inside a sequence is a partial step, and a value beyond the
    dtype's range (float64 input to a float32 model) is caught as the
    infinity it became.
    """
    # The sum is finite only if every value is (NaN and inf propagate; an
    # overflow of large finite values falls through to the exact check).
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(X)):
            return
    bad = ~np.isfinite(X)
    if bad.any():
        bad &= np.arange(X.shape[1])[None, :, None] < lengths[:, None, None]
    if bad.any():
        n, t, _ = np.argwhere(bad)[0]
        raise ValueError(
            f"Input X contains NaN or infinity (sample {n}, step {t}) in "
            f"{X.dtype}, the dtype the model computes in; sequences must hold "
            f"finite values within its range (largest "
            f"{np.finfo(X.dtype).max:.4g}), except for whole padding steps "
            f"marked by mask_value."
        )


def _is_finite_mask(value):
    """check_array's ``ensure_all_finite`` for a mask value that is not NaN:
    False (let infinities through to the mask) for an infinite one."""
    return (isinstance(value, numbers.Integral)
            or math.isfinite(float(value)))


def is_nan(value):
    """Whether a real number is NaN (Python ints of any size are not)."""
    return not isinstance(value, numbers.Integral) and math.isnan(float(value))


def mask_scalar(mask_value, dtype):
    """``mask_value`` as a scalar of ``dtype``, as NumPy compares them.

    In a float dtype the value is rounded to it, as ``X == mask_value``
    rounds a Python scalar (and Keras casts its ``mask_value``): 0.1 marks
    float16 steps of ``np.float16(0.1)``. A value beyond the dtype's range
    (1e300 in float32), which would round to infinity, and in an integer
    dtype a value it does not hold (0.5, or beyond its range), which no
    step could equal, are a ValueError.
    """
    dtype = np.dtype(dtype)
    value = (int(mask_value) if isinstance(mask_value, numbers.Integral)
             else float(mask_value))
    exact = None
    if dtype.kind == "f":
        try:
            with np.errstate(over="ignore"):
                exact = dtype.type(value)
        except OverflowError:           # a Python int beyond float64's range
            exact = None
        if (exact is not None and not np.isfinite(exact)
                and math.isfinite(value)):
            exact = None                # beyond the dtype's range
    elif dtype.kind in "iub":
        if isinstance(value, float):
            value = int(value) if value.is_integer() else None
        if value is not None:
            info = (np.iinfo(dtype) if dtype.kind != "b"
                    else np.iinfo(np.uint8))
            hi = 1 if dtype.kind == "b" else info.max
            if info.min <= value <= hi:
                exact = dtype.type(value)
    if exact is None:
        raise ValueError(
            f"mask_value={mask_value!r} is not representable in {dtype}, the "
            f"dtype of X (beyond its range, or not an integer for integer "
            f"data): it would mark no step, or the wrong ones, as padding. "
            f"Pad with a value that {dtype} holds (e.g. 0, -1 or NaN) and "
            f"set mask_value to it."
        )
    return exact


def padding_steps(X, mask_value):
    """Which steps of ``X (N, T, F)`` are padding, compared in X's own dtype.

    A step is padding when all its features equal ``mask_value`` (all NaN
    when it is NaN). Comparing before any conversion means that a value
    which rounds onto the mask value in a narrower dtype is not mistaken
    for padding, and padding written in a narrow dtype (float16) is found.
    """
    if is_nan(mask_value):
        if X.dtype.kind != "f":
            return np.zeros(X.shape[:2], dtype=bool)
        return np.isnan(X).all(axis=2)
    return (X == mask_scalar(mask_value, X.dtype)).all(axis=2)


def token_mask(mask_value):
    """A token ``mask_value`` as an int, checked to be an id-sized integer."""
    ok = not is_nan(mask_value) and (isinstance(mask_value, numbers.Integral)
                                     or math.isfinite(mask_value))
    if ok and (isinstance(mask_value, numbers.Integral)
               or float(mask_value).is_integer()):
        value = int(mask_value)
        info = np.iinfo(np.intp)
        if info.min <= value <= info.max:
            return value
    raise ValueError(
        f"With embedding_dim set, mask_value must be an integer token id "
        f"(Keras' mask_zero=True is mask_value=0) within int64's range, got "
        f"{mask_value!r}."
    )


def apply_mask(X, lengths, mask_value, pad=None):
    """Find each sequence's steps that are not padding and move them to the front.

    A step is padding when all its features equal ``mask_value`` (or are
    all NaN when ``mask_value`` is NaN). Padding may come before the data
    (Keras' ``padding="pre"``) or after it ("post"), not in between.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_steps, n_features)
    lengths : ndarray of shape (n_samples,)
        Steps of each sequence before masking.
    mask_value : float
        Value marking padding steps; may be NaN.
    pad : ndarray of shape (n_samples, n_steps), bool, default=None
        The padding steps, when found before ``X`` was converted (see
        :func:`padding_steps`); None finds them in ``X``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, n_features)
        ``X`` itself when no sequence is pre-padded, else a copy with each
        sequence's data steps from position 0.
    lengths : ndarray of shape (n_samples,), intp
        Number of data steps of each sequence.
    """
    N, T, _ = X.shape
    if pad is None:
        pad = padding_steps(X, mask_value)
    valid = ~pad & (np.arange(T)[None, :] < lengths[:, None])
    n_valid = valid.sum(axis=1)
    empty = np.flatnonzero(n_valid == 0)
    if empty.size:
        raise ValueError(
            f"Sequence {empty[0]} is all padding (every step equals "
            f"mask_value={mask_value!r}); each sequence needs at least one "
            f"data step."
        )
    first = valid.argmax(axis=1)
    last = T - 1 - valid[:, ::-1].argmax(axis=1)
    holes = np.flatnonzero(last - first + 1 != n_valid)
    if holes.size:
        raise ValueError(
            f"Sequence {holes[0]} has padding steps (equal to mask_value="
            f"{mask_value!r}) between data steps; padding may only come "
            f"before or after the data."
        )
    lengths = n_valid.astype(np.intp)
    if not first.any():
        return X, lengths
    # Shift pre-padded sequences to start at position 0; what lands past
    # each new length is padding that the kernels never read.
    steps = np.minimum(first[:, None] + np.arange(T)[None, :], T - 1)
    X = np.take_along_axis(X, steps[:, :, None], axis=1)
    return np.ascontiguousarray(X), lengths


def check_n_steps(n_steps, actual, what):
    """Raise ValueError when ``n_steps`` is set and differs from ``actual``."""
    if n_steps is not None and n_steps != actual:
        raise ValueError(
            f"n_steps={n_steps} does not agree with {what} of {actual} steps; "
            f"n_steps only says how to read a 2-D X and may be left to None."
        )


def check_n_steps_ragged(n_steps, lengths):
    """Raise ValueError when ``n_steps`` is set for a list of sequences."""
    if n_steps is not None:
        raise ValueError(
            f"n_steps={n_steps} does not agree with a list of sequences of "
            f"{lengths.min()} to {lengths.max()} steps; leave n_steps=None for "
            f"sequences of different lengths."
        )


def reshape_2d(X, n_steps, channels_first=False):
    """View a 2-D ``(n_samples, width)`` array as ``(n_samples, T, F)``.

    With ``n_steps`` set the rows are step-major, ``F = width / n_steps``
    (channel-major with ``channels_first``: each row is ``F`` channels of
    ``n_steps`` values, as sktime flattens; then a copy). Without it each
    row is a univariate sequence (``F = 1``).
    """
    n, width = X.shape
    if n_steps is None:
        return X.reshape(n, width, 1)
    if not isinstance(n_steps, numbers.Integral) or width % n_steps:
        layout = ("channel by channel" if channels_first else "step by step")
        raise ValueError(
            f"X has {width} columns, which is not a multiple of n_steps="
            f"{n_steps}: a 2-D X holds n_steps * n_features values per row, "
            f"{layout}."
        )
    if channels_first:
        return np.ascontiguousarray(
            X.reshape(n, width // n_steps, n_steps).transpose(0, 2, 1))
    return X.reshape(n, n_steps, width // n_steps)
