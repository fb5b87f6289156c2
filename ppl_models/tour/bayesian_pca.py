"""The Bayesian PCA topic's part of the tour: Bishop's experiment (N = 300, D = 10, three
directions of standard deviation 1 and seven of 0.5, latent_dim = 9), ARD by EM and
by MAP in Pyro, Hinton diagrams (PRML Fig. 12.14), and, in the full tour, a mean-field
posterior by SVI."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import bayesian_pca as bp
from .. import plots
from ..datasets import make_bishop_bpca_data
from ..inference import fit_svi
from ._section import Agreement, Section

SEEDS = (0, 1, 2, 3, 4)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


def _ml_ppca_w(x: torch.Tensor, m: int) -> torch.Tensor:
    """Maximum-likelihood PPCA loadings (Tipping & Bishop): U_M (Λ_M - σ² I)^{1/2}."""
    xc = x - x.mean(0)
    lam, u = torch.linalg.eigh(xc.T @ xc / x.shape[0])
    lam, u = lam.flip(0), u.flip(1)
    sigma2 = lam[m:].mean()
    return u[:, :m] * (lam[:m] - sigma2).clamp_min(0).sqrt()


def section(out_dir: Path, quick: bool) -> Section:
    """Run Bishop's experiment, write the figures to ``out_dir``, report the agreements.
    ``quick``: EM on five seeds and the MAP fit only (seconds); otherwise also a
    mean-field Gaussian posterior by SVI (about a minute on 2 cores)."""
    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # D = 10: a second thread only adds contention
    try:
        rows: list[Agreement] = []
        losses: dict[str, float] = {}
        dims = {}
        for seed in SEEDS:
            dims[seed] = bp.ard_em(make_bishop_bpca_data(seed=seed).x, 9, seed=seed).effective_dim
        data = make_bishop_bpca_data(seed=0)
        em = bp.ard_em(data.x, 9, seed=0)
        c_em = bp.model_covariance(em.params.W, em.params.sigma2)
        rows.append(
            Agreement(
                f"effective dimension, seeds {SEEDS[0]}-{SEEDS[-1]}",
                "ard_em (columns left)",
                "the true dimension 3",
                float(max(abs(k - 3) for k in dims.values())),
                "max |Δ dimension|",
                0.0,
            )
        )

        m = bp.BayesianPCA(10, 9, guide="delta")
        fit = fit_svi(m, data.x, optimizer="lbfgs", num_steps=100, progress=False, seed=0)
        losses["svi_map_lbfgs"] = float(fit.losses[-1])
        med = m.median()
        c_map = bp.model_covariance(med["W"], med["sigma"] ** 2)
        rows.append(
            Agreement(
                "C = W W^T + σ² I",
                "MAP by SVI (AutoDelta, L-BFGS), Gamma(1e-3, 1e-3) on α",
                "ard_em",
                _rel(c_map, c_em),
                "relative Frobenius",
                # Two objectives near one point: the MAP has priors on α and σ that
                # ard_em has not (measured 0.8%).
                0.02,
            )
        )
        rows.append(
            Agreement(
                "effective dimension",
                "MAP by SVI (norm < 1% of the largest and α > 100 x the smallest: off)",
                "ard_em",
                float(abs(m.effective_dim() - em.effective_dim)),
                "|Δ dimension|",
                0.0,
            )
        )

        text_svi = ""
        if not quick:
            from ..regression import IterateAveraging

            mf = bp.BayesianPCA(10, 9, guide="normal")
            avg = IterateAveraging(lr=0.02, start=1000)
            fit = fit_svi(mf, data.x, optimizer=avg, num_steps=2500, progress=False, seed=0, tol=0)
            avg.apply()
            losses["svi_meanfield_adam"] = float(fit.losses[-100:].mean())
            c_mf = bp.rotation_free(mf.sample_posterior(2000, seed=0))["C"].mean(0)
            rows.append(
                Agreement(
                    "posterior mean of C",
                    "SVI, mean-field Gaussian guide (Adam, iterates averaged)",
                    "ard_em",
                    _rel(c_mf, c_em),
                    "relative Frobenius",
                    # The bound; a posterior mean is not a mode (measured 4%).
                    0.05,
                )
            )
            rows.append(
                Agreement(
                    "effective dimension",
                    "SVI mean-field (guide median norm >= 5% of the largest)",
                    "ard_em",
                    float(abs(mf.effective_dim() - em.effective_dim)),
                    "|Δ dimension|",
                    0.0,
                )
            )
            text_svi = (
                f" A mean-field Gaussian posterior by SVI keeps {mf.effective_dim()} columns "
                "(its switched-off columns keep a norm of about √(D/α) in every draw, but "
                "their median goes to zero)."
            )

        hinton = "bpca_hinton.png"
        w_ml = _ml_ppca_w(data.x, 9)
        fig = plots.plot_hinton(
            {"max. likelihood PPCA (M = 9)": w_ml, "Bayesian PCA (ard_em)": em.params.W}
        )
        plots.save(fig, out_dir / hinton)
        history = "bpca_alpha_history.png"
        plots.save(plots.plot_alpha_history(em.alpha_history, em.log_likelihood), out_dir / history)

        alphas = ", ".join(f"{a:.1f}" for a in em.alpha[: em.effective_dim].tolist())
        markdown = (
            "Bishop's experiment: N = 300 points in D = 10 with standard deviation 1 in 3 "
            "random orthogonal directions and 0.5 in the other 7, fitted with 9 columns. "
            f"The ARD EM switches off {9 - em.effective_dim} columns in "
            f"{len(em.log_likelihood)} iterations (α of the ones left: {alphas}; the others "
            "∞), on every seed; the MAP fit by SVI with a vague Gamma prior on α switches "
            f"off the same number (α capped near (D/2)/b ≈ 4000).{text_svi}\n\n"
            "![Hinton diagrams of W: maximum-likelihood PPCA keeps 9 columns, Bayesian PCA "
            f"3 (PRML Fig. 12.14)]({hinton})\n\n"
            f"![α across EM iterations]({history})"
        )
        return Section("bayesian_pca", "Bayesian PCA", markdown, rows, losses)
    finally:
        torch.set_num_threads(threads)
