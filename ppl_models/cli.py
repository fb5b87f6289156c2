"""The ``ppl-models`` command (also ``python -m ppl_models``).

ppl-models tour [--quick] [--out DIR] [--topics T ...]
ppl-models train {ppca,vae} --data PATH.npy [--out DIR] [...]   (also under torchrun)
"""

from __future__ import annotations

import argparse
import os
import sys


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
        "--batch-size", type=int, default=None, help="global batch (default: all rows)"
    )
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=None, help="epochs (default: 10)")
    length.add_argument("--steps", type=int, default=None, help="steps instead of epochs")
    train.add_argument("--lr", type=float, default=None, help="Adam's learning rate")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=100)
    train.add_argument("--resume", default=None, help="a checkpoint.pt to continue from")
    train.add_argument(
        "--timeout", type=float, default=300.0, help="seconds a process waits for a peer"
    )
    train.add_argument("--progress", action="store_true", help="rank 0's progress bar")


def _train(args: argparse.Namespace) -> int:
    from .distributed import train

    summary = train(
        args.topic,
        args.data,
        args.out,
        latent_dim=args.latent_dim,
        hidden=tuple(args.hidden),
        likelihood=args.likelihood,
        loss=args.loss,
        batch_size=args.batch_size,
        num_steps=args.steps,
        epochs=args.epochs,
        lr=args.lr,
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
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    # The command is a program, and chooses its process's OpenMP policy (the library, when
    # imported, leaves the environment alone): alternating small torch and numpy/scipy
    # calls on few cores is several times slower while idle OpenMP threads busy-wait
    # (REFERENCES.md, "Thread pools"). It takes effect only before torch loads, hence
    # first thing here, and only where the user has not chosen otherwise.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = _build_parser().parse_args(argv)
    if args.command == "tour":
        from .tour import run_tour

        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        run_tour(args.out, quick=args.quick, topics=args.topics, log=log)
    elif args.command == "train":
        return _train(args)
    return 0
