"""Each metric described once: the spec's knowledge (label, convention, default parameters,
resampling path) and :func:`repdrift.metrics.resample` against :func:`repdrift.metrics.compute`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from repdrift import metrics
from repdrift.analysis.stats import half_samples, permutations
from repdrift.errors import InputError
from repdrift.metrics import cka, kernels

N = 40


def _data(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 6))
    Ys = [
        np.tanh(X @ rng.standard_normal((6, 6))) + s * rng.standard_normal((N, 6)) for s in (0.3, 1)
    ]
    return X, Ys


def test_spec_is_built_by_keyword_only() -> None:
    spec = metrics.get("cka_linear")
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.init}
    assert metrics.MetricSpec(**fields) == spec
    with pytest.raises(TypeError):
        metrics.MetricSpec(*fields.values())  # type: ignore[misc]


def test_every_metric_carries_its_label_convention_and_defaults() -> None:
    for name in metrics.names():
        spec = metrics.get(name)
        assert spec.label and spec.convention and spec.summary, name
        assert metrics.label(name) == spec.label
        if spec.resampling is not None:
            assert spec.fast_resampling, name
    assert metrics.get("cka_rbf").params == {"sigma": 1.0}
    assert metrics.label("debiased CKA") == "debiased CKA"  # unknown names pass through
    assert {n for n in metrics.names() if metrics.get(n).resampling} == {
        "cka_linear",
        "cka_debiased",
        "cka_rbf",
        "cosine",
    }
    assert {n for n in metrics.names() if metrics.get(n).fast_resampling} == {
        "cka_linear",
        "cka_debiased",
        "cka_rbf",
        "cosine",
    }
    assert set(metrics.DEFAULT_METRICS) <= set(metrics.names())


def test_resolve_params_fills_defaults_and_refuses_unknown_names() -> None:
    assert metrics.resolve_params("cka_rbf") == {"sigma": 1.0}
    assert metrics.resolve_params("cka_rbf", {"sigma": 0.4}) == {"sigma": 0.4}
    assert metrics.resolve_params("cka_linear", None) == {}
    with pytest.raises(InputError, match="did you mean 'sigma'"):
        metrics.resolve_params("cka_rbf", {"sigm": 0.4})


@pytest.mark.parametrize("name", ["cka_linear", "cka_debiased", "cosine", "procrustes", "rsa"])
def test_resample_equals_compute_on_every_resample(name: str) -> None:
    """Values, subset replicates and shuffled-pairing replicates are the registry's metric on
    the resampled rows (the Gram shortcut of linear CKA to rounding, the rest exactly)."""
    X, Ys = _data()
    rng = np.random.default_rng(1)
    idx, perms = half_samples(N, 6, rng), permutations(N, 5, rng)
    res = metrics.resample(name, X, Ys, idx=idx, perms=perms)
    assert res.values.shape == (2,) and res.subsets.shape == (2, 6) and res.null.shape == (2, 5)
    tol = 1e-10 if metrics.get(name).resampling else 0
    for j, Y in enumerate(Ys):
        assert abs(res.values[j] - metrics.compute(name, X, Y)) <= tol
        want = [metrics.compute(name, X[r], Y[r]) for r in idx]
        np.testing.assert_allclose(res.subsets[j], want, rtol=0, atol=tol)
        want = [metrics.compute(name, X, Y[p]) for p in perms]
        np.testing.assert_allclose(res.null[j], want, rtol=0, atol=tol)
    bare = metrics.resample(name, X, Ys)
    assert bare.subsets is None and bare.null is None
    np.testing.assert_array_equal(bare.values, res.values)


@pytest.mark.parametrize("sigma", [1.0, 0.3])
def test_resample_passes_sigma_to_cka_rbf(sigma: float) -> None:
    """Values and nulls equal compute(..., sigma); subsets keep the kernel (and so the
    bandwidth) of all samples, the way the Gram shortcut reads them."""
    X, Ys = _data(2)
    rng = np.random.default_rng(3)
    idx, perms = half_samples(N, 5, rng), permutations(N, 4, rng)
    res = metrics.resample("cka_rbf", X, Ys, idx=idx, perms=perms, sigma=sigma)
    K = kernels.gram_rbf(X, sigma)
    for j, Y in enumerate(Ys):
        assert abs(res.values[j] - metrics.compute("cka_rbf", X, Y, sigma=sigma)) <= 1e-10
        want = [metrics.compute("cka_rbf", X, Y[p], sigma=sigma) for p in perms]
        np.testing.assert_allclose(res.null[j], want, rtol=0, atol=1e-10)
        L = kernels.gram_rbf(Y, sigma)
        for b, r in enumerate(idx):
            Kr, Lr = kernels.center_gram(K[np.ix_(r, r)]), kernels.center_gram(L[np.ix_(r, r)])
            assert abs(res.subsets[j, b] - kernels.kernel_alignment(Kr, Lr)) <= 1e-10
    if sigma != 1.0:
        assert abs(res.values[0] - metrics.compute("cka_rbf", X, Ys[0])) > 1e-4


def test_resample_checks_its_input() -> None:
    X, Ys = _data()
    with pytest.raises(InputError, match="sigmma"):
        metrics.resample("cka_rbf", X, Ys, sigmma=2.0)
    with pytest.raises(InputError, match="sigma"):
        metrics.resample("cka_rbf", X, Ys, sigma=-1.0)
    bad = Ys[0].copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match=r"finite|NaN"):
        metrics.resample("cka_debiased", X, [bad])
    with pytest.raises(InputError, match="rows"):
        metrics.resample("cka_linear", X, [Ys[0][:-1]])


def test_rbf_gram_is_the_kernel_of_cka_rbf() -> None:
    X, Ys = _data()
    Kc, Lc = (kernels.center_gram(cka.rbf_gram(A, sigma=0.7)) for A in (X, Ys[0]))
    assert kernels.kernel_alignment(Kc, Lc) == metrics.compute("cka_rbf", X, Ys[0], sigma=0.7)
