"""Rollout trees: every agent samples G responses, joint actions are scored, branches grow.

One task (one env reset) gives one tree. A :class:`Node` is one turn of one branch: each agent's
prompt and its G samples, and the joint actions formed from them (``aligned``: sample g of
every agent, G of them; ``cross``: the Cartesian product, G^n). Each joint action is scored by
stepping a copy of the node's env, so the env is used through its PettingZoo API only. While the
episode goes on, chosen joint actions get a child node for the next turn (all of them, the best
``expand_top_k``, or none when the node's mean team reward reaches ``early_stop_threshold``).
With ``greedy_joint`` every node also gets one greedy answer per agent, scored but never
expanded (the ReMax baseline). The tree holds rewards only: the credit stage
(:mod:`~llm_marl.baselines.credit`) turns it into returns and advantages.

A step whose env reports ``infos[agent]["sandbox_status"] == "sandbox_error"`` (the code sandbox
failed, so the reward says nothing about the answer) marks its joint action
(``Joint.sandbox_error``); :func:`without_sandbox_errors` keeps the trees with no such step, so
a sandbox failure never becomes a low reward to learn from.
"""

from __future__ import annotations

import copy
import itertools
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pettingzoo import ParallelEnv

from llm_marl.env_protocol import observation_text, sandbox_failed, team_outcome
from llm_marl.models import Completion, SamplingConfig, Team
from llm_marl.models.backends import GenerationBackend

__all__ = [
    "Joint",
    "Node",
    "RolloutStats",
    "TreeSettings",
    "has_sandbox_error",
    "joint_picks",
    "observation_text",
    "rollout_tree",
    "team_outcome",
    "without_sandbox_errors",
]


@dataclass(frozen=True)
class TreeSettings:
    """How joint actions are formed and how far the tree grows."""

    joint_mode: str = "aligned"
    """``aligned`` or ``cross``."""
    early_stop_threshold: float | None = None
    """No children for a node whose mean team reward reaches this."""
    expand_top_k: int = 0
    """Children only for the k best joint actions by team reward; 0: all."""
    greedy_joint: bool = False
    """Also score one greedy answer per agent at every node (``Node.greedy``)."""


@dataclass
class Joint:
    """One scored joint action of a node."""

    picks: tuple[int, ...]
    """The sample index of each agent, in the node's agent order."""
    rewards: dict[str, float]
    """The env's reward for each agent (``rewards[agent]`` of the step)."""
    team_reward: float
    """The team reward (``infos[agent]["team_reward"]`` when the env gives it)."""
    terms: dict[str, float]
    """Reward terms by name (``infos[agent]["reward_terms"]`` when the env gives it)."""
    done: bool
    """True when the episode ended with this joint action."""
    child: Node | None = None
    """The next turn's node, when this joint action was expanded."""
    returns: dict[str, float] = field(default_factory=dict)
    """Each agent's discounted return from here (set by the credit stage)."""
    sandbox_error: bool = False
    """True when the env reported a sandbox failure for this step (its reward means nothing)."""


@dataclass
class Node:
    """One turn of one branch: the agents' prompts, samples and scored joint actions."""

    turn: int
    """0 for the first turn."""
    agents: tuple[str, ...]
    """The live agents, in env order."""
    prompts: dict[str, str]
    """Each agent's prompt."""
    env: ParallelEnv[Any, Any, Any] | None
    """The env positioned before this turn (released once the node is scored)."""
    samples: dict[str, list[Completion]] = field(default_factory=dict)
    """Each agent's G samples."""
    joints: list[Joint] = field(default_factory=list)
    """The scored joint actions."""
    sample_returns: dict[str, list[float]] = field(default_factory=dict)
    """Each agent's return per own sample (set by the credit stage)."""
    greedy: Joint | None = None
    """The scored joint greedy answer (``picks == ()``), with ``greedy_joint`` only."""
    greedy_samples: dict[str, Completion] = field(default_factory=dict)
    """Each agent's greedy answer, with ``greedy_joint`` only."""

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, parents first."""
        yield self
        for joint in self.joints:
            if joint.child is not None:
                yield from joint.child.walk()


def joint_picks(mode: str, num_samples: int, num_agents: int) -> list[tuple[int, ...]]:
    """The sample indices of every joint action: G aligned tuples or G^n crossed ones."""
    if mode == "aligned":
        return [(g,) * num_agents for g in range(num_samples)]
    if mode == "cross":
        return list(itertools.product(range(num_samples), repeat=num_agents))
    raise ValueError(f"joint_mode must be 'aligned' or 'cross', got {mode!r}")


@dataclass
class RolloutStats:
    """Time and tokens spent sampling, for throughput metrics."""

    generation_seconds: float = 0.0
    generated_tokens: int = 0


def rollout_tree(
    env: ParallelEnv[Any, Any, Any],
    reset_kwargs: Mapping[str, Any],
    team: Team,
    sampling: SamplingConfig,
    settings: TreeSettings,
    stats: RolloutStats | None = None,
    backend: GenerationBackend | None = None,
) -> Node:
    """Reset ``env`` with ``reset_kwargs`` and grow the scored tree of one task.

    Each level of the tree (every node of one turn) is sampled in one batched ``generate``
    call, by ``backend`` (default: the team's own ``generate``). ``env`` itself is only reset;
    joint actions step deep copies of it.
    """
    observations, _ = env.reset(**reset_kwargs)
    root = _node(0, env, observations)
    level = [root]
    while level:
        _sample(level, team, sampling, stats, backend)
        if settings.greedy_joint:
            _sample_greedy(level, team, sampling, stats, backend)
        next_level: list[Node] = []
        for node in level:
            _score(node, settings)
            next_level.extend(_expand(node, settings))
        level = next_level
    return root


def _node(turn: int, env: ParallelEnv[Any, Any, Any], observations: Mapping[str, Any]) -> Node:
    agents = tuple(env.agents)
    missing = [a for a in agents if a not in observations]
    if missing:
        raise ValueError(f"the env gave no observation for live agents {missing}")
    prompts = {a: observation_text(observations[a]) for a in agents}
    return Node(turn=turn, agents=agents, prompts=prompts, env=env)


def _sample(
    level: Sequence[Node],
    team: Team,
    sampling: SamplingConfig,
    stats: RolloutStats | None,
    backend: GenerationBackend | None,
) -> None:
    samples = _generate(level, team, sampling, stats, backend)
    for node, node_samples in zip(level, samples, strict=True):
        node.samples = node_samples


def _sample_greedy(
    level: Sequence[Node],
    team: Team,
    sampling: SamplingConfig,
    stats: RolloutStats | None,
    backend: GenerationBackend | None,
) -> None:
    greedy = replace(sampling, num_samples=1, temperature=0.0)
    for node, answers in zip(level, _generate(level, team, greedy, stats, backend), strict=True):
        node.greedy_samples = {agent: group[0] for agent, group in answers.items()}


def _generate(
    level: Sequence[Node],
    team: Team,
    sampling: SamplingConfig,
    stats: RolloutStats | None,
    backend: GenerationBackend | None,
) -> list[dict[str, list[Completion]]]:
    """Every live agent's completions at every node of ``level``, in one batched call."""
    requests = [(agent, node.prompts[agent]) for node in level for agent in node.agents]
    start = time.perf_counter()
    completions = (
        team.generate(requests, sampling)
        if backend is None
        else backend.generate(team, requests, sampling)
    )
    groups = iter(completions)
    per_node = [{agent: next(groups) for agent in node.agents} for node in level]
    if stats is not None:
        stats.generation_seconds += time.perf_counter() - start
        stats.generated_tokens += sum(
            c.num_tokens for samples in per_node for group in samples.values() for c in group
        )
    return per_node


def _score(node: Node, settings: TreeSettings) -> None:
    assert node.env is not None
    num_samples = len(node.samples[node.agents[0]])
    for picks in joint_picks(settings.joint_mode, num_samples, len(node.agents)):
        actions = {a: node.samples[a][g].text for a, g in zip(node.agents, picks, strict=True)}
        joint, branch, observations = _step(node, picks, actions)
        if not joint.done:
            joint.child = _node(node.turn + 1, branch, observations)
        node.joints.append(joint)
    if node.greedy_samples:
        actions = {a: c.text for a, c in node.greedy_samples.items()}
        node.greedy = _step(node, (), actions)[0]
    node.env = None


def _step(
    node: Node, picks: tuple[int, ...], actions: Mapping[str, str]
) -> tuple[Joint, ParallelEnv[Any, Any, Any], Mapping[str, Any]]:
    """Score ``actions`` on a copy of the node's env: the joint action, the copy, its
    observations."""
    assert node.env is not None
    branch = copy.deepcopy(node.env)
    observations, rewards, terminations, truncations, infos = branch.step(dict(actions))
    agent_rewards = {a: float(rewards[a]) for a in node.agents}
    team_reward, terms = team_outcome(infos, agent_rewards)
    done = not branch.agents or all(
        terminations.get(a, False) or truncations.get(a, False) for a in node.agents
    )
    joint = Joint(
        picks, agent_rewards, team_reward, terms, done, sandbox_error=sandbox_failed(infos)
    )
    return joint, branch, observations


def has_sandbox_error(tree: Node) -> bool:
    """True when any step of ``tree`` (a greedy answer's too) had a sandbox failure."""
    return any(
        joint.sandbox_error
        for node in tree.walk()
        for joint in [*node.joints, *([node.greedy] if node.greedy else [])]
    )


def without_sandbox_errors(trees: Sequence[Node]) -> list[Node]:
    """The trees without a sandbox failure (the tasks a step may learn from); a warning
    when there are none left."""
    kept = [tree for tree in trees if not has_sandbox_error(tree)]
    if trees and not kept:
        warnings.warn(
            f"every task of this step ({len(trees)}) had a sandbox error, so the step learns "
            "nothing; check llm_marl.sandbox.isolation() and the machine's load",
            stacklevel=2,
        )
    return kept


def _expand(node: Node, settings: TreeSettings) -> list[Node]:
    """Keep the children the settings allow, drop the others; return the kept ones."""
    open_joints = [j for j in node.joints if j.child is not None]
    mean_team = sum(j.team_reward for j in node.joints) / len(node.joints)
    stop = settings.early_stop_threshold is not None and mean_team >= settings.early_stop_threshold
    keep = [] if stop else open_joints
    if settings.expand_top_k and len(keep) > settings.expand_top_k:
        ranked = sorted(keep, key=lambda j: -j.team_reward)  # stable: ties keep sample order
        keep = ranked[: settings.expand_top_k]
    kept = {id(j) for j in keep}
    for joint in open_joints:
        if id(joint) not in kept:
            joint.child = None
    return [j.child for j in keep if j.child is not None]
