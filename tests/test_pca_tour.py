"""The PCA topic's tour section and its figures."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch

from ppl_models import pca, plots
from ppl_models.tour import pca as pca_tour

matplotlib.use("Agg")


def test_tour_section_rows_within_tolerance_and_figures_written(tmp_path, monkeypatch):
    monkeypatch.delenv("PPL_MODELS_MNIST", raising=False)
    s = pca_tour.section(tmp_path, quick=True)
    assert s.topic == "pca"
    # The rows: eigenvalues vs numpy, PRML 12.18, projector vs scikit-learn,
    # EM vs eigh, SVI vs closed form, each with the tolerance.
    tolerances = {
        (r.method.split(" ")[0], r.reference.split(" ")[0]): r.tolerance for r in s.agreement
    }
    assert tolerances[("pca.fit", "numpy")] == 1e-10
    assert tolerances[("mean", "sum")] == 1e-10
    assert tolerances[("pca.fit", "scikit-learn")] == 1e-8
    assert tolerances[("EM", "pca.fit")] == 1e-6
    assert tolerances[("Pyro", "pca.fit")] == 1e-3
    for row in s.agreement:
        assert np.isfinite(row.error) and row.error <= row.tolerance, row
    for name in s.figures:
        assert (tmp_path / name).stat().st_size > 0
    # Every figure the markdown shows was written.
    for name in re.findall(r"\]\(([^)]+\.png)\)", s.markdown):
        assert (tmp_path / name).exists(), name
    assert set(s.losses) == {"svi_lbfgs_M2"} and all(np.isfinite(list(s.losses.values())))


def test_projection_figure_and_bad_input():
    z = torch.randn(30, 2)
    labels = torch.arange(30) % 3
    fig = plots.plot_pca_projection(z, labels)
    ax = fig.axes[0]
    assert len(ax.collections) == 3  # one scatter per class
    assert sum(len(c.get_offsets()) for c in ax.collections) == 30
    with pytest.raises(ValueError, match="z must have shape"):
        plots.plot_pca_projection(torch.randn(30, 3), labels)
    with pytest.raises(ValueError, match="z and labels must have the same length"):
        plots.plot_pca_projection(z, labels[:10])
    matplotlib.pyplot.close("all")


def test_agreement_figure_and_bad_input():
    x = torch.randn(100, 5, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.2])
    lam = pca.fit(x, 5).explained_variance.numpy()
    fig = plots.plot_pca_agreement(lam, {"svd": pca.fit(x, 3, method="svd").explained_variance})
    left, right = fig.axes
    assert len(left.lines) == 2 and len(right.lines) == 1
    # Relative errors of a float64 SVD against eigh: rounding (floored at 1e-17 for zeros).
    assert np.all(right.lines[0].get_ydata() < 1e-12)
    with pytest.raises(ValueError, match="has more values than reference"):
        plots.plot_pca_agreement(lam[:2], {"svd": lam})
    matplotlib.pyplot.close("all")
