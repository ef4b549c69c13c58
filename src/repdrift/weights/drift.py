"""Per-module weight drift of fine-tuned checkpoints and LoRA adapters against their base.

The loop runs module by module: each base weight is read once, decomposed once, and compared
with every variant's version of it before the next module is read, so at most one module's
matrices (W, W', ΔW and the SVD of W) are in memory at a time whatever the model size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.progress import MofNCompleteColumn, Progress

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
from repdrift.weights.plan import (
    Method,
    ModuleTarget,
    VariantPlan,
    name_variants,
    plan_full,
    plan_lora,
)
from repdrift.weights.spectra import (
    ArrayLike,
    as_float64,
    check_intruder_params,
    effective_rank,
    low_rank_singular_values,
    max_abs_cosine,
    stable_rank,
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
    "min_alignment",
    "k",
    "epsilon",
    "lora_rank",
    "lora_scale",
)


@dataclass
class BaseSpectrum:
    """SVD of one base weight, computed on first use and shared by all variants.

    Attributes
    ----------
    weight : torch.Tensor, shape (out, in)
        float64, nn.Linear layout.
    """

    weight: torch.Tensor
    _svd: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def left(self) -> torch.Tensor:
        """Left singular vectors, shape (out, min(out, in))."""
        return self._decompose()[0]

    @property
    def singular_values(self) -> torch.Tensor:
        """Singular values, shape (min(out, in),), descending."""
        return self._decompose()[1]

    def _decompose(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._svd is None:
            u, s, _ = torch.linalg.svd(self.weight, full_matrices=False)
            self._svd = (u, s)
        return self._svd


def module_drift(
    w_base: ArrayLike | BaseSpectrum,
    delta: ArrayLike,
    *,
    k: int = 10,
    epsilon: float = 0.5,
    delta_singular_values: ArrayLike | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float | int]:
    """All weight-space statistics of one module's update.

    Parameters
    ----------
    w_base : array, shape (out, in), or BaseSpectrum
        Base weight W in nn.Linear layout (a BaseSpectrum reuses its cached SVD).
    delta : array, shape (out, in)
        The update ΔW = W' - W.
    k, epsilon : int, float
        Intruder-dimension parameters (see :mod:`repdrift.weights.spectra`).
    delta_singular_values : array, shape (p,), optional
        Singular values of ΔW when known more cheaply (LoRA); otherwise computed.
    device : str or torch.device
        Where the SVDs run (ignored for the BaseSpectrum's own SVD).

    Returns
    -------
    dict
        ``rel_change`` = ||ΔW||_F / ||W||_F, ``delta_fro``, ``base_fro``, ``delta_spectral`` =
        ||ΔW||_2, ``base_spectral`` = ||W||_2, ``spectral_ratio`` = ||ΔW||_2 / ||W||_2,
        ``effective_rank`` and ``stable_rank`` of ΔW, ``intruder_count``, ``min_alignment``
        (smallest max-|cos| among the examined singular vectors of W'; 1 when ΔW = 0) and
        ``k`` (examined vectors, min(k, out, in)).
    """
    check_intruder_params(k, epsilon)
    if isinstance(w_base, BaseSpectrum):
        base = w_base
    else:
        base = BaseSpectrum(as_float64(w_base, ndim=2, name="w_base", device=device))
    d = as_float64(delta, ndim=2, name="delta", device=base.weight.device)
    if d.shape != base.weight.shape:
        raise InputError(
            f"delta {tuple(d.shape)} and w_base {tuple(base.weight.shape)}: shapes differ"
        )
    if delta_singular_values is None:
        s_delta = torch.linalg.svdvals(d)
    else:
        s_delta = as_float64(delta_singular_values, ndim=1, name="delta_singular_values")
    base_fro = float(torch.linalg.norm(base.weight))
    delta_fro = float(torch.linalg.norm(d))
    k_used = min(k, *d.shape)
    base_spectral = float(base.singular_values[0]) if base.singular_values.numel() else 0.0
    delta_spectral = float(s_delta.max()) if s_delta.numel() else 0.0
    if delta_fro == 0.0:
        # W' = W exactly: every singular vector of W' is one of W's.
        alignment = np.ones(k_used)
    else:
        u_tuned = torch.linalg.svd(base.weight + d, full_matrices=False).U[:, :k_used]
        alignment = max_abs_cosine(base.left, u_tuned)
    return {
        "rel_change": delta_fro / base_fro if base_fro > 0 else float("nan"),
        "delta_fro": delta_fro,
        "base_fro": base_fro,
        "delta_spectral": delta_spectral,
        "base_spectral": base_spectral,
        "spectral_ratio": delta_spectral / base_spectral if base_spectral > 0 else float("nan"),
        "effective_rank": effective_rank(s_delta),
        "stable_rank": stable_rank(s_delta),
        "intruder_count": int((alignment < epsilon).sum()),
        "min_alignment": float(alignment.min()) if alignment.size else float("nan"),
        "k": k_used,
    }


def _canonical(weight: torch.Tensor, transposed: bool, device: torch.device) -> torch.Tensor:
    w = weight.to(device=device, dtype=torch.float64)
    return w.T if transposed else w


def _variant_row(
    variant: VariantPlan,
    target: ModuleTarget,
    base: BaseSpectrum,
    transposed: bool,
    k: int,
    epsilon: float,
) -> dict[str, object]:
    device = base.weight.device
    lora_rank, lora_scale, s_delta = None, float("nan"), None
    if variant.method == "full":
        assert target.variant_key is not None
        tuned = _canonical(variant.files.get(target.variant_key), transposed, device)
        delta = tuned - base.weight
        del tuned
    else:
        assert target.a_key is not None and target.b_key is not None and target.scale is not None
        a = variant.files.get(target.a_key).to(device=device, dtype=torch.float64)
        b = variant.files.get(target.b_key).to(device=device, dtype=torch.float64)
        # B @ A is (out, in) whatever fan_in_fan_out says: PEFT transposes only when merging.
        delta = target.scale * (b @ a)
        s_delta = low_rank_singular_values(b, a, target.scale)
        lora_rank, lora_scale = target.rank, target.scale
    stats = module_drift(
        base, delta, k=k, epsilon=epsilon, delta_singular_values=s_delta, device=device
    )
    layer_key = parse_weight_key(target.base_key)
    assert layer_key is not None
    out_f, in_f = base.weight.shape
    return {
        "variant": variant.name,
        "method": variant.method,
        "layer": layer_key.layer,
        "module": layer_key.module,
        "param": target.base_key,
        "shape": f"{out_f}x{in_f}",
        **stats,
        "epsilon": float(epsilon),
        "lora_rank": lora_rank,
        "lora_scale": lora_scale,
    }


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
        Full fine-tuned checkpoint folders and/or PEFT LoRA adapter folders (recognised by
        ``adapter_config.json``). A sequence is named by folder name.
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
        it); ``lora_rank`` / ``lora_scale`` are missing for full variants.

    Raises
    ------
    InputError
        A folder holds no weight file, a variant shares no layer weight with the base, or an
        argument is invalid.
    IntegrityError
        A weight file or adapter config is unreadable.
    """
    check_intruder_params(k, epsilon)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device: {device!r} is not a torch device: {exc}") from exc
    named = name_variants(variants)
    base_dir = resolve_model_folder(base, local_files_only=local_files_only)
    conv1d = read_model_type(base_dir) in CONV1D_MODEL_TYPES
    with ExitStack() as stack:
        base_files = stack.enter_context(WeightFiles(find_weight_files(base_dir, "model")))
        index = BaseKeyIndex(key for key in base_files.keys() if len(base_files.shape(key)) == 2)
        plans: list[VariantPlan] = []
        for name, path in named:
            folder = resolve_model_folder(path, local_files_only=local_files_only)
            method: Method = "lora" if is_adapter_folder(folder) else "full"
            files = stack.enter_context(
                WeightFiles(find_weight_files(folder, "adapter" if method == "lora" else "model"))
            )
            planner = plan_lora if method == "lora" else plan_full
            targets = planner(name, folder, files, base_files, index, modules, conv1d)
            if not targets:
                what = f" among modules {list(modules)}" if modules is not None else ""
                raise InputError(
                    f"{folder}: no {'LoRA' if method == 'lora' else 'layer'} weight matches a "
                    f"layer weight of base {base_dir}{what}; looked for names like "
                    f"{index.examples()} (variant has e.g. {files.keys()[:3]})"
                )
            logger.info("variant %s (%s): %d module(s) to compare", name, method, len(targets))
            plans.append(VariantPlan(name, folder, method, files, targets))

        order = {key: i for i, key in enumerate(base_files.keys())}
        todo = sorted({key for plan in plans for key in plan.targets}, key=order.__getitem__)
        rows: list[dict[str, object]] = []
        columns = (*Progress.get_default_columns(), MofNCompleteColumn())
        with Progress(*columns, transient=True, disable=not progress) as bar:
            task = bar.add_task("weight drift", total=len(todo))
            for base_key in todo:
                layouts = {p.targets[base_key].transposed for p in plans if base_key in p.targets}
                if len(layouts) > 1:
                    logger.warning(
                        "variants disagree on the layout of %s; using (in, out)", base_key
                    )
                transposed = max(layouts)
                spectrum = BaseSpectrum(_canonical(base_files.get(base_key), transposed, dev))
                for plan in plans:
                    if base_key in plan.targets:
                        target = plan.targets[base_key]
                        rows.append(_variant_row(plan, target, spectrum, transposed, k, epsilon))
                del spectrum
                bar.advance(task)
    return _tidy(rows, [name for name, _ in named], order)


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
