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
from ._arviz import LooResult, get_group, loo, rhat, summary
from ._checks import check_int
from .inference import _to_tensor

__all__ = ["LooResult", "get_group", "loo", "rhat", "summary", "to_inference_data"]

# Floats per vectorised chunk of draws (values and log-likelihoods of the observed sites):
# 2**22 float64 numbers are 32 MiB, small enough for any machine, large enough that the
# Python overhead per chunk does not matter.
_CHUNK_FLOATS = 2**22
_DRAW_PLATE = "_ppl_models_draws"


class _NotVectorisable(Exception):
    """The model does not broadcast over an outer plate of draws (fall back to a loop)."""


def _model_fn(module: Any) -> Callable[..., Any]:
    fn = getattr(module, "model", module)
    if not callable(fn):
        raise TypeError(
            f"module must be a PyroModule with a model method or a callable model; got "
            f"{type(module).__name__}"
        )
    return fn


def _prepare_data(module: Any, data: tuple[Any, ...]) -> tuple[Any, ...]:
    data = tuple(_to_tensor(x, i) for i, x in enumerate(data))
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
    source : pyro.infer.MCMC or PyroModule or dict
        * an MCMC run (e.g. from :func:`~ppl_models.inference.run_nuts`): the posterior is
          ``source.get_samples(group_by_chain=True)``; the run's module and data are used
          when ``module`` and ``data`` are omitted;
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
    if isinstance(source, MCMC):
        if module is None:  # the module whose bound model method the kernel samples
            module = getattr(source.kernel.model, "__self__", None)
        model = _model_fn(module) if module is not None else source.kernel.model
        if data or model_kwargs:
            data = _prepare_data(module, data) if module is not None else data
        else:  # the (validated) arguments the run was given
            data, model_kwargs = source._args or (), source._kwargs or {}
        grouped = source.get_samples(group_by_chain=True)
        if not grouped:
            raise ValueError("source (MCMC) has no samples; run it first")
        chains, draws_per_chain = next(iter(grouped.values())).shape[:2]
        draws = {k: v.reshape((chains * draws_per_chain, *v.shape[2:])) for k, v in grouped.items()}
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
    return _arviz.from_arrays(
        posterior,
        posterior_predictive=grouped_np(pp),
        log_likelihood=grouped_np(ll),
        observed_data={k: _numpy(ref[k]["infer"]["obs"]) for k in observed},
        sample_stats=sample_stats,
        dims=dims,
    )
