# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 10 · The models as scikit-learn estimators: pipelines, searches, missing values, files
#
# `ppl_models.estimators` gives six of the library's models the form scikit-learn users
# already know: `fit`, `transform`, `predict`, `score`, `get_params`, numpy in and out,
# pandas column names kept. Each is a thin adapter over the closed forms and algorithms of
# the earlier notebooks, so its numbers are theirs bit for bit:
#
# | estimator | the library's functions |
# |---|---|
# | `PCA(n_components, method="eigh"/"svd"/"em")` | `pca.fit`, `pca.transform` |
# | `PPCA(n_components, method=...)` | `ppca.closed_form`, `ppca.em` (NaN), `MarginalPPCA` |
# | `BayesianPCA(max_components)` | `bayesian_pca.ard_em` (`n_components_` = effective dimension) |
# | `PPCAClassifier(n_components)` | `ppca.PPCAClassifier` |
# | `BayesianLinearRegression(basis)` | `regression.maximize_evidence`, `posterior`, ... |
# | `BayesianLogisticRegression(prior_precision)` | `logistic.laplace`, `predictive_probit` |
#
# Two conventions differ from scikit-learn's, on purpose. Variances are maximum-likelihood
# ones, divided by $N$ (Bishop; Tipping & Bishop): our `explained_variance_` and
# `noise_variance_` are $(N-1)/N$ times scikit-learn's `PCA`'s. And `PPCA.transform` is the
# posterior mean $\mathbb E[z \mid x] = M^{-1} W^\top (x - \mu)$, $M = W^\top W + \sigma^2 I$
# (PRML 12.48), not the projection $U_M^\top (x - \mu)$. `score` is, as in scikit-learn, the
# mean log-likelihood per row,
#
# $$ \mathrm{score}(X) = \frac1N \sum_n \ln \mathcal N(x_n \mid \mu, W W^\top + \sigma^2 I), $$
#
# which makes `GridSearchCV` choose $M$ by held-out likelihood.

# %%
import os

# Before torch loads: busy-waiting OpenMP threads slow alternating torch/numpy calls.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA as SkPCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import ppl_models
from ppl_models import plots, ppca
from ppl_models.datasets import load_digits, make_ppca_data
from ppl_models.estimators import PPCA, BayesianPCA, PPCAClassifier

SMOKE = os.environ.get("PPL_MODELS_SMOKE") == "1"
# Small problems: one BLAS thread avoids threads spinning between many small products.
threadpool_limits(limits=1)
torch.set_num_threads(1)

digits = load_digits()
x_digits, y_digits = digits.x.numpy(), digits.y.numpy()
if SMOKE:
    x_digits, y_digits = x_digits[:400], y_digits[:400]

# %% [markdown]
# ## Numbers: the library's, and scikit-learn's after the $N$ versus $N-1$ correction
#
# On data with known truth ($D = 10$, three strong directions), `PPCA(3).score` is the
# library's `ppca.log_likelihood` at `ppca.closed_form`, exactly. scikit-learn's `PCA`
# holds the same density once its variances are rescaled by $(N-1)/N$: its `score` then
# agrees to rounding.

# %%
x = make_ppca_data(500, 10, 3, seed=0).x.numpy()
n = x.shape[0]
est = PPCA(n_components=3).fit(x)
library = float(ppca.log_likelihood(x, ppca.closed_form(x, 3)).mean())
sk = SkPCA(n_components=3, svd_solver="full").fit(x)
sk.explained_variance_ *= (n - 1) / n  # scikit-learn divides by N - 1
sk.noise_variance_ *= (n - 1) / n
print(f"PPCA.score {est.score(x):.15f}")
print(f"library    {library:.15f}")
print(f"sklearn    {sk.score(x):.15f}  (after the (N-1)/N correction)")
# (what, error, tolerance): the estimator's per-row densities are the library's (the same
# code path); its score averages them with numpy, the line above with torch (another
# summation order: 1e-14 relative is a few ulps). scikit-learn's PCA is the same density
# computed another way (an SVD against an eigendecomposition: float64 rounding, 1e-12
# relative is far above it).
agreement = [
    ("PPCA.score = ppca.log_likelihood at closed_form", abs(est.score(x) - library),
     1e-14 * abs(library)),
    ("PPCA.score vs sklearn PCA.score (rescaled)", abs(est.score(x) - sk.score(x)),
     1e-12 * abs(library)),
]  # fmt: skip

# %% [markdown]
# ## Choosing $M$ with `GridSearchCV`
#
# `score` is a held-out log-likelihood, so a plain `GridSearchCV` over `n_components`
# chooses the latent dimension by 5-fold cross-validation. Beside it: Minka's evidence
# (`n_components="minka"`, `ppca.select_latent_dim`) and Bayesian PCA, whose ARD prior
# switches off the columns the data do not need (`n_components_` is the number left).

# %%
search = GridSearchCV(PPCA(), {"n_components": list(range(1, 10))}, cv=5).fit(x)
minka = ppca.select_latent_dim(x, "minka")
ard = BayesianPCA(max_components=9).fit(x)
print("GridSearchCV:", search.best_params_)
# The data have three strong directions: cross-validation must find them (measured: 3 for
# each of 8 seeds).
agreement.append(("GridSearchCV's dimension - 3", abs(search.best_params_["n_components"] - 3), 0))
print("Minka:", PPCA(n_components="minka").fit(x).n_components_, "| ARD:", ard.n_components_)

fig = plots.plot_model_choice(
    np.arange(1, 10),
    {
        "5-fold held-out score (GridSearchCV)": search.cv_results_["mean_test_score"],
        "Minka ln evidence / N": minka.scores.numpy() / n,
    },
    title="PPCA on 3 strong directions in D = 10",
)
fig.axes[0].axvline(
    ard.n_components_, color="gray", ls="--", label=f"ARD keeps {ard.n_components_}"
)
fig.axes[0].set_xlabel("n_components")
fig.axes[0].legend(fontsize=8)
plots.finish(fig, "sklearn_gridsearch")

# %% [markdown]
# ## A pipeline and cross-validation
#
# The PPCA classifier (one PPCA density per digit, Bayes' rule) sits in a pipeline like
# any scikit-learn classifier, labels of any type included.

# %%
labels = np.array("zero one two three four five six seven eight nine".split())[y_digits]
folds = 3 if SMOKE else 5
accuracy = {
    "PPCAClassifier(10)": cross_val_score(PPCAClassifier(10), x_digits, labels, cv=folds),
    "GaussianNB": cross_val_score(GaussianNB(), x_digits, labels, cv=folds),
    "PPCA(20) -> logistic": cross_val_score(
        make_pipeline(PPCA(20), StandardScaler(), LogisticRegression(max_iter=2000)),
        x_digits,
        labels,
        cv=folds,
    ),
}
for name, scores in accuracy.items():
    print(f"{name:22s} accuracy {scores.mean():.3f} +- {scores.std():.3f}")

# %% [markdown]
# ## Missing values inside a pipeline
#
# Knock out 20% of the pixels at random. scikit-learn's `PCA` refuses NaN, so the usual
# pipeline imputes column means first. `PPCA` takes the incomplete rows themselves: it
# fits by the exact missing-data EM (Ilin & Raiko 2010), and `transform` conditions each
# row on the pixels it has. Its `impute` fills a missing pixel with its conditional mean
# given the row's observed ones, $\mu_{\bar O} + W_{\bar O}\, \mathbb E[z \mid x_O]$.

# %%
rng = np.random.default_rng(0)
missing = rng.random(x_digits.shape) < 0.2
x_missing = np.where(missing, np.nan, x_digits)

ppca_pipe = make_pipeline(PPCA(10, tol=1e-6), StandardScaler(), LogisticRegression(max_iter=2000))
mean_pipe = make_pipeline(
    SimpleImputer(), SkPCA(10), StandardScaler(), LogisticRegression(max_iter=2000)
)
for name, pipe in {"PPCA on NaN": ppca_pipe, "mean-impute -> PCA": mean_pipe}.items():
    scores = cross_val_score(pipe, x_missing, labels, cv=folds)
    print(f"{name:20s} accuracy {scores.mean():.3f} +- {scores.std():.3f}")

filled = PPCA(10, tol=1e-6).fit(x_missing).impute(x_missing)
mean_filled = SimpleImputer().fit_transform(x_missing)
rmse = {
    "PPCA conditional mean": np.sqrt(np.mean((filled - x_digits)[missing] ** 2)),
    "column mean": np.sqrt(np.mean((mean_filled - x_digits)[missing] ** 2)),
}
print("RMSE on the missing pixels (0-16 scale):", {k: round(float(v), 3) for k, v in rmse.items()})
# PPCA's conditional mean uses the correlations between pixels, the column mean does not:
# it must do better (measured 3.01 against 4.34 on the full data).
agreement.append(
    ("imputation RMSE, PPCA minus column mean", float(rmse["PPCA conditional mean"] -
     rmse["column mean"]), 0.0)
)  # fmt: skip

# %% [markdown]
# ## pandas in, pandas out
#
# Column names are kept (`feature_names_in_`), and `set_output(transform="pandas")`
# returns a DataFrame whose columns are named after the estimator.

# %%
frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
scores_frame = PPCA(3).set_output(transform="pandas").fit(frame).transform(frame)
print(scores_frame.head(3))

# %% [markdown]
# ## Saving and loading
#
# `ppl_models.save` writes a fitted estimator (or a topic module, or a parameters
# container) as tensors and plain data: the class's import path and its attributes.
# `ppl_models.load` reads it with `torch.load(weights_only=True)`, which builds nothing
# else, and rebuilds only this library's own classes: a file from elsewhere cannot run
# code. The write is atomic, and float64 stays float64.

# %%
folder = Path(tempfile.mkdtemp())
clf = PPCAClassifier(10).fit(x_digits, labels)
path = ppl_models.save(clf, folder / "classifier.pt")
back = ppl_models.load(path)
print(
    "same predictions:",
    np.array_equal(back.predict(x_digits), clf.predict(x_digits)),
    "| same probabilities, bit for bit:",
    np.array_equal(back.predict_proba(x_digits), clf.predict_proba(x_digits)),
)
print("dtype of a class's W:", back.params_[0].W.dtype)
agreement.append(
    ("save/load: largest change of a probability",
     float(np.abs(back.predict_proba(x_digits) - clf.predict_proba(x_digits)).max()), 0.0)
)  # fmt: skip

# A scikit-learn Pipeline holds objects this format does not record: refused, by name.
try:
    ppl_models.save(ppca_pipe, folder / "pipeline.pt")
except TypeError as err:
    print("refused:", str(err)[:110], "...")

# %%
for what, error, tolerance in agreement:
    print(f"{what}: {error:.3g} (tolerance {tolerance:.3g})")
    assert error <= tolerance, what
