r"""A fitted VAE evaluated: the ELBO and the importance-weighted bound on its
log-likelihood, and walks through its latent space."""

from __future__ import annotations

import math

import torch

from .._checks import (
    as_data,
    check_int,
)
from .closed_forms import unchecked_gaussian_kl
from .model import VAE

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
        return log_px - unchecked_gaussian_kl(loc, scale)
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
    model, x, seed, budget
        As in :func:`log_likelihood`.
    num_particles : int
        :math:`L`.
    analytic_kl : bool
        Use the closed-form KL (:func:`gaussian_kl`).

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
        The fitted model; its guide is the proposal.
    x : array_like, shape (N, D)
        The points to evaluate (held-out ones to measure generalisation).
    num_samples : int
        :math:`K`.
    seed : int, optional
        Seeds the draws (a private generator; the global ones are untouched).
    budget : int
        The most numbers held in one batch of draws (memory).

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
