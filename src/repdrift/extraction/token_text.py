"""What a token-level run records of its tokenizer, so that the analysis never loads one.

The analysis of token-level runs (:mod:`repdrift.analysis.token_profile`) types each token
(special, first or second text of a pair) and shows the most-moved samples' text and tokens.
Those need the tokenizer's special ids, its separator, the strings of the vocabulary entries
and the decoded samples: :func:`token_text` reads them from the tokenizer at extraction, and
:mod:`repdrift.store.token_ids` keeps them beside the token ids.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from repdrift.models.sources import normalize_source
from repdrift.models.tokenizer import load_tokenizer, tokenizer_sha256
from repdrift.store.token_ids import TokenText

logger = logging.getLogger(__name__)

__all__ = ["recorded_tokenizer", "token_text"]


def token_text(tokenizer: Any, token_ids: Sequence[Sequence[int]]) -> TokenText:
    """The tokenizer's special ids, separator, vocabulary strings of the ids present and each
    sample decoded (special tokens kept).

    Parameters
    ----------
    tokenizer : transformers tokenizer
    token_ids : sequence of sequence of int
        n unpadded token-id lists, in sample order.
    """
    rows = [[int(i) for i in seq] for seq in token_ids]
    present = sorted({i for row in rows for i in row})
    strings = tokenizer.convert_ids_to_tokens(present)
    return TokenText(
        special_ids=sorted({int(i) for i in tokenizer.all_special_ids}),
        sep_id=None if tokenizer.sep_token_id is None else int(tokenizer.sep_token_id),
        vocabulary={i: str(s) for i, s in zip(present, strings, strict=True)},
        texts=[str(t) for t in tokenizer.batch_decode(rows, skip_special_tokens=False)],
    )


def recorded_tokenizer(model: Mapping[str, Any], sha256: str | None) -> Any:
    """The tokenizer a manifest's model description names (``tokenizer_path``), when it loads
    and its hash is the recorded ``sha256``; else None (logged: the run then records no text)."""
    where = model.get("tokenizer_path")
    if not where:
        logger.info("no tokenizer_path recorded; the token-level run stores ids without text")
        return None
    try:
        tokenizer, _info = load_tokenizer(normalize_source(where, "model"))
    except Exception as exc:  # any failure only means: the run stores ids without text
        logger.info("tokenizer %s unavailable (%s); the run stores ids without text", where, exc)
        return None
    if sha256 and tokenizer_sha256(tokenizer) != sha256:
        logger.warning(
            "tokenizer at %s is not the one the samples were encoded with; the token-level run "
            "stores ids without text",
            where,
        )
        return None
    return tokenizer
