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


# --- argument checks -------------------------------------------------------------------
#
# Every figure function checks its arguments at the entry, by name, through the rules
# below (``@_checked(x=_vec(), ...)``): a bad argument is a ValueError or TypeError naming
# it, never an error from inside matplotlib. Arrays arrive as float64 numpy arrays.


def _checked(**rules):
    """Decorate a figure function: each named argument passes its rule ``(value, name)
    -> value`` before the body runs."""
    import functools
    import inspect

    def decorate(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, rule in rules.items():
                bound.arguments[name] = rule(bound.arguments[name], name)
            return fn(*bound.args, **bound.kwargs)

        return wrapped

    return decorate


def _array(value, name, ndim, *, nan=False, inf=False, min_len=1, nonneg=False, cols=None):
    import numpy as np

    from ._checks import as_array

    t = as_array(value, name)
    a = t.detach().cpu().to(dtype=__import__("torch").float64).numpy()
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in allowed:
        want = "a 2-D matrix" if allowed == (2,) else " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {want}; got shape {a.shape}")
    if a.ndim and a.shape[0] < min_len:
        raise ValueError(f"{name} must have at least {min_len} value(s); got {a.shape[0]}")
    if cols is not None and a.ndim == 2 and a.shape[1] != cols:
        raise ValueError(f"{name} must have shape (N, {cols}); got {a.shape}")
    if a.ndim == 2 and a.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column; got shape {a.shape}")
    bad = np.isnan(a) if not nan else np.zeros(a.shape, dtype=bool)
    if not inf:
        bad = bad | np.isinf(a)
    if bad.any():
        allowed_text = "NaN allowed" if nan else "no NaN"
        raise ValueError(f"{name} must be finite ({allowed_text}); it has {int(bad.sum())} other")
    if nonneg and bool((a < 0).any()):
        raise ValueError(f"{name} must be non-negative")
    return a


def _vec(**kw):
    return lambda v, n: _array(v, n, 1, **kw)


def _mat(**kw):
    return lambda v, n: _array(v, n, 2, **kw)


def _rows(**kw):
    """Images or points, shape (K, D); one (D,) becomes one row."""

    def rule(v, n):
        import numpy as np

        return np.atleast_2d(_array(v, n, (1, 2), **kw))

    return rule


def _opt(rule):
    return lambda v, n: None if v is None else rule(v, n)


def _dict(rule, min_len=1, what="entry"):
    from collections.abc import Mapping

    def check(v, n):
        if not isinstance(v, Mapping):
            raise TypeError(f"{n} must be a dict; got {type(v).__name__}")
        if len(v) < min_len:
            raise ValueError(f"{n} must hold at least one {what}; got none")
        return {k: rule(x, f"{n}[{k!r}]") for k, x in v.items()}

    return check


def _int(minimum=None):
    """An integer rule without torch (the workflow figures draw in the ArviZ-only job)."""
    import numbers

    def check(v, n):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{n} must be an integer; got {type(v).__name__} {v!r}"[:160])
        if minimum is not None and v < minimum:
            raise ValueError(f"{n} must be an integer >= {minimum}; got {v}")
        return int(v)

    return check


def _num(positive=False, lo=None, hi=None):
    import math
    import numbers

    def check(v, n):
        if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{n} must be a number; got {type(v).__name__}")
        v = float(v)
        if not math.isfinite(v) or (positive and v <= 0):
            raise ValueError(f"{n} must be {'positive and ' if positive else ''}finite; got {v!r}")
        if (lo is not None and v <= lo) or (hi is not None and v >= hi):
            raise ValueError(f"{n} must be in ({lo}, {hi}); got {v!r}")
        return v

    return check


def _str(v, n):
    if not isinstance(v, str):
        raise TypeError(f"{n} must be a str; got {type(v).__name__}")
    return v


def _fig(v, n):
    from matplotlib.figure import Figure

    if not isinstance(v, Figure):
        raise TypeError(f"{n} must be a matplotlib Figure; got {type(v).__name__}")
    return v


def _idata(v, n):
    from ._arviz import check_data

    return check_data(v, n)


def _labels(v, n):
    """Class labels, shape (N,): numbers or strings, no NaN."""
    import numpy as np

    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    if type(v).__module__.split(".")[0] == "pandas" and hasattr(v, "to_numpy"):
        v = v.to_numpy()
    try:
        a = np.asarray(v)
    except ValueError as err:
        raise TypeError(f"{n} must be a 1-D array of class labels ({err})") from None
    if a.ndim != 1 or a.shape[0] == 0 or a.dtype.kind not in "biuUS":
        raise ValueError(f"{n} must be a non-empty 1-D array of class labels (integers or str)")
    return a


def _image_shape_rule(v, n):
    if v is None:
        return None
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise TypeError(f"{n} must be a pair (height, width); got {v!r}"[:160])
    return (_int(1)(v[0], f"{n}[0]"), _int(1)(v[1], f"{n}[1]"))


def _same_length(**arrays) -> None:
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        given = ", ".join(f"{k} has {m}" for k, m in lengths.items())
        raise ValueError(f"{' and '.join(lengths)} must have the same length; {given}")


def _pca_params(v, n):
    if not isinstance(v, tuple) or len(v) != 3:
        raise TypeError(f"{n} must be a PCAParams(mean, components, explained_variance)")
    mean = _array(v[0], f"{n}.mean", 1)
    comps = _array(v[1], f"{n}.components", 2)
    ev = _array(v[2], f"{n}.explained_variance", 1, nonneg=True)
    if comps.shape[0] != mean.shape[0] or ev.shape[0] != comps.shape[1]:
        raise ValueError(
            f"{n} must hold mean (D,), components (D, M) and explained_variance (M,); got "
            f"{mean.shape}, {comps.shape}, {ev.shape}"
        )
    return mean, comps, ev


def _ppca_params(v, n):
    if not isinstance(v, tuple) or len(v) != 3:
        raise TypeError(f"{n} must be a PPCAParams(W, mu, sigma2); got {type(v).__name__}")
    w = _array(v[0], f"{n}.W", 2)
    mu = _array(v[1], f"{n}.mu", 1)
    s2 = _array(v[2], f"{n}.sigma2", (0, 1), nonneg=True).reshape(-1)
    if mu.shape[0] != w.shape[0] or s2.shape != (1,) or not s2[0] > 0:
        raise ValueError(
            f"{n} must hold W (D, M), mu (D,) and a positive sigma2; got {w.shape}, "
            f"{mu.shape}, {s2.tolist()}"
        )
    return w, mu, s2[0]


def _var_names(v, n):
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or not v or not all(isinstance(x, str) for x in v):
        raise TypeError(f"{n} must be a non-empty list of variable names (str); got {v!r}"[:160])
    return list(v)


def _plt():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _image_path(v, n):
    if not isinstance(v, (str, os.PathLike)):
        raise TypeError(f"{n} must be a file path (str or os.PathLike); got {type(v).__name__}")
    path = Path(v)
    formats = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")
    if path.suffix.lower().lstrip(".") not in formats:
        raise ValueError(
            f"{n} must end in an image format's suffix ({', '.join('.' + f for f in formats)});"
            f" got {str(path)!r}"
        )
    return path


@_checked(fig=_fig, path=_image_path, dpi=_int(1))
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


def _file_stem(v, n):
    v = _str(v, n)
    if not v or "/" in v or "\\" in v or v in (".", ".."):
        raise ValueError(f"{n} must be a file name without a folder; got {v!r}")
    return v


@_checked(fig=_fig, name=_file_stem)
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


def _mle_pair(v, n):
    if not isinstance(v, tuple) or len(v) != 2:
        raise TypeError(f"{n} must be a pair (loc, variance), e.g. gaussian.mle(x)")
    return _num()(v[0], f"{n}[0] (loc)"), _num(positive=True)(v[1], f"{n}[1] (variance)")


@_checked(
    x=_vec(min_len=2),
    mle=_opt(_mle_pair),
    path=_opt(_mat(cols=2, min_len=0)),
    title=_opt(_str),
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

    plt = _plt()
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

    from .gaussian import NormalGammaParams

    if not isinstance(v, tuple) or len(v) != 4:
        raise TypeError(f"{n} must be a NormalGammaParams(mu, kappa, a, b)")
    mu = _num()(v[0], f"{n}.mu")
    kappa, a, b = (_num(positive=True)(x, f"{n}.{f}") for x, f in zip(v[1:], "kab", strict=True))
    return NormalGammaParams(*(torch.tensor(x, dtype=torch.float64) for x in (mu, kappa, a, b)))


def _flat(v, n):
    return _array(v, n, (1, 2, 3), min_len=1).ravel()


@_checked(posterior=_normal_gamma, mu_samples=_opt(_flat), lambda_samples=_opt(_flat))
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


@_checked(
    x=_vec(),
    t=_vec(),
    x_grid=_vec(),
    mean=_vec(),
    sd=_vec(nonneg=True),
    truth=_opt(_vec()),
    title=_opt(_str),
    label=_str,
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
    _same_length(x=x, t=t)
    _same_length(x_grid=x_grid, mean=mean, sd=sd, truth=truth)
    plt = _plt()
    if ax is not None and not hasattr(ax, "fill_between"):
        raise TypeError(f"ax must be matplotlib Axes or None; got {type(ax).__name__}")
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


def _fit_entry(v, n):
    if not isinstance(v, tuple) or len(v) not in (2, 4):
        raise TypeError(f"{n} must be a tuple (mean, sd) or (mean, sd, x, t)")
    return tuple(_vec(nonneg=i == 1)(a, f"{n}[{i}]") for i, a in enumerate(v))


@_checked(
    x=_vec(),
    t=_vec(),
    x_grid=_vec(),
    fits=_dict(_fit_entry),
    truth=_opt(_vec()),
    title=_str,
)
def plot_curve_fits(x, t, x_grid, fits: dict, truth=None, title: str = "M = {}") -> Figure:
    """A 2x2 (or 1xK) grid of predictive bands, one per model order (PRML Fig. 1.4).

    ``fits`` maps a label (e.g. the order M) to ``(mean, sd)`` on ``x_grid``, or to
    ``(mean, sd, x, t)`` when each panel has its own data (PRML Fig. 3.8); ``title`` is
    formatted with the label.
    """
    _same_length(x=x, t=t)
    _same_length(x_grid=x_grid, truth=truth)
    for label, fit in fits.items():
        _same_length(**{f"fits[{label!r}] mean": fit[0], "sd": fit[1], "x_grid": x_grid})
        if len(fit) == 4:
            _same_length(**{f"fits[{label!r}] x": fit[2], "t": fit[3]})
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


@_checked(orders=_vec(), train_rms=_vec(nonneg=True), test_rms=_vec(nonneg=True))
def plot_rms_vs_order(orders, train_rms, test_rms) -> Figure:
    """Training and test root-mean-square error against the model order (PRML Fig. 1.5)."""
    _same_length(orders=orders, train_rms=train_rms, test_rms=test_rms)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(_np(orders), _np(train_rms), "o-", mfc="none", label="training")
    ax.plot(_np(orders), _np(test_rms), "o-", mfc="none", label="test")
    ax.set_xlabel("M")
    ax.set_ylabel("$E_{RMS}$")
    ax.legend()
    return fig


@_checked(orders=_vec(), log_evidence=_vec(), label=_str)
def plot_evidence(orders, log_evidence, label: str = "ln p(t | α, β)") -> Figure:
    """The log evidence against the model order (PRML Fig. 3.14)."""
    _same_length(orders=orders, log_evidence=log_evidence)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(_np(orders), _np(log_evidence), "o-", color="tab:purple", label=label)
    ax.set_xlabel("M")
    ax.set_ylabel("log evidence")
    ax.legend()
    return fig


# --- logistic figures (owned by the logistic topic) ---

__all__ += ["plot_logistic_predictive"]


def _callable(v, n):
    if not callable(v):
        raise TypeError(f"{n} must be a function of a (M, 2) array; got {type(v).__name__}")
    return v


@_checked(
    x=_mat(cols=2),
    t=_vec(),
    panels=_dict(_callable),
    resolution=_int(2),
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

    plt = _plt()
    x = np.asarray(x, dtype=float)
    t = np.asarray(t, dtype=float)
    _same_length(x=x, t=t)
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
        p = _array(predict(grid), f"panels[{title!r}](grid)", (1, 2), min_len=0)
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


# --- pca figures (owned by the PCA topic) ---

__all__ += ["plot_pca_components", "plot_pca_reconstructions", "plot_pca_spectrum"]


def _image_shape(d: int, image_shape: tuple[int, int] | None) -> tuple[int, int]:
    if image_shape is not None:
        if image_shape[0] * image_shape[1] != d:
            raise ValueError(f"image_shape {tuple(image_shape)} must hold the {d} pixels")
        return tuple(image_shape)
    side = round(d**0.5)
    if side * side != d:
        raise ValueError(f"image_shape is needed: {d} pixels are not a square image")
    return side, side


@_checked(eigenvalues=_vec(nonneg=True), n_components=_opt(_int(0)))
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


@_checked(params=_pca_params, n=_int(1), image_shape=_image_shape_rule)
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


def _ms(v, n):
    if not isinstance(v, (list, tuple, range)) or not len(v):
        raise TypeError(f"{n} must be a non-empty sequence of component counts; got {v!r}"[:160])
    return [_int(0)(m, f"{n}[{i}]") for i, m in enumerate(v)]


@_checked(x=_rows(), params=_pca_params, ms=_ms, image_shape=_image_shape_rule)
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
    if x.shape[1] != mean.shape[0]:
        raise ValueError(f"x must have {mean.shape[0]} columns (params' D); got {x.shape[1]}")
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


@_checked(z=_mat(cols=2), labels=_labels, title=_str)
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


@_checked(reference=_vec(), estimates=_dict(_vec()))
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


# --- autoencoder figures (owned by the autoencoder topic) ---

__all__ += ["plot_codes_2d", "plot_denoising"]


@_checked(panels=_dict(_mat(cols=2)), labels=_labels, title=_opt(_str))
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
    for name, codes in panels.items():
        _same_length(**{f"panels[{name!r}]": codes, "labels": y})
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


@_checked(rows=_dict(_rows()), n=_int(1), image_shape=_image_shape_rule)
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
    for k, v in arrays.items():
        if v.shape[1] != first.shape[1] or v.shape[0] < min(n, first.shape[0]):
            raise ValueError(
                f"rows[{k!r}] must hold images of {first.shape[1]} pixels, at least "
                f"{min(n, first.shape[0])} of them, like the first row; got shape {v.shape}"
            )
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

__all__ += [
    "plot_forest",
    "plot_loo_pit",
    "plot_loo_pointwise",
    "plot_ppc",
    "plot_predictive_overlay",
    "plot_trace_rank",
]


__all__ += ["plot_model_choice"]


@_checked(orders=_vec(), curves=_dict(_vec(nan=True)), title=_str)
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
    plt = _plt()
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
    from ._arviz import get_group

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


@_checked(data=_idata, var_name=_str, num_draws=_int(1), seed=_int(0))
def plot_predictive_overlay(
    data, var_name: str = "obs", num_draws: int = 50, seed: int = 0
) -> Figure:
    r"""Prior and/or posterior predictive densities overlaid on the observed data.

    One panel per predictive group found in ``data`` (``prior_predictive`` from
    :func:`ppl_models.workflow.prior_predictive`, ``posterior_predictive``): the histogram
    (as a step line) of each of ``num_draws`` replicated data sets :math:`\tilde x^{(s)}`
    and of the observed :math:`x`. A prior predictive far wider than the data says the
    priors are vague; a posterior predictive whose spread misses the data says the model
    does. Works with ArviZ 0.x and 1.x data.

    Parameters
    ----------
    data : arviz.InferenceData or xarray.DataTree
        With ``observed_data`` and at least one predictive group holding ``var_name``.
    var_name : str
        The observed variable.
    num_draws : int
        Replicated data sets drawn per panel.
    seed : int
        Chooses the draws shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    from ._arviz import group_names

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
    plt = _plt()
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        reps = np.asarray(_wf_group(data, group)[var_name].values, dtype=float)
        reps = reps.reshape((-1, observed.size))
        shown = reps[rng.choice(len(reps), size=min(num_draws, len(reps)), replace=False)]
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


@_checked(data=_idata, var_names=_var_names, max_vars=_int(1))
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
    plt = _plt()
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


@_checked(datasets=_datasets, var_names=_var_names, prob=_num(lo=0.0, hi=1.0))
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
    plt = _plt()
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


@_checked(data=_idata, var_name=_str)
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

    from ._arviz import loo_pit

    u = np.sort(loo_pit(data, var_name).ravel())
    n = u.size
    plt = _plt()
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


@_checked(
    exact=_vec(),
    estimates=_dict(_vec()),
    pareto_k=_opt(_vec(inf=True)),
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
        _same_length(exact=exact, **{f"estimates[{label!r}]": est})
    _same_length(exact=exact, pareto_k=pareto_k)
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


@_checked(data=_idata, var_name=_str, num_draws=_int(1), seed=_int(0))
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

    for group in ("observed_data", "posterior_predictive"):
        _check_var(data, group, var_name)
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


# --- ppca figures (owned by the PPCA topic) ---

__all__ += [
    "plot_ppca_comparison",
    "plot_ppca_em",
    "plot_ppca_generative",
    "plot_ppca_imputation",
    "plot_ppca_posterior",
    "plot_ppca_selection",
]


def _ppca_np(a):
    import numpy as np

    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


@_checked(x=_mat(), params=_ppca_params, title=_str)
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

    x = _ppca_np(x)
    w, mu, s2 = (_ppca_np(p) for p in params)
    if x.ndim != 2 or x.shape[1] < 2 or w.ndim != 2 or w.shape[0] != x.shape[1]:
        raise ValueError(
            f"x must have shape (N, D) with D >= 2 matching params.W (D, M); got x "
            f"{x.shape}, W {w.shape}"
        )
    plt = _plt()
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


@_checked(
    z_true=lambda v, n: _array(v, n, (1, 2)),
    mean=lambda v, n: _array(v, n, (1, 2)),
    sd=lambda v, n: _array(v, n, (0, 1, 2), nonneg=True, min_len=1),
    n=_int(1),
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

    zt, m = _ppca_np(z_true).reshape(len(z_true), -1)[:, 0], _ppca_np(mean)
    m = m.reshape(len(mean), -1)[:, 0]
    if zt.shape != m.shape:
        raise ValueError(f"z_true and mean must have the same length; got {zt.shape}, {m.shape}")
    sd_first = _ppca_np(sd).reshape(-1)[:1] if np.ndim(sd) < 2 else _ppca_np(sd)[:, 0]
    if sd_first.shape not in ((1,), m.shape):
        raise ValueError(
            f"sd must be a scalar, one per coordinate, or one per point; got {sd.shape}"
        )
    s = np.broadcast_to(sd_first, m.shape)
    k = min(n, len(m))
    plt = _plt()
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


@_checked(histories=_dict(_vec()), ll_star=_num())
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

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, h in histories.items():
        gap = np.maximum(float(ll_star) - _ppca_np(h), 1e-16 * abs(float(ll_star)))
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
    dims = _array(v.dims, f"{n}.dims", 1)
    scores = _array(v.scores, f"{n}.scores", 1, inf=True)
    _same_length(**{f"{n}.dims": dims, f"{n}.scores": scores})
    latent_dim = _int(1)(v.latent_dim, f"{n}.latent_dim")
    return type(v)(latent_dim, dims, scores, _str(v.method, f"{n}.method"))


@_checked(selections=_dict(_selection))
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
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(selections), figsize=(3.6 * len(selections), 3.2), squeeze=False
    )
    labels = {
        "minka": "ln p(X | M) (Minka)",
        "bic": "BIC (lower is better)",
        "heldout": "held-out ln p per point",
    }
    for ax, (name, sel) in zip(axes[0], selections.items(), strict=True):
        dims, scores = _ppca_np(sel.dims), _ppca_np(sel.scores)
        ok = np.isfinite(scores)
        ax.plot(dims[ok], scores[ok], "o-", ms=3)
        ax.axvline(sel.latent_dim, color="C3", ls="--", label=f"chosen M = {sel.latent_dim}")
        ax.set_xlabel("M")
        ax.set_title(labels.get(sel.method, name), fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_checked(
    original=_mat(),
    observed=_mat(nan=True),
    imputed=_mat(),
    n=_int(1),
    image_shape=_image_shape_rule,
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

    a, b, c = (_ppca_np(v) for v in (original, observed, imputed))
    if not (a.shape == b.shape == c.shape) or a.ndim != 2:
        raise ValueError(
            f"original, observed and imputed must have one shape (N, D); got {a.shape}, "
            f"{b.shape}, {c.shape}"
        )
    h, w = _image_shape(a.shape[1], image_shape)
    k = min(n, a.shape[0])
    plt = _plt()
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


@_checked(panels=_dict(_dict(_num())))
def plot_ppca_comparison(panels: dict) -> Figure:
    """Bar charts side by side, one per panel: ``{title: {label: value}}`` (e.g. held-out
    log-likelihood per model, accuracy per classifier); values printed on the bars."""
    import math

    if not panels:
        raise ValueError("panels must hold at least one {title: {label: value}} entry")
    plt = _plt()
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


# --- bayesian pca figures (owned by the Bayesian PCA topic) ---

__all__ += ["plot_alpha_history", "plot_hinton"]


def _bpca_np(a):
    import numpy as np

    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


@_checked(panels=_dict(_mat(), what="matrix"), max_weight=_opt(_num(positive=True)))
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

    plt = _plt()
    if not panels:
        raise ValueError("panels must hold at least one matrix")
    mats = {k: np.asarray(_bpca_np(v), dtype=float) for k, v in panels.items()}
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


@_checked(
    alpha_history=_mat(inf=True, nonneg=True),
    log_likelihood=_opt(_vec()),
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

    plt = _plt()
    a = np.asarray(_bpca_np(alpha_history), dtype=float)
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
        ll = np.asarray(_bpca_np(log_likelihood), dtype=float)
        axes[0, 1].plot(np.arange(1, len(ll) + 1), ll)
        axes[0, 1].set_xlabel("EM iteration")
        axes[0, 1].set_ylabel("ln p(X | W, μ, σ²)")
    fig.tight_layout()
    return fig


# --- vae figures (owned by the VAE topic) ---

__all__ += ["plot_vae_bounds", "plot_vae_training"]


def _steps_and_losses(v, n):
    if not isinstance(v, tuple) or len(v) != 2:
        raise TypeError(f"{n} must be a pair (steps, losses)")
    steps, losses = _vec()(v[0], f"{n}[0]"), _vec()(v[1], f"{n}[1]")
    _same_length(**{f"{n} steps": steps, "losses": losses})
    return steps, losses


@_checked(
    curves=_dict(_vec()),
    window=_int(1),
    validation=_opt(_dict(_steps_and_losses, min_len=0)),
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

    plt = _plt()
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


@_checked(
    ks=_vec(nonneg=True),
    estimates=_dict(_vec()),
    references=_opt(_dict(_num(), min_len=0)),
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

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    k = np.asarray(ks, dtype=float)
    if not (k > 0).all():
        raise ValueError("ks must be positive (a log axis)")
    for name, values in estimates.items():
        _same_length(ks=k, **{f"estimates[{name!r}]": values})
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
