"""run_nuts's fast sampler (nutpie driven by torch potentials) and the closed-form
potentials of the topic modules with priors.

References: Pyro's own potential energy and its autograd gradient (the potentials), the
conjugate Normal-Gamma posterior (the Gaussian), and Pyro's NUTS (slow tier).
"""

from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.mcmc.util import initialize_model
from pyro.ops.integrator import potential_grad

from ppl_models.gaussian import BayesianGaussian, NormalGammaParams, normal_gamma_posterior
from ppl_models.inference import NutsRun, run_nuts
from ppl_models.logistic import LogisticRegression
from ppl_models.regression import LinearRegression
from ppl_models.workflow import get_group, to_inference_data


def _design(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    phi = torch.randn(n, 3, generator=g, dtype=torch.float64)
    t = phi @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    return phi, t + torch.randn(n, generator=g, dtype=torch.float64)


def _modules():
    phi, t = _design()
    return {
        "regression, w and beta priors": (
            LinearRegression(3, alpha=2.0, beta_prior=(2.0, 3.0)),
            (phi, t),
        ),
        "regression, known beta": (LinearRegression(3, alpha=2.0, beta=4.0), (phi, t)),
        "regression, beta prior only": (LinearRegression(3, beta_prior=(2.0, 3.0)), (phi, t)),
        "logistic": (LogisticRegression(3, prior_precision=1.5), (phi, (t > 0).double())),
        "gaussian": (BayesianGaussian(NormalGammaParams(0.5, 2.0, 3.0, 1.5)), (t,)),
    }


@pytest.mark.parametrize("name", list(_modules()))
def test_closed_form_potentials_equal_pyros_potential_and_gradient(name):
    # float64 at points around Pyro's initial point: the sufficient statistics and the
    # closed-form derivatives against Pyro's per-row densities and autograd differ by
    # summation rounding only (bound 1e-10 relative; measured 0 to 2e-15).
    module, data = _modules()[name]
    module = module.double()
    init, reference, _, _ = initialize_model(module.model, model_args=data)
    potential = module.nuts_potential(*data)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        z = {k: v.detach() + 0.5 * torch.randn(v.shape, generator=g, dtype=v.dtype)
             for k, v in init.items()}  # fmt: skip
        g_ref, v_ref = potential_grad(
            reference, {k: v.clone().requires_grad_() for k, v in z.items()}
        )
        value, grads = potential.value_and_grad(z)
        assert float(value) == pytest.approx(float(v_ref), rel=1e-10)
        assert set(grads) == set(g_ref)
        for k in g_ref:
            torch.testing.assert_close(
                grads[k], g_ref[k], rtol=1e-10, atol=1e-10 * float(g_ref[k].abs().max())
            )
        # Called as a function, the same value with the closed-form gradient attached.
        zz = {k: v.clone().requires_grad_() for k, v in z.items()}
        auto = torch.autograd.grad(potential(zz), list(zz.values()))
        for k, a in zip(zz, auto, strict=True):
            torch.testing.assert_close(a, grads[k], rtol=0, atol=0)


def test_the_modules_without_priors_have_no_potential():
    phi, t = _design()
    assert LinearRegression(3).nuts_potential(phi, t) is None
    assert LogisticRegression(3).nuts_potential(phi, (t > 0).double()) is None


def _gaussian_run(seed=0, **kwargs):
    x = torch.from_numpy(np.random.default_rng(3).normal(1.0, 2.0, size=200))
    prior = NormalGammaParams(0.0, 1.0, 2.0, 2.0)
    m = BayesianGaussian(prior).double()
    settings = dict(num_samples=1000, warmup_steps=500, num_chains=2, seed=seed, progress=False)
    return x, prior, run_nuts(m, x, **{**settings, **kwargs})


def test_the_fast_sampler_reaches_the_conjugate_posterior():
    x, prior, run = _gaussian_run()
    assert isinstance(run, NutsRun) and run.potential == "module"
    post = normal_gamma_posterior(x, prior)
    mu_mean = float(post.mu)
    lam_mean = float(post.a / post.b)
    draws = run.get_samples()
    diag = run.diagnostics()
    for site, exact in (("mu", mu_mean), ("lambda", lam_mean)):
        v = draws[site].numpy()
        # Posterior mean within 4 Monte-Carlo standard errors sd / sqrt(ESS).
        mcse = v.std() / math.sqrt(float(diag[site]["n_eff"]))
        assert abs(v.mean() - exact) < 4 * mcse, (site, v.mean(), exact, mcse)
        assert float(diag[site]["r_hat"]) <= 1.01
    assert run.sample_stats["diverging"].sum() == 0
    assert run.sample_stats["diverging"].shape == (2, 1000)


def test_the_same_seed_gives_the_same_draws_bit_for_bit():
    _, _, a = _gaussian_run(seed=4, num_samples=50, warmup_steps=50)
    _, _, b = _gaussian_run(seed=4, num_samples=50, warmup_steps=50)
    _, _, c = _gaussian_run(seed=5, num_samples=50, warmup_steps=50)
    for k, v in a.get_samples(group_by_chain=True).items():
        assert torch.equal(v, b.get_samples(group_by_chain=True)[k])
        assert not torch.equal(v, c.get_samples(group_by_chain=True)[k])


def test_a_run_converts_to_arviz_with_its_sample_stats():
    _, _, run = _gaussian_run(num_samples=40, warmup_steps=40)
    idata = to_inference_data(run)
    stats = get_group(idata, "sample_stats")
    for name in ("diverging", "tree_depth", "step_size", "energy", "lp", "acceptance_rate"):
        assert dict(stats[name].sizes) == {"chain": 2, "draw": 40}, name
    assert dict(get_group(idata, "log_likelihood")["obs"].sizes) == {
        "chain": 2, "draw": 40, "data": 200,
    }  # fmt: skip
    posterior = get_group(idata, "posterior")
    np.testing.assert_array_equal(
        np.asarray(posterior["mu"]), run.get_samples(group_by_chain=True)["mu"].numpy()
    )
    assert run.get_samples()["mu"].shape == (80,)
    assert run.get_samples(num_samples=10)["mu"].shape == (10,)


def _robust(x):
    nu = pyro.sample("nu", dist.Gamma(torch.tensor(2.0, dtype=x.dtype), 0.1))
    scale = pyro.sample("scale", dist.HalfNormal(torch.tensor(2.0, dtype=x.dtype)))
    loc = pyro.sample("loc", dist.Normal(torch.tensor(0.0, dtype=x.dtype), 10.0))
    with pyro.plate("data", len(x)):
        pyro.sample("obs", dist.StudentT(nu, loc, scale), obs=x)


def _t_data():
    return torch.from_numpy(np.random.default_rng(1).standard_t(4, size=150) + 1.0)


@pytest.mark.slow  # compiling takes 10-30 s on 2 cores
def test_a_users_model_samples_with_the_traced_and_the_compiled_potential():
    x = _t_data()
    kwargs = dict(num_samples=300, warmup_steps=200, num_chains=2, seed=0, progress=False)
    traced = run_nuts(_robust, x, compile=False, **kwargs)
    compiled = run_nuts(_robust, x, compile=True, **kwargs)
    assert traced.potential == "traced" and compiled.potential == "compiled"
    a, b = traced.get_samples(), compiled.get_samples()
    for site in ("nu", "scale", "loc"):
        # The same potential up to the compiler's reordering of sums: the runs part only by
        # rounding, which the chaotic dynamics amplify; their means agree within Monte-Carlo
        # error (4 standard errors of a difference of two means, ESS >= 100 each).
        sd = float(a[site].std())
        assert abs(float(a[site].mean() - b[site].mean())) < 4 * sd * math.sqrt(2 / 100)


def test_a_model_that_cannot_be_compiled_falls_back_or_is_refused():
    def branching(x):
        loc = pyro.sample("loc", dist.Normal(torch.tensor(0.0, dtype=x.dtype), 10.0))
        scale = 1.0 if float(loc) > 0 else 2.0  # control flow on a latent value
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(loc, scale), obs=x)

    x = _t_data()
    kwargs = dict(num_samples=20, warmup_steps=20, num_chains=1, seed=0, progress=False)
    with pytest.raises(ValueError, match="compile=True: the model's potential could not be"):
        run_nuts(branching, x, compile=True, **kwargs)
    assert run_nuts(branching, x, **kwargs).potential == "traced"


def test_pyros_sampler_stays_available():
    _, _, run = _gaussian_run(num_samples=20, warmup_steps=20, sampler="pyro")
    assert isinstance(run, pyro.infer.MCMC)
    assert run.get_samples()["mu"].shape == (40,)
    with pytest.raises(ValueError, match="sampler must be one of"):
        _gaussian_run(sampler="stan")


@pytest.mark.slow
def test_fast_sampler_agrees_with_pyros_nuts_on_bayesian_logistic_regression():
    # The same posterior by two samplers: posterior means within 4 Monte-Carlo standard
    # errors of their difference, R-hat <= 1.01, no divergences.
    from sklearn.datasets import load_breast_cancer

    xb, yb = load_breast_cancer(return_X_y=True)
    xb = (xb[:, :10] - xb[:, :10].mean(0)) / xb[:, :10].std(0)
    phi = torch.from_numpy(np.hstack([xb, np.ones((len(xb), 1))]))
    t = torch.from_numpy(yb.astype(np.float64))
    kwargs = dict(num_samples=1000, warmup_steps=500, num_chains=2, seed=0, progress=False)
    fast = run_nuts(LogisticRegression(11, prior_precision=1.0), phi, t, **kwargs)
    slow = run_nuts(LogisticRegression(11, prior_precision=1.0), phi, t, sampler="pyro", **kwargs)
    assert fast.potential == "module" and fast.sample_stats["diverging"].sum() == 0
    d_fast, d_slow = fast.diagnostics(), slow.diagnostics()
    w_fast, w_slow = fast.get_samples()["w"].numpy(), slow.get_samples()["w"].numpy()
    se = np.sqrt(
        w_fast.var(0) / d_fast["w"]["n_eff"].numpy() + w_slow.var(0) / d_slow["w"]["n_eff"].numpy()
    )
    assert np.all(np.abs(w_fast.mean(0) - w_slow.mean(0)) < 4 * se)
    assert float(d_fast["w"]["r_hat"].max()) <= 1.01
