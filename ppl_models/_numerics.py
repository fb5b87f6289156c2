r"""Shared numerics on the ground floor: moments and their parallel combination, chunked
covariance, the top-k eigendecomposition, the sign convention, centred products and streams.

PCA, probabilistic PCA, Bayesian PCA and the distributed statistics all reduce data to
the mean :math:`\bar x` and the (divisor :math:`N`) covariance
:math:`S = \frac1N \sum_n (x_n - \bar x)(x_n - \bar x)^\top`, or to products with the
centred data :math:`\tilde X = X - 1 \bar x^\top`. The routines here compute them once,
in float64 and in row chunks (memory a few chunks and :math:`D \times D` matrices,
whatever :math:`N`), for in-memory data and for streams of row chunks alike. They take
tensors already checked by their callers (:mod:`ppl_models._checks`) and check nothing
but what only they can see (a chunk's width, an overflow).

============================  ===========================================================
:func:`is_stream`             one array, or a stream of row chunks
:class:`Moments`              :math:`(n, \bar x, N S)`; :meth:`Moments.combine` merges two
:func:`moments`               the moments of a stream, in one pass
:func:`column_mean`           :math:`\bar x`, accumulated in float64
:func:`sample_covariance`     :math:`S` in one chunked pass (a second where it would cancel)
:func:`centred_mm`            :math:`\tilde X W`, without forming :math:`\tilde X`
:func:`centred_tmm`           :math:`\tilde X^\top Z`, without forming :math:`\tilde X`
:func:`centred_sum_sq`        :math:`\|\tilde X\|_F^2` in float64
:func:`top_eigh`              the :math:`M` leading eigenpairs of a symmetric matrix
:func:`fix_signs`             each column's largest-magnitude entry positive
============================  ===========================================================

References
----------
T. F. Chan, G. H. Golub, R. J. LeVeque, *Updating formulae and a pairwise algorithm for
computing sample variances*, 1979 (:meth:`Moments.combine`).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import torch

from ._checks import as_data, check_int, is_one_array

__all__ = [
    "CHUNK_ELEMENTS",
    "Moments",
    "centred_mm",
    "centred_sum_sq",
    "centred_tmm",
    "chunk_rows",
    "column_mean",
    "fix_signs",
    "is_stream",
    "moments",
    "sample_covariance",
    "top_eigh",
]

# Rows per chunk: about 2**21 elements (8 MB in float32, 16 MB in float64) per chunk keeps
# the matrix products efficient while bounding the memory beyond the data to a few chunks.
CHUNK_ELEMENTS = 2**21
# Rows of the uncentred Gram pass are views of x (no memory): larger chunks, fewer calls.
_RAW_CHUNK_ELEMENTS = 2**24
# How much cancellation the uncentred route X^T X / N - mean mean^T may cost: the largest
# raw second moment over the largest variance (digits lost ~ log10 of it). Beyond this the
# chunks are centred instead (a second pass). float32 keeps ~6 of its 7 digits.
_MAX_CANCELLATION = {torch.float32: 16.0, torch.float64: 1e4}


# ------------------------------------------------------------------------- streams


def is_stream(x: object) -> bool:
    """Whether ``x`` is a stream of row chunks (a ``DataLoader``,
    :func:`ppl_models.datasets.open_npy`, any iterable of arrays) rather than one array
    or a value.

    One array is never a stream, whatever it iterates over: a tensor, a numpy array, a
    pandas DataFrame (which iterates over its column names) or Series, a sparse matrix;
    nor is a list or a tuple (the arguments of a call).

    >>> import pandas as pd
    >>> is_stream(pd.DataFrame({"a": [1.0, 2.0]})), is_stream([torch.zeros(2, 3)])
    (False, False)
    >>> is_stream(iter([torch.zeros(2, 3)]))
    True
    """
    if is_one_array(x) or isinstance(x, (list, tuple, str, bytes, numbers.Number)):
        return False
    return hasattr(x, "__iter__")


class Moments(NamedTuple):
    r"""Sufficient statistics of a data set for its mean and covariance.

    Attributes
    ----------
    n : int
        Rows.
    mean : torch.Tensor, shape (D,), float64
    scatter : torch.Tensor, shape (D, D), float64
        :math:`\sum_n (x_n - \bar x)(x_n - \bar x)^\top`; the covariance is ``scatter / n``.
    """

    n: int
    mean: torch.Tensor
    scatter: torch.Tensor

    def combine(self, other: Moments) -> Moments:
        r"""The moments of the union of two disjoint data sets (Chan et al.'s pairwise
        update: :math:`S = S_a + S_b + \frac{n_a n_b}{n} \delta\delta^\top`,
        :math:`\delta = \bar x_b - \bar x_a`), for reducing partial results."""
        n = self.n + other.n
        if self.n == 0 or other.n == 0:
            return self if other.n == 0 else other
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        scatter = self.scatter + other.scatter + torch.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, scatter)


def _chunk_tensor(batch: object, i: int, name: str = "x") -> torch.Tensor:
    # A DataLoader over a TensorDataset yields [x] (or [x, y]): the data are the first item.
    if isinstance(batch, (list, tuple)) and batch and not isinstance(batch[0], numbers.Number):
        batch = batch[0]
    return as_data(batch, f"chunk {i} of {name}", ndim=2, min_rows=1)


def moments(x: object, *, name: str = "x") -> tuple[Moments, torch.dtype]:
    r"""The :class:`Moments` of ``x``, a stream of row chunks, in one pass, and the chunks'
    dtype. ``name`` is the argument's name in error messages.

    Each chunk is converted to float64 and accumulated about a shift :math:`K` (the first
    chunk's mean), :math:`\sum (x - K)` and :math:`\sum (x - K)(x - K)^\top`, so that data
    far from the origin lose no digits to cancellation; memory is one chunk and a few
    :math:`D \times D` matrices, whatever :math:`N`.

    >>> mom, dtype = moments([torch.ones(2, 3), torch.zeros(2, 3)])
    >>> mom.n, mom.mean.tolist(), dtype
    (4, [0.5, 0.5, 0.5], torch.float32)
    """
    shift = s1 = s2 = None
    n, d, dtype = 0, None, None
    if is_one_array(x) or isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
        raise TypeError(
            f"{name} must be a stream of row chunks (an iterable of (rows, D) arrays, a "
            f"DataLoader, datasets.open_npy); got {type(x).__name__}"
        )
    for i, batch in enumerate(x):
        c = _chunk_tensor(batch, i, name)
        if d is None:
            d, dtype = c.shape[1], c.dtype
            shift = c.to(torch.float64).mean(0)
            s1 = torch.zeros(d, dtype=torch.float64, device=c.device)
            s2 = torch.zeros(d, d, dtype=torch.float64, device=c.device)
        elif c.shape[1] != d:
            raise ValueError(f"chunk {i} of {name} has {c.shape[1]} columns; the first had {d}")
        c = c.to(torch.float64) - shift
        s1 += c.sum(0)
        s2 += c.T @ c
        n += c.shape[0]
    if n < 2:
        raise ValueError(f"{name} must have at least 2 rows; the stream gave {n}")
    m1 = s1 / n
    out = Moments(n, shift + m1, s2 - n * torch.outer(m1, m1))
    if not bool(torch.isfinite(out.scatter).all()):
        raise ValueError(
            f"{name}'s second moments overflow float64 (values too far from their mean, beyond "
            "~1e154): rescale the data"
        )
    return out, dtype


# -------------------------------------------------------------- in-memory data


def chunk_rows(x: torch.Tensor, chunk_size: int | None) -> int:
    """Rows per chunk of ``x``: ``chunk_size`` (checked), else about
    :data:`CHUNK_ELEMENTS` elements."""
    if chunk_size is not None:
        return check_int(chunk_size, "chunk_size", minimum=1)
    return max(1, CHUNK_ELEMENTS // max(1, x.shape[1]))


def column_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of the rows of ``x`` (D,), accumulated in float64, in ``x``'s dtype."""
    # Accumulate in float64 (a float32 sum over 70000 rows can lose ~4 digits). numpy casts
    # through small buffers and is ~10x faster here than torch's sum with a dtype; torch's
    # ``x.sum(0, dtype=torch.float64)`` would also copy all of x to float64, hence chunks.
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        xs = x.detach().numpy()
        return torch.from_numpy(xs.mean(0, dtype=np.float64).astype(xs.dtype))
    rows = chunk_rows(x, None)
    acc = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        acc += x[start : start + rows].sum(0, dtype=torch.float64)
    return (acc / x.shape[0]).to(x.dtype)


def centred_sum_sq(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    r""":math:`\|X - 1 \bar x^\top\|_F^2`, summed over row chunks in float64 (0-d)."""
    rows = chunk_rows(x, None)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for s in range(0, x.shape[0], rows):
        total = total + ((x[s : s + rows] - mean).to(torch.float64) ** 2).sum()
    return total


def centred_mm(x: torch.Tensor, mean: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r""":math:`(X - 1 \bar x^\top) W` as :math:`X W - 1 (\bar x^\top W)` (unchecked; see
    :func:`ppl_models.pca.centred_matmul` for the checked public form)."""
    return x @ w - mean @ w


def centred_tmm(x: torch.Tensor, mean: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`(X - 1 \bar x^\top)^\top Z` as :math:`X^\top Z - \bar x (1^\top Z)`
    (unchecked; see :func:`ppl_models.pca.centred_rmatmul`)."""
    return x.T @ z - torch.outer(mean, z.sum(0))


def sample_covariance(x: torch.Tensor, mean: torch.Tensor, rows: int) -> torch.Tensor:
    """The (divisor N) covariance as a float64 D x D matrix, in one pass over row chunks.

    First route: the Gram matrix of the raw chunks (views of ``x``, no copy), summed in
    float64, minus ``N mean mean^T``, as scikit-learn does. Its rounding error is that of
    the raw second moments, so it is accepted only when the largest raw second moment
    ``max_i (x^T x)_ii / N`` is at most 16 (float32; 1e4 for float64) times the largest
    variance (data far from the origin next to their spread would lose digits); otherwise
    the covariance is recomputed from centred chunks (``rows`` rows, one at a time).
    """
    n = x.shape[0]
    cpu = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
    gram = _gram_blas if cpu else _gram_torch
    second = gram(x, None, rows) / n
    mean64 = mean.to(torch.float64)
    cov = second - torch.outer(mean64, mean64)
    limit = _MAX_CANCELLATION.get(x.dtype, 16.0)
    top_var = float(torch.diagonal(cov).max())
    if not (top_var > 0 and float(torch.diagonal(second).max()) <= limit * top_var):
        cov = gram(x, mean, rows) / n
    if not math.isfinite(float(torch.diagonal(cov).sum())):
        raise ValueError(
            "x's second moments overflow float64 (values beyond ~1e154 from their mean): rescale x"
        )
    return cov


def _gram_torch(x: torch.Tensor, mean: torch.Tensor | None, chunk_rows: int) -> torch.Tensor:
    acc = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk_rows):
        c = x[start : start + chunk_rows]
        if mean is not None:
            c = c - mean
        # The product runs in the data's dtype (float32 is twice as fast as float64);
        # summing the per-chunk products in float64 stops the error growing with N.
        acc += (c.T @ c).to(torch.float64)
    return acc


def _gram_blas(x: torch.Tensor, mean: torch.Tensor | None, chunk_rows: int) -> torch.Tensor:
    """The CPU path, in numpy throughout so that torch's and the BLAS's thread pools do not
    alternate per chunk (busy-waiting threads made such ping-pong many times slower on 2
    cores). numpy evaluates ``c.T @ c`` as BLAS ``syrk`` (the symmetric rank-k product,
    half the work of a general one) and reads the transposed view in place."""
    xs = x.detach().numpy()
    n, d = xs.shape
    if mean is None:
        # Raw chunks are views: their size costs no memory, and large ones keep BLAS
        # efficient; float64 sums across chunks bound the float32 error growth.
        rows = max(chunk_rows, _RAW_CHUNK_ELEMENTS // max(1, d))
        buf, mu = None, None
    else:
        rows = min(chunk_rows, n)
        buf, mu = np.empty((rows, d), dtype=xs.dtype), mean.detach().numpy()
    acc = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, rows):
        c = xs[start : start + rows]
        if buf is not None:
            c = np.subtract(c, mu, out=buf[: c.shape[0]])
        acc += c.T @ c
    return torch.from_numpy(acc)


# ------------------------------------------------------------------ eigenvectors


def top_eigh(cov: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``m`` largest eigenvalues of the symmetric ``cov`` (descending, clamped at 0)
    and their eigenvectors (columns); on the CPU LAPACK's ``syevr`` computes only those."""
    d = cov.shape[0]
    if cov.device.type == "cpu":
        from scipy.linalg import eigh

        # LAPACK's syevr computes only the M wanted pairs (about half the time of all D).
        evals, evecs = eigh(cov.numpy(), subset_by_index=[d - m, d - 1], driver="evr")
        evals, evecs = torch.from_numpy(evals), torch.from_numpy(evecs)
    else:
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals[d - m :], evecs[:, d - m :]
    return evals.flip(0).clamp_min(0), evecs.flip(1)


def fix_signs(u: torch.Tensor) -> torch.Tensor:
    """Flip columns so that each column's entry of largest magnitude is positive (the
    first such entry on ties): the library's sign convention, and scikit-learn's."""
    idx = u.abs().argmax(dim=0)
    s = torch.sign(u.gather(0, idx.unsqueeze(0)))
    s = torch.where(s == 0, torch.ones_like(s), s)
    return u * s
