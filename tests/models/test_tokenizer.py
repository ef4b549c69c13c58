"""The one tokenizer loader and its pad fallback (eos, else unk), shared by training."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import repdrift.training.model
import repdrift.training.recipe
from _tiny_tokenizer import byte_level_bpe
from repdrift.errors import IntegrityError
from repdrift.models.tokenizer import load_tokenizer

TEXTS = ["the film was a delight", "a slow and joyless mess", "ok"] * 5


def _tokenizer(folder: Path, **special: str) -> Path:
    """A tiny GPT-2-style byte-level BPE tokenizer with the given special tokens and no pad."""
    byte_level_bpe(TEXTS, vocab_size=280, **special).save_pretrained(folder)
    return folder


def test_pad_falls_back_to_eos_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _tokenizer(tmp_path / "gpt2ish", eos_token="<|endoftext|>")
    with caplog.at_level(logging.INFO, logger="repdrift.models.tokenizer"):
        tokenizer, info = load_tokenizer(folder)
        again, _ = load_tokenizer([None, folder])
    assert tokenizer.pad_token == "<|endoftext|>" == again.pad_token
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert info["pad_token_is_eos"] is True and info["tokenizer_path"] == str(folder)
    assert [r.getMessage() for r in caplog.records].count(
        f"tokenizer of {folder} has no pad token: using eos '<|endoftext|>'"
    ) == 1


def test_pad_falls_back_to_unk_then_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _tokenizer(tmp_path / "unk-only", unk_token="<unk>")
    with caplog.at_level(logging.WARNING, logger="repdrift.models.tokenizer"):
        tokenizer, info = load_tokenizer(folder)
    assert tokenizer.pad_token == "<unk>" and info["pad_token_is_eos"] is False
    assert "padding with unk" in caplog.text
    bare = _tokenizer(tmp_path / "bare")
    with pytest.raises(IntegrityError, match="no pad, eos or unk"):
        load_tokenizer(bare)


def test_no_tokenizer_names_every_folder_tried(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(IntegrityError, match=r"no tokenizer found in .*a, .*b"):
        load_tokenizer([tmp_path / "a", tmp_path / "b"])


def test_training_uses_the_same_loader() -> None:
    assert repdrift.training.recipe.load_tokenizer is load_tokenizer
    assert not hasattr(repdrift.training.model, "load_tokenizer")
