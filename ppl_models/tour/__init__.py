"""``ppl-models tour``: every topic on the bundled data, in the order of the line of thought.

Each topic contributes a :class:`~ppl_models.tour._section.Section` from
``ppl_models.tour.<topic>.section(out_dir, quick)``; :func:`run_tour` writes
``report.md`` (prose, figures, the table of inference-versus-closed-form agreement) and
``summary.json`` (per topic: agreement rows, final losses, seconds).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._files import atomic_write
from ._section import Agreement, Section

__all__ = ["TOPICS", "Agreement", "Section", "run_tour"]

# The line of thought (DESIGN.md); a topic appears here once its section exists.
TOPICS: tuple[str, ...] = (
    "gaussian",
    "regression",
    "logistic",
    "pca",
    "autoencoder",
    "ppca",
    "bayesian_pca",
    "vae",
    "workflow",
)


@contextlib.contextmanager
def _quiet_pyro_logs() -> Iterator[None]:
    """Pyro's INFO lines ("Guessed max_plate_nesting = 2") are not part of the report;
    warnings and errors still show. The logger's level is restored afterwards."""
    logger = logging.getLogger("pyro")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _ratio(row: Agreement) -> float:
    """Error over tolerance; an exact requirement (tolerance 0) is met only by error 0."""
    if row.tolerance > 0:
        return row.error / row.tolerance
    return 0.0 if row.error == 0 else float("inf")


def _agreement_table(rows: Sequence[Agreement]) -> str:
    if not rows:
        return ""
    lines = [
        "| quantity | inference | reference | error | metric | tolerance (tests) | within |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = "yes" if r.error <= r.tolerance else "**no**"
        lines.append(
            f"| {r.quantity} | {r.method} | {r.reference} | {r.error:.3g} | {r.metric} "
            f"| {r.tolerance:.3g} | {ok} |"
        )
    return "\n".join(lines) + "\n"


def run_tour(
    out_dir: str | os.PathLike[str] = "tour_out",
    *,
    quick: bool = False,
    topics: Sequence[str] | None = None,
    log=print,
) -> dict:
    """Run the tour and write ``out_dir/report.md`` and ``out_dir/summary.json``.

    Parameters
    ----------
    out_dir : path
        Output folder (created).
    quick : bool
        Seconds per topic instead of about a minute: fewer steps and draws.
    topics : sequence of str, optional
        A subset of :data:`TOPICS`, in any order (run in the tour's order).
    log : callable
        Where progress lines go.

    Returns
    -------
    dict
        The summary written to ``summary.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = list(TOPICS) if topics is None else list(topics)
    unknown = [t for t in chosen if t not in TOPICS]
    if unknown:
        raise ValueError(f"topics must be among {list(TOPICS)}; got unknown {unknown}")
    sections: list[Section] = []
    t0 = time.perf_counter()
    for topic in TOPICS:
        if topic not in chosen:
            continue
        log(f"[tour] {topic} ...")
        module = importlib.import_module(f".{topic}", __name__)
        start = time.perf_counter()
        with _quiet_pyro_logs():
            section = module.section(out, quick)
        section.seconds = time.perf_counter() - start
        sections.append(section)
        worst = max((_ratio(r) for r in section.agreement), default=0.0)
        log(f"[tour] {topic}: {section.seconds:.1f} s, worst error/tolerance {worst:.3g}")
    total = time.perf_counter() - t0

    parts = [
        "# ppl_models tour\n",
        f"{'Quick mode. ' if quick else ''}{len(sections)} topics in {total:.1f} s. "
        "Each topic fits its Pyro model and sets the result beside the closed-form or "
        "classical solution; the tables give the distance and the tolerance the test suite "
        "holds it to.\n",
    ]
    all_rows = []
    for s in sections:
        parts.append(f"\n## {s.title}\n\n{s.markdown.strip()}\n")
        if s.agreement:
            parts.append("\n" + _agreement_table(s.agreement))
        all_rows.extend((s.title, r) for r in s.agreement)
        if s.losses:
            losses = ", ".join(f"{k}: {v:.6g}" for k, v in s.losses.items())
            parts.append(f"\nFinal losses: {losses}. Time: {s.seconds:.1f} s.\n")
    if all_rows:
        parts.append("\n## Summary: inference against the mathematics\n\n")
        parts.append(
            "| topic | quantity | inference | reference | error | tolerance |\n"
            "|---|---|---|---|---|---|\n"
        )
        parts.extend(
            f"| {title} | {r.quantity} | {r.method} | {r.reference} | {r.error:.3g} "
            f"| {r.tolerance:.3g} |\n"
            for title, r in all_rows
        )
    summary = {
        "quick": quick,
        "seconds": total,
        "topics": {s.topic: s.to_json() for s in sections},
    }
    atomic_write(out / "report.md", lambda f: f.write("".join(parts).encode("utf-8")))
    summary_text = json.dumps(summary, indent=2, default=float) + "\n"
    atomic_write(out / "summary.json", lambda f: f.write(summary_text.encode("utf-8")))
    log(f"[tour] wrote {out / 'report.md'} and {out / 'summary.json'} ({total:.1f} s)")
    return summary
