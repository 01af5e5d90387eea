"""Turn the sequence inputs users give into what the network runs on.

Users give a 3-D array ``(n_samples, n_steps, n_features)``, a 2-D array
(flattened step-major sequences, or univariate sequences) or a list of 2-D
arrays of different lengths, possibly padded with a mask value at the start
or the end. The network runs on one C-contiguous float array
``(n_samples, max_steps, n_features)`` holding every sequence from position 0
(post-padded) and their lengths. This module does that conversion and its
checks; it knows nothing of estimators.
"""

import math
import numbers

import numpy as np


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


def is_nan(value):
    """Whether a real number is NaN (Python ints of any size are not)."""
    return not isinstance(value, numbers.Integral) and math.isnan(float(value))


def mask_scalar(mask_value, dtype):
    """``mask_value`` as a scalar of ``dtype``; ValueError if not held exactly.

    A value the dtype cannot hold (0.1 in float16 or float32, 0.5 in an
    integer dtype, 2**70 + 1 in float64) would mark nothing as padding, or
    the wrong steps after rounding.
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
        # Python compares ints and floats exactly.
        if exact is not None and float(exact) != value:
            exact = None
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
            f"dtype of X: it would mark no step, or the wrong ones, as "
            f"padding. Pad with a value that {dtype} holds exactly (e.g. 0, "
            f"-1 or NaN) and set mask_value to it."
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


def reshape_2d(X, n_steps):
    """View a 2-D ``(n_samples, width)`` array as ``(n_samples, T, F)``.

    With ``n_steps`` set the rows are step-major: ``F = width / n_steps``.
    Without it each row is a univariate sequence (``F = 1``).
    """
    n, width = X.shape
    if n_steps is None:
        return X.reshape(n, width, 1)
    if not isinstance(n_steps, numbers.Integral) or width % n_steps:
        raise ValueError(
            f"X has {width} columns, which is not a multiple of n_steps="
            f"{n_steps}: a 2-D X holds n_steps * n_features values per row, "
            f"step by step."
        )
    return X.reshape(n, n_steps, width // n_steps)
