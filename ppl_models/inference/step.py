"""One optimisation step, shared by :func:`~ppl_models.inference.fit_svi` and
:func:`~ppl_models.distributed.fit_distributed`: the optimizer (torch or ``pyro.optim``),
the finite-loss guard that keeps the last good parameters, and the error it raises."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from pyro.optim import PyroOptim

from .._checks import check_choice, check_int, check_positive

__all__ = [
    "FitError",
    "IterateAveraging",
    "Stepper",
    "make_optimizer",
    "unique_params",
]


class FitError(RuntimeError):
    """Raised when a fit cannot go on (a non-finite loss); the module keeps its last
    parameters at which the loss was finite.

    Attributes
    ----------
    step : int
        The step (0-based) whose loss was not finite.
    losses : numpy.ndarray
        The finite losses before it.
    """

    def __init__(self, message: str, step: int, losses: np.ndarray):
        super().__init__(message)
        self.step = step
        self.losses = losses


_OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], float]] = {
    "adam": (torch.optim.Adam, 1e-2),
    "adamw": (torch.optim.AdamW, 1e-2),
    "sgd": (torch.optim.SGD, 1e-3),
    "adagrad": (torch.optim.Adagrad, 1e-1),
    "lbfgs": (torch.optim.LBFGS, 1.0),
}


class PyroOptimizer:
    """A ``pyro.optim`` optimizer (``pyro.optim.Adam({"lr": 0.01})``, ``ClippedAdam``, a
    ``pyro.optim`` scheduler) driven like a torch optimizer over a fixed parameter list.

    Pyro's wrapper makes one torch optimizer per parameter, lazily, at its first step; its
    own state is keyed by names in Pyro's global parameter store, which module-local
    parameters do not have. Here the state is saved and restored in the order of the
    parameter list, so that a checkpoint resumes it exactly.
    """

    def __init__(self, optim: PyroOptim, params: list[torch.nn.Parameter]):
        self.optim, self.params = optim, params

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self, closure: Callable[[], Any] | None = None) -> None:
        self.optim([p for p in self.params if p.grad is not None])

    def state_dict(self) -> dict[str, Any]:
        objs = self.optim.optim_objs
        per_param = []
        for p in self.params:
            o = objs.get(p)
            if o is None:
                per_param.append(None)
            elif hasattr(o, "optimizer"):  # a scheduler around an optimizer
                per_param.append(
                    {"scheduler": o.state_dict(), "optimizer": o.optimizer.state_dict()}
                )
            else:
                per_param.append({"optimizer": o.state_dict()})
        return {"pyro_optim": per_param}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        per_param = state.get("pyro_optim") if isinstance(state, dict) else None
        if not isinstance(per_param, list) or len(per_param) != len(self.params):
            raise ValueError("the optimizer state is not that of this pyro.optim optimizer")
        for p, s in zip(self.params, per_param, strict=True):
            if s is None:
                continue
            # A step without a gradient makes Pyro create the parameter's optimizer (and
            # moves nothing: torch optimizers skip parameters whose grad is None).
            grad, p.grad = p.grad, None
            self.optim([p])
            p.grad = grad
            o = self.optim.optim_objs[p]
            if "scheduler" in s:
                o.load_state_dict(s["scheduler"])
                o.optimizer.load_state_dict(s["optimizer"])
            else:
                o.load_state_dict(s["optimizer"])


def make_optimizer(
    optimizer: str | Callable[..., Any] | torch.optim.Optimizer | PyroOptim,
    params: list[torch.nn.Parameter],
    lr: float | None,
) -> Any:
    """The optimizer of a fit over ``params``: a name (with ``lr``), a function from a
    parameter list to a torch optimizer, a torch optimizer already made over them, or a
    ``pyro.optim`` optimizer."""
    if isinstance(optimizer, PyroOptim):
        if lr is not None:
            raise ValueError("lr must be None with a pyro.optim optimizer: it has its own")
        return PyroOptimizer(optimizer, params)
    if isinstance(optimizer, torch.optim.Optimizer):
        if lr is not None:
            raise ValueError("lr must be None with an optimizer instance: it has its own")
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = sum(1 for p in params if id(p) not in held)
        if missing:
            raise ValueError(
                f"optimizer does not hold {missing} of the {len(params)} parameters to fit "
                "(an autoguide's are made at the first evaluation); pass a function instead, "
                "e.g. optimizer=lambda params: torch.optim.Adam(params, lr=0.01)"
            )
        return optimizer
    if callable(optimizer) and not isinstance(optimizer, str):
        made = optimizer(params)
        if not isinstance(made, torch.optim.Optimizer):
            raise TypeError(
                "optimizer, a function, must return a torch.optim.Optimizer for the parameter "
                f"list it is given; it returned {type(made).__name__}"
            )
        return made
    check_choice(optimizer, "optimizer", list(_OPTIMIZERS))
    cls, default_lr = _OPTIMIZERS[optimizer]
    lr = default_lr if lr is None else check_positive(lr, "lr", allow_tensor=False)
    if optimizer == "lbfgs":
        # Strong-Wolfe line search makes L-BFGS robust on log-likelihoods whose scale is
        # far from 1 (sums over many data points); the tolerances are at float64 level so
        # that the optimiser, not its defaults, decides how close we get to the optimum.
        return cls(
            params,
            lr=lr,
            max_iter=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
            history_size=20,
        )
    return cls(params, lr=lr)


def unique_params(*sources: Iterable[torch.Tensor] | object) -> list[torch.nn.Parameter]:
    """The trainable parameters of the given modules (or iterables of tensors), each once,
    in order of first appearance."""
    seen: set[int] = set()
    params = []
    for source in sources:
        if isinstance(source, torch.nn.Module):
            items: Iterable[torch.Tensor] = source.parameters()
        elif isinstance(source, (list, tuple)):
            items = source
        else:
            continue
        for p in items:
            if id(p) not in seen and p.requires_grad:
                seen.add(id(p))
                params.append(p)
    return params


class Stepper:
    """Steps ``optim`` over ``params`` and keeps the last parameters whose loss was finite.

    A step is ``zero_grad()``, the loss, ``accept(value, step, losses)`` (which raises
    :class:`FitError`, restoring the last good parameters, when the value is not finite,
    and otherwise records the parameters the step starts from), the backward pass, then
    ``optim.step()``. L-BFGS evaluates inside its own step: :meth:`lbfgs_step`.
    """

    def __init__(self, optim: Any, params: list[torch.nn.Parameter]):
        self.optim, self.params = optim, params
        self.is_lbfgs = isinstance(optim, torch.optim.LBFGS)
        self.last_good = [p.detach().clone() for p in params]
        self._trial = [p.detach().clone() for p in params] if self.is_lbfgs else []

    def accept(self, value: float, step: int, losses: list[float]) -> None:
        if not math.isfinite(value):
            self.fail(step, value, losses)
        with torch.no_grad():
            for s, p in zip(self.last_good, self.params, strict=True):
                s.copy_(p)

    def step(self, loss: Callable[[], torch.Tensor], step: int, losses: list[float]) -> float:
        """One step on ``loss()``; returns its value."""
        if self.is_lbfgs:
            return self.lbfgs_step(loss, step, losses)
        self.optim.zero_grad()
        value_t = loss()
        value = float(value_t.detach())
        self.accept(value, step, losses)
        if value_t.requires_grad:  # else the loss came with its gradients (loss_and_grads)
            value_t.backward()
        self.optim.step()
        return value

    def lbfgs_step(self, loss: Callable[[], torch.Tensor], step: int, losses: list[float]) -> float:
        def closure() -> torch.Tensor:
            self.optim.zero_grad()
            value = loss()
            if torch.isfinite(value) and value.requires_grad:
                value.backward()
            return value.detach()

        # L-BFGS evaluates and steps inside one call: keep the parameters it starts from,
        # and promote them to last_good once their loss (the value step() returns) proves
        # finite.
        with torch.no_grad():
            for s, p in zip(self._trial, self.params, strict=True):
                s.copy_(p)
        value = float(self.optim.step(closure))
        if not math.isfinite(value):
            self.fail(step, value, losses)
        self.last_good, self._trial = self._trial, self.last_good
        return value

    def check_finite_params(self, step: int, losses: list[float]) -> None:
        """L-BFGS's last line search can leave parameters with no finite loss behind."""
        if not all(bool(torch.isfinite(p).all()) for p in self.params):
            self.fail(step, float("nan"), losses)

    def fail(self, step: int, value: float, losses: list[float]) -> None:
        with torch.no_grad():
            for s, p in zip(self.last_good, self.params, strict=True):
                p.copy_(s)
        last = ""
        if losses:
            last = f"; the last finite loss was {losses[-1]:.6g} at step {len(losses) - 1}"
        raise FitError(
            f"the loss became non-finite ({value}) at step {step}{last}. The module keeps the "
            "parameters of the last step with a finite loss. Lower the learning rate, "
            "standardise the data, or check the model's initial values.",
            step=step,
            losses=np.asarray(losses, dtype=np.float64),
        )


class IterateAveraging:
    r"""An optimizer factory for :func:`~ppl_models.inference.fit_svi`: Adam that also keeps
    the running mean of its iterates (Polyak-Ruppert averaging).

    With a Monte-Carlo ELBO, Adam at a constant learning rate does not converge: being
    scale-free, it keeps taking steps of about ``lr`` driven by gradient noise, however
    many particles are drawn, so the last iterate jitters around the optimum. The average
    of the iterates after ``start`` steps converges to it (exactly for the mean of a
    Gaussian guide, whose ELBO is quadratic in it when the model is linear-Gaussian).

    Parameters
    ----------
    lr : float
        Adam's learning rate.
    start : int
        Steps before the averaging begins (burn-in).

    Examples
    --------
    With :func:`~ppl_models.inference.fit_svi` (as in ``tests/test_regression.py``)::

        avg = IterateAveraging(lr=0.01, start=300)
        fit_svi(reg, phi, t, guide=guide, optimizer=avg, num_steps=1000, tol=0)
        avg.apply()  # the parameters now hold the averages

    On a noisy quadratic whose minimum is at 1, the last iterate jitters and the average
    does not:

    >>> p = torch.nn.Parameter(torch.zeros(()))
    >>> avg = IterateAveraging(lr=0.1, start=100)
    >>> opt = avg([p])
    >>> g = torch.Generator().manual_seed(0)
    >>> for _ in range(400):
    ...     opt.zero_grad()
    ...     (0.5 * (p - 1.0 - 0.5 * torch.randn((), generator=g)) ** 2).backward()
    ...     _ = opt.step()
    >>> avg.num_averaged
    300
    >>> avg.apply()
    >>> abs(float(p.detach()) - 1.0) < 0.1  # about 5 standard errors of the average
    True
    """

    def __init__(self, lr: float = 1e-2, start: int = 0):
        self.lr = check_positive(lr, "lr", allow_tensor=False)
        self.start = check_int(start, "start", minimum=0)
        self.optimizer: torch.optim.Adam | None = None
        self._means: list[torch.Tensor] = []
        self._count = 0

    def __call__(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """Create the optimizer over ``params`` (called by ``fit_svi``)."""
        self._params = list(params)
        self._means = [p.detach().clone() for p in self._params]
        self._count = 0
        averaging = self

        class _AveragedAdam(torch.optim.Adam):
            def step(self, closure=None):  # type: ignore[override]
                loss = super().step(closure)
                averaging._update()
                return loss

        self.optimizer = _AveragedAdam(self._params, lr=self.lr)
        return self.optimizer

    def _update(self) -> None:
        self._count += 1
        k = self._count - self.start
        if k <= 0:
            return
        with torch.no_grad():
            for mean, p in zip(self._means, self._params, strict=True):
                mean.add_(p - mean, alpha=1.0 / k)

    @property
    def num_averaged(self) -> int:
        """The number of iterates in the average so far."""
        return max(0, self._count - self.start)

    def apply(self) -> None:
        """Copy the averaged iterates into the parameters (the last iterate if none were
        averaged yet)."""
        if self.optimizer is None:
            raise RuntimeError("IterateAveraging.apply() needs a fit: pass it to fit_svi first")
        if self.num_averaged == 0:
            return
        with torch.no_grad():
            for mean, p in zip(self._means, self._params, strict=True):
                p.copy_(mean)
