r"""The Gaussian density and its maximum-likelihood estimate.

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

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), sections 1.2.4, 2.3.4.
"""

from __future__ import annotations

from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam

from ._checks import as_data, check_int
from .inference import data_plate

__all__ = ["Gaussian", "GaussianParams", "mle"]


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
        return GaussianParams(loc, (xc * xc).mean())
    return GaussianParams(loc, xc.T @ xc / x.shape[0])


class Gaussian(PyroModule):
    r"""A Gaussian density as a Pyro model; with the empty guide, SVI is maximum likelihood.

    ``loc`` and ``scale_tril`` (the Cholesky factor of :math:`\Sigma`, or the standard
    deviation :math:`\sigma` when ``event_dim=0``) are ``PyroParam`` attributes; replacing
    one by a ``PyroSample`` with a prior turns the model Bayesian without touching
    :meth:`model`.

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

    def model(self, x: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
        r"""Observe ``x`` at ``"obs"`` under :math:`\mathcal{N}(\mu, \Sigma)` in plate ``"data"``.

        With ``x=None``, draws ``n`` new points (prior or posterior predictive).
        """
        if x is None and n is None:
            raise ValueError("model needs the data x or the number of draws n")
        size = x.shape[0] if x is not None else n
        if self.event_dim == 1:
            fn = dist.MultivariateNormal(self.loc, scale_tril=self.scale_tril)
        else:
            fn = dist.Normal(self.loc, self.scale)
        with data_plate(size):
            return pyro.sample("obs", fn, obs=x)

    def guide(self, x: torch.Tensor | None = None, n: int | None = None) -> None:
        """The empty guide: no latent variables, so SVI is maximum likelihood."""

    def params(self) -> GaussianParams:
        """The current parameters as :class:`GaussianParams` (detached)."""
        with torch.no_grad():
            if self.event_dim == 1:
                L = self.scale_tril
                return GaussianParams(self.loc.detach().clone(), L @ L.T)
            return GaussianParams(self.loc.detach().clone(), self.scale.detach() ** 2)
