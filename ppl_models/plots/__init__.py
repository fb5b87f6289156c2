"""Matplotlib figures used by the tutorials and the ``ppl-models tour`` report, one module
per topic (:mod:`.gaussian`, :mod:`.regression`, ..., :mod:`.workflow` for the ArviZ
figures) over one shared set of argument rules (:mod:`._common`).

Every function takes data or fitted parameters and returns a ``matplotlib.figure.Figure``;
none of them shows or saves anything, so the caller decides (:func:`finish` does both the
way tutorials want). matplotlib is imported lazily: the library imports without it.
"""

from __future__ import annotations

from ._common import finish, save
from .autoencoder import plot_codes_2d, plot_denoising
from .bayesian_pca import plot_alpha_history, plot_hinton
from .gaussian import plot_gaussian_loglik_surface, plot_normal_gamma_posterior
from .logistic import plot_logistic_predictive
from .pca import (
    plot_pca_agreement,
    plot_pca_components,
    plot_pca_projection,
    plot_pca_reconstructions,
    plot_pca_spectrum,
)
from .ppca import (
    plot_ppca_comparison,
    plot_ppca_em,
    plot_ppca_generative,
    plot_ppca_imputation,
    plot_ppca_posterior,
    plot_ppca_selection,
)
from .regression import plot_curve_fits, plot_evidence, plot_predictive_band, plot_rms_vs_order
from .vae import plot_vae_bounds, plot_vae_training
from .workflow import (
    plot_forest,
    plot_loo_pit,
    plot_loo_pointwise,
    plot_model_choice,
    plot_ppc,
    plot_predictive_overlay,
    plot_trace_rank,
)

__all__ = [
    "finish",
    "plot_alpha_history",
    "plot_codes_2d",
    "plot_curve_fits",
    "plot_denoising",
    "plot_evidence",
    "plot_forest",
    "plot_gaussian_loglik_surface",
    "plot_hinton",
    "plot_logistic_predictive",
    "plot_loo_pit",
    "plot_loo_pointwise",
    "plot_model_choice",
    "plot_normal_gamma_posterior",
    "plot_pca_agreement",
    "plot_pca_components",
    "plot_pca_projection",
    "plot_pca_reconstructions",
    "plot_pca_spectrum",
    "plot_ppc",
    "plot_ppca_comparison",
    "plot_ppca_em",
    "plot_ppca_generative",
    "plot_ppca_imputation",
    "plot_ppca_posterior",
    "plot_ppca_selection",
    "plot_predictive_band",
    "plot_predictive_overlay",
    "plot_rms_vs_order",
    "plot_trace_rank",
    "plot_vae_bounds",
    "plot_vae_training",
    "save",
]
