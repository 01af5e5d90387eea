"""Transformers for sequence data, to stand before the estimators.

:class:`SequenceScaler` standardises each feature (channel) of sequences
over all their valid steps, which scikit-learn's ``StandardScaler`` cannot
do: it refuses 3-D arrays and ragged lists, and on 2-D rows read through
``n_steps`` it scales each (step, feature) column on its own.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context,
)
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    _check_feature_names, _get_feature_names, check_is_fitted,
)

from . import _persistence, _sequences


class SequenceScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise each feature of sequences over all their valid steps.

    The mean and standard deviation of each feature are taken over every
    valid step of every training sequence (padding steps, those equal to
    ``mask_value``, and the steps past a ragged sequence's end are left
    out), and ``transform`` maps each valid value ``x`` of feature ``f`` to
    ``(x - mean_[f]) / scale_[f]``. The output has the form of the input:
    a 3-D array stays 3-D, 2-D rows stay rows (in their layout), a ragged
    list stays a list of arrays of the same shapes (a list of sequences of
    one shape comes back as an array, as the estimators read it); padding
    steps hold ``mask_value`` (in the output's dtype), so that it still
    marks them for the estimator after the scaler. sktime's and aeon's
    DataFrame containers come back as the same container with the same
    index and columns: a list of DataFrames ``(timepoints, channels)``, each
    with its own time index; a ``pd-multiindex`` frame; a nested DataFrame,
    each cell a Series with its own index and name (or a 1-D array where one
    was given).

    Nor does a data step ever come out as padding. Where scaling would make
    every feature of a data step equal ``mask_value`` (with
    ``mask_value=0``, a step at the training means scales to 0), those
    values are set to the next value of the output dtype above
    ``mask_value`` (``numpy.nextafter``; 5e-324 in float64 for 0), so that
    the estimator after the scaler still reads the step as data: such steps
    differ from exact scaling by one unit in the last place, and no others
    do. ``inverse_transform`` maps them back to the data (within rounding),
    applies the same rule to its own output, and keeps padding as padding.
    An infinite ``mask_value`` reached by overflow is an error instead.

    Parameters
    ----------
    n_steps : int, default=None
        How to read a 2-D ``X``, as the estimators' ``n_steps``: rows of
        ``n_steps`` steps of ``n_features`` values; None reads each row as
        a univariate sequence.
    channels_first : bool, default=False
        Whether each sequence of an array or list is ``(n_channels,
        n_steps)``, as the estimators' ``channels_first``.
    mask_value : float, default=None
        Steps whose features all equal it are padding: left out of the
        statistics and kept as padding. No data step is scaled onto it (see
        above).
    with_mean : bool, default=True
        Subtract the mean.
    with_std : bool, default=True
        Divide by the standard deviation (a feature that does not vary is
        divided by 1).

    Attributes
    ----------
    mean_ : ndarray of shape (n_step_features,)
        Mean of each feature over the valid training steps (zeros with
        ``with_mean=False``).
    scale_ : ndarray of shape (n_step_features,)
        Standard deviation of each feature (1 where it is zero, and with
        ``with_std=False``).
    var_ : ndarray of shape (n_step_features,)
        Variance of each feature.
    n_steps_seen_ : int
        Valid steps the statistics were taken over.
    n_features_in_ : int
        Columns of a 2-D ``X`` at fit, else features per step.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a 2-D ``X`` given as a DataFrame with string names.

    Notes
    -----
    The scaler scales values: do not put it before a model reading token
    ids (``embedding_dim``), whose ids it would change. Integer input is
    scaled as real values (the output is float64).

    Examples
    --------
    >>> import numpy as np
    >>> from seqclf.preprocessing import SequenceScaler
    >>> seqs = [np.array([[1.0, 10.0], [3.0, 30.0]]), np.array([[5.0, 50.0]])]
    >>> scaler = SequenceScaler().fit(seqs)
    >>> scaler.mean_, scaler.n_steps_seen_
    (array([ 3., 30.]), 3)
    >>> [s.shape for s in scaler.transform(seqs)]
    [(2, 2), (1, 2)]
    """

    _parameter_constraints = {
        "n_steps": [Interval(Integral, 1, None, closed="left"), None],
        "channels_first": ["boolean"],
        "mask_value": [Real, None],
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
    }

    def __init__(self, *, n_steps=None, channels_first=False, mask_value=None,
                 with_mean=True, with_std=True):
        self.n_steps = n_steps
        self.channels_first = channels_first
        self.mask_value = mask_value
        self.with_mean = with_mean
        self.with_std = with_std

    def _prepare(self, X, reset):
        if reset:
            names = [None]

            def check_feature_names(X_named):
                names[0] = _get_feature_names(X_named)
        else:
            def check_feature_names(X_named):
                # Only where there are names to compare (see the estimators).
                if (hasattr(X_named, "columns")
                        or hasattr(self, "feature_names_in_")):
                    _check_feature_names(self, X_named, reset=False)
        if isinstance(self.n_steps, (bool, np.bool_)):
            raise TypeError(f"n_steps must be an int, got the bool {self.n_steps!r}.")
        batch, lengths, spec = _sequences.prepare(
            X, spec=None if reset else self._spec, n_steps=self.n_steps,
            mask_value=self.mask_value, channels_first=self.channels_first,
            estimator_name=type(self).__name__,
            check_feature_names=check_feature_names)
        if reset:
            self._spec = spec
            self.n_features_in_ = spec.n_features_in
            if names[0] is None:
                vars(self).pop("feature_names_in_", None)
            else:
                self.feature_names_in_ = names[0]
        return batch, lengths

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the mean and standard deviation of each feature.

        Parameters
        ----------
        X : array-like or list of arrays
            Sequences, in any form the estimators take.
        y : None
            Ignored.

        Returns
        -------
        self : SequenceScaler
        """
        # Reading X records its facts (n_features_in_, the spec): a fit
        # refused after that puts the previous ones back.
        previous = dict(vars(self))
        batch, lengths = self._prepare(X, reset=True)
        valid = np.arange(batch.shape[1])[None, :] < lengths[:, None]
        values = batch[valid].astype(np.float64)        # (n_steps_seen, F)
        with np.errstate(over="ignore", invalid="ignore"):
            mean = values.mean(axis=0)
            var = values.var(axis=0)
        # Finite values whose sum or squares overflow float64 would give an
        # infinite scale: a transform of zeros and an inverse of NaN.
        bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(var)))
        if bad.size:
            f = int(bad[0])
            vars(self).clear()
            vars(self).update(previous)
            raise ValueError(
                f"The mean or variance of feature {f} overflows float64 "
                f"(largest |value| {np.max(np.abs(values[:, f])):.4g}); "
                f"{type(self).__name__} cannot scale it. Divide the data by "
                f"a common factor first."
            )
        self.n_steps_seen_ = int(values.shape[0])
        self.var_ = var
        self.mean_ = mean if self.with_mean else np.zeros_like(mean)
        scale = np.sqrt(self.var_)
        self.scale_ = (np.where(scale > 0, scale, 1.0) if self.with_std
                       else np.ones_like(scale))
        return self

    def transform(self, X):
        """Standardise the valid steps of ``X``, in the form it came in.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        X_scaled : ndarray, list of ndarray, DataFrame or list of DataFrame
            Of the form of ``X`` (a DataFrame container with its index and
            columns; see the class description), float64 (or float32 for
            float32 input).

        Raises
        ------
        ValueError
            For input that the estimators would refuse, and where an
            infinite ``mask_value`` is reached by overflow.
        """
        check_is_fitted(self)
        self._prepare(X, reset=False)           # every check of the input
        return self._apply(X, inverse=False)

    def inverse_transform(self, X):
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        X_original : of the form of ``X``
            As :meth:`transform` returns it.

        Raises
        ------
        ValueError
            As :meth:`transform`.
        """
        check_is_fitted(self)
        self._prepare(X, reset=False)
        return self._apply(X, inverse=True)

    # -- scaling each form in its own layout --------------------------------

    def _scale_steps(self, a, inverse):
        """Scale a steps-first ``(T, F)`` or ``(n, T, F)`` array's valid
        steps; a float copy."""
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":      # e.g. a frame of mixed columns
            a = a.astype(np.float64)
        if a.ndim == 1:                                  # univariate
            return self._scale_steps(a[:, None], inverse)[:, 0]
        dtype = _sequences.output_dtype([a.dtype])
        keep = None
        if self.mask_value is not None:
            # Found in the dtype given, as the estimators find padding: a
            # float16 step of mask_value is padding, whatever it becomes in
            # float64.
            keep = ~_sequences.padding_steps(a if a.ndim == 3 else a[None],
                                             self.mask_value)
            if a.ndim == 2:
                keep = keep[0]
        a = np.array(a, dtype=dtype)
        mean = self.mean_.astype(dtype)
        scale = self.scale_.astype(dtype)
        out = a * scale + mean if inverse else (a - mean) / scale
        if keep is not None:
            out = np.where(keep[..., None], out, self._padding_value(a))
            self._keep_off_mask(out, keep, inverse)
        return out

    def _padding_value(self, a):
        """What padding steps of ``a`` hold in the output: ``mask_value`` in
        its dtype, which the estimator compares against, where it has one
        (else the steps as they are)."""
        if _sequences.is_nan(self.mask_value):
            return a
        try:
            return _sequences.mask_scalar(self.mask_value, a.dtype)
        except ValueError:
            return a

    def _keep_off_mask(self, out, keep, inverse):
        """Move the data steps (``keep``) of ``out`` that equal ``mask_value``
        in every feature one unit in the last place above it, in place."""
        mv = self.mask_value
        if _sequences.is_nan(mv):
            return      # finite data scale to numbers, never to NaN
        try:
            mask = _sequences.mask_scalar(mv, out.dtype)
        except ValueError:
            return      # a value out.dtype cannot hold: no value equals it
        hit = keep & (out == mask).all(axis=-1)
        if not hit.any():
            return
        if np.isinf(mask):
            method = "inverse_transform" if inverse else "transform"
            raise ValueError(
                f"SequenceScaler.{method}: a data step scales to "
                f"mask_value={mv!r} in every "
                f"feature, beyond the range of {out.dtype}, and would be read "
                f"as padding. Its values lie far outside those seen at fit; "
                f"check them, or pad with NaN and set mask_value=np.nan."
            )
        # Moved rather than refused: data at the training means (a constant
        # feature, integer values at their mean) are legitimate, and an
        # error would fail a Pipeline(SequenceScaler(mask_value=0),
        # RNNClassifier(mask_value=0)) on whichever split holds such a step.
        # One unit in the last place is within the rounding of the scaling
        # itself, and the estimator, which compares mask_value in the dtype
        # it is given, reads data.
        out[hit] = np.nextafter(mask, out.dtype.type(np.inf))

    def _apply(self, X, inverse):
        items, native = _sequences.unwrap_container(X)
        if native:
            return self._apply_frames(X, items, inverse)
        # A list NumPy can stack is an array like any other (as the
        # estimators read it); only a ragged one stays a list.
        if _sequences.is_ragged(items):
            if self.channels_first:     # (channels, steps) each, or 1-D
                return [self._scale_steps(np.asarray(s).T, inverse).T
                        for s in items]
            return [self._scale_steps(s, inverse) for s in items]
        a = np.asarray(items)
        if a.ndim == 3:
            if self.channels_first:
                out = self._scale_steps(a.transpose(0, 2, 1), inverse)
                return out.transpose(0, 2, 1).copy()
            return self._scale_steps(a, inverse)
        # 2-D rows: view as sequences, scale, back to the rows' layout.
        n, width = a.shape
        steps = _sequences.reshape_2d(a, self.n_steps, self.channels_first)
        out = self._scale_steps(steps, inverse)
        if self.channels_first and self.n_steps is not None:
            out = out.transpose(0, 2, 1)
        return np.ascontiguousarray(out).reshape(n, width)

    def _apply_frames(self, X, items, inverse):
        """Scale a DataFrame container into the same container: each
        sequence keeps its index and columns (a time index above all)."""
        import pandas as pd             # the input was pandas

        if not _sequences.is_pandas_frame(X):          # list of frames
            return [pd.DataFrame(self._scale_steps(a, inverse),
                                 index=x.index, columns=x.columns)
                    for a, x in zip(items, X)]
        if X.index.nlevels == 2:                       # pd-multiindex
            # A new frame, not values set into a copy: those would take the
            # columns' dtypes (an int column refuses them, a float32 one
            # rounds them).
            return pd.DataFrame(self._scale_steps(X.to_numpy(), inverse),
                                index=X.index, columns=X.columns)
        # Nested: a row per sequence, a cell per channel.
        cells = np.empty(X.shape, dtype=object)
        for i, a in enumerate(items):
            scaled = self._scale_steps(a, inverse)
            for j, given in enumerate(X.iloc[i]):
                cells[i, j] = (pd.Series(scaled[:, j], index=given.index,
                                         name=given.name)
                               if isinstance(given, pd.Series)
                               else scaled[:, j].copy())
        return pd.DataFrame(cells, index=X.index, columns=X.columns)

    def __getstate__(self):
        # Plain values only (the input spec as a dict), as the estimators
        # save theirs: skops then lists only this class as untrusted.
        state = dict(super().__getstate__())
        if "_spec" in state:
            state["_spec"] = _persistence.spec_state(state["_spec"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        if "_spec" in state:
            state["_spec"] = _persistence.loaded_spec(type(self).__name__,
                                                      state["_spec"])
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        mv = self.mask_value
        tags.input_tags.allow_nan = mv is not None and _sequences.is_nan(mv)
        return tags
