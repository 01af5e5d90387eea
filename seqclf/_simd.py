"""Which compiled version of the float32 gate math the kernels run.

seqclf/_vmath.h compiles the gate math for three x86-64 levels (gcc >= 12 on
x86-64; other builds have "baseline" only):

- ``"avx512"``: x86-64-v4 (AVX-512 F, BW, CD, DQ, VL);
- ``"avx2"``: x86-64-v3 (AVX2, FMA, BMI1/2, F16C, ...);
- ``"baseline"``: the compiler's default target.

When ``seqclf._kernels`` is imported it selects, once, the best level this
CPU runs. The environment variable ``SEQCLF_SIMD``, read at that import only,
forces one instead, so that the tests can run the levels a machine would not
pick by itself (a testing aid; results differ between levels only by
float32 rounding):

    SEQCLF_SIMD=avx2 python -m pytest tests/test_kernels.py -q

- unset, empty or ``auto``: the best usable level;
- ``avx512``, ``avx2`` or ``baseline`` (case and surrounding spaces ignored):
  that level, when this build has it and the CPU can run it; otherwise the
  import raises ``RuntimeError``. A forced level is never replaced by
  another, so a run asked for AVX-512 cannot pass on AVX2 code;
- anything else: the import raises ``ValueError``.

:func:`available_levels` lists the levels usable on this machine, for
scripts that run the tests under each (see docs/development.md).
"""

import os

ENV_VAR = "SEQCLF_SIMD"
# Index = the level number of _vmath.h (SEQCLF_SIMD_BASELINE, ...).
LEVELS = ("baseline", "avx2", "avx512")
_AUTO = ("", "auto")

# Indexes of the usable levels, recorded by _select.
_usable = None


def _select(usable):
    """Record the usable levels and return the index of the one to use.

    Called once, by seqclf._kernels' import; ``usable`` lists the indexes of
    the levels this build and CPU can run.
    """
    global _usable
    _usable = tuple(sorted(usable))
    return _choose(_usable, os.environ.get(ENV_VAR, ""))


def _choose(usable, value):
    """Index of the level that ``value`` of SEQCLF_SIMD asks for."""
    name = value.strip().lower()
    if name in _AUTO:
        return max(usable)
    if name not in LEVELS:
        raise ValueError(
            f"{ENV_VAR}={value!r} is not a known level: use one of "
            f"{', '.join(LEVELS[::-1])}, or leave it unset (or 'auto') for the "
            f"best one the CPU supports."
        )
    level = LEVELS.index(name)
    if level not in usable:
        raise RuntimeError(
            f"{ENV_VAR}={value!r}: this CPU or build cannot run the {name!r} "
            f"gate math; usable here: "
            f"{', '.join(LEVELS[i] for i in sorted(usable))}."
        )
    return level


def available_levels():
    """Names of the levels this build and CPU can run, best last."""
    if _usable is None:
        from . import _kernels  # noqa: F401  (its import records them)
    return tuple(LEVELS[i] for i in _usable)


def simd_level():
    """Name of the level in use: ``"avx512"``, ``"avx2"`` or ``"baseline"``."""
    from ._kernels import simd_level

    return simd_level()
