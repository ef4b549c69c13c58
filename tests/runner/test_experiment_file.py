"""Experiment files: validation errors name the file and the field; paths resolve against the file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from repdrift.errors import InputError
from repdrift.runner.experiment import Experiment
from repdrift.runner.experiment_file import load_experiment, parse_experiment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

VALID = {
    "name": "t",
    "base_model": "org/some-model",
    "tasks": ["sst2", "mrpc"],
    "seeds": [1, 2],
    "variants": [
        {"method": "full", "path": "models/{task}_full_seed{seed}"},
        {"method": "lora", "path": "adapters/{task}_{method}_seed{seed}"},
    ],
}


def write(tmp_path: Path, data: dict | str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def error_of(tmp_path: Path, data: dict | str) -> str:
    path = write(tmp_path, data)
    with pytest.raises(InputError) as info:
        load_experiment(path)
    return str(info.value)


def with_(**changes) -> dict:
    return {**VALID, **changes}


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, VALID))
    assert isinstance(exp, Experiment)
    assert exp.task_names == ["sst2", "mrpc"]
    assert exp.samples == 750 and exp.sample_seed == 0
    assert exp.train is None and exp.checkpoints is False
    assert exp.extraction.pooling == "mean" and exp.analysis.n_boot == 1000
    assert exp.base_model == "org/some-model"  # a hub id is kept as is


def test_missing_field_names_file_and_index(tmp_path: Path) -> None:
    data = with_(variants=[VALID["variants"][0], {"method": "lora"}])
    msg = error_of(tmp_path, data)
    assert f"{tmp_path / 'study.yaml'}: variants[1].path: field required" in msg


def test_typo_is_an_unknown_field_with_a_suggestion(tmp_path: Path) -> None:
    msg = error_of(tmp_path, with_(analysis={"n_bot": 10}))
    assert "analysis.n_bot: unknown field" in msg and "'n_boot'" in msg
    msg = error_of(tmp_path, with_(sample=10))
    assert "study.yaml: sample: unknown field" in msg and "'samples'" in msg


def test_every_problem_is_reported(tmp_path: Path) -> None:
    data = with_(
        seeds="x",
        variants=[{"method": "qlora", "path": "m/{task}_{seed}"}],
        extraction={"pooling": "median"},
    )
    lines = error_of(tmp_path, data).splitlines()
    fields = [line.split(": ")[1] for line in lines]
    assert fields == ["seeds", "variants[0].method", "extraction.pooling"]
    assert all(line.startswith(str(tmp_path / "study.yaml")) for line in lines)


def test_unknown_placeholder(tmp_path: Path) -> None:
    data = with_(variants=[{"method": "full", "path": "m/{task}_{run}_{seed}"}])
    msg = error_of(tmp_path, data)
    assert "variants[0].path: unknown placeholder {run}" in msg
    data = with_(variants=[{"method": "full", "path": "m/{}_{seed}"}])
    assert "unknown placeholder {}" in error_of(tmp_path, data)


def test_template_must_separate_tasks_and_seeds(tmp_path: Path) -> None:
    msg = error_of(tmp_path, with_(variants=[{"method": "full", "path": "m/{task}"}]))
    assert "variants[0].path: needs {seed}" in msg
    msg = error_of(tmp_path, with_(variants=[{"method": "full", "path": "m/{seed}"}]))
    assert "variants[0].path: needs {task}" in msg


def test_duplicates_are_refused(tmp_path: Path) -> None:
    assert "seeds: a seed is listed twice" in error_of(tmp_path, with_(seeds=[1, 1]))
    assert "tasks[0].name: task 'sst2' is listed twice" in error_of(
        tmp_path, with_(tasks=["sst2", "sst2"])
    )
    two_full = [VALID["variants"][0], {"method": "full", "path": "x/{task}{seed}"}]
    assert "variants[1].method: method 'full' already has a variant" in error_of(
        tmp_path, with_(variants=two_full)
    )


def test_checkpoint_settings(tmp_path: Path) -> None:
    msg = error_of(tmp_path, with_(checkpoints=True, train={"epochs": 1}))
    assert "train.save_steps" in msg
    msg = error_of(tmp_path, with_(checkpoints=[100, 150], train={"max_steps": 200, "save_steps": 100}))  # fmt: skip
    assert "checkpoints: steps [150] are not multiples" in msg
    assert "checkpoints: expected true/false" in error_of(tmp_path, with_(checkpoints=[0]))
    exp = load_experiment(write(tmp_path, with_(checkpoints=[200, 100, 100])))
    assert exp.checkpoints == [100, 200]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "name: x\ntasks: [sst2\nseeds: [1]\n")
    assert "study.yaml: not valid YAML (line" in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such experiment file"):
        load_experiment(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_the_file(tmp_path: Path, monkeypatch) -> None:
    sub = tmp_path / "studies"
    sub.mkdir()
    (sub / "local-model").mkdir()
    data = with_(
        base_model="local-model",
        tasks=["sst2", {"name": "mine", "data": "data/mine.csv"}],
        output="out",
        variants=[
            {"method": "full", "path": "models/{task}_full_seed{seed}"},
            {"method": "lora", "path": "{output}/adapters/{task}_seed{seed}"},
        ],
        **{"import": None},
    )
    monkeypatch.chdir(tmp_path)  # the current directory must not matter
    exp = load_experiment(write(sub, data))
    assert exp.base_model == str(sub / "local-model")
    assert exp.task("mine").data == sub / "data" / "mine.csv"
    assert exp.output == sub / "out"
    assert exp.variant_path(exp.variants[0], "sst2", 2) == sub / "models" / "sst2_full_seed2"
    assert exp.variant_path(exp.variants[1], "mine", 1) == sub / "out/adapters/mine_seed1"
    moved = load_experiment(write(sub, data), output="elsewhere")
    assert moved.output == tmp_path / "elsewhere"  # --out is relative to the current directory
    assert moved.variant_path(moved.variants[1], "mine", 1) == tmp_path / "elsewhere/adapters/mine_seed1"  # fmt: skip


def test_bundled_model(tmp_path: Path, minilm_path: Path) -> None:
    exp = load_experiment(write(tmp_path, with_(base_model="bundled:minilm")))
    assert Path(exp.base_model).resolve() == minilm_path.resolve()
    assert exp.base_model_label == "bundled:minilm"
    assert "unknown bundled model 'bert'" in error_of(tmp_path, with_(base_model="bundled:bert"))


def test_task_columns_and_budget(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("uid,review,stars\n1,good,5\n")
    data = with_(tasks=[{"name": "mine", "data": "x.csv", "text_fields": ["review"],
                         "id_field": "uid", "label_field": "stars", "max_length": 512}])  # fmt: skip
    exp = parse_experiment(data, root=tmp_path)
    assert exp.task("mine").columns() == {"text_fields": ("review",), "id_field": "uid",
                                          "label_field": "stars", "max_length": 512}  # fmt: skip
    three = with_(tasks=[{"name": "mine", "data": "x.csv", "text_fields": ["a", "b", "c"]}])
    assert "tasks[0].text_fields" in error_of(tmp_path, three)
    short = with_(tasks=[{"name": "mine", "data": "x.csv", "max_length": 1}])
    assert "tasks[0].max_length" in error_of(tmp_path, short)


def test_train_lr_per_method(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, with_(train={"max_steps": 5, "lr": 1e-4})))
    assert exp.train.learning_rate("full") == exp.train.learning_rate("lora") == 1e-4
    exp = load_experiment(write(tmp_path, with_(train={"lr": {"lora": 1e-3}})))
    assert exp.train.learning_rate("lora") == 1e-3
    assert exp.train.for_method("full").lr is None  # full keeps its default rate
    assert "train.lr.qlora" in error_of(tmp_path, with_(train={"lr": {"qlora": 1.0}}))


def test_metrics_are_checked_against_the_registry(tmp_path: Path) -> None:
    from repdrift.metrics.registry import DEFAULT_METRICS
    from repdrift.runner.sections import AnalysisConfig

    assert AnalysisConfig().metrics == tuple(DEFAULT_METRICS)
    msg = error_of(tmp_path, with_(analysis={"metrics": ["cka_lin"]}))
    assert "analysis.metrics: unknown metric 'cka_lin'" in msg


def test_the_analysis_section_sets_every_option_compare_takes(tmp_path: Path) -> None:
    import inspect

    from repdrift.analysis.compare_runs import compare
    from repdrift.analysis.settings import AnalysisSettings
    from repdrift.runner.sections import AnalysisConfig

    # compare()'s own parameters are the runs, their labels and where to write; every other
    # option is a field of AnalysisSettings, and so of the experiment file's section
    own = set(inspect.signature(compare).parameters) - {"options", "settings"}
    assert own == {"runs", "ref", "out", "labels", "progress"}
    assert set(AnalysisSettings.model_fields) <= set(AnalysisConfig.model_fields)
    section = {
        "metrics": ["cka_linear", "cka_rbf"], "metric_params": {"cka_rbf": {"sigma": 0.5}},
        "token_blocks": 20, "token_null": 5, "allow_different_inputs": True,
        "methods": ["full", "lora"],
    }  # fmt: skip
    exp = load_experiment(write(tmp_path, with_(analysis=section)))
    assert exp.analysis.metric_params == {"cka_rbf": {"sigma": 0.5}}
    assert (exp.analysis.token_blocks, exp.analysis.token_null) == (20, 5)
    assert exp.analysis.methods == ("full", "lora") and exp.analysis.allow_different_inputs
    section["metric_params"] = {"cka_rbf": {"sigmaa": 0.5}}
    assert "unknown parameter 'sigmaa'" in error_of(tmp_path, with_(analysis=section))
    section["metric_params"] = {"procrustes": {}}
    assert "not among the metrics" in error_of(tmp_path, with_(analysis=section))


def test_import_section(tmp_path: Path) -> None:
    data = {"name": "old", "tasks": ["sst2"], "seeds": [42], "import": "results/phase3"}
    exp = load_experiment(write(tmp_path, data))
    assert exp.import_ is not None and exp.import_.runs == tmp_path / "results/phase3"
    assert exp.import_.methods == ["full", "lora"]
    msg = error_of(tmp_path, {**data, "variants": VALID["variants"]})
    assert "variants: not allowed with import" in msg
    assert "base_model: field required" in error_of(tmp_path, {k: v for k, v in VALID.items() if k != "base_model"})  # fmt: skip


def test_parse_experiment_from_a_mapping(tmp_path: Path) -> None:
    exp = parse_experiment(dict(VALID), root=tmp_path, where="inline")
    assert exp.output == tmp_path / "output"
    with pytest.raises(InputError, match=r"^inline: tasks: field required"):
        parse_experiment({"seeds": [1]}, root=tmp_path, where="inline")
    with pytest.raises(InputError, match="expected a mapping"):
        parse_experiment(["x"], root=tmp_path, where="inline")


def test_examples_are_valid() -> None:
    exp = load_experiment(EXAMPLES / "tinyllama-study.yaml")
    assert exp.task_names == ["squad_v2", "mrpc", "sst2", "rte"]
    assert exp.seeds == [42, 1337, 2024] and exp.samples == 750
    assert exp.base_model.startswith("TinyLlama/")
    demo = load_experiment(EXAMPLES / "demo.yaml")
    assert demo.base_model_label == "bundled:minilm"


def test_defaults_documented_in_docstring_example_parse(tmp_path: Path) -> None:
    import repdrift.runner.experiment as config

    example = config.__doc__.split("Example::")[1].split("Relative paths")[0]
    raw = yaml.safe_load(textwrap.dedent(example))
    raw["tasks"] = ["demo-sst"]  # the custom data file of the example does not exist here
    exp = parse_experiment(raw, root=tmp_path)
    assert exp.train is not None and exp.train.max_steps == 60


def test_resampled_metrics_must_be_among_the_metrics(tmp_path: Path) -> None:
    data = with_(analysis={"metrics": ["cka_debiased", "procrustes"], "resampled": ["cka_linear"]})
    assert "analysis.resampled" in error_of(tmp_path, data) and "cka_linear" in error_of(tmp_path, data)
    ok = with_(analysis={"metrics": ["cka_debiased", "procrustes"], "resampled": ["cka_debiased"]})
    assert parse_experiment(ok, root=tmp_path).analysis.resampled == ("cka_debiased",)
