"""Checkpoints: a manifest of sizes, hashes and settings; verified on resume, with fall-back."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from llm_marl.baselines import MAGRPOConfig, MAGRPOTrainer
from llm_marl.baselines.checkpoint import DamagedCheckpoint, load_trainer_state
from llm_marl.baselines.storage import storage_error
from llm_marl.cli import main

RUN = "magrpo-digits_v0-seed0"
SETTINGS = {"num_steps": 2, "checkpoint_every": 1, "learning_rate": 1e-2}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step run with checkpoints at steps 1 and 2, trained once per module."""
    from toy_env import parallel_env

    import llm_marl

    llm_marl.register("digits_v0", parallel_env, override=True)
    out = tmp_path_factory.mktemp("template")
    fast = {"env": "digits_v0", "model": "tiny", "num_generations": 4, "max_new_tokens": 8}
    MAGRPOTrainer(MAGRPOConfig(**fast, **SETTINGS, output_dir=str(out), progress=False)).train()
    return out / RUN


@pytest.fixture
def run(template: Path, fast: dict[str, Any]) -> Path:
    """A fresh copy of the template run, at the path the run's settings name."""
    target = Path(template.parent) / RUN
    backup = template.parent / "backup"
    if not backup.exists():
        shutil.copytree(template, backup)
    shutil.rmtree(target)
    shutil.copytree(backup, target)
    fast["output_dir"] = str(target.parent)
    return target


def _resume(fast: dict[str, Any], **changes: Any) -> MAGRPOTrainer:
    return MAGRPOTrainer(
        MAGRPOConfig(**{**fast, **SETTINGS, "num_steps": 3, **changes}, resume=True)
    )


def test_the_manifest_lists_every_file_with_its_size_and_hash_and_the_settings(run: Path) -> None:
    newest = run / "checkpoints" / "step-000002"
    manifest = json.loads((newest / "checkpoint.json").read_text())
    files = sorted(
        p.relative_to(newest).as_posix()
        for p in newest.rglob("*")
        if p.is_file() and p.name != "checkpoint.json"
    )
    assert sorted(manifest["files"]) == files
    assert "team/left_0/adapter_model.safetensors" in files and "trainer_state.pt" in files
    for name, entry in manifest["files"].items():
        data = (newest / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["settings"] == yaml.safe_load((run / "config.yaml").read_text())
    assert manifest["optimizer_states"] == {"left_0": 8, "right_1": 8}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100:] = bytes(b ^ 0xFF for b in data[-100:])  # same size, weights turned to garbage
    path.write_bytes(bytes(data))


def _empty_optimizer_states(path: Path) -> None:
    state = torch.load(path, weights_only=False)
    for optimizer in state["optimizers"].values():
        optimizer["state"] = {}
    torch.save(state, path)


def _empty_folder(path: Path) -> None:
    shutil.rmtree(path)
    path.mkdir()


DAMAGES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "truncated state": ("trainer_state.pt", _truncate, r"trainer_state.pt has \d+ bytes"),
    "empty optimiser states": ("trainer_state.pt", _empty_optimizer_states, "trainer_state.pt"),
    "corrupted adapter": (
        "team/left_0/adapter_model.safetensors",
        _flip,
        "adapter_model.safetensors does not match the SHA-256",
    ),
    "deleted adapter": (
        "team/right_1/adapter_model.safetensors",
        Path.unlink,
        "right_1/adapter_model.safetensors is missing",
    ),
    "emptied team": ("team", _empty_folder, "team/"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(
    damage: str, run: Path, fast: dict[str, Any]
) -> None:
    part, spoil, named = DAMAGES[damage]
    spoil(run / "checkpoints" / "step-000002" / part)
    with pytest.warns(UserWarning, match=f"checkpoint step-000002 is not usable: .*{named}"):
        trainer = _resume(fast)
    assert trainer.step == 1
    records = trainer.train().metrics  # steps 2 and 3 again, from the intact step 1
    assert [r["step"] for r in records] == [1, 2, 3]


def test_no_intact_checkpoint_left_is_an_error(run: Path, fast: dict[str, Any]) -> None:
    for step in ("step-000001", "step-000002"):
        _truncate(run / "checkpoints" / step / "trainer_state.pt")
    state = run / "checkpoints" / "step-000002" / "trainer_state.pt"
    message = re.escape(
        f"holds 2 checkpoints, but none is intact (the newest, step-000002: {state}"
    )
    message += r" has \d+ bytes, its manifest says \d+\); restore the damaged files .* --overwrite"
    with pytest.warns(UserWarning, match="step-000001 is not usable"):  # (and step 2)
        with pytest.raises(FileNotFoundError, match=message) as caught:
            _resume(fast)
    assert "before its first one" not in str(caught.value)


def test_the_command_line_prints_each_fall_back_as_one_warning_line(
    run: Path, fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """No source line under each warning; then the one-line error, exit status 2."""
    for step in ("step-000001", "step-000002"):
        _truncate(run / "checkpoints" / step / "trainer_state.pt")
    argv = ["train", "--resume", "--num-steps", "3", "--output-dir", fast["output_dir"]]
    assert main([*argv, "--env", "digits_v0", "--run-name", RUN]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[:3] for line in lines[:2]] == [
        ["llm-marl train", " warning", f" checkpoint step-00000{step} is not usable"]
        for step in (2, 1)
    ]
    assert len(lines) == 3 and "none is intact" in lines[2]


def test_resume_before_the_first_checkpoint_says_so(run: Path, fast: dict[str, Any]) -> None:
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match="the run stopped before its first one"):
        _resume(fast)


def test_resume_without_config_yaml_keeps_the_checkpoints_settings(
    run: Path, fast: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    (run / "config.yaml").unlink()
    manifest = run / "checkpoints" / "step-000002" / "checkpoint.json"
    with pytest.raises(ValueError, match=r"learning_rate=0.5 \(saved 0.01\).*"):
        _resume(fast, learning_rate=0.5)
    with pytest.raises(ValueError, match=str(manifest)):
        _resume(fast, learning_rate=0.5)
    assert not (run / "config.yaml").exists()  # nothing rewritten
    argv = ["train", "--resume", "--num-steps", "3", "--output-dir", fast["output_dir"]]
    assert main([*argv, "--env", "digits_v0", "--run-name", RUN]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["learning_rate"], saved["checkpoint_every"], saved["num_steps"]) == (0.01, 1, 3)
    assert main([*argv, "--env", "digits_v0", "--run-name", RUN, "--seed", "3"]) == 2
    assert "seed=3 (saved 0)" in capsys.readouterr().err


def test_the_logprob_batch_size_is_kept_on_resume(run: Path, fast: dict[str, Any]) -> None:
    """Batches of other sizes round the log-probs differently: a resume would not be the run."""
    with pytest.raises(ValueError, match=r"logprob_batch_size=2 \(saved None\)"):
        _resume(fast, logprob_batch_size=2)


def test_optimiser_states_that_lost_entries_are_refused(run: Path) -> None:
    """A writer that lost the states (the manifest rewritten to match) is still caught."""
    newest = run / "checkpoints" / "step-000002"
    _empty_optimizer_states(newest / "trainer_state.pt")
    with pytest.raises(DamagedCheckpoint, match="optimiser 'left_0' holds 0 parameter states"):
        load_trainer_state(newest)


@pytest.mark.parametrize("writer", ["torch", "python"])
def test_a_full_disk_is_said_as_such_whatever_library_wrote(writer: str, tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC, as a full disk does (safetensors is not tried
    here: it writes a temporary file and renames it over its target)."""
    tensors = {"w": torch.zeros(100_000)}
    try:
        if writer == "torch":
            torch.save(tensors, "/dev/full")  # says "unexpected pos ..."
        else:
            with open("/dev/full", "w") as f:
                f.write("x" * 100_000)
    except Exception as error:
        found = storage_error(error, tmp_path)
    else:
        pytest.fail("writing /dev/full succeeded")
    assert isinstance(found, OSError) and found.errno == 28
    assert str(found).startswith(f"no space left on device: writing {tmp_path} failed (")


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and (
        subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
    )


_TRAIN = (
    "import sys\n"
    "sys.path.insert(0, {tests!r})\n"
    "import llm_marl\n"
    "from toy_env import parallel_env\n"
    "from llm_marl.cli import main\n"
    "llm_marl.register('digits_v0', parallel_env, override=True)\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _train_on_a_small_mount(
    folder: Path, mount: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """``llm-marl train`` into ``folder``, a tmpfs mounted with ``mount`` options in a private
    mount namespace (no root needed where user namespaces are allowed)."""
    folder.mkdir()
    code = _TRAIN.format(tests=str(Path(__file__).parent))
    argv = [sys.executable, "-c", code, "train", "--env", "digits_v0", "--no-progress"]
    argv += ["--max-new-tokens", "8", "--num-generations", "4", "--output-dir", str(folder)]
    script = 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"'
    command = ["unshare", "-rm", "sh", "-c", script, "sh", mount, str(folder), *argv, *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm (user namespaces)")
@pytest.mark.parametrize(
    ("size", "failing"),
    [
        ("8k", "magrpo-digits_v0-seed0 failed ("),  # the run log: Python's own ENOSPC
        ("64k", ".partial-step-000001 failed (0.0 MiB free; Error while serializing"),  # adapter
        ("128k", ".partial-step-000001 failed (0.0 MiB free; [enforce fail"),  # torch: state
    ],
)
def test_a_full_disk_ends_the_run_with_one_line(size: str, failing: str, tmp_path: Path) -> None:
    """Each size runs out in another writer; a checkpoint is about 250 KB."""
    options = ("--model", "tiny", "--num-steps", "1")
    done = _train_on_a_small_mount(tmp_path / "small", f"size={size}", *options)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("llm-marl train: error: no space left on device: ")
    assert failing in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm (user namespaces)")
def test_a_read_only_output_folder_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    done = _train_on_a_small_mount(tmp_path / "ro", "ro", "--model", "/no/such/model")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("llm-marl train: error: output folder is not writable: ")
    assert "Read-only file system" in done.stderr and done.stderr.count("\n") == 1
