r"""The Gaussian density: its maximum-likelihood estimate and its conjugate posterior.

The model
---------
Data points :math:`x_1, \dots, x_N \in \mathbb{R}^D` are drawn independently from

.. math::

    x_n \sim \mathcal{N}(\mu, \Sigma), \qquad
    \ln p(X \mid \mu, \Sigma) = -\frac{N}{2}\ln|2\pi\Sigma|
        - \frac12 \sum_{n=1}^N (x_n - \mu)^\top \Sigma^{-1} (x_n - \mu).

Setting the gradient to zero gives the maximum-likelihood estimates (PRML 2.121-2.122)

.. math::

    \mu_{ML} = \frac1N \sum_n x_n, \qquad
    \Sigma_{ML} = \frac1N \sum_n (x_n - \mu_{ML})(x_n - \mu_{ML})^\top,

with divisor :math:`N` (biased; the unbiased estimate divides by :math:`N - 1`).
For :math:`D = 1` the covariance is the variance :math:`\sigma^2_{ML}`.

==================  ===================  ======================================
symbol              argument / field     shape
==================  ===================  ======================================
:math:`x_n`         ``x``                ``(N,)`` (univariate) or ``(N, D)``
:math:`\mu`         ``loc``              ``()`` or ``(D,)``
:math:`\Sigma`      ``covariance``       ``()`` (variance) or ``(D, D)``
==================  ===================  ======================================

Conjugate Bayesian treatment (univariate)
-----------------------------------------
With unknown mean and precision :math:`\lambda = 1/\sigma^2`, the Normal-Gamma prior
(PRML 2.154; Murphy 2007, section 3)

.. math::

    \lambda \sim \mathrm{Gam}(a_0, b_0), \qquad
    \mu \mid \lambda \sim \mathcal{N}\big(\mu_0, (\kappa_0 \lambda)^{-1}\big),

(rate parametrisation: :math:`\mathbb{E}[\lambda] = a_0 / b_0`) is conjugate: with
:math:`\bar x = \frac1N \sum_n x_n` the posterior is Normal-Gamma with

.. math::

    \kappa_N = \kappa_0 + N, \qquad
    \mu_N = \frac{\kappa_0 \mu_0 + N \bar x}{\kappa_N}, \qquad
    a_N = a_0 + \frac N2, \qquad
    b_N = b_0 + \frac12 \sum_n (x_n - \bar x)^2
          + \frac{\kappa_0 N (\bar x - \mu_0)^2}{2 \kappa_N}.

Its marginals are :math:`\lambda \mid X \sim \mathrm{Gam}(a_N, b_N)` and
:math:`\mu \mid X \sim \mathrm{St}\big(2a_N, \mu_N, b_N / (a_N \kappa_N)\big)`, and the
posterior predictive of a new point is the Student-t

.. math::

    p(x_\ast \mid X) = \mathrm{St}\Big(x_\ast \,\Big|\, \nu = 2a_N,\ \mu_N,\
        s^2 = \frac{b_N (\kappa_N + 1)}{a_N \kappa_N}\Big)

(third argument: the squared scale). The evidence is

.. math::

    p(X) = \frac{\Gamma(a_N)}{\Gamma(a_0)} \frac{b_0^{a_0}}{b_N^{a_N}}
        \Big(\frac{\kappa_0}{\kappa_N}\Big)^{1/2} (2\pi)^{-N/2}.

=========================  =================  ======================================
symbol                     argument / field   shape
=========================  =================  ======================================
:math:`\mu_0, \mu_N`       ``mu``             ``()``
:math:`\kappa_0,\kappa_N`  ``kappa``          ``()``
:math:`a_0, a_N`           ``a``              ``()``
:math:`b_0, b_N`           ``b`` (rate)       ``()``
:math:`\lambda`            site ``"lambda"``  ``()``
:math:`\mu`                site ``"mu"``      ``()``
=========================  =================  ======================================

Data and dtypes follow the library's conventions: data enter once, through
:func:`ppl_models._checks.as_data`, and the Pyro model computes in torch's promotion of
the module's and the data's dtypes (:func:`ppl_models._checks.promoted_like`), on the
data's device. Priors are built in that dtype (float64 data give float64 prior draws and
NUTS samples); priors of plain floats work too, their draws cast to it.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), sections 1.2.4, 2.3.4,
2.3.6.
K. P. Murphy, *Conjugate Bayesian analysis of the Gaussian distribution* (2007),
section 3.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam, PyroSample

from ._checks import as_data, check_int, check_positive, promoted_like
from ._deprecation import renamed_keywords
from .inference import data_plate, iid, local_pyro_method
from .inference.potentials import ClosedFormPotential

__all__ = [
    "BayesianGaussian",
    "Gaussian",
    "GaussianParams",
    "NormalGammaParams",
    "log_evidence",
    "marginal_mu",
    "marginal_precision",
    "mle",
    "normal_gamma_posterior",
    "posterior_predictive",
]


class GaussianParams(NamedTuple):
    """Parameters of a Gaussian: ``loc`` (mean) and ``covariance`` (variance if 1-D)."""

    loc: torch.Tensor
    covariance: torch.Tensor


def mle(x: object) -> GaussianParams:
    r"""Maximum-likelihood mean and covariance (divisor :math:`N`, PRML 2.121-2.122).

    Parameters
    ----------
    x : array_like, shape (N,) or (N, D)
        Data, :math:`N \ge 2`. Floating inputs keep their dtype.

    Returns
    -------
    GaussianParams
        ``loc`` of shape ``()`` or ``(D,)``; ``covariance`` of shape ``()`` (the variance
        :math:`\sigma^2_{ML}`) or ``(D, D)``.

    Examples
    --------
    >>> mle(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    GaussianParams(loc=tensor(2.5000), covariance=tensor(1.2500))
    """
    x = as_data(x, "x")
    loc = x.mean(0)
    xc = x - loc
    if x.ndim == 1:
        out = GaussianParams(loc, (xc * xc).mean())
    else:
        out = GaussianParams(loc, xc.T @ xc / x.shape[0])
    if not all(bool(torch.isfinite(v).all()) for v in out):
        raise ValueError(f"x's values overflow {x.dtype} in the covariance: rescale x")
    return out


class Gaussian(PyroModule):
    r"""A Gaussian density as a Pyro model; with the empty guide, SVI is maximum likelihood.

    ``loc`` and ``scale_tril`` (the Cholesky factor of :math:`\Sigma`), or ``loc`` and
    ``scale`` (the standard deviation :math:`\sigma`) when ``event_dim=0``, are
    ``PyroParam`` attributes; replacing one by a ``PyroSample`` with a prior (e.g.
    ``g.loc = PyroSample(dist.Normal(0.0, 10.0))``) turns the model Bayesian without
    touching :meth:`model`: the attribute becomes a sample site of that name.
    :class:`BayesianGaussian` is the conjugate case, with sites ``"mu"`` and ``"lambda"``.

    Parameters
    ----------
    data_dim : int, optional
        :math:`D` for multivariate data (``event_dim=1``).
    event_dim : {0, 1}
        0 for univariate data of shape ``(N,)``, 1 for ``(N, D)``.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> x = torch.randn(200, 3, dtype=torch.float64)
    >>> g = Gaussian(3)
    >>> _ = fit_svi(g, x, optimizer="lbfgs", num_steps=30, progress=False)
    >>> bool(torch.allclose(g.params().covariance, mle(x).covariance, atol=1e-6))
    True
    """

    def __init__(self, data_dim: int | None = None, event_dim: int = 1):
        super().__init__()
        self.event_dim = check_int(event_dim, "event_dim", minimum=0, maximum=1)
        if self.event_dim == 1:
            if data_dim is None:
                raise ValueError("data_dim is required when event_dim=1")
            self.data_dim = check_int(data_dim, "data_dim", minimum=1)
            self.loc = PyroParam(torch.zeros(self.data_dim))
            self.scale_tril = PyroParam(
                torch.eye(self.data_dim), constraint=constraints.lower_cholesky
            )
        else:
            self.data_dim = 1
            self.loc = PyroParam(torch.tensor(0.0))
            self.scale = PyroParam(torch.tensor(1.0), constraint=constraints.positive)

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x`` (called by :func:`~ppl_models.inference.fit_svi`)."""
        x = as_data(x, "x", ndim=self.event_dim + 1)
        if self.event_dim == 1 and x.shape[1] != self.data_dim:
            raise ValueError(f"x must have {self.data_dim} columns (data_dim); got {x.shape[1]}")
        return (x,)

    @renamed_keywords(n="num_points")
    @local_pyro_method
    def model(self, x: torch.Tensor | None = None, num_points: int | None = None) -> torch.Tensor:
        r"""Observe ``x`` at ``"obs"`` under :math:`\mathcal{N}(\mu, \Sigma)` in plate ``"data"``.

        With ``x=None``, draws ``num_points`` new points (prior or posterior predictive;
        ``n`` is its deprecated old name).
        """
        if x is None and num_points is None:
            raise ValueError("model needs the data x or the number of points num_points")
        size = x.shape[0] if x is not None else num_points
        like = promoted_like(self, x)
        if self.event_dim == 1:
            fn = dist.MultivariateNormal(self.loc.to(like), scale_tril=self.scale_tril.to(like))
        else:
            fn = iid(dist.Normal(self.loc.to(like), self.scale.to(like)))
        with data_plate(size):
            return pyro.sample("obs", fn, obs=None if x is None else x.to(like))

    @renamed_keywords(n="num_points")
    def guide(self, x: torch.Tensor | None = None, num_points: int | None = None) -> None:
        """The empty guide: no latent variables, so SVI is maximum likelihood."""

    def params(self) -> GaussianParams:
        """The current parameters as :class:`GaussianParams` (detached)."""
        with torch.no_grad():
            if self.event_dim == 1:
                L = self.scale_tril
                return GaussianParams(self.loc.detach().clone(), L @ L.T)
            return GaussianParams(self.loc.detach().clone(), self.scale.detach() ** 2)


class NormalGammaParams(NamedTuple):
    r"""A Normal-Gamma distribution over :math:`(\mu, \lambda)`:
    :math:`\lambda \sim \mathrm{Gam}(a, b)` (``b`` is the rate),
    :math:`\mu \mid \lambda \sim \mathcal{N}(\mu, (\kappa\lambda)^{-1})`.

    Used both for the prior (:math:`\mu_0, \kappa_0, a_0, b_0`) and for the posterior
    (:math:`\mu_N, \kappa_N, a_N, b_N`). Fields are 0-d tensors (or numbers, for a prior).
    """

    mu: torch.Tensor
    kappa: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor


def _exact_tensor(value: object) -> torch.Tensor:
    """A tensor of ``value``; Python and numpy numbers in float64 (torch's default float32
    would turn 1e300 into inf before any check could see it)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (float, np.floating)):
        return torch.tensor(float(value), dtype=torch.float64)
    return torch.as_tensor(value)


def _as_normal_gamma(p: object, name: str, dtype: torch.dtype | None = None) -> NormalGammaParams:
    """Check a Normal-Gamma parameter set (finite ``mu``; positive ``kappa``, ``a``, ``b``)."""
    if not isinstance(p, tuple) or len(p) != 4:
        raise TypeError(
            f"{name} must be a NormalGammaParams(mu, kappa, a, b); got {type(p).__name__}"
        )
    p = NormalGammaParams(*p)
    fields = {}
    carried: list[torch.dtype] = []
    for field, value in zip(NormalGammaParams._fields, p, strict=True):
        label = f"{name}.{field}"
        if isinstance(value, bool):
            raise TypeError(f"{label} must be a real number; got {value!r}")
        if field == "mu":
            if not isinstance(value, (torch.Tensor, float, int)) and not hasattr(
                value, "__float__"
            ):
                raise TypeError(f"{label} must be a real number; got {type(value).__name__}")
            t = _exact_tensor(value)
            if t.ndim == 0 and not bool(torch.isfinite(t)):
                raise ValueError(f"{label} must be finite; got {t.item()!r}")
        else:
            t = _exact_tensor(check_positive(value, label))
        if t.ndim != 0:
            raise ValueError(f"{label} must be a scalar; got shape {tuple(t.shape)}")
        if t.is_complex():
            raise TypeError(f"{label} must be a real number; got {t.dtype}")
        if t.is_floating_point() and isinstance(value, torch.Tensor):
            carried.append(t.dtype)  # a tensor's dtype counts; a plain number's does not
        fields[field] = t
    common = dtype
    if common is None:
        common = torch.get_default_dtype()
        if carried:
            common = carried[0]
            for other in carried[1:]:
                common = torch.promote_types(common, other)
    out = {}
    for field, t in fields.items():
        out[field] = t.to(common)
        if field != "mu" and not float(out[field]) > 0:
            raise ValueError(
                f"{name}.{field} = {float(t):g} underflows to 0 in {common}"
                + (" (the dtype of the data)" if dtype is not None else "")
                + ": pass float64 data (or a float64 prior) or a larger value"
            )
        if not bool(torch.isfinite(out[field])):
            raise ValueError(
                f"{name}.{field} = {float(t):g} overflows {common}"
                + (" (the dtype of the data)" if dtype is not None else "")
                + ": pass float64 data (or a float64 prior) or a smaller value"
            )
    return NormalGammaParams(**out)


def normal_gamma_posterior(x: object, prior: NormalGammaParams) -> NormalGammaParams:
    r"""The Normal-Gamma posterior of :math:`(\mu, \lambda)` given univariate data: the
    conjugate update :math:`(\kappa_N, \mu_N, a_N, b_N)` written out in
    :mod:`ppl_models.gaussian`.

    Parameters
    ----------
    x : array_like, shape (N,)
        Data, :math:`N \ge 1`, finite. Floating inputs keep their dtype.
    prior : NormalGammaParams
        :math:`(\mu_0, \kappa_0, a_0, b_0)`; ``kappa``, ``a`` and ``b`` positive.

    Returns
    -------
    NormalGammaParams
        :math:`(\mu_N, \kappa_N, a_N, b_N)`, 0-d tensors in the dtype of ``x``.

    References
    ----------
    PRML 2.3.6 (exercise 2.44); Murphy (2007), eq. 86-89.

    Examples
    --------
    >>> prior = NormalGammaParams(mu=0.0, kappa=1.0, a=1.0, b=1.0)
    >>> post = normal_gamma_posterior(torch.tensor([1.0, 2.0, 3.0]), prior)
    >>> [round(float(v), 4) for v in post]
    [1.5, 4.0, 2.5, 3.5]
    """
    x = as_data(x, "x", ndim=1, min_rows=1)
    mu0, kappa0, a0, b0 = _as_normal_gamma(prior, "prior", dtype=x.dtype)
    mu0, kappa0, a0, b0 = (t.to(x.device) for t in (mu0, kappa0, a0, b0))
    n = x.shape[0]
    xbar = x.mean()
    ss = ((x - xbar) ** 2).sum()
    kappa_n = kappa0 + n
    # Written with the weights kappa0 / kappa_n and n / kappa_n, both in [0, 1]: the
    # textbook (kappa0 mu0 + n xbar) / kappa_n and kappa0 n / kappa_n overflow to
    # inf / inf = NaN for an extreme but finite prior (kappa0 = 1e300); the convex
    # combination neither overflows nor cancels more than the value itself does.
    shrink = n / kappa_n
    mu_n = (kappa0 / kappa_n) * mu0 + shrink * xbar
    a_n = a0 + n / 2
    b_n = b0 + ss / 2 + kappa0 * shrink * (xbar - mu0) ** 2 / 2
    post = NormalGammaParams(mu_n, kappa_n, a_n, b_n)
    _check_finite(post, "the posterior")
    return post


def _check_finite(values: tuple, what: str) -> None:
    """An extreme but finite prior can still overflow the data's dtype in the update."""
    if not all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in values):
        raise ValueError(
            f"{what} overflows with this prior and x (e.g. (x - prior.mu)^2 or lgamma(prior.a) "
            "beyond the dtype's range): pass float64 data or a less extreme prior"
        )


def log_evidence(x: object, prior: NormalGammaParams) -> torch.Tensor:
    r"""The log marginal likelihood :math:`\ln p(X)` under the Normal-Gamma prior.

    .. math::

        \ln p(X) = \ln\Gamma(a_N) - \ln\Gamma(a_0) + a_0 \ln b_0 - a_N \ln b_N
            + \tfrac12 (\ln\kappa_0 - \ln\kappa_N) - \tfrac N2 \ln 2\pi.

    Parameters
    ----------
    x : array_like, shape (N,)
        Data, :math:`N \ge 1`.
    prior : NormalGammaParams
        :math:`(\mu_0, \kappa_0, a_0, b_0)`.

    Returns
    -------
    torch.Tensor
        0-d, in the dtype of ``x``.

    Examples
    --------
    For one point the evidence is the prior predictive density:

    >>> prior = NormalGammaParams(0.0, 1.0, 2.0, 3.0)
    >>> x = torch.tensor([0.7], dtype=torch.float64)
    >>> bool(torch.isclose(log_evidence(x, prior), posterior_predictive(prior).log_prob(x[0])))
    True
    """
    x = as_data(x, "x", ndim=1, min_rows=1)
    p0 = _as_normal_gamma(prior, "prior", dtype=x.dtype)
    pn = normal_gamma_posterior(x, p0)
    value = (
        torch.lgamma(pn.a)
        - torch.lgamma(p0.a)
        + p0.a * torch.log(p0.b)
        - pn.a * torch.log(pn.b)
        + 0.5 * (torch.log(p0.kappa) - torch.log(pn.kappa))
        - 0.5 * x.shape[0] * math.log(2 * math.pi)
    )
    _check_finite((value,), "the log evidence")
    return value


def posterior_predictive(posterior: NormalGammaParams) -> dist.StudentT:
    r"""The predictive density of a new point: a Student-t.

    .. math::

        p(x_\ast) = \int\!\!\int \mathcal{N}(x_\ast \mid \mu, \lambda^{-1})\,
            \mathrm{NG}(\mu, \lambda \mid \mu_N, \kappa_N, a_N, b_N)\, d\mu\, d\lambda
        = \mathrm{St}\Big(x_\ast \,\Big|\, 2a_N,\ \mu_N,\
            \frac{b_N (\kappa_N + 1)}{a_N \kappa_N}\Big).

    Parameters
    ----------
    posterior : NormalGammaParams
        Usually the output of :func:`normal_gamma_posterior`; the prior gives the prior
        predictive.

    Returns
    -------
    pyro.distributions.StudentT
        ``df = 2a``, ``loc = mu``, ``scale = sqrt(b (kappa + 1) / (a kappa))``.

    Examples
    --------
    >>> t = posterior_predictive(NormalGammaParams(1.5, 4.0, 2.5, 3.5))
    >>> float(t.df), round(float(t.scale**2), 4)
    (5.0, 1.75)
    """
    mu, kappa, a, b = _as_normal_gamma(posterior, "posterior")
    return dist.StudentT(2 * a, mu, torch.sqrt(b * (kappa + 1) / (a * kappa)))


def marginal_mu(posterior: NormalGammaParams) -> dist.StudentT:
    r"""The marginal of :math:`\mu`: :math:`\mathrm{St}(2a, \mu, b / (a\kappa))`
    (third argument: the squared scale).

    Parameters
    ----------
    posterior : NormalGammaParams
        A Normal-Gamma distribution (prior or posterior).

    Returns
    -------
    pyro.distributions.StudentT
        ``df = 2a``, ``loc = mu``, ``scale = sqrt(b / (a kappa))``; its mean is ``mu`` for
        ``a > 1/2`` and its variance ``b / (kappa (a - 1))`` for ``a > 1``.

    Examples
    --------
    >>> round(float(marginal_mu(NormalGammaParams(0.0, 2.0, 3.0, 6.0)).variance), 4)
    1.5
    """
    mu, kappa, a, b = _as_normal_gamma(posterior, "posterior")
    return dist.StudentT(2 * a, mu, torch.sqrt(b / (a * kappa)))


def marginal_precision(posterior: NormalGammaParams) -> dist.Gamma:
    r"""The marginal of the precision :math:`\lambda`: :math:`\mathrm{Gam}(a, b)` (rate
    ``b``), with mean :math:`a/b` and variance :math:`a/b^2`. ``posterior`` as in
    :func:`marginal_mu`.

    Returns
    -------
    pyro.distributions.Gamma
        ``concentration = a``, ``rate = b``.

    Examples
    --------
    >>> float(marginal_precision(NormalGammaParams(0.0, 2.0, 3.0, 6.0)).mean)
    0.5
    """
    _, _, a, b = _as_normal_gamma(posterior, "posterior")
    return dist.Gamma(a, b)


# The priors are built in the dtype and on the device of the model's computation (stashed
# by BayesianGaussian.model), from the buffers of the prior's parameters.
def _precision_prior(self: BayesianGaussian) -> dist.Gamma:
    like = self.a0 if self._like is None else self._like
    return dist.Gamma(self.a0.to(like), self.b0.to(like))


def _mean_prior(self: BayesianGaussian) -> dist.Normal:
    like = self.a0 if self._like is None else self._like
    lam = getattr(self, "lambda").to(like)
    return dist.Normal(self.mu0.to(like), torch.rsqrt(self.kappa0.to(like) * lam))


class BayesianGaussian(PyroModule):
    r"""The univariate Gaussian with a Normal-Gamma prior on its mean and precision.

    .. math::

        \lambda \sim \mathrm{Gam}(a_0, b_0), \quad
        \mu \mid \lambda \sim \mathcal{N}(\mu_0, (\kappa_0\lambda)^{-1}), \quad
        x_n \mid \mu, \lambda \sim \mathcal{N}(\mu, \lambda^{-1}).

    ``"lambda"`` and ``"mu"`` are ``PyroSample`` attributes (the site names; ``lambda`` is
    a Python keyword, so read it as :attr:`precision` or ``getattr(m, "lambda")``). The
    model runs under :func:`~ppl_models.inference.run_nuts`, and under
    :func:`~ppl_models.inference.fit_svi` with any guide: an autoguide
    (``AutoNormal(m.model)``, ``AutoMultivariateNormal(m.model)``) or the module's own
    :meth:`guide`, a Normal-Gamma :math:`q(\mu, \lambda)`. That family holds the exact
    posterior, so SVI with it can reach :func:`normal_gamma_posterior` exactly, and its
    ELBO the :func:`log_evidence`.

    Parameters
    ----------
    prior : NormalGammaParams
        :math:`(\mu_0, \kappa_0, a_0, b_0)`; ``kappa``, ``a``, ``b`` positive. Stored as
        buffers (they follow ``.to()``).

    Examples
    --------
    >>> from pyro import poutine
    >>> m = BayesianGaussian(NormalGammaParams(mu=0.0, kappa=1.0, a=2.0, b=2.0))
    >>> trace = poutine.trace(m.model).get_trace(torch.randn(5))
    >>> trace.stochastic_nodes, trace.observation_nodes  # "data" is the plate
    (['lambda', 'mu', 'data'], ['obs'])
    """

    def __init__(self, prior: NormalGammaParams):
        super().__init__()
        p = _as_normal_gamma(prior, "prior")
        self.register_buffer("mu0", p.mu.clone())
        self.register_buffer("kappa0", p.kappa.clone())
        self.register_buffer("a0", p.a.clone())
        self.register_buffer("b0", p.b.clone())
        self._like: torch.Tensor | None = None  # the dtype and device of the last model call
        setattr(self, "lambda", PyroSample(_precision_prior))
        self.mu = PyroSample(_mean_prior)
        # The guide's Normal-Gamma q starts at the prior.
        self.mu_q = PyroParam(p.mu.clone())
        self.kappa_q = PyroParam(p.kappa.clone(), constraint=constraints.positive)
        self.a_q = PyroParam(p.a.clone(), constraint=constraints.positive)
        self.b_q = PyroParam(p.b.clone(), constraint=constraints.positive)

    @property
    def precision(self) -> torch.Tensor:
        r"""The ``"lambda"`` site (:math:`\lambda`): a sample inside :meth:`model`."""
        return getattr(self, "lambda")

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x`` (called by :func:`~ppl_models.inference.fit_svi` and ``run_nuts``)."""
        return (as_data(x, "x", ndim=1, min_rows=1),)

    @renamed_keywords(n="num_points")
    @local_pyro_method
    def model(self, x: torch.Tensor | None = None, num_points: int | None = None) -> torch.Tensor:
        r"""Sample ``"lambda"`` and ``"mu"``, then observe ``x`` at ``"obs"`` in plate
        ``"data"``. With ``x=None``, draws ``num_points`` new points (``n`` is its
        deprecated old name)."""
        if x is None and num_points is None:
            raise ValueError("model needs the data x or the number of points num_points")
        size = x.shape[0] if x is not None else num_points
        like = self._like = promoted_like(self, x)
        lam = self.precision.to(like)
        mu = self.mu.to(like)
        obs = None if x is None else x.to(like)
        with data_plate(size):
            return pyro.sample("obs", iid(dist.Normal(mu, torch.rsqrt(lam))), obs=obs)

    @renamed_keywords(n="num_points")
    @local_pyro_method
    def guide(self, x: torch.Tensor | None = None, num_points: int | None = None) -> None:
        r"""The Normal-Gamma guide :math:`q(\lambda) = \mathrm{Gam}(a_q, b_q)`,
        :math:`q(\mu \mid \lambda) = \mathcal{N}(\mu_q, (\kappa_q\lambda)^{-1})`, both
        reparameterised, in the model's dtype."""
        like = promoted_like(self, x)
        lam = pyro.sample("lambda", dist.Gamma(self.a_q.to(like), self.b_q.to(like)))
        kappa = self.kappa_q.to(like)
        pyro.sample("mu", dist.Normal(self.mu_q.to(like), torch.rsqrt(kappa * lam)))

    def nuts_potential(self, x: torch.Tensor) -> ClosedFormPotential:
        r"""The potential energy for NUTS with its gradient in closed form, from
        :math:`N`, :math:`ar x` and :math:`S = \sum_n (x_n - ar x)^2`. In Pyro's
        unconstrained coordinates :math:`(u, \mu)`, :math:`u = \ln\lambda`, with
        :math:`Q = S + N(ar x - \mu)^2` and :math:`d = \mu - \mu_0`,

        .. math::

            U = -\Big[a_0\ln b_0 - \ln\Gamma(a_0) + a_0 u - b_0\lambda
                + 	frac12\ln	frac{\kappa_0\lambda}{2\pi} - 	frac{\kappa_0\lambda}{2} d^2
                + 	frac N2 \ln	frac{\lambda}{2\pi} - 	frac\lambda2 Q\Big]

        (:math:`a_0 u`: the Gamma density's :math:`(a_0 - 1)\ln\lambda` plus the
        log-Jacobian :math:`u`), so :math:`\partial U/\partial\mu = \lambda[\kappa_0 d -
        N(ar x - \mu)]` and :math:`\partial U/\partial u = \lambda(b_0 + \kappa_0 d^2/2 +
        Q/2) - a_0 - (N + 1)/2`. :func:`~ppl_models.inference.run_nuts` uses it only where
        it equals Pyro's potential and gradient.
        """
        like = promoted_like(self, x)
        x = x.to(like)
        n = x.shape[0]
        mean = x.mean()
        ss = ((x - mean) ** 2).sum()
        mu0, kappa0, a0, b0 = (p.to(like) for p in (self.mu0, self.kappa0, self.a0, self.b0))
        log_2pi = math.log(2 * math.pi)
        const = a0 * b0.log() - torch.lgamma(a0) + 0.5 * kappa0.log() - 0.5 * (n + 1) * log_2pi

        def value_and_grad(z: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
            u, mu = z["lambda"], z["mu"]
            lam = u.exp()
            d, r = mu - mu0, mean - mu
            q = ss + n * r * r
            lp = const + (a0 + 0.5 * (n + 1)) * u - lam * (b0 + 0.5 * kappa0 * d * d + 0.5 * q)
            grads = {
                "lambda": lam * (b0 + 0.5 * kappa0 * d * d + 0.5 * q) - a0 - 0.5 * (n + 1),
                "mu": lam * (kappa0 * d - n * r),
            }
            return -lp, grads

        return ClosedFormPotential(value_and_grad)

    def params(self) -> NormalGammaParams:
        """The guide's current Normal-Gamma :math:`q` (detached)."""
        with torch.no_grad():
            return NormalGammaParams(
                self.mu_q.detach().clone(),
                self.kappa_q.detach().clone(),
                self.a_q.detach().clone(),
                self.b_q.detach().clone(),
            )

    def prior(self) -> NormalGammaParams:
        """The prior :math:`(\\mu_0, \\kappa_0, a_0, b_0)`."""
        return NormalGammaParams(self.mu0, self.kappa0, self.a0, self.b0)
