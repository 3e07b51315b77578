"""Run settings of the trainers: one dataclass per algorithm, one docstring per field.

The ``llm-marl train`` command line is built from these fields (``--num-steps 40``), and YAML
files with the same keys are accepted (``--config run.yaml``). This module imports no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from llm_marl.checks import check_int

__all__ = [
    "ADVANTAGE_MODES",
    "CRITIC_TYPES",
    "GENERATION_BACKENDS",
    "JOINT_MODES",
    "LOSS_AGGREGATIONS",
    "RESUMABLE_CHANGES",
    "REWARD_SOURCES",
    "ActorCriticConfig",
    "GRPOConfig",
    "IACConfig",
    "IGRPOConfig",
    "MAACConfig",
    "MAGRPOConfig",
    "MAREINFORCEConfig",
    "MARLOOConfig",
    "MAReMaxConfig",
    "TrainConfig",
]

# Torch-free name lists; tests/baselines/test_registry.py ties each to its implementation
# (advantages.ADVANTAGES, losses.AGGREGATIONS, rollout.joint_picks, returns, the critics,
# models.backends.BACKENDS).
ADVANTAGE_MODES: tuple[str, ...] = ("mean", "rloo", "max", "raw")
LOSS_AGGREGATIONS: tuple[str, ...] = ("sequence_sum", "token_mean")
JOINT_MODES: tuple[str, ...] = ("aligned", "cross")
REWARD_SOURCES: tuple[str, ...] = ("team", "own")
CRITIC_TYPES: tuple[str, ...] = ("v", "q")
GENERATION_BACKENDS: tuple[str, ...] = ("hf", "fused", "vllm")
#: The dtypes ``generation_dtype`` accepts.
GENERATION_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16", "auto")
AUTOCAST_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "auto")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class TrainConfig:
    """Settings every trainer shares; the defaults follow the MAGRPO paper's runs."""

    algo: ClassVar[str] = "base"

    # ------------------------------------------------------------------ task and model
    env: str = "tldr_v0"
    """Registered env id (``llm-marl envs`` lists them) or ``package.module:factory``."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``llm_marl.make``, such as ``{"data": "posts.jsonl"}``."""
    num_turns: int = 1
    """Turns per episode; above 1 the rollout is a tree of depth ``num_turns``."""
    model: str = "embedded"
    """Base model: ``embedded``, ``tiny``, a local folder or a hub id."""
    lora: bool = True
    """One LoRA adapter per agent on a shared base; false trains full weights, one copy each."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``)."""
    dtype: str | None = None
    """Torch dtype name of the weights (default float32)."""
    device: str | None = None
    """Torch device (default CUDA when available, else CPU)."""

    # ------------------------------------------------------------------ sampling
    num_generations: int = 4
    """Samples per agent and prompt: the group size G."""
    temperature: float = 0.8
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    max_new_tokens: int = 256
    """Longest response in tokens."""
    generation_backend: str = field(default="hf", metadata={"choices": GENERATION_BACKENDS})
    """What samples the rollouts: ``hf`` (the team's own model through HF ``generate``),
    ``fused`` (the team's own weights through a lean decode loop, Llama-family models: 1.3x
    HF in float32, about 2x in bfloat16 on a 2-core CPU with AMX) or ``vllm`` (one vLLM
    engine, one LoRA adapter per agent, or a single fully fine-tuned model; ``pip install
    'llm-marl[vllm]'``). The loss always uses the trainer's own log-probs; when the sampler's
    may differ from them (vllm, fused in bfloat16), ``logprob_mismatch/mean`` and ``/max``
    log how far apart they are."""
    generation_dtype: str = field(default="float32", metadata={"choices": GENERATION_DTYPES})
    """The sampler's weights (``fused`` and ``vllm``; ``hf`` samples with the team's own).
    ``bfloat16`` sampled 1.5x (vllm) and 2x (fused) faster than ``float32`` HF on this
    project's 2-core CPU, with recorded log-probs further from the trainer's (``tis_cap``
    corrects for that); ``float16`` is vllm only; ``auto`` (fused only) is bfloat16 where the
    hardware has fast bfloat16 products (AMX or AVX512-BF16 on a CPU), else float32."""

    # ------------------------------------------------------------------ objective
    advantage: str = field(default="mean", metadata={"choices": ADVANTAGE_MODES})
    """Group baseline: ``mean``, ``rloo`` (leave one out), ``max`` or ``raw`` (none)."""
    scale_by_std: bool = False
    """Divide advantages by the group's standard deviation (when it is not zero)."""
    loss_aggregation: str = field(default="sequence_sum", metadata={"choices": LOSS_AGGREGATIONS})
    """``sequence_sum`` (the paper: sum of token terms) or ``token_mean`` (mean per response)."""
    clip_epsilon: float = 0.0
    """PPO ratio clipping range; 0 turns clipping off (the paper's plain policy gradient)."""
    inner_epochs: int = 1
    """Gradient steps on each batch of samples; above 1 needs ``clip_epsilon > 0``."""
    autocast_dtype: str = field(default="float32", metadata={"choices": AUTOCAST_DTYPES})
    """The loss's products (log-prob passes, forward and backward) under ``torch.autocast``:
    ``float32`` (off), ``bfloat16``, or ``auto`` (bfloat16 where the hardware has fast
    bfloat16 products: AMX or AVX512-BF16 on a CPU). Weights, gradients and the optimiser
    stay float32. On a 2-core CPU with AMX the demo's update took 0.6x the time, its
    gradient at cosine 0.998 to float32's."""
    kl_beta: float = 0.0
    """Weight of the KL penalty to the frozen reference policy; 0 turns it off."""
    tis_cap: float | None = None
    """Truncated importance sampling: multiply each token's policy-gradient term by the
    detached weight ``min(exp(logp_trainer_old - logp_sampler), tis_cap)``, which corrects for
    the sampler (vLLM's kernels, say) differing from the trained policy; none: off."""
    gamma: float = 0.9
    """Discount of later turns' returns in multi-turn trees."""
    early_stop_threshold: float | None = None
    """Do not expand a node whose joint actions' mean team reward reaches this; none: never."""
    expand_top_k: int = 0
    """Expand only the k best joint actions of each node (1: a single best path); 0: all."""

    # ------------------------------------------------------------------ optimisation
    num_steps: int = 100
    """Optimiser steps (updates) of the run."""
    tasks_per_step: int = 1
    """Tasks (env resets) whose gradients are accumulated into one update."""
    learning_rate: float = 1e-5
    """AdamW learning rate, one optimiser per agent."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Clip each agent's gradient norm to this; 0 turns clipping off."""
    logprob_batch_size: int | None = None
    """Most responses in one forward pass of the loss; none: all of a task at once. Fixed for
    a run: other batches round differently (about 5e-7), so a resume would drift from it."""
    seed: int = 0
    """Seed of the data order, the sampling and the initial adapters' randomness."""

    # ------------------------------------------------------------------ run output
    output_dir: str = "runs"
    """Folder that holds the run folders."""
    run_name: str = ""
    """Name of this run's folder; empty: ``<algo>-<env>-seed<seed>``."""
    resume: bool = False
    """Continue from the run folder's last checkpoint."""
    overwrite: bool = False
    """Start over in a run folder that already holds a run (its old outputs are deleted)."""
    checkpoint_every: int = 10
    """Checkpoint every N steps (a last one is always written at the end, and on Ctrl-C);
    0: only at the end."""
    keep_checkpoints: int = 0
    """Keep only the newest N checkpoints; 0 keeps them all."""
    eval_every: int = 0
    """Evaluate on the env's test split every N steps (and at the end); 0: never."""
    eval_tasks: int = 8
    """Test tasks per evaluation (the first ones of the test split)."""
    log_samples_every: int = 10
    """Write sample responses to ``samples.jsonl`` every N steps; 0: never."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("num_turns", "lora_r", "lora_alpha", "num_generations", "max_new_tokens"):
            check_int(name, getattr(self, name), 1)
        for name in ("inner_epochs", "num_steps", "tasks_per_step", "eval_tasks"):
            check_int(name, getattr(self, name), 1)
        _check_types(self)
        for name in (
            "expand_top_k",
            "checkpoint_every",
            "keep_checkpoints",
            "eval_every",
            "log_samples_every",
        ):
            check_int(name, getattr(self, name), 0)
        check_int("seed", self.seed, 0)
        if self.logprob_batch_size is not None:
            check_int("logprob_batch_size", self.logprob_batch_size, 1)
        _check_choice("advantage", self.advantage, ADVANTAGE_MODES)
        _check_choice("loss_aggregation", self.loss_aggregation, LOSS_AGGREGATIONS)
        _check_choice("generation_backend", self.generation_backend, GENERATION_BACKENDS)
        _check_choice("generation_dtype", self.generation_dtype, GENERATION_DTYPES)
        _check_choice("autocast_dtype", self.autocast_dtype, AUTOCAST_DTYPES)
        if self.generation_dtype != "float32" and self.generation_backend == "hf":
            raise ValueError(
                f"generation_dtype {self.generation_dtype!r} sets the sampler's weights; "
                "the hf backend samples with the team's own, so use it with "
                f"generation_backend: {_DTYPE_BACKENDS.get(self.generation_dtype, 'fused or vllm')}"
                " (or leave it float32)"
            )
        only = _DTYPE_BACKENDS.get(self.generation_dtype)
        if only is not None and self.generation_backend != only:
            raise ValueError(
                f"generation_dtype {self.generation_dtype!r} is for generation_backend: {only} "
                f"only, not {self.generation_backend}"
            )
        if self.tis_cap is not None and not self.tis_cap > 0:
            raise ValueError(f"tis_cap must be > 0 (or none: off), got {self.tis_cap!r}")
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0 (a group of greedy samples is all equal), "
                f"got {self.temperature!r}"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        for name in ("learning_rate",):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "max_grad_norm", "clip_epsilon", "kl_beta"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if self.num_generations == 1 and self.advantage != "raw":
            raise ValueError(
                f"num_generations=1 with advantage={self.advantage!r} gives every sample a zero "
                "advantage, so nothing is learned: use num_generations >= 2 or advantage='raw'"
            )
        if "num_turns" in self.env_kwargs or "split" in self.env_kwargs:
            raise ValueError(
                "env_kwargs must not set num_turns or split: use the num_turns setting; the "
                "trainer trains on split 'train' and evaluates on 'test'"
            )
        if self.inner_epochs > 1 and self.clip_epsilon == 0:
            raise ValueError(
                f"inner_epochs={self.inner_epochs} reuses each batch of samples, which needs "
                "importance ratios: set clip_epsilon (for example 0.2) or inner_epochs=1"
            )
        if not isinstance(self.env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {type(self.env_kwargs).__name__}")
        if self.run_name and not _RUN_NAME.fullmatch(self.run_name):
            raise ValueError(
                f"run_name {self.run_name!r} names a folder: use letters, digits, '_', '-', '.'"
            )

        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: pick one")

    @property
    def name(self) -> str:
        """The run folder's name: ``run_name``, or ``<algo>-<env>-seed<seed>`` (an env given
        as ``package.module:factory`` with ``-`` for ``:``)."""
        env = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.env)
        return self.run_name or f"{self.algo}-{env}-seed{self.seed}"


@dataclass
class MAGRPOConfig(TrainConfig):
    """MAGRPO: every agent learns from the shared team reward with a shared group baseline."""

    algo: ClassVar[str] = "magrpo"

    joint_mode: str = field(default="aligned", metadata={"choices": JOINT_MODES})
    """``aligned`` pairs sample g of every agent (G joint actions); ``cross`` scores all G^n."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("joint_mode", self.joint_mode, JOINT_MODES)


@dataclass
class MAREINFORCEConfig(MAGRPOConfig):
    """MA-REINFORCE: MAGRPO without a baseline (the raw team return is the advantage)."""

    algo: ClassVar[str] = "mareinforce"

    advantage: str = "raw"
    """Group baseline: ``raw`` (none); any other is another algorithm (magrpo, marloo)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_preset(self, "raw")


@dataclass
class MARLOOConfig(MAGRPOConfig):
    """MARLOO: MAGRPO with the leave-one-out baseline (each sample against the other G-1)."""

    algo: ClassVar[str] = "marloo"

    advantage: str = "rloo"
    """Group baseline: ``rloo`` (leave one out); any other is another algorithm (magrpo)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_preset(self, "rloo")


@dataclass
class MAReMaxConfig(MAGRPOConfig):
    """MAReMax: the baseline is the team return of the joint greedy answer at the same node."""

    algo: ClassVar[str] = "maremax"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.advantage != "mean":
            raise ValueError(
                f"maremax's baseline is the greedy answer's return, so advantage="
                f"{self.advantage!r} has no effect: leave it at 'mean' or use magrpo"
            )


@dataclass
class IGRPOConfig(TrainConfig):
    """Independent GRPO: each agent learns from its own individual reward and own baseline."""

    algo: ClassVar[str] = "igrpo"


@dataclass
class GRPOConfig(TrainConfig):
    """Single-agent GRPO: one model writes every part in one response (the env's solo view)."""

    algo: ClassVar[str] = "grpo"


@dataclass
class ActorCriticConfig(TrainConfig):
    """Settings of the actor-critic trainers: the policy as in MAGRPO, plus a learned critic."""

    algo: ClassVar[str] = "actor_critic"

    critic_type: str = field(default="v", metadata={"choices": CRITIC_TYPES})
    """``v``: the critic values the prompts; ``q`` (MAAC only): it also reads the joint answer."""
    critic_model: str | None = None
    """Model of the critic; none: a LoRA adapter and value head on the team's shared base
    (one base model in memory), or a copy of ``model`` when the team has no shared base."""
    critic_learning_rate: float = 1e-4
    """AdamW learning rate of the critic (its adapter and value head)."""
    value_loss_weight: float = 1.0
    """Weight of the critic's squared error in its loss."""
    gae_lambda: float = 0.95
    """GAE / TD(lambda) mixing over the turns of a multi-turn tree (1: Monte Carlo returns)."""
    critic_max_tokens: int = 1024
    """Longest critic input in tokens (each agent's part keeps its end)."""
    reward: str = field(default="team", metadata={"choices": REWARD_SOURCES})
    """Reward the returns are built from: ``team`` or ``own`` (each agent's env reward)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("critic_type", self.critic_type, CRITIC_TYPES)
        _check_choice("reward", self.reward, REWARD_SOURCES)
        check_int("critic_max_tokens", self.critic_max_tokens, 8)
        if not self.critic_learning_rate > 0:
            raise ValueError(f"critic_learning_rate must be > 0, got {self.critic_learning_rate!r}")
        if not self.value_loss_weight > 0:
            raise ValueError(f"value_loss_weight must be > 0, got {self.value_loss_weight!r}")
        if not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda!r}")
        if self.advantage != "mean":
            raise ValueError(
                f"an actor-critic's baseline is its critic, so advantage={self.advantage!r} has "
                "no effect: leave it at 'mean'"
            )


@dataclass
class IACConfig(ActorCriticConfig):
    """IAC: independent actor-critic, one critic per agent valuing its own prompt."""

    algo: ClassVar[str] = "iac"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.critic_type != "v":
            raise ValueError(
                "iac's critics see only their own agent's prompt: critic_type must be 'v' "
                f"(got {self.critic_type!r}); use maac for a Q critic"
            )


@dataclass
class MAACConfig(ActorCriticConfig):
    """MAAC: one centralised critic over every agent's prompt (and joint answer, for Q)."""

    algo: ClassVar[str] = "maac"

    joint_mode: str = field(default="aligned", metadata={"choices": JOINT_MODES})
    """``aligned`` pairs sample g of every agent (G joint actions); ``cross`` scores all G^n."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("joint_mode", self.joint_mode, JOINT_MODES)


#: Settings a resumed run may change; any other difference from the saved run is refused.
#: The sampler dtypes that only one generation backend takes.
_DTYPE_BACKENDS = {"float16": "vllm", "auto": "fused"}

RESUMABLE_CHANGES: frozenset[str] = frozenset(
    {
        "num_steps",
        "checkpoint_every",
        "keep_checkpoints",
        "eval_every",
        "eval_tasks",
        "log_samples_every",
        "progress",
        "device",
        "generation_backend",  # what samples, not what is trained
        "generation_dtype",
        "resume",
        "overwrite",
        "output_dir",  # where the folder is, not what the run does
        "run_name",
    }
)


def _check_types(config: TrainConfig) -> None:
    """Numbers and switches must have their field's type (a YAML ``5e-6`` is a string)."""
    for item in fields(config):
        value, kind = getattr(config, item.name), item.type
        if kind in ("float", "float | None") and not (
            (value is None and kind.endswith("None"))
            or (isinstance(value, int | float) and not isinstance(value, bool))
        ):
            raise TypeError(f"{item.name} must be a number, got {value!r}")
        if kind == "bool" and not isinstance(value, bool):
            raise TypeError(f"{item.name} must be true or false, got {value!r}")
        if kind in ("str", "str | None") and not (
            isinstance(value, str) or (value is None and kind.endswith("None"))
        ):
            raise TypeError(f"{item.name} must be a string, got {value!r}")


def _check_preset(config: TrainConfig, advantage: str) -> None:
    """A preset is its baseline: another one would log a different algorithm under its name."""
    if config.advantage != advantage:
        raise ValueError(
            f"{config.algo} is MAGRPO with advantage={advantage!r}; for advantage="
            f"{config.advantage!r} use --algo magrpo"
        )


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
