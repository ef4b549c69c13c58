"""The defaults a GPU user expects, checked where they can be without one: dtype ``auto``, SDPA
attention, the token budget from free device memory, one host copy per chunk, and the one
position-id rule. CUDA-only checks are skipped on machines without CUDA."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Model, LlamaConfig, LlamaModel, RobertaConfig, RobertaModel

from _tiny_models import tiny_gpt2_config, tiny_llama_config
from repdrift.common.devices import auto_dtype, resolve_dtype
from repdrift.extraction.budget import bytes_per_token, default_max_tokens
from repdrift.extraction.capture import extract_pooled, iter_pooled_chunks
from repdrift.extraction.model_parts import (
    ModelParts,
    PassPlan,
    default_forward_inputs,
    input_device,
)
from repdrift.extraction.options import ExtractionOptions
from repdrift.extraction.to_run import StepRecord, extract_to_run
from repdrift.models import loading
from repdrift.models.inputs import position_ids
from repdrift.models.load import load_model

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _llama(dtype: torch.dtype = torch.float32) -> LlamaModel:
    torch.manual_seed(0)
    return LlamaModel(tiny_llama_config()).to(dtype).eval()


def _token_ids(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 100, size=int(rng.integers(1, 30))).tolist() for _ in range(n)]


# ------------------------------------------------------------------------------------ dtype


def test_dtype_auto_is_float32_off_cuda() -> None:
    assert auto_dtype(None) is torch.float32
    assert auto_dtype("cpu") is torch.float32
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert resolve_dtype("AUTO") is torch.float32
    assert ExtractionOptions().dtype == "auto"


@CUDA
def test_dtype_auto_is_bfloat16_on_an_ampere_or_newer_gpu() -> None:
    major, _ = torch.cuda.get_device_capability(0)
    assert auto_dtype("cuda:0") is (torch.bfloat16 if major >= 8 else torch.float32)


def test_manifest_records_what_auto_resolved_to(tmp_path: Path) -> None:
    model = _llama(torch.bfloat16)
    ids = _token_ids(5)
    manifest = extract_to_run(
        ModelParts(model, list(model.layers)), ids, tmp_path / "step_000000",
        record=StepRecord(sample_ids=[f"s{i}" for i in range(5)]), options=ExtractionOptions(),
        progress=False,
    )  # fmt: skip
    assert manifest.dtype == "bfloat16"
    assert manifest.max_tokens is None  # no budget on the CPU


def test_loaded_model_records_dtype_and_sdpa(minilm_path: Path) -> None:
    loaded = load_model(minilm_path, device="cpu")
    assert loaded.source["dtype"] == "float32"
    assert loaded.source["attn_implementation"] == "sdpa"
    assert loaded.source["device_map"] is None


def test_sdpa_falls_back_when_the_architecture_has_none(
    minilm_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = loading.load_backbone
    calls: list[dict] = []

    def load_backbone(*args, **kwargs):
        calls.append(kwargs)
        if kwargs.get("attn_implementation") == "sdpa":
            raise ValueError(
                "BertModel does not support an attention implementation through "
                "torch.nn.functional.scaled_dot_product_attention yet."
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(loading, "load_backbone", load_backbone)
    with caplog.at_level(logging.INFO, logger="repdrift.models.load"):
        loaded = load_model(minilm_path, device="cpu")
    assert [c.get("attn_implementation") for c in calls] == ["sdpa", None]
    assert "no SDPA attention" in caplog.text
    assert loaded.source["attn_implementation"] in ("eager", "sdpa")


def test_other_load_errors_are_not_swallowed(
    minilm_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def load_backbone(*args, **kwargs):
        raise ValueError("something else entirely")

    monkeypatch.setattr(loading, "load_backbone", load_backbone)
    with pytest.raises(ValueError, match="something else entirely"):
        load_model(minilm_path, device="cpu")


# ------------------------------------------------------------------------------ token budget


def test_no_default_budget_off_cuda() -> None:
    model = _llama()
    assert default_max_tokens(model, n_layers=3, chunk_rows=256, longest=384) is None


def test_bytes_per_token_grows_with_width_and_length() -> None:
    small = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_attention_heads=32)
    wide = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_attention_heads=32)
    assert bytes_per_token(small, 2, 384) < bytes_per_token(wide, 2, 384)
    assert bytes_per_token(small, 2, 128) < bytes_per_token(small, 2, 384)
    assert bytes_per_token(small, 4, 384) > bytes_per_token(small, 2, 384)


@CUDA
def test_default_budget_on_cuda_fits_free_memory() -> None:
    model = _llama().cuda()
    budget = default_max_tokens(model, n_layers=3, chunk_rows=256, longest=29)
    assert budget is not None and budget >= 29
    free, _ = torch.cuda.mem_get_info(0)
    assert budget * bytes_per_token(model.config, 4, 29) <= free


# --------------------------------------------------------------------- host copies, inputs


def test_chunks_arrive_on_the_host_in_order() -> None:
    model = _llama()
    ids = _token_ids(23)
    names = ["layer_0", "layer_2"]
    parts = ModelParts(model, list(model.layers))
    plan = PassPlan(tuple(names), batch_size=2, chunk_size=5)
    chunks = list(
        iter_pooled_chunks(parts, ids, plan)
    )
    assert [c.index for c in chunks] == list(range(5))
    for chunk in chunks:
        assert list(chunk.layers) == names
        for tensor in chunk.layers.values():
            assert tensor.device.type == "cpu" and tensor.dtype == torch.float32
            assert tensor.shape == (len(chunk.sample_indices), 32)
    skipped = list(
        iter_pooled_chunks(parts, ids, plan, skip_chunks={0, 3})
    )
    assert [c.index for c in skipped] == [1, 2, 4]
    for chunk in skipped:
        torch.testing.assert_close(chunk.layers["layer_2"], chunks[chunk.index].layers["layer_2"])


@CUDA
def test_cuda_extraction_equals_cpu() -> None:
    model = _llama()
    ids = _token_ids(40)
    cpu = extract_pooled(ModelParts(model, list(model.layers)), ids, batch_size=7)
    model = model.cuda()
    assert input_device(model).type == "cuda"
    gpu = extract_pooled(ModelParts(model, list(model.layers)), ids, batch_size=7)
    for name, values in cpu.layers.items():
        torch.testing.assert_close(gpu.layers[name], values, atol=1e-4, rtol=1e-4)


def test_default_forward_inputs_use_the_one_position_rule() -> None:
    gpt2 = GPT2Model(tiny_gpt2_config(vocab_size=50, layers=1, positions=1024, n_embd=16, n_head=2))
    ids = torch.tensor([[0, 0, 5, 6], [7, 8, 9, 10]])
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    kw = default_forward_inputs(gpt2)(ids, mask)
    assert torch.equal(kw["position_ids"], position_ids(mask))
    assert kw["use_cache"] is False
    # RoBERTa derives positions from the ids and the pad id itself: none are passed
    roberta = RobertaModel(
        RobertaConfig(
            num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32,
            vocab_size=50,
        )
    )  # fmt: skip
    assert "position_ids" not in default_forward_inputs(roberta)(ids, mask)
