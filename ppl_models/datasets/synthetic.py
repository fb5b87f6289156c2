"""Synthetic data for every topic, each drawn from a known truth: the noisy sine curve
(regression), two Gaussian classes (logistic regression), PPCA data with known
``W`` and Bishop's Bayesian-PCA data. Every generator takes a ``seed``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .._deprecation import renamed_keywords

# --- regression data (owned by the regression topic) ---


@renamed_keywords(n="num_points")
def make_sin_data(
    num_points: int,
    noise_std: float = 0.3,
    seed: int | None = 0,
    design: str = "even",
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The curve-fitting data of PRML 1.1 (Fig. 1.2, Appendix A):
    :math:`t_n = \sin(2\pi x_n) + \epsilon_n`, :math:`\epsilon_n \sim \mathcal{N}(0,
    \text{noise\_std}^2)`.

    Parameters
    ----------
    num_points : int
        Number of points, at least 1 (formerly ``n``).
    noise_std : float
        Standard deviation of the Gaussian noise, :math:`\ge 0` (0.3 in PRML).
    seed : int, optional
        Seed of the noise (and of ``x`` when ``design="uniform"``).
    design : {"even", "uniform"}
        ``"even"``: ``x`` evenly spaced on :math:`[0, 1]` endpoints included, as in PRML
        Fig. 1.2; ``"uniform"``: ``x`` drawn uniformly on :math:`[0, 1]` and sorted.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    x, t : torch.Tensor, shape (num_points,)
        Inputs and noisy targets.

    Examples
    --------
    >>> x, t = make_sin_data(10, seed=0)
    >>> x.shape, float(x[0]), float(x[-1])
    (torch.Size([10]), 0.0, 1.0)
    """
    from .._checks import check_choice, check_int

    n = check_int(num_points, "num_points", minimum=1)
    if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float, np.floating)):
        raise TypeError(f"noise_std must be a number; got {type(noise_std).__name__}")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and >= 0; got {noise_std!r}")
    check_choice(design, "design", ["even", "uniform"])
    rng = np.random.default_rng(seed)
    if design == "even":
        x = np.linspace(0.0, 1.0, n)
    else:
        x = np.sort(rng.uniform(0.0, 1.0, n))
    t = np.sin(2.0 * np.pi * x) + noise_std * rng.standard_normal(n)
    return torch.as_tensor(x, dtype=dtype), torch.as_tensor(t, dtype=dtype)


# --- logistic data (owned by the logistic topic) ---


@renamed_keywords(n="num_points")
def make_two_class(
    num_points: int,
    seed: int | None = 0,
    separable: bool = False,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Two classes in the plane for logistic regression: Gaussian blobs with identity
    covariance around :math:`\pm(0.75, 0.75)` (overlapping), or, with ``separable=True``,
    around :math:`\pm(1.5, 1.5)` with every point at least 0.25 from the line
    :math:`x_1 + x_2 = 0` on its own class's side (linearly separable, no
    maximum-likelihood estimate).

    Parameters
    ----------
    num_points : int
        Number of points, at least 2: ``num_points // 2`` of class 0, the rest of class 1,
        in a random order (formerly ``n``).
    seed : int, optional
        Seed of the draws.
    separable : bool
        Draw linearly separable classes.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    x : torch.Tensor, shape (num_points, 2)
        Inputs (add a column of ones for a bias: ``ppl_models.logistic.add_bias``).
    t : torch.Tensor, shape (num_points,)
        Targets, 0 or 1.

    Examples
    --------
    >>> x, t = make_two_class(6, seed=0)
    >>> x.shape, sorted(t.tolist())
    (torch.Size([6, 2]), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    """
    from .._checks import check_int

    n = check_int(num_points, "num_points", minimum=2)
    if not isinstance(separable, (bool, np.bool_)):
        raise TypeError(f"separable must be a bool; got {type(separable).__name__}")
    rng = np.random.default_rng(seed)
    t = np.zeros(n)
    t[n // 2 :] = 1.0
    t = t[rng.permutation(n)]
    sign = 2.0 * t - 1.0
    centre = 1.5 if separable else 0.75
    x = sign[:, None] * centre + rng.standard_normal((n, 2))
    if separable:
        # Redraw the points on the wrong side of (or too close to) x1 + x2 = 0.
        margin = 0.25 * np.sqrt(2.0)
        bad = sign * x.sum(1) < margin
        while bad.any():
            x[bad] = sign[bad, None] * centre + rng.standard_normal((int(bad.sum()), 2))
            bad = sign * x.sum(1) < margin
    return torch.as_tensor(x, dtype=dtype), torch.as_tensor(t, dtype=dtype)


# --- ppca data (owned by the PPCA topic) ---


class PPCATruth(NamedTuple):
    """The parameters a PPCA sample was drawn from: the fields of
    :class:`ppl_models.ppca.PPCAParams`, which every PPCA function accepts in its place
    (``ppca.PPCAParams(*truth)`` converts). Defined here because the data sets stand below
    the topics and import none of them."""

    W: torch.Tensor
    mu: torch.Tensor
    sigma2: torch.Tensor


class PPCAData(NamedTuple):
    """Points drawn from a PPCA model, with the truth they were drawn from.

    Attributes
    ----------
    x : torch.Tensor, shape (n, d)
        The data points.
    z : torch.Tensor, shape (n, latent_dim)
        Their latent coordinates.
    W : torch.Tensor, shape (d, latent_dim)
        The true loadings: orthogonal columns with squared norms ``signal``.
    mu : torch.Tensor, shape (d,)
        The true mean.
    sigma2 : torch.Tensor, shape ()
        The true noise variance.
    """

    x: torch.Tensor
    z: torch.Tensor
    W: torch.Tensor
    mu: torch.Tensor
    sigma2: torch.Tensor

    @property
    def params(self) -> PPCATruth:
        """The truth ``(W, mu, sigma2)``, to pass wherever a ``PPCAParams`` goes."""
        return PPCATruth(self.W, self.mu, self.sigma2)


@renamed_keywords(n="num_points")
def make_ppca_data(
    num_points: int,
    d: int,
    latent_dim: int,
    sigma2: float = 1.0,
    *,
    signal=None,
    seed: int | None = 0,
    dtype: torch.dtype = torch.float64,
) -> PPCAData:
    r"""Draw from a PPCA model with known parameters: :math:`z_n \sim \mathcal N(0, I_M)`,
    :math:`x_n = W z_n + \mu + \sigma \epsilon_n`, :math:`\epsilon_n \sim \mathcal N(0, I_D)`.

    :math:`W = Q\,\mathrm{diag}(\sqrt{s_1}, \dots, \sqrt{s_M})` with :math:`Q` (D x M)
    random orthonormal columns, so the covariance :math:`W W^\top + \sigma^2 I` has the
    eigenvalues :math:`s_j + \sigma^2` along the columns and :math:`\sigma^2` elsewhere;
    :math:`\mu \sim \mathcal N(0, I)`.

    Parameters
    ----------
    num_points, d : int
        Number of points (formerly ``n``) and dimension, :math:`d \ge 2`.
    latent_dim : int
        :math:`M`, :math:`1 \le M < d`.
    sigma2 : float
        The noise variance :math:`\sigma^2 > 0`.
    signal : sequence of float, optional
        The squared column norms :math:`s_1, \dots, s_M` (positive). By default
        :math:`5\sigma^2 (M, M-1, \dots, 1)`: strong, distinct directions.
    seed : int, optional
        Seed of :math:`Q`, :math:`\mu` and the points.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    PPCAData
        ``(x, z, W, mu, sigma2)``; ``.params`` gives the truth ``(W, mu, sigma2)``.

    Examples
    --------
    >>> data = make_ppca_data(200, 10, 3, sigma2=0.5, seed=0)
    >>> data.x.shape, data.W.shape, float(data.sigma2)
    (torch.Size([200, 10]), torch.Size([10, 3]), 0.5)
    >>> [round(float(v), 6) for v in (data.W.T @ data.W).diagonal()]
    [7.5, 5.0, 2.5]
    """
    from .._checks import check_int, check_positive

    n = check_int(num_points, "num_points", minimum=1)
    d = check_int(d, "d", minimum=2)
    m = check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)
    s2 = check_positive(sigma2, "sigma2", allow_tensor=False)
    if signal is None:
        s = 5.0 * s2 * np.arange(m, 0, -1, dtype=np.float64)
    else:
        s = np.asarray(signal, dtype=np.float64).reshape(-1)
        if s.shape[0] != m or not (np.isfinite(s).all() and (s > 0).all()):
            raise ValueError(
                f"signal must hold {m} positive finite numbers (one per column of W); "
                f"got {s.tolist()}"
            )
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, m)))
    q = q * np.sign(np.diag(r))
    w = q * np.sqrt(s)
    mu = rng.standard_normal(d)
    z = rng.standard_normal((n, m))
    x = z @ w.T + mu + np.sqrt(s2) * rng.standard_normal((n, d))
    return PPCAData(
        torch.as_tensor(x, dtype=dtype),
        torch.as_tensor(z, dtype=dtype),
        torch.as_tensor(w, dtype=dtype),
        torch.as_tensor(mu, dtype=dtype),
        torch.tensor(s2, dtype=dtype),
    )


# --- bayesian pca data (owned by the Bayesian PCA topic) ---


class BishopBPCAData(NamedTuple):
    """Bishop's Bayesian-PCA data with the truth it was drawn from.

    Attributes
    ----------
    x : torch.Tensor, shape (n, d)
        The data points (mean zero in expectation).
    directions : torch.Tensor, shape (d, k)
        Orthonormal directions of the large standard deviation.
    W : torch.Tensor, shape (d, k)
        The true PPCA loadings, ``directions * sqrt(signal_std**2 - noise_std**2)``, so
        that the true covariance is ``W W^T + sigma2 I``.
    sigma2 : torch.Tensor, shape ()
        The true noise variance ``noise_std**2``.
    """

    x: torch.Tensor
    directions: torch.Tensor
    W: torch.Tensor
    sigma2: torch.Tensor


@renamed_keywords(n="num_points")
def make_bishop_bpca_data(
    num_points: int = 300,
    d: int = 10,
    latent_dim: int = 3,
    signal_std: float = 1.0,
    noise_std: float = 0.5,
    seed: int | None = 0,
    dtype: torch.dtype = torch.float64,
) -> BishopBPCAData:
    r"""The data of Bishop's Bayesian-PCA experiment (Bishop 1999; PRML Fig. 12.14):
    Gaussian points with standard deviation ``signal_std`` in ``latent_dim`` random
    orthogonal directions and ``noise_std`` in the other ``d - latent_dim``.

    The covariance is :math:`Q\,\mathrm{diag}(s^2, \dots, s^2, \epsilon^2, \dots)\,Q^\top`
    with :math:`Q` a random orthogonal matrix, that is the PPCA covariance
    :math:`W W^\top + \sigma^2 I` with :math:`W = Q_{:, :k} \sqrt{s^2 - \epsilon^2}` and
    :math:`\sigma^2 = \epsilon^2`.

    Parameters
    ----------
    num_points, d : int
        Number of points (300 in the paper; formerly ``n``) and dimension (10).
    latent_dim : int
        The number of large directions, :math:`1 \le k < d` (3).
    signal_std, noise_std : float
        Standard deviations along the large and the other directions (1.0 and 0.5);
        ``signal_std > noise_std > 0``.
    seed : int, optional
        Seed of the directions and the points.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    BishopBPCAData
        ``(x, directions, W, sigma2)``.

    Examples
    --------
    >>> data = make_bishop_bpca_data(seed=0)
    >>> data.x.shape, data.W.shape, float(data.sigma2)
    (torch.Size([300, 10]), torch.Size([10, 3]), 0.25)
    """
    from .._checks import check_int, check_positive

    n = check_int(num_points, "num_points", minimum=1)
    d = check_int(d, "d", minimum=2)
    k = check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)
    s = check_positive(signal_std, "signal_std", allow_tensor=False)
    e = check_positive(noise_std, "noise_std", allow_tensor=False)
    if not s > e:
        raise ValueError(f"signal_std must exceed noise_std; got signal_std={s!r}, noise_std={e!r}")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
    stds = np.full(d, e)
    stds[:k] = s
    x = (rng.standard_normal((n, d)) * stds) @ q.T
    directions = q[:, :k]
    w = directions * np.sqrt(s**2 - e**2)
    return BishopBPCAData(
        torch.as_tensor(x, dtype=dtype),
        torch.as_tensor(directions, dtype=dtype),
        torch.as_tensor(w, dtype=dtype),
        torch.tensor(e**2, dtype=dtype),
    )


def make_unit_ppca_data(num_points: int, d: int, latent_dim: int, seed: int = 0) -> torch.Tensor:
    """Draws from a PPCA on a unit scale: columns of W of norms about 3, 2, 1.5, 1 over
    :math:`\\sqrt d`, :math:`\\sigma^2 = 0.5`, a random mean; float64, shape
    (num_points, d), ``latent_dim`` at most 4. The linear VAE's data (it is PPCA).

    Examples
    --------
    >>> make_unit_ppca_data(100, 10, 2).shape
    torch.Size([100, 10])
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, latent_dim)) * np.array([3.0, 2.0, 1.5, 1.0][:latent_dim]) / np.sqrt(d)
    mu = rng.normal(size=d)
    x = rng.normal(size=(num_points, latent_dim)) @ w.T + mu
    x = x + np.sqrt(0.5) * rng.normal(size=(num_points, d))
    return torch.from_numpy(x)
