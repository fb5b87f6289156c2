"""The scikit-learn estimators: scikit-learn's own contract, the library's numbers exactly,
scikit-learn's numbers where both exist (after the N vs N-1 correction), and the uses a
scikit-learn user expects (pipelines, pandas, GridSearchCV)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.decomposition import PCA as SkPCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import BayesianRidge, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ppl_models import bayesian_pca, logistic, pca, ppca, regression
from ppl_models.datasets import make_bishop_bpca_data, make_ppca_data
from ppl_models.estimators import (
    PCA,
    PPCA,
    BayesianLinearRegression,
    BayesianLogisticRegression,
    BayesianPCA,
    PPCAClassifier,
)

ALL = [
    PCA(),
    PPCA(),
    BayesianPCA(),
    PPCAClassifier(),
    BayesianLinearRegression(),
    BayesianLogisticRegression(),
]


@parametrize_with_checks(ALL)
def test_sklearn_contract(estimator, check):
    # Some checks fit random data on which EM runs out of iterations; that warning is
    # the estimator working as documented, not a failure of the check.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _data(n=200, d=6, m=2, seed=0):
    return make_ppca_data(n, d, m, seed=seed).x.numpy()


def _sklearn_ml(sk: SkPCA, n: int) -> SkPCA:
    """scikit-learn's PCA with its N-1 variances turned into maximum-likelihood (divisor N)
    ones: its score, covariance and precision are then those of the ML PPCA model."""
    sk.explained_variance_ = sk.explained_variance_ * (n - 1) / n
    sk.noise_variance_ = sk.noise_variance_ * (n - 1) / n
    return sk


# ---------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("method", ["eigh", "svd"])
def test_pca_equals_library_and_sklearn(method):
    x = _data()
    n = x.shape[0]
    est = PCA(n_components=2, method=method).fit(x)
    ref = pca.fit(torch.from_numpy(x), 2, method=method)
    # Same code path: bit for bit.
    assert np.array_equal(est.components_, ref.components.T.numpy())
    assert np.array_equal(est.explained_variance_, ref.explained_variance.numpy())
    assert np.array_equal(est.transform(x), pca.transform(x, ref).numpy())
    dens = ppca.closed_form(x, 2)
    assert np.array_equal(est.score_samples(x), ppca.log_likelihood(x, dens).numpy())
    sk = SkPCA(n_components=2, svd_solver="full").fit(x)
    # scikit-learn's variances divide by N-1; ours by N (maximum likelihood). Float64
    # rounding of two eigensolvers on a 6 x 6 covariance: 1e-12 relative.
    np.testing.assert_allclose(
        est.explained_variance_ * n / (n - 1), sk.explained_variance_, rtol=1e-12
    )
    np.testing.assert_allclose(est.noise_variance_ * n / (n - 1), sk.noise_variance_, rtol=1e-12)
    np.testing.assert_allclose(
        est.explained_variance_ratio_, sk.explained_variance_ratio_, rtol=1e-12
    )
    # Components compared sign-free, through the projector onto their span.
    np.testing.assert_allclose(
        est.components_.T @ est.components_, sk.components_.T @ sk.components_, atol=1e-12
    )
    sk = _sklearn_ml(sk, n)
    np.testing.assert_allclose(est.score(x), sk.score(x), rtol=1e-12)
    np.testing.assert_allclose(est.get_covariance(), sk.get_covariance(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(est.get_precision(), sk.get_precision(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        est.inverse_transform(est.transform(x)), pca.reconstruct(x, ref).numpy(), atol=1e-12
    )


def test_pca_all_components_is_the_ml_gaussian():
    x = _data(n=50, d=4)
    est = PCA().fit(x)
    assert est.n_components_ == 4 and est.noise_variance_ == 0.0
    sk = _sklearn_ml(SkPCA(svd_solver="full").fit(x), 50)
    # The sigma^2 -> 0 limit: N(x_bar, S), S with divisor N; scipy-free check through
    # scikit-learn's own formula at the corrected variances (float64 rounding).
    np.testing.assert_allclose(est.get_covariance(), np.cov(x.T, bias=True), rtol=1e-12)
    np.testing.assert_allclose(est.score(x), sk.score(x), rtol=1e-12)
    assert est.sample(3, random_state=0).shape == (3, 4)


def test_pca_em_and_bad_input():
    x = _data()
    est = PCA(n_components=2, method="em", tol=1e-12).fit(x)
    ref = pca.em(torch.from_numpy(x), 2, tol=1e-12, seed=0)
    assert np.array_equal(est.components_, ref.params.components.T.numpy())
    assert est.n_iter_ == ref.n_iter
    with pytest.raises(ValueError, match=r"n_components must be an integer in \[1, 6\]"):
        PCA(n_components=7).fit(x)
    with pytest.raises(TypeError, match="n_components must be an integer; got str 'minka'"):
        PCA(n_components="minka").fit(x)  # PPCA's choice rules; PCA takes an int
    with pytest.raises(ValueError, match="method must be one of"):
        PCA(method="qr").fit(x)
    with pytest.raises(TypeError, match="dense data is required"):
        PCA(n_components=2).fit(sparse.csr_matrix(x))
    with pytest.raises(ValueError, match=r"X must have 2 columns \(n_components_\)"):
        est.inverse_transform(x)
    flat = np.repeat(x[:, :1], 6, axis=1)  # rank 1 (plus rounding)
    flat[:, 1:] = flat[:, :1]
    with pytest.raises(ValueError, match="has no density"):
        PCA(n_components=2).fit(flat).score(flat)


# --------------------------------------------------------------------------- PPCA


def test_ppca_equals_library_and_sklearn():
    x = _data()
    n = x.shape[0]
    est = PPCA(n_components=2).fit(x)
    ref = ppca.closed_form(x, 2)
    for a, b in zip(est.params_, ref, strict=True):
        assert torch.equal(a, b)
    assert np.array_equal(est.score_samples(x), ppca.log_likelihood(x, ref).numpy())
    assert np.array_equal(est.transform(x), ppca.posterior(x, ref)[0].numpy())
    assert np.array_equal(est.get_covariance(), ppca.covariance(ref).numpy())
    sk = _sklearn_ml(SkPCA(n_components=2, svd_solver="full").fit(x), n)
    # After the N vs N-1 correction scikit-learn's PCA is the same ML density
    # (REFERENCES.md): float64 rounding of two routes.
    np.testing.assert_allclose(est.score(x), sk.score(x), rtol=1e-12)
    np.testing.assert_allclose(est.score_samples(x), sk.score_samples(x), rtol=1e-11)
    np.testing.assert_allclose(est.get_covariance(), sk.get_covariance(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(est.get_precision(), sk.get_precision(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.explained_variance_, sk.explained_variance_, rtol=1e-12)
    np.testing.assert_allclose(est.noise_variance_, sk.noise_variance_, rtol=1e-12)
    # The posterior mean E[z|x] = M^-1 W^T (x - mu) against numpy.
    w, mu, s2 = (t.numpy() for t in ref)
    ez = np.linalg.solve(w.T @ w + s2 * np.eye(2), w.T @ (x - mu).T).T
    np.testing.assert_allclose(est.transform(x), ez, atol=1e-12)
    np.testing.assert_allclose(est.inverse_transform(ez), ez @ w.T + mu, atol=1e-12)


def test_ppca_missing_values_use_the_missing_data_em():
    x = _data(n=150)
    rng = np.random.default_rng(1)
    x[rng.random(x.shape) < 0.1] = np.nan
    est = PPCA(n_components=2, tol=1e-10).fit(x)
    ref = ppca.em(x, 2, tol=1e-10, max_iter=1000, seed=0)
    for a, b in zip(est.params_, ref.params, strict=True):
        assert torch.equal(a, b)
    assert est.n_iter_ == ref.n_iter
    filled = est.impute(x)
    assert not np.isnan(filled).any()
    assert np.array_equal(filled, ppca.impute(x, ref.params).numpy())
    assert np.isfinite(est.score(x)) and np.isfinite(est.transform(x)).all()
    with pytest.raises(ValueError, match="method='closed_form' needs complete data; X has"):
        PPCA(n_components=2, method="closed_form").fit(x)
    with pytest.raises(ValueError, match="n_components='minka' needs complete data"):
        PPCA(n_components="minka").fit(x)
    # Inside a pipeline: incomplete rows in, a classifier's accuracy out.
    y = (np.nan_to_num(x[:, 0]) > np.nanmean(x[:, 0])).astype(int)
    pipe = make_pipeline(PPCA(n_components=3), LogisticRegression())
    assert cross_val_score(pipe, x, y, cv=3).mean() > 0.5


def test_ppca_svi_reaches_the_closed_form():
    x = _data(n=300, d=5)
    est = PPCA(n_components=2, method="svi", max_iter=200).fit(x)
    ref = ppca.closed_form(x, 2)
    # L-BFGS on the marginal likelihood (float64) from the default start: the model
    # covariance within 1e-5 relative, far below the sampling error of C at N = 300.
    c, cr = est.get_covariance(), ppca.covariance(ref).numpy()
    assert np.abs(c - cr).max() <= 1e-5 * np.abs(cr).max()


def test_ppca_selected_dimension_and_bad_input():
    x = _data(n=500, d=10, m=3)
    assert PPCA(n_components="minka").fit(x).n_components_ == 3
    assert PPCA(n_components="bic").fit(x).n_components_ == 3
    assert PPCA().fit(x).n_components_ == 9
    with pytest.raises(ValueError, match=r"n_components must be an integer in \[1, 9\]"):
        PPCA(n_components=10).fit(x)
    with pytest.raises(ValueError, match="n_components must be one of"):
        PPCA(n_components="mle").fit(x)
    with pytest.raises(ValueError, match="method must be one of"):
        PPCA(method="newton").fit(x)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        PPCA(n_components=2).fit(x).sample(0)


def test_gridsearch_picks_the_true_dimension():
    # 3 strong directions (signal 15, 10, 5 over noise 1) in D = 10: 5-fold held-out
    # log-likelihood (score) picks M = 3 (it did for each of 8 seeds tried).
    x = make_ppca_data(500, 10, 3, seed=0).x.numpy()
    search = GridSearchCV(PPCA(), {"n_components": list(range(1, 10))}, cv=5).fit(x)
    assert search.best_params_ == {"n_components": 3}
    # The mean held-out score is the library's mean log-likelihood on held-out rows.
    assert np.argmax(search.cv_results_["mean_test_score"]) == 2


# --------------------------------------------------------------------- Bayesian PCA


def test_bayesian_pca_equals_ard_em_and_switches_off_six_columns():
    x = make_bishop_bpca_data(seed=0).x.numpy()
    est = BayesianPCA(max_components=9, tol=1e-9, max_iter=5000).fit(x)
    ref = bayesian_pca.ard_em(x, 9, tol=1e-9, max_iter=5000, seed=0)
    assert est.n_components_ == ref.effective_dim == 3
    assert np.array_equal(est.alpha_, ref.alpha.numpy())
    assert torch.equal(est.params_.W, ref.params.W[:, :3])
    assert torch.equal(est.params_.sigma2, ref.params.sigma2)
    assert np.isinf(est.alpha_).sum() == 6
    assert est.transform(x).shape == (300, 3)
    # The density is PPCA's with the surviving columns: switched-off columns are zero.
    assert np.array_equal(est.get_covariance(), ppca.covariance(est.params_).numpy())
    np.testing.assert_allclose(
        est.get_covariance(),
        bayesian_pca.model_covariance(ref.params.W, ref.params.sigma2).numpy(),
        atol=1e-12,
    )
    with pytest.raises(ValueError, match=r"max_components must be an integer in \[1, 9\]"):
        BayesianPCA(max_components=10).fit(x)


# --------------------------------------------------------------------- classifiers


def _three_classes(seed=0):
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c, n in enumerate((40, 30, 20)):
        a = rng.standard_normal((5, 5))
        xs.append(rng.standard_normal((n, 5)) @ a + 1.5 * rng.standard_normal(5))
        ys.append(np.full(n, ["cat", "dog", "eel"][c]))
    return np.concatenate(xs), np.concatenate(ys)


def test_ppca_classifier_equals_the_core_class():
    x, y = _three_classes()
    est = PPCAClassifier(n_components=2).fit(x, y)
    codes = np.searchsorted(est.classes_, y)
    core = ppca.PPCAClassifier(2).fit(x, codes)
    assert est.classes_.tolist() == ["cat", "dog", "eel"]
    assert np.array_equal(est.predict_log_proba(x), core.predict_log_proba(x).numpy())
    assert np.array_equal(est.predict(x), est.classes_[core.predict(x).numpy()])
    assert est.score(x, y) == core.score(x, codes)
    assert isinstance(est.predict_proba(x), np.ndarray)
    # In scikit-learn's machinery.
    scores = cross_val_score(make_pipeline(StandardScaler(), PPCAClassifier(1)), x, y, cv=3)
    assert scores.mean() > 0.6
    few = y.copy()
    few[:3] = "fox"
    with pytest.raises(ValueError, match=r"n_components \+ 2 = 4 rows; class\(es\) \['fox'\]"):
        PPCAClassifier(n_components=2).fit(x, few)
    with pytest.raises(ValueError, match=r"n_components must be an integer in \[1, 4\]"):
        PPCAClassifier(n_components=5).fit(x, y)


def test_core_classifier_keeps_its_behaviour_and_points_to_the_estimator():
    x, y = _three_classes()
    codes = np.searchsorted(np.unique(y), y)
    core = ppca.PPCAClassifier(2).fit(x, codes)
    assert core.predict(x).dtype == torch.int64  # torch in, torch out, as before
    with pytest.raises(TypeError, match=r"use ppl_models.estimators.PPCAClassifier\(n_components"):
        clone(ppca.PPCAClassifier(2))
    with pytest.raises(TypeError, match="torch-level classifier"):
        cross_val_score(ppca.PPCAClassifier(2), x, codes)


def test_bayesian_logistic_equals_laplace_and_sklearn():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 3))
    y = np.where(x @ [1.5, -1.0, 0.5] + 0.4 + rng.standard_normal(300) > 0, "b", "a")
    alpha = 2.0
    est = BayesianLogisticRegression(prior_precision=alpha).fit(x, y)
    t = (y == "b").astype(float)
    phi = logistic.add_bias(x)
    lap = logistic.laplace(phi, t, alpha)
    assert torch.equal(est.laplace_.mean, lap.mean)
    assert np.array_equal(est.predict_proba(x)[:, 1], logistic.predictive_probit(phi, *lap).numpy())
    # scikit-learn, the bias as a penalised column: C = 1 / alpha. Newton-Cholesky and
    # IRLS solve the same strictly concave problem; both stop near 1e-12 (REFERENCES.md).
    sk = LogisticRegression(C=1 / alpha, fit_intercept=False, solver="newton-cholesky", tol=1e-12)
    sk.fit(phi.numpy(), y)
    np.testing.assert_allclose(np.r_[est.intercept_, est.coef_[0]], sk.coef_[0], atol=1e-9)
    # S_N = (alpha I + Phi^T R Phi)^-1 at w_MAP, by numpy.
    p = 1 / (1 + np.exp(-phi.numpy() @ sk.coef_[0]))
    s_n = np.linalg.inv(alpha * np.eye(4) + phi.numpy().T @ (phi.numpy() * (p * (1 - p))[:, None]))
    np.testing.assert_allclose(est.covariance_, s_n, rtol=1e-7)
    assert (est.predict(x) == np.where(est.decision_function(x) > 0, "b", "a")).all()
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        BayesianLogisticRegression().fit(x, np.arange(300) % 3)
    with pytest.raises(ValueError, match="prior_precision must be positive"):
        BayesianLogisticRegression(prior_precision=0.0).fit(x, y)


# ---------------------------------------------------------------------- regression


def test_bayesian_linear_regression_equals_library_and_bayesian_ridge():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 4)) + np.array([1.0, -2.0, 0.0, 3.0])
    t = x @ [0.5, -1.0, 0.0, 2.0] + 1.5 + 0.3 * rng.standard_normal(80)
    est = BayesianLinearRegression(tol=1e-14, max_iter=100000).fit(x, t)
    # scikit-learn with flat hyperpriors runs the same re-estimation (its lambda_ is our
    # alpha_, its alpha_ our beta_) from the same start (lambda = 1, alpha = 1/var(t)),
    # both run to convergence: they agree to the iteration's rounding.
    br = BayesianRidge(
        alpha_1=0.0, alpha_2=0.0, lambda_1=0.0, lambda_2=0.0, tol=1e-14, max_iter=100000
    ).fit(x, t)
    np.testing.assert_allclose(est.alpha_, br.lambda_, rtol=1e-9)
    np.testing.assert_allclose(est.beta_, br.alpha_, rtol=1e-9)
    np.testing.assert_allclose(est.coef_, br.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(est.intercept_, br.intercept_, rtol=1e-9)
    np.testing.assert_allclose(est.sigma_, br.sigma_, rtol=1e-9)
    # Same code path: the library's posterior on the centred design, exactly.
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    xc, tc = xt - xt.mean(0), tt - tt.mean()
    ev = regression.maximize_evidence(xc, tc, 1.0, None, tol=1e-14, max_iter=100000)
    post = regression.posterior(xc, tc, ev.alpha, ev.beta)
    assert np.array_equal(est.coef_, post.mean.numpy())
    # Predictive sd sqrt(1/beta + (x - x_bar)^T S_N (x - x_bar)), by numpy from
    # scikit-learn's sigma_ and alpha_ (which uses uncentred x: not compared).
    g = rng.standard_normal((5, 4))
    mean, sd = est.predict(g, return_std=True)
    gc = g - x.mean(0)
    ref_sd = np.sqrt(1 / br.alpha_ + np.einsum("ij,jk,ik->i", gc, br.sigma_, gc))
    np.testing.assert_allclose(sd, ref_sd, rtol=1e-9)
    np.testing.assert_allclose(mean, br.predict(g), rtol=1e-9)


def test_bayesian_linear_regression_with_basis_functions():
    x = np.linspace(0, 1, 25)[:, None]
    t = np.sin(2 * np.pi * x[:, 0]) + 0.2 * np.random.default_rng(0).standard_normal(25)
    est = BayesianLinearRegression(basis="polynomial", degree=5, fit_intercept=False).fit(x, t)
    phi = regression.polynomial_features(torch.from_numpy(x[:, 0]), 5)
    ev = regression.maximize_evidence(phi, torch.from_numpy(t), 1.0, None, tol=1e-8, max_iter=1000)
    assert est.alpha_ == float(ev.alpha) and est.beta_ == float(ev.beta)
    post = regression.posterior(phi, torch.from_numpy(t), ev.alpha, ev.beta)
    pred = regression.predictive_posterior(phi, post, ev.beta)
    mean, sd = est.predict(x, return_std=True)
    assert np.array_equal(mean, pred.mean.numpy()) and np.array_equal(sd, pred.stddev.numpy())
    gauss = BayesianLinearRegression(basis="gaussian", n_basis=7).fit(x, t)
    assert gauss.coef_.shape == (8,) and gauss.width_ == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="basis='polynomial' takes one input feature; X has 2"):
        BayesianLinearRegression(basis="polynomial").fit(np.c_[x, x], t)
    with pytest.raises(ValueError, match="basis must be one of"):
        BayesianLinearRegression(basis="spline").fit(x, t)


# ----------------------------------------------------------- numpy, pandas, dtypes


def test_pandas_in_and_out_and_dtypes():
    x = _data(n=100, d=4)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    est = PPCA(n_components=2).set_output(transform="pandas").fit(df)
    assert est.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    out = est.transform(df)
    assert isinstance(out, pd.DataFrame) and out.columns.tolist() == ["ppca0", "ppca1"]
    np.testing.assert_array_equal(out.to_numpy(), PPCA(n_components=2).fit(x).transform(x))
    assert PCA(n_components=2).fit(df).get_feature_names_out().tolist() == ["pca0", "pca1"]
    # Integers become float64 (numpy's and scikit-learn's convention); float32 stays.
    ints = np.round(x * 10).astype(np.int64)
    assert PPCA(n_components=2).fit(ints).params_.W.dtype == torch.float64
    f32 = PPCA(n_components=2).fit(x.astype(np.float32))
    assert f32.params_.W.dtype == torch.float32
    assert f32.transform(x.astype(np.float32)).dtype == np.float32
    params = PPCA(n_components=2).get_params()
    assert params == {
        "method": "auto",
        "max_iter": 1000,
        "n_components": 2,
        "random_state": 0,
        "tol": 1e-9,
    }
    assert PPCA().set_params(n_components=3).n_components == 3
