"""Learned value functions for the actor-critic trainers: a value head behind a LoRA adapter.

A :class:`ValueCritic` holds one or more named value functions (one per agent for IAC, one
``central`` one for MAAC). Each is a LoRA adapter on a causal LM plus a linear head on the
last token's final hidden state. By default the adapters sit on the team's own shared base
(a 2-agent team with a critic still holds one base model in memory); the per-row LoRA routing
of :mod:`llm_marl.models.routing` sends every row through its own critic's adapter, so one
forward pass values every row. An input is a tuple of text parts (an agent's prompt, or every
agent's prompt and answer); each part keeps its last ``max_tokens // parts`` tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from llm_marl.models import LoRASettings, LoRATeam, Team, load_model
from llm_marl.models.logprobs import left_pad
from llm_marl.models.routing import per_row_adapters

__all__ = ["ValueCritic", "build_critic"]

#: Prefix of the critics' PEFT adapter names (agents' adapters are named after the agents).
ADAPTER_PREFIX = "critic_"


class ValueCritic:
    """Named value functions V(text parts) -> float, trained by squared error."""

    def __init__(
        self, model: Any, tokenizer: Any, names: Sequence[str], *, max_tokens: int
    ) -> None:
        """``model``: a PEFT model that already holds one adapter per name (see
        :func:`build_critic`)."""
        if not names or len(set(names)) != len(names):
            raise ValueError(f"a critic needs distinct value-function names, got {list(names)}")
        self.model, self.tokenizer, self.names = model, tokenizer, tuple(names)
        self.max_tokens = max_tokens
        self.adapters = {name: ADAPTER_PREFIX + name for name in self.names}
        device = next(model.parameters()).device
        hidden = int(model.config.hidden_size)
        # Zero-initialised heads: every value starts at 0 (advantages start as raw returns).
        heads = {n: torch.nn.Linear(hidden, 1) for n in self.names}
        for head in heads.values():
            torch.nn.init.zeros_(head.weight)
            torch.nn.init.zeros_(head.bias)
        self.heads = torch.nn.ModuleDict(heads).to(device)

    def _adapter_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        markers = tuple(f".{adapter}." for adapter in self.adapters.values())
        return [(n, p) for n, p in self.model.named_parameters() if any(m in n for m in markers)]

    def parameters(self) -> list[torch.nn.Parameter]:
        """Every trainable parameter of the critic: its adapters' LoRA matrices and heads."""
        return [p for _, p in self._adapter_parameters()] + list(self.heads.parameters())

    def values(self, rows: Sequence[tuple[str, Sequence[str]]]) -> torch.Tensor:
        """``(B,)`` values of ``(name, parts)`` rows, one forward pass (grad when enabled)."""
        if not rows:
            return torch.zeros(0)
        unknown = sorted({name for name, _ in rows} - set(self.names))
        if unknown:
            raise KeyError(f"no value function {unknown}; the critic has {list(self.names)}")
        ids, mask = left_pad([self._encode(parts) for _, parts in rows], self._pad_id())  # (B, L)
        device = next(self.model.parameters()).device
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        routing, kwargs = per_row_adapters(self.model, [self.adapters[n] for n, _ in rows])
        with routing:
            out = self.model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                output_hidden_states=True,
                logits_to_keep=1,
                use_cache=False,
                **kwargs,
            )
        last = out.hidden_states[-1][:, -1, :].float()  # (B, H): left padding puts it last
        return torch.stack(
            [self.heads[name](last[i]).squeeze(-1) for i, (name, _) in enumerate(rows)]
        )  # (B,)

    def _encode(self, parts: Sequence[str]) -> torch.Tensor:
        budget = max(1, self.max_tokens // max(len(parts), 1))
        pieces = [self.tokenizer(p, add_special_tokens=False)["input_ids"][-budget:] for p in parts]
        flat = [token for piece in pieces for token in piece] or [self._pad_id()]
        return torch.tensor(flat, dtype=torch.long)

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def state_dict(self) -> dict[str, Any]:
        """The adapters' and heads' tensors (CPU copies), for a checkpoint."""
        return {
            "names": list(self.names),
            "adapters": {n: p.detach().cpu().clone() for n, p in self._adapter_parameters()},
            "heads": {k: v.detach().cpu().clone() for k, v in self.heads.state_dict().items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back a :meth:`state_dict`; every tensor must match by name and shape."""
        if list(state["names"]) != list(self.names):
            raise ValueError(f"saved critic has {state['names']}, this one {list(self.names)}")
        mine = dict(self._adapter_parameters())
        if set(mine) != set(state["adapters"]):
            raise ValueError("the saved critic's adapter tensors differ from this critic's")
        with torch.no_grad():
            for name, parameter in mine.items():
                parameter.copy_(state["adapters"][name].to(parameter.device))
        self.heads.load_state_dict(state["heads"])


def build_critic(
    team: Team,
    names: Sequence[str],
    *,
    lora: LoRASettings,
    model: str | None,
    base_model: str,
    max_tokens: int,
    dtype: str | None = None,
    device: str | None = None,
) -> ValueCritic:
    """A critic with one adapter per name: on the team's shared base when it has one and
    ``model`` is None, else on its own copy of ``model`` (or ``base_model``)."""
    from peft import get_peft_model

    from llm_marl.models.team import _quiet_peft

    adapters = [ADAPTER_PREFIX + n for n in names]
    with _quiet_peft():
        if model is None and isinstance(team, LoRATeam):
            peft_model, tokenizer = team.model, team.tokenizer(team.agents[0])
            for adapter in adapters:
                peft_model.add_adapter(adapter, lora.peft_config())
            # PEFT leaves only the active adapter trainable: turn every agent's back on too.
            peft_model.set_requires_grad([*team.agents, *adapters], requires_grad=True)
        else:
            base, tokenizer = load_model(model or base_model, dtype=dtype, device=device)
            peft_model = get_peft_model(base, lora.peft_config(), adapter_name=adapters[0])
            for adapter in adapters[1:]:
                peft_model.add_adapter(adapter, lora.peft_config())
            peft_model.set_requires_grad(adapters, requires_grad=True)
            peft_model.eval()
    return ValueCritic(peft_model, tokenizer, names, max_tokens=max_tokens)
