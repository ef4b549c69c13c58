"""Whether two runs may be compared row by row: the same samples, fed to the models the same way.

Drift is only drift when the two models saw the same inputs. Beside the sample ids, their order
and texts, the manifests record how the samples were tokenised: the sha256 of the exact token
ids fed to the model (``token_ids_sha256``), and the settings that decide them (tokenizer
content hash, ``max_length``, text fields, truncation) or how they were laid out in a batch
(``padding_side``: a position-embedding model sees its tokens at other positions when padded on
the other side). :func:`check_comparable` refuses a pair that differs in any of these, naming
the field and both values, unless the comparison is asked for on purpose
(``allow_different_inputs``: comparing two max lengths is a study of its own); such a pair is
flagged in the results. Settings that differ while the token ids agree (e.g. ``max_length``
128 vs 512 on samples shorter than 128 tokens) changed nothing the models saw: flagged, not
refused. A run that records no token ids (a legacy run, or arrays written with
:func:`repdrift.write_run`) beside one that does is flagged as not checked, and a run extracted
in another dtype than the reference (e.g. bfloat16 against float32, a comparison of its own)
is flagged: its drift includes the change of precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repdrift.errors import InputError
from repdrift.store.manifest import Manifest, recorded_token_ids

if TYPE_CHECKING:
    from repdrift.analysis.pairing import RunInfo

#: How to ask for a comparison of runs tokenised differently, in API and CLI words.
ALLOW_DIFFERENT_INPUTS = "allow_different_inputs=True (CLI: --allow-different-inputs)"


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] if len(text) == 64 else text  # a sha256: its first 12 hex digits


def _setting(manifest: Manifest, field: str) -> Any:
    """A recorded tokenisation setting of a step (None when not recorded)."""
    if field in ("text_fields", "truncation"):
        value = (manifest.data or {}).get(field)
        return list(value) if isinstance(value, (list, tuple)) else value
    return getattr(manifest, field)


#: Recorded settings that decide the token ids, in the order they are reported.
_TOKENISATION = ("tokenizer_sha256", "max_length", "text_fields", "truncation")


def input_differences(ref: Manifest | None, other: Manifest | None) -> tuple[list[str], bool]:
    """How two steps' inputs differ.

    Returns
    -------
    differences : list of str
        One ``"field <other's value> vs <reference's value>"`` per recorded setting that
        differs (settings recorded on one side only are not guessed at), plus ``token ids``
        when the token ids differ.
    changed : bool
        Whether the models saw different inputs: the token ids or the padding side differ.
    """
    if ref is None or other is None:
        return [], False
    diffs = [
        f"{field} {_short(b)} vs {_short(a)}"
        for field in _TOKENISATION
        if (a := _setting(ref, field)) is not None
        and (b := _setting(other, field)) is not None
        and a != b
    ]
    ids_a, ids_b = recorded_token_ids(ref), recorded_token_ids(other)
    ids_differ = ids_a is not None and ids_b is not None and ids_a != ids_b
    if ids_differ:
        diffs.append(f"token ids (token_ids_sha256) {_short(ids_b)} vs {_short(ids_a)}")
    padding_differs = ref.padding_side != other.padding_side
    if padding_differs:
        diffs.append(f"padding_side {other.padding_side!r} vs {ref.padding_side!r}")
    return diffs, ids_differ or padding_differs


def check_inputs(
    ref: RunInfo, other: RunInfo, *, allow_different_inputs: bool = False
) -> list[str]:
    """Check that every step of ``other`` saw the reference's inputs; return flags.

    Raises
    ------
    InputError
        The token ids or the padding side differ (unless ``allow_different_inputs``).
    """
    a = ref.run.manifest
    where = f"{other.run.path} vs reference run {ref.run.path}"
    flags: list[str] = []
    for step, b in sorted(other.run.manifests.items()):
        at = where if len(other.run.steps) == 1 else f"{where} (step {step})"
        known = (recorded_token_ids(a) is not None, recorded_token_ids(b) is not None)
        if known[0] != known[1]:
            missing = ref.run.path if not known[0] else other.run.path
            flags.append(
                f"inputs not checked: {missing} records no token ids (a legacy run or external "
                "arrays), so its tokenisation cannot be compared with the other run's"
            )
            continue
        if a is not None and b is not None and a.dtype != b.dtype:
            flags.append(
                f"extracted in {b.dtype}, the reference in {a.dtype}: the drift includes the "
                "change of precision"
            )
        diffs, changed = input_differences(a, b)
        if not diffs:
            continue
        listed = "; ".join(diffs)
        if not changed:
            flags.append(
                f"recorded settings differ ({listed}) but the token ids are identical: every "
                "sample was fed to both models the same way"
            )
        elif allow_different_inputs:
            flags.append(f"compared on purpose with different inputs: {listed} (vs reference)")
        else:
            raise InputError(
                f"{at}: tokenised differently ({listed}, this run's value first): the models "
                "saw different inputs, so the drift would mix fine-tuning with the change of "
                "input; extract both with the same tokenizer, --max-length, text fields and "
                f"padding side, or pass {ALLOW_DIFFERENT_INPUTS} to compare them on purpose "
                "(then flagged in the results and the report)"
            )
    return list(dict.fromkeys(flags))


def check_comparable(
    ref: RunInfo, other: RunInfo, *, allow_different_inputs: bool = False
) -> list[str]:
    """Refuse runs that do not hold the same samples, in the same order, fed and pooled the
    same way (see the module doc); return flags for what could not be checked or was allowed.
    """
    a, b = ref.run, other.run
    where = f"{b.path} vs reference run {a.path}"
    ids_a, ids_b = a.sample_ids, b.sample_ids
    if ids_a is not None and ids_b is not None and ids_a != ids_b:
        if sorted(ids_a) == sorted(ids_b):
            raise InputError(
                f"{where}: same sample ids in a different order; re-extract one of them"
            )
        raise InputError(
            f"{where}: different sample ids ({len(ids_b)} vs {len(ids_a)} samples, "
            f"{len(set(ids_a) ^ set(ids_b))} not shared); extract both with the same task, "
            "--samples and --seed"
        )
    texts_a, texts_b = (
        r.manifest.data.get("samples_sha256") if r.manifest else None for r in (a, b)
    )
    if texts_a and texts_b and texts_a != texts_b:
        fields_a, fields_b = (
            r.manifest.data.get("text_fields") if r.manifest else None for r in (a, b)
        )
        cause = (
            f"text fields {fields_b} vs {fields_a}"
            if fields_a and fields_b and fields_a != fields_b
            else "the data changed between extractions"
        )
        raise InputError(
            f"{where}: same sample ids but different texts (samples_sha256 differs: {cause}); "
            "re-extract one of them"
        )
    if (ids_a is None) != (ids_b is None):
        raise InputError(f"{where}: one run records its sample ids and the other does not")
    if a.pooling and b.pooling and a.pooling != b.pooling:
        raise InputError(f"{where}: pooling {b.pooling!r} vs {a.pooling!r}")
    # a manifest without the field predates the option: made without the final norm
    norms = [bool(r.manifest.final_norm) for r in (a, b) if r.manifest]
    if len(norms) == 2 and norms[0] != norms[1]:
        raise InputError(
            f"{where}: final_norm {norms[1]} vs {norms[0]}: one run's last layer is taken after "
            "the model's final norm, the other's before it; re-extract one with the other's "
            "--final-norm/--no-final-norm"
        )
    tokens_a, tokens_b = (
        r.manifest.token_ids_sha256 if r.manifest and r.pooling == "tokens" else None
        for r in (a, b)
    )
    if tokens_a and tokens_b and tokens_a != tokens_b:
        raise InputError(
            f"{where}: token-level runs with different token ids (token_ids_sha256 differs); "
            "tokens are paired by sample and position, so extract both with the same "
            "tokenizer and --max-length"
        )
    if len(a.layers) != len(b.layers) or a.layers != b.layers:
        raise InputError(f"{where}: layers {b.layers} vs {a.layers}")
    return check_inputs(ref, other, allow_different_inputs=allow_different_inputs)


__all__ = ["ALLOW_DIFFERENT_INPUTS", "check_comparable", "check_inputs", "input_differences"]
