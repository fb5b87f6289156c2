r"""Logistic regression: maximum likelihood by IRLS, the Laplace approximation, Pyro's model.

The model
---------
A binary target :math:`t_n \in \{0, 1\}` depends on a feature vector
:math:`\phi_n = \phi(x_n) \in \mathbb{R}^D` (a column of ones gives the bias) through

.. math::

    p(t_n = 1 \mid \phi_n, w) = y_n = \sigma(a_n), \qquad a_n = w^\top \phi_n, \qquad
    \sigma(a) = \frac{1}{1 + e^{-a}},

so the log-likelihood is minus the **binary cross-entropy** (PRML 4.90):

.. math::

    \ln p(t \mid w) = \sum_{n=1}^N t_n \ln y_n + (1 - t_n) \ln (1 - y_n)
                    = \sum_{n=1}^N t_n a_n + \ln \sigma(-a_n).

Its gradient and Hessian are :math:`\nabla = \Phi^\top (t - y)` and
:math:`-\Phi^\top R \Phi` with :math:`R = \mathrm{diag}(y_n (1 - y_n))` (PRML 4.96-4.97):
the log-likelihood is concave, and Newton-Raphson, which here is *iteratively reweighted
least squares* (IRLS, PRML 4.3.3), converges quadratically to the maximum

.. math::

    w \leftarrow w + (\Phi^\top R \Phi + \alpha I)^{-1}
        \left[\Phi^\top (t - y) - \alpha w\right],

where a Gaussian prior :math:`w \sim \mathcal{N}(0, \alpha^{-1} I)` adds the
:math:`\alpha` terms (maximum a posteriori; :math:`\alpha = 0` is maximum likelihood).

**Separable data.** If a hyperplane separates the two classes, scaling up its normal
raises the likelihood towards 1 for ever: :math:`\|w\| \to \infty` and no maximum-likelihood
estimate exists (PRML 4.3.2). :func:`irls` and :class:`LogisticRegression` detect it
(a weight vector that classifies every training point correctly is a proof of it) and
warn with :class:`SeparableDataWarning`; a prior (``prior_precision``) fixes it.

**Bayesian logistic regression** (PRML 4.5). The posterior is not Gaussian; the
Laplace approximation (:func:`laplace`) is :math:`\mathcal{N}(w_{MAP}, S_N)` with
:math:`S_N^{-1} = \alpha I + \Phi^\top R \Phi` at :math:`w_{MAP}` (PRML 4.143), and the
predictive probability is approximated by the probit trick (:func:`predictive_probit`,
PRML 4.153-4.155)

.. math::

    p(t = 1 \mid \phi, t) \approx \sigma\!\left(\kappa(\sigma_a^2)\, \mu_a\right), \qquad
    \mu_a = w_{MAP}^\top \phi, \quad \sigma_a^2 = \phi^\top S_N \phi, \quad
    \kappa(\sigma^2) = (1 + \pi \sigma^2 / 8)^{-1/2}.

NUTS on :class:`LogisticRegression` with a prior samples the exact posterior.

========================  ======================  ====================================
symbol                    argument / field        shape
========================  ======================  ====================================
:math:`\Phi`              ``phi``                 ``(N, D)``
:math:`t`                 ``t``                   ``(N,)``, entries 0 or 1
:math:`w`                 ``w``, site ``"w"``     ``(D,)``
:math:`\alpha`            ``prior_precision``     scalar
:math:`w_{MAP}, S_N`      ``mean, covariance``    ``(D,)``, ``(D, D)``
========================  ======================  ====================================

Data and dtypes follow the library's conventions, as in :mod:`ppl_models.gaussian`: data
enter once, the model computes in the promotion of the module's and the data's dtypes.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), sections 4.3.2-4.3.4,
4.4, 4.5.
A. Albert and J. A. Anderson, "On the existence of maximum likelihood estimates in
logistic regression models", *Biometrika* 71 (1984) 1-10.
"""

from __future__ import annotations

from .closed_forms import (
    LaplaceApproximation,
    LogisticParams,
    SeparableDataWarning,
    add_bias,
    irls,
    is_separable,
    laplace,
    log_likelihood,
    predictive_probit,
)
from .model import LogisticRegression

__all__ = [
    "LaplaceApproximation",
    "LogisticParams",
    "LogisticRegression",
    "SeparableDataWarning",
    "add_bias",
    "irls",
    "is_separable",
    "laplace",
    "log_likelihood",
    "predictive_probit",
]
