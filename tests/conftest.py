"""Shared test set-up: seeds, Pyro's validation, an empty parameter store, smoke mode."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PPL_MODELS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Alternating torch and numpy/scipy calls on 2 cores: busy-waiting OpenMP threads make them
# several times slower (REFERENCES.md, "Thread pools"). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The suite's models are small: per-step cost is Python and dispatch overhead, which a
    # second intra-op thread only adds to (5-8x slower SVI measured on a loaded 2-core box).
    if torch is None:
        yield
        return
    # Likewise one BLAS thread for numpy and scipy (small matrices: ~30x slower with two
    # threads on a loaded 2-core machine, measured). threadpool_limits reaches only the BLAS
    # libraries loaded when it is entered, and scipy.linalg brings its own: import it first.
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)
