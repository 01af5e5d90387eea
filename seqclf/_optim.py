"""Stochastic optimizers updating one flat parameter vector in place.

The network keeps all its parameters in one contiguous vector (the arrays
users see are views into it), so an update is a handful of whole-vector
NumPy operations written into preallocated buffers, whatever the number of
layers.

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


class SGDOptimizer:
    """Stochastic gradient descent with (optionally Nesterov) momentum.

    Same update as scikit-learn's ``MLPClassifier(solver="sgd")`` with a
    constant learning rate::

        v = momentum * v - lr * g
        p += momentum * v - lr * g     (Nesterov)
        p += v                         (classical)

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        Parameters, updated in place.
    learning_rate : float
    momentum : float
    nesterov : bool
    """

    def __init__(self, params, learning_rate=0.001, momentum=0.9, nesterov=True):
        self.params = params
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros_like(params)
        self._tmp = None                    # made at the first dense update
        self.t = 0

    def update(self, grad):
        """Apply one step with the gradient ``grad`` (same shape as params)."""
        lr, mu = self.params.dtype.type(self.learning_rate), self.params.dtype.type(self.momentum)
        if self._tmp is None:
            self._tmp = np.empty_like(self.params)
        v, tmp = self.velocity, self._tmp
        np.multiply(grad, -lr, out=tmp)          # -lr * g
        v *= mu
        v += tmp                                 # v = mu v - lr g
        if self.nesterov:
            self.params += tmp
            np.multiply(v, mu, out=tmp)
            self.params += tmp
        else:
            self.params += v
        self.t += 1

    def update_rows(self, rows, grad):
        """Step only ``params[rows]``, whose gradient is ``grad``.

        ``params`` is 2-D here (an embedding matrix), ``rows`` distinct.
        """
        lr, mu = self.params.dtype.type(self.learning_rate), self.params.dtype.type(self.momentum)
        step = grad * -lr
        v = self.velocity[rows]
        v *= mu
        v += step
        self.velocity[rows] = v
        if self.nesterov:
            step += mu * v
            self.params[rows] += step
        else:
            self.params[rows] += v
        self.t += 1


class AdamOptimizer:
    """Adam (Kingma & Ba, 2015), as in Keras and scikit-learn's MLP.

    ::

        m = beta_1 m + (1 - beta_1) g
        v = beta_2 v + (1 - beta_2) g^2
        lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
        p -= lr_t m / (sqrt(v) + epsilon)

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        Parameters, updated in place.
    learning_rate, beta_1, beta_2, epsilon : float
    """

    def __init__(self, params, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        self.params = params
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self._tmp = None                    # made at the first dense update
        self.t = 0

    def update(self, grad):
        """Apply one step with the gradient ``grad`` (same shape as params)."""
        self.t += 1
        f = self.params.dtype.type
        b1, b2 = self.beta_1, self.beta_2
        if self._tmp is None:
            self._tmp = np.empty_like(self.params)
        m, v, tmp = self.m, self.v, self._tmp
        m *= f(b1)
        np.multiply(grad, f(1 - b1), out=tmp)
        m += tmp
        v *= f(b2)
        np.multiply(grad, grad, out=tmp)
        tmp *= f(1 - b2)
        v += tmp
        lr_t = self.learning_rate * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        np.sqrt(v, out=tmp)
        tmp += f(self.epsilon)
        np.divide(m, tmp, out=tmp)
        tmp *= f(-lr_t)
        self.params += tmp

    def update_rows(self, rows, grad):
        """Step only ``params[rows]``, whose gradient is ``grad`` (lazy Adam).

        ``params`` is 2-D here (an embedding matrix), ``rows`` distinct.
        The moments of the other rows are left as they are.
        """
        self.t += 1
        f = self.params.dtype.type
        b1, b2 = self.beta_1, self.beta_2
        m = self.m[rows]
        m *= f(b1)
        m += f(1 - b1) * grad
        v = self.v[rows]
        v *= f(b2)
        v += f(1 - b2) * (grad * grad)
        self.m[rows] = m
        self.v[rows] = v
        lr_t = self.learning_rate * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        step = np.sqrt(v)
        step += f(self.epsilon)
        np.divide(m, step, out=step)
        step *= f(-lr_t)
        self.params[rows] += step


def make_optimizer(solver, params, *, learning_rate, beta_1=0.9, beta_2=0.999,
                   epsilon=1e-8, momentum=0.9, nesterov=True):
    """Build the optimizer named ``solver`` ("adam" or "sgd") for ``params``."""
    if solver == "adam":
        return AdamOptimizer(params, learning_rate, beta_1, beta_2, epsilon)
    if solver == "sgd":
        return SGDOptimizer(params, learning_rate, momentum, nesterov)
    raise ValueError(f"solver must be 'adam' or 'sgd', got {solver!r}.")
