"""Task data: the bundled sample sets and loaders for hub ids and local files."""

from llm_marl.data.loading import BUNDLED, bundled_path, load_records, read_jsonl

__all__ = ["BUNDLED", "bundled_path", "load_records", "read_jsonl"]
