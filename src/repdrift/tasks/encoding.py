"""Token ids for fixed samples: :func:`encode`, one rule for pairs, truncation and special tokens."""

from __future__ import annotations

import logging
from typing import Any

from repdrift.errors import InputError
from repdrift.tasks.samples import Samples

logger = logging.getLogger(__name__)


def _native_pairs(tokenizer: Any) -> bool:
    """Whether the tokenizer's template separates the two texts of a pair (BERT: [SEP])."""
    try:
        return tokenizer.num_special_tokens_to_add(pair=True) > tokenizer.num_special_tokens_to_add(
            pair=False
        )
    except (NotImplementedError, AttributeError, TypeError):
        return False


def _truncate_pair(a: list[int], b: list[int], budget: int, strategy: str) -> tuple[list, list]:
    """Cut ``a``/``b`` to at most ``budget`` tokens together, as the tokenizers library does."""
    excess = len(a) + len(b) - budget
    if excess <= 0:
        return a, b
    if strategy == "only_second" and len(b) > excess:
        return a, b[: len(b) - excess]
    if strategy == "only_first" and len(a) > excess:
        return a[: len(a) - excess], b
    # longest_first (also the fallback when the other text alone is over budget), with the
    # tokenizers library's rule: cut the longer text down to the shorter one, then halve, the
    # odd token going to the longer text (to the second text on a tie)
    n1, n2, swap = len(a), len(b), len(a) > len(b)
    if swap:
        n1, n2 = n2, n1
    n2 = n1 if n1 > budget else max(n1, budget - n1)
    if n1 + n2 > budget:
        n1 = budget // 2
        n2 = n1 + budget % 2
    if swap:
        n1, n2 = n2, n1
    return a[:n1], b[:n2]


def encode(samples: Samples, tokenizer: Any) -> list[list[int]]:
    """Token ids per sample: special tokens added, truncated to ``samples.max_length``, unpadded.

    Pairs use the tokenizer's own pair template when it has one (BERT: ``[CLS] a [SEP] b
    [SEP]``) with ``samples.truncation``. Tokenizers without a pair template (GPT-2, most
    decoders) get ``a <sep> b`` with ``<sep>`` the sep token, else eos, wrapped in the
    single-text special tokens (e.g. bos), truncated the same way. With ``only_second``, a
    sample whose first text alone exceeds the budget falls back to ``longest_first`` (logged),
    so no sample is ever longer than ``max_length``.
    """
    limit = token_limit(samples, tokenizer)
    if samples.text_pairs is None:
        full = tokenizer(samples.texts, add_special_tokens=True, verbose=False)["input_ids"]
        _warn_truncated(samples, [len(ids) for ids in full], limit)
        encoded = tokenizer(
            samples.texts, truncation=True, max_length=limit, add_special_tokens=True
        )
        return [list(ids) for ids in encoded["input_ids"]]

    if _native_pairs(tokenizer):
        full = tokenizer(samples.texts, samples.text_pairs, verbose=False)["input_ids"]
        _warn_truncated(samples, [len(ids) for ids in full], limit)
        return _encode_native_pairs(samples, tokenizer, limit)

    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if sep is None:
        raise InputError(
            f"tokenizer {type(tokenizer).__name__} has no pair template and no sep or eos "
            "token to join the two texts of a pair"
        )
    prefix, suffix = _single_special_tokens(tokenizer)
    budget = limit - len(prefix) - len(suffix) - 1
    if budget < 2:
        raise InputError(f"max_length {limit} leaves no room for a pair of texts")
    firsts = tokenizer(samples.texts, add_special_tokens=False, verbose=False)["input_ids"]
    seconds = tokenizer(samples.text_pairs, add_special_tokens=False, verbose=False)["input_ids"]
    extra = limit - budget
    _warn_truncated(samples, [len(a) + len(b) + extra for a, b in zip(firsts, seconds, strict=True)], limit)  # fmt: skip
    out: list[list[int]] = []
    fallbacks = 0
    for a, b in zip(firsts, seconds, strict=True):
        if samples.truncation == "only_second" and len(a) >= budget:
            fallbacks += 1
        a, b = _truncate_pair(list(a), list(b), budget, samples.truncation)
        out.append([*prefix, *a, int(sep), *b, *suffix])
    _log_fallbacks(samples, fallbacks, limit)
    return out


def _encode_native_pairs(samples: Samples, tokenizer: Any, limit: int) -> list[list[int]]:
    """Pairs through the tokenizer's own template and truncation."""
    kwargs = {"max_length": limit, "add_special_tokens": True}
    try:
        encoded = tokenizer(
            samples.texts, samples.text_pairs, truncation=samples.truncation, **kwargs
        )
        return [list(ids) for ids in encoded["input_ids"]]
    except Exception as exc:  # only_second with a first text over budget fails the batch
        logger.debug("batch pair encoding failed (%s); encoding per sample", exc)
    out: list[list[int]] = []
    fallbacks = 0
    for a, b in zip(samples.texts, samples.text_pairs or [], strict=True):
        try:
            ids = tokenizer(a, b, truncation=samples.truncation, **kwargs)["input_ids"]
        except Exception:
            fallbacks += 1
            ids = tokenizer(a, b, truncation="longest_first", **kwargs)["input_ids"]
        out.append(list(ids))
    _log_fallbacks(samples, fallbacks, limit)
    return out


def _single_special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after a single text (e.g. bos, eos).

    Found by encoding a probe text with and without special tokens, since tokenizers expose
    their templates differently (and transformers 5 fast tokenizers have no
    ``build_inputs_with_special_tokens``).
    """
    plain = list(tokenizer("hello", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("hello", add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    raise InputError(
        f"cannot tell where {type(tokenizer).__name__} puts its special tokens around a text"
    )


def token_limit(samples: Samples, tokenizer: Any, *, log: bool = True) -> int:
    """The token limit the samples are encoded with: ``samples.max_length``, or the
    tokenizer's own limit when that is smaller (what a run's manifest records)."""
    own = getattr(tokenizer, "model_max_length", None)
    # transformers says "no limit" with a huge number (int(1e30))
    if isinstance(own, int) and 1 < own < samples.max_length:
        if log:
            logger.warning(
                "%s: max_length %d is more than the tokenizer allows (%d): using %d",
                samples.task, samples.max_length, own, own,
            )  # fmt: skip
        return own
    return samples.max_length


def _warn_truncated(samples: Samples, lengths: list[int], limit: int) -> None:
    """One warning with the count when inputs are longer than the token budget, with advice
    only when a larger budget is possible (not when ``limit`` is the tokenizer's own)."""
    over = [n for n in lengths if n > limit]
    if over:
        advice = (
            f"{limit} tokens is the most this tokenizer allows"
            if limit < samples.max_length
            else "raise the budget with --max-length (max_length= in Python)"
        )
        logger.warning(
            "%s: %d of %d samples are longer than max_length %d tokens and were truncated "
            "(longest: %d tokens); %s",
            samples.task, len(over), len(lengths), limit, max(over), advice,
        )  # fmt: skip


def _log_fallbacks(samples: Samples, fallbacks: int, limit: int) -> None:
    if fallbacks:
        logger.warning(
            "%s: %d sample(s) have a first text longer than max_length %d: truncated both texts",
            samples.task,
            fallbacks,
            limit,
        )
