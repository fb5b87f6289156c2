r"""PCA's reference solutions in plain torch: the principal axes by the covariance's
eigendecomposition or the SVD (:func:`fit`), scores and reconstructions, the subspace
distance, and products with the centred data that never form it."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .._checks import (
    as_array,
    as_data,
    check_choice,
    check_int,
    check_like,
    check_positive,
)
from .._deprecation import renamed_keywords
from .._numerics import (
    Moments,
    centred_mm,
    centred_sum_sq,
    centred_tmm,
    chunk_rows,
    column_mean,
    fix_signs,
    is_stream,
    moments,
    sample_covariance,
    top_eigh,
)
from ._base import PCAParams, cast_like, check_params, check_points, check_x
from .em_algorithm import em


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
    return centred_mm(x, mean, w)


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

    Computed as :math:`X^\top Z - \bar x (1^\top Z)`; ``x`` and ``mean`` as in
    :func:`centred_matmul`, ``z`` of shape (N, M) in place of ``w``. Returns a tensor of
    shape (D, M).

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> centred_rmatmul(x, x.mean(0), torch.tensor([[-1.0], [1.0]]))
    tensor([[2.],
            [4.]])
    """
    x, mean, z = _check_product(x, mean, z, "z", (lambda x: x.shape[0], None))
    return centred_tmm(x, mean, z)


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


# ---------------------------------------------------------------------- closed forms


def _auto_method(n: int, d: int, m: int) -> str:
    small = min(n, d)
    if small > 2000 and m <= small // 10:
        return "em"
    if d <= n:
        return "eigh"
    return "svd"


@renamed_keywords(n_components="latent_dim")
def fit(
    x: object,
    latent_dim: int,
    *,
    method: str = "auto",
    chunk_size: int | None = None,
    tol: float = 1e-9,
    max_iter: int = 1000,
    seed: int | None = 0,
) -> PCAParams:
    r"""The first ``latent_dim`` principal axes of ``x`` and their variances.

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
    latent_dim : int
        :math:`M`, with :math:`1 \le M \le \min(N, D)` (formerly ``n_components``).
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
    if is_stream(x) or isinstance(x, Moments):
        check_choice(method, "method", ["auto", "eigh"])
        mom, dtype = (x, torch.float64) if isinstance(x, Moments) else moments(x)
        m = check_int(latent_dim, "latent_dim", minimum=1, maximum=min(mom.n, mom.mean.shape[0]))
        evals, evecs = top_eigh(mom.scatter / mom.n, m)
        return PCAParams(mom.mean.to(dtype), fix_signs(evecs).to(dtype), evals.to(dtype))
    x = check_x(x)
    n, d = x.shape
    m = check_int(latent_dim, "latent_dim", minimum=1, maximum=min(n, d))
    check_choice(method, "method", ["auto", "eigh", "svd", "em"])
    if method == "auto":
        method = _auto_method(n, d, m)
    if method == "em":
        return em(x, m, tol=tol, max_iter=max_iter, seed=seed).params
    mean = column_mean(x)
    if method == "eigh":
        cov = sample_covariance(x, mean, chunk_rows(x, chunk_size))
        evals, evecs = top_eigh(cov, m)
    else:
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
        evals, evecs = s[:m] ** 2 / n, vh[:m].T
    return PCAParams(mean, fix_signs(evecs).to(x.dtype), evals.to(x.dtype))


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
    params = check_params(params)
    t, single = check_points(x, params)
    p = cast_like(params, t)
    z = (t - p.mean) @ p.components
    return z[0] if single else z


def reconstruct(x: object, params: PCAParams) -> torch.Tensor:
    r"""The reconstructions :math:`\tilde x_n = \bar x + U_M U_M^\top (x_n - \bar x)`.

    Parameters
    ----------
    x, params
        As in :func:`transform`.

    Returns
    -------
    torch.Tensor, same shape as ``x``

    Examples
    --------
    >>> p = PCAParams(torch.zeros(2), torch.tensor([[1.0], [0.0]]), torch.tensor([1.0]))
    >>> reconstruct(torch.tensor([3.0, 4.0]), p)
    tensor([3., 0.])
    """
    params = check_params(params)
    t, single = check_points(x, params)
    p = cast_like(params, t)
    r = p.mean + ((t - p.mean) @ p.components) @ p.components.T
    _check_overflow(r, "reconstruct")
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
        The points to reconstruct, in the space ``params`` was fitted in.
    params : PCAParams
        A fitted PCA (:func:`fit`, :func:`em`).

    Returns
    -------
    torch.Tensor
        :math:`J`, 0-d, in the dtype of ``x`` (summed in float64).

    Examples
    --------
    >>> x = torch.tensor([[2.0, 2.0], [-2.0, -2.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> float(reconstruction_error(x, fit(x, 1)))  # the discarded eigenvalue
    1.0
    """
    params = check_params(params)
    t, _ = check_points(x, params)
    p = cast_like(params, t)
    rows = chunk_rows(t, None)
    total = torch.zeros((), dtype=torch.float64, device=t.device)
    for s in range(0, t.shape[0], rows):
        c = t[s : s + rows] - p.mean
        r = c - (c @ p.components) @ p.components.T
        total += (r.to(torch.float64) ** 2).sum()
    out = (total / t.shape[0]).to(t.dtype)
    _check_overflow(out, "reconstruction_error")
    return out


def _check_overflow(result: torch.Tensor, name: str) -> None:
    # Finite x and params can still overflow the dtype (values near its largest number).
    if not bool(torch.isfinite(result).all()):
        raise ValueError(
            f"{name}: the result overflows {result.dtype}: the values of x or params (mean, "
            "components) are too large for it; rescale x, or pass float64 data"
        )


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
    params = check_params(params)
    ev = params.explained_variance
    if isinstance(total, (torch.Tensor, np.ndarray)) and total.ndim == 0:
        total = total.item()  # a 0-d tensor is a number
    if isinstance(total, numbers.Real) and not isinstance(total, bool):
        tv = check_positive(total, "total", allow_tensor=False)
        return ev / tv
    t = check_x(total, "total")
    if t.shape[1] != params.mean.shape[0]:
        raise ValueError(
            f"total must have {params.mean.shape[0]} columns (the data dimension of params); "
            f"got {t.shape[1]}"
        )
    tv = float(centred_sum_sq(t, column_mean(t))) / t.shape[0]
    if not tv > 0:
        raise ValueError("total (the data) has no variance: every row is the same")
    return ev / tv
