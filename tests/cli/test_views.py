"""The CLI shows what the report shows: the drift table and the headline use the shared final
step and default metric; the weights command writes through the one table writer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import BertModel
from typer.testing import CliRunner

from _synthetic_results import write_study
from _tiny_models import tiny_bert_config
from repdrift.analysis.compare_runs import compare
from repdrift.analysis.headline import headline
from repdrift.cli import views
from repdrift.cli.commands import app
from repdrift.store.results import load_results
from repdrift.store.writer import write_run

runner = CliRunner()


def test_compare_shows_the_default_metric_at_the_final_step(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(30)]
    base = {f"layer_{i}": rng.normal(size=(30, 6)) for i in range(2)}
    write_run(tmp_path / "base", base, task="toy", kind="base", sample_ids=ids)
    runs = [str(tmp_path / "base")]
    for method in ("lora", "full"):
        for step, scale in ((100, 0.1), (0, 1.0)):
            moved = {k: v + scale * rng.normal(size=v.shape) for k, v in base.items()}
            write_run(tmp_path / method, moved, task="toy", kind=method, sample_ids=ids, step=step)
        runs.append(str(tmp_path / method))
    out = tmp_path / "results"
    result = runner.invoke(
        app,
        ["compare", *runs, "--out", str(out), "--n-boot", "0", "--n-perm", "0",
         "-m", "cka_linear", "-m", "cka_debiased"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # cka_debiased although listed second: the metric the report and the figures show
    shown_text = " ".join(result.stdout.split())
    assert "mean drift (1 - cka_debiased) per layer" in shown_text
    drift = pd.read_parquet(out / "drift.parquet")
    final = drift[(drift.step == 0) & (drift.metric == "cka_debiased")]
    shown = final[(final.method == "full") & (final.layer_index == 0)].drift.mean()
    assert f"{shown:.4f}" in shown_text


def test_headline_view_names_the_embeddings_and_the_correction(tmp_path):
    paths = write_study(tmp_path / "runs", tasks=("toy",), steps=((0, 1.0),))
    compare(paths, out=tmp_path / "results", n_boot=50, n_perm=20, progress=False)
    h = headline(load_results(tmp_path / "results"))
    with views.console.capture() as captured:
        views.show_headline(h)
    text = " ".join(captured.get().split())
    assert f"mean drift (1 - {h.metric})" in text
    row = h.comparison("toy")
    assert "toy: lora drifts less than full" in text
    assert "significant after Holm: " in text
    assert row.n_layers == 7  # the embeddings and 6 blocks; the embedding output reads emb
    lower = ", ".join("emb" if i < 0 else str(i) for i in row.layers_a_less)
    assert f"lora lower in layers [{lower}]" in text
    assert views._layers([-1, 0, 3]) == "emb, 0, 3"
    assert "[-1" not in text and ", -1" not in text


def _tiny_models(root):
    config = tiny_bert_config(
        vocab_size=50, layers=2, positions=32, hidden_size=16, intermediate_size=32
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(root / "base")
    tuned = BertModel.from_pretrained(root / "base")
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.01 * torch.randn_like(p))
    tuned.save_pretrained(root / "full1")
    return root / "base", root / "full1"


def test_weights_command_writes_through_the_table_writer(tmp_path):
    base, full = _tiny_models(tmp_path / "models")
    folder = tmp_path / "results"
    result = runner.invoke(app, ["--quiet", "weights", str(base), str(full), "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["weights.csv", "weights.parquet"]
    table = pd.read_parquet(folder / "weights.parquet")
    assert len(table) > 0 and (table.method == "full").all()
    single = tmp_path / "one" / "w.csv"
    result = runner.invoke(app, ["--quiet", "weights", str(base), str(full), "--out", str(single)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in single.parent.iterdir()) == ["w.csv"]
    pd.testing.assert_frame_equal(pd.read_csv(single), pd.read_csv(folder / "weights.csv"))
