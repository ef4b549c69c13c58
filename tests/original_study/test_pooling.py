"""The original study's unpooled layer files: (n, seq_len, d) tensors, batches padded and joined
with zeros, no mask. Written here as its phase-3 extractor did, with the real MiniLM; pooled by
repdrift.original_study.pooling (what `repdrift import` does), refused by load_run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer

from _original_study import TEXTS
from _original_study import original_extractor as write_original
from repdrift.errors import InputError, IntegrityError
from repdrift.original_study import pooling
from repdrift.original_study.pooling import pool_unpooled
from repdrift.store.reader import load_run
from repdrift.store.steps import verify_run


def original_extractor(minilm_path: Path, folder: Path, padding_side: str):
    tok = AutoTokenizer.from_pretrained(minilm_path)
    tok.padding_side = padding_side
    return write_original(AutoModel.from_pretrained(minilm_path).eval(), tok, folder)


@pytest.fixture(scope="module", params=["right", "left"])
def original(request, minilm_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"orig_{request.param}") / "sst2_full_finetune_seed42"
    layers, mask = original_extractor(minilm_path, folder, request.param)
    return folder, layers, mask, request.param


def test_read_as_the_original_analysis_did(original):
    folder, layers, _, _ = original
    for i in range(6):
        X = pool_unpooled(folder / "step_000000" / f"layer_{i}.pt")
        assert X.shape == (len(TEXTS), 384) and X.dtype == np.float32
        np.testing.assert_allclose(X, layers[i].mean(1).numpy(), rtol=0, atol=1e-5)


def test_load_run_refuses_unpooled_files_pointing_to_the_import(original):
    with pytest.raises(InputError, match=r"layer_0\.pt: the original study's unpooled .*repdrift import"):
        load_run(original[0])


def test_true_mask_from_token_counts_equals_the_masked_mean(original):
    folder, layers, mask, side = original
    lengths = mask.sum(1).long().numpy()
    for i in (0, 5):
        path = folder / "step_000000" / f"layer_{i}.pt"
        reference = (layers[i] * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        np.testing.assert_allclose(
            pool_unpooled(path, lengths=lengths, padding_side=side), reference.numpy(), rtol=0, atol=1e-5
        )
    # padding included and excluded differ for the short texts: the mask matters
    path = folder / "step_000000" / "layer_5.pt"
    gap = pool_unpooled(path) - pool_unpooled(path, lengths=lengths, padding_side=side)
    assert np.abs(gap).max() > 1e-2


def test_bounded_memory_blocks_give_the_same_values(original, monkeypatch):
    folder, _, mask, side = original
    lengths = mask.sum(1).long().numpy()
    path = folder / "step_000000" / "layer_3.pt"
    whole = pool_unpooled(path, lengths=lengths, padding_side=side)
    unmasked = pool_unpooled(path)
    monkeypatch.setattr(pooling, "_BLOCK_BYTES", 1)  # one row at a time
    np.testing.assert_array_equal(pool_unpooled(path, lengths=lengths, padding_side=side), whole)
    np.testing.assert_array_equal(pool_unpooled(path), unmasked)


def test_inconsistent_token_counts_are_refused_naming_the_file(original):
    folder, _, mask, side = original
    lengths = mask.sum(1).long().numpy()
    lengths[2] += 40  # more tokens than the file has positions for that row
    path = folder / "step_000000" / "layer_0.pt"
    with pytest.raises(IntegrityError, match=r"layer_0\.pt: 1 sample\(s\) have more tokens"):
        pool_unpooled(path, lengths=lengths, padding_side=side)
    with pytest.raises(IntegrityError, match=r"8 token counts given for a file of 9 samples"):
        pool_unpooled(path, lengths=lengths[:8], padding_side=side)


def test_verification_maps_unpooled_files_without_reading_them(original, monkeypatch):
    folder = original[0]
    calls = []
    monkeypatch.setattr(pooling, "pool_unpooled", lambda *a, **k: calls.append(a))
    assert verify_run(folder) == []
    assert calls == []  # checked by mapping, not pooled
