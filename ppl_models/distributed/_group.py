"""The process group that ``torchrun`` sets up: joining it, this process's rank and share of
the rows, and collective operations whose failure says which peer to look at."""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as tdist

from .._checks import check_int, check_positive
from ..inference.step import FitError

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


def rank_and_world() -> tuple[int, int]:
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
    r, w = rank_and_world()
    rank = r if rank is None else check_int(rank, "rank", minimum=0)
    world_size = w if world_size is None else check_int(world_size, "world_size", minimum=1)
    if rank >= world_size:
        raise ValueError(f"rank must be < world_size={world_size}; got {rank}")
    q, extra = divmod(n, world_size)
    start = rank * q + min(rank, extra)
    return slice(start, start + q + (rank < extra))


@contextlib.contextmanager
def collective(
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
