"""Stochastic optimizers stepping one flat parameter vector in place.

An optimizer holds only its state (the moments or velocity, the step count
and its settings), never the parameters: each update takes the array it
steps, as scikit-learn's ``_stochastic_optimizers`` do. The state arrays
are made zero on construction, of the shape and dtype of the parameters they
are for, so that a pickled or checkpointed optimizer carries no weights and
needs nothing re-pointed when the network's arrays are rebuilt.

The network keeps all its parameters in one contiguous vector (the arrays
users see are views into it), so a dense update is one compiled pass over
that vector (seqclf._updates), whatever the number of layers, with the float
operations of the NumPy expressions in the docstrings. Each optimizer has a
``kind`` and hands its constants to those passes (``settings``), which the
training plan (seqclf._plan) runs too; it owns its step count ``t``, which
the plan moves with :meth:`_Optimizer.advance`.

An embedding matrix gets its own optimizer and sparse gradients: its
``update_rows`` steps only the rows a batch touched, leaving the others and
their optimizer state as they are ("lazy" updates, as TensorFlow's
``LazyAdam`` and PyTorch's ``SparseAdam``). A dense step would move every
row through its momentum at every batch, a cost that grows with the
vocabulary, not with the batch; rows seen in a batch get exactly the dense
update when the others' moments are zero, and Adam's bias correction counts
all steps.
"""

import numpy as np

from . import _updates
from ._ownership import owned


class _Optimizer:
    """What the optimizers share: the step count and the checks of an
    update; subclasses name their ``kind`` and the state arrays
    (``_state_names``) and give their ``settings``: the steps themselves
    are compiled (seqclf._updates).
    """

    _state_names = ()
    kind = None

    def __init__(self):
        self.t = 0

    def settings(self):
        """``(kind, learning_rate, beta_1, beta_2, epsilon, momentum,
        nesterov)``: what the compiled steps take (the other solver's
        constants zero)."""
        raise NotImplementedError

    def advance(self, n_steps):
        """Count ``n_steps`` steps taken on this optimizer's state (by the
        training plan)."""
        self.t += int(n_steps)

    def update(self, params, grad, n_threads=1):
        """Apply one step to ``params`` in place.

        Parameters
        ----------
        params : ndarray of shape ``shape``
            C-contiguous; updated in place.
        grad : ndarray of shape ``shape``
            The gradient of the loss at ``params``, C-contiguous.
        n_threads : int, default=1
            Threads of the update (elementwise: the result does not depend
            on them).
        """
        self._check(params)
        for name, a in (("params", params), ("grad", grad)):
            if (not isinstance(a, np.ndarray) or a.shape != params.shape
                    or a.dtype != params.dtype or not a.flags.c_contiguous):
                raise ValueError(
                    f"{name} must be a C-contiguous array of shape "
                    f"{params.shape} and dtype {params.dtype}.")
        if not params.flags.writeable:
            raise ValueError("params must be writeable.")
        _updates.dense_update(int(n_threads), self.settings(), self.t,
                              params.reshape(-1), grad.reshape(-1),
                              *(None if a is None else a.reshape(-1)
                                for a in self._padded_state()))
        self.t += 1

    def state(self):
        """The state arrays (Adam's ``(m, v)``, SGD's ``(velocity,)``)."""
        return tuple(getattr(self, name) for name in self._state_names)

    def own_state(self):
        """Copy the state arrays that do not own their memory (a loaded
        optimizer's may be views of a memory map or of pickle buffers), so
        that the updates write only into memory of the optimizer's own."""
        for name in self._state_names:
            setattr(self, name, owned(getattr(self, name)))

    def update_rows(self, params, rows, grad):
        """Step only ``params[rows]`` in place, and only their state (lazy).

        The state of the other rows is left as it is; the step count (and
        so Adam's bias correction) counts every update.

        Parameters
        ----------
        params : ndarray of shape ``shape``, 2-D
            An embedding matrix, updated in place.
        rows : ndarray of int
            Distinct row indices.
        grad : ndarray of shape (len(rows), shape[1])
            The gradient of those rows.
        """
        self._check(params)
        if params.ndim != 2 or not params.flags.c_contiguous:
            raise ValueError("params must be a C-contiguous matrix.")
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        grad = np.ascontiguousarray(grad, dtype=params.dtype)
        if (rows.ndim != 1 or grad.shape != (len(rows), params.shape[1])
                or (len(rows) and (rows.min() < 0 or rows.max() >= len(params)
                                   or np.any(np.diff(np.sort(rows)) == 0)))):
            raise ValueError(
                f"rows must be distinct indices into the {len(params)} rows "
                f"and grad of shape (len(rows), {params.shape[1]}).")
        _updates.rows_update(self.settings(), self.t, params, rows, grad,
                             *self._padded_state())
        self.t += 1

    def _padded_state(self):
        # The compiled steps take two state arrays; SGD's second is None.
        m, *v = self.state()
        return (m, v[0] if v else None)

    def _check(self, params):
        # The state is kept for one shape and dtype: a mismatch would
        # broadcast silently or round the step in another precision.
        state = getattr(self, self._state_names[0])
        if (not isinstance(params, np.ndarray) or params.shape != state.shape
                or params.dtype != state.dtype):
            raise ValueError(
                f"{type(self).__name__} holds the state of parameters of shape "
                f"{state.shape} and dtype {state.dtype}, got an array of shape "
                f"{getattr(params, 'shape', None)} and dtype "
                f"{getattr(params, 'dtype', None)}."
            )

    def __setstate__(self, state):
        # Pickles of versions that held the parameters or a scratch buffer
        # carry them: dropped.
        self.__dict__.update({k: v for k, v in state.items()
                              if k not in ("params", "_tmp")})


class SGDOptimizer(_Optimizer):
    """Stochastic gradient descent with (optionally Nesterov) momentum.

    Same update as scikit-learn's ``MLPClassifier(solver="sgd")`` with a
    constant learning rate::

        v = momentum * v - lr * g
        p += momentum * v - lr * g     (Nesterov)
        p += v                         (classical)

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the parameters this optimizer steps.
    dtype : dtype, default=np.float64
        Their dtype; the velocity has the same.
    learning_rate : float, default=0.001
    momentum : float, default=0.9
    nesterov : bool, default=True

    Attributes
    ----------
    velocity : ndarray of shape ``shape``
        Zero until the first update.
    t : int
        Updates made.
    """

    def __init__(self, shape, dtype=np.float64, learning_rate=0.001,
                 momentum=0.9, nesterov=True):
        super().__init__()
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros(shape, dtype=dtype)

    _state_names = ("velocity",)

    kind = "sgd"

    def settings(self):
        return ("sgd", float(self.learning_rate), 0.0, 0.0, 0.0,
                float(self.momentum), bool(self.nesterov))


class AdamOptimizer(_Optimizer):
    """Adam (Kingma & Ba, 2015), as in Keras and scikit-learn's MLP.

    ::

        m = beta_1 m + (1 - beta_1) g
        v = beta_2 v + (1 - beta_2) g^2
        lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
        p -= lr_t m / (sqrt(v) + epsilon)

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the parameters this optimizer steps.
    dtype : dtype, default=np.float64
        Their dtype; the moments have the same.
    learning_rate : float, default=0.001
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8

    Attributes
    ----------
    m, v : ndarray of shape ``shape``
        First and second moments, zero until the first update.
    t : int
        Updates made (the bias correction's step).
    """

    def __init__(self, shape, dtype=np.float64, learning_rate=0.001,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__()
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.m = np.zeros(shape, dtype=dtype)
        self.v = np.zeros(shape, dtype=dtype)

    _state_names = ("m", "v")

    kind = "adam"

    def settings(self):
        return ("adam", float(self.learning_rate), float(self.beta_1),
                float(self.beta_2), float(self.epsilon), 0.0, False)


def make_optimizer(solver, shape, dtype, *, learning_rate, beta_1=0.9,
                   beta_2=0.999, epsilon=1e-8, momentum=0.9, nesterov=True):
    """Build the optimizer named ``solver`` for parameters of ``shape``, ``dtype``.

    Parameters
    ----------
    solver : {"adam", "sgd"}
    shape : int or tuple of int
    dtype : dtype
    learning_rate, beta_1, beta_2, epsilon, momentum, nesterov
        The optimizer's settings; those of the other solver are ignored.

    Returns
    -------
    optimizer : AdamOptimizer or SGDOptimizer
    """
    if solver == "adam":
        return AdamOptimizer(shape, dtype, learning_rate, beta_1, beta_2, epsilon)
    if solver == "sgd":
        return SGDOptimizer(shape, dtype, learning_rate, momentum, nesterov)
    raise ValueError(f"solver must be 'adam' or 'sgd', got {solver!r}.")
