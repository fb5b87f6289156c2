"""PPCA model selection (Minka's evidence, BIC, cross-validated likelihood), the PPCA
classifier and the synthetic PPCA data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SkPCA
from threadpoolctl import threadpool_limits

from ppl_models import ppca
from ppl_models.datasets import load_digits, make_ppca_data


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # numpy's OpenBLAS threads spin between the many small products here; on a loaded
    # 2-core machine one thread was ~30x faster for 64 x 64 problems.
    with threadpool_limits(limits=1):
        yield


def _ml_covariance(x: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The maximum-likelihood PPCA mean and covariance from scikit-learn's PCA, which
    divides by N - 1: get_covariance() * (N - 1) / N (REFERENCES.md)."""
    n = x.shape[0]
    sk = SkPCA(n_components=m, svd_solver="full").fit(x)
    return sk.mean_, sk.get_covariance() * (n - 1) / n


# ------------------------------------------------------------------ select_latent_dim


def test_minka_matches_scikit_learn_assess_dimension():
    from sklearn.decomposition._pca import _assess_dimension

    x = make_ppca_data(200, 8, 2, seed=3).x
    r = ppca.select_latent_dim(x, "minka")
    xn = x.numpy()
    # The same eigenvalues: the divisor-N covariance (scikit-learn's own PCA would pass
    # the divisor N - 1 ones; the formula takes whatever spectrum it is given).
    lam = np.linalg.eigvalsh(np.cov(xn.T, bias=True))[::-1]
    ref = np.array([_assess_dimension(lam, k, xn.shape[0]) for k in range(1, 8)])
    assert r.dims.tolist() == list(range(1, 8))
    # Sums of ~100 float64 logarithms of size ~1e3: rounding ~1e-12 relative.
    np.testing.assert_allclose(r.scores.numpy(), ref, rtol=1e-10)
    assert r.latent_dim == int(np.argmax(ref)) + 1 == 2


def test_bic_against_scipy_log_likelihood():
    x = make_ppca_data(150, 6, 2, seed=4).x
    r = ppca.select_latent_dim(x, "bic")
    xn = x.numpy()
    n, d = xn.shape
    for m, score in zip(r.dims.tolist(), r.scores.tolist(), strict=True):
        mean, cov = _ml_covariance(xn, m)
        ll = multivariate_normal(mean, cov).logpdf(xn).sum()
        ref = -2 * ll + (d * m + 1 + d - m * (m - 1) / 2) * np.log(n)
        # Two float64 routes to ln L* (eigenvalue formula vs densities): ~1e-13 relative.
        assert score == pytest.approx(ref, rel=1e-10)
    assert r.latent_dim == int(np.argmin(r.scores.numpy())) + 1


def test_bic_wide_data_is_scored_in_the_span_of_the_data():
    # D > N: the centred data span r = N - 1 = 29 of the 40 dimensions. BIC is the PPCA
    # fit of the data's coordinates in that span (D' = 29, in ln L* and in the parameter
    # count): the reference projects the data on the span with numpy and evaluates the
    # densities with scipy, in 29 dimensions.
    x = make_ppca_data(30, 40, 2, seed=5).x
    r = ppca.select_latent_dim(x, "bic", max_dim=5)
    xn = x.numpy()
    xc = xn - xn.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    y = xc @ vt[:29].T  # coordinates in the span, (30, 29)
    for m, score in zip(r.dims.tolist(), r.scores.tolist(), strict=True):
        mean, cov = _ml_covariance(y, m)
        ref = -2 * multivariate_normal(mean, cov).logpdf(y).sum()
        ref += (29 * m + 1 + 29 - m * (m - 1) / 2) * np.log(30)
        assert score == pytest.approx(ref, rel=1e-9)  # a 29 x 29 logdet, float64
    assert r.latent_dim == int(np.argmin(r.scores.numpy())) + 1
    assert ppca.select_latent_dim(x, "minka").dims.max() == 28  # rank min(D, N - 1) = 29, minus 1


def test_heldout_against_scikit_learn_per_fold():
    x = make_ppca_data(120, 6, 2, seed=6).x
    folds = np.arange(120) % 4
    r = ppca.select_latent_dim(x, "heldout", folds=folds)
    xn = x.numpy()
    for m, score in zip(r.dims.tolist(), r.scores.tolist(), strict=True):
        total = 0.0
        for f in range(4):
            mean, cov = _ml_covariance(xn[folds != f], m)
            total += multivariate_normal(mean, cov).logpdf(xn[folds == f]).sum()
        assert score == pytest.approx(total / 120, rel=1e-10)  # float64 rounding


def test_heldout_random_folds_are_seeded():
    x = make_ppca_data(100, 5, 1, seed=7).x
    a = ppca.select_latent_dim(x, "heldout", seed=1)
    b = ppca.select_latent_dim(x, "heldout", seed=1)
    c = ppca.select_latent_dim(x, "heldout", seed=2)
    assert torch.equal(a.scores, b.scores)
    assert not torch.equal(a.scores, c.scores)


def test_each_method_finds_three_strong_directions():
    # 3 directions with variances 15, 10, 5 (+1) in D = 10, noise 1, N = 500. Measured
    # over seeds 0..99: BIC picks 3 every time, Minka 97 times (else 4), 5-fold CV 89
    # times (else 4 or 5; a single 80/20 split: 71). The three strong directions are
    # never missed; the errors are the largest noise eigenvalue taken for signal. Seeds
    # 0..9 hold each method to at most its expected share of errors, rounded up.
    picks = {"minka": [], "bic": [], "heldout": []}
    for seed in range(10):
        x = make_ppca_data(500, 10, 3, seed=seed).x
        for method in picks:
            picks[method].append(ppca.select_latent_dim(x, method, seed=seed).latent_dim)
    assert picks["bic"] == [3] * 10
    for method in ("minka", "heldout"):
        assert min(picks[method]) == 3, picks
        assert picks[method].count(3) >= 8, picks


def test_select_latent_dim_numpy_input_and_max_dim():
    x = make_ppca_data(100, 6, 2, seed=8).x
    r = ppca.select_latent_dim(x.numpy(), "bic", max_dim=3)
    assert r.dims.tolist() == [1, 2, 3] and r.scores.dtype == torch.float64
    assert r.method == "bic" and isinstance(r.latent_dim, int)
    f32 = ppca.select_latent_dim(x.float(), "heldout", max_dim=3)
    # float32 data: the same choice; the scores agree to float32 rounding.
    r64 = ppca.select_latent_dim(x, "heldout", max_dim=3)
    assert f32.latent_dim == r64.latent_dim
    np.testing.assert_allclose(f32.scores, r64.scores, rtol=1e-4)


def test_constant_columns_the_rank_is_the_best_fit_and_beyond_it_infinite():
    # Two constant columns of four: the data have rank 2. M = 2 leaves no variance
    # (sigma2 = 0): the best fit, not the worst (issue 17: it scored -inf and M = 1 was
    # chosen). M = 3 is beyond the rank: its column of W is not identified, -inf (+inf).
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(50, 2, generator=g, dtype=torch.float64), torch.ones(50, 2)], dim=1)
    r = ppca.select_latent_dim(x, "minka")
    assert r.scores[2] == -np.inf and np.isfinite(r.scores[:2]).all() and r.latent_dim == 2
    b = ppca.select_latent_dim(x, "bic")
    assert b.scores[2] == np.inf and np.isfinite(b.scores[:2]).all() and b.latent_dim == 2
    h = ppca.select_latent_dim(x, "heldout")
    assert h.scores[2] == -np.inf and h.latent_dim == 2
    # scikit-learn's PCA("mle") chooses the same (its _assess_dimension clamps sigma2).
    assert SkPCA("mle", svd_solver="full").fit(x.numpy()).n_components_ == 2


def test_mle_simple_case_as_in_scikit_learn():
    # scikit-learn's test_mle_simple_case (issue 16730 there): the last column is the mean
    # of the others, so the data have rank 9 of 10; every criterion must say 9 (issue 17:
    # ours said 8, scoring the zero-noise fit -inf).
    x = np.random.RandomState(0).randn(1000, 10)
    x[:, -1] = np.mean(x[:, :-1], axis=-1)
    assert SkPCA("mle", svd_solver="full").fit(x).n_components_ == 9
    for method in ("minka", "bic", "heldout"):
        assert ppca.select_latent_dim(x, method).latent_dim == 9, method


def test_digits_rank_is_chosen_like_scikit_learn():
    # The 8 x 8 digits: 3 pixels are constant, so the centred data have rank 61. Minka's
    # evidence and BIC choose 61, as scikit-learn's PCA("mle") does (issue 17: 60).
    x = load_digits().x.numpy()
    assert np.linalg.matrix_rank(x - x.mean(0)) == 61
    assert SkPCA("mle", svd_solver="full").fit(x).n_components_ == 61
    assert ppca.select_latent_dim(x, "minka").latent_dim == 61
    assert ppca.select_latent_dim(x, "bic").latent_dim == 61


def test_very_low_noise_is_the_best_fit_not_the_worst():
    # Rank 3 plus noise of sd 1e-6: the noise variance 1e-12 is far below the signal but
    # above the rounding level (~1e-13 here); Minka and BIC chose 2 (issue 17).
    rng = np.random.RandomState(1)
    x = rng.randn(500, 3) @ rng.randn(3, 10) + 1e-6 * rng.randn(500, 10)
    assert SkPCA("mle", svd_solver="full").fit(x).n_components_ == 3
    for method in ("minka", "bic"):
        assert ppca.select_latent_dim(x, method).latent_dim == 3, method


def test_bic_with_fewer_rows_than_columns_finds_the_rank_and_warns_at_max_dim():
    # 40 x 100, rank 3 plus unit noise: BIC ran to the largest dimension allowed (38)
    # because the 61 zero eigenvalues outside the data's span counted as a perfect fit.
    rng = np.random.RandomState(0)
    x = 3 * rng.randn(40, 3) @ rng.randn(3, 100) + rng.randn(40, 100)
    for method in ("minka", "bic", "heldout"):
        assert ppca.select_latent_dim(x, method).latent_dim == 3, method
    # Reaching max_dim, while a larger M was possible, is reported.
    with pytest.warns(RuntimeWarning, match=r"'bic' criterion is best at max_dim = 2"):
        assert ppca.select_latent_dim(x, "bic", max_dim=2).latent_dim == 2


def test_select_latent_dim_bad_input():
    x = make_ppca_data(40, 5, 1, seed=0).x
    with pytest.raises(ValueError, match="method must be one of"):
        ppca.select_latent_dim(x, "aic")
    with pytest.raises(ValueError, match="x must be 2-D"):
        ppca.select_latent_dim(x[:, 0], "bic")
    with pytest.raises(ValueError, match="at least 2 columns"):
        ppca.select_latent_dim(x[:, :1], "bic")
    with pytest.raises(ValueError, match="x must be finite"):
        ppca.select_latent_dim(torch.full((5, 3), float("nan")), "bic")
    with pytest.raises(ValueError, match=r"max_dim must be an integer in \[1, 4\]"):
        ppca.select_latent_dim(x, "bic", max_dim=5)
    with pytest.raises(TypeError, match="max_dim must be an integer"):
        ppca.select_latent_dim(x, "bic", max_dim=2.0)
    with pytest.raises(ValueError, match="n_folds must be an integer in"):
        ppca.select_latent_dim(x, "heldout", n_folds=1)
    with pytest.raises(ValueError, match="folds must have shape"):
        ppca.select_latent_dim(x, "heldout", folds=np.zeros(3, int))
    with pytest.raises(TypeError, match="folds must hold integer"):
        ppca.select_latent_dim(x, "heldout", folds=np.zeros(40))
    with pytest.raises(ValueError, match="at least 2 different fold labels"):
        ppca.select_latent_dim(x, "heldout", folds=np.zeros(40, int))
    with pytest.raises(ValueError, match="only used with method='heldout'"):
        ppca.select_latent_dim(x, "bic", folds=np.arange(40) % 2)
    with pytest.raises(ValueError, match="too few rows"):
        ppca.select_latent_dim(x[:3], "heldout", n_folds=2)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        ppca.select_latent_dim(x, "heldout", seed=-1)


# ------------------------------------------------------------------------- classifier


def _three_classes(seed: int = 0):
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c, n in enumerate((40, 30, 20)):
        a = rng.standard_normal((5, 5))
        xs.append(rng.standard_normal((n, 5)) @ a + 1.5 * rng.standard_normal(5))
        ys.append(np.full(n, c + 3))  # labels 3, 4, 5: not 0..C-1
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("priors", [None, [0.2, 0.3, 0.5]])
def test_classifier_posterior_against_scipy(priors):
    x, y = _three_classes()
    clf = ppca.PPCAClassifier(2, priors=priors).fit(x, y)
    assert clf.classes_.tolist() == [3, 4, 5]
    pi = np.bincount(y)[3:] / len(y) if priors is None else np.asarray(priors)
    g = np.random.default_rng(1).standard_normal((25, 5)) * 2
    joint = np.stack(
        [
            multivariate_normal(*_ml_covariance(x[y == c], 2)).logpdf(g) + np.log(pi[k])
            for k, c in enumerate((3, 4, 5))
        ],
        axis=1,
    )
    ref = joint - logsumexp(joint, axis=1, keepdims=True)
    # Inversion-lemma densities against scipy's Cholesky of C: float64 rounding.
    np.testing.assert_allclose(clf.predict_log_proba(g).numpy(), ref, atol=1e-9)
    np.testing.assert_allclose(clf.predict_proba(g).sum(1).numpy(), 1.0, atol=1e-12)
    assert clf.predict(g).tolist() == (np.argmax(ref, axis=1) + 3).tolist()
    assert clf.predict(g).dtype == torch.int64


def test_classifier_log_sum_exp_far_from_every_class():
    # Densities below float64's range (ln p ~ -1e5): the posterior is still a distribution.
    x, y = _three_classes()
    clf = ppca.PPCAClassifier(1).fit(x, y)
    p = clf.predict_proba(np.full((2, 5), 1e3))
    assert torch.isfinite(p).all() and torch.allclose(p.sum(1), torch.ones(2, dtype=p.dtype))


def test_classifier_beats_gaussian_nb_on_digits():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB

    x, y = load_digits()
    xtr, xte, ytr, yte = train_test_split(
        x.numpy(), y.numpy(), test_size=0.3, random_state=0, stratify=y.numpy()
    )
    # M = 10: the tutorial's validation sweep (inside the training split) picks it.
    acc = ppca.PPCAClassifier(10).fit(xtr, ytr).score(xte, yte)
    nb = GaussianNB().fit(xtr, ytr).score(xte, yte)
    lda = LinearDiscriminantAnalysis().fit(xtr, ytr).score(xte, yte)
    # Measured: PPCA 0.981, LDA 0.959, GaussianNB 0.848 on this split.
    assert acc > nb + 0.05
    assert acc > lda


def test_classifier_bad_input():
    x, y = _three_classes()
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1"):
        ppca.PPCAClassifier(0)
    with pytest.raises(ValueError, match=r"latent_dim must be an integer in \[1, 4\]"):
        ppca.PPCAClassifier(5).fit(x, y)
    with pytest.raises(RuntimeError, match="not fitted yet"):
        ppca.PPCAClassifier(1).predict(x)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ppca.PPCAClassifier(1).fit(x, np.zeros(len(x), int))
    small = y.copy()
    small[:2] = 9
    with pytest.raises(ValueError, match=r"at least latent_dim \+ 2 = 4 points; class\(es\) \[9\]"):
        ppca.PPCAClassifier(2).fit(x, small)
    with pytest.raises(ValueError, match="same number of rows"):
        ppca.PPCAClassifier(1).fit(x, y[:-1])
    with pytest.raises(ValueError, match="y must be 1-D"):
        ppca.PPCAClassifier(1).fit(x, y[:, None])
    with pytest.raises(ValueError, match="integer class labels"):
        ppca.PPCAClassifier(1).fit(x, y + 0.5)
    with pytest.raises(TypeError, match="integer class labels"):
        ppca.PPCAClassifier(1).fit(x, y.astype(str))
    with pytest.raises(TypeError, match="y must be a torch tensor or a numpy array"):
        ppca.PPCAClassifier(1).fit(x, "abc")
    with pytest.raises(ValueError, match="x must be finite"):
        ppca.PPCAClassifier(1).fit(np.full_like(x, np.nan), y)
    with pytest.raises(ValueError, match="one entry per class"):
        ppca.PPCAClassifier(1, priors=[0.5, 0.5]).fit(x, y)
    with pytest.raises(ValueError, match="positive and sum to 1"):
        ppca.PPCAClassifier(1, priors=[0.5, 0.5, 0.5]).fit(x, y)
    clf = ppca.PPCAClassifier(1).fit(x, y)
    with pytest.raises(ValueError, match=r"class\(es\) \[7\] not seen in fit"):
        clf.score(x[:2], [3, 7])
    with pytest.raises(ValueError, match="x must have 5 columns"):
        clf.predict(x[:, :4])
    # A class whose points span fewer than latent_dim + 1 directions: sigma2 = 0.
    flat = x.copy()
    flat[y == 3] = flat[y == 3][:, :1] * np.ones(5)
    with pytest.raises(ValueError, match="class 3: x has no variance outside"):
        ppca.PPCAClassifier(1).fit(flat, y)


def test_classifier_accepts_float_integer_labels_and_tensors():
    x, y = _three_classes()
    a = ppca.PPCAClassifier(2).fit(torch.from_numpy(x), torch.from_numpy(y))
    b = ppca.PPCAClassifier(2).fit(x, y.astype(float))
    assert torch.equal(a.predict(x), b.predict(x))
    assert a.score(x, y) == pytest.approx(float((a.predict(x).numpy() == y).mean()))


# ---------------------------------------------------------------------- make_ppca_data


def test_make_ppca_data_truth_and_moments():
    data = make_ppca_data(20000, 6, 2, sigma2=0.5, signal=[4.0, 1.0], seed=0)
    w, mu, _ = data.params
    assert torch.allclose(w.T @ w, torch.diag(torch.tensor([4.0, 1.0], dtype=w.dtype)))
    c = ppca.covariance(data.params)
    emp = torch.cov(data.x.T, correction=0)
    # Monte Carlo: the standard error of a sample covariance entry is
    # sqrt((C_ii C_jj + C_ij^2) / N); 5 standard errors for all 21 distinct entries.
    se = ((torch.outer(c.diagonal(), c.diagonal()) + c**2) / 20000).sqrt()
    assert bool((abs(emp - c) < 5 * se).all())
    assert bool((abs(data.x.mean(0) - mu) < 5 * (c.diagonal() / 20000).sqrt()).all())
    # x = W z + mu + noise: the residual is the noise.
    res = data.x - data.z @ w.T - mu
    assert float(res.var()) == pytest.approx(0.5, rel=5 * (2 / res.numel()) ** 0.5)
    again = make_ppca_data(20000, 6, 2, sigma2=0.5, signal=[4.0, 1.0], seed=0)
    assert torch.equal(again.x, data.x)


def test_make_ppca_data_bad_input():
    with pytest.raises(ValueError, match=r"latent_dim must be an integer in \[1, 3\]"):
        make_ppca_data(10, 4, 4)
    with pytest.raises(ValueError, match="sigma2 must be positive"):
        make_ppca_data(10, 4, 1, sigma2=0.0)
    with pytest.raises(ValueError, match="signal must hold 2 positive"):
        make_ppca_data(10, 4, 2, signal=[1.0])
    with pytest.raises(ValueError, match="signal must hold 1 positive"):
        make_ppca_data(10, 4, 1, signal=[-1.0])
    with pytest.raises(ValueError, match="d must be an integer >= 2"):
        make_ppca_data(10, 1, 1)


def test_infer_dim_as_in_scikit_learn():
    # scikit-learn's test_infer_dim_1, _2 and _3 (sklearn/decomposition/tests/test_pca.py),
    # on our Minka criterion: the second score within 0.01 N of the best; two and three
    # shifted groups of points make M > 1 and M > 2.
    n, p = 1000, 5
    rng = np.random.RandomState(0)
    x = (
        rng.randn(n, p) * 0.1
        + rng.randn(n, 1) * np.array([3, 4, 5, 1, 2])
        + np.array([1, 0, 7, 4, 6])
    )
    scores = ppca.select_latent_dim(x, "minka").scores
    assert float(scores[1]) > float(scores.max()) - 0.01 * n
    n = 100
    rng = np.random.RandomState(0)
    x = rng.randn(n, p) * 0.1
    x[10:20] += np.array([3, 4, 5, 1, 2])
    x[30:40] += np.array([6, 0, 7, 2, -1])
    assert ppca.select_latent_dim(x, "minka").latent_dim > 1
    x[40:50] += 2 * np.array([-1, 1, -1, 1, -1])  # as test_infer_dim_3
    assert ppca.select_latent_dim(x, "minka").latent_dim > 2
