r"""scikit-learn estimators over the library's own closed forms and algorithms.

Each estimator is a thin adapter: it validates its input the scikit-learn way
(:func:`sklearn.utils.validation.validate_data`: numpy arrays, pandas DataFrames, lists;
integer data become float64, float32 stays float32; sparse matrices are refused with a
message that says to call ``.toarray()``), calls one function of a topic module on torch
tensors that share the array's memory, and returns numpy arrays in the input's floating
dtype. No mathematics is implemented here a second time: the numbers are those of the
functions named below, bit for bit.

===================================  =====================================================
estimator                            the library's functions it calls
===================================  =====================================================
:class:`PCA`                         :func:`ppl_models.pca.fit`, :func:`~ppl_models.pca.transform`,
                                     and :func:`ppl_models.ppca.closed_form` for the density
:class:`PPCA`                        :func:`ppl_models.ppca.closed_form`,
                                     :func:`~ppl_models.ppca.em` (with missing values: the
                                     exact missing-data EM),
                                     :class:`~ppl_models.ppca.MarginalPPCA` by
                                     :func:`~ppl_models.inference.fit_svi`,
                                     :func:`~ppl_models.ppca.select_latent_dim`
:class:`BayesianPCA`                 :func:`ppl_models.bayesian_pca.ard_em`
:class:`PPCAClassifier`              :class:`ppl_models.ppca.PPCAClassifier`
:class:`BayesianLinearRegression`    :func:`ppl_models.regression.maximize_evidence`,
                                     :func:`~ppl_models.regression.posterior`,
                                     :func:`~ppl_models.regression.predictive_posterior`
:class:`BayesianLogisticRegression`  :func:`ppl_models.logistic.laplace`,
                                     :func:`~ppl_models.logistic.predictive_probit`
===================================  =====================================================

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

from .classifiers import BayesianLogisticRegression, PPCAClassifier
from .decomposition import PCA, PPCA, BayesianPCA
from .regressors import BayesianLinearRegression

__all__ = [
    "PCA",
    "PPCA",
    "BayesianLinearRegression",
    "BayesianLogisticRegression",
    "BayesianPCA",
    "PPCAClassifier",
]
