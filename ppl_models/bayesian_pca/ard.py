r"""Bayesian PCA's reference solutions: ARD by EM (PRML 12.2.3), the model covariance, the
rules that count the effective dimension, and rotation-free summaries of posterior draws."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import torch

from .._checks import as_array, as_data, check_int, check_positive
from .._deprecation import renamed_keywords
from ..ppca import PPCAParams

_LOG_2PI = math.log(2 * math.pi)


class BPCAResult(NamedTuple):
    """What :func:`ard_em` returns.

    Attributes
    ----------
    params : PPCAParams
        ``W`` (D, M) with the switched-off columns exactly zero, ``mu`` (D,), ``sigma2``.
    alpha : torch.Tensor, shape (M,)
        :math:`D / \\|w_i\\|^2`; ``inf`` for a switched-off column.
    effective_dim : int
        The number of columns left (:func:`effective_dim_point`).
    alpha_history : torch.Tensor, shape (num_iter, M)
        :math:`\\alpha` after every iteration (``inf`` once a column is switched off).
    log_likelihood : torch.Tensor, shape (num_iter,)
        :math:`\\ln p(X \\mid W, \\bar x, \\sigma^2)` after every iteration.
    converged : bool
        Whether the relative change of :math:`C` fell below ``tol``.
    """

    params: PPCAParams
    alpha: torch.Tensor
    effective_dim: int
    alpha_history: torch.Tensor
    log_likelihood: torch.Tensor
    converged: bool


def _check_latent_dim(latent_dim: object, d: int) -> int:
    if d < 2:
        raise ValueError(f"x must have at least 2 columns for PCA; got {d}")
    return check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)


def _gaussian_loglik(s: torch.Tensor, c: torch.Tensor, n: int) -> torch.Tensor:
    """:math:`-\\frac N2 [D\\ln 2\\pi + \\ln|C| + \\mathrm{Tr}(C^{-1}S)]` (mean at x̄)."""
    d = s.shape[0]
    chol = torch.linalg.cholesky(c)
    logdet = 2 * torch.log(torch.diagonal(chol)).sum()
    trace = torch.trace(torch.cholesky_solve(s, chol))
    return -0.5 * n * (d * math.log(2 * math.pi) + logdet + trace)


def _loadings(W: object, name: str, *, batched: bool = False) -> torch.Tensor:
    """A finite floating ``(D, M)`` matrix (``(..., D, M)`` when ``batched``)."""
    t = as_array(W, name)
    if t.ndim < 2 or (not batched and t.ndim != 2):
        want = "(..., D, M)" if batched else "(D, M)"
        raise ValueError(f"{name} must be a matrix of shape {want}; got shape {tuple(t.shape)}")
    if t.shape[-1] == 0 or t.shape[-2] == 0:
        raise ValueError(f"{name} must have at least one row and column; got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return t


def _precisions(alpha: object, name: str) -> torch.Tensor:
    """ARD precisions, ``(..., M)``: positive, ``inf`` allowed (a switched-off column)."""
    t = as_array(alpha, name)
    if t.ndim == 0 or t.shape[-1] == 0 or t.numel() == 0:
        raise ValueError(
            f"{name} must hold one precision per column (..., M); got {tuple(t.shape)}"
        )
    if not bool((t > 0).all()):  # NaN fails too
        raise ValueError(
            f"{name} must be positive (inf for a switched-off column), never NaN; got "
            f"{t.flatten()[~(t.flatten() > 0)][0].item()!r}"
        )
    return t


def model_covariance(W: torch.Tensor, sigma2: torch.Tensor | float) -> torch.Tensor:
    r""":math:`C = W W^\top + \sigma^2 I`, batched over leading dimensions of ``W``.

    Parameters
    ----------
    W : torch.Tensor, shape (..., D, M)
    sigma2 : torch.Tensor, shape (...) or float

    Returns
    -------
    torch.Tensor, shape (..., D, D)

    Examples
    --------
    >>> model_covariance(torch.ones(2, 1), 0.5)
    tensor([[1.5000, 1.0000],
            [1.0000, 1.5000]])
    """
    W = _loadings(W, "W", batched=True)
    s2 = as_array(sigma2, "sigma2").to(dtype=W.dtype, device=W.device)
    if not bool(((s2 > 0) & torch.isfinite(s2)).all()):
        raise ValueError("sigma2 must be positive and finite (a noise variance)")
    try:
        torch.broadcast_shapes(s2.shape, W.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"sigma2 must have the batch shape of W ({tuple(W.shape[:-2])}) or be a number; "
            f"got shape {tuple(s2.shape)}"
        ) from None
    c = _model_covariance(W, s2)
    if not bool(torch.isfinite(c).all()):
        raise ValueError(
            f"W W^T + sigma2 I overflows {W.dtype}: W or sigma2 is too large; rescale them "
            "(or pass float64)"
        )
    return c


def _model_covariance(W: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(W.shape[-2], dtype=W.dtype, device=W.device)
    return W @ W.transpose(-1, -2) + torch.as_tensor(s2, dtype=W.dtype)[..., None, None] * eye


def effective_dim_point(
    W: torch.Tensor, alpha: torch.Tensor, norm_ratio: float = 0.01, alpha_ratio: float = 100.0
) -> int:
    r"""The effective dimension of a **point estimate** (:func:`ard_em`, MAP).

    Rule: column :math:`i` is switched off when its norm is below ``norm_ratio`` (1%) of
    the largest column norm *and* its :math:`\alpha_i` is above ``alpha_ratio`` (100) times
    the smallest :math:`\alpha`; the effective dimension is the number of the others. A
    point estimate drives switched-off columns to (nearly) zero, so both margins are wide.

    Parameters
    ----------
    W : torch.Tensor, shape (D, M)
    alpha : torch.Tensor, shape (M,)
    norm_ratio, alpha_ratio : float

    Returns
    -------
    int

    Examples
    --------
    >>> W = torch.tensor([[1.0, 0.0, 1e-4], [0.0, 2.0, 0.0]])
    >>> effective_dim_point(W, 2.0 / (W**2).sum(0))
    2
    """
    W = _loadings(W, "W")
    alpha = _precisions(alpha, "alpha")
    if alpha.shape != (W.shape[1],):
        raise ValueError(
            f"alpha must have shape ({W.shape[1]},) (one per column of W); got {tuple(alpha.shape)}"
        )
    norm_ratio = check_positive(norm_ratio, "norm_ratio", allow_tensor=False)
    alpha_ratio = check_positive(alpha_ratio, "alpha_ratio", allow_tensor=False)
    norms = torch.linalg.vector_norm(W, dim=-2)
    off = (norms < norm_ratio * norms.max()) & (alpha.to(norms) > alpha_ratio * alpha.min())
    return int((~off).sum())


def effective_dim_median(W_median: torch.Tensor, norm_ratio: float = 0.05) -> int:
    r"""The effective dimension from a Gaussian guide's **median** :math:`W`.

    Rule: the number of columns of the guide's median :math:`W` whose norm is at least
    ``norm_ratio`` (5%) of the largest. The median of a Gaussian guide is its location,
    which ARD pulls to zero for a switched-off column, although draws from the guide keep
    a norm of about :math:`\sqrt{D/\alpha_i}` (hence the wider margin than
    :func:`effective_dim_point`'s).

    Parameters
    ----------
    W_median : torch.Tensor, shape (D, M)
    norm_ratio : float

    Returns
    -------
    int

    Examples
    --------
    >>> effective_dim_median(torch.tensor([[1.0, 0.02], [0.0, 0.01]]))
    1
    """
    W_median = _loadings(W_median, "W_median")
    norm_ratio = check_positive(norm_ratio, "norm_ratio", allow_tensor=False)
    norms = torch.linalg.vector_norm(W_median, dim=-2)
    return int((norms >= norm_ratio * norms.max()).sum())


def effective_dim_alpha(alpha_draws: torch.Tensor, gap: float = 2.0) -> int:
    r"""The effective dimension from **posterior draws** of :math:`\alpha` (NUTS, or draws
    from any guide).

    Rule: sort :math:`\alpha` within each draw (columns swap labels between draws), average
    the sorted values over draws, and find the largest ratio between neighbours,
    :math:`\bar\alpha_{(k+1)} / \bar\alpha_{(k)}`. If it is at least ``gap`` (2) the
    effective dimension is that :math:`k`; otherwise no column is switched off and it is
    :math:`M`.

    Parameters
    ----------
    alpha_draws : torch.Tensor, shape (..., M)
        Any leading dimensions (chain, draw) are averaged over.
    gap : float

    Returns
    -------
    int

    Examples
    --------
    >>> effective_dim_alpha(torch.tensor([[10.0, 500.0, 12.0], [900.0, 11.0, 13.0]]))
    2
    """
    a = _precisions(alpha_draws, "alpha_draws")
    gap = check_positive(gap, "gap", allow_tensor=False)
    if gap <= 1:
        raise ValueError(f"gap must be above 1 (a ratio between sorted precisions); got {gap!r}")
    m = a.shape[-1]
    mean = a.reshape(-1, m).sort(-1).values.mean(0)
    if m == 1:
        return 1
    ratios = mean[1:] / mean[:-1]
    k = int(torch.argmax(ratios))
    return k + 1 if float(ratios[k]) >= gap else m


def rotation_free(samples: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    r"""Rotation- and label-free summaries of posterior draws.

    Parameters
    ----------
    samples : mapping
        Draws with ``"W"`` (..., D, M), ``"alpha"`` (..., M) and ``"sigma"`` (...), e.g.
        ``mcmc.get_samples(group_by_chain=True)``.

    Returns
    -------
    dict
        ``"alpha_sorted"`` (..., M) ascending, ``"norm_sorted"`` (..., M) column norms
        descending, and ``"C"`` (..., D, D).

    Examples
    --------
    >>> s = {"W": torch.tensor([[[0.0, 2.0], [1.0, 0.0]]]), "alpha": torch.tensor([[4.0, 1.0]]),
    ...      "sigma": torch.tensor([1.0])}
    >>> r = rotation_free(s)
    >>> r["alpha_sorted"].tolist(), r["norm_sorted"].tolist()
    ([[1.0, 4.0]], [[2.0, 1.0]])
    """
    if not isinstance(samples, Mapping):
        raise TypeError(
            f"samples must be a dict of draws (W, alpha, sigma); got {type(samples).__name__}"
        )
    missing = [k for k in ("W", "alpha") if k not in samples]
    if missing:
        raise ValueError(f"samples must hold draws of {missing}; it has {list(samples)}")
    W = _loadings(samples["W"], "samples['W']", batched=True)
    alpha = _precisions(samples["alpha"], "samples['alpha']")
    if alpha.shape[-1] != W.shape[-1] or alpha.shape[:-1] != W.shape[:-2]:
        raise ValueError(
            f"samples['alpha'] must have shape {(*W.shape[:-2], W.shape[-1])} (the draws of W "
            f"and one per column); got {tuple(alpha.shape)}"
        )
    out = {
        "alpha_sorted": alpha.sort(-1).values,
        "norm_sorted": torch.linalg.vector_norm(W, dim=-2).sort(-1, descending=True).values,
    }
    if "sigma" in samples:
        sigma = as_array(samples["sigma"], "samples['sigma']")
        if not bool(((sigma > 0) & torch.isfinite(sigma)).all()):
            raise ValueError("samples['sigma'] must be positive and finite")
        try:
            out["C"] = model_covariance(W, sigma.to(W) ** 2)
        except ValueError as err:
            raise ValueError(f"samples['sigma']: {err}") from None
    return out


@renamed_keywords(max_latent_dim="latent_dim")
def ard_em(
    x: object,
    latent_dim: int,
    *,
    tol: float = 1e-9,
    max_iter: int = 5000,
    seed: int | None = 0,
    prune_tol: float = 1e-12,
    rotate: bool = True,
) -> BPCAResult:
    r"""Bayesian PCA by EM with automatic relevance determination (PRML 12.2.3).

    Alternates the E-step of PPCA, the M-step with the ARD prior
    :math:`W_{new} = S W M^{-1} \big[\sigma^2 I + M^{-1} W^\top S W M^{-1}
    + \sigma^2 A / N\big]^{-1}` (the module docstring's update divided by :math:`N`,
    written with the sample covariance :math:`S` so that an iteration costs
    :math:`O(D^2 M)`), the noise update, and the evidence update
    :math:`\alpha_i = D / \|w_i\|^2`. :math:`\mu` is the sample mean, the maximum of every
    step. A column whose squared norm falls to ``prune_tol`` times the largest is set to
    exactly zero with :math:`\alpha_i = \infty`, and stays there (the update would keep
    shrinking it geometrically). Switched-off columns are kept last.

    With ``rotate=True`` (default) every iteration ends by rotating :math:`W` to
    orthogonal columns, :math:`W \leftarrow W V = U \Sigma` from the SVD
    :math:`W = U \Sigma V^\top`. This leaves :math:`W W^\top`, hence the likelihood,
    unchanged and raises the prior term maximised over :math:`\alpha`,
    :math:`-\frac D2 \sum_i \ln\|w_i\|^2`, because (Hadamard's inequality)
    :math:`\prod_i \|w_i\|^2 \ge \det(W^\top W)`, with equality for orthogonal columns: it
    is an ascent step of the same objective (a generalised EM). Without it the columns
    turn towards orthogonality at the EM's slow pace, and :math:`C` still drifts by about
    0.5% over thousands of iterations on Bishop's data. With it the columns come out
    sorted by norm, so ``alpha_history[:, i]`` follows the i-th smallest :math:`\alpha`.

    The iteration stops when the relative change of :math:`C = W W^\top + \sigma^2 I`
    (Frobenius) is below ``tol``. :math:`C` and not :math:`W`: the columns keep rotating
    slowly within the retained subspace (the ARD prior favours orthogonal columns) long
    after :math:`C` has settled.

    Parameters
    ----------
    x : array_like, shape (N, D)
        Data. Floating inputs keep their dtype (use float64).
    latent_dim : int
        :math:`M`, the number of columns to start from, :math:`1 \le M < D` (formerly
        ``max_latent_dim``).
    tol : float
        Convergence threshold (see above).
    max_iter : int
        The most iterations.
    seed : int, optional
        Seed of the random initial :math:`W` (entries :math:`\mathcal N(0, \bar\lambda / M)`,
        :math:`\bar\lambda` the mean eigenvalue of :math:`S`; :math:`\sigma^2 = \bar\lambda`).
    prune_tol : float
        Relative squared norm below which a column is switched off.
    rotate : bool
        Rotate to orthogonal columns after every iteration (see above).

    Returns
    -------
    BPCAResult
        ``params`` (PPCAParams), ``alpha`` (M,), ``effective_dim`` (the number of columns
        not switched off: for this point estimate the rule of
        :func:`effective_dim_point` agrees), and the history.

    References
    ----------
    Bishop (1999); PRML 12.2.3 (eq. 12.62 and the M-step for W with the ARD term).

    Examples
    --------
    >>> from ppl_models.datasets import make_bishop_bpca_data
    >>> res = ard_em(make_bishop_bpca_data(seed=0).x, 9)
    >>> res.effective_dim, int(torch.isinf(res.alpha).sum())
    (3, 6)
    """
    x = as_data(x, "x", ndim=2)
    n, d = x.shape
    m = _check_latent_dim(latent_dim, d)
    tol = check_positive(tol, "tol", allow_tensor=False)
    prune_tol = check_positive(prune_tol, "prune_tol", allow_tensor=False)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    dtype, device = x.dtype, x.device
    mu = x.mean(0)
    xc = x - mu
    s = xc.T @ xc / n
    lam_mean = float(torch.trace(s)) / d
    if not bool(torch.isfinite(s).all()):
        raise ValueError(
            f"x's values are too large: their covariance overflows {x.dtype}; rescale the data"
        )
    if not lam_mean > 0:
        raise ValueError("x must vary: its sample covariance is zero")
    g = torch.Generator().manual_seed(0 if seed is None else check_int(seed, "seed", minimum=0))
    W = (torch.randn(d, m, generator=g, dtype=torch.float64) * math.sqrt(lam_mean / m)).to(
        dtype=dtype, device=device
    )
    sigma2 = torch.tensor(lam_mean, dtype=dtype, device=device)
    alpha = d / (W * W).sum(0)
    k = m  # the active columns are W[:, :k]; switched-off ones are zero and last
    eye_d = torch.eye(d, dtype=dtype, device=device)
    c_old = _model_covariance(W, sigma2)
    alphas, lls = [], []
    converged = False
    for _ in range(max_iter):
        wa, aa = W[:, :k], alpha[:k]
        eye_k = torch.eye(k, dtype=dtype, device=device)
        minv = torch.linalg.inv(wa.T @ wa + sigma2 * eye_k)
        swm = s @ wa @ minv  # (1/N) sum_n (x_n - x̄) E[z_n]^T
        ezz = sigma2 * minv + minv @ wa.T @ swm  # (1/N) sum_n E[z_n z_n^T]
        w_new = torch.linalg.solve(ezz + sigma2 * torch.diag(aa) / n, swm.T).T
        sigma2 = (
            torch.trace(s) - 2 * torch.trace(w_new.T @ swm) + torch.trace(ezz @ w_new.T @ w_new)
        ) / d
        if rotate:
            # W V = U S: the same W W^T, orthogonal columns sorted by norm (see above).
            u, sv, _ = torch.linalg.svd(w_new, full_matrices=False)
            w_new = u * sv
        norm2 = (w_new * w_new).sum(0)
        w_new = w_new[:, norm2 > prune_tol * norm2.max()]
        k = w_new.shape[1]
        W = torch.zeros_like(W)
        W[:, :k] = w_new
        norm2 = (W * W).sum(0)
        alpha = torch.full_like(norm2, math.inf)
        alpha[:k] = d / norm2[:k]
        c = W @ W.T + sigma2 * eye_d
        alphas.append(alpha)
        lls.append(_gaussian_loglik(s, c, n))
        change = float(torch.linalg.matrix_norm(c - c_old) / torch.linalg.matrix_norm(c_old))
        c_old = c
        if change < tol:
            converged = True
            break
    params = PPCAParams(W, mu, sigma2)
    return BPCAResult(
        params,
        alpha,
        k,
        torch.stack(alphas),
        torch.stack(lls),
        converged,
    )
