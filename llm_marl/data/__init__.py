"""Task data: the bundled sample sets and loaders for hub ids and local files."""

from llm_marl.data.loading import (
    BUNDLED,
    SingleFileSplitWarning,
    bundled_path,
    load_records,
    read_jsonl,
)
from llm_marl.data.validation import DataFileError, check_data_file

__all__ = [
    "BUNDLED",
    "DataFileError",
    "SingleFileSplitWarning",
    "bundled_path",
    "check_data_file",
    "load_records",
    "read_jsonl",
]
