"""The extraction loop against plain reference computations written here.

Reference values come from ``output_hidden_states=True`` forwards or from per-sample,
unpadded forwards with a plain hook, pooled by a per-sample loop (no masks, no batching).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import peft
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, GPT2Model, LlamaModel

from _tiny_models import tiny_gpt2_config, tiny_llama_config
from repdrift.errors import InputError
from repdrift.extraction.api import extract, extract_loaded, find_checkpoints
from repdrift.extraction.batching import plan_batches, plan_chunks, resolve_layers
from repdrift.extraction.capture import extract_pooled, iter_pooled_chunks
from repdrift.extraction.model_parts import ModelParts, PassPlan
from repdrift.models.load import load_model
from repdrift.store.adapter_file import ADAPTER_FILE
from repdrift.store.reader import load_run
from repdrift.tasks.samples import load_samples

POOLINGS = ["mean", "first", "last", "max", "tokens"]
WORDS = "the a film movie plot was is not very good bad slow tedious delight actors scene story ending".split()


def make_texts(n: int, seed: int = 0, max_words: int = 30) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, max_words)))) for _ in range(n)]


def pool_one(real: torch.Tensor, pooling: str) -> torch.Tensor:
    """Plain pooling of one sample's (len, d) real-token states."""
    real = real.float()
    if pooling == "mean":
        return real.mean(0)
    if pooling == "first":
        return real[0]
    if pooling == "last":
        return real[-1]
    if pooling == "max":
        return real.max(0).values
    return real  # tokens


def pool_reference(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Per-sample loop over a padded batch: select the real tokens, then pool."""
    rows = [pool_one(hidden[b][mask[b].bool()], pooling) for b in range(hidden.shape[0])]
    return torch.cat(rows) if pooling == "tokens" else torch.stack(rows)


@pytest.fixture(scope="module")
def minilm(minilm_path: Path):
    return load_model(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return make_texts(20)


@pytest.fixture(scope="module")
def token_ids(minilm, texts) -> list[list[int]]:
    return [minilm.tokenizer(t)["input_ids"] for t in texts]


# --------------------------------------------------------------------------- core vs reference


@pytest.fixture(scope="module")
def hidden_states(minilm, texts) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Plain padded forward with output_hidden_states=True, and its attention mask."""
    enc = minilm.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = minilm.model(**enc, output_hidden_states=True).hidden_states
    return hidden, enc["attention_mask"]


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooled_equals_output_hidden_states(minilm, token_ids, hidden_states, pooling: str) -> None:
    hidden, mask = hidden_states
    got = extract_pooled(
        ModelParts.of(minilm), token_ids, layers="all", pooling=pooling, batch_size=5
    )
    assert list(got.layers) == ["embeddings"] + [f"layer_{i}" for i in range(6)]
    for i, name in enumerate(got.layers):  # hidden_states[i + 1] is the output of block i
        ref = pool_reference(hidden[i], mask, pooling)
        assert got.layers[name].dtype == torch.float32
        torch.testing.assert_close(got.layers[name], ref, rtol=0, atol=1e-5)
    if pooling == "tokens":
        assert got.offsets.tolist() == [0, *torch.cumsum(mask.sum(1), 0).tolist()]
    else:
        assert got.offsets is None


def test_batch_size_does_not_change_results(minilm, token_ids) -> None:
    ids = token_ids[:12]
    for pooling in ("mean", "max"):

        def run(pooling=pooling, **kw):
            return extract_pooled(ModelParts.of(minilm), ids, pooling=pooling, **kw)

        ref = run(batch_size=1)
        for kw in ({"batch_size": 5}, {"batch_size": 12, "max_tokens": 60}):
            got = run(**kw)
            for name in ref.layers:
                torch.testing.assert_close(got.layers[name], ref.layers[name], rtol=0, atol=1e-5)


def tiny_decoder(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "llama":
        return LlamaModel(tiny_llama_config(vocab_size=97)).eval()
    return GPT2Model(tiny_gpt2_config()).eval()


def decoder_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    return list(model.layers) if hasattr(model, "layers") else list(model.h)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_decoder_padding_never_leaks(arch: str, padding_side: str) -> None:
    model = tiny_decoder(arch)
    blocks = decoder_blocks(model)
    rng = np.random.default_rng(1)
    ids = [rng.integers(1, 97, size=int(rng.integers(2, 25))).tolist() for _ in range(10)]

    # Reference: each sample alone, no padding, block outputs captured by a plain hook.
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        b.register_forward_hook(
            lambda m, a, o, i=i: captured.__setitem__(i, o[0] if isinstance(o, tuple) else o)
        )
        for i, b in enumerate(blocks)
    ]
    singles = []
    with torch.inference_mode():
        for seq in ids:
            model(input_ids=torch.tensor([seq]), use_cache=False)
            singles.append([captured[i][0].clone() for i in range(len(blocks))])
    for h in hooks:
        h.remove()

    for pooling in POOLINGS:
        parts = ModelParts(model, blocks, padding_side=padding_side)
        got = extract_pooled(parts, ids, pooling=pooling, batch_size=4)
        for i in range(len(blocks)):
            rows = [pool_one(s[i], pooling) for s in singles]
            ref = torch.cat(rows) if pooling == "tokens" else torch.stack(rows)
            torch.testing.assert_close(
                got.layers[f"layer_{i}"], ref, rtol=0, atol=1e-5, msg=f"{pooling} layer_{i}"
            )


def test_stops_after_last_requested_layer(minilm, token_ids) -> None:
    calls = {"layer_4": 0, "layer_5": 0}
    hooks = [
        minilm.blocks[i].register_forward_hook(
            lambda m, a, o, k=f"layer_{i}": calls.__setitem__(k, calls[k] + 1)
        )
        for i in (4, 5)
    ]
    try:
        partial = extract_pooled(
            ModelParts.of(minilm), token_ids, layers=[1, "layer_3"], batch_size=8
        )
        assert calls == {"layer_4": 0, "layer_5": 0}  # the top blocks never ran
        full = extract_pooled(ModelParts.of(minilm), token_ids, batch_size=8)
        assert calls["layer_5"] == 3
    finally:
        for h in hooks:
            h.remove()
    assert list(partial.layers) == ["layer_1", "layer_3"]
    for name in partial.layers:
        torch.testing.assert_close(partial.layers[name], full.layers[name], rtol=0, atol=0)


def test_results_in_original_order_and_chunks_cover_all(minilm, token_ids) -> None:
    lengths = [len(t) for t in token_ids]
    chunks = plan_chunks(lengths, 5, token_level=False)
    assert sorted(np.concatenate(chunks).tolist()) == list(range(len(lengths)))
    flat = np.concatenate(chunks)
    assert all(lengths[a] >= lengths[b] for a, b in itertools.pairwise(flat))  # longest first
    for chunk in chunks:
        batches = plan_batches(chunk, lengths, batch_size=2, max_tokens=None)
        assert np.array_equal(np.concatenate(batches), chunk) and max(len(b) for b in batches) <= 2
    got = list(
        iter_pooled_chunks(
            ModelParts.of(minilm), token_ids, PassPlan(("layer_0",), chunk_size=5), skip_chunks={1}
        )
    )
    assert [c.index for c in got] == [k for k in range(len(chunks)) if k != 1]
    # Row r of a chunk is the pooled vector of sample sample_indices[r]: check one directly.
    k = got[0].sample_indices[2]
    single = extract_pooled(ModelParts.of(minilm), [token_ids[k]], layers=["layer_0"])
    torch.testing.assert_close(
        got[0].layers["layer_0"][2], single.layers["layer_0"][0], rtol=0, atol=1e-5
    )


def test_layer_selection_errors() -> None:
    assert resolve_layers(None, 4, has_embeddings=True) == [
        "layer_0",
        "layer_1",
        "layer_2",
        "layer_3",
    ]
    assert resolve_layers("all", 2, has_embeddings=True) == ["embeddings", "layer_0", "layer_1"]
    assert resolve_layers([-1, "2", "layer_0", "embeddings"], 4, has_embeddings=True) == [
        "embeddings",
        "layer_0",
        "layer_2",
        "layer_3",
    ]
    with pytest.raises(InputError, match="out of range"):
        resolve_layers([6], 6, has_embeddings=False)
    with pytest.raises(InputError, match="embeddings"):
        resolve_layers(["embeddings"], 6, has_embeddings=False)
    with pytest.raises(InputError, match="pooling"):
        extract_pooled(ModelParts(torch.nn.Linear(2, 2), []), [[1]], pooling="avg")


# --------------------------------------------------------------------------- models / tasks integration


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reviews.jsonl"
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(make_texts(40, seed=3))]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def lora_dir(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(2)
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False
    )
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    peft.get_peft_model(AutoModel.from_pretrained(minilm_path), config).save_pretrained(folder)
    return folder


def test_extract_top_level_matches_core(
    minilm_path: Path, minilm, data_file: Path, tmp_path: Path
) -> None:
    out = extract(
        minilm_path,
        task="reviews",
        data=data_file,
        out=tmp_path / "run",
        samples=30,
        seed=1,
        layers=[0, 5, "embeddings"],
        device="cpu",
        progress=False,
    )
    run = load_run(out)
    samples = load_samples("reviews", data=data_file, n=30, seed=1)
    assert run.sample_ids == samples.ids and run.layers == ["embeddings", "layer_0", "layer_5"]
    assert run.manifest.model["weights_sha256"] == minilm.source["weights_sha256"]
    ids = minilm.tokenizer(samples.texts, truncation=True, max_length=samples.max_length)[
        "input_ids"
    ]
    ref = extract_pooled(ModelParts.of(minilm), ids, layers="all")
    for name in run.layers:
        np.testing.assert_allclose(run.layer(name), ref.layers[name].numpy(), rtol=0, atol=1e-5)


def test_lora_adapter_disabled_equals_base(
    minilm_path: Path, minilm, lora_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    base_run = extract(
        minilm_path,
        task="reviews",
        data=data_file,
        out=tmp_path / "base",
        samples=20,
        device="cpu",
        progress=False,
    )
    lora_run = extract(
        lora_dir,
        base=minilm_path,
        task="reviews",
        data=data_file,
        out=tmp_path / "lora",
        samples=20,
        device="cpu",
        base_out=tmp_path / "base_from_lora",
        progress=False,
    )
    base, lora, derived = (
        load_run(base_run),
        load_run(lora_run),
        load_run(tmp_path / "base_from_lora"),
    )
    assert derived.manifest.kind == "base" and derived.manifest.model["adapter_disabled"] is True
    assert derived.manifest.model["weights_sha256"] == base.manifest.model["weights_sha256"]
    for name in base.layers:
        np.testing.assert_allclose(derived.layer(name), base.layer(name), rtol=0, atol=1e-6)
    assert np.abs(lora.layer("layer_5") - base.layer("layer_5")).max() > 1e-3  # the adapter acts

    # Adapter weights written beside the layers, keyed by canonical layer and module path.
    saved = load_file(lora_dir / "adapter_model.safetensors")
    written = load_file(lora_run / "step_000000" / ADAPTER_FILE)
    assert ADAPTER_FILE in lora.manifest.files
    assert len(written) == len(saved) == 6 * 2 * 2
    for key, value in written.items():  # e.g. layer_3.attention.self.query.lora_A
        layer, rest = key.split(".", 1)
        module, ab = rest.rsplit(".", 1)
        peft_key = f"base_model.model.encoder.layer.{layer.split('_')[1]}.{module}.{ab}.weight"
        torch.testing.assert_close(value, saved[peft_key], rtol=0, atol=0)


def test_extract_loaded_adapter_disabled_needs_lora(
    minilm, data_file: Path, tmp_path: Path
) -> None:
    samples = load_samples("reviews", data=data_file, n=5)
    with pytest.raises(InputError, match="LoRA"):
        extract_loaded(
            minilm, samples, tmp_path / "x" / "step_000000", adapter_disabled=True, progress=False
        )


def test_checkpoints_go_to_step_folders(minilm_path: Path, data_file: Path, tmp_path: Path) -> None:
    trainer_out = tmp_path / "trainer"
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    for step, scale in ((0, 1.0), (5, 1.1), (10, 1.2)):  # step 0 = the final model's folder
        model = AutoModel.from_pretrained(minilm_path)
        with torch.no_grad():
            model.encoder.layer[1].output.dense.weight.mul_(scale)
        folder = trainer_out / ("final" if step == 0 else f"checkpoint-{step}")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    assert list(find_checkpoints(trainer_out / "final")) == [5, 10]
    out = extract(
        trainer_out / "final",
        base=minilm_path,
        task="reviews",
        data=data_file,
        out=tmp_path / "run",
        samples=12,
        layers=[1],
        checkpoints=True,
        device="cpu",
        progress=False,
    )
    run = load_run(out)
    assert run.steps == [0, 5, 10]
    assert run.manifests[5].step == 5 and run.manifests[10].model["path"].endswith("checkpoint-10")
    assert not np.allclose(run.layer("layer_1", step=5), run.layer("layer_1", step=10))
