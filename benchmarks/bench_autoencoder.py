"""Autoencoder training: ``fit_svi`` on the Pyro model against a hand-written torch loop.

Both train the same 64-64-32-2 tanh networks (same initial weights) with a learned shared
sigma on the digits (scaled to [0, 1], float32), Adam with learning rate 5e-3, minibatches
of 128 drawn without replacement, for the same number of steps, plain and denoising
(30% masking). The hand-written loop computes the same loss, the minibatch negative
log-likelihood scaled by N / B, with ``F.mse_loss``. The ratio is the price of the Pyro
model (trace, plate, distribution objects) per step.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

from benchmarks._harness import Row, interleave, ratio_row


def run(quick: bool) -> list[Row]:
    from ppl_models.autoencoder import Autoencoder, make_networks
    from ppl_models.datasets import load_digits
    from ppl_models.inference import fit_svi

    x = load_digits(torch.float32).x / 16
    n, d = x.shape
    steps, repeats, batch = (100, 3, 128) if quick else (500, 5, 128)
    rows = []
    for corruption in (0.0, 0.3):

        def pyro_fit(corruption: float = corruption) -> float:
            ae = Autoencoder(d, 2, hidden=(64, 32), activation="tanh", corruption=corruption)
            fit = fit_svi(ae, x, num_steps=steps, batch_size=batch, lr=5e-3, seed=0, tol=0)
            return float(fit.losses[-1])

        def torch_loop(corruption: float = corruption) -> float:
            torch.manual_seed(0)
            enc, dec = make_networks(d, 2, (64, 32), "tanh", seed=0)
            log_sigma = torch.zeros((), requires_grad=True)
            params = [*enc.parameters(), *dec.parameters(), log_sigma]
            opt = torch.optim.Adam(params, lr=5e-3)
            perm, cursor = torch.randperm(n), 0
            for _ in range(steps):
                if cursor + batch > n:
                    perm, cursor = torch.randperm(n), 0
                xb = x[perm[cursor : cursor + batch]]
                cursor += batch
                inp = xb * (torch.rand_like(xb) >= corruption) if corruption else xb
                sse = F.mse_loss(dec(enc(inp)), xb, reduction="sum")
                nll = batch * d * (0.5 * math.log(2 * math.pi) + log_sigma) + sse / (
                    2 * torch.exp(2 * log_sigma)
                )
                loss = n / batch * nll
                opt.zero_grad()
                loss.backward()
                opt.step()
            return float(loss.detach())

        times = interleave({"pyro": pyro_fit, "torch": torch_loop}, repeats=repeats)
        case = f"N={n}, 64-64-32-2, batch {batch}, {steps} steps"
        if corruption:
            case += f", masking {corruption:.0%}"
        rows.append(
            ratio_row(
                "autoencoder",
                case,
                "fit_svi (Trace_ELBO, empty guide)",
                "hand-written torch loop",
                times["pyro"],
                times["torch"],
            )
        )
    return rows
