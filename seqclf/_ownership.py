"""Which arrays training may write into.

A fitted model can hold arrays whose memory it does not own: views of a
memory map (``joblib.load(..., mmap_mode="r")``), arrays unpickled from
out-of-band buffers (pickle protocol 5), views of the bytes a pickle was
read from. Prediction reads them where they lie, without a copy. Training
writes only into arrays that own their memory: the first ``fit`` or
``partial_fit`` that trains such a model copies them (:func:`owned`), so that
a file, a shared buffer or an "immutable" bytes object is never written
through, and a read-only map is never written into (which would end the
process with a segmentation fault).
"""

import numpy as np


def owns(a):
    """Whether ``a`` is a writeable array that holds its own memory."""
    return isinstance(a, np.ndarray) and a.flags.owndata and a.flags.writeable


def owned(a):
    """``a`` itself if it :func:`owns` its memory, else a C-contiguous copy
    that does."""
    return a if owns(a) else np.array(a, order="C", copy=True, subok=False)
