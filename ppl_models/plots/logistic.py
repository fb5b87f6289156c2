"""The logistic-regression topic's figure: the predictive probability over the plane."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._common import as_float_array, checked, integer, mapping, matrix, pyplot, same_length, vector


def _callable(v, n):
    if not callable(v):
        raise TypeError(f"{n} must be a function of a (M, 2) array; got {type(v).__name__}")
    return v


@checked(
    x=matrix(cols=2),
    t=vector(),
    panels=mapping(_callable),
    resolution=integer(2),
)
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

    plt = pyplot()
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    same_length(x=x, t=t)
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("t must hold only 0 and 1 (binary targets)")
    pad = 0.5
    lo, hi = x.min(0) - pad, x.max(0) + pad
    g0, g1 = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    levels = np.linspace(0.0, 1.0, 11)
    for ax, (title, predict) in zip(axes[0], panels.items(), strict=True):
        p = as_float_array(predict(grid), f"panels[{title!r}](grid)", (1, 2), min_len=0)
        if p.size != g0.size or not ((p >= 0) & (p <= 1)).all():
            raise ValueError(
                f"panels[{title!r}] must return {g0.size} probabilities in [0, 1] (one per "
                f"grid row); got {p.size} values"
            )
        p = p.reshape(g0.shape)
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
