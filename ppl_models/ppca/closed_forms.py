"""PPCA's reference solutions in plain torch: the maximum likelihood of Tipping & Bishop,
the model covariance and precision, the density, the posterior of :math:`z`, imputation
and ancestral sampling."""

from __future__ import annotations

import torch

from .._checks import (
    as_data,
    check_int,
)
from .._deprecation import renamed_keywords
from .._numerics import (
    Moments,
    chunk_rows,
    column_mean,
    is_stream,
    moments,
    sample_covariance,
    top_eigh,
)
from ..inference import has_nan
from ._base import (
    PPCAParams,
    cast_like,
    check_latent_dim,
    check_params,
    check_points,
    log_likelihood_complete,
    log_likelihood_missing,
    m_matrix,
    observed_moments,
)

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
    if is_stream(x) or isinstance(x, Moments):
        mom, dtype = (x, torch.float64) if isinstance(x, Moments) else moments(x)
        m = check_latent_dim(latent_dim, mom.mean.shape[0])
        return _from_covariance(mom.scatter / mom.n, mom.mean, m, dtype)
    x = as_data(x, "x", ndim=2, min_rows=2, allow_nan=True)
    if has_nan(x):
        raise ValueError(
            f"x has {int(torch.isnan(x).sum())} missing value(s) (NaN): the closed form needs "
            "complete data; em (the exact missing-data EM) and fit_svi with MarginalPPCA or "
            "LatentPPCA handle missing values"
        )
    n, d = x.shape
    m = check_latent_dim(latent_dim, d)
    mean = column_mean(x)
    if d <= n:
        cov = sample_covariance(x, mean, chunk_rows(x, chunk_size))
        return _from_covariance(cov, mean, m, x.dtype)
    else:
        _, s, vh = torch.linalg.svd((x - mean).to(torch.float64), full_matrices=False)
        lam = s**2 / n
        evals, evecs, trace = lam[:m], vh[:m].T, lam.sum()
    return _from_spectrum(evals, evecs, trace, mean, d, x.dtype)


def _from_covariance(
    cov: torch.Tensor, mean: torch.Tensor, m: int, dtype: torch.dtype
) -> PPCAParams:
    evals, evecs = top_eigh(cov, m)
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
    w, _, s2 = check_params(params)
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
    w, _, s2 = check_params(params)
    chol = torch.linalg.cholesky(m_matrix(w, s2))
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
    params = check_params(params)
    x = check_points(x, params)
    params = cast_like(params, x)
    if bool(torch.isnan(x).any()):
        return log_likelihood_missing(x, params)
    return log_likelihood_complete(x, params, stable=True)


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
    params = check_params(params)
    x = check_points(x, params)
    w, mu, s2 = cast_like(params, x)
    if bool(torch.isnan(x).any()):
        _, b, chol, _, _ = observed_moments(x, PPCAParams(w, mu, s2))
        mean = torch.cholesky_solve(b.unsqueeze(-1), chol).squeeze(-1)
        eye = torch.eye(w.shape[1], dtype=x.dtype, device=x.device).expand_as(chol)
        return mean, s2 * torch.cholesky_solve(eye, chol)
    chol = torch.linalg.cholesky(m_matrix(w, s2))
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
    params = check_params(params)
    t = as_data(x, "x", ndim=(1, 2), min_rows=1, allow_nan=True)
    rows = check_points(t, params)
    w, mu, _ = cast_like(params, rows)
    mean, _ = posterior(rows, PPCAParams(w, mu, params.sigma2.to(rows)))
    filled = torch.where(torch.isnan(rows), mu + mean @ w.T, rows)
    return filled.reshape(t.shape)


@renamed_keywords(n="num_points")
def sample(
    params: PPCAParams,
    num_points: int,
    *,
    seed: int | None = None,
    return_latent: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Draw :math:`z_n \sim \mathcal N(0, I)`, then :math:`x_n \sim \mathcal N(W z_n + \mu,
    \sigma^2 I)`: ancestral sampling of the generative model.

    Parameters
    ----------
    params : PPCAParams
    num_points : int
        How many points (formerly ``n``).
    seed : int, optional
        Seed of a private generator (the global RNG is untouched); the global RNG if None.
    return_latent : bool
        Also return the :math:`z_n`.

    Returns
    -------
    x : torch.Tensor, shape (num_points, D)
    z : torch.Tensor, shape (num_points, M), only if ``return_latent``.

    Examples
    --------
    >>> p = PPCAParams(torch.tensor([[2.0], [0.0]]), torch.zeros(2), torch.tensor(0.01))
    >>> x = sample(p, 20000, seed=0)
    >>> torch.allclose(torch.cov(x.T), covariance(p), atol=0.05)
    True
    """
    w, mu, s2 = check_params(params)
    n = check_int(num_points, "num_points", minimum=1)
    gen = None
    if seed is not None:
        gen = torch.Generator(device=w.device).manual_seed(check_int(seed, "seed", minimum=0))
    d, m = w.shape
    z = torch.randn(n, m, generator=gen, dtype=w.dtype, device=w.device)
    eps = torch.randn(n, d, generator=gen, dtype=w.dtype, device=w.device)
    x = mu + z @ w.T + s2.sqrt() * eps
    return (x, z) if return_latent else x
