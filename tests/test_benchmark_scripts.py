"""The standalone benchmark scripts run end to end through their launcher."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import seqclf

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = [
    pytest.mark.skipif(not BENCHMARKS.is_dir(),
                       reason="benchmarks/ is not beside tests/"),
    pytest.mark.slow,
]


def _run(script, *args):
    # The workers import the seqclf these tests import, wherever it lives.
    env = dict(os.environ, PYTHONPATH=str(Path(seqclf.__file__).parents[1]))
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_time_epoch_runs_one_worker_per_thread_count():
    proc = _run("time_epoch.py", "--n-samples", "64", "--hidden", "4",
                "--batch", "32", "--repeat", "1", "--threads", "1", "2")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[2:]]
    assert [r[0] for r in rows] == ["1", "2"]
    assert float(rows[0][3]) == 1.0 and float(rows[1][1]) > 0


def test_time_embedding_prints_both_inputs():
    proc = _run("time_embedding.py", "--n-samples", "32", "--n-steps", "5",
                "--vocab", "7", "--hidden", "4", "--embedding-dim", "3",
                "--repeat", "1", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    (row,) = [line.split() for line in proc.stdout.splitlines()[2:]]
    assert row[:2] == ["1", "7"] and float(row[2]) > 0 and float(row[3]) > 0


def test_a_failing_worker_fails_the_script():
    proc = _run("time_epoch.py", "--n-samples", "64", "--hidden", "4",
                "--repeat", "1", "--threads", "1", "--dtype", "float32",
                "--cell", "cnn")
    assert proc.returncode == 1
    assert "worker failed" in proc.stderr and "cnn" in proc.stderr


def test_compare_step_products_times_both_paths():
    from seqclf import _kernels

    if _kernels.step_products() != "own":
        pytest.skip("no micro-kernel on this CPU or build: nothing to compare")
    proc = _run("compare_step_products.py", "--threads", "1", "--repeat", "1",
                "--min-time", "0.01")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()
            if line.split()[:1] in (["rnn"], ["gru"], ["lstm"])]
    assert len(rows) == 7
    assert all(float(r[4]) > 0 and float(r[5]) > 0 for r in rows)


def test_compare_builds_times_both_trees():
    tree = str(Path(seqclf.__file__).parents[1])
    proc = _run("compare_builds.py", tree, tree, "--configs", "rnn:4:8:2",
                "--threads", "1", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = proc.stdout.strip().splitlines()[-1].split()
    assert row[:3] == ["rnn4", "b8", "1"] and len(row) == 6
    assert float(row[3]) > 0 and float(row[4]) > 0


def test_compare_builds_takes_flagged_configs():
    tree = str(Path(seqclf.__file__).parents[1])
    proc = _run("compare_builds.py", tree, tree, "--configs",
                "gru:4:8:3:bi:stack:ids:reg:pf", "--threads", "1",
                "--repeat", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = proc.stdout.strip().splitlines()[-1].split()
    assert row[:3] == ["gru4", "b8+bi+stack+ids+reg+pf", "1"]
    assert float(row[3]) > 0 and float(row[4]) > 0
    proc = _run("compare_builds.py", tree, tree, "--configs", "gru:4:8:up")
    assert proc.returncode == 2 and "'gru:4:8:up'" in proc.stderr


def test_digest_models_prints_the_same_digests_on_1_and_2_threads(tmp_path):
    out = tmp_path / "digests.json"
    runs = [_run("digest_models.py", "--quick", "--threads", threads,
                 "--out", str(out)) for threads in ("1", "2")]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout
    lines = [line.split() for line in runs[0].stdout.splitlines()]
    assert len(lines) == 3
    fields = ["coefs", "weights", "opt", "loss", "pred", "n_iter"]
    for line in lines:
        assert [f.split("=")[0] for f in line[1:]] == fields
        assert all(len(f.split("=")[1]) == 16 for f in line[1:-1])
    saved = json.loads(out.read_text())
    assert saved["meta"]["threads"] == 2
    assert list(saved["models"]) == [line[0] for line in lines]
