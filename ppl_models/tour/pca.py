"""The PCA topic's part of the tour: the bundled digits, the eigendecomposition checked
against numpy and scikit-learn, PRML 12.18 in numbers, EM and the Pyro model fitted by SVI
against the closed form."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .. import pca, plots
from ..datasets import load_digits, load_mnist
from ..inference import fit_svi
from ._section import Agreement, Section

# Numbers of components of PRML Fig. 12.5 on the 8 x 8 digits (D = 64) and on MNIST (D = 784).
DIGITS_MS = (1, 5, 10, 30)
MNIST_MS = (1, 10, 50, 250)


def _mnist_figure(folder: str, out_dir: Path, quick: bool) -> str:
    """PRML Fig. 12.5 on MNIST, when a folder of IDX files is named by PPL_MODELS_MNIST;
    returns the paragraph that shows it."""
    x, _ = load_mnist(folder, "train", dtype=torch.float32, num_points=10000 if quick else None)
    p = pca.fit(x, max(MNIST_MS))
    name = "pca_mnist_reconstructions.png"
    plots.save(plots.plot_pca_reconstructions(x[:3], p, ms=MNIST_MS), out_dir / name)
    kept = float(pca.explained_variance_ratio(p, x)[:50].sum())
    text = (
        f"\n\nOn MNIST ({x.shape[0]} training images, D = 784) the first 50 components keep "
        f"{100 * kept:.1f}% of the variance (PRML Fig. 12.5: M = 1, 10, 50, 250).\n\n"
        f"![MNIST digits reconstructed with M = 1, 10, 50, 250 components]({name})"
    )
    return text


def section(out_dir: Path, quick: bool) -> Section:
    """Fit PCA on the bundled digits, write its figures to ``out_dir``, report the
    agreements. ``quick``: the SVI check with M = 2 only (about 3 s) instead of M = 2 and
    10, and fewer figure panels."""
    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    # D = 64: every product is small; a second intra-op thread only adds contention.
    torch.set_num_threads(1)
    try:
        x, labels = load_digits(torch.float64)
        rows: list[Agreement] = []
        losses: dict[str, float] = {}
        ref, full, identity = _closed_form_rows(x, rows)
        em = _route_rows(x, rows)
        svi_params = _svi_rows(x, ref, quick, rows, losses)
        mnist_text = _figures(x, labels, ref, full, em, svi_params, out_dir, quick)
        kept = np.cumsum(ref) / ref.sum()
    finally:
        torch.set_num_threads(threads)
    return Section(
        "pca",
        "Principal component analysis",
        _markdown(x.shape, identity, kept, quick, mnist_text),
        rows,
        losses,
    )


def _closed_form_rows(
    x: torch.Tensor, rows: list[Agreement]
) -> tuple[np.ndarray, pca.PCAParams, dict[int, tuple[float, float]]]:
    """The eigenvalues against numpy's and PRML 12.18 in numbers; returns numpy's
    eigenvalues, the full fit and J(M) beside the discarded eigenvalues."""
    n, d = x.shape
    # The independent reference: numpy's eigvalsh of the centred (1/N) covariance.
    xn = x.numpy()
    xc = xn - xn.mean(0)
    ref = np.linalg.eigvalsh(xc.T @ xc / n)[::-1]
    full = pca.fit(x, d)
    lam = full.explained_variance.numpy()
    # The digits have pixels that are always 0: the last eigenvalues are 0 up to
    # rounding, where a relative error means nothing; compare the leading 30.
    k = max(DIGITS_MS)
    rows.append(
        Agreement(
            f"eigenvalues λ_1..λ_{k}",
            "pca.fit (eigh: X^T X/N - x̄x̄^T, LAPACK syevr)",
            "numpy eigvalsh of the centred covariance",
            float(np.max(np.abs(lam[:k] - ref[:k]) / ref[:k])),
            "max |Δλ_i| / λ_i",
            # float64 eigensolvers on a 64 x 64 matrix with λ_30/λ_1 = 0.03: ~1e-14;
            # the rest is room for the two covariances' different summation orders.
            1e-10,
        )
    )

    # PRML 12.18: J(M) = sum of the discarded eigenvalues.
    identity = {}
    for m in DIGITS_MS:
        j = float(pca.reconstruction_error(x, pca.fit(x, m)))
        identity[m] = (j, float(ref[m:].sum()))
    rows.append(
        Agreement(
            f"reconstruction error J(M), M = {', '.join(map(str, DIGITS_MS))}",
            "mean squared residual of pca.reconstruct",
            "sum of discarded numpy eigenvalues (PRML 12.18)",
            max(abs(a / b - 1) for a, b in identity.values()),
            "max relative",
            # The residual is formed directly (no cancellation): float64 rounding only.
            1e-10,
        )
    )

    return ref, full, identity


def _route_rows(x: torch.Tensor, rows: list[Agreement]) -> pca.EMResult:
    """The same subspace by scikit-learn, the SVD and Roweis's EM; returns EM's result."""
    xn = x.numpy()
    from sklearn.decomposition import PCA as SkPCA

    m = 10
    eigh = pca.fit(x, m, method="eigh")
    sk = SkPCA(n_components=m, svd_solver="full").fit(xn)
    rows.append(
        Agreement(
            f"principal subspace (M = {m})",
            "pca.fit (eigh)",
            'scikit-learn PCA(svd_solver="full")',
            float(pca.projector_distance(eigh, torch.from_numpy(sk.components_.T))),
            "‖P - P_sklearn‖_F",
            # Two float64 factorisations; the gap λ_10/λ_11 = 1.3 amplifies rounding
            # ~10x at most: ~1e-14 expected.
            1e-8,
        )
    )
    svd = pca.fit(x, m, method="svd")
    rows.append(
        Agreement(
            f"principal subspace (M = {m})",
            "pca.fit (svd)",
            "pca.fit (eigh)",
            float(pca.projector_distance(svd, eigh)),
            "‖P - P_eigh‖_F",
            1e-8,  # as for scikit-learn: float64 rounding through the same gap
        )
    )
    em = pca.em(x, m, tol=1e-10, max_iter=2000, seed=0)
    rows.append(
        Agreement(
            f"principal subspace (M = {m})",
            f"EM for PCA (Roweis), {em.n_iter} iterations",
            "pca.fit (eigh)",
            float(pca.projector_distance(em.params, eigh)),
            "‖P - P_eigh‖_F",
            # EM stops when the subspace moves < 1e-10; what is left to the fixed point
            # is ~tol r / (1 - r), r = λ_11/λ_10 = 0.77: ~3e-10.
            1e-6,
        )
    )

    return em


def _svi_rows(
    x: torch.Tensor,
    ref: np.ndarray,
    quick: bool,
    rows: list[Agreement],
    losses: dict[str, float],
) -> dict[int, pca.PCAParams]:
    """The Pyro model fitted by SVI against the closed form; returns its fits by M."""
    d = x.shape[1]
    # The Pyro model: maximum likelihood (empty guide) by L-BFGS in float64, mu started
    # at the sample mean (its maximum-likelihood value; see pca.PCA).
    svi_ms = (2,) if quick else (2, 10)
    svi_params = {}
    for m in svi_ms:
        module = pca.PCA(d, m, mean=x.mean(0), seed=0)
        fit = fit_svi(module, x, optimizer="lbfgs", num_steps=100, progress=False)
        losses[f"svi_lbfgs_M{m}"] = float(fit.losses[-1])
        ref_m = pca.fit(x, m)
        got = module.principal_axes(x)
        svi_params[m] = got
        rows.append(
            Agreement(
                f"principal subspace (M = {m})",
                f"Pyro PCA, SVI (empty guide, L-BFGS, {fit.num_steps} steps)",
                "pca.fit (eigh)",
                float(pca.projector_distance(got, ref_m)),
                "‖P - P_eigh‖_F",
                # The bound. L-BFGS stops on its own tolerances; measured ~2e-8
                # for M = 2 and ~1e-5 for M = 10 (gap λ_10 - λ_11 = 8.5 against 22 for M = 2).
                1e-3,
            )
        )
        sigma2 = float(module.sigma.detach()) ** 2
        rows.append(
            Agreement(
                f"noise variance σ² (M = {m})",
                "Pyro PCA, SVI (empty guide, L-BFGS)",
                "J(M) / D, J = sum of discarded eigenvalues",
                abs(sigma2 / (float(ref[m:].sum()) / d) - 1),
                "relative",
                # σ² = J / D at the optimum, and J is stationary there: its error is
                # quadratic in the subspace's (measured ~1e-9).
                1e-3,
            )
        )

    return svi_params


def _figures(
    x: torch.Tensor,
    labels: torch.Tensor,
    ref: np.ndarray,
    full: pca.PCAParams,
    em: pca.EMResult,
    svi_params: dict[int, pca.PCAParams],
    out_dir: Path,
    quick: bool,
) -> str:
    """Draw the section's figures; returns the MNIST paragraph (if any)."""
    lam = full.explained_variance.numpy()
    k = max(DIGITS_MS)
    m_sub = 10
    # Figures.
    # Quick mode draws fewer panels (matplotlib's layout is most of its time).
    name = "pca_digits_reconstructions.png"
    shown = x[[0, 1]] if quick else x[[0, 1, 2, 3]]
    plots.save(plots.plot_pca_reconstructions(shown, full, ms=DIGITS_MS), out_dir / name)
    name = "pca_spectrum.png"
    plots.save(plots.plot_pca_spectrum(lam, latent_dim=10), out_dir / name)
    if not quick:
        name = "pca_components.png"
        plots.save(plots.plot_pca_components(full, n=8), out_dir / name)
    two = pca.fit(x, 2)
    name = "pca_projection.png"
    plots.save(
        plots.plot_pca_projection(pca.transform(x, two), labels, title="PCA of the digits"),
        out_dir / name,
    )
    name = "pca_agreement.png"
    estimates = {
        "eigh": lam[:k],
        "svd": pca.fit(x, k, method="svd").explained_variance.numpy(),
        f"EM (M = {m_sub})": em.params.explained_variance.numpy(),
    }
    for m_svi, p in svi_params.items():
        estimates[f"SVI (M = {m_svi})"] = p.explained_variance.numpy()
    plots.save(plots.plot_pca_agreement(ref[:k], estimates), out_dir / name)

    mnist_text = ""
    folder = os.environ.get("PPL_MODELS_MNIST")
    if folder:
        mnist_text = _mnist_figure(folder, out_dir, quick)
    return mnist_text


def _markdown(
    shape: torch.Size,
    identity: dict[int, tuple[float, float]],
    kept: np.ndarray,
    quick: bool,
    mnist_text: str,
) -> str:
    n, d = shape
    components_text = (
        ""
        if quick
        else "![The mean and the first eight principal directions (PRML Fig. 12.3)]"
        "(pca_components.png)\n\n"
    )
    table = "\n".join(
        f"| {m} | {a:.6f} | {b:.6f} | {100 * kept[m - 1]:.1f}% |" for m, (a, b) in identity.items()
    )
    return f"""PCA of the {n} bundled 8 × 8 digits (D = {d}, pixel values 0..16). The
principal directions are the leading eigenvectors of the covariance S (divisor N); the
reconstruction x̃ = x̄ + U_M U_Mᵀ(x - x̄) with M components misses, on average, exactly the
sum of the discarded eigenvalues (PRML 12.18):

| M | mean squared error J(M) | Σ_(i>M) λ_i | variance kept |
|---|---|---|---|
{table}

![Digits reconstructed with M = 1, 5, 10, 30 (PRML Fig. 12.5)](pca_digits_reconstructions.png)

![Eigenvalue spectrum and reconstruction error (PRML Fig. 12.4)](pca_spectrum.png)

{components_text}![The digits projected on the first two principal components](pca_projection.png)

The same subspace comes out of four routes: the eigendecomposition of S, the SVD of the
centred data, Roweis's EM (which never forms S), and the Pyro model
x_n ~ N(μ + W Wᵀ(x_n - μ), σ²I) with orthonormal W, fitted by SVI with the empty guide
(maximum likelihood, L-BFGS): its likelihood is a decreasing function of J, so its maximum
is the principal subspace, and σ² = J / D.

![Eigenvalues by each route against numpy's](pca_agreement.png){mnist_text}
"""
