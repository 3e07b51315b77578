"""``llm-marl reproduce``: run a baseline table and write its results folder.

Examples::

    llm-marl reproduce --table writing --quick          # the embedded model, on a CPU
    llm-marl reproduce --table coding --seeds 5          # the paper's scale, for a GPU
    llm-marl reproduce --config my_table.yaml --methods parallel,magrpo,my_algo

A killed run started again with the same command keeps its finished cells; Ctrl-C stops the
run (a trainer after its current step, with a checkpoint) with exit status 130. ``--compare DIR``
checks every number of the new table against the intervals of a committed one (``--quick``
compares with ``baselines/results/<table>-quick`` by default).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_marl.baselines.cli import _message, one_line_warnings
from llm_marl.baselines.reproduce import (
    TABLES,
    TableConfig,
    load_table_config,
    table_config_path,
)
from llm_marl.cli_parser import CLIParser, report

__all__ = ["COMMITTED", "TIMINGS", "build_reproduce_parser", "compare_tables", "reproduce_main"]

PROG = "llm-marl reproduce"
#: Metrics that measure the machine as much as the method: not compared with ``--compare``.
TIMINGS: tuple[str, ...] = ("latency_s",)
#: Where the committed ``--quick`` results live in the source tree.
COMMITTED = Path(__file__).resolve().parent / "results"
#: Settings a run may change (``--methods``, ``--seeds``) and still be compared with the
#: committed table, on the methods both have.
SUBSET_SETTINGS = frozenset({"methods", "seeds"})


def build_reproduce_parser() -> CLIParser:
    """The parser of ``llm-marl reproduce``."""
    parser = CLIParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--table", choices=TABLES, default=None, help="writing or coding")
    add("--quick", action="store_true", help="the CPU-sized config (configs/quick/TABLE.yaml)")
    add("--config", default=None, metavar="FILE", help="a table config instead of the shipped one")
    add("--seeds", type=int, default=None, help="seeds per method (default: the config's)")
    add("--methods", default=None, help="comma-separated methods (default: the config's)")
    add("--model", default=None, help="base model of every method (default: the config's)")
    add(
        "--output-dir",
        default=None,
        metavar="DIR",
        help="results folder (default results/TABLE, or results/TABLE-quick)",
    )
    add(
        "--compare",
        default=None,
        metavar="DIR",
        help="a results folder whose intervals the new numbers must fall in",
    )
    add("--no-progress", action="store_true", help="no progress bars")
    return parser


def reproduce_main(argv: Sequence[str]) -> int:
    """Run ``llm-marl reproduce``; setting errors are one line with exit status 2; exit
    status 1 when ``--compare`` finds a number outside its committed interval; 130 after
    Ctrl-C (a trainer first finishes its step and checkpoint; the finished cells are kept)."""
    args = build_reproduce_parser().parse_args(argv)
    if (args.table is None) == (args.config is None):
        return report(PROG, "give --table writing|coding, or --config FILE (not both)")
    with one_line_warnings(PROG):
        try:
            path = Path(args.config) if args.config else table_config_path(args.table, args.quick)
            methods = args.methods.split(",") if args.methods else None
            config = load_table_config(path, seeds=args.seeds, methods=methods, model=args.model)
            name = f"{config.table}-quick" if args.quick else config.table
            results = Path(args.output_dir or Path("results") / name)
            from llm_marl.baselines.reproduce_run import run_table

            cells = run_table(config, results, progress=not args.no_progress)
            written = _write(results, cells, config, path)
        except (ValueError, TypeError, OSError, KeyError, ImportError) as error:
            return report(PROG, _message(error))
        except KeyboardInterrupt:  # Ctrl-C: in a trainer, after its step and checkpoint
            kept = len(list((results / "cells").rglob("*.json")))
            print(
                f"\n{PROG}: stopped by Ctrl-C; {kept} finished cells are kept in {results} "
                "(the same command goes on from there)",
                file=sys.stderr,
            )
            return 130
    print((results / "table.md").read_text(encoding="utf-8"))
    for label, file in written.items():
        print(f"{label}: {file}")
    compare = args.compare or (COMMITTED / name if args.quick and args.config is None else None)
    if compare is not None and Path(compare).resolve() != results.resolve():
        if not (Path(compare) / "table.json").is_file():
            print(f"no committed table to compare with in {compare}")
            return 0
        changed = [] if args.compare else _changed_settings(Path(compare), config)
        subset = set(changed) <= SUBSET_SETTINGS
        if changed and not subset:
            print(
                f"not compared with {compare}: its table has other settings "
                f"({', '.join(changed)}); give --compare {compare} to compare anyway"
            )
            return 0
        if changed:
            shown = ", ".join(changed)
            print(f"comparing the methods both tables have with {compare} ({shown} differ)")
        outside = compare_tables(
            results / "table.json", Path(compare) / "table.json", shared_only=bool(changed)
        )
        if outside:
            print(f"{len(outside)} numbers fall outside the intervals of {compare}:")
            for line in outside:
                print(f"  {line}")
            return 1
        print(f"every number is inside its interval in {compare}")
    return 0


def _write(results: Path, cells: list[dict[str, Any]], config: TableConfig, path: Path) -> Any:
    from dataclasses import asdict

    from llm_marl.baselines.results import write_results
    from llm_marl.baselines.run_card import shown_path

    return write_results(
        results,
        cells,
        table=config.table,
        methods=config.methods,
        config={**asdict(config), "config_file": shown_path(path)},
        data_files=_data_files(config),
        model_dir=_model_dir(config.model),
        labels={"machine": config.machine, "split": "test"},  # "": the detected machine
    )


def _changed_settings(committed: Path, config: TableConfig) -> list[str]:
    """The table settings that differ from those of the committed results' run card."""
    from dataclasses import asdict

    card = committed / "run_card.json"
    if not card.is_file():
        return []
    saved = dict(json.loads(card.read_text(encoding="utf-8")).get("config", {}))
    ours = asdict(config)
    return sorted(k for k in ours if k != "machine" and saved.get(k, ours[k]) != ours[k])


def _data_files(config: TableConfig) -> list[Path]:
    """The files the env's tasks come from (bundled samples or a local data path)."""
    import llm_marl
    from llm_marl.data import bundled_path

    env = llm_marl.make(config.env, **config.env_kwargs)
    source = getattr(env, "data_source", None)
    bundled = getattr(env, "bundled_data", None)
    if source == "bundled" and bundled:
        return [bundled_path(bundled, split) for split in ("train", "test")]
    if source and Path(str(source)).exists():
        return [Path(str(source))]
    return []


def _model_dir(model: str) -> Path | None:
    """The local folder of the base model, when it has one."""
    if model == "embedded":
        from llm_marl.models.embedded import embedded_model_dir

        return embedded_model_dir(progress=False)
    path = Path(model).expanduser()
    return path if path.is_dir() else None


def compare_tables(new: Path, committed: Path, *, shared_only: bool = False) -> list[str]:
    """Each number of ``new``'s table outside the interval its cell has in ``committed``.

    Both files are ``table.json`` of a results folder; every (method, metric) mean of the new
    table is checked against the committed ``[low, high]`` (a committed cell without an
    interval, one seed, must be matched to 1e-9). Timings (:data:`TIMINGS`) follow the
    machine's load, not the method, and are not compared. ``shared_only``: only the methods
    both tables have (a ``--methods`` subset); otherwise a committed method the new table
    lacks is reported.
    """
    new_rows = _rows(new)
    new_methods = {method for method, _ in new_rows}
    outside = []
    for (method, metric), entry in _rows(committed).items():
        if metric in TIMINGS or (shared_only and method not in new_methods):
            continue
        if (method, metric) not in new_rows:
            outside.append(f"{method} {metric}: missing from the new table")
            continue
        value = _number(new_rows[method, metric].get("mean"))
        low, high = _number(entry.get("low")), _number(entry.get("high"))
        if math.isnan(low) or math.isnan(high):
            low = high = _number(entry.get("mean"))
            inside = math.isclose(value, low, abs_tol=1e-9) or (
                math.isnan(value) and math.isnan(low)
            )
        else:
            inside = low - 1e-9 <= value <= high + 1e-9
        if not inside:
            outside.append(f"{method} {metric}: {value:.4f} not in [{low:.4f}, {high:.4f}]")
    return outside


def _number(value: Any) -> float:
    """A number of ``table.json`` (``null`` where undefined) as a float (NaN)."""
    return math.nan if value is None else float(value)


def _rows(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``(method, metric) -> {"mean", "low", "high"}`` of a ``table.json``."""
    table = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for row in table["rows"]:
        for metric, entry in row["metrics"].items():
            out[row["method"], metric] = entry
    return out
