r"""What :func:`~ppl_models.inference.fit_svi` settles before its first step: the model
and guide of what the user passed (:func:`resolve_model`), the data converted, checked and
followed by the modules (:func:`read_data`), the minibatches, and the first evaluation
(:func:`first_evaluation`) that makes lazily created parameters, proves the minibatch
scaling and licenses the loss path."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

import pyro
import torch
from pyro import poutine
from pyro.infer.elbo import ELBO

from .._checks import check_int, check_positive
from .batches import Batches, StreamBatches, is_stream, select_rows, stream_size, to_tensor
from .losses import LossPath, empty_guide, has_latent_sites
from .plates import (
    ScalePlates,
    ScalingError,
    local_params,
    minibatch,
    nan_free,
    plan_scaling,
)

__all__ = [
    "FirstEvaluation",
    "FitData",
    "first_batches",
    "first_evaluation",
    "read_data",
    "resolve_model",
    "stopping_rule",
]


def resolve_model(
    module: object, guide: Callable[..., Any] | None, role: str = "module"
) -> tuple[Callable[..., Any], Callable[..., Any] | None, object]:
    """``(model, guide, owner)`` for what a user passes as the model.

    * an object with a ``model`` method (a topic module, or any ``PyroModule`` written
      with ``model``/``guide`` methods): its ``model``, and its ``guide`` unless one is
      given;
    * a ``PyroModule`` (or any callable) whose call is the model (Pyro's ``forward``
      idiom, or a plain function): the callable itself, and ``guide`` as given.

    ``owner`` is the object whose hooks (:class:`~ppl_models.inference.TopicModule`) may be
    used. ``guide`` may come back ``None``: the caller decides (an empty guide for a model
    without latent sites).
    """
    model = getattr(module, "model", None)
    if callable(model) and not isinstance(module, type):
        if guide is None:
            own = getattr(module, "guide", None)
            guide = own if callable(own) else None
        return model, guide, module
    if callable(module) and not isinstance(module, (type, str)):
        return module, guide, module
    raise TypeError(
        f"{role} must be a Pyro model: a PyroModule with model/guide methods or whose "
        f"forward is the model, or a callable; got {type(module).__name__}"
    )


def _first_floating(data: tuple[Any, ...]) -> torch.Tensor | None:
    return next((x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()), None)


def _follow_data(like: torch.Tensor | None, *modules: object) -> None:
    """Move the modules to the device and floating dtype of the data."""
    if like is None:
        return
    for m in modules:
        if isinstance(m, torch.nn.Module):
            m.to(device=like.device, dtype=like.dtype)


def _param_site_params(
    model: Callable[..., Any], guide: Callable[..., Any], args: tuple[Any, ...], kwargs: dict
) -> tuple[torch.Tensor, list[torch.nn.Parameter]]:
    """One evaluation of guide and replayed model under ``no_grad``: creates lazily made
    parameters (autoguides) and returns the loss-free list of every parameter the pair
    reads, through Pyro's ``param`` sites (``pyro.param`` in a guide, ``PyroParam``,
    networks), as Pyro's ``SVI`` collects them."""
    with poutine.trace(param_only=True) as capture:
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        poutine.replay(model, trace=guide_trace)(*args, **kwargs)
    found = []
    for site in capture.trace.nodes.values():
        value = site["value"]
        link = getattr(value, "unconstrained", None)
        leaf = link() if callable(link) else value
        if isinstance(leaf, torch.Tensor) and leaf.is_leaf:
            found.append(leaf)
    return found


class FitData(NamedTuple):
    """A fit's data after conversion and validation: the positional arguments (or a
    stream's first batch), :math:`N`, the stream, the first floating tensor (whose dtype
    and device the modules follow), the device, the batch size (``None``: full batch),
    whether the data were found free of NaN, and what a checkpoint records of them."""

    args: tuple[Any, ...]
    n: int | None
    stream: StreamBatches | None
    like: torch.Tensor | None
    device: torch.device
    batch_size: int | None
    nan_free: bool
    key: dict[str, Any]


def read_data(
    data: tuple[Any, ...],
    module: object,
    guide: object,
    validate: Callable[..., Any] | None,
    batch_size: int | None,
    dataset_size: int | None,
    is_lbfgs: bool,
) -> FitData:
    """Convert and check the data (``validate_data`` at entry), move the modules to them,
    and check the batch size against them."""
    stream = None
    if len(data) == 1 and is_stream(data[0]):
        if batch_size is not None:
            raise ValueError(
                "batch_size must be None with a stream: its batches are the minibatches"
            )
        if is_lbfgs:
            raise ValueError(
                "optimizer='lbfgs' needs a deterministic objective; a stream of minibatches "
                "makes the loss stochastic"
            )
        n = stream_size(data[0], dataset_size)
        stream = StreamBatches(data[0], validate)
        data = stream.peek()
    else:
        data = tuple(to_tensor(x, i) for i, x in enumerate(data))
        if validate is not None:
            data = tuple(validate(*data))
        first = next((x for x in data if isinstance(x, torch.Tensor)), None)
        n = first.shape[0] if first is not None and first.ndim > 0 else None

    like = _first_floating(data)
    _follow_data(like, module, guide)
    device = next((x.device for x in data if isinstance(x, torch.Tensor)), torch.device("cpu"))
    if batch_size is not None:
        if n is None:
            raise ValueError("batch_size needs data with a first (data point) dimension")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if is_lbfgs:
            raise ValueError(
                "optimizer='lbfgs' needs a deterministic objective; it cannot be used with "
                f"batch_size={batch_size} (minibatches make the loss stochastic)"
            )
        if batch_size >= n:
            batch_size = None
    # In-memory data are checked for NaN once, here, rather than by the models per step
    # (has_nan); a stream's batches are not known in advance.
    floating = [x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()]
    nan_free = stream is None and not any(bool(torch.isnan(x).any()) for x in floating)
    key = {
        "n": n,
        "shapes": [list(x.shape[1:]) for x in data if isinstance(x, torch.Tensor)],
        "dtypes": [str(x.dtype) for x in data if isinstance(x, torch.Tensor)],
    }
    return FitData(data, n, stream, like, device, batch_size, nan_free, key)


def stopping_rule(tol: float | None, window: int | None, is_lbfgs: bool) -> tuple[float, int]:
    """``(tol, window)``, with L-BFGS's defaults or Adam's (see the module docstring)."""
    if window is None:
        window = 1 if is_lbfgs else 100
    window = check_int(window, "window", minimum=1)
    if tol is None:
        tol = 1e-10 if is_lbfgs else 1e-6
    elif tol != 0:
        tol = check_positive(tol, "tol", allow_tensor=False)
    return tol, window


def first_batches(
    d: FitData,
) -> tuple[Batches | StreamBatches, tuple[Any, ...], torch.Tensor | None]:
    """The minibatches, and the first one's arguments and row positions."""
    if d.stream is not None:
        d.stream.device = d.device
        return d.stream, d.args, d.stream.indices(len(d.args[0]))
    batches = Batches(d.args, d.n, d.batch_size, d.device)
    return (batches, *batches.first())


class FirstEvaluation(NamedTuple):
    """What the first evaluation settled: the guide (the empty one for a model without
    latent sites), the scaler of plain plates (or None), the licensed loss path, and every
    parameter the pair read."""

    guide: Callable[..., Any]
    scaler: ScalePlates | None
    path: LossPath
    found: list[torch.Tensor]
    n: int | None
    nan_free: bool

    def batch_context(self, idx: torch.Tensor | None) -> contextlib.AbstractContextManager:
        """The minibatch's plate context for rows ``idx`` (none for a full batch)."""
        return minibatch(self.n, idx) if self.n and idx is not None else contextlib.nullcontext()

    def scaling(self) -> contextlib.AbstractContextManager:
        return self.scaler if self.scaler is not None else contextlib.nullcontext()

    def set_scale(self, idx: torch.Tensor | None) -> None:
        if self.scaler is not None and idx is not None:
            self.scaler.factor = self.n / len(idx)


def first_evaluation(
    module: object,
    model: Callable[..., Any],
    guide: Callable[..., Any] | None,
    owner: object,
    elbo: ELBO,
    d: FitData,
    first_args: tuple[Any, ...],
    first_idx: torch.Tensor | None,
    model_kwargs: dict[str, Any],
    shortcuts: bool,
) -> FirstEvaluation:
    """One evaluation on the first batch, before any step: it refuses a model with latent
    sites and no guide, proves the minibatch scaling (:func:`plan_scaling`), creates lazily
    initialised parameters (autoguides) before the optimizer collects them, finds those a
    guide reads with ``pyro.param``, and licenses the loss path. Its draws are undone: a
    fit's draws do not depend on it."""
    n = d.n
    minibatched = d.stream is not None or d.batch_size is not None
    nullctx = contextlib.nullcontext()
    with torch.no_grad(), local_params(module, guide), nan_free(d.nan_free):
        if guide is None:
            with minibatch(n, first_idx) if n and first_idx is not None else nullctx:
                if has_latent_sites(model, empty_guide, first_args, model_kwargs):
                    raise ValueError(
                        "the model has latent sites and no guide: pass guide=, e.g. "
                        "pyro.infer.autoguide.AutoNormal(model) (or AutoDelta for MAP)"
                    )
            guide = empty_guide
        scaler = (
            _plan_scaling(model, first_args, first_idx, n, model_kwargs) if minibatched else None
        )
        first = FirstEvaluation(guide, scaler, None, [], n, d.nan_free)
        rng = pyro.util.get_rng_state()
        first.set_scale(first_idx)
        with first.batch_context(first_idx), first.scaling():
            found = _param_site_params(model, guide, first_args, model_kwargs)
            path = LossPath(model, guide, owner, elbo, model_kwargs, allow_shortcuts=shortcuts)
            path.choose(first_args)
        pyro.util.set_rng_state(rng)
    return first._replace(path=path, found=found)


def _plan_scaling(
    model: Callable[..., Any],
    first_args: tuple[Any, ...],
    first_idx: torch.Tensor | None,
    n: int | None,
    model_kwargs: dict[str, Any],
) -> ScalePlates | None:
    """The scaler of the model's plain plates by N/B (None where its plates scale
    themselves); a model whose scaling cannot be proved is refused."""
    try:
        plan = plan_scaling(
            model,
            first_args,
            first_idx,
            n,
            model_kwargs,
            lambda args, pos: select_rows(args, len(first_idx), pos),
        )
    except ScalingError:
        raise
    except Exception as err:
        raise ScalingError(
            "with batch_size (or a stream), fit_svi traces the model to prove the "
            f"minibatch scaling N/B, and the model failed: {err}"
        ) from err
    return ScalePlates(plan.plain_plates) if plan.plain_plates else None
