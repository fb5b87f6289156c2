r"""Bayesian PCA as a Pyro model: :class:`BayesianPCA`, with ARD priors on PPCA's
parameters, its autoguide and a closed-form NUTS potential for the marginal form."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Predictive
from pyro.infer.autoguide import AutoDelta, AutoLowRankMultivariateNormal, AutoNormal
from pyro.infer.autoguide.initialization import init_to_feasible
from pyro.nn import PyroModule, PyroSample

from .._checks import (
    as_data,
    check_choice,
    check_int,
    check_positive,
    promoted_like,
)
from .._deprecation import renamed_keywords, warn_renamed
from ..inference import ClosedFormPotential, data_plate, local_pyro_method
from ..inference.plates import local_params
from ..ppca import PPCAParams
from .ard import effective_dim_alpha, effective_dim_median, effective_dim_point

_LOG_2PI = math.log(2 * math.pi)


class _MarginalStats(NamedTuple):
    n: int
    d: int
    m: int
    xbar: torch.Tensor
    s: torch.Tensor
    a: float
    b: float
    sigma_scale: float
    mu_scale: float


def _marginal_potential(
    z: dict[str, torch.Tensor], st: _MarginalStats
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r""":math:`U(W, \mu, u_\alpha, u_\sigma)` of :meth:`BayesianPCA.nuts_potential` and its
    gradient in closed form."""
    W, u_sigma = z["W"], z["sigma"]
    s2 = (2 * u_sigma).exp()
    C = W @ W.T + s2 * torch.eye(st.d, dtype=W.dtype, device=W.device)
    L, info = torch.linalg.cholesky_ex(C)
    if int(info) != 0:
        # C lost its positive definiteness to rounding (sigma^2 underflowed beside a
        # rank-deficient W W^T, far out on a diverging trajectory): infinite energy, which
        # NUTS treats as a divergence, as it does Pyro's own failure there.
        return W.new_tensor(math.inf), {k: torch.zeros_like(v) for k, v in z.items()}
    half_logdet = L.diagonal().log().sum()
    return _potential_given_factor(z, s2, torch.cholesky_inverse(L), half_logdet, st, torch.log1p)


def _marginal_potential_numpy(
    z: dict[str, np.ndarray], st: _MarginalStats
) -> tuple[float, dict[str, np.ndarray] | None]:
    """:func:`_marginal_potential` on float64 numpy arrays (``st.xbar`` and ``st.s`` as
    arrays): what nutpie calls, a third of torch's cost per call on Bishop's data (92
    against 275 microseconds)."""
    W, u_sigma = z["W"], float(z["sigma"])
    s2 = math.exp(2 * u_sigma)
    C = W @ W.T
    C.flat[:: st.d + 1] += s2
    try:
        L = np.linalg.cholesky(C)
    except np.linalg.LinAlgError:  # as in the torch version: infinite energy
        return math.inf, None
    L_inv = np.linalg.inv(L)
    half_logdet = np.log(np.diagonal(L)).sum()
    value, grads = _potential_given_factor(
        dict(z, sigma=u_sigma), s2, L_inv.T @ L_inv, half_logdet, st, math.log1p
    )
    return float(value), grads


def _potential_given_factor(z, s2, c_inv, half_logdet, st, log1p):
    # The potential and its gradient once C^-1 and ln|C| / 2 are known; the same lines
    # serve torch tensors and numpy arrays (only log1p differs: sigma^2 is a tensor in one,
    # a float in the other).
    W, mu, u_alpha, u_sigma = z["W"], z["mu"], z["alpha"], z["sigma"]
    n, d = st.n, st.d
    alpha = u_alpha.exp() if isinstance(u_alpha, torch.Tensor) else np.exp(u_alpha)
    r = st.xbar - mu
    A = c_inv @ (st.s + r[:, None] * r[None, :])  # C^-1 S_mu
    loglik = -0.5 * n * (d * _LOG_2PI + 2 * half_logdet + A.diagonal().sum())
    G = -0.5 * n * (c_inv - A @ c_inv)
    norms2 = (W * W).sum(0)
    a, b, ss2, ms2 = st.a, st.b, st.sigma_scale**2, st.mu_scale**2
    log_prior = (
        ((a + 0.5 * d) * u_alpha - alpha * (b + 0.5 * norms2)).sum()
        + st.m * (a * math.log(b) - math.lgamma(a) - 0.5 * d * _LOG_2PI)
        + u_sigma
        - log1p(s2 / ss2)
        + math.log(2 / (math.pi * st.sigma_scale))
        - 0.5 * (mu * mu).sum() / ms2
        - d * (math.log(st.mu_scale) + 0.5 * _LOG_2PI)
    )
    grads = {
        "W": W * alpha - 2 * G @ W,
        "mu": mu / ms2 - n * (c_inv @ r),
        "alpha": alpha * (b + 0.5 * norms2) - (a + 0.5 * d),
        "sigma": 2 * s2 / (ss2 + s2) - 1 - 2 * s2 * G.diagonal().sum(),
    }
    return -(loglik + log_prior), grads


_GUIDES = ("delta", "normal", "lowrank")


# The priors are built from the buffers, cast to the dtype and device of the model's
# computation (stashed in _like by BayesianPCA.model; the buffers' own outside a call).
def _prior_like(self: BayesianPCA) -> torch.Tensor:
    return self.alpha_a if self._like is None else self._like


def _alpha_prior(self: BayesianPCA) -> dist.Distribution:
    like = _prior_like(self)
    a, b = self.alpha_a.to(like), self.alpha_b.to(like)
    return dist.Gamma(a.expand(self.latent_dim), b).to_event(1)


def _w_prior(self: BayesianPCA) -> dist.Distribution:
    # alpha has shape (..., M): broadcast its column precisions over the D rows.
    alpha = self.alpha.to(_prior_like(self))
    scale = alpha.rsqrt().unsqueeze(-2).expand(*alpha.shape[:-1], self.data_dim, self.latent_dim)
    return dist.Normal(torch.zeros_like(scale), scale).to_event(2)


def _w_raw_prior(self: BayesianPCA) -> dist.Distribution:
    zeros = self._zeros_d.to(_prior_like(self)).unsqueeze(-1).expand(self.data_dim, self.latent_dim)
    return dist.Normal(zeros, 1.0).to_event(2)


def _sigma_prior(self: BayesianPCA) -> dist.Distribution:
    return dist.HalfCauchy(self.sigma_scale.to(_prior_like(self)))


def _mu_prior(self: BayesianPCA) -> dist.Distribution:
    like = _prior_like(self)
    return dist.Normal(self._zeros_d.to(like), self.mu_scale.to(like)).to_event(1)


class BayesianPCA(PyroModule):
    r"""PPCA with ARD priors as a Pyro model (see the module docstring for the equations).

    ``alpha``, ``W``, ``sigma`` and ``mu`` are ``PyroSample`` attributes. In the
    ``"marginal"`` form :math:`z` is integrated out (``obs`` is
    :math:`\mathcal N(\mu, W W^\top + \sigma^2 I)`, a low-rank Gaussian): this form runs
    under :func:`~ppl_models.inference.run_nuts`. In the ``"latent"`` form :math:`z_n` is a
    sample site ``"z"`` in the data plate, for SVI with minibatches on large :math:`N`.

    The module's :meth:`guide` is an autoguide over every latent site, a child module made
    at construction: ``"delta"`` (MAP), ``"normal"`` (mean-field Gaussian) or ``"lowrank"``
    (Gaussian with a low-rank covariance; marginal form only). Its initial point comes from
    the data (set by :meth:`validate_data`, which ``fit_svi`` and ``run_nuts`` call): the
    sample mean, principal directions scaled by the eigenvalues above the noise level, and
    :math:`\alpha_i = D/\|w_i\|^2`. Pyro's default (``init_to_median``) would put
    :math:`\alpha` at the median of a vague Gamma prior, about 0, hence :math:`W` at scale
    :math:`\alpha^{-1/2} \approx \infty`, and the first step fails in the Cholesky
    factorisation of the low-rank covariance.

    Parameters
    ----------
    data_dim : int
        :math:`D`.
    latent_dim : int
        :math:`M`, :math:`1 \le M < D`: the columns ARD may switch off (formerly
        ``max_latent_dim``).
    alpha_prior : (float, float)
        Shape and rate ``(a, b)`` of the Gamma prior on each :math:`\alpha_i`;
        ``(1e-3, 1e-3)`` (vague) by default.
    sigma_scale : float
        Scale of the half-Cauchy prior on :math:`\sigma`.
    mu_scale : float
        Standard deviation of the (broad) Gaussian prior on :math:`\mu`.
    form : {"marginal", "latent"}
        See above.
    guide : {"delta", "normal", "lowrank"}
        The family of :meth:`guide`.
    parametrisation : {"centred", "noncentred"}
        ``"centred"``: ``"W"`` is a sample site with prior
        :math:`\mathcal N(0, \alpha_i^{-1})` per column. ``"noncentred"``: the sample site
        is ``"W_raw"`` with prior :math:`\mathcal N(0, 1)` and
        :math:`W = W_{raw}\,\mathrm{diag}(\alpha)^{-1/2}` is recorded as the
        deterministic site ``"W"``: the same model, with the funnel between a
        switched-off column and its :math:`\alpha_i` straightened out. It suits columns
        the data barely constrain; a column the data pin down (a switched-on one) becomes
        the funnel instead. On Bishop's experiment (N = 300) NUTS took *longer*
        trajectories with it (measured: 255-1023 leapfrog steps per draw in the first
        warmup iterations, against 127-255 centred), so ``"centred"`` is the default.

    Examples
    --------
    >>> from ppl_models.datasets import make_bishop_bpca_data
    >>> from ppl_models.inference import fit_svi
    >>> x = make_bishop_bpca_data(num_points=100, seed=0).x
    >>> m = BayesianPCA(10, 9, guide="delta")
    >>> fit = fit_svi(m, x, num_steps=20, progress=False, seed=0)
    >>> sorted(m.median())
    ['W', 'alpha', 'mu', 'sigma']
    """

    @renamed_keywords(max_latent_dim="latent_dim")
    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        alpha_prior: tuple[float, float] = (1e-3, 1e-3),
        sigma_scale: float = 1.0,
        mu_scale: float = 100.0,
        form: str = "marginal",
        guide: str = "normal",
        parametrisation: str = "centred",
    ):
        super().__init__()
        self.data_dim = check_int(data_dim, "data_dim", minimum=2)
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1, maximum=self.data_dim - 1)
        if not isinstance(alpha_prior, (tuple, list)) or len(alpha_prior) != 2:
            raise ValueError(f"alpha_prior must be a pair (shape, rate); got {alpha_prior!r}")
        a = check_positive(alpha_prior[0], "alpha_prior[0] (shape)", allow_tensor=False)
        b = check_positive(alpha_prior[1], "alpha_prior[1] (rate)", allow_tensor=False)
        self.form = check_choice(form, "form", ["marginal", "latent"])
        self.guide_family = check_choice(guide, "guide", list(_GUIDES))
        self.parametrisation = check_choice(
            parametrisation, "parametrisation", ["centred", "noncentred"]
        )
        if self.guide_family == "lowrank" and self.form == "latent":
            raise ValueError(
                "guide='lowrank' needs form='marginal': a low-rank Gaussian over every z_n "
                "cannot follow minibatches; use guide='normal' with the latent form"
            )
        # Buffers: the priors follow .to() (float64 data gives float64 priors).
        self.register_buffer("alpha_a", torch.tensor(a))
        self.register_buffer("alpha_b", torch.tensor(b))
        self.register_buffer(
            "sigma_scale",
            torch.tensor(check_positive(sigma_scale, "sigma_scale", allow_tensor=False)),
        )
        self.register_buffer(
            "mu_scale", torch.tensor(check_positive(mu_scale, "mu_scale", allow_tensor=False))
        )
        self.register_buffer("_zeros_d", torch.zeros(self.data_dim))
        self._like: torch.Tensor | None = None  # the dtype and device of the last model call
        self.alpha = PyroSample(_alpha_prior)
        if self.parametrisation == "centred":
            self.W = PyroSample(_w_prior)
        else:
            self.W_raw = PyroSample(_w_raw_prior)
        self.sigma = PyroSample(_sigma_prior)
        self.mu = PyroSample(_mu_prior)
        self._init: dict[str, torch.Tensor] = {}
        cls = {"delta": AutoDelta, "normal": AutoNormal, "lowrank": AutoLowRankMultivariateNormal}
        self.autoguide = cls[self.guide_family](self.model, init_loc_fn=self._init_loc)

    # -- initialisation ---------------------------------------------------------------

    def init_values(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        r"""The data-based initial point of the guide.

        :math:`\mu_0 = \bar x`; with the eigenvalues :math:`\lambda_1 \ge \dots` of the
        sample covariance, :math:`\sigma_0^2` is the mean of those beyond ``M`` (floored at
        1% of the mean eigenvalue), column :math:`i` of :math:`W_0` is
        :math:`u_i \sqrt{\max(\lambda_i - \sigma_0^2, 0.01\bar\lambda)}`, and
        :math:`\alpha_{0,i} = D / \|w_i\|^2`. Every value is finite and positive where it
        must be.
        """
        n = x.shape[0]
        mu = x.mean(0)
        xc = x - mu
        lam, u = torch.linalg.eigh(xc.T @ xc / n)
        lam, u = lam.flip(0), u.flip(1)
        floor = 0.01 * float(lam.mean().clamp_min(torch.finfo(x.dtype).tiny))
        m = self.latent_dim
        sigma2 = lam[m:].mean().clamp_min(floor)
        W = u[:, :m] * (lam[:m] - sigma2).clamp_min(floor).sqrt()
        alpha = self.data_dim / (W * W).sum(0)
        out = {"mu": mu, "sigma": sigma2.sqrt(), "W": W, "alpha": alpha}
        if self.parametrisation == "noncentred":
            out["W_raw"] = W * alpha.sqrt()
        return out

    def init_strategy(self, site: dict[str, Any]) -> torch.Tensor:
        r"""The data-based initial point (:meth:`init_values`) as a Pyro ``init_strategy``,
        for :func:`~ppl_models.inference.run_nuts` (which calls :meth:`validate_data`, and
        so sets the point, before NUTS initialises).

        NUTS's default, ``init_to_uniform``, starts every column switched on at a random
        scale, far from the posterior. Every chain starts from this same point, so
        R-hat across chains checks the chains' agreement after warmup, not their
        independence from the start.
        """
        return self._init_loc(site)

    def _init_loc(self, site: dict[str, Any]) -> torch.Tensor:
        value = self._init.get(site["name"])
        if value is None:
            return init_to_feasible(site)
        fn = site["fn"]
        like = _prior_like(self)
        return value.to(dtype=like.dtype, device=like.device).expand(fn.shape()).contiguous()

    def validate_data(self, x: object) -> tuple[torch.Tensor]:
        """Check ``x`` (2-D, ``data_dim`` columns) and set the guide's initial point from
        it (:meth:`init_values`); called by ``fit_svi`` and ``run_nuts``."""
        x = as_data(x, "x", ndim=2)
        if x.shape[1] != self.data_dim:
            raise ValueError(f"x must have {self.data_dim} columns (data_dim); got {x.shape[1]}")
        self._init = self.init_values(x)
        return (x,)

    # -- the Pyro pair ----------------------------------------------------------------

    @renamed_keywords(n="num_points")
    @local_pyro_method
    def model(self, x: torch.Tensor | None = None, num_points: int | None = None) -> torch.Tensor:
        r"""Sample ``"alpha"``, ``"W"``, ``"sigma"``, ``"mu"`` (and ``"z"`` in the latent
        form), then observe ``x`` at ``"obs"`` in plate ``"data"``. With ``x=None``, draws
        ``num_points`` points (``n`` is its deprecated old name)."""
        if x is None and num_points is None:
            raise ValueError("model needs the data x or the number of points num_points")
        size = x.shape[0] if x is not None else num_points
        like = self._like = promoted_like(self, x)
        W = self._loadings(like)
        sigma = self.sigma.to(like)
        mu = self.mu.to(like)
        if x is not None:
            x = x.to(like)
        if self.form == "marginal":
            diag = (sigma**2).unsqueeze(-1).expand(*sigma.shape, self.data_dim)
            with data_plate(size):
                return pyro.sample("obs", dist.LowRankMultivariateNormal(mu, W, diag), obs=x)
        with data_plate(size):
            zero = like.new_zeros(self.latent_dim)
            z = pyro.sample("z", dist.Normal(zero, 1.0).to_event(1))
            loc = (z.unsqueeze(-2) @ W.transpose(-1, -2)).squeeze(-2) + mu
            return pyro.sample("obs", dist.Normal(loc, sigma.unsqueeze(-1)).to_event(1), obs=x)

    def _loadings(self, like: torch.Tensor) -> torch.Tensor:
        if self.parametrisation == "centred":
            return self.W.to(like)  # reads alpha first: W's prior depends on it
        scale = self.alpha.to(like).rsqrt().unsqueeze(-2)
        return pyro.deterministic("W", self.W_raw.to(like) * scale, event_dim=2)

    @renamed_keywords(n="num_points")
    @local_pyro_method
    def guide(self, x: torch.Tensor | None = None, num_points: int | None = None) -> Any:
        """The autoguide chosen by ``guide=`` at construction (see the class docstring)."""
        return self.autoguide(x, num_points)

    @property
    def max_latent_dim(self) -> int:
        """Deprecated alias of :attr:`latent_dim` (removed in the next release)."""
        warn_renamed("BayesianPCA.max_latent_dim", "BayesianPCA.latent_dim")
        return self.latent_dim

    def nuts_potential(self, x: torch.Tensor) -> ClosedFormPotential | None:
        r"""The potential energy of the marginal form for NUTS, from the sufficient
        statistics, with its gradient in closed form (``None`` for the latent form or the
        non-centred parametrisation).

        NUTS moves in Pyro's unconstrained coordinates :math:`u_\alpha = \ln\alpha`,
        :math:`u_\sigma = \ln\sigma`, :math:`W`, :math:`\mu`, and needs
        :math:`U = -\ln p(X, \alpha, W, \sigma, \mu)` minus the log-Jacobians
        :math:`\sum_i u_{\alpha,i} + u_\sigma`, and :math:`\nabla U`. With
        :math:`\bar x`, :math:`S = \frac1N \sum_n (x_n - \bar x)(x_n - \bar x)^\top`,
        :math:`r = \bar x - \mu`, :math:`C = W W^\top + \sigma^2 I` and
        :math:`S_\mu = S + r r^\top`, the log-likelihood and its derivative in :math:`C`
        are

        .. math::

            \ell = -\frac N2 \big(D \ln 2\pi + \ln|C| + \operatorname{tr} C^{-1} S_\mu\big),
            \qquad
            G = \frac{\partial \ell}{\partial C}
              = -\frac N2 \big(C^{-1} - C^{-1} S_\mu C^{-1}\big),

        so :math:`\partial\ell/\partial W = 2 G W`, :math:`\partial\ell/\partial u_\sigma
        = 2\sigma^2 \operatorname{tr} G` and :math:`\partial\ell/\partial\mu = N C^{-1} r`.
        The priors add, per column, :math:`(a + D/2) u_{\alpha,i} - \alpha_i (b +
        \|w_i\|^2 / 2)` (Gamma, its Jacobian and the Gaussian column), :math:`u_\sigma -
        \ln(1 + \sigma^2 / s_\sigma^2)` (half-Cauchy and Jacobian) and
        :math:`-\|\mu\|^2 / 2 s_\mu^2`, plus constants.

        Pyro's potential traces the model and evaluates a low-rank Gaussian on all
        :math:`N` rows, then differentiates through it: 5.5 ms per gradient on Bishop's
        data (:math:`N = 300`, :math:`D = 10`, :math:`M = 9`) and 35 ms at
        :math:`N = 30000`, against 0.5 ms here at any :math:`N`
        (``python -m benchmarks --only bayesian_pca``). :func:`~ppl_models.inference.run_nuts`
        uses this function only after checking that its values and gradients are Pyro's
        at the chains' initial points.
        """
        if self.form != "marginal" or self.parametrisation != "centred":
            return None
        n, d = x.shape
        xbar = x.mean(0)
        xc = x - xbar
        stats = _MarginalStats(
            n=n,
            d=d,
            m=self.latent_dim,
            xbar=xbar,
            s=xc.T @ xc / n,
            a=float(self.alpha_a),
            b=float(self.alpha_b),
            sigma_scale=float(self.sigma_scale),
            mu_scale=float(self.mu_scale),
        )

        twin = None
        if x.dtype == torch.float64 and x.device.type == "cpu":
            arrays = stats._replace(xbar=stats.xbar.numpy(), s=stats.s.numpy())
            twin = functools.partial(_marginal_potential_numpy, st=arrays)
        return ClosedFormPotential(lambda z: _marginal_potential(z, stats), twin)

    # -- reading the fit --------------------------------------------------------------

    def median(self) -> dict[str, torch.Tensor]:
        """The guide's median of each global site (for ``"delta"``: the MAP point)."""
        with torch.no_grad(), local_params(self):
            med = self.autoguide.median()
        out = {k: v.detach() for k, v in med.items() if k != "z"}
        if "W_raw" in out:
            # The median of each coordinate maps through the monotone W = W_raw alpha^-1/2
            # only for a point (delta) guide; for a Gaussian guide it is the plug-in value.
            out["W"] = out.pop("W_raw") * out["alpha"].rsqrt().unsqueeze(-2)
        return out

    def params(self) -> PPCAParams:
        """The guide's median as :class:`~ppl_models.ppca.PPCAParams` (detached)."""
        med = self.median()
        return PPCAParams(med["W"], med["mu"], med["sigma"] ** 2)

    def sample_posterior(self, num_samples: int = 1000, seed: int | None = 0) -> dict:
        """Draws of ``alpha``, ``W``, ``sigma``, ``mu`` from the guide, shape
        ``(num_samples, ...)``."""
        num_samples = check_int(num_samples, "num_samples", minimum=1)
        if seed is not None:
            pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
        w_name = "W" if self.parametrisation == "centred" else "W_raw"
        names = ["alpha", w_name, "sigma", "mu"]
        if self.form == "latent":
            out = self._sample_globals(names, num_samples)
        else:
            pred = Predictive(
                self.model, guide=self.autoguide, num_samples=num_samples, return_sites=names
            )
            with torch.no_grad(), local_params(self):
                draws = pred(None, 1)
            # Predictive stacks the draws with a batch dimension of the data plate's size
            # (here 1): give each site its own shape.
            d, m = self.data_dim, self.latent_dim
            shapes = {"alpha": (m,), w_name: (d, m), "sigma": (), "mu": (d,)}
            out = {k: v.detach().reshape(num_samples, *shapes[k]) for k, v in draws.items()}
        if w_name == "W_raw":
            out["W"] = out.pop("W_raw") * out["alpha"].rsqrt().unsqueeze(-2)
        return out

    def _sample_globals(self, names: list[str], num_samples: int) -> dict:
        # The latent form's guide is mean-field (or a point): its global sites are
        # independent of z, so draw them from their own factors, without the data plate
        # (whose subsample size the guide fixed at its first call).
        from torch.distributions import biject_to

        guide = self.autoguide
        out = {}
        with torch.no_grad(), local_params(self):
            for name in names:
                support = guide.prototype_trace.nodes[name]["fn"].support
                if self.guide_family == "delta":
                    value = guide.median()[name]
                    out[name] = value.expand(num_samples, *value.shape).clone()
                    continue
                loc, scale = guide._get_loc_and_scale(name)
                eps = torch.randn((num_samples, *loc.shape), dtype=loc.dtype, device=loc.device)
                out[name] = biject_to(support)(loc + scale * eps)
        return out

    def posterior_alpha(self, num_samples: int = 1000, seed: int | None = 0) -> torch.Tensor:
        r"""Draws of :math:`\alpha` from the guide, sorted within each draw, shape
        ``(num_samples, M)``."""
        return self.sample_posterior(num_samples, seed)["alpha"].sort(-1).values

    def effective_dim(self, samples: Mapping[str, torch.Tensor] | None = None) -> int:
        """The effective dimension, by the rule that fits the fit.

        * ``samples`` given (e.g. ``mcmc.get_samples()``): :func:`effective_dim_alpha` on
          their ``"alpha"``;
        * else, a ``"delta"`` guide (MAP): :func:`effective_dim_point` on the MAP ``W`` and
          :math:`\\alpha`;
        * else (a Gaussian guide): :func:`effective_dim_median` on the guide's median
          ``W``.
        """
        if samples is not None:
            return effective_dim_alpha(torch.as_tensor(samples["alpha"]))
        med = self.median()
        if self.guide_family == "delta":
            return effective_dim_point(med["W"], med["alpha"])
        return effective_dim_median(med["W"])
