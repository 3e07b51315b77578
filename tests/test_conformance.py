"""Every registered env passes PettingZoo's API tests, determinism and bad-input checks."""

from __future__ import annotations

from typing import Any

import pytest

import llm_marl
import llm_marl.envs.tldr_v0
from llm_marl.conformance import (
    check_aec_api,
    check_bad_input,
    check_determinism,
    check_parallel_api,
    rollout,
)
from llm_marl.envs.coding import CodingEnv

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "three_turns": {"num_turns": 3},
    "single_agent": {"single_agent": True},
    "individual_two_turns": {"reward_mode": "individual", "num_turns": 2},
}
CASES = [(env_id, name) for env_id in llm_marl.list_envs() for name in VARIANTS]
IDS = [f"{env_id}-{name}" for env_id, name in CASES]


# Words per answer of each writing agent, chosen so that every reward level scores.
GOOD_LENGTHS = {"tldr_v0": (15, 40), "arxiv_v0": (130, 185)}


def factory(env_id: str, variant: str):
    return lambda: llm_marl.make(env_id, **VARIANTS[variant])


def good_answer(env, agent: str, step: int) -> str:
    """An answer that reaches every reward term of the env's reward v0."""
    if isinstance(env, CodingEnv):
        return good_coding_answer(env, agent, step)
    return good_writing_answer(env, agent, step)


def good_coding_answer(env, agent: str, step: int) -> str:
    """The task's canonical aux and main; else its canonical solution as aux, main built on it."""
    task = env.task
    aux, main = task.canonical_aux, task.canonical_main
    if aux is None or main is None:
        aux = (task.prompt + task.canonical_solution).replace(
            f"def {task.entry_point}(", "def aux("
        )
        main = (
            f"def {task.entry_point}(*args):\n    result = aux(*args)\n    checked = result\n"
            "    return checked\n"
        )
    if env.single_agent:
        return f"```python\n{aux}\n\n{main}\n```"
    return aux if agent.startswith("helper") else f"```python\n{main}```"


def good_writing_answer(env, agent: str, step: int) -> str:
    """Answers cut from the task's own document, sized to pass every level of reward v0."""
    words = env.task.document.split() * 2
    lengths = GOOD_LENGTHS[env.metadata["name"]]
    parts = [" ".join(words[: lengths[0] - step]), "However, " + " ".join(words[: lengths[1]])]
    if env.single_agent:
        return f"[PART 1]\n{parts[0]}\n[PART 2]\n{parts[1]}"
    return parts[env.team_agents.index(agent)]


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_parallel_api(env_id: str, variant: str) -> None:
    """pettingzoo.test.parallel_api_test passes without warnings."""
    check_parallel_api(factory(env_id, variant))


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_aec_api(env_id: str, variant: str) -> None:
    """pettingzoo.test.api_test passes on parallel_to_aec(env) without warnings."""
    check_aec_api(factory(env_id, variant))


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_seeded_multi_step_determinism(env_id: str, variant: str) -> None:
    """Same seed and actions give identical observations, rewards and infos over episodes."""
    check_determinism(factory(env_id, variant))
    check_determinism(factory(env_id, variant), answer=good_answer)


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_determinism_answers_reach_every_reward_level(env_id: str, variant: str) -> None:
    """The answers of the determinism test score on every level, so all terms are compared."""
    trace = rollout(factory(env_id, variant)(), seed=7, episodes=3, answer=good_answer)
    infos = [info for kind, *outputs in trace if kind == "step" for info in outputs[-1].values()]
    assert infos and all(info["measures"]["stopped_at_level"] == 0 for info in infos)
    assert min(info["team_reward"] for info in infos) > 2.0


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_bad_input_raises_and_leaves_env_unchanged(env_id: str, variant: str) -> None:
    """Non-str, missing, unknown agents and steps outside an episode raise; state is kept."""
    check_bad_input(factory(env_id, variant))


def test_every_builtin_env_is_covered() -> None:
    """The parametrisation above really spans the writing and coding envs."""
    assert {"tldr_v0", "arxiv_v0", "humaneval_v0", "coophumaneval_v0"} <= set(llm_marl.list_envs())


class _UnseededTLDR(llm_marl.envs.tldr_v0.TLDREnv):
    """Draws its task from fresh entropy, ignoring the seed: must fail the determinism check."""

    def reset(self, seed=None, options=None):
        import secrets

        return super().reset(seed=secrets.randbits(32), options=options)


class _LeakyTLDR(llm_marl.envs.tldr_v0.TLDREnv):
    """Records a turn before validating the actions: must fail the bad-input check."""

    def step(self, actions):
        self._history += (llm_marl.TurnRecord({}, llm_marl.Outcome(0.0, {}, {})),)
        return super().step(actions)


def test_determinism_check_catches_an_unseeded_env() -> None:
    """The determinism check is not vacuous."""
    with pytest.raises(AssertionError, match=r"diverge|different tasks"):
        check_determinism(_UnseededTLDR)


def test_bad_input_check_catches_state_changed_by_a_rejected_step() -> None:
    """The bad-input check is not vacuous."""
    with pytest.raises(AssertionError, match=r"changed|did not end"):
        check_bad_input(lambda: _LeakyTLDR(num_turns=3))
