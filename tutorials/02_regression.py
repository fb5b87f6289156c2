# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 · Regression: curve fitting, Bayesian linear regression and the evidence
#
# Bishop's first example (PRML 1.1): ten points $t_n = \sin(2\pi x_n) + \epsilon_n$,
# $\epsilon_n \sim \mathcal N(0, 0.3^2)$, $x_n$ evenly spaced on $[0, 1]$, fitted by a
# polynomial of order $M$,
#
# $$ y(x, w) = \sum_{j=0}^{M} w_j x^j = w^\top \phi(x), \qquad
#    t_n \sim \mathcal N\big(w^\top\phi(x_n), \beta^{-1}\big). $$
#
# The model is linear in $w$, so everything has a closed form:
#
# * **maximum likelihood** (PRML 3.15, 3.21): $w_{ML} = \Phi^+ t$ (least squares, solved
#   with the SVD of the design matrix $\Phi$), $1/\beta_{ML}$ = the mean squared residual;
# * **the Bayesian posterior** under $w \sim \mathcal N(0, \alpha^{-1} I)$ (PRML 3.53-3.54):
#   $S_N^{-1} = \alpha I + \beta\Phi^\top\Phi$, $m_N = \beta S_N \Phi^\top t$, and the predictive
#   variance $1/\beta + \phi(x)^\top S_N \phi(x)$ (PRML 3.59);
# * **the evidence** $\ln p(t\mid\alpha,\beta)$ (PRML 3.86), maximised over $\alpha, \beta$
#   by re-estimation (PRML 3.92-3.95).
#
# Then the same model in Pyro reaches these numbers by SVI.

# %%
import os

import torch
from pyro.infer.autoguide import AutoMultivariateNormal

from ppl_models import plots
from ppl_models.datasets import make_sin_data
from ppl_models.inference import fit_svi
from ppl_models.regression import (
    IterateAveraging,
    LinearRegression,
    log_evidence,
    maximize_evidence,
    mle,
    polynomial_features,
    posterior,
    predictive,
    predictive_posterior,
)

SMOKE = os.environ.get("PPL_MODELS_SMOKE") == "1"
# Each agreement between inference and the closed form is recorded as (what, error,
# tolerance) and checked at the end, in the quick smoke run too (the tests run it).
agreement = []

x, t = make_sin_data(10, noise_std=0.3, seed=0)  # evenly spaced, as in PRML Fig. 1.2
x_test, t_test = make_sin_data(100, noise_std=0.3, seed=1, design="uniform")
x_grid = torch.linspace(0, 1, 200, dtype=torch.float64)
truth = torch.sin(2 * torch.pi * x_grid)

# %% [markdown]
# ## Maximum likelihood for M = 0, 1, 3, 9 (PRML Fig. 1.4)
#
# The band is the maximum-likelihood predictive distribution, mean $\pm$ one standard
# deviation $\beta_{ML}^{-1/2}$. With $M = 9$ the ten coefficients interpolate the ten
# points: the residual, hence $1/\beta_{ML}$, is zero and the band vanishes: the model is
# as confident as it is wrong.

# %%
fits = {}
for order in [0, 1, 3, 9]:
    p = mle(polynomial_features(x, order), t)
    phi_grid = polynomial_features(x_grid, order)
    if torch.isfinite(p.beta) and p.beta < 1e12:
        d = predictive(phi_grid, p)
        fits[order] = (d.mean, d.stddev)
    else:  # interpolation: no noise left to estimate
        fits[order] = (phi_grid @ p.w, torch.zeros_like(x_grid))
    print(f"M = {order}: 1/beta_ML = {float(1 / p.beta):.3g}")
plots.finish(plots.plot_curve_fits(x, t, x_grid, fits, truth=truth), "regression_ml_fits")

# %% [markdown]
# ## Training and test error against M (PRML Fig. 1.5)
#
# $E_{RMS} = \sqrt{2E(w)/N}$, the root of the mean squared error, on the ten training
# points and on 100 fresh points.

# %%
orders = list(range(10))
train_rms, test_rms = [], []
for order in orders:
    p = mle(polynomial_features(x, order), t)
    train_rms.append(float((polynomial_features(x, order) @ p.w - t).pow(2).mean().sqrt()))
    test_rms.append(float((polynomial_features(x_test, order) @ p.w - t_test).pow(2).mean().sqrt()))
print("M     train   test")
for order, a, b in zip(orders, train_rms, test_rms, strict=True):
    print(f"{order:<5} {a:.3f}   {b:.3f}")
plots.finish(plots.plot_rms_vs_order(orders, train_rms, test_rms), "regression_rms")

# %% [markdown]
# ## The Bayesian treatment (PRML 1.2.6, 3.3)
#
# With Bishop's $\alpha = 5\times10^{-3}$ and $\beta = 11.1$ the $M = 9$ polynomial no
# longer interpolates: the prior shrinks the coefficients (from $\sim10^5$ to $\sim10$),
# and the predictive band widens away from the data. The panels follow PRML Fig. 3.8:
# the posterior predictive after the first 2, 4, 6 and all 10 points.

# %%
ALPHA, BETA = 5e-3, 11.1
order = 9
phi = polynomial_features(x, order)
phi_grid = polynomial_features(x_grid, order)
bayes = {}
for n in [2, 4, 6, 10]:
    d = predictive_posterior(phi_grid, posterior(phi[:n], t[:n], ALPHA, BETA), BETA)
    bayes[n] = (d.mean, d.stddev, x[:n], t[:n])
plots.finish(
    plots.plot_curve_fits(x, t, x_grid, bayes, truth=truth, title="N = {}"),
    "regression_bayes_predictive",
)
w_ml = mle(phi, t).w
post = posterior(phi, t, ALPHA, BETA)
print(
    "largest |w_ML| =",
    f"{float(w_ml.abs().max()):.3g}",
    "  largest |m_N| =",
    f"{float(post.mean.abs().max()):.3g}",
)

# %% [markdown]
# ## The evidence against M (PRML Fig. 3.14)
#
# The evidence $p(t \mid \alpha, \beta)$ integrates $w$ out; it penalises both poor fits
# and needless flexibility. At Bishop's fixed $\alpha, \beta$, and at the $(\alpha, \beta)$
# that maximise it for each $M$ (type-II maximum likelihood):

# %%
ev_fixed, ev_max = [], []
for order in orders:
    phi_m = polynomial_features(x, order)
    ev_fixed.append(float(log_evidence(phi_m, t, ALPHA, BETA)))
    ev_max.append(float(maximize_evidence(phi_m, t).log_evidence))
print("M     fixed alpha,beta   maximised")
for order, a, b in zip(orders, ev_fixed, ev_max, strict=True):
    print(f"{order:<5} {a:10.3f}        {b:10.3f}")
fig = plots.plot_evidence(orders, ev_fixed, label="α = 5e-3, β = 11.1")
fig.axes[0].plot(orders, ev_max, "s--", color="tab:orange", mfc="none", label="max over α, β")
fig.axes[0].legend()
plots.finish(fig, "regression_evidence")

# %% [markdown]
# ## The Pyro model reaches the closed forms
#
# `LinearRegression` is one `PyroModule`:
#
# ```python
# def model(self, phi, t=None):
#     w, beta = self.w, self.beta          # PyroParam, or PyroSample with a prior
#     with data_plate(len(phi)):
#         return pyro.sample("obs", dist.Normal((w * phi).sum(-1), beta.rsqrt()), obs=t)
# ```
#
# Without priors, `w` and `beta` are parameters and SVI with the empty guide *is* maximum
# likelihood (L-BFGS on the exact log-likelihood). With `alpha` the weights get the prior
# $\mathcal N(0, \alpha^{-1} I)$, and a full-rank Gaussian guide can match the posterior
# exactly; Adam's jitter is removed by averaging its iterates.
#
# One practical point: Adam's per-coordinate steps are slow on a strongly correlated
# posterior, and the monomials $x^j$ on $[0, 1]$ are nearly collinear. At
# $\alpha = 0.1$ the posterior covariance of $w$ has condition number ~1500 and after
# 1300 steps the guide's mean was still 0.37 posterior sd off; in the centred input
# $u = 2x - 1$ (the same cubics, re-parametrised) it is ~50, and SVI agrees to below 1%.

# %%
order = 3
phi3 = polynomial_features(x, order)
reg = LinearRegression(order + 1)
fit_svi(reg, phi3, t, optimizer="lbfgs", num_steps=100, progress=False)
ref = mle(phi3, t)
err_w = float((reg.params().w - ref.w).abs().max() / ref.w.abs().max())
err_noise = abs(float(1 / reg.params().beta) / float(1 / ref.beta) - 1)
print(
    "ML:   max |w_SVI - w_ML| / max |w_ML| =",
    f"{err_w:.2e}",
    "  relative error of 1/beta =",
    f"{err_noise:.2e}",
)
# L-BFGS on the exact log-likelihood reaches the least-squares optimum; the cubic's
# design has condition number ~100, so w is accurate to ~1e-8 (measured below 1e-7).
agreement += [
    ("SVI (L-BFGS) w vs w_ML, relative", err_w, 1e-5),
    ("SVI (L-BFGS) 1/beta vs 1/beta_ML, relative", err_noise, 1e-5),
]

alpha3, beta3 = 0.1, 1 / 0.3**2
u, u_grid = 2 * x - 1, 2 * x_grid - 1
phi3 = polynomial_features(u, order)
breg = LinearRegression(order + 1, alpha=alpha3, beta=beta3)
guide = AutoMultivariateNormal(breg.model)
steps, particles = ((60, 120), 8) if SMOKE else ((300, 1000), 128)
fit_svi(
    breg,
    phi3,
    t,
    guide=guide,
    num_particles=particles,
    lr=0.05,
    num_steps=steps[0],
    tol=0,
    progress=False,
    seed=0,
)
avg = IterateAveraging(lr=0.01, start=steps[1] // 4)
fit_svi(
    breg,
    phi3,
    t,
    guide=guide,
    num_particles=particles,
    optimizer=avg,
    num_steps=steps[1],
    tol=0,
    progress=False,
    seed=1,
)
avg.apply()
post3 = posterior(phi3, t, alpha3, beta3)
with torch.no_grad():
    q = guide.get_posterior()
    sd = post3.covariance.diagonal().sqrt()
    err_mean = float(((q.mean - post3.mean) / sd).abs().max())
    err_cov = float(((q.covariance_matrix - post3.covariance) / torch.outer(sd, sd)).abs().max())
print(
    f"Bayes: guide mean within {err_mean:.3f} posterior sd of m_N; "
    f"covariance within {err_cov:.3f} of sd_i sd_j"
)
# The averaged Monte-Carlo fit: in the full run within ~1% of the posterior's sds (see
# the text above); the smoke run's 180 steps of 8 particles get within 0.42 sd (mean)
# and 0.28 (covariance): bounds twice that, far below the start's misfit (2.7 sd after
# 60 steps). The full run's bounds are 5x its measured ~1%.
bayes_tol = (0.8, 0.6) if SMOKE else (0.05, 0.05)
agreement += [
    ("SVI guide mean - m_N, in posterior sd", err_mean, bayes_tol[0]),
    ("SVI guide covariance - S_N, in sd_i sd_j", err_cov, bayes_tol[1]),
]

d_svi_mean = (polynomial_features(u_grid, order) @ q.mean).detach()
d_exact = predictive_posterior(polynomial_features(u_grid, order), post3, beta3)
fig = plots.plot_predictive_band(
    x,
    t,
    x_grid,
    d_exact.mean,
    d_exact.stddev,
    truth=truth,
    title="M = 3: conjugate posterior (band) and SVI (dashed)",
)
fig.axes[0].plot(x_grid.numpy(), d_svi_mean.numpy(), "k--", lw=1, label="SVI mean")
fig.axes[0].legend(fontsize=8)
plots.finish(fig, "regression_svi_vs_exact")

# %% [markdown]
# The agreement is the point of the library: every number above is checked by
# `tests/test_regression.py` against an independent computation (numpy, scipy,
# scikit-learn) and the inference against the closed form.

# %% [markdown]
# ## Agreement
#
# Every comparison above, with its bound (the reason is beside each where it is set).

# %%
for what, error, tolerance in agreement:
    print(f"{what:52s} {error:9.2e}  (bound {tolerance:g})")
    assert error <= tolerance, f"{what}: {error:.3g} > {tolerance:g}"
