"""The actor-critic family: a learned critic as the credit estimator, trained beside the team.

:class:`CriticBaseline` sees a whole scored tree. With a V critic (``critic_type="v"``) each
node's value comes from its prompts, and a joint action's advantage is GAE over the turns of
the tree: ``delta = r + gamma * V(child) - V(node)``, ``A = delta + gamma * lambda * mean A of
the child's joint actions``; a joint action with no continuation (ended, pruned or stopped
early) gets its backed-up return minus ``V(node)`` (:mod:`~llm_marl.baselines.returns`, so
every branch is credited over the same horizon). With a Q critic (MAAC only) the critic also
reads the joint answer and ``A = Q(node, a) - mean of Q over the node's joint actions``; its
target is the TD(lambda) return. A sample's advantage is its mean over the joint actions it is
in. The critic is fitted by squared error to ``A + V`` (the lambda-return) or the Q target.

:class:`ActorCriticTrainer` is the shared trainer: it builds the critic
(:mod:`~llm_marl.baselines.critic`), gives it its own optimiser, adds the value loss to the
loss stage, logs ``value_loss``, ``value/explained_variance`` and ``value/abs_error``, and
checkpoints the critic as the extra part ``critic``. IAC and MAAC state only their critic's
inputs.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from llm_marl.baselines.advantages import scale_by_group_std
from llm_marl.baselines.config import ActorCriticConfig, TrainConfig
from llm_marl.baselines.credit import Credit, CreditEstimator, Group
from llm_marl.baselines.critic import ValueCritic, build_critic
from llm_marl.baselines.returns import (
    ReturnSettings,
    backup_returns,
    joint_reward,
    per_sample_mean,
)
from llm_marl.baselines.rollout import Joint, Node
from llm_marl.baselines.trainer import Trainer
from llm_marl.baselines.update import LossStats
from llm_marl.models import LoRASettings

__all__ = ["ActorCriticTrainer", "CriticBaseline", "CriticInputs"]

#: A critic input row: the value function's name and the text parts it reads.
Row = tuple[str, tuple[str, ...]]


class CriticInputs:
    """What each value function reads: one per agent (independent) or one central."""

    def __init__(self, central: bool, q: bool) -> None:
        if q and not central:
            raise ValueError("a Q critic is centralised: it reads every agent's answer")
        self.central, self.q = central, q

    def names(self, agents: Sequence[str]) -> tuple[str, ...]:
        """The value functions a team of ``agents`` needs."""
        return ("central",) if self.central else tuple(agents)

    def state_rows(self, node: Node) -> dict[str, Row]:
        """Per agent, the row valuing ``node`` for it (V critics)."""
        if self.central:
            row = ("central", tuple(f"[{a}]\n{node.prompts[a]}" for a in node.agents))
            return dict.fromkeys(node.agents, row)
        return {a: (a, (node.prompts[a],)) for a in node.agents}

    def joint_row(self, node: Node, joint: Joint) -> Row:
        """The row valuing ``joint`` at ``node`` (Q critics)."""
        parts = [f"[{a}]\n{node.prompts[a]}" for a in node.agents]
        answers = [
            f"[{a} answered]\n{node.samples[a][g].text}"
            for a, g in zip(node.agents, joint.picks, strict=True)
        ]
        return ("central", (*parts, *answers))


class CriticBaseline(CreditEstimator):
    """Advantages from a learned critic: GAE over a tree's turns (V) or Q - mean Q."""

    def __init__(
        self,
        returns: ReturnSettings,
        critic: ValueCritic,
        inputs: CriticInputs,
        *,
        gae_lambda: float,
        scale_by_std: bool = False,
    ) -> None:
        super().__init__(returns)
        self.critic, self.inputs = critic, inputs
        self.gae_lambda, self.scale_by_std = gae_lambda, scale_by_std

    def assign(self, tree: Node) -> Credit:
        """Advantages and value targets of every (node, agent) group of ``tree``."""
        backup_returns(tree, self.returns)  # the Monte Carlo return of branches that end here
        nodes = list(tree.walk())
        rows, where = self._rows(nodes)
        with torch.no_grad():
            predicted = self.critic.values(rows).float().cpu()  # (R,)
        value = {key: float(predicted[i]) for key, i in where.items()}
        per_joint: dict[int, dict[str, float]] = {}  # id(joint) -> agent -> advantage
        self._q_targets: dict[int, float] = {}  # id(joint) -> Q target (Q critics)
        targets = [0.0] * len(rows)
        counts = [0] * len(rows)
        for node in reversed(nodes):  # children before parents
            self._credit_node(node, value, per_joint, where, targets, counts)
        targets = [t / max(c, 1) for t, c in zip(targets, counts, strict=True)]
        groups = []
        for node in nodes:
            for index, agent in enumerate(node.agents):
                joint_advantages = [per_joint[id(j)][agent] for j in node.joints]
                advantages = torch.tensor(per_sample_mean(node, index, joint_advantages))  # (G,)
                returns = node.sample_returns[agent]
                if self.scale_by_std:
                    advantages = scale_by_group_std(advantages, torch.tensor(returns))
                groups.append(Group(agent, node.turn, node.samples[agent], returns, advantages))
        extras = {
            "value_rows": rows,
            "value_targets": torch.tensor(targets, dtype=torch.float32),
            "value_predictions": predicted,
        }
        return Credit(tree, groups, extras)

    def _rows(self, nodes: Sequence[Node]) -> tuple[list[Row], dict[tuple[int, Any], int]]:
        """Distinct critic rows, and where each (node, agent) or (node, joint) value is."""
        rows: list[Row] = []
        where: dict[tuple[int, Any], int] = {}
        for node in nodes:
            if self.inputs.q:
                for k, joint in enumerate(node.joints):
                    where[id(node), k] = len(rows)
                    rows.append(self.inputs.joint_row(node, joint))
                continue
            seen: dict[Row, int] = {}
            for agent, row in self.inputs.state_rows(node).items():
                if row not in seen:
                    seen[row] = len(rows)
                    rows.append(row)
                where[id(node), agent] = seen[row]
        return rows, where

    def _credit_node(
        self,
        node: Node,
        value: Mapping[tuple[int, Any], float],
        per_joint: dict[int, dict[str, float]],
        where: Mapping[tuple[int, Any], int],
        targets: list[float],
        counts: list[int],
    ) -> None:
        gamma, lam, reward = self.returns.gamma, self.gae_lambda, self.returns.reward
        if self.inputs.q:
            q_values = [value[id(node), k] for k in range(len(node.joints))]
            baseline = statistics.fmean(q_values)
            for k, joint in enumerate(node.joints):
                target = self._q_target(joint, value)
                self._q_targets[id(joint)] = target
                per_joint[id(joint)] = dict.fromkeys(node.agents, q_values[k] - baseline)
                targets[where[id(node), k]] += target
                counts[where[id(node), k]] += 1
            return
        for joint in node.joints:
            advantages = {}
            for agent in node.agents:
                v_here = value[id(node), agent]
                child = joint.child
                if child is not None and agent in child.agents:
                    child_advantage = statistics.fmean(
                        per_joint[id(c)][agent] for c in child.joints
                    )
                    delta = joint_reward(joint, agent, reward) + gamma * value[id(child), agent]
                    advantages[agent] = delta - v_here + gamma * lam * child_advantage
                else:
                    advantages[agent] = joint.returns[agent] - v_here
                targets[where[id(node), agent]] += advantages[agent] + v_here
                counts[where[id(node), agent]] += 1
            per_joint[id(joint)] = advantages

    def _q_target(self, joint: Joint, value: Mapping[tuple[int, Any], float]) -> float:
        """TD(lambda) target of a joint action's Q: the team's return, bootstrapped."""
        first = next(iter(joint.returns))
        child = joint.child
        if child is None:
            return joint.returns[first]
        q_next = statistics.fmean(value[id(child), k] for k in range(len(child.joints)))
        g_next = statistics.fmean(self._q_targets[id(c)] for c in child.joints)
        mixed = (1 - self.gae_lambda) * q_next + self.gae_lambda * g_next
        return joint_reward(joint, first, "team") + self.returns.gamma * mixed


class ActorCriticTrainer(Trainer):
    """A team of actors and a learned critic; subclasses say what the critic reads."""

    config_class: ClassVar[type[TrainConfig]] = ActorCriticConfig
    config: ActorCriticConfig
    critic: ValueCritic

    def inputs(self) -> CriticInputs:
        """What each value function reads; default: one V critic per agent, on its prompt."""
        return CriticInputs(central=False, q=False)

    def env_options(self) -> dict[str, Any]:
        """Each agent's own reward when the returns are built from it."""
        return {"reward_mode": "individual"} if self.config.reward == "own" else {}

    def return_settings(self) -> ReturnSettings:
        """The returns of the configured reward, discount and the env's horizon."""
        return ReturnSettings(self.config.reward, self.config.gamma, self.horizon)

    def setup_extras(self) -> None:
        """The critic: one adapter and value head per value function."""
        config = self.config
        self.critic = build_critic(
            self.team,
            self.inputs().names(self.team.agents),
            lora=LoRASettings(r=config.lora_r, alpha=config.lora_alpha),
            model=config.critic_model,
            base_model=config.model,
            max_tokens=config.critic_max_tokens,
            dtype=config.dtype,
            device=config.device,
        )

    def make_estimator(self) -> CreditEstimator:
        """The critic as the baseline."""
        return CriticBaseline(
            self.return_settings(),
            self.critic,
            self.inputs(),
            gae_lambda=self.config.gae_lambda,
            scale_by_std=self.config.scale_by_std,
        )

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One AdamW per agent, and one for the critic."""
        optimizers = super().make_optimizers()
        optimizers["critic"] = torch.optim.AdamW(
            self.critic.parameters(), lr=self.config.critic_learning_rate
        )
        return optimizers

    def extra_parts(self) -> tuple[str, ...]:
        """Every checkpoint holds the critic."""
        return ("critic",)

    def extra_state(self) -> dict[str, Any]:
        """The critic's adapters and heads."""
        return {"critic": self.critic.state_dict()}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """The critic's adapters and heads, from a checkpoint."""
        self.critic.load_state_dict(state["critic"])

    def loss(self, task: Credit, scale: float) -> LossStats:
        """The policy loss, then the critic's squared error to its targets."""
        stats = super().loss(task, scale)
        predicted = self.critic.values(task.extras["value_rows"])  # (R,)
        targets = task.extras["value_targets"].to(predicted.device)
        value_loss = torch.mean((predicted - targets) ** 2)
        (self.config.value_loss_weight * value_loss * scale).backward()
        stats.extra["value_loss"] = float(value_loss.detach()) * scale
        return stats

    def step_metrics(
        self,
        trees: list[Node],
        credits: list[Credit],
        loss: LossStats,
        norms: Mapping[str, float],
    ) -> dict[str, float]:
        """The shared metrics, plus how well the critic predicted this step's targets."""
        metrics = super().step_metrics(trees, credits, loss, norms)
        targets = torch.cat([c.extras["value_targets"] for c in credits])  # (R,)
        predicted = torch.cat([c.extras["value_predictions"] for c in credits])
        metrics["value/abs_error"] = float((targets - predicted).abs().mean())
        spread = float(targets.var(unbiased=False))
        residual = float((targets - predicted).var(unbiased=False))
        metrics["value/explained_variance"] = 1 - residual / spread if spread > 1e-12 else 0.0
        metrics["value/mean"] = float(predicted.mean())
        return metrics
