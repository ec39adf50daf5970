"""Shared test configuration: a fast, reproducible hypothesis profile."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, settings

# No example database (nothing is written into the working tree), no
# per-example deadline (the first torch call of a process can be slow, and
# wall-clock limits make tests flaky), and a modest number of examples so the
# whole suite stays fast on a small CPU.
settings.register_profile(
    "kexue",
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("kexue")


@pytest.fixture
def gen() -> torch.Generator:
    """A freshly seeded CPU generator (same draws in every test run)."""
    return torch.Generator().manual_seed(1234)
