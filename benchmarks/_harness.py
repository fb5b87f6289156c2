"""The measuring harness every benchmark uses.

A benchmark runs the project's method and its baseline in the same process, interleaved
(A B A B ... with the order flipped every repeat, so that drifting machine load hits both
alike), several repeats, and reports the ratio method / baseline per repeat: its median and
its spread (min-max over repeats). Absolute seconds drift 20-30% between runs on a shared
2-core machine; ratios of interleaved runs drift much less.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    """One line of the benchmark table."""

    benchmark: str
    case: str
    method: str
    baseline: str
    ratio_median: float
    ratio_min: float
    ratio_max: float
    method_seconds: float
    baseline_seconds: float
    repeats: int
    unit: str = "s"
    note: str = ""


def interleave(
    candidates: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each candidate ``repeats`` times, interleaved, after ``warmup`` untimed calls.

    Returns the list of wall-clock seconds per candidate.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            t0 = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def ratio_row(
    benchmark: str,
    case: str,
    method: str,
    baseline: str,
    method_times: list[float],
    baseline_times: list[float],
    unit: str = "s",
    note: str = "",
) -> Row:
    """Summarise paired timings as the per-repeat ratio method / baseline."""
    ratios = [m / b for m, b in zip(method_times, baseline_times, strict=True)]
    return Row(
        benchmark=benchmark,
        case=case,
        method=method,
        baseline=baseline,
        ratio_median=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        method_seconds=statistics.median(method_times),
        baseline_seconds=statistics.median(baseline_times),
        repeats=len(ratios),
        unit=unit,
        note=note,
    )


def markdown_table(rows: list[Row]) -> str:
    """The rows as a markdown table (ratio < 1: the method is faster)."""
    head = (
        "| benchmark | case | method | baseline | ratio (median) | ratio (min-max) "
        "| method | baseline | repeats | note |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r.benchmark} | {r.case} | {r.method} | {r.baseline} | {r.ratio_median:.3f} "
        f"| {r.ratio_min:.3f}-{r.ratio_max:.3f} | {_fmt(r.method_seconds, r.unit)} "
        f"| {_fmt(r.baseline_seconds, r.unit)} | {r.repeats} | {r.note} |\n"
        for r in rows
    )
    return head + body


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.3f} s"
    return f"{value:.4g} {unit}"
