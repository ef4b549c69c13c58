"""The experiment file's ``extraction:`` section is ExtractionOptions; jobs carry it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import yaml

from repdrift.errors import InputError
from repdrift.extraction.options import ExtractionOptions
from repdrift.runner.experiment_file import load_experiment
from repdrift.runner.job import Job
from repdrift.runner.plan import plan_jobs

VALID = {
    "name": "t",
    "base_model": "org/some-model",
    "tasks": ["sst2"],
    "seeds": [1],
    "variants": [{"method": "lora", "path": "adapters/{task}_{method}_seed{seed}"}],
}


def load(tmp_path: Path, **changes):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**VALID, **changes}))
    return path, lambda: load_experiment(path)


def test_section_validates_to_the_same_object(tmp_path: Path) -> None:
    section = {"pooling": "first", "layers": [0, "embeddings"], "batch_size": 8, "dtype": "bf16"}
    _, read = load(tmp_path, extraction=section)
    exp = read()
    assert type(exp.extraction) is ExtractionOptions
    assert exp.extraction == ExtractionOptions(**section)
    assert exp.extraction.dtype == "bfloat16"  # one spelling, as the API stores it
    _, read = load(tmp_path)
    assert read().extraction == ExtractionOptions()  # no section: the same defaults


def test_section_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path, read = load(tmp_path, extraction={"pooling": "median", "batch_size": 0})
    with pytest.raises(InputError) as info:
        read()
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}: extraction.pooling: pooling='median' is not one of mean, first, last, max, tokens",
        f"{path}: extraction.batch_size: input should be greater than or equal to 1",
    ]


def test_unknown_section_field_is_an_error_naming_it(tmp_path: Path) -> None:
    path, read = load(tmp_path, extraction={"poolng": "first"})
    with pytest.raises(InputError) as info:
        read()
    assert str(info.value) == f"{path}: extraction.poolng: unknown field (did you mean 'pooling'?)"


def test_jobs_carry_the_options_and_are_built_by_keyword(tmp_path: Path) -> None:
    _, read = load(
        tmp_path, extraction={"pooling": "max", "format": "pt"}, train={"max_steps": 5, "save_steps": 5},
        checkpoints=[5], samples=12, sample_seed=3,
    )  # fmt: skip
    exp = read()
    jobs = {j.id: j for j in plan_jobs(exp)}
    extract_jobs = [j for j in jobs.values() if j.kind == "extract"]
    assert len(extract_jobs) == 3  # base, lora step 0, lora step 5
    for job in extract_jobs:  # typed settings, not loose keyword arguments
        assert job.options == exp.extraction and job.samples == exp.sample_settings("sst2")
        assert (job.samples.task, job.samples.n, job.samples.seed) == ("sst2", 12, 3)
        assert job.training is None
    trained = jobs["train:sst2:lora:seed1"]
    assert trained.options is None and trained.samples == exp.sample_settings("sst2")
    assert trained.training == exp.train.for_method("lora") and trained.training.max_steps == 5
    assert jobs["extract:sst2:lora:seed1"].base == "org/some-model"
    assert jobs["extract:sst2:base"].base is None
    step = jobs["extract:sst2:lora:seed1:step5"]
    for job in (step, trained):  # picklable for Ray workers, settings included
        copy = pickle.loads(pickle.dumps(job))
        assert copy == job and (copy.options, copy.samples, copy.training) == (
            job.options, job.samples, job.training
        )
    with pytest.raises(TypeError):
        Job("x", "extract", "sst2", "base", None, 0, "m", Path("o"), "g")  # type: ignore[misc]
