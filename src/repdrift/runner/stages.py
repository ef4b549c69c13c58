"""The study-wide stages after the jobs: analysis, weights, figures, report.

Each stage records a fingerprint of its inputs in ``OUTPUT/.repdrift/{stage}.json`` when it
finishes; a re-run skips a stage whose fingerprint and outputs are unchanged, so re-running a
finished study costs a few file reads. The analysis fingerprint covers every run's manifests
(which hold the sha256 of every layer file), the labels and the settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repdrift.analysis.compare_runs import compare
from repdrift.common.atomic import atomic_write_bytes
from repdrift.common.devices import resolve_device
from repdrift.common.naming import run_name
from repdrift.common.version import __version__
from repdrift.errors import InputError
from repdrift.plots import plot_all
from repdrift.report import write_report
from repdrift.runner.experiment import Experiment
from repdrift.runner.job import Job
from repdrift.store.reader import load_run
from repdrift.store.results import write_weights
from repdrift.weights import weight_drift

logger = logging.getLogger(__name__)

STAMP_DIR = ".repdrift"
STAGES = ("analysis", "weights", "figures", "report")


# ------------------------------------------------------------------------------- stamps


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _stamp_path(exp: Experiment, stage: str) -> Path:
    return exp.output / STAMP_DIR / f"{stage}.json"


def _read_stamp(exp: Experiment, stage: str) -> str | None:
    try:
        return json.loads(_stamp_path(exp, stage).read_text()).get("fingerprint")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _write_stamp(exp: Experiment, stage: str, fingerprint: str) -> None:
    path = _stamp_path(exp, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = json.dumps({"stage": stage, "fingerprint": fingerprint}, indent=2)
    atomic_write_bytes(path, stamp.encode())


def _files_state(folder: Path, patterns: Sequence[str]) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the files matching ``patterns`` directly inside ``folder``."""
    out = []
    for pattern in patterns:
        for p in sorted(folder.glob(pattern)):
            if p.is_file():
                st = p.stat()
                out.append((p.name, st.st_size, st.st_mtime_ns))
    return out


def _run_state(run: Path) -> list[Any]:
    """What identifies a run's content: each step's manifest (it lists every file's sha256);
    legacy steps without one: their files' sizes and modification times."""
    state: list[Any] = []
    for step in sorted(p for p in run.iterdir() if p.is_dir() and p.name.startswith("step_")):
        manifest = step / "metadata.json"
        if manifest.is_file():
            state.append([step.name, hashlib.sha256(manifest.read_bytes()).hexdigest()])
        else:
            state.append([step.name, _files_state(step, ["*.pt"])])
    return state


def stage_status(exp: Experiment, stage: str, fingerprint: str | None) -> str:
    """``done`` when the recorded fingerprint matches (and outputs exist), else ``todo``."""
    if fingerprint is None or _read_stamp(exp, stage) != fingerprint:
        return "todo"
    outputs = {
        "analysis": exp.results_dir / "results.json",
        "weights": exp.results_dir / "weights.parquet",
        "figures": exp.figures_dir,
        "report": exp.report_path,
    }
    return "done" if outputs[stage].exists() else "todo"


# ------------------------------------------------------------------------------- analysis


def analysis_inputs(jobs: Sequence[Job]) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """Run directories to compare (base runs first) and their labels, from the plan."""
    runs: dict[Path, dict[str, Any]] = {}
    for job in jobs:
        if job.kind in ("extract", "import") and job.out not in runs:
            runs[job.out] = {"task": job.task, "method": job.method, "seed": job.seed}
    ordered = sorted(runs, key=lambda p: (runs[p]["method"] != "base", str(p)))
    labels = {str(p): {k: v for k, v in runs[p].items() if v is not None} for p in ordered}
    return ordered, labels


def analysis_fingerprint(exp: Experiment, jobs: Sequence[Job]) -> str | None:
    """Fingerprint of the analysis inputs (None while a run is missing)."""

    runs, labels = analysis_inputs(jobs)
    if not all(r.is_dir() for r in runs):
        return None
    return _digest(
        {
            "version": __version__,
            "settings": exp.analysis.model_dump(exclude={"weights", "device"}),
            "labels": labels,
            "runs": {str(r): _run_state(r) for r in runs},
        }
    )


def check_same_samples(runs: Sequence[Path], labels: dict[str, dict[str, Any]]) -> None:
    """Refuse runs of one task that hold different sample texts under the same ids.

    Sample ids alone do not prove the samples are the same: data edited between two
    extractions (a regenerated file, a new dataset revision) keeps its ids and changes its
    texts. Every manifest records ``data.samples_sha256`` over ids and texts; within a task
    they must agree.

    Raises
    ------
    InputError
        Names the runs of each differing hash.
    """

    by_task: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        for step, manifest in load_run(run, verify=False).manifests.items():
            digest = (manifest.data or {}).get("samples_sha256") if manifest else None
            if digest:
                task = labels[str(run)]["task"]
                name = run.name if step == 0 else f"{run.name}/step {step}"
                by_task.setdefault(task, {}).setdefault(digest, []).append(name)
    problems = [
        f"task {task!r}: "
        + "; ".join(f"{', '.join(names)} (samples {d[:12]})" for d, names in found.items())
        for task, found in sorted(by_task.items())
        if len(found) > 1
    ]
    if problems:
        raise InputError(
            "runs of the same task hold different samples under the same ids (the data "
            "changed between extractions); delete the runs made from the old data and re-run:\n"
            + "\n".join(problems)
        )


def run_analysis(exp: Experiment, jobs: Sequence[Job], *, progress: bool = True) -> bool:
    """Compare every run of the plan into ``OUTPUT/results``; False when skipped (up to date)."""

    fingerprint = analysis_fingerprint(exp, jobs)
    if stage_status(exp, "analysis", fingerprint) == "done":
        logger.info("analysis is up to date (%s)", exp.results_dir)
        return False
    runs, labels = analysis_inputs(jobs)
    check_same_samples(runs, labels)
    # the section is the analysis settings (plus weights, which compare does not read)
    compare(runs, out=exp.results_dir, labels=labels, settings=exp.analysis, progress=progress)
    assert fingerprint is not None
    _write_stamp(exp, "analysis", fingerprint)
    return True


# ------------------------------------------------------------------------------- weights


def weight_variants(exp: Experiment, jobs: Sequence[Job]) -> dict[str, Path]:
    """Run name → model folder of every final variant (step 0) in the plan."""
    return {
        run_name(j.task, j.method, j.seed): Path(j.model)
        for j in jobs
        if j.kind == "extract" and j.method != "base" and j.step == 0
    }


def weights_fingerprint(exp: Experiment, jobs: Sequence[Job]) -> str | None:
    """Fingerprint of the weight files (None when the stage is off or a variant is missing)."""
    variants = weight_variants(exp, jobs)
    if not exp.analysis.weights or exp.import_ is not None or not variants:
        return None
    if not all(p.is_dir() for p in variants.values()):
        return None
    patterns = ("*.safetensors", "*.bin", "adapter_config.json", "config.json")
    return _digest(
        {
            "base": exp.base_model,
            "variants": {k: [str(p), _files_state(p, patterns)] for k, p in variants.items()},
        }
    )


def run_weights(exp: Experiment, jobs: Sequence[Job], *, progress: bool = True) -> bool:
    """Weight-space drift of every variant into ``results/weights.{csv,parquet}``."""
    if not exp.analysis.weights or exp.import_ is not None:
        return False
    variants = weight_variants(exp, jobs)
    missing = [str(p) for p in variants.values() if not p.is_dir()]
    if missing:
        logger.warning("weights skipped: model folder(s) not found: %s", ", ".join(missing))
        return False
    fingerprint = weights_fingerprint(exp, jobs)
    if stage_status(exp, "weights", fingerprint) == "done":
        logger.info("weight analysis is up to date")
        return False

    assert exp.base_model is not None
    table = weight_drift(exp.base_model, variants, device=_weights_device(exp), progress=progress)
    write_weights(table, exp.results_dir)
    assert fingerprint is not None
    _write_stamp(exp, "weights", fingerprint)
    return True


def _weights_device(exp: Experiment) -> str:
    """The extraction device by the package's one rule, cuda or else cpu: the weight analysis
    runs float64 SVDs, which MPS does not support."""
    device = resolve_device(exp.extraction.device)
    return str(device) if device.type == "cuda" else "cpu"


# ------------------------------------------------------------------------------- figures, report


def output_fingerprint(exp: Experiment, stage: str) -> str | None:
    """Fingerprint of figures / report: the analysis and weights they are made from."""
    analysis = _read_stamp(exp, "analysis")
    if analysis is None:
        return None
    parts = {"analysis": analysis, "weights": _read_stamp(exp, "weights")}
    if stage == "figures":
        parts["format"] = exp.figures.format
    else:
        parts["figures"] = _read_stamp(exp, "figures")
    return _digest(parts)


def run_figures(exp: Experiment) -> bool:
    """``repdrift.plots.plot_all`` into ``OUTPUT/figures``."""
    fingerprint = output_fingerprint(exp, "figures")
    if fingerprint is None:
        raise InputError(f"{exp.results_dir}: no analysis results to plot")
    if stage_status(exp, "figures", fingerprint) == "done":
        return False
    plot_all(exp.results_dir, exp.figures_dir, format=exp.figures.format)
    _write_stamp(exp, "figures", fingerprint)
    return True


def run_report(exp: Experiment) -> bool:
    """``repdrift.report.html.write_report`` to ``OUTPUT/report.html``."""
    fingerprint = output_fingerprint(exp, "report")
    if fingerprint is None:
        raise InputError(f"{exp.results_dir}: no analysis results to report")
    if stage_status(exp, "report", fingerprint) == "done":
        return False
    write_report(exp.results_dir, exp.report_path)
    _write_stamp(exp, "report", fingerprint)
    return True


def stage_statuses(exp: Experiment, jobs: Sequence[Job]) -> dict[str, str]:
    """Status of each stage for the plan table: done / todo / off."""
    weights_on = bool(exp.analysis.weights and exp.import_ is None)
    out = {
        "analysis": stage_status(exp, "analysis", analysis_fingerprint(exp, jobs)),
        "weights": stage_status(exp, "weights", weights_fingerprint(exp, jobs))
        if weights_on
        else "off",
    }
    # figures and the report are remade whenever what they show is remade
    upstream_todo = "todo" in out.values()
    for stage in ("figures", "report"):
        own = stage_status(exp, stage, output_fingerprint(exp, stage))
        out[stage] = "todo" if upstream_todo else own
        upstream_todo = upstream_todo or own == "todo"
    return out


__all__ = [
    "STAGES",
    "analysis_fingerprint",
    "analysis_inputs",
    "check_same_samples",
    "run_analysis",
    "run_figures",
    "run_report",
    "run_weights",
    "stage_status",
    "stage_statuses",
    "weight_variants",
]
