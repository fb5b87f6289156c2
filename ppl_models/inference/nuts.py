r"""The No-U-Turn Sampler on a topic module or any Pyro model: :func:`run_nuts`."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import pyro
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_uniform
from pyro.infer.mcmc.util import initialize_model
from pyro.ops.integrator import potential_grad

from .._checks import check_int
from .batches import to_tensor
from .loop import resolve_model
from .losses import hook
from .plates import feasible_trace, local_params

__all__ = ["run_nuts"]


def _check_probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in (0, 1); got {type(value).__name__}")
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(
            f"{name} must lie strictly between 0 and 1 (the acceptance rate the step size "
            f"is adapted to; 0.8 by default, 0.9-0.99 for difficult posteriors); got {value}"
        )
    return float(value)


def run_nuts(
    module: object,
    *data: Any,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int | None = 0,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool | None = None,
    init_strategy: Callable[[dict], torch.Tensor] | None = None,
    **model_kwargs: Any,
) -> MCMC:
    r"""Sample the posterior of a Pyro model's latent sites with the No-U-Turn Sampler.

    Every parameter of the model must carry a prior (a ``PyroSample``, or a
    ``pyro.sample`` site): NUTS samples ``p(\theta | x) \propto p(x | \theta) p(\theta)``
    and has nothing to do with a ``PyroParam``, which stays at its value. Chains run one
    after another where the machine has fewer spare cores than chains (Pyro's rule); each
    starts from its own random initial point.

    Parameters
    ----------
    module : PyroModule or callable
        A topic module (``module.model(*data)`` is sampled), a ``PyroModule`` whose
        ``forward`` is the model, or a plain Pyro model function. A topic module's
        ``validate_data`` checks the data, and its ``nuts_potential`` replaces Pyro's
        traced potential where it equals Pyro's potential and gradient at every chain's
        initial point and around it.
    *data : torch.Tensor or numpy.ndarray or None
        The model's positional arguments.
    num_samples, warmup_steps, num_chains : int
        Draws kept per chain, adaptation steps per chain, and chains (at least 2 for
        R-hat).
    seed : int, optional
        Seeds every random generator (``pyro.set_rng_seed``).
    target_accept_prob : float
        Step-size adaptation target, in (0, 1).
    max_tree_depth : int
        NUTS's maximum tree depth, at least 1 (at most :math:`2^d` leapfrog steps a draw).
    progress : bool, optional
        Show Pyro's progress bar; by default only when standard error is a terminal.
    init_strategy : callable, optional
        A Pyro per-site initialisation (``init_to_value(values=...)``, ``init_to_median``,
        or a module's own, e.g. ``BayesianPCA.init_strategy``); Pyro's
        ``init_to_uniform`` by default. It is called after ``validate_data``.
    **model_kwargs
        Keyword arguments of the model.

    Returns
    -------
    pyro.infer.MCMC
        The finished run; ``get_samples(group_by_chain=True)`` gives ``(chain, draw, ...)``
        arrays and :func:`ppl_models.workflow.to_inference_data` turns it into ArviZ data.

    Raises
    ------
    ValueError, TypeError
        Before sampling: bad settings, or a model without a latent site.
    """
    model, _, owner = resolve_model(module, None)
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    warmup_steps = check_int(warmup_steps, "warmup_steps", minimum=0)
    num_chains = check_int(num_chains, "num_chains", minimum=1)
    max_tree_depth = check_int(max_tree_depth, "max_tree_depth", minimum=1)
    target_accept_prob = _check_probability(target_accept_prob, "target_accept_prob")
    if init_strategy is not None and not callable(init_strategy):
        raise TypeError(
            f"init_strategy must be a Pyro init strategy (a callable); got "
            f"{type(init_strategy).__name__}"
        )
    data = tuple(to_tensor(x, i) for i, x in enumerate(data))
    validate = hook(owner, "validate_data")
    if validate is not None:
        data = tuple(validate(*data))
    like = next((x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()), None)
    if like is not None and isinstance(module, torch.nn.Module):
        module.to(device=like.device, dtype=like.dtype)
    if seed is not None:
        pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
    with local_params(module):
        _check_latent_sites(model, data, model_kwargs)
    options: dict[str, Any] = {}
    make_potential = hook(owner, "nuts_potential")
    own_model = getattr(owner, "model", None) == model
    potential = (
        make_potential(*data)
        if make_potential is not None and own_model and not model_kwargs
        else None
    )
    if potential is not None:
        with local_params(module):
            init, pyro_potential, transforms, _ = initialize_model(
                model,
                model_args=data,
                init_strategy=init_to_uniform if init_strategy is None else init_strategy,
                num_chains=num_chains,
            )
            agrees = _potentials_agree(potential, pyro_potential, init, num_chains)
        if agrees:
            options = {"initial_params": init, "transforms": transforms}
    if options:
        kernel = NUTS(
            potential_fn=potential,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
        )
    else:
        kernel = NUTS(
            model,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            jit_compile=False,
            **({} if init_strategy is None else {"init_strategy": init_strategy}),
        )
    show = (os.isatty(2) if hasattr(os, "isatty") else False) if progress is None else progress
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Chains will be drawn sequentially.*")
        mcmc = MCMC(
            kernel,
            num_samples=num_samples,
            warmup_steps=warmup_steps,
            num_chains=num_chains,
            disable_progbar=not show,
            **options,
        )
        with local_params(module):
            mcmc.run(*data, **model_kwargs)
    # The module whose posterior this is, for to_inference_data (a kernel built on a
    # potential function does not know the model).
    mcmc.ppl_module = module
    return mcmc


def _check_latent_sites(
    model: Callable[..., Any], data: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    rng = pyro.util.get_rng_state()
    try:
        with torch.no_grad():
            trace = feasible_trace(model, data, kwargs)
    finally:
        pyro.util.set_rng_state(rng)
    latent = [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"]
    ]
    if not latent:
        raise ValueError(
            "module: the model has no latent site for NUTS to sample. Give the parameters "
            "priors (replace a PyroParam by a PyroSample, e.g. "
            "m.loc = PyroSample(dist.Normal(0.0, 10.0))), or fit point estimates with fit_svi"
        )


def _potentials_agree(
    potential: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    reference: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    init: dict[str, torch.Tensor],
    num_chains: int,
) -> bool:
    """Whether a module's potential energy and its gradient equal Pyro's (``reference``,
    from tracing the model) at each chain's initial point and at two points around it:
    the licence for :func:`run_nuts` to use it. The perturbations come from a generator
    of their own, so that the check leaves the sampler's random streams alone.

    Tolerance: the two compute the same quantities by different routes (sufficient
    statistics and a Cholesky factor against per-row densities), which differ by rounding
    growing with N (1e-10 relative measured on Bishop's data); the square root of the
    dtype's epsilon (1.5e-8 in float64), relative to the potential and to the largest
    gradient entry, is far above that. It catches a wrong likelihood or a missing term;
    an error in a term that is tiny beside the others (a vague prior's) can pass, which is
    why a module's tests check its potential against Pyro's to 1e-10.
    """
    gen = torch.Generator().manual_seed(0)
    for chain in range(num_chains):
        base = {k: v[chain] if num_chains > 1 else v for k, v in init.items()}
        for step in (0.0, 0.05, 0.2):
            point = {
                k: v + step * torch.randn(v.shape, generator=gen, dtype=v.dtype).to(v.device)
                for k, v in base.items()
            }
            try:
                g_ref, v_ref = potential_grad(
                    reference, {k: v.detach().requires_grad_() for k, v in point.items()}
                )
                g_new, v_new = potential_grad(
                    potential, {k: v.detach().requires_grad_() for k, v in point.items()}
                )
            except (RuntimeError, ValueError):
                return False
            v_ref, v_new = torch.as_tensor(v_ref), torch.as_tensor(v_new)
            if not bool(torch.isfinite(v_ref)):
                return False
            rtol = math.sqrt(torch.finfo(v_ref.dtype).eps)
            if not bool(torch.isclose(v_new, v_ref, rtol=rtol, atol=0)):
                return False
            scale = max(float(g.abs().max()) for g in g_ref.values())
            if set(g_new) != set(g_ref) or any(
                float((g_new[k] - g_ref[k]).abs().max()) > rtol * scale for k in g_ref
            ):
                return False
    return True
