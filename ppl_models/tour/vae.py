"""The VAE section of the tour: the linear VAE is PPCA, Trace_ELBO against the analytic KL,
the filled 2-D latent space, a beta-VAE traversal, and held-out log-likelihoods."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyro
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from .. import plots, ppca
from ..autoencoder import Autoencoder
from ..datasets import load_vae_data, make_unit_ppca_data
from ..inference import fit_svi
from ..vae import VAE, elbo, latent_traversal, linear_elbo, log_likelihood
from ._section import Agreement, Section

__all__ = ["section"]


def _per_point(fit, n: int) -> np.ndarray:
    return fit.losses / n


def section(out_dir: Path, quick: bool) -> Section:
    """Fit VAEs on PPCA data and on the digits and compare them with the closed forms."""
    out_dir = Path(out_dir)
    rows: list[Agreement] = []
    losses: dict[str, float] = {}
    linear = _linear_vae(rows, losses, quick)
    diff, se = _elbo_estimators(rows, losses, out_dir, quick)
    xc, xc_test, vn = _latent_space(losses, out_dir, quick)
    table_md, mean_sd = _held_out(xc, xc_test, vn, out_dir, quick)
    return Section(
        "vae",
        "Variational autoencoder",
        _markdown(*linear, diff, se, table_md, mean_sd),
        rows,
        losses,
    )


def _linear_vae(
    rows: list[Agreement], losses: dict[str, float], quick: bool
) -> tuple[int, int, int, float, float, float]:
    """The linear VAE against PPCA's closed form."""
    # 1. The linear VAE against PPCA's closed form.
    n, d, m = (1000, 10, 2) if quick else (5000, 20, 3)
    x = make_unit_ppca_data(n, d, m)
    ref = ppca.closed_form(x, m)
    ll_ppca = float(ppca.log_likelihood(x, ref).mean())
    c_ppca = ref.W @ ref.W.T + ref.sigma2 * torch.eye(d, dtype=x.dtype)
    lin = VAE(d, m, hidden=(), likelihood="normal")
    fit = fit_svi(
        lin,
        x,
        loss="meanfield",
        num_steps=400 if quick else 1500,
        lr=0.03 if quick else 0.01,
        tol=0,
        seed=0,
        progress=False,
    )
    losses["linear_vae"] = float(fit.losses[-1] / n)
    p = lin.params()
    w = p.decoder_weights[0]
    c_vae = w @ w.T + p.sigma**2 * torch.eye(d, dtype=x.dtype)
    elbo_lin = float(linear_elbo(p, x).mean())
    rows.append(
        Agreement(
            f"ELBO per point (D={d}, M={m}, N={n})",
            "linear VAE, SVI",
            "PPCA max log-likelihood",
            abs(elbo_lin - ll_ppca) / abs(ll_ppca),
            "relative",
            5e-3,
        )
    )
    rel_c = float(torch.linalg.norm(c_vae - c_ppca) / torch.linalg.norm(c_ppca))
    rows.append(
        Agreement(
            "W W^T + sigma^2 I",
            "linear VAE, SVI",
            "PPCA closed form",
            rel_c,
            "relative Frobenius",
            5e-2,
        )
    )

    return n, d, m, elbo_lin, ll_ppca, rel_c


def _elbo_estimators(
    rows: list[Agreement], losses: dict[str, float], out_dir: Path, quick: bool
) -> tuple[float, float]:
    """Trace_ELBO against TraceMeanField_ELBO on the binarised digits."""
    # 2. Trace_ELBO against TraceMeanField_ELBO on the binarised digits.
    data = load_vae_data("bernoulli")
    xb, xb_test = data.x_train, data.x_test
    steps = 100 if quick else 400
    curves, fitted = {}, {}
    for name, loss in (("Trace_ELBO", "trace"), ("TraceMeanField_ELBO", "meanfield")):
        v = VAE(64, 2, hidden=(64,), seed=0)
        f = fit_svi(
            v,
            xb,
            loss=loss,
            num_steps=steps,
            batch_size=128,
            lr=1e-2,
            tol=0,
            seed=0,
            progress=False,
        )
        curves[name] = f.losses / len(xb)
        fitted[name] = v
        losses[f"vae_{loss}"] = float(np.mean(curves[name][-50:]))
    plots.save(plots.plot_vae_training(curves), out_dir / "vae_training.png")
    v = fitted["TraceMeanField_ELBO"]
    draws = {}
    pyro.set_rng_seed(0)
    xt = xb_test[:100]
    reps = 30 if quick else 200
    with torch.no_grad():
        for name, cls in (("trace", Trace_ELBO), ("meanfield", TraceMeanField_ELBO)):
            draws[name] = np.array([cls().loss(v.model, v.guide, xt) for _ in range(reps)])
    se = math.sqrt(sum(a.var(ddof=1) / reps for a in draws.values()))
    diff = abs(draws["trace"].mean() - draws["meanfield"].mean())
    rows.append(
        Agreement(
            "ELBO estimate, 100 held-out digits",
            "Trace_ELBO",
            "TraceMeanField_ELBO",
            diff / se,
            "standard errors",
            3.0,
        )
    )

    return diff, se


def _latent_space(
    losses: dict[str, float], out_dir: Path, quick: bool
) -> tuple[torch.Tensor, torch.Tensor, VAE]:
    """The 2-D latent space of the autoencoder and of the VAE, samples and a traversal."""
    # 3. The 2-D latent space: autoencoder against VAE (digits in [0, 1], normal likelihood).
    cont = load_vae_data("normal")
    xc, xc_test = cont.x_train, cont.x_test
    # One training recipe for the three models of this section.
    recipe = {
        "num_steps": 200 if quick else 1000,
        "batch_size": 128,
        "lr": 3e-3,
        "tol": 0,
        "seed": 0,
        "progress": False,
    }
    ae = Autoencoder(64, 2, hidden=(64,), activation="tanh", seed=0)
    fit_svi(ae, xc, **recipe)
    vn = VAE(64, 2, hidden=(64,), likelihood="normal", activation="tanh", seed=0)
    fit_v = fit_svi(vn, xc[:1100], validation=(xc[1100:],), patience=20, loss="meanfield", **recipe)
    losses["vae_normal_M2"] = float(fit_v.val_losses.min() / fit_v.num_data)  # per point
    fig = plots.plot_codes_2d(
        {
            "autoencoder codes f(x)": ae.encode(xc_test),
            "VAE posterior means": vn.encode(xc_test)[0],
        },
        cont.y_test,
    )
    plots.save(fig, out_dir / "vae_latent.png")
    samples = vn.sample(10, seed=0)
    plots.save(
        plots.plot_denoising(
            {
                "digits": xc_test[:10],
                "VAE reconstr.": vn.reconstruct(xc_test[:10]),
                "prior samples": samples,
            },
            n=10,
        ),
        out_dir / "vae_samples.png",
    )
    beta_vae = VAE(64, 2, hidden=(64,), likelihood="normal", activation="tanh", beta=4.0, seed=0)
    fit_svi(beta_vae, xc, loss="meanfield", **recipe)
    trav = latent_traversal(beta_vae, xc_test[0], torch.linspace(-2.5, 2.5, 9))
    plots.save(
        plots.plot_denoising({"z1": trav[0], "z2": trav[1]}, n=9), out_dir / "vae_traversal.png"
    )

    return xc, xc_test, vn


def _held_out(
    xc: torch.Tensor, xc_test: torch.Tensor, vn: VAE, out_dir: Path, quick: bool
) -> tuple[str, float]:
    """Held-out log-likelihoods: PPCA (exact) and the VAE (ELBO, importance weighted)."""
    # 4. Held-out log-likelihoods: PPCA (exact) and the VAE (ELBO, importance weighted).
    table = []
    k_max = 100 if quick else 5000
    for mm, model in ((2, vn),):
        pp = ppca.closed_form(xc, mm)
        table.append((f"PPCA, M = {mm} (exact)", float(ppca.log_likelihood(xc_test, pp).mean())))
        table.append((f"VAE, M = {mm}, ELBO (L = 10)", float(elbo(model, xc_test, 10).mean())))
        table.append(
            (
                f"VAE, M = {mm}, importance weighted (K = {k_max})",
                float(log_likelihood(model, xc_test, k_max).mean()),
            )
        )
    for mm in (5, 10):
        pp = ppca.closed_form(xc, mm)
        table.append((f"PPCA, M = {mm} (exact)", float(ppca.log_likelihood(xc_test, pp).mean())))
    ks = [1, 10, 100] if quick else [1, 10, 100, 1000]
    iw = [float(log_likelihood(vn, xc_test, k).mean()) for k in ks]
    plots.save(
        plots.plot_vae_bounds(
            ks,
            {"VAE (M = 2), importance weighted": iw},
            {"VAE ELBO": table[1][1], "PPCA M = 2": table[0][1]},
        ),
        out_dir / "vae_bounds.png",
    )
    table_md = "\n".join(f"| {name} | {value:.2f} |" for name, value in table)
    mean_sd = float(vn.encode(xc_test)[1].mean())

    return table_md, mean_sd


def _markdown(
    n: int,
    d: int,
    m: int,
    elbo_lin: float,
    ll_ppca: float,
    rel_c: float,
    diff: float,
    se: float,
    table_md: str,
    mean_sd: float,
) -> str:
    return f"""
The VAE observes `"obs"` given a decoder's output and samples `"z"` from N(0, I) in the
plate `"data"`; its guide is the amortized encoder q(z|x) = N(mu(x), diag sigma^2(x)).

**Linear VAE = PPCA.** On {n} draws from a PPCA (D = {d}, M = {m}) the linear VAE's exact
ELBO per point, {elbo_lin:.4f}, is within {abs(elbo_lin - ll_ppca) / abs(ll_ppca):.1e} of
the closed-form PPCA log-likelihood {ll_ppca:.4f}, and W W^T + sigma^2 I within
{rel_c:.1e} (relative Frobenius) of PPCA's C.

**Trace_ELBO and the analytic KL** train alike; their estimates of the same model's ELBO
differ by {diff / se:.2f} standard errors. The analytic KL lowers the variance of the
encoder's gradient; near a good guide the loss *value* varies less under Trace_ELBO.

![training curves](vae_training.png)

**The latent space.** With a 2-D code, the autoencoder's codes spread over an arbitrary
region; the VAE's posterior means fill the prior's disc (mean posterior sd {mean_sd:.2f}),
so that decoding draws from N(0, I) gives digits.

![latent spaces](vae_latent.png)

![reconstructions and prior samples](vae_samples.png)

A beta-VAE (beta = 4) traversal: each row varies one latent coordinate from -2.5 to 2.5.

![traversal](vae_traversal.png)

**Held-out log-likelihood** (digits in [0, 1], one noise sigma for both, nats per image):

| model | log p(x) |
|---|---|
{table_md}

![bounds](vae_bounds.png)
"""
