"""``llm-marl reproduce`` on the tiny model: three methods, two seeds, resumed, compared."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from toy_env import parallel_env

import llm_marl
from llm_marl.baselines.reproduce import load_table_config, table_config_path
from llm_marl.baselines.reproduce_cli import compare_tables
from llm_marl.cli import main

CONFIG = """\
table: writing
env: digits_v0
model: tiny
seeds: 2
methods: [parallel, sequential, magrpo]
eval: {samples: 2, ks: [1], num_tasks: 2, max_new_tokens: 4}
train: {num_steps: 1, num_generations: 2, max_new_tokens: 4, learning_rate: 0.01}
contribution: {method: magrpo, seed: 0}
"""


def _reproduce(tmp_path: Path, out: Path, *extra: str) -> int:
    config = tmp_path / "table.yaml"
    config.write_text(CONFIG)
    return main(["reproduce", "--config", str(config), "--output-dir", str(out), "--no-progress",
                 *extra])  # fmt: skip


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished ``reproduce`` of CONFIG (tests copy it before changing it)."""
    llm_marl.register("digits_v0", parallel_env, override=True)
    root = tmp_path_factory.mktemp("reproduce")
    assert _reproduce(root, root / "results") == 0
    return root / "results"


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("*.json"))}


def test_three_methods_on_two_seeds_write_the_results_folder_and_resume(
    reproduced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    shutil.copytree(reproduced, out)
    table = (out / "table.md").read_text()
    assert "| parallel |" in table and "| magrpo |" in table and "vs magrpo" in table
    for name in ("table.md", "table.json", "plot.png", "report.html", "run_card.json"):
        assert (out / name).is_file(), name
    cells = sorted(p.relative_to(out).as_posix() for p in (out / "cells").rglob("*.json"))
    assert cells == [f"cells/{m}/seed{s}.json" for m in ("magrpo", "parallel", "sequential")
                     for s in (0, 1)]  # fmt: skip
    magrpo = json.loads((out / "cells/magrpo/seed1.json").read_text())
    assert magrpo["kind"] == "trained" and magrpo["protocol"] == "parallel"
    assert [r["step"] for r in magrpo["train"]["metrics"]] == [1]
    contribution = json.loads((out / "contribution.json").read_text())
    assert set(contribution["without"]) == {"left_0", "right_1"}
    assert all(set(v) == {"empty", "base"} for v in contribution["without"].values())
    card = json.loads((out / "run_card.json").read_text())
    assert card["config"]["methods"] == ["parallel", "sequential", "magrpo"]

    # Started again: every finished cell is kept, nothing is trained or played again.
    before = _mtimes(out / "cells")
    assert _reproduce(tmp_path, out) == 0
    assert _mtimes(out / "cells") == before
    assert "| sequential |" in capsys.readouterr().out  # the table, printed

    # Killed after training magrpo seed 1 but before its cell was written: the run resumes
    # from its checkpoint (no step trained again) and the cell comes out the same.
    (out / "cells/magrpo/seed1.json").unlink()
    assert _reproduce(tmp_path, out) == 0
    again = json.loads((out / "cells/magrpo/seed1.json").read_text())
    assert again["train"]["metrics"] == magrpo["train"]["metrics"]
    timing = "latency_s"  # a wall time: the one number that differs
    assert {k: v for k, v in again["metrics"].items() if k != timing} == {
        k: v for k, v in magrpo["metrics"].items() if k != timing
    }


def test_compare_finds_numbers_outside_the_committed_intervals(
    reproduced: Path, tmp_path: Path
) -> None:
    out = reproduced
    assert compare_tables(out / "table.json", out / "table.json") == []
    subset = json.loads((out / "table.json").read_text())
    dropped = subset["rows"].pop(0)["method"]  # a --methods run without the first method
    (tmp_path / "subset.json").write_text(json.dumps(subset))
    missing = compare_tables(tmp_path / "subset.json", out / "table.json")
    assert missing and all(line.startswith(f"{dropped} ") for line in missing)
    assert compare_tables(tmp_path / "subset.json", out / "table.json", shared_only=True) == []
    committed = tmp_path / "committed"
    shutil.copytree(out, committed)
    table = json.loads((committed / "table.json").read_text())
    entry = table["rows"][0]["metrics"]["tokens_per_task"]
    entry["low"] = entry["high"] = entry["mean"] + 1  # a committed interval the run misses
    table["rows"][0]["metrics"]["latency_s"]["high"] = -1.0  # timings are never compared
    (committed / "table.json").write_text(json.dumps(table))
    outside = compare_tables(out / "table.json", committed / "table.json")
    assert len(outside) == 1 and "tokens_per_task" in outside[0]
    shutil.copytree(out, tmp_path / "again")  # its cells are all finished: only the table
    assert _reproduce(tmp_path, tmp_path / "again", "--compare", str(committed)) == 1


def test_the_shipped_configs_are_valid() -> None:
    for table in ("writing", "coding"):
        for quick in (True, False):
            config = load_table_config(table_config_path(table, quick))
            assert config.table == table and "magrpo" in config.methods
            assert config.eval_settings(0).samples >= max(config.eval_settings(0).ks)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give --table writing|coding, or --config FILE"),
        (["--table", "writing", "--methods", "parallel,nope"], "method 'nope' is neither"),
    ],
)
def test_bad_commands_end_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def _interrupting_env(split: str) -> Any:
    """digits_v0 whose first reset on ``split`` sends this process a real SIGINT (Ctrl-C)."""
    fired: list[bool] = []

    def make(**kwargs: Any) -> Any:
        env = parallel_env(**kwargs)
        if kwargs.get("split", "train") == split:
            reset = env.reset

            def interrupting_reset(*args: Any, **options: Any) -> Any:
                if not fired:
                    fired.append(True)
                    signal.raise_signal(signal.SIGINT)
                return reset(*args, **options)

            env.reset = interrupting_reset
        return env

    return make


@pytest.mark.parametrize(
    ("split", "kept"),
    [("train", 4), ("test", 0)],
    ids=["during-training", "during-a-protocol-cell"],
)
def test_ctrl_c_stops_the_table_and_the_same_command_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], split: str, kept: int
) -> None:
    """Ctrl-C in magrpo's (only) step: the trainer finishes it, then the table stops (exit
    130) with the 4 protocol cells kept; in the first protocol cell it stops at once. Run
    again, the table completes and the kept cells are not played again."""
    out = tmp_path / "results"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        llm_marl.register("digits_v0", _interrupting_env(split), override=True)
        assert _reproduce(tmp_path, out) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
        llm_marl.register("digits_v0", parallel_env, override=True)
    assert f"stopped by Ctrl-C; {kept} finished cells are kept" in capsys.readouterr().err
    cells = sorted((out / "cells").rglob("*.json"))
    assert len(cells) == kept
    assert all("magrpo" not in str(p) for p in cells)
    before = _mtimes(out / "cells")
    assert _reproduce(tmp_path, out) == 0
    after = _mtimes(out / "cells")
    assert len(after) == 6 and all(after[p] == t for p, t in before.items())
