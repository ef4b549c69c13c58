"""The fixed validation samples every model of an experiment sees.

A task names a dataset split, its text column(s), its id column and how to truncate. From it
:func:`load_samples` draws ``n`` rows with an explicit seed and keeps them in dataset order, so
the same (task, data, split, n, seed) always gives the same samples with the same string ids,
whichever model reads them. :func:`repdrift.tasks.encoding.encode` turns them into token ids
for one tokenizer; the presets live in :mod:`repdrift.tasks.presets`.

Presets are the GLUE tasks ``sst2``, ``mrpc``, ``rte`` (ids from ``idx``, max length 128,
``longest_first`` truncation of pairs) and ``squad_v2`` (question/context, ids from ``id``, max
length 384, only the context truncated). ``data=`` points a preset, or a custom task, at a
local CSV / TSV / JSON / JSONL / parquet file, a ``save_to_disk`` folder, or a folder of such
files named by split (``validation.csv``, ``dev.tsv``, ``validation-00000-of-00001.parquet``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repdrift.errors import InputError, IntegrityError
from repdrift.tasks.data_files import empty_file_error
from repdrift.tasks.presets import BUNDLED_DATA, PRESETS, TaskSpec, bundled_data
from repdrift.tasks.settings import SampleSettings
from repdrift.tasks.splits import VALIDATION_NAMES, file_part

logger = logging.getLogger(__name__)

__all__ = ["Samples", "choose_rows", "load_samples"]


_TRUNCATIONS = ("longest_first", "only_second", "only_first")
_FILE_BUILDERS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
# Folders of files name the validation split in several ways (GLUE's raw files say "dev").
_SPLIT_ALIASES = {"validation": VALIDATION_NAMES}
_FEWER_LOGGED: set[tuple[str, str, str]] = set()


@dataclass
class Samples:
    """The fixed samples of one task split, in dataset order.

    ``texts[i]`` (and ``text_pairs[i]`` for pairs) is the sample with id ``ids[i]``;
    ``labels[i]`` its label (None when the data has no label column).
    """

    task: str
    split: str
    ids: list[str]
    texts: list[str]
    text_pairs: list[str] | None
    labels: list | None
    max_length: int
    truncation: str
    source: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


# --------------------------------------------------------------------------------------------
# Reading data
# --------------------------------------------------------------------------------------------


def _load_file(path: Path) -> Any:
    import datasets

    builder, options = _FILE_BUILDERS[path.suffix.lower()]
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", **options)
    except Exception as exc:  # datasets raises many types for a malformed file
        if (empty := empty_file_error([path], delimiter=options.get("delimiter", ","))):
            raise empty from None
        raise IntegrityError(f"cannot read {path} as {builder}: {exc}") from exc


def _split_files(folder: Path, split: str) -> list[Path]:
    names = _SPLIT_ALIASES.get(split, (split,))
    for name in names:
        hits = sorted(
            p
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in _FILE_BUILDERS
            and (p.stem == name or p.stem.startswith(name + "-") or p.stem.startswith(name + "."))
        )
        if hits:
            return hits
    return []


def _load_local(data: Path, split: str) -> tuple[Any, str]:
    """A local dataset and a description of where it came from (for error messages)."""
    import datasets

    if not data.exists():
        raise InputError(f"data {data} does not exist")
    if data.is_file():
        if data.suffix.lower() not in _FILE_BUILDERS:
            raise InputError(
                f"data file {data}: unsupported type {data.suffix!r}; expected one of "
                f"{', '.join(sorted(_FILE_BUILDERS))} or a save_to_disk folder"
            )
        return _load_file(data), str(data)
    if any((data / name).is_file() for name in ("dataset_dict.json", "state.json")):
        try:
            loaded = datasets.load_from_disk(str(data))
        except Exception as exc:
            raise IntegrityError(f"cannot read save_to_disk folder {data}: {exc}") from exc
        if isinstance(loaded, datasets.DatasetDict):
            names = _SPLIT_ALIASES.get(split, (split,))
            present = [n for n in names if n in loaded]
            if not present:
                raise InputError(
                    f"split {split!r} not in {data}; available splits: {', '.join(loaded)}"
                )
            return loaded[present[0]], f"{data} (split {present[0]})"
        return loaded, str(data)
    files = _split_files(data, split)
    if not files:
        listing = ", ".join(sorted(p.name for p in data.iterdir())) or "nothing"
        raise InputError(
            f"no file for split {split!r} in {data} (expected e.g. {split}.csv, {split}.jsonl "
            f"or {split}.parquet); the folder holds: {listing}"
        )
    suffixes = {p.suffix.lower() for p in files}
    if len(suffixes) > 1:
        raise InputError(f"split {split!r} in {data} has files of several types: {files}")
    builder, options = _FILE_BUILDERS[files[0].suffix.lower()]
    try:
        ds = datasets.load_dataset(
            builder, data_files=[str(p) for p in files], split="train", **options
        )
    except Exception as exc:
        if (empty := empty_file_error(files, delimiter=options.get("delimiter", ","))):
            raise empty from None
        raise IntegrityError(f"cannot read {', '.join(map(str, files))}: {exc}") from exc
    return ds, ", ".join(str(p) for p in files)


def _load_hub(spec: TaskSpec, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(spec.dataset, spec.config, split=split)
    except Exception as exc:  # no network, unknown split, ...: say what was asked for
        raise InputError(
            f"cannot load {spec.dataset}"
            + (f"/{spec.config}" if spec.config else "")
            + f" split {split!r} from the hub ({exc}); without network, give a local copy with "
            "--data (data= in Python)"
        ) from exc


# --------------------------------------------------------------------------------------------
# Choosing samples
# --------------------------------------------------------------------------------------------


# Column names recognised for any task without a preset: pairs first (a file with
# sentence1/sentence2 also often has a "sentence" column), then single texts.
TEXT_PAIRS = (("sentence1", "sentence2"), ("question", "context"), ("premise", "hypothesis"))
TEXT_SINGLES = ("text", "sentence")
ID_FIELDS = ("id", "idx")
LABEL_FIELDS = ("label", "labels")
#: Token budget of a task without a preset (capped by the tokenizer's own limit in encode).
CUSTOM_MAX_LENGTH = 512


def detect_text_fields(columns: Sequence[str]) -> tuple[str, ...] | None:
    """The text column(s) of a table by their common names, or None when it is ambiguous.

    Pairs: ``sentence1``/``sentence2``, ``question``/``context``, ``premise``/``hypothesis``;
    single texts: ``text``, ``sentence``.
    """
    pairs = [pair for pair in TEXT_PAIRS if all(c in columns for c in pair)]
    if len(pairs) == 1:
        return pairs[0]
    if pairs:
        return None
    singles = [c for c in TEXT_SINGLES if c in columns]
    return (singles[0],) if len(singles) == 1 else None


def _custom_spec(
    task: str, columns: list[str], where: str, text_fields: Sequence[str] | None
) -> TaskSpec:
    """Column roles of a task without a preset: given text fields, else detected by name.

    The id column is "id" or "idx" and the label column "label" or "labels" when present.
    """
    fields = tuple(text_fields) if text_fields else detect_text_fields(columns)
    if fields is None:
        raise InputError(
            f"task {task!r}: cannot tell the text column(s) of {where}; name one or two of its "
            f"columns ({', '.join(columns)}) with --text-fields (text_fields= in Python)"
        )
    id_field = next((c for c in ID_FIELDS if c in columns), None)
    label_field = next((c for c in LABEL_FIELDS if c in columns), None)
    truncation = "only_second" if fields == ("question", "context") else "longest_first"
    return TaskSpec(
        task, None, None, "validation", fields, id_field, label_field, CUSTOM_MAX_LENGTH,
        truncation,
    )  # fmt: skip


def choose_rows(n_available: int, n: int | None, seed: int) -> np.ndarray:
    """Indices of the chosen rows: ``n`` drawn without replacement, in ascending order.

    Returns
    -------
    numpy.ndarray
        (min(n, n_available),) int64, sorted; all rows when ``n`` is None or too large.
    """
    if n is None or n >= n_available:
        return np.arange(n_available, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_available, size=n, replace=False)).astype(np.int64)


def _samples_sha256(ids: list[str], texts: list[str], pairs: list[str] | None) -> str:
    blob = json.dumps([ids, texts, pairs], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def load_samples(task: str | SampleSettings, /, **settings: Any) -> Samples:
    """Draw the fixed samples of a task split.

    Parameters
    ----------
    task
        The :class:`~repdrift.tasks.settings.SampleSettings`, or a task name: a preset
        (``sst2``, ``mrpc``, ``rte``, ``squad_v2``) or, with ``data``, any name.
    **settings
        The other :class:`~repdrift.tasks.settings.SampleSettings` fields (given ones replace
        those of a settings object): ``data`` (a local file or folder; None loads the preset
        from the hub through ``datasets``), ``split`` (default: the preset's, ``validation``; a
        single file is split by :func:`repdrift.tasks.splits.file_part`: ``validation`` is a
        fixed, seeded 20 % of its rows held out from ``train``, the rest; ``all`` is every
        row, recorded in ``source["held_out"]``), ``n`` (None or more than available: all,
        the latter logged), ``seed`` (of ``numpy.random.default_rng`` choosing the rows),
        ``text_fields``, ``id_field``, ``label_field``, ``max_length`` (override the preset or
        the inferred custom columns).

    Raises
    ------
    InputError
        A bad setting, unknown task without data, a missing column (the message lists those
        present), duplicate ids, a missing text value.
    """
    chosen = (
        task.replaced(**settings)
        if isinstance(task, SampleSettings)
        else SampleSettings.create(task=task, **settings)
    )
    task, data, split, n, seed = chosen.task, chosen.data, chosen.split, chosen.n, chosen.seed
    text_fields, id_field, label_field = chosen.text_fields, chosen.id_field, chosen.label_field
    max_length = chosen.max_length
    if task not in PRESETS and data is None:
        raise InputError(
            f"unknown task {task!r}: expected one of {', '.join(PRESETS)}, or give a local "
            "file or folder with --data (data= in Python) for a task of your own"
        )
    spec = PRESETS.get(task)
    split = split or (spec.split if spec else "validation")
    if data is None and task in BUNDLED_DATA:
        data = bundled_data(task)
    if data is None:
        assert spec is not None
        ds = _load_hub(spec, split)
        where = f"{spec.dataset}/{spec.config}" if spec.config else str(spec.dataset)
    else:
        ds, where = _load_local(data, split)
    columns = list(ds.column_names)
    if spec is None:
        spec = _custom_spec(task, columns, where, text_fields)

    fields = text_fields or spec.text_fields
    missing = [c for c in fields if c not in columns]
    if id_field is not None and id_field not in columns:
        missing.append(id_field)
    if label_field is not None and label_field not in columns:
        missing.append(label_field)
    if missing:
        raise InputError(
            f"{where}: column(s) {', '.join(missing)} not found; available columns: "
            f"{', '.join(columns)}"
        )
    # a preset's id/label columns are optional in local data (an exported file may lack them)
    ids_from = id_field or (spec.id_field if spec.id_field in columns else None)
    labels_from = label_field or (spec.label_field if spec.label_field in columns else None)
    if spec.id_field and ids_from is None:
        logger.info("%s has no %r column: ids are '%s-<row>'", where, spec.id_field, split)

    max_len = max_length if max_length is not None else spec.max_length
    truncation = spec.truncation if len(fields) == 2 else "longest_first"

    n_available = len(ds)
    if n_available == 0:
        raise InputError(f"{where}: split {split!r} has no rows")
    part, held_out = None, None
    if data is not None and data.is_file():  # train / validation / all rows
        part, held_out = file_part(n_available, split, where)
        split, n_available = held_out["part"], len(part)
    if n is not None and n > n_available:
        key = (task, split, where)
        if key not in _FEWER_LOGGED:
            _FEWER_LOGGED.add(key)
            logger.info("%s: %d samples asked for, %d available: using all", where, n, n_available)
    rows = choose_rows(n_available, n, seed)
    if part is not None:
        rows = part[rows]  # rows of the file

    all_ids = (
        [str(v) for v in ds[ids_from]]
        if ids_from
        else [f"{split}-{row}" for row in range(len(ds))]
    )
    if len(set(all_ids)) != len(all_ids):
        dupes = sorted(i for i, count in Counter(all_ids).items() if count > 1)
        raise InputError(
            f"{where}: column {ids_from!r} has duplicate ids ({', '.join(dupes[:5])}"
            + (", ..." if len(dupes) > 5 else "")
            + "); name a column of unique ids with --id-field (id_field= in Python)"
        )
    chosen = ds.select(rows.tolist())
    ids = [all_ids[r] for r in rows]
    texts = _text_column(chosen, fields[0], ids, where)
    pairs = _text_column(chosen, fields[1], ids, where) if len(fields) == 2 else None
    labels = list(chosen[labels_from]) if labels_from else None

    source = {
        "task": task,
        "dataset": spec.dataset if data is None else None,
        "config": spec.config if data is None else None,
        "path": str(data.resolve()) if data is not None else None,
        "location": where,
        "split": split,
        "text_fields": list(fields),
        "truncation": truncation,
        "id_field": ids_from,
        "label_field": labels_from,
        "n_requested": n,
        "n_available": n_available,
        "seed": seed,
        "samples_sha256": _samples_sha256(ids, texts, pairs),
    }
    if held_out is not None:
        source["held_out"] = held_out
    return Samples(task, split, ids, texts, pairs, labels, max_len, truncation, source)


def _text_column(ds: Any, column: str, ids: list[str], where: str) -> list[str]:
    values = ds[column]
    bad = [ids[i] for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise InputError(
            f"{where}: column {column!r} has no text for sample id(s) {', '.join(bad[:5])}"
        )
    return list(values)
