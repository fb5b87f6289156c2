r"""The ArviZ bridge: MCMC runs and SVI guides as ArviZ data, for either ArviZ generation.

Given posterior draws :math:`\theta_s` (from NUTS, or from a fitted guide
:math:`q_\phi(\theta)`), :func:`to_inference_data` runs the model once per draw with the
latent sites fixed to :math:`\theta_s` and the observed sites left free, and records

.. math::

    \tilde x^{(s)} \sim p(x \mid \theta_s) \quad \text{(posterior predictive)}, \qquad
    \ell_{sn} = \log p(x_n \mid \theta_s) \quad \text{(pointwise log-likelihood)},

for every observed site and every observation :math:`n` (a row of the site's batch shape:
event dimensions are summed, as in the distribution's ``log_prob``). ArviZ computes R-hat
and effective sample sizes from the posterior group, posterior predictive checks from the
predictive and observed groups, and PSIS-LOO / WAIC (Vehtari et al. 2017) from
:math:`\ell_{sn}`.

==========================  ======================  ========================================
group                       variables               shape
==========================  ======================  ========================================
``posterior``               latent sample sites     ``(chain, draw, *site_shape)``
                            (and deterministic
                            sites)
``posterior_predictive``    observed sites          ``(chain, draw, *obs_shape)``
``log_likelihood``          observed sites          ``(chain, draw, *obs_batch_shape)``
``observed_data``           observed sites          ``obs_shape``
``sample_stats`` (MCMC)     ``diverging``           ``(chain, draw)``
==========================  ======================  ========================================

Dimensions inside a plate are named after the plate (``"data"`` for the library's
observations); the others ``<site>_dim_<i>``. The dictionary is built here and handed to
:func:`ppl_models._arviz.from_arrays`, so ArviZ 0.x (``InferenceData``) and 1.x
(``xarray.DataTree``, no Pyro converter) take the same path.

References
----------
A. Gelman et al., *Bayesian Workflow*, arXiv:2011.01808 (2020).
A. Vehtari, A. Gelman, J. Gabry, "Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC", *Statistics and Computing* 27 (2017).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import MCMC
from pyro.poutine.util import prune_subsample_sites

from . import _arviz
from ._arviz import LooResult, get_group, loo, loo_pit, rhat, summary
from ._checks import check_choice, check_int
from .inference import to_tensor
from .inference.nuts import NutsRun
from .inference.plates import local_params

__all__ = [
    "LooResult",
    "check_guide",
    "compare",
    "get_group",
    "linear_gaussian_loo",
    "loo",
    "loo_pit",
    "posterior_predictive",
    "prior_predictive",
    "rhat",
    "summary",
    "to_inference_data",
]

# Floats per vectorised chunk of draws (values and log-likelihoods of the observed sites):
# 2**22 float64 numbers are 32 MiB, small enough for any machine, large enough that the
# Python overhead per chunk does not matter.
_CHUNK_FLOATS = 2**22
_DRAW_PLATE = "_ppl_models_draws"


class _NotVectorisable(Exception):
    """The model does not broadcast over an outer plate of draws (fall back to a loop)."""


def _locally(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a workflow function with module-local parameters for every module among its
    arguments (:func:`~ppl_models.inference.plates.local_params`): an autoguide or a
    user's module then reads its own parameters, never a namesake's in Pyro's store."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        objs = [*args, *kwargs.values()]
        objs += [v for o in objs if isinstance(o, Mapping) for v in o.values()]
        with local_params(*objs):
            return fn(*args, **kwargs)

    return wrapped


def _model_fn(module: Any) -> Callable[..., Any]:
    fn = getattr(module, "model", module)
    if not callable(fn):
        raise TypeError(
            f"module must be a PyroModule with a model method or a callable model; got "
            f"{type(module).__name__}"
        )
    return fn


def _prepare_data(module: Any, data: tuple[Any, ...]) -> tuple[Any, ...]:
    data = tuple(to_tensor(x, i) for i, x in enumerate(data))
    validate = getattr(module, "validate_data", None)
    if validate is not None:
        data = tuple(validate(*data))
    return data


def _is_observed(site: dict[str, Any]) -> bool:
    infer = site.get("infer") or {}
    return (
        (site["is_observed"] or infer.get("was_observed", False))
        and not infer.get("_deterministic", False)
        and not isinstance(site["fn"], dist.Unit)  # pyro.factor
    )


def _sites(trace: Any) -> dict[str, dict[str, Any]]:
    trace = prune_subsample_sites(trace)
    return {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not (site.get("infer") or {}).get("is_auxiliary")
    }


def _max_plate_nesting(sites: Mapping[str, dict[str, Any]]) -> int:
    dims = [
        -f.dim
        for site in sites.values()
        for f in site["cond_indep_stack"]
        if f.vectorized and f.name != _DRAW_PLATE
    ]
    return max(dims, default=0)


def _site_dims(name: str, site: dict[str, Any], ndim: int) -> list[str]:
    """Dimension names of a site's value (ndim) or log-prob (ndim = batch ndim)."""
    value = site["value"]
    batch_ndim = value.ndim - site["fn"].event_dim
    plates = {f.dim: f.name for f in site["cond_indep_stack"] if f.vectorized}
    names = []
    for i in range(ndim):
        rel = i - batch_ndim
        names.append(plates.get(rel, f"{name}_dim_{i}") if i < batch_ndim else f"{name}_dim_{i}")
    return names


def _batch_ndim(site: dict[str, Any]) -> int:
    return site["value"].ndim - site["fn"].event_dim


def _fit_shape(t: torch.Tensor, n: int, shape: torch.Size, what: str) -> torch.Tensor:
    """Reshape a vectorised value ``(n, 1, ..., *shape)`` to ``(n, *shape)``, or raise."""
    t = torch.as_tensor(t)
    extra = t.ndim - len(shape) - 1
    if (
        extra < 0
        or t.shape[0] not in (1, n)
        or any(s != 1 for s in t.shape[1 : 1 + extra])
        or tuple(t.shape[1 + extra :]) != tuple(shape)
    ):
        raise _NotVectorisable(f"{what}: got shape {tuple(t.shape)}, expected ({n}, {shape})")
    return t.reshape((t.shape[0], *shape)).expand((n, *shape))


def _reshape_draws(
    draws: Mapping[str, torch.Tensor], idx: slice, sites: Mapping[str, dict[str, Any]], nesting: int
) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in draws.items():
        v = v[idx]
        pad = nesting - _batch_ndim(sites[k])
        out[k] = v.reshape((v.shape[0],) + (1,) * max(pad, 0) + tuple(v.shape[1:]))
    return out


def _guide_draws(
    guide: Callable[..., Any],
    model_sites: Mapping[str, dict[str, Any]],
    data: tuple[Any, ...],
    kwargs: dict[str, Any],
    n: int,
    parallel: bool | None,
) -> dict[str, torch.Tensor]:
    """``n`` independent draws of the model's latent sites from ``guide``, ``(n, *shape)``."""
    with torch.no_grad(), poutine.block():
        ref = _sites(poutine.trace(guide).get_trace(*data, **kwargs))
    latent = [
        k
        for k, s in ref.items()
        if not _is_observed(s) and k in model_sites and not _is_observed(model_sites[k])
    ]
    if not latent:
        raise ValueError(
            "guide has no latent sample sites of the model; pass the fitted guide (e.g. an "
            "AutoNormal) as guide="
        )
    shapes = {k: ref[k]["value"].shape for k in latent}
    nesting = _max_plate_nesting(model_sites)
    if parallel is not False:
        try:
            with torch.no_grad(), poutine.block():
                with pyro.plate(_DRAW_PLATE, n, dim=-nesting - 1):
                    tr = poutine.trace(guide).get_trace(*data, **kwargs)
            return {
                k: _fit_shape(tr.nodes[k]["value"], n, shapes[k], f"guide site {k!r}").clone()
                for k in latent
            }
        except Exception:
            if parallel:
                raise
    out: dict[str, list[torch.Tensor]] = {k: [] for k in latent}
    with torch.no_grad(), poutine.block():
        for _ in range(n):
            tr = poutine.trace(guide).get_trace(*data, **kwargs)
            for k in latent:
                out[k].append(tr.nodes[k]["value"])
    return {k: torch.stack(v) for k, v in out.items()}


def _predict(
    model: Callable[..., Any],
    draws: Mapping[str, torch.Tensor],
    data: tuple[Any, ...],
    kwargs: dict[str, Any],
    observed: Sequence[str],
    deterministic: Sequence[str],
    ref: Mapping[str, dict[str, Any]],
    parallel: bool | None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Run the model with the latent sites fixed to each draw and the observed sites free.

    Returns (predictive draws, pointwise log-likelihoods, deterministic sites), each
    ``(S, ...)``.
    """
    n = next(iter(draws.values())).shape[0]
    free = poutine.uncondition(model)
    lp_shape = {k: ref[k]["fn"].log_prob(ref[k]["infer"]["obs"]).shape for k in observed}
    val_shape = {k: ref[k]["value"].shape for k in observed}
    det_shape = {k: ref[k]["value"].shape for k in deterministic}

    def collect(tr: Any, m: int | None) -> tuple[dict, dict, dict]:
        # m=None: one unbatched run, whose values gain a leading draw dimension.
        def fit(t: torch.Tensor, shape: torch.Size, what: str) -> torch.Tensor:
            if m is None:
                return _fit_shape(torch.as_tensor(t).unsqueeze(0), 1, shape, what)
            return _fit_shape(t, m, shape, what)

        pp, ll, det = {}, {}, {}
        for k in observed:
            site = tr.nodes[k]
            pp[k] = fit(site["value"], val_shape[k], f"site {k!r}")
            lp = site["fn"].log_prob(site["infer"]["obs"])
            ll[k] = fit(lp, lp_shape[k], f"log-likelihood of {k!r}")
        for k in deterministic:
            det[k] = fit(tr.nodes[k]["value"], det_shape[k], f"site {k!r}")
        return pp, ll, det

    parts: list[tuple[dict, dict, dict]] = []
    done = False
    if parallel is not False:
        nesting = _max_plate_nesting(ref)
        per_draw = sum(math.prod(val_shape[k]) + math.prod(lp_shape[k]) for k in observed)
        chunk = max(1, min(n, _CHUNK_FLOATS // max(per_draw, 1)))
        try:
            with torch.no_grad(), poutine.block():
                for start in range(0, n, chunk):
                    idx = slice(start, min(start + chunk, n))
                    m = idx.stop - idx.start
                    cond = _reshape_draws(draws, idx, ref, nesting)
                    with pyro.plate(_DRAW_PLATE, m, dim=-nesting - 1):
                        tr = poutine.trace(poutine.condition(free, cond)).get_trace(*data, **kwargs)
                    parts.append(collect(tr, m))
                # A model can run under the plate and still mix draws (e.g. by reducing
                # over a parameter's batch dimensions); the log-likelihood is deterministic
                # given a draw, so check the first and the last against single runs.
                batched = {k: torch.cat([p[1][k] for p in parts]) for k in observed}
                for s in sorted({0, n - 1}):
                    cond = {k: v[s] for k, v in draws.items()}
                    tr = poutine.trace(poutine.condition(free, cond)).get_trace(*data, **kwargs)
                    single = collect(tr, None)[1]
                    for k in observed:
                        if not torch.allclose(
                            batched[k][s : s + 1], single[k], rtol=1e-6, atol=1e-8
                        ):
                            raise _NotVectorisable(
                                f"the log-likelihood of {k!r} under a plate of draws differs "
                                "from single runs: the model does not broadcast over draws"
                            )
            done = True
        except Exception:
            if parallel:
                raise
            parts = []
    if not done:
        with torch.no_grad(), poutine.block():
            for s in range(n):
                cond = {k: v[s] for k, v in draws.items()}
                tr = poutine.trace(poutine.condition(free, cond)).get_trace(*data, **kwargs)
                parts.append(collect(tr, None))
    return tuple(  # type: ignore[return-value]
        {k: torch.cat([p[g][k] for p in parts]) for k in parts[0][g]} for g in range(3)
    )


def _require_data(data: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if not data and not kwargs:
        raise ValueError("data is required: pass the model's arguments after source")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _divergences(mcmc: MCMC, num_chains: int, num_draws: int) -> np.ndarray | None:
    diags = getattr(mcmc, "_diagnostics", None)
    if not diags or not all(isinstance(d, dict) and "divergences" in d for d in diags):
        return None
    out = np.zeros((num_chains, num_draws), dtype=bool)
    for c, d in enumerate(diags[:num_chains]):
        idx = [i for i in d["divergences"] if 0 <= i < num_draws]
        out[c, idx] = True
    return out


@_locally
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
    sample_stats = None
    if isinstance(source, (MCMC, NutsRun)):
        if module is None:  # the module run_nuts sampled, or whose model the kernel traces
            module = getattr(source, "ppl_module", None)
        kernel_model = source.kernel.model if isinstance(source, MCMC) else None
        if module is None:
            module = getattr(kernel_model, "__self__", None)
        model = _model_fn(module) if module is not None else kernel_model
        if model is None:
            raise ValueError(
                "source (MCMC) samples a potential function, not a model: pass module="
            )
        if data or model_kwargs:
            data = _prepare_data(module, data) if module is not None else data
        else:  # the (validated) arguments the run was given
            data, model_kwargs = source._args or (), source._kwargs or {}
        grouped = source.get_samples(group_by_chain=True)
        if not grouped:
            raise ValueError("source (MCMC) has no samples; run it first")
        chains, draws_per_chain = next(iter(grouped.values())).shape[:2]
        draws = {k: v.reshape((chains * draws_per_chain, *v.shape[2:])) for k, v in grouped.items()}
        if isinstance(source, NutsRun):
            sample_stats = dict(source.sample_stats)
        else:
            div = _divergences(source, chains, draws_per_chain)
            sample_stats = None if div is None else {"diverging": div}
        if seed is not None:
            pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
    elif isinstance(source, Mapping):
        if module is None:
            raise ValueError("module is required when source is a dict of draws")
        model = _model_fn(module)
        _require_data(data, model_kwargs)
        data = _prepare_data(module, data)
        if not source:
            raise ValueError("source must be a non-empty dict of draws")
        grouped = {k: torch.as_tensor(np.asarray(v)) for k, v in source.items()}
        for k, v in grouped.items():
            if v.ndim < 2:
                raise ValueError(
                    f"source[{k!r}] must have leading dimensions (chain, draw); got shape "
                    f"{tuple(v.shape)}"
                )
        chains, draws_per_chain = next(iter(grouped.values())).shape[:2]
        floating = [x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()]
        dtype = floating[0].dtype if floating else torch.get_default_dtype()
        draws = {
            k: v.reshape((chains * draws_per_chain, *v.shape[2:])).to(
                dtype if v.is_floating_point() else v.dtype
            )
            for k, v in grouped.items()
        }
        if seed is not None:
            pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
    elif isinstance(source, torch.nn.Module):
        if module is not None and module is not source:
            raise ValueError("pass the fitted module as source, not also as module=")
        module = source
        model = _model_fn(module)
        guide = getattr(module, "guide", None) if guide is None else guide
        if guide is None:
            raise ValueError("an SVI source needs a guide (guide=) or a module.guide method")
        chains = check_int(num_chains, "num_chains", minimum=1)
        draws_per_chain = check_int(num_samples, "num_samples", minimum=1)
        _require_data(data, model_kwargs)
        data = _prepare_data(module, data)
        if seed is not None:
            pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
        with torch.no_grad(), poutine.block():
            model_sites = _sites(poutine.trace(model).get_trace(*data, **model_kwargs))
        draws = _guide_draws(
            guide, model_sites, data, model_kwargs, chains * draws_per_chain, parallel
        )
    else:
        raise TypeError(
            "source must be a pyro MCMC run, a PyroModule fitted by fit_svi, or a dict of "
            f"draws; got {type(source).__name__}"
        )
    _require_data(data, model_kwargs)
    posterior, pp, ll, observed, dims = _draws_to_groups(
        model, draws, data, model_kwargs, observed_sites, parallel, chains, draws_per_chain
    )
    return _arviz.from_arrays(
        posterior,
        posterior_predictive=pp,
        log_likelihood=ll,
        observed_data=observed,
        sample_stats=sample_stats,
        dims=dims,
    )


def _draws_to_groups(
    model: Callable[..., Any],
    draws: Mapping[str, torch.Tensor],
    data: tuple[Any, ...],
    model_kwargs: dict[str, Any],
    observed_sites: Sequence[str] | None,
    parallel: bool | None,
    chains: int,
    draws_per_chain: int,
) -> tuple[dict, dict, dict, dict, dict]:
    """Latent draws ``(S, ...)`` to the numpy groups (latent + deterministic draws,
    predictive draws, log-likelihoods, observed values, dims), each sampled group
    ``(chain, draw, ...)``."""
    # One run with the first draw names and classifies the sites.
    first = {k: v[0] for k, v in draws.items()}
    with torch.no_grad(), poutine.block():
        ref = _sites(
            poutine.trace(poutine.condition(poutine.uncondition(model), first)).get_trace(
                *data, **model_kwargs
            )
        )
    observed_all = [k for k, s in ref.items() if _is_observed(s) and k not in draws]
    deterministic = [
        k for k, s in ref.items() if (s.get("infer") or {}).get("_deterministic") and k not in draws
    ]
    missing = [
        k
        for k, s in ref.items()
        if k not in draws and k not in observed_all and k not in deterministic
    ]
    if missing:
        raise ValueError(
            f"the model's latent sites {missing} have no posterior draws in source "
            f"(it has {sorted(draws)})"
        )
    unknown = sorted(set(draws) - set(ref))
    if unknown:
        raise ValueError(
            f"source has draws of sites {unknown} that the model does not sample (its sites: "
            f"{sorted(ref)}). A PyroSample attribute is a sample site only inside the "
            "module's Pyro context: decorate model with ppl_models.inference.pyro_method."
        )
    if observed_sites is None:
        observed = observed_all
    else:
        observed = list(observed_sites)
        bad = [k for k in observed if k not in observed_all]
        if bad:
            raise ValueError(
                f"observed_sites {bad} are not observed sites of the model; it has {observed_all}"
            )
    if not observed:
        raise ValueError(
            "the model has no observed sites with these data; pass the observed values "
            "(e.g. model(x) with x given)"
        )

    pp, ll, det = _predict(model, draws, data, model_kwargs, observed, deterministic, ref, parallel)

    def grouped_np(d: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {k: _numpy(v).reshape((chains, draws_per_chain, *v.shape[1:])) for k, v in d.items()}

    posterior = grouped_np(draws)
    posterior.update(grouped_np(det))
    dims: dict[str, list[str]] = {}
    for k in list(draws) + deterministic:
        dims[k] = _site_dims(k, ref[k], ref[k]["value"].ndim)
    for k in observed:
        dims[k] = _site_dims(k, ref[k], ref[k]["value"].ndim)
    observed_data = {k: _numpy(ref[k]["infer"]["obs"]) for k in observed}
    return posterior, grouped_np(pp), grouped_np(ll), observed_data, dims


# ---------------------------------------------------------------------------
# The workflow's steps: prior predictive, posterior predictive, compare, check the guide
# ---------------------------------------------------------------------------


def _groups_of(data: Any, name: str) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """A group of ArviZ data as numpy arrays and the names of their non-(chain, draw) dims."""
    ds = get_group(data, name)
    arrays, dims = {}, {}
    lead = 2 if name in _arviz.SAMPLE_GROUPS or name in _arviz.PRIOR_GROUPS else 0
    for var in ds.data_vars:
        arrays[str(var)] = np.asarray(ds[var].values)
        dims[str(var)] = [str(d) for d in ds[var].dims[lead:]]
    return arrays, dims


@_locally
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
    model = _model_fn(module)
    chains = check_int(num_chains, "num_chains", minimum=1)
    per_chain = check_int(num_samples, "num_samples", minimum=1)
    _require_data(data, model_kwargs)
    data = _prepare_data(module, data)
    if seed is not None:
        pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
    with torch.no_grad(), poutine.block():
        model_sites = _sites(poutine.trace(model).get_trace(*data, **model_kwargs))
        if not any(not _is_observed(s) for s in model_sites.values()):
            raise ValueError(
                "module has no latent sample sites (no priors): give its parameters priors "
                "(PyroSample) to draw from the prior predictive"
            )
        draws = _guide_draws(
            poutine.uncondition(model),
            model_sites,
            data,
            model_kwargs,
            chains * per_chain,
            parallel,
        )
        prior, pp, _, observed, dims = _draws_to_groups(
            model, draws, data, model_kwargs, observed_sites, parallel, chains, per_chain
        )
    return _arviz.from_arrays(
        None, prior=prior, prior_predictive=pp, observed_data=observed, dims=dims
    )


@_locally
def posterior_predictive(
    source: Any,
    *data: Any,
    prior: Any = None,
    module: Any = None,
    guide: Callable[..., Any] | None = None,
    num_samples: int = 500,
    num_chains: int = 4,
    seed: int | None = 0,
    observed_sites: Sequence[str] | None = None,
    parallel: bool | None = None,
    **model_kwargs: Any,
) -> Any:
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
    module, guide, num_samples, num_chains, seed, observed_sites, parallel, **model_kwargs
        As in :func:`to_inference_data`.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        Groups ``posterior``, ``posterior_predictive``, ``log_likelihood``,
        ``observed_data`` (``sample_stats`` for MCMC; ``prior``, ``prior_predictive`` when
        ``prior`` is given).
    """
    post = to_inference_data(
        source,
        *data,
        module=module,
        guide=guide,
        num_samples=num_samples,
        num_chains=num_chains,
        seed=seed,
        observed_sites=observed_sites,
        parallel=parallel,
        **model_kwargs,
    )
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


@_locally
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
    data: tuple[Any, ...],
    kwargs: dict[str, Any],
    n: int,
    nesting: int,
    parallel: bool | None,
) -> torch.Tensor:
    """log p(x, z_s) - log q(z_s) for ``n`` draws z_s of the guide."""
    if parallel is not False:
        try:
            from pyro.infer.importance import vectorized_importance_weights

            lw, _, _ = vectorized_importance_weights(
                model, guide, *data, num_samples=n, max_plate_nesting=nesting, **kwargs
            )
            lw = torch.as_tensor(lw)
            if lw.shape == (n,) and bool(torch.isfinite(lw).any()):
                return lw
            raise _NotVectorisable(f"log weights of shape {tuple(lw.shape)}")
        except Exception:
            if parallel:
                raise
    out = torch.empty(n, dtype=torch.float64)
    for s in range(n):
        g = poutine.trace(guide).get_trace(*data, **kwargs)
        m = poutine.trace(poutine.replay(model, trace=g)).get_trace(*data, **kwargs)
        out[s] = m.log_prob_sum() - g.log_prob_sum()
    return out


@_locally
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

    model = _model_fn(module)
    num_particles = check_int(num_particles, "num_particles", minimum=100)
    _require_data(data, model_kwargs)
    data = _prepare_data(module, data)
    if guide is None:
        guide = getattr(module, "guide", None)
        if guide is None:
            raise ValueError("check_guide needs a guide (guide=) or a module.guide method")
    guides = dict(guide) if isinstance(guide, Mapping) else {"guide": guide}
    if not guides:
        raise ValueError("guide must be a callable or a non-empty dict of callables")
    rows = []
    with torch.no_grad():
        model_sites = _sites(poutine.trace(model).get_trace(*data, **model_kwargs))
        nesting = max(_max_plate_nesting(model_sites), 1)
        for name, g in guides.items():
            if not callable(g):
                raise TypeError(f"guide {name!r} must be callable; got {type(g).__name__}")
            if seed is not None:
                pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
            with poutine.block():
                g_sites = _sites(poutine.trace(g).get_trace(*data, **model_kwargs))
            if not any(k in model_sites and not _is_observed(model_sites[k]) for k in g_sites):
                raise ValueError(
                    f"guide {name!r} has no latent sample sites of the model: check_guide "
                    "needs a guide over the model's priors (e.g. an AutoNormal)"
                )
            with poutine.block():
                lw = _log_weights(model, g, data, model_kwargs, num_particles, nesting, parallel)
            k = _pareto_k(lw)
            rows.append({"k_hat": k, "verdict": _verdict(k), "num_particles": num_particles})
    return pd.DataFrame(rows, index=list(guides))


def linear_gaussian_loo(phi: Any, t: Any, alpha: float, beta: float) -> torch.Tensor:
    r"""Exact leave-one-out log predictive densities of Bayesian linear regression with
    known :math:`\alpha, \beta` (the reference for PSIS-LOO on that model).

    Integrating out :math:`w \sim \mathcal N(0, \alpha^{-1} I)` gives
    :math:`t \sim \mathcal N(0, C)`, :math:`C = \beta^{-1} I + \alpha^{-1} \Phi\Phi^\top`
    (PRML 3.85-3.86), and the conditional of one coordinate of a Gaussian given the others
    (Rasmussen & Williams 2006, eq. 5.12) is, with :math:`P = C^{-1}`,

    .. math::

        \log p(t_n \mid t_{-n}) = -\frac12 \log 2\pi + \frac12 \log P_{nn}
            - \frac{(P t)_n^2}{2 P_{nn}}.

    Parameters
    ----------
    phi : array_like, shape (N, M)
        Design matrix.
    t : array_like, shape (N,)
        Targets.
    alpha, beta : float
        Prior precision of the weights and noise precision, both :math:`> 0`.

    Returns
    -------
    torch.Tensor, shape (N,)
        :math:`\log p(t_n \mid t_{-n})`, in the dtype of ``phi`` and ``t``.

    Examples
    --------
    >>> phi = torch.ones(2, 1, dtype=torch.float64)
    >>> t = torch.tensor([1.0, 3.0], dtype=torch.float64)
    >>> # t_1 | t_2 = 3 under C = [[2, 1], [1, 2]]: N(1.5, 1.5)
    >>> lo = linear_gaussian_loo(phi, t, 1.0, 1.0)
    >>> exact = -0.5 * math.log(2 * math.pi * 1.5) - (1.0 - 1.5) ** 2 / (2 * 1.5)
    >>> abs(float(lo[0]) - exact) < 1e-12
    True
    """
    from ._checks import as_design, check_positive

    phi, t = as_design(phi, t)
    a = check_positive(alpha, "alpha", allow_tensor=False)
    b = check_positive(beta, "beta", allow_tensor=False)
    for value, name in ((a, "alpha"), (b, "beta")):
        # A precision whose reciprocal (a variance) under- or overflows the data's dtype
        # would turn C into zeros or infinities.
        if not (math.isfinite(1.0 / value) and 1.0 / value < torch.finfo(phi.dtype).max):
            raise ValueError(f"{name} = {value:g} is out of the range of {phi.dtype}")
    n = phi.shape[0]
    cov = torch.eye(n, dtype=phi.dtype, device=phi.device) / b + (phi @ phi.T) / a
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0 or not bool(torch.isfinite(cov).all()):
        raise ValueError(
            f"alpha = {a:g}, beta = {b:g}: the marginal covariance 1/beta I + Phi Phi^T / alpha "
            f"is not positive definite in {phi.dtype} (its scales are too far apart); "
            "rescale the data or pass float64"
        )
    prec = torch.cholesky_inverse(chol)
    d = prec.diagonal()
    pt = prec @ t
    return -0.5 * math.log(2 * math.pi) + 0.5 * torch.log(d) - 0.5 * pt**2 / d
