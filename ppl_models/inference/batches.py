"""Where a fit's minibatches come from: rows of in-memory data drawn without replacement
(a new permutation every epoch), or the batches of a stream (a ``DataLoader``, a
``.npy`` file read in chunks, any iterable), restarted at the end of each pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._checks import as_array, check_int
from .._numerics import is_stream

__all__ = ["Batches", "StreamBatches", "is_stream", "stream_size", "to_tensor"]


def to_tensor(x: Any, i: int) -> Any:
    """Positional data argument ``i`` as a tensor, by the library's one input rule
    (:func:`ppl_models._checks.as_array`: pandas converted once, float16 to float32,
    sparse and complex input refused); integer numpy arrays keep their dtype (class labels,
    counts), numpy arrays come without a copy; ``None`` and dense tensors as they are."""
    if x is None:
        return x
    if isinstance(x, np.ndarray) and x.dtype.kind in "biu":
        return torch.from_numpy(np.ascontiguousarray(x))
    if (
        isinstance(x, torch.Tensor)
        and x.layout == torch.strided
        and x.dtype not in (torch.float16, torch.bfloat16)
        and not x.is_complex()
    ):
        return x
    return as_array(x, f"data[{i}]")


def stream_size(stream: object, dataset_size: int | None) -> int:
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


def select_rows(data: tuple[Any, ...], n: int, idx: torch.Tensor | None) -> tuple[Any, ...]:
    """The rows ``idx`` of every tensor in ``data`` whose first dimension has length ``n``
    (the data points); other arguments as they are. ``idx=None``: all of ``data``."""
    if idx is None:
        return data
    return tuple(
        x[idx] if isinstance(x, torch.Tensor) and x.ndim > 0 and x.shape[0] == n else x
        for x in data
    )


class Batches:
    """Minibatches of ``batch_size`` rows of in-memory ``data`` (``n`` data points),
    drawn without replacement, a new permutation every epoch; ``batch_size=None`` gives the
    full data every time. ``next()`` returns ``(args, idx)``; ``state``/``restore``
    carry the epoch's permutation and position through a checkpoint."""

    def __init__(self, data: tuple[Any, ...], n: int | None, batch_size: int | None, device):
        self.data, self.n, self.batch_size, self.device = data, n, batch_size, device
        self.perm = torch.randperm(n, device=device) if batch_size is not None else None
        self.cursor = 0
        # Full-data steps still go through the plate with explicit indices, made once:
        # pyro.plate would otherwise build torch.arange(N) on every step.
        self.all_rows = torch.arange(n, device=device) if n else None

    def first(self) -> tuple[tuple[Any, ...], torch.Tensor | None]:
        """The rows of the first minibatch (without drawing): for set-up evaluations."""
        if self.batch_size is None:
            return self.data, self.all_rows
        idx = torch.arange(self.batch_size, device=self.device)
        return self.rows(idx), idx

    def rows(self, idx: torch.Tensor | None) -> tuple[Any, ...]:
        return select_rows(self.data, self.n, idx)

    def __next__(self) -> tuple[tuple[Any, ...], torch.Tensor | None]:
        if self.batch_size is None:
            return self.data, self.all_rows
        if self.cursor + self.batch_size > self.n:
            self.perm, self.cursor = torch.randperm(self.n, device=self.device), 0
        idx = self.perm[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return self.rows(idx), idx

    def state(self) -> dict[str, Any] | None:
        if self.perm is None:
            return None
        return {"perm": self.perm, "cursor": self.cursor}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state is not None and self.perm is not None:
            self.perm, self.cursor = state["perm"].to(self.device), int(state["cursor"])


class StreamBatches:
    """Minibatches from an iterable, restarted at the end of each pass (an epoch), each
    converted and checked like in-memory data (``validate``) and moved to ``device``
    (set after the first batch). ``next()`` returns ``(args, idx)`` with
    ``idx = arange(len(batch))``: a stream gives rows without their positions."""

    def __init__(self, source: object, validate: Callable[..., Any] | None):
        self.source, self.validate, self.it = source, validate, iter(source)
        self.device: torch.device | None = None
        self._rows: dict[int, torch.Tensor] = {}
        self._pending: tuple[Any, ...] | None = None

    def _read(self) -> tuple[Any, ...]:
        try:
            batch = next(self.it)
        except StopIteration:
            self.it = iter(self.source)
            try:
                batch = next(self.it)
            except StopIteration:
                raise ValueError("the stream of minibatches is empty") from None
        parts = tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
        parts = tuple(to_tensor(x, i) for i, x in enumerate(parts))
        return tuple(self.validate(*parts)) if self.validate is not None else parts

    def peek(self) -> tuple[Any, ...]:
        """The first minibatch, which the first step will then use."""
        if self._pending is None:
            self._pending = self._read()
        return self._pending

    def indices(self, b: int) -> torch.Tensor:
        idx = self._rows.get(b)
        if idx is None:
            idx = self._rows[b] = torch.arange(b, device=self.device)
        return idx

    def __next__(self) -> tuple[tuple[Any, ...], torch.Tensor]:
        args, self._pending = (
            (self._pending, None) if self._pending is not None else (self._read(), None)
        )
        args = tuple(x.to(self.device) if isinstance(x, torch.Tensor) else x for x in args)
        return args, self.indices(len(args[0]))

    def state(self) -> None:
        return None

    def restore(self, state: object) -> None:
        pass
