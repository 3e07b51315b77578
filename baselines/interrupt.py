"""Ctrl-C during training: the first one stops the run after the current step, with a checkpoint.

A step changes weights, optimiser states and the random generators as it goes, so a run cut in
the middle of one could not resume as if it had never stopped. The first Ctrl-C (SIGINT) therefore
only asks the loop to stop once the step in progress is done; a second one interrupts at once,
and the run keeps its newest complete checkpoint. Either way :class:`TrainingInterrupted` says
where the run stopped and what it wrote.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopRequest", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C before ``num_steps``; what it left behind.

    A ``KeyboardInterrupt``, so code that catches Ctrl-C keeps working.
    """

    def __init__(
        self, step: int, run_dir: Path, checkpoint: Path | None, plot: Path | None
    ) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step = step
        """The last step whose update finished."""
        self.run_dir = run_dir
        """The run's folder."""
        self.checkpoint = checkpoint
        """The newest complete checkpoint (None when the run has none)."""
        self.plot = plot
        """The reward curve of the steps done (None when there were none)."""


class StopRequest:
    """While active (``with StopRequest() as stop``), the first SIGINT sets ``stop.requested``
    instead of raising; a second raises ``KeyboardInterrupt``. Outside the main thread, where
    Python cannot install signal handlers, Ctrl-C raises at once as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nllm-marl: stopping after the current step, with a checkpoint "
            "(Ctrl-C again to stop at once and keep only the newest checkpoint)",
            file=sys.stderr,
            flush=True,
        )
