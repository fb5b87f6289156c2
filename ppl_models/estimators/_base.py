"""What the estimators share: numpy in and out around torch tensors that share the
arrays' memory, the seed, the PPCA density's methods and the decompositions' base."""

from __future__ import annotations

import numbers
import re
import warnings

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.extmath import svd_flip
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .. import gaussian, ppca
from .._checks import check_int

FLOATS = (np.float64, np.float32)


# ---------------------------------------------------------------------------- helpers


def validate_xy(est: BaseEstimator, X: object, y: object, **kwargs: object) -> tuple:
    """scikit-learn's ``validate_data(est, X, y, **kwargs)``, with its refusal naming the
    argument at fault: some of its messages ("Found array with 0 feature(s) ...") name
    neither ``X`` nor ``y``; ``X`` alone is checked again to tell which one it was."""
    try:
        return validate_data(est, X, y, **kwargs)
    except ValueError as err:
        message = str(err)
        if re.search(r"\b(X|y)\b", message):
            raise
        keep = ("dtype", "ensure_min_samples", "ensure_min_features", "ensure_all_finite")
        try:
            check_array(X, **{k: v for k, v in kwargs.items() if k in keep})
        except (ValueError, TypeError):
            raise ValueError(f"X: {message}") from err
        raise ValueError(f"y: {message}") from err


def as_tensor(x: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``x``'s memory (read-only arrays, e.g. memory maps, are copied:
    torch cannot share memory it may not write)."""
    if not x.flags.writeable:
        x = x.copy()
    return torch.from_numpy(np.ascontiguousarray(x))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def seed_of(random_state: object) -> int:
    """An int ``random_state`` is the library's ``seed``; None or a ``RandomState`` draws
    one (scikit-learn's convention)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return check_int(random_state, "random_state", minimum=0)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def principal_axes(w: torch.Tensor, sigma2: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    r"""The principal axes of :math:`C = W W^\top + \sigma^2 I` within span(W), as rows,
    and the variances along them, :math:`s_i^2 + \sigma^2` (:math:`s_i` the singular values
    of :math:`W`). Signs: each row's entry of largest magnitude is positive (scikit-learn's
    ``svd_flip`` rule, which :func:`ppl_models.pca.fit` follows too)."""
    u, s, _ = torch.linalg.svd(w.to(torch.float64), full_matrices=False)
    _, rows = svd_flip(None, to_numpy(u.T).copy(), u_based_decision=False)
    variance = to_numpy(s**2 + sigma2.to(torch.float64))
    return rows.astype(to_numpy(w).dtype), variance.astype(to_numpy(w).dtype)


class PPCADensity:
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
            dtype=FLOATS,
            reset=False,
            ensure_all_finite="allow-nan" if self._allow_nan else True,
        )
        return as_tensor(X)

    def score_samples(self, X: object) -> np.ndarray:
        r"""The log-density :math:`\ln \mathcal N(x_n \mid \mu, C)` of each row
        (:func:`ppl_models.ppca.log_likelihood`).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Rows in the space of the training data.

        Returns
        -------
        numpy.ndarray, shape (n_samples,)
            :math:`\ln p(x_n)` in nats, one per row.
        """
        params = self._density()
        x = self._rows(X)
        if isinstance(params, gaussian.GaussianParams):
            full = torch.distributions.MultivariateNormal(
                params.loc.to(x), covariance_matrix=params.covariance.to(x)
            )
            return to_numpy(full.log_prob(x))
        return to_numpy(ppca.log_likelihood(x, params))

    def score(self, X: object, y: object = None) -> float:
        r"""The mean log-likelihood per row, :math:`\frac1N \sum_n \ln \mathcal N(x_n \mid
        \mu, C)` (scikit-learn's convention for ``PCA.score``): what ``GridSearchCV`` and
        ``cross_val_score`` maximise when given no ``scoring``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Rows to score: held-out rows when choosing a model.
        y : None
            Not used; there for scikit-learn's API.

        Returns
        -------
        float
            Nats per row; higher is better.
        """
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    def get_covariance(self) -> np.ndarray:
        r"""The model covariance :math:`C = W W^\top + \sigma^2 I`, shape (D, D)
        (:func:`ppl_models.ppca.covariance`)."""
        params = self._density()
        if isinstance(params, gaussian.GaussianParams):
            return to_numpy(params.covariance)
        return to_numpy(ppca.covariance(params))

    def get_precision(self) -> np.ndarray:
        r""":math:`C^{-1}` by the matrix inversion lemma, shape (D, D)
        (:func:`ppl_models.ppca.precision`)."""
        params = self._density()
        if isinstance(params, gaussian.GaussianParams):
            return to_numpy(torch.cholesky_inverse(torch.linalg.cholesky(params.covariance)))
        return to_numpy(ppca.precision(params))

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
        seed = seed_of(random_state)
        if isinstance(params, gaussian.GaussianParams):
            loc, chol = params.loc, torch.linalg.cholesky(params.covariance)
            gen = torch.Generator(device=loc.device).manual_seed(seed)
            eps = torch.randn(n, loc.shape[0], generator=gen, dtype=loc.dtype, device=loc.device)
            return to_numpy(loc + eps @ chol.T)
        return to_numpy(ppca.sample(params, n, seed=seed))


class Decomposition(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Shared by the three decompositions: feature names ``pca0, pca1, ...``, tags, and
    :meth:`transform` and :meth:`inverse_transform` through each one's ``_encode(x)``
    (rows to scores) and ``_decoder()`` (:math:`W` and :math:`\mu`)."""

    @property
    def _n_features_out(self) -> int:
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def transform(self, X: object) -> np.ndarray:
        r"""The scores of each row: :class:`PCA`'s projection :math:`U_M^\top (x_n - \bar
        x)` (:func:`ppl_models.pca.transform`), or the posterior mean :math:`\mathbb E[z_n
        \mid x_n] = M^{-1} W^\top (x_n - \mu)`, :math:`M = W^\top W + \sigma^2 I` (PRML
        12.48; :func:`ppl_models.ppca.posterior`) of :class:`PPCA` and
        :class:`BayesianPCA`, given each row's observed coordinates where ``X`` has NaN
        (PPCA only).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Rows to encode, with the training data's columns.

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_components)
            One row of latent coordinates per row of ``X``.
        """
        return to_numpy(self._encode(self._rows(X)))

    def inverse_transform(self, X: object) -> np.ndarray:
        r"""Back to data space, :math:`\mu + W z` for each row :math:`z`: :class:`PCA`'s
        :math:`\bar x + U_M z` (``inverse_transform(transform(x))`` is the reconstruction
        :func:`ppl_models.pca.reconstruct`), or the generative model's decoder, the mean of
        :math:`x` given :math:`z` (applied to :meth:`transform`'s output it shrinks towards
        :math:`\mu`: the posterior mean is shrunk, PRML 12.2.1).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_components)
            Latent coordinates, such as :meth:`transform`'s output.

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_features)
            Points in the space of the training data.
        """
        check_is_fitted(self)
        w, mu = self._decoder()
        return decode(X, w, mu, "X", self.n_components_)


class ComponentsDecomposition(PPCADensity, Decomposition):
    """The parameters :class:`PCA` and :class:`PPCA` share (scikit-learn reads them from
    this ``__init__``'s signature); each subclass checks ``n_components`` in ``fit``."""

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


def warn_unconverged(what: str, max_iter: int, tol: float | None = None) -> None:
    """The ``ConvergenceWarning`` of a fit whose iterations ran out, pointed at the caller
    of ``fit``: "``what`` did not converge in max_iter=... iterations (tol=...)"."""
    detail = "" if tol is None else f" (tol={tol:g})"
    warnings.warn(
        f"{what} did not converge in max_iter={max_iter} iterations{detail}",
        ConvergenceWarning,
        stacklevel=3,
    )


def decode(z: object, w: torch.Tensor, mu: torch.Tensor, name: str, m: int) -> np.ndarray:
    """:math:`\\mu + W z` for each row of ``z`` (the decoder of the linear model)."""
    z = check_array(z, dtype=FLOATS)
    if z.shape[1] != m:
        raise ValueError(f"{name} must have {m} columns (n_components_); got {z.shape[1]}")
    t = as_tensor(z)
    return to_numpy(mu.to(t) + t @ w.to(t).T)


def class_codes(est: BaseEstimator, y: np.ndarray) -> np.ndarray:
    """Class indices 0..C-1 of ``y``, setting ``classes_`` (any label type)."""
    check_classification_targets(y)
    est.classes_, codes = np.unique(y, return_inverse=True)
    return codes
