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
# Each agreement between inference and the closed form is recorded as (what, error,
# tolerance) and checked at the end, in the quick smoke run too (the tests run it).
agreement = []

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
# Monte-Carlo error: the mean within 4 of its standard errors (ArviZ's mcse_mean).
agreement.append(("NUTS E[mu] - exact, in Monte-Carlo standard errors", abs(err_mu), 4.0))
# E[lambda] from 2 x 30 draws (smoke): measured 2.5% off; 10% is ~4 Monte-Carlo
# standard errors there (sd/mean of lambda ~0.25, ESS ~40); 2 x 1000 draws: 3%.
agreement.append(
    (
        "NUTS E[lambda] / exact - 1",
        abs(table.loc["lambda", "mean"] / mean_lambda - 1),
        0.1 if SMOKE else 0.03,
    )
)

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
# PSIS-LOO from 60 draws (smoke) is within 0.64 nats of the exact value (measured):
# bound 2; from 2000 draws, 0.5.
agreement.append(
    ("PSIS-LOO (NUTS) - exact LOO, nats", abs(nuts_loo.elpd - exact_i.sum()), 2.0 if SMOKE else 0.5)
)

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
if not SMOKE:
    # The smoke run's 50 steps leave the guide far from the posterior (kappa 1.9 of 30;
    # PSIS-LOO 44 nats off, measured): this one is checked in the full run only, where
    # the guide holds the posterior and PSIS-LOO is as close as NUTS's.
    agreement.append(
        ("PSIS-LOO (SVI guide) - exact LOO, nats", abs(svi_loo.elpd - exact_i.sum()), 0.5)
    )

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

# %% [markdown]
# ## The diagnostics as figures
#
# Trace and rank plots of the NUTS draws (flat, overlapping rank histograms: the chains
# sample the same distribution), a forest plot of NUTS against the SVI guide, and the
# LOO-PIT calibration plot: for a calibrated model the leave-one-out probability integral
# transforms $u_n = P(\tilde x_n \le x_n \mid x_{-n})$ are uniform, so their ECDF stays
# inside the band.

# %%
plots.finish(plots.plot_trace_rank(nuts_data), "workflow_trace_rank")
plots.finish(plots.plot_forest({"NUTS": nuts_data, "SVI guide": svi_data}), "workflow_forest")
plots.finish(plots.plot_loo_pit(nuts_data), "workflow_loo_pit")

# %% [markdown]
# ## The whole loop on a model choice: the degree of a polynomial
#
# The curve-fitting data of PRML 1.1, $t_n = \sin(2\pi x_n) + \epsilon_n$,
# $\epsilon_n \sim \mathcal N(0, 0.3^2)$, fitted by polynomials of degree $M = 0 \dots 9$
# with the prior $w \sim \mathcal N(0, \alpha^{-1} I)$ and Bishop's $\alpha = 5 \cdot
# 10^{-3}$, $\beta = 11.1$ (PRML Fig. 3.14). Two criteria pick the degree:
#
# * the **evidence** $\ln p(t \mid M) = \ln \mathcal N(t \mid 0, \beta^{-1} I +
#   \alpha^{-1}\Phi\Phi^\top)$ (PRML 3.86, `regression.log_evidence`);
# * **leave-one-out**, $\mathrm{elpd}_{\mathrm{loo}} = \sum_n \log p(t_n \mid t_{-n})$:
#   exact here (`regression.linear_gaussian_loo`, the Gaussian conditional of $t_n$ given
#   the rest), and estimated by PSIS-LOO from posterior draws as for any model.
#
# The evidence scores how well the prior predicted the whole data set, point after point
# ($\ln p(t) = \sum_n \ln p(t_n \mid t_{<n})$); LOO how well the posterior from $N-1$
# points predicts the last one. The loop per degree is the workflow: prior predictive,
# fit (SVI: a MAP fit by L-BFGS and the Laplace approximation around it, which is the
# exact posterior for this linear-Gaussian model), check the guide ($\hat k$), posterior
# predictive and log-likelihood, then `compare`.

# %%
from pyro.infer.autoguide import AutoLaplaceApproximation

from ppl_models.datasets import make_sin_data
from ppl_models.regression import (
    LinearRegression,
    linear_gaussian_loo,
    log_evidence,
    polynomial_features,
)
from ppl_models.workflow import check_guide, compare, posterior_predictive, prior_predictive

ALPHA, BETA = 5e-3, 11.1
# Smoke mode (the test suite): three degrees, few draws.
DEGREES = [1, 3, 9] if SMOKE else list(range(10))
DRAWS = 100 if SMOKE else 1000


def degree_loop(x, t, degree):
    """Prior predictive, Laplace fit, guide check and posterior predictive of one degree."""
    phi = polynomial_features(x, degree)
    reg = LinearRegression(degree + 1, alpha=ALPHA, beta=BETA)
    prior = prior_predictive(reg, phi, t, num_samples=DRAWS // 4, seed=0)
    guide = AutoLaplaceApproximation(reg.model)
    fit_svi(reg, phi, t, guide=guide, optimizer="lbfgs", num_steps=100, progress=False)
    laplace = guide.laplace_approximation(phi, t)
    k_hat = check_guide(reg, phi, t, guide=laplace, num_particles=200 if SMOKE else 2000)
    data = posterior_predictive(reg, phi, t, guide=laplace, prior=prior, num_chains=4,
                                num_samples=DRAWS // 4, seed=0)  # fmt: skip
    return {
        "data": data,
        "evidence": float(log_evidence(phi, t, ALPHA, BETA)),
        "exact_loo": float(linear_gaussian_loo(phi, t, ALPHA, BETA).sum()),
        "psis_loo": loo(data, quiet=True),
        "guide_k": float(k_hat["k_hat"].iloc[0]),
    }


def report(x, t, label):
    runs = {m: degree_loop(x, t, m) for m in DEGREES}
    print(f"{label}: degree, ln evidence, exact LOO, PSIS-LOO, max Pareto k, guide k-hat")
    for m, r in runs.items():
        print(
            f"  M={m}  {r['evidence']:9.2f}  {r['exact_loo']:9.2f}  {r['psis_loo'].elpd:9.2f}"
            f"  {r['psis_loo'].pareto_k.max():5.2f}  {r['guide_k']:5.2f}"
        )
    picks = {
        "evidence": DEGREES[int(np.argmax([r["evidence"] for r in runs.values()]))],
        "exact LOO": DEGREES[int(np.argmax([r["exact_loo"] for r in runs.values()]))],
        "PSIS-LOO": DEGREES[int(np.argmax([r["psis_loo"].elpd for r in runs.values()]))],
    }
    print(f"{label}: degree chosen by {picks}")
    if label == "N = 100":  # at N = 10 PSIS-LOO is unreliable (Pareto k > 0.7): see below
        for m, r in runs.items():
            # 100 draws (smoke): within 0.42 nats (measured), bound 1; 1000 draws: 0.5.
            agreement.append(
                (
                    f"{label}, M={m}: PSIS-LOO (Laplace guide) - exact LOO, nats",
                    abs(r["psis_loo"].elpd - r["exact_loo"]),
                    1.0 if SMOKE else 0.5,
                )
            )
    return runs, picks


x100, t100 = make_sin_data(100, noise_std=0.3, seed=0)
runs100, picks100 = report(x100, t100, "N = 100")

# %% [markdown]
# On $N = 100$ points the evidence and LOO (exact and PSIS) choose the same degree. The
# top degrees differ by less than a nat: `compare` shows the differences with their
# standard errors (`dse`), and the ones within two standard errors do not separate the
# models. (Over seeds 0-9 of this design, the exact LOO and the evidence chose the same
# degree 8 times out of 10; where they differed, it was between neighbours within a nat.)

# %%
table = compare({f"M={m}": r["data"] for m, r in runs100.items()})
print(table[["elpd", "se", "elpd_diff", "dse", "weight", "max_pareto_k"]].round(2))
fig = plots.plot_model_choice(
    DEGREES,
    {
        "ln evidence": [r["evidence"] for r in runs100.values()],
        "exact LOO": [r["exact_loo"] for r in runs100.values()],
        "PSIS-LOO": [r["psis_loo"].elpd for r in runs100.values()],
    },
    title="N = 100: degree of the polynomial",
)
plots.finish(fig, "workflow_degree_n100")
best = runs100[picks100["PSIS-LOO"]]["data"]
plots.finish(plots.plot_predictive_overlay(best, num_samples=30), "workflow_degree_predictive")
plots.finish(plots.plot_loo_pit(best), "workflow_degree_loo_pit")

# %% [markdown]
# ## The standard N = 10 data
#
# On Bishop's ten points both criteria are reported. With $M + 1$ weights close to $N$,
# leaving one point out changes the posterior a lot: the importance ratios
# $1/p(t_n \mid w_s)$ get heavy tails, Pareto $k$ rises above 0.7 for the high degrees, and
# PSIS-LOO drifts from the exact LOO there; the exact LOO (available for this model) is the
# one to trust, and where PSIS is flagged a user would refit without the point (K-fold).

# %%
x10, t10 = make_sin_data(10, noise_std=0.3, seed=0)
runs10, picks10 = report(x10, t10, "N = 10")
fig = plots.plot_model_choice(
    DEGREES,
    {
        "ln evidence": [r["evidence"] for r in runs10.values()],
        "exact LOO": [r["exact_loo"] for r in runs10.values()],
        "PSIS-LOO": [r["psis_loo"].elpd for r in runs10.values()],
    },
    title="N = 10 (PRML Fig. 3.14): degree of the polynomial",
)
plots.finish(fig, "workflow_degree_n10")

# %% [markdown]
# ## The latent dimension of PPCA: LOO, held-out likelihood, Minka, ARD
#
# The same question for probabilistic PCA: how many latent dimensions $M$ do the digits
# need? Four answers: PSIS-LOO of the marginal model
# $x_n \sim \mathcal N(\mu, WW^\top + \sigma^2 I)$ with priors, the 5-fold held-out
# log-likelihood of the maximum-likelihood fit (`select_latent_dim(x, "heldout")`),
# Minka's Laplace approximation of the evidence (`"minka"`), and the number of columns ARD
# keeps (`bayesian_pca.ard_em`).
#
# **Which data.** On the raw 8 x 8 digits the question has no interior answer: the held-out
# log-likelihood rises with $M$ almost up to $D = 64$, because near-constant border pixels
# drive $\sigma^2$ down as $M$ grows; on dequantised digits the optimum sits near $M = 57$,
# where one posterior per $M$ would cost minutes. So we take 300 random digits,
# average-pool them to 4 x 4 ($D = 16$), and add Gaussian noise of sd 3 (pixel scale
# 0..16), a noisy sensor: the noise puts a floor under the spectrum, the pooled spectrum
# has a gap after its 7th eigenvalue, and the criteria have an interior optimum.
#
# **The model.** `MarginalPPCA` with priors by the PyroSample pattern,
# $W_{ij} \sim \mathcal N(0, s^2)$, $\mu \sim \mathcal N(\bar x, s^2 I)$,
# $\sigma \sim \mathrm{HalfNormal}(s)$, $s^2$ the mean eigenvalue of the sample covariance,
# fitted by SVI with a low-rank Gaussian guide started at the closed-form maximum
# likelihood; 1000 guide draws give the pointwise log-likelihoods for PSIS-LOO.

# %%
import pyro

from ppl_models.bayesian_pca import ard_em, bayesian_marginal_ppca, ppca_loo_sweep
from ppl_models.datasets import noisy_pooled_digits
from ppl_models.ppca import select_latent_dim

xd = noisy_pooled_digits()  # 300 x 16, seed 0
N_D = xd.shape[0]

# The model with its priors, for M = 2: every parameter is now a sample site.
demo, demo_guide = bayesian_marginal_ppca(xd, 2)
demo_trace = pyro.poutine.trace(demo.model).get_trace(xd)
for name in ("W", "mu", "sigma"):
    print(name, demo_trace.nodes[name]["fn"], tuple(demo_trace.nodes[name]["value"].shape))
heldout = select_latent_dim(xd, "heldout", max_dim=10)
minka = select_latent_dim(xd, "minka", max_dim=10)
ard_dim = ard_em(xd, 15).effective_dim
# Smoke mode: only the dimensions around Minka's choice, short fits, few draws.
PPCA_DIMS = (
    [minka.latent_dim - 1, minka.latent_dim, minka.latent_dim + 1] if SMOKE else list(range(1, 11))
)
sweep = ppca_loo_sweep(
    xd, PPCA_DIMS, num_steps=100 if SMOKE else 400, num_samples=200 if SMOKE else 1000
)
print(" M  held-out(sum)  Minka ln ev  PSIS-LOO (se)      p_loo  max k")
for i, m in enumerate(PPCA_DIMS):
    print(
        f"{m:2d}  {float(heldout.scores[m - 1]) * N_D:12.1f}  {float(minka.scores[m - 1]):11.1f}"
        f"  {sweep['elpd'][i]:9.1f} ({sweep['se'][i]:4.1f})  {sweep['p'][i]:6.1f}"
        f"  {sweep['max_k'][i]:5.2f}"
    )
loo_pick = PPCA_DIMS[int(np.argmax(sweep["elpd"]))]
print(
    f"chosen M: PSIS-LOO {loo_pick}, held-out {heldout.latent_dim}, Minka "
    f"{minka.latent_dim}, ARD {ard_dim}"
)

# %% [markdown]
# LOO and the held-out likelihood agree within one dimension (the criterion), and
# Minka and ARD land on the same place. Two things to read in the table. First, $p_{loo}$
# exceeds the number of free parameters ($DM - M(M-1)/2 + D + 1$): the digits are not
# Gaussian, and under a misspecified model the effective number of parameters is
# $\mathrm{tr}(J^{-1}K)$, not the count. Second, a few Pareto $k$ near or above 0.7: some
# single digits move the posterior a lot; their LOO terms are the least reliable, and the
# curves are flat near the top (differences of a few nats over 300 points), so a choice
# within one dimension is what the data support.
#
# **Checking the guide.** The guide's own $\hat k$ (`workflow.check_guide`, importance
# ratios $p(x, \theta_s)/q(\theta_s)$ over the parameters) comes out "very bad" (above 1;
# measured 1.06 at $M = 2$ and 2.5 at $M = 7$ with 2000 particles). Part of that is by
# construction: the prior and the likelihood are invariant under rotations $W \to WR$,
# so the posterior spreads along the whole orbit of rotations and a Gaussian guide covers
# one patch of it, too narrow along the orbit. The log-likelihoods that LOO uses depend on
# $WW^\top$ only, which the orbit does not change; but $\hat k$ in parameter space cannot
# tell that apart from other guide error, so the guide-based LOO is corroborated here by
# the guide-free criteria beside it (held-out, Minka, ARD), not by $\hat k$.

# %%
ppca_m, ppca_guide = bayesian_marginal_ppca(xd, loo_pick)
fit_svi(ppca_m, xd, guide=ppca_guide, num_steps=100 if SMOKE else 400, lr=0.03, seed=0,
        tol=0, progress=False)  # fmt: skip
print(check_guide(ppca_m, xd, guide=ppca_guide, num_particles=200 if SMOKE else 2000))

# %%
loo_curve = np.full(10, np.nan)
loo_curve[[m - 1 for m in PPCA_DIMS]] = sweep["elpd"] / N_D
fig = plots.plot_model_choice(
    heldout.dims.numpy(),
    {
        "PSIS-LOO / N": loo_curve,
        "5-fold held-out / N": heldout.scores.numpy(),
        "Minka ln evidence / N": minka.scores.numpy() / N_D,
    },
    title="PPCA on 300 noisy 4x4 digits: latent dimension",
)
fig.axes[0].axvline(ard_dim, color="gray", ls="--", label=f"ARD keeps {ard_dim}")
fig.axes[0].set_xlabel("latent dimension M")
fig.axes[0].set_ylabel("criterion - its maximum (nats per point)")
fig.axes[0].legend(fontsize=8)
plots.finish(fig, "workflow_ppca_dim")

# %% [markdown]
# ## Agreement
#
# Every comparison above, with its bound (the reason is beside each where it is set).

# %%
for what, error, tolerance in agreement:
    print(f"{what:52s} {error:9.2e}  (bound {tolerance:g})")
    assert error <= tolerance, f"{what}: {error:.3g} > {tolerance:g}"
