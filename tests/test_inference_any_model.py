"""fit_svi and run_nuts on any Pyro model, as a Pyro user writes it.

The reference is the conjugate posterior of a Gaussian mean with known noise,
mu ~ N(m0, s0^2), x_n ~ N(mu, sigma^2), computed in closed form with numpy:
precision 1/s0^2 + N/sigma^2, mean (m0/s0^2 + sum x / sigma^2) / precision.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import RenyiELBO, TraceGraph_ELBO
from pyro.infer.autoguide import AutoDelta, AutoNormal
from pyro.nn import PyroModule, PyroParam, PyroSample
from torch.distributions import constraints

from ppl_models.inference import (
    HOOKS,
    ConvergenceWarning,
    ScalingError,
    ShortcutError,
    TopicModule,
    fit_svi,
    hook,
    run_nuts,
)
from ppl_models.ppca import LatentPPCA, MarginalPPCA
from ppl_models.vae import VAE

N, SIGMA, M0, S0 = 2000, 2.0, 0.0, 10.0


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).normal(3.0, SIGMA, size=N))


def _posterior(x: torch.Tensor) -> tuple[float, float]:
    xs = x.numpy()
    precision = 1 / S0**2 + len(xs) / SIGMA**2
    return (M0 / S0**2 + xs.sum() / SIGMA**2) / precision, precision**-0.5


def model_fn(x):
    """A user's model: a plain function, a prior, a plain plate of len(x)."""
    mu = pyro.sample("mu", dist.Normal(torch.tensor(M0, dtype=x.dtype), S0))
    with pyro.plate("data", len(x)):
        pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)


def guide_fn(x):
    """A user's guide with pyro.param."""
    loc = pyro.param("q_loc", torch.tensor(0.0, dtype=x.dtype))
    scale = pyro.param("q_scale", torch.tensor(1.0, dtype=x.dtype), constraint=constraints.positive)
    pyro.sample("mu", dist.Normal(loc, scale))


class ForwardModel(PyroModule):
    """Pyro's documented idiom: forward is the model, the prior a PyroSample."""

    def __init__(self):
        super().__init__()
        self.mu = PyroSample(dist.Normal(torch.tensor(M0, dtype=torch.float64), S0))

    def forward(self, x):
        mu = self.mu
        with pyro.plate("data", len(x)):
            return pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)


def _decaying_adam():
    # Minibatch gradients are noisy: Adam's iterates jitter by about its learning rate,
    # and 0.1 posterior sd is 0.0045 here. The decay takes the rate from 0.05 to
    # 0.05 * 0.998^3000 = 1.2e-4 over the fit.
    return pyro.optim.ClippedAdam({"lr": 0.05, "lrd": 0.998})


# Minibatches of 400 rows: the plate says 400, the data set has 2000, so an unscaled fit
# would end at the posterior sd of 400 points, sqrt(5) = 2.24 times the true one. With
# batches of 100 the same schedule ends 6-19% wide (measured over 3 seeds; 2-3% with 10
# particles): the noise of minibatch gradients times the reparametrised draw biases
# Adam's iterate of the guide's scale, while the ELBO's optimum is exact. At 400 rows the
# 3 seeds measured end within 0.07 sd (mean) and 6.4% (sd).
BATCH = 400


# ------------------------------------------------- minibatches of a user's model


@pytest.mark.parametrize("form", ["function", "forward"])
def test_plain_plate_with_minibatches_reaches_the_conjugate_posterior(x, form):
    # The plate says len(x) = B; the data set has N = 2000. Unscaled, the guide would sit
    # at the posterior of B points: fit_svi proves which plate holds the rows and scales
    # it by N / B.
    mean, sd = _posterior(x)
    pyro.set_rng_seed(0)
    if form == "function":
        fit = fit_svi(
            model_fn, x, guide=guide_fn, batch_size=BATCH, num_steps=3000, tol=0,
            optimizer=_decaying_adam(), seed=0, progress=False,
        )  # fmt: skip
        loc = float(pyro.param("q_loc"))
        scale = float(pyro.param("q_scale"))
    else:
        model = ForwardModel()
        guide = AutoNormal(model)
        fit = fit_svi(
            model, x, guide=guide, batch_size=BATCH, num_steps=3000, tol=0,
            optimizer=_decaying_adam(), seed=0, progress=False,
        )  # fmt: skip
        loc = float(guide.locs.mu.detach())
        scale = float(guide.scales.mu.detach())
    assert fit.num_data == N and fit.stopped_by == "fixed"
    # The bounds: the mean within 0.1 posterior sd, the sd within 10%.
    assert abs(loc - mean) < 0.1 * sd, (loc, mean, sd)
    assert abs(scale / sd - 1) < 0.1, (scale, sd)


def test_a_stream_with_a_plain_plate_is_scaled_batch_by_batch(x):
    # Maximum likelihood (no latent site): the first loss is -(N / B) times the first
    # batch's log-likelihood, exactly, for a plain plate as for the library's data_plate.
    class Mean(PyroModule):
        def __init__(self):
            super().__init__()
            self.mu = PyroParam(torch.tensor(0.5, dtype=torch.float64))

        def forward(self, x):
            with pyro.plate("data", len(x)):
                pyro.sample("obs", dist.Normal(self.mu, SIGMA), obs=x)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=300)
    fit = fit_svi(Mean(), loader, num_steps=2, tol=0, progress=False)
    first = x[:300].numpy()
    ll = -0.5 * ((first - 0.5) / SIGMA) ** 2 - math.log(SIGMA) - 0.5 * math.log(2 * math.pi)
    assert fit.losses[0] == pytest.approx(-N / 300 * ll.sum(), rel=1e-12)
    assert fit.loss_path == "likelihood"


def _fit_minibatched(model, x):
    return fit_svi(model, x, guide=AutoNormal(model), batch_size=100, num_steps=5, progress=False)


def test_a_site_outside_every_plate_is_refused_before_the_first_step(x):
    def no_plate(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
        pyro.sample("obs", dist.Normal(mu, SIGMA).expand([len(x)]).to_event(1), obs=x)

    with pytest.raises(ScalingError, match=r"observed site 'obs'.*outside every plate.*plate"):
        _fit_minibatched(no_plate, x)
    # Without minibatches nothing needs scaling: the same model fits.
    fit_svi(no_plate, x, guide=AutoNormal(no_plate), num_steps=3, tol=0, progress=False)


def test_a_model_that_scales_its_plate_itself_is_refused(x):
    def self_scaled(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
        with pyro.plate("data", len(x)), poutine.scale(scale=N / len(x)):
            pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)

    with pytest.raises(ScalingError, match=r"'obs'.*plain plate 'data' is scaled by the model"):
        _fit_minibatched(self_scaled, x)


def test_a_plate_that_claims_another_data_size_is_refused(x):
    def wrong_size(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
        with pyro.plate("data", 5000, subsample=torch.arange(len(x))):
            pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)

    with pytest.raises(ScalingError, match=r"plate 'data'.*5000 points.*fit_svi has 2000"):
        _fit_minibatched(wrong_size, x)


def test_scaling_errors_are_value_errors():
    assert issubclass(ScalingError, ValueError)


# ------------------------------------------------------------ any model, any guide


def test_lazy_autoguide_on_a_function_model_and_a_torch_optimizer_factory(x):
    guide = AutoNormal(model_fn)  # its parameters exist only after a first call
    fit = fit_svi(
        model_fn, x, guide=guide, optimizer=lambda p: torch.optim.Adam(p, lr=0.05),
        num_steps=400, tol=0, seed=0, progress=False,
    )  # fmt: skip
    mean, sd = _posterior(x)
    # AutoNormal samples auxiliary unconstrained sites: Pyro's ELBO computes the loss.
    assert fit.loss_path == "pyro"
    # Full-batch Monte-Carlo gradients: 400 Adam steps at 0.05 bring the mean within a
    # few jitters of the learning rate's size (0.05 / 0.045 ~ 1 sd): bound 2 sd.
    assert abs(float(guide.locs.mu) - mean) < 2 * sd


def test_a_torch_optimizer_instance_and_its_missing_parameters():
    x = torch.randn(200, 4, dtype=torch.float64)
    m = MarginalPPCA(4, 1).double()
    fit = fit_svi(m, x, optimizer=torch.optim.Adam(m.parameters(), lr=0.05), num_steps=20,
                  tol=0, progress=False)  # fmt: skip
    assert fit.losses[-1] < fit.losses[0]
    other = MarginalPPCA(4, 1).double()
    with pytest.raises(ValueError, match="optimizer does not hold"):
        fit_svi(other, x, optimizer=torch.optim.Adam(m.parameters()), num_steps=2, progress=False)
    with pytest.raises(ValueError, match="lr must be None"):
        fit_svi(m, x, optimizer=pyro.optim.Adam({"lr": 0.1}), lr=0.1, num_steps=2)


@pytest.mark.parametrize("elbo", [TraceGraph_ELBO(), RenyiELBO(alpha=0.5, num_particles=2)])
def test_any_pyro_elbo_trains_through_pyro(x, elbo):
    guide = AutoNormal(model_fn)
    fit = fit_svi(model_fn, x[:200], guide=guide, loss=elbo, num_steps=60, tol=0, lr=0.1,
                  seed=0, progress=False)  # fmt: skip
    assert fit.loss_path == "pyro"
    assert np.mean(fit.losses[-10:]) < np.mean(fit.losses[:10])


def test_a_model_with_latent_sites_and_no_guide_is_refused(x):
    with pytest.raises(ValueError, match=r"latent sites and no guide.*AutoNormal"):
        fit_svi(model_fn, x, num_steps=2, progress=False)


@pytest.mark.parametrize("bad", [None, "model", 3, PyroModule])
def test_a_module_that_is_not_a_model_is_a_type_error(bad, x):
    with pytest.raises(TypeError, match="module must be a Pyro model"):
        fit_svi(bad, x, num_steps=2)
    with pytest.raises(TypeError, match="module must be a Pyro model"):
        run_nuts(bad, x, num_samples=2, warmup_steps=2)


def test_checkpoints_resume_a_pyro_optim_and_a_pyro_param_guide(tmp_path, x):
    # A pyro.param guide's parameters and a pyro.optim optimizer's per-parameter state go
    # through the checkpoint; the resumed fit continues the straight one exactly.
    kwargs = dict(guide=guide_fn, batch_size=100, tol=0, progress=False)
    pyro.clear_param_store()
    straight = fit_svi(model_fn, x, num_steps=30, optimizer=pyro.optim.Adam({"lr": 0.05}),
                       seed=1, **kwargs)  # fmt: skip
    ref = float(pyro.param("q_loc"))
    pyro.clear_param_store()
    ckpt = tmp_path / "fit.ckpt"
    fit_svi(model_fn, x, num_steps=12, optimizer=pyro.optim.Adam({"lr": 0.05}), seed=1,
            checkpoint=ckpt, checkpoint_every=4, **kwargs)  # fmt: skip
    pyro.clear_param_store()
    resumed = fit_svi(model_fn, x, num_steps=30, optimizer=pyro.optim.Adam({"lr": 0.05}),
                      resume=ckpt, **kwargs)  # fmt: skip
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-12)
    assert float(pyro.param("q_loc")) == pytest.approx(ref, rel=1e-12)


# -------------------------------------------------------- the loss-path protocol


class _DriftingVAE(VAE):
    """A module whose torch loss agrees with its Pyro model for its first calls only:
    what a subclass that changes the model after construction, or a stale cache inside
    reparam_loss, would do."""

    calls = 0

    def reparam_loss(self, x, *, analytic_kl=False):
        type(self).calls += 1
        value = super().reparam_loss(x, analytic_kl=analytic_kl)
        return value if type(self).calls <= 5 else value * 1.001


def _binary(n=120, d=6):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(0)) < 0.3).double()


def test_a_shortcut_that_drifts_from_pyros_elbo_stops_the_fit():
    _DriftingVAE.calls = 0
    m = _DriftingVAE(6, 2, hidden=(5,)).double()
    with pytest.raises(ShortcutError, match=r"at step 10, the module's own torch loss"):
        fit_svi(m, _binary(), num_steps=50, tol=0, seed=0, progress=False)
    # The licence (1 call), step 0, the re-check before step 1 and steps 1-2 agreed; the
    # drift began at step 3, and the re-check before step 10 caught it.
    _DriftingVAE.calls = 0
    forced = fit_svi(_DriftingVAE(6, 2, hidden=(5,)).double(), _binary(), num_steps=50,
                     tol=0, seed=0, loss_path="pyro", progress=False)  # fmt: skip
    assert forced.loss_path == "pyro" and _DriftingVAE.calls == 0


@pytest.mark.parametrize(
    ("make", "path"),
    [
        (lambda: VAE(6, 2, hidden=(5,)).double(), "module"),
        (lambda: LatentPPCA(6, 2).double(), "traces"),
        (lambda: MarginalPPCA(6, 2).double(), "likelihood"),
    ],
)
def test_fit_result_says_which_loss_path_ran(make, path):
    fit = fit_svi(make(), _binary(), num_steps=3, tol=0, seed=0, progress=False)
    assert fit.loss_path == path
    forced = fit_svi(make(), _binary(), num_steps=3, tol=0, seed=0, loss_path="pyro",
                     progress=False)  # fmt: skip
    assert forced.loss_path == "pyro"
    # The shortcut is Pyro's number with the same draws (float64: summation rounding).
    np.testing.assert_allclose(fit.losses, forced.losses, rtol=1e-10)


def test_the_hooks_are_declared_in_one_protocol():
    assert HOOKS == ("validate_data", "reparam_loss", "nuts_potential", "params")
    v = VAE(6, 2, hidden=(5,))
    assert isinstance(v, TopicModule) and isinstance(model_fn, object)
    assert hook(v, "reparam_loss") is not None and hook(v, "nuts_potential") is None
    with pytest.raises(ValueError, match="name must be one of the hooks"):
        hook(v, "loss")
    with pytest.raises(ValueError, match="loss_path must be 'auto' or 'pyro'"):
        fit_svi(v, _binary(), loss_path="fast")


# ------------------------------------------------------------- stopping short


def test_running_out_of_steps_warns_and_says_so(x):
    m = MarginalPPCA(6, 2).double()
    with pytest.warns(ConvergenceWarning, match="num_steps=5 before the loss converged"):
        fit = fit_svi(m, _binary(), num_steps=5, progress=False)
    assert fit.stopped_by == "num_steps" and not fit.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fixed = fit_svi(m, _binary(), num_steps=5, tol=0, progress=False)
        done = fit_svi(m, _binary(), optimizer="lbfgs", num_steps=200, progress=False)
    assert fixed.stopped_by == "fixed" and done.stopped_by == "converged" and done.converged


def test_the_progress_bar_keeps_its_last_line(capsys):
    m = MarginalPPCA(6, 2).double()
    fit_svi(m, _binary(), num_steps=7, tol=0, progress=True)
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "7/7" in last and "loss=" in last and "time=" in last


# ----------------------------------------------------------------- run_nuts


def test_run_nuts_on_a_function_and_on_a_forward_module_matches_the_posterior(x):
    mean, sd = _posterior(x)
    for model in (model_fn, ForwardModel()):
        mcmc = run_nuts(model, x, num_samples=300, warmup_steps=200, num_chains=2, seed=0,
                        progress=False)  # fmt: skip
        draws = mcmc.get_samples()["mu"].numpy()
        # 600 draws of a near-Gaussian posterior: the Monte-Carlo standard error of the
        # mean is about sd / sqrt(ESS) with ESS >= 200; 4 standard errors.
        assert abs(draws.mean() - mean) < 4 * sd / math.sqrt(200)
        assert abs(draws.std() / sd - 1) < 0.15  # sd of a sd from ESS >= 200: ~5%; 3 se


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"target_accept_prob": 0}, ValueError, "target_accept_prob must lie strictly"),
        ({"target_accept_prob": -1}, ValueError, "target_accept_prob must lie strictly"),
        ({"target_accept_prob": 1.0}, ValueError, "target_accept_prob must lie strictly"),
        ({"target_accept_prob": float("nan")}, ValueError, "target_accept_prob must lie"),
        ({"target_accept_prob": float("inf")}, ValueError, "target_accept_prob must lie"),
        ({"target_accept_prob": "high"}, TypeError, "target_accept_prob must be a number"),
        ({"max_tree_depth": 0}, ValueError, "max_tree_depth"),
        ({"num_samples": 1.5}, TypeError, "num_samples"),
        ({"num_chains": 0}, ValueError, "num_chains"),
    ],
)
def test_run_nuts_refuses_bad_settings_before_sampling(x, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        run_nuts(model_fn, x, **{"num_samples": 5, "warmup_steps": 5, **kwargs})


def test_run_nuts_refuses_a_model_without_latent_sites():
    m = MarginalPPCA(4, 1).double()
    with pytest.raises(ValueError, match=r"no latent site for NUTS.*PyroSample"):
        run_nuts(m, torch.randn(20, 4, dtype=torch.float64), num_samples=5, warmup_steps=5)


# ------------------------------------------------------------------ checkpoints


class _Payload:
    """Unpickling this runs a command: what a hostile checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_checkpoint_is_refused_and_nothing_of_it_runs(tmp_path):
    from ppl_models.distributed import fit_distributed

    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"params": _Payload(marker), "step": 1}, hostile)
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"module": _Payload(marker)}, f)
    x = torch.randn(64, 4, dtype=torch.float64)
    for path in (hostile, tmp_path / "plain.pkl"):
        with pytest.raises(ValueError, match=r"resume: .*not a checkpoint|resume: cannot read"):
            fit_svi(MarginalPPCA(4, 1), x, num_steps=5, resume=path, progress=False)
        with pytest.raises(ValueError, match=r"resume: .*not a checkpoint|resume: cannot read"):
            fit_distributed(MarginalPPCA(4, 1), x, num_steps=5, resume=path, progress=False)
    assert not marker.exists()


def test_unreadable_and_mismatched_checkpoints_name_resume(tmp_path):
    x = torch.randn(64, 4, dtype=torch.float64)
    ckpt = tmp_path / "fit.ckpt"
    fit_svi(MarginalPPCA(4, 1), x, num_steps=4, tol=0, checkpoint=ckpt, progress=False)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:100])
    cases = [
        (tmp_path / "missing.ckpt", MarginalPPCA(4, 1), x, "no checkpoint file"),
        (truncated, MarginalPPCA(4, 1), x, "truncated or corrupt"),
        (ckpt, MarginalPPCA(4, 2), x, "parameters do not match"),
        (ckpt, MarginalPPCA(4, 1), x[:50], "other data"),
    ]
    for path, module, data, match in cases:
        with pytest.raises(ValueError, match=f"resume: .*{match}"):
            fit_svi(module, data, num_steps=8, tol=0, resume=path, progress=False)
    with pytest.raises(ValueError, match="resume: the checkpoint has already taken 4 steps"):
        fit_svi(MarginalPPCA(4, 1), x, num_steps=3, resume=ckpt, progress=False)


def test_checkpoint_paths_are_checked_before_the_first_step_and_stale_files_go(tmp_path):
    x = torch.randn(64, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="checkpoint must be a file path, not a folder"):
        fit_svi(MarginalPPCA(4, 1), x, num_steps=3, checkpoint=tmp_path, progress=False)
    stale = tmp_path / ".fit.ckpt.abc123.tmp"  # left by a writer killed with SIGKILL
    stale.write_bytes(b"partial")
    fit_svi(MarginalPPCA(4, 1), x, num_steps=3, tol=0, checkpoint=tmp_path / "fit.ckpt",
            progress=False)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.ckpt"]


def test_two_autoguides_of_one_class_keep_their_own_parameters(x):
    # Inside fit_svi every module's parameters are its own, even two autoguides whose
    # parameters have the same names in Pyro's global store.
    a, b = AutoDelta(model_fn), AutoDelta(model_fn)
    fit_svi(model_fn, x[:100], guide=a, num_steps=50, tol=0, lr=0.1, progress=False)
    fit_svi(model_fn, -x[:100], guide=b, num_steps=50, tol=0, lr=0.1, progress=False)
    # Read outside a Pyro context: a global-mode call would itself sync with the store.
    assert float(a.mu) > 0 > float(b.mu)
