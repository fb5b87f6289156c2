"""Choosing PPCA's latent dimension: Minka's evidence, BIC and held-out likelihood."""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch

from .._checks import (
    as_data,
    check_choice,
    check_int,
)
from .._numerics import (
    chunk_rows,
    column_mean,
    sample_covariance,
)
from ._base import (
    LOG_2PI,
    PPCAParams,
)
from .closed_forms import log_likelihood

# ------------------------------------------- model selection and classification


class LatentDimSelection(NamedTuple):
    r"""What :func:`select_latent_dim` returns.

    Attributes
    ----------
    latent_dim : int
        The chosen :math:`M`.
    dims : torch.Tensor, shape (K,)
        The latent dimensions considered, ``1, ..., max_dim`` (int64).
    scores : torch.Tensor, shape (K,)
        The criterion for each, float64: the log-evidence (``"minka"``, up to a constant
        that does not depend on :math:`M`) and the held-out log-likelihood per point
        (``"heldout"``) are maximised; BIC (``"bic"``) is minimised. ``-inf`` (``+inf``
        for BIC) where :math:`M` is beyond the data's rank (the :math:`M`-th eigenvalue
        is zero up to rounding: that column of ``W`` is not identified).
    method : str
        The criterion used.
    """

    latent_dim: int
    dims: torch.Tensor
    scores: torch.Tensor
    method: str


def _spectrum(x: torch.Tensor) -> torch.Tensor:
    """All D eigenvalues of the divisor-N sample covariance, descending, float64, >= 0."""
    n, d = x.shape
    mean = column_mean(x)
    if d <= n:
        cov = sample_covariance(x, mean, chunk_rows(x, None))
        lam = torch.linalg.eigvalsh(cov).flip(0)
    else:
        s = torch.linalg.svdvals((x - mean).to(torch.float64))
        lam = torch.cat([s**2 / n, torch.zeros(d - s.shape[0], dtype=torch.float64)])
    return lam.clamp_min(0).cpu()


def _eigh_all(x: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All eigenpairs of the divisor-N covariance, descending, float64 (on x's device);
    zero eigenvalues pad the spectrum when D > N."""
    n, d = x.shape
    if d <= n:
        lam, u = torch.linalg.eigh(sample_covariance(x, mean, chunk_rows(x, None)).to(x.device))
        return lam.flip(0).clamp_min(0), u.flip(1)
    _, s, vh = torch.linalg.svd((x - mean).to(torch.float64), full_matrices=True)
    lam = torch.zeros(d, dtype=torch.float64, device=x.device)
    lam[: s.shape[0]] = s**2 / n
    return lam, vh.T


def _noise_floor(lam: torch.Tensor) -> float:
    """The rounding level of the eigenvalues of the float64 covariance: an eigensolver's
    absolute error is about ``D eps lam_1``. A variance below it is zero up to rounding."""
    return 4 * lam.shape[0] * torch.finfo(torch.float64).eps * max(float(lam[0]), 1e-300)


def _discarded_variance(lam: torch.Tensor, m: int) -> float:
    """sigma^2 of the closed form, at least the rounding floor: data with no variance left
    outside M directions are fitted as if sigma^2 were at the rounding level, the best fit
    the arithmetic can tell apart (scikit-learn's _assess_dimension clamps it likewise)."""
    d = lam.shape[0]
    s2 = float(lam[m:].sum()) / (d - m)
    return max(s2, _noise_floor(lam))


def _identified(lam: torch.Tensor, m: int) -> bool:
    """Whether the M-th direction carries variance above rounding (else M is beyond the
    data's rank and the M-th column of W is not identified)."""
    return float(lam[m - 1]) > _noise_floor(lam)


def _max_loglik(lam: torch.Tensor, m: int, n: int) -> float:
    r"""Tipping & Bishop's maximised log-likelihood from the spectrum (sigma^2 floored)."""
    d = lam.shape[0]
    s2 = _discarded_variance(lam, m)
    return -0.5 * n * (d * LOG_2PI + float(torch.log(lam[:m]).sum()) + (d - m) * math.log(s2) + d)


def _minka_log_evidence(lam: torch.Tensor, m: int, n: int) -> float:
    r"""Minka's Laplace approximation :math:`\ln p(D \mid k)`, k = m, without the
    k-independent constant (Minka 2000, section 3)."""
    d = lam.shape[0]
    if not _identified(lam, m):
        return -math.inf
    v = _discarded_variance(lam, m)
    i = torch.arange(1, m + 1, dtype=torch.float64)
    # p(U): the inverse volume of the Stiefel manifold, 2^-k prod Gamma((d-i+1)/2) pi^-(d-i+1)/2
    log_pu = -m * math.log(2.0) + float(
        (torch.lgamma((d - i + 1) / 2) - (d - i + 1) / 2 * math.log(math.pi)).sum()
    )
    log_lik = -0.5 * n * float(torch.log(lam[:m]).sum()) - 0.5 * n * (d - m) * math.log(v)
    n_free = d * m - m * (m + 1) / 2
    log_2pi = 0.5 * (n_free + m) * LOG_2PI
    # ln|A_z| = sum over the pairs i <= k, i < j <= d of
    # ln[(1/lam_hat_j - 1/lam_hat_i)(lam_i - lam_j) N], lam_hat_j = v for j > k. (Tied
    # eigenvalues among the first k make a term 0: the approximation breaks down there.)
    lam_hat = lam.clone()
    lam_hat[m:] = v
    rows, cols = torch.triu_indices(m, d, offset=1)
    terms = (1.0 / lam_hat[cols] - 1.0 / lam_hat[rows]) * (lam[rows] - lam[cols]) * n
    if not bool((terms > 0).all()):
        return -math.inf  # tied eigenvalues among the first M: the approximation breaks down
    log_az = float(torch.log(terms).sum())
    return log_pu + log_lik + log_2pi - 0.5 * log_az - 0.5 * m * math.log(n)


def _bic(lam: torch.Tensor, m: int, n: int) -> float:
    r"""BIC of PPCA with M latent dimensions in the span of the centred data.

    With :math:`N \le D` the centred data span only :math:`r = N - 1` dimensions: the
    other :math:`D - r` eigenvalues are exactly zero, the likelihood in those directions
    is that of no data, and counting them (in :math:`\sigma^2` and in the parameters)
    makes every added dimension look better (on 40 x 100 data of rank 3, BIC ran to the
    largest M allowed). The model is therefore scored in the span, :math:`D' = r`
    coordinates: :math:`\ln L^*` from the :math:`r` non-zero eigenvalues and
    :math:`p = D'M - M(M-1)/2 + 1 + D'` parameters (``W`` up to rotation,
    :math:`\sigma^2`, :math:`\mu`). With :math:`N > D` this is the usual count."""
    d = min(lam.shape[0], n - 1)
    lam = lam[:d]
    if m >= d or not _identified(lam, m):
        return math.inf
    ll = _max_loglik(lam, m, n)
    n_free = d * m - m * (m - 1) / 2 + 1 + d
    return -2.0 * ll + n_free * math.log(n)


def _fold_labels(folds: object, n: int, n_folds: int, seed: int) -> torch.Tensor:
    if folds is None:
        gen = torch.Generator().manual_seed(seed)
        labels = torch.empty(n, dtype=torch.int64)
        labels[torch.randperm(n, generator=gen)] = torch.arange(n) % n_folds
        return labels
    import numpy as np

    f = folds if isinstance(folds, torch.Tensor) else torch.as_tensor(np.asarray(folds))
    if f.ndim != 1 or f.shape[0] != n:
        raise ValueError(f"folds must have shape ({n},) (one fold label per row of x)")
    if f.is_floating_point() or f.is_complex() or f.dtype == torch.bool:
        raise TypeError(f"folds must hold integer fold labels; got dtype {f.dtype}")
    if torch.unique(f).numel() < 2:
        raise ValueError("folds must hold at least 2 different fold labels")
    return f.to(torch.int64).cpu()


def select_latent_dim(
    x: object,
    method: str = "minka",
    *,
    max_dim: int | None = None,
    n_folds: int = 5,
    folds: object = None,
    seed: int = 0,
) -> LatentDimSelection:
    r"""Choose the latent dimension :math:`M` of PPCA.

    Three criteria, each computed for :math:`M = 1, \dots,` ``max_dim`` from the
    eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_D` of the divisor-:math:`N` sample
    covariance (one eigendecomposition) or from :func:`closed_form` fits:

    - ``"minka"``: Minka's Laplace approximation to the evidence :math:`p(X \mid M)`
      (Minka 2000), with :math:`\hat\sigma^2 = \frac{1}{D-M}\sum_{j>M}\lambda_j`,
      :math:`m = DM - M(M+1)/2`,

      .. math::

          p(X \mid M) \approx p(U) \Big(\prod_{j=1}^M \lambda_j\Big)^{-N/2}
              \hat\sigma^{-N(D-M)} (2\pi)^{(m+M)/2} |A_Z|^{-1/2} N^{-M/2},

      :math:`p(U) = 2^{-M} \prod_{i=1}^M \Gamma(\tfrac{D-i+1}{2}) \pi^{-(D-i+1)/2}`,
      :math:`|A_Z| = \prod_{i=1}^M \prod_{j=i+1}^D (\hat\lambda_j^{-1} - \hat\lambda_i^{-1})
      (\lambda_i - \lambda_j) N`, :math:`\hat\lambda_j = \lambda_j` for :math:`j \le M`
      and :math:`\hat\sigma^2` beyond; the score is its logarithm without the constant
      :math:`-\frac{ND}{2}(\ln 2\pi + 1)` that no :math:`M` changes. Maximised.
    - ``"bic"``: :math:`-2 \ln L^* + p \ln N`, :math:`\ln L^*` the maximised
      log-likelihood (see :func:`closed_form`) and :math:`p = DM + 1 + D - M(M-1)/2` the
      free parameters (``W`` up to rotation, :math:`\sigma^2`, :math:`\mu`). Minimised.
    - ``"heldout"``: ``n_folds``-fold cross-validation: each fold's points scored by
      :func:`log_likelihood` under :func:`closed_form` fitted on the other folds; the
      score is the mean held-out log-likelihood per point. Maximised. (A single 80/20
      split is noisy: on 3 strong directions in D = 10 with N = 500 it picks the wrong
      dimension about a quarter of the time.)

    **No noise left.** Where the data have no variance outside :math:`M` directions
    (exactly low-rank data, or noise far below the signal), :math:`\hat\sigma^2` is zero
    up to rounding. That is the best possible fit, not the worst: as scikit-learn's
    ``PCA(n_components="mle")`` does, :math:`\hat\sigma^2` is held at the rounding level
    of the eigenvalues (:math:`4 D \epsilon \lambda_1`), so such an :math:`M` scores
    best; an :math:`M` whose own eigenvalue :math:`\lambda_M` is at that level is beyond
    the data's rank and scores ``-inf`` (``+inf`` for BIC). (:func:`closed_form` still
    refuses to fit an :math:`M` with :math:`\hat\sigma^2 = 0`: its likelihood is
    unbounded.)

    **Fewer rows than columns.** With :math:`N \le D` the centred data span
    :math:`r = N - 1` dimensions; BIC scores the model in that span (:math:`D' = r` in
    :math:`\ln L^*` and in :math:`p`), since the :math:`D - r` directions without data
    would otherwise make every added dimension look better.

    A ``RuntimeWarning`` says when the chosen :math:`M` is ``max_dim`` while a larger one
    was possible (a larger ``max_dim``, or more rows): the criterion may prefer more.

    Parameters
    ----------
    x : array_like, shape (N, D)
        Complete data, :math:`D \ge 2` (a tensor, a numpy array or a pandas DataFrame).
    method : {"minka", "bic", "heldout"}
    max_dim : int, optional
        The largest :math:`M` considered: by default the largest the data allow, one
        below the rank :math:`\min(D, N' - 1)` of the centred data, :math:`N'` the number
        of (training) points (``D - 1`` when there are enough points).
    n_folds : int
        Folds for ``"heldout"`` (at least 2), drawn at random with ``seed``.
    folds : array_like of int, shape (N,), optional
        Fold label of each row for ``"heldout"``, instead of random folds.
    seed : int
        Seed of the random folds.

    Returns
    -------
    LatentDimSelection
        ``(latent_dim, dims, scores, method)``.

    References
    ----------
    T. P. Minka, *Automatic choice of dimensionality for PCA*, NIPS 13 (2000).
    G. Schwarz, *Estimating the dimension of a model*, Ann. Statist. 6 (1978).

    Examples
    --------
    >>> from ppl_models.datasets import make_ppca_data
    >>> x = make_ppca_data(500, 10, 3, seed=0).x
    >>> [select_latent_dim(x, m).latent_dim for m in ("minka", "bic", "heldout")]
    [3, 3, 3]
    """
    x = as_data(x, "x", ndim=2, min_rows=3)
    n, d = x.shape
    if d < 2:
        raise ValueError(f"x must have at least 2 columns for PPCA (M < D); got {d}")
    check_choice(method, "method", ["minka", "bic", "heldout"])
    seed = check_int(seed, "seed", minimum=0)
    labels = None
    n_fit = n
    if method == "heldout":
        n_folds = check_int(n_folds, "n_folds", minimum=2, maximum=n)
        labels = _fold_labels(folds, n, n_folds, seed)
        n_fit = n - int(torch.unique(labels, return_counts=True)[1].max())
    elif folds is not None:
        raise ValueError("folds is only used with method='heldout'")
    # sigma^2 > 0 needs M below the rank of the centred data, min(D, N - 1).
    limit = min(d - 1, n_fit - 2)
    if limit < 1:
        raise ValueError(
            f"x has too few rows ({n}) to fit even M = 1"
            + (" on each training split" if method == "heldout" else "")
        )
    if max_dim is None:
        max_dim = limit
    else:
        max_dim = check_int(max_dim, "max_dim", minimum=1, maximum=limit)
    dims = torch.arange(1, max_dim + 1)
    if method == "heldout":
        total = torch.zeros(max_dim, dtype=torch.float64)
        for f in torch.unique(labels):
            test = (labels == f).to(x.device)
            train, held = x[~test], x[test]
            # One eigendecomposition per fold serves every M (closed_form's formulas).
            mean = column_mean(train)
            lam, u = _eigh_all(train, mean)
            for k, m in enumerate(dims.tolist()):
                if not _identified(lam, m):
                    total[k:] = -math.inf  # beyond the training data's rank
                    break
                s2 = _discarded_variance(lam, m)
                w = u[:, :m] * (lam[:m] - s2).clamp_min(0).sqrt()
                p = PPCAParams(w.to(x), mean, torch.tensor(s2, dtype=x.dtype, device=x.device))
                total[k] += float(log_likelihood(held, p).sum(dtype=torch.float64))
        scores = total / n
    else:
        lam = _spectrum(x)
        fn = _minka_log_evidence if method == "minka" else _bic
        scores = torch.tensor([fn(lam, m, n) for m in dims.tolist()], dtype=torch.float64)
    best = int(torch.argmin(scores)) if method == "bic" else int(torch.argmax(scores))
    chosen = int(dims[best])
    if chosen == max_dim and max_dim < d - 1:
        warnings.warn(
            f"select_latent_dim: the {method!r} criterion is best at max_dim = {max_dim}, the "
            f"largest dimension considered (D = {d}, N = {n}): the latent dimension may be "
            "larger; raise max_dim or give more rows",
            RuntimeWarning,
            stacklevel=2,
        )
    return LatentDimSelection(chosen, dims, scores, method)
