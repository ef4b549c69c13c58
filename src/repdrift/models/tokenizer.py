"""The tokenizer of a model or adapter: one loader with one pad fallback, and a content hash."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from repdrift.errors import IntegrityError
from repdrift.models.sources import Source, check_hub

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


_PAD_LOGGED: set[str] = set()


def tokenizer_sha256(tokenizer: PreTrainedTokenizerBase) -> str:
    """A content hash of a tokenizer: vocabulary, rules and special tokens, not its files.

    Re-saving a tokenizer (``save_pretrained`` in another transformers version, a fine-tune
    copying it) rewrites its files but not what it does, so the hash is taken over the
    serialized fast-tokenizer pipeline with the mutable ``truncation``/``padding`` state removed
    (calling the tokenizer with ``truncation=True`` changes that state), plus the special
    tokens. Slow tokenizers hash their sorted vocabulary instead.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
    else:
        state = {"vocab": sorted(tokenizer.get_vocab().items())}
    state["special_tokens"] = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    blob = json.dumps(state, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _has_tokenizer(src: Source) -> bool:
    if isinstance(src, Path):
        return any((src / name).is_file() for name in _TOKENIZER_FILES)
    return True  # a hub id: from_pretrained will tell


def load_tokenizer(
    candidates: Source | Sequence[Source | None], *, trust_remote_code: bool = False
) -> tuple[PreTrainedTokenizerBase, dict]:
    """The first candidate's tokenizer (variant folder, then base), with a pad token.

    The one loader for extraction and training. Pad fallback, when the tokenizer defines no pad
    token: ``eos`` (logged once per tokenizer, ``info["pad_token_is_eos"]``), else ``unk`` (a
    warning); padded positions are masked, so either serves.

    Parameters
    ----------
    candidates
        A source or sources in order of preference (a local folder Path or a hub id); None
        entries are skipped, and so are local folders without tokenizer files.
    trust_remote_code
        Passed to transformers.

    Returns
    -------
    tuple
        The tokenizer and a JSON-safe ``info`` dict (``tokenizer_path``, ``tokenizer_sha256``,
        ``padding_side``, ``pad_token``, ``pad_token_is_eos``).

    Raises
    ------
    IntegrityError
        No candidate has a loadable tokenizer, or it has no pad, eos or unk token.
    """
    from transformers import AutoTokenizer

    if isinstance(candidates, (str, Path)):
        candidates = [candidates]
    tokenizer = None
    chosen: Source | None = None
    errors: list[str] = []
    for src in candidates:
        if src is None or not _has_tokenizer(src):
            continue
        check_hub(src, "tokenizer")  # an unreachable hub fails in seconds, not after a minute
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(src), trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            errors.append(f"{src}: {exc}")
            continue
        chosen = src
        break
    if tokenizer is None:
        tried = ", ".join(str(c) for c in candidates if c is not None)
        raise IntegrityError(
            f"no tokenizer found in {tried} (expected tokenizer.json / tokenizer_config.json)"
            + (f": {'; '.join(errors)}" if errors else "")
        )
    pad_is_eos = False
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            # decoders rarely define a pad token; padded positions are masked, so eos serves
            tokenizer.pad_token = tokenizer.eos_token
            pad_is_eos = True
            if str(chosen) not in _PAD_LOGGED:
                _PAD_LOGGED.add(str(chosen))
                logger.info(
                    "tokenizer of %s has no pad token: using eos %r", chosen, tokenizer.eos_token
                )
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
            logger.warning("tokenizer of %s has no pad or eos token: padding with unk", chosen)
        else:
            raise IntegrityError(f"tokenizer of {chosen} has no pad, eos or unk token to pad with")
    info = {
        "tokenizer_path": str(chosen),
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "padding_side": tokenizer.padding_side,
        "pad_token": str(tokenizer.pad_token),
        "pad_token_is_eos": pad_is_eos,
    }
    return tokenizer, info
