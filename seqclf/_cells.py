"""Shapes shared by the kernels, the reference and the driver.

A recurrent layer with ``n_features`` inputs and ``n_hidden`` units has
``n_gates * n_hidden`` pre-activation columns: 1 for the tanh (Elman) RNN,
3 for the GRU (gates r, z, n) and 4 for the LSTM (gates i, f, g, o).
"""

N_GATES = {"rnn": 1, "gru": 3, "lstm": 4}

# The largest dimension a BLAS call takes (its interface uses C int).
BLAS_INT_MAX = 2**31 - 1


def check_cell(cell):
    """Return ``cell`` if it names a supported cell, else raise ValueError."""
    if cell not in N_GATES:
        raise ValueError(
            f"cell must be one of {sorted(N_GATES)}, got {cell!r}."
        )
    return cell


def param_shapes(cell, n_features, n_hidden):
    """Shapes of a layer's parameters, in a fixed order.

    ``W`` is PyTorch's ``weight_ih`` transposed and ``U`` its ``weight_hh``
    transposed. The tanh RNN and the LSTM have one bias ``b`` (PyTorch's two
    biases summed); the GRU keeps two, ``b_ih`` and ``b_hh``, because its
    reset gate multiplies ``h U_n + b_hn`` only.
    """
    G = N_GATES[check_cell(cell)] * n_hidden
    shapes = {"W": (n_features, G), "U": (n_hidden, G)}
    if cell == "gru":
        shapes.update(b_ih=(G,), b_hh=(G,))
    else:
        shapes["b"] = (G,)
    return shapes


def n_params(cell, n_features, n_hidden):
    """Number of trainable parameters of one layer (equal to Keras' count)."""
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
    G = N_GATES[check_cell(cell)] * n_hidden
    seq = (n_samples, n_steps, n_hidden)
    shapes = {"h_seq": seq, "h_prev": seq}
    if cell == "gru":
        shapes.update(gates=(n_samples, n_steps, G), hn=seq)
    elif cell == "lstm":
        shapes.update(gates=(n_samples, n_steps, G), c_seq=seq)
    return shapes
