"""Reward functions of the environment suite, versioned with the environments (``v0``, ...)."""

from llm_marl.rewards.coding import (
    CODING_V0,
    CodingProblem,
    CodingRewardSpec,
    CodingScore,
    joint_program,
    score_coding,
)
from llm_marl.rewards.writing import (
    ARXIV_V0,
    TLDR_V0,
    Ramp,
    WritingRewardSpec,
    WritingScore,
    WritingTeamScore,
    score_writing,
    score_writing_team,
)

__all__ = [
    "ARXIV_V0",
    "CODING_V0",
    "TLDR_V0",
    "CodingProblem",
    "CodingRewardSpec",
    "CodingScore",
    "Ramp",
    "WritingRewardSpec",
    "WritingScore",
    "WritingTeamScore",
    "joint_program",
    "score_coding",
    "score_writing",
    "score_writing_team",
]
