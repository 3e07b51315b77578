"""Data-parallel training over ``torch.distributed``, started by ``torchrun`` or ``accelerate``.

Every process holds the whole team; the tasks of one update are dealt out across processes
(task ``k`` of the update to process ``k % world_size``), each rolls out and scores its own tasks,
so a group's baseline never mixes processes. Before each optimiser step the gradients are
summed across processes (one all-reduce per optimiser, the bucketed sum DDP does), after every
process scaled its tasks' losses by ``1 / tasks of the whole update``: the update equals the
one a single process makes with the same global batch. Sampling is seeded per task, so the
samples do not depend on the number of processes either. Process 0 alone logs, evaluates and
writes checkpoints; a checkpoint resumes on any number of processes.

The process group comes from accelerate (``PartialState``): ``gloo`` on CPU, ``nccl`` on CUDA,
one device per process (``LOCAL_RANK``). Nothing starts when ``WORLD_SIZE`` is unset or 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

__all__ = ["DataParallel"]

T = TypeVar("T")
#: What accelerate launch sets for the sharded engines that these trainers do not drive.
_SHARDED = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed"}


@dataclass(frozen=True)
class DataParallel:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    """This process's index, 0 to ``world_size - 1``."""
    world_size: int = 1
    """Number of training processes."""
    local_rank: int = 0
    """Index on this machine (which GPU it uses)."""

    @classmethod
    def from_environment(cls) -> DataParallel:
        """The process group set up by the launcher's ``WORLD_SIZE``/``RANK`` variables
        (``torchrun``, ``accelerate launch``), joined through accelerate; one process when
        they are not set."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        for variable, engine in _SHARDED.items():
            if os.environ.get(variable, "").lower() in ("1", "true"):
                raise ValueError(
                    f"{engine} is not supported yet ({variable} is set by the accelerate "
                    "config): llm-marl sums gradients itself over plain data parallel; use "
                    "configs/accelerate/multi-gpu.yaml, and LoRA when the model does not fit"
                )
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        return cls(state.process_index, state.num_processes, state.local_process_index)

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that logs, evaluates and saves."""
        return self.rank == 0

    def device(self, configured: str | None) -> str | None:
        """The device this process trains on: its own GPU under a multi-GPU launch."""
        if self.enabled and configured in (None, "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return configured

    def shard(self, count: int) -> list[int]:
        """The indices, out of ``count`` tasks of one update, that this process rolls out."""
        return list(range(self.rank, count, self.world_size))

    def total(self, value: float) -> float:
        """The sum of ``value`` over every process."""
        if not self.enabled:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self._device())
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true on any process (a stop request, say)."""
        return self.total(1.0 if flag else 0.0) > 0

    def gather(self, value: T) -> list[T]:
        """``value`` of every process, in rank order (picklable objects)."""
        if not self.enabled:
            return [value]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.enabled:
            torch.distributed.barrier()

    def sum_gradients(self, optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
        """Sum every optimised parameter's gradient over all processes, in place.

        A parameter without a gradient on every process keeps none (as in one process, so
        the optimiser skips it); one with a gradient somewhere gets zeros where it had none.
        """
        if not self.enabled:
            return
        for optimizer in optimizers.values():
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if params:
                self._sum_gradients(params)

    def _sum_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        device = params[0].device
        has = torch.tensor([int(p.grad is not None) for p in params], device=device)  # (P,)
        torch.distributed.all_reduce(has, op=torch.distributed.ReduceOp.MAX)
        chosen = [p for p, flag in zip(params, has.tolist(), strict=True) if flag]
        for p in chosen:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if not chosen:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in chosen if p.grad is not None])  # (N,)
        torch.distributed.all_reduce(flat)
        offset = 0
        for p in chosen:
            assert p.grad is not None
            size = p.grad.numel()
            p.grad.copy_(flat[offset : offset + size].view_as(p.grad))
            offset += size

    def _device(self) -> torch.device:
        backend = torch.distributed.get_backend()
        return torch.device(f"cuda:{self.local_rank}" if backend == "nccl" else "cpu")
