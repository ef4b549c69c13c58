"""The step folders of a run directory: finding them and checking each one (manifest, sizes, sha256).

A step with a valid manifest is trusted only for the files its manifest lists, with matching
size and sha256; a legacy step (``layer_i.pt`` with no schema\x27d manifest) has no checksums.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repdrift.common.atomic import sha256_file
from repdrift.errors import IntegrityError
from repdrift.store.legacy_pt import (
    is_unpooled,
    legacy_info,
    legacy_layer_files,
    pt_layer_arrays,
)
from repdrift.store.manifest import MANIFEST_NAME, Manifest, load_json, parse_manifest

_STEP = re.compile(r"^step_(\d+)$")


@dataclass
class StepRecord:
    """What is known about one step folder (before or after verification)."""

    step: int
    path: Path
    manifest: Manifest | None = None
    legacy: dict[str, Any] | None = None  # set for legacy steps (no schema'd manifest)
    layer_paths: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def find_steps(path: Path) -> dict[int, Path]:
    """``step -> folder`` for a run folder, or for a single step folder given directly."""
    if not path.is_dir():
        return {}
    steps = {
        int(m.group(1)): p for p in path.iterdir() if p.is_dir() and (m := _STEP.match(p.name))
    }
    if steps:
        return dict(sorted(steps.items()))
    if (path / MANIFEST_NAME).exists() or legacy_layer_files(path):
        match = _STEP.match(path.name)
        return {int(match.group(1)) if match else 0: path}
    return {}


def inspect_step(step: int, step_dir: Path, *, check_hashes: bool) -> StepRecord:
    """Read a step's manifest and check its files; problems are collected, not raised."""
    rec = StepRecord(step, step_dir)
    manifest_path = step_dir / MANIFEST_NAME
    raw: dict[str, Any] | None = None
    if manifest_path.exists():
        try:
            raw = load_json(manifest_path)
        except IntegrityError as exc:
            rec.problems.append(str(exc))
            return rec
    if raw is None or "schema_version" not in raw:
        files = legacy_layer_files(step_dir)
        if not files:
            rec.problems.append(f"{manifest_path}: missing (and no legacy layer_i.pt files)")
            return rec
        rec.legacy, rec.layer_paths = legacy_info(raw), files
        if check_hashes:  # no checksums: the best check is that every file loads safely
            for path in files.values():
                try:
                    # an unpooled (n, seq_len, d) file is checked by mapping it; reading and
                    # pooling it happens when a layer is asked for
                    if not is_unpooled(path):
                        pt_layer_arrays(path)
                except IntegrityError as exc:
                    rec.problems.append(str(exc))
        return rec
    try:
        rec.manifest = parse_manifest(raw, manifest_path)
    except IntegrityError as exc:
        rec.problems.append(str(exc))
        return rec
    m = rec.manifest
    if m.status != "complete":
        rec.problems.append(
            f"{manifest_path}: status is partial ({len(m.chunks)} chunk(s) done); re-run the same extract command to resume"
        )
        return rec
    for rel, entry in m.files.items():
        path = step_dir / rel
        if not path.is_file():
            rec.problems.append(f"{path}: missing (listed in {MANIFEST_NAME})")
        elif path.stat().st_size != entry.bytes:
            rec.problems.append(
                f"{path}: size {path.stat().st_size} bytes, manifest says {entry.bytes} (truncated or edited)"
            )
        elif check_hashes and sha256_file(path) != entry.sha256:
            rec.problems.append(
                f"{path}: sha256 does not match {MANIFEST_NAME} (edited or corrupt)"
            )
    rec.layer_paths = {name: step_dir / m.layer_file(name) for name in m.layers}
    return rec


def verify_run(path: str | Path) -> list[str]:
    """Every problem found in a run directory (empty list: the run is complete and intact).

    Checks each step's manifest (valid, known schema, status complete), that every listed
    file exists with the listed size and sha256, and for legacy ``.pt`` steps that every
    file loads safely. Each problem names the file.
    """
    path = Path(path)
    if not path.exists():
        return [f"{path}: does not exist"]
    steps = find_steps(path)
    if not steps:
        return [f"{path}: no step_* folders with {MANIFEST_NAME} or layer files"]
    return [
        p for step, d in steps.items() for p in inspect_step(step, d, check_hashes=True).problems
    ]


def final_step_number(steps: dict[int, Path] | list[int]) -> int:
    """The step of a run's final model: 0 (``step_000000``, the saved final model) when the run
    has it, else its latest checkpoint."""
    return 0 if 0 in steps else max(steps)
