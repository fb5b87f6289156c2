r"""NUTS: ``run_nuts`` against NumPyro's NUTS and Pyro's own, in effective samples per second.

The same data, priors, chains and draws for every sampler (2 chains, 500 warm-up + 1000
draws each; quick mode 200 + 400), float64, one torch and one XLA thread, chains in
sequence. The measure is the wall time of a whole run (set-up, compilation and warm-up
included, as a user refitting a model sees it) divided by the smallest bulk ESS over every
scalar of every latent site (ArviZ's ``ess``): seconds per effective sample. The table's
ratio is ``run_nuts``'s seconds per effective sample over the baseline's (< 1: run_nuts is
faster), the median of 3 interleaved repeats; the note gives ESS/s of each and how far the
posterior means are apart, in Monte-Carlo standard errors (max over scalars of
``|m_a - m_b| / sqrt(mcse_a^2 + mcse_b^2)``).

Models:

* **Bayesian logistic regression**: scikit-learn's breast-cancer data, the first 10
  features standardised plus a bias column, ``w ~ N(0, I)`` (``LogisticRegression(11,
  prior_precision=1)``, a closed-form potential).
* **Bayesian linear regression**: scikit-learn's diabetes data (10 standardised features
  plus a bias), ``w ~ N(0, I)``, ``beta ~ Gamma(2, 2)`` on the standardised target
  (``LinearRegression(11, alpha=1, beta_prior=(2, 2))``, closed form).
* **Bayesian Gaussian**: 1000 points, the Normal-Gamma prior (``BayesianGaussian``, closed
  form).
* **Bayesian PCA**: Bishop's data (N = 300, D = 10, M = 9), the marginal form with ARD
  priors (``BayesianPCA``, closed-form potential; NumPyro's model written here the same,
  started from the same data-based point). ``W`` is identified only up to a rotation and
  its switched-off columns swap freely, so its raw entries have no meaningful ESS: the
  ESS is taken over what the data identify, the sorted ``alpha``, ``sigma``, ``mu`` and
  the model covariance :math:`C = W W^\top + \sigma^2 I` (as the slow test of the module
  does).
* **A user's own Pyro model** with no closed-form potential: robust regression on the
  diabetes data, ``w ~ N(0, I)``, ``sigma ~ HalfNormal(1)``, ``nu ~ Gamma(2, 0.1)``, a
  Student-t likelihood, written as a plain Pyro function (``run_nuts`` compiles its
  potential).

NumPyro and JAX are optional (``pip install -e ".[bench]"``); without them the NumPyro rows
are left out and the benchmark says so. Pyro's NUTS is always compared.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import numpy as np
import torch

from benchmarks._harness import Row

CHAINS = 2


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)


def _cases():
    import pyro
    import pyro.distributions as dist
    from sklearn.datasets import load_breast_cancer, load_diabetes

    from ppl_models.bayesian_pca import BayesianPCA
    from ppl_models.datasets import make_bishop_bpca_data
    from ppl_models.gaussian import BayesianGaussian, NormalGammaParams
    from ppl_models.logistic import LogisticRegression
    from ppl_models.regression import LinearRegression

    xb, yb = load_breast_cancer(return_X_y=True)
    phi_b = np.hstack([_standardise(xb[:, :10]), np.ones((len(xb), 1))])
    xd, yd = load_diabetes(return_X_y=True)
    phi_d = np.hstack([_standardise(xd), np.ones((len(xd), 1))])
    t_d = (yd - yd.mean()) / yd.std()
    x_g = np.random.default_rng(0).normal(1.0, 2.0, size=1000)
    x_bpca = make_bishop_bpca_data(num_points=300, seed=0).x.numpy()

    def robust(phi, t):
        w = pyro.sample(
            "w", dist.Normal(torch.zeros(phi.shape[1], dtype=phi.dtype), 1.0).to_event(1)
        )
        sigma = pyro.sample("sigma", dist.HalfNormal(torch.tensor(1.0, dtype=phi.dtype)))
        nu = pyro.sample("nu", dist.Gamma(torch.tensor(2.0, dtype=phi.dtype), 0.1))
        with pyro.plate("data", len(t)):
            pyro.sample("obs", dist.StudentT(nu, phi @ w, sigma), obs=t)

    def bpca_module():
        return BayesianPCA(10, 9).double()

    return {
        "Bayesian logistic (breast cancer, D=11)": dict(
            make=lambda: LogisticRegression(11, prior_precision=1.0).double(),
            data=(phi_b, yb.astype(np.float64)),
            numpyro="logistic",
        ),
        "Bayesian linear regression (diabetes, D=11)": dict(
            make=lambda: LinearRegression(11, alpha=1.0, beta_prior=(2.0, 2.0)).double(),
            data=(phi_d, t_d),
            numpyro="linear",
        ),
        "Bayesian Gaussian (N=1000)": dict(
            make=lambda: BayesianGaussian(NormalGammaParams(0.0, 1.0, 2.0, 2.0)).double(),
            data=(x_g,),
            numpyro="gaussian",
        ),
        "Bayesian PCA (Bishop, N=300, D=10, M=9)": dict(
            make=bpca_module,
            data=(x_bpca,),
            numpyro="bpca",
            init="module",
            target_accept=0.9,
        ),
        "user's Pyro model: robust regression (diabetes, D=11)": dict(
            make=lambda: robust, data=(phi_d, t_d), numpyro="robust"
        ),
    }


# -------------------------------------------------------------------- NumPyro models


def _numpyro_model(kind: str):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    if kind == "logistic":

        def model(phi, t):
            w = numpyro.sample("w", nd.Normal(jnp.zeros(phi.shape[1]), 1.0).to_event(1))
            numpyro.sample("obs", nd.Bernoulli(logits=phi @ w), obs=t)

    elif kind == "linear":

        def model(phi, t):
            w = numpyro.sample("w", nd.Normal(jnp.zeros(phi.shape[1]), 1.0).to_event(1))
            beta = numpyro.sample("beta", nd.Gamma(2.0, 2.0))
            numpyro.sample("obs", nd.Normal(phi @ w, beta**-0.5), obs=t)

    elif kind == "gaussian":

        def model(x):
            lam = numpyro.sample("lambda", nd.Gamma(2.0, 2.0))
            mu = numpyro.sample("mu", nd.Normal(0.0, (1.0 * lam) ** -0.5))
            numpyro.sample("obs", nd.Normal(mu, lam**-0.5), obs=x)

    elif kind == "bpca":

        def model(x):
            d, m = x.shape[1], 9
            alpha = numpyro.sample("alpha", nd.Gamma(1e-3 * jnp.ones(m), 1e-3).to_event(1))
            w = numpyro.sample("W", nd.Normal(jnp.zeros((d, m)), alpha**-0.5).to_event(2))
            sigma = numpyro.sample("sigma", nd.HalfCauchy(1.0))
            mu = numpyro.sample("mu", nd.Normal(jnp.zeros(d), 100.0).to_event(1))
            cov_diag = jnp.full(d, sigma**2)
            numpyro.sample("obs", nd.LowRankMultivariateNormal(mu, w, cov_diag), obs=x)

    else:  # robust

        def model(phi, t):
            w = numpyro.sample("w", nd.Normal(jnp.zeros(phi.shape[1]), 1.0).to_event(1))
            sigma = numpyro.sample("sigma", nd.HalfNormal(1.0))
            nu = numpyro.sample("nu", nd.Gamma(2.0, 0.1))
            numpyro.sample("obs", nd.StudentT(nu, phi @ w, sigma), obs=t)

    return model


def _numpyro_available() -> bool:
    try:
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------- the runs


def _identified(samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bayesian PCA's identified quantities (see the module docstring); others as they are."""
    if "W" not in samples:
        return samples
    w, sigma = samples["W"], samples["sigma"]
    c = np.einsum("...im,...jm->...ij", w, w) + (sigma**2)[..., None, None] * np.eye(w.shape[-2])
    return {
        "alpha_sorted": np.sort(samples["alpha"], axis=-1),
        "sigma": sigma,
        "mu": samples["mu"],
        "C": c,
    }


def _ess_and_moments(samples: dict[str, np.ndarray]):
    """Minimum bulk ESS over every scalar, and per site the posterior mean and its MCSE."""
    import arviz as az

    samples = _identified(samples)
    idata = az.from_dict(posterior={k: np.asarray(v) for k, v in samples.items()})
    ess = az.ess(idata)
    mcse = az.mcse(idata)
    low = min(float(ess[k].min()) for k in samples)
    moments = {k: (np.asarray(samples[k]).mean((0, 1)), np.asarray(mcse[k])) for k in samples}
    return low, moments


def _run_ours(case, warmup, draws, sampler, seed):
    from ppl_models.bayesian_pca import BayesianPCA
    from ppl_models.inference import run_nuts

    module = case["make"]()
    data = tuple(torch.from_numpy(np.ascontiguousarray(d)) for d in case["data"])
    init = module.init_strategy if isinstance(module, BayesianPCA) else None
    t0 = time.perf_counter()
    run = run_nuts(
        module, *data, num_samples=draws, warmup_steps=warmup, num_chains=CHAINS, seed=seed,
        progress=False, sampler=sampler, init_strategy=init,
        target_accept_prob=case.get("target_accept", 0.8),
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    samples = {k: v.numpy() for k, v in run.get_samples(group_by_chain=True).items()}
    return seconds, samples, getattr(run, "potential", "pyro")


def _run_numpyro(case, warmup, draws, seed):
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS
    from numpyro.infer.initialization import init_to_uniform

    jax.config.update("jax_enable_x64", True)
    model = _numpyro_model(case["numpyro"])
    data = tuple(jnp.asarray(d) for d in case["data"])
    t0 = time.perf_counter()
    init = init_to_uniform
    if case.get("init") == "module":
        # The same data-based starting point run_nuts takes (BayesianPCA.init_strategy):
        # from NumPyro's default (uniform on (-2, 2) in unconstrained space) the chains
        # start with every ARD column switched on at a random scale.
        from numpyro.infer.initialization import init_to_value

        values = case["make"]().init_values(torch.from_numpy(case["data"][0]))
        init = init_to_value(values={k: jnp.asarray(v.numpy()) for k, v in values.items()})
    kernel = NUTS(model, target_accept_prob=case.get("target_accept", 0.8), init_strategy=init)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=CHAINS,
                chain_method="sequential", progress_bar=False)  # fmt: skip
    mcmc.run(jax.random.PRNGKey(seed), *data)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    seconds = time.perf_counter() - t0
    return seconds, samples, "numpyro"


def _z(a, b) -> float:
    """Largest |difference of posterior means| in Monte-Carlo standard errors."""
    worst = 0.0
    for k in a:
        if k not in b:
            continue
        (ma, sa), (mb, sb) = a[k], b[k]
        worst = max(worst, float(np.max(np.abs(ma - mb) / np.sqrt(sa**2 + sb**2))))
    return worst


def run(quick: bool, case: str | None = None) -> list[Row]:
    """The table's rows; ``case`` keeps the models whose name contains it."""
    import statistics

    warmup, draws = (200, 400) if quick else (500, 1000)
    repeats = 1 if quick else 3
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    have_numpyro = _numpyro_available()
    if not have_numpyro:
        print("bench_nuts: numpyro/jax not installed; NumPyro rows left out "
              "(pip install -e '.[bench]')", file=sys.stderr)  # fmt: skip
    rows = []
    try:
        for name, case_ in _cases().items():
            if case is not None and case.lower() not in name.lower():
                continue
            case_ = dict(case_)
            runners = {
                "ours": lambda s, c=case_: _run_ours(c, warmup, draws, "nutpie", s),
                "pyro": lambda s, c=case_: _run_ours(c, warmup, draws, "pyro", s),
            }
            if have_numpyro:
                runners["numpyro"] = lambda s, c=case_: _run_numpyro(c, warmup, draws, s)
            per_ess: dict[str, list[float]] = {k: [] for k in runners}
            moments: dict[str, object] = {}
            kind = ""
            for r in range(repeats):
                order = list(runners) if r % 2 == 0 else list(runners)[::-1]
                for key in order:
                    seconds, samples, label = runners[key](r)
                    ess, mom = _ess_and_moments(samples)
                    per_ess[key].append(seconds / ess)
                    moments[key] = mom
                    if key == "ours":
                        kind = label
                    print(f"  {name} / {key}: {seconds:.1f} s, min ESS {ess:.0f}, "
                          f"{ess / seconds:.1f} ESS/s", file=sys.stderr)  # fmt: skip
            for base in [k for k in ("numpyro", "pyro") if k in runners]:
                ratios = [a / b for a, b in zip(per_ess["ours"], per_ess[base], strict=True)]
                ours = 1 / statistics.median(per_ess["ours"])
                theirs = 1 / statistics.median(per_ess[base])
                rows.append(
                    Row(
                        benchmark="nuts",
                        case=f"{name}, {CHAINS} x ({warmup} + {draws})",
                        method=f"run_nuts (nutpie, potential: {kind})",
                        baseline="NumPyro NUTS" if base == "numpyro" else "Pyro NUTS",
                        ratio_median=statistics.median(ratios),
                        ratio_min=min(ratios),
                        ratio_max=max(ratios),
                        method_seconds=statistics.median(per_ess["ours"]),
                        baseline_seconds=statistics.median(per_ess[base]),
                        repeats=repeats,
                        unit="s/ESS",
                        note=(
                            f"{ours:.1f} vs {theirs:.1f} ESS/s; posterior means "
                            f"{_z(moments['ours'], moments[base]):.2f} MCSE apart (max)"
                        ),
                    )
                )
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    from benchmarks._harness import markdown_table

    only = sys.argv[sys.argv.index("--case") + 1] if "--case" in sys.argv else None
    print(markdown_table(run(quick="--quick" in sys.argv, case=only)))
