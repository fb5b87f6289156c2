"""The autoencoder section of the tour: the linear autoencoder is PCA, a nonlinear one's 2-D
codes, and denoising on corrupted digits."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from pyro.infer import Trace_ELBO

from .. import pca, plots
from ..autoencoder import Autoencoder, corrupt, linear_optimum, negative_log_likelihood
from ..datasets import load_digits
from ..inference import fit_svi
from ._section import Agreement, Section

__all__ = ["section"]


def section(out_dir: Path, quick: bool) -> Section:
    """Fit autoencoders on the digits (scaled to [0, 1], float64) and compare the linear
    one with PCA, the 2-D codes with PCA's, and denoising with plain reconstruction."""
    out_dir = Path(out_dir)
    digits = load_digits(torch.float64)
    x, y = digits.x / 16, digits.y
    n, d = x.shape
    rows: list[Agreement] = []
    losses: dict[str, float] = {}

    # The linear autoencoder by L-BFGS on the full data (deterministic objective).
    lin = Autoencoder(d, 2, seed=0)
    # Quick mode asks for a fixed number of L-BFGS steps (tol=0): it stops short of
    # convergence on purpose, and its agreement row's tolerance says so.
    fit_lin = fit_svi(
        lin,
        x,
        optimizer="lbfgs",
        num_steps=20 if quick else 60,
        tol=0 if quick else None,
        progress=False,
    )
    losses["linear_ae"] = float(fit_lin.losses[-1])
    opt = linear_optimum(x, 2)
    dist = float(pca.projector_distance(lin.params().decoder_weights[0], opt.decoder_weights[0]))
    rows.append(
        Agreement(
            "span of decoder weights (M = 2)",
            "fit_svi, L-BFGS, empty guide",
            "PCA principal subspace",
            dist,
            "projector distance",
            1e-2,
        )
    )
    mse_lin = float(F.mse_loss(lin.reconstruct(x), x))
    j_over_d = float(opt.sigma) ** 2
    rows.append(
        Agreement(
            "mean squared error (M = 2)",
            "linear autoencoder",
            "sum of discarded eigenvalues / D",
            mse_lin / j_over_d - 1,
            "relative excess",
            1e-5,
        )
    )

    # A nonlinear autoencoder with a 2-D code, against PCA's 2-D scores.
    ae2 = Autoencoder(d, 2, hidden=(64, 32), activation="tanh", seed=0)
    fit_ae2 = fit_svi(
        ae2, x, num_steps=300 if quick else 3000, batch_size=128, lr=5e-3, seed=0, tol=0
    )
    losses["ae_2d"] = float(fit_ae2.losses[-1])
    mse_ae2 = float(F.mse_loss(ae2.reconstruct(x), x))
    with torch.no_grad():
        out = ae2.decoder(ae2.encoder(x))
        elbo_loss = float(Trace_ELBO().differentiable_loss(ae2.model, ae2.guide, x))
        nll = float(negative_log_likelihood(x, out, sigma=ae2.params().sigma))
    rows.append(
        Agreement(
            "negative log-likelihood",
            "Trace_ELBO, empty guide",
            "N D/2 ln(2 pi sigma^2) + SSE / (2 sigma^2) (torch mse_loss)",
            abs(elbo_loss - nll) / abs(nll),
            "relative",
            1e-12,
        )
    )
    fig = plots.plot_codes_2d(
        {
            f"PCA scores (MSE {j_over_d:.4f})": pca.transform(x, pca.fit(x, 2)),
            f"autoencoder 64-64-32-2, tanh (MSE {mse_ae2:.4f})": ae2.encode(x),
        },
        y,
    )
    plots.save(fig, out_dir / "autoencoder_codes.png")

    # Denoising: same network with and without masking noise on the training inputs.
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    train, test = x[perm[:1200]], x[perm[1200:]]
    nu, steps, hidden, latent = (0.3, 300, (32,), 8) if quick else (0.5, 1500, (64,), 16)
    corrupted = corrupt(test, nu, "mask", seed=1)
    recon, errors = {}, {}
    for name, c in (("plain", 0.0), ("denoising", nu)):
        ae = Autoencoder(d, latent, hidden=hidden, corruption=c, activation="tanh", seed=0)
        fit = fit_svi(ae, train, num_steps=steps, batch_size=128, lr=1e-2, seed=0, tol=0)
        losses[f"{name}_ae"] = float(fit.losses[-1])
        recon[name] = ae.reconstruct(corrupted)
        errors[name] = float(F.mse_loss(recon[name], test))
    fig = plots.plot_denoising(
        {
            "clean": test,
            f"masked {nu:.0%}": corrupted,
            "plain AE": recon["plain"],
            "denoising AE": recon["denoising"],
        },
        n=10,
    )
    plots.save(fig, out_dir / "autoencoder_denoising.png")
    arch = f"64-{'-'.join(map(str, hidden))}-{latent}"

    markdown = f"""
An autoencoder is a likelihood with no latent variable: `"obs"` observes the digits
(scaled to [0, 1]) under N(decoder(encoder(x)), sigma^2 I), so the empty guide makes
`fit_svi` maximum likelihood, which is least squares (the negative ELBO equals
N D/2 ln(2 pi sigma^2) + SSE / (2 sigma^2) to a relative {abs(elbo_loss - nll) / abs(nll):.1e}),
and the learned sigma^2 is the MSE.

**Linear autoencoder = PCA** (Baldi & Hornik 1989). With affine encoder and decoder
(M = 2) and L-BFGS on all {n} digits, the span of the decoder's weights is the principal
subspace to a projector distance of {dist:.1e}, and the MSE {mse_lin:.6f} exceeds the
closed-form minimum (sum of discarded eigenvalues / D = {j_over_d:.6f}) by a relative
{mse_lin / j_over_d - 1:.1e}.

**A nonlinear 2-D code.** The autoencoder 64-64-32-2 (tanh) reaches MSE {mse_ae2:.4f}
against PCA's {j_over_d:.4f} with the same two numbers per digit, and separates the classes
further:

![2-D codes of the digits: PCA and the autoencoder](autoencoder_codes.png)

**Denoising** (Vincent et al. 2008). The same network ({arch}, tanh), trained once on clean
inputs and once with {nu:.0%} of the input pixels masked (the likelihood is always that of
the clean digit), reconstructs {len(test)} held-out digits with {nu:.0%} of their pixels
masked with MSE {errors["plain"]:.4f} (plain) and {errors["denoising"]:.4f} (denoising),
a ratio of {errors["denoising"] / errors["plain"]:.2f}:

![clean, corrupted and reconstructed held-out digits](autoencoder_denoising.png)
"""
    if not math.isfinite(dist):  # pragma: no cover - a failed fit shows in the numbers
        markdown += "\nThe linear fit failed (non-finite parameters).\n"
    return Section("autoencoder", "Autoencoders", markdown, rows, losses)
