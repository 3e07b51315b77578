"""What an episode is made of: tasks, the verdict on a joint action, and played turns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome", "Task", "TurnRecord"]


@dataclass(frozen=True)
class Task:
    """One task instance; subclasses add the fields their prompts and rewards need."""

    task_id: str


@dataclass(frozen=True)
class Outcome:
    """The environment's verdict on one joint action."""

    team: float
    """The shared team reward."""
    individual: Mapping[str, float]
    """Each team agent's own share, for ``reward_mode="individual"``."""
    terms: Mapping[str, float]
    """Every reward term by name."""
    measures: Mapping[str, Any] = field(default_factory=dict)
    """Deterministic measurements behind the terms (word counts, tests passed, ...)."""


@dataclass(frozen=True)
class TurnRecord:
    """One played turn: the team's (already cut) answers and their outcome."""

    actions: Mapping[str, str]
    outcome: Outcome
