r"""Principal component analysis: the eigendecomposition of the covariance, its SVD and EM
routes, and a Pyro model whose maximum likelihood is the principal subspace.

The mathematics
---------------
Given data :math:`x_1, \dots, x_N \in \mathbb{R}^D` with mean :math:`\bar x` and
(maximum-likelihood, divisor :math:`N`) covariance

.. math::

    S = \frac1N \sum_{n=1}^N (x_n - \bar x)(x_n - \bar x)^\top
      = \frac1N X^\top X - \bar x \bar x^\top,

the :math:`M`-dimensional principal subspace is spanned by the eigenvectors
:math:`u_1, \dots, u_M` of :math:`S` with the :math:`M` largest eigenvalues
:math:`\lambda_1 \ge \dots \ge \lambda_M` (PRML 12.1). Two views give it:

* maximum variance: :math:`u_1` maximises :math:`u^\top S u` subject to :math:`\|u\| = 1`,
  and each further :math:`u_i` does so orthogonally to the earlier ones;
* minimum error: with :math:`U_M = (u_1, \dots, u_M)` the reconstruction
  :math:`\tilde x_n = \bar x + U_M U_M^\top (x_n - \bar x)` minimises

  .. math::

      J = \frac1N \sum_{n=1}^N \|x_n - \tilde x_n\|^2 = \sum_{i=M+1}^D \lambda_i
      \qquad\text{(PRML 12.18)}

  over all rank-:math:`M` affine projections.

The Pyro model reads the second view as a likelihood,

.. math::

    x_n \sim \mathcal{N}\big(\mu + W W^\top (x_n - \mu),\ \sigma^2 I_D\big),
    \qquad W^\top W = I_M,

whose log-likelihood is :math:`-\frac{ND}{2}\ln(2\pi\sigma^2) - \frac{N J}{2\sigma^2}`
with :math:`J` the mean squared reconstruction error of :math:`(\mu, W)`: maximum
likelihood is minimum :math:`J`, so it finds :math:`\operatorname{span}(W) =
\operatorname{span}(U_M)`, and with :math:`\sigma` learned, :math:`\sigma^2_{ML} = J / D`.
It is not a generative model (the mean of :math:`x_n` depends on :math:`x_n`); probabilistic
PCA (:mod:`ppl_models.ppca`) is.

==========================  ==========================  =====================
symbol                      argument / field            shape
==========================  ==========================  =====================
:math:`x_n`                 ``x``                       ``(N, D)``
:math:`\bar x`, :math:`\mu`  ``mean``, site param ``mu``  ``(D,)``
:math:`U_M`                 ``components``              ``(D, M)``
:math:`\lambda_1..\lambda_M`  ``explained_variance``    ``(M,)``
:math:`U_M^\top(x - \bar x)`  :func:`transform`         ``(N, M)``
:math:`W`                   ``PCA.W``                   ``(D, M)``
:math:`\sigma`              ``PCA.sigma``               ``()``
==========================  ==========================  =====================

Signs. An eigenvector is defined up to its sign; every result of this module has the entry
of largest absolute value of each column of ``components`` positive (the first such entry
on ties). scikit-learn (>= 1.5) follows the same rule for its ``components_``.

Dtypes. The Pyro model computes in ``torch.promote_types(module dtype, data dtype)``, as
torch's own type promotion does: a module built in the default float32 runs on float64
data, on the data's device.

Data. Every function that takes data converts them once, at the entry
(:func:`ppl_models._checks.as_data`): torch tensors and numpy arrays, and pandas
DataFrames and Series (a column that does not hold numbers is refused by name); floating
data keep their dtype, float16 is computed in float32, integer and boolean numpy data
become float64 (numpy's and scikit-learn's convention); sparse matrices are refused (pass
``.toarray()``).

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), section 12.1.
S. Roweis, *EM algorithms for PCA and SPCA*, NIPS 10 (1998).
A. Edelman, T. Arias, S. Smith, *The geometry of algorithms with orthogonality
constraints*, SIAM J. Matrix Anal. Appl. 20 (1998) (the exponential chart of the
Grassmann manifold used by :class:`PCA`).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam

from ._checks import (
    as_array,
    as_data,
    check_choice,
    check_int,
    check_like,
    check_positive,
    check_same_device,
    is_one_array,
    promoted_like,
)
from .inference import data_plate, pyro_method
from .inference import is_stream as _is_iterable_data

__all__ = [
    "PCA",
    "EMResult",
    "Moments",
    "PCAParams",
    "centred_matmul",
    "centred_rmatmul",
    "em",
    "explained_variance_ratio",
    "fit",
    "is_stream",
    "moments",
    "projector_distance",
    "reconstruct",
    "reconstruction_error",
    "transform",
]

# Rows per chunk: about 2**21 elements (8 MB in float32, 16 MB in float64) per chunk keeps
# the matrix products efficient while bounding the memory beyond the data to a few chunks.
_CHUNK_ELEMENTS = 2**21
# Rows of the uncentred Gram pass are views of x (no memory): larger chunks, fewer calls.
_RAW_CHUNK_ELEMENTS = 2**24


class PCAParams(NamedTuple):
    """A fitted PCA.

    Attributes
    ----------
    mean : torch.Tensor, shape (D,)
        The mean :math:`\\bar x` the data are centred by.
    components : torch.Tensor, shape (D, M)
        The principal directions :math:`U_M`, orthonormal columns, in order of decreasing
        eigenvalue, signs fixed (largest-magnitude entry of each column positive).
    explained_variance : torch.Tensor, shape (M,)
        The eigenvalues :math:`\\lambda_1 \\ge \\dots \\ge \\lambda_M` of the (divisor
        :math:`N`) covariance: the variance of the data along each direction.
    """

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance: torch.Tensor


class EMResult(NamedTuple):
    """What :func:`em` returns.

    Attributes
    ----------
    params : PCAParams
        The principal axes and eigenvalues (rotated within the subspace found).
    objective : torch.Tensor, shape (n_iter,)
        :math:`J`, the mean squared reconstruction error, after each M-step (float64); it
        never increases.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the subspace moved by less than ``tol`` in the last iteration.
    """

    params: PCAParams
    objective: torch.Tensor
    n_iter: int
    converged: bool


# ---------------------------------------------------------------------------- helpers


def is_stream(x: object) -> bool:
    """Whether ``x`` is a stream of row chunks (a ``DataLoader``,
    :func:`ppl_models.datasets.open_npy`, any iterable of arrays) rather than one array.

    One array is never a stream, whatever it iterates over: a tensor, a numpy array, a
    pandas DataFrame (which iterates over its column names) or Series, a sparse matrix.

    >>> import pandas as pd
    >>> is_stream(pd.DataFrame({"a": [1.0, 2.0]})), is_stream([torch.zeros(2, 3)])
    (False, False)
    >>> is_stream(iter([torch.zeros(2, 3)]))
    True
    """
    return not is_one_array(x) and _is_iterable_data(x)


def _fix_signs(u: torch.Tensor) -> torch.Tensor:
    """Flip columns so that each column's entry of largest magnitude is positive."""
    idx = u.abs().argmax(dim=0)
    s = torch.sign(u.gather(0, idx.unsqueeze(0)))
    s = torch.where(s == 0, torch.ones_like(s), s)
    return u * s


def _chunk_rows(x: torch.Tensor, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return check_int(chunk_size, "chunk_size", minimum=1)
    return max(1, _CHUNK_ELEMENTS // max(1, x.shape[1]))


def _mean(x: torch.Tensor) -> torch.Tensor:
    # Accumulate in float64 (a float32 sum over 70000 rows can lose ~4 digits). numpy casts
    # through small buffers and is ~10x faster here than torch's sum with a dtype; torch's
    # ``x.sum(0, dtype=torch.float64)`` would also copy all of x to float64, hence chunks.
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        xs = x.detach().numpy()
        return torch.from_numpy(xs.mean(0, dtype=np.float64).astype(xs.dtype))
    rows = _chunk_rows(x, None)
    acc = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        acc += x[start : start + rows].sum(0, dtype=torch.float64)
    return (acc / x.shape[0]).to(x.dtype)


def _check_x(x: object, name: str = "x") -> torch.Tensor:
    return as_data(x, name, ndim=2, min_rows=2)


def _check_params(params: object, name: str = "params") -> PCAParams:
    if not isinstance(params, tuple) or len(params) != 3:
        raise TypeError(
            f"{name} must be a PCAParams(mean, components, explained_variance); "
            f"got {type(params).__name__}"
        )
    fields = ("mean", "components", "explained_variance")
    mean, components, ev = (as_array(p, f"{name}.{f}") for p, f in zip(params, fields, strict=True))
    if components.ndim != 2 or mean.ndim != 1 or mean.shape[0] != components.shape[0]:
        raise ValueError(
            f"{name} must hold mean of shape (D,) and components of shape (D, M); got "
            f"{tuple(mean.shape)} and {tuple(components.shape)}"
        )
    if ev.shape != (components.shape[1],) or components.shape[1] == 0:
        raise ValueError(
            f"{name}.explained_variance must have shape ({components.shape[1]},), one per "
            f"component (at least one); got {tuple(ev.shape)}"
        )
    for f, t in zip(fields, (mean, components, ev), strict=True):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}.{f} must be finite (no NaN or inf)")
    if bool((ev < 0).any()):
        raise ValueError(f"{name}.explained_variance must be non-negative (variances)")
    check_same_device(**{f"{name}.mean": mean, f"{name}.components": components})
    return PCAParams(mean, components.to(mean.dtype), ev.to(mean.dtype))


def _points(x: object, params: PCAParams, name: str = "x") -> tuple[torch.Tensor, bool]:
    """Check points for transform/reconstruct: (N, D) or one point (D,)."""
    t = as_data(x, name, ndim=(1, 2), min_rows=1)
    single = t.ndim == 1
    if single:
        t = t.unsqueeze(0)
    d = params.mean.shape[0]
    if t.shape[1] != d:
        raise ValueError(
            f"{name} must have {d} columns (the data dimension of params); got {t.shape[1]}"
        )
    return t, single


def _like(params: PCAParams, x: torch.Tensor) -> PCAParams:
    return PCAParams(*(p.to(device=x.device, dtype=x.dtype) for p in params))


def centred_matmul(x: torch.Tensor, mean: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r""":math:`(X - 1 \bar x^\top) W` without forming the centred copy of :math:`X`.

    Computed as :math:`X W - 1 (\bar x^\top W)`; the building block of EM for PCA and PPCA.

    Parameters
    ----------
    x : torch.Tensor, shape (N, D)
    mean : torch.Tensor, shape (D,)
    w : torch.Tensor, shape (D, M)

    Returns
    -------
    torch.Tensor, shape (N, M)

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> centred_matmul(x, x.mean(0), torch.eye(2))
    tensor([[-1., -2.],
            [ 1.,  2.]])

    The three tensors must share a device and a dtype (a ``ValueError`` says which does
    not: on a GPU a mismatch once returned uninitialised memory).
    """
    x, mean, w = _check_product(x, mean, w, "w", (lambda x: x.shape[1], None))
    return _centred_matmul(x, mean, w)


def _centred_matmul(x: torch.Tensor, mean: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x @ w - mean @ w


def _check_product(
    x: object, mean: object, other: object, other_name: str, shape: tuple
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The operands of a centred product: finite floating tensors of one device and dtype,
    ``x`` (N, D), ``mean`` (D,), ``other`` of the ``shape`` given as functions of x."""
    # Devices and dtypes first: a value check would read another device's memory.
    check_like(
        x=as_array(x, "x"), mean=as_array(mean, "mean"), **{other_name: as_array(other, other_name)}
    )
    x = as_data(x, "x", ndim=2, min_rows=1)
    mean = as_data(mean, "mean", ndim=1, min_rows=1)
    t = as_data(other, other_name, ndim=2, min_rows=1)
    if mean.shape[0] != x.shape[1]:
        raise ValueError(
            f"mean must have {x.shape[1]} entries (the columns of x); got {mean.shape[0]}"
        )
    rows = shape[0](x)
    if t.shape[0] != rows:
        raise ValueError(f"{other_name} must have {rows} rows; got {t.shape[0]}")
    return x, mean, t


def centred_rmatmul(x: torch.Tensor, mean: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`(X - 1 \bar x^\top)^\top Z` without forming the centred copy of :math:`X`.

    Computed as :math:`X^\top Z - \bar x (1^\top Z)`.

    Parameters
    ----------
    x : torch.Tensor, shape (N, D)
    mean : torch.Tensor, shape (D,)
    z : torch.Tensor, shape (N, M)

    Returns
    -------
    torch.Tensor, shape (D, M)

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> centred_rmatmul(x, x.mean(0), torch.tensor([[-1.0], [1.0]]))
    tensor([[2.],
            [4.]])
    """
    x, mean, z = _check_product(x, mean, z, "z", (lambda x: x.shape[0], None))
    return _centred_rmatmul(x, mean, z)


def _centred_rmatmul(x: torch.Tensor, mean: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return x.T @ z - torch.outer(mean, z.sum(0))


def projector_distance(a: object, b: object) -> torch.Tensor:
    r"""The distance between the subspaces spanned by the columns of ``a`` and ``b``.

    With :math:`P_A`, :math:`P_B` the orthogonal projectors onto the column spaces,

    .. math::

        d(A, B) = \|P_A - P_B\|_F
        = \big(\|(I - P_A) Q_B\|_F^2 + \|(I - P_B) Q_A\|_F^2\big)^{1/2}
        = \sqrt{2}\, \|\sin\Theta\|_F \ \text{(equal dimensions)},

    where :math:`Q_A`, :math:`Q_B` are orthonormal bases and :math:`\Theta` the principal
    angles. It is 0 for the same subspace and at most :math:`\sqrt{2M}`; it ignores the
    basis (rotation, sign, scale of the columns). The residual form is used because it keeps
    full relative precision near 0, where :math:`\sqrt{2M - 2\|Q_A^\top Q_B\|_F^2}` would
    lose half the digits.

    Parameters
    ----------
    a, b : array_like, shape (D, M_a) and (D, M_b), or PCAParams
        Bases (need not be orthonormal, but of full column rank); for a ``PCAParams`` its
        ``components`` are used.

    Returns
    -------
    torch.Tensor
        0-d, in the promoted dtype of the inputs.

    Examples
    --------
    >>> e = torch.eye(3, dtype=torch.float64)
    >>> float(projector_distance(e[:, :2], 3 * e[:, [1, 0]]))
    0.0
    >>> round(float(projector_distance(e[:, :1], e[:, 1:2])), 6)  # orthogonal lines
    1.414214
    """
    qs = []
    for value, name in ((a, "a"), (b, "b")):
        if isinstance(value, PCAParams):
            value = value.components
        t = as_data(value, name, ndim=2, min_rows=1)
        qs.append(t)
    if qs[0].shape[0] != qs[1].shape[0]:
        raise ValueError(
            f"a and b must have the same number of rows (the dimension D); got "
            f"{qs[0].shape[0]} and {qs[1].shape[0]}"
        )
    dtype = torch.promote_types(qs[0].dtype, qs[1].dtype)
    qa, qb = (torch.linalg.qr(q.to(dtype))[0] for q in qs)
    ra = qb - qa @ (qa.T @ qb)
    rb = qa - qb @ (qb.T @ qa)
    return torch.sqrt((ra * ra).sum() + (rb * rb).sum())


# ------------------------------------------------------------------------- streams


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


def _chunk_tensor(batch: object, i: int) -> torch.Tensor:
    # A DataLoader over a TensorDataset yields [x] (or [x, y]): the data are the first item.
    if isinstance(batch, (list, tuple)) and batch and not isinstance(batch[0], numbers.Number):
        batch = batch[0]
    return as_data(batch, f"chunk {i} of x", ndim=2, min_rows=1)


def moments(x: object) -> tuple[Moments, torch.dtype]:
    r"""The :class:`Moments` of ``x``, a stream of row chunks, in one pass, and the chunks'
    dtype.

    Each chunk is converted to float64 and accumulated about a shift :math:`K` (the first
    chunk's mean), :math:`\sum (x - K)` and :math:`\sum (x - K)(x - K)^\top`, so that data
    far from the origin lose no digits to cancellation; memory is one chunk and a few
    :math:`D \times D` matrices, whatever :math:`N`.
    """
    shift = s1 = s2 = None
    n, d, dtype = 0, None, None
    if is_one_array(x) or isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
        raise TypeError(
            "x must be a stream of row chunks (an iterable of (rows, D) arrays, a DataLoader, "
            f"datasets.open_npy); got {type(x).__name__}"
        )
    for i, batch in enumerate(x):
        c = _chunk_tensor(batch, i)
        if d is None:
            d, dtype = c.shape[1], c.dtype
            shift = c.to(torch.float64).mean(0)
            s1 = torch.zeros(d, dtype=torch.float64, device=c.device)
            s2 = torch.zeros(d, d, dtype=torch.float64, device=c.device)
        elif c.shape[1] != d:
            raise ValueError(f"chunk {i} of x has {c.shape[1]} columns; the first had {d}")
        c = c.to(torch.float64) - shift
        s1 += c.sum(0)
        s2 += c.T @ c
        n += c.shape[0]
    if n < 2:
        raise ValueError(f"x must have at least 2 rows; the stream gave {n}")
    m1 = s1 / n
    out = Moments(n, shift + m1, s2 - n * torch.outer(m1, m1))
    if not bool(torch.isfinite(out.scatter).all()):
        raise ValueError(
            "x's second moments overflow float64 (values too far from their mean, beyond "
            "~1e154): rescale the data"
        )
    return out, dtype


# ---------------------------------------------------------------------- closed forms


# How much cancellation the uncentred route X^T X / N - mean mean^T may cost: the largest
# raw second moment over the largest variance (digits lost ~ log10 of it). Beyond this the
# chunks are centred instead (a second pass). float32 keeps ~6 of its 7 digits.
_MAX_CANCELLATION = {torch.float32: 16.0, torch.float64: 1e4}


def _covariance(x: torch.Tensor, mean: torch.Tensor, chunk_rows: int) -> torch.Tensor:
    """The (divisor N) covariance as a float64 D x D matrix, in one pass over row chunks.

    First route: the Gram matrix of the raw chunks (views of ``x``, no copy), summed in
    float64, minus ``N mean mean^T``, as scikit-learn does. Its rounding error is that of
    the raw second moments, so it is accepted only when the largest raw second moment
    ``max_i (x^T x)_ii / N`` is at most ``_MAX_CANCELLATION`` times the largest variance
    (data far from the origin next to their spread would lose digits); otherwise the
    covariance is recomputed from centred chunks (one centred chunk at a time).
    """
    n = x.shape[0]
    cpu = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
    gram = _gram_blas if cpu else _gram_torch
    second = gram(x, None, chunk_rows) / n
    mean64 = mean.to(torch.float64)
    cov = second - torch.outer(mean64, mean64)
    limit = _MAX_CANCELLATION.get(x.dtype, 16.0)
    top_var = float(torch.diagonal(cov).max())
    if not (top_var > 0 and float(torch.diagonal(second).max()) <= limit * top_var):
        cov = gram(x, mean, chunk_rows) / n
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


def _top_eigh(cov: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
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


def _auto_method(n: int, d: int, m: int) -> str:
    small = min(n, d)
    if small > 2000 and m <= small // 10:
        return "em"
    if d <= n:
        return "eigh"
    return "svd"


def fit(
    x: object,
    n_components: int,
    *,
    method: str = "auto",
    chunk_size: int | None = None,
    tol: float = 1e-9,
    max_iter: int = 1000,
    seed: int | None = 0,
) -> PCAParams:
    r"""The first ``n_components`` principal axes of ``x`` and their variances.

    Methods
    -------
    ``"eigh"``
        One pass over the rows in chunks forms the covariance as
        :math:`S = \frac1N X^\top X - \bar x \bar x^\top` (scikit-learn's route: no
        centred copy of ``x``; on the CPU the chunks' Gram products are BLAS ``syrk`` calls
        on views of ``x``, summed in float64), then the :math:`M` leading eigenpairs of the
        :math:`D \times D` matrix in float64 (LAPACK ``syevr`` on the CPU,
        ``torch.linalg.eigh`` elsewhere). That formula cancels when the data sit far from
        the origin next to their spread; when the largest raw second moment
        :math:`\max_i \frac1N (X^\top X)_{ii}` exceeds 16 (float32; :math:`10^4` for
        float64) times the largest variance, :math:`S` is recomputed from centred chunks
        (one centred chunk at a time, a second pass). Time :math:`O(ND^2 + D^3)`; memory
        beyond ``x``: a few :math:`D \times D` matrices, plus one chunk (``chunk_size``
        rows, by default about :math:`2^{21}` elements) on the centred pass. For float32
        data the Gram products run in float32 (twice as fast): eigenvalues are then
        accurate to about :math:`10^{-6}\lambda_1` (measured :math:`7 \times 10^{-8}
        \lambda_1` on the digits); float64 data: about :math:`10^{-14}\lambda_1`.
    ``"svd"``
        The thin SVD :math:`X - 1\bar x^\top = V \Sigma U^\top`, :math:`\lambda_i =
        \sigma_i^2 / N`. Forms a centred copy of ``x``; time :math:`O(N D \min(N, D))`.
        The most accurate for ill-conditioned data (it never squares the singular values).
    ``"em"``
        Roweis's EM for PCA (see :func:`em`): :math:`O(NDM)` per iteration, never forms
        :math:`S` nor a centred copy; for a few components of high-dimensional data.
    ``"auto"``
        ``"em"`` when :math:`\min(N, D) > 2000` and :math:`M \le \min(N, D)/10` (the
        :math:`D \times D` route would cost far more than a few hundred EM iterations);
        otherwise ``"eigh"`` when :math:`D \le N`, else ``"svd"`` (wide data, whose SVD costs
        :math:`O(N^2 D)`).

    Parameters
    ----------
    x : array_like, shape (N, D), or a stream of row chunks
        Data, finite, :math:`N \ge 2`. Floating inputs keep their dtype. A stream (a
        ``DataLoader``, :func:`ppl_models.datasets.open_npy`, any iterable of (rows, D)
        tensors) is read once, chunk by chunk, into :func:`moments` (float64), and takes
        the ``"eigh"`` route (``"auto"`` or ``"eigh"`` only): memory independent of N.
    n_components : int
        :math:`M`, with :math:`1 \le M \le \min(N, D)`.
    method : {"auto", "eigh", "svd", "em"}
        See above.
    chunk_size : int, optional
        Rows per chunk for ``"eigh"``.
    tol, max_iter, seed
        Passed to :func:`em` for ``method="em"``.

    Returns
    -------
    PCAParams
        ``mean`` (D,), ``components`` (D, M) and ``explained_variance`` (M,), in the dtype
        and on the device of ``x``.

    References
    ----------
    PRML 12.1; Roweis (1998).

    Examples
    --------
    >>> x = torch.tensor([[2.0, 2.0], [-2.0, -2.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> p = fit(x, 1)
    >>> p.components.flatten()
    tensor([0.7071, 0.7071], dtype=torch.float64)
    >>> p.explained_variance
    tensor([4.], dtype=torch.float64)
    """
    if is_stream(x):
        check_choice(method, "method", ["auto", "eigh"])
        mom, dtype = moments(x)
        m = check_int(
            n_components, "n_components", minimum=1, maximum=min(mom.n, mom.mean.shape[0])
        )
        evals, evecs = _top_eigh(mom.scatter / mom.n, m)
        return PCAParams(mom.mean.to(dtype), _fix_signs(evecs).to(dtype), evals.to(dtype))
    x = _check_x(x)
    n, d = x.shape
    m = check_int(n_components, "n_components", minimum=1, maximum=min(n, d))
    check_choice(method, "method", ["auto", "eigh", "svd", "em"])
    if method == "auto":
        method = _auto_method(n, d, m)
    if method == "em":
        return em(x, m, tol=tol, max_iter=max_iter, seed=seed).params
    mean = _mean(x)
    if method == "eigh":
        cov = _covariance(x, mean, _chunk_rows(x, chunk_size))
        evals, evecs = _top_eigh(cov, m)
    else:
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
        evals, evecs = s[:m] ** 2 / n, vh[:m].T
    return PCAParams(mean, _fix_signs(evecs).to(x.dtype), evals.to(x.dtype))


def em(
    x: object,
    n_components: int,
    *,
    tol: float = 1e-9,
    max_iter: int = 1000,
    init: object | None = None,
    seed: int | None = 0,
) -> EMResult:
    r"""Roweis's EM algorithm for PCA (the :math:`\sigma^2 \to 0` limit of PPCA's EM).

    With :math:`\tilde X = X - 1\bar x^\top` (rows are centred data points), alternate

    .. math::

        \text{E-step: } Z = \tilde X W (W^\top W)^{-1}, \qquad
        \text{M-step: } W = \tilde X^\top Z (Z^\top Z)^{-1},

    each minimising :math:`J = \frac1N\|\tilde X - Z W^\top\|_F^2` over one factor, so
    :math:`J` never increases. Neither step forms :math:`S` or :math:`\tilde X`
    (:func:`centred_matmul`, :func:`centred_rmatmul`): :math:`O(NDM)` time per iteration.
    ``W`` is orthonormalised (QR) after every M-step, which changes neither its span nor the
    next iterate's span, so the iteration is orthogonal iteration on :math:`S`: the angle to
    the principal subspace shrinks by about :math:`\lambda_{M+1}/\lambda_M` per iteration.
    It is fast with a clear gap after the :math:`M`-th eigenvalue and slow without one.

    It stops when the subspace moves by less than ``tol`` (:func:`projector_distance`
    between successive iterates); the distance left to the fixed point is then about
    ``tol * r / (1 - r)`` with :math:`r = \lambda_{M+1}/\lambda_M`. At the end the
    orthonormal basis :math:`Q` is rotated to the principal axes within its span by the
    eigendecomposition of the :math:`M \times M` projected covariance
    :math:`Q^\top S Q = \frac1N (\tilde X Q)^\top (\tilde X Q) = V \Lambda V^\top`:
    ``components`` :math:`= QV`, ``explained_variance`` :math:`= \Lambda` (Rayleigh-Ritz
    values, whose error is quadratic in the subspace's).

    Parameters
    ----------
    x : array_like, shape (N, D)
        Data, finite.
    n_components : int
        :math:`M`, with :math:`1 \le M \le \min(N, D)`.
    tol : float
        Stop when successive subspaces are closer than this (:func:`projector_distance`).
    max_iter : int
        The most iterations.
    init : array_like, shape (D, M), optional
        The starting :math:`W` (full column rank); a seeded Gaussian matrix by default.
    seed : int, optional
        Seed of the default starting point.

    Returns
    -------
    EMResult
        ``(params, objective, n_iter, converged)``.

    References
    ----------
    S. Roweis, *EM algorithms for PCA and SPCA*, NIPS 10 (1998).

    Examples
    --------
    >>> x = torch.randn(200, 5, dtype=torch.float64) * torch.tensor([5.0, 3, 1, 1, 1])
    >>> r = em(x, 2, seed=0)
    >>> r.converged, bool(projector_distance(r.params.components, fit(x, 2).components) < 1e-7)
    (True, True)
    """
    x = _check_x(x)
    n, d = x.shape
    m = check_int(n_components, "n_components", minimum=1, maximum=min(n, d))
    tol = check_positive(tol, "tol", allow_tensor=False)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    mean = _mean(x)
    if init is None:
        seed = 0 if seed is None else check_int(seed, "seed", minimum=0)
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(d, m, generator=gen, dtype=torch.float64).to(x.device, x.dtype)
    else:
        w = as_data(init, "init", ndim=2, min_rows=1).to(x.device, x.dtype)
        if w.shape != (d, m):
            raise ValueError(f"init must have shape ({d}, {m}); got {tuple(w.shape)}")
    if int(torch.linalg.matrix_rank(w)) < m:
        raise ValueError("init must have full column rank")
    q = torch.linalg.qr(w)[0]
    # ||X~||_F^2 in float64 chunks: J's baseline, computed once.
    rows = _chunk_rows(x, None)
    total = sum(
        float(((x[s : s + rows] - mean).to(torch.float64) ** 2).sum()) for s in range(0, n, rows)
    )
    objective = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is read after the loop
        z = _centred_matmul(x, mean, q)  # E-step (Q orthonormal: (Q^T Q)^{-1} = I)
        g = z.T @ z
        b = _centred_rmatmul(x, mean, z)
        w, info = torch.linalg.solve_ex(g, b.T)  # M-step W = X~^T Z (Z^T Z)^{-1}
        w = w.T
        if int(info) != 0 or not bool(torch.isfinite(w).all()):
            raise ValueError(
                f"x's centred rows span fewer than n_components = {m} directions (Z^T Z is "
                "singular): use a smaller n_components, at most the rank of the centred data"
            )
        # J(W, Z) = (||X~||^2 - tr(W^T X~^T Z)) / N at the M-step's optimum.
        objective.append((total - float((w.to(torch.float64) * b.to(torch.float64)).sum())) / n)
        q_new = torch.linalg.qr(w)[0]
        moved = math.sqrt(2.0) * float(torch.linalg.norm(q_new - q @ (q.T @ q_new)))
        q = q_new
        if moved < tol:
            converged = True
            break
    z = _centred_matmul(x, mean, q)
    evals, v = torch.linalg.eigh((z.T @ z).to(torch.float64) / n)
    evals, v = evals.flip(0).clamp_min(0), v.flip(1)
    components = _fix_signs(q.to(torch.float64) @ v).to(x.dtype)
    params = PCAParams(mean, components, evals.to(x.dtype))
    return EMResult(params, torch.tensor(objective, dtype=torch.float64), it, converged)


def transform(x: object, params: PCAParams) -> torch.Tensor:
    r"""The principal-component scores :math:`U_M^\top (x_n - \bar x)` of each row.

    Parameters
    ----------
    x : array_like, shape (N, D) or (D,)
        Points.
    params : PCAParams

    Returns
    -------
    torch.Tensor, shape (N, M) or (M,)
        In the dtype of ``x``.

    Examples
    --------
    >>> p = PCAParams(torch.zeros(2), torch.tensor([[1.0], [0.0]]), torch.tensor([1.0]))
    >>> transform(torch.tensor([[3.0, 4.0]]), p)
    tensor([[3.]])
    """
    params = _check_params(params)
    t, single = _points(x, params)
    p = _like(params, t)
    z = (t - p.mean) @ p.components
    return z[0] if single else z


def reconstruct(x: object, params: PCAParams) -> torch.Tensor:
    r"""The reconstructions :math:`\tilde x_n = \bar x + U_M U_M^\top (x_n - \bar x)`.

    Parameters
    ----------
    x : array_like, shape (N, D) or (D,)
        Points.
    params : PCAParams

    Returns
    -------
    torch.Tensor, same shape as ``x``

    Examples
    --------
    >>> p = PCAParams(torch.zeros(2), torch.tensor([[1.0], [0.0]]), torch.tensor([1.0]))
    >>> reconstruct(torch.tensor([3.0, 4.0]), p)
    tensor([3., 0.])
    """
    params = _check_params(params)
    t, single = _points(x, params)
    p = _like(params, t)
    r = p.mean + ((t - p.mean) @ p.components) @ p.components.T
    return r[0] if single else r


def reconstruction_error(x: object, params: PCAParams) -> torch.Tensor:
    r"""The mean squared reconstruction error :math:`J = \frac1N \sum_n \|x_n - \tilde
    x_n\|^2`; on the data PCA was fitted to it equals :math:`\sum_{i>M} \lambda_i`
    (PRML 12.18).

    The residual :math:`(I - U_M U_M^\top)(x_n - \bar x)` is formed directly (row chunks),
    not as :math:`\|x_n - \bar x\|^2 - \|U_M^\top(x_n - \bar x)\|^2`, which would cancel.

    Parameters
    ----------
    x : array_like, shape (N, D)
    params : PCAParams

    Returns
    -------
    torch.Tensor
        0-d, in the dtype of ``x``.

    Examples
    --------
    >>> x = torch.tensor([[2.0, 2.0], [-2.0, -2.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> float(reconstruction_error(x, fit(x, 1)))  # the discarded eigenvalue
    1.0
    """
    params = _check_params(params)
    t, _ = _points(x, params)
    p = _like(params, t)
    rows = _chunk_rows(t, None)
    total = torch.zeros((), dtype=torch.float64, device=t.device)
    for s in range(0, t.shape[0], rows):
        c = t[s : s + rows] - p.mean
        r = c - (c @ p.components) @ p.components.T
        total += (r.to(torch.float64) ** 2).sum()
    return (total / t.shape[0]).to(t.dtype)


def explained_variance_ratio(params: PCAParams, total: object) -> torch.Tensor:
    r"""The fraction of the total variance along each component,
    :math:`\lambda_i / \sum_{j=1}^D \lambda_j`.

    Parameters
    ----------
    params : PCAParams
    total : array_like of shape (N, D), or float
        The data (whose total variance :math:`\operatorname{tr} S = \frac1N\sum_n
        \|x_n - \bar x\|^2` is computed), or the total variance itself (positive).

    Returns
    -------
    torch.Tensor, shape (M,)

    Examples
    --------
    >>> p = PCAParams(torch.zeros(2), torch.eye(2)[:, :1], torch.tensor([3.0]))
    >>> explained_variance_ratio(p, 4.0)
    tensor([0.7500])
    """
    params = _check_params(params)
    ev = params.explained_variance
    if isinstance(total, (torch.Tensor, np.ndarray)) and total.ndim == 0:
        total = total.item()  # a 0-d tensor is a number
    if isinstance(total, numbers.Real) and not isinstance(total, bool):
        tv = check_positive(total, "total", allow_tensor=False)
        return ev / tv
    t = _check_x(total, "total")
    if t.shape[1] != params.mean.shape[0]:
        raise ValueError(
            f"total must have {params.mean.shape[0]} columns (the data dimension of params); "
            f"got {t.shape[1]}"
        )
    mean = _mean(t)
    rows = _chunk_rows(t, None)
    tv = (
        sum(
            float(((t[s : s + rows] - mean).to(torch.float64) ** 2).sum())
            for s in range(0, t.shape[0], rows)
        )
        / t.shape[0]
    )
    if not tv > 0:
        raise ValueError("total (the data) has no variance: every row is the same")
    return ev / tv


# ------------------------------------------------------------------------ Pyro model


class PCA(PyroModule):
    r"""PCA as a Pyro model: maximum likelihood of
    :math:`x_n \sim \mathcal{N}(\mu + W W^\top (x_n - \mu), \sigma^2 I)` with orthonormal
    :math:`W` is the principal subspace (see the module docstring).

    ``W`` is kept orthonormal by the exponential chart of the Grassmann manifold around a
    fixed orthonormal basis :math:`(Q_0, Q_0^\perp)` (a buffer, drawn from ``seed``):

    .. math::

        W = (Q_0\ Q_0^\perp)\, \exp\begin{pmatrix} 0 & -B^\top \\ B & 0 \end{pmatrix}
            \begin{pmatrix} I_M \\ 0 \end{pmatrix},
        \qquad B \in \mathbb{R}^{(D - M) \times M},

    with the parameter ``B`` (a ``PyroParam``, 0 at the start). Every :math:`M`-dimensional
    subspace is reached, there is no redundant rotation inside the subspace (whose
    directions would be flat for the optimiser), and the chart has no scale to drift (a QR
    of an unconstrained matrix has: its columns' norms grew to :math:`10^{10}` under L-BFGS
    and the fit stalled). The cost is one :math:`D \times D` ``matrix_exp`` per evaluation.

    Fitting. With the empty guide, SVI is maximum likelihood; ``fit_svi(..., optimizer=
    "lbfgs")`` in float64 converges in a few dozen L-BFGS steps on the digits **when**
    :math:`\mu` starts at the sample mean (``mean=x.mean(0)``, the maximum-likelihood
    value, at which its gradient vanishes for every :math:`W`). The likelihood does not
    identify the part of :math:`\mu` inside :math:`\operatorname{span}(W)` (the
    reconstruction does not depend on it), so from :math:`\mu = 0` the offset
    :math:`\bar x - \mu` is first absorbed by :math:`W` and the fit crawls along that
    valley (hundreds of steps, and it stalled short of the optimum for :math:`M = 2, 5` on
    the digits).

    Parameters
    ----------
    data_dim : int
        :math:`D`.
    n_components : int
        :math:`M`, with :math:`1 \le M < D`.
    mean : array_like, shape (D,), optional
        Initial :math:`\mu` (zeros by default); pass the sample mean.
    sigma : float, optional
        A fixed noise scale; learned (a ``PyroParam``, starting at 1) when omitted. Its
        maximum-likelihood value is :math:`\sigma^2 = J / D`.
    seed : int
        Seed of the chart's base :math:`Q_0`.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> x = torch.randn(300, 4, dtype=torch.float64) * torch.tensor([3.0, 2.0, 0.5, 0.3])
    >>> m = PCA(4, 2, mean=x.mean(0))
    >>> _ = fit_svi(m, x, optimizer="lbfgs", num_steps=50, progress=False)
    >>> bool(projector_distance(m.params(x).components, fit(x, 2).components) < 1e-5)
    True
    """

    def __init__(
        self,
        data_dim: int,
        n_components: int,
        *,
        mean: object | None = None,
        sigma: float | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.n_components = check_int(
            n_components, "n_components", minimum=1, maximum=self.data_dim - 1
        )
        d, m = self.data_dim, self.n_components
        if mean is None:
            mu = torch.zeros(d)
        else:
            mu = as_data(mean, "mean", ndim=1, min_rows=1).clone()
            if mu.shape[0] != d:
                raise ValueError(f"mean must have shape ({d},) (data_dim); got {tuple(mu.shape)}")
        self.mu = PyroParam(mu)
        if sigma is None:
            self.sigma = PyroParam(
                torch.tensor(1.0, dtype=mu.dtype), constraint=constraints.positive
            )
        else:
            self.register_buffer(
                "sigma", torch.tensor(check_positive(sigma, "sigma", allow_tensor=False))
            )
        gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
        basis = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))[0]
        self.register_buffer("basis", basis.to(mu.dtype).contiguous())
        self.B = PyroParam(torch.zeros(d - m, m, dtype=mu.dtype))
        self._projected_cov: torch.Tensor | None = None

    @property
    def W(self) -> torch.Tensor:
        """The orthonormal basis :math:`W`, shape ``(D, M)`` (differentiable)."""
        d, m = self.data_dim, self.n_components
        b = self.B
        a = b.new_zeros(d, d)
        a[m:, :m] = b
        a[:m, m:] = -b.T
        return self.basis @ torch.linalg.matrix_exp(a)[:, :m]

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x`` (called by :func:`~ppl_models.inference.fit_svi`)."""
        x = _check_x(x)
        if x.shape[1] != self.data_dim:
            raise ValueError(f"x must have {self.data_dim} columns (data_dim); got {x.shape[1]}")
        return (x,)

    @pyro_method
    def model(self, x: torch.Tensor | None = None) -> torch.Tensor:
        r"""Observe ``x`` at ``"obs"`` (plate ``"data"``) under
        :math:`\mathcal{N}(\mu + W W^\top (x - \mu), \sigma^2 I)`; returns the
        reconstructions."""
        if x is None:
            raise ValueError(
                "PCA.model needs the data x: PCA's likelihood is that of x given its own "
                "reconstruction, not a generative model (use ppl_models.ppca for one)"
            )
        like = promoted_like(self, x)
        x, w, mu, sigma = x.to(like), self.W.to(like), self.mu.to(like), self.sigma.to(like)
        z = (x - mu) @ w
        x_hat = mu + z @ w.T
        with torch.no_grad():
            self._projected_cov = (z.T @ z / x.shape[0]).detach()
        with data_plate(x.shape[0]):
            pyro.sample("obs", dist.Normal(x_hat, sigma).to_event(1), obs=x)
        return x_hat

    def guide(self, x: torch.Tensor | None = None) -> None:
        """The empty guide: no latent variables, so SVI is maximum likelihood."""

    def params(self, x: object | None = None) -> PCAParams:
        r"""The fit as :class:`PCAParams`, ``W`` rotated to the principal axes in its span.

        The rotation and the ``explained_variance`` come from the eigendecomposition of the
        :math:`M \times M` projected covariance :math:`W^\top S W`, computed from ``x``
        when given (its own mean, :math:`\bar x`, is used for :math:`S`), else from the
        data of the last call of :meth:`model` (centred by :math:`\mu`; the last minibatch
        in a minibatched fit, and with L-BFGS possibly a line-search trial point: pass
        ``x`` for exact numbers). ``mean`` is the parameter :math:`\mu`.
        """
        with torch.no_grad():
            w = self.W.detach()
            if x is not None:
                t = self.validate_data(x)[0].to(w)
                z = _centred_matmul(t, _mean(t), w)
                cov = z.T @ z / t.shape[0]
            elif self._projected_cov is not None:
                cov = self._projected_cov.to(w)
            else:
                raise ValueError("params() needs the data x before the model has seen any")
            evals, v = torch.linalg.eigh(cov)
            components = _fix_signs(w @ v.flip(1))
            return PCAParams(self.mu.detach().clone(), components, evals.flip(0).clamp_min(0))
