"""A complete run of the same call is recognised before any model loads (and without torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repdrift.errors import InputError, IntegrityError
from repdrift.extraction import api
from repdrift.extraction.api import extract
from repdrift.extraction.options import ExtractionOptions
from repdrift.extraction.request import REQUEST_KEY, check_request
from repdrift.tasks.settings import SampleSettings

SETTINGS = {"task": "demo-sst", "samples": 12, "device": "cpu", "progress": False}
DEMO_12 = SampleSettings(task="demo-sst", n=12)


@pytest.fixture()
def run(minilm_path, tmp_path) -> Path:
    return extract(str(minilm_path), out=tmp_path / "run", **SETTINGS)


def _no_model_load(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(api, "load_model", refuse)


def test_same_call_returns_before_the_model_loads(run, minilm_path, monkeypatch):
    manifest = json.loads((run / "step_000000" / "metadata.json").read_text())
    assert manifest["extra"][REQUEST_KEY]
    _no_model_load(monkeypatch)
    assert extract(str(minilm_path), out=run, **SETTINGS) == run
    assert json.loads((run / "step_000000" / "metadata.json").read_text()) == manifest


def test_another_setting_takes_the_normal_path(run, minilm_path, monkeypatch):
    opts = ExtractionOptions(pooling="first", device="cpu")
    check = check_request(str(minilm_path), samples=DEMO_12, out=run, options=opts)
    assert not check.complete
    with pytest.raises(InputError, match="'pooling' differs"):
        extract(str(minilm_path), out=run, pooling="first", **SETTINGS)


def test_changed_files_are_not_vouched_for(run, minilm_path, tmp_path):
    opts = ExtractionOptions(device="cpu")
    assert check_request(str(minilm_path), samples=DEMO_12, out=run, options=opts).complete
    layer = run / "step_000000" / "layer_3.safetensors"
    layer.write_bytes(layer.read_bytes()[:-8] + b"\0" * 8)  # same size, other bytes
    assert not check_request(str(minilm_path), samples=DEMO_12, out=run, options=opts).complete
    with pytest.raises(IntegrityError, match="layer_3"):
        extract(str(minilm_path), out=run, **SETTINGS)


def test_cli_rerun_imports_no_torch(run, minilm_path):
    code = (
        "import sys\n"
        "from repdrift.cli.commands import main\n"
        f"sys.argv = ['repdrift', '--quiet', 'extract', {str(minilm_path)!r}, '--task', 'demo-sst',"
        f" '--samples', '12', '--device', 'cpu', '--out', {str(run)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout  # fmt: skip
    assert out.strip().splitlines()[-1] == "False False"
