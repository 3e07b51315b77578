"""Every registered algorithm: registry, name lists, learning, the critics, resume, 3 roles."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from toy_env import DigitsEnv, KilledEnv

import llm_marl
from llm_marl.baselines import (
    AlgorithmSpec,
    MAACConfig,
    MAGRPOConfig,
    algorithm,
    list_algorithms,
    register_algorithm,
)
from llm_marl.baselines.config import (
    ADVANTAGE_MODES,
    CRITIC_TYPES,
    JOINT_MODES,
    LOSS_AGGREGATIONS,
    REWARD_SOURCES,
)
from llm_marl.baselines.run_log import quarter_means
from llm_marl.cli import main
from llm_marl.conformance import check_env
from llm_marl.envs.tldr_v0 import TLDR3Env

NAMED = ["grpo", "iac", "igrpo", "maac", "magrpo", "mareinforce", "maremax", "marloo"]
TIMING = ("step_seconds", "tokens_per_second")


def test_the_registry_lists_the_named_algorithms_with_their_configs() -> None:
    assert set(NAMED) <= set(list_algorithms())
    for name in NAMED:
        spec = algorithm(name)
        assert spec.config_class.algo == name and spec.summary
        assert spec.trainer_class().config_class is spec.config_class
    with pytest.raises(ValueError, match=r"unknown algorithm 'magrop' \(did you mean 'magrpo'\?\)"):
        algorithm("magrop")


def test_register_algorithm_checks_its_input() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_algorithm("magrpo", MAGRPOConfig, "llm_marl.baselines.magrpo:MAGRPOTrainer")
    with pytest.raises(ValueError, match=r"MAGRPOConfig.algo is 'magrpo', not 'other'"):
        AlgorithmSpec("other", MAGRPOConfig, "llm_marl.baselines.magrpo:MAGRPOTrainer")
    with pytest.raises(ValueError, match="must be 'module:Class' or a class"):
        AlgorithmSpec("magrpo", MAGRPOConfig, "llm_marl.baselines.magrpo")
    with pytest.raises(TypeError, match="imported twice"):
        AlgorithmSpec("magrpo", MAGRPOConfig, "llm_marl.baselines.grpo:GRPOTrainer").trainer_class()


def test_an_in_process_algorithm_registers_its_class(fast: dict[str, Any]) -> None:
    from llm_marl.baselines import MAGRPOTrainer

    @dataclass
    class MineConfig(MAGRPOConfig):
        """Mine: MAGRPO under another name."""

        algo: ClassVar[str] = "mine_test"

    class MineTrainer(MAGRPOTrainer):
        config_class = MineConfig

    spec = register_algorithm("mine_test", MineConfig, MineTrainer, override=True)
    assert algorithm("mine_test").trainer_class() is MineTrainer and spec.summary.startswith("Mine")
    assert main(["train", "--algo", "mine_test", "--model", "tiny", "--env", "digits_v0",
                 "--num-steps", "1", "--max-new-tokens", "4", "--no-progress",
                 "--output-dir", fast["output_dir"]]) == 0  # fmt: skip


@pytest.mark.parametrize(("name", "other"), [("mareinforce", "mean"), ("marloo", "raw")])
def test_a_preset_refuses_another_baseline(name: str, other: str) -> None:
    with pytest.raises(ValueError, match=f"{name} is MAGRPO with advantage="):
        algorithm(name).config_class(advantage=other)
    with pytest.raises(TypeError, match="TrainConfig subclass"):
        AlgorithmSpec("magrpo", dict, "a:b")  # type: ignore[arg-type]


def test_each_torch_free_name_list_matches_its_implementation() -> None:
    from llm_marl.baselines.advantages import ADVANTAGES
    from llm_marl.baselines.losses import AGGREGATIONS
    from llm_marl.baselines.returns import ReturnSettings
    from llm_marl.baselines.rollout import joint_picks

    assert tuple(ADVANTAGES) == ADVANTAGE_MODES
    assert tuple(AGGREGATIONS) == LOSS_AGGREGATIONS
    for mode in JOINT_MODES:
        assert joint_picks(mode, 2, 2)
    for source in REWARD_SOURCES:
        ReturnSettings(reward=source)
    for kind in CRITIC_TYPES:
        MAACConfig(critic_type=kind)
    with pytest.raises(ValueError):
        ReturnSettings(reward="other")


def _settings(name: str, fast: dict[str, Any]) -> dict[str, Any]:
    settings = {**fast, "num_generations": 8, "lora": False, "learning_rate": 1e-2}
    if name in ("iac", "maac"):
        settings["critic_learning_rate"] = 1e-2
    if name == "grpo":
        settings["env"] = "digits_solo_v0"
    return settings


class SoloDigits(DigitsEnv):
    """The toy env's single-agent view, for GRPO: one agent, its own digits."""

    def __init__(self, single_agent: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.possible_agents = ["solo_0"]
        self.observation_spaces = {"solo_0": self.observation_spaces["left_0"]}
        self.action_spaces = {"solo_0": self.action_spaces["left_0"]}


@pytest.fixture
def solo_env() -> None:
    llm_marl.register("digits_solo_v0", SoloDigits, override=True)


@pytest.mark.parametrize("name", NAMED)
def test_team_reward_rises_with_every_algorithm(
    name: str, fast: dict[str, Any], solo_env: None
) -> None:
    """Digits start at about 1 in 10; every algorithm makes them more frequent."""
    spec = algorithm(name)
    config = spec.config_class(**_settings(name, fast), num_steps=40)
    result = spec.trainer_class()(config).train()
    rewards = [m["team_reward_mean"] for m in result.metrics]
    assert sum(rewards[:4]) / 4 < 0.3  # the first updates start from a hard task
    first, last = quarter_means(result.metrics)
    assert last > first + 0.3, [round(r, 2) for r in rewards]


class OffsetDigits(DigitsEnv):
    """The toy env with 1 added to every reward: values far from a fresh critic's 0."""

    def step(self, actions: dict[str, str]) -> Any:
        observations, rewards, terminations, truncations, infos = super().step(actions)
        for info in infos.values():
            info["team_reward"] += 1.0
        return (
            observations,
            {a: r + 1.0 for a, r in rewards.items()},
            terminations,
            truncations,
            infos,
        )


@pytest.mark.parametrize("name", ["iac", "maac"])
def test_the_critic_learns_and_every_critic_parameter_changes(
    name: str, fast: dict[str, Any]
) -> None:
    llm_marl.register("digits_offset_v0", OffsetDigits, override=True)
    spec = algorithm(name)
    settings = {**fast, "env": "digits_offset_v0", "num_generations": 8, "learning_rate": 1e-9}
    config = spec.config_class(**settings, num_steps=16, critic_learning_rate=1e-2)
    trainer = spec.trainer_class()(config)
    before = [p.detach().clone() for p in trainer.critic.parameters()]
    metrics = trainer.train().metrics
    after = trainer.critic.parameters()
    assert len(before) == len(after) > 2
    unchanged = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if torch.equal(a, b)]
    assert not unchanged
    losses = [m["value_loss"] for m in metrics]
    assert sum(losses[-4:]) < 0.5 * sum(losses[:4]), losses
    errors = [m["value/abs_error"] for m in metrics]
    assert sum(errors[-4:]) < 0.5 * sum(errors[:4]), errors
    assert {"value/explained_variance", "grad_norm/critic"} <= set(metrics[-1])


def test_the_critic_shares_the_teams_base_model(fast: dict[str, Any]) -> None:
    trainer = algorithm("maac").trainer_class()(MAACConfig(**fast))
    assert trainer.critic.model is trainer.team.model  # type: ignore[attr-defined]
    names = {n for n, p in trainer.team.model.named_parameters() if p.requires_grad}  # type: ignore[attr-defined]
    for agent in trainer.team.agents:  # the agents' adapters stay trainable beside the critic's
        assert any(f".{agent}." in n for n in names)
    separate = algorithm("maac").trainer_class()(MAACConfig(**fast, critic_model="tiny"))
    assert separate.critic.model is not separate.team.model  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["maac", "iac"])
def test_a_killed_actor_critic_resumes_like_one_never_stopped(
    name: str, fast: dict[str, Any]
) -> None:
    spec = algorithm(name)
    trainer_class = spec.trainer_class()
    settings = {**fast, "num_steps": 4, "checkpoint_every": 2, "learning_rate": 1e-2}
    settings["critic_learning_rate"] = 1e-2
    straight = trainer_class(spec.config_class(**settings, run_name="straight"))
    expected = straight.train().metrics
    with pytest.raises(KeyboardInterrupt):
        trainer_class(spec.config_class(**settings, run_name="killed"), env=KilledEnv()).train()
    resumed = trainer_class(spec.config_class(**settings, run_name="killed", resume=True))
    assert resumed.step == 2
    got = resumed.train().metrics
    strip = lambda r: {k: v for k, v in r.items() if k not in TIMING}  # noqa: E731
    assert [strip(r) for r in got] == [strip(r) for r in expected]
    for a, b in zip(straight.critic.parameters(), resumed.critic.parameters(), strict=True):
        assert torch.equal(a, b)
    for agent in straight.team.agents:
        pairs = zip(
            straight.team.trainable_parameters(agent),
            resumed.team.trainable_parameters(agent),
            strict=True,
        )
        assert all(torch.equal(a, b) for a, b in pairs)


def test_a_checkpoint_without_its_critic_is_not_complete(fast: dict[str, Any]) -> None:
    config = MAACConfig(**fast, num_steps=2, checkpoint_every=1)
    result = algorithm("maac").trainer_class()(config).train()
    (result.checkpoint / "extras" / "critic.pt").unlink()
    resumed = algorithm("maac").trainer_class()(MAACConfig(**fast, num_steps=3, resume=True))
    assert resumed.step == 1  # the newest complete checkpoint


@pytest.fixture
def three_writers(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tldr3_v0`` registered for one test only (its id is close to ``tldr_v0``'s)."""
    llm_marl.list_envs()  # the built-ins first, so the undo leaves them
    spec = llm_marl.EnvSpec("tldr3_v0", TLDR3Env)
    monkeypatch.setitem(llm_marl.registry._REGISTRY.specs, "tldr3_v0", spec)


def test_a_three_agent_writing_env_passes_the_conformance_checks(three_writers: None) -> None:
    check_env(lambda: llm_marl.make("tldr3_v0"))


@pytest.mark.parametrize("name", ["magrpo", "maac"])
def test_a_three_agent_team_trains(name: str, fast: dict[str, Any], three_writers: None) -> None:
    spec = algorithm(name)
    config = spec.config_class(**{**fast, "env": "tldr3_v0"}, num_steps=2)
    result = spec.trainer_class()(config).train()
    assert len(result.metrics) == 2
    assert {"reward/extended_2/turn0_mean", "grad_norm/extended_2"} <= set(result.metrics[-1])


@pytest.mark.parametrize("name", NAMED)
def test_every_algorithm_trains_from_the_command_line(
    name: str, fast: dict[str, Any], solo_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    env = "digits_solo_v0" if name == "grpo" else "digits_v0"
    argv = ["train", "--algo", name, "--env", env, "--model", "tiny", "--num-steps", "2"]
    argv += ["--max-new-tokens", "8", "--no-progress", "--output-dir", fast["output_dir"]]
    assert main(argv) == 0
    assert "(2 steps)" in capsys.readouterr().out


def test_maac_trains_on_tldr_from_a_shell(tmp_path: Path) -> None:
    """The issue's acceptance command, in a fresh process."""
    command = [sys.executable, "-m", "llm_marl.cli", "train", "--algo", "maac", "--env", "tldr_v0"]
    command += ["--model", "tiny", "--num-steps", "2", "--max-new-tokens", "8", "--no-progress"]
    command += ["--output-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(2 steps)" in done.stdout


def test_the_command_line_names_close_algorithms_and_lists_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "--algo", "magrop"]) == 2
    assert "did you mean 'magrpo'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--algo", "maac", "--help"])
    shown = capsys.readouterr().out
    assert "--critic-type {v,q}" in shown and "``" not in shown
    with pytest.raises(SystemExit):
        main(["train", "--algo", "maac", "--critic-type", "x"])
    assert "invalid choice: 'x'" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_listing_quietly() -> None:
    command = f"{sys.executable} -m llm_marl.cli algos --json | head -c 10"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert done.stdout == "[\n  {\n    " and done.stderr == ""
