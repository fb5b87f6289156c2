"""The record one topic contributes to the tour report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Agreement:
    """One row of the inference-versus-closed-form table.

    ``error`` is the distance between the two, measured as ``metric`` says (for example
    ``"max relative"`` or ``"in posterior sd"``); ``tolerance`` is the bound the test suite
    holds it to.
    """

    quantity: str
    method: str
    reference: str
    error: float
    metric: str
    tolerance: float


@dataclass
class Section:
    """A topic's part of the tour: markdown body, figure file names (relative to the tour's
    output folder), agreement rows, final losses and seconds."""

    topic: str
    title: str
    markdown: str
    figures: list[str] = field(default_factory=list)
    agreement: list[Agreement] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("markdown")
        return d
