r"""Sufficient statistics over the processes: the moments of every shard combined in rank
order, and the closed forms of PCA and PPCA from them."""

from __future__ import annotations

import torch
import torch.distributed as tdist

from .._checks import as_data
from .._deprecation import renamed_keywords
from .._numerics import Moments, is_stream, moments
from ..pca import PCAParams
from ..pca import fit as pca_fit
from ..ppca import PPCAParams, closed_form
from ._group import collective, rank_and_world

# ------------------------------------------------------------ sufficient statistics


def _local_moments(x: object) -> tuple[Moments, torch.dtype, int]:
    if is_stream(x):
        mom, dtype = moments(x, name="x_shard")
        return mom, dtype, mom.mean.shape[0]
    t = as_data(x, "x_shard", ndim=2, min_rows=0)
    d = t.shape[1]
    if t.shape[0] == 0:
        zeros = torch.zeros(d, dtype=torch.float64)
        return Moments(0, zeros, torch.zeros(d, d, dtype=torch.float64)), t.dtype, d
    x64 = t.to(torch.float64)
    mean = x64.mean(0)
    c = x64 - mean
    scatter = c.T @ c
    if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(scatter).all())):
        raise ValueError(
            "x_shard's values are too large: their squares overflow float64; rescale the data"
        )
    return Moments(t.shape[0], mean, scatter), t.dtype, d


def distributed_moments(x_shard: object) -> tuple[Moments, torch.dtype]:
    r"""The :class:`~ppl_models.pca.Moments` of the union of every process's shard.

    Each process computes the moments of its own rows (float64), the processes all-gather
    them (:math:`1 + D + D^2` numbers each), and every process combines them in rank order
    with :meth:`~ppl_models.pca.Moments.combine`, so all hold the same result. In one
    process (no process group) this is the moments of ``x_shard``.

    Parameters
    ----------
    x_shard : array_like, shape (n_k, D), or a stream of row chunks
        This process's rows (e.g. ``x[shard_rows(len(x))]``, or a stream of its chunks);
        a shard may be empty.

    Returns
    -------
    (Moments, torch.dtype)
        The global moments (``n``, ``mean`` (D,), ``scatter`` (D, D), float64) and the
        shard's dtype.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 2.0]], dtype=torch.float64)
    >>> mom, _ = distributed_moments(x)
    >>> mom.n, mom.mean.tolist()
    (3, [2.0, 2.0])
    """
    local, dtype, d = _local_moments(x_shard)
    rank, world = rank_and_world()
    if world == 1:
        if local.n < 2:
            raise ValueError(f"x_shard must have at least 2 rows; got {local.n}")
        return local, dtype
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if tdist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    flat = torch.cat(
        [
            torch.tensor([float(local.n), float(d)], dtype=torch.float64),
            local.mean.cpu(),
            local.scatter.cpu().reshape(-1),
        ]
    ).to(device)
    gathered = [torch.empty_like(flat) for _ in range(world)]
    with collective(rank, world, "gathering the moments"):
        tdist.all_gather(gathered, flat)
    total = Moments(0, torch.zeros(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64))
    for k, g in enumerate(gathered):
        g = g.cpu()
        if int(g[1]) != d:
            raise ValueError(f"x_shard has {d} columns on rank {rank} but {int(g[1])} on rank {k}")
        part = Moments(int(g[0]), g[2 : 2 + d], g[2 + d :].reshape(d, d))
        total = total.combine(part)
    if total.n < 2:
        raise ValueError(f"the shards hold {total.n} rows together; at least 2 are needed")
    return total, dtype


def closed_form_distributed(x_shard: object, latent_dim: int) -> PPCAParams:
    r""":func:`ppl_models.ppca.closed_form` of the data spread over the processes.

    :func:`distributed_moments` gives every process :math:`\bar x` and :math:`S/N`; the
    :math:`M` leading eigenpairs of :math:`S/N` give Tipping & Bishop's :math:`W, \sigma^2`
    on every process (the eigen-decomposition of a :math:`D \times D` matrix is repeated
    on each, which is cheaper than broadcasting its result for moderate :math:`D`).

    Parameters
    ----------
    x_shard : array_like, shape (n_k, D), or a stream of row chunks
        This process's rows.
    latent_dim : int
        :math:`M`, :math:`1 \le M < D`.

    Returns
    -------
    PPCAParams
        In the shard's dtype; the same on every process.

    Examples
    --------
    >>> from ppl_models import ppca
    >>> x = torch.randn(300, 5, dtype=torch.float64)
    >>> p = closed_form_distributed(x, 2)
    >>> bool(torch.allclose(ppca.covariance(p), ppca.covariance(ppca.closed_form(x, 2))))
    True
    """
    mom, dtype = distributed_moments(x_shard)
    return PPCAParams(*(t.to(dtype) for t in closed_form(mom, latent_dim)))


@renamed_keywords(n_components="latent_dim")
def pca_fit_distributed(x_shard: object, latent_dim: int) -> PCAParams:
    r""":func:`ppl_models.pca.fit` (the ``"eigh"`` route) of the data spread over the
    processes, from :func:`distributed_moments`.

    Parameters
    ----------
    x_shard : array_like, shape (n_k, D), or a stream of row chunks
    latent_dim : int
        :math:`1 \le M \le \min(N, D)`.

    Returns
    -------
    PCAParams
        ``mean`` (D,), ``components`` (D, M), ``explained_variance`` (M,), in the shard's
        dtype; the same on every process.

    Examples
    --------
    >>> from ppl_models import pca
    >>> x = torch.randn(300, 5, dtype=torch.float64)
    >>> p = pca_fit_distributed(x, 2)
    >>> bool(torch.allclose(p.explained_variance, pca.fit(x, 2).explained_variance))
    True
    """
    mom, dtype = distributed_moments(x_shard)
    return PCAParams(*(t.to(dtype) for t in pca_fit(mom, latent_dim)))
