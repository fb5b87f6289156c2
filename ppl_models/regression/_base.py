"""What the regression modules share: the containers, the input checks and the SVD that
every closed form starts from."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._checks import as_design, check_positive


class RegressionParams(NamedTuple):
    """Point parameters of the regression: weights ``w`` ``(M,)`` and noise precision
    ``beta`` ``()`` (the noise variance is ``1 / beta``)."""

    w: torch.Tensor
    beta: torch.Tensor


class Posterior(NamedTuple):
    """The Gaussian posterior of the weights: ``mean`` :math:`m_N` ``(M,)`` and
    ``covariance`` :math:`S_N` ``(M, M)``."""

    mean: torch.Tensor
    covariance: torch.Tensor


class EvidenceResult(NamedTuple):
    """What :func:`maximize_evidence` returns.

    Attributes
    ----------
    alpha, beta : torch.Tensor, shape ()
        The hyperparameters at the maximum of the evidence.
    gamma : torch.Tensor, shape ()
        The effective number of well-determined parameters at that point.
    log_evidence : torch.Tensor, shape ()
        :math:`\\ln p(t \\mid \\alpha, \\beta)` there.
    num_iter : int
        Re-estimation iterations taken.
    converged : bool
        Whether the tolerance was met within ``max_iter``.
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    gamma: torch.Tensor
    log_evidence: torch.Tensor
    num_iter: int
    converged: bool


# Below this effective number of parameters, alpha is taken to have diverged.
GAMMA_FLOOR = 1e-10


def check_xy(phi: object, t: object) -> tuple[torch.Tensor, torch.Tensor]:
    return as_design(phi, t)


def check_precision(value: object, name: str, like: torch.Tensor) -> torch.Tensor:
    v = check_positive(value, name)
    if isinstance(v, torch.Tensor) and v.numel() != 1:
        raise ValueError(f"{name} must be a single number; got a tensor of shape {tuple(v.shape)}")
    t = torch.as_tensor(v, dtype=like.dtype, device=like.device).reshape(())
    # A precision whose reciprocal (a variance) or itself is not representable in the
    # data's dtype would turn into 0 or inf inside the formulas.
    if not (bool(torch.isfinite(t)) and bool(torch.isfinite(1.0 / t)) and float(t) > 0):
        raise ValueError(
            f"{name} = {float(v):g} is out of the range of {like.dtype}: it or its reciprocal "
            "under- or overflows; rescale the data or pass float64"
        )
    return t


def thin_svd(phi: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD ``phi = U diag(s) Vh`` (``k = min(N, M)`` singular values), returned as
    ``(U^T t, s, Vh)``: every closed form here needs ``U`` only through ``U^T t``."""
    n, m = phi.shape
    if n > 2 * m:
        # Tall design matrices: QR first, then the SVD of the small R (phi = Q R,
        # R = U_r S Vh, so U^T t = U_r^T Q^T t). Both steps are backward stable, and U is
        # never formed (forming Q U_r cost as much as the QR itself at N = 1e5, M = 10).
        Q, R = torch.linalg.qr(phi)
        U_r, s, Vh = torch.linalg.svd(R)
        return U_r.T @ (Q.T @ t), s, Vh
    U, s, Vh = torch.linalg.svd(phi, full_matrices=False)
    return U.T @ t, s, Vh


def posterior_svd(
    phi: torch.Tensor,
    t: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """m_N and the eigenvalues of A along the rows of Vh, from ``thin_svd(phi, t)``."""
    c, s, Vh = svd
    d = alpha + beta * s * s  # eigenvalues of A = alpha I + beta Phi^T Phi in span(Vh)
    mean = Vh.T @ (beta * s * c / d)
    return mean, d


def check_overflow(values: tuple, alpha: torch.Tensor, beta: torch.Tensor) -> None:
    """Precisions that the dtype holds can still overflow in beta s^2 or alpha m^T m."""
    if not all(bool(torch.isfinite(v).all()) for v in values):
        raise ValueError(
            f"alpha = {float(alpha):g} and beta = {float(beta):g} overflow "
            f"{alpha.dtype} with these data (in beta * s^2 or the posterior): rescale phi and "
            "t, or choose less extreme precisions"
        )
