r"""The evidence of Bayesian linear regression (PRML 3.86), its maximisation over
:math:`\alpha, \beta` (PRML 3.91-3.98), and the exact leave-one-out densities that
PSIS-LOO is checked against."""

from __future__ import annotations

import math
import warnings

import torch

from .._checks import as_design, check_int, check_positive
from ._base import (
    GAMMA_FLOOR,
    EvidenceResult,
    check_overflow,
    check_precision,
    check_xy,
    posterior_svd,
    thin_svd,
)


def _log_evidence(
    phi: torch.Tensor,
    t: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    n, m = phi.shape
    mean, d = posterior_svd(phi, t, alpha, beta, svd)
    resid = t - phi @ mean
    energy = 0.5 * beta * (resid @ resid) + 0.5 * alpha * (mean @ mean)
    logdet_a = torch.log(d).sum() + (m - d.shape[0]) * torch.log(alpha)
    return (
        0.5 * m * torch.log(alpha)
        + 0.5 * n * torch.log(beta)
        - energy
        - 0.5 * logdet_a
        - 0.5 * n * math.log(2.0 * math.pi)
    )


def log_evidence(phi: object, t: object, alpha: float, beta: float) -> torch.Tensor:
    r"""The log marginal likelihood :math:`\ln p(t \mid \alpha, \beta)` (PRML 3.86).

    It equals :math:`\ln\mathcal{N}(t \mid 0, \beta^{-1} I + \alpha^{-1}\Phi\Phi^\top)`, but
    is computed as in PRML 3.86 from the posterior, at cost :math:`O(NM^2)`.

    Parameters
    ----------
    phi, t : array_like, shapes (N, M) and (N,)
        The design matrix and the targets.
    alpha, beta : float
        Prior precision and noise precision, both :math:`> 0`.

    Returns
    -------
    torch.Tensor, shape ()
        The log evidence in nats.

    Examples
    --------
    >>> phi = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    >>> value = log_evidence(phi, torch.tensor([1.0, 3.0]).double(), 1.0, 1.0)
    >>> # t ~ N(0, [[2, 1], [1, 2]]): -ln 2 pi - ln(3) / 2 - (14 / 3) / 2
    >>> round(float(value), 6), round(-math.log(2 * math.pi) - math.log(3) / 2 - 7 / 3, 6)
    (-4.720517, -4.720517)
    """
    phi, t = check_xy(phi, t)
    alpha = check_precision(alpha, "alpha", phi)
    beta = check_precision(beta, "beta", phi)
    value = _log_evidence(phi, t, alpha, beta, thin_svd(phi, t))
    check_overflow((value,), alpha, beta)
    return value


def maximize_evidence(
    phi: object,
    t: object,
    alpha: float = 1.0,
    beta: float | None = None,
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> EvidenceResult:
    r"""Maximise the evidence over :math:`\alpha` and :math:`\beta` by re-estimation
    (PRML 3.91-3.98), the "evidence approximation" or type-II maximum likelihood.

    Each iteration computes :math:`m_N` for the current :math:`(\alpha, \beta)`, then
    :math:`\gamma = \sum_i \lambda_i / (\alpha + \lambda_i)` with :math:`\lambda_i =
    \beta s_i^2` (:math:`s_i` the singular values of :math:`\Phi`, computed once),
    :math:`\alpha \leftarrow \gamma / m_N^\top m_N` and
    :math:`\beta \leftarrow (N - \gamma) / \lVert t - \Phi m_N\rVert^2`. The fixed point is a
    stationary point of :func:`log_evidence`. Convergence is linear; it stops when both
    :math:`|\Delta \ln\alpha|` and :math:`|\Delta \ln\beta|` fall to ``tol``.

    The evidence can rise without bound as :math:`\alpha \to \infty` (the data are best
    explained by :math:`w = 0`, e.g. a constant fitted to zero-mean targets). When
    :math:`\gamma` falls below 1e-10 that limit is returned: ``alpha = inf``,
    ``gamma = 0``, :math:`\beta = N / \lVert t\rVert^2` and the evidence of
    :math:`t \sim \mathcal{N}(0, \beta^{-1} I)`.

    Parameters
    ----------
    phi, t : array_like, shapes (N, M) and (N,)
        The design matrix and the targets.
    alpha : float
        Initial prior precision, :math:`> 0`.
    beta : float, optional
        Initial noise precision, :math:`> 0`; by default :math:`1 / \operatorname{var}(t)`.
    tol : float
        Tolerance on the change of :math:`\ln\alpha` and :math:`\ln\beta` per iteration.
    max_iter : int
        The most iterations; a ``RuntimeWarning`` says when they ran out.

    Returns
    -------
    EvidenceResult
        ``(alpha, beta, gamma, log_evidence, num_iter, converged)``.

    Raises
    ------
    ValueError
        If the re-estimation leaves the positive reals (targets identically zero, or a
        model that fits the data exactly).

    Examples
    --------
    >>> from ppl_models.regression import polynomial_features
    >>> x = torch.linspace(0, 1, 20, dtype=torch.float64)
    >>> t = torch.sin(2 * torch.pi * x) + 0.1 * torch.cos(17 * x)
    >>> r = maximize_evidence(polynomial_features(x, 3), t)
    >>> r.converged, 0 < float(r.gamma) <= 4
    (True, True)
    """
    phi, t = check_xy(phi, t)
    n = phi.shape[0]
    a = check_precision(alpha, "alpha", phi)
    if beta is None:
        var = t.var(correction=0)
        if not var > 0:
            raise ValueError("t is constant; pass an initial beta")
        b = 1.0 / var
    else:
        b = check_precision(beta, "beta", phi)
    tol = check_positive(tol, "tol", allow_tensor=False)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    svd = thin_svd(phi, t)
    s2 = svd[1] ** 2
    converged = False
    gamma = torch.zeros((), dtype=phi.dtype, device=phi.device)
    it = 0
    for it in range(1, max_iter + 1):
        mean, _ = posterior_svd(phi, t, a, b, svd)
        lam = b * s2
        gamma = (lam / (a + lam)).sum()
        if gamma <= GAMMA_FLOOR:
            # alpha -> inf: w is pinned at 0 and the evidence is that of t ~ N(0, I / beta),
            # maximised by beta = N / ||t||^2; return that limit rather than overflow.
            b_lim = n / (t @ t)
            inf = torch.full((), math.inf, dtype=phi.dtype, device=phi.device)
            value = 0.5 * n * (torch.log(b_lim) - 1.0 - math.log(2.0 * math.pi))
            return EvidenceResult(inf, b_lim, torch.zeros_like(gamma), value, it, True)
        resid = t - phi @ mean
        a_new = gamma / (mean @ mean)
        b_new = (n - gamma) / (resid @ resid)
        if not (torch.isfinite(a_new) and torch.isfinite(b_new) and a_new > 0 and b_new > 0):
            raise ValueError(
                f"evidence re-estimation left the positive reals at iteration {it} "
                f"(alpha={float(a_new):g}, beta={float(b_new):g}): the targets may be zero or "
                "fitted exactly"
            )
        step = max(
            abs(float(torch.log(a_new / a))),
            abs(float(torch.log(b_new / b))),
        )
        a, b = a_new, b_new
        if step <= tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"maximize_evidence did not converge in max_iter={max_iter} iterations",
            RuntimeWarning,
            stacklevel=2,
        )
    # gamma at the final (alpha, beta), so that the returned triple is consistent.
    lam = b * s2
    gamma = (lam / (a + lam)).sum()
    value = _log_evidence(phi, t, a, b, svd)
    check_overflow((value, gamma), a, b)
    return EvidenceResult(a, b, gamma, value, it, converged)


def linear_gaussian_loo(phi: object, t: object, alpha: float, beta: float) -> torch.Tensor:
    r"""Exact leave-one-out log predictive densities of Bayesian linear regression with
    known :math:`\alpha, \beta` (the reference for PSIS-LOO on that model).

    Integrating out :math:`w \sim \mathcal N(0, \alpha^{-1} I)` gives
    :math:`t \sim \mathcal N(0, C)`, :math:`C = \beta^{-1} I + \alpha^{-1} \Phi\Phi^\top`
    (PRML 3.85-3.86), and the conditional of one coordinate of a Gaussian given the others
    (Rasmussen & Williams 2006, eq. 5.12) is, with :math:`P = C^{-1}`,

    .. math::

        \log p(t_n \mid t_{-n}) = -\frac12 \log 2\pi + \frac12 \log P_{nn}
            - \frac{(P t)_n^2}{2 P_{nn}}.

    Parameters
    ----------
    phi, t : array_like, shapes (N, M) and (N,)
        The design matrix and the targets.
    alpha, beta : float
        Prior precision of the weights and noise precision, both :math:`> 0`.

    Returns
    -------
    torch.Tensor, shape (N,)
        :math:`\log p(t_n \mid t_{-n})`, in the dtype of ``phi`` and ``t``.

    Examples
    --------
    >>> phi = torch.ones(2, 1, dtype=torch.float64)
    >>> t = torch.tensor([1.0, 3.0], dtype=torch.float64)
    >>> # t_1 | t_2 = 3 under C = [[2, 1], [1, 2]]: N(1.5, 1.5)
    >>> lo = linear_gaussian_loo(phi, t, 1.0, 1.0)
    >>> exact = -0.5 * math.log(2 * math.pi * 1.5) - (1.0 - 1.5) ** 2 / (2 * 1.5)
    >>> abs(float(lo[0]) - exact) < 1e-12
    True
    """
    phi, t = as_design(phi, t)
    a = check_positive(alpha, "alpha", allow_tensor=False)
    b = check_positive(beta, "beta", allow_tensor=False)
    for value, name in ((a, "alpha"), (b, "beta")):
        # A precision whose reciprocal (a variance) under- or overflows the data's dtype
        # would turn C into zeros or infinities.
        if not (math.isfinite(1.0 / value) and 1.0 / value < torch.finfo(phi.dtype).max):
            raise ValueError(f"{name} = {value:g} is out of the range of {phi.dtype}")
    n = phi.shape[0]
    cov = torch.eye(n, dtype=phi.dtype, device=phi.device) / b + (phi @ phi.T) / a
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0 or not bool(torch.isfinite(cov).all()):
        raise ValueError(
            f"alpha = {a:g}, beta = {b:g}: the marginal covariance 1/beta I + Phi Phi^T / alpha "
            f"is not positive definite in {phi.dtype} (its scales are too far apart); "
            "rescale the data or pass float64"
        )
    prec = torch.cholesky_inverse(chol)
    d = prec.diagonal()
    pt = prec @ t
    return -0.5 * math.log(2 * math.pi) + 0.5 * torch.log(d) - 0.5 * pt**2 / d
