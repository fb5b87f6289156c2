"""When a fit stops: convergence of a smoothed loss, and early stopping on held-out data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro
import torch
from pyro.infer.elbo import ELBO

from .plates import local_params

__all__ = ["Convergence", "EarlyStopping", "evaluate_per_point"]


class Convergence:
    """The relative change of the loss averaged over windows of ``window`` steps: the fit
    has converged when ``|m_k - m_{k-1}| <= tol * max(|m_k|, 1)``, ``m_k`` the mean loss
    over the k-th window. ``tol=0`` never converges (run every step)."""

    def __init__(self, tol: float, window: int):
        self.tol, self.window = tol, window

    def __call__(self, losses: list[float]) -> bool:
        k, w = len(losses), self.window
        if not self.tol or k < 2 * w or k % w:
            return False
        new = sum(losses[-w:]) / w
        old = sum(losses[-2 * w : -w]) / w
        return abs(new - old) <= self.tol * max(abs(new), 1.0)


def evaluate_per_point(
    elbo: ELBO,
    model: Callable[..., Any],
    guide: Callable[..., Any],
    data: tuple[Any, ...],
    kwargs: dict[str, Any],
    seed: int,
) -> float:
    """The loss per data point on ``data`` with the draws of ``seed``; the random streams
    are left as they were, so that a fit's draws do not depend on its validations."""
    n = next(x.shape[0] for x in data if isinstance(x, torch.Tensor) and x.ndim > 0)
    rng = pyro.util.get_rng_state()
    try:
        pyro.set_rng_seed(seed)
        with torch.no_grad(), local_params(model, guide):
            return float(elbo.loss(model, guide, *data, **kwargs)) / n
    finally:
        pyro.util.set_rng_state(rng)


class EarlyStopping:
    """Validations every ``every`` steps on held-out data; keeps the parameters of the
    lowest validation loss, and stops after ``patience`` validations in a row without a new
    lowest one (never with ``patience=None``).

    ``evaluate()`` returns the validation loss per data point; it is recorded times
    ``scale`` (the training set's size :math:`N`), the unit of the training losses.
    """

    def __init__(
        self,
        evaluate: Callable[[], float],
        every: int,
        patience: int | None,
        params: list[torch.nn.Parameter],
        scale: float,
    ):
        self.evaluate, self.every, self.patience = evaluate, every, patience
        self.params, self.scale = params, scale
        self.losses: list[float] = []
        self.steps: list[int] = []
        self.best: list[torch.Tensor] | None = None
        self.best_step: int | None = None

    def __call__(self, steps_done: int) -> bool:
        """After ``steps_done`` steps: validate when due; whether to stop."""
        if steps_done % self.every:
            return False
        self.losses.append(self.evaluate() * self.scale)
        self.steps.append(steps_done)
        if self.best is None or self.losses[-1] < min(self.losses[:-1]):
            self.best = [p.detach().clone() for p in self.params]
            self.best_step = steps_done
            return False
        return (
            self.patience is not None and steps_done - self.best_step >= self.patience * self.every
        )

    def restore(self) -> None:
        if self.best is not None:
            with torch.no_grad():
                for b, p in zip(self.best, self.params, strict=True):
                    p.copy_(b)
