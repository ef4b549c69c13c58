"""The public API of the README keeps working after every subpackage has been imported.

`repdrift.extract` once became the module `repdrift/extract.py` after its first call; now no
subpackage shares a name with a public function. Each public function is called twice in this
process, after importing every module of the package.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer

import repdrift
from _perturbed import perturb_blocks

PUBLIC_FUNCTIONS = ("extract", "compare", "load_run", "load_results", "plan_seeds")


def _import_everything() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(repdrift.__path__, "repdrift."):
        if info.name.endswith("__main__"):
            continue  # runs the CLI
        importlib.import_module(info.name)
        names.append(info.name)
    return names


def test_public_names_are_functions_after_importing_every_subpackage():
    imported = _import_everything()
    assert {"repdrift.extraction", "repdrift.analysis", "repdrift.store"} <= set(imported)
    for name in PUBLIC_FUNCTIONS:
        assert inspect.isfunction(getattr(repdrift, name)), name
        namespace: dict = {}
        exec(f"from repdrift import {name}", namespace)  # the form users type
        assert inspect.isfunction(namespace[name]), name
    assert inspect.ismodule(repdrift.metrics)
    assert callable(repdrift.metrics.compute) and "cka_debiased" in repdrift.metrics.names()
    assert set(repdrift.__all__) >= {*PUBLIC_FUNCTIONS, "metrics", "__version__"}


@pytest.fixture(scope="module")
def finetuned(minilm_path, tmp_path_factory) -> Path:
    """A 'full fine-tune' of MiniLM: the real weights with the last two blocks perturbed."""
    out = tmp_path_factory.mktemp("full")
    model = AutoModel.from_pretrained(minilm_path)
    perturb_blocks(model.encoder.layer[-2:], 0.05)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return out


def test_readme_api_twice_in_one_process(minilm_path, finetuned, tmp_path):
    _import_everything()
    settings = {"task": "demo-sst", "samples": 24, "device": "cpu", "progress": False}
    for attempt in range(2):
        root = tmp_path / f"try{attempt}"
        base = repdrift.extract(str(minilm_path), out=root / "demo-sst_base", **settings)
        full = repdrift.extract(
            str(finetuned), base=str(minilm_path), out=root / "demo-sst_full_seed1", **settings
        )
        results = repdrift.compare(
            [base, full], out=root / "results", n_boot=20, n_perm=20, progress=False
        )
        drift = results.drift.query("metric == 'cka_debiased'").sort_values("layer_index")
        # the untouched blocks 0-3 give identical representations; the perturbed 4, 5 moved
        assert np.abs(drift["drift"].to_numpy()[:4]).max() < 1e-12
        assert (drift["drift"].to_numpy()[4:] > 1e-4).all()
        X = repdrift.load_run(base).layer(5)
        Y = repdrift.load_run(full).layer(5)
        assert X.shape == (24, 384) and X.dtype == np.float32
        same = repdrift.metrics.compute("cka_debiased", X, Y)
        assert drift["drift"].iloc[-1] == pytest.approx(1 - same, abs=1e-12)
        loaded = repdrift.load_results(root / "results")
        assert len(loaded.drift) == len(results.drift)
        assert inspect.isfunction(repdrift.extract) and inspect.isfunction(repdrift.compare)
