"""The old spellings of issue 18's renames: each still works for one release, warns with a
``FutureWarning`` that names the new spelling, and gives the new spelling's numbers
(bit for bit, on seeded calls). Passing an old and a new keyword together is a TypeError.

The renames (old -> new):

- ``pca.fit/em(x, n_components=)``, ``pca.PCA(d, n_components=)``,
  ``plots.plot_pca_spectrum(n_components=)``,
  ``distributed.pca_fit_distributed(n_components=)`` -> ``latent_dim=``;
  ``PCA.n_components`` -> ``PCA.latent_dim``; ``PCA.params(x)`` -> ``PCA.principal_axes(x)``
- ``bayesian_pca.BayesianPCA(d, max_latent_dim=)``, ``bayesian_pca.ard_em(x, max_latent_dim=)``
  -> ``latent_dim=``; ``BayesianPCA.max_latent_dim`` -> ``BayesianPCA.latent_dim``
- the number of points drawn or generated -> ``num_points=``: ``model/guide(n=)`` of
  ``Gaussian``, ``BayesianGaussian``, ``BayesianPCA``; ``VAE.model/guide(num=)``;
  ``VAE.sample(n=)``, ``ppca.sample(params, n=)``; ``make_sin_data``, ``make_two_class``,
  ``make_ppca_data``, ``make_bishop_bpca_data``, ``load_mnist``, ``load_vae_data``,
  ``noisy_pooled_digits`` (``n=``)
- the number of Monte-Carlo draws -> ``num_samples=``: ``bayesian_pca.ppca_loo_sweep``,
  ``plots.plot_ppc``, ``plots.plot_predictive_overlay`` (``num_draws=``)
- ``pca.em(...).objective`` (:math:`J`) -> ``-EMResult.log_likelihood`` (one ``EMResult``
  for ``pca.em`` and ``ppca.em``)
- ``inference.pyro_method``, ``ppl_models.pyro_method`` -> ``inference.local_pyro_method``;
  ``workflow.linear_gaussian_loo`` -> ``regression.linear_gaussian_loo``;
  ``distributed.train``, ``distributed.TRAIN_TOPICS`` -> ``cli.train``, ``cli.TRAIN_TOPICS``
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule, PyroSample

from ppl_models import (
    bayesian_pca,
    datasets,
    distributed,
    gaussian,
    inference,
    pca,
    plots,
    ppca,
    vae,
)

N = 12


def _x(n: int = 40, d: int = 5, seed: int = 0) -> torch.Tensor:
    return datasets.make_ppca_data(n, d, 2, seed=seed).x


def _same(a: Any, b: Any) -> None:
    """``a`` and ``b`` are the same numbers (tensors, arrays, figures, containers)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _same(u, v)
    elif type(a).__name__ == "Figure":
        import matplotlib.pyplot as plt

        images = []
        for fig in (a, b):
            fig.canvas.draw()
            images.append(np.asarray(fig.canvas.buffer_rgba()).copy())
            plt.close(fig)
        assert np.array_equal(*images)
    else:
        assert a == b


def _seeded(fn: Callable[[], Any]) -> Callable[[], Any]:
    def call() -> Any:
        pyro.set_rng_seed(0)
        pyro.clear_param_store()
        return fn()

    return call


# ----------------------------------------------------------------------------- fixtures


def _gaussian() -> gaussian.Gaussian:
    return gaussian.Gaussian(2).double()


def _bayesian_gaussian() -> gaussian.BayesianGaussian:
    return gaussian.BayesianGaussian(gaussian.NormalGammaParams(0.0, 1.0, 2.0, 2.0)).double()


def _bpca(**kwargs: Any) -> bayesian_pca.BayesianPCA:
    return bayesian_pca.BayesianPCA(5, 2, alpha_prior=(2.0, 2.0), **kwargs).double()


def _vae() -> vae.VAE:
    return vae.VAE(6, 2, hidden=(8,), likelihood="normal", seed=0).double()


def _ppca_params() -> ppca.PPCAParams:
    return ppca.closed_form(_x(), 2)


def _mnist_folder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Four tiny IDX files (5 train and 5 test images of 28 x 28)."""
    import struct

    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    for stem, count in (("train", 5), ("t10k", 5)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        (folder / f"{stem}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes()
        )
        (folder / f"{stem}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, count) + labels.tobytes()
        )
    return folder


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return _mnist_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def idata():
    """ArviZ data with observed and prior/posterior predictive groups (the module's own
    Normal-Gamma guide, unfitted: the figures only need draws)."""
    from ppl_models.workflow import posterior_predictive, prior_predictive

    x = torch.randn(15, dtype=torch.float64)
    m = _bayesian_gaussian()
    prior = prior_predictive(m, x, num_samples=20, seed=0)
    return posterior_predictive(m, x, guide=m.guide, prior=prior, num_samples=20, num_chains=1)


# ------------------------------------------------------------------- renamed keywords

# id -> (new spelling's call, old spelling's call, the old and the new keyword's names):
# the call takes the keyword's value as its last argument.
KEYWORDS: dict[str, tuple[Callable[..., Any], str, str, Any]] = {
    "pca.fit": (lambda kw: pca.fit(_x(), **kw), "n_components", "latent_dim", 2),
    "pca.em": (lambda kw: pca.em(_x(), max_iter=20, **kw), "n_components", "latent_dim", 2),
    "PCA": (lambda kw: pca.PCA(5, seed=0, **kw).W.detach(), "n_components", "latent_dim", 2),
    "plot_pca_spectrum": (
        lambda kw: plots.plot_pca_spectrum(torch.tensor([4.0, 2.0, 1.0, 0.5]), **kw),
        "n_components",
        "latent_dim",
        2,
    ),
    "pca_fit_distributed": (
        lambda kw: distributed.pca_fit_distributed(_x(), **kw),
        "n_components",
        "latent_dim",
        2,
    ),
    "BayesianPCA": (
        lambda kw: bayesian_pca.BayesianPCA(5, **kw).latent_dim,
        "max_latent_dim",
        "latent_dim",
        3,
    ),
    "ard_em": (
        lambda kw: bayesian_pca.ard_em(_x(), max_iter=20, **kw),
        "max_latent_dim",
        "latent_dim",
        3,
    ),
    "Gaussian.model": (lambda kw: _gaussian().model(None, **kw), "n", "num_points", N),
    "Gaussian.guide": (lambda kw: _gaussian().guide(None, **kw), "n", "num_points", N),
    "BayesianGaussian.model": (
        lambda kw: _bayesian_gaussian().model(None, **kw),
        "n",
        "num_points",
        N,
    ),
    "BayesianGaussian.guide": (
        lambda kw: (
            pyro.poutine.trace(_bayesian_gaussian().guide)
            .get_trace(None, **kw)
            .nodes["mu"]["value"]
        ),
        "n",
        "num_points",
        N,
    ),
    "BayesianPCA.model": (lambda kw: _bpca().model(None, **kw), "n", "num_points", N),
    "BayesianPCA.guide": (
        lambda kw: _bpca(guide="delta").guide(_x(N), **kw),
        "n",
        "num_points",
        N,
    ),
    "VAE.model": (lambda kw: _vae().model(None, **kw), "num", "num_points", N),
    "VAE.guide": (lambda kw: _vae().guide(_x(N, 6), **kw), "num", "num_points", N),
    "VAE.sample": (lambda kw: _vae().sample(seed=0, mean=False, **kw), "n", "num_points", N),
    "ppca.sample": (
        lambda kw: ppca.sample(_ppca_params(), seed=0, return_latent=True, **kw),
        "n",
        "num_points",
        N,
    ),
    "make_sin_data": (lambda kw: datasets.make_sin_data(seed=1, **kw), "n", "num_points", N),
    "make_two_class": (lambda kw: datasets.make_two_class(seed=1, **kw), "n", "num_points", N),
    "make_ppca_data": (
        lambda kw: datasets.make_ppca_data(d=4, latent_dim=2, seed=1, **kw),
        "n",
        "num_points",
        N,
    ),
    "make_bishop_bpca_data": (
        lambda kw: datasets.make_bishop_bpca_data(seed=1, **kw),
        "n",
        "num_points",
        N,
    ),
    "noisy_pooled_digits": (
        lambda kw: datasets.noisy_pooled_digits(seed=1, **kw),
        "n",
        "num_points",
        N,
    ),
    "ppca_loo_sweep": (
        lambda kw: bayesian_pca.ppca_loo_sweep(_x(30, 4), [1], num_steps=3, seed=0, **kw),
        "num_draws",
        "num_samples",
        30,
    ),
}


def _call(fn: Callable[..., Any], kw: dict[str, Any]) -> Any:
    return _seeded(lambda: fn(kw))()


@pytest.mark.filterwarnings("ignore::UserWarning")  # PSIS's k-hat on 30 draws
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(KEYWORDS))
def test_old_keyword_warns_and_gives_the_same_numbers(name):
    fn, old, new, value = KEYWORDS[name]
    expected = _call(fn, {new: value})
    with pytest.warns(FutureWarning, match=rf"\({old}=\.\.\.\) is deprecated.*\({new}=\.\.\.\)"):
        got = _call(fn, {old: value})
    _same(got, expected)


@pytest.mark.parametrize("name", list(KEYWORDS))
def test_old_and_new_keyword_together_is_a_type_error(name):
    fn, old, new, value = KEYWORDS[name]
    with pytest.raises(TypeError, match=rf"got both {old}= .* and {new}="):
        _call(fn, {old: value, new: value})


@pytest.mark.parametrize("fn_name", ["load_mnist", "load_vae_data"])
def test_loaders_old_keyword(mnist, fn_name):
    def call(kw):
        if fn_name == "load_mnist":
            return datasets.load_mnist(mnist, "train", dtype=torch.float64, **kw)
        return datasets.load_vae_data("normal", mnist_path=mnist, **kw)

    expected = call({"num_points": 3})
    assert expected[0].shape[0] == 3
    with pytest.warns(FutureWarning, match=r"n=.*deprecated.*num_points="):
        got = call({"n": 3})
    _same(got, expected)
    with pytest.raises(TypeError, match="got both n="):
        call({"n": 3, "num_points": 3})


@pytest.mark.parametrize("fn_name", ["plot_ppc", "plot_predictive_overlay"])
def test_workflow_plots_old_keyword(idata, fn_name):
    fn = getattr(plots, fn_name)
    expected = fn(idata, num_samples=5, seed=0)
    with pytest.warns(FutureWarning, match=r"num_draws=.*deprecated.*num_samples="):
        got = fn(idata, num_draws=5, seed=0)
    _same(got, expected)
    with pytest.raises(TypeError, match="got both num_draws="):
        fn(idata, num_draws=5, num_samples=5)


def test_positional_calls_do_not_warn():
    """Only the keyword spelling is deprecated: positional counts are the same call."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        a = datasets.make_sin_data(N, seed=0)
        b = ppca.sample(_ppca_params(), N, seed=0)
        c = _vae().sample(N, seed=0)
        d = _seeded(lambda: _gaussian().model(None, N))()
        e = bayesian_pca.BayesianPCA(5, 3)
    assert a[0].shape == (N,) and b.shape == (N, 5) and c.shape == (N, 6)
    assert d.shape == (N, 2) and e.latent_dim == 3


# ------------------------------------------------------------------ renamed attributes


def test_pca_n_components_attribute():
    m = pca.PCA(5, 2)
    with pytest.warns(FutureWarning, match=r"PCA\.n_components.*PCA\.latent_dim"):
        assert m.n_components == m.latent_dim == 2


def test_pca_params_with_data():
    x = _x()
    m = pca.PCA(5, 2, seed=0).double()
    expected = m.principal_axes(x)
    with pytest.warns(FutureWarning, match=r"PCA\.params\(x\).*PCA\.principal_axes\(x\)"):
        got = m.params(x)
    _same(got, expected)


def test_bayesian_pca_max_latent_dim_attribute():
    m = bayesian_pca.BayesianPCA(5, 3)
    with pytest.warns(FutureWarning, match=r"BayesianPCA\.max_latent_dim.*latent_dim"):
        assert m.max_latent_dim == m.latent_dim == 3


def test_em_result_objective_is_minus_the_log_likelihood():
    r = pca.em(_x(), 2, max_iter=20)
    assert pca.EMResult is ppca.EMResult and type(r) is ppca.EMResult
    with pytest.warns(FutureWarning, match=r"EMResult\.objective.*-EMResult\.log_likelihood"):
        j = r.objective
    # J, the mean squared reconstruction error: never increasing, ends at the discarded
    # eigenvalues' sum.
    torch.testing.assert_close(j, -r.log_likelihood, rtol=0, atol=0)
    assert bool((j.diff() <= 1e-9).all())
    assert float(j[-1]) == pytest.approx(float(pca.reconstruction_error(_x(), r.params)), rel=1e-6)


# ---------------------------------------------------------------------- moved names


class _Draw(PyroModule):
    def __init__(self):
        super().__init__()
        self.loc = PyroSample(dist.Normal(0.0, 1.0))


def _decorated_draw(decorator: Callable[..., Any]) -> torch.Tensor:
    class Module(_Draw):
        @decorator
        def model(self):
            return pyro.sample("x", dist.Normal(self.loc, 1.0).expand([N]))

    return _seeded(Module().model)()


def test_pyro_method():
    expected = _decorated_draw(inference.local_pyro_method)
    with pytest.warns(FutureWarning, match=r"pyro_method.*inference\.local_pyro_method"):
        got = _decorated_draw(inference.pyro_method)
    _same(got, expected)
    import ppl_models

    with pytest.warns(FutureWarning, match=r"inference\.local_pyro_method"):
        got = _decorated_draw(ppl_models.pyro_method)
    _same(got, expected)


@pytest.mark.parametrize(
    ("module", "name", "new_module"),
    [
        ("ppl_models.workflow", "linear_gaussian_loo", "ppl_models.regression"),
        ("ppl_models.distributed", "train", "ppl_models.cli"),
        ("ppl_models.distributed", "TRAIN_TOPICS", "ppl_models.cli"),
    ],
)
def test_moved_names(module, name, new_module):
    import importlib

    target = getattr(importlib.import_module(new_module), name)
    with pytest.warns(
        FutureWarning, match=rf"{module}\.{name} is deprecated.*{new_module}\.{name}"
    ):
        got = getattr(importlib.import_module(module), name)
    assert got is target  # the same object, hence the same numbers
