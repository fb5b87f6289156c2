"""Shared test set-up: seeds, Pyro's validation, an empty parameter store, smoke mode."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PPL_MODELS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # the ArviZ-only job (Python 3.12) runs without torch and Pyro
    import pyro
    import torch
except ImportError:  # pragma: no cover - exercised only in that job
    pyro = None
    torch = None


@pytest.fixture(autouse=True)
def _pyro_state():
    if pyro is None:
        yield
        return
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    pyro.enable_validation(True)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)
    pyro.clear_param_store()
