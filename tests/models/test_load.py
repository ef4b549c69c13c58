"""Loading base / full / LoRA models: real checkpoints written to tmp_path, no network."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import peft
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModel,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2LMHeadModel,
    LlamaForCausalLM,
)

from _tiny_models import tiny_gpt2_config, tiny_llama_config
from _tiny_tokenizer import EOS, byte_level_bpe
from repdrift.common.devices import resolve_device, resolve_dtype
from repdrift.common.naming import layer_names
from repdrift.errors import InputError, IntegrityError
from repdrift.models.blocks import find_blocks
from repdrift.models.load import load_model
from repdrift.models.loaded import LoadedModel
from repdrift.models.sources import sha256_files
from repdrift.models.tokenizer import tokenizer_sha256

TEXTS = ["the film was a delight", "a slow, tedious and joyless mess of a movie", "ok"]


# ---------------------------------------------------------------------------------------------
# fixtures: checkpoints on disk
# ---------------------------------------------------------------------------------------------


def _bpe_tokenizer(folder: Path) -> None:
    """A tiny byte-level BPE tokenizer with eos but no pad token (like GPT-2/Llama)."""
    texts = TEXTS * 10 + ["what is the question? the context says so."]
    byte_level_bpe(texts, eos_token=EOS).save_pretrained(folder)


@pytest.fixture(scope="module")
def ckpts(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Full fine-tune, LoRA adapters and tiny decoders, written once for the module."""
    root = tmp_path_factory.mktemp("ckpts")
    out: dict[str, Path] = {}
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)

    # full fine-tune saved from a task model, with one backbone weight perturbed
    torch.manual_seed(1)
    full = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=3)
    with torch.no_grad():
        full.bert.encoder.layer[2].attention.self.query.weight.add_(0.05)
        full.bert.embeddings.word_embeddings.weight[:10].mul_(1.5)
    out["full"] = root / "full"
    full.save_pretrained(out["full"])
    tokenizer.save_pretrained(out["full"])

    # full fine-tune saved from a QA model, without a tokenizer (taken from the base)
    qa = AutoModelForQuestionAnswering.from_pretrained(minilm_path)
    with torch.no_grad():
        qa.bert.encoder.layer[5].output.dense.bias.add_(0.1)
    out["full_qa"] = root / "full_qa"
    qa.save_pretrained(out["full_qa"])

    # LoRA on a sequence-classification model, B != 0, classifier in modules_to_save
    torch.manual_seed(2)
    task = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=3)
    config = peft.LoraConfig(
        task_type="SEQ_CLS", r=4, target_modules=["query", "value"], init_lora_weights=False
    )
    out["lora"] = root / "lora"
    peft.get_peft_model(task, config).save_pretrained(out["lora"])

    # LoRA on the plain backbone (FEATURE_EXTRACTION)
    torch.manual_seed(3)
    config = peft.LoraConfig(
        task_type="FEATURE_EXTRACTION",
        r=2,
        target_modules=["query", "key"],
        init_lora_weights=False,
    )
    out["lora_fe"] = root / "lora_fe"
    peft.get_peft_model(AutoModel.from_pretrained(minilm_path), config).save_pretrained(out["lora_fe"])

    # tiny random decoders with a tokenizer lacking a pad token
    out["tok"] = root / "bpe"
    _bpe_tokenizer(out["tok"])
    vocab = len(AutoTokenizer.from_pretrained(out["tok"]))
    torch.manual_seed(4)
    llama = LlamaForCausalLM(
        tiny_llama_config(vocab_size=vocab, positions=128)
    )
    out["llama"] = root / "llama"
    llama.save_pretrained(out["llama"])
    _bpe_tokenizer(out["llama"])
    gpt2 = GPT2LMHeadModel(
        tiny_gpt2_config(vocab_size=vocab, layers=2, positions=128)
    )
    out["gpt2"] = root / "gpt2"
    gpt2.save_pretrained(out["gpt2"])
    _bpe_tokenizer(out["gpt2"])

    config = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=4,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
    )
    out["llama_lora"] = root / "llama_lora"
    peft.get_peft_model(LlamaForCausalLM.from_pretrained(out["llama"]), config).save_pretrained(
        out["llama_lora"]
    )
    return out


@pytest.fixture(scope="module")
def base(minilm_path: Path) -> LoadedModel:
    return load_model(minilm_path, device="cpu")


def _block_outputs(loaded: LoadedModel, texts: list[str]) -> list[torch.Tensor]:
    """Outputs of every block (hooked, as extraction does) for a right-padded batch."""
    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    captured: list[torch.Tensor] = []
    hooks = [
        b.register_forward_hook(
            lambda _m, _i, o: captured.append((o[0] if isinstance(o, tuple) else o).clone())
        )
        for b in loaded.blocks
    ]
    try:
        with torch.inference_mode():
            loaded.model(**loaded.forward_inputs(batch["input_ids"], batch["attention_mask"]))
    finally:
        for h in hooks:
            h.remove()
    return captured


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def test_layer_names() -> None:
    assert layer_names(3) == ["layer_0", "layer_1", "layer_2"]
    assert layer_names(2, embeddings=True) == ["embeddings", "layer_0", "layer_1"]
    assert layer_names(0) == []
    with pytest.raises(InputError):
        layer_names(-1)


def test_sha256_files_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"alpha" * 1000)
    b.write_bytes(b"beta")
    assert sha256_files([a]) == hashlib.sha256(a.read_bytes()).hexdigest()
    both = hashlib.sha256(a.read_bytes() + b.read_bytes()).hexdigest()
    assert sha256_files([b, a]) == sha256_files([a, b]) == both
    with pytest.raises(IntegrityError, match=r"nope\.bin"):
        sha256_files([tmp_path / "nope.bin"])
    with pytest.raises(InputError):
        sha256_files([])


def test_dtype_and_device_errors(minilm_path: Path) -> None:
    assert resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype("fp16") is torch.float16
    with pytest.raises(InputError, match="float64"):
        resolve_dtype("float64")
    with pytest.raises(InputError, match="dtype"):
        load_model(minilm_path, dtype="int8")
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(InputError, match="toaster"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            load_model(minilm_path, device="cuda")


def test_find_blocks_error() -> None:
    with pytest.raises(InputError, match="no transformer blocks"):
        find_blocks(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()))
    stack = torch.nn.Module()
    stack.layers = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    assert len(find_blocks(stack)) == 3


def test_missing_source_errors(minilm_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nothing-here")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IntegrityError, match=r"config\.json"):
        load_model(empty)
    with pytest.raises(InputError, match="kind"):
        load_model(minilm_path, kind="merged")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# base and full fine-tunes
# ---------------------------------------------------------------------------------------------


def test_base_minilm(minilm_path: Path, base: LoadedModel) -> None:
    assert base.kind == "base"
    assert len(base.blocks) == 6
    assert base.model.config.hidden_size == 384
    assert not base.is_decoder
    assert base.tokenizer.pad_token is not None
    assert not base.model.training
    assert not any(p.requires_grad for p in base.model.parameters())
    assert base.blocks[0] is base.model.encoder.layer[0]
    assert base.embeddings is base.model.embeddings
    assert base.layer_names == ["embeddings", *layer_names(6)]
    json.dumps(base.source)  # JSON-safe
    src = base.source
    assert src["weights_sha256"] == sha256_files([minilm_path / "model.safetensors"])
    assert src["dtype"] == "float32" and src["device"] == "cpu"
    assert src["padding_side"] == base.tokenizer.padding_side
    with pytest.raises(InputError, match="LoRA"):
        with base.adapter_disabled():
            pass


def test_hooked_blocks_equal_hidden_states(base: LoadedModel) -> None:
    batch = base.tokenizer(TEXTS, padding=True, return_tensors="pt")
    outs = _block_outputs(base, TEXTS)
    with torch.inference_mode():
        ref = base.model(**batch, output_hidden_states=True).hidden_states
    assert len(outs) == len(ref) - 1
    real = batch["attention_mask"].bool()  # padded positions carry no meaning
    for i, out in enumerate(outs):
        torch.testing.assert_close(out[real], ref[i + 1][real], rtol=0, atol=1e-5)


def test_full_finetune_loads_saved_backbone(
    minilm_path: Path, ckpts: dict[str, Path], base: LoadedModel
) -> None:
    loaded = load_model(ckpts["full"], base=minilm_path, device="cpu")
    assert loaded.kind == "full"
    assert loaded.source["base"] == str(minilm_path)
    assert loaded.source["checkpoint_architectures"] == ["BertForSequenceClassification"]
    saved = load_file(ckpts["full"] / "model.safetensors")
    state = loaded.model.state_dict()
    backbone_keys = [k for k in saved if k.startswith("bert.")]
    assert backbone_keys
    for key in backbone_keys:
        torch.testing.assert_close(state[key.removeprefix("bert.")], saved[key], rtol=0, atol=0)
    # the perturbation is visible: block 2 differs from the base, block 0's input did too
    assert not torch.equal(
        loaded.blocks[2].attention.self.query.weight, base.blocks[2].attention.self.query.weight
    )
    assert loaded.source["weights_sha256"] == sha256_files([ckpts["full"] / "model.safetensors"])
    assert loaded.source["weights_sha256"] != base.source["weights_sha256"]
    # the tokenizer was re-saved by a newer transformers: the content hash is unchanged
    assert loaded.source["tokenizer_sha256"] == base.source["tokenizer_sha256"]


def test_full_without_tokenizer_uses_base_tokenizer(
    minilm_path: Path, ckpts: dict[str, Path]
) -> None:
    loaded = load_model(ckpts["full_qa"], base=minilm_path, device="cpu")
    assert loaded.kind == "full"
    assert loaded.source["tokenizer_path"] == str(minilm_path)
    saved = load_file(ckpts["full_qa"] / "model.safetensors")
    key = "bert.encoder.layer.5.output.dense.bias"
    torch.testing.assert_close(loaded.blocks[5].output.dense.bias, saved[key], rtol=0, atol=0)
    with pytest.raises(InputError, match="base="):
        load_model(ckpts["full_qa"], kind="full")


def test_full_with_different_architecture_base_is_rejected(ckpts: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="not a fine-tune"):
        load_model(ckpts["full"], base=ckpts["llama"], device="cpu")


def test_checkpoint_missing_block_weights_is_rejected(minilm_path: Path, tmp_path: Path) -> None:
    weights = load_file(minilm_path / "model.safetensors")
    dropped = {k: v for k, v in weights.items() if "encoder.layer.3." not in k}
    assert len(dropped) < len(weights)
    from safetensors.torch import save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    save_file(dropped, broken / "model.safetensors")
    (broken / "config.json").write_text((minilm_path / "config.json").read_text())
    with pytest.raises(IntegrityError, match=r"encoder\.layer\.3"):
        load_model(broken, device="cpu")


def test_forward_inputs_reconstructs_token_types_and_positions(base: LoadedModel) -> None:
    tok = base.tokenizer
    firsts, seconds = ["a man is eating", "hi"], ["someone eats food now", "there you are friend"]
    for side in ("right", "left"):
        tok.padding_side = side
        try:
            batch = tok(firsts, seconds, padding=True, return_tensors="pt")
        finally:
            tok.padding_side = "right"
        kw = base.forward_inputs(batch["input_ids"], batch["attention_mask"])
        assert torch.equal(kw["token_type_ids"], batch["token_type_ids"])
        # every row's hidden states equal that row run alone, unpadded
        with torch.inference_mode():
            padded = base.model(**kw).last_hidden_state
            for row, (a, b) in enumerate(zip(firsts, seconds, strict=True)):
                alone = tok(a, b, return_tensors="pt")
                ref = base.model(**alone).last_hidden_state[0]
                real = batch["attention_mask"][row].bool()
                torch.testing.assert_close(padded[row][real], ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match="shape"):
        base.forward_inputs(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# LoRA
# ---------------------------------------------------------------------------------------------


def test_lora_seq_cls_loads_and_differs_from_base(
    minilm_path: Path, ckpts: dict[str, Path], base: LoadedModel
) -> None:
    loaded = load_model(ckpts["lora"], base=minilm_path, device="cpu")
    assert loaded.kind == "lora"
    assert loaded.source["task_type"] == "SEQ_CLS"
    assert loaded.source["base"] == str(minilm_path)
    assert "classifier" in loaded.source["modules_to_save"]
    assert loaded.source["weights_sha256"] == sha256_files(
        [ckpts["lora"] / "adapter_model.safetensors"]
    )
    assert loaded.source["base_weights_sha256"] == base.source["weights_sha256"]
    assert len(loaded.blocks) == 6
    json.dumps(loaded.source)

    lora_out = _block_outputs(loaded, TEXTS)
    base_out = _block_outputs(base, TEXTS)
    # layer 0's query/value carry a non-zero LoRA delta: its output must move
    for lo, bo in zip(lora_out, base_out, strict=True):
        assert (lo - bo).abs().max() > 1e-4
    with loaded.adapter_disabled():
        disabled = _block_outputs(loaded, TEXTS)
    for d, bo in zip(disabled, base_out, strict=True):
        torch.testing.assert_close(d, bo, rtol=0, atol=0)
    # the adapter is not merged: enabled again after the context
    again = _block_outputs(loaded, TEXTS)
    torch.testing.assert_close(again[-1], lora_out[-1], rtol=0, atol=0)


def test_lora_output_equals_plain_lora_math(ckpts: dict[str, Path], base: LoadedModel) -> None:
    """Block 0's query projection equals W x + b + (alpha / r) B A x from the saved file."""
    loaded = load_model(ckpts["lora"], device="cpu")  # base from adapter_config.json
    saved = load_file(ckpts["lora"] / "adapter_model.safetensors")
    prefix = "base_model.model.bert.encoder.layer.0.attention.self.query"
    a, b = saved[f"{prefix}.lora_A.weight"], saved[f"{prefix}.lora_B.weight"]
    cfg = json.loads((ckpts["lora"] / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    x = torch.randn(5, 384, generator=torch.Generator().manual_seed(0))
    lin = base.blocks[0].attention.self.query
    expected = x @ lin.weight.T + lin.bias + scale * (x @ a.T @ b.T)
    with torch.inference_mode():
        got = loaded.blocks[0].attention.self.query(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_lora_feature_extraction(
    minilm_path: Path, ckpts: dict[str, Path], base: LoadedModel
) -> None:
    loaded = load_model(ckpts["lora_fe"], base=minilm_path, device="cpu")
    assert loaded.source["task_type"] == "FEATURE_EXTRACTION"
    out = _block_outputs(loaded, TEXTS)
    assert (out[0] - _block_outputs(base, TEXTS)[0]).abs().max() > 1e-4


def test_lora_task_type_mismatch_is_detected(
    minilm_path: Path, ckpts: dict[str, Path], tmp_path: Path
) -> None:
    """An adapter trained on a task model but labelled FEATURE_EXTRACTION cannot load silently."""
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for f in ckpts["lora"].iterdir():
        (wrong / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((wrong / "adapter_config.json").read_text())
    cfg["task_type"] = "FEATURE_EXTRACTION"
    cfg["modules_to_save"] = None
    (wrong / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(IntegrityError, match="did not load"):
        load_model(wrong, base=minilm_path, device="cpu")


def test_lora_missing_base_names_both(ckpts: dict[str, Path], tmp_path: Path) -> None:
    moved = tmp_path / "adapter"
    moved.mkdir()
    for f in ckpts["lora"].iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((moved / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tmp_path / "gone" / "base")
    (moved / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError) as err:
        load_model(moved, device="cpu")
    message = str(err.value)
    assert str(tmp_path / "gone" / "base") in message and "base=" in message
    with pytest.raises(InputError, match="also-gone"):
        load_model(moved, base=tmp_path / "also-gone", device="cpu")


# ---------------------------------------------------------------------------------------------
# decoders
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_tiny_decoder_loads(
    ckpts: dict[str, Path], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="repdrift"):
        loaded = load_model(ckpts[name], device="cpu")
    assert loaded.is_decoder
    assert loaded.kind == "base"
    n = 3 if name == "llama" else 2
    assert len(loaded.blocks) == n
    assert loaded.tokenizer.pad_token == loaded.tokenizer.eos_token == "<|endoftext|>"
    assert loaded.source["pad_token_is_eos"] is True
    assert loaded.model.config.pad_token_id == loaded.tokenizer.pad_token_id
    assert loaded.embeddings is not None
    # the embeddings module's output is hidden_states[0]; blocks line up with hidden_states
    tok = loaded.tokenizer
    ids = tok("what is the question?", return_tensors="pt")["input_ids"]
    captured: list[torch.Tensor] = []
    h = loaded.embeddings.register_forward_hook(lambda _m, _i, o: captured.append(o))
    try:
        with torch.inference_mode():
            ref = loaded.model(
                **loaded.forward_inputs(ids, torch.ones_like(ids)), output_hidden_states=True
            ).hidden_states
    finally:
        h.remove()
    torch.testing.assert_close(captured[0], ref[0], rtol=0, atol=0)
    outs = _block_outputs(loaded, ["what is the question?"])
    for i in range(n - 1):  # the last hidden state has the final norm applied
        torch.testing.assert_close(outs[i], ref[i + 1], rtol=0, atol=1e-6)


def test_decoder_left_padding_matches_unpadded(ckpts: dict[str, Path]) -> None:
    loaded = load_model(ckpts["llama"], device="cpu")
    tok = loaded.tokenizer
    texts = ["what is the question? the context says so.", "ok"]
    tok.padding_side = "left"
    try:
        batch = tok(texts, padding=True, return_tensors="pt")
    finally:
        tok.padding_side = "right"
    with torch.inference_mode():
        out = loaded.model(**loaded.forward_inputs(batch["input_ids"], batch["attention_mask"]))
        for row, text in enumerate(texts):
            ids = tok(text, return_tensors="pt")["input_ids"]
            ref = loaded.model(**loaded.forward_inputs(ids, torch.ones_like(ids)))
            real = batch["attention_mask"][row].bool()
            torch.testing.assert_close(
                out.last_hidden_state[row][real], ref.last_hidden_state[0], rtol=1e-4, atol=1e-5
            )


def test_lora_on_tiny_llama(ckpts: dict[str, Path]) -> None:
    base = load_model(ckpts["llama"], device="cpu")
    loaded = load_model(ckpts["llama_lora"], base=ckpts["llama"], device="cpu")
    assert loaded.kind == "lora" and loaded.is_decoder
    assert loaded.source["task_type"] == "CAUSAL_LM"
    assert len(loaded.blocks) == 3
    assert loaded.source["tokenizer_path"] == str(ckpts["llama"])  # adapter has no tokenizer
    texts = ["what is the question?", "ok"]
    lora_out, base_out = _block_outputs(loaded, texts), _block_outputs(base, texts)
    assert (lora_out[-1] - base_out[-1]).abs().max() > 1e-5
    with loaded.adapter_disabled():
        disabled = _block_outputs(loaded, texts)
    for d, b in zip(disabled, base_out, strict=True):
        torch.testing.assert_close(d, b, rtol=0, atol=0)


def test_bfloat16_load(ckpts: dict[str, Path]) -> None:
    loaded = load_model(ckpts["gpt2"], dtype="bfloat16", device="cpu")
    assert next(loaded.model.parameters()).dtype is torch.bfloat16
    assert loaded.source["dtype"] == "bfloat16"


def test_tokenizer_hash_ignores_truncation_state(minilm_path: Path, base: LoadedModel) -> None:
    before = tokenizer_sha256(base.tokenizer)
    base.tokenizer(["x " * 600], truncation=True, max_length=16)
    assert tokenizer_sha256(base.tokenizer) == before
    other = AutoTokenizer.from_pretrained(minilm_path)
    other.add_tokens(["zzzq"])
    assert tokenizer_sha256(other) != before


@pytest.mark.slow
def test_lora_question_answering_and_inferred_task(
    minilm_path: Path, ckpts: dict[str, Path], base: LoadedModel, tmp_path: Path
) -> None:
    torch.manual_seed(5)
    qa = AutoModelForQuestionAnswering.from_pretrained(minilm_path)
    config = peft.LoraConfig(
        task_type="QUESTION_ANS",
        r=2,
        target_modules=["query", "value"],
        init_lora_weights=False,
    )
    folder = tmp_path / "qa_lora"
    peft.get_peft_model(qa, config).save_pretrained(folder)
    loaded = load_model(folder, base=minilm_path, device="cpu")
    assert loaded.source["task_type"] == "QUESTION_ANS"
    assert loaded.source["architecture"].endswith("(BertForQuestionAnswering)")
    assert (_block_outputs(loaded, TEXTS)[0] - _block_outputs(base, TEXTS)[0]).abs().max() > 1e-4
    # question/context pairs: segment ids must reach the model (peft's QA wrapper drops them)
    pairs = base.tokenizer(TEXTS, TEXTS[::-1], padding=True, return_tensors="pt")
    kw = base.forward_inputs(pairs["input_ids"], pairs["attention_mask"])
    with torch.inference_mode():
        ref = base.model(**kw).last_hidden_state
        with loaded.adapter_disabled():
            got = loaded.model(**kw, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(got, ref, rtol=0, atol=0)

    # the same adapter without a task type: the "bert." key prefix picks a task model
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["task_type"] = None
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    untyped = load_model(folder, base=minilm_path, device="cpu")
    assert untyped.source["task_type"] is None
    for a, b in zip(_block_outputs(untyped, TEXTS), _block_outputs(loaded, TEXTS), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_lora_on_wrong_base_is_an_integrity_error(ckpts: dict[str, Path]) -> None:
    with pytest.raises(IntegrityError, match=r"does not fit base|did not load"):
        load_model(ckpts["llama_lora"], base=ckpts["gpt2"], device="cpu")


def test_mistyped_local_path_is_not_sent_to_the_hub(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        load_model("runs/model-typo", device="cpu")
