"""One summary of the answer (issue 20, case 4): the headline computed once by the analysis,
stored in results.json and read by the console and the report, so the three say the same thing.

The study: LoRA leaves the embeddings as they were (structural zeros: left out of every
comparison, in the console as in the report), every method moves its layers along one shared
direction (drift well above the seed floor), except full fine-tuning's layer 0, whose seeds
differ more from each other than from the base (drift within the seed noise floor: flagged
wherever it is shown); full fine-tuning's layer 1 differs between seeds by round-off only, so
its floor is 0 up to float64 noise and must print as 0.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from repdrift.analysis import stored_headline
from repdrift.analysis.headline import headline
from repdrift.analysis.stored_headline import KEY, fingerprint, from_record, headline_of, to_record
from repdrift.cli.commands import app
from repdrift.common.display import number
from repdrift.store.results import load_results
from repdrift.store.writer import write_run

runner = CliRunner()
N, D = 60, 8
LAYERS = ["embeddings", "layer_0", "layer_1", "layer_2", "layer_3"]
#: (shared shift, seed noise) per method and layer: full's layer 0 is mostly seed noise.
SCALES = {
    "full": {"embeddings": (0.6, 0.1), "layer_0": (0.3, 0.8), "layer_1": (0.9, 1e-9),
             "layer_2": (1.2, 0.1), "layer_3": (1.5, 0.1)},
    "lora": {"embeddings": (0.0, 0.0), "layer_0": (0.3, 0.1), "layer_1": (0.4, 0.1),
             "layer_2": (0.5, 0.1), "layer_3": (0.6, 0.1)},
}  # fmt: skip


def _write_study(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(N)]
    base = {name: rng.normal(size=(N, D)) for name in LAYERS}
    write_run(root / "base", base, task="toy", kind="base", sample_ids=ids)
    paths = [str(root / "base")]
    for method, scales in SCALES.items():
        shift = {name: rng.normal(size=(N, D)) for name in LAYERS}  # shared by the seeds
        for seed in (1, 2, 3):
            noise = np.random.default_rng(100 * seed + len(method))
            layers = {}
            for name in LAYERS:
                moved, spread = scales[name]
                if moved == spread == 0:
                    layers[name] = base[name].copy()  # LoRA's embeddings: untouched
                else:
                    layers[name] = (
                        base[name] + moved * shift[name] + spread * noise.normal(size=(N, D))
                    )
            path = root / f"toy_{method}_seed{seed}"
            write_run(
                path, layers, task="toy", kind=method, sample_ids=ids,
                model={"name": "toy", "training": {"seed": seed}},
            )  # fmt: skip
            paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The console output of `repdrift compare` and `repdrift report`, and the folder."""
    root = tmp_path_factory.mktemp("stored_headline")
    paths = _write_study(root / "runs")
    out = root / "results"
    shown = runner.invoke(
        app, ["compare", *paths, "--out", str(out), "--n-boot", "50", "--n-perm", "20"],
        terminal_width=200,
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    page = root / "report.html"
    made = runner.invoke(app, ["report", str(out), "--out", str(page)])
    assert made.exit_code == 0, made.output
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))
    return {
        "console": " ".join(shown.stdout.split()),
        "report": " ".join(text.split()),
        "record": json.loads((out / "results.json").read_text())[KEY],
        "results": load_results(out),
    }


def test_number_below_display_precision_is_zero() -> None:
    assert number(-3.1e-15) == "0.000"
    assert number(-3.1e-15, 4, signed=True) == "0.0000"  # never "-0.0000" or "+0.0000"
    assert number(-0.00049) == "0.000"
    assert number(0.0472) == "0.047" and number(-0.0472, minus="−") == "−0.047"
    assert number(0.0005, signed=True) == "+0.001"
    assert number(float("nan")) == number(None) == "–"


def test_results_json_holds_the_one_summary(study) -> None:
    record, results = study["record"], study["results"]
    stored = from_record(record)
    fresh = headline(results)
    assert headline_of(results).layers.equals(stored.layers)
    assert stored.layers.drop(columns=["drift", "floor"]).equals(
        fresh.layers.drop(columns=["drift", "floor"])
    )
    assert np.allclose(stored.layers[["drift", "floor"]], fresh.layers[["drift", "floor"]])
    assert {**to_record(stored), "tables": fingerprint(results)} == record  # round trip
    row = stored.comparison("toy")
    # LoRA's embeddings are structural zeros: listed apart, counted in no comparison
    assert row.structural == [-1] and row.unchanged_in == ["lora"]
    assert -1 not in row.layers_a_less and -1 not in row.layers_interval_excludes_zero
    assert stored.structural("toy") == {"lora": [-1]}
    # full fine-tuning's layer 0 moved less from the base than its seeds differ
    assert stored.within_floor("toy") == {"full": [0]}
    layer0 = stored.layer("toy", "full", 0)
    assert layer0["drift"] < layer0["floor"]
    assert abs(stored.layer("toy", "full", 1)["floor"]) < 1e-12  # round-off only


def test_summaries_read_the_stored_one_of_these_tables(study, monkeypatch) -> None:
    results = study["results"]
    lora_only = replace(results, drift=results.drift[results.drift.method == "lora"])
    assert headline_of(lora_only).within_floor("toy") == {}  # other tables: computed afresh

    def no_recomputation(*args, **kwargs):
        raise AssertionError("the stored headline should have been read")

    monkeypatch.setattr(stored_headline, "headline", no_recomputation)
    assert headline_of(results).within_floor("toy") == {"full": [0]}
    with pytest.raises(AssertionError, match="should have been read"):
        headline_of(results, "cka_linear")  # another metric is computed


def test_console_says_what_the_summary_says(study) -> None:
    text, h = study["console"], from_record(study["record"])
    row = h.comparison("toy")
    lower = ", ".join(map(str, row.layers_a_less))
    apart = ", ".join(map(str, row.layers_interval_excludes_zero))
    assert f"lora lower in layers [{lower}]" in text
    assert f"interval of the difference excludes 0 in [{apart}]" in text
    assert "structural zeros, left out: emb (lora)" in text
    assert "[emb" not in text and ", emb," not in text
    layer0 = h.layer("toy", "full", 0)
    assert (
        f"toy: within seed noise (drift <= the seed floor, drift between two seeds of the "
        f"method): full layers [0] (0: {number(layer0['drift'], 4)} <= "
        f"{number(layer0['floor'], 4)})"
    ) in text
    assert f"{number(layer0['drift'], 4)} ~" in text  # flagged in the drift table too
    assert "~ within the seed noise floor" in text
    assert not re.search(r"e-1\d", text)  # no -3.1e-15: below display precision is 0


def test_report_says_what_the_console_says(study) -> None:
    text, h = study["report"], from_record(study["record"])
    assert (
        "Unchanged in every seed (structural zeros, found in the representations): the "
        "embeddings under LoRA" in text
    )
    layer0 = h.layer("toy", "full", 0)
    drift, floor = (number(layer0[k], 3, minus="−") for k in ("drift", "floor"))
    assert (
        "Within seed noise: drift no larger than the seed noise floor (the drift between two "
        f"seeds of the same method) in layer 0 under full fine-tuning ({drift} ≤ {floor})"
    ) in text
    assert f"{drift} ~" in text  # the drift table's cell
    assert "~: within seed noise (drift no larger than the seed floor)" in text
    assert not re.search(r"e[-−]1\d", text)  # the round-off floor of layer 1 prints as 0
    # the description of the layers names no structural zero
    assert "the embeddings and layer" not in text
