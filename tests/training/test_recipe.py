"""Fine-tuning recipes and bundled demo data: real MiniLM / tiny decoder trainings, a few steps."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModel,
    AutoTokenizer,
    GPT2LMHeadModel,
    LlamaForCausalLM,
)

from _tiny_models import tiny_gpt2_config, tiny_llama_config
from repdrift.errors import InputError, IntegrityError
from repdrift.models.load import load_model
from repdrift.models.training_record import TRAINING_RECORD
from repdrift.tasks.presets import BUNDLED_DATA, bundled_data
from repdrift.tasks.samples import load_samples
from repdrift.training import data as _train_data
from repdrift.training.recipe import detect_target_modules, train

ROOT = Path(__file__).resolve().parents[2]
# two optimizer steps on a small subset: enough to move every trained weight
FAST = {"max_steps": 2, "batch_size": 4, "max_train_samples": 8, "max_eval_samples": 8}


def _weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(folder / name)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def runs(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Full and LoRA trainings on demo-sst: two with seed 1 (one saving checkpoints), one seed 2.

    The LoRA runs train on demo-pair so that both bundled tasks are trained on.
    """
    root = tmp_path_factory.mktemp("train")
    out: dict[str, Path] = {}
    for method, lr in (("full", 1e-4), ("lora", 1e-3)):
        task = "demo-sst" if method == "full" else "demo-pair"
        kw = {"task": task, "method": method, "model": minilm_path, "lr": lr, "progress": False}
        out[f"{method}_1"] = train(**kw, **FAST, seed=1, save_steps=1, out=root / f"{method}_1")
        out[f"{method}_1b"] = train(**kw, **FAST, seed=1, out=root / f"{method}_1b")
        out[f"{method}_2"] = train(**kw, **FAST, seed=2, out=root / f"{method}_2")
    return out


# ---------------------------------------------------------------------------------------------
# bundled demo data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["demo-sst", "demo-pair"])
def test_demo_presets_load_with_stable_ids(task: str) -> None:
    val = load_samples(task)  # no data=: resolved to the package data
    assert len(val) == 200 and val.split == "validation"
    assert val.ids == [str(i) for i in range(200)]
    assert set(val.labels) == {0, 1}
    assert (val.text_pairs is None) == (task == "demo-sst")
    assert Path(val.source["path"]) == bundled_data(task)
    assert val.source["location"] == str(bundled_data(task) / "validation.jsonl")
    # a subset is drawn by the shared seeded rule and is reproducible
    a, b = load_samples(task, n=40, seed=3), load_samples(task, n=40, seed=3)
    assert a.ids == b.ids and a.texts == b.texts and a.source == b.source
    assert a.ids == sorted(a.ids, key=int) and set(a.ids) < set(val.ids)
    assert load_samples(task, n=40, seed=4).ids != a.ids
    train_split = load_samples(task, split="train", n=None)
    assert len(train_split) == 400
    # no sentence (pair) of the validation split appears in training
    key = (
        (lambda s, i: s.texts[i])
        if task == "demo-sst"
        else (lambda s, i: (s.texts[i], s.text_pairs[i]))
    )
    seen = {key(train_split, i) for i in range(len(train_split))}
    assert not any(key(val, i) in seen for i in range(len(val)))


def test_demo_files_are_what_the_script_generates() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_demo_data", ROOT / "scripts/make_demo_data.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    generated = {
        "demo_sst": script.make_sst(random.Random(script.SEED)),
        "demo_pair": script.make_pair(random.Random(script.SEED + 1)),
    }
    assert set(generated) == set(BUNDLED_DATA.values())
    for task, name in BUNDLED_DATA.items():
        for split, rows in generated[name].items():
            path = bundled_data(task) / f"{split}.jsonl"
            assert [json.loads(line) for line in path.read_text().splitlines()] == rows


def test_bundled_data_of_unknown_task() -> None:
    with pytest.raises(InputError, match="sst2"):
        bundled_data("sst2")


# ---------------------------------------------------------------------------------------------
# full fine-tuning
# ---------------------------------------------------------------------------------------------


def test_full_changes_backbone_and_saves_loadable_checkpoint(
    minilm_path: Path, runs: dict[str, Path]
) -> None:
    out = runs["full_1"]
    trained = _weights(out)
    base = {f"bert.{k}": v for k, v in _weights(minilm_path).items()}
    backbone = [k for k in trained if k.startswith("bert.encoder.layer.")]
    assert backbone and {"classifier.weight", "classifier.bias"} <= trained.keys()
    changed = [k for k in backbone if not torch.equal(trained[k], base[k])]
    # every block weight moved (embeddings too) ...
    assert len(changed) == len(backbone)
    assert not torch.equal(
        trained["bert.embeddings.word_embeddings.weight"],
        base["bert.embeddings.word_embeddings.weight"],
    )
    # ... by at most what 2 AdamW steps at lr <= 1e-4 allow (|update| <= lr (1-β1)/sqrt(1-β2))
    w = "bert.encoder.layer.0.attention.self.query.weight"
    assert 0 < (trained[w] - base[w]).abs().max() < 2 * 1e-4 * 3.17

    loaded = load_model(out, base=minilm_path, device="cpu")
    assert loaded.kind == "full"
    training = loaded.source["training"]
    assert (training["seed"], training["method"], training["task"]) == (1, "full", "demo-sst")
    assert training["total_steps"] == 2 and training["train_samples"] == 8
    assert training["base_model"] == str(minilm_path.resolve())
    assert 0 <= training["validation_accuracy"] <= 1 and training["validation_samples"] == 8
    # the loaded backbone holds the trained weights
    block = loaded.blocks[0].attention.self.query.weight
    assert torch.equal(block, trained[w])
    assert AutoTokenizer.from_pretrained(out).vocab == AutoTokenizer.from_pretrained(minilm_path).vocab


def test_base_model_has_no_training_record(minilm_path: Path) -> None:
    assert load_model(minilm_path, device="cpu").source["training"] is None


@pytest.mark.parametrize("method", ["full", "lora"])
def test_same_seed_same_weights_other_seed_differs(runs: dict[str, Path], method: str) -> None:
    name = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    a, a2, b = (_weights(runs[f"{method}_{s}"], name) for s in ("1", "1b", "2"))
    assert _same(a, a2)  # saving checkpoints on the way does not change the result
    assert not _same(a, b)


def test_training_leaves_the_callers_rng_alone(minilm_path: Path, tmp_path: Path) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train(task="demo-sst", method="lora", model=minilm_path, out=tmp_path / "o", progress=False,
          **{**FAST, "max_steps": 1})  # fmt: skip
    assert torch.equal(torch.get_rng_state(), before)


# ---------------------------------------------------------------------------------------------
# LoRA
# ---------------------------------------------------------------------------------------------


def test_lora_adapter_nonzero_b_and_loads_with_training_record(
    minilm_path: Path, runs: dict[str, Path]
) -> None:
    out = runs["lora_1"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16
    assert sorted(config["target_modules"]) == ["query", "value"]
    assert Path(config["base_model_name_or_path"]) == minilm_path.resolve()
    adapter = _weights(out, "adapter_model.safetensors")
    b_keys = [k for k in adapter if "lora_B" in k]
    assert len(b_keys) == 2 * 6  # query and value in each of the 6 blocks
    assert all(adapter[k].abs().sum() > 0 for k in b_keys)  # peft initializes B to zero
    assert any("classifier" in k for k in adapter)  # the task head is trained and saved

    loaded = load_model(out, device="cpu")
    assert loaded.kind == "lora"
    training = loaded.source["training"]
    assert (training["seed"], training["method"], training["task"]) == (1, "lora", "demo-pair")
    assert training["target_modules"] == ["query", "value"]
    assert training["rank"] == 8 and training["alpha"] == 16
    # LoRA leaves the base weights alone: the adapter-disabled model is the base
    base = AutoModel.from_pretrained(minilm_path)
    with loaded.adapter_disabled():
        ids = loaded.tokenizer(["a fine film"], return_tensors="pt")
        kw = loaded.forward_inputs(ids["input_ids"], ids["attention_mask"])
        got = loaded.model(**kw, output_hidden_states=True).hidden_states[-1]
    with torch.no_grad():
        want = base(**kw).last_hidden_state
    torch.testing.assert_close(got, want)


def test_save_steps_writes_loadable_checkpoints(minilm_path: Path, runs: dict[str, Path]) -> None:
    for method in ("full", "lora"):
        out = runs[f"{method}_1"]
        name = "model.safetensors" if method == "full" else "adapter_model.safetensors"
        assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
        first = out / "checkpoint-1"
        record = json.loads((first / TRAINING_RECORD).read_text())
        assert record["step"] == 1 and record["checkpoint"] and record["seed"] == 1
        assert not _same(_weights(first, name), _weights(out, name))
        # the checkpoint at the last step is the final model
        assert _same(_weights(out / "checkpoint-2", name), _weights(out, name))
        loaded = load_model(first, base=minilm_path, device="cpu")
        assert loaded.kind == method and loaded.source["training"]["step"] == 1


# ---------------------------------------------------------------------------------------------
# resume and errors
# ---------------------------------------------------------------------------------------------


def test_resume_returns_existing_and_refuses_other_settings(
    minilm_path: Path, runs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    out = runs["lora_2"]
    weights = out / "adapter_model.safetensors"
    mtime = weights.stat().st_mtime_ns
    kw = {"task": "demo-pair", "method": "lora", "model": minilm_path, "lr": 1e-3, "progress": False}
    with caplog.at_level("INFO", logger="repdrift.training.recipe"):
        assert train(**kw, **FAST, seed=2, out=out) == out
    assert "reusing" in caplog.text and weights.stat().st_mtime_ns == mtime
    with pytest.raises(InputError, match=r"seed: 2 -> 3"):
        train(**kw, **FAST, seed=3, out=out)


def test_unfinished_run_is_restarted_and_foreign_folder_refused(
    minilm_path: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    kw = {"task": "demo-sst", "method": "lora", "model": minilm_path, "progress": False, **FAST}
    with pytest.raises(InputError, match="refusing to overwrite"):
        train(**kw, out=foreign)
    assert (foreign / "notes.txt").read_text() == "mine"

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / TRAINING_RECORD).write_text(
        json.dumps({"task": "demo-sst", "method": "lora", "seed": 0, "complete": False})
    )
    (partial / "checkpoint-7").mkdir()
    (partial / "checkpoint-7" / TRAINING_RECORD).write_text("{}")
    train(**kw, out=partial)
    assert json.loads((partial / TRAINING_RECORD).read_text())["complete"] is True
    assert not (partial / "checkpoint-7").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "qlora"}, "unknown method 'qlora'"),
        ({"task": "cola"}, "unknown task 'cola'"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"max_eval_samples": -1}, "max_eval_samples"),
        ({"lr": -1.0}, "lr"),
        ({"dropout": 1.0}, "dropout"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"target_modules": []}, "target_modules must name at least one module"),
        ({"target_modules": ["nope"]}, r"\['nope'\] are not linear modules"),
        ({"model": "/nonexistent/model"}, "does not exist"),
    ],
)
def test_bad_arguments_raise_input_error(
    minilm_path: Path, tmp_path: Path, kwargs: dict, match: str
) -> None:
    args = {"task": "demo-sst", "method": "lora", "model": minilm_path, "out": tmp_path / "o",
            "progress": False, **FAST, **kwargs}  # fmt: skip
    with pytest.raises(InputError, match=match):
        train(**args)


def test_corrupt_training_record_is_an_integrity_error(runs: dict[str, Path], tmp_path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in runs["lora_1"].iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    (copy / TRAINING_RECORD).write_text('{"task": "demo-sst"')
    with pytest.raises(IntegrityError, match=TRAINING_RECORD):
        load_model(copy, device="cpu")
    (copy / TRAINING_RECORD).write_text('{"task": "demo-sst"}')
    with pytest.raises(IntegrityError, match="seed"):
        load_model(copy, device="cpu")


# ---------------------------------------------------------------------------------------------
# labels, question answering, decoders
# ---------------------------------------------------------------------------------------------


def test_label_values() -> None:
    assert _train_data.label_values([0, 2, 1], "x") == [0, 1, 2]
    assert _train_data.label_values([5, 1, 3, 2, 4, 5], "x") == [1, 2, 3, 4, 5]  # as they are
    assert _train_data.label_values([1, 1], "x") == [1, "<other>"]
    assert _train_data.label_values(["pos", "neg", "pos"], "x") == ["neg", "pos"]
    assert _train_data.label_values([-1, 1], "x") == [-1, 1]
    with pytest.raises(InputError, match="unlabelled"):
        _train_data.label_values([-1, -1], "x")
    with pytest.raises(InputError, match=r"no label column.*--label-field"):
        _train_data.label_values(None, "x")


def _squad(n: int, words: int = 8) -> pd.DataFrame:
    rng = random.Random(0)
    names = ["Ada", "Bob", "Cleo", "Dev", "Eve", "Finn"]
    rows = []
    for i in range(n):
        who, city = rng.choice(names), rng.choice(["Paris", "Lima", "Oslo", "Perth"])
        filler = " ".join(
            rng.choice(["it", "was", "a", "long", "day", "there"]) for _ in range(words)
        )
        context = f"{filler}. {who} moved to {city} in {1900 + i}. {filler}."
        answerable = i % 3 != 0
        start = context.index(city)
        answers = {"text": [city], "answer_start": [start]} if answerable else {"text": [], "answer_start": []}  # fmt: skip
        rows.append({"id": f"q{i}", "question": f"Where did {who} move in {1900 + i}?",
                     "context": context, "answers": answers})  # fmt: skip
    return pd.DataFrame(rows)


def test_qa_labels_point_at_the_answer_tokens(minilm_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "squad.jsonl"
    _squad(12, words=40).to_json(path, orient="records", lines=True)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    samples = load_samples("squad_v2", data=path, n=None)
    examples = _train_data.qa_examples(samples, tokenizer)
    for i, ids in enumerate(examples.input_ids):
        start, end = examples.targets["start_positions"][i], examples.targets["end_positions"][i]
        answer = samples.labels[i]["text"]
        if answer:
            assert tokenizer.decode(ids[start : end + 1]) == answer[0].lower()
        else:
            assert (start, end) == (0, 0)
    # with a budget that cuts the answer out of the context, the label is [CLS]
    samples.max_length = 24
    short = _train_data.qa_examples(samples, tokenizer)
    assert all(len(ids) <= 24 for ids in short.input_ids)
    assert set(short.targets["start_positions"]) == {0}


def test_qa_lora_training_from_squad_shaped_folder(minilm_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "squad"
    folder.mkdir()
    _squad(8).to_json(folder / "train.jsonl", orient="records", lines=True)
    out = train(task="squad_v2", method="lora", model=minilm_path, data=folder, out=tmp_path / "o",
                progress=False, max_steps=2, batch_size=4)  # fmt: skip
    adapter = _weights(out, "adapter_model.safetensors")
    assert any("qa_outputs" in k for k in adapter)
    loaded = load_model(out, device="cpu")
    assert loaded.source["task_type"] == "QUESTION_ANS"
    record = loaded.source["training"]
    assert record["head"] == "question_answering" and record["validation_accuracy"] is None


def _tiny_decoder(folder: Path, kind: str, tokenizer_source: Path) -> Path:
    """A tiny random decoder of ``kind`` saved in ``folder`` with the tokenizer of
    ``tokenizer_source``."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    torch.manual_seed(0)
    if kind == "llama":
        config = tiny_llama_config(vocab_size=tokenizer.vocab_size, layers=2, positions=256)
        model = LlamaForCausalLM(config)
    else:
        config = tiny_gpt2_config(vocab_size=tokenizer.vocab_size, layers=2, positions=256)
        model = GPT2LMHeadModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    ("kind", "targets"), [("llama", ["q_proj", "v_proj"]), ("gpt2", ["c_attn"])]
)
def test_lora_on_tiny_decoders(
    minilm_path: Path, tmp_path: Path, kind: str, targets: list[str]
) -> None:
    base = _tiny_decoder(tmp_path / kind, kind, minilm_path)
    assert detect_target_modules(LlamaForCausalLM.from_pretrained(base) if kind == "llama"
                                 else GPT2LMHeadModel.from_pretrained(base)) == targets  # fmt: skip
    out = train(task="demo-pair", method="lora", model=base, out=tmp_path / "o", progress=False,
                **FAST)  # fmt: skip
    loaded = load_model(out, device="cpu")
    assert loaded.kind == "lora" and loaded.source["training"]["target_modules"] == targets
    adapter = _weights(out, "adapter_model.safetensors")
    assert all(adapter[k].abs().sum() > 0 for k in adapter if "lora_B" in k)


def test_detect_target_modules_unknown_names() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="target_modules"):
        detect_target_modules(model)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["demo-sst", "demo-pair"])
def test_demo_sized_training_learns(minilm_path: Path, tmp_path: Path, task: str) -> None:
    """The demo recipe (30 steps of 16, full, lr 2e-4) takes both demo tasks above chance."""
    out = train(task=task, method="full", model=minilm_path, out=tmp_path / "o", lr=2e-4,
                max_steps=30, progress=False)  # fmt: skip
    assert json.loads((out / TRAINING_RECORD).read_text())["validation_accuracy"] > 0.65
