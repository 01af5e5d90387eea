"""The gate-math levels (seqclf._simd, SEQCLF_SIMD) and the kernels under each.

A machine runs one level by itself, the best its CPU supports; the others
are run here in subprocesses with SEQCLF_SIMD set, since the level is chosen
once, at import. Levels the CPU (or build) cannot run are skipped.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seqclf import _kernels, _simd

ROOT = Path(__file__).resolve().parents[1]
AVAILABLE = _simd.available_levels()

# Kernels against the reference (forward and backward, every cell, both
# dtypes, odd sizes for the vector tails, NaN) and the float32 gate math.
SUBSET = ("matches_reference or gate_math or edge_sizes or "
          "nan_in_valid_input_propagates")

# Checks the level in use, then runs pytest with the remaining arguments.
_RUN_UNDER_LEVEL = """\
import sys, pytest
from seqclf import _kernels
if _kernels.simd_level() != sys.argv[1]:
    sys.exit(f"simd_level() is {_kernels.simd_level()!r}, not {sys.argv[1]!r}")
sys.exit(pytest.main(sys.argv[2:]))
"""


def _run(args, level, timeout=600):
    env = dict(os.environ, **{_simd.ENV_VAR: level})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _skip_unless_available(level):
    if level not in AVAILABLE:
        pytest.skip(f"this CPU or build cannot run {level!r} "
                    f"(usable: {', '.join(AVAILABLE)})")


def test_level_in_use():
    requested = os.environ.get(_simd.ENV_VAR, "").strip().lower()
    expected = AVAILABLE[-1] if requested in ("", "auto") else requested
    assert _kernels.simd_level() == _simd.simd_level() == expected
    assert "baseline" in AVAILABLE
    assert set(AVAILABLE) <= set(_simd.LEVELS)


@pytest.mark.slow
@pytest.mark.parametrize("level", _simd.LEVELS)
def test_kernels_match_reference_under_level(level):
    _skip_unless_available(level)
    out = _run(["-c", _RUN_UNDER_LEVEL, level, "-q", "-p", "no:cacheprovider",
                str(ROOT / "tests" / "test_kernels.py"), "-k", SUBSET], level)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    passed = re.search(r"(\d+) passed", out.stdout)
    assert passed and int(passed.group(1)) > 100, out.stdout[-2000:]


@pytest.mark.parametrize("level", _simd.LEVELS)
def test_level_this_cpu_lacks_fails_at_import(level):
    if level in AVAILABLE:
        pytest.skip(f"{level!r} runs on this CPU")
    out = _run(["-c", "import seqclf"], level, timeout=120)
    assert out.returncode != 0
    assert f"RuntimeError: SEQCLF_SIMD='{level}'" in out.stderr, out.stderr
    assert f"usable here: {', '.join(AVAILABLE)}." in out.stderr, out.stderr


def test_unknown_level_fails_at_import():
    out = _run(["-c", "import seqclf"], "sse9", timeout=120)
    assert out.returncode != 0
    assert "ValueError: SEQCLF_SIMD='sse9' is not a known level" in out.stderr
    assert "avx512, avx2, baseline" in out.stderr, out.stderr


@pytest.mark.parametrize("value, expected", [
    ("", 2), ("auto", 2), (" AUTO ", 2), ("avx512", 2), ("AVX2", 1),
    (" baseline\n", 0),
])
def test_choose(value, expected):
    assert _simd._choose((0, 1, 2), value) == expected


def test_choose_without_avx512():
    assert _simd._choose((0, 1), "") == 1
    assert _simd._choose((0,), "auto") == 0
    with pytest.raises(RuntimeError, match=r"SEQCLF_SIMD='avx512'.*"
                                           r"usable here: baseline, avx2\."):
        _simd._choose((0, 1), "avx512")
    with pytest.raises(RuntimeError, match="usable here: baseline"):
        _simd._choose((0,), "avx2")


@pytest.mark.parametrize("value", ["avx", "x86-64-v3", "none", "2", "avx-512"])
def test_choose_rejects_unknown_values(value):
    with pytest.raises(ValueError, match=r"SEQCLF_SIMD=.*use one of avx512, "
                                         r"avx2, baseline, or leave it unset"):
        _simd._choose((0, 1, 2), value)
