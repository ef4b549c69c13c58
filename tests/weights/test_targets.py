"""Which base weight each variant tensor changes: full checkpoints matched by name and shape,
LoRA A/B pairs by module path, with their rank, scale and (Conv1D) orientation. Real tiny BERT
and GPT-2 models and real PEFT adapters on disk."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import BertForSequenceClassification, BertModel, GPT2Model

from _tiny_models import tiny_bert_config, tiny_gpt2_config
from repdrift.errors import InputError
from repdrift.weights.checkpoints import LoraSettings, WeightFiles, find_weight_files
from repdrift.weights.keys import BaseKeyIndex
from repdrift.weights.targets import lora_orientation, name_variants, plan_full, plan_lora

BERT_LINEAR = ("attention.self.query", "attention.self.key", "attention.self.value",
               "attention.output.dense", "intermediate.dense", "output.dense")  # fmt: skip


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("targets_bert")
    torch.manual_seed(0)
    BertModel(tiny_bert_config(layers=2)).save_pretrained(root / "base")
    # a fine-tuned classifier: every key under "bert.", plus a head the base has no weight for
    BertForSequenceClassification.from_pretrained(root / "base").save_pretrained(root / "full")
    peft = get_peft_model(
        BertModel.from_pretrained(root / "base"),
        LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False),
    )
    peft.save_pretrained(root / "lora")
    return {"base": root / "base", "full": root / "full", "lora": root / "lora"}


def _plan(planner, base: Path, variant: Path, kind: str, modules=None, conv1d=False):
    with ExitStack() as stack:
        base_files = stack.enter_context(WeightFiles(find_weight_files(base, "model")))
        files = stack.enter_context(WeightFiles(find_weight_files(variant, kind)))
        index = BaseKeyIndex(k for k in base_files.keys() if len(base_files.shape(k)) == 2)
        return planner("v", variant, files, base_files, index, modules, conv1d)


def test_full_matches_every_layer_weight_across_a_prefix(bert, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="repdrift"):
        targets = _plan(plan_full, bert["base"], bert["full"], "model")
    want = {f"encoder.layer.{i}.{m}.weight" for i in range(2) for m in BERT_LINEAR}
    assert set(targets) == want
    for key, target in targets.items():
        assert target.variant_key == f"bert.{key}" and not target.transposed
        assert target.a_key is None and target.rank is None
    assert "classifier.weight" in caplog.text  # the head is named, not analysed


def test_full_selects_modules(bert) -> None:
    targets = _plan(plan_full, bert["base"], bert["full"], "model", modules=["query"])
    assert sorted(targets) == [f"encoder.layer.{i}.attention.self.query.weight" for i in range(2)]


def test_lora_pairs_rank_scale_and_layout(bert) -> None:
    targets = _plan(plan_lora, bert["base"], bert["lora"], "adapter")
    assert sorted(targets) == sorted(
        f"encoder.layer.{i}.attention.self.{m}.weight" for i in range(2) for m in ("query", "value")
    )
    for key, target in targets.items():
        module = key.removesuffix(".weight")
        assert target.a_key.endswith(f"{module}.lora_A.weight")
        assert target.b_key.endswith(f"{module}.lora_B.weight")
        assert (target.rank, target.scale, target.transposed) == (4, 2.0, False)  # alpha / r


def test_gpt2_lora_is_transposed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    GPT2Model(tiny_gpt2_config(layers=2)).save_pretrained(tmp_path / "base")
    get_peft_model(
        GPT2Model.from_pretrained(tmp_path / "base"),
        LoraConfig(r=2, lora_alpha=2, target_modules=["c_attn"], fan_in_fan_out=True),
    ).save_pretrained(tmp_path / "lora")
    targets = _plan(plan_lora, tmp_path / "base", tmp_path / "lora", "adapter", conv1d=True)
    assert sorted(targets) == [f"h.{i}.attn.c_attn.weight" for i in range(2)]
    # Conv1D stores (in, out) = (32, 96); B @ A is (out, in) = (96, 32)
    assert all(t.transposed and t.rank == 2 and t.scale == 1.0 for t in targets.values())


def test_lora_orientation_rules() -> None:
    # the adapter's fan_in_fan_out (adapter_config.json; a run's adapter file is always (out, in))
    plain, fan = (LoraSettings(r=2, lora_alpha=2, fan_in_fan_out=f).fan_in_fan_out for f in (False, True))
    assert lora_orientation((6, 4), (6, 4), plain, conv1d=False) is False
    assert lora_orientation((4, 6), (6, 4), plain, conv1d=False) is True
    assert lora_orientation((5, 4), (6, 4), plain, conv1d=False) is None
    # a square weight cannot tell by its shape: the adapter or the model type decides
    assert lora_orientation((4, 4), (4, 4), plain, conv1d=False) is False
    assert lora_orientation((4, 4), (4, 4), fan, conv1d=False) is True
    assert lora_orientation((4, 4), (4, 4), plain, conv1d=True) is True
    assert lora_orientation((4, 5), (4, 4), plain, conv1d=True) is None


def test_variant_names() -> None:
    assert name_variants({"a": "x/1", "b": "y/1"}) == [("a", "x/1"), ("b", "y/1")]
    assert name_variants("runs/sst2_lora") == [("sst2_lora", "runs/sst2_lora")]
    # folder names collide: the full paths name them
    assert name_variants(["x/ckpt", "y/ckpt"]) == [("x/ckpt", "x/ckpt"), ("y/ckpt", "y/ckpt")]
    with pytest.raises(InputError, match="at least one"):
        name_variants([])
    with pytest.raises(InputError, match="names must be unique"):
        name_variants(["x/ckpt", "x/ckpt"])
