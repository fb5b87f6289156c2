"""Every tutorial runs as a plain script in smoke mode, draws its figures and checks its
agreement numbers (inference against the closed form)."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

TUTORIALS = sorted((Path(__file__).parent.parent / "tutorials").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_smoke_mode_and_agrees_with_the_closed_form(path, tmp_path, monkeypatch):
    monkeypatch.setenv("PPL_MODELS_SMOKE", "1")
    monkeypatch.setenv("PPL_MODELS_OUT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(path), run_name="__main__")
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert figures, f"{path.name} drew no figure"
    # Each tutorial records its agreements between inference and the closed form as
    # (what, error, tolerance), with the tolerance's reason beside it in the tutorial, and
    # asserts them itself; here they are checked again, so that a tutorial that stopped
    # recording them (or recorded a NaN) fails too.
    rows = namespace.get("agreement")
    assert rows, f"{path.name} records no agreement with a closed form"
    for what, error, tolerance in rows:
        assert math.isfinite(error) and math.isfinite(tolerance), (path.name, what)
        assert error <= tolerance, (path.name, what, error, tolerance)


def test_tutorials_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in TUTORIALS]
    assert numbers == sorted(set(numbers))
