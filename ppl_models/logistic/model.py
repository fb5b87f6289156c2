r"""Logistic regression as a Pyro model: :class:`LogisticRegression`, maximum likelihood
with the empty guide, or Bayesian with a Gaussian prior on the weights."""

from __future__ import annotations

import math
import warnings

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule, PyroParam, PyroSample

from .._checks import as_design, check_int, check_positive, promoted_like
from ..inference import data_plate, local_pyro_method
from ..inference.potentials import ClosedFormPotential
from .closed_forms import SEPARABLE_MESSAGE, LogisticParams, SeparableDataWarning


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
    >>> from ppl_models.logistic import add_bias, irls
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

    @local_pyro_method
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
                        f"LogisticRegression: {SEPARABLE_MESSAGE}",
                        SeparableDataWarning,
                        stacklevel=2,
                    )
        with plate:
            return pyro.sample("obs", dist.Bernoulli(logits=logits), obs=t)

    @local_pyro_method
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
