"""make / register / list_envs / spec."""

from __future__ import annotations

import pytest
from pettingzoo import ParallelEnv

import llm_marl
from llm_marl.envs.tldr_v0 import TLDREnv


def test_builtin_envs_are_listed_and_made() -> None:
    """The writing envs are registered and build as PettingZoo parallel envs."""
    assert {"tldr_v0", "arxiv_v0"} <= set(llm_marl.list_envs())
    for env_id in ("tldr_v0", "arxiv_v0"):
        env = llm_marl.make(env_id)
        assert isinstance(env, ParallelEnv)
        assert env.metadata["name"] == env_id


def test_make_passes_keyword_arguments() -> None:
    """make() forwards keyword arguments to the env."""
    env = llm_marl.make("tldr_v0", split="test", num_turns=2)
    assert (env.split, env.num_turns, len(env.tasks)) == ("test", 2, 16)


def test_unknown_id_suggests_close_ids() -> None:
    """A typo in the id names the nearest registered ids."""
    with pytest.raises(KeyError, match=r"did you mean 'tldr_v0'\?"):
        llm_marl.make("tldr_v1")


def test_register_a_user_env_with_defaults() -> None:
    """A user's own env registers with defaults that make() can override."""
    spec = llm_marl.register("mytldr_v0", TLDREnv, num_turns=2)
    try:
        assert llm_marl.make("mytldr_v0").num_turns == 2
        assert llm_marl.make("mytldr_v0", num_turns=3).num_turns == 3
        assert spec.factory() is TLDREnv
        assert "mytldr_v0" in llm_marl.list_envs()
        with pytest.raises(ValueError, match="already registered"):
            llm_marl.register("mytldr_v0", TLDREnv)
        llm_marl.register("mytldr_v0", "llm_marl.envs.tldr_v0:parallel_env", override=True)
        assert llm_marl.make("mytldr_v0").num_turns == 1
    finally:
        from llm_marl.registry import _REGISTRY

        del _REGISTRY.specs["mytldr_v0"]


@pytest.mark.parametrize("bad_id", ["TLDR_v0", "tldr", "tldr-v0", "0tldr_v0"])
def test_ids_need_a_version(bad_id: str) -> None:
    """Ids are lower-case names ending in _v<N>."""
    with pytest.raises(ValueError, match="must look like 'name_v0'"):
        llm_marl.register(bad_id, TLDREnv)


def test_string_entry_points_need_a_colon() -> None:
    """A string entry point is 'module:attribute'."""
    with pytest.raises(ValueError, match="module:attribute"):
        llm_marl.register("broken_v0", "llm_marl.envs.tldr_v0.parallel_env")


def test_user_override_of_a_builtin_id_survives_listing() -> None:
    """Overriding a built-in id is kept; listing envs afterwards does not clash."""
    original = llm_marl.spec("arxiv_v0")
    try:
        llm_marl.register("arxiv_v0", TLDREnv, override=True)
        assert "arxiv_v0" in llm_marl.list_envs()
        assert isinstance(llm_marl.make("arxiv_v0"), TLDREnv)
    finally:
        llm_marl.register("arxiv_v0", original.entry_point, override=True)
    assert llm_marl.make("arxiv_v0").metadata["name"] == "arxiv_v0"
