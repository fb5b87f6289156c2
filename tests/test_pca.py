"""PCA: closed forms against numpy/scikit-learn, EM and SVI against the closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

from ppl_models import _numerics, pca
from ppl_models.datasets import load_digits
from ppl_models.inference import fit_svi
from ppl_models.pca import closed_forms


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_digits(torch.float64).x


@pytest.fixture(scope="module")
def spectrum(digits: torch.Tensor) -> np.ndarray:
    """Eigenvalues of the (1/N) covariance by numpy, descending: the independent reference."""
    x = digits.numpy()
    xc = x - x.mean(0)
    return np.linalg.eigvalsh(xc.T @ xc / len(x))[::-1]


def _projector(u: torch.Tensor | np.ndarray) -> np.ndarray:
    u = np.asarray(u)
    return u @ u.T


# ----------------------------------------------------------------- closed form (tier 1)


@pytest.mark.parametrize("method", ["eigh", "svd"])
def test_eigenvalues_match_numpy(digits, spectrum, method):
    p = pca.fit(digits, 30, method=method)
    assert p.explained_variance.dtype == torch.float64
    # float64 eigensolvers on a 64 x 64 matrix: ~1e-14 relative; 1e-10 leaves room for the
    # different summation orders of the covariance.
    np.testing.assert_allclose(p.explained_variance.numpy(), spectrum[:30], rtol=1e-10)
    np.testing.assert_allclose(p.mean.numpy(), digits.numpy().mean(0), rtol=1e-12)
    u = p.components.numpy()
    np.testing.assert_allclose(u.T @ u, np.eye(30), atol=1e-12)


@pytest.mark.parametrize("method", ["eigh", "svd"])
@pytest.mark.parametrize("m", [1, 5, 10, 30])
def test_reconstruction_error_is_sum_of_discarded_eigenvalues(digits, spectrum, method, m):
    """PRML 12.18: J = sum_{i > M} lambda_i."""
    p = pca.fit(digits, m, method=method)
    j = float(pca.reconstruction_error(digits, p))
    # The residual is formed directly (no cancellation), so float64 rounding only.
    np.testing.assert_allclose(j, spectrum[m:].sum(), rtol=1e-10)


def test_projector_and_components_match_sklearn(digits):
    m = 10
    p = pca.fit(digits, m)
    sk = SkPCA(n_components=m, svd_solver="full").fit(digits.numpy())
    # Projectors are basis-free; both come from float64 factorisations: agree to ~1e-13.
    np.testing.assert_allclose(
        _projector(p.components), _projector(sk.components_.T), rtol=0, atol=1e-8
    )
    # scikit-learn divides by N - 1; we divide by N (maximum likelihood).
    n = digits.shape[0]
    np.testing.assert_allclose(
        p.explained_variance.numpy() * n / (n - 1), sk.explained_variance_, rtol=1e-10
    )
    # The same sign rule (largest-|.| entry of each direction positive) as sklearn >= 1.5.
    np.testing.assert_allclose(p.components.numpy(), sk.components_.T, rtol=0, atol=1e-8)
    np.testing.assert_allclose(
        pca.explained_variance_ratio(p, digits).numpy(), sk.explained_variance_ratio_, rtol=1e-10
    )


def test_transform_and_reconstruct_match_sklearn(digits):
    m = 7
    p = pca.fit(digits, m)
    x = digits.numpy()
    sk = SkPCA(n_components=m, svd_solver="full").fit(x)
    z = pca.transform(digits, p).numpy()
    z_sk = sk.transform(x)
    # Scores may differ by the sign of a column only; align on the components.
    signs = np.sign(np.sum(p.components.numpy() * sk.components_.T, axis=0))
    np.testing.assert_allclose(z, z_sk * signs, rtol=0, atol=1e-8)
    np.testing.assert_allclose(
        pca.reconstruct(digits, p).numpy(), sk.inverse_transform(z_sk), rtol=0, atol=1e-8
    )
    # Numpy input and a single point give the same numbers.
    np.testing.assert_allclose(pca.transform(x[3], p).numpy(), z[3], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        pca.reconstruct(x[:5], p).numpy(), sk.inverse_transform(z_sk[:5]), rtol=0, atol=1e-8
    )


def test_explained_variance_ratio_with_total_variance(digits, spectrum):
    p = pca.fit(digits, 3)
    ratio = pca.explained_variance_ratio(p, float(spectrum.sum()))
    np.testing.assert_allclose(ratio.numpy(), spectrum[:3] / spectrum.sum(), rtol=1e-10)


def test_chunked_eigh_equals_unchunked(digits):
    whole = pca.fit(digits, 10, method="eigh", chunk_size=10_000)
    chunked = pca.fit(digits, 10, method="eigh", chunk_size=7)
    # Same products summed in a different order: float64 rounding, ~1e-15 relative.
    np.testing.assert_allclose(
        chunked.explained_variance.numpy(), whole.explained_variance.numpy(), rtol=1e-12
    )
    assert float(pca.projector_distance(chunked.components, whole.components)) < 1e-10


def test_eigh_is_accurate_when_the_mean_dwarfs_the_spread():
    """Each chunk is centred, so a large offset does not cancel digits (X^T X - N mu mu^T
    in float64 would lose ~12 of them here)."""
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(500, 6, generator=gen, dtype=torch.float64) * torch.arange(1.0, 7.0)
    shifted = pca.fit(base + 1e6, 3, method="eigh", chunk_size=64)
    ref = pca.fit(base, 3, method="svd")
    np.testing.assert_allclose(
        shifted.explained_variance.numpy(), ref.explained_variance.numpy(), rtol=1e-8
    )


def test_gram_routes_agree(digits):
    """The CPU (BLAS syrk) and the torch (GPU) routes give the same Gram matrices."""
    mean = digits.mean(0)
    for centre in (None, mean):
        blas = _numerics._gram_blas(digits, centre, 100)
        torch_route = _numerics._gram_torch(digits, centre, 100)
        np.testing.assert_allclose(blas.numpy(), torch_route.numpy(), rtol=1e-12)
        assert torch.equal(blas, blas.T)


def test_float32_in_float32_out(digits, spectrum):
    x32 = digits.float()
    for method in ("eigh", "svd", "em"):
        p = pca.fit(x32, 4, method=method)
        assert all(t.dtype == torch.float32 for t in p), method
        # float32 has 2^-24 ~ 6e-8 relative precision; the covariance's entries carry an
        # error of order 1e-7 of their scale (lambda_1 ~ 179), so eigenvalues are good to
        # about 1e-6 * lambda_1; 1e-5 * lambda_1 leaves a factor 10 of room.
        err = np.abs(p.explained_variance.double().numpy() - spectrum[:4]).max()
        assert err < 1e-5 * spectrum[0], (method, err)
        # Perturbation theory: subspace error ~ (covariance error) / gap; gap
        # lambda_4 - lambda_5 ~ 32, so ~1e-6 * 179 / 32 ~ 1e-5; bound 1e-4.
        ref = pca.fit(digits, 4).components
        assert float(pca.projector_distance(p.components.double(), ref)) < 1e-4, method
    assert pca.transform(x32, p).dtype == torch.float32
    assert pca.reconstruction_error(x32, p).dtype == torch.float32


def test_projector_distance():
    e = torch.eye(4, dtype=torch.float64)
    rot = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)
    assert float(pca.projector_distance(e[:, :2], e[:, :2] @ rot)) < 1e-15
    # Two lines at angle t: ||P_a - P_b||_F = sqrt(2) sin t.
    t = 0.3
    b = torch.tensor([[np.cos(t)], [np.sin(t)], [0.0], [0.0]], dtype=torch.float64)
    np.testing.assert_allclose(
        float(pca.projector_distance(e[:, :1], b)), np.sqrt(2) * np.sin(t), rtol=1e-14
    )
    # Unequal dimensions: ||P_a - P_b||_F^2 = |M_a - M_b| for nested subspaces.
    np.testing.assert_allclose(float(pca.projector_distance(e[:, :1], e[:, :3])), np.sqrt(2))
    # Tiny angles keep their relative precision.
    b = torch.tensor([[1.0], [1e-9], [0.0], [0.0]], dtype=torch.float64)
    np.testing.assert_allclose(
        float(pca.projector_distance(e[:, :1], b)), np.sqrt(2) * 1e-9, rtol=1e-6
    )


def test_auto_method_rule():
    assert closed_forms._auto_method(70000, 784, 50) == "eigh"
    assert closed_forms._auto_method(100, 5000, 10) == "svd"
    assert closed_forms._auto_method(100_000, 10_000, 20) == "em"
    assert closed_forms._auto_method(100_000, 10_000, 2000) == "eigh"


# ------------------------------------------------------------------------ EM (tier 2)


def test_em_agrees_with_eigh_and_svd(digits, spectrum):
    # M = 4 has a clear gap: lambda_5 / lambda_4 = 0.69, so each iteration shrinks the
    # angle by ~0.69 and tol=1e-11 leaves ~2e-11 to the fixed point (see em's docstring).
    m = 4
    r = pca.em(digits, m, tol=1e-11, max_iter=500, seed=0)
    assert r.converged
    eigh, svd = pca.fit(digits, m, method="eigh"), pca.fit(digits, m, method="svd")
    for a, b in ((r.params, eigh), (r.params, svd), (eigh, svd)):
        assert float(pca.projector_distance(a, b)) < 1e-6
    # Rayleigh-Ritz values: error quadratic in the subspace error.
    np.testing.assert_allclose(r.params.explained_variance.numpy(), spectrum[:m], rtol=1e-10)
    # Same rotation and sign rule: the components themselves agree.
    np.testing.assert_allclose(r.params.components.numpy(), eigh.components.numpy(), atol=1e-8)


def test_em_objective_decreases_monotonically_to_the_discarded_sum(digits, spectrum):
    r = pca.em(digits, 10, tol=1e-10, max_iter=2000, seed=3)
    j = -r.log_likelihood.numpy()  # J, the mean squared reconstruction error
    assert len(j) == r.n_iter > 5
    # Each half-step minimises J exactly; increases can only be rounding of J ~ 300
    # computed as a difference of sums of ~1e5: allow 1e-9 absolute.
    assert np.all(np.diff(j) <= 1e-9)
    assert j[0] > j[-1] + 1.0
    np.testing.assert_allclose(j[-1], spectrum[10:].sum(), rtol=1e-9)


def test_em_is_deterministic_and_takes_init(digits):
    a = pca.em(digits, 3, seed=5, tol=1e-6).params
    b = pca.em(digits, 3, seed=5, tol=1e-6).params
    for s, t in zip(a, b, strict=True):
        assert torch.equal(s, t)
    eigh = pca.fit(digits, 3)
    r = pca.em(digits, 3, init=eigh.components, tol=1e-10)
    assert r.n_iter <= 3  # starting at the answer, the subspace does not move
    assert float(pca.projector_distance(r.params, eigh)) < 1e-8


def test_fit_em_method_and_numpy_input(digits):
    p = pca.fit(digits.numpy(), 4, method="em", tol=1e-11)
    assert float(pca.projector_distance(p, pca.fit(digits, 4))) < 1e-6


# ------------------------------------------------------------- Pyro model, SVI (tier 2)


def _fit_module(x: torch.Tensor, m: int, seed: int = 0) -> pca.PCA:
    module = pca.PCA(x.shape[1], m, mean=x.mean(0), seed=seed)
    result = fit_svi(module, x, optimizer="lbfgs", num_steps=100, progress=False)
    assert result.converged
    return module


def test_svi_finds_the_principal_subspace(digits):
    # L-BFGS in float64 with mu started at the sample mean (its maximum-likelihood value)
    # reaches the principal subspace to ~1e-7 on the digits for M = 2 (measured); 1e-3 is
    # the bound. The gap lambda_2 - lambda_3 = 22 sets the conditioning.
    m = 2
    module = _fit_module(digits, m)
    ref = pca.fit(digits, m)
    got = module.principal_axes(digits)
    assert float(pca.projector_distance(got, ref)) < 1e-3
    w = module.W.detach()
    np.testing.assert_allclose((w.T @ w).numpy(), np.eye(m), atol=1e-12)
    # Rotated to principal axes: eigenvalues of W^T S W equal lambda_1, lambda_2 up to
    # the subspace error squared.
    np.testing.assert_allclose(
        got.explained_variance.numpy(), ref.explained_variance.numpy(), rtol=1e-5
    )
    # Learned sigma: sigma^2_ML = J / D at the optimum (stationarity in sigma only, so as
    # exact as the optimiser's gradient tolerance).
    j = float(pca.reconstruction_error(digits, got))
    np.testing.assert_allclose(float(module.sigma.detach()) ** 2, j / digits.shape[1], rtol=1e-6)
    # mu never moves from the sample mean: its gradient vanishes there for every W.
    np.testing.assert_allclose(got.mean.numpy(), ref.mean.numpy(), atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("m", [5, 10])
def test_svi_finds_the_principal_subspace_more_components(digits, m):
    module = _fit_module(digits, m)
    # Measured ~1e-6..1e-5 (gaps lambda_5 - lambda_6 = 10, lambda_10 - lambda_11 = 8.5).
    assert float(pca.projector_distance(module.principal_axes(digits), pca.fit(digits, m))) < 1e-3


def test_two_instances_keep_separate_parameters(digits):
    x = digits[:300]
    a = pca.PCA(64, 2, mean=x.mean(0), seed=0)
    b = pca.PCA(64, 2, mean=x.mean(0), seed=1)
    fit_svi(a, x, optimizer="lbfgs", num_steps=3, progress=False)
    assert float(b.B.detach().abs().max()) == 0.0  # b untouched by a's fit
    assert float(a.B.detach().abs().max()) > 0.0


def test_params_without_data_uses_last_model_call(digits):
    module = _fit_module(digits[:400], 2)
    with_data = module.principal_axes(digits[:400])
    module.model(digits[:400])  # one more call at the final parameters
    without = module.params()
    # Centred by mu (= the sample mean here) instead of the mean of x: the same numbers.
    np.testing.assert_allclose(
        without.explained_variance.numpy(), with_data.explained_variance.numpy(), rtol=1e-10
    )


def test_pca_module_with_fixed_sigma_and_adam_loss_falls(digits):
    x = digits[:200]
    module = pca.PCA(64, 3, mean=x.mean(0), sigma=2.0)
    assert not any("sigma" in n for n, _ in module.named_parameters())
    r = fit_svi(module, x, optimizer="adam", lr=0.05, num_steps=30, tol=0, progress=False)
    assert r.losses[-1] < r.losses[0]
    assert float(module.sigma) == 2.0


# ------------------------------------------------------------------------ bad input


def test_fit_rejects_bad_input(digits):
    x = digits[:50]
    with pytest.raises(ValueError, match="latent_dim must be an integer in"):
        pca.fit(x, 0)
    with pytest.raises(ValueError, match="latent_dim must be an integer in"):
        pca.fit(x[:10], 11)  # > min(N, D) = 10
    with pytest.raises(ValueError, match="latent_dim must be an integer in"):
        pca.fit(x, 65)
    with pytest.raises(TypeError, match="latent_dim must be an integer"):
        pca.fit(x, 2.5)
    bad = x.clone()
    bad[3, 4] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        pca.fit(bad, 2)
    bad[3, 4] = float("inf")
    with pytest.raises(ValueError, match="x must be finite"):
        pca.em(bad, 2)
    with pytest.raises(ValueError, match="x must be 2-D"):
        pca.fit(x[:, 0], 1)
    with pytest.raises(ValueError, match="method must be one of"):
        pca.fit(x, 2, method="qr")
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        pca.fit(x, 2, method="eigh", chunk_size=0)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        pca.fit(np.array([["a", "b"], ["c", "d"]]), 1)


def test_em_rejects_bad_input(digits):
    x = digits[:50]
    with pytest.raises(ValueError, match=r"init must have shape \(64, 2\)"):
        pca.em(x, 2, init=torch.ones(64, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="init must have full column rank"):
        pca.em(x, 2, init=torch.ones(64, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="tol must be positive"):
        pca.em(x, 2, tol=0.0)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        pca.em(x, 2, max_iter=0)


def test_helpers_reject_bad_input(digits):
    p = pca.fit(digits[:50], 2)
    with pytest.raises(ValueError, match="x must have 64 columns"):
        pca.transform(torch.zeros(3, 5), p)
    with pytest.raises(ValueError, match="x must have 64 columns"):
        pca.reconstruction_error(torch.zeros(3, 5), p)
    with pytest.raises(TypeError, match="params must be a PCAParams"):
        pca.reconstruct(digits[:3], "not params")
    with pytest.raises(ValueError, match="total must be positive"):
        pca.explained_variance_ratio(p, -1.0)
    with pytest.raises(ValueError, match="total must have 64 columns"):
        pca.explained_variance_ratio(p, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="a and b must have the same number of rows"):
        pca.projector_distance(torch.eye(3)[:, :1], torch.eye(4)[:, :1])
    with pytest.raises(ValueError, match="x must be finite"):
        pca.transform(torch.tensor([float("nan")] * 64), p)


def test_module_rejects_bad_input(digits):
    with pytest.raises(ValueError, match="latent_dim must be an integer in"):
        pca.PCA(64, 64)
    with pytest.raises(ValueError, match="latent_dim must be an integer in"):
        pca.PCA(64, 0)
    with pytest.raises(ValueError, match=r"mean must have shape \(64,\)"):
        pca.PCA(64, 2, mean=torch.zeros(3))
    with pytest.raises(ValueError, match="sigma must be positive"):
        pca.PCA(64, 2, sigma=0.0)
    module = pca.PCA(64, 2)
    with pytest.raises(ValueError, match="x must have 64 columns"):
        fit_svi(module, torch.zeros(10, 3), num_steps=1, progress=False)
    with pytest.raises(ValueError, match=r"PCA\.model needs the data x"):
        module.model(None)
    with pytest.raises(ValueError, match=r"params\(\) needs a call of the model first"):
        module.params()


def test_figures(digits, tmp_path):
    from ppl_models import plots

    full = pca.fit(digits, 64)
    figs = [
        plots.plot_pca_spectrum(full.explained_variance, latent_dim=10),
        plots.plot_pca_components(full, n=4),
        plots.plot_pca_reconstructions(digits[:2], full, ms=(1, 5, 30)),
    ]
    for i, fig in enumerate(figs):
        assert plots.save(fig, tmp_path / f"f{i}.png").stat().st_size > 0
    with pytest.raises(ValueError, match="ms asks for 65 components"):
        plots.plot_pca_reconstructions(digits[:1], full, ms=(65,))
    with pytest.raises(ValueError, match="image_shape is needed"):
        plots.plot_pca_components(pca.fit(digits[:, :10], 2))


def test_centred_products_check_devices_dtypes_and_shapes():
    # Issue 17: with one tensor on another device centred_matmul returned uninitialised
    # memory (on a GPU). Devices and dtypes are checked before any value is read
    # (check_like; test_checks.py has the device case); a meta tensor holds no data.
    x = torch.randn(6, 3, dtype=torch.float64)
    mean, w = x.mean(0), torch.ones(3, 2, dtype=torch.float64)
    np.testing.assert_allclose(
        pca.centred_matmul(x, mean, w).numpy(), (x.numpy() - x.numpy().mean(0)) @ w.numpy()
    )
    with pytest.raises(ValueError, match=r"mean is a meta tensor"):
        pca.centred_matmul(x, mean.to("meta"), w)
    with pytest.raises(ValueError, match=r"w has dtype torch.float32 but x has torch.float64"):
        pca.centred_matmul(x, mean, w.float())
    with pytest.raises(ValueError, match=r"mean must have 3 entries"):
        pca.centred_matmul(x, mean[:2], w)
    with pytest.raises(ValueError, match=r"z must have 6 rows"):
        pca.centred_rmatmul(x, mean, torch.ones(5, 2, dtype=torch.float64))


def test_pca_em_refuses_fewer_directions_than_components():
    # Two rows span one centred direction: Z^T Z is singular for 2 components (a raw
    # _LinAlgError before).
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 7.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="span fewer than latent_dim = 2 directions"):
        pca.em(x, 2)


def test_pca_params_and_totals_are_checked():
    x = torch.randn(10, 3, dtype=torch.float64)
    p = pca.fit(x, 2)
    with pytest.raises(ValueError, match=r"params.mean must be finite"):
        pca.transform(x, p._replace(mean=torch.full((3,), float("nan"), dtype=torch.float64)))
    with pytest.raises(TypeError, match=r"params.components must hold real numbers"):
        pca.reconstruct(x, p._replace(components=np.array([["a"] * 2] * 3)))
    with pytest.raises(ValueError, match=r"total .* has no variance"):
        pca.explained_variance_ratio(p, torch.ones(4, 3))
    # A 0-d tensor is a number (the total variance).
    np.testing.assert_allclose(
        pca.explained_variance_ratio(p, torch.tensor(2.0)).numpy(), p.explained_variance / 2
    )
