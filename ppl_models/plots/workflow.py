"""The Bayesian-workflow figures, drawn from ArviZ data through numpy only (no torch:
they run in the ArviZ-only test job): model choice, predictive checks, traces, LOO."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from .._deprecation import renamed_keywords
from ._common import checked, integer, mapping, number, optional, pyplot, same_length, text, vector


def _idata(v, n):
    from .._arviz import check_data

    return check_data(v, n)


def _var_names(v, n):
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or not v or not all(isinstance(x, str) for x in v):
        raise TypeError(f"{n} must be a non-empty list of variable names (str); got {v!r}"[:160])
    return list(v)


@checked(orders=vector(), curves=mapping(vector(nan=True)), title=text)
def plot_model_choice(orders, curves: dict, title: str = "model choice") -> Figure:
    r"""Criteria against model order, each curve shifted so that its maximum is 0, with the
    maximum marked: e.g. the log evidence :math:`\ln p(t \mid M)` and
    :math:`\mathrm{elpd}_{\mathrm{loo}}` of polynomial degrees (PRML Fig. 3.14).

    Parameters
    ----------
    orders : array_like, shape (K,)
        The model orders (x axis).
    curves : dict of str to array_like, shape (K,)
        Label to criterion values (higher is better; ``nan`` where not computed).
    title : str
        The axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    orders = np.asarray(orders)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, values) in enumerate(curves.items()):
        v = np.asarray(values, dtype=float)
        if v.shape != orders.shape:
            raise ValueError(f"curves[{label!r}] must have {orders.size} values; got {v.size}")
        if np.isnan(v).all():
            raise ValueError(f"curves[{label!r}] must have at least one value that is not NaN")
        best = int(np.nanargmax(v))
        ax.plot(orders, v - v[best], "o-", color=f"C{i}", label=f"{label} (best {orders[best]})")
        ax.plot(orders[best], 0.0, "*", color=f"C{i}", ms=14)
    ax.set_xlabel("model order")
    ax.set_ylabel("criterion - its maximum (nats)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _check_var(data, group: str, var_name: str) -> None:
    ds = _wf_group(data, group)
    if var_name not in ds.data_vars:
        raise ValueError(
            f"var_name {var_name!r} is not in the {group} group; it has {list(ds.data_vars)}"
        )


def _wf_group(data, name: str):
    from .._arviz import get_group

    return get_group(data, name)


def _wf_scalars(data, group: str, var_names=None) -> dict:
    """``{"w[0]": (chain, draw) array, ...}`` for every scalar component of a group."""
    import numpy as np

    ds = _wf_group(data, group)
    names = list(ds.data_vars) if var_names is None else list(var_names)
    out = {}
    for name in names:
        if name not in ds:
            raise ValueError(
                f"var_names: {name!r} is not in the {group} group ({list(ds.data_vars)})"
            )
        arr = np.asarray(ds[name].values, dtype=float)
        flat = arr.reshape((*arr.shape[:2], -1))
        if flat.shape[2] == 1 and arr.ndim == 2:
            out[str(name)] = flat[..., 0]
        else:
            for i, idx in enumerate(np.ndindex(*arr.shape[2:])):
                out[f"{name}[{','.join(map(str, idx))}]"] = flat[..., i]
    return out


@renamed_keywords(num_draws="num_samples")
@checked(data=_idata, var_name=text, num_samples=integer(1), seed=integer(0))
def plot_predictive_overlay(
    data, var_name: str = "obs", num_samples: int = 50, seed: int = 0
) -> Figure:
    r"""Prior and/or posterior predictive densities overlaid on the observed data.

    One panel per predictive group found in ``data`` (``prior_predictive`` from
    :func:`ppl_models.workflow.prior_predictive`, ``posterior_predictive``): the histogram
    (as a step line) of each of ``num_samples`` replicated data sets :math:`\tilde x^{(s)}`
    and of the observed :math:`x`. A prior predictive far wider than the data says the
    priors are vague; a posterior predictive whose spread misses the data says the model
    does. Works with ArviZ 0.x and 1.x data.

    Parameters
    ----------
    data : arviz.InferenceData or xarray.DataTree
        With ``observed_data`` and at least one predictive group holding ``var_name``.
    var_name : str
        The observed variable.
    num_samples : int
        Replicated data sets drawn per panel (formerly ``num_draws``).
    seed : int
        Chooses the draws shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    from .._arviz import group_names

    groups = [g for g in ("prior_predictive", "posterior_predictive") if g in group_names(data)]
    if not groups:
        raise ValueError(
            f"data must hold a prior_predictive or posterior_predictive group; it has "
            f"{group_names(data)}"
        )
    for group in ("observed_data", *groups):
        _check_var(data, group, var_name)
    observed = np.asarray(_wf_group(data, "observed_data")[var_name].values, dtype=float).ravel()
    rng = np.random.default_rng(seed)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        reps = np.asarray(_wf_group(data, group)[var_name].values, dtype=float)
        reps = reps.reshape((-1, observed.size))
        shown = reps[rng.choice(len(reps), size=min(num_samples, len(reps)), replace=False)]
        lo = min(observed.min(), np.quantile(shown, 0.01))
        hi = max(observed.max(), np.quantile(shown, 0.99))
        bins = np.linspace(lo, hi, 30)
        centres = 0.5 * (bins[1:] + bins[:-1])
        for i, rep in enumerate(shown):
            h, _ = np.histogram(rep, bins=bins, density=True)
            ax.plot(centres, h, color="C0" if group == "posterior_predictive" else "C1",
                    alpha=0.2, lw=1, label="replicated" if i == 0 else None)  # fmt: skip
        h, _ = np.histogram(observed, bins=bins, density=True)
        ax.plot(centres, h, color="k", lw=2, label="observed")
        ax.set_xlabel(var_name)
        ax.set_title(group.replace("_", " "))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@checked(data=_idata, var_names=_var_names, max_vars=integer(1))
def plot_trace_rank(data, var_names=None, max_vars: int = 6) -> Figure:
    r"""Trace plots (left) and rank plots (right) of posterior draws, one row per scalar.

    The rank plot (Vehtari et al. 2021) ranks all draws of a scalar jointly and shows the
    histogram of the ranks within each chain: chains sampling the same distribution give
    flat, overlapping histograms; a chain stuck elsewhere shows as a slope. Works with
    ArviZ 0.x and 1.x data.

    Parameters
    ----------
    data : arviz.InferenceData or xarray.DataTree
        With a ``posterior`` group.
    var_names : list of str, optional
        Variables to show (all by default).
    max_vars : int
        The most scalar components shown (the first ones).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    scalars = list(_wf_scalars(data, "posterior", var_names).items())[:max_vars]
    if not scalars:
        raise ValueError("data has no posterior variable to draw (var_names)")
    plt = pyplot()
    fig, axes = plt.subplots(len(scalars), 2, figsize=(10, 2.2 * len(scalars)), squeeze=False)
    for row, (name, draws) in zip(axes, scalars, strict=True):
        chains, n = draws.shape
        for c in range(chains):
            row[0].plot(draws[c], lw=0.6, color=f"C{c}", alpha=0.8)
        row[0].set_ylabel(name)
        ranks = np.argsort(np.argsort(draws.ravel(), kind="stable")).reshape(draws.shape)
        bins = np.linspace(0, chains * n, 21)
        for c in range(chains):
            row[1].hist(ranks[c], bins=bins, histtype="step", color=f"C{c}", lw=1.2)
        row[1].axhline(n / 20, color="k", ls="--", lw=1)
        row[1].set_yticks([])
    axes[0][0].set_title("trace (one colour per chain)")
    axes[0][1].set_title("rank histogram per chain (flat = mixing)")
    axes[-1][0].set_xlabel("draw")
    axes[-1][1].set_xlabel("rank among all draws")
    fig.tight_layout()
    return fig


def _datasets(v, n):
    from collections.abc import Mapping

    if isinstance(v, Mapping) and not hasattr(v, "groups") and not hasattr(v, "children"):
        if not v:
            raise ValueError(f"{n} must hold at least one ArviZ data set")
        return {k: _idata(d, f"{n}[{k!r}]") for k, d in v.items()}
    return {"posterior": _idata(v, n)}


@checked(datasets=_datasets, var_names=_var_names, prob=number(lo=0.0, hi=1.0))
def plot_forest(datasets, var_names=None, prob: float = 0.94) -> Figure:
    r"""Forest plot: posterior mean and central ``prob`` interval of each scalar, one colour
    per model or run, for ArviZ 0.x and 1.x data.

    Parameters
    ----------
    datasets : ArviZ data or dict of str to ArviZ data
        One posterior, or several by name (e.g. NUTS and an SVI guide) drawn side by side.
    var_names : list of str, optional
        Variables to show (default: all of the first dataset's posterior).
    prob : float
        Mass of the central interval (thick line: the central 50%).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    if not isinstance(datasets, dict):
        datasets = {"posterior": datasets}
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1); got {prob!r}")
    first = _wf_scalars(next(iter(datasets.values())), "posterior", var_names)
    names = list(first)
    if not names:
        raise ValueError("datasets have no posterior variable to draw (var_names)")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) * len(datasets) + 1.2))
    step = 0.8 / len(datasets)
    for j, (label, data) in enumerate(datasets.items()):
        scalars = _wf_scalars(data, "posterior", var_names)
        for i, name in enumerate(names):
            if name not in scalars:
                continue
            d = scalars[name].ravel()
            y = len(names) - 1 - i + 0.4 - (j + 0.5) * step
            lo, q1, q3, hi = np.quantile(d, [(1 - prob) / 2, 0.25, 0.75, (1 + prob) / 2])
            ax.plot([lo, hi], [y, y], color=f"C{j}", lw=1.2)
            ax.plot([q1, q3], [y, y], color=f"C{j}", lw=3.5)
            ax.plot(d.mean(), y, "o", color=f"C{j}", ms=5, label=label if i == 0 else None)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names[::-1])
    ax.set_title(f"posterior means, 50% and {prob:.0%} intervals")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@checked(data=_idata, var_name=text)
def plot_loo_pit(data, var_name: str = "obs") -> Figure:
    r"""LOO-PIT calibration plot: the empirical CDF of the leave-one-out probability
    integral transforms :math:`u_n = P(\tilde x_n \le x_n \mid x_{-n})`
    (:func:`ppl_models._arviz.loo_pit`) against the uniform CDF, with the 99% simultaneous
    band of a uniform sample of the same size (Kolmogorov-Smirnov,
    :math:`1.63 / \sqrt{N}`). An S shape below/above the diagonal: the predictive is too
    narrow/too wide; a shift: biased. Works with ArviZ 0.x and 1.x data.

    Parameters
    ----------
    data : arviz.InferenceData or xarray.DataTree
        With posterior, posterior_predictive, log_likelihood and observed_data groups.
    var_name : str
        The observed variable.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    from .._arviz import loo_pit

    u = np.sort(loo_pit(data, var_name).ravel())
    n = u.size
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    grid = np.linspace(0, 1, 201)
    band = 1.63 / np.sqrt(n)
    ecdf = np.searchsorted(u, grid, side="right") / n
    axes[0].fill_between(grid, np.clip(grid - band, 0, 1), np.clip(grid + band, 0, 1),
                         color="0.85", label="99% band (uniform)")  # fmt: skip
    axes[0].plot(grid, grid, color="k", lw=1)
    axes[0].step(grid, ecdf, color="C0", where="post", label="LOO-PIT ECDF")
    axes[0].set_xlabel("u")
    axes[0].set_ylabel("ECDF")
    axes[0].set_title(f"LOO-PIT (N = {n}), max |ECDF - u| = {np.max(np.abs(ecdf - grid)):.3f}")
    axes[0].legend(fontsize=8)
    axes[1].hist(u, bins=min(20, max(5, n // 5)), range=(0, 1), density=True, color="C0", alpha=0.6)
    axes[1].axhline(1.0, color="k", lw=1)
    axes[1].set_xlabel("u")
    axes[1].set_title("LOO-PIT histogram (uniform if calibrated)")
    fig.tight_layout()
    return fig


@checked(
    exact=vector(),
    estimates=mapping(vector()),
    pareto_k=optional(vector(inf=True)),
)
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
    for label, est in estimates.items():
        same_length(exact=exact, **{f"estimates[{label!r}]": est})
    same_length(exact=exact, pareto_k=pareto_k)
    plt = pyplot()
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
        ax.set(xlabel="observation n", ylabel="Pareto k", title="PSIS diagnostic")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@renamed_keywords(num_draws="num_samples")
@checked(data=_idata, var_name=text, num_samples=integer(1), seed=integer(0))
def plot_ppc(data, var_name: str = "obs", num_samples: int = 40, seed: int = 0) -> Figure:
    r"""Posterior predictive check from ArviZ data of either generation (0.x or 1.x).

    Left: the histogram of the observed values and those of ``num_samples`` replicated data
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
    num_samples : int
        Replicated data sets drawn on the left panel (formerly ``num_draws``).
    seed : int
        Chooses which draws are shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    from .._arviz import get_group

    for group in ("observed_data", "posterior_predictive"):
        _check_var(data, group, var_name)
    observed = np.asarray(get_group(data, "observed_data")[var_name].values, dtype=float)
    pp = np.asarray(get_group(data, "posterior_predictive")[var_name].values, dtype=float)
    reps = pp.reshape((-1, observed.size))
    rng = np.random.default_rng(seed)
    shown = rng.choice(len(reps), size=min(num_samples, len(reps)), replace=False)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    # One set of bin edges for the observed data and every replicate, so that their
    # histograms compare bar by bar; the bin width is numpy's "auto" rule on the observed
    # data (8 to 30 bins over the range shown). The replicates are summarised per bin (the
    # median and the central 90% of their densities): forty outlines on top of each other
    # cannot be read.
    obs = observed.ravel()
    lo = min(obs.min(), np.quantile(reps[shown], 0.005))
    hi = max(obs.max(), np.quantile(reps[shown], 0.995))
    width = float(np.diff(np.histogram_bin_edges(obs, bins="auto"))[0])
    n_bins = int(np.clip(round((hi - lo) / width), 8, 30)) if width > 0 and hi > lo else 8
    edges = np.linspace(lo, hi, n_bins + 1) if hi > lo else np.linspace(lo - 0.5, hi + 0.5, 9)
    per_unit = obs.size * np.diff(edges)  # densities over the whole data set

    def density(values):
        return np.histogram(values, bins=edges)[0] / per_unit

    dens = np.stack([density(reps[s]) for s in shown])
    band_lo, median, band_hi = np.quantile(dens, [0.05, 0.5, 0.95], axis=0)
    axes[0].stairs(
        band_hi,
        edges,
        baseline=band_lo,
        fill=True,
        color="C0",
        alpha=0.3,
        label=f"replicated $\\tilde x^{{(s)}}$: central 90% of {len(shown)}",
    )
    axes[0].stairs(median, edges, color="C0", lw=1.2, label="replicated: median")
    axes[0].stairs(density(obs), edges, color="k", lw=2, label="observed $x$")
    axes[0].set_ylim(0, 1.35 * max(band_hi.max(), density(obs).max(), 1e-12))  # the legend
    axes[0].set_xlabel(var_name)
    axes[0].set_title("posterior predictive check")
    axes[0].legend(fontsize=8)
    for ax, (name, stat) in zip(axes[1:], [("mean", np.mean), ("sd", np.std)], strict=True):
        t_rep = stat(reps, axis=1)
        t_obs = float(stat(observed))
        bins = int(np.clip(np.sqrt(len(t_rep)), 10, 30))  # 60 draws: 10 bins, not spikes
        ax.hist(t_rep, bins=bins, color="C0", alpha=0.6, density=True)
        ax.axvline(t_obs, color="k", lw=2)
        ax.set_title(f"T = {name}: p = {np.mean(t_rep >= t_obs):.2f}")
        ax.set_xlabel(f"{name} of a data set")
    fig.tight_layout()
    return fig
