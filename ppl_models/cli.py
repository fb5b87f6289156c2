"""The ``ppl-models`` command (also ``python -m ppl_models``).

ppl-models tour [--quick] [--out DIR] [--topics T ...]
"""

from __future__ import annotations

import argparse
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _build_parser().parse_args(argv)
    if args.command == "tour":
        from .tour import run_tour

        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        run_tour(args.out, quick=args.quick, topics=args.topics, log=log)
    return 0
