"""The progress display of an epoch (seqclf._progress) and verbose=2."""

import io
import re

import numpy as np
import pytest

from seqclf import RNNClassifier, _progress
from seqclf._progress import EpochProgress

LINE = (r"Epoch (\d+): ([\d,]+)/([\d,]+) samples \(\d+%\), [\d,]+ samples/s, "
        r"loss = [0-9.]+(, .+ left)?")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_stream_gets_a_line_per_update_at_most_every_interval():
    clock, out = FakeClock(), io.StringIO()
    p = EpochProgress(2, 1000, stream=out, interval=0.5, clock=clock)
    for done in range(100, 1000, 100):
        clock.now += 0.2                    # an update every 0.2 s
        p.update(done, loss_sum=0.5 * done)
    clock.now += 0.01
    p.update(1000, loss_sum=500.0)          # the epoch's end: always shown
    p.close()
    lines = out.getvalue().splitlines()
    # Shown: the first, then each one 0.5 s or more after the last shown.
    assert [int(re.fullmatch(LINE, s).group(2).replace(",", "")) for s in lines] \
        == [100, 400, 700, 1000]
    assert lines[0] == ("Epoch 2: 100/1,000 samples (10%), 500 samples/s, "
                        "loss = 0.500000, 2 s left")
    assert lines[-1].endswith("loss = 0.500000") and "left" not in lines[-1]
    assert "\r" not in out.getvalue()


def test_terminal_line_is_rewritten_in_place_and_cleared():
    clock, out = FakeClock(), Terminal()
    p = EpochProgress(1, 100_000, stream=out, interval=0.0, clock=clock)
    clock.now = 1000.0
    p.update(50_000, 25_000.0)              # 50 samples/s: 16 min 40 s left
    clock.now = 2000.0
    p.update(100_000, 40_000.0)
    p.close()
    text = out.getvalue()
    assert "\n" not in text
    first, second, clear = text.split("\r")[1:4]
    assert first == ("Epoch 1: 50,000/100,000 samples (50%), 50 samples/s, "
                     "loss = 0.500000, 16 min 40 s left")
    # The shorter second line is padded over the end of the first.
    assert second.rstrip() == ("Epoch 1: 100,000/100,000 samples (100%), "
                               "50 samples/s, loss = 0.400000")
    assert len(second) == len(first)
    assert clear == " " * len(second)
    assert text.endswith("\r")


def test_closed_or_odd_streams_count_as_plain():
    class NoTty:
        def write(self, s):
            pass

        def flush(self):
            pass

    assert not EpochProgress(1, 10, stream=NoTty()).in_place
    closed = io.StringIO()
    closed.close()
    assert not EpochProgress(1, 10, stream=closed).in_place


def test_verbose_2_prints_progress_within_each_epoch(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "INTERVAL", 0.0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4, 2))
    y = (X[:, 0, 0] > 0).astype(int)
    RNNClassifier("gru", (4,), max_iter=2, batch_size=32, verbose=2,
                  random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    progress = [s for s in lines if re.fullmatch(LINE, s)]
    # Four batches an epoch: after the first three and at the end.
    assert [re.fullmatch(LINE, s).group(2) for s in progress] == \
        ["32", "64", "96", "100"] * 2
    assert re.fullmatch(r"Epoch 1, loss = [0-9.]+, [0-9.]+ s", lines[4])
    assert lines[-1] == "Stopping: reached max_iter=2 epochs."
    assert len(lines) == 2 * 5 + 1


@pytest.mark.parametrize("verbose", [0, 1])
def test_no_progress_below_verbose_2(capsys, verbose):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3, 2))
    RNNClassifier("rnn", (3,), max_iter=1, batch_size=8, verbose=verbose,
                  random_state=0).fit(X, np.arange(40) % 2)
    assert "samples/s" not in capsys.readouterr().out
