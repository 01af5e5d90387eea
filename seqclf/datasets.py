"""Datasets: MNIST (and any folder of MNIST-format IDX files).

:func:`load_mnist` reads the four standard IDX files from a data folder and
downloads the missing ones once, from public mirrors tried in turn, checking
each file against its known SHA-256 and writing it atomically. The IDX
reader is this module's own and checks every header, so a truncated or
corrupt file is an error naming it, never garbage data.
"""

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

__all__ = ["get_data_home", "load_mnist", "read_idx"]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# SHA-256 of the standard gzip-compressed MNIST files.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Public mirrors of the original files, tried in order (PyTorch's torchvision
# and TensorFlow's Keras download from the first two).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def get_data_home(data_home=None):
    """Folder holding seqclf's datasets, created if missing.

    ``data_home`` if given, else the environment variable ``SEQCLF_DATA``,
    else ``~/seqclf_data``.

    Parameters
    ----------
    data_home : str or path-like, default=None

    Returns
    -------
    path : pathlib.Path
    """
    if data_home is None:
        data_home = os.environ.get("SEQCLF_DATA") or Path("~") / "seqclf_data"
    path = Path(data_home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_idx(path):
    """Read an IDX file (gzip-compressed or not) into a NumPy array.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    array : ndarray
        With the dimensions and dtype the header declares (native byte
        order).

    Raises
    ------
    ValueError
        If the file is not IDX, or is truncated or longer than its header
        says; the message names the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot be read as a (gzip) IDX file: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'none'})."
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated IDX header.")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: IDX file of {len(data)} bytes where its header {shape} "
            f"needs {expected}: the file is "
            f"{'truncated' if len(data) < expected else 'too long'}."
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find(folder, name):
    """The file ``name`` in ``folder``, or its uncompressed twin, or None."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _download(name, folder, mirrors, timeout):
    """Fetch ``name`` from the first mirror that serves it with the right hash."""
    errors = []
    expected = MNIST_SHA256.get(name)
    for base in mirrors:
        url = base + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, \
                    urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(1 << 16):
                    digest.update(chunk)
                    out.write(chunk)
            if expected is not None and digest.hexdigest() != expected:
                raise ValueError(
                    f"SHA-256 {digest.hexdigest()} differs from the expected "
                    f"{expected}"
                )
            os.replace(tmp, folder / name)      # atomic: never a partial file
            return folder / name
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # URLError is an OSError; an interrupted transfer raises
            # http.client.IncompleteRead.
            errors.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise OSError("\n  ".join([f"could not download {name}:"] + errors))


def load_mnist(data_home=None, *, download=True, mirrors=None, timeout=5.0):
    """Load MNIST as 28-step sequences of 28 pixels (one image row per step).

    Reads ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
    (gzip-compressed or, without the ``.gz``, not) from the data folder.
    Any folder of files with these names and format works, e.g.
    Fashion-MNIST.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Data folder; by default ``SEQCLF_DATA`` or ``~/seqclf_data``
        (see :func:`get_data_home`).
    download : bool, default=True
        Download missing files (the standard MNIST files, checked against
        their SHA-256) from ``mirrors``. Files already in the folder are
        read as they are.
    mirrors : sequence of str, default=None
        Base URLs tried in turn; :data:`MNIST_MIRRORS` by default.
    timeout : float, default=5.0
        Seconds a connection may stay silent before a mirror is given up
        (without a network, every mirror fails within seconds).

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of tuples of ndarray
        ``X_*`` float32 of shape ``(n, 28, 28)`` scaled to [0, 1] (from the
        images' bytes / 255), ``y_*`` int64 labels of shape ``(n,)``:
        60,000 training and 10,000 test images for MNIST.

    Raises
    ------
    FileNotFoundError
        If a file is missing and cannot be downloaded; the message says
        where to put it.
    ValueError
        If a file is corrupt, truncated, or images and labels disagree.
    """
    folder = get_data_home(data_home)
    paths = {}
    for key, name in MNIST_FILES.items():
        path = _find(folder, name)
        if path is None and download:
            try:
                path = _download(name, folder, mirrors or MNIST_MIRRORS, timeout)
            except OSError as exc:
                raise FileNotFoundError(
                    f"MNIST file {name} is not in {folder} and could not be "
                    f"downloaded ({exc}).\nPut the four MNIST files "
                    f"{', '.join(MNIST_FILES.values())} in {folder} (or point "
                    f"data_home or SEQCLF_DATA at a folder holding them)."
                ) from None
        if path is None:
            raise FileNotFoundError(
                f"MNIST file {name} is not in {folder} (download=False). Put "
                f"the four MNIST files {', '.join(MNIST_FILES.values())} there "
                f"or point data_home or SEQCLF_DATA at a folder holding them."
            )
        paths[key] = path

    out = []
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"])
        labels = read_idx(paths[f"{split}_labels"])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{paths[f'{split}_images']}: expected uint8 images of shape "
                f"(n, rows, cols), got {images.dtype} {images.shape}."
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{paths[f'{split}_labels']}: {labels.shape} labels for "
                f"{images.shape[0]} images."
            )
        X = images.astype(np.float32)
        X /= 255.0
        out.append((X, labels.astype(np.int64)))
    return tuple(out)
