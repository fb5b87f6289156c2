"""Per-step overhead of ``fit_svi`` against a hand-written torch loop on the same loss.

Two maximum-likelihood problems at N = 100000 (float64):

* the univariate Gaussian (``gaussian.Gaussian(event_dim=0)``: ``loc`` and a positive
  ``scale``), loss :math:`-\\sum_n \\ln \\mathcal{N}(x_n \\mid \\mu, \\sigma^2)`;
* linear regression on cubic polynomial features (``regression.LinearRegression(4)``:
  ``w`` and a positive ``beta``), loss :math:`-\\sum_n \\ln \\mathcal{N}(t_n \\mid
  w^\\top\\phi_n, \\beta^{-1})`.

The baseline is what one writes by hand: the same parameters in the same unconstrained
coordinates (``log`` of the positive one, as Pyro's ``constraints.positive`` uses), the
same initial values, the log-density written out, ``torch.optim.Adam`` with the same
learning rate and the same number of steps. ``fit_svi`` runs with ``tol=0`` (no
convergence stop) and ``progress=False``; its time includes its set-up (data checks, one
evaluation that creates lazy parameters). Pyro's validation is left as it is by default
(on); a second row per problem turns it off, since it is a large part of Pyro's per-step
cost on small models (REFERENCES.md). A third Gaussian row compares with a hand loop that
evaluates the log-density the way Pyro does (``torch.distributions.Normal`` expanded to the plate's
shape), which separates the cost of that log-density from the cost of Pyro's tracing and
``fit_svi``'s bookkeeping. Ratio > 1: ``fit_svi`` is slower.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pyro
import torch

from benchmarks._harness import Row, interleave, ratio_row

N = 100_000
LR = 0.01


def _gaussian_data(n: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).normal(1.5, 2.0, size=n))


def _regression_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=n)
    t = np.sin(np.pi * x) + rng.normal(0, 0.2, size=n)
    phi = np.stack([x**k for k in range(4)], axis=1)
    return torch.from_numpy(phi), torch.from_numpy(t)


def _hand_gaussian(x: torch.Tensor, steps: int) -> float:
    loc = torch.zeros((), dtype=x.dtype, requires_grad=True)
    log_scale = torch.zeros((), dtype=x.dtype, requires_grad=True)
    opt = torch.optim.Adam([loc, log_scale], lr=LR)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    for _ in range(steps):
        opt.zero_grad()
        z = (x - loc) * torch.exp(-log_scale)
        loss = (0.5 * z * z).sum() + x.shape[0] * (log_scale + half_log_2pi)
        loss.backward()
        opt.step()
    return float(loss.detach())


def _hand_gaussian_plate(x: torch.Tensor, steps: int) -> float:
    """The hand loop with the log-density Pyro evaluates: ``torch.distributions.Normal``
    expanded to the data plate's shape (N), so log(scale) and scale^2 are taken N times."""
    loc = torch.zeros((), dtype=x.dtype, requires_grad=True)
    log_scale = torch.zeros((), dtype=x.dtype, requires_grad=True)
    opt = torch.optim.Adam([loc, log_scale], lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        d = torch.distributions.Normal(loc, torch.exp(log_scale), validate_args=False)
        loss = -d.expand(x.shape).log_prob(x).sum()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _hand_regression(phi: torch.Tensor, t: torch.Tensor, steps: int) -> float:
    w = torch.zeros(phi.shape[1], dtype=phi.dtype, requires_grad=True)
    log_beta = torch.zeros((), dtype=phi.dtype, requires_grad=True)
    opt = torch.optim.Adam([w, log_beta], lr=LR)
    n = phi.shape[0]
    for _ in range(steps):
        opt.zero_grad()
        r = t - phi @ w
        loss = 0.5 * torch.exp(log_beta) * (r * r).sum() - 0.5 * n * (
            log_beta - math.log(2 * math.pi)
        )
        loss.backward()
        opt.step()
    return float(loss.detach())


def _check_same_loss(a: float, b: float, what: str) -> str:
    # Same model, same start, same optimizer: the final losses agree up to rounding.
    return "" if abs(a - b) <= 1e-6 * max(abs(b), 1.0) else f"final losses differ ({what})"


def run(quick: bool) -> list[Row]:
    from ppl_models.gaussian import Gaussian
    from ppl_models.inference import fit_svi

    steps = 50 if quick else 200
    repeats = 3 if quick else 7
    rows: list[Row] = []

    x = _gaussian_data(N)

    def fit_gaussian() -> float:
        g = Gaussian(event_dim=0)
        return float(fit_svi(g, x, lr=LR, num_steps=steps, tol=0, progress=False).losses[-1])

    note = _check_same_loss(fit_gaussian(), _hand_gaussian(x, steps), "gaussian")
    for validate in (True, False):
        with pyro.validation_enabled(validate):
            times = interleave(
                {"fit_svi": fit_gaussian, "hand": lambda: _hand_gaussian(x, steps)},
                repeats=repeats,
            )
        rows.append(
            ratio_row(
                "svi_overhead",
                f"Gaussian MLE, N={N}, {steps} Adam steps, validation "
                f"{'on' if validate else 'off'}",
                "fit_svi",
                "hand-written torch loop",
                [t / steps for t in times["fit_svi"]],
                [t / steps for t in times["hand"]],
                unit="s",
                note=("per step; " + note).strip("; "),
            )
        )

    with pyro.validation_enabled(False):
        times = interleave(
            {"fit_svi": fit_gaussian, "plate": lambda: _hand_gaussian_plate(x, steps)},
            repeats=repeats,
        )
    rows.append(
        ratio_row(
            "svi_overhead",
            f"Gaussian MLE, N={N}, {steps} Adam steps, validation off",
            "fit_svi",
            "hand loop, torch Normal expanded to N (Pyro's log-density)",
            [t / steps for t in times["fit_svi"]],
            [t / steps for t in times["plate"]],
            unit="s",
            note="per step; isolates Pyro's tracing and fit_svi's bookkeeping",
        )
    )

    try:
        from ppl_models.regression import LinearRegression
    except ImportError:  # another topic's module; report the part as not run
        return rows
    phi, t = _regression_data(N)

    def fit_regression() -> float:
        reg = LinearRegression(phi.shape[1])
        with torch.no_grad():
            reg.w = torch.zeros(phi.shape[1], dtype=phi.dtype)
            reg.beta = torch.tensor(1.0, dtype=phi.dtype)
        return float(fit_svi(reg, phi, t, lr=LR, num_steps=steps, tol=0, progress=False).losses[-1])

    note = _check_same_loss(fit_regression(), _hand_regression(phi, t, steps), "regression")
    for validate in (True, False):
        with pyro.validation_enabled(validate):
            times = interleave(
                {"fit_svi": fit_regression, "hand": lambda: _hand_regression(phi, t, steps)},
                repeats=repeats,
            )
        rows.append(
            ratio_row(
                "svi_overhead",
                f"regression MLE (cubic features), N={N}, {steps} Adam steps, validation "
                f"{'on' if validate else 'off'}",
                "fit_svi",
                "hand-written torch loop",
                [t_ / steps for t_ in times["fit_svi"]],
                [t_ / steps for t_ in times["hand"]],
                unit="s",
                note=("per step; " + note).strip("; "),
            )
        )
    return rows
