"""docs/experiment.md is generated from the schema and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_experiment_reference", ROOT / "scripts" / "make_experiment_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_page_is_current():
    generator = _generator()
    on_disk = (ROOT / "docs" / "experiment.md").read_text(encoding="utf-8")
    assert on_disk == generator.render(), "run: python scripts/make_experiment_reference.py"


def test_every_field_of_every_section_is_described():
    generator = _generator()
    for _, model in generator.SECTIONS:
        docs = generator.section_docs(model)
        for name, info in model.model_fields.items():
            assert docs.get(info.alias or name) or docs.get(name), f"{model.__name__}.{name}"
    page = generator.render()
    assert "`text_fields`" in page and "`device_map`" in page and "``" not in page
