"""Count the samples of an extraction that the model was trained on.

``repdrift train`` saves a hash of every training sample's text beside the weights
(:data:`repdrift.models.training_record.TRAINED_SAMPLES`). Extracting a model on samples it was
trained on measures training data, not held-out data: the count is logged as a warning and
recorded in the manifest (``extra["trained_samples"]``), whatever file, split or ids the samples
come from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from repdrift.models.training_record import TRAINED_SAMPLES, read_trained_samples
from repdrift.tasks.samples import Samples
from repdrift.tasks.splits import ALL_ROWS, count_seen

logger = logging.getLogger(__name__)


def trained_samples_seen(source: dict[str, Any], samples: Samples) -> dict[str, Any] | None:
    """How many of ``samples`` the model of ``source`` (``LoadedModel.source``) was trained on.

    Returns
    -------
    dict or None
        ``{"seen": k, "of": n, "trained_on": m, "model": folder}`` (``k`` of the ``n`` samples are
        among the ``m`` the model was trained on), or None when the model has no list of its
        training samples (not trained by repdrift, or by a version before the list).
    """
    folder = source.get("path")
    if not source.get("training") or not folder or not Path(folder).is_dir():
        return None
    trained = read_trained_samples(folder)
    if trained is None:
        _older_training(folder, source["training"], samples)
        return None
    seen = count_seen(samples.texts, samples.text_pairs, trained)
    if seen:
        held = samples.source.get("held_out")
        advice = (
            "; --split validation (split='validation' in Python) reads only the rows held out "
            "from training"
            if held and held.get("part") == ALL_ROWS
            else "; extract held-out samples (another split or file) to measure unseen data"
        )
        logger.warning(
            "%d of the %d samples (task %s, split %r, %s) are samples %s was trained on: their "
            "representations are of training data%s",
            seen, len(samples), samples.task, samples.split, samples.source.get("location"),
            folder, advice,
        )  # fmt: skip
    return {"seen": seen, "of": len(samples), "trained_on": len(trained), "model": str(folder)}


def _older_training(folder: str, training: dict[str, Any], samples: Samples) -> None:
    """A model trained before repdrift saved its training samples: it cannot be counted, but
    one trained on this very file read every row of it (no part was held out then)."""
    arguments = training.get("arguments") or {}
    same_file = arguments.get("data") and arguments["data"] == samples.source.get("path")
    if same_file and "held_out" not in arguments and samples.source.get("held_out"):
        every = arguments.get("max_train_samples") is None
        logger.warning(
            "%s was trained by an older repdrift on %s before a validation part was held out: "
            "%s of the %d samples are rows it was trained on; train it again to measure "
            "held-out rows", folder, arguments["data"], "all" if every else "some",
            len(samples),
        )  # fmt: skip
        return
    logger.info(
        "%s has a training record but no %s (trained by an older repdrift): cannot tell "
        "whether it was trained on these samples", folder, TRAINED_SAMPLES,
    )  # fmt: skip
