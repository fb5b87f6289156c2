"""The variational autoencoder: closed forms (KL, linear ELBO, the PPCA optimum), SVI
against PPCA, the estimators' Monte-Carlo properties, the digits, bad input."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from scipy import stats
from scipy.special import roots_hermitenorm

from ppl_models import vae as vae_mod
from ppl_models.datasets import load_vae_data
from ppl_models.inference import data_plate, evaluate_loss, fit_svi, local_pyro_method
from ppl_models.vae import (
    VAE,
    elbo,
    gaussian_kl,
    interpolate,
    latent_traversal,
    linear_elbo,
    log_likelihood,
)

# ----------------------------------------------------------------------- helpers


def ppca_data(n: int, d: int, m: int, seed: int = 0) -> np.ndarray:
    """Draws from a PPCA with columns of W of norms about 3, 2, 1.5, sigma^2 = 0.5 and a
    random mean: data on a unit scale (see test_linear_vae_matches_ppca for why)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, m)) * np.array([3.0, 2.0, 1.5, 1.0][:m]) / np.sqrt(d)
    mu = rng.normal(size=d)
    return rng.normal(size=(n, m)) @ w.T + mu + math.sqrt(0.5) * rng.normal(size=(n, d))


def ppca_reference(x: np.ndarray, m: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Tipping & Bishop's closed form from numpy's eigh of the (1/N) covariance: the
    maximised log-likelihood per data point, C = W W^T + sigma^2 I, and the mean."""
    n, d = x.shape
    mu = x.mean(0)
    xc = x - mu
    lam, u = np.linalg.eigh(xc.T @ xc / n)
    lam, u = lam[::-1], u[:, ::-1]
    sigma2 = lam[m:].mean()
    w = u[:, :m] * np.sqrt(lam[:m] - sigma2)
    c = w @ w.T + sigma2 * np.eye(d)
    ll = -0.5 * (d * np.log(2 * np.pi) + np.log(lam[:m]).sum() + (d - m) * np.log(sigma2) + d)
    # The eigenvalue formula and scipy's density agree (REFERENCES.md).
    assert ll == pytest.approx(stats.multivariate_normal(mu, c).logpdf(x).mean(), rel=1e-10)
    return float(ll), c, mu


def model_covariance(v: VAE) -> np.ndarray:
    p = v.params()
    w = p.decoder_weights[0].numpy()
    return w @ w.T + float(p.sigma) ** 2 * np.eye(w.shape[0])


def exact_log_px(v: VAE, x: torch.Tensor) -> np.ndarray:
    """A linear VAE's exact marginal log-likelihood, N(x | b, W W^T + sigma^2 I), by scipy."""
    b = v.params().decoder_biases[0].numpy()
    return stats.multivariate_normal(b, model_covariance(v)).logpdf(x.numpy())


def random_linear_vae(d=4, m=2, seed=0) -> VAE:
    """A linear VAE with a deliberately poor guide (random encoder), so that ELBO, IWAE and
    log p(x) are well apart."""
    v = VAE(d, m, hidden=(), likelihood="normal", seed=seed).double()
    with torch.no_grad():
        v.sigma = torch.tensor(0.8, dtype=torch.float64)
    return v


# ------------------------------------------------------- tier 1: closed forms


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(7, 3, generator=g, dtype=torch.float64)
    scale = torch.rand(7, 3, generator=g, dtype=torch.float64) + 0.1
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(loc, scale), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(gaussian_kl(loc, scale), ref, rtol=1e-13, atol=1e-14)
    assert gaussian_kl(loc, scale).dtype == torch.float64


def test_linear_elbo_matches_gauss_hermite_quadrature():
    # E_q[ln p(x|z)] - KL by a 2-D Gauss-Hermite product rule with scipy's log-densities:
    # the integrand ln p(x|z) + ln p(z) - ln q(z|x) is quadratic in z, which 10 nodes per
    # dimension integrate exactly (float64 rounding only).
    v = random_linear_vae(d=4, m=2)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(5, 4)))
    p = v.params()
    w, b, sigma = (p.decoder_weights[0].numpy(), p.decoder_biases[0].numpy(), float(p.sigma))
    h = x.numpy() @ p.encoder_weights[0].numpy().T + p.encoder_biases[0].numpy()
    loc, s = h[:, :2], np.exp(0.5 * h[:, 2:])
    nodes, weights = roots_hermitenorm(10)
    weights = weights / weights.sum()
    ref = []
    for i in range(5):
        total = 0.0
        for a, wa in zip(nodes, weights, strict=True):
            for c, wc in zip(nodes, weights, strict=True):
                z = loc[i] + s[i] * np.array([a, c])
                term = (
                    stats.norm.logpdf(x.numpy()[i], w @ z + b, sigma).sum()
                    + stats.norm.logpdf(z).sum()
                    - stats.norm.logpdf(z, loc[i], s[i]).sum()
                )
                total += wa * wc * term
        ref.append(total)
    np.testing.assert_allclose(linear_elbo(p, x).numpy(), ref, rtol=1e-11)


def test_linear_elbo_optimum_is_the_ppca_maximum_likelihood():
    # L-BFGS on the closed-form ELBO (no sampling) reaches the PPCA optimum of numpy's
    # eigh: the ELBO to 1e-9 relative and C to 1e-5 (both limited by L-BFGS's stopping,
    # not by the theory, which says equality).
    x = torch.from_numpy(ppca_data(400, 6, 2, seed=3))
    ll, c, _ = ppca_reference(x.numpy(), 2)
    v = VAE(6, 2, hidden=(), likelihood="normal").double()
    opt = torch.optim.LBFGS(
        list(v.parameters()),
        max_iter=500,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=50,
    )
    enc, dec = v.encoder[0], v.decoder[0]

    def closure():
        opt.zero_grad()
        params = vae_mod.VAEParams((enc.weight,), (enc.bias,), (dec.weight,), (dec.bias,), v.sigma)
        loss = -linear_elbo(params, x).mean()
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)
    assert float(linear_elbo(v.params(), x).mean()) == pytest.approx(ll, rel=1e-9)
    assert np.linalg.norm(model_covariance(v) - c) / np.linalg.norm(c) < 1e-5
    # At the optimum the guide is the exact posterior: W^T W is diagonal (the ELBO picked
    # the rotation), so the ELBO equals the exact log p(x) of every point (scipy).
    np.testing.assert_allclose(linear_elbo(v.params(), x).numpy(), exact_log_px(v, x), rtol=1e-6)


def test_estimators_agree_with_the_linear_closed_form():
    # Monte-Carlo ELBO (both KL estimators) within 4 standard errors of the exact ELBO;
    # standard errors from the spread of the per-draw values.
    v = random_linear_vae()
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(6, 4)))
    exact = linear_elbo(v.params(), x).numpy()
    for analytic in (False, True):
        draws = np.stack([elbo(v, x, 1, analytic_kl=analytic, seed=s).numpy() for s in range(400)])
        se = draws.std(0, ddof=1) / math.sqrt(len(draws))
        assert np.all(np.abs(draws.mean(0) - exact) < 4 * se + 1e-12), analytic
        # The batched mean over particles is the mean of the draws it holds.
        many = elbo(v, x, 400, analytic_kl=analytic, seed=0).numpy()
        assert np.all(np.abs(many - exact) < 4 * se * math.sqrt(1) + 1e-12)


def test_pyro_elbo_losses_equal_the_library_estimators_at_the_same_draw():
    # One Pyro Trace_ELBO particle and TraceMeanField_ELBO particle against the closed form
    # pieces: with the guide's draw z fixed by replaying, -loss = ln p(x|z) + ln p(z) -
    # ln q(z|x) (Trace) and ln p(x|z) - KL (analytic), summed over points.
    v = random_linear_vae()
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(6, 4)))
    guide_trace = pyro.poutine.trace(v.guide).get_trace(x)
    z = guide_trace.nodes["z"]["value"]
    loc, scale = v.encode(x)
    p = v.params()
    mean = z @ p.decoder_weights[0].T + p.decoder_biases[0]
    log_px = stats.norm.logpdf(x.numpy(), mean.detach().numpy(), float(p.sigma)).sum()
    log_pz = stats.norm.logpdf(z.detach().numpy()).sum()
    log_qz = stats.norm.logpdf(z.detach().numpy(), loc.numpy(), scale.numpy()).sum()
    replayed = pyro.poutine.replay(v.guide, trace=guide_trace)
    for elbo_cls, ref in (
        (Trace_ELBO, log_px + log_pz - log_qz),
        (TraceMeanField_ELBO, log_px - float(gaussian_kl(loc, scale).sum())),
    ):
        loss = elbo_cls().loss(v.model, replayed, x)
        assert -loss == pytest.approx(ref, rel=1e-12)


def test_beta_scales_the_kl_term_in_both_estimators():
    # Same seed, same draws: loss(beta) - loss(1) = (beta - 1) KL (analytic) and
    # (beta - 1) [ln q(z|x) - ln p(z)] (Monte Carlo), summed over points.
    x = (torch.rand(20, 6, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    v1 = VAE(6, 2, hidden=(5,), seed=1).double()
    v3 = VAE(6, 2, hidden=(5,), beta=3.0, seed=1).double()
    loc, scale = v1.encode(x)
    kl = float(gaussian_kl(loc, scale).sum())
    l1 = evaluate_loss(v1, x, loss="meanfield", seed=4) * 20
    l3 = evaluate_loss(v3, x, loss="meanfield", seed=4) * 20
    assert l3 - l1 == pytest.approx(2.0 * kl, rel=1e-10)
    pyro.set_rng_seed(5)
    tr = pyro.poutine.trace(v1.guide).get_trace(x)
    z = tr.nodes["z"]["value"].detach()
    mc_kl = float(
        (
            stats.norm.logpdf(z.numpy(), loc.numpy(), scale.numpy()) - stats.norm.logpdf(z.numpy())
        ).sum()
    )
    t1 = Trace_ELBO().loss(v1.model, pyro.poutine.replay(v1.guide, trace=tr), x)
    tr3 = pyro.poutine.trace(pyro.poutine.replay(v3.guide, trace=tr)).get_trace(x)
    t3 = Trace_ELBO().loss(v3.model, pyro.poutine.replay(v3.guide, trace=tr3), x)
    assert t3 - t1 == pytest.approx(2.0 * mc_kl, rel=1e-9)
    # elbo() evaluates the generative model: beta does not enter.
    torch.testing.assert_close(elbo(v3, x, 5, seed=0), elbo(v1, x, 5, seed=0))


# --------------------------------------------- tier 2: SVI against PPCA (linear VAE)


def _linear_vae_check(n, d, m, steps, lr, loss):
    x = torch.from_numpy(ppca_data(n, d, m))
    ll, c, _ = ppca_reference(x.numpy(), m)
    v = VAE(d, m, hidden=(), likelihood="normal")
    fit = fit_svi(v, x, loss=loss, num_steps=steps, lr=lr, tol=0, seed=0, progress=False)
    assert np.isfinite(fit.losses).all()
    converged = float(linear_elbo(v.params(), x).mean())  # exact ELBO of the fitted VAE
    rel_elbo = abs(converged - ll) / abs(ll)
    rel_c = np.linalg.norm(model_covariance(v) - c) / np.linalg.norm(c)
    return rel_elbo, rel_c, converged, ll


def test_linear_vae_matches_ppca_small():
    # The check on a smaller problem (D = 10, M = 2, N = 1000, 700 full-batch Adam
    # steps, float64, analytic KL). Tolerances: the 0.5% (ELBO) and 5% (C); the
    # residual is Adam's stochastic-gradient noise floor with one particle (measured
    # about 1e-3 and 1.5e-2). Data on a unit scale: with eigenvalues ~100 times sigma^2 the
    # same Adam run crawls (a plateau of the encoder's scale), see ppca_data.
    rel_elbo, rel_c, *_ = _linear_vae_check(1000, 10, 2, 700, 0.02, "meanfield")
    assert rel_elbo < 5e-3
    assert rel_c < 5e-2


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["meanfield", "trace"])
def test_linear_vae_matches_ppca(loss):
    # The setting: D = 20, M = 3, N = 5000, full batch, float64. Measured residuals
    # (meanfield) about 2e-4 (ELBO) and 5e-3 (C) after 1500 steps; the tolerances are the
    # issue's.
    rel_elbo, rel_c, *_ = _linear_vae_check(5000, 20, 3, 1500, 0.01, loss)
    assert rel_elbo < 5e-3
    assert rel_c < 5e-2


# ------------------------------------------------- tier 3: Monte-Carlo properties


@pytest.fixture(scope="module")
def digits_bernoulli():
    return load_vae_data("bernoulli")


@pytest.fixture(scope="module")
def trained_bernoulli(digits_bernoulli):
    pyro.clear_param_store()
    v = VAE(64, 4, hidden=(32,), seed=0).double()
    fit_svi(
        v,
        digits_bernoulli.x_train,
        loss="meanfield",
        num_steps=200,
        batch_size=128,
        lr=1e-2,
        tol=0,
        seed=0,
        progress=False,
    )
    return v


def test_trace_and_meanfield_agree_and_analytic_kl_has_lower_variance(
    trained_bernoulli, digits_bernoulli
):
    # 150 independent single-particle losses of each ELBO on 100 held-out digits: their
    # means agree within 3 combined standard errors.
    v, x = trained_bernoulli, digits_bernoulli.x_test[:100]
    values = {}
    for name, cls in (("trace", Trace_ELBO), ("meanfield", TraceMeanField_ELBO)):
        pyro.set_rng_seed(0 if name == "trace" else 1)
        values[name] = np.array([cls().loss(v.model, v.guide, x) for _ in range(150)])
    m1, m2 = values["trace"].mean(), values["meanfield"].mean()
    se = math.sqrt(values["trace"].var(ddof=1) / 150 + values["meanfield"].var(ddof=1) / 150)
    assert abs(m1 - m2) < 3 * se
    # The variance that the analytic KL lowers is that of the gradient, the quantity
    # training uses (the decoder's gradient is the same under both: the KL does not
    # depend on it). Measured on the encoder's first layer: 0.06x at initial weights,
    # about 0.5x after 50 steps and 0.8x after 300. The variance of the loss *value* is
    # another matter: near a good guide ln p(x, z) - ln q(z | x) is almost constant in z
    # (zero variance when q is the exact posterior), so Trace_ELBO's value varies less
    # (measured 2.5x less here); not asserted either way, reported.
    fresh = VAE(64, 4, hidden=(32,), seed=0).double()
    grad_var = {}
    for name, cls in (("trace", Trace_ELBO), ("meanfield", TraceMeanField_ELBO)):
        pyro.set_rng_seed(2)
        grads = []
        for _ in range(60):
            loss = cls().differentiable_loss(fresh.model, fresh.guide, x)
            (g,) = torch.autograd.grad(loss, [fresh.encoder[0].weight])
            grads.append(g.flatten().numpy())
        grad_var[name] = np.stack(grads).var(0, ddof=1).sum()
    # A ratio of sums of 2048 per-weight variances, each from 60 draws: the measured 0.06
    # is far below the 0.5 asserted.
    assert grad_var["meanfield"] < 0.5 * grad_var["trace"]


def test_importance_weighted_estimate_rises_with_k_to_the_exact_log_likelihood():
    # A linear VAE with a poor guide: exact ln p(x) from scipy. For K = 1, 10, 100, 1000
    # the mean estimate over 200 seeds rises (each step by more than 3 standard errors
    # here, the gaps being large), stays below ln p(x) (within 3 standard errors), and
    # K = 1 is the ELBO (exact closed form) within 3 standard errors.
    v = random_linear_vae()
    x = torch.from_numpy(np.random.default_rng(4).normal(size=(3, 4)))
    exact = exact_log_px(v, x)
    bound = linear_elbo(v.params(), x).numpy()
    means, ses = [], []
    for k in (1, 10, 100, 1000):
        draws = np.stack([log_likelihood(v, x, k, seed=s).numpy() for s in range(200)])
        means.append(draws.mean(0))
        ses.append(draws.std(0, ddof=1) / math.sqrt(200))
        assert np.all(draws.mean(0) < exact + 3 * ses[-1] + 1e-12)
    assert np.all(np.abs(means[0] - bound) < 3 * ses[0])
    for a, b, sa, sb in zip(means, means[1:], ses, ses[1:], strict=False):
        assert np.all(b - a > -3 * np.hypot(sa, sb))
    # K = 1000 is within 2% of the distance from the ELBO to ln p(x).
    assert np.all(np.abs(means[-1] - exact) < 0.02 * (exact - bound) + 3 * ses[-1])


def test_log_likelihood_batches_give_the_same_estimator():
    # A budget so small that draws come in chunks of 2: the estimate is the same
    # estimator (within Monte-Carlo error of the exact value), and K = 5000 on 200 points
    # runs within the default budget.
    v = random_linear_vae()
    x = torch.from_numpy(np.random.default_rng(5).normal(size=(4, 4)))
    exact = exact_log_px(v, x)
    small = log_likelihood(v, x, 1000, budget=8, seed=0).numpy()
    full = log_likelihood(v, x, 1000, seed=1).numpy()
    draws = np.stack([log_likelihood(v, x, 1000, seed=s).numpy() for s in range(2, 14)])
    tol = 4 * draws.std(0, ddof=1) + 1e-9
    assert np.all(np.abs(small - exact) < tol + np.abs(draws.mean(0) - exact))
    assert np.all(np.abs(full - small) < 2 * tol)
    big = log_likelihood(v, torch.randn(200, 4, dtype=torch.float64), 5000, seed=0)
    assert big.shape == (200,) and torch.isfinite(big).all()


@pytest.mark.slow
def test_digits_importance_weighted_estimate_rises_with_k(trained_bernoulli, digits_bernoulli):
    # The same property on held-out digits (no exact value): estimates over 20 seeds, each
    # K's mean above the previous one's minus 3 standard errors, and above the ELBO.
    v, x = trained_bernoulli, digits_bernoulli.x_test[:100]
    bound = float(elbo(v, x, 100, seed=0).mean())
    means, ses = [], []
    for k in (1, 10, 100, 1000):
        draws = np.array([float(log_likelihood(v, x, k, seed=s).mean()) for s in range(20)])
        means.append(draws.mean())
        ses.append(draws.std(ddof=1) / math.sqrt(20))
    assert abs(means[0] - bound) < 3 * ses[0] + 0.05
    for a, b, sa, sb in zip(means, means[1:], ses, ses[1:], strict=False):
        assert b - a > -3 * math.hypot(sa, sb)
    assert means[-1] > bound


@pytest.mark.slow
def test_vae_beats_ppca_on_held_out_digits():
    # Digits scaled to [0, 1], normal likelihood with one shared sigma, M = 2 for both.
    # PPCA's held-out log-likelihood is exact (numpy eigh, scipy density): about 0.2 nats.
    # The VAE (64-64-2 tanh, early stopping on 250 training rows held out) reaches about
    # 11.5 (ELBO) and 14 (K = 1000) in measurements; asserted: above PPCA.
    data = load_vae_data("normal")
    x_train, x_test = data.x_train, data.x_test
    mu = x_train.mean(0).numpy()
    xc = x_train.numpy() - mu
    lam, u = np.linalg.eigh(xc.T @ xc / len(xc))
    lam, u = lam[::-1], u[:, ::-1]
    sigma2 = lam[2:].mean()
    c = (u[:, :2] * (lam[:2] - sigma2)) @ u[:, :2].T + sigma2 * np.eye(64)
    ppca_ll = stats.multivariate_normal(mu, c).logpdf(x_test.numpy()).mean()
    v = VAE(64, 2, hidden=(64,), likelihood="normal", activation="tanh")
    fit = fit_svi(
        v,
        x_train[:1100],
        validation=(x_train[1100:],),
        patience=20,
        loss="meanfield",
        num_steps=3000,
        batch_size=128,
        lr=3e-3,
        tol=0,
        seed=0,
        progress=False,
    )
    assert fit.best_step is not None
    vae_elbo = float(elbo(v, x_test, 10, seed=0).mean())
    vae_iw = float(log_likelihood(v, x_test, 1000, seed=0).mean())
    assert vae_iw > vae_elbo > ppca_ll


def test_early_stopping_restores_the_best_vae(digits_bernoulli):
    # fit_svi's validation with a stochastic guide: the validations do not move the
    # training's random streams, so the restored VAE equals a fresh fit stopped at the
    # best step, and its fresh validation loss equals the recorded one.
    x, x_val = digits_bernoulli.x_train[:300], digits_bernoulli.x_test[:100]
    kwargs = dict(loss="meanfield", batch_size=100, lr=2e-2, tol=0, seed=0, progress=False)
    v = VAE(64, 2, hidden=(16,)).double()
    fit = fit_svi(v, x, validation=(x_val,), validate_every=5, patience=2, num_steps=2000, **kwargs)
    assert fit.stopped_early
    best = int(np.argmin(fit.val_losses))
    assert fit.best_step == int(fit.val_steps[best])
    ref = VAE(64, 2, hidden=(16,)).double()
    fit_svi(ref, x, num_steps=fit.best_step, **kwargs)
    for a, b in zip(v.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    fresh = evaluate_loss(v, x_val, loss="meanfield", seed=0)
    assert fresh == pytest.approx(fit.val_losses[best] / fit.num_data, rel=1e-13)


# ---------------------------------------------------------- the module's API


def test_api_shapes_seeds_and_separate_parameters(trained_bernoulli, digits_bernoulli):
    v, x = trained_bernoulli, digits_bernoulli.x_test[:10]
    loc, scale = v.encode(x)
    assert loc.shape == scale.shape == (10, 4) and bool((scale > 0).all())
    rec = v.reconstruct(x)
    assert rec.shape == (10, 64) and bool(((rec > 0) & (rec < 1)).all())
    torch.testing.assert_close(v.sample(5, seed=3), v.sample(5, seed=3))
    draws = v.sample(5, seed=3, mean=False)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    line = interpolate(v, x[0], x[1], steps=5)
    assert line.shape == (5, 64)
    torch.testing.assert_close(line[0], v.decode(loc[:1])[0])
    torch.testing.assert_close(line[-1], v.decode(loc[1:2])[0])
    trav = latent_traversal(v, x[0], torch.linspace(-2, 2, 3))
    assert trav.shape == (4, 3, 64)
    # The model as a generator (no data) gives num points.
    assert v.model(num_points=3).shape == (3, 64)
    # Two fitted instances keep their own parameters (module-local, DESIGN.md).
    other = VAE(64, 4, hidden=(32,), seed=1).double()
    fit_svi(other, digits_bernoulli.x_train[:200], num_steps=3, progress=False)
    assert not torch.equal(other.decoder[0].weight, v.decoder[0].weight)
    # Normal likelihood, per-dimension noise.
    vn = VAE(5, 2, hidden=(), likelihood="normal", sigma="per_dim").double()
    fit_svi(vn, torch.randn(30, 5, dtype=torch.float64), num_steps=3, progress=False)
    assert vn.params().sigma.shape == (5,)
    assert VAE(5, 2).params().sigma is None


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"latent_dim": 0}, ValueError, "latent_dim must be an integer >= 1"),
        ({"beta": 0.0}, ValueError, "beta must be positive"),
        ({"beta": -1.0}, ValueError, "beta must be positive"),
        ({"likelihood": "poisson"}, ValueError, "likelihood must be one of"),
        ({"sigma": "full", "likelihood": "normal"}, ValueError, "sigma must be one of"),
        ({"hidden": (0,)}, ValueError, r"hidden\[0\] must be"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, match):
    args = {"data_dim": 6, "latent_dim": 2, **kwargs}
    with pytest.raises(exc, match=match):
        VAE(**args)


def test_bad_data():
    v = VAE(6, 2, hidden=(4,))
    grey = torch.full((10, 6), 0.5)
    with pytest.raises(ValueError, match=r"x must hold only 0 and 1.*likelihood='normal'"):
        fit_svi(v, grey, num_steps=1, progress=False)
    nan = torch.zeros(10, 6)
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        fit_svi(v, nan, num_steps=1, progress=False)
    with pytest.raises(ValueError, match="x must have 6 columns"):
        fit_svi(v, torch.zeros(10, 5), num_steps=1, progress=False)
    with pytest.raises(ValueError, match="x must have 6 columns"):
        log_likelihood(v, torch.zeros(3, 7))
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        log_likelihood(v, torch.zeros(3, 6), 0)
    with pytest.raises(ValueError, match="num_particles must be an integer >= 1"):
        elbo(v, torch.zeros(3, 6), 0)
    with pytest.raises(TypeError, match="model must be a VAE"):
        elbo(object(), torch.zeros(3, 6))
    with pytest.raises(ValueError, match="z must have 2 columns"):
        v.decode(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="needs the data x or the number of points"):
        v.model()
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        interpolate(v, torch.zeros(6), torch.ones(6), steps=1)
    with pytest.raises(TypeError, match="params must be VAEParams"):
        linear_elbo((1, 2), torch.zeros(3, 6))
    with pytest.raises(ValueError, match="linear VAE"):
        linear_elbo(v.params(), torch.zeros(3, 6))
    with pytest.raises(ValueError, match="likelihood must be one of"):
        load_vae_data("poisson")
    with pytest.raises(ValueError, match="test_size must be"):
        load_vae_data(test_size=1.5)


def test_vae_data_is_binary_or_scaled_and_split():
    b = load_vae_data("bernoulli", seed=1)
    n = load_vae_data("normal", seed=1)
    assert b.x_train.shape == (1348, 64) and b.x_test.shape == (449, 64)
    assert set(b.x_train.unique().tolist()) == {0.0, 1.0}
    assert float(n.x_train.min()) == 0.0 and float(n.x_train.max()) == 1.0
    torch.testing.assert_close(b.x_train, (n.x_train >= 0.5).double())
    torch.testing.assert_close(b.y_test, n.y_test)
    assert len(set(b.y_train.tolist())) == 10


class _TracedVAE(VAE):
    """A VAE without its torch loss: fit_svi's generic shortcut (traces) applies."""

    reparam_loss = None


class _WiderPriorVAE(VAE):
    """A subclass whose model differs from what reparam_loss writes (prior N(0, 2^2))."""

    @local_pyro_method
    def model(self, x=None, *, num_points=None):
        with data_plate(x.shape[0]):
            z = pyro.sample(
                "z", dist.Normal(x.new_zeros(x.shape[0], self.latent_dim), 2.0).to_event(1)
            )
            pyro.sample("obs", self._likelihood(z), obs=x)


@pytest.mark.parametrize("likelihood", ["bernoulli", "normal"])
@pytest.mark.parametrize("sigma", ["shared", "per_dim"])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_reparam_loss_is_pyros_elbo_at_the_same_draw(likelihood, sigma, beta):
    # VAE.reparam_loss writes model + guide's one-particle loss in torch; Pyro's ELBO classes
    # on the same random state (the same eps) must give the same value and gradient, in and
    # out of a minibatch (scale N / B). float64: equal to summation rounding.
    from ppl_models.inference import minibatch as _minibatch

    x = (torch.rand(30, 8, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    v = VAE(8, 3, hidden=(6,), likelihood=likelihood, beta=beta, sigma=sigma, seed=2).double()
    if v.sigma is not None:
        v.sigma = (
            torch.linspace(0.5, 1.5, 8, dtype=torch.float64).reshape(v.sigma.shape)
            if sigma == "per_dim"
            else torch.tensor(0.7, dtype=torch.float64)
        )
    params = list(v.parameters())
    for minibatch in (None, (1000, torch.arange(30))):
        for elbo_cls, analytic in ((Trace_ELBO, False), (TraceMeanField_ELBO, True)):
            ctx = _minibatch(*minibatch) if minibatch else contextlib.nullcontext()
            with ctx:
                pyro.set_rng_seed(7)
                ref = elbo_cls().differentiable_loss(v.model, v.guide, x)
                ref_grads = torch.autograd.grad(ref, params)
                pyro.set_rng_seed(7)
                mine = v.reparam_loss(x, analytic_kl=analytic)
                grads = torch.autograd.grad(mine, params)
            assert float(mine.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
            for g, r in zip(grads, ref_grads, strict=True):
                torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    with _minibatch(1000, torch.arange(30)):
        pyro.set_rng_seed(7)
        scaled = float(v.reparam_loss(x))
    pyro.set_rng_seed(7)
    assert scaled == pytest.approx(1000 / 30 * float(v.reparam_loss(x)), rel=1e-12)


@pytest.mark.parametrize("loss", ["trace", "meanfield"])
@pytest.mark.parametrize("beta", [1.0, 2.0])
@pytest.mark.parametrize("cls", [VAE, _TracedVAE])
def test_fit_svi_shortcut_gives_pyros_losses(loss, beta, cls, monkeypatch, digits_bernoulli):
    # fit_svi computes a reparametrised guide's loss without Pyro's ELBO classes after
    # checking, at the first evaluation, that both give the same number: the module's own
    # torch loss where it has one (VAE.reparam_loss), else the sum over one guide trace and
    # the replayed model. The whole trajectory must be Pyro's: validate_every_step=True
    # keeps Pyro's ELBO on every step. float64, same draws: equal to summation rounding.
    from ppl_models.inference import losses

    calls = {"traces": 0, "module": 0}
    original = losses.trace_loss
    original_module = VAE.reparam_loss

    def traced(*a, **k):
        calls["traces"] += 1
        return original(*a, **k)

    def module_loss(self, *a, **k):
        calls["module"] += 1
        return original_module(self, *a, **k)

    monkeypatch.setattr(losses, "trace_loss", traced)
    if cls is VAE:
        monkeypatch.setattr(VAE, "reparam_loss", module_loss)
    x = digits_bernoulli.x_train[:200]
    kwargs = dict(loss=loss, num_steps=15, batch_size=50, lr=1e-2, tol=0, seed=0, progress=False)
    fast = fit_svi(cls(64, 2, hidden=(8,), beta=beta).double(), x, **kwargs)
    # The licence check, every step, and the re-checks against Pyro's ELBO after steps 1
    # and 10 (inference.losses.recheck_due).
    if cls is VAE:  # the module's loss
        assert calls == {"traces": 1, "module": 1 + 15 + 2}
    else:
        assert calls == {"traces": 1 + 15 + 2, "module": 0}
    calls.update(traces=0, module=0)
    slow = fit_svi(
        cls(64, 2, hidden=(8,), beta=beta).double(), x, validate_every_step=True, **kwargs
    )
    assert calls == {"traces": 0, "module": 0}
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-10)


def test_a_changed_model_does_not_train_on_the_vae_loss(monkeypatch, digits_bernoulli):
    # reparam_loss writes the VAE's own model; a subclass with another prior fails the
    # licence check (Pyro's number differs) and trains through the traces, whose losses
    # are Pyro's.
    calls = []
    original = VAE.reparam_loss
    monkeypatch.setattr(
        VAE, "reparam_loss", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    x = digits_bernoulli.x_train[:100]
    kwargs = dict(loss="trace", num_steps=5, batch_size=50, tol=0, seed=0, progress=False)
    fit = fit_svi(_WiderPriorVAE(64, 2, hidden=(8,)).double(), x, **kwargs)
    assert calls == [1]  # the check only
    ref = fit_svi(
        _WiderPriorVAE(64, 2, hidden=(8,)).double(), x, validate_every_step=True, **kwargs
    )
    np.testing.assert_allclose(fit.losses, ref.losses, rtol=1e-10)


def test_vae_data_reads_mnist_idx_files(tmp_path):
    # Four tiny IDX files written from the format's description (magic 0x0803 / 0x0801,
    # big-endian sizes, unsigned bytes): binarised at 128/255 >= 0.5, or scaled to [0, 1].
    import struct

    def idx(array):
        head = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
        head += b"".join(struct.pack(">I", s) for s in array.shape)
        return head + array.astype(np.uint8).tobytes()

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 28, 28))
    labels = np.arange(6) % 10
    for stem in ("train", "t10k"):
        (tmp_path / f"{stem}-images-idx3-ubyte").write_bytes(idx(images))
        (tmp_path / f"{stem}-labels-idx1-ubyte").write_bytes(idx(labels))
    b = load_vae_data("bernoulli", mnist_path=tmp_path)
    n = load_vae_data("normal", mnist_path=tmp_path, num_points=4)
    assert b.x_train.shape == (6, 784) and n.x_test.shape == (4, 784)
    np.testing.assert_array_equal(b.x_train.numpy(), (images.reshape(6, -1) >= 128) * 1.0)
    np.testing.assert_allclose(n.x_train.numpy(), images.reshape(6, -1)[:4] / 255, rtol=1e-15)
    assert b.y_test.tolist() == labels.tolist()


@pytest.mark.parametrize("likelihood", ["bernoulli", "normal"])
def test_a_float32_vae_trains_on_float64_data(likelihood):
    # The networks run in float32, the likelihood and q(z | x) in float64; the gradient
    # reaches every float32 parameter.
    x = (torch.rand(16, 5, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    m = VAE(5, 2, hidden=(4,), likelihood=likelihood)
    loss = Trace_ELBO().differentiable_loss(m.model, m.guide, x)
    assert loss.dtype == torch.float64
    loss.backward()
    assert all(p.dtype == torch.float32 and p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("sigma", ["shared", "per_dim"])
def test_normal_likelihood_refuses_data_it_would_fit_exactly(sigma):
    # Issue 17: on constant images the normal likelihood's sigma -> 0 and the loss fell
    # without bound (-2687 after 2000 steps), without a word; PPCA refuses the same data.
    v = VAE(4, 2, hidden=(3,), likelihood="normal", sigma=sigma)
    constant = torch.full((20, 4), 0.3)
    with pytest.raises(ValueError, match=r"every row the same|constant columns"):
        fit_svi(v, constant, num_steps=2, progress=False)
    # One constant column: unbounded only with a sigma per dimension (its own sigma -> 0).
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    x[:, 2] = 1.0
    if sigma == "per_dim":
        with pytest.raises(ValueError, match=r"x has constant columns \[2\].*sigma='shared'"):
            v.validate_data(x)
    else:
        assert v.validate_data(x)[0].shape == (20, 4)
