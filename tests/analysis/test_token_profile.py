"""Which tokens moved, without a tokenizer in the analysis: a token-level run records its
tokenizer's special ids, separator, token strings and decoded samples beside the token ids, and
a run written before that is still profiled (types inferred from the ids, ids shown with a note).
Real files: the bundled MiniLM extracted with repdrift."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from transformers import AutoTokenizer

import repdrift
from repdrift.analysis.token_profile import (
    NO_TEXT_NOTE,
    profile_rows,
    sample_rows,
    token_layout,
)
from repdrift.common.atomic import sha256_file
from repdrift.store.manifest import FileEntry, read_manifest, write_manifest
from repdrift.store.tensorfile import save_safetensors
from repdrift.store.token_ids import TOKEN_IDS_FILE, read_token_ids

LABELS = {"task": "demo-pair", "run": "r", "layer": "layer_5"}


@pytest.fixture(scope="module")
def run(minilm_path: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("token_profile")
    settings = {"task": "demo-pair", "samples": 8, "device": "cpu", "pooling": "tokens"}
    return Path(repdrift.extract(str(minilm_path), out=root / "demo-pair_base", progress=False,
                                 **settings))  # fmt: skip


def _drift(n_tokens: int) -> np.ndarray:
    return np.random.default_rng(0).random(n_tokens)


def test_the_run_records_what_the_analysis_shows_of_its_tokens(run, minilm_path):
    tok = AutoTokenizer.from_pretrained(minilm_path)
    loaded = repdrift.load_run(run)
    tids = read_token_ids(loaded)
    assert tids is not None and tids.text is not None
    rows = [tids.sample(i).tolist() for i in range(len(tids.offsets) - 1)]
    assert tids.text.texts == tok.batch_decode(rows, skip_special_tokens=False)
    assert tids.text.sep_id == tok.sep_token_id
    assert set(tids.text.special_ids) == set(tok.all_special_ids)
    present = sorted(set(tids.ids.tolist()))
    assert sorted(tids.text.vocabulary) == present
    assert list(tids.text.vocabulary.values()) == tok.convert_ids_to_tokens(present)


def test_profile_reads_the_recorded_text(run, minilm_path):
    tok = AutoTokenizer.from_pretrained(minilm_path)
    loaded = repdrift.load_run(run)
    _, offsets = loaded.tokens("layer_5")
    layout = token_layout(loaded, offsets)
    assert layout.source == "recorded"
    assert set(layout.kind) == {"special", "first text", "second text"}
    drift = _drift(int(offsets[-1]))
    samples = sample_rows(LABELS, layout, drift, loaded.sample_ids)
    for row in samples:
        ids = layout.ids[offsets[row["sample"]] : offsets[row["sample"] + 1]].tolist()
        assert row["text"] == tok.decode(ids, skip_special_tokens=False)
        assert row["text"].startswith("[CLS]")
        first = row["top_tokens"].split(" (")[0]
        name, position = first.rsplit("@", 1)
        assert name == tok.convert_ids_to_tokens(ids[int(position)])
    kinds = {r["key"] for r in profile_rows(LABELS, layout, drift) if r["by"] == "type"}
    assert kinds == {"special", "first text", "second text"}


def _as_older_run(run: Path, target: Path) -> Path:
    """A copy of ``run`` whose token ids file is what repdrift wrote before it recorded the token
    text (ids, offsets, an empty special-id list), listed in the manifest with its new sha256."""
    shutil.copytree(run, target)
    step = target / "step_000000"
    path = step / TOKEN_IDS_FILE
    with safe_open(path, framework="pt") as f:  # copies: the file is mapped while open
        tensors = {key: f.get_tensor(key).clone() for key in ("token_ids", "offsets")}
    path.unlink()
    save_safetensors(tensors, path, metadata={"writer": "repdrift", "special_ids": "[]"})
    manifest = read_manifest(step / "metadata.json")
    files = dict(manifest.files)
    files[TOKEN_IDS_FILE] = FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
    write_manifest(step / "metadata.json", manifest.model_copy(update={"files": files}))
    return target


def test_an_older_run_without_token_text_is_profiled_with_ids_and_a_note(run, tmp_path):
    older = repdrift.load_run(_as_older_run(run, tmp_path / "demo-pair_base"))  # verifies hashes
    tids = read_token_ids(older)
    assert tids is not None and tids.text is None
    _, offsets = older.tokens("layer_5")
    layout = token_layout(older, offsets)
    assert layout.source == "inferred from ids"
    # [CLS] opens and [SEP] closes every sample: the pair's types are still found
    assert set(layout.kind) == {"special", "first text", "second text"}
    drift = _drift(int(offsets[-1]))
    samples = sample_rows(LABELS, layout, drift, older.sample_ids)
    assert len(samples) == 5
    for row in samples:
        ids = layout.ids[offsets[row["sample"]] : offsets[row["sample"] + 1]].tolist()
        assert row["text"] == "ids: " + " ".join(map(str, ids)) + " " + NO_TEXT_NOTE
        first = row["top_tokens"].split(" (")[0]
        name, position = first.rsplit("@", 1)
        assert name == str(ids[int(position)])
    assert profile_rows(LABELS, layout, drift)
