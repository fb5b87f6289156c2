r"""Comparing fitted models by PSIS-LOO (:func:`compare`) and checking an SVI guide against
the posterior it approximates (:func:`check_guide`, Pareto :math:`\hat k`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import MCMC

from .. import _arviz
from .._arviz import get_group
from .._checks import check_choice, check_int
from ..inference.nuts import NutsRun
from ._draws import (
    NotVectorisable,
    is_observed,
    locally,
    max_plate_nesting,
    model_fn,
    prepare_data,
    require_data,
    sample_sites,
)
from .inference_data import to_inference_data


def _as_arviz(name: str, value: Any, num_samples: int, num_chains: int, seed: int | None) -> Any:
    if isinstance(value, (MCMC, NutsRun)):
        return to_inference_data(value, seed=seed)
    if isinstance(value, tuple):
        if not value:
            raise ValueError(f"models_and_data[{name!r}] is an empty tuple; give (source, *data)")
        src, *args = value
        if isinstance(src, (MCMC, NutsRun)):
            return to_inference_data(src, *args, seed=seed)
        return to_inference_data(
            src, *args, num_samples=num_samples, num_chains=num_chains, seed=seed
        )
    if isinstance(value, torch.nn.Module) or not (
        hasattr(value, "children") or hasattr(value, "groups")
    ):
        raise TypeError(
            f"models_and_data[{name!r}] must be ArviZ data, a pyro MCMC run, or a tuple "
            f"(fitted module or run, *data); got {type(value).__name__}"
        )
    return value


@locally
def compare(
    models_and_data: Mapping[str, Any],
    method: str = "loo",
    var_name: str | None = None,
    num_samples: int = 500,
    num_chains: int = 4,
    seed: int | None = 0,
    quiet: bool = True,
) -> Any:
    r"""Compare models by their estimated expected log pointwise predictive density,
    :math:`\mathrm{elpd} = \sum_n \log p(x_n \mid x_{-n})` (PSIS-LOO, Vehtari et al. 2017),
    in ArviZ's comparison table.

    Parameters
    ----------
    models_and_data : dict
        Model name to one of: ArviZ data with a ``log_likelihood`` group (e.g. from
        :func:`posterior_predictive`); a ``pyro.infer.MCMC`` run from
        :func:`~ppl_models.inference.run_nuts`; or a tuple ``(source, *data)`` handed to
        :func:`to_inference_data` (``source`` a run, or a module fitted by ``fit_svi``
        whose ``guide`` draws the posterior). Every model must score the same observations.
    method : {"loo", "waic"}
        PSIS-LOO, or WAIC (ArviZ 0.x only).
    var_name : str, optional
        The observed site, when the models have more than one.
    num_samples, num_chains, seed : int
        Draws from SVI guides (``num_chains x num_samples``) and their seed.
    quiet : bool
        Silence ArviZ's Pareto-k warnings (the table's ``warning`` column keeps them).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``rank, elpd, se, p, elpd_diff, dse, weight,
        max_pareto_k, warning`` (see :func:`ppl_models._arviz.compare`). A difference
        ``elpd_diff`` within about 2 ``dse`` does not separate two models; a ``warning``
        (some Pareto :math:`k > 0.7`) says that model's PSIS estimate is unreliable.

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> from pyro.nn import PyroSample
    >>> from ppl_models.gaussian import Gaussian
    >>> x = torch.randn(20, dtype=torch.float64) + 3.0
    >>> g = Gaussian(event_dim=0)
    >>> g.loc = PyroSample(dist.Normal(0.0, 10.0))
    >>> rng = np.random.default_rng(0)
    >>> fits = {  # posterior draws of loc (sd 20**-0.5): one centred, one off by 1
    ...     name: to_inference_data({"loc": rng.normal(m, 0.22, (2, 200))}, x, module=g)
    ...     for name, m in [("centred", float(x.mean())), ("off by 1", float(x.mean()) + 1)]
    ... }
    >>> list(compare(fits).index)
    ['centred', 'off by 1']
    """
    if not isinstance(models_and_data, Mapping) or len(models_and_data) < 2:
        raise ValueError(
            "models_and_data must be a dict from model names to fitted models with at least "
            f"two entries; got {type(models_and_data).__name__}"
        )
    check_choice(method, "method", ["loo", "waic"])
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    num_chains = check_int(num_chains, "num_chains", minimum=1)
    datasets = {
        str(name): _as_arviz(str(name), value, num_samples, num_chains, seed)
        for name, value in models_and_data.items()
    }
    n_obs = {}
    for name, d in datasets.items():
        ll = get_group(d, "log_likelihood") if "log_likelihood" in _arviz.group_names(d) else None
        if ll is not None:
            var = var_name or next(iter(ll.data_vars))
            if var in ll:
                n_obs[name] = int(np.prod(ll[var].shape[2:]))
    if len(set(n_obs.values())) > 1:
        raise ValueError(
            f"models_and_data must score the same observations; their numbers differ: {n_obs}"
        )
    return _arviz.compare(datasets, method=method, var_name=var_name, quiet=quiet)


def _pareto_k(log_weights: torch.Tensor) -> float:
    r"""Generalized-Pareto shape of the upper tail of importance weights (PSIS; Vehtari et
    al. 2017): the :math:`M = \min(0.2 S, 3\sqrt S)` largest weights, above the
    :math:`(M+1)`-th largest, are fitted by ``pyro.ops.stats.fit_generalized_pareto``."""
    from pyro.ops.stats import fit_generalized_pareto

    lw = torch.sort(log_weights.detach().double() - log_weights.max())[0]
    s = lw.numel()
    m = math.ceil(min(0.2 * s, 3.0 * math.sqrt(s)))
    cutoff = max(math.log(1e-15), float(lw[-m - 1]))
    tail = lw[lw > cutoff]
    if tail.numel() < 10:
        # With S >= 100 (check_guide's minimum) the M largest weights are >= 10, so most of
        # them tie with the cutoff: the weights are equal up to rounding, because the guide
        # is the posterior itself (e.g. a Laplace guide on a linear-Gaussian model). There
        # is no tail to fit; the importance sampler is exact: k = -inf.
        return float("-inf")
    k, _ = fit_generalized_pareto(tail.exp() - math.exp(cutoff))
    return float(k)


def _verdict(k: float) -> str:
    if k < 0.5:
        return "good"
    if k <= 0.7:
        return "ok"
    if k <= 1.0:
        return "bad"
    return "very bad"


def _log_weights(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    *data: Any,
    num_samples: int,
    max_plate_nesting: int,
    parallel: bool | None,
    **kwargs: Any,
) -> torch.Tensor:
    """log p(x, z_s) - log q(z_s) for ``num_samples`` draws z_s of the guide: Pyro's
    ``vectorized_importance_weights`` (same arguments, plus ``parallel``), or one trace
    per draw where the model does not vectorise."""
    n = num_samples
    if parallel is not False:
        try:
            from pyro.infer.importance import vectorized_importance_weights

            lw, _, _ = vectorized_importance_weights(
                model, guide, *data, num_samples=n, max_plate_nesting=max_plate_nesting, **kwargs
            )
            lw = torch.as_tensor(lw)
            if lw.shape == (n,) and bool(torch.isfinite(lw).any()):
                return lw
            raise NotVectorisable(f"log weights of shape {tuple(lw.shape)}")
        except Exception:
            if parallel:
                raise
    out = torch.empty(n, dtype=torch.float64)
    for s in range(n):
        g = poutine.trace(guide).get_trace(*data, **kwargs)
        m = poutine.trace(poutine.replay(model, trace=g)).get_trace(*data, **kwargs)
        out[s] = m.log_prob_sum() - g.log_prob_sum()
    return out


@locally
def check_guide(
    module: Any,
    *data: Any,
    guide: Callable[..., Any] | Mapping[str, Callable[..., Any]] | None = None,
    num_particles: int = 2000,
    seed: int | None = 0,
    parallel: bool | None = None,
    **model_kwargs: Any,
) -> Any:
    r"""PSIS diagnostic :math:`\hat k` of an SVI guide (Yao, Vehtari, Simpson & Gelman 2018):
    how far the guide :math:`q(\theta)` is from the posterior it approximates.

    With draws :math:`\theta_s \sim q` and importance ratios
    :math:`r_s = p(x, \theta_s) / q(\theta_s) \propto p(\theta_s \mid x) / q(\theta_s)`,
    :math:`\hat k` is the estimated shape of a generalized Pareto distribution fitted to
    the largest ratios. The ratios have :math:`1/k` finite moments, so

    * :math:`\hat k < 0.5`: **good**; the ratios have finite variance, :math:`q` is close
      to the posterior and importance sampling can correct what is left;
    * :math:`0.5 \le \hat k \le 0.7`: **ok**; usable, the variance is infinite but PSIS
      still converges at a practical rate;
    * :math:`0.7 < \hat k \le 1`: **bad**; :math:`q` misses posterior mass (typically too
      narrow, e.g. a mean-field guide on a correlated posterior) and estimates from it are
      unreliable;
    * :math:`\hat k > 1`: **very bad**; the ratios have no mean.

    For Gaussians, :math:`q = \mathcal N(m, \Sigma_q)` against
    :math:`p = \mathcal N(m, \Sigma_p)`, the tail gives
    :math:`k = 1 - 1 / \lambda_{\max}(\Sigma_q^{-1} \Sigma_p)` (positive where :math:`q` is
    narrower than :math:`p` in some direction); the mean-field optimum on a bivariate
    Gaussian with correlation :math:`\rho` has :math:`k = |\rho|`.

    Parameters
    ----------
    module : PyroModule or callable
        The model (its ``model`` method), with priors on the parameters the guide covers.
    *data : torch.Tensor or numpy.ndarray
        The model's arguments, observed values included.
    guide : callable or dict of str to callable, optional
        The fitted guide (default ``module.guide``), or several by name (one row each).
    num_particles : int
        Draws from each guide; the estimate of :math:`\hat k` needs a few thousand.
    seed : int, optional
        Seeds the draws.
    parallel : bool, optional
        Draw all particles at once (``True``), one by one (``False``), or try the first and
        fall back (``None``).
    **model_kwargs
        Keyword arguments of the model and guide.

    Returns
    -------
    pandas.DataFrame
        One row per guide (index: its name, ``"guide"`` for a single one) with columns
        ``k_hat`` (float), ``verdict`` (``"good"``, ``"ok"``, ``"bad"``, ``"very bad"``)
        and ``num_particles``.

    References
    ----------
    Y. Yao, A. Vehtari, D. Simpson, A. Gelman, "Yes, but did it work?: Evaluating
    variational inference", ICML 2018.

    Examples
    --------
    A guide equal to the exact posterior has constant ratios and :math:`\hat k` far below
    0.5:

    >>> import pyro.distributions as dist
    >>> from pyro.nn import PyroSample
    >>> from ppl_models.gaussian import Gaussian
    >>> x = torch.zeros(4, dtype=torch.float64)
    >>> g = Gaussian(event_dim=0)
    >>> g.loc = PyroSample(dist.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0))
    >>> # noise sd 1 (the module's initial scale): the posterior of loc is N(0, 1 / 5)
    >>> exact = lambda x: pyro.sample("loc", dist.Normal(torch.tensor(0.0).double(), 0.4472))
    >>> table = check_guide(g, x, guide=exact, num_particles=1000)
    >>> table.loc["guide", "verdict"]
    'good'
    """
    import pandas as pd

    model = model_fn(module)
    num_particles = check_int(num_particles, "num_particles", minimum=100)
    require_data(data, model_kwargs)
    data = prepare_data(module, data)
    if guide is None:
        guide = getattr(module, "guide", None)
        if guide is None:
            raise ValueError("check_guide needs a guide (guide=) or a module.guide method")
    guides = dict(guide) if isinstance(guide, Mapping) else {"guide": guide}
    if not guides:
        raise ValueError("guide must be a callable or a non-empty dict of callables")
    rows = []
    with torch.no_grad():
        model_sites = sample_sites(poutine.trace(model).get_trace(*data, **model_kwargs))
        nesting = max(max_plate_nesting(model_sites), 1)
        for name, g in guides.items():
            if not callable(g):
                raise TypeError(f"guide {name!r} must be callable; got {type(g).__name__}")
            if seed is not None:
                pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
            with poutine.block():
                g_sites = sample_sites(poutine.trace(g).get_trace(*data, **model_kwargs))
            if not any(k in model_sites and not is_observed(model_sites[k]) for k in g_sites):
                raise ValueError(
                    f"guide {name!r} has no latent sample sites of the model: check_guide "
                    "needs a guide over the model's priors (e.g. an AutoNormal)"
                )
            with poutine.block():
                lw = _log_weights(
                    model,
                    g,
                    *data,
                    num_samples=num_particles,
                    max_plate_nesting=nesting,
                    parallel=parallel,
                    **model_kwargs,
                )
            k = _pareto_k(lw)
            rows.append({"k_hat": k, "verdict": _verdict(k), "num_particles": num_particles})
    return pd.DataFrame(rows, index=list(guides))
