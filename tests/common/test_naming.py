"""Run-folder names and method aliases: one rule to build and parse them, the original study's
spellings included; the analysis (pairing), the runner's import of the original layout and the
run folders the runner writes all use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from repdrift.analysis import pairing
from repdrift.common.naming import (
    METHOD_ALIASES,
    RunLabels,
    base_folder_names,
    canonical_method,
    checkpoint_folder,
    checkpoint_name,
    checkpoint_step,
    find_checkpoints,
    layer_name,
    layer_names,
    parse_run_name,
    run_name,
    variant_folder_names,
)
from repdrift.errors import InputError
from repdrift.runner import job, original_layout

TASKS = ("sst2", "mrpc", "squad_v2", "demo-sst", "mnli_lora_x")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(("method", "seed"), [("full", 42), ("lora", 0), ("lora", 1337), ("base", None)])  # fmt: skip
def test_build_then_parse_round_trips(task: str, method: str, seed: int | None) -> None:
    assert parse_run_name(run_name(task, method, seed)) == RunLabels(task, method, seed)


def test_run_name_spellings() -> None:
    assert run_name("sst2", "lora", 42) == "sst2_lora_seed42"
    assert run_name("sst2", "full", 1) == "sst2_full_seed1"
    assert run_name("sst2", "base", None) == "sst2_base"
    with pytest.raises(InputError, match="needs a seed"):
        run_name("sst2", "lora", None)


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        # {task}_{method}_seed{seed}, every spelling of each method
        ("sst2_full_seed42", ("sst2", "full", 42)),
        ("sst2_full_finetune_seed42", ("sst2", "full", 42)),
        ("sst2_full_ft_seed42", ("sst2", "full", 42)),
        ("sst2_lora_seed1337", ("sst2", "lora", 1337)),
        ("squad_v2_full_finetune_seed7", ("squad_v2", "full", 7)),
        # the older {method}_seed{seed}_{task}
        ("full_seed42_sst2", ("sst2", "full", 42)),
        ("full_finetune_seed42_sst2", ("sst2", "full", 42)),
        ("full_ft_seed3_mrpc", ("mrpc", "full", 3)),
        ("lora_seed42_squad_v2", ("squad_v2", "lora", 42)),
        # base runs
        ("sst2_base", ("sst2", "base", None)),
        ("base_pretrained_sst2", ("sst2", "base", None)),
        ("base_pretrained_squad_v2", ("squad_v2", "base", None)),
        ("sst2_base_seed0", ("sst2", "base", None)),
    ],
)
def test_every_original_spelling_parses(name: str, labels: tuple) -> None:
    assert parse_run_name(name) == RunLabels(*labels)


@pytest.mark.parametrize("name", ["sst2", "sst2_lora", "sst2_lora_seedX", "runs", "sst2_adapter_seed1", ""])  # fmt: skip
def test_names_without_a_rule_parse_to_none(name: str) -> None:
    assert parse_run_name(name) is None


def test_method_aliases() -> None:
    assert canonical_method("full_finetune") == "full"
    assert canonical_method("full_ft") == "full"
    assert canonical_method("full") == "full"
    assert canonical_method("lora") == "lora"
    assert canonical_method("prefix") == "prefix"  # a user's own label passes through
    for method, aliases in METHOD_ALIASES.items():
        assert aliases[0] == method  # the canonical spelling is tried first


@pytest.mark.parametrize("method", ["full", "lora", "full_finetune"])
def test_every_folder_tried_parses_back_to_what_was_looked_for(method: str) -> None:
    names = variant_folder_names("sst2", method, 42)
    assert names[0] == run_name("sst2", canonical_method(method), 42)
    assert len(names) == 2 * len(METHOD_ALIASES[canonical_method(method)])
    for name in names:
        assert parse_run_name(name) == RunLabels("sst2", canonical_method(method), 42)


def test_base_folders_tried() -> None:
    names = base_folder_names("sst2")
    assert names == ["sst2_base", "base_pretrained_sst2", "sst2_base_seed0", "sst2"]
    for name in names[:-1]:
        assert parse_run_name(name) == RunLabels("sst2", "base", None)
    assert parse_run_name(names[-1]) is None  # a bare task folder is found by place only


def test_the_runner_and_the_analysis_use_the_one_rule(tmp_path: Path) -> None:
    assert job.run_name is run_name
    root = tmp_path / "runs"
    assert original_layout.variant_candidates(root, "sst2", "full", 42) == [
        root / n for n in variant_folder_names("sst2", "full", 42)
    ]
    assert original_layout.base_candidates([root, tmp_path], "sst2") == [
        *(root / n for n in base_folder_names("sst2")),
        *(tmp_path / n for n in base_folder_names("sst2")),
    ]
    assert pairing.parse_run_name is parse_run_name
    assert not hasattr(pairing, "LEGACY_NAME") and not hasattr(original_layout, "METHOD_NAMES")


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("lora_seed42_sst2", ("sst2", "lora", 42)),
        ("sst2_full_ft_seed7", ("sst2", "full", 7)),
        ("sst2_base_seed0", ("sst2", "base", None)),
    ],
)
def test_pairing_labels_legacy_runs_by_their_folder_name(tmp_path: Path, name, labels) -> None:
    import torch

    step = tmp_path / name / "step_000000"
    step.mkdir(parents=True)
    torch.save(torch.zeros(4, 3), step / "layer_0.pt")
    info = pairing.describe(tmp_path / name)
    assert (info.task, info.method, info.seed) == labels


def test_layer_names() -> None:
    assert layer_names(3) == [layer_name(0), layer_name(1), layer_name(2)]
    assert layer_names(2, embeddings=True) == ["embeddings", "layer_0", "layer_1"]
    with pytest.raises(InputError, match="n_blocks"):
        layer_names(True)


def test_checkpoint_folders_in_or_beside_the_model(tmp_path: Path) -> None:
    assert checkpoint_name(500) == "checkpoint-500" and checkpoint_step("checkpoint-500") == 500
    assert [checkpoint_step(n) for n in ("checkpoint-x", "checkpoint-", "ckpt-5", "checkpoint-5a")] == [
        None, None, None, None,
    ]  # fmt: skip
    trainer_out = tmp_path / "out"
    final = trainer_out / "final"
    for step in (20, 5):
        (trainer_out / checkpoint_name(step)).mkdir(parents=True)
    (trainer_out / "checkpoint-best").mkdir()
    (trainer_out / "checkpoint-7").write_text("a file, not a folder")
    final.mkdir()
    # none inside the final save: the Trainer's output_dir beside it, by increasing step
    assert find_checkpoints(final) == {5: trainer_out / "checkpoint-5", 20: trainer_out / "checkpoint-20"}
    assert checkpoint_folder(final, 5) == trainer_out / "checkpoint-5"
    # once training saves inside the variant folder, those win
    (final / checkpoint_name(10)).mkdir()
    assert find_checkpoints(final) == {10: final / "checkpoint-10"}
    assert checkpoint_folder(final, 10) == final / "checkpoint-10"
    assert checkpoint_folder(final, 99) == final / "checkpoint-99"  # not there yet: inside
    assert find_checkpoints(tmp_path / "missing" / "model") == {}
