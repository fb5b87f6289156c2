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
    r"""Training curves, the loss per data point at every step (a moving average over
    ``window`` steps drawn over the raw values, for runs of at least five windows), one
    line per run, e.g. ``Trace_ELBO`` against ``TraceMeanField_ELBO``; optional
    validation losses as markers.

    Two panels: the whole run, with limits from all of the data (so that the first steps,
    far above the rest, show), and the same curves from a tenth of the run on, with limits
    from that part, where the runs are told apart.

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
    fig, (ax_all, ax_late) = plt.subplots(1, 2, figsize=(11, 3.8))
    runs = {name: np.asarray(losses, dtype=float) for name, losses in curves.items()}
    longest = max(len(y) for y in runs.values())
    first = max(1, longest // 10)  # the zoomed panel starts at step first + 1
    late = []  # the values the zoomed panel shows, for its limits
    for ax in (ax_all, ax_late):
        for k, (name, y) in enumerate(runs.items()):
            color = f"C{k}"
            # A run shorter than a few windows is drawn as it is: its average would be a
            # few points at the end.
            if len(y) >= 5 * window and window > 1:
                ax.plot(np.arange(1, len(y) + 1), y, color=color, alpha=0.25, lw=0.6)
                smooth = np.convolve(y, np.ones(window) / window, mode="valid")
                ax.plot(np.arange(window, len(y) + 1), smooth, color=color, lw=1.6, label=name)
            else:
                ax.plot(np.arange(1, len(y) + 1), y, color=color, lw=1.2, label=name)
            if validation and name in validation:
                steps, vals = (np.asarray(a, dtype=float) for a in validation[name])
                ax.plot(steps, vals, "o", ms=3, color=color, mfc="white", label=f"{name}, held out")
                if ax is ax_late:
                    late.append(vals[steps > first])
            if ax is ax_late:
                late.append(y[first:])
        ax.set_xlabel("step")
    # The whole run: limits from all of the data; a log axis when it spans decades.
    lo = min(float(y.min()) for y in runs.values())
    hi = max(float(y.max()) for y in runs.values())
    if lo > 0 and hi / lo > 20:
        ax_all.set_yscale("log")
    elif hi > lo:
        ax_all.set_ylim(lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo))
    ax_all.set_ylabel("loss per data point (nats)")
    ax_all.set_title("the whole run")
    # From a tenth of the run on: limits from those steps (1st to 99th percentile of the
    # raw values, so that a single noisy minibatch does not flatten the curves).
    values = np.concatenate(late) if late else np.array([])
    if values.size:
        lo, hi = np.percentile(values, [1, 99])
        if hi > lo:
            ax_late.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax_late.set_xlim(first + 1, max(longest, first + 2))
    ax_late.set_title(f"from step {first + 1} on")
    ax_late.legend(fontsize=8)
    fig.suptitle("VAE training: loss per data point (negative ELBO / N)")
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
    ax.set(xscale="log", xlabel="K (importance samples)")
    ax.set_ylabel("held-out log p(x) per point (nats)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
