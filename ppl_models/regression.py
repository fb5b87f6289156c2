r"""Linear-in-the-parameters regression with basis functions, by maximum likelihood and
Bayesian inference.

The model
---------
Targets :math:`t_n \in \mathbb{R}` depend on inputs :math:`x_n` through fixed basis
functions :math:`\phi(x) = (\phi_0(x), \dots, \phi_{M-1}(x))^\top` (PRML 3.1-3.3):

.. math::

    t_n = w^\top \phi(x_n) + \epsilon_n, \qquad \epsilon_n \sim \mathcal{N}(0, \beta^{-1}),

with :math:`\Phi` the :math:`N \times M` design matrix, :math:`\Phi_{nj} = \phi_j(x_n)`.

**Maximum likelihood** (PRML 3.15, 3.21, 1.63) is least squares, and the noise variance is
the mean squared residual (divisor :math:`N`):

.. math::

    w_{ML} = \arg\min_w \lVert t - \Phi w \rVert^2 = \Phi^{+} t, \qquad
    \frac{1}{\beta_{ML}} = \frac1N \lVert t - \Phi w_{ML} \rVert^2,

with predictive distribution :math:`p(t \mid x) = \mathcal{N}(t \mid w_{ML}^\top\phi(x),
\beta_{ML}^{-1})` (PRML 1.64). :math:`w_{ML}` is computed from the singular value
decomposition of :math:`\Phi`, never from the normal equations :math:`\Phi^\top\Phi w =
\Phi^\top t`, which square the condition number (about :math:`10^{7}` for a degree-9
polynomial on :math:`[0, 1]`, so :math:`10^{14}` squared).

**Bayesian linear regression** (PRML 3.3) puts the prior :math:`w \sim \mathcal{N}(0,
\alpha^{-1} I)` on the weights; for known :math:`\alpha, \beta` the posterior is Gaussian
(PRML 3.53-3.54) and so is the predictive distribution (PRML 3.58-3.59):

.. math::

    S_N^{-1} = \alpha I + \beta \Phi^\top \Phi, \qquad m_N = \beta S_N \Phi^\top t,
    \qquad \sigma_N^2(x) = \frac1\beta + \phi(x)^\top S_N \phi(x).

**The evidence** (marginal likelihood, PRML 3.86) with :math:`A = S_N^{-1}` and
:math:`E(m_N) = \frac\beta2 \lVert t - \Phi m_N\rVert^2 + \frac\alpha2 m_N^\top m_N`,

.. math::

    \ln p(t \mid \alpha, \beta) = \frac M2 \ln\alpha + \frac N2 \ln\beta - E(m_N)
        - \frac12 \ln|A| - \frac N2 \ln 2\pi,

is maximised by the fixed-point equations (PRML 3.91-3.98), where :math:`\lambda_i` are
the eigenvalues of :math:`\beta\Phi^\top\Phi`:

.. math::

    \gamma = \sum_i \frac{\lambda_i}{\alpha + \lambda_i}, \qquad
    \alpha = \frac{\gamma}{m_N^\top m_N}, \qquad
    \frac1\beta = \frac{\lVert t - \Phi m_N \rVert^2}{N - \gamma}.

==================  ======================  ==========================================
symbol              argument / field        shape
==================  ======================  ==========================================
:math:`x_n`         ``x``                   ``(N,)``
:math:`t_n`         ``t``                   ``(N,)``
:math:`\Phi`        ``phi``                 ``(N, M)``
:math:`w`           ``w``                   ``(M,)``
:math:`\beta`       ``beta``                ``()`` (noise precision)
:math:`\alpha`      ``alpha``               ``()`` (prior precision of ``w``)
:math:`m_N, S_N`    ``mean, covariance``    ``(M,)``, ``(M, M)``
:math:`\gamma`      ``gamma``               ``()`` (effective number of parameters)
==================  ======================  ==========================================

Dtypes. The Pyro model computes in ``torch.promote_types(module dtype, data dtype)``, as
torch's own type promotion does: a module built in the default float32 runs on float64
data, with its priors built in that dtype and on the data's device (float64 data give
float64 prior draws and NUTS samples); priors made of plain floats work too, their draws
cast to that dtype.

Data. Every function that takes data converts them once, at the entry
(:func:`ppl_models._checks.as_data`): torch tensors and numpy arrays, and pandas
DataFrames and Series (a column that does not hold numbers is refused by name); floating
data keep their dtype, float16 is computed in float32, integer and boolean numpy data
become float64 (numpy's and scikit-learn's convention); sparse matrices are refused (pass
``.toarray()``).

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), sections 1.1, 1.2.5,
3.1-3.5.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam, PyroSample

from ._checks import as_data, as_design, check_int, check_positive, promoted_like
from .inference import data_plate, pyro_method
from .inference.potentials import ClosedFormPotential

__all__ = [
    "EvidenceResult",
    "IterateAveraging",
    "LinearRegression",
    "Posterior",
    "RegressionParams",
    "gaussian_features",
    "log_evidence",
    "maximize_evidence",
    "mle",
    "polynomial_features",
    "posterior",
    "predictive",
    "predictive_posterior",
]


# ---------------------------------------------------------------------------
# Basis functions
# ---------------------------------------------------------------------------


def polynomial_features(x: object, degree: int) -> torch.Tensor:
    r"""The polynomial design matrix :math:`\Phi_{nj} = x_n^j`, :math:`j = 0, \dots,
    \text{degree}` (PRML 1.1).

    Parameters
    ----------
    x : array_like, shape (N,)
        Inputs. Floating inputs keep their dtype.
    degree : int
        The polynomial order :math:`M - 1 \ge 0` (degree 0 is the constant column).

    Returns
    -------
    torch.Tensor, shape (N, degree + 1)
        Columns :math:`x^0, x^1, \dots, x^{\text{degree}}`.

    Examples
    --------
    >>> polynomial_features(torch.tensor([1.0, 2.0]), 2)
    tensor([[1., 1., 1.],
            [1., 2., 4.]])
    """
    x = as_data(x, "x", ndim=1, min_rows=1)
    degree = check_int(degree, "degree", minimum=0)
    # torch.linalg.vander refuses N=1, and integer powers are exact enough here.
    phi = x[:, None] ** torch.arange(degree + 1, device=x.device, dtype=x.dtype)
    if not bool(torch.isfinite(phi).all()):
        raise ValueError(
            f"x ** degree overflows {x.dtype} (max |x| = {float(x.abs().max()):.3g}, degree "
            f"{degree}): rescale x (e.g. to [-1, 1]) or pass float64 data"
        )
    return phi


def gaussian_features(x: object, centers: object, width: float) -> torch.Tensor:
    r"""Gaussian basis functions with a bias column (PRML 3.4):
    :math:`\phi_0 = 1`, :math:`\phi_j(x) = \exp\left(-\frac{(x - \mu_j)^2}{2 s^2}\right)`.

    Parameters
    ----------
    x : array_like, shape (N,)
        Inputs.
    centers : array_like, shape (K,)
        The centres :math:`\mu_j`.
    width : float
        The common width :math:`s > 0`.

    Returns
    -------
    torch.Tensor, shape (N, K + 1)
        The bias column followed by one column per centre, in ``x``'s dtype.

    Examples
    --------
    >>> gaussian_features(torch.tensor([0.0, 1.0]), torch.tensor([0.0]), 1.0)
    tensor([[1.0000, 1.0000],
            [1.0000, 0.6065]])
    """
    x = as_data(x, "x", ndim=1, min_rows=1)
    centers = as_data(centers, "centers", ndim=1, min_rows=1).to(x)
    s = check_positive(width, "width", allow_tensor=False)
    two_s2 = torch.tensor(2.0 * s * s, dtype=x.dtype)
    if not (0 < float(two_s2) < math.inf):
        raise ValueError(
            f"width = {s!r} has a square that {x.dtype} cannot hold (it under- or overflows); "
            "rescale x and the centres"
        )
    bumps = torch.exp(-((x[:, None] - centers[None, :]) ** 2) / two_s2.to(x.device))
    return torch.cat([torch.ones_like(x)[:, None], bumps], dim=1)


# ---------------------------------------------------------------------------
# Containers and input handling
# ---------------------------------------------------------------------------


class RegressionParams(NamedTuple):
    """Point parameters of the regression: weights ``w`` ``(M,)`` and noise precision
    ``beta`` ``()`` (the noise variance is ``1 / beta``)."""

    w: torch.Tensor
    beta: torch.Tensor


class Posterior(NamedTuple):
    """The Gaussian posterior of the weights: ``mean`` :math:`m_N` ``(M,)`` and
    ``covariance`` :math:`S_N` ``(M, M)``."""

    mean: torch.Tensor
    covariance: torch.Tensor


class EvidenceResult(NamedTuple):
    """What :func:`maximize_evidence` returns.

    Attributes
    ----------
    alpha, beta : torch.Tensor, shape ()
        The hyperparameters at the maximum of the evidence.
    gamma : torch.Tensor, shape ()
        The effective number of well-determined parameters at that point.
    log_evidence : torch.Tensor, shape ()
        :math:`\\ln p(t \\mid \\alpha, \\beta)` there.
    num_iter : int
        Re-estimation iterations taken.
    converged : bool
        Whether the tolerance was met within ``max_iter``.
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    gamma: torch.Tensor
    log_evidence: torch.Tensor
    num_iter: int
    converged: bool


# Below this effective number of parameters, alpha is taken to have diverged.
_GAMMA_FLOOR = 1e-10


def _check_xy(phi: object, t: object) -> tuple[torch.Tensor, torch.Tensor]:
    return as_design(phi, t)


def _scalar(value: object, name: str, like: torch.Tensor) -> torch.Tensor:
    v = check_positive(value, name)
    if isinstance(v, torch.Tensor) and v.numel() != 1:
        raise ValueError(f"{name} must be a single number; got a tensor of shape {tuple(v.shape)}")
    t = torch.as_tensor(v, dtype=like.dtype, device=like.device).reshape(())
    # A precision whose reciprocal (a variance) or itself is not representable in the
    # data's dtype would turn into 0 or inf inside the formulas.
    if not (bool(torch.isfinite(t)) and bool(torch.isfinite(1.0 / t)) and float(t) > 0):
        raise ValueError(
            f"{name} = {float(v):g} is out of the range of {like.dtype}: it or its reciprocal "
            "under- or overflows; rescale the data or pass float64"
        )
    return t


def _svd(phi: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD ``phi = U diag(s) Vh`` (``k = min(N, M)`` singular values), returned as
    ``(U^T t, s, Vh)``: every closed form here needs ``U`` only through ``U^T t``."""
    n, m = phi.shape
    if n > 2 * m:
        # Tall design matrices: QR first, then the SVD of the small R (phi = Q R,
        # R = U_r S Vh, so U^T t = U_r^T Q^T t). Both steps are backward stable, and U is
        # never formed (forming Q U_r cost as much as the QR itself at N = 1e5, M = 10).
        Q, R = torch.linalg.qr(phi)
        U_r, s, Vh = torch.linalg.svd(R)
        return U_r.T @ (Q.T @ t), s, Vh
    U, s, Vh = torch.linalg.svd(phi, full_matrices=False)
    return U.T @ t, s, Vh


# ---------------------------------------------------------------------------
# Maximum likelihood
# ---------------------------------------------------------------------------


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
    >>> x = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    >>> p = mle(polynomial_features(x, 1), torch.tensor([1.0, 3.0, 5.0, 8.0]).double())
    >>> p.w  # slope S_xt / S_xx = 11.5 / 5, intercept 4.25 - 2.3 * 1.5
    tensor([0.8000, 2.3000], dtype=torch.float64)
    >>> round(float(1 / p.beta), 12)  # residuals 0.2, -0.1, -0.4, 0.3
    0.075
    """
    phi, t = _check_xy(phi, t)
    n, m = phi.shape
    c, s, Vh = _svd(phi, t)
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
    beta = _scalar(params.beta, "params.beta", phi_new)
    if phi_new.shape[1] != w.shape[0]:
        raise ValueError(
            f"phi_new must have {w.shape[0]} columns (the length of w); got {phi_new.shape[1]}"
        )
    return dist.Normal(phi_new @ w, beta.rsqrt().expand(phi_new.shape[0]))


# ---------------------------------------------------------------------------
# Bayesian linear regression
# ---------------------------------------------------------------------------


def _posterior_svd(
    phi: torch.Tensor,
    t: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """m_N and the eigenvalues of A along the rows of Vh, from ``_svd(phi, t)``."""
    c, s, Vh = svd
    d = alpha + beta * s * s  # eigenvalues of A = alpha I + beta Phi^T Phi in span(Vh)
    mean = Vh.T @ (beta * s * c / d)
    return mean, d


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
    phi : array_like, shape (N, M)
        Design matrix.
    t : array_like, shape (N,)
        Targets.
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
    phi, t = _check_xy(phi, t)
    alpha = _scalar(alpha, "alpha", phi)
    beta = _scalar(beta, "beta", phi)
    svd = _svd(phi, t)
    mean, d = _posterior_svd(phi, t, alpha, beta, svd)
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
    _check_overflow((mean, cov), alpha, beta)
    return Posterior(mean, cov)


def _check_overflow(values: tuple, alpha: torch.Tensor, beta: torch.Tensor) -> None:
    """Precisions that the dtype holds can still overflow in beta s^2 or alpha m^T m."""
    if not all(bool(torch.isfinite(v).all()) for v in values):
        raise ValueError(
            f"alpha = {float(alpha):g} and beta = {float(beta):g} overflow "
            f"{alpha.dtype} with these data (in beta * s^2 or the posterior): rescale phi and "
            "t, or choose less extreme precisions"
        )


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
        Batch shape ``(K,)``.

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
    beta = _scalar(beta, "beta", phi_new)
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


def _log_evidence(
    phi: torch.Tensor,
    t: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    n, m = phi.shape
    mean, d = _posterior_svd(phi, t, alpha, beta, svd)
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
    phi : array_like, shape (N, M)
        Design matrix.
    t : array_like, shape (N,)
        Targets.
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
    phi, t = _check_xy(phi, t)
    alpha = _scalar(alpha, "alpha", phi)
    beta = _scalar(beta, "beta", phi)
    value = _log_evidence(phi, t, alpha, beta, _svd(phi, t))
    _check_overflow((value,), alpha, beta)
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
    phi : array_like, shape (N, M)
        Design matrix.
    t : array_like, shape (N,)
        Targets.
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
    >>> x = torch.linspace(0, 1, 20, dtype=torch.float64)
    >>> t = torch.sin(2 * torch.pi * x) + 0.1 * torch.cos(17 * x)
    >>> r = maximize_evidence(polynomial_features(x, 3), t)
    >>> r.converged, 0 < float(r.gamma) <= 4
    (True, True)
    """
    phi, t = _check_xy(phi, t)
    n = phi.shape[0]
    a = _scalar(alpha, "alpha", phi)
    if beta is None:
        var = t.var(correction=0)
        if not var > 0:
            raise ValueError("t is constant; pass an initial beta")
        b = 1.0 / var
    else:
        b = _scalar(beta, "beta", phi)
    tol = check_positive(tol, "tol", allow_tensor=False)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    svd = _svd(phi, t)
    s2 = svd[1] ** 2
    converged = False
    gamma = torch.zeros((), dtype=phi.dtype, device=phi.device)
    it = 0
    for it in range(1, max_iter + 1):
        mean, _ = _posterior_svd(phi, t, a, b, svd)
        lam = b * s2
        gamma = (lam / (a + lam)).sum()
        if gamma <= _GAMMA_FLOOR:
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
    _check_overflow((value, gamma), a, b)
    return EvidenceResult(a, b, gamma, value, it, converged)


# ---------------------------------------------------------------------------
# The Pyro model
# ---------------------------------------------------------------------------


class LinearRegression(PyroModule):
    r"""Linear regression :math:`t_n \sim \mathcal{N}(w^\top\phi(x_n), \beta^{-1})` as a
    Pyro model.

    Without priors, ``w`` and ``beta`` are ``PyroParam`` attributes and SVI with the empty
    guide is maximum likelihood (use ``optimizer="lbfgs"``). With ``alpha``, ``w`` becomes
    a ``PyroSample`` with prior :math:`\mathcal{N}(0, \alpha^{-1} I)`: the posterior is
    reached with an autoguide (e.g. ``AutoMultivariateNormal``) or with
    :func:`~ppl_models.inference.run_nuts`. The noise precision is then a parameter, a
    known constant (``beta``), or a ``PyroSample`` with a Gamma prior (``beta_prior``).

    Parameters
    ----------
    num_features : int
        :math:`M`, the number of columns of :math:`\Phi`.
    alpha : float, optional
        Prior precision of ``w``; ``None`` (default) makes ``w`` a point parameter.
    beta : float, optional
        A known noise precision (a buffer, not fitted).
    beta_prior : tuple of float, optional
        ``(a, b)``: ``beta ~ Gamma(a, b)`` (shape, rate); exclusive with ``beta``.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> x = torch.linspace(0, 1, 30, dtype=torch.float64)
    >>> t = 1.0 + 2.0 * x + 0.1 * torch.cos(40 * x)
    >>> phi = polynomial_features(x, 1)
    >>> reg = LinearRegression(2)
    >>> _ = fit_svi(reg, phi, t, optimizer="lbfgs", num_steps=50, progress=False)
    >>> bool(torch.allclose(reg.params().w, mle(phi, t).w, rtol=1e-6))
    True
    """

    def __init__(
        self,
        num_features: int,
        alpha: float | None = None,
        beta: float | None = None,
        beta_prior: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.num_features = check_int(num_features, "num_features", minimum=1)
        if beta is not None and beta_prior is not None:
            raise ValueError("give beta (a known noise precision) or beta_prior, not both")
        # The priors are built from this buffer, cast to the dtype and device of the model's
        # computation (stashed in _like by model; the buffer's own outside a model call).
        self.register_buffer("_zeros", torch.zeros(self.num_features))
        self._like: torch.Tensor | None = None
        if alpha is None:
            self.alpha = None
            self.w = PyroParam(torch.zeros(self.num_features))
        else:
            self.alpha = check_positive(alpha, "alpha", allow_tensor=False)
            scale = self.alpha**-0.5
            self.w = PyroSample(lambda self: dist.Normal(self._prior_zeros(), scale).to_event(1))
        if beta_prior is not None:
            if not isinstance(beta_prior, (tuple, list)) or len(beta_prior) != 2:
                raise ValueError(f"beta_prior must be a pair (shape, rate); got {beta_prior!r}")
            a0 = check_positive(beta_prior[0], "beta_prior[0] (shape)", allow_tensor=False)
            b0 = check_positive(beta_prior[1], "beta_prior[1] (rate)", allow_tensor=False)
            self.beta_prior = (a0, b0)
            self.beta = PyroSample(
                lambda self: dist.Gamma(self._prior_zeros()[0] + a0, self._prior_zeros()[0] + b0)
            )
        elif beta is not None:
            self.beta_prior = None
            self.register_buffer(
                "beta", torch.tensor(check_positive(beta, "beta", allow_tensor=False))
            )
        else:
            self.beta_prior = None
            self.beta = PyroParam(torch.tensor(1.0), constraint=constraints.positive)

    def _prior_zeros(self) -> torch.Tensor:
        return self._zeros if self._like is None else self._zeros.to(self._like)

    def validate_data(self, phi: object, t: object = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Check ``phi`` (2-D, ``num_features`` columns) and ``t`` (1-D, same length);
        called by :func:`~ppl_models.inference.fit_svi` and ``run_nuts``."""
        if t is None:
            raise ValueError("t (the targets) is required to fit the model")
        return as_design(phi, t, num_features=self.num_features)

    # pyro_method activates the module's context, so that reading a PyroSample attribute
    # records a sample site (outside it, it would draw silently from the prior).
    @pyro_method
    def model(self, phi: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        r"""Observe ``t`` at ``"obs"`` under :math:`\mathcal{N}(\Phi w, \beta^{-1})` in plate
        ``"data"``; with ``t=None``, draw targets (prior or posterior predictive)."""
        like = self._like = promoted_like(self, phi, t)
        w = self.w.to(like)
        beta = torch.as_tensor(self.beta).to(like)
        phi = phi.to(like)
        # Drawn outside the data plate, w has shape (..., 1, M) under enclosing plates
        # (vectorised particles, Predictive): its size-1 data slot must broadcast against
        # the N rows of phi, which a product-and-sum does and a matmul (which appends N
        # after that slot) does not. beta's batch shape (..., 1) broadcasts as it is.
        # A plain weight vector (every fit) takes the matmul: no N x M temporary.
        loc = phi @ w if w.dim() == 1 else (w * phi).sum(-1)
        scale = beta.rsqrt()
        with data_plate(phi.shape[0]):
            return pyro.sample(
                "obs", dist.Normal(loc, scale), obs=None if t is None else t.to(like)
            )

    def guide(self, phi: torch.Tensor, t: torch.Tensor | None = None) -> None:
        """The empty guide: with no priors, SVI is maximum likelihood."""

    def nuts_potential(self, phi: torch.Tensor, t: torch.Tensor) -> ClosedFormPotential | None:
        r"""The potential energy for NUTS with its gradient in closed form, from the
        sufficient statistics :math:`\Phi^	op\Phi`, :math:`\Phi^	op t`, :math:`t^	op t`
        (``None`` without a prior). In Pyro's unconstrained coordinates (:math:`w`, and
        :math:`u = \lneta` for a Gamma prior on :math:`eta`), with
        :math:`r^2 = t^	op t - 2 w^	op \Phi^	op t + w^	op \Phi^	op\Phi w`,

        .. math::

            U = -\Big[	frac N2 \ln	frac{eta}{2\pi} - 	fraceta2 r^2
                + 	frac M2 \ln	frac{lpha}{2\pi} - 	fraclpha2 w^	op w
                + a_0 \ln b_0 - \ln\Gamma(a_0) + a_0 u - b_0 eta\Big],

        (the prior terms where :math:`w`, :math:`eta` carry priors; :math:`a_0 u` is the
        Gamma density's :math:`(a_0 - 1)\lneta` plus the log-Jacobian :math:`u`), so
        :math:`\partial U/\partial w = eta(\Phi^	op\Phi w - \Phi^	op t) + lpha w` and
        :math:`\partial U / \partial u = eta(r^2/2 + b_0) - N/2 - a_0`.
        :func:`~ppl_models.inference.run_nuts` uses it only where it equals Pyro's
        potential and gradient (a prior replaced by another fails that check).
        """
        if self.alpha is None and self.beta_prior is None:
            return None
        like = promoted_like(self, phi, t)
        phi, t = phi.to(like), t.to(like)
        n, m = phi.shape
        gram, phit, tt = phi.T @ phi, phi.T @ t, t @ t
        alpha, beta_prior = self.alpha, self.beta_prior
        w_fixed = None if alpha is not None else self.w.detach().to(like)
        beta_fixed = None if beta_prior is not None else torch.as_tensor(self.beta).detach()
        half_log_2pi = 0.5 * math.log(2 * math.pi)
        const = -n * half_log_2pi
        if alpha is not None:
            const += m * (0.5 * math.log(alpha) - half_log_2pi)
        if beta_prior is not None:
            a0, b0 = beta_prior
            const += a0 * math.log(b0) - math.lgamma(a0)

        def value_and_grad(z: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
            w = z["w"] if alpha is not None else w_fixed
            if beta_prior is not None:
                u = z["beta"]
                beta = u.exp()
            else:
                beta = beta_fixed.to(like)
                u = beta.log()
            gw = gram @ w
            r2 = tt - 2 * (w @ phit) + w @ gw
            lp = const + 0.5 * n * u - 0.5 * beta * r2
            grads = {}
            if alpha is not None:
                lp = lp - 0.5 * alpha * (w @ w)
                grads["w"] = beta * (gw - phit) + alpha * w
            if beta_prior is not None:
                lp = lp + a0 * u - b0 * beta
                grads["beta"] = beta * (0.5 * r2 + b0) - 0.5 * n - a0
            return -lp, grads

        return ClosedFormPotential(value_and_grad)

    def params(self) -> RegressionParams:
        """The current point parameters as :class:`RegressionParams` (detached).

        Raises ``ValueError`` for a parameter that carries a prior: its posterior lives in
        a guide or in MCMC samples, not in the module.
        """
        if self.alpha is not None:
            raise ValueError(
                "w carries a prior (alpha was given): read its posterior from the guide or "
                "the MCMC samples, not from params()"
            )
        if self.beta_prior is not None:
            raise ValueError("beta carries a prior (beta_prior was given); see the guide")
        with torch.no_grad():
            return RegressionParams(self.w.detach().clone(), self.beta.detach().clone())


class IterateAveraging:
    r"""An optimizer factory for :func:`~ppl_models.inference.fit_svi`: Adam that also keeps
    the running mean of its iterates (Polyak-Ruppert averaging).

    With a Monte-Carlo ELBO, Adam at a constant learning rate does not converge: being
    scale-free, it keeps taking steps of about ``lr`` driven by gradient noise, however
    many particles are drawn, so the last iterate jitters around the optimum. The average
    of the iterates after ``start`` steps converges to it (exactly for the mean of a
    Gaussian guide, whose ELBO is quadratic in it when the model is linear-Gaussian).

    Parameters
    ----------
    lr : float
        Adam's learning rate.
    start : int
        Steps before the averaging begins (burn-in).

    Examples
    --------
    With :func:`~ppl_models.inference.fit_svi` (as in ``tests/test_regression.py``)::

        avg = IterateAveraging(lr=0.01, start=300)
        fit_svi(reg, phi, t, guide=guide, optimizer=avg, num_steps=1000, tol=0)
        avg.apply()  # the parameters now hold the averages

    On a noisy quadratic whose minimum is at 1, the last iterate jitters and the average
    does not:

    >>> p = torch.nn.Parameter(torch.zeros(()))
    >>> avg = IterateAveraging(lr=0.1, start=100)
    >>> opt = avg([p])
    >>> g = torch.Generator().manual_seed(0)
    >>> for _ in range(400):
    ...     opt.zero_grad()
    ...     (0.5 * (p - 1.0 - 0.5 * torch.randn((), generator=g)) ** 2).backward()
    ...     _ = opt.step()
    >>> avg.num_averaged
    300
    >>> avg.apply()
    >>> abs(float(p.detach()) - 1.0) < 0.1  # about 5 standard errors of the average
    True
    """

    def __init__(self, lr: float = 1e-2, start: int = 0):
        self.lr = check_positive(lr, "lr", allow_tensor=False)
        self.start = check_int(start, "start", minimum=0)
        self.optimizer: torch.optim.Adam | None = None
        self._means: list[torch.Tensor] = []
        self._count = 0

    def __call__(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """Create the optimizer over ``params`` (called by ``fit_svi``)."""
        self._params = list(params)
        self._means = [p.detach().clone() for p in self._params]
        self._count = 0
        averaging = self

        class _AveragedAdam(torch.optim.Adam):
            def step(self, closure=None):  # type: ignore[override]
                loss = super().step(closure)
                averaging._update()
                return loss

        self.optimizer = _AveragedAdam(self._params, lr=self.lr)
        return self.optimizer

    def _update(self) -> None:
        self._count += 1
        k = self._count - self.start
        if k <= 0:
            return
        with torch.no_grad():
            for mean, p in zip(self._means, self._params, strict=True):
                mean.add_(p - mean, alpha=1.0 / k)

    @property
    def num_averaged(self) -> int:
        """The number of iterates in the average so far."""
        return max(0, self._count - self.start)

    def apply(self) -> None:
        """Copy the averaged iterates into the parameters (the last iterate if none were
        averaged yet)."""
        if self.optimizer is None:
            raise RuntimeError("IterateAveraging.apply() needs a fit: pass it to fit_svi first")
        if self.num_averaged == 0:
            return
        with torch.no_grad():
            for mean, p in zip(self._means, self._params, strict=True):
                p.copy_(mean)
