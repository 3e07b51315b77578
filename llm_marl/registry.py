"""The registry of environment ids: ``make``, ``register``, ``list_envs``, ``spec``.

Ids carry a version (``tldr_v0``). Entry points are ``"module:attribute"`` strings imported on
first use, so listing or registering envs imports nothing heavy. ``make`` also takes such a
string in place of an id (``make("mypackage.envs:parallel_env")``), so an env that is not
registered can be built, and trained from the command line (``--env mypackage.envs:factory``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pettingzoo import ParallelEnv

from llm_marl.env_options import unknown_option_error

__all__ = ["EnvSpec", "list_envs", "make", "register", "spec"]

_ID = re.compile(r"^[a-z][a-z0-9_]*_v\d+$")
_ENTRY_POINT = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class EnvSpec:
    """A registered environment: its id, where its factory lives, and default keyword args."""

    id: str
    entry_point: str | Callable[..., ParallelEnv]
    """``"package.module:factory"`` or the factory itself; it returns a ``ParallelEnv``."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Defaults passed to the factory, overridden by ``make(id, **kwargs)``."""

    def factory(self) -> Callable[..., ParallelEnv]:
        """The callable that builds the env, imported on first use."""
        if callable(self.entry_point):
            return self.entry_point
        module_name, _, attribute = self.entry_point.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            hint = ""
            if isinstance(error, ModuleNotFoundError) and error.name == module_name.split(".")[0]:
                hint = (
                    f" (install the package that holds it, or put its folder on PYTHONPATH: "
                    f"PYTHONPATH=. llm-marl ... when {module_name.split('.')[0]}/ is here)"
                )
            raise ImportError(
                f"{self.entry_point!r}: cannot import {module_name}: {error}{hint}"
            ) from error
        factory = getattr(module, attribute, None)
        if not callable(factory):
            raise ValueError(
                f"{self.entry_point!r}: module {module_name} has no callable {attribute!r}"
            )
        return factory  # type: ignore[no-any-return]


class _Registry:
    """Id -> spec, with the built-in envs registered on first lookup."""

    def __init__(self) -> None:
        self.specs: dict[str, EnvSpec] = {}
        self.builtins_loaded = False

    def load_builtins(self) -> None:
        if not self.builtins_loaded:
            self.builtins_loaded = True
            importlib.import_module("llm_marl.envs")


_REGISTRY = _Registry()


def register(
    env_id: str,
    entry_point: str | Callable[..., ParallelEnv],
    *,
    override: bool = False,
    **kwargs: Any,
) -> EnvSpec:
    """Register ``env_id`` (``name_vN``); ``override=True`` replaces an existing entry."""
    _REGISTRY.load_builtins()  # so that built-ins never overwrite a user's entry later
    if not _ID.match(env_id):
        raise ValueError(
            f"env id {env_id!r} must look like 'name_v0': lower-case letters, digits and "
            "underscores, ending in a version"
        )
    if env_id in _REGISTRY.specs and not override:
        raise ValueError(f"env id {env_id!r} is already registered; pass override=True")
    if isinstance(entry_point, str) and ":" not in entry_point:
        raise ValueError(f"entry_point must be 'module:attribute', got {entry_point!r}")
    registered = EnvSpec(env_id, entry_point, dict(kwargs))
    _REGISTRY.specs[env_id] = registered
    return registered


def list_envs() -> list[str]:
    """Ids of every registered environment, sorted."""
    _REGISTRY.load_builtins()
    return sorted(_REGISTRY.specs)


def spec(env_id: str) -> EnvSpec:
    """The registration of ``env_id``; a ``KeyError`` suggests close ids when it is unknown.

    An unregistered ``"package.module:factory"`` gets a spec of its own (nothing registered).
    """
    _REGISTRY.load_builtins()
    if env_id not in _REGISTRY.specs and _ENTRY_POINT.fullmatch(env_id):
        return EnvSpec(env_id, env_id)
    if env_id not in _REGISTRY.specs:
        from llm_marl.cli_parser import did_you_mean

        raise KeyError(
            f"no env registered as {env_id!r}{did_you_mean(env_id, _REGISTRY.specs)} "
            f"(registered: {list_envs()}; an env of your own: 'package.module:factory')"
        )
    return _REGISTRY.specs[env_id]


def make(env_id: str, **kwargs: Any) -> ParallelEnv:
    """Build the registered env ``env_id`` as a PettingZoo ``ParallelEnv``.

    Keyword arguments override the registered defaults, for example
    ``make("tldr_v0", split="test", num_turns=2, reward_mode="individual")``.
    """
    registered = spec(env_id)
    factory, options = registered.factory(), {**registered.kwargs, **kwargs}
    try:
        return factory(**options)
    except TypeError as error:
        better = unknown_option_error(env_id, factory, options, error)
        if better is None:
            raise
        raise better from error
