"""Check a local data file before it is loaded, so that a malformed one fails with its name.

HuggingFace ``datasets`` reports a broken file as a bare ``DatasetGenerationError`` (or, for
an empty JSON file, a ``StopIteration`` that silently ends the caller's loop), naming neither
the file nor the line. :func:`check_data_file` reads the file once with the standard library
(and ``pyarrow`` for Parquet) and raises a :class:`DataFileError` that names the file, the line
where one applies, what is wrong and how to fix it.

Accepted formats (text files are UTF-8, an optional UTF-8 byte-order mark is allowed):

- ``.jsonl``: one JSON object per line; blank lines are skipped.
- ``.json``: a JSON array of objects, or one JSON object per line (as ``Dataset.to_json``
  writes).
- ``.csv``: comma-separated, a header row, then rows with as many fields as the header
  (quote fields holding commas or line breaks); blank lines are skipped.
- ``.parquet``: a Parquet file with at least one row.

Every format needs at least one record.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["DataFileError", "check_data_file", "jsonl_records", "utf8_lines"]

_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_RESAVE = "re-save it as UTF-8 (for example `iconv -f {enc} -t UTF-8 in > out`)"


class DataFileError(ValueError):
    """A local data file that cannot be read as task records.

    The message reads ``<path>:<line>: <what is wrong>; <how to fix it>`` (without the line
    where none applies); :attr:`path` and :attr:`line` hold the same facts for programs.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, line: int | None = None):
        """``problem`` says what is wrong and how to fix it; ``line`` is 1-based."""
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the constructor's arguments (worker processes send errors back)."""
        return (type(self), (self.path, self.problem, self.line))


def utf8_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of a UTF-8 text file, line ending kept.

    Raises :class:`DataFileError` for a UTF-16/UTF-32 file, a NUL byte (binary data, or
    UTF-16 without a byte-order mark) and bytes that are not UTF-8 (latin-1, cp1252).
    """
    with open(path, "rb") as handle:
        head = handle.read(4)
        for bom, encoding in _UTF16_32_BOMS:
            if head.startswith(bom):
                raise DataFileError(
                    path,
                    f"the file is {encoding} encoded (it starts with a {encoding} byte-order "
                    f"mark), but data files must be UTF-8: {_RESAVE.format(enc=encoding)}",
                )
        handle.seek(0)
        for line_no, raw in enumerate(handle, 1):
            if line_no == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            yield line_no, _decoded(path, line_no, raw)


def _decoded(path: str | os.PathLike[str], line_no: int, raw: bytes) -> str:
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataFileError(
            path,
            f"NUL byte (0x00) at column {nul + 1}: the file is binary, or "
            "UTF-16/UTF-32 text without a byte-order mark, not UTF-8 text; remove the NUL "
            f"bytes or {_RESAVE.format(enc='UTF-16')}",
            line_no,
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFileError(
            path,
            f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); the "
            f"file is probably latin-1 or cp1252 encoded: {_RESAVE.format(enc='latin1')}",
            line_no,
        ) from None


def jsonl_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of each non-blank line of a JSON-lines file.

    Raises :class:`DataFileError` naming the line for text that is not UTF-8, a line that is
    not JSON (a cut-off last line means a truncated file), a key given twice in one object
    and a line that is not an object.
    """
    for line_no, line in utf8_lines(path):
        if line.strip():
            yield line_no, _json_object(path, line_no, line, _JSONL_SHAPE)


_JSONL_SHAPE = (
    "each line must hold one complete JSON object (a line cut short means the file was "
    "truncated): fix or remove the line"
)
_JSON_LINES_SHAPE = "a .json file holds a JSON array of objects, or one complete object per line"
_JSON_ARRAY_SHAPE = (
    "the file must hold one JSON array of objects (an array cut short means the file was truncated)"
)


class _DuplicateKeyError(ValueError):
    """A JSON object names one key twice (``json`` keeps the last, ``pyarrow`` refuses)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateKeyError(key)
        record[key] = value
    return record


def _loads(path: str | os.PathLike[str], text: str, line_no: int | None, shape: str) -> Any:
    """``text`` parsed as JSON; ``line_no`` is its line in the file (None: it is the file)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise DataFileError(
            path,
            f"not valid JSON ({err.msg} at column {err.colno}); {shape}",
            err.lineno if line_no is None else line_no,
        ) from None
    except _DuplicateKeyError as err:
        raise DataFileError(
            path, f"an object has the key {err.args[0]!r} twice: keep one of them", line_no
        ) from None


def _json_object(
    path: str | os.PathLike[str], line_no: int, line: str, shape: str
) -> dict[str, Any]:
    record = _loads(path, line, line_no, shape)
    if not isinstance(record, dict):
        raise DataFileError(
            path,
            f"expected a JSON object {{...}} per line, got {_json_kind(record)} "
            f"{json.dumps(record)[:60]}: write one record object per line",
            line_no,
        )
    return record


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def check_data_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`DataFileError` unless ``path`` holds records in its suffix's format.

    The formats are those of this module's docstring; an unknown suffix is not checked here.
    """
    checks = {".jsonl": _check_jsonl, ".json": _check_json, ".csv": _check_csv}
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        _check_parquet(path)
    elif suffix in checks:
        checks[suffix](path)


def _no_records(path: str | os.PathLike[str], what: str, fix: str) -> DataFileError:
    return DataFileError(path, f"no records: {what}; {fix}, or pass another file")


def _check_jsonl(path: str | os.PathLike[str]) -> None:
    if sum(1 for _ in jsonl_records(path)) == 0:  # reads every line: a bad one raises
        raise _no_records(path, "the file is empty or blank", "write one JSON object per line")


def _check_json(path: str | os.PathLike[str]) -> None:
    lines = list(utf8_lines(path))
    text = "".join(line for _, line in lines)
    if not text.strip():
        raise _no_records(path, "the file is empty", "write a JSON array of objects")
    if not text.lstrip().startswith("["):
        for line_no, line in lines:
            if line.strip():
                _json_object(path, line_no, line, _JSON_LINES_SHAPE)
        return
    items = _loads(path, text, None, _JSON_ARRAY_SHAPE)
    if not items:
        raise _no_records(path, "the JSON array is empty", "put record objects in it")
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise DataFileError(
                path,
                f"item {number} of the JSON array is {_json_kind(item)}, not an object "
                "{...}: the array must hold one record object per item",
            )


def _check_csv(path: str | os.PathLike[str]) -> None:
    reader = csv.reader((line for _, line in utf8_lines(path)), strict=True)
    header: list[str] | None = None
    rows, row_start = 0, 1
    while True:
        try:
            row = next(reader, None)
        except csv.Error as err:
            unclosed = "unexpected end of data" in str(err)
            what = "a quoted field opened in this row is never closed" if unclosed else str(err)
            raise DataFileError(
                path,
                f"bad quoting ({what}): a quoted field ends with a quote followed by a comma "
                'or the line end, and a quote inside it is doubled ("say ""hi""")',
                row_start,
            ) from None
        if row is None:
            break
        if row and header is None:
            header = row
        elif row and len(row) != len(header or ()):
            raise DataFileError(
                path,
                f"the row has {len(row)} fields but the header (line 1) has {len(header or ())}; "
                "give every row the header's number of fields, and quote fields that hold "
                'commas or line breaks ("a, b")',
                row_start,
            )
        elif row:
            rows += 1
        row_start = reader.line_num + 1  # blank lines (empty rows) are skipped
    if header is None:
        raise _no_records(path, "the file is empty", "write a header row, then one row a record")
    if rows == 0:
        raise _no_records(path, "a header but no rows", "write one row per record")


def _check_parquet(path: str | os.PathLike[str]) -> None:
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError or others by fault
        raise DataFileError(
            path,
            f"not a readable Parquet file ({err}); check that it was copied completely, or "
            "write it again (pyarrow.parquet.write_table, pandas DataFrame.to_parquet)",
        ) from None
    if rows == 0:
        raise _no_records(path, "the Parquet file has 0 rows", "write the records into it")
