r"""Probabilistic PCA: a linear-Gaussian latent variable model whose maximum likelihood is PCA.

The generative model (Tipping & Bishop 1999; PRML 12.2)

.. math::

    z_n \sim \mathcal N(0, I_M), \qquad
    x_n \mid z_n \sim \mathcal N(W z_n + \mu, \sigma^2 I_D), \qquad n = 1, \dots, N,

so that, with :math:`z_n` integrated out,

.. math::

    x_n \sim \mathcal N(\mu, C), \qquad C = W W^\top + \sigma^2 I_D .

=====================  ==============  ==============================================
symbol                 argument        meaning
=====================  ==============  ==============================================
:math:`x_n`            ``x[n]``        a data point, shape (D,)
:math:`z_n`            site ``"z"``    its latent coordinates, shape (M,)
:math:`W`              ``W``           the D x M factor loading matrix
:math:`\mu`            ``mu``          the mean, shape (D,)
:math:`\sigma^2`       ``sigma2``      the isotropic noise variance
:math:`M`              ``latent_dim``  the latent dimension, :math:`1 \le M < D`
=====================  ==============  ==============================================

Dtypes. The Pyro model computes in ``torch.promote_types(module dtype, data dtype)``, as
torch's own type promotion does: a module built in the default float32 runs on float64
data, on the data's device; a prior put on a parameter (see :mod:`ppl_models.bayesian_pca`),
plain floats included, has its draws cast to that dtype.

References
----------
M. E. Tipping and C. M. Bishop, *Probabilistic principal component analysis*, JRSS B 61
(1999). C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), section 12.2.
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar, NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam

from ._checks import (
    as_array,
    as_data,
    check_choice,
    check_int,
    check_like,
    check_positive,
    promoted_like,
)
from .inference import data_plate, has_nan, iid, pyro_method
from .pca import (
    _centred_matmul,
    _centred_rmatmul,
    _chunk_rows,
    _covariance,
    _mean,
    _top_eigh,
    is_stream,
    moments,
)

__all__ = [
    "EMResult",
    "LatentDimSelection",
    "LatentPPCA",
    "MarginalPPCA",
    "PPCAClassifier",
    "PPCAParams",
    "closed_form",
    "covariance",
    "em",
    "impute",
    "log_likelihood",
    "posterior",
    "precision",
    "sample",
    "select_latent_dim",
]

_LOG_2PI = math.log(2.0 * math.pi)


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


class EMResult(NamedTuple):
    r"""What :func:`em` returns.

    Attributes
    ----------
    params : PPCAParams
        The parameters after the last iteration.
    log_likelihood : torch.Tensor, shape (n_iter + 1,)
        The total (observed-data) log-likelihood :math:`\ln p(X \mid W, \mu, \sigma^2)` of
        the starting point and after every iteration, float64. EM never lets it decrease.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the last iteration raised the log-likelihood by less than ``tol`` relative.
    """

    params: PPCAParams
    log_likelihood: torch.Tensor
    n_iter: int
    converged: bool


# ---------------------------------------------------------------------------- helpers


def _check_latent_dim(latent_dim: object, d: int) -> int:
    if d < 2:
        raise ValueError(f"x must have at least 2 columns for PPCA (M < D); got {d}")
    return check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)


def _check_params(params: object, name: str = "params") -> PPCAParams:
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


def _check_rows(
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


def _check_fit_rows(x: object, d: int) -> torch.Tensor:
    """Data to fit a PPCA model on: at least 2 rows, and not all the same row (on such
    data the likelihood grows without bound as sigma -> 0, and a fit runs away)."""
    t = _check_rows(x, d)
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


def _points(x: object, params: PPCAParams, name: str = "x") -> torch.Tensor:
    """Rows to evaluate: (N, D), or one point (D,) as one row; NaN marks missing values."""
    return _check_rows(x, params.mu.shape[0], name, "the data dimension of params", (1, 2))


def _like(params: PPCAParams, x: torch.Tensor) -> PPCAParams:
    return PPCAParams(*(p.to(device=x.device, dtype=x.dtype) for p in params))


def _m_matrix(w: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    r""":math:`M = W^\top W + \sigma^2 I` (M x M)."""
    return w.T @ w + sigma2 * torch.eye(w.shape[1], dtype=w.dtype, device=w.device)


def _cholesky_or_nan(a: torch.Tensor) -> torch.Tensor:
    """The Cholesky factor, or NaN where ``a`` is not positive definite (parameters that
    overflowed in a diverging fit): the log-likelihood is then NaN, which the training
    loops report as a diverging fit (keeping the last good parameters) instead of a
    linear-algebra error from deep inside the model. No host synchronisation."""
    chol, info = torch.linalg.cholesky_ex(a)
    bad = (info != 0).reshape(*info.shape, 1, 1)
    return torch.where(bad, torch.full_like(chol, float("nan")), chol)


# Rows per chunk in the missing-value routines, which hold an (rows, M, M) block.
_MISSING_CHUNK_ELEMENTS = 2**22


def _observed_moments(
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
    return xc, b, _cholesky_or_nan(mn), obs, of.sum(1)


def _log_likelihood_missing(x: torch.Tensor, params: PPCAParams) -> torch.Tensor:
    """Rows with NaN: the Gaussian of the observed coordinates, by the inversion and
    determinant lemmas on each row's own :math:`M_n` (differentiable in the parameters)."""
    m = params.W.shape[1]
    rows = max(1, _MISSING_CHUNK_ELEMENTS // (m * m + x.shape[1]))
    out = []
    for start in range(0, x.shape[0], rows):
        xc, b, chol, _, d_n = _observed_moments(x[start : start + rows], params)
        u = torch.linalg.solve_triangular(chol, b.unsqueeze(-1), upper=False).squeeze(-1)
        quad = ((xc * xc).sum(1) - (u * u).sum(1)) / params.sigma2
        logdet = (d_n - m) * torch.log(params.sigma2) + 2 * torch.log(
            torch.diagonal(chol, dim1=-2, dim2=-1)
        ).sum(-1)
        out.append(-0.5 * (d_n * _LOG_2PI + logdet + quad))
    return torch.cat(out)


def _log_likelihood_complete(
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
    chol = _cholesky_or_nan(_m_matrix(w, s2))
    if stable:
        zbar = torch.cholesky_solve((xc @ w).T, chol).T
        r = xc - zbar @ w.T
        quad = (r * r).sum(1) / s2 + (zbar * zbar).sum(1)
    else:
        u = torch.linalg.solve_triangular(chol, (xc @ w).T, upper=False)
        quad = ((xc * xc).sum(1) - (u * u).sum(0)) / s2
    logdet = (d - m) * torch.log(s2) + 2 * torch.log(torch.diagonal(chol)).sum()
    return -0.5 * (d * _LOG_2PI + logdet + quad)


# ---------------------------------------------------------------------- closed forms


def closed_form(x: object, latent_dim: int, *, chunk_size: int | None = None) -> PPCAParams:
    r"""The maximum-likelihood PPCA parameters (Tipping & Bishop 1999, eqs. 7-8).

    With :math:`\lambda_1 \ge \dots \ge \lambda_D` and :math:`U_M` the eigenvalues and
    leading eigenvectors of the divisor-:math:`N` sample covariance :math:`S`,

    .. math::

        \mu = \bar x, \qquad
        \sigma^2 = \frac{1}{D - M} \sum_{j=M+1}^{D} \lambda_j, \qquad
        W = U_M (\Lambda_M - \sigma^2 I)^{1/2}

    (the rotation :math:`R = I`; any :math:`W R` is equally likely). The maximised
    log-likelihood is
    :math:`-\frac N2 [D \ln 2\pi + \sum_{j \le M} \ln\lambda_j + (D - M)\ln\sigma^2 + D]`.
    :math:`S` is formed as in :func:`ppl_models.pca.fit` (``"eigh"``: one chunked pass,
    no centred copy; float64 accumulation) when :math:`D \le N`, and from the thin SVD
    of the centred data when :math:`D > N`; :math:`\sum_{j > M} \lambda_j =
    \operatorname{tr} S - \sum_{j \le M} \lambda_j`, so only the leading :math:`M`
    eigenpairs are computed.

    Parameters
    ----------
    x : array_like, shape (N, D), or a stream of row chunks
        Complete data (no NaN: for missing values use :func:`em`), :math:`N \ge 2`: a
        tensor, a numpy array or a pandas DataFrame (integer data become float64, float16
        float32; see :func:`ppl_models._checks.as_data`). A
        stream (a ``DataLoader``, :func:`ppl_models.datasets.open_npy`, any iterable of
        (rows, D) tensors) is read once into :func:`ppl_models.pca.moments`: memory
        independent of N.
    latent_dim : int
        :math:`M`, with :math:`1 \le M < D`.
    chunk_size : int, optional
        Rows per chunk when forming :math:`S`.

    Returns
    -------
    PPCAParams
        ``W`` (D, M), ``mu`` (D,), ``sigma2`` (), in the dtype and on the device of ``x``.

    Raises
    ------
    ValueError
        If the data have no variance outside the leading :math:`M` directions
        (:math:`\sigma^2 = 0`: the likelihood is unbounded).

    References
    ----------
    Tipping & Bishop (1999), section 3.2; PRML eqs. (12.45)-(12.46).

    Examples
    --------
    >>> x = torch.randn(500, 4, dtype=torch.float64) * torch.tensor([3.0, 1.0, 1.0, 1.0])
    >>> p = closed_form(x, 1)
    >>> p.W.shape, p.sigma2.shape
    (torch.Size([4, 1]), torch.Size([]))
    """
    if is_stream(x):
        mom, dtype = moments(x)
        m = _check_latent_dim(latent_dim, mom.mean.shape[0])
        return _from_covariance(mom.scatter / mom.n, mom.mean, m, dtype)
    x = as_data(x, "x", ndim=2, min_rows=2, allow_nan=True)
    if has_nan(x):
        raise ValueError(
            f"x has {int(torch.isnan(x).sum())} missing value(s) (NaN): the closed form needs "
            "complete data; em (the exact missing-data EM) and fit_svi with MarginalPPCA or "
            "LatentPPCA handle missing values"
        )
    n, d = x.shape
    m = _check_latent_dim(latent_dim, d)
    mean = _mean(x)
    if d <= n:
        cov = _covariance(x, mean, _chunk_rows(x, chunk_size))
        return _from_covariance(cov, mean, m, x.dtype)
    else:
        _, s, vh = torch.linalg.svd((x - mean).to(torch.float64), full_matrices=False)
        lam = s**2 / n
        evals, evecs, trace = lam[:m], vh[:m].T, lam.sum()
    return _from_spectrum(evals, evecs, trace, mean, d, x.dtype)


def _from_covariance(
    cov: torch.Tensor, mean: torch.Tensor, m: int, dtype: torch.dtype
) -> PPCAParams:
    evals, evecs = _top_eigh(cov, m)
    return _from_spectrum(evals, evecs, torch.diagonal(cov).sum(), mean, cov.shape[0], dtype)


def _from_spectrum(
    evals: torch.Tensor,
    evecs: torch.Tensor,
    trace: torch.Tensor,
    mean: torch.Tensor,
    d: int,
    dtype: torch.dtype,
) -> PPCAParams:
    """Tipping & Bishop's solution from the leading eigenpairs and tr S."""
    m = evals.shape[0]
    sigma2 = (trace - evals.sum()) / (d - m)
    # Zero up to the rounding of the eigenvalues (select_latent_dim's floor, 4 D eps lam_1).
    floor = 4 * d * torch.finfo(torch.float64).eps * max(float(evals[0]), 1e-300)
    if not float(sigma2) > floor:
        raise ValueError(
            f"x has no variance outside its leading {m} directions (sigma2 = {float(sigma2):.3g}); "
            "the PPCA likelihood is unbounded: use a smaller latent_dim"
        )
    w = evecs * (evals - sigma2).clamp_min(0).sqrt()
    return PPCAParams(w.to(dtype), mean.to(dtype), sigma2.to(dtype))


def covariance(params: PPCAParams) -> torch.Tensor:
    r"""The model covariance :math:`C = W W^\top + \sigma^2 I` (D x D), :math:`O(D^2 M)`.

    Examples
    --------
    >>> p = PPCAParams(torch.tensor([[1.0], [1.0]]), torch.zeros(2), torch.tensor(0.5))
    >>> covariance(p)
    tensor([[1.5000, 1.0000],
            [1.0000, 1.5000]])
    """
    w, _, s2 = _check_params(params)
    c = w @ w.T
    c.diagonal().add_(s2)
    return c


def precision(params: PPCAParams) -> torch.Tensor:
    r"""The precision :math:`C^{-1} = \sigma^{-2} (I - W M^{-1} W^\top)`,
    :math:`M = W^\top W + \sigma^2 I`, by the matrix inversion lemma: only the
    :math:`M \times M` matrix is factorised (:math:`O(D^2 M)`, no :math:`D \times D`
    inverse).

    Examples
    --------
    >>> p = PPCAParams(torch.tensor([[1.0], [1.0]]), torch.zeros(2), torch.tensor(0.5))
    >>> torch.allclose(precision(p) @ covariance(p), torch.eye(2))
    True
    """
    w, _, s2 = _check_params(params)
    chol = torch.linalg.cholesky(_m_matrix(w, s2))
    v = torch.linalg.solve_triangular(chol, w.T, upper=False)  # L^{-1} W^T
    p = -(v.T @ v)
    p.diagonal().add_(1.0)
    return p / s2


def log_likelihood(x: object, params: PPCAParams) -> torch.Tensor:
    r"""The log-density :math:`\ln \mathcal N(x_n \mid \mu, C)` of each row.

    With :math:`M = W^\top W + \sigma^2 I = L L^\top` and :math:`\tilde x = x - \mu`, the
    inversion and determinant lemmas give, in :math:`O(DM)` per row,

    .. math::

        \tilde x^\top C^{-1} \tilde x = \sigma^{-2}\big(\|\tilde x\|^2
            - \|L^{-1} W^\top \tilde x\|^2\big), \qquad
        \ln|C| = (D - M) \ln\sigma^2 + \ln|M| .

    Missing coordinates (NaN) are marginalised: a row with observed set :math:`O_n` gets
    the density of :math:`x_{O_n} \sim \mathcal N(\mu_{O_n}, W_{O_n} W_{O_n}^\top +
    \sigma^2 I)`, the same formulas with :math:`W_{O_n}` and :math:`|O_n|` in place of
    :math:`W` and :math:`D`. Differentiable in the parameters.

    Parameters
    ----------
    x : array_like, shape (N, D) or (D,)
        Points; NaN marks a missing coordinate (not a whole row).
    params : PPCAParams

    Returns
    -------
    torch.Tensor, shape (N,)

    Examples
    --------
    >>> p = PPCAParams(torch.tensor([[1.0], [0.0]]), torch.zeros(2), torch.tensor(1.0))
    >>> log_likelihood(torch.tensor([[0.0, 0.0], [float("nan"), 0.0]]), p)
    tensor([-2.1845, -0.9189])
    """
    params = _check_params(params)
    x = _points(x, params)
    params = _like(params, x)
    if bool(torch.isnan(x).any()):
        return _log_likelihood_missing(x, params)
    return _log_likelihood_complete(x, params, stable=True)


def posterior(x: object, params: PPCAParams) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The posterior :math:`p(z_n \mid x_n) = \mathcal N(M^{-1} W^\top (x_n - \mu),
    \sigma^2 M^{-1})` (PRML 12.42), :math:`M = W^\top W + \sigma^2 I`.

    With missing coordinates (NaN) each row conditions on its observed ones:
    :math:`M_n = W_{O_n}^\top W_{O_n} + \sigma^2 I`, mean
    :math:`M_n^{-1} W_{O_n}^\top (x_{O_n} - \mu_{O_n})`, covariance :math:`\sigma^2 M_n^{-1}`.

    Returns
    -------
    mean : torch.Tensor, shape (N, M)
    cov : torch.Tensor, shape (M, M), or (N, M, M) when ``x`` has missing values.

    Examples
    --------
    >>> p = PPCAParams(torch.tensor([[1.0], [0.0]]), torch.zeros(2), torch.tensor(1.0))
    >>> mean, cov = posterior(torch.tensor([[2.0, 5.0]]), p)
    >>> mean, cov
    (tensor([[1.]]), tensor([[0.5000]]))
    """
    params = _check_params(params)
    x = _points(x, params)
    w, mu, s2 = _like(params, x)
    if bool(torch.isnan(x).any()):
        _, b, chol, _, _ = _observed_moments(x, PPCAParams(w, mu, s2))
        mean = torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
        eye = torch.eye(w.shape[1], dtype=x.dtype, device=x.device).expand_as(chol)
        return mean, s2 * torch.cholesky_solve(eye, chol)
    chol = torch.linalg.cholesky(_m_matrix(w, s2))
    mean = torch.cholesky_solve(((x - mu) @ w).T, chol).T
    eye = torch.eye(w.shape[1], dtype=x.dtype, device=x.device)
    return mean, s2 * torch.cholesky_solve(eye, chol)


def impute(x: object, params: PPCAParams) -> torch.Tensor:
    r"""``x`` with each missing coordinate replaced by :math:`E[x_{\bar O_n} \mid x_{O_n}]
    = \mu_{\bar O_n} + W_{\bar O_n} E[z_n \mid x_{O_n}]` (the conditional mean of a
    Gaussian: the same as :math:`\mu + C_{\bar O O} C_{OO}^{-1} (x_O - \mu_O)`).

    Returns
    -------
    torch.Tensor, shape of ``x``
        A new tensor; observed entries are copied unchanged.

    Examples
    --------
    >>> p = PPCAParams(torch.tensor([[1.0], [1.0]]), torch.zeros(2), torch.tensor(1.0))
    >>> impute(torch.tensor([[2.0, float("nan")]]), p)
    tensor([[2., 1.]])
    """
    params = _check_params(params)
    t = as_data(x, "x", ndim=(1, 2), min_rows=1, allow_nan=True)
    rows = _points(t, params)
    w, mu, _ = _like(params, rows)
    mean, _ = posterior(rows, PPCAParams(w, mu, params.sigma2.to(rows)))
    filled = torch.where(torch.isnan(rows), mu + mean @ w.T, rows)
    return filled.reshape(t.shape)


def sample(
    params: PPCAParams, n: int, *, seed: int | None = None, return_latent: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Draw :math:`z_n \sim \mathcal N(0, I)`, then :math:`x_n \sim \mathcal N(W z_n + \mu,
    \sigma^2 I)`: ancestral sampling of the generative model.

    Parameters
    ----------
    params : PPCAParams
    n : int
        How many points.
    seed : int, optional
        Seed of a private generator (the global RNG is untouched); the global RNG if None.
    return_latent : bool
        Also return the :math:`z_n`.

    Returns
    -------
    x : torch.Tensor, shape (n, D)
    z : torch.Tensor, shape (n, M), only if ``return_latent``.

    Examples
    --------
    >>> p = PPCAParams(torch.tensor([[2.0], [0.0]]), torch.zeros(2), torch.tensor(0.01))
    >>> x = sample(p, 20000, seed=0)
    >>> torch.allclose(torch.cov(x.T), covariance(p), atol=0.05)
    True
    """
    w, mu, s2 = _check_params(params)
    n = check_int(n, "n", minimum=1)
    gen = None
    if seed is not None:
        gen = torch.Generator(device=w.device).manual_seed(check_int(seed, "seed", minimum=0))
    d, m = w.shape
    z = torch.randn(n, m, generator=gen, dtype=w.dtype, device=w.device)
    eps = torch.randn(n, d, generator=gen, dtype=w.dtype, device=w.device)
    x = mu + z @ w.T + s2.sqrt() * eps
    return (x, z) if return_latent else x


# ------------------------------------------------------------------------------- EM


def _em_method(n: int, d: int) -> str:
    # The covariance route costs O(N D^2) once and O(D^2 M) per iteration; the data route
    # O(N D M) per iteration and no D x D matrix. Past a few thousand dimensions S itself
    # (D^2 float64) is the problem.
    return "covariance" if d <= 2048 else "data"


def em(
    x: object,
    latent_dim: int,
    *,
    tol: float = 1e-10,
    max_iter: int = 10000,
    seed: int | None = 0,
    method: str = "auto",
    init: PPCAParams | None = None,
) -> EMResult:
    r"""Tipping & Bishop's EM algorithm for maximum-likelihood PPCA.

    E-step and M-step combined (Tipping & Bishop 1999, eqs. 29-30; PRML 12.2.2), with
    :math:`M = W^\top W + \sigma^2 I`:

    .. math::

        \widetilde W = S W (\sigma^2 I + M^{-1} W^\top S W)^{-1}, \qquad
        \widetilde\sigma^2 = \tfrac1D \operatorname{tr}\big(S - S W M^{-1}
            \widetilde W^\top\big).

    Everything depends on the data only through :math:`SW` and :math:`\operatorname{tr} S`:

    - ``method="covariance"`` forms :math:`S` once (:math:`O(ND^2)`, as in
      :func:`ppl_models.pca.fit`), then :math:`O(D^2 M)` per iteration;
    - ``method="data"`` computes :math:`SW = \frac1N \tilde X^\top (\tilde X W)` from the
      data each iteration with :func:`ppl_models.pca.centred_matmul` and
      :func:`~ppl_models.pca.centred_rmatmul` (the products Roweis's EM for PCA,
      :func:`ppl_models.pca.em`, uses): :math:`O(NDM)` per iteration, no :math:`D \times D`
      matrix, for large :math:`D`;
    - ``"auto"``: ``"covariance"`` for :math:`D \le 2048`, else ``"data"``.

    The log-likelihood of every iterate, :math:`-\frac N2 [D\ln 2\pi + (D-M)\ln\sigma^2 +
    \ln|M| + \sigma^{-2}(\operatorname{tr}S - \operatorname{tr}(M^{-1} W^\top S W))]`,
    costs nothing extra (:math:`SW` is at hand); iteration stops when it rises by less
    than ``tol`` relative. Convergence is geometric and slow where :math:`\lambda_M`
    and :math:`\lambda_{M+1}` are close, or where :math:`\lambda_1 \gg \sigma^2` (the error
    along a dominant direction shrinks by about :math:`1 - 2\sigma^2/\lambda_1` per step):
    standardise such data, or use :func:`closed_form`, which EM only approaches.

    With missing values (NaN in ``x``) the exact missing-data EM of Ilin & Raiko (2010)
    runs instead (see :func:`_em_missing`): per-row posteriors given each row's observed
    coordinates, a per-coordinate least-squares M-step for :math:`(w_i, \mu_i)`, and the
    observed-data log-likelihood (:func:`log_likelihood` with NaN marginalised), which
    never decreases, recorded at every iterate. It costs :math:`O(NDM^2)` per iteration.

    Parameters
    ----------
    x : array_like, shape (N, D)
        Data; NaN marks a missing coordinate (no row or column may be entirely missing). A
        tensor, a numpy array or a pandas DataFrame (converted as by
        :func:`ppl_models._checks.as_data`).
    latent_dim : int
        :math:`M`, :math:`1 \le M < D`.
    tol : float
        Stop when the log-likelihood rises by less than ``tol * |log-likelihood|``.
    max_iter : int
        The most iterations.
    seed : int, optional
        Seed of the random starting :math:`W`.
    method : {"auto", "covariance", "data"}
        Complete data only; the missing-data EM always works on the data.
    init : PPCAParams, optional
        Starting point (with complete data its ``mu`` is ignored: :math:`\mu = \bar x` is
        the exact M-step; with missing values it is used).

    Returns
    -------
    EMResult

    References
    ----------
    Tipping & Bishop (1999), section 3.2 and appendix B. A. Ilin and T. Raiko, *Practical
    approaches to principal component analysis in the presence of missing values*, JMLR 11
    (2010), section 3 (missing values).

    Examples
    --------
    >>> x = torch.randn(300, 5, dtype=torch.float64) * torch.tensor([4.0, 2.0, 1.0, 1.0, 1.0])
    >>> r = em(x, 2)
    >>> r.converged, bool(torch.all(r.log_likelihood.diff() >= -1e-9))
    (True, True)
    """
    tol = check_positive(tol, "tol", allow_tensor=False)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    check_choice(method, "method", ["auto", "covariance", "data"])
    f64 = torch.float64
    if is_stream(x):
        if method == "data":
            raise ValueError("method='data' needs x in memory; a stream takes 'covariance'")
        mom, dtype = moments(x)
        n, d, mean, method = mom.n, mom.mean.shape[0], mom.mean, "covariance"
        s = mom.scatter / n
        m = _check_latent_dim(latent_dim, d)
        device = s.device
    else:
        x = as_data(x, "x", ndim=2, min_rows=2, allow_nan=True)
        n, d = x.shape
        dtype, device = x.dtype, x.device
        m = _check_latent_dim(latent_dim, d)
        if bool(torch.isnan(x).any()):
            return _em_missing(x, m, tol=tol, max_iter=max_iter, seed=seed, init=init)
        if method == "auto":
            method = _em_method(n, d)
        mean = _mean(x)
        if method == "covariance":
            s = _covariance(x, mean, _chunk_rows(x, None)).to(device)
    if method == "covariance":
        trace = torch.diagonal(s).sum()

        def s_times(w: torch.Tensor) -> torch.Tensor:
            return s @ w

    else:
        rows = _chunk_rows(x, None)
        trace = sum(((x[i : i + rows] - mean).to(f64) ** 2).sum() for i in range(0, n, rows)) / n

        def s_times(w: torch.Tensor) -> torch.Tensor:
            z = _centred_matmul(x, mean, w.to(x.dtype))
            return _centred_rmatmul(x, mean, z).to(f64) / n

    _check_variance(float(trace))
    # EM's sigma2 falls towards 0 where the data have no variance outside M directions
    # (the likelihood is unbounded there): below the rounding level, refuse as closed_form
    # does rather than fail in a Cholesky factorisation or return sigma2 <= 0.
    floor = 4 * d * torch.finfo(f64).eps * float(trace)
    if init is None:
        gen = torch.Generator().manual_seed(
            0 if seed is None else check_int(seed, "seed", minimum=0)
        )
        w = torch.randn(d, m, generator=gen, dtype=f64).to(device) * (trace / d).sqrt()
        s2 = trace / d
    else:
        w0, _, s20 = _check_params(init, "init")
        if w0.shape != (d, m):
            raise ValueError(f"init.W must have shape ({d}, {m}); got {tuple(w0.shape)}")
        w, s2 = w0.to(device=device, dtype=f64), s20.to(device=device, dtype=f64)
    eye = torch.eye(m, dtype=f64, device=device)

    def loglik(w: torch.Tensor, s2: torch.Tensor, sw: torch.Tensor) -> tuple[float, torch.Tensor]:
        chol, info = torch.linalg.cholesky_ex(w.T @ w + s2 * eye)
        if int(info) != 0 or not float(s2) > floor:
            _unbounded(m, float(s2))
        minv_wtsw = torch.cholesky_solve(w.T @ sw, chol)
        ll = (
            -0.5
            * n
            * (
                d * _LOG_2PI
                + (d - m) * torch.log(s2)
                + 2 * torch.log(torch.diagonal(chol)).sum()
                + (trace - torch.trace(minv_wtsw)) / s2
            )
        )
        return float(ll), chol

    sw = s_times(w)
    ll, chol = loglik(w, s2, sw)
    history = [ll]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - read after the loop
        minv_wtsw = torch.cholesky_solve(w.T @ sw, chol)
        # W_new = S W A^{-1} with A = s2 I + M^{-1} W^T S W (not symmetric).
        w_new = torch.linalg.solve((s2 * eye + minv_wtsw).T, sw.T).T
        # tr(S W M^{-1} W_new^T) = sum((S W M^{-1}) * W_new)
        s2 = (trace - (torch.cholesky_solve(sw.T, chol).T * w_new).sum()) / d
        w = w_new
        sw = s_times(w)
        ll, chol = loglik(w, s2, sw)
        history.append(ll)
        if abs(history[-1] - history[-2]) <= tol * abs(history[-2]):
            converged = True
            break
    params = PPCAParams(w.to(dtype), mean.to(dtype), s2.to(dtype))
    return EMResult(params, torch.tensor(history, dtype=f64), it, converged)


def _check_variance(trace: float) -> None:
    if not trace > 0:
        raise ValueError(
            "x has no variance (every row is the same): PPCA's likelihood is unbounded "
            "(sigma2 -> 0); fit data that vary"
        )


def _unbounded(m: int, s2: float) -> None:
    raise ValueError(
        f"x has no variance outside its leading {m} directions (EM's sigma2 fell to {s2:.3g}, "
        "zero up to rounding): the PPCA likelihood is unbounded; use a smaller latent_dim"
    )


def _em_missing(
    x: torch.Tensor,
    latent_dim: int,
    *,
    tol: float = 1e-10,
    max_iter: int = 10000,
    seed: int | None = 0,
    init: PPCAParams | None = None,
) -> EMResult:
    r"""The exact EM for PPCA with missing values (Ilin & Raiko 2010), behind :func:`em`.

    With :math:`O_n` the observed coordinates of row :math:`n` and :math:`o_{ni} = 1` when
    :math:`x_{ni}` is observed, the E-step conditions each row on what it has,

    .. math::

        M_n = W_{O_n}^\top W_{O_n} + \sigma^2 I, \qquad
        \langle z_n \rangle = M_n^{-1} W_{O_n}^\top (x_{O_n} - \mu_{O_n}), \qquad
        \Sigma_n = \sigma^2 M_n^{-1},

    and the M-step solves, for each coordinate :math:`i` over the rows where it is
    observed, the least-squares problem for :math:`\tilde w_i = (w_i, \mu_i)` with
    :math:`\hat z_n = (z_n, 1)`:

    .. math::

        \tilde w_i = \Big(\sum_n o_{ni} \langle \hat z_n \hat z_n^\top \rangle\Big)^{-1}
            \sum_n o_{ni}\, x_{ni} \langle \hat z_n \rangle, \qquad
        \langle z_n z_n^\top \rangle = \langle z_n \rangle \langle z_n \rangle^\top
            + \Sigma_n,

    .. math::

        \sigma^2 = \frac{1}{|O|} \sum_{(n, i) \in O} \Big[(x_{ni} - \mu_i
            - w_i^\top \langle z_n \rangle)^2 + w_i^\top \Sigma_n w_i\Big]
        = \frac{1}{|O|} \sum_i \Big[\sum_n o_{ni} x_{ni}^2
            - \tilde w_i^\top \sum_n o_{ni} x_{ni} \langle \hat z_n \rangle\Big].

    The joint update of :math:`(w_i, \mu_i)` maximises the expected complete-data
    log-likelihood exactly, so this is an EM and the observed-data log-likelihood
    :math:`\sum_n \ln \mathcal N(x_{O_n} \mid \mu_{O_n}, W_{O_n} W_{O_n}^\top + \sigma^2 I)`
    never decreases; it is computed in the E-step from the same Cholesky factors of
    :math:`M_n` (the formula of :func:`log_likelihood`). The sufficient statistics are
    accumulated over row chunks with batched Cholesky factorisations and two matrix
    products, :math:`O(N D M^2)` per iteration and memory bounded by the chunk. Everything
    runs in float64, on data shifted by their observed column means (which :math:`\mu`
    absorbs) so that the second form of :math:`\sigma^2` loses no digits to cancellation.
    With nothing missing the fixed point is :func:`closed_form`'s.
    """
    n, d = x.shape
    m = latent_dim
    f64, dev = torch.float64, x.device
    obs = ~torch.isnan(x)
    empty = ~obs.any(1)
    if bool(empty.any()):
        raise ValueError(
            f"x has rows with every coordinate missing (row {int(empty.nonzero()[0])}); drop "
            "them: they carry no information"
        )
    empty = ~obs.any(0)
    if bool(empty.any()):
        raise ValueError(
            f"x has columns with every entry missing (column {int(empty.nonzero()[0])}); "
            "their mean and loadings are not identified: drop them"
        )
    of = obs.to(f64)
    count = of.sum(0)
    n_obs = count.sum()
    zero = torch.zeros((), dtype=f64, device=dev)
    shift = torch.where(obs, x.to(f64), zero).sum(0) / count
    xs = torch.where(obs, x.to(f64) - shift, zero)  # zero where missing
    sum_sq = (xs * xs).sum()
    trace = ((xs * xs).sum(0) / count).sum()
    _check_variance(float(trace))
    floor = 4 * d * torch.finfo(f64).eps * float(trace)

    if init is None:
        gen = torch.Generator().manual_seed(
            0 if seed is None else check_int(seed, "seed", minimum=0)
        )
        w = torch.randn(d, m, generator=gen, dtype=f64).to(dev) * (trace / d).sqrt()
        mu = torch.zeros(d, dtype=f64, device=dev)
        s2 = trace / d
    else:
        w0, mu0, s20 = _check_params(init, "init")
        if w0.shape != (d, m):
            raise ValueError(f"init.W must have shape ({d}, {m}); got {tuple(w0.shape)}")
        w = w0.to(device=dev, dtype=f64)
        mu = mu0.to(device=dev, dtype=f64) - shift
        s2 = s20.to(device=dev, dtype=f64)
    eye = torch.eye(m, dtype=f64, device=dev)
    k = m + 1
    rows = max(1, _MISSING_CHUNK_ELEMENTS // (k * k + d))

    def e_step(
        w: torch.Tensor, mu: torch.Tensor, s2: torch.Tensor
    ) -> tuple[float, torch.Tensor, torch.Tensor]:
        """The observed-data log-likelihood at (w, mu, s2) and the M-step's sums
        sum_n o_ni <zh zh^T> (D, M+1, M+1) and sum_n o_ni x_ni <zh> (D, M+1)."""
        ww = (w.unsqueeze(2) * w.unsqueeze(1)).reshape(d, m * m)
        a = torch.zeros(d, k * k, dtype=f64, device=dev)
        b = torch.zeros(d, k, dtype=f64, device=dev)
        ll = torch.zeros((), dtype=f64, device=dev)
        log_s2 = torch.log(s2)
        for start in range(0, n, rows):
            o, xo = of[start : start + rows], xs[start : start + rows]
            xc = xo - o * mu
            chol, info = torch.linalg.cholesky_ex((o @ ww).reshape(-1, m, m) + s2 * eye)
            if bool((info != 0).any()):
                _unbounded(m, float(s2))
            proj = (xc @ w).unsqueeze(-1)
            u = torch.linalg.solve_triangular(chol, proj, upper=False).squeeze(-1)
            d_n = o.sum(1)
            quad = ((xc * xc).sum(1) - (u * u).sum(1)) / s2
            logdet = (d_n - m) * log_s2 + 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(
                -1
            )
            ll = ll - 0.5 * (d_n * _LOG_2PI + logdet + quad).sum()
            ez = torch.cholesky_solve(proj, chol).squeeze(-1)
            zh = torch.cat([ez, torch.ones(ez.shape[0], 1, dtype=f64, device=dev)], 1)
            ezz = zh.unsqueeze(2) * zh.unsqueeze(1)
            ezz[:, :m, :m] += s2 * torch.cholesky_inverse(chol)
            a += o.T @ ezz.reshape(-1, k * k)
            b += xo.T @ zh
        return float(ll), a.reshape(d, k, k), b

    ll, a, b = e_step(w, mu, s2)
    history = [ll]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        chol_a, info = torch.linalg.cholesky_ex(a)
        if bool((info != 0).any()):
            _unbounded(m, float(s2))
        wt = torch.cholesky_solve(b.unsqueeze(-1), chol_a).squeeze(-1)
        w, mu = wt[:, :m], wt[:, m]
        s2 = (sum_sq - (b * wt).sum()) / n_obs
        if not float(s2) > floor:
            raise ValueError(
                f"the missing-data EM reached sigma2 = {float(s2):.3g} at iteration {it}: the "
                "observed entries are fitted exactly; use a smaller latent_dim"
            )
        ll, a, b = e_step(w, mu, s2)
        history.append(ll)
        if abs(history[-1] - history[-2]) <= tol * abs(history[-2]):
            converged = True
            break
    params = PPCAParams(w.to(x.dtype), (mu + shift).to(x.dtype), s2.to(x.dtype))
    return EMResult(params, torch.tensor(history, dtype=f64), it, converged)


# ---------------------------------------------------------------------- Pyro models


def _num_rows(x: torch.Tensor | None, num_points: int | None, who: str) -> int:
    """The plate size of a model call: the rows of ``x``, or ``num_points`` to draw new ones."""
    if x is not None:
        return x.shape[0]
    if num_points is None:
        raise ValueError(f"{who}.model needs x or num_points")
    return check_int(num_points, "num_points", minimum=1)


class _PPCAMarginal(dist.TorchDistribution):
    r""":math:`\mathcal N(\mu, W W^\top + \sigma^2 I)` evaluated as :func:`log_likelihood`
    does: two matrix products and an :math:`M \times M` Cholesky factor (about twice as fast
    as ``LowRankMultivariateNormal.log_prob``, measured at N = 10^5, D = 100, M = 10), with
    the NaN coordinates of a value marginalised. ``sample`` draws complete points."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector

    def __init__(self, w: torch.Tensor, mu: torch.Tensor, sigma2: torch.Tensor):
        self.params = PPCAParams(w, mu, sigma2)
        super().__init__(torch.Size(), torch.Size([mu.shape[0]]), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        rows = value.reshape(-1, value.shape[-1])
        if has_nan(rows):
            out = _log_likelihood_missing(rows, self.params)
        else:
            out = _log_likelihood_complete(rows, self.params)
        return out.reshape(value.shape[:-1])

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
        w, mu, s2 = self.params
        low = dist.LowRankMultivariateNormal(mu, w, s2.expand(mu.shape))
        return low.sample(sample_shape)


class MarginalPPCA(PyroModule):
    r"""PPCA with :math:`z` integrated out: :math:`x_n \sim \mathcal N(\mu, W W^\top +
    \sigma^2 I)`, observed at ``"obs"`` in plate ``"data"``.

    ``W`` (``"W"``), ``mu`` (``"mu"``) and ``sigma`` (``"sigma"``, the noise standard
    deviation, :math:`\sigma^2` = ``sigma**2``) are ``PyroParam``; the guide is empty, so
    :func:`~ppl_models.inference.fit_svi` maximises the likelihood and reaches
    :func:`closed_form`'s optimum (up to the rotation of ``W``). The density is evaluated
    as in :func:`log_likelihood` (:math:`O(NDM + M^3)`: the inversion and determinant
    lemmas), with each row's missing (NaN) coordinates marginalised. Replacing a parameter
    by a ``PyroSample`` puts a prior on it (see :mod:`ppl_models.bayesian_pca`).

    Parameters
    ----------
    data_dim : int
        :math:`D`.
    latent_dim : int
        :math:`M < D`.
    init : PPCAParams, optional
        Starting point; by default ``W`` has small seeded Gaussian entries, ``mu = 0`` and
        ``sigma = 1`` (the mean moves to :math:`\bar x` within a few steps; pass
        ``init`` with ``mu`` at the sample mean to start closer).
    seed : int
        Seed of the default ``W``.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> x = torch.randn(400, 4, dtype=torch.float64) * torch.tensor([3.0, 1.0, 1.0, 1.0])
    >>> m = MarginalPPCA(4, 1)
    >>> _ = fit_svi(m, x, optimizer="lbfgs", num_steps=100, progress=False)
    >>> ref = closed_form(x, 1)
    >>> bool(torch.allclose(covariance(m.params()), covariance(ref), rtol=1e-4, atol=1e-6))
    True
    """

    def __init__(
        self, data_dim: int, latent_dim: int, *, init: PPCAParams | None = None, seed: int = 0
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.latent_dim = _check_latent_dim(latent_dim, self.data_dim)
        d, m = self.data_dim, self.latent_dim
        if init is None:
            gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
            w = 0.1 * torch.randn(d, m, generator=gen, dtype=torch.get_default_dtype())
            mu, sigma = torch.zeros(d, dtype=w.dtype), torch.tensor(1.0, dtype=w.dtype)
        else:
            w, mu, s2 = _check_params(init, "init")
            if w.shape != (d, m):
                raise ValueError(f"init.W must have shape ({d}, {m}); got {tuple(w.shape)}")
            w, mu, sigma = w.clone(), mu.clone(), s2.sqrt().clone()
        self.W = PyroParam(w)
        self.mu = PyroParam(mu)
        self.sigma = PyroParam(sigma, constraint=constraints.positive)

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x``: (N, D) with N >= 2, NaN allowed for missing coordinates, no empty
        row, not every row the same (the likelihood would be unbounded: sigma -> 0)."""
        return (_check_fit_rows(x, self.data_dim),)

    @pyro_method
    def model(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """Observe ``x`` at ``"obs"``; with ``x=None`` draw ``num_points`` new points."""
        like = promoted_like(self, x)
        w, mu, sigma = self.W.to(like), self.mu.to(like), self.sigma.to(like)
        n = _num_rows(x, num_points, "MarginalPPCA")
        if x is not None:
            x = x.to(like)
        if w.dim() > 2 or mu.dim() > 1 or sigma.dim() > 0:
            # A parameter with a prior, drawn under an enclosing plate (vectorised
            # particles, a parallel Predictive), has leading batch dimensions: Pyro's
            # low-rank Gaussian broadcasts them (complete rows only).
            if x is not None and has_nan(x):
                raise ValueError(
                    "MarginalPPCA marginalises missing values (NaN) only with unbatched "
                    "parameters: draw the parameters' particles one at a time"
                )
            diag = (sigma**2).unsqueeze(-1).expand(*sigma.shape, self.data_dim)
            fn = dist.LowRankMultivariateNormal(mu, w, diag)
        else:
            # One distribution for every row, broadcast lazily (no expanded copies).
            fn = iid(_PPCAMarginal(w, mu, sigma**2))
        with data_plate(n):
            pyro.sample("obs", fn, obs=x)

    def guide(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """The empty guide: every parameter is a point estimate (maximum likelihood)."""

    def params(self) -> PPCAParams:
        """The current parameters (detached copies)."""
        with torch.no_grad():
            return PPCAParams(
                self.W.detach().clone(), self.mu.detach().clone(), (self.sigma**2).detach().clone()
            )


_LATENT_GUIDES = ("amortized", "local")


class LatentPPCA(PyroModule):
    r"""PPCA with its latent variables: :math:`z_n \sim \mathcal N(0, I_M)` at ``"z"`` and
    :math:`x_n \mid z_n \sim \mathcal N(W z_n + \mu, \sigma^2 I_D)` at ``"obs"``, both in
    plate ``"data"``, with a Gaussian guide :math:`q(z_n)`.

    :func:`~ppl_models.inference.fit_svi` maximises the evidence lower bound

    .. math::

        \mathcal L = \sum_n \mathbb E_{q(z_n)}\big[\ln p(x_n \mid z_n)\big]
            - \operatorname{KL}\big(q(z_n) \,\|\, \mathcal N(0, I)\big)
        = \ln p(X) - \sum_n \operatorname{KL}\big(q(z_n) \,\|\, p(z_n \mid x_n)\big)

    over ``W``, ``mu``, ``sigma`` (``PyroParam``, as in :class:`MarginalPPCA`) and the
    guide's parameters. The exact posterior is
    :math:`p(z_n \mid x_n) = \mathcal N(M^{-1} W^\top (x_n - \mu), \sigma^2 M^{-1})`,
    :math:`M = W^\top W + \sigma^2 I` (:func:`posterior`), so a guide family that holds it
    closes the gap and the optimum is :func:`closed_form`'s maximum likelihood. Two guides:

    - ``"amortized"``: :math:`q(z_n \mid x_n) = \mathcal N(A (x_n - b), S)` with one
      :math:`M \times D` matrix ``q_A``, one offset ``q_b`` and one full covariance
      :math:`S = L L^\top` shared by all points (``q_scale_tril``, a lower-Cholesky
      ``PyroParam``). It holds the exact posterior (:math:`A = M^{-1} W^\top`,
      :math:`b = \mu`, :math:`S = \sigma^2 M^{-1}`), and it works for new points.
    - ``"local"``: a mean-field :math:`q(z_n) = \mathcal N(m_n, \operatorname{diag}
      s_n^2)` per data point (``q_loc`` and ``q_scale``, shape (N, M)), indexed by the
      minibatch's rows when :func:`~ppl_models.inference.fit_svi` draws minibatches. It
      holds the exact posterior only where :math:`M` is diagonal, which the optimum's
      rotation :math:`W = U_M (\Lambda_M - \sigma^2 I)^{1/2}` provides; its
      :math:`2NM` parameters make convergence slower.

    Missing coordinates (NaN) are masked out of the likelihood: :math:`x_n \mid z_n`
    factorises over coordinates, so the NaN coordinates' factors are dropped and the
    model is PPCA on each row's observed coordinates. The amortized guide then sets the
    centred missing coordinates to 0 in :math:`A (x_n - b)`: the exact posterior (whose
    :math:`M_n` depends on which coordinates are observed) is then no longer in its
    family, and the ELBO stays below the observed-data log-likelihood. The local guide
    is unaffected (and exact where the row's :math:`M_n` is diagonal).

    Parameters
    ----------
    data_dim : int
        :math:`D`.
    latent_dim : int
        :math:`M < D`.
    guide : {"amortized", "local"}
        The guide family.
    num_data : int, optional
        :math:`N`, the number of data points; required by the ``"local"`` guide, which
        holds parameters for each of them (fit it on exactly those points).
    init : PPCAParams, optional
        Starting point of the model's parameters; the amortized guide then starts at its
        exact posterior. By default ``W`` has small seeded Gaussian entries, ``mu = 0``,
        ``sigma = 1``, and the guides start at the prior :math:`\mathcal N(0, I)` (the
        amortized one with small seeded entries in ``q_A``).
    seed : int
        Seed of the default starting point.

    References
    ----------
    Tipping & Bishop (1999); PRML 12.2 and 10.1; Kingma & Welling, *Auto-Encoding
    Variational Bayes* (2014), for the amortized (encoder) guide.

    Examples
    --------
    At the maximum likelihood, with the amortized guide at the exact posterior, every draw
    of the ELBO equals the log-likelihood:

    >>> from pyro.infer import Trace_ELBO
    >>> x = torch.randn(100, 3, dtype=torch.float64) * torch.tensor([3.0, 1.0, 1.0])
    >>> ref = closed_form(x, 1)
    >>> m = LatentPPCA(3, 1, init=ref)
    >>> elbo = -Trace_ELBO().loss(m.model, m.guide, x)
    >>> abs(elbo - float(log_likelihood(x, ref).sum())) < 1e-8
    True

    Fitting from the default start (see ``tests/test_ppca_latent.py`` for converged runs):

    >>> from ppl_models.inference import fit_svi
    >>> m = LatentPPCA(3, 1)
    >>> fit_svi(m, x, num_steps=20, lr=0.05, seed=0, progress=False).num_steps
    20
    >>> m.params().W.shape
    torch.Size([3, 1])
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        *,
        guide: str = "amortized",
        num_data: int | None = None,
        init: PPCAParams | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.latent_dim = _check_latent_dim(latent_dim, self.data_dim)
        self.guide_kind = check_choice(guide, "guide", list(_LATENT_GUIDES))
        d, m = self.data_dim, self.latent_dim
        if self.guide_kind == "local":
            if num_data is None:
                raise ValueError(
                    "the 'local' guide holds parameters for every data point: pass num_data "
                    "(the number of rows of the data it will be fitted on)"
                )
            num_data = check_int(num_data, "num_data", minimum=1)
        self.num_data = num_data
        gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
        dtype = torch.get_default_dtype()
        if init is None:
            w = 0.1 * torch.randn(d, m, generator=gen, dtype=dtype)
            mu, sigma = torch.zeros(d, dtype=dtype), torch.tensor(1.0, dtype=dtype)
            q_a = 0.1 * torch.randn(m, d, generator=gen, dtype=dtype)
            q_b, q_tril = torch.zeros(d, dtype=dtype), torch.eye(m, dtype=dtype)
        else:
            w, mu, s2 = _check_params(init, "init")
            if w.shape != (d, m):
                raise ValueError(f"init.W must have shape ({d}, {m}); got {tuple(w.shape)}")
            w, mu, sigma = w.clone(), mu.clone(), s2.sqrt().clone()
            # The exact posterior of init: A = M^{-1} W^T, b = mu, S = sigma^2 M^{-1}.
            chol = torch.linalg.cholesky(_m_matrix(w, s2))
            q_a, q_b = torch.cholesky_solve(w.T, chol), mu.clone()
            q_tril = torch.linalg.cholesky(s2 * torch.cholesky_inverse(chol))
        self.W = PyroParam(w)
        self.mu = PyroParam(mu)
        self.sigma = PyroParam(sigma, constraint=constraints.positive)
        if self.guide_kind == "amortized":
            self.q_A = PyroParam(q_a)
            self.q_b = PyroParam(q_b)
            self.q_scale_tril = PyroParam(q_tril, constraint=constraints.lower_cholesky)
        else:
            self.q_loc = PyroParam(torch.zeros(num_data, m, dtype=w.dtype))
            self.q_scale = PyroParam(
                torch.ones(num_data, m, dtype=w.dtype), constraint=constraints.positive
            )

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x``: (N, D), NaN allowed for missing coordinates, no empty row; with
        the local guide, exactly ``num_data`` rows."""
        x = _check_fit_rows(x, self.data_dim)
        if self.guide_kind == "local" and x.shape[0] != self.num_data:
            raise ValueError(
                f"x must have num_data = {self.num_data} rows for the local guide, which holds "
                f"one q(z_n) per data point; got {x.shape[0]}"
            )
        return (x,)

    @pyro_method
    def model(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """Sample ``"z"``, then observe ``x`` at ``"obs"`` (NaN coordinates masked out);
        with ``x=None`` draw ``num_points`` new points."""
        like = promoted_like(self, x)
        w, mu, sigma = self.W.to(like), self.mu.to(like), self.sigma.to(like)
        n = _num_rows(x, num_points, "LatentPPCA")
        zero = like.new_zeros(self.latent_dim)
        if x is not None:
            x = x.to(like)
        with data_plate(n):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            fn = dist.Normal(mu + z @ w.T, sigma)
            if x is not None:
                if has_nan(x):
                    observed = ~torch.isnan(x)
                    # Dropping a coordinate's factor is marginalising it: x | z factorises.
                    fn = fn.mask(observed)
                    x = torch.where(observed, x, torch.zeros((), dtype=x.dtype, device=x.device))
            pyro.sample("obs", fn.to_event(1), obs=x)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """Sample ``"z"`` from the guide chosen at construction (see the class docstring)."""
        if x is None:
            raise ValueError("LatentPPCA.guide needs the data x (it is a posterior over z)")
        plate = data_plate(x.shape[0])
        if self.guide_kind == "local" and plate.size != self.num_data:
            raise ValueError(
                f"the local guide holds q(z_n) for num_data = {self.num_data} points; got "
                f"data of {plate.size} points"
            )
        like = promoted_like(self, x)
        with plate as idx:
            if self.guide_kind == "local":
                loc, scale = self.q_loc[idx].to(like), self.q_scale[idx].to(like)
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))
                return
            x = x.to(like)
            xc = x - self.q_b.to(like)
            if has_nan(x):
                xc = torch.where(
                    torch.isnan(x), torch.zeros((), dtype=x.dtype, device=x.device), xc
                )
            loc = xc @ self.q_A.to(like).T
            scale_tril = self.q_scale_tril.to(like)
            pyro.sample("z", dist.MultivariateNormal(loc, scale_tril=scale_tril))

    def params(self) -> PPCAParams:
        """The current model parameters (detached copies)."""
        with torch.no_grad():
            return PPCAParams(
                self.W.detach().clone(), self.mu.detach().clone(), (self.sigma**2).detach().clone()
            )


# ------------------------------------------- model selection and classification


class LatentDimSelection(NamedTuple):
    r"""What :func:`select_latent_dim` returns.

    Attributes
    ----------
    latent_dim : int
        The chosen :math:`M`.
    dims : torch.Tensor, shape (K,)
        The latent dimensions considered, ``1, ..., max_dim`` (int64).
    scores : torch.Tensor, shape (K,)
        The criterion for each, float64: the log-evidence (``"minka"``, up to a constant
        that does not depend on :math:`M`) and the held-out log-likelihood per point
        (``"heldout"``) are maximised; BIC (``"bic"``) is minimised. ``-inf`` (``+inf``
        for BIC) where :math:`M` is beyond the data's rank (the :math:`M`-th eigenvalue
        is zero up to rounding: that column of ``W`` is not identified).
    method : str
        The criterion used.
    """

    latent_dim: int
    dims: torch.Tensor
    scores: torch.Tensor
    method: str


def _spectrum(x: torch.Tensor) -> torch.Tensor:
    """All D eigenvalues of the divisor-N sample covariance, descending, float64, >= 0."""
    n, d = x.shape
    mean = _mean(x)
    if d <= n:
        cov = _covariance(x, mean, _chunk_rows(x, None))
        lam = torch.linalg.eigvalsh(cov).flip(0)
    else:
        s = torch.linalg.svdvals((x - mean).to(torch.float64))
        lam = torch.cat([s**2 / n, torch.zeros(d - s.shape[0], dtype=torch.float64)])
    return lam.clamp_min(0).cpu()


def _eigh_all(x: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All eigenpairs of the divisor-N covariance, descending, float64 (on x's device);
    zero eigenvalues pad the spectrum when D > N."""
    n, d = x.shape
    if d <= n:
        lam, u = torch.linalg.eigh(_covariance(x, mean, _chunk_rows(x, None)).to(x.device))
        return lam.flip(0).clamp_min(0), u.flip(1)
    _, s, vh = torch.linalg.svd((x - mean).to(torch.float64), full_matrices=True)
    lam = torch.zeros(d, dtype=torch.float64, device=x.device)
    lam[: s.shape[0]] = s**2 / n
    return lam, vh.T


def _noise_floor(lam: torch.Tensor) -> float:
    """The rounding level of the eigenvalues of the float64 covariance: an eigensolver's
    absolute error is about ``D eps lam_1``. A variance below it is zero up to rounding."""
    return 4 * lam.shape[0] * torch.finfo(torch.float64).eps * max(float(lam[0]), 1e-300)


def _discarded_variance(lam: torch.Tensor, m: int) -> float:
    """sigma^2 of the closed form, at least the rounding floor: data with no variance left
    outside M directions are fitted as if sigma^2 were at the rounding level, the best fit
    the arithmetic can tell apart (scikit-learn's _assess_dimension clamps it likewise)."""
    d = lam.shape[0]
    s2 = float(lam[m:].sum()) / (d - m)
    return max(s2, _noise_floor(lam))


def _identified(lam: torch.Tensor, m: int) -> bool:
    """Whether the M-th direction carries variance above rounding (else M is beyond the
    data's rank and the M-th column of W is not identified)."""
    return float(lam[m - 1]) > _noise_floor(lam)


def _max_loglik(lam: torch.Tensor, m: int, n: int) -> float:
    r"""Tipping & Bishop's maximised log-likelihood from the spectrum (sigma^2 floored)."""
    d = lam.shape[0]
    s2 = _discarded_variance(lam, m)
    return -0.5 * n * (d * _LOG_2PI + float(torch.log(lam[:m]).sum()) + (d - m) * math.log(s2) + d)


def _minka_log_evidence(lam: torch.Tensor, m: int, n: int) -> float:
    r"""Minka's Laplace approximation :math:`\ln p(D \mid k)`, k = m, without the
    k-independent constant (Minka 2000, section 3)."""
    d = lam.shape[0]
    if not _identified(lam, m):
        return -math.inf
    v = _discarded_variance(lam, m)
    i = torch.arange(1, m + 1, dtype=torch.float64)
    # p(U): the inverse volume of the Stiefel manifold, 2^-k prod Gamma((d-i+1)/2) pi^-(d-i+1)/2
    log_pu = -m * math.log(2.0) + float(
        (torch.lgamma((d - i + 1) / 2) - (d - i + 1) / 2 * math.log(math.pi)).sum()
    )
    log_lik = -0.5 * n * float(torch.log(lam[:m]).sum()) - 0.5 * n * (d - m) * math.log(v)
    n_free = d * m - m * (m + 1) / 2
    log_2pi = 0.5 * (n_free + m) * _LOG_2PI
    # ln|A_z| = sum over the pairs i <= k, i < j <= d of
    # ln[(1/lam_hat_j - 1/lam_hat_i)(lam_i - lam_j) N], lam_hat_j = v for j > k. (Tied
    # eigenvalues among the first k make a term 0: the approximation breaks down there.)
    lam_hat = lam.clone()
    lam_hat[m:] = v
    rows, cols = torch.triu_indices(m, d, offset=1)
    terms = (1.0 / lam_hat[cols] - 1.0 / lam_hat[rows]) * (lam[rows] - lam[cols]) * n
    if not bool((terms > 0).all()):
        return -math.inf  # tied eigenvalues among the first M: the approximation breaks down
    log_az = float(torch.log(terms).sum())
    return log_pu + log_lik + log_2pi - 0.5 * log_az - 0.5 * m * math.log(n)


def _bic(lam: torch.Tensor, m: int, n: int) -> float:
    r"""BIC of PPCA with M latent dimensions in the span of the centred data.

    With :math:`N \le D` the centred data span only :math:`r = N - 1` dimensions: the
    other :math:`D - r` eigenvalues are exactly zero, the likelihood in those directions
    is that of no data, and counting them (in :math:`\sigma^2` and in the parameters)
    makes every added dimension look better (on 40 x 100 data of rank 3, BIC ran to the
    largest M allowed). The model is therefore scored in the span, :math:`D' = r`
    coordinates: :math:`\ln L^*` from the :math:`r` non-zero eigenvalues and
    :math:`p = D'M - M(M-1)/2 + 1 + D'` parameters (``W`` up to rotation,
    :math:`\sigma^2`, :math:`\mu`). With :math:`N > D` this is the usual count."""
    d = min(lam.shape[0], n - 1)
    lam = lam[:d]
    if m >= d or not _identified(lam, m):
        return math.inf
    ll = _max_loglik(lam, m, n)
    n_free = d * m - m * (m - 1) / 2 + 1 + d
    return -2.0 * ll + n_free * math.log(n)


def _fold_labels(folds: object, n: int, n_folds: int, seed: int) -> torch.Tensor:
    if folds is None:
        gen = torch.Generator().manual_seed(seed)
        labels = torch.empty(n, dtype=torch.int64)
        labels[torch.randperm(n, generator=gen)] = torch.arange(n) % n_folds
        return labels
    import numpy as np

    f = folds if isinstance(folds, torch.Tensor) else torch.as_tensor(np.asarray(folds))
    if f.ndim != 1 or f.shape[0] != n:
        raise ValueError(f"folds must have shape ({n},) (one fold label per row of x)")
    if f.is_floating_point() or f.is_complex() or f.dtype == torch.bool:
        raise TypeError(f"folds must hold integer fold labels; got dtype {f.dtype}")
    if torch.unique(f).numel() < 2:
        raise ValueError("folds must hold at least 2 different fold labels")
    return f.to(torch.int64).cpu()


def select_latent_dim(
    x: object,
    method: str = "minka",
    *,
    max_dim: int | None = None,
    n_folds: int = 5,
    folds: object = None,
    seed: int = 0,
) -> LatentDimSelection:
    r"""Choose the latent dimension :math:`M` of PPCA.

    Three criteria, each computed for :math:`M = 1, \dots,` ``max_dim`` from the
    eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_D` of the divisor-:math:`N` sample
    covariance (one eigendecomposition) or from :func:`closed_form` fits:

    - ``"minka"``: Minka's Laplace approximation to the evidence :math:`p(X \mid M)`
      (Minka 2000), with :math:`\hat\sigma^2 = \frac{1}{D-M}\sum_{j>M}\lambda_j`,
      :math:`m = DM - M(M+1)/2`,

      .. math::

          p(X \mid M) \approx p(U) \Big(\prod_{j=1}^M \lambda_j\Big)^{-N/2}
              \hat\sigma^{-N(D-M)} (2\pi)^{(m+M)/2} |A_Z|^{-1/2} N^{-M/2},

      :math:`p(U) = 2^{-M} \prod_{i=1}^M \Gamma(\tfrac{D-i+1}{2}) \pi^{-(D-i+1)/2}`,
      :math:`|A_Z| = \prod_{i=1}^M \prod_{j=i+1}^D (\hat\lambda_j^{-1} - \hat\lambda_i^{-1})
      (\lambda_i - \lambda_j) N`, :math:`\hat\lambda_j = \lambda_j` for :math:`j \le M`
      and :math:`\hat\sigma^2` beyond; the score is its logarithm without the constant
      :math:`-\frac{ND}{2}(\ln 2\pi + 1)` that no :math:`M` changes. Maximised.
    - ``"bic"``: :math:`-2 \ln L^* + p \ln N`, :math:`\ln L^*` the maximised
      log-likelihood (see :func:`closed_form`) and :math:`p = DM + 1 + D - M(M-1)/2` the
      free parameters (``W`` up to rotation, :math:`\sigma^2`, :math:`\mu`). Minimised.
    - ``"heldout"``: ``n_folds``-fold cross-validation: each fold's points scored by
      :func:`log_likelihood` under :func:`closed_form` fitted on the other folds; the
      score is the mean held-out log-likelihood per point. Maximised. (A single 80/20
      split is noisy: on 3 strong directions in D = 10 with N = 500 it picks the wrong
      dimension about a quarter of the time.)

    **No noise left.** Where the data have no variance outside :math:`M` directions
    (exactly low-rank data, or noise far below the signal), :math:`\hat\sigma^2` is zero
    up to rounding. That is the best possible fit, not the worst: as scikit-learn's
    ``PCA(n_components="mle")`` does, :math:`\hat\sigma^2` is held at the rounding level
    of the eigenvalues (:math:`4 D \epsilon \lambda_1`), so such an :math:`M` scores
    best; an :math:`M` whose own eigenvalue :math:`\lambda_M` is at that level is beyond
    the data's rank and scores ``-inf`` (``+inf`` for BIC). (:func:`closed_form` still
    refuses to fit an :math:`M` with :math:`\hat\sigma^2 = 0`: its likelihood is
    unbounded.)

    **Fewer rows than columns.** With :math:`N \le D` the centred data span
    :math:`r = N - 1` dimensions; BIC scores the model in that span (:math:`D' = r` in
    :math:`\ln L^*` and in :math:`p`), since the :math:`D - r` directions without data
    would otherwise make every added dimension look better.

    A ``RuntimeWarning`` says when the chosen :math:`M` is ``max_dim`` while a larger one
    was possible (a larger ``max_dim``, or more rows): the criterion may prefer more.

    Parameters
    ----------
    x : array_like, shape (N, D)
        Complete data, :math:`D \ge 2` (a tensor, a numpy array or a pandas DataFrame).
    method : {"minka", "bic", "heldout"}
    max_dim : int, optional
        The largest :math:`M` considered: by default the largest the data allow, one
        below the rank :math:`\min(D, N' - 1)` of the centred data, :math:`N'` the number
        of (training) points (``D - 1`` when there are enough points).
    n_folds : int
        Folds for ``"heldout"`` (at least 2), drawn at random with ``seed``.
    folds : array_like of int, shape (N,), optional
        Fold label of each row for ``"heldout"``, instead of random folds.
    seed : int
        Seed of the random folds.

    Returns
    -------
    LatentDimSelection
        ``(latent_dim, dims, scores, method)``.

    References
    ----------
    T. P. Minka, *Automatic choice of dimensionality for PCA*, NIPS 13 (2000).
    G. Schwarz, *Estimating the dimension of a model*, Ann. Statist. 6 (1978).

    Examples
    --------
    >>> from ppl_models.datasets import make_ppca_data
    >>> x = make_ppca_data(500, 10, 3, seed=0).x
    >>> [select_latent_dim(x, m).latent_dim for m in ("minka", "bic", "heldout")]
    [3, 3, 3]
    """
    x = as_data(x, "x", ndim=2, min_rows=3)
    n, d = x.shape
    if d < 2:
        raise ValueError(f"x must have at least 2 columns for PPCA (M < D); got {d}")
    check_choice(method, "method", ["minka", "bic", "heldout"])
    seed = check_int(seed, "seed", minimum=0)
    labels = None
    n_fit = n
    if method == "heldout":
        n_folds = check_int(n_folds, "n_folds", minimum=2, maximum=n)
        labels = _fold_labels(folds, n, n_folds, seed)
        n_fit = n - int(torch.unique(labels, return_counts=True)[1].max())
    elif folds is not None:
        raise ValueError("folds is only used with method='heldout'")
    # sigma^2 > 0 needs M below the rank of the centred data, min(D, N - 1).
    limit = min(d - 1, n_fit - 2)
    if limit < 1:
        raise ValueError(
            f"x has too few rows ({n}) to fit even M = 1"
            + (" on each training split" if method == "heldout" else "")
        )
    if max_dim is None:
        max_dim = limit
    else:
        max_dim = check_int(max_dim, "max_dim", minimum=1, maximum=limit)
    dims = torch.arange(1, max_dim + 1)
    if method == "heldout":
        total = torch.zeros(max_dim, dtype=torch.float64)
        for f in torch.unique(labels):
            test = (labels == f).to(x.device)
            train, held = x[~test], x[test]
            # One eigendecomposition per fold serves every M (closed_form's formulas).
            mean = _mean(train)
            lam, u = _eigh_all(train, mean)
            for k, m in enumerate(dims.tolist()):
                if not _identified(lam, m):
                    total[k:] = -math.inf  # beyond the training data's rank
                    break
                s2 = _discarded_variance(lam, m)
                w = u[:, :m] * (lam[:m] - s2).clamp_min(0).sqrt()
                p = PPCAParams(w.to(x), mean, torch.tensor(s2, dtype=x.dtype, device=x.device))
                total[k] += float(log_likelihood(held, p).sum(dtype=torch.float64))
        scores = total / n
    else:
        lam = _spectrum(x)
        fn = _minka_log_evidence if method == "minka" else _bic
        scores = torch.tensor([fn(lam, m, n) for m in dims.tolist()], dtype=torch.float64)
    best = int(torch.argmin(scores)) if method == "bic" else int(torch.argmax(scores))
    chosen = int(dims[best])
    if chosen == max_dim and max_dim < d - 1:
        warnings.warn(
            f"select_latent_dim: the {method!r} criterion is best at max_dim = {max_dim}, the "
            f"largest dimension considered (D = {d}, N = {n}): the latent dimension may be "
            "larger; raise max_dim or give more rows",
            RuntimeWarning,
            stacklevel=2,
        )
    return LatentDimSelection(chosen, dims, scores, method)


class PPCAClassifier:
    r"""A generative classifier: one PPCA density per class, Bayes' rule with class priors.

    .. math::

        p(c \mid x) = \frac{\pi_c\, \mathcal N(x \mid \mu_c, W_c W_c^\top + \sigma_c^2 I)}
            {\sum_{c'} \pi_{c'}\, \mathcal N(x \mid \mu_{c'}, W_{c'} W_{c'}^\top
            + \sigma_{c'}^2 I)},

    each class's parameters the :func:`closed_form` maximum likelihood on its points, the
    priors :math:`\pi_c` the class frequencies unless given. Between the diagonal Gaussian
    of naive Bayes and a full covariance per class (:math:`D(D+1)/2` parameters each,
    singular on the digits' constant pixels), PPCA keeps :math:`M` directions of
    correlation and one variance for the rest, :math:`\sigma^2 > 0`. The posterior is
    computed with log-sum-exp.

    Parameters
    ----------
    latent_dim : int
        :math:`M` of every class's PPCA, :math:`1 \le M < D`.
    priors : array_like, shape (C,), optional
        Class probabilities in the order of the sorted class labels; positive, summing to
        1. The class frequencies of the training labels by default.

    Attributes
    ----------
    classes_ : torch.Tensor, shape (C,)
        The sorted class labels (int64), after :meth:`fit`.
    params_ : list of PPCAParams
        Each class's fitted parameters.
    log_priors_ : torch.Tensor, shape (C,)

    See Also
    --------
    ppl_models.estimators.PPCAClassifier : the scikit-learn estimator over this class
        (``n_components``, any label type, numpy out; for pipelines, ``cross_val_score``
        and ``GridSearchCV``). This class is the torch-level one: integer labels, torch
        tensors out; scikit-learn's machinery refuses it with a message naming that one.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.cat([torch.randn(50, 4, generator=g, dtype=torch.float64) + 3,
    ...                torch.randn(50, 4, generator=g, dtype=torch.float64) - 3])
    >>> y = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    >>> clf = PPCAClassifier(1).fit(x, y)
    >>> clf.predict(torch.tensor([[3.0, 3, 3, 3], [-3.0, -3, -3, -3]])).tolist()
    [0, 1]
    """

    _NOT_AN_ESTIMATOR = (
        "ppl_models.ppca.PPCAClassifier is the torch-level classifier (torch tensors out, "
        "integer labels); in scikit-learn pipelines, cross-validation and searches use "
        "ppl_models.estimators.PPCAClassifier(n_components=...), which fits this one"
    )

    def __init__(self, latent_dim: int, *, priors: object = None):
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.priors = priors
        self.classes_: torch.Tensor | None = None
        self.params_: list[PPCAParams] = []
        self.log_priors_: torch.Tensor | None = None

    def __sklearn_tags__(self) -> None:
        """scikit-learn asks every step for its tags: a clear refusal instead of its
        ``no attribute '__sklearn_tags__'``."""
        raise TypeError(self._NOT_AN_ESTIMATOR)

    def get_params(self, deep: bool = True) -> None:
        """scikit-learn's ``clone`` (``cross_val_score``, ``GridSearchCV``) starts here:
        a clear refusal, as in :meth:`__sklearn_tags__`."""
        raise TypeError(self._NOT_AN_ESTIMATOR)

    def _labels(self, y: object, n: int) -> torch.Tensor:
        import numpy as np

        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        elif not isinstance(y, (np.ndarray, list, tuple)):
            raise TypeError(f"y must be a torch tensor or a numpy array; got {type(y).__name__}")
        arr = np.asarray(y)
        if arr.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per row of x); got shape {arr.shape}")
        if arr.shape[0] != n:
            raise ValueError(
                f"x and y must have the same number of rows; x has {n}, y has {arr.shape[0]}"
            )
        if arr.dtype.kind == "f":
            if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
                raise ValueError("y must hold integer class labels; got non-integer values")
        elif arr.dtype.kind not in "iub":
            raise TypeError(f"y must hold integer class labels; got dtype {arr.dtype}")
        return torch.from_numpy(arr.astype(np.int64))

    def fit(self, x: object, y: object) -> PPCAClassifier:
        """Fit one PPCA per class (:func:`closed_form`) and the class priors.

        Parameters
        ----------
        x : array_like, shape (N, D)
        y : array_like of int, shape (N,)
            Class labels; at least 2 classes, each with at least ``latent_dim + 2`` points
            (a class's :math:`\\sigma^2` needs variance outside its :math:`M` directions).

        Returns
        -------
        PPCAClassifier
            ``self``.
        """
        x = as_data(x, "x", ndim=2, min_rows=2)
        n, d = x.shape
        _check_latent_dim(self.latent_dim, d)
        labels = self._labels(y, n)
        classes, counts = torch.unique(labels, return_counts=True)
        if classes.numel() < 2:
            raise ValueError(f"y must hold at least 2 classes; got only {classes.tolist()}")
        small = classes[counts < self.latent_dim + 2]
        if small.numel():
            raise ValueError(
                f"every class needs at least latent_dim + 2 = {self.latent_dim + 2} points; "
                f"class(es) {small.tolist()} have {counts[counts < self.latent_dim + 2].tolist()}"
            )
        if self.priors is None:
            priors = counts.to(torch.float64) / n
        else:
            priors = as_data(self.priors, "priors", ndim=1, min_rows=1, dtype=torch.float64)
            if priors.shape[0] != classes.numel():
                raise ValueError(
                    f"priors must have one entry per class ({classes.numel()}); "
                    f"got {priors.shape[0]}"
                )
            if not bool((priors > 0).all()) or abs(float(priors.sum()) - 1) > 1e-8:
                raise ValueError(f"priors must be positive and sum to 1; got {priors.tolist()}")
        params = []
        for c in classes.tolist():
            rows = x[(labels == c).to(x.device)]
            try:
                params.append(closed_form(rows, self.latent_dim))
            except ValueError as err:
                raise ValueError(f"class {c}: {err}") from err
        self.classes_, self.params_ = classes, params
        self.log_priors_ = torch.log(priors)
        return self

    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise RuntimeError("this PPCAClassifier is not fitted yet: call fit(x, y) first")

    def joint_log_likelihood(self, x: object) -> torch.Tensor:
        r""":math:`\ln \pi_c + \ln \mathcal N(x_n \mid \mu_c, C_c)`, shape (N, C)."""
        self._check_fitted()
        cols = [log_likelihood(x, p) for p in self.params_]
        joint = torch.stack(cols, dim=1)
        return joint + self.log_priors_.to(joint)

    def predict_log_proba(self, x: object) -> torch.Tensor:
        r""":math:`\ln p(c \mid x_n)`, shape (N, C), columns in the order of ``classes_``."""
        joint = self.joint_log_likelihood(x)
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)

    def predict_proba(self, x: object) -> torch.Tensor:
        r""":math:`p(c \mid x_n)`, shape (N, C), columns in the order of ``classes_``;
        rows sum to 1."""
        return self.predict_log_proba(x).exp()

    def predict(self, x: object) -> torch.Tensor:
        """The most probable class of each row, shape (N,), int64 labels."""
        joint = self.joint_log_likelihood(x)
        return self.classes_.to(joint.device)[joint.argmax(dim=1)]

    def score(self, x: object, y: object) -> float:
        """The accuracy of :meth:`predict` on ``(x, y)``; labels unseen in :meth:`fit`
        are an error."""
        self._check_fitted()
        pred = self.predict(x)
        labels = self._labels(y, pred.shape[0])
        unseen = labels[~torch.isin(labels, self.classes_)]
        if unseen.numel():
            raise ValueError(
                f"y holds class(es) {torch.unique(unseen).tolist()} not seen in fit "
                f"(classes {self.classes_.tolist()})"
            )
        return float((pred.cpu() == labels).to(torch.float64).mean())
