r"""The one training loop, :func:`fit_svi`, for the library's topic modules and for any
Pyro model.

Each step draws a minibatch (:mod:`.batches`), computes the loss by the licensed path
(:mod:`.losses`) inside the minibatch's plate context (:mod:`.plates`), and takes one
guarded optimizer step (:mod:`.step`); checkpoints (:mod:`.checkpoint`), convergence and
early stopping (:mod:`.stopping`) come around it. :func:`fit_svi` runs its parts in this
order: the set-up (:func:`_read_data`: the data converted and checked, the module moved to
them, the minibatches), the first evaluation (:func:`_first_evaluation`: lazily made
parameters, the minibatch scaling proved, the loss path licensed), the optimizer and a
resumed state, then the steps (:func:`_run_steps`).

**Minibatches.** With ``batch_size`` (or a stream of minibatches) every site of a data
point is scaled by :math:`N/B`: by the model's plate where it knows :math:`N`
(:func:`~ppl_models.inference.data_plate`, ``pyro.plate(name, N, subsample=...)``), by
the fit for a plain ``pyro.plate(name, len(x))``; a model whose scaling cannot be proved
is refused before the first step (:func:`~ppl_models.inference.plates.plan_scaling`).
Minibatches are drawn without replacement, a new permutation every epoch. A stream (a
``DataLoader``, :func:`ppl_models.datasets.open_npy`) is read in turn and again after
each pass, holding nothing but the current minibatch; :math:`N` is ``dataset_size`` where
the stream does not tell it. A stream gives rows without their indices, so guides with
per-datapoint parameters need in-memory data.

**Stopping.** The fit stops when ``|m_k - m_{k-1}| <= tol * max(|m_k|, 1)``, ``m_k`` the
mean loss over the k-th window of ``window`` steps (:class:`~.stopping.Convergence`).
Defaults: ``tol=1e-10``, ``window=1`` for L-BFGS (a deterministic objective, each step up
to 20 iterations), else ``1e-6`` and ``100``; ``tol=0`` runs every step. Reaching
``num_steps`` first warns (:class:`ConvergenceWarning`).

**Validation.** With ``validation`` (held-out data, a tuple like the positional data) the
loss is evaluated on it every ``validate_every`` steps (one epoch with ``batch_size``, else
100) without gradient and with the same seeded draws each time (:func:`evaluate_loss`), so
that validations differ by the parameters only. The best parameters are kept and, with
``restore_best``, put back at the end; ``patience`` validations in a row without a new
best stop the fit (:class:`~.stopping.EarlyStopping`).

**Checkpoints.** ``checkpoint`` is written every ``checkpoint_every`` steps and at the end,
atomically, tensors and plain containers only (:mod:`.checkpoint`); ``resume`` continues
from one written by the same model, guide, optimizer and data, and refuses anything else
with a ``ValueError`` naming ``resume`` (nothing in the file is executed).

**Pyro's validation.** Pyro's checks (distribution arguments, supports, shapes), where
enabled, run on the first evaluation; ``validate_every_step`` keeps them, and Pyro's ELBO
class with them, on every step. The data and shapes do not change between steps, the
checks cost up to half of a small model's step, and a parameter that turns invalid later
shows up as a non-finite loss, which raises ``FitError`` all the same.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pyro
import torch
from pyro.infer.elbo import ELBO
from pyro.optim import PyroOptim
from tqdm.auto import tqdm

from .._checks import check_int
from .batches import Batches, StreamBatches, to_tensor
from .checkpoint import (
    atomic_save,
    check_checkpoint_path,
    get_rng_state,
    load_checkpoint,
    set_rng_state,
)
from .losses import LossPath, empty_guide, hook, make_elbo, recheck_due
from .plates import (
    local_params,
    nan_free,
)
from .setup import (
    FirstEvaluation,
    FitData,
    first_batches,
    first_evaluation,
    read_data,
    resolve_model,
    stopping_rule,
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
    guide declares with ``pyro.param``. The loss is Pyro's number,
    ``elbo.differentiable_loss(model, guide, *batch)``, or a cheaper computation of the
    same number where one is licensed (:mod:`ppl_models.inference.losses`): it must equal
    Pyro's ELBO with the same draws at the first evaluation and at re-checks (after steps
    1 and 10, then every 100), or the fit stops with ``ShortcutError``. Minibatches,
    stopping, validation and checkpoints: :mod:`ppl_models.inference.loop`.

    Parameters
    ----------
    module : PyroModule or callable
        A topic module (``model``/``guide`` methods), any ``PyroModule`` with them or whose
        ``forward`` is the model, or a Pyro model function. A module (and a guide that is
        one) moves to the device and floating dtype of the first floating data tensor; its
        hooks (:class:`~ppl_models.inference.TopicModule`) are used: ``validate_data`` at
        entry, ``reparam_loss`` under licence.
    *data : torch.Tensor or numpy.ndarray or None, or one stream of minibatches
        The positional arguments of model and guide; tensors as long as the first are the
        data points, sliced into minibatches. Or one iterable of minibatches (a
        ``DataLoader``, :func:`ppl_models.datasets.open_npy`), each a tensor or a tuple of
        the arguments.
    guide : callable, optional
        Any Pyro guide; the module's own ``guide`` by default. A model without one and
        without latent sites gets the empty guide (maximum likelihood).
    loss : {"trace", "meanfield"} or pyro.infer.ELBO
        ``Trace_ELBO``, ``TraceMeanField_ELBO`` (analytic KL where available), or any ELBO.
    num_particles : int
        Samples of the guide per step (vectorised).
    optimizer : str, callable, torch.optim.Optimizer or pyro.optim optimizer
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"adagrad"``, ``"lbfgs"`` (deterministic
        objectives only, no minibatches); a function from parameters to a torch optimizer;
        a torch optimizer over the parameters; or a ``pyro.optim`` optimizer.
    lr : float, optional
        Learning rate of a named optimizer; 1e-2 for Adam, 1.0 for L-BFGS.
    num_steps : int
        The most steps, those before a ``resume`` included.
    batch_size, dataset_size : int, optional
        Minibatch size (the full data when omitted); :math:`N` for a stream that does not
        tell it. The likelihood is scaled by :math:`N/B`.
    tol, window : float, int, optional
        The convergence rule: relative change ``tol`` of the mean loss over windows of
        ``window`` steps; ``tol=0`` runs every step.
    seed : int, optional
        Seeds torch, numpy and Python's ``random`` (``pyro.set_rng_seed``).
    progress : bool, optional
        A progress bar; by default only when standard error is a terminal.
    checkpoint, checkpoint_every, resume : path, int, path
        Write the fit's state every ``checkpoint_every`` steps and at the end; continue
        from a checkpoint of the same model, guide, optimizer and data.
    validate_every_step : bool
        Keep Pyro's validation (and Pyro's ELBO class) on every step, not the first only.
    validation, validate_every, patience, restore_best : tuple, int, int, bool
        Held-out data for early stopping, validated every ``validate_every`` steps; stop
        after ``patience`` validations without a new best; put the best parameters back.
    loss_path : {"auto", "pyro"}
        Take a licensed shortcut where one applies, or Pyro's ELBO class on every step.
    **model_kwargs
        Keyword arguments of the model and guide.

    Returns
    -------
    FitResult
        Losses in nats for the whole training set; ``loss_path`` says which path ran.

    Raises
    ------
    FitError
        If the loss becomes non-finite; the parameters of the last finite step are kept.
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
    d = read_data(data, module, guide, validate, batch_size, dataset_size, is_lbfgs)
    tol, window = stopping_rule(tol, window, is_lbfgs)
    if seed is not None:
        pyro.set_rng_seed(check_int(seed, "seed", minimum=0))
    elbo = make_elbo(loss, num_particles)
    batches, first_args, first_idx = first_batches(d)
    shortcuts = loss_path == "auto" and not validate_every_step
    first = first_evaluation(
        module, model, guide, owner, elbo, d, first_args, first_idx, model_kwargs, shortcuts
    )
    params, optim, stepper = _optimizer(module, first, optimizer, lr)
    losses, start_step = _resume(resume, d, params, module, first.guide, optim, batches, num_steps)
    save = functools.partial(_save, params, module, first.guide, optim, losses, batches, d.key)
    val = _early_stopping(validation, validate, d, validate_every, patience, params, first,
                          (elbo, model, model_kwargs, 0 if seed is None else seed))  # fmt: skip
    stopped_by = _run_steps(
        module, first, stepper, batches, losses, save, val, Convergence(tol, window),
        start_step=start_step, num_steps=num_steps, ckpt_path=ckpt_path,
        checkpoint_every=checkpoint_every, validate_every_step=validate_every_step,
        progress=progress, start_time=start_time,
    )  # fmt: skip
    if val is not None and restore_best:
        val.restore()
    if ckpt_path is not None:
        save(ckpt_path, len(losses))
    return _result(losses, stopped_by, val, first.path, d.n, num_steps, window, tol, start_time)


def _optimizer(
    module: object, first: FirstEvaluation, optimizer: Any, lr: float | None
) -> tuple[list[torch.nn.Parameter], Any, Stepper]:
    """Every parameter the model and guide read, the optimizer over them and its guard."""
    params = unique_params(module, first.guide, first.found)
    if not params:
        raise ValueError("the model and guide have no parameters to fit")
    optim = make_optimizer(optimizer, params, lr)
    return params, optim, Stepper(optim, params)


def _resume(
    resume: str | os.PathLike[str] | None,
    d: FitData,
    params: list[torch.nn.Parameter],
    module: object,
    guide: object,
    optim: Any,
    batches: Batches | StreamBatches,
    num_steps: int,
) -> tuple[list[float], int]:
    """The losses and steps of the fit to go on from (``[]``, 0 without ``resume``), its
    parameters, optimizer state, random streams and minibatch position restored."""
    if resume is None:
        return [], 0
    state = load_checkpoint(
        resume, "resume", d.device, ("params", "optimizer", "losses", "step", "rng", "data")
    )
    _restore(state, params, module, guide, optim, d.key)
    losses = [float(v) for v in state["losses"]]
    start_step = int(state["step"])
    set_rng_state(state["rng"])
    batches.restore(state.get("minibatch"))
    if start_step >= num_steps:
        raise ValueError(
            f"resume: the checkpoint has already taken {start_step} steps; num_steps "
            f"({num_steps}) counts them too, so ask for more to go on"
        )
    return losses, start_step


def _save(
    params: list[torch.nn.Parameter],
    module: object,
    guide: object,
    optim: Any,
    losses: list[float],
    batches: Batches | StreamBatches,
    data_key: dict[str, Any],
    target: os.PathLike[str],
    steps_done: int,
) -> None:
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


def _early_stopping(
    validation: tuple[Any, ...] | None,
    validate: Callable[..., Any] | None,
    d: FitData,
    validate_every: int | None,
    patience: int | None,
    params: list[torch.nn.Parameter],
    first: FirstEvaluation,
    loss: tuple[ELBO, Callable[..., Any], dict[str, Any], int],
) -> EarlyStopping | None:
    """The validations on held-out data (None without ``validation``): the loss per data
    point of ``loss = (elbo, model, model_kwargs, seed)`` with the same seeded draws."""
    if validation is None:
        return None
    val_data = _check_validation(validation, validate, d.like)
    if validate_every is None:
        if d.stream is not None:
            validate_every = -(-d.n // len(d.args[0]))  # one pass of the stream
        else:
            validate_every = 100 if d.batch_size is None else -(-d.n // d.batch_size)
    validate_every = check_int(validate_every, "validate_every", minimum=1)
    if patience is not None:
        patience = check_int(patience, "patience", minimum=1)

    elbo, model, model_kwargs, seed = loss

    def evaluate() -> float:
        if first.scaler is not None:  # the held-out data are not a minibatch of the training set
            first.scaler.factor = 1.0
        return evaluate_per_point(elbo, model, first.guide, val_data, model_kwargs, seed)

    return EarlyStopping(evaluate, validate_every, patience, params, float(d.n) if d.n else 1.0)


def _run_steps(
    module: object,
    first: FirstEvaluation,
    stepper: Stepper,
    batches: Batches | StreamBatches,
    losses: list[float],
    save: Callable[[os.PathLike[str], int], None],
    val: EarlyStopping | None,
    converged: Convergence,
    *,
    start_step: int,
    num_steps: int,
    ckpt_path: os.PathLike[str] | None,
    checkpoint_every: int,
    validate_every_step: bool,
    progress: bool | None,
    start_time: float,
) -> str:
    """The steps from ``start_step``: each draws a batch, re-checks the licensed path when
    due, and takes the guarded step; returns why they stopped (``"converged"``,
    ``"patience"``, ``"num_steps"`` or ``"fixed"``)."""
    path = first.path

    def compute_loss(args: tuple[Any, ...]) -> torch.Tensor:
        try:
            return path(args)
        except ValueError as err:
            # With Pyro's validation on, a diverging fit shows up as a distribution refusing
            # NaN/inf parameters rather than as a NaN loss: report it the same way.
            if "found invalid values" not in str(err):
                raise
            return torch.tensor(float("nan"))

    bar = tqdm(
        total=num_steps,
        initial=start_step,
        disable=(None if progress is None else not progress),
        desc=type(module).__name__ if isinstance(module, torch.nn.Module) else "fit_svi",
        unit="step",
        leave=True,
    )
    validation_ctx = (
        contextlib.nullcontext() if validate_every_step else pyro.validation_enabled(False)
    )
    update_every = max(1, num_steps // 200)
    stopped_by = "fixed" if not converged.tol else "num_steps"
    step = start_step
    try:
        with validation_ctx, local_params(), nan_free(first.nan_free), first.scaling():
            for step in range(start_step, num_steps):
                args, idx = next(batches)
                first.set_scale(idx)
                with first.batch_context(idx):
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
            if stepper.is_lbfgs:
                stepper.check_finite_params(step, losses)
    finally:
        if losses:
            bar.update(len(losses) - bar.n)
            bar.set_postfix(
                loss=f"{losses[-1]:.6g}", time=f"{time.perf_counter() - start_time:.1f}s"
            )
        bar.close()
    return stopped_by


def _result(
    losses: list[float],
    stopped_by: str,
    val: EarlyStopping | None,
    path: LossPath,
    n: int | None,
    num_steps: int,
    window: int,
    tol: float,
    start_time: float,
) -> FitResult:
    if stopped_by == "num_steps":
        warnings.warn(
            f"fit_svi stopped at num_steps={num_steps} before the loss converged (relative "
            f"change of the {window}-step mean above tol={tol:g}); the last loss was "
            f"{losses[-1]:.6g}. Give more steps, a larger tol, or tol=0 to ask for a fixed "
            "number of steps.",
            ConvergenceWarning,
            stacklevel=3,
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
        value = evaluate_per_point(
            make_elbo(loss, num_particles), model, guide, data, model_kwargs, seed
        )
    if not math.isfinite(value):
        raise ValueError(
            f"evaluate_loss: the loss on data is {value}: the model gives the data zero density "
            "or its terms overflow (values too large for the dtype); check data's scale and "
            "support"
        )
    return value
