"""Teams of LLM agents: one base model with a LoRA adapter per agent, or one model per agent.

Both kinds answer the same calls: :meth:`Team.generate` samples G completions per
``(agent, prompt)`` request, :meth:`Team.logprobs` recomputes completion log-probabilities
under each agent's current weights (with gradients, for the loss),
:meth:`Team.reference_logprobs` gives them under the frozen reference policy (for a KL term),
:meth:`Team.trainable_parameters` gives one agent's parameters (for its own optimiser), and
:meth:`Team.save_pretrained` writes a folder that :func:`~llm_marl.models.load_policy` reads.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from llm_marl.models.decode import FusedDecoding
from llm_marl.models.generation import sample_completions
from llm_marl.models.logprobs import completion_logprobs
from llm_marl.models.routing import adapters_off
from llm_marl.models.sampling import Completion, SamplingConfig

__all__ = ["MANIFEST", "LoRASettings", "LoRATeam", "SeparateTeam", "Team"]

#: File name of the team manifest inside a saved team folder.
MANIFEST = "team.json"
MANIFEST_FORMAT = "llm-marl-team"
#: File name of the team's model card (PEFT's own cards are replaced by it).
CARD = "README.md"
_AGENT_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: PEFT parameter groups that hold one LoRA adapter's weights (``...lora_A.<adapter>.weight``).
_LORA_PARTS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")


@dataclass(frozen=True)
class LoRASettings:
    """The LoRA adapter each agent gets (PEFT ``LoraConfig`` fields)."""

    r: int = 16
    """Rank of the update matrices."""
    alpha: int = 32
    """Scaling numerator (the update is scaled by alpha / r)."""
    target_modules: str | tuple[str, ...] | None = None
    """Module names to adapt; ``"all-linear"`` for every linear layer but the output head;
    None for PEFT's default of the model type (``q_proj`` and ``v_proj`` for Llama), which
    keeps the per-token cost of mixed-adapter batches low."""

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"LoRA rank r must be an integer >= 1, got {self.r!r}")
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def peft_config(self) -> Any:
        """The equivalent ``peft.LoraConfig`` for a causal LM."""
        from peft import LoraConfig

        targets = self.target_modules
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=0.0,  # teams run in eval mode: sampling and the loss see one policy
            target_modules=targets
            if targets is None or isinstance(targets, str)
            else list(targets),
            task_type="CAUSAL_LM",
        )


class Team(ABC):
    """A team of agents, each with its own trainable policy."""

    agents: tuple[str, ...]

    def __init__(self, agents: Sequence[str], source: str) -> None:
        if not agents or len(set(agents)) != len(agents):
            raise ValueError(f"a team needs distinct agent names, got {list(agents)}")
        for agent in agents:
            if not isinstance(agent, str) or not _AGENT_NAME.fullmatch(agent) or agent == "default":
                raise ValueError(
                    f"agent name {agent!r} must be letters, digits, '_' or '-' (it names a "
                    "folder and a PEFT adapter; 'default' is PEFT's own), such as 'helper_0'"
                )
        self.agents = tuple(agents)
        self.source = source

    # --------------------------------------------------------------- to implement
    @abstractmethod
    def generate(
        self, requests: Sequence[tuple[str, str]], config: SamplingConfig
    ) -> list[list[Completion]]:
        """``config.num_samples`` completions for each ``(agent, prompt)``, batched."""

    def logprobs(
        self,
        completions: Sequence[Completion],
        *,
        temperature: float | None = None,
        batch_size: int | None = None,
    ) -> list[torch.Tensor]:
        """Per-token log-probs of each completion under its agent's current policy (grad on).

        ``temperature`` defaults to each completion's sampling temperature (so the first
        importance ratio is 1); ``batch_size`` bounds the rows of one forward pass.
        """
        for c in completions:
            self.check_agent(c.agent)
        return self._logprobs(completions, _temperatures(completions, temperature), batch_size)

    def reference_logprobs(
        self,
        completions: Sequence[Completion],
        *,
        temperature: float | None = None,
        batch_size: int | None = None,
    ) -> list[torch.Tensor]:
        """Per-token log-probs under the frozen reference policy (no grad); as :meth:`logprobs`."""
        for c in completions:
            self.check_agent(c.agent)
        temperatures = _temperatures(completions, temperature)
        with torch.no_grad():
            return self._logprobs(completions, temperatures, batch_size, reference=True)

    @abstractmethod
    def _logprobs(
        self,
        completions: Sequence[Completion],
        temperatures: list[float],
        batch_size: int | None,
        *,
        reference: bool = False,
    ) -> list[torch.Tensor]:
        """Log-probs under the current policies, or the reference ones."""

    @abstractmethod
    def trainable_parameters(self, agent: str) -> list[torch.nn.Parameter]:
        """The parameters that only ``agent``'s updates change."""

    @abstractmethod
    def tokenizer(self, agent: str) -> Any:
        """The tokenizer of ``agent``'s model."""

    @abstractmethod
    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write the team (manifest plus one folder per agent) to ``path``."""

    # --------------------------------------------------------------- shared
    def check_agent(self, agent: str) -> str:
        """``agent`` if it is in the team, else a ``KeyError`` listing the team."""
        if agent not in self.agents:
            raise KeyError(f"agent {agent!r} is not in the team; agents are {list(self.agents)}")
        return agent

    def _check_requests(self, requests: Sequence[tuple[str, str]]) -> None:
        for item in requests:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str)):
                raise TypeError(f"a request is an (agent, prompt) pair of strings, got {item!r}")
            self.check_agent(item[0])

    def num_parameters(self, agent: str | None = None) -> int:
        """Trainable parameters of ``agent``, or of the whole team."""
        names = [agent] if agent is not None else list(self.agents)
        return sum(p.numel() for a in names for p in self.trainable_parameters(a))

    def __repr__(self) -> str:
        per_agent = self.num_parameters(self.agents[0])
        return (
            f"{type(self).__name__}(source={self.source!r}, agents={list(self.agents)}, "
            f"trainable_per_agent={per_agent:,})"
        )


class LoRATeam(Team):
    """One frozen base model shared by all agents, plus one LoRA adapter per agent.

    Memory is one model plus small adapters. Generation and log-probabilities batch every
    agent's rows through PEFT's mixed-adapter forward (``adapter_names``); the base with
    adapters disabled is the reference policy at no extra memory.
    """

    def __init__(
        self,
        base: Any,
        tokenizer: Any,
        agents: Sequence[str],
        lora: LoRASettings,
        *,
        source: str,
        adapters: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        """Wrap ``base`` with one adapter per agent: new ones, or saved ones from ``adapters``."""
        super().__init__(agents, source)
        self.lora = lora
        self._tokenizer = tokenizer
        with _quiet_peft():
            self.model = _attach_adapters(base, self.agents, lora, adapters)
        self.model.set_requires_grad(list(self.agents), requires_grad=True)
        self.model.eval()  # no dropout: sampling and the loss see the same policy

    def generate(
        self,
        requests: Sequence[tuple[str, str]],
        config: SamplingConfig,
        *,
        fused: FusedDecoding | None = None,
    ) -> list[list[Completion]]:
        """Sample every agent's rows in the same ``generate`` calls, each row through its
        agent's adapter (:mod:`~llm_marl.models.routing`); ``fused``: with the lean decode
        loop (:mod:`~llm_marl.models.decode`) instead of HF ``generate``."""
        self._check_requests(requests)
        adapter_of = {a: a for a in self.agents}
        return sample_completions(
            self.model, self._tokenizer, requests, config, adapter_of=adapter_of, fused=fused
        )

    def _logprobs(
        self,
        completions: Sequence[Completion],
        temperatures: list[float],
        batch_size: int | None,
        *,
        reference: bool = False,
    ) -> list[torch.Tensor]:
        """One forward pass for all agents' rows, each through its own adapter; the
        reference is the base model with every adapter off."""
        context = adapters_off(self.model) if reference else contextlib.nullcontext()
        with context:
            return completion_logprobs(
                self.model,
                [c.prompt_ids for c in completions],
                [c.token_ids for c in completions],
                pad_id=self._tokenizer.pad_token_id,
                temperature=temperatures,
                adapter_names=None if reference else [c.agent for c in completions],
                batch_size=batch_size,
            )

    def trainable_parameters(self, agent: str) -> list[torch.nn.Parameter]:
        """The LoRA matrices of ``agent``'s adapter."""
        self.check_agent(agent)
        markers = tuple(f".{kind}.{agent}." for kind in _LORA_PARTS)
        return [p for n, p in self.model.named_parameters() if any(m in f".{n}." for m in markers)]

    def tokenizer(self, agent: str) -> Any:
        """The shared tokenizer."""
        self.check_agent(agent)
        return self._tokenizer

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """``team.json`` plus ``<agent>/adapter_model.safetensors`` for every agent."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(root), selected_adapters=list(self.agents))
        missing = [a for a in self.agents if not (root / a / "adapter_config.json").is_file()]
        if missing:  # PEFT writes a non-"default" adapter to root/<name>; say so if it did not
            raise RuntimeError(f"PEFT did not write the adapters of {missing} under {root}")
        _write_manifest(
            root,
            {
                "kind": "lora",
                "base": self.source,
                "lora": asdict(self.lora),
                "agents": {a: {"adapter": a} for a in self.agents},
            },
        )
        return root


class SeparateTeam(Team):
    """One model per agent (heterogeneous teams; models may differ in size and tokenizer).

    Each member is trained fully or through its own LoRA adapter. With full fine-tuning the
    reference policy is a frozen copy of the initial weights, kept only when asked for
    (``keep_reference=True``), since it doubles the memory.
    """

    def __init__(
        self,
        members: Mapping[str, tuple[Any, Any]],
        *,
        sources: Mapping[str, str],
        lora: LoRASettings | None,
        keep_reference: bool = False,
        adapters: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        """``members`` maps each agent to ``(model, tokenizer)``; ``sources`` to its name."""
        super().__init__(list(members), source=",".join(sorted(set(sources.values()))))
        self.lora = lora
        self.sources = dict(sources)
        self.models: dict[str, Any] = {}
        self.tokenizers: dict[str, Any] = {}
        self.references: dict[str, Any] = {}
        for agent, (model, tokenizer) in members.items():
            if lora is not None:
                model = _with_adapter(model, lora, (adapters or {}).get(agent))
            else:
                if keep_reference:
                    self.references[agent] = copy.deepcopy(model).requires_grad_(False)
                model.requires_grad_(True)
            model.eval()
            self.models[agent], self.tokenizers[agent] = model, tokenizer

    def generate(
        self,
        requests: Sequence[tuple[str, str]],
        config: SamplingConfig,
        *,
        fused: FusedDecoding | None = None,
    ) -> list[list[Completion]]:
        """One batched ``generate`` call per model over all of its agent's requests;
        ``fused``: with the lean decode loop (:mod:`~llm_marl.models.decode`)."""
        self._check_requests(requests)
        out: list[list[Completion]] = [[] for _ in requests]
        for agent in self.agents:
            index = [i for i, (a, _) in enumerate(requests) if a == agent]
            if index:
                mine = [requests[i] for i in index]
                results = sample_completions(
                    self.models[agent], self.tokenizers[agent], mine, config, fused=fused
                )
                for i, result in zip(index, results, strict=True):
                    out[i] = result
        return out

    def _logprobs(
        self,
        completions: Sequence[Completion],
        temperatures: list[float],
        batch_size: int | None,
        *,
        reference: bool = False,
    ) -> list[torch.Tensor]:
        """One forward pass per model; the reference has adapters off (LoRA members) or is
        the frozen initial copy (full fine-tuning)."""
        out: list[torch.Tensor] = [torch.empty(0)] * len(completions)
        for agent in self.agents:
            index = [i for i, c in enumerate(completions) if c.agent == agent]
            if not index:
                continue
            chosen = (
                self._reference_model(agent)
                if reference
                else contextlib.nullcontext(self.models[agent])
            )
            with chosen as model:
                values = completion_logprobs(
                    model,
                    [completions[i].prompt_ids for i in index],
                    [completions[i].token_ids for i in index],
                    pad_id=self.tokenizers[agent].pad_token_id,
                    temperature=[temperatures[i] for i in index],
                    batch_size=batch_size,
                )
            for i, value in zip(index, values, strict=True):
                out[i] = value
        return out

    def _reference_model(self, agent: str) -> Any:
        if self.lora is not None:
            return adapters_off(self.models[agent])
        if agent not in self.references:
            raise ValueError(
                f"agent {agent!r} is fully fine-tuned and no reference copy was kept; load the "
                "team with keep_reference=True to use a KL term"
            )
        return contextlib.nullcontext(self.references[agent])

    def trainable_parameters(self, agent: str) -> list[torch.nn.Parameter]:
        """Every parameter of ``agent``'s model that requires grad."""
        return [p for p in self.models[self.check_agent(agent)].parameters() if p.requires_grad]

    def tokenizer(self, agent: str) -> Any:
        """``agent``'s own tokenizer."""
        return self.tokenizers[self.check_agent(agent)]

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """``team.json`` plus one folder per agent (an adapter, or a full model + tokenizer)."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        agents: dict[str, dict[str, Any]] = {}
        for agent in self.agents:
            folder = root / agent
            self.models[agent].save_pretrained(str(folder))
            if self.lora is not None:
                agents[agent] = {"adapter": agent, "base": self.sources[agent]}
            else:
                self.tokenizers[agent].save_pretrained(str(folder))
                agents[agent] = {"model": agent}
        lora = asdict(self.lora) if self.lora is not None else None
        _write_manifest(root, {"kind": "separate", "lora": lora, "agents": agents})
        return root


# ------------------------------------------------------------------- helpers
def _temperatures(completions: Sequence[Completion], temperature: float | None) -> list[float]:
    """One temperature per completion: the given one, else each completion's own."""
    return [c.temperature if temperature is None else temperature for c in completions]


def _attach_adapters(
    base: Any,
    agents: Sequence[str],
    lora: LoRASettings,
    saved: Mapping[str, str | os.PathLike[str]] | None,
) -> Any:
    """A PEFT model over ``base`` with one adapter per agent: saved ones, or new ones."""
    from peft import PeftModel, get_peft_model

    first, *rest = agents
    if saved:
        model = PeftModel.from_pretrained(
            base, str(saved[first]), adapter_name=first, is_trainable=True
        )
        for agent in rest:
            model.load_adapter(str(saved[agent]), adapter_name=agent, is_trainable=True)
        return model
    model = get_peft_model(base, lora.peft_config(), adapter_name=first)
    for agent in rest:
        model.add_adapter(agent, lora.peft_config())
    return model


def _with_adapter(model: Any, lora: LoRASettings, saved: str | os.PathLike[str] | None) -> Any:
    """``model`` with one adapter named ``default``: a saved one or a new one."""
    with _quiet_peft():
        return _attach_adapters(model, ["default"], lora, {"default": saved} if saved else None)


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """Silence one warning PEFT triggers in transformers 5 (a renamed property), nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*deprecated")
        yield


def _write_manifest(root: Path, body: dict[str, Any]) -> None:
    manifest = {"format": MANIFEST_FORMAT, "version": 1, **body}
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / MANIFEST)
    _write_card(root, manifest)


def _write_card(root: Path, manifest: Mapping[str, Any]) -> None:
    """Replace PEFT's boilerplate model cards by one short ``README.md`` of our own."""
    for agent in manifest["agents"]:
        (root / agent / CARD).unlink(missing_ok=True)
    agents = manifest["agents"]
    if manifest["kind"] == "lora":
        what = f"one LoRA adapter per agent on the shared base model {_base_name(manifest['base'])}"
    else:
        bases = {_base_name(e["base"]) for e in agents.values() if "base" in e}
        what = (
            f"one model per agent, each with a LoRA adapter on {', '.join(sorted(bases))}"
            if bases
            else "one fully trained model per agent"
        )
    lora = manifest.get("lora")
    lines = [
        "# llm-marl team",
        "",
        f"A team of {len(agents)} agents saved by llm-marl: {what}.",
        "",
        *[f"- `{agent}/`: agent {agent}" for agent in agents],
        *([f"- LoRA rank {lora['r']}, alpha {lora['alpha']}"] if lora else []),
        "",
        'Load it with `llm_marl.models.load_policy("<this folder>")`; `team.json` lists',
        "the agents and their base models.",
        "",
    ]
    (root / CARD).write_text("\n".join(lines), encoding="utf-8")


def _base_name(base: str) -> str:
    """How the card names a base model: built-in names and hub ids as they are, a folder by
    its last part (never a path of the saving machine, such as a cache folder)."""
    return f"`{Path(base).name}`" if Path(base).is_absolute() else f"`{base}`"


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a saved team folder, checked for format and version."""
    path = Path(root) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != 1:
        raise ValueError(f"{path} is not an llm-marl team manifest of version 1")
    return dict(manifest)
