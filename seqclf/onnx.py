"""Export fitted seqclf estimators to ONNX, alone or inside a pipeline.

Needs the ``onnx`` extra (``pip install "seqclf[onnx]"``: skl2onnx, onnx and
onnxruntime). Importing this module registers converters for
:class:`~seqclf.RNNClassifier`, :class:`~seqclf.RNNRegressor` and
:class:`~seqclf.preprocessing.SequenceScaler` with skl2onnx, so that
``skl2onnx.to_onnx(make_pipeline(StandardScaler(), RNNClassifier(n_steps=28)),
X[:1])`` converts the whole pipeline, the scaler
by skl2onnx's own converter. :func:`to_onnx` is the same conversion with
the options a recurrent model needs (a ``lengths`` input, a graph input
that accepts sequences of any length).

The graph runs ONNX's own ``RNN``, ``GRU`` and ``LSTM`` operators, one per
layer (both directions in one operator), so that any ONNX runtime runs it
with its recurrent kernels:

* the input is read as the estimator reads its array form: ``(N, T, F)``
  (``(N, F, T)`` with ``channels_first``), or 2-D rows read through
  ``n_steps`` when the model was fitted on 2-D rows; token models take
  int64 ids ``(N, T)`` and look them up with ``Gather``;
* padding is found in the graph when the estimator has a ``mask_value``
  (steps whose features all equal it, all NaN for NaN), before or after the
  data: each sequence is shifted to start at step 0 and its length feeds
  the operators' ``sequence_lens``, as the estimator does. With
  ``with_lengths=True`` the lengths are a second graph input instead, the
  data starting at step 0;
* gates are re-laid from seqclf's orders (GRU r, z, n; LSTM i, f, g, o) to
  ONNX's (z, r, h; i, o, f, c); the GRU is ONNX's ``linear_before_reset=1``
  form, which is seqclf's (and PyTorch's) reset-after GRU;
* the operators are time-major: the graph transposes in and out;
* the head is a ``Gemm``; a classifier gives ``label`` and
  ``probabilities`` (softmax) as skl2onnx's classifiers do, optionally
  through a ZipMap; a regressor gives ``variable`` ``(N, n_outputs)``.
  Labels are int64 (integer and integral float classes) or UTF-8 strings,
  equal to ``predict``'s: classes they cannot hold exactly (integers
  beyond int64, such as uint64 labels from 2**63 on) are refused at export
  rather than wrapped.

ONNX Runtime's recurrent kernels compute in float32 only: a float64 model
is exported with its weights rounded to float32 (its outputs then agree with
``predict_proba`` to about 1e-6, the rounding of float32, rather than
exactly).

What the graph cannot do is raise the estimator's errors: padding between
data steps, a sequence that is all padding and non-finite inputs give
outputs instead of a ``ValueError``. Token ids below 0, and ids beyond a
``vocab_size`` given at fit, make ``Gather`` fail at run time; ids beyond a
learned vocabulary read its out-of-vocabulary row, as in the estimator.
"""

import numbers

import numpy as np

try:
    import onnx
    from onnx import TensorProto
    from skl2onnx import convert_sklearn, update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int32TensorType,
        Int64TensorType,
        StringTensorType,
    )
except ImportError as exc:          # pragma: no cover - depends on the install
    raise ImportError(
        "seqclf.onnx needs skl2onnx and onnx: pip install \"seqclf[onnx]\" "
        "(skl2onnx, onnx and onnxruntime)."
    ) from exc

from sklearn.base import is_classifier
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._rnn import RNNClassifier, RNNRegressor
from .preprocessing import SequenceScaler

__all__ = ["to_onnx"]

# Unsqueeze and ReduceSum take their axes as an input from opset 13 on.
MIN_OPSET = 13

# seqclf's gate blocks in ONNX's order: GRU (r, z, n) -> (z, r, h), LSTM
# (i, f, g, o) -> (i, o, f, c).
_GATE_ORDER = {"rnn": [0], "gru": [1, 0, 2], "lstm": [0, 3, 1, 2]}
_OP_TYPE = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
_ACTIVATION = {"tanh": "Tanh", "relu": "Relu"}


def to_onnx(estimator, X=None, *, with_lengths=False, zipmap=False,
            target_opset=None):
    """Convert a fitted estimator, or a pipeline ending in one, to ONNX.

    Parameters
    ----------
    estimator : RNNClassifier, RNNRegressor or Pipeline
        Fitted. A pipeline's other steps are converted by skl2onnx's
        converters. A fitted ``GridSearchCV`` (or another search) exports
        its ``best_estimator_``.
    X : array-like, default=None
        A sample of the input, for its type and shape (its values are not
        read): a float32 or float64 array ``(n, T, F)``, or 2-D rows for a
        model fitted on rows; int64 token ids ``(n, T)``. The graph accepts
        any number of sequences and, for 3-D and token input, any number of
        steps. None: the estimator's own input form, float32 (a bare
        estimator only).
    with_lengths : bool, default=False
        Add a second graph input ``lengths`` ``(N,)`` (int64): the number of
        data steps of each sequence, the data starting at step 0 and padded
        after (any values). A pipeline's steps before the estimator cannot
        pass a second input through: there, give the estimator
        ``mask_value`` (NaN padding passes through scaling) and let the
        graph find the lengths. With ``lengths`` the graph does not look
        for ``mask_value`` padding.
    zipmap : bool or "columns", default=False
        Classifiers: False gives ``probabilities`` as a ``(N, n_classes)``
        float tensor; True a list of ``{label: probability}`` maps
        (skl2onnx's default for its classifiers), "columns" one output per
        class.
    target_opset : int, default=None
        ONNX opset; None takes skl2onnx's latest tested one. At least 13.

    Returns
    -------
    model : onnx.ModelProto
        Inputs ``X`` (and ``lengths``); outputs ``label`` and
        ``probabilities`` for a classifier, ``variable`` for a regressor.
        Passes ``onnx.checker.check_model``.

    Raises
    ------
    ValueError
        If the estimator is not fitted, cannot be converted (class labels
        that are neither integers nor strings, integers beyond int64's
        range, strings that UTF-8 cannot encode, an opset below 13), or the
        inputs asked for do not suit it; the message says which.
    """
    if isinstance(estimator, BaseSearchCV):
        check_is_fitted(estimator, "best_estimator_")
        estimator = estimator.best_estimator_
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if not isinstance(final, (RNNClassifier, RNNRegressor)):
        raise TypeError(
            f"to_onnx converts an RNNClassifier, an RNNRegressor or a Pipeline "
            f"ending in one, got {type(final).__name__}; skl2onnx.to_onnx "
            f"converts other models (importing seqclf.onnx registers seqclf's)."
        )
    _check_convertible(final, target_opset)
    if with_lengths and final is not estimator:
        raise ValueError(
            "with_lengths=True is not supported for a Pipeline: its steps "
            "before the estimator cannot pass a second input through. Give "
            "the estimator a mask_value (e.g. mask_value=np.nan, NaN padding "
            "passes through scaling) so that the graph finds the lengths, or "
            "export the estimator alone."
        )
    if X is None:
        if final is not estimator:
            raise ValueError("A Pipeline needs X, a sample of its input, for "
                             "the input's type and shape.")
        x_type = _own_input_type(final)
    else:
        x_type = _sample_type(X, final if final is estimator else None)
    inputs = [("X", x_type)]
    if with_lengths:
        inputs.append(("lengths", Int64TensorType([None])))
    options = None
    if is_classifier(final):
        options = {type(final): {"zipmap": zipmap}}
    model = convert_sklearn(estimator, initial_types=inputs,
                            target_opset=target_opset, options=options)
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

def _check_convertible(est, target_opset=None):
    """Raise ValueError when ``est`` cannot be converted, saying why."""
    name = type(est).__name__
    try:
        check_is_fitted(est)
    except Exception as exc:
        raise ValueError(f"This {name} is not fitted: fit it before "
                         f"exporting it to ONNX.") from exc
    if target_opset is not None:
        opset = target_opset.get("", None) if isinstance(target_opset, dict) \
            else target_opset
        if opset is not None and opset < MIN_OPSET:
            raise ValueError(f"target_opset must be at least {MIN_OPSET} for "
                             f"a seqclf model, got {opset}.")
    if is_classifier(est):
        _label_kind(est.classes_)


def _label_kind(classes):
    """``"int"`` or ``"str"``: how the graph outputs ``classes``.

    ValueError for classes that neither int64 nor UTF-8 string labels hold
    exactly.
    """
    kind = classes.dtype.kind
    if kind == "U" or (kind == "O"
                       and all(isinstance(c, str) for c in classes)):
        _utf8_labels(classes)
        return "str"
    if (kind in "iub"
            # 0.0, 1.0 ... as skl2onnx does
            or kind == "f" and np.all(np.isfinite(classes))
            and np.all(classes == np.round(classes))
            or kind == "O" and all(isinstance(c, numbers.Integral)
                                   and not isinstance(c, bool)
                                   for c in classes)):
        _int64_labels(classes)
        return "int"
    # Bytes too: the graph's strings would not equal them.
    raise ValueError(
        f"Class labels must be integers or strings for an ONNX export, got "
        f"{classes.dtype} labels {classes[:3].tolist()}...; ONNX graphs "
        f"output int64 or string labels. Encode y (e.g. with LabelEncoder) "
        f"before fitting."
    )


def _shown_label(c):
    return repr(c.item() if isinstance(c, np.generic) else c)


def _int64_labels(classes):
    """``classes`` as the graph's int64 labels, exactly.

    A cast would wrap those int64 does not hold (uint64 labels from 2**63
    on, larger Python integers, floats beyond +-2**63) into other numbers:
    ValueError instead.
    """
    info = np.iinfo(np.int64)
    # int() is exact for every integer and integral float.
    labels = [int(c) for c in classes]
    for c, label in zip(classes, labels):
        if not info.min <= label <= info.max:
            raise ValueError(
                f"Class label {_shown_label(c)} cannot be exported to ONNX: "
                f"the graph outputs int64 labels, which hold {info.min} to "
                f"{info.max} (-2**63 to 2**63 - 1). Encode y (e.g. with "
                f"LabelEncoder, or as strings) before fitting."
            )
    return np.array(labels, dtype=np.int64)


def _utf8_labels(classes):
    """Check that each string label encodes as UTF-8, as ONNX strings do."""
    for c in classes:
        try:
            str(c).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"Class label {_shown_label(c)} cannot be exported to ONNX: "
                f"the graph's string labels are UTF-8, which cannot encode "
                f"its lone surrogate characters. Encode y (e.g. with "
                f"LabelEncoder) before fitting."
            ) from None


def _layout(est):
    """How the graph reads its input: ``(tokens, flat, n_steps, F)``."""
    spec = est._input_spec
    net = est._network
    tokens = net.embedding is not None
    F = 1 if tokens else net.n_features
    return tokens, spec.flat, est.n_steps, F


def _own_input_type(est):
    tokens, flat, _, F = _layout(est)
    n_in = est._input_spec.n_features_in
    if tokens:
        return Int64TensorType([None, n_in if flat else None])
    if flat:
        return FloatTensorType([None, n_in])
    return FloatTensorType([None, F, None] if est.channels_first
                           else [None, None, F])


def _sample_type(X, est):
    """The graph input type for sample ``X`` (its steps left free)."""
    try:
        X = np.asarray(X)
    except ValueError:
        X = np.asarray([], dtype=object)
    if X.dtype == object:
        raise ValueError(
            "X must be one array (n_samples, n_steps, n_features), or 2-D rows "
            "or token ids, for the graph input's type and shape; pad ragged "
            "sequences into one array (only its dtype and shape are read)."
        )
    if X.dtype == np.float32:
        cls = FloatTensorType
    elif X.dtype == np.float64:
        cls = DoubleTensorType
    elif X.dtype.kind in "iu":
        cls = Int64TensorType
    else:
        raise ValueError(f"X must be a float32, float64 or integer array for "
                         f"an ONNX export, got dtype {X.dtype}.")
    if X.ndim not in (2, 3):
        raise ValueError(f"X must be 2-D or 3-D, got shape {X.shape}.")
    shape = [None] + list(X.shape[1:])
    if est is not None:
        tokens, flat, _, _ = _layout(est)
        if not flat:            # 3-D or token sequences: any length
            shape[-1 if (est.channels_first and not tokens) else 1] = None
    return cls(shape)


# ---------------------------------------------------------------------------
# The skl2onnx hooks: shape calculators and the converter
# ---------------------------------------------------------------------------

def _check_input(est, var, n_inputs):
    tokens, flat, n_steps, F = _layout(est)
    name = type(est).__name__
    if n_inputs > 2:
        raise ValueError(f"A {name} takes X and optionally lengths, got "
                         f"{n_inputs} inputs.")
    t = var.type
    shape = list(t.shape) if t.shape is not None else None
    if tokens:
        if not isinstance(t, (Int64TensorType, Int32TensorType)):
            raise ValueError(f"This {name} reads token ids: its input must "
                             f"be an int64 tensor, got {type(t).__name__}.")
        ndim = 2
    else:
        if not isinstance(t, (FloatTensorType, DoubleTensorType)):
            raise ValueError(f"This {name} reads real values: its input must "
                             f"be a float or double tensor, got "
                             f"{type(t).__name__}.")
        ndim = 2 if flat else 3
    if shape is not None and len(shape) != ndim:
        form = ("2-D rows (n_samples, width)" if ndim == 2
                else "3-D sequences (n_samples, n_steps, n_features)")
        raise ValueError(f"This {name} was fitted on {form}; the ONNX input "
                         f"has shape {shape}.")
    if shape is not None and not tokens:
        if flat:
            width = shape[1]
            if isinstance(width, int) and width != est.n_features_in_:
                raise ValueError(f"This {name} was fitted on rows of "
                                 f"{est.n_features_in_} columns; the ONNX "
                                 f"input has {width}.")
        else:
            f = shape[1] if est.channels_first else shape[2]
            if isinstance(f, int) and f != F:
                raise ValueError(f"This {name} was fitted on {F} features "
                                 f"per step; the ONNX input has {f}.")


def _batch_dim(var):
    shape = var.type.shape
    return shape[0] if shape else None


def _classifier_shapes(operator):
    est = operator.raw_operator
    _check_convertible(est)
    _check_input(est, operator.inputs[0], len(operator.inputs))
    N = _batch_dim(operator.inputs[0])
    nocl = operator.scope_inst.get_options(est, dict(nocl=False))["nocl"]
    label = (Int64TensorType if nocl or _label_kind(est.classes_) == "int"
             else StringTensorType)
    operator.outputs[0].type = label([N])
    operator.outputs[1].type = FloatTensorType([N, len(est.classes_)])


def _regressor_shapes(operator):
    est = operator.raw_operator
    _check_convertible(est)
    _check_input(est, operator.inputs[0], len(operator.inputs))
    operator.outputs[0].type = FloatTensorType(
        [_batch_dim(operator.inputs[0]), est.n_outputs_])


class _Graph:
    """Adds nodes and constants to skl2onnx's container under unique names."""

    def __init__(self, scope, container):
        self.scope = scope
        self.container = container

    def name(self, base):
        return self.scope.get_unique_variable_name(base)

    def const(self, base, value, dtype=None):
        a = np.asarray(value, dtype=dtype)
        onnx_type = {np.dtype(np.float32): TensorProto.FLOAT,
                     np.dtype(np.float64): TensorProto.DOUBLE,
                     np.dtype(np.int64): TensorProto.INT64,
                     np.dtype(np.int32): TensorProto.INT32}.get(a.dtype)
        name = self.name(base)
        if onnx_type is None:           # strings
            self.container.add_initializer(name, TensorProto.STRING,
                                           list(a.shape),
                                           [s.encode("utf-8") for s in a.ravel()])
        else:
            self.container.add_initializer(name, onnx_type, list(a.shape),
                                           a.ravel().tolist())
        return name

    def op(self, op_type, inputs, out=None, n_out=1, **attrs):
        """Add one node; return its output name (a list of names for
        ``n_out > 1``)."""
        if out is None:
            out = [self.name(op_type.lower()) for _ in range(n_out)]
        elif isinstance(out, str):
            out = [out]
        self.container.add_node(
            op_type, inputs, out,
            name=self.scope.get_unique_operator_name(op_type), **attrs)
        return out[0] if len(out) == 1 else out

    def cast(self, x, to):
        return self.op("Cast", [x], to=to)


def _convert(scope, operator, container):
    est = operator.raw_operator
    g = _Graph(scope, container)
    net = est._network
    tokens, flat, n_steps, F = _layout(est)
    x = operator.inputs[0].full_name
    in_type = operator.inputs[0].type

    # 1. The input as (N, T, F) (ids: (N, T)), in its own dtype so that the
    # mask is compared as the estimator compares it.
    if not tokens:
        x = _to_steps(g, x, flat, n_steps, F, est.channels_first)
    elif isinstance(in_type, Int32TensorType):
        x = g.cast(x, TensorProto.INT64)

    # 2. Lengths: given, found from the mask (data shifted to step 0), or
    # none (every sequence fills the T steps).
    lengths = None
    if len(operator.inputs) == 2:
        lengths = g.cast(operator.inputs[1].full_name, TensorProto.INT64)
    elif est.mask_value is not None:
        x, lengths = _align(g, x, est.mask_value, tokens, in_type)

    # 3. Embedding lookup, or float32 values.
    if tokens:
        x = _embed(g, x, lengths, est)
    elif not isinstance(in_type, FloatTensorType):
        x = g.cast(x, TensorProto.FLOAT)
    seq_lens = [] if lengths is None else [g.cast(lengths, TensorProto.INT32)]

    # 4. The recurrent layers, time-major.
    x = g.op("Transpose", [x], perm=[1, 0, 2])
    D = net.n_directions
    n_layers = len(net.layers)
    for l, layer in enumerate(net.layers):
        unit = layer[0]
        W, R, B = _onnx_weights(layer)
        attrs = dict(hidden_size=unit.n_hidden,
                     direction="bidirectional" if D == 2 else "forward")
        if unit.cell == "rnn":
            attrs["activations"] = [_ACTIVATION[unit.activation]] * D
        elif unit.cell == "gru":
            attrs["linear_before_reset"] = 1
        inputs = [x, g.const("W", W), g.const("R", R), g.const("B", B)] + seq_lens
        if l < n_layers - 1:
            y = g.op(_OP_TYPE[unit.cell], inputs, **attrs)   # (T, D, N, H)
            y = g.op("Transpose", [y], perm=[0, 2, 1, 3])
            x = g.op("Reshape", [y, g.const("shape", [0, 0, D * unit.n_hidden],
                                            np.int64)])
        else:
            # Y is named though unused: skl2onnx's graph sort refuses empty
            # output names.
            y_h = g.op(_OP_TYPE[unit.cell], inputs, n_out=2, **attrs)[1]  # (D, N, H)
            y_h = g.op("Transpose", [y_h], perm=[1, 0, 2])
            features = g.op("Reshape", [y_h, g.const("shape", [0, D * unit.n_hidden],
                                                     np.int64)])

    # 5. The head and the outputs.
    head = net.head_params
    Z = g.op("Gemm", [features, g.const("head_W", head["W"].astype(np.float32)),
                      g.const("head_b", head["b"].astype(np.float32))])
    if is_classifier(est):
        label_out, proba_out = (v.full_name for v in operator.outputs[:2])
        g.op("Softmax", [Z], out=proba_out, axis=1)
        # skl2onnx's "nocl": labels as class indices 0 to n_classes - 1.
        nocl = g.scope.get_options(est, dict(nocl=False))["nocl"]
        if nocl:
            g.op("ArgMax", [Z], out=label_out, axis=1, keepdims=0)
            return
        best = g.op("ArgMax", [Z], axis=1, keepdims=0)
        if _label_kind(est.classes_) == "int":
            classes = g.const("classes", _int64_labels(est.classes_))
        else:
            classes = g.const("classes", np.asarray(est.classes_).astype(str))
        g.op("Gather", [classes, best], out=label_out, axis=0)
    else:
        g.op("Identity", [Z], out=operator.outputs[0].full_name)


def _to_steps(g, x, flat, n_steps, F, channels_first):
    """Real-valued input in the estimators' reading, as ``(N, T, F)``."""
    if flat:
        if n_steps is None:                         # univariate rows
            return g.op("Unsqueeze", [x, g.const("axis2", [2], np.int64)])
        if channels_first:
            x = g.op("Reshape", [x, g.const("shape", [0, F, -1], np.int64)])
            return g.op("Transpose", [x], perm=[0, 2, 1])
        return g.op("Reshape", [x, g.const("shape", [0, -1, F], np.int64)])
    if channels_first:
        return g.op("Transpose", [x], perm=[0, 2, 1])
    return x


def _from_steps(g, x, flat, n_steps, F, channels_first, width):
    """Inverse of :func:`_to_steps`: ``(N, T, F)`` back to the input's layout."""
    if channels_first:
        x = g.op("Transpose", [x], perm=[0, 2, 1])
    if flat:
        x = g.op("Reshape", [x, g.const("shape", [0, width], np.int64)])
    return x


def _padding(g, x, mask_value, dtype):
    """``(N, T)`` bool: steps of ``x (N, T, F)`` whose features all equal
    ``mask_value`` (are all NaN for NaN)."""
    if np.isnan(mask_value):
        differs = g.op("Not", [g.op("IsNaN", [x])])
    else:
        differs = g.op("Not", [g.op("Equal", [x, g.const("mask", [mask_value],
                                                         dtype)])])
    n_diff = g.op("ReduceSum", [g.cast(differs, TensorProto.INT64),
                                g.const("axis2", [2], np.int64)], keepdims=0)
    return g.op("Equal", [n_diff, g.const("zero", [0], np.int64)])


def _steps(g, x):
    """``(T, [0, 1, ..., T - 1])``, T being the length of ``x``'s axis 1."""
    T = g.op("Gather", [g.op("Shape", [x]), g.const("one", 1, np.int64)], axis=0)
    return T, g.op("Range", [g.const("zero", 0, np.int64), T,
                             g.const("one", 1, np.int64)])


def _align(g, x, mask_value, tokens, in_type):
    """Steps that are not padding moved to the front; ``(x, lengths)``.

    A step is padding when every feature equals ``mask_value`` (is NaN for
    NaN); each sequence's data start at its first valid step, as
    :func:`seqclf._sequences.apply_mask` does.
    """
    if tokens:
        valid = g.op("Not", [g.op("Equal", [x, g.const(
            "mask", [int(mask_value)], np.int64)])])
    else:
        dtype = np.float32 if isinstance(in_type, FloatTensorType) else np.float64
        valid = g.op("Not", [_padding(g, x, mask_value, dtype)])
    valid = g.cast(valid, TensorProto.INT64)                    # (N, T)
    lengths = g.op("ReduceSum", [valid, g.const("axis1", [1], np.int64)],
                   keepdims=0)
    first = g.op("ArgMax", [valid], axis=1, keepdims=1)         # (N, 1)
    T, steps = _steps(g, x)
    last = g.op("Sub", [T, g.const("one", 1, np.int64)])
    idx = g.op("Min", [g.op("Add", [first, steps]), last])     # (N, T)
    if not tokens:
        idx = g.op("Expand", [g.op("Unsqueeze", [idx, g.const("axis2", [2], np.int64)]),
                              g.op("Shape", [x])])
    x = g.op("GatherElements", [x, idx], axis=1)
    return x, lengths


def _embed(g, ids, lengths, est):
    """The embedding rows of ``ids (N, T)``, as float32 ``(N, T, D)``."""
    net = est._network
    n_rows = net.embedding.shape[0]
    if lengths is not None:
        # Padding positions hold any value: read row 0 there.
        _, steps = _steps(g, ids)
        row = g.op("Unsqueeze", [steps, g.const("axis0", [0], np.int64)])
        column = g.op("Unsqueeze", [lengths, g.const("axis1", [1], np.int64)])
        inside = g.op("Less", [row, column])
        ids = g.op("Where", [inside, ids, g.const("zero", 0, np.int64)])
    if est.vocab_size is None:
        # Ids beyond the learned vocabulary read the out-of-vocabulary row.
        ids = g.op("Min", [ids, g.const("oov", est.vocab_size_, np.int64)])
    # Negative ids are errors in the estimator; Gather would read them from
    # the end. An index past the last row makes the run fail instead.
    ids = g.op("Where", [g.op("Less", [ids, g.const("zero", 0, np.int64)]),
                         g.const("n_rows", n_rows, np.int64), ids])
    E = g.const("embedding", net.embedding.astype(np.float32))
    return g.op("Gather", [E, ids], axis=0)


def _onnx_weights(layer):
    """ONNX's ``W (D, G, F)``, ``R (D, G, H)`` and ``B (D, 2G)`` of a layer."""
    Ws, Rs, Bs = [], [], []
    for unit in layer:
        p, H = unit.params, unit.n_hidden
        order = np.concatenate([np.arange(k * H, (k + 1) * H)
                                for k in _GATE_ORDER[unit.cell]])
        Ws.append(p["W"][:, order].T)
        Rs.append(p["U"][:, order].T)
        if unit.cell == "gru":
            Bs.append(np.concatenate([p["b_ih"][order], p["b_hh"][order]]))
        else:
            Bs.append(np.concatenate([p["b"][order], np.zeros_like(p["b"])]))
    as32 = lambda arrays: np.ascontiguousarray(np.stack(arrays), dtype=np.float32)
    return as32(Ws), as32(Rs), as32(Bs)


# ---------------------------------------------------------------------------
# SequenceScaler
# ---------------------------------------------------------------------------

def _scaler_shapes(operator):
    scaler = operator.raw_operator
    check_is_fitted(scaler)
    t = operator.inputs[0].type
    if not isinstance(t, (FloatTensorType, DoubleTensorType)):
        raise ValueError(f"SequenceScaler's ONNX input must be a float or "
                         f"double tensor, got {type(t).__name__}.")
    ndim = 2 if scaler._spec.flat else 3
    if t.shape is not None and len(t.shape) != ndim:
        raise ValueError(f"This SequenceScaler was fitted on "
                         f"{ndim}-D input; the ONNX input has shape "
                         f"{list(t.shape)}.")
    operator.outputs[0].type = type(t)(t.shape)


def _convert_scaler(scope, operator, container):
    """``(x - mean_) / scale_`` per feature; padding steps kept as they are."""
    scaler = operator.raw_operator
    g = _Graph(scope, container)
    t = operator.inputs[0].type
    dtype = np.float32 if isinstance(t, FloatTensorType) else np.float64
    spec = scaler._spec
    F = spec.n_step_features
    x = g.op("Identity", [operator.inputs[0].full_name])
    x3 = _to_steps(g, x, spec.flat, scaler.n_steps, F, scaler.channels_first)
    out = g.op("Div", [g.op("Sub", [x3, g.const("mean", scaler.mean_, dtype)]),
                       g.const("scale", scaler.scale_, dtype)])
    mv = scaler.mask_value
    if mv is not None and not np.isnan(mv):
        # NaN padding stays NaN by itself; other padding values are kept.
        pad2 = _padding(g, x3, mv, dtype)
        axis2 = g.const("axis2", [2], np.int64)
        out = g.op("Where", [g.op("Unsqueeze", [pad2, axis2]), x3, out])
        with np.errstate(over="ignore"):
            mask = dtype(mv)
        if np.isfinite(mask):
            # As SequenceScaler does: a data step that scales onto the mask
            # value in every feature moves one unit in the last place off
            # it, so that the estimator after it reads data.
            hit = g.op("And", [g.op("Not", [pad2]), _padding(g, out, mv, dtype)])
            off = np.nextafter(mask, dtype(np.inf))
            out = g.op("Where", [g.op("Unsqueeze", [hit, axis2]),
                                 g.const("off_mask", [off], dtype), out])
    out = _from_steps(g, out, spec.flat, scaler.n_steps, F,
                      scaler.channels_first, spec.n_features_in)
    g.op("Identity", [out], out=operator.outputs[0].full_name)


update_registered_converter(
    SequenceScaler, "SeqclfSequenceScaler", _scaler_shapes, _convert_scaler)
update_registered_converter(
    RNNClassifier, "SeqclfRNNClassifier", _classifier_shapes, _convert,
    options={"zipmap": [True, False, "columns"], "nocl": [False, True]})
update_registered_converter(
    RNNRegressor, "SeqclfRNNRegressor", _regressor_shapes, _convert)
