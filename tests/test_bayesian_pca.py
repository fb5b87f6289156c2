"""Bayesian PCA: ARD EM against an independent optimiser, MAP/SVI/NUTS on Bishop's
experiment, the prior-replacement pattern, bad input."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.autoguide import AutoLowRankMultivariateNormal
from pyro.nn import PyroSample
from scipy.optimize import minimize

from ppl_models import bayesian_pca as bp
from ppl_models.datasets import make_bishop_bpca_data
from ppl_models.inference import fit_svi, run_nuts
from ppl_models.regression import IterateAveraging, LinearRegression, polynomial_features


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


def _c(params) -> torch.Tensor:
    return bp.model_covariance(params.W, params.sigma2)


# --- data --------------------------------------------------------------------------------


def test_bishop_data_has_the_stated_covariance():
    data = make_bishop_bpca_data(num_points=200_000, seed=1)
    q = data.directions.numpy()
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
    true_c = data.W.numpy() @ data.W.numpy().T + 0.25 * np.eye(10)
    # Eigenvalues 1.0 (x3) and 0.25 (x7): exactly those of the stated standard deviations.
    np.testing.assert_allclose(np.linalg.eigvalsh(true_c), [0.25] * 7 + [1.0] * 3, atol=1e-12)
    xs = data.x.numpy()
    emp = xs.T @ xs / len(xs)
    # Monte-Carlo: each entry of the sample covariance has sd <= sqrt(2/N) * 1 = 0.0032;
    # 0.02 is over 6 sd for the largest of the 55 distinct entries.
    np.testing.assert_allclose(emp, true_c, atol=0.02)
    again = make_bishop_bpca_data(num_points=200_000, seed=1)
    assert torch.equal(again.x, data.x)


def test_bishop_data_bad_input():
    with pytest.raises(ValueError, match="signal_std must exceed noise_std"):
        make_bishop_bpca_data(signal_std=0.5, noise_std=1.0)
    with pytest.raises(ValueError, match="latent_dim must be an integer in"):
        make_bishop_bpca_data(d=3, latent_dim=3)


# --- tier 1: the EM's fixed point against scipy ---------------------------------------


def test_ard_em_fixed_point_is_the_map_of_scipy():
    """At ard_em's result, W (active columns) and sigma^2 maximise
    ln p(X | W, x̄, s2) - sum_i alpha_i ||w_i||^2 / 2 with alpha fixed; scipy's L-BFGS
    started from a perturbed point must come back to the same C."""
    data = make_bishop_bpca_data(num_points=150, seed=3)
    res = bp.ard_em(data.x, 9, tol=1e-13, max_iter=5000, seed=0)
    assert res.converged
    k = res.effective_dim
    alpha = res.alpha[:k].numpy()
    xs = data.x.numpy()
    n, d = xs.shape
    xc = xs - xs.mean(0)
    s = xc.T @ xc / n

    def negative_objective(theta):
        w = theta[:-1].reshape(d, k)
        c = w @ w.T + np.exp(theta[-1]) * np.eye(d)
        _, logdet = np.linalg.slogdet(c)
        ll = -0.5 * n * (d * np.log(2 * np.pi) + logdet + np.trace(np.linalg.solve(c, s)))
        return -(ll - 0.5 * np.sum(alpha * np.sum(w * w, 0)))

    w0 = res.params.W[:, :k].numpy()
    rng = np.random.default_rng(0)
    start = np.concatenate([(w0 + 0.05 * rng.standard_normal(w0.shape)).ravel(), [np.log(0.3)]])
    opt = minimize(negative_objective, start, method="BFGS", options={"gtol": 1e-9})
    w = opt.x[:-1].reshape(d, k)
    c_scipy = w @ w.T + np.exp(opt.x[-1]) * np.eye(d)
    # Both are float64 optimisers of a smooth objective; BFGS with numerical gradients
    # stops at about sqrt(machine eps) in the parameters: 1e-6 relative is its precision.
    np.testing.assert_allclose(_c(res.params).numpy(), c_scipy, rtol=0, atol=1e-6)
    # The evidence update holds at the fixed point, and the switched-off columns are zero.
    norms2 = (res.params.W**2).sum(0)
    torch.testing.assert_close(res.alpha[:k], d / norms2[:k], rtol=1e-12, atol=0)
    assert torch.all(res.params.W[:, k:] == 0) and torch.all(torch.isinf(res.alpha[k:]))
    torch.testing.assert_close(res.params.mu, data.x.mean(0))


def test_ard_em_log_likelihood_is_the_gaussian_one():
    data = make_bishop_bpca_data(num_points=100, seed=2)
    res = bp.ard_em(data.x, 5)
    c = _c(res.params).numpy()
    from scipy.stats import multivariate_normal

    ref = multivariate_normal(res.params.mu.numpy(), c).logpdf(data.x.numpy()).sum()
    # scipy's own Cholesky-based density: float64 rounding over 100 points.
    assert abs(float(res.log_likelihood[-1]) - ref) < 1e-8 * abs(ref)


@pytest.mark.parametrize("seed", range(5))
def test_ard_em_switches_off_six_columns_on_bishops_experiment(seed):
    data = make_bishop_bpca_data(seed=seed)
    res = bp.ard_em(data.x, 9, seed=seed)
    assert res.converged and res.effective_dim == 3
    norms = torch.linalg.vector_norm(res.params.W, dim=0)
    off = (norms < 0.01 * norms.max()) & (res.alpha > 100 * res.alpha.min())
    assert int(off.sum()) == 6
    assert bp.effective_dim_point(res.params.W, res.alpha) == 3
    # The retained subspace is the true one: principal angles with the truth are small
    # (N = 300: the directions are estimated to about 1/sqrt(N) ~ 0.06 rad).
    u = torch.linalg.svd(res.params.W[:, :3], full_matrices=False).U
    cosines = torch.linalg.svdvals(u.T @ data.directions)
    assert float(cosines.min()) > 0.95


def test_ard_em_rotation_step_reaches_the_plain_em_limit():
    """The rotation is an ascent step of the same objective: plain EM drifts towards the
    same C, slowly (measured on seeds 0-4: 0.1-0.3% away after 8000 iterations, 0.4-0.6%
    after 1600, still closing), while the rotated EM converges in under 50 iterations."""
    data = make_bishop_bpca_data(seed=0)
    fast = bp.ard_em(data.x, 9, tol=1e-13)
    slow = bp.ard_em(data.x, 9, tol=1e-13, rotate=False, max_iter=1000)
    assert fast.converged and len(fast.log_likelihood) < 200
    assert _rel(_c(slow.params), _c(fast.params)) < 0.01


def test_ard_em_keeps_float64_and_is_deterministic():
    x = make_bishop_bpca_data(num_points=80, seed=1).x
    a = bp.ard_em(x, 4, seed=5)
    b = bp.ard_em(x.numpy(), 4, seed=5)
    assert a.params.W.dtype == torch.float64
    assert torch.equal(a.params.W, b.params.W)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent_dim": 10}, r"latent_dim must be an integer in \[1, 9\]"),
        ({"latent_dim": 0}, r"latent_dim must be an integer in \[1, 9\]"),
        ({"latent_dim": 2.5}, "latent_dim must be an integer"),
        ({"latent_dim": 3, "tol": 0.0}, "tol must be positive"),
        ({"latent_dim": 3, "max_iter": 0}, "max_iter must be an integer >= 1"),
    ],
)
def test_ard_em_bad_input(kwargs, match):
    x = torch.randn(20, 10, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match=match):
        bp.ard_em(x, **kwargs)


def test_ard_em_bad_data():
    with pytest.raises(ValueError, match="x must be 2-D"):
        bp.ard_em(torch.randn(20), 1)
    with pytest.raises(ValueError, match="x must be finite"):
        bp.ard_em(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]), 1)
    with pytest.raises(ValueError, match="x must vary"):
        bp.ard_em(torch.ones(5, 3), 1)


# --- the Pyro module ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent_dim": 10}, r"latent_dim must be an integer in \[1, 9\]"),
        ({"latent_dim": 0}, r"latent_dim must be an integer in \[1, 9\]"),
        ({"alpha_prior": (0.0, 1.0)}, r"alpha_prior\[0\] \(shape\) must be positive"),
        ({"alpha_prior": (1.0, -1.0)}, r"alpha_prior\[1\] \(rate\) must be positive"),
        ({"alpha_prior": 1.0}, "alpha_prior must be a pair"),
        ({"sigma_scale": 0.0}, "sigma_scale must be positive"),
        ({"mu_scale": float("inf")}, "mu_scale must be positive"),
        ({"form": "joint"}, "form must be one of"),
        ({"guide": "flow"}, "guide must be one of"),
        ({"form": "latent", "guide": "lowrank"}, "guide='lowrank' needs form='marginal'"),
        ({"parametrisation": "whitened"}, "parametrisation must be one of"),
    ],
)
def test_module_bad_input(kwargs, match):
    args = {"data_dim": 10, "latent_dim": 3, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        bp.BayesianPCA(**args)


def test_module_bad_data():
    m = bp.BayesianPCA(10, 3)
    with pytest.raises(ValueError, match="x must have 10 columns"):
        fit_svi(m, torch.randn(20, 4), num_steps=1, progress=False)


@pytest.mark.parametrize("form", ["marginal", "latent"])
def test_model_sites_and_shapes(form):
    m = bp.BayesianPCA(6, 2, form=form).double()
    x = torch.randn(7, 6, dtype=torch.float64)
    tr = pyro.poutine.trace(m.model).get_trace(x)
    shapes = {k: tuple(v["value"].shape) for k, v in tr.nodes.items() if v["type"] == "sample"}
    want = {"alpha": (2,), "W": (6, 2), "sigma": (), "mu": (6,), "obs": (7, 6)}
    if form == "latent":
        want["z"] = (7, 2)
    assert {k: v for k, v in shapes.items() if k != "data"} == want
    assert tr.nodes["obs"]["is_observed"]


def test_marginal_and_latent_forms_are_the_same_model():
    """log p(x | W, mu, sigma) of the marginal form equals the latent form's, z
    integrated by the Gaussian identity: checked against scipy's density."""
    from scipy.stats import multivariate_normal

    m = bp.BayesianPCA(5, 2, alpha_prior=(2.0, 2.0)).double()  # alpha away from 0
    x = torch.randn(9, 5, dtype=torch.float64)
    tr = pyro.poutine.trace(m.model).get_trace(x)
    W, sigma, mu = (tr.nodes[k]["value"] for k in ("W", "sigma", "mu"))
    c = (W @ W.T + sigma**2 * torch.eye(5, dtype=torch.float64)).numpy()
    ref = multivariate_normal(mu.numpy(), c).logpdf(x.numpy()).sum()
    got = float(tr.nodes["obs"]["fn"].log_prob(x).sum())
    assert abs(got - ref) < 1e-10 * abs(ref)


def test_map_by_svi_switches_off_six_columns_and_matches_ard_em():
    data = make_bishop_bpca_data(seed=0)
    m = bp.BayesianPCA(10, 9, guide="delta")
    # AutoDelta makes the objective deterministic (MAP): L-BFGS applies.
    fit_svi(m, data.x, optimizer="lbfgs", num_steps=100, progress=False, seed=0)
    med = m.median()
    norms = torch.linalg.vector_norm(med["W"], dim=0)
    off = (norms < 0.01 * norms.max()) & (med["alpha"] > 100 * med["alpha"].min())
    assert int(off.sum()) == 6 and m.effective_dim() == 3
    em = bp.ard_em(data.x, 9)
    # Different objectives near the same point: the MAP has the Gamma(1e-3, 1e-3) prior on
    # alpha (which caps a switched-off alpha at (D/2 + a - 1)/b ~ 4000 rather than inf) and
    # a half-Cauchy prior on sigma; ard_em has neither. Measured 0.8%: 2% allows for it.
    assert _rel(bp.model_covariance(med["W"], med["sigma"] ** 2), _c(em.params)) < 0.02


def test_default_autoguide_init_fails_and_the_modules_does_not():
    """Pyro's init_to_median puts alpha at the median of Gamma(1e-3, 1e-3), about 0, so W's
    prior scale alpha^-1/2 is infinite and the low-rank covariance has no Cholesky factor;
    the module's data-based initial point is finite."""
    x = make_bishop_bpca_data(num_points=100, seed=0).x
    m = bp.BayesianPCA(10, 9)
    with pytest.raises((RuntimeError, ValueError), match=r"(?i)cholesky|non-finite"):
        fit_svi(m, x, guide=AutoLowRankMultivariateNormal(m.model), num_steps=5, progress=False)
    m = bp.BayesianPCA(10, 9, guide="lowrank")
    fit = fit_svi(m, x, num_steps=30, progress=False, seed=0, tol=0)
    assert np.all(np.isfinite(fit.losses)) and fit.losses[-1] < fit.losses[0]
    init = m.init_values(x)
    assert all(bool(torch.isfinite(v).all()) for v in init.values())


def test_noncentred_is_the_same_model_by_a_change_of_variables():
    """W = W_raw alpha^-1/2: the likelihood is the same function of W, and the priors
    differ by the Jacobian, log N(W; 0, 1/alpha) = log N(W_raw; 0, 1) + (D/2) sum log alpha
    (checked with scipy's normal density)."""
    from scipy.stats import norm

    m = bp.BayesianPCA(5, 2, alpha_prior=(2.0, 2.0), parametrisation="noncentred").double()
    x = torch.randn(9, 5, dtype=torch.float64)
    tr = pyro.poutine.trace(m.model).get_trace(x)
    assert tr.nodes["W_raw"]["type"] == "sample" and not tr.nodes["W_raw"]["is_observed"]
    alpha, w_raw, W = (tr.nodes[k]["value"] for k in ("alpha", "W_raw", "W"))
    torch.testing.assert_close(W, w_raw / alpha.sqrt(), rtol=1e-15, atol=0)
    centred = bp.BayesianPCA(5, 2, alpha_prior=(2.0, 2.0)).double()
    cond = {k: tr.nodes[k]["value"] for k in ("alpha", "W", "sigma", "mu")}
    tc = pyro.poutine.trace(pyro.poutine.condition(centred.model, data=cond)).get_trace(x)
    assert (
        abs(
            float(tc.nodes["obs"]["fn"].log_prob(x).sum() - tr.nodes["obs"]["fn"].log_prob(x).sum())
        )
        < 1e-10
    )
    w_centred = float(tc.nodes["W"]["fn"].log_prob(W))
    ref = norm.logpdf(w_raw.numpy()).sum() + 0.5 * 5 * np.log(alpha.numpy()).sum()
    assert abs(w_centred - ref) < 1e-10 * abs(ref)
    assert (
        abs(float(tr.nodes["W_raw"]["fn"].log_prob(w_raw)) - norm.logpdf(w_raw.numpy()).sum())
        < 1e-10
    )


@pytest.mark.parametrize("parametrisation", ["centred", "noncentred"])
def test_init_strategy_is_the_data_based_point(parametrisation):
    x = make_bishop_bpca_data(num_points=50, seed=0).x
    m = bp.BayesianPCA(10, 3, parametrisation=parametrisation).double()
    m.validate_data(x)
    init = m.init_values(x)
    tr = pyro.poutine.trace(pyro.poutine.block(m.model)).get_trace(x)
    for name, node in tr.nodes.items():
        if node["type"] == "sample" and not node["is_observed"] and name != "data":
            torch.testing.assert_close(m.init_strategy(node), init[name])
    if parametrisation == "noncentred":
        torch.testing.assert_close(init["W_raw"] / init["alpha"].sqrt(), init["W"])


def test_run_nuts_starts_from_the_modules_point():
    x = make_bishop_bpca_data(num_points=30, seed=0).x
    m = bp.BayesianPCA(10, 2)
    called = []

    def strategy(site):
        called.append(site["name"])
        return m.init_strategy(site)

    mcmc = run_nuts(
        m, x, num_samples=2, warmup_steps=2, num_chains=1, max_tree_depth=2,
        init_strategy=strategy, seed=0,
    )  # fmt: skip
    assert {"alpha", "W", "sigma", "mu"} <= set(called)
    assert mcmc.get_samples()["W"].shape == (2, 10, 2)


def _pyro_potential(m, x):
    from pyro.infer.mcmc.util import initialize_model

    with pyro.settings.context(module_local_params=True):
        init, potential, _, _ = initialize_model(
            m.model, model_args=(x,), init_strategy=m.init_strategy
        )
    return init, potential


def test_nuts_potential_is_pyros_potential_with_its_gradient():
    """The closed-form potential of the marginal form (sufficient statistics, analytic
    gradient) against Pyro's, which traces the model, evaluates the low-rank Gaussian on
    every row and differentiates by autograd: at the data-based point and at points far
    from it (columns switched on and off, sigma and mu moved). float64: the two routes
    differ by rounding in the N-row sums, 1e-10 relative leaves a factor ~100."""
    from pyro.ops.integrator import potential_grad

    x = make_bishop_bpca_data(num_points=120, seed=1).x
    for alpha_prior, sigma_scale, mu_scale in (((1e-3, 1e-3), 1.0, 100.0), ((2.0, 0.5), 0.3, 2.0)):
        m = bp.BayesianPCA(
            10, 4, alpha_prior=alpha_prior, sigma_scale=sigma_scale, mu_scale=mu_scale
        ).double()
        (xv,) = m.validate_data(x)
        init, reference = _pyro_potential(m, xv)
        fast = m.nuts_potential(xv)
        gen = torch.Generator().manual_seed(0)
        for step in (0.0, 0.3, 1.0, 2.0):
            point = {
                k: v + step * torch.randn(v.shape, generator=gen, dtype=v.dtype)
                for k, v in init.items()
            }
            g_ref, v_ref = potential_grad(
                reference, {k: v.clone().requires_grad_() for k, v in point.items()}
            )
            g_new, v_new = potential_grad(
                fast, {k: v.clone().requires_grad_() for k, v in point.items()}
            )
            assert float(v_new) == pytest.approx(float(v_ref), rel=1e-10)
            for k in g_ref:
                scale = float(g_ref[k].abs().max())
                assert float((g_new[k] - g_ref[k]).abs().max()) <= 1e-9 * max(scale, 1.0), k
            # The numpy twin that nutpie calls: the same tolerance against Pyro's.
            v_np, g_np = fast.numpy_value_and_grad({k: v.numpy() for k, v in point.items()})
            assert v_np == pytest.approx(float(v_ref), rel=1e-10)
            for k in g_ref:
                scale = float(g_ref[k].abs().max())
                diff = np.abs(np.asarray(g_np[k]) - g_ref[k].numpy()).max()
                assert diff <= 1e-9 * max(scale, 1.0), k
    # Far out on a diverging trajectory: sigma^2 = e^-800 underflows to 0 and W W^T has
    # rank 4 < 10, so C has no Cholesky factor. Infinite energy (a divergence), no error.
    far = dict(init, sigma=torch.tensor(-400.0, dtype=torch.float64))
    _, v_far = potential_grad(fast, {k: v.clone().requires_grad_() for k, v in far.items()})
    assert float(v_far) == float("inf")
    assert fast.numpy_value_and_grad({k: v.numpy() for k, v in far.items()})[0] == math.inf


def test_run_nuts_samples_the_modules_potential_only_where_it_is_pyros(monkeypatch):
    x = make_bishop_bpca_data(num_points=40, seed=0).x
    kwargs = dict(num_samples=3, warmup_steps=3, num_chains=2, max_tree_depth=3, seed=0)
    mcmc = run_nuts(bp.BayesianPCA(10, 2).double(), x, **kwargs)
    assert mcmc.potential == "module"
    pyro_run = run_nuts(bp.BayesianPCA(10, 2).double(), x, sampler="pyro", **kwargs)
    assert pyro_run.kernel.model is None and pyro_run.kernel.potential_fn is not None
    draws = mcmc.get_samples(group_by_chain=True)  # constrained: alpha and sigma positive
    assert draws["W"].shape == (2, 3, 10, 2) and bool((draws["alpha"] > 0).all())
    assert bool((draws["sigma"] > 0).all())
    # No closed form for the latent form: Pyro's potential from the model.
    lat = bp.BayesianPCA(10, 2, form="latent").double()
    assert lat.nuts_potential(torch.as_tensor(x)) is None
    # A potential that is not Pyro's (here: half of it) is refused.
    original = bp.BayesianPCA.nuts_potential

    def wrong(self, xv):
        f = original(self, xv)
        return lambda z: 0.5 * f(z)

    monkeypatch.setattr(bp.BayesianPCA, "nuts_potential", wrong)
    mcmc = run_nuts(bp.BayesianPCA(10, 2).double(), x, **kwargs)
    assert mcmc.potential == "traced"  # the model's own log joint
    pyro_run = run_nuts(bp.BayesianPCA(10, 2).double(), x, sampler="pyro", **kwargs)
    assert pyro_run.kernel.model is not None
    # nutpie calls the numpy twin once licensed; a wrong twin is never called after its
    # check, and the licensed torch potential is sampled instead.
    calls = {"right": 0, "wrong": 0}

    def counted(self, xv):
        f = original(self, xv)
        twin = f.numpy_value_and_grad

        def right(z):
            calls["right"] += 1
            return twin(z)

        return type(f)(f.value_and_grad, right)

    monkeypatch.setattr(bp.BayesianPCA, "nuts_potential", counted)
    assert run_nuts(bp.BayesianPCA(10, 2).double(), x, **kwargs).potential == "module"
    assert calls["right"] > 2  # the licence check at the 2 chains' starts, then the sampler's

    def bad_twin(self, xv):
        f = original(self, xv)

        def wrong_twin(z):
            calls["wrong"] += 1
            value, grads = f.numpy_value_and_grad(z)
            return 0.5 * value, grads

        return type(f)(f.value_and_grad, wrong_twin)

    monkeypatch.setattr(bp.BayesianPCA, "nuts_potential", bad_twin)
    assert run_nuts(bp.BayesianPCA(10, 2).double(), x, **kwargs).potential == "module"
    assert 0 < calls["wrong"] <= 1  # refused at the first starting point, never sampled


def test_noncentred_map_has_w_in_its_median():
    x = make_bishop_bpca_data(num_points=60, seed=0).x
    m = bp.BayesianPCA(10, 3, guide="delta", parametrisation="noncentred")
    fit_svi(m, x, num_steps=10, progress=False, seed=0)
    med = m.median()
    assert sorted(med) == ["W", "alpha", "mu", "sigma"] and med["W"].shape == (10, 3)
    assert m.sample_posterior(4, seed=0)["W"].shape == (4, 10, 3)
    lat = bp.BayesianPCA(10, 3, form="latent", parametrisation="noncentred")
    fit_svi(lat, x, num_steps=10, batch_size=20, progress=False, seed=0)
    assert lat.sample_posterior(4, seed=0)["W"].shape == (4, 10, 3)


def test_two_instances_keep_their_own_parameters():
    x = make_bishop_bpca_data(num_points=60, seed=0).x
    a, b = bp.BayesianPCA(10, 2, guide="delta"), bp.BayesianPCA(10, 2, guide="delta")
    fit_svi(a, x, num_steps=20, progress=False, seed=0)
    fit_svi(b, 2 * x, num_steps=20, progress=False, seed=0)
    assert not torch.allclose(a.median()["sigma"], b.median()["sigma"])


def test_latent_form_fits_with_minibatches():
    x = make_bishop_bpca_data(num_points=200, seed=0).x
    m = bp.BayesianPCA(10, 4, form="latent")
    fit = fit_svi(m, x, num_steps=60, batch_size=50, progress=False, seed=0, tol=0)
    assert np.all(np.isfinite(fit.losses))
    assert m.autoguide.locs.z.shape == (200, 4)  # one location per data point
    draws = m.sample_posterior(10, seed=0)
    assert draws["W"].shape == (10, 10, 4) and draws["alpha"].shape == (10, 4)


def test_effective_dim_rules():
    assert bp.effective_dim_alpha(torch.tensor([[1.0, 1.5, 1.2]])) == 3  # no gap
    assert bp.effective_dim_alpha(torch.tensor([[1.0, 50.0, 60.0]])) == 1
    assert bp.effective_dim_median(torch.eye(3)) == 3
    w = torch.tensor([[1.0, 0.0], [0.0, 0.005]])
    assert bp.effective_dim_point(w, 2.0 / (w**2).sum(0)) == 1


# --- the prior pattern: a PyroSample on an instance --------------------------------------


def test_laplace_prior_on_regression_weights_fits_by_nuts():
    x = torch.linspace(0, 1, 40, dtype=torch.float64)
    t = 1.0 + 2.0 * x + 0.1 * torch.randn(40, dtype=torch.float64)
    phi = polynomial_features(x, 1)
    reg = LinearRegression(2)
    reg.w = PyroSample(dist.Laplace(torch.zeros(2, dtype=torch.float64), 10.0).to_event(1))
    reg.beta = PyroSample(dist.Gamma(torch.tensor(1.0, dtype=torch.float64), 0.01))
    mcmc = run_nuts(reg, phi, t, num_samples=50, warmup_steps=50, num_chains=1, seed=0)
    w = mcmc.get_samples()["w"]
    # A prior of scale 10 on 40 points with noise 0.1: the posterior mean is the least
    # squares fit up to a shift far below its sd (~0.03 and ~0.05); 0.15 is 3 posterior sd
    # plus Monte-Carlo error of 50 draws (~0.01).
    ls = torch.linalg.lstsq(phi, t).solution
    assert torch.allclose(w.mean(0), ls, atol=0.15)


def test_laplace_prior_on_marginal_ppca_w_fits_by_svi():
    from pyro.infer.autoguide import AutoDelta

    from ppl_models import ppca

    data = make_bishop_bpca_data(num_points=200, seed=0)
    m = ppca.MarginalPPCA(10, 3)
    m.W = PyroSample(dist.Laplace(torch.zeros(10, 3, dtype=torch.float64), 1.0).to_event(2))
    guide = AutoDelta(m.model)
    # MAP: a deterministic objective, so L-BFGS.
    fit = fit_svi(m, data.x, guide=guide, optimizer="lbfgs", num_steps=100, progress=False)
    w = guide.median()["W"]
    c = w @ w.T + m.params().sigma2 * torch.eye(10, dtype=torch.float64)
    ml = ppca.closed_form(data.x, 3)
    c_ml = ml.W @ ml.W.T + ml.sigma2 * torch.eye(10, dtype=torch.float64)
    # The Laplace(0, 1) log-prior, sum |w_ij| ~ 4, against a log-likelihood of N = 200
    # points: it moves the optimum by O(1/N) relative, ~0.5%; 3% leaves room for it.
    assert np.isfinite(fit.losses[-1])
    assert _rel(c, c_ml) < 0.03
    assert _rel(c, c_ml) > 1e-6  # the prior did move it


# --- full posteriors (slow) --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("family", ["normal", "lowrank"])
def test_gaussian_guide_separates_three_columns(family):
    data = make_bishop_bpca_data(seed=0)
    em = bp.ard_em(data.x, 9)
    m = bp.BayesianPCA(10, 9, guide=family)
    avg = IterateAveraging(lr=0.02, start=1000)
    fit_svi(m, data.x, optimizer=avg, num_steps=2500, progress=False, seed=0, tol=0)
    avg.apply()
    norms = torch.linalg.vector_norm(m.median()["W"], dim=0).sort().values
    assert bool(torch.all(norms[:6] < 0.05 * norms[-1]))
    assert m.effective_dim() == 3
    c_mean = bp.rotation_free(m.sample_posterior(2000, seed=0))["C"].mean(0)
    assert _rel(c_mean, _c(em.params)) < 0.05


@pytest.mark.slow
def test_latent_form_svi_finds_five_of_fifty_dimensions():
    """D = 50, true dimension 5, N = 2000: the latent-z form with a mean-field Gaussian
    guide, fitted by SVI, keeps five columns of ten, as ard_em does. Measured (seed 0,
    2-core machine under load): 3000 full-batch steps in 125-218 s; guide-median column norms
    0.89-0.79 for the five kept and 0.027, 0.002, ... for the others, so the 5% rule of
    effective_dim_median (cut at 0.045) has a margin of 1.7x on the largest switched-off
    column. With latent_dim = 20, lr 0.02 and 1500 steps the switched-off columns had
    not shrunk yet (norms up to 0.21): ARD shrinkage under SGD is slow, hence the steps."""
    data = make_bishop_bpca_data(num_points=2000, d=50, latent_dim=5, seed=0)
    assert bp.ard_em(data.x, 10).effective_dim == 5
    m = bp.BayesianPCA(50, 10, form="latent", guide="normal")
    avg = IterateAveraging(lr=0.05, start=1500)
    fit = fit_svi(m, data.x, optimizer=avg, num_steps=3000, progress=False, seed=0, tol=0)
    avg.apply()
    assert np.all(np.isfinite(fit.losses))
    assert m.effective_dim() == 5


def _gibbs_bpca(x, m, sweeps, *, a=1e-3, b=1e-3, sigma_scale=1.0, mu_scale=100.0, seed=0):
    r"""An independent reference for the posterior of BayesianPCA: a Gibbs sampler in numpy
    on the latent form (z_n ~ N(0, I_M), x_n | z_n ~ N(W z_n + mu, sigma^2 I)), every
    conditional in closed form:

    * z_n | . ~ N(P^-1 W^T (x_n - mu) / s2, P^-1), P = I + W^T W / s2;
    * each row of W | . ~ N(L^-1 Z^T (x_:d - mu_d) / s2, L^-1), L = diag(alpha) + Z^T Z / s2
      (the same L for every row);
    * alpha_i | w_i ~ Gamma(a + D/2, rate b + |w_i|^2 / 2);
    * mu | . ~ N(sum_n (x_n - W z_n) / s2 / p, 1/p), p = N / s2 + 1 / s_mu^2;
    * sigma ~ HalfCauchy(s) as s2 | nu ~ InvGamma(1/2, 1/nu), nu ~ InvGamma(1/2, 1/s^2)
      (Makalic & Schmidt 2016): s2 | . ~ InvGamma(1/2 + ND/2, 1/nu + RSS/2) and
      nu | s2 ~ InvGamma(1, 1/s^2 + 1/s2).

    Starts from ard_em's kind of point (principal directions); returns per-sweep C, alpha
    sorted and column norms sorted."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    mu = x.mean(0)
    lam, u = np.linalg.eigh((x - mu).T @ (x - mu) / n)
    lam, u = lam[::-1], u[:, ::-1]
    s2 = lam[m:].mean()
    W = u[:, :m] * np.sqrt(np.maximum(lam[:m] - s2, 0.01 * lam.mean()))
    alpha, nu = d / (W * W).sum(0), 1.0
    out = {"C": [], "alpha": [], "norms": []}
    for _ in range(sweeps):
        P = np.eye(m) + W.T @ W / s2
        Z = (
            np.linalg.solve(P, W.T @ (x - mu).T / s2).T
            + np.linalg.solve(np.linalg.cholesky(P).T, rng.standard_normal((m, n))).T
        )
        L = np.diag(alpha) + Z.T @ Z / s2
        W = (
            np.linalg.solve(L, Z.T @ (x - mu) / s2).T
            + np.linalg.solve(np.linalg.cholesky(L).T, rng.standard_normal((m, d))).T
        )
        alpha = rng.gamma(a + d / 2, 1.0 / (b + 0.5 * (W * W).sum(0)))
        p = n / s2 + 1 / mu_scale**2
        mu = (x - Z @ W.T).sum(0) / s2 / p + rng.standard_normal(d) / np.sqrt(p)
        r = x - Z @ W.T - mu
        s2 = 1.0 / rng.gamma(0.5 + n * d / 2, 1.0 / (1.0 / nu + (r * r).sum() / 2))
        nu = 1.0 / rng.gamma(1.0, 1.0 / (1.0 / sigma_scale**2 + 1.0 / s2))
        out["C"].append(W @ W.T + s2 * np.eye(d))
        out["alpha"].append(np.sort(alpha))
        out["norms"].append(np.sort(np.linalg.norm(W, axis=0)))
    return {k: np.asarray(v) for k, v in out.items()}


def _largest_mc_z(draws_a, draws_b):
    """The largest |z| over entries between two samplers' posterior means of (chain,
    draw, ...) arrays, z = difference / combined Monte-Carlo standard error (ArviZ's mcse
    of the mean, which accounts for autocorrelation)."""
    import arviz as az

    def mean_and_mcse(draws):
        flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
        mcse = az.mcse(az.convert_to_dataset({"v": flat}))["v"].values
        return flat.mean((0, 1)), mcse

    ma, sa = mean_and_mcse(draws_a)
    mb, sb = mean_and_mcse(draws_b)
    z = np.abs(ma - mb) / np.sqrt(sa**2 + sb**2)
    return float(z.max())


# 2 chains x (250 + 1000) iterations, 63-127 leapfrog steps each at ~1.2 ms (closed-form
# potential 0.5 ms, Pyro's tree building the rest): 3.5 min on an idle 2-core machine.
# Measured: R-hat at most 1.003, ESS 375-2051 of 2000. With 500 draws per chain R-hat
# reached 1.014 on the switched-off columns' alphas (ESS 240-340 of 1000), hence 1000.
NUTS_WARMUP, NUTS_DRAWS = 250, 1000
# A switched-off column and its alpha form a funnel (w_i ~ N(0, I / alpha_i), alpha_i up
# to ~1000 under the vague prior). With the default target acceptance 0.8 (step size
# 0.078) one trajectory of the 2000 diverged in the funnel's neck (chain 0, draw 737);
# 0.9 (step size 0.070, 10% more time) gives none, with the same R-hat (1.003) and
# posterior means. Raising the target is the standard remedy (a smaller step where the
# curvature is high); the divergence is not explained away.
NUTS_TARGET_ACCEPT = 0.9


@pytest.mark.slow
def test_nuts_posterior_separates_three_columns_and_is_the_gibbs_posterior():
    """NUTS on the marginal form (vague Gamma(1e-3, 1e-3) on alpha), Bishop's data.

    The issue asked for the NUTS posterior mean of C within 5% of ard_em's C. It is 5.3%
    away (5.2%), and so is the posterior mean from an independent Gibbs sampler (numpy,
    latent form, 2 x 40000 sweeps: 5.3%), while the two samplers agree to 0.3% (largest
    |z| over C's 55 entries 2.95, over the sorted alphas 2.38):
    the distance is the posterior's, not the sampler's. Columns 4-9 are not pruned under
    the posterior (norms 0.1-0.43, alpha 59-1130) and carry part of the spread of the
    seven small sample eigenvalues (0.18-0.33 about sigma^2 = 0.25), which ard_em's point
    estimate sets to sigma^2 exactly; the posterior mean of C lies between ard_em's C and
    the sample covariance S (3.8% from S; ard_em is 7.7% from S). So the test compares the
    NUTS posterior with the Gibbs posterior, entry by entry within Monte-Carlo error, and
    the SVI tests keep the 5% bound against ard_em (a Gaussian guide under-disperses the
    switched-off columns).
    """
    import arviz as az

    data = make_bishop_bpca_data(seed=0)
    em = bp.ard_em(data.x, 9)
    m = bp.BayesianPCA(10, 9).double()
    mcmc = run_nuts(
        m, data.x, num_samples=NUTS_DRAWS, warmup_steps=NUTS_WARMUP, num_chains=2,
        init_strategy=m.init_strategy, seed=0, progress=False,
        target_accept_prob=NUTS_TARGET_ACCEPT,
    )  # fmt: skip
    assert mcmc.potential == "module"  # the closed-form potential was licensed
    draws = mcmc.get_samples(group_by_chain=True)
    divergences = sum(len(v) for v in mcmc.diagnostics()["divergences"].values())
    assert divergences == 0
    chains = {k: v.numpy() for k, v in bp.rotation_free(draws).items()}
    for name in ("alpha_sorted", "norm_sorted"):
        rhat = az.rhat(az.convert_to_dataset({"v": chains[name]}))["v"].values
        assert float(rhat.max()) <= 1.01, (name, rhat)
    alpha_mean = chains["alpha_sorted"].mean((0, 1))
    assert alpha_mean[3] >= 2 * alpha_mean[2]
    assert m.effective_dim(draws) == 3

    x = data.x.numpy()
    gibbs = [_gibbs_bpca(x, 9, 40000, seed=s) for s in (1, 2)]
    burn = 2000  # from a point near the mode; the sorted alphas settle within ~500 sweeps
    ref = {k: np.stack([g[k][burn:] for g in gibbs]) for k in ("C", "alpha")}
    # 55 distinct entries of C, 9 alphas: |z| > 4.5 somewhere by chance has odds ~4e-4
    # (55 x 6.8e-6). Measured: 2.95 and 2.38.
    iu = np.triu_indices(10)
    assert _largest_mc_z(chains["C"][..., iu[0], iu[1]], ref["C"][..., iu[0], iu[1]]) < 4.5
    assert _largest_mc_z(chains["alpha_sorted"], ref["alpha"]) < 4.5
    c_nuts, c_gibbs = chains["C"].mean((0, 1)), ref["C"].mean((0, 1))
    c_em = _c(em.params).numpy()
    # The same in one number: measured 0.33%; with ESS ~400-1000 on the entries that move,
    # Monte-Carlo error alone is a few tenths of a percent, so 1% flags a real difference
    # (a fifth of the 5.2% between the posterior and ard_em).
    assert np.linalg.norm(c_nuts - c_gibbs) / np.linalg.norm(c_gibbs) < 0.01
    # Where the bound falls: both posteriors sit at the same distance from ard_em
    # (measured 5.21% and 5.28%).
    rel_nuts = np.linalg.norm(c_nuts - c_em) / np.linalg.norm(c_em)
    rel_gibbs = np.linalg.norm(c_gibbs - c_em) / np.linalg.norm(c_em)
    assert abs(rel_nuts - rel_gibbs) < 0.005, (rel_nuts, rel_gibbs)


def test_effective_dimension_rules_and_model_covariance_check_their_inputs():
    # Issue 17: NaN alpha gave 3, sigma2 = -1 was accepted; none checked anything.
    W = torch.tensor([[1.0, 0.0, 1e-4], [0.0, 2.0, 0.0]])
    alpha = 2.0 / (W**2).sum(0)
    assert bp.effective_dim_point(W, alpha) == 2
    with pytest.raises(ValueError, match=r"alpha must be positive \(inf for a switched-off"):
        bp.effective_dim_point(W, torch.tensor([1.0, float("nan"), 2.0]))
    with pytest.raises(ValueError, match=r"alpha must have shape \(3,\)"):
        bp.effective_dim_point(W, alpha[:2])
    with pytest.raises(ValueError, match=r"alpha_draws must be positive"):
        bp.effective_dim_alpha(torch.tensor([[10.0, float("nan"), 12.0]]))
    with pytest.raises(ValueError, match=r"gap must be above 1"):
        bp.effective_dim_alpha(torch.tensor([[10.0, 500.0]]), gap=0.5)
    with pytest.raises(ValueError, match=r"W_median must be finite"):
        bp.effective_dim_median(torch.tensor([[1.0, float("inf")]]))
    with pytest.raises(ValueError, match=r"sigma2 must be positive and finite"):
        bp.model_covariance(torch.ones(2, 1), -1.0)
    with pytest.raises(ValueError, match=r"W must be a matrix of shape \(\.\.\., D, M\)"):
        bp.model_covariance(torch.ones(3), 1.0)
    with pytest.raises(ValueError, match=r"samples must hold draws of \['alpha'\]"):
        bp.rotation_free({"W": torch.ones(2, 3, 1)})
    # A switched-off column's alpha is inf (ard_em's convention): accepted.
    assert bp.effective_dim_point(W, torch.tensor([0.5, 0.5, float("inf")])) == 2
