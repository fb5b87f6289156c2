r"""Principal component analysis: the eigendecomposition of the covariance, its SVD and EM
routes, and a Pyro model whose maximum likelihood is the principal subspace.

The mathematics
---------------
Given data :math:`x_1, \dots, x_N \in \mathbb{R}^D` with mean :math:`\bar x` and
(maximum-likelihood, divisor :math:`N`) covariance

.. math::

    S = \frac1N \sum_{n=1}^N (x_n - \bar x)(x_n - \bar x)^\top
      = \frac1N X^\top X - \bar x \bar x^\top,

the :math:`M`-dimensional principal subspace is spanned by the eigenvectors
:math:`u_1, \dots, u_M` of :math:`S` with the :math:`M` largest eigenvalues
:math:`\lambda_1 \ge \dots \ge \lambda_M` (PRML 12.1). Two views give it:

* maximum variance: :math:`u_1` maximises :math:`u^\top S u` subject to :math:`\|u\| = 1`,
  and each further :math:`u_i` does so orthogonally to the earlier ones;
* minimum error: with :math:`U_M = (u_1, \dots, u_M)` the reconstruction
  :math:`\tilde x_n = \bar x + U_M U_M^\top (x_n - \bar x)` minimises

  .. math::

      J = \frac1N \sum_{n=1}^N \|x_n - \tilde x_n\|^2 = \sum_{i=M+1}^D \lambda_i
      \qquad\text{(PRML 12.18)}

  over all rank-:math:`M` affine projections.

The Pyro model reads the second view as a likelihood,

.. math::

    x_n \sim \mathcal{N}\big(\mu + W W^\top (x_n - \mu),\ \sigma^2 I_D\big),
    \qquad W^\top W = I_M,

whose log-likelihood is :math:`-\frac{ND}{2}\ln(2\pi\sigma^2) - \frac{N J}{2\sigma^2}`
with :math:`J` the mean squared reconstruction error of :math:`(\mu, W)`: maximum
likelihood is minimum :math:`J`, so it finds :math:`\operatorname{span}(W) =
\operatorname{span}(U_M)`, and with :math:`\sigma` learned, :math:`\sigma^2_{ML} = J / D`.
It is not a generative model (the mean of :math:`x_n` depends on :math:`x_n`); probabilistic
PCA (:mod:`ppl_models.ppca`) is.

============================  ===========================  =====================
symbol                        argument / field             shape
============================  ===========================  =====================
:math:`x_n`                   ``x``                        ``(N, D)``
:math:`\bar x`, :math:`\mu`   ``mean``, site param ``mu``  ``(D,)``
:math:`U_M`                   ``components``               ``(D, M)``
:math:`\lambda_1..\lambda_M`  ``explained_variance``       ``(M,)``
:math:`U_M^\top(x - \bar x)`  :func:`transform`            ``(N, M)``
:math:`W`                     ``PCA.W``                    ``(D, M)``
:math:`\sigma`                ``PCA.sigma``                ``()``
============================  ===========================  =====================

Signs. An eigenvector is defined up to its sign; every result of this module has the entry
of largest absolute value of each column of ``components`` positive (the first such entry
on ties). scikit-learn (>= 1.5) follows the same rule for its ``components_``.

Data and dtypes follow the library's conventions: data enter once, through
:func:`ppl_models._checks.as_data`, and the Pyro model computes in torch's promotion of
the module's and the data's dtypes (:func:`ppl_models._checks.promoted_like`), on the
data's device.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (PRML), section 12.1.
S. Roweis, *EM algorithms for PCA and SPCA*, NIPS 10 (1998).
A. Edelman, T. Arias, S. Smith, *The geometry of algorithms with orthogonality
constraints*, SIAM J. Matrix Anal. Appl. 20 (1998) (the exponential chart of the
Grassmann manifold used by :class:`PCA`).
"""

from __future__ import annotations

from .._numerics import Moments, is_stream, moments
from ._base import EMResult, PCAParams
from .closed_forms import (
    centred_matmul,
    centred_rmatmul,
    explained_variance_ratio,
    fit,
    projector_distance,
    reconstruct,
    reconstruction_error,
    transform,
)
from .em_algorithm import em
from .model import PCA

__all__ = [
    "PCA",
    "EMResult",
    "Moments",
    "PCAParams",
    "centred_matmul",
    "centred_rmatmul",
    "em",
    "explained_variance_ratio",
    "fit",
    "is_stream",
    "moments",
    "projector_distance",
    "reconstruct",
    "reconstruction_error",
    "transform",
]
