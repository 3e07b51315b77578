"""Shared machinery of the collaborative writing envs: tasks, prompts, feedback, scoring.

A writing env is a :class:`~llm_marl.env_base.CollaborativeTextEnv` with two roles, a source
document per task, one instruction per role, and a :class:`~llm_marl.rewards.WritingRewardSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from llm_marl.env_base import CollaborativeTextEnv, Outcome, Task, TurnRecord, part_marker
from llm_marl.rewards.writing import WritingRewardSpec, WritingScore, score_writing

__all__ = ["WritingEnv", "WritingTask"]


@dataclass(frozen=True)
class WritingTask(Task):
    """A document to write about, with the reference text of the data set when it has one."""

    document: str
    heading: str = ""
    reference: str | None = None


class WritingEnv(CollaborativeTextEnv[WritingTask]):
    """Two writers, one document, the gated writing reward of :attr:`reward_spec`."""

    roles: ClassVar[tuple[str, ...]]
    reward_spec: ClassVar[WritingRewardSpec]
    task_intro: ClassVar[str]
    """What the team is doing, shown at the top of every prompt."""
    instructions: ClassVar[tuple[str, str]]
    """Each role's instruction, in role order."""
    document_label: ClassVar[str] = "Document"

    # ----------------------------------------------------------------- prompts
    def _document_block(self, task: WritingTask) -> str:
        heading = f"{task.heading}\n" if task.heading else ""
        return f"{self.document_label}:\n{heading}{task.document}"

    def prompt(self, task: WritingTask, agent: str, history: Sequence[TurnRecord]) -> str:
        """The role's instruction on the document; later turns add the last round's review."""
        index = self.team_agents.index(agent)
        text = f"{self.task_intro}\n\n{self._document_block(task)}\n\n{self.instructions[index]}"
        if not history:
            return text
        last = history[-1]
        partner = self.team_agents[1 - index]
        return (
            f"{text}\n\nPrevious round:\nYour answer:\n{last.actions[agent]}\n\n"
            f"Your teammate's answer:\n{last.actions[partner]}\n\n"
            f"Review: {last.outcome.feedback[agent]}\nWrite your improved answer."
        )

    def solo_prompt(self, task: WritingTask, history: Sequence[TurnRecord]) -> str:
        """One writer produces both parts, each opened by its ``[PART k]`` line."""
        parts = "\n".join(
            f"{part_marker(i + 1)} {instruction}" for i, instruction in enumerate(self.instructions)
        )
        text = (
            f"{self.task_intro}\n\n{self._document_block(task)}\n\nWrite both parts. Start each "
            f"part with its marker line, exactly as below:\n{parts}"
        )
        if not history:
            return text
        last = history[-1]
        previous = "\n".join(
            f"{part_marker(i + 1)}\n{last.actions[a]}" for i, a in enumerate(self.team_agents)
        )
        review = " ".join(last.outcome.feedback[a] for a in self.team_agents)
        return f"{text}\n\nPrevious round:\n{previous}\n\nReview: {review}\nWrite both parts again."

    # ----------------------------------------------------------------- reward
    def score(self, task: WritingTask, actions: Mapping[str, str]) -> Outcome:
        """The gated writing reward of :attr:`reward_spec` on the two answers."""
        first, second = (actions[a] for a in self.team_agents)
        result = score_writing(self.reward_spec, first, second)
        return Outcome(
            team=result.total,
            individual=dict(zip(self.team_agents, result.individual, strict=True)),
            terms=result.terms(),
            measures=result.measures(),
            feedback=self._feedback(result),
        )

    def _feedback(self, result: WritingScore) -> dict[str, str]:
        lo, hi = self.reward_spec.word_band
        summary = (
            f"team reward {result.total:.2f} of 3.00 (structure {result.structure:.2f}, "
            f"coherence {result.coherence:.2f}, consistency {result.consistency:.2f})."
        )
        notes = {}
        for agent, words in zip(self.team_agents, result.words, strict=True):
            band = "inside" if lo <= words <= hi else "outside"
            notes[agent] = f"{summary} Your answer has {words} words, {band} the {lo}-{hi} band."
        return notes

    # ----------------------------------------------------------------- data
    @staticmethod
    def _first_field(record: Mapping[str, Any], names: Sequence[str], what: str) -> str:
        for name in names:
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                return value
        raise ValueError(
            f"record has no {what}: expected a non-empty string in one of {list(names)}, "
            f"found columns {sorted(record)}"
        )
