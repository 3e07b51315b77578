"""Malformed local data files fail with a DataFileError naming the file, the line and the fix.

Every file is written to tmp_path and read through the real loaders (``datasets``, ``pyarrow``).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import llm_marl
from llm_marl.data import DataFileError, bundled_path, load_records, read_jsonl

RECORD = {"article_id": "x-1", "abstract_text": "We study the things.", "token_count": 4}
LINE = json.dumps(RECORD) + "\n"


def parquet_bytes(records: list[dict]) -> bytes:
    table = pa.Table.from_pylist(records, schema=pa.Table.from_pylist([RECORD]).schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def corrupt_pages(data: bytes) -> bytes:
    """A Parquet file whose footer (metadata) is intact but whose data pages are overwritten."""
    return data[:8] + b"\xab" * 300 + data[308:]


#: (file name, file bytes, line named or None, words the message must hold)
MALFORMED: list[tuple[str, bytes, int | None, str]] = [
    ("empty.jsonl", b"", None, "no records: the file is empty or blank"),
    ("blank.jsonl", b"\n  \n", None, "no records: the file is empty or blank"),
    ("cut.jsonl", (LINE + LINE[:25]).encode(), 2, "not valid JSON .*truncated"),
    ("nul.jsonl", (LINE + "\0\0" + LINE).encode(), 2, "NUL byte .*re-save it as UTF-8"),
    ("bom16.jsonl", (LINE * 2).encode("utf-16"), None, "UTF-16 encoded.*re-save it as UTF-8"),
    ("utf16le.jsonl", (LINE * 2).encode("utf-16-le"), 1, "NUL byte .*UTF-16"),
    ("utf32.jsonl", LINE.encode("utf-32"), None, "UTF-32 encoded.*re-save it as UTF-8"),
    (
        "latin1.jsonl",
        (LINE + json.dumps({**RECORD, "abstract_text": "café"}, ensure_ascii=False) + "\n").encode(
            "latin-1"
        ),
        2,
        "not valid UTF-8 .*latin-1.*re-save it as UTF-8",
    ),
    ("array.jsonl", b"[1, 2]\n", 1, "expected a JSON object"),
    ("twice.jsonl", LINE.encode() + b'{"a": 1, "a": 2}\n', 2, "key 'a' twice"),
    ("empty.json", b"", None, "no records: the file is empty"),
    ("none.json", b"[]", None, "no records: the JSON array is empty"),
    ("cut.json", f"[\n{LINE},\n{LINE[:20]}".encode(), 4, "not valid JSON .*truncated"),
    ("strings.json", b'["a", "b"]', None, "item 1 of the JSON array is a string"),
    ("lines.json", (LINE + "{oops\n").encode(), 2, "not valid JSON.*one complete object per line"),
    ("ragged.csv", b"abstract,title\nA b.,T\nc,d,e\n", 3, r"3 fields but the header .* has 2"),
    ("short.csv", b"abstract,title\nA b.,T\n\nc\n", 4, r"1 fields but the header .* has 2"),
    ("quote.csv", b'abstract,title\nA b.,"T\nc,d\n', 2, "quoted field .* never closed"),
    ("latin1.csv", "abstract,title\ncafé,T\n".encode("latin-1"), 2, "not valid UTF-8"),
    ("empty.csv", b"", None, "no records: the file is empty"),
    ("header.csv", b"abstract,title\n", None, "no records: a header but no rows"),
    ("none.parquet", parquet_bytes([]), None, "no records: the Parquet file has 0 rows"),
    ("cut.parquet", parquet_bytes([RECORD])[:-20], None, "not a readable Parquet file"),
    (
        "pages.parquet",
        corrupt_pages(parquet_bytes([{**RECORD, "abstract_text": "x" * 400}] * 20)),
        None,
        "datasets could not read it as parquet",
    ),
]


@pytest.mark.parametrize(("name", "content", "line", "words"), MALFORMED, ids=lambda v: str(v))
def test_malformed_file_names_file_line_and_fix(
    tmp_path: Path, name: str, content: bytes, line: int | None, words: str
) -> None:
    """Each malformed file raises a DataFileError (a ValueError) at its file and line."""
    path = tmp_path / name
    path.write_bytes(content)
    where = f"{path}:{line}: " if line else f"{path}: "
    with pytest.raises(DataFileError, match=words) as caught:
        load_records(path, split="train", bundled="arxiv")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(where)
    assert (caught.value.path, caught.value.line) == (str(path), line)


def test_an_empty_file_does_not_silently_end_a_loop(tmp_path: Path) -> None:
    """An empty JSONL file among good ones fails the loop (it used to stop map() early)."""
    good = tmp_path / "good.jsonl"
    good.write_text(LINE, "utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")

    def make(path: Path) -> object:
        return llm_marl.make("arxiv_v0", data=str(path))

    with pytest.raises(DataFileError, match="empty"):
        list(map(make, [good, empty, good]))


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("bom.jsonl", lambda p: p.write_bytes(b"\xef\xbb\xbf" + LINE.encode())),
        ("bom.csv", lambda p: p.write_bytes(b"\xef\xbb\xbfabstract_text,article_id\nA b.,x-1\n")),
        ("lines.json", lambda p: p.write_text(LINE + "\n" + LINE.replace("x-1", "x-2"), "utf-8")),
        ("array.json", lambda p: p.write_text(json.dumps([RECORD], indent=2), "utf-8")),
        (
            "quoted.csv",
            lambda p: p.write_text(
                'abstract_text,article_id\n"Line one,\nline ""two""",x-1\n\nMore.,x-2\n', "utf-8"
            ),
        ),
    ],
)
def test_well_formed_variants_still_load(
    tmp_path: Path, name: str, write: Callable[[Path], object]
) -> None:
    """A UTF-8 BOM, JSON lines in .json, a JSON array, quoted CSV fields and blank lines load."""
    path = tmp_path / name
    write(path)
    env = llm_marl.make("arxiv_v0", data=str(path))
    assert env.tasks[0].task_id == "x-1"


def test_bundled_reader_names_the_line(tmp_path: Path) -> None:
    """read_jsonl (the stdlib reader of the bundled samples) raises the same errors."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(LINE.encode() + "é\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"bad\.jsonl:2: not valid UTF-8"):
        read_jsonl(path)


def test_data_file_error_survives_pickling(tmp_path: Path) -> None:
    """The error crosses process boundaries (worker pools) with its message and fields."""
    error = DataFileError(tmp_path / "a.jsonl", "not valid JSON; fix the line", 3)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.path, copy.line) == (str(error), error.path, 3)


def test_coding_record_without_asserts_is_refused(tmp_path: Path) -> None:
    """A coding record whose check() asserts nothing is refused, naming the record."""
    record = read_jsonl(bundled_path("coophumaneval", "test"))[0]
    hollow = {**record, "task_id": "hollow", "test": "def check(candidate):\n    print(1)\n"}
    path = tmp_path / "coding.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(hollow) + "\n", "utf-8")
    with pytest.raises(ValueError, match=r"record 1 \(hollow\) of .*coding\.jsonl.* no assert"):
        llm_marl.make("coophumaneval_v0", data=str(path))
