"""The ``ppl-models`` command (also ``python -m ppl_models``).

ppl-models tour [--quick] [--out DIR] [--topics T ...]
ppl-models train {ppca,vae} --data PATH.npy [--out DIR] [...]   (also under torchrun)

As a command, a user error (a missing or unreadable ``--data`` file, a bad value) is one
line on standard error and exit status 2; called from Python with ``main(argv)`` it is the
library's exception.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._files import atomic_write

# What `train` runs when neither --steps nor --epochs is given; --lr and --batch-size
# replace the recipe's where given. Measured on the bundled digits (1797 x 64, saved to
# .npy), 2 cores: PPCA (M = 2, full batch) is within 1e-6 of its closed-form
# log-likelihood after about 2000 Adam steps at lr 0.3 (the default 0.01 is still 7
# nats per point away after 3000: the parameters have the data's scale, ~10), about
# 20 s; the VAE (binarised digits, hidden 400) flattens, within its minibatch noise,
# in about 100 epochs of batches of 128, and 200 epochs take about 25 s.
_DEFAULTS = {
    "ppca": {"steps": 3000, "epochs": None, "lr": 0.3, "batch_size": None},
    "vae": {"steps": None, "epochs": 200, "lr": None, "batch_size": 128},
}
# The convergence test after training (see _convergence): fit_svi's defaults for Adam.
_WINDOW = 100
_TOL = 1e-6


def _build_parser() -> argparse.ArgumentParser:
    from .tour import TOPICS

    parser = argparse.ArgumentParser(
        prog="ppl-models",
        description="Classic probabilistic models in Pyro, checked against their closed forms.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tour = sub.add_parser(
        "tour",
        help="run every topic on the bundled data; write report.md, figures, summary.json",
    )
    tour.add_argument("--quick", action="store_true", help="seconds per topic (fewer steps)")
    tour.add_argument("--out", default="tour_out", help="output folder (default: tour_out)")
    tour.add_argument(
        "--topics", nargs="+", choices=list(TOPICS), default=None, help="a subset of topics"
    )
    _add_train(sub)
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="fit one topic on a .npy file; data-parallel when launched by torchrun",
        description=(
            "Fit a topic on a memory-mapped .npy file (N, D). Launched as "
            "'torchrun --nproc_per_node=K -m ppl_models train ...', K processes each read "
            "their share of every global batch and average their gradients; rank 0 writes "
            "DIR/model.pt, params.pt, checkpoint.pt and summary.json."
        ),
    )
    train.add_argument("topic", choices=["ppca", "vae"])
    train.add_argument("--data", required=True, help="a .npy file of shape (N, D)")
    train.add_argument("--out", default="train_out", help="output folder (default: train_out)")
    train.add_argument("--latent-dim", type=int, default=2, help="M (default: 2)")
    train.add_argument(
        "--hidden", type=int, nargs="*", default=[400], help="vae: hidden widths (default: 400)"
    )
    train.add_argument(
        "--likelihood", choices=["bernoulli", "normal"], default="bernoulli", help="vae only"
    )
    train.add_argument("--loss", choices=["trace", "meanfield"], default="trace")
    train.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="global batch (default: all rows; vae without --steps/--epochs: 128)",
    )
    length = train.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs", type=int, default=None, help="epochs (default: ppca 3000 steps, vae 200 epochs)"
    )
    length.add_argument("--steps", type=int, default=None, help="steps instead of epochs")
    train.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam's learning rate (default: 0.01; ppca without --steps/--epochs: 0.3)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=100)
    train.add_argument("--resume", default=None, help="a checkpoint.pt to continue from")
    train.add_argument(
        "--timeout", type=float, default=300.0, help="seconds a process waits for a peer"
    )
    train.add_argument("--progress", action="store_true", help="rank 0's progress bar")


def _check_data(path: str) -> None:
    """Refuse a missing or unreadable ``--data`` file before any process starts work."""
    import numpy as np

    p = Path(path)
    if not p.exists():
        raise ValueError(f"data: no such file: {p}")
    if p.is_dir():
        raise ValueError(f"data: {p} is a folder, not a .npy file")
    try:
        arr = np.load(p, mmap_mode="r")
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if "pickle" in first:  # numpy's message suggests unpickling, which is never done
            first = "not a .npy array file"
        raise ValueError(f"data: cannot read {p} as a .npy array ({first})") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"data: {p} is not a single .npy array (a .npz archive?)")


def _convergence(losses: list[float]) -> tuple[bool, str]:
    r"""Whether the loss has stopped falling, and a sentence that says how far it is.

    The means :math:`m_{k-1}, m_k` of the last two windows of ``_WINDOW`` steps are
    compared, as ``fit_svi`` does: converged when :math:`|m_k - m_{k-1}| \le \max(
    \mathrm{tol} \max(|m_k|, 1),\ 3\,\mathrm{se})`. The standard error
    :math:`\mathrm{se}` of the difference comes from the step-to-step noise of a minibatch
    loss, :math:`\hat\sigma^2 = \operatorname{var}(\ell_{t+1} - \ell_t) / 2` over the
    two windows (differences remove a smooth trend; for a full-batch deterministic loss it
    is about 0 and the relative ``tol`` decides).
    """
    import numpy as np

    loss = np.asarray(losses, dtype=np.float64)
    w = min(_WINDOW, len(loss) // 2)
    if w < 2:
        return False, f"{len(loss)} step(s) are too few to tell"
    old, new = loss[-2 * w : -w].mean(), loss[-w:].mean()
    sigma2 = np.var(np.diff(loss[-2 * w :]), ddof=1) / 2
    se = math.sqrt(2 * sigma2 / w)
    change = abs(new - old)
    scale = max(abs(new), 1.0)
    converged = change <= max(_TOL * scale, 3 * se)
    how = (
        f"the mean loss of the last {w} steps differs from that of the {w} before by "
        f"{change / scale:.2g} (relative)"
    )
    if se > 0:
        how += f", {change / se:.1f} standard errors of its minibatch noise"
    return bool(converged), how


def _train(args: argparse.Namespace) -> int:
    _check_data(args.data)
    steps, epochs, lr, batch_size = args.steps, args.epochs, args.lr, args.batch_size
    if steps is None and epochs is None:
        recipe = _DEFAULTS[args.topic]
        steps, epochs = recipe["steps"], recipe["epochs"]
        lr = recipe["lr"] if lr is None else lr
        if batch_size is None and recipe["batch_size"] is not None:
            # A global batch is a multiple of the processes (torchrun sets WORLD_SIZE).
            world = max(1, int(os.environ.get("WORLD_SIZE", "1")))
            batch_size = -(-recipe["batch_size"] // world) * world
    summary = train(
        args.topic,
        args.data,
        args.out,
        latent_dim=args.latent_dim,
        hidden=tuple(args.hidden),
        likelihood=args.likelihood,
        loss=args.loss,
        batch_size=batch_size,
        num_steps=steps,
        epochs=epochs,
        lr=lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        timeout_s=args.timeout,
        progress=args.progress or None,
    )
    import torch.distributed as tdist

    if not (tdist.is_available() and tdist.is_initialized()) or tdist.get_rank() == 0:
        line = (
            f"final loss {summary['final_loss']:.6g} ({summary['final_loss_per_point']:.6g} "
            f"per point) after {summary['num_steps']} steps on {summary['world_size']} "
            f"process(es), {summary['seconds']:.1f} s; wrote {args.out}"
        )
        if "loglik_per_point" in summary:
            line += (
                f"\nlog-likelihood per point: fitted {summary['loglik_per_point']:.6g}, "
                f"closed form {summary['closed_form_loglik_per_point']:.6g}"
            )
        print(line, flush=True)
        _warn_unless_converged(Path(args.out), summary)
    return 0


def _warn_unless_converged(out: Path, summary: dict) -> None:
    """One line on standard error when training stopped while the loss still fell (read
    from the checkpoint that ``train`` writes last)."""
    import torch

    from .inference.checkpoint import load_checkpoint

    state = load_checkpoint(out / "checkpoint.pt", "checkpoint", torch.device("cpu"), ("losses",))
    converged, how = _convergence([float(v) for v in state["losses"]])
    if not converged:
        print(
            f"ppl-models train: warning: stopped after {summary['num_steps']} steps before the "
            f"loss converged: {how}; train longer (--steps, --epochs) or with a larger --lr",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status.

    With ``argv=None`` (the command line) a ``ValueError`` or ``OSError``, the library's
    errors for bad input, is printed as one line, ``ppl-models COMMAND: error: ...``, and
    the status is 2; with ``argv`` given (a call from Python) it propagates.
    """
    # The command is a program, and chooses its process's OpenMP policy (the library, when
    # imported, leaves the environment alone): alternating small torch and numpy/scipy
    # calls on few cores is several times slower while idle OpenMP threads busy-wait
    # (REFERENCES.md, "Thread pools"). It takes effect only before torch loads, hence
    # first thing here, and only where the user has not chosen otherwise.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = _build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, OSError) as err:
        if argv is not None:
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"ppl-models {args.command}: error: {first}", file=sys.stderr, flush=True)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "tour":
        from .tour import run_tour

        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        run_tour(args.out, quick=args.quick, topics=args.topics, log=log)
    elif args.command == "train":
        return _train(args)
    return 0


# ------------------------------------------------------------------ the train command

TRAIN_TOPICS = ("ppca", "vae")


def _ppca_mean_loglik(params: Any, mom: Any) -> float:
    r"""The mean PPCA log-likelihood over the data from their moments alone:
    :math:`-\frac12[D\ln 2\pi + \ln|C| + \operatorname{tr}(C^{-1}(S/N + \delta\delta^\top))]`,
    :math:`\delta = \bar x - \mu` (memory independent of N)."""
    import torch

    w, mu, s2 = (t.to(torch.float64).cpu() for t in params)
    d = w.shape[0]
    c = w @ w.T + s2 * torch.eye(d, dtype=torch.float64)
    delta = mom.mean.cpu() - mu
    second = mom.scatter.cpu() / mom.n + torch.outer(delta, delta)
    _, logdet = torch.linalg.slogdet(c)
    quad = torch.trace(torch.linalg.solve(c, second))
    return float(-0.5 * (d * math.log(2 * math.pi) + logdet + quad))


def train(
    topic: str,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    latent_dim: int = 2,
    hidden: tuple[int, ...] = (400,),
    likelihood: str = "bernoulli",
    loss: str = "trace",
    batch_size: int | None = None,
    num_steps: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    checkpoint_every: int = 100,
    resume: str | os.PathLike[str] | None = None,
    timeout_s: float = 300.0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """What ``ppl-models train TOPIC --data PATH.npy`` does, with or without ``torchrun``.

    Memory-maps ``data`` (N, D), builds the topic's module
    (:class:`~ppl_models.ppca.MarginalPPCA` or :class:`~ppl_models.vae.VAE`), fits it with
    :func:`~ppl_models.distributed.fit_distributed`, and on rank 0 writes into ``out``:
    ``model.pt`` (the ``state_dict``), ``params.pt`` (the topic's parameters container as a dict),
    ``checkpoint.pt`` and ``summary.json``. For ``ppca`` the summary also holds the mean
    log-likelihood of the fitted parameters and of the closed form
    (:func:`~ppl_models.distributed.closed_form_distributed`), both from the distributed moments.

    Returns
    -------
    dict
        The summary (the same on every process; only rank 0 writes it).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(f"{d}/x.npy", np.random.default_rng(0).standard_normal((128, 4)))
    ...     s = train("ppca", f"{d}/x.npy", f"{d}/out", batch_size=32, epochs=1)
    ...     sorted(p.name for p in Path(f"{d}/out").iterdir())
    ['checkpoint.pt', 'model.pt', 'params.pt', 'summary.json']
    >>> s["num_steps"], s["world_size"]
    (4, 1)
    """
    import numpy as np
    import torch
    from torch import nn

    from .distributed import distributed_moments, fit_distributed, init_distributed, shard_rows
    from .inference.checkpoint import atomic_save
    from .ppca import PPCAParams, closed_form

    if topic not in TRAIN_TOPICS:
        raise ValueError(f"topic must be one of {TRAIN_TOPICS}; got {topic!r}")
    for value, name in ((data, "data"), (out, "out")):
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a file path; got {type(value).__name__}")
    path = Path(data)
    if not path.is_file():
        raise ValueError(f"data: no such file: {path}")
    x = np.load(path, mmap_mode="r")
    if x.ndim != 2:
        raise ValueError(f"data: expected a 2-D array (N, D); got shape {x.shape}")
    if epochs is None and num_steps is None:
        epochs = 10
    rank, world = init_distributed(timeout_s)
    out = Path(out)
    d = int(x.shape[1])
    if topic == "ppca":
        from .ppca import MarginalPPCA

        module: nn.Module = MarginalPPCA(d, latent_dim, seed=seed)
    else:
        from .vae import VAE

        module = VAE(d, latent_dim, hidden=tuple(hidden), likelihood=likelihood, seed=seed)
    fit = fit_distributed(
        module,
        x,
        loss=loss,
        lr=lr,
        batch_size=batch_size,
        num_steps=num_steps,
        epochs=epochs,
        seed=seed,
        checkpoint=out / "checkpoint.pt",
        checkpoint_every=checkpoint_every,
        resume=resume,
        timeout_s=timeout_s,
        progress=progress,
    )
    n = int(x.shape[0])
    summary: dict[str, Any] = {
        "topic": topic,
        "data": str(path),
        "n": n,
        "d": d,
        "world_size": world,
        "batch_size": batch_size,
        "num_steps": fit.num_steps,
        "final_loss": float(fit.losses[-1]),
        "final_loss_per_point": float(fit.losses[-1]) / n,
        "seconds": fit.seconds,
    }
    if topic == "ppca":
        shard = x[shard_rows(n, rank, world)]
        # A shard of fewer than 2 rows (more processes than rows) goes in as a tensor.
        chunks = _MemmapChunks(shard) if len(shard) >= 2 else torch.from_numpy(np.array(shard))
        mom, dtype = distributed_moments(chunks)
        ref = PPCAParams(*(t.to(dtype) for t in closed_form(mom, module.latent_dim)))
        summary["loglik_per_point"] = _ppca_mean_loglik(module.params(), mom)
        summary["closed_form_loglik_per_point"] = _ppca_mean_loglik(ref, mom)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_save(module.state_dict(), out / "model.pt")
        atomic_save(dict(module.params()._asdict()), out / "params.pt")
        text = _json_dumps(summary)
        atomic_write(out / "summary.json", lambda f: f.write(text.encode("utf-8")))
    return summary


def _json_dumps(obj: object) -> str:
    import json

    return json.dumps(obj, indent=2) + "\n"


class _MemmapChunks:
    """A slice of a memory map read as a stream of row chunks (one chunk in memory)."""

    def __init__(self, x: Any, rows: int = 65536):
        self.x, self.rows = x, rows

    def __iter__(self) -> Iterator[Any]:
        import numpy as np
        import torch

        for start in range(0, self.x.shape[0], self.rows):
            yield torch.from_numpy(np.array(self.x[start : start + self.rows]))
