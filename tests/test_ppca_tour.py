"""The PPCA topic's tour section and its figures."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch

from ppl_models import plots, ppca
from ppl_models.datasets import make_ppca_data
from ppl_models.tour import ppca as ppca_tour

matplotlib.use("Agg")


def test_tour_section_rows_within_tolerance_and_figures_written(tmp_path):
    s = ppca_tour.section(tmp_path, quick=True)
    assert s.topic == "ppca"
    tolerances = {
        (r.quantity.split(" (")[0], r.method.split(" ")[0]): r.tolerance for r in s.agreement
    }
    # The tolerances of the tests: test_ppca.py (closed form vs scikit-learn, EM, SVI) and
    # test_ppca_select.py (Minka vs scikit-learn, the chosen M, the classifier).
    assert tolerances[("model covariance C = WWᵀ + σ²I", "ppca.closed_form")] == 1e-8
    assert tolerances[("maximised log-likelihood ln L*", "ppca.em")] == 1e-8
    assert tolerances[("maximised log-likelihood ln L*", "MarginalPPCA,")] == 1e-4
    assert tolerances[("chosen M", "minka,")] == 0.0
    for row in s.agreement:
        assert np.isfinite(row.error) and row.error <= row.tolerance, row
    for name in s.figures:
        assert (tmp_path / name).stat().st_size > 0
    for name in re.findall(r"\]\(([^)]+\.png)\)", s.markdown):
        assert (tmp_path / name).exists(), name
    assert set(s.losses) == {"MarginalPPCA_lbfgs"} and np.isfinite(s.losses["MarginalPPCA_lbfgs"])
    # The classifier beats naive Bayes on the digits (the claim, in the report).
    acc = dict(
        re.findall(r"\| (PPCA classifier \(M = \d+\)|GaussianNB|LDA) \| ([0-9.]+) \|", s.markdown)
    )
    ppca_acc = next(float(v) for k, v in acc.items() if k.startswith("PPCA"))
    assert ppca_acc > float(acc["GaussianNB"])


def test_ppca_figures_and_bad_input():
    data = make_ppca_data(200, 4, 1, seed=0)
    fig = plots.plot_ppca_generative(data.x, data.params)
    assert len(fig.axes[0].collections) == 1
    with pytest.raises(ValueError, match="x must have shape"):
        plots.plot_ppca_generative(data.x[:, :1], data.params)
    mean, cov = ppca.posterior(data.x, data.params)
    plots.plot_ppca_posterior(data.z, mean, cov.diagonal().sqrt())
    with pytest.raises(ValueError, match="same length"):
        plots.plot_ppca_posterior(data.z[:5], mean, cov.diagonal().sqrt())
    r = ppca.em(data.x, 1, max_iter=20)
    fig = plots.plot_ppca_em({"em": r.log_likelihood}, float(r.log_likelihood[-1]) + 1.0)
    assert len(fig.axes[0].lines) == 1
    sel = {"bic": ppca.select_latent_dim(data.x, "bic")}
    fig = plots.plot_ppca_selection(sel)
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_ppca_selection({})
    x = torch.rand(3, 64)
    xm = x.clone()
    xm[:, :5] = float("nan")
    fig = plots.plot_ppca_imputation(x, xm, x)
    assert len(fig.axes) == 9
    with pytest.raises(ValueError, match="one shape"):
        plots.plot_ppca_imputation(x, xm[:2], x)
    fig = plots.plot_ppca_comparison({"a": {"x": 0.9, "y": 0.8}, "b": {"u": -1.0}})
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_ppca_comparison({})
    matplotlib.pyplot.close("all")
