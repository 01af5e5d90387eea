"""Time series classifiers and regressors for aeon, on seqclf's networks.

Needs the ``aeon`` extra (``pip install "seqclf[aeon]"``).
:class:`RNNTimeSeriesClassifier` and :class:`RNNTimeSeriesRegressor` are
aeon estimators (on aeon's ``BaseClassifier`` and ``BaseRegressor``) that
fit a :class:`~seqclf.RNNClassifier` or :class:`~seqclf.RNNRegressor` with
``channels_first=True``, so that aeon's tools (its estimator checks,
resampling, ``fit_predict``'s cross-validated train estimates, aeon's
pipelines) take them as they take aeon's own::

    from aeon.datasets import load_basic_motions
    from seqclf.aeon import RNNTimeSeriesClassifier

    X, y = load_basic_motions(split="train")          # (40, 6, 100)
    clf = RNNTimeSeriesClassifier("gru", 32, max_iter=50,
                                  random_state=0).fit(X, y)

aeon checks and converts the input before the network sees it: any of
aeon's collection types goes in (``numpy3D`` ``(n_cases, n_channels,
n_timepoints)``, 2-D univariate arrays, lists of 2-D ``(n_channels,
n_timepoints_i)`` arrays, lists of DataFrames, ``pd-multiindex`` frames);
``numpy3D`` arrays and lists of arrays reach the network as they are, and
the other types as ``numpy3D`` (equal lengths) or a list (unequal
lengths). Each channel is a feature of a step and each series is read for
its own length. The estimators' tags say so:

* ``capability:multivariate`` and ``capability:unequal_length``: True;
* ``capability:missing_values``: False. aeon refuses NaN in the data
  before fitting or predicting (the network would too): series of unequal
  length go in as they are, with no NaN padding;
* ``non_deterministic``: False. A fixed ``random_state`` gives the same
  model, whatever the number of threads;
* ``capability:multithreading``: False, although the kernels run on
  several threads: aeon's tag means an ``n_jobs`` parameter, and the
  threads are set by ``n_threads`` (or OpenMP's settings), as in
  :class:`~seqclf.RNNClassifier`;
* ``algorithm_type``: ``"deeplearning"``.

The parameters are those of :class:`~seqclf.RNNClassifier` and
:class:`~seqclf.RNNRegressor`, with their defaults, and are checked when
``fit`` runs; ``get_params``, ``set_params`` and ``clone`` work as for any
estimator. Left out are those that do not apply to aeon's data:
``channels_first`` (always True), ``n_steps`` (for 2-D rows of flattened
series, which aeon does not pass on), ``embedding_dim`` and ``vocab_size``
(token ids, not real-valued series) and ``warm_start`` (aeon's ``fit``
starts from a new estimator, so no weights carry over). The fitted seqclf
estimator is ``estimator_``: its ``loss_curve_``, ``n_iter_`` and weights
are there.
"""

try:
    from aeon.classification.base import BaseClassifier
    from aeon.regression.base import BaseRegressor
except ImportError as exc:          # pragma: no cover - depends on the install
    raise ImportError(
        "seqclf.aeon needs aeon: pip install \"seqclf[aeon]\"."
    ) from exc

from sklearn.utils._param_validation import validate_parameter_constraints

from ._adapter_params import ClassifierParams, RegressorParams, document
from ._rnn import RNNClassifier, RNNRegressor

__all__ = ["RNNTimeSeriesClassifier", "RNNTimeSeriesRegressor"]

# Shared by both estimators; aeon collects tags along the class hierarchy,
# and its checks want each class's own _tags dict.
_TAGS = {
    "capability:multivariate": True,
    "capability:unequal_length": True,
    "capability:missing_values": False,
    # The two forms seqclf reads with channels_first=True: aeon passes them
    # as they come and converts its other collection types to numpy3D
    # (equal lengths) or np-list (unequal lengths).
    "X_inner_type": ["np-list", "numpy3D"],
    "non_deterministic": False,
    "cant_pickle": False,
    "algorithm_type": "deeplearning",
}


class _WrapsRNN:
    """The fit and predict of both estimators: build the seqclf estimator
    from the parameters and hand it aeon's checked data."""

    _estimator_class = None

    def _make_estimator(self):
        # get_params reads __init__'s signature: every parameter, no other.
        params = self.get_params(deep=False)
        # The seqclf estimator's own constraints, checked here so that an
        # error names this estimator, whose parameter the user set.
        validate_parameter_constraints(
            self._estimator_class._parameter_constraints, params,
            caller_name=type(self).__name__)
        return self._estimator_class(**params, channels_first=True)

    def _fit(self, X, y):
        self.estimator_ = self._make_estimator().fit(X, y)
        return self

    def _predict(self, X):
        return self.estimator_.predict(X)


class RNNTimeSeriesClassifier(_WrapsRNN, ClassifierParams, BaseClassifier):
    """Recurrent neural network time series classifier (RNN, GRU or LSTM).

    aeon's interface to :class:`~seqclf.RNNClassifier`: stacked recurrent
    layers read each series time point by time point, its channels the
    features of each step, and a softmax layer on the final state gives the
    class probabilities. Multivariate series and series of unequal length
    are taken as they are.

    Parameters
    ----------
    <parameters>

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_classes_ : int
        Number of classes.
    estimator_ : RNNClassifier
        The fitted seqclf estimator (``channels_first=True``).

    See Also
    --------
    seqclf.RNNClassifier : The same network for scikit-learn's interface.
    RNNTimeSeriesRegressor : The regressor.

    Examples
    --------
    >>> from aeon.datasets import load_unit_test
    >>> from seqclf.aeon import RNNTimeSeriesClassifier
    >>> X, y = load_unit_test(split="train")
    >>> clf = RNNTimeSeriesClassifier("gru", 8, max_iter=5, random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

    _tags = dict(_TAGS)
    _estimator_class = RNNClassifier

    def _predict_proba(self, X):
        # The columns follow the seqclf estimator's classes_, np.unique(y)
        # as aeon's own classes_.
        return self.estimator_.predict_proba(X)

    @classmethod
    def _get_test_params(cls, parameter_set="default"):
        """Return small, fast parameter settings for aeon's tests.

        Parameters
        ----------
        parameter_set : str, default="default"
            Name of the set of test parameters; every name gets the same.

        Returns
        -------
        params : list of dict
            A one-layer GRU, and a bidirectional LSTM-RNN stack trained by
            SGD with dropout; a few epochs each.
        """
        return [
            {"cell": "gru", "hidden_layer_sizes": (4,), "max_iter": 3,
             "batch_size": 8, "learning_rate_init": 0.01, "random_state": 0},
            {"cell": ("lstm", "rnn"), "hidden_layer_sizes": 3,
             "bidirectional": True, "solver": "sgd", "dropout": 0.1,
             "max_iter": 2, "batch_size": 4, "random_state": 1},
        ]


class RNNTimeSeriesRegressor(_WrapsRNN, RegressorParams, BaseRegressor):
    """Recurrent neural network time series regressor (RNN, GRU or LSTM).

    aeon's interface to :class:`~seqclf.RNNRegressor`: stacked recurrent
    layers read each series time point by time point, its channels the
    features of each step, and a linear layer on the final state gives the
    target, trained on the squared error. Multivariate series and series
    of unequal length are taken as they are. The targets are not rescaled:
    those far from unit scale train slowly with the default step size.

    Parameters
    ----------
    <parameters>

    Attributes
    ----------
    estimator_ : RNNRegressor
        The fitted seqclf estimator (``channels_first=True``).

    See Also
    --------
    seqclf.RNNRegressor : The same network for scikit-learn's interface.
    RNNTimeSeriesClassifier : The classifier.

    Examples
    --------
    >>> from aeon.datasets import load_cardano_sentiment
    >>> from seqclf.aeon import RNNTimeSeriesRegressor
    >>> X, y = load_cardano_sentiment(split="train")
    >>> reg = RNNTimeSeriesRegressor("gru", 8, max_iter=5, random_state=0)
    >>> reg.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    _tags = dict(_TAGS)
    _estimator_class = RNNRegressor

    @classmethod
    def _get_test_params(cls, parameter_set="default"):
        """Return small, fast parameter settings for aeon's tests.

        Parameters
        ----------
        parameter_set : str, default="default"
            Name of the set of test parameters; every name gets the same.

        Returns
        -------
        params : list of dict
            A one-layer GRU, and a bidirectional LSTM-RNN stack trained by
            SGD with dropout; a few epochs each.
        """
        return [
            {"cell": "gru", "hidden_layer_sizes": (4,), "max_iter": 3,
             "batch_size": 8, "learning_rate_init": 0.01, "random_state": 0},
            {"cell": ("lstm", "rnn"), "hidden_layer_sizes": 3,
             "bidirectional": True, "solver": "sgd", "dropout": 0.1,
             "max_iter": 2, "batch_size": 4, "random_state": 1},
        ]


document(RNNTimeSeriesClassifier, "accuracy")
document(RNNTimeSeriesRegressor, "R²")
