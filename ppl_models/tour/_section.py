"""The record one topic contributes to the tour report."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# A markdown image, ![alt](file): the report embeds a section's figures this way.
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


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
    """A topic's part of the tour: markdown body, agreement rows and final losses; the
    runner adds the seconds it took.

    The figures are the images the markdown embeds (file names relative to the tour's
    output folder), so the report and ``summary.json`` cannot list different ones.
    """

    topic: str
    title: str
    markdown: str
    agreement: list[Agreement] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def figures(self) -> list[str]:
        """The figure files, in the order the markdown shows them."""
        return _IMAGE.findall(self.markdown)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("markdown")
        d["figures"] = self.figures
        return d
