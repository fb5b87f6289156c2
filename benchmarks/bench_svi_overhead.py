"""Per-step overhead of ``fit_svi`` against hand-written torch loops on the same loss.

Two maximum-likelihood problems at N = 100000 (float64):

* the univariate Gaussian (``gaussian.Gaussian(event_dim=0)``: ``loc`` and a positive
  ``scale``), loss :math:`-\\sum_n \\ln \\mathcal{N}(x_n \\mid \\mu, \\sigma^2)`;
* linear regression on cubic polynomial features (``regression.LinearRegression(4)``:
  ``w`` and a positive ``beta``), loss :math:`-\\sum_n \\ln \\mathcal{N}(t_n \\mid
  w^\\top\\phi_n, \\beta^{-1})`.

Both baselines use the same parameters in the same unconstrained coordinates (``log`` of
the positive one, as Pyro's ``constraints.positive`` does), the same initial values,
``torch.optim.Adam`` with the same learning rate and the same number of steps; ``fit_svi``
runs with ``tol=0`` (no convergence stop) and ``progress=False``, and its time includes
its set-up (data checks, one evaluation that creates lazy parameters).

* **torch.distributions loop**: the loss a torch user writes,
  ``-Normal(loc, scale).log_prob(x).sum()``: per-observation log-densities, summed. This is
  the same computation as the Pyro model's, so the ratio is the cost of Pyro's tracing and
  of ``fit_svi``'s bookkeeping: the overhead the library adds.
* **hand-derived formula**: the constants summed first
  (:math:`\\tfrac12\\sum z_n^2 + N \\ln\\sigma + \\dots`), fewer operations per data
  point than any per-observation log-density; a model that must report pointwise
  log-likelihoods (ArviZ's LOO) cannot do that, so this ratio also contains the cost of the
  per-observation form.

Ratio > 1: ``fit_svi`` is slower.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
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


def _torch_gaussian(x: torch.Tensor, steps: int) -> float:
    loc = torch.zeros((), dtype=x.dtype, requires_grad=True)
    log_scale = torch.zeros((), dtype=x.dtype, requires_grad=True)
    opt = torch.optim.Adam([loc, log_scale], lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        d = torch.distributions.Normal(loc, torch.exp(log_scale), validate_args=False)
        loss = -d.log_prob(x).sum()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _torch_regression(phi: torch.Tensor, t: torch.Tensor, steps: int) -> float:
    w = torch.zeros(phi.shape[1], dtype=phi.dtype, requires_grad=True)
    log_beta = torch.zeros((), dtype=phi.dtype, requires_grad=True)
    opt = torch.optim.Adam([w, log_beta], lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        d = torch.distributions.Normal(phi @ w, torch.exp(-0.5 * log_beta), validate_args=False)
        loss = -d.log_prob(t).sum()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _check_same_loss(a: float, b: float, what: str) -> str:
    # Same model, same start, same optimizer: the final losses agree up to rounding.
    return "" if abs(a - b) <= 1e-6 * max(abs(b), 1.0) else f"final losses differ ({what})"


def run(quick: bool) -> list[Row]:
    from ppl_models.gaussian import Gaussian
    from ppl_models.inference import fit_svi
    from ppl_models.regression import LinearRegression

    steps = 50 if quick else 200
    repeats = 3 if quick else 7
    rows: list[Row] = []
    x = _gaussian_data(N)
    phi, t = _regression_data(N)

    def fit_gaussian() -> float:
        g = Gaussian(event_dim=0)
        return float(fit_svi(g, x, lr=LR, num_steps=steps, tol=0, progress=False).losses[-1])

    def fit_regression() -> float:
        reg = LinearRegression(phi.shape[1])
        with torch.no_grad():
            reg.w = torch.zeros(phi.shape[1], dtype=phi.dtype)
            reg.beta = torch.tensor(1.0, dtype=phi.dtype)
        return float(fit_svi(reg, phi, t, lr=LR, num_steps=steps, tol=0, progress=False).losses[-1])

    problems = {
        "Gaussian MLE": (
            fit_gaussian,
            {
                "torch.distributions loop": lambda: _torch_gaussian(x, steps),
                "hand-derived formula": lambda: _hand_gaussian(x, steps),
            },
        ),
        "regression MLE (cubic features)": (
            fit_regression,
            {
                "torch.distributions loop": lambda: _torch_regression(phi, t, steps),
                "hand-derived formula": lambda: _hand_regression(phi, t, steps),
            },
        ),
    }
    for problem, (fit, baselines) in problems.items():
        final = fit()
        notes = {name: _check_same_loss(final, base(), name) for name, base in baselines.items()}
        times = interleave({"fit_svi": fit, **baselines}, repeats=repeats)
        for name in baselines:
            rows.append(
                ratio_row(
                    "svi_overhead",
                    f"{problem}, N={N}, {steps} Adam steps",
                    "fit_svi",
                    name,
                    [t_ / steps for t_ in times["fit_svi"]],
                    [t_ / steps for t_ in times[name]],
                    unit="s",
                    note=("per step; " + notes[name]).strip("; "),
                )
            )
    return rows
