# %% [markdown]
# # The Bayesian workflow with ArviZ: diagnostics, predictive checks, leave-one-out
#
# A fitted posterior is only useful once it is checked: did the sampler converge, does the
# model reproduce the data, how well does it predict a point it has not seen? ArviZ answers
# these from four groups of arrays:
#
# * **posterior**: draws $\theta_s$, $s = 1 \dots S$, arranged as (chain, draw), from
#   which R-hat and the effective sample size follow;
# * **posterior_predictive**: replicated data $\tilde x^{(s)} \sim p(x \mid \theta_s)$;
# * **log_likelihood**: $\ell_{sn} = \log p(x_n \mid \theta_s)$ for every observation;
# * **observed_data**: $x$.
#
# `ppl_models.workflow.to_inference_data` builds them from a NUTS run or a fitted guide,
# for ArviZ 0.x and 1.x alike. From $\ell_{sn}$, PSIS-LOO (Vehtari, Gelman & Gabry 2017)
# estimates the expected log pointwise predictive density
#
# $$\mathrm{elpd}_{\mathrm{loo}} = \sum_n \log p(x_n \mid x_{-n}), \qquad
#   p(x_n \mid x_{-n}) \approx
#   \frac{\sum_s w_{sn}\, p(x_n \mid \theta_s)}{\sum_s w_{sn}},\quad
#   w_{sn} \propto \frac{1}{p(x_n \mid \theta_s)} \text{ (Pareto-smoothed)}.$$
#
# The model here has all of these in closed form: the Gaussian with a Normal-Gamma prior
# (PRML 2.3.6),
#
# $$\lambda \sim \mathrm{Gam}(a_0, b_0),\quad
#   \mu \mid \lambda \sim \mathcal{N}(\mu_0, (\kappa_0 \lambda)^{-1}),\quad
#   x_n \sim \mathcal{N}(\mu, \lambda^{-1}),$$
#
# whose posterior is Normal-Gamma again and whose predictive density is a Student-t. So
# the exact leave-one-out density of $x_n$ is the Student-t predictive of the posterior
# given the other $N - 1$ points, and every number below has a reference.

# %%
import os

import numpy as np
import torch

from ppl_models import plots
from ppl_models.gaussian import (
    BayesianGaussian,
    NormalGammaParams,
    normal_gamma_posterior,
    posterior_predictive,
)
from ppl_models.inference import fit_svi, run_nuts
from ppl_models.workflow import get_group, loo, summary, to_inference_data

SMOKE = os.environ.get("PPL_MODELS_SMOKE") == "1"

x = torch.randn(30, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 + 1
prior = NormalGammaParams(mu=0.0, kappa=0.1, a=2.0, b=2.0)

# %% [markdown]
# ## The Pyro model
#
# `BayesianGaussian` samples `"lambda"` and `"mu"` (PyroSample attributes), then observes
# `x` at `"obs"` in the plate `"data"`. NUTS samples the two latent sites; the module's own
# guide is a Normal-Gamma $q(\mu, \lambda)$, a family that holds the exact posterior.

# %%
model = BayesianGaussian(prior)
print(model.model.__doc__.strip().splitlines()[0])

# %% [markdown]
# ## The closed form
#
# The posterior $(\mu_N, \kappa_N, a_N, b_N)$ and, for each $n$, the Student-t predictive
# of the posterior without $x_n$, evaluated at $x_n$.

# %%
post = normal_gamma_posterior(x, prior)
exact_i = np.array(
    [
        float(
            posterior_predictive(
                normal_gamma_posterior(torch.cat([x[:n], x[n + 1 :]]), prior)
            ).log_prob(x[n])
        )
        for n in range(len(x))
    ]
)
mean_mu = float(post.mu)
sd_mu = float(torch.sqrt(post.b / ((post.a - 1) * post.kappa)))  # Student-t marginal of mu
mean_lambda = float(post.a / post.b)
print(f"posterior: E[mu] = {mean_mu:.4f}, sd[mu] = {sd_mu:.4f}, E[lambda] = {mean_lambda:.4f}")
print(f"exact elpd_loo = {exact_i.sum():.4f}")

# %% [markdown]
# ## Inference: NUTS, then ArviZ
#
# `run_nuts` keeps the module and the data on the run, so `to_inference_data(mcmc)` needs
# nothing else. It runs the model once per draw (all draws at once under an outer plate
# where the model broadcasts) with the latent sites fixed and the observed site free.

# %%
mcmc = run_nuts(
    model,
    x,
    num_samples=30 if SMOKE else 1000,
    warmup_steps=30 if SMOKE else 300,
    num_chains=2,
    seed=0,
    progress=False,
)
nuts_data = to_inference_data(mcmc)
print(nuts_data)
table = summary(nuts_data)
print(table)

# %% [markdown]
# R-hat near 1 (below 1.01) and effective sample sizes in the hundreds say the chains mix.
# The posterior mean of $\mu$ agrees with the closed form within a few Monte-Carlo
# standard errors (`mcse_mean`).

# %%
err_mu = (table.loc["mu", "mean"] - mean_mu) / table.loc["mu", "mcse_mean"]
print(f"NUTS E[mu] - exact = {err_mu:+.2f} Monte-Carlo standard errors")
print(f"NUTS sd[mu] / exact = {table.loc['mu', 'sd'] / sd_mu:.3f}")
print(f"NUTS E[lambda] / exact = {table.loc['lambda', 'mean'] / mean_lambda:.3f}")

# %% [markdown]
# ## Posterior predictive check
#
# Replicated data sets should look like the observed one; test statistics $T$ (mean, sd)
# of the observed data should sit inside their predictive distributions (p-values away
# from 0 and 1).

# %%
plots.finish(plots.plot_ppc(nuts_data), "workflow_ppc")

# %% [markdown]
# ## Leave-one-out, estimated and exact
#
# PSIS-LOO from the log-likelihood group, against the exact Student-t leave-one-out
# densities. Pareto $k$ below 0.7 says the importance sampling is reliable.

# %%
nuts_loo = loo(nuts_data, quiet=True)
print(f"PSIS-LOO (NUTS): {nuts_loo.elpd:.4f} ± {nuts_loo.se:.2f} (se over observations)")
print(f"exact LOO:       {exact_i.sum():.4f}")
print(f"max Pareto k: {nuts_loo.pareto_k.max():.2f}; p_loo = {nuts_loo.p:.2f} (2 parameters)")

# %% [markdown]
# ## The same from a fitted guide
#
# After `fit_svi` with the Normal-Gamma guide, `to_inference_data(model, x)` draws
# `num_chains x num_samples` independent posterior draws from the guide; arranged as
# chains, their R-hat is about 1 by construction, and the same LOO machinery applies.

# %%
svi_model = BayesianGaussian(prior)
result = fit_svi(
    svi_model,
    x,
    num_steps=50 if SMOKE else 1500,
    lr=0.1,
    num_particles=16,
    seed=0,
    tol=0,
    progress=False,
)
print("guide:", svi_model.params())
print("exact:", post)
svi_data = to_inference_data(svi_model, x, num_chains=4, num_samples=100 if SMOKE else 1000)
svi_loo = loo(svi_data, quiet=True)
print(summary(svi_data))
print(f"PSIS-LOO (SVI): {svi_loo.elpd:.4f}   exact: {exact_i.sum():.4f}")

# %%
fig = plots.plot_loo_pointwise(
    exact_i, {"NUTS": nuts_loo.elpd_i, "SVI guide": svi_loo.elpd_i}, nuts_loo.pareto_k
)
plots.finish(fig, "workflow_loo")

# %% [markdown]
# ## Reading the groups
#
# With ArviZ 0.x the result is an `InferenceData`, with 1.x an `xarray.DataTree`;
# `get_group` returns an `xarray.Dataset` from either. Dimensions inside the plate are
# named after it (`"data"`).

# %%
ll = get_group(nuts_data, "log_likelihood")["obs"]
print(ll.dims, ll.shape)
