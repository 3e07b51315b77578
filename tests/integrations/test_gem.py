"""GEM's own registry, make and multi-agent step loop on every llm-marl env."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import llm_marl

gem = pytest.importorskip("gem")

from gem.multiagent import MultiAgentEnv  # noqa: E402

from llm_marl.integrations.gem import register_envs  # noqa: E402


def test_every_env_is_registered_once() -> None:
    """``gem.make`` knows every env id under the llm_marl namespace; re-registering is a no-op."""
    register_envs()
    for env_id in llm_marl.list_envs():
        assert isinstance(gem.make(f"llm_marl:{env_id}"), MultiAgentEnv)
    assert register_envs() == []


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_step_loop_matches_the_env(env_id: str) -> None:
    """GEM's loop sees the env's prompts and rewards; agents leave at the end."""
    register_envs()
    env = gem.make(f"llm_marl:{env_id}", num_turns=2)
    plain = llm_marl.make(env_id, num_turns=2)
    observations, _ = env.reset(seed=5)
    expected, _ = plain.reset(seed=5)
    steps = 0
    while env.agents:
        assert observations == {a: o["text"] for a, o in expected.items()}
        assert env.get_state(env.agents[0])[0] == observations[env.agents[0]]
        actions = {agent: f"answer {steps} by {agent}" for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        expected, plain_rewards, *_ = plain.step(actions)
        assert rewards == pytest.approx(plain_rewards)
        assert infos[plain.possible_agents[0]]["turn"] == steps
        steps += 1
    assert steps == 2
    assert all(terminations[a] or truncations[a] for a in plain.possible_agents)


def test_single_agent_view_has_one_agent() -> None:
    """``gem.make(..., single_agent=True)`` plays the single-agent view."""
    register_envs()
    env = gem.make("llm_marl:tldr_v0", single_agent=True)
    observations, _ = env.reset(seed=0)
    assert list(observations) == ["writer_0"]


def test_importing_the_adapter_leaves_logging_alone() -> None:
    """``import gem`` calls ``logging.basicConfig``; the adapter undoes it for the root logger."""
    code = (
        "import logging; import llm_marl.integrations.gem; "
        "r = logging.getLogger(); print(len(r.handlers), r.level)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", str(logging.WARNING)]
