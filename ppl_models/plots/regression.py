"""The regression topic's figures: curve fits, predictive bands, error against order, evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._common import checked, mapping, optional, pyplot, same_length, text, to_numpy, vector


@checked(
    x=vector(),
    t=vector(),
    x_grid=vector(),
    mean=vector(),
    sd=vector(nonneg=True),
    truth=optional(vector()),
    title=optional(text),
    label=text,
)
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
    same_length(x=x, t=t)
    same_length(x_grid=x_grid, mean=mean, sd=sd, truth=truth)
    plt = pyplot()
    if ax is not None and not hasattr(ax, "fill_between"):
        raise TypeError(f"ax must be matplotlib Axes or None; got {type(ax).__name__}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
    else:
        fig = ax.figure
    xg, m, s = to_numpy(x_grid), to_numpy(mean), to_numpy(sd)
    ax.fill_between(xg, m - s, m + s, color="tab:red", alpha=0.2, lw=0, label=label)
    ax.plot(xg, m, color="tab:red", lw=1.5)
    if truth is not None:
        ax.plot(xg, to_numpy(truth), color="tab:green", lw=1.2, label="truth")
    ax.plot(to_numpy(x), to_numpy(t), "o", mfc="none", mec="tab:blue", ms=6, label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("t")
    if title:
        ax.set_title(title)
    return fig


def _fit_entry(v, n):
    if not isinstance(v, tuple) or len(v) not in (2, 4):
        raise TypeError(f"{n} must be a tuple (mean, sd) or (mean, sd, x, t)")
    return tuple(vector(nonneg=i == 1)(a, f"{n}[{i}]") for i, a in enumerate(v))


@checked(
    x=vector(),
    t=vector(),
    x_grid=vector(),
    fits=mapping(_fit_entry),
    truth=optional(vector()),
    title=text,
)
def plot_curve_fits(x, t, x_grid, fits: dict, truth=None, title: str = "M = {}") -> Figure:
    """A 2x2 (or 1xK) grid of predictive bands, one per model order (PRML Fig. 1.4).

    ``fits`` maps a label (e.g. the order M) to ``(mean, sd)`` on ``x_grid``, or to
    ``(mean, sd, x, t)`` when each panel has its own data (PRML Fig. 3.8); ``title`` is
    formatted with the label.
    """
    same_length(x=x, t=t)
    same_length(x_grid=x_grid, truth=truth)
    for label, fit in fits.items():
        same_length(**{f"fits[{label!r}] mean": fit[0], "sd": fit[1], "x_grid": x_grid})
        if len(fit) == 4:
            same_length(**{f"fits[{label!r}] x": fit[2], "t": fit[3]})
    plt = pyplot()
    k = len(fits)
    ncols = 2 if k == 4 else k
    nrows = (k + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    lo = min(float(to_numpy(t).min()), -1.3) - 0.3
    hi = max(float(to_numpy(t).max()), 1.3) + 0.3
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


@checked(orders=vector(), train_rms=vector(nonneg=True), test_rms=vector(nonneg=True))
def plot_rms_vs_order(orders, train_rms, test_rms) -> Figure:
    """Training and test root-mean-square error against the model order (PRML Fig. 1.5)."""
    same_length(orders=orders, train_rms=train_rms, test_rms=test_rms)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(to_numpy(orders), to_numpy(train_rms), "o-", mfc="none", label="training")
    ax.plot(to_numpy(orders), to_numpy(test_rms), "o-", mfc="none", label="test")
    ax.set_xlabel("M")
    ax.set_ylabel("$E_{RMS}$")
    ax.legend()
    return fig


@checked(orders=vector(), log_evidence=vector(), label=text)
def plot_evidence(orders, log_evidence, label: str = "ln p(t | α, β)") -> Figure:
    """The log evidence against the model order (PRML Fig. 3.14)."""
    same_length(orders=orders, log_evidence=log_evidence)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(to_numpy(orders), to_numpy(log_evidence), "o-", color="tab:purple", label=label)
    ax.set_xlabel("M")
    ax.set_ylabel("log evidence")
    ax.legend()
    return fig
