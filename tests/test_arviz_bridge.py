"""ppl_models._arviz with numpy and scipy only: runs with ArviZ 0.x (InferenceData) and in
the light Python 3.12 job with ArviZ 1.x (xarray.DataTree), where torch is not installed.

Model for the LOO check (conjugate normal with known variance, PRML 2.141-2.142):
mu ~ N(0, tau^2), x_n | mu ~ N(mu, sigma^2). The posterior is N(m_N, s_N^2) with
1/s_N^2 = 1/tau^2 + N/sigma^2, m_N = s_N^2 sum(x)/sigma^2, so exact posterior draws are
available, and the leave-one-out predictive is N(x_n | m_-n, sigma^2 + s_-n^2) exactly.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.stats as st

from ppl_models import _arviz

pytestmark = pytest.mark.arviz

SIGMA = 2.0
TAU = 10.0


def _posterior(x: np.ndarray) -> tuple[float, float]:
    prec = 1 / TAU**2 + len(x) / SIGMA**2
    return float(x.sum() / SIGMA**2 / prec), float(prec**-0.5)


def _conjugate_data(chains: int, draws: int, n: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, SIGMA, size=n)
    m, s = _posterior(x)
    mu = rng.normal(m, s, size=(chains, draws))
    ll = st.norm.logpdf(x, mu[..., None], SIGMA)
    pp = rng.normal(mu[..., None], SIGMA, size=(chains, draws, n))
    data = _arviz.from_arrays(
        {"mu": mu},
        posterior_predictive={"obs": pp},
        log_likelihood={"obs": ll},
        observed_data={"obs": x},
        dims={"obs": ["data"]},
    )
    return x, mu, ll, data


def test_no_torch_imported():
    # The light job has no torch; here it must not be pulled in by the bridge either.
    assert "ppl_models._arviz" in sys.modules
    if "torch" not in sys.modules:
        return
    import importlib
    import subprocess

    code = "import sys, ppl_models._arviz; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert importlib.import_module("ppl_models._arviz") is _arviz


def test_arviz_major_matches_installed_version():
    import arviz

    assert _arviz.arviz_major() == int(arviz.__version__.split(".")[0])


def test_from_arrays_builds_the_groups():
    x, mu, ll, data = _conjugate_data(chains=3, draws=40)
    assert _arviz.group_names(data) == [
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "observed_data",
    ]
    post = _arviz.get_group(data, "posterior")
    assert post["mu"].dims == ("chain", "draw")
    np.testing.assert_array_equal(post["mu"].values, mu)
    for group in ("posterior_predictive", "log_likelihood"):
        obs = _arviz.get_group(data, group)["obs"]
        assert obs.dims == ("chain", "draw", "data")
        assert obs.shape == (3, 40, 20)
    np.testing.assert_array_equal(_arviz.get_group(data, "log_likelihood")["obs"].values, ll)
    observed = _arviz.get_group(data, "observed_data")["obs"]
    assert observed.dims == ("data",)
    np.testing.assert_array_equal(observed.values, x)


def test_from_arrays_names_all_dims_and_trims_for_shorter_variables():
    rng = np.random.default_rng(1)
    data = _arviz.from_arrays(
        {"w": rng.normal(size=(2, 5, 3))},
        posterior_predictive={"obs": rng.normal(size=(2, 5, 4, 3))},
        log_likelihood={"obs": rng.normal(size=(2, 5, 4))},
        sample_stats={"diverging": np.zeros((2, 5), dtype=bool)},
        dims={"w": ["w_dim_0"], "obs": ["data", "obs_dim_1"]},
        coords={"data": [10, 11, 12, 13]},
    )
    assert _arviz.get_group(data, "posterior")["w"].dims == ("chain", "draw", "w_dim_0")
    pp = _arviz.get_group(data, "posterior_predictive")["obs"]
    assert pp.dims == ("chain", "draw", "data", "obs_dim_1")
    assert list(pp["data"].values) == [10, 11, 12, 13]
    assert _arviz.get_group(data, "log_likelihood")["obs"].dims == ("chain", "draw", "data")
    assert _arviz.get_group(data, "sample_stats")["diverging"].dtype == bool


def test_from_arrays_bad_input():
    good = {"mu": np.zeros((2, 10))}
    with pytest.raises(ValueError, match="posterior must be a non-empty dict"):
        _arviz.from_arrays({})
    with pytest.raises(TypeError, match="posterior must be a dict"):
        _arviz.from_arrays([np.zeros((2, 10))])
    with pytest.raises(ValueError, match=r"posterior\['mu'\] must have leading dimensions"):
        _arviz.from_arrays({"mu": np.zeros(10)})
    with pytest.raises(ValueError, match=r"log_likelihood\['obs'\] must have \(chain, draw\)"):
        _arviz.from_arrays(good, log_likelihood={"obs": np.zeros((2, 9, 4))})
    with pytest.raises(TypeError, match=r"posterior\['mu'\] must hold real numbers"):
        _arviz.from_arrays({"mu": np.array([["a", "b"], ["c", "d"]])})
    with pytest.raises(TypeError, match="must have str keys"):
        _arviz.from_arrays({0: np.zeros((2, 10))})
    with pytest.raises(KeyError, match="no group 'posterior_predictive'"):
        _arviz.get_group(_arviz.from_arrays(good), "posterior_predictive")


def test_summary_rhat_near_one_on_exact_draws():
    # 4 chains of 1000 independent draws: split R-hat - 1 is of order 1/1000; 1.01 is the
    # threshold Vehtari et al. (2021) recommend.
    _, _, _, data = _conjugate_data(chains=4, draws=1000)
    table = _arviz.summary(data)
    assert list(table.index) == ["mu"]
    assert table.loc["mu", "r_hat"] <= 1.01
    # Independent draws: ESS is about the number of draws (4000); 4 sd of its sampling
    # spread is far below a 50% loss.
    assert table.loc["mu", "ess_bulk"] > 2000
    np.testing.assert_allclose(_arviz.rhat(data)["mu"], table.loc["mu", "r_hat"], rtol=1e-12)


def test_summary_flags_chains_that_disagree():
    rng = np.random.default_rng(2)
    # Two chains stuck 2 sd away from the other two: the check must be able to fail.
    mu = rng.normal(size=(4, 500)) + np.array([0.0, 0.0, 2.0, 2.0])[:, None]
    table = _arviz.summary(_arviz.from_arrays({"mu": mu}))
    assert table.loc["mu", "r_hat"] > 1.1


def test_summary_columns_and_vector_variables():
    rng = np.random.default_rng(3)
    data = _arviz.from_arrays({"w": rng.normal(size=(2, 300, 2)), "b": rng.normal(size=(2, 300))})
    table = _arviz.summary(data, var_names=["w"])
    assert list(table.index) == ["w[0]", "w[1]"]
    assert list(table.columns) == [
        "mean",
        "sd",
        "mcse_mean",
        "mcse_sd",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ]
    assert table.dtypes.map(lambda d: d.kind == "f").all()
    # Exact mean of N(0, 1) draws is 0: within 4 Monte-Carlo standard errors.
    assert (table["mean"].abs() < 4 * table["mcse_mean"]).all()


def test_loo_matches_exact_leave_one_out():
    chains, draws, n = 4, 2000, 20
    x, _, ll, data = _conjugate_data(chains=chains, draws=draws, n=n, seed=5)
    exact_i = np.empty(n)
    for i in range(n):
        m, s = _posterior(np.delete(x, i))
        exact_i[i] = st.norm.logpdf(x[i], m, np.sqrt(SIGMA**2 + s**2))
    result = _arviz.loo(data)
    assert np.isfinite(result.elpd)
    assert result.n_samples == chains * draws
    assert result.n_data_points == n
    assert result.elpd_i.shape == (n,)
    assert result.pareto_k.shape == (n,)
    assert (result.pareto_k < 0.7).all()  # the importance ratios have finite variance here
    np.testing.assert_allclose(result.elpd, result.elpd_i.sum(), rtol=1e-10)
    # Tolerance: PSIS on S independent draws estimates log p(x_i | x_-i) = -log E[r_i],
    # r_si = 1/p(x_i | mu_s), with Monte-Carlo standard error sd(r_i) / (sqrt(S) mean(r_i))
    # (delta method; Pareto smoothing only lowers the variance). Errors of different i share
    # the draws, so the sum's standard error is bounded by the sum of theirs: 4 x that bound.
    r = np.exp(-(ll - ll.max(axis=(0, 1)))).reshape(-1, n)
    se_i = r.std(axis=0) / (np.sqrt(r.shape[0]) * r.mean(axis=0))
    assert abs(result.elpd - exact_i.sum()) < 4 * se_i.sum()
    np.testing.assert_array_less(np.abs(result.elpd_i - exact_i), 4 * se_i)
    # p_loo = lppd - elpd_loo is about the number of parameters (1) for this regular model.
    assert 0.5 < result.p < 2.0


def test_loo_needs_var_name_with_two_observed_variables():
    _, mu, ll, _ = _conjugate_data(chains=2, draws=200)
    data = _arviz.from_arrays({"mu": mu}, log_likelihood={"a": ll, "b": ll})
    with pytest.raises((TypeError, ValueError), match=r"var_name|variable"):
        _arviz.loo(data, quiet=True)
    single = _arviz.loo(data, var_name="a", quiet=True)
    other = _arviz.loo(data, var_name="b", quiet=True)
    np.testing.assert_allclose(single.elpd, other.elpd, rtol=1e-12)


# ---- prior groups, compare, LOO-PIT ------------------------------------------------------


def test_from_arrays_prior_groups_without_posterior():
    rng = np.random.default_rng(7)
    data = _arviz.from_arrays(
        None,
        prior={"mu": rng.normal(size=(1, 50))},
        prior_predictive={"obs": rng.normal(size=(1, 50, 6))},
        observed_data={"obs": np.zeros(6)},
        dims={"obs": ["data"]},
    )
    assert _arviz.group_names(data) == ["prior", "prior_predictive", "observed_data"]
    assert _arviz.get_group(data, "prior_predictive")["obs"].dims == ("chain", "draw", "data")
    # Prior and posterior groups may have different (chain, draw); within each they agree.
    both = _arviz.from_arrays(
        {"mu": rng.normal(size=(2, 30))}, prior={"mu": rng.normal(size=(1, 50))}
    )
    assert dict(_arviz.get_group(both, "prior").sizes) == {"chain": 1, "draw": 50}
    with pytest.raises(ValueError, match=r"prior_predictive\['obs'\] must have \(chain, draw\)"):
        _arviz.from_arrays(
            None,
            prior={"mu": np.zeros((1, 50))},
            prior_predictive={"obs": np.zeros((1, 40, 6))},
        )
    with pytest.raises(ValueError, match="posterior must be a non-empty dict"):
        _arviz.from_arrays(None)


def _model_data(shift: float, x: np.ndarray, draws: int, seed: int):
    """Exact posterior draws of the conjugate model, shifted by ``shift`` posterior means."""
    rng = np.random.default_rng(seed)
    m, s = _posterior(x)
    mu = rng.normal(m + shift, s, size=(4, draws))
    ll = st.norm.logpdf(x, mu[..., None], SIGMA)
    pp = rng.normal(mu[..., None], SIGMA, size=(4, draws, len(x)))
    data = _arviz.from_arrays(
        {"mu": mu},
        posterior_predictive={"obs": pp},
        log_likelihood={"obs": ll},
        observed_data={"obs": x},
        dims={"obs": ["data"]},
    )
    return data, ll


def test_compare_table_matches_loo_of_each_model():
    x = np.random.default_rng(8).normal(1.0, SIGMA, size=25)
    good, _ = _model_data(0.0, x, 1000, seed=9)
    shifted, _ = _model_data(1.5, x, 1000, seed=10)
    table = _arviz.compare({"shifted": shifted, "exact": good}, quiet=True)
    assert list(table.index) == ["exact", "shifted"]
    assert list(table.columns) == [
        "rank",
        "elpd",
        "se",
        "p",
        "elpd_diff",
        "dse",
        "weight",
        "max_pareto_k",
        "warning",
    ]
    assert list(table["rank"]) == [0, 1]
    # Same PSIS computation as loo(): equal up to floating-point summation order.
    for name, d in [("exact", good), ("shifted", shifted)]:
        np.testing.assert_allclose(table.loc[name, "elpd"], _arviz.loo(d).elpd, rtol=1e-10)
    np.testing.assert_allclose(
        table["elpd_diff"].to_numpy(), table["elpd"].max() - table["elpd"].to_numpy(), atol=0
    )
    assert table.loc["exact", "elpd_diff"] == 0.0 and table.loc["shifted", "elpd_diff"] > 0
    np.testing.assert_allclose(table["weight"].sum(), 1.0, rtol=1e-8)
    assert not table["warning"].any()


def test_compare_bad_input():
    x = np.random.default_rng(8).normal(size=10)
    d, _ = _model_data(0.0, x, 100, seed=1)
    with pytest.raises(ValueError, match="at least two models"):
        _arviz.compare({"a": d})
    with pytest.raises(ValueError, match="method must be one of"):
        _arviz.compare({"a": d, "b": d}, method="aic")
    no_ll = _arviz.from_arrays({"mu": np.zeros((2, 10))})
    with pytest.raises(ValueError, match=r"datasets\['b'\] has no log_likelihood"):
        _arviz.compare({"a": d, "b": no_ll})
    if _arviz.arviz_major() >= 1:
        with pytest.raises(ValueError, match="waic"):
            _arviz.compare({"a": d, "b": d}, method="waic")


def test_loo_pit_matches_exact_leave_one_out_pit():
    n = 20
    x = np.random.default_rng(11).normal(1.0, SIGMA, size=n)
    data, ll = _model_data(0.0, x, 2000, seed=12)
    u = _arviz.loo_pit(data)
    assert u.shape == (n,)
    exact = np.empty(n)
    for i in range(n):
        m, s = _posterior(np.delete(x, i))
        exact[i] = st.norm.cdf(x[i], m, np.sqrt(SIGMA**2 + s**2))
    # u_n is a weighted mean of indicators, so its Monte-Carlo standard error is at most
    # 0.5 / sqrt(ESS_n), with ESS_n = 1 / sum_s w_sn^2 of the self-normalised importance
    # weights w_sn ~ 1 / p(x_n | mu_s) (the Pareto smoothing only lowers the variance);
    # the posterior predictive draws add the same order again: 2 x 4 standard errors.
    w = np.exp(-(ll - ll.max(axis=(0, 1)))).reshape(-1, n)
    w /= w.sum(axis=0)
    ess = 1.0 / (w**2).sum(axis=0)
    np.testing.assert_array_less(np.abs(u - exact), 8 * 0.5 / np.sqrt(ess))
    with pytest.raises(ValueError, match="loo_pit needs the groups"):
        _arviz.loo_pit(_arviz.from_arrays({"mu": np.zeros((2, 10))}))


def test_workflow_plots_on_either_arviz_generation():
    """The workflow figures read ArviZ data through numpy only, so they draw the same from
    InferenceData (0.x) and DataTree (1.x); this runs in both jobs. Exact conjugate draws:
    the LOO-PIT ECDF of the right model stays within the 99% uniform band (1.63 / sqrt N,
    the Kolmogorov-Smirnov quantile), and a model shifted by 10 posterior sd leaves it."""
    import matplotlib

    matplotlib.use("Agg")
    from ppl_models import plots

    n = 200
    x, mu, ll, data = _conjugate_data(2, 500, n=n, seed=3)
    prior_mu = np.random.default_rng(4).normal(0.0, TAU, size=(1, 100))
    both = _arviz.from_arrays(
        {"mu": mu},
        posterior_predictive={"obs": _arviz.get_group(data, "posterior_predictive")["obs"].values},
        log_likelihood={"obs": ll},
        observed_data={"obs": x},
        prior={"mu": prior_mu},
        prior_predictive={
            "obs": np.random.default_rng(5).normal(prior_mu[..., None], SIGMA, size=(1, 100, n))
        },
        dims={"obs": ["data"]},
    )
    fig = plots.plot_predictive_overlay(both, num_samples=5)
    assert [ax.get_title() for ax in fig.axes] == ["prior predictive", "posterior predictive"]
    assert len(fig.axes[1].lines) == 6  # 5 replicated data sets and the observed one
    fig = plots.plot_trace_rank(data)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2  # one trace per chain
    assert len(fig.axes[1].patches) == 2  # one rank histogram (a step polygon) per chain
    fig = plots.plot_forest({"exact": data, "again": data})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["mu"]
    m, s = _posterior(x)
    # The dot is the posterior mean of the draws: within 4 Monte-Carlo standard errors.
    dot = fig.axes[0].lines[2].get_xdata()[0]
    assert abs(dot - m) < 4 * s / np.sqrt(mu.size)
    fig = plots.plot_loo_pit(data)
    assert float(fig.axes[0].get_title().split("= ")[-1]) < 1.63 / np.sqrt(n)
    # A model whose mean is off by 10 posterior sd, 10 / sqrt(N) sd of one observation's
    # predictive: the ECDF moves by about phi(0) * 10 / sqrt(N) = 4 / sqrt(N) near the
    # median, well outside the band.
    far_mu = mu + 10 * s
    far = _arviz.from_arrays(
        {"mu": far_mu},
        posterior_predictive={
            "obs": np.random.default_rng(7).normal(far_mu[..., None], SIGMA, size=(2, 500, n))
        },
        log_likelihood={"obs": st.norm.logpdf(x, far_mu[..., None], SIGMA)},
        observed_data={"obs": x},
        dims={"obs": ["data"]},
    )
    assert float(plots.plot_loo_pit(far).axes[0].get_title().split("= ")[-1]) > 1.63 / np.sqrt(n)
    fig = plots.plot_ppc(far, num_samples=5)
    # The far model's replicated means sit above the observed one: p = P(T_rep >= T_obs) ~ 1.
    assert fig.axes[1].get_title().startswith("T = mean: p = 1.00")
    with pytest.raises(ValueError, match="prior_predictive or posterior_predictive"):
        plots.plot_predictive_overlay(_arviz.from_arrays({"mu": np.zeros((2, 5))}))
    with pytest.raises(ValueError, match="prob must be in"):
        plots.plot_forest(data, prob=1.5)
    with pytest.raises(ValueError, match="var_names: 'w' is not in the posterior"):
        plots.plot_trace_rank(data, var_names=["w"])
    import matplotlib.pyplot as plt

    plt.close("all")
