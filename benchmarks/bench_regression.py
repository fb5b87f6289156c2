"""Regression: the least-squares solve of :func:`ppl_models.regression.mle` against numpy's
``lstsq`` (LAPACK gelsd) and scikit-learn's ``LinearRegression(fit_intercept=False)``.

The design is PRML's degree-9 polynomial on x uniform in [0, 1] (condition number ~4e6),
float64, N = 100000 (20000 in quick mode). ``mle`` factors a tall design as Q R and takes
the SVD of the small R; the baselines solve the same problem by SVD (gelsd). Every timed
answer is checked against numpy's: the note gives the largest relative difference in w and
the relative excess of the residual sum of squares over numpy's (0 = as good an optimum).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from benchmarks._harness import Row, interleave, ratio_row


def run(quick: bool) -> list[Row]:
    from threadpoolctl import threadpool_limits

    # numpy's lstsq with 2 OpenBLAS threads on a busy 2-core machine took 0.30 s here and
    # 0.035 s with one (busy-waiting thread pools); torch's QR was ~2x faster with one
    # thread than with two. Everything runs with one thread: equal resources, each at its
    # best setting here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> list[Row]:
    from sklearn.linear_model import LinearRegression as SkLinearRegression

    from ppl_models.regression import mle, polynomial_features

    n = 20000 if quick else 100000
    repeats = 3 if quick else 7
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, n)
    t_np = np.sin(2 * np.pi * x) + 0.3 * rng.standard_normal(n)
    phi = polynomial_features(torch.from_numpy(x), 9)
    t = torch.from_numpy(t_np)
    phi_np = phi.numpy()

    w_ref = np.linalg.lstsq(phi_np, t_np, rcond=None)[0]

    def rss(w: np.ndarray) -> float:
        r = phi_np @ w - t_np
        return float(r @ r)

    rss_ref = rss(w_ref)
    answers: dict[str, list[tuple[float, float]]] = {"mle": [], "sklearn": []}

    def check(name: str, w: np.ndarray) -> None:
        rel_w = float(np.abs(w - w_ref).max() / np.abs(w_ref).max())
        answers[name].append((rel_w, rss(w) / rss_ref - 1.0))

    def ours() -> None:
        check("mle", mle(phi, t).w.numpy())

    def numpy_lstsq() -> None:
        np.linalg.lstsq(phi_np, t_np, rcond=None)

    def sklearn() -> None:
        check("sklearn", SkLinearRegression(fit_intercept=False).fit(phi_np, t_np).coef_)

    times = interleave({"mle": ours, "numpy": numpy_lstsq, "sklearn": sklearn}, repeats=repeats)
    case = f"N={n}, M=10 (degree 9), float64, cond {np.linalg.cond(phi_np):.1e}, 1 thread"
    worst = {k: tuple(max(a[i] for a in v) for i in range(2)) for k, v in answers.items()}
    note = (
        "w vs numpy (max rel. diff; relative excess of the residual sum of squares): "
        f"mle {worst['mle'][0]:.1e}, {worst['mle'][1]:.1e}; "
        f"sklearn {worst['sklearn'][0]:.1e}, {worst['sklearn'][1]:.1e}"
    )
    return [
        ratio_row(
            "regression_lstsq",
            case,
            "mle (QR + SVD, torch)",
            "numpy.linalg.lstsq (gelsd)",
            times["mle"],
            times["numpy"],
            note=note,
        ),
        ratio_row(
            "regression_lstsq",
            case,
            "mle (QR + SVD, torch)",
            "sklearn LinearRegression(fit_intercept=False)",
            times["mle"],
            times["sklearn"],
            note=note,
        ),
    ]
