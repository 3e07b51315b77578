"""verifiers' own load_environment and rollout loop on every llm-marl env.

The rollouts talk to a real OpenAI-compatible server: ``transformers serve`` on 127.0.0.1 (a
free port picked at run time) serving the tiny test model from a local folder, offline.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import llm_marl

vf = pytest.importorskip("verifiers")

from llm_marl.integrations.verifiers import LlmMarlEnv  # noqa: E402

ENTRY_POINT = "llm_marl.integrations.verifiers"
API_KEY_VAR = "LLM_MARL_TEST_SERVER_KEY"


@pytest.fixture
def server(tiny_server: tuple[str, str]) -> tuple[str, str]:
    """``(base_url, model)`` of the session's live ``transformers serve`` of the tiny model."""
    return tiny_server


def _client(base_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(API_KEY_VAR, "unused")
    return vf.ClientConfig(api_base_url=base_url, api_key_var=API_KEY_VAR)


def _replayed_return(env_id: str, task_id: str, split: str, answers: list[str]) -> float:
    """The env's own return for ``answers``, played on a fresh single-agent env."""
    env = llm_marl.make(env_id, single_agent=True, num_turns=len(answers), split=split)
    env.reset(options={"task_id": task_id})
    agent = env.possible_agents[0]
    total = 0.0
    for answer in answers:
        total += float(env.step({agent: answer})[1][agent])
    assert not env.agents
    return total


def _text(message: Any) -> str:
    content = message["content"] if isinstance(message, dict) else message.content
    return str(content or "")


def _role(message: Any) -> str:
    return str(message["role"] if isinstance(message, dict) else message.role)


def test_load_environment_is_the_entry_point() -> None:
    """``vf.load_environment`` imports the module; rows are the env's tasks and prompts."""
    env = vf.load_environment(ENTRY_POINT, env="tldr_v0", num_turns=2, max_tasks=3)
    assert isinstance(env, LlmMarlEnv) and isinstance(env, vf.MultiTurnEnv)
    assert env.env_id == ENTRY_POINT
    plain = llm_marl.make("tldr_v0", single_agent=True, split="test", max_tasks=3)
    rows = env.get_eval_dataset()
    assert [row["info"]["task_id"] for row in rows] == [task.task_id for task in plain.tasks]
    observations, _ = plain.reset(options={"task_id": plain.tasks[1].task_id})
    prompt = rows[1]["prompt"]
    assert [(m["role"], m["content"]) for m in prompt] == [
        ("user", observations["writer_0"]["text"])
    ]
    assert len(env.get_dataset()) == len(llm_marl.make("tldr_v0", max_tasks=3).tasks)


@pytest.mark.parametrize("env_id", llm_marl.list_envs())
def test_rollouts_score_the_env_reward(
    env_id: str, server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """verifiers' evaluate loop: two turns per rollout, the env's own return as reward."""
    base_url, model = server
    env = vf.load_environment(ENTRY_POINT, env=env_id, num_turns=2)
    results = env.evaluate_sync(
        _client(base_url, monkeypatch),
        model=model,
        sampling_args={"max_tokens": 8, "temperature": 1.0},
        num_examples=2,
    )
    outputs = results["outputs"]
    assert len(outputs) == 2
    for output in outputs:
        assert output["error"] is None
        assert output["stop_condition"] == "has_final_env_response"
        completion = output["completion"]
        answers = [_text(m) for m in completion if _role(m) == "assistant"]
        feedback = [_text(m) for m in completion if _role(m) == "user"]
        assert len(answers) == 2
        assert feedback[-1].startswith("Episode over")
        info = output["info"]
        expected = _replayed_return(env_id, info["task_id"], info["split"], answers)
        assert output["reward"] == pytest.approx(expected)
        assert output["metrics"]["team_reward"] == pytest.approx(expected)


def test_vf_eval_runs_the_entry_point(
    server: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """verifiers' evaluation CLI (``vf-eval``) loads the module and scores with the rubric."""
    base_url, model = server
    monkeypatch.setenv(API_KEY_VAR, "unused")
    command = [sys.executable, "-m", "verifiers.legacy.scripts.eval", ENTRY_POINT]
    command += ["-a", '{"env": "tldr_v0", "max_tasks": 2}', "-m", model, "-b", base_url]
    command += ["-k", API_KEY_VAR, "-n", "2", "-r", "1", "-t", "8"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "team_reward" in done.stdout
    assert "has_final_env_response" in done.stdout


def test_known_answers_score_the_env_reward(fixed_answers: dict[str, str]) -> None:
    """Without a model: env_response and the rubric give the env's reward for set answers."""
    env_id = "tldr_v0"
    env = LlmMarlEnv(env_id, env_kwargs={"num_turns": 2})
    row = env.get_dataset()[0]
    answers = [f"[PART 1]\n{fixed_answers['short']}\n[PART 2]\n{fixed_answers['long']}"] * 2

    async def play() -> Any:
        # verifiers' own state of the row; the client is never called (no model here).
        client = vf.ClientConfig(api_base_url="http://127.0.0.1:9/v1", api_key_var="PATH")
        state = await env.setup_state(await env.init_state(row, client, "none"))
        messages: list[Any] = list(state["prompt"])
        for answer in answers:
            messages.append(vf.AssistantMessage(content=answer))
            messages.extend(await env.env_response(messages, state))
        await env.render_state(state)
        await env.cleanup(state)
        await env.rubric.score_rollout(state)
        return state

    state = asyncio.run(play())
    expected = _replayed_return(env_id, row["info"]["task_id"], "train", answers)
    assert expected > 0
    assert state["reward"] == pytest.approx(expected)
    assert state["final_env_response"] is not None
    assert "llm_marl_env" not in state


def test_a_team_view_is_refused() -> None:
    """verifiers plays one model per conversation: ``single_agent=False`` is refused."""
    with pytest.raises(RuntimeError, match="single-agent view"):
        vf.load_environment(ENTRY_POINT, env="tldr_v0", single_agent=False)


def test_an_unknown_env_fails_at_load() -> None:
    """A misspelt env id fails when the environment loads, not in the first rollout."""
    with pytest.raises(RuntimeError, match="tldr_v0"):
        vf.load_environment(ENTRY_POINT, env="tldr_v9")


def test_a_turn_the_sandbox_failed_to_judge_flags_the_rollout(broken_sandbox: None) -> None:
    """The reference solution under a broken sandbox: the state says to drop the rollout."""
    env = LlmMarlEnv("humaneval_v0", env_kwargs={"max_tasks": 1})
    row = env.get_dataset()[0]
    solo = llm_marl.make("humaneval_v0", single_agent=True, max_tasks=1)
    solo.reset(options={"task_id": row["info"]["task_id"]})
    answer = solo.reference_actions()[solo.possible_agents[0]]

    async def play() -> Any:
        client = vf.ClientConfig(api_base_url="http://127.0.0.1:9/v1", api_key_var="PATH")
        state = await env.setup_state(await env.init_state(row, client, "none"))
        assert state["llm_marl_sandbox_error"] is False
        messages: list[Any] = [*state["prompt"], vf.AssistantMessage(content=answer)]
        await env.env_response(messages, state)
        await env.cleanup(state)
        return state

    state = asyncio.run(play())
    assert state["llm_marl_sandbox_error"] is True
    assert state["llm_marl_infos"]["sandbox_status"] == "sandbox_error"
