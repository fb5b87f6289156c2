r"""The one training loop (:func:`fit_svi`), the NUTS runner (:func:`run_nuts`) and the
plate every topic declares its data in (:func:`data_plate`).

Stochastic variational inference maximises the evidence lower bound

.. math::

    \mathcal{L}(\theta, \phi)
    = \mathbb{E}_{q_\phi(z)}\left[\log p_\theta(x, z) - \log q_\phi(z)\right]
    \le \log p_\theta(x),

by gradient steps on :math:`-\mathcal{L}` (the "loss"). Three special cases cover every
topic of the library:

* an **empty guide** (no latent variables): :math:`\mathcal{L} = \log p_\theta(x)`, so SVI
  *is* maximum likelihood, and a deterministic optimiser such as L-BFGS applies;
* a **point-mass guide** (:class:`pyro.infer.autoguide.AutoDelta`): MAP estimation;
* a **Gaussian guide**: variational Bayes.

With minibatches of size :math:`B` out of :math:`N` data points the likelihood term is
scaled by :math:`N / B`, which keeps the gradient an unbiased estimate of the full one.
The scaling is done by Pyro's ``plate``: topics declare their data with
:func:`data_plate`, and :func:`fit_svi` tells it which rows the current minibatch holds.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import numbers
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask
from pyro.infer import MCMC, NUTS, Trace_ELBO, TraceMeanField_ELBO
from pyro.infer.autoguide.initialization import init_to_uniform
from pyro.infer.elbo import ELBO
from pyro.infer.mcmc.util import initialize_model
from pyro.nn import PyroModule
from pyro.ops.integrator import potential_grad
from pyro.poutine.util import prune_subsample_sites
from tqdm.auto import tqdm

from ._checks import check_choice, check_int, check_positive

__all__ = [
    "FitError",
    "FitResult",
    "data_plate",
    "evaluate_loss",
    "fit_svi",
    "iid",
    "plate_scale",
    "pyro_method",
    "run_nuts",
]

# Parameters live in their module (DESIGN.md). Pyro's default syncs every active
# PyroModule's parameters with the global parameter store *by name*, so two instances of one
# class (or two autoguides) would silently share their parameters. The library's entry
# points also set this locally (see pyro_method, fit_svi, run_nuts); setting it at import
# covers users' own Predictive or MCMC calls on library modules.
pyro.settings.set(module_local_params=True)

_F = TypeVar("_F", bound=Callable[..., Any])


def pyro_method(fn: _F) -> _F:
    """Decorate a ``PyroModule``'s ``model``/``guide`` so that its Pyro attributes work.

    A ``PyroSample`` attribute becomes a sample site only inside the module's Pyro context
    (what ``pyro.nn.pyro_method`` provides); outside it, reading the attribute silently
    draws a value with no site, and NUTS or an autoguide would see no latent variable.
    This decorator enters that context with module-local parameters, so that two instances
    of a class never share parameters through Pyro's global store.
    """

    @functools.wraps(fn)
    def wrapped(self: PyroModule, *args: Any, **kwargs: Any) -> Any:
        with pyro.settings.context(module_local_params=True), self._pyro_context:
            return fn(self, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


# (full data size, indices of the current minibatch) while fit_svi draws minibatches.
_MINIBATCH: contextvars.ContextVar[tuple[int, torch.Tensor] | None] = contextvars.ContextVar(
    "ppl_models_minibatch", default=None
)


# True while fit_svi evaluates the loss on data it found free of NaN at entry.
_NAN_FREE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ppl_models_nan_free", default=False
)


def has_nan(x: torch.Tensor) -> bool:
    """Whether ``x`` holds a NaN (a missing value, for models that marginalise them).

    Inside :func:`fit_svi`'s loss evaluations on in-memory data that it checked once at
    entry, the answer is known to be ``False`` and is given without looking: scanning every
    minibatch would read a flag back from the device on every step, which on a GPU stalls
    the queue of kernels (one host synchronisation per step per call). Elsewhere (other
    data, a stream whose batches are unseen, a call outside a fit) it scans ``x``.

    >>> has_nan(torch.tensor([1.0, float("nan")]))
    True
    """
    if _NAN_FREE.get():
        return False
    return bool(torch.isnan(x).any())


def data_plate(size: int, name: str = "data", dim: int | None = None) -> pyro.plate:
    """The plate over data points, aware of :func:`fit_svi`'s minibatches.

    Topic models write ``with data_plate(len(x)) as idx:`` where they would write
    ``with pyro.plate("data", len(x)) as idx:``. Outside a minibatched fit the two are the
    same. Inside one, ``x`` is the current minibatch and the plate is
    ``pyro.plate(name, N, subsample=idx)``: Pyro scales the log-likelihood by ``N / len(idx)``
    and ``idx`` holds the rows' positions in the full data (for per-datapoint guide
    parameters).

    Parameters
    ----------
    size : int
        The number of data points passed to the model (the minibatch's length inside a
        minibatched fit).
    name : str
        The plate's name; ``"data"`` by the library's convention.
    dim : int, optional
        The plate's batch dimension (Pyro's default when omitted).

    Examples
    --------
    >>> with data_plate(5) as idx:
    ...     idx.tolist()
    [0, 1, 2, 3, 4]
    """
    current = _MINIBATCH.get()
    if current is not None:
        full_size, idx = current
        if len(idx) == size:
            return pyro.plate(name, full_size, subsample=idx, dim=dim)
    return pyro.plate(name, size, dim=dim)


def plate_scale(size: int) -> float:
    """The factor by which :func:`data_plate` with ``size`` rows scales each data point's
    log-density: :math:`N / B` while :func:`fit_svi` passes a minibatch of :math:`B`
    (= ``size``) rows out of :math:`N`, else 1. For a module's ``reparam_loss``, which
    writes the ELBO without Pyro's plate.

    >>> plate_scale(5)
    1.0
    """
    current = _MINIBATCH.get()
    if current is not None and len(current[1]) == size:
        return current[0] / size
    return 1.0


def iid(fn: dist.Distribution) -> dist.Distribution:
    r"""Mark ``fn`` as shared by every data point of the plate it is sampled in.

    Inside ``data_plate(N)`` Pyro expands a distribution whose parameters do not depend on
    the data point (a Gaussian's :math:`\mu, \sigma`; a regression's noise scale) to
    batch shape ``(N,)``, and torch then evaluates :math:`\log\sigma` and :math:`\sigma^2`
    once per data point, forward and backward. Wrapped by ``iid``, the expansion is lazy:
    the log-density is computed by broadcasting, the same numbers at the cost of a
    hand-written loss (``benchmarks/bench_svi_overhead.py`` measures it).

    >>> import pyro.distributions as dist
    >>> fn = iid(dist.Normal(torch.tensor(0.0), torch.tensor(2.0))).expand([3])
    >>> fn.log_prob(torch.tensor([0.0, 1.0, 2.0])).tolist() == (
    ...     dist.Normal(0.0, 2.0).log_prob(torch.tensor([0.0, 1.0, 2.0])).tolist())
    True
    """
    return dist.ExpandedDistribution(fn, fn.batch_shape)


@contextlib.contextmanager
def _minibatch(full_size: int, idx: torch.Tensor) -> Iterator[None]:
    token = _MINIBATCH.set((full_size, idx))
    try:
        yield
    finally:
        _MINIBATCH.reset(token)


class FitResult(NamedTuple):
    """What :func:`fit_svi` returns.

    Attributes
    ----------
    losses : numpy.ndarray
        The loss (negative ELBO, in nats) at every step, shape ``(num_steps,)``.
    num_steps : int
        The number of steps taken, those before a resume included.
    converged : bool
        Whether the convergence criterion stopped the fit before ``num_steps``.
    seconds : float
        Wall-clock time of this call.
    val_losses : numpy.ndarray
        With ``validation``: the loss per validation data point at every validation,
        shape ``(V,)``; empty otherwise.
    val_steps : numpy.ndarray
        The number of steps taken at each validation, shape ``(V,)``.
    best_step : int or None
        The entry of ``val_steps`` with the lowest validation loss: the parameters the
        module holds at the end when ``restore_best`` (``None`` without validation).
    stopped_early : bool
        Whether ``patience`` validations without improvement stopped the fit.
    """

    losses: np.ndarray
    num_steps: int
    converged: bool
    seconds: float
    val_losses: np.ndarray = np.empty(0)
    val_steps: np.ndarray = np.empty(0, dtype=np.int64)
    best_step: int | None = None
    stopped_early: bool = False


class FitError(RuntimeError):
    """Raised when a fit cannot go on (a non-finite loss); the module keeps its last
    parameters at which the loss was finite.

    Attributes
    ----------
    step : int
        The step (0-based) whose loss was not finite.
    losses : numpy.ndarray
        The finite losses before it.
    """

    def __init__(self, message: str, step: int, losses: np.ndarray):
        super().__init__(message)
        self.step = step
        self.losses = losses


_OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], float]] = {
    "adam": (torch.optim.Adam, 1e-2),
    "adamw": (torch.optim.AdamW, 1e-2),
    "sgd": (torch.optim.SGD, 1e-3),
    "adagrad": (torch.optim.Adagrad, 1e-1),
    "lbfgs": (torch.optim.LBFGS, 1.0),
}


def _make_elbo(loss: str | ELBO, num_particles: int) -> ELBO:
    if isinstance(loss, ELBO):
        return loss
    check_choice(loss, "loss", ["trace", "meanfield"])
    cls = Trace_ELBO if loss == "trace" else TraceMeanField_ELBO
    return cls(num_particles=num_particles, vectorize_particles=num_particles > 1)


def _make_optimizer(
    optimizer: str | Callable[..., torch.optim.Optimizer],
    params: list[torch.nn.Parameter],
    lr: float | None,
) -> torch.optim.Optimizer:
    if callable(optimizer) and not isinstance(optimizer, str):
        return optimizer(params)
    check_choice(optimizer, "optimizer", list(_OPTIMIZERS))
    cls, default_lr = _OPTIMIZERS[optimizer]
    lr = default_lr if lr is None else check_positive(lr, "lr", allow_tensor=False)
    if optimizer == "lbfgs":
        # Strong-Wolfe line search makes L-BFGS robust on log-likelihoods whose scale is
        # far from 1 (sums over many data points); the tolerances are at float64 level so
        # that the optimiser, not its defaults, decides how close we get to the optimum.
        return cls(
            params,
            lr=lr,
            max_iter=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
            history_size=20,
        )
    return cls(params, lr=lr)


def _to_tensor(x: Any, i: int) -> Any:
    if x is None or isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == object or x.dtype.kind not in "biuf":
            raise TypeError(f"data[{i}] must hold real numbers; got dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(
        f"data[{i}] must be a torch tensor, a numpy array or None; got {type(x).__name__}"
    )


def _unique_params(*modules: object) -> list[torch.nn.Parameter]:
    seen: set[int] = set()
    params = []
    for m in modules:
        if isinstance(m, torch.nn.Module):
            for p in m.parameters():
                if id(p) not in seen and p.requires_grad:
                    seen.add(id(p))
                    params.append(p)
    return params


def _has_no_latent_sites(
    model: Callable[..., Any], guide: Callable[..., Any], args: tuple[Any, ...], kwargs: dict
) -> bool:
    """Whether neither the guide nor the model samples a latent variable (plates' index
    sites aside): maximum likelihood, where the ELBO equals the log-likelihood."""
    for fn in (guide, model):
        trace = prune_subsample_sites(poutine.trace(fn).get_trace(*args, **kwargs))
        if any(
            site["type"] == "sample" and not site["is_observed"] for site in trace.nodes.values()
        ):
            return False
    return True


class _NoShortcut(Exception):
    pass


def _reparam_loss(
    model: Callable[..., Any],
    guide: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    analytic_kl: bool,
) -> torch.Tensor:
    """``Trace_ELBO`` (or, with ``analytic_kl``, ``TraceMeanField_ELBO``) with one particle
    for a guide whose every site is reparametrised: the same sum, site by site, without the
    machinery those classes need for the general case (score-function terms, log-density
    caches, a NaN check that synchronises with the device): on the VAE that machinery was
    a third to a half of Pyro's cost over a hand-written loss (``python -m
    benchmarks.bench_vae --profile``). Raises ``_NoShortcut`` where the shortcut does not
    apply; :func:`_shortcut_path` licenses it for a fit."""
    guide_trace = prune_subsample_sites(poutine.trace(guide).get_trace(*args, **kwargs))
    model_trace = prune_subsample_sites(
        poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    )
    total: torch.Tensor | float = 0.0
    latent = 0
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        if site["is_observed"]:
            lp = site["fn"].log_prob(site["value"])
            total = total + scale_and_mask(lp, site["scale"], site["mask"]).sum()
            continue
        g = guide_trace.nodes.get(name)
        if g is None or g["type"] != "sample" or not g["fn"].has_rsample:
            raise _NoShortcut
        latent += 1
        if analytic_kl:
            try:
                kl = kl_divergence(g["fn"], site["fn"])
            except NotImplementedError:
                pass
            else:
                total = total - scale_and_mask(kl, g["scale"], g["mask"]).sum()
                continue
        lp = scale_and_mask(site["fn"].log_prob(site["value"]), site["scale"], site["mask"])
        lq = scale_and_mask(g["fn"].log_prob(g["value"]), g["scale"], g["mask"])
        total = total + lp.sum() - lq.sum()
    if latent != sum(1 for site in guide_trace.nodes.values() if site["type"] == "sample"):
        raise _NoShortcut  # guide sites the model does not have (auxiliary variables)
    if not isinstance(total, torch.Tensor):
        raise _NoShortcut
    return -total


def _shortcut_path(
    module: torch.nn.Module,
    guide: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    elbo: ELBO,
) -> str:
    """How a fit may compute its loss, licensed on one evaluation: ``"module"`` (the
    module's own torch loss, ``module.reparam_loss``), ``"traces"`` (:func:`_reparam_loss`)
    or ``"pyro"`` (the ELBO class itself).

    A shortcut is licensed where it gives Pyro's number with the same draws (to summation
    rounding): one particle of ``Trace_ELBO`` or ``TraceMeanField_ELBO``, the module's own
    guide. Pyro's number is computed once and both shortcuts are compared with it; the
    module's loss is tried only where the traces are licensed (every guide site
    reparametrised). The random streams are left as they were. Used by :func:`fit_svi`
    and by :class:`ppl_models.distributed.ELBOLoss`; :func:`_shortcut_loss` evaluates the
    chosen path."""
    if (
        type(elbo) not in (Trace_ELBO, TraceMeanField_ELBO)
        or elbo.num_particles != 1
        or guide != getattr(module, "guide", None)
    ):
        return "pyro"
    analytic_kl = isinstance(elbo, TraceMeanField_ELBO)
    model = module.model
    rng = pyro.util.get_rng_state()

    def agrees(fast_loss: Callable[[], torch.Tensor]) -> bool:
        pyro.util.set_rng_state(rng)
        try:
            fast = fast_loss()
        except _NoShortcut:
            return False
        if not torch.is_tensor(fast) or (fast.shape, fast.dtype) != (
            reference.shape,
            reference.dtype,
        ):
            return False
        rtol = 1e-10 if reference.dtype == torch.float64 else 1e-5
        return bool(torch.allclose(fast, reference, rtol=rtol, atol=0))

    try:
        with torch.no_grad():
            reference = elbo.differentiable_loss(model, guide, *args, **kwargs)
            if not (torch.is_tensor(reference) and torch.isfinite(reference)):
                return "pyro"
            if not agrees(lambda: _reparam_loss(model, guide, args, kwargs, analytic_kl)):
                return "pyro"
            own = getattr(module, "reparam_loss", None)
            if callable(own) and agrees(lambda: own(*args, analytic_kl=analytic_kl, **kwargs)):
                return "module"
            return "traces"
    finally:
        pyro.util.set_rng_state(rng)


def _shortcut_loss(
    path: str,
    module: torch.nn.Module,
    guide: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    elbo: ELBO,
) -> torch.Tensor:
    """The loss by the ``path`` :func:`_shortcut_path` chose."""
    analytic_kl = isinstance(elbo, TraceMeanField_ELBO)
    if path == "module":
        return module.reparam_loss(*args, analytic_kl=analytic_kl, **kwargs)
    if path == "traces":
        return _reparam_loss(module.model, guide, args, kwargs, analytic_kl)
    return elbo.differentiable_loss(module.model, guide, *args, **kwargs)


def _atomic_save(obj: object, path: Path) -> None:
    """Write ``obj`` with ``torch.save`` to a temporary file beside ``path``, then rename.

    A crash while writing leaves the previous file (if any) whole: ``os.replace`` is atomic
    on POSIX and Windows when both names are in the same folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def is_stream(x: object) -> bool:
    """Whether ``x`` is a stream of data chunks (an iterable such as a ``DataLoader`` or
    :class:`~ppl_models.datasets.NpyChunks`) rather than one array."""
    if isinstance(x, (torch.Tensor, np.ndarray, list, tuple, str, bytes, numbers.Number)):
        return False
    return hasattr(x, "__iter__")


def _stream_size(stream: object, dataset_size: int | None) -> int:
    """N for a stream: ``dataset_size``, else what the stream knows of its data set."""
    if dataset_size is not None:
        return check_int(dataset_size, "dataset_size", minimum=1)
    shape = getattr(stream, "shape", None)  # NpyChunks
    if shape is not None:
        return int(shape[0])
    dataset = getattr(stream, "dataset", None)  # torch.utils.data.DataLoader
    if dataset is not None and hasattr(dataset, "__len__"):
        return len(dataset)
    raise ValueError(
        "dataset_size is required with a stream of minibatches that does not know the size "
        "of its data set (the likelihood is scaled by dataset_size / batch size)"
    )


class _BatchStream:
    """Minibatches from an iterable, restarted at the end of each pass (an epoch), each
    converted and checked like in-memory data."""

    def __init__(self, source: object, validate: Callable[..., Any] | None):
        self.source, self.validate, self.it = source, validate, iter(source)

    def __next__(self) -> tuple[Any, ...]:
        try:
            batch = next(self.it)
        except StopIteration:
            self.it = iter(self.source)
            try:
                batch = next(self.it)
            except StopIteration:
                raise ValueError("the stream of minibatches is empty") from None
        parts = tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
        parts = tuple(_to_tensor(x, i) for i, x in enumerate(parts))
        return tuple(self.validate(*parts)) if self.validate is not None else parts


def fit_svi(
    module: torch.nn.Module,
    *data: Any,
    guide: Callable[..., Any] | None = None,
    loss: str | ELBO = "trace",
    num_particles: int = 1,
    optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
    lr: float | None = None,
    num_steps: int = 2000,
    batch_size: int | None = None,
    dataset_size: int | None = None,
    tol: float | None = None,
    window: int | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: str | os.PathLike[str] | None = None,
    validate_every_step: bool = False,
    validation: tuple[Any, ...] | None = None,
    validate_every: int | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    **model_kwargs: Any,
) -> FitResult:
    r"""Fit ``module`` by stochastic variational inference: the library's one training loop.

    Each step computes the loss :math:`-\mathcal{L}` with
    ``elbo.differentiable_loss(model, guide, *batch)``, back-propagates, and steps a torch
    optimizer over the parameters of the module (and of ``guide`` if it is a separate
    module).

    Parameters
    ----------
    module : PyroModule
        A topic module with ``model(*data)`` and ``guide(*data)`` methods. It is moved to
        the device and floating dtype of the first floating data tensor.
    *data : torch.Tensor or numpy.ndarray or None, or one stream of minibatches
        Positional arguments of ``model`` and ``guide``. Tensors whose first dimension
        equals the first one's length are sliced into minibatches. Or a single iterable of
        minibatches (a ``torch.utils.data.DataLoader``, including one over a memory-mapped
        file larger than memory, or :func:`ppl_models.datasets.open_npy`), each a tensor or
        a tuple of the model's positional arguments, read in turn and again from the start
        after each pass; nothing but the current minibatch is held. A stream gives rows
        without their indices, so guides with per-datapoint parameters need in-memory data.
    guide : callable, optional
        The guide; ``module.guide`` by default. An autoguide (a ``PyroModule``) has its
        parameters optimised along with the module's.
    loss : {"trace", "meanfield"} or pyro.infer.ELBO
        ``Trace_ELBO`` (Monte-Carlo KL) or ``TraceMeanField_ELBO`` (analytic KL where
        available), or any ELBO instance.
    num_particles : int
        Samples of the guide per step (vectorised).
    optimizer : {"adam", "adamw", "sgd", "adagrad", "lbfgs"} or callable
        A name, or a function from a parameter list to a ``torch.optim.Optimizer``.
        ``"lbfgs"`` suits deterministic objectives (maximum likelihood with the empty guide)
        and refuses minibatches.
    lr : float, optional
        Learning rate; 1e-2 for Adam, 1.0 for L-BFGS (its line search scales the step).
    num_steps : int
        The most steps to take (in total, counting those before a ``resume``).
    batch_size : int, optional
        Minibatch size; the full data when omitted. Minibatches are drawn without
        replacement, a new permutation every epoch.
    dataset_size : int, optional
        :math:`N` when ``data`` is a stream of minibatches whose size it does not tell (a
        ``DataLoader`` over a sized dataset and :func:`ppl_models.datasets.open_npy` tell
        it). Each minibatch of :math:`B` rows then scales the likelihood by :math:`N / B`.
    tol : float, optional
        Convergence threshold on the relative change of the smoothed loss: the fit stops
        when ``|m_k - m_{k-1}| <= tol * max(|m_k|, 1)``, where ``m_k`` is the mean loss
        over the k-th window of ``window`` steps. Defaults: ``1e-10`` with ``window=1``
        for L-BFGS (a deterministic objective; each step is up to 20 iterations), else
        ``1e-6`` with ``window=100``. ``tol=0`` runs all ``num_steps``.
    window : int, optional
        Steps per smoothing window (see ``tol``).
    seed : int, optional
        Seeds torch, numpy and Python's ``random`` through ``pyro.set_rng_seed``.
    progress : bool, optional
        Show a progress bar; by default only when standard error is a terminal.
    checkpoint : path, optional
        Write the module, guide and optimizer state there every ``checkpoint_every`` steps
        and at the end, atomically (a temporary file, then a rename).
    checkpoint_every : int
        Steps between checkpoints.
    resume : path, optional
        Continue from a checkpoint written by an earlier call (same module class, guide
        and optimizer).
    validate_every_step : bool
        Keep Pyro's validation (distribution arguments, supports, site shapes), when it is
        enabled, on every step. By default it runs on the first evaluation only: the data
        and the shapes do not change between steps, the checks cost up to half of a small
        model's step, and a parameter that turns invalid later shows up as a non-finite
        loss, which raises ``FitError`` all the same. It also keeps Pyro's ELBO classes on
        every step: by default, with ``loss="trace"`` or ``"meanfield"``, one particle,
        the module's own guide and every guide site reparametrised (an amortized guide),
        the loss is summed site by site from one guide trace and the replayed model, once
        the first evaluation has shown that this sum is Pyro's number for the same draws.
        A module may go further with a method ``reparam_loss(*data, analytic_kl, **kwargs)``
        that writes the same one-particle loss in plain torch (:meth:`VAE.reparam_loss
        <ppl_models.vae.VAE.reparam_loss>`): it replaces the traces under the same
        licence, checked on the first evaluation against Pyro's ELBO with the same draws.
    validation : tuple, optional
        Held-out data, a tuple like ``data`` (e.g. ``(x_val,)``), for early stopping. Every
        ``validate_every`` steps the loss is evaluated on it without gradient, per data
        point (so that it compares across sizes) and with the same seeded draws every time
        (:func:`evaluate_loss` with ``seed``, or 0), so that validations differ only by the
        parameters. The parameters (module and guide) with the lowest validation loss are
        kept and, with ``restore_best``, put back at the end.
    validate_every : int, optional
        Steps between validations: one epoch with ``batch_size``, else 100.
    patience : int, optional
        Stop after this many validations in a row without a new lowest validation loss;
        never by default.
    restore_best : bool
        Put back the parameters of the best validation at the end (``validation`` only).
    **model_kwargs
        Keyword arguments passed to ``model`` and ``guide``.

    Returns
    -------
    FitResult
        ``(losses, num_steps, converged, seconds, val_losses, val_steps, best_step,
        stopped_early)``.

    Raises
    ------
    FitError
        If the loss becomes non-finite; the parameters are restored to the last step whose
        loss was finite.

    Examples
    --------
    >>> import torch
    >>> from ppl_models.gaussian import Gaussian, mle
    >>> x = torch.randn(500, dtype=torch.float64) * 2 + 1
    >>> m = Gaussian(event_dim=0)
    >>> result = fit_svi(m, x, optimizer="lbfgs", num_steps=50, progress=False)
    >>> bool(torch.allclose(m.params().loc, mle(x).loc, rtol=1e-6))
    True
    """
    start_time = time.perf_counter()
    num_steps = check_int(num_steps, "num_steps", minimum=1)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    num_particles = check_int(num_particles, "num_particles", minimum=1)
    guide = module.guide if guide is None else guide
    validate = getattr(module, "validate_data", None)
    stream = None
    if len(data) == 1 and is_stream(data[0]):
        if batch_size is not None:
            raise ValueError(
                "batch_size must be None with a stream: its batches are the minibatches"
            )
        stream_size = _stream_size(data[0], dataset_size)
        stream = _BatchStream(data[0], validate)
        data = next(stream)  # the first minibatch: device, dtype and the first evaluation
    else:
        data = tuple(_to_tensor(x, i) for i, x in enumerate(data))
        if validate is not None:
            data = tuple(validate(*data))

    tensors = [x for x in data if isinstance(x, torch.Tensor)]
    floating = [x for x in tensors if x.is_floating_point()]
    if floating:
        module.to(device=floating[0].device, dtype=floating[0].dtype)
        if isinstance(guide, torch.nn.Module):
            guide.to(device=floating[0].device, dtype=floating[0].dtype)
    device = tensors[0].device if tensors else torch.device("cpu")

    n = tensors[0].shape[0] if tensors and tensors[0].ndim > 0 else None
    if stream is not None:
        if optimizer == "lbfgs":
            raise ValueError(
                "optimizer='lbfgs' needs a deterministic objective; a stream of minibatches "
                "makes the loss stochastic"
            )
        n = stream_size
    if batch_size is not None:
        if n is None:
            raise ValueError("batch_size needs data with a first (data point) dimension")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if optimizer == "lbfgs":
            raise ValueError(
                "optimizer='lbfgs' needs a deterministic objective; it cannot be used with "
                f"batch_size={batch_size} (minibatches make the loss stochastic)"
            )
        if batch_size >= n:
            batch_size = None
    is_lbfgs = optimizer == "lbfgs"
    if window is None:
        window = 1 if is_lbfgs else 100
    window = check_int(window, "window", minimum=1)
    if tol is None:
        tol = 1e-10 if is_lbfgs else 1e-6
    elif tol != 0:
        tol = check_positive(tol, "tol", allow_tensor=False)

    if seed is not None:
        pyro.set_rng_seed(check_int(seed, "seed", minimum=0))

    elbo = _make_elbo(loss, num_particles)

    val_data: tuple[Any, ...] = ()
    if validation is not None:
        val_data = _check_validation(validation, validate, floating[0] if floating else None)
        if validate_every is None:
            if stream is not None:
                validate_every = -(-n // len(data[0]))  # one pass of the stream
            else:
                validate_every = 100 if batch_size is None else -(-n // batch_size)
        validate_every = check_int(validate_every, "validate_every", minimum=1)
        if patience is not None:
            patience = check_int(patience, "patience", minimum=1)
    val_seed = 0 if seed is None else seed
    val_losses: list[float] = []
    val_steps: list[int] = []
    best: list[torch.Tensor] | None = None
    best_step: int | None = None
    stopped_early = False

    def batch_args(idx: torch.Tensor | None) -> tuple[Any, ...]:
        if idx is None:
            return data
        return tuple(
            x[idx] if isinstance(x, torch.Tensor) and x.ndim > 0 and x.shape[0] == n else x
            for x in data
        )

    # In-memory data are checked for NaN once, here, rather than by the models per step
    # (has_nan); a stream's batches are not known in advance.
    nan_free = stream is None and not any(bool(torch.isnan(x).any()) for x in floating)
    exact_ml = False  # decided after the first evaluation (see below)
    path = "pyro"  # likewise: a licensed shortcut (_shortcut_path)

    def compute_loss(args: tuple[Any, ...]) -> torch.Tensor:
        token = _NAN_FREE.set(nan_free)
        try:
            if exact_ml:
                # No latent variable anywhere: the ELBO is the log-likelihood itself, and
                # one trace of the model gives it without tracing and replaying a guide.
                trace = poutine.trace(module.model).get_trace(*args, **model_kwargs)
                return -trace.log_prob_sum()
            return _shortcut_loss(path, module, guide, args, model_kwargs, elbo)
        except ValueError as err:
            # With Pyro's validation on, a diverging fit shows up as a distribution refusing
            # NaN/inf parameters rather than as a NaN loss: report it the same way.
            if "found invalid values" not in str(err):
                raise
            return torch.tensor(float("nan"))
        finally:
            _NAN_FREE.reset(token)

    # One evaluation creates lazily initialised parameters (autoguides) before the
    # optimizer collects them; under no_grad it costs one forward pass.
    # It runs inside the minibatch context like every step, so that data_plate gives the
    # models the full size and the rows' indices (per-datapoint guide parameters).
    first_idx = None if batch_size is None else torch.arange(batch_size, device=device)
    if stream is not None:
        # A stream gives rows, not their indices: the plate scales by N / B, and a
        # per-datapoint guide (which needs the indices) cannot be fitted on a stream.
        first_idx = torch.arange(len(data[0]), device=device)
    with (
        torch.no_grad(),
        pyro.settings.context(module_local_params=True),
        _minibatch(n, first_idx) if first_idx is not None else contextlib.nullcontext(),
    ):
        first_args = batch_args(first_idx)
        first = compute_loss(first_args)
        if isinstance(loss, str) and guide == getattr(module, "guide", None):
            # The probe runs the model and guide once more; it must not move the random
            # streams, or a fit's draws would depend on whether the probe ran.
            rng = pyro.util.get_rng_state()
            exact_ml = _has_no_latent_sites(module.model, guide, first_args, model_kwargs)
            if exact_ml:
                # The shortcut must be the same number as the ELBO it replaces.
                check = compute_loss(first_args)
                if not torch.allclose(check, first, rtol=1e-10, atol=0, equal_nan=True):
                    exact_ml = False
            elif not validate_every_step:
                path = _shortcut_path(module, guide, first_args, model_kwargs, elbo)
            pyro.util.set_rng_state(rng)
    params = _unique_params(module, guide)
    if not params:
        raise ValueError("module (and guide) have no parameters to fit")
    optim = _make_optimizer(optimizer, params, lr)
    # A callable may build an L-BFGS too; its step() needs the closure.
    is_lbfgs = is_lbfgs or isinstance(optim, torch.optim.LBFGS)

    losses: list[float] = []
    start_step = 0
    if resume is not None:
        state = torch.load(Path(resume), map_location=device, weights_only=False)
        module.load_state_dict(state["module"])
        if isinstance(guide, torch.nn.Module) and state.get("guide") is not None:
            guide.load_state_dict(state["guide"])
        optim.load_state_dict(state["optimizer"])
        losses = list(state["losses"])
        start_step = int(state["step"])
        if state.get("rng") is not None:
            pyro.util.set_rng_state(state["rng"])

    def save(path: Path, step: int) -> None:
        _atomic_save(
            {
                "module": module.state_dict(),
                "guide": guide.state_dict() if isinstance(guide, torch.nn.Module) else None,
                "optimizer": optim.state_dict(),
                "losses": losses,
                "step": step,
                "rng": pyro.util.get_rng_state(),
                "minibatch": None if perm is None else (perm, cursor),
            },
            path,
        )

    # Module-local parameters for autoguides too (pyro_method covers the module's own).
    settings = pyro.settings.context(module_local_params=True)
    validation = contextlib.nullcontext() if validate_every_step else pyro.validation_enabled(False)
    last_good = [p.detach().clone() for p in params]
    trial = [p.detach().clone() for p in params] if is_lbfgs else []
    perm, cursor = None, 0
    if resume is not None and batch_size is not None and state.get("minibatch") is not None:
        perm, cursor = state["minibatch"]  # continue the interrupted epoch where it was
    elif batch_size is not None:
        perm = torch.randperm(n, device=device)
    converged = False
    bar = tqdm(
        total=num_steps,
        initial=start_step,
        disable=(None if progress is None else not progress),
        desc=type(module).__name__,
        unit="step",
        leave=False,
    )
    # Full-data steps still go through the plate with explicit indices, made once here:
    # pyro.plate would otherwise build torch.arange(N) on every step.
    all_rows = torch.arange(n, device=device) if n and stream is None else None
    stream_rows: dict[int, torch.Tensor] = {}
    first_batch = data if stream is not None else None
    nullctx = contextlib.nullcontext()
    update_every = max(1, num_steps // 200)
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    step = start_step
    try:
        with validation, settings:
            for step in range(start_step, num_steps):
                idx = None
                if batch_size is not None:
                    if cursor + batch_size > n:
                        perm, cursor = torch.randperm(n, device=device), 0
                    idx = perm[cursor : cursor + batch_size]
                    cursor += batch_size
                if stream is not None:
                    # The first minibatch, already drawn for the set-up, is the first step's.
                    args = first_batch if first_batch is not None else next(stream)
                    first_batch = None
                    args = tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in args)
                    b = len(args[0])
                    idx = stream_rows.get(b)
                    if idx is None:
                        idx = stream_rows[b] = torch.arange(b, device=device)
                else:
                    args = batch_args(idx)
                with _minibatch(n, all_rows if idx is None else idx) if n else nullctx:
                    if is_lbfgs:

                        def closure(args: tuple[Any, ...] = args) -> torch.Tensor:
                            optim.zero_grad()
                            value = compute_loss(args)
                            if torch.isfinite(value):
                                value.backward()
                            return value.detach()

                        # L-BFGS evaluates and steps inside one call: keep the parameters it
                        # starts from, and promote them to last_good once their loss (the
                        # value step() returns) proves finite.
                        with torch.no_grad():
                            for s, p in zip(trial, params, strict=True):
                                s.copy_(p)
                        value = float(optim.step(closure))
                        if not math.isfinite(value):
                            _fail(step, value, losses, params, last_good)
                        last_good, trial = trial, last_good
                    else:
                        optim.zero_grad()
                        value_t = compute_loss(args)
                        value = float(value_t.detach())
                        if not math.isfinite(value):
                            _fail(step, value, losses, params, last_good)
                        with torch.no_grad():
                            for s, p in zip(last_good, params, strict=True):
                                s.copy_(p)
                        value_t.backward()
                        optim.step()
                losses.append(value)
                if (step + 1) % update_every == 0:
                    bar.update(step + 1 - bar.n)
                    bar.set_postfix(loss=f"{value:.6g}", refresh=False)
                if ckpt_path is not None and (step + 1) % checkpoint_every == 0:
                    save(ckpt_path, step + 1)
                if val_data and (step + 1) % validate_every == 0:
                    val_losses.append(
                        _evaluate(elbo, module.model, guide, val_data, model_kwargs, val_seed)
                    )
                    val_steps.append(step + 1)
                    if best is None or val_losses[-1] < min(val_losses[:-1]):
                        best = [p.detach().clone() for p in params]
                        best_step = step + 1
                    elif patience is not None and step + 1 - best_step >= patience * validate_every:
                        stopped_early = True
                        break
                k = len(losses)
                if tol and k >= 2 * window and k % window == 0:
                    new = sum(losses[-window:]) / window
                    old = sum(losses[-2 * window : -window]) / window
                    if abs(new - old) <= tol * max(abs(new), 1.0):
                        converged = True
                        break
            if is_lbfgs and not all(bool(torch.isfinite(p).all()) for p in params):
                # L-BFGS's last line search can leave parameters with no finite loss behind.
                _fail(step, float("nan"), losses, params, last_good)
    finally:
        bar.close()
    if best is not None and restore_best:
        with torch.no_grad():
            for b, p in zip(best, params, strict=True):
                p.copy_(b)
    if ckpt_path is not None:
        save(ckpt_path, len(losses))
    return FitResult(
        losses=np.asarray(losses, dtype=np.float64),
        num_steps=len(losses),
        converged=converged,
        seconds=time.perf_counter() - start_time,
        val_losses=np.asarray(val_losses, dtype=np.float64),
        val_steps=np.asarray(val_steps, dtype=np.int64),
        best_step=best_step,
        stopped_early=stopped_early,
    )


def _check_validation(
    validation: object, validate: Callable[..., Any] | None, like: torch.Tensor | None
) -> tuple[Any, ...]:
    if not isinstance(validation, tuple):
        raise TypeError(
            "validation must be a tuple of data like the positional data, e.g. (x_val,); "
            f"got {type(validation).__name__}"
        )
    data = tuple(_to_tensor(x, i) for i, x in enumerate(validation))
    if not any(isinstance(x, torch.Tensor) and x.ndim > 0 for x in data):
        raise ValueError("validation must hold at least one tensor of data points")
    if validate is not None:
        data = tuple(validate(*data))
    if like is not None:
        data = tuple(
            x.to(device=like.device, dtype=like.dtype)
            if isinstance(x, torch.Tensor) and x.is_floating_point()
            else x
            for x in data
        )
    return data


def _evaluate(
    elbo: ELBO,
    model: Callable[..., Any],
    guide: Callable[..., Any],
    data: tuple[Any, ...],
    kwargs: dict[str, Any],
    seed: int,
) -> float:
    """The loss per data point on ``data`` with the draws of ``seed``; the random streams
    are left as they were, so that a fit's draws do not depend on its validations."""
    n = next(x.shape[0] for x in data if isinstance(x, torch.Tensor) and x.ndim > 0)
    rng = pyro.util.get_rng_state()
    try:
        pyro.set_rng_seed(seed)
        with torch.no_grad(), pyro.settings.context(module_local_params=True):
            return float(elbo.loss(model, guide, *data, **kwargs)) / n
    finally:
        pyro.util.set_rng_state(rng)


def evaluate_loss(
    module: torch.nn.Module,
    *data: Any,
    guide: Callable[..., Any] | None = None,
    loss: str | ELBO = "trace",
    num_particles: int = 1,
    seed: int = 0,
    **model_kwargs: Any,
) -> float:
    r"""The loss (negative ELBO) per data point of ``module`` on ``data``, without gradient,
    with the draws that ``seed`` gives: what :func:`fit_svi` records as a validation loss.

    Parameters
    ----------
    module : PyroModule
        A topic module (``model`` and ``guide`` methods).
    *data : torch.Tensor or numpy.ndarray or None
        The model's positional arguments; the first tensor's length is the number of data
        points. Converted to the module's floating dtype.
    guide : callable, optional
        ``module.guide`` by default.
    loss : {"trace", "meanfield"} or pyro.infer.ELBO
    num_particles : int
    seed : int
        Seeds the draws; the global random streams are restored afterwards.
    **model_kwargs
        Keyword arguments of ``model`` and ``guide``.

    Returns
    -------
    float
        In nats per data point.

    Examples
    --------
    >>> from ppl_models.gaussian import Gaussian
    >>> x = torch.tensor([0.0, 2.0], dtype=torch.float64)
    >>> m = Gaussian(event_dim=0).double()
    >>> round(evaluate_loss(m, x), 6) == round(-float(
    ...     torch.distributions.Normal(m.params().loc, m.params().covariance.sqrt())
    ...     .log_prob(x).mean()), 6)
    True
    """
    num_particles = check_int(num_particles, "num_particles", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    guide = module.guide if guide is None else guide
    like = next((p for p in module.parameters() if p.is_floating_point()), None)
    data = _check_validation(tuple(data), getattr(module, "validate_data", None), like)
    return _evaluate(_make_elbo(loss, num_particles), module.model, guide, data, model_kwargs, seed)


def _fail(
    step: int,
    value: float,
    losses: list[float],
    params: list[torch.nn.Parameter],
    last_good: list[torch.Tensor],
) -> None:
    with torch.no_grad():
        for s, p in zip(last_good, params, strict=True):
            p.copy_(s)
    last = ""
    if losses:
        last = f"; the last finite loss was {losses[-1]:.6g} at step {len(losses) - 1}"
    raise FitError(
        f"the loss became non-finite ({value}) at step {step}{last}. The module keeps the "
        "parameters of the last step with a finite loss. Lower the learning rate, "
        "standardise the data, or check the model's initial values.",
        step=step,
        losses=np.asarray(losses, dtype=np.float64),
    )


def run_nuts(
    module: torch.nn.Module,
    *data: Any,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int | None = 0,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool | None = None,
    init_strategy: Callable[[dict], torch.Tensor] | None = None,
    **model_kwargs: Any,
) -> MCMC:
    r"""Sample the posterior of ``module``'s latent sites with the No-U-Turn Sampler.

    Every parameter of the model must carry a prior (a ``PyroSample``): NUTS samples
    ``p(\theta | x) \propto p(x | \theta) p(\theta)`` and has nothing to do with a
    ``PyroParam``. Chains run one after another where the machine has fewer spare cores
    than chains (Pyro's rule); each starts from its own random initial point.

    Parameters
    ----------
    module : PyroModule
        The topic module; ``module.model(*data)`` is sampled.
    *data : torch.Tensor or numpy.ndarray or None
        The model's positional arguments.
    num_samples, warmup_steps, num_chains : int
        Draws kept per chain, adaptation steps per chain, and chains (at least 2 for
        R-hat).
    seed : int, optional
        Seeds every random generator (``pyro.set_rng_seed``).
    target_accept_prob : float
        Step-size adaptation target.
    max_tree_depth : int
        NUTS's maximum tree depth.
    progress : bool, optional
        Show Pyro's progress bar; by default only when standard error is a terminal.
    init_strategy : callable, optional
        A Pyro per-site initialisation (``init_to_value(values=...)``, ``init_to_median``,
        or a module's own, e.g. ``BayesianPCA.init_strategy``); Pyro's
        ``init_to_uniform`` by default. It is called after ``validate_data``.
    **model_kwargs
        Keyword arguments of ``model``.

    Returns
    -------
    pyro.infer.MCMC
        The finished run; ``get_samples(group_by_chain=True)`` gives ``(chain, draw, ...)``
        arrays and :func:`ppl_models.workflow.to_inference_data` turns it into ArviZ data.
    """
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    warmup_steps = check_int(warmup_steps, "warmup_steps", minimum=0)
    num_chains = check_int(num_chains, "num_chains", minimum=1)
    data = tuple(_to_tensor(x, i) for i, x in enumerate(data))
    validate = getattr(module, "validate_data", None)
    if validate is not None:
        data = tuple(validate(*data))
    floating = [x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()]
    if floating:
        module.to(device=floating[0].device, dtype=floating[0].dtype)
    if seed is not None:
        pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
    options: dict[str, Any] = {}
    make_potential = getattr(module, "nuts_potential", None)
    potential = make_potential(*data) if callable(make_potential) and not model_kwargs else None
    if potential is not None:
        with pyro.settings.context(module_local_params=True):
            init, pyro_potential, transforms, _ = initialize_model(
                module.model,
                model_args=data,
                init_strategy=init_to_uniform if init_strategy is None else init_strategy,
                num_chains=num_chains,
            )
            agrees = _potentials_agree(potential, pyro_potential, init, num_chains)
        if agrees:
            options = {"initial_params": init, "transforms": transforms}
    if options:
        kernel = NUTS(
            potential_fn=potential,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
        )
    else:
        kernel = NUTS(
            module.model,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            jit_compile=False,
            **({} if init_strategy is None else {"init_strategy": init_strategy}),
        )
    show = (os.isatty(2) if hasattr(os, "isatty") else False) if progress is None else progress
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Chains will be drawn sequentially.*")
        mcmc = MCMC(
            kernel,
            num_samples=num_samples,
            warmup_steps=warmup_steps,
            num_chains=num_chains,
            disable_progbar=not show,
            **options,
        )
        with pyro.settings.context(module_local_params=True):
            mcmc.run(*data, **model_kwargs)
    # The module whose posterior this is, for to_inference_data (a kernel built on a
    # potential function does not know the model).
    mcmc.ppl_module = module
    return mcmc


def _potentials_agree(
    potential: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    reference: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    init: dict[str, torch.Tensor],
    num_chains: int,
) -> bool:
    """Whether a module's potential energy and its gradient equal Pyro's (``reference``,
    from tracing the model) at each chain's initial point and at two points around it:
    the licence for :func:`run_nuts` to use it. The perturbations come from a generator
    of their own, so that the check leaves the sampler's random streams alone.

    Tolerance: the two compute the same quantities by different routes (sufficient
    statistics and a Cholesky factor against per-row densities), which differ by rounding
    growing with N (1e-10 relative measured on Bishop's data); the square root of the
    dtype's epsilon (1.5e-8 in float64), relative to the potential and to the largest
    gradient entry, is far above that. It catches a wrong likelihood or a missing term;
    an error in a term that is tiny beside the others (a vague prior's) can pass, which is
    why a module's tests check its potential against Pyro's to 1e-10.
    """
    gen = torch.Generator().manual_seed(0)
    for chain in range(num_chains):
        base = {k: v[chain] if num_chains > 1 else v for k, v in init.items()}
        for step in (0.0, 0.05, 0.2):
            point = {
                k: v + step * torch.randn(v.shape, generator=gen, dtype=v.dtype).to(v.device)
                for k, v in base.items()
            }
            try:
                g_ref, v_ref = potential_grad(
                    reference, {k: v.detach().requires_grad_() for k, v in point.items()}
                )
                g_new, v_new = potential_grad(
                    potential, {k: v.detach().requires_grad_() for k, v in point.items()}
                )
            except (RuntimeError, ValueError):
                return False
            v_ref, v_new = torch.as_tensor(v_ref), torch.as_tensor(v_new)
            if not bool(torch.isfinite(v_ref)):
                return False
            rtol = math.sqrt(torch.finfo(v_ref.dtype).eps)
            if not bool(torch.isclose(v_new, v_ref, rtol=rtol, atol=0)):
                return False
            scale = max(float(g.abs().max()) for g in g_ref.values())
            if set(g_new) != set(g_ref) or any(
                float((g_new[k] - g_ref[k]).abs().max()) > rtol * scale for k in g_ref
            ):
                return False
    return True
