r"""Regression's reference solutions in plain torch: maximum likelihood by the SVD, the
posterior of the weights and the two predictive distributions (PRML 1.64, 3.53-3.59)."""

from __future__ import annotations

import math
import warnings

import pyro.distributions as dist
import torch

from .._checks import as_data, check_positive
from ._base import (
    Posterior,
    RegressionParams,
    check_overflow,
    check_precision,
    check_xy,
    posterior_svd,
    thin_svd,
)


def mle(phi: object, t: object, rcond: float | None = None) -> RegressionParams:
    r"""Maximum-likelihood weights and noise precision (PRML 3.15, 3.21).

    The weights are the minimum-norm least-squares solution :math:`w = \Phi^+ t`, from the
    SVD :math:`\Phi = U \operatorname{diag}(s) V^\top` (the method of LAPACK's ``gelsd``):
    :math:`w = V \operatorname{diag}(1/s) U^\top t`, with singular values below
    ``rcond * s_max`` treated as zero. It is backward stable, so ill-conditioned designs
    (high-degree polynomials) are solved as accurately as their conditioning allows, and
    rank-deficient ones (:math:`N < M`) get the minimum-norm solution. Then
    :math:`1/\beta = \frac1N \lVert t - \Phi w \rVert^2`, the mean squared residual.

    The default cut-off is relative to the dtype and to the singular values only:
    :math:`\epsilon \min(N, M)\, s_{max}`, :math:`\epsilon` the machine epsilon of the
    dtype, the backward error of the SVD. (numpy's :math:`\epsilon \max(N, M)` grows with
    the number of rows: in float32 at :math:`N = 5 \times 10^5` it is 0.06, and it drops
    a direction of a design whose condition number is 17.) scipy's ``lstsq`` uses
    :math:`\epsilon\, s_{max}`; both keep every direction the data determine.

    Parameters
    ----------
    phi : array_like, shape (N, M)
        Design matrix, :math:`N \ge 2`. Floating inputs keep their dtype (float16 is
        computed in float32); integer numpy data become float64; pandas objects are
        accepted.
    t : array_like, shape (N,)
        Targets.
    rcond : float, optional
        Relative cut-off for small singular values (see above).

    Returns
    -------
    RegressionParams
        ``w`` of shape ``(M,)``, ``beta`` of shape ``()``. When the fit interpolates the
        data (the rank of ``phi`` reaches :math:`N`, e.g. :math:`M \ge N`, or ``t`` lies
        in the span of its columns to working precision) the residual is zero and
        ``beta`` is ``inf``, with a ``RuntimeWarning``: there is no noise left to estimate
        (use fewer basis functions, or :func:`posterior` / :func:`maximize_evidence`).

    Examples
    --------
    >>> from ppl_models.regression import polynomial_features
    >>> x = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    >>> p = mle(polynomial_features(x, 1), torch.tensor([1.0, 3.0, 5.0, 8.0]).double())
    >>> p.w  # slope S_xt / S_xx = 11.5 / 5, intercept 4.25 - 2.3 * 1.5
    tensor([0.8000, 2.3000], dtype=torch.float64)
    >>> round(float(1 / p.beta), 12)  # residuals 0.2, -0.1, -0.4, 0.3
    0.075
    """
    phi, t = check_xy(phi, t)
    n, m = phi.shape
    c, s, Vh = thin_svd(phi, t)
    eps = torch.finfo(phi.dtype).eps
    if rcond is None:
        rcond = eps * min(n, m)
    else:
        rcond = check_positive(rcond, "rcond", allow_tensor=False)
    keep = s > rcond * s[0]
    inv_s = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
    w = Vh.T @ (inv_s * c)
    resid = t - phi @ w
    ss = resid @ resid
    rank = int(keep.sum())
    # A zero residual computed in floating point is the rounding of the backward error:
    # |r| <= c eps (s_max |w| + |t|) (Higham, Accuracy and Stability, 20.1). Below that the
    # data are fitted exactly and 1 / beta is 0, not a rounding error's square (1e-31).
    floor = (
        8
        * min(n, m)
        * eps
        * (float(s[0]) * float(torch.linalg.vector_norm(w)) + float(torch.linalg.vector_norm(t)))
    )
    if rank >= n or float(ss) <= floor * floor:
        why = (
            f"phi has rank {rank} >= N = {n} rows"
            if rank >= n
            else "t lies in the span of phi's columns to working precision"
        )
        warnings.warn(
            f"mle: the fit interpolates the data ({why}): the residual is zero and the noise "
            "precision beta is infinite. Use fewer basis functions than data points, or the "
            "Bayesian posterior (posterior, maximize_evidence).",
            RuntimeWarning,
            stacklevel=2,
        )
        return RegressionParams(w, torch.full((), math.inf, dtype=phi.dtype, device=phi.device))
    beta = 1.0 / (ss / n)
    return RegressionParams(w, beta)


def predictive(phi_new: object, params: RegressionParams) -> dist.Normal:
    r"""The maximum-likelihood predictive distribution
    :math:`\mathcal{N}(t \mid \phi(x)^\top w, \beta^{-1})` (PRML 1.64), one per row.

    Parameters
    ----------
    phi_new : array_like, shape (K, M)
        Basis functions at the new inputs.
    params : RegressionParams
        ``w`` ``(M,)`` and a finite ``beta > 0``.

    Returns
    -------
    torch.distributions.Normal
        Batch shape ``(K,)``.

    Examples
    --------
    >>> p = RegressionParams(torch.tensor([1.0, 2.0]), torch.tensor(4.0))
    >>> d = predictive(torch.tensor([[1.0, 0.5]]), p)
    >>> d.mean, d.stddev
    (tensor([2.]), tensor([0.5000]))
    """
    if not isinstance(params, tuple) or len(params) != 2:
        raise TypeError(f"params must be a RegressionParams(w, beta); got {type(params).__name__}")
    params = RegressionParams(*params)
    phi_new = as_data(phi_new, "phi_new", ndim=2, min_rows=1)
    w = as_data(params.w, "params.w", ndim=1, min_rows=1).to(phi_new)
    beta = check_precision(params.beta, "params.beta", phi_new)
    if phi_new.shape[1] != w.shape[0]:
        raise ValueError(
            f"phi_new must have {w.shape[0]} columns (the length of w); got {phi_new.shape[1]}"
        )
    return dist.Normal(phi_new @ w, beta.rsqrt().expand(phi_new.shape[0]))


def posterior(phi: object, t: object, alpha: float, beta: float) -> Posterior:
    r"""The posterior :math:`\mathcal{N}(w \mid m_N, S_N)` of the weights under the prior
    :math:`\mathcal{N}(0, \alpha^{-1} I)` and noise precision :math:`\beta` (PRML 3.53-3.54).

    With the thin SVD :math:`\Phi = U\operatorname{diag}(s)V^\top`, the precision
    :math:`S_N^{-1} = \alpha I + \beta\Phi^\top\Phi` has eigenvectors :math:`V` and
    eigenvalues :math:`d_i = \alpha + \beta s_i^2` (and :math:`\alpha` on the null space of
    :math:`\Phi` when :math:`N < M`), so :math:`m_N = V \operatorname{diag}(\beta s_i / d_i)
    U^\top t` and :math:`S_N = V\operatorname{diag}(1/d_i)V^\top` without inverting a matrix
    or forming :math:`\Phi^\top\Phi`.

    Parameters
    ----------
    phi, t : array_like, shapes (N, M) and (N,)
        The design matrix and the targets.
    alpha : float
        Prior precision of the weights, :math:`> 0`.
    beta : float
        Noise precision, :math:`> 0`.

    Returns
    -------
    Posterior
        ``mean`` :math:`m_N` of shape ``(M,)``, ``covariance`` :math:`S_N` of shape ``(M, M)``.

    Examples
    --------
    >>> phi = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    >>> post = posterior(phi, torch.tensor([1.0, 3.0], dtype=torch.float64), alpha=1.0, beta=1.0)
    >>> post.mean, post.covariance  # S_N = 1 / (1 + 2), m_N = S_N * (1 + 3)
    (tensor([1.3333], dtype=torch.float64), tensor([[0.3333]], dtype=torch.float64))
    """
    phi, t = check_xy(phi, t)
    alpha = check_precision(alpha, "alpha", phi)
    beta = check_precision(beta, "beta", phi)
    svd = thin_svd(phi, t)
    mean, d = posterior_svd(phi, t, alpha, beta, svd)
    Vh = svd[2]
    m = phi.shape[1]
    if Vh.shape[0] == m:
        cov = Vh.T @ (Vh / d[:, None])
    else:
        # N < M: V is not square; on the null space of phi the precision is alpha.
        # 1/d - 1/alpha = -beta s^2 / (alpha d), written so as not to cancel.
        s = svd[1]
        shrink = -beta * s * s / (alpha * d)
        cov = torch.eye(m, dtype=phi.dtype, device=phi.device) / alpha + Vh.T @ (
            Vh * shrink[:, None]
        )
    cov = 0.5 * (cov + cov.T)
    check_overflow((mean, cov), alpha, beta)
    return Posterior(mean, cov)


def predictive_posterior(phi_new: object, post: Posterior, beta: float) -> dist.Normal:
    r"""The Bayesian predictive distribution (PRML 3.58-3.59), one per row:

    .. math::

        p(t \mid x, \mathbf t) = \mathcal{N}\left(t \mid m_N^\top\phi(x),\;
            \frac1\beta + \phi(x)^\top S_N \phi(x)\right).

    Parameters
    ----------
    phi_new : array_like, shape (K, M)
        Basis functions at the new inputs.
    post : Posterior
        The posterior from :func:`posterior`.
    beta : float
        Noise precision, :math:`> 0`.

    Returns
    -------
    torch.distributions.Normal
        Batch shape ``(K,)``, as :func:`predictive`'s; its variance adds the weights'
        uncertainty to the noise's.

    Examples
    --------
    >>> post = Posterior(torch.tensor([2.0]), torch.tensor([[0.5]]))
    >>> d = predictive_posterior(torch.tensor([[1.0], [2.0]]), post, beta=2.0)
    >>> d.mean, d.variance
    (tensor([2., 4.]), tensor([1.0000, 2.5000]))
    """
    if not isinstance(post, tuple) or len(post) != 2:
        raise TypeError(f"post must be a Posterior(mean, covariance); got {type(post).__name__}")
    post = Posterior(*post)
    phi_new = as_data(phi_new, "phi_new", ndim=2, min_rows=1)
    mean = as_data(post.mean, "post.mean", ndim=1, min_rows=1).to(phi_new)
    cov = as_data(post.covariance, "post.covariance", ndim=2, min_rows=1).to(phi_new)
    beta = check_precision(beta, "beta", phi_new)
    m = mean.shape[0]
    if cov.shape != (m, m):
        raise ValueError(
            f"post.covariance must have shape ({m}, {m}) to match post.mean; got {tuple(cov.shape)}"
        )
    if phi_new.shape[1] != m:
        raise ValueError(
            f"phi_new must have {m} columns (the length of mean); got {phi_new.shape[1]}"
        )
    var = 1.0 / beta + ((phi_new @ cov) * phi_new).sum(-1)
    loc = phi_new @ mean
    if not bool(torch.isfinite(var).all() & torch.isfinite(loc).all()):
        raise ValueError(f"phi_new overflows {phi_new.dtype} in the predictive: rescale it")
    if not bool((var > 0).all()):
        raise ValueError("post.covariance must be positive semi-definite (a variance < 0)")
    return dist.Normal(loc, var.sqrt())
