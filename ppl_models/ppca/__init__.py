r"""Probabilistic PCA: a linear-Gaussian latent variable model whose maximum likelihood is PCA.

The generative model (Tipping & Bishop 1999; PRML 12.2)

.. math::

    z_n \sim \mathcal N(0, I_M), \qquad
    x_n \mid z_n \sim \mathcal N(W z_n + \mu, \sigma^2 I_D), \qquad n = 1, \dots, N,

so that, with :math:`z_n` integrated out,

.. math::

    x_n \sim \mathcal N(\mu, C), \qquad C = W W^\top + \sigma^2 I_D .

=====================  ==============  ==============================================
symbol                 argument        meaning
=====================  ==============  ==============================================
:math:`x_n`            ``x[n]``        a data point, shape (D,)
:math:`z_n`            site ``"z"``    its latent coordinates, shape (M,)
:math:`W`              ``W``           the D x M factor loading matrix
:math:`\mu`            ``mu``          the mean, shape (D,)
:math:`\sigma^2`       ``sigma2``      the isotropic noise variance
:math:`M`              ``latent_dim``  the latent dimension, :math:`1 \le M < D`
=====================  ==============  ==============================================

Data and dtypes follow the library's conventions: data enter once, through
:func:`ppl_models._checks.as_data`, and the Pyro model computes in torch's promotion of
the module's and the data's dtypes (:func:`ppl_models._checks.promoted_like`), on the
data's device. A prior put on a parameter (see :mod:`ppl_models.bayesian_pca`), plain
floats included, has its draws cast to that dtype.

References
----------
M. E. Tipping and C. M. Bishop, *Probabilistic principal component analysis*, JRSS B 61
(1999). C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), section 12.2.
"""

from __future__ import annotations

from ._base import EMResult, PPCAParams
from .classifier import PPCAClassifier
from .closed_forms import (
    closed_form,
    covariance,
    impute,
    log_likelihood,
    posterior,
    precision,
    sample,
)
from .em_algorithm import em
from .models import LatentPPCA, MarginalPPCA
from .selection import LatentDimSelection, select_latent_dim

__all__ = [
    "EMResult",
    "LatentDimSelection",
    "LatentPPCA",
    "MarginalPPCA",
    "PPCAClassifier",
    "PPCAParams",
    "closed_form",
    "covariance",
    "em",
    "impute",
    "log_likelihood",
    "posterior",
    "precision",
    "sample",
    "select_latent_dim",
]
