"""``llm-marl train``: options from the config dataclasses, YAML files, errors, a real run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from llm_marl.baselines import IGRPOConfig, MAGRPOConfig
from llm_marl.baselines.cli import config_from_args, field_docs
from llm_marl.cli import main


def test_every_field_has_a_docstring() -> None:
    for config in (MAGRPOConfig, IGRPOConfig):
        docs = field_docs(config)
        names = {f.name for f in dataclasses.fields(config)}
        assert names == set(docs), names ^ set(docs)
        assert all(docs.values())


def test_options_become_config_fields() -> None:
    algo, config = config_from_args(
        [
            "--algo", "magrpo", "--env", "arxiv_v0", "--num-steps", "7", "--no-lora",
            "--early-stop-threshold", "none", "--dtype", "none", "--temperature", "0.5",
            "--env-kwargs", '{"max_tasks": 3}', "--joint-mode", "cross",
        ]
    )  # fmt: skip
    assert algo == "magrpo" and isinstance(config, MAGRPOConfig)
    assert (config.env, config.num_steps, config.lora, config.temperature) == (
        "arxiv_v0",
        7,
        False,
        0.5,
    )
    assert config.early_stop_threshold is None and config.env_kwargs == {"max_tasks": 3}
    assert config.joint_mode == "cross"


def test_a_yaml_file_sets_defaults_and_options_win(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("algo: igrpo\nnum-steps: 5\nlearning_rate: 0.001\nenv_kwargs: {max_tasks: 2}\n")
    algo, config = config_from_args(["--config", str(path), "--num-steps", "9"])
    assert algo == "igrpo" and isinstance(config, IGRPOConfig)
    assert (config.num_steps, config.learning_rate, config.env_kwargs) == (
        9,
        0.001,
        {"max_tasks": 2},
    )


def test_a_yaml_file_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("num_stepz: 5\n")
    with pytest.raises(ValueError, match=r"unknown settings \['num_stepz'\]"):
        config_from_args(["--config", str(path)])


def test_bad_options_exit_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--num-steps", "0"]) == 2
    assert "num_steps must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--joint-mode", "cross", "--algo", "grpo"])  # not an option of grpo
    with pytest.raises(SystemExit):
        main(["envs", "--num-steps", "3"])


def test_help_lists_the_field_docs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--num-generations" in out and "the group size G" in out


def test_train_runs_and_says_where_its_outputs_went(
    fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = fast["output_dir"]
    argv = ["train", "--env", "digits_v0", "--model", "tiny", "--num-steps", "4"]
    argv += ["--max-new-tokens", "8", "--output-dir", out_dir, "--run-name", "cli", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    run = Path(out_dir) / "cli"
    for line in (
        f"run:        {run}",
        f"{run / 'metrics.jsonl'} (4 steps)",
        "step-000004",
        "reward.png",
    ):
        assert line in out
    assert "first quarter of steps" in out


def test_yaml_numbers_and_none_are_read_as_their_field_types(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 5e-6\nearly_stop_threshold: none\nscale_by_std: true\n")
    _, config = config_from_args(["--config", str(path)])
    assert config.learning_rate == 5e-6 and config.early_stop_threshold is None
    path.write_text("learning_rate: fast\n")
    with pytest.raises(ValueError, match="learning_rate: cannot read 'fast'"):
        config_from_args(["--config", str(path)])
    path.write_text("scale_by_std: 'no'\n")
    with pytest.raises(TypeError, match="scale_by_std must be true or false"):
        config_from_args(["--config", str(path)])


def test_a_broken_yaml_file_is_an_error_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("num_steps: [1\n")
    assert main(["train", "--config", str(path)]) == 2
    assert "llm-marl train: error:" in capsys.readouterr().err


def test_resume_takes_the_saved_settings(fast: dict[str, Any]) -> None:
    out_dir = fast["output_dir"]
    argv = ["train", "--env", "digits_v0", "--model", "tiny", "--max-new-tokens", "6"]
    argv += ["--num-generations", "3", "--output-dir", out_dir, "--run-name", "r", "--no-progress"]
    assert main([*argv, "--num-steps", "1"]) == 0
    _, config = config_from_args(
        ["--output-dir", out_dir, "--run-name", "r", "--resume", "--num-steps", "2"]
    )
    assert (config.env, config.model, config.max_new_tokens, config.num_generations) == (
        "digits_v0",
        "tiny",
        6,
        3,
    )
    assert config.num_steps == 2 and config.resume


def test_the_demo_config_is_the_documented_default() -> None:
    demo = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    algo, config = config_from_args(["--config", str(demo)])
    assert algo == "magrpo" and isinstance(config, MAGRPOConfig)
    assert (config.env, config.model, config.lora) == ("tldr_v0", "embedded", True)


def test_on_resume_the_saved_run_beats_the_file_and_typed_options_beat_both(
    fast: dict[str, Any], tmp_path: Path
) -> None:
    out_dir = fast["output_dir"]
    path = tmp_path / "run.yaml"
    path.write_text(
        f"env: digits_v0\nmodel: tiny\nmax_new_tokens: 6\nnum_steps: 1\n"
        f"output_dir: {out_dir}\nrun_name: f\nprogress: false\n"
    )
    assert main(["train", "--config", str(path), "--num-steps", "2"]) == 0
    _, config = config_from_args(["--config", str(path), "--resume"])
    assert config.num_steps == 2  # the saved run's, not the file's 1
    _, config = config_from_args(["--config", str(path), "--resume", "--num-steps", "3"])
    assert config.num_steps == 3
