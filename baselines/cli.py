"""``llm-marl train``: the command line built from the config dataclasses, plus YAML files.

Every field of the chosen algorithm's config is an option (``num_steps`` -> ``--num-steps``,
booleans as ``--lora`` / ``--no-lora``, ``none`` for optional values, JSON for dicts), with
the field's docstring as its help. ``--config run.yaml`` reads the same keys from a file (and
may name ``algo``); options given on the command line win over the file. ``--resume`` starts
from the settings the run saved in its ``config.yaml``, so only what changes needs repeating.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import functools
import inspect
import json
import sys
import textwrap
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llm_marl.baselines.config import TrainConfig
from llm_marl.baselines.interrupt import TrainingInterrupted
from llm_marl.baselines.registry import algorithm, list_algorithms
from llm_marl.baselines.run_config import saved_settings
from llm_marl.baselines.run_log import METRICS_FILE
from llm_marl.baselines.run_summary import interrupted_lines, resume_command, summary_lines
from llm_marl.baselines.run_watch import RunWarning
from llm_marl.cli_parser import CLIParser, did_you_mean, report

__all__ = [
    "build_train_parser",
    "config_from_args",
    "field_docs",
    "one_line_warnings",
    "read_config_file",
    "resolve_train_args",
    "train_main",
]

DEFAULT_ALGO = "magrpo"


def field_docs(config_class: type) -> dict[str, str]:
    """The docstring under each dataclass field of ``config_class`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0]
        assert isinstance(body, ast.ClassDef)
        for node, after in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _converter(kind: Any) -> tuple[Callable[[str], Any], str]:
    """A string parser for a field of type ``kind`` and its metavar."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        parse, metavar = _converter(inner)
        return (lambda text: None if text.lower() == "none" else parse(text)), f"{metavar}|none"
    if kind is dict or typing.get_origin(kind) is dict:
        return _json_object, "JSON"
    if kind in (int, float, str):
        return kind, kind.__name__.upper()
    raise TypeError(f"no command-line form for fields of type {kind!r}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _algorithms_with(field_name: str) -> str | None:
    """``"--algo maac"`` (or ``"--algo iac or maac"``) for a setting that only other
    algorithms' configs have; None when no registered algorithm has it."""
    owners = []
    for name in list_algorithms():
        try:
            fields = {f.name for f in dataclasses.fields(algorithm(name).config_class)}
        except Exception:  # a broken plug-in must not hide the user's typo
            continue
        if field_name in fields:
            owners.append(name)
    return f"--algo {' or '.join(owners)}" if owners else None


def build_train_parser(config_class: type[TrainConfig]) -> argparse.ArgumentParser:
    """The ``llm-marl train`` parser with one option per field of ``config_class``."""
    spec = algorithm(config_class.algo) if config_class.algo in list_algorithms() else None
    summary = f" {config_class.algo}: {spec.summary}" if spec else ""
    parser = CLIParser(
        prog="llm-marl train",
        description=f"Train a team of LLM agents on an llm-marl env.{summary}",
        epilog="llm-marl algos lists every algorithm; --algo NAME --help shows its options.",
        argument_default=argparse.SUPPRESS,
        owner_of=lambda option: _algorithms_with(option.removeprefix("--").replace("-", "_")),
    )
    parser.add_argument("--algo", metavar="ALGO", help=_algo_help())
    parser.add_argument("--config", metavar="YAML", help="read settings from a YAML file")
    docs, hints = field_docs(config_class), typing.get_type_hints(config_class)
    for item in dataclasses.fields(config_class):
        flag = "--" + item.name.replace("_", "-")
        default = _default(item)
        help_text = f"{docs.get(item.name, '')} (default: {default!r})".replace("``", "")
        if hints[item.name] is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parse, metavar = _converter(hints[item.name])
            choices = item.metadata.get("choices")
            if choices:
                metavar = "{" + ",".join(choices) + "}"
            parser.add_argument(flag, type=parse, metavar=metavar, choices=choices, help=help_text)
    return parser


def _algo_help() -> str:
    return f"the algorithm, one of {', '.join(list_algorithms())} (default {DEFAULT_ALGO})"


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file (keys are field names, ``-`` or ``_``)."""
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    try:
        with file.open(encoding="utf-8") as stream:  # so YAML's messages name the file
            values = yaml.safe_load(stream) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file holds a mapping of settings, got {values!r}")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def config_from_args(argv: Sequence[str]) -> tuple[str, TrainConfig]:
    """The algorithm and its config from command-line arguments (and a ``--config`` file)."""
    algo, config, _ = resolve_train_args(argv)
    return algo, config


def resolve_train_args(
    argv: Sequence[str],
) -> tuple[str, TrainConfig, dict[str, Any] | None]:
    """The algorithm, its config and, when resuming, the saved run's settings (read once)."""
    first = CLIParser(prog="llm-marl train", add_help=False)
    first.add_argument("--algo", metavar="ALGO", help=_algo_help())
    first.add_argument("--config")
    known, _ = first.parse_known_args(argv)
    from_file = read_config_file(known.config) if known.config else {}
    algo = known.algo or from_file.pop("algo", DEFAULT_ALGO)
    from_file.pop("algo", None)
    config_class = algorithm(algo).config_class  # an unknown name: a "did you mean" error
    parser = build_train_parser(config_class)
    given = vars(parser.parse_args(argv))
    given.pop("algo", None)
    given.pop("config", None)
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(from_file) - names)
    if unknown:
        owner = _algorithms_with(unknown[0])
        hint = (
            f"; {unknown[0]} is a setting of {owner}" if owner else did_you_mean(unknown[0], names)
        )
        raise ValueError(
            f"{known.config}: unknown settings {unknown} for {algo}{hint} (known ones: "
            f"{sorted(names)})"
        )
    hints = typing.get_type_hints(config_class)
    values = {k: _from_text(k, v, hints[k], known.config) for k, v in from_file.items()}
    values.update(given)
    saved = None
    if values.get("resume"):
        provisional = config_class(**values)
        saved = saved_settings(Path(provisional.output_dir) / provisional.name, algo)
        file_values = {k: v for k, v in values.items() if k not in given}
        # The saved run beats the file; only options typed now beat the saved run.
        values = {**file_values, **{k: v for k, v in saved.items() if k in names}, **given}
    return algo, config_class(**values), saved


def _from_text(name: str, value: Any, kind: Any, source: str) -> Any:
    """A YAML value as its field's type: YAML reads ``5e-6`` and ``none`` as strings."""
    if not isinstance(value, str) or kind in (str, bool):  # bools: checked by the config
        return value
    try:
        return _converter(kind)[0](value)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise ValueError(f"{source}: {name}: cannot read {value!r}: {error}") from None


def train_main(argv: Sequence[str]) -> int:
    """Run ``llm-marl train``; print where the log, the checkpoint and the plot went.

    Errors in the settings, the model, the env or its data are one line with exit status 2;
    Ctrl-C ends the run after the current step with a checkpoint and the command that resumes
    it (exit status 130).
    """
    if not argv:
        return report(
            "llm-marl train",
            "say what to train: --env ID (llm-marl envs lists them) or --config FILE "
            "(configs/demo.yaml: the default CPU demo); llm-marl train --help lists every option",
        )
    with one_line_warnings("llm-marl train"):
        try:
            algo, config, saved = resolve_train_args(argv)
            trainer = algorithm(algo).trainer_class()(config, saved=saved)
        except _SETUP_ERRORS as error:
            return report("llm-marl train", _message(error))
        if trainer.parallel.is_main:
            for line in start_lines(trainer):
                print(f"llm-marl train: {line}", file=sys.stderr, flush=True)
        try:
            result = trainer.train()
        except Exception as error:
            from llm_marl.baselines.storage import run_folder_error

            reason = run_folder_error(error, trainer.run_dir)  # a full disk, a taken folder
            if reason is None:
                raise
            return report("llm-marl train", str(reason))
        except TrainingInterrupted as stop:
            from llm_marl.baselines.run_log import read_metrics

            records = read_metrics(stop.run_dir / METRICS_FILE)
            for line in summary_lines(stop.run_dir, records, stop.checkpoint, stop.plot):
                print(line)
            for line in interrupted_lines(stop.step, stop.checkpoint, resume_command(algo, config)):
                print(line, file=sys.stderr)
            return 130
    if trainer.parallel.is_main:  # one summary for a data-parallel run, not one per process
        for line in summary_lines(result.run_dir, result.metrics, result.checkpoint, result.plot):
            print(line)
    return 0


def start_lines(trainer: Any) -> list[str]:
    """What a run says before its first step: the checkpoint it resumes from, what each
    ``auto`` precision setting means on this machine."""
    lines = []
    if trainer.resumed_from is not None:
        lines.append(
            f"resuming from {trainer.resumed_from} (step {trainer.step} of "
            f"{trainer.config.num_steps})"
        )
    resolved = trainer.resolved_precision()
    if resolved:
        settings = ", ".join(f"{name} auto = {dtype}" for name, dtype in resolved.items())
        lines.append(f"on this machine {settings}")
    return lines


#: Errors of the set-up (settings, env, data, model, device) that are the user's to fix.
_SETUP_ERRORS = (ValueError, TypeError, OSError, KeyError, ImportError, RuntimeError)


def _message(error: BaseException) -> str:
    """The text of ``error`` (a ``KeyError`` without the quotes of its repr)."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def _show_run_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
    *,
    prog: str = "llm-marl train",
) -> None:
    """Print a run's warnings (and llm-marl's own, such as a data file used as both splits) as
    one ``PROG: warning:`` line; other libraries' warnings as usual."""
    if issubclass(category, RunWarning) or category.__module__.startswith("llm_marl."):
        print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


@contextlib.contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """While a command runs: every :class:`RunWarning` shown each time, and llm-marl's warnings
    printed as one ``PROG: warning: ...`` line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", RunWarning)
        warnings.showwarning = functools.partial(_show_run_warning, prog=prog)
        yield


_SHOW_WARNING = warnings.showwarning
