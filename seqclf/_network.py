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
* the training plan of a fit (:meth:`RecurrentNetwork.plan`): the one
  compiled way a mini-batch is trained (seqclf._plan), which
  :meth:`RecurrentNetwork.train_step` runs on one batch too. Its head, loss
  and the optimizers are given by kind; the NumPy forward and backward of a
  whole network it is tested against is :mod:`seqclf.reference`'s.

Shapes follow the kernels: a batch is ``X (N, T, F)`` with ``lengths (N,)``,
positions at or past a sequence's length being padding. Every kernel call
gets an explicit ``n_threads``; the caller limits BLAS to one thread around
the calls (the kernels call single-threaded BLAS from their own threads, and
the head's products and the gradient norm then do not depend on the BLAS
thread count either).
"""


import numpy as np

from . import _head, _layers, _plan
from ._cells import CELLS, check_cell, param_shapes
from ._ownership import owned


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

class DenseHead:
    """Affine map of the final states to the outputs: ``Z = A W + b``.

    The training plan runs it as its head of kind ``"dense"``
    (seqclf._head); :meth:`forward` is the inference.
    """

    kind = "dense"

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

class SoftmaxCrossEntropy:
    """Softmax over the outputs and the (sample-weighted) mean log-loss.

    ``y`` holds class indices. The mean is ``sum(w * loss) / sum(w)`` as in
    scikit-learn's MLP, so that integer weights equal repeated samples. The
    training plan computes it as its loss of kind
    ``"softmax_cross_entropy"`` (seqclf._head).
    """

    kind = "softmax_cross_entropy"

    @staticmethod
    def predict(Z):
        """Class probabilities from the outputs ``Z`` (in place)."""
        Z -= Z.max(axis=1, keepdims=True)
        np.exp(Z, out=Z)
        Z /= Z.sum(axis=1, keepdims=True)
        return Z

class SquaredError:
    """Half the (sample-weighted) mean squared error: ``MLPRegressor``'s loss.

    ``y`` holds the targets ``(N, n_outputs)`` in the outputs' dtype. The
    loss is ``0.5 * sum_i w_i * mean_k (y_ik - z_ik)^2 / sum_i w_i``, the
    sums accumulated in float64; the training plan computes it as its loss
    of kind ``"squared_error"`` (seqclf._head).
    """

    kind = "squared_error"

    @staticmethod
    def predict(Z):
        """The outputs are the predictions."""
        return Z

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
        Maps the last layer's final states to outputs: a :class:`DenseHead`
        by default. Its ``kind`` must be one the training plan knows
        (``seqclf._head.HEAD_KINDS``); any other is refused (TypeError).
    loss : object, default=None
        :class:`SoftmaxCrossEntropy` by default, or :class:`SquaredError`:
        a ``kind`` of ``seqclf._head.LOSS_KINDS`` and ``predict(Z)``.
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
        Gradient of the last batch (of :meth:`train_step` or a plan) w.r.t.
        ``dense_coefs``.
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
        for what, obj, kinds in (("head", self.head, _head.HEAD_KINDS),
                                 ("loss", self.loss, _head.LOSS_KINDS)):
            kind = getattr(obj, "kind", None)
            if not isinstance(kind, str) or kind not in kinds:
                raise TypeError(
                    f"The training plan has no {what} of kind {kind!r} "
                    f"({type(obj).__name__}); it knows {sorted(kinds)}.")
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
                cell = CELLS[unit.cell]
                for name in cell.biases:
                    p[name][...] = 0
                H = unit.n_hidden
                for gate in cell.unit_bias_gates:           # LSTM: forget
                    k = cell.gates.index(gate)
                    p[cell.biases[0]][k * H:(k + 1) * H] = 1
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
                              "_penalised", "dense_coefs", "embedding",
                              "embedding_grad")}
        state["dtype"] = self.dtype.name
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_work", None)        # a workspace of older versions
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

    # -- training -----------------------------------------------------------

    def train_step(self, X, lengths, y, sample_weight=None, *, alpha=0.0,
                   dropout=0.0, recurrent_dropout=0.0, rng=None, n_threads=1):
        """Forward, loss and backward on one batch, through the training plan.

        Fills :attr:`grads` (and :attr:`embedding_grad`) with the gradient
        of the batch's loss (plus the L2 penalty) and returns the loss; no
        weight moves. It is one batch of :meth:`plan` without an optimizer,
        so the same computation as a batch of a fit.

        Parameters
        ----------
        X : ndarray of shape (N, T, n_features), or (N, T) token ids
            C-contiguous, of the network's dtype (intp ids with an
            embedding).
        lengths : ndarray of shape (N,), intp
            Valid steps of each sequence, ``1 <= lengths[n] <= T``.
        y : ndarray of shape (N,) or (N, n_outputs)
            Targets for the loss: class indices for
            :class:`SoftmaxCrossEntropy`, values for :class:`SquaredError`.
        sample_weight : ndarray of shape (N,) or None
            Not all zero.
        alpha : float
            L2 penalty ``alpha / 2 * ||w||^2 / sum(sample_weight)`` on the
            input, recurrent and head weights (not the biases, nor the
            embedding, whose penalty gradient would touch every row), as
            scikit-learn's MLP.
        dropout, recurrent_dropout : float in [0, 1)
            Rates of the input and recurrent dropout masks, drawn per
            sequence and per unit, fixed over the steps (as Keras).
        rng : numpy.random.Generator
            Draws the dropout masks' uniform numbers (in the network's
            dtype; per layer, the input masks of its directions, then their
            recurrent masks); needed when a rate is positive.
        n_threads : int

        Returns
        -------
        loss : float
        """
        N = X.shape[0] if isinstance(X, np.ndarray) and X.ndim else 0
        if sample_weight is not None and not np.any(sample_weight):
            raise ValueError("sample_weight is zero for every sequence of "
                             "the batch: there is nothing to train on.")
        plan = self.plan(X, lengths, y, sample_weight, max(N, 1),
                         alpha=alpha, dropout=dropout,
                         recurrent_dropout=recurrent_dropout)
        draws = None
        if plan.draws_per_sequence:
            if rng is None:
                raise ValueError("rng is needed to draw the dropout masks.")
            draws = rng.random(
                N * plan.draws_per_sequence,
                dtype=np.float32 if self.dtype == np.float32 else np.float64)
        _, _, _, status = plan.run(np.arange(N, dtype=np.intp), 0, 1,
                                   n_threads, 0.0, draws)
        if status == _plan.NO_MEMORY_STATUS:
            raise MemoryError("The kernels' scratch memory could not be "
                              "allocated.")
        self.embedding_grad = plan.embedding_gradient()
        return plan.last_loss

    def plan(self, X, lengths, y, sample_weight, batch_size, optimizer=None,
             *, alpha=0.0, clip_norm=None, dropout=0.0, recurrent_dropout=0.0,
             embedding_optimizer=None):
        """The training plan of the mini-batches of one fit.

        A :class:`seqclf._plan.TrainingPlan` over the training set, on this
        network's parameters and gradients, its head and loss (by kind) and
        the optimizers' state.

        Parameters
        ----------
        X : ndarray of shape (n, T, n_features), or (n, T) token ids
            The training set, as :meth:`train_step` takes it.
        lengths : ndarray of shape (n,), intp
        y : ndarray of shape (n,) or (n, n_outputs)
        sample_weight : ndarray of shape (n,) or None
        batch_size : int
        optimizer : optimizer of seqclf._optim or None
            Steps :attr:`dense_coefs` (its state of their size); None
            computes gradients only (:meth:`train_step`).
        alpha, clip_norm : float
            The L2 penalty (see :meth:`train_step`) and the largest norm of
            a batch's gradient (None: no clipping).
        dropout, recurrent_dropout : float in [0, 1)
            As :meth:`train_step`'s; the caller draws the masks' uniform
            numbers for each group (see ``TrainingPlan.run``).
        embedding_optimizer : optimizer of seqclf._optim or None
            With an embedding, its optimizer (of the embedding's shape).
        """
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
        return _plan.TrainingPlan(
            units, self.n_directions, X, lengths, y, sample_weight,
            batch_size, (self.head.kind, hp["W"], hp["b"], hg["W"], hg["b"]),
            self.loss.kind, self.dense_coefs, self.grads, self._penalised,
            optimizer, alpha=alpha, clip_norm=clip_norm, dropout=dropout,
            recurrent_dropout=recurrent_dropout, embedding=self.embedding,
            embedding_optimizer=embedding_optimizer)

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

    def _check_targets(self, y, sample_weight, N):
        """``(y, sample_weight)`` as the plan's loss reads them, checked."""
        sw = (None if sample_weight is None else
              np.ascontiguousarray(sample_weight, dtype=np.float64))
        if sw is not None and sw.shape != (N,):
            raise ValueError(
                f"sample_weight must have shape ({N},), got {sw.shape}.")
        kind = getattr(self.loss, "kind", None)
        if kind not in _head.LOSS_KINDS:
            raise TypeError(f"The training plan has no loss of kind {kind!r}; "
                            f"it knows {sorted(_head.LOSS_KINDS)}.")
        if kind == "softmax_cross_entropy":
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
