"""Tour section: the ArviZ bridge on the Normal-Gamma Gaussian, where every diagnostic has
an exact reference (posterior moments and leave-one-out densities in closed form)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import plots
from ..gaussian import (
    BayesianGaussian,
    NormalGammaParams,
    normal_gamma_posterior,
    posterior_predictive,
)
from ..inference import fit_svi, run_nuts
from ..workflow import get_group, loo, summary, to_inference_data
from ._section import Agreement, Section


def _psis_bound(ll: np.ndarray, ess: float) -> float:
    """4 x a conservative Monte-Carlo standard error of an importance-sampling LOO sum:
    per observation sd(r) / (sqrt(ess) mean(r)), r = 1/p(x_n | theta_s) (delta method),
    summed over observations (the draws are shared, so the errors may be correlated)."""
    ll = ll.reshape(-1, ll.shape[-1])
    r = np.exp(-(ll - ll.max(axis=0)))
    return 4 * float((r.std(axis=0) / (np.sqrt(ess) * r.mean(axis=0))).sum())


def section(out_dir: Path, quick: bool) -> Section:
    """Fit the Normal-Gamma Gaussian by NUTS (and, unless ``quick``, SVI), convert both with
    :func:`~ppl_models.workflow.to_inference_data`, and compare R-hat, posterior moments and
    PSIS-LOO with the closed form."""
    out_dir = Path(out_dir)
    start = time.perf_counter()
    x = torch.randn(30, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 + 1
    prior = NormalGammaParams(mu=0.0, kappa=0.1, a=2.0, b=2.0)
    post = normal_gamma_posterior(x, prior)
    exact_i = np.array(
        [
            float(
                posterior_predictive(
                    normal_gamma_posterior(torch.cat([x[:n], x[n + 1 :]]), prior)
                ).log_prob(x[n])
            )
            for n in range(len(x))
        ]
    )
    mean_mu = float(post.mu)

    mcmc = run_nuts(
        BayesianGaussian(prior),
        x,
        num_samples=150 if quick else 1000,
        warmup_steps=100 if quick else 300,
        num_chains=2,
        seed=0,
        progress=False,
    )
    data = to_inference_data(mcmc)
    table = summary(data)
    result = loo(data, quiet=True)
    ll = get_group(data, "log_likelihood")["obs"].values
    ess = float(table["ess_bulk"].min())
    rows = [
        Agreement(
            quantity="E[mu]",
            method="NUTS",
            reference="Normal-Gamma posterior",
            error=float(abs(table.loc["mu", "mean"] - mean_mu) / table.loc["mu", "mcse_mean"]),
            metric="Monte-Carlo standard errors",
            tolerance=4.0,
        ),
        Agreement(
            quantity="max R-hat - 1",
            method="NUTS, 2 chains",
            reference="1 (converged)",
            error=float(table["r_hat"].max() - 1),
            metric="absolute",
            tolerance=0.01,
        ),
        Agreement(
            quantity="elpd_loo",
            method="PSIS-LOO on NUTS draws",
            reference="exact Student-t LOO",
            error=float(abs(result.elpd - exact_i.sum())),
            metric="nats (sum over 30 points)",
            tolerance=_psis_bound(ll, ess),
        ),
    ]
    losses: dict[str, float] = {}
    estimates = {"NUTS": result.elpd_i}
    svi_text = ""
    if not quick:
        m = BayesianGaussian(prior)
        fit = fit_svi(m, x, num_steps=1500, lr=0.1, num_particles=16, seed=0, tol=0, progress=False)
        losses["svi (negative ELBO)"] = float(fit.losses[-20:].mean())
        svi_data = to_inference_data(m, x, num_chains=4, num_samples=1000)
        svi_loo = loo(svi_data, quiet=True)
        svi_ll = get_group(svi_data, "log_likelihood")["obs"].values
        estimates["SVI guide"] = svi_loo.elpd_i
        rows.append(
            Agreement(
                quantity="elpd_loo",
                method="PSIS-LOO on SVI guide draws",
                reference="exact Student-t LOO",
                error=float(abs(svi_loo.elpd - exact_i.sum())),
                metric="nats (sum over 30 points)",
                # The guide's own distance from the posterior adds to the Monte-Carlo error.
                tolerance=_psis_bound(svi_ll, svi_ll.shape[0] * svi_ll.shape[1]) + 0.5,
            )
        )
        svi_text = (
            f" The Normal-Gamma guide fitted by SVI gives {svi_loo.elpd:.3f} from "
            f"{svi_ll.shape[0]} x {svi_ll.shape[1]} independent draws."
        )
    plots.save(plots.plot_ppc(data), out_dir / "workflow_ppc.png")
    plots.save(
        plots.plot_loo_pointwise(exact_i, estimates, result.pareto_k),
        out_dir / "workflow_loo.png",
    )
    markdown = (
        "`to_inference_data` turns a NUTS run or a fitted guide into ArviZ data (posterior, "
        "posterior_predictive, pointwise log_likelihood, observed_data) for ArviZ 0.x and "
        "1.x. On 30 points under a Normal-Gamma prior, where the leave-one-out predictive "
        f"is an exact Student-t, NUTS gives R-hat at most {table['r_hat'].max():.4f} and "
        f"PSIS-LOO {result.elpd:.3f} (max Pareto k {result.pareto_k.max():.2f}) against the "
        f"exact {exact_i.sum():.3f}.{svi_text}\n\n"
        "![posterior predictive check](workflow_ppc.png)\n\n"
        "![pointwise leave-one-out densities](workflow_loo.png)\n"
    )
    return Section(
        topic="workflow",
        title="Bayesian workflow: ArviZ diagnostics and leave-one-out",
        markdown=markdown,
        figures=["workflow_ppc.png", "workflow_loo.png"],
        agreement=rows,
        losses=losses,
        seconds=time.perf_counter() - start,
    )
