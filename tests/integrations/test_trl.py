"""TRL's GRPOTrainer trains the tiny model on an llm-marl env through the TRL adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import llm_marl

pytest.importorskip("trl")

from llm_marl.integrations.trl import completion_text, trl_dataset, trl_reward


def test_dataset_has_one_row_per_task_with_the_env_prompt() -> None:
    """Rows hold the single-agent prompt as a chat message, the task id and the split."""
    data = trl_dataset("tldr_v0", "test", max_tasks=3)
    env = llm_marl.make("tldr_v0", split="test", single_agent=True, max_tasks=3)
    assert data.column_names == ["prompt", "task_id", "split"]
    assert data["task_id"] == [task.task_id for task in env.tasks]
    observations, _ = env.reset(options={"task_id": data["task_id"][1]})
    assert data[1]["prompt"] == [{"role": "user", "content": observations["writer_0"]["text"]}]
    assert set(data["split"]) == {"test"}
    plain = trl_dataset("tldr_v0", "test", conversational=False, max_tasks=3)
    assert plain[1]["prompt"] == observations["writer_0"]["text"]


@pytest.mark.parametrize("env_id", ["tldr_v0", "humaneval_v0"])
def test_reward_is_the_env_reward_of_the_completion(env_id: str) -> None:
    """Reference answers earn the env's reward, plain or conversational, in dataset order."""
    data = trl_dataset(env_id, "train", max_tasks=2)
    env = llm_marl.make(env_id, single_agent=True, max_tasks=2)
    solo = env.possible_agents[0]
    answers, expected = [], []
    for tid in data["task_id"]:
        env.reset(options={"task_id": tid})
        answer = env.reference_actions()[solo]
        _, rewards, *_ = env.step({solo: answer})
        answers.append(answer)
        expected.append(rewards[solo])
    reward = trl_reward(env_id, max_tasks=2)
    chats = [[{"role": "assistant", "content": a}] for a in answers]
    extra = {"task_id": data["task_id"], "split": data["split"]}
    assert reward(data["prompt"], answers, **extra) == pytest.approx(expected)
    assert reward(data["prompt"], chats, **extra) == pytest.approx(expected)
    assert max(expected) > 0.0
    assert reward(data["prompt"], ["", ""], **extra) == [0.0, 0.0]


def test_reward_explains_what_is_missing() -> None:
    """No task_id column, a multi-turn env or a team view are refused with the fix."""
    with pytest.raises(ValueError, match="task_id column"):
        trl_reward("tldr_v0")(["p"], ["c"])
    with pytest.raises(ValueError, match="num_turns"):
        trl_dataset("tldr_v0", num_turns=2)
    with pytest.raises(ValueError, match="single-agent view"):
        trl_dataset("tldr_v0", single_agent=False)
    assert completion_text([{"role": "assistant", "content": "a"}, {"content": None}]) == "a"


def test_grpo_trainer_trains_two_steps_on_the_tiny_model(tmp_path: Path) -> None:
    """``GRPOTrainer(model, reward_funcs=trl_reward(...), train_dataset=trl_dataset(...))``."""
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from llm_marl.models.tiny import TinyLlamaSpec, tiny_llama

    # Four short local posts keep the prompts (about 700 characters, so tokens) cheap on CPU.
    posts = tmp_path / "posts.jsonl"
    lines = [
        json.dumps({"id": f"post-{i}", "title": "Cats", "post": f"My cat {i} sleeps all day."})
        for i in range(4)
    ]
    posts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model_dir = tmp_path / "tiny"
    model, tokenizer = tiny_llama(TinyLlamaSpec())
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    scored: list[float] = []
    env_reward = trl_reward("tldr_v0", data=str(posts))

    def recorded(**kwargs):  # type: ignore[no-untyped-def]
        rewards = env_reward(**kwargs)
        scored.extend(rewards)
        return rewards

    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-2,
        entropy_coef=0.1,  # a gradient even when every completion of a group scores alike
        gradient_checkpointing=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    trainer = GRPOTrainer(
        str(model_dir),
        reward_funcs=recorded,
        args=args,
        train_dataset=trl_dataset("tldr_v0", "train", data=str(posts)),
    )
    trainer.train()

    assert trainer.state.global_step == 2
    assert len(scored) == 2 * 4  # two steps of four completions, each scored by the env
    logged = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    assert logged == pytest.approx(
        [sum(scored[:4]) / 4, sum(scored[4:]) / 4]
    )  # TRL logs the env's rewards
    trained = dict(trainer.model.named_parameters())
    assert all(not torch.equal(before[n], trained[n].detach().cpu()) for n in before)


def test_a_completion_the_sandbox_failed_to_judge_scores_none(broken_sandbox: None) -> None:
    """The reference solution under a broken sandbox: None (TRL drops it), not a low reward."""
    data = trl_dataset("humaneval_v0", "train", max_tasks=1)
    env = llm_marl.make("humaneval_v0", single_agent=True, max_tasks=1)
    env.reset(options={"task_id": data["task_id"][0]})
    answer = env.reference_actions()[env.possible_agents[0]]
    reward = trl_reward("humaneval_v0", max_tasks=1)
    assert reward(data["prompt"], [answer], task_id=data["task_id"]) == [None]
