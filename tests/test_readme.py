"""Every README snippet and command runs as written and prints what the README shows.

Python blocks run as they are. Shell commands run through ``llm_marl.cli.main`` in a scratch
folder, the long ones shortened: the tiny model for ``embedded``, 2 to 3 steps, 4 new tokens.
Install and ``make`` commands are not run here (they need a package index); ``make test`` runs
the tests and ``make demo`` runs the demo's config, which a test below runs on the tiny model.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_marl.baselines import MAGRPOConfig
from llm_marl.baselines.run_summary import interrupted_lines, resume_command
from llm_marl.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text("utf-8")
#: Commands that install or build: run by `make` and by users, not by this test.
NOT_RUN = ("make", "pip")
#: Keeps a shortened run fast; typed again on resume, they equal the saved settings.
FAST = ["--model", "tiny", "--max-new-tokens", "4", "--num-generations", "2", "--no-progress"]


def _fences(text: str = TEXT) -> list[tuple[str, str]]:
    """Every fenced block of ``text`` as (language, body), in order."""
    blocks, language, lines = [], None, []
    for line in text.splitlines(keepends=True):
        if line.startswith("```") and language is None:
            language, lines = line[3:].strip(), []
        elif line.startswith("```"):
            blocks.append((language, "".join(lines)))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def _blocks(language: str, text: str = TEXT) -> list[str]:
    return [body for lang, body in _fences(text) if lang == language]


def _commands() -> list[list[str]]:
    """Each command line of the README's ```bash blocks, without its comment."""
    return [
        shlex.split(line, comments=True)
        for block in _blocks("bash")
        for line in block.splitlines()
        if shlex.split(line, comments=True)
    ]


def test_readme_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Every ```python block of the README executes without error."""
    blocks = _blocks("python")
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    assert "level1_structure" in capsys.readouterr().out


def test_the_envs_table_is_what_llm_marl_envs_prints() -> None:
    """In a fresh process: envs that other tests register do not belong in the table."""
    (block,) = [b for b in _blocks("") if b.startswith("$ llm-marl envs\n")]
    done = subprocess.run(
        [sys.executable, "-m", "llm_marl", "envs"], capture_output=True, text=True, check=True
    )
    assert done.stdout == block.removeprefix("$ llm-marl envs\n")


def _shortened(argv: list[str], steps: int) -> list[str]:
    """``argv`` on the tiny model, ``steps`` steps (typed options after it still win)."""
    out = list(argv)
    if "--model" in out:
        del out[out.index("--model") : out.index("--model") + 2]
    if "--max-new-tokens" in out:
        del out[out.index("--max-new-tokens") : out.index("--max-new-tokens") + 2]
    if "--num-steps" in out:
        out[out.index("--num-steps") + 1] = str(steps)
    else:
        out += ["--num-steps", str(steps)]
    return [*out, *FAST]


def test_every_readme_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The training commands, each shortened, in a folder with the files they name."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (yaml_block,) = _blocks("yaml")
    name = yaml_block.splitlines()[0].removeprefix("# ")
    (tmp_path / name).write_text(yaml_block)
    (tmp_path / "mypackage").mkdir()
    (tmp_path / "mypackage" / "__init__.py").write_text("")
    (tmp_path / "mypackage" / "envs.py").write_text(
        "import llm_marl\n\n\ndef make_env(**kwargs):\n"
        "    return llm_marl.make('tldr_v0', max_tasks=4, **kwargs)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # `--config configs/demo.yaml --resume` extends the demo's run: make it first, as `make demo`.
    demo = re.search(
        r"HF_HUB_OFFLINE=1 \$\(VENV\)/bin/(llm-marl .*)", (ROOT / "Makefile").read_text()
    )
    assert demo is not None
    ran = []
    for argv in [shlex.split(demo.group(1)), *_commands()]:
        if argv[0] in NOT_RUN:
            continue
        if argv[:2] in (["llm-marl", "eval"], ["llm-marl", "reproduce"]):
            code = main(_shortened_evaluation(argv[1:]))
            assert code == 0, f"{shlex.join(argv)}: {capsys.readouterr().err}"
            ran.append(argv)
            continue
        assert argv[:2] == ["llm-marl", "train"], f"a README command no test runs: {argv}"
        if "--help" in argv:
            with pytest.raises(SystemExit) as exit_info:
                main(argv[1:])
            assert exit_info.value.code == 0
            assert "--num-steps" in capsys.readouterr().out
            ran.append(argv)
            continue
        steps = 3 if "--resume" in argv else 2
        code = main(_shortened(argv[1:], steps))
        err = capsys.readouterr().err
        assert code == 0, f"{shlex.join(argv)}: {err}"
        ran.append(argv)
    assert len(ran) == 1 + sum(c[0] not in NOT_RUN for c in _commands())
    assert (tmp_path / "runs" / "demo" / "checkpoints" / "step-000003").is_dir()  # extended


def _shortened_evaluation(argv: list[str]) -> list[str]:
    """An ``eval`` or ``reproduce`` command on the tiny model with a small budget (options
    typed later win)."""
    model = ["--model", "tiny"] if argv[0] == "reproduce" or "--model" in argv else []
    if argv[0] == "eval":
        small = ["--tasks", "2", "--samples", "1", "--max-new-tokens", "4", "--output", "e.json"]
    else:
        small = ["--methods", "single,sequential", "--seeds", "1", "--output-dir", "results-t"]
    return [*argv, *model, *small, "--no-progress"]


def _shape(line: str) -> str:
    """A printed line with its numbers and the run folder masked."""
    line = re.sub(r"\S*runs/demo", "RUN", line)
    return re.sub(r"[-+]?\d+(\.\d+)?", "N", line)


def test_the_demo_printout_has_the_lines_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's config, shortened to 4 steps on the tiny model, prints the README's lines
    in the README's order (numbers aside)."""
    section = TEXT[TEXT.index("### The default demo") :]
    (block,) = [b for b in _blocks("", section) if b.startswith("run: ")]
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--config", str(ROOT / "configs" / "demo.yaml"), "--eval-every", "2"]
    assert main(_shortened(argv, 4)) == 0
    printed = [_shape(line) for line in capsys.readouterr().out.splitlines()]
    shown = [_shape(line) for line in block.splitlines()]
    assert [line for line in printed if line in shown] == shown, printed


def test_the_interruption_line_is_what_a_ctrl_c_prints() -> None:
    (line,) = [b.strip() for b in _blocks("") if b.startswith("interrupted at step")]
    step = int(line.split()[3].rstrip(";"))
    command = resume_command("magrpo", MAGRPOConfig())
    assert interrupted_lines(step, Path(f"step-{step:06d}"), command) == [line]
