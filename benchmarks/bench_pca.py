"""PCA: :func:`ppl_models.pca.fit` against scikit-learn's ``PCA`` (``svd_solver=
"covariance_eigh"``, its fastest solver for tall data, and ``"full"``), with the Gram
product :math:`X^\\top X` as the floor, in time and in peak memory.

Data: 70000 x 784 (MNIST's shape; 10000 x 200 in quick mode) synthetic images with a
power-law spectrum, :math:`\\lambda_i = 5\\, i^{-1.2}` (MNIST's leading eigenvalue is about
5 on the [0, 1] scale and its spectrum decays roughly so), a random orientation and a
positive mean (pixels in [0, 0.4]), in float32 and float64; and the bundled 8 x 8 digits.
M = 50 components (20 in quick mode; 10 on the digits).

Time: each candidate runs the same number of times, interleaved (``_harness.interleave``),
every library on ONE thread (``torch.set_num_threads(1)``, ``threadpool_limits(1)``): equal
resources, and no two thread pools competing on a loaded machine. The floor is numpy's
``x.T @ x`` (BLAS ``syrk``) on the data's dtype; ``pca.fit`` and scikit-learn's
``covariance_eigh`` both do that product plus a :math:`D \\times D` eigendecomposition.

Accuracy: every timed answer is compared with a float64 reference (numpy ``eigh`` of the
covariance of the explicitly centred float64 data): the projector distance
:math:`\\|P - P_{ref}\\|_F` of the M-dimensional subspace and the largest relative error of
the M eigenvalues (scikit-learn's rescaled by (N-1)/N).

Memory: each method runs once in a fresh subprocess that first makes the data; the peak
resident set size is reset (``/proc/self/clear_refs``) once the data exist and read
(``VmHWM``) after the fit. Reported: (data + the fit's peak growth) / data array size.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from benchmarks._harness import Row, interleave, ratio_row

_ROOT = Path(__file__).resolve().parents[1]
_METHODS = ("pca.fit", "sklearn covariance_eigh", "sklearn full", "gram X^T X")


def make_data(n: int, d: int, dtype: np.dtype, seed: int = 0) -> np.ndarray:
    """Synthetic images: power-law spectrum 5 i^-1.2, random orientation, mean in [0, 0.4].

    Generated in row chunks straight into the result (no full-size float64 temporary).
    """
    rng = np.random.default_rng(seed)
    scale = np.sqrt(5.0 * np.arange(1, d + 1) ** -1.2)
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    a = scale[:, None] * q.T  # rows of z scaled, then rotated: cov = Q diag(scale^2) Q^T
    mean = rng.uniform(0.0, 0.4, d)
    out = np.empty((n, d), dtype=dtype)
    rows = 8192
    for s in range(0, n, rows):
        z = rng.standard_normal((min(rows, n - s), d))
        out[s : s + rows] = z @ a + mean
    return out


def _reference(x: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-m eigenvalues (descending) and eigenvectors of the float64 centred covariance."""
    mean = x.mean(0, dtype=np.float64)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for s in range(0, x.shape[0], 8192):
        c = x[s : s + 8192].astype(np.float64) - mean
        cov += c.T @ c
    evals, evecs = np.linalg.eigh(cov / x.shape[0])
    return evals[::-1][:m].copy(), np.ascontiguousarray(evecs[:, ::-1][:, :m])


def _accuracy(
    ref: tuple[np.ndarray, np.ndarray], evals: np.ndarray, components: np.ndarray
) -> tuple[float, float]:
    from ppl_models.pca import projector_distance

    dist = float(
        projector_distance(
            torch.from_numpy(ref[1]), torch.from_numpy(np.ascontiguousarray(components))
        )
    )
    rel = float(np.max(np.abs(evals.astype(np.float64) - ref[0]) / ref[0]))
    return dist, rel


def _candidates(x: np.ndarray, m: int, last: dict) -> dict:
    from sklearn.decomposition import PCA as SkPCA

    from ppl_models import pca

    xt = torch.from_numpy(x)  # shares memory with x
    n = x.shape[0]

    def ours() -> None:
        p = pca.fit(xt, m)
        last["pca.fit"] = (p.explained_variance.numpy(), p.components.numpy())

    def sk_solver(solver: str):
        def call() -> None:
            sk = SkPCA(n_components=m, svd_solver=solver).fit(x)
            last[f"sklearn {solver}"] = (sk.explained_variance_ * (n - 1) / n, sk.components_.T)

        return call

    def gram() -> None:
        x.T @ x

    return {
        "pca.fit": ours,
        "sklearn covariance_eigh": sk_solver("covariance_eigh"),
        "sklearn full": sk_solver("full"),
        "gram X^T X": gram,
    }


def _one_blas_thread():
    """``threadpool_limits(1)`` over every BLAS this benchmark uses. It reaches only the
    libraries loaded when it is entered, and scipy.linalg (pca's eigensolver) and
    scikit-learn bring their own OpenBLAS: load them first (otherwise the eigensolver runs
    on all cores and contends with the rest, many times slower on a loaded machine)."""
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _memory_child(method: str, n: int, d: int, dtype: str, m: int) -> None:
    """Run in a fresh interpreter: make the data, reset the peak RSS, run ``method`` once."""

    torch.set_num_threads(1)
    with _one_blas_thread():
        x = make_data(n, d, np.dtype(dtype))
        # Warm up on a small slice first: lazy imports and library code pages are not the
        # method's working memory.
        _candidates(np.ascontiguousarray(x[:200]), min(m, 10), {})[method]()
        call = _candidates(x, m, {})[method]
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            reset = True
        except OSError:
            reset = False
        before = _status_kb("VmRSS") if reset else _status_kb("VmHWM")
        call()
        peak = _status_kb("VmHWM")
    print(json.dumps({"growth": (peak - before) * 1024, "data": x.nbytes, "reset": reset}))


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_memory(method: str, n: int, d: int, dtype: str, m: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = (
        f"import benchmarks.bench_pca as b; b._memory_child({method!r}, {n}, {d}, {dtype!r}, {m})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Row]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _one_blas_thread():
            return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _time_case(x: np.ndarray, m: int, repeats: int, case: str, memory: bool) -> list[Row]:
    ref = _reference(x, m)
    last: dict = {}
    cands = _candidates(x, m, last)
    # Warm the fast candidates (lazy imports, first-call set-up); the slow SVD needs none
    # beyond what scikit-learn's other solver has loaded.
    for name in ("pca.fit", "sklearn covariance_eigh", "gram X^T X"):
        cands[name]()
    times = interleave(cands, repeats=repeats, warmup=0)
    acc = {name: _accuracy(ref, *last[name]) for name in _METHODS[:3]}
    note = "vs float64 reference (‖P - P_ref‖_F, max rel. eigenvalue error): " + "; ".join(
        f"{name} {a[0]:.1e}, {a[1]:.1e}" for name, a in acc.items()
    )
    rows = [
        ratio_row("pca_fit", case, "pca.fit", f"sklearn {s}", times["pca.fit"], times[b], note=note)
        for s, b in (
            ("covariance_eigh", "sklearn covariance_eigh"),
            ("full", "sklearn full"),
        )
    ]
    rows.append(
        ratio_row(
            "pca_fit", case, "pca.fit", "gram X^T X (floor)", times["pca.fit"], times["gram X^T X"]
        )
    )
    rows.append(
        ratio_row(
            "pca_fit",
            case,
            "sklearn covariance_eigh",
            "gram X^T X (floor)",
            times["sklearn covariance_eigh"],
            times["gram X^T X"],
        )
    )
    if memory:
        n, d = x.shape
        for name in _METHODS:
            r = _peak_memory(name, n, d, x.dtype.name, m)
            mb = 2.0**20
            rows.append(
                ratio_row(
                    "pca_peak_memory",
                    case,
                    name,
                    "data array",
                    [(r["data"] + r["growth"]) / mb],
                    [r["data"] / mb],
                    unit="MB",
                    note="peak RSS (data + growth during the fit) / data array size"
                    + ("" if r["reset"] else "; VmHWM could not be reset: a lower bound"),
                )
            )
    return rows


def _run(quick: bool) -> list[Row]:
    from ppl_models.datasets import load_digits

    n, d, m = (10000, 200, 20) if quick else (70000, 784, 50)
    repeats = 5
    rows: list[Row] = []
    for dtype in (np.float32, np.float64):
        x = make_data(n, d, np.dtype(dtype))
        case = f"synthetic {n}x{d}, {np.dtype(dtype).name}, M={m}, 1 thread"
        # Quick mode skips the memory subprocesses (a few seconds of imports each).
        rows += _time_case(x, m, repeats, case, memory=not quick)
        del x
        gc.collect()
    digits = load_digits(torch.float64).x.numpy()
    rows += _time_case(
        digits, 10, 7 if quick else 21, "digits 1797x64, float64, M=10, 1 thread", memory=False
    )
    return rows
