r"""The regressor: :class:`BayesianLinearRegression`, with evidence-maximised
hyperparameters."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    RegressorMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import regression
from .._checks import check_int
from ._base import (
    FLOATS,
    as_tensor,
    to_numpy,
    validate_xy,
)

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
            self.centers_ = to_numpy(centers).astype(to_numpy(x).dtype)
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
        X, y = validate_xy(self, X, y, dtype=FLOATS, y_numeric=True, ensure_min_samples=2)
        if self.basis not in _BASES:
            raise ValueError(f"basis must be one of {list(_BASES)}; got {self.basis!r}")
        x = as_tensor(X)
        phi = self._design(x, fit=True)
        t = as_tensor(np.asarray(y, dtype=X.dtype))
        if not bool((t != t[0]).any()):
            raise ValueError(
                f"y is constant (every target is {float(t[0]):g}): with no noise in the "
                "targets the evidence has no maximum in the noise precision beta; give "
                "targets that vary"
            )
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
        self.coef_ = to_numpy(post.mean)
        self.sigma_ = to_numpy(post.covariance)
        self.intercept_ = float(self._t_offset - self._phi_offset @ post.mean)
        return self

    def predict(self, X: object, return_std: bool = False) -> np.ndarray | tuple:
        r"""The predictive mean, and with ``return_std`` its standard deviation
        :math:`\sqrt{\beta^{-1} + \phi^\top S_N \phi}`.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Inputs as given to :meth:`fit` (the estimator applies its own ``basis``).
        return_std : bool, default False
            Also return the predictive standard deviation.

        Returns
        -------
        mean : numpy.ndarray, shape (n_samples,)
        std : numpy.ndarray, shape (n_samples,), only with ``return_std``
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=FLOATS, reset=False)
        phi = self._design(as_tensor(X), fit=False)
        phi = phi - self._phi_offset.to(phi)
        pred = regression.predictive_posterior(phi, self.posterior_, self.evidence_.beta)
        mean = to_numpy(pred.mean + self._t_offset.to(phi))
        return (mean, to_numpy(pred.stddev)) if return_std else mean
