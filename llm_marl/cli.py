"""The ``llm-marl`` command line: ``llm-marl envs`` lists the registered environments,
``llm-marl algos`` the registered algorithms, ``llm-marl train`` trains a team
(``llm-marl train --algo NAME --help`` lists its options). ``python -m llm_marl`` is the same.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from llm_marl import __version__
from llm_marl.cli_parser import CLIParser, report
from llm_marl.registry import list_envs, make

__all__ = ["TRAIN_MODULES", "describe_env", "main", "missing_modules", "text_table"]

#: Modules ``llm-marl train`` needs, all from the ``train`` extra (import name -> pip name).
TRAIN_MODULES: dict[str, str] = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "yaml": "pyyaml",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
}


def describe_env(env_id: str) -> dict[str, Any]:
    """Agents, turns and data of ``env_id`` built with its defaults."""
    train, test = make(env_id), make(env_id, split="test")
    return {
        "id": env_id,
        "agents": list(train.possible_agents),
        "turns": getattr(train, "num_turns", None),
        "data": getattr(train, "data_source", "?"),
        "train_tasks": len(getattr(train, "tasks", ())),
        "test_tasks": len(getattr(test, "tasks", ())),
        "hub_dataset": getattr(train, "hub_dataset", None),
    }


def _envs_table(rows: list[dict[str, Any]]) -> str:
    header = ("id", "agents", "turns", "data (default)", "full data set")
    return text_table(
        header,
        [
            (
                row["id"],
                ", ".join(row["agents"]),
                str(row["turns"]),
                f"{row['data']} ({row['train_tasks']} train / {row['test_tasks']} test)",
                row["hub_dataset"] or "-",
            )
            for row in rows
        ],
    )


def text_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *lines]
    )


def _cmd_envs(args: argparse.Namespace) -> int:
    rows = [describe_env(env_id) for env_id in list_envs()]
    print(json.dumps(rows, indent=2) if args.json else _envs_table(rows))
    return 0


def _cmd_algos(args: argparse.Namespace) -> int:
    from llm_marl.baselines.registry import algorithm_summaries

    rows = algorithm_summaries()
    if args.json:
        keys = ("name", "summary", "config_class")
        print(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        return 0
    print(text_table(("algo", "summary", "config class"), rows))
    return 0


def missing_modules(modules: dict[str, str]) -> list[str]:
    """The pip names of ``modules`` (import name -> pip name) that cannot be imported."""
    return [pip for name, pip in modules.items() if importlib.util.find_spec(name) is None]


#: The commands whose options the baselines parse: name -> "module:function(argv) -> int".
_BASELINES_COMMANDS = {
    "train": "llm_marl.baselines.cli:train_main",
    "eval": "llm_marl.baselines.eval_cli:eval_main",
    "reproduce": "llm_marl.baselines.reproduce_cli:reproduce_main",
}


def _baselines_command(name: str) -> Any:
    """Run ``llm-marl NAME``'s parser and body from the baselines (they need the train extra)."""

    def run(args: argparse.Namespace) -> int:
        missing = missing_modules(TRAIN_MODULES)
        if missing:
            verb = "training" if name == "train" else f"llm-marl {name}"
            return report(
                f"llm-marl {name}",
                f"{verb} needs the 'train' extra, and {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not installed: "
                "pip install 'llm-marl[train]'",
            )
        module, function = _BASELINES_COMMANDS[name].split(":")
        return int(getattr(importlib.import_module(module), function)(args.extra))

    return run


_cmd_train = _baselines_command("train")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``llm-marl`` with one sub-command per task."""
    parser = CLIParser(
        prog="llm-marl", description="Environments and baselines for collaborating LLM agents."
    )
    parser.add_argument("--version", action="version", version=f"llm-marl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    envs = commands.add_parser("envs", help="list the registered environments")
    envs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    envs.set_defaults(run=_cmd_envs)
    algos = commands.add_parser("algos", help="list the registered training algorithms")
    algos.add_argument("--json", action="store_true", help="print JSON instead of a table")
    algos.set_defaults(run=_cmd_algos)
    # Its options come from the chosen algorithm's config, so the baselines parse them.
    train = commands.add_parser(
        "train", help="train a team with a registered algorithm (see train --help)", add_help=False
    )
    train.set_defaults(run=_cmd_train)
    for name, summary in (
        ("eval", "score a model or a trained team on an env's test tasks (see eval --help)"),
        ("reproduce", "train and evaluate every method of a baseline table (see reproduce --help)"),
    ):
        command = commands.add_parser(name, help=summary, add_help=False)
        command.set_defaults(run=_baselines_command(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llm-marl`` command."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in _BASELINES_COMMANDS:
        command = _subparser(parser, args.command)
        command.error(command.unknown_message(extra))
    args.extra = extra
    try:
        return int(args.run(args))
    except BrokenPipeError:  # the reader left (`llm-marl algos | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return 0


def _subparser(parser: argparse.ArgumentParser, name: str) -> CLIParser:
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = commands.choices[name]
    assert isinstance(found, CLIParser)
    return found


if __name__ == "__main__":
    sys.exit(main())
