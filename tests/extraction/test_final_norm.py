"""The final-norm option against transformers' ``output_hidden_states``.

``hidden_states[i + 1]`` is the output of block ``i`` except the last, which decoders such as
Llama and GPT-2 return after their final norm; BERT-style encoders have no final norm. The
references below are plain masked means / last tokens of one padded forward.
"""

from __future__ import annotations

import json
from pathlib import Path

import peft
import pytest
import torch
from transformers import (
    AutoTokenizer,
    GPT2LMHeadModel,
    LlamaForCausalLM,
)
from typer.testing import CliRunner

from _tiny_models import tiny_gpt2_config, tiny_llama_config
from _tiny_tokenizer import EOS, byte_level_bpe
from repdrift.cli.commands import app
from repdrift.errors import InputError
from repdrift.extraction.api import extract
from repdrift.extraction.options import ExtractionOptions
from repdrift.models.load import load_model
from repdrift.store.manifest import first_difference, read_manifest
from repdrift.store.reader import load_run
from repdrift.tasks.encoding import encode
from repdrift.tasks.samples import load_samples

TEXTS = [
    "the film was a delight",
    "slow and tedious, the plot is not good",
    "actors",
    "what a story, what an ending; the scene with the actors was very good",
    "bad movie",
    "is it good? it is not bad",
]
N = len(TEXTS)


def _bpe_tokenizer(folder: Path) -> None:
    """A tiny byte-level BPE tokenizer with eos but no pad token (like GPT-2/Llama)."""
    byte_level_bpe(TEXTS * 10, vocab_size=200, eos_token=EOS).save_pretrained(folder)


@pytest.fixture(scope="module")
def folders(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random Llama and GPT-2 (with LM heads), a LoRA adapter on the Llama, the data."""
    root = tmp_path_factory.mktemp("final_norm")
    out = {"bert": minilm_path, "data": root / "reviews.jsonl"}
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)]
    out["data"].write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _bpe_tokenizer(root / "tok")
    vocab = len(AutoTokenizer.from_pretrained(root / "tok"))
    torch.manual_seed(0)
    llama = LlamaForCausalLM(
        tiny_llama_config(vocab_size=vocab, positions=128)
    )
    with torch.no_grad():  # a norm weight far from 1, so that the norm visibly matters
        llama.model.norm.weight.uniform_(0.2, 3.0)
    gpt2 = GPT2LMHeadModel(
        tiny_gpt2_config(vocab_size=vocab, layers=2, positions=128)
    )
    for name, model in (("llama", llama), ("gpt2", gpt2)):
        out[name] = root / name
        model.save_pretrained(out[name])
        _bpe_tokenizer(out[name])
    config = peft.LoraConfig(
        task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    out["llama_lora"] = root / "llama_lora"
    peft.get_peft_model(llama, config).save_pretrained(out["llama_lora"])
    return out


def reference(
    model: Path, base: Path | None, data: Path, pooling: str
) -> tuple[list[str], list[torch.Tensor], torch.Tensor]:
    """Sample ids, pooled ``hidden_states[1:]`` and the pooled raw output of the last block."""
    loaded = load_model(model, base=base, device="cpu")
    samples = load_samples("reviews", data=data, n=N)
    ids = encode(samples, loaded.tokenizer)
    width = max(len(i) for i in ids)
    pad = loaded.tokenizer.pad_token_id
    input_ids = torch.tensor([i + [pad] * (width - len(i)) for i in ids])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
    raw: list[torch.Tensor] = []
    hook = loaded.blocks[-1].register_forward_hook(
        lambda _m, _a, o: raw.append(o[0] if isinstance(o, tuple) else o)
    )
    try:
        with torch.inference_mode():
            hidden = loaded.model(
                **loaded.forward_inputs(input_ids, mask), output_hidden_states=True
            ).hidden_states
    finally:
        hook.remove()

    def pool(h: torch.Tensor) -> torch.Tensor:
        h, m = h.float(), mask.unsqueeze(-1).float()
        if pooling == "mean":
            return (h * m).sum(1) / m.sum(1)
        last = mask.sum(1) - 1  # right padding
        return h[torch.arange(len(ids)), last]

    return samples.ids, [pool(h) for h in hidden[1:]], pool(raw[0])


def run_layers(out: Path, ids: list[str]) -> list[torch.Tensor]:
    run = load_run(out)
    assert run.sample_ids == ids
    return [torch.from_numpy(run.layer(name)) for name in run.layers]


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("name", ["llama", "gpt2", "bert"])
def test_last_layer_against_hidden_states(
    folders: dict[str, Path], tmp_path: Path, name: str, pooling: str
) -> None:
    ids, hidden, raw = reference(folders[name], None, folders["data"], pooling)
    n_blocks = len(hidden)
    got = {}
    for final_norm in (True, False):
        out = extract(
            folders[name], task="reviews", data=folders["data"], samples=N, pooling=pooling,
            out=tmp_path / f"run_{final_norm}", final_norm=final_norm, device="cpu",
            progress=False,
        )  # fmt: skip
        got[final_norm] = layers = run_layers(out, ids)
        assert len(layers) == n_blocks
        for i in range(n_blocks - 1):  # blocks below the last: their own outputs either way
            torch.testing.assert_close(layers[i], hidden[i], rtol=0, atol=1e-5)
        want = hidden[-1] if final_norm else raw
        torch.testing.assert_close(layers[-1], want, rtol=0, atol=1e-5)
        # the manifest records whether a norm was applied: BERT has none to apply
        assert load_run(out).manifest.final_norm is (final_norm and name != "bert")
    if name == "bert":  # each block ends in its own LayerNorm: hidden_states[-1] is block 5's
        torch.testing.assert_close(got[True][-1], got[False][-1], rtol=0, atol=0)
        torch.testing.assert_close(raw, hidden[-1], rtol=0, atol=0)
    else:
        assert (got[True][-1] - got[False][-1]).abs().max() > 1e-2


def test_final_norm_is_found_through_heads_and_adapters(
    minilm_path: Path, folders: dict[str, Path]
) -> None:
    llama = load_model(folders["llama"], device="cpu")
    assert llama.final_norm is llama.model.norm  # the backbone of LlamaForCausalLM
    gpt2 = load_model(folders["gpt2"], device="cpu")
    assert gpt2.final_norm is gpt2.model.ln_f
    assert load_model(minilm_path, device="cpu").final_norm is None
    lora = load_model(folders["llama_lora"], base=folders["llama"], device="cpu")
    assert lora.final_norm is lora.model.get_submodule("model.norm")  # inside the peft wrapper


def test_lora_adapter_gets_the_norm(folders: dict[str, Path], tmp_path: Path) -> None:
    adapter, base, data = folders["llama_lora"], folders["llama"], folders["data"]
    ids, hidden, raw = reference(adapter, base, data, "mean")
    _, base_hidden, _ = reference(base, None, data, "mean")
    assert (hidden[-1] - base_hidden[-1]).abs().max() > 1e-4  # the adapter acts
    for final_norm in (True, False):
        out = extract(
            adapter, base=base, task="reviews", data=data, samples=N, final_norm=final_norm,
            out=tmp_path / f"lora_{final_norm}", device="cpu", progress=False,
        )  # fmt: skip
        layers = run_layers(out, ids)
        torch.testing.assert_close(layers[-1], hidden[-1] if final_norm else raw, rtol=0, atol=1e-5)
        assert load_run(out).manifest.final_norm is final_norm


def test_other_setting_is_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    common = {"task": "reviews", "data": folders["data"], "samples": N, "device": "cpu",
              "progress": False, "out": tmp_path / "run"}  # fmt: skip
    extract(folders["llama"], **common)  # default: the norm applied
    assert load_run(tmp_path / "run").manifest.final_norm is True
    with pytest.raises(InputError, match="final_norm"):
        extract(folders["llama"], final_norm=False, **common)
    extract(folders["llama"], final_norm=True, **common)  # the same setting: left alone


def test_old_manifest_without_the_field_means_no_norm(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    common = {"task": "reviews", "data": folders["data"], "samples": N, "device": "cpu",
              "progress": False, "out": tmp_path / "run", "layers": [0, -1]}  # fmt: skip
    extract(folders["llama"], final_norm=False, **common)
    path = tmp_path / "run" / "step_000000" / "metadata.json"
    raw = json.loads(path.read_text())
    del raw["final_norm"], raw["extra"]["request_sha256"]  # as written before the field existed
    path.write_text(json.dumps(raw))
    old = read_manifest(path)
    assert old.final_norm is None
    assert first_difference(old, old.model_copy(update={"final_norm": False})) is None
    field, _ = first_difference(old, old.model_copy(update={"final_norm": True}))
    assert field == "final_norm"
    extract(folders["llama"], final_norm=False, **common)  # old complete run: reused
    with pytest.raises(InputError, match="final_norm"):
        extract(folders["llama"], **common)  # the default applies the norm: not that run


def test_cli_flag_and_option_default(folders: dict[str, Path], tmp_path: Path) -> None:
    assert ExtractionOptions().final_norm is True
    assert ExtractionOptions.model_validate({"final_norm": False}).final_norm is False
    args = ["extract", str(folders["gpt2"]), "--task", "reviews", "--data", str(folders["data"]),
            "--samples", str(N), "--device", "cpu"]  # fmt: skip
    for flag, expected in (([], True), (["--no-final-norm"], False), (["--final-norm"], True)):
        out = tmp_path / f"run{len(flag)}{expected}"
        result = CliRunner().invoke(app, [*args, *flag, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert load_run(out).manifest.final_norm is expected
