"""The parameters of the time-series toolkits' estimators.

:mod:`seqclf.sktime` and :mod:`seqclf.aeon` wrap :class:`~seqclf.RNNClassifier`
and :class:`~seqclf.RNNRegressor` on each toolkit's base classes. Both
toolkits read an estimator's parameters from the signature of its
``__init__``, so the parameters are written out, once here for both, as
mixins placed before the toolkit's base class: the wrapped estimator's own
parameters with its defaults, less those the toolkits' containers decide
(``channels_first``, ``n_steps``, ``embedding_dim``, ``vocab_size``,
``warm_start``). :func:`document` fills their docstrings.
"""

class RegressorParams:
    """The parameters of :class:`~seqclf.RNNRegressor` that apply to a
    toolkit's panels."""

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


class ClassifierParams:
    """The parameters of :class:`~seqclf.RNNClassifier` that apply to a
    toolkit's panels: the regressor's and ``class_weight``, in the
    classifier's order."""

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


_PARAMETERS_DOC = """\
    cell : {"rnn", "gru", "lstm"} or tuple of them, default="lstm"
        Recurrent cell of every layer, or one per layer, first layer first.
    hidden_layer_sizes : int or tuple of int, default=(128,)
        Units of each recurrent layer (per direction).
    activation : {"tanh", "relu"}, default="tanh"
        Nonlinearity of the ``"rnn"`` layers.
    bidirectional : bool, default=False
        Run every layer forward and backward and concatenate the outputs.
    mask_value : float, default=None
        Time points whose channels all equal ``mask_value``, before or after
        a series' data, are padding and skipped. Series of unequal length
        need none, and NaN cannot be used: the toolkit refuses missing
        values.
    dropout : float in [0, 1), default=0.0
        Fraction of each layer's input features dropped during training.
    recurrent_dropout : float in [0, 1), default=0.0
        Fraction of the recurrent state's units dropped during training.
    solver : {"adam", "sgd"}, default="adam"
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
        the validation <score> has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are restored.
    validation_fraction : float in (0, 1), default=0.1
        Held-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float or None, default=1e-4
        Least improvement that counts; None runs exactly ``max_iter`` epochs.
<class_weight>\
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, the validation split and
        the dropout masks. A fixed seed gives the same model whatever the
        number of threads.
    n_threads : int, default=None
        Threads of the compiled kernels; None takes what OpenMP allows.
    verbose : int, default=0
        Print one line per epoch (1) and the progress within epochs (2).
"""

_CLASS_WEIGHT_DOC = """\
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{label: weight}``, multiplied into the
        sample weights; ``"balanced"`` weighs each class by ``n_samples /
        (n_classes * np.bincount(y))``.
"""


def document(cls, score):
    """Put the parameter list in place of ``    <parameters>`` in ``cls``'s
    docstring (with ``class_weight`` for a classifier); nothing under
    ``python -OO``, which strips docstrings."""
    if cls.__doc__ is None:
        return
    class_weight = _CLASS_WEIGHT_DOC if issubclass(cls, ClassifierParams) else ""
    params = (_PARAMETERS_DOC.replace("<score>", score)
              .replace("<class_weight>", class_weight))
    cls.__doc__ = cls.__doc__.replace("    <parameters>\n", params)
