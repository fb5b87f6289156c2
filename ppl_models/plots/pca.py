"""The PCA topic's figures: spectrum, components, reconstructions, projections, agreement."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from .._deprecation import renamed_keywords
from ._common import (
    checked,
    class_labels,
    image_shape_rule,
    integer,
    mapping,
    matrix,
    optional,
    points,
    pyplot,
    record,
    resolve_image_shape,
    same_length,
    scatter_classes,
    text,
    vector,
)

_pca_fields = record(
    "PCAParams", mean=vector(), components=matrix(), explained_variance=vector(nonneg=True)
)


def _pca_params(v, n):
    mean, comps, ev = _pca_fields(v, n)
    if comps.shape[0] != mean.shape[0] or ev.shape[0] != comps.shape[1]:
        raise ValueError(
            f"{n} must hold mean (D,), components (D, M) and explained_variance (M,); got "
            f"{mean.shape}, {comps.shape}, {ev.shape}"
        )
    return mean, comps, ev


@renamed_keywords(n_components="latent_dim")
@checked(eigenvalues=vector(nonneg=True), latent_dim=optional(integer(0)))
def plot_pca_spectrum(eigenvalues, latent_dim: int | None = None) -> Figure:
    r"""The eigenvalue spectrum of the covariance (PRML Fig. 12.4): left, the eigenvalues
    :math:`\lambda_i` (log scale); right, the reconstruction error
    :math:`J(M) = \sum_{i > M} \lambda_i` (PRML 12.18) and the fraction of variance kept.

    Parameters
    ----------
    eigenvalues : array_like, shape (D,)
        All eigenvalues, descending (e.g. ``pca.fit(x, D).explained_variance``).
    latent_dim : int, optional
        An :math:`M` to mark (formerly ``n_components``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
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
    if latent_dim is not None:
        for ax in axes:
            ax.axvline(latent_dim, color="0.5", ls="--", lw=1)
    axes[1].set_title("reconstruction error")
    fig.tight_layout()
    return fig


@checked(params=_pca_params, n=integer(1), image_shape=image_shape_rule)
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

    plt = pyplot()
    mean = np.asarray(params[0], dtype=float)
    comps = np.asarray(params[1], dtype=float)
    lam = np.asarray(params[2], dtype=float)
    shape = resolve_image_shape(mean.shape[0], image_shape)
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


def _ms(v, n):
    if not isinstance(v, (list, tuple, range)) or not len(v):
        raise TypeError(f"{n} must be a non-empty sequence of component counts; got {v!r}"[:160])
    return [integer(0)(m, f"{n}[{i}]") for i, m in enumerate(v)]


@checked(x=points(), params=_pca_params, ms=_ms, image_shape=image_shape_rule)
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
        As in :func:`plot_pca_components`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    x = np.atleast_2d(np.asarray(x, dtype=float))
    mean = np.asarray(params[0], dtype=float)
    comps = np.asarray(params[1], dtype=float)
    ms = [int(m) for m in ms]
    if x.shape[1] != mean.shape[0]:
        raise ValueError(f"x must have {mean.shape[0]} columns (params' D); got {x.shape[1]}")
    if max(ms) > comps.shape[1]:
        raise ValueError(f"ms asks for {max(ms)} components; params has {comps.shape[1]}")
    shape = resolve_image_shape(mean.shape[0], image_shape)
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


@checked(z=matrix(cols=2), labels=class_labels, title=text)
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

    plt = pyplot()
    labels = np.asarray(labels).ravel()
    same_length(z=z, labels=labels)
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    scatter_classes(ax, z, labels)
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    ax.set_title(title)
    ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2, title="class", title_fontsize=7)
    fig.tight_layout()
    return fig


@checked(reference=vector(), estimates=mapping(vector()))
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

    plt = pyplot()
    ref = np.asarray(reference, dtype=float).ravel()
    if not (ref != 0).all():
        raise ValueError("reference must be non-zero (relative errors divide by it)")
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
