"""The original study's phase-3 extractor and analysis, as its scripts did them, for tests.

The extractor: dynamic padding per batch, ``output_hidden_states``, each batch zero-padded to
the longest of all, concatenated, one ``torch.save``'d ``(n, seq_len, d)`` tensor per layer,
a ``metadata.json`` with ``step, task_name, method, timestamp, num_samples, layer_names,
tensor_shapes``, no attention mask. The analysis: mean over axis 1 (padding included), then
biased linear CKA.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

TEXTS = [
    "the film was a delight",
    "a slow, tedious and joyless mess of a movie that never ends",
    "ok",
    "actors save a thin story",
    "the plot is not very good but the ending is",
    "bad",
    "a delight from the first scene to the last, with a story that holds",
    "tedious",
    "not slow at all",
]


def original_extractor(model, tok, folder: Path, *, batch_size: int = 4, task: str = "sst2",
                       method: str = "full_finetune", texts: list[str] = TEXTS,
                       ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Write ``folder/step_000000`` as the phase-3 script did; return (layers, mask) in float64."""
    batches, masks = [], []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=128,
                      return_tensors="pt")  # fmt: skip
            out = model(**enc, output_hidden_states=True)
            batches.append(torch.stack(out.hidden_states[1:]))  # (L, b, m, d)
            masks.append(enc["attention_mask"])
    longest = max(b.shape[2] for b in batches)
    layers = torch.cat([torch.nn.functional.pad(b, (0, 0, 0, longest - b.shape[2])) for b in batches], 1)  # fmt: skip
    mask = torch.cat([torch.nn.functional.pad(m, (0, longest - m.shape[1])) for m in masks])
    step = folder / "step_000000"
    step.mkdir(parents=True)
    for i, layer in enumerate(layers):
        torch.save(layer.clone(), step / f"layer_{i}.pt")
    meta = {"step": 0, "task_name": task, "method": method, "timestamp": "2025-01-01",
            "num_samples": len(texts), "layer_names": [f"layer_{i}" for i in range(len(layers))],
            "tensor_shapes": {f"layer_{i}": list(layers[i].shape) for i in range(len(layers))}}  # fmt: skip
    (step / "metadata.json").write_text(json.dumps(meta))
    return layers.double(), mask.double()


def original_pooling(path: Path) -> np.ndarray:
    """The original analysis: ``torch.load`` the layer, mean over the sequence axis."""
    return torch.load(path, weights_only=True).mean(dim=1).double().numpy()


def original_linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Biased linear CKA as the original analysis computed it (features centred)."""
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    hsic = np.linalg.norm(Y.T @ X) ** 2
    return float(hsic / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))


def sst2_csv(path: Path) -> Path:
    """The texts as an SST-2 validation file (idx, sentence, label), in extraction order."""
    rows = ["idx,sentence,label"] + [f'{i},"{t}",{i % 2}' for i, t in enumerate(TEXTS)]
    path.write_text("\n".join(rows) + "\n")
    return path


def original_adapters(peft_model, folder: Path) -> dict[str, torch.Tensor]:
    """``folder/step_000000/adapter_weights/lora_{A,B}_layer_{i}.pt`` as the phase-3 script
    saved a LoRA model's matrices: per block, a dict of its LoRA parameters by PEFT name.
    Returns every saved parameter by name."""
    import re

    by_layer: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    for name, param in peft_model.named_parameters():
        if match := re.search(r"\.layer\.(\d+)\..*\.lora_([AB])\.", name):
            by_layer.setdefault((match[2], int(match[1])), {})[name] = param.detach().clone()
    target = folder / "step_000000" / "adapter_weights"
    target.mkdir(parents=True, exist_ok=True)
    for (factor, layer), params in by_layer.items():
        torch.save(params, target / f"lora_{factor}_layer_{layer}.pt")
    return {k: v for params in by_layer.values() for k, v in params.items()}
