"""Matplotlib figures used by the tutorials and the ``ppl-models tour`` report.

Every function takes data or fitted parameters and returns a ``matplotlib.figure.Figure``;
none of them shows or saves anything, so the caller decides (:func:`finish` does both the
way tutorials want). matplotlib is imported lazily: the library imports without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["finish", "save"]


def _plt():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG by its suffix) whole or not at all, and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        _plt().close(fig)
    return path


def finish(fig: Figure, name: str) -> Path | None:
    """End a tutorial figure: save it as ``$PPL_MODELS_OUT/<name>.png`` when that variable
    is set (scripts, tests), else show it (notebooks)."""
    out = os.environ.get("PPL_MODELS_OUT")
    if out:
        return save(fig, Path(out) / f"{name}.png")
    _plt().show()
    return None


# --- gaussian figures (owned by the Gaussian topic) ---

__all__ += ["plot_gaussian_loglik_surface", "plot_normal_gamma_posterior"]


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

    plt = _plt()
    xs = np.asarray(x, dtype=np.float64).ravel()
    n = xs.size
    m, s = xs.mean(), xs.std()
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

    plt = _plt()
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


# --- regression figures (owned by the regression topic) ---

__all__ += ["plot_curve_fits", "plot_evidence", "plot_predictive_band", "plot_rms_vs_order"]


def _np(a):
    import numpy as np

    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


def plot_predictive_band(
    x,
    t,
    x_grid,
    mean,
    sd,
    truth=None,
    ax=None,
    title: str | None = None,
    label: str = "mean ± 1 sd",
) -> Figure:
    """Data, a predictive mean and its ±1 sd band on a grid (PRML Fig. 1.4 / 3.8 style).

    ``x, t`` (N,) are the data; ``x_grid, mean, sd`` (G,) the prediction; ``truth`` (G,)
    an optional true curve (e.g. sin 2πx). Draws on ``ax`` when given.
    """
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
    else:
        fig = ax.figure
    xg, m, s = _np(x_grid), _np(mean), _np(sd)
    ax.fill_between(xg, m - s, m + s, color="tab:red", alpha=0.2, lw=0, label=label)
    ax.plot(xg, m, color="tab:red", lw=1.5)
    if truth is not None:
        ax.plot(xg, _np(truth), color="tab:green", lw=1.2, label="truth")
    ax.plot(_np(x), _np(t), "o", mfc="none", mec="tab:blue", ms=6, label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("t")
    if title:
        ax.set_title(title)
    return fig


def plot_curve_fits(x, t, x_grid, fits: dict, truth=None, title: str = "M = {}") -> Figure:
    """A 2x2 (or 1xK) grid of predictive bands, one per model order (PRML Fig. 1.4).

    ``fits`` maps a label (e.g. the order M) to ``(mean, sd)`` on ``x_grid``, or to
    ``(mean, sd, x, t)`` when each panel has its own data (PRML Fig. 3.8); ``title`` is
    formatted with the label.
    """
    plt = _plt()
    k = len(fits)
    ncols = 2 if k == 4 else k
    nrows = (k + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    lo = min(float(_np(t).min()), -1.3) - 0.3
    hi = max(float(_np(t).max()), 1.3) + 0.3
    for ax, (label, fit) in zip(axes.flat, fits.items(), strict=False):
        mean, sd = fit[0], fit[1]
        xs, ts = (fit[2], fit[3]) if len(fit) == 4 else (x, t)
        plot_predictive_band(
            xs, ts, x_grid, mean, sd, truth=truth, ax=ax, title=title.format(label)
        )
        ax.set_ylim(lo, hi)
    axes.flat[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_rms_vs_order(orders, train_rms, test_rms) -> Figure:
    """Training and test root-mean-square error against the model order (PRML Fig. 1.5)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(_np(orders), _np(train_rms), "o-", mfc="none", label="training")
    ax.plot(_np(orders), _np(test_rms), "o-", mfc="none", label="test")
    ax.set_xlabel("M")
    ax.set_ylabel("$E_{RMS}$")
    ax.legend()
    return fig


def plot_evidence(orders, log_evidence, label: str = "ln p(t | α, β)") -> Figure:
    """The log evidence against the model order (PRML Fig. 3.14)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(_np(orders), _np(log_evidence), "o-", color="tab:purple", label=label)
    ax.set_xlabel("M")
    ax.set_ylabel("log evidence")
    ax.legend()
    return fig


# --- logistic figures (owned by the logistic topic) ---

__all__ += ["plot_logistic_predictive"]


def plot_logistic_predictive(x, t, panels, resolution: int = 120) -> Figure:
    """Contours of the predictive probability :math:`p(t=1 \\mid x)` over 2-D inputs, one
    panel per predictor, with the data and the decision boundary :math:`p = 1/2` (PRML
    Fig. 4.14 style: the Bayesian predictive spreads where the data are sparse).

    Parameters
    ----------
    x : array_like, shape (N, 2)
        Inputs (without the bias column).
    t : array_like, shape (N,)
        Binary targets.
    panels : dict of str to callable
        Title -> function from a ``(M, 2)`` float64 numpy array of inputs to ``M``
        probabilities (numpy array or tensor).
    resolution : int
        Grid points per axis.
    """
    import numpy as np

    plt = _plt()
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    pad = 0.5
    lo, hi = x.min(0) - pad, x.max(0) + pad
    g0, g1 = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    levels = np.linspace(0.0, 1.0, 11)
    for ax, (title, predict) in zip(axes[0], panels.items(), strict=True):
        p = np.asarray(predict(grid), dtype=float).reshape(g0.shape)
        cs = ax.contourf(g0, g1, p, levels=levels, cmap="RdBu_r", alpha=0.75)
        ax.contour(g0, g1, p, levels=[0.1, 0.9], colors="0.3", linewidths=0.8, linestyles="--")
        ax.contour(g0, g1, p, levels=[0.5], colors="k", linewidths=1.5)
        ax.scatter(*x[t == 0].T, s=14, c="tab:blue", edgecolors="k", linewidths=0.4, label="t=0")
        ax.scatter(*x[t == 1].T, s=14, c="tab:red", edgecolors="k", linewidths=0.4, label="t=1")
        ax.set_title(title)
        ax.set_xlabel("$x_1$")
    axes[0][0].set_ylabel("$x_2$")
    fig.colorbar(cs, ax=list(axes[0]), label="$p(t=1 \\mid x)$", shrink=0.9)
    axes[0][0].legend(loc="upper left", fontsize=8)
    return fig


# --- pca figures (owned by the PCA topic) ---

__all__ += ["plot_pca_components", "plot_pca_reconstructions", "plot_pca_spectrum"]


def _image_shape(d: int, image_shape: tuple[int, int] | None) -> tuple[int, int]:
    if image_shape is not None:
        return tuple(image_shape)
    side = round(d**0.5)
    if side * side != d:
        raise ValueError(f"image_shape is needed: {d} pixels are not a square image")
    return side, side


def plot_pca_spectrum(eigenvalues, n_components: int | None = None) -> Figure:
    r"""The eigenvalue spectrum of the covariance (PRML Fig. 12.4): left, the eigenvalues
    :math:`\lambda_i` (log scale); right, the reconstruction error
    :math:`J(M) = \sum_{i > M} \lambda_i` (PRML 12.18) and the fraction of variance kept.

    Parameters
    ----------
    eigenvalues : array_like, shape (D,)
        All eigenvalues, descending (e.g. ``pca.fit(x, D).explained_variance``).
    n_components : int, optional
        An :math:`M` to mark.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _plt()
    lam = np.asarray(eigenvalues, dtype=float).ravel()
    m = np.arange(len(lam) + 1)
    discarded = np.concatenate([[lam.sum()], lam.sum() - np.cumsum(lam)]).clip(min=0)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    positive = lam > 0
    axes[0].semilogy(np.arange(1, len(lam) + 1)[positive], lam[positive], ".-")
    axes[0].set_xlabel("index $i$")
    axes[0].set_ylabel(r"eigenvalue $\lambda_i$")
    axes[0].set_title("spectrum of the covariance")
    axes[1].plot(m, discarded, ".-", label=r"$J(M) = \sum_{i>M}\lambda_i$")
    axes[1].set_xlabel("components $M$")
    axes[1].set_ylabel("mean squared reconstruction error")
    twin = axes[1].twinx()
    twin.plot(m, 1 - discarded / lam.sum(), color="tab:orange", lw=1, label="variance kept")
    twin.set_ylim(0, 1.02)
    twin.set_ylabel("fraction of variance kept")
    if n_components is not None:
        for ax in axes:
            ax.axvline(n_components, color="0.5", ls="--", lw=1)
    axes[1].set_title("reconstruction error")
    fig.tight_layout()
    return fig


def plot_pca_components(params, n: int = 8, image_shape: tuple[int, int] | None = None) -> Figure:
    r"""The mean image and the first ``n`` principal directions as images, with their
    eigenvalues (PRML Fig. 12.3).

    Parameters
    ----------
    params : PCAParams
        ``(mean, components, explained_variance)``.
    n : int
        Directions shown (at most the number fitted).
    image_shape : (int, int), optional
        Height and width; a square image by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _plt()
    mean = np.asarray(params[0], dtype=float)
    comps = np.asarray(params[1], dtype=float)
    lam = np.asarray(params[2], dtype=float)
    shape = _image_shape(mean.shape[0], image_shape)
    n = min(n, comps.shape[1])
    fig, axes = plt.subplots(1, n + 1, figsize=(1.6 * (n + 1), 2.0))
    axes = np.atleast_1d(axes)
    axes[0].imshow(mean.reshape(shape), cmap="gray_r")
    axes[0].set_title("mean", fontsize=9)
    for i in range(n):
        u = comps[:, i].reshape(shape)
        lim = np.abs(u).max()
        axes[i + 1].imshow(u, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[i + 1].set_title(rf"$\lambda_{{{i + 1}}}$ = {lam[i]:.3g}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_pca_reconstructions(
    x, params, ms=(1, 5, 10, 30), image_shape: tuple[int, int] | None = None
) -> Figure:
    r"""Images and their reconstructions :math:`\bar x + U_M U_M^\top (x - \bar x)` with
    :math:`M` components for each ``M`` in ``ms`` (PRML Fig. 12.5): one row per image.

    Parameters
    ----------
    x : array_like, shape (K, D)
        The images to reconstruct (a few).
    params : PCAParams
        With at least ``max(ms)`` components.
    ms : sequence of int
        Numbers of components.
    image_shape : (int, int), optional
        Height and width; a square image by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _plt()
    x = np.atleast_2d(np.asarray(x, dtype=float))
    mean = np.asarray(params[0], dtype=float)
    comps = np.asarray(params[1], dtype=float)
    ms = [int(m) for m in ms]
    if max(ms) > comps.shape[1]:
        raise ValueError(f"ms asks for {max(ms)} components; params has {comps.shape[1]}")
    shape = _image_shape(mean.shape[0], image_shape)
    rows, cols = x.shape[0], len(ms) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.5 * rows), squeeze=False)
    xc = x - mean
    # One grey scale for every panel, that of the originals, so the panels compare.
    scale = {"cmap": "gray_r", "vmin": float(x.min()), "vmax": float(x.max())}
    for r in range(rows):
        axes[r][0].imshow(x[r].reshape(shape), **scale)
        for c, m in enumerate(ms, start=1):
            u = comps[:, :m]
            axes[r][c].imshow((mean + xc[r] @ u @ u.T).reshape(shape), **scale)
    axes[0][0].set_title("original", fontsize=9)
    for c, m in enumerate(ms, start=1):
        axes[0][c].set_title(f"M = {m}", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


__all__ += ["plot_pca_agreement", "plot_pca_projection"]


def plot_pca_projection(z, labels, title: str = "PCA") -> Figure:
    r"""Points projected on their first two principal components,
    :math:`(u_1^\top(x_n - \bar x),\ u_2^\top(x_n - \bar x))`, coloured by class
    (PRML Fig. 12.10 for the oil-flow data; here the digit classes).

    Parameters
    ----------
    z : array_like, shape (N, 2)
        Two-dimensional codes (e.g. :func:`ppl_models.pca.transform` with two components).
    labels : array_like, shape (N,)
        Integer classes; one colour and one legend entry each.
    title : str
        Panel title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _plt()
    z = np.asarray(z, dtype=float)
    labels = np.asarray(labels).ravel()
    if z.ndim != 2 or z.shape[1] != 2 or z.shape[0] != labels.shape[0]:
        raise ValueError(
            f"z must have shape (N, 2) and labels shape (N,); got {z.shape} and {labels.shape}"
        )
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(z[sel, 0], z[sel, 1], s=6, alpha=0.7, color=cmap(i % cmap.N), label=str(c))
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    ax.set_title(title)
    ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2, title="class", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_pca_agreement(reference, estimates: dict) -> Figure:
    r"""Eigenvalues found by several routes against a reference: left, the values
    :math:`\lambda_i` (log scale), one marker per route; right, the relative error
    :math:`|\hat\lambda_i - \lambda_i| / \lambda_i` of each route (log scale; an exact
    zero is drawn at the bottom of the axis, 1e-17).

    Parameters
    ----------
    reference : array_like, shape (M,)
        The reference eigenvalues, descending (e.g. numpy's ``eigvalsh``).
    estimates : dict of str to array_like, shape (M_k,) with M_k <= M
        Route name to its eigenvalues (``PCAParams.explained_variance``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _plt()
    ref = np.asarray(reference, dtype=float).ravel()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    i = np.arange(1, len(ref) + 1)
    axes[0].semilogy(i, ref, "-", color="0.6", lw=3, label="reference")
    markers = "ox+^sdv*"
    for k, (name, lam) in enumerate(estimates.items()):
        lam = np.asarray(lam, dtype=float).ravel()
        if len(lam) > len(ref):
            raise ValueError(f"estimates[{name!r}] has more values than reference")
        j = i[: len(lam)]
        mk = markers[k % len(markers)]
        axes[0].semilogy(j, lam, mk, ms=5, mfc="none", color=f"C{k}", label=name)
        rel = np.abs(lam - ref[: len(lam)]) / np.abs(ref[: len(lam)])
        axes[1].semilogy(j, np.maximum(rel, 1e-17), mk, ms=5, mfc="none", color=f"C{k}")
    axes[0].set_xlabel("index $i$")
    axes[0].set_ylabel(r"$\lambda_i$")
    axes[0].set_title("eigenvalues")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("index $i$")
    axes[1].set_ylabel("relative error")
    axes[1].set_title("against the reference")
    fig.tight_layout()
    return fig


# --- autoencoder figures (owned by the autoencoder topic) ---

__all__ += ["plot_codes_2d", "plot_denoising"]


def plot_codes_2d(panels: dict, labels, title: str | None = None) -> Figure:
    r"""Two-dimensional codes (PCA scores, an autoencoder's latent codes), one scatter per
    panel, each point coloured by its class.

    Parameters
    ----------
    panels : dict of str to array_like, shape (N, 2)
        Panel title to codes of the same N points.
    labels : array_like, shape (N,)
        Integer classes (e.g. the digit shown).
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _plt()
    y = np.asarray(labels).ravel()
    classes = np.unique(y)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (name, codes) in zip(axes[0], panels.items(), strict=True):
        z = np.asarray(codes, dtype=float)
        for i, c in enumerate(classes):
            sel = y == c
            ax.scatter(z[sel, 0], z[sel, 1], s=6, alpha=0.7, color=cmap(i % cmap.N), label=str(c))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
    axes[0][-1].legend(
        loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2, title="class"
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_denoising(rows: dict, n: int = 8, image_shape: tuple[int, int] | None = None) -> Figure:
    r"""Images in rows: e.g. clean digits, their corrupted copies, and the reconstructions
    of the corrupted copies by a plain and by a denoising autoencoder.

    Parameters
    ----------
    rows : dict of str to array_like, shape (K, D)
        Row label to images (the same K images in every row, first ``n`` shown).
    n : int
        Images per row.
    image_shape : (int, int), optional
        Height and width; a square image by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _plt()
    arrays = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in rows.items()}
    first = next(iter(arrays.values()))
    shape = _image_shape(first.shape[1], image_shape)
    n = min(n, first.shape[0])
    fig, axes = plt.subplots(
        len(arrays), n, figsize=(1.1 * n + 1.6, 1.15 * len(arrays)), squeeze=False
    )
    # One grey scale for every panel, that of the first row, so that the rows compare.
    scale = {"cmap": "gray_r", "vmin": float(first.min()), "vmax": float(first.max())}
    for r, (name, imgs) in enumerate(arrays.items()):
        for c in range(n):
            axes[r][c].imshow(imgs[c].reshape(shape), **scale)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


# --- workflow figures (owned by the workflow module) ---

__all__ += ["plot_loo_pointwise", "plot_ppc"]


def plot_loo_pointwise(exact, estimates, pareto_k=None) -> Figure:
    r"""Pointwise PSIS-LOO estimates against the exact :math:`\log p(x_n \mid x_{-n})`.

    Parameters
    ----------
    exact : array_like, shape (N,)
        The exact leave-one-out log predictive densities.
    estimates : dict of str to array_like, shape (N,)
        Label to PSIS-LOO pointwise estimates (``LooResult.elpd_i``).
    pareto_k : array_like, shape (N,), optional
        Pareto shape estimates of the first estimate, shown on a second panel with the
        0.7 reliability threshold.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    exact = np.asarray(exact, dtype=float)
    plt = _plt()
    ncols = 1 if pareto_k is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 4), squeeze=False)
    ax = axes[0][0]
    lo, hi = exact.min(), exact.max()
    pad = 0.05 * (hi - lo + 1e-12)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=1, label="equality")
    for i, (label, est) in enumerate(estimates.items()):
        est = np.asarray(est, dtype=float)
        ax.scatter(exact, est, s=18, color=f"C{i}", label=f"{label} (sum {est.sum():.2f})")
    ax.set_xlabel(f"exact log p(x_n | x_-n) (sum {exact.sum():.2f})")
    ax.set_ylabel("PSIS-LOO estimate")
    ax.set_title("leave-one-out predictive density")
    ax.legend(fontsize=8)
    if pareto_k is not None:
        k = np.asarray(pareto_k, dtype=float)
        ax = axes[0][1]
        ax.plot(np.arange(len(k)), k, "o", ms=4)
        ax.axhline(0.7, color="C3", ls="--", label="0.7: unreliable above")
        ax.set_xlabel("observation n")
        ax.set_ylabel("Pareto k")
        ax.set_title("PSIS diagnostic")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_ppc(data, var_name: str = "obs", num_draws: int = 40, seed: int = 0) -> Figure:
    r"""Posterior predictive check from ArviZ data of either generation (0.x or 1.x).

    Left: the histogram of the observed values and those of ``num_draws`` replicated data
    sets :math:`\tilde x^{(s)}` drawn at random from the ``posterior_predictive`` group.
    Right: the predictive distribution of two test statistics, the mean and the standard
    deviation of a data set, with the observed values and the posterior predictive p-values
    :math:`P(T(\tilde x) \ge T(x) \mid x)` (Gelman et al., *BDA3*, 6.3).

    Parameters
    ----------
    data : arviz.InferenceData or xarray.DataTree
        With ``posterior_predictive`` and ``observed_data`` groups holding ``var_name``
        (e.g. from :func:`ppl_models.workflow.to_inference_data`).
    var_name : str
        The observed variable.
    num_draws : int
        Replicated data sets drawn on the left panel.
    seed : int
        Chooses which draws are shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    from ._arviz import get_group

    observed = np.asarray(get_group(data, "observed_data")[var_name].values, dtype=float)
    pp = np.asarray(get_group(data, "posterior_predictive")[var_name].values, dtype=float)
    reps = pp.reshape((-1, observed.size))
    rng = np.random.default_rng(seed)
    shown = rng.choice(len(reps), size=min(num_draws, len(reps)), replace=False)
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    lo = min(observed.min(), np.quantile(reps[shown], 0.005))
    hi = max(observed.max(), np.quantile(reps[shown], 0.995))
    bins = np.linspace(lo, hi, 25)
    for i, s in enumerate(shown):
        axes[0].hist(
            reps[s],
            bins=bins,
            density=True,
            histtype="step",
            color="C0",
            alpha=0.25,
            label="replicated $\\tilde x^{(s)}$" if i == 0 else None,
        )
    axes[0].hist(
        observed.ravel(),
        bins=bins,
        density=True,
        histtype="step",
        color="k",
        lw=2,
        label="observed $x$",
    )
    axes[0].set_xlabel(var_name)
    axes[0].set_title("posterior predictive check")
    axes[0].legend(fontsize=8)
    for ax, (name, stat) in zip(axes[1:], [("mean", np.mean), ("sd", np.std)], strict=True):
        t_rep = stat(reps, axis=1)
        t_obs = float(stat(observed))
        ax.hist(t_rep, bins=30, color="C0", alpha=0.6, density=True)
        ax.axvline(t_obs, color="k", lw=2)
        ax.set_title(f"T = {name}: p = {np.mean(t_rep >= t_obs):.2f}")
        ax.set_xlabel(f"{name} of a data set")
    fig.tight_layout()
    return fig
