"""# arXiv expansion (``arxiv_v0``)

Two agents expand the same paper abstract into an introduction: one writes the background and
motivation, the other the method and its implications (the arXiv writing task of the MAGRPO
paper, arXiv 2508.04652).

| | |
|---|---|
| Import | ``llm_marl.make("arxiv_v0")`` or ``from llm_marl.envs import arxiv_v0`` |
| Agents | ``background_0`` (background and motivation), ``method_1`` (method and implications) |
| Single agent | ``single_agent=True``: ``writer_0`` writes both, part 2 after ``[PART 2]`` |
| Observation space | ``Dict({"text": UnicodeText(max_prompt_chars)})``: the agent's prompt |
| Action space | ``UnicodeText(max_action_chars)``: any string; longer ones are cut and flagged |
| Turns | ``num_turns`` (default 1); later turns show both last answers and a review |
| Episode end | terminated after the last turn (a fixed horizon); the env never truncates |
| PettingZoo | ``max_cycles`` aliases ``num_turns``; ``render_mode="ansi"`` (text) or ``"human"`` |
| Reward | team reward ``v0``, 0 to 3 (see below); ``reward_mode="individual"`` for shares |
| Data | bundled sample (48 train / 16 test); ``data="OpenMLRL/arXiv_abstract"`` or a local path |

## Reward ``v0``
The paper's gated writing reward (``llm_marl.rewards.writing``) with the arXiv constants:
L1 both parts have 128 to 256 words (+0.5, else stop); L2 length ratio
``len(method) / len(background)`` in characters: 1.0 on [1.3, 1.6], ramping from 0 at 0.8 and
down to 0 at 2.0; L3 unique-word ratio: 0.5 on [0.7, 1.3], ramping from 0 at 0.5 and down to 0
at 1.7; L4 style ``0.4 * T + 0.6 * min(J, 0.23) / 0.23`` with transition words looked for in
both parts. ``infos[agent]["reward_terms"]`` holds every level and the Structure / Coherence /
Consistency groups; ``infos[agent]["measures"]`` the word counts and ratios behind them.

Individual shares: each agent keeps 0.25 for its own part being inside the word band; with both
inside, L2, L3, coherence and consistency are split evenly. The shares sum to the team reward
whenever both parts are inside the band.

## Data
Records in the schema of ``OpenMLRL/arXiv_abstract`` (``article_id``, ``abstract_text``), or any
records with an ``abstract`` (or ``text``) column. Task ids come from ``article_id`` or ``id``,
else ``<split>-<row>``. The hub set's train and test splits (and the bundled sample's) are
disjoint.

## Version history
- v0: initial release, the paper's reward. The last turn ends the episode as a *termination*
  (nothing to bootstrap from; earlier builds said truncation, which RL libraries read as a time
  limit); truncation is left to a real time limit (a wrapper). ``infos`` have the same keys at
  reset (zero values) as at every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llm_marl.envs.writing import WritingEnv, WritingTask
from llm_marl.factories import aec_factories
from llm_marl.rewards.writing import ARXIV_V0

__all__ = ["ArxivEnv", "env", "parallel_env", "raw_env"]


class ArxivEnv(WritingEnv):
    """Background and method sections expanded from one abstract, scored together."""

    metadata: ClassVar[dict[str, Any]] = {**WritingEnv.metadata, "name": "arxiv_v0"}
    roles = ("background", "method")
    reward_spec = ARXIV_V0
    bundled_data = "arxiv"
    hub_dataset = "OpenMLRL/arXiv_abstract"
    document_label = "Abstract"
    task_intro = (
        "You are one of two writers expanding the same paper abstract into an introduction. "
        "One writes the background and motivation; the other the method and its implications."
    )
    instructions = (
        "Your part: background and motivation. Write 128 to 256 words on the problem, why it "
        "matters and what earlier work leaves open. Do not describe the method.",
        "Your part: method and implications. Write 128 to 256 words, a little longer than the "
        "background part, on how the work solves the problem and what follows from it. Use "
        "transition words (for example, however, therefore) so that it reads smoothly.",
    )
    reference_words = (130, 185)

    def parse_record(self, record: Mapping[str, Any], index: int, split: str) -> WritingTask:
        """Read an ``OpenMLRL/arXiv_abstract`` record, or one with an abstract/text column."""
        task_id = str(record.get("article_id") or record.get("id") or f"{split}-{index:05d}")
        abstract = self._first_field(
            record, ("abstract_text", "abstract", "text"), "abstract", index
        )
        title = record.get("title")
        heading = title.strip() if isinstance(title, str) else ""
        return WritingTask(task_id, " ".join(abstract.split()), heading)


parallel_env = ArxivEnv

raw_env, env = aec_factories(ArxivEnv)
