"""``llm-marl eval``: a base model and a trained team scored from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_marl.baselines import MAGRPOConfig, MAGRPOTrainer
from llm_marl.cli import main

TINY = ["--model", "tiny", "--max-new-tokens", "4", "--tasks", "2", "--no-progress"]


def test_a_base_model_is_scored_under_a_protocol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "e.json"
    argv = ["eval", "--env", "tldr_v0", "--protocol", "sequential", *TINY]
    assert (
        main([*argv, "--samples", "2", "--k", "1,2", "--seeds", "0,1", "--output", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "tldr_v0 · sequential · tiny · 2 samples x 2 tasks" in printed
    assert "seed 0" in printed and "seed 1" in printed and "mean" in printed
    results = json.loads(out.read_text())
    assert results["protocol"] == "sequential" and [c["seed"] for c in results["seeds"]] == [0, 1]
    cell = results["seeds"][0]
    assert [t["task_id"] for t in cell["tasks"]] == ["test-00000", "test-00001"]
    assert all(len(t["samples"]) == 2 for t in cell["tasks"])
    assert set(cell["metrics"]) >= {"total_reward", "structure", "tokens_per_task", "latency_s"}
    assert results["mean"]["tokens_per_task"] == pytest.approx(
        sum(c["metrics"]["tokens_per_task"] for c in results["seeds"]) / 2
    )


def test_a_trained_checkpoint_plays_as_trained_and_seats_can_be_emptied(
    tmp_path: Path, fast: dict[str, Any]
) -> None:
    run = MAGRPOTrainer(MAGRPOConfig(**fast, num_steps=1, run_name="r")).train().run_dir
    out = tmp_path / "e.json"
    argv = ["eval", "--env", "digits_v0", "--checkpoint", str(run), "--seat", "right_1=empty"]
    assert main([*argv, "--max-new-tokens", "4", "--samples", "1", "--no-progress",
                 "--output", str(out)]) == 0  # fmt: skip
    results = json.loads(out.read_text())
    assert results["protocol"] == "parallel"
    assert results["model"].endswith("team") and results["seats"] == {"right_1": "empty"}
    samples = [s for t in results["seeds"][0]["tasks"] for s in t["samples"]]
    assert len(samples) == 5  # every test task of the toy env
    assert all(s["answers"]["right_1"] == "" for s in samples)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checkpoint", "x"], "give --model (a base model) or --checkpoint"),
        (["--k", "3"], "k=3 needs at least 3 samples per task, got samples=2"),
        (["--k", "one"], "--k must be comma-separated integers such as 1,3,5, got 'one'"),
        (["--seat", "nobody=empty"], "--seat names agent 'nobody'"),
        (["--seat", "concise_0"], "--seat takes AGENT=SOURCE"),
        (["--protocol", "debate"], "invalid choice: 'debate'"),
    ],
)
def test_bad_options_end_in_one_line(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--env", "tldr_v0", *TINY, "--samples", "2", *extra]
    try:
        code = main(argv)
    except SystemExit as stop:  # the parser's own errors (a bad choice) exit
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
