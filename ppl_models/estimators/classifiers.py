r"""The classifiers: :class:`PPCAClassifier` (one PPCA density per class) and
:class:`BayesianLogisticRegression` (the Laplace approximation)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
)
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import logistic, ppca
from .._checks import check_int
from ._base import (
    FLOATS,
    as_tensor,
    class_codes,
    to_numpy,
    validate_xy,
)


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
        X, y = validate_xy(self, X, y, dtype=FLOATS, ensure_min_samples=2, ensure_min_features=2)
        m = check_int(self.n_components, "n_components", minimum=1, maximum=X.shape[1] - 1)
        codes = class_codes(self, y)
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
            as_tensor(X), torch.from_numpy(codes.astype(np.int64))
        )
        self.params_ = self.model_.params_
        self.class_prior_ = np.exp(to_numpy(self.model_.log_priors_))
        return self

    def _rows(self, X: object) -> torch.Tensor:
        check_is_fitted(self)
        return as_tensor(validate_data(self, X, dtype=FLOATS, reset=False))

    def predict_log_proba(self, X: object) -> np.ndarray:
        r""":math:`\ln p(c \mid x_n)`, columns in the order of ``classes_``.

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_classes)
        """
        rows = self._rows(X)
        return to_numpy(self.model_.predict_log_proba(rows))

    def predict_proba(self, X: object) -> np.ndarray:
        r""":math:`p(c \mid x_n) = \exp` :meth:`predict_log_proba`, shape (n_samples,
        n_classes), columns in the order of ``classes_``; rows sum to 1."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: object) -> np.ndarray:
        """The most probable class of each row (labels of ``classes_``).

        Returns
        -------
        numpy.ndarray, shape (n_samples,)
        """
        rows = self._rows(X)
        return self.classes_[to_numpy(self.model_.predict(rows))]


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
        X, y = validate_xy(self, X, y, dtype=FLOATS, ensure_min_samples=2)
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            check_classification_targets(y)  # its error names the kind of target
        codes = class_codes(self, y)
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported (y must hold exactly 2 classes); "
                f"got {len(self.classes_)} class(es): {self.classes_.tolist()[:10]}"
            )
        x = as_tensor(X)
        t = torch.from_numpy(codes.astype(X.dtype))
        with warnings.catch_warnings():
            if x.dtype == torch.float32:
                # IRLS's default tol (1e-10) is below float32's rounding: reaching the
                # precision floor is convergence in float32.
                warnings.filterwarnings("ignore", message="irls stopped at the torch.float32")
            self.laplace_ = logistic.laplace(self._design(x), t, self.prior_precision)
        w = to_numpy(self.laplace_.mean)
        self.coef_ = w[1:][None, :] if self.fit_intercept else w[None, :]
        self.intercept_ = w[:1] if self.fit_intercept else np.zeros(1, dtype=w.dtype)
        self.covariance_ = to_numpy(self.laplace_.covariance)
        return self

    def _phi(self, X: object) -> torch.Tensor:
        check_is_fitted(self)
        return self._design(as_tensor(validate_data(self, X, dtype=FLOATS, reset=False)))

    def decision_function(self, X: object) -> np.ndarray:
        r"""The log-odds at the MAP, :math:`\mu_a = w_{MAP}^\top \phi(x)`; positive means
        ``classes_[1]``.

        Returns
        -------
        numpy.ndarray, shape (n_samples,)
        """
        phi = self._phi(X)
        return to_numpy(phi @ self.laplace_.mean.to(phi))

    def predict_proba(self, X: object) -> np.ndarray:
        """The probit-approximated predictive probabilities, columns in the order of
        ``classes_`` (:func:`ppl_models.logistic.predictive_probit`).

        Returns
        -------
        numpy.ndarray, shape (n_samples, 2)
        """
        p1 = to_numpy(logistic.predictive_probit(self._phi(X), *self.laplace_))
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
