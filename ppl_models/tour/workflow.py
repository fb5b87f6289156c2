"""Tour section: the ArviZ bridge on the Normal-Gamma Gaussian, where every diagnostic has
an exact reference (posterior moments and leave-one-out densities in closed form)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import plots
from ..bayesian_pca import ppca_loo_sweep
from ..datasets import PPCA_NOISE_SD, noisy_pooled_digits
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


def _loo_row(method: str, elpd: float, exact_i: np.ndarray, tolerance: float) -> Agreement:
    """The row that holds a PSIS-LOO sum ``elpd`` against the exact Student-t LOO."""
    return Agreement(
        quantity="elpd_loo",
        method=method,
        reference="exact Student-t LOO",
        error=float(abs(elpd - exact_i.sum())),
        metric=f"nats (sum over {len(exact_i)} points)",
        tolerance=tolerance,
    )


def _degree_choice(out_dir: Path, quick: bool) -> tuple[list[Agreement], str]:
    """The polynomial degree on N = 100 sin data (seed 0) by the evidence, the exact LOO and
    PSIS-LOO from Laplace-guide draws (Bishop's alpha = 5e-3, beta = 11.1)."""
    from pyro.infer.autoguide import AutoLaplaceApproximation

    from ..datasets import make_sin_data
    from ..regression import (
        LinearRegression,
        linear_gaussian_loo,
        log_evidence,
        polynomial_features,
    )
    from ..workflow import compare

    alpha, beta = 5e-3, 11.1
    degrees = [1, 3, 7, 9] if quick else list(range(10))
    x, t = make_sin_data(100, noise_std=0.3, seed=0)
    evidence, exact, psis, datasets, bounds = [], [], [], {}, []
    for m in degrees:
        phi = polynomial_features(x, m)
        reg = LinearRegression(m + 1, alpha=alpha, beta=beta)
        guide = AutoLaplaceApproximation(reg.model)
        fit_svi(reg, phi, t, guide=guide, optimizer="lbfgs", num_steps=100, progress=False)
        d = to_inference_data(
            reg, phi, t, guide=guide.laplace_approximation(phi, t), num_chains=4,
            num_samples=100 if quick else 500, seed=0,
        )  # fmt: skip
        datasets[f"M={m}"] = d
        evidence.append(float(log_evidence(phi, t, alpha, beta)))
        exact.append(float(linear_gaussian_loo(phi, t, alpha, beta).sum()))
        psis.append(loo(d, quiet=True).elpd)
        ll = get_group(d, "log_likelihood")["obs"].values
        bounds.append(_psis_bound(ll, ll.shape[0] * ll.shape[1]))  # independent draws
    table = compare(datasets)
    pick = {k: degrees[int(np.argmax(v))] for k, v in
            [("evidence", evidence), ("exact", exact), ("psis", psis)]}  # fmt: skip
    i = degrees.index(pick["psis"])
    rows = [
        Agreement(
            quantity=f"elpd_loo, degree {pick['psis']} polynomial",
            method="PSIS-LOO on Laplace-guide draws",
            reference="exact LOO (Gaussian conditional)",
            error=float(abs(psis[i] - exact[i])),
            metric="nats (sum over 100 points)",
            tolerance=bounds[i],
        ),
        Agreement(
            quantity="degree chosen, N = 100",
            method="PSIS-LOO",
            reference="evidence (PRML Fig. 3.14 setting)",
            error=float(abs(pick["psis"] - pick["evidence"])),
            metric="degrees",
            tolerance=0.0,
        ),
    ]
    plots.save(
        plots.plot_model_choice(
            degrees,
            {"ln evidence": evidence, "exact LOO": exact, "PSIS-LOO": psis},
            title="N = 100: degree of the polynomial",
        ),
        out_dir / "workflow_degree.png",
    )
    lines = "\n".join(
        f"| {m} | {e:.2f} | {x_:.2f} | {p:.2f} |"
        for m, e, x_, p in zip(degrees, evidence, exact, psis, strict=True)
    )
    text = (
        "**Choosing the degree of a polynomial** on 100 noisy points of sin(2πx) "
        "(α = 5·10⁻³, β = 11.1; posterior from a MAP fit and its Laplace approximation, "
        "exact for this linear-Gaussian model): the evidence picks "
        f"M = {pick['evidence']}, the exact LOO M = {pick['exact']}, PSIS-LOO "
        f"M = {pick['psis']} (stacking weight {table['weight'].iloc[0]:.2f}, next model "
        f"{table['elpd_diff'].iloc[1]:.2f} ± {table['dse'].iloc[1]:.2f} nats behind).\n\n"
        "| M | ln evidence | exact LOO | PSIS-LOO |\n|---|---|---|---|\n"
        + lines
        + "\n\n![evidence and LOO against the degree](workflow_degree.png)\n"
    )
    return rows, text


def _ppca_choice(out_dir: Path, quick: bool) -> tuple[list[Agreement], str, dict]:
    """The latent dimension of PPCA on the noisy pooled digits by PSIS-LOO, 5-fold
    held-out log-likelihood, Minka's evidence and ARD."""
    from ..bayesian_pca import ard_em
    from ..ppca import select_latent_dim

    x = noisy_pooled_digits()
    n = x.shape[0]
    max_dim = 10
    heldout = select_latent_dim(x, "heldout", max_dim=max_dim)
    minka = select_latent_dim(x, "minka", max_dim=max_dim)
    ard = ard_em(x, x.shape[1] - 1).effective_dim
    # quick: the LOO sweep covers Minka's choice and its two neighbours (seconds, not a
    # minute); the full sweep covers M = 1..10.
    lo = max(1, minka.latent_dim - 1) if quick else 1
    hi = min(max_dim, minka.latent_dim + 1) if quick else max_dim
    dims = list(range(lo, hi + 1))
    # quick: the guide starts at the maximum likelihood, so 100 steps settle its scales
    # well enough to rank three neighbouring M; the full run fits 400 steps.
    sweep = ppca_loo_sweep(x, dims, num_steps=100 if quick else 400,
                           num_samples=200 if quick else 1000)  # fmt: skip
    pick_loo = dims[int(np.argmax(sweep["elpd"]))]
    all_dims = heldout.dims.tolist()
    rows = [
        Agreement(
            quantity="PPCA latent dimension, noisy 4x4 digits",
            method="PSIS-LOO, Bayesian marginal PPCA",
            reference="5-fold held-out log-likelihood",
            error=float(abs(pick_loo - heldout.latent_dim)),
            metric="dimensions",
            tolerance=1.0,  # the issue's criterion: agree within one dimension
        )
    ]
    loo_full = np.full(len(all_dims), np.nan)
    loo_full[[all_dims.index(m) for m in dims]] = sweep["elpd"] / n
    fig = plots.plot_model_choice(
        all_dims,
        {
            "PSIS-LOO / N": loo_full,
            "5-fold held-out / N": heldout.scores.numpy(),
            "Minka ln evidence / N": minka.scores.numpy() / n,
        },
        title=f"PPCA on {n} noisy 4x4 digits: latent dimension",
    )
    ax = fig.axes[0]
    ax.axvline(ard, color="gray", ls="--", label=f"ARD effective dimension {ard}")
    ax.set_xlabel("latent dimension M")
    ax.set_ylabel("criterion - its maximum (nats per point)")
    ax.legend(fontsize=8)
    plots.save(fig, out_dir / "workflow_ppca_dim.png")
    table = "\n".join(
        f"| {m} | {heldout.scores[m - 1] * n:.1f} | {minka.scores[m - 1]:.1f} | "
        + (
            f"{sweep['elpd'][dims.index(m)]:.1f} ± {sweep['se'][dims.index(m)]:.1f} | "
            f"{sweep['p'][dims.index(m)]:.1f} | {sweep['max_k'][dims.index(m)]:.2f} |"
            if m in dims
            else "– | – | – |"
        )
        for m in all_dims
    )
    text = (
        f"\n\n**The latent dimension of PPCA on the digits.** {n} random digits, "
        f"average-pooled to 4x4 (D = 16) with Gaussian noise of sd {PPCA_NOISE_SD:g} "
        "(on the raw digits the held-out likelihood rises almost up to M = D, because "
        "near-constant pixels drive σ² down; the noise floor gives an interior optimum). "
        f"PSIS-LOO of the marginal model with priors (low-rank Gaussian guide) picks "
        f"M = {pick_loo}, the 5-fold held-out log-likelihood M = {heldout.latent_dim}, "
        f"Minka's evidence M = {minka.latent_dim}, ARD (`ard_em`) keeps {ard} columns"
        + (f" (quick run: LOO only for M = {dims[0]}..{dims[-1]})" if quick else "")
        + ". p_loo exceeds the parameter count (the digits are not Gaussian); the "
        "guide's own PSIS k̂ (`check_guide`) is above 1, in part because the posterior "
        "spreads over the rotations W R, which the LOO log-likelihoods do not see "
        "(tutorial 09).\n\n"
        "| M | held-out (sum) | Minka ln evidence | PSIS-LOO | p_loo | max Pareto k |\n"
        "|---|---|---|---|---|---|\n" + table + "\n\n"
        "![criteria against the latent dimension](workflow_ppca_dim.png)\n"
    )
    info = {"loo_pick": pick_loo, "heldout_pick": heldout.latent_dim,
            "minka_pick": minka.latent_dim, "ard": ard, "dims": dims, **sweep}  # fmt: skip
    return rows, text, info


def section(out_dir: Path, quick: bool) -> Section:
    """Fit the Normal-Gamma Gaussian by NUTS (and, unless ``quick``, SVI), convert both with
    :func:`~ppl_models.workflow.to_inference_data`, and compare R-hat, posterior moments and
    PSIS-LOO with the closed form."""
    out_dir = Path(out_dir)
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

    # The same draws in quick mode: with the closed-form potential 2 x 1300 iterations take
    # about a second, and R-hat's own sampling error with 150 draws a chain is about the
    # 0.01 the row allows.
    mcmc = run_nuts(
        BayesianGaussian(prior),
        x,
        num_samples=1000,
        warmup_steps=300,
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
        _loo_row("PSIS-LOO on NUTS draws", result.elpd, exact_i, _psis_bound(ll, ess)),
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
        # The guide's own distance from the posterior adds to the Monte-Carlo error.
        bound = _psis_bound(svi_ll, svi_ll.shape[0] * svi_ll.shape[1]) + 0.5
        rows.append(_loo_row("PSIS-LOO on SVI guide draws", svi_loo.elpd, exact_i, bound))
        svi_text = (
            f" The Normal-Gamma guide fitted by SVI gives {svi_loo.elpd:.3f} from "
            f"{svi_ll.shape[0]} x {svi_ll.shape[1]} independent draws."
        )
    degree_rows, degree_text = _degree_choice(out_dir, quick)
    rows.extend(degree_rows)
    ppca_rows, ppca_text, _ = _ppca_choice(out_dir, quick)
    rows.extend(ppca_rows)
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
        "![pointwise leave-one-out densities](workflow_loo.png)\n\n" + degree_text + ppca_text
    )
    return Section(
        "workflow", "Bayesian workflow: ArviZ diagnostics and leave-one-out", markdown, rows, losses
    )
