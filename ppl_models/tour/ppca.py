"""The PPCA topic's part of the tour: the closed form against scikit-learn, EM and the
Pyro model fitted by SVI against the closed form, the choice of M, the classifier on the
digits against naive Bayes and LDA, and the digits with 30% of their pixels missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import plots, ppca
from ..datasets import load_digits, make_ppca_data
from ..inference import fit_svi
from ._section import Agreement, Section


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def section(out_dir: Path, quick: bool) -> Section:
    """Fit PPCA on synthetic data and on the bundled digits; write figures to ``out_dir``;
    report. ``quick``: a few seconds: fewer M in the classifier's validation sweep and in
    the digits' choice of M, a short missing-data EM, two figures fewer (otherwise about
    15 s on 2 cores)."""
    # threadpool_limits reaches only the BLAS libraries already loaded: scipy.linalg's
    # own OpenBLAS must be loaded first (scikit-learn loads it too).
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    from threadpoolctl import threadpool_limits

    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    # D <= 64: every product is small; extra threads (torch's or the BLAS's) only spin.
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _section(out_dir, quick)
    finally:
        torch.set_num_threads(threads)


def _section(out_dir: Path, quick: bool) -> Section:
    rows: list[Agreement] = []
    losses: dict[str, float] = {}
    x, em, ll_star = _synthetic_rows(rows, losses)
    sel = _selection_rows(x, em, ll_star, rows, out_dir)
    xd, m_clf, accuracy, density = _digits_rows(rows, out_dir, quick)
    em_miss, rmse_ppca, rmse_mean, monotone = _missing_pixels(xd, out_dir, quick)
    markdown = _markdown(
        sel, m_clf, accuracy, density, em_miss, rmse_ppca, rmse_mean, monotone, quick
    )
    return Section("ppca", "Probabilistic PCA", markdown, rows, losses)


def _synthetic_rows(
    rows: list[Agreement], losses: dict[str, float]
) -> tuple[torch.Tensor, ppca.EMResult, float]:
    """The closed form against scikit-learn and scipy, EM and the Pyro model against it, on
    data with a known truth; returns the data, EM's result and ln L*."""
    from scipy.stats import multivariate_normal as mvn
    from sklearn.decomposition import PCA as SkPCA

    # Synthetic data with known truth: 3 directions of variance 15, 10, 5 over noise 1.
    data = make_ppca_data(500, 10, 3, sigma2=1.0, seed=0)
    x = data.x
    n, d = x.shape
    p = ppca.closed_form(x, 3)
    c = ppca.covariance(p)
    xn = x.numpy()
    sk = SkPCA(n_components=3, svd_solver="full").fit(xn)
    c_sk = torch.from_numpy(sk.get_covariance() * (n - 1) / n)
    rows.append(
        Agreement(
            "model covariance C = WWᵀ + σ²I (synthetic, M = 3)",
            "ppca.closed_form",
            "scikit-learn PCA.get_covariance() · (N-1)/N",
            float((c - c_sk).abs().max() / c_sk.abs().max()),
            "max |ΔC| / max |C|",
            1e-8,  # two float64 eigendecompositions of a 10 x 10 matrix: ~1e-15 expected
        )
    )
    ll = ppca.log_likelihood(x, p)
    ll_ref = mvn(xn.mean(0), c_sk.numpy()).logpdf(xn)
    rows.append(
        Agreement(
            "log-likelihood of every point",
            "ppca.log_likelihood (inversion lemma)",
            "scipy multivariate_normal.logpdf",
            float(np.max(np.abs(ll.numpy() - ll_ref) / np.abs(ll_ref))),
            "max relative",
            1e-10,  # float64 rounding of two Cholesky routes
        )
    )
    ll_star = float(ll.sum())
    em = ppca.em(x, 3, tol=1e-13, max_iter=20000, seed=0)
    rows.append(
        Agreement(
            "maximised log-likelihood ln L*",
            f"ppca.em ({em.n_iter} iterations, tol 1e-13)",
            "closed form",
            _rel(float(em.log_likelihood[-1]), ll_star),
            "relative",
            # Geometric convergence stopped at a relative rise < 1e-13: the remaining gap is
            # that over (1 - rate), far below 1e-8.
            1e-8,
        )
    )
    marginal = ppca.MarginalPPCA(d, 3, seed=0)
    fit = fit_svi(marginal, x, optimizer="lbfgs", num_steps=100, progress=False)
    losses["MarginalPPCA_lbfgs"] = float(fit.losses[-1])
    got = marginal.params()
    rows.append(
        Agreement(
            "maximised log-likelihood ln L*",
            f"MarginalPPCA, SVI (empty guide, L-BFGS, {fit.num_steps} steps)",
            "closed form",
            _rel(float(ppca.log_likelihood(x, got).sum()), ll_star),
            "relative",
            1e-4,  # L-BFGS's own stopping rules; measured ~1e-12
        )
    )
    rows.append(
        Agreement(
            "noise variance σ²",
            "MarginalPPCA, SVI (L-BFGS)",
            "closed form",
            _rel(float(got.sigma2), float(p.sigma2)),
            "relative",
            1e-3,  # first order in the parameters' error, where ln L is second order
        )
    )

    return x, em, ll_star


def _selection_rows(
    x: torch.Tensor,
    em: ppca.EMResult,
    ll_star: float,
    rows: list[Agreement],
    out_dir: Path,
) -> dict:
    """Choosing M on the synthetic data, Minka's evidence against scikit-learn's."""
    xn = x.numpy()
    n, d = x.shape
    # Choosing M.
    sel = {m: ppca.select_latent_dim(x, m, seed=0) for m in ("minka", "bic", "heldout")}
    try:  # a private function of scikit-learn's: the row is left out if it moves
        from sklearn.decomposition._pca import _assess_dimension as assess
    except ImportError:  # pragma: no cover
        assess = None
    if assess is not None:
        lam = np.linalg.eigvalsh(np.cov(xn.T, bias=True))[::-1]
        ref_minka = np.array([assess(lam, k, n) for k in range(1, d)])
        rows.append(
            Agreement(
                "Minka's log-evidence, M = 1..9",
                "ppca.select_latent_dim('minka')",
                "scikit-learn _assess_dimension (same eigenvalues)",
                float(np.max(np.abs(sel["minka"].scores.numpy() - ref_minka) / np.abs(ref_minka))),
                "max relative",
                1e-10,  # float64 sums of logarithms
            )
        )
    rows.append(
        Agreement(
            "chosen M (truth 3)",
            "minka, bic, heldout (5-fold)",
            "the true latent dimension",
            float(max(abs(s.latent_dim - 3) for s in sel.values())),
            "max |M - 3|",
            0.0,
        )
    )
    name = "ppca_selection.png"
    plots.save(plots.plot_ppca_selection(sel), out_dir / name)
    name = "ppca_em.png"
    plots.save(plots.plot_ppca_em({"synthetic, M = 3": em.log_likelihood}, ll_star), out_dir / name)

    return sel


def _digits_rows(
    rows: list[Agreement], out_dir: Path, quick: bool
) -> tuple[torch.Tensor, int, dict[str, float], dict[str, float]]:
    """The classifier on the digits against naive Bayes and LDA, its posterior against
    scipy's, and PPCA's held-out density against Gaussians'."""
    from scipy.stats import multivariate_normal as mvn
    from sklearn.decomposition import PCA as SkPCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA
    from sklearn.model_selection import train_test_split as split
    from sklearn.naive_bayes import GaussianNB

    # The digits: the classifier, and a density comparison.
    digits, labels = load_digits()
    xd = digits / 16
    xtr, xte, ytr, yte = (
        torch.from_numpy(a)
        for a in split(
            xd.numpy(), labels.numpy(), test_size=0.3, random_state=0, stratify=labels.numpy()
        )
    )
    xa, xv, ya, yv = split(
        xtr.numpy(), ytr.numpy(), test_size=0.25, random_state=0, stratify=ytr.numpy()
    )
    sweep = (2, 5, 10) if quick else (1, 2, 3, 5, 8, 10, 15, 20)
    val = {m: ppca.PPCAClassifier(m).fit(xa, ya).score(xv, yv) for m in sweep}
    m_clf = max(val, key=val.get)
    clf = ppca.PPCAClassifier(m_clf).fit(xtr, ytr)
    accuracy = {
        f"PPCA classifier (M = {m_clf})": clf.score(xte, yte),
        "GaussianNB": GaussianNB().fit(xtr.numpy(), ytr.numpy()).score(xte.numpy(), yte.numpy()),
        "LDA": LDA().fit(xtr.numpy(), ytr.numpy()).score(xte.numpy(), yte.numpy()),
    }
    # The classifier's posterior against scipy's densities with scikit-learn's covariances.
    g = xte[:50].numpy()
    joint = []
    for k, cls in enumerate(clf.classes_.tolist()):
        xc = xtr.numpy()[ytr.numpy() == cls]
        skc = SkPCA(n_components=m_clf, svd_solver="full").fit(xc)
        cov = skc.get_covariance() * (len(xc) - 1) / len(xc)
        joint.append(mvn(skc.mean_, cov).logpdf(g) + float(clf.log_priors_[k]))
    joint = np.stack(joint, axis=1)
    ref_post = joint - np.logaddexp.reduce(joint, axis=1, keepdims=True)
    rows.append(
        Agreement(
            f"class posterior ln p(c | x), digits, M = {m_clf}",
            "PPCAClassifier.predict_log_proba",
            "scipy densities, scikit-learn covariances, Bayes' rule",
            float(np.max(np.abs(clf.predict_log_proba(g).numpy() - ref_post))),
            "max absolute",
            1e-9,  # float64 rounding of 64 x 64 determinants and quadratic forms
        )
    )

    def full_ll(train, test, ridge):
        cov = torch.cov(train.T, correction=0) + ridge * torch.eye(
            train.shape[1], dtype=train.dtype
        )
        return float(
            torch.distributions.MultivariateNormal(train.mean(0), cov).log_prob(test).mean()
        )

    def diag_ll(train, test, ridge):
        sd = (train.var(0, correction=0) + ridge).sqrt()
        return float(torch.distributions.Normal(train.mean(0), sd).log_prob(test).sum(1).mean())

    ridges = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    k = int(0.75 * len(xtr))
    r_full = max(ridges, key=lambda r: full_ll(xtr[:k], xtr[k:], r))
    r_diag = max(ridges, key=lambda r: diag_ll(xtr[:k], xtr[k:], r))
    sel_d = ppca.select_latent_dim(xtr, "heldout", max_dim=20 if quick else None, seed=0)
    density = {
        f"PPCA (M = {sel_d.latent_dim})": float(
            ppca.log_likelihood(xte, ppca.closed_form(xtr, sel_d.latent_dim)).mean()
        ),
        f"full Gaussian (ridge {r_full:g})": full_ll(xtr, xte, r_full),
        f"diagonal Gaussian (ridge {r_diag:g})": diag_ll(xtr, xte, r_diag),
    }
    name = "ppca_comparison.png"
    plots.save(
        plots.plot_ppca_comparison(
            {"held-out ln p(x) per digit image": density, "test accuracy": accuracy}
        ),
        out_dir / name,
    )

    return xd, m_clf, accuracy, density


def _missing_pixels(
    xd: torch.Tensor, out_dir: Path, quick: bool
) -> tuple[ppca.EMResult, float, float, bool]:
    # 30% of the digits' pixels missing: the exact missing-data EM, then imputation.
    rng = np.random.default_rng(0)
    mask = torch.from_numpy(rng.random(xd.shape) < 0.3)
    xm = xd.clone()
    xm[mask] = float("nan")
    em_miss = ppca.em(xm, 10, tol=1e-8, max_iter=10 if quick else 300, seed=0)
    filled = ppca.impute(xm, em_miss.params)
    rmse_ppca = float((filled - xd)[mask].square().mean().sqrt())
    rmse_mean = float((torch.nanmean(xm, 0).expand_as(xd) - xd)[mask].square().mean().sqrt())
    monotone = bool(
        (em_miss.log_likelihood.diff() >= -1e-9 * em_miss.log_likelihood[1:].abs()).all()
    )
    # Quick mode leaves out two figures (matplotlib's layout is most of their time).
    if not quick:
        name = "ppca_imputation.png"
        plots.save(plots.plot_ppca_imputation(xd[:6], xm[:6], filled[:6]), out_dir / name)
        name = "ppca_generative.png"
        truth2 = ppca.PPCAParams(
            torch.tensor([[2.0], [1.0]], dtype=torch.float64),
            torch.tensor([1.0, -1.0], dtype=torch.float64),
            torch.tensor(0.25, dtype=torch.float64),
        )
        plots.save(
            plots.plot_ppca_generative(ppca.sample(truth2, 1000, seed=0), truth2), out_dir / name
        )
    return em_miss, rmse_ppca, rmse_mean, monotone


def _markdown(
    sel: dict,
    m_clf: int,
    accuracy: dict[str, float],
    density: dict[str, float],
    em_miss: ppca.EMResult,
    rmse_ppca: float,
    rmse_mean: float,
    monotone: bool,
    quick: bool,
) -> str:
    generative_text = (
        ""
        if quick
        else "![Points of a 2-D PPCA with M = 1: the line μ + Wz and the ellipses of C]"
        "(ppca_generative.png)\n\n"
    )
    imputation_text = (
        ""
        if quick
        else "\n![Digits, with 30% of pixels missing (red), imputed](ppca_imputation.png)\n"
    )

    order = sorted(density, key=density.get, reverse=True)
    ranking = (
        f"Ranking: {', '.join(order)}. PPCA's single σ² must stand in for both the nearly "
        "constant border pixels and the ink pixels, where the Gaussians give each pixel its "
        "own variance; with N ≈ 1250 ≫ D = 64 the full covariance is well estimated."
    )
    acc_table = "\n".join(f"| {k} | {v:.3f} |" for k, v in accuracy.items())
    dens_table = "\n".join(f"| {k} | {v:.2f} |" for k, v in density.items())
    return f"""Probabilistic PCA: z ~ N(0, I_M), x | z ~ N(Wz + μ, σ²I), so x ~ N(μ, WWᵀ + σ²I).
The maximum likelihood is in closed form (the principal subspace, with the mean discarded
eigenvalue as σ²); EM and the Pyro model (`MarginalPPCA`, empty guide, SVI with L-BFGS)
reach it.

{generative_text}![EM's distance to the closed form's ln L* per iteration](ppca_em.png)

**Choosing M** on synthetic data (D = 10, N = 500, 3 directions of variance 15, 10, 5
over σ² = 1): Minka's evidence picks {sel["minka"].latent_dim}, BIC
{sel["bic"].latent_dim}, 5-fold cross-validation {sel["heldout"].latent_dim}.

![The three criteria against M](ppca_selection.png)

**Classifier** on the 8 × 8 digits (70/30 split, stratified, seed 0): one PPCA per class,
Bayes' rule with the class frequencies as priors; M = {m_clf} chosen on a validation
quarter of the training set.

| classifier | test accuracy |
|---|---|
{acc_table}

**Density**, held-out ln p(x) per image (pixels in [0, 1]; ridges and M chosen on the
training set). Some pixels are blank in every training image, so the full and diagonal
Gaussians need a ridge; PPCA does not (σ² > 0). {ranking}

| density | held-out ln p per image |
|---|---|
{dens_table}

**Missing pixels**: 30% of the digits' pixels removed at random; the exact missing-data
EM (M = 10, {em_miss.n_iter} iterations, observed-data log-likelihood never decreasing:
{monotone}) then the conditional mean E[x_miss | x_obs]: RMSE {rmse_ppca:.3f} on the
missing pixels against {rmse_mean:.3f} for the column means.
{imputation_text}
![Held-out density and classifier accuracy](ppca_comparison.png)
"""
