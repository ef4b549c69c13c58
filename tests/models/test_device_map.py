"""Models larger than one device: accelerate's device maps, tested on the CPU with disk offload.

A tiny random Llama built from a config is saved to disk; loading it with blocks offloaded to
disk (an explicit map, or ``auto`` with a CPU budget too small for it) must give the plain
extraction's layer files to 1e-6, through ``load_model``, ``extract`` and the CLI.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import peft
import pytest
import torch
from transformers import LlamaForCausalLM
from typer.testing import CliRunner

from _tiny_models import tiny_llama_config
from _tiny_tokenizer import EOS, byte_level_bpe
from repdrift.cli import app
from repdrift.common.devices import dispatch_device, parse_device_map, parse_max_memory
from repdrift.errors import InputError
from repdrift.extraction.api import extract
from repdrift.extraction.options import ExtractionOptions
from repdrift.models.load import load_model
from repdrift.models.placement import Placement
from repdrift.store.reader import load_run

TOLERANCE = 1e-6
WORDS = "the film was a delight slow tedious joyless mess of movie what is question context".split()
# a map of the backbone (LlamaModel) with the middle blocks offloaded to disk
DISK_MAP = {
    "embed_tokens": "cpu",
    "layers.0": "cpu",
    "layers.1": "disk",
    "layers.2": "disk",
    "layers.3": "cpu",
    "norm": "cpu",
    "rotary_emb": "cpu",
}


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 25)))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random Llama (4 blocks) with a BPE tokenizer, a LoRA adapter, and a data file."""
    root = tmp_path_factory.mktemp("device_map")
    fast = byte_level_bpe(_texts(200, seed=1), eos_token=EOS)
    config = tiny_llama_config(
        vocab_size=len(fast), layers=4, positions=128, hidden_size=64, intermediate_size=128
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = {"llama": root / "llama", "lora": root / "lora", "data": root / "data.jsonl"}
    model.save_pretrained(out["llama"])
    fast.save_pretrained(out["llama"])
    lora = peft.LoraConfig(
        r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
    )
    peft.get_peft_model(model, lora).save_pretrained(out["lora"])
    lines = [f'{{"id": "s{i}", "text": "{t}", "label": 0}}' for i, t in enumerate(_texts(40))]
    out["data"].write_text("\n".join(lines) + "\n")
    return out


def _extract(tiny: dict[str, Path], out: Path, model: Path | None = None, **settings) -> dict:
    run = extract(
        model or tiny["llama"], task="tiny", data=tiny["data"], out=out, samples=40,
        layers="all", batch_size=8, progress=False, **settings,
    )  # fmt: skip
    return _layers(run)


def _layers(run: Path) -> dict[str, np.ndarray]:
    loaded = load_run(run)
    return {name: np.asarray(loaded.layer(name)) for name in loaded.layers}


def _max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.fixture(scope="module")
def plain(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The single-device extraction every placement is compared with."""
    return _extract(tiny, tmp_path_factory.mktemp("plain") / "run", device="cpu")


# ---------------------------------------------------------------------------------- loading


def test_explicit_map_offloads_blocks_to_disk(tiny: dict[str, Path], tmp_path: Path) -> None:
    loaded = load_model(tiny["llama"], device_map=DISK_MAP, offload_folder=tmp_path / "off")
    assert loaded.source["device_map"] == DISK_MAP
    assert loaded.device == torch.device("cpu")
    # the offloaded blocks' weights are not in memory: they are meta until their forward
    assert all(p.device.type == "meta" for p in loaded.blocks[1].parameters())
    assert all(p.device.type == "cpu" for p in loaded.blocks[0].parameters())
    assert loaded.embeddings is not None and len(loaded.blocks) == 4


def test_auto_map_with_a_small_cpu_budget_offloads_to_disk(tiny: dict[str, Path]) -> None:
    loaded = load_model(tiny["llama"], device_map="auto", max_memory={"cpu": "400KB"})
    placed = loaded.source["device_map"]
    # some blocks stay in memory, the rest go to disk
    assert {"cpu", "disk"} <= set(placed.values()), placed
    assert loaded.source["dtype"] == "float32"  # dtype auto on a CPU
    assert loaded.source["attn_implementation"] == "sdpa"


def test_temporary_offload_folder_is_removed_with_the_model(
    tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    made: list[str] = []
    import tempfile

    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        made.append(real(*args, dir=tmp_path, **{k: v for k, v in kwargs.items() if k != "dir"}))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    loaded = load_model(tiny["llama"], device_map=DISK_MAP)
    assert len(made) == 1 and Path(made[0]).is_dir()
    del loaded
    gc.collect()
    assert not Path(made[0]).exists()


# ------------------------------------------------------------------------- equal to plain


def test_disk_offload_equals_plain_extraction(
    tiny: dict[str, Path], plain: dict, tmp_path: Path
) -> None:
    offloaded = _extract(tiny, tmp_path / "run", device_map=DISK_MAP)
    assert set(offloaded) == {"embeddings", "layer_0", "layer_1", "layer_2", "layer_3"}
    assert _max_difference(offloaded, plain) <= TOLERANCE


def test_auto_map_equals_plain_extraction(
    tiny: dict[str, Path], plain: dict, tmp_path: Path
) -> None:
    offloaded = _extract(
        tiny, tmp_path / "run", device_map="auto", max_memory="cpu=400KB",
        offload_folder=tmp_path / "offload",
    )  # fmt: skip
    assert _max_difference(offloaded, plain) <= TOLERANCE
    manifest = load_run(tmp_path / "run").manifest
    assert {"cpu", "disk"} <= set(manifest.model["device_map"].values())
    assert manifest.dtype == "float32"


def test_cli_device_map_equals_plain_extraction(
    tiny: dict[str, Path], plain: dict, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [
        "extract", str(tiny["llama"]), "--task", "tiny", "--data", str(tiny["data"]),
        "--out", str(run), "--samples", "40", "--layers", "all", "--batch-size", "8",
        "--device-map", "auto", "--max-memory", "cpu=400KB",
        "--offload-folder", str(tmp_path / "offload"),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "disk" in load_run(run).manifest.model["device_map"].values()
    assert _max_difference(_layers(run), plain) <= TOLERANCE


def test_cli_bad_max_memory_is_one_line(tiny: dict[str, Path], tmp_path: Path) -> None:
    args = [
        "extract", str(tiny["llama"]), "--task", "tiny", "--data", str(tiny["data"]),
        "--out", str(tmp_path / "run"), "--device-map", "auto", "--max-memory", "cpu=lots",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert "max_memory['cpu']='lots' is not a size" in str(result.exception)


# ---------------------------------------------------------------------------------- LoRA


def test_lora_with_every_module_on_one_device_works(tiny: dict[str, Path], tmp_path: Path) -> None:
    plain_lora = _extract(tiny, tmp_path / "a", model=tiny["lora"], base=tiny["llama"])
    mapped = _extract(
        tiny, tmp_path / "b", model=tiny["lora"], base=tiny["llama"], device_map="auto"
    )
    assert _max_difference(mapped, plain_lora) <= TOLERANCE


def test_lora_with_offloaded_modules_is_refused(tiny: dict[str, Path]) -> None:
    lora_map = {f"model.{k}": v for k, v in DISK_MAP.items()} | {"lm_head": "cpu"}
    with pytest.raises(InputError, match=r"LoRA with a device map needs every module on an "
                       r"accelerator.*model\.layers\.1.*merge the adapter"):  # fmt: skip
        load_model(tiny["lora"], base=tiny["llama"], device_map=lora_map)


# ---------------------------------------------------------------------------------- settings


def test_device_map_settings_are_checked(tiny: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"device='cpu' and device_map='auto' both given"):
        load_model(tiny["llama"], device="cpu", device_map="auto")
    with pytest.raises(InputError, match=r"max_memory and offload_folder need device_map"):
        load_model(tiny["llama"], max_memory={"cpu": "1GiB"})
    with pytest.raises(InputError, match=r"cannot place .*no module named nonsense.*layers\.0"):
        load_model(tiny["llama"], device_map={"nonsense": "cpu"})
    with pytest.raises(InputError, match=r"cannot place .* does not give any device"):
        load_model(tiny["llama"], device_map={"nonsense": "disk", "layers.0": "cpu"})


def test_parse_device_map_and_max_memory() -> None:
    assert parse_device_map(None) is None
    assert parse_device_map("Balanced") == "balanced"
    assert parse_device_map("embed_tokens=cpu, layers.0=0,layers.1=cuda:1,norm=disk") == {
        "embed_tokens": "cpu", "layers.0": 0, "layers.1": 1, "norm": "disk",
    }  # fmt: skip
    assert parse_device_map('{"layers.0": 0, "layers.1": "disk"}') == {
        "layers.0": 0, "layers.1": "disk",
    }  # fmt: skip
    assert parse_max_memory("cpu=2GiB,0=20GiB") == {"cpu": "2GiB", 0: "20GiB"}
    assert parse_max_memory({"cuda:1": 1000}) == {1: 1000}
    with pytest.raises(InputError, match=r"device_map='everywhere': expected auto, balanced"):
        parse_device_map("everywhere")
    with pytest.raises(InputError, match=r"'gpu' is not a device"):
        parse_device_map("layers.0=gpu")
    with pytest.raises(InputError, match=r"max_memory\['cpu'\]='lots' is not a size"):
        parse_max_memory("cpu=lots")
    with pytest.raises(InputError, match=r"'cpu' is not NAME=VALUE"):
        parse_max_memory("cpu")
    assert dispatch_device({"a": "cpu", "b": "disk"}) == torch.device("cpu")
    assert dispatch_device({"a": "cpu", "b": 1, "c": 0}) == torch.device("cuda", 1)


def test_options_carry_the_placement() -> None:
    options = ExtractionOptions(
        device_map="layers.0=0,layers.1=disk", max_memory="0=20GiB,cpu=2GiB"
    )
    assert options.device_map == {"layers.0": 0, "layers.1": "disk"}
    assert options.max_memory == {0: "20GiB", "cpu": "2GiB"}
    assert options.device_map_keywords()["device_map"] == options.device_map
    assert ExtractionOptions.build(options, pooling="last").max_memory == options.max_memory
    with pytest.raises(InputError, match=r"device_map"):
        ExtractionOptions.build(device_map="everywhere")
    # the placement is checked when the settings are built, before any model loads
    with pytest.raises(InputError, match=r"device='cpu' and device_map='auto' both given"):
        ExtractionOptions.build(device="cpu", device_map="auto")
    with pytest.raises(InputError, match=r"unknown model setting 'devise' \(did you mean 'device'"):
        Placement.create(devise="cpu")
