"""The analysis settings: what :func:`repdrift.compare` measures and how sure it says it is.

:class:`AnalysisSettings` is the one home of the analysis's options, their defaults, checks and
help text. :func:`repdrift.analysis.compare_runs.compare` builds it from its keyword arguments
(or takes one whole), the experiment file's ``analysis:`` section extends it
(:class:`repdrift.runner.sections.AnalysisConfig`), and the CLI's ``compare`` reads its
defaults and help. :meth:`AnalysisSettings.resolved` fills in what the defaults leave open (the
resampled metrics, every metric's parameters, the device), and :meth:`AnalysisSettings.summary`
is what results.json records.

Importing this module loads neither pandas nor torch (the CLI reads it for its help texts).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from repdrift.common.devices import metrics_device
from repdrift.common.settings import Settings
from repdrift.metrics import registry
from repdrift.metrics.definitions import CROSS_LAYER_METRIC
from repdrift.metrics.registry import DEFAULT_METRICS

#: Blocks of whole samples the token-level intervals resample.
N_BLOCKS = 50
#: Default number of token-level null passes: none (see :mod:`repdrift.analysis.token_null`).
TOKEN_NULL_PERMS = 0
#: The fields results.json records (what the tables were computed with).
SUMMARY_FIELDS = (
    "metrics", "resampled", "n_boot", "n_perm", "level", "seed", "cross_layer_metric", "methods",
    "metric_params", "device", "token_blocks", "token_null",
)  # fmt: skip


class AnalysisSettings(Settings):
    """What to measure between runs, and with which statistics.

    The field descriptions are the CLI's help texts; the longer story of each:

    Attributes
    ----------
    metrics : list of str
        Similarity measures (see :func:`repdrift.metrics.names`); default cka_debiased,
        cka_linear, cosine, procrustes.
    metric_params : mapping
        Per metric name, parameters other than its defaults (see
        ``repdrift.metrics.get(name).params``), e.g. ``{cka_rbf: {sigma: 0.5}}``; used for
        values, replicates, the noise floor and the cross-layer matrices alike.
    resampled : list of str
        Metrics that get half-sample intervals and permutation nulls (default: those of
        ``metrics`` with an exact fast resampling path: the CKA family reads its replicates
        off precomputed Grams, cosine off per-sample cosines). Any other metric named here is
        recomputed on each half-sample and shuffle through the registry's generic path
        (:func:`repdrift.metrics.resample`), ``n_boot + n_perm`` evaluations per run and layer
        (procrustes at 750 × 2048: minutes per layer); left out, it gets values only.
    n_boot : int
        Half-sample replicates per layer for the intervals (0: none).
    n_perm : int
        Shuffled pairings per layer for the permutation null (0: none).
    level : float
        Confidence level of the intervals.
    seed : int
        Seed of every random draw; the same half-samples and shufflings are used for every
        run of a task, so runs stay paired by sample.
    cross_layer_metric : str
        Metric of the base-layer × fine-tuned-layer matrices.
    methods : pair of str
        The two methods compared against each other (``a − b`` in drift).
    device : str
        Where the float64 Gram / GEMM work of values, intervals and nulls runs: ``auto`` (a
        CUDA device with fast float64 — P100, V100, A100, H100/H200 — else numpy on the CPU),
        ``cpu``, ``cuda`` or ``cuda:N``; the results agree to 1e-10 either way.
    token_blocks : int
        Token-level runs only: blocks of whole samples the intervals resample (at least 2).
    token_null : int
        Token-level runs only: shuffles of the token-level null (default 0: none; at most
        ``n_perm``); what that null tests and its floor ``1 / (1 + token_null)``:
        :mod:`repdrift.analysis.token_null`.
    allow_foreign_reference : bool
        Compare runs whose recorded base weights are not the reference's (refused by default;
        the runs are flagged in the summary).
    allow_different_inputs : bool
        Compare runs whose samples were tokenised differently from the reference's (other
        token ids or padding side: refused by default, see
        :mod:`repdrift.analysis.comparability`); the runs are flagged in the summary and the
        report.
    verify : bool
        Check every file's sha256 against its manifest before reading it.
    """

    KIND: ClassVar[str] = "analysis setting"

    metrics: tuple[str, ...] = Field(
        DEFAULT_METRICS, min_length=1, description="Similarity measure (repeat the option)."
    )
    resampled: tuple[str, ...] | None = Field(
        None,
        description="Metrics that get intervals and p-values (default: those with a fast "
        "resampling path, the CKA family and cosine); others are recomputed per replicate.",
    )
    n_boot: int = Field(1000, ge=0, description="Half-sample replicates per layer (0: none).")
    n_perm: int = Field(1000, ge=0, description="Shuffled pairings per layer (0: none).")
    level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    seed: int = Field(0, description="Seed of every random draw.")
    cross_layer_metric: str = Field(
        CROSS_LAYER_METRIC, description="Metric of the base-layer x fine-tuned-layer matrices."
    )
    metric_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per metric, parameters other than its defaults, e.g. {cka_rbf: {sigma: 0.5}}.",
    )
    methods: tuple[str, str] = Field(
        ("lora", "full"), description="The two methods compared (a - b in drift)."
    )
    device: str | None = Field(
        "auto",
        description="Where the float64 Gram / GEMM work runs: auto (a GPU with fast float64, "
        "else the CPU) | cpu | cuda | cuda:N.",
    )
    token_blocks: int = Field(
        N_BLOCKS, ge=2, description="Token-level runs: blocks of whole samples the intervals "
        "resample.",
    )  # fmt: skip
    token_null: int = Field(
        TOKEN_NULL_PERMS,
        ge=0,
        description="Token-level runs: shuffles of the token-level null (0: none; at most n_perm).",
    )
    allow_foreign_reference: bool = Field(
        False,
        description="Compare runs whose recorded base weights are not the reference's (flagged).",
    )
    allow_different_inputs: bool = Field(
        False,
        description="Compare runs whose samples were tokenised differently from the "
        "reference's (flagged).",
    )
    verify: bool = Field(True, description="Check every file's sha256 before reading it.")

    @field_validator("metrics", "resampled", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("metrics", "cross_layer_metric")
    @classmethod
    def _known(cls, value: Any) -> Any:
        for name in (value,) if isinstance(value, str) else value:
            if name not in registry.names():
                raise ValueError(
                    f"unknown metric {name!r}; expected one of {', '.join(registry.names())}"
                )
        return value

    @field_validator("resampled")
    @classmethod
    def _among_metrics(cls, value: Any, info: ValidationInfo) -> Any:
        chosen = list(info.data.get("metrics") or ())
        missing = [m for m in value or () if m not in chosen]
        if missing:
            raise ValueError(f"resampled metric(s) {missing} are not among the metrics {chosen}")
        return value

    @field_validator("metric_params", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value  # metric_params=None: none given

    @field_validator("metric_params")
    @classmethod
    def _known_params(cls, value: Any, info: ValidationInfo) -> Any:
        named = (*(info.data.get("metrics") or ()), info.data.get("cross_layer_metric"))
        unused = sorted(set(value) - set(named))
        if unused:
            raise ValueError(
                f"metric_params given for {unused}, which are not among the metrics "
                f"{list(dict.fromkeys(n for n in named if n))}"
            )
        for name, params in value.items():
            registry.resolve_params(name, params)  # unknown parameters named
        return value

    def values_only(self) -> list[str]:
        """Metrics left without intervals and p-values by the default ``resampled``."""
        if self.resampled is not None or not (self.n_boot or self.n_perm):
            return []
        return [m for m in self.metrics if not registry.get(m).fast_resampling]

    def resolved(self) -> AnalysisSettings:
        """These settings with the defaults' open ends filled in: the resampled metrics,
        every parameter of each metric that has any, the device (None: numpy on the CPU)."""
        names = (*self.metrics, self.cross_layer_metric)
        params = {n: registry.resolve_params(n, self.metric_params.get(n)) for n in names}
        resampled = self.resampled
        if resampled is None:
            resampled = tuple(m for m in self.metrics if registry.get(m).fast_resampling)
        return self.model_copy(
            update={
                "resampled": tuple(resampled),
                "metric_params": {n: p for n, p in params.items() if p},
                "device": metrics_device(self.device),
            }
        )

    def params(self, metric: str) -> dict[str, Any]:
        """Keyword arguments for the registry when computing ``metric``."""
        return dict(self.metric_params.get(metric, {}))

    def summary(self) -> dict[str, Any]:
        """The settings results.json records (of the :meth:`resolved` settings)."""
        dumped = self.model_dump(include=set(SUMMARY_FIELDS))
        return {key: dumped[key] for key in SUMMARY_FIELDS}


__all__ = ["N_BLOCKS", "SUMMARY_FIELDS", "TOKEN_NULL_PERMS", "AnalysisSettings"]
