"""Shared fixtures, and the Hypothesis profiles of tests/test_fuzz.py.

``ci`` (the default) runs a fixed set of examples (derandomized, no example
database), so that every run tries the same cases; ``long`` explores new
cases on each run, for runs by hand::

    python -m pytest tests/test_fuzz.py --hypothesis-profile=long
"""

import pytest
from hypothesis import HealthCheck, settings

from seqclf import _layers, reference

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large,
               HealthCheck.filter_too_much]

settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, database=None,
    print_blob=True, suppress_health_check=_SUPPRESSED)
settings.register_profile(
    "long", max_examples=5000, deadline=None, print_blob=True,
    suppress_health_check=_SUPPRESSED)


def pytest_configure(config):
    # --hypothesis-profile, when given, has loaded its profile already.
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile("ci")


@pytest.fixture(params=["reference", "layers"])
def impl(request):
    """The implementation under test: :mod:`seqclf.reference` or the
    compiled :mod:`seqclf._layers`, which take the same arguments (see
    ``tests._helpers.run_layer``)."""
    if request.param == "reference":
        return reference
    return _layers
