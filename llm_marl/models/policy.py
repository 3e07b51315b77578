"""``load_policy``: the one entry point that builds or reloads a team of LLM agents."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from llm_marl.models.loading import EMBEDDED, load_model
from llm_marl.models.openai_team import OPENAI_PREFIX, OpenAITeam
from llm_marl.models.team import (
    MANIFEST,
    LoRASettings,
    LoRATeam,
    SeparateTeam,
    Team,
    read_manifest,
)

__all__ = ["DEFAULT_AGENT", "load_policy"]

#: The agent name of a policy loaded without ``agents``.
DEFAULT_AGENT = "agent_0"
_DEFAULT_LORA = LoRASettings()


def load_policy(
    name: str | os.PathLike[str] | Mapping[str, str] = EMBEDDED,
    /,
    *,
    agents: Sequence[str] | None = None,
    lora: LoRASettings | None = _DEFAULT_LORA,
    separate: bool = False,
    keep_reference: bool = False,
    dtype: str | None = None,
    device: str | None = None,
    model: str | None = None,
) -> Team:
    """Build a team of agents on ``name``, or reload a team saved with ``save_pretrained``.

    Args:
        name: ``"embedded"`` (default: SmolLM2-135M-Instruct, offline), ``"tiny"`` (a random
            tiny Llama for tests), a local model folder, a hub id, a saved team folder (with
            ``team.json``), a mapping agent -> model name for a heterogeneous team, or
            ``"openai:<base URL>"`` for a served model behind an OpenAI-compatible API
            (:class:`~llm_marl.models.openai_team.OpenAITeam`: sampling only, for evaluation).
        agents: agent names (default ``["agent_0"]``; the env's agent names when training).
        lora: each agent's LoRA adapter (default); ``None`` trains full weights, which needs
            one model per agent.
        separate: one model copy per agent even when one base with adapters would do.
        keep_reference: with full fine-tuning, keep a frozen copy per agent for a KL term.
        dtype: torch dtype name (default float32); device: default CUDA when available.
        model: with ``"openai:..."``, the served model's name (default: the first the server
            lists); not used otherwise.

    A saved team folder reloads as it was saved: its manifest decides the agents, LoRA and
    separate models (``lora``, ``separate`` and ``keep_reference`` are then not used), and its
    adapters or weights load trainable. Sampling draws from torch's global generator: seed it
    with ``torch.manual_seed`` for reproducible samples.
    """
    if isinstance(name, str) and name.startswith(OPENAI_PREFIX):
        names = list(agents) if agents is not None else [DEFAULT_AGENT]
        return OpenAITeam(name.removeprefix(OPENAI_PREFIX), names, model=model)
    if model is not None:
        raise ValueError(
            f"model={model!r} names the served model of an 'openai:<URL>' policy; to load "
            f"a local model pass its name first: load_policy({model!r})"
        )
    if isinstance(name, Mapping):
        if agents is not None and list(agents) != list(name):
            raise ValueError(f"agents {list(agents)} differ from the mapping's {list(name)}")
        return _separate(dict(name), lora, keep_reference, dtype, device)
    if (Path(name).expanduser() / MANIFEST).is_file():
        return _reload(Path(name).expanduser(), agents, dtype, device)
    names = list(agents) if agents is not None else [DEFAULT_AGENT]
    if lora is None or separate:
        return _separate(dict.fromkeys(names, str(name)), lora, keep_reference, dtype, device)
    base, tokenizer = load_model(name, dtype=dtype, device=device)
    return LoRATeam(base, tokenizer, names, lora, source=_source_name(name))


def _separate(
    sources: dict[str, str],
    lora: LoRASettings | None,
    keep_reference: bool,
    dtype: str | None,
    device: str | None,
    adapters: Mapping[str, Path] | None = None,
) -> SeparateTeam:
    members = {a: load_model(name, dtype=dtype, device=device) for a, name in sources.items()}
    return SeparateTeam(
        members,
        sources={a: _source_name(n) for a, n in sources.items()},
        lora=lora,
        keep_reference=keep_reference,
        adapters=adapters,
    )


def _reload(
    root: Path, agents: Sequence[str] | None, dtype: str | None, device: str | None
) -> Team:
    manifest = read_manifest(root)
    saved = list(manifest["agents"])
    if agents is not None and list(agents) != saved:
        raise ValueError(f"{root} holds agents {saved}, not {list(agents)}")
    lora = LoRASettings(**manifest["lora"]) if manifest.get("lora") else None
    adapters = {
        a: root / entry["adapter"] for a, entry in manifest["agents"].items() if "adapter" in entry
    }
    if manifest["kind"] == "lora":
        assert lora is not None
        base, tokenizer = load_model(manifest["base"], dtype=dtype, device=device)
        return LoRATeam(base, tokenizer, saved, lora, source=manifest["base"], adapters=adapters)
    sources = {
        a: entry["base"] if "adapter" in entry else str(root / entry["model"])
        for a, entry in manifest["agents"].items()
    }
    return _separate(sources, lora, False, dtype, device, adapters=adapters)


def _source_name(model: str | os.PathLike[str]) -> str:
    """How a manifest names a base model: built-in names and hub ids as they are, folders
    as absolute paths (so a saved team reloads from any working directory)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)
