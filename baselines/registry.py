"""The registry of algorithm names: ``register_algorithm``, ``algorithm``, ``list_algorithms``.

It mirrors :func:`llm_marl.register` for envs and is the one source of algorithm names: the
``--algo`` choices of ``llm-marl train``, ``llm-marl algos`` and the help texts all read it.
Trainers are ``"module:Class"`` strings imported on first use, so listing algorithms imports no
torch. Algorithms in other installed packages join through the entry-point group
``llm_marl.algorithms``: each entry point names an :class:`AlgorithmSpec` (or a function
returning one) in a module that imports no torch, for example in ``pyproject.toml``::

    [project.entry-points."llm_marl.algorithms"]
    drgrpo = "my_package.algorithm:SPEC"
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from llm_marl.baselines.config import TrainConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "AlgorithmSpec",
    "algorithm",
    "algorithm_summaries",
    "list_algorithms",
    "register_algorithm",
]

ENTRY_POINT_GROUP = "llm_marl.algorithms"
_NAME = re.compile(r"[a-z][a-z0-9_]*")

BUILTINS: tuple[tuple[str, str, str], ...] = (
    ("magrpo", "MAGRPOConfig", "llm_marl.baselines.magrpo:MAGRPOTrainer"),
    ("mareinforce", "MAREINFORCEConfig", "llm_marl.baselines.mareinforce:MAREINFORCETrainer"),
    ("marloo", "MARLOOConfig", "llm_marl.baselines.marloo:MARLOOTrainer"),
    ("maremax", "MAReMaxConfig", "llm_marl.baselines.maremax:MAReMaxTrainer"),
    ("igrpo", "IGRPOConfig", "llm_marl.baselines.igrpo:IGRPOTrainer"),
    ("grpo", "GRPOConfig", "llm_marl.baselines.grpo:GRPOTrainer"),
    ("iac", "IACConfig", "llm_marl.baselines.iac:IACTrainer"),
    ("maac", "MAACConfig", "llm_marl.baselines.maac:MAACTrainer"),
)


@dataclass(frozen=True)
class AlgorithmSpec:
    """A registered algorithm: its name, config class, trainer and one-line summary."""

    name: str
    config_class: type[TrainConfig]
    """The dataclass of its settings (``config_class.algo == name``); the CLI is built from it."""
    trainer: str | type
    """``"package.module:TrainerClass"``, imported on first use (it may import torch); or, when
    registering in-process (a script, a notebook), the trainer class itself."""
    summary: str = ""
    """One line for ``llm-marl algos``; default: the first line of the config's docstring."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"algorithm name {self.name!r} must be lower-case letters, digits and '_'"
            )
        if not (isinstance(self.config_class, type) and issubclass(self.config_class, TrainConfig)):
            raise TypeError(
                f"config_class of {self.name!r} must be a TrainConfig subclass, "
                f"got {self.config_class!r}"
            )
        if self.config_class.algo != self.name:
            raise ValueError(
                f"{self.config_class.__name__}.algo is {self.config_class.algo!r}, not "
                f"{self.name!r}: set `algo: ClassVar[str] = {self.name!r}` on the config class"
            )
        if not isinstance(self.trainer, type) and (
            not isinstance(self.trainer, str) or ":" not in self.trainer
        ):
            raise ValueError(f"trainer must be 'module:Class' or a class, got {self.trainer!r}")
        if not self.summary:
            doc = (self.config_class.__doc__ or "").strip().splitlines()
            object.__setattr__(self, "summary", doc[0] if doc else "")

    def trainer_class(self) -> Any:
        """The trainer class (imports its module, and so torch)."""
        trainer = self.trainer
        if isinstance(trainer, str):
            module_name, _, name = trainer.partition(":")
            trainer = getattr(importlib.import_module(module_name), name)
        found = getattr(trainer, "config_class", None)
        if found is not self.config_class:
            raise TypeError(
                f"{trainer!r}.config_class is {found!r}, not the registered "
                f"{self.config_class.__module__}.{self.config_class.__qualname__} (algorithm "
                f"{self.name!r}); when the two share a name, the module was imported twice "
                "(a script importing itself): register from a separate file, or pass the "
                "trainer class itself"
            )
        return trainer


class _Registry:
    """Name -> spec, with the built-ins and entry points registered on first lookup."""

    def __init__(self) -> None:
        self.specs: dict[str, AlgorithmSpec] = {}
        self.loaded = False

    def load(self) -> None:
        if self.loaded:
            return
        self.loaded = True
        from llm_marl.baselines import config

        for name, config_name, trainer in BUILTINS:
            self.specs[name] = AlgorithmSpec(name, getattr(config, config_name), trainer)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            self._load_entry_point(point)

    def _load_entry_point(self, point: Any) -> None:
        try:
            found = point.load()
            spec = found() if callable(found) and not isinstance(found, AlgorithmSpec) else found
            if not isinstance(spec, AlgorithmSpec):
                raise TypeError(f"it gave {type(spec).__name__}, not an AlgorithmSpec")
            if spec.name != point.name:
                raise ValueError(f"it names its algorithm {spec.name!r}")
            if spec.name in self.specs:
                raise ValueError("a built-in algorithm already has that name")
        except Exception as error:  # one broken package must not take the others down
            warnings.warn(
                f"entry point {point.name!r} = {point.value!r} of group {ENTRY_POINT_GROUP!r} "
                f"was skipped: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        self.specs[spec.name] = spec


_REGISTRY = _Registry()


def register_algorithm(
    name: str,
    config_class: type[TrainConfig],
    trainer: str | type,
    *,
    summary: str = "",
    override: bool = False,
) -> AlgorithmSpec:
    """Register algorithm ``name``: its config dataclass and ``"module:TrainerClass"`` (or the
    trainer class itself, in-process).

    ``override=True`` replaces an existing entry. The algorithm then appears in
    ``llm-marl algos`` and ``llm-marl train --algo`` (for an outside package, register it
    through the ``llm_marl.algorithms`` entry-point group so the command line sees it).
    """
    _REGISTRY.load()  # so that built-ins never overwrite a user's entry later
    spec = AlgorithmSpec(name, config_class, trainer, summary)
    if name in _REGISTRY.specs and not override:
        raise ValueError(f"algorithm {name!r} is already registered; pass override=True")
    _REGISTRY.specs[name] = spec
    return spec


def list_algorithms() -> list[str]:
    """Names of every registered algorithm, sorted."""
    _REGISTRY.load()
    return sorted(_REGISTRY.specs)


def algorithm(name: str) -> AlgorithmSpec:
    """The registration of ``name``; a ``ValueError`` lists the known names when it is unknown."""
    _REGISTRY.load()
    if name not in _REGISTRY.specs:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY.specs, n=3)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown algorithm {name!r}{hint}; choose one of {list_algorithms()}")
    return _REGISTRY.specs[name]


def algorithm_summaries() -> list[tuple[str, str, str]]:
    """``(name, summary, config class path)`` of every registered algorithm."""
    rows = []
    for name in list_algorithms():
        spec = _REGISTRY.specs[name]
        klass = spec.config_class
        rows.append((name, spec.summary, f"{klass.__module__}.{klass.__qualname__}"))
    return rows
