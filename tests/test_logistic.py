"""Tests of ppl_models.logistic: IRLS, Laplace, the probit predictive and the Pyro model."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyro
import pytest
import scipy.optimize
import scipy.special
import torch
import torch.nn.functional as F
from pyro.infer.autoguide import AutoDelta
from pyro.nn import PyroParam
from pyro.ops.stats import effective_sample_size
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from ppl_models.datasets import make_two_class
from ppl_models.inference import fit_svi, run_nuts
from ppl_models.logistic import (
    LogisticRegression,
    SeparableDataWarning,
    add_bias,
    irls,
    is_separable,
    laplace,
    log_likelihood,
    predictive_probit,
)


def _data(n=300, d=4, seed=0, separable=False):
    """Gaussian features with a bias column; targets drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    phi = rng.standard_normal((n, d))
    phi[:, 0] = 1.0
    w = rng.standard_normal(d)
    a = phi @ w
    if separable:
        t = (a > 0).astype(float)
    else:
        t = (rng.random(n) < scipy.special.expit(a)).astype(float)
    return torch.from_numpy(phi), torch.from_numpy(t)


def _neg_log_post_np(w, phi, t, alpha):
    """Independent numpy objective: BCE summed, plus the Gaussian prior's penalty."""
    a = phi @ w
    return float(np.sum(np.logaddexp(0.0, a) - t * a) + 0.5 * alpha * w @ w)


# ---------------------------------------------------------------- tier 1: closed forms


def test_irls_matches_sklearn_newton_cholesky():
    phi, t = _data()
    w = irls(phi, t).w
    assert w.dtype == torch.float64
    # C=inf is sklearn's unpenalised fit (penalty=None is deprecated from 1.8).
    sk = SkLogisticRegression(
        C=np.inf, solver="newton-cholesky", fit_intercept=False, tol=1e-14, max_iter=1000
    ).fit(phi.numpy(), t.numpy())
    # Both are Newton's method on the same concave objective, run to its float64 floor.
    rel = np.abs(w.numpy() - sk.coef_[0]).max() / np.abs(sk.coef_[0]).max()
    assert rel < 1e-8


def test_irls_gradient_vanishes():
    phi, t = _data(seed=1)
    w = irls(phi, t, tol=1e-10).w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_likelihood(phi, t, w), w)
    g0 = torch.linalg.vector_norm(phi.T @ (t - 0.5))
    # The documented criterion: gradient norm relative to its norm at w = 0.
    assert float(torch.linalg.vector_norm(grad) / g0) <= 1e-10


def test_irls_accepts_numpy_and_float32():
    phi, t = _data(seed=2)
    w64 = irls(phi.numpy(), t.numpy()).w
    w32 = irls(phi.float(), t.float(), tol=1e-5).w
    assert w32.dtype == torch.float32
    # float32 rounding (eps 1.2e-7) times the Hessian's condition number (about 10 here).
    assert torch.allclose(w32.double(), w64, rtol=1e-4, atol=1e-4)


def test_log_likelihood_equals_minus_binary_cross_entropy():
    phi, t = _data(n=50, seed=3)
    w = torch.randn(4, dtype=torch.float64)
    ll = log_likelihood(phi, t, w)
    bce = F.binary_cross_entropy_with_logits(phi @ w, t, reduction="mean")
    y = scipy.special.expit(phi.numpy() @ w.numpy())
    bce_np = -np.mean(t.numpy() * np.log(y) + (1 - t.numpy()) * np.log1p(-y))
    assert float(ll) == pytest.approx(-50 * float(bce), rel=1e-13)
    assert float(ll) == pytest.approx(-50 * bce_np, rel=1e-12)


def test_log_likelihood_is_stable_for_large_logits():
    phi = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0], dtype=torch.float64)
    ll = log_likelihood(phi, t, torch.tensor([800.0], dtype=torch.float64))
    # log sigma(800) = -exp(-800) (0 in float64); log(1 - sigma(800)) = -800.
    assert float(ll) == pytest.approx(-800.0, rel=1e-15)


def test_model_log_likelihood_equals_minus_n_bce():
    phi, t = _data(n=40, seed=4)
    model = LogisticRegression(4).double()
    w = torch.randn(4, dtype=torch.float64)
    model.w = PyroParam(w)
    trace = pyro.poutine.trace(model.model).get_trace(phi, t)
    trace.compute_log_prob()
    site = trace.nodes["obs"]
    assert [f.name for f in site["cond_indep_stack"]] == ["data"]
    bce = F.binary_cross_entropy_with_logits(phi @ w, t, reduction="mean")
    assert float(site["log_prob_sum"].detach()) == pytest.approx(-40 * float(bce), rel=1e-13)


def test_map_matches_scipy_minimize_and_sklearn():
    phi, t = _data(n=80, seed=5)
    alpha = 2.5
    w = irls(phi, t, prior_precision=alpha).w.numpy()
    p, y = phi.numpy(), t.numpy()

    def grad(v, *_):
        return p.T @ (scipy.special.expit(p @ v) - y) + alpha * v

    res = scipy.optimize.minimize(
        _neg_log_post_np,
        np.zeros(4),
        args=(p, y, alpha),
        jac=grad,
        method="BFGS",
        options={"gtol": 1e-11},
    )
    # The objective is alpha-strongly convex, so the distance from BFGS's answer to the
    # optimum is at most the norm of its final gradient over alpha (BFGS stalls near 1e-9
    # here: its line search meets rounding noise before gtol).
    bound = np.linalg.norm(grad(res.x)) / alpha
    assert bound < 1e-7
    assert np.linalg.norm(res.x - w) <= bound + 1e-12
    # sklearn minimises 1/2 ||w||^2 + C * sum(BCE): the same MAP with C = 1 / alpha.
    sk = SkLogisticRegression(
        C=1 / alpha, solver="newton-cholesky", fit_intercept=False, tol=1e-14, max_iter=1000
    ).fit(p, y)
    assert np.abs(sk.coef_[0] - w).max() / np.abs(w).max() < 1e-8


def test_laplace_covariance_is_inverse_hessian_of_log_posterior():
    phi, t = _data(n=60, seed=6)
    alpha = 0.7
    post = laplace(phi, t, alpha)
    assert torch.allclose(post.mean, irls(phi, t, prior_precision=alpha).w, rtol=0, atol=0)

    def neg_log_post(w):
        return -log_likelihood(phi, t, w) + 0.5 * alpha * w @ w

    hess = torch.autograd.functional.hessian(neg_log_post, post.mean)
    expected = torch.linalg.inv(hess)
    # Two float64 routes (analytic Phi^T R Phi + Cholesky; autograd + LU) to the same matrix.
    assert torch.allclose(post.covariance, expected, rtol=1e-10, atol=1e-13)
    # And the finite-difference Hessian of the numpy objective agrees to its own accuracy.
    p, y, m = phi.numpy(), t.numpy(), post.mean.numpy()
    h = 1e-4
    fd = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            ei, ej = np.eye(4)[i] * h, np.eye(4)[j] * h
            fd[i, j] = (
                _neg_log_post_np(m + ei + ej, p, y, alpha)
                - _neg_log_post_np(m + ei - ej, p, y, alpha)
                - _neg_log_post_np(m - ei + ej, p, y, alpha)
                + _neg_log_post_np(m - ei - ej, p, y, alpha)
            ) / (4 * h * h)
    # Central differences: O(h^2) truncation plus rounding ~ eps * |f| / h^2 (about 1e-4).
    np.testing.assert_allclose(fd, hess.numpy(), rtol=1e-4, atol=1e-3)


def _gauss_average(f, mu, var, deg=120):
    """E[f(a)], a ~ N(mu, var), by Gauss-Hermite quadrature."""
    x, wts = np.polynomial.hermite_e.hermegauss(deg)
    return np.sum(wts * f(mu + np.sqrt(var) * x)) / np.sqrt(2 * np.pi)


def test_predictive_probit_against_quadrature():
    rng = np.random.default_rng(7)
    phi_new = rng.standard_normal((25, 3))
    mean = rng.standard_normal(3)
    l_factor = rng.standard_normal((3, 3))
    cov = l_factor @ l_factor.T + 0.1 * np.eye(3)
    p = predictive_probit(phi_new, mean, cov).numpy()
    lam = math.sqrt(math.pi / 8)
    grid = np.linspace(-20, 20, 40001)
    # The probit approximation's only error: sigma(a) vs Phi(lambda a), at most e1 (~0.018).
    e1 = np.abs(scipy.special.expit(grid) - scipy.special.ndtr(lam * grid)).max()
    assert 0.015 < e1 < 0.02
    for k in range(len(phi_new)):
        mu_a = phi_new[k] @ mean
        var_a = phi_new[k] @ cov @ phi_new[k]
        exact = _gauss_average(scipy.special.expit, mu_a, var_a)
        # Two replacements of sigma by the probit (inside the integral, then back outside).
        assert abs(p[k] - exact) <= 2 * e1
        # The middle step is exact: E[Phi(lambda a)] = Phi(lambda kappa mu_a); recover
        # kappa * mu_a from p = sigma(kappa mu_a) and check it to quadrature accuracy.
        probit_avg = _gauss_average(lambda a: scipy.special.ndtr(lam * a), mu_a, var_a)
        assert scipy.special.ndtr(lam * scipy.special.logit(p[k])) == pytest.approx(
            probit_avg, abs=1e-10
        )


def test_predictive_probit_single_row_and_zero_covariance():
    mean = torch.tensor([0.3, -1.2], dtype=torch.float64)
    phi_new = torch.tensor([1.0, 2.0], dtype=torch.float64)
    p = predictive_probit(phi_new, mean, torch.zeros(2, 2, dtype=torch.float64))
    assert p.shape == ()
    assert float(p) == pytest.approx(float(torch.sigmoid(phi_new @ mean)), rel=1e-15)


def test_two_class_generator():
    x, t = make_two_class(40, seed=3)
    x2, t2 = make_two_class(40, seed=3)
    assert torch.equal(x, x2) and torch.equal(t, t2)
    assert x.shape == (40, 2) and x.dtype == torch.float64
    assert float(t.sum()) == 20
    assert not is_separable(add_bias(x), t)
    xs, ts = make_two_class(40, seed=3, separable=True)
    assert is_separable(add_bias(xs), ts)
    # Every point on its class's side of x1 + x2 = 0 with the stated margin 0.25.
    assert bool((((2 * ts - 1) * xs.sum(1)) / math.sqrt(2) >= 0.25).all())


# ------------------------------------------------------- tier 2: inference vs closed form


def _lbfgs_bound(phi, t, w, alpha=0.0, tol=1e-10):
    """How far L-BFGS may stop from the optimum: fit_svi stops when a step changes the
    loss by <= tol * max(|L|, 1); near the optimum the loss excess is about
    1/2 dw^T H dw >= 1/2 lambda_min |dw|^2, and with L-BFGS's superlinear convergence the
    excess is below the last change, so |dw| <= sqrt(2 tol max(|L|,1) / lambda_min).
    A factor of 10 covers the approximation."""
    y = torch.sigmoid(phi @ w)
    h = phi.T @ ((y * (1 - y))[:, None] * phi) + alpha * torch.eye(len(w), dtype=phi.dtype)
    lam_min = float(torch.linalg.eigvalsh(h)[0])
    loss = abs(float(log_likelihood(phi, t, w)))
    return 10 * math.sqrt(2 * tol * max(loss, 1.0) / lam_min)


def test_svi_maximum_likelihood_reaches_irls():
    phi, t = _data(n=200, seed=8)
    w_irls = irls(phi, t).w
    model = LogisticRegression(4)
    result = fit_svi(model, phi, t, optimizer="lbfgs", num_steps=100, progress=False)
    assert result.converged
    err = float(torch.linalg.vector_norm(model.params().w - w_irls))
    bound = _lbfgs_bound(phi, t, w_irls)
    assert err <= bound
    assert err / float(torch.linalg.vector_norm(w_irls)) < 1e-3
    # The final loss is the NLL (= N * mean BCE) at the optimum, to the same accuracy.
    assert result.losses[-1] == pytest.approx(-float(log_likelihood(phi, t, w_irls)), rel=1e-9)


def test_svi_with_an_lbfgs_built_by_a_callable():
    # fit_svi must give a closure to any L-BFGS, not only to optimizer="lbfgs".
    phi, t = _data(n=100, seed=17)
    model = LogisticRegression(4)

    def optimizer(params):
        return torch.optim.LBFGS(params, max_iter=50, line_search_fn="strong_wolfe")

    fit_svi(model, phi, t, optimizer=optimizer, num_steps=1, tol=0, progress=False)
    w_irls = irls(phi, t).w
    # torch's default tolerance_grad=1e-7 stops it with |grad| ~ 1e-7, so |dw| is about
    # 1e-7 / lambda_min(H) (lambda_min = 3.4 here) per component: 1e-5 is a safe bound.
    assert float((model.params().w - w_irls).norm()) < 1e-5


def test_two_fitted_models_keep_their_own_parameters():
    phi1, t1 = _data(n=100, seed=9)
    phi2, t2 = _data(n=100, seed=10)
    m1, m2 = LogisticRegression(4), LogisticRegression(4)
    fit_svi(m1, phi1, t1, optimizer="lbfgs", num_steps=100, progress=False)
    fit_svi(m2, phi2, t2, optimizer="lbfgs", num_steps=100, progress=False)
    assert torch.allclose(
        m1.params().w, irls(phi1, t1).w, atol=_lbfgs_bound(phi1, t1, m1.params().w)
    )
    assert torch.allclose(
        m2.params().w, irls(phi2, t2).w, atol=_lbfgs_bound(phi2, t2, m2.params().w)
    )


def test_svi_map_with_autodelta_reaches_map_irls():
    phi, t = _data(n=60, seed=11)
    alpha = 1.5
    model = LogisticRegression(4, prior_precision=alpha)
    guide = AutoDelta(model.model)
    fit_svi(model, phi, t, guide=guide, optimizer="lbfgs", num_steps=100, progress=False)
    w_map = irls(phi, t, prior_precision=alpha).w
    err = float(torch.linalg.vector_norm(guide.median()["w"] - w_map))
    assert err <= _lbfgs_bound(phi, t, w_map, alpha=alpha)
    assert err / float(torch.linalg.vector_norm(w_map)) < 1e-3


@pytest.mark.parametrize(
    ("num_samples", "warmup_steps", "num_chains"),
    [(200, 100, 1), pytest.param(1000, 500, 2, marks=pytest.mark.slow)],
)
def test_nuts_posterior_mean_matches_grid_quadrature(num_samples, warmup_steps, num_chains):
    # Two weights (bias + slope) so that the exact posterior mean is a 2-D grid sum.
    x, t = make_two_class(30, seed=12)
    phi = add_bias(x[:, 0])
    alpha = 1.0
    model = LogisticRegression(2, prior_precision=alpha)
    mcmc = run_nuts(
        model,
        phi,
        t,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=0,
    )
    w = mcmc.get_samples(group_by_chain=True)["w"]
    exact_mean, exact_sd = _grid_posterior_moments(phi, t, alpha)
    ess = effective_sample_size(w, chain_dim=0, sample_dim=1)
    draws = w.reshape(-1, 2)
    # The Monte-Carlo standard error of a posterior mean is sd / sqrt(ESS); 4 of them
    # bound it with probability ~0.9999 per coordinate.
    assert bool(((draws.mean(0) - exact_mean).abs() <= 4 * exact_sd / ess.sqrt()).all())
    # The relative MC error of an sd is about 1 / sqrt(2 ESS).
    assert bool(((draws.std(0) / exact_sd - 1).abs() <= 4 / (2 * ess).sqrt()).all())


def _grid_posterior_moments(phi, t, alpha):
    """Exact posterior mean and sd of 2 weights by brute force on a 401 x 401 grid
    spanning +-8 Laplace standard deviations (the mass beyond is below 1e-14)."""
    post = laplace(phi, t, alpha)
    sd = post.covariance.diagonal().sqrt()
    axes = [
        torch.linspace(float(m - 8 * s), float(m + 8 * s), 401, dtype=torch.float64)
        for m, s in zip(post.mean, sd, strict=True)
    ]
    g0, g1 = torch.meshgrid(*axes, indexing="ij")
    grid = torch.stack([g0.ravel(), g1.ravel()], 1)
    a = grid @ phi.T
    logp = (t * a + F.logsigmoid(-a)).sum(1) - 0.5 * alpha * (grid * grid).sum(1)
    weights = torch.softmax(logp, 0)
    mean = weights @ grid
    return mean, (weights @ (grid - mean) ** 2).sqrt()


# ------------------------------------------------------------ tier 3: Monte-Carlo checks


def test_model_draws_have_sigmoid_mean():
    phi, _ = _data(n=4000, seed=13)
    model = LogisticRegression(4).double()
    w = torch.tensor([0.2, -0.5, 1.0, 0.3], dtype=torch.float64)
    model.w = PyroParam(w)
    pyro.set_rng_seed(0)
    draws = model.model(phi)
    y = torch.sigmoid(phi @ w)
    # Independent Bernoulli draws: the mean's standard error is sqrt(sum y(1-y)) / N.
    se = float((y * (1 - y)).sum().sqrt()) / len(y)
    assert abs(float(draws.mean() - y.mean())) <= 4 * se


# ------------------------------------------------------------------ separable data


def test_irls_warns_on_separable_data():
    phi, t = _data(n=100, seed=14, separable=True)
    with pytest.warns(SeparableDataWarning, match="maximum-likelihood estimate does not exist"):
        w = irls(phi, t).w
    assert bool((((2 * t - 1) * (phi @ w)) > 0).all())


def test_irls_warns_on_quasi_separable_data():
    # Two points at x = 0 with both labels, the rest separated by x = 0: w = (0, c) with
    # c -> infinity drives the likelihood up to 1/4 and no maximum-likelihood estimate
    # exists, although no w classifies every point correctly.
    x = torch.tensor([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    t = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    with pytest.warns(SeparableDataWarning, match="quasi-separable"):
        irls(add_bias(x), t)


def test_fit_svi_warns_on_separable_data():
    x, t = make_two_class(50, seed=15, separable=True)
    model = LogisticRegression(3)
    with pytest.warns(SeparableDataWarning, match="prior_precision"):
        fit_svi(model, add_bias(x), t, optimizer="lbfgs", num_steps=20, progress=False)


def test_prior_removes_the_separable_warning():
    phi, t = _data(n=100, seed=14, separable=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = irls(phi, t, prior_precision=1.0).w
    assert bool(torch.isfinite(w).all())
    g = phi.T @ (t - torch.sigmoid(phi @ w)) - w
    assert float(g.abs().max()) < 1e-8


def test_no_warning_on_overlapping_data():
    phi, t = _data(n=100, seed=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        irls(phi, t)
        fit_svi(LogisticRegression(4), phi, t, optimizer="lbfgs", num_steps=50, progress=False)


def test_minibatches_do_not_trigger_the_separable_warning():
    # A minibatch of 4 points is often separated by the current w although the full data
    # are not; the model checks separability only on full-data evaluations.
    phi, t = _data(n=100, seed=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparableDataWarning)
        fit_svi(LogisticRegression(4), phi, t, batch_size=4, num_steps=100, lr=0.1, progress=False)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [2.0, 0.5, -1.0])
def test_non_binary_targets(bad):
    phi, t = _data(n=10)
    t = t.clone()
    t[3] = bad
    with pytest.raises(ValueError, match="t must hold only 0 and 1"):
        irls(phi, t)
    with pytest.raises(ValueError, match="t must hold only 0 and 1"):
        fit_svi(LogisticRegression(4), phi, t, num_steps=1, progress=False)


def test_nan_inputs():
    phi, t = _data(n=10)
    phi_nan = phi.clone()
    phi_nan[2, 1] = float("nan")
    with pytest.raises(ValueError, match="phi must be finite"):
        irls(phi_nan, t)
    t_nan = t.clone()
    t_nan[0] = float("nan")
    with pytest.raises(ValueError, match="t must be finite"):
        laplace(phi, t_nan, 1.0)


def test_mismatched_lengths():
    phi, t = _data(n=10)
    with pytest.raises(ValueError, match="phi and t must have the same number of rows"):
        irls(phi, t[:-1])
    with pytest.raises(ValueError, match="phi and t must have the same number of rows"):
        fit_svi(LogisticRegression(4), phi, t[:-1], num_steps=1, progress=False)


def test_one_observation():
    with pytest.raises(ValueError, match="at least 2 observations"):
        irls(torch.ones(1, 2), torch.ones(1))


def test_wrong_ndim():
    phi, t = _data(n=10)
    with pytest.raises(ValueError, match="phi must be 2-D"):
        irls(phi[:, 0], t)
    with pytest.raises(ValueError, match="t must be 1-D"):
        irls(phi, t[:, None])
    with pytest.raises(ValueError, match="w must be 1-D"):
        log_likelihood(phi, t, torch.zeros(4, 1))
    with pytest.raises(ValueError, match="w must have 4 entries"):
        log_likelihood(phi, t, torch.zeros(3))


def test_add_bias_and_is_separable_checks():
    assert add_bias(np.array([2.0, 3.0])).tolist() == [[1.0, 2.0], [1.0, 3.0]]
    with pytest.raises(ValueError, match="x must be 1-D or 2-D"):
        add_bias(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="t must hold only 0 and 1"):
        is_separable(torch.ones(3, 2), torch.tensor([0.0, 1.0, 3.0]))


def test_bad_options():
    phi, t = _data(n=10)
    with pytest.raises(ValueError, match="prior_precision must be positive"):
        irls(phi, t, prior_precision=0.0)
    with pytest.raises(ValueError, match="prior_precision must be positive"):
        laplace(phi, t, -1.0)
    with pytest.raises(ValueError, match="prior_precision must be positive"):
        LogisticRegression(4, prior_precision=-2.0)
    with pytest.raises(ValueError, match="tol must be positive"):
        irls(phi, t, tol=0.0)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        irls(phi, t, max_iter=0)
    with pytest.raises(TypeError, match="num_features must be an integer"):
        LogisticRegression(2.5)


def test_linearly_dependent_columns():
    phi, t = _data(n=30)
    phi = torch.cat([phi, phi[:, 1:2]], 1)
    with pytest.raises(ValueError, match="linearly dependent columns"):
        irls(phi, t)


def test_irls_warns_when_max_iter_too_small():
    phi, t = _data(n=50)
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        irls(phi, t, max_iter=1)


def test_module_input_checks():
    phi, t = _data(n=10)
    model = LogisticRegression(3)
    with pytest.raises(ValueError, match="phi must have 3 columns"):
        model.validate_data(phi, t)
    with pytest.raises(ValueError, match=r"t \(the binary targets\) is required"):
        model.validate_data(phi)
    bayes = LogisticRegression(4, prior_precision=1.0)
    with pytest.raises(ValueError, match="pass a guide"):
        fit_svi(bayes, phi, t, num_steps=1, progress=False)
    with pytest.raises(ValueError, match="with a prior, w is a random variable"):
        bayes.params()


def test_predictive_probit_shape_checks():
    with pytest.raises(ValueError, match=r"mean must have shape \(2,\)"):
        predictive_probit(torch.ones(3, 2), torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match=r"covariance must have shape \(2, 2\)"):
        predictive_probit(torch.ones(3, 2), torch.zeros(2), torch.eye(3))
    with pytest.raises(ValueError, match="phi_new must be finite"):
        predictive_probit(torch.full((1, 2), float("inf")), torch.zeros(2), torch.eye(2))


def test_two_class_generator_checks():
    with pytest.raises(ValueError, match="num_points must be an integer >= 2"):
        make_two_class(1)
    with pytest.raises(TypeError, match="separable must be a bool"):
        make_two_class(10, separable="yes")


def test_bayesian_logistic_on_float64_data_and_vectorised_particles():
    from pyro import poutine

    g = torch.Generator().manual_seed(0)
    phi = torch.randn(30, 3, generator=g, dtype=torch.float64)
    t = (phi[:, 0] > 0).double()
    m = LogisticRegression(3, prior_precision=2.0)  # float32 buffers
    trace = poutine.trace(m.model).get_trace(phi, t)
    assert trace.nodes["w"]["value"].dtype == torch.float64  # the prior follows the data
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)

    def obs_log_prob(w):
        tr = poutine.trace(poutine.condition(m.model, {"w": w})).get_trace(phi, t)
        tr.compute_log_prob()
        return tr.nodes["obs"]["log_prob"]

    # w drawn for 4 particles outside the data plate has shape (4, 1, D).
    batched = obs_log_prob(w.expand(4, 1, 3))
    assert batched.shape == (4, 30)
    torch.testing.assert_close(batched, obs_log_prob(w).expand(4, 30))


def test_irls_says_when_there_is_a_single_class():
    # Issue 17: it warned "linearly separable" instead.
    phi = add_bias(torch.linspace(-1, 1, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"t has a single class \(every target is 1\)"):
        irls(phi, torch.ones(10, dtype=torch.float64))
    # With a prior the MAP exists: the bias goes positive, the slope stays near 0.
    w = irls(phi, torch.ones(10, dtype=torch.float64), prior_precision=1.0).w
    assert w[0] > 0 and abs(float(w[1])) < 1e-8


def test_laplace_with_a_vanishing_prior_on_separable_data_warns():
    # Issue 17: prior_precision 1e-10 on separable data gave a covariance of ~1e8 without
    # a word. Along its widest direction the log posterior is far from quadratic there:
    # the curvature one posterior sd away differs from the mode's by far more than 2x.
    # On overlapping classes the same prior gives a sound Gaussian and no warning.
    x, t = make_two_class(50, seed=0, separable=True)
    with pytest.warns(SeparableDataWarning, match="far from quadratic"):
        post = laplace(add_bias(x), t, 1e-10)
    assert float(torch.linalg.eigvalsh(post.covariance).max()) > 1e6
    x, t = make_two_class(50, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        post = laplace(add_bias(x), t, 1e-10)
    # Without a prior the Laplace covariance is the inverse observed information, which
    # scipy's BFGS-free reference gives as (Phi^T R Phi)^-1 at the MLE (float64, 1e-6).
    phi = add_bias(x)
    w = irls(phi, t).w
    y = torch.sigmoid(phi @ w)
    ref = torch.linalg.inv(phi.T @ (phi * (y * (1 - y))[:, None]))
    torch.testing.assert_close(post.covariance, ref, rtol=1e-6, atol=0)


def test_predictive_probit_refuses_overflow_and_an_indefinite_covariance():
    mean = torch.tensor([0.1, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="covariance must be positive semi-definite"):
        predictive_probit(torch.tensor([[1.0, 2.0]]), mean, -torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"overflow torch\.float64"):
        big = torch.tensor([[1e300, 1e300]], dtype=torch.float64)  # its variance overflows
        predictive_probit(big, mean, torch.eye(2, dtype=torch.float64))
