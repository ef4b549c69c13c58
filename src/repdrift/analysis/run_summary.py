"""What results.json says besides the tables: the settings and what each statistic is, and per
task the runs compared, with the flags the reader should know (see
:mod:`repdrift.analysis.pairing` and :mod:`repdrift.analysis.comparability`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from repdrift.analysis.pairing import RunInfo, TaskGroup
from repdrift.common.version import __version__

__all__ = ["run_summary"]


def run_summary(
    groups: Sequence[TaskGroup], settings: Mapping[str, Any], seconds: float
) -> dict[str, Any]:
    """results.json's summary: the version, the settings with what each test and interval is,
    per task the reference and the runs compared (with their flags), and the seconds spent."""

    def run_entry(info: RunInfo) -> dict[str, Any]:
        m = info.run.manifest
        return {
            "path": str(info.run.path),
            "name": info.name,
            "task": info.task,
            "method": info.method,
            "seed": info.seed,
            "steps": info.run.steps,
            "model": m.model if m else None,
            "n_samples": m.n_samples if m else None,
            "pooling": info.run.pooling,
            "flags": list(info.flags),
        }

    return {
        "repdrift_version": __version__,
        "settings": {
            **settings,
            "interval": "per run: basic interval from half-samples without replacement "
            "(delete-n/2 jackknife) in disjoint pairs, its width from the paired variance, on "
            "the logit scale of the drift's range; per method (task_ranking) and for differences "
            "(comparison): hierarchical, between-seed variance plus the half-sample variance "
            "of the seed mean, t with Satterthwaite df (one seed: that run's half-sample "
            "interval, labelled 'samples')",
            "null": "shuffled pairing of samples (permutation), p = (1 + #null >= observed) / (1 + n_perm)",
            "comparison": "seeds as unit: Welch t-test on per-seed drift (one seed per method: "
            "a sample-level description of those two trainings, test 'samples'); structural "
            "zeros (layers a method left unchanged in every seed) are not tested",
            "answer": "pre-registered: per task, Welch t-test on seeds of the drift averaged "
            "over the blocks that are not structural zeros, with exact permutation of method "
            "labels and a max-|t| family-wise test over layers; study (these tasks): Welch-type "
            "t-test of the task differences weighted by label-free seed precision (Satterthwaite "
            "df), exact permutation of the labels within tasks beside it; tasks in general: "
            "t-test of the task differences from 5 tasks on",
            "correction": "Holm (p_holm) and Benjamini-Hochberg (p_bh) per metric across "
            "layers x tasks, structural zeros excluded",
        },
        "tasks": {
            g.task: {
                "reference": run_entry(g.reference),
                "runs": [run_entry(v) for v in g.variants],
            }
            for g in groups
        },
        "seconds": round(seconds, 2),
    }
