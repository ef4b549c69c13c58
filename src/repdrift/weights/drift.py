"""Per-module weight drift of fine-tuned checkpoints and LoRA adapters against their base.

The loop runs module by module: each base weight is read once, decomposed once, and compared
with every variant's version of it before the next module is read, so at most one module's
matrices (W, W', ΔW and the SVD of W) are in memory at a time whatever the model size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from rich.progress import MofNCompleteColumn, Progress

from repdrift.common.devices import resolve_device
from repdrift.common.naming import Method
from repdrift.errors import InputError
from repdrift.weights.checkpoints import (
    CONV1D_MODEL_TYPES,
    WeightFiles,
    find_weight_files,
    is_adapter_folder,
    read_model_type,
    resolve_model_folder,
)
from repdrift.weights.keys import BaseKeyIndex, parse_weight_key
from repdrift.weights.run_adapter import RunAdapter, find_run_adapter
from repdrift.weights.spectra import (
    BaseSpectrum,
    check_intruder_params,
    low_rank_singular_values,
    module_drift,
)
from repdrift.weights.targets import (
    ModuleTarget,
    VariantPlan,
    name_variants,
    plan_full,
    plan_lora,
    plan_run_lora,
)

logger = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "variant",
    "method",
    "layer",
    "module",
    "param",
    "shape",
    "rel_change",
    "delta_fro",
    "base_fro",
    "delta_spectral",
    "base_spectral",
    "spectral_ratio",
    "effective_rank",
    "stable_rank",
    "intruder_count",
    "intruder_energy",
    "intruder_null",
    "min_alignment",
    "k",
    "epsilon",
    "lora_rank",
    "lora_scale",
)


def _canonical(weight: torch.Tensor, transposed: bool, device: torch.device) -> torch.Tensor:
    w = weight.to(device=device, dtype=torch.float64)
    # contiguous: LAPACK is markedly slower on a transposed view
    return w.T.contiguous() if transposed else w


@dataclass(frozen=True)
class ModuleDelta:
    """One variant's update of one base weight, in nn.Linear layout.

    Attributes
    ----------
    variant, method : str
        Variant name and ``"full"`` or ``"lora"``.
    param : str
        Base tensor name.
    layer, module : int, str
        Canonical position, e.g. 3 and ``"attention.self.query"``.
    weight : torch.Tensor, shape (out, in)
        Base weight W, float64.
    delta : torch.Tensor, shape (out, in)
        ΔW = W' - W, float64.
    delta_singular_values : torch.Tensor or None, shape (r,)
        Singular values of ΔW when known from the LoRA factors.
    target : ModuleTarget
        Where the tensors came from (LoRA rank and scale).
    """

    variant: str
    method: Method
    param: str
    layer: int
    module: str
    weight: torch.Tensor
    delta: torch.Tensor
    delta_singular_values: torch.Tensor | None
    target: ModuleTarget


@dataclass
class _Comparison:
    base_files: WeightFiles
    plans: list[VariantPlan]
    order: dict[str, int]  # base tensor name -> position in the base files
    todo: list[str]  # base tensor names some variant changes, in file order


def _run_adapters(
    variants: Mapping[str, str | Path] | Sequence[str | Path] | str | Path, local_files_only: bool
) -> dict[str, RunAdapter]:
    """The run directories among the variants (given path -> its adapter file); PEFT adapter
    folders and model folders are not runs."""
    paths = variants.values() if isinstance(variants, Mapping) else (
        [variants] if isinstance(variants, str | Path) else variants
    )  # fmt: skip
    found: dict[str, RunAdapter] = {}
    for path in paths:
        folder = resolve_model_folder(path, local_files_only=local_files_only)
        if is_adapter_folder(folder):
            continue
        adapter = find_run_adapter(folder)
        if adapter is not None:
            found[str(path)] = adapter
    return found


def _open_comparison(
    stack: ExitStack,
    base: str | Path,
    variants: Mapping[str, str | Path] | Sequence[str | Path] | str | Path,
    modules: Sequence[str] | None,
    local_files_only: bool,
) -> tuple[_Comparison, list[str]]:
    name_variants(variants)  # a bad list is refused before any folder is read
    base_dir = resolve_model_folder(base, local_files_only=local_files_only)
    runs = _run_adapters(variants, local_files_only)
    named = name_variants(variants, {path: run.label for path, run in runs.items()})
    conv1d = read_model_type(base_dir) in CONV1D_MODEL_TYPES
    base_files = stack.enter_context(WeightFiles(find_weight_files(base_dir, "model")))
    index = BaseKeyIndex(key for key in base_files.keys() if len(base_files.shape(key)) == 2)
    plans: list[VariantPlan] = []
    for name, path in named:
        folder = resolve_model_folder(path, local_files_only=local_files_only)
        run = runs.get(str(path))
        method: Method = "lora" if run is not None or is_adapter_folder(folder) else "full"
        if run is not None:
            files = stack.enter_context(WeightFiles([run.path]))
            targets = plan_run_lora(name, run, files, base_files, index, modules, conv1d)
        else:
            files = stack.enter_context(
                WeightFiles(find_weight_files(folder, "adapter" if method == "lora" else "model"))
            )
            planner = plan_lora if method == "lora" else plan_full
            targets = planner(name, folder, files, base_files, index, modules, conv1d)
        if not targets:
            what = f" among modules {list(modules)}" if modules is not None else ""
            raise InputError(
                f"{run.path if run else folder}: no "
                f"{'LoRA' if method == 'lora' else 'layer'} weight matches a layer weight of "
                f"base {base_dir}{what}; looked for names like {index.examples()} (variant has "
                f"e.g. {files.keys()[:3]})"
            )
        logger.info("variant %s (%s): %d module(s) to compare", name, method, len(targets))
        plans.append(VariantPlan(name, folder, method, files, targets))
    order = {key: i for i, key in enumerate(base_files.keys())}
    todo = sorted({key for plan in plans for key in plan.targets}, key=order.__getitem__)
    return _Comparison(base_files, plans, order, todo), [name for name, _ in named]


def _iter_deltas(comparison: _Comparison, device: torch.device) -> Iterator[ModuleDelta]:
    """Module-outer, variant-inner: each base weight is read once and shared (same tensor)."""
    for base_key in comparison.todo:
        plans = [plan for plan in comparison.plans if base_key in plan.targets]
        layouts = {plan.targets[base_key].transposed for plan in plans}
        if len(layouts) > 1:
            logger.warning("variants disagree on the layout of %s; using (in, out)", base_key)
        transposed = max(layouts)
        weight = _canonical(comparison.base_files.get(base_key), transposed, device)
        layer_key = parse_weight_key(base_key)
        assert layer_key is not None  # the index holds layer weights only
        for plan in plans:
            target = plan.targets[base_key]
            s_delta = None
            if plan.method == "full":
                assert target.variant_key is not None
                delta = _canonical(plan.files.get(target.variant_key), transposed, device) - weight
            else:
                assert target.a_key and target.b_key and target.scale is not None
                a = plan.files.get(target.a_key).to(device=device, dtype=torch.float64)
                b = plan.files.get(target.b_key).to(device=device, dtype=torch.float64)
                # B @ A is (out, in) whatever fan_in_fan_out says: PEFT transposes it only to
                # add it to a weight stored (in, out), and we keep W in (out, in).
                delta = target.scale * (b @ a)
                s_delta = low_rank_singular_values(b, a, target.scale)
            yield ModuleDelta(
                plan.name, plan.method, base_key, layer_key.layer, layer_key.module,
                weight, delta, s_delta, target,
            )  # fmt: skip


def module_deltas(
    base: str | Path,
    variants: Mapping[str, str | Path] | Sequence[str | Path] | str | Path,
    *,
    modules: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    local_files_only: bool = True,
) -> Iterator[ModuleDelta]:
    """Yield each variant's ΔW for each base weight it changes, one module at a time.

    The same inputs as :func:`weight_drift`; for analyses the table does not cover. Files stay
    open until the iterator is exhausted or closed.

    Yields
    ------
    ModuleDelta
        Base-module-outer, variant-inner order; ``weight`` is the same tensor for all variants
        of one module.
    """
    dev = resolve_device(device)
    with ExitStack() as stack:
        comparison, _ = _open_comparison(stack, base, variants, modules, local_files_only)
        yield from _iter_deltas(comparison, dev)


def weight_drift(
    base: str | Path,
    variants: Mapping[str, str | Path] | Sequence[str | Path] | str | Path,
    *,
    k: int = 10,
    epsilon: float = 0.5,
    modules: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    local_files_only: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Weight-space drift of fine-tuned variants, per transformer layer and linear module.

    Parameters
    ----------
    base : str or Path
        Base model folder (``save_pretrained`` layout) or a hub id found in the local cache.
    variants : mapping name -> folder, sequence of folders, or one folder
        Full fine-tuned checkpoint folders, PEFT LoRA adapter folders (recognised by
        ``adapter_config.json``) and/or LoRA run directories (a run folder or one of its step
        folders holding ``adapter_weights/lora.safetensors``, written by extraction or
        ``repdrift import``; the run's final step, ΔW = scaling · B @ A with the scaling the file
        records, block ``i``'s module matched to the base's weight in block ``i``). A sequence
        is named by folder name, a run by its manifest's labels (``{task}_lora_seed{seed}``).
    k : int
        Top singular vectors of W' examined for intruder dimensions (Shuttleworth et al.: 10).
    epsilon : float
        Intruder threshold on max |cosine| (default 0.5, as in PEFT).
    modules : sequence of str, optional
        Only these modules, matched against trailing components of the block-relative name
        like PEFT's ``target_modules`` (``["query", "value"]``, ``["q_proj"]``).
    device : str or torch.device
        Where the float64 SVDs run (``"cuda"`` helps for large matrices).
    local_files_only : bool
        A hub-id base is only looked up in the local cache unless this is False.
    progress : bool
        Show a transient rich progress bar over modules.

    Returns
    -------
    pandas.DataFrame
        One row per variant x (layer, module) the variant changes, in variant order, then
        layer, then module; columns :data:`COLUMNS`. Full checkpoints report every matched
        module (unchanged ones with 0 change); LoRA adapters report the modules they adapt.
        ``shape`` is "out x in" in nn.Linear layout (GPT-2 Conv1D weights are transposed to
        it); ``lora_rank`` / ``lora_scale`` are missing for full variants. Beside
        ``intruder_count``: ``intruder_energy``, the share of the top-k spectral energy of W'
        in intruder directions, and ``intruder_null``, the count expected for random
        directions at that shape, ``k`` and ``epsilon`` (see :func:`module_drift`).

    Raises
    ------
    InputError
        A folder holds no weight file, a variant shares no layer weight with the base, a run
        holds no adapter matrices or no scaling for them (an original run imported without
        its LoRA alpha), or an argument is invalid.
    IntegrityError
        A weight file or adapter config is unreadable, or a run's adapter file does not match
        its manifest.
    """
    check_intruder_params(k, epsilon)
    dev = resolve_device(device)
    rows: list[dict[str, object]] = []
    with ExitStack() as stack:
        comparison, names = _open_comparison(stack, base, variants, modules, local_files_only)
        columns = (*Progress.get_default_columns(), MofNCompleteColumn())
        bar = stack.enter_context(Progress(*columns, transient=True, disable=not progress))
        task = bar.add_task("weight drift", total=len(comparison.todo))
        spectrum: BaseSpectrum | None = None
        for item in _iter_deltas(comparison, dev):
            if spectrum is None or spectrum.weight is not item.weight:
                if spectrum is not None:
                    bar.advance(task)
                # One SVD of W per module, shared by every variant of that module.
                spectrum = BaseSpectrum(item.weight)
            stats = module_drift(
                spectrum,
                item.delta,
                k=k,
                epsilon=epsilon,
                delta_singular_values=item.delta_singular_values,
            )
            out_f, in_f = item.weight.shape
            rows.append(
                {
                    "variant": item.variant,
                    "method": item.method,
                    "layer": item.layer,
                    "module": item.module,
                    "param": item.param,
                    "shape": f"{out_f}x{in_f}",
                    **stats,
                    "epsilon": float(epsilon),
                    "lora_rank": item.target.rank,
                    "lora_scale": item.target.scale if item.method == "lora" else float("nan"),
                }
            )
        bar.advance(task)
        order = comparison.order
    return _tidy(rows, names, order)


def _tidy(rows: list[dict[str, object]], names: list[str], order: dict[str, int]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    prefix = table["param"].map(lambda key: parse_weight_key(key).prefix)  # type: ignore[union-attr]
    table = (
        table.assign(
            _v=table["variant"].map({name: i for i, name in enumerate(names)}),
            _p=prefix,
            _o=table["param"].map(order),
        )
        .sort_values(["_v", "_p", "layer", "_o"], kind="stable")
        .drop(columns=["_v", "_p", "_o"])
        .reset_index(drop=True)
    )
    table["lora_rank"] = table["lora_rank"].astype("Int64")
    table["intruder_count"] = table["intruder_count"].astype("int64")
    table["k"] = table["k"].astype("int64")
    table["layer"] = table["layer"].astype("int64")
    return table
