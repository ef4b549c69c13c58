"""Model set-up for :mod:`repdrift.training.recipe`: task model, LoRA injection, seeding.

The tokenizer comes from :func:`repdrift.models.tokenizer.load_tokenizer`, the loader extraction
uses (one pad fallback).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from repdrift.errors import InputError
from repdrift.training.settings import TrainingSettings

# Attention projections LoRA adapts by default, by module name, in order of preference:
# BERT/RoBERTa, Llama/Mistral/Qwen/OPT, DistilBERT, GPT-2, Falcon/BLOOM/GPT-NeoX, MPT, Phi-3.
_TARGET_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("query", "value"),
    ("q_proj", "v_proj"),
    ("q_lin", "v_lin"),
    ("c_attn",),
    ("query_key_value",),
    ("Wqkv",),
    ("qkv_proj",),
)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (head/LoRA init, dropout) and restore the caller's state after."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the expected 'newly initialized head' report and peft's v5 deprecations."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="peft")
            yield
    finally:
        hf_logging.set_verbosity(previous)


def detect_target_modules(model: torch.nn.Module) -> list[str]:
    """Names of the attention projections LoRA should adapt (BERT ``query``/``value`` …).

    Raises
    ------
    InputError
        No known attention projection names; pass ``target_modules`` explicitly.
    """
    names = _linear_names(model)
    for candidate in _TARGET_CANDIDATES:
        if all(name in names for name in candidate):
            return list(candidate)
    raise InputError(
        f"cannot tell the attention projections of {type(model).__name__}; pass "
        f"target_modules (linear modules it has: {', '.join(sorted(names)[:12])})"
    )


def _linear_names(model: torch.nn.Module) -> set[str]:
    from transformers.pytorch_utils import Conv1D

    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, (torch.nn.Linear, Conv1D))
    }


def build_model(
    src: Path | str, qa: bool, values: list[Any] | None, tokenizer: Any
) -> torch.nn.Module:
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    try:
        with quiet():
            if qa:
                model = AutoModelForQuestionAnswering.from_pretrained(str(src), dtype=torch.float32)
            else:
                assert values is not None
                model = AutoModelForSequenceClassification.from_pretrained(
                    str(src),
                    dtype=torch.float32,
                    num_labels=len(values),
                    id2label={i: str(v) for i, v in enumerate(values)},
                    label2id={str(v): i for i, v in enumerate(values)},
                    problem_type="single_label_classification",
                )
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a trainable model from {src}: {exc}") from exc
    if getattr(model.config, "pad_token_id", None) is None:
        # decoder classification heads find each row's last token through pad_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def add_lora(model: torch.nn.Module, qa: bool, settings: TrainingSettings) -> tuple[Any, list[str]]:
    """``model`` with LoRA adapters of ``settings`` (rank, alpha, dropout, target modules, by
    default the attention projections detected) and the modules they adapt."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = list(settings.target_modules) if settings.target_modules else None
    if targets is None:
        targets = detect_target_modules(model)
    else:
        missing = [t for t in targets if t not in _linear_names(model)]
        if missing:
            raise InputError(
                f"target_modules {missing} are not linear modules of {type(model).__name__}; "
                f"it has: {', '.join(sorted(_linear_names(model))[:12])}"
            )
    # GPT-2's Conv1D stores weights transposed; peft must be told
    fan_in_fan_out = any(
        isinstance(m, Conv1D) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in targets
    )
    config = LoraConfig(
        task_type=TaskType.QUESTION_ANS if qa else TaskType.SEQ_CLS,
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=float(settings.dropout),
        target_modules=targets,
        fan_in_fan_out=fan_in_fan_out,
    )
    with quiet():
        return get_peft_model(model, config), targets
