r"""scikit-learn estimators over the library's own closed forms and algorithms.

Each estimator is a thin adapter: it validates its input the scikit-learn way
(:func:`sklearn.utils.validation.validate_data`: numpy arrays, pandas DataFrames, lists;
integer data become float64, float32 stays float32; sparse matrices are refused with a
message that says to call ``.toarray()``), calls one function of a topic module on torch
tensors that share the array's memory, and returns numpy arrays in the input's floating
dtype. No mathematics is implemented here a second time: the numbers are those of the
functions named below, bit for bit.

==============================  =====================================================
estimator                       the library's functions it calls
==============================  =====================================================
:class:`PCA`                    :func:`ppl_models.pca.fit`, :func:`~ppl_models.pca.transform`,
                                and :func:`ppl_models.ppca.closed_form` for the density
:class:`PPCA`                   :func:`ppl_models.ppca.closed_form`, :func:`~ppl_models.ppca.em`
                                (with missing values: the exact missing-data EM),
                                :class:`~ppl_models.ppca.MarginalPPCA` by
                                :func:`~ppl_models.inference.fit_svi`,
                                :func:`~ppl_models.ppca.select_latent_dim`
:class:`BayesianPCA`            :func:`ppl_models.bayesian_pca.ard_em`
:class:`PPCAClassifier`         :class:`ppl_models.ppca.PPCAClassifier`
:class:`BayesianLinearRegression`  :func:`ppl_models.regression.maximize_evidence`,
                                :func:`~ppl_models.regression.posterior`,
                                :func:`~ppl_models.regression.predictive_posterior`
:class:`BayesianLogisticRegression`  :func:`ppl_models.logistic.laplace`,
                                :func:`~ppl_models.logistic.predictive_probit`
==============================  =====================================================

Conventions that differ from scikit-learn's, on purpose:

- **N, not N - 1.** Variances are maximum-likelihood ones (divisor :math:`N`, as in Bishop
  and Tipping & Bishop): ``explained_variance_`` and ``noise_variance_`` are
  :math:`(N-1)/N` times scikit-learn's ``PCA`` attributes, and ``score`` is the
  log-likelihood of the maximum-likelihood density. (Compare after rescaling.)
- **PPCA's transform is the posterior mean** :math:`\mathbb E[z \mid x] = M^{-1} W^\top
  (x - \mu)`, :math:`M = W^\top W + \sigma^2 I` (PRML 12.48), not the projection
  :math:`U_M^\top (x - \mu)` that scikit-learn's ``PCA.transform`` returns; our
  :class:`PCA` returns the projection.
- **Precisions are named as in PRML**: in :class:`BayesianLinearRegression` ``alpha_`` is
  the prior precision of the weights and ``beta_`` the noise precision (scikit-learn's
  ``BayesianRidge`` calls them ``lambda_`` and ``alpha_``).
- ``n_components`` is scikit-learn's name for the latent dimension :math:`M` (the core
  API says ``latent_dim``); ``random_state`` is its name for the ``seed``.

Every fitted estimator (and every topic module, and every parameters container) can be
written with :func:`ppl_models.save` and read back with :func:`ppl_models.load`, which
never unpickles arbitrary objects.

References
----------
M. E. Tipping and C. M. Bishop, *Probabilistic principal component analysis*, JRSS B 61
(1999). C. M. Bishop, *Bayesian PCA*, NIPS 11 (1999). C. M. Bishop, *Pattern Recognition
and Machine Learning* (PRML), sections 3.3-3.5, 4.5, 12.1-12.2.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.extmath import svd_flip
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from . import bayesian_pca, gaussian, logistic, pca, ppca, regression
from ._checks import check_choice, check_int

__all__ = [
    "PCA",
    "PPCA",
    "BayesianLinearRegression",
    "BayesianLogisticRegression",
    "BayesianPCA",
    "PPCAClassifier",
]

_FLOATS = (np.float64, np.float32)


# ---------------------------------------------------------------------------- helpers


def _tensor(x: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``x``'s memory (read-only arrays, e.g. memory maps, are copied:
    torch cannot share memory it may not write)."""
    if not x.flags.writeable:
        x = x.copy()
    return torch.from_numpy(np.ascontiguousarray(x))


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _seed(random_state: object) -> int:
    """An int ``random_state`` is the library's ``seed``; None or a ``RandomState`` draws
    one (scikit-learn's convention)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return check_int(random_state, "random_state", minimum=0)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _axes(w: torch.Tensor, sigma2: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    r"""The principal axes of :math:`C = W W^\top + \sigma^2 I` within span(W), as rows,
    and the variances along them, :math:`s_i^2 + \sigma^2` (:math:`s_i` the singular values
    of :math:`W`). Signs: each row's entry of largest magnitude is positive (scikit-learn's
    ``svd_flip`` rule, which :func:`ppl_models.pca.fit` follows too)."""
    u, s, _ = torch.linalg.svd(w.to(torch.float64), full_matrices=False)
    _, rows = svd_flip(None, _numpy(u.T).copy(), u_based_decision=False)
    variance = _numpy(s**2 + sigma2.to(torch.float64))
    return rows.astype(_numpy(w).dtype), variance.astype(_numpy(w).dtype)


class _PPCADensity:
    r"""The Gaussian density :math:`\mathcal N(\mu, W W^\top + \sigma^2 I)` of a fitted
    model (``self._density()`` returns its :class:`~ppl_models.ppca.PPCAParams`): score,
    score_samples, get_covariance, get_precision and sample, all from
    :mod:`ppl_models.ppca`. (:class:`PCA` with every component keeps all the variance: its
    density is then the maximum-likelihood Gaussian :math:`\mathcal N(\bar x, S)`, a
    :class:`~ppl_models.gaussian.GaussianParams`, the :math:`\sigma^2 \to 0` limit.)"""

    _allow_nan = False

    def _density(self) -> ppca.PPCAParams | gaussian.GaussianParams:
        check_is_fitted(self)
        return self.params_

    def _rows(self, X: object) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            dtype=_FLOATS,
            reset=False,
            ensure_all_finite="allow-nan" if self._allow_nan else True,
        )
        return _tensor(X)

    def score_samples(self, X: object) -> np.ndarray:
        r"""The log-density :math:`\ln \mathcal N(x_n \mid \mu, C)` of each row
        (:func:`ppl_models.ppca.log_likelihood`).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray, shape (n_samples,)
        """
        params = self._density()
        x = self._rows(X)
        if isinstance(params, gaussian.GaussianParams):
            full = torch.distributions.MultivariateNormal(
                params.loc.to(x), covariance_matrix=params.covariance.to(x)
            )
            return _numpy(full.log_prob(x))
        return _numpy(ppca.log_likelihood(x, params))

    def score(self, X: object, y: object = None) -> float:
        r"""The mean log-likelihood per row, :math:`\frac1N \sum_n \ln \mathcal N(x_n \mid
        \mu, C)` (scikit-learn's convention for ``PCA.score``): what ``GridSearchCV`` and
        ``cross_val_score`` maximise when given no ``scoring``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    def get_covariance(self) -> np.ndarray:
        r"""The model covariance :math:`C = W W^\top + \sigma^2 I`, shape (D, D)
        (:func:`ppl_models.ppca.covariance`)."""
        params = self._density()
        if isinstance(params, gaussian.GaussianParams):
            return _numpy(params.covariance)
        return _numpy(ppca.covariance(params))

    def get_precision(self) -> np.ndarray:
        r""":math:`C^{-1}` by the matrix inversion lemma, shape (D, D)
        (:func:`ppl_models.ppca.precision`)."""
        params = self._density()
        if isinstance(params, gaussian.GaussianParams):
            return _numpy(torch.cholesky_inverse(torch.linalg.cholesky(params.covariance)))
        return _numpy(ppca.precision(params))

    def sample(self, n_samples: int = 1, random_state: object = None) -> np.ndarray:
        r"""Draw from the fitted generative model: :math:`z \sim \mathcal N(0, I)`, then
        :math:`x \sim \mathcal N(W z + \mu, \sigma^2 I)` (:func:`ppl_models.ppca.sample`).

        Parameters
        ----------
        n_samples : int
        random_state : int, RandomState or None
            The seed (an int), or where to draw one from.

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_features)
        """
        params = self._density()
        n = check_int(n_samples, "n_samples", minimum=1)
        seed = _seed(random_state)
        if isinstance(params, gaussian.GaussianParams):
            loc, chol = params.loc, torch.linalg.cholesky(params.covariance)
            gen = torch.Generator(device=loc.device).manual_seed(seed)
            eps = torch.randn(n, loc.shape[0], generator=gen, dtype=loc.dtype, device=loc.device)
            return _numpy(loc + eps @ chol.T)
        return _numpy(ppca.sample(params, n, seed=seed))


class _Decomposition(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared by the three decompositions: feature names ``pca0, pca1, ...`` and tags."""

    @property
    def _n_features_out(self) -> int:
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# ------------------------------------------------------------------------------- PCA


class PCA(_PPCADensity, _Decomposition):
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

    def __init__(
        self,
        n_components: int | None = None,
        *,
        method: str = "auto",
        tol: float = 1e-9,
        max_iter: int = 1000,
        random_state: object = 0,
    ):
        self.n_components = n_components
        self.method = method
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

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
        X = validate_data(self, X, dtype=_FLOATS, ensure_min_samples=2)
        x = _tensor(X)
        n, d = X.shape
        m = min(n, d) if self.n_components is None else self.n_components
        check_choice(self.method, "method", ["auto", "eigh", "svd", "em"])
        seed = _seed(self.random_state)
        if self.method == "em":
            res = pca.em(x, m, tol=self.tol, max_iter=self.max_iter, seed=seed)
            params, n_iter = res.params, res.n_iter
            if not res.converged:
                warnings.warn(
                    f"PCA: EM did not converge in max_iter={self.max_iter} iterations",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        else:
            params, n_iter = pca.fit(x, m, method=self.method), 1
        self.params_ = params
        self.n_components_ = int(params.components.shape[1])
        self.n_samples_ = n
        self.n_iter_ = n_iter
        self.mean_ = _numpy(params.mean)
        self.components_ = _numpy(params.components.T)
        self.explained_variance_ = _numpy(params.explained_variance)
        self.explained_variance_ratio_ = _numpy(pca.explained_variance_ratio(params, x))
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

    def transform(self, X: object) -> np.ndarray:
        r"""The principal-component scores :math:`U_M^\top (x_n - \bar x)`
        (:func:`ppl_models.pca.transform`).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_components)
        """
        return _numpy(pca.transform(self._rows(X), self.params_))

    def inverse_transform(self, X: object) -> np.ndarray:
        r"""Back to data space: :math:`\bar x + U_M z` for scores :math:`z`.

        ``inverse_transform(transform(x))`` is the reconstruction
        :func:`ppl_models.pca.reconstruct`.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_components)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_features)
        """
        check_is_fitted(self)
        return _inverse(X, self.params_.components, self.params_.mean, "X", self.n_components_)


def _inverse(z: object, w: torch.Tensor, mu: torch.Tensor, name: str, m: int) -> np.ndarray:
    """:math:`\\mu + W z` for each row of ``z`` (the decoder of the linear model)."""
    z = check_array(z, dtype=_FLOATS)
    if z.shape[1] != m:
        raise ValueError(f"{name} must have {m} columns (n_components_); got {z.shape[1]}")
    t = _tensor(z)
    return _numpy(mu.to(t) + t @ w.to(t).T)


# ------------------------------------------------------------------------------ PPCA


class _PPCAFamily(_PPCADensity, _Decomposition):
    """transform (posterior mean), inverse_transform and the derived attributes of a fit
    held in ``params_`` (PPCAParams)."""

    def _store_fit(self, params: ppca.PPCAParams) -> None:
        self.params_ = params
        self.n_components_ = int(params.W.shape[1])
        self.mean_ = _numpy(params.mu)
        self.noise_variance_ = float(params.sigma2)
        self.components_, self.explained_variance_ = _axes(params.W, params.sigma2)

    def transform(self, X: object) -> np.ndarray:
        r"""The posterior mean :math:`\mathbb E[z_n \mid x_n] = M^{-1} W^\top (x_n - \mu)`,
        :math:`M = W^\top W + \sigma^2 I` (PRML 12.48; :func:`ppl_models.ppca.posterior`),
        given each row's observed coordinates where ``X`` has NaN (PPCA only).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_components)
        """
        return _numpy(ppca.posterior(self._rows(X), self.params_)[0])

    def inverse_transform(self, X: object) -> np.ndarray:
        r"""The mean of :math:`x` given :math:`z`, :math:`W z + \mu` (the generative
        model's decoder). Applied to :meth:`transform`'s output it shrinks towards
        :math:`\mu` (the posterior mean is shrunk, PRML 12.2.1).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_components)

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_features)
        """
        check_is_fitted(self)
        return _inverse(X, self.params_.W, self.params_.mu, "X", self.n_components_)


class PPCA(_PPCAFamily):
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

    def __init__(
        self,
        n_components: int | str | None = None,
        *,
        method: str = "auto",
        tol: float = 1e-9,
        max_iter: int = 1000,
        random_state: object = 0,
    ):
        self.n_components = n_components
        self.method = method
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

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
            dtype=_FLOATS,
            ensure_all_finite="allow-nan",
            ensure_min_samples=2,
            ensure_min_features=2,
        )
        x = _tensor(X)
        d = X.shape[1]
        method = check_choice(self.method, "method", ["auto", "closed_form", "em", "svi"])
        missing = int(np.isnan(X).sum())
        if method == "closed_form" and missing:
            raise ValueError(
                f"method='closed_form' needs complete data; X has {missing} missing value(s) "
                "(NaN): use method='auto' or 'em' (the missing-data EM)"
            )
        m = self._latent_dim(x, missing)
        seed = _seed(self.random_state)
        if method == "auto":
            method = "em" if missing else "closed_form"
        if method == "closed_form":
            params, self.n_iter_ = ppca.closed_form(x, m), 1
        elif method == "em":
            res = ppca.em(x, m, tol=self.tol, max_iter=self.max_iter, seed=seed)
            params, self.n_iter_ = res.params, res.n_iter
            if not res.converged:
                warnings.warn(
                    f"PPCA: EM did not converge in max_iter={self.max_iter} iterations "
                    f"(tol={self.tol:g})",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        else:
            from .inference import fit_svi

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
        return _numpy(ppca.impute(self._rows(X), self.params_))


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
        X = validate_data(self, X, dtype=_FLOATS, ensure_min_samples=2, ensure_min_features=2)
        x = _tensor(X)
        d = X.shape[1]
        m = d - 1 if self.max_components is None else self.max_components
        m = check_int(m, "max_components", minimum=1, maximum=d - 1)
        res = bayesian_pca.ard_em(
            x, m, tol=self.tol, max_iter=self.max_iter, seed=_seed(self.random_state)
        )
        if not res.converged:
            warnings.warn(
                f"BayesianPCA: ARD EM did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol:g})",
                ConvergenceWarning,
                stacklevel=2,
            )
        k = res.effective_dim
        w, mu, s2 = res.params
        self.result_ = res
        self.alpha_ = _numpy(res.alpha)
        self.n_iter_ = int(res.log_likelihood.shape[0])
        self._store_fit(ppca.PPCAParams(w[:, :k].clone(), mu, s2))
        return self


# ------------------------------------------------------------------------ classifiers


def _labels(est: BaseEstimator, y: np.ndarray) -> np.ndarray:
    """Class indices 0..C-1 of ``y``, setting ``classes_`` (any label type)."""
    check_classification_targets(y)
    est.classes_, codes = np.unique(y, return_inverse=True)
    return codes


class PPCAClassifier(ClassifierMixin, BaseEstimator):
    r"""A generative classifier, one PPCA density per class, Bayes' rule with class priors:
    scikit-learn's face of :class:`ppl_models.ppca.PPCAClassifier`, which it fits.

    .. math::

        p(c \mid x) = \frac{\pi_c\, \mathcal N(x \mid \mu_c, W_c W_c^\top + \sigma_c^2 I)}
            {\sum_{c'} \pi_{c'}\, \mathcal N(x \mid \mu_{c'}, W_{c'} W_{c'}^\top
            + \sigma_{c'}^2 I)},

    each class's :math:`(W_c, \mu_c, \sigma_c^2)` its :func:`~ppl_models.ppca.closed_form`
    maximum likelihood. Labels may be of any type (strings included); outputs are numpy.

    Parameters
    ----------
    n_components : int
        :math:`M` of every class's PPCA, :math:`1 \le M < D`.
    priors : array_like, shape (n_classes,), optional
        Class probabilities in the order of ``classes_`` (positive, summing to 1); the
        training frequencies by default.

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (n_classes,)
        The sorted labels.
    model_ : ppl_models.ppca.PPCAClassifier
        The fitted core classifier (torch in, torch out; labels 0..C-1 index ``classes_``).
    params_ : list of PPCAParams
        Each class's parameters.
    class_prior_ : numpy.ndarray, shape (n_classes,)
    n_features_in_, feature_names_in_

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.standard_normal((50, 4)) + 3, rng.standard_normal((50, 4)) - 3])
    >>> y = np.array(["up"] * 50 + ["down"] * 50)
    >>> clf = PPCAClassifier(n_components=1).fit(x, y)
    >>> clf.predict([[3.0, 3, 3, 3], [-3.0, -3, -3, -3]]).tolist()
    ['up', 'down']
    """

    def __init__(self, n_components: int = 1, *, priors: object = None):
        self.n_components = n_components
        self.priors = priors

    def fit(self, X: object, y: object) -> PPCAClassifier:
        """Fit one PPCA per class and the class priors.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)
            Labels; at least 2 classes, each with at least ``n_components + 2`` rows (a
            class's :math:`\\sigma^2` needs variance outside its :math:`M` directions).

        Returns
        -------
        PPCAClassifier
            ``self``.
        """
        X, y = validate_data(self, X, y, dtype=_FLOATS, ensure_min_samples=2, ensure_min_features=2)
        m = check_int(self.n_components, "n_components", minimum=1, maximum=X.shape[1] - 1)
        codes = _labels(self, y)
        counts = np.bincount(codes, minlength=len(self.classes_))
        if len(self.classes_) < 2:
            raise ValueError(f"y must hold at least 2 classes; got 1 class: {self.classes_!r}")
        small = counts < m + 2
        if small.any():
            raise ValueError(
                f"every class needs at least n_components + 2 = {m + 2} rows; class(es) "
                f"{self.classes_[small].tolist()} have {counts[small].tolist()}"
            )
        self.model_ = ppca.PPCAClassifier(m, priors=self.priors).fit(
            _tensor(X), torch.from_numpy(codes.astype(np.int64))
        )
        self.params_ = self.model_.params_
        self.class_prior_ = np.exp(_numpy(self.model_.log_priors_))
        return self

    def _rows(self, X: object) -> torch.Tensor:
        check_is_fitted(self)
        return _tensor(validate_data(self, X, dtype=_FLOATS, reset=False))

    def predict_log_proba(self, X: object) -> np.ndarray:
        r""":math:`\ln p(c \mid x_n)`, columns in the order of ``classes_``.

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_classes)
        """
        rows = self._rows(X)
        return _numpy(self.model_.predict_log_proba(rows))

    def predict_proba(self, X: object) -> np.ndarray:
        r""":math:`p(c \mid x_n)`, columns in the order of ``classes_``; rows sum to 1.

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_classes)
        """
        rows = self._rows(X)
        return _numpy(self.model_.predict_proba(rows))

    def predict(self, X: object) -> np.ndarray:
        """The most probable class of each row (labels of ``classes_``).

        Returns
        -------
        numpy.ndarray, shape (n_samples,)
        """
        rows = self._rows(X)
        return self.classes_[_numpy(self.model_.predict(rows))]


class BayesianLogisticRegression(ClassifierMixin, BaseEstimator):
    r"""Bayesian logistic regression by the Laplace approximation (PRML 4.5), over
    :func:`ppl_models.logistic.laplace` and :func:`~ppl_models.logistic.predictive_probit`.

    With the prior :math:`w \sim \mathcal N(0, \alpha^{-1} I)` on the weights (the bias
    included, as in PRML), the posterior is approximated by :math:`\mathcal N(w_{MAP},
    S_N)`, :math:`S_N^{-1} = \alpha I + \Phi^\top R \Phi` at the MAP (IRLS), and the
    predictive probability by the probit approximation

    .. math::

        p(c_1 \mid x) \approx \sigma\big(\kappa(\sigma_a^2)\, \mu_a\big), \qquad
        \mu_a = w_{MAP}^\top \phi, \quad \sigma_a^2 = \phi^\top S_N \phi, \quad
        \kappa(\sigma^2) = (1 + \pi\sigma^2/8)^{-1/2},

    with :math:`\phi = (1, x)` (or :math:`x` without ``fit_intercept``). It moderates the
    probabilities far from the data but never changes the decision (:math:`\kappa > 0`).
    Binary targets only; ``classes_[1]`` is the positive class.

    Parameters
    ----------
    prior_precision : float
        :math:`\alpha > 0`. scikit-learn's ``LogisticRegression(C=1/alpha,
        fit_intercept=False)`` on :math:`(1, x)` has the same :math:`w_{MAP}`.
    fit_intercept : bool
        Prepend a column of ones (:func:`ppl_models.logistic.add_bias`).

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (2,)
    coef_ : numpy.ndarray, shape (1, n_features)
        :math:`w_{MAP}` without the bias.
    intercept_ : numpy.ndarray, shape (1,)
        The bias weight (0 without ``fit_intercept``).
    covariance_ : numpy.ndarray, shape (n_weights, n_weights)
        :math:`S_N`, the bias first when there is one.
    laplace_ : LaplaceApproximation
        The library's result (torch).
    n_features_in_, feature_names_in_

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((200, 2))
    >>> y = np.where(x @ [2.0, -1.0] + 0.3 * rng.standard_normal(200) > 0, "yes", "no")
    >>> clf = BayesianLogisticRegression(prior_precision=1.0).fit(x, y)
    >>> clf.predict([[1.0, -1.0]]).tolist(), clf.predict_proba([[1.0, -1.0]]).shape
    (['yes'], (1, 2))
    """

    def __init__(self, prior_precision: float = 1.0, *, fit_intercept: bool = True):
        self.prior_precision = prior_precision
        self.fit_intercept = fit_intercept

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _design(self, x: torch.Tensor) -> torch.Tensor:
        return logistic.add_bias(x) if self.fit_intercept else x

    def fit(self, X: object, y: object) -> BayesianLogisticRegression:
        """Fit :math:`w_{MAP}` (IRLS) and :math:`S_N`.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)
            Two classes, any label type.

        Returns
        -------
        BayesianLogisticRegression
            ``self``.
        """
        X, y = validate_data(self, X, y, dtype=_FLOATS, ensure_min_samples=2)
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            check_classification_targets(y)  # its error names the kind of target
        codes = _labels(self, y)
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported (y must hold exactly 2 classes); "
                f"got {len(self.classes_)} class(es): {self.classes_.tolist()[:10]}"
            )
        x = _tensor(X)
        t = torch.from_numpy(codes.astype(X.dtype))
        with warnings.catch_warnings():
            if x.dtype == torch.float32:
                # IRLS's default tol (1e-10) is below float32's rounding: reaching the
                # precision floor is convergence in float32.
                warnings.filterwarnings("ignore", message="irls stopped at the torch.float32")
            self.laplace_ = logistic.laplace(self._design(x), t, self.prior_precision)
        w = _numpy(self.laplace_.mean)
        self.coef_ = w[1:][None, :] if self.fit_intercept else w[None, :]
        self.intercept_ = w[:1] if self.fit_intercept else np.zeros(1, dtype=w.dtype)
        self.covariance_ = _numpy(self.laplace_.covariance)
        return self

    def _phi(self, X: object) -> torch.Tensor:
        check_is_fitted(self)
        return self._design(_tensor(validate_data(self, X, dtype=_FLOATS, reset=False)))

    def decision_function(self, X: object) -> np.ndarray:
        r"""The log-odds at the MAP, :math:`\mu_a = w_{MAP}^\top \phi(x)`; positive means
        ``classes_[1]``.

        Returns
        -------
        numpy.ndarray, shape (n_samples,)
        """
        phi = self._phi(X)
        return _numpy(phi @ self.laplace_.mean.to(phi))

    def predict_proba(self, X: object) -> np.ndarray:
        """The probit-approximated predictive probabilities, columns in the order of
        ``classes_`` (:func:`ppl_models.logistic.predictive_probit`).

        Returns
        -------
        numpy.ndarray, shape (n_samples, 2)
        """
        p1 = _numpy(logistic.predictive_probit(self._phi(X), *self.laplace_))
        return np.stack([1.0 - p1, p1], axis=1)

    def predict_log_proba(self, X: object) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`.

        Returns
        -------
        numpy.ndarray, shape (n_samples, 2)
        """
        return np.log(self.predict_proba(X))

    def predict(self, X: object) -> np.ndarray:
        """The class of larger predictive probability (the sign of
        :meth:`decision_function`).

        Returns
        -------
        numpy.ndarray, shape (n_samples,)
        """
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(np.intp)]


# ------------------------------------------------------------------------- regression

_BASES = (None, "polynomial", "gaussian")


class BayesianLinearRegression(RegressorMixin, BaseEstimator):
    r"""Bayesian linear regression with evidence-maximised hyperparameters (PRML 3.3-3.5),
    over :func:`ppl_models.regression.maximize_evidence`,
    :func:`~ppl_models.regression.posterior` and
    :func:`~ppl_models.regression.predictive_posterior`.

    With the prior :math:`w \sim \mathcal N(0, \alpha^{-1} I)` and noise precision
    :math:`\beta`, :math:`\alpha` and :math:`\beta` maximise the evidence
    :math:`p(t \mid \alpha, \beta)` (PRML 3.91-3.98); then the posterior is
    :math:`\mathcal N(m_N, S_N)`, :math:`S_N^{-1} = \alpha I + \beta\Phi^\top\Phi`,
    :math:`m_N = \beta S_N \Phi^\top t`, and the predictive distribution

    .. math::

        p(t \mid x) = \mathcal N\big(m_N^\top \phi(x),\ \beta^{-1} + \phi(x)^\top S_N
        \phi(x)\big).

    With ``fit_intercept`` the columns of :math:`\Phi` and the targets are centred first
    and the intercept, :math:`\bar t - \bar\phi^\top m_N`, carries no prior (scikit-learn's
    ``BayesianRidge`` does the same; with zero hyperpriors, ``alpha_1 = alpha_2 =
    lambda_1 = lambda_2 = 0``, it runs the same iteration). The predictive variance then
    uses the centred :math:`\phi(x) - \bar\phi`, the direction in which :math:`m_N`
    moves the prediction.

    Parameters
    ----------
    basis : {None, "polynomial", "gaussian"}
        Basis functions of a single input feature: :math:`x^0, \dots, x^{\text{degree}}`
        (:func:`~ppl_models.regression.polynomial_features`), or a bias and ``n_basis``
        Gaussian bumps evenly spaced over the training range with their spacing as width
        (:func:`~ppl_models.regression.gaussian_features`). None: the features themselves.
    degree : int
        The polynomial degree (``basis="polynomial"``).
    n_basis : int
        The number of Gaussian bumps (``basis="gaussian"``), at least 2.
    fit_intercept : bool
        Centre the design and the targets (see above).
    alpha_init : float
        Initial :math:`\alpha`.
    beta_init : float, optional
        Initial :math:`\beta`; :math:`1/\operatorname{var}(t)` by default.
    tol : float
        Stop when :math:`\ln\alpha` and :math:`\ln\beta` change by at most ``tol``.
    max_iter : int
        Re-estimation iterations at most.

    Attributes
    ----------
    coef_ : numpy.ndarray, shape (n_weights,)
        :math:`m_N`.
    intercept_ : float
    alpha_, beta_ : float
        The evidence maximum (``alpha_`` is ``inf`` when the evidence prefers
        :math:`w = 0`; then ``coef_`` is 0).
    gamma_ : float
        The effective number of parameters.
    log_evidence_ : float
    sigma_ : numpy.ndarray, shape (n_weights, n_weights)
        :math:`S_N`.
    evidence_ : EvidenceResult
    posterior_ : Posterior
    n_iter_, n_features_in_, feature_names_in_
    centers_, width_ : numpy.ndarray, float
        The Gaussian basis (``basis="gaussian"``).

    Examples
    --------
    >>> x = np.linspace(0, 1, 30)[:, None]
    >>> t = np.sin(2 * np.pi * x[:, 0]) + 0.1 * np.random.default_rng(0).standard_normal(30)
    >>> reg = BayesianLinearRegression(basis="polynomial", degree=5).fit(x, t)
    >>> mean, sd = reg.predict([[0.25]], return_std=True)
    >>> bool(abs(mean[0] - 1.0) < 3 * sd[0])
    True
    """

    def __init__(
        self,
        basis: str | None = None,
        *,
        degree: int = 3,
        n_basis: int = 9,
        fit_intercept: bool = True,
        alpha_init: float = 1.0,
        beta_init: float | None = None,
        tol: float = 1e-8,
        max_iter: int = 1000,
    ):
        self.basis = basis
        self.degree = degree
        self.n_basis = n_basis
        self.fit_intercept = fit_intercept
        self.alpha_init = alpha_init
        self.beta_init = beta_init
        self.tol = tol
        self.max_iter = max_iter

    def _design(self, x: torch.Tensor, fit: bool) -> torch.Tensor:
        if self.basis is None:
            return x
        if x.shape[1] != 1:
            raise ValueError(
                f"basis={self.basis!r} takes one input feature; X has {x.shape[1]} (put a "
                "PolynomialFeatures or SplineTransformer step before the estimator instead)"
            )
        if self.basis == "polynomial":
            return regression.polynomial_features(x[:, 0], self.degree)
        if fit:
            k = check_int(self.n_basis, "n_basis", minimum=2)
            lo, hi = float(x.min()), float(x.max())
            centers = torch.linspace(lo, hi, k, dtype=torch.float64)
            self.centers_ = _numpy(centers).astype(_numpy(x).dtype)
            self.width_ = (hi - lo) / (k - 1) if hi > lo else 1.0
        centers = torch.from_numpy(self.centers_).to(x)
        return regression.gaussian_features(x[:, 0], centers, self.width_)

    def fit(self, X: object, y: object) -> BayesianLinearRegression:
        """Maximise the evidence, then form the posterior.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)

        Returns
        -------
        BayesianLinearRegression
            ``self``.
        """
        X, y = validate_data(self, X, y, dtype=_FLOATS, y_numeric=True, ensure_min_samples=2)
        if self.basis not in _BASES:
            raise ValueError(f"basis must be one of {list(_BASES)}; got {self.basis!r}")
        x = _tensor(X)
        phi = self._design(x, fit=True)
        t = _tensor(np.asarray(y, dtype=X.dtype))
        if self.fit_intercept:
            self._phi_offset = phi.mean(0)
            self._t_offset = t.mean()
            phi, t = phi - self._phi_offset, t - self._t_offset
        else:
            self._phi_offset = torch.zeros(phi.shape[1], dtype=phi.dtype)
            self._t_offset = torch.zeros((), dtype=phi.dtype)
        with warnings.catch_warnings():
            # Reported below as scikit-learn's ConvergenceWarning instead.
            warnings.filterwarnings(
                "ignore", message="maximize_evidence did not converge", category=RuntimeWarning
            )
            ev = regression.maximize_evidence(
                phi, t, self.alpha_init, self.beta_init, tol=self.tol, max_iter=self.max_iter
            )
        if not ev.converged:
            warnings.warn(
                "BayesianLinearRegression: the evidence maximisation did not converge in "
                f"max_iter={self.max_iter} iterations (tol={self.tol:g})",
                ConvergenceWarning,
                stacklevel=2,
            )
        m = phi.shape[1]
        if torch.isinf(ev.alpha):  # the evidence prefers w = 0 (maximize_evidence's limit)
            post = regression.Posterior(
                torch.zeros(m, dtype=phi.dtype), torch.zeros(m, m, dtype=phi.dtype)
            )
        else:
            post = regression.posterior(phi, t, ev.alpha, ev.beta)
        self.evidence_, self.posterior_ = ev, post
        self.alpha_, self.beta_ = float(ev.alpha), float(ev.beta)
        self.gamma_, self.log_evidence_ = float(ev.gamma), float(ev.log_evidence)
        self.n_iter_ = ev.num_iter
        self.coef_ = _numpy(post.mean)
        self.sigma_ = _numpy(post.covariance)
        self.intercept_ = float(self._t_offset - self._phi_offset @ post.mean)
        return self

    def predict(self, X: object, return_std: bool = False) -> np.ndarray | tuple:
        r"""The predictive mean, and with ``return_std`` its standard deviation
        :math:`\sqrt{\beta^{-1} + \phi^\top S_N \phi}`.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        return_std : bool

        Returns
        -------
        mean : numpy.ndarray, shape (n_samples,)
        std : numpy.ndarray, shape (n_samples,), only with ``return_std``
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        phi = self._design(_tensor(X), fit=False)
        phi = phi - self._phi_offset.to(phi)
        pred = regression.predictive_posterior(phi, self.posterior_, self.evidence_.beta)
        mean = _numpy(pred.mean + self._t_offset.to(phi))
        return (mean, _numpy(pred.stddev)) if return_std else mean
