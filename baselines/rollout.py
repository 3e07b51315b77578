"""Rollout trees: every agent samples G responses, joint actions are scored, branches grow.

One task (one env reset) gives one tree. A :class:`Node` is one turn of one branch: each agent's
prompt and its G samples, and the joint actions formed from them (``aligned``: sample g of
every agent, G of them; ``cross``: the Cartesian product, G^n). Each joint action is scored by
stepping a copy of the node's env, so the env is used through its PettingZoo API only. While the
episode goes on, chosen joint actions get a child node for the next turn (all of them, the best
``expand_top_k``, or none when the node's mean team reward reaches ``early_stop_threshold``).
Returns are backed up once the tree is complete: a joint action's return is its reward plus
``gamma`` times the mean return of its child's joint actions, and a sample's return is the mean
over the joint actions it takes part in.

Every joint action of a group is credited over the same horizon, so one group never compares
returns over different numbers of turns: a joint action left out by ``expand_top_k`` gets its
reward plus ``gamma`` times the mean child value of its expanded siblings; a joint action with
no continuation (its node stopped early, or the env ended the episode before ``horizon``) is
credited as if its reward repeated for the remaining turns.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pettingzoo import ParallelEnv

from llm_marl.models import Completion, SamplingConfig, Team

__all__ = [
    "Joint",
    "Node",
    "TreeSettings",
    "joint_picks",
    "observation_text",
    "rollout_tree",
    "team_outcome",
]


@dataclass(frozen=True)
class TreeSettings:
    """How joint actions are formed and how far the tree grows."""

    joint_mode: str = "aligned"
    """``aligned`` or ``cross``."""
    gamma: float = 0.9
    """Discount of the next turn's return."""
    early_stop_threshold: float | None = None
    """No children for a node whose mean team reward reaches this."""
    expand_top_k: int = 0
    """Children only for the k best joint actions by team reward; 0: all."""
    horizon: int | None = None
    """Turns per episode, to credit early-stopped branches; None: they count as ended."""
    shared_reward: bool = True
    """Every agent's return uses the team reward; False: each agent's own env reward."""


@dataclass
class Joint:
    """One scored joint action of a node."""

    picks: tuple[int, ...]
    """The sample index of each agent, in the node's agent order."""
    rewards: dict[str, float]
    """The env's reward for each agent (the team reward, or each one's own share)."""
    team_reward: float
    """The team reward (``infos[agent]["team_reward"]`` when the env gives it)."""
    terms: dict[str, float]
    """Reward terms by name (``infos[agent]["reward_terms"]`` when the env gives it)."""
    done: bool
    """True when the episode ended with this joint action."""
    child: Node | None = None
    """The next turn's node, when this joint action was expanded."""
    returns: dict[str, float] = field(default_factory=dict)
    """Each agent's discounted return from here (set by the backup)."""


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
    """Each agent's return per own sample (set by the backup)."""

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


def observation_text(observation: Any) -> str:
    """The prompt inside an observation: ``{"text": prompt}`` (llm-marl envs) or a plain str."""
    if isinstance(observation, Mapping) and isinstance(observation.get("text"), str):
        return str(observation["text"])
    if isinstance(observation, str):
        return observation
    raise TypeError(
        "the trainers need text observations: a str or a dict with a 'text' str, got "
        f"{type(observation).__name__}"
    )


@dataclass
class RolloutStats:
    """Time and tokens spent sampling, for throughput metrics."""

    generation_seconds: float = 0.0
    generated_tokens: int = 0


def team_outcome(
    infos: Mapping[str, Any], rewards: Mapping[str, float]
) -> tuple[float, dict[str, float]]:
    """The team reward and reward terms of one step: ``infos[agent]["team_reward"]`` and
    ``["reward_terms"]`` of the first acting agent when the env gives them, else the mean of
    the agents' rewards and no terms."""
    first = infos.get(next(iter(rewards)), {})
    team = float(first.get("team_reward", sum(rewards.values()) / len(rewards)))
    return team, {k: float(v) for k, v in first.get("reward_terms", {}).items()}


def rollout_tree(
    env: ParallelEnv[Any, Any, Any],
    reset_kwargs: Mapping[str, Any],
    team: Team,
    sampling: SamplingConfig,
    settings: TreeSettings,
    stats: RolloutStats | None = None,
) -> Node:
    """Reset ``env`` with ``reset_kwargs`` and grow the scored tree of one task.

    Each level of the tree (every node of one turn) is sampled in one batched ``generate``
    call. ``env`` itself is only reset; joint actions step deep copies of it.
    """
    observations, _ = env.reset(**reset_kwargs)
    root = _node(0, env, observations)
    level = [root]
    while level:
        _sample(level, team, sampling, stats)
        next_level: list[Node] = []
        for node in level:
            _score(node, settings)
            next_level.extend(_expand(node, settings))
        level = next_level
    _backup(root, settings)
    return root


def _node(turn: int, env: ParallelEnv[Any, Any, Any], observations: Mapping[str, Any]) -> Node:
    agents = tuple(env.agents)
    missing = [a for a in agents if a not in observations]
    if missing:
        raise ValueError(f"the env gave no observation for live agents {missing}")
    prompts = {a: observation_text(observations[a]) for a in agents}
    return Node(turn=turn, agents=agents, prompts=prompts, env=env)


def _sample(
    level: Sequence[Node], team: Team, sampling: SamplingConfig, stats: RolloutStats | None
) -> None:
    requests = [(agent, node.prompts[agent]) for node in level for agent in node.agents]
    start = time.perf_counter()
    groups = iter(team.generate(requests, sampling))
    for node in level:
        node.samples = {agent: next(groups) for agent in node.agents}
    if stats is not None:
        stats.generation_seconds += time.perf_counter() - start
        stats.generated_tokens += sum(
            c.num_tokens for node in level for group in node.samples.values() for c in group
        )


def _score(node: Node, settings: TreeSettings) -> None:
    assert node.env is not None
    num_samples = len(node.samples[node.agents[0]])
    for picks in joint_picks(settings.joint_mode, num_samples, len(node.agents)):
        branch = copy.deepcopy(node.env)
        actions = {a: node.samples[a][g].text for a, g in zip(node.agents, picks, strict=True)}
        observations, rewards, terminations, truncations, infos = branch.step(actions)
        agent_rewards = {a: float(rewards[a]) for a in node.agents}
        team_reward, terms = team_outcome(infos, agent_rewards)
        if settings.shared_reward:
            agent_rewards = dict.fromkeys(node.agents, team_reward)
        done = not branch.agents or all(
            terminations.get(a, False) or truncations.get(a, False) for a in node.agents
        )
        joint = Joint(picks, agent_rewards, team_reward, terms, done)
        if not done:
            joint.child = _node(node.turn + 1, branch, observations)
        node.joints.append(joint)
    node.env = None


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


def _backup(node: Node, settings: TreeSettings) -> None:
    """Fill joint returns (reward + gamma * mean child return) and per-sample returns."""
    gamma = settings.gamma
    expanded = [j for j in node.joints if j.child is not None]
    for joint in expanded:
        assert joint.child is not None
        _backup(joint.child, settings)
        joint.returns = {
            a: joint.rewards[a] + gamma * _child_value(joint.child, a) for a in node.agents
        }
    for joint in node.joints:
        if joint.child is not None:
            continue
        if joint.done or not expanded:  # ended, or its node stopped early: reward held
            remaining = max(0, settings.horizon - 1 - node.turn) if settings.horizon else 0
            weight = sum(gamma**k for k in range(remaining + 1))
            joint.returns = {a: joint.rewards[a] * weight for a in node.agents}
        else:  # pruned by expand_top_k: its siblings' continuation
            joint.returns = {
                a: joint.rewards[a] + gamma * _sibling_value(expanded, a) for a in node.agents
            }
    num_samples = len(node.samples[node.agents[0]])
    for index, agent in enumerate(node.agents):
        totals, counts = [0.0] * num_samples, [0] * num_samples
        for joint in node.joints:
            totals[joint.picks[index]] += joint.returns[agent]
            counts[joint.picks[index]] += 1
        node.sample_returns[agent] = [t / c for t, c in zip(totals, counts, strict=True)]


def _sibling_value(expanded: Sequence[Joint], agent: str) -> float:
    """Mean child value of ``agent`` over the expanded sibling joint actions."""
    return sum(_child_value(j.child, agent) for j in expanded if j.child) / len(expanded)


def _child_value(child: Node, agent: str) -> float:
    """Mean return of ``agent`` over a child's joint actions (0 once it has left)."""
    return sum(c.returns.get(agent, 0.0) for c in child.joints) / len(child.joints)
