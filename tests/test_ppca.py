"""PPCA closed forms against scikit-learn, scipy and numpy; EM and SVI against the closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SkPCA

from ppl_models import ppca
from ppl_models.inference import fit_svi
from ppl_models.ppca import PPCAParams


def _data(n=400, d=8, m=3, seed=0, noise=0.3):
    """Points from a PPCA with a clear spectral gap (float64)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((d, m)) * np.array([3.0, 2.0, 1.5])[:m]
    x = rng.standard_normal((n, m)) @ w.T + noise * rng.standard_normal((n, d)) + 1.5
    return torch.from_numpy(x)


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _eigen_loglik(x: np.ndarray, m: int) -> float:
    """REFERENCES.md: ln L* = -N/2 [D ln 2pi + sum_{j<=M} ln l_j + (D-M) ln s2 + D]."""
    n, d = x.shape
    lam = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]
    s2 = lam[m:].mean()
    return -n / 2 * (d * np.log(2 * np.pi) + np.log(lam[:m]).sum() + (d - m) * np.log(s2) + d)


# --------------------------------------------------------------------- closed form


def test_closed_form_covariance_equals_sklearn_rescaled():
    x = _data()
    n, d, m = 400, 8, 3
    p = ppca.closed_form(x, m)
    assert p.W.dtype == torch.float64 and p.W.shape == (d, m) and p.sigma2.shape == ()
    sk = SkPCA(n_components=m, svd_solver="full").fit(x.numpy())
    # scikit-learn divides by N - 1 (REFERENCES.md): C_ML = get_covariance() * (N-1)/N.
    c_ref = sk.get_covariance() * (n - 1) / n
    assert _rel(ppca.covariance(p), c_ref) < 1e-8
    assert float(p.sigma2) == pytest.approx(sk.noise_variance_ * (n - 1) / n, rel=1e-8)
    np.testing.assert_allclose(p.mu, x.numpy().mean(0), rtol=0, atol=1e-12)


def test_closed_form_for_wide_data_against_numpy_eigh():
    # D > N takes the SVD route. scikit-learn is no reference here: its noise_variance_
    # averages the min(N, D) - M discarded eigenvalues, while the maximum-likelihood
    # sigma^2 averages all D - M of them, zeros included (Tipping & Bishop eq. 8).
    n, d, m = 30, 60, 3
    x = torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 + 1
    lam, u = np.linalg.eigh(np.cov(x.numpy().T, bias=True))
    lam, u = lam[::-1], u[:, ::-1]
    s2 = lam[m:].mean()
    w = u[:, :m] * np.sqrt(lam[:m] - s2)
    p = ppca.closed_form(x, m)
    assert float(p.sigma2) == pytest.approx(s2, rel=1e-10)
    assert _rel(ppca.covariance(p), w @ w.T + s2 * np.eye(d)) < 1e-10


def test_log_likelihood_equals_scipy_and_the_eigenvalue_formula():
    x = _data()
    p = ppca.closed_form(x, 3)
    c = ppca.covariance(p).numpy()
    ll = ppca.log_likelihood(x, p)
    ref = multivariate_normal(mean=p.mu.numpy(), cov=c).logpdf(x.numpy())
    np.testing.assert_allclose(ll.numpy(), ref, rtol=1e-10)
    assert float(ll.sum()) == pytest.approx(_eigen_loglik(x.numpy(), 3), rel=1e-10)
    # One point (D,) is one row.
    assert float(ppca.log_likelihood(x[0], p)[0]) == pytest.approx(ref[0], rel=1e-12)


def test_precision_posterior_against_direct_gaussian_algebra():
    x = _data()
    p = ppca.closed_form(x, 3)
    c = ppca.covariance(p).numpy()
    np.testing.assert_allclose(ppca.precision(p).numpy(), np.linalg.inv(c), rtol=1e-9, atol=1e-12)
    # (z, x) is jointly Gaussian with Cov(z, x) = W^T: condition directly on x.
    w, mu = p.W.numpy(), p.mu.numpy()
    k = w.T @ np.linalg.inv(c)
    mean, cov = ppca.posterior(x, p)
    np.testing.assert_allclose(mean.numpy(), (x.numpy() - mu) @ k.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.eye(3) - k @ w, rtol=1e-9, atol=1e-12)


def test_missing_coordinates_are_marginalised():
    x = _data(n=60)
    p = ppca.closed_form(x, 3)
    rng = np.random.default_rng(1)
    xm = x.numpy().copy()
    xm[rng.random(xm.shape) < 0.3] = np.nan
    xm[0, 1:] = np.nan  # one observed coordinate only
    c, mu, w = ppca.covariance(p).numpy(), p.mu.numpy(), p.W.numpy()
    ll = ppca.log_likelihood(xm, p).numpy()
    mean, cov = ppca.posterior(xm, p)
    filled = ppca.impute(xm, p).numpy()
    for i, row in enumerate(xm):
        o = ~np.isnan(row)
        coo = c[np.ix_(o, o)]
        ref = multivariate_normal(mean=mu[o], cov=coo).logpdf(row[o])
        assert ll[i] == pytest.approx(ref, rel=1e-10)
        # Conditional means of a Gaussian: E[x_m | x_o] and E[z | x_o] (Cov(z, x_o) = W_o^T).
        sol = np.linalg.solve(coo, row[o] - mu[o])
        np.testing.assert_allclose(filled[i, ~o], mu[~o] + c[np.ix_(~o, o)] @ sol, rtol=1e-9)
        np.testing.assert_allclose(filled[i, o], row[o], rtol=0, atol=0)
        np.testing.assert_allclose(mean[i].numpy(), w[o].T @ sol, rtol=1e-9, atol=1e-12)
        k = w[o].T @ np.linalg.inv(coo)
        np.testing.assert_allclose(cov[i].numpy(), np.eye(3) - k @ w[o], rtol=1e-9, atol=1e-12)


def test_sample_has_the_model_covariance_within_monte_carlo_error():
    p = PPCAParams(
        torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, -1.0]], dtype=torch.float64),
        torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64),
        torch.tensor(0.25, dtype=torch.float64),
    )
    n = 20000
    x, z = ppca.sample(p, n, seed=3, return_latent=True)
    assert x.shape == (n, 3) and z.shape == (n, 2)
    c = ppca.covariance(p).numpy()
    emp = np.cov(x.numpy().T, bias=True)
    # Standard error of an entry of a Gaussian sample covariance: sqrt((C_ii C_jj + C_ij^2)/n).
    se = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / n)
    assert np.abs((emp - c) / se).max() < 4.5  # 6 distinct entries: P(max|z| > 4.5) < 1e-4
    mean_se = np.sqrt(np.diag(c) / n)
    assert np.abs((x.numpy().mean(0) - p.mu.numpy()) / mean_se).max() < 4.5
    # Same seed, same draw; the global RNG is untouched.
    state = torch.get_rng_state()
    assert torch.equal(ppca.sample(p, n, seed=3), x)
    assert torch.equal(state, torch.get_rng_state())


# ----------------------------------------------------------------------------- EM


@pytest.mark.parametrize("method", ["covariance", "data"])
def test_em_reaches_the_closed_form_log_likelihood(method):
    # EM's error along a direction shrinks by about 1 - 2 sigma^2 / lambda per step
    # (REFERENCES.md): noise 1.0 next to loadings of 3, 2, 1.5 needs ~100s of iterations,
    # noise 0.3 thousands. The stopping rule 1e-13 leaves ~1e-10 relative (measured).
    x = _data(noise=1.0)
    ref = _eigen_loglik(x.numpy(), 3)
    r = ppca.em(x, 3, method=method, tol=1e-13, max_iter=20000)
    assert r.converged
    # Monotone up to float64 rounding of a sum of ~400*8 terms of size ~10 (|L| ~ 5e3).
    assert float(r.log_likelihood.diff().min()) > -1e-9 * abs(ref)
    assert float(r.log_likelihood[-1]) == pytest.approx(ref, rel=1e-8)
    # The log-likelihood is flat (quadratic) at the optimum: C's error is about the square
    # root of L's relative gap (1e-10 -> ~1e-5).
    assert _rel(ppca.covariance(r.params), ppca.covariance(ppca.closed_form(x, 3))) < 1e-4
    # The recorded log-likelihood is that of the returned parameters.
    assert float(ppca.log_likelihood(x, r.params).sum()) == pytest.approx(
        float(r.log_likelihood[-1]), rel=1e-12
    )


def test_em_routes_agree_and_init_is_used():
    x = _data(seed=4)
    a = ppca.em(x, 2, method="covariance", max_iter=7, seed=1)
    b = ppca.em(x, 2, method="data", max_iter=7, seed=1)
    torch.testing.assert_close(a.log_likelihood, b.log_likelihood, rtol=1e-10, atol=0)
    start = ppca.closed_form(x, 2)
    c = ppca.em(x, 2, init=start, max_iter=3)
    # Started at the optimum, EM stays there.
    assert float(c.log_likelihood[0]) == pytest.approx(_eigen_loglik(x.numpy(), 2), rel=1e-12)


# ---------------------------------------------------------------------------- SVI


def test_marginal_ppca_by_svi_reaches_the_closed_form():
    x = _data(n=300, d=6)
    ref = ppca.closed_form(x, 2)
    model = ppca.MarginalPPCA(6, 2)
    res = fit_svi(model, x, optimizer="lbfgs", num_steps=300, tol=1e-12, progress=False)
    got = model.params()
    ll_ref = float(ppca.log_likelihood(x, ref).sum())
    # The tolerances; L-BFGS on the exact (deterministic) likelihood gets far inside.
    assert float(ppca.log_likelihood(x, got).sum()) == pytest.approx(ll_ref, rel=1e-4)
    assert float(got.sigma2) == pytest.approx(float(ref.sigma2), rel=1e-3)
    assert _rel(ppca.covariance(got), ppca.covariance(ref)) < 1e-2
    # fit_svi's loss is the negative log-likelihood (empty guide).
    assert res.losses[-1] == pytest.approx(-float(ppca.log_likelihood(x, got).sum()), rel=1e-9)


def test_marginal_ppca_loss_with_missing_values_is_the_observed_data_likelihood():
    import pyro
    from pyro.infer import Trace_ELBO

    x = _data(n=50, d=6).clone()
    x[torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.2] = float("nan")
    model = ppca.MarginalPPCA(6, 2, init=ppca.closed_form(_data(n=50, d=6), 2))
    (x,) = model.validate_data(x)
    loss = Trace_ELBO().differentiable_loss(model.model, model.guide, x)
    ll = ppca.log_likelihood(x, model.params()).sum()
    assert float(loss.detach()) == pytest.approx(-float(ll.detach()), rel=1e-12)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    pyro.clear_param_store()


def test_two_marginal_models_keep_their_own_parameters():
    x1, x2 = _data(n=200, d=5, seed=1), _data(n=200, d=5, seed=2) * 3
    a, b = ppca.MarginalPPCA(5, 2), ppca.MarginalPPCA(5, 2)
    fit_svi(a, x1, optimizer="lbfgs", num_steps=100, progress=False)
    fit_svi(b, x2, optimizer="lbfgs", num_steps=100, progress=False)
    for m, x in ((a, x1), (b, x2)):
        ref = ppca.closed_form(x, 2)
        assert _rel(ppca.covariance(m.params()), ppca.covariance(ref)) < 1e-3


def test_marginal_model_draws_new_points_without_data():
    import pyro.poutine as poutine

    model = ppca.MarginalPPCA(4, 1)
    tr = poutine.trace(model.model).get_trace(num_points=7)
    assert tr.nodes["obs"]["value"].shape == (7, 4)
    with pytest.raises(ValueError, match="num_points"):
        model.model()


# ---------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    x = _data(n=50, d=5)
    for bad in (0, 5, 6):
        with pytest.raises(ValueError, match="latent_dim"):
            ppca.closed_form(x, bad)
        with pytest.raises(ValueError, match="latent_dim"):
            ppca.MarginalPPCA(5, bad)
    with pytest.raises(TypeError, match="latent_dim"):
        ppca.em(x, 1.5)
    xn = x.clone()
    xn[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x"):
        ppca.closed_form(xn, 2)
    p = ppca.closed_form(x, 2)
    xe = x.clone()
    xe[3] = float("nan")
    with pytest.raises(ValueError, match="every coordinate missing"):
        ppca.log_likelihood(xe, p)
    with pytest.raises(ValueError, match="every coordinate missing"):
        ppca.MarginalPPCA(5, 2).validate_data(xe)
    with pytest.raises(ValueError, match="5 columns"):
        ppca.log_likelihood(x[:, :4], p)
    with pytest.raises(ValueError, match="params must hold W of shape"):
        ppca.log_likelihood(x, PPCAParams(p.W, p.mu[:4], p.sigma2))
    with pytest.raises(ValueError, match="sigma2 > 0"):
        ppca.covariance(PPCAParams(p.W, p.mu, torch.tensor(0.0, dtype=torch.float64)))
    with pytest.raises(TypeError, match="PPCAParams"):
        ppca.posterior(x, (p.W, p.mu))
    with pytest.raises(ValueError, match=r"init\.W must have shape"):
        ppca.em(x, 3, init=p)
    with pytest.raises(ValueError, match="no variance outside"):
        ppca.closed_form(torch.randn(50, 2, dtype=torch.float64) @ torch.randn(2, 5).double(), 2)
    with pytest.raises(ValueError, match="method"):
        ppca.em(x, 2, method="power")


def test_a_diverging_fit_raises_fit_error_and_keeps_finite_parameters():
    from ppl_models.inference import FitError

    # SGD with a huge step overflows W; the M x M Cholesky factor then fails, which the
    # model turns into a NaN loss, so fit_svi reports the divergence (no LinAlgError).
    x = _data(n=100, d=6) * 1e3
    m = ppca.MarginalPPCA(6, 2)
    with pytest.raises(FitError, match="non-finite"):
        fit_svi(m, x, optimizer="sgd", lr=1e6, num_steps=50, progress=False)
    assert all(bool(torch.isfinite(t).all()) for t in m.params())


def test_marginal_ppca_float32_module_on_float64_data_and_batched_prior_draws():
    import pyro.distributions as dist
    from pyro import poutine
    from pyro.nn import PyroSample

    def obs_log_prob(model, x, **cond):
        trace = poutine.trace(poutine.condition(model, cond)).get_trace(x)
        trace.compute_log_prob()
        return trace.nodes["obs"]["log_prob"]

    x = _data(n=50, d=5, m=2)
    m32, m64 = ppca.MarginalPPCA(5, 2), ppca.MarginalPPCA(5, 2).double()
    lp = obs_log_prob(m32.model, x)
    assert lp.dtype == torch.float64  # the float32 parameters are promoted, exactly
    torch.testing.assert_close(lp, obs_log_prob(m64.model, x), rtol=1e-14, atol=0)
    # A prior on W drawn for 3 vectorised particles (shape (3, 1, D, M)): each particle's
    # density is the unbatched one.
    m64.W = PyroSample(dist.Laplace(0.0, 1.0).expand([5, 2]).to_event(2))
    w = torch.randn(5, 2, dtype=torch.float64)
    single = obs_log_prob(m64.model, x, W=w)
    batched = obs_log_prob(m64.model, x, W=w.expand(3, 1, 5, 2))
    assert batched.shape == (3, 50)
    torch.testing.assert_close(batched, single.expand(3, 50), rtol=1e-12, atol=1e-12)
    x_nan = x.clone()
    x_nan[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"missing values \(NaN\) only with unbatched"):
        obs_log_prob(m64.model, x_nan, W=w.expand(3, 1, 5, 2))


@pytest.mark.parametrize("m", [1, 2])
def test_em_refuses_data_without_variance_outside_m_directions(m):
    # Issue 17: on constant data or 2 rows EM failed in a Cholesky factorisation
    # (_LinAlgError), or returned sigma2 = -2e-16 for 2 rows and M = 1; closed_form
    # explains the same input. Rank-1 data: no variance outside M >= 1 directions.
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="x has no variance"):
        ppca.em(np.ones((20, 4)), m)
    with pytest.raises(ValueError, match=f"no variance outside its leading {m} directions"):
        ppca.em(rng.standard_normal((2, 4)), m)
    rank1 = np.outer(rng.standard_normal(20), rng.standard_normal(4))
    with pytest.raises(ValueError, match=f"no variance outside its leading {m} directions"):
        ppca.em(rank1, m)
    missing = rank1.copy()
    missing[0, 0] = np.nan  # the missing-data EM says the same
    with pytest.raises(ValueError, match=r"fitted exactly|no variance"):
        ppca.em(missing, m)


def test_fits_refuse_one_row_and_identical_rows():
    # Issue 17: fit_svi(MarginalPPCA) on 1 row or constant data advised lowering the
    # learning rate (the likelihood is unbounded there: sigma -> 0).
    for module in (ppca.MarginalPPCA(4, 1), ppca.LatentPPCA(4, 1)):
        with pytest.raises(ValueError, match="x must have at least 2 rows to fit PPCA"):
            fit_svi(module, np.ones((1, 4)), num_steps=1, progress=False)
        with pytest.raises(ValueError, match="x has every row the same"):
            fit_svi(module, np.ones((10, 4)), num_steps=1, progress=False)


def test_closed_form_points_missing_values_to_em():
    x = np.random.default_rng(1).standard_normal((20, 4))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 missing value\(s\).*em .*fit_svi"):
        ppca.closed_form(x, 1)


def test_tiny_noise_is_fitted_and_its_log_likelihood_is_exact():
    # Rank 3 plus noise of sd 1e-6 (variance 1e-12 of signal variance ~10): a real
    # maximum-likelihood fit (the old threshold, 1e-12 of tr S, refused it), and the
    # log-likelihood of it without cancellation. C has condition number ~1e13, beyond
    # float64 routes (scipy refuses it as not positive definite): the reference is the
    # Gaussian density in 40-digit arithmetic (mpmath) at the same parameters.
    import mpmath

    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 6)) * 2
    x += 1e-6 * rng.standard_normal((40, 6))
    p = ppca.closed_form(x, 3)
    assert 0.5e-12 < float(p.sigma2) < 2e-12
    got = ppca.log_likelihood(x, p).numpy()
    with mpmath.workdps(40):
        w, mu, s2 = (mpmath.matrix(v.tolist()) for v in (p.W, p.mu, p.sigma2.reshape(1)))
        c = w * w.T + s2[0] * mpmath.eye(6)
        c_inv, logdet = c**-1, mpmath.log(mpmath.det(c))
        ref = []
        for row in x:
            xc = mpmath.matrix(row.tolist()) - mu
            quad = (xc.T * c_inv * xc)[0]
            ref.append(float(-0.5 * (6 * mpmath.log(2 * mpmath.pi) + logdet + quad)))
    # Measured: the stable form within 1e-9 nats, the fast one (eps |x|^2 / sigma2 lost to
    # cancellation) 0.016 nats off. Bound 1e-5 nats per point.
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
