"""A toy PettingZoo env written the way a user would write one, for the trainer tests.

Two agents answer a prompt; each agent's score is the fraction of the first ``window``
characters of its answer that are in ``targets`` (digits by default: the tiny random model
emits them about one time in ten, so a group of samples has signal from the first step). The
team reward is the mean of the two scores. With ``num_turns > 1`` the next prompt shows the
agent its last answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from llm_marl.spaces import UnicodeText, text_observation_space


@dataclass(frozen=True)
class ToyTask:
    task_id: str
    prompt: str


class DigitsEnv(ParallelEnv):  # type: ignore[type-arg]
    metadata: ClassVar[dict[str, Any]] = {"name": "digits_v0", "is_parallelizable": True}

    def __init__(
        self,
        num_turns: int = 1,
        reward_mode: str = "shared",
        split: str = "train",
        targets: str = "0123456789",
        window: int = 8,
        num_tasks: int = 5,
    ) -> None:
        self.possible_agents = ["left_0", "right_1"]
        self.agents: list[str] = []
        self.num_turns, self.reward_mode, self.targets, self.window = (
            num_turns,
            reward_mode,
            targets,
            window,
        )
        offset = 100 if split == "test" else 0
        self.tasks = [
            ToyTask(f"{split}-{i}", f"task {i + offset}: say numbers") for i in range(num_tasks)
        ]
        self.observation_spaces = {a: text_observation_space(4096) for a in self.possible_agents}
        self.action_spaces = {a: UnicodeText(4096) for a in self.possible_agents}
        self.np_random, _ = seeding.np_random()
        self._task = self.tasks[0]
        self._turn = 0

    def observation_space(self, agent: str) -> Any:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> Any:
        return self.action_spaces[agent]

    def score(self, text: str) -> float:
        head = text[: self.window]
        return sum(ch in self.targets for ch in head) / self.window

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        task_id = (options or {}).get("task_id")
        if task_id is None:
            self._task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        else:
            self._task = next(t for t in self.tasks if t.task_id == task_id)
        self._turn = 0
        self.agents = list(self.possible_agents)
        observations = {a: {"text": self._task.prompt} for a in self.agents}
        return observations, {a: {"task_id": self._task.task_id} for a in self.agents}

    def step(self, actions: dict[str, str]) -> Any:
        scores = {a: self.score(actions[a]) for a in self.agents}
        team = sum(scores.values()) / len(scores)
        self._turn += 1
        done = self._turn >= self.num_turns
        rewards = {
            a: (scores[a] if self.reward_mode == "individual" else team) for a in self.agents
        }
        infos = {
            a: {
                "team_reward": team,
                "reward_terms": {"digits": scores[a]},
                "task_id": self._task.task_id,
            }
            for a in self.agents
        }
        observations = {
            a: {"text": f"{self._task.prompt}\nyou said: {actions[a][:20]}"} for a in self.agents
        }
        agents = list(self.agents)
        if done:
            self.agents = []
        return (
            observations,
            rewards,
            dict.fromkeys(agents, False),
            dict.fromkeys(agents, done),
            infos,
        )


class KilledEnv(DigitsEnv):
    """The toy env, but the process 'dies' at the fourth task of the run (in step 4)."""

    resets = 0

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.resets += 1
        if self.resets == 4:
            raise KeyboardInterrupt("killed")
        return super().reset(seed=seed, options=options)


class SandboxErrorEnv(DigitsEnv):
    """The toy env, but the tasks of the chosen resets (1 = the run's first) report a sandbox
    failure on every step (``infos[agent]["sandbox_status"] == "sandbox_error"``), scored
    ``failed_score`` when given, as a failing sandbox might score them."""

    def __init__(
        self, fail_resets: set[int], failed_score: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.fail_resets, self.failed_score = fail_resets, failed_score
        self.resets = 0
        self._failing = False

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.resets += 1
        self._failing = self.resets in self.fail_resets
        return super().reset(seed=seed, options=options)

    def step(self, actions: dict[str, str]) -> Any:
        observations, rewards, terminations, truncations, infos = super().step(actions)
        status = "sandbox_error" if self._failing else "ok"
        for agent in infos:
            infos[agent]["sandbox_status"] = status
            if self._failing and self.failed_score is not None:
                rewards[agent] = infos[agent]["team_reward"] = self.failed_score
        return observations, rewards, terminations, truncations, infos


def parallel_env(**kwargs: Any) -> DigitsEnv:
    return DigitsEnv(**kwargs)
