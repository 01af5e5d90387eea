"""RNNClassifier and RNNRegressor: recurrent networks with scikit-learn's API.

:class:`BaseRNN` holds what the two share (parameters, input handling, the
epoch loop's decisions, early stopping, the messages, weights and summary);
each estimator adds its targets, loss and predictions. The fitting
machinery they drive (the epoch runner on the network's training plan,
rollback, Ctrl-C) is seqclf._fitting.
"""

import numbers
import time
from numbers import Integral, Real

import numpy as np
from scipy.sparse import issparse
from sklearn.base import (
    BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context,
)
from sklearn.metrics import r2_score
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call, check_classification_targets,
)
from sklearn.utils.validation import (
    _check_feature_names, _check_sample_weight, _check_y, _get_feature_names,
    check_consistent_length, check_is_fitted, column_or_1d,
)

from . import _fitting, _persistence, _progress, _sequences
from ._cells import BLAS_INT_MAX, CELLS, N_GATES, n_params
from ._network import RecurrentNetwork, SoftmaxCrossEntropy, SquaredError
from ._openmp_helpers import effective_n_threads, single_threaded_blas
from ._optim import make_optimizer
from ._progress import EpochProgress

_CELLS = tuple(CELLS)

# Rows per forward pass when predicting, bounded so that the hidden
# sequences of one pass stay within about 64 MB.
_PREDICT_ELEMENTS = 1 << 23

# Integer parameters for which a bool (an int to Python) is a mistake.
_INTEGER_PARAMS = ("n_steps", "embedding_dim", "vocab_size", "batch_size",
                   "max_iter", "n_iter_no_change", "n_threads")



def _all_finite(a):
    """Whether every value of ``a`` is finite; one summation when they are."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a)):
            return True
    # NaN or inf, or finite values whose sum overflowed.
    return bool(np.isfinite(a).all())


def _check_weight_sum(weights, what):
    """Refuse sample weights whose sum overflows float64: the loss is their
    weighted mean."""
    with np.errstate(over="ignore"):
        total = np.sum(weights)
    if not np.isfinite(total):
        raise ValueError(
            f"{what} sums to more than float64 holds (largest weight "
            f"{np.max(weights):.4g}); the loss is the weighted mean, so divide "
            f"the weights by a common factor."
        )


def _format_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"


# Docstring sections the estimators share, put in place by _document.
_PARAMETERS_DOC = """\
    cell : {"rnn", "gru", "lstm"} or tuple of them, default="lstm"
        Recurrent cell of every layer, or one per layer, first layer first
        (``("gru", "rnn")`` is a GRU layer feeding a tanh-RNN layer).
        ``"rnn"`` is the Elman RNN (Keras' ``SimpleRNN``), ``"gru"`` the GRU
        with the reset gate applied after the recurrent product (PyTorch's
        and Keras' ``reset_after=True``), ``"lstm"`` the LSTM.
    hidden_layer_sizes : int or tuple of int, default=(128,)
        Units of each recurrent layer (per direction); one int gives every
        layer that ``cell`` names that many.
    activation : {"tanh", "relu"}, default="tanh"
        Nonlinearity of the ``"rnn"`` layers (GRU and LSTM layers always use
        sigmoid gates and tanh).
    bidirectional : bool, default=False
        Run every layer forward and backward and concatenate the two
        outputs (forward first). The backward direction starts at each
        sequence's last data step. The head sees both final states.
    n_steps : int, default=None
        How to read a 2-D ``X``: with ``n_steps`` set, each row holds
        ``n_steps`` steps of ``n_features`` values, step-major (row ``i`` is
        ``X[i].reshape(n_steps, n_features)``), so that 2-D transformers can
        precede the estimator in a pipeline; flattened 28 x 28 MNIST images
        with ``n_steps=28`` are read row by row. With ``n_steps=None`` a 2-D
        ``X`` holds univariate sequences (one feature per step). Given with
        a 3-D ``X`` or a list, it must equal their number of steps.
    channels_first : bool, default=False
        How a sequence of an array or a list is laid out. ``False``: steps
        first, ``(n_steps, n_features)``, as Keras and PyTorch's
        ``batch_first``; ``True``: channels first, ``(n_channels,
        n_steps)``, as sktime's and aeon's ``numpy3D`` and aeon's lists::

            channels_first=False          channels_first=True
            X[i] = [[x00, x01, x02],      X[i] = [[x00, x10, x20, x30],
                    [x10, x11, x12],              [x01, x11, x21, x31],
                    [x20, x21, x22],              [x02, x12, x22, x32]]
                    [x30, x31, x32]]
            (4 steps of 3 features)       (3 channels of 4 steps)

        With ``True`` a 2-D ``X`` read through ``n_steps`` is channel-major
        (row ``i`` is ``X[i].reshape(n_features, n_steps)``, as sktime
        flattens a panel). Containers with named axes (sktime's nested
        DataFrame, ``pd-multiindex`` frames, lists of DataFrames) are read
        in their own layout whatever it says.
    mask_value : float, default=None
        Steps whose features all equal ``mask_value`` (all NaN when it is
        NaN) are padding, before the data of a sequence or after it (Keras'
        ``pad_sequences`` with ``padding="pre"`` or ``"post"``). Padding
        steps are skipped: the state carries over them and they do not
        influence the prediction. A sequence that is all padding, or
        padding between data steps, is an error. A transformer placed before
        the estimator (e.g. ``StandardScaler``) changes the padding value;
        pad with NaN and set ``mask_value=np.nan`` in that case, since
        scikit-learn's scalers keep NaN as NaN. With ``embedding_dim`` set it
        is a token id (Keras' ``mask_zero=True`` is ``mask_value=0``).
    embedding_dim : int, default=None
        With ``embedding_dim`` set, ``X`` holds integer token ids: a 2-D
        integer array ``(n_samples, n_steps)`` or a list of 1-D integer
        arrays of different lengths. A first layer (Keras' ``Embedding``)
        maps each id to a learned vector of ``embedding_dim`` values, which
        the recurrent layers read. Its rows are trained with sparse,
        "lazy" updates: a batch moves only the rows of the ids it holds
        (as TensorFlow's ``LazyAdam``; the other rows keep their optimizer
        moments). ``alpha`` does not penalise the embedding.
    vocab_size : int, default=None
        Number of token ids with ``embedding_dim`` set: ids must lie in
        ``[0, vocab_size)`` at fit and at predict, and the embedding has
        ``vocab_size`` rows. With ``None`` the vocabulary is learned at fit
        as the largest id + 1, and one more row, all zeros and never
        trained, stands for larger (out-of-vocabulary) ids met at predict.
        Training on ids beyond the learned vocabulary later (``partial_fit``
        or a warm start) is an error: set ``vocab_size`` for that.
    dropout : float in [0, 1), default=0.0
        Fraction of each layer's input features dropped during training,
        with one mask per sequence kept over all its steps (as Keras).
    recurrent_dropout : float in [0, 1), default=0.0
        Fraction of the recurrent state's units dropped before the
        recurrent product during training, with one mask per sequence.
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
        Sequences per mini-batch (clipped to the number of samples).
    max_iter : int, default=10
        Epochs (passes over the training data). Reaching it is the normal
        end of training.
    alpha : float, default=0.0
        L2 penalty on all weights (not biases), added to the loss as
        ``alpha / 2 * ||w||^2 / n_batch_samples`` like ``<mlp>``.
    clip_norm : float, default=None
        Rescale each mini-batch's gradient to at most this global L2 norm.
    shuffle : bool, default=True
        Shuffle the samples at each epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data<split>, or
        score the validation data given to ``fit`` (``X_val``, ``y_val``),
        and stop when the <score> has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are restored. A score
        that cannot be computed (R² of one validation sequence) is a
        ``ValueError`` at the first epoch.
    validation_fraction : float in (0, 1), default=0.1
        Held-out fraction for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping: on the validation
        <score> with ``early_stopping``, else on the training loss.
    tol : float or None, default=1e-4
        Least improvement that counts. With ``None`` training runs exactly
        ``max_iter`` epochs (early stopping still records the validation
        scores and restores the best weights).
<class_weight>    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, the validation split and
        the dropout masks. A fixed seed gives the same model whatever the
        number of threads.
    warm_start : bool, default=False
        Continue from the current weights when ``fit`` is called again. The
        optimizer's state (Adam's moments, SGD's velocity) is kept too when
        ``solver`` and its settings (``learning_rate_init``, ``beta_1``,
        ``beta_2``, ``epsilon``, ``momentum``, ``nesterovs_momentum``) are
        unchanged since the last call; otherwise a fresh optimizer with the
        new settings takes over (as ``<mlp>`` builds a new one at
        each ``fit``). ``partial_fit`` follows the same rule.
    n_threads : int, default=None
        Threads of the compiled kernels in each ``fit``, ``partial_fit``
        and ``predict*`` call. ``None`` takes what OpenMP allows:
        ``OMP_NUM_THREADS``, a ``threadpoolctl.threadpool_limits(n,
        "openmp")`` in force, else the CPUs available to the process. An
        int is used whatever the environment says (but one in a build
        without OpenMP, and in a forked child where GNU OpenMP cannot
        start threads, with a ``RuntimeWarning``): for a worker whose
        environment limits it (Dask's workers set ``OMP_NUM_THREADS=1``),
        or to pin a count. Either way it is the most threads any parallel
        region uses: each starts at most as many as it has independent
        work items (chunks of 16 sequences, blocks of at least 32,768
        elements), so that a small batch runs on fewer threads and a
        large ``n_threads`` never starts idle ones. Keep (fits running at
        once) x ``n_threads`` within the cores there are. The model does
        not depend on it.
    verbose : int, default=0
        With ``verbose >= 1``, print one line per epoch (the loss, the
        validation score when there is one, and the seconds taken) and why
        training stopped. With ``verbose >= 2``, also the progress within
        each epoch, at most twice a second: sequences done, sequences per
        second, the loss so far and the time left (one line rewritten in
        place on a terminal, new lines elsewhere).

"""

_CLASS_WEIGHT_DOC = """\
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{label: weight}``, multiplied into
        ``sample_weight``; ``"balanced"`` weighs each class by
        ``n_samples / (n_classes * np.bincount(y))``, as scikit-learn's
        linear models. ``partial_fit`` refuses ``"balanced"`` (give a dict).
        The values are checked as sample weights are: finite and >= 0, and
        not 0 for every sample of a call.
"""

_ATTRIBUTES_DOC = """\
    n_features_in_ : int
        Columns of a 2-D ``X`` at fit; for a 3-D ``X`` or a list of
        sequences, the number of features per step (1 for token ids).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a 2-D ``X`` given as a DataFrame with string names;
        defined only when the last fit's ``X`` had such names.
    n_iter_ : int
        Epochs run by the last ``fit`` (counted across ``partial_fit``
        calls).
    n_threads_ : int
        Kernel threads the last ``fit`` or ``partial_fit`` ran on: what
        ``n_threads`` came to in the process that ran it.
    loss_ : float
        Mean training loss of the last epoch.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    best_loss_ : float or None
        Lowest training loss seen, or None with early stopping.
    validation_scores_ : list of float or None
        Validation <score> of each epoch with early stopping, else None.
    stop_reason_ : str
        Why the last ``fit`` or ``partial_fit`` stopped: ``"max_iter"``
        (every epoch ran), ``"training_loss"`` or ``"validation_score"``
        (no improvement by ``tol`` for ``n_iter_no_change`` epochs),
        ``"partial_fit"`` (the call's one epoch ran) or ``"interrupted"``
        (Ctrl-C). A fit that diverges raises instead, and leaves the
        estimator, this attribute included, as it was.
    best_validation_score_ : float or None
        Best validation <score> with early stopping, else None.
    weights_ : list of list of dict
        ``weights_[l][d]`` holds the arrays of direction ``d`` (0 forward,
        1 backward) of layer ``l``: input weights ``W (n_in, G * H)``,
        recurrent weights ``U (H, G * H)`` and biases ``b (G * H,)`` (the
        GRU has ``b_ih`` and ``b_hh``), where ``H`` is the layer's size,
        ``n_in`` its input width and ``G`` its gates: 1 for ``"rnn"``, 3 for
        ``"gru"`` (in the order r, z, n), 4 for ``"lstm"`` (i, f, g, o).
        ``W`` is PyTorch's ``weight_ih_l{l}`` transposed, ``U`` its
        ``weight_hh_l{l}`` transposed; ``b`` is ``bias_ih + bias_hh``
        (GRU: ``b_ih = bias_ih``, ``b_hh = bias_hh``). Keras stores
        ``kernel = W`` and ``recurrent_kernel = U`` with the GRU gates in
        the order z, r, n and its two biases as the rows of ``bias``. The
        arrays are views of the model: assign in place
        (``clf.weights_[0][0]["W"][...] = W``) to set them.
    head_weights_ : dict
        ``W (D * H_last, n_outputs)`` and ``b (n_outputs,)`` of the dense
        head, ``D`` being 2 when bidirectional; ``n_outputs`` is <outputs>.
        Views, as ``weights_``.
    vocab_size_ : int
        With ``embedding_dim`` set: ``vocab_size``, or the vocabulary
        learned at the first fit (largest id + 1); defined only when the
        last fit read token ids.
    embedding_ : ndarray of shape (n_rows, embedding_dim)
        With ``embedding_dim`` set: the embedding matrix, row ``k`` for id
        ``k`` (Keras' ``Embedding`` weights), plus the out-of-vocabulary row
        last when the vocabulary was learned. A view, as ``weights_``.

"""

_NOTES_DOC = """\
    Training runs in float32 when ``X`` is float32 and in float64 when it is
    float64 (``<mlp>``'s rule); any other dtype (integers, booleans,
    float16, lists of numbers) is converted to float64. Prediction uses the
    dtype of the fitted weights. Token-id models (``embedding_dim`` set)
    compute in float32.

    A ``fit`` or ``partial_fit`` that raises leaves the estimator exactly
    as it was before the call (fitted as before, or unfitted, so that
    ``predict`` raises ``NotFittedError``). Training that diverges (a
    non-finite loss, gradient or updated weight) raises a ``ValueError``
    naming the epoch, the mini-batch and the likely causes. Ctrl-C
    (``KeyboardInterrupt``) during training stops it after the running
    mini-batch: the model keeps the weights of that mini-batch, ``n_iter_``
    and ``loss_curve_`` count the completed epochs, early stopping's best
    weights are restored when it is on, and the ``KeyboardInterrupt``
    propagates. Inputs are converted to the dtype the model computes in and
    checked there (float64 values beyond float32's range are an error for a
    float32 model); ``mask_value`` is compared in the dtype of ``X`` as
    given, which must hold it exactly.

    Each call to ``fit`` or ``predict`` uses as many threads as OpenMP
    allows (``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits(n,
    "openmp")``, the CPUs available to the process), or ``n_threads`` when
    it is set; joblib's local workers (e.g. ``GridSearchCV(n_jobs=2)``)
    limit each worker so that cores are not oversubscribed, and Dask's
    workers run one thread per fit unless ``n_threads`` says otherwise.
    Results do not depend on the thread count.

"""


def _document(cls, **words):
    """Fill ``<parameters>``, ``<attributes>`` and ``<notes>`` in the class
    docstring with the shared sections, and ``<word>`` in them from
    ``words``."""
    doc = cls.__doc__
    if doc is None:                 # python -OO strips docstrings
        return cls
    for marker, text in (("    <parameters>\n", _PARAMETERS_DOC),
                         ("    <attributes>\n", _ATTRIBUTES_DOC),
                         ("    <notes>\n", _NOTES_DOC)):
        doc = doc.replace(marker, text)
    for key, value in words.items():
        doc = doc.replace(f"<{key}>", value)
    cls.__doc__ = doc
    return cls


class BaseRNN(BaseEstimator):
    """The parameters, input handling, training loop and weights that
    :class:`RNNClassifier` and :class:`RNNRegressor` share.

    ``fit`` is shared too. A subclass gives the targets' validation and
    encoding, the number of outputs, the loss, the validation split and
    score (the hooks below), and its public ``partial_fit`` and
    ``predict``.
    """

    # -- targets: what a subclass gives -----------------------------------

    def _validate_y(self, y, n_samples):
        """Checked targets of ``n_samples`` sequences, as the user's labels
        or values."""
        raise NotImplementedError

    def _set_targets(self, y, incremental):
        """Record the facts of the targets at a first fit (classes_,
        n_outputs_)."""
        raise NotImplementedError

    def _encode_y(self, y):
        """The targets as the loss takes them; checked against the fitted
        facts."""
        raise NotImplementedError

    def _n_outputs(self):
        raise NotImplementedError

    @staticmethod
    def _saved_n_outputs(state):
        """The head's outputs that a saved ``state`` being loaded calls for
        (from its classes_ or n_outputs_)."""
        raise NotImplementedError

    def _make_loss(self):
        """The network's loss (:mod:`seqclf._network`)."""
        raise NotImplementedError

    def _initialize_head(self, y, sample_weight):
        """Adjust the head's initial weights to the targets of a first fit."""

    def _stratify(self, y):
        """Labels for a stratified validation split, or None."""
        return None

    def _class_weighted(self, y, sample_weight, incremental):
        """The training sample weights, with the class weights multiplied in."""
        return sample_weight

    def _validation_score(self, validation, n_threads):
        """Score on the held-out split ``(X, lengths, y, sample_weight)``,
        higher being better; NaN where it cannot be computed."""
        raise NotImplementedError

    # The validation score, and what it needs, for the message of a score
    # that cannot be computed.
    _SCORE_NAME = "the score"
    _SCORE_NEEDS = ""

    # -- parameters -------------------------------------------------------

    _parameter_constraints = {
        "cell": [StrOptions(set(_CELLS)), tuple, list],
        "hidden_layer_sizes": ["array-like",
                               Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"tanh", "relu"})],
        "bidirectional": ["boolean"],
        "n_steps": [Interval(Integral, 1, None, closed="left"), None],
        "channels_first": ["boolean"],
        "mask_value": [Real, None],
        "embedding_dim": [Interval(Integral, 1, None, closed="left"), None],
        "vocab_size": [Interval(Integral, 1, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "recurrent_dropout": [Interval(Real, 0, 1, closed="left")],
        "solver": [StrOptions({"adam", "sgd"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        cell="lstm",
        hidden_layer_sizes=(128,),
        *,
        activation="tanh",
        bidirectional=False,
        n_steps=None,
        channels_first=False,
        mask_value=None,
        embedding_dim=None,
        vocab_size=None,
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
        warm_start=False,
        n_threads=None,
        verbose=0,
    ):
        self.cell = cell
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.bidirectional = bidirectional
        self.n_steps = n_steps
        self.channels_first = channels_first
        self.mask_value = mask_value
        self.embedding_dim = embedding_dim
        self.vocab_size = vocab_size
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
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Architecture
    # ------------------------------------------------------------------

    def _architecture(self):
        """Validated ``(cells, hidden_sizes)``, one entry per layer."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (bool, np.bool_)):
            raise TypeError(
                f"hidden_layer_sizes must be an int or a tuple of ints (units "
                f"of each layer), got the bool {sizes!r}."
            )
        if isinstance(sizes, numbers.Integral):
            # One size for every layer that ``cell`` names.
            n_layers = (max(len(self.cell), 1)
                        if isinstance(self.cell, (tuple, list)) else 1)
            sizes = [sizes] * n_layers
        if isinstance(sizes, str) or not np.iterable(sizes):
            raise TypeError(
                f"hidden_layer_sizes must be an int or a tuple of ints (units "
                f"of each layer), got {sizes!r}."
            )
        sizes = list(sizes)
        if not sizes:
            raise ValueError("hidden_layer_sizes must name at least one layer.")
        for s in sizes:
            if (isinstance(s, (bool, np.bool_))
                    or not isinstance(s, numbers.Integral) or s < 1):
                raise ValueError(
                    f"hidden_layer_sizes must be positive integers, got "
                    f"{self.hidden_layer_sizes!r}."
                )
        cells = self.cell
        if isinstance(cells, str):
            cells = [cells] * len(sizes)
        cells = list(cells)
        for c in cells:
            if c not in _CELLS:
                raise ValueError(
                    f"cell must be one of {list(_CELLS)} or a tuple of them, "
                    f"got {self.cell!r}."
                )
        if len(cells) != len(sizes):
            raise ValueError(
                f"cell names {len(cells)} layers but hidden_layer_sizes "
                f"{len(sizes)}; give one cell per layer or a single cell."
            )
        return cells, [int(s) for s in sizes]

    # ------------------------------------------------------------------
    # Input validation
    # ------------------------------------------------------------------

    def _validate_X(self, X, reset, fitting=False):
        """Return ``(X3, lengths)``: the post-padded batch and its lengths.

        With ``reset`` (a first fit) the facts of the input are recorded,
        once ``X`` has been read without error: ``_input_spec``, and with it
        ``n_features_in_``, ``feature_names_in_`` (the column names
        scikit-learn's rule finds) and ``vocab_size_``. The last two are
        removed when this ``X`` has none (no column names, real values), so
        that nothing of an earlier fit on another input form is left; a fit
        that fails later is rolled back to the previous ones. Otherwise
        ``X`` must agree with them (the caller has checked that the model is
        fitted), and they decide how it is read whatever ``set_params``
        changed since; ``n_steps`` and ``mask_value`` always say how to read
        this ``X``. With ``embedding_dim`` set, X3 holds token ids
        ``(n_samples, n_steps)``; ``fitting`` says whether they are training
        ids (not mapped to the out-of-vocabulary row).
        """
        if reset:
            # Found where scikit-learn's validate_data would look (only
            # some input forms have names), recorded below with the rest.
            names = [None]

            def check_feature_names(X_named):
                names[0] = _get_feature_names(X_named)
        else:
            def check_feature_names(X_named):
                # scikit-learn's check costs ~20 us, a tenth of predicting
                # one sequence: run only where there are names to compare
                # (an input with columns, a model fitted with names).
                if (hasattr(X_named, "columns")
                        or hasattr(self, "feature_names_in_")):
                    _check_feature_names(self, X_named, reset=False)
        X3, lengths, spec = _sequences.prepare(
            X, spec=None if reset else self._input_spec,
            n_steps=self.n_steps, mask_value=self.mask_value,
            token_ids=self.embedding_dim is not None,
            vocab_size=self.vocab_size, fitting=fitting,
            channels_first=self.channels_first,
            estimator_name=type(self).__name__,
            check_feature_names=check_feature_names,
        )
        if reset:
            facts = {"_input_spec": spec,
                     "n_features_in_": spec.n_features_in,
                     "feature_names_in_": names[0],
                     "vocab_size_": spec.vocab_size}
            for name, value in facts.items():
                if value is None:
                    vars(self).pop(name, None)
                else:
                    setattr(self, name, value)
        return X3, lengths

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to sequences ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_steps, n_features), \
                (n_samples, n_steps * n_features) or list of arrays
            Sequences: a 3-D array, a 2-D array read through ``n_steps``,
            or a list of 2-D arrays ``(n_steps_i, n_features)`` of different
            lengths.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (:class:`RNNClassifier`, 1-D) or target values
            (:class:`RNNRegressor`, finite numbers).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss (multiplied by the class
            weights with :class:`RNNClassifier`'s ``class_weight`` set).
        X_val : array-like or list of arrays, default=None
            Validation sequences, in any form ``X`` takes, for early
            stopping (which then holds nothing out of ``X``): their score
            after each epoch is recorded in ``validation_scores_``. Requires
            ``early_stopping=True`` and ``y_val``. In a ``Pipeline``,
            ``X_val`` reaches this estimator untransformed, unless the
            pipeline transforms it as ``X``: ``Pipeline(...,
            transform_input=["X_val"])`` with metadata routing enabled and
            ``set_fit_request(X_val=True, y_val=True)`` on this estimator.
        y_val : array-like, default=None
            Targets of ``X_val``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation score.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid input, and when training diverges (a non-finite
            loss, gradient or weight); the estimator is then left as it was
            before the call.
        KeyboardInterrupt
            On Ctrl-C: training stops after the running mini-batch and the
            model keeps its weights (see the Notes of the class).
        """
        with _fitting.rollback_on_failure(self):
            return self._fit(X, y, sample_weight, incremental=False,
                             X_val=X_val, y_val=y_val,
                             sample_weight_val=sample_weight_val)

    # From the start: the orthogonal initialisation's QR would otherwise
    # wake BLAS threads that spin beside the kernels' own threads.
    @single_threaded_blas()
    def _fit(self, X, y, sample_weight, incremental, X_val=None, y_val=None,
             sample_weight_val=None):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True.")
        for name in _INTEGER_PARAMS:
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be an int, got the bool {value!r}.")
        cells, sizes = self._architecture()
        first = not hasattr(self, "_network") or not (incremental or self.warm_start)
        if not first:
            self._check_same_architecture(cells, sizes)
        X3, lengths = self._validate_X(X, reset=first, fitting=True)
        y = self._validate_y(y, X3.shape[0])
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X3, dtype=np.float64, ensure_non_negative=True)
            _check_weight_sum(sample_weight, "sample_weight")

        if first:
            self._set_targets(y, incremental)
            self._random_state = check_random_state(self.random_state)
            self._network = self._make_network(cells, sizes, X3,
                                               self._random_state)
            self._initialize_head(y, sample_weight)
            if self.embedding_dim is not None and self.vocab_size is None:
                self._network.embedding[-1] = 0     # out-of-vocabulary row
            # Dropout masks come from their own stream, drawn on as training
            # goes on, so that warm starts continue the same sequence.
            self._dropout_rng = np.random.default_rng(
                self._random_state.randint(np.iinfo(np.int32).max))
            self._optimizer = None
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.best_loss_ = None
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self._no_improvement_count = 0
            self._best_coefs = None
        # What the stopping rule tracks: the validation score with early
        # stopping, else the training loss; a warm start that turns early
        # stopping on or off starts the other record afresh, so that the
        # attributes say what this fit did.
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
            self._no_improvement_count = 0
        elif not self.early_stopping and self.best_loss_ is None:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = np.inf
            self._no_improvement_count = 0
            self._best_coefs = None
        y_enc = self._encode_y(y)
        sample_weight = self._class_weighted(y_enc, sample_weight, incremental)
        validation = self._check_validation_data(X_val, y_val,
                                                 sample_weight_val)
        net = self._network
        # Moments are kept only for the optimizer they were made by: a
        # change of solver or of its settings since the last call starts a
        # fresh one (as MLPClassifier's new optimizer at each fit).
        settings = self._optimizer_settings()
        if (self._optimizer is None
                or getattr(self, "_optimizer_config", None) != settings):
            kw = dict(settings)
            solver = kw.pop("solver")
            self._optimizer = make_optimizer(
                solver, net.dense_coefs.shape, net.dense_coefs.dtype, **kw)
            self._embedding_optimizer = (
                None if net.embedding is None
                else make_optimizer(solver, net.embedding.shape,
                                    net.embedding.dtype, **kw))
            self._optimizer_config = settings

        # Training writes only into memory the model owns: a model loaded
        # from a memory map or pickle buffers trains copies of its arrays
        # from here on (seqclf._ownership).
        net.own_parameters()
        for opt in (self._optimizer, self._embedding_optimizer):
            if opt is not None:
                opt.own_state()
        n_threads = self._kernel_threads()
        self.n_threads_ = n_threads
        self._fit_epochs(X3, lengths, y_enc, sample_weight, incremental,
                         self._random_state, n_threads, validation)
        return self

    def _kernel_threads(self):
        """The kernels' thread count for this call, from ``n_threads``.

        Checked here as well as by fit's parameter validation, since
        ``predict`` reads it after any ``set_params``.
        """
        n = self.n_threads
        # effective_n_threads refuses what is not an int; it reads a
        # negative count from the maximum, which the estimators do not.
        if (isinstance(n, Integral) and not isinstance(n, (bool, np.bool_))
                and n < 1):
            raise ValueError(
                f"n_threads must be a positive int or None, got {n!r} "
                f"(None takes what OpenMP allows).")
        return effective_n_threads(n)

    def _check_validation_data(self, X_val, y_val, sample_weight_val):
        """``(X, lengths, y, sample_weight)`` of the validation data given to
        fit, checked as the training data are; None without any."""
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val is provided, but X_val "
                                 "and y_val were not provided.")
            return None
        if y_val is None:
            raise ValueError("X_val is provided, but y_val was not provided.")
        if X_val is None:
            raise ValueError("y_val is provided, but X_val was not provided.")
        if not self.early_stopping:
            raise ValueError(
                "X_val and y_val are passed to fit while early_stopping is "
                "False. They are what early stopping scores: set "
                "early_stopping=True to use them."
            )
        try:
            X3, lengths = self._validate_X(X_val, reset=False)
            y = self._encode_y(self._validate_y(y_val, X3.shape[0]))
            if sample_weight_val is not None:
                sample_weight_val = _check_sample_weight(
                    sample_weight_val, X3, dtype=np.float64,
                    ensure_non_negative=True)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"Validation data (X_val, y_val, "
                            f"sample_weight_val): {exc}") from exc
        return X3, lengths, y, sample_weight_val

    def _optimizer_settings(self):
        """The solver and the settings its optimizer is built with."""
        return dict(solver=self.solver, learning_rate=self.learning_rate_init,
                    beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon, momentum=self.momentum,
                    nesterov=bool(self.nesterovs_momentum))

    def _make_network(self, cells, sizes, X3, rng):
        """The network for this fit, its weights drawn from ``rng``; a
        MemoryError states the model's sizes (the draws allocate blocks, the
        orthogonal matrices a float64 copy of each recurrent weight)."""
        kw = dict(activation=self.activation, bidirectional=self.bidirectional)
        if self.embedding_dim is None:
            n_in, dtype, n_rows = X3.shape[2], X3.dtype, None
        else:
            # A learned vocabulary gets one more row for unseen ids.
            n_in, dtype = self.embedding_dim, np.dtype(np.float32)
            n_rows = self.vocab_size_ + (self.vocab_size is None)
        n_params = self._check_sizes(cells, sizes, n_in, n_rows, dtype)
        try:
            net = RecurrentNetwork(cells, sizes, n_in, self._n_outputs(),
                                   dtype=dtype, n_tokens=n_rows,
                                   loss=self._make_loss(), **kw)
            net.initialize(rng)
            return net
        except MemoryError as exc:
            raise MemoryError(
                f"Cannot allocate the {n_params:,} parameters "
                f"({_format_bytes(n_params * dtype.itemsize)}) of this model: "
                f"{self._size_summary(sizes, n_rows)}. Use fewer units or a "
                f"smaller vocabulary."
            ) from exc

    def _size_summary(self, sizes, n_rows):
        text = f"hidden_layer_sizes={tuple(sizes)}"
        if n_rows is not None:
            source = ("vocab_size" if self.vocab_size is not None
                      else "the largest token id + 1, and one "
                           "out-of-vocabulary row")
            text += (f", embedding_dim={self.embedding_dim}, {n_rows:,} "
                     f"embedding rows ({source})")
        return text

    def _check_sizes(self, cells, sizes, n_in, n_rows, dtype):
        """Check the model's sizes before allocating; return its parameter count.

        Every BLAS dimension must fit a C int and the parameter vector must
        be addressable; a model that passes may still not fit in memory
        (a MemoryError then says so).
        """
        D = 2 if self.bidirectional else 1
        total = 0 if n_rows is None else n_rows * n_in
        for l, (cell, H) in enumerate(zip(cells, sizes)):
            G = N_GATES[cell] * H
            if G > BLAS_INT_MAX or n_in + H > BLAS_INT_MAX:
                what = ("embedding_dim" if l == 0 and n_rows is not None
                        and n_in + H > BLAS_INT_MAX and G <= BLAS_INT_MAX
                        else "hidden_layer_sizes")
                raise ValueError(
                    f"{what} too large: layer {l} ({cell!r}, {H:,} units, "
                    f"{n_in:,} inputs) has {G:,} gate columns and {n_in + H:,} "
                    f"input + recurrent rows; BLAS takes at most "
                    f"{BLAS_INT_MAX:,} ({self._size_summary(sizes, n_rows)})."
                )
            total += D * n_params(cell, n_in, H)
            n_in = D * H
        K = self._n_outputs()
        total += n_in * K + K
        if total * dtype.itemsize > np.iinfo(np.intp).max:
            raise ValueError(
                f"The model would have {total:,} parameters "
                f"({_format_bytes(total * dtype.itemsize)}), more than can be "
                f"addressed: {self._size_summary(sizes, n_rows)}. Use fewer "
                f"units, or with token ids a smaller vocabulary (map the ids "
                f"to 0 .. n_tokens - 1, or set vocab_size)."
            )
        return total

    def _check_same_architecture(self, cells, sizes):
        net = self._network
        embedding = None if net.n_tokens is None else net.n_features
        spec = self._input_spec
        fitted_vocab = spec.vocab_size if spec.vocab_fixed else None
        if (tuple(cells) != net.cells or tuple(sizes) != net.hidden_sizes
                or bool(self.bidirectional) != net.bidirectional
                or self.activation != net.activation
                or self.embedding_dim != embedding
                or self.vocab_size != fitted_vocab):
            raise ValueError(
                "The architecture (cell, hidden_layer_sizes, bidirectional, "
                "activation, embedding_dim, vocab_size) changed since the "
                "model was fitted; fit afresh with warm_start=False."
            )

    def _split_validation(self, X, lengths, y, sample_weight, rs):
        """Hold out ``validation_fraction`` of the training data (stratified
        for a classifier); return ``(train, validation)`` tuples."""
        idx = np.arange(X.shape[0])
        what = (f"early_stopping holds out validation_fraction="
                f"{self.validation_fraction:g} of the {len(idx):,} training "
                f"sequences")
        try:
            train_idx, val_idx = train_test_split(
                idx, random_state=rs, test_size=self.validation_fraction,
                stratify=self._stratify(y),
            )
        except ValueError as exc:
            raise ValueError(
                f"{what}, and that split failed: {exc} Raise "
                f"validation_fraction or the size of the data set, or pass "
                f"validation data to fit (X_val, y_val)."
            ) from exc
        if len(val_idx) < 2:
            raise ValueError(
                f"The validation set is too small: {what}, {len(val_idx)} of "
                f"them. Raise validation_fraction, or pass validation data "
                f"to fit (X_val, y_val)."
            )

        def part(i):
            return (X[i], lengths[i], y[i],
                    None if sample_weight is None else sample_weight[i])
        return part(train_idx), part(val_idx)

    def _fit_epochs(self, X, lengths, y, sample_weight, incremental, rs,
                    n_threads, validation=None):
        """Train for ``max_iter`` epochs (one with ``incremental``) or until
        stopping says so; ``validation`` is the checked ``(X, lengths, y,
        sample_weight)`` passed to fit, or None."""
        net = self._network
        if self.early_stopping:
            if validation is None:
                (X, lengths, y, sample_weight), validation = (
                    self._split_validation(X, lengths, y, sample_weight, rs))
            if self._best_coefs is None:
                self._best_coefs = net.coefs.copy()
        n = X.shape[0]
        batch_size = min(self.batch_size, n)
        n_epochs = 1 if incremental else self.max_iter
        if not incremental:
            self.n_iter_ = 0
        where = _fitting.Position(-(-n // batch_size))
        data = (X, lengths, y, sample_weight)
        runner = _fitting.EpochRunner(
            net, self._optimizer, self._embedding_optimizer, data, batch_size,
            alpha=self.alpha, clip_norm=self.clip_norm, dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            dropout_rng=self._dropout_rng, n_threads=n_threads)
        reason = "partial_fit" if incremental else "max_iter"
        try:
            # Overflows are caught by the finiteness checks, which say more
            # than NumPy's warnings.
            with _fitting.DeferredInterrupt() as interrupt, np.errstate(
                    over="ignore", invalid="ignore"):
                for _ in range(n_epochs):
                    if self._run_epoch(runner, validation, rs, interrupt,
                                       where):
                        if not incremental:
                            reason = ("validation_score" if validation is not None
                                      else "training_loss")
                            break
            if interrupt.requested:         # Ctrl-C after the last check
                raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            self._keep_interrupted_state(exc, where, data, n_threads)
            raise
        if self.early_stopping:
            net.coefs[...] = self._best_coefs
        self._check_final_weights(data, where, n_threads)
        self.stop_reason_ = reason
        if self.verbose and not incremental:
            _progress.say(self._stop_message(reason))

    def _check_final_weights(self, data, where, n_threads):
        """Run the last mini-batch through the weights the call ends with.

        The checks of each step see the loss before the update and the
        weights after it, not the outputs of the updated weights: the last
        update can leave weights that are finite but overflow on the data
        they were trained on (a relu RNN after a large SGD step), so that
        ``predict`` would fail on them. One batch's forward pass says so
        while the call can still be rolled back.
        """
        if not self._final_outputs_finite(data, where, n_threads):
            X, sample_weight = data[0], data[3]
            swb = (None if sample_weight is None
                   else sample_weight[where.last_batch])
            raise self._divergence(
                "the output of the final weights on the last mini-batch",
                where, X, swb)

    def _final_outputs_finite(self, data, where, n_threads):
        """Whether the network's outputs on the last mini-batch of the
        epoch (``where.last_batch``) are finite."""
        X, lengths = data[:2]
        rows = where.last_batch
        lb = lengths[rows]
        Xb = np.ascontiguousarray(X[rows, :lb.max()])
        with np.errstate(over="ignore", invalid="ignore"):
            Z = self._network.decision_function(Xb, lb, n_threads)
        return _all_finite(Z)

    def _undefined_score(self, validation, where):
        """The ValueError of a validation score that cannot be computed
        (NaN): early stopping would compare nothing, and restore the
        weights it started from."""
        n_val = validation[0].shape[0]
        return ValueError(
            f"The validation score of epoch {where.epoch} is not a number: "
            f"{self._SCORE_NAME} cannot be computed on these {n_val} "
            f"validation sequence(s){self._SCORE_NEEDS}. Early stopping has "
            f"nothing to compare; give more validation data (X_val and "
            f"y_val, or a larger validation_fraction), or set "
            f"early_stopping=False. The estimator was left as it was before "
            f"this call."
        )

    def _stop_message(self, reason):
        if reason == "max_iter":
            return f"Stopping: reached max_iter={self.max_iter} epochs."
        what = ("Validation score" if reason == "validation_score"
                else "Training loss")
        return (f"Stopping: {what.lower()} did not improve more than "
                f"tol={self.tol} for {self.n_iter_no_change} consecutive "
                f"epochs (epoch {self.n_iter_}).")

    def _run_epoch(self, runner, validation, rs, interrupt, where):
        """One pass over the training data; True when training should stop."""
        data, batch_size, n_threads = (runner.data, runner.batch_size,
                                       runner.n_threads)
        sample_weight = data[3]
        n = data[0].shape[0]
        tic = time.perf_counter()
        where.epoch = self.n_iter_ + 1
        where.batch = 0
        order = rs.permutation(n) if self.shuffle else np.arange(n)
        where.last_batch = order[(n - 1) // batch_size * batch_size:]
        progress = EpochProgress(where.epoch, n) if self.verbose >= 2 else None
        try:
            total = runner.run_epoch(order, interrupt, where, progress)
        except _fitting.Diverged as exc:
            swb = None if sample_weight is None else sample_weight[exc.rows]
            raise self._divergence(exc.what, where, data[0], swb) from None
        finally:
            if progress is not None:
                progress.close()

        # The epoch's scores first, then every counter in one step, so that
        # an interrupt sees them all before or all after the epoch.
        score = None
        if validation is not None:
            try:
                score = self._validation_score(validation, n_threads)
            except ValueError as exc:       # the held-out outputs overflowed
                raise self._divergence("the validation output", where,
                                       data[0], None) from exc
            if np.isnan(score):
                raise self._undefined_score(validation, where)
        where.updating = True
        self.n_iter_ += 1
        self.loss_ = total / n
        self.loss_curve_.append(self.loss_)
        stop = self._update_no_improvement(score)
        where.updating = False
        if self.verbose:
            msg = f"Epoch {self.n_iter_}, loss = {self.loss_:.6f}"
            if validation is not None:
                msg += f", validation score = {self.validation_scores_[-1]:.6f}"
            _progress.say(f"{msg}, {time.perf_counter() - tic:.2f} s")
        if interrupt.requested:
            raise KeyboardInterrupt
        return stop

    def _keep_interrupted_state(self, exc, where, data, n_threads):
        """Settle the model after Ctrl-C, or leave it to the rollback.

        Outside an update the model holds the weights of its last completed
        mini-batch and counters that agree with them; the dropout stream is
        put back to before the interrupted batch's draws, and with early
        stopping the best weights are restored. An interrupt during an
        update (a second Ctrl-C, or a handler of the user's) cannot be
        settled, and one before the call's first mini-batch is complete has
        nothing to keep: the state from before the call is restored instead,
        as it is when the weights to keep overflow on the training data (as
        at the end of a call: see _check_final_weights).
        """
        if where.updating or where.completed == 0:
            return
        restored = ""
        if self.early_stopping:
            self._network.coefs[...] = self._best_coefs
            restored = (f"; early stopping's best weights (validation score "
                        f"{self.best_validation_score_:.6g}) were restored")
        if not self._final_outputs_finite(data, where, n_threads):
            if not exc.args:
                exc.args = (
                    f"fit interrupted in epoch {where.epoch}; the weights of "
                    f"the last completed mini-batch overflow on the training "
                    f"data (training was diverging), so the estimator was "
                    f"left as it was before this call.",
                )
            return
        if where.rng_state is not None:
            self._dropout_rng.bit_generator.state = where.rng_state
        if not exc.args:
            exc.args = (
                f"fit interrupted in epoch {where.epoch} after {where.completed} "
                f"mini-batch(es) of this call; the model keeps the weights of "
                f"the last completed one, n_iter_={self.n_iter_} counts the "
                f"completed epochs{restored}.",
            )
        self._interrupted = exc
        self.stop_reason_ = "interrupted"
        if self.verbose:
            _progress.say(f"Stopping: interrupted in epoch {where.epoch}, "
                          f"after mini-batch {where.batch} of "
                          f"{where.n_batches}.")

    def _divergence(self, what, where, X, sample_weight):
        """The ValueError of a fit whose loss, gradient or weights went
        non-finite (said at once with ``verbose``)."""
        if self.verbose:
            _progress.say(f"Stopping: training diverged ({what} became "
                          f"non-finite in epoch {where.epoch}, mini-batch "
                          f"{where.batch} of {where.n_batches}); the "
                          f"estimator is left as it was before this call.")
        causes = []
        if sample_weight is not None:
            causes.append(
                f"sample_weight (the batch's largest weight is "
                f"{np.max(sample_weight):.4g}; very large or very small "
                f"weights overflow the weighted loss, or alpha / sum of "
                f"weights)")
        step = f"learning_rate_init={self.learning_rate_init:g}"
        if self.solver == "sgd":
            step += f" with solver='sgd' (momentum={self.momentum:g})"
        causes.append(f"too large a step: {step}")
        causes.append("no clip_norm (set it, e.g. clip_norm=1.0, to bound "
                      "each step)" if self.clip_norm is None else
                      f"clip_norm={self.clip_norm:g} (lower it)")
        if self._network.embedding is None:     # token ids have no scale
            scale = float(np.max(np.abs(X)))
            causes.append(f"the input's scale (largest |X| is {scale:.4g}; "
                          f"standardise X, e.g. with StandardScaler)")
        if self.activation == "relu" and "rnn" in self._network.cells:
            causes.append("activation='relu', whose recurrent state is "
                          "unbounded (tanh is not)")
        return ValueError(
            f"Training diverged: {what} became non-finite (NaN or infinity) "
            f"in epoch {where.epoch}, mini-batch {where.batch} of "
            f"{where.n_batches}. Likely causes: " + "; ".join(causes) +
            ". The estimator was left as it was before this call."
        )

    def _update_no_improvement(self, score):
        """Update the stopping counters after an epoch; True means stop.

        ``score`` is the validation score with early stopping, else None.
        With ``tol=None`` the scores are kept but training never stops on
        them.
        """
        tol = 0.0 if self.tol is None else self.tol
        if score is not None:
            self.validation_scores_.append(score)
            if score < self.best_validation_score_ + tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = self._network.coefs.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        return (self.tol is not None
                and self._no_improvement_count >= self.n_iter_no_change)

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------

    def _forward_outputs(self, X, lengths, n_threads):
        """The loss's predictions for post-padded sequences, in batches:
        class probabilities (classifier) or values (regressor), ``(n,
        n_outputs)``.

        Sequences are grouped by length so that each batch runs only as many
        steps as its longest sequence.
        """
        net = self._network
        n, T = X.shape[:2]
        out = np.empty((n, net.n_outputs), dtype=net.dtype)
        width = max(net.hidden_sizes) * net.n_directions
        rows = max(16, min(4096, _PREDICT_ELEMENTS // (T * width)))
        ragged = n > rows and lengths.min() != lengths.max()
        order = np.argsort(lengths, kind="stable") if ragged else None
        # An overflow is reported below, with what caused it.
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, n, rows):
                sel = (slice(start, start + rows) if order is None
                       else order[start:start + rows])
                lb = lengths[sel]
                # A view when nothing is trimmed, else a contiguous copy.
                Xb = np.ascontiguousarray(X[sel, :lb.max()])
                out[sel] = net.loss.predict(net.decision_function(Xb, lb, n_threads))
        if not _all_finite(out):
            i = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
            scale = float(np.max(np.abs(X[i, :lengths[i]])))
            raise ValueError(
                f"The model's output for sample {i} is not finite: its "
                f"recurrent state overflowed (largest |X| in that sample is "
                f"{scale:.4g}; activation={net.activation!r}), or its weights "
                f"hold non-finite values. Scale X as the training data was."
            )
        return out

    # ------------------------------------------------------------------
    # Weights and summary
    # ------------------------------------------------------------------

    @property
    def weights_(self):
        if not hasattr(self, "_network"):
            # NotFittedError is an AttributeError too (hasattr is False).
            raise NotFittedError("weights_ exists once the model is fitted.")
        return [[dict(u.params) for u in layer] for layer in self._network.layers]

    @property
    def embedding_(self):
        if getattr(self, "_network", None) is None:
            raise NotFittedError("embedding_ exists once a model with "
                                 "embedding_dim set is fitted.")
        if self._network.embedding is None:
            raise AttributeError("embedding_ exists only for a model with "
                                 "embedding_dim set.")
        return self._network.embedding

    @property
    def head_weights_(self):
        if not hasattr(self, "_network"):
            raise NotFittedError("head_weights_ exists once the model is fitted.")
        return dict(self._network.head_params)

    def summary(self, print_fn=print):
        """Print the layers, their output shapes and parameter counts.

        Laid out as Keras' ``model.summary()``, with the same counts as
        Keras for the same architecture (a ``Bidirectional`` layer counts
        both directions; the head is a ``Dense`` layer).

        Parameters
        ----------
        print_fn : callable, default=print
            Called with each line.
        """
        check_is_fitted(self)
        net = self._network
        counts = net.n_params_per_layer()
        steps = self._input_spec.steps
        T = "None" if steps is None else str(steps)
        rows, seen = [], {}
        if net.embedding is not None:
            rows.append(("embedding (Embedding)",
                         f"(None, {T}, {net.n_features})", net.embedding.size))
        n_layers = len(net.cells)
        for l, (cell, H) in enumerate(zip(net.cells, net.hidden_sizes)):
            name, kind = CELLS[cell].keras_name, CELLS[cell].keras_class
            if net.bidirectional:
                name, kind = "bidirectional", f"Bidirectional({kind})"
            k = seen.get(name, 0)
            seen[name] = k + 1
            label = name if k == 0 else f"{name}_{k}"
            width = net.n_directions * H
            shape = (f"(None, {width})" if l == n_layers - 1
                     else f"(None, {T}, {width})")
            rows.append((f"{label} ({kind})", shape, counts[l]))
        rows.append(("dense (Dense)", f"(None, {net.n_outputs})", counts[-1]))
        total = sum(r[2] for r in rows)
        w1 = max(28, max(len(r[0]) for r in rows) + 2)
        w2 = max(26, max(len(r[1]) for r in rows) + 2)
        width = w1 + w2 + 11
        print_fn(f'Model: "{type(self).__name__}"')
        print_fn("_" * width)
        print_fn(f" {'Layer (type)':<{w1}}{'Output Shape':<{w2}}Param #")
        print_fn("=" * width)
        for i, (label, shape, count) in enumerate(rows):
            print_fn(f" {label:<{w1}}{shape:<{w2}}{count:,}")
            print_fn("_" * width if i < len(rows) - 1 else "=" * width)
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {total:,}")
        print_fn("Non-trainable params: 0")
        print_fn("_" * width)

    # ------------------------------------------------------------------
    # Persistence (pickle, skops.io)
    # ------------------------------------------------------------------

    def __getstate__(self):
        # Plain values only: see seqclf._persistence.
        return _persistence.saved_state(super().__getstate__())

    def __setstate__(self, state):
        state = _persistence.loaded_state(
            type(self), state, self._make_loss, self._saved_n_outputs)
        super().__setstate__(state)

    def __sklearn_is_fitted__(self):
        # A fit that fails is rolled back, so the network exists only once
        # a fit has trained it.
        return "_network" in vars(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = self.embedding_dim is None
        # allow_nan stays False with mask_value=np.nan: NaN is accepted as
        # whole padding steps before or after the data, not anywhere, which
        # is what the tag promises to meta-estimators and to scikit-learn's
        # checks (they put NaN at random entries).
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


class RNNClassifier(ClassifierMixin, BaseRNN):
    """Recurrent neural network classifier (tanh RNN, GRU or LSTM).

    Stacked recurrent layers read each sequence step by step; a dense layer
    on the last layer's final state gives one output per class, trained with
    softmax cross-entropy by mini-batch Adam or SGD. The forward pass and
    backpropagation through time run in compiled, multithreaded kernels.

    Parameters
    ----------
    <parameters>

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    <attributes>

    Notes
    -----
    <notes>

    Examples
    --------
    >>> import numpy as np
    >>> from seqclf import RNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 10, 3))      # 500 sequences of 10 steps
    >>> y = (X[:, 0, 0] > 0).astype(int)       # decided by the first step
    >>> clf = RNNClassifier("gru", (16,), batch_size=32, learning_rate_init=0.01,
    ...                     random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        **BaseRNN._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        cell="lstm",
        hidden_layer_sizes=(128,),
        *,
        activation="tanh",
        bidirectional=False,
        n_steps=None,
        channels_first=False,
        mask_value=None,
        embedding_dim=None,
        vocab_size=None,
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
        warm_start=False,
        n_threads=None,
        verbose=0,
    ):
        super().__init__(
            cell, hidden_layer_sizes,
            activation=activation,
            bidirectional=bidirectional,
            n_steps=n_steps,
            channels_first=channels_first,
            mask_value=mask_value,
            embedding_dim=embedding_dim,
            vocab_size=vocab_size,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            solver=solver,
            learning_rate_init=learning_rate_init,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            batch_size=batch_size,
            max_iter=max_iter,
            alpha=alpha,
            clip_norm=clip_norm,
            shuffle=shuffle,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            random_state=random_state,
            warm_start=warm_start,
            n_threads=n_threads,
            verbose=verbose,
        )
        self.class_weight = class_weight

    # -- targets: the hooks of BaseRNN -----------------------------------

    def _validate_y(self, y, n_samples):
        y = column_or_1d(y, warn=True)
        check_consistent_length(np.empty(n_samples), y)
        check_classification_targets(y)
        return y

    def _set_targets(self, y, incremental):
        if not incremental:         # partial_fit's first call gave classes
            self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"Classifier can't train when only one class is present: "
                f"y holds only {self.classes_[0]!r}."
            )

    def _encode_y(self, y):
        unseen = ~np.isin(y, self.classes_)
        if unseen.any():
            raise ValueError(
                f"y contains labels not in classes_: {np.unique(y[unseen]).tolist()}; "
                f"classes_ is {self.classes_.tolist()}."
            )
        return np.searchsorted(self.classes_, y).astype(np.intp)

    def _n_outputs(self):
        return len(self.classes_)

    @staticmethod
    def _saved_n_outputs(state):
        classes = state.get("classes_")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            raise _persistence._Invalid("its classes_ is not a 1-D array.")
        return len(classes)

    def _make_loss(self):
        return SoftmaxCrossEntropy()

    def _stratify(self, y):
        return y

    def _class_weighted(self, y, sample_weight, incremental):
        class_weight = self.class_weight
        if class_weight is None:
            return sample_weight
        if isinstance(class_weight, str) and incremental:
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: "
                "one call's labels do not say how frequent each class is. "
                "Compute the weights once, compute_class_weight('balanced', "
                "classes=classes, y=y) on a large enough sample of the "
                "labels, and pass them as class_weight (a dict)."
            )
        if isinstance(class_weight, dict):
            unknown = [k for k in class_weight if not np.isin(k, self.classes_)]
            if unknown:
                raise ValueError(
                    f"class_weight names labels that are not classes: "
                    f"{unknown}; classes_ is {self.classes_.tolist()}."
                )
            # The values sample_weight's checks refuse, refused by name.
            bad = {k: v for k, v in class_weight.items()
                   if not isinstance(v, Real) or not np.isfinite(v) or v < 0}
            if bad:
                raise ValueError(
                    f"class_weight values must be finite numbers >= 0, as "
                    f"sample weights are; got {bad}."
                )
        weights = compute_class_weight(class_weight, classes=self.classes_,
                                       y=self.classes_[y])[y]
        if sample_weight is not None:
            with np.errstate(over="ignore"):
                weights = sample_weight * weights
        if not weights.any():
            raise ValueError(
                f"class_weight={class_weight!r} gives every sample of this "
                f"call a weight of 0"
                f"{'' if sample_weight is None else ' (with sample_weight)'}: "
                f"there is nothing to train on."
            )
        _check_weight_sum(weights, "class_weight times sample_weight")
        return weights

    def _validation_score(self, validation, n_threads):
        """Accuracy on the held-out split ``(X, lengths, y, sample_weight)``."""
        X_val, len_val, y_val, sw_val = validation
        proba = self._forward_outputs(X_val, len_val, n_threads)
        correct = (proba.argmax(axis=1) == y_val).astype(np.float64)
        return float(np.average(correct, weights=sw_val))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over ``X`` and ``y``, starting from the current weights.

        One pass over the sequences given, in mini-batches of
        ``batch_size`` (shuffled with ``shuffle=True``), the optimizer's
        state (Adam's moments and step count, SGD's velocity) carried from
        the previous call. Calls on the consecutive blocks of a data set,
        with ``shuffle=False`` and blocks of whole mini-batches (sizes that
        are multiples of ``batch_size``), train exactly as ``fit``'s epoch
        on the whole set. That is how ``dask_ml.wrappers.Incremental``
        trains on a Dask array too large for memory, one block at a time.

        Parameters
        ----------
        X : array-like or list of arrays
            Sequences, as for :meth:`fit`.
        y : array-like of shape (n_samples,)
            Class labels; each must be in ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every class that can appear; required at the first call and
            ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : RNNClassifier

        Raises
        ------
        ValueError
            As :meth:`fit`; a call that fails leaves the estimator as it was
            before it.
        """
        with _fitting.rollback_on_failure(self):
            _check_partial_fit_first_call(self, classes)
            return self._fit(X, y, sample_weight, incremental=True)

    def predict_proba(self, X):
        """Probability of each class.

        Parameters
        ----------
        X : array-like or list of arrays
            Sequences, as for :meth:`fit`; with a 3-D ``X`` or a list they
            may be longer or shorter than the training sequences.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X3, lengths = self._validate_X(X, reset=False)
        n_threads = self._kernel_threads()
        with single_threaded_blas():
            return self._forward_outputs(X3, lengths, n_threads)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class of each sequence.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]



_document(RNNClassifier, mlp="MLPClassifier", score="accuracy",
          split=" (stratified)", class_weight=_CLASS_WEIGHT_DOC,
          outputs="the number of classes (two for a binary problem)")


class RNNRegressor(RegressorMixin, BaseRNN):
    """Recurrent neural network regressor (tanh RNN, GRU or LSTM).

    Stacked recurrent layers read each sequence step by step; a linear
    layer on the last layer's final state gives one output per target,
    trained on half the mean squared error by mini-batch Adam or SGD. The
    network, its inputs and its training are those of
    :class:`RNNClassifier`; only the head's outputs, the loss and the
    targets differ.

    Parameters
    ----------
    <parameters>

    Attributes
    ----------
    n_outputs_ : int
        Number of targets (columns of a 2-D ``y``; 1 for a 1-D ``y``).
    <attributes>

    Notes
    -----
    The loss of a mini-batch is ``MLPRegressor``'s:
    ``0.5 * sum_i w_i * mean_k (y_ik - p_ik)^2 / sum_i w_i`` (``w`` the
    sample weights, 1 by default), plus the ``alpha`` penalty. The head's
    bias starts at the (weighted) mean of the first fit's targets, so that
    training starts from the constant prediction; the weights learn the
    rest. The targets are not rescaled: those far from unit scale train
    slowly with the default step size, and
    ``TransformedTargetRegressor(regressor, transformer=StandardScaler())``
    standardises them around the estimator.

    <notes>

    Examples
    --------
    >>> import numpy as np
    >>> from seqclf import RNNRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 10, 3))      # 500 sequences of 10 steps
    >>> y = X[:, :, 0].mean(axis=1)            # the mean of the first feature
    >>> reg = RNNRegressor("gru", (16,), batch_size=32, learning_rate_init=0.01,
    ...                    max_iter=30, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    # -- targets: the hooks of BaseRNN -----------------------------------

    def _validate_y(self, y, n_samples):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, "
                             f"but the target y is None.")
        y = y.toarray() if issparse(y) else np.asarray(y)
        try:
            if y.dtype.kind in "USV":
                raise ValueError(f"dtype {y.dtype}")
            # Object arrays of numbers are read as float64 (strings are not).
            y = _check_y(y, multi_output=True, y_numeric=True, estimator=self)
        except ValueError as exc:
            if y.dtype.kind not in "OUSV":
                raise
            raise ValueError(
                f"{type(self).__name__} needs numeric targets; y cannot be "
                f"read as numbers ({exc}). Encode labels as numbers, or use "
                f"RNNClassifier for class labels."
            ) from exc
        check_consistent_length(np.empty(n_samples), y)
        return y

    def _set_targets(self, y, incremental):
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        # Predictions keep the targets' shape: (n,) for a 1-D y.
        self._y_ndim = y.ndim

    def _encode_y(self, y):
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if n_outputs != self.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} output(s) (columns) but the model was "
                f"fitted with {self.n_outputs_}; fit afresh with "
                f"warm_start=False to change the targets."
            )
        dtype = self._network.dtype
        with np.errstate(over="ignore"):
            Y = np.ascontiguousarray(y.reshape(len(y), n_outputs), dtype=dtype)
        if not _all_finite(Y):
            raise ValueError(
                f"y holds values beyond what {dtype} holds (largest |y| is "
                f"{float(np.max(np.abs(y))):.4g}); the model computes in "
                f"{dtype} as X is. Rescale y, e.g. with "
                f"TransformedTargetRegressor and StandardScaler."
            )
        return Y

    def _n_outputs(self):
        return self.n_outputs_

    @staticmethod
    def _saved_n_outputs(state):
        return _persistence._int("n_outputs_", state.get("n_outputs_"))

    def _make_loss(self):
        return SquaredError()

    def _initialize_head(self, y, sample_weight):
        y = y.reshape(len(y), -1).astype(np.float64)
        if sample_weight is not None and not sample_weight.any():
            sample_weight = None        # no weight to average with
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.average(y, axis=0, weights=sample_weight)
        b = self._network.head_params["b"]
        with np.errstate(over="ignore"):
            b[...] = mean
        if not _all_finite(b):          # _encode_y reports the range
            b[...] = 0

    _SCORE_NAME = "R²"
    _SCORE_NEEDS = " (it needs at least two sequences)"

    def _validation_score(self, validation, n_threads):
        """R² on the held-out split ``(X, lengths, y, sample_weight)``."""
        X_val, len_val, y_val, sw_val = validation
        pred = self._forward_outputs(X_val, len_val, n_threads)
        return float(r2_score(y_val, pred, sample_weight=sw_val))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch over ``X`` and ``y``, starting from the current weights.

        One pass over the sequences given, in mini-batches, the optimizer's
        state carried from the previous call, as
        :meth:`RNNClassifier.partial_fit`. Calls on the consecutive blocks
        of a data set (``shuffle=False``, blocks of whole mini-batches)
        train as ``fit``'s epoch on the whole set but for the head's
        initial bias, which is the mean of the first call's targets rather
        than of the whole set's.

        Parameters
        ----------
        X : array-like or list of arrays
            Sequences, as for :meth:`fit`.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values, with as many outputs as at the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : RNNRegressor

        Raises
        ------
        ValueError
            As :meth:`fit`; a call that fails leaves the estimator as it was
            before it.
        """
        with _fitting.rollback_on_failure(self):
            return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted target values of each sequence.

        Parameters
        ----------
        X : array-like or list of arrays
            Sequences, as for :meth:`fit`; with a 3-D ``X`` or a list they
            may be longer or shorter than the training sequences.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Of the shape of the targets at fit: 1-D for a 1-D ``y``.
        """
        check_is_fitted(self)
        X3, lengths = self._validate_X(X, reset=False)
        n_threads = self._kernel_threads()
        with single_threaded_blas():
            out = self._forward_outputs(X3, lengths, n_threads)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_document(RNNRegressor, mlp="MLPRegressor", score="R²", split="",
          class_weight="",
          outputs="the number of targets")
