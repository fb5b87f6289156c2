"""Every topic module is ordinary Pyro: Pyro's own machinery runs it unchanged.

For each topic module (built as a user builds it: default dtype, no ``.double()``), on
float32 and on float64 data:

* ``pyro.infer.SVI`` with a ``pyro.optim`` optimizer and ``Trace_ELBO`` or
  ``TraceMeanField_ELBO`` lowers the loss over a few dozen steps (measured with the same
  draws before and after: common random numbers), and steps every parameter the model and
  guide read;
* ``Predictive`` draws new observations of the right shape from the model;
* ``MCMC(NUTS(m.model))`` runs where every parameter carries a prior, and its draws have the
  data's dtype (priors follow the data);
* the autoguides ``AutoNormal``, ``AutoDelta``, ``AutoMultivariateNormal`` and
  ``AutoLowRankMultivariateNormal`` train under ``SVI``.

And the library leaves Pyro's global state alone: importing it changes neither
``pyro.settings`` nor the environment, and two instances of a module never share
parameters under Pyro's own ``SVI`` (which runs with Pyro's default, global parameters).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO, TraceMeanField_ELBO
from pyro.infer.autoguide import (
    AutoDelta,
    AutoLowRankMultivariateNormal,
    AutoMultivariateNormal,
    AutoNormal,
)
from pyro.nn import PyroSample

from ppl_models import autoencoder, bayesian_pca, gaussian, logistic, pca, ppca, regression, vae

N = 120
DTYPES = [torch.float32, torch.float64]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _x(d: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    g = _gen()
    z = torch.randn(N, 2, generator=g, dtype=torch.float64)
    w = torch.randn(2, d, generator=g, dtype=torch.float64)
    return ((z @ w + 0.3 * torch.randn(N, d, generator=g, dtype=torch.float64) + 1).to(dtype),)


def _x1(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    return ((2 * torch.randn(N, generator=_gen(), dtype=torch.float64) + 1).to(dtype),)


def _binary(d: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    return ((torch.rand(N, d, generator=_gen()) < 0.3).to(dtype),)


def _design(dtype: torch.dtype, binary: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen()
    phi = torch.randn(N, 3, generator=g, dtype=torch.float64)
    t = phi @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    t = t + torch.randn(N, generator=g, dtype=torch.float64)
    if binary:
        t = (t > 0).double()
    return phi.to(dtype), t.to(dtype)


@dataclass
class Case:
    make: Callable[[], torch.nn.Module]
    data: Callable[[torch.dtype], tuple[torch.Tensor, ...]]
    # The model's arguments that draw new observations (nothing observed).
    new: Callable[[tuple[torch.Tensor, ...]], tuple[tuple[Any, ...], dict[str, Any]]]
    obs_shape: tuple[int, ...]
    priors: bool = False  # every parameter carries a prior: NUTS applies
    own_guide: bool = True  # the module's guide runs under SVI (else an autoguide does)
    lr: float = 0.02
    # Per-datapoint latents (z_n): a new point's z comes from the prior, not from the
    # guide (which is a posterior over the observed rows' z).
    local: bool = False


def _flat_priors_gaussian() -> torch.nn.Module:
    # The recipe of the docs: priors made of plain floats, set on an instance.
    m = gaussian.Gaussian(event_dim=0)
    m.loc = PyroSample(dist.Normal(0.0, 10.0))
    m.scale = PyroSample(dist.HalfNormal(5.0))
    return m


def _laplace_ppca() -> torch.nn.Module:
    m = ppca.MarginalPPCA(5, 2)
    m.W = PyroSample(dist.Laplace(0.0, 1.0).expand([5, 2]).to_event(2))
    return m


def _x_new(data):
    return (None,), {"num_points": N}


CASES = {
    "gaussian": Case(
        lambda: gaussian.Gaussian(3),
        lambda dt: _x(3, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 3),
    ),
    "gaussian_flat_priors": Case(
        _flat_priors_gaussian, _x1, _x_new, (N,), priors=True, own_guide=False
    ),
    "bayesian_gaussian": Case(
        lambda: gaussian.BayesianGaussian(gaussian.NormalGammaParams(0.0, 1.0, 2.0, 2.0)),
        _x1,
        _x_new,
        (N,),
        priors=True,
    ),
    "regression": Case(
        lambda: regression.LinearRegression(3), _design, lambda d: ((d[0], None), {}), (N,)
    ),
    "bayesian_regression": Case(
        lambda: regression.LinearRegression(3, alpha=1.0, beta_prior=(2.0, 2.0)),
        _design,
        lambda d: ((d[0], None), {}),
        (N,),
        priors=True,
        own_guide=False,
    ),
    "logistic": Case(
        lambda: logistic.LogisticRegression(3),
        lambda dt: _design(dt, binary=True),
        lambda d: ((d[0], None), {}),
        (N,),
    ),
    "bayesian_logistic": Case(
        lambda: logistic.LogisticRegression(3, prior_precision=1.0),
        lambda dt: _design(dt, binary=True),
        lambda d: ((d[0], None), {}),
        (N,),
        priors=True,
        own_guide=False,
    ),
    "pca": Case(lambda: pca.PCA(5, 2), lambda dt: _x(5, dt), None, (N, 5)),
    "autoencoder": Case(
        lambda: autoencoder.Autoencoder(5, 2, hidden=(6,)), lambda dt: _x(5, dt), None, (N, 5)
    ),
    "autoencoder_bernoulli": Case(
        lambda: autoencoder.Autoencoder(5, 2, hidden=(6,), likelihood="bernoulli"),
        lambda dt: _binary(5, dt),
        None,
        (N, 5),
    ),
    "marginal_ppca": Case(
        lambda: ppca.MarginalPPCA(5, 2),
        lambda dt: _x(5, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 5),
    ),
    "laplace_ppca": Case(
        _laplace_ppca,
        lambda dt: _x(5, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 5),
        own_guide=False,
    ),
    "latent_ppca": Case(
        lambda: ppca.LatentPPCA(5, 2),
        lambda dt: _x(5, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 5),
        local=True,
    ),
    "bayesian_pca": Case(
        lambda: bayesian_pca.BayesianPCA(5, 3, alpha_prior=(2.0, 2.0)),
        lambda dt: _x(5, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 5),
        priors=True,
    ),
    "bayesian_pca_latent": Case(
        lambda: bayesian_pca.BayesianPCA(5, 3, alpha_prior=(2.0, 2.0), form="latent"),
        lambda dt: _x(5, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 5),
        local=True,
    ),
    "vae": Case(
        lambda: vae.VAE(5, 2, hidden=(6,)),
        lambda dt: _binary(5, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 5),
        local=True,
    ),
    "vae_normal": Case(
        lambda: vae.VAE(5, 2, hidden=(6,), likelihood="normal"),
        lambda dt: _x(5, dt),
        lambda d: ((None,), {"num_points": N}),
        (N, 5),
        local=True,
    ),
}


def _setup(name: str, dtype: torch.dtype, guide_cls=None):
    case = CASES[name]
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    module = case.make()
    data = case.data(dtype)
    if guide_cls is not None:
        guide = guide_cls(module.model)
    elif case.own_guide:
        guide = module.guide
    else:
        guide = AutoNormal(module.model)
    return case, module, data, guide


def _loss(svi: SVI, data: tuple[Any, ...]) -> float:
    """The loss with fixed draws: the same random numbers before and after training."""
    state = pyro.util.get_rng_state()
    pyro.set_rng_seed(123)
    try:
        return float(svi.evaluate_loss(*data))
    finally:
        pyro.util.set_rng_state(state)


def _parameters(module, guide) -> dict[int, torch.Tensor]:
    params = {id(p): p for p in module.parameters()}
    if isinstance(guide, torch.nn.Module):
        params.update({id(p): p for p in guide.parameters()})
    return params


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("elbo", [Trace_ELBO, TraceMeanField_ELBO])
@pytest.mark.parametrize("name", list(CASES))
def test_pyro_svi_with_pyro_optim_trains_every_topic_module(name, elbo, dtype):
    case, module, data, guide = _setup(name, dtype)
    svi = SVI(module.model, guide, pyro.optim.Adam({"lr": case.lr}), elbo())
    svi.step(*data)  # creates an autoguide's parameters
    before_params = {k: p.detach().clone() for k, p in _parameters(module, guide).items()}
    before = _loss(svi, data)
    for _ in range(40):
        svi.step(*data)
    after = _loss(svi, data)
    # With the same draws on both sides any decrease is the optimisation's; 40 Adam steps
    # lower every one of these losses (measured: by 0.2% to 40%).
    assert after < before, (before, after)
    # Every parameter the pair reads is stepped by pyro.optim: none was missed by Pyro's
    # parameter capture (a guide reading its parameters outside the module's Pyro context
    # would leave them untouched).
    unchanged = [
        k for k, p in _parameters(module, guide).items() if torch.equal(p, before_params[k])
    ]
    assert not unchanged, f"{len(unchanged)} parameter(s) were never stepped"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", [k for k, c in CASES.items() if c.new is not None])
def test_predictive_draws_new_observations(name, dtype):
    case, module, data, guide = _setup(name, dtype)
    svi = SVI(module.model, guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    svi.step(*data)
    args, kwargs = case.new(data)
    predictive = Predictive(
        module.model, guide=None if case.local else guide, num_samples=4, return_sites=["obs"]
    )
    draws = predictive(*args, **kwargs)["obs"]
    assert draws.shape == (4, *case.obs_shape)
    assert bool(torch.isfinite(draws).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", [k for k, c in CASES.items() if c.priors])
def test_pyro_nuts_runs_where_every_parameter_has_a_prior(name, dtype):
    _case, module, data, _ = _setup(name, dtype)
    # A short run (trees of at most 2^5 steps): that Pyro's NUTS runs the model, not how
    # well it mixes, is the point here.
    kernel = NUTS(module.model, max_tree_depth=5)
    mcmc = MCMC(kernel, num_samples=15, warmup_steps=15, disable_progbar=True)
    mcmc.run(*data)
    samples = mcmc.get_samples()
    assert samples
    for site, value in samples.items():
        assert value.shape[0] == 15 and bool(torch.isfinite(value).all()), site
        # Priors follow the data: float64 data give float64 draws.
        assert value.dtype == torch.promote_types(dtype, torch.float32), site


@pytest.mark.parametrize(
    "guide_cls",
    [AutoNormal, AutoDelta, AutoMultivariateNormal, AutoLowRankMultivariateNormal],
    ids=lambda c: c.__name__,
)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "name", ["bayesian_gaussian", "bayesian_regression", "bayesian_logistic", "bayesian_pca"]
)
def test_autoguides_train_the_models_with_priors(name, dtype, guide_cls):
    _case, module, data, guide = _setup(name, dtype, guide_cls)
    svi = SVI(module.model, guide, pyro.optim.Adam({"lr": 0.02}), Trace_ELBO())
    svi.step(*data)
    before = _loss(svi, data)
    for _ in range(40):
        svi.step(*data)
    assert _loss(svi, data) < before


def test_two_instances_never_share_parameters_under_pyros_svi():
    # Pyro's default (global parameters) is on while Pyro's SVI runs: the modules keep
    # their parameters local all the same, so a second instance starts from its own
    # initial values and ends at its own fit.
    assert pyro.settings.get("module_local_params") is False
    (x,) = _x(5, torch.float32)
    a, b = ppca.MarginalPPCA(5, 2), ppca.MarginalPPCA(5, 2)
    start = {k: v.detach().clone() for k, v in b.state_dict().items()}
    svi = SVI(a.model, a.guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(30):
        svi.step(x)
    for k, v in b.state_dict().items():
        assert torch.equal(v, start[k]), k
    svi_b = SVI(b.model, b.guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(30):
        svi_b.step(3 * x)
    assert not torch.allclose(a.params().sigma2, b.params().sigma2)
    assert len(pyro.get_param_store()) == 0  # nothing went to the global store


def test_importing_the_library_changes_no_global_state():
    # In a fresh interpreter: the settings and the environment before and after importing
    # every module of the package (the environment without OMP_WAIT_POLICY, which the
    # test run itself sets).
    code = (
        "import os, pyro, pkgutil, importlib\n"
        "before = (pyro.settings.get(), dict(os.environ))\n"
        "import ppl_models\n"
        "for m in pkgutil.walk_packages(ppl_models.__path__, 'ppl_models.'):\n"
        "    if not m.name.startswith(('ppl_models.cli', 'ppl_models.__main__')):\n"
        "        importlib.import_module(m.name)\n"
        "after = (pyro.settings.get(), dict(os.environ))\n"
        "assert before == after, (before, after)\n"
        "print('unchanged')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "unchanged" in out.stdout


@pytest.fixture(autouse=True)
def _global_params():
    # Pyro's default is what a user's script runs with.
    assert pyro.settings.get("module_local_params") is False
    yield
