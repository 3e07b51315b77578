"""verifiers: any llm-marl env as a verifiers ``MultiTurnEnv``, loaded the hub's way.

verifiers' environments have no multi-agent notion (one model, one conversation per
rollout), so each env is its single-agent view (``single_agent=True``: one writer answers
every part, as ``[PART 1]`` ... ``[PART n]``, and gets the team reward). The env's later
prompts come back as user messages; the rubric's reward is the episode's summed team reward,
computed by the env itself (coding envs run the answers in llm-marl's sandbox).

verifiers loads an environment by importing a module and calling its
``load_environment(**kwargs)``; this module is such an entry point:

>>> import verifiers as vf
>>> env = vf.load_environment("llm_marl.integrations.verifiers", env="tldr_v0", num_turns=2)
>>> client = vf.ClientConfig(api_base_url="http://127.0.0.1:8000/v1", api_key_var="KEY")
>>> results = env.evaluate_sync(client, model="my-model", num_examples=4)

Any OpenAI-compatible server works (``transformers serve <model folder>``, vLLM, ...).
``env`` names the llm-marl env; the other keyword arguments go to :func:`llm_marl.make`
(``num_turns``, ``data``, ``max_tasks``, ...), except the verifiers ones listed in
:func:`load_environment`. The data set holds the ``split`` tasks (default ``"train"``), the
evaluation set the ``eval_split`` tasks (``"test"``); each row's ``info`` names its
``task_id``. Uses verifiers' classic environment API (``verifiers<0.4``): 0.4 dropped it for
environments whose every rollout runs a harness program installed with ``uv`` at run time.
Needs ``pip install "llm-marl[verifiers]"``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import verifiers as vf

import llm_marl
from llm_marl.env_base import CollaborativeTextEnv
from llm_marl.env_protocol import sandbox_failed

__all__ = ["LlmMarlEnv", "load_environment", "team_reward"]


def _solo_env(env_id: str, split: str, env_kwargs: dict[str, Any]) -> CollaborativeTextEnv[Any]:
    if env_kwargs.get("single_agent", True) is not True:
        raise ValueError(
            "single_agent=False: verifiers plays one model per conversation, so the verifiers "
            "adapter uses the single-agent view; drop single_agent"
        )
    env = llm_marl.make(env_id, **{**env_kwargs, "single_agent": True, "split": split})
    if not isinstance(env, CollaborativeTextEnv):
        raise TypeError(f"{env_id!r} builds a {type(env).__name__}, not a CollaborativeTextEnv")
    return env


def _dataset(env_id: str, split: str, env_kwargs: dict[str, Any]) -> Any:
    """One row per task of ``split``: the first prompt as a user message, the task id in info."""
    from datasets import Dataset

    env = _solo_env(env_id, split, env_kwargs)
    agent = env.possible_agents[0]
    rows: dict[str, list[Any]] = {"prompt": [], "info": []}
    for task in env.tasks:
        observations, _ = env.reset(options={"task_id": task.task_id})
        rows["prompt"].append([{"role": "user", "content": observations[agent]["text"]}])
        rows["info"].append({"task_id": task.task_id, "split": split})
    env.close()
    return Dataset.from_dict(rows)


async def team_reward(state: vf.State) -> float:
    """The rubric's reward: the episode's summed team reward, as the llm-marl env gave it."""
    return float(sum(state.get("llm_marl_rewards", [])))


class LlmMarlEnv(vf.MultiTurnEnv):  # type: ignore[misc]
    """The single-agent view of an llm-marl env as a verifiers ``MultiTurnEnv``.

    Each rollout builds its own copy of the env, resets it to the row's ``task_id`` and steps
    it with every reply; the env's next prompt is the next user message, and the episode's
    end ends the rollout. ``state["llm_marl_rewards"]`` holds the per-turn rewards and
    ``state["llm_marl_infos"]`` the last turn's infos (reward terms, sandbox results).
    ``state["llm_marl_sandbox_error"]`` is True when the code sandbox failed to judge any turn
    (coding envs): that rollout's reward means nothing, drop it rather than learn from it.
    """

    def __init__(
        self,
        env: str,
        *,
        split: str = "train",
        eval_split: str | None = "test",
        env_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.llm_marl_id = env
        self.llm_marl_kwargs = dict(env_kwargs or {})
        probe = _solo_env(env, split, self.llm_marl_kwargs)  # bad ids and kwargs fail here
        self.llm_marl_turns = int(getattr(probe, "num_turns", 1))
        probe.close()
        kwargs.setdefault("rubric", vf.Rubric(funcs=[team_reward]))
        super().__init__(
            dataset=lambda: _dataset(env, split, self.llm_marl_kwargs),
            eval_dataset=(
                None
                if eval_split is None
                else lambda: _dataset(env, eval_split, self.llm_marl_kwargs)
            ),
            **kwargs,
        )

    async def setup_state(self, state: vf.State) -> vf.State:
        """Build this rollout's env and reset it to the row's task."""
        info = state["info"]
        env = await asyncio.to_thread(
            _solo_env, self.llm_marl_id, info["split"], self.llm_marl_kwargs
        )
        await asyncio.to_thread(env.reset, options={"task_id": info["task_id"]})
        state["llm_marl_env"] = env
        state["llm_marl_rewards"] = []
        state["llm_marl_infos"] = {}
        state["llm_marl_sandbox_error"] = False
        return state

    async def env_response(self, messages: vf.Messages, state: vf.State, **kwargs: Any) -> Any:
        """Step the env with the last reply; its next prompt, or the end of the episode."""
        env: CollaborativeTextEnv[Any] = state["llm_marl_env"]
        agent = env.possible_agents[0]
        answer = self.parser.parse_answer(messages) or ""
        observations, rewards, _, _, infos = await asyncio.to_thread(env.step, {agent: answer})
        state["llm_marl_rewards"].append(float(rewards[agent]))
        state["llm_marl_infos"] = dict(infos[agent])
        state["llm_marl_sandbox_error"] = state["llm_marl_sandbox_error"] or sandbox_failed(infos)
        if env.agents:
            return [vf.UserMessage(content=observations[agent]["text"])]
        total = sum(state["llm_marl_rewards"])
        final = [vf.UserMessage(content=f"Episode over: team reward {total:.2f}.")]
        state["final_env_response"] = final
        return final

    @vf.cleanup  # type: ignore[misc]
    async def close_llm_marl_env(self, state: vf.State) -> None:
        """Close the rollout's env (its sandbox, if any); the rewards stay in the state."""
        env = state.pop("llm_marl_env", None)
        if env is not None:
            env.close()


def load_environment(
    env: str = "tldr_v0",
    split: str = "train",
    eval_split: str | None = "test",
    system_prompt: str | None = None,
    **env_kwargs: Any,
) -> LlmMarlEnv:
    """verifiers' entry point: the llm-marl env ``env`` as a :class:`LlmMarlEnv`.

    ``vf.load_environment("llm_marl.integrations.verifiers", env="tldr_v0", num_turns=2)``
    calls it. ``env_kwargs`` go to :func:`llm_marl.make`; ``system_prompt`` is prepended to
    every prompt as a system message.
    """
    return LlmMarlEnv(
        env,
        split=split,
        eval_split=eval_split,
        env_kwargs=env_kwargs,
        system_prompt=system_prompt,
    )
