"""The Bayesian-PCA topic's figures: Hinton diagrams and the ARD precisions' history."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._common import checked, mapping, matrix, number, optional, pyplot, to_numpy, vector


@checked(panels=mapping(matrix(), what="matrix"), max_weight=optional(number(positive=True)))
def plot_hinton(panels: dict, max_weight: float | None = None) -> Figure:
    """Hinton diagrams of loading matrices side by side (PRML Fig. 12.14): one square per
    entry, its area proportional to the magnitude, white for positive, black for negative.

    Parameters
    ----------
    panels : dict
        Title -> matrix of shape (D, M) (tensor or array).
    max_weight : float, optional
        The magnitude drawn as a full cell; the largest over all panels by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    if not panels:
        raise ValueError("panels must hold at least one matrix")
    mats = {k: np.asarray(to_numpy(v), dtype=float) for k, v in panels.items()}
    for k, v in mats.items():
        if v.ndim != 2:
            raise ValueError(f"panels[{k!r}] must be a 2-D matrix; got shape {v.shape}")
    top = max_weight or max(float(np.abs(v).max()) for v in mats.values()) or 1.0
    fig, axes = plt.subplots(1, len(mats), figsize=(2.6 * len(mats), 3.6), squeeze=False)
    for ax, (title, w) in zip(axes[0], mats.items(), strict=True):
        ax.set_facecolor("0.5")
        for (i, j), v in np.ndenumerate(w):
            size = np.sqrt(min(abs(v) / top, 1.0))
            colour = "white" if v > 0 else "black"
            ax.add_patch(plt.Rectangle((j - size / 2, i - size / 2), size, size, facecolor=colour))
        ax.set_xlim(-0.5, w.shape[1] - 0.5)
        ax.set_ylim(w.shape[0] - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


@checked(
    alpha_history=matrix(inf=True, nonneg=True),
    log_likelihood=optional(vector()),
)
def plot_alpha_history(alpha_history, log_likelihood=None) -> Figure:
    r"""The ARD precisions :math:`\alpha_i` across EM iterations (log scale), one line per
    column; a column that is switched off leaves the plot at :math:`\alpha = \infty`.

    Parameters
    ----------
    alpha_history : array_like, shape (T, M)
        E.g. ``bayesian_pca.ard_em(...).alpha_history``.
    log_likelihood : array_like, shape (T,), optional
        Drawn in a second panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    a = np.asarray(to_numpy(alpha_history), dtype=float)
    if a.ndim != 2:
        raise ValueError(f"alpha_history must have shape (T, M); got {a.shape}")
    ncols = 1 if log_likelihood is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.6), squeeze=False)
    ax = axes[0, 0]
    it = np.arange(1, a.shape[0] + 1)
    for i in range(a.shape[1]):
        ax.semilogy(it, np.where(np.isfinite(a[:, i]), a[:, i], np.nan), lw=1.5)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("α_i")
    ax.set_title("ARD precisions (a column leaves at α = ∞)")
    if log_likelihood is not None:
        ll = np.asarray(to_numpy(log_likelihood), dtype=float)
        axes[0, 1].plot(np.arange(1, len(ll) + 1), ll)
        axes[0, 1].set_xlabel("EM iteration")
        axes[0, 1].set_ylabel("ln p(X | W, μ, σ²)")
    fig.tight_layout()
    return fig
