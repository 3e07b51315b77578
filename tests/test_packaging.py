"""The wheel ships every package folder and every bundled data file (CI only sees editable)."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_listed() -> None:
    """Each folder with an __init__.py under a mapped package is in `packages`, and back."""
    found = set()
    for package, folder in CONFIG["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert set(CONFIG["packages"]) == found


def test_package_data_covers_every_bundled_file() -> None:
    """Every file under llm_marl/data/samples matches a package-data pattern."""
    patterns = CONFIG["package-data"]["llm_marl.data"]
    data_root = ROOT / "llm_marl" / "data"
    files = [p.relative_to(data_root).as_posix() for p in (data_root / "samples").rglob("*")]
    files = [f for f in files if (data_root / f).is_file()]
    assert files
    unmatched = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert unmatched == []


def test_the_wheel_builds_quietly_with_every_data_file(tmp_path: Path) -> None:
    """Building the wheel warns about nothing (setuptools used to print about 40 lines per
    bundled data folder, taking it for a package) and still ships every bundled file."""
    source = tmp_path / "src"  # a copy: setuptools writes build/ and *.egg-info beside sources
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--no-cache-dir", "--disable-pip-version-check", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    assert "Warning" not in build.stdout + build.stderr
    (wheel,) = out.glob("*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".jsonl")}
    bundled = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "llm_marl" / "data" / "samples").rglob("*")
    }
    assert shipped == {b for b in bundled if b.endswith(".jsonl")}
