r"""Logistic regression: maximum likelihood by IRLS, the Laplace approximation, Pyro's model.

The model
---------
A binary target :math:`t_n \in \{0, 1\}` depends on a feature vector
:math:`\phi_n = \phi(x_n) \in \mathbb{R}^D` (a column of ones gives the bias) through

.. math::

    p(t_n = 1 \mid \phi_n, w) = y_n = \sigma(a_n), \qquad a_n = w^\top \phi_n, \qquad
    \sigma(a) = \frac{1}{1 + e^{-a}},

so the log-likelihood is minus the **binary cross-entropy** (PRML 4.90):

.. math::

    \ln p(t \mid w) = \sum_{n=1}^N t_n \ln y_n + (1 - t_n) \ln (1 - y_n)
                    = \sum_{n=1}^N t_n a_n + \ln \sigma(-a_n).

Its gradient and Hessian are :math:`\nabla = \Phi^\top (t - y)` and
:math:`-\Phi^\top R \Phi` with :math:`R = \mathrm{diag}(y_n (1 - y_n))` (PRML 4.96-4.97):
the log-likelihood is concave, and Newton-Raphson, which here is *iteratively reweighted
least squares* (IRLS, PRML 4.3.3), converges quadratically to the maximum

.. math::

    w \leftarrow w + (\Phi^\top R \Phi + \alpha I)^{-1}
        \left[\Phi^\top (t - y) - \alpha w\right],

where a Gaussian prior :math:`w \sim \mathcal{N}(0, \alpha^{-1} I)` adds the
:math:`\alpha` terms (maximum a posteriori; :math:`\alpha = 0` is maximum likelihood).

**Separable data.** If a hyperplane separates the two classes, scaling up its normal
raises the likelihood towards 1 for ever: :math:`\|w\| \to \infty` and no maximum-likelihood
estimate exists (PRML 4.3.2). :func:`irls` and :class:`LogisticRegression` detect it
(a weight vector that classifies every training point correctly is a proof of it) and
warn with :class:`SeparableDataWarning`; a prior (``prior_precision``) fixes it.

**Bayesian logistic regression** (PRML 4.5). The posterior is not Gaussian; the
Laplace approximation (:func:`laplace`) is :math:`\mathcal{N}(w_{MAP}, S_N)` with
:math:`S_N^{-1} = \alpha I + \Phi^\top R \Phi` at :math:`w_{MAP}` (PRML 4.143), and the
predictive probability is approximated by the probit trick (:func:`predictive_probit`,
PRML 4.153-4.155)

.. math::

    p(t = 1 \mid \phi, t) \approx \sigma\!\left(\kappa(\sigma_a^2)\, \mu_a\right), \qquad
    \mu_a = w_{MAP}^\top \phi, \quad \sigma_a^2 = \phi^\top S_N \phi, \quad
    \kappa(\sigma^2) = (1 + \pi \sigma^2 / 8)^{-1/2}.

NUTS on :class:`LogisticRegression` with a prior samples the exact posterior.

========================  ======================  ====================================
symbol                    argument / field        shape
========================  ======================  ====================================
:math:`\Phi`              ``phi``                 ``(N, D)``
:math:`t`                 ``t``                   ``(N,)``, entries 0 or 1
:math:`w`                 ``w``, site ``"w"``     ``(D,)``
:math:`\alpha`            ``prior_precision``     scalar
:math:`w_{MAP}, S_N`      ``mean, covariance``    ``(D,)``, ``(D, D)``
========================  ======================  ====================================

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
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), sections 4.3.2-4.3.4,
4.4, 4.5.
A. Albert and J. A. Anderson, "On the existence of maximum likelihood estimates in
logistic regression models", *Biometrika* 71 (1984) 1-10.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule, PyroParam, PyroSample

from ._checks import as_data, as_design, check_int, check_positive, promoted_like
from .inference import data_plate, pyro_method
from .inference.potentials import ClosedFormPotential

__all__ = [
    "LaplaceApproximation",
    "LogisticParams",
    "LogisticRegression",
    "SeparableDataWarning",
    "add_bias",
    "irls",
    "is_separable",
    "laplace",
    "log_likelihood",
    "predictive_probit",
]


class SeparableDataWarning(UserWarning):
    """The training data are linearly separable: the maximum-likelihood weights do not
    exist (their norm diverges). Add a prior (``prior_precision``) for a finite answer."""


class LogisticParams(NamedTuple):
    """Weights ``w`` of shape ``(D,)`` (the bias is the weight of a column of ones)."""

    w: torch.Tensor


class LaplaceApproximation(NamedTuple):
    """Gaussian approximation :math:`\\mathcal{N}(\\text{mean}, \\text{covariance})` of the
    posterior over ``w``: ``mean`` is :math:`w_{MAP}` ``(D,)``, ``covariance`` is
    :math:`S_N` ``(D, D)``."""

    mean: torch.Tensor
    covariance: torch.Tensor


_SEPARABLE_MESSAGE = (
    "the training data are linearly separable: every point is classified correctly by "
    "a hyperplane, so the likelihood keeps rising as ||w|| grows and the maximum-likelihood "
    "estimate does not exist. Use a prior (prior_precision=alpha, a MAP or Bayesian fit) "
    "for finite weights."
)


def _check_xy(phi: object, t: object, min_rows: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    return as_design(phi, t, binary=True, min_rows=min_rows)


def add_bias(x: object) -> torch.Tensor:
    """The design matrix :math:`\\Phi = [1, x]`: a column of ones, then ``x``.

    Parameters
    ----------
    x : array_like, shape (N,) or (N, K)
        Inputs; floating inputs keep their dtype.

    Returns
    -------
    torch.Tensor, shape (N, K + 1)

    Examples
    --------
    >>> add_bias(torch.tensor([[2.0], [3.0]]))
    tensor([[1., 2.],
            [1., 3.]])
    """
    x = as_data(x, "x", ndim=(1, 2), min_rows=1)
    if x.ndim == 1:
        x = x[:, None]
    return torch.cat([torch.ones_like(x[:, :1]), x], dim=1)


def _loglik(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    # t a + log sigma(-a) is exact for every a (no log(1 - y) cancellation near y = 1).
    return t @ a + F.logsigmoid(-a).sum()


def _warn_if_still_rising(
    t: torch.Tensor, a: torch.Tensor, objective: torch.Tensor, slack: float
) -> None:
    """Quasi-complete separation (PRML 4.3.2; Albert & Anderson 1984): some points lie on
    the separating hyperplane, so no iterate classifies all points correctly, but the
    likelihood still rises along the ray c w for ever and the gradient fades like
    exp(-|a|), which a gradient test mistakes for convergence. At a true maximum the
    concave log-likelihood cannot rise from w to 2 w (a = Phi w, so 2 a = Phi (2 w))."""
    if float(_loglik(t, 2.0 * a)) > float(objective) + slack:
        warnings.warn(
            "irls: the log-likelihood still rises when w is doubled: the data are "
            f"quasi-separable. {_SEPARABLE_MESSAGE}",
            SeparableDataWarning,
            stacklevel=3,
        )


def log_likelihood(phi: object, t: object, w: object) -> torch.Tensor:
    r"""The Bernoulli log-likelihood :math:`\sum_n t_n \ln y_n + (1-t_n)\ln(1-y_n)`, i.e.
    :math:`-N` times the mean binary cross-entropy, computed stably with
    :math:`\ln\sigma`.

    Parameters
    ----------
    phi : array_like, shape (N, D)
    t : array_like, shape (N,)
        Binary targets.
    w : array_like, shape (D,)

    Returns
    -------
    torch.Tensor, shape ()

    Examples
    --------
    >>> float(log_likelihood(torch.ones(2, 1), torch.tensor([0.0, 1.0]), torch.zeros(1)))
    -1.3862943649291992
    """
    phi, t = _check_xy(phi, t, min_rows=1)
    w = as_data(w, "w", ndim=1, min_rows=1, dtype=phi.dtype, device=phi.device)
    if w.shape[0] != phi.shape[1]:
        raise ValueError(
            f"w must have {phi.shape[1]} entries (the columns of phi); got {w.shape[0]}"
        )
    return _loglik(t, phi @ w)


def is_separable(phi: object, t: object) -> bool:
    r"""Whether a hyperplane through the origin of feature space separates the classes
    strictly: is there a :math:`w` with :math:`(2 t_n - 1)\, w^\top \phi_n > 0` for all
    :math:`n`? Then no maximum-likelihood estimate exists.

    Solved as the linear feasibility problem :math:`(2t_n - 1) w^\top \phi_n \ge 1` with
    scipy's HiGHS (exact up to its 1e-7 feasibility tolerance). It costs about 2 ms for
    N = 200 but seconds for N = 10^5, which is why :func:`irls` and
    :class:`LogisticRegression` rely on the free certificate instead (a fitted ``w`` that
    separates the data). Quasi-complete separation (some points on the hyperplane) is not
    reported.

    Examples
    --------
    >>> phi = add_bias(torch.tensor([-2.0, -1.0, 1.0, 2.0], dtype=torch.float64))
    >>> is_separable(phi, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    True
    >>> is_separable(phi, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    False
    """
    from scipy.optimize import linprog

    phi, t = _check_xy(phi, t, min_rows=1)
    s = (2.0 * t - 1.0).cpu().double().numpy()
    a_ub = -(s[:, None] * phi.cpu().double().numpy())
    d = phi.shape[1]
    res = linprog(
        np.zeros(d),
        A_ub=a_ub,
        b_ub=-np.ones(len(s)),
        bounds=[(None, None)] * d,
        method="highs",
    )
    return res.status == 0


def _newton_system(
    phi_t: torch.Tensor, y: torch.Tensor, alpha: float, rescue: bool = True
) -> torch.Tensor:
    """The Cholesky factor of the negative Hessian Phi^T R Phi + alpha I, from
    ``phi_t`` = Phi^T of shape (D, N).

    A (numerically) singular matrix is an error when ``rescue`` is False (at w = 0, where
    R = I/4, it means that phi has linearly dependent columns); otherwise it gets just
    enough jitter (R underflows where |a| is large, near separation)."""
    r = y * (1.0 - y)
    d, n = phi_t.shape
    # Phi^T R Phi in column blocks of about 1 MiB: the scaled block stays in cache for
    # its product. On (N, D) = (1e5, 20) this is 1.4x faster than one product over a
    # scaled copy, which is itself 3x faster than Phi.T @ (r * Phi) on the (N, D) layout.
    h = torch.zeros(d, d, dtype=phi_t.dtype, device=phi_t.device)
    size = max(1024, 163840 // d)
    for start in range(0, n, size):
        block = phi_t[:, start : start + size]
        h.addmm_(block * r[start : start + size], block.T)
    if alpha:
        h.diagonal().add_(alpha)
    eps = torch.finfo(h.dtype).eps
    top = float(h.diagonal().abs().max())
    chol, info = torch.linalg.cholesky_ex(h)
    # Cholesky of an exactly singular matrix often "succeeds" with a rounding-size pivot.
    ok = int(info) == 0 and float(chol.diagonal().min()) ** 2 > 10 * eps * h.shape[0] * top
    if ok:
        return chol
    if not rescue:
        raise ValueError(
            "phi has linearly dependent columns (Phi^T Phi is singular): the weights are "
            "not identifiable; drop redundant columns or use prior_precision"
        )
    jitter = 100 * eps * h.shape[0] * max(top, 1e-300)
    eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
    for _ in range(20):
        chol, info = torch.linalg.cholesky_ex(h + jitter * eye)
        if int(info) == 0:
            return chol
        jitter *= 10
    raise ValueError("irls: the Hessian is singular even with jitter")


def irls(
    phi: object,
    t: object,
    *,
    prior_precision: float | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> LogisticParams:
    r"""Maximum likelihood (or MAP) weights by Newton-Raphson, i.e. IRLS (PRML 4.3.3).

    Starting from :math:`w = 0`, each step solves
    :math:`(\Phi^\top R \Phi + \alpha I)\,\Delta = \nabla` by Cholesky and halves the
    step until the (penalised) log-likelihood does not fall. The iteration stops when

    .. math::

        \|\nabla \ln p(t \mid w) - \alpha w\|_2 \le \mathrm{tol}\; \|\Phi^\top(t - \tfrac12)\|_2,

    the gradient's norm relative to its norm at the starting point :math:`w = 0`
    (so ``tol`` does not depend on the scale of :math:`\Phi` or on :math:`N`).

    Without a prior, if some iterate classifies every training point correctly the data
    are linearly separable and no maximum-likelihood estimate exists: a
    :class:`SeparableDataWarning` is issued and that (separating) ``w`` is returned. The
    same warning follows a fit whose log-likelihood still rises when ``w`` is doubled
    (quasi-complete separation: some points lie on the separating hyperplane).

    Parameters
    ----------
    phi : array_like, shape (N, D)
        Design matrix, full column rank; include a column of ones for a bias
        (:func:`add_bias`). Floating inputs keep their dtype.
    t : array_like, shape (N,)
        Binary targets (0 or 1).
    prior_precision : float, optional
        :math:`\alpha > 0` of the prior :math:`\mathcal{N}(0, \alpha^{-1} I)`: the MAP
        (L2-penalised) fit. Maximum likelihood when omitted.
    tol : float
        Relative gradient norm at which to stop (see above).
    max_iter : int
        The most Newton steps; a ``RuntimeWarning`` says when they did not suffice.

    Returns
    -------
    LogisticParams
        ``w`` of shape ``(D,)``, in the dtype of ``phi``.

    Raises
    ------
    ValueError
        On non-binary or non-finite targets, mismatched lengths, fewer than 2 rows,
        linearly dependent columns of ``phi``, or (without a prior) targets of one class.

    References
    ----------
    PRML 4.3.3 (IRLS), 4.3.2 (separable data), 4.5.1 (MAP with a Gaussian prior).

    Examples
    --------
    >>> phi = add_bias(torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64))
    >>> t = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    >>> w = irls(phi, t).w
    >>> grad = phi.T @ (t - torch.sigmoid(phi @ w))
    >>> bool(grad.abs().max() < 1e-10)
    True
    """
    phi, t = _check_xy(phi, t)
    alpha = 0.0
    if prior_precision is not None:
        alpha = float(check_positive(prior_precision, "prior_precision", allow_tensor=False))
    elif bool((t == t[0]).all()):
        raise ValueError(
            f"t has a single class (every target is {int(t[0])}): the likelihood rises without "
            "bound as the bias grows, so no maximum-likelihood estimate exists; give targets "
            "of both classes, or a prior (prior_precision) for the MAP"
        )
    tol = float(check_positive(tol, "tol", allow_tensor=False))
    max_iter = check_int(max_iter, "max_iter", minimum=1)

    d = phi.shape[1]
    # Every product below reads Phi along N: a contiguous (D, N) copy makes the matrix-
    # vector products 5x and the Hessian 3x faster than on (N, D) (no copy if phi is
    # already a transposed view).
    phi_t = phi.T.contiguous()
    w = torch.zeros(d, dtype=phi.dtype, device=phi.device)
    a = torch.zeros_like(t)
    s = 2.0 * t - 1.0
    objective = _loglik(t, a)
    grad = phi_t @ (t - 0.5)
    threshold = tol * float(torch.linalg.vector_norm(grad))
    if threshold == 0.0:
        return LogisticParams(w)
    # Objective differences below this are rounding noise: near the optimum the line
    # search must not reject an exact Newton step for a 1e-14 "decrease".
    slack = 64 * torch.finfo(phi.dtype).eps * max(abs(float(objective)), 1.0)
    at_floor = 0
    for it in range(max_iter):
        y = torch.sigmoid(a)
        grad = phi_t @ (t - y)
        if alpha:
            grad = grad - alpha * w
        grad_norm = float(torch.linalg.vector_norm(grad))
        if grad_norm <= threshold:
            if not alpha:
                _warn_if_still_rising(t, a, objective, slack)
            return LogisticParams(w)
        chol = _newton_system(phi_t, y, alpha, rescue=bool(alpha) or it > 0)
        step = torch.cholesky_solve(grad[:, None], chol)[:, 0]
        # Newton decrement: twice the predicted rise of the objective. Below the rounding
        # level of the objective, further steps only stir rounding errors.
        if float(grad @ step) <= slack:
            at_floor += 1
            if at_floor >= 3:
                warnings.warn(
                    f"irls stopped at the {phi.dtype} precision floor: relative gradient norm "
                    f"{grad_norm / threshold * tol:.3g} > tol={tol:g}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return LogisticParams(w)
        scale = 1.0
        for _ in range(40):
            w_new = w + scale * step
            a_new = w_new @ phi_t
            obj_new = _loglik(t, a_new)
            if alpha:
                obj_new = obj_new - 0.5 * alpha * (w_new @ w_new)
            if obj_new >= objective - slack:
                break
            scale *= 0.5
        else:
            warnings.warn(
                "irls: the step-halving line search found no increase of the objective; "
                f"relative gradient norm {grad_norm / threshold * tol:.3g}",
                RuntimeWarning,
                stacklevel=2,
            )
            return LogisticParams(w)
        w, a, objective = w_new, a_new, obj_new
        if not alpha and bool((s * a > 0).all()):
            warnings.warn(f"irls: {_SEPARABLE_MESSAGE}", SeparableDataWarning, stacklevel=2)
            return LogisticParams(w)
    y = torch.sigmoid(a)
    grad = phi_t @ (t - y) - alpha * w
    if float(torch.linalg.vector_norm(grad)) > threshold:
        warnings.warn(
            f"irls did not reach tol={tol:g} in max_iter={max_iter} steps (relative gradient "
            f"norm {float(torch.linalg.vector_norm(grad)) / threshold * tol:.3g}).",
            RuntimeWarning,
            stacklevel=2,
        )
    if not alpha:
        _warn_if_still_rising(t, a, objective, slack)
    return LogisticParams(w)


def laplace(phi: object, t: object, prior_precision: float) -> LaplaceApproximation:
    r"""The Laplace approximation of the posterior of Bayesian logistic regression
    (PRML 4.5.1): :math:`\mathcal{N}(w_{MAP}, S_N)`,
    :math:`S_N^{-1} = \alpha I + \Phi^\top R \Phi` evaluated at :math:`w_{MAP}`.

    Parameters
    ----------
    phi : array_like, shape (N, D)
    t : array_like, shape (N,)
        Binary targets.
    prior_precision : float
        :math:`\alpha` of the prior :math:`w \sim \mathcal{N}(0, \alpha^{-1} I)`.

    Returns
    -------
    LaplaceApproximation
        ``mean`` :math:`w_{MAP}` ``(D,)`` (by :func:`irls`) and ``covariance``
        :math:`S_N` ``(D, D)``.

    Examples
    --------
    >>> phi = add_bias(torch.tensor([-2.0, -1.0, 1.0, 2.0], dtype=torch.float64))
    >>> post = laplace(phi, torch.tensor([0.0, 0.0, 1.0, 1.0]), prior_precision=1.0)
    >>> post.covariance.shape
    torch.Size([2, 2])
    """
    phi, t = _check_xy(phi, t)
    alpha = float(check_positive(prior_precision, "prior_precision", allow_tensor=False))
    w = irls(phi, t, prior_precision=alpha).w
    try:
        # No jitter: alpha I makes the matrix positive definite; where rounding says it is
        # not, the jitter, not the prior, would set the covariance.
        chol = _newton_system(phi.T.contiguous(), torch.sigmoid(phi @ w), alpha, rescue=False)
    except ValueError:
        raise ValueError(
            f"prior_precision = {alpha:g} is below the rounding level of the Hessian "
            f"Phi^T R Phi in {phi.dtype}: the posterior covariance cannot be computed; use a "
            "larger prior_precision"
        ) from None
    cov = torch.cholesky_inverse(chol)
    _warn_if_not_gaussian(phi, w, cov, alpha)
    return LaplaceApproximation(w, cov)


def _warn_if_not_gaussian(phi: torch.Tensor, w: torch.Tensor, cov: torch.Tensor, alpha: float):
    """The Laplace approximation holds where the log posterior is close to quadratic over
    the posterior's width. Along the widest direction v (sd s), compare the curvature
    v^T (Phi^T R Phi + alpha I) v at w_MAP with that at w_MAP +- s v: more than a factor
    2 apart (separable data and a vague prior: the likelihood is flat on one side, the
    covariance grows like 1 / alpha) and the Gaussian misrepresents the posterior."""
    evals, evecs = torch.linalg.eigh(cov)
    v, sd = evecs[:, -1], float(evals[-1].clamp_min(0).sqrt())
    proj = phi @ v

    def curvature(point: torch.Tensor) -> float:
        y = torch.sigmoid(phi @ point)
        return float((y * (1 - y) * proj * proj).sum()) + alpha

    at = curvature(w)
    ratios = [curvature(w + sign * sd * v) / at for sign in (1.0, -1.0)]
    if max(max(ratios), 1 / min(ratios)) > 2.0:
        warnings.warn(
            "laplace: the log posterior is far from quadratic along its widest direction "
            f"(posterior sd {sd:.3g}; the curvature changes by a factor "
            f"{max(max(ratios), 1 / min(ratios)):.3g} within one sd): the data barely inform "
            "w there (separable data or a vague prior), and the Gaussian approximation "
            "misrepresents the posterior. Use a larger prior_precision, or NUTS "
            "(LogisticRegression with run_nuts).",
            SeparableDataWarning,
            stacklevel=3,
        )


def predictive_probit(phi_new: object, mean: object, covariance: object) -> torch.Tensor:
    r"""Approximate predictive probability :math:`p(t=1 \mid \phi) \approx
    \sigma(\kappa(\sigma_a^2)\,\mu_a)` under :math:`w \sim \mathcal{N}(\text{mean},
    \text{covariance})` (PRML 4.153-4.155).

    The approximation replaces :math:`\sigma(a)` by the probit :math:`\Phi(\lambda a)`,
    :math:`\lambda^2 = \pi/8`, whose Gaussian average is exact, then goes back to
    :math:`\sigma`. Each replacement errs by at most
    :math:`\max_a|\sigma(a) - \Phi(\lambda a)| \approx 0.018`, so the result is within
    about 0.04 of the exact average :math:`\int \sigma(a)\,\mathcal{N}(a\mid\mu_a,\sigma_a^2)da`
    (far less in practice).

    Parameters
    ----------
    phi_new : array_like, shape (M, D) or (D,)
        Feature vectors to predict at.
    mean : array_like, shape (D,)
    covariance : array_like, shape (D, D)

    Returns
    -------
    torch.Tensor, shape (M,) or ()
        The predictive probabilities of class 1.

    Examples
    --------
    >>> p = predictive_probit(torch.tensor([[1.0, 0.0]]), torch.tensor([0.0, 1.0]), torch.eye(2))
    >>> p
    tensor([0.5000])
    """
    phi_new = as_data(phi_new, "phi_new", ndim=(1, 2), min_rows=1)
    single = phi_new.ndim == 1
    if single:
        phi_new = phi_new[None, :]
    d = phi_new.shape[1]
    kw = {"dtype": phi_new.dtype, "device": phi_new.device}
    mean = as_data(mean, "mean", ndim=1, min_rows=1, **kw)
    covariance = as_data(covariance, "covariance", ndim=2, min_rows=1, **kw)
    if mean.shape != (d,):
        raise ValueError(f"mean must have shape ({d},) to match phi_new; got {tuple(mean.shape)}")
    if covariance.shape != (d, d):
        raise ValueError(
            f"covariance must have shape ({d}, {d}) to match phi_new; got {tuple(covariance.shape)}"
        )
    mu_a = phi_new @ mean
    var_a = ((phi_new @ covariance) * phi_new).sum(-1)
    if not bool(torch.isfinite(mu_a).all() & torch.isfinite(var_a).all()):
        raise ValueError(
            f"phi_new, mean and covariance overflow {phi_new.dtype} in w^T phi or its "
            "variance: rescale the features"
        )
    if bool((var_a < 0).any()):
        raise ValueError(
            "covariance must be positive semi-definite: phi^T S phi < 0 for row "
            f"{int((var_a < 0).nonzero()[0])} of phi_new"
        )
    kappa = torch.rsqrt(1.0 + math.pi * var_a / 8.0)
    p = torch.sigmoid(kappa * mu_a)
    return p[0] if single else p


def _w_prior(self: LogisticRegression) -> dist.Distribution:
    like = self.prior_loc if self._like is None else self._like
    # The scale from the Python float, not the float32 buffer made at construction: the
    # buffer holds alpha^-1/2 rounded to float32 for good, even after .double().
    return dist.Normal(self.prior_loc.to(like), self.prior_precision**-0.5).to_event(1)


class LogisticRegression(PyroModule):
    r"""Logistic regression as a Pyro model: ``t ~ Bernoulli(logits=phi @ w)`` at ``"obs"``.

    Without a prior, ``w`` is a ``PyroParam`` and SVI with the empty guide is maximum
    likelihood (the loss is the binary cross-entropy summed over the data). With
    ``prior_precision`` :math:`\alpha`, ``w`` is a ``PyroSample`` with the prior
    :math:`\mathcal{N}(0, \alpha^{-1} I)`: sample it with
    :func:`~ppl_models.inference.run_nuts`, or fit it by SVI with an autoguide on
    ``model.model`` (``AutoDelta`` gives MAP, ``AutoMultivariateNormal`` variational Bayes).

    Without a prior, the model warns (:class:`SeparableDataWarning`, once per module) as
    soon as the current ``w`` classifies every point of the full data correctly: that is a
    proof that the data are separable and that the fit is running off to
    :math:`\|w\| = \infty`. The check costs one comparison per data point.

    Parameters
    ----------
    num_features : int
        :math:`D`, the columns of ``phi`` (bias column included).
    prior_precision : float, optional
        :math:`\alpha`; the model is Bayesian when given.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> phi = add_bias(torch.linspace(-2, 2, 20, dtype=torch.float64))
    >>> t = (torch.arange(20) % 3 == 0).double()
    >>> model = LogisticRegression(2)
    >>> _ = fit_svi(model, phi, t, optimizer="lbfgs", num_steps=50, progress=False)
    >>> bool(torch.allclose(model.params().w, irls(phi, t).w, atol=1e-6))
    True
    """

    def __init__(self, num_features: int, prior_precision: float | None = None):
        super().__init__()
        self.num_features = check_int(num_features, "num_features", minimum=1)
        self.prior_precision = (
            None
            if prior_precision is None
            else float(check_positive(prior_precision, "prior_precision", allow_tensor=False))
        )
        self._warned_separable = False
        self._like: torch.Tensor | None = None  # the dtype and device of the last model call
        if self.prior_precision is None:
            self.w = PyroParam(torch.zeros(self.num_features))
        else:
            # The prior is built from buffers cast to the dtype and device of the model's
            # computation (the buffers' own outside a model call).
            self.register_buffer("prior_loc", torch.zeros(self.num_features))
            self.register_buffer(
                "prior_scale", torch.full((self.num_features,), self.prior_precision**-0.5)
            )
            self.w = PyroSample(_w_prior)

    def validate_data(self, phi: object, t: object = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Check ``phi`` (N, D) and binary ``t`` (N,) (called by ``fit_svi``/``run_nuts``)."""
        if t is None:
            raise ValueError("t (the binary targets) is required to fit the model")
        return as_design(phi, t, num_features=self.num_features, binary=True)

    @pyro_method
    def model(self, phi: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Observe ``t`` at ``"obs"`` with ``Bernoulli(logits=phi @ w)`` in plate ``"data"``;
        with ``t=None`` draw new targets."""
        like = self._like = promoted_like(self, phi, t)
        phi, w = phi.to(like), self.w.to(like)
        # Under enclosing plates (vectorised particles, Predictive) a w with a prior has
        # shape (..., 1, D): a product-and-sum broadcasts its size-1 data slot against the
        # N rows of phi, a matmul would not. A plain weight vector takes the matmul.
        logits = phi @ w if w.dim() == 1 else (w * phi).sum(-1)
        if t is not None:
            t = t.to(like)
        plate = data_plate(phi.shape[0])
        if t is not None and self.prior_precision is None and not self._warned_separable:
            full = plate.subsample_size == plate.size
            with torch.no_grad():
                if full and bool(((2.0 * t - 1.0) * logits > 0).all()):
                    self._warned_separable = True
                    warnings.warn(
                        f"LogisticRegression: {_SEPARABLE_MESSAGE}",
                        SeparableDataWarning,
                        stacklevel=2,
                    )
        with plate:
            return pyro.sample("obs", dist.Bernoulli(logits=logits), obs=t)

    @pyro_method
    def guide(self, phi: torch.Tensor, t: torch.Tensor | None = None) -> None:
        """The empty guide (maximum likelihood). With a prior, pass an autoguide instead."""
        if self.prior_precision is not None:
            raise ValueError(
                "LogisticRegression with prior_precision has a latent w: pass a guide, e.g. "
                "fit_svi(model, phi, t, guide=AutoDelta(model.model)) for MAP or "
                "AutoMultivariateNormal(model.model) for variational Bayes, or use run_nuts"
            )

    def nuts_potential(self, phi: torch.Tensor, t: torch.Tensor) -> ClosedFormPotential | None:
        r"""The potential energy for NUTS with its gradient in closed form (``None`` without
                a prior): with :math:`l = \Phi w` and the prior precision :math:`lpha`,

                .. math::

                    U(w) = -\sum_n ig[t_n l_n - \ln(1 + e^{l_n})ig]
                        + 	fraclpha2 w^	op w - 	frac D2 \ln	frac{lpha}{2\pi}, \qquad

        abla U = -\Phi^	opig(t - \sigma(l)ig) + lpha w,

                one product with :math:`\Phi` each way and no autograd.
                :func:`~ppl_models.inference.run_nuts` uses it only where it equals Pyro's
                potential and gradient (a prior replaced by another fails that check).
        """
        if self.prior_precision is None:
            return None
        like = promoted_like(self, phi, t)
        phi, t = phi.to(like), t.to(like)
        alpha = self.prior_precision
        const = 0.5 * phi.shape[1] * (math.log(alpha) - math.log(2 * math.pi))

        def value_and_grad(z: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
            w = z["w"]
            logits = phi @ w
            # The Bernoulli log-density as torch computes it (F.softplus switches to the
            # identity above 20, an error of e^-20 relative).
            loglik = -F.binary_cross_entropy_with_logits(logits, t, reduction="sum")
            lp = loglik - 0.5 * alpha * (w @ w) + const
            grad = alpha * w - phi.T @ (t - torch.sigmoid(logits))
            return -lp, {"w": grad}

        return ClosedFormPotential(value_and_grad)

    def params(self) -> LogisticParams:
        """The fitted weights (maximum likelihood only) as :class:`LogisticParams`."""
        if self.prior_precision is not None:
            raise ValueError(
                "params() is for the maximum-likelihood model; with a prior, w is a random "
                "variable: read it from the guide or from the MCMC samples"
            )
        return LogisticParams(self.w.detach().clone())
