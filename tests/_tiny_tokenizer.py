"""A tiny GPT-2-style byte-level BPE tokenizer, trained in a test (no pad token, like decoders)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

#: GPT-2's end-of-text token, the one special token of the tests' decoder tokenizers.
EOS = "<|endoftext|>"


def byte_level_bpe(
    texts: Iterable[str], *, vocab_size: int = 300, **special: str
) -> PreTrainedTokenizerFast:
    """Trained on ``texts``, with the ``special`` tokens given (e.g. ``eos_token=EOS``)."""
    tok = Tokenizer(models.BPE(unk_token=special.get("unk_token")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **special)
