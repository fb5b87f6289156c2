r"""PCA as a Pyro model: :class:`PCA`, whose maximum likelihood is the principal subspace."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam

from .._checks import (
    as_data,
    check_int,
    check_positive,
    promoted_like,
)
from .._deprecation import renamed_keywords, warn_renamed
from .._numerics import (
    centred_mm,
    column_mean,
    fix_signs,
)
from ..inference import data_plate, local_pyro_method
from ._base import PCAParams, check_x

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
    latent_dim : int
        :math:`M`, with :math:`1 \le M < D` (formerly ``n_components``).
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
    >>> from ppl_models.pca import fit, projector_distance
    >>> x = torch.randn(300, 4, dtype=torch.float64) * torch.tensor([3.0, 2.0, 0.5, 0.3])
    >>> m = PCA(4, 2, mean=x.mean(0))
    >>> _ = fit_svi(m, x, optimizer="lbfgs", num_steps=50, progress=False)
    >>> bool(projector_distance(m.principal_axes(x).components, fit(x, 2).components) < 1e-5)
    True
    """

    @renamed_keywords(n_components="latent_dim")
    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        *,
        mean: object | None = None,
        sigma: float | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1, maximum=self.data_dim - 1)
        d, m = self.data_dim, self.latent_dim
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
        d, m = self.data_dim, self.latent_dim
        b = self.B
        a = b.new_zeros(d, d)
        a[m:, :m] = b
        a[:m, m:] = -b.T
        return self.basis @ torch.linalg.matrix_exp(a)[:, :m]

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x`` (called by :func:`~ppl_models.inference.fit_svi`)."""
        x = check_x(x)
        if x.shape[1] != self.data_dim:
            raise ValueError(f"x must have {self.data_dim} columns (data_dim); got {x.shape[1]}")
        return (x,)

    @local_pyro_method
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

    @property
    def n_components(self) -> int:
        """Deprecated: :attr:`latent_dim`."""
        warn_renamed("PCA.n_components", "PCA.latent_dim")
        return self.latent_dim

    def params(self, x: object | None = None) -> PCAParams:
        r"""The fit as :class:`PCAParams`, ``W`` rotated to the principal axes in its span.

        The rotation and the ``explained_variance`` come from the eigendecomposition of the
        :math:`M \times M` projected covariance :math:`W^\top S W` of the data of the last
        call of :meth:`model` (centred by :math:`\mu`; the last minibatch in a minibatched
        fit, and with L-BFGS possibly a line-search trial point: :meth:`principal_axes`
        gives exact numbers on given data). ``mean`` is the parameter :math:`\mu`.
        (``params(x)`` is the deprecated spelling of ``principal_axes(x)``.)
        """
        if x is not None:
            warn_renamed("PCA.params(x)", "PCA.principal_axes(x)")
            return self.principal_axes(x)
        if self._projected_cov is None:
            raise ValueError(
                "params() needs a call of the model first (fit_svi makes them); or use "
                "principal_axes(x) on data"
            )
        with torch.no_grad():
            w = self.W.detach()
            return self._rotated(w, self._projected_cov.to(w))

    def principal_axes(self, x: object) -> PCAParams:
        r"""The fit as :class:`PCAParams` measured on ``x``: ``W`` rotated to the
        eigenvectors of the :math:`M \times M` projected covariance :math:`W^\top S W` of
        ``x`` (about its own mean :math:`\bar x`), their eigenvalues as
        ``explained_variance``; ``mean`` is the parameter :math:`\mu`."""
        with torch.no_grad():
            w = self.W.detach()
            t = self.validate_data(x)[0].to(w)
            z = centred_mm(t, column_mean(t), w)
            return self._rotated(w, z.T @ z / t.shape[0])

    def _rotated(self, w: torch.Tensor, cov: torch.Tensor) -> PCAParams:
        evals, v = torch.linalg.eigh(cov)
        components = fix_signs(w @ v.flip(1))
        return PCAParams(self.mu.detach().clone(), components, evals.flip(0).clamp_min(0))
