"""fit_svi, data_plate and run_nuts: the shared machinery every topic relies on."""

from __future__ import annotations

import math
import os

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.nn import PyroModule, PyroParam
from scipy import stats

from ppl_models import inference
from ppl_models.gaussian import Gaussian, mle
from ppl_models.inference import FitError, FitResult, data_plate, fit_svi
from ppl_models.inference import checkpoint as checkpoint_module
from ppl_models.inference.losses import has_latent_sites


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(1.5, 2.0, size=n))


class Cliff(PyroModule):
    """log p = -(p - 10)^2 for p < 5 and NaN beyond: gradient ascent walks off the cliff."""

    def __init__(self):
        super().__init__()
        self.p = PyroParam(torch.tensor(0.0, dtype=torch.float64))

    def model(self):
        value = torch.where(self.p < 5, -((self.p - 10) ** 2), self.p * float("nan"))
        pyro.factor("f", value)

    def guide(self):
        pass


def test_data_plate_outside_a_fit_is_a_plain_plate():
    with data_plate(7) as idx:
        assert idx.tolist() == list(range(7))


def test_minibatch_loss_is_scaled_to_the_full_data():
    # Inside a minibatch the plate scales the batch log-likelihood by N / B, so that the
    # average over a partition of the data into batches is the full-data loss, exactly.
    x = _data(400)
    g = Gaussian(event_dim=0).double()
    with torch.no_grad():
        g.loc = torch.tensor(0.3, dtype=torch.float64)
        g.scale = torch.tensor(1.7, dtype=torch.float64)
    elbo = Trace_ELBO()
    full = float(elbo.differentiable_loss(g.model, g.guide, x).detach())
    ref = -stats.norm.logpdf(x.numpy(), 0.3, 1.7).sum()
    assert full == pytest.approx(ref, rel=1e-12)
    perm = torch.randperm(400)
    batch_losses = []
    for chunk in perm.split(100):
        with inference.minibatch(400, chunk):
            batch_losses.append(float(elbo.loss(g.model, g.guide, x[chunk])))
        expected = -400 / 100 * stats.norm.logpdf(x[chunk].numpy(), 0.3, 1.7).sum()
        assert batch_losses[-1] == pytest.approx(expected, rel=1e-12)
    assert np.mean(batch_losses) == pytest.approx(full, rel=1e-12)


def test_lbfgs_reaches_the_mle_and_reports_convergence():
    x = _data(1000)
    g = Gaussian(event_dim=0)
    result = fit_svi(g, x, optimizer="lbfgs", num_steps=100, progress=False)
    assert isinstance(result, FitResult)
    assert result.converged and result.num_steps < 100
    assert result.losses.shape == (result.num_steps,)
    ref = mle(x)
    # float64 L-BFGS on a smooth concave log-likelihood: 1e-8 is far inside what it reaches.
    assert float(g.params().loc) == pytest.approx(float(ref.loc), rel=1e-8)
    assert float(g.params().covariance) == pytest.approx(float(ref.covariance), rel=1e-8)
    assert g.loc.dtype == torch.float64  # the module followed the data's dtype


def test_tol_zero_runs_every_step():
    g = Gaussian(event_dim=0)
    result = fit_svi(g, _data(50), num_steps=37, tol=0, progress=False)
    assert result.num_steps == 37 and not result.converged


def test_same_seed_same_minibatch_fit():
    x = _data(300)
    runs = []
    for _ in range(2):
        g = Gaussian(event_dim=0)
        runs.append(fit_svi(g, x, num_steps=60, batch_size=32, seed=5, progress=False).losses)
    np.testing.assert_array_equal(runs[0], runs[1])
    g = Gaussian(event_dim=0)
    other = fit_svi(g, x, num_steps=60, batch_size=32, seed=6, progress=False).losses
    assert not np.array_equal(runs[0], other)


def test_minibatch_fit_approaches_the_mle():
    # Adam on minibatches of 50 out of 2000 with a small final learning rate: the noise of
    # the stochastic gradient leaves the iterate within a few hundredths of a standard
    # deviation of the optimum (the standard error of the mean itself is 2/sqrt(2000)=0.045).
    x = _data(2000, seed=3)
    g = Gaussian(event_dim=0)
    fit_svi(g, x, num_steps=3000, batch_size=50, lr=0.02, seed=0, tol=0, progress=False)
    fit_svi(g, x, num_steps=2000, batch_size=50, lr=0.002, seed=1, tol=0, progress=False)
    ref = mle(x)
    assert abs(float(g.params().loc - ref.loc)) < 0.02
    assert abs(math.sqrt(float(g.params().covariance)) - math.sqrt(float(ref.covariance))) < 0.02


def test_two_modules_keep_separate_parameters():
    a, b = Gaussian(event_dim=0), Gaussian(event_dim=0)
    xa, xb = _data(200) + 5, _data(200, seed=1) * 3 - 5
    fit_svi(a, xa, optimizer="lbfgs", num_steps=50, progress=False)
    fit_svi(b, xb, optimizer="lbfgs", num_steps=50, progress=False)
    for module, x in ((a, xa), (b, xb)):
        assert float(module.params().loc) == pytest.approx(float(mle(x).loc), rel=1e-8)
        assert float(module.params().covariance) == pytest.approx(
            float(mle(x).covariance), rel=1e-8
        )
    assert len(pyro.get_param_store()) == 0  # nothing leaked into the global store


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # the test makes the loss NaN
def test_nonfinite_loss_raises_fit_error_and_keeps_last_finite_parameters():
    m = Cliff()
    with pytest.raises(FitError, match=r"non-finite .* at step \d+") as info:
        fit_svi(m, optimizer="sgd", lr=0.3, num_steps=100, progress=False)
    p = float(m.p.detach())
    assert p < 5  # the restored parameter is on the finite side
    assert info.value.step == len(info.value.losses)
    # The kept parameters are exactly those at which the last finite loss was computed.
    assert -info.value.losses[-1] == pytest.approx(-((p - 10) ** 2), rel=1e-12)


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # the test makes the loss NaN
def test_nonfinite_loss_under_lbfgs_keeps_finite_parameters():
    m = Cliff()
    try:
        fit_svi(m, optimizer="lbfgs", num_steps=50, progress=False)
    except FitError as err:
        assert err.step >= 0
    p = float(m.p.detach())
    assert math.isfinite(p) and p < 5


def test_checkpoint_and_resume_equal_an_uninterrupted_fit(tmp_path):
    x = _data(300)
    straight = Gaussian(event_dim=0)
    r0 = fit_svi(straight, x, num_steps=80, batch_size=64, seed=2, tol=0, progress=False)

    ckpt = tmp_path / "fit.ckpt"
    first = Gaussian(event_dim=0)
    fit_svi(
        first,
        x,
        num_steps=30,
        batch_size=64,
        seed=2,
        tol=0,
        progress=False,
        checkpoint=ckpt,
        checkpoint_every=10,
    )
    resumed = Gaussian(event_dim=0)
    r1 = fit_svi(resumed, x, num_steps=80, batch_size=64, tol=0, progress=False, resume=ckpt)
    assert r1.num_steps == 80
    np.testing.assert_allclose(r1.losses, r0.losses, rtol=1e-12)
    assert float(resumed.params().loc) == pytest.approx(float(straight.params().loc), rel=1e-12)


def test_interrupted_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    x = _data(100)
    ckpt = tmp_path / "fit.ckpt"
    g = Gaussian(event_dim=0)
    fit_svi(g, x, num_steps=5, tol=0, progress=False, checkpoint=ckpt)
    before = torch.load(ckpt, weights_only=True)
    assert before["step"] == 5

    real_save = torch.save

    def crashing_save(obj, f):
        real_save(obj, f)  # a partial write: bytes in the temporary file ...
        f.write(b"garbage")
        raise KeyboardInterrupt("killed while writing")  # ... and the process dies

    monkeypatch.setattr(checkpoint_module.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        fit_svi(
            Gaussian(event_dim=0),
            x,
            num_steps=20,
            tol=0,
            progress=False,
            checkpoint=ckpt,
            checkpoint_every=10,
        )
    monkeypatch.undo()
    after = torch.load(ckpt, weights_only=True)
    assert after["step"] == 5
    assert sorted(os.listdir(tmp_path)) == ["fit.ckpt"]  # no temporary file left behind


def test_separate_autoguide_parameters_are_optimised():
    x = _data(200)
    g = Gaussian(event_dim=0)
    g.loc = pyro.nn.PyroSample(dist.Normal(torch.tensor(0.0), torch.tensor(10.0)))
    guide = AutoNormal(g.model)
    fit_svi(g, x, guide=guide, num_steps=800, lr=0.05, seed=0, tol=0, progress=False)
    fit_svi(
        g, x, guide=guide, num_steps=800, lr=0.005, num_particles=8, seed=1, tol=0, progress=False
    )
    # The guide's mean started at the prior's (0) and must have moved to the posterior mean
    # of loc, N x_bar / sigma^2 / (N / sigma^2 + 1/10^2) with sigma at its fitted value.
    # Posterior sd is sigma / sqrt(N) ~ 0.14; after the small-lr phase the Adam iterate
    # fluctuates by ~lr-sized steps, so a quarter of a posterior sd is a safe bound.
    sigma2 = float(g.scale.detach()) ** 2
    n = len(x)
    post_mean = n * float(x.mean()) / sigma2 / (n / sigma2 + 1 / 100)
    post_sd = (n / sigma2 + 1 / 100) ** -0.5
    assert abs(float(guide.locs.loc) - post_mean) < 0.25 * post_sd
    assert float(guide.scales.loc) == pytest.approx(post_sd, rel=0.2)  # MC noise in the scale


def test_progress_bar_goes_to_stderr(capsys):
    fit_svi(Gaussian(event_dim=0), _data(50), num_steps=20, tol=0, progress=True)
    assert "Gaussian" in capsys.readouterr().err
    fit_svi(Gaussian(event_dim=0), _data(50), num_steps=20, tol=0, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"optimizer": "lbfgs", "batch_size": 10}, ValueError, "lbfgs.*batch_size"),
        ({"optimizer": "newton"}, ValueError, "optimizer must be one of"),
        ({"num_steps": 0}, ValueError, "num_steps must be an integer >= 1"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"lr": -1.0}, ValueError, "lr must be positive"),
        ({"tol": -1.0}, ValueError, "tol must be positive"),
        ({"loss": "kl"}, ValueError, "loss must be one of"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fit_svi(Gaussian(event_dim=0), _data(50), progress=False, **kwargs)


def test_bad_data():
    # A list enters like an array (the library's one input rule); a string does not.
    with pytest.raises(TypeError, match=r"data\[0\] must be a torch tensor"):
        fit_svi(Gaussian(event_dim=0), "1.0 2.0", progress=False)
    bad = _data(50)
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        fit_svi(Gaussian(event_dim=0), bad, progress=False)
    with pytest.raises(ValueError, match="x must have 3 columns"):
        fit_svi(Gaussian(3), torch.zeros(10, 2), progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_follows_the_data_to_the_gpu():
    x = _data(500).cuda()
    g = Gaussian(event_dim=0)
    fit_svi(g, x, optimizer="lbfgs", num_steps=50, progress=False)
    assert g.params().loc.device.type == "cuda"
    assert float(g.params().loc) == pytest.approx(float(x.mean()), rel=1e-8)


def test_maximum_likelihood_shortcut_only_without_latent_sites():
    # With no latent variable the ELBO is the log-likelihood, which fit_svi computes from
    # one model trace; any latent site (a prior) must keep the full ELBO.
    x = _data(30)
    g = Gaussian(event_dim=0).double()
    assert not has_latent_sites(g.model, g.guide, (x,), {})
    g.loc = pyro.nn.PyroSample(dist.Normal(torch.tensor(0.0), torch.tensor(10.0)))
    assert has_latent_sites(g.model, AutoNormal(g.model), (x,), {})


# --- early stopping on held-out data (owned by the VAE topic) ---


def test_early_stopping_stops_and_restores_the_best_parameters():
    # Training data centred at 3, validation data at -1: from loc = 0 every Adam step on
    # the training loss moves loc away from the validation optimum, so the first validation
    # is the best and `patience` validations later the fit stops.
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(3.0, 1.0, size=200))
    x_val = torch.from_numpy(rng.normal(-1.0, 1.0, size=50))
    g = Gaussian(event_dim=0).double()
    fit = fit_svi(
        g,
        x,
        validation=(x_val,),
        validate_every=10,
        patience=3,
        lr=0.05,
        num_steps=1000,
        tol=0,
        progress=False,
    )
    assert fit.stopped_early and not fit.converged
    assert fit.num_steps == 40 and fit.val_steps.tolist() == [10, 20, 30, 40]
    assert fit.best_step == 10 and np.all(np.diff(fit.val_losses) > 0)
    # The restored parameters are those after 10 steps: a fresh fit stopped there has them.
    ref = Gaussian(event_dim=0).double()
    fit_svi(ref, x, lr=0.05, num_steps=10, tol=0, progress=False)
    assert g.params().loc == ref.params().loc and g.params().covariance == ref.params().covariance
    # The recorded validation loss at the best step is a fresh evaluation per data point,
    # recorded times N, the unit of the training losses (float64, same computation: equal
    # to rounding).
    fresh = inference.evaluate_loss(g, x_val)
    assert fit.num_data == 200
    assert fresh * 200 == pytest.approx(fit.val_losses[0], rel=1e-13)
    exact = -stats.norm.logpdf(
        x_val.numpy(), float(g.params().loc), math.sqrt(float(g.params().covariance))
    ).mean()
    assert fresh == pytest.approx(exact, rel=1e-12)


def test_validation_without_patience_runs_on_and_restore_is_optional():
    x = _data(100)
    x_val = _data(40, seed=1)
    g = Gaussian(event_dim=0).double()
    fit = fit_svi(
        g,
        x,
        validation=(x_val,),
        validate_every=25,
        num_steps=100,
        tol=0,
        restore_best=False,
        progress=False,
    )
    assert fit.num_steps == 100 and not fit.stopped_early
    assert fit.val_steps.tolist() == [25, 50, 75, 100]
    assert fit.best_step == int(fit.val_steps[np.argmin(fit.val_losses)])
    # Without restore_best the module keeps its last parameters.
    per_point = fit.val_losses[-1] / fit.num_data
    assert inference.evaluate_loss(g, x_val) == pytest.approx(per_point, rel=1e-13)
    # FitResult keeps working positionally and without the new fields.
    plain = fit_svi(Gaussian(event_dim=0).double(), x, num_steps=5, tol=0, progress=False)
    assert plain.val_losses.size == 0 and plain.best_step is None and not plain.stopped_early
    _losses, num_steps, _converged, _seconds = plain[:4]
    assert num_steps == 5


def test_validation_default_interval_is_one_epoch():
    x = _data(100)
    g = Gaussian(event_dim=0).double()
    fit = fit_svi(g, x, validation=(x[:30],), batch_size=32, num_steps=12, tol=0, progress=False)
    assert fit.val_steps.tolist() == [4, 8, 12]  # ceil(100 / 32) = 4 steps per epoch


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"validation": torch.zeros(5)}, TypeError, "validation must be a tuple"),
        ({"validation": (None,)}, ValueError, "validation must hold at least one tensor"),
        ({"validation": (torch.zeros(5),), "patience": 0}, ValueError, "patience must be"),
        ({"validation": (torch.zeros(5),), "validate_every": 0}, ValueError, "validate_every"),
        ({"validation": (torch.tensor([0.0, float("nan")]),)}, ValueError, "finite"),
    ],
)
def test_bad_validation_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fit_svi(Gaussian(event_dim=0), _data(20), num_steps=2, progress=False, **kwargs)
