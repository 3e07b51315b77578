"""Every registered env module has PettingZoo's shape and a documentation page."""

from __future__ import annotations

import importlib

import pytest
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.test import max_cycles_test, render_test
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

import llm_marl

SECTIONS = ("Agents", "Observation space", "Action space", "Reward", "Data", "Version")


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_module_has_the_pettingzoo_trio_and_a_doc_page(env_id: str) -> None:
    """parallel_env, raw_env and env exist; the docstring documents agents, reward, data."""
    module = importlib.import_module(f"llm_marl.envs.{env_id}")
    assert isinstance(module.parallel_env(), ParallelEnv)
    assert isinstance(module.raw_env(), AECEnv)
    assert isinstance(module.env(), OrderEnforcingWrapper)
    doc = module.__doc__
    for needed in SECTIONS:
        assert needed in doc, needed
    for agent in module.parallel_env().possible_agents:
        assert agent in doc
    solo = module.parallel_env(single_agent=True).possible_agents
    assert all(agent in doc for agent in solo)


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_pettingzoo_render_and_max_cycles_tests_pass(env_id: str, capsys) -> None:
    """pettingzoo.test.render_test and max_cycles_test pass on the module; 'human' prints."""
    module = importlib.import_module(f"llm_marl.envs.{env_id}")
    render_test(module.env)
    max_cycles_test(module)
    env = module.parallel_env(render_mode="human")
    env.reset(seed=0)
    capsys.readouterr()
    assert env.render() is None and env_id in capsys.readouterr().out


def _keys(info: dict) -> set[str]:
    nested = {f"{k}.{sub}" for k, v in info.items() if isinstance(v, dict) for sub in _keys(v)}
    return set(info) | nested


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
@pytest.mark.parametrize("kwargs", [{"num_turns": 2}, {"single_agent": True}], ids=str)
def test_horizon_terminates_and_infos_keep_their_keys(env_id: str, kwargs: dict) -> None:
    """The last turn is a termination (truncation stays False), and reset's infos have the
    keys of every step's infos, nested ones included, as TorchRL's specs need."""
    env = llm_marl.make(env_id, **kwargs)
    _, infos = env.reset(seed=0)
    expected = {agent: _keys(info) for agent, info in infos.items()}
    assert infos[env.agents[0]]["turn"] == 0 and infos[env.agents[0]]["team_reward"] == 0.0
    ends = []
    while env.agents:
        *_, terminations, truncations, infos = env.step(env.reference_actions())
        assert {agent: _keys(info) for agent, info in infos.items()} == expected
        assert not any(truncations.values())
        ends.append(set(terminations.values()))
    assert ends == [{False}] * (len(ends) - 1) + [{True}]
