"""Run every benchmark and write a markdown table.

    python -m benchmarks [--quick] [--only NAME ...] [--out benchmarks/results.md]

Each ``benchmarks/bench_<name>.py`` defines ``run(quick: bool) -> list[Row]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from pathlib import Path

# One BLAS/OpenMP thread pool that does not busy-wait: alternating torch and numpy calls
# on 2 cores is otherwise 8-30x slower (REFERENCES.md, "Thread pools").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._harness import markdown_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run")
    parser.add_argument("--out", default="benchmarks/results.md", help="markdown output")
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    names = sorted(p.stem[len("bench_") :] for p in here.glob("bench_*.py"))
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {names}")
        names = [n for n in names if n in args.only]
    rows = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        rows.extend(module.run(quick=args.quick))
    import torch

    header = (
        f"# Benchmarks\n\nPython {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"
        f"{' (quick mode)' if args.quick else ''}.\n\n"
    )
    text = header + markdown_table(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
