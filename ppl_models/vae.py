r"""The variational autoencoder: a decoder network as likelihood, an amortized Gaussian guide.

The mathematics
---------------
A latent code :math:`z_n \in \mathbb{R}^M` with a standard normal prior generates
:math:`x_n \in \mathbb{R}^D` through a decoder network :math:`g_\theta` (Kingma & Welling
2014):

.. math::

    z_n \sim \mathcal{N}(0, I_M), \qquad
    x_n \mid z_n \sim \mathcal{N}\big(g_\theta(z_n), \operatorname{diag}(\sigma^2)\big)
    \ \text{(normal)}
    \quad\text{or}\quad
    x_{nd} \mid z_n \sim \operatorname{Bernoulli}\big(\operatorname{sigmoid}(g_\theta(z_n)_d)\big)
    \ \text{(bernoulli)}.

The posterior :math:`p(z \mid x)` is intractable. An encoder network :math:`f_\phi`
outputs, for every data point, the mean and log-variance of a diagonal Gaussian
:math:`q_\phi(z \mid x) = \mathcal{N}(\mu_\phi(x), \operatorname{diag}\sigma_\phi^2(x))`
(the *amortized* guide: one network, not one set of parameters per point), and the
evidence lower bound

.. math::

    \mathcal{L}(x) = \mathbb{E}_{q_\phi(z \mid x)}\big[\ln p_\theta(x \mid z)\big]
        - \operatorname{KL}\big(q_\phi(z \mid x) \,\|\, p(z)\big) \le \ln p_\theta(x)

is maximised over :math:`\theta, \phi` instead of :math:`\ln p_\theta(x)`. The KL between
the Gaussians has the closed form (:func:`gaussian_kl`)

.. math::

    -\operatorname{KL} = \frac12 \sum_{j=1}^M
        \big(1 + \ln\sigma_j^2 - \mu_j^2 - \sigma_j^2\big),

which ``TraceMeanField_ELBO`` uses ("analytic KL"); ``Trace_ELBO`` estimates it by Monte
Carlo, :math:`\ln p(z) - \ln q(z \mid x)` at the sampled :math:`z`. Both average
``num_particles`` (:math:`L`) reparametrised draws :math:`z = \mu + \sigma \odot
\epsilon`. The reconstruction term is the (negative, scaled) squared error for the normal
likelihood and the negative binary cross-entropy for the bernoulli one.

**beta-VAE** (Higgins et al. 2017): ``beta`` multiplies the KL term,
:math:`\mathbb{E}_q[\ln p(x \mid z)] - \beta\,\operatorname{KL}`, which favours codes that
stay close to the factorised prior (disentangling); it is implemented by
``poutine.scale(beta)`` on the site ``"z"`` in both model and guide, so both estimators see
it. :func:`elbo` and :func:`log_likelihood` always evaluate the generative model itself
(:math:`\beta = 1`).

**Log-likelihood by importance sampling** (Burda et al. 2016). With :math:`K` draws
:math:`z_k \sim q(z \mid x)`,

.. math::

    \ln p(x) \approx \hat{\mathcal{L}}_K = \ln \frac1K \sum_{k=1}^K
        \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)},
    \qquad
    \mathbb{E}\hat{\mathcal{L}}_1 = \mathcal{L} \le \mathbb{E}\hat{\mathcal{L}}_K
        \le \mathbb{E}\hat{\mathcal{L}}_{K+1} \le \ln p(x),

and :math:`\hat{\mathcal{L}}_K \to \ln p(x)` as :math:`K \to \infty`
(:func:`log_likelihood`).

**Linear VAE and PPCA.** With affine encoder and decoder, :math:`p(x \mid z) =
\mathcal{N}(W z + b, \sigma^2 I)` is probabilistic PCA, whose exact posterior is Gaussian
with covariance :math:`\sigma^2 (W^\top W + \sigma^2 I)^{-1}` for every point. A diagonal
guide matches it when :math:`W^\top W` is diagonal, which the ELBO's optimum selects among
the rotations :math:`W R`; there the ELBO equals the PPCA maximum log-likelihood and
:math:`W W^\top + \sigma^2 I` its covariance. :func:`linear_elbo` gives the ELBO of a
linear VAE in closed form.

============================  ===============================  ====================
symbol                        argument / attribute             shape
============================  ===============================  ====================
:math:`x_n`                   ``x``                            ``(N, D)``
:math:`z_n`                   site ``"z"``                     ``(N, M)``
:math:`D`, :math:`M`          ``data_dim``, ``latent_dim``
:math:`f_\phi`                ``VAE.encoder``                  ``(N, D) -> (N, 2M)``
:math:`\mu_\phi, \ln\sigma_\phi^2`  the encoder's two heads    ``(N, M)`` each
:math:`g_\theta`              ``VAE.decoder``                  ``(N, M) -> (N, D)``
:math:`\sigma`                ``VAE.sigma``                    ``()`` or ``(D,)``
:math:`\beta`                 ``beta``                         scalar
:math:`L`, :math:`K`          ``num_particles``, ``num_samples``
============================  ===============================  ====================

Dtypes. The Pyro model computes in ``torch.promote_types(module dtype, data dtype)``, as
torch's own type promotion does: a module built in the default float32 runs on float64
data, on the data's device (the prior of ``z`` too). The networks run in their own (the
module's) dtype: their input is cast to it, their output to the computation dtype.

Data. Every function that takes data converts them once, at the entry
(:func:`ppl_models._checks.as_data`): torch tensors and numpy arrays, and pandas
DataFrames and Series (a column that does not hold numbers is refused by name); floating
data keep their dtype, float16 is computed in float32, integer and boolean numpy data
become float64 (numpy's and scikit-learn's convention); sparse matrices are refused (pass
``.toarray()``).

References
----------
D. P. Kingma, M. Welling, *Auto-encoding variational Bayes*, ICLR 2014.
Y. Burda, R. Grosse, R. Salakhutdinov, *Importance weighted autoencoders*, ICLR 2016.
I. Higgins et al., *beta-VAE: learning basic visual concepts with a constrained
variational framework*, ICLR 2017.
I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning* (2016), sections 19.4 and 20.10.3.
M. E. Tipping, C. M. Bishop, *Probabilistic principal component analysis*, JRSS B 61 (1999).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam
from torch import nn
from torch.nn import functional as F

from ._checks import (
    as_array,
    as_data,
    check_binary,
    check_choice,
    check_int,
    check_positive,
    promoted_like,
)
from .autoencoder import _check_sizes, decode_mean, make_networks
from .inference import data_plate, plate_scale, pyro_method

__all__ = [
    "VAE",
    "VAEParams",
    "elbo",
    "gaussian_kl",
    "interpolate",
    "latent_traversal",
    "linear_elbo",
    "log_likelihood",
]

_LIKELIHOODS = ("bernoulli", "normal")
_LOG_2PI = math.log(2 * math.pi)


class VAEParams(NamedTuple):
    r"""The affine layers of a VAE's networks and its noise scale, detached.

    ``nn.Linear`` convention: a layer maps :math:`h \mapsto W h + b`, ``W`` of shape
    ``(out, in)``. For a linear VAE (``hidden=()``) ``decoder_weights[0]`` is :math:`W`,
    shape ``(D, M)``, and ``decoder_biases[0]`` the mean :math:`b`; the encoder's last layer
    has ``2 M`` outputs, the means first, then the log-variances.

    Attributes
    ----------
    encoder_weights, encoder_biases : tuple of torch.Tensor
    decoder_weights, decoder_biases : tuple of torch.Tensor
    sigma : torch.Tensor or None
        Shape ``()`` or ``(D,)`` for the normal likelihood; ``None`` for bernoulli.
    """

    encoder_weights: tuple[torch.Tensor, ...]
    encoder_biases: tuple[torch.Tensor, ...]
    decoder_weights: tuple[torch.Tensor, ...]
    decoder_biases: tuple[torch.Tensor, ...]
    sigma: torch.Tensor | None


# ---------------------------------------------------------------- reference solutions


def gaussian_kl(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    r"""The KL divergence from :math:`\mathcal{N}(\mu, \operatorname{diag}\sigma^2)` to
    :math:`\mathcal{N}(0, I)`, per row, in closed form (Kingma & Welling 2014, appendix B):

    .. math::

        \operatorname{KL} = -\frac12 \sum_j \big(1 + \ln\sigma_j^2 - \mu_j^2 - \sigma_j^2\big).

    Parameters
    ----------
    loc, scale : torch.Tensor, shape (..., M)
        :math:`\mu` and :math:`\sigma > 0`.

    Returns
    -------
    torch.Tensor, shape (...,)

    Examples
    --------
    >>> abs(float(gaussian_kl(torch.zeros(1, 3), torch.ones(1, 3))[0]))
    0.0
    >>> round(float(gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[1.0]]))[0]), 6)
    0.5
    """
    loc = as_data(loc, "loc", ndim=range(1, 8), min_rows=1)
    scale = as_data(scale, "scale", ndim=range(1, 8), min_rows=1)
    if loc.shape != scale.shape:
        raise ValueError(
            f"loc and scale must have one shape (..., M); got {tuple(loc.shape)} and "
            f"{tuple(scale.shape)}"
        )
    if loc.shape[-1] == 0:
        raise ValueError("loc and scale must have at least one latent coordinate (M >= 1)")
    var = scale * scale
    if not bool(((var > 0) & torch.isfinite(var)).all()):
        raise ValueError(
            f"scale must be positive with a square {var.dtype} can hold (neither 0 nor inf)"
        )
    if not bool(torch.isfinite(loc * loc).all()):
        raise ValueError(f"loc must have a square {loc.dtype} can hold (no overflow)")
    return _gaussian_kl(loc, scale)


def _gaussian_kl(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """:func:`gaussian_kl` without the checks: inside the loss, a check would read the
    device's memory back on every step."""
    var = scale * scale
    return -0.5 * (1 + torch.log(var) - loc * loc - var).sum(-1)


def linear_elbo(params: VAEParams, x: object) -> torch.Tensor:
    r"""The exact ELBO per data point of a linear VAE with the normal likelihood.

    With :math:`q(z \mid x) = \mathcal{N}(m, \operatorname{diag} s^2)`, the encoder's
    affine output, and :math:`p(x \mid z) = \mathcal{N}(W z + b, \operatorname{diag}
    \sigma^2)`, the expected log-likelihood is Gaussian algebra:

    .. math::

        \mathbb{E}_q \ln p(x \mid z) = -\frac12 \sum_d \Big[\ln 2\pi\sigma_d^2
            + \frac{(x_d - w_d^\top m - b_d)^2 + \sum_j W_{dj}^2 s_j^2}{\sigma_d^2}\Big],

    minus :func:`gaussian_kl`. No sampling: the reference that Monte-Carlo estimates and the
    linear-VAE check are measured against.

    Parameters
    ----------
    params : VAEParams
        Of a VAE with ``hidden=()`` and the normal likelihood (``VAE.params()``).
    x : array_like, shape (N, D)

    Returns
    -------
    torch.Tensor, shape (N,)

    Examples
    --------
    >>> vae = VAE(4, 2, hidden=(), likelihood="normal").double()
    >>> x = torch.randn(5, 4, dtype=torch.float64)
    >>> bool((linear_elbo(vae.params(), x) <= log_likelihood(vae, x, 1000, seed=0) + 1e-9).all())
    True
    """
    if not isinstance(params, VAEParams):
        raise TypeError(f"params must be VAEParams; got {type(params).__name__}")
    if len(params.decoder_weights) != 1 or params.sigma is None:
        raise ValueError(
            "params must be those of a linear VAE (hidden=()) with likelihood='normal'"
        )
    layers = {}
    for field in ("encoder_weights", "encoder_biases", "decoder_weights", "decoder_biases"):
        value = getattr(params, field)
        if not isinstance(value, tuple) or len(value) != 1:
            raise TypeError(f"params.{field} must be a tuple of one tensor (VAE.params())")
        layers[field] = as_array(value[0], f"params.{field}[0]")
    w, b = layers["decoder_weights"], layers["decoder_biases"]
    d, m_dim = w.shape if w.ndim == 2 else (0, 0)
    shapes = {
        "encoder_weights": (2 * m_dim, d),
        "encoder_biases": (2 * m_dim,),
        "decoder_weights": (d, m_dim),
        "decoder_biases": (d,),
    }
    for field, shape in shapes.items():
        value = layers[field]
        if tuple(value.shape) != shape or not d or not m_dim:
            raise ValueError(
                f"params.{field}[0] must have shape {shape} (a linear VAE's layers); got "
                f"{tuple(value.shape)}"
            )
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"params.{field}[0] must be finite")
    sigma = as_array(params.sigma, "params.sigma")
    if sigma.shape not in ((), (d,)) or not bool(((sigma > 0) & torch.isfinite(sigma)).all()):
        raise ValueError(f"params.sigma must be positive and finite, of shape () or ({d},)")
    t = as_data(x, "x", ndim=2, min_rows=1).to(w.dtype)
    if t.shape[1] != w.shape[0]:
        raise ValueError(f"x must have {w.shape[0]} columns; got {t.shape[1]}")
    h = t @ layers["encoder_weights"].T.to(t) + layers["encoder_biases"].to(t)
    m, log_var = h[:, :m_dim], h[:, m_dim:]
    s2 = torch.exp(log_var)
    sigma2 = (sigma.to(t) ** 2).expand(w.shape[0])
    resid = t - m @ w.T - b
    spread = s2 @ (w * w).T  # (N, D): sum_j W_dj^2 s_j^2
    expected = -0.5 * (torch.log(2 * math.pi * sigma2) + (resid**2 + spread) / sigma2).sum(-1)
    out = expected - _gaussian_kl(m, torch.exp(0.5 * log_var))
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"x overflows {t.dtype} in the ELBO (values too large): rescale x")
    return out


# ------------------------------------------------------------------------ Pyro model


class VAE(PyroModule):
    r"""A variational autoencoder: the model decodes :math:`z \sim \mathcal{N}(0, I)` at
    site ``"z"`` and observes ``"obs"`` in the plate ``"data"``; the guide is the amortized
    encoder :math:`q_\phi(z \mid x)`. Fit it with :func:`~ppl_models.inference.fit_svi`
    (``loss="trace"`` or ``"meanfield"``, ``num_particles=L``).

    Parameters
    ----------
    data_dim, latent_dim : int
        :math:`D` and :math:`M \ge 1`.
    hidden : sequence of int
        The encoder's hidden widths (the decoder mirrors them); ``()`` gives the linear
        VAE. Networks come from :func:`ppl_models.autoencoder.make_networks` with two
        encoder heads.
    likelihood : {"bernoulli", "normal"}
        Bernoulli with the decoder's output as logits (binary data), or normal around it
        with a learned scale.
    beta : float
        The weight of the KL term (beta-VAE); 1 is the ELBO.
    activation : str or nn.Module class
        Between layers (see :func:`ppl_models.autoencoder.mlp`).
    sigma : {"shared", "per_dim"}
        The normal likelihood's learned scale: one :math:`\sigma` (isotropic, as in PPCA,
        a ``PyroParam`` starting at 1) or one per dimension.
    seed : int
        Seeds the initial weights.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> x = (torch.rand(64, 6, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    >>> vae = VAE(6, 2, hidden=(8,))
    >>> fit = fit_svi(vae, x, loss="meanfield", num_steps=20, seed=0, progress=False)
    >>> vae.encode(x)[0].shape, vae.reconstruct(x).shape, vae.sample(3, seed=0).shape
    (torch.Size([64, 2]), torch.Size([64, 6]), torch.Size([3, 6]))
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (400,),
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        *,
        activation: str | type[nn.Module] = "relu",
        sigma: str = "shared",
        seed: int = 0,
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=1)
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.hidden = _check_sizes(hidden, "hidden", 0)
        self.likelihood = check_choice(likelihood, "likelihood", _LIKELIHOODS)
        self.beta = check_positive(beta, "beta", allow_tensor=False)
        self.encoder, self.decoder = make_networks(
            self.data_dim, self.latent_dim, self.hidden, activation, encoder_heads=2, seed=seed
        )
        if self.likelihood == "normal":
            shape = (
                ()
                if check_choice(sigma, "sigma", ["shared", "per_dim"]) == "shared"
                else (self.data_dim,)
            )
            self.sigma = PyroParam(torch.ones(shape), constraint=constraints.positive)
        else:
            self.sigma = None

    # -- data -------------------------------------------------------------------------

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        r"""Check ``x``: finite, ``(N, data_dim)``, only 0 and 1 for the bernoulli
        likelihood (called by :func:`~ppl_models.inference.fit_svi`).

        With the normal likelihood, data that the decoder's bias alone reproduces exactly
        are refused: every row the same (one shared :math:`\sigma`), or a constant column
        (``sigma="per_dim"``). There the likelihood has no maximum: :math:`\sigma \to 0`
        and the loss falls without bound (PPCA's closed form refuses the same data).
        """
        t = self._check_x(x, "x", min_rows=2)
        if self.likelihood == "normal":
            constant = (t.amax(0) - t.amin(0)) == 0
            if self.sigma.dim() == 0 and bool(constant.all()):
                raise ValueError(
                    "x has every row the same: with likelihood='normal' the decoder reproduces "
                    "it exactly, sigma -> 0 and the likelihood is unbounded; fit data that vary"
                )
            if self.sigma.dim() == 1 and bool(constant.any()):
                cols = constant.nonzero().flatten().tolist()
                raise ValueError(
                    f"x has constant columns {cols[:10]}{' ...' if len(cols) > 10 else ''}: "
                    "with sigma='per_dim' their sigma -> 0 and the likelihood is unbounded; "
                    "drop those columns or use sigma='shared'"
                )
        return (t,)

    def _check_x(self, x: object, name: str = "x", min_rows: int = 1) -> torch.Tensor:
        t = as_data(x, name, ndim=2, min_rows=min_rows)
        if t.shape[1] != self.data_dim:
            raise ValueError(
                f"{name} must have {self.data_dim} columns (data_dim); got {t.shape[1]}"
            )
        if self.likelihood == "bernoulli":
            try:
                check_binary(t, name)
            except ValueError as err:
                raise ValueError(
                    f"{err}; binarise the data (e.g. x > 0.5) or use likelihood='normal'"
                ) from None
        p = next(self.decoder.parameters())
        return t.to(device=p.device) if t.device != p.device else t

    def _net(self, t: torch.Tensor) -> torch.Tensor:
        p = next(self.decoder.parameters())
        return t.to(device=p.device, dtype=p.dtype)

    # -- the pieces of the model ------------------------------------------------------

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        loc, log_var = h[..., : self.latent_dim], h[..., self.latent_dim :]
        return loc, torch.exp(0.5 * log_var)

    def _likelihood(self, z: torch.Tensor) -> dist.Distribution:
        # The decoder runs in its own dtype; the likelihood in z's (the model's).
        out = self.decoder(self._net(z)).to(z)
        if self.likelihood == "bernoulli":
            # The data were checked binary at entry (validate_data); the per-step support
            # check of Pyro's validation would repeat that on every evaluation.
            fn = dist.Bernoulli(logits=out, validate_args=False)
        else:
            fn = dist.Normal(out, self.sigma.to(z), validate_args=False)
        return dist.Independent(fn, 1, validate_args=False)

    def _kl_scale(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.beta == 1.0 else poutine.scale(scale=self.beta)

    @pyro_method
    def model(self, x: torch.Tensor | None = None, *, num: int | None = None) -> torch.Tensor:
        r"""Sample ``"z"`` from :math:`\mathcal{N}(0, I)` and observe ``x`` at ``"obs"``
        given the decoder's output, in the plate ``"data"``. Without ``x``, draws ``num``
        points from the generative model. Returns the decoder's output (means or logits)."""
        if x is None:
            if num is None:
                raise ValueError("VAE.model needs the data x or the number of points num")
            n = check_int(num, "num", minimum=1)
        else:
            n = x.shape[0]
        like = promoted_like(self, x)
        zeros = like.new_zeros((n, self.latent_dim))
        if x is not None:
            x = x.to(like)
        prior = dist.Normal(zeros, 1.0, validate_args=False).to_event(1)
        with data_plate(n):
            with self._kl_scale():
                z = pyro.sample("z", prior)
            fn = self._likelihood(z.to(like))
            pyro.sample("obs", fn, obs=x)
        return fn.base_dist.logits if self.likelihood == "bernoulli" else fn.base_dist.loc

    @pyro_method
    def guide(self, x: torch.Tensor | None = None, *, num: int | None = None) -> torch.Tensor:
        r"""The amortized guide :math:`q_\phi(z \mid x) = \mathcal{N}(\mu_\phi(x),
        \operatorname{diag}\sigma^2_\phi(x))` at ``"z"``; returns the draw."""
        if x is None:
            raise ValueError("VAE.guide needs the data x: the encoder conditions on it")
        like = promoted_like(self, x)
        # The encoder runs in its own dtype; q(z | x) in the model's.
        loc, scale = self._posterior(self._net(x))
        loc, scale = loc.to(like), scale.to(like)
        with data_plate(x.shape[0]), self._kl_scale():
            return pyro.sample("z", dist.Normal(loc, scale, validate_args=False).to_event(1))

    def reparam_loss(self, x: torch.Tensor, *, analytic_kl: bool = False) -> torch.Tensor:
        r"""The negative ELBO of :meth:`model` and :meth:`guide` with one reparametrised
        draw, written in plain torch: :math:`-s\,\big(\ln p(x \mid z) - \beta\,k\big)`
        summed over the rows of ``x``, with :math:`z = \mu_\phi(x) + \sigma_\phi(x) \odot
        \epsilon`, :math:`k = \ln q(z \mid x) - \ln p(z)` (``Trace_ELBO``) or the closed-form
        KL (``analytic_kl``, ``TraceMeanField_ELBO``), and :math:`s = N / B` inside a
        minibatched fit (:func:`~ppl_models.inference.plate_scale`).

        The same number as Pyro's ELBO for the same :math:`\epsilon`, without traces,
        messengers and distribution objects, which cost about a fifth of a 784-400-20
        step (``python -m benchmarks.bench_vae --profile``).
        :func:`~ppl_models.inference.fit_svi` uses it only after its first evaluation has
        found it equal to Pyro's number with the same draws; a subclass that changes
        :meth:`model` or :meth:`guide` fails that check and trains through Pyro.
        """
        loc, scale = self._posterior(x)
        eps = torch.empty_like(loc).normal_()  # the draw Normal.rsample makes
        z = loc + eps * scale
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            log_lik = -F.binary_cross_entropy_with_logits(out, x, reduction="sum")
        else:
            sigma = self.sigma.expand(x.shape)
            log_lik = -(((x - out) / sigma) ** 2 / 2 + torch.log(sigma) + _LOG_2PI / 2).sum()
        if analytic_kl:
            kl = _gaussian_kl(loc, scale).sum()
        else:
            # ln q(z|x) - ln p(z); the 2 pi terms cancel.
            kl = (((z - loc) / scale) ** 2 / -2 - torch.log(scale) + z * z / 2).sum()
        return -plate_scale(x.shape[0]) * (log_lik - self.beta * kl)

    # -- using a fitted model --------------------------------------------------------

    def encode(self, x: object) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The guide's :math:`(\mu_\phi(x), \sigma_\phi(x))`, each ``(N, M)``, no gradient."""
        t = self._net(self._check_x(x))
        with torch.no_grad():
            return self._posterior(t)

    def decode(self, z: object) -> torch.Tensor:
        r"""The mean of :math:`p(x \mid z)`: :math:`g_\theta(z)` (normal) or
        :math:`\operatorname{sigmoid}(g_\theta(z))` (bernoulli), shape ``(N, D)``."""
        return decode_mean(self.decoder, z, self.latent_dim, self.likelihood)

    def reconstruct(self, x: object) -> torch.Tensor:
        r"""``decode`` of the guide's mean :math:`\mu_\phi(x)`, shape ``(N, D)``."""
        return self.decode(self.encode(x)[0])

    def sample(self, n: int, *, seed: int | None = None, mean: bool = True) -> torch.Tensor:
        r"""Draw ``n`` points from the generative model: :math:`z \sim \mathcal{N}(0, I)`,
        then the mean of :math:`p(x \mid z)` (``mean=True``) or a draw from it.

        Returns
        -------
        torch.Tensor, shape (n, D)
        """
        n = check_int(n, "n", minimum=1)
        p = next(self.decoder.parameters())
        gen = torch.Generator(device=p.device)
        gen.manual_seed(check_int(seed, "seed", minimum=0)) if seed is not None else gen.seed()
        z = torch.randn((n, self.latent_dim), generator=gen, dtype=p.dtype, device=p.device)
        with torch.no_grad():
            fn = self._likelihood(z).base_dist
            if mean:
                return fn.mean
            if self.likelihood == "bernoulli":
                return (
                    torch.rand(fn.probs.shape, generator=gen, dtype=p.dtype, device=p.device)
                    < fn.probs
                ).to(p.dtype)
            eps = torch.randn(fn.loc.shape, generator=gen, dtype=p.dtype, device=p.device)
            return fn.loc + fn.scale * eps

    def params(self) -> VAEParams:
        """The networks' affine layers and :math:`\\sigma`, detached copies."""

        def layers(net: nn.Sequential) -> tuple[tuple[torch.Tensor, ...], ...]:
            lin = [m for m in net if isinstance(m, nn.Linear)]
            return (
                tuple(m.weight.detach().clone() for m in lin),
                tuple(m.bias.detach().clone() for m in lin),
            )

        sigma = None if self.sigma is None else self.sigma.detach().clone()
        return VAEParams(*layers(self.encoder), *layers(self.decoder), sigma)


# ------------------------------------------------------------------------ evaluation


def _check_vae(model: object) -> VAE:
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a VAE; got {type(model).__name__}")
    return model


def _generator(seed: int | None, device: torch.device) -> torch.Generator:
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(check_int(seed, "seed", minimum=0))
    return gen


def _log_weights(
    model: VAE, x: torch.Tensor, k: int, gen: torch.Generator, analytic_kl: bool = False
) -> torch.Tensor:
    """``ln p(x|z_k) + ln p(z_k) - ln q(z_k|x)`` for ``k`` draws per row, shape (k, N); with
    ``analytic_kl`` the last two terms are replaced by ``-KL`` (the same in expectation)."""
    loc, scale = model._posterior(x)
    eps = torch.randn((k, *loc.shape), generator=gen, dtype=loc.dtype, device=loc.device)
    z = loc + scale * eps
    log_px = model._likelihood(z).log_prob(x)
    if analytic_kl:
        return log_px - _gaussian_kl(loc, scale)
    # ln p(z) - ln q(z|x) written with eps: the Gaussian constants cancel.
    log_pz_minus_qz = (-0.5 * (z * z - eps * eps) + torch.log(scale)).sum(-1)
    return log_px + log_pz_minus_qz


def _chunks(n: int, k: int, d: int, budget: int) -> tuple[int, int]:
    """Rows and draws per batch so that a (draws, rows, D) tensor holds at most ``budget``
    numbers."""
    per_row = max(1, budget // max(1, d))
    if k <= per_row:
        return max(1, min(n, per_row // k)), k
    return 1, per_row


def elbo(
    model: VAE,
    x: object,
    num_particles: int = 1,
    *,
    analytic_kl: bool = False,
    seed: int | None = 0,
    budget: int = 2**24,
) -> torch.Tensor:
    r"""The ELBO of every data point, estimated with ``num_particles`` draws from the guide.

    .. math::

        \hat{\mathcal{L}}(x) = \frac1L \sum_{l=1}^L \big[\ln p(x \mid z_l) + \ln p(z_l)
            - \ln q(z_l \mid x)\big]

    (``analytic_kl=True``: :math:`\frac1L\sum_l \ln p(x \mid z_l) - \operatorname{KL}`, as
    ``TraceMeanField_ELBO``). Always the bound of the generative model (:math:`\beta = 1`).

    Parameters
    ----------
    model : VAE
    x : array_like, shape (N, D)
    num_particles : int
        :math:`L`.
    analytic_kl : bool
        Use the closed-form KL (:func:`gaussian_kl`).
    seed : int, optional
        Seeds the draws (a private generator; the global ones are untouched).
    budget : int
        The most numbers in one batch of draws (memory).

    Returns
    -------
    torch.Tensor, shape (N,)
        In nats, per data point.

    Examples
    --------
    >>> vae = VAE(4, 2, hidden=(), likelihood="normal").double()
    >>> x = torch.randn(3, 4, dtype=torch.float64)
    >>> elbo(vae, x, 10).shape
    torch.Size([3])
    """
    return _estimate(model, x, num_particles, "num_particles", analytic_kl, seed, budget, False)


def log_likelihood(
    model: VAE,
    x: object,
    num_samples: int = 1000,
    *,
    seed: int | None = 0,
    budget: int = 2**24,
) -> torch.Tensor:
    r"""The importance-weighted estimate of :math:`\ln p(x)` of every data point
    (Burda et al. 2016), with the guide as proposal:

    .. math::

        \hat{\mathcal{L}}_K(x) = \ln \frac1K \sum_{k=1}^K
            \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)}, \qquad z_k \sim q(z \mid x).

    A lower bound in expectation that rises with :math:`K` towards :math:`\ln p(x)`. Draws
    are made in batches of at most ``budget`` numbers (rows times draws times ``D``), and
    the batches of one row combined by ``logsumexp``, so :math:`K = 5000` on a large test
    set fits in memory.

    Parameters
    ----------
    model : VAE
    x : array_like, shape (N, D)
    num_samples : int
        :math:`K`.
    seed : int, optional
        Seeds the draws (a private generator).
    budget : int
        The most numbers held in one batch.

    Returns
    -------
    torch.Tensor, shape (N,)

    Examples
    --------
    >>> vae = VAE(4, 2, hidden=(), likelihood="normal").double()
    >>> x = torch.randn(3, 4, dtype=torch.float64)
    >>> bool((log_likelihood(vae, x, 100) >= elbo(vae, x, 100) - 1.0).all())
    True
    """
    return _estimate(model, x, num_samples, "num_samples", False, seed, budget, True)


def _estimate(
    model: VAE,
    x: object,
    k: int,
    k_name: str,
    analytic_kl: bool,
    seed: int | None,
    budget: int,
    importance: bool,
) -> torch.Tensor:
    model = _check_vae(model)
    t = model._net(model._check_x(x))
    k = check_int(k, k_name, minimum=1)
    budget = check_int(budget, "budget", minimum=1)
    gen = _generator(seed, t.device)
    n = t.shape[0]
    rows, draws = _chunks(n, k, model.data_dim, budget)
    out = torch.empty(n, dtype=t.dtype, device=t.device)
    with torch.no_grad():
        for start in range(0, n, rows):
            xb = t[start : start + rows]
            acc = None
            for first in range(0, k, draws):
                lw = _log_weights(model, xb, min(draws, k - first), gen, analytic_kl)
                part = torch.logsumexp(lw, 0) if importance else lw.sum(0)
                acc = (
                    part
                    if acc is None
                    else (torch.logaddexp(acc, part) if importance else acc + part)
                )
            out[start : start + rows] = acc - math.log(k) if importance else acc / k
    return out


def _one_point(model: VAE, x: object, name: str) -> torch.Tensor:
    """One point, shape (D,) or (1, D), checked like the model's data; returned as (1, D)."""
    t = as_data(x, name, ndim=(1, 2), min_rows=1)
    if t.ndim == 2 and t.shape[0] != 1:
        raise ValueError(f"{name} must be one point, of shape (D,) or (1, D); got {tuple(t.shape)}")
    return model._check_x(t.reshape(1, -1), name)


def interpolate(model: VAE, x_a: object, x_b: object, steps: int = 8) -> torch.Tensor:
    r"""Decode the straight line between the guide's means of two points:
    :math:`g_\theta\big((1 - t)\mu_\phi(x_a) + t\,\mu_\phi(x_b)\big)`, :math:`t` from 0 to 1.

    Parameters
    ----------
    model : VAE
    x_a, x_b : array_like, shape (D,) or (1, D)
    steps : int
        Points on the line, ends included (at least 2).

    Returns
    -------
    torch.Tensor, shape (steps, D)
    """
    model = _check_vae(model)
    steps = check_int(steps, "steps", minimum=2)
    za = model.encode(_one_point(model, x_a, "x_a"))[0]
    zb = model.encode(_one_point(model, x_b, "x_b"))[0]
    t = torch.linspace(0, 1, steps, dtype=za.dtype, device=za.device)[:, None]
    return model.decode((1 - t) * za + t * zb)


def latent_traversal(model: VAE, x: object, values: object) -> torch.Tensor:
    r"""Vary one latent coordinate at a time around the guide's mean of ``x``, the others
    held: the picture of what each coordinate encodes (beta-VAE's disentangling).

    Parameters
    ----------
    model : VAE
    x : array_like, shape (D,) or (1, D)
    values : array_like, shape (V,)
        The values given to each coordinate in turn.

    Returns
    -------
    torch.Tensor, shape (M, V, D)
        Row ``j`` decodes :math:`\mu_\phi(x)` with coordinate ``j`` set to each value.
    """
    model = _check_vae(model)
    z0 = model.encode(_one_point(model, x, "x"))[0][0]
    v = as_data(values, "values", ndim=1, min_rows=1).to(z0)
    m = model.latent_dim
    z = z0.expand(m, len(v), m).clone()
    for j in range(m):
        z[j, :, j] = v
    return model.decode(z.reshape(-1, m)).reshape(m, len(v), -1)
