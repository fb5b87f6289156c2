r"""Linear regression as a Pyro model: :class:`LinearRegression`, maximum likelihood with
the empty guide, or Bayesian with priors on the weights and the noise precision."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam, PyroSample

from .._checks import as_design, check_int, check_positive, promoted_like
from ..inference import data_plate, local_pyro_method
from ..inference.potentials import ClosedFormPotential
from ._base import (
    RegressionParams,
)


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
    >>> from ppl_models.regression import mle, polynomial_features
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

    # local_pyro_method activates the module's context, so that reading a PyroSample attribute
    # records a sample site (outside it, it would draw silently from the prior).
    @local_pyro_method
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
        sufficient statistics :math:`\Phi^\top\Phi`, :math:`\Phi^\top t`, :math:`t^\top t`
        (``None`` without a prior). In Pyro's unconstrained coordinates (:math:`w`, and
        :math:`u = \ln\beta` for a Gamma prior on :math:`\beta`), with
        :math:`r^2 = t^\top t - 2 w^\top \Phi^\top t + w^\top \Phi^\top\Phi w`,

        .. math::

            U = -\Big[\tfrac N2 \ln\tfrac{\beta}{2\pi} - \tfrac\beta2 r^2
                + \tfrac M2 \ln\tfrac{\alpha}{2\pi} - \tfrac\alpha2 w^\top w
                + a_0 \ln b_0 - \ln\Gamma(a_0) + a_0 u - b_0 \beta\Big],

        (the prior terms where :math:`w`, :math:`\beta` carry priors; :math:`a_0 u` is the
        Gamma density's :math:`(a_0 - 1)\ln\beta` plus the log-Jacobian :math:`u`), so
        :math:`\partial U/\partial w = \beta(\Phi^\top\Phi w - \Phi^\top t) + \alpha w` and
        :math:`\partial U / \partial u = \beta(r^2/2 + b_0) - N/2 - a_0`.
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
