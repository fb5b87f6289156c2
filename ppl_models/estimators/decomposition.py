r"""The decompositions: :class:`PCA`, :class:`PPCA` and :class:`BayesianPCA`, over
:mod:`ppl_models.pca`, :mod:`ppl_models.ppca` and :mod:`ppl_models.bayesian_pca`."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import bayesian_pca, gaussian, pca, ppca
from .._checks import check_choice, check_int
from ._base import (
    FLOATS,
    ComponentsDecomposition,
    Decomposition,
    PPCADensity,
    as_tensor,
    principal_axes,
    seed_of,
    to_numpy,
    warn_unconverged,
)


class PCA(ComponentsDecomposition):
    r"""Principal component analysis (PRML 12.1) over :func:`ppl_models.pca.fit`.

    The principal axes are the leading eigenvectors :math:`u_1, \dots, u_M` of the
    divisor-:math:`N` sample covariance :math:`S = \frac1N \sum_n (x_n - \bar x)(x_n -
    \bar x)^\top`, and :meth:`transform` projects, :math:`z_n = U_M^\top (x_n - \bar x)`.

    Like scikit-learn's ``PCA`` it also carries the probabilistic reading of PCA: the PPCA
    density at the maximum likelihood in the same subspace
    (:func:`ppl_models.ppca.closed_form`), :math:`\mathcal N(\bar x, W W^\top + \sigma^2 I)` with
    :math:`\sigma^2 = \frac{1}{D - M} \sum_{j > M} \lambda_j` (``noise_variance_``), which
    :meth:`score`, :meth:`score_samples`, :meth:`get_covariance`, :meth:`get_precision` and
    :meth:`sample` use. With :math:`M = D` (the default on data with more rows than
    columns) it is the :math:`\sigma^2 \to 0` limit, the maximum-likelihood Gaussian
    :math:`\mathcal N(\bar x, S)` (:func:`ppl_models.gaussian.mle`), and
    ``noise_variance_`` is 0; data without variance outside the components have no
    density, and those methods raise ``ValueError``. Forming it costs one more pass over
    ``X`` (:math:`O(ND^2)`).

    Parameters
    ----------
    n_components : int, optional
        :math:`M`, :math:`1 \le M \le \min(N, D)`; :math:`\min(N, D)` by default.
    method : {"auto", "eigh", "svd", "em"}
        The route of :func:`ppl_models.pca.fit`: the covariance's eigendecomposition, the
        SVD of the centred data, or Roweis's EM.
    tol, max_iter : float, int
        Roweis's EM (``method="em"``).
    random_state : int, RandomState or None
        Seed of EM's starting point.

    Attributes
    ----------
    params_ : PCAParams
        The library's result, torch tensors in the data's dtype.
    components_ : numpy.ndarray, shape (n_components, n_features)
        The principal axes, as rows, each with its largest-magnitude entry positive.
    explained_variance_ : numpy.ndarray, shape (n_components,)
        :math:`\lambda_1 \ge \dots \ge \lambda_M` (divisor :math:`N`: scikit-learn's times
        :math:`(N-1)/N`).
    explained_variance_ratio_ : numpy.ndarray, shape (n_components,)
        :math:`\lambda_i / \operatorname{tr} S` (:func:`ppl_models.pca.explained_variance_ratio`).
    singular_values_ : numpy.ndarray, shape (n_components,)
        :math:`\sqrt{N \lambda_i}`, those of the centred data.
    mean_ : numpy.ndarray, shape (n_features,)
    noise_variance_ : float
        :math:`\sigma^2` of the PPCA density (divisor :math:`N`), 0 when there is none.
    density_ : PPCAParams, GaussianParams or None
        That density's parameters.
    n_components_, n_features_in_, feature_names_in_, n_samples_, n_iter_
        ``n_iter_`` counts EM iterations, 1 for the one-step routes.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((200, 5)) * [4.0, 2.0, 1.0, 1.0, 1.0]
    >>> est = PCA(n_components=2).fit(x)
    >>> est.transform(x).shape, est.components_.shape
    ((200, 2), (2, 5))
    >>> eigenvalues = np.linalg.eigvalsh(np.cov(x.T, bias=True))[::-1]  # divisor N
    >>> bool(np.allclose(est.explained_variance_, eigenvalues[:2]))
    True
    """

    def fit(self, X: object, y: object = None) -> PCA:
        """Fit the principal axes (and the PPCA density) to ``X``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            At least 2 rows; finite.
        y : ignored

        Returns
        -------
        PCA
            ``self``.
        """
        X = validate_data(self, X, dtype=FLOATS, ensure_min_samples=2)
        x = as_tensor(X)
        n, d = X.shape
        m = (
            min(n, d)
            if self.n_components is None
            else check_int(self.n_components, "n_components", minimum=1, maximum=min(n, d))
        )
        check_choice(self.method, "method", ["auto", "eigh", "svd", "em"])
        seed = seed_of(self.random_state)
        if self.method == "em":
            res = pca.em(x, m, tol=self.tol, max_iter=self.max_iter, seed=seed)
            params, n_iter = res.params, res.n_iter
            if not res.converged:
                warn_unconverged("PCA: EM", self.max_iter)
        else:
            params, n_iter = pca.fit(x, m, method=self.method), 1
        self.params_ = params
        self.n_components_ = int(params.components.shape[1])
        self.n_samples_ = n
        self.n_iter_ = n_iter
        self.mean_ = to_numpy(params.mean)
        self.components_ = to_numpy(params.components.T)
        self.explained_variance_ = to_numpy(params.explained_variance)
        self.explained_variance_ratio_ = to_numpy(pca.explained_variance_ratio(params, x))
        self.singular_values_ = np.sqrt(n * self.explained_variance_)
        self.density_ = None
        self.noise_variance_ = 0.0
        if self.n_components_ < d:
            try:
                self.density_ = ppca.closed_form(x, self.n_components_)
            except ValueError:  # no variance outside the components: no density
                pass
            else:
                self.noise_variance_ = float(self.density_.sigma2)
        else:
            full = gaussian.mle(x)
            if int(torch.linalg.cholesky_ex(full.covariance).info) == 0:
                self.density_ = full
        return self

    def _density(self) -> ppca.PPCAParams | gaussian.GaussianParams:
        check_is_fitted(self)
        if self.density_ is None:
            raise ValueError(
                f"PCA with n_components={self.n_components_} has no density: the data have no "
                "variance outside the components (a singular covariance); use a smaller "
                "n_components, at most the rank of the centred data"
            )
        return self.density_

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return pca.transform(x, self.params_)

    def _decoder(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.params_.components, self.params_.mean


class _PPCAFamily(PPCADensity, Decomposition):
    """The encoder (posterior mean) and decoder behind transform and inverse_transform,
    and the derived attributes, of a fit held in ``params_`` (PPCAParams)."""

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return ppca.posterior(x, self.params_)[0]

    def _decoder(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.params_.W, self.params_.mu

    def _store_fit(self, params: ppca.PPCAParams) -> None:
        self.params_ = params
        self.n_components_ = int(params.W.shape[1])
        self.mean_ = to_numpy(params.mu)
        self.noise_variance_ = float(params.sigma2)
        self.components_, self.explained_variance_ = principal_axes(params.W, params.sigma2)


class PPCA(_PPCAFamily, ComponentsDecomposition):
    r"""Probabilistic PCA (Tipping & Bishop 1999; PRML 12.2) over :mod:`ppl_models.ppca`.

    .. math::

        z_n \sim \mathcal N(0, I_M), \qquad x_n \mid z_n \sim \mathcal N(W z_n + \mu,
        \sigma^2 I_D), \qquad x_n \sim \mathcal N(\mu, W W^\top + \sigma^2 I_D).

    **Missing values.** NaN entries of ``X`` are missing coordinates: ``method="auto"``
    then fits by the exact missing-data EM (Ilin & Raiko 2010; :func:`ppl_models.ppca.em`),
    and :meth:`transform`, :meth:`score_samples` and :meth:`impute` condition each row on
    its observed coordinates. A PPCA step therefore takes incomplete data inside a
    ``Pipeline``.

    Parameters
    ----------
    n_components : int, "minka", "bic" or None
        :math:`M`, :math:`1 \le M < D`. ``"minka"`` or ``"bic"`` choose it on the training
        data with :func:`ppl_models.ppca.select_latent_dim` (complete data only); None is
        :math:`D - 1`.
    method : {"auto", "closed_form", "em", "svi"}
        ``"closed_form"``: :func:`~ppl_models.ppca.closed_form` (complete data);
        ``"em"``: :func:`~ppl_models.ppca.em` (``tol``, ``max_iter``; slow where
        eigenvalues :math:`M` and :math:`M+1` are close); ``"svi"``:
        :class:`~ppl_models.ppca.MarginalPPCA` by :func:`~ppl_models.inference.fit_svi`
        with L-BFGS for ``max_iter`` steps (maximum likelihood; for the record, slower
        than the others); ``"auto"``: the closed form, or EM when ``X`` has NaN.
    tol : float
        EM stops when the log-likelihood rises by less than ``tol`` relative.
    max_iter : int
        EM iterations (or SVI steps) at most; a ``ConvergenceWarning`` says when they ran
        out.
    random_state : int, RandomState or None
        Seed of EM's (or SVI's) starting point.

    Attributes
    ----------
    params_ : PPCAParams
        :math:`(W, \mu, \sigma^2)`, torch tensors in the data's dtype: what the library's
        functions take.
    components_ : numpy.ndarray, shape (n_components, n_features)
        The principal axes of :math:`C` within :math:`\operatorname{span}(W)`, as rows.
    explained_variance_ : numpy.ndarray, shape (n_components,)
        The variance of the model along them, :math:`\|w_i\|^2 + \sigma^2` for orthogonal
        columns (the sample eigenvalues :math:`\lambda_i` at the closed form; divisor
        :math:`N`).
    noise_variance_ : float
        :math:`\sigma^2` (divisor :math:`N`: scikit-learn's ``PCA.noise_variance_`` times
        :math:`(N-1)/N`).
    mean_ : numpy.ndarray, shape (n_features,)
    n_components_, n_features_in_, feature_names_in_
    n_iter_ : int
        EM iterations (SVI steps) run; 1 for the closed form.
    log_likelihood_ : float
        The total (observed-data) log-likelihood of the training data at the fit.

    Examples
    --------
    >>> from ppl_models.datasets import make_ppca_data
    >>> x = make_ppca_data(300, 6, 2, seed=0).x.numpy()
    >>> est = PPCA(n_components=2).fit(x)
    >>> est.transform(x).shape, round(est.score(x), 4) == round(float(
    ...     ppca.log_likelihood(x, ppca.closed_form(x, 2)).mean()), 4)
    ((300, 2), True)
    >>> x[0, 1] = np.nan  # a missing value: the missing-data EM
    >>> PPCA(n_components=2).fit(x).impute(x[:1]).shape
    (1, 6)
    """

    _allow_nan = True

    def fit(self, X: object, y: object = None) -> PPCA:
        """Fit :math:`(W, \\mu, \\sigma^2)` by maximum likelihood.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            NaN marks a missing value (no row or column may be entirely missing).
        y : ignored

        Returns
        -------
        PPCA
            ``self``.
        """
        X = validate_data(
            self,
            X,
            dtype=FLOATS,
            ensure_all_finite="allow-nan",
            ensure_min_samples=2,
            ensure_min_features=2,
        )
        x = as_tensor(X)
        d = X.shape[1]
        method = check_choice(self.method, "method", ["auto", "closed_form", "em", "svi"])
        missing = int(np.isnan(X).sum())
        if method == "closed_form" and missing:
            raise ValueError(
                f"method='closed_form' needs complete data; X has {missing} missing value(s) "
                "(NaN): use method='auto' or 'em' (the missing-data EM)"
            )
        m = self._latent_dim(x, missing)
        seed = seed_of(self.random_state)
        if method == "auto":
            method = "em" if missing else "closed_form"
        if method == "closed_form":
            params, self.n_iter_ = ppca.closed_form(x, m), 1
        elif method == "em":
            res = ppca.em(x, m, tol=self.tol, max_iter=self.max_iter, seed=seed)
            params, self.n_iter_ = res.params, res.n_iter
            if not res.converged:
                warn_unconverged("PPCA: EM", self.max_iter, self.tol)
        else:
            from ..inference import fit_svi

            module = ppca.MarginalPPCA(d, m, seed=seed).to(x.dtype)
            fit = fit_svi(
                module, x, optimizer="lbfgs", num_steps=self.max_iter, seed=seed, progress=False
            )
            params, self.n_iter_ = module.params(), fit.num_steps
        self._store_fit(params)
        self.log_likelihood_ = float(ppca.log_likelihood(x, params).sum(dtype=torch.float64))
        return self

    def _latent_dim(self, x: torch.Tensor, missing: int) -> int:
        d = x.shape[1]
        if self.n_components is None:
            return d - 1
        if isinstance(self.n_components, str):
            check_choice(self.n_components, "n_components", ["minka", "bic"])
            if missing:
                raise ValueError(
                    f"n_components={self.n_components!r} needs complete data; X has {missing} "
                    "missing value(s): give an int"
                )
            return ppca.select_latent_dim(x, self.n_components).latent_dim
        return check_int(self.n_components, "n_components", minimum=1, maximum=d - 1)

    def impute(self, X: object) -> np.ndarray:
        r"""``X`` with each missing entry (NaN) replaced by its conditional mean given the
        row's observed entries, :math:`\mu_{\bar O} + W_{\bar O} \mathbb E[z \mid x_O]`
        (:func:`ppl_models.ppca.impute`); observed entries are copied unchanged.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_features)
        """
        return to_numpy(ppca.impute(self._rows(X), self.params_))


class BayesianPCA(_PPCAFamily):
    r"""Bayesian PCA with automatic relevance determination (Bishop 1999; PRML 12.2.3),
    by the EM of :func:`ppl_models.bayesian_pca.ard_em`.

    PPCA with the prior :math:`w_i \sim \mathcal N(0, \alpha_i^{-1} I_D)` on each of the
    ``max_components`` columns of :math:`W`; the evidence update
    :math:`\alpha_i = D / \|w_i\|^2` switches off the columns the data do not need, and
    ``n_components_`` is the number left (the effective dimension). The fitted density,
    :meth:`transform` (posterior mean of :math:`z`) and the attributes are PPCA's, with
    the surviving columns.

    Parameters
    ----------
    max_components : int, optional
        :math:`M`, the columns to start from, :math:`1 \le M < D`; :math:`D - 1` by default.
    tol : float
        Stop when :math:`C = W W^\top + \sigma^2 I` changes by less than ``tol`` (relative,
        Frobenius) in an iteration.
    max_iter : int
        Iterations at most; a ``ConvergenceWarning`` says when they ran out.
    random_state : int, RandomState or None
        Seed of the starting :math:`W`.

    Attributes
    ----------
    params_ : PPCAParams
        :math:`(W, \mu, \sigma^2)` with the ``n_components_`` surviving columns of
        :math:`W`.
    alpha_ : numpy.ndarray, shape (max_components,)
        :math:`\alpha_i`; ``inf`` for a switched-off column (those come last).
    result_ : BPCAResult
        What :func:`~ppl_models.bayesian_pca.ard_em` returned.
    n_components_ : int
        The effective dimension.
    components_, explained_variance_, noise_variance_, mean_, n_iter_
        As in :class:`PPCA`.

    Examples
    --------
    >>> from ppl_models.datasets import make_bishop_bpca_data
    >>> x = make_bishop_bpca_data(seed=0).x.numpy()  # 3 strong directions in D = 10
    >>> BayesianPCA(max_components=9).fit(x).n_components_
    3
    """

    def __init__(
        self,
        max_components: int | None = None,
        *,
        tol: float = 1e-6,
        max_iter: int = 2000,
        random_state: object = 0,
    ):
        self.max_components = max_components
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: object, y: object = None) -> BayesianPCA:
        """Fit by ARD EM.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Complete data, at least 2 rows and 2 columns.
        y : ignored

        Returns
        -------
        BayesianPCA
            ``self``.
        """
        X = validate_data(self, X, dtype=FLOATS, ensure_min_samples=2, ensure_min_features=2)
        x = as_tensor(X)
        d = X.shape[1]
        m = d - 1 if self.max_components is None else self.max_components
        m = check_int(m, "max_components", minimum=1, maximum=d - 1)
        res = bayesian_pca.ard_em(
            x, m, tol=self.tol, max_iter=self.max_iter, seed=seed_of(self.random_state)
        )
        if not res.converged:
            warn_unconverged("BayesianPCA: ARD EM", self.max_iter, self.tol)
        k = res.effective_dim
        w, mu, s2 = res.params
        self.result_ = res
        self.alpha_ = to_numpy(res.alpha)
        self.n_iter_ = int(res.log_likelihood.shape[0])
        self._store_fit(ppca.PPCAParams(w[:, :k].clone(), mu, s2))
        return self
