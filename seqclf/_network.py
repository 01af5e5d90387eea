"""The recurrent network behind the estimators: no scikit-learn in here.

A :class:`RecurrentNetwork` is a stack of recurrent layers (each one or two
directions, each direction a *unit* running one kernel), a head on the last
layer's final states, and a loss. It owns

* the parameters, all in one flat vector ``coefs`` (the per-layer arrays are
  C-contiguous views into it, in the kernels' layout), and the gradient
  vector ``grads`` of the same layout, so that optimizers, clipping and the
  L2 penalty work on one array. An embedding front (token-id input) is the
  exception: its matrix leads ``coefs`` but its gradient is kept sparse, as
  the rows a batch touches (``embedding_grad``), since a batch sees few of
  a vocabulary's rows;
* the workspaces of a training step (caches kept for BPTT, dropout masks,
  gradients flowing between layers), allocated once and reused batch after
  batch.

Shapes follow the kernels: a batch is ``X (N, T, F)`` with ``lengths (N,)``,
positions at or past a sequence's length being padding. Every kernel call
gets an explicit ``n_threads``; the caller limits BLAS to one thread around
the calls (the kernels call single-threaded BLAS from their own threads, and
the head's products and the gradient norm then do not depend on the BLAS
thread count either).
"""

import math

import numpy as np

from . import _layers, _train
from ._cells import CELLS, check_cell, param_shapes
from ._ownership import owned

# Whether training runs the compiled loop of seqclf._train where it applies
# (see RecurrentNetwork.trainer). False runs every mini-batch through
# train_step and the estimator's loop: the reference path, which tests
# compare the loop with and into which they inject faults.
COMPILED_LOOP = True


class _Workspace:
    """Reusable flat buffers handed out as C-contiguous views of any shape.

    The views are kept too, so that a batch of a shape seen before gets its
    arrays by one lookup; those of a buffer are dropped when it grows.
    """

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self._buffers = {}
        self._views = {}

    def get(self, key, shape, dtype=None):
        """A view of ``shape`` (of the workspace's dtype unless ``dtype``)."""
        view = self._views.get((key, shape, dtype))
        if view is not None:
            return view
        dt = self.dtype if dtype is None else np.dtype(dtype)
        size = math.prod(shape)
        buf = self._buffers.get((key, dt.char))
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dt)
            self._buffers[(key, dt.char)] = buf
            self._views = {k: v for k, v in self._views.items()
                           if k[0] != key or v.dtype != dt}
        view = buf[:size].reshape(shape)
        self._views[(key, shape, dtype)] = view
        return view


class _Unit:
    """One direction of one recurrent layer: its parameters and gradients.

    ``params`` and ``grads`` are views into the network's flat vectors,
    keyed as :func:`seqclf._cells.param_shapes`; :mod:`seqclf._layers` runs
    the unit's kernels.
    """

    def __init__(self, cell, n_in, n_hidden, reverse, activation):
        self.cell = cell
        self.n_in = n_in
        self.n_hidden = n_hidden
        self.reverse = reverse
        self.activation = activation
        self.code = _layers._kernel_code(cell, activation)
        self.params = {}
        self.grads = {}

    def forward(self, X, lengths, *, training=True, return_sequences=True,
                mask=None, out=None, n_threads=1):
        """``(h_last, h_seq, cache)`` of :func:`seqclf._layers.forward`."""
        return _layers.forward(
            self.cell, X, lengths, self.params, mask=mask,
            reverse=self.reverse, activation=self.activation,
            training=training, return_sequences=return_sequences, out=out,
            n_threads=n_threads)

    def train_forward(self, X, lengths, mask, h_last, cache, n_threads):
        """Training forward into ``h_last`` and ``cache``, unchecked: the
        network's own arrays (see :func:`seqclf._layers.forward_unchecked`)."""
        _layers.forward_unchecked(self.code, self.cell, self.reverse, n_threads,
                                  X, lengths, self.params, mask, h_last, cache)

    def train_backward(self, X, lengths, cache, dh_last, dh_seq, mask, dX,
                       n_threads):
        """BPTT into ``self.grads`` (and ``dX`` unless None), unchecked."""
        _layers.backward_unchecked(self.code, self.cell, self.reverse,
                                   n_threads, X, lengths, self.params, cache,
                                   dh_last, dh_seq, mask, self.grads, dX)

    def backward(self, X, lengths, cache, dh_last, dh_seq, *, mask=None,
                 dX=None, n_threads=1):
        """BPTT into ``self.grads``; writes ``dX`` when it is given."""
        out = {"d" + k: g for k, g in self.grads.items()}
        if dX is not None:
            out["dX"] = dX
        _layers.backward(
            self.cell, X, lengths, self.params, cache, dh_last, dh_seq,
            mask=mask, reverse=self.reverse, activation=self.activation,
            compute_dX=dX is not None, out=out, n_threads=n_threads)


class DenseHead:
    """Affine map of the final states to the outputs: ``Z = A W + b``."""

    def __init__(self, n_in, n_out):
        self.n_in = n_in
        self.n_out = n_out

    def param_shapes(self):
        return {"W": (self.n_in, self.n_out), "b": (self.n_out,)}

    def initialize(self, params, rng):
        limit = np.sqrt(6.0 / (self.n_in + self.n_out))      # Glorot uniform
        _uniform_into(params["W"], -limit, limit, rng)
        params["b"][...] = 0

    def forward(self, params, A):
        Z = A @ params["W"]
        Z += params["b"]
        return Z

    def backward(self, params, grads, A, dZ):
        """Write the parameter gradients; return the gradient w.r.t. ``A``."""
        np.matmul(A.T, dZ, out=grads["W"])
        np.sum(dZ, axis=0, out=grads["b"])
        return dZ @ params["W"].T


class SoftmaxCrossEntropy:
    """Softmax over the outputs and the (sample-weighted) mean log-loss.

    ``y`` holds class indices. The mean is ``sum(w * loss) / sum(w)`` as in
    scikit-learn's MLP, so that integer weights equal repeated samples.
    """

    @staticmethod
    def predict(Z):
        """Class probabilities from the outputs ``Z`` (in place)."""
        Z -= Z.max(axis=1, keepdims=True)
        np.exp(Z, out=Z)
        Z /= Z.sum(axis=1, keepdims=True)
        return Z

    @staticmethod
    def loss_gradient(Z, y, sample_weight, weight_sum):
        """Return ``(loss, dZ)``: the mean loss and its gradient w.r.t. ``Z``."""
        n = Z.shape[0]
        Z = Z - Z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(Z).sum(axis=1))
        log_p = Z[np.arange(n), y] - log_norm
        dZ = np.exp(Z - log_norm[:, None])                 # softmax
        dZ[np.arange(n), y] -= 1
        if sample_weight is None:
            loss = -float(np.sum(log_p, dtype=np.float64)) / weight_sum
            dZ /= weight_sum
        else:
            loss = -float(np.dot(sample_weight, log_p)) / weight_sum
            dZ *= (sample_weight / weight_sum)[:, None].astype(dZ.dtype)
        return loss, dZ


class SquaredError:
    """Half the (sample-weighted) mean squared error: ``MLPRegressor``'s loss.

    ``y`` holds the targets ``(N, n_outputs)`` in the outputs' dtype. The
    loss is ``0.5 * sum_i w_i * mean_k (y_ik - z_ik)^2 / sum_i w_i``, the
    sums accumulated in float64.
    """

    @staticmethod
    def predict(Z):
        """The outputs are the predictions."""
        return Z

    @staticmethod
    def loss_gradient(Z, y, sample_weight, weight_sum):
        """Return ``(loss, dZ)``: the mean loss and its gradient w.r.t. ``Z``."""
        dZ = Z - y
        per_sample = np.einsum("ij,ij->i", dZ, dZ, dtype=np.float64)
        scale = 1.0 / (Z.shape[1] * weight_sum)
        if sample_weight is None:
            loss = 0.5 * scale * float(np.sum(per_sample))
            dZ *= dZ.dtype.type(scale)
        else:
            loss = 0.5 * scale * float(np.dot(sample_weight, per_sample))
            dZ *= (sample_weight * scale)[:, None].astype(dZ.dtype)
        return loss, dZ


class RecurrentNetwork:
    """Stacked, optionally bidirectional recurrent layers with a head.

    Parameters
    ----------
    cells : sequence of {"rnn", "gru", "lstm"}
        Cell of each layer, first layer first.
    hidden_sizes : sequence of int
        Units of each layer (per direction).
    n_features : int
        Features per step of the input.
    n_outputs : int
        Outputs of the head.
    activation : {"tanh", "relu"}, default="tanh"
        Nonlinearity of the ``"rnn"`` layers.
    bidirectional : bool, default=False
        Run every layer in both directions and concatenate their outputs
        (forward first).
    dtype : {numpy.float32, numpy.float64}, default=numpy.float64
    head : object, default=None
        Maps the last layer's final states to outputs (``param_shapes``,
        ``initialize``, ``forward``, ``backward``); a :class:`DenseHead`
        by default.
    loss : object, default=None
        ``loss_gradient(Z, y, sample_weight, weight_sum)`` and
        ``predict(Z)``: :class:`SoftmaxCrossEntropy` by default, or
        :class:`SquaredError`.
    n_tokens : int, default=None
        With ``n_tokens`` set, the input is token ids ``X (N, T)`` (intp) and
        an embedding matrix of ``n_tokens`` rows and ``n_features`` columns
        maps each id to the first layer's input vector.
    coefs : ndarray of shape (n_params,), default=None
        The parameter vector to run on (used as it is, not copied), of
        ``dtype`` and of the length the sizes imply; None starts from zeros
        (see :meth:`initialize`).

    Attributes
    ----------
    coefs : ndarray of shape (n_params,)
        Every parameter: the embedding matrix first (if any), then the
        recurrent layers and the head. ``embedding``,
        ``layers[l][d].params`` and ``head_params`` are views into it.
    dense_coefs : ndarray of shape (n_params - n_tokens * n_features,)
        The part of ``coefs`` after the embedding (all of it without one).
    grads : ndarray of shape (n_params - n_tokens * n_features,)
        Gradient of the last :meth:`train_step` w.r.t. ``dense_coefs``.
    embedding : ndarray of shape (n_tokens, n_features) or None
        The embedding matrix (a view into ``coefs``).
    embedding_grad : tuple of ndarray or None
        ``(rows, grad)`` after a :meth:`train_step` with an embedding: the
        distinct ids of the batch (increasing) and the gradient of those
        rows; every other row's gradient is zero.
    layers : list of list of _Unit
        ``layers[l][d]`` is direction ``d`` (0 forward, 1 backward) of
        layer ``l``.
    """

    def __init__(self, cells, hidden_sizes, n_features, n_outputs, *,
                 activation="tanh", bidirectional=False, dtype=np.float64,
                 head=None, loss=None, n_tokens=None, coefs=None):
        if len(cells) != len(hidden_sizes):
            raise ValueError("cells and hidden_sizes must have the same length.")
        self.cells = tuple(check_cell(c) for c in cells)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.n_features = int(n_features)
        self.n_outputs = int(n_outputs)
        self.activation = activation
        self.bidirectional = bool(bidirectional)
        self.dtype = np.dtype(dtype)
        self.n_directions = 2 if self.bidirectional else 1
        self.head = head if head is not None else DenseHead(
            self.n_directions * self.hidden_sizes[-1], self.n_outputs)
        self.loss = loss if loss is not None else SoftmaxCrossEntropy()
        self.n_tokens = None if n_tokens is None else int(n_tokens)
        n_params = self._n_params()
        if coefs is None:
            coefs = np.zeros(n_params, dtype=self.dtype)
        elif (not isinstance(coefs, np.ndarray) or coefs.shape != (n_params,)
                or coefs.dtype != self.dtype or not coefs.flags.c_contiguous):
            raise ValueError(
                f"coefs must be a C-contiguous {self.dtype} vector of the "
                f"{n_params:,} parameters of this network, got "
                f"{getattr(coefs, 'dtype', type(coefs).__name__)} of shape "
                f"{getattr(coefs, 'shape', None)}."
            )
        self._build(coefs)

    # -- parameters ---------------------------------------------------------

    def _layout(self):
        """``(unit key, name, shape, penalised)`` for every parameter array."""
        entries = []
        if self.n_tokens is not None:
            entries.append(("embedding", "E", (self.n_tokens, self.n_features),
                            False))
        n_in = self.n_features
        for l, (cell, H) in enumerate(zip(self.cells, self.hidden_sizes)):
            for d in range(self.n_directions):
                for name, shape in param_shapes(cell, n_in, H).items():
                    entries.append(((l, d), name, shape, name in ("W", "U")))
            n_in = self.n_directions * H
        for name, shape in self.head.param_shapes().items():
            entries.append(("head", name, shape, name == "W"))
        return entries

    def _n_params(self):
        return sum(int(np.prod(s)) for _, _, s, _ in self._layout())

    def _build(self, coefs):
        """Create the units and the views into ``coefs`` and ``grads``."""
        n_sparse = 0 if self.n_tokens is None else self.n_tokens * self.n_features
        self.coefs = coefs
        self.dense_coefs = coefs[n_sparse:]
        self.grads = np.zeros_like(self.dense_coefs)
        self.embedding = (None if self.n_tokens is None else
                          coefs[:n_sparse].reshape(self.n_tokens, self.n_features))
        self.embedding_grad = None
        self.layers = []
        n_in = self.n_features
        for cell, H in zip(self.cells, self.hidden_sizes):
            # ``activation`` applies to the cells that offer a choice; the
            # others keep their fixed nonlinearities.
            accepted = CELLS[cell].activations
            act = self.activation if len(accepted) > 1 else accepted[0]
            self.layers.append([_Unit(cell, n_in, H, bool(d), act)
                                for d in range(self.n_directions)])
            n_in = self.n_directions * H
        self.head_params, self.head_grads = {}, {}
        penalised = []
        offset = 0                              # into dense_coefs and grads
        for key, name, shape, is_penalised in self._layout():
            if key == "embedding":
                continue
            size = int(np.prod(shape))
            sl = slice(offset, offset + size)
            if is_penalised:
                penalised.append((offset, offset + size))
            offset += size
            if key == "head":
                params, grads = self.head_params, self.head_grads
            else:
                unit = self.layers[key[0]][key[1]]
                params, grads = unit.params, unit.grads
            params[name] = self.dense_coefs[sl].reshape(shape)
            grads[name] = self.grads[sl].reshape(shape)
        # [start, stop) of each penalised array in dense_coefs
        self._penalised = np.array(penalised, dtype=np.intp).reshape(-1, 2)
        self._work = _Workspace(self.dtype)

    def own_parameters(self):
        """Give the network memory of its own before training writes into it.

        A network loaded from a memory map or from pickle buffers reads its
        parameters where they lie; this copies them if the parameter
        vector does not own its memory (see :mod:`seqclf._ownership`),
        rebuilding the views, the gradient and the workspace.

        Returns
        -------
        copied : bool
        """
        coefs = owned(self.coefs)
        if coefs is self.coefs:
            return False
        self._build(coefs)
        return True

    def initialize(self, rng):
        """Draw the initial parameters as Keras does.

        Input weights Glorot-uniform, recurrent weights orthogonal (each
        ``U (H, G*H)`` has orthonormal rows), biases zero except the LSTM
        forget-gate bias, one; the embedding uniform in [-0.05, 0.05].

        Parameters
        ----------
        rng : numpy.random.RandomState or numpy.random.Generator
        """
        if self.embedding is not None:
            _uniform_into(self.embedding, -0.05, 0.05, rng)
        for layer in self.layers:
            for unit in layer:
                p = unit.params
                fan_in, fan_out = p["W"].shape
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                _uniform_into(p["W"], -limit, limit, rng)
                p["U"][...] = _orthogonal(p["U"].shape, rng)
                for name in ("b", "b_ih", "b_hh"):
                    if name in p:
                        p[name][...] = 0
                if unit.cell == "lstm":
                    H = unit.n_hidden
                    p["b"][H:2 * H] = 1                     # forget gate
        self.head.initialize(self.head_params, rng)

    def n_params_per_layer(self):
        """Parameters of each layer, both directions counted, then the head."""
        counts = [sum(p.size for u in layer for p in u.params.values())
                  for layer in self.layers]
        return counts + [sum(p.size for p in self.head_params.values())]

    def __getstate__(self):
        # The views, the gradient and the workspaces are rebuilt on load;
        # the dtype is kept by name (a plain value).
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("grads", "layers", "head_params", "head_grads",
                              "_penalised", "_work", "dense_coefs", "embedding",
                              "embedding_grad")}
        state["dtype"] = self.dtype.name
        return state

    def __setstate__(self, state):
        state = dict(state)
        coefs = state.pop("coefs")
        self.__dict__.update(state)
        self.dtype = np.dtype(self.dtype)
        self._build(coefs)

    # -- forward and backward -------------------------------------------------

    def features(self, X, lengths, n_threads=1):
        """Final states of the last layer for inference, ``(N, D * H_last)``.

        Parameters
        ----------
        X : ndarray of shape (N, T, n_features), or (N, T) token ids
            C-contiguous, of the network's dtype (intp ids with an
            embedding).
        lengths : ndarray of shape (N,), intp
        n_threads : int
        """
        N, T = X.shape[:2]
        inp = X
        if self.embedding is not None:
            inp = _layers.embedding_forward(X, lengths, self.embedding,
                                            n_threads=n_threads)
        n_layers = len(self.layers)
        for l, layer in enumerate(self.layers):
            H = layer[0].n_hidden
            last = l == n_layers - 1
            D = len(layer)
            out = np.empty((N, D * H), dtype=self.dtype) if last else None
            seq_out = None if last else np.empty((N, T, D * H), dtype=self.dtype)
            for d, unit in enumerate(layer):
                # One direction writes the layer's output sequence directly.
                h_out = {} if last or D == 2 else {"h_seq": seq_out}
                h_last, h_seq, _ = unit.forward(
                    inp, lengths, training=False, return_sequences=not last,
                    out=h_out, n_threads=n_threads)
                if last:
                    out[:, d * H:(d + 1) * H] = h_last
                elif D == 2:
                    seq_out[:, :, d * H:(d + 1) * H] = h_seq
            inp = seq_out
        return out

    def decision_function(self, X, lengths, n_threads=1):
        """Outputs of the head, ``(N, n_outputs)``."""
        return self.head.forward(self.head_params,
                                 self.features(X, lengths, n_threads))

    def gather_batch(self, X, lengths, y, rows, n_threads=1):
        """The rows of a mini-batch in buffers reused batch after batch.

        Parameters
        ----------
        X : ndarray of shape (n, T, n_features), or (n, T) token ids
            The training set, C-contiguous, as :meth:`train_step` takes it.
        lengths : ndarray of shape (n,), intp
        y : ndarray of shape (n,) or (n, n_outputs)
        rows : ndarray of int
            The batch's indices into the training set.
        n_threads : int

        Returns
        -------
        X_batch, lengths_batch, y_batch : ndarray
            ``X[rows, :T]`` with ``T`` the batch's longest sequence,
            ``lengths[rows]`` and ``y[rows]``; views of the network's
            workspace, valid until the next call.
        """
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        n = rows.shape[0]
        if n == 0 or rows.min() < 0 or rows.max() >= X.shape[0]:
            raise ValueError(
                f"rows must be a non-empty set of indices into the "
                f"{X.shape[0]} sequences.")
        ws = self._work
        lb = np.take(lengths, rows, out=ws.get("lengths", (n,), np.intp))
        _layers._check_lengths(lb, n, X.shape[1])
        T = int(lb.max())
        if X.ndim == 2:                      # token ids: one "feature" each
            Xb = ws.get("X", (n, T), X.dtype)
            _train.gather(n_threads, X.reshape(X.shape + (1,)), rows,
                          Xb.reshape(n, T, 1))
        else:
            Xb = ws.get("X", (n, T, X.shape[2]), X.dtype)
            _train.gather(n_threads, X, rows, Xb)
        yb = np.take(y, rows, axis=0,
                     out=ws.get("y", (n,) + y.shape[1:], y.dtype))
        return Xb, lb, yb

    def train_step(self, X, lengths, y, sample_weight=None, *, alpha=0.0,
                   dropout=0.0, recurrent_dropout=0.0, rng=None, n_threads=1):
        """Forward, loss and backward on one batch.

        Fills :attr:`grads` with the gradient of the batch's loss (plus the
        L2 penalty) and returns the loss.

        Parameters
        ----------
        X : ndarray of shape (N, T, n_features), or (N, T) token ids
            C-contiguous, of the network's dtype (intp ids with an
            embedding).
        lengths : ndarray of shape (N,), intp
            Valid steps of each sequence, ``1 <= lengths[n] <= T``.
        y : ndarray of shape (N,) or (N, n_outputs)
            Targets for the loss: class indices (intp) for
            :class:`SoftmaxCrossEntropy`, values in the network's dtype for
            :class:`SquaredError`.
        sample_weight : ndarray of shape (N,) or None
        alpha : float
            L2 penalty ``alpha / 2 * ||w||^2 / sum(sample_weight)`` on the
            input, recurrent and head weights (not the biases, nor the
            embedding, whose penalty gradient would touch every row), as
            scikit-learn's MLP.
        dropout, recurrent_dropout : float in [0, 1)
            Rates of the input and recurrent dropout masks, drawn per
            sequence and per unit, fixed over the steps (as Keras).
        rng : numpy.random.Generator
            Draws the dropout masks; needed when a rate is positive.
        n_threads : int

        Returns
        -------
        loss : float
        """
        self._check_batch(X, lengths)
        if self._compiled_head():
            y, sample_weight = self._check_targets(y, sample_weight, X.shape[0])
        weight_sum = (float(X.shape[0]) if sample_weight is None else
                      _train.weight_sum(np.ascontiguousarray(
                          sample_weight, dtype=np.float64)))
        tape, A = self._forward_train(X, lengths, dropout, recurrent_dropout,
                                      rng, n_threads)
        loss, dA = self._head_loss(A, y, sample_weight, weight_sum)
        self._backward_train(tape, X, lengths, dA, n_threads)
        if alpha > 0:
            scale = alpha / weight_sum
            loss += 0.5 * scale * _train.add_penalty(
                n_threads, self.dense_coefs, self.grads, self._penalised, scale)
        return loss

    def trainer(self, X, lengths, y, sample_weight, batch_size, state, *,
                dropout=0.0, recurrent_dropout=0.0, embedding_state=()):
        """A compiled loop over the mini-batches of one fit, or None.

        The :class:`seqclf._train.Trainer` runs each mini-batch as
        :meth:`train_step` followed by the checks, clipping and update of
        the estimator's loop, bit for bit, in one compiled call per group
        of batches, the embedding's lazy row updates included. It applies
        to the dense head with softmax cross-entropy or squared error; None
        otherwise (the caller then runs :meth:`train_step`).

        Parameters
        ----------
        X : ndarray of shape (n, T, n_features)
            The training set, as :meth:`train_step` takes it.
        lengths : ndarray of shape (n,), intp
        y : ndarray of shape (n,) or (n, n_outputs)
        sample_weight : ndarray of shape (n,) or None
        batch_size : int
        state : tuple of ndarray
            The optimizer's state arrays over :attr:`dense_coefs`: ``(m,
            v)`` for Adam, ``(velocity,)`` for SGD (stepped in place).
        dropout, recurrent_dropout : float in [0, 1)
            As :meth:`train_step`'s; the caller draws the masks' uniform
            numbers for each group (see ``Trainer.run``).
        embedding_state : tuple of ndarray
            With an embedding, its optimizer's state arrays (of the
            embedding's shape).
        """
        if not COMPILED_LOOP or not self._compiled_head():
            return None
        self._check_batch(X, lengths)
        if self.embedding is not None:
            _, keys = _layers._valid_ids(X, lengths)
            if keys.min() < 0 or keys.max() >= self.n_tokens:
                _layers._raise_out_of_range(X, lengths, self.n_tokens)
        y, sample_weight = self._check_targets(y, sample_weight, X.shape[0])
        units = []
        for layer in self.layers:
            for u in layer:
                p, g = u.params, u.grads
                units.append((u.code, u.reverse, u.n_in, u.n_hidden, p["W"],
                              p["U"], _layers._bias(u.cell, p), p.get("b_hh"),
                              g["W"], g["U"], _layers._bias(u.cell, g),
                              g.get("b_hh")))
        hp, hg = self.head_params, self.head_grads
        return _train.Trainer(
            units, self.n_directions, X, lengths, y, sample_weight,
            batch_size, hp["W"], hp["b"], hg["W"], hg["b"], self.dense_coefs,
            self.grads, self._penalised,
            tuple(a.reshape(-1) for a in state), dropout, recurrent_dropout,
            self.embedding, tuple(embedding_state))

    def _check_batch(self, X, lengths):
        """What the unchecked kernel calls of a training step rely on."""
        ids = self.embedding is not None
        dtype = np.intp if ids else self.dtype
        if (not isinstance(X, np.ndarray) or X.dtype != dtype
                or X.ndim != (2 if ids else 3) or not X.flags.c_contiguous
                or (not ids and X.shape[2] != self.n_features)
                or X.shape[0] == 0 or X.shape[1] == 0):
            raise ValueError(
                f"X must be a non-empty C-contiguous {np.dtype(dtype)} array of "
                f"shape (N, T{'' if ids else f', {self.n_features}'}), got "
                f"{getattr(X, 'dtype', type(X).__name__)} of shape "
                f"{getattr(X, 'shape', None)}."
            )
        if not (isinstance(lengths, np.ndarray) and lengths.dtype == np.intp
                and lengths.flags.c_contiguous):
            raise ValueError("lengths must be a C-contiguous intp array.")
        _layers._check_lengths(lengths, X.shape[0], X.shape[1])

    def _compiled_head(self):
        """Whether the head and loss run as one compiled call: the dense
        head with softmax cross-entropy or squared error."""
        return (type(self.head) is DenseHead
                and type(self.loss) in (SoftmaxCrossEntropy, SquaredError))

    def _check_targets(self, y, sample_weight, N):
        """``(y, sample_weight)`` as the compiled head reads them, checked."""
        sw = (None if sample_weight is None else
              np.ascontiguousarray(sample_weight, dtype=np.float64))
        if sw is not None and sw.shape != (N,):
            raise ValueError(
                f"sample_weight must have shape ({N},), got {sw.shape}.")
        if type(self.loss) is SoftmaxCrossEntropy:
            y = np.ascontiguousarray(y, dtype=np.intp)
            if y.shape != (N,) or y.min() < 0 or y.max() >= self.n_outputs:
                raise ValueError(
                    f"y must hold {N} class indices in [0, {self.n_outputs}).")
        else:
            y = np.ascontiguousarray(y, dtype=self.dtype)
            if y.shape != (N, self.n_outputs):
                raise ValueError(
                    f"y must have shape ({N}, {self.n_outputs}), got {y.shape}.")
        return y, sw

    def _head_loss(self, A, y, sample_weight, weight_sum):
        """The head's forward, the loss and the head's backward: ``(loss, dA)``.

        The dense head with softmax cross-entropy or squared error runs as
        one compiled call, on targets :meth:`_check_targets` returned; other
        heads and losses through their methods.
        """
        if self._compiled_head():
            ws = self._work
            Z = ws.get("Z", (A.shape[0], self.n_outputs))
            dA = ws.get("dA", A.shape)
            p, g = self.head_params, self.head_grads
            head = (_train.head_softmax_xent
                    if type(self.loss) is SoftmaxCrossEntropy
                    else _train.head_squared_error)
            loss = head(A, p["W"], p["b"], y, sample_weight, weight_sum, Z,
                        g["W"], g["b"], dA)
            return loss, dA
        Z = self.head.forward(self.head_params, A)
        loss, dZ = self.loss.loss_gradient(Z, y, sample_weight, weight_sum)
        dA = self.head.backward(self.head_params, self.head_grads, A,
                                dZ.astype(self.dtype, copy=False))
        return loss, dA

    def _forward_train(self, X, lengths, dropout, recurrent_dropout, rng,
                       n_threads):
        """Training forward through every layer.

        Returns ``(tape, A)``: per layer, what BPTT reads (each direction's
        input after dropout, the input and recurrent masks, the kernels'
        caches), and the final states ``A (N, D * H_last)`` the head takes,
        the forward direction first.
        """
        N, T = X.shape[:2]
        ws = self._work
        inp = X
        if self.embedding is not None:
            inp = _layers.embedding_forward(
                X, lengths, self.embedding,
                out=ws.get("embedded", (N, T, self.n_features)),
                n_threads=n_threads)
        tape = []
        n_layers = len(self.layers)
        for l, layer in enumerate(self.layers):
            H = layer[0].n_hidden
            D = len(layer)
            in_masks = rec_masks = None
            if dropout > 0:
                in_masks = [_dropout_mask(rng, (N, inp.shape[2]), dropout,
                                          self.dtype) for _ in layer]
            if recurrent_dropout > 0:
                rec_masks = [_dropout_mask(rng, (N, H), recurrent_dropout,
                                           self.dtype) for _ in layer]
            last = l == n_layers - 1
            seq_out = None if last or D == 1 else ws.get((l, "out"), (N, T, D * H))
            inputs, caches, h_lasts = [], [], []
            for d, unit in enumerate(layer):
                x = inp
                if in_masks is not None:
                    x = ws.get((l, d, "x"), inp.shape)
                    np.multiply(inp, in_masks[d][:, None, :], out=x)
                cache = {k: ws.get((l, d, k), s) for k, s in
                         _layers._cache_shapes(unit.cell, N, T, H).items()}
                h_last = ws.get((l, d, "h_last"), (N, H))
                unit.train_forward(
                    x, lengths, None if rec_masks is None else rec_masks[d],
                    h_last, cache, n_threads)
                if seq_out is not None:
                    seq_out[:, :, d * H:(d + 1) * H] = cache["h_seq"]
                inputs.append(x)
                caches.append(cache)
                h_lasts.append(h_last)
            tape.append(_LayerTape(inputs, in_masks, rec_masks, caches))
            if not last:
                inp = seq_out if D == 2 else caches[0]["h_seq"]
        if len(h_lasts) == 1:
            A = h_lasts[0]
        else:
            H = self.hidden_sizes[-1]
            A = ws.get("A", (N, 2 * H))
            for d, h_last in enumerate(h_lasts):
                A[:, d * H:(d + 1) * H] = h_last
        return tape, A

    def _backward_train(self, tape, X, lengths, dA, n_threads):
        """BPTT from ``dA``, top layer first, into :attr:`grads` (and
        :attr:`embedding_grad`)."""
        ws = self._work
        H = self.hidden_sizes[-1]
        dh_lasts = [np.ascontiguousarray(dA[:, d * H:(d + 1) * H])
                    for d in range(self.n_directions)]
        dh_seqs = [None] * self.n_directions
        embedded = self.embedding is not None
        for l in range(len(self.layers) - 1, -1, -1):
            rec = tape[l]
            need_dx = l > 0 or embedded
            d_inp = None
            for d, unit in enumerate(self.layers[l]):
                dX = (ws.get((l, d, "dX"), rec.inputs[d].shape) if need_dx
                      else None)
                unit.train_backward(
                    rec.inputs[d], lengths, rec.caches[d], dh_lasts[d],
                    dh_seqs[d],
                    None if rec.rec_masks is None else rec.rec_masks[d], dX,
                    n_threads)
                if need_dx:
                    if rec.in_masks is not None:
                        dX *= rec.in_masks[d][:, None, :]
                    if d_inp is None:
                        d_inp = dX
                    else:
                        d_inp += dX
            if need_dx and l > 0:
                Hb = self.layers[l - 1][0].n_hidden
                dh_lasts = [None] * self.n_directions
                if self.n_directions == 1:
                    dh_seqs = [d_inp]
                else:
                    dh_seqs = [np.ascontiguousarray(d_inp[:, :, d * Hb:(d + 1) * Hb])
                               for d in range(self.n_directions)]
        if embedded:
            self.embedding_grad = _layers.embedding_backward(
                X, lengths, d_inp, self.n_tokens, n_threads=n_threads)

    def clip_gradient(self, max_norm, n_threads=1):
        """Scale the gradient to a global L2 norm of at most ``max_norm``.

        The norm covers :attr:`grads` and, with an embedding, the rows of
        :attr:`embedding_grad`. Returns the norm before clipping.
        """
        sq = _train.sum_squares(n_threads, self.grads)
        if self.embedding_grad is not None:
            sq += _train.sum_squares(n_threads, self.embedding_grad[1].ravel())
        norm = np.sqrt(sq)
        if norm > max_norm:
            factor = max_norm / norm
            _train.scale(n_threads, self.grads, factor)
            if self.embedding_grad is not None:
                _train.scale(n_threads, self.embedding_grad[1].ravel(), factor)
        return norm

    def gradient_is_finite(self, n_threads=1):
        """Whether every entry of the last step's gradient is finite."""
        return (_train.all_finite(n_threads, self.grads)
                and (self.embedding_grad is None or _train.all_finite(
                    n_threads, self.embedding_grad[1].ravel())))

    def weights_are_finite(self, n_threads=1):
        """Whether every dense parameter is finite (the embedding aside)."""
        return _train.all_finite(n_threads, self.dense_coefs)


class _LayerTape:
    """What the training forward of one layer keeps for its BPTT."""

    __slots__ = ("inputs", "in_masks", "rec_masks", "caches")

    def __init__(self, inputs, in_masks, rec_masks, caches):
        self.inputs = inputs          # per direction, after input dropout
        self.in_masks = in_masks      # per direction, or None
        self.rec_masks = rec_masks    # per direction, or None
        self.caches = caches          # per direction, from _layers.forward


def _dropout_mask(rng, shape, rate, dtype):
    # Kept entries are scaled by 1 / (1 - rate) (inverted dropout).
    keep = rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    return ((keep >= rate) * (1.0 / (1.0 - rate))).astype(dtype)


# Values drawn at a time by _uniform_into: its float64 temporary stays this
# small whatever the array's size.
_DRAW_BLOCK = 65536


def _uniform_into(out, low, high, rng):
    """Fill the C-contiguous ``out`` with uniform draws in ``[low, high)``,
    in place: the numbers of one ``rng.uniform(low, high, size=out.shape)``,
    drawn block by block, so that no float64 temporary of ``out``'s size
    (twice a float32 embedding's) is made."""
    flat = out.reshape(-1)          # a view: out is contiguous
    for start in range(0, flat.size, _DRAW_BLOCK):
        block = flat[start:start + _DRAW_BLOCK]
        block[...] = rng.uniform(low, high, size=block.size)


def _orthogonal(shape, rng):
    """A matrix with orthonormal rows or columns, Keras' ``Orthogonal``."""
    rows, cols = shape
    a = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q.T if rows < cols else q
