"""The ArviZ bridge (ppl_models.workflow) on conjugate models with closed-form posteriors.

The main model is the library's Gaussian with a prior on its mean and a known standard
deviation (the "add a prior" pattern: ``loc`` becomes a PyroSample),

    mu ~ N(0, tau^2),  x_n | mu ~ N(mu, sigma^2),  tau = 10, sigma = 2,

whose posterior is N(m_N, s_N^2) with 1/s_N^2 = 1/tau^2 + N/sigma^2, m_N = s_N^2 sum(x)/sigma^2
(PRML 2.141-2.142), and whose leave-one-out predictive is
p(x_n | x_-n) = N(x_n | m_-n, sigma^2 + s_-n^2).
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import scipy.stats as st
import torch
from pyro.infer.autoguide import AutoNormal
from pyro.nn import PyroModule, PyroSample

from ppl_models import _arviz
from ppl_models.gaussian import Gaussian
from ppl_models.inference import data_plate, fit_svi, local_pyro_method, run_nuts
from ppl_models.workflow import (
    check_guide,
    compare,
    get_group,
    loo,
    posterior_predictive,
    prior_predictive,
    summary,
    to_inference_data,
)

N = 20
SIGMA = 2.0
TAU = 10.0
F64 = torch.float64


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, dtype=F64, generator=g) * SIGMA + 1.0


def _posterior(x: np.ndarray) -> tuple[float, float]:
    prec = 1 / TAU**2 + len(x) / SIGMA**2
    return float(x.sum() / SIGMA**2 / prec), float(prec**-0.5)


def _exact_loo(x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x))
    for n in range(len(x)):
        m, s = _posterior(np.delete(x, n))
        out[n] = st.norm.logpdf(x[n], m, np.sqrt(SIGMA**2 + s**2))
    return out


def _gaussian_with_prior() -> Gaussian:
    g = Gaussian(event_dim=0)
    g.loc = PyroSample(dist.Normal(torch.tensor(0.0, dtype=F64), TAU))
    # Known variance: a fixed buffer instead of the learnable PyroParam.
    del g.scale
    g.register_buffer("scale", torch.tensor(SIGMA, dtype=F64))
    return g


@pytest.fixture(scope="module")
def nuts_run():
    x = _data()
    g = _gaussian_with_prior()
    mcmc = run_nuts(g, x, num_samples=500, warmup_steps=150, num_chains=2, seed=0, progress=False)
    return x, mcmc, to_inference_data(mcmc)


@pytest.fixture(scope="module")
def svi_run():
    x = _data()
    g = _gaussian_with_prior()
    guide = AutoNormal(g.model)
    fit_svi(
        g,
        x,
        guide=guide,
        loss="meanfield",
        num_particles=64,
        num_steps=400,
        lr=0.1,
        seed=0,
        tol=0,
        progress=False,
    )
    data = to_inference_data(g, x, guide=guide, num_chains=4, num_samples=500, seed=0)
    return x, g, guide, data


def _psis_tolerance(ll: np.ndarray, ess: float) -> float:
    """4 x a conservative Monte-Carlo standard error of an importance-sampling LOO sum.

    For observation n the estimate is -log mean_s r_sn with r_sn = 1/p(x_n | theta_s); by the
    delta method its standard error is sd_s(r_sn) / (sqrt(ess) mean_s(r_sn)). The errors of
    different n share the draws, so their standard errors are added (perfect correlation),
    an upper bound.
    """
    r = np.exp(-(ll - ll.max(axis=0)))
    se = r.std(axis=0) / (np.sqrt(ess) * r.mean(axis=0))
    return 4 * float(se.sum())


# ---- MCMC -------------------------------------------------------------------------------


def test_mcmc_groups_shapes_and_dims(nuts_run):
    x, _, data = nuts_run
    assert _arviz.group_names(data)[:5] == [
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "sample_stats",
        "observed_data",
    ]
    post = get_group(data, "posterior")
    assert list(post.data_vars) == ["loc"]  # the known scale is no latent site
    assert post["loc"].dims == ("chain", "draw")
    assert post["loc"].shape == (2, 500)
    for group in ("posterior_predictive", "log_likelihood"):
        obs = get_group(data, group)["obs"]
        assert obs.dims == ("chain", "draw", "data")
        assert obs.shape == (2, 500, N)
    assert get_group(data, "sample_stats")["diverging"].shape == (2, 500)
    observed = get_group(data, "observed_data")["obs"]
    assert observed.dims == ("data",)
    np.testing.assert_array_equal(observed.values, x.numpy())


def test_mcmc_posterior_matches_run_and_rhat(nuts_run):
    _, mcmc, data = nuts_run
    np.testing.assert_array_equal(
        get_group(data, "posterior")["loc"].values,
        mcmc.get_samples(group_by_chain=True)["loc"].numpy(),
    )
    table = summary(data)
    assert (table["r_hat"] <= 1.01).all(), table


def test_mcmc_posterior_matches_closed_form(nuts_run):
    x, _, data = nuts_run
    m, s = _posterior(x.numpy())
    table = summary(data)
    # MC bound: the NUTS mean is within 4 of its Monte-Carlo standard errors (mcse_mean,
    # from the effective sample size) of the exact posterior mean.
    assert abs(table.loc["loc", "mean"] - m) < 4 * table.loc["loc", "mcse_mean"]
    # The sample sd of n_eff ~ 500 roughly independent draws has relative standard error
    # about 1/sqrt(2 n_eff) ~ 0.03; 0.15 is 4-5 of them.
    assert abs(table.loc["loc", "sd"] / s - 1) < 0.15


def test_mcmc_log_likelihood_equals_scipy(nuts_run):
    x, _, data = nuts_run
    mu = get_group(data, "posterior")["loc"].values
    ll = get_group(data, "log_likelihood")["obs"].values
    expected = st.norm.logpdf(x.numpy(), mu[..., None], SIGMA)
    np.testing.assert_allclose(ll, expected, rtol=1e-12, atol=1e-12)


def test_mcmc_posterior_predictive_moments(nuts_run):
    _, _, data = nuts_run
    mu = get_group(data, "posterior")["loc"].values
    pp = get_group(data, "posterior_predictive")["obs"].values
    # Given each draw, the predictive draws are independent N(mu_s, sigma^2): the
    # residuals' mean and variance are within 4 standard errors (sigma / sqrt(n) and
    # sigma^2 sqrt(2 / (n - 1))) of 0 and sigma^2.
    resid = (pp - mu[..., None]).ravel()
    n = resid.size
    assert abs(resid.mean()) < 4 * SIGMA / np.sqrt(n)
    assert abs(resid.var(ddof=1) - SIGMA**2) < 4 * SIGMA**2 * np.sqrt(2 / (n - 1))


def test_mcmc_loo_matches_exact_loo(nuts_run):
    x, _, data = nuts_run
    result = loo(data)
    exact = _exact_loo(x.numpy())
    assert np.isfinite(result.elpd)
    assert result.n_samples == 1000
    assert result.n_data_points == N
    assert (result.pareto_k < 0.7).all()
    ll = get_group(data, "log_likelihood")["obs"].values.reshape(-1, N)
    ess = float(summary(data).loc["loc", "ess_bulk"])
    assert abs(result.elpd - exact.sum()) < _psis_tolerance(ll, ess)


def test_run_nuts_data_can_be_given_again(nuts_run):
    x, mcmc, data = nuts_run
    again = to_inference_data(mcmc, x.numpy())
    np.testing.assert_array_equal(
        get_group(again, "log_likelihood")["obs"].values,
        get_group(data, "log_likelihood")["obs"].values,
    )


def test_plots_from_inference_data(nuts_run):
    from ppl_models import plots

    x, _, data = nuts_run
    fig = plots.plot_ppc(data, num_samples=5)
    assert len(fig.axes) == 3
    # The right panel's title holds the predictive p-value of the sd, a probability.
    p = float(fig.axes[2].get_title().split("p = ")[1])
    assert 0.0 <= p <= 1.0
    result = loo(data)
    fig2 = plots.plot_loo_pointwise(_exact_loo(x.numpy()), {"NUTS": result.elpd_i}, result.pareto_k)
    assert len(fig2.axes) == 2
    import matplotlib.pyplot as plt

    plt.close("all")


# ---- SVI --------------------------------------------------------------------------------


def test_svi_guide_matches_closed_form(svi_run):
    x, _, guide, _ = svi_run
    m, s = _posterior(x.numpy())
    # The exact posterior is Gaussian, so AutoNormal's optimum is it. Adam at lr 0.1 on
    # 64-particle gradients hovers about the optimum; over seeds 0-1 the mean stayed within
    # 0.07 posterior sd and the scale within 6%: the bounds leave room for that noise.
    assert abs(guide.locs.loc.item() - m) < 0.25 * s
    assert abs(guide.scales.loc.item() / s - 1) < 0.15


def test_svi_draws_follow_the_guide(svi_run):
    _, _, guide, data = svi_run
    loc = get_group(data, "posterior")["loc"]
    assert loc.shape == (4, 500)
    q_mean, q_sd = guide.locs.loc.item(), guide.scales.loc.item()
    draws = loc.values.ravel()
    # 2000 independent draws from N(q_mean, q_sd^2): 4 standard errors.
    assert abs(draws.mean() - q_mean) < 4 * q_sd / np.sqrt(draws.size)
    assert abs(draws.std(ddof=1) / q_sd - 1) < 4 * np.sqrt(1 / (2 * (draws.size - 1)))
    # Independent draws in 4 chains: R-hat is about 1.
    assert (summary(data)["r_hat"] <= 1.01).all()


def test_svi_log_likelihood_and_predictive(svi_run):
    x, _, _, data = svi_run
    mu = get_group(data, "posterior")["loc"].values
    ll = get_group(data, "log_likelihood")["obs"].values
    np.testing.assert_allclose(ll, st.norm.logpdf(x.numpy(), mu[..., None], SIGMA), rtol=1e-12)
    resid = (get_group(data, "posterior_predictive")["obs"].values - mu[..., None]).ravel()
    assert abs(resid.mean()) < 4 * SIGMA / np.sqrt(resid.size)
    assert abs(resid.var(ddof=1) - SIGMA**2) < 4 * SIGMA**2 * np.sqrt(2 / (resid.size - 1))
    np.testing.assert_array_equal(get_group(data, "observed_data")["obs"].values, x.numpy())
    result = loo(data)
    exact = _exact_loo(x.numpy())
    assert abs(result.elpd - exact.sum()) < _psis_tolerance(ll.reshape(-1, N), mu.size) + 0.5
    # + 0.5 nats: the guide is the exact posterior only up to the optimiser's noise (a 0.25 sd
    # shift of the mean changes the LOO sum by about N * 0.25^2 s^2 / (2 sigma^2) < 0.01, and a
    # 15% wider scale by a similar amount), well inside.


def test_same_seed_same_draws(svi_run):
    x, g, guide, data = svi_run
    again = to_inference_data(g, x, guide=guide, num_chains=4, num_samples=500, seed=0)
    for group in ("posterior", "posterior_predictive"):
        a = get_group(data, group)
        b = get_group(again, group)
        for k in a.data_vars:
            np.testing.assert_array_equal(a[k].values, b[k].values)


# ---- dict of draws, other model shapes ---------------------------------------------------


class _Regression(PyroModule):
    """t ~ N(phi w, beta^-1) with w ~ N(0, alpha^-1 I); phi @ w does not broadcast over an
    outer plate of draws, so to_inference_data falls back to one run per draw."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = PyroSample(
            dist.Normal(torch.tensor(0.0, dtype=F64), 1.0).expand([dim]).to_event(1)
        )
        self.beta = 4.0

    @local_pyro_method
    def model(self, phi: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        mean = pyro.deterministic("mean", phi @ self.w)
        with data_plate(phi.shape[0]):
            return pyro.sample("obs", dist.Normal(mean, self.beta**-0.5), obs=t)


def test_dict_source_multivariate_gaussian():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(15, 3))
    g = Gaussian(3)
    g.to(F64)
    g.loc = PyroSample(dist.Normal(torch.zeros(3, dtype=F64), 10.0).to_event(1))
    draws = {"loc": rng.normal(size=(2, 7, 3))}
    data = to_inference_data(draws, x, module=g, parallel=True)
    pp = get_group(data, "posterior_predictive")["obs"]
    ll = get_group(data, "log_likelihood")["obs"]
    assert pp.dims == ("chain", "draw", "data", "obs_dim_1")
    assert pp.shape == (2, 7, 15, 3)
    assert ll.dims == ("chain", "draw", "data")
    assert get_group(data, "posterior")["loc"].dims == ("chain", "draw", "loc_dim_0")
    cov = (g.scale_tril @ g.scale_tril.T).detach().numpy()
    for c, d in [(0, 0), (1, 6)]:
        expected = st.multivariate_normal(draws["loc"][c, d], cov).logpdf(x)
        np.testing.assert_allclose(ll.values[c, d], expected, rtol=1e-12)


def test_parallel_and_sequential_agree():
    rng = np.random.default_rng(4)
    x = rng.normal(size=12)
    g = _gaussian_with_prior()
    draws = {"loc": rng.normal(size=(2, 5))}
    a = to_inference_data(draws, x, module=g, parallel=True)
    b = to_inference_data(draws, x, module=g, parallel=False)
    np.testing.assert_allclose(
        get_group(a, "log_likelihood")["obs"].values,
        get_group(b, "log_likelihood")["obs"].values,
        rtol=1e-14,
    )


def test_two_argument_model_falls_back_and_keeps_deterministic_sites():
    rng = np.random.default_rng(5)
    phi = rng.normal(size=(10, 2))
    t = rng.normal(size=10)
    m = _Regression(2)
    draws = {"w": rng.normal(size=(2, 4, 2))}
    # phi @ w cannot broadcast over a plate of draws: torch's own error, from the model.
    with pytest.raises(RuntimeError, match=r"Expected size .* batch2 tensor"):
        to_inference_data(draws, phi, t, module=m, parallel=True)
    data = to_inference_data(draws, phi, t, module=m)
    post = get_group(data, "posterior")
    assert post["mean"].shape == (2, 4, 10)
    np.testing.assert_allclose(post["mean"].values, draws["w"] @ phi.T, rtol=1e-12)
    ll = get_group(data, "log_likelihood")["obs"].values
    expected = st.norm.logpdf(t, draws["w"] @ phi.T, 0.5)
    np.testing.assert_allclose(ll, expected, rtol=1e-12)
    assert "mean" not in get_group(data, "log_likelihood")


class _SumModel(PyroModule):
    """x_n ~ N(w_1 + w_2, 1): ``w.sum()`` reduces over the draws' plate dimension too, so the
    model runs under a plate of draws but mixes them; the bridge must notice."""

    def __init__(self):
        super().__init__()
        self.w = PyroSample(dist.Normal(torch.tensor(0.0, dtype=F64), 1.0).expand([2]).to_event(1))

    @local_pyro_method
    def model(self, x: torch.Tensor) -> torch.Tensor:
        with data_plate(x.shape[0]):
            return pyro.sample("obs", dist.Normal(self.w.sum(), 1.0), obs=x)


def test_model_that_mixes_draws_is_detected():
    rng = np.random.default_rng(6)
    x = rng.normal(size=8)
    draws = {"w": rng.normal(size=(2, 3, 2))}
    with pytest.raises(Exception, match="does not broadcast over draws"):
        to_inference_data(draws, x, module=_SumModel(), parallel=True)
    data = to_inference_data(draws, x, module=_SumModel())
    expected = st.norm.logpdf(x, draws["w"].sum(-1)[..., None], 1.0)
    np.testing.assert_allclose(
        get_group(data, "log_likelihood")["obs"].values, expected, rtol=1e-12
    )


# ---- bad input ---------------------------------------------------------------------------


def test_bad_inputs():
    x = _data()
    g = _gaussian_with_prior()
    draws = {"loc": np.zeros((2, 3))}
    with pytest.raises(TypeError, match="source must be"):
        to_inference_data([1, 2, 3], x)
    with pytest.raises(ValueError, match="module is required"):
        to_inference_data(draws, x)
    with pytest.raises(ValueError, match="data is required"):
        to_inference_data(draws, module=g)
    with pytest.raises(ValueError, match="leading dimensions"):
        to_inference_data({"loc": np.zeros(3)}, x, module=g)
    with pytest.raises(ValueError, match="non-empty"):
        to_inference_data({}, x, module=g)
    with pytest.raises(ValueError, match="no posterior draws"):
        to_inference_data({"mu": np.zeros((2, 3))}, x, module=g)
    with pytest.raises(ValueError, match="does not sample"):
        to_inference_data({"loc": np.zeros((2, 3)), "w": np.zeros((2, 3))}, x, module=g)
    with pytest.raises(ValueError, match="observed_sites"):
        to_inference_data(draws, x, module=g, observed_sites=["y"])
    with pytest.raises(ValueError, match="guide has no latent"):
        to_inference_data(g, x)  # Gaussian's own guide is the empty (maximum-likelihood) one
    with pytest.raises(ValueError, match="num_chains"):
        to_inference_data(g, x, guide=AutoNormal(g.model), num_chains=0)
    with pytest.raises(ValueError, match="not also as module"):
        to_inference_data(g, x, module=_gaussian_with_prior())
    with pytest.raises(ValueError, match="x must be 1-D"):
        to_inference_data(draws, np.zeros((4, 2)), module=g)


# ---- the workflow's steps ----------------------------------------------------------------


def test_prior_predictive_moments_match_the_prior():
    x = _data()
    g = _gaussian_with_prior()
    data = prior_predictive(g, x, num_samples=1000, num_chains=2, seed=0)
    assert _arviz.group_names(data) == ["prior", "prior_predictive", "observed_data"]
    mu = get_group(data, "prior")["loc"].values
    pp = get_group(data, "prior_predictive")["obs"]
    assert pp.dims == ("chain", "draw", "data") and pp.shape == (2, 1000, N)
    np.testing.assert_array_equal(get_group(data, "observed_data")["obs"].values, x.numpy())
    # 2000 independent prior draws of mu ~ N(0, tau^2): mean and variance within 4
    # standard errors (tau / sqrt(S) and tau^2 sqrt(2 / (S - 1))).
    s = mu.size
    assert abs(mu.mean()) < 4 * TAU / np.sqrt(s)
    assert abs(mu.var(ddof=1) - TAU**2) < 4 * TAU**2 * np.sqrt(2 / (s - 1))
    # Given mu_s the replicated points are N(mu_s, sigma^2): residuals as in the MCMC test.
    resid = (pp.values - mu[..., None]).ravel()
    assert abs(resid.mean()) < 4 * SIGMA / np.sqrt(resid.size)
    assert abs(resid.var(ddof=1) - SIGMA**2) < 4 * SIGMA**2 * np.sqrt(2 / (resid.size - 1))
    again = prior_predictive(g, x, num_samples=1000, num_chains=2, seed=0)
    np.testing.assert_array_equal(get_group(again, "prior_predictive")["obs"].values, pp.values)


def test_prior_predictive_bad_input():
    x = _data()
    with pytest.raises(ValueError, match="no latent sample sites"):
        prior_predictive(Gaussian(event_dim=0), x)
    with pytest.raises(ValueError, match="num_samples"):
        prior_predictive(_gaussian_with_prior(), x, num_samples=0)
    with pytest.raises(ValueError, match="data is required"):
        prior_predictive(_gaussian_with_prior())


def test_posterior_predictive_adds_prior_groups(nuts_run):
    x, mcmc, data = nuts_run
    g = _gaussian_with_prior()
    prior = prior_predictive(g, x, num_samples=50, num_chains=1, seed=0)
    both = posterior_predictive(mcmc, prior=prior)
    assert set(_arviz.group_names(both)) == {
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "sample_stats",
        "observed_data",
        "prior",
        "prior_predictive",
    }
    for group in ("posterior", "log_likelihood", "posterior_predictive"):
        for var, value in get_group(data, group).data_vars.items():
            np.testing.assert_array_equal(get_group(both, group)[var].values, value.values)
    np.testing.assert_array_equal(
        get_group(both, "prior")["loc"].values, get_group(prior, "prior")["loc"].values
    )
    assert get_group(both, "prior_predictive")["obs"].dims == ("chain", "draw", "data")
    with pytest.raises(ValueError, match="prior must hold a 'prior' group"):
        posterior_predictive(mcmc, prior=data)


def test_compare_nuts_and_svi_against_exact_loo(nuts_run, svi_run):
    x, mcmc, nuts_data = nuts_run
    _, _, _, svi_data = svi_run
    # A third model with a prior far from the data: mu ~ N(-5, 0.5^2). Its posterior is
    # conjugate too (exact draws from the dict source), and it must rank last.
    prec = 1 / 0.5**2 + N / SIGMA**2
    m_bad = float((-5 / 0.5**2 + x.sum() / SIGMA**2) / prec)
    rng = np.random.default_rng(0)
    g = _gaussian_with_prior()
    bad = to_inference_data({"loc": rng.normal(m_bad, prec**-0.5, (2, 500))}, x, module=g)
    table = compare({"nuts": mcmc, "svi": svi_data, "tight prior at -5": bad})
    assert table.index[-1] == "tight prior at -5"
    assert list(table.columns[:5]) == ["rank", "elpd", "se", "p", "elpd_diff"]
    exact = _exact_loo(x.numpy()).sum()
    ll = get_group(nuts_data, "log_likelihood")["obs"].values.reshape(-1, N)
    ess = float(summary(nuts_data).loc["loc", "ess_bulk"])
    # The NUTS row is PSIS-LOO of the same draws as loo(nuts_data): same tolerance as there.
    assert abs(table.loc["nuts", "elpd"] - exact) < _psis_tolerance(ll, ess)
    np.testing.assert_allclose(table.loc["nuts", "elpd"], loo(nuts_data).elpd, rtol=1e-10)
    # The third model's exact LOO: the same conjugate formulas under its prior N(-5, 0.5^2).
    xs = x.numpy()
    exact_bad = 0.0
    for n in range(N):
        rest = np.delete(xs, n)
        p_n = 1 / 0.5**2 + (N - 1) / SIGMA**2
        m_n = (-5 / 0.5**2 + rest.sum() / SIGMA**2) / p_n
        exact_bad += st.norm.logpdf(xs[n], m_n, np.sqrt(SIGMA**2 + 1 / p_n))
    ll_bad = get_group(bad, "log_likelihood")["obs"].values.reshape(-1, N)
    err = abs(table.loc["tight prior at -5", "elpd"] - exact_bad)
    assert err < _psis_tolerance(ll_bad, ll_bad.shape[0])  # independent draws: ESS = S
    with pytest.raises(ValueError, match="at least two"):
        compare({"nuts": mcmc})
    with pytest.raises(ValueError, match="method must be one of"):
        compare({"a": mcmc, "b": bad}, method="bic")
    with pytest.raises(TypeError, match=r"models_and_data\['b'\] must be ArviZ data"):
        compare({"a": mcmc, "b": g})
    short = to_inference_data({"loc": np.zeros((2, 5))}, x[:10], module=g)
    with pytest.raises(ValueError, match="same observations"):
        compare({"a": bad, "b": short})


# A model with a strongly correlated Gaussian posterior: regression on two nearly collinear
# features, w ~ N(0, I), known noise precision 4 (posterior correlation about -0.95).
def _collinear():
    from ppl_models.regression import LinearRegression, posterior

    g = torch.Generator().manual_seed(0)
    u = torch.randn(20, generator=g, dtype=F64)
    phi = torch.stack([u, u + 0.3 * torch.randn(20, generator=g, dtype=F64)], 1)
    t = phi @ torch.tensor([1.0, -0.5], dtype=F64) + 0.5 * torch.randn(20, generator=g, dtype=F64)
    return LinearRegression(2, alpha=1.0, beta=4.0), phi, t, posterior(phi, t, 1.0, 4.0)


def _k_tolerance(k: float, num_particles: int) -> float:
    """3 standard errors of a generalized-Pareto shape fitted to the M = 3 sqrt(S) largest
    of S weights: the maximum-likelihood shape has asymptotic sd (1 + k) / sqrt(M)."""
    return 3 * (1 + k) / np.sqrt(3 * np.sqrt(num_particles))


@pytest.mark.parametrize("k", [0.2, 0.5, 0.8])
def test_check_guide_k_hat_matches_gaussian_theory(k):
    # Posterior N(m, s^2) of the conjugate Gaussian; guide N(m, (1 - k) s^2), narrower: the
    # ratios p/q have the Pareto tail index 1 / (1 - s_q^2 / s^2) = 1 / k.
    x = _data()
    g = _gaussian_with_prior()
    m, s = _posterior(x.numpy())
    sq = s * np.sqrt(1 - k)

    def guide(x):
        return pyro.sample("loc", dist.Normal(torch.tensor(m, dtype=F64), sq))

    table = check_guide(g, x, guide=guide, num_particles=10000, seed=0)
    assert abs(table.loc["guide", "k_hat"] - k) < _k_tolerance(k, 10000)


def test_check_guide_flags_mean_field_on_correlated_posterior():
    model, phi, t, post = _collinear()
    cov = post.covariance
    rho = float(cov[0, 1] / cov.diagonal().sqrt().prod())
    assert rho < -0.9
    # The mean-field optimum of KL(q || p) for a Gaussian p: the exact mean, variances
    # 1 / Lambda_ii (Lambda the posterior precision). Theory: k = 1 - 1/lambda_max of
    # Sigma_q^-1 Sigma_p = |rho| for two dimensions.
    sd_q = torch.linalg.inv(cov).diagonal().rsqrt()

    def mean_field(phi, t=None):
        pyro.sample("w", dist.Normal(post.mean, sd_q).to_event(1))

    def exactish(phi, t=None):  # the exact posterior with 5% too little variance
        pyro.sample("w", dist.MultivariateNormal(post.mean, 0.95 * cov))

    table = check_guide(
        model, phi, t, guide={"mean-field": mean_field, "full": exactish}, num_particles=10000
    )
    assert table.loc["mean-field", "verdict"] in ("bad", "very bad")
    # k-hat estimates are biased low near 1; 3 standard errors below the theory still > 0.7.
    assert table.loc["mean-field", "k_hat"] > abs(rho) - _k_tolerance(abs(rho), 10000)
    assert table.loc["mean-field", "k_hat"] > 0.7
    # Full covariance shrunk by 0.95: k = 1 - 0.95 = 0.05.
    assert abs(table.loc["full", "k_hat"] - 0.05) < _k_tolerance(0.05, 10000)
    assert table.loc["full", "verdict"] == "good"


def test_check_guide_on_the_exact_posterior_has_no_tail():
    # log p(w, t) - log q(w) = log p(t) for every draw when q is the posterior: the weights
    # are equal up to rounding, PSIS has no tail to fit, and the verdict is "good".
    model, phi, t, post = _collinear()

    def exact(phi, t=None):
        pyro.sample("w", dist.MultivariateNormal(post.mean, post.covariance))

    table = check_guide(model, phi, t, guide=exact, num_particles=2000)
    assert table.loc["guide", "k_hat"] < 0.5  # rounding noise only: no heavy tail
    assert table.loc["guide", "verdict"] == "good"
    # Weights equal to the last bit (as a Laplace guide on a linear-Gaussian model gives)
    # tie with the tail's cutoff: no tail to fit, k = -inf rather than an error.
    from ppl_models.workflow.diagnostics import _pareto_k

    assert _pareto_k(torch.zeros(2000, dtype=F64)) == float("-inf")


@pytest.mark.slow
def test_check_guide_on_guides_fitted_by_svi():
    # The same verdicts for guides fitted by SVI: AutoNormal converges to the mean-field
    # optimum (k = |rho| = 0.95), AutoMultivariateNormal to the posterior itself (k = 0).
    from pyro.infer.autoguide import AutoMultivariateNormal

    _, phi, t, _ = _collinear()
    mf_model, full_model = _collinear()[0], _collinear()[0]
    mf = AutoNormal(mf_model.model)
    fit_svi(mf_model, phi, t, guide=mf, loss="meanfield", num_steps=600, lr=0.03,
            num_particles=8, seed=0, tol=0, progress=False)  # fmt: skip
    full = AutoMultivariateNormal(full_model.model)
    fit_svi(full_model, phi, t, guide=full, num_steps=600, lr=0.03, num_particles=8,
            seed=0, tol=0, progress=False)  # fmt: skip
    assert check_guide(mf_model, phi, t, guide=mf, num_particles=4000).k_hat.iloc[0] > 0.7
    assert check_guide(full_model, phi, t, guide=full, num_particles=4000).k_hat.iloc[0] < 0.5


def test_check_guide_bad_input():
    x = _data()
    g = _gaussian_with_prior()
    with pytest.raises(ValueError, match="num_particles must be an integer >= 100"):
        check_guide(g, x, guide=AutoNormal(g.model), num_particles=50)
    with pytest.raises(ValueError, match="no latent sample sites"):
        check_guide(g, x)  # the module's own guide is empty (maximum likelihood)
    with pytest.raises(TypeError, match="guide 'a' must be callable"):
        check_guide(g, x, guide={"a": 3})
    with pytest.raises(ValueError, match="data is required"):
        check_guide(g, guide=AutoNormal(g.model))


def test_workflow_plots(nuts_run, svi_run):
    from ppl_models import plots

    x, mcmc, data = nuts_run
    prior = prior_predictive(_gaussian_with_prior(), x, num_samples=50, seed=0)
    both = posterior_predictive(mcmc, prior=prior)
    fig = plots.plot_predictive_overlay(both, num_samples=5)
    assert [ax.get_title() for ax in fig.axes] == ["prior predictive", "posterior predictive"]
    assert len(fig.axes[0].lines) == 6  # 5 replicated data sets and the observed one
    fig = plots.plot_trace_rank(data)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2  # one trace per chain
    fig = plots.plot_forest({"NUTS": data, "SVI": svi_run[3]})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["loc"]
    fig = plots.plot_loo_pit(data)
    title = fig.axes[0].get_title()
    # NUTS draws of the right model: the LOO-PIT ECDF stays inside the 99% uniform band.
    assert float(title.split("= ")[-1]) < 1.63 / np.sqrt(N)
    # The figures' bad-input paths: tests/test_arviz_bridge.py, on both ArviZ generations.
    import matplotlib.pyplot as plt

    plt.close("all")


def test_linear_gaussian_loo_matches_refitting_without_each_point():
    from ppl_models.datasets import make_sin_data
    from ppl_models.regression import linear_gaussian_loo, polynomial_features

    x, t = make_sin_data(12, noise_std=0.3, seed=0)
    phi = polynomial_features(x, 3).numpy()
    tn = t.numpy()
    alpha, beta = 5e-3, 11.1
    got = linear_gaussian_loo(phi, tn, alpha, beta)
    assert got.dtype == F64
    # Independent route: the posterior from the other N - 1 points (PRML 3.53-3.54, numpy)
    # and its predictive density at the left-out point (PRML 3.58-3.59, scipy).
    expected = np.empty(len(tn))
    for n in range(len(tn)):
        keep = np.arange(len(tn)) != n
        s_inv = alpha * np.eye(4) + beta * phi[keep].T @ phi[keep]
        mean = beta * np.linalg.solve(s_inv, phi[keep].T @ tn[keep])
        var = 1 / beta + phi[n] @ np.linalg.solve(s_inv, phi[n])
        expected[n] = st.norm.logpdf(tn[n], phi[n] @ mean, np.sqrt(var))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="alpha must be positive"):
        linear_gaussian_loo(phi, tn, 0.0, beta)
    with pytest.raises(ValueError, match="same number of rows"):
        linear_gaussian_loo(phi, tn[:5], alpha, beta)


def test_to_inference_data_needs_the_module_for_a_potential_function_run():
    # An MCMC run built on a bare potential function has no model to evaluate the
    # log-likelihood and predictions with: a clear error, and module= fixes it. (run_nuts
    # records its module on the run, so its closed-form potentials need no module=.)
    from pyro.infer import MCMC, NUTS

    x = torch.randn(15, dtype=torch.float64)
    g = Gaussian(event_dim=0).double()
    g.loc = PyroSample(dist.Normal(torch.tensor(0.0, dtype=torch.float64), 10.0))

    def potential(z):
        return -(
            dist.Normal(z["loc"], 1.0).log_prob(x).sum() + dist.Normal(0.0, 10.0).log_prob(z["loc"])
        )

    mcmc = MCMC(
        NUTS(potential_fn=potential), num_samples=5, warmup_steps=5, num_chains=1,
        initial_params={"loc": torch.tensor(0.0, dtype=torch.float64)}, disable_progbar=True,
    )  # fmt: skip
    mcmc.run()
    with pytest.raises(ValueError, match="potential function, not a model: pass module="):
        to_inference_data(mcmc)
    idata = to_inference_data(mcmc, x, module=g)
    assert dict(get_group(idata, "log_likelihood")["obs"].sizes) == {
        "chain": 1, "draw": 5, "data": 15,
    }  # fmt: skip
