"""Tipping & Bishop's EM for maximum-likelihood PPCA, and its exact missing-data form
(Ilin & Raiko 2010)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from .._checks import (
    as_data,
    check_choice,
    check_int,
    check_positive,
)
from .._numerics import (
    centred_mm,
    centred_sum_sq,
    centred_tmm,
    chunk_rows,
    column_mean,
    is_stream,
    moments,
    sample_covariance,
)
from ._base import (
    LOG_2PI,
    MISSING_CHUNK_ELEMENTS,
    EMResult,
    PPCAParams,
    check_latent_dim,
    check_params,
)

# ------------------------------------------------------------------------------- EM


def _em_method(n: int, d: int) -> str:
    # The covariance route costs O(N D^2) once and O(D^2 M) per iteration; the data route
    # O(N D M) per iteration and no D x D matrix. Past a few thousand dimensions S itself
    # (D^2 float64) is the problem.
    return "covariance" if d <= 2048 else "data"


def em(
    x: object,
    latent_dim: int,
    *,
    tol: float = 1e-10,
    max_iter: int = 10000,
    seed: int | None = 0,
    method: str = "auto",
    init: PPCAParams | None = None,
) -> EMResult:
    r"""Tipping & Bishop's EM algorithm for maximum-likelihood PPCA.

    E-step and M-step combined (Tipping & Bishop 1999, eqs. 29-30; PRML 12.2.2), with
    :math:`M = W^\top W + \sigma^2 I`:

    .. math::

        \widetilde W = S W (\sigma^2 I + M^{-1} W^\top S W)^{-1}, \qquad
        \widetilde\sigma^2 = \tfrac1D \operatorname{tr}\big(S - S W M^{-1}
            \widetilde W^\top\big).

    Everything depends on the data only through :math:`SW` and :math:`\operatorname{tr} S`:

    - ``method="covariance"`` forms :math:`S` once (:math:`O(ND^2)`, as in
      :func:`ppl_models.pca.fit`), then :math:`O(D^2 M)` per iteration;
    - ``method="data"`` computes :math:`SW = \frac1N \tilde X^\top (\tilde X W)` from the
      data each iteration with :func:`ppl_models.pca.centred_matmul` and
      :func:`~ppl_models.pca.centred_rmatmul` (the products Roweis's EM for PCA,
      :func:`ppl_models.pca.em`, uses): :math:`O(NDM)` per iteration, no :math:`D \times D`
      matrix, for large :math:`D`;
    - ``"auto"``: ``"covariance"`` for :math:`D \le 2048`, else ``"data"``.

    The log-likelihood of every iterate, :math:`-\frac N2 [D\ln 2\pi + (D-M)\ln\sigma^2 +
    \ln|M| + \sigma^{-2}(\operatorname{tr}S - \operatorname{tr}(M^{-1} W^\top S W))]`,
    costs nothing extra (:math:`SW` is at hand); iteration stops when it rises by less
    than ``tol`` relative. Convergence is geometric and slow where :math:`\lambda_M`
    and :math:`\lambda_{M+1}` are close, or where :math:`\lambda_1 \gg \sigma^2` (the error
    along a dominant direction shrinks by about :math:`1 - 2\sigma^2/\lambda_1` per step):
    standardise such data, or use :func:`closed_form`, which EM only approaches.

    With missing values (NaN in ``x``) the exact missing-data EM of Ilin & Raiko (2010)
    runs instead (see :func:`_em_missing`): per-row posteriors given each row's observed
    coordinates, a per-coordinate least-squares M-step for :math:`(w_i, \mu_i)`, and the
    observed-data log-likelihood (:func:`log_likelihood` with NaN marginalised), which
    never decreases, recorded at every iterate. It costs :math:`O(NDM^2)` per iteration.

    Parameters
    ----------
    x : array_like, shape (N, D)
        Data; NaN marks a missing coordinate (no row or column may be entirely missing). A
        tensor, a numpy array or a pandas DataFrame (converted as by
        :func:`ppl_models._checks.as_data`).
    latent_dim : int
        :math:`M`, :math:`1 \le M < D`.
    tol : float
        Stop when the log-likelihood rises by less than ``tol * |log-likelihood|``.
    max_iter : int
        The most iterations.
    seed : int, optional
        Seed of the random starting :math:`W`.
    method : {"auto", "covariance", "data"}
        Complete data only; the missing-data EM always works on the data.
    init : PPCAParams, optional
        Starting point (with complete data its ``mu`` is ignored: :math:`\mu = \bar x` is
        the exact M-step; with missing values it is used).

    Returns
    -------
    EMResult

    References
    ----------
    Tipping & Bishop (1999), section 3.2 and appendix B. A. Ilin and T. Raiko, *Practical
    approaches to principal component analysis in the presence of missing values*, JMLR 11
    (2010), section 3 (missing values).

    Examples
    --------
    >>> x = torch.randn(300, 5, dtype=torch.float64) * torch.tensor([4.0, 2.0, 1.0, 1.0, 1.0])
    >>> r = em(x, 2)
    >>> r.converged, bool(torch.all(r.log_likelihood.diff() >= -1e-9))
    (True, True)
    """
    tol = check_positive(tol, "tol", allow_tensor=False)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    check_choice(method, "method", ["auto", "covariance", "data"])
    f64 = torch.float64
    if is_stream(x):
        if method == "data":
            raise ValueError("method='data' needs x in memory; a stream takes 'covariance'")
        mom, dtype = moments(x)
        n, d, mean, method = mom.n, mom.mean.shape[0], mom.mean, "covariance"
        s = mom.scatter / n
        m = check_latent_dim(latent_dim, d)
        device = s.device
    else:
        x = as_data(x, "x", ndim=2, min_rows=2, allow_nan=True)
        n, d = x.shape
        dtype, device = x.dtype, x.device
        m = check_latent_dim(latent_dim, d)
        if bool(torch.isnan(x).any()):
            return _em_missing(x, m, tol=tol, max_iter=max_iter, seed=seed, init=init)
        if method == "auto":
            method = _em_method(n, d)
        mean = column_mean(x)
        if method == "covariance":
            s = sample_covariance(x, mean, chunk_rows(x, None)).to(device)
    trace, s_times = _scatter_products(x, mean, n, s if method == "covariance" else None)
    _check_variance(float(trace))
    # EM's sigma2 falls towards 0 where the data have no variance outside M directions
    # (the likelihood is unbounded there): below the rounding level, refuse as closed_form
    # does rather than fail in a Cholesky factorisation or return sigma2 <= 0.
    floor = 4 * d * torch.finfo(f64).eps * float(trace)
    w, _, s2 = _starting_point(init, seed, d, m, trace, device)
    eye = torch.eye(m, dtype=f64, device=device)
    loglik = functools.partial(_loglik, n=n, m=m, trace=trace, floor=floor, eye=eye)

    sw = s_times(w)
    ll, chol = loglik(w, s2, sw)
    history = [ll]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - read after the loop
        minv_wtsw = torch.cholesky_solve(w.T @ sw, chol)
        # W_new = S W A^{-1} with A = s2 I + M^{-1} W^T S W (not symmetric).
        w_new = torch.linalg.solve((s2 * eye + minv_wtsw).T, sw.T).T
        # tr(S W M^{-1} W_new^T) = sum((S W M^{-1}) * W_new)
        s2 = (trace - (torch.cholesky_solve(sw.T, chol).T * w_new).sum()) / d
        w = w_new
        sw = s_times(w)
        ll, chol = loglik(w, s2, sw)
        history.append(ll)
        if abs(history[-1] - history[-2]) <= tol * abs(history[-2]):
            converged = True
            break
    params = PPCAParams(w.to(dtype), mean.to(dtype), s2.to(dtype))
    return EMResult(params, torch.tensor(history, dtype=f64), it, converged)


def _scatter_products(
    x: torch.Tensor, mean: torch.Tensor, n: int, s: torch.Tensor | None
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    r"""``tr S`` and :math:`W \mapsto S W` (float64), from the covariance ``s`` when it was
    formed, else from the data each time (:func:`centred_mm`, :func:`centred_tmm`)."""
    if s is not None:
        return torch.diagonal(s).sum(), lambda w: s @ w

    def s_times(w: torch.Tensor) -> torch.Tensor:
        z = centred_mm(x, mean, w.to(x.dtype))
        return centred_tmm(x, mean, z).to(torch.float64) / n

    return centred_sum_sq(x, mean) / n, s_times


def _starting_point(
    init: PPCAParams | None,
    seed: int | None,
    d: int,
    m: int,
    trace: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(W, mu, sigma2)`` in float64 to start EM from: ``init``, or a seeded Gaussian
    ``W`` on the data's scale with ``sigma2 = tr S / D`` (``mu`` None)."""
    f64 = torch.float64
    if init is None:
        gen = torch.Generator().manual_seed(
            0 if seed is None else check_int(seed, "seed", minimum=0)
        )
        w = torch.randn(d, m, generator=gen, dtype=f64).to(device) * (trace / d).sqrt()
        return w, None, trace / d
    w0, mu0, s20 = check_params(init, "init")
    if w0.shape != (d, m):
        raise ValueError(f"init.W must have shape ({d}, {m}); got {tuple(w0.shape)}")
    return (
        w0.to(device=device, dtype=f64),
        mu0.to(device=device, dtype=f64),
        s20.to(device=device, dtype=f64),
    )


def _loglik(
    w: torch.Tensor,
    s2: torch.Tensor,
    sw: torch.Tensor,
    *,
    n: int,
    m: int,
    trace: torch.Tensor,
    floor: float,
    eye: torch.Tensor,
) -> tuple[float, torch.Tensor]:
    """The log-likelihood of an iterate from :math:`SW` and ``tr S``, and the Cholesky
    factor of :math:`M = W^\top W + \\sigma^2 I`."""
    d = w.shape[0]
    chol, info = torch.linalg.cholesky_ex(w.T @ w + s2 * eye)
    if int(info) != 0 or not float(s2) > floor:
        _unbounded(m, float(s2))
    minv_wtsw = torch.cholesky_solve(w.T @ sw, chol)
    ll = (
        -0.5
        * n
        * (
            d * LOG_2PI
            + (d - m) * torch.log(s2)
            + 2 * torch.log(torch.diagonal(chol)).sum()
            + (trace - torch.trace(minv_wtsw)) / s2
        )
    )
    return float(ll), chol


def _check_variance(trace: float) -> None:
    if not trace > 0:
        raise ValueError(
            "x has no variance (every row is the same): PPCA's likelihood is unbounded "
            "(sigma2 -> 0); fit data that vary"
        )


def _unbounded(m: int, s2: float) -> None:
    raise ValueError(
        f"x has no variance outside its leading {m} directions (EM's sigma2 fell to {s2:.3g}, "
        "zero up to rounding): the PPCA likelihood is unbounded; use a smaller latent_dim"
    )


def _em_missing(
    x: torch.Tensor,
    latent_dim: int,
    *,
    tol: float = 1e-10,
    max_iter: int = 10000,
    seed: int | None = 0,
    init: PPCAParams | None = None,
) -> EMResult:
    r"""The exact EM for PPCA with missing values (Ilin & Raiko 2010), behind :func:`em`.

    With :math:`O_n` the observed coordinates of row :math:`n` and :math:`o_{ni} = 1` when
    :math:`x_{ni}` is observed, the E-step conditions each row on what it has,

    .. math::

        M_n = W_{O_n}^\top W_{O_n} + \sigma^2 I, \qquad
        \langle z_n \rangle = M_n^{-1} W_{O_n}^\top (x_{O_n} - \mu_{O_n}), \qquad
        \Sigma_n = \sigma^2 M_n^{-1},

    and the M-step solves, for each coordinate :math:`i` over the rows where it is
    observed, the least-squares problem for :math:`\tilde w_i = (w_i, \mu_i)` with
    :math:`\hat z_n = (z_n, 1)`:

    .. math::

        \tilde w_i = \Big(\sum_n o_{ni} \langle \hat z_n \hat z_n^\top \rangle\Big)^{-1}
            \sum_n o_{ni}\, x_{ni} \langle \hat z_n \rangle, \qquad
        \langle z_n z_n^\top \rangle = \langle z_n \rangle \langle z_n \rangle^\top
            + \Sigma_n,

    .. math::

        \sigma^2 = \frac{1}{|O|} \sum_{(n, i) \in O} \Big[(x_{ni} - \mu_i
            - w_i^\top \langle z_n \rangle)^2 + w_i^\top \Sigma_n w_i\Big]
        = \frac{1}{|O|} \sum_i \Big[\sum_n o_{ni} x_{ni}^2
            - \tilde w_i^\top \sum_n o_{ni} x_{ni} \langle \hat z_n \rangle\Big].

    The joint update of :math:`(w_i, \mu_i)` maximises the expected complete-data
    log-likelihood exactly, so this is an EM and the observed-data log-likelihood
    :math:`\sum_n \ln \mathcal N(x_{O_n} \mid \mu_{O_n}, W_{O_n} W_{O_n}^\top + \sigma^2 I)`
    never decreases; it is computed in the E-step from the same Cholesky factors of
    :math:`M_n` (the formula of :func:`log_likelihood`). The sufficient statistics are
    accumulated over row chunks with batched Cholesky factorisations and two matrix
    products, :math:`O(N D M^2)` per iteration and memory bounded by the chunk. Everything
    runs in float64, on data shifted by their observed column means (which :math:`\mu`
    absorbs) so that the second form of :math:`\sigma^2` loses no digits to cancellation.
    With nothing missing the fixed point is :func:`closed_form`'s.
    """
    n, d = x.shape
    m = latent_dim
    f64, dev = torch.float64, x.device
    obs = ~torch.isnan(x)
    empty = ~obs.any(1)
    if bool(empty.any()):
        raise ValueError(
            f"x has rows with every coordinate missing (row {int(empty.nonzero()[0])}); drop "
            "them: they carry no information"
        )
    empty = ~obs.any(0)
    if bool(empty.any()):
        raise ValueError(
            f"x has columns with every entry missing (column {int(empty.nonzero()[0])}); "
            "their mean and loadings are not identified: drop them"
        )
    of = obs.to(f64)
    count = of.sum(0)
    n_obs = count.sum()
    zero = torch.zeros((), dtype=f64, device=dev)
    shift = torch.where(obs, x.to(f64), zero).sum(0) / count
    xs = torch.where(obs, x.to(f64) - shift, zero)  # zero where missing
    sum_sq = (xs * xs).sum()
    trace = ((xs * xs).sum(0) / count).sum()
    _check_variance(float(trace))
    floor = 4 * d * torch.finfo(f64).eps * float(trace)

    w, mu, s2 = _starting_point(init, seed, d, m, trace, dev)
    mu = torch.zeros(d, dtype=f64, device=dev) if mu is None else mu - shift
    eye = torch.eye(m, dtype=f64, device=dev)
    k = m + 1
    rows = max(1, MISSING_CHUNK_ELEMENTS // (k * k + d))

    def e_step(
        w: torch.Tensor, mu: torch.Tensor, s2: torch.Tensor
    ) -> tuple[float, torch.Tensor, torch.Tensor]:
        """The observed-data log-likelihood at (w, mu, s2) and the M-step's sums
        sum_n o_ni <zh zh^T> (D, M+1, M+1) and sum_n o_ni x_ni <zh> (D, M+1)."""
        ww = (w.unsqueeze(2) * w.unsqueeze(1)).reshape(d, m * m)
        a = torch.zeros(d, k * k, dtype=f64, device=dev)
        b = torch.zeros(d, k, dtype=f64, device=dev)
        ll = torch.zeros((), dtype=f64, device=dev)
        log_s2 = torch.log(s2)
        for start in range(0, n, rows):
            o, xo = of[start : start + rows], xs[start : start + rows]
            xc = xo - o * mu
            chol, info = torch.linalg.cholesky_ex((o @ ww).reshape(-1, m, m) + s2 * eye)
            if bool((info != 0).any()):
                _unbounded(m, float(s2))
            proj = (xc @ w).unsqueeze(-1)
            u = torch.linalg.solve_triangular(chol, proj, upper=False).squeeze(-1)
            d_n = o.sum(1)
            quad = ((xc * xc).sum(1) - (u * u).sum(1)) / s2
            logdet = (d_n - m) * log_s2 + 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(
                -1
            )
            ll = ll - 0.5 * (d_n * LOG_2PI + logdet + quad).sum()
            ez = torch.cholesky_solve(proj, chol).squeeze(-1)
            zh = torch.cat([ez, torch.ones(ez.shape[0], 1, dtype=f64, device=dev)], 1)
            ezz = zh.unsqueeze(2) * zh.unsqueeze(1)
            ezz[:, :m, :m] += s2 * torch.cholesky_inverse(chol)
            a += o.T @ ezz.reshape(-1, k * k)
            b += xo.T @ zh
        return float(ll), a.reshape(d, k, k), b

    ll, a, b = e_step(w, mu, s2)
    history = [ll]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        chol_a, info = torch.linalg.cholesky_ex(a)
        if bool((info != 0).any()):
            _unbounded(m, float(s2))
        wt = torch.cholesky_solve(b.unsqueeze(-1), chol_a).squeeze(-1)
        w, mu = wt[:, :m], wt[:, m]
        s2 = (sum_sq - (b * wt).sum()) / n_obs
        if not float(s2) > floor:
            raise ValueError(
                f"the missing-data EM reached sigma2 = {float(s2):.3g} at iteration {it}: the "
                "observed entries are fitted exactly; use a smaller latent_dim"
            )
        ll, a, b = e_step(w, mu, s2)
        history.append(ll)
        if abs(history[-1] - history[-2]) <= tol * abs(history[-2]):
            converged = True
            break
    params = PPCAParams(w.to(x.dtype), (mu + shift).to(x.dtype), s2.to(x.dtype))
    return EMResult(params, torch.tensor(history, dtype=f64), it, converged)
