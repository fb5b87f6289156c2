"""The Gaussian topic's figures: the log-likelihood surface and the Normal-Gamma posterior."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._common import as_float_array, checked, matrix, number, optional, pyplot, text, vector


def _mle_pair(v, n):
    if not isinstance(v, tuple) or len(v) != 2:
        raise TypeError(f"{n} must be a pair (loc, variance), e.g. gaussian.mle(x)")
    return number()(v[0], f"{n}[0] (loc)"), number(positive=True)(v[1], f"{n}[1] (variance)")


@checked(
    x=vector(min_len=2),
    mle=optional(_mle_pair),
    path=optional(matrix(cols=2, min_len=0)),
    title=optional(text),
)
def plot_gaussian_loglik_surface(x, mle=None, path=None, title=None) -> Figure:
    r"""Contours of the univariate Gaussian log-likelihood :math:`\ln p(x \mid \mu, \sigma)`
    over :math:`(\mu, \sigma)`, relative to its maximum.

    Parameters
    ----------
    x : array_like, shape (N,)
        The data.
    mle : (loc, variance), optional
        The maximum-likelihood estimate to mark (e.g. ``gaussian.mle(x)``).
    path : array_like, shape (T, 2), optional
        Iterates ``(mu, sigma)`` of an optimiser (e.g. SVI) to draw on top.
    title : str, optional
        The axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    xs = np.asarray(x, dtype=np.float64).ravel()
    n = xs.size
    m, s = xs.mean(), xs.std()
    if not s > 0:
        raise ValueError("x must vary: a constant x has no likelihood surface (sigma_ML = 0)")
    # +-4 standard errors of (mu_ML, sigma_ML) show the quadratic bowl; widen to the path.
    mu_lo, mu_hi = m - 4 * s / np.sqrt(n), m + 4 * s / np.sqrt(n)
    sd_lo, sd_hi = s * (1 - 4 / np.sqrt(2 * n)), s * (1 + 4 / np.sqrt(2 * n))
    pts = None if path is None else np.asarray(path, dtype=np.float64).reshape(-1, 2)
    if pts is not None and len(pts):
        mu_lo, mu_hi = min(mu_lo, pts[:, 0].min()), max(mu_hi, pts[:, 0].max())
        sd_lo, sd_hi = min(sd_lo, pts[:, 1].min()), max(sd_hi, pts[:, 1].max())
    sd_lo = max(sd_lo, 0.05 * s)
    mu_g, sd_g = np.meshgrid(np.linspace(mu_lo, mu_hi, 160), np.linspace(sd_lo, sd_hi, 160))
    # sum_n (x_n - mu)^2 = N [s^2 + (m - mu)^2]: the surface costs O(grid), not O(N grid).
    ll = -n * np.log(sd_g) - 0.5 * n * (s**2 + (m - mu_g) ** 2) / sd_g**2
    ll_max = -n * np.log(s) - 0.5 * n
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    # -k^2/2: the k-standard-error contours of the quadratic approximation.
    levels = -0.5 * np.array([25.0, 16.0, 9.0, 4.0, 1.0])
    cs = ax.contour(mu_g, sd_g, ll - ll_max, levels=levels, cmap="viridis")
    ax.clabel(cs, fmt="%g", fontsize=7)
    ax.contourf(mu_g, sd_g, np.maximum(ll - ll_max, -50), levels=30, cmap="Greys_r", alpha=0.3)
    if pts is not None and len(pts):
        ax.plot(pts[:, 0], pts[:, 1], ".-", color="tab:orange", ms=2, lw=1, label="SVI path")
    if mle is not None:
        loc, var = (float(v) for v in mle)
        ax.plot([loc], [np.sqrt(var)], "r*", ms=12, label=r"$(\mu_{ML}, \sigma_{ML})$")
    ax.set_xlabel(r"$\mu$")
    ax.set_ylabel(r"$\sigma$")
    ax.set_title(title or r"$\ln p(x\mid\mu,\sigma) - \ln p_{max}$" + f" (N = {n})")
    if mle is not None or pts is not None:
        ax.legend(loc="upper right", fontsize=8)
    return fig


def _normal_gamma(v, n):
    import torch

    from ..gaussian import NormalGammaParams

    if not isinstance(v, tuple) or len(v) != 4:
        raise TypeError(f"{n} must be a NormalGammaParams(mu, kappa, a, b)")
    mu = number()(v[0], f"{n}.mu")
    kappa, a, b = (number(positive=True)(x, f"{n}.{f}") for x, f in zip(v[1:], "kab", strict=True))
    return NormalGammaParams(*(torch.tensor(x, dtype=torch.float64) for x in (mu, kappa, a, b)))


def _flat(v, n):
    return as_float_array(v, n, (1, 2, 3), min_len=1).ravel()


@checked(posterior=_normal_gamma, mu_samples=optional(_flat), lambda_samples=optional(_flat))
def plot_normal_gamma_posterior(posterior, mu_samples=None, lambda_samples=None) -> Figure:
    r"""The closed-form marginals of a Normal-Gamma posterior, :math:`\mu` (Student-t) and
    :math:`\lambda` (Gamma), with histograms of posterior samples (e.g. NUTS) over them.

    Parameters
    ----------
    posterior : NormalGammaParams
        :math:`(\mu_N, \kappa_N, a_N, b_N)`.
    mu_samples, lambda_samples : array_like, optional
        Draws of ``"mu"`` and ``"lambda"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np
    import torch

    plt = pyplot()
    mu, kappa, a, b = (torch.as_tensor(v, dtype=torch.float64) for v in posterior)
    t = torch.distributions.StudentT(2 * a, mu, torch.sqrt(b / (a * kappa)))
    g = torch.distributions.Gamma(a, b)
    t_sd = float(t.scale) * (3.0 if float(a) <= 1 else float(t.stddev) / float(t.scale))
    g_sd = float(g.stddev)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, d, samples, label, lo, hi in (
        (axes[0], t, mu_samples, r"$\mu$", float(mu) - 5 * t_sd, float(mu) + 5 * t_sd),
        (
            axes[1],
            g,
            lambda_samples,
            r"$\lambda$",
            max(float(g.mean) - 4 * g_sd, 1e-6 * g_sd),
            float(g.mean) + 6 * g_sd,
        ),
    ):
        grid = torch.linspace(lo, hi, 300, dtype=torch.float64)
        if samples is not None:
            ax.hist(
                np.asarray(samples).ravel(),
                bins=40,
                density=True,
                alpha=0.45,
                color="tab:blue",
                label="samples",
            )
        ax.plot(grid.numpy(), d.log_prob(grid).exp().numpy(), "k-", lw=1.5, label="closed form")
        ax.set_xlabel(label)
        ax.legend(fontsize=8)
    axes[0].set_title(r"$p(\mu \mid X)$: Student-t")
    axes[1].set_title(r"$p(\lambda \mid X)$: Gamma")
    fig.tight_layout()
    return fig
