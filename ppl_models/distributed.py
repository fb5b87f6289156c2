r"""Data-parallel training over processes (``torchrun``) and distributed sufficient statistics.

Data-parallel SVI
-----------------
:math:`K` processes (ranks) each hold a copy of the model and read a disjoint part of every
global minibatch. With :math:`N` data points, a global batch :math:`\mathcal B` of size
:math:`B` and rank :math:`k`'s part :math:`\mathcal B_k` of size :math:`B/K`, rank
:math:`k`'s plate (:func:`~ppl_models.inference.data_plate`) scales its likelihood terms by
:math:`N / (B/K)`, so its loss and gradient are

.. math::

    \ell_k = \frac{NK}{B} \sum_{n \in \mathcal B_k} \ell_n, \qquad
    g_k = \frac{NK}{B} \sum_{n \in \mathcal B_k} \nabla \ell_n .

``DistributedDataParallel`` replaces every rank's gradient by the average over ranks,

.. math::

    \frac1K \sum_{k=1}^K g_k = \frac{N}{B} \sum_{k} \sum_{n \in \mathcal B_k} \nabla\ell_n
    = \frac{N}{B} \sum_{n \in \mathcal B} \nabla \ell_n ,

which is exactly the gradient a single process computes on the global batch. The same
optimizer then takes the same step on every rank, so every rank holds the same model.

The global batches do not depend on :math:`K`: ``DistributedSampler`` draws one
permutation :math:`\pi` of :math:`0..N-1` per epoch (seeded by ``seed + epoch``) and gives
rank :math:`k` the positions :math:`\pi_k, \pi_{k+K}, \pi_{k+2K}, \dots`; the :math:`j`-th
local batch of rank :math:`k` is :math:`\pi_{jB + k + Ki}`, :math:`i < B/K`, and their
union over ranks is :math:`\pi_{jB}, \dots, \pi_{(j+1)B - 1}`: the :math:`j`-th global
batch of the one-process run. Each epoch has :math:`\lfloor N / B \rfloor` steps (the
incomplete last batch is dropped).

Distributed sufficient statistics
---------------------------------
PCA and probabilistic PCA need only :math:`(n, \bar x, S)` with
:math:`S = \sum_n (x_n - \bar x)(x_n - \bar x)^\top`: each rank computes them on its shard
(:func:`ppl_models.pca.moments`), the ranks exchange them (one all-gather of
:math:`1 + D + D^2` numbers per rank) and every rank combines them in rank order with
Chan et al.'s pairwise update (:meth:`ppl_models.pca.Moments.combine`), so every rank holds
the moments of the whole data set.

============================  =========================  ===============================
symbol                        argument                   meaning
============================  =========================  ===============================
:math:`N`                     ``len(x)``                 data points
:math:`B`                     ``batch_size``             the *global* batch size
:math:`K`                     ``WORLD_SIZE``             processes
:math:`k`                     ``RANK``                   this process
============================  =========================  ===============================

References
----------
S. Li et al., *PyTorch Distributed: experiences on accelerating data parallel training*,
VLDB 2020. T. F. Chan, G. H. Golub, R. J. LeVeque, *Updating formulae and a pairwise
algorithm for computing sample variances*, 1979.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch
import torch.distributed as tdist
from pyro.infer.elbo import ELBO
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from ._checks import as_data, check_int, check_positive
from .inference.checkpoint import atomic_save, check_checkpoint_path, load_checkpoint
from .inference.loop import FitResult, resolve_model
from .inference.losses import LossPath, ShortcutError, empty_guide, make_elbo, recheck_due
from .inference.plates import local_params, minibatch
from .inference.step import FitError, Stepper, make_optimizer, unique_params
from .pca import Moments, PCAParams, _fix_signs, _top_eigh, is_stream, moments
from .ppca import PPCAParams, _check_latent_dim, _from_covariance

__all__ = [
    "ELBOLoss",
    "closed_form_distributed",
    "distributed_moments",
    "fit_distributed",
    "init_distributed",
    "pca_fit_distributed",
    "shard_rows",
    "train",
]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _destroy() -> None:
    if tdist.is_available() and tdist.is_initialized():
        with contextlib.suppress(Exception):
            tdist.destroy_process_group()


def init_distributed(timeout_s: float = 300.0) -> tuple[int, int]:
    """Join the process group that ``torchrun`` set up, once; return ``(rank, world_size)``.

    If a process group exists it is used as it is. Otherwise, when the variables that
    ``torchrun`` exports (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) are
    all set, the group is created with the ``nccl`` backend when CUDA is available (each
    process on GPU ``LOCAL_RANK``) and ``gloo`` otherwise, and with ``timeout_s`` as the
    time any collective operation may wait for a peer before it raises. Without them
    this is one process: ``(0, 1)``.

    Parameters
    ----------
    timeout_s : float
        Seconds a collective waits for the other processes (a dead or stuck peer makes it
        raise after at most this long).

    Returns
    -------
    (int, int)
        This process's rank and the number of processes.

    Examples
    --------
    >>> init_distributed()  # a plain process: no torchrun variables
    (0, 1)
    """
    timeout_s = check_positive(timeout_s, "timeout_s", allow_tensor=False)
    if not tdist.is_available():
        return 0, 1
    if tdist.is_initialized():
        return tdist.get_rank(), tdist.get_world_size()
    if not all(v in os.environ for v in _TORCHRUN_VARS):
        return 0, 1
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    tdist.init_process_group(
        backend="nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s)
    )
    atexit.register(_destroy)
    return tdist.get_rank(), tdist.get_world_size()


def _world() -> tuple[int, int]:
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_rank(), tdist.get_world_size()
    return 0, 1


def shard_rows(n: int, rank: int | None = None, world_size: int | None = None) -> slice:
    """The contiguous block of rows ``0..n-1`` that ``rank`` of ``world_size`` reads, for
    statistics that need every row once (:func:`distributed_moments`); the blocks differ in
    length by at most one. Defaults: this process's rank and world size.

    Examples
    --------
    >>> [shard_rows(10, k, 3) for k in range(3)]
    [slice(0, 4, None), slice(4, 7, None), slice(7, 10, None)]
    """
    n = check_int(n, "n", minimum=0)
    r, w = _world()
    rank = r if rank is None else check_int(rank, "rank", minimum=0)
    world_size = w if world_size is None else check_int(world_size, "world_size", minimum=1)
    if rank >= world_size:
        raise ValueError(f"rank must be < world_size={world_size}; got {rank}")
    q, extra = divmod(n, world_size)
    start = rank * q + min(rank, extra)
    return slice(start, start + q + (rank < extra))


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


@contextlib.contextmanager
def _collective(
    rank: int, world: int, what: str, timeout_s: float | None = None, ckpt: Path | None = None
) -> Iterator[None]:
    """Turn a failed collective (a peer that died or hangs) into a clear error."""
    if world == 1:
        yield
        return
    try:
        yield
    except FitError:
        raise
    except RuntimeError as err:
        wait = "" if timeout_s is None else f" (collectives wait at most timeout_s={timeout_s:g} s)"
        where = "" if ckpt is None else f"; the last checkpoint ({ckpt}) is whole"
        raise RuntimeError(
            f"rank {rank} of {world}: a collective operation failed {what}: another process "
            f"probably died or hangs{wait}{where}. Original error: {err}"
        ) from err


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
    (one process without ``torchrun``).

    Run the same script with ``torchrun --nproc_per_node=K script.py``: each process reads
    its part of every global batch of ``batch_size`` rows (``DistributedSampler``), computes
    the loss of :class:`ELBOLoss` on it, and ``DistributedDataParallel`` averages the
    gradients over the processes, which makes the step exactly the one-process step on the
    global batch (derivation in the module docstring). With the same ``batch_size``,
    ``seed`` and steps, :math:`K` processes and one process see the same global batches;
    for a loss without sampling (maximum likelihood with the empty guide) the parameters
    agree to rounding. The guide's draws are seeded with ``seed + rank``, so models with
    latent variables agree in distribution, not draw by draw.

    Rank 0 shows the progress bar and writes the checkpoints. The recorded loss of a step
    is the mean of the processes' losses, which equals the one-process loss of the global
    batch; every process returns the same :class:`~ppl_models.inference.FitResult` and
    holds the same parameters (``DistributedDataParallel`` also copies rank 0's initial
    parameters to every process when it wraps the loss).

    Parameters
    ----------
    module : PyroModule
        A topic module (``model``/``guide``, optionally ``validate_data``); moved to the
        data's floating dtype and to this process's device (GPU ``LOCAL_RANK`` under NCCL).
    x : torch.Tensor or numpy.ndarray, shape (N, D)
        The data; a ``numpy.memmap`` (``np.load(path, mmap_mode="r")``) is read batch by
        batch and never whole, and ``module.validate_data`` checks each batch as it is read
        (in-memory data are checked once at entry).
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
        full data by default (then each process takes every :math:`K`-th row and its loss is
        weighted by its share, so uneven shards are exact too).
    num_steps, epochs : int
        How long to train: ``num_steps`` steps, or ``epochs`` times
        :math:`\lfloor N/B \rfloor` steps. One of them is required.
    seed : int
        Seeds the batches (the same for every process) and the draws (``seed + rank``).
    checkpoint : path, optional
        Rank 0 writes ``{"module", "guide", "optimizer", "step", "epoch", "losses",
        "world_size", "batch_size", "seed"}`` there every ``checkpoint_every`` steps and at
        the end, atomically (a crash leaves the previous file whole).
    checkpoint_every : int
    resume : path, optional
        A checkpoint of an earlier call (any number of processes, same ``batch_size`` and
        ``seed``): restores module, guide and optimizer and goes on with the batch after
        the last one it saw. Guides' draws after a resume differ from those of an
        uninterrupted run; a loss without sampling continues exactly.
    progress : bool, optional
        Rank 0's progress bar; by default only when standard error is a terminal.
    timeout_s : float
        How long a collective may wait for a peer (:func:`init_distributed`). A process
        that dies or hangs makes the others raise ``RuntimeError`` (naming the rank and the
        step) within this time instead of waiting forever.
    on_step : callable, optional
        ``on_step(step, loss)`` on every process after each step, with the number of steps
        done and the step's (all-reduced) loss: for logging.
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
    x = _check_rows(x)
    n = int(x.shape[0])
    validate = getattr(module, "validate_data", None)
    per_batch_validation = isinstance(x, np.memmap) and validate is not None
    if validate is not None and not per_batch_validation:
        (x,) = validate(x)

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

    def prepare(rows: torch.Tensor) -> torch.Tensor:
        rows = rows.to(device=device, dtype=dtype)
        if per_batch_validation:
            (rows,) = validate(rows)
        return rows

    if local_b is None:
        # Full batch: a fixed shard, every K-th row; the loss is weighted by K n_k / N so that
        # the average over processes is the full-data loss even when N % K != 0.
        full_idx = torch.arange(rank, n, world)
        full_rows = prepare(_Rows(x).__getitems__(full_idx.tolist())[0])
        weight = world * len(full_idx) / n
        sampler = loader = None
    else:
        sampler = DistributedSampler(
            _Rows(x), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
        loader = DataLoader(
            _Rows(x),
            batch_size=local_b,
            sampler=sampler,
            drop_last=True,
            collate_fn=_as_batch,
            num_workers=num_workers,
        )
        weight = 1.0

    loss_module = ELBOLoss(module, guide, loss, num_particles, **model_kwargs)
    # One evaluation creates lazily initialised parameters (autoguides) before DDP and the
    # optimizer collect them; its draws are undone by the reseeding below.
    with torch.no_grad(), local_params(loss_module):
        probe = (
            full_rows
            if local_b is None
            else prepare(_Rows(x).__getitems__(list(range(min(local_b, n))))[0])
        )
        loss_module(probe)
        # Every process decides on its own probe; the paths give the same number.
        loss_module.choose_path(probe)
    params = unique_params(loss_module)
    if not params:
        raise ValueError("module (and guide) have no parameters to fit")

    losses: list[float] = []
    start_step = 0
    state = None
    if resume is not None:
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
        losses = [float(v) for v in state["losses"]]
        start_step = int(state["step"])

    if world > 1:
        # DDP copies rank 0's parameters to every process here.
        with _collective(rank, world, "wrapping the loss in DDP", timeout_s, ckpt_path):
            ddp: nn.Module = nn.parallel.DistributedDataParallel(
                loss_module, device_ids=None if device.type == "cpu" else [device]
            )
    else:
        ddp = loss_module
    optim = make_optimizer(optimizer, params, lr)
    if state is not None:
        try:
            optim.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise ValueError(
                f"resume: the checkpoint's optimizer state does not fit this optimizer ({err})"
            ) from None
    stepper = Stepper(optim, params)
    pyro.set_rng_seed(seed + rank + start_step)

    def save(step: int, epoch: int) -> None:
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
            ckpt_path,
        )

    def batches(epoch: int, skip: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if loader is None:
            while True:
                yield full_rows, full_idx
        sampler.set_epoch(epoch)
        for j, (rows, idx) in enumerate(loader):
            if j >= steps_per_epoch:
                return
            if j >= skip:
                yield prepare(rows), idx

    show = (os.isatty(2) if progress is None else bool(progress)) and rank == 0
    bar = tqdm(
        total=num_steps,
        initial=start_step,
        disable=not show,
        desc=f"{type(module).__name__} x{world}",
        unit="step",
        leave=True,
    )
    update_every = max(1, num_steps // 200)
    step = start_step
    epoch = step // steps_per_epoch
    try:
        with pyro.validation_enabled(False), local_params(loss_module):
            while step < num_steps:
                for rows, idx in batches(epoch, step - epoch * steps_per_epoch):
                    with _collective(rank, world, f"at step {step}", timeout_s, ckpt_path):
                        if recheck_due(step):
                            _recheck(loss_module, rows, idx.to(device), n, step, world)
                        value = _step(ddp, optim, params, rows, idx.to(device), n, weight)
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
                    if ckpt_path is not None and rank == 0 and step % checkpoint_every == 0:
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


# ------------------------------------------------------------ sufficient statistics


def _local_moments(x: object) -> tuple[Moments, torch.dtype, int]:
    if is_stream(x):
        mom, dtype = moments(x)
        return mom, dtype, mom.mean.shape[0]
    t = as_data(x, "x_shard", ndim=2, min_rows=0)
    d = t.shape[1]
    if t.shape[0] == 0:
        zeros = torch.zeros(d, dtype=torch.float64)
        return Moments(0, zeros, torch.zeros(d, d, dtype=torch.float64)), t.dtype, d
    x64 = t.to(torch.float64)
    mean = x64.mean(0)
    c = x64 - mean
    scatter = c.T @ c
    if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(scatter).all())):
        raise ValueError(
            "x_shard's values are too large: their squares overflow float64; rescale the data"
        )
    return Moments(t.shape[0], mean, scatter), t.dtype, d


def distributed_moments(x_shard: object) -> tuple[Moments, torch.dtype]:
    r"""The :class:`~ppl_models.pca.Moments` of the union of every process's shard.

    Each process computes the moments of its own rows (float64), the processes all-gather
    them (:math:`1 + D + D^2` numbers each), and every process combines them in rank order
    with :meth:`~ppl_models.pca.Moments.combine`, so all hold the same result. In one
    process (no process group) this is the moments of ``x_shard``.

    Parameters
    ----------
    x_shard : array_like, shape (n_k, D), or a stream of row chunks
        This process's rows (e.g. ``x[shard_rows(len(x))]``, or a stream of its chunks);
        a shard may be empty.

    Returns
    -------
    (Moments, torch.dtype)
        The global moments (``n``, ``mean`` (D,), ``scatter`` (D, D), float64) and the
        shard's dtype.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 2.0]], dtype=torch.float64)
    >>> mom, _ = distributed_moments(x)
    >>> mom.n, mom.mean.tolist()
    (3, [2.0, 2.0])
    """
    local, dtype, d = _local_moments(x_shard)
    rank, world = _world()
    if world == 1:
        if local.n < 2:
            raise ValueError(f"x_shard must have at least 2 rows; got {local.n}")
        return local, dtype
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if tdist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    flat = torch.cat(
        [
            torch.tensor([float(local.n), float(d)], dtype=torch.float64),
            local.mean.cpu(),
            local.scatter.cpu().reshape(-1),
        ]
    ).to(device)
    gathered = [torch.empty_like(flat) for _ in range(world)]
    with _collective(rank, world, "gathering the moments"):
        tdist.all_gather(gathered, flat)
    total = Moments(0, torch.zeros(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64))
    for k, g in enumerate(gathered):
        g = g.cpu()
        if int(g[1]) != d:
            raise ValueError(f"x_shard has {d} columns on rank {rank} but {int(g[1])} on rank {k}")
        part = Moments(int(g[0]), g[2 : 2 + d], g[2 + d :].reshape(d, d))
        total = total.combine(part)
    if total.n < 2:
        raise ValueError(f"the shards hold {total.n} rows together; at least 2 are needed")
    return total, dtype


def closed_form_distributed(x_shard: object, latent_dim: int) -> PPCAParams:
    r""":func:`ppl_models.ppca.closed_form` of the data spread over the processes.

    :func:`distributed_moments` gives every process :math:`\bar x` and :math:`S/N`; the
    :math:`M` leading eigenpairs of :math:`S/N` give Tipping & Bishop's :math:`W, \sigma^2`
    on every process (the eigen-decomposition of a :math:`D \times D` matrix is repeated
    on each, which is cheaper than broadcasting its result for moderate :math:`D`).

    Parameters
    ----------
    x_shard : array_like, shape (n_k, D), or a stream of row chunks
        This process's rows.
    latent_dim : int
        :math:`M`, :math:`1 \le M < D`.

    Returns
    -------
    PPCAParams
        In the shard's dtype; the same on every process.

    Examples
    --------
    >>> from ppl_models import ppca
    >>> x = torch.randn(300, 5, dtype=torch.float64)
    >>> p = closed_form_distributed(x, 2)
    >>> bool(torch.allclose(ppca.covariance(p), ppca.covariance(ppca.closed_form(x, 2))))
    True
    """
    mom, dtype = distributed_moments(x_shard)
    m = _check_latent_dim(latent_dim, mom.mean.shape[0])
    return _from_covariance(mom.scatter / mom.n, mom.mean, m, dtype)


def pca_fit_distributed(x_shard: object, n_components: int) -> PCAParams:
    r""":func:`ppl_models.pca.fit` (the ``"eigh"`` route) of the data spread over the
    processes, from :func:`distributed_moments`.

    Parameters
    ----------
    x_shard : array_like, shape (n_k, D), or a stream of row chunks
    n_components : int
        :math:`1 \le M \le \min(N, D)`.

    Returns
    -------
    PCAParams
        ``mean`` (D,), ``components`` (D, M), ``explained_variance`` (M,), in the shard's
        dtype; the same on every process.

    Examples
    --------
    >>> from ppl_models import pca
    >>> x = torch.randn(300, 5, dtype=torch.float64)
    >>> p = pca_fit_distributed(x, 2)
    >>> bool(torch.allclose(p.explained_variance, pca.fit(x, 2).explained_variance))
    True
    """
    mom, dtype = distributed_moments(x_shard)
    m = check_int(n_components, "n_components", minimum=1, maximum=min(mom.n, mom.mean.shape[0]))
    evals, evecs = _top_eigh(mom.scatter / mom.n, m)
    return PCAParams(mom.mean.to(dtype), _fix_signs(evecs).to(dtype), evals.to(dtype))


# ------------------------------------------------------------------ the train command

TRAIN_TOPICS = ("ppca", "vae")


def _ppca_mean_loglik(params: PPCAParams, mom: Moments) -> float:
    r"""The mean PPCA log-likelihood over the data from their moments alone:
    :math:`-\frac12[D\ln 2\pi + \ln|C| + \operatorname{tr}(C^{-1}(S/N + \delta\delta^\top))]`,
    :math:`\delta = \bar x - \mu` (memory independent of N)."""
    w, mu, s2 = (t.to(torch.float64).cpu() for t in params)
    d = w.shape[0]
    c = w @ w.T + s2 * torch.eye(d, dtype=torch.float64)
    delta = mom.mean.cpu() - mu
    second = mom.scatter.cpu() / mom.n + torch.outer(delta, delta)
    _, logdet = torch.linalg.slogdet(c)
    quad = torch.trace(torch.linalg.solve(c, second))
    return float(-0.5 * (d * math.log(2 * math.pi) + logdet + quad))


def train(
    topic: str,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    latent_dim: int = 2,
    hidden: tuple[int, ...] = (400,),
    likelihood: str = "bernoulli",
    loss: str = "trace",
    batch_size: int | None = None,
    num_steps: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    checkpoint_every: int = 100,
    resume: str | os.PathLike[str] | None = None,
    timeout_s: float = 300.0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """What ``ppl-models train TOPIC --data PATH.npy`` does, with or without ``torchrun``.

    Memory-maps ``data`` (N, D), builds the topic's module
    (:class:`~ppl_models.ppca.MarginalPPCA` or :class:`~ppl_models.vae.VAE`), fits it with
    :func:`fit_distributed`, and on rank 0 writes into ``out``: ``model.pt`` (the
    ``state_dict``), ``params.pt`` (the topic's parameters container as a dict),
    ``checkpoint.pt`` and ``summary.json``. For ``ppca`` the summary also holds the mean
    log-likelihood of the fitted parameters and of the closed form
    (:func:`closed_form_distributed`), both from the distributed moments.

    Returns
    -------
    dict
        The summary (the same on every process; only rank 0 writes it).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(f"{d}/x.npy", np.random.default_rng(0).standard_normal((128, 4)))
    ...     s = train("ppca", f"{d}/x.npy", f"{d}/out", batch_size=32, epochs=1)
    ...     sorted(p.name for p in Path(f"{d}/out").iterdir())
    ['checkpoint.pt', 'model.pt', 'params.pt', 'summary.json']
    >>> s["num_steps"], s["world_size"]
    (4, 1)
    """
    if topic not in TRAIN_TOPICS:
        raise ValueError(f"topic must be one of {TRAIN_TOPICS}; got {topic!r}")
    for value, name in ((data, "data"), (out, "out")):
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a file path; got {type(value).__name__}")
    path = Path(data)
    if not path.is_file():
        raise ValueError(f"data: no such file: {path}")
    x = np.load(path, mmap_mode="r")
    if x.ndim != 2:
        raise ValueError(f"data: expected a 2-D array (N, D); got shape {x.shape}")
    if epochs is None and num_steps is None:
        epochs = 10
    rank, world = init_distributed(timeout_s)
    out = Path(out)
    d = int(x.shape[1])
    if topic == "ppca":
        from .ppca import MarginalPPCA

        module: nn.Module = MarginalPPCA(d, latent_dim, seed=seed)
    else:
        from .vae import VAE

        module = VAE(d, latent_dim, hidden=tuple(hidden), likelihood=likelihood, seed=seed)
    fit = fit_distributed(
        module,
        x,
        loss=loss,
        lr=lr,
        batch_size=batch_size,
        num_steps=num_steps,
        epochs=epochs,
        seed=seed,
        checkpoint=out / "checkpoint.pt",
        checkpoint_every=checkpoint_every,
        resume=resume,
        timeout_s=timeout_s,
        progress=progress,
    )
    n = int(x.shape[0])
    summary: dict[str, Any] = {
        "topic": topic,
        "data": str(path),
        "n": n,
        "d": d,
        "world_size": world,
        "batch_size": batch_size,
        "num_steps": fit.num_steps,
        "final_loss": float(fit.losses[-1]),
        "final_loss_per_point": float(fit.losses[-1]) / n,
        "seconds": fit.seconds,
    }
    if topic == "ppca":
        shard = x[shard_rows(n, rank, world)]
        # A shard of fewer than 2 rows (more processes than rows) goes in as a tensor.
        chunks = _MemmapChunks(shard) if len(shard) >= 2 else torch.from_numpy(np.array(shard))
        mom, dtype = distributed_moments(chunks)
        ref = _from_covariance(mom.scatter / mom.n, mom.mean, module.latent_dim, dtype)
        summary["loglik_per_point"] = _ppca_mean_loglik(module.params(), mom)
        summary["closed_form_loglik_per_point"] = _ppca_mean_loglik(ref, mom)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_save(module.state_dict(), out / "model.pt")
        atomic_save(dict(module.params()._asdict()), out / "params.pt")
        tmp = out / ".summary.json.tmp"
        tmp.write_text(_json_dumps(summary))
        os.replace(tmp, out / "summary.json")
    return summary


def _json_dumps(obj: object) -> str:
    import json

    return json.dumps(obj, indent=2) + "\n"


class _MemmapChunks:
    """A slice of a memory map read as a stream of row chunks (one chunk in memory)."""

    def __init__(self, x: np.ndarray, rows: int = 65536):
        self.x, self.rows = x, rows

    def __iter__(self) -> Iterator[torch.Tensor]:
        for start in range(0, self.x.shape[0], self.rows):
            yield torch.from_numpy(np.array(self.x[start : start + self.rows]))
