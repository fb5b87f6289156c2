r"""Basis functions: the columns of the design matrix :math:`\Phi`."""

from __future__ import annotations

import math

import torch

from .._checks import as_data, check_int, check_positive


def polynomial_features(x: object, degree: int) -> torch.Tensor:
    r"""The polynomial design matrix :math:`\Phi_{nj} = x_n^j`, :math:`j = 0, \dots,
    \text{degree}` (PRML 1.1).

    Parameters
    ----------
    x : array_like, shape (N,)
        Inputs. Floating inputs keep their dtype.
    degree : int
        The polynomial order :math:`M - 1 \ge 0` (degree 0 is the constant column).

    Returns
    -------
    torch.Tensor, shape (N, degree + 1)
        Columns :math:`x^0, x^1, \dots, x^{\text{degree}}`.

    Examples
    --------
    >>> polynomial_features(torch.tensor([1.0, 2.0]), 2)
    tensor([[1., 1., 1.],
            [1., 2., 4.]])
    """
    x = as_data(x, "x", ndim=1, min_rows=1)
    degree = check_int(degree, "degree", minimum=0)
    # torch.linalg.vander refuses N=1, and integer powers are exact enough here.
    phi = x[:, None] ** torch.arange(degree + 1, device=x.device, dtype=x.dtype)
    if not bool(torch.isfinite(phi).all()):
        raise ValueError(
            f"x ** degree overflows {x.dtype} (max |x| = {float(x.abs().max()):.3g}, degree "
            f"{degree}): rescale x (e.g. to [-1, 1]) or pass float64 data"
        )
    return phi


def gaussian_features(x: object, centers: object, width: float) -> torch.Tensor:
    r"""Gaussian basis functions with a bias column (PRML 3.4):
    :math:`\phi_0 = 1`, :math:`\phi_j(x) = \exp\left(-\frac{(x - \mu_j)^2}{2 s^2}\right)`.

    Parameters
    ----------
    x : array_like, shape (N,)
        Inputs.
    centers : array_like, shape (K,)
        The centres :math:`\mu_j`.
    width : float
        The common width :math:`s > 0`.

    Returns
    -------
    torch.Tensor, shape (N, K + 1)
        The bias column followed by one column per centre, in ``x``'s dtype.

    Examples
    --------
    >>> gaussian_features(torch.tensor([0.0, 1.0]), torch.tensor([0.0]), 1.0)
    tensor([[1.0000, 1.0000],
            [1.0000, 0.6065]])
    """
    x = as_data(x, "x", ndim=1, min_rows=1)
    centers = as_data(centers, "centers", ndim=1, min_rows=1).to(x)
    s = check_positive(width, "width", allow_tensor=False)
    two_s2 = torch.tensor(2.0 * s * s, dtype=x.dtype)
    if not (0 < float(two_s2) < math.inf):
        raise ValueError(
            f"width = {s!r} has a square that {x.dtype} cannot hold (it under- or overflows); "
            "rescale x and the centres"
        )
    bumps = torch.exp(-((x[:, None] - centers[None, :]) ** 2) / two_s2.to(x.device))
    return torch.cat([torch.ones_like(x)[:, None], bumps], dim=1)
