"""Tiny random transformers for tests: one home for their configs.

Each builder returns a config of a few blocks of width 32 (fast on a CPU); keyword arguments
override any field, so a test that needs another vocabulary, depth or width says only that.
Weights are random: seed torch (``torch.manual_seed``) before building a model from them.
"""

from __future__ import annotations

from typing import Any

from transformers import BertConfig, GPT2Config, LlamaConfig


def tiny_llama_config(
    *, vocab_size: int = 100, layers: int = 3, positions: int = 64, **fields: Any
) -> LlamaConfig:
    """A Llama config: width 32, MLP 64, 4 query heads over 2 key/value heads (grouped)."""
    base = dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=positions,
    )  # fmt: skip
    return LlamaConfig(**{**base, **fields})


def tiny_gpt2_config(
    *, vocab_size: int = 97, layers: int = 3, positions: int = 64, **fields: Any
) -> GPT2Config:
    """A GPT-2 config: width 32, 4 heads."""
    base = dict(vocab_size=vocab_size, n_embd=32, n_layer=layers, n_head=4, n_positions=positions)
    return GPT2Config(**{**base, **fields})


def tiny_bert_config(
    *, vocab_size: int = 100, layers: int = 4, positions: int = 64, **fields: Any
) -> BertConfig:
    """A BERT config: width 32, MLP 64, 2 heads."""
    base = dict(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=positions,
    )  # fmt: skip
    return BertConfig(**{**base, **fields})
