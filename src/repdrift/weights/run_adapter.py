"""A run directory's LoRA matrices as a weight-drift variant.

An extracted LoRA run and an imported original LoRA run keep the adapter's A and B matrices in
their step folder (:data:`repdrift.store.adapter_file.ADAPTER_FILE`), keyed by block index and
the module path inside the block, with the scaling in the file's metadata. :func:`find_run_adapter`
finds that file for a run folder (its final step) or a step folder, checks it against the
step's manifest, and reads the run's labels (task, method, seed) for the variant's name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from repdrift.common.atomic import sha256_file
from repdrift.common.naming import parse_run_name, run_name
from repdrift.errors import InputError, IntegrityError
from repdrift.store.adapter_file import ADAPTER_FILE, SCALING_SUFFIX, adapter_metadata
from repdrift.store.manifest import Manifest
from repdrift.store.steps import final_step_number, find_steps, inspect_step

logger = logging.getLogger(__name__)

#: How to give alpha to an original LoRA run imported without it.
_GIVE_ALPHA = "re-import it with `repdrift import ORIGINAL_TREE --out RUNS --lora-alpha ALPHA`"


@dataclass(frozen=True)
class RunAdapter:
    """The adapter file of one run step and what its manifest says about the run.

    Attributes
    ----------
    path : Path
        ``STEP/adapter_weights/lora.safetensors``.
    label : str
        The run's name by its labels, ``{task}_{method}_seed{seed}``
        (:func:`repdrift.common.naming.run_name`), else the run folder's name.
    scalings : dict
        ``layer_{i}.{module}`` -> the factor multiplying B @ A, as recorded in the file.
    """

    path: Path
    label: str
    scalings: dict[str, float]

    def scale_for(self, name: str) -> float:
        """The scaling of module ``layer_{i}.{module}``.

        Raises
        ------
        InputError
            The file does not record it (an original run imported without LoRA alpha).
        """
        if name not in self.scalings:
            raise InputError(
                f"{self.path}: no LoRA scaling recorded for {name} (the run was imported without "
                f"its LoRA alpha); {_GIVE_ALPHA}"
            )
        return self.scalings[name]


def _label(manifest: Manifest | None, run_dir: Path) -> str:
    named = parse_run_name(run_dir.name)
    if manifest is None:
        return run_dir.name
    seed = (manifest.model.get("training") or {}).get("seed")
    if seed is None and named is not None:
        seed = named.seed
    if seed is None:
        return run_dir.name
    return run_name(manifest.task, manifest.kind, int(seed))


def _scalings(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in adapter_metadata(path).items():
        if key.endswith(SCALING_SUFFIX):
            try:
                out[key.removesuffix(SCALING_SUFFIX)] = float(value)
            except ValueError:
                raise IntegrityError(f"{path}: scaling {key}={value!r} is not a number") from None
    return out


def run_step(folder: Path) -> tuple[Path, Manifest | None] | None:
    """The final step folder of a run folder (or the step folder itself) and its manifest, or
    None when ``folder`` is not a run.

    Raises
    ------
    IntegrityError
        The step's manifest is invalid or a file it lists is missing or of another size.
    """
    steps = find_steps(folder)
    if not steps:
        return None
    step = final_step_number(steps)
    record = inspect_step(step, steps[step], check_hashes=False)
    if record.problems:
        raise IntegrityError(record.problems[0])
    return steps[step], record.manifest


def find_run_adapter(folder: Path) -> RunAdapter | None:
    """The LoRA adapter a run directory (or one of its step folders) holds, or None when
    ``folder`` is not a run.

    Raises
    ------
    InputError
        ``folder`` is a run without adapter matrices (a base or full run: its model folder is
        what weights reads).
    IntegrityError
        The adapter file is not listed in the step's manifest, or its sha256 differs.
    """
    found = run_step(folder)
    if found is None:
        return None
    step_dir, manifest = found
    path = step_dir / ADAPTER_FILE
    if not path.is_file():
        kind = manifest.kind if manifest is not None else "legacy"
        model = manifest.model.get("path") if manifest is not None else None
        raise InputError(
            f"{folder}: a run of kind {kind!r} with no {ADAPTER_FILE} in {step_dir.name}; weights "
            "reads a LoRA run's adapter matrices, or a full model's checkpoint folder"
            + (f" (this run's model: {model})" if model else "")
        )
    if manifest is not None:
        entry = manifest.files.get(ADAPTER_FILE)
        if entry is None:
            raise IntegrityError(f"{path}: not listed in {step_dir}'s manifest; not trusted")
        if sha256_file(path) != entry.sha256:
            raise IntegrityError(f"{path}: sha256 differs from the manifest's; the file changed")
    else:
        logger.warning("%s: legacy run without a manifest; %s is not verified", folder, path)
    return RunAdapter(path, _label(manifest, step_dir.parent), _scalings(path))
