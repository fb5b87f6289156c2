"""Priors on PPCA's own parameters (the ``PyroSample`` pattern on :class:`MarginalPPCA`),
and PPCA's latent dimension chosen by PSIS-LOO over such Bayesian fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._deprecation import renamed_keywords
from ..inference import fit_svi
from ..ppca import MarginalPPCA, closed_form
from ..workflow import loo, to_inference_data


def bayesian_marginal_ppca(x: torch.Tensor, latent_dim: int) -> tuple[Any, Any]:
    """MarginalPPCA with priors (the PyroSample pattern) and a low-rank Gaussian guide
    started at the maximum likelihood (:func:`~ppl_models.ppca.closed_form`).

    W ~ N(0, s^2), mu ~ N(xbar, s^2), sigma ~ HalfNormal(s), s^2 the mean eigenvalue of the
    sample covariance (weakly informative on the data's scale). Pyro's default start (the
    prior medians) would put W at 0, a saddle point of the likelihood (its gradient in W
    is zero there), which only the guide's noise moves away from.

    Returns
    -------
    (MarginalPPCA, AutoLowRankMultivariateNormal)
        The module and its (not yet fitted) guide, for ``fit_svi(module, x, guide=guide)``.
    """
    import pyro.distributions as dist
    from pyro.infer.autoguide import AutoLowRankMultivariateNormal
    from pyro.infer.autoguide.initialization import init_to_value
    from pyro.nn import PyroSample

    d = x.shape[1]
    s = torch.linalg.eigvalsh(torch.cov(x.T, correction=0)).mean().sqrt()
    m = MarginalPPCA(d, latent_dim)
    m.W = PyroSample(dist.Normal(torch.zeros(d, latent_dim, dtype=x.dtype), s).to_event(2))
    m.mu = PyroSample(dist.Normal(x.mean(0), s).to_event(1))
    m.sigma = PyroSample(dist.HalfNormal(s))
    ml = closed_form(x, latent_dim)
    start = init_to_value(values={"W": ml.W, "mu": ml.mu, "sigma": ml.sigma2.sqrt()})
    guide = AutoLowRankMultivariateNormal(m.model, init_loc_fn=start, init_scale=0.05)
    return m, guide


@renamed_keywords(num_draws="num_samples")
def ppca_loo_sweep(
    x: torch.Tensor,
    dims: Sequence[int],
    *,
    num_steps: int = 300,
    num_samples: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """For each M in ``dims``: fit :func:`bayesian_marginal_ppca` by SVI, draw
    ``num_samples`` posterior draws from the guide and estimate PSIS-LOO. Returns arrays
    ``elpd``, ``se``, ``p``, ``max_k`` and ``loss`` (final negative ELBO), one per M."""
    out: dict[str, list[float]] = {k: [] for k in ("elpd", "se", "p", "max_k", "loss")}
    for m in dims:
        module, guide = bayesian_marginal_ppca(x, int(m))
        fit = fit_svi(
            module, x, guide=guide, num_steps=num_steps, lr=0.03, seed=seed, tol=0,
            progress=False,
        )  # fmt: skip
        data = to_inference_data(
            module, x, guide=guide, num_chains=4, num_samples=num_samples // 4, seed=seed
        )
        r = loo(data, quiet=True)
        out["elpd"].append(r.elpd)
        out["se"].append(r.se)
        out["p"].append(r.p)
        out["max_k"].append(float(np.max(r.pareto_k)))
        out["loss"].append(float(fit.losses[-20:].mean()))
    return {k: np.asarray(v) for k, v in out.items()}
