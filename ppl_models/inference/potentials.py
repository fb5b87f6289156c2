r"""Potential energies for Hamiltonian Monte Carlo, from any Pyro model.

NUTS moves in the unconstrained coordinates :math:`u` of the latent sites (Pyro's
transforms: :math:`u = \ln\sigma` for a scale, the identity for a real parameter) and needs
the potential energy and its gradient,

.. math::

    U(u) = -\ln p\big(x, \theta(u)\big) - \ln\Big|\det \frac{\partial\theta}{\partial u}\Big|,

with every site's scale and mask as Pyro applies them. Three ways to compute it, fastest
last:

* :class:`FlatModel.log_joint`: the model run once with the latent sites set to
  :math:`\theta(u)`, its log-densities summed by a light messenger (no trace is built, no
  validation), and :math:`\nabla U` by autograd. The same number as Pyro's own
  ``potential_fn`` (checked at the start of every run).
* :meth:`FlatModel.compiled`: that computation, value and gradient, recorded once as a graph
  of tensor operations (``make_fx``) and compiled (``torch.compile``): the model's Python
  code no longer runs per evaluation (4-5x fewer milliseconds per gradient, measured on
  logistic regression), at a compile cost of seconds. It assumes the model's control flow
  does not depend on the values of its latent sites; a run re-checks it against the
  uncompiled potential during sampling.
* a topic module's own potential (:class:`~ppl_models.inference.TopicModule`'s
  ``nuts_potential``), in closed form from sufficient statistics, licensed against
  Pyro's potential and gradient at every chain's initial point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pyro
import torch
from pyro.distributions.util import scale_and_mask
from pyro.infer.autoguide.initialization import InitMessenger
from pyro.infer.mcmc.util import initialize_model
from pyro.ops.integrator import potential_grad
from pyro.poutine.messenger import Messenger

__all__ = ["ClosedFormPotential", "FlatModel", "PotentialMismatch", "potentials_agree"]


class PotentialMismatch(RuntimeError):
    """A fast potential disagreed with Pyro's during a run."""


class _LogJoint(Messenger):
    """Set the latent sites to given values and sum every site's scaled, masked
    log-density as the model runs: Pyro's log joint without building a trace."""

    def __init__(self, values: dict[str, torch.Tensor]):
        super().__init__()
        self.values = values
        self.total: torch.Tensor | float = 0.0

    def _pyro_sample(self, msg: dict) -> None:
        value = self.values.get(msg["name"])
        if value is not None:
            msg["value"] = value
            msg["is_observed"] = True

    def _pyro_post_sample(self, msg: dict) -> None:
        if type(msg["fn"]).__name__ == "_Subsample":  # a plate's index site
            return
        lp = msg["fn"].log_prob(msg["value"])
        self.total = self.total + scale_and_mask(lp, msg["scale"], msg["mask"]).sum()


class ClosedFormPotential:
    """A potential with its gradient in closed form, as a topic module's
    ``nuts_potential`` returns it.

    ``value_and_grad(z)`` maps a dict of unconstrained site values to ``(U, dU/dz)`` (a
    scalar tensor and a dict like ``z``) without autograd; calling the object gives ``U``
    with the closed-form gradient attached for autograd (what Pyro's NUTS and the licence
    check need). ``numpy_value_and_grad``, optional, is the same map on float64 numpy
    arrays, which ``run_nuts`` uses with nutpie on float64 CPU data once it has checked it
    against Pyro's potential.
    """

    def __init__(
        self,
        value_and_grad: Callable[
            [dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, torch.Tensor]]
        ],
        numpy_value_and_grad: Callable[[dict[str, Any]], tuple[float, dict[str, Any]]]
        | None = None,
    ):
        self.value_and_grad = value_and_grad
        # The same function on float64 numpy arrays (CPU), optional: on small matrices
        # numpy's per-call overhead is a third of torch's, and nutpie calls it from Python
        # hundreds of thousands of times. run_nuts licenses it against Pyro's potential on
        # its own, like value_and_grad.
        self.numpy_value_and_grad = numpy_value_and_grad

    def __call__(self, z: dict[str, torch.Tensor]) -> torch.Tensor:
        names = sorted(z)
        return _ClosedForm.apply(self.value_and_grad, names, *(z[k] for k in names))


class _ClosedForm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, fn: Callable, names: list[str], *values: torch.Tensor) -> torch.Tensor:
        value, grad = fn({k: v.detach() for k, v in zip(names, values, strict=True)})
        ctx.grads = [grad[k] for k in names]
        return value

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return (None, None, *(g * d for d in ctx.grads))


class FlatModel:
    """A Pyro model's latent sites as one flat vector of unconstrained coordinates.

    Parameters
    ----------
    model : callable
    args, kwargs : the model's arguments
    init_strategy : callable
        A Pyro init strategy for the chains' starting points.

    Attributes
    ----------
    names, shapes, sizes : the latent sites, in a fixed order, and their shapes
    transforms : dict
        Pyro's transforms from each site's support to the real line.
    pyro_potential : callable
        Pyro's own ``potential_fn`` (the reference every faster one is checked against).
    dtype, device : of the site values
    ndim : int
        The length of the flat vector.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        init_strategy: Callable[[dict], torch.Tensor],
    ):
        self.model, self.args, self.kwargs = model, args, kwargs
        self.init_strategy = init_strategy
        init, self.pyro_potential, self.transforms, _ = initialize_model(
            model, model_args=args, model_kwargs=kwargs, init_strategy=init_strategy
        )
        self.names = sorted(init)
        self.shapes = [tuple(init[k].shape) for k in self.names]
        self.sizes = [math.prod(s) for s in self.shapes]
        first = init[self.names[0]]
        self.dtype, self.device = first.dtype, first.device
        self.ndim = sum(self.sizes)

    # -- coordinates ------------------------------------------------------------------

    def unflatten(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(x, self.sizes)
        return {k: p.reshape(s) for k, p, s in zip(self.names, parts, self.shapes, strict=True)}

    def flatten(self, z: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([z[k].reshape(-1) for k in self.names])

    def constrained(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The sites' values (in their supports) at the flat point ``x``."""
        z = self.unflatten(x)
        return {k: self.transforms[k].inv(v) for k, v in z.items()}

    def initial_point(self, seed: int) -> torch.Tensor:
        """A chain's starting point by the init strategy, under ``seed`` alone (the random
        streams are left as they were)."""
        rng = pyro.util.get_rng_state()
        try:
            pyro.set_rng_seed(seed)
            with torch.no_grad(), pyro.validation_enabled(False):
                trace = pyro.poutine.trace(InitMessenger(self.init_strategy)(self.model))
                nodes = trace.get_trace(*self.args, **self.kwargs).nodes
            z = {k: self.transforms[k](nodes[k]["value"]) for k in self.names}
        finally:
            pyro.util.set_rng_state(rng)
        return self.flatten(z).to(self.dtype)

    # -- potentials -------------------------------------------------------------------

    def log_joint(self, z: dict[str, torch.Tensor]) -> torch.Tensor:
        """:math:`-U(u)`: the model's log joint at :math:`\\theta(u)` plus the log-Jacobian
        of :math:`u \\mapsto \\theta`."""
        constrained = {k: self.transforms[k].inv(v) for k, v in z.items()}
        handler = _LogJoint(constrained)
        with handler:
            self.model(*self.args, **self.kwargs)
        total = handler.total
        for k, t in self.transforms.items():
            total = total - t.log_abs_det_jacobian(constrained[k], z[k]).sum()
        return total

    def potential(self, z: dict[str, torch.Tensor]) -> torch.Tensor:
        return -self.log_joint(z)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`U` and :math:`\\nabla U` at the flat point ``x`` by autograd."""
        x = x.detach().requires_grad_()
        value = self.potential(self.unflatten(x))
        (grad,) = torch.autograd.grad(value, x)
        return value.detach(), grad

    def compiled(self, x0: torch.Tensor) -> Callable[[torch.Tensor], tuple[torch.Tensor, ...]]:
        """The value and gradient at a flat point, recorded at ``x0`` as a graph of tensor
        operations and compiled; returns ``f(x) -> (U, grad)``. Raises where the model
        cannot be recorded (a value read back to Python, an unsupported operation)."""
        from torch.fx.experimental.proxy_tensor import make_fx

        def flat_potential(x: torch.Tensor) -> torch.Tensor:
            return self.potential(self.unflatten(x))

        with pyro.validation_enabled(False):
            graph = make_fx(torch.func.grad_and_value(flat_potential))(x0.detach())
        fn = torch.compile(graph, dynamic=False)
        fn(x0.detach())  # compiles now: the run's timing starts sampled, not compiling

        def value_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            grad, value = fn(x)
            return value, grad

        return value_and_grad


def potentials_agree(
    fast: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    reference: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    points: list[dict[str, torch.Tensor]],
) -> bool:
    """Whether ``fast(z) -> (U, dU/dz)`` equals Pyro's potential ``reference`` and its
    autograd gradient at each of ``points``.

    Tolerance: the two compute the same quantities by different routes (sufficient
    statistics and closed-form derivatives against per-row densities and autograd), which
    differ by rounding growing with N (1e-10 relative measured on Bishop's data); the
    square root of the dtype's epsilon (1.5e-8 in float64), relative to the potential and
    to the largest gradient entry, is far above that. It catches a wrong likelihood or a
    missing term; an error in a term that is tiny beside the others (a vague prior's) can
    pass, which is why each module's tests check its potential against Pyro's to 1e-10.
    """
    for point in points:
        try:
            g_ref, v_ref = potential_grad(
                reference, {k: v.detach().requires_grad_() for k, v in point.items()}
            )
            v_new, g_new = fast({k: v.detach() for k, v in point.items()})
        except (RuntimeError, ValueError):
            return False
        v_ref, v_new = torch.as_tensor(v_ref), torch.as_tensor(v_new)
        if not bool(torch.isfinite(v_ref)):
            return False
        rtol = math.sqrt(torch.finfo(v_ref.dtype).eps)
        if not bool(torch.isclose(v_new.to(v_ref), v_ref, rtol=rtol, atol=0)):
            return False
        scale = max(float(g.abs().max()) for g in g_ref.values())
        if set(g_new) != set(g_ref) or any(
            float((g_new[k].to(g_ref[k]) - g_ref[k]).abs().max()) > rtol * max(scale, 1e-300)
            for k in g_ref
        ):
            return False
    return True
