"""Adapters to the libraries users already have, one module per library.

Each ``llm_marl.integrations.<library>`` module imports its library, so import only the one you
use; the core package never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Container

__all__ = ["register_missing"]


def register_missing(
    env_ids: list[str] | None,
    names: Callable[[str], list[str]],
    registered: Container[str],
    register: Callable[[str, str], None],
) -> list[str]:
    """Register each of ``names(env_id)`` not yet in ``registered`` with ``register(name,
    env_id)``, for ``env_ids`` (default: every llm-marl env); the names registered.

    The adapters' ``register_envs`` share it: an unknown id raises ``KeyError`` with close
    matches, and ids already registered are left as they are (calling twice is harmless).
    """
    import llm_marl

    added = []
    for env_id in env_ids or llm_marl.list_envs():
        llm_marl.spec(env_id)
        for name in names(env_id):
            if name not in registered:
                register(name, env_id)
                added.append(name)
    return added
