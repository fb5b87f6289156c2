"""Checkpoints of a fit: written whole or not at all, read without unpickling objects.

A checkpoint is a dictionary of tensors and plain containers (numbers, strings, lists,
dicts), saved with ``torch.save`` to a temporary file that is then renamed over the
target (atomic on POSIX and Windows), and read with ``torch.load(weights_only=True)``,
which builds nothing but tensors and those containers: a file from elsewhere cannot run
code when a fit resumes from it. Every failure to read one is a ``ValueError`` that names
the argument (``resume``) and says why.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

from .._files import atomic_write

__all__ = [
    "atomic_save",
    "check_checkpoint_path",
    "get_rng_state",
    "load_checkpoint",
    "load_tensors",
    "set_rng_state",
]


def check_checkpoint_path(path: str | os.PathLike[str] | None, name: str) -> Path | None:
    """``path`` as a ``Path``, refused before a fit starts if it cannot be written: a
    folder, or a file in a folder that does not exist and cannot be made."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path; got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{name} must be a file path, not a folder; got {str(p)!r}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{name}: cannot make the folder {str(p.parent)!r} ({err})") from None
    if not os.access(p.parent, os.W_OK):
        raise ValueError(f"{name}: the folder {str(p.parent)!r} is not writable")
    return p


def atomic_save(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` with ``torch.save``, whole or not at all
    (:func:`ppl_models._files.atomic_write`: a temporary file beside ``path``, renamed over
    it; a crash leaves the previous file whole)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(
    path: str | os.PathLike[str], name: str, device: torch.device, required: tuple[str, ...]
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`atomic_save`, tensors mapped to ``device``.

    Raises ``ValueError`` naming ``name`` for a missing, truncated or corrupt file, one
    that holds anything but tensors and plain containers (a pickle that would build
    objects or run code is refused, and nothing of it runs), or one without the entries
    ``required``.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name}: no checkpoint file at {str(p)!r}")
    state = load_tensors(p, name, device, "a checkpoint this library wrote")
    if not isinstance(state, dict):
        raise ValueError(f"{name}: {str(p)!r} is not a checkpoint (no dictionary inside)")
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(
            f"{name}: the checkpoint {str(p)!r} lacks {missing}; it was not written by this "
            "function"
        )
    return state


def load_tensors(path: Path, name: str, map_location: Any, what: str) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never
    an object built or code run. Every failure is a ``ValueError`` that starts with the
    argument ``name`` and says why (``what`` names the kind of file expected)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{name}: {str(path)!r} is not {what}: it holds objects other than tensors and "
            f"plain containers, which are never loaded ({_first_line(err)})"
        ) from None
    except RuntimeError as err:
        if "cuda" in str(err).lower():
            raise ValueError(
                f"{name}: {str(path)!r} holds tensors saved on a GPU, and none is available "
                "here: pass map_location='cpu'"
            ) from None
        raise ValueError(
            f"{name}: cannot read {str(path)!r}: the file is truncated or corrupt "
            f"({_first_line(err)})"
        ) from None
    except (EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise ValueError(
            f"{name}: cannot read {str(path)!r}: the file is truncated or corrupt "
            f"({_first_line(err)})"
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def get_rng_state() -> dict[str, Any]:
    """Pyro's random state (torch, Python's ``random``, numpy) as tensors and plain
    containers, which a ``weights_only`` load can read."""
    state = pyro.util.get_rng_state()
    kind, key, pos, has_gauss, cached = state["numpy"]
    version, internal, gauss = state["random"]
    return {
        "torch": state["torch"],
        "random": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(key, dtype=np.int64)), pos, has_gauss, cached],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    kind, key, pos, has_gauss, cached = state["numpy"]
    state = (kind, key.cpu().numpy().astype(np.uint32), pos, has_gauss, cached)
    np.random.set_state(state)  # noqa: NPY002 - the legacy global stream Pyro seeds
