r"""Autoencoders as likelihoods: plain, denoising and linear, fitted by maximum likelihood.

The mathematics
---------------
An encoder :math:`f_\phi: \mathbb{R}^D \to \mathbb{R}^M` and a decoder
:math:`g_\theta: \mathbb{R}^M \to \mathbb{R}^D` (multilayer perceptrons) define the
reconstruction :math:`\hat x_n = g_\theta(f_\phi(\tilde x_n))` of a possibly corrupted input
:math:`\tilde x_n \sim C(\tilde x \mid x_n)`. The model observes the clean data under

.. math::

    x_{nd} \sim \mathcal{N}(\hat x_{nd}, \sigma_d^2)
    \quad\text{(normal)}
    \qquad\text{or}\qquad
    x_{nd} \sim \operatorname{Bernoulli}\big(\operatorname{sigmoid}(a_{nd})\big),\
    a_n = g_\theta(f_\phi(\tilde x_n))
    \quad\text{(bernoulli)}.

There are no latent random variables, so the guide is empty and the negative ELBO of
:func:`~ppl_models.inference.fit_svi` is the negative log-likelihood (Goodfellow et al.,
*Deep Learning*, 14.1 and 5.5):

.. math::

    -\ln p(x) &= \frac{ND}{2}\ln(2\pi\sigma^2)
        + \frac{1}{2\sigma^2}\sum_{n,d}(x_{nd} - \hat x_{nd})^2
        \quad\text{(normal, one } \sigma\text{)}, \\
    -\ln p(x) &= \sum_{n,d} \big[\operatorname{softplus}(a_{nd}) - x_{nd} a_{nd}\big]
        = \sum_{n,d} \operatorname{BCE}(a_{nd}, x_{nd})
        \quad\text{(bernoulli)}.

Maximum likelihood with a fixed :math:`\sigma` is least squares (MSE); with a learned
:math:`\sigma` the optimum over :math:`\sigma` for any networks is
:math:`\sigma^2 = \mathrm{MSE} = \frac{1}{ND}\sum_{n,d}(x_{nd} - \hat x_{nd})^2` (per
dimension: :math:`\sigma_d^2` = that column's MSE), where
:math:`-\ln p = \frac{ND}{2}(\ln(2\pi\,\mathrm{MSE}) + 1)`, still minimised by least squares.
The bernoulli likelihood is the binary cross-entropy; it accepts targets in
:math:`[0, 1]` (grey levels), where it is the usual cross-entropy loss but not a normalised
density (the continuous Bernoulli of Loaiza-Ganem & Cunningham 2019 would add a constant).

**Linear autoencoder.** With no hidden layers the encoder and decoder are affine,
:math:`\hat x = W_d (W_e x + b_e) + b_d`, a rank-:math:`M` affine map. Under the normal
likelihood its optimum is the PCA reconstruction: :math:`\operatorname{span}(W_d)` is the
principal subspace, every local minimum is global and the other critical points are saddles
(Baldi & Hornik 1989); :math:`W_d` itself is determined only up to an invertible
:math:`M \times M` mixing (:math:`W_d A`, :math:`A^{-1} W_e`), so compare subspaces
(:func:`ppl_models.pca.projector_distance`). :func:`linear_optimum` gives it in closed form.

**Denoising autoencoder** (Vincent et al. 2008). With ``corruption`` :math:`\nu > 0`
the encoder sees :math:`\tilde x`: masking noise sets each input entry to 0 with probability
:math:`\nu` (``noise="mask"``), Gaussian noise adds :math:`\mathcal{N}(0, \nu^2)` to every
entry (``noise="gaussian"``, data on a unit scale). A new corruption is drawn at every
evaluation of the model (torch's generator, seeded by ``fit_svi``'s ``seed``); the
likelihood is always that of the clean :math:`x`. :meth:`Autoencoder.reconstruct` does not
corrupt.

============================  ===============================  ====================
symbol                        argument / attribute             shape
============================  ===============================  ====================
:math:`x_n`                   ``x``                            ``(N, D)``
:math:`D`, :math:`M`          ``data_dim``, ``latent_dim``
:math:`f_\phi`                ``Autoencoder.encoder``          ``(N, D) -> (N, M)``
:math:`g_\theta`              ``Autoencoder.decoder``          ``(N, M) -> (N, D)``
:math:`\sigma`                ``Autoencoder.sigma``, site -    ``()`` or ``(D,)``
:math:`\nu`                   ``corruption``
:math:`W_e, b_e, W_d, b_d`    ``AutoencoderParams`` fields     see there
============================  ===============================  ====================

Data and dtypes follow the library's conventions: data enter once, through
:func:`ppl_models._checks.as_data`, and the Pyro model computes in torch's promotion of
the module's and the data's dtypes (:func:`ppl_models._checks.promoted_like`), on the
data's device. The networks run in their own (the module's) dtype, their input cast to
it and their output to the computation dtype.

References
----------
P. Baldi, K. Hornik, *Neural networks and principal component analysis: learning from
examples without local minima*, Neural Networks 2 (1989) 53-58.
P. Vincent, H. Larochelle, Y. Bengio, P.-A. Manzagol, *Extracting and composing robust
features with denoising autoencoders*, ICML 2008.
I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning* (2016), chapter 14.
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), section 12.4.2.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam
from torch import nn

from ._checks import as_data, check_choice, check_int, check_positive, check_sizes, promoted_like
from .inference import data_plate, local_pyro_method
from .pca import fit as pca_fit

__all__ = [
    "ACTIVATIONS",
    "Autoencoder",
    "AutoencoderParams",
    "EncoderDecoder",
    "affine_layers",
    "corrupt",
    "decode_mean",
    "linear_optimum",
    "make_networks",
    "mlp",
    "negative_log_likelihood",
]

#: Activation names accepted by :func:`mlp`.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}
_LIKELIHOODS = ("normal", "bernoulli")
_NOISES = ("mask", "gaussian")


class AutoencoderParams(NamedTuple):
    r"""The affine layers of an autoencoder, detached.

    ``nn.Linear`` convention: layer :math:`k` maps :math:`h \mapsto W_k h + b_k` with
    ``W_k`` of shape ``(out, in)``.

    Attributes
    ----------
    encoder_weights, encoder_biases : tuple of torch.Tensor
        The encoder's layers, input first; the last weight has shape ``(M, ...)``.
    decoder_weights, decoder_biases : tuple of torch.Tensor
        The decoder's layers; the last weight has shape ``(D, ...)``. For a linear
        autoencoder ``decoder_weights[0]`` is :math:`W_d`, shape ``(D, M)``.
    sigma : torch.Tensor or None
        The normal likelihood's noise scale, shape ``()`` or ``(D,)``; ``None`` for the
        bernoulli likelihood.
    """

    encoder_weights: tuple[torch.Tensor, ...]
    encoder_biases: tuple[torch.Tensor, ...]
    decoder_weights: tuple[torch.Tensor, ...]
    decoder_biases: tuple[torch.Tensor, ...]
    sigma: torch.Tensor | None


# ------------------------------------------------------------------------ networks


def _activation(activation: str | type[nn.Module] | None, name: str) -> nn.Module:
    if activation is None:
        return nn.Identity()
    if isinstance(activation, str):
        return ACTIVATIONS[check_choice(activation, name, list(ACTIVATIONS))]()
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    raise TypeError(
        f"{name} must be one of {list(ACTIVATIONS)} or an nn.Module class; got {activation!r}"
    )


def mlp(
    sizes: Sequence[int],
    activation: str | type[nn.Module] = "relu",
    output_activation: str | type[nn.Module] | None = None,
) -> nn.Sequential:
    r"""A multilayer perceptron: ``Linear(sizes[0], sizes[1])``, activation, ...,
    ``Linear(sizes[-2], sizes[-1])``, then ``output_activation`` (none by default).

    The building block of :class:`Autoencoder` and of the variational autoencoder's
    encoder and decoder.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, at least two.
    activation : str or nn.Module class
        Between layers: one of :data:`ACTIVATIONS` or a module class built with no
        arguments.
    output_activation : str or nn.Module class, optional
        After the last layer; the output is affine when omitted.

    Returns
    -------
    torch.nn.Sequential
        Weights initialised by torch's default (from its global generator: seed it, or use
        :func:`make_networks`, which takes a seed).

    Examples
    --------
    >>> net = mlp([4, 8, 2], activation="tanh")
    >>> net
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): Tanh()
      (2): Linear(in_features=8, out_features=2, bias=True)
    )
    >>> net(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """
    sizes = check_sizes(sizes, "sizes", 2)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(_activation(activation, "activation"))
    if output_activation is not None:
        layers.append(_activation(output_activation, "output_activation"))
    return nn.Sequential(*layers)


def affine_layers(net: nn.Module) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The weights and the biases of a network's ``nn.Linear`` layers, in order, as
    detached copies: the parameters of :class:`AutoencoderParams` and
    :class:`ppl_models.vae.VAEParams`."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch network (nn.Module); got {type(net).__name__}")
    lin = [m for m in net.modules() if isinstance(m, nn.Linear)]
    return (
        tuple(m.weight.detach().clone() for m in lin),
        tuple(m.bias.detach().clone() for m in lin),
    )


def make_networks(
    data_dim: int,
    latent_dim: int,
    hidden: Sequence[int] = (),
    activation: str | type[nn.Module] = "relu",
    *,
    encoder_heads: int = 1,
    seed: int | None = 0,
) -> tuple[nn.Sequential, nn.Sequential]:
    r"""A mirror-image encoder and decoder: ``D -> hidden -> heads * M`` and
    ``M -> reversed(hidden) -> D``, both with affine outputs.

    Parameters
    ----------
    data_dim, latent_dim : int
        :math:`D` and :math:`M`.
    hidden : sequence of int
        Hidden widths of the encoder (the decoder uses them reversed); empty for affine
        maps (a linear autoencoder).
    activation : str or nn.Module class
        See :func:`mlp`.
    encoder_heads : int
        The encoder outputs ``encoder_heads * latent_dim`` numbers (2 for a variational
        encoder's location and scale).
    seed : int, optional
        Seeds the initial weights (torch's global generator is left as it was); ``None``
        draws from the global generator.

    Returns
    -------
    (encoder, decoder) : tuple of torch.nn.Sequential

    Examples
    --------
    >>> enc, dec = make_networks(64, 2, hidden=(32,), encoder_heads=2)
    >>> enc(torch.zeros(5, 64)).shape, dec(torch.zeros(5, 2)).shape
    (torch.Size([5, 4]), torch.Size([5, 64]))
    """
    data_dim = check_int(data_dim, "data_dim", minimum=1)
    latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
    hidden = check_sizes(hidden, "hidden", 0)
    heads = check_int(encoder_heads, "encoder_heads", minimum=1)

    def build() -> tuple[nn.Sequential, nn.Sequential]:
        enc = mlp((data_dim, *hidden, heads * latent_dim), activation)
        dec = mlp((latent_dim, *reversed(hidden), data_dim), activation)
        return enc, dec

    if seed is None:
        return build()
    seed = check_int(seed, "seed", minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# ---------------------------------------------------------------- reference solutions


def corrupt(
    x: object,
    corruption: float,
    noise: str = "mask",
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Corrupt inputs as a denoising autoencoder does: masking noise (each entry set to 0
    with probability ``corruption``) or additive Gaussian noise of standard deviation
    ``corruption``.

    Parameters
    ----------
    x : array_like, shape (N, D)
    corruption : float
        :math:`\nu \in [0, 1)`.
    noise : {"mask", "gaussian"}
    seed : int, optional
        Seeds a private generator; otherwise ``generator``, otherwise torch's global one.
    generator : torch.Generator, optional

    Returns
    -------
    torch.Tensor, shape (N, D)
        A new tensor in the dtype of ``x``.

    Examples
    --------
    >>> x = torch.ones(2, 1000, dtype=torch.float64)
    >>> kept = float(corrupt(x, 0.25, seed=0).mean())  # about 1 - 0.25
    >>> abs(kept - 0.75) < 0.05
    True
    """
    t = as_data(x, "x", ndim=2, min_rows=1)
    nu = _check_corruption(corruption)
    noise = check_choice(noise, "noise", _NOISES)
    if seed is not None:
        generator = torch.Generator(device=t.device).manual_seed(check_int(seed, "seed", minimum=0))
    return _corrupt(t, nu, noise, generator)


def _corrupt(
    x: torch.Tensor, nu: float, noise: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    if nu == 0:
        return x
    if noise == "mask":
        keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= nu
        return x * keep
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + nu * eps


def _check_corruption(corruption: object) -> float:
    if isinstance(corruption, bool) or not isinstance(corruption, numbers.Real):
        raise TypeError(f"corruption must be a number in [0, 1); got {corruption!r}")
    nu = float(corruption)
    if not (0.0 <= nu < 1.0):
        raise ValueError(f"corruption must be in [0, 1); got {corruption!r}")
    return nu


def negative_log_likelihood(
    x: object,
    output: object,
    likelihood: str = "normal",
    sigma: float | torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The autoencoder's negative log-likelihood, written with torch's losses.

    Normal: :math:`\frac{ND}{2}\ln(2\pi\sigma^2) + \frac{1}{2\sigma^2}\sum(x - \hat x)^2`
    (per-dimension :math:`\sigma_d` summed likewise), where the sum of squares is
    :math:`ND` times ``F.mse_loss``; with ``sigma=None`` the maximum-likelihood
    :math:`\sigma^2 = \mathrm{MSE}` is plugged in, giving
    :math:`\frac{ND}{2}(\ln(2\pi\,\mathrm{MSE}) + 1)`. Bernoulli: the summed
    ``F.binary_cross_entropy_with_logits``.

    Parameters
    ----------
    x : array_like, shape (N, D)
        The data.
    output : array_like, shape (N, D)
        The reconstructions :math:`\hat x` (normal) or the logits :math:`a` (bernoulli).
    likelihood : {"normal", "bernoulli"}
    sigma : float or tensor of shape () or (D,), optional
        The normal likelihood's scale; its maximum-likelihood value when omitted.

    Returns
    -------
    torch.Tensor
        0-d, in the promoted dtype.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    >>> float(negative_log_likelihood(x, x + 1, sigma=1.0)) == math.log(2 * math.pi) + 1
    True
    """
    likelihood = check_choice(likelihood, "likelihood", _LIKELIHOODS)
    t = as_data(x, "x", ndim=2, min_rows=1)
    out = as_data(output, "output", ndim=2, min_rows=1)
    if out.shape != t.shape:
        raise ValueError(
            f"output must have the shape of x {tuple(t.shape)}; got {tuple(out.shape)}"
        )
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(out, t, reduction="sum")
    n, d = t.shape
    if sigma is None:
        mse = F.mse_loss(out, t)
        if not float(mse) > 0:
            raise ValueError(
                "output reproduces x exactly: the maximum-likelihood sigma is 0 and the "
                "likelihood unbounded; pass sigma"
            )
        return 0.5 * n * d * (torch.log(2 * math.pi * mse) + 1)
    s = torch.as_tensor(check_positive(sigma, "sigma"), dtype=t.dtype, device=t.device)
    if s.ndim > 1 or (s.ndim == 1 and s.shape[0] not in (1, d)):
        raise ValueError(f"sigma must be a scalar or have shape ({d},); got {tuple(s.shape)}")
    if not bool(((s * s > 0) & torch.isfinite(s * s)).all()):
        raise ValueError(
            f"sigma must have a square that {t.dtype} represents (neither 0 nor inf); got "
            f"{s.tolist()}"
        )
    col_sse = F.mse_loss(out, t, reduction="none").sum(0)
    return (0.5 * n * torch.log(2 * math.pi * s**2) * torch.ones(d, dtype=t.dtype)).sum() + (
        col_sse / (2 * s**2)
    ).sum()


def decode_mean(decoder: nn.Module, z: object, latent_dim: int, likelihood: str) -> torch.Tensor:
    r"""The mean of :math:`p(x \mid z)` from a decoder network: :math:`g_\theta(z)` for the
    normal likelihood, :math:`\operatorname{sigmoid}(g_\theta(z))` for the Bernoulli one;
    ``z`` of shape (N, latent_dim) is checked and moved to the network's device and dtype.
    No gradient. :meth:`EncoderDecoder.decode` of :class:`Autoencoder` and
    :class:`ppl_models.vae.VAE`."""
    if not isinstance(decoder, nn.Module) or next(decoder.parameters(), None) is None:
        raise TypeError(
            f"decoder must be a torch network (nn.Module with parameters); got "
            f"{type(decoder).__name__}"
        )
    latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
    likelihood = check_choice(likelihood, "likelihood", _LIKELIHOODS)
    t = as_data(z, "z", ndim=2, min_rows=1)
    if t.shape[1] != latent_dim:
        raise ValueError(f"z must have {latent_dim} columns (latent_dim); got {t.shape[1]}")
    p = next(decoder.parameters())
    with torch.no_grad():
        try:
            out = decoder(t.to(device=p.device, dtype=p.dtype))
        except RuntimeError as err:  # a network that does not take latent_dim inputs
            raise ValueError(
                f"decoder cannot decode z of {latent_dim} columns (latent_dim): {err}"
            ) from None
    return torch.sigmoid(out) if likelihood == "bernoulli" else out


def linear_optimum(x: object, latent_dim: int) -> AutoencoderParams:
    r"""The maximum-likelihood linear autoencoder (normal likelihood, one learned
    :math:`\sigma`) in closed form, from PCA (Baldi & Hornik 1989).

    :math:`W_e = U_M^\top`, :math:`b_e = -U_M^\top \bar x`, :math:`W_d = U_M`,
    :math:`b_d = \bar x`, and :math:`\sigma^2 = J / D` with
    :math:`J = \sum_{i > M}\lambda_i` the mean squared reconstruction error per data point
    (PRML 12.18). Any :math:`(W_d A, A^{-1} W_e)` with invertible :math:`A` is optimal too.

    Parameters
    ----------
    x : array_like, shape (N, D)
    latent_dim : int
        :math:`M`, with :math:`1 \le M < D`.

    Returns
    -------
    AutoencoderParams
        One layer each; ``sigma`` of shape ``()``.

    Examples
    --------
    >>> x = torch.tensor([[2.0, 2.0], [-2.0, -2.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> p = linear_optimum(x, 1)
    >>> round(float(p.sigma**2), 12)  # J / D = 1 / 2: the discarded eigenvalue is 1
    0.5
    """
    t = as_data(x, "x", ndim=2, min_rows=2)
    n, d = t.shape
    m = check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)
    # Beyond min(N, D) the eigenvalues are zero: the leading min(N, D) pairs give J.
    full = pca_fit(t, min(n, d))
    u = full.components[:, :m]
    j = full.explained_variance[m:].clamp_min(0).sum()
    if u.shape[1] < m or not float(j) > 4 * d * torch.finfo(torch.float64).eps * float(
        full.explained_variance[0]
    ):
        raise ValueError(
            f"x has no variance outside its leading {m} directions: the maximum-likelihood "
            "sigma is 0 and the likelihood unbounded; use a smaller latent_dim"
        )
    return AutoencoderParams(
        (u.T.clone(),),
        (-(u.T @ full.mean),),
        (u.clone(),),
        (full.mean.clone(),),
        torch.sqrt(j / d),
    )


# ------------------------------------------------------------------------ Pyro model


class EncoderDecoder(PyroModule):
    r"""What :class:`Autoencoder` and :class:`ppl_models.vae.VAE` share: the sizes
    :math:`D`, :math:`M` and the hidden widths, the likelihood, an encoder :math:`f_\phi`
    with ``encoder_heads * M`` outputs and its mirror-image decoder :math:`g_\theta`
    (:func:`make_networks`), and :meth:`decode`. The arguments are checked as in
    :class:`Autoencoder`."""

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: Sequence[int],
        likelihood: str,
        activation: str | type[nn.Module],
        *,
        encoder_heads: int,
        seed: int,
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=1)
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.hidden = check_sizes(hidden, "hidden", 0)
        self.likelihood = check_choice(likelihood, "likelihood", _LIKELIHOODS)
        self.encoder, self.decoder = make_networks(
            self.data_dim,
            self.latent_dim,
            self.hidden,
            activation,
            encoder_heads=encoder_heads,
            seed=seed,
        )

    def decode(self, z: object) -> torch.Tensor:
        r"""The mean of :math:`p(x \mid z)`: :math:`g_\theta(z)` (normal) or
        :math:`\operatorname{sigmoid}(g_\theta(z))` (bernoulli), shape ``(N, D)``."""
        return decode_mean(self.decoder, z, self.latent_dim, self.likelihood)


class Autoencoder(EncoderDecoder):
    r"""An autoencoder as a Pyro model: ``"obs"`` (plate ``"data"``) observes the clean
    :math:`x` given :math:`g_\theta(f_\phi(\tilde x))`; the guide is empty, so
    :func:`~ppl_models.inference.fit_svi` is maximum likelihood (see the module docstring).

    Parameters
    ----------
    data_dim : int
        :math:`D`.
    latent_dim : int
        :math:`M` (at least 1; an overcomplete code, :math:`M \ge D`, is allowed, and is
        useful only with corruption).
    hidden : sequence of int
        The encoder's hidden widths (the decoder mirrors them); ``()`` gives affine maps,
        the linear autoencoder.
    likelihood : {"normal", "bernoulli"}
        Gaussian noise around the decoder's output, or Bernoulli with the decoder's output
        as logits (data in :math:`[0, 1]`).
    corruption : float
        :math:`\nu \in [0, 1)`; ``> 0`` makes a denoising autoencoder.
    noise : {"mask", "gaussian"}
        The corruption: masking (entries set to 0 with probability :math:`\nu`) or additive
        :math:`\mathcal{N}(0, \nu^2)`.
    activation : str or nn.Module class
        Between layers (see :func:`mlp`); unused with ``hidden=()``.
    sigma : "shared", "per_dim" or float
        The normal likelihood's scale: one learned :math:`\sigma` (a ``PyroParam``,
        starting at 1), one per dimension, or a fixed value (a constant, kept as a
        Python float so that it has full precision in any dtype). The learned value
        goes to :math:`\sigma^2 = \mathrm{MSE}` (per column for ``"per_dim"``). Ignored by
        the bernoulli likelihood.
    seed : int
        Seeds the initial weights.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> x = torch.rand(50, 6, dtype=torch.float64)
    >>> ae = Autoencoder(6, 2, hidden=(8,), likelihood="bernoulli", corruption=0.2)
    >>> fit = fit_svi(ae, x, num_steps=20, seed=0, progress=False)
    >>> ae.reconstruct(x).shape, ae.encode(x).shape
    (torch.Size([50, 6]), torch.Size([50, 2]))
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (),
        likelihood: str = "normal",
        corruption: float = 0.0,
        *,
        noise: str = "mask",
        activation: str | type[nn.Module] = "relu",
        sigma: str | float = "shared",
        seed: int = 0,
    ):
        super().__init__(
            data_dim, latent_dim, hidden, likelihood, activation, encoder_heads=1, seed=seed
        )
        self.corruption = _check_corruption(corruption)
        self.noise = check_choice(noise, "noise", _NOISES)
        self.sigma_mode = "fixed"
        if self.likelihood == "normal":
            if isinstance(sigma, str):
                self.sigma_mode = check_choice(sigma, "sigma", ["shared", "per_dim"])
                shape = () if sigma == "shared" else (self.data_dim,)
                self.sigma = PyroParam(torch.ones(shape), constraint=constraints.positive)
            else:
                # A Python float, not a buffer: a float32 buffer would round 0.7 to
                # 0.699999988 for good, even after the module moves to float64.
                self.sigma = check_positive(sigma, "sigma", allow_tensor=False)
        else:
            self.sigma = None

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x``: finite, ``(N, data_dim)``, in :math:`[0, 1]` for the bernoulli
        likelihood (called by :func:`~ppl_models.inference.fit_svi`)."""
        return (self._check_x(x, "x", min_rows=2),)

    def _check_x(self, x: object, name: str, min_rows: int = 1) -> torch.Tensor:
        t = as_data(x, name, ndim=2, min_rows=min_rows)
        if t.shape[1] != self.data_dim:
            raise ValueError(
                f"{name} must have {self.data_dim} columns (data_dim); got {t.shape[1]}"
            )
        if self.likelihood == "bernoulli":
            bad = int(((t < 0) | (t > 1)).sum())
            if bad:
                raise ValueError(
                    f"{name} must lie in [0, 1] for the bernoulli likelihood; it has {bad} "
                    f"value(s) outside, range [{float(t.min()):g}, {float(t.max()):g}] "
                    "(rescale, e.g. digits / 16)"
                )
        return t

    def _net_input(self, x: torch.Tensor) -> torch.Tensor:
        p = next(self.encoder.parameters())
        return x.to(device=p.device, dtype=p.dtype)

    @local_pyro_method
    def model(self, x: torch.Tensor | None = None) -> torch.Tensor:
        r"""Observe ``x`` at ``"obs"`` given the reconstruction of its corrupted copy;
        returns the decoder's output (means, or logits for the bernoulli likelihood)."""
        if x is None:
            raise ValueError(
                "Autoencoder.model needs the data x: an autoencoder's likelihood is that of x "
                "given its own reconstruction, not a generative model (see ppl_models.vae)"
            )
        like = promoted_like(self, x)
        x = x.to(like)
        x_tilde = _corrupt(x, self.corruption, self.noise)
        # The networks run in their own dtype; the likelihood in the promoted one.
        out = self.decoder(self.encoder(self._net_input(x_tilde))).to(like)
        with data_plate(x.shape[0]):
            if self.likelihood == "normal":
                fn = dist.Normal(out, self._scale(out))
            else:
                # Grey levels in [0, 1] are accepted (the cross-entropy loss); the support
                # check of a Bernoulli would refuse them, hence validate_args=False.
                fn = dist.Bernoulli(logits=out, validate_args=False)
            pyro.sample("obs", dist.Independent(fn, 1, validate_args=False), obs=x)
        return out

    def guide(self, x: torch.Tensor | None = None) -> None:
        """The empty guide: no latent variables, so SVI is maximum likelihood."""

    def _scale(self, like: torch.Tensor) -> torch.Tensor:
        if isinstance(self.sigma, float):
            return like.new_tensor(self.sigma)
        return self.sigma.to(like)

    def encode(self, x: object) -> torch.Tensor:
        r"""The codes :math:`f_\phi(x)`, shape ``(N, M)`` (no corruption, no gradient)."""
        t = self._net_input(self._check_x(x, "x"))
        with torch.no_grad():
            return self.encoder(t)

    def reconstruct(self, x: object) -> torch.Tensor:
        """``decode(encode(x))``: the mean reconstruction of ``x`` as given (not corrupted:
        pass :func:`corrupt`'s output to denoise), shape ``(N, D)``."""
        return self.decode(self.encode(x))

    def params(self) -> AutoencoderParams:
        """The affine layers and :math:`\\sigma`, detached copies."""
        w = self.decoder[-1].weight
        sigma = None if self.sigma is None else self._scale(w).detach().clone()
        return AutoencoderParams(*affine_layers(self.encoder), *affine_layers(self.decoder), sigma)
