"""Shared prompt prefixes on the tiny random Llama: same values and gradients as full passes."""

from __future__ import annotations

import pytest
import torch

from llm_marl.models import LoRATeam, SamplingConfig, SeparateTeam, completion_logprobs, load_policy
from llm_marl.models.logprobs import head_logprobs
from llm_marl.models.prefix import decoder_and_head, group_prompts

AGENTS = ["helper_0", "main_1"]


def _perturbed(team: LoRATeam) -> LoRATeam:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for agent in team.agents:
            for p in team.trainable_parameters(agent):
                p.add_(0.3 * torch.randn(p.shape, generator=generator))
    return team


def _batch() -> tuple[list[torch.Tensor], list[torch.Tensor], list[str]]:
    """Two prompts of different lengths, three samples each, completions of mixed lengths
    (one of a single token); the same prompt also under the other agent."""
    short, long = torch.tensor([5, 6, 7]), torch.arange(20, 31)
    prompts = [short] * 3 + [long] * 3 + [short]
    completions = [torch.arange(40, 40 + n) for n in (4, 1, 7, 5, 2, 6, 3)]
    agents = ["helper_0"] * 3 + ["main_1"] * 4
    return prompts, completions, agents


def _loss_and_grads(
    model: torch.nn.Module, params: list[torch.nn.Parameter], share: bool, **kwargs: object
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    prompts, completions, _ = _batch()
    values = completion_logprobs(
        model, prompts, completions, pad_id=0, share_prefix=share, temperature=0.7, **kwargs
    )
    weights = torch.linspace(-1, 1, len(values))
    loss = sum(w * v.sum() for w, v in zip(weights, values, strict=True))
    assert isinstance(loss, torch.Tensor)
    grads = torch.autograd.grad(loss, params)
    return [v.detach() for v in values], list(grads)


def test_group_prompts_keys_on_adapter_and_tokens() -> None:
    """The same tokens under another adapter are another prompt; order of first appearance."""
    prompts, _, agents = _batch()
    groups = group_prompts(prompts, agents)
    assert groups.owner.tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert groups.adapters == ["helper_0", "main_1", "main_1"]
    assert groups.shared
    assert not group_prompts(prompts[:1], None).shared


def test_shared_prefix_matches_the_full_pass_with_lora_routing() -> None:
    """Values and every adapter's gradients equal the unshared pass; gradients reach the
    LoRA weights of v_proj through the shared prompt's cache."""
    torch.manual_seed(0)
    team = load_policy("tiny", agents=AGENTS)
    assert isinstance(team, LoRATeam)
    _perturbed(team)
    params = [p for a in AGENTS for p in team.trainable_parameters(a)]
    _, _, agents = _batch()
    shared, shared_grads = _loss_and_grads(team.model, params, True, adapter_names=agents)
    full, full_grads = _loss_and_grads(team.model, params, False, adapter_names=agents)
    for a, b in zip(shared, full, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    for a, b in zip(shared_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    names = [n for a in AGENTS for n, _ in _named(team, a)]
    v_grads = [g for n, g in zip(names, shared_grads, strict=True) if "v_proj.lora_B" in n]
    assert v_grads and all(g.abs().sum() > 0 for g in v_grads)


def _named(team: LoRATeam, agent: str) -> list[tuple[str, torch.nn.Parameter]]:
    mine = {id(p) for p in team.trainable_parameters(agent)}
    return [(n, p) for n, p in team.model.named_parameters() if id(p) in mine]


def test_shared_prefix_matches_the_full_pass_with_full_finetuning() -> None:
    """Full fine-tuning: the gradients of every weight (the tied head included) agree."""
    torch.manual_seed(0)
    team = load_policy("tiny", agents=["a_0"], lora=None)
    assert isinstance(team, SeparateTeam)
    model = team.models["a_0"]
    params = [p for p in model.parameters() if p.requires_grad]
    assert decoder_and_head(model) is not None
    shared, shared_grads = _loss_and_grads(model, params, True)
    full, full_grads = _loss_and_grads(model, params, False)
    for a, b in zip(shared, full, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    for a, b in zip(shared_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_head_logprobs_in_chunks_equal_one_log_softmax(chunk: int) -> None:
    """Chunking (and recomputing chunks in backward) changes neither values nor gradients."""
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=False)
    hidden = torch.randn(7, 8, requires_grad=True)
    targets = torch.randint(0, 11, (7,))
    scale = torch.full((7,), 0.5)
    got = head_logprobs(head, hidden, targets, scale, chunk_tokens=chunk)
    want = torch.log_softmax(head(hidden) / 0.5, dim=-1).gather(1, targets[:, None])[:, 0]
    torch.testing.assert_close(got, want)
    (g_got,) = torch.autograd.grad(got.sum(), hidden)
    (g_want,) = torch.autograd.grad(want.sum(), hidden)
    torch.testing.assert_close(g_got, g_want)


def test_head_logprobs_gradients_reach_the_head_weight_and_bias() -> None:
    """A trained head (full fine-tuning) gets the same weight and bias gradients as from one
    log-softmax."""
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=True)
    hidden = torch.randn(7, 8, requires_grad=True)
    targets = torch.randint(0, 11, (7,))
    scale = torch.rand(7) + 0.5
    weights = torch.randn(7)
    got = head_logprobs(head, hidden, targets, scale, chunk_tokens=3)
    grads_got = torch.autograd.grad((got * weights).sum(), [hidden, head.weight, head.bias])
    logits = head(hidden) / scale[:, None]
    want = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]
    grads_want = torch.autograd.grad((want * weights).sum(), [hidden, head.weight, head.bias])
    torch.testing.assert_close(got, want)
    for a, b in zip(grads_got, grads_want, strict=True):
        torch.testing.assert_close(a, b)


def test_head_logprobs_under_autocast_match_the_autocast_log_softmax() -> None:
    """Under bfloat16 autocast the head's products run in bfloat16 (the weight cast once) and
    the values and gradients stay those of the plain autocast computation, up to rounding."""
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(9, 16, requires_grad=True)
    targets = torch.randint(0, 50, (9,))
    scale = torch.full((9,), 0.9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = head_logprobs(head, hidden, targets, scale, chunk_tokens=4)
        logits = head(hidden).float() / 0.9
    want = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    (g_got,) = torch.autograd.grad(got.sum(), hidden)
    (g_want,) = torch.autograd.grad(want.sum(), hidden)
    torch.testing.assert_close(g_got, g_want, atol=2e-2, rtol=2e-2)


def test_shared_prefill_sampling_still_records_the_recomputed_logprobs() -> None:
    """Sampling with the shared prompt cache records what the loss recomputes."""
    torch.manual_seed(0)
    team = _perturbed(load_policy("tiny", agents=AGENTS))  # type: ignore[arg-type]
    config = SamplingConfig(num_samples=3, max_new_tokens=8, temperature=1.0)
    groups = team.generate([("helper_0", "write aux"), ("main_1", "write main")], config)
    completions = [c for g in groups for c in g]
    recomputed = team.logprobs(completions)
    for c, lp in zip(completions, recomputed, strict=True):
        torch.testing.assert_close(lp.detach(), c.logprobs, atol=1e-5, rtol=0)


def test_sampling_runs_each_distinct_prompt_once() -> None:
    """The G rows of a prompt share its prefill: the embedding sees each distinct prompt
    once (plus one last prompt token per row), not G times."""
    torch.manual_seed(0)
    team = load_policy("tiny", agents=AGENTS)
    assert isinstance(team, LoRATeam)
    embed = team.model.get_base_model().get_input_embeddings()
    seen: list[int] = []
    handle = embed.register_forward_hook(lambda _m, args, _o: seen.append(args[0].numel()))
    config = SamplingConfig(num_samples=4, max_new_tokens=1, temperature=1.0)
    try:
        groups = team.generate([("helper_0", "write aux"), ("main_1", "write main")], config)
    finally:
        handle.remove()
    width = max(int(g[0].prompt_ids.shape[0]) for g in groups)
    assert seen == [2 * (width - 1), 8]  # two distinct prompts, then one token per row
