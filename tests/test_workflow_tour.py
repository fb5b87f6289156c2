"""The workflow topic's tour section: every agreement row within its tolerance, and every
figure the markdown shows written."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from ppl_models.tour import workflow as workflow_tour

matplotlib.use("Agg")


def test_tour_section_rows_within_tolerance_and_figures_written(tmp_path):
    s = workflow_tour.section(tmp_path, quick=True)
    assert s.topic == "workflow"
    quantities = [r.quantity for r in s.agreement]
    assert "degree chosen, N = 100" in quantities
    assert "PPCA latent dimension, noisy 4x4 digits" in quantities
    assert "workflow_ppca_dim.png" in s.figures
    for row in s.agreement:
        assert np.isfinite(row.error) and row.error <= row.tolerance, row
    for name in s.figures:
        assert (tmp_path / name).stat().st_size > 0
    for name in re.findall(r"\]\(([^)]+\.png)\)", s.markdown):
        assert (tmp_path / name).exists(), name


@pytest.mark.slow
def test_example_workflow_script_writes_a_report(tmp_path):
    import runpy

    script = Path(__file__).parent.parent / "examples" / "workflow_csv.py"
    main = runpy.run_path(str(script))["main"]
    report = main(["--degrees", "1", "3", "--samples", "100", "--out", str(tmp_path)])
    text = report.read_text()
    assert "## Comparison (PSIS-LOO)" in text
    for name in re.findall(r"\]\(([^)]+\.png)\)", text):
        assert (tmp_path / name).stat().st_size > 0, name
