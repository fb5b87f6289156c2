r"""Data-parallel SVI: the loss as a module for ``DistributedDataParallel`` (:class:`ELBOLoss`)
and the loop that steps it on every process (:func:`fit_distributed`).

Run the same script with ``torchrun --nproc_per_node=K script.py``: each process reads
its part of every global batch of ``batch_size`` rows (``DistributedSampler``), computes
the loss of :class:`ELBOLoss` on it, and ``DistributedDataParallel`` averages the
gradients over the processes, which makes the step exactly the one-process step on the
global batch (derivation in :mod:`ppl_models.distributed`). With the same ``batch_size``,
``seed`` and steps, :math:`K` processes and one process see the same global batches;
for a loss without sampling (maximum likelihood with the empty guide) the parameters
agree to rounding. The guide's draws are seeded with ``seed + rank``, so models with
latent variables agree in distribution, not draw by draw.

Rank 0 shows the progress bar and writes the checkpoints. The recorded loss of a step
is the mean of the processes' losses, which equals the one-process loss of the global
batch; every process returns the same :class:`~ppl_models.inference.FitResult` and
holds the same parameters (``DistributedDataParallel`` also copies rank 0's initial
parameters to every process when it wraps the loss).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyro
import torch
import torch.distributed as tdist
from pyro.infer.elbo import ELBO
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .._checks import as_data, check_int
from ..inference.checkpoint import atomic_save, check_checkpoint_path, load_checkpoint
from ..inference.loop import FitResult
from ..inference.losses import LossPath, ShortcutError, empty_guide, make_elbo, recheck_due
from ..inference.plates import local_params, minibatch
from ..inference.setup import resolve_model
from ..inference.step import Stepper, make_optimizer, unique_params
from ._group import collective, init_distributed

# ------------------------------------------------------------------ the loss as a module


class ELBOLoss(nn.Module):
    """The negative ELBO of ``module.model`` against ``guide`` as a ``torch.nn.Module``.

    ``forward(*batch)`` returns ``elbo.differentiable_loss(module.model, guide, *batch)``,
    or the same number by a shortcut once :meth:`choose_path` has licensed one;
    its parameters are the module's (and the guide's, when the guide is a module of its
    own, such as an autoguide), which is what ``DistributedDataParallel`` needs to wrap it
    and all-reduce their gradients. Called inside a minibatch context (as
    :func:`fit_distributed` does), the plate ``"data"`` scales the likelihood by
    :math:`N / \\text{len(batch)}`.

    Examples
    --------
    >>> from ppl_models.ppca import MarginalPPCA, log_likelihood
    >>> x = torch.randn(50, 3, dtype=torch.float64)
    >>> m = MarginalPPCA(3, 1).double()
    >>> loss = ELBOLoss(m)
    >>> bool(torch.isclose(loss(x), -log_likelihood(x, m.params()).sum()))
    True
    """

    def __init__(
        self,
        module: nn.Module,
        guide: Callable[..., Any] | None = None,
        elbo: ELBO | str = "trace",
        num_particles: int = 1,
        **model_kwargs: Any,
    ):
        super().__init__()
        model, guide, owner = resolve_model(module, guide)
        if guide is None:
            # Maximum likelihood needs no guide; a model with latent sites does (its ELBO
            # refuses the empty guide at the first evaluation).
            guide = empty_guide
        self.module = module
        if isinstance(guide, nn.Module) and guide is not module:
            self.guide_module = guide
        # Plain attributes: registering the guide again would list its parameters twice.
        object.__setattr__(self, "_guide", guide)
        elbo = make_elbo(elbo, num_particles)
        if not callable(getattr(elbo, "differentiable_loss", None)):
            raise ValueError(
                f"elbo: {type(elbo).__name__} has no differentiable_loss, which a loss module "
                "needs (DistributedDataParallel back-propagates it); use Trace_ELBO or "
                "TraceMeanField_ELBO"
            )
        object.__setattr__(self, "_loss", LossPath(model, guide, owner, elbo, model_kwargs))
        self.model_kwargs = model_kwargs

    @property
    def path(self) -> str:
        """The loss path in use (``"pyro"`` until :meth:`choose_path` licenses another)."""
        return self._loss.name

    def choose_path(self, *batch: Any) -> str:
        """Decide on one batch how :meth:`forward` computes the loss, as ``fit_svi`` does
        (:class:`~ppl_models.inference.losses.LossPath`): ``"module"`` (the module's own
        ``reparam_loss``), ``"traces"`` (one guide trace and the replayed model, summed site
        by site), ``"likelihood"`` (a model without latent sites) or ``"pyro"`` (Pyro's
        ELBO class). A shortcut is taken only where it gives Pyro's number with the same
        draws on this batch; the random streams are left as they were."""
        return self._loss.choose(batch)

    def recheck(self, *batch: Any, step: int) -> None:
        """Compare the licensed path with Pyro's ELBO on ``batch`` with the same draws;
        raises :class:`~ppl_models.inference.ShortcutError` if they differ."""
        self._loss.recheck(batch, step)

    def forward(self, *batch: Any) -> torch.Tensor:
        return self._loss(batch)


# ------------------------------------------------------------------------- the data


class _Rows(Dataset):
    """Rows of an in-memory or memory-mapped (N, D) array, fetched a batch at a time."""

    def __init__(self, x: torch.Tensor | np.ndarray):
        self.x = x

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.as_tensor(idx, dtype=torch.long)
        if isinstance(self.x, torch.Tensor):
            return self.x[positions], positions
        return torch.from_numpy(np.asarray(self.x[np.asarray(idx, dtype=np.int64)])), positions

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([i])


def _as_batch(batch: Any) -> Any:
    return batch


def _check_rows(x: object) -> torch.Tensor | np.ndarray:
    """Tensors and in-memory arrays are checked whole here; a memory map (possibly larger
    than memory) is checked batch by batch as it is read."""
    if isinstance(x, np.memmap):
        if x.ndim != 2:
            raise ValueError(f"x must be a 2-D array (N, D); got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise TypeError(f"x must hold real numbers; got dtype {x.dtype}")
        return x
    return as_data(x, "x", ndim=2, min_rows=1, allow_nan=True)


# ------------------------------------------------------------------------- the loop


def fit_distributed(
    module: nn.Module,
    x: Any,
    *,
    guide: Callable[..., Any] | None = None,
    loss: str | ELBO = "trace",
    num_particles: int = 1,
    optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
    lr: float | None = None,
    batch_size: int | None = None,
    num_steps: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    timeout_s: float = 300.0,
    on_step: Callable[[int, float], None] | None = None,
    num_workers: int = 0,
    **model_kwargs: Any,
) -> FitResult:
    r"""Fit ``module`` by SVI, data-parallel over the processes that ``torchrun`` started
    (one process without ``torchrun``): the same step as one process on the global batch
    (:mod:`ppl_models.distributed.training` says how, and what agrees between runs).

    Parameters
    ----------
    module : PyroModule
        A topic module (``model``/``guide``, optionally ``validate_data``); moved to the
        data's floating dtype and to this process's device (GPU ``LOCAL_RANK`` under NCCL).
    x : torch.Tensor or numpy.ndarray, shape (N, D)
        The data; a ``numpy.memmap`` (``np.load(path, mmap_mode="r")``) is read and
        checked by ``module.validate_data`` batch by batch, never whole (in-memory data are
        checked once at entry).
    guide : callable, optional
        ``module.guide`` by default; an autoguide module is trained along.
    loss : {"trace", "meanfield"} or pyro.infer.ELBO
    num_particles : int
    optimizer : {"adam", "adamw", "sgd", "adagrad"} or callable
        As in :func:`~ppl_models.inference.fit_svi`; L-BFGS is refused (its line search
        would need the loss, not just the gradient, agreed between processes).
    lr : float, optional
    batch_size : int, optional
        The **global** batch size :math:`B`, a multiple of the number of processes; the
        full data by default (each process then takes every :math:`K`-th row, its loss
        weighted by its share, so that uneven shards are exact too).
    num_steps, epochs : int
        How long: ``num_steps`` steps, or ``epochs`` times :math:`\lfloor N/B \rfloor`.
        Exactly one of them.
    seed : int
        Seeds the batches (the same for every process) and the draws (``seed + rank``).
    checkpoint : path, optional
        Rank 0 writes ``{"module", "guide", "optimizer", "step", "epoch", "losses",
        "world_size", "batch_size", "seed"}`` there every ``checkpoint_every`` steps and at
        the end, atomically (a crash leaves the previous file whole).
    checkpoint_every : int
    resume : path, optional
        A checkpoint of an earlier call (any number of processes, same ``batch_size`` and
        ``seed``): module, guide and optimizer go on from the batch after its last one.
        Guides' draws differ from an uninterrupted run's; a loss without sampling does not.
    progress : bool, optional
        Rank 0's progress bar; by default only when standard error is a terminal.
    timeout_s : float
        How long a collective may wait for a peer (:func:`init_distributed`): a process
        that dies or hangs makes the others raise ``RuntimeError`` (naming the rank and the
        step) within this time.
    on_step : callable, optional
        ``on_step(step, loss)`` on every process after each step (steps done, the step's
        all-reduced loss): for logging.
    num_workers : int
        ``DataLoader`` worker processes that read batches ahead.
    **model_kwargs
        Keyword arguments of ``model`` and ``guide``.

    Returns
    -------
    FitResult
        ``losses`` (num_steps,), the same on every process; ``converged`` is False.

    Raises
    ------
    FitError
        If the loss becomes non-finite (on every process at the same step; the parameters
        of the last finite step are kept).
    RuntimeError
        If a collective fails: another process died or hung for ``timeout_s``.

    Examples
    --------
    >>> from ppl_models.ppca import MarginalPPCA
    >>> gen = torch.Generator().manual_seed(0)
    >>> x = torch.randn(256, 4, generator=gen, dtype=torch.float64) + 3.0
    >>> m = MarginalPPCA(4, 1)
    >>> fit = fit_distributed(m, x, batch_size=64, epochs=2, lr=0.1, progress=False)
    >>> fit.num_steps, bool(fit.losses[-1] < fit.losses[0])
    (8, True)
    """
    start_time = time.perf_counter()
    rank, world = init_distributed(timeout_s)
    timeout_s = float(timeout_s)
    seed = check_int(seed, "seed", minimum=0)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    num_particles = check_int(num_particles, "num_particles", minimum=1)
    num_workers = check_int(num_workers, "num_workers", minimum=0)
    ckpt_path = check_checkpoint_path(checkpoint, "checkpoint")
    if isinstance(optimizer, str) and optimizer == "lbfgs":
        raise ValueError(
            "optimizer='lbfgs' is not supported by fit_distributed (its line search needs "
            "the same loss on every process); use 'adam', or fit_svi in one process"
        )
    guide = resolve_model(module, guide)[1]  # a TypeError for anything but a Pyro model
    x, n, validate_batches = _read_rows(x, module)
    batch_size, local_b, steps_per_epoch, num_steps = _batch_plan(
        batch_size, world, n, num_steps, epochs
    )
    dtype, device = _follow_data(x, module, guide)
    prepare = _Prepare(dtype, device, validate_batches)
    source = _Source(x, n, rank, world, local_b, steps_per_epoch, seed, num_workers, prepare)
    loss_module = ELBOLoss(module, guide, loss, num_particles, **model_kwargs)
    _first_evaluation(loss_module, source)
    params = unique_params(loss_module)
    if not params:
        raise ValueError("module (and guide) have no parameters to fit")
    state, losses, start_step = _resume(resume, device, batch_size, seed, module, guide)
    ddp = _wrap(loss_module, rank, world, device, timeout_s, ckpt_path)
    optim = _optimizer(optimizer, params, lr, state)
    stepper = Stepper(optim, params)
    pyro.set_rng_seed(seed + rank + start_step)
    save = functools.partial(
        _save_checkpoint, ckpt_path, module, guide, optim, losses, world, batch_size, seed
    )
    step, epoch = _run_steps(
        ddp, loss_module, optim, params, stepper, source, losses, save,
        rank=rank, world=world, n=n, device=device, start_step=start_step,
        num_steps=num_steps, timeout_s=timeout_s, checkpoint=ckpt_path,
        checkpoint_every=checkpoint_every, on_step=on_step, progress=progress,
        desc=f"{type(module).__name__} x{world}", start_time=start_time,
    )  # fmt: skip
    if ckpt_path is not None and rank == 0:
        save(step, epoch)
    return FitResult(
        losses=np.asarray(losses, dtype=np.float64),
        num_steps=len(losses),
        converged=False,
        seconds=time.perf_counter() - start_time,
        loss_path=loss_module.path,
        stopped_by="fixed",
        num_data=n,
    )


def _read_rows(x: object, module: object) -> tuple[Any, int, Callable | None]:
    """The checked data, N, and ``module.validate_data`` where it is left to each batch
    (a memory map is checked as it is read; data in memory are checked here, once)."""
    x = _check_rows(x)
    n = int(x.shape[0])
    validate = getattr(module, "validate_data", None)
    if isinstance(x, np.memmap) and validate is not None:
        return x, n, validate
    if validate is not None:
        (x,) = validate(x)
    return x, n, None


def _batch_plan(
    batch_size: int | None, world: int, n: int, num_steps: int | None, epochs: int | None
) -> tuple[int | None, int | None, int, int]:
    """``(batch_size, local batch size, steps per epoch, num_steps)``, checked."""
    if batch_size is None:
        local_b = None
        steps_per_epoch = 1
    else:
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if batch_size % world:
            raise ValueError(
                f"batch_size (the global batch) must be a multiple of the {world} processes; "
                f"got {batch_size}"
            )
        if batch_size > n:
            raise ValueError(f"batch_size must be at most the {n} data points; got {batch_size}")
        local_b = batch_size // world
        steps_per_epoch = n // batch_size
    if (num_steps is None) == (epochs is None):
        raise ValueError("give exactly one of num_steps and epochs")
    if num_steps is None:
        num_steps = check_int(epochs, "epochs", minimum=1) * steps_per_epoch
    num_steps = check_int(num_steps, "num_steps", minimum=1)
    return batch_size, local_b, steps_per_epoch, num_steps


def _follow_data(x: Any, module: object, guide: object) -> tuple[torch.dtype, torch.device]:
    """The data's floating dtype (the default for integer data) and this process's device
    (its GPU under NCCL, else the data's); the module and guide move there."""
    sample = x[:1]
    floating = (
        sample.is_floating_point()
        if isinstance(sample, torch.Tensor)
        else (np.issubdtype(sample.dtype, np.floating))
    )
    dtype = torch.get_default_dtype()
    if floating:
        dtype = (
            sample.dtype
            if isinstance(sample, torch.Tensor)
            else torch.from_numpy(np.array(sample)).dtype
        )
    if tdist.is_initialized() and tdist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    elif isinstance(x, torch.Tensor):
        device = x.device
    else:
        device = torch.device("cpu")
    if isinstance(module, nn.Module):
        module.to(device=device, dtype=dtype)
    if isinstance(guide, nn.Module):
        guide.to(device=device, dtype=dtype)
    return dtype, device


class _Prepare:
    """Rows as the model takes them: on the device, in the dtype, checked by
    ``validate`` where the data are checked batch by batch (a memory map)."""

    def __init__(self, dtype: torch.dtype, device: torch.device, validate: Callable | None):
        self.dtype, self.device, self.validate = dtype, device, validate

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.to(device=self.device, dtype=self.dtype)
        if self.validate is not None:
            (rows,) = self.validate(rows)
        return rows


class _Source:
    """Where this process's rows come from. Full batch: a fixed shard, every K-th row,
    its loss weighted by K n_k / N so that the average over processes is the full-data
    loss even when N % K != 0. Minibatches: this process's part of every global batch
    (``DistributedSampler``, one permutation per epoch seeded by ``seed + epoch``)."""

    def __init__(
        self,
        x: Any,
        n: int,
        rank: int,
        world: int,
        local_b: int | None,
        steps_per_epoch: int,
        seed: int,
        num_workers: int,
        prepare: _Prepare,
    ):
        self.x, self.n, self.local_b = x, n, local_b
        self.steps_per_epoch, self.prepare = steps_per_epoch, prepare
        if local_b is None:
            self.full_idx = torch.arange(rank, n, world)
            self.full_rows = prepare(_Rows(x).__getitems__(self.full_idx.tolist())[0])
            self.weight = world * len(self.full_idx) / n
            self.sampler = self.loader = None
        else:
            self.sampler = DistributedSampler(
                _Rows(x), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False
            )
            self.loader = DataLoader(
                _Rows(x),
                batch_size=local_b,
                sampler=self.sampler,
                drop_last=True,
                collate_fn=_as_batch,
                num_workers=num_workers,
            )
            self.weight = 1.0

    def probe(self) -> torch.Tensor:
        """Rows for the first evaluation: the shard, or the first local batch's size."""
        if self.local_b is None:
            return self.full_rows
        return self.prepare(_Rows(self.x).__getitems__(list(range(min(self.local_b, self.n))))[0])

    def batches(self, epoch: int, skip: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(rows, positions)`` of an epoch's steps after the first ``skip``."""
        if self.loader is None:
            while True:
                yield self.full_rows, self.full_idx
        self.sampler.set_epoch(epoch)
        for j, (rows, idx) in enumerate(self.loader):
            if j >= self.steps_per_epoch:
                return
            if j >= skip:
                yield self.prepare(rows), idx


def _first_evaluation(loss_module: ELBOLoss, source: _Source) -> None:
    """One evaluation creates lazily initialised parameters (autoguides) before DDP and
    the optimizer collect them, and licenses the loss path (every process decides on its
    own probe; the paths give the same number). Its draws are undone by the reseeding
    before the first step."""
    with torch.no_grad(), local_params(loss_module):
        probe = source.probe()
        loss_module(probe)
        loss_module.choose_path(probe)


def _resume(
    resume: str | os.PathLike[str] | None,
    device: torch.device,
    batch_size: int | None,
    seed: int,
    module: object,
    guide: object,
) -> tuple[dict[str, Any] | None, list[float], int]:
    """``(checkpoint, losses, steps done)`` of the run to go on from (None, [], 0)."""
    if resume is None:
        return None, [], 0
    state = load_checkpoint(
        resume,
        "resume",
        device,
        ("module", "optimizer", "losses", "step", "epoch", "batch_size", "seed"),
    )
    if (state["batch_size"], state["seed"]) != (batch_size, seed):
        raise ValueError(
            f"resume: the checkpoint was written with batch_size={state['batch_size']} and "
            f"seed={state['seed']}; this call has batch_size={batch_size}, seed={seed} "
            "(the batches after the resume would not continue the run)"
        )
    try:
        if isinstance(module, nn.Module) and state.get("module") is not None:
            module.load_state_dict(state["module"])
        if isinstance(guide, nn.Module) and state.get("guide") is not None:
            guide.load_state_dict(state["guide"])
    except RuntimeError as err:
        raise ValueError(
            f"resume: the checkpoint does not fit this module ({str(err).splitlines()[0]})"
        ) from None
    return state, [float(v) for v in state["losses"]], int(state["step"])


def _wrap(
    loss_module: ELBOLoss,
    rank: int,
    world: int,
    device: torch.device,
    timeout_s: float,
    ckpt_path: os.PathLike[str] | None,
) -> nn.Module:
    """``DistributedDataParallel`` around the loss (which copies rank 0's parameters to
    every process); the loss itself in one process."""
    if world == 1:
        return loss_module
    with collective(rank, world, "wrapping the loss in DDP", timeout_s, ckpt_path):
        return nn.parallel.DistributedDataParallel(
            loss_module, device_ids=None if device.type == "cpu" else [device]
        )


def _optimizer(
    optimizer: Any, params: list[torch.nn.Parameter], lr: float | None, state: dict | None
) -> torch.optim.Optimizer:
    optim = make_optimizer(optimizer, params, lr)
    if state is not None:
        try:
            optim.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise ValueError(
                f"resume: the checkpoint's optimizer state does not fit this optimizer ({err})"
            ) from None
    return optim


def _save_checkpoint(
    path: os.PathLike[str],
    module: object,
    guide: object,
    optim: torch.optim.Optimizer,
    losses: list[float],
    world: int,
    batch_size: int | None,
    seed: int,
    step: int,
    epoch: int,
) -> None:
    atomic_save(
        {
            "module": module.state_dict() if isinstance(module, nn.Module) else None,
            "guide": guide.state_dict() if isinstance(guide, nn.Module) else None,
            "optimizer": optim.state_dict(),
            "step": step,
            "epoch": epoch,
            "losses": list(losses),
            "world_size": world,
            "batch_size": batch_size,
            "seed": seed,
        },
        path,
    )


def _run_steps(
    ddp: nn.Module,
    loss_module: ELBOLoss,
    optim: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    stepper: Stepper,
    source: _Source,
    losses: list[float],
    save: Callable[[int, int], None],
    *,
    rank: int,
    world: int,
    n: int,
    device: torch.device,
    start_step: int,
    num_steps: int,
    timeout_s: float,
    checkpoint: os.PathLike[str] | None,
    checkpoint_every: int,
    on_step: Callable[[int, float], None] | None,
    progress: bool | None,
    desc: str,
    start_time: float,
) -> tuple[int, int]:
    """The steps from ``start_step`` to ``num_steps``, epoch after epoch; returns the
    steps done and the epoch. Each step's loss is all-reduced (the mean of the processes'
    losses, the one-process loss of the global batch) and agreed finite before the
    optimizer steps."""
    show = (os.isatty(2) if progress is None else bool(progress)) and rank == 0
    bar = tqdm(
        total=num_steps, initial=start_step, disable=not show, desc=desc, unit="step", leave=True
    )
    update_every = max(1, num_steps // 200)
    steps_per_epoch = source.steps_per_epoch
    step = start_step
    epoch = step // steps_per_epoch
    try:
        with pyro.validation_enabled(False), local_params(loss_module):
            while step < num_steps:
                for rows, idx in source.batches(epoch, step - epoch * steps_per_epoch):
                    with collective(rank, world, f"at step {step}", timeout_s, checkpoint):
                        if recheck_due(step):
                            _recheck(loss_module, rows, idx.to(device), n, step, world)
                        value = _step(ddp, optim, params, rows, idx.to(device), n, source.weight)
                        total = value.to(torch.float64)
                        if world > 1:
                            tdist.all_reduce(total)
                            total /= world
                    value = float(total)
                    stepper.accept(value, step, losses)
                    optim.step()
                    losses.append(value)
                    step += 1
                    if (step % update_every == 0 or step == num_steps) and show:
                        bar.update(step - bar.n)
                        bar.set_postfix(loss=f"{value:.6g}", refresh=False)
                    if checkpoint is not None and rank == 0 and step % checkpoint_every == 0:
                        save(step, epoch)
                    if on_step is not None:
                        on_step(step, value)
                    if step >= num_steps:
                        break
                else:
                    epoch += 1
    finally:
        if show and losses:
            bar.set_postfix(
                loss=f"{losses[-1]:.6g}", time=f"{time.perf_counter() - start_time:.1f}s"
            )
        bar.close()
    return step, epoch


def _recheck(
    loss_module: ELBOLoss, rows: torch.Tensor, idx: torch.Tensor, n: int, step: int, world: int
) -> None:
    """Re-check a licensed loss path against Pyro's ELBO on this process's rows; every
    process learns whether any disagreed, so that all stop together."""
    message = ""
    with minibatch(n, idx):
        try:
            loss_module.recheck(rows, step=step)
        except ShortcutError as err:
            message = str(err)
    if world > 1:
        flag = torch.tensor([1.0 if message else 0.0], dtype=torch.float64, device=idx.device)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        if float(flag) and not message:
            message = f"at step {step}, another process's loss disagreed with Pyro's ELBO"
    if message:
        raise ShortcutError(message)


def _step(
    ddp: nn.Module,
    optim: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    rows: torch.Tensor,
    idx: torch.Tensor,
    n: int,
    weight: float,
) -> torch.Tensor:
    """Forward and backward of one process's part of the batch (the backward all-reduces
    the gradients); the optimizer step comes after the loss is agreed finite."""
    optim.zero_grad()
    with minibatch(n, idx):
        try:
            value = ddp(rows)
        except ValueError as err:
            # With Pyro's validation on, a diverging fit shows up as a distribution refusing
            # NaN parameters. Every process must still join the gradient all-reduce, so the
            # NaN goes into a loss that touches every parameter (with zero gradient).
            if "found invalid values" not in str(err):
                raise
            value = sum((p * 0).sum() for p in params) + float("nan")
    if weight != 1.0:
        value = value * weight
    value.backward()
    return value.detach()
