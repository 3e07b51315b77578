"""Every registered env passes PettingZoo's API tests, determinism and bad-input checks.

Envs with reference answers (``env.reference_actions()``) are also rolled out with them; a newly
registered env joins these tests without any edit here.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import pytest

import llm_marl
import llm_marl.envs.tldr_v0
from llm_marl.conformance import (
    check_aec_api,
    check_bad_input,
    check_determinism,
    check_env,
    check_max_cycles,
    check_parallel_api,
    check_reference_actions,
    check_render,
    check_vector_env,
    has_reference_actions,
    reference_answer,
    rollout,
)
from llm_marl.envs.coophumaneval_v0 import CoopHumanEvalEnv
from llm_marl.envs.tldr_v0 import TLDR3Env, TLDREnv
from llm_marl.registry import _REGISTRY
from llm_marl.spaces import UnicodeText

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "three_turns": {"num_turns": 3},
    "single_agent": {"single_agent": True},
    "individual_two_turns": {"reward_mode": "individual", "num_turns": 2},
}
CASES = [(env_id, name) for env_id in llm_marl.list_envs() for name in VARIANTS]
IDS = [f"{env_id}-{name}" for env_id, name in CASES]


def factory(env_id: str, variant: str):
    return functools.partial(llm_marl.make, env_id, **VARIANTS[variant])


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
    check_determinism(factory(env_id, variant), answer=reference_answer)


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_reference_answers_reach_every_reward_level(env_id: str, variant: str) -> None:
    """The env's reference answers score on every level, so determinism compares all terms."""
    make_env = factory(env_id, variant)
    if not has_reference_actions(make_env):
        pytest.skip(f"{env_id} has no reference answers; it is checked with sampled actions")
    check_reference_actions(make_env)
    trace = rollout(make_env(), seed=7, episodes=3, answer=reference_answer)
    infos = [info for kind, *outputs in trace if kind == "step" for info in outputs[-1].values()]
    assert infos and all(info["measures"]["stopped_at_level"] == 0 for info in infos)
    assert min(info["team_reward"] for info in infos) > 2.0


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_bad_input_raises_and_leaves_env_unchanged(env_id: str, variant: str) -> None:
    """Non-str, missing, unknown agents and steps outside an episode raise; state is kept."""
    check_bad_input(factory(env_id, variant))


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_vector_env_utilities(env_id: str, variant: str) -> None:
    """Observations batch, iterate, flatten and share memory unchanged; batched actions step."""
    check_vector_env(factory(env_id, variant))


@pytest.mark.parametrize(("env_id", "variant"), CASES, ids=IDS)
def test_render_and_max_cycles(env_id: str, variant: str) -> None:
    """pettingzoo.test.render_test and max_cycles_test pass (max_cycles beats num_turns)."""
    check_render(factory(env_id, variant))
    check_max_cycles(factory(env_id, variant))


BUILTINS = ("tldr_v0", "arxiv_v0", "humaneval_v0", "coophumaneval_v0")


def test_every_builtin_env_is_covered_with_references() -> None:
    """The parametrisation above really spans the writing and coding envs, with references."""
    assert set(BUILTINS) <= set(llm_marl.list_envs())
    for env_id in BUILTINS:
        assert has_reference_actions(lambda env_id=env_id: llm_marl.make(env_id)), env_id


@pytest.fixture
def registered():
    """Register envs for one test (``registered(env_id, factory)``), removed afterwards."""
    added: list[str] = []

    def add(env_id: str, entry_point) -> None:
        llm_marl.register(env_id, entry_point)
        added.append(env_id)

    yield add
    for env_id in added:
        del _REGISTRY.specs[env_id]


class _ThreeCoders(CoopHumanEvalEnv):
    """Two helpers (``aux_0``, ``aux_1``) and main: a 3-agent coding team."""

    roles = ("helper", "helper", "main")


@pytest.mark.parametrize(
    ("env_id", "cls", "agents"),
    [
        ("tldr3_test_v0", TLDR3Env, ["concise_0", "detailed_1", "extended_2"]),
        ("coophumaneval3_test_v0", _ThreeCoders, ["helper_0", "helper_1", "main_2"]),
    ],
)
@pytest.mark.parametrize("variant", VARIANTS)
def test_three_agent_envs_pass_check_env(registered, env_id, cls, agents, variant) -> None:
    """Teams of three pass every conformance check, references included, in every variant."""
    registered(env_id, cls)
    make_env = factory(env_id, variant)
    expected = [f"{cls.solo_role}_0"] if VARIANTS[variant].get("single_agent") else agents
    assert make_env().possible_agents == expected
    assert has_reference_actions(make_env)
    check_env(make_env)


class _CountingTLDR(TLDREnv):
    """A user's env with its own references, counting how often they are asked for."""

    calls: ClassVar[list[int]] = []

    def reference_parts(self, task, turn):
        self.calls.append(turn)
        return ["A plain first answer of a handful of words.", "However, " + task.document]


class _NoReferenceTLDR(TLDREnv):
    """A user's env without reference answers."""

    def reference_parts(self, task, turn):
        return llm_marl.CollaborativeTextEnv.reference_parts(self, task, turn)


def test_a_newly_registered_env_is_checked_with_its_own_references(registered) -> None:
    """A new id joins the checks and its reference_actions() drive the rollouts."""
    registered("counting_test_v0", _CountingTLDR)
    assert "counting_test_v0" in llm_marl.list_envs()
    make_env = factory("counting_test_v0", "three_turns")
    _CountingTLDR.calls.clear()
    trace = rollout(make_env(), seed=7, episodes=2, answer=reference_answer)
    assert _CountingTLDR.calls and set(_CountingTLDR.calls) == {0, 1, 2}
    env = make_env()
    env.reset(seed=7)
    assert trace[1][1] == env.reference_actions()
    check_determinism(make_env, answer=reference_answer)


def test_envs_without_references_fall_back_to_sampled_actions(registered) -> None:
    """reference_actions raises NotImplementedError; the checks then use the plain answers."""
    registered("noref_test_v0", _NoReferenceTLDR)
    env = llm_marl.make("noref_test_v0")
    env.reset(seed=0)
    with pytest.raises(NotImplementedError, match="_NoReferenceTLDR has no reference answers"):
        env.reference_actions()
    assert not has_reference_actions(lambda: llm_marl.make("noref_test_v0"))
    assert reference_answer(env, "concise_0", 1).startswith("concise_0 in round 1")
    check_env(functools.partial(llm_marl.make, "noref_test_v0"))


def test_reference_check_catches_answers_that_stop_the_reward() -> None:
    """check_reference_actions is not vacuous: empty answers stop the reward at level 1."""

    class Empty(TLDREnv):
        def reference_parts(self, task, turn):
            return ["", ""]

    with pytest.raises(AssertionError, match="stops the reward at level 1"):
        check_reference_actions(Empty)


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


class _StrObservationTLDR(TLDREnv):
    """A user's env with plain-str observations (the README allows them)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observation_spaces = {
            a: UnicodeText(self.max_prompt_chars) for a in self.possible_agents
        }

    def _observations(self, task, history):
        return {a: obs["text"] for a, obs in super()._observations(task, history).items()}


def test_check_env_accepts_plain_str_observations() -> None:
    """api_test reads the dtype of non-dict observations; check_env shows them as dicts."""
    env = _StrObservationTLDR()
    assert isinstance(env.reset(seed=0)[0]["concise_0"], str)
    check_env(functools.partial(_StrObservationTLDR, num_turns=2))


def test_check_env_without_keywords_says_what_it_skipped() -> None:
    """A zero-argument factory cannot take render_mode or max_cycles: a warning says so."""
    with pytest.warns(UserWarning, match="skipped the render and max_cycles checks"):
        check_env(lambda: llm_marl.make("tldr_v0"))


class _TextReturningHuman(TLDREnv):
    """Returns its text in 'human' mode (the old behaviour): must fail the render check."""

    def render(self):
        return self._render_text() if self.render_mode else None


class _FixedHorizon(TLDREnv):
    """Ignores max_cycles (keeps one turn): must fail the max_cycles check."""

    def __init__(self, max_cycles=None, **kwargs):
        super().__init__(**kwargs)


def test_render_and_max_cycles_checks_catch_violations() -> None:
    """The render and max_cycles checks are not vacuous."""
    with pytest.raises(AssertionError):
        check_render(_TextReturningHuman)
    with pytest.raises(AssertionError):
        check_max_cycles(_FixedHorizon)


class _CharsetText(TLDREnv):
    """Observes through gymnasium's own Text, whose charset misses prompt characters."""

    def __init__(self, **kwargs: Any) -> None:
        from gymnasium import spaces

        super().__init__(**kwargs)
        self.observation_spaces = {
            a: spaces.Dict({"text": spaces.Text(self.max_prompt_chars, min_length=0)})
            for a in self.possible_agents
        }


def test_vector_check_catches_prompts_outside_the_space() -> None:
    """The vector check is not vacuous: gymnasium's Text has no space character."""
    with pytest.raises(AssertionError, match="outside batch_space"):
        check_vector_env(_CharsetText)
