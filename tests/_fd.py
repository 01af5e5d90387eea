"""Central finite differences, shared by the gradient tests."""

import numpy as np


def central_differences(loss, array, indices, eps):
    """Derivatives of ``loss()`` w.r.t. ``array.flat[indices]``.

    ``loss`` takes no argument and reads ``array``, which is perturbed in
    place (it must be C-contiguous) and restored entry by entry.
    """
    flat = array.reshape(-1)  # a view: writes go to the array
    assert np.shares_memory(flat, array)
    numeric = np.empty(len(indices))
    for k, j in enumerate(indices):
        orig = flat[j]
        flat[j] = orig + eps
        up = loss()
        flat[j] = orig - eps
        down = loss()
        flat[j] = orig
        numeric[k] = (up - down) / (2 * eps)
    return numeric
