r"""Bayesian PCA: probabilistic PCA with priors, and automatic relevance determination.

The model (Bishop 1999; PRML 12.2.3) is PPCA with a prior on every parameter:

.. math::

    \alpha_i &\sim \mathrm{Gam}(a, b), \qquad i = 1, \dots, M, \\
    w_i \mid \alpha_i &\sim \mathcal N(0, \alpha_i^{-1} I_D)
        \qquad (w_i \text{ the } i\text{-th column of } W), \\
    \sigma &\sim \mathrm{HalfCauchy}(s_\sigma), \qquad
    \mu \sim \mathcal N(0, s_\mu^2 I_D), \\
    z_n &\sim \mathcal N(0, I_M), \qquad
    x_n \mid z_n \sim \mathcal N(W z_n + \mu, \sigma^2 I_D),

so that :math:`x_n \sim \mathcal N(\mu, C)`, :math:`C = W W^\top + \sigma^2 I_D`, with
:math:`z_n` integrated out (the *marginal* form, small enough for NUTS), or with
:math:`z_n` kept as a latent variable (the *latent* form, for SVI on large :math:`N` with
minibatches). A large precision :math:`\alpha_i` pulls column :math:`w_i` to zero:
**automatic relevance determination** switches off the columns the data do not need, and
the number left is the effective dimensionality.

**The EM of PRML 12.2.3** (:func:`ard_em`) maximises over :math:`W` the posterior
:math:`\ln p(X \mid W, \mu, \sigma^2) + \ln p(W \mid \alpha)` and sets :math:`\alpha` by
the evidence update. With :math:`M = W^\top W + \sigma^2 I` (here the :math:`M \times M`
matrix; the latent dimension is ``max_latent_dim``),
:math:`\mathbb E[z_n] = M^{-1} W^\top (x_n - \bar x)`,
:math:`\mathbb E[z_n z_n^\top] = \sigma^2 M^{-1} + \mathbb E[z_n]\mathbb E[z_n]^\top`:

.. math::

    W_{new} &= \Big[\sum_n (x_n - \bar x)\,\mathbb E[z_n]^\top\Big]
               \Big[\sum_n \mathbb E[z_n z_n^\top] + \sigma^2 A\Big]^{-1},
               \qquad A = \mathrm{diag}(\alpha), \\
    \sigma^2_{new} &= \frac{1}{ND} \sum_n \Big\{\|x_n - \bar x\|^2
        - 2\,\mathbb E[z_n]^\top W_{new}^\top (x_n - \bar x)
        + \mathrm{Tr}\big(\mathbb E[z_n z_n^\top] W_{new}^\top W_{new}\big)\Big\}, \\
    \alpha_i &= \frac{D}{\|w_i\|^2}.

The point estimate has no floor: a switched-off column shrinks to exactly zero and its
:math:`\alpha_i` to infinity. Under a *posterior* the column does not vanish: given
:math:`\alpha_i` it is drawn from its prior, and a column of :math:`D` entries keeps a norm
of about :math:`\sqrt{D / \alpha_i}`. So the rule that counts the effective dimension
depends on the fit, and each is stated where it is applied (:func:`effective_dim_point`,
:func:`effective_dim_median`, :func:`effective_dim_alpha`).

**Rotation.** The likelihood depends on :math:`W` only through :math:`W W^\top`, and the
ARD prior breaks the rotation symmetry only up to a permutation and signs of the columns:
under a posterior the columns swap labels between draws (and between chains). Compare and
summarise rotation-free quantities: :math:`C`, the column norms sorted, :math:`\alpha`
sorted (:func:`rotation_free`).

=======================  =====================  =========================================
symbol                   argument / site        shape
=======================  =====================  =========================================
:math:`x_n`              ``x[n]``               ``(D,)``
:math:`W`                site ``"W"``           ``(D, M)``, ``M = max_latent_dim``
:math:`\alpha`           site ``"alpha"``       ``(M,)``
:math:`W_{raw}`          site ``"W_raw"``       ``(D, M)`` (``parametrisation="noncentred"``)
:math:`\sigma`           site ``"sigma"``       ``()`` (:math:`\sigma^2` = ``sigma2``)
:math:`\mu`              site ``"mu"``          ``(D,)``
:math:`z_n`              site ``"z"``           ``(M,)`` (latent form only)
:math:`a, b`             ``alpha_prior``        Gamma shape and rate
:math:`s_\sigma, s_\mu`  ``sigma_scale``,       prior scales
                         ``mu_scale``
=======================  =====================  =========================================

A prior on any parameter of any topic
-------------------------------------
Every topic module keeps its point parameters as ``PyroParam`` attributes and reads them
inside ``model``. Assigning a ``PyroSample`` to the attribute *of an instance* replaces the
parameter by a sample site of the same name with that prior, without touching the model
code; then fit it by SVI with a guide over the new site, or by NUTS once every parameter
has a prior::

    from pyro.nn import PyroSample
    from pyro.infer.autoguide import AutoNormal
    from ppl_models.ppca import MarginalPPCA
    from ppl_models.regression import LinearRegression

    m = MarginalPPCA(data_dim=10, latent_dim=3)
    m.W = PyroSample(dist.Laplace(0.0, 1.0).expand([10, 3]).to_event(2))  # sparse loadings
    fit_svi(m, x, guide=AutoNormal(m.model))       # W ~ q(W); mu, sigma stay point estimates

    reg = LinearRegression(num_features=4)
    reg.w = PyroSample(dist.Normal(0.0, 1.0).expand([4]).to_event(1))
    reg.beta = PyroSample(dist.Gamma(1.0, 1.0))
    run_nuts(reg, phi, t)                          # every parameter has a prior

A ``PyroSample`` may also be a function of the module, for priors that depend on other
sites: :class:`BayesianPCA` writes ``W``'s prior as
``PyroSample(lambda self: Normal(0, self.alpha ** -0.5) ...)``. Priors made of plain
floats are built in the default dtype and work on float64 data as they are: the model casts
their draws to the dtype it computes in (give the prior float64 tensors for float64 draws).

Dtypes. The Pyro model computes in ``torch.promote_types(module dtype, data dtype)``, as
torch's own type promotion does: a module built in the default float32 runs on float64
data, with its ARD priors built in that dtype and on the data's device (float64 data give
float64 prior draws and NUTS samples).

Data. Every function that takes data converts them once, at the entry
(:func:`ppl_models._checks.as_data`): torch tensors and numpy arrays, and pandas
DataFrames and Series (a column that does not hold numbers is refused by name); floating
data keep their dtype, float16 is computed in float32, integer and boolean numpy data
become float64 (numpy's and scikit-learn's convention); sparse matrices are refused (pass
``.toarray()``).

References
----------
C. M. Bishop, *Bayesian PCA*, NIPS 11 (1999). C. M. Bishop, *Pattern Recognition and
Machine Learning* (PRML), section 12.2.3 and Fig. 12.14. M. E. Tipping and C. M. Bishop,
*Probabilistic principal component analysis*, JRSS B 61 (1999).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Predictive
from pyro.infer.autoguide import AutoDelta, AutoLowRankMultivariateNormal, AutoNormal
from pyro.infer.autoguide.initialization import init_to_feasible
from pyro.nn import PyroModule, PyroSample

from ._checks import (
    as_array,
    as_data,
    check_choice,
    check_int,
    check_positive,
    promoted_like,
)
from .inference import ClosedFormPotential, data_plate, pyro_method
from .inference.plates import local_params
from .ppca import PPCAParams

_LOG_2PI = math.log(2 * math.pi)

__all__ = [
    "BPCAResult",
    "BayesianPCA",
    "ard_em",
    "effective_dim_alpha",
    "effective_dim_median",
    "effective_dim_point",
    "model_covariance",
    "rotation_free",
]


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


def _check_max_latent_dim(max_latent_dim: object, d: int) -> int:
    if d < 2:
        raise ValueError(f"x must have at least 2 columns for PCA; got {d}")
    return check_int(max_latent_dim, "max_latent_dim", minimum=1, maximum=d - 1)


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


def ard_em(
    x: object,
    max_latent_dim: int,
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
    max_latent_dim : int
        :math:`M`, the number of columns to start from, :math:`1 \le M < D`.
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
    m = _check_max_latent_dim(max_latent_dim, d)
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


# ---------------------------------------------------------------------------
# The Pyro model
# ---------------------------------------------------------------------------


class _MarginalStats(NamedTuple):
    n: int
    d: int
    m: int
    xbar: torch.Tensor
    s: torch.Tensor
    a: float
    b: float
    sigma_scale: float
    mu_scale: float


def _marginal_potential(
    z: dict[str, torch.Tensor], st: _MarginalStats
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r""":math:`U(W, \mu, u_\alpha, u_\sigma)` of :meth:`BayesianPCA.nuts_potential` and its
    gradient in closed form."""
    W, mu, u_alpha, u_sigma = z["W"], z["mu"], z["alpha"], z["sigma"]
    n, d = st.n, st.d
    alpha, s2 = u_alpha.exp(), (2 * u_sigma).exp()
    C = W @ W.T + s2 * torch.eye(d, dtype=W.dtype, device=W.device)
    L, info = torch.linalg.cholesky_ex(C)
    if int(info) != 0:
        # C lost its positive definiteness to rounding (sigma^2 underflowed beside a
        # rank-deficient W W^T, far out on a diverging trajectory): infinite energy, which
        # NUTS treats as a divergence, as it does Pyro's own failure there.
        return W.new_tensor(math.inf), {k: torch.zeros_like(v) for k, v in z.items()}
    c_inv = torch.cholesky_inverse(L)
    r = st.xbar - mu
    A = c_inv @ (st.s + torch.outer(r, r))  # C^-1 S_mu
    loglik = -0.5 * n * (d * _LOG_2PI + 2 * L.diagonal().log().sum() + A.diagonal().sum())
    G = -0.5 * n * (c_inv - A @ c_inv)
    norms2 = (W * W).sum(0)
    a, b, ss2, ms2 = st.a, st.b, st.sigma_scale**2, st.mu_scale**2
    log_prior = (
        ((a + 0.5 * d) * u_alpha - alpha * (b + 0.5 * norms2)).sum()
        + st.m * (a * math.log(b) - math.lgamma(a) - 0.5 * d * _LOG_2PI)
        + u_sigma
        - torch.log1p(s2 / ss2)
        + math.log(2 / (math.pi * st.sigma_scale))
        - 0.5 * (mu * mu).sum() / ms2
        - d * (math.log(st.mu_scale) + 0.5 * _LOG_2PI)
    )
    grads = {
        "W": W * alpha - 2 * G @ W,
        "mu": mu / ms2 - n * (c_inv @ r),
        "alpha": alpha * (b + 0.5 * norms2) - (a + 0.5 * d),
        "sigma": 2 * s2 / (ss2 + s2) - 1 - 2 * s2 * G.diagonal().sum(),
    }
    return -(loglik + log_prior), grads


_GUIDES = ("delta", "normal", "lowrank")


# The priors are built from the buffers, cast to the dtype and device of the model's
# computation (stashed in _like by BayesianPCA.model; the buffers' own outside a call).
def _prior_like(self: BayesianPCA) -> torch.Tensor:
    return self.alpha_a if self._like is None else self._like


def _alpha_prior(self: BayesianPCA) -> dist.Distribution:
    like = _prior_like(self)
    a, b = self.alpha_a.to(like), self.alpha_b.to(like)
    return dist.Gamma(a.expand(self.max_latent_dim), b).to_event(1)


def _w_prior(self: BayesianPCA) -> dist.Distribution:
    # alpha has shape (..., M): broadcast its column precisions over the D rows.
    alpha = self.alpha.to(_prior_like(self))
    scale = (
        alpha.rsqrt().unsqueeze(-2).expand(*alpha.shape[:-1], self.data_dim, self.max_latent_dim)
    )
    return dist.Normal(torch.zeros_like(scale), scale).to_event(2)


def _w_raw_prior(self: BayesianPCA) -> dist.Distribution:
    zeros = (
        self._zeros_d.to(_prior_like(self)).unsqueeze(-1).expand(self.data_dim, self.max_latent_dim)
    )
    return dist.Normal(zeros, 1.0).to_event(2)


def _sigma_prior(self: BayesianPCA) -> dist.Distribution:
    return dist.HalfCauchy(self.sigma_scale.to(_prior_like(self)))


def _mu_prior(self: BayesianPCA) -> dist.Distribution:
    like = _prior_like(self)
    return dist.Normal(self._zeros_d.to(like), self.mu_scale.to(like)).to_event(1)


class BayesianPCA(PyroModule):
    r"""PPCA with ARD priors as a Pyro model (see the module docstring for the equations).

    ``alpha``, ``W``, ``sigma`` and ``mu`` are ``PyroSample`` attributes. In the
    ``"marginal"`` form :math:`z` is integrated out (``obs`` is
    :math:`\mathcal N(\mu, W W^\top + \sigma^2 I)`, a low-rank Gaussian): this form runs
    under :func:`~ppl_models.inference.run_nuts`. In the ``"latent"`` form :math:`z_n` is a
    sample site ``"z"`` in the data plate, for SVI with minibatches on large :math:`N`.

    The module's :meth:`guide` is an autoguide over every latent site, a child module made
    at construction: ``"delta"`` (MAP), ``"normal"`` (mean-field Gaussian) or ``"lowrank"``
    (Gaussian with a low-rank covariance; marginal form only). Its initial point comes from
    the data (set by :meth:`validate_data`, which ``fit_svi`` and ``run_nuts`` call): the
    sample mean, principal directions scaled by the eigenvalues above the noise level, and
    :math:`\alpha_i = D/\|w_i\|^2`. Pyro's default (``init_to_median``) would put
    :math:`\alpha` at the median of a vague Gamma prior, about 0, hence :math:`W` at scale
    :math:`\alpha^{-1/2} \approx \infty`, and the first step fails in the Cholesky
    factorisation of the low-rank covariance.

    Parameters
    ----------
    data_dim : int
        :math:`D`.
    max_latent_dim : int
        :math:`M`, :math:`1 \le M < D`: the columns ARD may switch off.
    alpha_prior : (float, float)
        Shape and rate ``(a, b)`` of the Gamma prior on each :math:`\alpha_i`;
        ``(1e-3, 1e-3)`` (vague) by default.
    sigma_scale : float
        Scale of the half-Cauchy prior on :math:`\sigma`.
    mu_scale : float
        Standard deviation of the (broad) Gaussian prior on :math:`\mu`.
    form : {"marginal", "latent"}
        See above.
    guide : {"delta", "normal", "lowrank"}
        The family of :meth:`guide`.
    parametrisation : {"centred", "noncentred"}
        ``"centred"``: ``"W"`` is a sample site with prior
        :math:`\mathcal N(0, \alpha_i^{-1})` per column. ``"noncentred"``: the sample site
        is ``"W_raw"`` with prior :math:`\mathcal N(0, 1)` and
        :math:`W = W_{raw}\,\mathrm{diag}(\alpha)^{-1/2}` is recorded as the
        deterministic site ``"W"``: the same model, with the funnel between a
        switched-off column and its :math:`\alpha_i` straightened out. It suits columns
        the data barely constrain; a column the data pin down (a switched-on one) becomes
        the funnel instead. On Bishop's experiment (N = 300) NUTS took *longer*
        trajectories with it (measured: 255-1023 leapfrog steps per draw in the first
        warmup iterations, against 127-255 centred), so ``"centred"`` is the default.

    Examples
    --------
    >>> from ppl_models.datasets import make_bishop_bpca_data
    >>> from ppl_models.inference import fit_svi
    >>> x = make_bishop_bpca_data(n=100, seed=0).x
    >>> m = BayesianPCA(10, 9, guide="delta")
    >>> fit = fit_svi(m, x, num_steps=20, progress=False, seed=0)
    >>> sorted(m.median())
    ['W', 'alpha', 'mu', 'sigma']
    """

    def __init__(
        self,
        data_dim: int,
        max_latent_dim: int,
        alpha_prior: tuple[float, float] = (1e-3, 1e-3),
        sigma_scale: float = 1.0,
        mu_scale: float = 100.0,
        form: str = "marginal",
        guide: str = "normal",
        parametrisation: str = "centred",
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.max_latent_dim = check_int(
            max_latent_dim, "max_latent_dim", minimum=1, maximum=self.data_dim - 1
        )
        if not isinstance(alpha_prior, (tuple, list)) or len(alpha_prior) != 2:
            raise ValueError(f"alpha_prior must be a pair (shape, rate); got {alpha_prior!r}")
        a = check_positive(alpha_prior[0], "alpha_prior[0] (shape)", allow_tensor=False)
        b = check_positive(alpha_prior[1], "alpha_prior[1] (rate)", allow_tensor=False)
        self.form = check_choice(form, "form", ["marginal", "latent"])
        self.guide_family = check_choice(guide, "guide", list(_GUIDES))
        self.parametrisation = check_choice(
            parametrisation, "parametrisation", ["centred", "noncentred"]
        )
        if self.guide_family == "lowrank" and self.form == "latent":
            raise ValueError(
                "guide='lowrank' needs form='marginal': a low-rank Gaussian over every z_n "
                "cannot follow minibatches; use guide='normal' with the latent form"
            )
        # Buffers: the priors follow .to() (float64 data gives float64 priors).
        self.register_buffer("alpha_a", torch.tensor(a))
        self.register_buffer("alpha_b", torch.tensor(b))
        self.register_buffer(
            "sigma_scale",
            torch.tensor(check_positive(sigma_scale, "sigma_scale", allow_tensor=False)),
        )
        self.register_buffer(
            "mu_scale", torch.tensor(check_positive(mu_scale, "mu_scale", allow_tensor=False))
        )
        self.register_buffer("_zeros_d", torch.zeros(self.data_dim))
        self._like: torch.Tensor | None = None  # the dtype and device of the last model call
        self.alpha = PyroSample(_alpha_prior)
        if self.parametrisation == "centred":
            self.W = PyroSample(_w_prior)
        else:
            self.W_raw = PyroSample(_w_raw_prior)
        self.sigma = PyroSample(_sigma_prior)
        self.mu = PyroSample(_mu_prior)
        self._init: dict[str, torch.Tensor] = {}
        cls = {"delta": AutoDelta, "normal": AutoNormal, "lowrank": AutoLowRankMultivariateNormal}
        self.autoguide = cls[self.guide_family](self.model, init_loc_fn=self._init_loc)

    # -- initialisation ---------------------------------------------------------------

    def init_values(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        r"""The data-based initial point of the guide.

        :math:`\mu_0 = \bar x`; with the eigenvalues :math:`\lambda_1 \ge \dots` of the
        sample covariance, :math:`\sigma_0^2` is the mean of those beyond ``M`` (floored at
        1% of the mean eigenvalue), column :math:`i` of :math:`W_0` is
        :math:`u_i \sqrt{\max(\lambda_i - \sigma_0^2, 0.01\bar\lambda)}`, and
        :math:`\alpha_{0,i} = D / \|w_i\|^2`. Every value is finite and positive where it
        must be.
        """
        n = x.shape[0]
        mu = x.mean(0)
        xc = x - mu
        lam, u = torch.linalg.eigh(xc.T @ xc / n)
        lam, u = lam.flip(0), u.flip(1)
        floor = 0.01 * float(lam.mean().clamp_min(torch.finfo(x.dtype).tiny))
        m = self.max_latent_dim
        sigma2 = lam[m:].mean().clamp_min(floor)
        W = u[:, :m] * (lam[:m] - sigma2).clamp_min(floor).sqrt()
        alpha = self.data_dim / (W * W).sum(0)
        out = {"mu": mu, "sigma": sigma2.sqrt(), "W": W, "alpha": alpha}
        if self.parametrisation == "noncentred":
            out["W_raw"] = W * alpha.sqrt()
        return out

    def init_strategy(self, site: dict[str, Any]) -> torch.Tensor:
        r"""The data-based initial point (:meth:`init_values`) as a Pyro ``init_strategy``,
        for :func:`~ppl_models.inference.run_nuts` (which calls :meth:`validate_data`, and
        so sets the point, before NUTS initialises).

        NUTS's default, ``init_to_uniform``, starts every column switched on at a random
        scale, far from the posterior. Every chain starts from this same point, so
        R-hat across chains checks the chains' agreement after warmup, not their
        independence from the start.
        """
        return self._init_loc(site)

    def _init_loc(self, site: dict[str, Any]) -> torch.Tensor:
        value = self._init.get(site["name"])
        if value is None:
            return init_to_feasible(site)
        fn = site["fn"]
        like = _prior_like(self)
        return value.to(dtype=like.dtype, device=like.device).expand(fn.shape()).contiguous()

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x`` (2-D, ``data_dim`` columns) and set the guide's initial point from
        it (:meth:`init_values`); called by ``fit_svi`` and ``run_nuts``."""
        x = as_data(x, "x", ndim=2)
        if x.shape[1] != self.data_dim:
            raise ValueError(f"x must have {self.data_dim} columns (data_dim); got {x.shape[1]}")
        self._init = self.init_values(x)
        return (x,)

    # -- the Pyro pair ----------------------------------------------------------------

    @pyro_method
    def model(self, x: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
        r"""Sample ``"alpha"``, ``"W"``, ``"sigma"``, ``"mu"`` (and ``"z"`` in the latent
        form), then observe ``x`` at ``"obs"`` in plate ``"data"``. With ``x=None``, draws
        ``n`` points."""
        if x is None and n is None:
            raise ValueError("model needs the data x or the number of draws n")
        size = x.shape[0] if x is not None else n
        like = self._like = promoted_like(self, x)
        W = self._loadings(like)
        sigma = self.sigma.to(like)
        mu = self.mu.to(like)
        if x is not None:
            x = x.to(like)
        if self.form == "marginal":
            diag = (sigma**2).unsqueeze(-1).expand(*sigma.shape, self.data_dim)
            with data_plate(size):
                return pyro.sample("obs", dist.LowRankMultivariateNormal(mu, W, diag), obs=x)
        with data_plate(size):
            zero = like.new_zeros(self.max_latent_dim)
            z = pyro.sample("z", dist.Normal(zero, 1.0).to_event(1))
            loc = (z.unsqueeze(-2) @ W.transpose(-1, -2)).squeeze(-2) + mu
            return pyro.sample("obs", dist.Normal(loc, sigma.unsqueeze(-1)).to_event(1), obs=x)

    def _loadings(self, like: torch.Tensor) -> torch.Tensor:
        if self.parametrisation == "centred":
            return self.W.to(like)  # reads alpha first: W's prior depends on it
        scale = self.alpha.to(like).rsqrt().unsqueeze(-2)
        return pyro.deterministic("W", self.W_raw.to(like) * scale, event_dim=2)

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, n: int | None = None) -> Any:
        """The autoguide chosen by ``guide=`` at construction (see the class docstring)."""
        return self.autoguide(x, n)

    def nuts_potential(self, x: torch.Tensor) -> ClosedFormPotential | None:
        r"""The potential energy of the marginal form for NUTS, from the sufficient
        statistics, with its gradient in closed form (``None`` for the latent form or the
        non-centred parametrisation).

        NUTS moves in Pyro's unconstrained coordinates :math:`u_\alpha = \ln\alpha`,
        :math:`u_\sigma = \ln\sigma`, :math:`W`, :math:`\mu`, and needs
        :math:`U = -\ln p(X, \alpha, W, \sigma, \mu)` minus the log-Jacobians
        :math:`\sum_i u_{\alpha,i} + u_\sigma`, and :math:`\nabla U`. With
        :math:`\bar x`, :math:`S = \frac1N \sum_n (x_n - \bar x)(x_n - \bar x)^\top`,
        :math:`r = \bar x - \mu`, :math:`C = W W^\top + \sigma^2 I` and
        :math:`S_\mu = S + r r^\top`, the log-likelihood and its derivative in :math:`C`
        are

        .. math::

            \ell = -\frac N2 \big(D \ln 2\pi + \ln|C| + \operatorname{tr} C^{-1} S_\mu\big),
            \qquad
            G = \frac{\partial \ell}{\partial C}
              = -\frac N2 \big(C^{-1} - C^{-1} S_\mu C^{-1}\big),

        so :math:`\partial\ell/\partial W = 2 G W`, :math:`\partial\ell/\partial u_\sigma
        = 2\sigma^2 \operatorname{tr} G` and :math:`\partial\ell/\partial\mu = N C^{-1} r`.
        The priors add, per column, :math:`(a + D/2) u_{\alpha,i} - \alpha_i (b +
        \|w_i\|^2 / 2)` (Gamma, its Jacobian and the Gaussian column), :math:`u_\sigma -
        \ln(1 + \sigma^2 / s_\sigma^2)` (half-Cauchy and Jacobian) and
        :math:`-\|\mu\|^2 / 2 s_\mu^2`, plus constants.

        Pyro's potential traces the model and evaluates a low-rank Gaussian on all
        :math:`N` rows, then differentiates through it: 5.5 ms per gradient on Bishop's
        data (:math:`N = 300`, :math:`D = 10`, :math:`M = 9`) and 35 ms at
        :math:`N = 30000`, against 0.5 ms here at any :math:`N`
        (``python -m benchmarks --only bayesian_pca``). :func:`~ppl_models.inference.run_nuts`
        uses this function only after checking that its values and gradients are Pyro's
        at the chains' initial points.
        """
        if self.form != "marginal" or self.parametrisation != "centred":
            return None
        n, d = x.shape
        xbar = x.mean(0)
        xc = x - xbar
        stats = _MarginalStats(
            n=n,
            d=d,
            m=self.max_latent_dim,
            xbar=xbar,
            s=xc.T @ xc / n,
            a=float(self.alpha_a),
            b=float(self.alpha_b),
            sigma_scale=float(self.sigma_scale),
            mu_scale=float(self.mu_scale),
        )

        return ClosedFormPotential(lambda z: _marginal_potential(z, stats))

    # -- reading the fit --------------------------------------------------------------

    def median(self) -> dict[str, torch.Tensor]:
        """The guide's median of each global site (for ``"delta"``: the MAP point)."""
        with torch.no_grad(), local_params(self):
            med = self.autoguide.median()
        out = {k: v.detach() for k, v in med.items() if k != "z"}
        if "W_raw" in out:
            # The median of each coordinate maps through the monotone W = W_raw alpha^-1/2
            # only for a point (delta) guide; for a Gaussian guide it is the plug-in value.
            out["W"] = out.pop("W_raw") * out["alpha"].rsqrt().unsqueeze(-2)
        return out

    def params(self) -> PPCAParams:
        """The guide's median as :class:`~ppl_models.ppca.PPCAParams` (detached)."""
        med = self.median()
        return PPCAParams(med["W"], med["mu"], med["sigma"] ** 2)

    def sample_posterior(self, num_samples: int = 1000, seed: int | None = 0) -> dict:
        """Draws of ``alpha``, ``W``, ``sigma``, ``mu`` from the guide, shape
        ``(num_samples, ...)``."""
        num_samples = check_int(num_samples, "num_samples", minimum=1)
        if seed is not None:
            pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
        w_name = "W" if self.parametrisation == "centred" else "W_raw"
        names = ["alpha", w_name, "sigma", "mu"]
        if self.form == "latent":
            out = self._sample_globals(names, num_samples)
        else:
            pred = Predictive(
                self.model, guide=self.autoguide, num_samples=num_samples, return_sites=names
            )
            with torch.no_grad(), local_params(self):
                draws = pred(None, 1)
            # Predictive stacks the draws with a batch dimension of the data plate's size
            # (here 1): give each site its own shape.
            d, m = self.data_dim, self.max_latent_dim
            shapes = {"alpha": (m,), w_name: (d, m), "sigma": (), "mu": (d,)}
            out = {k: v.detach().reshape(num_samples, *shapes[k]) for k, v in draws.items()}
        if w_name == "W_raw":
            out["W"] = out.pop("W_raw") * out["alpha"].rsqrt().unsqueeze(-2)
        return out

    def _sample_globals(self, names: list[str], num_samples: int) -> dict:
        # The latent form's guide is mean-field (or a point): its global sites are
        # independent of z, so draw them from their own factors, without the data plate
        # (whose subsample size the guide fixed at its first call).
        from torch.distributions import biject_to

        guide = self.autoguide
        out = {}
        with torch.no_grad(), local_params(self):
            for name in names:
                support = guide.prototype_trace.nodes[name]["fn"].support
                if self.guide_family == "delta":
                    value = guide.median()[name]
                    out[name] = value.expand(num_samples, *value.shape).clone()
                    continue
                loc, scale = guide._get_loc_and_scale(name)
                eps = torch.randn((num_samples, *loc.shape), dtype=loc.dtype, device=loc.device)
                out[name] = biject_to(support)(loc + scale * eps)
        return out

    def posterior_alpha(self, num_samples: int = 1000, seed: int | None = 0) -> torch.Tensor:
        r"""Draws of :math:`\alpha` from the guide, sorted within each draw, shape
        ``(num_samples, M)``."""
        return self.sample_posterior(num_samples, seed)["alpha"].sort(-1).values

    def effective_dim(self, samples: Mapping[str, torch.Tensor] | None = None) -> int:
        """The effective dimension, by the rule that fits the fit.

        * ``samples`` given (e.g. ``mcmc.get_samples()``): :func:`effective_dim_alpha` on
          their ``"alpha"``;
        * else, a ``"delta"`` guide (MAP): :func:`effective_dim_point` on the MAP ``W`` and
          :math:`\\alpha`;
        * else (a Gaussian guide): :func:`effective_dim_median` on the guide's median
          ``W``.
        """
        if samples is not None:
            return effective_dim_alpha(torch.as_tensor(samples["alpha"]))
        med = self.median()
        if self.guide_family == "delta":
            return effective_dim_point(med["W"], med["alpha"])
        return effective_dim_median(med["W"])
