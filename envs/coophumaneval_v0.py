"""# CoopHumanEval (``coophumaneval_v0``)

Two agents solve a problem built for cooperation: a helper writes the function ``aux`` the
problem suggests, and the main agent writes the problem's function on top of it (the
CoopHumanEval coding task of the MAGRPO paper, arXiv 2508.04652).

| | |
|---|---|
| Import | ``llm_marl.make("coophumaneval_v0")`` or ``from llm_marl.envs import coophumaneval_v0`` |
| Agents | ``helper_0`` (writes ``aux``), ``main_1`` (writes the entry point, may call ``aux``) |
| Single agent | ``single_agent=True``: ``coder_0`` writes one program with both functions |
| Observation space | ``Dict({"text": UnicodeText(max_prompt_chars)})``: the agent's prompt |
| Action space | ``UnicodeText(max_action_chars)``: any string; longer ones are cut and flagged |
| Turns | ``num_turns`` (default 1; the paper's multi-turn runs use 2); later turns show feedback |
| Episode end | terminated after the last turn (a fixed horizon); the env never truncates |
| PettingZoo | ``max_cycles`` aliases ``num_turns``; ``render_mode="ansi"`` (text) or ``"human"`` |
| Reward | team reward ``v0``, -0.5 to 4 (see below); ``reward_mode="individual"`` for shares |
| Data | bundled sample (24 train / 8 test); ``data="OpenMLRL/CoopHumanEval"`` or a local file |
| Options | ``test_timeout_s`` (5.0 per test), ``test_memory_mb``, ``max_feedback_asserts`` (3) |

## Reward ``v0``
The paper's coding reward (``llm_marl.rewards.coding``), maximum 4.0, the same as
``humaneval_v0``: ``structure_aux`` +0.4 when ``aux`` is defined and returns a value;
``structure_main`` +0.6 when the entry point is defined and returns a value (else the sum
stops); ``syntax`` +0.5 when the joint program parses (else the sum stops); ``tests`` + passed /
total of the problem's asserts, each run alone in the sandbox with a time limit; and, only when
at least one assert passes and the helper's ``aux`` exists, ``cooperation_call`` +0.5 when main
calls ``aux``, ``cooperation_nontrivial`` +1.0 more when main is not a thin wrapper (only
``return aux(...)``, or ``v = aux(...)`` then ``return v``), and
``cooperation_ignored_penalty`` -0.5 when a bare ``aux(...)`` statement ignores its result.

The joint program is the prompt's context (imports, helpers, constants) + the helper's code +
main's code. Code is taken from ```` ```python ```` blocks when there are any, else from the
whole answer. Main must write the whole ``def <entry_point>(...)``: a bare body counts as a
missing entry point. An ``aux`` that main defines itself shadows the helper's, and then no
cooperation term is given.

``infos[agent]["reward_terms"]`` holds every term by name (and ``cooperation``, ``total``);
``infos[agent]["measures"]`` the facts behind them: ``tests_passed``, ``tests_total``,
``sandbox_status``, ``failed_tests`` (assert and error, the first ``max_feedback_asserts``),
``syntax_error`` (the code at fault, line and column), the cooperation flags and
``stopped_at_level`` (1: entry point missing, 2: syntax error, 0: not stopped).

``infos[agent]["sandbox_status"]`` is there at reset and after every step: ``"ok"``, or
``"sandbox_error"`` when the sandbox itself could not judge the step's program (a dead or stuck
fork server, no file descriptors left, ...; never the program's own fault, which is a failed
test). The reward of a ``"sandbox_error"`` step is meaningless (its tests count as failed and
the feedback says they were not judged): drop it, do not learn from it. The finer status is
``infos[agent]["measures"]["sandbox_status"]`` (``ok``, ``timeout``, ``crashed``, ``no_tests``...).

Individual shares: ``helper_0`` gets ``structure_aux`` plus half of the tests and cooperation
terms; ``main_1`` gets ``structure_main`` + ``syntax`` plus the other half. The shares always sum
to the team reward.

Prompts: the helper sees the problem and, when the record has one, its ``helper_hint`` (what
``aux`` should do, with its signature); main sees the problem and the same hint, so that it
knows how to call ``aux``. Multi-turn: each agent's next prompt adds its own and its teammate's
last code and feedback: the reward, structure notes, a syntax error with its line and column,
the number of asserts passed, the first failed asserts with their errors, and the cooperation
flags. Single agent: ``coder_0``'s program is split at its top-level ``def aux`` (the helper's
part; the rest is main's), or at ``[PART 2]`` when the answer has that marker line.

## Data
Records in HumanEval's schema (``task_id``, ``prompt``, ``test``, ``entry_point``,
``canonical_solution``) with optional ``helper_hint``, ``canonical_aux`` and ``canonical_main``.
The bundled sample (written for this project, in that schema; ``canonical_aux`` +
``canonical_main`` reach the full reward) has disjoint ``train`` (24) and ``test`` (8) splits.
The hub set ``OpenMLRL/CoopHumanEval`` has one split, ``train``; as in the paper's reference
code (``configs/magrpo_che_config.yaml``: ``train_split: train[16:]``, ``eval_split:
train[:16]``) its first 16 problems are our ``"test"`` split and the rest ``"train"``. A local
file or folder is used as the requested split as it is.

## Version history
- v0: initial release, the paper's reward. The last turn ends the episode as a *termination*
  (nothing to bootstrap from; earlier builds said truncation, which RL libraries read as a time
  limit); truncation is left to a real time limit (a wrapper). ``infos`` have the same keys at
  reset (zero values) as at every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from llm_marl.envs.coding import CodingEnv
from llm_marl.factories import aec_factories

__all__ = ["COOPHUMANEVAL_HUB_SPLITS", "CoopHumanEvalEnv", "env", "parallel_env", "raw_env"]

#: Our split -> (the hub set's split, its rows): the paper's reference code's split.
COOPHUMANEVAL_HUB_SPLITS: Mapping[str, tuple[str, slice]] = MappingProxyType(
    {
        "train": ("train", slice(16, None)),
        "test": ("train", slice(0, 16)),
    }
)


class CoopHumanEvalEnv(CodingEnv):
    """A helper's ``aux`` (as the problem suggests) and main's entry point, scored together."""

    metadata: ClassVar[dict[str, Any]] = {**CodingEnv.metadata, "name": "coophumaneval_v0"}
    bundled_data = "coophumaneval"
    hub_dataset = "OpenMLRL/CoopHumanEval"
    hub_splits = COOPHUMANEVAL_HUB_SPLITS


parallel_env = CoopHumanEvalEnv

raw_env, env = aec_factories(CoopHumanEvalEnv)
