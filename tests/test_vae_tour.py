"""The VAE topic's tour section and its figures."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch

from ppl_models import plots
from ppl_models.tour import vae as vae_tour

matplotlib.use("Agg")


def test_tour_section_rows_within_tolerance_and_figures_written(tmp_path):
    s = vae_tour.section(tmp_path, quick=True)
    assert s.topic == "vae"
    tolerances = {r.quantity.split(" (")[0]: r.tolerance for r in s.agreement}
    # The tolerances: 0.5% (ELBO vs PPCA), 5% (C), 3 standard errors.
    assert tolerances["ELBO per point"] == 5e-3
    assert tolerances["W W^T + sigma^2 I"] == 5e-2
    assert tolerances["ELBO estimate, 100 held-out digits"] == 3.0
    for row in s.agreement:
        assert np.isfinite(row.error) and row.error <= row.tolerance, row
    for name in s.figures:
        assert (tmp_path / name).stat().st_size > 0
    for name in re.findall(r"\]\(([^)]+\.png)\)", s.markdown):
        assert (tmp_path / name).exists(), name
    assert all(np.isfinite(list(s.losses.values())))


def test_vae_figures():
    fig = plots.plot_vae_training(
        {"a": np.linspace(5, 1, 50), "b": np.linspace(6, 1, 50)},
        window=5,
        validation={"a": ([10, 20], [4.0, 3.0])},
    )
    assert len(fig.axes[0].lines) == 5  # raw + smoothed per run, one validation line
    fig = plots.plot_vae_bounds([1, 10], {"iw": [1.0, 2.0]}, {"elbo": 0.5})
    assert len(fig.axes[0].lines) == 2
    matplotlib.pyplot.close("all")
    with pytest.raises(ValueError, match=r"ks and estimates\['iw'\] must have the same length"):
        plots.plot_vae_bounds([1, 10], {"iw": torch.zeros(3)})
