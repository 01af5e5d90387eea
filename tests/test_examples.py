"""The example scripts run end to end (on tiny MNIST-format files)."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(),
                                reason="examples/ is not beside tests/")


def test_mnist_tutorials_script(tmp_path, mnist_files):
    mnist_files(n_train=64, n_test=16, folder=tmp_path / "data")
    out = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist_tutorials.py"), "rnn31",
         "--epochs", "2", "--data-home", str(tmp_path / "data"), "--json",
         str(out), "--threads", "1"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1-layer tanh RNN, 31 units: test accuracy" in proc.stdout
    result = json.loads(out.read_text())
    assert result["model"] == "rnn31" and len(result["loss_curve"]) == 2
    assert 0.0 <= result["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_learning_curves_script(tmp_path, mnist_files):
    pytest.importorskip("matplotlib")
    mnist_files(n_train=200, n_test=8, folder=tmp_path / "data")
    png = tmp_path / "curves.png"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "plot_learning_curves.py"),
         "--models", "rnn31", "gru128", "--epochs", "2", "--n-train", "200",
         "--data-home", str(tmp_path / "data"), "--output", str(png)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_text_fortunes_script(tmp_path):
    rng = random.Random(0)
    words = {"cats": ["cat", "purr", "whisker", "mouse"],
             "dogs": ["dog", "bark", "bone", "leash"]}
    for category, vocab in words.items():
        quotes = [" ".join(rng.choice(vocab + ["the", "a"]) for _ in range(6))
                  for _ in range(30)]
        (tmp_path / category).write_text("\n%\n".join(quotes) + "\n%\n")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "text_fortunes.py"), "--data-dir",
         str(tmp_path), "--categories", "cats", "dogs", "--epochs", "3",
         "--hidden", "8", "--embedding-dim", "4"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "60 quotes in 2 categories" in proc.stdout
    assert "LogisticRegression on bag of words: test accuracy" in proc.stdout
    assert "on word ids: test accuracy" in proc.stdout
    missing = subprocess.run(
        [sys.executable, str(EXAMPLES / "text_fortunes.py"), "--data-dir",
         str(tmp_path), "--categories", "birds"],
        capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "apt install fortunes" in missing.stderr


@pytest.mark.slow
def test_regress_tecator_script(tmp_path):
    pytest.importorskip("sktime", reason="the Tecator data ship in sktime "
                        '(pip install "seqclf[sktime]")')
    out = tmp_path / "tecator.json"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "regress_tecator.py"), "--epochs", "2",
         "--hidden", "4", "--derivatives", "1", "--threads", "1", "--json",
         str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "172 spectra to train, 43 to test, 100 wavelengths" in proc.stdout
    assert "CPU: " in proc.stdout and "test R²" in proc.stdout
    result = json.loads(out.read_text())
    models = [r["model"] for r in result["results"]]
    assert models == ["RNNRegressor('gru', 4)", "RidgeCV",
                      "HistGradientBoostingRegressor"]
    for r in result["results"]:
        assert r["model"] in proc.stdout
        assert r["test_r2"] <= 1.0 and r["test_rmse"] > 0 and r["fit_seconds"] >= 0
    assert result["results"][0]["epochs"] == 2
    # The baselines do not depend on the network's settings: Ridge reaches
    # the literature's R² of 0.9 and more on these features.
    assert result["results"][1]["test_r2"] > 0.9


@pytest.mark.parametrize("name", ["regress_tecator.py", "uea_japanese_vowels.py"])
def test_sktime_examples_without_sktime(name):
    # sktime hidden from the import system, as where it is not installed.
    script = str(EXAMPLES / name)
    code = ("import runpy, sys; sys.modules['sktime'] = None; "
            f"sys.argv = [{script!r}]; runpy.run_path({script!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "seqclf[sktime]"' in proc.stderr


@pytest.mark.slow
def test_uea_japanese_vowels_script(tmp_path):
    pytest.importorskip("sktime", reason="the JapaneseVowels data ship in "
                        'sktime (pip install "seqclf[sktime]")')
    out = tmp_path / "vowels.json"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "uea_japanese_vowels.py"), "--epochs",
         "2", "--hidden", "4", "--no-minirocket", "--threads", "1", "--json",
         str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert ("270 series to train, 370 to test, 12 channels, 7-29 steps, "
            "9 speakers") in proc.stdout
    assert "CPU: " in proc.stdout and "test accuracy" in proc.stdout
    result = json.loads(out.read_text())
    models = [r["model"] for r in result["results"]]
    assert models == ["RNNClassifier('gru', 4, bidirectional)",
                      "LogisticRegression on summary features"]
    for r in result["results"]:
        assert r["model"] in proc.stdout
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["fit_seconds"] >= 0
    assert result["results"][0]["epochs"] == 2
    # The baseline does not depend on the network's settings; nine speakers
    # are told apart far above chance (1/9) by the summary features alone.
    assert result["results"][1]["test_accuracy"] > 0.8


_NO_DASK = 'the dask extra is not installed (pip install "seqclf[dask]")'


@pytest.mark.slow
def test_dask_grid_search_script(tmp_path):
    pytest.importorskip("distributed", reason=_NO_DASK)
    out = tmp_path / "grid.json"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "dask_grid_search.py"), "--n-samples",
         "200", "--epochs", "1", "--cv", "2", "--repeat", "1", "--json",
         str(out)],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "same scores on every backend: True" in proc.stdout
    result = json.loads(out.read_text())
    assert result["same_scores"] and result["fits"] == 16
    backends = {r["backend"]: r for r in result["results"]}
    assert list(backends) == ["n_jobs=1", "loky, n_jobs=-1", "dask, n_jobs=-1"]
    # Dask's workers run each fit on one thread.
    assert backends["dask, n_jobs=-1"]["threads_per_fit"] == [1]
    assert len({r["best_score"] for r in result["results"]}) == 1


@pytest.mark.slow
def test_dask_out_of_core_script(tmp_path):
    pytest.importorskip("dask_ml", reason=_NO_DASK)
    out = tmp_path / "ooc.json"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "dask_out_of_core.py"), "--data-mib",
         "4", "--block-mib", "1", "--n-steps", "20", "--n-features", "4",
         "--memory-limit-mib", "1024", "--dir", str(tmp_path / "data"),
         "--json", str(out)],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["data_bytes"] == r["n_sequences"] * 20 * 4 * 4
    assert r["blocks"] == -(-r["n_sequences"] // r["block_rows"]) > 1
    assert r["partial_fit_calls"] == r["blocks"]
    assert 0 < r["worker_rss_before_bytes"] <= r["worker_peak_rss_bytes"]
    assert r["worker_peak_rss_bytes"] < r["memory_limit_bytes"]
    assert 0.0 <= r["test_accuracy"] <= 1.0
    assert "worker peak RSS" in proc.stdout
