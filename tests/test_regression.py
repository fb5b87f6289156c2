"""Tests of ppl_models.regression: closed forms against independent computations (tier 1),
inference against the closed forms (tier 2), Monte-Carlo checks (tier 3), bad input."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pytest
import scipy.linalg
import scipy.optimize
import scipy.stats
import torch
from pyro.infer import Predictive
from pyro.infer.autoguide import AutoDelta, AutoMultivariateNormal
from pyro.ops.stats import effective_sample_size
from sklearn.linear_model import LinearRegression as SkLinearRegression

from ppl_models.datasets import make_sin_data
from ppl_models.inference import fit_svi, run_nuts
from ppl_models.regression import (
    EvidenceResult,
    IterateAveraging,
    LinearRegression,
    Posterior,
    RegressionParams,
    gaussian_features,
    log_evidence,
    maximize_evidence,
    mle,
    polynomial_features,
    posterior,
    predictive,
    predictive_posterior,
)

EPS64 = np.finfo(np.float64).eps


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Pyro's per-step work on these small models is a chain of tiny kernels; with two
    # intra-op threads on a busy 2-core machine, OpenMP's busy-waiting made the SVI tests
    # 5-8x slower (measured). One thread is faster here and changes no result.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# Known hyperparameters of the Bayesian tests: PRML's noise level 0.3 (beta = 1/0.09) and a
# prior broad enough that the data dominate but the posterior stays proper.
ALPHA = 2.0
BETA = 1.0 / 0.3**2


def _sin(n: int = 20, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return make_sin_data(n, seed=seed, design="uniform")


# ---------------------------------------------------------------------------
# Tier 1: basis functions
# ---------------------------------------------------------------------------


def test_polynomial_features_match_numpy_vander():
    x = np.random.default_rng(0).uniform(-1, 1, 7)
    phi = polynomial_features(x, 4)
    np.testing.assert_allclose(phi.numpy(), np.vander(x, 5, increasing=True), rtol=1e-15)
    assert phi.dtype == torch.float64


def test_polynomial_degree_zero_is_the_constant_column():
    phi = polynomial_features(torch.tensor([0.5, 2.0]), 0)
    assert phi.shape == (2, 1)
    assert bool((phi == 1).all())


def test_gaussian_features_match_direct_formula():
    x = np.linspace(0, 1, 9)
    centers = np.array([0.2, 0.5, 0.8])
    s = 0.15
    phi = gaussian_features(x, centers, s)
    expected = np.column_stack(
        [np.ones_like(x)] + [np.exp(-((x - c) ** 2) / (2 * s**2)) for c in centers]
    )
    np.testing.assert_allclose(phi.numpy(), expected, rtol=1e-14)


def test_features_keep_float32():
    x = torch.linspace(0, 1, 5, dtype=torch.float32)
    assert polynomial_features(x, 2).dtype == torch.float32
    assert gaussian_features(x, torch.tensor([0.5]), 0.2).dtype == torch.float32


# ---------------------------------------------------------------------------
# Tier 1: maximum likelihood
# ---------------------------------------------------------------------------


def test_mle_matches_numpy_lstsq_and_sklearn_well_conditioned():
    x, t = _sin(30)
    phi = polynomial_features(x, 3)
    p = mle(phi, t)
    w_np = np.linalg.lstsq(phi.numpy(), t.numpy(), rcond=None)[0]
    w_sk = SkLinearRegression(fit_intercept=False).fit(phi.numpy(), t.numpy()).coef_
    # cond(phi) ~ 1e2 here, so both solutions agree to ~cond * eps ~ 1e-14.
    np.testing.assert_allclose(p.w.numpy(), w_np, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(p.w.numpy(), w_sk, rtol=1e-11, atol=1e-12)
    assert p.w.dtype == torch.float64 and p.beta.shape == ()


def test_mle_degree_nine_ill_conditioned_matches_numpy_to_conditioning():
    x, t = _sin(30)
    phi = polynomial_features(x, 9)
    p = mle(phi, t)
    phi_np = phi.numpy()
    w_np = np.linalg.lstsq(phi_np, t.numpy(), rcond=None)[0]
    cond = np.linalg.cond(phi_np)
    assert cond > 1e6  # the case that the normal equations (cond^2 > 1e12) would ruin
    # Two backward-stable solvers can differ in w by up to ~cond * eps relative (a
    # perturbation theory bound); 100 * cond * eps (~2.5e-7 here) leaves room for the
    # constant without hiding a normal-equations solve, which errs by ~cond^2 * eps ~ 30.
    rel = np.abs(p.w.numpy() - w_np).max() / np.abs(w_np).max()
    assert rel < 100 * cond * EPS64
    # 1/beta is the mean squared residual (PRML 1.63), divisor N. As the minimum of the
    # objective it is first-order insensitive to errors in w: tight whatever cond(phi) is.
    resid = t.numpy() - phi_np @ w_np
    np.testing.assert_allclose(1.0 / p.beta.item(), np.mean(resid**2), rtol=1e-9)


def test_mle_inverse_beta_is_mean_squared_residual():
    x, t = _sin(25, seed=3)
    phi = gaussian_features(x, torch.linspace(0, 1, 5, dtype=torch.float64), 0.2)
    p = mle(phi, t)
    w_np = np.linalg.lstsq(phi.numpy(), t.numpy(), rcond=None)[0]
    resid = t.numpy() - phi.numpy() @ w_np
    np.testing.assert_allclose(1.0 / p.beta.item(), (resid**2).sum() / len(resid), rtol=1e-12)


def test_mle_more_features_than_points_gives_minimum_norm_interpolant():
    x, t = _sin(5, seed=2)
    phi = polynomial_features(x, 6)  # M = 7 > N = 5
    with pytest.warns(RuntimeWarning, match=r"interpolates the data \(phi has rank 5 >= N = 5"):
        p = mle(phi, t)
    w_pinv = np.linalg.pinv(phi.numpy()) @ t.numpy()
    np.testing.assert_allclose(p.w.numpy(), w_pinv, rtol=1e-6, atol=1e-8)
    # The model interpolates: the residual is zero, so beta is infinite, exactly (issue 17:
    # it was the reciprocal of a rounding error's square, about 1e31, without a word).
    assert p.beta.item() == float("inf")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mle_exact_fit_with_more_rows_is_infinite_beta_with_a_warning(dtype):
    x = torch.linspace(-1, 1, 50, dtype=dtype)
    phi = polynomial_features(x, 3)
    t = phi @ torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=dtype)  # exactly a cubic
    with pytest.warns(RuntimeWarning, match="t lies in the span of phi's columns"):
        p = mle(phi, t)
    assert p.beta.item() == float("inf")
    # Noise far below the signal but well above the rounding level is still estimated:
    # 1/beta is the mean squared residual of scipy's least squares (float64 reference).
    noise = 1e-3 * torch.cos(37 * x)
    p = mle(phi, t + noise)
    ref = scipy.linalg.lstsq(phi.double().numpy(), (t + noise).double().numpy())[0]
    resid = (t + noise).double().numpy() - phi.double().numpy() @ ref
    # float32: the residual (1e-3) carries the rounding of t (1e-7 relative of |t| ~ 3),
    # so 1/beta agrees to about 2 * 3e-7 / 1e-3 = 6e-4; float64 to far better.
    rtol = 2e-3 if dtype == torch.float32 else 1e-9
    np.testing.assert_allclose(1.0 / p.beta.item(), np.mean(resid**2), rtol=rtol)


def _lstsq_data(n: int, dtype: np.dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's test_linear_regression_vs_lstsq-style design: two correlated
    columns (condition number about 17) and noisy targets."""
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 2)
    x[:, 1] = x[:, 0] + 0.12 * rng.randn(n)
    y = x @ np.array([0.4, 2.4]) + 20.0 * rng.randn(n)
    return x.astype(dtype), y.astype(dtype)


def _check_against_lstsq(n: int, dtype: np.dtype) -> None:
    x, y = _lstsq_data(n, dtype)
    p = mle(x, y)
    assert p.w.dtype == torch.from_numpy(x).dtype
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    w64, _, rank, sv = scipy.linalg.lstsq(x64, y64)
    assert rank == 2
    w_same = scipy.linalg.lstsq(x, y)[0]  # scipy in the data's own dtype
    kappa = sv[0] / sv[-1]
    r = y64 - x64 @ w64
    eps = np.finfo(dtype).eps
    # The least-squares forward error bound (Higham, Accuracy and Stability, thm 20.1):
    # |dw| <= eps (kappa + kappa^2 |r| / (s_max |w|)) |w|, for the exact float64 solution
    # of the rounded data. Both solvers sit well inside it (measured: at most 0.07 of it).
    bound = eps * (kappa + kappa**2 * np.linalg.norm(r) / (sv[0] * np.linalg.norm(w64)))
    bound *= np.linalg.norm(w64)
    assert np.linalg.norm(p.w.double().numpy() - w64) <= bound
    assert np.linalg.norm(w_same - w64) <= bound
    rmse = np.sqrt(np.mean((y64 - x64 @ p.w.double().numpy()) ** 2))
    # Same objective as lstsq's optimum, to the bound's first order (the RMSE is
    # stationary at the optimum): 1e-6 relative covers float32's rounding of it.
    np.testing.assert_allclose(rmse, np.sqrt(np.mean(r**2)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [100, 10_000, 500_000, 1_000_000])
def test_mle_cutoff_keeps_a_well_conditioned_direction_like_lstsq(n, dtype):
    # Issue 17: in float32 at N = 500,000 the cutoff eps * max(N, M) was 0.06, above the
    # singular-value ratio 1/17: mle dropped a direction (w = [1.16, 0.44], RMSE 59 where
    # lstsq gives [0.42, 2.43], RMSE 24). (numpy's matrix_rank, with the same cutoff,
    # still calls the float32 design of 10^6 rows rank 1.) About 0.3 s at 10^6 rows.
    _check_against_lstsq(n, dtype)


def test_mle_rank_deficient_design_is_scipys_minimum_norm_solution():
    x, t = _sin(40, seed=4)
    base = polynomial_features(x, 2)
    phi = torch.cat([base, base[:, 1:2] * 2.0], dim=1)  # a column twice another: rank 3
    p = mle(phi, t)
    ref, _, rank, _ = scipy.linalg.lstsq(phi.numpy(), t.numpy())
    assert rank == 3
    # Minimum-norm solutions of the same rank-3 problem: both backward stable, on a
    # design of condition number ~10 in its range, so they agree to ~1e-13.
    np.testing.assert_allclose(p.w.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_mle_keeps_float32():
    x, t = _sin(20)
    p = mle(polynomial_features(x.float(), 2), t.float())
    assert p.w.dtype == torch.float32 and p.beta.dtype == torch.float32


def test_predictive_matches_formula():
    x, t = _sin(20)
    phi = polynomial_features(x, 3)
    p = mle(phi, t)
    x_new = np.array([0.1, 0.45, 0.9])
    d = predictive(polynomial_features(x_new, 3), p)
    expected_mean = np.vander(x_new, 4, increasing=True) @ p.w.numpy()
    np.testing.assert_allclose(d.mean.numpy(), expected_mean, rtol=1e-13)
    np.testing.assert_allclose(d.stddev.numpy(), np.full(3, p.beta.item() ** -0.5), rtol=1e-14)


# ---------------------------------------------------------------------------
# Tier 1: Bayesian linear regression
# ---------------------------------------------------------------------------


def _numpy_posterior(phi: np.ndarray, t: np.ndarray, alpha: float, beta: float):
    A = alpha * np.eye(phi.shape[1]) + beta * phi.T @ phi
    S = np.linalg.inv(A)
    return beta * S @ phi.T @ t, S


@pytest.mark.parametrize(("degree", "n"), [(3, 20), (5, 4)])
def test_posterior_matches_direct_formula_and_gaussian_conditioning(degree, n):
    x, t = _sin(n)
    phi = polynomial_features(x, degree)
    post = posterior(phi, t, ALPHA, BETA)
    phi_np, t_np = phi.numpy(), t.numpy()
    m_direct, S_direct = _numpy_posterior(phi_np, t_np, ALPHA, BETA)
    # PRML 3.53-3.54 with an explicit inverse; cond(A) < 1e4 here, so ~1e-12 agreement.
    np.testing.assert_allclose(post.mean.numpy(), m_direct, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post.covariance.numpy(), S_direct, rtol=1e-10, atol=1e-12)
    # An independent route: condition the joint Gaussian of (w, t) on t (PRML 2.81-2.82),
    # cov(w, t) = Phi^T / alpha, cov(t) = I / beta + Phi Phi^T / alpha (Woodbury's form).
    C_tt = np.eye(n) / BETA + phi_np @ phi_np.T / ALPHA
    C_wt = phi_np.T / ALPHA
    m_cond = C_wt @ np.linalg.solve(C_tt, t_np)
    S_cond = np.eye(degree + 1) / ALPHA - C_wt @ np.linalg.solve(C_tt, C_wt.T)
    np.testing.assert_allclose(post.mean.numpy(), m_cond, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(post.covariance.numpy(), S_cond, rtol=1e-9, atol=1e-11)


def test_posterior_mean_minimises_regularised_least_squares():
    x, t = _sin(15)
    phi = polynomial_features(x, 3).numpy()
    post = posterior(phi, t.numpy(), ALPHA, BETA)

    def energy(w):  # PRML 3.79: beta/2 ||t - Phi w||^2 + alpha/2 ||w||^2
        r = t.numpy() - phi @ w
        return 0.5 * BETA * r @ r + 0.5 * ALPHA * w @ w

    res = scipy.optimize.minimize(energy, np.zeros(4), method="BFGS", options={"gtol": 1e-10})
    # BFGS stops at gradient 1e-10; with Hessian eigenvalues >= alpha = 2, w is within 1e-9.
    np.testing.assert_allclose(post.mean.numpy(), res.x, atol=1e-7)


def test_predictive_posterior_matches_formula():
    x, t = _sin(20)
    phi = polynomial_features(x, 3)
    post = posterior(phi, t, ALPHA, BETA)
    phi_new = polynomial_features(np.array([0.0, 0.3, 1.2]), 3).numpy()
    d = predictive_posterior(phi_new, post, BETA)
    m, S = _numpy_posterior(phi.numpy(), t.numpy(), ALPHA, BETA)
    var = 1 / BETA + np.einsum("ki,ij,kj->k", phi_new, S, phi_new)
    np.testing.assert_allclose(d.mean.numpy(), phi_new @ m, rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), var, rtol=1e-10)


@pytest.mark.parametrize(
    ("alpha", "beta", "degree", "n"), [(2.0, 11.1, 3, 20), (5e-3, 11.1, 9, 10), (0.3, 2.0, 6, 4)]
)
def test_log_evidence_matches_marginal_likelihood(alpha, beta, degree, n):
    x, t = make_sin_data(n, seed=0)
    phi = polynomial_features(x, degree).numpy()
    value = log_evidence(phi, t.numpy(), alpha, beta)
    cov = np.eye(n) / beta + phi @ phi.T / alpha
    expected = scipy.stats.multivariate_normal.logpdf(t.numpy(), np.zeros(n), cov)
    # Two routes to the same number, both O(eps * cond) accurate: 1e-9 relative.
    np.testing.assert_allclose(value.item(), expected, rtol=1e-9)


def _scipy_log_evidence(phi: np.ndarray, t: np.ndarray, log_a: float, log_b: float) -> float:
    cov = np.eye(len(t)) * math.exp(-log_b) + phi @ phi.T * math.exp(-log_a)
    return scipy.stats.multivariate_normal.logpdf(t, np.zeros(len(t)), cov)


def test_maximize_evidence_is_stationary_and_matches_scipy():
    x, t = _sin(30, seed=4)
    phi = polynomial_features(x, 5)
    r = maximize_evidence(phi, t, tol=1e-12)
    assert isinstance(r, EvidenceResult) and r.converged
    la, lb = math.log(r.alpha.item()), math.log(r.beta.item())
    phi_np, t_np = phi.numpy(), t.numpy()

    # Central differences on the independent (scipy) evidence: truncation ~h^2 ~ 1e-8,
    # round-off ~eps * |f| / h ~ 1e-9; the gradient is zero to that accuracy.
    h = 1e-4
    for d in [(h, 0.0), (0.0, h)]:
        g = (
            _scipy_log_evidence(phi_np, t_np, la + d[0], lb + d[1])
            - _scipy_log_evidence(phi_np, t_np, la - d[0], lb - d[1])
        ) / (2 * h)
        assert abs(g) < 1e-6

    res = scipy.optimize.minimize(
        lambda v: -_scipy_log_evidence(phi_np, t_np, v[0], v[1]),
        x0=np.zeros(2),
        method="Powell",
        options={"xtol": 1e-10, "ftol": 1e-14},
    )
    assert res.success
    # Derivative-free Powell (BFGS with finite differences lost precision 1e-4 away): the
    # evidence is flat in log alpha (a change of 1e-6 moves it by ~1e-12 nats), so the
    # optimiser's ftol leaves x uncertain at ~1e-6; 1e-5 allows for that.
    np.testing.assert_allclose([la, lb], res.x, atol=1e-5)
    # The maximum is flat: a 1e-5 error in x changes the value by ~1e-10.
    np.testing.assert_allclose(r.log_evidence.item(), -res.fun, rtol=1e-10)

    # gamma = sum lambda_i / (alpha + lambda_i), lambda = eig(beta Phi^T Phi) (PRML 3.91),
    # and at the fixed point alpha m^T m = gamma, beta ||t - Phi m||^2 = N - gamma.
    lam = np.linalg.eigvalsh(r.beta.item() * phi_np.T @ phi_np)
    gamma = np.sum(lam / (r.alpha.item() + lam))
    np.testing.assert_allclose(r.gamma.item(), gamma, rtol=1e-9)
    m, _ = _numpy_posterior(phi_np, t_np, r.alpha.item(), r.beta.item())
    np.testing.assert_allclose(r.alpha.item() * m @ m, gamma, rtol=1e-8)
    resid = t_np - phi_np @ m
    np.testing.assert_allclose(r.beta.item() * resid @ resid, len(t_np) - gamma, rtol=1e-8)


def test_maximize_evidence_warns_when_out_of_iterations():
    x, t = _sin(20)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        r = maximize_evidence(polynomial_features(x, 3), t, max_iter=1)
    assert not r.converged and r.num_iter == 1


# ---------------------------------------------------------------------------
# Tier 2: inference against the closed forms
# ---------------------------------------------------------------------------


def test_svi_empty_guide_lbfgs_reaches_mle():
    x, t = _sin(20)
    phi = polynomial_features(x, 3)
    reg = LinearRegression(4)
    fit = fit_svi(reg, phi, t, optimizer="lbfgs", num_steps=100, progress=False)
    assert fit.converged
    p, ref = reg.params(), mle(phi, t)
    assert isinstance(p, RegressionParams)
    # The log-likelihood is smooth and its Hessian well conditioned (cond(phi) ~ 1e2), so
    # L-BFGS at float64 stops ~1e-8 from the optimum (fit_svi's tol 1e-10 on the loss);
    # 1e-4 relative is the brief's bound and leaves four orders of magnitude of margin.
    assert float((p.w - ref.w).abs().max() / ref.w.abs().max()) < 1e-4
    assert abs(float(1 / p.beta) - float(1 / ref.beta)) / float(1 / ref.beta) < 1e-4


def test_two_fitted_instances_keep_separate_parameters():
    x, t = _sin(20)
    phi = polynomial_features(x, 1)
    a, b = LinearRegression(2), LinearRegression(2)
    fit_svi(a, phi, t, optimizer="lbfgs", num_steps=50, progress=False)
    fit_svi(b, phi, -3.0 * t + 1.0, optimizer="lbfgs", num_steps=50, progress=False)
    torch.testing.assert_close(a.params().w, mle(phi, t).w, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(b.params().w, mle(phi, -3.0 * t + 1.0).w, rtol=1e-6, atol=1e-8)


def _posterior_errors(guide, post: Posterior) -> tuple[float, float]:
    """Max |mean error| in posterior sds, and max |covariance error| / (sd_i sd_j)."""
    with torch.no_grad():
        q = guide.get_posterior()
        sd = post.covariance.diagonal().sqrt()
        err_mean = ((q.mean - post.mean) / sd).abs().max()
        err_cov = ((q.covariance_matrix - post.covariance) / torch.outer(sd, sd)).abs().max()
    return float(err_mean), float(err_cov)


def test_svi_full_rank_guide_reaches_conjugate_posterior():
    x, t = _sin(20)
    phi = polynomial_features(x, 3)
    post = posterior(phi, t, ALPHA, BETA)
    reg = LinearRegression(4, alpha=ALPHA, beta=BETA)
    guide = AutoMultivariateNormal(reg.model)
    # The family contains the exact posterior, so the ELBO's optimum is exact; what stands
    # between SVI and it is gradient noise. Adam is scale-free: at a constant lr its last
    # iterate jitters by ~lr whatever the number of particles (measured: 2-7% of a posterior
    # sd for the mean at lr 0.01). Hence a fast phase, then Adam with Polyak averaging of the
    # iterates. The averaged mean's error is then the Monte-Carlo error of the gradients,
    # ~1/sqrt(steps * particles) posterior sds (the ELBO is quadratic in the guide's mean):
    # with 16 particles it was 1-2.4% over three seeds, with 128 it is 0.4-0.8%.
    fit_svi(
        reg,
        phi,
        t,
        guide=guide,
        num_particles=128,
        lr=0.05,
        num_steps=300,
        tol=0,
        progress=False,
        seed=0,
    )
    avg = IterateAveraging(lr=0.01, start=300)
    fit_svi(
        reg,
        phi,
        t,
        guide=guide,
        num_particles=128,
        optimizer=avg,
        num_steps=1000,
        tol=0,
        progress=False,
        seed=1,
    )
    avg.apply()
    err_mean, err_cov = _posterior_errors(guide, post)
    # Tolerances from the brief: mean within 2% of the posterior sd (max over coordinates),
    # covariance within 5% (max over entries of |error| / (sd_i sd_j)). Measured (seeds 0-2)
    # 0.4-0.8% and 0.5-0.8%.
    assert err_mean < 0.02, err_mean
    assert err_cov < 0.05, err_cov


def test_svi_map_with_minibatches_reaches_posterior_mean():
    # MAP of a Gaussian posterior is its mean. With minibatches the likelihood must be
    # scaled by N / B (data_plate); without the scaling the prior would weigh twice as
    # much and the estimate would move by 17% of a posterior sd (computed in closed form).
    x, t = _sin(40, seed=5)
    phi = polynomial_features(2 * x - 1, 2)
    post = posterior(phi, t, ALPHA, BETA)
    reg = LinearRegression(3, alpha=ALPHA, beta=BETA)
    guide = AutoDelta(reg.model)
    fit_svi(
        reg,
        phi,
        t,
        guide=guide,
        batch_size=20,
        lr=0.05,
        num_steps=300,
        tol=0,
        progress=False,
        seed=0,
    )
    avg = IterateAveraging(lr=0.005, start=200)
    fit_svi(
        reg,
        phi,
        t,
        guide=guide,
        batch_size=20,
        optimizer=avg,
        num_steps=800,
        tol=0,
        progress=False,
        seed=1,
    )
    avg.apply()
    w = guide.median(phi, t)["w"].detach()
    sd = post.covariance.diagonal().sqrt()
    err = float(((w - post.mean) / sd).abs().max())
    # Minibatch noise left after averaging 600 iterates: measured well under 2% of an sd.
    assert err < 0.02, err


@pytest.mark.slow
def test_nuts_posterior_means_within_monte_carlo_error():
    x, t = _sin(20)
    # Centred inputs keep the posterior correlations moderate, so NUTS with a diagonal
    # mass matrix mixes in a few hundred draws.
    phi = polynomial_features(2 * x - 1, 3)
    post = posterior(phi, t, ALPHA, BETA)
    reg = LinearRegression(4, alpha=ALPHA, beta=BETA)
    mcmc = run_nuts(reg, phi, t, num_samples=300, warmup_steps=200, num_chains=2, seed=0)
    w = mcmc.get_samples(group_by_chain=True)["w"]
    ess = effective_sample_size(w, chain_dim=0, sample_dim=1)
    mean = w.mean((0, 1))
    sd = post.covariance.diagonal().sqrt()
    mcse = sd / ess.sqrt()
    # 4 Monte-Carlo standard errors: a false alarm has probability < 1e-4 per coordinate.
    z = (mean - post.mean) / mcse
    assert bool((z.abs() < 4).all()), z


# ---------------------------------------------------------------------------
# Tier 3: Monte-Carlo checks
# ---------------------------------------------------------------------------


def test_model_draws_match_ml_predictive():
    x, t = _sin(20)
    phi = polynomial_features(x, 3)
    reg = LinearRegression(4)
    fit_svi(reg, phi, t, optimizer="lbfgs", num_steps=50, progress=False)
    d = predictive(phi, reg.params())
    s = 4000
    draws = Predictive(reg.model, num_samples=s, return_sites=["obs"], parallel=True)(phi)["obs"]
    assert draws.shape == (s, 20)
    sd = d.stddev
    # Sample mean within 4.5 standard errors (sd / sqrt(S)) at each of 20 points (a false
    # alarm has probability ~1e-4 over all of them); sample variance within 4.5 of its
    # standard error, var * sqrt(2 / (S - 1)).
    assert bool(((draws.mean(0) - d.mean).abs() < 4.5 * sd / math.sqrt(s)).all())
    se_var = d.variance * math.sqrt(2 / (s - 1))
    assert bool(((draws.var(0) - d.variance).abs() < 4.5 * se_var).all())


def test_bayesian_prior_predictive_matches_evidence_covariance():
    # Under the prior, t ~ N(0, I / beta + Phi Phi^T / alpha): the Gaussian whose density
    # is the evidence (PRML 3.86). Check the marginal variances by simulation.
    x, _ = _sin(10)
    phi = polynomial_features(x, 2)
    reg = LinearRegression(3, alpha=ALPHA, beta=BETA).double()
    s = 4000
    draws = Predictive(reg.model, num_samples=s, return_sites=["obs"], parallel=True)(phi)["obs"]
    var = 1 / BETA + (phi * phi).sum(1) / ALPHA
    se_var = var * math.sqrt(2 / (s - 1))
    assert bool(((draws.var(0) - var).abs() < 4.5 * se_var).all())
    assert bool((draws.mean(0).abs() < 4.5 * var.sqrt() / math.sqrt(s)).all())


def test_make_sin_data_noise_and_design():
    x, t = make_sin_data(10)
    np.testing.assert_allclose(x.numpy(), np.linspace(0, 1, 10))
    n = 5000
    x, t = make_sin_data(n, noise_std=0.3, seed=7, design="uniform")
    assert bool((x >= 0).all() and (x <= 1).all()) and bool((x[1:] >= x[:-1]).all())
    noise = (t - torch.sin(2 * math.pi * x)).numpy()
    # Mean within 4.5 SE of 0 (SE 0.3/sqrt(n)); std within 4.5 SE (~0.3/sqrt(2n)) of 0.3.
    assert abs(noise.mean()) < 4.5 * 0.3 / math.sqrt(n)
    assert abs(noise.std() - 0.3) < 4.5 * 0.3 / math.sqrt(2 * n)
    a, b = make_sin_data(8, seed=3, design="uniform"), make_sin_data(8, seed=3, design="uniform")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def _phi_t(n: int = 6, degree: int = 1):
    x, t = _sin(n)
    return polynomial_features(x, degree), t


@pytest.mark.parametrize(
    "fn",
    [
        mle,
        lambda p, t: posterior(p, t, 1.0, 1.0),
        lambda p, t: log_evidence(p, t, 1.0, 1.0),
        maximize_evidence,
    ],
)
def test_closed_forms_reject_bad_data(fn):
    phi, t = _phi_t()
    bad = phi.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="phi must be finite"):
        fn(bad, t)
    t_inf = t.clone()
    t_inf[2] = float("inf")
    with pytest.raises(ValueError, match="t must be finite"):
        fn(phi, t_inf)
    with pytest.raises(ValueError, match="phi must be 2-D"):
        fn(phi[:, 0], t)
    with pytest.raises(ValueError, match="t must be 1-D"):
        fn(phi, t[:, None])
    with pytest.raises(ValueError, match="phi and t must have the same number of rows"):
        fn(phi, t[:-1])
    with pytest.raises(ValueError, match="at least 2 observations"):
        fn(phi[:1], t[:1])
    with pytest.raises(TypeError, match="phi must be a torch tensor or a numpy array"):
        fn("phi", t)


@pytest.mark.parametrize("name", ["alpha", "beta"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_hyperparameters_rejected(name, value):
    phi, t = _phi_t()
    kw = {"alpha": 1.0, "beta": 1.0, name: value}
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        posterior(phi, t, **kw)
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        log_evidence(phi, t, **kw)
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        maximize_evidence(phi, t, **kw)
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        LinearRegression(2, **{name: value})
    with pytest.raises(ValueError, match="beta must be positive"):
        predictive_posterior(phi, posterior(phi, t, 1.0, 1.0), beta=0.0)


def test_basis_function_arguments_rejected():
    with pytest.raises(ValueError, match="degree must be an integer >= 0"):
        polynomial_features([0.1, 0.2], -1)
    with pytest.raises(TypeError, match="degree must be an integer"):
        polynomial_features([0.1, 0.2], 2.5)
    with pytest.raises(ValueError, match="x must be 1-D"):
        polynomial_features(np.zeros((3, 2)), 2)
    with pytest.raises(ValueError, match="x must be finite"):
        polynomial_features([0.1, float("nan")], 2)
    for width in [0.0, -0.5]:
        with pytest.raises(ValueError, match="width must be positive"):
            gaussian_features([0.1, 0.2], [0.5], width)
    with pytest.raises(ValueError, match="centers must be 1-D"):
        gaussian_features([0.1, 0.2], [[0.5]], 0.1)


def test_predictive_arguments_rejected():
    phi, t = _phi_t()
    p = mle(phi, t)
    with pytest.raises(ValueError, match="phi_new must have 2 columns"):
        predictive(torch.zeros(3, 3, dtype=torch.float64), p)
    with pytest.raises(ValueError, match=r"params\.beta must be positive"):
        predictive(phi, RegressionParams(p.w, torch.tensor(float("inf"))))
    post = posterior(phi, t, 1.0, 1.0)
    with pytest.raises(ValueError, match="phi_new must have 2 columns"):
        predictive_posterior(torch.zeros(3, 3), post, 1.0)
    with pytest.raises(ValueError, match=r"post\.covariance must have shape"):
        predictive_posterior(phi, Posterior(post.mean, torch.eye(3)), 1.0)


def test_maximize_evidence_arguments_rejected():
    phi, t = _phi_t()
    with pytest.raises(ValueError, match="tol must be positive"):
        maximize_evidence(phi, t, tol=0.0)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        maximize_evidence(phi, t, max_iter=0)
    with pytest.raises(ValueError, match="t is constant"):
        maximize_evidence(phi, torch.ones(len(t), dtype=torch.float64))
    with pytest.raises(ValueError, match="left the positive reals"):
        maximize_evidence(phi, torch.zeros(len(t), dtype=torch.float64), beta=1.0)


def test_linear_regression_module_arguments_rejected():
    with pytest.raises(ValueError, match="num_features must be an integer >= 1"):
        LinearRegression(0)
    with pytest.raises(ValueError, match="not both"):
        LinearRegression(2, beta=1.0, beta_prior=(1.0, 1.0))
    with pytest.raises(ValueError, match="beta_prior must be a pair"):
        LinearRegression(2, beta_prior=(1.0,))
    with pytest.raises(ValueError, match=r"beta_prior\[1\] \(rate\) must be positive"):
        LinearRegression(2, beta_prior=(1.0, -1.0))
    reg = LinearRegression(2)
    phi, t = _phi_t()
    with pytest.raises(ValueError, match="phi must have 2 columns"):
        reg.validate_data(torch.zeros(6, 3), t)
    with pytest.raises(ValueError, match=r"t \(the targets\) is required"):
        reg.validate_data(phi)
    with pytest.raises(ValueError, match="t must be finite"):
        fit_svi(reg, phi, t * float("nan"), optimizer="lbfgs", num_steps=2, progress=False)
    with pytest.raises(ValueError, match="w carries a prior"):
        LinearRegression(2, alpha=1.0, beta=1.0).params()
    with pytest.raises(ValueError, match="beta carries a prior"):
        LinearRegression(2, beta_prior=(2.0, 1.0)).params()


def test_make_sin_data_arguments_rejected():
    with pytest.raises(ValueError, match="num_points must be an integer >= 1"):
        make_sin_data(0)
    with pytest.raises(ValueError, match="noise_std must be finite and >= 0"):
        make_sin_data(5, noise_std=-0.1)
    with pytest.raises(ValueError, match="design must be one of"):
        make_sin_data(5, design="random")


def test_iterate_averaging_needs_a_fit():
    with pytest.raises(RuntimeError, match="needs a fit"):
        IterateAveraging().apply()
    with pytest.raises(ValueError, match="lr must be positive"):
        IterateAveraging(lr=0.0)


def test_beta_prior_model_samples_beta():
    reg = LinearRegression(2, alpha=1.0, beta_prior=(2.0, 0.5))
    phi, t = _phi_t()
    tr = pyro.poutine.trace(reg.model).get_trace(phi, t)
    assert {"w", "beta", "obs"} <= set(tr.nodes)
    assert tr.nodes["beta"]["fn"].concentration.item() == 2.0


@pytest.mark.slow  # a few seconds of SVI; the tour CLI runs it too
def test_tour_section_quick(tmp_path):
    from ppl_models.tour.regression import section

    s = section(tmp_path, quick=True)
    assert s.topic == "regression" and s.figures
    for name in s.figures:
        assert (tmp_path / name).is_file() and name in s.markdown
    assert len(s.agreement) == 5
    for row in s.agreement:
        assert row.error <= row.tolerance, row


def test_polynomial_features_overflow_and_gaussian_width_are_refused():
    # Issue 17: in float32 x ** 30 is inf for |x| > 19 (3.4e38 ** (1/30)); it was returned.
    x = torch.tensor([1.0, 20.0])
    with pytest.raises(ValueError, match=r"x \*\* degree overflows torch.float32.*float64"):
        polynomial_features(x, 30)
    phi = polynomial_features(x.double(), 30)  # float64 holds 20 ** 30 = 1.07e39
    assert phi[1, 30] == 20.0**30
    # A width whose square underflows gave 0 / 0 = NaN at the centres.
    with pytest.raises(ValueError, match=r"width = .* under- or overflows"):
        gaussian_features(torch.tensor([0.0, 1.0]), torch.tensor([0.0]), 1e-200)


def test_predictive_takes_only_its_containers_and_representable_precisions():
    phi = torch.eye(2, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"params must be a RegressionParams\(w, beta\)"):
        predictive(phi, (torch.zeros(2),))
    with pytest.raises(TypeError, match=r"post must be a Posterior\(mean, covariance\)"):
        predictive_posterior(phi, [torch.zeros(2)], 1.0)
    post = Posterior(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    # 1 / 5e-324 overflows: the noise variance would be inf (it was returned).
    with pytest.raises(ValueError, match=r"beta = 4.94066e-324 is out of the range"):
        predictive_posterior(phi, post, 5e-324)
    x, t = _sin(10)
    with pytest.raises(ValueError, match=r"beta = 1.7e\+308 overflow"):
        posterior(polynomial_features(x, 2), t, 1.0, 1.7e308)
