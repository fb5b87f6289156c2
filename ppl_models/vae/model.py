r"""The variational autoencoder as a Pyro model: :class:`VAE`, decoder and amortized
encoder, its ELBO in plain torch under licence."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.nn import PyroParam
from torch import nn
from torch.nn import functional as F

from .._checks import (
    as_data,
    check_binary,
    check_choice,
    check_int,
    check_positive,
    promoted_like,
)
from .._deprecation import renamed_keywords
from ..autoencoder import EncoderDecoder, affine_layers
from ..inference import data_plate, local_pyro_method, plate_scale
from .closed_forms import LOG_2PI, VAEParams, unchecked_gaussian_kl

# ------------------------------------------------------------------------ Pyro model


class VAE(EncoderDecoder):
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
        super().__init__(
            data_dim, latent_dim, hidden, likelihood, activation, encoder_heads=2, seed=seed
        )
        self.beta = check_positive(beta, "beta", allow_tensor=False)
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

    @renamed_keywords(num="num_points")
    @local_pyro_method
    def model(
        self, x: torch.Tensor | None = None, *, num_points: int | None = None
    ) -> torch.Tensor:
        r"""Sample ``"z"`` from :math:`\mathcal{N}(0, I)` and observe ``x`` at ``"obs"``
        given the decoder's output, in the plate ``"data"``. Without ``x``, draws
        ``num_points`` points from the generative model (``num`` is its deprecated old
        name). Returns the decoder's output (means or logits)."""
        if x is None:
            if num_points is None:
                raise ValueError("VAE.model needs the data x or the number of points num_points")
            n = check_int(num_points, "num_points", minimum=1)
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

    @renamed_keywords(num="num_points")
    @local_pyro_method
    def guide(
        self, x: torch.Tensor | None = None, *, num_points: int | None = None
    ) -> torch.Tensor:
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
            log_lik = -(((x - out) / sigma) ** 2 / 2 + torch.log(sigma) + LOG_2PI / 2).sum()
        if analytic_kl:
            kl = unchecked_gaussian_kl(loc, scale).sum()
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

    def reconstruct(self, x: object) -> torch.Tensor:
        r"""``decode`` of the guide's mean :math:`\mu_\phi(x)`, shape ``(N, D)``."""
        return self.decode(self.encode(x)[0])

    @renamed_keywords(n="num_points")
    def sample(
        self, num_points: int, *, seed: int | None = None, mean: bool = True
    ) -> torch.Tensor:
        r"""Draw ``num_points`` points from the generative model (``n`` is its deprecated
        old keyword): :math:`z \sim \mathcal{N}(0, I)`, then the mean of
        :math:`p(x \mid z)` (``mean=True``) or a draw from it.

        Returns
        -------
        torch.Tensor, shape (num_points, D)
        """
        n = check_int(num_points, "num_points", minimum=1)
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
        sigma = None if self.sigma is None else self.sigma.detach().clone()
        return VAEParams(*affine_layers(self.encoder), *affine_layers(self.decoder), sigma)
