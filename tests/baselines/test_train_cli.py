"""``llm-marl train``: options from the config dataclasses, YAML files, errors, a real run."""

from __future__ import annotations

import dataclasses
import json
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


def test_a_resumed_run_says_where_it_goes_on_from(
    fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = fast["output_dir"]
    argv = ["train", "--env", "digits_v0", "--model", "tiny", "--max-new-tokens", "4"]
    argv += ["--output-dir", out_dir, "--run-name", "r", "--no-progress"]
    assert main([*argv, "--num-steps", "2"]) == 0
    assert "resuming" not in capsys.readouterr().err
    resume = ["train", "--output-dir", out_dir, "--run-name", "r", "--resume", "--no-progress"]
    assert main([*resume, "--num-steps", "3"]) == 0
    checkpoint = Path(out_dir) / "r" / "checkpoints" / "step-000002"
    assert f"llm-marl train: resuming from {checkpoint} (step 2 of 3)" in capsys.readouterr().err


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


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run `llm-marl train ARGV`, expecting exit status 2 and one error line; that line."""
    try:
        code = main(["train", *argv])
    except SystemExit as exit_info:
        code = exit_info.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("llm-marl train: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "say what to train: --env ID"),
        (["--num-stpes", "2"], "unrecognized option --num-stpes; did you mean '--num-steps'?"),
        (["--num-step", "2"], "unrecognized option --num-step; did you mean '--num-steps'?"),
        (["--conf", "x.yaml"], "unrecognized option --conf; did you mean '--config'?"),
        (["--num-steps", "x"], "argument --num-steps: invalid int value: 'x'"),
        (["--algo", "magrpoo"], "did you mean"),
        (["--model", "tiny", "--device", "tpu"], "unknown device 'tpu': use 'cpu', 'cuda'"),
        (["--model", "embeded"], "unknown model 'embeded'; did you mean 'embedded'?"),
        (
            ["--env-kwargs", '{"num_turn": 2}'],
            "has no option 'num_turn'; did you mean 'num_turns'?",
        ),
        (["--env", "tldr_v1"], "no env registered as 'tldr_v1'; did you mean 'tldr_v0'?"),
        (["--env", "no_such_module:env"], "'no_such_module:env': cannot import no_such_module"),
        (["--env", "no_such_module:env"], "or put its folder on PYTHONPATH"),
        (["--critic-type", "q"], "option --critic-type belongs to --algo iac or maac"),
        (["--config", "missing.yaml"], "--config missing.yaml: no such file"),
    ],
)
def test_every_error_is_one_line_with_exit_status_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    err = _one_line_error(capsys, [*argv, "--output-dir", str(tmp_path)] if argv else [])
    assert expected in err


def test_a_mistyped_model_fails_at_once_without_asking_the_hub(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hub retries: the typo is named before transformers is asked for the model."""
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a hub call would fail slowly
    start = time.perf_counter()
    _one_line_error(capsys, ["--model", "embeded", "--output-dir", str(tmp_path)])
    assert time.perf_counter() - start < 30


def test_cuda_on_a_torch_without_cuda_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    err = _one_line_error(
        capsys, ["--model", "tiny", "--device", "cuda", "--output-dir", str(tmp_path)]
    )
    assert "device 'cuda' is not available" in err and "use 'cpu'" in err


def test_a_broken_yaml_file_is_named_in_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("num_steps: [1\n")
    err = _one_line_error(capsys, ["--config", str(path)])
    assert f"{path} is not valid YAML" in err and "<unicode string>" not in err
    assert f'in "{path}", line 2' in err


def test_an_env_given_as_module_and_factory_trains(
    fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--env package.module:factory` trains a user's env that was never registered."""
    argv = ["train", "--env", "toy_env:parallel_env", "--model", "tiny", "--num-steps", "1"]
    argv += ["--max-new-tokens", "4", "--output-dir", fast["output_dir"], "--no-progress"]
    assert main(argv) == 0
    run = Path(fast["output_dir"]) / "magrpo-toy_env-parallel_env-seed0"
    assert f"run:        {run}" in capsys.readouterr().out
    assert (run / "checkpoints" / "step-000001").is_dir()


def test_a_short_run_prints_its_evaluation_logs_samples_and_counts_steps_right(
    fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = fast["output_dir"]
    argv = ["train", "--env", "digits_v0", "--model", "tiny", "--num-steps", "1"]
    argv += ["--max-new-tokens", "4", "--output-dir", out_dir, "--run-name", "one"]
    argv += ["--no-progress", "--eval-every", "1", "--eval-tasks", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "metrics.jsonl (1 step)\n" in out
    assert "evaluation: eval/team_reward_mean=" in out
    assert "at step 1 (greedy answers on 3 test tasks)" in out
    argv[argv.index("one")] = "two"
    argv[argv.index("1")] = "2"
    assert main(argv) == 0
    samples = (Path(out_dir) / "two" / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in samples] == [1, 2]  # every 10: first, last


def test_fewer_test_tasks_than_asked_is_a_warning_line(
    fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--env", "digits_v0", "--model", "tiny", "--num-steps", "1"]
    argv += ["--max-new-tokens", "4", "--output-dir", fast["output_dir"], "--no-progress"]
    assert main([*argv, "--eval-every", "1", "--eval-tasks", "9"]) == 0
    err = capsys.readouterr().err
    assert (
        "llm-marl train: warning: eval_tasks=9, but the test split has 5 tasks: evaluating 5" in err
    )


def test_no_progress_also_hides_the_loading_weights_bar(
    fast: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    from llm_marl.models import load_policy

    saved = load_policy("tiny", agents=["a_0"], lora=None).save_pretrained(
        Path(fast["output_dir"]) / "model"
    )
    argv = ["train", "--env", "digits_v0", "--model", str(saved / "a_0"), "--num-steps", "1"]
    argv += ["--max-new-tokens", "4", "--output-dir", fast["output_dir"]]
    capfd.readouterr()
    assert main([*argv, "--run-name", "quiet", "--no-progress"]) == 0
    assert "Loading weights" not in capfd.readouterr().err
    assert main([*argv, "--run-name", "shown"]) == 0
    assert "Loading weights" in capfd.readouterr().err  # so the check above can fail


def test_overwrite_of_a_folder_that_is_not_a_run_is_one_line_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's file stays, nothing of ours (not even the lock file) is left beside it."""
    folder = tmp_path / "runs" / "mine"
    folder.mkdir(parents=True)
    (folder / "important.txt").write_text("keep")
    argv = ["train", "--env", "digits_v0", "--model", "/no/such/model", "--num-steps", "1"]
    argv += ["--output-dir", str(tmp_path / "runs"), "--run-name", "mine", "--overwrite"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run's outputs (['important.txt'])" in err[0]
    assert sorted(p.name for p in folder.iterdir()) == ["important.txt"]


def test_a_mistyped_yaml_setting_gets_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("num_step: 2\n")
    with pytest.raises(
        ValueError, match=r"unknown settings \['num_step'\].*did you mean 'num_steps'"
    ):
        config_from_args(["--config", str(config)])
    config.write_text("critic_type: q\n")
    with pytest.raises(ValueError, match="critic_type is a setting of --algo iac or maac"):
        config_from_args(["--config", str(config)])


def test_llm_marl_warnings_print_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from llm_marl.baselines.cli import _show_run_warning
    from llm_marl.data import SingleFileSplitWarning

    _show_run_warning(
        SingleFileSplitWarning("a.jsonl serves split 'test'"), SingleFileSplitWarning, "x.py", 1
    )
    assert capsys.readouterr().err == "llm-marl train: warning: a.jsonl serves split 'test'\n"


def test_a_run_says_what_auto_precision_means_on_this_machine(
    fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from llm_marl.models.decode import resolve_dtype

    argv = ["train", "--env", "digits_v0", "--model", "tiny", "--num-steps", "1"]
    argv += ["--max-new-tokens", "4", "--output-dir", fast["output_dir"], "--no-progress"]
    argv += ["--generation-backend", "fused", "--generation-dtype", "auto"]
    assert main([*argv, "--autocast-dtype", "auto"]) == 0
    here = str(resolve_dtype("auto", torch.device("cpu"))).removeprefix("torch.")
    err = capsys.readouterr().err
    line = f"on this machine generation_dtype auto = {here}, autocast_dtype auto = {here}"
    assert line in err
    # Nothing is said when no setting is auto; an evaluation in bfloat16 says so.
    evaluated = ["--eval-every", "1", "--eval-tasks", "2", "--overwrite"]
    assert main([*argv[:-1], "bfloat16", *evaluated]) == 0
    out, err = capsys.readouterr()
    assert "on this machine" not in err
    assert "(greedy answers of the bfloat16 copy on 2 test tasks)" in out
    assert main([*argv[:-1], "float32", *evaluated]) == 0
    assert "(greedy answers on 2 test tasks)" in capsys.readouterr().out
