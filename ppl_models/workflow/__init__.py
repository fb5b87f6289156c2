r"""The ArviZ bridge: MCMC runs and SVI guides as ArviZ data, for either ArviZ generation.

Given posterior draws :math:`\theta_s` (from NUTS, or from a fitted guide
:math:`q_\phi(\theta)`), :func:`to_inference_data` runs the model once per draw with the
latent sites fixed to :math:`\theta_s` and the observed sites left free, and records

.. math::

    \tilde x^{(s)} \sim p(x \mid \theta_s) \quad \text{(posterior predictive)}, \qquad
    \ell_{sn} = \log p(x_n \mid \theta_s) \quad \text{(pointwise log-likelihood)},

for every observed site and every observation :math:`n` (a row of the site's batch shape:
event dimensions are summed, as in the distribution's ``log_prob``). ArviZ computes R-hat
and effective sample sizes from the posterior group, posterior predictive checks from the
predictive and observed groups, and PSIS-LOO / WAIC (Vehtari et al. 2017) from
:math:`\ell_{sn}`.

==========================  ======================  ========================================
group                       variables               shape
==========================  ======================  ========================================
``posterior``               latent sample sites     ``(chain, draw, *site_shape)``
                            (and deterministic
                            sites)
``posterior_predictive``    observed sites          ``(chain, draw, *obs_shape)``
``log_likelihood``          observed sites          ``(chain, draw, *obs_batch_shape)``
``observed_data``           observed sites          ``obs_shape``
``sample_stats`` (MCMC)     ``diverging``           ``(chain, draw)``
==========================  ======================  ========================================

Dimensions inside a plate are named after the plate (``"data"`` for the library's
observations); the others ``<site>_dim_<i>``. The dictionary is built here and handed to
:func:`ppl_models._arviz.from_arrays`, so ArviZ 0.x (``InferenceData``) and 1.x
(``xarray.DataTree``, no Pyro converter) take the same path.

References
----------
A. Gelman, A. Vehtari, D. Simpson, C. C. Margossian, B. Carpenter, Y. Yao, L. Kennedy,
J. Gabry, P.-C. Bürkner, M. Modrák, *Bayesian Workflow*, arXiv:2011.01808 (2020).

A. Vehtari, A. Gelman, J. Gabry, "Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC", *Statistics and Computing* 27, 1413-1432 (2017),
doi:10.1007/s11222-016-9696-4.
"""

from __future__ import annotations

from .._arviz import LooResult, get_group, loo, loo_pit, rhat, summary
from .._deprecation import moved
from .diagnostics import check_guide, compare
from .inference_data import posterior_predictive, prior_predictive, to_inference_data

__all__ = [
    "LooResult",
    "check_guide",
    "compare",
    "get_group",
    "loo",
    "loo_pit",
    "posterior_predictive",
    "prior_predictive",
    "rhat",
    "summary",
    "to_inference_data",
]

# linear_gaussian_loo, the exact LOO of Bayesian linear regression, is the regression
# topic's reference solution: it moved there (issue 18); the old path warns for a release.
__getattr__ = moved(
    __name__, {"linear_gaussian_loo": ("ppl_models.regression", "linear_gaussian_loo")}
)
