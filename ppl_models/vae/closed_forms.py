r"""The VAE's reference solutions in plain torch: its parameters container, the KL
divergence to the standard normal, and the exact ELBO of the linear VAE."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._checks import (
    as_array,
    as_data,
)

LIKELIHOODS = ("bernoulli", "normal")
LOG_2PI = math.log(2 * math.pi)


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
    return unchecked_gaussian_kl(loc, scale)


def unchecked_gaussian_kl(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
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
    >>> from ppl_models.vae import VAE, log_likelihood
    >>> vae = VAE(4, 2, hidden=(), likelihood="normal").double()
    >>> x = torch.randn(5, 4, dtype=torch.float64)
    >>> bool((linear_elbo(vae.params(), x) <= log_likelihood(vae, x, 1000, seed=0) + 1e-9).all())
    True
    """
    if not isinstance(params, VAEParams):
        raise TypeError(f"params must be VAEParams; got {type(params).__name__}")
    decoder = params.decoder_weights
    if (isinstance(decoder, tuple) and len(decoder) != 1) or params.sigma is None:
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
    out = expected - unchecked_gaussian_kl(m, torch.exp(0.5 * log_var))
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"x overflows {t.dtype} in the ELBO (values too large): rescale x")
    return out
