r"""The one training loop, :func:`fit_svi`, for the library's topic modules and for any
Pyro model.

Each step draws a minibatch (:mod:`.batches`), computes the loss by the licensed path
(:mod:`.losses`) inside the minibatch's plate context (:mod:`.plates`), and takes one
guarded optimizer step (:mod:`.step`); checkpoints (:mod:`.checkpoint`), convergence and
early stopping (:mod:`.stopping`) come around it.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer.elbo import ELBO
from pyro.optim import PyroOptim
from tqdm.auto import tqdm

from .._checks import check_int, check_positive
from .batches import Batches, StreamBatches, is_stream, select_rows, stream_size, to_tensor
from .checkpoint import (
    atomic_save,
    check_checkpoint_path,
    get_rng_state,
    load_checkpoint,
    set_rng_state,
)
from .losses import LossPath, empty_guide, has_latent_sites, hook, make_elbo, recheck_due
from .plates import (
    ScalePlates,
    ScalingError,
    local_params,
    minibatch,
    nan_free,
    plan_scaling,
)
from .step import Stepper, make_optimizer, unique_params
from .stopping import Convergence, EarlyStopping, evaluate_per_point

__all__ = ["ConvergenceWarning", "FitResult", "evaluate_loss", "fit_svi", "resolve_model"]


class ConvergenceWarning(UserWarning):
    """A fit reached ``num_steps`` before its convergence criterion was met."""


class FitResult(NamedTuple):
    """What :func:`fit_svi` returns.

    Every loss is in nats for the whole training set: the negative ELBO of the :math:`N`
    training points, estimated from each minibatch of :math:`B` rows as :math:`N/B` times
    its sum. Divide by ``num_data`` for nats per data point.

    Attributes
    ----------
    losses : numpy.ndarray
        The loss at every step, shape ``(num_steps,)``.
    num_steps : int
        The number of steps taken, those before a resume included.
    converged : bool
        Whether the convergence criterion stopped the fit before ``num_steps``.
    seconds : float
        Wall-clock time of this call.
    val_losses : numpy.ndarray
        With ``validation``: the validation loss at every validation, shape ``(V,)``, in
        the unit of ``losses``: the validation set's loss per data point times :math:`N`
        (what a minibatch's loss is too); empty otherwise.
    val_steps : numpy.ndarray
        The number of steps taken at each validation, shape ``(V,)``.
    best_step : int or None
        The entry of ``val_steps`` with the lowest validation loss: the parameters the
        module holds at the end when ``restore_best`` (``None`` without validation).
    stopped_early : bool
        Whether ``patience`` validations without improvement stopped the fit.
    loss_path : str
        How the loss was computed: ``"pyro"`` (Pyro's ELBO class every step),
        ``"likelihood"``, ``"traces"`` or ``"module"`` (licensed shortcuts; see
        :mod:`ppl_models.inference.losses`).
    stopped_by : str
        ``"converged"``, ``"patience"`` (early stopping), ``"num_steps"`` (the step budget
        ran out before convergence: the fit warned) or ``"fixed"`` (``tol=0`` asked for
        every step).
    num_data : int or None
        :math:`N`, the number of training points (``None`` for a model without data
        points).
    """

    losses: np.ndarray
    num_steps: int
    converged: bool
    seconds: float
    val_losses: np.ndarray = np.empty(0)
    val_steps: np.ndarray = np.empty(0, dtype=np.int64)
    best_step: int | None = None
    stopped_early: bool = False
    loss_path: str = "pyro"
    stopped_by: str = "num_steps"
    num_data: int | None = None


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


def fit_svi(
    module: object,
    *data: Any,
    guide: Callable[..., Any] | None = None,
    loss: str | ELBO = "trace",
    num_particles: int = 1,
    optimizer: str | Callable[..., Any] | torch.optim.Optimizer | PyroOptim = "adam",
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
    loss_path: str = "auto",
    **model_kwargs: Any,
) -> FitResult:
    r"""Fit a Pyro model by stochastic variational inference: the library's one loop.

    Each step computes the loss :math:`-\mathcal{L}`, the negative ELBO of the model and
    the guide, back-propagates, and steps an optimizer over every parameter the two read:
    the module's, the guide's (an autoguide's, made at the first evaluation), and those a
    guide declares with ``pyro.param``.

    The loss is Pyro's number: ``elbo.differentiable_loss(model, guide, *batch)``, or a
    cheaper computation of the same number where one is licensed (see
    :mod:`ppl_models.inference.losses`): it must equal Pyro's ELBO with the same random
    draws at the first evaluation and at re-checks during the fit (after steps 1 and 10,
    then every 100), or the fit stops with :class:`~ppl_models.inference.losses.ShortcutError`.
    ``loss_path="pyro"`` keeps Pyro's ELBO class on every step; ``FitResult.loss_path``
    says which ran.

    Parameters
    ----------
    module : PyroModule or callable
        The model: a topic module (``model``/``guide`` methods), any ``PyroModule`` with
        ``model``/``guide`` methods or whose ``forward`` is the model, or a plain Pyro model
        function. A module (and a guide that is a module) is moved to the device and
        floating dtype of the first floating data tensor. Its optional hooks
        (:class:`~ppl_models.inference.TopicModule`) are used: ``validate_data`` at entry,
        ``reparam_loss`` under licence.
    *data : torch.Tensor or numpy.ndarray or None, or one stream of minibatches
        Positional arguments of the model and guide. Tensors whose first dimension
        equals the first one's length are the data points, sliced into minibatches. Or a
        single iterable of minibatches (a ``torch.utils.data.DataLoader``, including one
        over a memory-mapped file larger than memory, or
        :func:`ppl_models.datasets.open_npy`), each a tensor or a tuple of the model's
        positional arguments, read in turn and again from the start after each pass;
        nothing but the current minibatch is held. A stream gives rows without their
        indices, so guides with per-datapoint parameters need in-memory data.
    guide : callable, optional
        The guide: any Pyro guide, an autoguide, a function using ``pyro.param``. By
        default the module's own ``guide``; a model without one and without latent sites
        gets the empty guide (maximum likelihood); one with latent sites needs a guide.
    loss : {"trace", "meanfield"} or pyro.infer.ELBO
        ``Trace_ELBO`` (Monte-Carlo KL) or ``TraceMeanField_ELBO`` (analytic KL where
        available), or any ELBO instance.
    num_particles : int
        Samples of the guide per step (vectorised).
    optimizer : str, callable, torch.optim.Optimizer or pyro.optim optimizer
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"adagrad"``, ``"lbfgs"``; a function from
        a parameter list to a torch optimizer; a torch optimizer already made over the
        parameters; or a ``pyro.optim`` optimizer (``pyro.optim.Adam({"lr": 0.01})``).
        ``"lbfgs"`` suits deterministic objectives (maximum likelihood with the empty
        guide) and refuses minibatches.
    lr : float, optional
        Learning rate of a named optimizer; 1e-2 for Adam, 1.0 for L-BFGS.
    num_steps : int
        The most steps to take (in total, counting those before a ``resume``). Reaching
        it before convergence warns (:class:`ConvergenceWarning`) unless ``tol=0``.
    batch_size : int, optional
        Minibatch size; the full data when omitted. Minibatches are drawn without
        replacement, a new permutation every epoch. Every site of a data point is scaled
        by :math:`N/B`: by the model's plate where it knows :math:`N`
        (:func:`~ppl_models.inference.data_plate`, ``pyro.plate(name, N, subsample=...)``),
        by the fit for a plain ``pyro.plate(name, len(x))``; a model whose scaling cannot
        be proved is refused before the first step
        (:func:`~ppl_models.inference.plates.plan_scaling`).
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
        Show a progress bar (its last line stays: steps, final loss, time); by default
        only when standard error is a terminal.
    checkpoint : path, optional
        Write the fit's state there every ``checkpoint_every`` steps and at the end,
        atomically (a temporary file, then a rename); tensors and plain containers only.
    checkpoint_every : int
        Steps between checkpoints.
    resume : path, optional
        Continue from a checkpoint written by an earlier call with the same model, guide,
        optimizer and data. Anything else is refused with a ``ValueError`` naming
        ``resume``; nothing in the file is executed.
    validate_every_step : bool
        Keep Pyro's validation (distribution arguments, supports, site shapes), when it is
        enabled, on every step, and Pyro's ELBO class with it. By default it runs on the
        first evaluation only: the data and the shapes do not change between steps, the
        checks cost up to half of a small model's step, and a parameter that turns
        invalid later shows up as a non-finite loss, which raises ``FitError`` all the same.
    validation : tuple, optional
        Held-out data, a tuple like ``data`` (e.g. ``(x_val,)``), for early stopping. Every
        ``validate_every`` steps the loss is evaluated on it without gradient, with the
        same seeded draws every time (:func:`evaluate_loss` with ``seed``, or 0), so that
        validations differ only by the parameters. The parameters with the lowest
        validation loss are kept and, with ``restore_best``, put back at the end.
    validate_every : int, optional
        Steps between validations: one epoch with ``batch_size``, else 100.
    patience : int, optional
        Stop after this many validations in a row without a new lowest validation loss;
        never by default.
    restore_best : bool
        Put back the parameters of the best validation at the end (``validation`` only).
    loss_path : {"auto", "pyro"}
        ``"auto"`` takes a licensed shortcut where one applies; ``"pyro"`` computes every
        loss with Pyro's ELBO class.
    **model_kwargs
        Keyword arguments passed to the model and guide.

    Returns
    -------
    FitResult
        Losses in nats for the whole training set (see :class:`FitResult`).

    Raises
    ------
    FitError
        If the loss becomes non-finite; the parameters are restored to the last step whose
        loss was finite.
    ShortcutError
        If a licensed loss path stops agreeing with Pyro's ELBO.
    ValueError, TypeError
        For bad arguments, before the first step.

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
    model, guide, owner = resolve_model(module, guide)
    num_steps = check_int(num_steps, "num_steps", minimum=1)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    num_particles = check_int(num_particles, "num_particles", minimum=1)
    if loss_path not in ("auto", "pyro"):
        raise ValueError(f"loss_path must be 'auto' or 'pyro'; got {loss_path!r}")
    ckpt_path = check_checkpoint_path(checkpoint, "checkpoint")
    validate = hook(owner, "validate_data")
    is_lbfgs = isinstance(optimizer, str) and optimizer == "lbfgs"

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
    if window is None:
        window = 1 if is_lbfgs else 100
    window = check_int(window, "window", minimum=1)
    if tol is None:
        tol = 1e-10 if is_lbfgs else 1e-6
    elif tol != 0:
        tol = check_positive(tol, "tol", allow_tensor=False)
    if seed is not None:
        pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
    elbo = make_elbo(loss, num_particles)

    if stream is not None:
        stream.device = device
        batches: Batches | StreamBatches = stream
        first_args = data
        first_idx = stream.indices(len(data[0]))
    else:
        batches = Batches(data, n, batch_size, device)
        first_args, first_idx = batches.first()
    minibatched = stream is not None or batch_size is not None

    # In-memory data are checked for NaN once, here, rather than by the models per step
    # (has_nan); a stream's batches are not known in advance.
    floating = [x for x in data if isinstance(x, torch.Tensor) and x.is_floating_point()]
    is_nan_free = stream is None and not any(bool(torch.isnan(x).any()) for x in floating)
    nullctx = contextlib.nullcontext()

    def batch_context(idx: torch.Tensor | None) -> contextlib.AbstractContextManager:
        return minibatch(n, idx) if n and idx is not None else nullctx

    with torch.no_grad(), local_params(module, guide), nan_free(is_nan_free):
        if guide is None:
            with batch_context(first_idx):
                if has_latent_sites(model, empty_guide, first_args, model_kwargs):
                    raise ValueError(
                        "the model has latent sites and no guide: pass guide=, e.g. "
                        "pyro.infer.autoguide.AutoNormal(model) (or AutoDelta for MAP)"
                    )
            guide = empty_guide
        scaler = None
        if minibatched:
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
            if plan.plain_plates:
                scaler = ScalePlates(plan.plain_plates)
        scaling = scaler if scaler is not None else nullctx

        def set_scale(idx: torch.Tensor | None) -> None:
            if scaler is not None and idx is not None:
                scaler.factor = n / len(idx)

        # One evaluation creates lazily initialised parameters (autoguides) before the
        # optimizer collects them; it also finds the parameters a guide reads with
        # pyro.param. Its draws are undone: a fit's draws do not depend on it.
        rng = pyro.util.get_rng_state()
        set_scale(first_idx)
        with batch_context(first_idx), scaling:
            found = _param_site_params(model, guide, first_args, model_kwargs)
            path = LossPath(
                model,
                guide,
                owner,
                elbo,
                model_kwargs,
                allow_shortcuts=loss_path == "auto" and not validate_every_step,
            )
            path.choose(first_args)
        pyro.util.set_rng_state(rng)

    params = unique_params(module, guide, found)
    if not params:
        raise ValueError("the model and guide have no parameters to fit")
    optim = make_optimizer(optimizer, params, lr)
    stepper = Stepper(optim, params)
    is_lbfgs = stepper.is_lbfgs

    def compute_loss(args: tuple[Any, ...]) -> torch.Tensor:
        try:
            return path(args)
        except ValueError as err:
            # With Pyro's validation on, a diverging fit shows up as a distribution refusing
            # NaN/inf parameters rather than as a NaN loss: report it the same way.
            if "found invalid values" not in str(err):
                raise
            return torch.tensor(float("nan"))

    losses: list[float] = []
    start_step = 0
    data_key = {
        "n": n,
        "shapes": [list(x.shape[1:]) for x in data if isinstance(x, torch.Tensor)],
        "dtypes": [str(x.dtype) for x in data if isinstance(x, torch.Tensor)],
    }
    if resume is not None:
        state = load_checkpoint(
            resume, "resume", device, ("params", "optimizer", "losses", "step", "rng", "data")
        )
        _restore(state, params, module, guide, optim, data_key)
        losses = [float(v) for v in state["losses"]]
        start_step = int(state["step"])
        set_rng_state(state["rng"])
        batches.restore(state.get("minibatch"))
        if start_step >= num_steps:
            raise ValueError(
                f"resume: the checkpoint has already taken {start_step} steps; num_steps "
                f"({num_steps}) counts them too, so ask for more to go on"
            )

    def save(target: os.PathLike[str], steps_done: int) -> None:
        atomic_save(
            {
                "params": [p.detach() for p in params],
                "module": module.state_dict() if isinstance(module, torch.nn.Module) else None,
                "guide": guide.state_dict() if isinstance(guide, torch.nn.Module) else None,
                "optimizer": optim.state_dict(),
                "losses": list(losses),
                "step": steps_done,
                "rng": get_rng_state(),
                "minibatch": batches.state(),
                "data": data_key,
            },
            target,
        )

    val = None
    if validation is not None:
        val_data = _check_validation(validation, validate, like)
        if validate_every is None:
            if stream is not None:
                validate_every = -(-n // len(data[0]))  # one pass of the stream
            else:
                validate_every = 100 if batch_size is None else -(-n // batch_size)
        validate_every = check_int(validate_every, "validate_every", minimum=1)
        if patience is not None:
            patience = check_int(patience, "patience", minimum=1)
        val_seed = 0 if seed is None else seed

        def evaluate() -> float:
            if scaler is not None:  # the held-out data are not a minibatch of the training set
                scaler.factor = 1.0
            return evaluate_per_point(elbo, model, guide, val_data, model_kwargs, val_seed)

        val = EarlyStopping(
            evaluate,
            validate_every,
            patience,
            params,
            float(n) if n else 1.0,
        )
    converged = Convergence(tol, window)

    bar = tqdm(
        total=num_steps,
        initial=start_step,
        disable=(None if progress is None else not progress),
        desc=type(module).__name__ if isinstance(module, torch.nn.Module) else "fit_svi",
        unit="step",
        leave=True,
    )
    validation_ctx = nullctx if validate_every_step else pyro.validation_enabled(False)
    update_every = max(1, num_steps // 200)
    stopped_by = "fixed" if not tol else "num_steps"
    step = start_step
    try:
        with validation_ctx, local_params(), nan_free(is_nan_free), scaling:
            for step in range(start_step, num_steps):
                args, idx = next(batches)
                set_scale(idx)
                with batch_context(idx):
                    if recheck_due(step):
                        path.recheck(args, step)
                    value = stepper.step(lambda args=args: compute_loss(args), step, losses)
                losses.append(value)
                if (step + 1) % update_every == 0:
                    bar.update(step + 1 - bar.n)
                    bar.set_postfix(loss=f"{value:.6g}", refresh=False)
                if ckpt_path is not None and (step + 1) % checkpoint_every == 0:
                    save(ckpt_path, step + 1)
                if val is not None and val(step + 1):
                    stopped_by = "patience"
                    break
                if converged(losses):
                    stopped_by = "converged"
                    break
            if is_lbfgs:
                stepper.check_finite_params(step, losses)
    finally:
        if losses:
            bar.update(len(losses) - bar.n)
            bar.set_postfix(
                loss=f"{losses[-1]:.6g}", time=f"{time.perf_counter() - start_time:.1f}s"
            )
        bar.close()
    if val is not None and restore_best:
        val.restore()
    if ckpt_path is not None:
        save(ckpt_path, len(losses))
    if stopped_by == "num_steps":
        warnings.warn(
            f"fit_svi stopped at num_steps={num_steps} before the loss converged (relative "
            f"change of the {window}-step mean above tol={tol:g}); the last loss was "
            f"{losses[-1]:.6g}. Give more steps, a larger tol, or tol=0 to ask for a fixed "
            "number of steps.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return FitResult(
        losses=np.asarray(losses, dtype=np.float64),
        num_steps=len(losses),
        converged=stopped_by == "converged",
        seconds=time.perf_counter() - start_time,
        val_losses=np.asarray(val.losses if val else [], dtype=np.float64),
        val_steps=np.asarray(val.steps if val else [], dtype=np.int64),
        best_step=val.best_step if val else None,
        stopped_early=stopped_by == "patience",
        loss_path=path.name,
        stopped_by=stopped_by,
        num_data=n,
    )


def _restore(
    state: dict[str, Any],
    params: list[torch.nn.Parameter],
    module: object,
    guide: object,
    optim: Any,
    data_key: dict[str, Any],
) -> None:
    """Put a checkpoint's parameters and optimizer state back, refusing one that belongs
    to another model, optimizer or data set."""
    if state["data"] != data_key:
        raise ValueError(
            f"resume: the checkpoint was written for other data ({state['data']}); this fit "
            f"has {data_key}"
        )
    saved = state["params"]
    if len(saved) != len(params) or any(
        s.shape != p.shape or s.dtype != p.dtype for s, p in zip(saved, params, strict=False)
    ):
        raise ValueError(
            "resume: the checkpoint's parameters do not match this model and guide "
            f"({len(saved)} saved, {len(params)} here, or their shapes or dtypes differ)"
        )
    try:
        for owner, key in ((module, "module"), (guide, "guide")):
            if isinstance(owner, torch.nn.Module) and state.get(key) is not None:
                owner.load_state_dict(state[key])
        optim.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
        raise ValueError(
            "resume: the checkpoint does not fit this model, guide or optimizer "
            f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
        ) from None
    with torch.no_grad():
        for s, p in zip(saved, params, strict=True):
            p.copy_(s)


def _check_validation(
    validation: object, validate: Callable[..., Any] | None, like: torch.Tensor | None
) -> tuple[Any, ...]:
    if not isinstance(validation, tuple):
        raise TypeError(
            "validation must be a tuple of data like the positional data, e.g. (x_val,); "
            f"got {type(validation).__name__}"
        )
    data = tuple(to_tensor(x, i) for i, x in enumerate(validation))
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


def evaluate_loss(
    module: object,
    *data: Any,
    guide: Callable[..., Any] | None = None,
    loss: str | ELBO = "trace",
    num_particles: int = 1,
    seed: int = 0,
    **model_kwargs: Any,
) -> float:
    r"""The loss (negative ELBO) per data point of ``module`` on ``data``, without gradient,
    with the draws that ``seed`` gives: what :func:`fit_svi` records as a validation loss,
    divided by the training set's size.

    Parameters
    ----------
    module : PyroModule or callable
        A topic module (``model`` and ``guide`` methods) or any Pyro model (with
        ``guide``).
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
    model, guide, owner = resolve_model(module, guide)
    if guide is None:
        guide = empty_guide
    like = None
    if isinstance(module, torch.nn.Module):
        like = next((p for p in module.parameters() if p.is_floating_point()), None)
    data = _check_validation(tuple(data), hook(owner, "validate_data"), like)
    with local_params(module, guide):
        return evaluate_per_point(
            make_elbo(loss, num_particles), model, guide, data, model_kwargs, seed
        )
