"""What the PCA modules share: the parameters container, the EM result and the input
checks."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from .._checks import (
    as_array,
    as_data,
    check_same_device,
)
from .._deprecation import warn_renamed


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
    r"""What :func:`ppl_models.ppca.em` and :func:`ppl_models.pca.em` return: one shape
    for every EM of the library (issue 18; ``ppl_models.ppca.EMResult`` is this class).

    Attributes
    ----------
    params : PPCAParams or PCAParams
        The parameters after the last iteration.
    log_likelihood : torch.Tensor, shape (n_iter + 1,) or (n_iter,)
        The objective that EM maximises, float64, which never decreases. For PPCA, the
        total (observed-data) log-likelihood :math:`\ln p(X \mid W, \mu, \sigma^2)` of
        the starting point and after every iteration (``n_iter + 1`` values). For PCA
        (Roweis's EM, the :math:`\sigma^2 \to 0` limit of PPCA's), :math:`-J`, minus the
        mean squared reconstruction error, after every M-step (``n_iter`` values): as
        :math:`\sigma^2 \to 0`, :math:`\frac{2\sigma^2}{N} \ln p(X \mid W)` tends to minus
        the reconstruction error of the projection onto the span of :math:`W`.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the stopping rule (``tol``) was met before ``max_iter``.
    """

    params: Any
    log_likelihood: torch.Tensor
    n_iter: int
    converged: bool

    @property
    def objective(self) -> torch.Tensor:
        """Deprecated: ``pca.em``'s old field, :math:`J` (``-log_likelihood``)."""
        warn_renamed("EMResult.objective", "-EMResult.log_likelihood")
        return -self.log_likelihood


# ---------------------------------------------------------------------------- helpers


def check_x(x: object, name: str = "x") -> torch.Tensor:
    return as_data(x, name, ndim=2, min_rows=2)


def check_params(params: object, name: str = "params") -> PCAParams:
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


def check_points(x: object, params: PCAParams, name: str = "x") -> tuple[torch.Tensor, bool]:
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


def cast_like(params: PCAParams, x: torch.Tensor) -> PCAParams:
    return PCAParams(*(p.to(device=x.device, dtype=x.dtype) for p in params))
