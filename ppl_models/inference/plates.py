r"""The plate over data points and the scaling of minibatches.

With minibatches of :math:`B` rows out of :math:`N` the log-density of every site that
belongs to a data point (the likelihood, and per-datapoint latents such as a VAE's
:math:`z_n`) is multiplied by :math:`N / B`, which keeps the ELBO and its gradient unbiased
estimates of the full-data ones. Pyro does this for a plate that knows both numbers,
``pyro.plate("data", N, subsample=idx)``. This module provides

* :func:`data_plate`, the plate the library's models declare their data in: a plain
  ``pyro.plate`` outside a fit, the subsampled plate inside a minibatched
  :func:`~ppl_models.inference.fit_svi`;
* :func:`plan_scaling`, which proves, for *any* model, that every site that depends on the
  minibatch is scaled by :math:`N/B`, or finds the plain plate whose sites must be
  (:class:`ScalePlates` then does it), or refuses the fit with an error that names the
  site and says what to write;
* :func:`local_pyro_method`, the decorator that gives a ``PyroModule``'s methods their Pyro
  context with module-local parameters, so that Pyro's own ``SVI`` with a ``pyro.optim``
  optimizer sees every parameter and two instances never share one.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer.autoguide.initialization import InitMessenger, init_to_feasible
from pyro.nn import PyroModule
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import prune_subsample_sites

from .._checks import check_int
from .._deprecation import deprecated_alias

__all__ = [
    "ScalePlates",
    "ScalingError",
    "ScalingPlan",
    "data_plate",
    "feasible_trace",
    "has_nan",
    "iid",
    "local_params",
    "local_pyro_method",
    "minibatch",
    "nan_free",
    "plan_scaling",
    "plate_scale",
    "prepare_local",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class _UnconstrainedRefs(Messenger):
    """Give every parameter a Pyro ``param`` site reports an ``unconstrained()`` link.

    Pyro's ``SVI`` collects the parameters to step from the ``param`` sites of a trace, as
    ``site["value"].unconstrained()``. With module-local parameters Pyro reports the
    ``nn.Parameter`` objects of plain ``nn.Module`` children (a network inside a
    ``PyroModule``) without that link, and ``SVI.step`` with a ``pyro.optim`` optimizer
    fails on them (``'Parameter' object has no attribute 'unconstrained'``). An
    unconstrained parameter is its own unconstrained value: the link points to itself,
    as Pyro's global parameter store does for parameters without a constraint.
    ``PyroModule.__getstate__`` drops these links before pickling or copying.
    """

    def _pyro_post_param(self, msg: dict) -> None:
        value = msg["value"]
        if isinstance(value, torch.nn.Parameter):
            ref = value.__dict__.get("unconstrained")
            if ref is None or ref() is not value:
                value.unconstrained = weakref.ref(value)


def _ready(context: Any) -> None:
    # A PyroModule built while module_local_params was off has a context without its
    # local parameter state (Pyro makes it in the context's constructor only when the
    # setting is on), and cannot be entered with the setting on. The state is an empty
    # local store, as Pyro would have made it.
    if not hasattr(context, "param_state"):
        context.param_state = {"params": {}, "constraints": {}}


def prepare_local(*objs: object) -> None:
    """Make every ``PyroModule`` in ``objs`` (and its children) runnable with module-local
    parameters, whatever ``pyro.settings`` said when it was built. The library's calls
    (``fit_svi``, ``run_nuts``, the workflow) run user modules and autoguides in that
    mode, so that two of them never share parameters through the global store."""
    for obj in objs:
        obj = getattr(obj, "__self__", obj)  # a bound method: its module
        if isinstance(obj, torch.nn.Module):
            for m in obj.modules():
                if isinstance(m, PyroModule):
                    _ready(m._pyro_context)


@contextlib.contextmanager
def local_params(*objs: object) -> Iterator[None]:
    """Run the block with module-local parameters (``pyro.settings``'
    ``module_local_params``, for the block only), the ``PyroModule`` objects in ``objs``
    made ready for it (:func:`prepare_local`). Inside, a ``PyroModule`` (an autoguide, a
    user's model) reads and writes its own parameters and never those of another
    module of the same name in Pyro's global parameter store."""
    prepare_local(*objs)
    with pyro.settings.context(module_local_params=True):
        yield


def local_pyro_method(fn: _F) -> _F:
    """Decorate a ``PyroModule``'s ``model``/``guide`` so that it is ordinary Pyro code, with
    module-local parameters: ``pyro.nn.pyro_method`` and more (below). Named apart from
    Pyro's decorator, which it extends (its old name ``pyro_method`` is deprecated).

    * A ``PyroSample`` attribute becomes a sample site only inside the module's Pyro
      context (what ``pyro.nn.pyro_method`` provides); outside it, reading the attribute
      silently draws a value with no site, and NUTS or an autoguide would see no latent
      variable.
    * Parameters are module-local inside the call (``pyro.settings``'
      ``module_local_params``, set for the call only): two instances of a class never
      share parameters through Pyro's global store, whatever the global setting. The
      module's context is entered *without* Pyro's swap of the global parameter store
      (``ParamStoreDict.scope``), which module-local mode makes on entering a module:
      that swap strips the ``unconstrained()`` links of every parameter in the global
      store (an autoguide's, a ``pyro.param`` guide's), and Pyro's ``SVI`` then cannot
      step them. The library's modules declare no ``pyro.param`` of their own, so the
      swap has nothing to keep local.
    * Every parameter site carries the ``unconstrained()`` link that ``pyro.infer.SVI``
      needs to step it with a ``pyro.optim`` optimizer (see :class:`_UnconstrainedRefs`).
    """

    @functools.wraps(fn)
    def wrapped(self: PyroModule, *args: Any, **kwargs: Any) -> Any:
        context = self._pyro_context
        was_local = pyro.settings.get("module_local_params")
        # Pyro's context swaps the parameter store on entry and exit only where
        # module_local_params is on at that moment: enter and leave it with the setting
        # off, and run the body with it on.
        if was_local:
            pyro.settings.set(module_local_params=False)
        context.__enter__()
        try:
            pyro.settings.set(module_local_params=True)
            with _UnconstrainedRefs():
                return fn(self, *args, **kwargs)
        finally:
            pyro.settings.set(module_local_params=False)
            context.__exit__(None, None, None)
            pyro.settings.set(module_local_params=was_local)

    return wrapped  # type: ignore[return-value]


pyro_method = deprecated_alias(
    local_pyro_method,
    "ppl_models.inference.pyro_method",
    "ppl_models.inference.local_pyro_method",
)


# ---------------------------------------------------------------- the library's plate

# (full data size, indices of the current minibatch) while fit_svi draws minibatches.
_MINIBATCH: contextvars.ContextVar[tuple[int, torch.Tensor] | None] = contextvars.ContextVar(
    "ppl_models_minibatch", default=None
)

# True while fit_svi evaluates the loss on data it found free of NaN at entry.
_NAN_FREE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ppl_models_nan_free", default=False
)


@contextlib.contextmanager
def minibatch(full_size: int, idx: torch.Tensor) -> Iterator[None]:
    """Inside this context :func:`data_plate` with ``len(idx)`` rows is the plate of a
    minibatch: ``idx`` are the rows' positions among ``full_size`` data points."""
    token = _MINIBATCH.set((full_size, idx))
    try:
        yield
    finally:
        _MINIBATCH.reset(token)


@contextlib.contextmanager
def nan_free(flag: bool) -> Iterator[None]:
    """Inside this context :func:`has_nan` answers ``False`` without looking when ``flag``:
    the caller has checked the data once."""
    token = _NAN_FREE.set(flag)
    try:
        yield
    finally:
        _NAN_FREE.reset(token)


def has_nan(x: torch.Tensor) -> bool:
    """Whether ``x`` holds a NaN (a missing value, for models that marginalise them).

    Inside :func:`~ppl_models.inference.fit_svi`'s loss evaluations on in-memory data that
    it checked once at entry, the answer is known to be ``False`` and is given without
    looking: scanning every minibatch would read a flag back from the device on every
    step, which on a GPU stalls the queue of kernels (one host synchronisation per step per
    call). Elsewhere (other data, a stream whose batches are unseen, a call outside a fit)
    it scans ``x``.

    >>> has_nan(torch.tensor([1.0, float("nan")]))
    True
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor; got {type(x).__name__}")
    if _NAN_FREE.get():
        return False
    return bool(torch.isnan(x).any())


def data_plate(size: int, name: str = "data", dim: int | None = None) -> pyro.plate:
    """The plate over data points, aware of :func:`~ppl_models.inference.fit_svi`'s
    minibatches.

    Topic models write ``with data_plate(len(x)) as idx:`` where they would write
    ``with pyro.plate("data", len(x)) as idx:``. Outside a minibatched fit the two are the
    same. Inside one, ``x`` is the current minibatch and the plate is
    ``pyro.plate(name, N, subsample=idx)``: Pyro scales the log-likelihood by ``N / len(idx)``
    and ``idx`` holds the rows' positions in the full data (for per-datapoint guide
    parameters). A user's model may write a plain ``pyro.plate`` instead:
    ``fit_svi`` then scales it itself where it can prove which plate holds the rows
    (:func:`plan_scaling`), and refuses the fit where it cannot.

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
    size = check_int(size, "size", minimum=1)
    current = _MINIBATCH.get()
    if current is not None:
        full_size, idx = current
        if len(idx) == size:
            return pyro.plate(name, full_size, subsample=idx, dim=dim)
    return pyro.plate(name, size, dim=dim)


def plate_scale(size: int) -> float:
    """The factor by which :func:`data_plate` with ``size`` rows scales each data point's
    log-density: :math:`N / B` while :func:`~ppl_models.inference.fit_svi` passes a
    minibatch of :math:`B` (= ``size``) rows out of :math:`N`, else 1. For a module's
    ``reparam_loss``, which writes the ELBO without Pyro's plate.

    >>> plate_scale(5)
    1.0
    """
    size = check_int(size, "size", minimum=1)
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
    if not isinstance(fn, torch.distributions.Distribution):
        raise TypeError(f"fn must be a distribution; got {type(fn).__name__}")
    return dist.ExpandedDistribution(fn, fn.batch_shape)


# ------------------------------------------------- proving the scaling of any model


class ScalingError(ValueError):
    """A minibatched fit whose likelihood scaling cannot be proved correct."""


class ScalingPlan(NamedTuple):
    """What :func:`plan_scaling` found.

    Attributes
    ----------
    plain_plates : tuple of str
        Plates that hold the minibatch's rows but do not know :math:`N` (a plain
        ``pyro.plate("data", len(x))``): their sites are to be scaled by :math:`N/B`
        (:class:`ScalePlates`). Empty where every plate over the rows is subsampled.
    """

    plain_plates: tuple[str, ...]


class ScalePlates(Messenger):
    """Multiply the log-density of every site inside one of the plates ``names`` by
    ``factor`` (set per minibatch to :math:`N / B`): what ``pyro.plate(name, N,
    subsample=...)`` does, for a model that wrote ``pyro.plate(name, B)``. Wraps both model
    and guide, so that per-datapoint latents are scaled alike in both."""

    def __init__(self, names: tuple[str, ...]):
        super().__init__()
        self.names = frozenset(names)
        self.factor = 1.0

    def _process_message(self, msg: dict) -> None:
        if msg["type"] != "sample" or self.factor == 1.0:
            return
        if any(frame.name in self.names for frame in msg["cond_indep_stack"]):
            msg["scale"] = self.factor * msg["scale"]


def feasible_trace(
    model: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> poutine.Trace:
    """A trace of ``model`` for its structure (sites, shapes, plates), plates' index
    sites pruned. Latent sites take feasible values (0 or 1 in the unconstrained
    coordinates) rather than prior draws: a vague prior's draw can make a model's density
    non-finite or singular. Where a model needs its priors' draws, those are taken."""
    try:
        trace = poutine.trace(InitMessenger(init_to_feasible)(model)).get_trace(*args, **kwargs)
    except Exception:  # any failure: try the priors' draws
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    return prune_subsample_sites(trace)


def _site_facts(
    model: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, tuple[torch.Size, float, tuple[Any, ...], bool]]:
    """Per sample site (plates' index sites and deterministic sites aside): the value's
    shape, its scale, its plates' frames and whether it is observed."""
    trace = feasible_trace(model, args, kwargs)
    facts = {}
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["infer"].get("_deterministic"):
            continue
        value = site["value"]
        shape = value.shape if torch.is_tensor(value) else torch.Size()
        scale = site["scale"]
        scale = float(scale) if not torch.is_tensor(scale) or scale.numel() == 1 else scale
        facts[name] = (shape, scale, tuple(site["cond_indep_stack"]), site["is_observed"])
    return facts


def plan_scaling(
    model: Callable[..., Any],
    args: tuple[Any, ...],
    idx: torch.Tensor,
    n: int,
    kwargs: dict[str, Any],
    rows: Callable[[tuple[Any, ...], torch.Tensor], tuple[Any, ...]],
) -> ScalingPlan:
    r"""Prove that a minibatched fit of ``model`` scales every per-datapoint site by
    :math:`N/B`, or say how to make it so, or refuse.

    The model is traced twice, on the minibatch ``args`` (:math:`B` rows, positions
    ``idx``) and on the same rows twice over (:math:`2B` rows), inside the library's
    minibatch context. A site *depends on the minibatch* when its shape differs between
    the two traces. Each such site must be inside exactly one plate whose size follows the
    rows, and

    * that plate knows :math:`N` (``pyro.plate(name, N, subsample=...)``, or
      :func:`data_plate`): Pyro scales the site; the plate's :math:`N` must be the
      fit's;
    * or it is a plain plate of the minibatch's size (``pyro.plate(name, len(x))``) and the
      site carries no scale of its own: the fit scales the plate by :math:`N/B`
      (:class:`ScalePlates`).

    Anything else (a site outside every plate over the rows, a model that scales the
    site itself, a plate that claims another :math:`N`) raises :class:`ScalingError`,
    naming the site and saying what to write. Random streams are left as they were.

    Parameters
    ----------
    model : callable
    args : tuple
        The model's arguments for one minibatch.
    idx : torch.Tensor
        The minibatch's row positions (``len(idx)`` is :math:`B`).
    n : int
        :math:`N`.
    kwargs : dict
        The model's keyword arguments.
    rows : callable
        ``rows(args, positions)`` selects rows of ``args`` (the tensors whose first
        dimension holds the minibatch).
    """
    b = len(idx)
    twice = torch.cat([torch.arange(b, device=idx.device)] * 2)
    rng = pyro.util.get_rng_state()
    try:
        with torch.no_grad(), pyro.validation_enabled(False):
            with minibatch(n, idx):
                first = _site_facts(model, args, kwargs)
            with minibatch(n, idx[twice]):
                second = _site_facts(model, rows(args, twice), kwargs)
    finally:
        pyro.util.set_rng_state(rng)
    how = (
        "declare the data points in a plate that knows the data set's size: "
        f"`pyro.plate(name, {n}, subsample=...)` or `ppl_models.inference.data_plate(len(x))`"
        ", or write `pyro.plate(name, len(x))` around every site of a data point and let "
        "fit_svi scale it; or fit without batch_size"
    )
    plain: set[str] = set()
    for name, (shape, scale, frames, observed) in first.items():
        other = second.get(name)
        if other is None:
            raise ScalingError(
                f"with batch_size, site {name!r} appears for a minibatch of {b} rows but not "
                f"for {2 * b}: fit_svi cannot prove the minibatch scaling N/B; fit without "
                "batch_size"
            )
        if other[0] == shape:
            continue  # the site does not depend on the minibatch (a global variable)
        other_frames = {f.name: f for f in other[2]}
        tracking = [
            f
            for f in frames
            if f.name in other_frames and (f.size, other_frames[f.name].size) == (b, 2 * b)
        ]
        kind = "observed site" if observed else "latent site"
        if len(tracking) != 1:
            where = (
                "outside every plate over the data points"
                if not tracking
                else (
                    f"inside {len(tracking)} plates over the data points "
                    f"({', '.join(repr(f.name) for f in tracking)})"
                )
            )
            raise ScalingError(
                f"with batch_size, the {kind} {name!r} depends on the minibatch but is {where}"
                f", so its log-density cannot be scaled by N/B = {n}/{b}; {how}"
            )
        frame, doubled = tracking[0], other_frames[tracking[0].name]
        # A plate that knows N keeps its full size whatever the minibatch; a plain plate's
        # full size is the minibatch's (B, then 2B). Comparing one trace alone would
        # mistake one for the other where B or 2B equals N.
        if frame.full_size == doubled.full_size:
            if frame.full_size != n:
                raise ScalingError(
                    f"with batch_size, plate {frame.name!r} (around {kind} {name!r}) says the "
                    f"data set has {frame.full_size} points, but fit_svi has {n}: pass the "
                    "data set's size to the plate, or use ppl_models.inference.data_plate"
                )
            continue  # a subsampled plate: Pyro scales it
        if not (isinstance(scale, float) and isinstance(other[1], float)) or (scale != other[1]):
            raise ScalingError(
                f"with batch_size, the {kind} {name!r} in the plain plate {frame.name!r} is "
                "scaled by the model itself (its scale changes with the minibatch's size), "
                f"so fit_svi cannot prove the factor N/B = {n}/{b}; {how}"
            )
        plain.add(frame.name)
    return ScalingPlan(tuple(sorted(plain)))
