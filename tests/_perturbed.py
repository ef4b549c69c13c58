"""A fine-tuned stand-in for tests: a real model with some blocks perturbed by seeded noise."""

from __future__ import annotations

import torch


def perturb_blocks(blocks: torch.nn.Module, scale: float, seed: int = 0) -> None:
    """Add ``scale × std(p)`` Gaussian noise to every parameter ``p`` of ``blocks``, in place."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in blocks.parameters():
            p.add_(scale * p.std() * torch.randn(p.shape, generator=gen))
