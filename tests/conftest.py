"""Shared pytest configuration.

Hypothesis runs a bounded number of examples so the whole suite stays
within the CI budget; set HYPOTHESIS_PROFILE=thorough for long runs.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
