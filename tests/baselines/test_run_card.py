"""The run card: content hashes, versions, git commit and machine."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from llm_marl.baselines.run_card import (
    file_sha256,
    folder_sha256,
    git_commit,
    machine_info,
    machine_summary,
    package_versions,
    run_card,
    run_card_markdown,
    shown_path,
)


def _model(folder: Path, weights: bytes) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "sub" / "model.safetensors").write_bytes(weights)
    return folder


def test_folder_hash_depends_on_names_and_contents_only(tmp_path: Path) -> None:
    first = folder_sha256(_model(tmp_path / "a", b"\x00\x01"))
    assert first == folder_sha256(_model(tmp_path / "b", b"\x00\x01"))  # another place, same
    assert first["files"] == {
        "config.json": hashlib.sha256(b'{"layers": 2}').hexdigest(),
        "sub/model.safetensors": hashlib.sha256(b"\x00\x01").hexdigest(),
    }
    assert first["sha256"] != folder_sha256(_model(tmp_path / "c", b"\x00\x02"))["sha256"]
    with pytest.raises(FileNotFoundError, match=r"model folder .*missing does not exist"):
        folder_sha256(tmp_path / "missing")


def test_file_hash_reads_large_files_in_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # over two 1 MiB chunks
    (tmp_path / "big.bin").write_bytes(data)
    assert file_sha256(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()


def test_versions_and_git() -> None:
    versions = package_versions(["numpy", "no-such-distribution-xyz"])
    assert re.match(r"\d+\.\d+", versions["numpy"] or "")
    assert versions["no-such-distribution-xyz"] is None
    project = Path(__file__).resolve().parents[2]
    git = git_commit()
    if (project / ".git").exists():  # a checkout (CI's clean clone is one)
        assert git is not None and re.fullmatch(r"[0-9a-f]{40}", git["commit"])
        assert isinstance(git["dirty"], bool)


def test_outside_a_checkout_there_is_no_commit(tmp_path: Path) -> None:
    if git_commit(tmp_path) is not None:
        pytest.skip(f"{tmp_path} lies inside a git checkout on this machine")
    card = run_card({"a": 1}, [], None)
    card["git"] = git_commit(tmp_path)
    assert "- git commit: none (not run from a git checkout)" in run_card_markdown(card)


def test_machine() -> None:
    machine = machine_info()
    assert machine["cores"] >= 1 and machine["cpu"]
    line = machine_summary({"cpu": "Some CPU", "cores": 2, "ram_gb": 8.0, "gpu": None})
    assert line == "Some CPU, 2 cores, 8.0 GiB RAM, no GPU"


def test_paths_on_a_card_do_not_name_the_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Project files show relative to the checkout, home files under ``~``: two clones in
    different folders write the same card."""
    import llm_marl

    bundled = Path(llm_marl.__file__).parent / "data" / "__init__.py"
    assert shown_path(bundled) == "llm_marl/data/__init__.py"
    monkeypatch.setenv("HOME", str(tmp_path))
    model = _model(tmp_path / "cache" / "model", b"w")
    assert shown_path(model) == "~/cache/model"
    card = run_card({}, [bundled], model)
    assert list(card["data"]) == ["llm_marl/data/__init__.py"]
    assert card["model"]["path"] == "~/cache/model"
