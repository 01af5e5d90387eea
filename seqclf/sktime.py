"""seqclf's estimators as sktime classifiers and regressors.

Needs the ``sktime`` extra (``pip install "seqclf[sktime]"``). seqclf's
estimators read sktime's data containers as they are, but they are
scikit-learn estimators: sktime's own tools (``evaluate``, its pipelines,
tuners and ensembles) call sktime's estimator interface (``clone``,
``get_tag``, the Panel checks), which they do not have. The two classes here
are that interface around :class:`~seqclf.RNNClassifier` and
:class:`~seqclf.RNNRegressor`, on sktime's ``BaseClassifier`` and
``BaseRegressor``::

    from sklearn.model_selection import KFold
    from sktime.classification.model_evaluation import evaluate
    from sktime.datasets import load_basic_motions
    from seqclf.sktime import RNNTimeSeriesClassifier

    X, y = load_basic_motions(split="train")
    evaluate(RNNTimeSeriesClassifier("gru", 32, random_state=0), X=X, y=y,
             cv=KFold(3, shuffle=True, random_state=0))

They take the wrapped estimator's parameters with its defaults, and ``fit``
builds that estimator from them (``estimator_``); they add nothing to the
model, so that their predictions are the estimator's on the same data.
sktime checks and converts the data (any Panel container: ``numpy3D``,
nested DataFrames, ``pd-multiindex`` frames, lists of DataFrames, ...) and
hands seqclf one of the containers it reads natively, unequal lengths kept.
What sktime's containers decide is not a parameter here:

* ``channels_first`` and ``n_steps``: sktime's ``numpy3D`` is ``(n_instances,
  n_channels, n_timepoints)``, read with ``channels_first=True``; the other
  containers name their axes; 2-D rows read through ``n_steps`` never reach
  an sktime estimator (sktime makes a 2-D array a univariate panel);
* ``embedding_dim`` and ``vocab_size``: token-id models read 2-D arrays of
  ids, which sktime's panels are not;
* ``warm_start``: sktime's ``fit`` starts from an unfitted estimator.

Missing values are refused (sktime's check raises a ``ValueError`` before
seqclf sees the data): the recurrent layers cannot read a step with a gap,
and unequal lengths need no padding in these containers.
"""

import warnings

try:
    from sktime.classification.base import BaseClassifier
    from sktime.regression.base import BaseRegressor
except ImportError as exc:          # pragma: no cover - depends on the install
    raise ImportError(
        "seqclf.sktime needs sktime: pip install \"seqclf[sktime]\"."
    ) from exc

from ._adapter_params import ClassifierParams, RegressorParams, document
from ._rnn import RNNClassifier, RNNRegressor

__all__ = ["RNNTimeSeriesClassifier", "RNNTimeSeriesRegressor"]

# Containers seqclf reads natively and sktime can hand over. The first is
# what sktime converts any other Panel container to (pd-wide, pd-long, ...),
# so it must hold unequal lengths; numpy3D (equal lengths) and the others
# arrive as they are, without a conversion.
_X_INNER_MTYPES = ["pd-multiindex", "nested_univ", "df-list", "numpy3D"]

_TAGS = {
    "authors": "seqclf developers",
    "maintainers": "seqclf developers",
    # PyPI names, checked at fit against the installed distributions: a
    # checkout needs its metadata (pip install -e .), not only its path.
    "python_dependencies": "seqclf",
    "python_version": ">=3.10",
    "X_inner_mtype": _X_INNER_MTYPES,
    "capability:multivariate": True,
    "capability:unequal_length": True,
    "capability:missing_values": False,
    # Real-valued channels only: seqclf converts X to floats.
    "capability:categorical_in_X": False,
    # sktime's flag is for an n_jobs parameter; seqclf's threads are set by
    # n_threads (or OpenMP's limits) and do not change the model.
    "capability:multithreading": False,
    "capability:random_state": True,
    "property:randomness": "derandomized",
}

def _predicting(estimator, method, X):
    """``estimator.method(X)``, without scikit-learn's warnings that one of
    the fit and predict containers names its channels and the other not.

    sktime takes any Panel container at fit and at predict, and numpy3D
    names no channels: fitting on a nested DataFrame and predicting on a
    3-D array is its normal use. Channels named on both sides are still
    checked (renamed or reordered channels are a ValueError).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="X (does not have valid|has) feature names",
            category=UserWarning)
        return getattr(estimator, method)(X)


def _build(adapter, estimator_class):
    """The seqclf estimator that ``adapter``'s parameters describe.

    ``channels_first=True`` reads sktime's ``numpy3D`` ``(n, channels,
    timepoints)``; the other inner containers name their axes and are read
    in their own layout whatever it says.
    """
    return estimator_class(channels_first=True, **adapter.get_params(deep=False))


class RNNTimeSeriesClassifier(ClassifierParams, BaseClassifier):
    """Recurrent network classifier of time series, for sktime.

    sktime's ``BaseClassifier`` interface to :class:`~seqclf.RNNClassifier`
    (tanh RNN, GRU or LSTM layers, a softmax head): usable wherever sktime
    takes a classifier (``evaluate``, pipelines, tuning). Series may be
    multivariate and of unequal lengths, in any of sktime's Panel
    containers; missing values are refused. The parameters are those of
    :class:`~seqclf.RNNClassifier`, where they are described in full, with
    its defaults, less those that sktime's containers decide (the layout,
    token ids and warm starts: see :mod:`seqclf.sktime`).

    Parameters
    ----------
    <parameters>

    Attributes
    ----------
    estimator_ : RNNClassifier
        The fitted estimator (absent when ``fit`` saw a single class, which
        sktime predicts without a model).
    classes_ : ndarray of shape (n_classes,)
        Class labels, the order of ``predict_proba``'s columns.
    n_classes_ : int
        Number of classes.

    See Also
    --------
    seqclf.RNNClassifier : The estimator, with scikit-learn's interface.
    RNNTimeSeriesRegressor : The regressor.

    Examples
    --------
    >>> from sktime.datasets import load_unit_test
    >>> from seqclf.sktime import RNNTimeSeriesClassifier
    >>> X, y = load_unit_test(split="train")   # nested DataFrame, 2 classes
    >>> clf = RNNTimeSeriesClassifier("gru", 8, max_iter=3, random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

    _tags = {**_TAGS,
             "capability:predict_proba": True,
             "capability:class_weight": True}

    def _fit(self, X, y):
        """Fit a new :class:`~seqclf.RNNClassifier` to the checked data.

        Parameters
        ----------
        X : pd-multiindex or nested DataFrame, list of DataFrames, or ndarray
            The series, in one of the ``X_inner_mtype`` containers.
        y : ndarray of shape (n_instances,)
            Class labels.

        Returns
        -------
        self : RNNTimeSeriesClassifier
        """
        self.estimator_ = _build(self, RNNClassifier).fit(X, y)
        return self

    def _predict(self, X):
        """Predicted class of each series.

        Parameters
        ----------
        X : pd-multiindex or nested DataFrame, list of DataFrames, or ndarray
            The series, in one of the ``X_inner_mtype`` containers.

        Returns
        -------
        y : ndarray of shape (n_instances,)
        """
        return _predicting(self.estimator_, "predict", X)

    def _predict_proba(self, X):
        """Class probabilities of each series.

        Parameters
        ----------
        X : pd-multiindex or nested DataFrame, list of DataFrames, or ndarray
            The series, in one of the ``X_inner_mtype`` containers.

        Returns
        -------
        proba : ndarray of shape (n_instances, n_classes)
            Columns in the order of ``classes_`` (both are the sorted
            labels of ``y``).
        """
        return _predicting(self.estimator_, "predict_proba", X)

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, seeded parameter sets for sktime's estimator checks.

        Parameters
        ----------
        parameter_set : str, default="default"
            The name of the set; every name gives these.

        Returns
        -------
        params : list of dict
            A GRU, a bidirectional LSTM with class weights, and two stacked
            layers (tanh RNN, then GRU) trained by SGD: a few units, a few
            epochs, ``random_state=0``.
        """
        return [
            {"cell": "gru", "hidden_layer_sizes": 4, "max_iter": 3,
             "batch_size": 8, "learning_rate_init": 0.01, "random_state": 0},
            {"cell": "lstm", "hidden_layer_sizes": 3, "bidirectional": True,
             "class_weight": "balanced", "max_iter": 2, "random_state": 0},
            {"cell": ("rnn", "gru"), "hidden_layer_sizes": (3, 2),
             "activation": "relu", "solver": "sgd", "max_iter": 2,
             "batch_size": 4, "random_state": 0},
        ]


class RNNTimeSeriesRegressor(RegressorParams, BaseRegressor):
    """Recurrent network regressor of time series, for sktime.

    sktime's ``BaseRegressor`` interface to :class:`~seqclf.RNNRegressor`
    (tanh RNN, GRU or LSTM layers, a linear head): usable wherever sktime
    takes a regressor (``evaluate``, pipelines, tuning). Series may be
    multivariate and of unequal lengths, in any of sktime's Panel
    containers; missing values are refused. A 2-D ``y`` is fitted by one
    network with an output per target. The parameters are those of
    :class:`~seqclf.RNNRegressor`, where they are described in full, with
    its defaults, less those that sktime's containers decide (the layout,
    token ids and warm starts: see :mod:`seqclf.sktime`).

    Parameters
    ----------
    <parameters>

    Attributes
    ----------
    estimator_ : RNNRegressor
        The fitted estimator.

    See Also
    --------
    seqclf.RNNRegressor : The estimator, with scikit-learn's interface.
    RNNTimeSeriesClassifier : The classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from seqclf.sktime import RNNTimeSeriesRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 2, 12))       # numpy3D: 2 channels, 12 steps
    >>> y = X[:, 0, :].mean(axis=1)
    >>> reg = RNNTimeSeriesRegressor("gru", 8, max_iter=3, random_state=0)
    >>> reg.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    _tags = {**_TAGS,
             # sktime converts y outside the list to the first entry: a
             # 2-D one keeps every target (numpy1D would flatten them); a
             # 1-D array arrives as it is.
             "y_inner_mtype": ["numpy2D", "numpy1D"],
             "capability:multioutput": True}

    def _fit(self, X, y):
        """Fit a new :class:`~seqclf.RNNRegressor` to the checked data.

        Parameters
        ----------
        X : pd-multiindex or nested DataFrame, list of DataFrames, or ndarray
            The series, in one of the ``X_inner_mtype`` containers.
        y : ndarray of shape (n_instances,) or (n_instances, n_targets)
            Targets.

        Returns
        -------
        self : RNNTimeSeriesRegressor
        """
        self.estimator_ = _build(self, RNNRegressor).fit(X, y)
        return self

    def _predict(self, X):
        """Predicted targets of each series.

        Parameters
        ----------
        X : pd-multiindex or nested DataFrame, list of DataFrames, or ndarray
            The series, in one of the ``X_inner_mtype`` containers.

        Returns
        -------
        y : ndarray of shape (n_instances,) or (n_instances, n_targets)
        """
        return _predicting(self.estimator_, "predict", X)

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, seeded parameter sets for sktime's estimator checks.

        Parameters
        ----------
        parameter_set : str, default="default"
            The name of the set; every name gives these.

        Returns
        -------
        params : list of dict
            A GRU, a bidirectional LSTM with early stopping, and two stacked
            layers (tanh RNN, then GRU) trained by SGD: a few units, a few
            epochs, ``random_state=0``.
        """
        return [
            {"cell": "gru", "hidden_layer_sizes": 4, "max_iter": 3,
             "batch_size": 8, "learning_rate_init": 0.01, "random_state": 0},
            {"cell": "lstm", "hidden_layer_sizes": 3, "bidirectional": True,
             "early_stopping": True, "validation_fraction": 0.25,
             "max_iter": 3, "random_state": 0},
            {"cell": ("rnn", "gru"), "hidden_layer_sizes": (3, 2),
             "activation": "relu", "solver": "sgd", "max_iter": 2,
             "batch_size": 4, "random_state": 0},
        ]


document(RNNTimeSeriesClassifier, "accuracy")
document(RNNTimeSeriesRegressor, "R²")
