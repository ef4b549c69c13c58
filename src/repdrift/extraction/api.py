"""Extraction: from a model and a task to a run directory on disk.

Three levels, each built on the one below:

:func:`extract`
    Paths in, run directory out: builds the settings once (a
    :class:`~repdrift.tasks.settings.SampleSettings`, an
    :class:`~repdrift.extraction.options.ExtractionOptions`), reads the samples
    (:func:`repdrift.extraction.request.check_request`), then :func:`extract_request` loads the
    model (:func:`repdrift.models.load.load_model`) and writes ``RUN/step_000000`` (plus one
    ``step_N`` per Trainer ``checkpoint-N`` with ``checkpoints=True``, plus a base run with the
    LoRA adapter disabled with ``base_out=``), resuming a partial run.
:func:`extract_loaded`
    An already loaded :class:`~repdrift.models.loaded.LoadedModel` and samples to one step folder;
    ``adapter_disabled=True`` extracts the base representations of a LoRA model without
    loading the base again.
:func:`repdrift.extraction.to_run.extract_to_run`
    The store-backed loop for any torch model (its
    :class:`~repdrift.extraction.model_parts.ModelParts`): streams chunks of pooled outputs to disk
    (constant memory in the number of samples) and assembles the layer files.

The forward pass itself is :mod:`repdrift.extraction.capture` (hooks, pooling on the device, stopping
after the last requested layer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from repdrift.common.naming import LayerFormat, Pooling, find_checkpoints, layer_name
from repdrift.errors import InputError
from repdrift.extraction.model_parts import ModelParts
from repdrift.extraction.options import ExtractionOptions
from repdrift.extraction.request import REQUEST_KEY, Request, check_request
from repdrift.extraction.seen import trained_samples_seen
from repdrift.extraction.to_run import StepRecord, extract_to_run
from repdrift.extraction.token_text import token_text
from repdrift.models.load import load_model
from repdrift.store.adapter_file import ADAPTER_FILE
from repdrift.store.manifest import TRAINED_SAMPLES_KEY, Manifest, step_dir_name
from repdrift.store.tensorfile import save_safetensors
from repdrift.tasks.encoding import encode, token_limit
from repdrift.tasks.settings import DEFAULT_SAMPLES, SampleSettings

if TYPE_CHECKING:
    from repdrift.models.loaded import LoadedModel
    from repdrift.tasks.samples import Samples

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------- LoRA weights


def lora_tensors(blocks: Sequence[nn.Module]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The active LoRA A/B matrices inside the blocks, keyed by canonical layer and module.

    Returns
    -------
    tensors : dict
        ``"layer_{i}.{module}.lora_A"`` (r, in) and ``"layer_{i}.{module}.lora_B"`` (out, r),
        float32, e.g. ``layer_3.attention.self.query.lora_A``; ``module`` is the path inside
        block ``i``.
    metadata : dict
        ``"layer_{i}.{module}.scaling"`` -> str(alpha / r) (safetensors metadata is str->str).
    """
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}
    for i, block in enumerate(blocks):
        for path, module in block.named_modules():
            lora_a = getattr(module, "lora_A", None)
            lora_b = getattr(module, "lora_B", None)
            if not isinstance(lora_a, nn.ModuleDict) or not isinstance(lora_b, nn.ModuleDict):
                continue
            active = [a for a in getattr(module, "active_adapters", list(lora_a)) if a in lora_a]
            for adapter in active:
                suffix = "" if len(active) == 1 else f".{adapter}"
                key = f"{layer_name(i)}.{path}{suffix}"
                tensors[f"{key}.lora_A"] = (
                    lora_a[adapter].weight.detach().float().cpu().contiguous()
                )
                tensors[f"{key}.lora_B"] = (
                    lora_b[adapter].weight.detach().float().cpu().contiguous()
                )
                scaling = getattr(module, "scaling", {}).get(adapter)
                if scaling is not None:
                    meta[f"{key}.scaling"] = repr(float(scaling))
    return tensors, meta


def _adapter_writer(
    tensors: dict[str, torch.Tensor], meta: dict[str, str]
) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        save_safetensors(tensors, tmp, metadata=meta)

    return write


# --------------------------------------------------------------------------- loaded models


def extract_loaded(
    loaded: LoadedModel,
    samples: Samples,
    step_dir: str | Path,
    *,
    options: ExtractionOptions | None = None,
    step: int = 0,
    adapter_disabled: bool = False,
    progress: bool | Callable[[int], None] = True,
    request: str | None = None,
) -> Manifest:
    """Extract a loaded model's representations of ``samples`` into one step folder.

    Parameters
    ----------
    loaded : LoadedModel
    samples : Samples
    step_dir : str or Path
        ``RUN/step_XXXXXX``.
    options : ExtractionOptions, optional
        Pooling, layers, batching and format (default ``ExtractionOptions()``). The model is
        already loaded: the manifest records the dtype it was loaded in, and ``device``,
        ``device_map`` and ``trust_remote_code`` do not apply.
    adapter_disabled : bool
        For a LoRA model: run with the adapter disabled, i.e. the base model's
        representations (recorded as kind ``base``, ``model.adapter_disabled = true``,
        ``model.weights_sha256`` = the base's hash). No adapter weights are written.
    step, progress
        See :func:`extract_to_run`.
    request : str, optional
        :func:`repdrift.extraction.request.request_sha256` of the call that made this step,
        kept in the manifest so that the same call later returns before loading the model.

    Returns
    -------
    Manifest
    """
    token_ids = encode(samples, loaded.tokenizer)
    source = dict(loaded.source)
    kind: str = loaded.kind
    extra_files: dict[str, Callable[[Path], None]] = {}
    if adapter_disabled:
        if loaded.kind != "lora":
            raise InputError(
                f"adapter_disabled=True needs a LoRA model; {source.get('path')} is {loaded.kind!r}"
            )
        source.update(
            kind="base",
            path=source.get("base"),
            adapter=None,
            adapter_path=source.get("adapter"),
            adapter_weights_sha256=source.get("weights_sha256"),
            weights_sha256=source.get("base_weights_sha256"),
        )
        kind = "base"
    elif loaded.kind == "lora":
        tensors, meta = lora_tensors(loaded.blocks)
        if tensors:
            extra_files[ADAPTER_FILE] = _adapter_writer(tensors, meta)
        else:
            logger.warning(
                "no LoRA modules found inside the blocks of %s; no adapter_weights written",
                source.get("path"),
            )
    source["adapter_disabled"] = adapter_disabled
    tok = loaded.tokenizer
    opts = options if options is not None else ExtractionOptions()
    if source.get("dtype") is not None:  # the dtype the model really runs in
        opts = opts.updated(dtype=source["dtype"])
    extra: dict = {REQUEST_KEY: request} if request is not None else {}
    seen = None if adapter_disabled else trained_samples_seen(source, samples)
    if seen is not None:  # how many samples the model was trained on (warned when any)
        extra[TRAINED_SAMPLES_KEY] = seen
    record = StepRecord(
        sample_ids=samples.ids, task=samples.task, split=samples.split, data=samples.source,
        # the limit the tokens were cut at (a max_length above the tokenizer's is clamped)
        max_length=token_limit(samples, tok, log=False),
        tokenizer_sha256=source.get("tokenizer_sha256"),
        kind=kind, model=source, step=step, extra=extra,
        token_text=token_text(tok, token_ids) if opts.pooling == "tokens" else None,
    )  # fmt: skip

    def run() -> Manifest:
        return extract_to_run(
            ModelParts.of(loaded), token_ids, step_dir, record=record, options=opts,
            extra_files=extra_files, progress=progress,
        )  # fmt: skip

    if adapter_disabled:
        with loaded.adapter_disabled():
            return run()
    return run()


def extract(
    model: str | Path,
    *,
    task: str,
    out: str | Path,
    base: str | Path | None = None,
    data: str | Path | None = None,
    samples: int | None = DEFAULT_SAMPLES,
    seed: int = 0,
    split: str | None = None,
    text_fields: Sequence[str] | None = None,
    id_field: str | None = None,
    label_field: str | None = None,
    max_length: int | None = None,
    pooling: Pooling | None = None,
    layers: Sequence[int | str] | int | str | None = None,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    dtype: str | None = None,
    device: str | None = None,
    device_map: str | dict[str, int | str] | None = None,
    max_memory: dict[int | str, int | str] | str | None = None,
    offload_folder: str | Path | None = None,
    format: LayerFormat | None = None,
    checkpoints: bool = False,
    base_out: str | Path | None = None,
    trust_remote_code: bool | None = None,
    final_norm: bool | None = None,
    options: ExtractionOptions | None = None,
    progress: bool = True,
) -> Path:
    """Extract a model's layer representations for a task into a run directory.

    Parameters
    ----------
    model : str or Path
        Model folder, hub id, or LoRA adapter folder.
    task : str
        Task preset (sst2, mrpc, rte, squad_v2) or a name for custom ``data``.
    out : str or Path
        Run directory; ``out/step_000000`` holds the final model. Re-running the same
        command resumes a partial run and leaves a complete one untouched.
    base : str or Path, optional
        Base model of a full fine-tune or LoRA adapter.
    data, samples, seed, split, text_fields, id_field, label_field, max_length
        The sample settings (``samples`` is n, None: all), see
        :class:`~repdrift.tasks.settings.SampleSettings`: the data's columns (one or two text
        columns, a unique id, the label) and the token budget per sample default to the
        preset's, or for your own data the columns detected by their common names and 512
        tokens (see :func:`repdrift.tasks.samples.load_samples`).
    pooling, layers, batch_size, max_tokens, dtype, device, format, trust_remote_code, final_norm
        The extraction settings, see :class:`~repdrift.extraction.options.ExtractionOptions`
        (defaults: mean pooling, every block, 32 samples per batch, a token budget only on
        CUDA (sized from free memory), dtype ``auto`` (bfloat16 on a CUDA device that supports
        it, else float32), ``auto`` device, safetensors, the model's final norm applied to the
        last block as in ``hidden_states[-1]``). Each one given (not None) replaces the same
        field of ``options``.
    device_map, max_memory, offload_folder
        A model larger than one device: accelerate's placement (``auto``, ``balanced``, an
        explicit ``{module: device}`` map) with per-device limits, offloading to the CPU or
        to disk; results equal the single-device run's. See
        :func:`repdrift.models.load.load_model`.
    options : ExtractionOptions, optional
        All settings at once.
    checkpoints : bool
        Also extract each Trainer ``checkpoint-N`` (see :func:`find_checkpoints`) into
        ``out/step_{N:06d}``.
    base_out : str or Path, optional
        LoRA only: also write the base representations (adapter disabled, same samples) to
        this run directory, without loading the base a second time.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    InputError
        A bad setting (named with its value), a missing model or data, ...
    """

    settings = SampleSettings.create(
        task=task, data=data, split=split, n=samples, seed=seed, text_fields=text_fields,
        id_field=id_field, label_field=label_field, max_length=max_length,
    )  # fmt: skip
    opts = ExtractionOptions.build(
        options, pooling=pooling, layers=layers, batch_size=batch_size, max_tokens=max_tokens,
        dtype=dtype, device=device, format=format, trust_remote_code=trust_remote_code,
        device_map=device_map, max_memory=max_memory, offload_folder=offload_folder,
        final_norm=final_norm,
    )  # fmt: skip
    # the data are read and checked before the model loads: a wrong column fails in a second
    request = check_request(model, out=out, samples=settings, options=opts, base=base)
    return extract_request(request, checkpoints=checkpoints, base_out=base_out, progress=progress)


def extract_request(
    request: Request,
    *,
    checkpoints: bool = False,
    base_out: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Carry out a checked extraction call (:func:`repdrift.extraction.request.check_request`,
    which read the samples): what :func:`extract` does after building its settings, and what
    the CLI calls. A complete step 0 made by this very call returns before the model loads.

    Returns
    -------
    Path
        ``request.out``.
    """
    out, chosen, opts = request.out, request.samples, request.options
    if not request.needs_model(base_out=base_out, checkpoints=checkpoints):
        return out
    loaded = _load(request.model, request.base, opts)
    if base_out is not None and loaded.kind != "lora":
        raise InputError(
            f"base_out needs a LoRA adapter; {request.model} loaded as {loaded.kind!r}"
        )
    common = {"options": opts, "progress": progress}
    extract_loaded(loaded, chosen, out / step_dir_name(0), request=request.sha256, **common)
    if base_out is not None:
        extract_loaded(
            loaded, chosen, Path(base_out) / step_dir_name(0), adapter_disabled=True, **common
        )
    if checkpoints:
        found = find_checkpoints(request.model)
        if not found:
            logger.warning(
                "checkpoints=True but no checkpoint-N folder in or beside %s", request.model
            )
        for step, folder in found.items():
            if step == 0:
                logger.warning("skipping %s: step 0 is the final model's folder", folder)
                continue
            loaded = None  # one model in memory at a time
            loaded = _load(folder, request.base, opts)
            logger.info("checkpoint %s -> %s", folder, step_dir_name(step))
            extract_loaded(loaded, chosen, out / step_dir_name(step), step=step, **common)
    return out


def _load(model: str | Path, base: str | Path | None, options: ExtractionOptions) -> LoadedModel:
    """:func:`repdrift.models.load.load_model` with the options' device, dtype, placement and
    remote code."""
    return load_model(model, base=base, placement=options)
