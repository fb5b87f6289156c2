r"""What the PPCA modules share: the parameters container, the EM result, the input checks
and the building blocks of the density :math:`\mathcal N(\mu, W W^\top + \sigma^2 I)`."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._checks import as_array, as_data, check_int, check_like
from ..inference import has_nan

# One EM result for every EM of the library (issue 18): pca's, which ppca shares.
from ..pca import EMResult  # noqa: F401 - re-exported by ppl_models.ppca

LOG_2PI = math.log(2.0 * math.pi)


class PPCAParams(NamedTuple):
    """The parameters of a PPCA model.

    Attributes
    ----------
    W : torch.Tensor, shape (D, M)
        The factor loadings. Identified only up to :math:`W R` with :math:`R` orthogonal:
        compare :math:`C = W W^\\top + \\sigma^2 I` or the span of ``W``, never ``W`` itself.
    mu : torch.Tensor, shape (D,)
        The mean.
    sigma2 : torch.Tensor, shape ()
        The noise variance :math:`\\sigma^2 > 0`.
    """

    W: torch.Tensor
    mu: torch.Tensor
    sigma2: torch.Tensor


# ---------------------------------------------------------------------------- helpers


def check_latent_dim(latent_dim: object, d: int) -> int:
    if d < 2:
        raise ValueError(f"x must have at least 2 columns for PPCA (M < D); got {d}")
    return check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)


def check_params(params: object, name: str = "params") -> PPCAParams:
    """Convert a ``PPCAParams``-like triple to tensors of one dtype and check the shapes."""
    if not isinstance(params, tuple) or len(params) != 3:
        raise TypeError(f"{name} must be a PPCAParams(W, mu, sigma2); got {type(params).__name__}")
    w, mu, s2 = (
        as_array(p, f"{name}.{field}") for p, field in zip(params, PPCAParams._fields, strict=True)
    )
    check_like(**{f"{name}.W": w, f"{name}.mu": mu.to(w.dtype), f"{name}.sigma2": s2.to(w.dtype)})
    mu, s2 = mu.to(w), s2.to(w)
    if w.ndim != 2 or mu.ndim != 1 or mu.shape[0] != w.shape[0] or s2.numel() != 1:
        raise ValueError(
            f"{name} must hold W of shape (D, M), mu of shape (D,) and a scalar sigma2; got "
            f"W {tuple(w.shape)}, mu {tuple(mu.shape)}, sigma2 {tuple(s2.shape)}"
        )
    if not 1 <= w.shape[1] < w.shape[0]:
        raise ValueError(
            f"{name}.W must have fewer columns than rows and at least one (1 <= M < D); got "
            f"{tuple(w.shape)}"
        )
    s2 = s2.reshape(())
    finite = bool(torch.isfinite(w).all() & torch.isfinite(mu).all() & torch.isfinite(s2))
    if not finite or not float(s2) > 0:
        raise ValueError(f"{name} must be finite with sigma2 > 0; got sigma2 = {float(s2)}")
    return PPCAParams(w, mu, s2)


def check_rows(
    x: object, d: int, name: str = "x", what: str = "data_dim", ndim: int | tuple = 2
) -> torch.Tensor:
    """Rows of D coordinates (one point (D,) becomes one row when ``ndim`` allows it); NaN
    marks a missing coordinate, but no row may be missing entirely."""
    t = as_data(x, name, ndim=ndim, min_rows=1, allow_nan=True)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.shape[1] != d:
        raise ValueError(f"{name} must have {d} columns ({what}); got {t.shape[1]}")
    empty = torch.isnan(t).all(1)
    if bool(empty.any()):
        raise ValueError(
            f"{name} has rows with every coordinate missing (row {int(empty.nonzero()[0])}); "
            "drop them: they carry no information"
        )
    return t


def check_fit_rows(x: object, d: int) -> torch.Tensor:
    """Data to fit a PPCA model on: at least 2 rows, and not all the same row (on such
    data the likelihood grows without bound as sigma -> 0, and a fit runs away)."""
    t = check_rows(x, d)
    if t.shape[0] < 2:
        raise ValueError(f"x must have at least 2 rows to fit PPCA; got {t.shape[0]}")
    if has_nan(t):  # the spread of each column's observed values
        missing = torch.isnan(t)
        hi = torch.where(missing, -math.inf, t).amax(0)
        spread = hi - torch.where(missing, math.inf, t).amin(0)
    else:
        spread = t.amax(0) - t.amin(0)
    if not bool((spread > 0).any()):
        raise ValueError(
            "x has every row the same: PPCA's likelihood is unbounded there (sigma -> 0); "
            "fit data that vary"
        )
    return t


def check_points(x: object, params: PPCAParams, name: str = "x") -> torch.Tensor:
    """Rows to evaluate: (N, D), or one point (D,) as one row; NaN marks missing values."""
    return check_rows(x, params.mu.shape[0], name, "the data dimension of params", (1, 2))


def cast_like(params: PPCAParams, x: torch.Tensor) -> PPCAParams:
    return PPCAParams(*(p.to(device=x.device, dtype=x.dtype) for p in params))


def m_matrix(w: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    r""":math:`M = W^\top W + \sigma^2 I` (M x M)."""
    return w.T @ w + sigma2 * torch.eye(w.shape[1], dtype=w.dtype, device=w.device)


def cholesky_or_nan(a: torch.Tensor) -> torch.Tensor:
    """The Cholesky factor, or NaN where ``a`` is not positive definite (parameters that
    overflowed in a diverging fit): the log-likelihood is then NaN, which the training
    loops report as a diverging fit (keeping the last good parameters) instead of a
    linear-algebra error from deep inside the model. No host synchronisation."""
    chol, info = torch.linalg.cholesky_ex(a)
    bad = (info != 0).reshape(*info.shape, 1, 1)
    return torch.where(bad, torch.full_like(chol, float("nan")), chol)


# Rows per chunk in the missing-value routines, which hold an (rows, M, M) block.
MISSING_CHUNK_ELEMENTS = 2**22


def observed_moments(
    x: torch.Tensor, params: PPCAParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Per row n, with :math:`O_n` its observed coordinates: the centred observed values
    (zero where missing), :math:`b_n = W_{O_n}^\top (x_{O_n} - \mu_{O_n})`, the Cholesky
    factor of :math:`M_n = W_{O_n}^\top W_{O_n} + \sigma^2 I`, the observed mask and
    :math:`|O_n|`. Differentiable in the parameters."""
    w, mu, s2 = params
    obs = ~torch.isnan(x)
    xc = torch.where(obs, x - mu, torch.zeros((), dtype=x.dtype, device=x.device))
    b = xc @ w
    of = obs.to(x.dtype)
    mn = torch.einsum("nd,dm,dk->nmk", of, w, w)
    mn = mn + s2 * torch.eye(w.shape[1], dtype=x.dtype, device=x.device)
    return xc, b, cholesky_or_nan(mn), obs, of.sum(1)


def log_likelihood_missing(x: torch.Tensor, params: PPCAParams) -> torch.Tensor:
    """Rows with NaN: the Gaussian of the observed coordinates, by the inversion and
    determinant lemmas on each row's own :math:`M_n` (differentiable in the parameters)."""
    m = params.W.shape[1]
    rows = max(1, MISSING_CHUNK_ELEMENTS // (m * m + x.shape[1]))
    out = []
    for start in range(0, x.shape[0], rows):
        xc, b, chol, _, d_n = observed_moments(x[start : start + rows], params)
        u = torch.linalg.solve_triangular(chol, b.unsqueeze(-1), upper=False).squeeze(-1)
        quad = ((xc * xc).sum(1) - (u * u).sum(1)) / params.sigma2
        logdet = (d_n - m) * torch.log(params.sigma2) + 2 * torch.log(
            torch.diagonal(chol, dim1=-2, dim2=-1)
        ).sum(-1)
        out.append(-0.5 * (d_n * LOG_2PI + logdet + quad))
    return torch.cat(out)


def log_likelihood_complete(
    x: torch.Tensor, params: PPCAParams, stable: bool = False
) -> torch.Tensor:
    r"""``stable``: the quadratic form as :math:`\|r\|^2 / \sigma^2 + \|\bar z\|^2` with
    :math:`\bar z = M^{-1} W^\top \tilde x` and :math:`r = \tilde x - W \bar z` (since
    :math:`W^\top r = \sigma^2 \bar z`), which does not cancel: the fast form
    :math:`(\|\tilde x\|^2 - \|L^{-1} W^\top \tilde x\|^2) / \sigma^2` loses
    :math:`\epsilon \|\tilde x\|^2 / \sigma^2` (1e-3 nats per point where
    :math:`\sigma^2` is 1e-12 of the data's variance). One more :math:`O(NDM)` product:
    the public function pays it, the training loss does not."""
    w, mu, s2 = params
    d, m = w.shape
    xc = x - mu
    chol = cholesky_or_nan(m_matrix(w, s2))
    if stable:
        zbar = torch.cholesky_solve((xc @ w).T, chol).T
        r = xc - zbar @ w.T
        quad = (r * r).sum(1) / s2 + (zbar * zbar).sum(1)
    else:
        u = torch.linalg.solve_triangular(chol, (xc @ w).T, upper=False)
        quad = ((xc * xc).sum(1) - (u * u).sum(0)) / s2
    logdet = (d - m) * torch.log(s2) + 2 * torch.log(torch.diagonal(chol)).sum()
    return -0.5 * (d * LOG_2PI + logdet + quad)
