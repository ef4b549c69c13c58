"""Names shared across stages: canonical layer names and pooling names."""

from __future__ import annotations

from typing import Literal, get_args

from repdrift.errors import InputError


def layer_names(n_blocks: int, *, embeddings: bool = False) -> list[str]:
    """Canonical layer names: ``["embeddings"]`` (optional) then ``layer_0 … layer_{n-1}``."""
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
        raise InputError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
    return (["embeddings"] if embeddings else []) + [f"layer_{i}" for i in range(n_blocks)]


Pooling = Literal["mean", "first", "last", "max", "tokens"]


POOLINGS: tuple[str, ...] = get_args(Pooling)


def check_pooling(pooling: str) -> Pooling:
    """Return ``pooling`` if it is a known pooling name, else raise :class:`InputError`."""
    if pooling not in POOLINGS:
        raise InputError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
    return pooling  # type: ignore[return-value]


def layer_index(layer: str) -> int:
    """Position of a canonical layer name: ``embeddings`` → -1, ``layer_i`` → i."""
    return -1 if layer == "embeddings" else int(layer.rsplit("_", 1)[1])
