"""Probabilistic PCA against its baselines, in time (interleaved, ratio per repeat) and in
accuracy.

* ``ppca.closed_form`` against scikit-learn's ``PCA(svd_solver="covariance_eigh")`` (its
  fastest solver for tall data; the fitted ``PCA`` is a PPCA too) and ``pca.fit``, on the
  synthetic 70000 x 784 images of ``bench_pca`` (10000 x 200 in quick mode), M = 50, one
  thread per library, as ``bench_pca`` measures PCA. Accuracy: the model covariance
  against scikit-learn's rescaled by (N-1)/N.
* ``ppca.em`` run to a relative log-likelihood change of 1e-6, against ``closed_form``:
  time ratio, iterations, and the remaining relative gap to ln L*.
* ``MarginalPPCA`` fitted by ``fit_svi`` (empty guide, Adam) against a hand-written torch
  loop on the same loss, ``-LowRankMultivariateNormal(mu, W, sigma^2).log_prob(x).sum()``
  with ``sigma = exp(u)`` (what ``constraints.positive`` does), same initial values, same
  optimiser and learning rate, same number of steps: the per-step overhead of Pyro and of
  ``fit_svi``. N = 20000, D = 64, M = 10, float64.
* ``ppca.log_likelihood`` against scikit-learn's ``PCA.score_samples`` (which forms the
  D x D precision; ours works through the M x M matrix), same data, same fitted model.

Ratio > 1: the project's method is slower.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from benchmarks._harness import Row, interleave, ratio_row
from benchmarks.bench_pca import make_data


def _closed_form_rows(x: np.ndarray, m: int, repeats: int, case: str) -> list[Row]:
    from sklearn.decomposition import PCA as SkPCA

    from ppl_models import pca, ppca

    xt = torch.from_numpy(x)
    n = x.shape[0]
    last: dict = {}

    def ours() -> None:
        last["ours"] = ppca.closed_form(xt, m)

    def sk() -> None:
        last["sk"] = SkPCA(n_components=m, svd_solver="covariance_eigh").fit(x)

    def pca_fit() -> None:
        pca.fit(xt, m)

    cands = {"closed_form": ours, "sklearn": sk, "pca.fit": pca_fit}
    times = interleave(cands, repeats=repeats, warmup=1)
    c = ppca.covariance(last["ours"]).to(torch.float64).numpy()
    c_sk = last["sk"].get_covariance().astype(np.float64) * (n - 1) / n
    note = (
        f"max |C - C_sklearn (N-1)/N| / max |C| = {np.abs(c - c_sk).max() / np.abs(c_sk).max():.1e}"
    )
    return [
        ratio_row(
            "ppca_closed_form",
            case,
            "ppca.closed_form",
            'sklearn PCA(svd_solver="covariance_eigh")',
            times["closed_form"],
            times["sklearn"],
            note=note,
        ),
        ratio_row(
            "ppca_closed_form",
            case,
            "ppca.closed_form",
            "pca.fit (eigh)",
            times["closed_form"],
            times["pca.fit"],
        ),
    ]


def _em_rows(x: np.ndarray, m: int, repeats: int, case: str) -> list[Row]:
    from ppl_models import ppca

    xt = torch.from_numpy(x)
    last: dict = {}

    def em() -> None:
        last["em"] = ppca.em(xt, m, tol=1e-6, max_iter=100000, seed=0)

    def closed() -> None:
        last["closed"] = ppca.closed_form(xt, m)

    times = interleave({"em": em, "closed_form": closed}, repeats=repeats, warmup=1)
    r = last["em"]
    ll_star = float(ppca.log_likelihood(xt.to(torch.float64), last["closed"]).sum())
    gap = abs(ll_star - float(r.log_likelihood[-1])) / abs(ll_star)
    return [
        ratio_row(
            "ppca_em",
            case,
            "ppca.em (tol 1e-6, on S)",
            "ppca.closed_form",
            times["em"],
            times["closed_form"],
            note=f"{r.n_iter} iterations, converged {r.converged}; "
            f"(ln L* - ln L_EM) / |ln L*| = {gap:.1e}",
        )
    ]


def _hand_loop(x: torch.Tensor, init, steps: int, lr: float, lemma: bool = False) -> float:
    """Adam on -sum log N(x | mu, W W^T + sigma^2 I): through torch's
    LowRankMultivariateNormal, or (``lemma``) through the inversion and determinant lemmas
    that MarginalPPCA itself evaluates (ppca._base.log_likelihood_complete)."""
    from ppl_models.ppca import PPCAParams
    from ppl_models.ppca._base import log_likelihood_complete

    w = init.W.clone().requires_grad_(True)
    mu = init.mu.clone().requires_grad_(True)
    u = init.sigma2.sqrt().log().clone().requires_grad_(True)
    opt = torch.optim.Adam([w, mu, u], lr=lr)
    d = x.shape[1]
    for _ in range(steps):
        opt.zero_grad()
        s2 = torch.exp(u) ** 2
        if lemma:
            loss = -log_likelihood_complete(x, PPCAParams(w, mu, s2)).sum()
        else:
            fn = torch.distributions.LowRankMultivariateNormal(
                mu, w, s2.expand(d), validate_args=False
            )
            loss = -fn.log_prob(x).sum()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _svi_rows(n: int, d: int, m: int, steps: int, repeats: int) -> list[Row]:
    from ppl_models import ppca
    from ppl_models.datasets import make_ppca_data
    from ppl_models.inference import fit_svi

    x = make_ppca_data(n, d, m, sigma2=1.0, seed=0).x
    g = torch.Generator().manual_seed(0)
    init = ppca.PPCAParams(
        0.1 * torch.randn(d, m, generator=g, dtype=torch.float64),
        torch.zeros(d, dtype=torch.float64),
        torch.tensor(1.0, dtype=torch.float64),
    )
    lr = 0.01

    def svi() -> float:
        model = ppca.MarginalPPCA(d, m, init=init)
        return float(fit_svi(model, x, lr=lr, num_steps=steps, tol=0, progress=False).losses[-1])

    def hand() -> float:
        return _hand_loop(x, init, steps, lr)

    def hand_lemma() -> float:
        return _hand_loop(x, init, steps, lr, lemma=True)

    a, b, c = svi(), hand(), hand_lemma()
    times = interleave({"svi": svi, "hand": hand, "lemma": hand_lemma}, repeats=repeats, warmup=0)
    rows = []
    for key, final, what in (
        ("hand", b, "hand-written torch loop (LowRankMultivariateNormal)"),
        ("lemma", c, "hand-written torch loop (the same lemma formula)"),
    ):
        same = abs(a - final) <= 1e-6 * abs(final)
        rows.append(
            ratio_row(
                "ppca_svi_overhead",
                f"MarginalPPCA N={n}, D={d}, M={m}, float64, {steps} Adam steps",
                "fit_svi(MarginalPPCA)",
                what,
                [t / steps for t in times["svi"]],
                [t / steps for t in times[key]],
                note="per step; final losses "
                + ("agree" if same else f"differ: {a:.6g} vs {final:.6g}"),
            )
        )
    return rows


def _loglik_rows(x: np.ndarray, m: int, repeats: int, case: str) -> list[Row]:
    from sklearn.decomposition import PCA as SkPCA

    from ppl_models import ppca

    sk = SkPCA(n_components=m, svd_solver="covariance_eigh").fit(x)
    n = x.shape[0]
    # The same model for both: scikit-learn's fitted PCA as PPCAParams.
    lam = sk.explained_variance_.astype(np.float64)
    s2 = float(sk.noise_variance_)
    w = sk.components_.T.astype(np.float64) * np.sqrt(np.maximum(lam - s2, 0))
    params = ppca.PPCAParams(
        torch.from_numpy(w).to(torch.float32 if x.dtype == np.float32 else torch.float64),
        torch.from_numpy(sk.mean_.astype(x.dtype)),
        torch.tensor(s2, dtype=torch.float32 if x.dtype == np.float32 else torch.float64),
    )
    xt = torch.from_numpy(x)
    last: dict = {}

    def ours() -> None:
        last["ours"] = ppca.log_likelihood(xt, params)

    def theirs() -> None:
        last["sk"] = sk.score_samples(x)

    times = interleave({"ours": ours, "sk": theirs}, repeats=repeats, warmup=1)
    a = last["ours"].to(torch.float64).numpy()
    b = last["sk"].astype(np.float64)
    del n
    return [
        ratio_row(
            "ppca_log_likelihood",
            case,
            "ppca.log_likelihood",
            "sklearn PCA.score_samples",
            times["ours"],
            times["sk"],
            note=f"max relative difference {np.max(np.abs(a - b) / np.abs(b)):.1e}",
        )
    ]


def run(quick: bool) -> list[Row]:
    # threadpool_limits reaches only the BLAS libraries loaded when it is entered: load
    # scipy.linalg's own OpenBLAS (used by pca._top_eigh) and scikit-learn's first, or
    # their threads stay unlimited and spin against the other pool (measured: the
    # eigendecomposition then took 1.7-11 s instead of 0.12 s on a loaded machine).
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    from threadpoolctl import threadpool_limits

    import ppl_models.ppca  # noqa: F401

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> list[Row]:
    n, d, m = (10000, 200, 20) if quick else (70000, 784, 50)
    repeats = 3 if quick else 5
    rows: list[Row] = []
    for dtype in (np.float32, np.float64):
        x = make_data(n, d, np.dtype(dtype))
        case = f"synthetic {n}x{d}, {np.dtype(dtype).name}, M={m}, 1 thread"
        rows += _closed_form_rows(x, m, repeats, case)
        rows += _loglik_rows(x, m, repeats, case)
        if dtype is np.float32:
            rows += _em_rows(x, m, repeats, case)
        del x
    rows += _svi_rows(5000 if quick else 10000, 64, 10, 50 if quick else 100, repeats)
    return rows
