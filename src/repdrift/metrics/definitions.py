"""Every registered metric, described once: functions, bounds, label, convention, resampling.

Each metric is listed explicitly in :data:`METRICS` (no import scanning). A metric provides a
one-pair function ``f(X, Y, **params) -> float`` and, optionally, an all-pairs function
``g(layers_a, layers_b, **params) -> ndarray`` that precomputes per-layer state. Both receive
validated float64 input: 2-D, finite, paired rows, n >= ``min_n``. Their keyword-only
parameters (with defaults) are the parameters users may pass. See
:class:`~repdrift.metrics.spec.MetricSpec` for the fields.
"""

from __future__ import annotations

import numpy as np

from repdrift.metrics import cca, cka, cosine, kernels, knn, procrustes, rsa
from repdrift.metrics.resampling import CosineResampling, GramResampling
from repdrift.metrics.spec import MetricSpec

#: The metrics :func:`repdrift.analysis.compare_runs.compare` and an experiment file's
#: ``analysis.metrics`` use unless told otherwise.
DEFAULT_METRICS = ("cka_debiased", "cka_linear", "cosine", "procrustes")
#: The metric of the base x fine-tuned cross-layer matrices unless told otherwise (compare, the
#: experiment file's ``analysis.cross_layer_metric``, the CLI's ``--cross-layer-metric``).
CROSS_LAYER_METRIC = "cka_debiased"


def _as_is(K: np.ndarray) -> np.ndarray:
    """``centered_gram`` is already centred: biased linear CKA aligns it as it is."""
    return K


_SHORTCUT = {
    "cka_linear": GramResampling(gram=kernels.centered_gram, center=_as_is, debiased=False),
    "cka_debiased": GramResampling(
        gram=kernels.centered_gram, center=kernels.u_center_gram, debiased=True
    ),
    "cka_rbf": GramResampling(gram=cka.rbf_gram, center=kernels.center_gram, debiased=False),
}

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            name="cka_linear", one_pair=cka.cka_linear, all_pairs=cka.cka_linear_matrix,
            min_n=2, symmetric=True, bounds=(0.0, 1.0), on_device=True,
            summary="linear CKA, biased HSIC (Kornblith et al. 2019)",
            label="linear CKA",
            convention="linear CKA with the biased HSIC estimator (Kornblith et al. 2019): "
            "⟨HKH, HLH⟩ / (‖HKH‖ ‖HLH‖) for linear Gram matrices K = XXᵀ, L = YYᵀ and "
            "centring H; in [0, 1], biased upwards when the width is large relative to the "
            "number of samples",
            fast_resampling=True, resampling=_SHORTCUT["cka_linear"],
        ),
        MetricSpec(
            name="cka_debiased", one_pair=cka.cka_debiased, all_pairs=cka.cka_debiased_matrix,
            min_n=4, symmetric=True, bounds=(-1.0, 1.0), on_device=True,
            summary="linear CKA, unbiased HSIC (Song et al. 2012)",
            label="debiased CKA",
            convention="linear CKA with the unbiased HSIC U-statistic (Song et al. 2012), "
            "which removes the finite-sample bias of the biased estimator; it can be slightly "
            "negative for unrelated representations",
            fast_resampling=True, resampling=_SHORTCUT["cka_debiased"],
            population_bounds=(0.0, 1.0),
        ),
        MetricSpec(
            name="cka_rbf", one_pair=cka.cka_rbf, all_pairs=cka.cka_rbf_matrix,
            min_n=2, symmetric=True, bounds=(0.0, 1.0), on_device=True,
            summary="RBF CKA, bandwidth sigma x median distance, biased HSIC",
            label="RBF CKA",
            convention="CKA with Gaussian (RBF) kernels, bandwidth σ × the median pairwise "
            "distance (Kornblith et al. 2019), biased HSIC",
            fast_resampling=True, resampling=_SHORTCUT["cka_rbf"],
        ),
        MetricSpec(
            name="cka_minibatch", one_pair=cka.cka_minibatch,
            all_pairs=cka.cka_minibatch_matrix,
            min_n=4, symmetric=True, bounds=(-1.0, 1.0), on_device=True,
            summary="minibatch CKA, mean unbiased HSIC (Nguyen et al. 2021)",
            label="minibatch CKA",
            convention="minibatch CKA: unbiased HSIC averaged over minibatches "
            "(Nguyen et al. 2021)",
            population_bounds=(0.0, 1.0),
        ),
        MetricSpec(
            name="cosine", one_pair=cosine.cosine, all_pairs=cosine.cosine_matrix,
            min_n=1, symmetric=True, bounds=(-1.0, 1.0), on_device=True,
            summary="mean per-sample cosine (same feature space)",
            label="cosine",
            convention="mean over samples of the cosine between a sample's base and "
            "fine-tuned vector; requires the same feature space, no alignment is applied",
            fast_resampling=True, resampling=CosineResampling(),
        ),
        MetricSpec(
            name="procrustes", one_pair=procrustes.procrustes,
            all_pairs=procrustes.procrustes_matrix,
            min_n=2, symmetric=True, bounds=(0.0, 1.0), on_device=False,
            summary="orthogonal Procrustes similarity (nuclear norm)",
            label="Procrustes",
            convention="orthogonal Procrustes similarity: both sides column-centred and scaled "
            "to unit Frobenius norm, similarity = nuclear norm of XᵀY = max over orthogonal Q "
            "of tr(XᵀYQ); the squared Procrustes distance is 2 − 2s",
        ),
        MetricSpec(
            name="rsa", one_pair=rsa.rsa, all_pairs=rsa.rsa_matrix,
            min_n=3, symmetric=True, bounds=(-1.0, 1.0), on_device=False,
            summary="Spearman correlation between RDMs",
            label="RSA",
            convention="representational similarity analysis: Spearman correlation between "
            "the representational dissimilarity matrices",
        ),
        MetricSpec(
            name="mutual_knn", one_pair=knn.mutual_knn, all_pairs=knn.mutual_knn_matrix,
            min_n=3, symmetric=True, bounds=(0.0, 1.0), on_device=False,
            summary="mutual k-NN alignment (Huh et al. 2024)",
            label="mutual k-NN",
            convention="mutual k-NN alignment (Huh et al. 2024)",
        ),
        MetricSpec(
            name="cca", one_pair=cca.cca, all_pairs=cca.cca_matrix,
            min_n=3, symmetric=True, bounds=(0.0, 1.0), on_device=False,
            summary="mean canonical correlation",
            label="CCA",
            convention="mean canonical correlation",
        ),
        MetricSpec(
            name="svcca", one_pair=cca.svcca, all_pairs=cca.svcca_matrix,
            min_n=3, symmetric=True, bounds=(0.0, 1.0), on_device=False,
            summary="SVCCA (Raghu et al. 2017)",
            label="SVCCA",
            convention="SVCCA (Raghu et al. 2017)",
        ),
        MetricSpec(
            name="pwcca", one_pair=cca.pwcca, all_pairs=cca.pwcca_matrix,
            min_n=3, symmetric=False, bounds=(0.0, 1.0), on_device=False,
            summary="projection-weighted CCA (Morcos et al. 2018)",
            label="PWCCA",
            convention="projection-weighted CCA (Morcos et al. 2018)",
        ),
    )
}  # fmt: skip
