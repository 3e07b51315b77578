"""Loaders: the bundled samples, local JSONL/JSON/CSV/Parquet files and folders, hub ids."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import llm_marl
from llm_marl.data import SingleFileSplitWarning, bundled_path, load_records, read_jsonl

TLDR_RECORD = {
    "prompt": "SUBREDDIT: r/cats\n\nTITLE: My cat [3 F] hides at night\n\nPOST: Every night "
    "she hides under the bed and only comes out at dawn — is that normal?\n\nTL;DR:",
    "completion": " Cat hides under the bed at night, is it normal?",
}
ARXIV_RECORD = {"article_id": "x-1", "abstract_text": "We  study\nthe things.", "token_count": 4}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


@pytest.mark.parametrize("task", ["tldr", "arxiv"])
def test_bundled_samples_have_enough_items(task: str) -> None:
    """Each bundled sample has at least 48 train and 16 test items."""
    assert len(read_jsonl(bundled_path(task, "train"))) >= 48
    assert len(read_jsonl(bundled_path(task, "test"))) >= 16


def test_bundled_samples_use_the_hub_schemas() -> None:
    """The bundled files have the columns of trl-lib/tldr and OpenMLRL/arXiv_abstract."""
    tldr = read_jsonl(bundled_path("tldr", "train"))
    assert all(set(r) == {"prompt", "completion"} for r in tldr)
    assert all(r["prompt"].startswith("SUBREDDIT: r/") for r in tldr)
    arxiv = read_jsonl(bundled_path("arxiv", "test"))
    assert all(set(r) == {"article_id", "abstract_text", "token_count"} for r in arxiv)
    assert all(r["token_count"] == len(r["abstract_text"].split()) for r in arxiv)


def test_local_jsonl_file_loads_through_datasets(tmp_path: Path) -> None:
    """A local JSONL file in the hub schema loads, and the env parses it."""
    path = write_jsonl(tmp_path / "mine.jsonl", [TLDR_RECORD, {**TLDR_RECORD, "id": "b"}])
    assert load_records(path, split="train", bundled="tldr") == [
        {**TLDR_RECORD, "id": None},
        {**TLDR_RECORD, "id": "b"},
    ]
    env = llm_marl.make("tldr_v0", data=str(path))
    assert [t.task_id for t in env.tasks] == ["train-00000", "b"]
    task = env.tasks[0]
    assert task.heading == "r/cats: My cat [3 F] hides at night"
    assert task.document.startswith("Every night") and task.document.endswith("normal?")
    assert task.reference == "Cat hides under the bed at night, is it normal?"
    assert env.data_source == str(path)


def test_limit_reads_only_the_first_rows(tmp_path: Path) -> None:
    """max_tasks keeps the first rows of a local file."""
    records = [{**ARXIV_RECORD, "article_id": f"id-{i}"} for i in range(7)]
    path = write_jsonl(tmp_path / "seven.jsonl", records)
    assert [
        r["article_id"] for r in load_records(path, split="train", bundled="arxiv", limit=3)
    ] == [
        "id-0",
        "id-1",
        "id-2",
    ]
    assert len(llm_marl.make("arxiv_v0", data=str(path), max_tasks=5).tasks) == 5


def test_local_parquet_and_csv_files_load(tmp_path: Path) -> None:
    """Parquet and CSV files load too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([ARXIV_RECORD]), tmp_path / "a.parquet")
    env = llm_marl.make("arxiv_v0", data=tmp_path / "a.parquet")
    assert env.tasks[0].task_id == "x-1" and env.tasks[0].document == "We study the things."
    (tmp_path / "a.csv").write_text("abstract,title\nShort abstract here.,A title\n", "utf-8")
    env = llm_marl.make("arxiv_v0", data=str(tmp_path / "a.csv"))
    assert env.tasks[0].document == "Short abstract here." and env.tasks[0].heading == "A title"


def test_local_folder_resolves_the_split(tmp_path: Path) -> None:
    """A folder with <split>.jsonl files gives each split its own file."""
    write_jsonl(tmp_path / "train.jsonl", [ARXIV_RECORD])
    write_jsonl(tmp_path / "test.jsonl", [{**ARXIV_RECORD, "article_id": "held-out"}])
    assert llm_marl.make("arxiv_v0", data=tmp_path, split="test").tasks[0].task_id == "held-out"
    with pytest.raises(ValueError, match="no file for split 'validation'"):
        llm_marl.make("arxiv_v0", data=tmp_path, split="validation")


def test_records_without_the_needed_column_are_a_clear_error(tmp_path: Path) -> None:
    """A record without any usable text column names the columns it has."""
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "what?"}])
    with pytest.raises(ValueError, match=r"no abstract.*found columns \['question'\]"):
        llm_marl.make("arxiv_v0", data=str(path))


def test_bad_paths_are_clear_errors(tmp_path: Path) -> None:
    """A missing path, an unknown suffix and a broken JSONL line are named."""
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_records(str(tmp_path / "missing.jsonl"), split="train", bundled="tldr")
    (tmp_path / "data.txt").write_text("hello", "utf-8")
    with pytest.raises(ValueError, match=r"unknown suffix '\.txt'"):
        load_records(tmp_path / "data.txt", split="train", bundled="tldr")
    (tmp_path / "broken.jsonl").write_text('{"a": 1}\n{oops\n', "utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: not valid JSON"):
        read_jsonl(tmp_path / "broken.jsonl")


def test_hub_id_offline_fails_with_guidance(tmp_path: Path) -> None:
    """A hub id that cannot be fetched (offline, empty cache) says what to do instead."""
    code = (
        "from llm_marl.data import load_records\n"
        "try:\n    load_records('trl-lib/tldr', split='test', bundled='tldr')\n"
        "except RuntimeError as err:\n    print(err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "could not load split 'test' of the hub data set 'trl-lib/tldr'" in result.stdout
    assert "pass a local path" in result.stdout


def test_single_file_as_test_split_warns_of_training_data(tmp_path: Path) -> None:
    """A single file used as the test split warns (naming the file); train and folders do not."""
    path = write_jsonl(tmp_path / "only.jsonl", [ARXIV_RECORD])
    with pytest.warns(SingleFileSplitWarning, match=r"only\.jsonl.*training data.*folder"):
        llm_marl.make("arxiv_v0", data=str(path), split="test")
    write_jsonl(tmp_path / "train.jsonl", [ARXIV_RECORD])
    write_jsonl(tmp_path / "test.jsonl", [ARXIV_RECORD])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingleFileSplitWarning)
        llm_marl.make("arxiv_v0", data=str(path))
        llm_marl.make("arxiv_v0", data=tmp_path, split="test")
    assert issubclass(SingleFileSplitWarning, UserWarning)


def test_home_and_variables_are_expanded_in_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`~` is expanded in str and Path sources, `$VAR` in str sources; misses show both."""
    write_jsonl(tmp_path / "mine.jsonl", [ARXIV_RECORD])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LLM_MARL_TEST_DATA", str(tmp_path))
    monkeypatch.delenv("LLM_MARL_UNSET", raising=False)
    for source in ("~/mine.jsonl", Path("~/mine.jsonl"), "$LLM_MARL_TEST_DATA/mine.jsonl"):
        assert load_records(source, split="train", bundled="arxiv")[0]["article_id"] == "x-1"
    assert llm_marl.make("arxiv_v0", data="~/mine.jsonl").tasks[0].task_id == "x-1"
    expanded = re.escape(repr(str(tmp_path / "gone.jsonl")))
    with pytest.raises(FileNotFoundError, match=rf"'~/gone\.jsonl' \(expanded to {expanded}\)"):
        load_records("~/gone.jsonl", split="train", bundled="arxiv")
    with pytest.raises(
        FileNotFoundError, match=r"no such file or folder: '\$LLM_MARL_UNSET/a\.jsonl'$"
    ):
        load_records("$LLM_MARL_UNSET/a.jsonl", split="train", bundled="arxiv")
