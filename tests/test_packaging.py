"""The wheel ships every package folder and every bundled data file (CI only sees editable)."""

from __future__ import annotations

import fnmatch
import tomllib
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
