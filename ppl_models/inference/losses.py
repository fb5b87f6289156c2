r"""The loss of a fit, the hooks a topic module may offer, and the licence to use them.

The loss is the negative ELBO of a model and a guide, as Pyro's ELBO classes compute it.
Where the same number can be had more cheaply, :func:`~ppl_models.inference.fit_svi`
takes a **loss path** other than Pyro's ELBO class, but only under a licence:

========================  =================================================================
path                      the loss
========================  =================================================================
``"pyro"``                ``elbo.differentiable_loss(model, guide, *data)``, every step
``"likelihood"``          no latent site anywhere: :math:`-\ln p(x)` from one model trace
``"traces"``              every guide site reparametrised, one particle of ``Trace_ELBO``
                          or ``TraceMeanField_ELBO``: the sum site by site over one guide
                          trace and the replayed model, without the ELBO class's machinery
``"module"``              the module's own torch loss, ``module.reparam_loss(*data, ...)``
========================  =================================================================

The licence: at the first evaluation the candidate path gives Pyro's number for the same
random draws (to summation rounding), and it goes on doing so at re-checks during the fit
(:class:`LossPath`); a disagreement stops the fit with :class:`ShortcutError`. The hooks a
module may provide are declared in :class:`TopicModule`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import pyro
import torch
from pyro import poutine
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from pyro.infer.elbo import ELBO
from pyro.poutine.util import prune_subsample_sites

from .._checks import check_choice

__all__ = [
    "HOOKS",
    "LossPath",
    "ShortcutError",
    "TopicModule",
    "empty_guide",
    "hook",
    "make_elbo",
]


@runtime_checkable
class TopicModule(Protocol):
    """What the library's loop knows how to use on a model object; every hook is optional.

    A topic module is ordinary Pyro: ``model`` and ``guide`` are its Pyro pair, and Pyro's
    own ``SVI``, ``Predictive``, ``MCMC`` and autoguides work on them. The hooks below only
    make :func:`~ppl_models.inference.fit_svi` and :func:`~ppl_models.inference.run_nuts`
    faster or friendlier, each under a contract the loop checks:

    ``validate_data(*data) -> tuple``
        Check and convert the data at the entry of a fit (shapes, finiteness, binary
        targets...), raising ``ValueError``/``TypeError`` naming the argument; returns the
        model's positional arguments.
    ``reparam_loss(*data, analytic_kl: bool) -> Tensor``
        The one-particle negative ELBO of ``model`` and ``guide`` in plain torch, with the
        same random draws Pyro's ``Trace_ELBO`` (or, with ``analytic_kl``,
        ``TraceMeanField_ELBO``) makes, scaled by
        :func:`~ppl_models.inference.plate_scale`. Used only while it equals Pyro's
        number: licensed at the first evaluation and re-checked during the fit
        (:class:`LossPath`).
    ``nuts_potential(*data) -> callable or None``
        The potential energy :math:`-\\ln p(x, \\theta)` (minus the log-Jacobians) in
        Pyro's unconstrained coordinates, as a function of a dict of site values. Used by
        ``run_nuts`` only where it equals Pyro's potential and gradient at the chains'
        initial points.
    ``params() -> NamedTuple``
        The fitted parameters, detached, in the module's parameters container.
    """

    def model(self, *args: Any, **kwargs: Any) -> Any: ...

    def guide(self, *args: Any, **kwargs: Any) -> Any: ...


#: The optional hooks of :class:`TopicModule`, by name.
HOOKS = ("validate_data", "reparam_loss", "nuts_potential", "params")


def hook(owner: object, name: str) -> Callable[..., Any] | None:
    """``owner``'s hook ``name`` (one of :data:`HOOKS`) if it has a callable one."""
    if name not in HOOKS:
        raise ValueError(f"name must be one of the hooks {HOOKS}; got {name!r}")
    fn = getattr(owner, name, None) if owner is not None else None
    return fn if callable(fn) else None


def make_elbo(loss: str | ELBO, num_particles: int) -> ELBO:
    """``"trace"`` (``Trace_ELBO``), ``"meanfield"`` (``TraceMeanField_ELBO``) with
    ``num_particles`` vectorised particles, or any ELBO instance as given."""
    if isinstance(loss, ELBO):
        return loss
    check_choice(loss, "loss", ["trace", "meanfield"])
    cls = Trace_ELBO if loss == "trace" else TraceMeanField_ELBO
    return cls(num_particles=num_particles, vectorize_particles=num_particles > 1)


def empty_guide(*args: Any, **kwargs: Any) -> None:
    """The guide of a model without latent variables (maximum likelihood)."""


class _NoShortcut(Exception):
    pass


class ShortcutError(RuntimeError):
    """A loss path other than Pyro's ELBO gave another number than Pyro's ELBO with the
    same draws during a fit. The fit stops; ``loss_path="pyro"`` trains through Pyro."""


def has_latent_sites(
    model: Callable[..., Any], guide: Callable[..., Any], args: tuple[Any, ...], kwargs: dict
) -> bool:
    """Whether the guide or the model samples a latent variable (plates' index sites
    aside); without any, the ELBO is the log-likelihood (maximum likelihood)."""
    for fn in (guide, model):
        trace = prune_subsample_sites(poutine.trace(fn).get_trace(*args, **kwargs))
        if any(
            site["type"] == "sample" and not site["is_observed"] for site in trace.nodes.values()
        ):
            return True
    return False


def likelihood_loss(
    model: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> torch.Tensor:
    """:math:`-\\ln p(x)` from one trace of a model without latent variables."""
    return -poutine.trace(model).get_trace(*args, **kwargs).log_prob_sum()


def trace_loss(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    analytic_kl: bool,
) -> torch.Tensor:
    """``Trace_ELBO`` (or, with ``analytic_kl``, ``TraceMeanField_ELBO``) with one particle
    for a guide whose every site is reparametrised: the same sum, site by site, without the
    machinery those classes need for the general case (score-function terms, log-density
    caches, a NaN check that synchronises with the device): on the VAE that machinery was
    a third to a half of Pyro's cost over a hand-written loss (``python -m
    benchmarks.bench_vae --profile``). Raises ``_NoShortcut`` where it does not apply."""
    guide_trace = prune_subsample_sites(poutine.trace(guide).get_trace(*args, **kwargs))
    model_trace = prune_subsample_sites(
        poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    )
    total: torch.Tensor | float = 0.0
    latent = 0
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        if site["is_observed"]:
            lp = site["fn"].log_prob(site["value"])
            total = total + scale_and_mask(lp, site["scale"], site["mask"]).sum()
            continue
        g = guide_trace.nodes.get(name)
        if g is None or g["type"] != "sample" or not g["fn"].has_rsample:
            raise _NoShortcut
        latent += 1
        if analytic_kl:
            try:
                kl = kl_divergence(g["fn"], site["fn"])
            except NotImplementedError:
                pass
            else:
                total = total - scale_and_mask(kl, g["scale"], g["mask"]).sum()
                continue
        lp = scale_and_mask(site["fn"].log_prob(site["value"]), site["scale"], site["mask"])
        lq = scale_and_mask(g["fn"].log_prob(g["value"]), g["scale"], g["mask"])
        total = total + lp.sum() - lq.sum()
    if latent != sum(1 for site in guide_trace.nodes.values() if site["type"] == "sample"):
        raise _NoShortcut  # guide sites the model does not have (auxiliary variables)
    if not isinstance(total, torch.Tensor):
        raise _NoShortcut
    return -total


def _agree(fast: object, reference: torch.Tensor) -> bool:
    """Equal to summation rounding: the same terms added in another order differ by a few
    ulps of the total per term; 1e-10 (float64) and 1e-5 (float32) relative are far above
    that and far below any missing or wrong term of a loss."""
    if not torch.is_tensor(fast) or (fast.shape, fast.dtype) != (reference.shape, reference.dtype):
        return False
    rtol = 1e-10 if reference.dtype == torch.float64 else 1e-5
    return bool(torch.allclose(fast, reference, rtol=rtol, atol=0, equal_nan=True))


class LossPath:
    """How a fit computes its loss, the licence for it, and its re-checks.

    Parameters
    ----------
    model, guide : callable
        The Pyro pair being fitted.
    owner : object or None
        The object whose hooks may be used (a topic module); its ``reparam_loss`` is a
        candidate only where ``model`` and ``guide`` are its own.
    elbo : pyro.infer.ELBO
    kwargs : dict
        The model's keyword arguments.
    allow_shortcuts : bool
        ``False`` keeps Pyro's ELBO class on every step (``loss_path="pyro"``).
    """

    def __init__(
        self,
        model: Callable[..., Any],
        guide: Callable[..., Any],
        owner: object,
        elbo: ELBO,
        kwargs: dict[str, Any],
        allow_shortcuts: bool = True,
    ):
        self.model, self.guide, self.elbo, self.kwargs = model, guide, elbo, kwargs
        self.own_loss = None
        if (
            owner is not None
            and getattr(owner, "model", None) == model
            and getattr(owner, "guide", None) == guide
        ):
            self.own_loss = hook(owner, "reparam_loss")
        self.allow_shortcuts = allow_shortcuts
        # Pyro's ELBOs for non-reparametrised guides (TraceGraph_ELBO, RenyiELBO, ...) have
        # no differentiable_loss: their loss_and_grads back-propagates itself.
        self.differentiable = callable(getattr(elbo, "differentiable_loss", None))
        self.name = "pyro"
        self.checks = 0

    def __call__(self, args: tuple[Any, ...]) -> torch.Tensor:
        """The loss on ``args`` by the chosen path."""
        return self._by(self.name, args)

    def _by(self, name: str, args: tuple[Any, ...]) -> torch.Tensor:
        if name == "module":
            analytic_kl = isinstance(self.elbo, TraceMeanField_ELBO)
            return self.own_loss(*args, analytic_kl=analytic_kl, **self.kwargs)
        if name == "traces":
            analytic_kl = isinstance(self.elbo, TraceMeanField_ELBO)
            return trace_loss(self.model, self.guide, args, self.kwargs, analytic_kl)
        if name == "likelihood":
            return likelihood_loss(self.model, args, self.kwargs)
        if not self.differentiable:
            # The gradients are accumulated here, under torch's grad mode; the value
            # comes back without a graph (Stepper then does not back-propagate it).
            if torch.is_grad_enabled():
                value = self.elbo.loss_and_grads(self.model, self.guide, *args, **self.kwargs)
            else:
                value = self.elbo.loss(self.model, self.guide, *args, **self.kwargs)
            return torch.tensor(float(value), dtype=torch.float64)
        return self.elbo.differentiable_loss(self.model, self.guide, *args, **self.kwargs)

    def _reference(self, args: tuple[Any, ...]) -> torch.Tensor:
        return self._by("pyro", args)

    def choose(self, args: tuple[Any, ...]) -> str:
        """Licence the cheapest path that gives Pyro's number on ``args`` with the same
        draws; the random streams are left as they were. Returns the path's name."""
        self.name = "pyro"
        rng = pyro.util.get_rng_state()
        try:
            with torch.no_grad():
                # Always evaluated: with Pyro's validation enabled, this first evaluation
                # is where the model's distributions and shapes are checked.
                reference = self._reference(args)
                if not (self.allow_shortcuts and self.differentiable) or not (
                    torch.is_tensor(reference) and torch.isfinite(reference)
                ):
                    return self.name
                pyro.util.set_rng_state(rng)
                latent = has_latent_sites(self.model, self.guide, args, self.kwargs)
                if not latent:
                    candidates = ["likelihood"]
                elif (
                    type(self.elbo) in (Trace_ELBO, TraceMeanField_ELBO)
                    and self.elbo.num_particles == 1
                ):
                    candidates = ["traces"] + (["module"] if self.own_loss is not None else [])
                else:
                    candidates = []
                for name in candidates:
                    pyro.util.set_rng_state(rng)
                    try:
                        fast = self._by(name, args)
                    except _NoShortcut:
                        break
                    if not _agree(fast, reference):
                        break
                    self.name = name
            return self.name
        finally:
            pyro.util.set_rng_state(rng)

    def recheck(self, args: tuple[Any, ...], step: int) -> None:
        """Compare the licensed path with Pyro's ELBO on ``args`` with the same (fresh)
        draws; raise :class:`ShortcutError` if they differ. No gradient; the random
        streams are left as they were."""
        if self.name == "pyro":
            return
        self.checks += 1
        rng = pyro.util.get_rng_state()
        try:
            with torch.no_grad():
                fast = self._by(self.name, args)
                pyro.util.set_rng_state(rng)
                reference = self._reference(args)
        finally:
            pyro.util.set_rng_state(rng)
        if not _agree(fast, reference):
            what = {
                "module": "the module's own torch loss (reparam_loss)",
                "traces": "the site-by-site trace sum",
                "likelihood": "the model's log-likelihood",
            }[self.name]
            raise ShortcutError(
                f"at step {step}, {what} gave {float(fast):.10g} where Pyro's "
                f"{type(self.elbo).__name__} gives {float(reference):.10g} with the same "
                "draws: the shortcut no longer computes the model's ELBO. Fit with "
                "loss_path='pyro' to train through Pyro's ELBO."
            )


def recheck_due(step: int) -> bool:
    """Whether a licensed shortcut is re-checked before step ``step`` (0-based): after
    the first and the tenth step, then every 100 steps; a few evaluations of Pyro's ELBO
    in a long fit (about 1% of a VAE epoch's time)."""
    return step in (1, 10) or (step > 0 and step % 100 == 0)
