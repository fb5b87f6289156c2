r"""Linear-in-the-parameters regression with basis functions, by maximum likelihood and
Bayesian inference.

The model
---------
Targets :math:`t_n \in \mathbb{R}` depend on inputs :math:`x_n` through fixed basis
functions :math:`\phi(x) = (\phi_0(x), \dots, \phi_{M-1}(x))^\top` (PRML 3.1-3.3):

.. math::

    t_n = w^\top \phi(x_n) + \epsilon_n, \qquad \epsilon_n \sim \mathcal{N}(0, \beta^{-1}),

with :math:`\Phi` the :math:`N \times M` design matrix, :math:`\Phi_{nj} = \phi_j(x_n)`.

**Maximum likelihood** (PRML 3.15, 3.21, 1.63) is least squares, and the noise variance is
the mean squared residual (divisor :math:`N`):

.. math::

    w_{ML} = \arg\min_w \lVert t - \Phi w \rVert^2 = \Phi^{+} t, \qquad
    \frac{1}{\beta_{ML}} = \frac1N \lVert t - \Phi w_{ML} \rVert^2,

with predictive distribution :math:`p(t \mid x) = \mathcal{N}(t \mid w_{ML}^\top\phi(x),
\beta_{ML}^{-1})` (PRML 1.64). :math:`w_{ML}` is computed from the singular value
decomposition of :math:`\Phi`, never from the normal equations :math:`\Phi^\top\Phi w =
\Phi^\top t`, which square the condition number (about :math:`10^{7}` for a degree-9
polynomial on :math:`[0, 1]`, so :math:`10^{14}` squared).

**Bayesian linear regression** (PRML 3.3) puts the prior :math:`w \sim \mathcal{N}(0,
\alpha^{-1} I)` on the weights; for known :math:`\alpha, \beta` the posterior is Gaussian
(PRML 3.53-3.54) and so is the predictive distribution (PRML 3.58-3.59):

.. math::

    S_N^{-1} = \alpha I + \beta \Phi^\top \Phi, \qquad m_N = \beta S_N \Phi^\top t,
    \qquad \sigma_N^2(x) = \frac1\beta + \phi(x)^\top S_N \phi(x).

**The evidence** (marginal likelihood, PRML 3.86) with :math:`A = S_N^{-1}` and
:math:`E(m_N) = \frac\beta2 \lVert t - \Phi m_N\rVert^2 + \frac\alpha2 m_N^\top m_N`,

.. math::

    \ln p(t \mid \alpha, \beta) = \frac M2 \ln\alpha + \frac N2 \ln\beta - E(m_N)
        - \frac12 \ln|A| - \frac N2 \ln 2\pi,

is maximised by the fixed-point equations (PRML 3.91-3.98), where :math:`\lambda_i` are
the eigenvalues of :math:`\beta\Phi^\top\Phi`:

.. math::

    \gamma = \sum_i \frac{\lambda_i}{\alpha + \lambda_i}, \qquad
    \alpha = \frac{\gamma}{m_N^\top m_N}, \qquad
    \frac1\beta = \frac{\lVert t - \Phi m_N \rVert^2}{N - \gamma}.

==================  ======================  ==========================================
symbol              argument / field        shape
==================  ======================  ==========================================
:math:`x_n`         ``x``                   ``(N,)``
:math:`t_n`         ``t``                   ``(N,)``
:math:`\Phi`        ``phi``                 ``(N, M)``
:math:`w`           ``w``                   ``(M,)``
:math:`\beta`       ``beta``                ``()`` (noise precision)
:math:`\alpha`      ``alpha``               ``()`` (prior precision of ``w``)
:math:`m_N, S_N`    ``mean, covariance``    ``(M,)``, ``(M, M)``
:math:`\gamma`      ``gamma``               ``()`` (effective number of parameters)
==================  ======================  ==========================================

Data and dtypes follow the library's conventions, as in :mod:`ppl_models.gaussian`: data
enter once, the model computes in the promotion of the module's and the data's dtypes.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), sections 1.1, 1.2.5,
3.1-3.5.
"""

from __future__ import annotations

from ..inference.step import IterateAveraging
from ._base import EvidenceResult, Posterior, RegressionParams
from .closed_forms import mle, posterior, predictive, predictive_posterior
from .evidence import linear_gaussian_loo as linear_gaussian_loo
from .evidence import log_evidence, maximize_evidence
from .features import gaussian_features, polynomial_features
from .model import LinearRegression

# IterateAveraging (Polyak-Ruppert averaging of Adam's iterates) lives with the optimizers
# in ppl_models.inference.step and is re-exported here, where the tutorials use it.
# linear_gaussian_loo (moved here from ppl_models.workflow, issue 18) is public too; it
# joins __all__, which tests/test_fuzz.py drives entry by entry, with its fuzz spec.
__all__ = [
    "EvidenceResult",
    "IterateAveraging",
    "LinearRegression",
    "Posterior",
    "RegressionParams",
    "gaussian_features",
    "log_evidence",
    "maximize_evidence",
    "mle",
    "polynomial_features",
    "posterior",
    "predictive",
    "predictive_posterior",
]
