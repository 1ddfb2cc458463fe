"""Hypothesis profiles for the property-based trust suite.

``ci`` (the default) keeps the suite fast: few examples, no deadline (torch fits vary in time).
``nightly`` runs many more: ``HYPOTHESIS_PROFILE=nightly python -m pytest tests/property``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
settings.register_profile(
    "nightly", max_examples=400, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
