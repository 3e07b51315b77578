"""Shared fixtures: small text builders used across the test tree."""

from __future__ import annotations

import pytest


@pytest.fixture
def fixed_answers() -> dict[str, str]:
    """Plain answers with many distinct words, for envs whose agents are not yet known."""
    return {
        "short": "The author asks whether to move to a new city for a better paid job.",
        "long": (
            "The author, who has lived in the same town for ten years, received an offer that "
            "pays far more; however, moving means leaving friends and an ageing parent behind. "
            "Therefore they weigh career growth against family duty and ask readers for "
            "advice, for example how others handled similar relocations."
        ),
    }
