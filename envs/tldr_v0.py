"""# TLDR (``tldr_v0``)

Two agents summarise the same Reddit post at two lengths: a concise summary and a detailed one
that complements it (the TLDR writing task of the MAGRPO paper, arXiv 2508.04652).

| | |
|---|---|
| Import | ``llm_marl.make("tldr_v0")`` or ``from llm_marl.envs import tldr_v0`` |
| Agents | ``concise_0`` (short summary), ``detailed_1`` (detailed summary) |
| Single agent | ``single_agent=True``: ``writer_0`` writes both, part 2 after ``[PART 2]`` |
| Observation space | ``Dict({"text": UnicodeText(max_prompt_chars)})``: the agent's prompt |
| Action space | ``UnicodeText(max_action_chars)``: any string; longer ones are cut and flagged |
| Turns | ``num_turns`` (default 1); later turns show both last answers and a review |
| Episode end | terminated after the last turn (a fixed horizon); the env never truncates |
| PettingZoo | ``max_cycles`` aliases ``num_turns``; ``render_mode="ansi"`` (text) or ``"human"`` |
| Reward | team reward ``v0``, 0 to 3 (see below); ``reward_mode="individual"`` for shares |
| Data | bundled sample (48 train / 16 test posts); ``data="trl-lib/tldr"`` or a local file |

## Reward ``v0``
The paper's gated writing reward (``llm_marl.rewards.writing``) with the TLDR constants:
L1 both summaries have 8 to 256 words (+0.5, else stop); L2 length ratio
``len(detailed) / len(concise)`` in characters: 1.0 on [1.6, 3.2], ramping from 0 at 1.1 and
down to 0 at 5.0; L3 unique-word ratio: 0.5 from 2.0 up, ramping from 0 at 1.3; L4 style
``0.4 * T + 0.6 * min(J, 0.03) / 0.03`` with transition words looked for in the detailed summary.
``infos[agent]["reward_terms"]`` holds every level and the Structure / Coherence / Consistency
groups; ``infos[agent]["measures"]`` the word counts and ratios behind them.

Individual shares: each agent keeps 0.25 for its own summary being inside the word band; with
both inside, L2, L3 and the consistency part are split evenly and the coherence part goes to
``detailed_1`` (it is measured on its summary). The shares sum to the team reward whenever both
summaries are inside the band.

## Teams of three
``llm_marl.envs.tldr_v0.TLDR3Env(**kwargs)`` (not registered; same keyword arguments) adds a
third writer, ``extended_2``, whose summary extends the detailed one: agents ``concise_0``,
``detailed_1``, ``extended_2``. Its reward is the ``v0`` reward above on the pairs
(concise, detailed) and (detailed, extended), averaged
(``llm_marl.rewards.writing.score_writing_team``); individual shares are the pairs' shares
summed per agent and halved, and sum to the team reward whenever all three summaries are inside
the band. Later turns show each writer its teammates' answers, labelled by agent.

## Data
Records in the schema of ``trl-lib/tldr`` (``prompt`` = ``SUBREDDIT: ... TITLE: ... POST: ...
TL;DR:``, ``completion`` = reference summary), or any records with a ``post`` (or ``text``,
``content``) column. Task ids come from an ``id`` column, else ``<split>-<row>``. The train and
test splits of the hub set (and of the bundled sample) are disjoint.

## Version history
- v0: initial release, the paper's reward. The last turn ends the episode as a *termination*
  (nothing to bootstrap from; earlier builds said truncation, which RL libraries read as a time
  limit); truncation is left to a real time limit (a wrapper). ``infos`` have the same keys at
  reset (zero values) as at every step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from llm_marl.envs.writing import WritingEnv, WritingTask
from llm_marl.factories import aec_factories
from llm_marl.rewards.writing import TLDR_V0

__all__ = ["TLDR3Env", "TLDREnv", "env", "parallel_env", "raw_env"]

_REDDIT = re.compile(
    r"SUBREDDIT:\s*(?P<subreddit>.*?)\s*TITLE:\s*(?P<title>.*?)\s*POST:\s*(?P<post>.*?)\s*(?:TL;DR:\s*)?\Z",
    re.DOTALL,
)


class TLDREnv(WritingEnv):
    """Concise and detailed summaries of a Reddit post, scored together."""

    metadata: ClassVar[dict[str, Any]] = {**WritingEnv.metadata, "name": "tldr_v0"}
    roles: ClassVar[tuple[str, ...]] = ("concise", "detailed")
    reward_spec = TLDR_V0
    bundled_data = "tldr"
    hub_dataset = "trl-lib/tldr"
    document_label = "Reddit post"
    task_intro = (
        "You are one of two writers summarising the same Reddit post. One writes a concise "
        "summary; the other a detailed summary that complements it."
    )
    instructions: ClassVar[tuple[str, ...]] = (
        "Your part: the concise summary. Write one or two plain sentences (8 to 60 words) with "
        "the post's key point. Do not add a title or any other text.",
        "Your part: the detailed summary. Write about two to three times as long as a concise "
        "one-sentence summary (at most 256 words), with richer vocabulary, and use transition "
        "words (for example, however, therefore) so that it reads smoothly.",
    )
    reference_words: ClassVar[tuple[int, ...]] = (15, 40)

    def parse_record(self, record: Mapping[str, Any], index: int, split: str) -> WritingTask:
        """Read a ``trl-lib/tldr`` record, or one with a post/text/content column."""
        task_id = str(record.get("id") or f"{split}-{index:05d}")
        reference = record.get("completion") or record.get("summary")
        reference = reference.strip() if isinstance(reference, str) else None
        prompt = record.get("prompt")
        match = _REDDIT.match(prompt.strip()) if isinstance(prompt, str) else None
        if match:
            heading = f"{match['subreddit']}: {match['title']}"
            return WritingTask(task_id, match["post"], heading, reference)
        document = self._first_field(record, ("post", "text", "content", "prompt"), "post", index)
        title = record.get("title")
        heading = title.strip() if isinstance(title, str) else ""
        return WritingTask(task_id, document.strip(), heading, reference)


class TLDR3Env(TLDREnv):
    """Three writers: concise, detailed and extended summaries of one post (a 3-agent team).

    Not registered; build it as ``TLDR3Env(**kwargs)`` (the same keyword arguments as
    :class:`TLDREnv`) or register it: ``llm_marl.register("tldr3_v0", TLDR3Env)``.
    """

    metadata: ClassVar[dict[str, Any]] = {**WritingEnv.metadata, "name": "tldr3"}
    roles = ("concise", "detailed", "extended")
    task_intro = (
        "You are one of three writers summarising the same Reddit post. One writes a concise "
        "summary; the second a detailed summary that complements it; the third an extended "
        "summary that complements the detailed one."
    )
    instructions = (
        *TLDREnv.instructions,
        "Your part: the extended summary. Write about two to three times as long as the "
        "detailed summary (at most 256 words), with richer vocabulary still, and use transition "
        "words (for example, however, therefore) so that it reads smoothly.",
    )
    reference_words = (15, 40, 100)


parallel_env = TLDREnv

raw_env, env = aec_factories(TLDREnv)
