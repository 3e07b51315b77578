"""The llm-marl command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_marl.cli import main


def test_envs_lists_ids_agents_turns_and_data(capsys: pytest.CaptureFixture[str]) -> None:
    """`llm-marl envs` prints one row per env with its agents, turns and data source."""
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "concise_0, detailed_1" in rows["tldr_v0"]
    assert "background_0, method_1" in rows["arxiv_v0"]
    assert "48 train / 16 test" in rows["tldr_v0"] and "trl-lib/tldr" in rows["tldr_v0"]
    assert "OpenMLRL/arXiv_abstract" in rows["arxiv_v0"]


def test_envs_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`llm-marl envs --json` prints machine-readable rows."""
    main(["envs", "--json"])
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["tldr_v0"]["agents"] == ["concise_0", "detailed_1"]
    assert rows["arxiv_v0"]["turns"] == 1 and rows["arxiv_v0"]["test_tasks"] == 16


def test_console_script_is_installed() -> None:
    """The installed `llm-marl` command runs."""
    beside_python = Path(sys.executable).with_name("llm-marl")
    exe = str(beside_python) if beside_python.exists() else shutil.which("llm-marl")
    assert exe, "the llm-marl console script is not installed"
    result = subprocess.run([exe, "envs"], capture_output=True, text=True, check=True)
    assert "tldr_v0" in result.stdout and "arxiv_v0" in result.stdout


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a sub-command the CLI exits with a usage message."""
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_version_and_python_dash_m(capsys: pytest.CaptureFixture[str]) -> None:
    """`llm-marl --version` prints the package's version; `python -m llm_marl` is the CLI."""
    import llm_marl

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"llm-marl {llm_marl.__version__}"
    from importlib.metadata import version

    assert llm_marl.__version__ == version("llm-marl")
    result = subprocess.run(
        [sys.executable, "-m", "llm_marl", "envs"], capture_output=True, text=True, check=True
    )
    assert "tldr_v0" in result.stdout


def test_a_mistyped_option_or_command_is_one_line_with_a_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Errors are one line with exit status 2 and name the closest option or command."""
    for argv, expected in (
        (["envs", "--jsn"], "llm-marl envs: error: unrecognized option --jsn; did you mean"),
        (
            ["envz"],
            "invalid choice: 'envz' (choose from 'envs', 'algos', 'train', 'eval', 'reproduce'); "
            "did you mean",
        ),
        (["envs", "--js"], "unrecognized option --js; did you mean '--json'?"),  # no prefixes
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, err


def test_train_without_its_extra_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a plain `pip install .`, `llm-marl train --help` names the missing extra."""
    monkeypatch.setitem(sys.modules, "yaml", None)  # importlib.util.find_spec: not installed
    assert main(["train", "--help"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "llm-marl train: error: training needs the 'train' extra, and pyyaml is not installed: "
        "pip install 'llm-marl[train]'\n"
    )
