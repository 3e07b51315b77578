"""Shared machinery of the collaborative writing envs: tasks, prompts, feedback, scoring.

A writing env is a :class:`~llm_marl.env_base.CollaborativeTextEnv` with two or more roles, a
source document per task, one instruction per role, and a
:class:`~llm_marl.rewards.WritingRewardSpec`.

Teams of any size: a subclass declares more ``roles`` with one ``instructions`` entry and one
``reference_words`` entry per role (and a ``task_intro`` that fits). n writers are scored by
:func:`~llm_marl.rewards.writing.score_writing_team` (the two-answer reward on each consecutive
pair of answers, averaged: for two writers exactly the two-answer reward). In later turns each
writer sees its own last answer and its teammates' (labelled by agent) and a review. Example:
:class:`llm_marl.envs.tldr_v0.TLDR3Env` (three summaries of growing length).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from llm_marl.env_base import CollaborativeTextEnv, part_marker
from llm_marl.episode import Outcome, Task, TurnRecord
from llm_marl.rewards.writing import WritingRewardSpec, score_writing_team

__all__ = ["WritingEnv", "WritingTask"]


@dataclass(frozen=True)
class WritingTask(Task):
    """A document to write about, with the reference text of the data set when it has one."""

    document: str
    heading: str = ""
    reference: str | None = None


class WritingEnv(CollaborativeTextEnv[WritingTask]):
    """Two or more writers, one document, the gated writing reward of :attr:`reward_spec`."""

    roles: ClassVar[tuple[str, ...]]
    reward_spec: ClassVar[WritingRewardSpec]
    task_intro: ClassVar[str]
    """What the team is doing, shown at the top of every prompt."""
    instructions: ClassVar[tuple[str, ...]]
    """Each role's instruction, in role order."""
    reference_words: ClassVar[tuple[int, ...]]
    """Words of each role's reference answer (cut from the document), in role order."""
    document_label: ClassVar[str] = "Document"

    def __init__(self, **kwargs: Any) -> None:
        """Build the env; ``kwargs`` are the base class's (``data``, ``split``, ...)."""
        for name in ("instructions", "reference_words"):
            value = getattr(type(self), name, None)
            if not isinstance(value, tuple) or len(value) != len(self.roles):
                raise ValueError(
                    f"{type(self).__name__}.{name} must be a tuple with one entry per role of "
                    f"{self.roles}, got {value!r}"
                )
        super().__init__(**kwargs)

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
        others = [a for a in self.team_agents if a != agent]
        if len(others) == 1:
            shown = f"Your teammate's answer:\n{last.actions[others[0]]}"
        else:
            answers = "\n\n".join(f"[{a}]\n{last.actions[a]}" for a in others)
            shown = f"Your teammates' answers:\n{answers}"
        return (
            f"{text}\n\nPrevious round:\nYour answer:\n{last.actions[agent]}\n\n{shown}\n\n"
            f"Review: {self._review(last.outcome, index)}\nWrite your improved answer."
        )

    def solo_prompt(self, task: WritingTask, history: Sequence[TurnRecord]) -> str:
        """One writer produces every part, each opened by its ``[PART k]`` line."""
        every = "both" if len(self.roles) == 2 else f"all {len(self.roles)}"
        parts = "\n".join(
            f"{part_marker(i + 1)} {instruction}" for i, instruction in enumerate(self.instructions)
        )
        text = (
            f"{self.task_intro}\n\n{self._document_block(task)}\n\nWrite {every} parts. Start each "
            f"part with its marker line, exactly as below:\n{parts}"
        )
        if not history:
            return text
        last = history[-1]
        previous = "\n".join(
            f"{part_marker(i + 1)}\n{last.actions[a]}" for i, a in enumerate(self.team_agents)
        )
        review = self._review(last.outcome, None)
        return (
            f"{text}\n\nPrevious round:\n{previous}\n\nReview: {review}\nWrite {every} parts again."
        )

    # ----------------------------------------------------------------- reward
    def score(self, task: WritingTask, actions: Mapping[str, str]) -> Outcome:
        """The gated writing reward of :attr:`reward_spec` on the answers, in agent order."""
        result = score_writing_team(self.reward_spec, [actions[a] for a in self.team_agents])
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

    # ----------------------------------------------------------------- references
    def reference_parts(self, task: WritingTask, turn: int) -> list[str]:
        """Answers cut from the task's document, sized by :attr:`reference_words`.

        Role k's answer is the document's first ``reference_words[k]`` words (the document
        repeated when shorter); answers after the first open with "However," for the coherence
        term, and the first is ``turn`` words shorter, so that the turns differ.
        """
        words = task.document.split()
        needed = max(self.reference_words)
        words = words * (needed // max(len(words), 1) + 1)
        parts = [" ".join(words[: max(self.reference_words[0] - turn, 1)])]
        parts += ["However, " + " ".join(words[:n]) for n in self.reference_words[1:]]
        return parts

    # ----------------------------------------------------------------- data
    def _first_field(
        self, record: Mapping[str, Any], names: Sequence[str], what: str, index: int
    ) -> str:
        for name in names:
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                return value
        raise self.record_error(
            index,
            f"no {what}: expected a non-empty string in one of {list(names)}, "
            f"found columns {sorted(record)}",
        )
