"""What a token-level run records of its tokenizer, so that the analysis never loads one.

The analysis of token-level runs (:mod:`repdrift.analysis.token_profile`) types each token
(special, first or second text of a pair) and shows the most-moved samples' text and tokens.
Those need the tokenizer's special ids, its separator, the strings of the vocabulary entries
and the decoded samples: :func:`token_text` reads them from the loaded model's tokenizer at
extraction (:func:`repdrift.extraction.api.extract_loaded` puts them in the step's
:class:`~repdrift.extraction.to_run.StepRecord`), and :mod:`repdrift.store.token_ids` keeps
them beside the token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repdrift.store.token_ids import TokenText

__all__ = ["token_text"]


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
