r"""The variational autoencoder: a decoder network as likelihood, an amortized Gaussian guide.

The mathematics
---------------
A latent code :math:`z_n \in \mathbb{R}^M` with a standard normal prior generates
:math:`x_n \in \mathbb{R}^D` through a decoder network :math:`g_\theta` (Kingma & Welling
2014):

.. math::

    z_n \sim \mathcal{N}(0, I_M), \qquad
    x_n \mid z_n \sim \mathcal{N}\big(g_\theta(z_n), \operatorname{diag}(\sigma^2)\big)
    \ \text{(normal)}
    \quad\text{or}\quad
    x_{nd} \mid z_n \sim \operatorname{Bernoulli}\big(\operatorname{sigmoid}(g_\theta(z_n)_d)\big)
    \ \text{(bernoulli)}.

The posterior :math:`p(z \mid x)` is intractable. An encoder network :math:`f_\phi`
outputs, for every data point, the mean and log-variance of a diagonal Gaussian
:math:`q_\phi(z \mid x) = \mathcal{N}(\mu_\phi(x), \operatorname{diag}\sigma_\phi^2(x))`
(the *amortized* guide: one network, not one set of parameters per point), and the
evidence lower bound

.. math::

    \mathcal{L}(x) = \mathbb{E}_{q_\phi(z \mid x)}\big[\ln p_\theta(x \mid z)\big]
        - \operatorname{KL}\big(q_\phi(z \mid x) \,\|\, p(z)\big) \le \ln p_\theta(x)

is maximised over :math:`\theta, \phi` instead of :math:`\ln p_\theta(x)`. The KL between
the Gaussians has the closed form (:func:`gaussian_kl`)

.. math::

    -\operatorname{KL} = \frac12 \sum_{j=1}^M
        \big(1 + \ln\sigma_j^2 - \mu_j^2 - \sigma_j^2\big),

which ``TraceMeanField_ELBO`` uses ("analytic KL"); ``Trace_ELBO`` estimates it by Monte
Carlo, :math:`\ln p(z) - \ln q(z \mid x)` at the sampled :math:`z`. Both average
``num_particles`` (:math:`L`) reparametrised draws :math:`z = \mu + \sigma \odot
\epsilon`. The reconstruction term is the (negative, scaled) squared error for the normal
likelihood and the negative binary cross-entropy for the bernoulli one.

**beta-VAE** (Higgins et al. 2017): ``beta`` multiplies the KL term,
:math:`\mathbb{E}_q[\ln p(x \mid z)] - \beta\,\operatorname{KL}`, which favours codes that
stay close to the factorised prior (disentangling); it is implemented by
``poutine.scale(beta)`` on the site ``"z"`` in both model and guide, so both estimators see
it. :func:`elbo` and :func:`log_likelihood` always evaluate the generative model itself
(:math:`\beta = 1`).

**Log-likelihood by importance sampling** (Burda et al. 2016). With :math:`K` draws
:math:`z_k \sim q(z \mid x)`,

.. math::

    \ln p(x) \approx \hat{\mathcal{L}}_K = \ln \frac1K \sum_{k=1}^K
        \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)},
    \qquad
    \mathbb{E}\hat{\mathcal{L}}_1 = \mathcal{L} \le \mathbb{E}\hat{\mathcal{L}}_K
        \le \mathbb{E}\hat{\mathcal{L}}_{K+1} \le \ln p(x),

and :math:`\hat{\mathcal{L}}_K \to \ln p(x)` as :math:`K \to \infty`
(:func:`log_likelihood`).

**Linear VAE and PPCA.** With affine encoder and decoder, :math:`p(x \mid z) =
\mathcal{N}(W z + b, \sigma^2 I)` is probabilistic PCA, whose exact posterior is Gaussian
with covariance :math:`\sigma^2 (W^\top W + \sigma^2 I)^{-1}` for every point. A diagonal
guide matches it when :math:`W^\top W` is diagonal, which the ELBO's optimum selects among
the rotations :math:`W R`; there the ELBO equals the PPCA maximum log-likelihood and
:math:`W W^\top + \sigma^2 I` its covariance. :func:`linear_elbo` gives the ELBO of a
linear VAE in closed form.

==================================  ==================================  =====================
symbol                              argument / attribute                shape
==================================  ==================================  =====================
:math:`x_n`                         ``x``                               ``(N, D)``
:math:`z_n`                         site ``"z"``                        ``(N, M)``
:math:`D`, :math:`M`                ``data_dim``, ``latent_dim``
:math:`f_\phi`                      ``VAE.encoder``                     ``(N, D) -> (N, 2M)``
:math:`\mu_\phi, \ln\sigma_\phi^2`  the encoder's two heads             ``(N, M)`` each
:math:`g_\theta`                    ``VAE.decoder``                     ``(N, M) -> (N, D)``
:math:`\sigma`                      ``VAE.sigma``                       ``()`` or ``(D,)``
:math:`\beta`                       ``beta``                            scalar
:math:`L`, :math:`K`                ``num_particles``, ``num_samples``
==================================  ==================================  =====================

Data and dtypes follow the library's conventions: data enter once, through
:func:`ppl_models._checks.as_data`, and the Pyro model computes in torch's promotion of
the module's and the data's dtypes (:func:`ppl_models._checks.promoted_like`), on the
data's device. The prior of ``z`` follows them too; the networks run in their own (the
module's) dtype, their input cast to it and their output to the computation dtype.

References
----------
D. P. Kingma, M. Welling, *Auto-encoding variational Bayes*, ICLR 2014.
Y. Burda, R. Grosse, R. Salakhutdinov, *Importance weighted autoencoders*, ICLR 2016.
I. Higgins et al., *beta-VAE: learning basic visual concepts with a constrained
variational framework*, ICLR 2017.
I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning* (2016), sections 19.4 and 20.10.3.
M. E. Tipping, C. M. Bishop, *Probabilistic principal component analysis*, JRSS B 61 (1999).
"""

from __future__ import annotations

from .closed_forms import VAEParams, gaussian_kl, linear_elbo
from .evaluation import elbo, interpolate, latent_traversal, log_likelihood
from .model import VAE

__all__ = [
    "VAE",
    "VAEParams",
    "elbo",
    "gaussian_kl",
    "interpolate",
    "latent_traversal",
    "linear_elbo",
    "log_likelihood",
]
