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
    steps keep
    their value, so that ``mask_value`` still marks them for the estimator
    after the scaler. sktime's and aeon's DataFrame containers come back as
    a list of DataFrames ``(timepoints, channels)`` (a ``pd-multiindex``
    frame as such a frame), which the estimators read in that layout.

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
        statistics and kept as they are.
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
        batch, lengths = self._prepare(X, reset=True)
        valid = np.arange(batch.shape[1])[None, :] < lengths[:, None]
        values = batch[valid].astype(np.float64)        # (n_steps_seen, F)
        self.n_steps_seen_ = int(values.shape[0])
        mean = values.mean(axis=0)
        self.var_ = values.var(axis=0)
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
        X_scaled : ndarray, list of ndarray or list of DataFrame
            Of the form of ``X`` (see the class description), float64 (or
            float32 for float32 input).
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
        """
        check_is_fitted(self)
        self._prepare(X, reset=False)
        return self._apply(X, inverse=True)

    # -- scaling each form in its own layout --------------------------------

    def _scale_steps(self, a, inverse):
        """Scale a steps-first ``(T, F)`` or ``(n, T, F)`` array's valid
        steps; a float copy."""
        a = np.array(a, dtype=_sequences.output_dtype([np.asarray(a).dtype]))
        if a.ndim == 1:                                  # univariate
            return self._scale_steps(a[:, None], inverse)[:, 0]
        keep = None
        if self.mask_value is not None:
            keep = ~_sequences.padding_steps(a if a.ndim == 3 else a[None],
                                             self.mask_value)
            if a.ndim == 2:
                keep = keep[0]
        mean = self.mean_.astype(a.dtype)
        scale = self.scale_.astype(a.dtype)
        out = a * scale + mean if inverse else (a - mean) / scale
        if keep is not None:
            out = np.where(keep[..., None], out, a)
        return out

    def _apply(self, X, inverse):
        pandas_frame = _sequences.is_pandas_frame(X)
        items, native = _sequences.unwrap_container(X)
        if native:
            if pandas_frame and getattr(X.index, "nlevels", 1) == 2:
                out = X.copy()
                out.loc[:, :] = self._scale_steps(X.to_numpy(), inverse)
                return out
            columns = (list(X.columns) if pandas_frame
                       else list(X[0].columns))
            import pandas as pd         # the input was pandas

            return [pd.DataFrame(self._scale_steps(a, inverse), columns=columns)
                    for a in items]
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
