"""Every registered env module has PettingZoo's shape and a documentation page."""

from __future__ import annotations

import importlib

import pytest
from pettingzoo import AECEnv, ParallelEnv
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
