"""Data-parallel SVI (fit_distributed), distributed moments, and the ``train`` command.

In-process tests check the mathematics of data parallelism directly (the average of the
processes' gradients is the global-batch gradient; the processes' batches make up the
global batch); the tests that launch ``torchrun --nproc_per_node=2`` (gloo, CPU) check
the whole thing against a one-process run and check what happens when a process dies or
hangs. Each launch costs 10-30 s on a loaded 2-core machine (every process imports torch,
Pyro and torch._dynamo, which the first torch optimizer pulls in), so they are ``slow``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from ppl_models import ppca
from ppl_models.cli import main, train
from ppl_models.datasets import open_npy
from ppl_models.distributed import (
    ELBOLoss,
    closed_form_distributed,
    distributed_moments,
    fit_distributed,
    init_distributed,
    pca_fit_distributed,
    shard_rows,
)
from ppl_models.inference import FitError, minibatch
from ppl_models.ppca import MarginalPPCA
from ppl_models.vae import VAE


def _ppca_data(n=512, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.linspace(3.0, 0.5, d) + 2.0


def _binary_data(n=512, d=16, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random((n, d)) < np.linspace(0.1, 0.9, d)).astype(np.float64)


def _rel(a, b):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


# ------------------------------------------------------------------ the mathematics


def _grads(loss_module, x, n, idx, weight=1.0):
    loss_module.zero_grad()
    with minibatch(n, idx):
        value = loss_module(x[idx]) * weight
    value.backward()
    return value.detach(), [p.grad.clone() for p in loss_module.parameters()]


def test_average_of_shard_gradients_is_the_global_batch_gradient():
    # The derivation in distributed.py's docstring: with local batches of B/K rows scaled
    # by N/(B/K), the average over K processes of their gradients (what DDP all-reduces)
    # is the one-process gradient of the global batch. Float64: rounding only.
    x = torch.from_numpy(_ppca_data(n=200))
    loss = ELBOLoss(MarginalPPCA(6, 2).double())
    idx = torch.randperm(200, generator=torch.Generator().manual_seed(0))[:40]
    full_value, full_grads = _grads(loss, x, 200, idx)
    for k_world in (2, 4):
        parts = [_grads(loss, x, 200, idx[k::k_world]) for k in range(k_world)]
        mean_value = sum(v for v, _ in parts) / k_world
        assert abs(float(mean_value - full_value)) <= 1e-12 * abs(float(full_value))
        for i, g in enumerate(full_grads):
            avg = sum(gs[i] for _, gs in parts) / k_world
            assert _rel(avg, g) < 1e-12


@pytest.mark.parametrize("loss", ["trace", "meanfield"])
def test_elbo_loss_shortcuts_give_pyros_loss_and_gradient(loss):
    # ELBOLoss takes fit_svi's licensed shortcuts: the VAE's own torch loss, the trace sum
    # for a model without one, Pyro's ELBO with several particles. Each path must give
    # Pyro's value and gradient for the same draws, inside a minibatch (scale N / B).
    import pyro

    x = (torch.rand(40, 12, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    idx = torch.arange(40)
    cases = [
        (VAE(12, 2, hidden=(5,)).double(), 1, "module"),
        (MarginalPPCA(12, 2).double(), 1, "likelihood"),  # no latent site
        (VAE(12, 2, hidden=(5,)).double(), 2, "pyro"),
    ]
    for module, particles, path in cases:
        fast = ELBOLoss(module, elbo=loss, num_particles=particles)
        assert fast.choose_path(x) == path
        slow = ELBOLoss(module, elbo=loss, num_particles=particles)  # path "pyro"
        # A vectorised ELBO guesses the plate nesting at its first call, with draws of its
        # own; choose_path made that call for `fast`, this one does it for `slow`.
        slow(x)
        params = list(module.parameters())
        with minibatch(1000, idx):
            pyro.set_rng_seed(3)
            value = fast(x)
            grads = torch.autograd.grad(value, params)
            pyro.set_rng_seed(3)
            ref = slow(x)
            ref_grads = torch.autograd.grad(ref, params)
        assert float(value.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
        for g, r in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_uneven_full_batch_shards_weighted_by_their_share_give_the_full_loss():
    # The mathematics of the rule: full batch, N=7 over K=2, shards of 4 and 3 rows; each
    # loss weighted by K n_k / N, the average over processes is the full-data loss. That
    # fit_distributed applies this rule (and not, say, weight 1, which trains another
    # objective) is checked by calling it under torchrun on uneven shards:
    # test_torchrun_two_processes_match_one_process (slow), full-batch part.
    x = torch.from_numpy(_ppca_data(n=7))
    loss = ELBOLoss(MarginalPPCA(6, 2).double())
    full_value, full_grads = _grads(loss, x, 7, torch.arange(7))
    parts = [
        _grads(loss, x, 7, torch.arange(k, 7, 2), weight=2 * len(range(k, 7, 2)) / 7)
        for k in range(2)
    ]
    assert abs(float(sum(v for v, _ in parts) / 2 - full_value)) <= 1e-12 * abs(float(full_value))
    for i, g in enumerate(full_grads):
        assert _rel(sum(gs[i] for _, gs in parts) / 2, g) < 1e-12


@pytest.mark.parametrize("k_world", [2, 4])
def test_local_batches_of_the_ranks_make_up_the_global_batch(k_world):
    # DistributedSampler gives rank k the positions perm[k::K] of one permutation seeded by
    # seed + epoch, whatever K: step j's local batches together are perm[jB:(j+1)B].
    n, b = 103, 16
    data = list(range(n))
    for epoch in (0, 3):
        one = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=5)
        one.set_epoch(epoch)
        ref = list(one)
        ranks = []
        for k in range(k_world):
            s = DistributedSampler(data, num_replicas=k_world, rank=k, shuffle=True, seed=5)
            s.set_epoch(epoch)
            ranks.append(list(s))
        for j in range(n // b):
            local = [r[j * b // k_world : (j + 1) * b // k_world] for r in ranks]
            assert sorted(i for part in local for i in part) == sorted(ref[j * b : (j + 1) * b])


def test_shard_rows_cover_every_row_once():
    for n, k in ((10, 3), (2, 4), (0, 2), (1000, 7)):
        rows = [list(range(n))[shard_rows(n, r, k)] for r in range(k)]
        assert [i for part in rows for i in part] == list(range(n))
        assert max(map(len, rows)) - min(map(len, rows)) <= 1


# ------------------------------------------------------------ one process (world size 1)


def test_one_process_full_batch_reaches_the_closed_form():
    # Full batch: Adam on the exact log-likelihood. The loss is deterministic, so the fit
    # converges to the maximum: C = W W^T + sigma^2 I against Tipping & Bishop's closed form.
    x = torch.from_numpy(_ppca_data(n=200, d=5))
    ref = ppca.closed_form(x, 2)
    init = ppca.PPCAParams(
        0.1 * torch.ones(5, 2, dtype=torch.float64),
        ref.mu.clone(),
        torch.tensor(1.0, dtype=torch.float64),
    )
    m = MarginalPPCA(5, 2, init=init)
    fit = fit_distributed(m, x, lr=0.05, num_steps=700, progress=False)
    assert fit.num_steps == 700 and len(fit.losses) == 700
    # Adam (lr 0.05) converges linearly here from step ~450; at step 700 the loss equals
    # the maximised log-likelihood (a sum over N points) to 1e-16 relative and C to 1e-10
    # (measured). Tolerances: 1e-9 and 1e-6, room for other BLAS orderings. (Adam at a
    # constant lr can spike much later, when its second-moment estimate has decayed: a
    # fixed, measured number of steps rather than "more is better".)
    best = float(ppca.log_likelihood(x, ref).sum())
    assert abs(fit.losses[-1] + best) <= 1e-9 * abs(best)
    assert _rel(ppca.covariance(m.params()), ppca.covariance(ref)) < 1e-6


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    x = torch.from_numpy(_ppca_data(n=200))
    kw = dict(batch_size=40, lr=0.05, seed=2, progress=False)
    a = MarginalPPCA(6, 2)
    fit_a = fit_distributed(a, x, num_steps=12, **kw)
    b = MarginalPPCA(6, 2)
    # 7 steps: epoch 1 (5 steps per epoch), 2 batches into it.
    fit_distributed(b, x, num_steps=7, checkpoint=tmp_path / "c.pt", checkpoint_every=3, **kw)
    state = torch.load(tmp_path / "c.pt", weights_only=False)
    assert state["step"] == 7 and state["epoch"] == 1 and len(state["losses"]) == 7
    c = MarginalPPCA(6, 2, seed=9)
    fit_c = fit_distributed(c, x, num_steps=12, resume=tmp_path / "c.pt", **kw)
    # The loss has no sampling: the resumed run is the same computation (rounding only).
    np.testing.assert_allclose(fit_c.losses, fit_a.losses, rtol=1e-12)
    for p, q in zip(c.params(), a.params(), strict=True):
        assert _rel(p, q) < 1e-12
    assert not list(tmp_path.glob(".*tmp"))


def test_memmap_data_are_validated_batch_by_batch(tmp_path):
    x = _binary_data(n=64)
    x[40, 3] = 0.5  # not binary: the Bernoulli VAE refuses it when its batch is read
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="binar"):
        fit_distributed(VAE(16, 2, hidden=(8,)), mm, batch_size=64, num_steps=2, progress=False)
    fit = fit_distributed(
        VAE(16, 2, hidden=(8,)), mm[:32], batch_size=16, num_steps=3, progress=False
    )
    assert fit.losses.shape == (3,)


def test_non_finite_loss_raises_fit_error_and_keeps_finite_parameters():
    x = torch.from_numpy(_ppca_data(n=100)) * 1e3
    m = MarginalPPCA(6, 2)
    with pytest.raises(FitError, match="non-finite") as info:
        fit_distributed(m, x, lr=1e6, optimizer="sgd", num_steps=50, progress=False)
    assert all(bool(torch.isfinite(t).all()) for t in m.params())
    assert len(info.value.losses) == info.value.step


def test_on_step_sees_every_step_and_its_loss():
    seen = []
    x = torch.from_numpy(_ppca_data(n=64))
    fit = fit_distributed(
        MarginalPPCA(6, 2),
        x,
        batch_size=16,
        epochs=2,
        progress=False,
        on_step=lambda s, v: seen.append((s, v)),
    )
    assert [s for s, _ in seen] == list(range(1, 9))
    np.testing.assert_array_equal([v for _, v in seen], fit.losses)


def test_distributed_moments_in_one_process_are_the_data_moments(tmp_path):
    x = _ppca_data(n=300) + 100.0
    mom, dtype = distributed_moments(torch.from_numpy(x))
    assert mom.n == 300 and dtype == torch.float64
    np.testing.assert_allclose(mom.mean, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(mom.scatter / 300, np.cov(x.T, bias=True), rtol=1e-10)
    np.save(tmp_path / "x.npy", x)
    p = closed_form_distributed(open_npy(tmp_path / "x.npy", chunk_rows=64), 2)
    ref = ppca.closed_form(x, 2)
    assert _rel(ppca.covariance(p), ppca.covariance(ref)) < 1e-10
    q = pca_fit_distributed(torch.from_numpy(x), 3)
    ev = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1][:3]
    np.testing.assert_allclose(q.explained_variance, ev, rtol=1e-10)


def test_init_distributed_without_torchrun_is_one_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert init_distributed() == (0, 1)


# ---------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    x = torch.from_numpy(_ppca_data(n=64))
    m = MarginalPPCA(6, 2)
    with pytest.raises(ValueError, match="lbfgs"):
        fit_distributed(m, x, optimizer="lbfgs", num_steps=2)
    with pytest.raises(ValueError, match="batch_size must be at most"):
        fit_distributed(m, x, batch_size=65, num_steps=2)
    with pytest.raises(ValueError, match="exactly one of num_steps and epochs"):
        fit_distributed(m, x)
    with pytest.raises(ValueError, match="exactly one of num_steps and epochs"):
        fit_distributed(m, x, num_steps=2, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        fit_distributed(m, x, epochs=0)
    # Lists and DataFrames enter like arrays (the library's one input rule); a string not.
    with pytest.raises(TypeError, match="x must be a torch tensor or a numpy array"):
        fit_distributed(m, "x.npy", num_steps=2)
    with pytest.raises(ValueError, match="x must have 6 columns"):
        fit_distributed(m, x[:, :5], num_steps=2)
    with pytest.raises(ValueError, match="timeout_s"):
        fit_distributed(m, x, num_steps=2, timeout_s=0)
    with pytest.raises(ValueError, match="seed"):
        fit_distributed(m, x, num_steps=2, seed=-1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        fit_distributed(m, x, num_steps=2, checkpoint_every=0)
    with pytest.raises(ValueError, match="x_shard must have at least 2 rows"):
        distributed_moments(x[:1])
    with pytest.raises(ValueError, match="latent_dim"):
        closed_form_distributed(x, 6)
    with pytest.raises(ValueError, match="rank must be < world_size"):
        shard_rows(10, 3, 3)
    with pytest.raises(ValueError, match="topic must be one of"):
        train("pca", "x.npy", "out")


# ---------------------------------------------------------------- the train command


def test_train_command_in_process(tmp_path, capsys):
    x = _ppca_data(n=256)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    argv = [
        "train",
        "ppca",
        "--data",
        str(tmp_path / "x.npy"),
        "--out",
        str(out),
        "--latent-dim",
        "2",
        "--batch-size",
        "64",
        "--epochs",
        "50",
        "--lr",
        "0.05",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert f"final loss {summary['final_loss']:.6g}" in printed
    assert summary["num_steps"] == 200 and summary["world_size"] == 1 and summary["n"] == 256
    # The closed-form log-likelihood the command reports (from the moments) is the mean
    # of ppca.log_likelihood at the closed form: an independent route, rounding only.
    ref = ppca.closed_form(x, 2)
    expected = float(ppca.log_likelihood(x, ref).mean())
    assert abs(summary["closed_form_loglik_per_point"] - expected) <= 1e-10 * abs(expected)
    m = MarginalPPCA(6, 2).double()
    m.load_state_dict(torch.load(out / "model.pt"))
    fitted = float(ppca.log_likelihood(x, m.params()).mean())
    assert abs(summary["loglik_per_point"] - fitted) <= 1e-10 * abs(fitted)
    # Minibatch Adam (lr 0.05, 200 steps) ends near the maximum but not at it: the gap
    # per point is positive and, measured, ~1e-3 nats; 0.05 nats says the fit worked.
    assert 0 <= expected - fitted < 0.05
    params = torch.load(out / "params.pt")
    assert set(params) == {"W", "mu", "sigma2"}
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 200

    xb = _binary_data(n=64)
    np.save(tmp_path / "xb.npy", xb)
    argv = [
        "train",
        "vae",
        "--data",
        str(tmp_path / "xb.npy"),
        "--out",
        str(tmp_path / "v"),
        "--hidden",
        "8",
        "--steps",
        "5",
        "--batch-size",
        "32",
    ]
    assert main(argv) == 0
    assert "final loss" in capsys.readouterr().out
    v = VAE(16, 2, hidden=(8,)).double()
    v.load_state_dict(torch.load(tmp_path / "v" / "model.pt"))


def test_train_command_bad_inputs(tmp_path, capsys):
    with pytest.raises(ValueError, match="data: no such file"):
        main(["train", "ppca", "--data", str(tmp_path / "missing.npy")])
    with pytest.raises(SystemExit):
        main(["train", "ppca", "--data", "x.npy", "--epochs", "1", "--steps", "2"])
    assert "not allowed with argument" in capsys.readouterr().err
    np.save(tmp_path / "x3.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="2-D array"):
        main(["train", "ppca", "--data", str(tmp_path / "x3.npy")])


# ------------------------------------------------------------------------ torchrun

_WORKER = """
import os, sys
from pathlib import Path

import numpy as np
import torch

from ppl_models.distributed import (
    closed_form_distributed, fit_distributed, init_distributed, pca_fit_distributed,
    shard_rows,
)
from ppl_models.ppca import MarginalPPCA
from ppl_models.vae import VAE

PPCA = dict(batch_size=64, num_steps=24, lr=0.05, seed=3, progress=False)
# Full batch on 511 rows: shards of 256 and 255, weighted by K n_k / N in fit_distributed.
FULL = dict(batch_size=None, num_steps=12, lr=0.05, seed=3, progress=False)
UNEVEN = 511
VAE_FIT = dict(batch_size=64, num_steps=200, lr=0.01, seed=3, loss="meanfield", progress=False)


def run_ppca(x, rank):
    # Each rank starts from a different W (seed=rank): DDP must copy rank 0's.
    m = MarginalPPCA(x.shape[1], 2, seed=rank)
    fit = fit_distributed(m, torch.from_numpy(x), **PPCA)
    return {"params": m.params()._asdict(), "losses": fit.losses}


def run_ppca_full(x, rank):
    m = MarginalPPCA(x.shape[1], 2, seed=rank)
    fit = fit_distributed(m, torch.from_numpy(x[:UNEVEN]), **FULL)
    return {"params": m.params()._asdict(), "losses": fit.losses}


def run_vae(xb, rank):
    v = VAE(xb.shape[1], 2, hidden=(16,), seed=rank)
    fit = fit_distributed(v, xb, **VAE_FIT)
    return {"state": v.state_dict(), "losses": fit.losses}


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    rank, world = init_distributed(timeout_s=60)
    x, xb = np.load(out / "x.npy"), np.load(out / "xb.npy")
    res = {"world": world, "ppca": run_ppca(x, rank), "vae": run_vae(xb, rank)}
    res["ppca_full"] = run_ppca_full(x, rank)
    res["cf"] = closed_form_distributed(x[shard_rows(len(x))], 2)._asdict()
    # Uneven shards, one of them empty, and a stream.
    res["cf_uneven"] = closed_form_distributed(x if rank == 0 else x[:0], 2)._asdict()
    res["pca"] = pca_fit_distributed(iter([torch.from_numpy(x[shard_rows(len(x))])]), 3)._asdict()
    torch.save(res, out / f"rank{rank}.pt")
    from ppl_models.cli import main
    main(["train", "ppca", "--data", str(out / "x.npy"), "--out", str(out / "cli"),
          "--batch-size", "64", "--steps", "24", "--lr", "0.05", "--seed", "3"])
"""

_FAILING = """
import os, sys, time
from pathlib import Path

import numpy as np
import torch

from ppl_models.distributed import fit_distributed, init_distributed
from ppl_models.ppca import MarginalPPCA

if __name__ == "__main__":
    torch.set_num_threads(1)
    out, mode = Path(sys.argv[1]), sys.argv[2]
    rank, world = init_distributed(timeout_s=5)

    def on_step(step, loss):
        if rank == 1 and step == 7:
            if mode == "die":
                os._exit(1)
            time.sleep(600)  # hang: rank 0 must give up after timeout_s

    x = torch.from_numpy(np.load(out / "x.npy"))
    fit_distributed(MarginalPPCA(x.shape[1], 2), x, batch_size=64, num_steps=10_000, lr=0.05,
                    seed=3, progress=False, checkpoint=out / "ckpt.pt", checkpoint_every=3,
                    timeout_s=5, on_step=on_step)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PPL_MODELS_SMOKE="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _torchrun(script, *args, timeout=240):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(script),
        *args,
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    return proc, time.monotonic() - start


def _load_worker(path):
    spec = importlib.util.spec_from_file_location("ddp_worker", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path):
    x, xb = _ppca_data(), _binary_data()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "xb.npy", xb)
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER))
    proc, _ = _torchrun(script, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{k}.pt", weights_only=False) for k in range(2)]
    assert [r["world"] for r in ranks] == [2, 2]

    worker = _load_worker(script)
    one_ppca = worker.run_ppca(x, 0)
    one_vae = worker.run_vae(xb, 0)

    # MarginalPPCA: the loss has no sampling and both runs see the same global batches, so
    # the parameters agree to rounding (summation order within a batch differs): 1e-5
    # relative required, measured 4e-16. Rank 1 started from another W: DDP copied rank 0's.
    for r in ranks:
        for name, value in one_ppca["params"].items():
            assert _rel(r["ppca"]["params"][name], value) < 1e-5, name
        np.testing.assert_allclose(r["ppca"]["losses"], one_ppca["losses"], rtol=1e-5)

    # Full batch on uneven shards (256 + 255 rows): the library's shard weights K n_k / N
    # make the two processes' objective the one-process full-data loss, so losses and
    # parameters agree to rounding (1e-8 relative required). Measured with the weight
    # replaced by 1 (another objective): 1e-5 relative apart, 1000x the bound.
    one_full = worker.run_ppca_full(x, 0)
    for r in ranks:
        np.testing.assert_allclose(r["ppca_full"]["losses"], one_full["losses"], rtol=1e-8)
        for name, value in one_full["params"].items():
            assert _rel(r["ppca_full"]["params"][name], value) < 1e-8, name

    # Every rank holds the same VAE, bit for bit (identical all-reduced gradients).
    for key, value in ranks[0]["vae"]["state"].items():
        assert torch.equal(ranks[1]["vae"]["state"][key], value), key
    np.testing.assert_array_equal(ranks[0]["vae"]["losses"], ranks[1]["vae"]["losses"])
    # VAE: z is drawn with seed + rank on each process, so the draws (and hence the
    # trajectories) differ from the one-process run, but both runs are draws of the same
    # stochastic process on the same global batches. Step t's loss difference d_t therefore
    # has mean zero; the same batches cancel the batch-to-batch variation. Over the last 100
    # steps, 10 block means of 10 steps (blocks absorb the correlation between neighbouring
    # steps) give the standard error; |mean d| must be within 4 standard errors.
    d = np.asarray(ranks[0]["vae"]["losses"][-100:]) - np.asarray(one_vae["losses"][-100:])
    blocks = d.reshape(10, 10).mean(1)
    se = blocks.std(ddof=1) / np.sqrt(10)
    assert abs(d.mean()) <= 4 * se, (d.mean(), se)
    # The check has teeth: 4 SE is far below the loss itself (a wrong N/B scaling on either
    # side would shift it by a factor of 2).
    final = float(np.mean(one_vae["losses"][-100:]))
    assert 4 * se < 0.05 * final

    # Distributed moments: the closed form from the all-gathered moments equals the
    # in-memory closed form (float64; different summation order only): 1e-10 relative.
    ref = ppca.closed_form(x, 2)
    for r in ranks:
        for key in ("cf", "cf_uneven"):
            got = ppca.PPCAParams(**r[key])
            assert _rel(ppca.covariance(got), ppca.covariance(ref)) < 1e-10
            assert _rel(got.mu, ref.mu) < 1e-10
        ev = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1][:3]
        np.testing.assert_allclose(r["pca"]["explained_variance"], ev, rtol=1e-10)

    # The train command under torchrun: rank 0 wrote the summary; its loss is the
    # one-process loss of the same run (the command builds MarginalPPCA(seed=3)).
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["num_steps"] == 24
    assert "final loss" in proc.stdout
    m = MarginalPPCA(6, 2, seed=3)
    fit = fit_distributed(m, x, **worker.PPCA)
    assert abs(summary["final_loss"] - fit.losses[-1]) <= 1e-8 * abs(fit.losses[-1])


@pytest.mark.slow
def test_torchrun_dead_rank_stops_the_run_and_the_checkpoint_survives(tmp_path):
    x = _ppca_data(n=256)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "failing.py"
    script.write_text(textwrap.dedent(_FAILING))
    # Rank 1 exits at step 7. torchrun's agent stops the other worker and exits non-zero;
    # without the agent, rank 0's next all-reduce fails (connection closed) or times out
    # (timeout_s=5). The subprocess timeout is the "does not hang" bound.
    proc, _seconds = _torchrun(script, str(tmp_path), "die", timeout=180)
    assert proc.returncode != 0
    # Rank 0 wrote checkpoints at steps 3 and 6; it could not finish step 8 (it needs rank
    # 1's gradients), and step 7 is not a multiple of 3.
    state = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert state["step"] == 6 and state["world_size"] == 2 and len(state["losses"]) == 6
    m = MarginalPPCA(6, 2)
    m.load_state_dict(state["module"])
    # Resuming in one process from the two-process checkpoint is the one-process run: the
    # loss has no sampling, and the checkpoint's first 6 steps differ from one-process
    # steps by rounding only (1e-8 relative leaves room for that rounding to grow).
    kw = dict(batch_size=64, lr=0.05, seed=3, progress=False)
    fit = fit_distributed(m, x, num_steps=12, resume=tmp_path / "ckpt.pt", **kw)
    ref = MarginalPPCA(6, 2)
    fit_ref = fit_distributed(ref, x, num_steps=12, **kw)
    np.testing.assert_allclose(fit.losses, fit_ref.losses, rtol=1e-8)
    assert _rel(ppca.covariance(m.params()), ppca.covariance(ref.params())) < 1e-8


@pytest.mark.slow
def test_hung_rank_makes_the_other_raise_after_the_timeout(tmp_path):
    # Without torchrun's agent (as on another node), a peer that hangs must not hang the
    # others: rank 0's all-reduce gives up after timeout_s=5 with a clear error.
    x = _ppca_data(n=256)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "failing.py"
    script.write_text(textwrap.dedent(_FAILING))
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = dict(
            _env(),
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path), "hang"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        _, err = procs[0].communicate(timeout=180)
    finally:
        procs[1].kill()
        procs[1].communicate()
    assert procs[0].returncode != 0
    assert "rank 0 of 2: a collective operation failed at step 7" in err
    assert "another process probably died or hangs" in err and "timeout_s=5" in err
    assert torch.load(tmp_path / "ckpt.pt", weights_only=False)["step"] == 6
