"""Every tutorial runs as a plain script in smoke mode and draws its figures."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

TUTORIALS = sorted((Path(__file__).parent.parent / "tutorials").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("PPL_MODELS_SMOKE", "1")
    monkeypatch.setenv("PPL_MODELS_OUT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert figures, f"{path.name} drew no figure"


def test_tutorials_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in TUTORIALS]
    assert numbers == sorted(set(numbers))
