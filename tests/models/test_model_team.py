"""Teams on the tiny random Llama: batching, masks, adapter isolation, reference, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llm_marl.models import (
    Completion,
    LoRASettings,
    LoRATeam,
    SamplingConfig,
    SeparateTeam,
    completion_logprobs,
    load_policy,
)

AGENTS = ["helper_0", "main_1"]
CONFIG = SamplingConfig(num_samples=3, max_new_tokens=10, temperature=1.0)


def perturb_adapters(team: LoRATeam, seed: int = 1) -> None:
    """Give every adapter different non-zero weights, so the agents' policies differ."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for agent in team.agents:
            for p in team.trainable_parameters(agent):
                p.add_(0.3 * torch.randn(p.shape, generator=generator))


@pytest.fixture
def team() -> LoRATeam:
    torch.manual_seed(0)
    built = load_policy("tiny", agents=AGENTS)
    assert isinstance(built, LoRATeam)
    perturb_adapters(built)
    return built


def requests() -> list[tuple[str, str]]:
    return [("helper_0", "write aux"), ("main_1", "write the main function"), ("helper_0", "x")]


def flat(groups: list[list[Completion]]) -> list[Completion]:
    return [c for group in groups for c in group]


def test_generate_returns_g_samples_per_request_in_order(team: LoRATeam) -> None:
    """One group per request, G completions each, with the request's agent and prompt."""
    groups = team.generate(requests(), CONFIG)
    assert [len(g) for g in groups] == [3, 3, 3]
    for (agent, prompt), group in zip(requests(), groups, strict=True):
        for c in group:
            assert (c.agent, c.prompt) == (agent, prompt)
            assert c.token_ids.shape == c.logprobs.shape
            assert 1 <= c.num_tokens <= CONFIG.max_new_tokens
            assert c.finish_reason in ("eos", "length")
            assert torch.all(c.logprobs <= 0)


def test_sampling_logprobs_equal_recomputed_logprobs(team: LoRATeam) -> None:
    """The log-probs returned with the samples are those the loss recomputes (ratio 1)."""
    completions = flat(team.generate(requests(), CONFIG))
    recomputed = team.logprobs(completions, temperature=CONFIG.temperature)
    for c, lp in zip(completions, recomputed, strict=True):
        torch.testing.assert_close(lp.detach(), c.logprobs, atol=1e-5, rtol=0)
        assert lp.requires_grad


def test_recorded_logprobs_ignore_top_k_and_top_p_truncation(team: LoRATeam) -> None:
    """With truncation on, the recorded values are still the untruncated policy's."""
    config = SamplingConfig(num_samples=4, max_new_tokens=10, temperature=0.7, top_k=5, top_p=0.5)
    completions = flat(team.generate(requests(), config))
    recomputed = team.logprobs(completions, temperature=0.7)
    for c, lp in zip(completions, recomputed, strict=True):
        torch.testing.assert_close(lp.detach(), c.logprobs, atol=1e-5, rtol=0)


def test_mixed_adapter_batch_matches_one_agent_at_a_time(team: LoRATeam) -> None:
    """Rows of both agents in one forward pass get each agent's own adapter."""
    completions = flat(team.generate(requests(), CONFIG))
    mixed = team.logprobs(completions)
    for agent in AGENTS:
        team.model.set_adapter(agent)
        mine = [c for c in completions if c.agent == agent]
        alone = completion_logprobs(
            team.model,
            [c.prompt_ids for c in mine],
            [c.token_ids for c in mine],
            pad_id=team.tokenizer(agent).pad_token_id,
        )
        expected = [lp for c, lp in zip(completions, mixed, strict=True) if c.agent == agent]
        for a, b in zip(alone, expected, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    other = [
        Completion("main_1", c.prompt, c.text, c.prompt_ids, c.token_ids, c.logprobs, "eos")
        for c in completions
        if c.agent == "helper_0"
    ]
    swapped = team.logprobs(other)
    assert any(not torch.allclose(a, c.logprobs) for a, c in zip(swapped, other, strict=True))


def test_completion_logprob_is_unchanged_by_extra_padding() -> None:
    """Left/right padding and other rows never change a completion's log-probabilities."""
    team = load_policy("tiny", agents=["a_0"])
    pad = team.tokenizer("a_0").pad_token_id
    prompt, completion = torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10, 11])
    alone = completion_logprobs(team.model, [prompt], [completion], pad_id=pad)[0]
    long_prompt, long_completion = torch.arange(20, 40), torch.arange(40, 70)
    batched = completion_logprobs(
        team.model, [long_prompt, prompt], [long_completion, completion], pad_id=pad
    )[1]
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)
    # And the value is the plain unpadded forward pass: sum of log p(token | prefix).
    with torch.no_grad():
        logits = team.model(input_ids=torch.cat([prompt, completion])[None]).logits[0]
    manual = torch.log_softmax(logits[2:-1], dim=-1).gather(-1, completion[:, None])[:, 0]
    torch.testing.assert_close(alone.detach(), manual, atol=1e-5, rtol=0)


def test_a_step_on_one_adapter_leaves_the_other_agents_unchanged(team: LoRATeam) -> None:
    """Adapter isolation: the helper's update changes every helper LoRA weight and its
    outputs, and neither the main agent's outputs nor the reference."""
    completions = flat(team.generate(requests(), CONFIG))
    before = [lp.detach() for lp in team.logprobs(completions)]
    reference_before = team.reference_logprobs(completions)
    params = team.trainable_parameters("helper_0")
    snapshot = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=0.5)
    loss = -sum(
        lp.sum()
        for c, lp in zip(completions, team.logprobs(completions), strict=True)
        if c.agent == "helper_0"
    )
    loss.backward()
    optimizer.step()
    assert all(not torch.equal(p, s) for p, s in zip(params, snapshot, strict=True))
    after = team.logprobs(completions)
    for c, b, a in zip(completions, before, after, strict=True):
        if c.agent == "main_1":
            torch.testing.assert_close(a.detach(), b, atol=1e-6, rtol=0)
        else:
            assert not torch.allclose(a.detach(), b)
    for b, a in zip(reference_before, team.reference_logprobs(completions), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_reference_is_the_base_with_adapters_disabled(team: LoRATeam) -> None:
    """Reference log-probs equal the plain base model's and carry no gradient; afterwards
    every agent's adapter is still trainable (PEFT's disable_adapter would freeze all but one)."""
    completions = flat(team.generate(requests(), CONFIG))
    reference = team.reference_logprobs(completions)
    for agent in AGENTS:
        assert all(p.requires_grad for p in team.trainable_parameters(agent))
    base = load_policy("tiny", agents=["x_0"])  # fresh adapter: B = 0, so outputs are the base's
    expected = base.logprobs(completions_as(completions, "x_0"))
    for r, e in zip(reference, expected, strict=True):
        assert not r.requires_grad
        torch.testing.assert_close(r, e.detach(), atol=1e-5, rtol=0)


def completions_as(completions: list[Completion], agent: str) -> list[Completion]:
    return [
        Completion(agent, c.prompt, c.text, c.prompt_ids, c.token_ids, c.logprobs, c.finish_reason)
        for c in completions
    ]


def test_lora_team_save_and_load_round_trip(team: LoRATeam, tmp_path: Path) -> None:
    """save_pretrained writes a manifest and one adapter folder per agent; load_policy
    reads it back with identical outputs."""
    completions = flat(team.generate(requests(), CONFIG))
    saved = team.save_pretrained(tmp_path / "team")
    manifest = json.loads((saved / "team.json").read_text())
    assert manifest["kind"] == "lora" and manifest["base"] == "tiny"
    assert list(manifest["agents"]) == AGENTS
    for agent in AGENTS:
        assert (saved / agent / "adapter_model.safetensors").is_file()
    reloaded = load_policy(saved)
    assert isinstance(reloaded, LoRATeam) and reloaded.agents == team.agents
    for agent in AGENTS:  # reloaded adapters train on
        params = reloaded.trainable_parameters(agent)
        assert params and all(p.requires_grad for p in params)
    for a, b in zip(team.logprobs(completions), reloaded.logprobs(completions), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="holds agents"):
        load_policy(saved, agents=["other_0"])


def test_separate_team_full_finetuning_round_trip(tmp_path: Path) -> None:
    """One model per agent: own parameters, a kept reference copy, save and reload."""
    team = load_policy("tiny", agents=AGENTS, lora=None, keep_reference=True)
    assert isinstance(team, SeparateTeam)
    helper, main = (set(map(id, team.trainable_parameters(a))) for a in AGENTS)
    assert helper and not helper & main
    completions = flat(team.generate(requests(), CONFIG))
    with torch.no_grad():
        for p in team.trainable_parameters("main_1"):
            p.mul_(1.1)
    current = team.logprobs(completions)
    reference = team.reference_logprobs(completions)
    main_rows = [i for i, c in enumerate(completions) if c.agent == "main_1"]
    assert not torch.allclose(current[main_rows[0]].detach(), reference[main_rows[0]])
    saved = team.save_pretrained(tmp_path / "team")
    reloaded = load_policy(saved)
    assert isinstance(reloaded, SeparateTeam)
    for a, b in zip(current, reloaded.logprobs(completions), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_heterogeneous_team_from_a_mapping(tmp_path: Path) -> None:
    """A mapping agent -> model gives one model per agent, each with its own adapter."""
    base = load_policy("tiny", agents=["x_0"], lora=None)
    assert isinstance(base, SeparateTeam)
    base.models["x_0"].save_pretrained(tmp_path / "m")
    base.tokenizers["x_0"].save_pretrained(tmp_path / "m")
    team = load_policy({"helper_0": "tiny", "main_1": str(tmp_path / "m")}, lora=LoRASettings(r=2))
    assert isinstance(team, SeparateTeam) and team.agents == tuple(AGENTS)
    groups = team.generate(requests(), CONFIG)
    assert [g[0].agent for g in groups] == ["helper_0", "main_1", "helper_0"]
    reference = team.reference_logprobs(flat(groups))
    assert all(not r.requires_grad for r in reference)
    saved = team.save_pretrained(tmp_path / "team")
    reloaded = load_policy(saved)
    assert isinstance(reloaded, SeparateTeam)
    assert all(reloaded.num_parameters(a) == team.num_parameters(a) > 0 for a in AGENTS)
    for a, b in zip(team.logprobs(flat(groups)), reloaded.logprobs(flat(groups)), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_full_finetuning_without_reference_copy_refuses_kl() -> None:
    """Asking for reference log-probs without a kept copy says how to get one."""
    team = load_policy("tiny", agents=["a_0"], lora=None)
    completions = flat(team.generate([("a_0", "hi")], CONFIG))
    with pytest.raises(ValueError, match="keep_reference=True"):
        team.reference_logprobs(completions)


def test_bad_requests_and_agents_raise_clear_errors(team: LoRATeam) -> None:
    """Unknown agents and malformed requests are refused with the team listed."""
    with pytest.raises(KeyError, match="not in the team"):
        team.generate([("nobody_9", "hi")], CONFIG)
    with pytest.raises(TypeError, match=r"\(agent, prompt\)"):
        team.generate(["just a prompt"], CONFIG)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="distinct agent names"):
        load_policy("tiny", agents=["a_0", "a_0"])
    for bad in ("default", "agent.0", "a/b", ""):
        with pytest.raises(ValueError, match="must be letters, digits"):
            load_policy("tiny", agents=[bad])
