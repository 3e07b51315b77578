"""Shared machinery of the collaborative writing envs: tasks, prompts, feedback, scoring.

A writing env is a :class:`~llm_marl.env_base.CollaborativeTextEnv` with two roles, a source
document per task, one instruction per role, and a :class:`~llm_marl.rewards.WritingRewardSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from llm_marl.env_base import CollaborativeTextEnv, part_marker
from llm_marl.episode import Outcome, Task, TurnRecord
from llm_marl.rewards.writing import WritingRewardSpec, score_writing

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
            f"Review: {self._review(last.outcome, index)}\nWrite your improved answer."
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
        review = self._review(last.outcome, None)
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
        )

    def _review(self, outcome: Outcome, part: int | None) -> str:
        """The last round's reward and word counts: of answer ``part``, or of every part."""
        terms, lo, hi = outcome.terms, *self.reward_spec.word_band
        summary = (
            f"team reward {terms['total']:.2f} of 3.00 (structure {terms['structure']:.2f}, "
            f"coherence {terms['coherence']:.2f}, consistency {terms['consistency']:.2f})."
        )

        def words_note(k: int, subject: str) -> str:
            words = outcome.measures[f"words_{k}"]
            band = "inside" if lo <= words <= hi else "outside"
            return f"{subject} has {words} words, {band} the {lo}-{hi} band."

        if part is not None:
            return f"{summary} {words_note(part, 'Your answer')}"
        notes = (words_note(k, f"Part {k + 1}") for k in range(len(self.team_agents)))
        return " ".join((summary, *notes))

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
