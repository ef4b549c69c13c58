"""Training batches and extraction forwards derive segment and position ids by one rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2ForSequenceClassification,
    RobertaConfig,
    RobertaModel,
)

from _tiny_models import tiny_gpt2_config
from repdrift.models.inputs import derived_inputs, segment_sep_id, takes_position_ids
from repdrift.models.load import load_model
from repdrift.training.data import Examples, collate

FIRSTS = ["a man is eating", "hi", "the cat sat on the mat today"]
SECONDS = ["someone eats food now", "there you are friend", "no"]


def test_bert_pair_training_batch_equals_extraction_inputs(minilm_path: Path) -> None:
    loaded = load_model(minilm_path, device="cpu")
    tokenizer = loaded.tokenizer
    # the training side decides from the task model it trains, extraction from the backbone
    task_model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=2)
    sep_id = segment_sep_id(task_model, tokenizer)
    positions = takes_position_ids(task_model)
    assert sep_id == tokenizer.sep_token_id == loaded.token_type_sep_id
    assert positions is True and loaded.pass_position_ids is True

    encoded = [tokenizer(a, b)["input_ids"] for a, b in zip(FIRSTS, SECONDS, strict=True)]
    examples = Examples(encoded, {"labels": [0, 1, 0]})
    batch = collate(examples, [0, 1, 2], tokenizer.pad_token_id, sep_id, positions)
    kw = loaded.forward_inputs(batch["input_ids"], batch["attention_mask"])
    assert torch.equal(batch["token_type_ids"], kw["token_type_ids"])
    assert torch.equal(batch["position_ids"], kw["position_ids"])
    # and both are what the tokenizer itself assigns to the padded pair batch
    reference = tokenizer(FIRSTS, SECONDS, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], reference["input_ids"])
    assert torch.equal(batch["token_type_ids"], reference["token_type_ids"])
    mask = reference["attention_mask"].bool()
    expected = torch.arange(batch["input_ids"].shape[1]).expand_as(mask)
    assert torch.equal(batch["position_ids"][mask], expected[mask])


def test_rules_for_decoders_and_self_positioned_models(minilm_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    gpt2 = GPT2ForSequenceClassification(
        tiny_gpt2_config(vocab_size=64, layers=1, positions=32, n_embd=16, n_head=2)
    )
    assert segment_sep_id(gpt2, tokenizer) is None  # type_vocab_size is not > 1
    assert takes_position_ids(gpt2) is True
    roberta = RobertaModel(
        RobertaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=40)
    )  # fmt: skip
    assert takes_position_ids(roberta) is False  # derives positions from ids and the pad id


@pytest.mark.parametrize("side", ["left", "right"])
def test_derived_inputs_under_padding(side: str) -> None:
    ids = torch.tensor([[101, 7, 102, 8, 9, 102], [101, 7, 102, 8, 102, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    if side == "left":
        ids[1] = ids[1].roll(1)
        mask[1] = mask[1].roll(1)
    out = derived_inputs(ids, mask, sep_id=102, positions=True)
    real = mask.bool()
    assert out["token_type_ids"][0].tolist() == [0, 0, 0, 1, 1, 1]
    assert out["token_type_ids"][1][real[1]].tolist() == [0, 0, 0, 1, 1]
    assert out["token_type_ids"][~real].eq(0).all()
    assert out["position_ids"][1][real[1]].tolist() == [0, 1, 2, 3, 4]
    assert derived_inputs(ids, mask, sep_id=None, positions=False) == {}
