r"""ArviZ data from MCMC runs, SVI guides and dictionaries of draws (:func:`to_inference_data`),
and the workflow's predictive steps before and after the fit (:func:`prior_predictive`,
:func:`posterior_predictive`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import MCMC

from .. import _arviz
from .._arviz import get_group
from .._checks import check_int
from ..inference.nuts import NutsRun
from ._draws import (
    draws_to_groups,
    guide_draws,
    is_observed,
    locally,
    model_fn,
    prepare_data,
    require_data,
    sample_sites,
)


def _divergences(mcmc: MCMC, num_chains: int, num_draws: int) -> np.ndarray | None:
    diags = getattr(mcmc, "_diagnostics", None)
    if not diags or not all(isinstance(d, dict) and "divergences" in d for d in diags):
        return None
    out = np.zeros((num_chains, num_draws), dtype=bool)
    for c, d in enumerate(diags[:num_chains]):
        idx = [i for i in d["divergences"] if 0 <= i < num_draws]
        out[c, idx] = True
    return out


@locally
def to_inference_data(
    source: Any,
    *data: Any,
    module: Any = None,
    guide: Callable[..., Any] | None = None,
    num_samples: int = 500,
    num_chains: int = 4,
    seed: int | None = 0,
    observed_sites: Sequence[str] | None = None,
    parallel: bool | None = None,
    **model_kwargs: Any,
) -> Any:
    r"""ArviZ data (posterior, posterior_predictive, log_likelihood, observed_data) from
    an MCMC run, a fitted guide, or a dictionary of draws.

    Parameters
    ----------
    source : NutsRun or pyro.infer.MCMC or PyroModule or dict
        * an MCMC run (from :func:`~ppl_models.inference.run_nuts`, or Pyro's ``MCMC``):
          the posterior is ``source.get_samples(group_by_chain=True)``; the run's module
          and data are used when ``module`` and ``data`` are omitted; a ``NutsRun``'s
          sample statistics (divergences, tree depth, step size, energy) go to
          sample_stats;
        * a module fitted by :func:`~ppl_models.inference.fit_svi`: ``num_chains`` x
          ``num_samples`` independent draws from ``guide`` (default ``source.guide``)
          arranged as ``(chain, draw)``, so that R-hat of independent draws is about 1;
        * a dict from latent site names to arrays ``(chain, draw, *site_shape)``; needs
          ``module``.
    *data : torch.Tensor or numpy.ndarray
        The model's positional arguments, as it takes them (``model(x)``, ``model(phi, t)``),
        observed values included. Omit for a ``run_nuts`` run to reuse its data.
    module : PyroModule or callable, optional
        The model (its ``model`` method, or the callable itself).
    guide : callable, optional
        The fitted guide, for an SVI source (default: ``source.guide``).
    num_samples, num_chains : int
        Draws per chain and chains, for an SVI source.
    seed : int, optional
        Seeds the guide's draws and the predictive draws (``pyro.set_rng_seed``).
    observed_sites : list of str, optional
        Keep these observed sites (default: every observed sample site of the model).
    parallel : bool, optional
        Run all draws at once under an outer ``pyro.plate`` (``True``), one by one
        (``False``), or try the first and fall back to the second when the model does not
        broadcast over the plate (``None``). Both give the same numbers for the same draws.
    **model_kwargs
        Keyword arguments of the model (and guide).

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        ``InferenceData`` with ArviZ 0.x, ``DataTree`` with ArviZ 1.x; read groups with
        :func:`get_group`. An MCMC source also gets ``sample_stats.diverging``.

    Notes
    -----
    The pointwise log-likelihood is the observed site's ``fn.log_prob(obs)``, without the
    site's ``scale`` or ``mask`` handlers. Memory: every observed site stores
    ``chains x draws x N`` numbers twice (predictive draws and log-likelihoods).

    Examples
    --------
    >>> import torch, pyro.distributions as dist
    >>> from pyro.nn import PyroSample
    >>> from ppl_models.gaussian import Gaussian
    >>> from ppl_models.inference import run_nuts
    >>> x = torch.randn(20, dtype=torch.float64)
    >>> g = Gaussian(event_dim=0)
    >>> g.loc = PyroSample(dist.Normal(0.0, 10.0))
    >>> g.scale = PyroSample(dist.HalfNormal(5.0))
    >>> mcmc = run_nuts(g, x, num_samples=20, warmup_steps=20, num_chains=2, progress=False)
    >>> idata = to_inference_data(mcmc)
    >>> dict(get_group(idata, "log_likelihood")["obs"].sizes)
    {'chain': 2, 'draw': 20, 'data': 20}
    """
    if observed_sites is not None and isinstance(observed_sites, str):
        observed_sites = [observed_sites]
    if isinstance(source, (MCMC, NutsRun)):
        got = _from_run(source, module, data, model_kwargs, seed)
    elif isinstance(source, Mapping):
        got = _from_dict(source, module, data, model_kwargs, seed)
    elif isinstance(source, torch.nn.Module):
        if module is not None and module is not source:
            raise ValueError("pass the fitted module as source, not also as module=")
        guide = getattr(source, "guide", None) if guide is None else guide
        if guide is None:
            raise ValueError("an SVI source needs a guide (guide=) or a module.guide method")
        got = _from_guide(
            source, guide, data, model_kwargs, seed, num_samples, num_chains, parallel
        )
    else:
        raise TypeError(
            "source must be a pyro MCMC run, a PyroModule fitted by fit_svi, or a dict of "
            f"draws; got {type(source).__name__}"
        )
    require_data(got.data, got.model_kwargs)
    posterior, pp, ll, observed, dims = draws_to_groups(
        got.model, got.draws, got.data, got.model_kwargs, observed_sites, parallel,
        got.chains, got.per_chain,
    )  # fmt: skip
    return _arviz.from_arrays(
        posterior,
        posterior_predictive=pp,
        log_likelihood=ll,
        observed_data=observed,
        sample_stats=got.sample_stats,
        dims=dims,
    )


class _Posterior(NamedTuple):
    """Latent draws ``(chains * per_chain, ...)`` with the model and its arguments."""

    model: Callable[..., Any]
    data: tuple[Any, ...]
    model_kwargs: dict[str, Any]
    draws: dict[str, torch.Tensor]
    chains: int
    per_chain: int
    sample_stats: dict[str, Any] | None = None


def _seed(seed: int | None) -> None:
    if seed is not None:
        pyro.set_rng_seed(check_int(seed, "seed", minimum=0))


def _from_run(
    source: Any, module: Any, data: tuple[Any, ...], model_kwargs: dict[str, Any], seed: int | None
) -> _Posterior:
    """An MCMC run's draws, with its module and data unless others are given."""
    if module is None:  # the module run_nuts sampled, or whose model the kernel traces
        module = getattr(source, "ppl_module", None)
    kernel_model = source.kernel.model if isinstance(source, MCMC) else None
    if module is None:
        module = getattr(kernel_model, "__self__", None)
    model = model_fn(module) if module is not None else kernel_model
    if model is None:
        raise ValueError("source (MCMC) samples a potential function, not a model: pass module=")
    if data or model_kwargs:
        data = prepare_data(module, data) if module is not None else data
    else:  # the (validated) arguments the run was given
        data, model_kwargs = source._args or (), source._kwargs or {}
    grouped = source.get_samples(group_by_chain=True)
    if not grouped:
        raise ValueError("source (MCMC) has no samples; run it first")
    chains, per_chain = next(iter(grouped.values())).shape[:2]
    draws = {k: v.reshape((chains * per_chain, *v.shape[2:])) for k, v in grouped.items()}
    if isinstance(source, NutsRun):
        sample_stats = dict(source.sample_stats)
    else:
        div = _divergences(source, chains, per_chain)
        sample_stats = None if div is None else {"diverging": div}
    _seed(seed)
    return _Posterior(model, data, model_kwargs, draws, chains, per_chain, sample_stats)


def _from_dict(
    source: Mapping[str, Any],
    module: Any,
    data: tuple[Any, ...],
    model_kwargs: dict[str, Any],
    seed: int | None,
) -> _Posterior:
    """Draws ``(chain, draw, ...)`` given by name, in the data's floating dtype."""
    if module is None:
        raise ValueError("module is required when source is a dict of draws")
    model = model_fn(module)
    require_data(data, model_kwargs)
    data = prepare_data(module, data)
    if not source:
        raise ValueError("source must be a non-empty dict of draws")
    grouped = {k: torch.as_tensor(np.asarray(v)) for k, v in source.items()}
    for k, v in grouped.items():
        if v.ndim < 2:
            raise ValueError(
                f"source[{k!r}] must have leading dimensions (chain, draw); got shape "
                f"{tuple(v.shape)}"
            )
    chains, per_chain = next(iter(grouped.values())).shape[:2]
    floating = [x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()]
    dtype = floating[0].dtype if floating else torch.get_default_dtype()
    draws = {
        k: v.reshape((chains * per_chain, *v.shape[2:])).to(
            dtype if v.is_floating_point() else v.dtype
        )
        for k, v in grouped.items()
    }
    _seed(seed)
    return _Posterior(model, data, model_kwargs, draws, chains, per_chain)


def _from_guide(
    module: Any,
    guide: Callable[..., Any] | None,
    data: tuple[Any, ...],
    model_kwargs: dict[str, Any],
    seed: int | None,
    num_samples: int,
    num_chains: int,
    parallel: bool | None,
) -> _Posterior:
    """``num_chains`` x ``num_samples`` independent draws of the model's latent sites from
    ``guide``: a fitted guide, or with ``guide=None`` the prior (the model itself, its
    observed sites left free)."""
    model = model_fn(module)
    chains = check_int(num_chains, "num_chains", minimum=1)
    per_chain = check_int(num_samples, "num_samples", minimum=1)
    require_data(data, model_kwargs)
    data = prepare_data(module, data)
    _seed(seed)
    with torch.no_grad(), poutine.block():
        model_sites = sample_sites(poutine.trace(model).get_trace(*data, **model_kwargs))
        if guide is None:
            if not any(not is_observed(s) for s in model_sites.values()):
                raise ValueError(
                    "module has no latent sample sites (no priors): give its parameters "
                    "priors (PyroSample) to draw from the prior predictive"
                )
            guide = poutine.uncondition(model)
    draws = guide_draws(guide, model_sites, data, model_kwargs, chains * per_chain, parallel)
    return _Posterior(model, data, model_kwargs, draws, chains, per_chain)


def _groups_of(data: Any, name: str) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """A group of ArviZ data as numpy arrays and the names of their non-(chain, draw) dims."""
    ds = get_group(data, name)
    arrays, dims = {}, {}
    lead = 2 if name in _arviz.SAMPLE_GROUPS or name in _arviz.PRIOR_GROUPS else 0
    for var in ds.data_vars:
        arrays[str(var)] = np.asarray(ds[var].values)
        dims[str(var)] = [str(d) for d in ds[var].dims[lead:]]
    return arrays, dims


@locally
def prior_predictive(
    module: Any,
    *data: Any,
    num_samples: int = 500,
    num_chains: int = 1,
    seed: int | None = 0,
    observed_sites: Sequence[str] | None = None,
    parallel: bool | None = None,
    **model_kwargs: Any,
) -> Any:
    r"""Draws from the prior and the data sets they generate, as ArviZ data: the first step
    of the workflow, before any fit.

    .. math::

        \theta^{(s)} \sim p(\theta), \qquad \tilde x^{(s)} \sim p(x \mid \theta^{(s)}),

    so that :math:`\tilde x^{(s)}` are draws from the prior predictive
    :math:`p(x) = \int p(x \mid \theta) p(\theta) d\theta`. Plotted against the observed
    data (:func:`ppl_models.plots.plot_predictive_overlay`), they show whether the priors
    allow data of the right scale and shape (Gelman et al. 2020, section 2.4).

    Parameters
    ----------
    module : PyroModule or callable
        A model whose parameters carry priors (``PyroSample``); point parameters
        (``PyroParam``) stay at their current values.
    *data : torch.Tensor or numpy.ndarray
        The model's arguments with the observed values (these become ``observed_data``;
        the observed sites are drawn, not conditioned).
    num_samples, num_chains : int
        Prior draws per chain and chains (independent draws).
    seed : int, optional
        Seeds the draws.
    observed_sites : list of str, optional
        Keep these observed sites (default: all).
    parallel : bool, optional
        As in :func:`to_inference_data`.
    **model_kwargs
        Keyword arguments of the model.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        Groups ``prior`` (latent sites, ``(chain, draw, *site_shape)``),
        ``prior_predictive`` (observed sites, ``(chain, draw, *obs_shape)``) and
        ``observed_data``.

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> from pyro.nn import PyroSample
    >>> from ppl_models.gaussian import Gaussian
    >>> g = Gaussian(event_dim=0)
    >>> g.loc = PyroSample(dist.Normal(0.0, 10.0))
    >>> prior = prior_predictive(g, torch.zeros(5), num_samples=100, num_chains=2)
    >>> dict(get_group(prior, "prior_predictive")["obs"].sizes)
    {'chain': 2, 'draw': 100, 'data': 5}
    """
    got = _from_guide(module, None, data, model_kwargs, seed, num_samples, num_chains, parallel)
    with torch.no_grad(), poutine.block():
        prior, pp, _, observed, dims = draws_to_groups(
            got.model, got.draws, got.data, got.model_kwargs, observed_sites, parallel,
            got.chains, got.per_chain,
        )  # fmt: skip
    return _arviz.from_arrays(
        None, prior=prior, prior_predictive=pp, observed_data=observed, dims=dims
    )


@locally
def posterior_predictive(source: Any, *data: Any, prior: Any = None, **options: Any) -> Any:
    r"""Posterior draws and the data sets they generate, with the pointwise
    log-likelihood, from a NUTS run or an SVI guide: the checking step of the workflow.

    .. math::

        \theta^{(s)} \sim p(\theta \mid x) \text{ (or } q_\phi(\theta)\text{)}, \qquad
        \tilde x^{(s)} \sim p(x \mid \theta^{(s)}), \qquad
        \ell_{sn} = \log p(x_n \mid \theta^{(s)}).

    The draws :math:`\tilde x^{(s)}` are compared with the data by
    :func:`ppl_models.plots.plot_ppc`, :func:`~ppl_models.plots.plot_predictive_overlay`
    and the LOO-PIT (:func:`~ppl_models.plots.plot_loo_pit`); :math:`\ell_{sn}` feeds
    :func:`loo` and :func:`compare`.

    Parameters
    ----------
    source : NutsRun or pyro.infer.MCMC or PyroModule or dict
        As in :func:`to_inference_data` (a run, a module fitted by ``fit_svi`` with its
        guide, or a dict of draws).
    *data : torch.Tensor or numpy.ndarray
        The model's arguments with the observed values (omit for a ``run_nuts`` run).
    prior : InferenceData or DataTree, optional
        The result of :func:`prior_predictive` for the same model and data: its ``prior``
        and ``prior_predictive`` groups are added, so that one object holds the whole loop.
    **options
        The keywords of :func:`to_inference_data`, with its defaults: ``module``,
        ``guide``, ``num_samples``, ``num_chains``, ``seed``, ``observed_sites``,
        ``parallel``, and the model's own keyword arguments.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        Groups ``posterior``, ``posterior_predictive``, ``log_likelihood``,
        ``observed_data`` (``sample_stats`` for MCMC; ``prior``, ``prior_predictive`` when
        ``prior`` is given).
    """
    post = to_inference_data(source, *data, **options)
    if prior is None:
        return post
    names = _arviz.group_names(prior)
    if "prior" not in names:
        raise ValueError(f"prior must hold a 'prior' group (from prior_predictive); it has {names}")
    groups: dict[str, dict[str, np.ndarray]] = {}
    dims: dict[str, list[str]] = {}
    for name in [*_arviz.group_names(post), "prior", "prior_predictive"]:
        if name in names or name in _arviz.group_names(post):
            src = post if name in _arviz.group_names(post) else prior
            if name in ("prior", "prior_predictive") and name not in names:
                continue
            arrays, d = _groups_of(src, name)
            groups[name] = arrays
            dims.update(d)
    return _arviz.from_arrays(
        groups["posterior"],
        posterior_predictive=groups.get("posterior_predictive"),
        log_likelihood=groups.get("log_likelihood"),
        observed_data=groups.get("observed_data"),
        sample_stats=groups.get("sample_stats"),
        prior=groups.get("prior"),
        prior_predictive=groups.get("prior_predictive"),
        dims=dims,
    )
