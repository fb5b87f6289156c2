"""The Gaussian section of the tour: maximum likelihood by SVI, the conjugate posterior by
NUTS and by SVI with the module's Normal-Gamma guide."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyro
import torch
from pyro.ops.stats import effective_sample_size

from .. import plots
from ..gaussian import (
    BayesianGaussian,
    Gaussian,
    NormalGammaParams,
    log_evidence,
    marginal_mu,
    marginal_precision,
    mle,
    normal_gamma_posterior,
)
from ..inference import fit_svi, run_nuts
from ._section import Agreement, Section

__all__ = ["section"]


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def section(out_dir: Path, quick: bool) -> Section:
    """Fit a univariate and a 3-D Gaussian by SVI (maximum likelihood) and the
    Normal-Gamma model by NUTS; compare each with its closed form."""
    rows: list[Agreement] = []
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(1.5, 2.0, size=100))
    mix = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.2, -0.3, 2.0]])
    xm = torch.from_numpy(rng.normal(size=(200, 3)) @ mix.T + np.array([1.0, -2.0, 0.5]))
    ml, mlm = mle(x), mle(xm)

    g = Gaussian(event_dim=0)
    fit1 = fit_svi(g, x, optimizer="lbfgs", num_steps=50, progress=False)
    gm = Gaussian(3)
    fitm = fit_svi(gm, xm, optimizer="lbfgs", num_steps=100, progress=False)
    for name, fitted, ref in [
        ("loc (D = 1)", g.params().loc, ml.loc),
        ("variance (D = 1)", g.params().covariance, ml.covariance),
        ("loc (D = 3)", gm.params().loc, mlm.loc),
        ("covariance (D = 3)", gm.params().covariance, mlm.covariance),
    ]:
        rows.append(
            Agreement(
                name,
                "fit_svi, L-BFGS, empty guide",
                "mle (sample moments, /N)",
                _max_rel(fitted, ref),
                "max relative",
                1e-4,
            )
        )

    # Adam, recording its path over (mu, sigma) for the figure.
    ga = Gaussian(event_dim=0)
    path = [(0.0, 1.0)]

    class _Recording(torch.optim.Adam):
        def step(self, closure=None):  # type: ignore[override]
            out = super().step(closure)
            path.append((float(ga.loc.detach()), float(ga.scale.detach())))
            return out

    fita = fit_svi(
        ga,
        x,
        optimizer=lambda ps: _Recording(ps, lr=0.1),
        num_steps=300 if quick else 1000,
        tol=0,
        progress=False,
    )
    rows.append(
        Agreement(
            "loc, variance (D = 1)",
            "fit_svi, Adam lr 0.1, empty guide",
            "mle",
            max(_max_rel(ga.params().loc, ml.loc), _max_rel(ga.params().covariance, ml.covariance)),
            "max relative",
            1e-6,
        )
    )
    fig = plots.plot_gaussian_loglik_surface(x, ml, path=np.array(path))
    plots.save(fig, Path(out_dir) / "gaussian_loglik_surface.png")

    # The conjugate posterior on the first 20 points, so the prior still matters.
    x20 = x[:20]
    prior = NormalGammaParams(mu=0.0, kappa=1.0, a=2.0, b=2.0)
    post = normal_gamma_posterior(x20, prior)
    num = 60 if quick else 1000
    # Quick mode skips Pyro's validation, which doubles the cost of a NUTS step here.
    with pyro.validation_enabled(not quick):
        mcmc = run_nuts(
            BayesianGaussian(prior),
            x20,
            num_samples=num,
            warmup_steps=50 if quick else 500,
            seed=0,
            progress=False,
        )
    samples = mcmc.get_samples(group_by_chain=True)
    for name, exact in [("mu", marginal_mu(post).mean), ("lambda", marginal_precision(post).mean)]:
        draws = samples[name]
        mcse = float(draws.std()) / math.sqrt(float(effective_sample_size(draws)))
        rows.append(
            Agreement(
                f"posterior mean of {name}",
                "NUTS (2 chains)",
                "Normal-Gamma closed form",
                abs(float(draws.mean() - exact)) / mcse,
                "|error| / MC standard error",
                4.0,
            )
        )
    fig = plots.plot_normal_gamma_posterior(post, samples["mu"], samples["lambda"])
    plots.save(fig, Path(out_dir) / "gaussian_normal_gamma.png")

    losses = {
        "svi_mle_lbfgs_1d": float(fit1.losses[-1]),
        "svi_mle_lbfgs_3d": float(fitm.losses[-1]),
        "svi_mle_adam_1d": float(fita.losses[-1]),
    }
    lz = float(log_evidence(x20, prior))
    markdown = f"""
N = 100 draws from N(1.5, 2^2) and N = 200 from a correlated 3-D Gaussian. With the empty
guide the ELBO is the log-likelihood, so `fit_svi` is maximum likelihood: L-BFGS reaches
the sample mean and the (divide-by-N) sample covariance in a few steps, and Adam
(lr 0.1, from mu = 0, sigma = 1) reaches them too; its path over the log-likelihood
surface is drawn below. Final losses: {fit1.losses[-1]:.6f} (1-D) and
{fitm.losses[-1]:.6f} (3-D) nats, the negative maximised log-likelihoods.

With unknown mean and precision and a Normal-Gamma prior NG(0, 1, 2, 2), the posterior on
the first 20 points is Normal-Gamma(mu_N = {float(post.mu):.4f}, kappa_N =
{float(post.kappa):.0f}, a_N = {float(post.a):.0f}, b_N = {float(post.b):.4f}); its
marginals are a Student-t (mu) and a Gamma (lambda), and the log evidence is {lz:.4f}.
NUTS on `BayesianGaussian` samples the same posterior.

![log-likelihood surface with the MLE and Adam's path](gaussian_loglik_surface.png)

![Normal-Gamma marginals and NUTS draws](gaussian_normal_gamma.png)
"""
    return Section(
        "gaussian",
        "The Gaussian: maximum likelihood and the conjugate posterior",
        markdown,
        rows,
        losses,
    )
