r"""The No-U-Turn Sampler on a topic module or any Pyro model: :func:`run_nuts`.

Two samplers run the same posterior:

* ``"nutpie"`` (the default where the package is installed): the Rust NUTS of the PyMC
  project (warm-up adaptation of step size and a diagonal mass matrix from draws and
  gradients), driven by a potential computed in torch (:mod:`.potentials`): a topic module's
  closed form, or the model's own log joint, compiled for long runs. Measured in
  ``benchmarks/bench_nuts.py``.
* ``"pyro"``: Pyro's ``MCMC(NUTS(...))``, as before.

The result of the first is a :class:`NutsRun`, which offers what scripts use of Pyro's
``MCMC`` (``get_samples``, ``diagnostics``, ``summary``) and converts to ArviZ with
:func:`ppl_models.workflow.to_inference_data` like an ``MCMC`` run.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_uniform
from pyro.infer.mcmc.util import initialize_model, print_summary
from pyro.ops.stats import effective_sample_size, split_gelman_rubin

from .._checks import check_choice, check_int
from .batches import to_tensor
from .losses import hook
from .plates import feasible_trace, local_params
from .potentials import ClosedFormPotential, FlatModel, PotentialMismatch, potentials_agree
from .setup import resolve_model

__all__ = ["NutsRun", "run_nuts"]

# A run whose gradient evaluations are expected to exceed this compiles the generic
# potential (a few seconds, repaid by 4-5x cheaper gradients); shorter runs do not.
_COMPILE_ABOVE = 2000 * 8
# The compiled potential is compared with the uncompiled one every this many gradients.
_RECHECK_EVERY = 1000


def _check_probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in (0, 1); got {type(value).__name__}")
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(
            f"{name} must lie strictly between 0 and 1 (the acceptance rate the step size "
            f"is adapted to; 0.8 by default, 0.9-0.99 for difficult posteriors); got {value}"
        )
    return float(value)


def _nutpie_available() -> bool:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True


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
    sampler: str = "auto",
    compile: bool | None = None,
    mass_matrix: str = "low_rank",
    **model_kwargs: Any,
) -> NutsRun | MCMC:
    r"""Sample the posterior of a Pyro model's latent sites with the No-U-Turn Sampler.

    Every parameter of the model must carry a prior (a ``PyroSample``, or a
    ``pyro.sample`` site): NUTS samples ``p(\theta | x) \propto p(x | \theta) p(\theta)``
    and has nothing to do with a ``PyroParam``, which stays at its value.

    Parameters
    ----------
    module : PyroModule or callable
        A topic module (``module.model(*data)`` is sampled), a ``PyroModule`` whose
        ``forward`` is the model, or a plain Pyro model function. A topic module's
        ``validate_data`` checks the data, and its ``nuts_potential`` replaces the traced
        potential where it equals Pyro's potential and gradient at every chain's initial
        point and around it.
    *data : torch.Tensor or numpy.ndarray or None
        The model's positional arguments.
    num_samples, warmup_steps, num_chains : int
        Draws kept per chain, adaptation steps per chain, and chains (at least 2 for
        R-hat).
    seed : int, optional
        Seeds the sampler and the chains' starting points: the same seed gives the same
        draws, bit for bit.
    target_accept_prob : float
        Step-size adaptation target, in (0, 1).
    max_tree_depth : int
        NUTS's maximum tree depth, at least 1 (at most :math:`2^d` leapfrog steps a draw).
    progress : bool, optional
        Show a progress bar; by default only when standard error is a terminal.
    init_strategy : callable, optional
        A Pyro per-site initialisation (``init_to_value(values=...)``, ``init_to_median``,
        or a module's own, e.g. ``BayesianPCA.init_strategy``); Pyro's
        ``init_to_uniform`` by default. It is called after ``validate_data``.
    sampler : {"auto", "nutpie", "pyro"}
        ``"nutpie"`` (the default where installed) or Pyro's own NUTS.
    compile : bool, optional
        Compile the model's generic potential (nutpie sampler, no closed-form potential):
        ``None`` does it for runs long enough to repay the compilation.
    mass_matrix : {"low_rank", "diag"}
        nutpie's warm-up adaptation of the mass matrix: a diagonal plus a low-rank
        correction fitted to the draws and gradients (``"low_rank"``), or a diagonal only.
        Measured (``benchmarks/bench_nuts.py``): the low-rank one follows correlated
        posteriors with far shorter trajectories (effective samples per second x3 on
        logistic regression, x13 on the diabetes regression, and on Bayesian PCA's funnel
        R-hat 1.007 where the diagonal left 1.03). Pyro's sampler keeps its own diagonal
        adaptation.
    **model_kwargs
        Keyword arguments of the model.

    Returns
    -------
    NutsRun or pyro.infer.MCMC
        The finished run; ``get_samples(group_by_chain=True)`` gives ``(chain, draw, ...)``
        arrays and :func:`ppl_models.workflow.to_inference_data` turns it into ArviZ data.

    Raises
    ------
    ValueError, TypeError
        Before sampling: bad settings, or a model without a latent site.
    """
    model, _, owner = resolve_model(module, None)
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    # nutpie needs warm-up draws (with none it panics, in a way no except clause catches
    # and that breaks every later run in the process); Pyro's sampler takes 0.
    warmup_steps = check_int(warmup_steps, "warmup_steps", minimum=1 if sampler != "pyro" else 0)
    num_chains = check_int(num_chains, "num_chains", minimum=1)
    max_tree_depth = check_int(max_tree_depth, "max_tree_depth", minimum=1)
    target_accept_prob = _check_probability(target_accept_prob, "target_accept_prob")
    sampler = check_choice(sampler, "sampler", ["auto", "nutpie", "pyro"])
    mass_matrix = check_choice(mass_matrix, "mass_matrix", ["low_rank", "diag"])
    if compile is not None and not isinstance(compile, bool):
        raise TypeError(f"compile must be True, False or None; got {type(compile).__name__}")
    if init_strategy is not None and not callable(init_strategy):
        raise TypeError(
            f"init_strategy must be a Pyro init strategy (a callable); got "
            f"{type(init_strategy).__name__}"
        )
    if sampler == "auto":
        sampler = "nutpie" if _nutpie_available() else "pyro"
    elif sampler == "nutpie" and not _nutpie_available():
        raise ValueError("sampler='nutpie' needs the nutpie package: pip install nutpie")
    data = tuple(to_tensor(x, i) for i, x in enumerate(data))
    validate = hook(owner, "validate_data")
    if validate is not None:
        data = tuple(validate(*data))
    like = next((x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()), None)
    if like is not None and isinstance(module, torch.nn.Module):
        module.to(device=like.device, dtype=like.dtype)
    if seed is not None:
        seed = check_int(seed, "seed", minimum=0)
        pyro.set_rng_seed(seed)
    with local_params(module):
        _check_latent_sites(model, data, model_kwargs)
    make_potential = hook(owner, "nuts_potential")
    own_model = getattr(owner, "model", None) == model
    potential = (
        make_potential(*data)
        if make_potential is not None and own_model and not model_kwargs
        else None
    )
    show = (os.isatty(2) if hasattr(os, "isatty") else False) if progress is None else progress
    settings = dict(
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        target_accept_prob=target_accept_prob,
        max_tree_depth=max_tree_depth,
    )
    start = init_to_uniform if init_strategy is None else init_strategy
    if sampler == "pyro":
        mcmc = _run_pyro(model, module, data, model_kwargs, potential, start, show, **settings)
    else:
        with local_params(module):
            flat = FlatModel(model, data, model_kwargs, start)
            mcmc = _run_nutpie(
                flat, potential, show, seed, compile, low_rank=mass_matrix == "low_rank", **settings
            )
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


def _autograd(potential: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> Callable:
    """``z -> (U, dU/dz)`` for a potential differentiable by autograd."""

    def value_and_grad(z: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        z = {k: v.detach().requires_grad_() for k, v in z.items()}
        value = potential(z)
        grads = torch.autograd.grad(value, list(z.values()))
        return value.detach(), dict(zip(z, grads, strict=True))

    return value_and_grad


def _check_points(flat: FlatModel, num_chains: int) -> list[dict[str, torch.Tensor]]:
    """Each chain's starting point and two points around it, from a generator of their
    own (the sampler's random streams are left alone)."""
    gen = torch.Generator().manual_seed(0)
    points = []
    for chain in range(max(num_chains, 1)):
        base = flat.initial_point(chain)
        for step in (0.0, 0.05, 0.2):
            noise = torch.randn(base.shape, generator=gen, dtype=base.dtype).to(base.device)
            points.append(flat.unflatten(base + step * noise))
    return points


def _run_nutpie(
    flat: FlatModel,
    potential: Callable | None,
    show: bool,
    seed: int | None,
    compile: bool | None,
    *,
    low_rank: bool,
    num_samples: int,
    warmup_steps: int,
    num_chains: int,
    target_accept_prob: float,
    max_tree_depth: int,
) -> NutsRun:
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc

    start_time = time.perf_counter()
    points = _check_points(flat, num_chains)
    kind, dict_fn = "traced", None
    if potential is not None:
        fast = (
            potential.value_and_grad
            if isinstance(potential, ClosedFormPotential)
            else (_autograd(potential))
        )
        if potentials_agree(fast, flat.pyro_potential, points):
            kind, dict_fn = "module", fast
    if dict_fn is None and not potentials_agree(
        _autograd(flat.potential), flat.pyro_potential, points
    ):
        raise PotentialMismatch(
            "run_nuts: the model's log joint, summed site by site, differs from Pyro's "
            "potential; sample with sampler='pyro'"
        )
    flat_fn = None
    if dict_fn is None:
        expected = (num_samples + warmup_steps) * num_chains * 8
        if compile or (compile is None and expected > _COMPILE_ABOVE):
            x0 = flat.flatten(points[0])
            try:
                flat_fn = flat.compiled(x0)
                ok = all(
                    _flat_close(flat_fn(flat.flatten(p)), flat.value_and_grad(flat.flatten(p)))
                    for p in points
                )
            except Exception as err:  # any failure to record or compile
                if compile:
                    raise ValueError(
                        f"compile=True: the model's potential could not be compiled ({err}); "
                        "use compile=False"
                    ) from err
                ok = False
            if ok:
                kind = "compiled"
            else:
                flat_fn = None
        if flat_fn is None:
            flat_fn = flat.value_and_grad
    else:

        def flat_fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            value, grads = dict_fn(flat.unflatten(x))
            return value, flat.flatten(grads)

    calls = [0]
    dtype, device = flat.dtype, flat.device
    numpy_logp = _numpy_logp(potential, flat, points) if kind == "module" else None

    def logp(x: np.ndarray) -> tuple[float, np.ndarray]:
        xt = torch.from_numpy(x).to(dtype=dtype, device=device)
        with torch.no_grad() if kind == "compiled" else _null():
            value, grad = flat_fn(xt)
        calls[0] += 1
        if kind == "compiled" and calls[0] % _RECHECK_EVERY == 0:
            if not _flat_close((value, grad), flat.value_and_grad(xt)):
                raise PotentialMismatch(
                    "run_nuts: the compiled potential no longer equals the model's (its "
                    "control flow depends on the values of its latent sites); sample with "
                    "compile=False"
                )
        v = float(value)
        if not math.isfinite(v):
            return -math.inf, np.zeros_like(x)
        return -v, (-grad).to(torch.float64).cpu().numpy()

    def make_logp() -> Callable:
        return logp if numpy_logp is None else numpy_logp

    def make_expand(seed1: int, seed2: int, chain: int) -> Callable:
        def expand(x: np.ndarray) -> dict[str, np.ndarray]:
            with torch.no_grad():
                values = flat.constrained(torch.from_numpy(x).to(dtype=dtype, device=device))
            return {k: v.to(torch.float64).cpu().numpy() for k, v in values.items()}

        return expand

    def initial_point(chain_seed: int) -> np.ndarray:
        return flat.initial_point(chain_seed % 2**32).to(torch.float64).cpu().numpy()

    compiled = from_pyfunc(
        flat.ndim,
        make_logp,
        make_expand,
        [np.dtype("float64")] * len(flat.names),
        flat.shapes,
        flat.names,
        make_initial_point_fn=initial_point,
    )
    trace = nutpie.sample(
        compiled,
        draws=num_samples,
        tune=warmup_steps,
        chains=num_chains,
        cores=1,
        seed=0 if seed is None else seed,
        progress_bar=show,
        save_warmup=False,
        target_accept=target_accept_prob,
        maxdepth=max_tree_depth,
        low_rank_modified_mass_matrix=low_rank,
    )
    samples = {
        k: torch.as_tensor(np.asarray(trace.posterior[k].values)).to(dtype=dtype, device=device)
        for k in flat.names
    }
    stats = trace.sample_stats
    sample_stats = {
        "diverging": np.asarray(stats["diverging"].values, dtype=bool),
        "tree_depth": np.asarray(stats["depth"].values),
        "n_steps": np.asarray(stats["n_steps"].values),
        "step_size": np.asarray(stats["step_size"].values),
        "energy": np.asarray(stats["energy"].values),
        "lp": np.asarray(stats["logp"].values),
        "acceptance_rate": np.asarray(stats["mean_tree_accept"].values),
    }
    return NutsRun(
        samples,
        sample_stats,
        flat.args,
        flat.kwargs,
        potential=kind,
        gradients=calls[0],
        seconds=time.perf_counter() - start_time,
    )


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _numpy_logp(potential: object, flat: FlatModel, points: list) -> Callable | None:
    """nutpie's ``logp`` through the potential's numpy twin (``None`` where it has none,
    the sites are not float64 on the CPU, or the twin disagrees with Pyro's potential at
    the chains' starting points)."""
    fn = getattr(potential, "numpy_value_and_grad", None)
    if fn is None or flat.dtype != torch.float64 or flat.device.type != "cpu":
        return None

    def as_torch(z: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        value, grads = fn({k: v.detach().numpy() for k, v in z.items()})
        grads = grads or {k: np.zeros(v.shape) for k, v in z.items()}
        return torch.tensor(value, dtype=torch.float64), {
            k: torch.as_tensor(np.asarray(g, dtype=np.float64)).reshape(z[k].shape)
            for k, g in grads.items()
        }

    if not potentials_agree(as_torch, flat.pyro_potential, points):
        return None
    bounds = np.cumsum([0, *flat.sizes])
    layout = list(zip(flat.names, bounds[:-1], bounds[1:], flat.shapes, strict=True))

    def logp(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grads = fn({k: x[a:b].reshape(shape) for k, a, b, shape in layout})
        if not math.isfinite(value):
            return -math.inf, np.zeros_like(x)
        return -value, -np.concatenate([np.ravel(grads[k]) for k in flat.names])

    return logp


def _flat_close(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> bool:
    """The compiled and the uncompiled potential agree: the same operations, reordered by
    the compiler (summation rounding), so the square root of epsilon, relative, is far
    above their difference and far below any wrong term."""
    rtol = math.sqrt(torch.finfo(b[0].dtype).eps)
    scale = float(b[1].abs().max()) if b[1].numel() else 1.0
    return bool(torch.isclose(a[0], b[0], rtol=rtol, atol=0)) and float(
        (a[1] - b[1]).abs().max()
    ) <= rtol * max(scale, 1e-300)


def _run_pyro(
    model: Callable[..., Any],
    module: object,
    data: tuple[Any, ...],
    model_kwargs: dict[str, Any],
    potential: Callable | None,
    init_strategy: Callable,
    show: bool,
    *,
    num_samples: int,
    warmup_steps: int,
    num_chains: int,
    target_accept_prob: float,
    max_tree_depth: int,
) -> MCMC:
    options: dict[str, Any] = {}
    if potential is not None:
        with local_params(module):
            init, pyro_potential, transforms, _ = initialize_model(
                model, model_args=data, init_strategy=init_strategy, num_chains=num_chains
            )
            points = [
                {k: v[c] if num_chains > 1 else v for k, v in init.items()}
                for c in range(num_chains)
            ]
            if potentials_agree(_autograd(potential), pyro_potential, points):
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
            init_strategy=init_strategy,
        )
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
    return mcmc


class NutsRun:
    """A finished NUTS run of :func:`run_nuts`'s fast sampler.

    It offers what scripts use of ``pyro.infer.MCMC``: :meth:`get_samples`,
    :meth:`diagnostics`, :meth:`summary`; and :func:`ppl_models.workflow.to_inference_data`
    turns it into ArviZ data with the groups posterior, sample_stats, log_likelihood,
    posterior_predictive and observed_data.

    Attributes
    ----------
    sample_stats : dict of numpy.ndarray
        Per draw, shape ``(chain, draw)``: ``diverging``, ``tree_depth``, ``n_steps``
        (leapfrog steps), ``step_size``, ``energy``, ``lp`` (log density) and
        ``acceptance_rate``.
    potential : str
        How the potential was computed: ``"module"`` (the topic module's closed form),
        ``"compiled"`` or ``"traced"`` (the model's log joint, with or without
        compilation).
    gradients : int
        Potential-and-gradient evaluations.
    seconds : float
        Wall-clock time of the run.
    num_chains, num_samples : int
    """

    def __init__(
        self,
        samples: dict[str, torch.Tensor],
        sample_stats: dict[str, np.ndarray],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        potential: str,
        gradients: int,
        seconds: float,
    ):
        self._samples = samples
        self.sample_stats = sample_stats
        self._args, self._kwargs = args, kwargs
        self.potential, self.gradients, self.seconds = potential, gradients, seconds
        first = next(iter(samples.values()))
        self.num_chains, self.num_samples = int(first.shape[0]), int(first.shape[1])
        self.ppl_module: object = None

    def get_samples(
        self, num_samples: int | None = None, group_by_chain: bool = False
    ) -> dict[str, torch.Tensor]:
        """The draws of every latent site: ``(chain, draw, ...)`` with ``group_by_chain``,
        else ``(chain * draw, ...)``; ``num_samples`` keeps that many (evenly spaced)."""
        out = {}
        for k, v in self._samples.items():
            if not group_by_chain:
                v = v.reshape(-1, *v.shape[2:])
                if num_samples is not None:
                    idx = torch.linspace(
                        0, v.shape[0] - 1, check_int(num_samples, "num_samples", minimum=1)
                    ).long()
                    v = v[idx]
            out[k] = v
        return out

    def diagnostics(self) -> dict[str, Any]:
        """Per site, the effective sample size and split R-hat (Pyro's estimators), and per
        chain the divergent draws, as ``MCMC.diagnostics()`` gives them."""
        out: dict[str, Any] = {}
        for k, v in self._samples.items():
            out[k] = {
                "n_eff": effective_sample_size(v.double(), chain_dim=0, sample_dim=1),
                "r_hat": split_gelman_rubin(v.double(), chain_dim=0, sample_dim=1),
            }
        div = self.sample_stats["diverging"]
        out["divergences"] = {
            f"chain {c}": np.flatnonzero(div[c]).tolist() for c in range(len(div))
        }
        out["acceptance rate"] = {
            f"chain {c}": float(a.mean())
            for c, a in enumerate(self.sample_stats["acceptance_rate"])
        }
        return out

    def summary(self, prob: float = 0.9) -> None:
        """Print Pyro's summary table (mean, sd, interval, ESS, R-hat) and the number of
        divergences."""
        print_summary(self._samples, prob=prob, group_by_chain=True)
        print(f"Number of divergences: {int(self.sample_stats['diverging'].sum())}")
