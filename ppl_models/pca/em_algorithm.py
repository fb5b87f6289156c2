r"""Roweis's EM for PCA: the principal subspace in :math:`O(NDM)` per iteration, without
forming the covariance."""

from __future__ import annotations

import math

import torch

from .._checks import as_data, check_int, check_positive
from .._deprecation import renamed_keywords
from .._numerics import centred_mm, centred_sum_sq, centred_tmm, column_mean, fix_signs
from ._base import EMResult, PCAParams, check_x


@renamed_keywords(n_components="latent_dim")
def em(
    x: object,
    latent_dim: int,
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
    latent_dim : int
        :math:`M`, with :math:`1 \le M \le \min(N, D)` (formerly ``n_components``).
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
        ``(params, log_likelihood, n_iter, converged)``; ``log_likelihood`` holds
        :math:`-J` after every M-step (it never decreases).

    References
    ----------
    S. Roweis, *EM algorithms for PCA and SPCA*, NIPS 10 (1998).

    Examples
    --------
    >>> from ppl_models.pca import fit, projector_distance
    >>> x = torch.randn(200, 5, dtype=torch.float64) * torch.tensor([5.0, 3, 1, 1, 1])
    >>> r = em(x, 2, seed=0)
    >>> r.converged, bool(projector_distance(r.params.components, fit(x, 2).components) < 1e-7)
    (True, True)
    """
    x = check_x(x)
    n, d = x.shape
    m = check_int(latent_dim, "latent_dim", minimum=1, maximum=min(n, d))
    tol = check_positive(tol, "tol", allow_tensor=False)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    mean = column_mean(x)
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
    total = float(centred_sum_sq(x, mean))
    objective = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is read after the loop
        z = centred_mm(x, mean, q)  # E-step (Q orthonormal: (Q^T Q)^{-1} = I)
        g = z.T @ z
        b = centred_tmm(x, mean, z)
        w, info = torch.linalg.solve_ex(g, b.T)  # M-step W = X~^T Z (Z^T Z)^{-1}
        w = w.T
        if int(info) != 0 or not bool(torch.isfinite(w).all()):
            raise ValueError(
                f"x's centred rows span fewer than latent_dim = {m} directions (Z^T Z is "
                "singular): use a smaller latent_dim, at most the rank of the centred data"
            )
        # J(W, Z) = (||X~||^2 - tr(W^T X~^T Z)) / N at the M-step's optimum.
        objective.append((total - float((w.to(torch.float64) * b.to(torch.float64)).sum())) / n)
        q_new = torch.linalg.qr(w)[0]
        moved = math.sqrt(2.0) * float(torch.linalg.norm(q_new - q @ (q.T @ q_new)))
        q = q_new
        if moved < tol:
            converged = True
            break
    z = centred_mm(x, mean, q)
    evals, v = torch.linalg.eigh((z.T @ z).to(torch.float64) / n)
    evals, v = evals.flip(0).clamp_min(0), v.flip(1)
    components = fix_signs(q.to(torch.float64) @ v).to(x.dtype)
    params = PCAParams(mean, components, evals.to(x.dtype))
    return EMResult(params, -torch.tensor(objective, dtype=torch.float64), it, converged)
