"""PPCA as Pyro models: :class:`MarginalPPCA` (:math:`z` integrated out) and
:class:`LatentPPCA` (:math:`z` sampled, with a Gaussian guide)."""

from __future__ import annotations

from typing import ClassVar

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroModule, PyroParam

from .._checks import (
    check_choice,
    check_int,
    promoted_like,
)
from ..inference import data_plate, has_nan, iid, local_pyro_method
from ._base import (
    PPCAParams,
    check_fit_rows,
    check_latent_dim,
    check_params,
    log_likelihood_complete,
    log_likelihood_missing,
    m_matrix,
)

# ---------------------------------------------------------------------- Pyro models


def _num_rows(x: torch.Tensor | None, num_points: int | None, who: str) -> int:
    """The plate size of a model call: the rows of ``x``, or ``num_points`` to draw new ones."""
    if x is not None:
        return x.shape[0]
    if num_points is None:
        raise ValueError(f"{who}.model needs x or num_points")
    return check_int(num_points, "num_points", minimum=1)


class _PPCAMarginal(dist.TorchDistribution):
    r""":math:`\mathcal N(\mu, W W^\top + \sigma^2 I)` evaluated as :func:`log_likelihood`
    does: two matrix products and an :math:`M \times M` Cholesky factor (about twice as fast
    as ``LowRankMultivariateNormal.log_prob``, measured at N = 10^5, D = 100, M = 10), with
    the NaN coordinates of a value marginalised. ``sample`` draws complete points."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector

    def __init__(self, w: torch.Tensor, mu: torch.Tensor, sigma2: torch.Tensor):
        self.params = PPCAParams(w, mu, sigma2)
        super().__init__(torch.Size(), torch.Size([mu.shape[0]]), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        rows = value.reshape(-1, value.shape[-1])
        if has_nan(rows):
            out = log_likelihood_missing(rows, self.params)
        else:
            out = log_likelihood_complete(rows, self.params)
        return out.reshape(value.shape[:-1])

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
        w, mu, s2 = self.params
        low = dist.LowRankMultivariateNormal(mu, w, s2.expand(mu.shape))
        return low.sample(sample_shape)


class MarginalPPCA(PyroModule):
    r"""PPCA with :math:`z` integrated out: :math:`x_n \sim \mathcal N(\mu, W W^\top +
    \sigma^2 I)`, observed at ``"obs"`` in plate ``"data"``.

    ``W`` (``"W"``), ``mu`` (``"mu"``) and ``sigma`` (``"sigma"``, the noise standard
    deviation, :math:`\sigma^2` = ``sigma**2``) are ``PyroParam``; the guide is empty, so
    :func:`~ppl_models.inference.fit_svi` maximises the likelihood and reaches
    :func:`closed_form`'s optimum (up to the rotation of ``W``). The density is evaluated
    as in :func:`log_likelihood` (:math:`O(NDM + M^3)`: the inversion and determinant
    lemmas), with each row's missing (NaN) coordinates marginalised. Replacing a parameter
    by a ``PyroSample`` puts a prior on it (see :mod:`ppl_models.bayesian_pca`).

    Parameters
    ----------
    data_dim : int
        :math:`D`.
    latent_dim : int
        :math:`M < D`.
    init : PPCAParams, optional
        Starting point; by default ``W`` has small seeded Gaussian entries, ``mu = 0`` and
        ``sigma = 1`` (the mean moves to :math:`\bar x` within a few steps; pass
        ``init`` with ``mu`` at the sample mean to start closer).
    seed : int
        Seed of the default ``W``.

    Examples
    --------
    >>> from ppl_models.inference import fit_svi
    >>> from ppl_models.ppca import closed_form, covariance
    >>> x = torch.randn(400, 4, dtype=torch.float64) * torch.tensor([3.0, 1.0, 1.0, 1.0])
    >>> m = MarginalPPCA(4, 1)
    >>> _ = fit_svi(m, x, optimizer="lbfgs", num_steps=100, progress=False)
    >>> ref = closed_form(x, 1)
    >>> bool(torch.allclose(covariance(m.params()), covariance(ref), rtol=1e-4, atol=1e-6))
    True
    """

    def __init__(
        self, data_dim: int, latent_dim: int, *, init: PPCAParams | None = None, seed: int = 0
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.latent_dim = check_latent_dim(latent_dim, self.data_dim)
        d, m = self.data_dim, self.latent_dim
        if init is None:
            gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
            w = 0.1 * torch.randn(d, m, generator=gen, dtype=torch.get_default_dtype())
            mu, sigma = torch.zeros(d, dtype=w.dtype), torch.tensor(1.0, dtype=w.dtype)
        else:
            w, mu, s2 = check_params(init, "init")
            if w.shape != (d, m):
                raise ValueError(f"init.W must have shape ({d}, {m}); got {tuple(w.shape)}")
            w, mu, sigma = w.clone(), mu.clone(), s2.sqrt().clone()
        self.W = PyroParam(w)
        self.mu = PyroParam(mu)
        self.sigma = PyroParam(sigma, constraint=constraints.positive)

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x``: (N, D) with N >= 2, NaN allowed for missing coordinates, no empty
        row, not every row the same (the likelihood would be unbounded: sigma -> 0)."""
        return (check_fit_rows(x, self.data_dim),)

    @local_pyro_method
    def model(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """Observe ``x`` at ``"obs"``; with ``x=None`` draw ``num_points`` new points."""
        like = promoted_like(self, x)
        w, mu, sigma = self.W.to(like), self.mu.to(like), self.sigma.to(like)
        n = _num_rows(x, num_points, "MarginalPPCA")
        if x is not None:
            x = x.to(like)
        if w.dim() > 2 or mu.dim() > 1 or sigma.dim() > 0:
            # A parameter with a prior, drawn under an enclosing plate (vectorised
            # particles, a parallel Predictive), has leading batch dimensions: Pyro's
            # low-rank Gaussian broadcasts them (complete rows only).
            if x is not None and has_nan(x):
                raise ValueError(
                    "MarginalPPCA marginalises missing values (NaN) only with unbatched "
                    "parameters: draw the parameters' particles one at a time"
                )
            diag = (sigma**2).unsqueeze(-1).expand(*sigma.shape, self.data_dim)
            fn = dist.LowRankMultivariateNormal(mu, w, diag)
        else:
            # One distribution for every row, broadcast lazily (no expanded copies).
            fn = iid(_PPCAMarginal(w, mu, sigma**2))
        with data_plate(n):
            pyro.sample("obs", fn, obs=x)

    def guide(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """The empty guide: every parameter is a point estimate (maximum likelihood)."""

    def params(self) -> PPCAParams:
        """The current parameters (detached copies)."""
        with torch.no_grad():
            return PPCAParams(
                self.W.detach().clone(), self.mu.detach().clone(), (self.sigma**2).detach().clone()
            )


_LATENT_GUIDES = ("amortized", "local")


class LatentPPCA(PyroModule):
    r"""PPCA with its latent variables: :math:`z_n \sim \mathcal N(0, I_M)` at ``"z"`` and
    :math:`x_n \mid z_n \sim \mathcal N(W z_n + \mu, \sigma^2 I_D)` at ``"obs"``, both in
    plate ``"data"``, with a Gaussian guide :math:`q(z_n)`.

    :func:`~ppl_models.inference.fit_svi` maximises the evidence lower bound

    .. math::

        \mathcal L = \sum_n \mathbb E_{q(z_n)}\big[\ln p(x_n \mid z_n)\big]
            - \operatorname{KL}\big(q(z_n) \,\|\, \mathcal N(0, I)\big)
        = \ln p(X) - \sum_n \operatorname{KL}\big(q(z_n) \,\|\, p(z_n \mid x_n)\big)

    over ``W``, ``mu``, ``sigma`` (``PyroParam``, as in :class:`MarginalPPCA`) and the
    guide's parameters. The exact posterior is
    :math:`p(z_n \mid x_n) = \mathcal N(M^{-1} W^\top (x_n - \mu), \sigma^2 M^{-1})`,
    :math:`M = W^\top W + \sigma^2 I` (:func:`posterior`), so a guide family that holds it
    closes the gap and the optimum is :func:`closed_form`'s maximum likelihood. Two guides:

    - ``"amortized"``: :math:`q(z_n \mid x_n) = \mathcal N(A (x_n - b), S)` with one
      :math:`M \times D` matrix ``q_A``, one offset ``q_b`` and one full covariance
      :math:`S = L L^\top` shared by all points (``q_scale_tril``, a lower-Cholesky
      ``PyroParam``). It holds the exact posterior (:math:`A = M^{-1} W^\top`,
      :math:`b = \mu`, :math:`S = \sigma^2 M^{-1}`), and it works for new points.
    - ``"local"``: a mean-field :math:`q(z_n) = \mathcal N(m_n, \operatorname{diag}
      s_n^2)` per data point (``q_loc`` and ``q_scale``, shape (N, M)), indexed by the
      minibatch's rows when :func:`~ppl_models.inference.fit_svi` draws minibatches. It
      holds the exact posterior only where :math:`M` is diagonal, which the optimum's
      rotation :math:`W = U_M (\Lambda_M - \sigma^2 I)^{1/2}` provides; its
      :math:`2NM` parameters make convergence slower.

    Missing coordinates (NaN) are masked out of the likelihood: :math:`x_n \mid z_n`
    factorises over coordinates, so the NaN coordinates' factors are dropped and the
    model is PPCA on each row's observed coordinates. The amortized guide then sets the
    centred missing coordinates to 0 in :math:`A (x_n - b)`: the exact posterior (whose
    :math:`M_n` depends on which coordinates are observed) is then no longer in its
    family, and the ELBO stays below the observed-data log-likelihood. The local guide
    is unaffected (and exact where the row's :math:`M_n` is diagonal).

    Parameters
    ----------
    data_dim, latent_dim : int
        :math:`D` and :math:`M < D`.
    guide : {"amortized", "local"}
        The guide family.
    num_data : int, optional
        :math:`N`, the number of data points; required by the ``"local"`` guide, which
        holds parameters for each of them (fit it on exactly those points).
    init : PPCAParams, optional
        Starting point of the model's parameters; the amortized guide then starts at its
        exact posterior. By default ``W`` has small seeded Gaussian entries, ``mu = 0``,
        ``sigma = 1``, and the guides start at the prior :math:`\mathcal N(0, I)` (the
        amortized one with small seeded entries in ``q_A``).
    seed : int
        Seed of the default starting point.

    References
    ----------
    Tipping & Bishop (1999); PRML 12.2 and 10.1; Kingma & Welling, *Auto-Encoding
    Variational Bayes* (2014), for the amortized (encoder) guide.

    Examples
    --------
    At the maximum likelihood, with the amortized guide at the exact posterior, every draw
    of the ELBO equals the log-likelihood:

    >>> from pyro.infer import Trace_ELBO
    >>> from ppl_models.ppca import closed_form, log_likelihood
    >>> x = torch.randn(100, 3, dtype=torch.float64) * torch.tensor([3.0, 1.0, 1.0])
    >>> ref = closed_form(x, 1)
    >>> m = LatentPPCA(3, 1, init=ref)
    >>> elbo = -Trace_ELBO().loss(m.model, m.guide, x)
    >>> abs(elbo - float(log_likelihood(x, ref).sum())) < 1e-8
    True

    Fitting from the default start (see ``tests/test_ppca_latent.py`` for converged runs):

    >>> from ppl_models.inference import fit_svi
    >>> m = LatentPPCA(3, 1)
    >>> fit_svi(m, x, num_steps=20, lr=0.05, seed=0, progress=False).num_steps
    20
    >>> m.params().W.shape
    torch.Size([3, 1])
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        *,
        guide: str = "amortized",
        num_data: int | None = None,
        init: PPCAParams | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.latent_dim = check_latent_dim(latent_dim, self.data_dim)
        self.guide_kind = check_choice(guide, "guide", list(_LATENT_GUIDES))
        d, m = self.data_dim, self.latent_dim
        if self.guide_kind == "local":
            if num_data is None:
                raise ValueError(
                    "the 'local' guide holds parameters for every data point: pass num_data "
                    "(the number of rows of the data it will be fitted on)"
                )
            num_data = check_int(num_data, "num_data", minimum=1)
        self.num_data = num_data
        gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
        dtype = torch.get_default_dtype()
        if init is None:
            w = 0.1 * torch.randn(d, m, generator=gen, dtype=dtype)
            mu, sigma = torch.zeros(d, dtype=dtype), torch.tensor(1.0, dtype=dtype)
            q_a = 0.1 * torch.randn(m, d, generator=gen, dtype=dtype)
            q_b, q_tril = torch.zeros(d, dtype=dtype), torch.eye(m, dtype=dtype)
        else:
            w, mu, s2 = check_params(init, "init")
            if w.shape != (d, m):
                raise ValueError(f"init.W must have shape ({d}, {m}); got {tuple(w.shape)}")
            w, mu, sigma = w.clone(), mu.clone(), s2.sqrt().clone()
            # The exact posterior of init: A = M^{-1} W^T, b = mu, S = sigma^2 M^{-1}.
            chol = torch.linalg.cholesky(m_matrix(w, s2))
            q_a, q_b = torch.cholesky_solve(w.T, chol), mu.clone()
            q_tril = torch.linalg.cholesky(s2 * torch.cholesky_inverse(chol))
        self.W = PyroParam(w)
        self.mu = PyroParam(mu)
        self.sigma = PyroParam(sigma, constraint=constraints.positive)
        if self.guide_kind == "amortized":
            self.q_A = PyroParam(q_a)
            self.q_b = PyroParam(q_b)
            self.q_scale_tril = PyroParam(q_tril, constraint=constraints.lower_cholesky)
        else:
            self.q_loc = PyroParam(torch.zeros(num_data, m, dtype=w.dtype))
            self.q_scale = PyroParam(
                torch.ones(num_data, m, dtype=w.dtype), constraint=constraints.positive
            )

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x``: (N, D), NaN allowed for missing coordinates, no empty row; with
        the local guide, exactly ``num_data`` rows."""
        x = check_fit_rows(x, self.data_dim)
        if self.guide_kind == "local" and x.shape[0] != self.num_data:
            raise ValueError(
                f"x must have num_data = {self.num_data} rows for the local guide, which holds "
                f"one q(z_n) per data point; got {x.shape[0]}"
            )
        return (x,)

    @local_pyro_method
    def model(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """Sample ``"z"``, then observe ``x`` at ``"obs"`` (NaN coordinates masked out);
        with ``x=None`` draw ``num_points`` new points."""
        like = promoted_like(self, x)
        w, mu, sigma = self.W.to(like), self.mu.to(like), self.sigma.to(like)
        n = _num_rows(x, num_points, "LatentPPCA")
        zero = like.new_zeros(self.latent_dim)
        if x is not None:
            x = x.to(like)
        with data_plate(n):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            fn = dist.Normal(mu + z @ w.T, sigma)
            if x is not None:
                if has_nan(x):
                    observed = ~torch.isnan(x)
                    # Dropping a coordinate's factor is marginalising it: x | z factorises.
                    fn = fn.mask(observed)
                    x = torch.where(observed, x, torch.zeros((), dtype=x.dtype, device=x.device))
            pyro.sample("obs", fn.to_event(1), obs=x)

    @local_pyro_method
    def guide(self, x: torch.Tensor | None = None, *, num_points: int | None = None) -> None:
        """Sample ``"z"`` from the guide chosen at construction (see the class docstring)."""
        if x is None:
            raise ValueError("LatentPPCA.guide needs the data x (it is a posterior over z)")
        plate = data_plate(x.shape[0])
        if self.guide_kind == "local" and plate.size != self.num_data:
            raise ValueError(
                f"the local guide holds q(z_n) for num_data = {self.num_data} points; got "
                f"data of {plate.size} points"
            )
        like = promoted_like(self, x)
        with plate as idx:
            if self.guide_kind == "local":
                loc, scale = self.q_loc[idx].to(like), self.q_scale[idx].to(like)
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))
                return
            x = x.to(like)
            xc = x - self.q_b.to(like)
            if has_nan(x):
                xc = torch.where(
                    torch.isnan(x), torch.zeros((), dtype=x.dtype, device=x.device), xc
                )
            loc = xc @ self.q_A.to(like).T
            scale_tril = self.q_scale_tril.to(like)
            pyro.sample("z", dist.MultivariateNormal(loc, scale_tril=scale_tril))

    def params(self) -> PPCAParams:
        """The current model parameters (detached copies)."""
        with torch.no_grad():
            return PPCAParams(
                self.W.detach().clone(), self.mu.detach().clone(), (self.sigma**2).detach().clone()
            )
