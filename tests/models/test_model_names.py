"""Model names and devices that cannot work fail at once, saying what to use instead; generated
text never ends in half a character; saved teams carry our own short card."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from llm_marl.models import load_model, load_policy
from llm_marl.models.generation import decode_text
from llm_marl.models.loading import progress_bars, resolve_device


@pytest.mark.parametrize(("typo", "meant"), [("embeded", "embedded"), ("tiyn", "tiny")])
def test_a_mistyped_built_in_model_gets_a_suggestion(typo: str, meant: str) -> None:
    with pytest.raises(ValueError, match=f"unknown model '{typo}'; did you mean '{meant}'"):
        load_model(typo)


def test_devices_this_torch_cannot_use_are_refused_before_loading() -> None:
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda:0' is not available"):
            load_model("tiny", device="cuda:0")
    assert resolve_device("cpu") == "cpu"


def _byte_level_tokenizer():  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer without merges: every UTF-8 byte is one token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    backend = Tokenizer(models.BPE({c: i for i, c in enumerate(sorted(alphabet))}, []))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def test_text_cut_in_the_middle_of_a_character_drops_the_half_character() -> None:
    tokenizer = _byte_level_tokenizer()
    ids = tokenizer("ok \U0001f600")["input_ids"]  # the emoji is 4 byte tokens
    assert len(ids) == 7
    assert tokenizer.decode(ids[:5]).endswith("\ufffd")  # what generation stopping there gives
    assert decode_text(tokenizer, ids[:5]) == "ok "
    assert decode_text(tokenizer, ids) == "ok \U0001f600"


def test_a_saved_team_has_our_own_card_and_no_peft_boilerplate(tmp_path: Path) -> None:
    for separate in (False, True):
        root = load_policy("tiny", agents=["a_0", "b_1"], separate=separate).save_pretrained(
            tmp_path / f"team-{separate}"
        )
        cards = sorted(p.relative_to(root).as_posix() for p in root.rglob("README.md"))
        assert cards == ["README.md"]
        card = (root / "README.md").read_text()
        assert card.startswith("# llm-marl team\n") and "`a_0/`" in card and "`b_1/`" in card
        assert "Model Card" not in card and str(Path.home()) not in card
        assert json.loads((root / "team.json").read_text())["agents"]  # still reloadable


def test_a_folder_base_model_is_named_by_its_last_part_on_the_card(tmp_path: Path) -> None:
    folder = load_policy("tiny", agents=["a_0"], lora=None).save_pretrained(tmp_path / "base")
    root = load_policy(folder / "a_0", agents=["a_0", "b_1"]).save_pretrained(tmp_path / "t")
    card = (root / "README.md").read_text()
    assert "`a_0`" in card and str(tmp_path) not in card


def test_progress_false_hides_transformers_bars_and_restores_them() -> None:
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    with progress_bars(False):
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    with progress_bars(True):
        assert hf_logging.is_progress_bar_enabled()


def test_loading_a_saved_model_quietly_prints_no_loading_bar(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = load_policy("tiny", agents=["a_0"], lora=None).save_pretrained(tmp_path / "m")
    capfd.readouterr()
    load_model(folder / "a_0", progress=False)
    assert "Loading weights" not in capfd.readouterr().err
    load_model(folder / "a_0")
    sys.stderr.flush()
    assert "Loading weights" in capfd.readouterr().err  # the check above can fail
