"""The quick-start demo, ``python -m seqclf`` (seqclf.__main__)."""

import re

from seqclf.__main__ import main as demo_main


def test_demo_falls_back_to_digits(tmp_path, capsys):
    assert demo_main(["--data-home", str(tmp_path), "--no-download",
                      "--epochs", "3", "--hidden", "16"]) == 0
    captured = capsys.readouterr()
    assert "digits" in captured.err and "Put the four MNIST files" in captured.err
    lines = captured.out.strip().splitlines()
    assert re.fullmatch(r"test accuracy: 0\.\d{4}|test accuracy: 1\.0000", lines[-1])
    assert any(l.startswith("Total params: ") for l in lines)
    assert sum(l.startswith("Epoch ") for l in lines) == 3


def test_demo_on_mnist_files(tmp_path, capsys, mnist_files):
    mnist_files(n_train=40, n_test=10)
    assert demo_main(["--data-home", str(tmp_path), "--epochs", "1",
                      "--cell", "gru", "--hidden", "8", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "MNIST, 40 training and 10 test sequences of 28 steps x 28 features" in out
    assert out.strip().splitlines()[-1].startswith("test accuracy: ")
