"""The registry of recurrent cells: the one place that lists them.

Every other module (the reference, the kernels' Python layer, the network,
the estimator, the benchmarks) reads what a cell is from :data:`CELLS`: its
gates, its biases, the arrays its training forward pass keeps for BPTT, the
activations it accepts and its Keras names.

A recurrent layer with ``n_features`` inputs and ``n_hidden`` units has
``n_gates * n_hidden`` pre-activation columns: 1 for the tanh (Elman) RNN,
3 for the GRU (gates r, z, n) and 4 for the LSTM (gates i, f, g, o).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """What the Python layers need to know of one cell.

    Attributes
    ----------
    name : str
        The name users pass (``cell="gru"``).
    gates : tuple of str
        The gate blocks of ``W`` and ``U``, in column order.
    biases : tuple of str
        The bias vectors, each of ``n_gates * n_hidden`` entries.
    caches : tuple of str
        The arrays the training forward pass writes for the backward pass,
        besides ``h_seq`` and ``h_prev`` (which every cell keeps).
    activations : tuple of str
        The accepted ``activation`` values, the default first.
    keras_name, keras_class : str
        Names of the equivalent Keras layer, for ``summary()``.
    unit_bias_gates : tuple of str
        The gates whose bias starts at one rather than zero (the LSTM's
        forget gate, as Keras' ``unit_forget_bias``); read by the network's
        initialisation.
    """

    name: str
    gates: tuple
    biases: tuple
    caches: tuple
    activations: tuple
    keras_name: str
    keras_class: str
    unit_bias_gates: tuple = ()

    @property
    def n_gates(self):
        return len(self.gates)


CELLS = {c.name: c for c in (
    Cell("rnn", gates=("h",), biases=("b",), caches=(),
         activations=("tanh", "relu"), keras_name="simple_rnn",
         keras_class="SimpleRNN"),
    # The GRU keeps two biases: its reset gate multiplies h U_n + b_hn only.
    Cell("gru", gates=("r", "z", "n"), biases=("b_ih", "b_hh"),
         caches=("gates", "hn"), activations=("tanh",), keras_name="gru",
         keras_class="GRU"),
    Cell("lstm", gates=("i", "f", "g", "o"), biases=("b",),
         caches=("gates", "c_seq"), activations=("tanh",), keras_name="lstm",
         keras_class="LSTM", unit_bias_gates=("f",)),
)}

N_GATES = {name: c.n_gates for name, c in CELLS.items()}

# The largest dimension a BLAS call takes (its interface uses C int).
BLAS_INT_MAX = 2**31 - 1


def check_cell(cell):
    """Return ``cell`` if it names a supported cell, else raise ValueError."""
    if not isinstance(cell, str) or cell not in CELLS:
        raise ValueError(
            f"cell must be one of {sorted(CELLS)}, got {cell!r}."
        )
    return cell


def check_activation(cell, activation):
    """Return ``activation`` if ``cell`` accepts it, else raise ValueError."""
    accepted = CELLS[check_cell(cell)].activations
    if isinstance(activation, str) and activation in accepted:
        return activation
    others = [c for c, spec in CELLS.items() if activation in spec.activations]
    if others:
        where = " or ".join(f"cell={c!r}" for c in others)
        raise ValueError(
            f"activation={activation!r} is only supported for {where}; the "
            f"{cell} cell has fixed sigmoid/tanh nonlinearities."
        )
    known = list(dict.fromkeys(a for spec in CELLS.values() for a in spec.activations))
    raise ValueError(f"activation must be one of {known}, got {activation!r}.")


def param_shapes(cell, n_features, n_hidden):
    """Shapes of a layer's parameters, in a fixed order.

    ``W`` is PyTorch's ``weight_ih`` transposed and ``U`` its ``weight_hh``
    transposed. The tanh RNN and the LSTM have one bias ``b`` (PyTorch's two
    biases summed); the GRU keeps two, ``b_ih`` and ``b_hh``, because its
    reset gate multiplies ``h U_n + b_hn`` only.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}
        The cell.
    n_features : int
        Features per step of the layer's input.
    n_hidden : int
        Units of the layer.

    Returns
    -------
    shapes : dict of str to tuple of int
        ``{"W": (n_features, G), "U": (n_hidden, G)}`` and the biases, each
        ``(G,)``, where ``G`` is ``n_hidden`` times the number of gates
        (1, 3 or 4).

    Examples
    --------
    >>> from seqclf.reference import param_shapes
    >>> param_shapes("gru", 28, 16)
    {'W': (28, 48), 'U': (16, 48), 'b_ih': (48,), 'b_hh': (48,)}
    """
    G = CELLS[check_cell(cell)].n_gates * n_hidden
    shapes = {"W": (n_features, G), "U": (n_hidden, G)}
    for name in CELLS[cell].biases:
        shapes[name] = (G,)
    return shapes


def n_params(cell, n_features, n_hidden):
    """Number of trainable parameters of one layer (equal to Keras' count).

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}
        The cell.
    n_features : int
        Features per step of the layer's input.
    n_hidden : int
        Units of the layer.

    Returns
    -------
    n : int
        The sum of the sizes of :func:`param_shapes`' arrays.

    Examples
    --------
    >>> from seqclf.reference import n_params
    >>> n_params("lstm", 64, 128)  # as Keras' LSTM(128) on 64 features
    98816
    """
    total = 0
    for shape in param_shapes(cell, n_features, n_hidden).values():
        size = 1
        for d in shape:
            size *= d
        total += size
    return total


def cache_shapes(cell, n_samples, n_steps, n_hidden):
    """Shapes of the arrays a training forward pass keeps for the backward pass.

    ``h_seq`` holds the output sequence (zero past each sequence's end) and
    ``h_prev`` the state that multiplied ``U`` at each step (after recurrent
    dropout). The GRU also keeps its gates ``(r, z, n)`` and ``hn = h U_n +
    b_hn``; the LSTM keeps its gates ``(i, f, g, o)`` and the cell states
    ``c_seq``.
    """
    spec = CELLS[check_cell(cell)]
    seq = (n_samples, n_steps, n_hidden)
    shapes = {"h_seq": seq, "h_prev": seq}
    for name in spec.caches:
        shapes[name] = ((n_samples, n_steps, spec.n_gates * n_hidden)
                        if name == "gates" else seq)
    return shapes
