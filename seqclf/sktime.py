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

_PARAMETERS_DOC = """\
    Parameters
    ----------
    cell : {{"rnn", "gru", "lstm"}} or tuple of them, default="lstm"
        Recurrent cell of every layer, or one per layer, first layer first.
    hidden_layer_sizes : int or tuple of int, default=(128,)
        Units of each recurrent layer (per direction).
    activation : {{"tanh", "relu"}}, default="tanh"
        Nonlinearity of the ``"rnn"`` layers.
    bidirectional : bool, default=False
        Run every layer forward and backward and concatenate the outputs.
    mask_value : float, default=None
        Steps whose channels all equal ``mask_value``, before or after a
        series' data, are padding and skipped. NaN cannot be used: sktime
        refuses missing values.
    dropout : float in [0, 1), default=0.0
        Fraction of each layer's input features dropped during training.
    recurrent_dropout : float in [0, 1), default=0.0
        Fraction of the recurrent state's units dropped during training.
    solver : {{"adam", "sgd"}}, default="adam"
        Optimizer.
    learning_rate_init : float, default=0.001
        Step size.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.
    epsilon : float, default=1e-8
        Adam's term for numerical stability.
    momentum : float in [0, 1], default=0.9
        Momentum of SGD.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with SGD.
    batch_size : int, default=128
        Series per mini-batch (clipped to the number of series).
    max_iter : int, default=10
        Epochs (passes over the training data).
    alpha : float, default=0.0
        L2 penalty on all weights (not biases).
    clip_norm : float, default=None
        Rescale each mini-batch's gradient to at most this global L2 norm.
    shuffle : bool, default=True
        Shuffle the series at each epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and stop when
        the validation {score} has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are restored.
    validation_fraction : float in (0, 1), default=0.1
        Held-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float or None, default=1e-4
        Least improvement that counts; ``None`` runs ``max_iter`` epochs.
{class_weight}\
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, the validation split and
        the dropout masks. A fixed seed gives the same model whatever the
        number of threads.
    n_threads : int, default=None
        Threads of the compiled kernels; ``None`` takes what OpenMP allows.
    verbose : int, default=0
        With ``verbose >= 1``, print one line per epoch.
"""

_CLASS_WEIGHT_DOC = """\
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{label: weight}``, multiplied into the
        sample weights; ``"balanced"`` weighs each class by ``n_samples /
        (n_classes * np.bincount(y))``.
"""


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


class RNNTimeSeriesClassifier(BaseClassifier):
    __doc__ = """Recurrent network classifier of time series, for sktime.

    sktime's ``BaseClassifier`` interface to :class:`~seqclf.RNNClassifier`
    (tanh RNN, GRU or LSTM layers, a softmax head): usable wherever sktime
    takes a classifier (``evaluate``, pipelines, tuning). Series may be
    multivariate and of unequal lengths, in any of sktime's Panel
    containers; missing values are refused. The parameters are those of
    :class:`~seqclf.RNNClassifier`, where they are described in full, with
    its defaults, less those that sktime's containers decide (the layout,
    token ids and warm starts: see :mod:`seqclf.sktime`).

{parameters}
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
    """.format(parameters=_PARAMETERS_DOC.format(
        score="accuracy", class_weight=_CLASS_WEIGHT_DOC))

    _tags = {**_TAGS,
             "capability:predict_proba": True,
             "capability:class_weight": True}

    def __init__(
        self,
        cell="lstm",
        hidden_layer_sizes=(128,),
        *,
        activation="tanh",
        bidirectional=False,
        mask_value=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        solver="adam",
        learning_rate_init=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        momentum=0.9,
        nesterovs_momentum=True,
        batch_size=128,
        max_iter=10,
        alpha=0.0,
        clip_norm=None,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        class_weight=None,
        random_state=None,
        n_threads=None,
        verbose=0,
    ):
        self.cell = cell
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.bidirectional = bidirectional
        self.mask_value = mask_value
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.clip_norm = clip_norm
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        super().__init__()

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


class RNNTimeSeriesRegressor(BaseRegressor):
    __doc__ = """Recurrent network regressor of time series, for sktime.

    sktime's ``BaseRegressor`` interface to :class:`~seqclf.RNNRegressor`
    (tanh RNN, GRU or LSTM layers, a linear head): usable wherever sktime
    takes a regressor (``evaluate``, pipelines, tuning). Series may be
    multivariate and of unequal lengths, in any of sktime's Panel
    containers; missing values are refused. A 2-D ``y`` is fitted by one
    network with an output per target. The parameters are those of
    :class:`~seqclf.RNNRegressor`, where they are described in full, with
    its defaults, less those that sktime's containers decide (the layout,
    token ids and warm starts: see :mod:`seqclf.sktime`).

{parameters}
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
    """.format(parameters=_PARAMETERS_DOC.format(
        score="R²", class_weight=""))

    _tags = {**_TAGS,
             # sktime converts y outside the list to the first entry: a
             # 2-D one keeps every target (numpy1D would flatten them); a
             # 1-D array arrives as it is.
             "y_inner_mtype": ["numpy2D", "numpy1D"],
             "capability:multioutput": True}

    def __init__(
        self,
        cell="lstm",
        hidden_layer_sizes=(128,),
        *,
        activation="tanh",
        bidirectional=False,
        mask_value=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        solver="adam",
        learning_rate_init=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        momentum=0.9,
        nesterovs_momentum=True,
        batch_size=128,
        max_iter=10,
        alpha=0.0,
        clip_norm=None,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        random_state=None,
        n_threads=None,
        verbose=0,
    ):
        self.cell = cell
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.bidirectional = bidirectional
        self.mask_value = mask_value
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.clip_norm = clip_norm
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        super().__init__()

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
