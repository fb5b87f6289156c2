"""A generative classifier with one PPCA density per class."""

from __future__ import annotations

import torch

from .._checks import (
    as_data,
    check_int,
)
from ._base import (
    PPCAParams,
    check_latent_dim,
)
from .closed_forms import closed_form, log_likelihood


class PPCAClassifier:
    r"""A generative classifier: one PPCA density per class, Bayes' rule with class priors.

    .. math::

        p(c \mid x) = \frac{\pi_c\, \mathcal N(x \mid \mu_c, W_c W_c^\top + \sigma_c^2 I)}
            {\sum_{c'} \pi_{c'}\, \mathcal N(x \mid \mu_{c'}, W_{c'} W_{c'}^\top
            + \sigma_{c'}^2 I)},

    each class's parameters the :func:`closed_form` maximum likelihood on its points, the
    priors :math:`\pi_c` the class frequencies unless given. Between the diagonal Gaussian
    of naive Bayes and a full covariance per class (:math:`D(D+1)/2` parameters each,
    singular on the digits' constant pixels), PPCA keeps :math:`M` directions of
    correlation and one variance for the rest, :math:`\sigma^2 > 0`. The posterior is
    computed with log-sum-exp.

    Parameters
    ----------
    latent_dim : int
        :math:`M` of every class's PPCA, :math:`1 \le M < D`.
    priors : array_like, shape (C,), optional
        Class probabilities in the order of the sorted class labels; positive, summing to
        1. The class frequencies of the training labels by default.

    Attributes
    ----------
    classes_ : torch.Tensor, shape (C,)
        The sorted class labels (int64), after :meth:`fit`.
    params_ : list of PPCAParams
        Each class's fitted parameters.
    log_priors_ : torch.Tensor, shape (C,)

    See Also
    --------
    ppl_models.estimators.PPCAClassifier : the scikit-learn estimator over this class
        (``n_components``, any label type, numpy out; for pipelines, ``cross_val_score``
        and ``GridSearchCV``). This class is the torch-level one: integer labels, torch
        tensors out; scikit-learn's machinery refuses it with a message naming that one.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.cat([torch.randn(50, 4, generator=g, dtype=torch.float64) + 3,
    ...                torch.randn(50, 4, generator=g, dtype=torch.float64) - 3])
    >>> y = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    >>> clf = PPCAClassifier(1).fit(x, y)
    >>> clf.predict(torch.tensor([[3.0, 3, 3, 3], [-3.0, -3, -3, -3]])).tolist()
    [0, 1]
    """

    _NOT_AN_ESTIMATOR = (
        "ppl_models.ppca.PPCAClassifier is the torch-level classifier (torch tensors out, "
        "integer labels); in scikit-learn pipelines, cross-validation and searches use "
        "ppl_models.estimators.PPCAClassifier(n_components=...), which fits this one"
    )

    def __init__(self, latent_dim: int, *, priors: object = None):
        self.latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
        self.priors = priors
        self.classes_: torch.Tensor | None = None
        self.params_: list[PPCAParams] = []
        self.log_priors_: torch.Tensor | None = None

    def __sklearn_tags__(self) -> None:
        """scikit-learn asks every step for its tags: a clear refusal instead of its
        ``no attribute '__sklearn_tags__'``."""
        raise TypeError(self._NOT_AN_ESTIMATOR)

    def get_params(self, deep: bool = True) -> None:
        """scikit-learn's ``clone`` (``cross_val_score``, ``GridSearchCV``) starts here:
        a clear refusal, as in :meth:`__sklearn_tags__`."""
        raise TypeError(self._NOT_AN_ESTIMATOR)

    def _labels(self, y: object, n: int) -> torch.Tensor:
        import numpy as np

        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        elif not isinstance(y, (np.ndarray, list, tuple)):
            raise TypeError(f"y must be a torch tensor or a numpy array; got {type(y).__name__}")
        arr = np.asarray(y)
        if arr.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per row of x); got shape {arr.shape}")
        if arr.shape[0] != n:
            raise ValueError(
                f"x and y must have the same number of rows; x has {n}, y has {arr.shape[0]}"
            )
        if arr.dtype.kind == "f":
            if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
                raise ValueError("y must hold integer class labels; got non-integer values")
        elif arr.dtype.kind not in "iub":
            raise TypeError(f"y must hold integer class labels; got dtype {arr.dtype}")
        return torch.from_numpy(arr.astype(np.int64))

    def fit(self, x: object, y: object) -> PPCAClassifier:
        """Fit one PPCA per class (:func:`closed_form`) and the class priors.

        Parameters
        ----------
        x : array_like, shape (N, D)
        y : array_like of int, shape (N,)
            Class labels; at least 2 classes, each with at least ``latent_dim + 2`` points
            (a class's :math:`\\sigma^2` needs variance outside its :math:`M` directions).

        Returns
        -------
        PPCAClassifier
            ``self``.
        """
        x = as_data(x, "x", ndim=2, min_rows=2)
        n, d = x.shape
        check_latent_dim(self.latent_dim, d)
        labels = self._labels(y, n)
        classes, counts = torch.unique(labels, return_counts=True)
        if classes.numel() < 2:
            raise ValueError(f"y must hold at least 2 classes; got only {classes.tolist()}")
        small = classes[counts < self.latent_dim + 2]
        if small.numel():
            raise ValueError(
                f"every class needs at least latent_dim + 2 = {self.latent_dim + 2} points; "
                f"class(es) {small.tolist()} have {counts[counts < self.latent_dim + 2].tolist()}"
            )
        if self.priors is None:
            priors = counts.to(torch.float64) / n
        else:
            priors = as_data(self.priors, "priors", ndim=1, min_rows=1, dtype=torch.float64)
            if priors.shape[0] != classes.numel():
                raise ValueError(
                    f"priors must have one entry per class ({classes.numel()}); "
                    f"got {priors.shape[0]}"
                )
            if not bool((priors > 0).all()) or abs(float(priors.sum()) - 1) > 1e-8:
                raise ValueError(f"priors must be positive and sum to 1; got {priors.tolist()}")
        params = []
        for c in classes.tolist():
            rows = x[(labels == c).to(x.device)]
            try:
                params.append(closed_form(rows, self.latent_dim))
            except ValueError as err:
                raise ValueError(f"class {c}: {err}") from err
        self.classes_, self.params_ = classes, params
        self.log_priors_ = torch.log(priors)
        return self

    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise RuntimeError("this PPCAClassifier is not fitted yet: call fit(x, y) first")

    def joint_log_likelihood(self, x: object) -> torch.Tensor:
        r""":math:`\ln \pi_c + \ln \mathcal N(x_n \mid \mu_c, C_c)`, shape (N, C)."""
        self._check_fitted()
        cols = [log_likelihood(x, p) for p in self.params_]
        joint = torch.stack(cols, dim=1)
        return joint + self.log_priors_.to(joint)

    def predict_log_proba(self, x: object) -> torch.Tensor:
        r""":math:`\ln p(c \mid x_n)`, shape (N, C), columns in the order of ``classes_``."""
        joint = self.joint_log_likelihood(x)
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)

    def predict_proba(self, x: object) -> torch.Tensor:
        r""":math:`p(c \mid x_n)`, shape (N, C), columns in the order of ``classes_``;
        rows sum to 1."""
        return self.predict_log_proba(x).exp()

    def predict(self, x: object) -> torch.Tensor:
        """The most probable class of each row, shape (N,), int64 labels."""
        joint = self.joint_log_likelihood(x)
        return self.classes_.to(joint.device)[joint.argmax(dim=1)]

    def score(self, x: object, y: object) -> float:
        """The accuracy of :meth:`predict` on ``(x, y)``; labels unseen in :meth:`fit`
        are an error."""
        self._check_fitted()
        pred = self.predict(x)
        labels = self._labels(y, pred.shape[0])
        unseen = labels[~torch.isin(labels, self.classes_)]
        if unseen.numel():
            raise ValueError(
                f"y holds class(es) {torch.unique(unseen).tolist()} not seen in fit "
                f"(classes {self.classes_.tolist()})"
            )
        return float((pred.cpu() == labels).to(torch.float64).mean())
