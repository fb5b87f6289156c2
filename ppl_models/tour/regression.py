"""The regression topic's part of the tour: PRML's curve fitting, maximum likelihood and
Bayesian linear regression, with SVI checked against the closed forms."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from pyro.infer.autoguide import AutoMultivariateNormal

from .. import plots
from ..datasets import make_sin_data
from ..inference import fit_svi
from ..regression import (
    IterateAveraging,
    LinearRegression,
    log_evidence,
    maximize_evidence,
    mle,
    polynomial_features,
    posterior,
    predictive,
)
from ._section import Agreement, Section

# Known hyperparameters of the Bayesian comparison: PRML's noise level (beta = 1 / 0.3^2)
# and a prior of standard deviation ~3 on the coefficients of the centred cubic.
_ALPHA = 0.1
_BETA = 1.0 / 0.3**2


def _fits_figure(x: torch.Tensor, t: torch.Tensor, out_dir: Path) -> tuple[str, dict]:
    x_grid = torch.linspace(0, 1, 200, dtype=x.dtype)
    fits, noise = {}, {}
    for order in [0, 1, 3, 9]:
        with warnings.catch_warnings():
            # M = 9 interpolates the 10 points (mle warns so): the figure's point.
            warnings.filterwarnings("ignore", message="mle: the fit interpolates")
            p = mle(polynomial_features(x, order), t)
        phi_grid = polynomial_features(x_grid, order)
        noise[order] = float(1 / p.beta)
        if torch.isfinite(p.beta) and p.beta < 1e12:
            d = predictive(phi_grid, p)
            fits[order] = (d.mean, d.stddev)
        else:  # M = 9 interpolates the 10 points: no residual, no band
            fits[order] = (phi_grid @ p.w, torch.zeros_like(x_grid))
    fig = plots.plot_curve_fits(x, t, x_grid, fits, truth=torch.sin(2 * math.pi * x_grid))
    name = "regression_fits.png"
    plots.save(fig, out_dir / name)
    return name, noise


def _evidence_gradient(phi: torch.Tensor, t: torch.Tensor, alpha: float, beta: float) -> float:
    """Largest |d ln p(t | alpha, beta) / d ln alpha or ln beta| by central differences."""
    h = 1e-4
    la, lb = math.log(alpha), math.log(beta)
    grads = []
    for da, db in [(h, 0.0), (0.0, h)]:
        up = log_evidence(phi, t, math.exp(la + da), math.exp(lb + db))
        down = log_evidence(phi, t, math.exp(la - da), math.exp(lb - db))
        grads.append(abs(float(up - down)) / (2 * h))
    return max(grads)


def section(out_dir: Path, quick: bool) -> Section:
    """Fit the regression topic on PRML's sin data, write its figure to ``out_dir``,
    report agreements. ``quick``: fewer SVI steps and particles (seconds instead of about
    ten)."""
    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    # Tiny models: one intra-op thread avoids OpenMP contention on small CPUs.
    torch.set_num_threads(1)
    try:
        x, t = make_sin_data(10, noise_std=0.3, seed=0)
        fig_name, noise = _fits_figure(x, t, out_dir)
        rows: list[Agreement] = []
        losses: dict[str, float] = {}

        # Maximum likelihood: SVI with the empty guide (L-BFGS) against least squares.
        phi = polynomial_features(x, 3)
        reg = LinearRegression(4)
        fit = fit_svi(reg, phi, t, optimizer="lbfgs", num_steps=100, progress=False)
        losses["ml_lbfgs"] = float(fit.losses[-1])
        p, ref = reg.params(), mle(phi, t)
        rows.append(
            Agreement(
                "w (M = 3)",
                "SVI, empty guide, L-BFGS",
                "least squares (SVD)",
                float((p.w - ref.w).abs().max() / ref.w.abs().max()),
                "max relative",
                1e-4,
            )
        )
        rows.append(
            Agreement(
                "1/beta (M = 3)",
                "SVI, empty guide, L-BFGS",
                "mean squared residual",
                abs(float(1 / p.beta) / float(1 / ref.beta) - 1),
                "relative",
                1e-4,
            )
        )

        _bayesian_rows(x, t, quick, rows, losses)

        # Evidence maximisation: the re-estimation fixed point is a stationary point.
        ev = maximize_evidence(phi, t, tol=1e-12)
        grad = _evidence_gradient(phi, t, float(ev.alpha), float(ev.beta))
        rows.append(
            Agreement(
                "evidence maximum (M = 3)",
                "re-estimation (PRML 3.92-3.95)",
                "stationarity of ln p(t | alpha, beta)",
                grad,
                "max |d ln p / d ln alpha, d ln beta| (finite differences)",
                1e-6,
            )
        )
        ev_by_order = [
            float(log_evidence(polynomial_features(x, m), t, 5e-3, 11.1)) for m in range(10)
        ]
        best = max(range(10), key=ev_by_order.__getitem__)
    finally:
        torch.set_num_threads(threads)

    markdown = f"""Polynomial curve fitting on PRML's ten points t = sin(2πx) + N(0, 0.3²)
(PRML 1.1). Maximum likelihood is least squares; the band is the predictive mean ± one
noise standard deviation 1/√β_ML, which shrinks from {math.sqrt(noise[0]):.2f} (M = 0) to
{math.sqrt(noise[3]):.2f} (M = 3) and vanishes at M = 9, where ten coefficients interpolate
ten points: over-fitting, with full confidence.

![Maximum-likelihood fits for M = 0, 1, 3, 9 (PRML Fig. 1.4)]({fig_name})

The same `LinearRegression` Pyro module is fitted two ways and checked against the closed
forms: as maximum likelihood (empty guide, L-BFGS), and with the prior w ~ N(0, α⁻¹I)
(α = {_ALPHA:g}, β = {_BETA:.3g}, cubic in the centred input 2x − 1) by a full-rank
Gaussian guide, which can match the Gaussian posterior exactly; Adam's constant-step jitter
is removed by averaging its iterates. The evidence at Bishop's α = 5·10⁻³, β = 11.1 peaks
at M = {best} (PRML Fig. 3.14);
maximised over α, β for M = 3 it gives α = {float(ev.alpha):.3g}, β = {float(ev.beta):.3g}
(noise sd {float(ev.beta) ** -0.5:.3f}) and γ = {float(ev.gamma):.2f} well-determined
parameters out of 4.
"""
    return Section("regression", "Linear regression with basis functions", markdown, rows, losses)


def _bayesian_rows(
    x: torch.Tensor, t: torch.Tensor, quick: bool, rows: list[Agreement], losses: dict
) -> None:
    """The full-rank Gaussian guide against the conjugate posterior."""
    # Bayesian: full-rank Gaussian guide against the conjugate posterior, on the centred
    # input u = 2x - 1: on [0, 1] the monomials are nearly collinear (posterior
    # condition number ~1500 against ~50), which Adam's diagonal steps crawl through.
    phi_u = polynomial_features(2 * x - 1, 3)
    post = posterior(phi_u, t, _ALPHA, _BETA)
    breg = LinearRegression(4, alpha=_ALPHA, beta=_BETA)
    guide = AutoMultivariateNormal(breg.model)
    (n1, n2), particles = ((150, 400), 32) if quick else ((300, 1000), 128)
    fit_svi(
        breg,
        phi_u,
        t,
        guide=guide,
        num_particles=particles,
        lr=0.05,
        num_steps=n1,
        tol=0,
        progress=False,
        seed=0,
    )
    avg = IterateAveraging(lr=0.01, start=n2 // 4)
    fit = fit_svi(
        breg,
        phi_u,
        t,
        guide=guide,
        num_particles=particles,
        optimizer=avg,
        num_steps=n2,
        tol=0,
        progress=False,
        seed=1,
    )
    avg.apply()
    losses["bayes_full_rank"] = float(fit.losses[-100:].mean())
    with torch.no_grad():
        q = guide.get_posterior()
        sd = post.covariance.diagonal().sqrt()
        err_mean = float(((q.mean - post.mean) / sd).abs().max())
        err_cov = float(((q.covariance_matrix - post.covariance) / torch.outer(sd, sd)).abs().max())
    rows.append(
        Agreement(
            "posterior mean of w (M = 3)",
            "SVI, full-rank Gaussian guide, averaged Adam",
            "conjugate posterior m_N",
            err_mean,
            "max |error| in posterior sd",
            0.02,
        )
    )
    rows.append(
        Agreement(
            "posterior covariance of w (M = 3)",
            "SVI, full-rank Gaussian guide, averaged Adam",
            "conjugate posterior S_N",
            err_cov,
            "max |error| / (sd_i sd_j)",
            0.05,
        )
    )
