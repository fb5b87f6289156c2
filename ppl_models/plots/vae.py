"""The VAE topic's figures: training curves and bounds on the log-likelihood."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._common import checked, integer, mapping, number, optional, pyplot, same_length, vector


def _steps_and_losses(v, n):
    if not isinstance(v, tuple) or len(v) != 2:
        raise TypeError(f"{n} must be a pair (steps, losses)")
    steps, losses = vector()(v[0], f"{n}[0]"), vector()(v[1], f"{n}[1]")
    same_length(**{f"{n} steps": steps, "losses": losses})
    return steps, losses


@checked(
    curves=mapping(vector()),
    window=integer(1),
    validation=optional(mapping(_steps_and_losses, min_len=0)),
)
def plot_vae_training(curves: dict, window: int = 20, validation: dict | None = None) -> Figure:
    r"""Training curves: the loss per data point at every step (a moving average over
    ``window`` steps drawn over the raw values), one line per run, e.g. ``Trace_ELBO``
    against ``TraceMeanField_ELBO``; optional validation losses as markers.

    Parameters
    ----------
    curves : dict of str to array_like, shape (steps,)
        Run name to per-data-point losses (negative ELBO / N).
    window : int
        Moving-average width.
    validation : dict of str to (array_like, array_like), optional
        Run name to (steps, losses) of held-out evaluations.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for k, (name, losses) in enumerate(curves.items()):
        y = np.asarray(losses, dtype=float)
        color = f"C{k}"
        ax.plot(np.arange(1, len(y) + 1), y, color=color, alpha=0.25, lw=0.6)
        if len(y) >= window > 1:
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            ax.plot(np.arange(window, len(y) + 1), smooth, color=color, lw=1.6, label=name)
        else:
            ax.lines[-1].set_label(name)
        if validation and name in validation:
            steps, vals = validation[name]
            ax.plot(steps, vals, "o", ms=3, color=color, mfc="white", label=f"{name}, held out")
    ax.set_xlabel("step")
    ax.set_ylabel("loss per data point (nats)")
    lo = min(float(np.percentile(np.asarray(c, dtype=float), 1)) for c in curves.values())
    # Upper limit: where the runs are after a tenth of their steps, so that the early
    # descent does not flatten the part of the curves that tells them apart.
    hi = max(float(np.percentile(np.asarray(c, dtype=float), 90)) for c in curves.values())
    hi = min(
        hi,
        max(
            float(np.mean(np.asarray(c, dtype=float)[len(c) // 10 :][:window]))
            for c in curves.values()
        ),
    )
    if hi > lo:
        ax.set_ylim(lo - 0.05 * (hi - lo), hi)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@checked(
    ks=vector(nonneg=True),
    estimates=mapping(vector()),
    references=optional(mapping(number(), min_len=0)),
)
def plot_vae_bounds(ks, estimates: dict, references: dict | None = None) -> Figure:
    r"""Held-out log-likelihood estimates against the number of importance samples
    :math:`K` (log axis), with horizontal reference lines (an ELBO, PPCA's exact value).

    Parameters
    ----------
    ks : array_like, shape (k,)
    estimates : dict of str to array_like, shape (k,)
        Name to the mean estimate per data point at each ``K``.
    references : dict of str to float, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    k = np.asarray(ks, dtype=float)
    if not (k > 0).all():
        raise ValueError("ks must be positive (a log axis)")
    for name, values in estimates.items():
        same_length(ks=k, **{f"estimates[{name!r}]": values})
    for i, (name, values) in enumerate(estimates.items()):
        ax.plot(k, np.asarray(values, dtype=float), "o-", color=f"C{i}", label=name)
    for j, (name, value) in enumerate((references or {}).items()):
        ax.axhline(float(value), ls="--", lw=1, color=f"C{len(estimates) + j}", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("K (importance samples)")
    ax.set_ylabel("held-out log p(x) per point (nats)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
