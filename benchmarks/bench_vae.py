"""VAE training: one epoch of ``fit_svi`` on the library's VAE against a hand-written PyTorch
VAE with the same architecture.

Both train 784-400-20 networks (relu, same initial weights from ``make_networks``) on
synthetic binary data (60000 x 784, float32), Adam with learning rate 1e-3, minibatches of
128 drawn without replacement, one reparametrised draw per point and the analytic KL
(``loss="meanfield"`` against the closed-form KL in torch). The hand-written loop's loss is
the same number: N / B times the minibatch's binary cross-entropy plus KL.

Where the time went: Pyro's ELBO classes cost about 1.4x here (validation, score-function
machinery); ``fit_svi``'s trace shortcut (one guide trace, the replayed model, the sum
site by site) about 1.25-1.35x, the rest being traces, messengers, plate and distribution
objects, pure Python on every step. ``fit_svi`` now trains on :meth:`VAE.reparam_loss
<ppl_models.vae.VAE.reparam_loss>`, the same loss written in torch, after checking on the
first minibatch that it is Pyro's number for the same draws. What is left of the ratio is
per fit (the binary check of 47 million pixels, the licence checks) and per step (the copy
of the parameters kept for a roll-back on a non-finite loss).

``python -m benchmarks.bench_vae --profile`` prints where the library's step spends its
time: milliseconds per forward + backward pass of the hand-written loss, of ``fit_svi``'s
shortcut and of Pyro's ``TraceMeanField_ELBO`` (interleaved), then cProfile's table.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

from benchmarks._harness import Row, interleave, ratio_row

_D, _M, _HIDDEN, _BATCH = 784, 20, (400,), 128


def _data(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    # Pixels on with probabilities that vary by position, like digits' ink.
    p = torch.rand(_D, generator=g) * 0.5
    return (torch.rand(n, _D, generator=g) < p).float()


def _library_epoch(x: torch.Tensor, steps: int) -> float:
    from ppl_models.inference import fit_svi
    from ppl_models.vae import VAE

    vae = VAE(_D, _M, hidden=_HIDDEN, seed=0)
    fit = fit_svi(
        vae,
        x,
        loss="meanfield",
        num_steps=steps,
        batch_size=_BATCH,
        lr=1e-3,
        tol=0,
        seed=0,
        progress=False,
    )
    return float(fit.losses[-1])


def _torch_epoch(x: torch.Tensor, steps: int) -> float:
    from ppl_models.autoencoder import make_networks

    n = x.shape[0]
    torch.manual_seed(0)
    enc, dec = make_networks(_D, _M, _HIDDEN, "relu", encoder_heads=2, seed=0)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    perm, cursor = torch.randperm(n), 0
    loss = torch.zeros(())
    for _ in range(steps):
        if cursor + _BATCH > n:
            perm, cursor = torch.randperm(n), 0
        xb = x[perm[cursor : cursor + _BATCH]]
        cursor += _BATCH
        h = enc(xb)
        loc, log_var = h[:, :_M], h[:, _M:]
        scale = torch.exp(0.5 * log_var)
        z = loc + scale * torch.randn_like(loc)
        bce = F.binary_cross_entropy_with_logits(dec(z), xb, reduction="sum")
        kl = -0.5 * (1 + log_var - loc * loc - scale * scale).sum()
        loss = n / _BATCH * (bce + kl)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def run(quick: bool) -> list[Row]:
    n = 60000
    x = _data(n)
    steps = 100 if quick else -(-n // _BATCH)  # one epoch: 469 steps
    repeats = 3 if quick else 5
    # One intra-op thread for both: on a shared 2-core machine a second thread makes every
    # small op wait for a busy core, and the ratio then measures the load, not the code.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = interleave(
            {"pyro": lambda: _library_epoch(x, steps), "torch": lambda: _torch_epoch(x, steps)},
            repeats=repeats,
        )
    finally:
        torch.set_num_threads(threads)
    case = f"N={n}, 784-400-20, batch {_BATCH}, {steps} steps" + ("" if quick else " (one epoch)")
    return [
        ratio_row(
            "vae",
            case,
            "fit_svi (TraceMeanField_ELBO, amortized guide)",
            "hand-written torch VAE",
            times["pyro"],
            times["torch"],
            note="1 torch thread",
        )
    ]


def _breakdown(repeats: int = 200) -> dict[str, float]:
    """Median milliseconds of one forward + backward pass on a batch of 128, interleaved
    step by step: the hand-written loss, ``VAE.reparam_loss`` (what ``fit_svi`` trains on),
    ``fit_svi``'s generic trace shortcut (one guide trace, the model replayed, the ELBO
    summed site by site) and Pyro's ``TraceMeanField_ELBO``."""
    import statistics
    import time

    import pyro
    from pyro.infer import TraceMeanField_ELBO

    from ppl_models.inference.losses import trace_loss
    from ppl_models.inference.plates import minibatch
    from ppl_models.vae import VAE

    vae = VAE(_D, _M, hidden=_HIDDEN, seed=0)
    xb = _data(_BATCH)
    idx = torch.arange(_BATCH)
    elbo = TraceMeanField_ELBO()

    def pyro_elbo() -> None:
        with pyro.settings.context(module_local_params=True), minibatch(60000, idx):
            elbo.differentiable_loss(vae.model, vae.guide, xb).backward()

    def module_loss() -> None:
        with pyro.settings.context(module_local_params=True), minibatch(60000, idx):
            vae.reparam_loss(xb, analytic_kl=True).backward()

    def shortcut() -> None:
        with pyro.settings.context(module_local_params=True), minibatch(60000, idx):
            trace_loss(vae.model, vae.guide, (xb,), {}, True).backward()

    def hand() -> None:
        h = vae.encoder(xb)
        loc, log_var = h[:, :_M], h[:, _M:]
        scale = torch.exp(0.5 * log_var)
        z = loc + scale * torch.randn_like(loc)
        bce = F.binary_cross_entropy_with_logits(vae.decoder(z), xb, reduction="sum")
        kl = -0.5 * (1 + log_var - loc * loc - scale * scale).sum()
        (60000 / _BATCH * (bce + kl)).backward()

    fns = {
        "hand-written": hand,
        "VAE.reparam_loss": module_loss,
        "fit_svi trace shortcut": shortcut,
        "TraceMeanField_ELBO": pyro_elbo,
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    with pyro.validation_enabled(False):
        for r in range(repeats):
            for name in fns if r % 2 else list(fns)[::-1]:
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v[10:]) for k, v in times.items()}


def _profile(steps: int = 200) -> None:
    import cProfile
    import pstats

    x = _data(60000)
    _library_epoch(x, 5)
    prof = cProfile.Profile()
    prof.enable()
    _library_epoch(x, steps)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        torch.set_num_threads(1)
        print({k: round(v, 2) for k, v in _breakdown().items()}, "ms per step")
        _profile()
    else:
        for row in run(quick="--quick" in sys.argv):
            print(row)
