"""The Bayesian PCA topic's tour section and its figures."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch

from ppl_models import plots
from ppl_models.tour import bayesian_pca as bpca_tour

matplotlib.use("Agg")


def test_tour_section_rows_within_tolerance_and_figures_written(tmp_path):
    s = bpca_tour.section(tmp_path, quick=True)
    assert s.topic == "bayesian_pca" and len(s.agreement) == 3
    for row in s.agreement:
        assert np.isfinite(row.error) and row.error <= row.tolerance, row
    for name in s.figures:
        assert (tmp_path / name).stat().st_size > 0
    for name in re.findall(r"\]\(([^)]+\.png)\)", s.markdown):
        assert (tmp_path / name).exists(), name
    assert all(np.isfinite(list(s.losses.values())))


def test_hinton_and_alpha_figures_and_bad_input():
    w = torch.tensor([[1.0, -0.5], [0.0, 0.2]])
    fig = plots.plot_hinton({"a": w, "b": 2 * w})
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 4
    with pytest.raises(ValueError, match="must be a 2-D matrix"):
        plots.plot_hinton({"a": torch.ones(3)})
    with pytest.raises(ValueError, match="at least one matrix"):
        plots.plot_hinton({})
    hist = torch.tensor([[1.0, 2.0], [1.0, float("inf")]])
    fig = plots.plot_alpha_history(hist, torch.tensor([-3.0, -2.0]))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="alpha_history must be a 2-D matrix"):
        plots.plot_alpha_history(torch.ones(3))
    matplotlib.pyplot.close("all")
