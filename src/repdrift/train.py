"""Thin full / LoRA fine-tuning recipes that produce the variants repdrift compares.

:func:`train` fine-tunes a base model on a task preset (or local data) and saves it in the
standard formats :func:`repdrift.models.load_model` reads: a full fine-tune with
``save_pretrained`` (safetensors) plus the tokenizer, a LoRA fine-tune as a peft adapter
(``adapter_config.json`` + ``adapter_model.safetensors``) plus the tokenizer. Next to the
weights, ``repdrift_training.json`` records the settings and results; ``load_model`` puts it in
``LoadedModel.source["training"]`` so every extraction manifest carries the training seed.

The recipe is a short explicit loop rather than ``transformers.Trainer``: AdamW, a linear
schedule with 6 % warmup, gradient clipping at 1.0, shuffling from a ``torch.Generator``
seeded with ``seed``. The head initialization, LoRA initialization and dropout draw from torch's
global RNG, which is seeded with ``seed`` inside ``torch.random.fork_rng`` so the caller's RNG
state is left untouched. The same seed on the same device therefore gives bit-identical weights
on CPU. The loop has none of Trainer's start-up and per-step bookkeeping, which dominates tiny
demo runs on a laptop CPU.

Tasks: classification presets (``sst2``, ``mrpc``, ``rte``, ``demo-sst``, ``demo-pair``) and
custom labelled data train ``AutoModelForSequenceClassification`` with ``num_labels`` from the
data; ``squad_v2`` (and data with SQuAD ``answers``) trains ``AutoModelForQuestionAnswering``.
Training reads the ``train`` split through :func:`repdrift.tasks.load_samples`, the same path
extraction uses for validation samples.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from repdrift import _train_data as data_mod
from repdrift.atomic import atomic_write_bytes
from repdrift.errors import InputError
from repdrift.models import TRAINING_RECORD, read_training_record, resolve_device
from repdrift.progress import progress_bar
from repdrift.tasks import PRESETS, load_samples

logger = logging.getLogger(__name__)

Method = Literal["full", "lora"]

DEFAULT_LR: dict[str, float] = {"full": 5e-5, "lora": 1e-3}
DEFAULT_EPOCHS = 3.0
WARMUP_FRACTION = 0.06
MAX_GRAD_NORM = 1.0
# The training subset (max_train_samples) is drawn with a fixed seed so that runs with
# different training seeds see the same examples and differ only in initialization and order.
SUBSET_SEED = 0
EVAL_BATCH = 64
RECORD_SCHEMA = 1

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


# --------------------------------------------------------------------------------------------
# Arguments and the training record
# --------------------------------------------------------------------------------------------


def _positive_int(name: str, value: Any, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer{' or None' if allow_none else ''}, "
                         f"got {value!r}")  # fmt: skip


def _positive_float(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{name} must be a positive number or None, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}")


def _check_arguments(args: dict[str, Any]) -> None:
    if args["method"] not in ("full", "lora"):
        raise InputError(f"unknown method {args['method']!r}: expected 'full' or 'lora'")
    if args["task"] not in PRESETS and args["data"] is None:
        raise InputError(
            f"unknown task {args['task']!r}: expected one of {', '.join(PRESETS)}, or pass "
            "data= (a local file or folder with a train split) for a custom task"
        )
    for name in ("batch_size", "rank", "alpha"):
        _positive_int(name, args[name], allow_none=False)
    for name in ("max_steps", "max_train_samples", "save_steps"):
        _positive_int(name, args[name])
    for name in ("epochs", "lr"):
        _positive_float(name, args[name])
    dropout = args["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise InputError(f"dropout must be a number in [0, 1), got {dropout!r}")
    targets = args["target_modules"]
    if targets is not None and (
        isinstance(targets, str) or not targets or not all(isinstance(t, str) for t in targets)
    ):
        raise InputError(
            f"target_modules must be a non-empty list of module names or None, got {targets!r}"
        )


def _weights_present(out: Path, method: str) -> bool:
    name = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    return (out / name).is_file() or any(out.glob("model-*.safetensors"))


def _previous_run(out: Path, arguments: dict[str, Any]) -> bool:
    """True when ``out`` already holds this exact training; prepares ``out`` otherwise.

    Raises
    ------
    InputError
        ``out`` holds something else: a finished training with other settings, or files that
        repdrift did not write (never overwritten).
    """
    if not out.exists():
        return False
    if not out.is_dir():
        raise InputError(f"out {out} is a file; expected a folder for the trained model")
    record = read_training_record(out)
    if record is None:
        if any(out.iterdir()):
            raise InputError(
                f"out {out} is not empty and holds no {TRAINING_RECORD}: refusing to overwrite "
                "files repdrift did not write; choose an empty or new folder"
            )
        return False
    if record.get("complete"):
        previous = record.get("arguments", {})
        if previous == arguments and _weights_present(out, arguments["method"]):
            return True
        if previous != arguments:
            changed = sorted(k for k in arguments.keys() | previous.keys()
                             if previous.get(k) != arguments.get(k))  # fmt: skip
            detail = ", ".join(
                f"{k}: {previous.get(k)!r} -> {arguments.get(k)!r}" for k in changed[:6]
            )
            raise InputError(
                f"out {out} already holds a model trained with other settings ({detail}); "
                "choose another out folder or delete this one"
            )
    # an interrupted run of ours: start over, dropping checkpoints it wrote
    logger.warning("%s holds an unfinished training: starting it again", out)
    for folder in out.glob("checkpoint-*"):
        if folder.is_dir() and (folder / TRAINING_RECORD).is_file():
            shutil.rmtree(folder)
    return False


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    blob = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_bytes(folder / TRAINING_RECORD, blob.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Model set-up
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (head/LoRA init, dropout) and restore the caller's state after."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
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


def _load_tokenizer(src: Path | str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a tokenizer from {src}: {exc}") from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InputError(f"tokenizer of {src} has no pad or eos token to pad with")
        # decoders rarely define a pad token; padded positions are masked, so eos serves
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _build_model(
    src: Path | str, qa: bool, values: list[Any] | None, tokenizer: Any
) -> torch.nn.Module:
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    try:
        with _quiet():
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


def _add_lora(model: torch.nn.Module, qa: bool, args: dict[str, Any]) -> tuple[Any, list[str]]:
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = list(args["target_modules"]) if args["target_modules"] else None
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
        r=args["rank"],
        lora_alpha=args["alpha"],
        lora_dropout=float(args["dropout"]),
        target_modules=targets,
        fan_in_fan_out=fan_in_fan_out,
    )
    with _quiet():
        return get_peft_model(model, config), targets


# --------------------------------------------------------------------------------------------
# Loop, evaluation, saving
# --------------------------------------------------------------------------------------------


def _adamw(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """AdamW without weight decay; the fused kernel where available (10x faster on CPU)."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    except (RuntimeError, ValueError, TypeError):  # a device or torch without fused AdamW
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def _batches(n: int, batch_size: int, total_steps: int, generator: torch.Generator) -> Iterator:
    """Row indices of each step: reshuffled every epoch, the last batch of an epoch partial."""
    step = 0
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        for start in range(0, n, batch_size):
            if step == total_steps:
                return
            yield order[start : start + batch_size]
            step += 1


def _accuracy(
    model: torch.nn.Module, examples: data_mod.Examples, pad_id: int, sep_id: int | None, device
) -> float:
    """Fraction of examples whose arg-max class is the label (length-sorted batches)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples.input_ids[i]))
    correct = 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), EVAL_BATCH):
            batch = data_mod.collate(examples, order[start : start + EVAL_BATCH], pad_id, sep_id)
            labels = batch.pop("labels")
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            correct += int((logits.argmax(-1).cpu() == labels).sum())
    return correct / len(examples)


def _save(model: Any, tokenizer: Any, folder: Path, record: dict[str, Any]) -> None:
    """Weights (full: ``save_pretrained``; LoRA: the adapter), tokenizer, then the record."""
    folder.mkdir(parents=True, exist_ok=True)
    with _quiet():
        model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    _write_record(folder, record)  # last: its presence marks a complete folder


def _validation_examples(
    args: dict[str, Any], tokenizer: Any, values: list[Any], limit: int | None
) -> data_mod.Examples | None:
    """Labelled validation examples for accuracy, or None when there is no separate split."""
    data = args["data"]
    if data is not None and Path(data).is_file():
        logger.info("data %s is a single file (train only): no validation accuracy", data)
        return None
    try:
        samples = load_samples(
            args["task"], data=data, split="validation", n=limit, seed=SUBSET_SEED
        )
    except InputError as exc:
        logger.info("no validation accuracy: %s", exc)
        return None
    if not samples.labels:
        return None
    examples, dropped = data_mod.classification_examples(samples, tokenizer, values)
    if dropped:
        logger.info("validation: %d sample(s) with labels unseen in training skipped", dropped)
    return examples if len(examples) else None


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def train(
    *,
    task: str,
    method: Method,
    model: str | Path,
    out: str | Path,
    seed: int = 42,
    data: str | Path | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    lr: float | None = None,
    batch_size: int = 16,
    rank: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
    max_train_samples: int | None = None,
    save_steps: int | None = None,
    device: str = "auto",
    progress: bool = True,
    max_eval_samples: int | None = 256,
) -> Path:
    """Fine-tune ``model`` on ``task`` (full or LoRA) and save it to ``out``.

    Parameters
    ----------
    task
        A preset (``sst2``, ``mrpc``, ``rte``, ``squad_v2``, ``demo-sst``, ``demo-pair``) or,
        with ``data``, any name. The ``train`` split is used.
    method
        ``"full"`` (every weight trained) or ``"lora"`` (adapters on the attention projections
        plus the task head).
    model
        Local folder or hub id of the base model.
    out
        Folder to write; must be new, empty, or a previous :func:`train` output.
    seed
        Seeds head/LoRA initialization, dropout and the shuffling order.
    data
        Local file or folder for the task (see :func:`repdrift.tasks.load_samples`).
    epochs, max_steps
        Training length; ``max_steps`` wins when both are given. Default: 3 epochs.
    lr
        Peak learning rate; default 5e-5 (full) or 1e-3 (LoRA).
    batch_size
        Examples per optimizer step.
    rank, alpha, dropout, target_modules
        LoRA settings (ignored for ``full``); ``target_modules`` None detects the attention
        query/value projections (BERT ``query``/``value``, Llama ``q_proj``/``v_proj``, GPT-2
        ``c_attn``).
    max_train_samples
        Train on this many samples, drawn with a fixed seed (the same subset for every
        training seed); None uses the whole split.
    save_steps
        Also save ``out/checkpoint-N`` every N steps (same format and record as ``out``).
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    progress
        Show a progress bar.
    max_eval_samples
        Validation samples for the recorded accuracy (classification only); 0 skips it.

    Returns
    -------
    Path
        ``out``, holding the weights, the tokenizer and ``repdrift_training.json``. When
        ``out`` already holds a complete training with the same settings it is returned as is.

    Raises
    ------
    InputError
        Bad method, task, setting or data; ``out`` holds something else.
    """
    from repdrift import __version__
    from repdrift._model_loading import normalize_source

    started = time.perf_counter()
    args: dict[str, Any] = {
        "task": task, "method": method, "seed": seed, "data": data, "epochs": epochs,
        "max_steps": max_steps, "lr": lr, "batch_size": batch_size, "rank": rank,
        "alpha": alpha, "dropout": dropout, "target_modules": target_modules,
        "max_train_samples": max_train_samples, "save_steps": save_steps,
    }  # fmt: skip
    _check_arguments(args)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    _positive_int("max_eval_samples", max_eval_samples or None)
    torch_device = resolve_device(device)
    src = normalize_source(model, "model")
    out = Path(out).expanduser().resolve()
    lora = method == "lora"
    # what defines the result: compared on resume (device and progress do not change it)
    arguments = {
        **args,
        "model": str(src),
        "data": str(Path(data).expanduser().resolve()) if data is not None else None,
        "lr": float(lr if lr is not None else DEFAULT_LR[method]),
        "epochs": float(epochs) if epochs is not None else None,
        "rank": rank if lora else None,
        "alpha": alpha if lora else None,
        "dropout": float(dropout) if lora else None,
        "target_modules": sorted(target_modules) if lora and target_modules else None,
    }
    if _previous_run(out, arguments):
        logger.info("%s already holds this training (%s %s seed %d): reusing it",
                    out, method, task, seed)  # fmt: skip
        return out

    samples = load_samples(task, data=data, split="train", n=max_train_samples, seed=SUBSET_SEED)
    qa = samples.source.get("label_field") == "answers" or task == "squad_v2"
    tokenizer = _load_tokenizer(src)
    values = None if qa else data_mod.label_values(samples.labels, samples.source["location"])
    if qa:
        examples = data_mod.qa_examples(samples, tokenizer)
    else:
        assert values is not None
        examples, _ = data_mod.classification_examples(samples, tokenizer, values)
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    total_steps = max_steps or max(1, math.ceil((epochs or DEFAULT_EPOCHS) * steps_per_epoch))

    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "schema": RECORD_SCHEMA, "complete": False, "repdrift_version": __version__,
        "task": task, "method": method, "seed": seed, "base_model": str(src),
        "arguments": arguments,
    }  # fmt: skip
    _write_record(out, record)  # marks out as ours while training runs

    with _seeded(seed, torch_device):
        net = _build_model(src, qa, values, tokenizer)
        targets: list[str] | None = None
        if lora:
            net, targets = _add_lora(net, qa, args)
        net.to(torch_device)
        # LoRA forwards go through the injected transformers model: peft's QA wrapper drops
        # token_type_ids, and the injected layers and saved head act the same either way
        inner = net.get_base_model() if lora else net
        sep_id = data_mod.segment_sep_id(inner, tokenizer)
        trainable = [p for p in net.parameters() if p.requires_grad]
        optimizer = _adamw(trainable, arguments["lr"])
        from transformers import get_linear_schedule_with_warmup

        schedule = get_linear_schedule_with_warmup(
            optimizer, round(WARMUP_FRACTION * total_steps), total_steps
        )
        generator = torch.Generator().manual_seed(seed)
        common = {
            **record,
            "lr": arguments["lr"],
            "epochs": epochs if max_steps is None else None,
            "max_steps": max_steps,
            "total_steps": total_steps,
            "batch_size": batch_size,
            "rank": rank if lora else None,
            "alpha": alpha if lora else None,
            "dropout": float(dropout) if lora else None,
            "target_modules": targets,
            "trainable_parameters": sum(p.numel() for p in trainable),
            "train_samples": len(examples),
            "train_samples_sha256": samples.source["samples_sha256"],
            "subset_seed": SUBSET_SEED,
            "labels": [str(v) for v in values] if values is not None else None,
            "head": "question_answering" if qa else "sequence_classification",
            "device": str(torch_device),
            "torch_version": torch.__version__,
        }
        losses: list[float] = []
        net.train()
        with progress_bar(total_steps, enabled=progress, description=f"{method} {task}") as bar:
            for step, rows in enumerate(
                _batches(len(examples), batch_size, total_steps, generator), start=1
            ):
                batch = data_mod.collate(examples, rows, tokenizer.pad_token_id, sep_id)
                loss = inner(**{k: v.to(torch_device) for k, v in batch.items()}).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                bar(1)
                if save_steps and step % save_steps == 0 and step < total_steps:
                    _save(net, tokenizer, out / f"checkpoint-{step}",
                          {**common, **_loss_summary(losses), "complete": True, "step": step,
                           "checkpoint": True, "validation_accuracy": None,
                           "seconds": round(time.perf_counter() - started, 3)})  # fmt: skip
                    net.train()

    accuracy = None
    if not qa and max_eval_samples:
        assert values is not None
        evaluation = _validation_examples(arguments, tokenizer, values, max_eval_samples)
        if evaluation is not None:
            accuracy = _accuracy(inner, evaluation, tokenizer.pad_token_id, sep_id, torch_device)
            common["validation_samples"] = len(evaluation)
    final = {**common, **_loss_summary(losses), "complete": True, "step": total_steps,
             "checkpoint": False, "validation_accuracy": accuracy,
             "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    if save_steps and total_steps % save_steps == 0:
        _save(net, tokenizer, out / f"checkpoint-{total_steps}", {**final, "checkpoint": True})
    _save(net, tokenizer, out, final)
    logger.info(
        "trained %s %s seed %d: %d steps, final loss %.4f, validation accuracy %s, %.1f s -> %s",
        method, task, seed, total_steps, final["final_train_loss"],
        "n/a" if accuracy is None else f"{accuracy:.3f}", final["seconds"], out,
    )  # fmt: skip
    return out


def _loss_summary(losses: list[float]) -> dict[str, Any]:
    """Final loss (mean of the last ≤10 steps) and a ≤100-point loss curve [[step, mean]]."""
    every = max(1, math.ceil(len(losses) / 100))
    curve = [
        [
            min(i + every, len(losses)),
            round(sum(losses[i : i + every]) / len(losses[i : i + every]), 6),
        ]
        for i in range(0, len(losses), every)
    ]
    tail = losses[-10:]
    return {"final_train_loss": sum(tail) / len(tail), "loss_curve": curve}
