"""The probabilistic-PCA topic's figures: the generative picture, posteriors, EM, model
selection, imputation and comparisons."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._common import (
    as_float_array,
    checked,
    image_shape_rule,
    integer,
    mapping,
    matrix,
    number,
    pyplot,
    record,
    resolve_image_shape,
    same_length,
    text,
    to_numpy,
    vector,
)

_ppca_fields = record(
    "PPCAParams",
    W=matrix(),
    mu=vector(),
    sigma2=lambda v, n: as_float_array(v, n, (0, 1), nonneg=True).reshape(-1),
)


def _ppca_params(v, n):
    w, mu, s2 = _ppca_fields(v, n)
    if mu.shape[0] != w.shape[0] or s2.shape != (1,) or not s2[0] > 0:
        raise ValueError(
            f"{n} must hold W (D, M), mu (D,) and a positive sigma2; got {w.shape}, "
            f"{mu.shape}, {s2.tolist()}"
        )
    return w, mu, s2[0]


@checked(x=matrix(), params=_ppca_params, title=text)
def plot_ppca_generative(x, params, title: str = "PPCA in two dimensions") -> Figure:
    r"""Points of a 2-D PPCA with :math:`M = 1` (or the first two coordinates otherwise),
    the line :math:`\mu + W z` and the 1- and 2-standard-deviation ellipses of
    :math:`C = W W^\top + \sigma^2 I` (PRML Fig. 12.9).

    Parameters
    ----------
    x : array_like, shape (N, D)
        Points, e.g. from ``ppca.sample``.
    params : PPCAParams
        ``(W, mu, sigma2)`` with ``W`` of shape (D, M).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    x = to_numpy(x)
    w, mu, s2 = (to_numpy(p) for p in params)
    if x.ndim != 2 or x.shape[1] < 2 or w.ndim != 2 or w.shape[0] != x.shape[1]:
        raise ValueError(
            f"x must have shape (N, D) with D >= 2 matching params.W (D, M); got x "
            f"{x.shape}, W {w.shape}"
        )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(x[:, 0], x[:, 1], s=6, alpha=0.4, color="C0", label="x ~ N(μ, WWᵀ + σ²I)")
    c = (w @ w.T + float(s2) * np.eye(w.shape[0]))[:2, :2]
    evals, evecs = np.linalg.eigh(c)
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    for k in (1, 2):
        e = evecs @ (np.sqrt(evals)[:, None] * circle) * k
        ax.plot(
            mu[0] + e[0], mu[1] + e[1], color="C3", lw=1, label=f"{k} sd of C" if k == 1 else None
        )
    span = 2.5 * np.linalg.norm(w[:2, 0])
    u = w[:2, 0] / max(np.linalg.norm(w[:2, 0]), 1e-300)
    ax.plot(
        *(mu[:2, None] + u[:, None] * np.array([-span, span])), color="k", lw=1.5, label="μ + W z"
    )
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    return fig


@checked(
    z_true=lambda v, n: as_float_array(v, n, (1, 2)),
    mean=lambda v, n: as_float_array(v, n, (1, 2)),
    sd=lambda v, n: as_float_array(v, n, (0, 1, 2), nonneg=True, min_len=1),
    n=integer(1),
)
def plot_ppca_posterior(z_true, mean, sd, n: int = 40) -> Figure:
    r"""The posterior :math:`p(z_n \mid x_n)` of the first latent coordinate against the
    :math:`z_n` that generated each point: posterior means with 2-sd bars.

    Parameters
    ----------
    z_true : array_like, shape (N,) or (N, M)
    mean : array_like, same shape
        Posterior means.
    sd : array_like, shape (M,) or (N, M) or scalar
        Posterior standard deviations.
    n : int
        How many points to draw.
    """
    import numpy as np

    zt, m = to_numpy(z_true).reshape(len(z_true), -1)[:, 0], to_numpy(mean)
    m = m.reshape(len(mean), -1)[:, 0]
    if zt.shape != m.shape:
        raise ValueError(f"z_true and mean must have the same length; got {zt.shape}, {m.shape}")
    sd_first = to_numpy(sd).reshape(-1)[:1] if np.ndim(sd) < 2 else to_numpy(sd)[:, 0]
    if sd_first.shape not in ((1,), m.shape):
        raise ValueError(
            f"sd must be a scalar, one per coordinate, or one per point; got {sd.shape}"
        )
    s = np.broadcast_to(sd_first, m.shape)
    k = min(n, len(m))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.errorbar(
        zt[:k], m[:k], yerr=2 * s[:k], fmt="o", ms=3, color="C0", alpha=0.8, label="E[z | x] ± 2 sd"
    )
    lo, hi = float(min(zt[:k].min(), m[:k].min())), float(max(zt[:k].max(), m[:k].max()))
    ax.plot([lo, hi], [lo, hi], color="k", lw=1, label="E[z | x] = z")
    ax.set_xlabel("true z (first coordinate)")
    ax.set_ylabel("posterior mean")
    ax.legend(fontsize=8)
    ax.set_title("The posterior over z")
    return fig


@checked(histories=mapping(vector()), ll_star=number())
def plot_ppca_em(histories: dict, ll_star: float) -> Figure:
    r"""EM's distance to the maximum, :math:`\ln L^* - \ln L_t`, per iteration (log scale).

    Parameters
    ----------
    histories : dict of str to array_like
        Label to the log-likelihood of every iterate (``em(...).log_likelihood``).
    ll_star : float
        The closed form's maximised log-likelihood.
    """
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, h in histories.items():
        gap = np.maximum(float(ll_star) - to_numpy(h), 1e-16 * abs(float(ll_star)))
        ax.semilogy(np.arange(len(gap)), gap, label=label)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("ln L* - ln L (closed form - EM)")
    ax.set_title("EM against the closed form")
    ax.legend(fontsize=8)
    return fig


def _selection(v, n):
    fields = ("latent_dim", "dims", "scores", "method")
    if not all(hasattr(v, f) for f in fields):
        raise TypeError(f"{n} must be a LatentDimSelection (ppca.select_latent_dim's result)")
    dims = as_float_array(v.dims, f"{n}.dims", 1)
    scores = as_float_array(v.scores, f"{n}.scores", 1, inf=True)
    same_length(**{f"{n}.dims": dims, f"{n}.scores": scores})
    latent_dim = integer(1)(v.latent_dim, f"{n}.latent_dim")
    return type(v)(latent_dim, dims, scores, text(v.method, f"{n}.method"))


@checked(selections=mapping(_selection))
def plot_ppca_selection(selections: dict) -> Figure:
    """One panel per criterion: its score against M, the chosen M marked.

    Parameters
    ----------
    selections : dict of str to LatentDimSelection
        E.g. ``{"minka": ppca.select_latent_dim(x, "minka"), ...}``.
    """
    import numpy as np

    if not selections:
        raise ValueError("selections must hold at least one LatentDimSelection")
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(selections), figsize=(3.6 * len(selections), 3.2), squeeze=False
    )
    labels = {
        "minka": "ln p(X | M) (Minka)",
        "bic": "BIC (lower is better)",
        "heldout": "held-out ln p per point",
    }
    for ax, (name, sel) in zip(axes[0], selections.items(), strict=True):
        dims, scores = to_numpy(sel.dims), to_numpy(sel.scores)
        ok = np.isfinite(scores)
        ax.plot(dims[ok], scores[ok], "o-", ms=3)
        ax.axvline(sel.latent_dim, color="C3", ls="--", label=f"chosen M = {sel.latent_dim}")
        ax.set_xlabel("M")
        ax.set_title(labels.get(sel.method, name), fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@checked(
    original=matrix(),
    observed=matrix(nan=True),
    imputed=matrix(),
    n=integer(1),
    image_shape=image_shape_rule,
)
def plot_ppca_imputation(
    original, observed, imputed, n: int = 6, image_shape: tuple[int, int] | None = None
) -> Figure:
    """Rows of images: the original, with its missing pixels (NaN, shown red), imputed.

    Parameters
    ----------
    original, observed, imputed : array_like, shape (N, D)
        ``observed`` has NaN where a pixel is missing.
    n : int
        Images shown.
    image_shape : (int, int), optional
        Square by default.
    """
    import numpy as np

    a, b, c = (to_numpy(v) for v in (original, observed, imputed))
    if not (a.shape == b.shape == c.shape) or a.ndim != 2:
        raise ValueError(
            f"original, observed and imputed must have one shape (N, D); got {a.shape}, "
            f"{b.shape}, {c.shape}"
        )
    h, w = resolve_image_shape(a.shape[1], image_shape)
    k = min(n, a.shape[0])
    plt = pyplot()
    fig, axes = plt.subplots(3, k, figsize=(1.2 * k, 3.8), squeeze=False)
    cmap = plt.get_cmap("gray_r").with_extremes(bad="red")
    vmin, vmax = float(np.nanmin(a)), float(np.nanmax(a))
    for j in range(k):
        for i, (row, name) in enumerate(((a, "original"), (b, "missing (red)"), (c, "imputed"))):
            ax = axes[i, j]
            ax.imshow(np.ma.masked_invalid(row[j].reshape(h, w)), cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


@checked(panels=mapping(mapping(number())))
def plot_ppca_comparison(panels: dict) -> Figure:
    """Bar charts side by side, one per panel: ``{title: {label: value}}`` (e.g. held-out
    log-likelihood per model, accuracy per classifier); values printed on the bars."""
    import math

    if not panels:
        raise ValueError("panels must hold at least one {title: {label: value}} entry")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (title, values) in zip(axes[0], panels.items(), strict=True):
        names = list(values)
        vals = [float(values[k]) for k in names]
        bars = ax.bar(range(len(names)), vals, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
        for bar, v in zip(bars, vals, strict=True):
            ax.annotate(
                f"{v:.3g}",
                (bar.get_x() + bar.get_width() / 2, v),
                ha="center",
                va="bottom" if v >= 0 else "top",
                fontsize=8,
            )
        lo, hi = min(vals), max(vals)
        span = 0.15 * (hi - lo) + 1e-3 * abs(hi)
        if not all(map(math.isfinite, (hi - lo, span, hi + span, lo - 4 * span))):
            raise ValueError(f"panels[{title!r}] holds values too large to draw (their range)")
        if lo > 0:  # zoom on the differences (accuracies)
            pad = 0.15 * (hi - lo) + 1e-3 * hi
            ax.set_ylim(max(0.0, lo - 4 * pad), hi + pad)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
