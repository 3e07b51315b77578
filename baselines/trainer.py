"""The core every trainer shares: the run folder, the loop, its stages, evaluation, checkpoints.

One update (:meth:`Trainer.train_step`) is five overridable stages:

1. :meth:`~Trainer.roll_out`: one scored tree per task (:mod:`~llm_marl.baselines.rollout`);
   a task with a sandbox error anywhere in its tree goes no further (``sandbox_error_tasks``);
2. :meth:`~Trainer.credit`: the credit estimator (:meth:`~Trainer.make_estimator`) turns each
   whole tree into groups with returns and advantages (:mod:`~llm_marl.baselines.credit`);
3. :meth:`~Trainer.loss`: backpropagate one task's loss (gradient accumulation over tasks);
4. :meth:`~Trainer.optimizer_step`: every optimiser of :meth:`~Trainer.make_optimizers` steps;
5. :meth:`~Trainer.step_metrics`: the step's metrics.

Rollouts are sampled by the generation backend of ``config.generation_backend``
(:mod:`llm_marl.models.backends`: the team's own HF ``generate``, or one vLLM engine), made on
the first rollout, given the new weights after every update, and closed when training ends
(:meth:`Trainer.close`). The loss always uses the team's own log-probs; with a backend other
than ``hf`` the credit stage recomputes the samples' log-probs before the update (the "old"
policy of ratios and truncated importance sampling) and ``logprob_mismatch/...`` says how far
the sampler's recorded ones were.

An algorithm is a subclass that states only where it differs: the env options it needs
(:meth:`~Trainer.env_options`), how joint actions are formed (:attr:`~Trainer.joint_mode`), its
estimator, and any extra models (:meth:`~Trainer.setup_extras`) with their optimisers and saved
state (:meth:`~Trainer.extra_parts`, :meth:`~Trainer.extra_state`,
:meth:`~Trainer.load_extra_state`), which checkpoints save and resume with the rest.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pettingzoo import ParallelEnv

import llm_marl
from llm_marl.baselines.checkpoint import (
    TEAM_DIR,
    checkpoint_folders,
    checkpoint_name,
    checkpoint_problem,
    latest_checkpoint,
    load_extras,
    load_trainer_state,
    restore_rng,
    save_checkpoint,
)
from llm_marl.baselines.config import TrainConfig
from llm_marl.baselines.credit import Credit, CreditEstimator, GroupBaseline
from llm_marl.baselines.distributed import DataParallel
from llm_marl.baselines.evaluation import evaluate, evaluation_resets
from llm_marl.baselines.interrupt import StopRequest, TrainingInterrupted
from llm_marl.baselines.metrics import group_metrics, reward_metrics
from llm_marl.baselines.returns import ReturnSettings
from llm_marl.baselines.rollout import (
    Node,
    RolloutStats,
    TreeSettings,
    rollout_tree,
    without_sandbox_errors,
)
from llm_marl.baselines.run_config import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    check_resume,
    dump_config,
    run_settings,
)
from llm_marl.baselines.run_lock import RunLock, folder_state, run_has_files
from llm_marl.baselines.run_log import (
    METRICS_FILE,
    RunLog,
    read_metrics,
    write_atomically,
)
from llm_marl.baselines.run_watch import RunWatch
from llm_marl.baselines.step_gather import gather_step, seeded_sampling
from llm_marl.baselines.tasks import TaskOrder
from llm_marl.baselines.team_setup import (
    build_team,
    check_agents,
    check_clearable,
    check_run_folder,
    clear_run_folder,
)
from llm_marl.baselines.update import (
    LossSettings,
    LossStats,
    attach_old_logprobs,
    attach_reference,
    backpropagate,
    optimizer_step,
)
from llm_marl.env_protocol import TextParallelEnv, env_num_turns
from llm_marl.models import SamplingConfig, Team
from llm_marl.models.backends import (
    FusedBackend,
    GenerationBackend,
    check_fusable,
    make_backend,
)
from llm_marl.models.decode import resolve_dtype
from llm_marl.models.loading import progress_bars, resolve_device

__all__ = ["TrainResult", "Trainer"]

CHECKPOINTS = CHECKPOINTS_DIR
#: Characters of a prompt kept in ``samples.jsonl`` (its end, where the instruction is).
SAMPLE_PROMPT_CHARS = 600


@dataclass(frozen=True)
class TrainResult:
    """Where a finished run put its outputs, and its step records."""

    run_dir: Path
    metrics: list[dict[str, Any]]
    checkpoint: Path
    plot: Path


class Trainer:
    """Policy optimisation of a team of LLM agents on a PettingZoo env, in five stages."""

    config_class: ClassVar[type[TrainConfig]] = TrainConfig
    reward_source: ClassVar[str] = "team"
    """Which reward the default estimator builds returns from: ``team`` or ``own``."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        team: Team | None = None,
        env: ParallelEnv[Any, Any, Any] | None = None,
        eval_env: ParallelEnv[Any, Any, Any] | None = None,
        saved: Mapping[str, Any] | None = None,
        backend: GenerationBackend | None = None,
    ) -> None:
        """Prepare a run (or resume one, with ``config.resume``); nothing on disk changes yet.

        Args:
            config: the run's settings (an instance of this trainer's ``config_class``).
            team: an already built team; default: built from ``config.model``.
            env: the training env; default: ``llm_marl.make(config.env, ...)``.
            eval_env: the env of held-out evaluation; default: the same id, ``split="test"``.
            saved: the settings of the run's ``config.yaml`` when the caller has read them
                already (the command line does); default: read here when resuming.
            backend: an already started generation backend serving ``team`` (the caller
                closes it); default: ``config.generation_backend``, started on the first
                rollout and closed by :meth:`close` (which :meth:`train` calls at the end).
        """
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.parallel = DataParallel.from_environment()
        self.run_dir = Path(config.output_dir) / config.name
        check_run_folder(self.run_dir)  # writable, and no live trainer on it
        self._resume_from = self._checkpoint_to_resume(saved)
        self._folder_seen = folder_state(self.run_dir)
        if self._resume_from is not None and team is not None:
            raise ValueError("resume reloads the team from its checkpoint: do not pass team")
        _seed_everything(config.seed)
        self.env = env if env is not None else self.make_env("train")
        if not isinstance(self.env, TextParallelEnv):
            raise TypeError(
                f"the trainers need a PettingZoo ParallelEnv with text observations "
                f"(llm_marl.env_protocol.TextParallelEnv), got {type(self.env).__name__}"
            )
        self.eval_env = eval_env
        if self.eval_env is None and config.eval_every:
            self.eval_env = self.make_env("test")
        if team is None:
            saved_team = self._resume_from / TEAM_DIR if self._resume_from is not None else None
            with progress_bars(config.progress):  # --no-progress: no "Loading weights" bar
                device = self.parallel.device(config.device)  # its own GPU per process
                placed = config if device == config.device else replace(config, device=device)
                team = build_team(placed, list(self.env.possible_agents), saved_team)
        check_agents(team, self.env)
        self.team = team
        self._loss_dtype = _loss_dtype(team, config.autocast_dtype)  # (device type, dtype)
        self.horizon = env_num_turns(self.env, config.num_turns)
        self._backend, self._owns_backend = backend, backend is None
        if backend is None and config.generation_backend == "vllm":
            from llm_marl.models.vllm_backend import check_servable

            check_servable(team)  # a clear error now, not after the first rollout's start
        if backend is None and config.generation_backend == "fused":
            check_fusable(team)
        #: Set when a Ctrl-C came during :meth:`train`, even one during the last step (the run
        #: then finished): a caller running several jobs (``llm-marl reproduce``) stops too.
        self.stop_requested = False
        self.setup_extras()
        self.estimator = self.make_estimator()
        self.optimizers = self.make_optimizers()
        self.step = 0
        self.position = 0
        rng = self._restore(self._resume_from) if self._resume_from is not None else None
        self.order = TaskOrder(self.env, config.seed)
        self.sampling = SamplingConfig(
            num_samples=config.num_generations,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
        )
        self.tree = TreeSettings(
            joint_mode=self.joint_mode,
            early_stop_threshold=config.early_stop_threshold,
            expand_top_k=config.expand_top_k,
            greedy_joint=self.estimator.needs_greedy,
        )
        self.loss_settings = LossSettings(
            aggregation=config.loss_aggregation,
            clip_epsilon=config.clip_epsilon,
            kl_beta=config.kl_beta,
            logprob_batch_size=config.logprob_batch_size,
            tis_cap=config.tis_cap,
        )
        if rng is not None:  # last: building the trainer drew random numbers
            restore_rng(rng)

    # --------------------------------------------------------------- algorithm hooks
    @property
    def joint_mode(self) -> str:
        """How joint actions are formed from the agents' samples."""
        return "aligned"

    def env_options(self) -> dict[str, Any]:
        """Keyword arguments this algorithm needs from the env (beside ``config.env_kwargs``)."""
        return {}

    def return_settings(self) -> ReturnSettings:
        """Which reward feeds the returns, the discount, and the horizon of the env."""
        return ReturnSettings(
            reward=self.reward_source, gamma=self.config.gamma, horizon=self.horizon
        )

    def make_estimator(self) -> CreditEstimator:
        """The credit estimator; default: the group baseline ``config.advantage``."""
        return GroupBaseline(
            self.return_settings(), self.config.advantage, scale_by_std=self.config.scale_by_std
        )

    def setup_extras(self) -> None:
        """Build extra models (a critic, say) before the estimator and the optimisers are
        made; default none."""

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser by name: one AdamW per agent (override to add more)."""
        return {
            agent: torch.optim.AdamW(
                self.team.trainable_parameters(agent),
                lr=self.config.learning_rate,
                weight_decay=self.config.weight_decay,
            )
            for agent in self.team.agents
        }

    def extra_parts(self) -> tuple[str, ...]:
        """Names of the extra parts every checkpoint of this algorithm holds (from the config
        alone: it is asked before any model is built)."""
        return ()

    def extra_state(self) -> dict[str, Any]:
        """Each extra part's state (``torch.save``-able), by the names of :meth:`extra_parts`."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Put back the parts of :meth:`extra_state` from a checkpoint."""

    # --------------------------------------------------------------- set-up
    def make_env(self, split: str) -> ParallelEnv[Any, Any, Any]:
        """The registered env of ``config.env`` for ``split``, with this algorithm's options."""
        kwargs = dict(self.config.env_kwargs)
        for key, value in self.env_options().items():
            if key in kwargs and kwargs[key] != value:
                raise ValueError(
                    f"{self.config.algo} needs the env option {key}={value!r}; "
                    f"env_kwargs sets {key}={kwargs[key]!r}"
                )
            kwargs[key] = value
        if self.config.num_turns != 1:
            kwargs["num_turns"] = self.config.num_turns
        if split != "train":
            kwargs["split"] = split
        return llm_marl.make(self.config.env, **kwargs)

    def _checkpoint_to_resume(self, saved: Mapping[str, Any] | None) -> Path | None:
        """The checkpoint to resume from; refuses to mix a new run into an old folder."""
        config, checkpoints = self.config, self.run_dir / CHECKPOINTS
        if config.resume:
            if not (self.run_dir / CONFIG_FILE).is_file() and not checkpoints.is_dir():
                raise FileNotFoundError(
                    f"--resume: {self.run_dir} holds no run (no {CONFIG_FILE}); check "
                    "--run-name and --output-dir"
                )
            latest = latest_checkpoint(checkpoints, self.extra_parts())
            if latest is None:
                raise FileNotFoundError(self._no_checkpoint_message(checkpoints))
            check_resume(config, latest, saved)
            return latest
        if run_has_files(self.run_dir) and not config.overwrite:
            if (self.run_dir / CONFIG_FILE).is_file():
                raise FileExistsError(
                    f"{self.run_dir} already holds a run: pass --resume to continue it, "
                    "--overwrite to start over, or another --run-name"
                )
            raise FileExistsError(
                f"{self.run_dir} is not empty and holds no run: pick another --run-name or "
                "--output-dir"
            )
        if config.overwrite:
            check_clearable(self.run_dir)
        return None

    def _no_checkpoint_message(self, checkpoints: Path) -> str:
        """Why ``--resume`` found nothing to resume: no checkpoint yet, or none intact."""
        found = checkpoint_folders(checkpoints)
        if not found:
            return (
                f"--resume: no complete checkpoint in {checkpoints} (the run stopped before "
                "its first one); start it again with --overwrite"
            )
        newest = found[-1]
        problem = checkpoint_problem(newest, self.extra_parts())
        count = "1 checkpoint" if len(found) == 1 else f"{len(found)} checkpoints"
        return (
            f"--resume: {checkpoints} holds {count}, but none is intact (the newest, "
            f"{newest.name}: {problem}); restore the damaged files from a copy of the run, "
            "or start it again with --overwrite"
        )

    def _restore(self, checkpoint: Path) -> dict[str, Any]:
        """Load step, position, optimiser and extra states; the RNG states to restore."""
        state = load_trainer_state(checkpoint)
        missing = sorted(set(self.optimizers) - set(state["optimizers"]))
        if missing:
            raise ValueError(f"{checkpoint} has no optimiser state for {missing}")
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.load_extra_state(load_extras(checkpoint, self.extra_parts()))
        self.step, self.position = int(state["step"]), int(state["position"])
        if self.config.num_steps < self.step:
            raise ValueError(
                f"the run in {self.run_dir} is already at step {self.step}: pass "
                f"--num-steps above {self.step} to go on (got num_steps={self.config.num_steps})"
            )
        return dict(state["rng"])

    @property
    def resumed_from(self) -> Path | None:
        """The checkpoint this run goes on from (its step is :attr:`step`); None for a new run."""
        return self._resume_from

    def resolved_precision(self) -> dict[str, str]:
        """What each precision setting left at ``auto`` means on this machine, by setting:
        ``{"generation_dtype": "bfloat16", "autocast_dtype": "bfloat16"}`` on a CPU with fast
        bfloat16 products; empty when none is ``auto``."""
        device_type, loss_dtype = self._loss_dtype
        resolved = {}
        if self.config.generation_dtype == "auto":
            sampler = resolve_dtype("auto", torch.device(device_type))
            resolved["generation_dtype"] = _dtype_name(sampler)
        if self.config.autocast_dtype == "auto":
            resolved["autocast_dtype"] = _dtype_name(loss_dtype)
        return resolved

    # --------------------------------------------------------------- the loop
    def train(self) -> TrainResult:
        """Run until ``config.num_steps`` updates; write logs, checkpoints and the plot.

        The run folder is locked meanwhile: a second trainer on it refuses to start. Ctrl-C
        stops after the current step with a checkpoint (twice: at once, keeping the newest
        complete checkpoint) and raises :class:`TrainingInterrupted`.
        """
        self.parallel.barrier()  # every process has checked the folder before any writes
        try:
            if not self.parallel.is_main:
                return self._follow()
            try:
                with RunLock(self.run_dir, unchanged_since=self._folder_seen):
                    return self._train()
            finally:
                self.parallel.barrier()  # the others read the finished run folder after this
        finally:
            self.close()

    @property
    def backend(self) -> GenerationBackend:
        """The generation backend of the rollouts (started on first use)."""
        if self._backend is None:
            self._backend = make_backend(
                self.config.generation_backend, self.team, dtype=self.config.generation_dtype
            )
        return self._backend

    def close(self) -> None:
        """Close the generation backend this trainer started (a vLLM engine, say); a later
        rollout starts a new one."""
        if self._owns_backend and self._backend is not None:
            self._backend.close()
            self._backend = None

    def _stop_agreed(self, stop: StopRequest) -> bool:
        """True when any process was asked to stop (every process then stops here)."""
        stop.requested = self.parallel.any(stop.requested)
        return stop.requested

    def _follow(self) -> TrainResult:
        """:meth:`train` on a process other than the first: the same updates, no files."""
        with StopRequest() as stop:
            while self.step < self.config.num_steps and not self._stop_agreed(stop):
                self.train_step()
        self.parallel.barrier()  # process 0 has written the metrics and the last checkpoint
        checkpoints = self.run_dir / CHECKPOINTS
        checkpoint = latest_checkpoint(checkpoints, self.extra_parts())
        if self.step < self.config.num_steps or checkpoint is None:
            raise TrainingInterrupted(self.step, self.run_dir, checkpoint, None)
        return TrainResult(
            self.run_dir,
            read_metrics(self.run_dir / METRICS_FILE),
            checkpoint,
            self.run_dir / "reward.png",
        )

    def _train(self) -> TrainResult:
        """The body of :meth:`train`, run while the folder is locked."""
        from tqdm.auto import tqdm

        config = self.config
        if config.overwrite and self._resume_from is None:
            clear_run_folder(self.run_dir)
        log = RunLog(self.run_dir, keep_until_step=self.step)
        write_atomically(self.run_dir / CONFIG_FILE, dump_config(config))
        checkpoint = self._resume_from  # the newest complete one; a new run has none
        bar = tqdm(
            total=config.num_steps,
            initial=self.step,
            desc=f"{config.algo} {config.env}",
            disable=not config.progress,
        )
        watch = RunWatch(config, resolve_device(config.device), self.step)
        watch.start()
        stop, cut = StopRequest(), False  # Ctrl-C: stop after this step; twice: at once
        with stop:
            try:
                while self.step < config.num_steps and not self._stop_agreed(stop):
                    metrics, trees = self.train_step()
                    if _due(self.step, config.eval_every, config.num_steps):
                        metrics.update(self.evaluate())
                    log.log(self.step, metrics)
                    last = self.step if stop.requested else config.num_steps  # Ctrl-C: the last
                    if _due(self.step, config.log_samples_every, last) or (
                        config.log_samples_every and self.step == 1
                    ):
                        log.log_samples(self.step, _samples(trees[0]))
                    if _due(self.step, config.checkpoint_every, config.num_steps):
                        checkpoint = self.save_checkpoint()
                    bar.update(1)
                    bar.set_postfix(team_reward=f"{metrics['team_reward_mean']:.3f}")
                    watch.after_step(self.step, metrics)
            except KeyboardInterrupt:
                cut = True  # mid-step: the newest complete checkpoint is the one to resume
            finally:
                bar.close()
                log.close()
            self.stop_requested = stop.requested or cut
            done = self.step > 0 and not cut
            if done and (checkpoint is None or checkpoint.name != checkpoint_name(self.step)):
                checkpoint = self.save_checkpoint()
        plot = log.plot() if self.step > 0 else None
        if cut or (stop.requested and self.step < config.num_steps):
            raise TrainingInterrupted(self.step, self.run_dir, checkpoint, plot)
        assert checkpoint is not None and plot is not None
        return TrainResult(
            self.run_dir, read_metrics(self.run_dir / METRICS_FILE), checkpoint, plot
        )

    def train_step(self) -> tuple[dict[str, float], list[Node]]:
        """One update through the five stages; its metrics and trees.

        With several processes each runs the stages on its share of the tasks; the gradients
        are summed before the optimiser step, and process 0 gets the metrics of all tasks
        (the others get an empty dict).
        """
        start = time.perf_counter()
        trees, stats = self.roll_out()
        kept = without_sandbox_errors(trees)  # a sandbox failure teaches nothing
        with self.loss_precision():
            credits = self.credit(kept)
        loss, norms = LossStats(), {}
        scale = 1 / max(self.parallel.total(len(credits)), 1)  # the tasks of the whole update
        for _ in range(self.config.inner_epochs):
            for task in credits:
                with self.loss_precision():
                    loss.add(self.loss(task, scale))
            self.parallel.sum_gradients(self.optimizers)
            norms = self.optimizer_step()
        self.backend.sync(self.team)  # the next rollout samples with the new weights
        loss.scale(1 / self.config.inner_epochs)
        self.step += 1
        self.position += self.config.tasks_per_step
        if self.parallel.enabled:
            trees, kept, credits, loss, stats = gather_step(
                self.parallel, self.config.tasks_per_step, trees, kept, credits, loss, stats
            )
            if not self.parallel.is_main:
                return {}, trees
        metrics = self.step_metrics(kept, credits, loss, norms) if kept else {}
        metrics.setdefault("team_reward_mean", float("nan"))
        metrics["sandbox_error_tasks"] = float(len(trees) - len(kept))
        metrics["tokens_per_second"] = stats.generated_tokens / max(stats.generation_seconds, 1e-9)
        metrics["step_seconds"] = time.perf_counter() - start
        return metrics, trees

    # --------------------------------------------------------------- the stages
    def roll_out(self) -> tuple[list[Node], RolloutStats]:
        """Stage 1: one scored tree per task of this update (of this process's share), and
        what sampling cost; each task's samples are seeded by its position in the run."""
        stats = RolloutStats()
        trees = []
        for k in self.parallel.shard(self.config.tasks_per_step):  # all tasks in one process
            position = self.position + k
            with seeded_sampling(self.order.sample_seed(position)):
                reset = self.order.reset_kwargs(position)
                trees.append(
                    rollout_tree(
                        self.env, reset, self.team, self.sampling, self.tree, stats, self.backend
                    )
                )
        return trees, stats

    def credit(self, trees: list[Node]) -> list[Credit]:
        """Stage 2: returns and advantages of every tree (reference log-probs for KL, and the
        team's own log-probs before the update when another backend sampled or TIS is on)."""
        credits = [self.estimator.assign(tree) for tree in trees]
        # The ratios' old policy must be the trainer's own when the sampler's log-probs are
        # not (another backend or dtype, or a loss under autocast) or TIS compares the two.
        # With one update per batch the loss's own detached log-probs are it; several updates
        # need them fixed first.
        autocast = self._loss_dtype[1] != torch.float32
        needs_old = not self.backend.exact_logprobs or self.config.tis_cap is not None or autocast
        recompute = needs_old and self.config.inner_epochs > 1
        from_loss = needs_old and not recompute
        if self.loss_settings.old_from_loss != from_loss:
            self.loss_settings = replace(self.loss_settings, old_from_loss=from_loss)
        for task in credits:
            if self.config.kl_beta > 0:
                attach_reference(self.team, task.groups, self.config.logprob_batch_size)
            if recompute:
                attach_old_logprobs(self.team, task.groups, self.config.logprob_batch_size)
        return credits

    def loss(self, task: Credit, scale: float) -> LossStats:
        """Stage 3: backpropagate ``scale`` times one task's loss (the policy-gradient loss)."""
        return backpropagate(self.team, task.groups, self.loss_settings, scale)

    def optimizer_step(self) -> dict[str, float]:
        """Stage 4: clip and step every optimiser; the gradient norm of each."""
        return optimizer_step(self.optimizers, self.config.max_grad_norm)

    def step_metrics(
        self,
        trees: list[Node],
        credits: list[Credit],
        loss: LossStats,
        norms: Mapping[str, float],
    ) -> dict[str, float]:
        """Stage 5: rewards, advantages, the loss and gradient norms of this update."""
        metrics = reward_metrics(trees)
        metrics.update(
            group_metrics(
                [g for task in credits for g in task.groups],
                loss,
                kl=self.config.kl_beta > 0,
                clipping=self.config.clip_epsilon > 0,
            )
        )
        metrics.update({f"grad_norm/{name}": norm for name, norm in norms.items()})
        return metrics

    def loss_precision(self) -> contextlib.AbstractContextManager[Any]:
        """``torch.autocast`` in ``config.autocast_dtype`` on the team's device (a no-op
        context in float32): the log-prob passes of the credit and loss stages run in it."""
        device_type, dtype = self._loss_dtype
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type, dtype=dtype)

    # --------------------------------------------------------------- evaluation, saving
    def evaluate(self) -> dict[str, float]:
        """Greedy answers on the first ``eval_tasks`` test tasks; ``eval/...`` metrics, with
        ``eval/bfloat16`` = 1 when the fused sampler's bfloat16 copy gave the answers."""
        if self.eval_env is None:
            self.eval_env = self.make_env("test")
        resets = evaluation_resets(self.eval_env, self.config.eval_tasks)
        sampler = None
        if self.config.generation_backend == "fused":
            # The rollouts' sampler and dtype: in float32 HF generate's greedy answers; in
            # bfloat16 the bfloat16 copy's (a test's prompts are not shared, so their prefill
            # is most of an evaluation, and bfloat16 ran it 2.2x faster on the demo's posts).
            sampler = self.backend
        metrics = evaluate(self.team, self.eval_env, resets, self.sampling, sampler)
        if isinstance(sampler, FusedBackend) and sampler.dtype == torch.bfloat16:
            metrics["eval/bfloat16"] = 1.0  # scored the bfloat16 copy's answers
        return metrics

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the current step (extras included); its folder."""
        extras = self.extra_state()
        if sorted(extras) != sorted(self.extra_parts()):
            raise RuntimeError(
                f"{type(self).__name__}.extra_state() gave parts {sorted(extras)} but "
                f"extra_parts() declares {sorted(self.extra_parts())}"
            )
        return save_checkpoint(
            self.run_dir / CHECKPOINTS,
            self.step,
            self.team,
            self.optimizers,
            self.position,
            extras=extras,
            keep=self.config.keep_checkpoints,
            settings=run_settings(self.config),
        )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _loss_dtype(team: Team, autocast_dtype: str) -> tuple[str, torch.dtype]:
    """The team's device type and what ``autocast_dtype`` means on it."""
    parameter = next(iter(team.trainable_parameters(team.agents[0])), None)
    device_type = parameter.device.type if parameter is not None else "cpu"
    return device_type, resolve_dtype(autocast_dtype, torch.device(device_type))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _due(step: int, every: int, last: int) -> bool:
    """True on every ``every``-th step, and on step ``last`` when ``every`` is on."""
    return every > 0 and (step % every == 0 or step == last)


def _samples(tree: Node) -> list[dict[str, Any]]:
    """The root's first joint action per agent: prompt end, response, rewards."""
    joint = tree.joints[0]
    return [
        {
            "agent": agent,
            "prompt_end": tree.prompts[agent][-SAMPLE_PROMPT_CHARS:],
            "response": tree.samples[agent][joint.picks[i]].text,
            "reward": joint.rewards[agent],
            "team_reward": joint.team_reward,
        }
        for i, agent in enumerate(tree.agents)
    ]
