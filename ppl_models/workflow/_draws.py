r"""How the workflow functions draw: latent draws from a guide or the prior, and the model
run once per draw with the latent sites fixed and the observed sites free, giving the
posterior (or prior) predictive draws and the pointwise log-likelihoods.

Why not ``pyro.infer.Predictive``. It returns the predictive values but not the pointwise
log-likelihood :math:`\log p(x_n \mid \theta_s)` of the observed sites, which LOO and
WAIC need (ArviZ's own ``from_pyro`` ran a second, vectorised trace for it). With
``parallel=True`` it trusts that the model broadcasts over the plate of draws: a model
that reduces over a parameter's batch dimensions mixes draws silently, and its numbers are
wrong with no error (ArviZ 1.x has no Pyro converter to catch it). :func:`predict` runs the
draws under an outer plate in chunks of bounded memory (:data:`CHUNK_FLOATS`), checks the
first and the last draw's log-likelihood against single runs, and falls back to one run
per draw where they differ; with ``parallel=None`` a model that does not broadcast costs
time, never a wrong number. Parameters are module-local throughout (:func:`locally`).
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
from pyro.poutine.util import prune_subsample_sites

from ..inference import to_tensor
from ..inference.plates import local_params

# Floats per vectorised chunk of draws (values and log-likelihoods of the observed sites):
# 2**22 float64 numbers are 32 MiB, small enough for any machine, large enough that the
# Python overhead per chunk does not matter.
CHUNK_FLOATS = 2**22
DRAW_PLATE = "_ppl_models_draws"


class NotVectorisable(Exception):
    """The model does not broadcast over an outer plate of draws (fall back to a loop)."""


def locally(fn: Callable[..., Any]) -> Callable[..., Any]:
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


def model_fn(module: Any) -> Callable[..., Any]:
    fn = getattr(module, "model", module)
    if not callable(fn):
        raise TypeError(
            f"module must be a PyroModule with a model method or a callable model; got "
            f"{type(module).__name__}"
        )
    return fn


def prepare_data(module: Any, data: tuple[Any, ...]) -> tuple[Any, ...]:
    data = tuple(to_tensor(x, i) for i, x in enumerate(data))
    validate = getattr(module, "validate_data", None)
    if validate is not None:
        data = tuple(validate(*data))
    return data


def is_observed(site: dict[str, Any]) -> bool:
    infer = site.get("infer") or {}
    return (
        (site["is_observed"] or infer.get("was_observed", False))
        and not infer.get("_deterministic", False)
        and not isinstance(site["fn"], dist.Unit)  # pyro.factor
    )


def sample_sites(trace: Any) -> dict[str, dict[str, Any]]:
    trace = prune_subsample_sites(trace)
    return {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not (site.get("infer") or {}).get("is_auxiliary")
    }


def max_plate_nesting(sites: Mapping[str, dict[str, Any]]) -> int:
    dims = [
        -f.dim
        for site in sites.values()
        for f in site["cond_indep_stack"]
        if f.vectorized and f.name != DRAW_PLATE
    ]
    return max(dims, default=0)


def site_dims(name: str, site: dict[str, Any], ndim: int) -> list[str]:
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
        raise NotVectorisable(f"{what}: got shape {tuple(t.shape)}, expected ({n}, {shape})")
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


def guide_draws(
    guide: Callable[..., Any],
    model_sites: Mapping[str, dict[str, Any]],
    data: tuple[Any, ...],
    kwargs: dict[str, Any],
    n: int,
    parallel: bool | None,
) -> dict[str, torch.Tensor]:
    """``n`` independent draws of the model's latent sites from ``guide``, ``(n, *shape)``."""
    with torch.no_grad(), poutine.block():
        ref = sample_sites(poutine.trace(guide).get_trace(*data, **kwargs))
    latent = [
        k
        for k, s in ref.items()
        if not is_observed(s) and k in model_sites and not is_observed(model_sites[k])
    ]
    if not latent:
        raise ValueError(
            "guide has no latent sample sites of the model; pass the fitted guide (e.g. an "
            "AutoNormal) as guide="
        )
    shapes = {k: ref[k]["value"].shape for k in latent}
    nesting = max_plate_nesting(model_sites)
    if parallel is not False:
        try:
            with torch.no_grad(), poutine.block():
                with pyro.plate(DRAW_PLATE, n, dim=-nesting - 1):
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


def predict(
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
        nesting = max_plate_nesting(ref)
        per_draw = sum(math.prod(val_shape[k]) + math.prod(lp_shape[k]) for k in observed)
        chunk = max(1, min(n, CHUNK_FLOATS // max(per_draw, 1)))
        try:
            with torch.no_grad(), poutine.block():
                for start in range(0, n, chunk):
                    idx = slice(start, min(start + chunk, n))
                    m = idx.stop - idx.start
                    cond = _reshape_draws(draws, idx, ref, nesting)
                    with pyro.plate(DRAW_PLATE, m, dim=-nesting - 1):
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
                            raise NotVectorisable(
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


def require_data(data: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if not data and not kwargs:
        raise ValueError("data is required: pass the model's arguments after source")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def draws_to_groups(
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
        ref = sample_sites(
            poutine.trace(poutine.condition(poutine.uncondition(model), first)).get_trace(
                *data, **model_kwargs
            )
        )
    observed_all = [k for k, s in ref.items() if is_observed(s) and k not in draws]
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
            "module's Pyro context: decorate model with ppl_models.inference.local_pyro_method."
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

    pp, ll, det = predict(model, draws, data, model_kwargs, observed, deterministic, ref, parallel)

    def grouped_np(d: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {
            k: to_numpy(v).reshape((chains, draws_per_chain, *v.shape[1:])) for k, v in d.items()
        }

    posterior = grouped_np(draws)
    posterior.update(grouped_np(det))
    dims: dict[str, list[str]] = {}
    for k in list(draws) + deterministic:
        dims[k] = site_dims(k, ref[k], ref[k]["value"].ndim)
    for k in observed:
        dims[k] = site_dims(k, ref[k], ref[k]["value"].ndim)
    observed_data = {k: to_numpy(ref[k]["infer"]["obs"]) for k in observed}
    return posterior, grouped_np(pp), grouped_np(ll), observed_data, dims
