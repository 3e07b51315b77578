"""`make` names a mistyped env option and builds envs given as `package.module:factory`."""

from __future__ import annotations

import pytest

import llm_marl
from llm_marl.env_options import factory_options


def test_a_mistyped_option_gets_the_closest_one_and_the_list() -> None:
    with pytest.raises(TypeError) as error:
        llm_marl.make("tldr_v0", num_turn=2)
    message = str(error.value)
    assert message.startswith("tldr_v0 has no option 'num_turn'; did you mean 'num_turns'?")
    assert "data, split, max_tasks, num_turns, max_cycles, reward_mode" in message


def test_options_are_collected_up_the_classes_that_pass_kwargs_on() -> None:
    from llm_marl.envs.tldr_v0 import TLDREnv

    assert {"data", "split", "num_turns", "reward_mode"} <= set(factory_options(TLDREnv))

    def factory(size: int, *, colour: str = "red") -> None: ...

    assert factory_options(factory) == ["size", "colour"]


def test_an_unregistered_factory_can_be_named_by_module_and_attribute() -> None:
    env = llm_marl.make("llm_marl.envs.tldr_v0:TLDR3Env", split="test")
    assert env.possible_agents == ["concise_0", "detailed_1", "extended_2"]
    with pytest.raises(ValueError, match="has no callable 'nope'"):
        llm_marl.make("llm_marl.envs.tldr_v0:nope")
    with pytest.raises(ImportError, match=r"'no_such_pkg\.envs:f': cannot import no_such_pkg"):
        llm_marl.make("no_such_pkg.envs:f")
    assert "no_such_pkg.envs:f" not in llm_marl.list_envs()


def test_an_unknown_id_points_to_the_module_factory_form() -> None:
    with pytest.raises(KeyError, match=r"'package\.module:factory'"):
        llm_marl.make("mine_v0")
