"""ppl_models: classic probabilistic models in Pyro, each checked against its closed form.

The public API is re-exported here lazily (PEP 562): ``import ppl_models`` costs nothing,
and a submodule such as :mod:`ppl_models._arviz` (numpy + ArviZ only) imports without
torch, which keeps the ArviZ-only test job light. Importing it changes no global
setting: neither ``pyro.settings`` nor the environment (the ``ppl-models`` command sets
``OMP_WAIT_POLICY=PASSIVE`` for its own process; see the README).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it. Closed forms whose names recur across topics
# (``mle``, ``posterior``, ``log_evidence``) are reached through their submodule.
_EXPORTS = {
    "FitError": "inference",
    "FitResult": "inference",
    "data_plate": "inference",
    "fit_svi": "inference",
    "local_pyro_method": "inference",
    "run_nuts": "inference",
    "BayesianGaussian": "gaussian",
    "Gaussian": "gaussian",
    "GaussianParams": "gaussian",
    "NormalGammaParams": "gaussian",
    "LinearRegression": "regression",
    "RegressionParams": "regression",
    "LogisticParams": "logistic",
    "LogisticRegression": "logistic",
    "SeparableDataWarning": "logistic",
    "Autoencoder": "autoencoder",
    "AutoencoderParams": "autoencoder",
    "PCA": "pca",
    "PCAParams": "pca",
    "LatentPPCA": "ppca",
    "MarginalPPCA": "ppca",
    "PPCAParams": "ppca",
    "BPCAResult": "bayesian_pca",
    "BayesianPCA": "bayesian_pca",
    "VAE": "vae",
    "check_guide": "workflow",
    "compare": "workflow",
    "posterior_predictive": "workflow",
    "prior_predictive": "workflow",
    "to_inference_data": "workflow",
    "load": "persistence",
    "save": "persistence",
}
_SUBMODULES = {
    "autoencoder",
    "bayesian_pca",
    "datasets",
    "distributed",
    "estimators",
    "gaussian",
    "inference",
    "logistic",
    "pca",
    "persistence",
    "plots",
    "ppca",
    "regression",
    "vae",
    "workflow",
}

# Old names kept for one release: they resolve to callables that warn (FutureWarning).
_DEPRECATED = {"pyro_method": "inference"}

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS or name in _DEPRECATED:
        home = _EXPORTS.get(name) or _DEPRECATED[name]
        value = getattr(importlib.import_module(f".{home}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'ppl_models' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
