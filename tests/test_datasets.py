"""The IDX reader, the MNIST loader and its download path (seqclf.datasets)."""

import gzip
import hashlib
import http.server
import re
import threading

import numpy as np
import pytest

from seqclf import datasets
from seqclf.datasets import get_data_home, load_mnist, read_idx

from .conftest import idx_bytes, write_mnist

# ---------------------------------------------------------------------------
# IDX reader
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("code, dtype", [(0x08, np.uint8), (0x09, np.int8),
                                         (0x0B, np.int16), (0x0C, np.int32),
                                         (0x0D, np.float32), (0x0E, np.float64)])
@pytest.mark.parametrize("compressed", [False, True])
def test_read_idx_round_trip(tmp_path, code, dtype, compressed):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(a, code)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if compressed else data)
    out = read_idx(path)
    assert out.dtype == dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("damage, match", [
    (lambda d: d[:-1], "truncated"),
    (lambda d: d[:10], "truncated"),
    (lambda d: d + b"\0", "too long"),
    (lambda d: b"\x01" + d[1:], "not an IDX file"),
    (lambda d: d[:2] + b"\x42" + d[3:], "not an IDX file"),
    (lambda d: b"", "not an IDX file"),
])
def test_read_idx_rejects_damaged_files(tmp_path, damage, match):
    data = idx_bytes(np.zeros((3, 4, 5), dtype=np.uint8))
    path = tmp_path / "bad.idx"
    path.write_bytes(damage(data))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + match):
        read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    gz = gzip.compress(idx_bytes(np.arange(4000, dtype=np.uint8).reshape(40, 100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_idx(path)


# ---------------------------------------------------------------------------
# Loader
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_folder(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    (X_train, y_train), (X_test, y_test) = load_mnist(tmp_path, download=False)
    assert X_train.shape == (6, 28, 28) and X_test.shape == (4, 28, 28)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    np.testing.assert_allclose(X_train * 255, arrays["train-images-idx3-ubyte"],
                               rtol=1e-6)
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])


def test_data_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQCLF_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert (tmp_path / "env").is_dir()
    write_mnist(tmp_path / "env")
    (X_train, _), _ = load_mnist(download=False)
    assert X_train.shape == (6, 28, 28)
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"


def test_missing_files_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*"
                       + re.escape(str(tmp_path))):
        load_mnist(tmp_path, download=False)


def test_images_and_labels_disagree(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(3, dtype=np.uint8))))
    with pytest.raises(ValueError, match="labels for 4 images"):
        load_mnist(tmp_path, download=False)


# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder of tiny MNIST files served as a file:// mirror, their hashes known."""
    src = tmp_path / "mirror"
    write_mnist(src, seed=1)
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in src.iterdir()}
    monkeypatch.setattr(datasets, "MNIST_SHA256", hashes)
    return src


def test_download_from_second_mirror(tmp_path, mirror):
    dest = tmp_path / "data"
    missing = (tmp_path / "nothing-here").as_uri() + "/"
    (X_train, y_train), _ = load_mnist(dest, mirrors=[missing, mirror.as_uri() + "/"])
    assert X_train.shape == (6, 28, 28)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        p.name for p in mirror.iterdir())          # no partial files left
    # Once cached, no mirror is needed.
    (X_again, _), _ = load_mnist(dest, mirrors=["file:///nonexistent/"])
    np.testing.assert_array_equal(X_again, X_train)


def test_checksum_mismatch_is_rejected(tmp_path, mirror, monkeypatch):
    hashes = dict(datasets.MNIST_SHA256)
    hashes["train-images-idx3-ubyte.gz"] = "0" * 64
    monkeypatch.setattr(datasets, "MNIST_SHA256", hashes)
    dest = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="SHA-256"):
        load_mnist(dest, mirrors=[mirror.as_uri() + "/"])
    assert not (dest / "train-images-idx3-ubyte.gz").exists()
    assert not [p for p in dest.iterdir() if p.name.endswith(".part")]


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    """Announces more bytes than it sends, then closes: an interrupted transfer."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\0" * 100)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_interrupted_download_leaves_nothing(tmp_path, mirror):
    server = http.server.HTTPServer(("127.0.0.1", 0), _TruncatingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        dest = tmp_path / "data"
        with pytest.raises(FileNotFoundError, match="could not be downloaded"):
            load_mnist(dest, mirrors=[url], timeout=5)
        assert list(dest.iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()


def test_no_network_error_says_where_to_put_files(tmp_path):
    # A closed local port: the connection is refused at once.
    with pytest.raises(FileNotFoundError, match="Put the four MNIST files"):
        load_mnist(tmp_path, mirrors=["http://127.0.0.1:9/"], timeout=2)
