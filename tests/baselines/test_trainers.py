"""The trainers end to end with the tiny model: learning, outputs, resume, the three algorithms."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from toy_env import DigitsEnv, KilledEnv

from llm_marl.baselines import (
    GRPOConfig,
    GRPOTrainer,
    IGRPOConfig,
    IGRPOTrainer,
    MAGRPOConfig,
    MAGRPOTrainer,
)
from llm_marl.baselines.run_log import quarter_means
from llm_marl.models import load_policy

TIMING = ("step_seconds", "tokens_per_second")


@pytest.mark.parametrize(
    ("trainer", "config"), [(MAGRPOTrainer, MAGRPOConfig), (IGRPOTrainer, IGRPOConfig)]
)
def test_reward_rises_on_a_task_the_tiny_model_can_learn(
    trainer: Any, config: Any, fast: dict[str, Any]
) -> None:
    """Digits start at about 1 in 10; full fine-tuning makes them nearly all digits."""
    settings = {**fast, "num_generations": 8, "lora": False, "learning_rate": 1e-2}
    result = trainer(config(**settings, num_steps=30)).train()
    first, last = quarter_means(result.metrics)
    assert first < 0.3
    assert last > first + 0.4, [round(m["team_reward_mean"], 2) for m in result.metrics]


def test_a_run_writes_its_folder(fast: dict[str, Any]) -> None:
    config = MAGRPOConfig(
        **fast, num_steps=4, eval_every=2, eval_tasks=2, checkpoint_every=2, log_samples_every=3
    )
    result = MAGRPOTrainer(config).train()
    run = Path(fast["output_dir"]) / "magrpo-digits_v0-seed0"
    assert result.run_dir == run
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for key in (
        "team_reward_mean",
        "reward/left_0/turn0_mean",
        "reward/right_1/turn0_std",
        "terms/digits",
        "equal_reward_groups",
        "advantage/std",
        "completion_tokens/left_0",
        "tokens_per_second",
        "grad_norm/right_1",
    ):
        assert key in records[0], key
    assert [("eval/team_reward_mean" in r) for r in records] == [False, True, False, True]
    assert "kl" not in records[0] and "clip_fraction" not in records[0]  # both off
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [1, 3, 4]  # every 3rd step, the first and the last
    assert {s["agent"] for s in samples[0]["samples"]} == {"left_0", "right_1"}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["algo"] == "magrpo" and saved["num_steps"] == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    assert result.checkpoint == run / "checkpoints" / "step-000004"
    assert (run / "reward.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    team = load_policy(result.checkpoint / "team")
    assert team.agents == ("left_0", "right_1")


def test_every_lora_parameter_of_every_agent_is_trained(fast: dict[str, Any]) -> None:
    trainer = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=2, learning_rate=1e-2))
    before = {
        a: [p.detach().clone() for p in trainer.team.trainable_parameters(a)]
        for a in trainer.team.agents
    }
    trainer.train()
    for agent, old in before.items():
        new = trainer.team.trainable_parameters(agent)
        assert old and all(not torch.equal(o, n) for o, n in zip(old, new, strict=True)), agent


def _weights(trainer: Any) -> list[torch.Tensor]:
    return [
        p.detach().clone()
        for a in trainer.team.agents
        for p in trainer.team.trainable_parameters(a)
    ]


def test_a_killed_and_resumed_run_ends_like_an_uninterrupted_one(fast: dict[str, Any]) -> None:
    settings = {**fast, "num_steps": 4, "checkpoint_every": 2, "learning_rate": 1e-2}
    straight = MAGRPOTrainer(MAGRPOConfig(**settings, run_name="straight"))
    expected = straight.train().metrics

    with pytest.raises(KeyboardInterrupt):
        MAGRPOTrainer(MAGRPOConfig(**settings, run_name="killed"), env=KilledEnv()).train()
    run = Path(fast["output_dir"]) / "killed"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # step 3 came after the
    with (run / "metrics.jsonl").open("a") as f:  # last checkpoint; and a line cut short
        f.write('{"step": 4, "team_rew')
    resumed = MAGRPOTrainer(MAGRPOConfig(**settings, run_name="killed", resume=True))
    assert (resumed.step, resumed.position) == (2, 2)
    got = resumed.train().metrics

    assert [r["step"] for r in got] == [1, 2, 3, 4]
    strip = lambda r: {k: v for k, v in r.items() if k not in TIMING}  # noqa: E731
    assert [strip(r) for r in got] == [strip(r) for r in expected]
    for a, b in zip(_weights(straight), _weights(resumed), strict=True):
        assert torch.equal(a, b)


def test_resume_can_extend_a_finished_run(fast: dict[str, Any]) -> None:
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=2)).train()
    result = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=3, resume=True)).train()
    assert [r["step"] for r in result.metrics] == [1, 2, 3]
    assert result.checkpoint.name == "step-000003" and result.checkpoint.is_dir()


def test_resume_refuses_settings_that_change_the_run(fast: dict[str, Any]) -> None:
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1)).train()
    with pytest.raises(ValueError, match=r"learning_rate=0.5 \(saved 1e-05\)"):
        MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=2, resume=True, learning_rate=0.5))
    with pytest.raises(FileNotFoundError, match=r"never-ran holds no run \(no config.yaml\)"):
        MAGRPOTrainer(MAGRPOConfig(**fast, run_name="never-ran", resume=True))
    started = Path(fast["output_dir"]) / "started"
    started.mkdir()
    (started / "config.yaml").write_text("algo: magrpo\n")
    with pytest.raises(FileNotFoundError, match="start it again with --overwrite"):
        MAGRPOTrainer(MAGRPOConfig(**fast, run_name="started", resume=True))


def test_overwrite_deletes_only_a_run_and_only_when_training_starts(fast: dict[str, Any]) -> None:
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1)).train()
    run = Path(fast["output_dir"]) / "magrpo-digits_v0-seed0"
    trainer = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1, overwrite=True))
    assert (run / "checkpoints" / "step-000001").is_dir()  # the constructor deletes nothing
    trainer.train()
    assert [m["step"] for m in trainer_metrics(run)] == [1]
    (run / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"not a run's outputs \(\['notes.txt'\]\)"):
        MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1, overwrite=True)).train()
    assert (run / "notes.txt").read_text() == "mine"


def trainer_metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_below_the_current_step_is_refused(fast: dict[str, Any]) -> None:
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=2)).train()
    with pytest.raises(ValueError, match="already at step 2: pass --num-steps above 2"):
        MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1, resume=True))


def test_resume_finds_the_run_under_an_equivalent_path(fast: dict[str, Any]) -> None:
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1)).train()
    same = {**fast, "output_dir": fast["output_dir"] + "/"}
    trainer = MAGRPOTrainer(
        MAGRPOConfig(**same, num_steps=2, resume=True, run_name="magrpo-digits_v0-seed0")
    )
    assert trainer.step == 1


def test_a_checkpoint_without_its_team_or_state_is_not_resumed(fast: dict[str, Any]) -> None:
    result = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=2, checkpoint_every=1)).train()
    folder = result.run_dir / "checkpoints"
    (folder / "step-000002" / "trainer_state.pt").unlink()  # as if cut off mid-save
    (folder / ".partial-step-000003").mkdir()
    (folder / "step-000009").mkdir()  # a stray folder with nothing in it
    resumed = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=3, resume=True))
    assert resumed.step == 1
    resumed.train()
    assert not (folder / ".partial-step-000003").exists()


def test_the_tree_horizon_is_the_envs_number_of_turns(fast: dict[str, Any]) -> None:
    assert MAGRPOTrainer(MAGRPOConfig(**fast, num_turns=3)).estimator.returns.horizon == 3


def test_a_saved_team_as_model_refuses_settings_it_cannot_honour(fast: dict[str, Any]) -> None:
    result = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1)).train()
    team_dir = str(result.checkpoint / "team")
    settings = {**fast, "model": team_dir, "run_name": "from-saved"}
    with pytest.raises(ValueError, match=r"lora_r=8 \(the team has 16\)"):
        MAGRPOTrainer(MAGRPOConfig(**settings, lora_r=8))
    trainer = MAGRPOTrainer(MAGRPOConfig(**settings, num_steps=1))  # fine-tune it further
    assert trainer.team.agents == ("left_0", "right_1")


def test_full_fine_tuning_with_kl_keeps_the_initial_reference(fast: dict[str, Any]) -> None:
    settings = {**fast, "lora": False, "kl_beta": 0.5, "learning_rate": 1e-2, "checkpoint_every": 1}
    first = MAGRPOTrainer(MAGRPOConfig(**settings, num_steps=1))
    first.train()
    resumed = MAGRPOTrainer(MAGRPOConfig(**settings, num_steps=2, resume=True))
    for agent in resumed.team.agents:  # trained weights back, reference = the initial model
        for a, b in zip(
            first.team.trainable_parameters(agent),
            resumed.team.trainable_parameters(agent),
            strict=True,
        ):
            assert torch.equal(a, b)
    records = resumed.train().metrics
    assert records[-1]["kl"] > 0


def test_old_checkpoints_can_be_pruned(fast: dict[str, Any]) -> None:
    config = MAGRPOConfig(**fast, num_steps=4, checkpoint_every=1, keep_checkpoints=2)
    result = MAGRPOTrainer(config).train()
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    assert names == ["step-000003", "step-000004"]


def test_igrpo_trains_each_agent_on_its_own_reward(fast: dict[str, Any]) -> None:
    trainer = IGRPOTrainer(IGRPOConfig(**{**fast, "env": "tldr_v0"}, num_steps=2))
    assert trainer.env.reward_mode == "individual"  # type: ignore[attr-defined]
    records = trainer.train().metrics
    assert "reward/concise_0/turn0_mean" in records[-1] and len(records) == 2


def test_magrpo_learns_from_the_team_reward_whatever_the_env_gives(fast: dict[str, Any]) -> None:
    config = MAGRPOConfig(**fast, num_steps=1, env_kwargs={"reward_mode": "individual"})
    _, trees = MAGRPOTrainer(config).train_step()
    assert any(len(set(j.rewards.values())) > 1 for j in trees[0].joints)  # the env's own shares
    for joint in trees[0].joints:
        assert joint.returns == dict.fromkeys(["left_0", "right_1"], joint.team_reward)


def test_an_algorithms_env_options_cannot_be_overridden(fast: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="igrpo needs the env option reward_mode='individual'"):
        IGRPOTrainer(IGRPOConfig(**fast, env_kwargs={"reward_mode": "shared"}))


def test_igrpo_uses_individual_rewards_in_its_groups(fast: dict[str, Any]) -> None:
    trainer = IGRPOTrainer(IGRPOConfig(**fast, num_steps=1))
    _, trees = trainer.train_step()
    for joint in trees[0].joints:
        left, right = joint.rewards["left_0"], joint.rewards["right_1"]
        assert joint.team_reward == pytest.approx((left + right) / 2)
    assert trees[0].sample_returns["left_0"] == [j.rewards["left_0"] for j in trees[0].joints]


def test_grpo_trains_one_agent_on_the_single_agent_view(fast: dict[str, Any]) -> None:
    config = GRPOConfig(
        **{**fast, "env": "coophumaneval_v0"}, num_steps=2, eval_every=2, eval_tasks=1
    )
    trainer = GRPOTrainer(config)
    assert trainer.team.agents == ("coder_0",)
    records = trainer.train().metrics
    assert "reward/coder_0/turn0_mean" in records[-1]
    assert "eval/team_reward_mean" in records[-1]


def test_every_option_together_on_a_two_turn_tree(fast: dict[str, Any]) -> None:
    config = MAGRPOConfig(
        **{**fast, "num_generations": 2},
        num_steps=2,
        num_turns=2,
        joint_mode="cross",
        expand_top_k=2,
        advantage="rloo",
        scale_by_std=True,
        loss_aggregation="token_mean",
        clip_epsilon=0.2,
        inner_epochs=2,
        kl_beta=0.1,
        tasks_per_step=2,
        learning_rate=1e-2,
    )
    records = MAGRPOTrainer(config).train().metrics
    last = records[-1]
    assert last["nodes"] == 2 * 3  # per task: the root and its 2 best joint actions
    assert "team_reward/turn1_mean" in last
    assert last["kl"] > 0  # the adapters moved away from the reference after step 1
    assert 0 <= last["clip_fraction"] <= 1


def test_bad_input_is_refused(fast: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="MAGRPOTrainer needs a MAGRPOConfig, got IGRPOConfig"):
        MAGRPOTrainer(IGRPOConfig(**fast))  # type: ignore[arg-type]
    team = load_policy("tiny", agents=["someone_0"])
    with pytest.raises(ValueError, match="differ from the env's"):
        MAGRPOTrainer(MAGRPOConfig(**fast), team=team)
    with pytest.raises(FileNotFoundError, match="holds no run"):
        MAGRPOTrainer(MAGRPOConfig(**fast, resume=True))
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1)).train()
    with pytest.raises(FileExistsError, match="already holds a run"):
        MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1))
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1, overwrite=True)).train()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_steps": 0}, "num_steps must be an integer >= 1"),
        ({"advantage": "median"}, "advantage must be one of"),
        ({"joint_mode": "all"}, "joint_mode must be one of"),
        ({"loss_aggregation": "sum"}, "loss_aggregation must be one of"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"inner_epochs": 2}, "needs importance ratios"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"run_name": "../x"}, "names a folder"),
        ({"resume": True, "overwrite": True}, "exclude each other"),
        ({"kl_beta": -1.0}, "kl_beta must be >= 0"),
    ],
)
def test_config_errors_name_the_setting(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MAGRPOConfig(**changes)


def test_the_trainer_leaves_a_users_env_object_alone(fast: dict[str, Any]) -> None:
    env = DigitsEnv()
    snapshot = copy.deepcopy(env.tasks)
    MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1), env=env).train()
    assert env.tasks == snapshot
